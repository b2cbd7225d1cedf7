// Switch = a standard vSwitch: its ports, MTU and CDP status, its uplinks (physical NICs) with the failover
// policy that teams them, and its security and shaping policies -- the values its port groups inherit.
#include <algorithm>

#include "providers/esxi/kind.h"

namespace vnetplan::esxi {

namespace {

using std::chrono::milliseconds;

constexpr int64_t kDefaultPorts = 128;
constexpr int64_t kDefaultMtu = 1500;
const char* const kDefaultCdp = "listen";

const KindTraits kSwitchTraits{
    .kind = Kind::Switch,
    .replaceOn = {"esxi.numPorts"},  // esxcli cannot resize a vSwitch
    // A new MTU resets the uplinks; uplink and failover changes move traffic between NICs.
    .disruptiveOn = {"mtu", "uplinks."},
    .unorderedLists = {"uplinks.nics"},  // the set of uplinks; active/standby order is the failover order
    .defaults = {{"mtu", kDefaultMtu},
                 {"esxi.numPorts", kDefaultPorts},
                 {"esxi.cdpStatus", kDefaultCdp},
                 {"uplinks.teaming.policy", "src-port"},
                 {"uplinks.teaming.failureDetection", "link"},
                 {"uplinks.teaming.notifySwitches", true},
                 {"uplinks.teaming.failback", true},
                 {"security.allowPromiscuous", false},
                 {"security.allowMacChanges", true},
                 {"security.allowForgedTransmits", true}},
    .exhaustive = true,
    .verify = {3, milliseconds(50)},
};

const std::vector<std::string> kVss = {"network", "vswitch", "standard"};

std::vector<std::string> vss(std::initializer_list<std::string> more) {
  std::vector<std::string> out = kVss;
  out.insert(out.end(), more);
  return out;
}

std::vector<std::string> with(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

void checkPorts(const FieldCheck& fc) { fc.requireInt(1, 4096, "ports"); }

void checkStp(const FieldCheck& fc) {
  if (fc.value == Json(true))
    unsupported(fc, "a standard vSwitch runs no spanning tree (it never forwards between its uplinks, so it cannot "
                    "make a loop); leave stp out or set it to false");
}

void checkUp(const FieldCheck& fc) {
  if (fc.value == Json(false)) unsupported(fc, "a standard vSwitch has no administrative state; it is always up");
}

std::vector<FieldRule> switchFields() {
  std::vector<FieldRule> f{{"mtu", checkMtu},
                           {"esxi.numPorts", checkPorts},
                           {"esxi.cdpStatus", nullptr},
                           {"uplinks.nics", checkNicList},
                           {"stp", checkStp},
                           {"up", checkUp}};
  auto p = policyFieldRules(true);
  f.insert(f.end(), p.begin(), p.end());
  return f;
}

void check(const Resource& r, const Target&, Diagnostics& diags) {
  checkPolicyBlocks(r, "uplinks.teaming.", diags);
  const auto nics = r.attrs.getStrings("uplinks.nics");
  for (const char* list : {"uplinks.teaming.active", "uplinks.teaming.standby"})
    for (const auto& n : r.attrs.getStrings(list))
      if (std::find(nics.begin(), nics.end(), n) == nics.end())
        diags.error(r.loc,
                    "esxi: " + r.addr.str() + ": " + list + " names " + n +
                        ", which is not one of uplinks.nics (a vSwitch teams only its own uplinks)",
                    "provider/invalid");
}

void normalize(Resource& r) {
  Attrs& a = r.attrs;
  // What a standard vSwitch is anyway.
  if (a.find("stp") && *a.find("stp") == Json(false)) a.erase("stp"), r.origins.erase("stp");
  if (a.find("up") && *a.find("up") == Json(true)) a.erase("up"), r.origins.erase("up");
  // No active list: every uplink that is not standby, in the order given (ESXi's own default: an uplink added to
  // a vSwitch becomes active).
  if (a.has("uplinks.nics") && !a.has("uplinks.teaming.active")) {
    auto standby = a.getStrings("uplinks.teaming.standby");
    std::vector<std::string> active;
    for (const auto& n : a.getStrings("uplinks.nics"))
      if (std::find(standby.begin(), standby.end(), n) == standby.end()) active.push_back(n);
    a.set("uplinks.teaming.active", active);
    r.origins["uplinks.teaming.active"] = AttrOrigin{Origin::Default, ""};
  }
  if (a.has("uplinks.nics") && !a.has("uplinks.teaming.standby")) {
    a.set("uplinks.teaming.standby", Json::array());
    r.origins["uplinks.teaming.standby"] = AttrOrigin{Origin::Default, ""};
  }
}

void describe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  const Attrs& a = step.after;
  if (auto nics = a.getStrings("uplinks.nics"); !nics.empty()) {
    std::string s = "uplinks";
    for (const auto& n : nics) s += " " + n;
    parts.push_back(s);
  }
  if (auto p = a.getString("uplinks.teaming.policy"); p && *p != "src-port") parts.push_back("teaming " + *p);
  if (auto n = a.getInt("esxi.numPorts"); n && *n != kDefaultPorts) parts.push_back(std::to_string(*n) + " ports");
  if (a.has("shaping.averageKbps")) parts.push_back("shaping " + std::to_string(*a.getInt("shaping.averageKbps")) + " Kbps");
}

void observe(const EsxLive& live, Observation& obs) {
  for (const auto& vs : live.host.vswitches) {
    ObservedObject o;
    o.addr = Address{live.target, Kind::Switch, vs.name};
    Attrs& a = o.attrs;
    a.set("mtu", vs.mtu);
    a.set("esxi.numPorts", vs.configuredPorts);
    a.set("esxi.cdpStatus", vs.cdpStatus);
    a.set("uplinks.nics", vs.uplinks);
    if (vs.policiesRead) {
      failoverAttrs(vs.failover, "uplinks.teaming.", a);
      securityAttrs(vs.security, a);
      shapingAttrs(vs.shaping, a);
    }
    obs.objects[o.addr] = std::move(o);
  }
}

// Uplinks must be physical NICs of the host: said before anything runs, with the NICs it has.
Status checkUplinks(const StepCommands& ctx, const std::vector<std::string>& nics) {
  if (!ctx.live) return {};
  for (const auto& n : nics)
    if (!ctx.live->nic(n))
      return err("uplinks.nics: " + n + " is not a physical NIC of this host (it has " + ctx.live->nicNames() + ")");
  return {};
}

Status create(StepCommands& ctx, const Step& step) {
  const std::string& name = step.addr.name;
  const Attrs& a = step.after;
  const auto nics = a.getStrings("uplinks.nics");
  if (Status s = checkUplinks(ctx, nics); !s) return s;
  const std::string v = "--vswitch-name=" + name;
  auto add = vss({"add", v});
  if (auto p = a.getInt("esxi.numPorts"); p && *p != kDefaultPorts) add.push_back("--ports=" + std::to_string(*p));
  ctx.add(add);
  auto set = vss({"set", v});
  if (auto m = a.getInt("mtu"); m && *m != kDefaultMtu) set.push_back("--mtu=" + std::to_string(*m));
  if (auto c = a.getString("esxi.cdpStatus"); c && *c != kDefaultCdp) set.push_back("--cdp-status=" + *c);
  if (set.size() > 5) ctx.add(set);
  for (const auto& n : nics) ctx.add(vss({"uplink", "add", "--uplink-name=" + n, v}));
  // A new vSwitch teams its uplinks src-port, link status, notify, failback, all active in the order added.
  const bool freshTeaming = a.getString("uplinks.teaming.policy").value_or("src-port") == "src-port" &&
                            a.getString("uplinks.teaming.failureDetection").value_or("link") == "link" &&
                            a.getBool("uplinks.teaming.notifySwitches").value_or(true) &&
                            a.getBool("uplinks.teaming.failback").value_or(true) &&
                            a.getStrings("uplinks.teaming.active") == nics &&
                            a.getStrings("uplinks.teaming.standby").empty();
  if (!freshTeaming) ctx.add(with(vss({"policy", "failover", "set", v}), failoverSetArgs(a, "uplinks.teaming.")));
  const bool freshSecurity = a.getBool("security.allowPromiscuous").value_or(false) == false &&
                             a.getBool("security.allowMacChanges").value_or(true) &&
                             a.getBool("security.allowForgedTransmits").value_or(true);
  if (!freshSecurity) ctx.add(with(vss({"policy", "security", "set", v}), securitySetArgs(a, false)));
  if (a.has("shaping.averageKbps")) ctx.add(with(vss({"policy", "shaping", "set", v}), shapingSetArgs(a)));
  return {};
}

Status update(StepCommands& ctx, const Step& step) {
  const std::string v = "--vswitch-name=" + step.addr.name;
  const Attrs& a = step.after;
  auto set = vss({"set", v});
  if (changed(step, "mtu")) set.push_back("--mtu=" + std::to_string(a.getInt("mtu").value_or(kDefaultMtu)));
  if (changed(step, "esxi.cdpStatus")) set.push_back("--cdp-status=" + a.getString("esxi.cdpStatus").value_or(kDefaultCdp));
  if (set.size() > 5) ctx.add(set);

  const auto want = a.getStrings("uplinks.nics"), have = step.before.getStrings("uplinks.nics");
  std::vector<std::string> adds, removes;
  for (const auto& n : want)
    if (std::find(have.begin(), have.end(), n) == have.end()) adds.push_back(n);
  for (const auto& n : have)
    if (std::find(want.begin(), want.end(), n) == want.end()) removes.push_back(n);
  if (Status s = checkUplinks(ctx, adds); !s) return s;
  for (const auto& n : adds) ctx.add(vss({"uplink", "add", "--uplink-name=" + n, v}));
  // The failover order names only uplinks the vSwitch has: set it once the new ones are in and before the old
  // ones go (a removed uplink is simply unused meanwhile).
  if (changed(step, "uplinks.teaming") || !adds.empty() || !removes.empty()) {
    Attrs t = a;
    if (!t.has("uplinks.teaming.active")) t.set("uplinks.teaming.active", Json::array());
    ctx.add(with(vss({"policy", "failover", "set", v}), failoverSetArgs(t, "uplinks.teaming.")));
  }
  for (const auto& n : removes) ctx.add(vss({"uplink", "remove", "--uplink-name=" + n, v}));
  if (changed(step, "security")) ctx.add(with(vss({"policy", "security", "set", v}), securitySetArgs(a, false)));
  if (changed(step, "shaping")) ctx.add(with(vss({"policy", "shaping", "set", v}), shapingSetArgs(a)));
  return {};
}

Status remove(StepCommands& ctx, const Step& step) {
  ctx.add(vss({"remove", "--vswitch-name=" + step.addr.name}));
  return {};
}

}  // namespace

const KindOps kVswitchOps{
    .kind = Kind::Switch,
    .variant = "",
    .label = "vSwitch",
    .traits = &kSwitchTraits,
    .fields = switchFields(),
    .check = check,
    .normalize = normalize,
    .describe = describe,
    .observe = observe,
    .create = create,
    .update = update,
    .remove = remove,
};

}  // namespace vnetplan::esxi
