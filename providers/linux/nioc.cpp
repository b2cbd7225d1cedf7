#include "providers/linux/nioc.h"

#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/route/class.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/tc.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "providers/linux/session.h"
#include "providers/linux/shaping.h"

namespace vnetplan::lnx {

namespace {

// Quantum per share: one full-size frame. It must be large next to what HTB dequeues at once: a GSO packet of up to
// 64 KiB (veth and most NICs pass them through the bridge), and HTB lets every class send one packet per turn
// whatever its deficit, so with 200 bytes a share two flows at shares 100 and 25 got 1.25:1 instead of 4:1.
constexpr uint32_t kShareBytes = 1514;
constexpr uint64_t kFrameBytes = 1514;
constexpr uint64_t kBytesPerMbps = 125000;  // exact both ways
constexpr uint64_t kNoReservation = 125;    // 1 kbit/s: HTB needs a rate; reported back as 0
constexpr int64_t kMaxMbps = 1000000;       // 1 Tbit/s
constexpr unsigned kRootMinor = 1;
constexpr unsigned kDefaultMinor = 0x10;  // virtualmachine

const char* const kClassTablePrefix = "vnp-nioc-";
std::string tableOf(const std::string& port) { return kClassTablePrefix + port; }

int64_t sharesOf(const Json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    return s == "low" ? 25 : s == "high" ? 100 : s == "normal" ? 50 : 0;
  }
  return v.is_number_integer() ? v.get<int64_t>() : 0;
}

struct ClassFree {
  void operator()(rtnl_class* c) const { rtnl_class_put(c); }
};
struct QdiscFree {
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};

// One HTB class as the kernel has it (bytes/s, bytes).
struct HtbClass {
  uint32_t parent = 0;
  uint64_t rate = 0, ceil = 0;
  uint32_t quantum = 0;
};

void onClass(nl_object* obj, void* arg) {
  auto* out = static_cast<std::map<uint32_t, HtbClass>*>(arg);
  auto* c = reinterpret_cast<rtnl_class*>(obj);
  const char* kind = rtnl_tc_get_kind(TC_CAST(c));
  if (!kind || std::string(kind) != "htb") return;
  HtbClass h;
  h.parent = rtnl_tc_get_parent(TC_CAST(c));
  (void)rtnl_htb_get_rate64(c, &h.rate);
  (void)rtnl_htb_get_ceil64(c, &h.ceil);
  h.quantum = rtnl_htb_get_quantum(c);
  (*out)[rtnl_tc_get_handle(TC_CAST(c))] = h;
}

Result<std::map<uint32_t, HtbClass>> dumpClasses(NlSocket& sock, int ifindex) {
  std::map<uint32_t, HtbClass> out;
  NlOutcome o = dumpTc(sock, RTM_GETTCLASS, ifindex, onClass, &out, [&] { out.clear(); });
  if (!o.ok()) return err(o.message);
  return out;
}

// A number of Mbit/s from bytes/s: whole where it is (what vnetplan writes), a fraction where someone else wrote it.
Json mbps(uint64_t bytes) {
  if (bytes % kBytesPerMbps == 0) return Json(static_cast<int64_t>(bytes / kBytesPerMbps));
  return Json(static_cast<double>(bytes) / static_cast<double>(kBytesPerMbps));
}

void checkShares(const FieldCheck& fc) {
  if (fc.value.is_string()) {
    if (!sharesOf(fc.value)) fc.fail("field " + fc.path + " must be low, normal, high or a number 1..100");
    return;
  }
  fc.requireInt(1, 100);
}

void checkNiocField(const FieldCheck& fc) {
  if (fc.path == "nioc.enabled") {
    fc.requireBool();
    return;
  }
  if (fc.path == "nioc.uplinkMbps") {
    fc.requireInt(1, kMaxMbps, "Mbit/s");
    return;
  }
  // nioc.classes.<class>.<setting>
  const std::string rest = fc.path.substr(std::string("nioc.classes.").size());
  const std::string cls = rest.substr(0, rest.find('.'));
  const std::string setting = rest.find('.') == std::string::npos ? "" : rest.substr(rest.find('.') + 1);
  if (!niocClass(cls)) return fc.fail("field " + fc.path + ": no traffic class " + cls);
  if (setting == "shares") return checkShares(fc);
  if (setting == "reservationMbps") {
    fc.requireInt(0, kMaxMbps, "Mbit/s");
    return;
  }
  if (setting == "limitMbps") {
    fc.requireInt(1, kMaxMbps, "Mbit/s");
    return;
  }
  fc.fail("field " + fc.path + " is not a class setting (shares, reservationMbps, limitMbps)");
}

bool enabled(const Attrs& a) { return a.getBool("nioc.enabled") == true && a.getInt("nioc.uplinkMbps").has_value(); }

std::string classPath(const NiocClass& c, const char* setting) {
  return std::string("nioc.classes.") + c.name + "." + setting;
}

// RTM_DELQDISC of the root qdisc of `device` if it is HTB 1: (the kernel compares handle and kind): never anyone
// else's root qdisc.
Status deleteTree(LinuxSession& s, const std::string& what, int device) {
  NlMsg m = newMsg(RTM_DELQDISC, 0);
  tcmsg tcm{};
  tcm.tcm_family = AF_UNSPEC;
  tcm.tcm_ifindex = device;
  tcm.tcm_parent = TC_H_ROOT;
  tcm.tcm_handle = TC_HANDLE(1, 0);
  if (!m || nlmsg_append(m.get(), &tcm, sizeof tcm, NLMSG_ALIGNTO) < 0 || nla_put_string(m.get(), TCA_KIND, "htb") < 0)
    return s.failure(what, "out of memory");
  NlOutcome o = s.nl().request(m.get());
  // ENOENT: no root qdisc of ours; EINVAL: the root is another kind (or the default, which cannot be deleted).
  if (!o.ok() && o.errnum != ENOENT && o.errnum != EINVAL) return s.failure(what + ": remove the HTB tree", o.message);
  return {};
}

Status addClass(LinuxSession& s, const std::string& what, int device, uint32_t parent, uint32_t handle, uint64_t rate,
                uint64_t ceil, uint32_t quantum) {
  std::unique_ptr<rtnl_class, ClassFree> c(rtnl_class_alloc());
  if (!c) return s.failure(what, "out of memory");
  rtnl_tc_set_ifindex(TC_CAST(c.get()), device);
  rtnl_tc_set_parent(TC_CAST(c.get()), parent);
  rtnl_tc_set_handle(TC_CAST(c.get()), handle);
  if (rtnl_tc_set_kind(TC_CAST(c.get()), "htb") < 0) return s.failure(what, "libnl has no htb");
  rtnl_htb_set_rate64(c.get(), rate);
  rtnl_htb_set_ceil64(c.get(), ceil);
  rtnl_htb_set_prio(c.get(), 0);
  if (quantum) rtnl_htb_set_quantum(c.get(), quantum);
  // Buckets of 50 ms at the rate and the ceiling (at least two full frames), so that a class held back by its limit
  // saves up while it waits out another class's turn (100 shares: 151400 bytes, 30 ms at 40 Mbit/s). With libnl's
  // default of about one frame a class limited to 8 Mbit/s next to a busy one got 5; with 10 ms, 6.
  auto bucket = [](uint64_t bytesPerSec) { return static_cast<uint32_t>(std::max<uint64_t>(bytesPerSec / 20, 2 * kFrameBytes)); };
  rtnl_htb_set_rbuffer(c.get(), bucket(rate));
  rtnl_htb_set_cbuffer(c.get(), bucket(ceil));
  nl_msg* raw = nullptr;
  if (int rc = rtnl_class_build_add_request(c.get(), NLM_F_CREATE, &raw); rc < 0) return s.failure(what, nl_geterror(rc));
  NlMsg msg(raw);
  NlOutcome o = s.nl().request(msg.get());
  if (!o.ok())
    return s.failure(what + ": HTB class " + std::to_string(TC_H_MAJ(handle) >> 16) + ":" +
                         std::to_string(TC_H_MIN(handle)),
                     o.message);
  return {};
}

}  // namespace

