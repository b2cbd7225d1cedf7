// IPv4/IPv6 interface addresses over route netlink, shared by the providers that drive kernel devices (linux,
// and ovs for its internal ports): read from an RTM_GETADDR dump, added and removed one request each.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "base/netlink.h"
#include "base/result.h"

namespace vnetplan {

// Adds the address of one RTM_NEWADDR message to out[ifindex] as "ADDR/LEN". Addresses the kernel or router
// adverts made (lo's, link-local, SLAAC/privacy) are not the user's to manage and are skipped.
void collectAddress(const nlmsghdr* h, std::map<int, std::vector<std::string>>& out);

// Every managed address of every interface of `sock`'s namespace, by ifindex.
Result<std::map<int, std::vector<std::string>>> dumpAddresses(NlSocket& sock);

// Adds `cidr` to `ifindex` (NLM_F_REPLACE, like `ip addr replace`: a retried apply does not trip over its own
// earlier work). An invalid cidr is reported as EINVAL with a message.
NlOutcome addAddress(NlSocket& sock, int ifindex, const std::string& cidr);
// Removes `cidr` from `ifindex`; an address already gone (EADDRNOTAVAIL) counts as removed.
NlOutcome removeAddress(NlSocket& sock, int ifindex, const std::string& cidr);

// The addresses to remove and to add to go from `have` to `want`, compared in canonical form.
struct AddressChange {
  std::vector<std::string> remove, add;
};
AddressChange addressChange(const std::vector<std::string>& have, const std::vector<std::string>& want);

}  // namespace vnetplan
