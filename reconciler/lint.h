// Lint: field knowledge that needs no live state (DESIGN §8). Each rule is one small function in a table.
#pragma once
#include "model/diag.h"
#include "model/model.h"

namespace vnetplan {

struct LintRule {
  const char* id;           // "lint/bond-mode"
  const char* description;  // shown by `vnetplan validate --list-rules`
  void (*run)(const DesiredState& desired, Diagnostics& diags);
};

const std::vector<LintRule>& lintRules();
void lint(const DesiredState& desired, Diagnostics& diags);

}  // namespace vnetplan
