#include "providers/linux/attach.h"

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <sys/socket.h>

#include "providers/linux/caps.h"
#include "providers/linux/records.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

Status setVlanFiltering(LinuxSession& s, const KindOps& ops, int bridgeIndex, bool on) {
  NlMsg m = newMsg(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = bridgeIndex;
  bool built = m && nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) == 0;
  nlattr* info = built ? nla_nest_start(m.get(), IFLA_LINKINFO) : nullptr;
  built = info && nla_put_string(m.get(), IFLA_INFO_KIND, "bridge") == 0;
  nlattr* data = built ? nla_nest_start(m.get(), IFLA_INFO_DATA) : nullptr;
  built = data && nla_put_u8(m.get(), IFLA_BR_VLAN_FILTERING, on ? 1 : 0) == 0;
  if (!built) return err("linux: out of memory");
  nla_nest_end(m.get(), data);
  nla_nest_end(m.get(), info);
  NlOutcome o = s.nl().request(m.get());
  const SwitchInfo* sw = s.topo().switchAt(bridgeIndex);
  std::string name = sw ? sw->name : "#" + std::to_string(bridgeIndex);
  if (!o.ok())
    return s.failure(std::string(on ? "turn on" : "turn off") + " VLAN filtering of bridge " + name + " (for " +
                         ops.label + ")",
                     o.message);
  if (auto it = s.topo().switches.find(bridgeIndex); it != s.topo().switches.end()) it->second.vlanFiltering = on;
  return {};
}

Status ensureVlanFiltering(LinuxSession& s, const KindOps& ops, int switchIndex) {
  auto it = s.topo().switches.find(switchIndex);
  if (it == s.topo().switches.end()) return err("linux: no switch with ifindex " + std::to_string(switchIndex));
  SwitchInfo& sw = it->second;
  if (sw.vlanFiltering) return {};
  if (sw.mark == VfMark::Off)
    return s.failure(std::string("give ") + ops.label + " a VLAN of bridge " + sw.name,
                     "the switch says linux.bridge.vlanFiltering: false");
  const KernelCaps& caps = kernelCaps();
  if (caps.vlanFiltering == Cap::No)
    return s.failure(std::string("give ") + ops.label + " a VLAN of bridge " + sw.name, lacks(caps, "bridge VLAN filtering"));
  // Recorded first: a crash in between leaves a mark that the next release cleans up, never a filtering bridge
  // nobody knows it may turn off.
  if (NlOutcome o = addAltname(s.nl(), switchIndex, vfMark(switchIndex, VfMark::Auto)); !o.ok())
    return s.failure("record VLAN filtering of bridge " + sw.name, o.message);
  sw.mark = VfMark::Auto;
  if (Status st = setVlanFiltering(s, ops, switchIndex, true); !st.ok()) return st;
  if (auto t = s.vlanTable(); !t.ok()) return t.error();
  return {};
}

Status releaseVlanFiltering(LinuxSession& s, const KindOps& ops, int switchIndex) {
  auto it = s.topo().switches.find(switchIndex);
  if (it == s.topo().switches.end() || it->second.mark != VfMark::Auto) return {};
  for (const auto& [name, pg] : s.topo().portGroups)
    if (pg.switchIndex == switchIndex) return {};
  if (!s.topo().vlansInUse(switchIndex).empty()) return {};
  if (it->second.vlanFiltering)
    if (Status st = setVlanFiltering(s, ops, switchIndex, false); !st.ok()) return st;
  if (NlOutcome o = delAltname(s.nl(), switchIndex, vfMark(switchIndex, VfMark::Auto)); !o.ok())
    return s.failure("forget VLAN filtering of bridge " + it->second.name, o.message);
  it->second.mark = VfMark::None;
  return {};
}

Status syncUplinkVlans(LinuxSession& s, const KindOps& ops, int switchIndex) {
  const SwitchInfo* sw = s.topo().switchAt(switchIndex);
  if (!sw || !sw->vlanFiltering || sw->uplinks.empty()) return {};
  auto table = s.vlanTable();
  if (!table.ok()) return table.error();
  PortVlans want;
  want.pvid = kNativeVid;
  want.vids[kNativeVid] = true;
  for (uint16_t v : s.topo().vlansInUse(switchIndex)) want.vids[v] = false;
  for (int uplink : sw->uplinks) {
    PortVlans& have = (**table)[uplink];
    if (have == want) continue;
    NlOutcome o = syncPortVlans(s.nl(), uplink, false, have, want);
    const LinkInfo* l = s.linkAt(uplink);
    if (!o.ok())
      return s.failure(std::string("set the VLANs of the uplink ") + (l ? l->name : "#" + std::to_string(uplink)) +
                           " of bridge " + sw->name + " (for " + ops.label + ")",
                       o.message);
    have = want;
  }
  return {};
}

