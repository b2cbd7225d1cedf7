// Network = a libvirt-style VM network (DESIGN §2, "Network modes"): a bridge of its own with the host's address
// on it (every mode but bridged, which marks an existing bridge), IPv4 forwarding on that bridge and on
// `forwardDev` only (never the global switch), and the mode's firewall and NAT rules in an nftables table of its
// own (nft.h), staged by every create and update and committed with the target's other nftables changes in one
// atomic batch at the end of the apply (LinuxSession::flush).
//
// What a mode allows is the connectivity table of DESIGN §2; the rules below implement it. Bridge netfilter (on in
// a new namespace) sends frames bridged between two ports of the bridge through the inet forward hook too, with
// the bridge as both iif and oif: that VM<->VM traffic is accepted first, in every mode.
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>

#include <algorithm>
#include <set>

#include "base/netaddr.h"
#include "providers/linux/dnsmasq.h"
#include "providers/linux/kind.h"
#include "providers/linux/records.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

namespace {

const char* const kTablePrefix = "vnp-net-";

std::string tableName(const std::string& network) { return kTablePrefix + network; }

bool ownsBridge(const std::string& mode) { return mode != "bridged"; }
// Modes whose VMs reach beyond the host by routing: the bridge and forwardDev forward.
bool forwards(const std::string& mode) { return mode == "nat" || mode == "routed" || mode == "open"; }
// Modes vnetplan writes rules for (open: the host's own rules decide; bridged: the bridge's LAN does).
bool writesRules(const std::string& mode) {
  return mode == "nat" || mode == "routed" || mode == "isolated" || mode == "host-only" || mode == "internal";
}
bool servesDhcp(const std::string& mode) {
  return mode == "nat" || mode == "routed" || mode == "isolated" || mode == "host-only";
}

struct PortForward {
  std::string proto;
  int64_t port = 0;
  std::string toIp;
  int64_t toPort = 0;
  Json json() const { return Json{{"proto", proto}, {"port", port}, {"to", toIp + ":" + std::to_string(toPort)}}; }
};

// A port forward as the manifest spells it; nullopt when it is not one (check() says why).
std::optional<PortForward> parsePortForward(const Json& j, std::string* why = nullptr) {
  auto fail = [&](const std::string& w) -> std::optional<PortForward> {
    if (why) *why = w;
    return std::nullopt;
  };
  if (!j.is_object()) return fail("a port forward is {proto, port, to}");
  PortForward pf;
  if (!j.contains("proto") || !j["proto"].is_string() ||
      (j["proto"].get<std::string>() != "tcp" && j["proto"].get<std::string>() != "udp"))
    return fail("proto must be tcp or udp");
  pf.proto = j["proto"].get<std::string>();
  if (!j.contains("port") || !j["port"].is_number_integer() || j["port"].get<int64_t>() < 1 ||
      j["port"].get<int64_t>() > 65535)
    return fail("port must be a port number 1..65535");
  pf.port = j["port"].get<int64_t>();
  if (!j.contains("to") || !j["to"].is_string()) return fail("to must be IP or IP:PORT of a VM");
  std::string to = j["to"].get<std::string>();
  pf.toPort = pf.port;
  if (auto colon = to.find(':'); colon != std::string::npos) {
    std::string p = to.substr(colon + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
        std::stol(p) < 1 || std::stol(p) > 65535)
      return fail("the port of to '" + to + "' is not a port number");
    pf.toPort = std::stol(p);
    to = to.substr(0, colon);
  }
  auto ip = parseAddress(to);
  if (!ip || ip->family != AF_INET) return fail("to '" + to + "' is not an IPv4 address");
  pf.toIp = ip->addressStr();
  return pf;
}

// The Network as the kernel gets it.
struct NetSpec {
  std::string name, mode, bridge, forwardDev;
  std::optional<IpPrefix> address;  // the host's address; its network is the subnet
  std::vector<PortForward> forwards;
};

NetSpec specOf(const std::string& name, const Attrs& a) {
  NetSpec n;
  n.name = name;
  n.mode = a.getString("mode").value_or("");
  n.bridge = a.getString("bridge").value_or(name);
  n.forwardDev = a.getString("forwardDev").value_or("");
  if (auto addr = a.getString("ipv4.address")) n.address = parsePrefix(*addr);
  if (const Json* pfs = a.find("portForwards"); pfs && pfs->is_array())
    for (const auto& j : *pfs)
      if (auto pf = parsePortForward(j)) n.forwards.push_back(*pf);
  return n;
}

// ---- the rules, in the shape `nft -j list` gives them back (so observe compares them as they are)

Json meta(const char* key, const std::string& name) {
  return Json{{"match", {{"op", "=="}, {"left", {{"meta", {{"key", key}}}}}, {"right", name}}}};
}
Json ipMatch(const char* field, const IpPrefix& net) {
  IpPrefix n = net.network();
  return Json{{"match",
               {{"op", "=="},
                {"left", {{"payload", {{"protocol", "ip"}, {"field", field}}}}},
                {"right", {{"prefix", {{"addr", n.addressStr()}, {"len", n.prefixLen}}}}}}}};
}
Json verdict(const char* v) { return Json{{v, nullptr}}; }

struct Chain {
  const char* name;
  const char* type;
  const char* hook;
  int prio;
};
constexpr Chain kForward{"filter_forward", "filter", "forward", 0};
constexpr Chain kInput{"filter_input", "filter", "input", 0};
constexpr Chain kOutput{"filter_output", "filter", "output", 0};
constexpr Chain kPrerouting{"nat_prerouting", "nat", "prerouting", -100};
constexpr Chain kPostrouting{"nat_postrouting", "nat", "postrouting", 100};

// Every entry of the Network's table (table, chains, then each chain's rules in order); empty when the mode
// writes no rules.
std::vector<Json> tableEntries(const NetSpec& n) {
  std::vector<Json> out;
  if (!writesRules(n.mode)) return out;
  const std::string t = tableName(n.name);
  out.push_back(Json{{"table", {{"family", "inet"}, {"name", t}}}});
  std::vector<std::pair<Chain, std::vector<Json>>> chains;
  const std::string& B = n.bridge;
  const std::string& F = n.forwardDev;
  std::vector<Json> fwd;
  fwd.push_back(Json::array({meta("iifname", B), meta("oifname", B), verdict("accept")}));
  if ((n.mode == "nat" || n.mode == "routed") && n.address && !F.empty()) {
    fwd.push_back(Json::array({meta("iifname", B), meta("oifname", F), ipMatch("saddr", *n.address), verdict("accept")}));
    if (n.mode == "nat") {
      fwd.push_back(Json::array(
          {meta("iifname", F), meta("oifname", B),
           Json{{"match", {{"op", "in"}, {"left", {{"ct", {{"key", "state"}}}}}, {"right", Json::array({"established", "related"})}}}},
           verdict("accept")}));
      if (!n.forwards.empty())
        fwd.push_back(Json::array({meta("iifname", F), meta("oifname", B),
                                   Json{{"match", {{"op", "in"}, {"left", {{"ct", {{"key", "status"}}}}}, {"right", "dnat"}}}},
                                   verdict("accept")}));
    } else {
      fwd.push_back(Json::array({meta("iifname", F), meta("oifname", B), ipMatch("daddr", *n.address), verdict("accept")}));
    }
  }
  fwd.push_back(Json::array({meta("iifname", B), verdict("drop")}));
  fwd.push_back(Json::array({meta("oifname", B), verdict("drop")}));
  chains.push_back({kForward, fwd});
  if (n.mode == "internal") {
    // The host has no address on the network, but would still answer on its others (weak host model).
    chains.push_back({kInput, {Json::array({meta("iifname", B), verdict("drop")})}});
    chains.push_back({kOutput, {Json::array({meta("oifname", B), verdict("drop")})}});
  }
  if (n.mode == "nat" && n.address && !F.empty()) {
    std::vector<Json> pre;
    for (const auto& pf : n.forwards)
      pre.push_back(Json::array(
          {meta("iifname", F),
           Json{{"match", {{"op", "=="}, {"left", {{"payload", {{"protocol", pf.proto}, {"field", "dport"}}}}}, {"right", pf.port}}}},
           Json{{"dnat", {{"family", "ip"}, {"addr", pf.toIp}, {"port", pf.toPort}}}}}));
    chains.push_back({kPrerouting, pre});
    chains.push_back({kPostrouting, {Json::array({meta("oifname", F), ipMatch("saddr", *n.address), verdict("masquerade")})}});
  }
  for (const auto& [c, rules] : chains)
    out.push_back(Json{{"chain",
                        {{"family", "inet"}, {"table", t}, {"name", c.name}, {"type", c.type}, {"hook", c.hook},
                         {"prio", c.prio}, {"policy", "accept"}}}});
  for (const auto& [c, rules] : chains)
    for (const auto& r : rules)
      out.push_back(Json{{"rule", {{"family", "inet"}, {"table", t}, {"chain", c.name}, {"expr", r}}}});
  return out;
}

// The table is staged with the session and committed with every other nftables change of the apply in one batch
// (LinuxSession::flush): a failure anywhere before it leaves the tables as they were.
Status syncTable(LinuxSession& s, const NetSpec& n, const std::string&) {
  s.stageNftTable("inet", tableName(n.name), tableEntries(n));
  return {};
}

Status dropTable(LinuxSession& s, const std::string& network, const std::string&) {
  s.stageNftTable("inet", tableName(network), {});
  return {};
}

// ---- per-interface IPv4 forwarding (IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF: the devconf of one device)

Status setForwarding(LinuxSession& s, const std::string& what, int ifindex, bool on) {
  NlMsg m = newMsg(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  bool ok = m && nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) == 0;
  nlattr* spec = ok ? nla_nest_start(m.get(), IFLA_AF_SPEC) : nullptr;
  nlattr* inet = spec ? nla_nest_start(m.get(), AF_INET) : nullptr;
  nlattr* conf = inet ? nla_nest_start(m.get(), IFLA_INET_CONF) : nullptr;
  ok = conf && nla_put_u32(m.get(), IPV4_DEVCONF_FORWARDING, on ? 1 : 0) == 0;
  if (!ok) return s.failure(what, "cannot build the request (out of memory)");
  nla_nest_end(m.get(), conf);
  nla_nest_end(m.get(), inet);
  nla_nest_end(m.get(), spec);
  NlOutcome o = s.nl().request(m.get());
  if (!o.ok()) return s.failure(what + std::string(": turn IPv4 forwarding ") + (on ? "on" : "off"), o.message);
  return {};
}

// forwardDev: recorded first (with how it was), then forwarding on.
Status takeForwardDev(LinuxSession& s, const std::string& network, const std::string& dev, const std::string& verb) {
  const std::string what = verb + " network " + network + ": forwardDev " + dev;
  auto l = s.getLink(dev);
  if (!l.ok()) return s.failure(what, l.error().message);
  std::optional<bool> before;
  bool ours = false;
  for (const auto& a : l->altnames)
    if (auto r = parseFwdRecord(a)) {
      if (r->network == network) ours = true;
      before = r->before;
    }
  if (!ours) {
    bool was = before.value_or(l->ipv4Forwarding.value_or(false));
    if (NlOutcome o = addAltname(s.nl(), l->index, fwdRecord(network, was)); !o.ok()) return s.failure(what, o.message);
  }
  return setForwarding(s, what, l->index, true);
}

// The record goes; the last Network to let go restores the device's forwarding as it was.
Status releaseForwardDev(LinuxSession& s, const std::string& network, const std::string& dev, const std::string& verb) {
  const std::string what = verb + " network " + network + ": release forwardDev " + dev;
  auto l = s.getLink(dev);
  if (!l.ok()) return {};  // the device is gone: nothing left to restore
  std::optional<FwdRecord> mine;
  bool others = false;
  for (const auto& a : l->altnames)
    if (auto r = parseFwdRecord(a)) {
      if (r->network == network) mine = r;
      else others = true;
    }
  if (!mine) return {};
  if (!others)
    if (Status st = setForwarding(s, what, l->index, mine->before); !st.ok()) return st;
  if (NlOutcome o = delAltname(s.nl(), l->index, fwdRecord(network, mine->before)); !o.ok())
    return s.failure(what, o.message);
  return {};
}

Status createBridge(LinuxSession& s, const std::string& network, const std::string& name, int* index) {
  const std::string what = "create network " + network + ": bridge " + name;
  NlMsg m = newMsg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = ifi.ifi_change = IFF_UP;
  bool ok = m && nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) == 0 &&
            nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) == 0;
  nlattr* info = ok ? nla_nest_start(m.get(), IFLA_LINKINFO) : nullptr;
  ok = info && nla_put_string(m.get(), IFLA_INFO_KIND, "bridge") == 0;
  if (!ok) return s.failure(what, "cannot build the request (out of memory)");
  nla_nest_end(m.get(), info);
  auto created = s.createLink(m.get(), name);
  if (!created.ok()) return s.failure(what, created.error().message);
  *index = *created;
  return {};
}

