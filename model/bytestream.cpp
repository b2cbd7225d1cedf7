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
  Attrs a;
  for (uint32_t k = 0, m = in.count(); k < m; ++k) {
    std::string path = in.str();
    a.set(path, in.value());
  }
  return a;
}

}  // namespace vnetplan::bytestream
