#include "base/fileio.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <vector>

#include "base/fd.h"
#include "base/random.h"

namespace vnetplan {

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

Status atomicWriteAt(int dirfd, const std::string& name, const std::string& bytes, int mode) {
  const std::string tmp = ".tmp." + std::to_string(::getpid()) + "." + randomHex(6);
  UniqueFd fd(::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return err("create " + tmp + ": " + errnoText(errno));
  auto fail = [&](const std::string& what, int e) -> Status {
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return err(what + ": " + errnoText(e));
  };
  if (Status st = writeAll(fd.get(), bytes); !st) {
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return err("write: " + st.error().message);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync", errno);
  if (::close(fd.release()) != 0) return fail("close", errno);
  if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) return fail("rename", errno);
  if (::fsync(dirfd) != 0) return err("fsync of directory: " + errnoText(errno));
  return {};
}

Status atomicWriteFile(const std::string& path, const std::string& bytes, int mode) {
  std::filesystem::path p(path);
  std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  UniqueFd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) return err("open directory " + dir + ": " + errnoText(errno));
  struct stat st {};
  if (::fstatat(dirfd.get(), p.filename().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
    return err(path + " exists and is not a regular file (a symlink, directory or device is never replaced)");
  return atomicWriteAt(dirfd.get(), p.filename().string(), bytes, mode);
}

int removeStaleTemps(int dirfd) {
  int dupFd = ::dup(dirfd);
  if (dupFd < 0) return 0;
  DIR* d = ::fdopendir(dupFd);
  if (!d) {
    ::close(dupFd);
    return 0;
  }
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind(".tmp.", 0) != 0) continue;
    size_t dot = n.find('.', 5);
    if (dot == std::string::npos) continue;
    std::string pidText = n.substr(5, dot - 5);
    if (pidText.empty() || pidText.find_first_not_of("0123456789") != std::string::npos || pidText.size() > 9)
      continue;
    pid_t pid = static_cast<pid_t>(std::stol(pidText));
    if (pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno == EPERM) continue;  // the writer still runs
    stale.push_back(n);
  }
  ::closedir(d);
  int removed = 0;
  for (const auto& n : stale)
    if (::unlinkat(dirfd, n.c_str(), 0) == 0) ++removed;
  return removed;
}

Result<int> openRegularForRead(int dirfd, const std::string& name) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ELOOP) return err("is a symbolic link (refused)");
    return Error{errnoText(e), e};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return err("not a regular file (refused)");
  }
  // Regular file: blocking reads are fine again.
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

}  // namespace vnetplan
