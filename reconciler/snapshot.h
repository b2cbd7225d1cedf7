// Snapshots of live state for offline planning: `vnetplan show --snapshot` writes one, `plan --observed` reads it.
// Format (also the golden tests' observed.json):
//   {"TARGET": {"live": {"ADDRESS": {attrs...}}, "owned": {"ADDRESS": {last applied attrs...}}}}
#pragma once
#include <map>
#include <string>

#include "reconciler/pipeline.h"

namespace vnetplan {

Json snapshotToJson(const std::map<std::string, TargetSnapshot>& snapshots);
Result<std::map<std::string, TargetSnapshot>> snapshotFromJson(const Json& j);

}  // namespace vnetplan
