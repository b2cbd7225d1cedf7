// One target's journaled change (DESIGN §5), the single path that apply, `rollback` (finishing an interrupted
// journal) and `rollback --to` all take:
//   1. the journal (pre-image of every touched object, ownership before, the steps) is written durably before
//      the first change;
//   2. steps run the way the session applies them (step by step, in batches, or as one atomic transaction),
//      and the journal's `stepsDone` is kept true: it never counts a step that is not known to be done;
//   3. the result is verified against what was expected, re-observing with each kind's verification policy;
//   4. success: the caller's commit records state; failure: the target is reconciled back toward the pre-image
//      with the same engine and that is verified too (exit 1), or what could not be restored is recorded (3).
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "reconciler/applier.h"
#include "reconciler/provider.h"
#include "state/store.h"

namespace vnetplan::detail {

// Shared by every target of one invocation, so that VNETPLAN_FAIL_AT_STEP counts steps of the whole apply.
struct StepCounter {
  std::atomic<long> executed{0};
};

class JournaledRun {
 public:
  JournaledRun(state::Store& store, const ApplyOptions& opts, StepCounter& counter, Provider& provider,
               TargetSession& session, Target target);

  struct Change {
    std::string operation;  // "apply" | "rollback"
    std::vector<Step> steps;
    std::map<Address, std::optional<Attrs>> preImage;  // every touched address as it was (nullopt: absent)
    std::map<Address, std::optional<Attrs>> expected;  // what verification must find afterwards
    state::TargetState preState;                       // ownership and generation before
    state::Generation commit;  // what success records: number = preState.generation + 1, owned = the new state
    std::string successMessage;
  };

  // Runs `change`: journal, steps, verification (and confirmation, with --confirm-timeout), then the commit:
  // the journal turns Committing (with the generation to record), the generation and the state are written,
  // the journal is removed. A failure anywhere before the commit rolls back live state and state together.
  TargetOutcome run(const Change& change);

  // Finishes the rollback an interrupted journal records: live state back to its pre-image, ownership and
  // generation back to its pre-state, a generation the interrupted commit may have written removed.
  TargetOutcome recover(const state::Journal& journal);
  // Finishes the commit of a journal whose change was verified and confirmed (a confirm watchdog, after the
  // apply that was waiting for the confirmation died).
  TargetOutcome finishCommit(state::Journal journal);

  // The observation that verified the change (for the commit: provider ids and revisions of what is now live).
  const Observation& verified() const { return verified_; }

 private:
  Status execute(const std::vector<Step>& steps, state::Journal& journal);
  Status flush();
  Status executeStepByStep(const std::vector<Step>& steps, state::Journal& journal);
  Status executeBatches(const std::vector<Step>& steps, state::Journal& journal);
  // Records `done` steps as done in the journal (at most every 200 ms, and always when `force`).
  void markDone(state::Journal& journal, size_t done, bool force);
  std::vector<std::string> verify(const std::map<Address, std::optional<Attrs>>& expected, bool exact);
  VerifyPolicy policyFor(const std::map<Address, std::optional<Attrs>>& expected) const;
  Status awaitConfirmation(state::Journal& journal);
  TargetOutcome rollback(state::Journal journal, const std::string& why);
  // Writes the generation and state of a Committing journal, then removes the journal. False (with the outcome
  // saying what failed) if a write failed: the journal then stays, for 'vnetplan rollback'.
  bool commit(state::Journal& journal);
  // Puts ownership and generation back as the journal recorded them before the change.
  void restoreState(const state::Journal& journal);
  TargetOutcome abandoned(const state::Journal& journal, const std::string& why);
  std::string describe(const Step& step) const { return provider_.describe(step, target_); }
  // A bookkeeping write that failed after the target itself is fine: say so, never hide it.
  void keep(const Status& s, const char* what);

  state::Store& store_;
  const ApplyOptions& opts_;
  StepCounter& counter_;
  Provider& provider_;
  TargetSession& session_;
  Target target_;
  TargetOutcome out_;
  Observation verified_;
  bool untouched_ = false;  // the last execute failed without committing anything (Atomic)
  std::chrono::steady_clock::time_point lastJournalWrite_{};
  // How long the last journal write took: progress (stepsDone, informational: recovery compares with the
  // pre-image, whatever it says; a small record of its own, Store::writeJournalProgress) is written at most every
  // max(1 s, 10x that), so that it costs at most a tenth of the apply instead of one write per step.
  std::chrono::steady_clock::duration journalWriteCost_{};
  bool commitChanged_ = false;  // the verifying observation changed the journal's commit (provider ids)
};

std::string joinLines(const std::vector<std::string>& lines, const std::string& indent = "  ");
std::string rfc3339(std::chrono::system_clock::time_point t);

}  // namespace vnetplan::detail
