// From manifest paths to a checked desired state, and from a desired state to a plan.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include "model/diag.h"
#include "model/model.h"
#include "reconciler/plan.h"
#include "reconciler/planner.h"
#include "reconciler/progress.h"
#include "reconciler/provider.h"
#include "state/store.h"

namespace vnetplan {

// Connected, observed targets.
struct LiveTarget {
  Target target;
  Provider* provider = nullptr;
  std::unique_ptr<TargetSession> session;
  Observation observed;
};

// How work spreads over targets: at most `parallelism` targets at once, each bounded by `targetTimeout`
// (connect + observe), with targets done / total reported to `progress` (which must outlive the work).
struct FanoutOptions {
  int parallelism = 10;
  std::chrono::milliseconds targetTimeout = kDefaultTargetTimeout;
  // A target an apply is running on (someone else holds its lock) is waited for this long, then reported as
  // busy; one with an unfinished journal is reported at once. Either way it is not planned.
  std::chrono::milliseconds lockTimeout{0};
  Progress* progress = nullptr;
};

// Why a target cannot be planned now: an apply is running on it (its lock is held by another process, and
// stays held for `wait`), or an earlier apply did not finish (its journal is there). nullopt: it can be.
std::optional<std::string> targetBusy(state::Store& store, const std::string& target, std::chrono::milliseconds wait);

// Observes targets (and loads their state) in the background as soon as the manifests' Targets are known
// and checked, so that observing overlaps validating and building the rest of the manifests. Targets are
// observed on a bounded pool (FanoutOptions). Read-only: for plan and drift, never for apply (which observes
// again under its lock).
class Prefetch {
 public:
  Prefetch(const ProviderRegistry& providers, state::Store& store, std::set<std::string> onlyTargets,
           FanoutOptions fanout = {});
  ~Prefetch();
  Prefetch(const Prefetch&) = delete;
  Prefetch& operator=(const Prefetch&) = delete;
  void start(const std::vector<Target>& targets);
  // What was prefetched for `target` (only if its spec is unchanged), waiting for it; nullopt otherwise.
  struct Fetched {
    Result<LiveTarget> live = err("not fetched");
    Result<state::TargetState> state = err("not fetched");
  };
  std::optional<Fetched> take(const Target& target);

 private:
  struct Job;
  const ProviderRegistry& providers_;
  state::Store& store_;
  std::set<std::string> only_;
  FanoutOptions fanout_;
  std::vector<std::unique_ptr<Job>> jobs_;
  std::thread pool_;  // runs the jobs, `fanout_.parallelism` at a time
};

// The provider pass of loadDesired: each Target checked, each resource checked, normalized and given its
// defaults, then each target's resources checked together.
void checkWithProviders(DesiredState& desired, const ProviderRegistry& providers, Diagnostics& diags);

// Load, schema-validate, build, lint, and have each provider check and normalize its resources.
// Every problem lands in diags; the result is only meaningful when !diags.hasErrors().
DesiredState loadDesired(const std::vector<std::string>& paths, const ProviderRegistry& providers,
                         Diagnostics& diags, Prefetch* prefetch = nullptr);
DesiredState loadDesiredText(const std::string& text, const std::string& name, const ProviderRegistry& providers,
                             Diagnostics& diags);

// Connects to one target and observes it, by `deadline`.
Result<LiveTarget> connectAndObserve(const Target& target, const ProviderRegistry& providers,
                                     Deadline deadline = SteadyClock::now() + kDefaultTargetTimeout);

// Owned objects of a target as the planner wants them.
std::map<Address, state::OwnedObject> ownedOf(const state::TargetState& st);

// What is known of one target without connecting to it: live objects and owned objects (last applied).
struct TargetSnapshot {
  Observation observed;
  std::map<Address, state::OwnedObject> owned;
};

// Pure planning: no connections. Every target of `desired` (or only `onlyTargets`) must have a snapshot,
// except those in `plan.unreachable` of an earlier observation (listed in `unreachable`): they are left out of
// the plan and named in it.
Result<Plan> planAgainst(const DesiredState& desired, const std::set<std::string>& onlyTargets,
                         const std::map<std::string, TargetSnapshot>& snapshots, const ProviderRegistry& providers,
                         Diagnostics& diags, const std::vector<UnreachableTarget>& unreachable = {},
                         bool fingerprints = true);

// Plans every target of `desired` (or only `onlyTargets`). Observes the targets (connecting to them) on a
// bounded pool; a target that cannot be observed is named in `plan.unreachable` and the others are planned.
// `fingerprints`: false for a plan that is only shown, never applied (TargetView::fingerprints).
Result<Plan> planDesired(const DesiredState& desired, const std::set<std::string>& onlyTargets,
                         state::Store& store, const ProviderRegistry& providers, Diagnostics& diags,
                         Prefetch* prefetch = nullptr, const FanoutOptions& fanout = {}, bool fingerprints = true);

}  // namespace vnetplan
