// SHA-256 as lowercase hex (manifest digests, plan digests, fingerprints of live state, cache keys).
#pragma once
#include <string>

namespace vnetplan {

std::string sha256Hex(const std::string& bytes);

}  // namespace vnetplan
