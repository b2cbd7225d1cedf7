#include "reconciler/applier.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <thread>

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
    if (t.result == TargetResult::StateNotRecorded) code = std::max(code, 4);
    if (t.result == TargetResult::Refused || t.result == TargetResult::RolledBack) code = std::max(code, 1);
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

// The generation a successful change records (its `owned` is the new state).
state::Generation newGeneration(const ApplyOptions& opts, const state::TargetState& next, const state::TargetState& prev,
                                const std::string& operation, const std::string& summary, const std::string& digest) {
  state::Generation g;
  g.number = prev.generation + 1;
  g.created = state::nowRfc3339();
  g.operation = operation;
  g.manifestsDigest = digest;
  g.gitCommit = opts.gitCommit;
  g.summary = summary;
  g.owned = next.owned;
  g.connection = next.connection;
  return g;
}

// The state after `mine` is applied: created objects owned, adopted ones owned with what they were before the
// adoption (to release them later), deleted and released ones forgotten.
state::TargetState stateAfter(const state::TargetState& st, const std::vector<const ResourceChange*>& mine,
                              const std::map<Address, std::optional<Attrs>>& preImage, std::string* summary,
                              bool* ownershipChanged) {
  state::TargetState next = st;
  size_t created = 0, updated = 0, deleted = 0, adopted = 0, released = 0;
  bool changed = false;
  for (const ResourceChange* c : mine) {
    if (c->action == Action::Delete || c->action == Action::Release) {
      changed |= next.owned.erase(c->addr) > 0;
      if (c->action == Action::Release) ++released;
      else if (c->before) ++deleted;
      continue;
    }
    if (c->action == Action::Create) ++created;
    else if (c->action == Action::Update || c->action == Action::Replace) ++updated;
    auto existing = next.owned.find(c->addr);
    state::OwnedObject o;
    o.addr = c->addr;
    o.provider = c->provider;
    o.lastApplied = *c->after;
    o.sinceGeneration = existing != next.owned.end() ? existing->second.sinceGeneration : st.generation + 1;
    if (existing != next.owned.end()) {
      o.adopted = existing->second.adopted && c->action != Action::Replace;  // a replaced object is ours
      o.preAdoption = o.adopted ? existing->second.preAdoption : std::nullopt;
      o.deleteOnRelease = c->deleteOnRelease;
    } else {
      changed = true;
      if (c->adopt && c->action != Action::Replace) {
        ++adopted;
        o.adopted = true;
        auto pre = preImage.find(c->addr);
        o.preAdoption = pre != preImage.end() && pre->second ? pre->second : c->before;
        o.deleteOnRelease = c->deleteOnRelease;
      }
    }
    next.owned[c->addr] = std::move(o);
  }
  *summary = std::to_string(created) + " created, " + std::to_string(updated) + " updated, " +
             std::to_string(deleted) + " deleted";
  if (adopted) *summary += ", " + std::to_string(adopted) + " adopted";
  if (released) *summary += ", " + std::to_string(released) + " released";
  *ownershipChanged = changed;
  return next;
}

// "hv1/Switch/br0: mtu: 1500 when planned, 9000 now" for each attribute that moved since the plan was made.
std::vector<std::string> movedAttributes(const ResourceChange& c, const ObservedObject* live, const Provider& provider) {
  std::vector<std::string> out;
  if (!c.before && live) return {c.addr.str() + ": absent when planned, exists now"};
  if (c.before && !live) return {c.addr.str() + ": existed when planned, gone now"};
  if (!c.before || !live) return out;
  const KindTraits* tr = provider.traits(c.addr.kind);
  for (const auto& path : diffExact(*c.before, live->attrs, tr ? *tr : KindTraits{})) {
    const Json* then = c.before->find(path);
    const Json* now = live->attrs.find(path);
    out.push_back(c.addr.str() + ": " + path + ": " + (then ? then->dump() : "(unset)") + " when planned, " +
                  (now ? now->dump() : "(unset)") + " now");
  }
  if (out.empty() && !(c.identity == live->identity))
    out.push_back(c.addr.str() + ": changed by someone else (revision " + c.identity.revision + " when planned, " +
                  live->identity.revision + " now)");
  return out;
}

