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

constexpr int kFormat = 4;  // 3: resources carry fieldLocs; 4: the body is the byte stream of encodeBody()

Json locJson(const SourceLoc& l) { return Json::array({l.file, l.line, l.col}); }
std::optional<SourceLoc> locFrom(const Json& j) {
  if (!j.is_array() || j.size() != 3 || !j[0].is_string() || !j[1].is_number_integer() || !j[2].is_number_integer())
    return std::nullopt;
  return SourceLoc{j[0].get<std::string>(), j[1].get<int>(), j[2].get<int>()};
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

// The body (everything but the Targets) is a flat byte stream of its own instead of msgpack: decoding msgpack into
// a JSON tree and then into Resources built and freed the whole tree again, most of a cached no-op plan's time.
//   u32 little-endian counts and ints; strings as u32 length + bytes; file names once, in a table, locations as
//   (file index, line, col); values tagged (null, bool, int, string, or msgpack for the rest).
namespace {

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void i64(int64_t v) {
    auto u = static_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  }
  void str(const std::string& v) {
    u32(static_cast<uint32_t>(v.size()));
    out_ += v;
  }
  void loc(const SourceLoc& l) {
    auto [it, added] = files_.emplace(l.file, static_cast<uint32_t>(files_.size()));
    (void)added;
    u32(it->second);
    u32(static_cast<uint32_t>(l.line));
    u32(static_cast<uint32_t>(l.col));
  }
  void value(const Json& v) {
    switch (v.type()) {
      case Json::value_t::null: u8('n'); return;
      case Json::value_t::boolean: u8(v.get<bool>() ? 't' : 'f'); return;
      case Json::value_t::number_integer: u8('i'); i64(v.get<int64_t>()); return;
      case Json::value_t::string: u8('s'); str(v.get_ref<const std::string&>()); return;
      default: {
        u8('m');
        auto packed = Json::to_msgpack(v);
        str(std::string(packed.begin(), packed.end()));
      }
    }
  }
  // The file table goes first, so a reader knows every name before the first location.
  std::string finish() const {
    Writer head;
    head.u32(static_cast<uint32_t>(files_.size()));
    std::vector<const std::string*> byIndex(files_.size());
    for (const auto& [name, i] : files_) byIndex[i] = &name;
    for (const auto* name : byIndex) head.str(*name);
    return head.out_ + out_;
  }

 private:
  std::string out_;
  std::map<std::string, uint32_t> files_;
};

struct Damaged {};  // thrown by Reader: the entry is not what encode() wrote

class Reader {
 public:
  Reader(const char* p, const char* end) : p_(p), end_(end) {
    const uint32_t n = count();
    for (uint32_t i = 0; i < n; ++i) files_.push_back(str());
  }
  bool atEnd() const { return p_ == end_; }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(*p_++);
  }
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p_[i])) << (8 * i);
    p_ += 4;
    return v;
  }
  int64_t i64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p_[i])) << (8 * i);
    p_ += 8;
    return static_cast<int64_t>(v);
  }
  // A count of things that each take at least one byte: never more than what is left.
  uint32_t count() {
    uint32_t n = u32();
    if (n > static_cast<size_t>(end_ - p_)) throw Damaged{};
    return n;
  }
  std::string str() {
    const uint32_t n = u32();
    need(n);
    std::string v(p_, n);
    p_ += n;
    return v;
  }
  bool flag() {
    uint8_t v = u8();
    if (v > 1) throw Damaged{};
    return v == 1;
  }
  SourceLoc loc() {
    const uint32_t f = u32();
    if (f >= files_.size()) throw Damaged{};
    const auto line = static_cast<int>(u32()), col = static_cast<int>(u32());
    if (line < 0 || col < 0) throw Damaged{};
    return SourceLoc{files_[f], line, col};
  }
  Json value() {
    switch (u8()) {
      case 'n': return nullptr;
      case 't': return true;
      case 'f': return false;
      case 'i': return i64();
      case 's': return str();
      case 'm': {
        const std::string packed = str();
        Json v = Json::from_msgpack(packed.begin(), packed.end(), true, false);
        if (v.is_discarded()) throw Damaged{};
        return v;
      }
      default: throw Damaged{};
    }
  }
  Address address() {
    auto a = Address::parse(str());
    if (!a) throw Damaged{};
    return *a;
  }

 private:
  void need(size_t n) const {
    if (n > static_cast<size_t>(end_ - p_)) throw Damaged{};
  }
  const char* p_;
  const char* end_;
  std::vector<std::string> files_;
};

