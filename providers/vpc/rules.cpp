// Security group rules between the manifest's vocabulary and Neutron's. A manifest rule without a cidr (anywhere,
// or a remote group) stands for two Neutron rules, IPv4 and IPv6; one with a cidr for one, of the cidr's family.
// Neutron keeps the protocol as it was given ("6", "tcp") and a remote prefix with host bits; both are made
// canonical here so that desired and live compare equal.
#include <algorithm>

#include "providers/vpc/kind.h"

namespace vnetplan::vpc {

namespace {

const std::map<std::string, int>& protocolNumbers() {
  static const std::map<std::string, int> m{
      {"ah", 51},       {"dccp", 33},       {"egp", 8},         {"esp", 50},        {"gre", 47},
      {"hopopt", 0},    {"igmp", 2},        {"ipip", 4},        {"ipv6-encap", 41}, {"ipv6-frag", 44},
      {"ipv6-nonxt", 59}, {"ipv6-opts", 60}, {"ipv6-route", 43}, {"ospf", 89},       {"pgm", 113},
      {"rsvp", 46},     {"sctp", 132},      {"udplite", 136},   {"vrrp", 112}};
  return m;
}

// Neutron's or the manifest's protocol -> "", "tcp", "udp", "icmp" or a decimal number; nullopt if unknown.
std::optional<std::string> canonicalProtocol(const Json& p) {
  if (p.is_null()) return std::string();
  std::string s;
  if (p.is_number_integer()) {
    s = std::to_string(p.get<long long>());
  } else if (p.is_string()) {
    s = p.get<std::string>();
  } else {
    return std::nullopt;
  }
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s.empty() || s == "any") return std::string();
  if (s == "tcp" || s == "6") return std::string("tcp");
  if (s == "udp" || s == "17") return std::string("udp");
  if (s == "icmp" || s == "1" || s == "ipv6-icmp" || s == "icmpv6" || s == "58") return std::string("icmp");
  if (auto it = protocolNumbers().find(s); it != protocolNumbers().end()) return std::to_string(it->second);
  if (s.find_first_not_of("0123456789") == std::string::npos && s.size() <= 3 && std::stoi(s) <= 255)
    return std::to_string(std::stoi(s));
  return std::nullopt;
}

Json manifestProtocol(const std::string& canonical) {
  if (canonical.empty()) return nullptr;
  if (canonical == "tcp" || canonical == "udp" || canonical == "icmp") return canonical;
  return std::stoi(canonical);
}

Json manifestPorts(int lo, int hi) {
  if (lo < 0) return nullptr;
  if (hi < 0 || hi == lo) return lo;
  return std::to_string(lo) + "-" + std::to_string(hi);
}

bool parsePorts(const Json& v, int& lo, int& hi) {
  if (v.is_null()) {
    lo = hi = -1;
    return true;
  }
  if (v.is_number_integer()) {
    lo = hi = v.get<int>();
    return lo >= 1 && lo <= 65535;
  }
  if (!v.is_string()) return false;
  const std::string s = v.get<std::string>();
  size_t dash = s.find('-');
  try {
    if (dash == std::string::npos) {
      lo = hi = std::stoi(s);
    } else {
      lo = std::stoi(s.substr(0, dash));
      hi = std::stoi(s.substr(dash + 1));
    }
  } catch (...) {
    return false;
  }
  return lo >= 1 && hi <= 65535 && lo <= hi;
}

// A prefix for anywhere in its family is no remote at all.
std::string remoteOf(const std::string& prefix, std::string* family) {
  auto p = parsePrefix(prefix);
  if (!p) return "";
  if (family) *family = p->family == AF_INET6 ? "IPv6" : "IPv4";
  return p->prefixLen == 0 ? "" : p->network().str();
}

}  // namespace

Json canonicalRules(const Json& rules, std::string* why) {
  Json out = Json::array();
  if (!rules.is_array()) return out;
  for (const auto& r : rules) {
    if (!r.is_object()) continue;
    Json c = Json::object();
    c["direction"] = r.value("direction", "ingress");
    auto proto = canonicalProtocol(r.contains("protocol") ? r["protocol"] : Json(nullptr));
    if (!proto) {
      if (why) *why = "unknown protocol " + r["protocol"].dump();
      proto = std::string();
    }
    if (Json p = manifestProtocol(*proto); !p.is_null()) c["protocol"] = p;
    if (r.contains("ports") && !r["ports"].is_null()) {
      int lo = -1, hi = -1;
      if (parsePorts(r["ports"], lo, hi)) c["ports"] = manifestPorts(lo, hi);
      else if (why) *why = "bad ports " + r["ports"].dump();
    }
    if (r.contains("cidr") && r["cidr"].is_string()) {
      auto p = parsePrefix(r["cidr"].get<std::string>());
      c["cidr"] = p ? Json(p->network().str()) : r["cidr"];
    }
    if (r.contains("group") && r["group"].is_string()) c["group"] = r["group"];
    if (r.contains("ethertype") && r["ethertype"].is_string()) c["ethertype"] = r["ethertype"];
    if (r.contains("description") && r["description"].is_string() && !r["description"].get<std::string>().empty())
      c["description"] = r["description"];
    out.push_back(c);
  }
  return out;
}

