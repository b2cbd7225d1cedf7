// Percent-encoding of names into keys and file names (shared by the store and the file backend).
#pragma once
#include <cstddef>
#include <optional>
#include <string>

namespace vnetplan::state {

// Which bytes stay as they are; every other byte becomes %XX. `i` is the byte's position in the name.
using KeepByte = bool (*)(unsigned char c, size_t i);

std::string percentEncode(const std::string& raw, KeepByte keep);
// The inverse, accepting only the canonical form percentEncode(…, keep) would produce (nullopt otherwise).
std::optional<std::string> percentDecode(const std::string& enc, KeepByte keep);

}  // namespace vnetplan::state
