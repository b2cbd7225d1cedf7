#include "base/duration.h"

#include <regex>

namespace vnetplan {

std::optional<std::chrono::milliseconds> parseDuration(const std::string& s) {
  static const std::regex re(R"(^([0-9]{1,9})(ms|s|m|h)?$)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return std::nullopt;
  const long long n = std::stoll(m[1].str());
  const std::string unit = m[2].matched ? m[2].str() : "s";
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "s") return std::chrono::milliseconds(n * 1000);
  if (unit == "m") return std::chrono::milliseconds(n * 60000);
  return std::chrono::milliseconds(n * 3600000);
}

}  // namespace vnetplan
