// The three policies (security, failover/teaming, shaping) between the portable vocabulary and esxcli: reading
// them from `get` output into attributes, writing `set` arguments from attributes, and what inherit means on a
// port group.
#include <algorithm>

#include "providers/esxi/kind.h"

namespace vnetplan::esxi {

namespace {

const char* const kSecurity[][2] = {{"security.allowPromiscuous", "--allow-promiscuous="},
                                    {"security.allowMacChanges", "--allow-mac-change="},
                                    {"security.allowForgedTransmits", "--allow-forged-transmits="}};
const char* const kShaping[] = {"shaping.averageKbps", "shaping.peakKbps", "shaping.burstKiB"};

}  // namespace

std::string boolText(bool b) { return b ? "true" : "false"; }

std::string joinComma(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

bool changed(const Step& step, const std::string& path) {
  return std::any_of(step.changed.begin(), step.changed.end(), [&](const std::string& c) {
    return c == path || c.rfind(path + ".", 0) == 0;
  });
}

bool hasUnder(const Attrs& a, const std::string& prefix) {
  auto it = a.values().lower_bound(prefix);
  return it != a.values().end() && it->first.rfind(prefix, 0) == 0;
}

std::string esxcliLoadBalancing(const std::string& policy) {
  if (policy == "failover") return "explicit";
  if (policy == "src-port") return "portid";
  if (policy == "src-mac") return "mac";
  if (policy == "ip-hash") return "iphash";
  return "";
}

std::string portableLoadBalancing(const std::string& shown) {
  // `set` takes portid/mac, `get` prints srcport/srcmac (reference/esxcli.md): both read the same.
  if (shown == "srcport" || shown == "portid") return "src-port";
  if (shown == "srcmac" || shown == "mac") return "src-mac";
  if (shown == "iphash") return "ip-hash";
  if (shown == "explicit") return "failover";
  return shown;  // something newer: shown as ESXi says it, so it differs from any manifest value
}

Json burstKiBOf(int64_t kib) {
  if (kib % 8 == 0) return Json(kib / 8);
  return Json(static_cast<double>(kib) / 8.0);
}

void securityAttrs(const Security& s, Attrs& out) {
  out.set("security.allowPromiscuous", s.allowPromiscuous);
  out.set("security.allowMacChanges", s.allowMacChange);
  out.set("security.allowForgedTransmits", s.allowForgedTransmits);
}

void failoverAttrs(const Failover& f, const std::string& prefix, Attrs& out) {
  out.set(prefix + "policy", portableLoadBalancing(f.loadBalancing));
  out.set(prefix + "failureDetection", f.failureDetection);
  out.set(prefix + "notifySwitches", f.notifySwitches);
  out.set(prefix + "failback", f.failback);
  out.set(prefix + "active", f.active);
  out.set(prefix + "standby", f.standby);
}

void shapingAttrs(const Shaping& s, Attrs& out) {
  if (!s.enabled) return;  // off: no shaping block
  out.set("shaping.averageKbps", s.averageKbps);
  out.set("shaping.peakKbps", s.peakKbps);
  out.set("shaping.burstKiB", burstKiBOf(s.burstKib));
}

std::vector<std::string> securitySetArgs(const Attrs& a, bool portGroup) {
  (void)portGroup;  // the long option names are the same for both (only -p/-o differ)
  std::vector<std::string> args;
  for (const auto& [path, opt] : kSecurity)
    if (auto b = a.getBool(path)) args.push_back(opt + boolText(*b));
  return args;
}

std::vector<std::string> failoverSetArgs(const Attrs& a, const std::string& prefix) {
  std::vector<std::string> args;
  if (auto p = a.getString(prefix + "policy")) args.push_back("--load-balancing=" + esxcliLoadBalancing(*p));
  if (auto d = a.getString(prefix + "failureDetection")) args.push_back("--failure-detection=" + *d);
  if (auto n = a.getBool(prefix + "notifySwitches")) args.push_back("--notify-switches=" + boolText(*n));
  if (auto b = a.getBool(prefix + "failback")) args.push_back("--failback=" + boolText(*b));
  // Both lists at once: each given list replaces its own, so the order is exactly the manifest's.
  if (a.has(prefix + "active") || a.has(prefix + "standby")) {
    args.push_back("--active-uplinks=" + joinComma(a.getStrings(prefix + "active")));
    args.push_back("--standby-uplinks=" + joinComma(a.getStrings(prefix + "standby")));
  }
  return args;
}

std::vector<std::string> shapingSetArgs(const Attrs& a) {
  auto avg = a.getInt("shaping.averageKbps"), peak = a.getInt("shaping.peakKbps"), burst = a.getInt("shaping.burstKiB");
  if (!avg || !peak || !burst) return {"--enabled=false"};
  return {"--enabled=true", "--avg-bandwidth=" + std::to_string(*avg), "--peak-bandwidth=" + std::to_string(*peak),
          "--burst-size=" + std::to_string(*burst * 8)};
}

void normalizeGroupPolicies(Resource& r) {
  Attrs& a = r.attrs;
  // Inherited values are ESXi's own inheritance: the port group leaves them to its vSwitch. The origin stays, so
  // the plan says "(inherited from ...)" where such a field changes.
  auto dropInherited = [&](const std::string& path) {
    if (a.has(path) && isInherited(r, path)) a.erase(path);
  };
  for (const auto& [path, opt] : kSecurity) dropInherited(path);
  for (const char* f : {"teaming.policy", "teaming.failureDetection", "teaming.notifySwitches", "teaming.failback",
                        "teaming.hashPolicy", "teaming.lacp.mode", "teaming.lacp.rate"})
    dropInherited(f);
  // The failover order is one override on ESXi ("Override Vswitch Uplinks"): an explicit active or standby list
  // takes the other one along (its inherited value, or empty).
  const bool activeExplicit = a.has("teaming.active") && !isInherited(r, "teaming.active");
  const bool standbyExplicit = a.has("teaming.standby") && !isInherited(r, "teaming.standby");
  if (!activeExplicit && !standbyExplicit) {
    dropInherited("teaming.active");
    dropInherited("teaming.standby");
  } else {
    if (!a.has("teaming.standby")) a.set("teaming.standby", Json::array());
    if (!standbyExplicit) {
      auto active = a.getStrings("teaming.active");
      std::vector<std::string> standby;
      for (const auto& s : a.getStrings("teaming.standby"))
        if (std::find(active.begin(), active.end(), s) == active.end()) standby.push_back(s);
      a.set("teaming.standby", standby);
    }
  }
  // Shaping is one override too: a partly explicit block takes its inherited values along.
  bool anyExplicit = false;
  for (const char* p : kShaping) anyExplicit = anyExplicit || (a.has(p) && !isInherited(r, p));
  if (!anyExplicit)
    for (const char* p : kShaping) dropInherited(p);
}

}  // namespace vnetplan::esxi