// A plan whose every change is already what is live: it was applied before.
bool alreadyApplied(const std::vector<const ResourceChange*>& mine, const Observation& live, const Provider& provider) {
  bool any = false;
  for (const ResourceChange* c : mine) {
    if (c->action == Action::NoOp || c->action == Action::Adopt) continue;
    any = true;
    auto it = live.objects.find(c->addr);
    if (c->action == Action::Delete) {
      if (it != live.objects.end()) return false;
      continue;
    }
    if (it == live.objects.end() || !c->after) return false;
    const KindTraits* tr = provider.traits(c->addr.kind);
    if (!diffAttrs(*c->after, it->second.attrs, tr ? *tr : KindTraits{}).empty()) return false;
  }
  return any;
}

// What a plan may do on this target, checked again at apply time against state and live (a plan file can be
// edited): change or delete only objects vnetplan owns (or adopts, where the plan says so for an object that
// exists), and only objects whose live state the plan fingerprinted.
std::vector<std::string> forbiddenChanges(const std::vector<const ResourceChange*>& mine, const Plan& plan,
                                          const state::TargetState& st, const Observation& live) {
  std::vector<std::string> out;
  for (const ResourceChange* c : mine) {
    if (c->action == Action::NoOp) continue;
    const std::string a = c->addr.str();
    if (!plan.liveFingerprints.count(a)) {
      out.push_back(a + ": " + actionName(c->action) + " of an object the plan did not observe");
      continue;
    }
    const bool owned = st.owned.count(c->addr) != 0;
    const bool exists = live.objects.count(c->addr) != 0;
    switch (c->action) {
      case Action::Delete:
      case Action::Release:
        if (!owned) out.push_back(a + ": " + actionName(c->action) + " of an object vnetplan does not own");
        break;
      case Action::Update:
      case Action::Replace:
        if (!owned && !(c->adopt && exists))
          out.push_back(a + ": " + actionName(c->action) + " of an object vnetplan does not own");
        break;
      case Action::Adopt:
        if (owned) out.push_back(a + ": adopt of an object vnetplan already owns");
        break;
      case Action::Create:
      case Action::NoOp:
        break;
    }
    if (c->action == Action::Release) {
      auto o = st.owned.find(c->addr);
      if (o != st.owned.end() && !o->second.adopted) out.push_back(a + ": release of an object vnetplan created");
    }
  }
  return out;
}

// The Target as the plan was made for it must be the one vnetplan owns objects through: a connection that moved
// (an edited plan, or a Target whose netns/db/host changed while it owns objects) would act on other objects.
std::optional<std::string> connectionMoved(const Target& target, const state::TargetState& st) {
  if (st.owned.empty() || st.connection.empty() || st.connection == toJson(target).dump()) return std::nullopt;
  return "target " + target.name + " is not the one vnetplan owns objects through: its connection was " +
         st.connection + " at the last apply and is " + toJson(target).dump() +
         " in this plan. Remove its resources with the old connection first (or restore it)";
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

  auto stOr = store.load(target.name);
  if (!stOr) return refused(target.name, "state: " + stOr.error().message);
  const state::TargetState st = std::move(*stOr);
  if (auto moved = connectionMoved(target, st)) return refused(target.name, *moved);

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
    const ObservedObject* obj = it == live->observed.objects.end() ? nullptr : &it->second;
    if (fingerprint(obj) != fp->second)
      for (const auto& m : movedAttributes(*c, obj, *live->provider)) moved.push_back(m);
  }
  if (!moved.empty()) {
    if (alreadyApplied(mine, live->observed, *live->provider))
      return refused(target.name, "this plan has already been applied: target " + target.name +
                                      " is as it says (generation " + std::to_string(st.generation) +
                                      "). Nothing to do; plan again for new changes.");
    return refused(target.name, "the plan is stale: live state changed since it was made:\n" + joinLines(moved) +
                                    "Run plan again.");
  }
  if (auto bad = forbiddenChanges(mine, plan, st, live->observed); !bad.empty())
    return refused(target.name, "the plan asks for changes vnetplan may not make (was the plan file edited?):\n" +
                                    joinLines(bad) + "Nothing was changed.");

  Plan slice;
  for (const ResourceChange* c : mine) slice.changes.push_back(*c);
  JournaledRun::Change change;
  change.operation = "apply";
  change.steps = slice.steps();
  for (const ResourceChange* c : mine) {
    if (c->action == Action::NoOp) continue;
    change.preImage[c->addr] = liveAttrs(live->observed, c->addr);
    if (c->action != Action::Adopt)
      change.expected[c->addr] = c->action == Action::Delete ? std::nullopt : c->after;
  }
  std::string summary;
  bool ownershipChanged = false;
  state::TargetState next = stateAfter(st, mine, change.preImage, &summary, &ownershipChanged);
  next.connection = toJson(target).dump();

  TargetOutcome out;
  out.target = target.name;
  if (change.steps.empty() && !ownershipChanged) {
    // Nothing to execute and nothing to own: keep lastApplied current (e.g. manifests reformatted) without a
    // new generation, in one atomic write.
    if (!sameOwned(next.owned, st.owned) || next.connection != st.connection)
      if (Status s = store.save(next); !s) out.message = "\nwarning: state store: save state failed: " + s.error().message;
    out.result = TargetResult::NoChanges;
    out.message = "no changes" + out.message;
    return out;
  }
  change.preState = st;
  change.commit = newGeneration(opts, next, st, "apply", summary, plan.manifestsDigest);
  change.successMessage = change.steps.empty() ? "ownership recorded (" + summary + ")"
                                               : std::to_string(change.steps.size()) + " step(s) applied and verified";
  JournaledRun run(store, opts, counter, *live->provider, *live->session, target);
  return run.run(change);
}

