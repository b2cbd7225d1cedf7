#include "reconciler/lint.h"

#include <map>
#include <set>

#include "base/netaddr.h"

namespace vnetplan {

namespace {

std::string providerOf(const DesiredState& d, const Resource& r) {
  const Target* t = d.findTarget(r.addr.target);
  return t ? t->provider : "";
}

bool isExplicit(const Resource& r, const std::string& path) {
  auto it = r.origins.find(path);
  return it != r.origins.end() && it->second.origin == Origin::Explicit;
}

// The teaming block of a resource: uplinks.teaming on a Switch, teaming elsewhere.
std::string teamingPrefix(const Resource& r) {
  return r.addr.kind == Kind::Switch ? "uplinks.teaming." : "teaming.";
}

// Linux bond modes that break a bridge carrying VMs (seed 004): 0, 3, 5, 6.
bool badBondMode(const Json& mode) {
  static const std::set<std::string> kBadNames{"balance-rr", "broadcast", "balance-tlb", "balance-alb"};
  if (mode.is_number_integer()) {
    auto m = mode.get<int64_t>();
    return m == 0 || m == 3 || m == 5 || m == 6;
  }
  return mode.is_string() && kBadNames.count(mode.get<std::string>());
}

// The Switch each Port sits on: its own `switch`, or its PortGroup's.
std::map<Address, Address> portSwitches(const DesiredState& d) {
  std::map<Address, std::string> groupSwitch;
  for (const auto& r : d.resources)
    if (r.addr.kind == Kind::PortGroup)
      if (auto s = r.attrs.getString("switch")) groupSwitch[r.addr] = *s;
  std::map<Address, Address> out;
  for (const auto& r : d.resources) {
    if (r.addr.kind != Kind::Port) continue;
    auto sw = r.attrs.getString("switch");
    if (auto pg = r.attrs.getString("portGroup")) {
      auto g = groupSwitch.find({r.addr.target, Kind::PortGroup, *pg});
      sw = g == groupSwitch.end() ? std::nullopt : std::optional<std::string>(g->second);
    }
    if (sw) out[r.addr] = {r.addr.target, Kind::Switch, *sw};
  }
  return out;
}

// Seed 004: these modes break a bridge that carries VMs (an error); on a bridge with no ports yet they are a
// warning, since the first VM attached breaks it.
void bondMode(const DesiredState& d, Diagnostics& diags) {
  std::set<Address> carriesVms;
  for (const auto& [port, sw] : portSwitches(d)) carriesVms.insert(sw);
  for (const auto& r : d.resources) {
    if (r.addr.kind != Kind::Switch) continue;
    const bool vms = carriesVms.count(r.addr) > 0;
    auto report = [&](const SourceLoc& loc, const std::string& what, const std::string& use) {
      if (vms)
        diags.error(loc, r.addr.str() + ": " + what + " on a bridge that carries VMs breaks forwarding (MAC flapping / "
                         "duplicate frames); use " + use, "lint/bond-mode");
      else
        diags.warning(loc, r.addr.str() + ": " + what + " breaks forwarding once VMs are attached to this bridge "
                           "(MAC flapping / duplicate frames); use " + use, "lint/bond-mode");
    };
    if (const Json* mode = r.attrs.find("linux.bond.mode"); mode && badBondMode(*mode))
      report(r.locOf("linux.bond.mode"), "bond mode " + mode->dump(),
             "active-backup (1), balance-xor (2) or 802.3ad (4)");
    const auto policy = r.attrs.getString("uplinks.teaming.policy");
    if (providerOf(d, r) == "linux" && (policy == "round-robin" || policy == "load-based"))
      report(r.locOf("uplinks.teaming.policy"),
             "teaming policy " + *policy + " is bond mode " +
                 (*policy == "round-robin" ? "0 (balance-rr)" : "5 or 6 (balance-tlb/alb)") + " on Linux, which",
             "failover, src-mac, ip-hash or lacp");
  }
}

void bondArpMonitor(const DesiredState& d, Diagnostics& diags) {
  for (const auto& r : d.resources) {
    if (r.addr.kind != Kind::Switch || providerOf(d, r) != "linux") continue;
    auto arp = r.attrs.getInt("linux.bond.arpInterval");
    if ((arp && *arp > 0) || r.attrs.getString("uplinks.teaming.failureDetection") == "arp")
      diags.warning(r.locOf(arp ? "linux.bond.arpInterval" : "uplinks.teaming.failureDetection"),
                    r.addr.str() + ": ARP monitoring on a bond under a VM bridge is unreliable (the bridge "
                                   "answers for the VMs); use MII monitoring (linux.bond.miimon)",
                    "lint/bond-arp");
  }
}

void ipHashTeaming(const DesiredState& d, Diagnostics& diags) {
  for (const auto& r : d.resources) {
    const std::string p = teamingPrefix(r);
    if (r.attrs.getString(p + "policy") != "ip-hash") continue;
    if (!r.attrs.getStrings(p + "standby").empty())
      diags.error(r.locOf(p + "standby"), r.addr.str() + ": ip-hash teaming cannot have standby uplinks (all uplinks must be active "
                                        "in the physical switch's EtherChannel)",
                  "lint/ip-hash");
    if (r.attrs.getString(p + "failureDetection") == "beacon")
      diags.error(r.locOf(p + "failureDetection"), r.addr.str() + ": ip-hash teaming cannot use beacon probing; use link status",
                  "lint/ip-hash");
  }
}

void beaconUplinks(const DesiredState& d, Diagnostics& diags) {
  for (const auto& r : d.resources) {
    if (r.addr.kind != Kind::Switch) continue;
    if (r.attrs.getString("uplinks.teaming.failureDetection") != "beacon") continue;
    if (r.attrs.getStrings("uplinks.nics").size() < 3)
      diags.warning(r.locOf("uplinks.teaming.failureDetection"),
                    r.addr.str() + ": beacon probing with fewer than 3 uplinks cannot tell which uplink failed",
                    "lint/beacon");
  }
}

void esxiLacp(const DesiredState& d, Diagnostics& diags) {
  for (const auto& r : d.resources) {
    if (providerOf(d, r) != "esxi") continue;
    const std::string p = teamingPrefix(r);
    if (r.attrs.getString(p + "policy") == "lacp" || r.attrs.has(p + "lacp.mode"))
      diags.error(r.locOf(r.attrs.getString(p + "policy") == "lacp" ? p + "policy" : p + "lacp.mode"), r.addr.str() + ": LACP needs a vSphere Distributed Switch; a standard vSwitch supports "
                                        "static EtherChannel only (use ip-hash)",
                  "lint/esxi-lacp");
  }
}

bool vlanInRange(int64_t v, const std::string& provider) {
  if (v == 4095) return provider == "esxi";
  return v >= 0 && v <= 4094;
}

void vlanRange(const DesiredState& d, Diagnostics& diags) {
  for (const auto& r : d.resources) {
    const std::string provider = providerOf(d, r);
    for (const char* path : {"vlan", "vlanId"}) {
      auto v = r.attrs.getInt(path);
      if (v && !vlanInRange(*v, provider))
        diags.error(r.locOf(path),
                    r.addr.str() + ": " + path + " " + std::to_string(*v) + " is out of range for provider " +
                        provider + (*v == 4095 ? " (4095 = all VLANs exists on esxi only; use a trunk)" : " (1-4094)"),
                    "lint/vlan-range");
    }
    for (const auto& item : r.attrs.find("vlan.trunk") ? *r.attrs.find("vlan.trunk") : Json::array()) {
      int64_t lo = 0, hi = 0;
      if (item.is_number_integer()) {
        lo = hi = item.get<int64_t>();
      } else if (item.is_string()) {
        const std::string s = item.get<std::string>();
        auto dash = s.find('-');
        if (dash == std::string::npos) continue;  // the schema reports the format
        lo = std::strtoll(s.substr(0, dash).c_str(), nullptr, 10);
        hi = std::strtoll(s.substr(dash + 1).c_str(), nullptr, 10);
      }
      if (lo < 1 || hi > 4094 || lo > hi)
        diags.error(r.locOf("vlan.trunk"), r.addr.str() + ": trunk range " + item.dump() + " must lie within 1-4094, low to high",
                    "lint/vlan-range");
    }
  }
}

void portMtu(const DesiredState& d, Diagnostics& diags) {
  std::map<Address, int64_t> switchMtu;
  for (const auto& r : d.resources)
    if (r.addr.kind == Kind::Switch)
      if (auto m = r.attrs.getInt("mtu")) switchMtu[r.addr] = *m;
  const auto switches = portSwitches(d);
  for (const auto& r : d.resources) {
    if (r.addr.kind != Kind::Port) continue;
    auto mtu = r.attrs.getInt("mtu");
    auto sw = switches.find(r.addr);
    if (!mtu || sw == switches.end()) continue;
    auto it = switchMtu.find(sw->second);
    if (it != switchMtu.end() && *mtu > it->second)
      diags.error(r.locOf("mtu"),
                  r.addr.str() + ": mtu " + std::to_string(*mtu) + " is above its switch " + sw->second.name +
                      "'s mtu " + std::to_string(it->second) + "; frames that large would be dropped",
                  "lint/port-mtu");
  }
}

void overlappingSubnets(const DesiredState& d, Diagnostics& diags) {
  struct Net {
    IpPrefix prefix;
    const Resource* owner;
    std::string field;
  };
  std::map<std::string, std::vector<Net>> byTarget;
  for (const auto& r : d.resources) {
    std::vector<std::string> cidrs;
    std::string field;
    if (r.addr.kind == Kind::Network) {
      if (auto a = r.attrs.getString(field = "ipv4.address")) cidrs.push_back(*a);
    } else if (r.addr.kind == Kind::Subnet) {
      if (auto c = r.attrs.getString(field = "cidr")) cidrs.push_back(*c);
    } else if (r.addr.kind == Kind::Switch) {
      cidrs = r.attrs.getStrings(field = "addresses");
    }
    for (const auto& c : cidrs)
      if (auto p = parsePrefix(c)) byTarget[r.addr.target].push_back({*p, &r, field});
  }
  for (const auto& [target, nets] : byTarget)
    for (size_t i = 0; i < nets.size(); ++i)
      for (size_t j = i + 1; j < nets.size(); ++j)
        if (nets[i].owner != nets[j].owner && nets[i].prefix.overlaps(nets[j].prefix))
          diags.error(nets[j].owner->locOf(nets[j].field),
                      nets[j].owner->addr.str() + ": subnet " + nets[j].prefix.str() + " overlaps " +
                          nets[i].prefix.str() + " of " + nets[i].owner->addr.str(),
                      "lint/subnet-overlap");
}

void promiscuous(const DesiredState& d, Diagnostics& diags) {
  for (const auto& r : d.resources) {
    if (r.attrs.getBool("security.allowPromiscuous") == true && isExplicit(r, "security.allowPromiscuous") &&
        r.justification.empty())
      diags.warning(r.locOf("security.allowPromiscuous"),
                    r.addr.str() + ": allowPromiscuous: true lets every VM here see all traffic on the segment; "
                                   "add spec.justification to record why",
                    "lint/promiscuous");
  }
}

void natPortForwards(const DesiredState& d, Diagnostics& diags) {
  for (const auto& r : d.resources) {
    if (r.addr.kind != Kind::Network || r.attrs.getString("mode") != "nat") continue;
    auto net = r.attrs.getString("ipv4.address");
    const Json* fwds = r.attrs.find("portForwards");
    if (!net || !fwds || !fwds->is_array()) continue;
    auto prefix = parsePrefix(*net);
    if (!prefix) continue;
    for (const auto& f : *fwds) {
      std::string to = f.value("to", "");
      auto colon = to.rfind(':');
      std::string host = (colon != std::string::npos && to.find(':') == colon) ? to.substr(0, colon) : to;
      auto addr = parseAddress(host);
      if (addr && !prefix->contains(*addr))
        diags.error(r.locOf("portForwards"), r.addr.str() + ": port forward to " + to + " is outside the network " + prefix->str(),
                    "lint/nat-forward");
    }
  }
}

// dnsmasq takes --dhcp-range=START,END as written: a reversed range serves nobody, and a range outside the
// network hands out addresses nothing routes to.
void dhcpRange(const DesiredState& d, Diagnostics& diags) {
  for (const auto& r : d.resources) {
    if (r.addr.kind != Kind::Network) continue;
    auto start = r.attrs.getString("ipv4.dhcp.start"), end = r.attrs.getString("ipv4.dhcp.end");
    if (!start || !end) continue;
    auto a = parseAddress(*start), b = parseAddress(*end);
    if (!a || !b || a->family != b->family) continue;  // the schema reports the format
    if (std::lexicographical_compare(b->addr.begin(), b->addr.begin() + b->addrLen(), a->addr.begin(),
                                     a->addr.begin() + a->addrLen()))
      diags.error(r.locOf("ipv4.dhcp.start"),
                  r.addr.str() + ": DHCP range start " + *start + " is after its end " + *end +
                      " (write the lower address as start)",
                  "lint/dhcp-range");
    auto net = r.attrs.getString("ipv4.address");
    auto prefix = net ? parsePrefix(*net) : std::nullopt;
    if (!prefix) continue;
    for (const auto& [field, addr] : {std::pair{"ipv4.dhcp.start", a}, std::pair{"ipv4.dhcp.end", b}})
      if (!prefix->contains(*addr))
        diags.error(r.locOf(field),
                    r.addr.str() + ": DHCP range " + field + " " + addr->addressStr() + " is outside the network " +
                        prefix->network().str(),
                    "lint/dhcp-range");
  }
}

}  // namespace

const std::vector<LintRule>& lintRules() {
  static const std::vector<LintRule> kRules{
      {"lint/bond-mode", "bond modes 0, 3, 5, 6 (and round-robin teaming) on a bridge that carries VMs", bondMode},
      {"lint/bond-arp", "ARP monitoring on a bond under a VM bridge (use MII)", bondArpMonitor},
      {"lint/ip-hash", "ip-hash teaming with standby uplinks or beacon probing", ipHashTeaming},
      {"lint/beacon", "beacon probing with fewer than 3 uplinks", beaconUplinks},
      {"lint/esxi-lacp", "LACP on an esxi standard vSwitch", esxiLacp},
      {"lint/vlan-range", "VLAN id or trunk range out of range for the provider", vlanRange},
      {"lint/port-mtu", "a port MTU above its switch's MTU", portMtu},
      {"lint/subnet-overlap", "overlapping subnets among a target's networks", overlappingSubnets},
      {"lint/promiscuous", "allowPromiscuous: true without spec.justification", promiscuous},
      {"lint/nat-forward", "a nat Network's port forward to an address outside its subnet", natPortForwards},
      {"lint/dhcp-range", "a Network's DHCP range reversed or outside its subnet", dhcpRange},
  };
  return kRules;
}

void lint(const DesiredState& desired, Diagnostics& diags) {
  for (const auto& rule : lintRules()) rule.run(desired, diags);
}

}  // namespace vnetplan
