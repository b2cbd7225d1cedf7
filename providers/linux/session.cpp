#include "providers/linux/session.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include <dirent.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/ifaddr.h"
#include "base/parallel.h"
#include "base/netaddr.h"
#include "providers/linux/nft.h"
#include "providers/linux/shaping.h"

namespace vnetplan::lnx {

namespace {

std::string attrString(const nlattr* a) {
  const char* s = static_cast<const char*>(nla_data(a));
  return std::string(s, strnlen(s, static_cast<size_t>(nla_len(a))));
}

uint64_t attrUint(const nlattr* a) {
  switch (nla_len(a)) {
    case 1: return nla_get_u8(const_cast<nlattr*>(a));
    case 2: return nla_get_u16(const_cast<nlattr*>(a));
    case 4: return nla_get_u32(const_cast<nlattr*>(a));
    case 8: return nla_get_u64(const_cast<nlattr*>(a));
    default: return 0;
  }
}

// "10.0.0.1" / "2001:db8::1" from raw address bytes.
std::string addressText(int family, const void* bytes) {
  std::string p = formatPrefix(family, bytes, family == AF_INET ? 32 : 128);
  return p.substr(0, p.find('/'));
}

// RTM_GETLINK dump request; `targetNsid` >= 0 lists the links of that peer namespace instead.
NlMsg linkDumpRequest(int32_t targetNsid = -1) {
  NlMsg m = newMsg(RTM_GETLINK, NLM_F_DUMP);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) return nullptr;
  // Statistics are most of a link message's size and nothing here needs them.
  if (nla_put_u32(m.get(), IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0) return nullptr;
  if (targetNsid >= 0 && nla_put_s32(m.get(), IFLA_TARGET_NETNSID, targetNsid) < 0) return nullptr;
  return m;
}

}  // namespace

bool LinkInfo::hasAltname(const std::string& a) const {
  return std::find(altnames.begin(), altnames.end(), a) != altnames.end();
}

std::optional<uint64_t> LinkInfo::get(int attr) const {
  auto it = data.find(attr);
  return it == data.end() ? std::nullopt : std::optional<uint64_t>(it->second);
}

std::optional<LinkInfo> parseLink(const nlmsghdr* h) {
  if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return std::nullopt;
  const auto* ifi = static_cast<const ifinfomsg*>(nlmsg_data(h));
  nlattr* tb[IFLA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(h), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0) return std::nullopt;
  if (!tb[IFLA_IFNAME]) return std::nullopt;
  LinkInfo l;
  l.index = ifi->ifi_index;
  l.flags = ifi->ifi_flags;
  l.type = ifi->ifi_type;
  l.name = attrString(tb[IFLA_IFNAME]);
  if (tb[IFLA_MTU]) l.mtu = static_cast<uint32_t>(attrUint(tb[IFLA_MTU]));
  if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) > 0)
    l.mac = formatMac(static_cast<const uint8_t*>(nla_data(tb[IFLA_ADDRESS])), static_cast<size_t>(nla_len(tb[IFLA_ADDRESS])));
  if (tb[IFLA_MASTER]) l.master = static_cast<int>(attrUint(tb[IFLA_MASTER]));
  if (tb[IFLA_TXQLEN]) l.txqlen = static_cast<uint32_t>(attrUint(tb[IFLA_TXQLEN]));
  if (tb[IFLA_LINK]) l.link = static_cast<int>(attrUint(tb[IFLA_LINK]));
  if (tb[IFLA_LINK_NETNSID] && nla_len(tb[IFLA_LINK_NETNSID]) >= 4) l.linkNetnsid = nla_get_s32(tb[IFLA_LINK_NETNSID]);
  if (tb[IFLA_PARENT_DEV_BUS_NAME]) l.parentBus = attrString(tb[IFLA_PARENT_DEV_BUS_NAME]);
  if (tb[IFLA_PARENT_DEV_NAME]) l.parentDev = attrString(tb[IFLA_PARENT_DEV_NAME]);
  if (tb[IFLA_PROP_LIST]) {
    nlattr* a;
    int rem;
    nla_for_each_nested(a, tb[IFLA_PROP_LIST], rem) {
      if (nla_type(a) == IFLA_ALT_IFNAME) l.altnames.push_back(attrString(a));
    }
  }
  if (tb[IFLA_AF_SPEC]) {
    nlattr* af;
    int rem;
    nla_for_each_nested(af, tb[IFLA_AF_SPEC], rem) {
      if (nla_type(af) != AF_INET) continue;
      nlattr* inet[IFLA_INET_MAX + 1] = {};
      if (nla_parse_nested(inet, IFLA_INET_MAX, af, nullptr) == 0 && inet[IFLA_INET_CONF] &&
          nla_len(inet[IFLA_INET_CONF]) >= static_cast<int>(IPV4_DEVCONF_FORWARDING * sizeof(uint32_t))) {
        const auto* conf = static_cast<const uint32_t*>(nla_data(inet[IFLA_INET_CONF]));
        l.ipv4Forwarding = conf[IPV4_DEVCONF_FORWARDING - 1] != 0;
      }
    }
  }
  if (tb[IFLA_LINKINFO]) {
    nlattr* info[IFLA_INFO_MAX + 1] = {};
    if (nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr) == 0) {
      if (info[IFLA_INFO_KIND]) l.kind = attrString(info[IFLA_INFO_KIND]);
      if (info[IFLA_INFO_SLAVE_KIND]) l.slaveKind = attrString(info[IFLA_INFO_SLAVE_KIND]);
      if (info[IFLA_INFO_DATA] && l.kind == "bridge") {
        nlattr* br[IFLA_BR_MAX + 1] = {};
        if (nla_parse_nested(br, IFLA_BR_MAX, info[IFLA_INFO_DATA], nullptr) == 0) {
          for (const auto& opt : bridgeOptions())
            if (br[opt.ifla]) l.bridge[opt.ifla] = attrUint(br[opt.ifla]);
          for (int t : {IFLA_BR_VLAN_FILTERING, IFLA_BR_VLAN_DEFAULT_PVID})
            if (br[t]) l.bridge[t] = attrUint(br[t]);
        }
      } else if (info[IFLA_INFO_DATA] && l.kind == "bond") {
        nlattr* b[IFLA_BOND_MAX + 1] = {};
        if (nla_parse_nested(b, IFLA_BOND_MAX, info[IFLA_INFO_DATA], nullptr) == 0) {
          for (int t = 1; t <= IFLA_BOND_MAX; ++t)
            if (b[t] && t != IFLA_BOND_ARP_IP_TARGET && t != IFLA_BOND_AD_INFO && t != IFLA_BOND_AD_ACTOR_SYSTEM &&
                t != IFLA_BOND_NS_IP6_TARGET)
              l.data[t] = attrUint(b[t]);
          if (b[IFLA_BOND_ARP_IP_TARGET]) {
            nlattr* a;
            int rem;
            nla_for_each_nested(a, b[IFLA_BOND_ARP_IP_TARGET], rem) {
              if (nla_len(a) == 4) l.arpTargets.push_back(addressText(AF_INET, nla_data(a)));
            }
          }
        }
      } else if (info[IFLA_INFO_DATA] && l.kind == "vlan") {
        nlattr* v[IFLA_VLAN_MAX + 1] = {};
        if (nla_parse_nested(v, IFLA_VLAN_MAX, info[IFLA_INFO_DATA], nullptr) == 0) {
          if (v[IFLA_VLAN_ID]) l.data[IFLA_VLAN_ID] = attrUint(v[IFLA_VLAN_ID]);
          if (v[IFLA_VLAN_PROTOCOL]) l.data[IFLA_VLAN_PROTOCOL] = ntohs(nla_get_u16(v[IFLA_VLAN_PROTOCOL]));
        }
      } else if (info[IFLA_INFO_DATA] && (l.kind == "macvtap" || l.kind == "macvlan")) {
        nlattr* v[IFLA_MACVLAN_MAX + 1] = {};
        if (nla_parse_nested(v, IFLA_MACVLAN_MAX, info[IFLA_INFO_DATA], nullptr) == 0)
          if (v[IFLA_MACVLAN_MODE]) l.data[IFLA_MACVLAN_MODE] = attrUint(v[IFLA_MACVLAN_MODE]);
      } else if (info[IFLA_INFO_DATA] && l.kind == "vxlan") {
        nlattr* v[IFLA_VXLAN_MAX + 1] = {};
        if (nla_parse_nested(v, IFLA_VXLAN_MAX, info[IFLA_INFO_DATA], nullptr) == 0) {
          for (int t : {IFLA_VXLAN_ID, IFLA_VXLAN_LINK, IFLA_VXLAN_TTL, IFLA_VXLAN_LEARNING})
            if (v[t]) l.data[t] = attrUint(v[t]);
          if (v[IFLA_VXLAN_PORT]) l.data[IFLA_VXLAN_PORT] = ntohs(nla_get_u16(v[IFLA_VXLAN_PORT]));
          auto text = [](nlattr* a, int family) {
            size_t len = family == AF_INET ? 4 : 16;
            if (!a || static_cast<size_t>(nla_len(a)) < len) return std::string();
            return addressText(family, nla_data(a));
          };
          l.vxlanRemote = text(v[IFLA_VXLAN_GROUP], AF_INET);
          if (l.vxlanRemote.empty()) l.vxlanRemote = text(v[IFLA_VXLAN_GROUP6], AF_INET6);
          l.vxlanLocal = text(v[IFLA_VXLAN_LOCAL], AF_INET);
          if (l.vxlanLocal.empty()) l.vxlanLocal = text(v[IFLA_VXLAN_LOCAL6], AF_INET6);
          if (l.vxlanRemote == "0.0.0.0" || l.vxlanRemote == "::") l.vxlanRemote.clear();
          if (l.vxlanLocal == "0.0.0.0" || l.vxlanLocal == "::") l.vxlanLocal.clear();
        }
      } else if (info[IFLA_INFO_DATA] && l.kind == "tun") {
        nlattr* tun[IFLA_TUN_MAX + 1] = {};
        if (nla_parse_nested(tun, IFLA_TUN_MAX, info[IFLA_INFO_DATA], nullptr) == 0) {
          if (tun[IFLA_TUN_TYPE]) l.tunType = static_cast<uint8_t>(attrUint(tun[IFLA_TUN_TYPE]));
          for (int t : {IFLA_TUN_OWNER, IFLA_TUN_GROUP, IFLA_TUN_VNET_HDR, IFLA_TUN_MULTI_QUEUE})
            if (tun[t]) l.tun[t] = attrUint(tun[t]);
        }
      }
    }
  }
  return l;
}

