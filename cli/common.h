// What the subcommands share: the state store, diagnostics and outcome output, the fan-out and apply options
// from the global flags, plan rendering, confirmation.
#pragma once
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>


#include "cli/commands.h"
#include "reconciler/applier.h"
#include "reconciler/pipeline.h"
#include "state/store.h"

namespace vnetplan::cli {

// "error: MESSAGE" on stderr; returns 1 (the exit code).
int fail(const std::string& message);  // "error: message" on stderr (a JSON line with JSON logs); returns 1
void say(const std::string& message);   // a remark on stderr (a JSON line with JSON logs)
void printDiagnostics(const GlobalOptions& g, const Diagnostics& diags);
Result<std::unique_ptr<state::Store>> openStore(const GlobalOptions& g);
std::set<std::string> toSet(const std::vector<std::string>& v);
// Loads manifests; prints every diagnostic. nullopt when there are errors.
std::optional<DesiredState> loadOrReport(const GlobalOptions& g, const std::vector<std::string>& files,
                                         Prefetch* prefetch = nullptr);
Status writeFileAtomic(const std::string& path, const std::string& data);
// The commit the manifests are at, when they are in a git work tree ("" otherwise).
std::string gitCommitOf(const std::vector<std::string>& files);
std::string renderPlan(const GlobalOptions& g, const Plan& plan, const std::string& format, bool showNoOps);
// Prints each target's outcome; returns the exit code.
int reportOutcome(const GlobalOptions& g, const ApplyOutcome& outcome);
FanoutOptions fanout(const GlobalOptions& g, Progress* progress);
// Names, on stderr, the targets a plan left out; true if there were any (the command then exits 1).
bool reportUnreachable(const Plan& plan, const char* what);
ApplyOptions applyOptions(const GlobalOptions& g, Progress* progress);
// Starts `vnetplan __confirm-watchdog` as a process of its own (new session, no terminal, SIGHUP ignored) that
// outlives this one; returns its pid (0 if it could not be started).
std::function<int64_t(const std::string&, const std::string&)> watchdogStarter(const GlobalOptions& g);
// Asks on the terminal; false (with the reason) when stdin is not one.
bool confirmInteractively();

}  // namespace vnetplan::cli
