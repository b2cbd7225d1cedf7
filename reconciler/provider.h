// The provider interface: everything the core knows about a provider.
//
// A provider is registered by name ("linux", "ovs", ...). For each kind it supports it publishes KindTraits
// (data, not code: which attribute changes force a replace, which are disruptive, which lists are unordered).
// The core asks it to check and normalize desired resources at plan time, connects one TargetSession per
// target, observes live state through it, and executes plan steps through it one at a time (or as one
// transaction where the backend is transactional).
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/diag.h"
#include "model/model.h"
#include "model/step.h"
#include "base/probe.h"
#include "base/result.h"
#include "base/socket.h"

namespace vnetplan {

// How verification waits for a kind to settle after a change (nmstate's per-interface retries): the target is
// re-observed up to `attempts` times, `firstBackoff` apart at first and doubling. A kind that settles slowly (a
// bond's carrier, a daemon's cur_cfg, a cloud's port status) asks for more.
struct VerifyPolicy {
  int attempts = 5;
  std::chrono::milliseconds firstBackoff{50};
};

struct KindTraits {
  Kind kind;
  // Attribute paths (exact, or prefix ending in '.') whose change cannot be made in place: delete + create.
  std::vector<std::string> replaceOn;
  // Attribute paths that can be set in place but not removed again (a tap's owner): going back to unset is a
  // replace.
  std::vector<std::string> replaceOnRemove;
  // Attribute paths whose in-place update still disrupts traffic (links flap).
  std::vector<std::string> disruptiveOn;
  // Attribute paths holding lists whose order has no meaning (sorted before comparing).
  std::vector<std::string> unorderedLists;
  // Defaults applied to desired attributes the manifest leaves unset (shown as "default" in the plan).
  std::map<std::string, Json> defaults;
  // The provider observes only attributes it manages, so a live attribute the manifest leaves out is a
  // difference too (the plan removes it). Otherwise only the manifest's attributes are compared.
  bool exhaustive = false;
  // In an exhaustive kind, attribute paths managed only where the manifest sets them (an OVS internal port's
  // admin state and addresses, which live in the kernel, not in OVSDB): observed and shown, but a live value the
  // manifest leaves out is left as it is, not a difference.
  std::vector<std::string> managedOnlyWhenSet;
  VerifyPolicy verify;
};

// A live connection to one target (a netns, an OVSDB socket, an SSH session, a cloud endpoint).
class TargetSession {
 public:
  virtual ~TargetSession() = default;
  virtual Result<Observation> observe() = 0;

