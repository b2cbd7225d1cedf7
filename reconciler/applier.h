// Apply, verify, roll back (DESIGN §5). Per target:
//   lock -> check for an interrupted journal -> connect + re-observe -> refuse a stale plan ->
//   journal the pre-image (durably) -> execute steps -> verify (bounded retry) -> record state ->
//   on any failure: reconcile toward the pre-image with the same engine, verify that, record the outcome.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "reconciler/plan.h"
#include "base/probe.h"
#include "reconciler/progress.h"
#include "reconciler/provider.h"
#include "state/store.h"

namespace vnetplan {

struct ApplyOptions {
  int parallelism = 10;
  std::chrono::milliseconds lockTimeout{0};
  // The caller already holds every target's lock (apply -f locks before it plans; see lockTargets).
  bool locksHeld = false;
  std::string gitCommit;
  FaultInjection faults;
  Progress* progress = nullptr;
  // Set by a SIGINT/SIGTERM handler: stop before the next step and roll back.
  const std::atomic<bool>* interrupted = nullptr;
  // --confirm-timeout: after verifying, keep the change un-committed and roll it back unless
  // 'vnetplan confirm' is run, or every probe succeeds, before the deadline.
  std::optional<std::chrono::milliseconds> confirmTimeout;
  std::vector<Probe> probes;
  // Starts a process that outlives this one and enforces the confirmation deadline of `journalId` on `target`
  // (superviseConfirmation), so that a hang-up or a kill of the waiting apply still rolls back at the deadline.
  // Returns its pid (0: none could be started: the apply then says so and enforces the deadline itself only).
  std::function<int64_t(const std::string& target, const std::string& journalId)> startWatchdog;
  // Verification: attempts and the first back-off (doubled each time). 0: each kind's own policy
  // (KindTraits::verify); set, they override it for every kind.
  int verifyAttempts = 0;
  std::chrono::milliseconds verifyBackoff{0};
};

// Damaged: failed, and the rollback could not restore everything (exit 3). StateNotRecorded: the change is applied
// and verified on the target, but the state store could not record it (exit 4): the journal stays, so the next
// apply refuses until 'vnetplan rollback' undoes the change (then apply again).
enum class TargetResult { NoChanges, Applied, Refused, RolledBack, Damaged, StateNotRecorded };

struct TargetOutcome {
  std::string target;
  TargetResult result = TargetResult::NoChanges;
  std::string message;                 // what happened, one paragraph
  std::vector<std::string> leftovers;  // Damaged: exactly what could not be restored
  int64_t generation = 0;              // Applied: the new generation
};

struct ApplyOutcome {
  std::vector<TargetOutcome> targets;
  // 0 applied/no changes, 1 failed and fully rolled back or refused, 3 damaged, 4 applied but not recorded
  int exitCode() const;
};

// Locks every target (in name order, so two callers cannot deadlock) and checks that none has an
// unfinished journal. On failure, the error says who holds the lock or what to run.
Result<std::vector<std::unique_ptr<state::Lock>>> lockTargets(state::Store& store,
                                                              const std::vector<std::string>& targets,
                                                              const std::string& operation,
                                                              std::chrono::milliseconds wait);

// Executes a plan. `plan.liveFingerprints` are compared with a fresh observation under the lock, so a plan
// made earlier (or saved to a file) is refused when anything it touches moved.
ApplyOutcome applyPlan(const Plan& plan, state::Store& store, const ProviderRegistry& providers,
                       const ApplyOptions& opts);

// `vnetplan confirm`: confirms every target (or only `onlyTargets`) whose apply awaits confirmation. Refuses a
// target whose deadline has passed (its change is being rolled back). Returns the targets confirmed.
Result<std::vector<std::string>> confirmPending(state::Store& store, const std::vector<std::string>& onlyTargets);

// The confirmation watchdog of one journal (a process of its own, started by the apply that waits): while the
// apply lives it only watches; once the apply is gone, a confirmed change is committed, and at the deadline an
// unconfirmed one is rolled back (live state and state) with no further command. Returns when the journal is
// finished (by anyone); the outcome of what it did itself, if anything.
ApplyOutcome superviseConfirmation(state::Store& store, const ProviderRegistry& providers, const std::string& target,
                                   const std::string& journalId, const ApplyOptions& opts);

// `vnetplan rollback` after an interrupted apply: finishes the rollback recorded in each target's journal.
ApplyOutcome recoverJournals(state::Store& store, const ProviderRegistry& providers, const ApplyOptions& opts,
                             const std::vector<std::string>& onlyTargets);

// `vnetplan rollback --to N`: reconciles a target's owned objects toward generation N's snapshot: objects owned
// then come back as they were, objects created since are deleted, objects adopted since are released (restored
// as they were when adopted; never deleted). `approve` sees the plan (under the lock) and may refuse it.
ApplyOutcome rollbackToGeneration(const Target& target, int64_t generation, state::Store& store,
                                  const ProviderRegistry& providers, const ApplyOptions& opts,
                                  const std::function<bool(const Plan&)>& approve = nullptr);

}  // namespace vnetplan
