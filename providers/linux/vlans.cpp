#include "providers/linux/vlans.h"

#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace vnetplan::lnx {

namespace {

// Sorted, merged, inclusive runs of `ids`.
std::vector<std::pair<uint16_t, uint16_t>> runsOf(std::vector<uint16_t> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<std::pair<uint16_t, uint16_t>> out;
  for (uint16_t id : ids) {
    if (!out.empty() && out.back().second + 1 == id)
      out.back().second = id;
    else
      out.emplace_back(id, id);
  }
  return out;
}

std::optional<uint16_t> vidOf(const Json& v) {
  int64_t n = -1;
  if (v.is_number_integer()) n = v.get<int64_t>();
  else if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())))
    n = static_cast<int64_t>(v.get<double>());
  else if (v.is_string() && !v.get<std::string>().empty() && v.get<std::string>().size() <= 4 &&
           v.get<std::string>().find_first_not_of("0123456789") == std::string::npos)
    n = std::stoll(v.get<std::string>());
  if (n < 0 || n > 4095) return std::nullopt;
  return static_cast<uint16_t>(n);
}

}  // namespace

bool VlanSpec::allVlans() const {
  return mode == Mode::Trunk && ranges.size() == 1 && ranges[0].first <= 1 && ranges[0].second >= 4094;
}

std::vector<uint16_t> VlanSpec::taggedIds() const {
  std::vector<uint16_t> out;
  if (mode == Mode::Access) out.push_back(id);
  if (mode == Mode::Trunk)
    for (const auto& [lo, hi] : ranges)
      for (uint32_t v = lo; v <= hi; ++v)
        if (v != kNativeVid && v >= 1 && v <= 4094) out.push_back(static_cast<uint16_t>(v));
  return out;
}

std::optional<VlanSpec> vlanOf(const Attrs& a, std::string* why) {
  auto fail = [&](std::string m) -> std::optional<VlanSpec> {
    if (why) *why = std::move(m);
    return std::nullopt;
  };
  VlanSpec s;
  if (const Json* t = a.find("vlan.trunk"); t && !t->is_null()) {
    if (!t->is_array() || t->empty()) return fail("vlan.trunk must be a non-empty list of VLAN ids or \"a-b\" ranges");
    std::vector<uint16_t> ids;
    for (const auto& item : *t) {
      uint16_t lo = 0, hi = 0;
      if (item.is_string() && item.get<std::string>().find('-') != std::string::npos) {
        const std::string text = item.get<std::string>();
        auto dash = text.find('-');
        auto l = vidOf(Json(text.substr(0, dash))), h = vidOf(Json(text.substr(dash + 1)));
        if (!l || !h) return fail("vlan.trunk: '" + text + "' is not a range of VLAN ids like \"100-199\"");
        lo = *l, hi = *h;
      } else if (auto v = vidOf(item)) {
        lo = hi = *v;
      } else {
        return fail("vlan.trunk: " + item.dump() + " is not a VLAN id or a range");
      }
      if (lo < 1 || hi > 4094 || lo > hi) return fail("vlan.trunk: " + item.dump() + " must lie within 1-4094, low to high");
      for (uint32_t v = lo; v <= hi; ++v) ids.push_back(static_cast<uint16_t>(v));
    }
    s.mode = VlanSpec::Mode::Trunk;
    s.ranges = runsOf(std::move(ids));
    return s;
  }
  if (const Json* v = a.find("vlan"); v && !v->is_null()) {
    auto id = vidOf(*v);
    if (!id || *id > 4094) return fail("vlan " + v->dump() + " is not a VLAN id 0-4094 (or {trunk: [...]})");
    if (*id == 0) return s;
    s.mode = VlanSpec::Mode::Access;
    s.id = *id;
  }
  return s;
}

Json trunkJson(const std::vector<std::pair<uint16_t, uint16_t>>& ranges) {
  Json out = Json::array();
  for (const auto& [lo, hi] : ranges) {
    if (lo == hi) out.push_back(lo);
    else out.push_back(std::to_string(lo) + "-" + std::to_string(hi));
  }
  return out;
}