void rememberNetwork(LinuxSession& s, const NetSpec& n, int bridgeIndex) {
  NetworkInfo& info = s.topo().networks[n.name];
  info.name = n.name;
  info.mode = n.mode;
  info.bridgeIndex = bridgeIndex;
  if (ownsBridge(n.mode)) {
    s.topo().netBridges[bridgeIndex] = n.name;
    s.topo().switches.erase(bridgeIndex);
  }
}

void forgetNetwork(LinuxSession& s, const std::string& name) {
  auto it = s.topo().networks.find(name);
  if (it == s.topo().networks.end()) return;
  s.topo().netBridges.erase(it->second.bridgeIndex);
  s.topo().networks.erase(it);
}

// ---- hooks

Status networkCreate(LinuxSession& s, const Step& step) {
  const NetSpec n = specOf(step.addr.name, step.after);
  const std::string what = "create network " + n.name;
  if (!ownsBridge(n.mode)) {
    auto index = s.ifindex(n.bridge);
    if (!index.ok()) return s.failure(what, "bridged mode joins the existing bridge " + n.bridge + ": " + index.error().message);
    if (NlOutcome o = addAltname(s.nl(), *index, netMark(n.name, n.mode)); !o.ok()) return s.failure(what, o.message);
    rememberNetwork(s, n, *index);
    return {};
  }
  int index = 0;
  if (Status st = createBridge(s, n.name, n.bridge, &index); !st.ok()) return st;
  bool tookFwd = false;
  auto undo = [&](Status st) {
    (void)dropTable(s, n.name, "undo");
    (void)stopDnsmasq(s, n.name);
    if (tookFwd) (void)releaseForwardDev(s, n.name, n.forwardDev, "undo");
    (void)deleteLink(s, kNetworkOps, n.bridge);
    forgetNetwork(s, n.name);
    return st;
  };
  // Recorded before anything else: a crash half-way leaves a bridge that observe knows as this Network.
  if (NlOutcome o = addAltname(s.nl(), index, netMark(n.name, n.mode)); !o.ok()) return undo(s.failure(what, o.message));
  rememberNetwork(s, n, index);
  if (n.address)
    if (Status st = addAddresses(s, kNetworkOps, n.bridge, index, {n.address->str()}); !st.ok()) return undo(st);
  if (Status st = setForwarding(s, what + ": bridge " + n.bridge, index, forwards(n.mode)); !st.ok()) return undo(st);
  if ((n.mode == "nat" || n.mode == "routed") && !n.forwardDev.empty()) {
    tookFwd = true;
    if (Status st = takeForwardDev(s, n.name, n.forwardDev, "create"); !st.ok()) return undo(st);
  }
  if (writesRules(n.mode))
    if (Status st = syncTable(s, n, "create"); !st.ok()) return undo(st);
  if (servesDhcp(n.mode) && step.after.getString("ipv4.dhcp.start"))
    if (Status st = startDnsmasq(s, n.name, dnsmasqConfig(n.name, n.bridge, step.after)); !st.ok()) return undo(st);
  return {};
}

