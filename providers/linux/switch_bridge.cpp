// Switch = Linux bridge.
//
// libnl-3.7's bridge support covers bridge *ports* (IFLA_PROTINFO), not the bridge device's own IFLA_BR_*
// settings, so bridge requests are built as raw RTM_NEWLINK messages with libnl's nlmsg/nla API: the create
// carries name, up flag and every IFLA_BR_* setting in one message.
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>

#include "providers/linux/attach.h"
#include "providers/linux/caps.h"
#include "providers/linux/kind.h"
#include "providers/linux/nioc.h"
#include "providers/linux/records.h"
#include "providers/linux/session.h"
#include "providers/linux/uplinks.h"

namespace vnetplan::lnx {

const std::vector<BridgeOption>& bridgeOptions() {
  // Ranges are the kernel's (802.1D) where it enforces them; STP timers are whole seconds.
  static const std::vector<BridgeOption> options{
      {"stp", IFLA_BR_STP_STATE, 4, false, true, 0, 1, 0},
      {"linux.bridge.forwardDelay", IFLA_BR_FORWARD_DELAY, 4, true, false, 2, 30, 15},
      {"linux.bridge.helloTime", IFLA_BR_HELLO_TIME, 4, true, false, 1, 10, 2},
      {"linux.bridge.maxAge", IFLA_BR_MAX_AGE, 4, true, false, 6, 40, 20},
      {"linux.bridge.ageingTime", IFLA_BR_AGEING_TIME, 4, true, false, 0, 1000000, 300},
      {"linux.bridge.priority", IFLA_BR_PRIORITY, 2, false, false, 0, 65535, 32768},
  };
  return options;
}

namespace {

constexpr int64_t kMinMtu = 68;

// The kernel value of an option from its manifest value (absent = the kernel default).
uint32_t kernelValue(const BridgeOption& opt, const Attrs& a) {
  int64_t v = opt.kernelDefault;
  if (opt.boolean) {
    if (auto b = a.getBool(opt.path)) v = *b ? 1 : 0;
  } else if (auto i = a.getInt(opt.path)) {
    v = *i;
  }
  return static_cast<uint32_t>(opt.seconds ? v * 100 : v);
}

int putOption(nl_msg* m, const BridgeOption& opt, uint32_t value) {
  switch (opt.bytes) {
    case 1: return nla_put_u8(m, opt.ifla, static_cast<uint8_t>(value));
    case 2: return nla_put_u16(m, opt.ifla, static_cast<uint16_t>(value));
    default: return nla_put_u32(m, opt.ifla, value);
  }
}

// IFLA_LINKINFO { kind "bridge", data { the options selected by `pick` } }.
template <typename Pick>
int putLinkInfo(nl_msg* m, const Attrs& a, Pick pick, int vlanFiltering = -1) {
  nlattr* info = nla_nest_start(m, IFLA_LINKINFO);
  if (!info || nla_put_string(m, IFLA_INFO_KIND, "bridge") < 0) return -1;
  nlattr* data = nla_nest_start(m, IFLA_INFO_DATA);
  if (!data) return -1;
  for (const auto& opt : bridgeOptions())
    if (pick(opt) && putOption(m, opt, kernelValue(opt, a)) < 0) return -1;
  if (vlanFiltering >= 0 && nla_put_u8(m, IFLA_BR_VLAN_FILTERING, static_cast<uint8_t>(vlanFiltering)) < 0) return -1;
  nla_nest_end(m, data);
  nla_nest_end(m, info);
  return 0;
}

// A bridge made for a port group (bridge-per-VLAN shape) belongs to its PortGroup, and one made for a Network to
// the Network, not a Switch of its own.
bool bridgeMatches(const LinkInfo& l) {
  if (l.kind != "bridge") return false;
  for (const auto& a : l.altnames) {
    if (isPgBridgeMark(a)) return false;
    if (auto n = parseNetMark(a); n && n->mode != "bridged") return false;  // a Network's own bridge
  }
  return true;
}

void bridgeAttrs(LinuxSession& s, const LinkInfo& l, Attrs& a) {
  for (const auto& opt : bridgeOptions()) {
    auto it = l.bridge.find(opt.ifla);
    if (it == l.bridge.end()) continue;
    uint64_t v = it->second;
    if (opt.boolean) {
      a.set(opt.path, v != 0);  // stp_state 1 (kernel STP) or 2 (user-space STP daemon)
    } else if (opt.seconds) {
      // Whole seconds as int; a value someone set in centiseconds stays visible as a fraction.
      if (v % 100 == 0)
        a.set(opt.path, static_cast<int64_t>(v / 100));
      else
        a.set(opt.path, static_cast<double>(v) / 100.0);
    } else {
      a.set(opt.path, static_cast<int64_t>(v));
    }
  }
  // VLAN filtering the switch asked for (true), refused (false: bridge-per-VLAN port groups), or left to its port
  // groups and VLAN ports (null: on while they need it, which the switch's own attribute does not show).
  auto vf = l.bridge.find(IFLA_BR_VLAN_FILTERING);
  const bool on = vf != l.bridge.end() && vf->second != 0;
  const SwitchInfo* sw = s.topo().switchAt(l.index);
  const VfMark mark = sw ? sw->mark : VfMark::None;
  a.set("linux.bridge.vlanFiltering", on && mark != VfMark::Auto ? Json(true)
                                      : !on && mark == VfMark::Off ? Json(false)
                                                                    : Json(nullptr));
  // The switch carries frames as large as its smallest uplink passes: an uplink below the bridge's MTU shows.
  uint32_t uplinkMtu = 0;
  observeUplinks(s, l, a, &uplinkMtu);
  if (uplinkMtu && uplinkMtu < l.mtu) a.set("mtu", static_cast<int64_t>(uplinkMtu));
  observeNioc(s, l, a);
}

Status bridgeCreate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const Attrs& a = step.after;
  const std::string what = "create bridge " + name;
  bool up = a.getBool("up").value_or(true);
  auto mtu = a.getInt("mtu");