void setVlan(Attrs& a, const VlanSpec& v) {
  a.erase("vlan");
  a.erase("vlan.trunk");
  switch (v.mode) {
    case VlanSpec::Mode::Untagged: a.set("vlan", nullptr); break;
    case VlanSpec::Mode::Access: a.set("vlan", static_cast<int64_t>(v.id)); break;
    case VlanSpec::Mode::Trunk: a.set("vlan.trunk", trunkJson(v.ranges)); break;
  }
}

static std::string rangesText(const std::vector<std::pair<uint16_t, uint16_t>>& ranges) {
  std::string s;
  for (const auto& [lo, hi] : ranges)
    s += (s.empty() ? "" : ",") + std::to_string(lo) + (lo == hi ? "" : "-" + std::to_string(hi));
  return s;
}

std::string vlanText(const VlanSpec& v) {
  switch (v.mode) {
    case VlanSpec::Mode::Untagged: return "untagged";
    case VlanSpec::Mode::Access: return "VLAN " + std::to_string(v.id);
    case VlanSpec::Mode::Trunk: return "trunk " + rangesText(v.ranges);
  }
  return "?";
}

std::string vlanCode(const VlanSpec& v) {
  switch (v.mode) {
    case VlanSpec::Mode::Untagged: return "0";
    case VlanSpec::Mode::Access: return std::to_string(v.id);
    case VlanSpec::Mode::Trunk: return "t" + rangesText(v.ranges);
  }
  return "0";
}

