// VLANs on Linux bridges: the portable `vlan` value (untagged | access id | trunk ranges) in its canonical
// spelling, the per-port VLAN table of a VLAN-filtering bridge (`bridge vlan`), and the netlink requests that read
// and change that table (RTM_GETLINK / RTM_SETLINK / RTM_DELLINK in the AF_BRIDGE family).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/model.h"
#include "base/netlink.h"

namespace vnetplan::lnx {

// VLAN 1 is a Linux bridge's default PVID: the native VLAN, carried untagged on every port and the uplink.
inline constexpr uint16_t kNativeVid = 1;

// The portable `vlan` of a PortGroup or Port: absent/0 = untagged, 1-4094 = access, {trunk: [...]} = trunk.
struct VlanSpec {
  enum class Mode { Untagged, Access, Trunk };
  Mode mode = Mode::Untagged;
  uint16_t id = 0;                                     // Access
  std::vector<std::pair<uint16_t, uint16_t>> ranges;  // Trunk: sorted, merged, inclusive
  bool operator==(const VlanSpec&) const = default;
  bool untagged() const { return mode == Mode::Untagged; }
  // A trunk of every VLAN (1-4094).
  bool allVlans() const;
  // The VLANs this segment carries tagged (the native VLAN is carried untagged, so it is left out).
  std::vector<uint16_t> taggedIds() const;
};

// Where a Port sits (attach.h): the bridge it is enslaved to and, on a VLAN-aware switch, its VLAN segment.
struct Attachment {
  int bridge = 0;       // 0 = not a bridge port
  int switchIndex = 0;  // the Switch behind the bridge, 0 when the bridge is not a Switch's
  bool vlanAware = false;
  VlanSpec vlan;  // on a VLAN-aware switch
  bool operator==(const Attachment&) const = default;
};

// The spec an object's attributes say ("vlan": N, or "vlan.trunk": [...]); nullopt and `why` when malformed.
std::optional<VlanSpec> vlanOf(const Attrs& a, std::string* why = nullptr);
// Sets "vlan" / "vlan.trunk" to `v` ("vlan": null for untagged), the other one erased.
void setVlan(Attrs& a, const VlanSpec& v);
// The canonical trunk list: singles as integers, runs as "a-b" strings, ascending.
Json trunkJson(const std::vector<std::pair<uint16_t, uint16_t>>& ranges);
// "untagged", "VLAN 10", "trunk 10,20,100-199"
std::string vlanText(const VlanSpec& v);
// The compact spelling kept in kernel records: "0", "10", "t10,20,100-199".
std::string vlanCode(const VlanSpec& v);
std::optional<VlanSpec> parseVlanCode(std::string_view s);

// One port's (or a bridge's own) entries of a VLAN-filtering bridge's table.
struct PortVlans {
  uint16_t pvid = 0;
  std::map<uint16_t, bool> vids;  // vid -> egress untagged
  bool operator==(const PortVlans&) const = default;
};
// The table entries a port of segment `v` gets: access = its VLAN as PVID untagged; untagged = the native VLAN;
// trunk = the native VLAN untagged (as a vSphere trunk passes untagged frames) and the trunk's VLANs tagged.
PortVlans portVlansFor(const VlanSpec& v);
// The segment a port's entries express (the inverse of portVlansFor; anything else reads as the closest trunk).
VlanSpec specOf(const PortVlans& p);

// Every bridge port's (and bridge's own) VLAN entries in the socket's namespace, by ifindex.
Result<std::map<int, PortVlans>> dumpBridgeVlans(NlSocket& sock);
// Changes the entries of `ifindex` from `have` to `want` (adds first, so that a PVID moves, then removals).
// `self`: the bridge device's own entries (BRIDGE_FLAGS_SELF), not a port's.
NlOutcome syncPortVlans(NlSocket& sock, int ifindex, bool self, const PortVlans& have, const PortVlans& want);
// Adds (or removes) the given VLANs tagged on a port, in as few requests as the message size allows.
NlOutcome addTaggedVids(NlSocket& sock, int ifindex, const std::vector<uint16_t>& vids);
NlOutcome removeVids(NlSocket& sock, int ifindex, const std::vector<uint16_t>& vids);

}  // namespace vnetplan::lnx