Status networkUpdate(LinuxSession& s, const Step& step) {
  const NetSpec before = specOf(step.addr.name, step.before);
  const NetSpec n = specOf(step.addr.name, step.after);
  const std::string what = "update network " + n.name;
  // The mode as observed may carry a note on what was changed by hand ("nat (firewall rules changed by hand)").
  std::string beforeMode = before.mode.substr(0, before.mode.find(' '));
  if (ownsBridge(beforeMode) != ownsBridge(n.mode))
    return s.failure(what, "changing mode between bridged (an existing bridge) and " +
                               (ownsBridge(n.mode) ? n.mode : beforeMode) +
                               " (a bridge of its own) needs a replace: remove the Network and create it again");
  if (before.bridge != n.bridge) {
    if (!ownsBridge(n.mode))
      return s.failure(what, "bridged mode: moving to another bridge needs a replace: remove the Network and create it again");
    // The kernel renames only a link that is down; its ports stay enslaved through the rename.
    auto old = s.ifindex(before.bridge);
    if (!old.ok()) return s.failure(what, old.error().message);
    LinkChange down;
    down.up = false;
    if (Status st = changeLink(s, kNetworkOps, before.bridge, down, "update"); !st.ok()) return st;
    NlMsg m = newMsg(RTM_NEWLINK, 0);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = *old;
    ifi.ifi_flags = ifi.ifi_change = IFF_UP;
    if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) != 0 ||
        nla_put_string(m.get(), IFLA_IFNAME, n.bridge.c_str()) != 0)
      return s.failure(what, "cannot build the request (out of memory)");
    NlOutcome o = s.nl().request(m.get());
    if (!o.ok()) {
      LinkChange up;
      up.up = true;
      (void)changeLink(s, kNetworkOps, before.bridge, up, "undo");
      return s.failure(what + ": rename bridge " + before.bridge + " to " + n.bridge, o.message);
    }
    s.forget(before.bridge);
    s.remember(n.bridge, *old);
  }
  auto index = s.ifindex(n.bridge);
  if (!index.ok()) return s.failure(what, index.error().message);
  if (before.mode != n.mode) {
    if (NlOutcome o = addAltname(s.nl(), *index, netMark(n.name, n.mode)); !o.ok()) return s.failure(what, o.message);
    if (beforeMode != n.mode)
      if (NlOutcome o = delAltname(s.nl(), *index, netMark(n.name, beforeMode)); !o.ok()) return s.failure(what, o.message);
    rememberNetwork(s, n, *index);
  }
  if (!ownsBridge(n.mode)) return {};
  if (changes(step, "ipv4.address")) {
    Attrs was, now;
    was.set("addresses", before.address ? Json::array({before.address->str()}) : Json::array());
    now.set("addresses", n.address ? Json::array({n.address->str()}) : Json::array());
    if (Status st = syncAddresses(s, kNetworkOps, n.bridge, was, now); !st.ok()) return st;
  }
  // Forwarding and rules are rewritten whatever changed: an update is also how drift of them is repaired.
  if (Status st = setForwarding(s, what + ": bridge " + n.bridge, *index, forwards(n.mode)); !st.ok()) return st;
  const std::string newDev = n.mode == "nat" || n.mode == "routed" ? n.forwardDev : "";
  if (!before.forwardDev.empty() && before.forwardDev != newDev)
    if (Status st = releaseForwardDev(s, n.name, before.forwardDev, "update"); !st.ok()) return st;
  if (!newDev.empty())
    if (Status st = takeForwardDev(s, n.name, newDev, "update"); !st.ok()) return st;
  if (Status st = writesRules(n.mode) ? syncTable(s, n, "update") : dropTable(s, n.name, "update"); !st.ok()) return st;
  if (servesDhcp(n.mode) && step.after.getString("ipv4.dhcp.start"))
    return startDnsmasq(s, n.name, dnsmasqConfig(n.name, n.bridge, step.after));
  return stopDnsmasq(s, n.name);
}

