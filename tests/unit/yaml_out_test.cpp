// `show` output read back by YAML 1.1 (PyYAML, as Ansible uses) and YAML 1.2 (yaml-cpp) readers: every string
// stays the same string.
#include "cli/yaml_out.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using vnetplan::cli::toYamlText;
using vnetplan::cli::yamlWouldRetype;
using Json = nlohmann::json;

namespace {

const std::vector<std::string> kAmbiguous = {
    "52:54:00:00:01:01",  // a MAC: sexagesimal integer in YAML 1.1
    "1:30", "190:20:30.15", "yes", "No", "ON", "off", "y", "N", "true", "FALSE", "~",
    "null", "", "0x1F", "0o17", "017", "0b101", "1_000", "+12", "-3", "1.5", ".5", "1e3", "6.8523015e+5", ".inf",
    "-.Inf", ".NaN", "1.2.3.4" /* a float by the 1.1 spec's regex */, "2026-11-28", "2026-11-28T01:02:03Z", "<<", "=", "0", "4094"};
const std::vector<std::string> kPlain = {"br-prod", "52:54:00:ab:cd:ef", "vm1", "10.0.0.1/24", "eth0.100",
                                         "fe80::1",  "a:b",               "v1.2", "yes-please",
                                         "00:11:22:33:44:55" /* sexagesimal needs a first digit 1-9 */};

}  // namespace

TEST(YamlOut, AmbiguousStringsAreRecognised) {
  for (const auto& s : kAmbiguous) EXPECT_TRUE(yamlWouldRetype(s)) << "'" << s << "'";
  for (const auto& s : kPlain) EXPECT_FALSE(yamlWouldRetype(s)) << "'" << s << "'";
}

Json sample() {
  Json doc{{"apiVersion", "vnetplan.io/v1"}, {"kind", "Port"}, {"metadata", {{"name", "vm1"}}}};
  Json strings = Json::array();
  for (const auto& s : kAmbiguous) strings.push_back(s);
  for (const auto& s : kPlain) strings.push_back(s);
  doc["spec"] = {{"mac", "52:54:00:00:01:01"}, {"strings", strings}, {"mtu", 9000}, {"up", true}};
  doc["metadata"]["labels"] = {{"on", "yes"}, {"1:30", "off"}};
  return doc;
}

TEST(YamlOut, Yaml12ReaderGetsTheSameStrings) {
  const Json doc = sample();
  YAML::Node n = YAML::Load(toYamlText(doc));
  EXPECT_EQ(n["spec"]["mac"].as<std::string>(), "52:54:00:00:01:01");
  EXPECT_EQ(n["spec"]["mtu"].as<int>(), 9000);
  for (size_t i = 0; i < doc["spec"]["strings"].size(); ++i) {
    if (i < kAmbiguous.size()) {  // quoted: a string for every reader, never resolved to another type
      EXPECT_EQ(n["spec"]["strings"][i].Tag(), "!") << doc["spec"]["strings"][i];
    }
    EXPECT_EQ(n["spec"]["strings"][i].as<std::string>(), doc["spec"]["strings"][i].get<std::string>());
  }
}

TEST(YamlOut, Yaml11ReaderGetsTheSameStrings) {
  if (std::system("python3 -c 'import yaml' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "SKIPPED: needs python3-yaml (PyYAML, a YAML 1.1 reader; scripts/setup.sh installs it)";
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("vnp-yaml-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const Json doc = sample();
  std::ofstream(dir / "in.yaml") << toYamlText(doc);
  const std::string cmd = "python3 -c 'import yaml,json,sys; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' " +
                          (dir / "in.yaml").string() + " > " + (dir / "out.json").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(dir / "out.json");
  std::stringstream ss;
  ss << in.rdbuf();
  fs::remove_all(dir);
  EXPECT_EQ(Json::parse(ss.str()), doc);  // same strings, same numbers, same booleans
}
