#include "reconciler/fileio.h"

#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace vnetplan {

static std::string errnoText(int e) { return std::error_code(e, std::generic_category()).message(); }

Status writeAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return err(errnoText(errno));
    }
    off += static_cast<size_t>(n);
  }
  return {};
}

Result<std::string> readAll(int fd) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return err(errnoText(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace vnetplan
