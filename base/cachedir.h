// The per-user cache directory: where vnetplan keeps what it can recompute (the manifests' front end, decoded
// state files), so that a run whose inputs did not change skips the work.
//
// Location: $VNETPLAN_CACHE_DIR, else $XDG_CACHE_HOME/vnetplan, else $HOME/.cache/vnetplan; VNETPLAN_CACHE=off (or
// 0) turns every cache off. The directory is created 0700 and never followed through a symlink; a directory or an
// entry not owned by this user, or writable by others, is not read. Entries are whole files written atomically;
// a damaged one is the reader's miss, never an error. Everything here is best effort: a cache that cannot be
// used only makes a run slower.
#pragma once
#include <cstddef>
#include <optional>
#include <string>

namespace vnetplan::cachedir {

// VNETPLAN_CACHE=off or 0.
bool off();
// The directory, or "" when caching is off or no location is known.
std::string directory();
// This binary's identity (version and the device/inode/size/mtime of /proc/self/exe), for keys: a rebuilt binary
// never reads an older build's entries. "" when unknown (then nothing should be shared).
std::string binaryIdentity();
// The bytes of entry `name` (at most maxBytes), or nullopt.
std::optional<std::string> read(const std::string& name, size_t maxBytes = size_t{256} << 20);
// Marks an entry just used (the pruning keeps recently used entries).
void touch(const std::string& name);
// Writes entry `name` atomically, then removes the oldest entries whose names end in `suffix` beyond `keep`.
void write(const std::string& name, const std::string& bytes, const std::string& suffix, size_t keep);

}  // namespace vnetplan::cachedir