const std::vector<NiocClass>& niocClasses() {
  // The minors are part of what is on the uplink (and in the port rules): never renumber.
  static const std::vector<NiocClass> classes{{"virtualmachine", 0x10}, {"vmotion", 0x11}, {"management", 0x12},
                                              {"iscsi", 0x13},          {"nfs", 0x14},     {"vsan", 0x15},
                                              {"faulttolerance", 0x16}, {"hbr", 0x17},     {"vdp", 0x18},
                                              {"backupnfc", 0x19}};
  return classes;
}

const NiocClass* niocClass(const std::string& name) {
  for (const auto& c : niocClasses())
    if (name == c.name) return &c;
  return nullptr;
}

std::vector<FieldRule> niocFields() {
  return {{"nioc.enabled", checkNiocField}, {"nioc.uplinkMbps", checkNiocField}, {"nioc.classes.", checkNiocField}};
}

bool niocPath(const std::string& path) { return path.rfind("nioc.", 0) == 0; }

void checkNioc(const Resource& r, Diagnostics& diags) {
  bool any = false;
  for (const auto& [path, v] : r.attrs.values()) any = any || (niocPath(path) && !v.is_null());
  if (!any || r.attrs.getBool("nioc.enabled") == false) return;
  auto fail = [&](const std::string& path, const std::string& m) {
    diags.error(r.locOf(path), "linux: " + r.addr.str() + ": " + m, "provider/invalid");
  };
  if (r.attrs.getBool("nioc.enabled") != true)
    fail("nioc.uplinkMbps", "nioc needs enabled: true (NIOC divides the uplink only when it is enabled)");
  auto uplink = r.attrs.getInt("nioc.uplinkMbps");
  if (!uplink)
    return fail("nioc.enabled", "nioc needs uplinkMbps on linux: the HTB tree divides a rate it is told (a NIC, let "
                                "alone a veth, does not say what its link really carries)");
  if (r.attrs.getStrings("uplinks.nics").empty())
    fail("nioc.enabled", "nioc divides the switch's uplink: set uplinks.nics");
  int64_t reserved = 0;
  for (const auto& c : niocClasses()) {
    auto res = r.attrs.getInt(classPath(c, "reservationMbps"));
    auto lim = r.attrs.getInt(classPath(c, "limitMbps"));
    reserved += res.value_or(0);
    if (res && lim && *lim < *res)
      fail(classPath(c, "limitMbps"), "nioc class " + std::string(c.name) + ": limitMbps " + std::to_string(*lim) +
                                          " is below its reservationMbps " + std::to_string(*res));
    if (lim && *lim > *uplink)
      fail(classPath(c, "limitMbps"), "nioc class " + std::string(c.name) + ": limitMbps " + std::to_string(*lim) +
                                          " is above uplinkMbps " + std::to_string(*uplink));
  }
  if (reserved > *uplink)
    fail("nioc.uplinkMbps", "the nioc classes reserve " + std::to_string(reserved) + " Mbit/s, more than uplinkMbps " +
                                std::to_string(*uplink));
}

