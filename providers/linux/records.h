// What vnetplan records in the kernel itself, next to the objects it concerns, as alternative interface names
// (IFLA_ALT_IFNAME, Linux >= 5.5; `ip link show` lists them as "altname ..."). The kernel has no name for a VLAN
// of a bridge and no memory of how a NIC was before it became an uplink; these records give both, live with the
// device (gone when it goes), survive vnetplan's state store being lost, and never replace anything a user set
// (an interface may have many altnames; the alias is left alone).
//
//   vnppg.<portgroup>.<vlan>      on a Switch's bridge: the port group <portgroup> is VLAN <vlan> of this switch
//                                 (vlan code "0", "10" or "t10,20,100-199")
//   vnppgb.<ifindex>              on a bridge made for a port group (bridge-per-VLAN shape): not a Switch
//   vnpup.<ifindex>.<mtu>.<up|down>  on a NIC taken over as an uplink: how it was before, restored on release
//   vnpvf.<ifindex>.auto          on a Switch's bridge whose VLAN filtering port groups turned on
//   vnpvf.<ifindex>.off           on a Switch's bridge that must not filter VLANs (linux.bridge.vlanFiltering: false)
//   vnpmac.<ifindex>.<12 hex>     on a tap: the guest's MAC (the tap itself has a derived one)
//   vnpnet.<network>.<mode>       on a Network's bridge: the Network it is (and its mode)
//   vnpmir.<mirror>               on a Mirror's destination port: the Mirror whose copies it receives (its tc
//                                 filters on the source ports carry the Mirror's priority, mirrorPrio)
//   vnpfwd.<network>.<0|1>        on a Network's forwardDev: that Network turned its IPv4 forwarding on, which was
//                                 <0|1> before the first Network did (restored when the last one lets go)
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/netlink.h"
#include "providers/linux/values.h"
#include "providers/linux/vlans.h"

namespace vnetplan::lnx {

std::string pgTag(const std::string& portGroup, const VlanSpec& v);
struct PgTag {
  std::string name;
  VlanSpec vlan;
};
std::optional<PgTag> parsePgTag(std::string_view alt);

std::string pgBridgeMark(int ifindex);
bool isPgBridgeMark(std::string_view alt);

struct UplinkRecord {
  uint32_t mtu = 0;
  bool up = false;
};
std::string uplinkRecord(int ifindex, const UplinkRecord& r);
// The record of `ifindex` among its altnames (a record of another ifindex is someone's stale copy: ignored).
std::optional<UplinkRecord> parseUplinkRecord(std::string_view alt, int ifindex);
bool isUplinkRecord(std::string_view alt);

enum class VfMark { None, Auto, Off };
std::string vfMark(int ifindex, VfMark m);
VfMark parseVfMark(std::string_view alt, int ifindex);

std::string guestMacRecord(int ifindex, const Mac& mac);
std::optional<Mac> parseGuestMacRecord(std::string_view alt, int ifindex);

struct NetMark {
  std::string network;
  std::string mode;
};
std::string netMark(const std::string& network, const std::string& mode);
std::optional<NetMark> parseNetMark(std::string_view alt);

struct FwdRecord {
  std::string network;
  bool before = false;  // the device's forwarding before any Network turned it on
};
std::string fwdRecord(const std::string& network, bool before);
std::optional<FwdRecord> parseFwdRecord(std::string_view alt);

std::string mirrorRecord(const std::string& mirror);
std::optional<std::string> parseMirrorRecord(std::string_view alt);

// RTM_NEWLINKPROP / RTM_DELLINKPROP of one altname. Adding one that exists and removing one that does not are
// not errors.
NlOutcome addAltname(NlSocket& sock, int ifindex, const std::string& alt);
NlOutcome delAltname(NlSocket& sock, int ifindex, const std::string& alt);

}  // namespace vnetplan::lnx
