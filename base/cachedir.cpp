#include "base/cachedir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "base/fd.h"
#include "base/fileio.h"

namespace vnetplan::cachedir {

namespace fs = std::filesystem;

bool off() {
  const char* v = std::getenv("VNETPLAN_CACHE");
  return v && (std::string(v) == "off" || std::string(v) == "0");
}

std::string directory() {
  if (off()) return "";
  if (const char* d = std::getenv("VNETPLAN_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/vnetplan";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/vnetplan";
  return "";
}

std::string binaryIdentity() {
  struct stat st {};
  if (::stat("/proc/self/exe", &st) != 0) return "";
  return std::string(VNETPLAN_VERSION) + "|" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

namespace {

// The directory, opened without following a symlink (a planted link could point anywhere), and only if it is ours
// and nobody else can write to it. Created 0700 when missing.
UniqueFd openDir(const std::string& dir, bool create) {
  if (dir.empty()) return UniqueFd();
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

}  // namespace

std::optional<std::string> read(const std::string& name, size_t maxBytes) {
  UniqueFd dirfd = openDir(directory(), false);
  if (!dirfd) return std::nullopt;
  auto opened = openRegularForRead(dirfd.get(), name);
  if (!opened) return std::nullopt;
  UniqueFd fd(*opened);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022) != 0 ||
      static_cast<size_t>(st.st_size) > maxBytes)
    return std::nullopt;
  auto bytes = readAll(fd.get());
  if (!bytes) return std::nullopt;
  return std::move(*bytes);
}

void touch(const std::string& name) {
  UniqueFd dirfd = openDir(directory(), false);
  if (dirfd) ::utimensat(dirfd.get(), name.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
}

void write(const std::string& name, const std::string& bytes, const std::string& suffix, size_t keep) {
  const std::string dir = directory();
  UniqueFd dirfd = openDir(dir, true);
  if (!dirfd) return;
  removeStaleTemps(dirfd.get());
  if (!atomicWriteAt(dirfd.get(), name, bytes)) return;
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, fs::path>> entries;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    if (f.size() > suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
      entries.emplace_back(e.last_write_time(ec), e.path());
  }
  if (entries.size() <= keep) return;
  std::sort(entries.begin(), entries.end());
  for (size_t i = 0; i + keep < entries.size(); ++i) fs::remove(entries[i].second, ec);
}

}  // namespace vnetplan::cachedir
