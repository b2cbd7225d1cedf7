// The state backends by URL scheme: each one's opener (openBackend in store.h picks by scheme).
#pragma once
#include <memory>
#include <string>

#include "state/store.h"

namespace vnetplan::state {

// file://DIR (DIR relative to the working directory; file:///abs for an absolute one). `rest` is DIR.
Result<std::unique_ptr<Backend>> openFileBackend(const std::string& url, const std::string& rest);

}  // namespace vnetplan::state
