#include "base/ifaddr.h"

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/attr.h>
#include <netlink/route/addr.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>

#include "base/netaddr.h"

namespace vnetplan {

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

NlOutcome send(NlSocket& sock, int ifindex, const std::string& cidr, bool add) {
  auto addr = makeAddr(ifindex, cidr);
  if (!addr.ok()) return {EINVAL, addr.error().message};
  nl_msg* raw = nullptr;
  int rc = add ? rtnl_addr_build_add_request(addr->get(), NLM_F_CREATE | NLM_F_REPLACE, &raw)
               : rtnl_addr_build_delete_request(addr->get(), 0, &raw);
  if (rc < 0) return {ENOMEM, nl_geterror(rc)};
  NlMsg msg(raw);
  return sock.request(msg.get());
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
    if (c.isIpv6LinkLocal()) return;         // addrconf's fe80::/64 (providers reject declaring one)
    if (!(flags & IFA_F_PERMANENT)) return;  // SLAAC / privacy addresses learned from router adverts
  }
  out[ifa->ifa_index].push_back(c.str());
}

Result<std::map<int, std::vector<std::string>>> dumpAddresses(NlSocket& sock) {
  std::map<int, std::vector<std::string>> out;
  NlMsg m = newMsg(RTM_GETADDR, NLM_F_DUMP);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_UNSPEC;
  if (!m || nlmsg_append(m.get(), &ifa, sizeof ifa, NLMSG_ALIGNTO) < 0) return err("out of memory");
  NlOutcome o = sock.dump(m.get(), [&](const nlmsghdr* h) { collectAddress(h, out); }, [&] { out.clear(); });
  if (!o.ok()) return err("read addresses: " + o.message);
  return out;
}

NlOutcome addAddress(NlSocket& sock, int ifindex, const std::string& cidr) { return send(sock, ifindex, cidr, true); }

NlOutcome removeAddress(NlSocket& sock, int ifindex, const std::string& cidr) {
  NlOutcome o = send(sock, ifindex, cidr, false);
  return o.errnum == EADDRNOTAVAIL ? NlOutcome{} : o;
}

AddressChange addressChange(const std::vector<std::string>& have, const std::vector<std::string>& want) {
  auto canonical = [](const std::vector<std::string>& in) {
    std::set<std::string> out;
    for (const auto& text : in) {
      auto c = parsePrefix(text, nullptr);
      out.insert(c ? c->str() : text);
    }
    return out;
  };
  const std::set<std::string> h = canonical(have), w = canonical(want);
  AddressChange c;
  std::set_difference(h.begin(), h.end(), w.begin(), w.end(), std::back_inserter(c.remove));
  std::set_difference(w.begin(), w.end(), h.begin(), h.end(), std::back_inserter(c.add));
  return c;
}

}  // namespace vnetplan
