#include "providers/linux/uplinks.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "base/netaddr.h"
#include "providers/linux/attach.h"
#include "providers/linux/caps.h"
#include "providers/linux/records.h"
#include "providers/linux/session.h"
#include "providers/linux/topology.h"

namespace vnetplan::lnx {

namespace {

// ---------------------------------------------------------------- vocabulary

struct ModeName {
  int id;
  const char* name;
};
constexpr ModeName kModes[] = {{0, "balance-rr"}, {1, "active-backup"}, {2, "balance-xor"}, {3, "broadcast"},
                               {4, "802.3ad"},    {5, "balance-tlb"},   {6, "balance-alb"}};
constexpr ModeName kHashes[] = {{0, "layer2"},   {1, "layer3+4"}, {2, "layer2+3"},
                                {3, "encap2+3"}, {4, "encap3+4"}, {5, "vlan+srcmac"}};

const char* modeName(int id) {
  for (const auto& m : kModes)
    if (m.id == id) return m.name;
  return "?";
}
int modeId(const Json* v) {
  if (!v) return -1;
  if (v->is_number_integer()) return v->get<int>() >= 0 && v->get<int>() <= 6 ? v->get<int>() : -1;
  if (v->is_string())
    for (const auto& m : kModes)
      if (v->get<std::string>() == m.name) return m.id;
  return -1;
}
const char* hashName(int id) {
  for (const auto& h : kHashes)
    if (h.id == id) return h.name;
  return nullptr;
}
int hashId(const std::string& name) {
  for (const auto& h : kHashes)
    if (name == h.name) return h.id;
  return -1;
}

// The portable policy a bond mode (and its hash) expresses; "" = none (broadcast).
std::string policyOf(int mode, const std::string& hash) {
  switch (mode) {
    case 0: return "round-robin";
    case 1: return "failover";
    case 2: return hash == "layer2" ? "src-mac" : "ip-hash";
    case 4: return "lacp";
    case 5:
    case 6: return "load-based";
    default: return "";
  }
}
int modeOfPolicy(const std::string& policy, int nativeMode) {
  if (policy == "failover") return 1;
  if (policy == "src-mac" || policy == "ip-hash") return 2;
  if (policy == "lacp") return 4;
  if (policy == "round-robin") return 0;
  if (policy == "load-based") return nativeMode == 6 ? 6 : 5;
  return -1;
}
bool hashedMode(int mode) { return mode == 2 || mode == 4; }

const std::vector<std::string>& teamPaths() {
  static const std::vector<std::string> paths{
      "linux.bond.name",          "linux.bond.mode",          "linux.bond.miimon",
      "linux.bond.updelay",       "linux.bond.downdelay",     "linux.bond.arpInterval",
      "linux.bond.arpIpTarget",   "uplinks.teaming.policy",   "uplinks.teaming.hashPolicy",
      "uplinks.teaming.lacp.rate", "uplinks.teaming.failureDetection", "uplinks.teaming.active",
      "uplinks.teaming.standby",  "uplinks.teaming.failback", "uplinks.teaming.notifySwitches"};
  return paths;
}

bool bondWanted(const Attrs& a) {
  if (a.getStrings("uplinks.nics").size() >= 2) return true;
  for (const auto& [path, v] : a.values())
    if ((path.rfind("uplinks.teaming.", 0) == 0 || path.rfind("linux.bond.", 0) == 0) && !v.is_null()) return true;
  return false;
}

// The bond's name when the manifest gives none: "<switch>-bond", shortened to fit 15 bytes.
std::string defaultBondName(const std::string& sw) {
  std::string base = sw.substr(0, std::min<size_t>(sw.size(), 10));
  return base + "-bond";
}

std::vector<std::string> minus(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> out;
  for (const auto& x : a)
    if (std::find(b.begin(), b.end(), x) == b.end()) out.push_back(x);
  return out;
}

// ---------------------------------------------------------------- the team a switch's attributes describe

struct Team {
  std::vector<std::string> nics;  // in the order they are enslaved: active, standby, the rest
  std::string bond;               // "" = the one NIC is enslaved to the bridge directly
  int mode = 1;
  uint32_t miimon = 0, updelay = 0, downdelay = 0, arpInterval = 0;
  std::vector<std::string> arpTargets;
  int hash = -1, lacpRate = -1;
  std::string primary;
  int reselect = -1, peerNotif = -1;
};

Team teamOf(const Attrs& a) {
  Team t;
  auto nics = a.getStrings("uplinks.nics");
  t.bond = a.getString("linux.bond.name").value_or("");
  if (t.bond.empty()) {
    t.nics = nics;
    return t;
  }
  t.mode = std::max(0, modeId(a.find("linux.bond.mode")));
  auto u = [&](const char* p) { return static_cast<uint32_t>(a.getInt(p).value_or(0)); };
  t.miimon = u("linux.bond.miimon");
  t.updelay = u("linux.bond.updelay");
  t.downdelay = u("linux.bond.downdelay");
  t.arpInterval = u("linux.bond.arpInterval");
  t.arpTargets = a.getStrings("linux.bond.arpIpTarget");
  if (auto h = a.getString("uplinks.teaming.hashPolicy")) t.hash = hashId(*h);
  if (auto r = a.getString("uplinks.teaming.lacp.rate")) t.lacpRate = *r == "fast" ? 1 : 0;
  auto active = a.getStrings("uplinks.teaming.active");
  if (t.mode == 1 && !active.empty()) t.primary = active[0];
  if (auto f = a.getBool("uplinks.teaming.failback")) t.reselect = *f ? 0 : 2;
  if (auto n = a.getBool("uplinks.teaming.notifySwitches")) t.peerNotif = *n ? 1 : 0;
  // Enslaved in failover order: the bond falls back to the first healthy NIC in its list.
  for (const auto& n : active) t.nics.push_back(n);
  for (const auto& n : a.getStrings("uplinks.teaming.standby"))
    if (std::find(t.nics.begin(), t.nics.end(), n) == t.nics.end()) t.nics.push_back(n);
  for (const auto& n : nics)
    if (std::find(t.nics.begin(), t.nics.end(), n) == t.nics.end()) t.nics.push_back(n);
  return t;
}

// ---------------------------------------------------------------- netlink

enum OptionSet : unsigned {
  kMode = 1,
  kMonitor = 2,  // miimon, updelay, downdelay, arp_interval, arp_ip_target
  kHash = 4,
  kLacpRate = 8,
  kPrimary = 16,  // primary, primary_reselect, num_peer_notif
  kAll = 31,
};

// IFLA_LINKINFO {kind bond, data {the options of `which` that apply to the team's mode}}.
bool putBond(nl_msg* m, const Team& t, unsigned which, int primaryIndex) {
  nlattr* info = nla_nest_start(m, IFLA_LINKINFO);
  if (!info || nla_put_string(m, IFLA_INFO_KIND, "bond") < 0) return false;
  nlattr* data = nla_nest_start(m, IFLA_INFO_DATA);
  if (!data) return false;
  bool ok = true;
  if (which & kMode) ok = ok && nla_put_u8(m, IFLA_BOND_MODE, static_cast<uint8_t>(t.mode)) == 0;
  if (which & kMonitor) {
    ok = ok && nla_put_u32(m, IFLA_BOND_MIIMON, t.miimon) == 0;
    if (t.miimon > 0) {
      ok = ok && nla_put_u32(m, IFLA_BOND_UPDELAY, t.updelay) == 0;
      ok = ok && nla_put_u32(m, IFLA_BOND_DOWNDELAY, t.downdelay) == 0;
    }
    // 802.3ad, balance-tlb and balance-alb have no ARP monitor: the kernel refuses even a zero interval there
    // ("option not supported in mode").
    if (t.mode != 4 && t.mode != 5 && t.mode != 6) {
      ok = ok && nla_put_u32(m, IFLA_BOND_ARP_INTERVAL, t.arpInterval) == 0;
      nlattr* targets = nla_nest_start(m, IFLA_BOND_ARP_IP_TARGET);
      ok = ok && targets;
      int i = 0;
      for (const auto& text : t.arpTargets) {
        auto addr = parseAddress(text);
        if (!addr || addr->family != AF_INET) continue;
        uint32_t be = 0;
        std::memcpy(&be, addr->addr.data(), 4);
        ok = ok && nla_put_u32(m, i++, be) == 0;
      }
      if (targets) nla_nest_end(m, targets);
    }
  }
  if ((which & kHash) && hashedMode(t.mode) && t.hash >= 0)
    ok = ok && nla_put_u8(m, IFLA_BOND_XMIT_HASH_POLICY, static_cast<uint8_t>(t.hash)) == 0;
  if ((which & kLacpRate) && t.mode == 4 && t.lacpRate >= 0)
    ok = ok && nla_put_u8(m, IFLA_BOND_AD_LACP_RATE, static_cast<uint8_t>(t.lacpRate)) == 0;
  if ((which & kPrimary) && t.mode == 1) {
    if (primaryIndex >= 0) ok = ok && nla_put_u32(m, IFLA_BOND_PRIMARY, static_cast<uint32_t>(primaryIndex)) == 0;
    if (t.reselect >= 0) ok = ok && nla_put_u8(m, IFLA_BOND_PRIMARY_RESELECT, static_cast<uint8_t>(t.reselect)) == 0;
    if (t.peerNotif >= 0) ok = ok && nla_put_u8(m, IFLA_BOND_NUM_PEER_NOTIF, static_cast<uint8_t>(t.peerNotif)) == 0;
  }
  nla_nest_end(m, data);
  nla_nest_end(m, info);
  return ok;
}

Status bondRequest(LinuxSession& s, const std::string& what, int type, int flags, int index, const std::string& name,
                   const Team& t, unsigned which, int primaryIndex, std::optional<uint32_t> mtu, int master,
                   int* createdIndex = nullptr) {
  NlMsg m = newMsg(type, flags);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  bool ok = m && nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) == 0;
  if (ok && !index) ok = nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) == 0;
  if (ok && mtu) ok = nla_put_u32(m.get(), IFLA_MTU, *mtu) == 0;
  if (ok && master > 0) ok = nla_put_u32(m.get(), IFLA_MASTER, static_cast<uint32_t>(master)) == 0;
  if (ok) ok = putBond(m.get(), t, which, primaryIndex);
  if (!ok) return s.failure(what, "cannot build the request (out of memory)");
  if (createdIndex) {
    auto created = s.createLink(m.get(), name);
    if (!created.ok()) return s.failure(what, created.error().message);
    *createdIndex = *created;
    return {};
  }
  NlOutcome o = s.nl().request(m.get(), [](const nlmsghdr*) {});
  if (!o.ok()) return s.failure(what, o.message);
  return {};
}

