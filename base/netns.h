// Named network namespaces (/run/netns/NAME, as `ip netns` manages them).
//
// The provider never moves the calling thread between namespaces for longer than a call: work that must
// happen inside a namespace (creating a netlink socket, opening /dev/net/tun, unshare) runs on a short-lived
// dedicated thread that enters the namespace and exits afterwards, so no caller thread is ever left in the
// wrong namespace, even on failure.
#pragma once
#include <functional>
#include <string>

#include "base/fd.h"
#include "base/result.h"

namespace vnetplan {



inline constexpr const char* kNetnsRunDir = "/run/netns";
std::string netnsPath(const std::string& name);

// True when /run/netns/NAME exists (whatever it is).
bool netnsExists(const std::string& name);

// Opens /run/netns/NAME and checks that it is a network namespace. `*errnum` (optional) gets the errno of
// a failed open (ENOENT when the namespace does not exist).
Result<UniqueFd> openNetns(const std::string& name, int* errnum = nullptr);

// Creates /run/netns/NAME the way `ip netns add` does: makes /run/netns a shared mount point, creates the
// mount point file and bind-mounts a fresh network namespace on it. Fails if it already exists.
Status createNetns(const std::string& name);

// Runs `fn` on a dedicated thread that first enters the network namespace `nsFd` (-1: stay in the caller's
// namespace, still on the dedicated thread). Returns fn's status or the setns error.
Status runInNetns(int nsFd, const std::function<Status()>& fn);

}  // namespace vnetplan