std::vector<NRule> expandRules(const Json& rules) {
  std::vector<NRule> out;
  for (const auto& r : canonicalRules(rules)) {
    NRule n;
    n.direction = r.value("direction", "ingress");
    n.protocol = canonicalProtocol(r.contains("protocol") ? r["protocol"] : Json(nullptr)).value_or("");
    if (r.contains("ports")) parsePorts(r["ports"], n.portMin, n.portMax);
    n.description = r.value("description", "");
    n.remoteGroup = r.value("group", "");
    std::vector<std::string> families{"IPv4", "IPv6"};
    if (r.contains("cidr")) {
      std::string family = "IPv4";
      n.remoteIp = remoteOf(r["cidr"].get<std::string>(), &family);
      families = {family};
    } else if (r.contains("ethertype")) {
      families = {r["ethertype"].get<std::string>()};
    }
    for (const auto& f : families) {
      NRule e = n;
      e.ethertype = f;
      out.push_back(e);
    }
  }
  return out;
}

NRule liveRule(const Json& r) {
  NRule n;
  n.id = jsonString(r, "id");
  n.direction = jsonString(r, "direction");
  n.ethertype = jsonString(r, "ethertype");
  auto proto = canonicalProtocol(r.contains("protocol") ? r["protocol"] : Json(nullptr));
  n.protocol = proto ? *proto : "?" + (r.contains("protocol") ? r["protocol"].dump() : std::string());
  if (r.contains("port_range_min") && r["port_range_min"].is_number_integer()) n.portMin = r["port_range_min"];
  if (r.contains("port_range_max") && r["port_range_max"].is_number_integer()) n.portMax = r["port_range_max"];
  if (n.portMax < 0) n.portMax = n.portMin;
  std::string prefix = jsonString(r, "normalized_cidr");
  if (prefix.empty()) prefix = jsonString(r, "remote_ip_prefix");
  n.remoteIp = prefix.empty() ? "" : remoteOf(prefix, nullptr);
  n.remoteGroup = jsonString(r, "remote_group_id");
  n.description = jsonString(r, "description");
  return n;
}

Json foldRules(const std::vector<NRule>& live, const std::map<std::string, std::string>& groupName) {
  // Rules equal but for the ethertype, with no remote prefix, pair up into one manifest rule.
  std::vector<NRule> rest = live;
  std::sort(rest.begin(), rest.end());
  std::vector<bool> used(rest.size(), false);
  Json out = Json::array();
  for (size_t i = 0; i < rest.size(); ++i) {
    if (used[i]) continue;
    used[i] = true;
    const NRule& n = rest[i];
    Json m = Json::object();
    m["direction"] = n.direction;
    if (!n.protocol.empty()) {
      if (n.protocol[0] == '?') m["protocol"] = n.protocol.substr(1);
      else m["protocol"] = manifestProtocol(n.protocol);
    }
    if (n.portMin >= 0) m["ports"] = manifestPorts(n.portMin, n.portMax);
    if (!n.description.empty()) m["description"] = n.description;
    if (!n.remoteIp.empty()) {
      m["cidr"] = n.remoteIp;
      out.push_back(m);
      continue;
    }
    bool paired = false;
    for (size_t j = i + 1; j < rest.size() && !paired; ++j) {
      if (used[j] || rest[j].ethertype == n.ethertype) continue;
      NRule a = rest[j];
      a.ethertype = n.ethertype;
      if (a == n) used[j] = paired = true;
    }
    if (!n.remoteGroup.empty()) {
      auto it = groupName.find(n.remoteGroup);
      m["group"] = it != groupName.end() && !it->second.empty() ? it->second : n.remoteGroup;
      if (!paired) m["ethertype"] = n.ethertype;
    } else if (!paired) {
      m["cidr"] = n.ethertype == "IPv6" ? "::/0" : "0.0.0.0/0";
    }
    out.push_back(m);
  }
  return out;
}

Json ruleBody(const NRule& r, const std::string& groupId) {
  Json b = {{"security_group_id", groupId}, {"direction", r.direction}, {"ethertype", r.ethertype}};
  if (!r.protocol.empty()) b["protocol"] = r.protocol;
  if (r.portMin >= 0) {
    b["port_range_min"] = r.portMin;
    b["port_range_max"] = r.portMax;
  }
  if (!r.remoteIp.empty()) b["remote_ip_prefix"] = r.remoteIp;
  if (!r.remoteGroup.empty()) b["remote_group_id"] = r.remoteGroup;
  if (!r.description.empty()) b["description"] = r.description;
  return b;
}

}  // namespace vnetplan::vpc
