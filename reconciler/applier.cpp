#include "reconciler/applier.h"

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "base/random.h"
#include "model/codec.h"
#include "reconciler/pipeline.h"
#include "reconciler/planner.h"

namespace vnetplan {

int ApplyOutcome::exitCode() const {
  int code = 0;
  for (const auto& t : targets) {
    if (t.result == TargetResult::Damaged) return 3;
    if (t.result == TargetResult::Refused || t.result == TargetResult::RolledBack) code = 1;
  }
  return code;
}

namespace {

std::string joinLines(const std::vector<std::string>& lines, const std::string& indent = "  ") {
  std::string out;
  for (const auto& l : lines) out += indent + l + "\n";
  return out;
}

std::optional<std::string> pendingJournalMessage(state::Store& store, const std::string& target) {
  auto j = store.journal(target);
  if (!j) return "cannot read the journal: " + j.error().message;
  if (!j->has_value()) return std::nullopt;
  const auto& journal = **j;
  return "an earlier " + journal.operation + " on target " + target + " (journal " + journal.id + ", pid " +
         std::to_string(journal.pid) + ", started " + journal.started + ", status " +
         state::journalStatusName(journal.status) +
         ") did not finish; its changes may be half-applied. Run 'vnetplan rollback' to restore the state "
         "recorded before it, then plan again.";
}


// Shared across targets so that VNETPLAN_FAIL_AT_STEP counts steps of the whole apply.
struct StepCounter {
  std::atomic<long> executed{0};
};

class TargetRun {
 public:
  TargetRun(state::Store& store, const ProviderRegistry& providers, const ApplyOptions& opts, StepCounter& counter)
      : store_(store), providers_(providers), opts_(opts), counter_(counter) {}

  // Apply this target's slice of the plan.
  TargetOutcome apply(const Plan& plan, const Target& target) {
    out_.target = target.name;
    target_ = target;
    std::unique_ptr<state::Lock> lock;
    if (!opts_.locksHeld) {
      auto l = store_.lockTarget(target.name, "apply", opts_.lockTimeout);
      if (!l) return refuse(l.error().message);
      lock = std::move(*l);
    }
    if (auto pending = pendingJournalMessage(store_, target.name)) return refuse(*pending);

    auto live = connectAndObserve(target, providers_);
    if (!live) return refuse(live.error().message);
    provider_ = live->provider;

    std::vector<const ResourceChange*> mine;
    for (const auto& c : plan.changes)
      if (c.addr.target == target.name) mine.push_back(&c);

    // Refuse a stale plan: anything it touches must still look exactly as it did when planned.
    std::vector<std::string> moved;
    for (const ResourceChange* c : mine) {
      auto fp = plan.liveFingerprints.find(c->addr.str());
      if (fp == plan.liveFingerprints.end()) continue;
      if (fingerprint(liveAttrs(live->observed, c->addr)) != fp->second) moved.push_back(c->addr.str());
    }
    if (!moved.empty())
      return refuse("the plan is stale: live state changed since it was made for:\n" + joinLines(moved) +
                    "Run plan again.");

    auto stOr = store_.load(target.name);
    if (!stOr) return refuse("state: " + stOr.error().message);
    state::TargetState st = std::move(*stOr);

    Plan slice;
    for (const ResourceChange* c : mine) slice.changes.push_back(*c);
    std::vector<Step> steps = slice.steps();

    if (steps.empty()) {
      // Nothing to execute; ownership may still change (adopted no-ops, forgotten objects).
      if (recordSuccess(st, mine, plan, target, /*executed=*/false)) {
        out_.result = TargetResult::NoChanges;
        out_.message = "no changes";
      }
      return out_;
    }

    state::Journal journal;
    journal.id = randomHex(8);
    journal.target = target.name;
    journal.targetSpec = target;
    journal.provider = target.provider;
    journal.status = state::JournalStatus::Applying;
    journal.operation = "apply";
    journal.started = state::nowRfc3339();
    journal.pid = static_cast<int64_t>(getpid());
    for (const ResourceChange* c : mine) {
      if (c->action == Action::NoOp) continue;
      journal.preImage[c->addr] = liveAttrs(live->observed, c->addr);
      journal.preOwned[c->addr] = st.owned.count(c->addr) != 0;
    }
    journal.steps = steps;
    if (Status s = store_.writeJournal(journal); !s) return refuse("cannot write the journal: " + s.error().message);

    Status executed = execute(*live->session, target.name, steps);
    if (executed.ok()) {
      std::map<Address, std::optional<Attrs>> expected;
      for (const ResourceChange* c : mine) {
        if (c->action == Action::NoOp) continue;
        expected[c->addr] = c->action == Action::Delete ? std::nullopt : c->after;
      }
      auto problems = verify(*live->session, target.name, expected);
      if (problems.empty() && opts_.confirmTimeout) {
        if (Status c = awaitConfirmation(journal); !c) problems = {c.error().message};
      }
      if (problems.empty()) {
        if (recordSuccess(st, mine, plan, target, true)) {
          keep(store_.clearJournal(target.name), "clearJournal");
          out_.result = TargetResult::Applied;
          out_.message = std::to_string(steps.size()) + " step(s) applied and verified";
        }
        return out_;
      }
      executed = err("verification failed:\n" + joinLines(problems));
    } else if (untouched_) {
      return abandoned(journal, executed.error().message);
    }
    return rollback(*live->session, journal, executed.error().message);
  }