  NlMsg m = newMsg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (up) {
    ifi.ifi_flags = IFF_UP;
    ifi.ifi_change = IFF_UP;
  }
  bool built = m && nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) == 0 &&
               nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) == 0;
  // A bridge whose MTU was only given at creation follows its ports' smallest MTU as they join; only an MTU
  // *change* pins it (the kernel's "MTU set by user" flag). So the bridge is created one off the wanted MTU
  // and changed to it right after: two messages, but the declared MTU holds whatever ports join later.
  if (built && mtu) built = nla_put_u32(m.get(), IFLA_MTU, static_cast<uint32_t>(*mtu == kMinMtu ? *mtu + 1 : *mtu - 1)) == 0;
  const std::optional<bool> vlanFiltering = a.getBool("linux.bridge.vlanFiltering");
  if (built)
    built = putLinkInfo(m.get(), a, [&](const BridgeOption& opt) { return a.has(opt.path); },
                        vlanFiltering == true ? 1 : -1) == 0;
  if (!built) return s.failure(what, "cannot build the request (out of memory)");

  auto created = s.createLink(m.get(), name);
  if (!created.ok()) return s.failure(what, created.error().message);
  const int index = *created;
  SwitchInfo info;
  info.name = name;
  info.vlanFiltering = vlanFiltering == true;
  info.mark = vlanFiltering == false ? VfMark::Off : VfMark::None;
  s.topo().switches[index] = info;

  // Anything failing from here removes the half-made bridge (and gives its NICs back), so a create is all or
  // nothing.
  auto undo = [&](Status st) {
    Step back = step;
    back.action = StepAction::Delete;
    back.before = step.after;
    (void)removeUplinks(s, back, index);
    (void)deleteLink(s, kBridgeOps, name);
    s.topo().switches.erase(index);
    return st;
  };
  if (vlanFiltering == false)
    if (NlOutcome r = addAltname(s.nl(), index, vfMark(index, VfMark::Off)); !r.ok())
      return undo(s.failure(what + " (record linux.bridge.vlanFiltering: false)", r.message));
  if (mtu) {
    LinkChange c;
    c.mtu = static_cast<uint32_t>(*mtu);
    if (Status st = changeLink(s, kBridgeOps, name, c, "create"); !st.ok()) return undo(st);
  }
  if (Status st = createUplinks(s, step, index); !st.ok()) return undo(st);
  auto addrs = a.getStrings("addresses");
  if (!addrs.empty())
    if (Status st = addAddresses(s, kBridgeOps, name, index, addrs); !st.ok()) return undo(st);
  if (a.getBool("nioc.enabled") == true)
    if (Status st = syncNioc(s, name, a, index); !st.ok()) {
      (void)dropNioc(s, name, niocDevice(s, index));
      return undo(st);
    }
  return {};
}

