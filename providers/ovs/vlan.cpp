// VLAN settings of OVS ports: the portable `vlan` (N = access, {trunk: [...]} = trunk, absent = untagged)
// <-> the Port columns tag, trunks and vlan_mode.
#include <algorithm>

#include "providers/ovs/kind.h"

namespace vnetplan::ovs {

namespace {

std::optional<std::pair<int64_t, int64_t>> parseItem(const Json& item, std::string* why) {
  auto bad = [&](const std::string& w) -> std::optional<std::pair<int64_t, int64_t>> {
    if (why) *why = w;
    return std::nullopt;
  };
  if (item.is_number_integer()) {
    int64_t v = item.get<int64_t>();
    if (v < 1 || v > 4094) return bad("VLAN " + std::to_string(v) + " is outside 1..4094");
    return std::make_pair(v, v);
  }
  if (!item.is_string()) return bad(item.dump() + " is not a VLAN id or range");
  const std::string& s = item.get_ref<const std::string&>();
  size_t dash = s.find('-');
  auto num = [](const std::string& t) -> std::optional<int64_t> {
    if (t.empty() || t.size() > 4 || t.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return std::stoll(t);
  };
  auto lo = num(dash == std::string::npos ? s : s.substr(0, dash));
  auto hi = dash == std::string::npos ? lo : num(s.substr(dash + 1));
  if (!lo || !hi) return bad("'" + s + "' is not a VLAN id or a range like \"100-199\"");
  if (*lo < 1 || *hi > 4094) return bad("'" + s + "' is outside 1..4094");
  if (*lo > *hi) return bad("'" + s + "' is an empty range");
  return std::make_pair(*lo, *hi);
}

Json compress(std::vector<int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  Json out = Json::array();
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (j == i) out.push_back(ids[i]);
    else out.push_back(std::to_string(ids[i]) + "-" + std::to_string(ids[j]));
    i = j + 1;
  }
  return out;
}

}  // namespace

std::optional<Json> canonicalTrunks(const Json& list, std::string* why) {
  if (!list.is_array() || list.empty()) {
    if (why) *why = "a trunk needs a non-empty list of VLANs";
    return std::nullopt;
  }
  std::vector<int64_t> ids;
  for (const auto& item : list) {
    auto r = parseItem(item, why);
    if (!r) return std::nullopt;
    for (int64_t v = r->first; v <= r->second; ++v) ids.push_back(v);
  }
  return compress(std::move(ids));
}

std::vector<int64_t> trunkIds(const Json& canonical) {
  std::vector<int64_t> ids;
  if (!canonical.is_array()) return ids;
  for (const auto& item : canonical)
    if (auto r = parseItem(item, nullptr))
      for (int64_t v = r->first; v <= r->second; ++v) ids.push_back(v);
  return ids;
}

Attrs vlanOnly(const Attrs& a) {
  Attrs out;
  if (const Json* v = a.find("vlan")) out.set("vlan", *v);
  if (const Json* t = a.find("vlan.trunk")) out.set("vlan.trunk", *t);
  return out;
}

VlanColumns vlanColumns(const Attrs& a) {
  VlanColumns c;
  if (auto tag = a.getInt("vlan"); tag && *tag >= 1 && *tag <= 4094) {
    c.tag = *tag;
    c.vlanMode = "access";
  } else if (const Json* t = a.find("vlan.trunk")) {
    std::vector<Json> ids;
    for (int64_t v : trunkIds(*t)) ids.emplace_back(v);
    c.trunks = setOf(ids);
    c.vlanMode = "trunk";
  }
  return c;
}

void vlanAttrs(const PortRow& port, Attrs& out) {
  const auto& tag = port.tag;
  const std::vector<int64_t>& trunks = port.trunks;
  std::string mode = port.vlanMode.value_or("");
  if (tag && trunks.empty() && (mode.empty() || mode == "access")) {
    out.set("vlan", *tag);
    return;
  }
  if (!tag && (mode.empty() || mode == "trunk")) {
    if (!trunks.empty()) out.set("vlan.trunk", compress(trunks));
    return;
  }
  // Anything vnetplan would not have written (native VLAN modes, tag with trunks, ...): show it as it is, so
  // the plan proposes the canonical form.
  if (tag) out.set("vlan", *tag);
  if (!trunks.empty()) out.set("vlan.trunk", compress(trunks));
  if (!mode.empty()) out.set("ovs.vlanMode", mode);
}

}  // namespace vnetplan::ovs