void normalizeNioc(Resource& r) {
  auto set = [&](const std::string& path, Json v) {
    if (!r.attrs.has(path)) r.origins[path] = AttrOrigin{Origin::Default, ""};
    r.attrs.set(path, std::move(v));
  };
  const bool on = r.attrs.getBool("nioc.enabled") == true;
  if (!on) {
    // Off (or left out): no tree, said as null so that a tree still on the uplink is a difference.
    std::vector<std::string> paths;
    for (const auto& [path, v] : r.attrs.values())
      if (niocPath(path)) paths.push_back(path);
    for (const auto& p : paths) r.attrs.erase(p), r.origins.erase(p);
    set("nioc.enabled", nullptr);
    return;
  }
  if (auto u = r.attrs.find("nioc.uplinkMbps"); u && u->is_number_float()) r.attrs.set("nioc.uplinkMbps", static_cast<int64_t>(u->get<double>()));
  for (const auto& c : niocClasses()) {
    bool declared = false;
    for (const char* k : {"shares", "reservationMbps", "limitMbps"}) declared = declared || r.attrs.has(classPath(c, k));
    // A class without shares is normal (50), the virtual machines' too, as the ovs provider has it (one manifest,
    // one behaviour); the VM class is the default class and always exists.
    if (!declared && std::string(c.name) != "virtualmachine") {
      for (const char* k : {"shares", "reservationMbps", "limitMbps"}) set(classPath(c, k), nullptr);
      continue;
    }
    if (const Json* sh = r.attrs.find(classPath(c, "shares")))
      r.attrs.set(classPath(c, "shares"), sharesOf(*sh));
    else
      set(classPath(c, "shares"), 50);
    if (!r.attrs.has(classPath(c, "reservationMbps"))) set(classPath(c, "reservationMbps"), 0);
    if (!r.attrs.has(classPath(c, "limitMbps"))) set(classPath(c, "limitMbps"), nullptr);
  }
}

