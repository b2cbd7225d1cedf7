// Random identifiers (journal ids, lock ids, temp file names): hex text from the kernel's random source.
#pragma once
#include <cstddef>
#include <string>

namespace vnetplan {

// 2 * bytes hex characters from getrandom(2) (std::random_device if that fails).
std::string randomHex(size_t bytes);

}  // namespace vnetplan
