#include "reconciler/frontcache.h"


#include "base/cachedir.h"
#include "base/sha256.h"
#include "model/bytestream.h"
#include "model/codec.h"

namespace vnetplan::frontcache {

namespace {

constexpr int kFormat = 4;  // 3: resources carry fieldLocs; 4: the body is the byte stream of encodeBody()

Json locJson(const SourceLoc& l) { return Json::array({l.file, l.line, l.col}); }
std::optional<SourceLoc> locFrom(const Json& j) {
  if (!j.is_array() || j.size() != 3 || !j[0].is_string() || !j[1].is_number_integer() || !j[2].is_number_integer())
    return std::nullopt;
  return SourceLoc{j[0].get<std::string>(), j[1].get<int>(), j[2].get<int>()};
}

}  // namespace

std::string directory() { return cachedir::directory(); }

std::string keyOf(const std::vector<ManifestSource>& sources) {
  if (directory().empty()) return "";
  std::string id = cachedir::binaryIdentity();
  if (id.empty()) return "";
  std::string all = "vnetplan-frontcache-" + std::to_string(kFormat) + "\n" + id + "\n";
  for (const auto& s : sources) all += s.file + '\0' + std::to_string(s.text.size()) + '\0' + s.text + '\0';
  return sha256Hex(all);
}

// The body (everything but the Targets) is a byte stream (model/bytestream.h) instead of msgpack: decoding msgpack
// into a JSON tree and then into Resources built and freed the whole tree again, most of a cached no-op plan's time.
namespace {

using bytestream::Damaged;
using bytestream::Reader;
using bytestream::Writer;


std::string encodeBody(const DesiredState& d, const std::vector<Diagnostic>& warnings) {
  Writer w;
  w.u32(static_cast<uint32_t>(d.resources.size()));
  for (const auto& r : d.resources) {
    w.str(r.addr.str());
    w.loc(r.loc);
    bytestream::writeAttrs(w, r.attrs);
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
    r.attrs = bytestream::readAttrs(in);
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
  return bytestream::orMiss([&] { return decodeOrThrow(bytes, onTargets); });
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

std::optional<Entry> load(const std::string& key, const std::function<void(const std::vector<Target>&)>& onTargets) {
  if (key.empty()) return std::nullopt;
  const std::string name = key + ".msgpack";
  auto bytes = cachedir::read(name);
  if (!bytes) return std::nullopt;
  auto e = decode(*bytes, onTargets);
  if (e && e->key != key) return std::nullopt;  // an entry saved under another name
  if (e) cachedir::touch(name);                 // recently used: pruned last
  return e;
}

void store(const std::string& key, const DesiredState& desired, const std::vector<Diagnostic>& warnings) {
  if (key.empty()) return;
  cachedir::write(key + ".msgpack", encode(key, desired, warnings), ".msgpack", kMaxEntries);
}

}  // namespace vnetplan::frontcache