Status networkRemove(LinuxSession& s, const Step& step) {
  const NetSpec n = specOf(step.addr.name, step.before);
  const std::string mode = n.mode.substr(0, n.mode.find(' '));
  if (Status st = stopDnsmasq(s, n.name); !st.ok()) return st;
  if (Status st = dropTable(s, n.name, "remove"); !st.ok()) return st;
  if (!n.forwardDev.empty())
    if (Status st = releaseForwardDev(s, n.name, n.forwardDev, "remove"); !st.ok()) return st;
  if (!ownsBridge(mode)) {
    if (auto index = s.ifindex(n.bridge); index.ok())
      if (NlOutcome o = delAltname(s.nl(), *index, netMark(n.name, mode)); !o.ok())
        return s.failure("remove network " + n.name, o.message);
    forgetNetwork(s, n.name);
    return {};
  }
  Status st = deleteLink(s, kNetworkOps, n.bridge);
  forgetNetwork(s, n.name);
  return st;
}

// Port forwards as the prerouting chain has them (what a rule deleted by hand no longer does shows as a missing
// forward).
std::vector<PortForward> observedForwards(const std::vector<Json>& entries, const std::string& table) {
  std::vector<PortForward> out;
  for (const auto& e : entries) {
    if (!e.contains("rule")) continue;
    const Json& r = e["rule"];
    if (r.value("table", "") != table || r.value("chain", "") != kPrerouting.name || !r.contains("expr")) continue;
    PortForward pf;
    bool dport = false, dnat = false;
    for (const auto& x : r["expr"]) {
      if (x.contains("match")) {
        const Json& m = x["match"];
        if (m.contains("left") && m["left"].contains("payload") && m["left"]["payload"].value("field", "") == "dport" &&
            m.contains("right") && m["right"].is_number_integer()) {
          pf.proto = m["left"]["payload"].value("protocol", "");
          pf.port = m["right"].get<int64_t>();
          dport = true;
        }
      } else if (x.contains("dnat") && x["dnat"].is_object()) {
        const Json& d = x["dnat"];
        if (d.contains("addr") && d["addr"].is_string()) pf.toIp = d["addr"].get<std::string>();
        pf.toPort = d.contains("port") && d["port"].is_number_integer() ? d["port"].get<int64_t>() : pf.port;
        dnat = !pf.toIp.empty();
      }
    }
    if (dport && dnat) out.push_back(pf);
  }
  return out;
}

