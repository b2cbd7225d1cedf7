// PortGroup = a port group of a standard vSwitch: its VLAN (0 none, 1-4094, 4095 all: guest tagging) and the
// policy fields it overrides. Every other field inherits the vSwitch's -- on ESXi itself (`--use-vswitch`), not by
// copying its values -- so a later change of the vSwitch reaches the port group as it does on ESXi.
#include "providers/esxi/kind.h"

namespace vnetplan::esxi {

namespace {

using std::chrono::milliseconds;

const KindTraits kPortGroupTraits{
    .kind = Kind::PortGroup,
    .replaceOn = {"switch"},  // esxcli cannot move a port group to another vSwitch
    .disruptiveOn = {"vlan", "teaming."},
    .unorderedLists = {},
    .defaults = {},
    // A live override the manifest does not have is a difference: the apply makes the field inherit again.
    .exhaustive = true,
    .verify = {3, milliseconds(50)},
};

const std::vector<std::string> kPg = {"network", "vswitch", "standard", "portgroup"};

std::vector<std::string> pg(std::initializer_list<std::string> more, const std::vector<std::string>& tail = {}) {
  std::vector<std::string> out = kPg;
  out.insert(out.end(), more);
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

void checkSwitch(const FieldCheck& fc) {
  if (fc.requireString() && fc.value.get<std::string>().size() > 32)
    fc.fail("field switch: '" + fc.value.get<std::string>() + "' is longer than a vSwitch name can be (32 characters)");
}

void checkVlan(const FieldCheck& fc) { fc.requireInt(0, 4095, ""); }

void checkTrunk(const FieldCheck& fc) {
  unsupported(fc, "a standard port group carries one VLAN (vlan: N), or every VLAN to the guest (vlan: 4095); VLAN "
                  "ranges need a vSphere Distributed Switch");
}

std::vector<FieldRule> groupFields() {
  std::vector<FieldRule> f{{"switch", checkSwitch}, {"vlan", checkVlan}, {"vlan.trunk", checkTrunk}};
  auto p = policyFieldRules(false);
  f.insert(f.end(), p.begin(), p.end());
  return f;
}

void check(const Resource& r, const Target&, Diagnostics& diags) {
  checkPolicyBlocks(r, "teaming.", diags);
  if (r.attrs.has("teaming.standby") && !isInherited(r, "teaming.standby") && !r.attrs.has("teaming.active"))
    diags.error(r.loc,
                "esxi: " + r.addr.str() +
                    ": teaming.standby needs teaming.active too: a port group overrides its vSwitch's failover order "
                    "as a whole (active and standby together)",
                "provider/invalid");
}

void normalize(Resource& r) {
  if (auto v = r.attrs.getInt("vlan"); v && *v == 0) r.attrs.erase("vlan");
  normalizeGroupPolicies(r);
}

void describe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action == StepAction::Delete) {
    if (auto s = step.before.getString("switch")) parts.push_back("from vSwitch " + *s);
    return;
  }
  if (step.action != StepAction::Create) return;
  const Attrs& a = step.after;
  if (auto s = a.getString("switch")) parts.push_back("on vSwitch " + *s);
  if (auto v = a.getInt("vlan")) parts.push_back(*v == 4095 ? "all VLANs (4095)" : "VLAN " + std::to_string(*v));
  std::string overrides;
  for (const char* p : {"security", "teaming", "shaping"})
    if (hasUnder(a, std::string(p) + ".")) overrides += (overrides.empty() ? "" : ", ") + std::string(p);
  if (!overrides.empty()) parts.push_back("overrides " + overrides);
}

void observe(const EsxLive& live, Observation& obs) {
  for (const auto& p : live.host.portgroups) {
    ObservedObject o;
    o.addr = Address{live.target, Kind::PortGroup, p.name};
    Attrs& a = o.attrs;
    a.set("switch", p.vswitch);
    if (p.vlan != 0) a.set("vlan", p.vlan);
    if (p.policiesRead) {
      // Only what the port group overrides; the rest is its vSwitch's.
      Attrs sec;
      securityAttrs(p.security, sec);
      if (p.ovPromiscuous) a.set("security.allowPromiscuous", *sec.find("security.allowPromiscuous"));
      if (p.ovMacChange) a.set("security.allowMacChanges", *sec.find("security.allowMacChanges"));
      if (p.ovForgedTransmits) a.set("security.allowForgedTransmits", *sec.find("security.allowForgedTransmits"));
      Attrs fo;
      failoverAttrs(p.failover, "teaming.", fo);
      if (p.ovLoadBalancing) a.set("teaming.policy", *fo.find("teaming.policy"));
      if (p.ovFailureDetection) a.set("teaming.failureDetection", *fo.find("teaming.failureDetection"));
      if (p.ovNotifySwitches) a.set("teaming.notifySwitches", *fo.find("teaming.notifySwitches"));
      if (p.ovFailback) a.set("teaming.failback", *fo.find("teaming.failback"));
      if (p.ovUplinks) {
        a.set("teaming.active", *fo.find("teaming.active"));
        a.set("teaming.standby", *fo.find("teaming.standby"));
      }
      if (p.ovShaping) {
        if (p.shaping.enabled) shapingAttrs(p.shaping, a);
        // Shaping switched off for this group alone: the portable vocabulary has no word for it, so it shows as
        // this (and differs from every manifest: the apply makes the group inherit again).
        else a.set("shaping.enabled", false);
      }
    }
    obs.objects[o.addr] = std::move(o);
  }
}

Status create(StepCommands& ctx, const Step& step) {
  const Attrs& a = step.after;
  const std::string p = "--portgroup-name=" + step.addr.name;
  auto sw = a.getString("switch");
  if (!sw) return err("a port group needs its switch");
  ctx.add(pg({"add", p, "--vswitch-name=" + *sw}));
  if (auto v = a.getInt("vlan"); v && *v != 0) ctx.add(pg({"set", p, "--vlan-id=" + std::to_string(*v)}));
  // A new port group inherits everything: only its overrides are set.
  if (hasUnder(a, "security.")) ctx.add(pg({"policy", "security", "set", p}, securitySetArgs(a, true)));
  if (hasUnder(a, "teaming.")) ctx.add(pg({"policy", "failover", "set", p}, failoverSetArgs(a, "teaming.")));
  if (a.has("shaping.averageKbps")) ctx.add(pg({"policy", "shaping", "set", p}, shapingSetArgs(a)));
  return {};
}

Status update(StepCommands& ctx, const Step& step) {
  const Attrs& a = step.after;
  const std::string p = "--portgroup-name=" + step.addr.name;
  if (changed(step, "vlan")) ctx.add(pg({"set", p, "--vlan-id=" + std::to_string(a.getInt("vlan").value_or(0))}));
  // --use-vswitch first makes every field of the policy inherit, then the overrides the manifest has are set: one
  // command leaves the policy exactly as declared, whatever was overridden before.
  if (changed(step, "security"))
    ctx.add(pg({"policy", "security", "set", p, "--use-vswitch"}, securitySetArgs(a, true)));
  if (changed(step, "teaming"))
    ctx.add(pg({"policy", "failover", "set", p, "--use-vswitch"}, failoverSetArgs(a, "teaming.")));
  if (changed(step, "shaping")) {
    auto args = pg({"policy", "shaping", "set", p, "--use-vswitch"});
    if (a.has("shaping.averageKbps")) args = pg({"policy", "shaping", "set", p, "--use-vswitch"}, shapingSetArgs(a));
    ctx.add(args);
  }
  return {};
}

Status remove(StepCommands& ctx, const Step& step) {
  auto sw = step.before.getString("switch");
  if (!sw) return err("the port group's vSwitch is not known");
  ctx.add(pg({"remove", "--portgroup-name=" + step.addr.name, "--vswitch-name=" + *sw}));
  return {};
}

}  // namespace

const KindOps kPortGroupOps{
    .kind = Kind::PortGroup,
    .variant = "",
    .label = "port group",
    .traits = &kPortGroupTraits,
    .fields = groupFields(),
    .check = check,
    .normalize = normalize,
    .describe = describe,
    .observe = observe,
    .create = create,
    .update = update,
    .remove = remove,
};

}  // namespace vnetplan::esxi
