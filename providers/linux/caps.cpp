#include "providers/linux/caps.h"

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include <spdlog/spdlog.h>

#include <fcntl.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <chrono>
#include <mutex>
#include <thread>

#include "base/cachedir.h"
#include "base/fd.h"
#include "base/fileio.h"
#include "base/netlink.h"

namespace vnetplan::lnx {

namespace {

// The kernel's answers when it has no driver or option (rtnetlink loads a module on demand where one exists).
Cap answer(const NlOutcome& o) {
  if (o.ok()) return Cap::Yes;
  if (o.errnum == EOPNOTSUPP || o.errnum == ENODEV || o.errnum == EAFNOSUPPORT || o.errnum == ENOENT ||
      o.errnum == EINVAL)
    return Cap::No;
  return Cap::Unknown;
}

NlOutcome create(NlSocket& sock, const char* name, const char* kind, int link, int vlanId, bool vlanFiltering,
                 const char* peer) {
  NlMsg m = newMsg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 || nla_put_string(m.get(), IFLA_IFNAME, name) < 0)
    return {ENOMEM, "out of memory"};
  if (link > 0 && nla_put_u32(m.get(), IFLA_LINK, static_cast<uint32_t>(link)) < 0) return {ENOMEM, "out of memory"};
  nlattr* info = nla_nest_start(m.get(), IFLA_LINKINFO);
  if (!info || nla_put_string(m.get(), IFLA_INFO_KIND, kind) < 0) return {ENOMEM, "out of memory"};
  if (vlanId > 0 || vlanFiltering || peer) {
    nlattr* data = nla_nest_start(m.get(), IFLA_INFO_DATA);
    if (!data) return {ENOMEM, "out of memory"};
    if (vlanId > 0 && nla_put_u16(m.get(), IFLA_VLAN_ID, static_cast<uint16_t>(vlanId)) < 0) return {ENOMEM, "out of memory"};
    if (vlanFiltering && nla_put_u8(m.get(), IFLA_BR_VLAN_FILTERING, 1) < 0) return {ENOMEM, "out of memory"};
    if (peer) {
      nlattr* p = nla_nest_start(m.get(), 1 /* VETH_INFO_PEER */);
      ifinfomsg pi{};
      if (!p || nlmsg_append(m.get(), &pi, sizeof pi, NLMSG_ALIGNTO) < 0 || nla_put_string(m.get(), IFLA_IFNAME, peer) < 0)
        return {ENOMEM, "out of memory"};
      nla_nest_end(m.get(), p);
    }
    nla_nest_end(m.get(), data);
  }
  nla_nest_end(m.get(), info);
  return sock.request(m.get());
}

KernelCaps probe() {
  const auto started = std::chrono::steady_clock::now();
  KernelCaps c;
  utsname u{};
  if (::uname(&u) == 0) c.release = u.release;
  std::thread t([&] {
    // This thread alone moves into a fresh namespace; it (and with it the namespace) is gone when the probe ends.
    if (::unshare(CLONE_NEWNET) != 0) {
      c.unknownWhy = std::string("cannot make a private network namespace to probe the kernel: ") + errnoText(errno);
      return;
    }
    auto sock = NlSocket::open();
    if (!sock.ok()) {
      c.unknownWhy = sock.error().message;
      return;
    }
    c.vlanFiltering = answer(create(**sock, "vnpprobe-br", "bridge", 0, 0, true, nullptr));
    NlOutcome veth = create(**sock, "vnpprobe-v0", "veth", 0, 0, false, "vnpprobe-v1");
    if (veth.ok()) {
      int index = static_cast<int>(::if_nametoindex("vnpprobe-v0"));
      c.vlanDevices = index > 0 ? answer(create(**sock, "vnpprobe-vl", "vlan", index, 10, false, nullptr)) : Cap::Unknown;
    }
    c.bonding = answer(create(**sock, "vnpprobe-bd", "bond", 0, 0, false, nullptr));
  });
  t.join();
  spdlog::debug("linux: kernel probe took {:.1f} ms",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
  return c;
}

std::string bootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id.size() == 36 && id.find_first_not_of("0123456789abcdef-") == std::string::npos ? id : "";
}

// A probe that found everything is kept for the rest of the boot (a kernel does not lose a driver it has loaded;
// /run is a tmpfs and the boot id is checked too). A missing feature is asked of the kernel every time: a module
// installed since then would bring it.
constexpr const char* kCacheFile = "/run/vnetplan/kernel-caps";

std::string cacheLine(const std::string& boot, const std::string& release) {
  return "vnetplan-kernel-caps 1 " + boot + " " + release + " vlan-filtering 8021q bonding\n";
}

std::optional<KernelCaps> cached() {
  const std::string boot = bootId();
  utsname u{};
  if (boot.empty() || cachedir::off() || ::uname(&u) != 0) return std::nullopt;
  auto fd = openRegularForRead(AT_FDCWD, kCacheFile);
  if (!fd.ok()) return std::nullopt;
  UniqueFd owned(*fd);
  auto text = readAll(owned.get());
  if (!text.ok() || *text != cacheLine(boot, u.release)) return std::nullopt;
  KernelCaps c;
  c.release = u.release;
  c.vlanFiltering = c.vlanDevices = c.bonding = Cap::Yes;
  return c;
}

void remember(const KernelCaps& c) {
  const std::string boot = bootId();
  if (boot.empty() || cachedir::off() || c.vlanFiltering != Cap::Yes || c.vlanDevices != Cap::Yes || c.bonding != Cap::Yes)
    return;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(kCacheFile).parent_path(), ec);
  if (Status st = atomicWriteFile(kCacheFile, cacheLine(boot, c.release), 0644); !st.ok())
    spdlog::debug("linux: cannot keep the kernel probe's answers in {}: {}", kCacheFile, st.error().message);
}

}  // namespace

const KernelCaps& kernelCaps() {
  static std::once_flag once;
  static KernelCaps caps;
  std::call_once(once, [] {
    if (auto c = cached()) {
      caps = *c;
      return;
    }
    caps = probe();
    remember(caps);
  });
  return caps;
}

std::string lacks(const KernelCaps& caps, const std::string& feature) {
  return "this kernel (" + caps.release + ") has no " + feature;
}

}  // namespace vnetplan::lnx
