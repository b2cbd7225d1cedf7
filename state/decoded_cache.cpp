#include "state/decoded_cache.h"

#include "base/cachedir.h"
#include "base/sha256.h"
#include "model/bytestream.h"

namespace vnetplan::state::decodedcache {

namespace {

constexpr const char* kMagic = "vnetplan-state-decoded-1";
const std::string kSuffix = ".state";

using bytestream::Damaged;
using bytestream::Reader;
using bytestream::Writer;

std::optional<TargetState> decodeOrThrow(const std::string& bytes, const std::string& key) {
  Reader in(bytes.data(), bytes.data() + bytes.size());
  if (in.str() != kMagic || in.str() != key) return std::nullopt;
  TargetState st;
  st.target = in.str();
  st.generation = in.i64();
  st.connection = in.str();
  for (uint32_t i = 0, n = in.count(); i < n; ++i) {
    OwnedObject o;
    o.addr = in.address();
    o.provider = in.str();
    o.lastApplied = bytestream::readAttrs(in);
    o.sinceGeneration = in.i64();
    o.identity.id = in.str();
    o.identity.revision = in.str();
    o.adopted = in.flag();
    if (in.flag()) o.preAdoption = bytestream::readAttrs(in);
    o.deleteOnRelease = in.flag();
    Address addr = o.addr;
    if (!st.owned.emplace(std::move(addr), std::move(o)).second) throw Damaged{};
  }
  if (!in.atEnd()) throw Damaged{};
  return st;
}

}  // namespace

std::string keyOf(const std::string& stateBytes) {
  if (cachedir::directory().empty()) return "";
  const std::string id = cachedir::binaryIdentity();
  if (id.empty()) return "";
  return sha256Hex(std::string(kMagic) + "\n" + id + "\n" + stateBytes);
}

std::string encode(const std::string& key, const TargetState& st) {
  Writer w;
  w.str(kMagic);
  w.str(key);
  w.str(st.target);
  w.i64(st.generation);
  w.str(st.connection);
  w.u32(static_cast<uint32_t>(st.owned.size()));
  for (const auto& [addr, o] : st.owned) {
    w.str(addr.str());
    w.str(o.provider);
    bytestream::writeAttrs(w, o.lastApplied);
    w.i64(o.sinceGeneration);
    w.str(o.identity.id);
    w.str(o.identity.revision);
    w.u8(o.adopted ? 1 : 0);
    w.u8(o.preAdoption ? 1 : 0);
    if (o.preAdoption) bytestream::writeAttrs(w, *o.preAdoption);
    w.u8(o.deleteOnRelease ? 1 : 0);
  }
  return w.finish();
}

std::optional<TargetState> decode(const std::string& bytes, const std::string& key) {
  return bytestream::orMiss([&] { return decodeOrThrow(bytes, key); });
}

std::optional<TargetState> load(const std::string& key, const std::string& target) {
  if (key.empty()) return std::nullopt;
  auto bytes = cachedir::read(key + kSuffix);
  if (!bytes) return std::nullopt;
  auto st = decode(*bytes, key);
  if (!st || st->target != target) return std::nullopt;
  cachedir::touch(key + kSuffix);
  return st;
}

void store(const std::string& key, const TargetState& st) {
  if (key.empty()) return;
  cachedir::write(key + kSuffix, encode(key, st), kSuffix, kMaxEntries);
}

}  // namespace vnetplan::state::decodedcache