Result<std::unique_ptr<LinuxSession>> LinuxSession::connect(const Target& target) {
  std::unique_ptr<LinuxSession> s(new LinuxSession());
  s->target_ = target.name;
  auto netns = target.spec.getString("netns");
  bool create = target.spec.getBool("createNetns").value_or(false);
  if (netns) {
    if (std::string why = netnsNameProblem(*netns); !why.empty())
      return err("linux: target " + target.name + ": invalid netns name '" + *netns + "': " + why);
    s->netns_ = *netns;
    int e = 0;
    auto fd = openNetns(*netns, &e);
    if (!fd.ok()) {
      if (e == ENOENT && create) {
        s->createPending_ = true;  // created by the first apply(); observe() sees an empty namespace
        return s;
      }
      return err("linux: target " + target.name + ": " + fd.error().message +
                 (e == ENOENT ? " (set createNetns: true to have it created)" : ""));
    }
    s->nsFd_ = std::move(fd.value());
  }
  auto sock = NlSocket::openIn(s->nsFd_.get());
  if (!sock.ok()) return err("linux: target " + target.name + ": " + sock.error().message);
  s->nl_ = std::move(sock.value());
  return s;
}

Status LinuxSession::ensureNamespace() {
  if (!createPending_) return {};
  int e = 0;
  auto fd = openNetns(netns_, &e);
  if (!fd.ok() && e == ENOENT) {
    if (Status st = createNetns(netns_); !st.ok()) return err("linux: target " + target_ + ": " + st.error().message);
    fd = openNetns(netns_);
  }
  if (!fd.ok()) return err("linux: target " + target_ + ": " + fd.error().message);
  auto sock = NlSocket::openIn(fd->get());
  if (!sock.ok()) return err("linux: target " + target_ + ": " + sock.error().message);
  nsFd_ = std::move(fd.value());
  nl_ = std::move(sock.value());
  createPending_ = false;
  return {};
}

