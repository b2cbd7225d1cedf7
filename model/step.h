// What a provider observes and what the engine asks it to do: live objects and executable steps. Shared by the
// engine (planning, applying, verifying), the state store (the journal records steps) and every provider.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"

namespace vnetplan {

// Where a live object lives on the provider's side, beyond its address: a provider that identifies objects by id
// (Neutron uuids, OVS row uuids) reports it, and one whose objects carry a revision (Neutron `revision_number`)
// reports that too, so an update can be guarded against a concurrent change. Both empty when the provider
// identifies objects by name only (netlink, esxcli).
struct ProviderIdentity {
  std::string id;        // provider-side id, stable for the object's lifetime
  std::string revision;  // changes with every modification; "" = not tracked
  bool empty() const { return id.empty() && revision.empty(); }
  bool operator==(const ProviderIdentity&) const = default;
};

// One live object as the provider sees it.
struct ObservedObject {
  Address addr;
  Attrs attrs;
  bool taggedByVnetplan = false;  // provider-side ownership marker (OVS external_ids, Neutron tags), if any
  ProviderIdentity identity;
};

struct Observation {
  std::map<Address, ObservedObject> objects;  // only kinds this provider manages
};

enum class StepAction { Create, Update, Delete };
const char* stepActionName(StepAction a);

// One executable change to one object. A plan's `replace` becomes Delete + Create.
struct Step {
  Address addr;
  StepAction action = StepAction::Create;
  Attrs before;  // live attributes (Update, Delete)
  Attrs after;   // desired attributes (Create, Update)
  std::vector<std::string> changed;  // Update: the attribute paths to change
  ProviderIdentity identity;  // Update, Delete: the live object's id and revision when the provider reports them
};

}  // namespace vnetplan
