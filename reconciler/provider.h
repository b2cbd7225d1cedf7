// The provider interface: everything the core knows about a provider.
//
// A provider is registered by name ("linux", "ovs", ...). For each kind it supports it publishes KindTraits
// (data, not code: which attribute changes force a replace, which are disruptive, which lists are unordered).
// The core asks it to check and normalize desired resources at plan time, connects one TargetSession per
// target, observes live state through it, and executes plan steps through it one at a time (or as one
// transaction where the backend is transactional).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/diag.h"
#include "model/model.h"
#include "model/step.h"
#include "base/result.h"

namespace vnetplan {

struct KindTraits {
  Kind kind;
  // Attribute paths (exact, or prefix ending in '.') whose change cannot be made in place: delete + create.
  std::vector<std::string> replaceOn;
  // Attribute paths whose in-place update still disrupts traffic (links flap).
  std::vector<std::string> disruptiveOn;
  // Attribute paths holding lists whose order has no meaning (sorted before comparing).
  std::vector<std::string> unorderedLists;
  // Defaults applied to desired attributes the manifest leaves unset (shown as "default" in the plan).
  std::map<std::string, Json> defaults;
  // The provider observes only attributes it manages, so a live attribute the manifest leaves out is a
  // difference too (the plan removes it). Otherwise only the manifest's attributes are compared.
  bool exhaustive = false;
};

// A live connection to one target (a netns, an OVSDB socket, an SSH session, a cloud endpoint).
class TargetSession {
 public:
  virtual ~TargetSession() = default;
  virtual Result<Observation> observe() = 0;
  virtual Status apply(const Step& step) = 0;
  // Transactional backends (OVSDB, nftables batches) override both to run all steps as one transaction.
  virtual bool transactional() const { return false; }
  // Runs steps in order; stops at the first failure. `done(i)` is called after step i succeeded.
  // Returns the index of the failing step with its error, or ok.
  struct BatchResult {
    Status status;
    size_t failedIndex = 0;
    bool notCommitted = false;  // transactional: the failure left the target exactly as it was
  };
  virtual BatchResult applyAll(const std::vector<Step>& steps, const std::function<void(size_t)>& done);
  // Test hook (VNETPLAN_FAIL_AT_STEP) for transactional sessions: the next applyAll fails at step `index`
  // (0-based) inside the transaction, so nothing of it is committed.
  virtual void injectFailure(long index) { (void)index; }
};

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
  // Provider-specific normalization of desired attributes (units, spellings). Defaults come from traits.
  virtual void normalize(Resource& desired) const { (void)desired; }
  virtual Result<std::unique_ptr<TargetSession>> connect(const Target& target) = 0;
  // Called at apply time for every target with changes, one after another, before any target's steps run:
  // creates what the target itself needs (e.g. a namespace with createNetns), since another target's steps
  // may refer to it. Plan and observe never create anything.
  virtual Status prepare(const Target& target) {
    (void)target;
    return {};
  }
  // Human description of a step, e.g. "create bridge br-prod in netns demo (mtu 9000)".
  virtual std::string describe(const Step& step) const;
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
};

}  // namespace vnetplan
