// Mirror = port mirroring (SPAN) with tc: on every source port a clsact qdisc and a filter matching every frame
// whose mirred action copies it to the destination port (`tc filter add dev P ingress|egress u32 match u32 0 0
// action mirred egress mirror dev D`). The filter is u32 with one empty key, not matchall: the CI kernel has u32
// and bpf as its only classifiers (matchall, basic and flower are not built), and u32 is in every kernel.
// Directions are as the switch sees them, like the ovs provider's:
//   ingress  frames the switch receives from the port (what the guest sends): the port device's ingress
//   egress   frames the switch sends out of the port (what the guest receives): the port device's egress
//   both     both
// The Mirror's name is recorded on the destination port (records.h: vnpmir.<mirror>); its filters carry a priority
// derived from the name (mirrorPrio), which tells them apart from other mirrors' and anyone else's filters.
// Requests are raw rtnetlink (tcmsg + TCA_* attributes): libnl-3.7's classifier/action API leaves the ownership of
// actions unclear, and these are three small nests.
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "providers/linux/kind.h"
#include "providers/linux/records.h"
#include "providers/linux/session.h"
#include "providers/linux/shaping.h"
#include "providers/linux/values.h"

namespace vnetplan::lnx {

namespace {

constexpr uint32_t kIngress = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
constexpr uint32_t kEgress = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS);

// 1000..60999: above what `tc` picks by itself for a first filter (49152 counts down), stable for a name.
uint16_t mirrorPrio(const std::string& mirror) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : mirror) h = (h ^ c) * 16777619u;
  return static_cast<uint16_t>(1000 + h % 60000);
}

bool wantsIngress(const std::string& dir) { return dir == "ingress" || dir == "both"; }
bool wantsEgress(const std::string& dir) { return dir == "egress" || dir == "both"; }

NlMsg tcRequest(int type, int flags, int ifindex, uint32_t parent, uint32_t handle, uint32_t info) {
  NlMsg m = newMsg(type, flags);
  tcmsg tcm{};
  tcm.tcm_family = AF_UNSPEC;
  tcm.tcm_ifindex = ifindex;
  tcm.tcm_parent = parent;
  tcm.tcm_handle = handle;
  tcm.tcm_info = info;
  if (!m || nlmsg_append(m.get(), &tcm, sizeof tcm, NLMSG_ALIGNTO) < 0) return nullptr;
  return m;
}

// The clsact qdisc a port's filters hang on (made if missing; one that exists is fine).
Status ensureClsact(LinuxSession& s, const std::string& what, int dev) {
  NlMsg m = tcRequest(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, dev, TC_H_CLSACT, TC_H_MAKE(TC_H_CLSACT, 0), 0);
  if (!m || nla_put_string(m.get(), TCA_KIND, "clsact") < 0) return s.failure(what, "out of memory");
  NlOutcome o = s.nl().request(m.get());
  if (!o.ok() && o.errnum != EEXIST) return s.failure(what + ": clsact qdisc", o.message);
  return {};
}

