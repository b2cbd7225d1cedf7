// Plan-time checks of the fields the esxi kinds share: the portable policies as a standard vSwitch can honour
// them, and physical NIC names. What a standard vSwitch cannot do is refused here with the reason; the VMware
// rules that need no provider (ip-hash with standby NICs or beacon probing, beacon probing with fewer than three
// uplinks, LACP) are reconciler/lint.cpp's, so they are not reported twice.
#include <algorithm>
#include <cctype>

#include "providers/esxi/kind.h"

namespace vnetplan::esxi {

namespace {

void checkBool(const FieldCheck& fc) {
  if (!inherited(fc)) fc.requireBool();
}

void checkTeamingPolicy(const FieldCheck& fc) {
  if (inherited(fc) || !fc.requireString()) return;
  const std::string p = fc.value.get<std::string>();
  if (p == "load-based")
    unsupported(fc, "load-based teaming (route based on physical NIC load) needs a vSphere Distributed Switch; a "
                    "standard vSwitch offers failover, src-port, src-mac and ip-hash");
  else if (p == "round-robin")
    unsupported(fc, "ESXi has no round-robin teaming; a standard vSwitch offers failover, src-port, src-mac and "
                    "ip-hash");
  // lacp: lint/esxi-lacp says it.
}

void checkFailureDetection(const FieldCheck& fc) {
  if (inherited(fc) || !fc.requireString()) return;
  if (fc.value.get<std::string>() == "arp")
    unsupported(fc, "ESXi detects a failed uplink by its link status or by beacon probing (link | beacon), not by ARP");
}

void checkLacp(const FieldCheck& fc) {
  if (inherited(fc)) return;
  const std::string prefix = fc.path.substr(0, fc.path.find("lacp."));
  // lint/esxi-lacp already reports a team with policy lacp or an LACP mode.
  if (fc.resource.attrs.getString(prefix + "policy") == "lacp" || fc.resource.attrs.has(prefix + "lacp.mode")) return;
  unsupported(fc, "LACP needs a vSphere Distributed Switch; a standard vSwitch supports static EtherChannel only "
                  "(policy ip-hash)");
}

void checkHashPolicy(const FieldCheck& fc) {
  if (inherited(fc)) return;
  unsupported(fc, "ESXi's ip-hash always hashes source and destination IP addresses; the hash cannot be chosen "
                  "(remove hashPolicy)");
}

void checkShapingValue(const FieldCheck& fc) {
  if (inherited(fc)) return;
  // esxcli takes Kbps and Kib as 64-bit integers; KiB become Kib (x8).
  fc.requireInt(1, fc.path == "shaping.burstKiB" ? (int64_t{1} << 50) : (int64_t{1} << 53), "");
}

}  // namespace

void unsupported(const FieldCheck& fc, const std::string& why) {
  fc.fail(fc.resource.addr.str() + ": field " + fc.path + " is not supported by the esxi provider: " + why,
          "provider/unsupported");
}

bool isInherited(const Resource& r, const std::string& path) {
  auto it = r.origins.find(path);
  return it != r.origins.end() && it->second.origin == Origin::Inherited;
}

bool inherited(const FieldCheck& fc) { return isInherited(fc.resource, fc.path); }

bool validNicName(const std::string& n) {
  if (n.empty() || n.size() > 32) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

void checkNicList(const FieldCheck& fc) {
  if (inherited(fc)) return;
  if (!fc.value.is_array()) {
    fc.fail("field " + fc.path + " must be a list of physical NIC names");
    return;
  }
  for (const auto& n : fc.value)
    if (!n.is_string() || !validNicName(n.get<std::string>()))
      fc.fail("field " + fc.path + ": " + (n.is_string() ? "'" + n.get<std::string>() + "'" : n.dump()) +
              " is not a physical NIC name (letters, digits, '_', '-', '.'; e.g. vmnic1)");
}

void checkMtu(const FieldCheck& fc) {
  // ESXi takes 1280..9000 on vSwitches and vmkernel NICs.
  fc.requireInt(1280, 9000, "bytes (ESXi's MTU range)");
}

std::vector<FieldRule> policyFieldRules(bool onSwitch) {
  std::vector<FieldRule> rules{
      {"security.allowPromiscuous", checkBool},
      {"security.allowMacChanges", checkBool},
      {"security.allowForgedTransmits", checkBool},
      {"shaping.averageKbps", checkShapingValue},
      {"shaping.peakKbps", checkShapingValue},
      {"shaping.burstKiB", checkShapingValue},
  };
  if (onSwitch) {
    rules.insert(rules.end(), {{"uplinks.teaming.policy", checkTeamingPolicy},
                               {"uplinks.teaming.active", checkNicList},
                               {"uplinks.teaming.standby", checkNicList},
                               {"uplinks.teaming.failureDetection", checkFailureDetection},
                               {"uplinks.teaming.notifySwitches", checkBool},
                               {"uplinks.teaming.failback", checkBool},
                               {"uplinks.teaming.lacp.", checkLacp},
                               {"uplinks.teaming.hashPolicy", checkHashPolicy}});
  } else {
    rules.insert(rules.end(), {{"teaming.policy", checkTeamingPolicy},
                               {"teaming.active", checkNicList},
                               {"teaming.standby", checkNicList},
                               {"teaming.failureDetection", checkFailureDetection},
                               {"teaming.notifySwitches", checkBool},
                               {"teaming.failback", checkBool},
                               {"teaming.lacp.", checkLacp},
                               {"teaming.hashPolicy", checkHashPolicy}});
  }
  return rules;
}

void checkPolicyBlocks(const Resource& r, const std::string& teamingPrefix, Diagnostics& diags) {
  auto fail = [&](const std::string& m) { diags.error(r.loc, "esxi: " + r.addr.str() + ": " + m, "provider/invalid"); };
  const Attrs& a = r.attrs;
  // ESXi shapes with all three numbers or not at all (`shaping set --enabled true` needs -b, -k and -t).
  const char* shaping[] = {"shaping.averageKbps", "shaping.peakKbps", "shaping.burstKiB"};
  int present = 0;
  for (const char* p : shaping) present += a.has(p) ? 1 : 0;
  if (present > 0 && present < 3) {
    std::string missing;
    for (const char* p : shaping)
      if (!a.has(p)) missing += (missing.empty() ? "" : ", ") + std::string(p);
    fail("shaping on ESXi needs averageKbps, peakKbps and burstKiB together (missing: " + missing + ")");
  }
  auto avg = a.getInt("shaping.averageKbps"), peak = a.getInt("shaping.peakKbps");
  if (avg && peak && *peak < *avg)
    fail("shaping.peakKbps (" + std::to_string(*peak) + ") is below shaping.averageKbps (" + std::to_string(*avg) +
         "); ESXi refuses such a policy");
  auto active = a.getStrings(teamingPrefix + "active");
  for (const auto& s : a.getStrings(teamingPrefix + "standby"))
    if (std::find(active.begin(), active.end(), s) != active.end() &&
        !(isInherited(r, teamingPrefix + "standby") && !isInherited(r, teamingPrefix + "active")))
      fail(teamingPrefix + "standby: " + s + " is also in " + teamingPrefix + "active; an uplink is active or standby");
}

}  // namespace vnetplan::esxi
