// IPv4/IPv6 interface addresses of bridges and ports: add and remove (base/ifaddr.h), with the provider's
// failure messages. Observed from the one address dump per observe (collectAddress).
#include "base/ifaddr.h"
#include "providers/linux/kind.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

Status addAddresses(LinuxSession& s, const KindOps& ops, const std::string& name, int ifindex,
                    const std::vector<std::string>& cidrs) {
  for (const auto& cidr : cidrs)
    if (NlOutcome o = addAddress(s.nl(), ifindex, cidr); !o.ok())
      return s.failure("add address " + cidr + " to " + ops.label + " " + name, o.message);
  return {};
}

Status syncAddresses(LinuxSession& s, const KindOps& ops, const std::string& name, const Attrs& before,
                     const Attrs& after) {
  const AddressChange c = addressChange(before.getStrings("addresses"), after.getStrings("addresses"));
  if (c.remove.empty() && c.add.empty()) return {};
  auto index = s.ifindex(name);
  if (!index.ok()) return s.failure(std::string("update addresses of ") + ops.label + " " + name, index.error().message);
  // Remove first: the same address with a new prefix length is a remove + add.
  for (const auto& cidr : c.remove)
    if (NlOutcome o = removeAddress(s.nl(), *index, cidr); !o.ok())
      return s.failure("remove address " + cidr + " from " + ops.label + " " + name, o.message);
  return addAddresses(s, ops, name, *index, c.add);
}

}  // namespace vnetplan::lnx
