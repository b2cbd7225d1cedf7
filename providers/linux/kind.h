// The kinds of the linux provider as rows of the shared hook table (reconciler/kind_table.h), and the helpers
// the kinds share (link dumps, link changes, addresses).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/netlink.h"
#include "providers/linux/vlans.h"
#include "providers/linux/values.h"
#include "reconciler/kind_table.h"
#include "reconciler/provider.h"

struct nlmsghdr;

namespace vnetplan::lnx {

class LinuxSession;

// One link of a dump, parsed.
struct LinkInfo {
  int index = 0;
  unsigned flags = 0;       // IFF_*
  unsigned short type = 0;  // ARPHRD_*
  std::string name;
  std::string kind;  // IFLA_INFO_KIND: "bridge", "veth", "tun", ... ("" for physical devices)
  uint32_t mtu = 0;
  std::string mac;  // lowercase, "" if the link has none
  int master = 0;   // IFLA_MASTER
  int link = 0;     // IFLA_LINK (veth: the peer's ifindex, in linkNetnsid's namespace when set)
  std::optional<int32_t> linkNetnsid;
  uint32_t txqlen = 0;             // IFLA_TXQLEN
  std::map<int, uint64_t> bridge;  // IFLA_BR_* scalars (bridges)
  std::map<int, uint64_t> tun;     // IFLA_TUN_* scalars (tun/tap)
  std::optional<uint8_t> tunType;  // IFLA_TUN_TYPE (tun/tap)
  std::vector<std::string> altnames;  // IFLA_PROP_LIST (where vnetplan keeps its records: records.h)
  std::string slaveKind;              // IFLA_INFO_SLAVE_KIND: "bridge", "bond"
  std::string parentBus, parentDev;   // IFLA_PARENT_DEV_BUS_NAME / _NAME: "pci" "0000:00:03.0" (sriov.h)
  std::optional<bool> ipv4Forwarding;  // IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF: the device's IPv4 forwarding
  // IFLA_INFO_DATA scalars of a bond (IFLA_BOND_*), vlan (IFLA_VLAN_*), macvlan/macvtap (IFLA_MACVLAN_*) or
  // vxlan (IFLA_VXLAN_*) link, by attribute id; IFLA_VXLAN_PORT in host byte order.
  std::map<int, uint64_t> data;
  std::vector<std::string> arpTargets;  // IFLA_BOND_ARP_IP_TARGET
  std::string vxlanRemote, vxlanLocal;  // IFLA_VXLAN_GROUP(6) / LOCAL(6), as text
  bool hasAltname(const std::string& a) const;
  std::optional<uint64_t> get(int attr) const;
};

// Parses one RTM_NEWLINK message.
std::optional<LinkInfo> parseLink(const nlmsghdr* h);

// The kinds of the linux provider, one row each (reconciler/kind_table.h): bridge = Switch; veth and tap =
// Port (selected by `type`). Observe and apply both run on the session.
using KindOps = KindHooks<LinuxSession, LinuxSession>;
using LinuxKinds = KindTable<LinuxSession, LinuxSession>;

extern const KindOps kBridgeOps;
extern const KindOps kPortGroupOps;
extern const KindOps kVethOps;
extern const KindOps kTapOps;
extern const KindOps kVlanOps;
extern const KindOps kMacvtapOps;
extern const KindOps kVxlanOps;
extern const KindOps kVfOps;
extern const KindOps kNicOps;
extern const KindOps kPciOps;
extern const KindOps kNetworkOps;
extern const KindOps kMirrorOps;
// The provider's table: every row above.
const LinuxKinds& linuxKinds();

// The traits every Port row shares (the engine plans per kind, not per type).
extern const KindTraits kPortTraits;
// Fields every Switch / Port accepts, the ones every Port accepts, and the ones of a Port that can be a bridge
// port (switch, portGroup, vlan) (link_common.cpp).
const std::vector<FieldRule>& commonLinkFields();
const std::vector<FieldRule>& commonPortFields();
const std::vector<FieldRule>& bridgePortFields();
std::vector<FieldRule> withBridgePortFields(std::vector<FieldRule> own);
// Checks across a bridge port's fields (vlan with portGroup, vlan without switch).
void checkBridgePort(const Resource& r, const Target& t, Diagnostics& diags);
// A field naming another interface of this namespace (switch, peer): a valid name, not the resource itself.
void checkInterfaceNameField(const FieldCheck& fc);
// The largest MTU a link of this row accepts.
int64_t maxMtuFor(const Resource& r);

// Bridge options: attribute path <-> IFLA_BR_* (switch_bridge.cpp), used by check, normalize and apply.
struct BridgeOption {
  const char* path;
  int ifla;
  int bytes;              // attribute width: 1, 2 or 4
  bool seconds;           // seconds in the manifest, centiseconds (clock_t at USER_HZ=100) in the kernel
  bool boolean;           // true/false in the manifest, 0/1 in the kernel
  int64_t min, max;       // manifest units
  int64_t kernelDefault;  // manifest units: the value restored when the attribute is removed
};
const std::vector<BridgeOption>& bridgeOptions();

// ---- shared link helpers (link_common.cpp)

// One RTM_NEWLINK changing an existing link; unset fields are left alone.
struct LinkChange {
  std::optional<uint32_t> mtu;
  std::optional<Mac> mac;
  std::optional<int> master;  // 0 = detach
  std::optional<bool> up;
  std::optional<uint32_t> txqlen;
  bool empty() const { return !mtu && !mac && !master && !up && !txqlen; }
};

// The ifindex of `switchName`, or an error naming the port that wanted it.
Result<int> masterIndex(LinuxSession& s, const KindOps& ops, const std::string& port, const std::string& switchName);
// Sends one link change for the link `name` (addressed by name) over `sock`.
NlOutcome sendLinkChange(NlSocket& sock, const std::string& name, const LinkChange& change);
// Applies `change` to the link `name` with one request (libnl rtnl_link change request).
Status changeLink(LinuxSession& s, const KindOps& ops, const std::string& name, const LinkChange& change,
                  const std::string& verb = "update");
// RTM_DELLINK by name. A link that is already gone counts as deleted (a veth's peer goes with it).
Status deleteLink(LinuxSession& s, const KindOps& ops, const std::string& name);
// The link-level part of a Port update (mtu, mac, switch / portGroup / vlan, up, linux.txQueueLen), from
// step.changed; `macPath` is the attribute holding the link's own MAC ("mac", or a tap's "linux.hostMac").
struct PortChange {
  LinkChange link;
  std::optional<Attachment> now, before;  // set when the port moves (switch, port group or VLAN)
};
Result<PortChange> portLinkChange(LinuxSession& s, const KindOps& ops, const Step& step, const char* macPath = "mac");
// Sends the link change, then settles the port's VLANs and its switches' uplinks.
Status applyPortChange(LinuxSession& s, const KindOps& ops, const Step& step, const PortChange& pc);
// Deletes a Port's link and drops the uplink VLANs only it used.
Status removePort(LinuxSession& s, const KindOps& ops, const Step& step);
bool changesAttachment(const Step& step);
// Creates a Port's link of `kind` in one RTM_NEWLINK: name, mtu, the MAC of `macPath`, txqueuelen, up, the lower
// device `lower` (0 = none) and the bridge the port's attachment names; `putData` fills IFLA_INFO_DATA. Then its
// VLANs and addresses; anything failing removes the link again.
Status createPortLink(LinuxSession& s, const KindOps& ops, const Step& step, const char* kind, int lower,
                      const std::function<bool(nl_msg*, const Attrs&)>& putData, const char* macPath = "mac");
// The ifindex of a Port's lower device (`link`), or an error naming the port.
Result<int> lowerIndex(LinuxSession& s, const KindOps& ops, const std::string& port, const Attrs& a);
// An MTU the engine inherited from the switch does not apply to a port that follows its lower device.
void dropInheritedMtu(Resource& r);

// Rejects an update of an attribute that needs a replace (the engine should have planned delete + create).
Status rejectReplaceOnly(LinuxSession& s, const KindOps& ops, const Step& step,
                         const std::vector<std::string>& replaceOnly);
bool changes(const Step& step, const std::string& path);

// ---- addresses (addresses.cpp)

// Adds `cidrs` to the device (observed through base/ifaddr.h's collectAddress).
Status addAddresses(LinuxSession& s, const KindOps& ops, const std::string& name, int ifindex,
                    const std::vector<std::string>& cidrs);
// Removes the addresses of `before` missing from `after`, then adds the new ones.
Status syncAddresses(LinuxSession& s, const KindOps& ops, const std::string& name, const Attrs& before,
                     const Attrs& after);

}  // namespace vnetplan::lnx