std::string LinuxSession::where() const { return netns_.empty() ? "in the host netns" : "in netns " + netns_; }

Error LinuxSession::failure(const std::string& what, const std::string& detail) const {
  return err("linux: " + what + " " + where() + ": " + detail);
}

Result<Observation> LinuxSession::observe() {
  Observation obs;
  if (createPending_) {
    if (!netnsExists(netns_)) return obs;  // not created yet: nothing lives there
    if (Status st = ensureNamespace(); !st.ok()) return st.error();
  }
  links_.clear();
  nsidNames_.reset();
  nftOwned_.reset();
  qdiscs_.reset();
  observeError_.clear();
  nftTables_.clear();
  nftError_.clear();
  remoteLinks_.clear();

  const auto t0 = std::chrono::steady_clock::now();
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  // One link dump ...
  NlMsg req = linkDumpRequest();
  if (!req) return failure("list links", "out of memory");
  NlOutcome o = nl_->dump(
      req.get(),
      [&](const nlmsghdr* h) {
        if (auto l = parseLink(h)) links_[l->index] = std::move(*l);
      },
      [&] { links_.clear(); });
  if (!o.ok()) return failure("list links", o.message);
  int retries = o.retries;

  const auto tl = std::chrono::steady_clock::now();
  // ... and one address dump.
  std::map<int, std::vector<std::string>> addrs;
  NlMsg areq = newMsg(RTM_GETADDR, NLM_F_DUMP);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_UNSPEC;
  if (!areq || nlmsg_append(areq.get(), &ifa, sizeof ifa, NLMSG_ALIGNTO) < 0)
    return failure("list addresses", "out of memory");
  o = nl_->dump(
      areq.get(), [&](const nlmsghdr* h) { collectAddress(h, addrs); }, [&] { addrs.clear(); });
  if (!o.ok()) return failure("list addresses", o.message);
  retries += o.retries;

  const auto t1 = std::chrono::steady_clock::now();
  index_.clear();
  for (const auto& [index, link] : links_) {
    index_[link.name] = index;
    nextIndex_ = std::max(nextIndex_, index + 1);
  }
  topo_ = Topology::build(links_);
  bool filtering = false;
  for (const auto& [index, sw] : topo_.switches) filtering = filtering || sw.vlanFiltering;
  if (filtering) {
    auto vlans = dumpBridgeVlans(*nl_);
    if (!vlans.ok()) return failure("list bridge VLANs", vlans.error().message);
    topo_.vlans = std::move(vlans.value());
  }
  addrs_ = std::move(addrs);
  const auto t2 = std::chrono::steady_clock::now();
  linuxKinds().observe(*this, obs);
  addrs_.clear();
  if (!observeError_.empty()) return failure("observe", observeError_);
  const auto t3 = std::chrono::steady_clock::now();
  spdlog::debug("linux: observed {} links {}: dumps {:.1f} ms (links {:.1f}; {} read again, interrupted), topology "
                "{:.1f} ms, objects {:.1f} ms",
                links_.size(), where(), ms(t0, t1), ms(t0, tl), retries, ms(t1, t2), ms(t2, t3));
  return obs;
}