int niocDevice(LinuxSession& s, int bridgeIndex) {
  const SwitchInfo* sw = s.topo().switchAt(bridgeIndex);
  if (!sw || sw->uplinks.size() != 1) return 0;
  return sw->uplinks.front();
}

void observeNioc(LinuxSession& s, const LinkInfo& bridge, Attrs& a) {
  const int dev = niocDevice(s, bridge.index);
  if (!dev) return;
  const auto& qd = s.qdiscs();
  auto q = qd.find(dev);
  if (q == qd.end() || q->second.value("kind", "") != "htb" || q->second.value("handle", 0u) != TC_HANDLE(1, 0)) return;
  auto dumped = dumpClasses(s.nl(), dev);
  if (!dumped.ok()) return s.observeFailed("list the HTB classes of " + bridge.name + "'s uplink", dumped.error().message);
  const auto& classes = *dumped;
  auto root = classes.find(TC_HANDLE(1, kRootMinor));
  a.set("nioc.enabled", true);
  if (root == classes.end()) return;  // a tree that is not vnetplan's shape: shows as missing uplinkMbps
  a.set("nioc.uplinkMbps", mbps(root->second.ceil));
  for (const auto& c : niocClasses()) {
    auto it = classes.find(TC_HANDLE(1, c.minor));
    if (it == classes.end()) continue;
    const HtbClass& h = it->second;
    a.set(classPath(c, "shares"), h.quantum % kShareBytes == 0 ? Json(static_cast<int64_t>(h.quantum / kShareBytes))
                                                               : Json(static_cast<double>(h.quantum) / kShareBytes));
    a.set(classPath(c, "reservationMbps"), h.rate <= kNoReservation ? Json(0) : mbps(h.rate));
    a.set(classPath(c, "limitMbps"), h.ceil == root->second.ceil ? Json(nullptr) : mbps(h.ceil));
  }
}

Status dropNioc(LinuxSession& s, const std::string& sw, int device) {
  if (!device) return {};
  return deleteTree(s, "remove the nioc of switch " + sw, device);
}

