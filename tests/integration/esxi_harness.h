// Integration tests against the ESXi test peer: a real OpenSSH server on 127.0.0.1 whose `esxcli` is the
// emulator of tests/esxi (started by scripts/esxi-sandbox.sh in the test's scratch directory), read and changed
// independently through the system `ssh` client -- as an admin would -- and through the emulator's state file.
//
//   class MyEsxi : public vnptest::EsxiHostTest {};
//   TEST_F(MyEsxi, X) {
//     ASSERT_EQ(esxcli("network vswitch standard add -v vSwitch1").exitCode, 0);
//     EXPECT_EQ(vswitchState("vSwitch1")["ports"], 128);
//   }
//
// One host is started per test (override hostsAtSetUp() for a fleet, or call startHosts()). No root and no
// network namespace are needed (as root, sshd needs /run/sshd, which the sandbox creates). Without OpenSSH
// installed every test skips with "SKIPPED: openssh-server is not installed".
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace vnptest {

// pids of live processes whose environment names `stateFile` as ESXCLI_STATE (a session's shell and its esxcli).
inline std::vector<std::string> sessionProcesses(const std::string& stateFile) {
  std::vector<std::string> out;
  const std::string want = "ESXCLI_STATE=" + stateFile;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string pid = e.path().filename().string();
    if (!std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
    std::string stat = readAll(e.path() / "stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z') continue;
    std::string env = readAll(e.path() / "environ");
    for (size_t p = 0; p < env.size();) {
      size_t end = env.find('\0', p);
      if (end == std::string::npos) end = env.size();
      if (env.compare(p, end - p, want) == 0) out.push_back(pid);
      p = end + 1;
    }
  }
  return out;
}

// Polls `f` until it holds or `timeout` passes; the last answer counts.
template <class F>
bool eventually(F f, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

// One sandbox: the facts scripts/esxi-sandbox.sh prints.
struct EsxiHost {
  fs::path dir;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string user;
  std::string identityFile;            // client key without a passphrase
  std::string passphraseIdentityFile;  // client key with a passphrase ...
  std::string passphraseFile;          // ... which is in this file (never print it)
  std::string knownHosts;              // "[127.0.0.1]:PORT ssh-ed25519 ..."
  std::string hostKey;                 // the server's public host key
  std::string state;                   // the emulator's state (JSON)
  std::string esxcliLog;               // one JSON line per esxcli invocation
  std::string faults;                  // fault rules (tests/esxi/emulator/hooks.h)
  std::string sshdLog;
  bool started = false;
};

inline std::string esxiSandboxScript() {
  return shellQuote(std::string(VNETPLAN_SOURCE_DIR) + "/scripts/esxi-sandbox.sh");
}

// The emulator binary: the build tells the test binary where it is; ESXCLI_EMULATOR in the environment wins.
inline std::string esxcliEmulatorPath() {
  if (const char* e = std::getenv("ESXCLI_EMULATOR"); e && *e) return e;
#ifdef ESXCLI_EMULATOR
  return ESXCLI_EMULATOR;
#else
  return {};
#endif
}

// KEY=VALUE lines into a map.
inline std::map<std::string, std::string> parseKeyValues(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

class EsxiHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir = fs::temp_directory_path() / ("vnp-esxi-" + std::to_string(getpid()) + "-" + std::to_string(++counter));
    fs::remove_all(dir);
    fs::create_directories(dir);
    if (run(esxiSandboxScript() + " check").exitCode != 0)
      GTEST_SKIP() << "SKIPPED: openssh-server is not installed (run scripts/setup.sh)";
    const std::string emulator = esxcliEmulatorPath();
    ASSERT_FALSE(emulator.empty()) << "the build did not define ESXCLI_EMULATOR";
    ASSERT_EQ(access(emulator.c_str(), X_OK), 0) << "no esxcli emulator at " << emulator;
    if (hostsAtSetUp() > 0) {
      startHosts(static_cast<size_t>(hostsAtSetUp()));
      if (HasFatalFailure()) return;
    }
  }

  void TearDown() override {
    for (auto& h : hosts_) {
      if (!h.started) continue;
      if (HasFailure()) {
        // What sshd refused or what esxcli was asked is usually only in these logs.
        for (const std::string& log : {h.sshdLog, h.esxcliLog})
          if (fs::exists(log))
            std::cerr << "---- last lines of " << log << " ----\n" << run("tail -n 40 " + shellQuote(log)).out;
      }
      RunResult r = run(esxiSandboxScript() + " stop " + shellQuote(h.dir.string()), 60);
      EXPECT_EQ(r.exitCode, 0) << "esxi-sandbox.sh stop failed:\n" << r.err;
      h.started = false;
    }
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }

  // How many hosts SetUp starts (0: the test starts them itself).
  virtual int hostsAtSetUp() const { return 1; }

  // Starts `n` more hosts, each its own sandbox on its own port, all at once; returns their indexes.
  std::vector<size_t> startHosts(size_t n) {
    const size_t first = hosts_.size();
    hosts_.resize(first + n);
    std::vector<RunResult> results(n);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < n; ++i) {
      hosts_[first + i].dir = dir / ("host" + std::to_string(first + i));
      // Marked started before the script runs: even a failed start may leave an sshd for TearDown to stop.
      hosts_[first + i].started = true;
      threads.emplace_back([this, i, first, &results] {
        results[i] = run("ESXCLI_EMULATOR=" + shellQuote(esxcliEmulatorPath()) + " " + esxiSandboxScript() +
                             " start " + shellQuote(hosts_[first + i].dir.string()),
                         90);
      });
    }
    for (auto& t : threads) t.join();
    std::vector<size_t> indexes;
    for (size_t i = 0; i < n; ++i) {
      EsxiHost& h = hosts_[first + i];
      const RunResult& r = results[i];
      EXPECT_EQ(r.exitCode, 0) << "esxi-sandbox.sh start " << h.dir << " failed:\n" << r.err;
      auto kv = parseKeyValues(r.out);
      h.port = kv.count("PORT") ? std::atoi(kv["PORT"].c_str()) : 0;
      h.host = kv.count("HOST") ? kv["HOST"] : "127.0.0.1";
      h.user = kv["USER"];
      h.identityFile = kv["IDENTITY_FILE"];
      h.passphraseIdentityFile = kv["PASSPHRASE_IDENTITY_FILE"];
      h.passphraseFile = kv["PASSPHRASE_FILE"];
      h.knownHosts = kv["KNOWN_HOSTS"];
      h.hostKey = kv["HOST_KEY"];
      h.state = kv["STATE"];
      h.esxcliLog = kv["ESXCLI_LOG"];
      h.faults = kv["ESXCLI_FAULTS"];
      h.sshdLog = kv["SSHD_LOG"];
      EXPECT_GT(h.port, 0) << "esxi-sandbox.sh printed no PORT:\n" << r.out;
      indexes.push_back(first + i);
    }
    return indexes;
  }

  EsxiHost& host(size_t i = 0) { return hosts_.at(i); }
  size_t hostCount() const { return hosts_.size(); }

  // The ssh command line (without the remote command) for host i: the system client, no user or system
  // configuration, this sandbox's client key and known_hosts with strict checking, no connection sharing.
  // curve25519-sha256 rather than OpenSSH 9.2's default sntrup761x25519: the same key exchange libssh 0.10 (the
  // provider's client) uses, and ~0.12 s less CPU per connection on a shared 2-CPU machine.
  std::string sshPrefix(size_t i = 0, const std::string& extraOptions = "") {
    const EsxiHost& h = host(i);
    return "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i " + shellQuote(h.identityFile) +
           " -o UserKnownHostsFile=" + shellQuote(h.knownHosts) +
           " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o ControlMaster=no -o ControlPath=none"
           " -o KexAlgorithms=curve25519-sha256 -o ConnectTimeout=10 -o LogLevel=ERROR " +
           extraOptions + " -p " + std::to_string(h.port) + " " + shellQuote(h.user + "@" + h.host);
  }

  // Runs `remoteCommand` on host i (in its busybox ash) over a new SSH connection.
  RunResult ssh(const std::string& remoteCommand, size_t i = 0, int timeoutSec = 60) {
    return run(sshPrefix(i) + " -- " + shellQuote(remoteCommand), timeoutSec);
  }

  // `esxcli ARGS` on host i; ARGS is shell text (quote names with shellQuote).
  RunResult esxcli(const std::string& args, size_t i = 0) { return ssh("esxcli " + args, i); }

  // The emulator's state of host i, read directly (not through esxcli).
  Json state(size_t i = 0) {
    Json j = Json::parse(readAll(host(i).state), nullptr, false);
    if (j.is_discarded()) ADD_FAILURE() << "unreadable state file " << host(i).state;
    return j;
  }
  Json vswitchState(const std::string& name, size_t i = 0) { return findNamed(state(i)["vswitches"], name); }
  Json portgroupState(const std::string& name, size_t i = 0) { return findNamed(state(i)["portgroups"], name); }
  Json vmknicState(const std::string& name, size_t i = 0) { return findNamed(state(i)["vmknics"], name); }

  // Every esxcli invocation on host i so far, each the arguments after "esxcli".
  std::vector<std::vector<std::string>> invocations(size_t i = 0) {
    std::vector<std::vector<std::string>> out;
    std::istringstream in(readAll(host(i).esxcliLog));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(Json::parse(line).get<std::vector<std::string>>());
    return out;
  }

  // Replaces host i's fault rules (a JSON array, see tests/esxi/emulator/hooks.h); match counts start afresh.
  void setFaults(const Json& rules, size_t i = 0) {
    const std::string tmp = host(i).faults + ".tmp";
    writeFile(tmp, rules.dump());
    fs::rename(tmp, host(i).faults);
    std::error_code ec;
    fs::remove(host(i).faults + ".counts", ec);
  }
  void clearFaults(size_t i = 0) { setFaults(Json::array(), i); }

  // A shell command, its output captured in a directory of its own (so that threads may run commands at once).
  RunResult run(const std::string& cmd, int timeoutSec = 120) {
    static std::atomic<long> calls{0};
    fs::path callDir = dir / "calls" / std::to_string(++calls);
    fs::create_directories(callDir);
    RunResult r = runShell(cmd, callDir, timeoutSec);
    std::error_code ec;
    fs::remove_all(callDir, ec);
    return r;
  }

  static Json findNamed(const Json& list, const std::string& name) {
    if (list.is_array())
      for (const auto& e : list)
        if (e.value("name", "") == name) return e;
    return nullptr;
  }

  fs::path dir;  // the test's scratch directory; host i lives in dir/host<i>

 private:
  std::vector<EsxiHost> hosts_;
};

}  // namespace vnptest
