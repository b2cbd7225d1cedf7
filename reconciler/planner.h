// Diff -> plan. Pure functions over plain values: desired resources, live observation, owned state.
// The same diff drives `plan`, post-apply verification and rollback (reconciling toward a pre-image).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "reconciler/plan.h"
#include "reconciler/provider.h"
#include "state/store.h"

namespace vnetplan {

// The usual order of kinds, used only to break ties between changes that do not refer to each other.
int kindRank(Kind k);

// Two attribute values equal after normalization (unordered lists compared as sorted; null == absent).
bool valuesEqual(const Json* desired, const Json* live, bool unordered);

// Paths of `desired` whose live value differs (attributes the desired side leaves out are not compared, unless
// the kind is exhaustive).
std::vector<std::string> diffAttrs(const Attrs& desired, const Attrs& live, const KindTraits& traits);
// Every path of either side whose values differ: for a pre-image (or pre-adoption) observation, which must be
// restored exactly, attributes it does not mention included.
std::vector<std::string> diffExact(const Attrs& want, const Attrs& live, const KindTraits& traits);

// Whether any of `paths` matches one of `patterns` (exact, or a prefix ending in '.').
bool matchesAny(const std::vector<std::string>& paths, const std::vector<std::string>& patterns);

// Fills unset desired attributes from the provider's defaults (origin: Default).
void applyDefaults(Resource& r, const KindTraits& traits);

// What vnetplan knows about one target while planning.
struct TargetView {
  const Target* target = nullptr;
  const Provider* provider = nullptr;
  const Observation* observed = nullptr;
  const std::map<Address, state::OwnedObject>* owned = nullptr;  // owned objects (last applied, adoption)
  // Whether the plan records the live fingerprints of what it touches (plan.liveFingerprints), which applying it
  // later needs; a plan that is only shown needs none (a sha256 per object).
  bool fingerprints = true;
};

// One target's slice of the plan. Collisions with unmanaged objects are reported as errors in diags.
void planTarget(const std::vector<const Resource*>& desired, const TargetView& view, Plan& plan,
                Diagnostics& diags);

// Rollback: the changes that bring live state back to a pre-image (nullopt = must not exist). The pre-image is
// an observation: every attribute is compared (diffExact), those it does not mention too.
std::vector<ResourceChange> planTowards(const std::map<Address, std::optional<Attrs>>& preImage,
                                        const Observation& live, const Provider& provider, const Target& target);

// Sorts changes into execution order: by target, then by the reference graph (what a resource refers to comes
// first: a Port's Switch, a Subnet's Vpc, a rule's other SecurityGroup); Plan::steps() deletes in reverse. A
// reference cycle is an error naming the resources in it.
Status orderChanges(std::vector<ResourceChange>& changes);

// Verification: every touched address whose live state does not match. Each entry is
// "ADDRESS: PATH: desired X, live Y" (or "ADDRESS: missing" / "ADDRESS: still present").
// With `exact`, every attribute is compared (a pre-image), not only those `expected` mentions (desired values).
std::vector<std::string> verifyAgainst(const std::map<Address, std::optional<Attrs>>& expected,
                                       const Observation& live, const Provider& provider, bool exact = false);

}  // namespace vnetplan
