// Whole-buffer reads and writes on a file descriptor (EINTR and short transfers handled), shared by the state
// store and the front-end cache.
#pragma once
#include <string>

#include "reconciler/result.h"

namespace vnetplan {

Status writeAll(int fd, const std::string& bytes);
Result<std::string> readAll(int fd);

}  // namespace vnetplan