Status setUp(LinuxSession& s, const std::string& name, bool up, const std::string& what) {
  LinkChange c;
  c.up = up;
  NlOutcome o = sendLinkChange(s.nl(), name, c);
  if (!o.ok()) return s.failure(what, o.message);
  return {};
}

// Takes a NIC over: records how it is (once), then enslaves it to `master` (the bridge, with the switch's MTU and
// up; or the bond, which needs it down first and then opens it itself).
Status takeOver(LinuxSession& s, const KindOps& ops, const std::string& sw, const std::string& nic, int master,
                bool intoBond, std::optional<uint32_t> mtu) {
  const std::string what = "take NIC " + nic + " over as an uplink of " + ops.label + " " + sw;
  auto l = s.getLink(nic);
  if (!l.ok()) return s.failure(what, l.error().message);
  if (l->master && l->master != master) {
    const LinkInfo* m = s.linkAt(l->master);
    return s.failure(what, "it is already a port of " + (m ? m->name : "#" + std::to_string(l->master)) +
                               " (detach it first, or list it under that switch)");
  }
  if (!uplinkRecordOf(*l)) {
    NlOutcome o = addAltname(s.nl(), l->index, uplinkRecord(l->index, {l->mtu, (l->flags & IFF_UP) != 0}));
    if (!o.ok()) return s.failure(what + " (record how it was)", o.message);
  }
  if (intoBond) {
    if (l->master != master) {
      if (l->flags & IFF_UP)
        if (Status st = setUp(s, nic, false, what); !st.ok()) return st;
      LinkChange c;
      c.master = master;
      if (NlOutcome o = sendLinkChange(s.nl(), nic, c); !o.ok()) return s.failure(what, o.message);
    }
    s.topo().bondOf[l->index] = master;
  } else {
    LinkChange c;
    if (mtu && *mtu != l->mtu) c.mtu = mtu;
    if (l->master != master) c.master = master;
    c.up = true;
    if (NlOutcome o = sendLinkChange(s.nl(), nic, c); !o.ok()) return s.failure(what, o.message);
    s.topo().uplinkOf[l->index] = master;
    if (auto it = s.topo().switches.find(master); it != s.topo().switches.end())
      if (std::find(it->second.uplinks.begin(), it->second.uplinks.end(), l->index) == it->second.uplinks.end())
        it->second.uplinks.push_back(l->index);
    if (s.topo().vlans) (*s.topo().vlans)[l->index] = portVlansFor(VlanSpec{});
  }
  s.topo().master[l->index] = master;
  return {};
}

