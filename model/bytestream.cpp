#include "model/bytestream.h"

namespace vnetplan::bytestream {

void writeAttrs(Writer& w, const Attrs& a) {
  w.u32(static_cast<uint32_t>(a.values().size()));
  for (const auto& [path, v] : a.values()) {
    w.str(path);
    w.value(v);
  }
}

Attrs readAttrs(Reader& in) {
  // Written in key order: each one goes at the end, without a search. Out of order is not what a Writer wrote.
  Attrs::Map m;
  for (uint32_t k = 0, n = in.count(); k < n; ++k) {
    std::string path = in.str();
    if (!m.empty() && !(std::prev(m.end())->first < path)) throw Damaged{};
    m.emplace_hint(m.end(), std::move(path), in.value());
  }
  return Attrs::fromMap(std::move(m));
}

}  // namespace vnetplan::bytestream