Status addFilter(LinuxSession& s, const std::string& what, int dev, uint32_t parent, uint16_t prio, int dest) {
  // Handle 0: u32 numbers its hash table and node itself (800: and 800::800).
  NlMsg m = tcRequest(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, dev, parent, 0,
                      TC_H_MAKE(static_cast<uint32_t>(prio) << 16, htons(ETH_P_ALL)));
  bool ok = m && nla_put_string(m.get(), TCA_KIND, "u32") == 0;
  nlattr* opts = ok ? nla_nest_start(m.get(), TCA_OPTIONS) : nullptr;
  // One key that matches everything (mask 0 at offset 0); terminal: the action decides.
  unsigned char sel[sizeof(tc_u32_sel) + sizeof(tc_u32_key)] = {};
  tc_u32_sel head{};
  head.flags = TC_U32_TERMINAL;
  head.nkeys = 1;
  std::memcpy(sel, &head, sizeof head);  // the key after it stays all zero
  ok = opts && nla_put(m.get(), TCA_U32_SEL, sizeof sel, sel) == 0;
  nlattr* acts = ok ? nla_nest_start(m.get(), TCA_U32_ACT) : nullptr;
  nlattr* first = acts ? nla_nest_start(m.get(), 1) : nullptr;
  ok = first && nla_put_string(m.get(), TCA_ACT_KIND, "mirred") == 0;
  nlattr* aopts = ok ? nla_nest_start(m.get(), TCA_ACT_OPTIONS) : nullptr;
  tc_mirred p{};
  p.action = TC_ACT_PIPE;  // the frame itself goes on as if nothing happened
  p.eaction = TCA_EGRESS_MIRROR;
  p.ifindex = static_cast<uint32_t>(dest);
  ok = aopts && nla_put(m.get(), TCA_MIRRED_PARMS, sizeof p, &p) == 0;
  if (!ok) return s.failure(what, "cannot build the request (out of memory)");
  nla_nest_end(m.get(), aopts);
  nla_nest_end(m.get(), first);
  nla_nest_end(m.get(), acts);
  nla_nest_end(m.get(), opts);
  NlOutcome o = s.nl().request(m.get());
  if (!o.ok()) return s.failure(what + (parent == kIngress ? " (ingress filter)" : " (egress filter)"), o.message);
  return {};
}

Status delFilter(LinuxSession& s, const std::string& what, int dev, uint32_t parent, uint16_t prio) {
  NlMsg m = tcRequest(RTM_DELTFILTER, 0, dev, parent, 0, TC_H_MAKE(static_cast<uint32_t>(prio) << 16, htons(ETH_P_ALL)));
  if (!m) return s.failure(what, "out of memory");
  NlOutcome o = s.nl().request(m.get());
  // Gone already (or never there): the same outcome.
  if (!o.ok() && o.errnum != ENOENT && o.errnum != EINVAL) return s.failure(what, o.message);
  return {};
}

// One mirred u32 filter as dumped.
struct MirredFilter {
  uint16_t prio = 0;
  int dest = 0;
  bool mirror = false;  // egress mirror (what vnetplan writes), not a redirect
};

Result<std::vector<MirredFilter>> dumpFilters(NlSocket& sock, int dev, uint32_t parent) {
  std::vector<MirredFilter> out;
  NlMsg m = tcRequest(RTM_GETTFILTER, NLM_F_DUMP, dev, parent, 0, 0);
  if (!m) return err("out of memory");
  NlOutcome o = sock.dump(
      m.get(),
      [&](const nlmsghdr* h) {
        if (h->nlmsg_type != RTM_NEWTFILTER) return;
        const auto* tcm = static_cast<const tcmsg*>(nlmsg_data(h));
        nlattr* tb[TCA_MAX + 1] = {};
        if (nlmsg_parse(const_cast<nlmsghdr*>(h), sizeof(tcmsg), tb, TCA_MAX, nullptr) < 0 || !tb[TCA_KIND] ||
            !tb[TCA_OPTIONS] || std::string(static_cast<const char*>(nla_data(tb[TCA_KIND]))) != "u32")
          return;
        nlattr* u32[TCA_U32_MAX + 1] = {};
        // The hash table's own entry (800:) has no actions: only the node with them counts.
        if (nla_parse_nested(u32, TCA_U32_MAX, tb[TCA_OPTIONS], nullptr) < 0 || !u32[TCA_U32_ACT]) return;
        nlattr* act;
        int rem;
        nla_for_each_nested(act, u32[TCA_U32_ACT], rem) {
          nlattr* a[TCA_ACT_MAX + 1] = {};
          if (nla_parse_nested(a, TCA_ACT_MAX, act, nullptr) < 0 || !a[TCA_ACT_KIND] || !a[TCA_ACT_OPTIONS]) continue;
          if (std::string(static_cast<const char*>(nla_data(a[TCA_ACT_KIND]))) != "mirred") continue;
          nlattr* mo[TCA_MIRRED_MAX + 1] = {};
          if (nla_parse_nested(mo, TCA_MIRRED_MAX, a[TCA_ACT_OPTIONS], nullptr) < 0 || !mo[TCA_MIRRED_PARMS] ||
              nla_len(mo[TCA_MIRRED_PARMS]) < static_cast<int>(sizeof(tc_mirred)))
            continue;
          tc_mirred p;
          std::memcpy(&p, nla_data(mo[TCA_MIRRED_PARMS]), sizeof p);
          out.push_back(MirredFilter{static_cast<uint16_t>(TC_H_MAJ(tcm->tcm_info) >> 16), static_cast<int>(p.ifindex),
                                     p.eaction == TCA_EGRESS_MIRROR});
        }
      },
      [&] { out.clear(); });
  if (!o.ok()) return err(o.message);
  return out;
}

