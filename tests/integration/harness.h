// Shared helpers for integration tests: a throwaway network namespace, a temp state dir, running the
// vnetplan binary as a child process, and independent reads of the kernel's state with `ip -j`.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace vnptest {

using Json = nlohmann::json;
namespace fs = std::filesystem;

inline std::string readAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void writeFile(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

struct RunResult {
  int exitCode = -1;  // -1 if killed by a signal
  int signal = 0;
  std::string out, err;
};

inline std::string shellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs a shell command; captures stdout/stderr; kills it after `timeout`.
inline RunResult runShell(const std::string& cmd, const fs::path& scratch, int timeoutSec = 120) {
  RunResult r;
  fs::path out = scratch / "stdout.txt", err = scratch / "stderr.txt";
  pid_t pid = fork();
  if (pid == 0) {
    std::string full = cmd + " >" + out.string() + " 2>" + err.string() + " </dev/null";
    execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSec);
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      r.err = "TIMEOUT after " + std::to_string(timeoutSec) + "s";
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFEXITED(status)) r.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = readAll(out);
  r.err = readAll(err);
  return r;
}

inline bool haveRootAndNetns() {
  if (geteuid() != 0) return false;
  std::string name = "vnp-probe-" + std::to_string(getpid());
  bool ok = std::system(("ip netns add " + name + " 2>/dev/null").c_str()) == 0;
  if (ok) (void)std::system(("ip netns del " + name).c_str());
  return ok;
}

// A network namespace and a scratch directory that live as long as the test.
class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!haveRootAndNetns()) GTEST_SKIP() << "SKIPPED: needs root and network namespaces";
    static int counter = 0;
    ns = "vnp-c-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
    ASSERT_EQ(std::system(("ip netns add " + ns).c_str()), 0);
    dir = fs::temp_directory_path() / ("vnp-test-" + ns);
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override {
    if (ns.empty()) return;
    for (const auto& extra : extraNetns) (void)std::system(("ip netns del " + extra + " 2>/dev/null").c_str());
    (void)std::system(("ip netns del " + ns + " 2>/dev/null").c_str());
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  // vnetplan with this test's state dir.
  RunResult vnetplan(const std::string& args, int timeoutSec = 120) {
    return runShell(std::string(VNETPLAN_BINARY) + " --state file://" + (dir / "state").string() + " " + args, dir,
                    timeoutSec);
  }

  // Writes manifests (NETNS is replaced by this test's namespace) and returns the path.
  std::string manifest(const std::string& yaml, const std::string& name = "net.yaml") {
    std::string text = yaml;
    for (size_t p; (p = text.find("NETNS")) != std::string::npos;) text.replace(p, 5, ns);
    fs::path p = dir / name;
    writeFile(p, text);
    return p.string();
  }

  // Independent view of the namespace: `ip -j -d link show` keyed by ifname.
  std::map<std::string, Json> links() {
    auto r = runShell("ip -n " + ns + " -j -d link show", dir);
    std::map<std::string, Json> out;
    if (r.exitCode != 0) return out;
    for (const auto& l : Json::parse(r.out)) out[l.value("ifname", "")] = l;
    return out;
  }
  std::vector<std::string> addrs(const std::string& ifname) {
    auto r = runShell("ip -n " + ns + " -j addr show dev " + ifname, dir);
    std::vector<std::string> out;
    if (r.exitCode != 0) return out;
    for (const auto& l : Json::parse(r.out))
      for (const auto& a : l.value("addr_info", Json::array()))
        if (a.value("scope", "") != "link")
          out.push_back(a.value("local", "") + "/" + std::to_string(a.value("prefixlen", 0)));
    std::sort(out.begin(), out.end());
    return out;
  }
  void ip(const std::string& args) { ASSERT_EQ(std::system(("ip -n " + ns + " " + args).c_str()), 0) << args; }

  std::string ns;
  fs::path dir;
  std::vector<std::string> extraNetns;
};

}  // namespace vnptest
