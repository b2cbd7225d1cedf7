#include "providers/linux/policy_security.h"

#include "providers/linux/nioc.h"
#include "providers/linux/shaping.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

namespace {

const char* const kPortTablePrefix = "vnp-port-";
std::string tableOf(const std::string& port) { return kPortTablePrefix + port; }

Json meta(const char* key, const std::string& v) {
  return Json{{"match", {{"op", "=="}, {"left", {{"meta", {{"key", key}}}}}, {"right", v}}}};
}
Json ether(const char* field, const char* op, const std::string& mac) {
  return Json{{"match", {{"op", op}, {"left", {{"payload", {{"protocol", "ether"}, {"field", field}}}}}, {"right", mac}}}};
}

// The table's entries for a port whose guest MAC is `mac`, in `nft -j list` shape.
std::vector<Json> entries(const std::string& port, const std::string& mac, bool forged, bool macChanges) {
  std::vector<Json> out;
  if ((forged && macChanges) || mac.empty()) return out;
  const std::string t = tableOf(port);
  out.push_back(Json{{"table", {{"family", "bridge"}, {"name", t}}}});
  // Frames bridged to other ports pass the forward hook; frames for the host itself the input hook.
  for (const char* hook : {"forward", "input"})
    out.push_back(Json{{"chain",
                        {{"family", "bridge"}, {"table", t}, {"name", std::string("filter_") + hook}, {"type", "filter"},
                         {"hook", hook}, {"prio", 0}, {"policy", "accept"}}}});
  auto rule = [&](const char* chain, const char* comment, Json expr) {
    out.push_back(Json{{"rule", {{"family", "bridge"}, {"table", t}, {"chain", chain}, {"comment", comment}, {"expr", expr}}}});
  };
  for (const char* chain : {"filter_forward", "filter_input"})
    if (!forged)
      rule(chain, "allowForgedTransmits: false",
           Json::array({meta("iifname", port), ether("saddr", "!=", mac), Json{{"drop", nullptr}}}));
  if (!macChanges)
    rule("filter_forward", "allowMacChanges: false",
         Json::array({meta("oifname", port),
                      Json{{"match",
                            {{"op", "=="},
                             {"left", {{"&", Json::array({Json{{"payload", {{"protocol", "ether"}, {"field", "daddr"}}}},
                                                          "01:00:00:00:00:00"})}}},
                             {"right", "00:00:00:00:00:00"}}}},
                      ether("daddr", "!=", mac), Json{{"drop", nullptr}}}));
  // Rules in chain order, as the listing gives them.
  std::stable_partition(out.begin(), out.end(), [](const Json& e) { return !e.contains("rule") || e["rule"]["chain"] == "filter_forward"; });
  return out;
}

void checkFlag(const FieldCheck& fc) { fc.requireBool(); }

void checkPromiscuous(const FieldCheck& fc) {
  if (!fc.requireBool()) return;
  if (fc.value.get<bool>())
    fc.fail("security.allowPromiscuous: true cannot be honoured on a Linux bridge port: it receives its own unicast, "
            "floods and broadcasts, never the other ports' traffic (leave it false)",
            "provider/unsupported");
}

}  // namespace

void checkSecurityField(const FieldCheck& fc) {
  if (fc.path == "security.allowPromiscuous") return checkPromiscuous(fc);
  checkFlag(fc);
}

const std::vector<FieldRule>& securityFields() {
  static const std::vector<FieldRule> fields{{"security.allowMacChanges", checkSecurityField},
                                             {"security.allowForgedTransmits", checkSecurityField},
                                             {"security.allowPromiscuous", checkSecurityField}};
  return fields;
}

bool securityPath(const std::string& path) { return path.rfind("security.", 0) == 0; }

void checkSecurity(const Resource& r, Diagnostics& diags, const char* macPath) {
  const bool strict = r.attrs.getBool("security.allowForgedTransmits") == false ||
                      r.attrs.getBool("security.allowMacChanges") == false;
  if (strict && !r.attrs.getString(macPath))
    diags.error(r.loc,
                "linux: " + r.addr.str() + ": security.allowForgedTransmits / allowMacChanges false filter on the " +
                    "guest's MAC: set " + macPath + " (the MAC the guest sends from)",
                "provider/invalid");
}

