// PortGroup: a VLAN segment of a Switch, in one of two shapes chosen per switch:
//   VLAN-aware (the kernel has bridge VLAN filtering and the switch does not refuse it): a VLAN of the switch's
//     bridge. Member ports get it as PVID (access), or the native VLAN untagged and the trunk's VLANs tagged; the
//     uplink carries every VLAN in use tagged. Filtering is turned on for the port groups if the switch had it off.
//   bridge-per-VLAN (no VLAN filtering, or linux.bridge.vlanFiltering: false): an access port group is a bridge
//     named after it, holding an 802.1Q sub-interface of the switch's uplink (<uplink>.<vlan>); an untagged port
//     group (or a trunk of every VLAN) puts its ports on the switch's own bridge. Other trunks need filtering.
// The port group's name and VLAN are recorded on the switch's bridge (records.h): the kernel has no name for a
// VLAN of a bridge. On a Linux bridge a port group is its VLAN: two port groups of one switch cannot share one.
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <sys/socket.h>

#include <algorithm>

#include "providers/linux/attach.h"
#include "providers/linux/caps.h"
#include "providers/linux/kind.h"
#include "providers/linux/nioc.h"
#include "providers/linux/records.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

namespace {

std::string subName(const std::string& uplink, uint16_t vid) {
  const std::string suffix = "." + std::to_string(vid);
  return uplink.substr(0, 15 - suffix.size()) + suffix;
}

// The uplink device (NIC or bond) a port group's sub-interface sits on: the switch's first.
int uplinkOf(LinuxSession& s, int switchIndex) {
  const SwitchInfo* sw = s.topo().switchAt(switchIndex);
  return sw && !sw->uplinks.empty() ? sw->uplinks.front() : 0;
}

Result<uint32_t> mtuOf(LinuxSession& s, const std::string& name) {
  auto l = s.getLink(name);
  if (!l.ok()) return l.error();
  return l->mtu;
}

bool uplinkTagged(LinuxSession& s, const PortGroupInfo& pg) {
  if (pg.vlanAware) {
    const SwitchInfo* sw = s.topo().switchAt(pg.switchIndex);
    if (!sw || !s.topo().vlans) return true;
    for (int u : sw->uplinks) {
      auto it = s.topo().vlans->find(u);
      if (it == s.topo().vlans->end()) return false;
      for (uint16_t v : pg.vlan.taggedIds()) {
        auto e = it->second.vids.find(v);
        if (e == it->second.vids.end() || e->second) return false;
      }
    }
    return true;
  }
  if (pg.vlan.mode != VlanSpec::Mode::Access) return true;
  int uplink = uplinkOf(s, pg.switchIndex);
  return !uplink || (pg.subIndex && pg.subLower == uplink && pg.subVid == pg.vlan.id);
}

// ---------------------------------------------------------------- bridge-per-VLAN plumbing

Status deleteSub(LinuxSession& s, PortGroupInfo& pg) {
  if (!pg.subIndex) return {};
  if (Status st = deleteLink(s, kPortGroupOps, pg.subName); !st.ok()) return st;
  s.topo().plumbing.erase(pg.subIndex);
  s.topo().master.erase(pg.subIndex);
  pg.subIndex = pg.subLower = 0;
  pg.subVid = 0;
  pg.subName.clear();
  return {};
}

// Notes the sub-interface `name` (ifindex `index`, on `uplink`) as the port group's, enslaved to its bridge.
Status plumbed(LinuxSession& s, PortGroupInfo& pg, const std::string& name, int index, int uplink) {
  s.remember(name, index);
  s.topo().plumbing.insert(index);
  s.topo().master[index] = pg.bridgeIndex;
  pg.subIndex = index;
  pg.subLower = uplink;
  pg.subVid = pg.vlan.id;
  pg.subName = name;
  return {};
}

// The port group's bridge holds the sub-interface <uplink>.<vlan> of its switch's uplink (none without an uplink),
// at the uplink's MTU.
Status syncPlumbing(LinuxSession& s, PortGroupInfo& pg) {
  if (pg.vlanAware || pg.vlan.mode != VlanSpec::Mode::Access || !pg.bridgeIndex) return {};
  const int uplink = uplinkOf(s, pg.switchIndex);
  if (pg.subIndex && (pg.subLower != uplink || pg.subVid != pg.vlan.id))
    if (Status st = deleteSub(s, pg); !st.ok()) return st;
  if (!uplink) return {};
  const std::string lower = s.nameOf(uplink);
  auto mtu = mtuOf(s, lower);
  if (!mtu.ok()) return s.failure("port group " + pg.name + ": uplink", mtu.error().message);
  if (pg.subIndex) {
    LinkChange c;
    c.mtu = *mtu;
    if (NlOutcome o = sendLinkChange(s.nl(), pg.subName, c); !o.ok())
      return s.failure("set the MTU of " + pg.subName + " of port group " + pg.name, o.message);
    return {};
  }
  const std::string name = subName(lower, pg.vlan.id);
  const std::string what = "create " + name + " (VLAN " + std::to_string(pg.vlan.id) + " of " + lower +
                           ") for port group " + pg.name;
  if (kernelCaps().vlanDevices == Cap::No) return s.failure(what, lacks(kernelCaps(), "802.1Q VLAN devices"));
  if (auto existing = s.getLink(name); existing.ok()) {
    // The sub-interface taken off its bridge (by hand): put back, not made again.
    if (existing->kind != "vlan" || existing->link != uplink || existing->get(IFLA_VLAN_ID) != pg.vlan.id)
      return s.failure(what, "a device named " + name + " exists and is not VLAN " + std::to_string(pg.vlan.id) +
                                 " of " + lower + "; rename or remove it");
    LinkChange c;
    c.master = pg.bridgeIndex;
    c.mtu = *mtu;
    c.up = true;
    if (NlOutcome o = sendLinkChange(s.nl(), name, c); !o.ok()) return s.failure(what + " (put it back)", o.message);
    return plumbed(s, pg, name, existing->index, uplink);
  }
  NlMsg m = newMsg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = ifi.ifi_change = IFF_UP;
  bool ok = m && nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) == 0 &&
            nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) == 0 &&
            nla_put_u32(m.get(), IFLA_LINK, static_cast<uint32_t>(uplink)) == 0 &&
            nla_put_u32(m.get(), IFLA_MASTER, static_cast<uint32_t>(pg.bridgeIndex)) == 0 &&
            nla_put_u32(m.get(), IFLA_MTU, *mtu) == 0;
  nlattr* info = ok ? nla_nest_start(m.get(), IFLA_LINKINFO) : nullptr;
  ok = info && nla_put_string(m.get(), IFLA_INFO_KIND, "vlan") == 0;
  nlattr* data = ok ? nla_nest_start(m.get(), IFLA_INFO_DATA) : nullptr;
  ok = data && nla_put_u16(m.get(), IFLA_VLAN_ID, pg.vlan.id) == 0;
  if (!ok) return s.failure(what, "cannot build the request (out of memory)");
  nla_nest_end(m.get(), data);
  nla_nest_end(m.get(), info);
  auto created = s.createLink(m.get(), name);
  if (!created.ok()) return s.failure(what, created.error().message);
  return plumbed(s, pg, name, *created, uplink);
}

