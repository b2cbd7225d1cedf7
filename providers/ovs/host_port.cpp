#include "providers/ovs/host_port.h"

#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>

#include "base/ifaddr.h"
#include "base/netns.h"

namespace vnetplan::ovs {

namespace {

bool isInternal(const Attrs& a) { return a.getString("type").value_or("internal") == "internal"; }

// The Interface row of the port `name` (one interface of the same name, as vnetplan makes them).
const InterfaceRow* interfaceOf(const Snapshot& snap, const std::string& name) {
  auto u = snap.interfaceUuid(name);
  return u ? snap.interface(*u) : nullptr;
}

struct Link {
  std::string name;
  unsigned flags = 0;
};

// name and flags of one RTM_NEWLINK.
std::optional<std::pair<int, Link>> parse(const nlmsghdr* h) {
  if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return std::nullopt;
  const auto* ifi = static_cast<const ifinfomsg*>(nlmsg_data(h));
  nlattr* tb[IFLA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(h), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0 || !tb[IFLA_IFNAME])
    return std::nullopt;
  return std::make_pair(ifi->ifi_index, Link{nla_get_string(tb[IFLA_IFNAME]), ifi->ifi_flags});
}

NlOutcome getLink(NlSocket& sock, int ifindex, std::optional<Link>& out) {
  NlMsg m = newMsg(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) return {ENOMEM, "out of memory"};
  return sock.request(m.get(), [&](const nlmsghdr* h) {
    if (auto l = parse(h)) out = l->second;
  });
}

NlOutcome setUp(NlSocket& sock, int ifindex, bool up) {
  NlMsg m = newMsg(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  ifi.ifi_change = IFF_UP;
  ifi.ifi_flags = up ? IFF_UP : 0;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) return {ENOMEM, "out of memory"};
  return sock.request(m.get());
}

}  // namespace

std::string HostPorts::where() const { return netns_.empty() ? "this host's namespace" : "netns " + netns_; }

Result<NlSocket*> HostPorts::socket() {
  if (sock_) return sock_.get();
  int fd = -1;
  UniqueFd ns;
  if (!netns_.empty()) {
    auto opened = openNetns(netns_);
    if (!opened) return err("cannot open " + where() + " (Target netns: where ovs-vswitchd makes its devices): " +
                            opened.error().message);
    ns = std::move(*opened);
    fd = ns.get();
  }
  auto s = NlSocket::openIn(fd);
  if (!s) return s.error();
  sock_ = std::move(*s);
  return sock_.get();
}

bool HostPorts::touches(const Step& step) {
  if (step.addr.kind != Kind::Port || step.action == StepAction::Delete || !isInternal(step.after)) return false;
  if (step.action == StepAction::Create) return step.after.has("up") || step.after.has("addresses");
  return std::any_of(step.changed.begin(), step.changed.end(),
                     [](const std::string& p) { return p == "up" || p == "addresses"; });
}

Status HostPorts::observe(const Snapshot& snap, Observation& obs) {
  std::vector<std::pair<ObservedObject*, int64_t>> wanted;
  for (auto& [addr, o] : obs.objects)
    if (addr.kind == Kind::Port && o.attrs.getString("type") == "internal")
      if (const InterfaceRow* i = interfaceOf(snap, addr.name); i && i->ifindex > 0) wanted.emplace_back(&o, i->ifindex);
  if (wanted.empty()) return {};
  auto sock = socket();
  if (!sock) return sock.error();
  std::map<int, Link> links;
  NlMsg m = newMsg(RTM_GETLINK, NLM_F_DUMP);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) return err("out of memory");
  NlOutcome o = (*sock)->dump(
      m.get(), [&](const nlmsghdr* h) { if (auto l = parse(h)) links[l->first] = l->second; }, [&] { links.clear(); });
  if (!o.ok()) return err("list links in " + where() + ": " + o.message);
  auto addrs = dumpAddresses(**sock);
  if (!addrs) return err("list addresses in " + where() + ": " + addrs.error().message);
  for (auto [obj, ifindex] : wanted) {
    auto l = links.find(static_cast<int>(ifindex));
    if (l == links.end() || l->second.name != obj->addr.name) continue;  // not here: another namespace's device
    obj->attrs.set("up", (l->second.flags & IFF_UP) != 0);
    auto a = addrs->find(static_cast<int>(ifindex));
    std::vector<std::string> list = a == addrs->end() ? std::vector<std::string>{} : a->second;
    std::sort(list.begin(), list.end());
    obj->attrs.set("addresses", Json(list));
  }
  return {};
}

Status HostPorts::apply(const Snapshot& snap, const Step& step) {
  const std::string& name = step.addr.name;
  const InterfaceRow* iface = interfaceOf(snap, name);
  if (!iface || iface->ifindex <= 0)
    return err("internal port " + name + ": ovs-vswitchd reports no kernel device for it (Interface.ifindex)" +
               (iface && iface->error ? ": " + *iface->error : std::string()));
  auto sock = socket();
  if (!sock) return sock.error();
  const int index = static_cast<int>(iface->ifindex);
  std::optional<Link> link;
  if (NlOutcome o = getLink(**sock, index, link); (!o.ok() && o.errnum != ENODEV) || (o.ok() && !link))
    return err("internal port " + name + ": read its device in " + where() + ": " + o.message);
  if (!link || link->name != name)
    return err("internal port " + name + ": its device (ifindex " + std::to_string(index) + ") is not in " + where() +
               "; set the Target's netns to the namespace where ovs-vswitchd runs");
  const bool create = step.action == StepAction::Create;
  auto changes = [&](const char* p) {
    return create ? step.after.has(p) : std::find(step.changed.begin(), step.changed.end(), p) != step.changed.end();
  };
  if (changes("addresses")) {
    const AddressChange c = addressChange(step.before.getStrings("addresses"), step.after.getStrings("addresses"));
    for (const auto& cidr : c.remove)
      if (NlOutcome o = removeAddress(**sock, index, cidr); !o.ok())
        return err("internal port " + name + ": remove address " + cidr + ": " + o.message);
    for (const auto& cidr : c.add)
      if (NlOutcome o = addAddress(**sock, index, cidr); !o.ok())
        return err("internal port " + name + ": add address " + cidr + ": " + o.message);
  }
  if (changes("up")) {
    const bool up = step.after.getBool("up").value_or(false);
    if (NlOutcome o = setUp(**sock, index, up); !o.ok())
      return err("internal port " + name + ": set it " + (up ? "up" : "down") + ": " + o.message);
  }
  return {};
}

}  // namespace vnetplan::ovs
