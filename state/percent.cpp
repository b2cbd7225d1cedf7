#include "state/percent.h"

namespace vnetplan::state {

std::string percentEncode(const std::string& raw, KeepByte keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (keep(c, i)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

static int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percentDecode(const std::string& enc, KeepByte keep) {
  std::string out;
  for (size_t i = 0; i < enc.size(); ++i) {
    if (enc[i] != '%') {
      out.push_back(enc[i]);
      continue;
    }
    if (i + 2 >= enc.size()) return std::nullopt;
    int hi = hexValue(enc[i + 1]), lo = hexValue(enc[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  if (out.empty() || percentEncode(out, keep) != enc) return std::nullopt;  // canonical form only
  return out;
}

}  // namespace vnetplan::state