Result<Attachment> attachmentOf(LinuxSession& s, const KindOps& ops, const std::string& port, const Attrs& a,
                                bool prepare) {
  Attachment at;
  const std::string what = std::string(prepare ? "attach " : "detach ") + ops.label + " " + port;
  auto vlan = vlanOf(a);
  if (!vlan) vlan = VlanSpec{};
  if (auto pgName = a.getString("portGroup")) {
    const PortGroupInfo* pg = s.topo().portGroup(*pgName);
    if (!pg) {
      if (!prepare) return at;
      return s.failure(what, "no port group " + *pgName + " on this target (it is not there yet, or was removed)");
    }
    at.switchIndex = pg->switchIndex;
    at.vlanAware = pg->vlanAware;
    if (pg->vlanAware) {
      at.bridge = pg->switchIndex;
      at.vlan = pg->vlan;
    } else if (pg->vlan.mode == VlanSpec::Mode::Access) {
      at.bridge = pg->bridgeIndex;
      if (!at.bridge && prepare) return s.failure(what, "the bridge of port group " + *pgName + " is missing");
    } else {
      at.bridge = pg->switchIndex;
    }
    return at;
  }
  auto sw = a.getString("switch");
  if (!sw) return at;
  int index = 0;
  if (prepare) {
    auto found = s.ifindex(*sw);
    if (!found.ok()) return s.failure(what + " to bridge " + *sw, found.error().message);
    index = *found;
  } else {
    for (const auto& [i, info] : s.topo().switches)
      if (info.name == *sw) index = i;
    if (!index) return at;
  }
  at.bridge = index;
  const SwitchInfo* info = s.topo().switchAt(index);
  if (!info) return at;  // a bridge vnetplan does not know as a Switch (or another master): no VLANs
  at.switchIndex = index;
  if (!vlan->untagged() && prepare)
    if (Status st = ensureVlanFiltering(s, ops, index); !st.ok()) return st.error();
  at.vlanAware = s.topo().switchAt(index)->vlanFiltering;
  at.vlan = *vlan;
  return at;
}

Status settleAttachment(LinuxSession& s, const KindOps& ops, const std::string& port, int ifindex,
                        const Attachment& now, const std::optional<Attachment>& before) {
  Topology& t = s.topo();
  if (now.bridge) t.master[ifindex] = now.bridge;
  else t.master.erase(ifindex);
  if (now.vlanAware && now.bridge) {
    auto table = s.vlanTable();
    if (!table.ok()) return table.error();
    auto& have = (**table)[ifindex];
    // A port that has just joined has the native VLAN (the bridge's default PVID), whatever the dump said before.
    if (!before || before->bridge != now.bridge) have = portVlansFor(VlanSpec{});
    PortVlans want = portVlansFor(now.vlan);
    if (!(have == want)) {
      NlOutcome o = syncPortVlans(s.nl(), ifindex, false, have, want);
      if (!o.ok())
        return s.failure("set the VLANs of " + std::string(ops.label) + " " + port + " (" + vlanText(now.vlan) + ")",
                         o.message);
      have = want;
    }
    if (Status st = syncUplinkVlans(s, ops, now.switchIndex); !st.ok()) return st;
  } else if (t.vlans) {
    t.vlans->erase(ifindex);
  }
  if (before && before->switchIndex && before->switchIndex != now.switchIndex) {
    if (Status st = syncUplinkVlans(s, ops, before->switchIndex); !st.ok()) return st;
    if (Status st = releaseVlanFiltering(s, ops, before->switchIndex); !st.ok()) return st;
  } else if (before && before->switchIndex && before->vlan != now.vlan) {
    if (Status st = releaseVlanFiltering(s, ops, before->switchIndex); !st.ok()) return st;
  }
  return {};
}

Status forgetAttachment(LinuxSession& s, const KindOps& ops, const std::string& port, int ifindex,
                        const Attachment& before) {
  (void)port;
  s.topo().master.erase(ifindex);
  if (s.topo().vlans) s.topo().vlans->erase(ifindex);
  if (!before.switchIndex) return {};
  if (Status st = syncUplinkVlans(s, ops, before.switchIndex); !st.ok()) return st;
  return releaseVlanFiltering(s, ops, before.switchIndex);
}

}  // namespace vnetplan::lnx
