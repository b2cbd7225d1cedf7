// The esxi provider: VMware ESXi standard vSwitches through esxcli over SSH (libssh). Switch = standard vSwitch
// (with its uplinks and policies), PortGroup = port group (VLAN + the policy fields it overrides), Port of type
// vmkernel = vmkernel NIC. Commands go in batches of many esxcli invocations per SSH exec, each with its own
// status, so a failure leaves exactly known steps done and the rollback restores the pre-image.
#pragma once
#include <memory>

#include "reconciler/provider.h"

namespace vnetplan {

std::unique_ptr<Provider> makeEsxiProvider();

}  // namespace vnetplan
