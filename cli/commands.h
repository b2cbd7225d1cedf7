// One function per subcommand. Each returns the process exit code (see `vnetplan --help`).
#pragma once
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cli/output.h"
#include "reconciler/provider.h"

namespace vnetplan::cli {

struct GlobalOptions {
  // The providers commands use: the binary's (cli/providers.h), or a test's own registry.
  const ProviderRegistry* providers = nullptr;
  const ProviderRegistry& registry() const;
  std::string stateUrl = "file://.vnetplan";
  // Targets observed (and applied) at once, and how long each may take to connect and be observed.
  int parallelism = 10;
  std::chrono::milliseconds targetTimeout{60000};
  OutputOptions output;
  const std::atomic<bool>* interrupted = nullptr;
};

struct ValidateArgs {
  std::vector<std::string> files;
  std::string format = "text";
};
struct PlanArgs {
  std::chrono::milliseconds lockTimeout{0};
  std::vector<std::string> files, targets;
  std::string out, format = "text", observed;
  bool detailedExitCode = false, showUnchanged = false;
};
struct ApplyArgs {
  std::string planFile;
  std::vector<std::string> files, targets;
  bool autoApprove = false;
  std::chrono::milliseconds lockTimeout{0};
  std::optional<std::chrono::milliseconds> confirmTimeout;
  std::vector<std::string> probes;
  std::string format = "text";
};
struct RollbackArgs {
  std::optional<int64_t> generation;
  bool autoApprove = false;
  std::vector<std::string> targets, files;
  std::chrono::milliseconds lockTimeout{0};
};
struct DriftArgs {
  std::chrono::milliseconds lockTimeout{0};
  std::vector<std::string> files, targets;
  std::string format = "text";
};
struct ShowArgs {
  std::string target;
  std::vector<std::string> files;
  std::string format = "yaml";
  bool all = false, snapshot = false;
};
struct GraphArgs {
  std::vector<std::string> files;
  std::string format = "mermaid";
};
struct WatchdogArgs {
  std::string target, journal;
};
struct DemoArgs {
  bool keep = false;
};

int cmdValidate(const GlobalOptions& g, const ValidateArgs& a);
int cmdPlan(const GlobalOptions& g, const PlanArgs& a);
int cmdApply(const GlobalOptions& g, const ApplyArgs& a);
int cmdConfirm(const GlobalOptions& g, const std::vector<std::string>& targets);
int cmdConfirmWatchdog(const GlobalOptions& g, const WatchdogArgs& a);
int cmdRollback(const GlobalOptions& g, const RollbackArgs& a);
int cmdDrift(const GlobalOptions& g, const DriftArgs& a);
int cmdShow(const GlobalOptions& g, const ShowArgs& a);
int cmdGraph(const GlobalOptions& g, const GraphArgs& a);
int cmdStateList(const GlobalOptions& g);
int cmdStateShow(const GlobalOptions& g, const std::string& target);
int cmdStateHistory(const GlobalOptions& g, const std::string& target);
int cmdStateUnlock(const GlobalOptions& g, const std::string& lockId);
int cmdStateMigrate(const GlobalOptions& g, const std::string& toUrl);
int cmdSchema();
int cmdDemo(const GlobalOptions& g, const DemoArgs& a);

}  // namespace vnetplan::cli
