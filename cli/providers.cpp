#include "cli/providers.h"

#include "providers/esxi/esxi_provider.h"
#include "providers/linux/linux_provider.h"
#include "providers/ovs/ovs_provider.h"
#include "providers/vpc/vpc_provider.h"

namespace vnetplan {

const ProviderRegistry& builtinProviders() {
  static const ProviderRegistry registry = [] {
    ProviderRegistry r;
    r.add(makeLinuxProvider());
    r.add(makeOvsProvider());
    r.add(makeEsxiProvider());
    r.add(makeVpcProvider());
    return r;
  }();
  return registry;
}

}  // namespace vnetplan
