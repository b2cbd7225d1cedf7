// The ovs provider: Open vSwitch through OVSDB (RFC 7047). Switch = Bridge (+ uplink bond), PortGroup = VLAN
// applied to member ports, Port = Port + Interface (internal, system, tap, vxlan, gre, geneve, patch),
// Mirror = Mirror. One transaction per target apply.
#pragma once
#include <memory>

#include "reconciler/provider.h"

namespace vnetplan {

std::unique_ptr<Provider> makeOvsProvider();

}  // namespace vnetplan