// ---------------------------------------------------------------- realizing a port group

// The ports whose attachment is this port group (by the identity rule: its VLAN on its switch, or its bridge).
std::vector<int> membersOf(LinuxSession& s, const PortGroupInfo& pg) {
  std::vector<int> out;
  const Topology& t = s.topo();
  for (const auto& [index, master] : t.master) {
    if (t.infrastructure(index)) continue;
    if (pg.bridgeIndex && master == pg.bridgeIndex) {
      out.push_back(index);
    } else if (master == pg.switchIndex && !pg.bridgeIndex) {
      VlanSpec spec;
      const SwitchInfo* sw = t.switchAt(pg.switchIndex);
      if (sw && sw->vlanFiltering && t.vlans)
        if (auto it = t.vlans->find(index); it != t.vlans->end()) spec = specOf(it->second);
      if (spec == pg.vlan || (!pg.vlanAware && (pg.vlan.untagged() || pg.vlan.allVlans()))) out.push_back(index);
    }
  }
  return out;
}

// Makes the port group (records it first, so that a crash in between leaves something the next plan sees).
Result<PortGroupInfo> build(LinuxSession& s, const std::string& name, const Attrs& a) {
  const std::string what = "create port group " + name;
  auto swName = a.getString("switch");
  if (!swName) return s.failure(what, "no switch given");
  auto swIndex = s.ifindex(*swName);
  if (!swIndex.ok()) return s.failure(what + " on bridge " + *swName, swIndex.error().message);
  const SwitchInfo* sw = s.topo().switchAt(*swIndex);
  if (!sw) return s.failure(what, *swName + " is not a switch (bridge) of this target");
  std::string why;
  auto spec = vlanOf(a, &why);
  if (!spec) return s.failure(what, why);
  PortGroupInfo pg;
  pg.name = name;
  pg.switchIndex = *swIndex;
  pg.vlan = *spec;
  const KernelCaps& caps = kernelCaps();
  pg.vlanAware = sw->vlanFiltering ||
                 (!spec->untagged() && sw->mark != VfMark::Off && caps.vlanFiltering != Cap::No);
  if (pg.vlanAware) {
    if (Status st = ensureVlanFiltering(s, kPortGroupOps, *swIndex); !st.ok()) return st.error();
  } else if (spec->mode == VlanSpec::Mode::Trunk && !spec->allVlans()) {
    return s.failure(what, "a trunk of some VLANs (" + vlanText(*spec) + ") needs bridge VLAN filtering, and " +
                               (sw->mark == VfMark::Off ? std::string("switch ") + *swName +
                                                              " says linux.bridge.vlanFiltering: false"
                                                        : lacks(caps, "bridge VLAN filtering")));
  }
  if (NlOutcome o = addAltname(s.nl(), *swIndex, pgTag(name, *spec)); !o.ok())
    return s.failure(what + " (record it on bridge " + *swName + ")", o.message);
  if (!pg.vlanAware && spec->mode == VlanSpec::Mode::Access) {
    // Its own bridge, up, marked as a port group's (so that it is never taken for a Switch).
    if (auto existing = s.getLink(name); existing.ok() && existing->kind == "bridge") {
      pg.bridgeIndex = existing->index;
    } else {
      NlMsg m = newMsg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
      ifinfomsg ifi{};
      ifi.ifi_family = AF_UNSPEC;
      ifi.ifi_flags = ifi.ifi_change = IFF_UP;
      bool ok = m && nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) == 0 &&
                nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) == 0;
      nlattr* info = ok ? nla_nest_start(m.get(), IFLA_LINKINFO) : nullptr;
      ok = info && nla_put_string(m.get(), IFLA_INFO_KIND, "bridge") == 0;
      if (!ok) return s.failure(what, "cannot build the request (out of memory)");
      nla_nest_end(m.get(), info);
      auto created = s.createLink(m.get(), name);
      if (!created.ok()) return s.failure(what + " (its bridge " + name + ")", created.error().message);
      pg.bridgeIndex = *created;
    }
    s.remember(name, pg.bridgeIndex);
    if (NlOutcome o = addAltname(s.nl(), pg.bridgeIndex, pgBridgeMark(pg.bridgeIndex)); !o.ok())
      return s.failure(what + " (mark its bridge)", o.message);
    s.topo().pgBridges[pg.bridgeIndex] = name;
  }
  s.topo().portGroups[name] = pg;
  PortGroupInfo& live = s.topo().portGroups[name];
  if (Status st = syncPlumbing(s, live); !st.ok()) return st.error();
  if (live.vlanAware)
    if (Status st = syncUplinkVlans(s, kPortGroupOps, live.switchIndex); !st.ok()) return st.error();
  return live;
}

