// The linux provider: Switch = Linux bridge, Port = veth | tap, in a named network namespace (Target
// spec.netns) or the host's, through libnl-3 route netlink.
#pragma once
#include <memory>

#include "reconciler/provider.h"

namespace vnetplan {

std::unique_ptr<Provider> makeLinuxProvider();

}  // namespace vnetplan