  // A transaction that was not committed changed nothing: there is nothing to roll back, and reconciling
  // toward the pre-image would overwrite whatever someone else changed meanwhile (a stale transaction).
  TargetOutcome abandoned(const state::Journal& journal, const std::string& why) {
    keep(store_.clearJournal(journal.target), "clearJournal");
    out_.result = TargetResult::RolledBack;
    out_.message = why + "\nNothing was changed: the transaction was not committed.";
    return out_;
  }

  // Finish the rollback recorded in a journal (after a crash or a failed rollback).
  TargetOutcome recover(const state::Journal& journal) {
    out_.target = journal.target;
    target_ = journal.targetSpec;
    auto lock = store_.lockTarget(journal.target, "rollback", opts_.lockTimeout);
    if (!lock) return refuse(lock.error().message);
    provider_ = providers_.find(journal.targetSpec.provider);
    if (!provider_) return refuse("unknown provider '" + journal.targetSpec.provider + "'");
    auto session = provider_->connect(journal.targetSpec);
    if (!session) return refuse("connect: " + session.error().message);
    std::string why = "apply " + journal.id + " (pid " + std::to_string(journal.pid) + ", started " +
                      journal.started + ") did not finish";
    if (!journal.error.empty()) why += ": " + journal.error;
    TargetOutcome o = rollback(**session, journal, why);
    // Restoring was the operation asked for: success is success.
    if (o.result == TargetResult::RolledBack) out_.result = TargetResult::Applied;
    return out_;
  }

  // Reconcile toward an arbitrary set of expected objects (rollback --to).
  TargetOutcome reconcileTo(const Target& target, const std::map<Address, std::optional<Attrs>>& expected,
                            int64_t generation) {
    out_.target = target.name;
    target_ = target;
    auto lock = store_.lockTarget(target.name, "rollback", opts_.lockTimeout);
    if (!lock) return refuse(lock.error().message);
    if (auto pending = pendingJournalMessage(store_, target.name)) return refuse(*pending);
    auto live = connectAndObserve(target, providers_);
    if (!live) return refuse(live.error().message);
    provider_ = live->provider;
    auto stOr = store_.load(target.name);
    if (!stOr) return refuse("state: " + stOr.error().message);
    state::TargetState st = std::move(*stOr);

    auto changes = planTowards(expected, live->observed, *provider_, target_);
    Plan slice;
    slice.changes = changes;
    std::vector<Step> steps = slice.steps();
    state::Journal journal;
    journal.id = randomHex(8);
    journal.target = target.name;
    journal.targetSpec = target;
    journal.provider = target.provider;
    journal.operation = "rollback";
    journal.started = state::nowRfc3339();
    journal.pid = static_cast<int64_t>(getpid());
    for (const auto& c : changes) {
      journal.preImage[c.addr] = c.before;
      journal.preOwned[c.addr] = st.owned.count(c.addr) != 0;
    }
    journal.steps = steps;
    if (Status s = store_.writeJournal(journal); !s) return refuse("cannot write the journal: " + s.error().message);
    Status executed = execute(*live->session, target.name, steps);
    if (executed.ok()) {
      auto problems = verify(*live->session, target.name, expected);
      if (problems.empty()) {
        state::TargetState next = st;
        for (const auto& [addr, want] : expected) {
          if (want) next.owned[addr] = state::OwnedObject{addr, target.provider, *want, st.generation + 1};
          else next.owned.erase(addr);
        }
        if (commit(next, st, target, "rollback", "rolled back to generation " + std::to_string(generation), "")) {
          keep(store_.clearJournal(target.name), "clearJournal");
          out_.result = TargetResult::Applied;
          out_.message = "rolled back to generation " + std::to_string(generation) + " (" +
                         std::to_string(steps.size()) + " step(s))";
        }
        return out_;
      }
      executed = err("verification failed:\n" + joinLines(problems));
    }
    return rollback(*live->session, journal, executed.error().message);
  }

