// The state backends by URL scheme: each one's opener (openBackend in store.h picks by scheme).
#pragma once
#include <memory>
#include <string>

#include "state/store.h"

namespace vnetplan::state {

// file://DIR (DIR relative to the working directory; file:///abs for an absolute one). `rest` is DIR.
Result<std::unique_ptr<Backend>> openFileBackend(const std::string& url, const std::string& rest);
// How long one key component is as a file name of the file backend, and the file system's limit.
size_t fileBackendNameBytes(const std::string& component);
constexpr size_t kFileBackendMaxNameBytes = 255;  // NAME_MAX on Linux file systems

}  // namespace vnetplan::state
