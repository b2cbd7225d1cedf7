// A content-addressed cache of the manifest front end: YAML parsing, schema validation, the builder and lint
// (everything before the providers look at the resources). Drift jobs and CI re-plan the same manifests over
// and over; with the cache, a plan whose manifests did not change skips straight to the providers.
//
// The key is a SHA-256 over this binary's identity (version, and the device/inode/size/mtime of
// /proc/self/exe, so a rebuilt binary never reads an older build's entries) and every manifest file's path and
// exact bytes. Only runs without errors are stored, with their warnings, which a hit reports again. The
// provider pass (check, normalize, defaults) always runs: it may depend on the host (user names, namespaces).
//
// Location and trust: base/cachedir.h ($VNETPLAN_CACHE_DIR, else $XDG_CACHE_HOME/vnetplan, else
// $HOME/.cache/vnetplan; VNETPLAN_CACHE=off disables it). A damaged entry is a miss. At most kMaxEntries entries
// are kept (the least recently used are removed).
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/diag.h"
#include "reconciler/manifest.h"
#include "model/model.h"

namespace vnetplan::frontcache {

inline constexpr size_t kMaxEntries = 16;

struct Entry {
  std::string key;  // the key it was stored under (checked on load)
  DesiredState desired;
  std::vector<Diagnostic> warnings;
};

// The cache directory, or "" when caching is off or no location is known.
std::string directory();
// The key for these sources ("" when caching is off).
std::string keyOf(const std::vector<ManifestSource>& sources);
// A hit calls onTargets with the cached Targets as soon as they are decoded (before the resources), so
// observing them can start early. A damaged entry may have called it before returning nullopt.
std::optional<Entry> load(const std::string& key,
                          const std::function<void(const std::vector<Target>&)>& onTargets = nullptr);
// Best effort: a cache that cannot be written is only slower.
void store(const std::string& key, const DesiredState& desired, const std::vector<Diagnostic>& warnings);

// Encoding, exposed for tests.
std::string encode(const std::string& key, const DesiredState& desired, const std::vector<Diagnostic>& warnings);
std::optional<Entry> decode(const std::string& bytes,
                           const std::function<void(const std::vector<Target>&)>& onTargets = nullptr);

}  // namespace vnetplan::frontcache