Status syncNioc(LinuxSession& s, const std::string& sw, const Attrs& a, int bridgeIndex, int formerUplink) {
  const std::string what = "set the nioc of switch " + sw;
  const int dev = niocDevice(s, bridgeIndex);
  if (formerUplink && formerUplink != dev)
    if (Status st = deleteTree(s, what + " (its former uplink)", formerUplink); !st.ok()) return st;
  if (!enabled(a)) return dev ? deleteTree(s, what, dev) : Status{};
  if (!dev) return s.failure(what, "the switch has no uplink (one NIC or a bond) to divide");
  // The tree is made whole each time (an exact tree, classes taken out included): delete, then add.
  if (Status st = deleteTree(s, what, dev); !st.ok()) return st;
  std::unique_ptr<rtnl_qdisc, QdiscFree> q(rtnl_qdisc_alloc());
  if (!q) return s.failure(what, "out of memory");
  rtnl_tc_set_ifindex(TC_CAST(q.get()), dev);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_ROOT);
  rtnl_tc_set_handle(TC_CAST(q.get()), TC_HANDLE(1, 0));
  if (rtnl_tc_set_kind(TC_CAST(q.get()), "htb") < 0) return s.failure(what, "libnl has no htb");
  rtnl_htb_set_defcls(q.get(), TC_HANDLE(1, kDefaultMinor));
  nl_msg* raw = nullptr;
  if (int rc = rtnl_qdisc_build_add_request(q.get(), NLM_F_CREATE | NLM_F_REPLACE, &raw); rc < 0)
    return s.failure(what, nl_geterror(rc));
  NlMsg msg(raw);
  if (NlOutcome o = s.nl().request(msg.get()); !o.ok()) return s.failure(what + ": HTB qdisc", o.message);
  const uint64_t uplink = static_cast<uint64_t>(*a.getInt("nioc.uplinkMbps")) * kBytesPerMbps;
  if (Status st = addClass(s, what, dev, TC_HANDLE(1, 0), TC_HANDLE(1, kRootMinor), uplink, uplink, 0); !st.ok()) return st;
  for (const auto& c : niocClasses()) {
    auto shares = a.getInt(classPath(c, "shares"));
    if (!shares) continue;
    const int64_t res = a.getInt(classPath(c, "reservationMbps")).value_or(0);
    const auto lim = a.getInt(classPath(c, "limitMbps"));
    const uint64_t rate = res > 0 ? static_cast<uint64_t>(res) * kBytesPerMbps : kNoReservation;
    const uint64_t ceil = lim ? static_cast<uint64_t>(*lim) * kBytesPerMbps : uplink;
    if (Status st = addClass(s, what + ": class " + c.name, dev, TC_HANDLE(1, kRootMinor), TC_HANDLE(1, c.minor), rate,
                             ceil, static_cast<uint32_t>(*shares) * kShareBytes);
        !st.ok())
      return st;
  }
  return {};
}

// ---- ports

void checkNiocClassField(const FieldCheck& fc) {
  if (!fc.requireString()) return;
  const std::string v = fc.value.get<std::string>();
  if (!niocClass(v)) return fc.fail("field niocClass: no traffic class " + v);
  const std::string type = fc.resource.attrs.getString("type").value_or("");
  if (v != "virtualmachine" && type != "tap" && type != "veth")
    fc.fail("field niocClass: only a tap or veth Port's traffic can be put in a class other than virtualmachine on "
            "linux (its frames are classified as they enter the bridge from it), not type '" + type + "'",
            "provider/unsupported");
}

void checkGroupNiocClassField(const FieldCheck& fc) {
  if (!fc.requireString()) return;
  if (!niocClass(fc.value.get<std::string>())) fc.fail("field niocClass: no traffic class " + fc.value.get<std::string>());
}

