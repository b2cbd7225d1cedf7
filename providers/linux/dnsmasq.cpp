#include "providers/linux/dnsmasq.h"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/netaddr.h"
#include "base/netns.h"
#include "providers/linux/session.h"

extern char** environ;

namespace vnetplan::lnx {

namespace fs = std::filesystem;

namespace {

std::string runDir() {
  const char* env = std::getenv("VNETPLAN_RUN_DIR");
  return env && *env ? env : "/run/vnetplan/dnsmasq";
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The pid of the Network's running dnsmasq, or 0: the pid file's process must be a dnsmasq started with this
// directory's config (a recycled pid is someone else).
pid_t runningPid(const std::string& dir) {
  std::string text = readFile(dir + "/dnsmasq.pid");
  if (text.empty() || text.find_first_not_of("0123456789\n") != std::string::npos) return 0;
  pid_t pid = static_cast<pid_t>(std::stol(text));
  if (pid <= 1 || ::kill(pid, 0) != 0) return 0;
  std::string cmdline = readFile("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& c : cmdline)
    if (c == '\0') c = ' ';
  if (cmdline.find("dnsmasq") == std::string::npos || cmdline.find(dir + "/dnsmasq.conf") == std::string::npos) return 0;
  // A zombie (killed, not yet reaped) is not serving.
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') return 0;
  return pid;
}

Status stopPid(pid_t pid) {
  if (!pid) return {};
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (::kill(pid, 0) != 0) return {};
    std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
    auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  return {};
}

// "# vnetplan-dhcp START END" heads the config: observe reads the range back from it.
const char* const kRangeTag = "# vnetplan-dhcp ";

}  // namespace

std::string dnsmasqDir(const std::string& netns, const std::string& network) {
  return runDir() + "/" + (netns.empty() ? "host" : netns) + "/" + network;
}

std::string dnsmasqConfig(const std::string& network, const std::string& bridge, const Attrs& a) {
  const std::string start = a.getString("ipv4.dhcp.start").value_or("");
  const std::string end = a.getString("ipv4.dhcp.end").value_or("");
  const std::string mode = a.getString("mode").value_or("");
  auto addr = parsePrefix(a.getString("ipv4.address").value_or(""));
  std::ostringstream c;
  c << kRangeTag << start << " " << end << "\n";
  c << "# Network " << network << " (mode " << mode << "), written by vnetplan\n";
  // DHCP only: the host's resolver stays the VMs' business (port=0 turns DNS off), so nothing binds port 53.
  c << "port=0\nno-resolv\nno-hosts\nbind-interfaces\nexcept-interface=lo\n";
  c << "interface=" << bridge << "\n";
  c << "user=root\n";  // the lease file lives in a root-owned directory
  c << "dhcp-authoritative\n";
  if (addr) {
    std::string netmask;
    uint32_t bits = addr->prefixLen ? (0xffffffffu << (32 - addr->prefixLen)) : 0;
    netmask = std::to_string(bits >> 24) + "." + std::to_string((bits >> 16) & 255) + "." +
              std::to_string((bits >> 8) & 255) + "." + std::to_string(bits & 255);
    c << "dhcp-range=" << start << "," << end << "," << netmask << ",1h\n";
    // isolated / host-only: the host is no way out, so it is offered as no router.
    if (mode == "nat" || mode == "routed") c << "dhcp-option=option:router," << addr->addressStr() << "\n";
    else c << "dhcp-option=option:router\n";
  }
  return c.str();
}

Status startDnsmasq(LinuxSession& s, const std::string& network, const std::string& config) {
  const std::string dir = dnsmasqDir(s.netns(), network);
  const std::string what = "start dnsmasq of network " + network;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return s.failure(what, "cannot create " + dir + ": " + ec.message());
  const std::string conf = dir + "/dnsmasq.conf";
  pid_t pid = runningPid(dir);
  if (pid && readFile(conf) == config) return {};
  if (Status st = stopPid(pid); !st.ok()) return st;
  {
    std::ofstream out(conf + ".new", std::ios::trunc);
    out << config;
    if (!out) return s.failure(what, "cannot write " + conf);
  }
  fs::rename(conf + ".new", conf, ec);
  if (ec) return s.failure(what, "cannot write " + conf + ": " + ec.message());
  fs::remove(dir + "/dnsmasq.pid", ec);
  const std::string confArg = "--conf-file=" + conf;
  const std::string pidArg = "--pid-file=" + dir + "/dnsmasq.pid";
  const std::string leaseArg = "--dhcp-leasefile=" + dir + "/leases";
  const std::string logArg = "--log-facility=" + dir + "/dnsmasq.log";
  std::string spawnError;
  // The child is made from the thread that entered the namespace: it (and the daemon it forks) lives there.
  Status st = runInNetns(s.nsFd(), [&]() -> Status {
    const char* argv[] = {"dnsmasq", confArg.c_str(), pidArg.c_str(), leaseArg.c_str(), logArg.c_str(), nullptr};
    pid_t child = 0;
    int rc = posix_spawnp(&child, "dnsmasq", nullptr, nullptr, const_cast<char* const*>(argv), environ);
    if (rc != 0) return err(std::string("cannot run dnsmasq: ") + std::strerror(rc) + " (is dnsmasq-base installed?)");
    int status = 0;
    // dnsmasq forks its daemon and the first process exits once the daemon is set up (or failed).
    if (::waitpid(child, &status, 0) < 0) return err(std::string("waitpid: ") + std::strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return err("dnsmasq exited with status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                 " (see " + dir + "/dnsmasq.log)");
    return {};
  });
  if (!st.ok()) return s.failure(what, st.error().message);
  for (int i = 0; i < 100 && !runningPid(dir); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!runningPid(dir)) return s.failure(what, "dnsmasq did not stay up (see " + dir + "/dnsmasq.log)");
  return {};
}

Status stopDnsmasq(LinuxSession& s, const std::string& network) {
  const std::string dir = dnsmasqDir(s.netns(), network);
  if (!fs::exists(dir)) return {};
  if (Status st = stopPid(runningPid(dir)); !st.ok()) return st;
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return s.failure("stop dnsmasq of network " + network, "cannot remove " + dir + ": " + ec.message());
  fs::remove(fs::path(dir).parent_path(), ec);  // the namespace's directory, once its last Network is gone
  return {};
}

void observeDnsmasq(LinuxSession& s, const std::string& network, Attrs& a) {
  const std::string dir = dnsmasqDir(s.netns(), network);
  std::string conf = readFile(dir + "/dnsmasq.conf");
  if (conf.rfind(kRangeTag, 0) != 0) return;
  std::istringstream line(conf.substr(std::strlen(kRangeTag), conf.find('\n') - std::strlen(kRangeTag)));
  std::string start, end;
  line >> start >> end;
  if (!start.empty()) a.set("ipv4.dhcp.start", start);
  if (!end.empty()) a.set("ipv4.dhcp.end", end);
  a.set("status.dhcp", runningPid(dir) ? "running" : "dead");
}

}  // namespace vnetplan::lnx
