// IPv4/IPv6 interface addresses, shared by bridges and ports: observe (from the one address dump per
// observe), add, remove.
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/attr.h>
#include <netlink/route/addr.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "base/netaddr.h"
#include "providers/linux/kind.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

namespace {

struct AddrFree {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
using AddrPtr = std::unique_ptr<rtnl_addr, AddrFree>;

// An rtnl_addr for `cidr` on `ifindex`.
Result<AddrPtr> makeAddr(int ifindex, const std::string& cidr) {
  std::string why;
  auto c = parsePrefix(cidr, &why);
  if (!c) return err("invalid address '" + cidr + "': " + why);
  AddrPtr addr(rtnl_addr_alloc());
  nl_addr* local = nl_addr_build(c->family, c->addr.data(), c->addrLen());
  if (!addr || !local) {
    if (local) nl_addr_put(local);
    return err("out of memory");
  }
  nl_addr_set_prefixlen(local, c->prefixLen);
  rtnl_addr_set_ifindex(addr.get(), ifindex);
  rtnl_addr_set_family(addr.get(), c->family);
  int rc = rtnl_addr_set_local(addr.get(), local);  // also sets the prefix length
  nl_addr_put(local);
  if (rc < 0) return err(std::string("invalid address '") + cidr + "': " + nl_geterror(rc));
  return addr;
}

}  // namespace

void collectAddress(const nlmsghdr* h, std::map<int, std::vector<std::string>>& out) {
  if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) return;
  const auto* ifa = static_cast<const ifaddrmsg*>(nlmsg_data(h));
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) return;
  nlattr* tb[IFA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(h), sizeof(ifaddrmsg), tb, IFA_MAX, nullptr) < 0) return;
  // IFA_LOCAL is the interface's own address when present (IFA_ADDRESS is then the peer).
  nlattr* a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  size_t len = ifa->ifa_family == AF_INET ? 4 : 16;
  if (!a || static_cast<size_t>(nla_len(a)) < len) return;
  IpPrefix c;
  c.family = ifa->ifa_family;
  std::memcpy(c.addr.data(), nla_data(a), len);
  c.prefixLen = ifa->ifa_prefixlen;
  uint32_t flags = tb[IFA_FLAGS] && nla_len(tb[IFA_FLAGS]) >= 4 ? nla_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
  // Addresses the kernel made itself are not the user's to manage.
  if (tb[IFA_PROTO] && nla_len(tb[IFA_PROTO]) >= 1) {
    uint8_t proto = nla_get_u8(tb[IFA_PROTO]);
    if (proto == IFAPROT_KERNEL_LO || proto == IFAPROT_KERNEL_RA || proto == IFAPROT_KERNEL_LL) return;
  }
  if (c.family == AF_INET6) {
    if (c.isIpv6LinkLocal()) return;                 // addrconf's fe80::/64 (check() rejects declaring one)
    if (!(flags & IFA_F_PERMANENT)) return;  // SLAAC / privacy addresses learned from router adverts
  }
  out[ifa->ifa_index].push_back(c.str());
}

Status addAddresses(LinuxSession& s, const KindOps& ops, const std::string& name, int ifindex,
                    const std::vector<std::string>& cidrs) {
  for (const auto& cidr : cidrs) {
    std::string what = "add address " + cidr + " to " + ops.label + " " + name;
    auto addr = makeAddr(ifindex, cidr);
    if (!addr.ok()) return s.failure(what, addr.error().message);
    nl_msg* raw = nullptr;
    // NLM_F_REPLACE: like `ip addr replace`, so a retried apply does not trip over its own earlier work.
    int rc = rtnl_addr_build_add_request(addr->get(), NLM_F_CREATE | NLM_F_REPLACE, &raw);
    if (rc < 0) return s.failure(what, nl_geterror(rc));
    NlMsg msg(raw);
    NlOutcome o = s.nl().request(msg.get());
    if (!o.ok()) return s.failure(what, o.message);
  }
  return {};
}

Status syncAddresses(LinuxSession& s, const KindOps& ops, const std::string& name, const Attrs& before,
                     const Attrs& after) {
  auto canonical = [](const std::vector<std::string>& in) {
    std::set<std::string> out;
    for (const auto& text : in) {
      auto c = parsePrefix(text, nullptr);
      out.insert(c ? c->str() : text);
    }
    return out;
  };
  std::set<std::string> have = canonical(before.getStrings("addresses"));
  std::set<std::string> want = canonical(after.getStrings("addresses"));
  std::vector<std::string> remove, add;
  std::set_difference(have.begin(), have.end(), want.begin(), want.end(), std::back_inserter(remove));
  std::set_difference(want.begin(), want.end(), have.begin(), have.end(), std::back_inserter(add));
  if (remove.empty() && add.empty()) return {};
  auto index = s.ifindex(name);
  if (!index.ok()) return s.failure(std::string("update addresses of ") + ops.label + " " + name, index.error().message);
  // Remove first: the same address with a new prefix length is a remove + add.
  for (const auto& cidr : remove) {
    std::string what = "remove address " + cidr + " from " + ops.label + " " + name;
    auto addr = makeAddr(*index, cidr);
    if (!addr.ok()) return s.failure(what, addr.error().message);
    nl_msg* raw = nullptr;
    int rc = rtnl_addr_build_delete_request(addr->get(), 0, &raw);
    if (rc < 0) return s.failure(what, nl_geterror(rc));
    NlMsg msg(raw);
    NlOutcome o = s.nl().request(msg.get());
    if (!o.ok() && o.errnum != EADDRNOTAVAIL) return s.failure(what, o.message);
  }
  return addAddresses(s, ops, name, *index, add);
}

}  // namespace vnetplan::lnx