void LinuxSession::observeLinks(Observation& obs, const KindOps& row, bool (*matches)(const LinkInfo&),
                                void (*kindAttrs)(LinuxSession&, const LinkInfo&, Attrs&)) {
  std::vector<const LinkInfo*> mine;
  for (const auto& [index, link] : links_) {
    if (!matches(link)) continue;
    // A NIC that is a switch's uplink (or a bond's member) and a port group's sub-interface belong to the Switch
    // and the PortGroup, not to a Port of their own.
    if (row.kind == Kind::Port && (topo_.infrastructure(index) || link.slaveKind == "bond")) continue;
    mine.push_back(&link);
  }
  // Each link's object is built on its own, on every core when there are many (see observeLinks in session.h).
  constexpr size_t kParallelLinks = 128;
  std::vector<ObservedObject> built(mine.size());
  forEachParallelChunks(mine.size(), parallelWorkers(mine.size(), kParallelLinks), [&](size_t i) {
    const LinkInfo& link = *mine[i];
    ObservedObject& obj = built[i];
    obj.addr = Address{target_, row.kind, link.name};
    Attrs& a = obj.attrs;
    a.set("mtu", static_cast<int64_t>(link.mtu));
    a.set("up", (link.flags & IFF_UP) != 0);
    std::vector<std::string> list;
    if (auto it = addrs_.find(link.index); it != addrs_.end()) list = it->second;
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    a.set("addresses", Json(list));
    if (row.kind == Kind::Port) {
      a.set("type", row.variant);
      if (!link.mac.empty()) a.set("mac", link.mac);
      a.set("linux.txQueueLen", static_cast<int64_t>(link.txqlen));
      // Always said, "not attached" included: a pre-image must record it so a rollback detaches the port again.
      attachmentAttrs(link, a);
    }
    kindAttrs(*this, link, a);
  });
  for (auto& obj : built) {
    Address addr = obj.addr;
    obs.objects.emplace(std::move(addr), std::move(obj));
  }
}