// Removes the clsact of a port none of whose filters are left (vnetplan made it for the mirror; an empty clsact
// does nothing, and leaving it would be a difference from the pre-image).
void tidyClsact(LinuxSession& s, int dev) {
  bool any = false;
  for (uint32_t parent : {kIngress, kEgress}) {
    NlMsg m = tcRequest(RTM_GETTFILTER, NLM_F_DUMP, dev, parent, 0, 0);
    if (!m) return;
    (void)s.nl().dump(
        m.get(), [&](const nlmsghdr* h) { any = any || h->nlmsg_type == RTM_NEWTFILTER; }, [&] { any = false; });
  }
  if (any) return;
  NlMsg del = tcRequest(RTM_DELQDISC, 0, dev, TC_H_CLSACT, TC_H_MAKE(TC_H_CLSACT, 0), 0);
  if (del) (void)s.nl().request(del.get());
}

// The port's filters of this mirror (both directions) go.
Status dropSource(LinuxSession& s, const std::string& what, const std::string& port, uint16_t prio) {
  auto dev = s.ifindex(port);
  if (!dev.ok()) return {};  // the port is gone, and its filters with it
  for (uint32_t parent : {kIngress, kEgress})
    if (Status st = delFilter(s, what + ": source port " + port, *dev, parent, prio); !st.ok()) return st;
  tidyClsact(s, *dev);
  return {};
}

Status addSources(LinuxSession& s, const std::string& what, const Attrs& a, uint16_t prio, int dest) {
  const std::string dir = a.getString("source.direction").value_or("both");
  for (const auto& port : a.getStrings("source.ports")) {
    auto dev = s.ifindex(port);
    if (!dev.ok()) return s.failure(what, "source port " + port + ": " + dev.error().message);
    if (Status st = ensureClsact(s, what + ": source port " + port, *dev); !st.ok()) return st;
    if (wantsIngress(dir))
      if (Status st = addFilter(s, what + ": source port " + port, *dev, kIngress, prio, dest); !st.ok()) return st;
    if (wantsEgress(dir))
      if (Status st = addFilter(s, what + ": source port " + port, *dev, kEgress, prio, dest); !st.ok()) return st;
  }
  return {};
}

Status mirrorCreate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const std::string what = "create mirror " + name;
  const std::string destName = step.after.getString("destination.port").value_or("");
  auto dest = s.ifindex(destName);
  if (!dest.ok()) return s.failure(what, "destination port " + destName + ": " + dest.error().message);
  // Recorded first: a crash half-way leaves a mirror observe knows (and a rollback removes).
  if (NlOutcome o = addAltname(s.nl(), *dest, mirrorRecord(name)); !o.ok()) return s.failure(what, o.message);
  if (Status st = addSources(s, what, step.after, mirrorPrio(name), *dest); !st.ok()) {
    for (const auto& port : step.after.getStrings("source.ports")) (void)dropSource(s, what, port, mirrorPrio(name));
    (void)delAltname(s.nl(), *dest, mirrorRecord(name));
    return st;
  }
  return {};
}