  // How a target's steps are executed, which decides what a failure leaves behind:
  //   StepByStep: one apply(step) at a time (netlink); after a failure, the steps before it are done.
  //   Batched:    several steps per round trip (esxcli commands in one SSH exec) through applyBatch, which
  //               reports per step; after a failure, exactly the steps it reported done are done.
  //   Atomic:     every step of the target in one transaction (OVSDB, an nftables batch) through applyBatch;
  //               a failure with `notCommitted` left the target exactly as it was.
  enum class Mode { StepByStep, Batched, Atomic };
  virtual Mode mode() const { return Mode::StepByStep; }
  virtual Status apply(const Step& step) = 0;
  struct BatchResult {
    Status status;
    size_t failedIndex = 0;     // the step that failed (its predecessors are done, unless notCommitted)
    bool notCommitted = false;  // Atomic: the failure left the target exactly as it was
  };
  // Runs `steps` in order and stops at the first failure; `done(i)` is called once step i is known to be
  // done. The default runs apply() per step; Batched and Atomic sessions override it.
  virtual BatchResult applyBatch(const std::vector<Step>& steps, const std::function<void(size_t)>& done);
  // Batched: how many steps one applyBatch call should get (the applier cuts the plan into batches this size,
  // recording progress in the journal between them). Atomic sessions get every step at once.
  virtual size_t batchSize() const { return 1; }
  // A connectivity probe (apply --probe) run where the target's traffic is: a linux target inside its network
  // namespace; others from where vnetplan runs (the default).
  virtual Status probe(const Probe& p, std::chrono::milliseconds timeout) { return runProbe(p, timeout); }
  // Test hook (VNETPLAN_FAIL_AT_STEP) for Atomic and Batched sessions: the next applyBatch fails at step
  // `index` (0-based) the way the backend fails (Atomic: inside the transaction, so nothing commits).
  virtual void injectFailure(long index) { (void)index; }
  // How many steps of one batch a Batched session may run at once (--parallelism), where its backend takes
  // concurrent requests; the applier sets it before the first step.
  virtual void setParallelism(int n) { (void)n; }
  // Work the steps deferred to be committed together, once per apply (e.g. every nftables change of a linux
  // target in one atomic batch). The applier calls flush() after the last step of an apply or a rollback,
  // before verifying; a failed flush commits none of it. discard() drops deferred work that was not flushed:
  // the applier calls it before rolling back, so what a failed apply left pending is never committed later.
  virtual Status flush() { return {}; }
  virtual void discard() {}
};

inline constexpr std::chrono::milliseconds kDefaultTargetTimeout{60000};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual std::string_view name() const = 0;
  // nullptr when the provider cannot express this kind at all.
  virtual const KindTraits* traits(Kind kind) const = 0;
  // Plan-time checks of the Target's connection fields.
  virtual void checkTarget(const Target& target, Diagnostics& diags) const = 0;
  // Plan-time capability check: reject, with the provider, field and reason, anything it cannot express.
  virtual void check(const Resource& desired, const Target& target, Diagnostics& diags) const = 0;
  // Plan-time checks across all of one target's resources (e.g. names that share one namespace).
  virtual void checkTogether(const Target& target, const std::vector<const Resource*>& resources,
                             Diagnostics& diags) const {
    (void)target, (void)resources, (void)diags;
  }
  // Plan-time check of a change of an existing object against what it is live (what only the target knows, e.g.
  // that a Network's bridge is someone else's): errors name the provider, the field and why, like check()'s.
  virtual void checkChange(const Resource& desired, const Attrs& live, Diagnostics& diags) const {
    (void)desired, (void)live, (void)diags;
  }
  // Provider-specific normalization of desired attributes (units, spellings). Defaults come from traits.
  virtual void normalize(Resource& desired) const { (void)desired; }
  // Connects to the target. Everything the session does to connect and then observe is bounded so that it ends by
  // `deadline` (--target-timeout): a slow or unreachable target becomes an error for that target, never a hang.
  virtual Result<std::unique_ptr<TargetSession>> connect(const Target& target, Deadline deadline) = 0;
  // With the default deadline (kDefaultTargetTimeout from now).
  Result<std::unique_ptr<TargetSession>> connect(const Target& target) {
    return connect(target, SteadyClock::now() + kDefaultTargetTimeout);
  }
  // Called at apply time for every target with changes, one after another, before any target's steps run:
  // creates what the target itself needs (e.g. a namespace with createNetns), since another target's steps
  // may refer to it. Plan and observe never create anything.
  virtual Status prepare(const Target& target) {
    (void)target;
    return {};
  }
  // Human description of a step on `target`, e.g. "create bridge br-prod (mtu 9000) in netns demo".
  virtual std::string describe(const Step& step, const Target& target) const;
};

// Providers by name. The binary builds one (cli/providers.h) and hands it to the core, which never names a
// provider itself.
class ProviderRegistry {
 public:
  void add(std::unique_ptr<Provider> p);
  Provider* find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::vector<std::unique_ptr<Provider>> providers_;
};

// Failure injection for tests: VNETPLAN_FAIL_AT_STEP=k makes the k-th executed step (1-based, counted
// across the whole apply) fail before it runs; VNETPLAN_SLOW_STEP_MS=n sleeps n ms before every step (once
// before a transaction).
struct FaultInjection {
  static FaultInjection fromEnv();
  long failAtStep = 0;
  long slowStepMs = 0;
  // VNETPLAN_FAIL_AFTER_COMMIT=1: a transactional target's apply fails right after its transaction committed
  // (as if verification had failed), so the rollback runs as a second transaction.
  bool failAfterCommit = false;
  // VNETPLAN_FAIL_AT_FLUSH=1: the flush of an apply's deferred work fails before anything of it is committed.
  bool failAtFlush = false;
};

}  // namespace vnetplan