 private:
  static std::optional<Attrs> liveAttrs(const Observation& obs, const Address& a) {
    auto it = obs.objects.find(a);
    if (it == obs.objects.end()) return std::nullopt;
    return it->second.attrs;
  }

  // A bookkeeping write that failed after the target itself is fine: say so, never hide it.
  void keep(const Status& s, const char* what) {
    if (s.ok()) return;
    out_.leftovers.push_back(std::string("state store: ") + what + ": " + s.error().message);
    out_.message += "\nwarning: state store: " + std::string(what) + " failed: " + s.error().message;
  }

  static bool sameOwned(const std::map<Address, state::OwnedObject>& a, const std::map<Address, state::OwnedObject>& b) {
    if (a.size() != b.size()) return false;
    for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib)
      if (ia->first != ib->first || !(ia->second.lastApplied == ib->second.lastApplied)) return false;
    return true;
  }

  TargetOutcome refuse(const std::string& message) {
    out_.result = TargetResult::Refused;
    out_.message = message;
    return out_;
  }

  // Holds the change un-committed until 'vnetplan confirm', all probes succeeding, or the deadline.
  Status awaitConfirmation(state::Journal& journal) {
    using clock = std::chrono::system_clock;
    const auto deadline = clock::now() + *opts_.confirmTimeout;
    journal.status = state::JournalStatus::AwaitingConfirm;
    journal.confirmDeadline = rfc3339(deadline);
    if (Status s = store_.writeJournal(journal); !s) return err("cannot write the journal: " + s.error().message);
    keep(store_.clearConfirm(journal.target), "clear confirm");
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
          if (Status ps = runProbe(p, std::chrono::milliseconds(1000)); !ps) {
            all = false;
            lastProbeError = ps.error().message;
            break;
          }
        if (all) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (clock::now() >= deadline) {
      keep(store_.clearConfirm(journal.target), "clear confirm");
      return err("not confirmed within " + std::to_string(secs) + "s" +
                 (lastProbeError.empty() ? "" : " (last probe failure: " + lastProbeError + ")"));
    }
    keep(store_.clearConfirm(journal.target), "clear confirm");
    if (opts_.progress) opts_.progress->note(journal.target, "confirmed");
    return {};
  }

  static std::string rfc3339(std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
  }

  Status execute(TargetSession& session, const std::string& target, const std::vector<Step>& steps) {
    if (session.mode() == TargetSession::Mode::Atomic) return executeAsOne(session, target, steps);
    for (size_t i = 0; i < steps.size(); ++i) {
      if (opts_.interrupted && opts_.interrupted->load())
        return err("interrupted before step " + std::to_string(i + 1) + " of " + std::to_string(steps.size()));
      if (opts_.faults.slowStepMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opts_.faults.slowStepMs));
      long n = ++counter_.executed;
      if (opts_.faults.failAtStep > 0 && n == opts_.faults.failAtStep)
        return err("injected failure at step " + std::to_string(n) + " (" + provider_->describe(steps[i], target_) + ")");
      if (Status s = session.apply(steps[i]); !s)
        return err("step " + std::to_string(i + 1) + "/" + std::to_string(steps.size()) + " (" +
                   provider_->describe(steps[i], target_) + "): " + s.error().message);
      if (opts_.progress) opts_.progress->step(target, i + 1, steps.size(), provider_->describe(steps[i], target_));
    }
    return {};
  }

