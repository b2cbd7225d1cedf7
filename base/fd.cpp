#include "base/fd.h"

#include <system_error>

namespace vnetplan {

std::string errnoText(int e) { return std::error_code(e, std::generic_category()).message(); }

}  // namespace vnetplan
