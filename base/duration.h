// Durations as users write them on the command line and in URLs: "30" (seconds), "500ms", "10s", "5m", "2h".
#pragma once
#include <chrono>
#include <optional>
#include <string>

namespace vnetplan {

// nullopt for anything else, including more than 9 digits (so no value overflows).
std::optional<std::chrono::milliseconds> parseDuration(const std::string& s);

}  // namespace vnetplan
