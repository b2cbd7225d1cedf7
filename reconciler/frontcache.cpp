#include "reconciler/frontcache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/fd.h"
#include "base/fileio.h"
#include "base/sha256.h"
#include "model/codec.h"

namespace vnetplan::frontcache {

namespace fs = std::filesystem;

namespace {

constexpr int kFormat = 3;  // 3: resources carry fieldLocs

Json locJson(const SourceLoc& l) { return Json::array({l.file, l.line, l.col}); }
std::optional<SourceLoc> locFrom(const Json& j) {
  if (!j.is_array() || j.size() != 3 || !j[0].is_string() || !j[1].is_number_integer() || !j[2].is_number_integer())
    return std::nullopt;
  return SourceLoc{j[0].get<std::string>(), j[1].get<int>(), j[2].get<int>()};
}

Json labelsJson(const std::map<std::string, std::string>& m) {
  Json o = Json::object();
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}
std::map<std::string, std::string> labelsFrom(const Json& j) {
  std::map<std::string, std::string> m;
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.value().is_string()) m[it.key()] = it.value().get<std::string>();
  return m;
}

std::string binaryIdentity() {
  struct stat st {};
  std::string id = VNETPLAN_VERSION;
  if (::stat("/proc/self/exe", &st) == 0)
    id += "|" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
          std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  else
    return "";  // unknown binary: never share entries
  return id;
}

}  // namespace