Status mirrorRemove(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const std::string what = "remove mirror " + name;
  for (const auto& port : step.before.getStrings("source.ports"))
    if (Status st = dropSource(s, what, port, mirrorPrio(name)); !st.ok()) return st;
  if (auto destName = step.before.getString("destination.port"))
    if (auto dest = s.ifindex(*destName); dest.ok())
      if (NlOutcome o = delAltname(s.nl(), *dest, mirrorRecord(name)); !o.ok()) return s.failure(what, o.message);
  return {};
}

// Sources and direction change in place: the filters of the ports before go, those of the ports after come.
Status mirrorUpdate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const std::string what = "update mirror " + name;
  for (const auto& path : step.changed)
    if (path != "source.ports" && path != "source.direction")
      return s.failure(what, "changing " + path + " needs a replace (the engine should have planned one)");
  const std::string destName = step.after.getString("destination.port").value_or("");
  auto dest = s.ifindex(destName);
  if (!dest.ok()) return s.failure(what, "destination port " + destName + ": " + dest.error().message);
  std::set<std::string> ports;
  for (const auto& p : step.before.getStrings("source.ports")) ports.insert(p);
  for (const auto& p : step.after.getStrings("source.ports")) ports.insert(p);
  for (const auto& port : ports)
    if (Status st = dropSource(s, what, port, mirrorPrio(name)); !st.ok()) return st;
  return addSources(s, what, step.after, mirrorPrio(name), *dest);
}

// Mirrors by name from the records; sources from the filters whose priority is the mirror's and whose copies go to
// its destination. Filters are dumped only when some mirror exists.
void mirrorObserve(LinuxSession& s, Observation& obs) {
  std::map<std::string, int> mirrors;  // name -> destination ifindex
  for (const auto& [index, link] : s.links())
    for (const auto& alt : link.altnames)
      if (auto m = parseMirrorRecord(alt)) mirrors.emplace(*m, index);
  if (mirrors.empty()) return;
  // A source port's filters hang on its clsact qdisc: one qdisc dump says which links have one, and only those
  // are asked for their filters (not every link of the namespace, twice).
  std::set<int> clsact;
  NlOutcome listed = dumpTc(
      s.nl(), RTM_GETQDISC, 0,
      [](nl_object* obj, void* arg) {
        auto* q = reinterpret_cast<rtnl_qdisc*>(obj);
        const char* kind = rtnl_tc_get_kind(TC_CAST(q));
        if (kind && std::string(kind) == "clsact") static_cast<std::set<int>*>(arg)->insert(rtnl_tc_get_ifindex(TC_CAST(q)));
      },
      &clsact, [&] { clsact.clear(); });
  if (!listed.ok()) return s.observeFailed("list the clsact qdiscs", listed.message);
  struct Seen {
    std::set<std::string> in, eg;
  };
  std::map<std::string, Seen> seen;
  for (const auto& [index, link] : s.links()) {
    if (!clsact.count(index)) continue;
    for (uint32_t parent : {kIngress, kEgress}) {
      auto filters = dumpFilters(s.nl(), index, parent);
      if (!filters.ok()) return s.observeFailed("list the tc filters of " + link.name, filters.error().message);
      for (const auto& f : *filters)
        for (const auto& [name, dest] : mirrors)
          if (f.prio == mirrorPrio(name) && f.dest == dest && f.mirror)
            (parent == kIngress ? seen[name].in : seen[name].eg).insert(link.name);
    }
  }
  for (const auto& [name, dest] : mirrors) {
    const LinkInfo* d = s.linkAt(dest);
    if (!d) continue;
    ObservedObject o;
    o.addr = Address{s.targetName(), Kind::Mirror, name};
    Attrs& a = o.attrs;
    a.set("destination.port", d->name);
    // The switch is the destination port's.
    std::string sw;
    if (const SwitchInfo* si = s.topo().switchAt(d->master)) sw = si->name;
    else if (auto pg = s.topo().pgBridges.find(d->master); pg != s.topo().pgBridges.end()) {
      if (const PortGroupInfo* g = s.topo().portGroup(pg->second))
        if (const SwitchInfo* si2 = s.topo().switchAt(g->switchIndex)) sw = si2->name;
    } else if (const LinkInfo* m = s.linkAt(d->master)) sw = m->name;
    a.set("switch", sw.empty() ? Json(nullptr) : Json(sw));
    const Seen& x = seen[name];
    std::set<std::string> all = x.in;
    all.insert(x.eg.begin(), x.eg.end());
    a.set("source.ports", Json(std::vector<std::string>(all.begin(), all.end())));
    if (x.in == x.eg) a.set("source.direction", "both");
    else if (x.eg.empty()) a.set("source.direction", "ingress");
    else if (x.in.empty()) a.set("source.direction", "egress");
    else  // some ports one way, some both: not what vnetplan writes, shown as such
      a.set("source.direction", "mixed (ingress: " + Json(std::vector<std::string>(x.in.begin(), x.in.end())).dump() +
                                    ", egress: " + Json(std::vector<std::string>(x.eg.begin(), x.eg.end())).dump() + ")");
    obs.objects.emplace(o.addr, std::move(o));
  }
}

