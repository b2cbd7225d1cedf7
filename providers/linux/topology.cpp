#include "providers/linux/topology.h"

#include <linux/if_arp.h>
#include <linux/if_link.h>

#include <unordered_map>

namespace vnetplan::lnx {

std::optional<UplinkRecord> uplinkRecordOf(const LinkInfo& l) {
  for (const auto& a : l.altnames)
    if (auto r = parseUplinkRecord(a, l.index)) return r;
  return std::nullopt;
}

Topology Topology::build(const std::unordered_map<int, LinkInfo>& links) {
  Topology t;
  std::map<std::string, int> byName;
  for (const auto& [index, l] : links) {
    byName[l.name] = index;
    if (l.master) t.master[index] = l.master;
  }
  // Bridges made for port groups carry a mark; every other bridge is a Switch.
  for (const auto& [index, l] : links) {
    if (l.kind != "bridge") continue;
    bool pgBridge = false;
    for (const auto& a : l.altnames) pgBridge = pgBridge || isPgBridgeMark(a);
    if (pgBridge) {
      t.pgBridges[index] = "";
      continue;
    }
    SwitchInfo s;
    s.name = l.name;
    auto vf = l.bridge.find(IFLA_BR_VLAN_FILTERING);
    s.vlanFiltering = vf != l.bridge.end() && vf->second != 0;
    for (const auto& a : l.altnames)
      if (VfMark m = parseVfMark(a, index); m != VfMark::None) s.mark = m;
    t.switches[index] = s;
  }
  for (const auto& [index, s] : t.switches) {
    const LinkInfo& l = links.at(index);
    for (const auto& a : l.altnames) {
      auto tag = parsePgTag(a);
      if (!tag) continue;
      PortGroupInfo pg;
      pg.name = tag->name;
      pg.switchIndex = index;
      pg.vlan = tag->vlan;
      pg.vlanAware = s.vlanFiltering;
      if (!pg.vlanAware && pg.vlan.mode == VlanSpec::Mode::Access) {
        auto b = byName.find(pg.name);
        if (b != byName.end() && t.pgBridges.count(b->second)) {
          pg.bridgeIndex = b->second;
          t.pgBridges[b->second] = pg.name;
        }
      }
      t.portGroups[pg.name] = pg;
    }
  }
  // Uplinks: a bond enslaved to a Switch's bridge (with its NICs), a NIC vnetplan took over (it carries the
  // record of how it was), or a physical NIC someone enslaved by hand.
  for (const auto& [index, l] : links) {
    if (!l.master || !t.switches.count(l.master)) continue;
    bool uplink = l.kind == "bond" || uplinkRecordOf(l).has_value() ||
                  (l.kind.empty() && l.type == ARPHRD_ETHER && !l.tunType && l.slaveKind == "bridge");
    if (!uplink) continue;
    t.uplinkOf[index] = l.master;
    t.switches[l.master].uplinks.push_back(index);
  }
  for (const auto& [index, l] : links)
    if (l.master && links.count(l.master) && links.at(l.master).kind == "bond") t.bondOf[index] = l.master;
  // Port group plumbing: the 802.1Q sub-interfaces of a switch's uplink inside its port groups' bridges.
  for (const auto& [index, l] : links) {
    if (l.kind != "vlan" || !l.master || !t.pgBridges.count(l.master)) continue;
    if (!t.uplinkOf.count(l.link)) continue;
    t.plumbing.insert(index);
    auto pg = t.portGroups.find(t.pgBridges[l.master]);
    if (pg == t.portGroups.end()) continue;
    pg->second.subIndex = index;
    pg->second.subLower = l.link;
    pg->second.subVid = static_cast<uint16_t>(l.get(IFLA_VLAN_ID).value_or(0));
    pg->second.subName = l.name;
  }
  return t;
}

const SwitchInfo* Topology::switchAt(int index) const {
  auto it = switches.find(index);
  return it == switches.end() ? nullptr : &it->second;
}

const PortGroupInfo* Topology::portGroup(const std::string& name) const {
  auto it = portGroups.find(name);
  return it == portGroups.end() ? nullptr : &it->second;
}

const PortGroupInfo* Topology::portGroupFor(int switchIndex, const VlanSpec& spec) const {
  for (const auto& [name, pg] : portGroups)
    if (pg.switchIndex == switchIndex && pg.vlan == spec) return &pg;
  return nullptr;
}

std::set<uint16_t> Topology::vlansInUse(int switchIndex) const {
  std::set<uint16_t> out;
  for (const auto& [name, pg] : portGroups)
    if (pg.switchIndex == switchIndex)
      for (uint16_t v : pg.vlan.taggedIds()) out.insert(v);
  if (vlans)
    for (const auto& [index, m] : master) {
      if (m != switchIndex || uplinkOf.count(index)) continue;
      auto it = vlans->find(index);
      if (it == vlans->end()) continue;
      for (const auto& [vid, untagged] : it->second.vids)
        if (vid != kNativeVid) out.insert(vid);
    }
  return out;
}

}  // namespace vnetplan::lnx