std::optional<VlanSpec> parseVlanCode(std::string_view s) {
  VlanSpec v;
  if (s.empty()) return std::nullopt;
  if (s[0] != 't') {
    if (s.size() > 4 || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    int id = std::stoi(std::string(s));
    if (id > 4094) return std::nullopt;
    if (id == 0) return v;
    v.mode = VlanSpec::Mode::Access;
    v.id = static_cast<uint16_t>(id);
    return v;
  }
  Json list = Json::array();
  std::string rest(s.substr(1));
  size_t start = 0;
  while (start <= rest.size()) {
    size_t comma = rest.find(',', start);
    std::string item = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) return std::nullopt;
    list.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  Attrs a;
  a.set("vlan.trunk", list);
  return vlanOf(a);
}

PortVlans portVlansFor(const VlanSpec& v) {
  PortVlans p;
  if (v.mode == VlanSpec::Mode::Access) {
    p.pvid = v.id;
    p.vids[v.id] = true;
    return p;
  }
  p.pvid = kNativeVid;
  p.vids[kNativeVid] = true;
  for (uint16_t id : v.taggedIds()) p.vids[id] = false;
  return p;
}

VlanSpec specOf(const PortVlans& p) {
  VlanSpec s;
  std::vector<uint16_t> tagged;
  for (const auto& [vid, untagged] : p.vids)
    if (!untagged) tagged.push_back(vid);
  const bool nativeOnly = p.pvid == kNativeVid && p.vids.count(kNativeVid) && p.vids.at(kNativeVid);
  if (nativeOnly && tagged.empty() && p.vids.size() == 1) return s;
  if (p.pvid != 0 && p.pvid != kNativeVid && p.vids.size() == 1 && p.vids.count(p.pvid) && p.vids.at(p.pvid)) {
    s.mode = VlanSpec::Mode::Access;
    s.id = p.pvid;
    return s;
  }
  // A trunk: what it carries tagged (and anything else it is a member of, so that nothing is hidden).
  std::vector<uint16_t> ids;
  for (const auto& [vid, untagged] : p.vids)
    if (!(vid == kNativeVid && untagged && p.pvid == kNativeVid)) ids.push_back(vid);
  if (ids.empty()) return s;  // member of nothing: reads as untagged, and a re-apply gives it the native VLAN
  s.mode = VlanSpec::Mode::Trunk;
  s.ranges = runsOf(std::move(ids));
  return s;
}

namespace {

// IFLA_AF_SPEC of a bridge request: the entries, runs of equal flags sent as one range.
struct Entry {
  uint16_t vid;
  uint16_t flags;
};

std::vector<std::vector<Entry>> chunks(const std::vector<Entry>& entries) {
  // Runs of consecutive ids with equal flags become RANGE_BEGIN/END pairs (a PVID is never part of a range).
  std::vector<Entry> attrs;
  for (size_t i = 0; i < entries.size();) {
    size_t j = i;
    while (j + 1 < entries.size() && entries[j + 1].vid == entries[j].vid + 1 &&
           entries[j + 1].flags == entries[i].flags && !(entries[i].flags & BRIDGE_VLAN_INFO_PVID))
      ++j;
    if (j > i) {
      attrs.push_back({entries[i].vid, static_cast<uint16_t>(entries[i].flags | BRIDGE_VLAN_INFO_RANGE_BEGIN)});
      attrs.push_back({entries[j].vid, static_cast<uint16_t>(entries[i].flags | BRIDGE_VLAN_INFO_RANGE_END)});
    } else {
      attrs.push_back(entries[i]);
    }
    i = j + 1;
  }
  // At most 400 attributes (3.2 KiB) per message; a range's two halves stay together.
  std::vector<std::vector<Entry>> out;
  for (size_t i = 0; i < attrs.size();) {
    size_t n = std::min<size_t>(400, attrs.size() - i);
    if (i + n < attrs.size() && (attrs[i + n - 1].flags & BRIDGE_VLAN_INFO_RANGE_BEGIN)) ++n;
    out.emplace_back(attrs.begin() + static_cast<long>(i), attrs.begin() + static_cast<long>(i + n));
    i += n;
  }
  return out;
}

NlOutcome sendEntries(NlSocket& sock, int type, int ifindex, bool self, const std::vector<Entry>& entries) {
  for (const auto& chunk : chunks(entries)) {
    NlMsg m = newMsg(type, 0);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_BRIDGE;
    ifi.ifi_index = ifindex;
    if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) return {ENOMEM, "out of memory"};
    nlattr* spec = nla_nest_start(m.get(), IFLA_AF_SPEC);
    if (!spec) return {ENOMEM, "out of memory"};
    if (self && nla_put_u16(m.get(), IFLA_BRIDGE_FLAGS, BRIDGE_FLAGS_SELF) < 0) return {ENOMEM, "out of memory"};
    for (const Entry& e : chunk) {
      bridge_vlan_info info{};
      info.flags = e.flags;
      info.vid = e.vid;
      if (nla_put(m.get(), IFLA_BRIDGE_VLAN_INFO, sizeof info, &info) < 0) return {ENOMEM, "out of memory"};
    }
    nla_nest_end(m.get(), spec);
    NlOutcome o = sock.request(m.get());
    if (!o.ok()) return o;
  }
  return {};
}

uint16_t flagsOf(const PortVlans& p, uint16_t vid, bool untagged) {
  uint16_t f = 0;
  if (untagged) f |= BRIDGE_VLAN_INFO_UNTAGGED;
  if (p.pvid == vid) f |= BRIDGE_VLAN_INFO_PVID;
  return f;
}

}  // namespace