// Gives a NIC back: detached, with the MTU and link state it had before it was taken over.
Status release(LinuxSession& s, const KindOps& ops, const std::string& sw, const std::string& nic) {
  const std::string what = "release NIC " + nic + " from " + ops.label + " " + sw;
  auto l = s.getLink(nic);
  if (!l.ok()) return {};  // gone (a NIC that was unplugged): nothing to give back
  auto rec = uplinkRecordOf(*l);
  if (l->master) {
    LinkChange c;
    c.master = 0;
    if (NlOutcome o = sendLinkChange(s.nl(), nic, c); !o.ok()) return s.failure(what, o.message);
  }
  if (rec) {
    LinkChange c;
    c.mtu = rec->mtu;
    c.up = rec->up;
    if (NlOutcome o = sendLinkChange(s.nl(), nic, c); !o.ok()) return s.failure(what + " (restore it)", o.message);
    if (NlOutcome o = delAltname(s.nl(), l->index, uplinkRecord(l->index, *rec)); !o.ok())
      return s.failure(what + " (drop the record)", o.message);
  }
  Topology& t = s.topo();
  if (auto it = t.uplinkOf.find(l->index); it != t.uplinkOf.end()) {
    if (auto sit = t.switches.find(it->second); sit != t.switches.end()) {
      auto& u = sit->second.uplinks;
      u.erase(std::remove(u.begin(), u.end(), l->index), u.end());
    }
    t.uplinkOf.erase(it);
  }
  t.bondOf.erase(l->index);
  t.master.erase(l->index);
  if (t.vlans) t.vlans->erase(l->index);
  return {};
}

void registerBond(LinuxSession& s, int bondIndex, int bridgeIndex) {
  Topology& t = s.topo();
  t.uplinkOf[bondIndex] = bridgeIndex;
  t.master[bondIndex] = bridgeIndex;
  if (auto it = t.switches.find(bridgeIndex); it != t.switches.end())
    if (std::find(it->second.uplinks.begin(), it->second.uplinks.end(), bondIndex) == it->second.uplinks.end())
      it->second.uplinks.push_back(bondIndex);
  if (t.vlans) (*t.vlans)[bondIndex] = portVlansFor(VlanSpec{});
}

void forgetBond(LinuxSession& s, int bondIndex) {
  Topology& t = s.topo();
  if (auto it = t.uplinkOf.find(bondIndex); it != t.uplinkOf.end()) {
    if (auto sit = t.switches.find(it->second); sit != t.switches.end()) {
      auto& u = sit->second.uplinks;
      u.erase(std::remove(u.begin(), u.end(), bondIndex), u.end());
    }
    t.uplinkOf.erase(it);
  }
  t.master.erase(bondIndex);
  if (t.vlans) t.vlans->erase(bondIndex);
}

// The bond's NICs (enslaved in order), its primary, and up.
Status enslaveAll(LinuxSession& s, const KindOps& ops, const std::string& sw, int bondIndex,
                  const std::vector<std::string>& nics) {
  for (const auto& nic : nics)
    if (Status st = takeOver(s, ops, sw, nic, bondIndex, true, std::nullopt); !st.ok()) return st;
  return {};
}