// linux.bridge.vlanFiltering: true / false / left to the port groups (null).
Status updateVlanFiltering(LinuxSession& s, const Step& step, int index) {
  const std::string what = "update bridge " + step.addr.name + ": linux.bridge.vlanFiltering";
  auto it = s.topo().switches.find(index);
  if (it == s.topo().switches.end()) return s.failure(what, "the bridge is not known as a switch");
  SwitchInfo& sw = it->second;
  bool portGroups = false;
  for (const auto& [n, pg] : s.topo().portGroups) portGroups = portGroups || pg.switchIndex == index;
  const bool inUse = portGroups || !s.topo().vlansInUse(index).empty();
  const std::optional<bool> want = step.after.getBool("linux.bridge.vlanFiltering");
  auto mark = [&](VfMark m) -> Status {
    for (VfMark old : {VfMark::Auto, VfMark::Off})
      if (old != m && sw.mark == old)
        if (NlOutcome o = delAltname(s.nl(), index, vfMark(index, old)); !o.ok()) return s.failure(what, o.message);
    if (m != VfMark::None && sw.mark != m)
      if (NlOutcome o = addAltname(s.nl(), index, vfMark(index, m)); !o.ok()) return s.failure(what, o.message);
    sw.mark = m;
    return {};
  };
  if (want && *want != sw.vlanFiltering && portGroups)
    return s.failure(what, std::string("its port groups are built ") +
                               (sw.vlanFiltering ? "as VLANs of the bridge" : "as bridges of their own") +
                               "; changing the shape under them is not supported: remove the port groups first");
  if (want == true) {
    if (kernelCaps().vlanFiltering == Cap::No) return s.failure(what, lacks(kernelCaps(), "bridge VLAN filtering"));
    if (Status st = mark(VfMark::None); !st.ok()) return st;
    if (!sw.vlanFiltering) return setVlanFiltering(s, kBridgeOps, index, true);
    return {};
  }
  if (want == false) {
    if (sw.vlanFiltering && inUse) return s.failure(what, "ports of the bridge still use VLANs of it");
    if (sw.vlanFiltering)
      if (Status st = setVlanFiltering(s, kBridgeOps, index, false); !st.ok()) return st;
    return mark(VfMark::Off);
  }
  if (sw.mark == VfMark::Off)
    if (Status st = mark(VfMark::None); !st.ok()) return st;
  if (sw.vlanFiltering && sw.mark != VfMark::Auto) {
    if (inUse) return mark(VfMark::Auto);  // its port groups keep it on, and turn it off when they go
    return setVlanFiltering(s, kBridgeOps, index, false);
  }
  return {};
}