Status syncSecurity(LinuxSession& s, const std::string& port, const Attrs& a, const char* macPath) {
  const bool forged = a.getBool("security.allowForgedTransmits").value_or(true);
  const bool macChanges = a.getBool("security.allowMacChanges").value_or(true);
  auto es = entries(port, a.getString(macPath).value_or(""), forged, macChanges);
  if (es.empty() && !s.nftTableAfterFlush("bridge", tableOf(port))) return {};
  s.stageNftTable("bridge", tableOf(port), std::move(es));  // committed by the apply's one batch (session.h)
  return {};
}

Status dropSecurity(LinuxSession& s, const std::string& port) {
  if (s.nftTableAfterFlush("bridge", tableOf(port))) s.stageNftTable("bridge", tableOf(port), {});
  return {};
}

void observeSecurity(LinuxSession& s, const std::string& port, const std::string& guestMac, Attrs& a) {
  const std::string t = tableOf(port);
  std::vector<Json> mine;
  bool forged = true, macChanges = true;
  for (const auto& e : s.ownedNft()) {
    const Json& body = e.begin().value();
    if (body.value("family", "") != "bridge") continue;
    if ((e.contains("table") ? body.value("name", "") : body.value("table", "")) != t) continue;
    mine.push_back(e);
    if (e.contains("rule")) {
      std::string c = body.value("comment", "");
      if (c == "allowForgedTransmits: false") forged = false;
      if (c == "allowMacChanges: false") macChanges = false;
    }
  }
  if (mine.empty()) return;  // no rules: the permissive policy, said by leaving the fields out
  a.set("security.allowForgedTransmits", forged);
  a.set("security.allowMacChanges", macChanges);
  a.set("security.allowPromiscuous", false);
  if (mine == entries(port, guestMac, forged, macChanges)) return;
  // Changed by hand: said where the plan shows it, and repaired by the update that follows.
  const char* path = !forged ? "security.allowForgedTransmits" : "security.allowMacChanges";
  a.set(path, "false (its nftables rules were changed by hand)");
  if (forged && macChanges) a.set("security.allowForgedTransmits", "true (a table bridge " + t + " is left)");
}

void normalizePortPolicies(Resource& r) {
  // A port without rules is what observe reports without security fields and a port without a TBF without shaping
  // fields; a policy the port neither sets nor inherits is therefore said as null (unset), which the engine, that
  // compares the manifest's fields only, sees differ from a port that still has rules or a qdisc: removing a policy
  // from the manifests removes it. A wholly permissive policy (true, true, false) is no rules, so it is null too;
  // a restricted one is said in full, as observe reports a port with a table.
  auto set = [&](const char* path, Json v) {
    if (!r.attrs.has(path)) r.origins[path] = AttrOrigin{Origin::Default, ""};
    r.attrs.set(path, std::move(v));
  };
  const bool restricted = r.attrs.getBool("security.allowForgedTransmits") == false ||
                          r.attrs.getBool("security.allowMacChanges") == false ||
                          r.attrs.getBool("security.allowPromiscuous") == true;
  for (const auto& [path, permissive] : {std::pair<const char*, bool>{"security.allowForgedTransmits", true},
                                         {"security.allowMacChanges", true},
                                         {"security.allowPromiscuous", false}})
    if (!restricted) set(path, nullptr);
    else if (!r.attrs.has(path)) set(path, permissive);
  for (const char* path : {"shaping.averageKbps", "shaping.peakKbps", "shaping.burstKiB", "niocClass"})
    if (!r.attrs.has(path)) set(path, nullptr);
}

Status syncPortPolicies(LinuxSession& s, const Step& step, const char* macPath) {
  bool policy = false, shaping = false, nioc = false;
  for (const auto& path : step.changed) {
    nioc = nioc || path == "niocClass";
    policy = policy || path == macPath || securityPath(path);
    shaping = shaping || shapingPath(path) || path == "mtu";
  }
  if (policy)
    if (Status st = syncSecurity(s, step.addr.name, step.after, macPath); !st.ok()) return st;
  if (nioc)
    if (Status st = syncNiocClass(s, step.addr.name, step.after); !st.ok()) return st;
  if (shaping) return syncShaping(s, step.addr.name, step.after);
  return {};
}

}  // namespace vnetplan::lnx