Status setPrimary(LinuxSession& s, const Team& t, int bondIndex) {
  if (t.mode != 1) return {};
  int primary = 0;  // 0 clears it
  if (!t.primary.empty()) {
    auto idx = s.ifindex(t.primary);
    if (!idx.ok()) return s.failure("set the primary NIC of bond " + t.bond, idx.error().message);
    primary = *idx;
  }
  return bondRequest(s, "set the primary NIC of bond " + t.bond, RTM_NEWLINK, 0, bondIndex, t.bond, t, kPrimary,
                     primary, std::nullopt, 0);
}

Status buildTeam(LinuxSession& s, const KindOps& ops, const std::string& sw, int bridgeIndex, const Team& t,
                 std::optional<uint32_t> mtu) {
  if (t.bond.empty()) {
    for (const auto& nic : t.nics)
      if (Status st = takeOver(s, ops, sw, nic, bridgeIndex, false, mtu); !st.ok()) return st;
    return {};
  }
  const std::string what = "create bond " + t.bond + " (" + modeName(t.mode) + ") for " + ops.label + " " + sw;
  int bondIndex = 0;
  if (Status st = bondRequest(s, what, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, t.bond, t, kAll & ~kPrimary, -1, mtu,
                              bridgeIndex, &bondIndex);
      !st.ok())
    return st;
  registerBond(s, bondIndex, bridgeIndex);
  if (Status st = enslaveAll(s, ops, sw, bondIndex, t.nics); !st.ok()) return st;
  if (Status st = setPrimary(s, t, bondIndex); !st.ok()) return st;
  return setUp(s, t.bond, true, what);
}

Status tearDown(LinuxSession& s, const KindOps& ops, const std::string& sw, const Team& t) {
  for (const auto& nic : t.nics)
    if (Status st = release(s, ops, sw, nic); !st.ok()) return st;
  if (t.bond.empty()) return {};
  auto idx = s.ifindex(t.bond);
  if (idx.ok()) forgetBond(s, *idx);
  return deleteLink(s, ops, t.bond);
}

}  // namespace

// ---------------------------------------------------------------- plan time

bool uplinkPath(const std::string& path) {
  return path.rfind("uplinks.", 0) == 0 || path.rfind("linux.bond.", 0) == 0;
}

namespace {

void checkNicList(const FieldCheck& fc) {
  if (!fc.value.is_array()) return fc.fail("field " + fc.path + " must be a list of interface names");
  for (const auto& n : fc.value) {
    if (!n.is_string()) return fc.fail("field " + fc.path + ": " + n.dump() + " is not an interface name");
    std::string name = n.get<std::string>();
    if (std::string why = ifnameProblem(name); !why.empty())
      fc.fail("invalid interface name '" + name + "' in field " + fc.path + ": " + why);
    else if (name == fc.resource.addr.name)
      fc.fail("field " + fc.path + " names the switch itself (" + name + ")");
  }
}

void checkEnum(const FieldCheck& fc) { fc.requireString(); }
void checkFlag(const FieldCheck& fc) { fc.requireBool(); }
void checkMs(const FieldCheck& fc) { fc.requireInt(0, 2147483647, "ms"); }

void checkPolicy(const FieldCheck& fc) {
  if (!fc.requireString()) return;
  const std::string p = fc.value.get<std::string>();
  if (p == "src-port")
    fc.fail("uplinks.teaming.policy src-port (route by the originating virtual port) has no Linux bond mode: a bond "
            "hashes frames and does not know the port a frame came from; src-mac (balance-xor, layer2 hash) spreads "
            "VMs statically the same way",
            "provider/unsupported");
}

void checkFailureDetection(const FieldCheck& fc) {
  if (!fc.requireString()) return;
  if (fc.value.get<std::string>() == "beacon")
    fc.fail("uplinks.teaming.failureDetection beacon has no Linux bond equivalent (bonding watches the link (MII) "
            "or answers to ARP probes); use link, or arp with linux.bond.arpIpTarget",
            "provider/unsupported");
}

void checkLacpMode(const FieldCheck& fc) {
  if (!fc.requireString()) return;
  if (fc.value.get<std::string>() == "passive")
    fc.fail("uplinks.teaming.lacp.mode passive: a Linux bond always runs LACP actively (the partner may be passive)",
            "provider/unsupported");
}

void checkBondMode(const FieldCheck& fc) {
  if (modeId(&fc.value) < 0) fc.fail("field linux.bond.mode must be 0-6 or a bonding mode name (e.g. active-backup)");
}

void checkBondName(const FieldCheck& fc) {
  if (!fc.value.is_string()) return fc.fail("field linux.bond.name must be an interface name");
  std::string n = fc.value.get<std::string>();
  if (std::string why = ifnameProblem(n); !why.empty())
    return fc.fail("invalid interface name '" + n + "' in field linux.bond.name: " + why);
  if (n == fc.resource.addr.name) fc.fail("field linux.bond.name is the switch's own name (" + n + ")");
  auto nics = fc.resource.attrs.getStrings("uplinks.nics");
  if (std::find(nics.begin(), nics.end(), n) != nics.end())
    fc.fail("field linux.bond.name '" + n + "' is also one of uplinks.nics");
}

void checkArpTargets(const FieldCheck& fc) {
  if (!fc.value.is_array()) return fc.fail("field linux.bond.arpIpTarget must be a list of IPv4 addresses");
  for (const auto& t : fc.value) {
    auto a = t.is_string() ? parseAddress(t.get<std::string>()) : std::nullopt;
    if (!a || a->family != AF_INET) fc.fail("field linux.bond.arpIpTarget: " + t.dump() + " is not an IPv4 address");
  }
}

}  // namespace