Status LinuxSession::apply(const Step& step) {
  if (!linuxKinds().row(step)) {
    std::string type = (step.action == StepAction::Delete ? step.before : step.after).getString("type").value_or("");
    return err("linux: " + step.addr.str() + ": " + kindName(step.addr.kind) +
               (type.empty() ? "" : " type '" + type + "'") + " is not supported by the linux provider");
  }
  if (step.action == StepAction::Delete && createPending_ && !netnsExists(netns_)) return {};  // nothing there
  if (Status st = ensureNamespace(); !st.ok()) return st;
  if (step.action == StepAction::Update && step.changed.empty()) return {};
  return linuxKinds().apply(*this, step);
}

Status LinuxSession::probe(const Probe& p, std::chrono::milliseconds timeout) {
  if (createPending_ && !netnsExists(netns_)) return err("probe " + p.spec + ": netns " + netns_ + " does not exist yet");
  return runInNetns(nsFd(), [&] { return runProbe(p, timeout); });
}

std::string LinuxSession::nameOf(int index) const {
  for (const auto& [name, i] : index_)
    if (i == index) return name;
  return "";
}

Result<LinkInfo> LinuxSession::getLink(const std::string& name) {
  NlMsg m = newMsg(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
      nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) < 0 ||
      nla_put_u32(m.get(), IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0)
    return err("out of memory");
  std::optional<LinkInfo> found;
  NlOutcome o = nl_->request(m.get(), [&](const nlmsghdr* h) {
    if (auto l = parseLink(h)) found = std::move(*l);
  });
  if (!o.ok() || !found) return err(o.errnum == ENODEV || o.ok() ? "no interface named " + name : o.message);
  remember(name, found->index);
  return std::move(*found);
}