Json forwardsJson(std::vector<PortForward> pfs) {
  Json out = Json::array();
  for (const auto& pf : pfs) out.push_back(pf.json());
  std::sort(out.begin(), out.end());
  return out;
}

void networkObserve(LinuxSession& s, Observation& obs) {
  if (s.topo().networks.empty()) return;
  const std::vector<Json>& entries = s.ownedNft();
  const std::string listError = s.nftError();
  for (const auto& [name, info] : s.topo().networks) {
    const LinkInfo* bridge = s.linkAt(info.bridgeIndex);
    if (!bridge) continue;
    ObservedObject obj;
    obj.addr = Address{s.targetName(), Kind::Network, name};
    Attrs& a = obj.attrs;
    a.set("bridge", bridge->name);
    std::optional<IpPrefix> address;
    if (ownsBridge(info.mode))
      if (const auto* addrs = s.addressesOf(info.bridgeIndex))
        for (const auto& c : *addrs)
          if (auto p = parsePrefix(c); p && p->family == AF_INET && !address) address = p;
    a.set("ipv4.address", address ? Json(address->str()) : Json(nullptr));
    const LinkInfo* fdev = info.forwardDev ? s.linkAt(info.forwardDev) : nullptr;
    a.set("forwardDev", fdev ? Json(fdev->name) : Json(nullptr));
    const std::string table = tableName(name);
    std::vector<Json> mine;
    for (const auto& e : entries) {
      const Json& body = e.begin().value();
      if (body.value("family", "") != "inet") continue;
      if ((e.contains("table") ? body.value("name", "") : body.value("table", "")) == table) mine.push_back(e);
    }
    auto pfs = observedForwards(mine, table);
    if (!pfs.empty() || info.mode == "nat") a.set("portForwards", forwardsJson(pfs));  // the schema: nat only
    observeDnsmasq(s, name, a);
    // What the kernel has against what this Network's attributes make: a difference is drift, said in the mode
    // (which an update rewrites whole).
    NetSpec n;
    n.name = name;
    n.mode = info.mode;
    n.bridge = bridge->name;
    n.address = address;
    n.forwardDev = fdev ? fdev->name : "";
    n.forwards = pfs;
    std::vector<std::string> notes;
    if (!listError.empty() && writesRules(info.mode)) notes.push_back("its nftables table cannot be read: " + listError);
    else if (mine != tableEntries(n))
      notes.push_back(mine.empty() ? "its nftables table is missing" : "its nftables rules were changed by hand");
    if (ownsBridge(info.mode) && bridge->ipv4Forwarding && *bridge->ipv4Forwarding != forwards(info.mode))
      notes.push_back(std::string("IPv4 forwarding on bridge ") + bridge->name + " was turned " +
                      (*bridge->ipv4Forwarding ? "on" : "off") + " by hand");
    if (fdev && forwards(info.mode) && fdev->ipv4Forwarding == false)
      notes.push_back("IPv4 forwarding on " + fdev->name + " was turned off by hand");
    if (a.getString("status.dhcp") == "dead") notes.push_back("its dnsmasq is not running");
    std::string mode = info.mode;
    for (size_t i = 0; i < notes.size(); ++i) mode += (i ? "; " : " (") + notes[i];
    if (!notes.empty()) mode += ")";
    a.set("mode", mode);
    obs.objects.emplace(obj.addr, std::move(obj));
  }
}