Result<std::map<int, PortVlans>> dumpBridgeVlans(NlSocket& sock) {
  std::map<int, PortVlans> out;
  NlMsg m = newMsg(RTM_GETLINK, NLM_F_DUMP);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_BRIDGE;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
      nla_put_u32(m.get(), IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN_COMPRESSED) < 0)
    return err("out of memory");
  NlOutcome o = sock.dump(
      m.get(),
      [&](const nlmsghdr* h) {
        if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return;
        const auto* info = static_cast<const ifinfomsg*>(nlmsg_data(h));
        nlattr* tb[IFLA_MAX + 1] = {};
        if (nlmsg_parse(const_cast<nlmsghdr*>(h), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0 || !tb[IFLA_AF_SPEC])
          return;
        PortVlans& p = out[info->ifi_index];
        nlattr* a;
        int rem;
        uint16_t rangeStart = 0;
        nla_for_each_nested(a, tb[IFLA_AF_SPEC], rem) {
          if (nla_type(a) != IFLA_BRIDGE_VLAN_INFO || nla_len(a) < static_cast<int>(sizeof(bridge_vlan_info))) continue;
          bridge_vlan_info v{};
          std::memcpy(&v, nla_data(a), sizeof v);
          const bool untagged = v.flags & BRIDGE_VLAN_INFO_UNTAGGED;
          if (v.flags & BRIDGE_VLAN_INFO_RANGE_BEGIN) {
            rangeStart = v.vid;
            continue;
          }
          uint16_t lo = (v.flags & BRIDGE_VLAN_INFO_RANGE_END) ? rangeStart : v.vid;
          for (uint32_t id = lo; id <= v.vid; ++id) p.vids[static_cast<uint16_t>(id)] = untagged;
          if (v.flags & BRIDGE_VLAN_INFO_PVID) p.pvid = v.vid;
        }
      },
      [&] { out.clear(); });
  if (!o.ok()) return err(o.message);
  return out;
}

NlOutcome syncPortVlans(NlSocket& sock, int ifindex, bool self, const PortVlans& have, const PortVlans& want) {
  std::vector<Entry> adds, dels;
  for (const auto& [vid, untagged] : want.vids) {
    auto it = have.vids.find(vid);
    const bool samePvid = (have.pvid == vid) == (want.pvid == vid);
    if (it == have.vids.end() || it->second != untagged || !samePvid) adds.push_back({vid, flagsOf(want, vid, untagged)});
  }
  for (const auto& [vid, untagged] : have.vids)
    if (!want.vids.count(vid)) dels.push_back({vid, 0});
  // The PVID first (alone: it cannot be part of a range), so that the port is never without one in between.
  std::stable_partition(adds.begin(), adds.end(), [](const Entry& e) { return e.flags & BRIDGE_VLAN_INFO_PVID; });
  std::vector<Entry> pvid(adds.begin(), adds.begin() + (adds.empty() || !(adds[0].flags & BRIDGE_VLAN_INFO_PVID) ? 0 : 1));
  std::vector<Entry> rest(adds.begin() + static_cast<long>(pvid.size()), adds.end());
  std::sort(rest.begin(), rest.end(), [](const Entry& a, const Entry& b) { return a.vid < b.vid; });
  if (!pvid.empty())
    if (NlOutcome o = sendEntries(sock, RTM_SETLINK, ifindex, self, pvid); !o.ok()) return o;
  if (!rest.empty())
    if (NlOutcome o = sendEntries(sock, RTM_SETLINK, ifindex, self, rest); !o.ok()) return o;
  if (!dels.empty())
    if (NlOutcome o = sendEntries(sock, RTM_DELLINK, ifindex, self, dels); !o.ok()) return o;
  return {};
}

NlOutcome addTaggedVids(NlSocket& sock, int ifindex, const std::vector<uint16_t>& vids) {
  std::vector<Entry> entries;
  for (const auto& [lo, hi] : runsOf(vids))
    for (uint32_t v = lo; v <= hi; ++v) entries.push_back({static_cast<uint16_t>(v), 0});
  if (entries.empty()) return {};
  return sendEntries(sock, RTM_SETLINK, ifindex, false, entries);
}

NlOutcome removeVids(NlSocket& sock, int ifindex, const std::vector<uint16_t>& vids) {
  std::vector<Entry> entries;
  for (const auto& [lo, hi] : runsOf(vids))
    for (uint32_t v = lo; v <= hi; ++v) entries.push_back({static_cast<uint16_t>(v), 0});
  if (entries.empty()) return {};
  return sendEntries(sock, RTM_DELLINK, ifindex, false, entries);
}

}  // namespace vnetplan::lnx