  bool untouched_ = false;  // the last execute failed without committing anything

  // A transactional backend: every step in one transaction, all or nothing. An injected failure at step k
  // becomes an operation inside the transaction that fails, so nothing of it is committed.
  Status executeAsOne(TargetSession& session, const std::string& target, const std::vector<Step>& steps) {
    if (steps.empty()) return {};
    if (opts_.interrupted && opts_.interrupted->load()) return err("interrupted before the transaction was sent");
    if (opts_.faults.slowStepMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opts_.faults.slowStepMs));
    const long first = counter_.executed + 1;
    counter_.executed += static_cast<long>(steps.size());
    const long k = opts_.faults.failAtStep;
    if (k >= first && k <= counter_.executed) session.injectFailure(k - first);
    if (opts_.progress) opts_.progress->note(target, "sending " + std::to_string(steps.size()) + " step(s) as one transaction");
    auto r = session.applyBatch(steps, [&](size_t i) {
      if (opts_.progress) opts_.progress->step(target, i + 1, steps.size(), provider_->describe(steps[i], target_));
    });
    untouched_ = !r.status && r.notCommitted;
    if (!r.status) {
      size_t i = std::min(r.failedIndex, steps.size() - 1);
      return err("step " + std::to_string(i + 1) + "/" + std::to_string(steps.size()) + " (" +
                 provider_->describe(steps[i], target_) + "): " + r.status.error().message);
    }
    if (opts_.faults.failAfterCommit) return err("injected failure after the transaction committed");
    return {};
  }

  std::vector<std::string> verify(TargetSession& session, const std::string& target,
                                  const std::map<Address, std::optional<Attrs>>& expected) {
    if (opts_.progress) opts_.progress->note(target, "verifying");
    std::vector<std::string> problems;
    auto backoff = opts_.verifyBackoff;
    for (int attempt = 1; attempt <= std::max(1, opts_.verifyAttempts); ++attempt) {
      auto obs = session.observe();
      if (!obs) {
        problems = {"observe: " + obs.error().message};
      } else {
        problems = verifyAgainst(expected, *obs, *provider_);
        if (problems.empty()) return problems;
      }
      if (attempt < opts_.verifyAttempts) {
        std::this_thread::sleep_for(backoff);
        backoff *= 2;
      }
    }
    return problems;
  }

  // Reconcile toward the journal's pre-image, verify, and record the outcome.
  TargetOutcome rollback(TargetSession& session, state::Journal journal, const std::string& why) {
    if (opts_.progress) opts_.progress->note(journal.target, "failed: " + why + "; rolling back");
    journal.status = state::JournalStatus::RollingBack;
    journal.error = why;
    keep(store_.writeJournal(journal), "writeJournal");

    std::vector<std::string> problems;
    auto obs = session.observe();
    if (!obs) {
      problems = {"cannot observe the target to roll back: " + obs.error().message};
    } else {
      auto changes = planTowards(journal.preImage, *obs, *provider_, target_);
      Plan slice;
      slice.changes = changes;
      std::vector<Step> steps = slice.steps();
      std::vector<std::string> stepErrors;
      if (session.mode() == TargetSession::Mode::Atomic) {
        // A second transaction, back to the pre-image.
        if (auto r = session.applyBatch(steps, nullptr); !r.status)
          stepErrors.push_back("the rollback transaction failed: " + r.status.error().message);
      } else {
        // Best effort: keep going past a failing step so as much as possible is restored.
        for (const auto& step : steps) {
          if (Status s = session.apply(step); !s)
            stepErrors.push_back(provider_->describe(step, target_) + ": " + s.error().message);
        }
      }
      problems = verify(session, journal.target, journal.preImage);
      if (!problems.empty()) problems.insert(problems.end(), stepErrors.begin(), stepErrors.end());
    }

    if (problems.empty()) {
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

  bool recordSuccess(const state::TargetState& st, const std::vector<const ResourceChange*>& mine, const Plan& plan,
                     const Target& target, bool executed) {
    state::TargetState next = st;
    bool ownershipChanged = false;
    size_t created = 0, updated = 0, deleted = 0;
    for (const ResourceChange* c : mine) {
      switch (c->action) {
        case Action::Delete:
          ownershipChanged |= next.owned.erase(c->addr) > 0;
          if (c->before) ++deleted;
          break;
        case Action::NoOp:
          if (!next.owned.count(c->addr)) ownershipChanged = true;
          next.owned[c->addr] = state::OwnedObject{c->addr, c->provider, *c->after,
                                                   next.owned.count(c->addr) ? next.owned[c->addr].sinceGeneration
                                                                             : st.generation + 1};
          break;
        default:
          if (c->action == Action::Create) ++created;
          else ++updated;
          next.owned[c->addr] = state::OwnedObject{c->addr, c->provider, *c->after,
                                                   next.owned.count(c->addr) ? next.owned[c->addr].sinceGeneration
                                                                             : st.generation + 1};
      }
    }
    if (!executed && !ownershipChanged) {
      // Keep lastApplied current (e.g. manifests reformatted) without a new generation.
      if (!sameOwned(next.owned, st.owned)) keep(store_.save(next), "save state");
      return true;
    }
    std::string summary = std::to_string(created) + " created, " + std::to_string(updated) + " updated, " +
                          std::to_string(deleted) + " deleted";
    return commit(next, st, target, "apply", summary, plan.manifestsDigest);
  }

  bool commit(state::TargetState next, const state::TargetState& prev, const Target& target,
              const std::string& operation, const std::string& summary, const std::string& digest) {
    next.target = target.name;
    next.generation = prev.generation + 1;
    state::Generation g;
    g.number = next.generation;
    g.created = state::nowRfc3339();
    g.operation = operation;
    g.manifestsDigest = digest;
    g.gitCommit = opts_.gitCommit;
    g.summary = summary;
    g.owned = next.owned;
    if (Status s = store_.addGeneration(target.name, g); !s) return fail("cannot record generation: " + s.error().message);
    if (Status s = store_.save(next); !s) return fail("cannot save state: " + s.error().message);
    out_.generation = next.generation;
    return true;
  }

  bool fail(const std::string& message) {
    out_.result = TargetResult::Damaged;
    out_.message = "the change was applied and verified, but " + message +
                   "; the journal is kept: run 'vnetplan rollback' to undo it";
    out_.leftovers = {message};
    return false;
  }

  state::Store& store_;
  const ProviderRegistry& providers_;
  const ApplyOptions& opts_;
  StepCounter& counter_;
  Provider* provider_ = nullptr;
  Target target_;
  TargetOutcome out_;
};

// Runs fn(i) for i in [0, n) on up to `parallelism` threads.
template <typename Fn>
void forEachParallel(size_t n, int parallelism, Fn fn) {
  size_t workers = std::min<size_t>(n, static_cast<size_t>(std::max(1, parallelism)));
  if (workers <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w)
    threads.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) fn(i);
    });
  for (auto& t : threads) t.join();
}

}  // namespace

