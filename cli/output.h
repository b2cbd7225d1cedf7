// Terminal and log output for the CLI: logging setup, color decisions, progress reporters.
#pragma once
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "reconciler/progress.h"

namespace vnetplan::cli {

struct OutputOptions {
  std::string logLevel = "warn";   // trace|debug|info|warn|error|off
  std::string logFormat = "text";  // text|json
  bool noColor = false;
  int verbosity = 0;  // -v +1, -q -1
};

void setupLogging(const OutputOptions& o);
// With --log-format json every line on stderr is one JSON object. jsonLogs() says whether that is so;
// writeJsonLine adds "time" (and "level" unless set) to `fields` and writes it as one line.
bool jsonLogs();
void writeJsonLine(nlohmann::json fields, const char* level = "info");
// Where each target is reached (credentials removed): JSON log lines naming a target also carry its "address".
void setLogAddresses(std::map<std::string, std::string> addresses);
bool useColor(const OutputOptions& o, int fd);  // TTY, no --no-color, no NO_COLOR
// A status line on a TTY; structured log lines (spdlog, info level) otherwise.
std::unique_ptr<Progress> makeProgress(const OutputOptions& o);

}  // namespace vnetplan::cli
