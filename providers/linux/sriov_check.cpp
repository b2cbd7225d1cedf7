#include "providers/linux/sriov_check.h"

#include <cerrno>

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <sys/socket.h>

#include "base/fd.h"
#include "base/netns.h"

namespace vnetplan::lnx {

namespace {

// What a driver's ndo_set_vf_* refuses, from the drivers' sources (Linux 6.1). netdevsim implements every VF knob.
struct DriverLimit {
  const char* driver;
  const char* field;
  const char* why;
};
constexpr DriverLimit kLimits[] = {
    {"igb", "linux.minTxRate", "it has no minimum VF transmit rate (min_tx_rate must be 0)"},
    {"ixgbe", "linux.minTxRate", "it has no minimum VF transmit rate (min_tx_rate must be 0)"},
    {"i40e", "linux.minTxRate", "it has no minimum VF transmit rate (min_tx_rate must be 0)"},
};

}  // namespace

PfProbe probePf(const Target& t, const std::string& name) {
  PfProbe p;
  UniqueFd nsFd;
  if (auto ns = t.spec.getString("netns")) {
    auto fd = openNetns(*ns);
    if (!fd.ok()) return p;
    nsFd = std::move(fd.value());
  }
  auto sock = NlSocket::openIn(nsFd ? nsFd.get() : -1);
  if (!sock.ok()) return p;
  NlMsg m = newMsg(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
      nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) < 0 ||
      nla_put_u32(m.get(), IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0)
    return p;
  NlOutcome o = (*sock)->request(m.get(), [&](const nlmsghdr* h) {
    if (auto l = parseLink(h)) p.link = std::move(*l);
  });
  if (!o.ok() && o.errnum != ENODEV) return p;
  p.reached = true;
  if (p.link) p.dev = pfDevice(*p.link);
  return p;
}

void checkPfSupports(const Resource& r, const Target& t, const std::string& link, Diagnostics& diags) {
  PfProbe p = probePf(t, link);
  // Not there (yet, or not on the machine running validate): the apply says so if it still is not.
  if (!p.reached || !p.link) return;
  const std::string driver = driverOf(*p.link);
  if (!p.dev.sriov)
    return diags.error(r.locOf("link"),
                       "linux: field link of Port " + r.addr.name + ": " + link + " (driver " +
                           (driver.empty() ? "none" : driver) + ") has no SR-IOV virtual functions (its device has "
                           "no sriov_numvfs)",
                       "provider/unsupported");
  for (const auto& l : kLimits)
    if (driver == l.driver)
      if (const Json* v = r.attrs.find(l.field); v && !(v->is_number_integer() && v->get<int64_t>() == 0))
        diags.error(r.locOf(l.field),
                    "linux: field " + std::string(l.field) + " of Port " + r.addr.name + ": " + link + "'s driver " +
                        l.driver + " cannot set it: " + l.why,
                    "provider/unsupported");
}

}  // namespace vnetplan::lnx