Status bridgeUpdate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const Attrs& a = step.after;
  const std::string what = "update bridge " + name;
  bool linkChange = false, optionChange = false, uplinks = false, nioc = false, uplinkSet = false;
  for (const auto& path : step.changed) {
    if (path == "mtu" || path == "up") {
      linkChange = true;
      uplinks = uplinks || path == "mtu";
    } else if (path == "addresses" || path == "linux.bridge.vlanFiltering") {
      continue;
    } else if (niocPath(path)) {
      nioc = true;
    } else if (uplinkPath(path)) {
      uplinks = uplinkSet = true;
    } else {
      bool known = false;
      for (const auto& opt : bridgeOptions()) known = known || path == opt.path;
      if (!known) return s.failure(what, "changing " + path + " is not supported by the linux provider");
      optionChange = true;
    }
  }
  if (linkChange || optionChange) {
    // One RTM_NEWLINK: MTU, up/down and the changed IFLA_BR_* settings together.
    NlMsg m = newMsg(RTM_NEWLINK, 0);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    if (changes(step, "up")) {
      ifi.ifi_flags = a.getBool("up").value_or(true) ? IFF_UP : 0;
      ifi.ifi_change = IFF_UP;
    }
    bool built = m && nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) == 0 &&
                 nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) == 0;
    if (built && changes(step, "mtu"))
      if (auto mtu = a.getInt("mtu")) built = nla_put_u32(m.get(), IFLA_MTU, static_cast<uint32_t>(*mtu)) == 0;
    if (built && optionChange)
      built = putLinkInfo(m.get(), a, [&](const BridgeOption& opt) { return changes(step, opt.path); }) == 0;
    if (!built) return s.failure(what, "cannot build the request (out of memory)");
    NlOutcome o = s.nl().request(m.get());
    if (!o.ok()) return s.failure(what, o.message);
  }
  if (uplinks || nioc || changes(step, "linux.bridge.vlanFiltering")) {
    auto index = s.ifindex(name);
    if (!index.ok()) return s.failure(what, index.error().message);
    if (!s.topo().switchAt(*index)) {  // adopted and not seen as a switch before (cannot happen after an observe)
      SwitchInfo info;
      info.name = name;
      s.topo().switches[*index] = info;
    }
    if (changes(step, "linux.bridge.vlanFiltering"))
      if (Status st = updateVlanFiltering(s, step, *index); !st.ok()) return st;
    // The tree follows the uplink: off the one that leaves, onto the one that comes.
    const int former = niocDevice(s, *index);
    if (uplinks)
      if (Status st = updateUplinks(s, step, *index); !st.ok()) return st;
    if (nioc || (uplinkSet && (a.getBool("nioc.enabled") == true || step.before.getBool("nioc.enabled") == true)))
      if (Status st = syncNioc(s, name, a, *index, former); !st.ok()) return st;
  }
  if (changes(step, "addresses")) return syncAddresses(s, kBridgeOps, name, step.before, a);
  return {};
}

Status bridgeRemove(LinuxSession& s, const Step& step) {
  auto index = s.ifindex(step.addr.name);
  if (index.ok() && step.before.getBool("nioc.enabled") == true)  // the NIC is given back without the tree
    if (Status st = dropNioc(s, step.addr.name, niocDevice(s, *index)); !st.ok()) return st;
  if (index.ok())
    if (Status st = removeUplinks(s, step, *index); !st.ok()) return st;
  Status st = deleteLink(s, kBridgeOps, step.addr.name);
  if (index.ok()) {
    Topology& t = s.topo();
    t.switches.erase(*index);
    for (auto it = t.portGroups.begin(); it != t.portGroups.end();)
      it = it->second.switchIndex == *index ? t.portGroups.erase(it) : std::next(it);
    for (auto it = t.master.begin(); it != t.master.end();) it = it->second == *index ? t.master.erase(it) : std::next(it);
  }
  return st;
}

void bridgeObserve(LinuxSession& s, Observation& obs) { s.observeLinks(obs, kBridgeOps, bridgeMatches, bridgeAttrs); }

void bridgeDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  describeUplinks(step, parts);
  if (step.action != StepAction::Create) return;
  if (auto vf = step.after.getBool("linux.bridge.vlanFiltering")) parts.push_back(*vf ? "VLAN-aware" : "no VLAN filtering");
  for (const auto& opt : bridgeOptions()) {
    const Json* v = step.after.find(opt.path);
    if (!v) continue;
    std::string label = opt.path;
    if (auto dot = label.rfind('.'); dot != std::string::npos) label = label.substr(dot + 1);
    if (opt.boolean && v->is_boolean())
      parts.push_back(label + (v->get<bool>() ? " on" : " off"));
    else
      parts.push_back(label + " " + v->dump() + (opt.seconds ? "s" : ""));
  }
}

