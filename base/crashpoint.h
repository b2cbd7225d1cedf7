// Kill points for crash-safety tests: with VNETPLAN_CRASH_AT=N the process kills itself (SIGKILL, as a power cut
// or `kill -9` would) at the Nth point it passes; with VNETPLAN_CRASH_LOG=FILE every point passed is appended to
// FILE (so a test first counts the points of a run, then kills it at each one). Points are placed before every
// state-store write and around every provider call that changes a target. Without the variables: a no-op.
#pragma once
#include <string_view>

namespace vnetplan {

void crashPoint(std::string_view what);

}  // namespace vnetplan