std::string encodeBody(const DesiredState& d, const std::vector<Diagnostic>& warnings) {
  Writer w;
  w.u32(static_cast<uint32_t>(d.resources.size()));
  for (const auto& r : d.resources) {
    w.str(r.addr.str());
    w.loc(r.loc);
    w.u32(static_cast<uint32_t>(r.attrs.values().size()));
    for (const auto& [path, v] : r.attrs.values()) {
      w.str(path);
      w.value(v);
    }
    w.u32(static_cast<uint32_t>(r.origins.size()));
    for (const auto& [path, o] : r.origins) {
      w.str(path);
      w.u8(static_cast<uint8_t>(o.origin));
      w.str(o.from);
    }
    w.u32(static_cast<uint32_t>(r.fieldLocs.size()));
    for (const auto& [path, l] : r.fieldLocs) {
      w.str(path);
      w.loc(l);
    }
    w.u32(static_cast<uint32_t>(r.dependsOn.size()));
    for (const auto& a : r.dependsOn) w.str(a.str());
    w.u32(static_cast<uint32_t>(r.labels.size()));
    for (const auto& [k, v] : r.labels) {
      w.str(k);
      w.str(v);
    }
    w.u8(r.adopt ? 1 : 0);
    w.u8(r.deleteOnRelease ? 1 : 0);
    w.str(r.justification);
  }
  w.u32(static_cast<uint32_t>(d.files.size()));
  for (const auto& f : d.files) w.str(f);
  w.str(d.digest);
  w.u32(static_cast<uint32_t>(warnings.size()));
  for (const auto& x : warnings) {
    w.loc(x.loc);
    w.str(x.message);
    w.str(x.code);
  }
  return w.finish();
}

void decodeBody(Reader& in, Entry& e) {
  const uint32_t n = in.count();
  e.desired.resources.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    Resource& r = e.desired.resources.emplace_back();
    r.addr = in.address();
    r.loc = in.loc();
    for (uint32_t k = 0, m = in.count(); k < m; ++k) {
      std::string path = in.str();
      r.attrs.set(path, in.value());
    }
    for (uint32_t k = 0, m = in.count(); k < m; ++k) {
      std::string path = in.str();
      const uint8_t origin = in.u8();
      if (origin > static_cast<uint8_t>(Origin::Default)) throw Damaged{};
      r.origins.emplace(std::move(path), AttrOrigin{static_cast<Origin>(origin), in.str()});
    }
    for (uint32_t k = 0, m = in.count(); k < m; ++k) {
      std::string path = in.str();
      r.fieldLocs.emplace(std::move(path), in.loc());
    }
    for (uint32_t k = 0, m = in.count(); k < m; ++k) r.dependsOn.push_back(in.address());
    for (uint32_t k = 0, m = in.count(); k < m; ++k) {
      std::string key = in.str();
      r.labels.emplace(std::move(key), in.str());
    }
    r.adopt = in.flag();
    r.deleteOnRelease = in.flag();
    r.justification = in.str();
  }
  for (uint32_t k = 0, m = in.count(); k < m; ++k) e.desired.files.push_back(in.str());
  e.desired.digest = in.str();
  for (uint32_t k = 0, m = in.count(); k < m; ++k) {
    SourceLoc loc = in.loc();
    std::string message = in.str();
    e.warnings.push_back(Diagnostic{Severity::Warning, std::move(loc), std::move(message), in.str()});
  }
  if (!in.atEnd()) throw Damaged{};
}

}  // namespace

std::string encode(const std::string& key, const DesiredState& d, const std::vector<Diagnostic>& warnings) {
  Json targets = Json::array();
  for (const auto& t : d.targets) {
    Json j = toJson(t);
    j["loc"] = locJson(t.loc);
    targets.push_back(std::move(j));
  }
  // Two parts: the Targets first (small, so a reader can start observing them at once), then the rest.
  auto head = Json::to_msgpack(Json{{"format", kFormat}, {"key", key}, {"targets", std::move(targets)}});
  std::string out;
  const uint32_t n = static_cast<uint32_t>(head.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(head.begin(), head.end());
  out += encodeBody(d, warnings);
  return out;
}

static std::optional<Entry> decodeOrThrow(const std::string& bytes,
                                          const std::function<void(const std::vector<Target>&)>& onTargets);

std::optional<Entry> decode(const std::string& bytes, const std::function<void(const std::vector<Target>&)>& onTargets) {
  // Any entry that is not exactly what encode() wrote is a miss, never an error.
  try {
    return decodeOrThrow(bytes, onTargets);
  } catch (const Damaged&) {
    return std::nullopt;
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
  Reader body(bytes.data() + 4 + n, bytes.data() + bytes.size());
  decodeBody(body, e);
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