Result<int> LinuxSession::createLink(nl_msg* m, const std::string& name, int reserved) {
  if (reserved < 0) reserved = reserveIndexes(1);
  nlmsghdr* h = nlmsg_hdr(m);
  auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(h));
  int index = 0;
  auto echoed = [&](const nlmsghdr* reply) {
    if (auto l = parseLink(reply); l && l->name == name) index = l->index;
  };
  if (reserved > 0) {
    ifi->ifi_index = reserved;
    h->nlmsg_flags &= ~static_cast<uint16_t>(NLM_F_ECHO);
    NlOutcome outcome = nl_->request(m, echoed);
    if (outcome.ok()) {
      remember(name, reserved);
      return reserved;
    }
    // A link made since the session looked (by another process, or as a veth peer from another namespace) may
    // have that index: the kernel says EEXIST (a link with that index exists: NLM_F_EXCL) or EBUSY (taken while
    // this one was made). Then the kernel picks the index (and a veth peer's reserved one is ignored with it); a
    // name that exists fails again, with the same EEXIST.
    if (outcome.errnum != EBUSY && outcome.errnum != EEXIST) return Error{outcome.message};
    ifi->ifi_index = 0;
    h->nlmsg_seq = NL_AUTO_SEQ;
  }
  h->nlmsg_flags |= NLM_F_ECHO;  // kernels since 6.3 answer with the link
  NlOutcome outcome = nl_->request(m, echoed);
  if (!outcome.ok()) return Error{outcome.message};
  if (index > 0) {
    remember(name, index);
    return index;
  }
  return ifindex(name);
}

Result<int> LinuxSession::ifindex(const std::string& name) {
  if (auto it = index_.find(name); it != index_.end()) return it->second;
  NlMsg m = newMsg(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
      nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) < 0 ||
      nla_put_u32(m.get(), IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0)
    return err("out of memory");
  int index = 0;
  NlOutcome o = nl_->request(m.get(), [&](const nlmsghdr* h) {
    if (auto l = parseLink(h)) index = l->index;
  });
  if (!o.ok()) return err(o.errnum == ENODEV ? "no interface named " + name : o.message);
  if (index <= 0) return err("no interface named " + name);
  remember(name, index);
  return index;
}

Result<int> LinuxSession::netnsFd(const std::string& name) {
  std::lock_guard<std::recursive_mutex> lock(lazyMu_);
  if (auto it = netnsFds_.find(name); it != netnsFds_.end()) return it->second.get();
  if (std::string why = netnsNameProblem(name); !why.empty()) return err("invalid netns name '" + name + "': " + why);
  auto fd = openNetns(name);
  if (!fd.ok()) return fd.error();
  int raw = fd->get();
  netnsFds_.emplace(name, std::move(fd.value()));
  return raw;
}

Result<NlSocket*> LinuxSession::socketIn(const std::string& netnsName) {
  std::lock_guard<std::recursive_mutex> lock(lazyMu_);
  if (auto it = foreignSockets_.find(netnsName); it != foreignSockets_.end()) return it->second.get();
  auto fd = netnsFd(netnsName);
  if (!fd.ok()) return fd.error();
  auto sock = NlSocket::openIn(*fd);
  if (!sock.ok()) return sock.error();
  NlSocket* raw = sock->get();
  foreignSockets_.emplace(netnsName, std::move(sock.value()));
  return raw;
}

Result<std::map<int, PortVlans>*> LinuxSession::vlanTable() {
  std::lock_guard<std::recursive_mutex> lock(lazyMu_);
  if (!topo_.vlans) {
    auto vlans = dumpBridgeVlans(*nl_);
    if (!vlans.ok()) return failure("list bridge VLANs", vlans.error().message);
    topo_.vlans = std::move(vlans.value());
  }
  return &*topo_.vlans;
}

