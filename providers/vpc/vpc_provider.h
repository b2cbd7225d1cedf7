// The vpc provider: a VPC-like cloud on the OpenStack Neutron v2.0 API (Keystone v3, clouds.yaml). Vpc = router
// (+ external gateway, SNAT; peerings through transit networks), Subnet = network + subnet (+ router interface),
// SecurityGroup = security group + rules, Route = router extra route. Objects are identified by tags and ids,
// never by names. See kind.h for the mapping and session.h for how a target is observed and applied.
#pragma once
#include <memory>

#include "reconciler/provider.h"

namespace vnetplan {

std::unique_ptr<Provider> makeVpcProvider();

}  // namespace vnetplan
