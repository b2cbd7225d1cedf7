#include "reconciler/applier.h"

#include <algorithm>
#include <map>

#include "model/codec.h"
#include "reconciler/fanout.h"
#include "reconciler/journaled_run.h"
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

using detail::joinLines;
using detail::JournaledRun;
using detail::StepCounter;

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

std::optional<Attrs> liveAttrs(const Observation& obs, const Address& a) {
  auto it = obs.objects.find(a);
  if (it == obs.objects.end()) return std::nullopt;
  return it->second.attrs;
}

bool sameOwned(const std::map<Address, state::OwnedObject>& a, const std::map<Address, state::OwnedObject>& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib)
    if (ia->first != ib->first || !(ia->second.lastApplied == ib->second.lastApplied)) return false;
  return true;
}

TargetOutcome refused(const std::string& target, const std::string& message) {
  TargetOutcome o;
  o.target = target;
  o.result = TargetResult::Refused;
  o.message = message;
  return o;
}

// The provider ids and revisions of the owned objects, as the verifying observation saw them.
void recordIdentities(state::TargetState& next, const Observation& verified) {
  for (auto& [addr, obj] : next.owned)
    if (auto it = verified.objects.find(addr); it != verified.objects.end()) obj.identity = it->second.identity;
}

// Records a new generation and the state after it (the caller's journaled run then clears the journal).
bool commitState(state::Store& store, const ApplyOptions& opts, state::TargetState next, const state::TargetState& prev,
                 const Target& target, const std::string& operation, const std::string& summary,
                 const std::string& digest, TargetOutcome& out) {
  auto fail = [&](const std::string& message) {
    out.result = TargetResult::Damaged;
    out.message = "the change was applied and verified, but " + message +
                  "; the journal is kept: run 'vnetplan rollback' to undo it";
    out.leftovers = {message};
    return false;
  };
  next.target = target.name;
  next.generation = prev.generation + 1;
  state::Generation g;
  g.number = next.generation;
  g.created = state::nowRfc3339();
  g.operation = operation;
  g.manifestsDigest = digest;
  g.gitCommit = opts.gitCommit;
  g.summary = summary;
  g.owned = next.owned;
  if (Status s = store.addGeneration(target.name, g); !s) return fail("cannot record generation: " + s.error().message);
  if (Status s = store.save(next); !s) return fail("cannot save state: " + s.error().message);
  out.generation = next.generation;
  return true;
}

// The state after `mine` was applied: created/updated/adopted objects owned with their new values, deleted ones
// forgotten. Returns the summary ("1 created, 0 updated, 0 deleted") and whether ownership changed.
state::TargetState stateAfter(const state::TargetState& st, const std::vector<const ResourceChange*>& mine,
                              std::string* summary, bool* ownershipChanged) {
  state::TargetState next = st;
  size_t created = 0, updated = 0, deleted = 0;
  bool changed = false;
  for (const ResourceChange* c : mine) {
    if (c->action == Action::Delete) {
      changed |= next.owned.erase(c->addr) > 0;
      if (c->before) ++deleted;
      continue;
    }
    if (c->action == Action::Create) ++created;
    else if (c->action != Action::NoOp) ++updated;
    if (!next.owned.count(c->addr)) changed = true;
    const int64_t since = next.owned.count(c->addr) ? next.owned[c->addr].sinceGeneration : st.generation + 1;
    next.owned[c->addr] = state::OwnedObject{c->addr, c->provider, *c->after, since};
  }
  *summary = std::to_string(created) + " created, " + std::to_string(updated) + " updated, " +
             std::to_string(deleted) + " deleted";
  *ownershipChanged = changed;
  return next;
}