const BridgeOption* bridgeOption(const std::string& path) {
  for (const auto& opt : bridgeOptions())
    if (path == opt.path) return &opt;
  return nullptr;
}

void checkBridgeOption(const FieldCheck& fc) {
  const BridgeOption* opt = bridgeOption(fc.path);
  if (opt->boolean)
    fc.requireBool();
  else
    fc.requireInt(opt->min, opt->max, opt->seconds ? "seconds" : "");
}

void bridgeNormalize(Resource& r) {
  normalizeUplinks(r);
  normalizeNioc(r);
  for (const auto& opt : bridgeOptions()) {
    if (opt.boolean) continue;
    const Json* v = r.attrs.find(opt.path);
    if (!v || v->is_number_integer()) continue;
    if (v->is_number_float() && v->get<double>() == static_cast<double>(static_cast<int64_t>(v->get<double>())))
      r.attrs.set(opt.path, static_cast<int64_t>(v->get<double>()));
    else if (v->is_string() && !v->get<std::string>().empty() && v->get<std::string>().size() <= 18 &&
             v->get<std::string>().find_first_not_of("0123456789") == std::string::npos)
      r.attrs.set(opt.path, std::stoll(v->get<std::string>()));
  }
}

void checkVlanFiltering(const FieldCheck& fc) {
  if (!fc.requireBool()) return;
  const KernelCaps& caps = kernelCaps();
  if (fc.value.get<bool>() && caps.vlanFiltering == Cap::No)
    fc.fail("linux.bridge.vlanFiltering: true needs bridge VLAN filtering, but " + lacks(caps, "bridge VLAN filtering"),
            "provider/unsupported");
}

std::vector<FieldRule> bridgeFields() {
  std::vector<FieldRule> fields;
  for (const auto& opt : bridgeOptions()) fields.push_back({opt.path, checkBridgeOption});
  fields.push_back({"linux.bridge.vlanFiltering", checkVlanFiltering});
  for (const auto& f : uplinkFields()) fields.push_back(f);
  for (const auto& f : niocFields()) fields.push_back(f);
  return fields;
}

void bridgeCheck(const Resource& r, const Target& t, Diagnostics& diags) {
  checkUplinks(r, t, diags);
  checkNioc(r, diags);
}

KindTraits bridgeTraits() {
  KindTraits t;
  t.kind = Kind::Switch;
  // Enabling STP sends every port through listening/learning; a NIC joining or leaving, a bond rebuilt for another
  // mode or LACP rate and a change of VLAN filtering cut or re-learn the switch's traffic.
  t.disruptiveOn = {"up", "stp", "uplinks.nics", "linux.bond.name", "linux.bond.mode", "uplinks.teaming.policy",
                    "uplinks.teaming.lacp.rate", "linux.bridge.vlanFiltering"};
  // A NIOC tree is rebuilt whole: the uplink's queue is dropped for a moment.
  t.disruptiveOn.push_back("nioc.");
  t.unorderedLists = {"addresses", "uplinks.nics", "uplinks.teaming.standby", "linux.bond.arpIpTarget"};
  // Left out of a manifest: the bridge is up, has no host addresses and no uplinks.
  t.defaults = {{"up", true}, {"addresses", Json::array()}, {"uplinks.nics", Json::array()}};
  // A bond's NICs take a moment to join and settle.
  t.verify = VerifyPolicy{8, std::chrono::milliseconds(100)};
  return t;
}

const KindTraits kBridgeTraits = bridgeTraits();

}  // namespace

const KindOps kBridgeOps{.kind = Kind::Switch,
                         .variant = "",
                         .label = "bridge",
                         .traits = &kBridgeTraits,
                         .fields = bridgeFields(),
                         .check = bridgeCheck,
                         .normalize = bridgeNormalize,
                         .describe = bridgeDescribe,
                         .observe = bridgeObserve,
                         .create = bridgeCreate,
                         .update = bridgeUpdate,
                         .remove = bridgeRemove};

}  // namespace vnetplan::lnx
