#include "cli/yaml_out.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <regex>

namespace vnetplan::cli {

namespace {

// The YAML 1.1 type repository's regular expressions (yaml.org/type/{bool,null,int,float,timestamp}), plus the
// YAML 1.2 core schema's forms (0o17, 1e3) that 1.1 reads differently or not at all.
const std::array<std::regex, 5>& patterns() {
  static const std::array<std::regex, 5> p{
      std::regex(R"(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)"),
      std::regex(R"(~|null|Null|NULL|<<|=)"),
      std::regex(R"([-+]?(0b[0-1_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|0|[1-9][0-9_]*|[1-9][0-9_]*(:[0-5]?[0-9])+))"),
      std::regex(R"([-+]?(([0-9][0-9_]*)?\.[0-9._]*([eE][-+]?[0-9]+)?|[0-9][0-9_]*([eE][-+]?[0-9]+)|)"
                 R"([0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*|\.(inf|Inf|INF))|\.(nan|NaN|NAN))"),
      std::regex(R"([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]+|$).*)"),
  };
  return p;
}

void emit(YAML::Emitter& e, const nlohmann::json& j) {
  if (j.is_object()) {
    e << YAML::BeginMap;
    for (auto it = j.begin(); it != j.end(); ++it) {
      e << YAML::Key;
      if (yamlWouldRetype(it.key())) e << YAML::DoubleQuoted;
      e << it.key() << YAML::Value;
      emit(e, it.value());
    }
    e << YAML::EndMap;
  } else if (j.is_array()) {
    e << YAML::BeginSeq;
    for (const auto& x : j) emit(e, x);
    e << YAML::EndSeq;
  } else if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (yamlWouldRetype(s)) e << YAML::DoubleQuoted;
    e << s;
  } else if (j.is_boolean()) {
    e << j.get<bool>();
  } else if (j.is_number_integer()) {
    e << j.get<int64_t>();
  } else if (j.is_number()) {
    e << j.get<double>();
  } else {
    e << YAML::Null;
  }
}

}  // namespace

bool yamlWouldRetype(std::string_view s) {
  if (s.empty()) return true;
  const std::string str(s);
  for (const auto& re : patterns())
    if (std::regex_match(str, re)) return true;
  return false;
}

std::string toYamlText(const nlohmann::json& j) {
  YAML::Emitter e;
  emit(e, j);
  return e.c_str();
}

}  // namespace vnetplan::cli
