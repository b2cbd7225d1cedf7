// The plan: a plain value. Built by the planner, rendered, saved, and executed by the applier.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "reconciler/provider.h"

namespace vnetplan {

// Adopt: take ownership of an existing object that already matches (an adopting Update or Replace says so with
// `adopt`). Release: hand an adopted object back as it was when adopted, dropping ownership (never delete it).
enum class Action { NoOp, Create, Update, Delete, Replace, Adopt, Release };
const char* actionName(Action a);           // "no-op", "create", ...
const char* actionSymbol(Action a);         // " ", "+", "~", "-", "-/+"

struct ResourceChange {
  Address addr;
  std::string provider;
  Action action = Action::NoOp;
  std::optional<Attrs> before;  // live (absent for create)
  std::optional<Attrs> after;   // desired (absent for delete)
  std::vector<std::string> changedPaths;
  std::string reason;
  bool disruptive = false;
  bool adopt = false;            // the change takes ownership of an existing object
  bool deleteOnRelease = false;  // the resource says onRelease: delete (recorded with the adoption)
  std::map<std::string, AttrOrigin> origins;  // of `after` attributes
  std::string description;  // provider's describe() of the main step
  ProviderIdentity identity;  // the live object's provider id and revision, when the provider reports them
};

// Live differs from what vnetplan last applied (someone changed it out of band).
struct DriftEntry {
  Address addr;
  std::optional<Attrs> lastApplied;
  std::optional<Attrs> live;  // absent = deleted out of band
  std::vector<std::string> paths;
};

// A target whose live state could not be read: nothing of it is planned (and so nothing applied).
struct UnreachableTarget {
  std::string target;
  std::string error;
};

struct Plan {
  // 2: plan_digest (a saved plan that was edited is refused as damaged), adopt/release actions.
  static constexpr int kFormatVersion = 2;
  std::string manifestsDigest;
  std::vector<std::string> manifestFiles;
  std::vector<Target> targets;                    // targets this plan touches
  std::vector<ResourceChange> changes;            // every desired/owned resource, execution order
  std::vector<DriftEntry> drift;
  std::map<std::string, std::string> liveFingerprints;  // address -> sha256 of live attrs ("absent")
  std::vector<Diagnostic> warnings;
  std::vector<UnreachableTarget> unreachable;  // targets left out: they could not be observed

  bool hasChanges() const;
  size_t count(Action a) const;
  size_t adoptions() const;       // Adopt actions and adopting updates/replaces
  size_t pendingChanges() const;  // every change that is not a no-op
  // The executable steps in dependency order: deletes (dependents first), then creates/updates.
  std::vector<Step> steps() const;
};

// The saved form carries `plan_digest`, a sha256 of its own content: planFromJson refuses a file whose content
// does not match it (edited, truncated, damaged).
Json planToJson(const Plan& plan);
Result<Plan> planFromJson(const Json& j);

}  // namespace vnetplan