// ---- plan time

void checkMode(const FieldCheck& fc) {
  static const std::set<std::string> modes{"bridged", "nat", "routed", "isolated", "host-only", "internal", "open"};
  if (!fc.value.is_string() || !modes.count(fc.value.get<std::string>()))
    fc.fail("field mode must be one of bridged, nat, routed, isolated, host-only, internal, open");
}

void checkIpv4Address(const FieldCheck& fc) {
  std::string why;
  if (!fc.value.is_string()) return fc.fail("field " + fc.path + " must be an IPv4 address with prefix, like 192.168.100.1/24");
  auto p = parsePrefix(fc.value.get<std::string>(), &why);
  if (!p) return fc.fail("field " + fc.path + ": invalid address '" + fc.value.get<std::string>() + "': " + why);
  if (p->family != AF_INET) return fc.fail("field " + fc.path + " must be an IPv4 address");
  if (p->prefixLen > 30) fc.fail("field " + fc.path + ": a /" + std::to_string(p->prefixLen) + " leaves no room for VMs");
  else if (p->addressStr() == p->network().addressStr())
    fc.fail("field " + fc.path + ": " + p->str() + " is the network's own address, not a host's");
}

void checkDhcpAddress(const FieldCheck& fc) {
  auto ip = fc.value.is_string() ? parseAddress(fc.value.get<std::string>()) : std::nullopt;
  if (!ip || ip->family != AF_INET) fc.fail("field " + fc.path + " must be an IPv4 address");
}