std::vector<FieldRule> uplinkFields() {
  return {{"uplinks.nics", checkNicList},
          {"uplinks.teaming.policy", checkPolicy},
          {"uplinks.teaming.active", checkNicList},
          {"uplinks.teaming.standby", checkNicList},
          {"uplinks.teaming.failureDetection", checkFailureDetection},
          {"uplinks.teaming.notifySwitches", checkFlag},
          {"uplinks.teaming.failback", checkFlag},
          {"uplinks.teaming.lacp.mode", checkLacpMode},
          {"uplinks.teaming.lacp.rate", checkEnum},
          {"uplinks.teaming.hashPolicy", checkEnum},
          {"linux.bond.name", checkBondName},
          {"linux.bond.mode", checkBondMode},
          {"linux.bond.miimon", checkMs},
          {"linux.bond.updelay", checkMs},
          {"linux.bond.downdelay", checkMs},
          {"linux.bond.arpInterval", checkMs},
          {"linux.bond.arpIpTarget", checkArpTargets},
          {"linux.bond.xmitHashPolicy", checkEnum},
          {"linux.bond.lacpRate", checkEnum}};
}

void checkUplinks(const Resource& r, const Target&, Diagnostics& diags) {
  const Attrs& a = r.attrs;
  auto fail = [&](const std::string& m, const char* code = "provider/invalid") {
    diags.error(r.loc, "linux: " + r.addr.str() + ": " + m, code);
  };
  if (!bondWanted(a)) return;
  auto nics = a.getStrings("uplinks.nics");
  if (nics.empty()) return fail("uplinks.teaming and linux.bond settings need uplinks.nics (the NICs to team)");
  const KernelCaps& caps = kernelCaps();
  if (caps.bonding == Cap::No)
    fail("uplinks.nics lists " + std::to_string(nics.size()) + " NICs, which makes a bond, but " +
             lacks(caps, "bonding driver"),
         "provider/unsupported");

  auto policy = a.getString("uplinks.teaming.policy");
  const int native = modeId(a.find("linux.bond.mode"));
  if (policy && *policy != "src-port") {
    int mode = modeOfPolicy(*policy, native);
    const bool loadBased = *policy == "load-based";
    if (native >= 0 && native != mode && !(loadBased && (native == 5 || native == 6)))
      fail("uplinks.teaming.policy " + *policy + " is bond mode " + std::to_string(mode) + " (" + modeName(mode) +
           "), but linux.bond.mode says " + std::to_string(native) + " (" + modeName(native) + ")");
  }
  int mode = policy ? modeOfPolicy(*policy, native) : native >= 0 ? native : 1;
  if (mode < 0) return;  // src-port: reported by its field check

  auto hash = a.getString("uplinks.teaming.hashPolicy");
  auto xmit = a.getString("linux.bond.xmitHashPolicy");
  if (hash && xmit && *hash != *xmit)
    fail("uplinks.teaming.hashPolicy " + *hash + " and linux.bond.xmitHashPolicy " + *xmit + " disagree");
  if (!hash) hash = xmit;
  if (hash && !hashedMode(mode))
    fail("uplinks.teaming.hashPolicy only applies to a hashing team (src-mac, ip-hash, lacp), not bond mode " +
         std::string(modeName(mode)));
  if (hash && policy == "src-mac" && *hash != "layer2")
    fail("teaming policy src-mac hashes on MAC addresses (layer2); hashPolicy " + *hash + " is ip-hash");
  if (hash && policy == "ip-hash" && *hash == "layer2")
    fail("teaming policy ip-hash with hashPolicy layer2 hashes MAC addresses only: that is src-mac");
  auto rate = a.getString("uplinks.teaming.lacp.rate");
  auto lacpRate = a.getString("linux.bond.lacpRate");
  if (rate && lacpRate && *rate != *lacpRate)
    fail("uplinks.teaming.lacp.rate " + *rate + " and linux.bond.lacpRate " + *lacpRate + " disagree");
  if ((rate || lacpRate) && mode != 4) fail("an LACP rate only applies to an lacp team (bond mode 802.3ad)");

  auto active = a.getStrings("uplinks.teaming.active");
  auto standby = a.getStrings("uplinks.teaming.standby");
  for (const auto& list : {active, standby})
    for (const auto& n : list)
      if (std::find(nics.begin(), nics.end(), n) == nics.end())
        fail("uplinks.teaming lists " + n + ", which is not one of uplinks.nics");
  for (const auto& n : active)
    if (std::find(standby.begin(), standby.end(), n) != standby.end())
      fail("uplinks.teaming lists " + n + " as both active and standby");
  if (mode == 1) {
    if (active.size() > 1)
      fail("failover (active-backup) uses one NIC at a time: a Linux bond has one primary, so uplinks.teaming.active "
           "takes one NIC; list the others under standby (they take over in that order)");
    if (!active.empty() && !standby.empty() && active.size() + standby.size() != nics.size())
      fail("every NIC of a bond is in use: with active and standby given, together they must list all of "
           "uplinks.nics (a Linux bond has no unused NICs)");
    if (active.empty() && standby.size() + 1 != nics.size() && !standby.empty())
      fail("with standby given and no active NIC, exactly one NIC of uplinks.nics must be left for active");
  } else {
    if (!standby.empty())
      fail("bond mode " + std::string(modeName(mode)) + " uses every NIC at once: it has no standby NICs (only "
           "failover does)");
    if (!active.empty() && minus(nics, active).size() > 0)
      fail("bond mode " + std::string(modeName(mode)) + " uses every NIC of uplinks.nics: uplinks.teaming.active "
           "cannot leave some out (a Linux bond has no unused NICs)");
    for (const char* p : {"uplinks.teaming.failback", "uplinks.teaming.notifySwitches"})
      if (a.has(p))
        fail(std::string(p) + " applies to failover (active-backup) only; bond mode " + modeName(mode) +
             " has no failover order");
  }

  auto fd = a.getString("uplinks.teaming.failureDetection");
  const int64_t miimon = a.getInt("linux.bond.miimon").value_or(-1);
  const int64_t arp = a.getInt("linux.bond.arpInterval").value_or(-1);
  const bool arpMode = fd ? *fd == "arp" : arp > 0;
  if (arpMode) {
    if (a.getStrings("linux.bond.arpIpTarget").empty())
      fail("ARP monitoring (failureDetection arp) needs linux.bond.arpIpTarget: the addresses to probe");
    if (miimon > 0) fail("ARP monitoring and linux.bond.miimon exclude each other (the bond runs one monitor)");
    if (a.getInt("linux.bond.updelay").value_or(0) || a.getInt("linux.bond.downdelay").value_or(0))
      fail("linux.bond.updelay / downdelay apply to MII monitoring only");
    if (mode == 4 || mode == 5 || mode == 6)
      fail("bond mode " + std::string(modeName(mode)) + " cannot use ARP monitoring (the kernel refuses it); use link");
  } else {
    if (arp > 0) fail("linux.bond.arpInterval is ARP monitoring, but failureDetection is link (MII)");
    if (!a.getStrings("linux.bond.arpIpTarget").empty() && fd)
      fail("linux.bond.arpIpTarget is for ARP monitoring, but failureDetection is link (MII)");
    if (miimon == 0) fail("failureDetection link needs linux.bond.miimon above 0 (it is the MII polling interval)");
    const int64_t every = miimon > 0 ? miimon : 100;
    for (const char* p : {"linux.bond.updelay", "linux.bond.downdelay"})
      if (auto d = a.getInt(p); d && *d % every)
        fail(std::string(p) + " " + std::to_string(*d) + " is not a multiple of linux.bond.miimon " +
             std::to_string(every) + " (the kernel would round it down)");
  }
}

