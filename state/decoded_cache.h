// Decoded state files, cached by their exact bytes.
//
// Every plan reads its targets' state.json: for a host of a thousand objects that is a megabyte of JSON, parsed
// into a tree and then into OwnedObjects, a fifth of a no-op plan's CPU under emulation. The decoded TargetState is
// kept in the per-user cache directory (base/cachedir.h) as a byte stream (model/bytestream.h) under a key over
// this binary's identity and the file's exact bytes: the state file stays the only truth (it is read every time,
// from whichever backend), and any change to it, or a rebuilt binary, is a miss. A damaged entry is a miss.
#pragma once
#include <optional>
#include <string>

#include "state/store.h"

namespace vnetplan::state::decodedcache {

inline constexpr size_t kMaxEntries = 16;

// "" when caching is off.
std::string keyOf(const std::string& stateBytes);
// The state decoded from exactly these bytes, if cached (and for this target).
std::optional<TargetState> load(const std::string& key, const std::string& target);
// Best effort.
void store(const std::string& key, const TargetState& st);

// Encoding, exposed for tests.
std::string encode(const std::string& key, const TargetState& st);
std::optional<TargetState> decode(const std::string& bytes, const std::string& key);

}  // namespace vnetplan::state::decodedcache
