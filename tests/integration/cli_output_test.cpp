// What the CLI prints for people and tools: JSON log lines, exit codes of outcomes. Against the real kernel in a
// network namespace each test creates and removes.
#include "tests/integration/harness.h"

using namespace vnptest;

namespace {

const char* kTarget = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: t1}
spec: {provider: linux, netns: NETNS}
---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br0}
spec: {targets: [t1], mtu: 1500}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vm1}
spec: {targets: [t1], switch: br0, type: veth, peer: vm1-p}
)";

// Every line of `err` parsed strictly as one JSON object; a line that is not fails the test.
std::vector<Json> jsonLines(const std::string& err) {
  std::vector<Json> out;
  std::istringstream in(err);
  std::string line;
  while (std::getline(in, line)) {
    Json j;
    try {
      j = Json::parse(line);  // RFC 8259: no comments, no trailing commas, valid UTF-8 only
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a JSON line: " << line << " (" << e.what() << ")";
      continue;
    }
    EXPECT_TRUE(j.is_object()) << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("message")) << line;
    out.push_back(j);
  }
  return out;
}

}  // namespace

class CliOutput : public NetnsTest {};

TEST_F(CliOutput, JsonLogsAreOneStrictJsonObjectPerLine) {
  // A manifest whose file name has a quote, a backslash and a newline, with an error in it: the diagnostic
  // (file, line, column, rule) is still one valid line.
  std::string weird = "bad\"na\\me\nx.yaml";
  std::string f = manifest("apiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: br0}\nspec: {mtu: \"\\\"x\"}\n",
                           weird);
  auto r = vnetplan("--log-format json validate -f " + shellQuote(f));
  EXPECT_EQ(r.exitCode, 1) << r.err;
  auto lines = jsonLines(r.err);
  bool sawDiag = false;
  for (const auto& j : lines)
    if (j.value("file", "") == f && j.value("level", "") == "error" && j.contains("line")) sawDiag = true;
  EXPECT_TRUE(sawDiag) << r.err;

  // An apply at debug level: every step and the outcome are JSON lines with the target and its address.
  f = manifest(kTarget);
  r = vnetplan("--log-format json --log-level debug apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  lines = jsonLines(r.err);
  bool sawStep = false, sawOutcome = false;
  for (const auto& j : lines) {
    if (j.contains("step")) {
      sawStep = true;
      EXPECT_EQ(j.value("target", ""), "t1") << j.dump();
      EXPECT_EQ(j.value("address", ""), "netns:" + ns) << j.dump();
      EXPECT_EQ(j["message"].get<std::string>().find("target="), std::string::npos) << j.dump();
    }
    if (j.contains("outcome")) {
      sawOutcome = true;
      EXPECT_EQ(j.value("outcome", ""), "applied") << j.dump();
      EXPECT_EQ(j.value("target", ""), "t1");
      EXPECT_EQ(j.value("generation", 0), 1) << j.dump();
    }
  }
  EXPECT_TRUE(sawStep) << r.err;
  EXPECT_TRUE(sawOutcome) << r.err;

  // A failed apply, rolled back: the outcome is structured, at error level; nothing else leaks onto stderr.
  r = runShell("VNETPLAN_FAIL_AT_STEP=2 " + std::string(VNETPLAN_BINARY) + " --state file://" +
                   (dir / "state").string() + " --log-format json apply --auto-approve -f " +
                   manifest(kTarget + std::string("---\napiVersion: vnetplan.io/v1\nkind: Port\nmetadata: {name: "
                                                  "vm3}\nspec: {targets: [t1], switch: br0, type: veth, peer: "
                                                  "vm3-p}\n---\napiVersion: vnetplan.io/v1\nkind: Port\nmetadata: "
                                                  "{name: vm4}\nspec: {targets: [t1], switch: br0, type: tap}\n"),
                            "more.yaml"),
               dir);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  lines = jsonLines(r.err);
  bool sawRolledBack = false;
  for (const auto& j : lines)
    if (j.value("outcome", "") == "rolled-back") {
      sawRolledBack = true;
      EXPECT_EQ(j.value("level", ""), "error");
      EXPECT_FALSE(j.value("message", "").empty());
    }
  EXPECT_TRUE(sawRolledBack) << r.err;

  // Errors before anything runs (a bad flag value, a missing file) are JSON lines too.
  r = vnetplan("--log-format json --target-timeout banana plan -f " + f);
  EXPECT_EQ(r.exitCode, 1);
  lines = jsonLines(r.err);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].value("level", ""), "error");
  r = vnetplan("--log-format json plan -f " + (dir / "missing.yaml").string());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_FALSE(jsonLines(r.err).empty());
}