void normalizeUplinks(Resource& r) {
  Attrs& a = r.attrs;
  auto setDefault = [&](const std::string& path, Json v) {
    a.set(path, std::move(v));
    if (!r.origins.count(path)) r.origins[path] = AttrOrigin{Origin::Default, ""};
  };
  if (auto nics = a.getStrings("uplinks.nics"); !nics.empty()) {
    std::sort(nics.begin(), nics.end());
    a.set("uplinks.nics", Json(nics));
  }
  if (!bondWanted(a)) {
    if (!a.has("linux.bond.name")) setDefault("linux.bond.name", nullptr);
    return;
  }
  const std::vector<std::string> nics = a.getStrings("uplinks.nics");
  const int native = modeId(a.find("linux.bond.mode"));
  auto policy = a.getString("uplinks.teaming.policy");
  int mode = policy ? modeOfPolicy(*policy, native) : native >= 0 ? native : 1;
  if (mode < 0) return;  // check() refused it
  if (!a.has("linux.bond.name") || a.find("linux.bond.name")->is_null())
    setDefault("linux.bond.name", defaultBondName(r.addr.name));
  if (!a.has("linux.bond.mode")) setDefault("linux.bond.mode", modeName(mode));
  else a.set("linux.bond.mode", modeName(mode));

  std::optional<std::string> hash = a.getString("uplinks.teaming.hashPolicy");
  if (!hash) hash = a.getString("linux.bond.xmitHashPolicy");
  a.erase("linux.bond.xmitHashPolicy");
  if (hashedMode(mode)) {
    if (!hash) hash = (policy == "src-mac" || (!policy && mode == 2)) ? "layer2" : "layer3+4";
    if (!a.has("uplinks.teaming.hashPolicy")) setDefault("uplinks.teaming.hashPolicy", *hash);
    else a.set("uplinks.teaming.hashPolicy", *hash);
  } else {
    a.set("uplinks.teaming.hashPolicy", nullptr);
  }
  std::string p = policyOf(mode, hash.value_or(""));
  if (!a.has("uplinks.teaming.policy")) setDefault("uplinks.teaming.policy", p.empty() ? Json(nullptr) : Json(p));
  else a.set("uplinks.teaming.policy", p.empty() ? Json(nullptr) : Json(p));

  std::optional<std::string> rate = a.getString("uplinks.teaming.lacp.rate");
  if (!rate) rate = a.getString("linux.bond.lacpRate");
  a.erase("linux.bond.lacpRate");
  a.erase("uplinks.teaming.lacp.mode");  // active: the only way a Linux bond runs LACP
  if (mode == 4) {
    if (!a.has("uplinks.teaming.lacp.rate")) setDefault("uplinks.teaming.lacp.rate", rate.value_or("slow"));
  } else {
    a.set("uplinks.teaming.lacp.rate", nullptr);
  }

  auto fd = a.getString("uplinks.teaming.failureDetection");
  const bool arp = fd ? *fd == "arp" : a.getInt("linux.bond.arpInterval").value_or(0) > 0;
  if (!fd) setDefault("uplinks.teaming.failureDetection", arp ? "arp" : "link");
  auto dflt = [&](const char* path, Json v) {
    if (!a.has(path) || a.find(path)->is_null()) setDefault(path, std::move(v));
  };
  if (arp) {
    dflt("linux.bond.miimon", 0);
    dflt("linux.bond.arpInterval", 1000);
  } else {
    dflt("linux.bond.miimon", 100);
    dflt("linux.bond.arpInterval", 0);
  }
  dflt("linux.bond.updelay", 0);
  dflt("linux.bond.downdelay", 0);
  auto targets = a.getStrings("linux.bond.arpIpTarget");
  std::sort(targets.begin(), targets.end());
  if (a.has("linux.bond.arpIpTarget")) a.set("linux.bond.arpIpTarget", Json(targets));
  else setDefault("linux.bond.arpIpTarget", Json::array());

  if (mode == 1) {
    auto active = a.getStrings("uplinks.teaming.active");
    auto standby = a.getStrings("uplinks.teaming.standby");
    if (!active.empty() && standby.empty()) setDefault("uplinks.teaming.standby", Json(minus(nics, active)));
    if (active.empty() && !standby.empty()) {
      auto left = minus(nics, standby);
      if (left.size() == 1) setDefault("uplinks.teaming.active", Json(left));
    }
    if (!a.has("uplinks.teaming.active")) setDefault("uplinks.teaming.active", nullptr);
    if (!a.has("uplinks.teaming.standby")) setDefault("uplinks.teaming.standby", nullptr);
    dflt("uplinks.teaming.failback", true);
    dflt("uplinks.teaming.notifySwitches", true);
  } else {
    // Every NIC is active: an `active` listing all of them says nothing more.
    a.set("uplinks.teaming.active", nullptr);
    a.set("uplinks.teaming.standby", nullptr);
    a.set("uplinks.teaming.failback", nullptr);
    a.set("uplinks.teaming.notifySwitches", nullptr);
  }
}