void LinuxSession::attachmentAttrs(const LinkInfo& link, Attrs& a) const {
  a.set("switch", nullptr);
  a.set("portGroup", nullptr);
  setVlan(a, VlanSpec{});
  a.set("network", nullptr);
  if (!link.master) return;
  if (auto nb = topo_.netBridges.find(link.master); nb != topo_.netBridges.end()) {
    a.set("network", nb->second);
    return;
  }
  if (auto pgb = topo_.pgBridges.find(link.master); pgb != topo_.pgBridges.end()) {
    if (!pgb->second.empty()) {
      a.set("portGroup", pgb->second);
      return;
    }
  }
  const SwitchInfo* sw = topo_.switchAt(link.master);
  if (!sw) {
    const LinkInfo* m = linkAt(link.master);
    if (m) a.set("switch", m->name);
    return;
  }
  VlanSpec spec;
  if (sw->vlanFiltering && topo_.vlans) {
    auto it = topo_.vlans->find(link.index);
    if (it != topo_.vlans->end()) spec = specOf(it->second);
  }
  const PortGroupInfo* pg = topo_.portGroupFor(link.master, spec);
  if (!pg && !sw->vlanFiltering)  // bridge-per-VLAN: a trunk of every VLAN is a port on the switch's own bridge
    for (const auto& [name, p] : topo_.portGroups)
      if (p.switchIndex == link.master && p.vlan.allVlans()) pg = &p;
  if (pg) {
    a.set("portGroup", pg->name);
    return;
  }
  a.set("switch", sw->name);
  setVlan(a, spec);
}

const std::map<int, Json>& LinuxSession::qdiscs() {
  std::lock_guard<std::recursive_mutex> lock(lazyMu_);
  if (qdiscs_) return *qdiscs_;
  auto dumped = dumpTbfQdiscs(*nl_);
  if (!dumped.ok()) {
    observeFailed("list qdiscs", dumped.error().message);
    qdiscs_.emplace();
  } else {
    qdiscs_ = std::move(*dumped);
  }
  return *qdiscs_;
}

const std::vector<Json>& LinuxSession::ownedNft() {
  std::lock_guard<std::recursive_mutex> lock(lazyMu_);
  if (nftOwned_) return *nftOwned_;
  nftOwned_.emplace();
  // Most namespaces hold no table of vnetplan's: one dump of table names says so (if it cannot, the listing
  // below decides).
  if (auto any = nftHasTables(nsFd(), "vnp-"); any.ok() && !*any) {
    spdlog::debug("linux: nftables {}: no table of vnetplan's, nothing to list", where());
    return *nftOwned_;
  }
  auto listed = nftListOwned(nsFd(), "vnp-");
  spdlog::debug("linux: nftables {}: listed vnetplan's tables", where());
  if (!listed.ok()) {
    nftError_ = listed.error().message;
    return *nftOwned_;
  }
  for (auto& e : *listed) {
    if (e.contains("table")) nftTables_.insert(e["table"].value("family", "") + " " + e["table"].value("name", ""));
    nftOwned_->push_back(nftStripHandles(std::move(e)));
  }
  return *nftOwned_;
}

void LinuxSession::stageNftTable(const std::string& family, const std::string& name, std::vector<Json> entries) {
  nftStaged_[family + " " + name] = std::move(entries);
}

bool LinuxSession::nftTableAfterFlush(const std::string& family, const std::string& name) {
  if (auto it = nftStaged_.find(family + " " + name); it != nftStaged_.end()) return !it->second.empty();
  return hasNftTable(family, name);
}

