// How the links of a namespace relate beyond what one link says about itself: which bridges are Switches and
// which were made for port groups, which links are a switch's uplinks (a NIC, or a bond and its NICs), which
// 802.1Q sub-interfaces are port-group plumbing, which port groups exist (records.h) and the VLAN table of every
// VLAN-filtering bridge. Built from the dumps of one observe; during apply the kind hooks keep it up to date with
// what they change, so that a step can rely on what the steps before it did without dumping the namespace again.
#pragma once
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "providers/linux/kind.h"
#include "providers/linux/records.h"
#include "providers/linux/vlans.h"

namespace vnetplan::lnx {

struct PortGroupInfo {
  std::string name;
  int switchIndex = 0;
  VlanSpec vlan;
  bool vlanAware = true;  // the shape: a VLAN of a VLAN-filtering bridge, or a bridge of its own over a sub-interface
  int bridgeIndex = 0;    // bridge-per-VLAN shape, access VLAN: the port group's own bridge (0 = not there)
  // bridge-per-VLAN shape: the 802.1Q sub-interface of the switch's uplink inside that bridge (0 = none)
  int subIndex = 0;
  int subLower = 0;
  uint16_t subVid = 0;
  std::string subName;
};

struct SwitchInfo {
  std::string name;
  bool vlanFiltering = false;
  VfMark mark = VfMark::None;
  std::vector<int> uplinks;  // NICs or the bond enslaved to the bridge as its uplink
};

struct Topology {
  std::map<int, SwitchInfo> switches;               // by bridge ifindex
  std::map<std::string, PortGroupInfo> portGroups;  // by name
  std::map<int, std::string> pgBridges;             // bridge ifindex -> port group (bridge-per-VLAN shape)
  std::map<int, int> uplinkOf;                      // NIC or bond ifindex -> switch bridge ifindex
  std::map<int, int> bondOf;                        // bond member NIC -> bond ifindex
  std::set<int> plumbing;                           // 802.1Q sub-interfaces inside port group bridges
  std::map<int, int> master;                        // link -> master ifindex (every enslaved link)
  std::optional<std::map<int, PortVlans>> vlans;    // bridge VLAN tables (dumped when some bridge filters)

  // Builds the index from one link dump.
  static Topology build(const std::unordered_map<int, LinkInfo>& links);
  const SwitchInfo* switchAt(int index) const;
  const PortGroupInfo* portGroup(const std::string& name) const;
  // The port group whose members look like `spec` on switch `switchIndex` (the identity of a port group on a
  // Linux bridge is its VLAN), or null.
  const PortGroupInfo* portGroupFor(int switchIndex, const VlanSpec& spec) const;
  // Links whose job is plumbing or uplink, not a Port of a manifest.
  bool infrastructure(int index) const {
    return uplinkOf.count(index) || bondOf.count(index) || plumbing.count(index);
  }
  // VLANs some port group or member port of `switchIndex` uses (carried tagged on its uplinks).
  std::set<uint16_t> vlansInUse(int switchIndex) const;
};

// The uplink record of a NIC (how it was before vnetplan took it over), if it carries one.
std::optional<UplinkRecord> uplinkRecordOf(const LinkInfo& l);

}  // namespace vnetplan::lnx
