#include "cli/common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "base/fileio.h"
#include "base/redact.h"
#include "cli/output.h"
#include "reconciler/render.h"
#include "state/backends.h"

namespace vnetplan::cli {

namespace fs = std::filesystem;

int fail(const std::string& message) {
  if (jsonLogs()) {
    writeJsonLine({{"message", message}}, "error");
    return 1;
  }
  std::cerr << "error: " << message << "\n";
  return 1;
}

void say(const std::string& message) {
  if (jsonLogs())
    writeJsonLine({{"message", message}}, "info");
  else
    std::cerr << message << "\n";
}

void printDiagnostics(const GlobalOptions& g, const Diagnostics& diags) {
  if (diags.items().empty()) return;
  if (jsonLogs()) {
    for (const Diagnostic& d : diags.items()) {
      Json line{{"message", d.message}, {"file", d.loc.file}};
      if (d.loc.line > 0) line["line"] = d.loc.line;
      if (d.loc.col > 0) line["column"] = d.loc.col;
      if (!d.code.empty()) line["rule"] = d.code;
      writeJsonLine(std::move(line), d.severity == Severity::Error ? "error" : "warn");
    }
    return;
  }
  std::cerr << diags.render(useColor(g.output, STDERR_FILENO));
}

Result<std::unique_ptr<state::Store>> openStore(const GlobalOptions& g) {
  auto backend = state::openBackend(g.stateUrl);
  if (!backend) return err("--state " + state::redactStateUrl(g.stateUrl) + ": " + backend.error().message);
  return std::make_unique<state::Store>(std::move(*backend));
}

std::set<std::string> toSet(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

// Loads manifests; prints every diagnostic. nullopt when there are errors.
std::optional<DesiredState> loadOrReport(const GlobalOptions& g, const std::vector<std::string>& files,
                                         Prefetch* prefetch) {
  Diagnostics diags;
  DesiredState desired = loadDesired(files, g.registry(), diags, prefetch);
  printDiagnostics(g, diags);
  if (jsonLogs()) {
    std::map<std::string, std::string> addresses;
    for (const Target& t : desired.targets) {
      std::string where;
      for (const char* field : {"endpoint", "host", "db", "netns"}) {
        if (auto v = t.spec.getString(field)) {
          where = *v;
          if (std::string(field) == "host")
            if (auto port = t.spec.getInt("port")) where += ":" + std::to_string(*port);
          if (std::string(field) == "netns") where = "netns:" + where;
          break;
        }
      }
      addresses[t.name] = redactCredentials(where);
    }
    setLogAddresses(std::move(addresses));
  }
  if (diags.hasErrors()) {
    say(std::to_string(diags.errorCount()) + " error(s), " + std::to_string(diags.warningCount()) + " warning(s)");
    return std::nullopt;
  }
  return desired;
}

Status writeFileAtomic(const std::string& path, const std::string& data) {
  // A temp file made with O_EXCL | O_NOFOLLOW next to it, renamed over it: never through a planted symlink.
  if (Status st = atomicWriteFile(path, data, 0644); !st) return err("cannot write " + path + ": " + st.error().message);
  return {};
}

std::string gitCommitOf(const std::vector<std::string>& files) {
  // `vnetplan serve` applies a commit it extracted (no work tree): it says which one.
  if (const char* c = std::getenv("VNETPLAN_GIT_COMMIT"); c && std::strlen(c) == 40) return c;
  if (files.empty()) return "";
  fs::path dir = fs::is_directory(files[0]) ? fs::path(files[0]) : fs::path(files[0]).parent_path();
  if (dir.empty()) dir = ".";
  std::string cmd = "git -C '" + dir.string() + "' rev-parse HEAD 2>/dev/null";
  if (dir.string().find('\'') != std::string::npos) return "";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  char buf[64] = {0};
  std::string out = std::fgets(buf, sizeof buf, p) ? buf : "";
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.size() == 40 ? out : "";
}

std::string renderPlan(const GlobalOptions& g, const Plan& plan, const std::string& format, bool showNoOps) {
  if (format == "json") return renderPlanJson(plan);
  if (format == "markdown") return renderPlanMarkdown(plan);
  return renderPlanText(plan, {useColor(g.output, STDOUT_FILENO), showNoOps});
}

int reportOutcome(const GlobalOptions& g, const ApplyOutcome& outcome) {
  bool color = useColor(g.output, STDOUT_FILENO);
  for (const auto& t : outcome.targets) {
    const char* label = "";
    const char* c = "";
    switch (t.result) {
      case TargetResult::NoChanges: label = "no changes"; c = "\033[32m"; break;
      case TargetResult::Applied: label = "applied"; c = "\033[32m"; break;
      case TargetResult::Refused: label = "refused"; c = "\033[31m"; break;
      case TargetResult::RolledBack: label = "failed, rolled back"; c = "\033[33m"; break;
      case TargetResult::Damaged: label = "FAILED, NOT fully restored"; c = "\033[31;1m"; break;
      case TargetResult::StateNotRecorded: label = "applied, but NOT recorded in the state store"; c = "\033[31;1m"; break;
    }
    const bool good = t.result == TargetResult::Applied || t.result == TargetResult::NoChanges;
    if (g.output.logFormat == "json") {
      // With JSON logs the outcome is a JSON line too (on stderr, with the logs), whatever the log level.
      static const std::map<TargetResult, const char*> kOutcome{
          {TargetResult::NoChanges, "no-changes"}, {TargetResult::Applied, "applied"},
          {TargetResult::Refused, "refused"},      {TargetResult::RolledBack, "rolled-back"},
          {TargetResult::Damaged, "damaged"},      {TargetResult::StateNotRecorded, "not-recorded"}};
      Json line{{"target", t.target},
                {"outcome", kOutcome.at(t.result)},
                {"message", t.message}};
      if (t.generation > 0) line["generation"] = t.generation;
      if (!t.leftovers.empty()) line["leftovers"] = t.leftovers;
      writeJsonLine(std::move(line), good ? "info" : "error");
      continue;
    }
    std::ostream& os = good ? std::cout : std::cerr;
    os << (color ? c : "") << "Target " << t.target << ": " << label << (color ? "\033[0m" : "");
    if (t.generation > 0) os << " (generation " << t.generation << ")";
    os << "\n";
    if (!t.message.empty() && t.result != TargetResult::NoChanges) os << "  " << t.message << "\n";
  }
  return outcome.exitCode();
}

FanoutOptions fanout(const GlobalOptions& g, Progress* progress) {
  FanoutOptions f;
  f.parallelism = g.parallelism;
  f.targetTimeout = g.targetTimeout;
  f.progress = progress;
  return f;
}

// Names, on stderr, the targets a plan left out; true if there were any (the command then exits 1).
bool reportUnreachable(const Plan& plan, const char* what) {
  if (plan.unreachable.empty()) return false;
  for (const auto& u : plan.unreachable) {
    if (jsonLogs())
      writeJsonLine({{"target", u.target}, {"message", std::string("not ") + what + ": " + u.error}}, "error");
    else
      std::cerr << "error: target " << u.target << " was not " << what << ": " << u.error << "\n";
  }
  return true;
}

ApplyOptions applyOptions(const GlobalOptions& g, Progress* progress) {
  ApplyOptions o;
  o.faults = FaultInjection::fromEnv();
  o.progress = progress;
  o.interrupted = g.interrupted;
  o.parallelism = g.parallelism;
  return o;
}

std::function<int64_t(const std::string&, const std::string&)> watchdogStarter(const GlobalOptions& g) {
  const std::string stateUrl = g.stateUrl;
  const std::string logLevel = g.output.logLevel;
  return [stateUrl, logLevel](const std::string& target, const std::string& journal) -> int64_t {
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 0;
    self[n] = '\0';
    // The state URL is relative to the working directory: keep it by staying in it.
    std::vector<std::string> args{self, "--state", stateUrl, "--log-level", logLevel, "__confirm-watchdog",
                                  "--target", target, "--journal", journal};
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return 0;
    pid_t child = ::fork();
    if (child < 0) {
      ::close(pipefd[0]);
      ::close(pipefd[1]);
      return 0;
    }
    if (child == 0) {
      // Double fork: the watchdog is nobody's child here (no zombie), in a session of its own (no terminal).
      ::setsid();
      pid_t grandchild = ::fork();
      if (grandchild != 0) {
        int64_t pid = grandchild > 0 ? grandchild : 0;
        (void)!::write(pipefd[1], &pid, sizeof pid);
        ::_exit(0);
      }
      ::signal(SIGHUP, SIG_IGN);
      int devnull = ::open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
      }
      std::vector<char*> argv;
      for (auto& s : args) argv.push_back(s.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(pipefd[1]);
    int64_t pid = 0;
    (void)!::read(pipefd[0], &pid, sizeof pid);
    ::close(pipefd[0]);
    ::waitpid(child, nullptr, 0);
    return pid;
  };
}

bool confirmInteractively() {
  if (!isatty(STDIN_FILENO)) {
    fail("refusing to apply without confirmation: stdin is not a terminal; "
         "pass --auto-approve (or apply a reviewed plan file)");
    return false;
  }
  std::cout << "\nDo you want to apply these changes? Only 'yes' will be accepted: " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != "yes") {
    say("Apply cancelled.");
    return false;
  }
  return true;
}



}  // namespace vnetplan::cli
