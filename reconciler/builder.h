// Builds the desired state from schema-valid documents: Targets, selector fan-out, addresses and duplicate
// detection, references between resources, and policy inheritance (Switch -> PortGroup -> Port).
#pragma once
#include <vector>

#include "model/diag.h"
#include "reconciler/manifest.h"
#include "model/model.h"

namespace vnetplan {

// The policy blocks inherited Switch -> PortGroup -> Port unless overridden.
const std::vector<std::string>& inheritedPolicies();  // {"security", "shaping", "teaming"}

DesiredState buildDesiredState(const std::vector<Document>& docs, Diagnostics& diags);

}  // namespace vnetplan