void mirrorCheck(const Resource& r, const Target&, Diagnostics& diags) {
  auto dest = r.attrs.getString("destination.port");
  auto src = r.attrs.getStrings("source.ports");
  if (dest && std::find(src.begin(), src.end(), *dest) != src.end())
    diags.error(r.locOf("destination.port"),
                "linux: " + r.addr.str() + ": destination.port " + *dest + " is also a source port (its copies would "
                "be copied again)",
                "provider/invalid");
  if (mirrorRecord(r.addr.name).size() > 127)
    diags.error(r.loc, "linux: " + r.addr.str() + ": the name is too long for the record vnetplan keeps on the "
                       "destination port (at most 120 characters)",
                "provider/invalid");
}

// Port and switch names are interface names (a Mirror's own name is not one: it may be a port's).
void checkIfnames(const FieldCheck& fc) {
  const Json list = fc.value.is_array() ? fc.value : Json::array({fc.value});
  for (const auto& v : list) {
    if (!v.is_string()) return fc.fail("field " + fc.path + " must name interfaces");
    if (std::string why = ifnameProblem(v.get<std::string>()); !why.empty())
      fc.fail("invalid interface name '" + v.get<std::string>() + "' in field " + fc.path + ": " + why);
  }
}

void checkDirection(const FieldCheck& fc) {
  if (!fc.value.is_string() || (fc.value != "ingress" && fc.value != "egress" && fc.value != "both"))
    fc.fail("field source.direction must be ingress, egress or both");
}

void mirrorDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  const Attrs& a = step.action == StepAction::Delete ? step.before : step.after;
  std::string ports;
  for (const auto& p : a.getStrings("source.ports")) ports += (ports.empty() ? "" : ", ") + p;
  parts.push_back(a.getString("source.direction").value_or("both") + " of " + ports + " -> " +
                  a.getString("destination.port").value_or("?"));
  parts.push_back("tc u32 + mirred, priority " + std::to_string(mirrorPrio(step.addr.name)));
}

KindTraits mirrorTraits() {
  KindTraits t;
  t.kind = Kind::Mirror;
  // The record lives on the destination port; the switch is the destination's.
  t.replaceOn = {"switch", "destination.port"};
  t.unorderedLists = {"source.ports"};
  t.defaults = {{"source.direction", "both"}};
  t.exhaustive = true;  // observe reports exactly what vnetplan manages
  return t;
}

const KindTraits kMirrorTraits = mirrorTraits();

}  // namespace

const KindOps kMirrorOps{.kind = Kind::Mirror,
                         .variant = "",
                         .label = "mirror",
                         .traits = &kMirrorTraits,
                         .fields = {{"switch", checkIfnames},
                                    {"source.ports", checkIfnames},
                                    {"source.direction", checkDirection},
                                    {"destination.port", checkIfnames}},
                         .check = mirrorCheck,
                         .normalize = nullptr,
                         .describe = mirrorDescribe,
                         .observe = mirrorObserve,
                         .create = mirrorCreate,
                         .update = mirrorUpdate,
                         .remove = mirrorRemove};

}  // namespace vnetplan::lnx
