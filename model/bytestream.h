// A flat byte stream for caches of decoded values (the front end's resources, decoded state files): decoding one
// is a walk over bytes, where msgpack or JSON would build a tree and free it again.
//   u32/i64 little-endian; strings as u32 length + bytes; file names once, in a table, locations as (file index,
//   line, col); values tagged (null, bool, int, string, or msgpack for the rest).
// A Reader throws Damaged on anything that is not what a Writer wrote; callers treat that as a cache miss.
#pragma once
#include <cstdint>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "model/diag.h"
#include "model/model.h"

namespace vnetplan::bytestream {

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

struct Damaged {};  // thrown by Reader: the bytes are not what a Writer wrote

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

// Runs a decoder; anything that is not what a Writer wrote (Damaged, or a library's exception on bad bytes) is a
// miss, never an error.
template <typename F>
auto orMiss(F&& decode) -> decltype(decode()) {
  try {
    return decode();
  } catch (const Damaged&) {
    return {};
  } catch (const std::exception&) {
    return {};
  }
}

// Attrs as (count, (path, value)...).
void writeAttrs(Writer& w, const Attrs& a);
Attrs readAttrs(Reader& in);

}  // namespace vnetplan::bytestream