void describeUplinks(const Step& step, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  const Attrs& a = step.after;
  auto nics = a.getStrings("uplinks.nics");
  if (nics.empty()) return;
  std::string list;
  for (const auto& n : nics) list += (list.empty() ? "" : " ") + n;
  auto bond = a.getString("linux.bond.name");
  if (!bond) {
    parts.push_back("uplink " + list);
    return;
  }
  std::string mode = a.getString("linux.bond.mode").value_or("?");
  std::string text = "uplink bond " + *bond + " of " + list + " (" + mode;
  if (auto p = a.getString("uplinks.teaming.policy")) text += " for " + *p;
  if (auto h = a.getString("uplinks.teaming.hashPolicy")) text += ", hash " + *h;
  if (a.getString("uplinks.teaming.failureDetection") == "arp")
    text += ", ARP monitor every " + std::to_string(a.getInt("linux.bond.arpInterval").value_or(0)) + " ms";
  else
    text += ", MII monitor every " + std::to_string(a.getInt("linux.bond.miimon").value_or(0)) + " ms";
  if (auto act = a.getStrings("uplinks.teaming.active"); !act.empty()) text += ", primary " + act[0];
  parts.push_back(text + ")");
}

// ---------------------------------------------------------------- live

void observeUplinks(LinuxSession& s, const LinkInfo& bridge, Attrs& a, uint32_t* uplinkMtu) {
  const SwitchInfo* sw = s.topo().switchAt(bridge.index);
  std::vector<std::string> nics;
  const LinkInfo* bond = nullptr;
  for (const auto& path : teamPaths()) a.set(path, nullptr);
  if (sw)
    for (int u : sw->uplinks) {
      const LinkInfo* l = s.linkAt(u);
      if (!l) continue;
      if (uplinkMtu && (*uplinkMtu == 0 || l->mtu < *uplinkMtu)) *uplinkMtu = l->mtu;
      if (l->kind == "bond" && !bond) bond = l;
      else if (l->kind != "bond") nics.push_back(l->name);
    }
  if (bond) {
    std::vector<std::string> slaves;
    for (const auto& [index, m] : s.topo().bondOf)
      if (m == bond->index)
        if (const LinkInfo* l = s.linkAt(index)) slaves.push_back(l->name);
    std::sort(slaves.begin(), slaves.end());
    for (const auto& n : slaves) nics.push_back(n);
    const int mode = static_cast<int>(bond->get(IFLA_BOND_MODE).value_or(0));
    a.set("linux.bond.name", bond->name);
    a.set("linux.bond.mode", modeName(mode));
    const char* hash = hashName(static_cast<int>(bond->get(IFLA_BOND_XMIT_HASH_POLICY).value_or(0)));
    std::string policy = policyOf(mode, hash ? hash : "");
    if (!policy.empty()) a.set("uplinks.teaming.policy", policy);
    if (hashedMode(mode) && hash) a.set("uplinks.teaming.hashPolicy", hash);
    if (mode == 4) a.set("uplinks.teaming.lacp.rate", bond->get(IFLA_BOND_AD_LACP_RATE).value_or(0) ? "fast" : "slow");
    const uint64_t miimon = bond->get(IFLA_BOND_MIIMON).value_or(0);
    const uint64_t arp = bond->get(IFLA_BOND_ARP_INTERVAL).value_or(0);
    if (arp > 0) a.set("uplinks.teaming.failureDetection", "arp");
    else if (miimon > 0) a.set("uplinks.teaming.failureDetection", "link");
    a.set("linux.bond.miimon", static_cast<int64_t>(miimon));
    a.set("linux.bond.arpInterval", static_cast<int64_t>(arp));
    a.set("linux.bond.updelay", static_cast<int64_t>(bond->get(IFLA_BOND_UPDELAY).value_or(0)));
    a.set("linux.bond.downdelay", static_cast<int64_t>(bond->get(IFLA_BOND_DOWNDELAY).value_or(0)));
    auto targets = bond->arpTargets;
    std::sort(targets.begin(), targets.end());
    a.set("linux.bond.arpIpTarget", Json(targets));
    if (mode == 1) {
      const LinkInfo* primary = nullptr;
      if (auto p = bond->get(IFLA_BOND_PRIMARY); p && *p) primary = s.linkAt(static_cast<int>(*p));
      if (primary) {
        a.set("uplinks.teaming.active", Json::array({primary->name}));
        std::vector<std::string> rest;
        for (const auto& n : slaves)
          if (n != primary->name) rest.push_back(n);
        a.set("uplinks.teaming.standby", Json(rest));
      }
      a.set("uplinks.teaming.failback", bond->get(IFLA_BOND_PRIMARY_RESELECT).value_or(0) != 2);
      a.set("uplinks.teaming.notifySwitches", bond->get(IFLA_BOND_NUM_PEER_NOTIF).value_or(1) > 0);
    }
  }
  std::sort(nics.begin(), nics.end());
  a.set("uplinks.nics", Json(nics));
}