std::string directory() {
  const char* off = std::getenv("VNETPLAN_CACHE");
  if (off && (std::string(off) == "off" || std::string(off) == "0")) return "";
  if (const char* d = std::getenv("VNETPLAN_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/vnetplan";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/vnetplan";
  return "";
}

std::string keyOf(const std::vector<ManifestSource>& sources) {
  if (directory().empty()) return "";
  std::string id = binaryIdentity();
  if (id.empty()) return "";
  std::string all = "vnetplan-frontcache-" + std::to_string(kFormat) + "\n" + id + "\n";
  for (const auto& s : sources) all += s.file + '\0' + std::to_string(s.text.size()) + '\0' + s.text + '\0';
  return sha256Hex(all);
}

std::string encode(const std::string& key, const DesiredState& d, const std::vector<Diagnostic>& warnings) {
  Json targets = Json::array();
  for (const auto& t : d.targets) {
    Json j = toJson(t);
    j["loc"] = locJson(t.loc);
    targets.push_back(std::move(j));
  }
  Json resources = Json::array();
  for (const auto& r : d.resources) {
    Json origins = Json::object();
    for (const auto& [path, o] : r.origins)
      origins[path] = Json::array({static_cast<int>(o.origin), o.from});
    Json deps = Json::array();
    for (const auto& a : r.dependsOn) deps.push_back(a.str());
    Json fieldLocs = Json::object();
    for (const auto& [path, l] : r.fieldLocs) fieldLocs[path] = locJson(l);
    resources.push_back(Json{{"a", r.addr.str()},
                             {"v", flatJson(r.attrs)},
                             {"o", std::move(origins)},
                             {"d", std::move(deps)},
                             {"l", labelsJson(r.labels)},
                             {"adopt", r.adopt},
                             {"deleteOnRelease", r.deleteOnRelease},
                             {"j", r.justification},
                             {"loc", locJson(r.loc)},
                             {"fl", std::move(fieldLocs)}});
  }
  Json warns = Json::array();
  for (const auto& w : warnings) warns.push_back(Json{{"loc", locJson(w.loc)}, {"m", w.message}, {"c", w.code}});
  // Two parts: the Targets first (small, so a reader can start observing them at once), then the rest.
  auto head = Json::to_msgpack(Json{{"format", kFormat}, {"key", key}, {"targets", std::move(targets)}});
  auto body = Json::to_msgpack(Json{{"resources", std::move(resources)},
                                    {"files", d.files},
                                    {"digest", d.digest},
                                    {"warnings", std::move(warns)}});
  std::string out;
  const uint32_t n = static_cast<uint32_t>(head.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(head.begin(), head.end());
  out.append(body.begin(), body.end());
  return out;
}

static std::optional<Entry> decodeOrThrow(const std::string& bytes,
                                          const std::function<void(const std::vector<Target>&)>& onTargets);

std::optional<Entry> decode(const std::string& bytes, const std::function<void(const std::vector<Target>&)>& onTargets) {
  // Any entry that is not exactly what encode() wrote is a miss, never an error.
  try {
    return decodeOrThrow(bytes, onTargets);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

static std::optional<Entry> decodeOrThrow(const std::string& bytes,
                                          const std::function<void(const std::vector<Target>&)>& onTargets) {
  if (bytes.size() < 4) return std::nullopt;
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  if (n > bytes.size() - 4) return std::nullopt;
  Json head = Json::from_msgpack(bytes.begin() + 4, bytes.begin() + 4 + n, true, false);
  if (head.is_discarded() || !head.is_object() || head.value("format", 0) != kFormat) return std::nullopt;
  Entry e;
  e.key = head.value("key", std::string());
  for (const auto& t : head.value("targets", Json::array())) {
    auto target = targetFromJson(t);
    auto loc = t.is_object() && t.contains("loc") ? locFrom(t["loc"]) : std::nullopt;
    if (!target || !loc) return std::nullopt;
    target->loc = *loc;
    e.desired.targets.push_back(std::move(*target));
  }
  if (onTargets) onTargets(e.desired.targets);
  Json doc = Json::from_msgpack(bytes.begin() + 4 + n, bytes.end(), true, false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  for (const auto& r : doc.value("resources", Json::array())) {
    if (!r.is_object() || !r.contains("a") || !r["a"].is_string()) return std::nullopt;
    auto addr = Address::parse(r["a"].get<std::string>());
    auto loc = r.contains("loc") ? locFrom(r["loc"]) : std::nullopt;
    if (!addr || !loc) return std::nullopt;
    Resource res;
    res.addr = *addr;
    res.loc = *loc;
    res.attrs = attrsFromFlatJson(r.value("v", Json::object()));
    const Json origins = r.value("o", Json::object());
    if (!origins.is_object()) return std::nullopt;
    for (const auto& [path, o] : origins.items()) {
      if (!o.is_array() || o.size() != 2 || !o[0].is_number_integer() || !o[1].is_string()) return std::nullopt;
      int origin = o[0].get<int>();
      if (origin < 0 || origin > static_cast<int>(Origin::Default)) return std::nullopt;
      res.origins[path] = AttrOrigin{static_cast<Origin>(origin), o[1].get<std::string>()};
    }
    const Json fieldLocs = r.value("fl", Json::object());
    if (!fieldLocs.is_object()) return std::nullopt;
    for (const auto& [path, l] : fieldLocs.items()) {
      auto fl = locFrom(l);
      if (!fl) return std::nullopt;
      res.fieldLocs[path] = *fl;
    }
    for (const auto& dep : r.value("d", Json::array())) {
      auto a = dep.is_string() ? Address::parse(dep.get<std::string>()) : std::nullopt;
      if (!a) return std::nullopt;
      res.dependsOn.push_back(*a);
    }
    res.labels = labelsFrom(r.value("l", Json::object()));
    res.adopt = r.value("adopt", false);
    res.deleteOnRelease = r.value("deleteOnRelease", false);
    res.justification = r.value("j", std::string());
    e.desired.resources.push_back(std::move(res));
  }
  for (const auto& f : doc.value("files", Json::array()))
    if (f.is_string()) e.desired.files.push_back(f.get<std::string>());
  e.desired.digest = doc.value("digest", std::string());
  for (const auto& w : doc.value("warnings", Json::array())) {
    auto loc = w.is_object() && w.contains("loc") ? locFrom(w["loc"]) : std::nullopt;
    if (!loc) return std::nullopt;
    e.warnings.push_back(Diagnostic{Severity::Warning, *loc, w.value("m", std::string()), w.value("c", std::string())});
  }
  return e;
}

// The cache directory, opened without following a symlink (a planted link could point anywhere), and only if it
// is ours and nobody else can write to it. Created 0700 when missing.
static UniqueFd openCacheDir(bool create) {
  const std::string dir = directory();
  if (create) {
    std::error_code ec;
    fs::path parent = fs::path(dir).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
    ::mkdir(dir.c_str(), 0700);
  }
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return fd;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) return UniqueFd();
  if (!create && (st.st_mode & 022) != 0) return UniqueFd();  // others could have planted entries
  if ((st.st_mode & 077) != 0 && ::fchmod(fd.get(), 0700) != 0) return UniqueFd();
  return fd;
}

std::optional<Entry> load(const std::string& key, const std::function<void(const std::vector<Target>&)>& onTargets) {
  if (key.empty()) return std::nullopt;
  UniqueFd dirfd = openCacheDir(false);  // a symlink, or a directory others can write to, is not trusted
  if (!dirfd) return std::nullopt;
  const std::string name = key + ".msgpack";
  auto opened = openRegularForRead(dirfd.get(), name);
  if (!opened) return std::nullopt;
  int fd = *opened;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022) != 0 ||
      st.st_size > (256 << 20)) {
    ::close(fd);
    return std::nullopt;
  }
  auto bytes = readAll(fd);
  ::close(fd);
  if (!bytes) return std::nullopt;
  auto e = decode(*bytes, onTargets);
  if (e && e->key != key) return std::nullopt;  // an entry saved under another name
  if (e) ::utimensat(dirfd.get(), name.c_str(), nullptr, 0);  // recently used: pruned last
  return e;
}

void store(const std::string& key, const DesiredState& desired, const std::vector<Diagnostic>& warnings) {
  if (key.empty()) return;
  UniqueFd dirfd = openCacheDir(true);
  if (!dirfd) return;
  removeStaleTemps(dirfd.get());
  if (!atomicWriteAt(dirfd.get(), key + ".msgpack", encode(key, desired, warnings))) return;
  const std::string dir = directory();
  std::error_code ec;
  // Keep the newest entries only.
  std::vector<std::pair<fs::file_time_type, fs::path>> entries;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".msgpack") entries.emplace_back(e.last_write_time(ec), e.path());
  if (entries.size() <= kMaxEntries) return;
  std::sort(entries.begin(), entries.end());
  for (size_t i = 0; i + kMaxEntries < entries.size(); ++i) fs::remove(entries[i].second, ec);
}

}  // namespace vnetplan::frontcache