Result<std::vector<std::unique_ptr<state::Lock>>> lockTargets(state::Store& store,
                                                              const std::vector<std::string>& targets,
                                                              const std::string& operation,
                                                              std::chrono::milliseconds wait) {
  std::vector<std::string> sorted = targets;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<std::unique_ptr<state::Lock>> locks;
  for (const auto& t : sorted) {
    auto l = store.lockTarget(t, operation, wait);
    if (!l) return l.error();
    locks.push_back(std::move(*l));
    if (auto pending = pendingJournalMessage(store, t)) return err(*pending);
  }
  return locks;
}

ApplyOutcome applyPlan(const Plan& plan, state::Store& store, const ProviderRegistry& providers,
                       const ApplyOptions& opts) {
  ApplyOutcome outcome;
  outcome.targets.resize(plan.targets.size());
  // Targets may refer to each other (a veth peer in another target's namespace): prepare them all first.
  std::vector<bool> prepared(plan.targets.size(), true);
  for (size_t i = 0; i < plan.targets.size(); ++i) {
    const Target& t = plan.targets[i];
    bool changes = std::any_of(plan.changes.begin(), plan.changes.end(), [&](const ResourceChange& c) {
      return c.addr.target == t.name && c.action != Action::NoOp;
    });
    Provider* p = providers.find(t.provider);
    if (!changes || !p) continue;
    if (Status s = p->prepare(t); !s) {
      prepared[i] = false;
      outcome.targets[i] = TargetOutcome{t.name, TargetResult::Refused, s.error().message, {}, 0};
    }
  }
  StepCounter counter;
  forEachParallel(plan.targets.size(), opts.parallelism, [&](size_t i) {
    if (!prepared[i]) return;
    TargetRun run(store, providers, opts, counter);
    outcome.targets[i] = run.apply(plan, plan.targets[i]);
  });
  return outcome;
}