// Reconciles a target's owned objects toward generation `generation` (rollback --to): objects owned then come
// back as they were; objects created since are deleted; objects adopted since are released.
TargetOutcome reconcileTarget(const Target& target, int64_t generation, state::Store& store,
                              const ProviderRegistry& providers, const ApplyOptions& opts, StepCounter& counter,
                              const std::function<bool(const Plan&)>& approve) {
  auto lock = store.lockTarget(target.name, "rollback", opts.lockTimeout);
  if (!lock) return refused(target.name, lock.error().message);
  if (auto pending = pendingJournalMessage(store, target.name)) return refused(target.name, *pending);
  auto g = store.generation(target.name, generation);
  auto stOr = store.load(target.name);
  if (!g || !stOr || !g->has_value()) {
    return refused(target.name, !g ? g.error().message
                                : !stOr ? stOr.error().message
                                        : "target " + target.name + " has no generation " + std::to_string(generation) +
                                              " (see 'vnetplan state history " + target.name + "')");
  }
  const state::TargetState st = std::move(*stOr);
  const state::Generation& then = **g;
  auto live = connectAndObserve(target, providers);
  if (!live) return refused(target.name, live.error().message);

  std::map<Address, std::optional<Attrs>> expected;
  for (const auto& [addr, obj] : st.owned) {
    if (obj.adopted && !obj.deleteOnRelease && !then.owned.count(addr))
      expected[addr] = obj.preAdoption ? obj.preAdoption : liveAttrs(live->observed, addr);  // released
    else
      expected[addr] = std::nullopt;  // created since: goes away
  }
  for (const auto& [addr, obj] : then.owned) expected[addr] = obj.lastApplied;

  Plan slice;
  slice.targets = {target};
  slice.changes = planTowards(expected, live->observed, *live->provider, target);
  for (auto& c : slice.changes) {
    auto now = st.owned.find(c.addr);
    if (now != st.owned.end() && now->second.adopted && !then.owned.count(c.addr) && c.action != Action::NoOp) {
      c.action = Action::Release;
      c.reason = "adopted after generation " + std::to_string(generation) + ": released as it was when adopted";
    }
  }
  if (approve && !approve(slice)) return refused(target.name, "not approved; nothing was changed");

  JournaledRun::Change change;
  change.operation = "rollback";
  change.steps = slice.steps();
  for (const auto& c : slice.changes) change.preImage[c.addr] = c.before;
  change.expected = expected;
  state::TargetState next = st;
  next.owned = then.owned;
  next.connection = toJson(target).dump();
  change.preState = st;
  const std::string what = "rolled back to generation " + std::to_string(generation);
  change.commit = newGeneration(opts, next, st, "rollback", what, "");
  change.successMessage = what + " (" + std::to_string(change.steps.size()) + " step(s))";
  JournaledRun run(store, opts, counter, *live->provider, *live->session, target);
  return run.run(change);
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
  const std::string now = state::nowRfc3339();
  for (const auto& t : *targets) {
    if (!onlyTargets.empty() && std::find(onlyTargets.begin(), onlyTargets.end(), t) == onlyTargets.end()) continue;
    auto j = store.journal(t);
    if (!j) return j.error();
    if (!j->has_value() || (**j).status != state::JournalStatus::AwaitingConfirm) continue;
    // RFC 3339 UTC text compares in time order.
    if (!(**j).confirmDeadline.empty() && now >= (**j).confirmDeadline)
      return err("target " + t + ": the confirmation deadline passed at " + (**j).confirmDeadline +
                 "; its change is being rolled back and can no longer be confirmed");
    if (Status s = store.confirm(t, (**j).id); !s) return s.error();
    confirmed.push_back(t);
  }
  return confirmed;
}