void checkNiocClasses(const std::vector<const Resource*>& resources, Diagnostics& diags) {
  std::map<std::string, const Resource*> switches, groups;
  for (const Resource* r : resources) {
    if (r->addr.kind == Kind::Switch) switches[r->addr.name] = r;
    if (r->addr.kind == Kind::PortGroup) groups[r->addr.name] = r;
  }
  for (const Resource* r : resources) {
    if (r->addr.kind != Kind::Port) continue;
    auto cls = r->attrs.getString("niocClass");
    if (!cls || !niocClass(*cls)) continue;
    auto sw = r->attrs.getString("switch");
    if (auto pg = r->attrs.getString("portGroup"))
      if (auto g = groups.find(*pg); g != groups.end()) sw = g->second->attrs.getString("switch");
    const Resource* s = sw ? (switches.count(*sw) ? switches[*sw] : nullptr) : nullptr;
    std::string why;
    if (!s)
      why = "the port is on no Switch of these manifests, so no NIOC tree classifies it";
    else if (s->attrs.getBool("nioc.enabled") != true)
      why = "its switch " + *sw + " has no nioc (enabled: true)";
    else if (!s->attrs.getInt(classPath(*niocClass(*cls), "shares")))
      why = "its switch " + *sw + "'s nioc has no class " + *cls + " (declare nioc.classes." + *cls + ")";
    if (!why.empty())
      diags.error(r->locOf("niocClass"),
                  "linux: " + r->addr.str() + ": niocClass " + *cls + ": " + why +
                      "; its traffic would go to class virtualmachine without a word",
                  "provider/invalid");
  }
}

namespace {

std::vector<Json> classEntries(const std::string& port, const NiocClass& c) {
  const std::string t = tableOf(port);
  char id[16];
  std::snprintf(id, sizeof id, "1:%x", c.minor);
  return {Json{{"table", {{"family", "bridge"}, {"name", t}}}},
          Json{{"chain",
                {{"family", "bridge"}, {"table", t}, {"name", "classify"}, {"type", "filter"}, {"hook", "forward"},
                 {"prio", 0}, {"policy", "accept"}}}},
          Json{{"rule",
                {{"family", "bridge"},
                 {"table", t},
                 {"chain", "classify"},
                 {"comment", std::string("niocClass: ") + c.name},
                 {"expr", Json::array({Json{{"match", {{"op", "=="}, {"left", {{"meta", {{"key", "iifname"}}}}}, {"right", port}}}},
                                       Json{{"mangle", {{"key", {{"meta", {{"key", "priority"}}}}}, {"value", id}}}}})}}}}};
}

}  // namespace

Status syncNiocClass(LinuxSession& s, const std::string& port, const Attrs& a) {
  const NiocClass* c = niocClass(a.getString("niocClass").value_or(""));
  std::vector<Json> es;
  if (c && std::string(c->name) != "virtualmachine") es = classEntries(port, *c);
  if (es.empty() && !s.nftTableAfterFlush("bridge", tableOf(port))) return {};
  s.stageNftTable("bridge", tableOf(port), std::move(es));
  return {};
}

Status dropNiocClass(LinuxSession& s, const std::string& port) {
  if (s.nftTableAfterFlush("bridge", tableOf(port))) s.stageNftTable("bridge", tableOf(port), {});
  return {};
}

void observeNiocClass(LinuxSession& s, const std::string& port, Attrs& a) {
  const std::string t = tableOf(port);
  std::vector<Json> mine;
  std::string cls;
  for (const auto& e : s.ownedNft()) {
    const Json& body = e.begin().value();
    if (body.value("family", "") != "bridge") continue;
    if ((e.contains("table") ? body.value("name", "") : body.value("table", "")) != t) continue;
    mine.push_back(e);
    const std::string comment = e.contains("rule") ? body.value("comment", "") : "";
    if (comment.rfind("niocClass: ", 0) == 0) cls = comment.substr(11);
  }
  if (mine.empty()) return;
  const NiocClass* c = niocClass(cls);
  if (c && mine == classEntries(port, *c)) a.set("niocClass", cls);
  else a.set("niocClass", (cls.empty() ? std::string("(none)") : cls) + " (its nftables table bridge " + t + " was changed by hand)");
}

}  // namespace vnetplan::lnx