Result<std::vector<std::string>> confirmPending(state::Store& store, const std::vector<std::string>& onlyTargets) {
  auto targets = store.targets();
  if (!targets) return targets.error();
  std::vector<std::string> confirmed;
  for (const auto& t : *targets) {
    if (!onlyTargets.empty() && std::find(onlyTargets.begin(), onlyTargets.end(), t) == onlyTargets.end()) continue;
    auto j = store.journal(t);
    if (!j) return j.error();
    if (!j->has_value() || (**j).status != state::JournalStatus::AwaitingConfirm) continue;
    if (Status s = store.confirm(t, (**j).id); !s) return s.error();
    confirmed.push_back(t);
  }
  return confirmed;
}

ApplyOutcome recoverJournals(state::Store& store, const ProviderRegistry& providers, const ApplyOptions& opts,
                             const std::vector<std::string>& onlyTargets) {
  ApplyOutcome outcome;
  auto targets = store.targets();
  if (!targets) {
    outcome.targets.push_back({"", TargetResult::Refused, "state: " + targets.error().message, {}, 0});
    return outcome;
  }
  std::vector<state::Journal> journals;
  for (const auto& t : *targets) {
    if (!onlyTargets.empty() && std::find(onlyTargets.begin(), onlyTargets.end(), t) == onlyTargets.end()) continue;
    auto j = store.journal(t);
    if (!j) {
      outcome.targets.push_back({t, TargetResult::Refused, "journal: " + j.error().message, {}, 0});
      continue;
    }
    if (j->has_value()) journals.push_back(**j);
  }
  size_t base = outcome.targets.size();
  outcome.targets.resize(base + journals.size());
  StepCounter counter;
  forEachParallel(journals.size(), opts.parallelism, [&](size_t i) {
    TargetRun run(store, providers, opts, counter);
    outcome.targets[base + i] = run.recover(journals[i]);
  });
  return outcome;
}

ApplyOutcome rollbackToGeneration(const Target& target, int64_t generation, state::Store& store,
                                  const ProviderRegistry& providers, const ApplyOptions& opts) {
  ApplyOutcome outcome;
  auto g = store.generation(target.name, generation);
  auto st = store.load(target.name);
  if (!g || !st || !g->has_value()) {
    std::string why = !g ? g.error().message
                      : !st ? st.error().message
                            : "target " + target.name + " has no generation " + std::to_string(generation) +
                                  " (see 'vnetplan state history " + target.name + "')";
    outcome.targets.push_back({target.name, TargetResult::Refused, why, {}, 0});
    return outcome;
  }
  // Everything owned now or then: objects of generation N come back as they were; newer ones go away.
  std::map<Address, std::optional<Attrs>> expected;
  for (const auto& [addr, obj] : st->owned) expected[addr] = std::nullopt;
  for (const auto& [addr, obj] : (**g).owned) expected[addr] = obj.lastApplied;
  StepCounter counter;
  TargetRun run(store, providers, opts, counter);
  outcome.targets.push_back(run.reconcileTo(target, expected, generation));
  return outcome;
}

}  // namespace vnetplan
