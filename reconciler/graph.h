// The declared topology as a picture (`vnetplan graph`): targets as clusters, resources as nodes, references
// as arrows.
#pragma once
#include <string>

#include "model/model.h"

namespace vnetplan {

std::string renderGraphDot(const DesiredState& desired);
std::string renderGraphMermaid(const DesiredState& desired);

}  // namespace vnetplan