// Undoes build(): the sub-interface and bridge, the record. Members stay where they are (their own steps, or the
// caller, move them); the uplink's VLANs are the caller's to settle.
Status tearDown(LinuxSession& s, PortGroupInfo pg) {
  if (Status st = deleteSub(s, pg); !st.ok()) return st;
  if (pg.bridgeIndex) {
    if (Status st = deleteLink(s, kPortGroupOps, pg.name); !st.ok()) return st;
    s.topo().pgBridges.erase(pg.bridgeIndex);
    for (auto it = s.topo().master.begin(); it != s.topo().master.end();)
      it = it->second == pg.bridgeIndex ? s.topo().master.erase(it) : std::next(it);
  }
  if (NlOutcome o = delAltname(s.nl(), pg.switchIndex, pgTag(pg.name, pg.vlan)); !o.ok())
    return s.failure("remove port group " + pg.name + " (its record)", o.message);
  s.topo().portGroups.erase(pg.name);
  return {};
}

// Moves the ports of the old port group to what it is now (another VLAN, bridge or switch).
Status moveMembers(LinuxSession& s, const std::vector<int>& members, const PortGroupInfo& before,
                   const PortGroupInfo& now) {
  auto attachmentFor = [](const PortGroupInfo& pg) {
    Attachment at;
    at.switchIndex = pg.switchIndex;
    at.vlanAware = pg.vlanAware;
    if (pg.vlanAware) {
      at.bridge = pg.switchIndex;
      at.vlan = pg.vlan;
    } else {
      at.bridge = pg.vlan.mode == VlanSpec::Mode::Access ? pg.bridgeIndex : pg.switchIndex;
    }
    return at;
  };
  const Attachment from = attachmentFor(before), to = attachmentFor(now);
  for (int index : members) {
    const std::string name = s.nameOf(index);
    if (name.empty()) continue;
    if (from.bridge != to.bridge) {
      LinkChange c;
      c.master = to.bridge;
      if (NlOutcome o = sendLinkChange(s.nl(), name, c); !o.ok())
        return s.failure("move " + name + " of port group " + now.name, o.message);
    }
    if (Status st = settleAttachment(s, kPortGroupOps, name, index, to, from); !st.ok()) return st;
  }
  return {};
}

