// Running a program (git, or this very binary for plan/validate/apply) as a child with its output captured: what
// `vnetplan serve` does for every piece of work, so that a crash, a hang or a leak in one run never reaches the
// agent, which has to run for weeks.
#pragma once
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace vnetplan::cli {

struct ChildResult {
  int exitCode = -1;  // -1: killed by a signal, or could not be started (error says which)
  int signal = 0;
  bool timedOut = false;
  std::string out, err;
  std::string error;  // why it could not run
  std::chrono::milliseconds duration{0};
};

struct ChildOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // then SIGTERM, and SIGKILL 5 s later
  std::map<std::string, std::string> env;                        // added to (or replacing in) this environment
  const std::atomic<bool>* cancel = nullptr;                     // when set: SIGTERM the child
  size_t maxOutput = 16 << 20;                                   // bytes kept of stdout and of stderr each
};

// argv[0] is looked up in PATH unless it contains a '/'. stdin is /dev/null; no descriptor of this process but
// the pipes is inherited (close_range), so a child never holds the agent's listening socket.
ChildResult runChild(const std::vector<std::string>& argv, const ChildOptions& opts = {});

// The path of the running binary (/proc/self/exe).
std::string selfExecutable();

}  // namespace vnetplan::cli