void checkPortForwards(const FieldCheck& fc) {
  if (!fc.value.is_array()) return fc.fail("field portForwards must be a list of {proto, port, to}");
  std::set<std::pair<std::string, int64_t>> seen;
  for (const auto& j : fc.value) {
    std::string why;
    auto pf = parsePortForward(j, &why);
    if (!pf) {
      fc.fail("field portForwards: " + j.dump() + ": " + why);
      continue;
    }
    if (!seen.insert({pf->proto, pf->port}).second)
      fc.fail("field portForwards forwards " + pf->proto + " port " + std::to_string(pf->port) + " more than once");
  }
}

void networkCheck(const Resource& r, const Target&, Diagnostics& diags) {
  auto fail = [&](const std::string& m, const std::string& path = "") {
    diags.error(path.empty() ? r.loc : r.locOf(path), "linux: " + r.addr.str() + ": " + m, "provider/invalid");
  };
  const std::string mode = r.attrs.getString("mode").value_or("");
  const bool hasAddr = r.attrs.getString("ipv4.address").has_value();
  const auto bridge = r.attrs.getString("bridge");
  if (bridge)
    if (std::string why = ifnameProblem(*bridge); !why.empty()) fail("invalid bridge name '" + *bridge + "': " + why, "bridge");
  if (!bridge && mode != "bridged")
    if (std::string why = ifnameProblem(r.addr.name); !why.empty())
      fail("the Network's bridge takes its name, which is no interface name (" + why + "); set bridge:");
  if (mode == "bridged") {
    if (!bridge) fail("mode bridged joins an existing bridge: set bridge:");
    for (const char* p : {"ipv4.address", "forwardDev", "portForwards", "ipv4.dhcp.start"})
      if (r.attrs.has(p) && !r.attrs.find(p)->is_null() && !(r.attrs.find(p)->is_array() && r.attrs.find(p)->empty()))
        fail(std::string("field ") + p + " does not apply to mode bridged (the bridge's LAN provides addresses and "
             "routing; put host addresses on the Switch)", p);
  }
  if ((mode == "nat" || mode == "routed" || mode == "isolated" || mode == "host-only") && !hasAddr)
    fail("mode " + mode + " needs ipv4.address (the host's address on the network; its prefix is the subnet)");
  if (mode == "internal" && hasAddr)
    fail("mode internal keeps the host off the network: it takes no ipv4.address", "ipv4.address");
  if ((mode == "nat" || mode == "routed") && !r.attrs.getString("forwardDev"))
    fail("mode " + mode + " needs forwardDev on linux: vnetplan turns IPv4 forwarding on per interface (the "
         "network's bridge and the device its traffic leaves and returns by), never globally");
  if (mode != "nat" && mode != "routed" && r.attrs.getString("forwardDev"))
    fail("field forwardDev only applies to mode nat or routed" +
             std::string(mode == "open" ? " (open: the host's own settings decide where traffic leaves)" : ""),
         "forwardDev");
  if (const Json* pf = r.attrs.find("portForwards"); pf && pf->is_array() && !pf->empty() && mode != "nat")
    fail("field portForwards only applies to mode nat (routed VMs are reachable at their own addresses)", "portForwards");
  const bool dhcp = r.attrs.getString("ipv4.dhcp.start") || r.attrs.getString("ipv4.dhcp.end");
  if (dhcp && !servesDhcp(mode))
    fail("DHCP is served only for mode nat, routed, isolated or host-only", "ipv4.dhcp.start");
  // A range outside the subnet or reversed is lint/dhcp-range's (reconciler/lint.cpp).
  if (dhcp && (!r.attrs.getString("ipv4.dhcp.start") || !r.attrs.getString("ipv4.dhcp.end")))
    fail("ipv4.dhcp needs both start and end", "ipv4.dhcp.start");
  if (const auto name = r.addr.name; netMark(name, "host-only").size() > 127)
    fail("the name is too long for the record vnetplan keeps on the bridge (at most 107 characters)");
}

