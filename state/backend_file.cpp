// The file:// state backend (the table of backends by URL scheme is state/backends.cpp).
//
// Layout under DIR (created 0700 on first write; files 0600):
//   <key components, each percent-encoded>      documents, e.g. targets/hv01/state.json
//   .locks/<encoded lock name>.lock              flock()ed while a lock is held; never unlinked
//   .locks/<encoded lock name>.json              LockInfo of the current (or a dead) holder
//   .tmp.*                                       in-flight atomic writes (skipped by list())
//
// Keys are '/'-separated; a component may hold any byte except '/' and NUL, but never "." or "..", and keys
// are never absolute. Each component is percent-encoded into a file name (everything outside [A-Za-z0-9._-]
// and a leading '.'), so an encoded name never starts with '.' and can never collide with the internal
// entries above, and hostile names cannot escape DIR. Every directory is walked with openat(O_NOFOLLOW), so
// a symlink planted inside DIR is refused rather than followed.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <thread>
#include <utility>

#include "base/fd.h"
#include "base/fileio.h"
#include "base/sha256.h"
#include "model/codec.h"
#include "state/lock_record.h"
#include "state/percent.h"
#include "state/backends.h"
#include "state/store.h"

namespace vnetplan::state {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLockDir = ".locks";
constexpr size_t kMaxNameBytes = kFileBackendMaxNameBytes;

using Fd = UniqueFd;

// A lock file (created if `create`), opened without blocking on a FIFO planted in its place and refused unless it
// is a regular file: invalid (errno set) otherwise.
Fd openLockFile(int dirfd, const std::string& name, bool create) {
  int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (create ? O_CREAT : 0);
  Fd fd(::openat(dirfd, name.c_str(), flags, 0600));
  if (!fd.valid()) return fd;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    errno = EINVAL;
    return Fd();
  }
  return fd;
}

// ---- names ---------------------------------------------------------------------------------------------

bool safeChar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.';
}

// A file-name byte: [A-Za-z0-9._-], never a leading '.' (names never collide with .locks/ and .tmp.*).
bool keepInFileName(unsigned char c, size_t i) { return safeChar(c) && !(i == 0 && c == '.'); }

std::string encodeName(const std::string& raw) { return percentEncode(raw, keepInFileName); }

// Decodes a file name made by encodeName; nullopt for anything encodeName would not have produced.
std::optional<std::string> decodeName(const std::string& enc) { return percentDecode(enc, keepInFileName); }

Result<std::string> encodeComponent(const std::string& comp, const std::string& key) {
  if (comp.empty()) return err("invalid state key '" + key + "': empty path component");
  if (comp == "." || comp == "..") return err("invalid state key '" + key + "': '" + comp + "' component");
  std::string enc = encodeName(comp);
  if (enc.size() > kMaxNameBytes)
    return err("invalid state key: component is too long (" + std::to_string(enc.size()) +
               " bytes once encoded for the file system, limit " + std::to_string(kMaxNameBytes) + ")");
  return enc;
}