ApplyOutcome superviseConfirmation(state::Store& store, const ProviderRegistry& providers, const std::string& target,
                                   const std::string& journalId, const ApplyOptions& opts) {
  ApplyOutcome outcome;
  // The apply is alive while it holds the target's lock: a dead process (even one not reaped yet) holds nothing.
  auto applyHoldsLock = [&]() {
    auto holder = store.lockHolder(target);
    return holder && holder->has_value();
  };
  for (;;) {
    auto j = store.journal(target);
    if (!j) {
      outcome.targets.push_back(refused(target, "journal: " + j.error().message));
      return outcome;
    }
    if (!j->has_value() || (**j).id != journalId) return outcome;  // finished: committed or rolled back
    const state::Journal& jr = **j;
    const bool applyAlive = applyHoldsLock();
    const bool pastDeadline = !jr.confirmDeadline.empty() && state::nowRfc3339() >= jr.confirmDeadline;
    auto confirmedOr = store.confirmed(target, journalId);
    const bool isConfirmed = confirmedOr && *confirmedOr;
    const bool ours = !applyAlive && ((jr.status == state::JournalStatus::AwaitingConfirm && (isConfirmed || pastDeadline)) ||
                                      jr.status == state::JournalStatus::Committing ||
                                      jr.status == state::JournalStatus::RollingBack);
    if (ours) {
      // The apply is gone: finish what it would have done, under the target's lock.
      auto lock = store.lockTarget(target, "confirm-watchdog", std::chrono::seconds(30));
      if (!lock) {
        outcome.targets.push_back(refused(target, lock.error().message));
        return outcome;
      }
      auto again = store.journal(target);
      if (!again || !again->has_value() || (**again).id != journalId) return outcome;
      state::Journal current = **again;
      Provider* provider = providers.find(current.targetSpec.provider);
      if (!provider) {
        outcome.targets.push_back(refused(target, "unknown provider '" + current.targetSpec.provider + "'"));
        return outcome;
      }
      auto session = provider->connect(current.targetSpec);
      if (!session) {
        // Cannot reach it now: try again (the deadline has passed; the rollback is still owed).
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      StepCounter counter;
      JournaledRun run(store, opts, counter, *provider, **session, current.targetSpec);
      const bool commitIt = current.status == state::JournalStatus::Committing ||
                            (current.status == state::JournalStatus::AwaitingConfirm && isConfirmed);
      outcome.targets.push_back(commitIt ? run.finishCommit(current)
                                         : run.recover(current));
      (void)store.clearConfirm(target);
      return outcome;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
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
                                  const ProviderRegistry& providers, const ApplyOptions& opts,
                                  const std::function<bool(const Plan&)>& approve) {
  ApplyOutcome outcome;
  StepCounter counter;
  outcome.targets.push_back(reconcileTarget(target, generation, store, providers, opts, counter, approve));
  return outcome;
}

}  // namespace vnetplan
