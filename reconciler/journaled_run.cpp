#include "reconciler/journaled_run.h"

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <thread>

#include "base/crashpoint.h"
#include "base/random.h"
#include "reconciler/plan.h"
#include "reconciler/planner.h"

namespace vnetplan::detail {

std::string joinLines(const std::vector<std::string>& lines, const std::string& indent) {
  std::string out;
  for (const auto& l : lines) out += indent + l + "\n";
  return out;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

JournaledRun::JournaledRun(state::Store& store, const ApplyOptions& opts, StepCounter& counter, Provider& provider,
                           TargetSession& session, Target target)
    : store_(store), opts_(opts), counter_(counter), provider_(provider), session_(session), target_(std::move(target)) {
  out_.target = target_.name;
  session_.setParallelism(opts_.parallelism);
}

void JournaledRun::keep(const Status& s, const char* what) {
  if (s.ok()) return;
  out_.leftovers.push_back(std::string("state store: ") + what + ": " + s.error().message);
  out_.message += "\nwarning: state store: " + std::string(what) + " failed: " + s.error().message;
}

TargetOutcome JournaledRun::run(const Change& change) {
  state::Journal journal;
  journal.id = randomHex(8);
  journal.target = target_.name;
  journal.targetSpec = target_;
  journal.provider = target_.provider;
  journal.status = state::JournalStatus::Applying;
  journal.operation = change.operation;
  journal.started = state::nowRfc3339();
  journal.pid = static_cast<int64_t>(getpid());
  journal.preImage = change.preImage;
  for (const auto& [addr, _] : change.preImage) journal.preOwned[addr] = change.preState.owned.count(addr) != 0;
  journal.preState = change.preState;
  journal.preState.target = target_.name;
  journal.commit = change.commit;
  journal.steps = change.steps;
  const auto firstWrite = std::chrono::steady_clock::now();
  if (Status s = store_.writeJournal(journal); !s) {
    out_.result = TargetResult::Refused;
    out_.message = "cannot write the journal: " + s.error().message;
    return out_;
  }
  lastJournalWrite_ = std::chrono::steady_clock::now();
  journalWriteCost_ = lastJournalWrite_ - firstWrite;

  Status executed = execute(change.steps, journal);
  if (executed.ok()) {
    auto problems = verify(change.expected, /*exact=*/false);
    if (problems.empty()) {
      // The provider's ids and revisions as the verifying observation saw them.
      for (auto& [addr, obj] : journal.commit->owned)
        if (auto it = verified_.objects.find(addr); it != verified_.objects.end() && !(obj.identity == it->second.identity)) {
          obj.identity = it->second.identity;
          commitChanged_ = true;
        }
    }
    if (problems.empty() && opts_.confirmTimeout) {
      if (Status c = awaitConfirmation(journal); !c) problems = {c.error().message};
    }
    if (problems.empty()) {
      if (commit(journal)) {
        out_.result = TargetResult::Applied;
        out_.generation = journal.commit->number;
        out_.message = change.successMessage + out_.message;
      }
      return out_;
    }
    executed = err("verification failed:\n" + joinLines(problems));
  } else if (untouched_) {
    return abandoned(journal, executed.error().message);
  }
  return rollback(journal, executed.error().message);
}

bool JournaledRun::commit(state::Journal& journal) {
  journal.status = state::JournalStatus::Committing;
  auto fail = [&](const std::string& message) {
    out_.result = TargetResult::StateNotRecorded;
    out_.message = "the change is applied and verified on the target, but the state store could not record it (" +
                   message + "). The journal is kept: run 'vnetplan rollback' to undo the change, then apply again";
    out_.leftovers = {message};
    return false;
  };
  // Only the status changed since the journal was written (the commit too when the verifying observation gave
  // objects new provider ids): then the small progress record says it.
  Status written = commitChanged_ ? store_.writeJournal(journal) : store_.writeJournalProgress(journal);
  if (!written) return fail("cannot write the journal: " + written.error().message);
  state::TargetState next;
  next.target = journal.target;
  next.generation = journal.commit->number;
  next.owned = journal.commit->owned;
  if (Status s = store_.addGeneration(journal.target, *journal.commit); !s)
    return fail("cannot record generation: " + s.error().message);
  if (Status s = store_.save(next); !s) return fail("cannot save state: " + s.error().message);
  keep(store_.clearJournal(journal.target), "clearJournal");
  return true;
}

TargetOutcome JournaledRun::finishCommit(state::Journal journal) {
  if (!journal.commit) {
    out_.result = TargetResult::Refused;
    out_.message = "the journal records no commit to finish";
    return out_;
  }
  if (commit(journal)) {
    out_.result = TargetResult::Applied;
    out_.generation = journal.commit->number;
    out_.message = "confirmed; committed as generation " + std::to_string(journal.commit->number);
  }
  return out_;
}

void JournaledRun::restoreState(const state::Journal& journal) {
  // A journal of an older vnetplan has no pre-state: only the live pre-image can be restored then.
  if (journal.preState.target.empty()) return;
  state::TargetState pre = journal.preState;
  pre.target = journal.target;
  keep(store_.save(pre), "restore state");
  const int64_t written = journal.commit ? journal.commit->number : pre.generation + 1;
  for (int64_t g = pre.generation + 1; g <= written; ++g) keep(store_.removeGeneration(journal.target, g), "remove generation");
}

TargetOutcome JournaledRun::recover(const state::Journal& journal) {
  std::string why = journal.operation + " " + journal.id + " (pid " + std::to_string(journal.pid) + ", started " +
                    journal.started + ") did not finish";
  if (!journal.error.empty()) why += ": " + journal.error;
  TargetOutcome o = rollback(journal, why);
  // Restoring was the operation asked for: success is success.
  if (o.result == TargetResult::RolledBack) o.result = TargetResult::Applied;
  return o;
}

// A transaction that was not committed changed nothing: there is nothing to roll back, and reconciling toward the
// pre-image would overwrite whatever someone else changed meanwhile (a stale transaction).
TargetOutcome JournaledRun::abandoned(const state::Journal& journal, const std::string& why) {
  keep(store_.clearJournal(journal.target), "clearJournal");
  out_.result = TargetResult::RolledBack;
  out_.message = why + "\nNothing was changed: the transaction was not committed.";
  return out_;
}

Status JournaledRun::execute(const std::vector<Step>& steps, state::Journal& journal) {
  if (steps.empty()) return {};
  Status executed = session_.mode() == TargetSession::Mode::StepByStep ? executeStepByStep(steps, journal)
                                                                      : executeBatches(steps, journal);
  if (!executed) return executed;
  return flush();
}

// The session's deferred work (e.g. one nftables batch) is committed once, after the last step of an apply (a
// rollback flushes its own, in rollback()).
Status JournaledRun::flush() {
  const std::string what = "apply";
  if (opts_.faults.failAtFlush) {
    session_.discard();
    return err("injected failure: the " + what + "'s deferred commit failed");
  }
  crashPoint("before flush");
  Status s = session_.flush();
  crashPoint("after flush");
  if (!s) return err(std::string("committing the ") + what + "'s deferred changes: " + s.error().message);
  return {};
}

void JournaledRun::markDone(state::Journal& journal, size_t done, bool force) {
  journal.stepsDone = done;
  auto now = std::chrono::steady_clock::now();
  const auto interval = std::max<std::chrono::steady_clock::duration>(std::chrono::seconds(1), 10 * journalWriteCost_);
  if (!force && now - lastJournalWrite_ < interval) return;
  keep(store_.writeJournalProgress(journal), "writeJournal");
  lastJournalWrite_ = std::chrono::steady_clock::now();
  journalWriteCost_ = lastJournalWrite_ - now;
}

Status JournaledRun::executeStepByStep(const std::vector<Step>& steps, state::Journal& journal) {
  for (size_t i = 0; i < steps.size(); ++i) {
    if (opts_.interrupted && opts_.interrupted->load())
      return err("interrupted before step " + std::to_string(i + 1) + " of " + std::to_string(steps.size()));
    if (opts_.faults.slowStepMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opts_.faults.slowStepMs));
    long n = ++counter_.executed;
    if (opts_.faults.failAtStep > 0 && n == opts_.faults.failAtStep)
      return err("injected failure at step " + std::to_string(n) + " (" + describe(steps[i]) + ")");
    crashPoint("before step");
    Status applied = session_.apply(steps[i]);
    crashPoint("after step");
    if (!applied)
      return err("step " + std::to_string(i + 1) + "/" + std::to_string(steps.size()) + " (" + describe(steps[i]) +
                 "): " + applied.error().message);
    markDone(journal, i + 1, i + 1 == steps.size());
    if (opts_.progress) opts_.progress->step(target_.name, i + 1, steps.size(), describe(steps[i]));
  }
  return {};
}

// Batched: a batch per round trip, the journal written between batches. Atomic: every step in one transaction,
// all or nothing; an injected failure at step k becomes an operation inside the transaction that fails, so
// nothing of it is committed.
Status JournaledRun::executeBatches(const std::vector<Step>& steps, state::Journal& journal) {
  const bool atomic = session_.mode() == TargetSession::Mode::Atomic;
  const size_t per = atomic ? steps.size() : std::max<size_t>(1, session_.batchSize());
  if (atomic && opts_.progress)
    opts_.progress->note(target_.name, "sending " + std::to_string(steps.size()) + " step(s) as one transaction");
  for (size_t start = 0; start < steps.size(); start += per) {
    if (opts_.interrupted && opts_.interrupted->load())
      return err(atomic ? "interrupted before the transaction was sent"
                        : "interrupted before step " + std::to_string(start + 1) + " of " + std::to_string(steps.size()));
    if (opts_.faults.slowStepMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opts_.faults.slowStepMs));
    const size_t end = std::min(steps.size(), start + per);
    std::vector<Step> batch(steps.begin() + static_cast<std::ptrdiff_t>(start),
                            steps.begin() + static_cast<std::ptrdiff_t>(end));
    const long first = counter_.executed + 1;
    counter_.executed += static_cast<long>(batch.size());
    const long k = opts_.faults.failAtStep;
    if (k >= first && k <= counter_.executed) session_.injectFailure(k - first);
    size_t done = start;
    crashPoint("before batch");
    auto r = session_.applyBatch(batch, [&](size_t i) {
      done = std::max(done, start + i + 1);
      if (opts_.progress) opts_.progress->step(target_.name, start + i + 1, steps.size(), describe(batch[i]));
    });
    crashPoint("after batch");
    markDone(journal, done, true);
    if (!r.status) {
      untouched_ = atomic && r.notCommitted;
      size_t i = start + std::min(r.failedIndex, batch.size() - 1);
      return err("step " + std::to_string(i + 1) + "/" + std::to_string(steps.size()) + " (" + describe(steps[i]) +
                 "): " + r.status.error().message);
    }
  }
  if (atomic && opts_.faults.failAfterCommit) return err("injected failure after the transaction committed");
  return {};
}