// ---------------------------------------------------------------- hooks

void pgObserve(LinuxSession& s, Observation& obs) {
  for (const auto& [name, pg] : s.topo().portGroups) {
    if (!pg.vlanAware && pg.vlan.mode == VlanSpec::Mode::Access && !pg.bridgeIndex) continue;  // its bridge is gone
    const SwitchInfo* sw = s.topo().switchAt(pg.switchIndex);
    if (!sw) continue;
    ObservedObject obj;
    obj.addr = Address{s.targetName(), Kind::PortGroup, name};
    obj.attrs.set("switch", sw->name);
    setVlan(obj.attrs, pg.vlan);
    obj.attrs.set("status.shape", pg.vlanAware ? "vlan-aware" : "bridge-per-vlan");
    obj.attrs.set("status.uplinkTagged", uplinkTagged(s, pg));
    obs.objects.emplace(obj.addr, std::move(obj));
  }
}

Status pgCreate(LinuxSession& s, const Step& step) {
  auto pg = build(s, step.addr.name, step.after);
  if (!pg.ok()) {
    // All or nothing: what build() made goes again, VLAN filtering it turned on included.
    if (const PortGroupInfo* made = s.topo().portGroup(step.addr.name)) {
      const int sw = made->switchIndex;
      (void)tearDown(s, *made);
      (void)releaseVlanFiltering(s, kPortGroupOps, sw);
    } else if (auto sw = step.after.getString("switch")) {
      if (auto idx = s.ifindex(*sw); idx.ok()) {
        (void)delAltname(s.nl(), *idx, pgTag(step.addr.name, vlanOf(step.after).value_or(VlanSpec{})));
        (void)releaseVlanFiltering(s, kPortGroupOps, *idx);
      }
    }
    return pg.error();
  }
  return {};
}

Status pgUpdate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const PortGroupInfo* found = s.topo().portGroup(name);
  if (!found) return s.failure("update port group " + name, "it is not recorded on any switch of this target");
  const PortGroupInfo before = *found;
  bool moved = false;
  for (const auto& p : step.changed) moved = moved || p == "switch" || p == "vlan" || p == "vlan.trunk";
  if (!moved) {
    // status.uplinkTagged: the uplink lost the port group's VLAN (or sub-interface); put it back.
    PortGroupInfo& live = s.topo().portGroups[name];
    if (Status st = syncPlumbing(s, live); !st.ok()) return st;
    if (live.vlanAware) return syncUplinkVlans(s, kPortGroupOps, live.switchIndex);
    return {};
  }
  const std::vector<int> members = membersOf(s, before);
  if (Status st = tearDown(s, before); !st.ok()) return st;
  auto now = build(s, name, step.after);
  if (!now.ok()) return now.error();
  if (Status st = moveMembers(s, members, before, *now); !st.ok()) return st;
  if (Status st = syncUplinkVlans(s, kPortGroupOps, before.switchIndex); !st.ok()) return st;
  return releaseVlanFiltering(s, kPortGroupOps, before.switchIndex);
}