void networkNormalize(Resource& r) {
  const std::string mode = r.attrs.getString("mode").value_or("");
  if (!r.attrs.has("bridge") && mode != "bridged") {
    r.attrs.set("bridge", r.addr.name);
    r.origins["bridge"] = AttrOrigin{Origin::Default, ""};
  }
  if (auto addr = r.attrs.getString("ipv4.address"))
    if (auto p = parsePrefix(*addr)) r.attrs.set("ipv4.address", p->str());
  for (const char* path : {"ipv4.dhcp.start", "ipv4.dhcp.end"})
    if (auto v = r.attrs.getString(path))
      if (auto p = parseAddress(*v)) r.attrs.set(path, p->addressStr());
  if (const Json* pfs = r.attrs.find("portForwards"); pfs && pfs->is_array()) {
    std::vector<PortForward> out;
    for (const auto& j : *pfs) {
      auto pf = parsePortForward(j);
      if (!pf) return;  // check() reports it
      out.push_back(*pf);
    }
    r.attrs.set("portForwards", forwardsJson(out));
  }
}

// What only the live Network tells: whether its bridge is its own. A bridged Network marks someone else's bridge (a
// Switch's), every other mode owns its bridge, so going between them is not a change of the same object.
void networkCheckChange(const Resource& r, const Attrs& live, Diagnostics& diags) {
  const std::string liveMode = live.getString("mode").value_or("");
  const std::string was = liveMode.substr(0, liveMode.find(' '));
  const std::string mode = r.attrs.getString("mode").value_or("");
  if (was.empty() || mode.empty()) return;
  auto fail = [&](const std::string& path, const std::string& m) {
    diags.error(r.locOf(path), "linux: " + r.addr.str() + ": " + m, "provider/unsupported");
  };
  if (ownsBridge(was) != ownsBridge(mode)) {
    const std::string own = ownsBridge(mode) ? mode : was;
    return fail("mode", "field mode: " + was + " -> " + mode + " cannot be changed in place: a bridged Network marks "
                        "an existing bridge, a " + own + " Network owns a bridge of its own (remove the Network, "
                        "apply, then declare it with its new mode)");
  }
  const auto liveBridge = live.getString("bridge"), bridge = r.attrs.getString("bridge");
  if (!ownsBridge(mode) && liveBridge && bridge && *liveBridge != *bridge)
    fail("bridge", "field bridge: a bridged Network cannot move from bridge " + *liveBridge + " to " + *bridge +
                       " in place (remove the Network, apply, then declare it on the other bridge)");
}

void networkDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  const Attrs& a = step.action == StepAction::Delete ? step.before : step.after;
  const NetSpec n = specOf(step.addr.name, a);
  parts.push_back("mode " + n.mode);
  parts.push_back((ownsBridge(n.mode) ? "bridge " : "on bridge ") + n.bridge);
  if (n.address) parts.push_back("host " + n.address->str());
  if (!n.forwardDev.empty()) parts.push_back("forwarding via " + n.forwardDev);
  for (const auto& pf : n.forwards)
    parts.push_back(pf.proto + "/" + std::to_string(pf.port) + " -> " + pf.toIp + ":" + std::to_string(pf.toPort));
  if (auto start = a.getString("ipv4.dhcp.start"))
    parts.push_back("DHCP " + *start + "-" + a.getString("ipv4.dhcp.end").value_or("?") + " (dnsmasq)");
  if (writesRules(n.mode)) parts.push_back("nftables table inet " + tableName(n.name));
}

KindTraits networkTraits() {
  KindTraits t;
  t.kind = Kind::Network;
  // Another bridge name renames the bridge (down, rename, up: its ports stay on it).
  t.disruptiveOn = {"mode", "bridge", "forwardDev", "ipv4.address"};
  t.unorderedLists = {"portForwards"};
  t.defaults = {{"ipv4.address", nullptr}, {"forwardDev", nullptr}, {"portForwards", Json::array()},
                {"ipv4.dhcp.start", nullptr}, {"ipv4.dhcp.end", nullptr}};
  return t;
}

const KindTraits kNetworkTraits = networkTraits();

}  // namespace

const KindOps kNetworkOps{.kind = Kind::Network,
                          .variant = "",
                          .label = "network",
                          .traits = &kNetworkTraits,
                          .fields = {{"mode", checkMode},
                                     {"bridge", nullptr},
                                     {"ipv4.address", checkIpv4Address},
                                     {"ipv4.dhcp.start", checkDhcpAddress},
                                     {"ipv4.dhcp.end", checkDhcpAddress},
                                     {"forwardDev", checkInterfaceNameField},
                                     {"portForwards", checkPortForwards}},
                          .check = networkCheck,
                          .normalize = networkNormalize,
                          .describe = networkDescribe,
                          .observe = networkObserve,
                          .create = networkCreate,
                          .update = networkUpdate,
                          .remove = networkRemove,
                          .checkChange = networkCheckChange};

}  // namespace vnetplan::lnx
