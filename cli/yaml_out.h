// YAML for people and for other YAML readers: `show` writes manifests that PyYAML, Ansible (YAML 1.1) and
// yaml-cpp (YAML 1.2) all read back as the same strings.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace vnetplan::cli {

// True when a YAML 1.1 or 1.2 reader would take the plain scalar `s` for something other than a string: a
// boolean (yes/no/on/off/y/n/true/false), null (~, null, empty), an integer (incl. 0x, 0o, 0b, octal and
// sexagesimal like the MAC 52:54:00:00:01:01), a float (incl. .inf/.nan and sexagesimal), a timestamp, or the
// merge/value keys "<<" and "=".
bool yamlWouldRetype(std::string_view s);

// Block-style YAML of `j`; every string that yamlWouldRetype is double-quoted (keys too).
std::string toYamlText(const nlohmann::json& j);

}  // namespace vnetplan::cli