// Applies this target's slice of the plan.
TargetOutcome applyTarget(const Plan& plan, const Target& target, state::Store& store, const ProviderRegistry& providers,
                          const ApplyOptions& opts, StepCounter& counter) {
  std::unique_ptr<state::Lock> lock;
  if (!opts.locksHeld) {
    auto l = store.lockTarget(target.name, "apply", opts.lockTimeout);
    if (!l) return refused(target.name, l.error().message);
    lock = std::move(*l);
  }
  if (auto pending = pendingJournalMessage(store, target.name)) return refused(target.name, *pending);

  auto live = connectAndObserve(target, providers);
  if (!live) return refused(target.name, live.error().message);

  std::vector<const ResourceChange*> mine;
  for (const auto& c : plan.changes)
    if (c.addr.target == target.name) mine.push_back(&c);

  // Refuse a stale plan: anything it touches must still look exactly as it did when planned.
  std::vector<std::string> moved;
  for (const ResourceChange* c : mine) {
    auto fp = plan.liveFingerprints.find(c->addr.str());
    if (fp == plan.liveFingerprints.end()) continue;
    auto it = live->observed.objects.find(c->addr);
    if (fingerprint(it == live->observed.objects.end() ? nullptr : &it->second) != fp->second)
      moved.push_back(c->addr.str());
  }
  if (!moved.empty())
    return refused(target.name, "the plan is stale: live state changed since it was made for:\n" + joinLines(moved) +
                                    "Run plan again.");

  auto stOr = store.load(target.name);
  if (!stOr) return refused(target.name, "state: " + stOr.error().message);
  const state::TargetState st = std::move(*stOr);

  Plan slice;
  for (const ResourceChange* c : mine) slice.changes.push_back(*c);
  std::string summary;
  bool ownershipChanged = false;
  state::TargetState next = stateAfter(st, mine, &summary, &ownershipChanged);

  JournaledRun::Change change;
  change.operation = "apply";
  change.steps = slice.steps();
  TargetOutcome out;
  out.target = target.name;
  if (change.steps.empty()) {
    // Nothing to execute; ownership may still change (adopted no-ops, forgotten objects).
    recordIdentities(next, live->observed);
    if (!ownershipChanged) {
      // Keep lastApplied current (e.g. manifests reformatted) without a new generation.
      if (!sameOwned(next.owned, st.owned))
        if (Status s = store.save(next); !s) out.message = "\nwarning: state store: save state failed: " + s.error().message;
    } else if (!commitState(store, opts, next, st, target, "apply", summary, plan.manifestsDigest, out)) {
      return out;
    }
    out.result = TargetResult::NoChanges;
    out.message = "no changes" + out.message;
    return out;
  }
  for (const ResourceChange* c : mine) {
    if (c->action == Action::NoOp) continue;
    change.preImage[c->addr] = liveAttrs(live->observed, c->addr);
    change.preOwned[c->addr] = st.owned.count(c->addr) != 0;
    change.expected[c->addr] = c->action == Action::Delete ? std::nullopt : c->after;
  }
  JournaledRun run(store, opts, counter, *live->provider, *live->session, target);
  const size_t nSteps = change.steps.size();
  return run.run(change, [&](TargetOutcome& o) {
    recordIdentities(next, run.verified());
    if (!commitState(store, opts, next, st, target, "apply", summary, plan.manifestsDigest, o)) return false;
    o.result = TargetResult::Applied;
    o.message = std::to_string(nSteps) + " step(s) applied and verified";
    return true;
  });
}

// Reconciles a target's owned objects toward `expected` (rollback --to).
TargetOutcome reconcileTarget(const Target& target, const std::map<Address, std::optional<Attrs>>& expected,
                              int64_t generation, state::Store& store, const ProviderRegistry& providers,
                              const ApplyOptions& opts, StepCounter& counter) {
  auto lock = store.lockTarget(target.name, "rollback", opts.lockTimeout);
  if (!lock) return refused(target.name, lock.error().message);
  if (auto pending = pendingJournalMessage(store, target.name)) return refused(target.name, *pending);
  auto live = connectAndObserve(target, providers);
  if (!live) return refused(target.name, live.error().message);
  auto stOr = store.load(target.name);
  if (!stOr) return refused(target.name, "state: " + stOr.error().message);
  const state::TargetState st = std::move(*stOr);

  Plan slice;
  slice.changes = planTowards(expected, live->observed, *live->provider, target);
  JournaledRun::Change change;
  change.operation = "rollback";
  change.steps = slice.steps();
  for (const auto& c : slice.changes) {
    change.preImage[c.addr] = c.before;
    change.preOwned[c.addr] = st.owned.count(c.addr) != 0;
  }
  change.expected = expected;
  state::TargetState next = st;
  for (const auto& [addr, want] : expected) {
    if (want) next.owned[addr] = state::OwnedObject{addr, target.provider, *want, st.generation + 1};
    else next.owned.erase(addr);
  }
  const size_t nSteps = change.steps.size();
  JournaledRun run(store, opts, counter, *live->provider, *live->session, target);
  return run.run(change, [&](TargetOutcome& o) {
    recordIdentities(next, run.verified());
    const std::string what = "rolled back to generation " + std::to_string(generation);
    if (!commitState(store, opts, next, st, target, "rollback", what, "", o)) return false;
    o.result = TargetResult::Applied;
    o.message = what + " (" + std::to_string(nSteps) + " step(s))";
    return true;
  });
}

// Finishes the rollback recorded in an interrupted journal.
TargetOutcome recoverTarget(const state::Journal& journal, state::Store& store, const ProviderRegistry& providers,
                            const ApplyOptions& opts, StepCounter& counter) {
  auto lock = store.lockTarget(journal.target, "rollback", opts.lockTimeout);
  if (!lock) return refused(journal.target, lock.error().message);
  Provider* provider = providers.find(journal.targetSpec.provider);
  if (!provider) return refused(journal.target, "unknown provider '" + journal.targetSpec.provider + "'");
  auto session = provider->connect(journal.targetSpec);
  if (!session) return refused(journal.target, "connect: " + session.error().message);
  JournaledRun run(store, opts, counter, *provider, **session, journal.targetSpec);
  return run.recover(journal);
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
    outcome.targets[i] = applyTarget(plan, plan.targets[i], store, providers, opts, counter);
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
    outcome.targets[base + i] = recoverTarget(journals[i], store, providers, opts, counter);
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
  outcome.targets.push_back(reconcileTarget(target, expected, generation, store, providers, opts, counter));
  return outcome;
}

}  // namespace vnetplan
