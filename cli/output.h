// Terminal and log output for the CLI: logging setup, color decisions, progress reporters.
#pragma once
#include <memory>
#include <string>

#include "reconciler/progress.h"

namespace vnetplan::cli {

struct OutputOptions {
  std::string logLevel = "warn";   // trace|debug|info|warn|error|off
  std::string logFormat = "text";  // text|json
  bool noColor = false;
  int verbosity = 0;  // -v +1, -q -1
};

void setupLogging(const OutputOptions& o);
bool useColor(const OutputOptions& o, int fd);  // TTY, no --no-color, no NO_COLOR
// A status line on a TTY; structured log lines (spdlog, info level) otherwise.
std::unique_ptr<Progress> makeProgress(const OutputOptions& o);

}  // namespace vnetplan::cli
