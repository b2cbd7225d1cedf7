#include "base/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace vnetplan {


std::string netnsPath(const std::string& name) { return std::string(kNetnsRunDir) + "/" + name; }

bool netnsExists(const std::string& name) {
  struct stat st {};
  return ::lstat(netnsPath(name).c_str(), &st) == 0;
}

Result<UniqueFd> openNetns(const std::string& name, int* errnum) {
  if (errnum) *errnum = 0;
  std::string path = netnsPath(name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int e = errno;
    if (errnum) *errnum = e;
    if (e == ENOENT) return err("netns " + name + " does not exist (" + path + ")");
    return err("cannot open netns " + name + " (" + path + "): " + errnoText(e));
  }
  int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    if (errnum) *errnum = EINVAL;
    return err(path + " is not a network namespace (a stale file from an interrupted `ip netns add`?)");
  }
  return fd;
}

namespace {

// Makes /run/netns a shared mount point so that namespaces mounted below it propagate to every mount
// namespace (what `ip netns add` does).
Status shareRunDir() {
  if (::mkdir(kNetnsRunDir, 0755) != 0 && errno != EEXIST)
    return err(std::string("cannot create ") + kNetnsRunDir + ": " + errnoText(errno));
  bool bound = false;
  while (::mount("", kNetnsRunDir, "none", MS_SHARED | MS_REC, nullptr) != 0) {
    if (errno != EINVAL || bound)
      return err(std::string("cannot make ") + kNetnsRunDir + " a shared mount: " + errnoText(errno));
    // Not a mount point yet: bind it onto itself first.
    if (::mount(kNetnsRunDir, kNetnsRunDir, "none", MS_BIND | MS_REC, nullptr) != 0)
      return err(std::string("cannot bind-mount ") + kNetnsRunDir + ": " + errnoText(errno));
    bound = true;
  }
  return {};
}

}  // namespace

Status createNetns(const std::string& name) {
  if (Status st = shareRunDir(); !st.ok()) return st;
  std::string path = netnsPath(name);
  {
    UniqueFd file(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
    if (!file.valid()) {
      int e = errno;
      return err("cannot create netns " + name + " (" + path + "): " + errnoText(e));
    }
  }
  // unshare() on a dedicated thread: only that thread moves to the new namespace, and it exits afterwards.
  Status st = runInNetns(-1, [&]() -> Status {
    if (::unshare(CLONE_NEWNET) != 0)
      return err("cannot create netns " + name + ": unshare: " + errnoText(errno));
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0)
      return err("cannot create netns " + name + ": bind-mount on " + path + ": " + errnoText(errno));
    return {};
  });
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

Status runInNetns(int nsFd, const std::function<Status()>& fn) {
  Status result;
  std::thread worker([&] {
    if (nsFd >= 0 && ::setns(nsFd, CLONE_NEWNET) != 0) {
      result = err(std::string("cannot enter network namespace: setns: ") + errnoText(errno));
      return;
    }
    result = fn();
  });
  worker.join();
  return result;
}

}  // namespace vnetplan
