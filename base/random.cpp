#include "base/random.h"

#include <sys/random.h>

#include <cerrno>
#include <random>
#include <vector>

namespace vnetplan {

std::string randomHex(size_t bytes) {
  static const char* hex = "0123456789abcdef";
  std::vector<unsigned char> buf(bytes);
  size_t off = 0;
  while (off < bytes) {
    ssize_t n = ::getrandom(buf.data() + off, bytes - off, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  if (off < bytes) {
    std::random_device rd;
    for (size_t i = off; i < bytes; ++i) buf[i] = static_cast<unsigned char>(rd());
  }
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : buf) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 0xF]);
  }
  return out;
}

}  // namespace vnetplan