VerifyPolicy JournaledRun::policyFor(const std::map<Address, std::optional<Attrs>>& expected) const {
  // The slowest-settling kind decides how long to keep looking; the fastest how soon to look again.
  VerifyPolicy p{1, std::chrono::milliseconds(0)};
  bool any = false;
  for (const auto& [addr, want] : expected) {
    const KindTraits* t = provider_.traits(addr.kind);
    VerifyPolicy k = t ? t->verify : VerifyPolicy{};
    p.attempts = std::max(p.attempts, k.attempts);
    p.firstBackoff = any ? std::min(p.firstBackoff, k.firstBackoff) : k.firstBackoff;
    any = true;
  }
  if (opts_.verifyAttempts > 0) p.attempts = opts_.verifyAttempts;  // explicit override (tests)
  if (opts_.verifyBackoff.count() > 0) p.firstBackoff = opts_.verifyBackoff;
  return p;
}

std::vector<std::string> JournaledRun::verify(const std::map<Address, std::optional<Attrs>>& expected, bool exact) {
  if (opts_.progress) opts_.progress->note(target_.name, "verifying");
  const VerifyPolicy policy = policyFor(expected);
  std::vector<std::string> problems;
  auto backoff = policy.firstBackoff;
  for (int attempt = 1; attempt <= std::max(1, policy.attempts); ++attempt) {
    auto obs = session_.observe();
    if (!obs) {
      problems = {"observe: " + obs.error().message};
    } else {
      problems = verifyAgainst(expected, *obs, provider_, exact);
      if (problems.empty()) {
        verified_ = std::move(*obs);
        return problems;
      }
    }
    if (attempt < policy.attempts) {
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
  }
  return problems;
}

// Holds the change un-committed until 'vnetplan confirm', all probes succeeding, or the deadline.
Status JournaledRun::awaitConfirmation(state::Journal& journal) {
  using clock = std::chrono::system_clock;
  const auto deadline = clock::now() + *opts_.confirmTimeout;
  journal.status = state::JournalStatus::AwaitingConfirm;
  journal.confirmDeadline = rfc3339(deadline);
  keep(store_.clearConfirm(journal.target), "clear confirm");
  if (Status s = store_.writeJournal(journal); !s) return err("cannot write the journal: " + s.error().message);
  // Something that outlives this process enforces the deadline too (a hang-up or kill -9 of this apply).
  if (opts_.startWatchdog) {
    journal.watchdogPid = opts_.startWatchdog(journal.target, journal.id);
    if (journal.watchdogPid > 0) {
      if (Status s = store_.writeJournal(journal); !s) return err("cannot write the journal: " + s.error().message);
    } else if (opts_.progress) {
      opts_.progress->note(journal.target, "warning: no confirmation watchdog could be started; if this process "
                                           "dies before the deadline, run 'vnetplan rollback' yourself");
    }
  }
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(*opts_.confirmTimeout).count();
  if (opts_.progress)
    opts_.progress->note(journal.target, "applied and verified; rolling back in " + std::to_string(secs) +
                                             "s unless 'vnetplan confirm' is run" +
                                             (opts_.probes.empty() ? "" : " or every probe succeeds"));
  std::string lastProbeError;
  while (clock::now() < deadline) {
    if (opts_.interrupted && opts_.interrupted->load()) return err("interrupted while awaiting confirmation");
    auto c = store_.confirmed(journal.target, journal.id);
    if (c && *c) break;
    if (!opts_.probes.empty()) {
      bool all = true;
      for (const auto& p : opts_.probes)
        if (Status ps = session_.probe(p, std::chrono::milliseconds(1000)); !ps) {
          all = false;
          lastProbeError = ps.error().message;
          break;
        }
      if (all) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  keep(store_.clearConfirm(journal.target), "clear confirm");
  if (clock::now() >= deadline)
    return err("not confirmed within " + std::to_string(secs) + "s" +
               (lastProbeError.empty() ? "" : " (last probe failure: " + lastProbeError + ")"));
  if (opts_.progress) opts_.progress->note(journal.target, "confirmed");
  return {};
}

// Reconcile toward the journal's pre-image, verify, and record the outcome.
TargetOutcome JournaledRun::rollback(state::Journal journal, const std::string& why) {
  if (opts_.progress) opts_.progress->note(journal.target, "failed: " + why + "; rolling back");
  journal.status = state::JournalStatus::RollingBack;
  journal.error = why;
  keep(store_.writeJournal(journal), "writeJournal");

  std::vector<std::string> problems;
  // What the failed apply deferred and never committed stays uncommitted; rollback starts from the live state.
  session_.discard();
  auto obs = session_.observe();
  if (!obs) {
    problems = {"cannot observe the target to roll back: " + obs.error().message};
  } else {
    Plan slice;
    slice.changes = planTowards(journal.preImage, *obs, provider_, target_);
    std::vector<Step> steps = slice.steps();
    std::vector<std::string> stepErrors;
    if (session_.mode() == TargetSession::Mode::StepByStep) {
      // Best effort: keep going past a failing step so as much as possible is restored.
      for (const auto& step : steps) {
        crashPoint("before rollback step");
        if (Status s = session_.apply(step); !s) stepErrors.push_back(describe(step) + ": " + s.error().message);
      }
    } else if (session_.mode() == TargetSession::Mode::Atomic) {
      // A second transaction, back to the pre-image.
      crashPoint("before rollback transaction");
      if (auto r = session_.applyBatch(steps, nullptr); !r.status)
        stepErrors.push_back("the rollback transaction failed: " + r.status.error().message);
    } else {
      // Batches; after a failing batch, the rest still goes (best effort, as step by step).
      const size_t per = std::max<size_t>(1, session_.batchSize());
      for (size_t start = 0; start < steps.size();) {
        std::vector<Step> batch(steps.begin() + static_cast<std::ptrdiff_t>(start),
                                steps.begin() + static_cast<std::ptrdiff_t>(std::min(steps.size(), start + per)));
        crashPoint("before rollback batch");
        auto r = session_.applyBatch(batch, nullptr);
        if (r.status) {
          start += batch.size();
          continue;
        }
        size_t failed = std::min(r.failedIndex, batch.size() - 1);
        stepErrors.push_back(describe(batch[failed]) + ": " + r.status.error().message);
        start += failed + 1;
      }
    }
    if (!steps.empty()) {
      crashPoint("before rollback flush");
      if (Status f = session_.flush(); !f) stepErrors.push_back("committing the rollback's deferred changes: " + f.error().message);
    }
    problems = verify(journal.preImage, /*exact=*/true);
    if (!problems.empty()) problems.insert(problems.end(), stepErrors.begin(), stepErrors.end());
  }

  if (problems.empty()) {
    restoreState(journal);
    keep(store_.clearJournal(journal.target), "clearJournal");
    keep(store_.clearDamage(journal.target), "clearDamage");
    out_.result = TargetResult::RolledBack;
    out_.message = why + "\nRolled back: the target is as it was before (verified).";
    return out_;
  }
  journal.status = state::JournalStatus::Failed;
  keep(store_.writeJournal(journal), "writeJournal");
  state::Damage damage{journal.target, state::nowRfc3339(), problems};
  keep(store_.recordDamage(damage), "recordDamage");
  out_.result = TargetResult::Damaged;
  out_.leftovers = problems;
  out_.message = why + "\nRollback could NOT restore everything. Left as is:\n" + joinLines(problems) +
                 "Fix the cause, then run 'vnetplan rollback' to retry the restore.";
  return out_;
}

}  // namespace vnetplan::detail