// Splits and encodes a key into file-name components; refuses anything that could leave DIR.
Result<std::vector<std::string>> keyPath(const std::string& key) {
  if (key.empty()) return err("invalid state key: empty");
  if (key.find('\0') != std::string::npos) return err("invalid state key: contains a NUL byte");
  if (key.front() == '/') return err("invalid state key '" + key + "': absolute");
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    std::string comp = key.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    auto enc = encodeComponent(comp, key);
    if (!enc) return enc.error();
    out.push_back(std::move(*enc));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

// ---- low-level file operations -------------------------------------------------------------------------

// ---- the backend ---------------------------------------------------------------------------------------

// Holds the flock on .locks/<name>.lock and owns .locks/<name>.json. Independent of the backend object, so
// it may outlive the Store that made it.
class FileLock : public Lock {
 public:
  FileLock(Fd lockDir, Fd lockFd, std::string infoName, LockInfo info)
      : dir_(std::move(lockDir)),
        fd_(std::move(lockFd)),
        infoName_(std::move(infoName)),
        info_(std::move(info)) {}
  ~FileLock() override {
    // Remove our record while still holding the flock (nobody else can have replaced it, but check the id
    // anyway), then release the flock by closing the descriptor.
    auto opened = openRegularForRead(dir_.get(), infoName_);
    Fd rec(opened ? *opened : -1);
    if (rec.valid()) {
      auto bytes = readAll(rec.get());
      std::optional<LockInfo> cur;
      if (bytes) cur = lockInfoFromJson(*bytes);
      if (cur && cur->id == info_.id && ::unlinkat(dir_.get(), infoName_.c_str(), 0) == 0)
        ::fsync(dir_.get());
    }
    fd_.reset();
  }
  const LockInfo& info() const override { return info_; }

 private:
  Fd dir_;
  Fd fd_;
  std::string infoName_;
  LockInfo info_;
};

class FileBackend : public Backend {
 public:
  FileBackend(std::string url, fs::path root) : url_(std::move(url)), root_(std::move(root)) {}

  std::string url() const override { return url_; }

  Result<std::optional<std::string>> read(const std::string& key) override {
    auto comps = keyPath(key);
    if (!comps) return comps.error();
    auto dir = openDir(dirsOf(*comps), false);
    if (!dir) return dir.error();
    if (!dir->valid()) return std::optional<std::string>();
    return readAt(dir->get(), comps->back(), key);
  }

  Status write(const std::string& key, const std::string& bytes) override {
    auto comps = keyPath(key);
    if (!comps) return comps.error();
    auto dir = openDir(dirsOf(*comps), true);
    if (!dir) return dir.error();
    return writeAt(dir->get(), comps->back(), bytes, key);
  }

  Status remove(const std::string& key) override {
    auto comps = keyPath(key);
    if (!comps) return comps.error();
    auto dir = openDir(dirsOf(*comps), false);
    if (!dir) return dir.error();
    if (!dir->valid()) return {};
    return removeAt(dir->get(), comps->back(), key);
  }

  Result<std::vector<std::string>> list(const std::string& prefix) override {
    if (prefix.find('\0') != std::string::npos) return err("invalid state key prefix: contains a NUL byte");
    if (!prefix.empty() && prefix.front() == '/')
      return err("invalid state key prefix '" + prefix + "': absolute");
    // Walk the deepest directory the prefix names in full, then filter by the whole prefix.
    size_t slash = prefix.rfind('/');
    std::string dirKey = slash == std::string::npos ? "" : prefix.substr(0, slash);
    std::vector<std::string> dirs;
    if (!dirKey.empty()) {
      auto comps = keyPath(dirKey);
      if (!comps) return comps.error();
      dirs = std::move(*comps);
    }
    auto dir = openDir(dirs, false);
    if (!dir) return dir.error();
    std::vector<std::string> keys;
    if (dir->valid()) {
      std::string base = dirKey.empty() ? "" : dirKey + "/";
      auto st = walk(dir->get(), base, keys);
      if (!st) return st.error();
    }
    std::vector<std::string> out;
    for (auto& k : keys)
      if (k.compare(0, prefix.size(), prefix) == 0) out.push_back(std::move(k));
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::unique_ptr<Lock>> lock(const LockInfo& requested, std::chrono::milliseconds wait) override {
    if (requested.name.empty()) return err("internal error: lock without a name");
    LockInfo info = completeLockInfo(requested);
    auto names = lockNames(info.name);
    if (!names) return names.error();
    auto dir = openDir({kLockDir}, true);
    if (!dir) return dir.error();
    Fd fd = openLockFile(dir->get(), names->first, true);
    if (!fd.valid())
      return err("cannot open lock file " + displayPath(std::string(kLockDir) + "/" + names->first) + ": " +
                 (errno == EINVAL ? std::string("not a regular file") : errnoText(errno)));

    wait = std::clamp<std::chrono::milliseconds>(wait, std::chrono::milliseconds(0),
                                                 std::chrono::hours(24 * 365));
    auto deadline = std::chrono::steady_clock::now() + wait;
    auto pause = std::chrono::milliseconds(10);
    while (true) {
      if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) break;
      if (errno != EWOULDBLOCK && errno != EINTR)
        return err("cannot lock " + info.name + ": " + errnoText(errno));
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return lockedError(dir->get(), names->second, info.name);
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, std::chrono::milliseconds(100));
    }
    // We hold the flock: any existing record belongs to a dead holder (or to a removed one); replace it.
    auto st = writeAt(dir->get(), names->second,
                      lockInfoToJson(info).dump(2, ' ', false, Json::error_handler_t::replace) + "\n",
                      std::string(kLockDir) + "/" + names->second);
    if (!st) return st.error();  // fd closes: flock released
    return std::unique_ptr<Lock>(new FileLock(std::move(*dir), std::move(fd), names->second, info));
  }

  Result<std::vector<LockStatus>> locks() override {
    auto dir = openDir({kLockDir}, false);
    if (!dir) return dir.error();
    std::vector<LockStatus> out;
    if (!dir->valid()) return out;
    auto names = entries(dir->get());
    if (!names) return names.error();
    for (const auto& n : *names) {
      if (!isLockRecord(n)) continue;
      auto bytes = readAt(dir->get(), n, std::string(kLockDir) + "/" + n);
      if (!bytes) return bytes.error();
      if (!bytes->has_value()) continue;  // released meanwhile
      LockStatus s;
      auto info = lockInfoFromJson(**bytes);
      if (!info) {
        // A record we cannot read (torn by a crash between flock and write, or edited): still report it.
        s.info.id = "";
        s.info.name = n.substr(0, n.size() - 5);
      } else {
        s.info = *info;
      }
      s.held = probeHeld(dir->get(), n.substr(0, n.size() - 5) + ".lock");
      out.push_back(std::move(s));
    }
    std::sort(out.begin(), out.end(),
              [](const LockStatus& a, const LockStatus& b) { return a.info.name < b.info.name; });
    return out;
  }

  Status unlock(const std::string& lockId) override {
    if (lockId.empty()) return err("no lock id given");
    auto dir = openDir({kLockDir}, false);
    if (!dir) return dir.error();
    if (dir->valid()) {
      auto names = entries(dir->get());
      if (!names) return names.error();
      for (const auto& n : *names) {
        if (!isLockRecord(n)) continue;
        auto bytes = readAt(dir->get(), n, std::string(kLockDir) + "/" + n);
        if (!bytes) return bytes.error();
        if (!bytes->has_value()) continue;
        auto info = lockInfoFromJson(**bytes);
        if (!info || info->id != lockId) continue;
        std::string lockName = n.substr(0, n.size() - 5) + ".lock";
        // Take the lock ourselves so that nobody acquires it while we remove the record.
        Fd fd = openLockFile(dir->get(), lockName, false);
        if (fd.valid() && ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
          return err("lock " + lockId + " (" + info->name + ") is held by a live process: " + info->owner +
                     " (pid " + std::to_string(info->pid) + ", operation " + info->operation + ", since " +
                     info->created + "); refusing to remove it — wait for that process to finish or stop it");
        }
        // Re-read under the flock: the record may have been replaced by a new holder in between.
        auto again = readAt(dir->get(), n, std::string(kLockDir) + "/" + n);
        if (!again) return again.error();
        if (!again->has_value()) return {};
        auto info2 = lockInfoFromJson(**again);
        if (!info2 || info2->id != lockId)
          return err("lock " + lockId + " was replaced by a new holder meanwhile");
        return removeAt(dir->get(), n, std::string(kLockDir) + "/" + n);
      }
    }
    return err("no lock with id " + lockId + " (see 'vnetplan state list')");
  }

 private:
  // A lock's holder record ("<encoded name>.json"), as opposed to its flock file or a temp file.
  static bool isLockRecord(const std::string& n) {
    return !n.empty() && n[0] != '.' && n.size() >= 5 && n.compare(n.size() - 5, 5, ".json") == 0;
  }

  static std::vector<std::string> dirsOf(const std::vector<std::string>& comps) {
    return {comps.begin(), comps.end() - 1};
  }

  std::string displayPath(const std::string& rel) const { return (root_ / rel).string(); }

  // (lock file name, info file name) for a lock name such as "target/hv01".
  static Result<std::pair<std::string, std::string>> lockNames(const std::string& name) {
    if (name.find('\0') != std::string::npos) return err("invalid lock name: contains a NUL byte");
    if (name.empty()) return err("invalid lock name: empty");
    std::string enc = encodeName(name);  // '/' is encoded too: one file per lock
    // Lock files are found by their records, never by decoding their names, so a name too long for the
    // file system may be shortened: a prefix plus a digest, marked by '~' (which encodeName never emits).
    if (enc.size() + 5 > kMaxNameBytes) enc = enc.substr(0, 150) + "~" + sha256Hex(name).substr(0, 40);
    return std::make_pair(enc + ".lock", enc + ".json");
  }

  // Opens DIR/<dirs...> (each an encoded name), refusing symlinks. With create, makes what is missing
  // (0700) and fsyncs each parent so the new entries are durable. Without create, a missing directory
  // yields an invalid Fd (not an error).
  Result<Fd> openDir(const std::vector<std::string>& dirs, bool create) {
    Fd cur(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cur.valid()) {
      if (errno == ENOENT && !create) return Fd();
      if (errno != ENOENT)
        return err("cannot open state directory " + root_.string() + ": " + errnoText(errno));
      std::error_code ec;
      if (root_.has_parent_path()) fs::create_directories(root_.parent_path(), ec);
      if (ec) return err("cannot create " + root_.parent_path().string() + ": " + ec.message());
      if (::mkdir(root_.c_str(), 0700) != 0 && errno != EEXIST)
        return err("cannot create state directory " + root_.string() + ": " + errnoText(errno));
      if (root_.has_parent_path()) fsyncPath(root_.parent_path());
      cur = Fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!cur.valid()) return err("cannot open state directory " + root_.string() + ": " + errnoText(errno));
    }
    std::string rel;
    for (const auto& d : dirs) {
      rel += (rel.empty() ? "" : "/") + d;
      Fd next(::openat(cur.get(), d.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next.valid() && errno == ENOENT) {
        if (!create) return Fd();
        if (::mkdirat(cur.get(), d.c_str(), 0700) != 0 && errno != EEXIST)
          return err("cannot create " + displayPath(rel) + ": " + errnoText(errno));
        ::fsync(cur.get());
        next = Fd(::openat(cur.get(), d.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      }
      if (!next.valid()) {
        if (errno == ELOOP || errno == ENOTDIR)
          return err("refusing to use " + displayPath(rel) + ": not a directory (or a symlink)");
        return err("cannot open " + displayPath(rel) + ": " + errnoText(errno));
      }
      cur = std::move(next);
    }
    return cur;
  }

  static void fsyncPath(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }

  Result<std::optional<std::string>> readAt(int dirfd, const std::string& name, const std::string& key) {
    // Never through a symlink, and never blocking on a FIFO or device planted in place of a document.
    auto opened = openRegularForRead(dirfd, name);
    if (!opened) {
      if (opened.error().sysErrno == ENOENT) return std::optional<std::string>();
      if (opened.error().message.find("symbolic link") != std::string::npos)
        return err("refusing to follow symlink " + displayPath(key));
      return err("cannot read " + displayPath(key) + ": " + opened.error().message);
    }
    Fd fd(*opened);
    auto bytes = readAll(fd.get());
    if (!bytes) return err("cannot read " + displayPath(key) + ": " + bytes.error().message);
    return std::optional<std::string>(std::move(*bytes));
  }

  // Atomic + durable: temp file in the same directory, fsync, rename over, fsync the directory.
  Status writeAt(int dirfd, const std::string& name, const std::string& bytes, const std::string& key) {
    removeStaleTemps(dirfd);  // what writers that were killed mid-write left behind
    if (Status st = atomicWriteAt(dirfd, name, bytes); !st)
      return err("cannot write " + displayPath(key) + ": " + st.error().message);
    return {};
  }

  Status removeAt(int dirfd, const std::string& name, const std::string& key) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0) {
      if (errno == ENOENT) return {};
      return err("cannot remove " + displayPath(key) + ": " + errnoText(errno));
    }
    ::fsync(dirfd);
    return {};
  }

  static Result<std::vector<std::string>> entries(int dirfd) {
    int dupFd = ::dup(dirfd);
    if (dupFd < 0) return err(errnoText(errno));
    DIR* d = ::fdopendir(dupFd);
    if (!d) {
      ::close(dupFd);
      return err(errnoText(errno));
    }
    ::rewinddir(d);
    std::vector<std::string> out;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      out.push_back(std::move(n));
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
  }

  // Collects every document key below dirfd (whose key prefix is `base`); skips internal and foreign names.
  Status walk(int dirfd, const std::string& base, std::vector<std::string>& out) {
    auto names = entries(dirfd);
    if (!names) return err("cannot list " + displayPath(base) + ": " + names.error().message);
    for (const auto& n : *names) {
      if (n[0] == '.') continue;  // .locks, .tmp.*
      auto raw = decodeName(n);
      if (!raw) continue;  // not a name we made
      struct stat st {};
      if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        Fd sub(::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub.valid()) return err("cannot list " + displayPath(base + n) + ": " + errnoText(errno));
        auto s = walk(sub.get(), base + *raw + "/", out);
        if (!s) return s;
      } else if (S_ISREG(st.st_mode)) {
        out.push_back(base + *raw);
      }
    }
    return {};
  }

  static bool probeHeld(int dirfd, const std::string& lockName) {
    Fd fd = openLockFile(dirfd, lockName, false);
    if (!fd.valid()) return false;
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;  // released when fd closes
    return errno == EWOULDBLOCK;
  }

  Error lockedError(int dirfd, const std::string& infoName, const std::string& lockName) {
    auto bytes = readAt(dirfd, infoName, std::string(kLockDir) + "/" + infoName);
    std::optional<LockInfo> holder;
    if (bytes && bytes->has_value()) holder = lockInfoFromJson(**bytes);
    if (!holder)
      return err(lockName + ": state is locked by another process that has not recorded itself yet (" +
                 displayPath(std::string(kLockDir) + "/" + infoName) + "); wait and retry");
    return err(lockName + ": " + describeHolder(*holder) + "; wait, or if that process is gone run 'vnetplan state unlock " +
               holder->id + "'");
  }

  std::string url_;
  fs::path root_;
};

}  // namespace

Result<std::unique_ptr<Backend>> openFileBackend(const std::string& url, const std::string& rest) {
  if (rest.empty())
    return err("state backend URL '" + url + "' names no directory (use file://DIR, e.g. file://.vnetplan)");
  if (rest.find('\0') != std::string::npos) return err("state backend URL contains a NUL byte");
  fs::path dir = rest;  // "file:///abs" gives "/abs"; "file://.vnetplan" is relative to the working directory
  std::error_code ec;
  fs::path abs = fs::absolute(dir, ec);
  if (ec) return err("state backend URL '" + url + "': " + ec.message());
  abs = abs.lexically_normal();
  if (!abs.has_filename() && abs != abs.root_path()) abs = abs.parent_path();  // drop a trailing '/'
  struct stat st {};
  if (::stat(abs.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    return err("state backend URL '" + url + "': " + abs.string() + " exists and is not a directory");
  return std::unique_ptr<Backend>(new FileBackend(url, abs));
}


std::string nowRfc3339() {
  std::time_t t = std::time(nullptr);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

size_t fileBackendNameBytes(const std::string& component) { return encodeName(component).size(); }

}  // namespace vnetplan::state
