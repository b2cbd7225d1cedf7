// What the kernel can do, asked of the kernel itself: once per process, in a private network namespace that
// exists only for the probe (no target and nothing of the host is touched), the probe makes a VLAN-filtering
// bridge, an 802.1Q sub-interface and a bond, and notes which the kernel refuses. The linux provider drives the
// kernel it runs on, so this is the target's kernel.
#pragma once
#include <string>

namespace vnetplan::lnx {

enum class Cap { Unknown, Yes, No };

struct KernelCaps {
  std::string release;  // uname -r
  Cap vlanFiltering = Cap::Unknown;
  Cap vlanDevices = Cap::Unknown;  // 802.1Q (8021q)
  Cap bonding = Cap::Unknown;
  std::string unknownWhy;  // why the probe could not run (not root, ...)
};

const KernelCaps& kernelCaps();

// "this kernel (6.1.0-56-amd64) has no bridge VLAN filtering"
std::string lacks(const KernelCaps& caps, const std::string& feature);

}  // namespace vnetplan::lnx