Status LinuxSession::flush() {
  if (nftStaged_.empty()) return {};
  std::map<std::string, std::vector<Json>> staged;
  staged.swap(nftStaged_);  // committed or not, it is not committed again
  // Per table: "add table" first, so that the "delete table" never fails on a missing one, then its entries.
  Json cmds = Json::array();
  std::string tables;
  for (const auto& [key, entries] : staged) {
    const std::string family = key.substr(0, key.find(' ')), name = key.substr(key.find(' ') + 1);
    if (entries.empty() && !hasNftTable(family, name)) continue;
    Json table{{"table", {{"family", family}, {"name", name}}}};
    cmds.push_back(Json{{"add", table}});
    cmds.push_back(Json{{"delete", table}});
    for (const auto& e : entries) cmds.push_back(Json{{"add", e}});
    tables += (tables.empty() ? "" : ", ") + key;
  }
  if (cmds.empty()) return {};
  if (Status st = ensureNamespace(); !st.ok()) return st;
  auto r = nftRun(nsFd(), Json{{"nftables", cmds}});
  if (!r.ok()) return failure("commit the nftables batch (tables " + tables + ")", r.error().message);
  for (const auto& [key, entries] : staged)
    setNftTable(key.substr(0, key.find(' ')), key.substr(key.find(' ') + 1), !entries.empty());
  return {};
}

const LinkInfo* LinuxSession::linkAt(int index) const {
  auto it = links_.find(index);
  return it == links_.end() ? nullptr : &it->second;
}

LinuxSession::RemoteLink LinuxSession::remoteLink(int32_t nsid, int index) {
  std::lock_guard<std::recursive_mutex> lock(lazyMu_);
  if (!nsidNames_) {
    // nsid -> name: ask the kernel for the nsid (as seen from here) of every /run/netns entry.
    nsidNames_.emplace();
    if (DIR* dir = ::opendir(kNetnsRunDir)) {
      while (dirent* e = ::readdir(dir)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        auto fd = openNetns(name);
        if (!fd.ok()) continue;
        NlMsg m = newMsg(RTM_GETNSID, 0);
        rtgenmsg g{};
        g.rtgen_family = AF_UNSPEC;
        if (!m || nlmsg_append(m.get(), &g, sizeof g, NLMSG_ALIGNTO) < 0 ||
            nla_put_u32(m.get(), NETNSA_FD, static_cast<uint32_t>(fd->get())) < 0)
          continue;
        int32_t id = -1;
        NlOutcome o = nl_->request(m.get(), [&](const nlmsghdr* h) {
          if (h->nlmsg_type != RTM_NEWNSID) return;
          nlattr* tb[NETNSA_MAX + 1] = {};
          if (nlmsg_parse(const_cast<nlmsghdr*>(h), sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) == 0 &&
              tb[NETNSA_NSID])
            id = nla_get_s32(tb[NETNSA_NSID]);
        });
        if (o.ok() && id >= 0) nsidNames_->emplace(id, name);
      }
      ::closedir(dir);
    }
  }
  std::string netnsName;
  if (auto it = nsidNames_->find(nsid); it != nsidNames_->end())
    netnsName = it->second;
  else
    netnsName = "nsid:" + std::to_string(nsid);

  auto links = remoteLinks_.find(nsid);
  if (links == remoteLinks_.end()) {
    // One dump of that namespace's links through our own socket (IFLA_TARGET_NETNSID), cached per observe.
    std::unordered_map<int, LinkInfo> found;
    if (NlMsg req = linkDumpRequest(nsid)) {
      NlOutcome o = nl_->dump(
          req.get(),
          [&](const nlmsghdr* h) {
            if (auto l = parseLink(h)) found[l->index] = std::move(*l);
          },
          [&] { found.clear(); });
      if (!o.ok()) found.clear();
    }
    links = remoteLinks_.emplace(nsid, std::move(found)).first;
  }
  auto it = links->second.find(index);
  return {netnsName, it == links->second.end() ? nullptr : &it->second};
}

}  // namespace vnetplan::lnx