Status createUplinks(LinuxSession& s, const Step& step, int bridgeIndex) {
  Team t = teamOf(step.after);
  if (t.nics.empty()) return {};
  std::optional<uint32_t> mtu;
  if (auto m = step.after.getInt("mtu")) mtu = static_cast<uint32_t>(*m);
  return buildTeam(s, kBridgeOps, step.addr.name, bridgeIndex, t, mtu);
}

Status updateUplinks(LinuxSession& s, const Step& step, int bridgeIndex) {
  const std::string& sw = step.addr.name;
  const KindOps& ops = kBridgeOps;
  bool team = false;
  for (const auto& p : step.changed) team = team || uplinkPath(p);
  std::optional<uint32_t> mtu;
  if (auto m = step.after.getInt("mtu")) mtu = static_cast<uint32_t>(*m);
  Team before = teamOf(step.before), after = teamOf(step.after);
  if (team) {
    if (before.bond != after.bond) {
      if (Status st = tearDown(s, ops, sw, before); !st.ok()) return st;
      if (Status st = buildTeam(s, ops, sw, bridgeIndex, after, mtu); !st.ok()) return st;
    } else if (after.bond.empty()) {
      for (const auto& nic : minus(before.nics, after.nics))
        if (Status st = release(s, ops, sw, nic); !st.ok()) return st;
      for (const auto& nic : minus(after.nics, before.nics))
        if (Status st = takeOver(s, ops, sw, nic, bridgeIndex, false, mtu); !st.ok()) return st;
    } else {
      auto idx = s.ifindex(after.bond);
      if (!idx.ok()) return s.failure("update bond " + after.bond, idx.error().message);
      const int bond = *idx;
      const std::string what = "update bond " + after.bond + " of " + std::string(ops.label) + " " + sw;
      for (const auto& nic : minus(before.nics, after.nics))
        if (Status st = release(s, ops, sw, nic); !st.ok()) return st;
      if (before.mode != after.mode || before.lacpRate != after.lacpRate) {
        // The kernel changes a bond's mode only with no NICs and down, and its LACP rate only down: the NICs
        // leave (and stay recorded), the bond is set anew and takes them back in failover order.
        for (const auto& nic : minus(before.nics, minus(before.nics, after.nics))) {
          LinkChange c;
          c.master = 0;
          if (NlOutcome o = sendLinkChange(s.nl(), nic, c); !o.ok()) return s.failure(what, o.message);
        }
        if (Status st = setUp(s, after.bond, false, what); !st.ok()) return st;
        if (Status st = bondRequest(s, what, RTM_NEWLINK, 0, bond, after.bond, after, kAll & ~kPrimary, -1,
                                    std::nullopt, 0);
            !st.ok())
          return st;
        if (Status st = enslaveAll(s, ops, sw, bond, after.nics); !st.ok()) return st;
        if (Status st = setPrimary(s, after, bond); !st.ok()) return st;
        if (Status st = setUp(s, after.bond, true, what); !st.ok()) return st;
      } else {
        if (Status st = enslaveAll(s, ops, sw, bond, minus(after.nics, before.nics)); !st.ok()) return st;
        if (Status st = bondRequest(s, what, RTM_NEWLINK, 0, bond, after.bond, after, kMonitor | kHash, -1,
                                    std::nullopt, 0);
            !st.ok())
          return st;
        if (Status st = setPrimary(s, after, bond); !st.ok()) return st;
      }
    }
    if (Status st = syncUplinkVlans(s, ops, bridgeIndex); !st.ok()) return st;
  }
  if (changes(step, "mtu") && mtu) {
    // The uplinks carry the switch's MTU: a bond passes it on to its NICs.
    const std::vector<std::string> devs = after.bond.empty() ? after.nics : std::vector<std::string>{after.bond};
    for (const auto& dev : devs) {
      LinkChange c;
      c.mtu = mtu;
      if (NlOutcome o = sendLinkChange(s.nl(), dev, c); !o.ok())
        return s.failure("set the MTU of uplink " + dev + " of " + std::string(ops.label) + " " + sw + " to " +
                             std::to_string(*mtu),
                         o.message);
    }
  }
  return {};
}

Status removeUplinks(LinuxSession& s, const Step& step, int bridgeIndex) {
  (void)bridgeIndex;
  return tearDown(s, kBridgeOps, step.addr.name, teamOf(step.before));
}

}  // namespace vnetplan::lnx
