// Plan-time knowledge of a physical function: the link looked up in the target's namespace, its device and
// driver, and what the driver cannot do (a plan error naming the driver and the field). Like the kernel's
// capabilities (caps.h), this is the host vnetplan runs on, which is the linux provider's target. A NIC that is
// not there is no error here (validate may run elsewhere); the apply names it.
#pragma once
#include <optional>
#include <string>

#include "providers/linux/kind.h"
#include "providers/linux/sriov.h"

namespace vnetplan::lnx {

struct PfProbe {
  bool reached = false;  // the target's namespace could be asked (false: not created yet, not root, ...)
  std::optional<LinkInfo> link;
  PfDevice dev;
};
PfProbe probePf(const Target& t, const std::string& name);

// Errors for a vf Port whose PF `link` is not an SR-IOV PF, or whose driver cannot do a field `r` sets.
void checkPfSupports(const Resource& r, const Target& t, const std::string& link, Diagnostics& diags);

}  // namespace vnetplan::lnx
