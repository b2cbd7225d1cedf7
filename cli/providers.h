// The providers this binary is built with: the one place that names them. The core (reconciler/) knows
// providers only through reconciler/provider.h and the registry it is handed.
#pragma once
#include "reconciler/provider.h"

namespace vnetplan {

// Every provider of this build, created once (linux, ovs, ...). Never mutated after it is built.
const ProviderRegistry& builtinProviders();

}  // namespace vnetplan