Status pgRemove(LinuxSession& s, const Step& step) {
  const PortGroupInfo* found = s.topo().portGroup(step.addr.name);
  if (!found) return {};
  const PortGroupInfo pg = *found;
  if (Status st = tearDown(s, pg); !st.ok()) return st;
  if (Status st = syncUplinkVlans(s, kPortGroupOps, pg.switchIndex); !st.ok()) return st;
  return releaseVlanFiltering(s, kPortGroupOps, pg.switchIndex);
}

void pgDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  auto spec = vlanOf(step.after);
  if (spec) parts.push_back(vlanText(*spec));
  if (auto sw = step.after.getString("switch")) parts.push_back("on switch " + *sw);
}

// ---------------------------------------------------------------- plan time

void checkSwitchRef(const FieldCheck& fc) { checkInterfaceNameField(fc); }

void checkVlanField(const FieldCheck& fc) {
  Attrs one;
  one.set(fc.path, fc.value);
  std::string why;
  auto v = vlanOf(one, &why);
  if (!v) return fc.fail("field " + fc.path + ": " + why);
  if (v->mode == VlanSpec::Mode::Access && v->id == kNativeVid)
    fc.fail("field vlan: VLAN 1 is a Linux bridge's native VLAN, carried untagged; leave vlan out (or 0) for the "
            "untagged segment, or use another VLAN id");
  else if (pgTag(fc.resource.addr.name, *v).size() > 127)
    fc.fail("field " + fc.path + ": this trunk has too many separate ranges to record (at most 127 characters for "
            "'" + pgTag(fc.resource.addr.name, *v).substr(0, 40) + "...'); merge ranges");
}

// A port group's teaming is its switch's: a bond has one mode. Inherited values are dropped by normalize.
void checkTeaming(const FieldCheck& fc) {
  auto o = fc.resource.origins.find(fc.path);
  if (o != fc.resource.origins.end() && o->second.origin == Origin::Inherited) return;
  fc.fail("field " + fc.path + ": a Linux bond has one teaming policy for the whole switch; set it in the Switch's "
          "uplinks.teaming (per-port-group teaming needs OVS or ESXi)",
          "provider/unsupported");
}

void pgNormalize(Resource& r) {
  std::vector<std::string> teaming;
  for (const auto& [path, v] : r.attrs.values())
    if (path.rfind("teaming.", 0) == 0) teaming.push_back(path);
  for (const auto& p : teaming) r.attrs.erase(p), r.origins.erase(p);
}

void pgCheck(const Resource& r, const Target&, Diagnostics& diags) {
  if (!r.attrs.has("switch"))
    diags.error(r.loc, "linux: field switch is required for a PortGroup (the switch it is a segment of)",
                "provider/invalid");
}

KindTraits pgTraits() {
  KindTraits t;
  t.kind = Kind::PortGroup;
  // Its ports move with it: a new VLAN or switch cuts their traffic (adding VLANs to a trunk does not, taking
  // some away does; the traits cannot tell the two apart, so both are flagged).
  t.disruptiveOn = {"switch", "vlan", "vlan.trunk"};
  t.defaults = {{"vlan", nullptr}, {"status.uplinkTagged", true}};
  return t;
}

const KindTraits kPgTraits = pgTraits();

}  // namespace

// Port groups that do not exist yet when their ports are planned still need their shape: chosen per switch.
const KindOps kPortGroupOps{.kind = Kind::PortGroup,
                            .variant = "",
                            .label = "port group",
                            .traits = &kPgTraits,
                            .fields = {{"switch", checkSwitchRef},
                                       {"vlan", checkVlanField},
                                       {"vlan.trunk", checkVlanField},
                                       {"teaming.", checkTeaming},
                                       {"niocClass", checkGroupNiocClassField}},
                            .check = pgCheck,
                            .normalize = pgNormalize,
                            .describe = pgDescribe,
                            .observe = pgObserve,
                            .create = pgCreate,
                            .update = pgUpdate,
                            .remove = pgRemove};

}  // namespace vnetplan::lnx
