// The views of `vnetplan serve` (cli/serve_render.cpp) with hostile names: a target or address with quotes,
// backslashes, newlines and markup stays one well-formed metric label, and inert text on the page.
#include <gtest/gtest.h>

#include "cli/serve.h"

using namespace vnetplan;
using namespace vnetplan::cli::serve;

namespace {

AgentView hostileView() {
  AgentView v;
  v.version = "0.0-test";
  v.source.kind = "git";
  v.source.location = "file:///repo<script>";
  v.source.revision = "0123456789abcdef0123456789abcdef01234567";
  TargetView t;
  t.name = "evil\"name\\with\nnewline<b>";
  t.provider = "linux";
  t.state = "drifted";
  t.drift.push_back(Json{{"address", t.name + "/Switch/br0"}, {"kind", "Switch"}, {"paths", {"mtu"}}});
  t.changes.push_back(Json{{"address", t.name + "/Switch/br0"},
                           {"kind", "Switch"},
                           {"actions", {"update"}},
                           {"description", "mtu 1300 -> <1400>"},
                           {"reason", "drift"}});
  ApplyRecord a;
  a.at = 1700000000;
  a.outcome = "rolled-back";
  a.exitCode = 1;
  t.lastApply = a;
  t.applies["rolled-back"] = 3;
  v.targets[t.name] = t;
  return v;
}

TEST(ServeRender, MetricLabelsAreEscaped) {
  EXPECT_EQ(promLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  const std::string m = renderMetrics(hostileView());
  EXPECT_NE(m.find("vnetplan_target_drift_resources{target=\"evil\\\"name\\\\with\\nnewline<b>\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("vnetplan_applies_total{target=\"evil\\\"name\\\\with\\nnewline<b>\",outcome=\"rolled-back\"} 3"),
            std::string::npos);
  // Every sample is one line: no raw newline inside a label.
  for (size_t pos = 0, end; (end = m.find('\n', pos)) != std::string::npos; pos = end + 1) {
    std::string line = m.substr(pos, end - pos);
    if (line.empty() || line[0] == '#') continue;
    EXPECT_NE(line.find_last_of(' '), std::string::npos) << line;
    EXPECT_EQ(std::count(line.begin(), line.end(), '{'), std::count(line.begin(), line.end(), '}')) << line;
  }
  EXPECT_NE(m.find("vnetplan_target_state{target=\"evil\\\"name\\\\with\\nnewline<b>\",state=\"drifted\"} 1"),
            std::string::npos);
}

TEST(ServeRender, PageEscapesEverything) {
  const std::string page = renderPage(hostileView(), 5);
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_EQ(page.find("newline<b>"), std::string::npos);
  EXPECT_NE(page.find("evil&quot;name\\with\nnewline&lt;b&gt;"), std::string::npos);
  EXPECT_NE(page.find("mtu 1300 -&gt; &lt;1400&gt;"), std::string::npos);
  EXPECT_NE(page.find("<meta http-equiv=\"refresh\" content=\"5\">"), std::string::npos);
  EXPECT_NE(page.find("<table id=\"targets\">"), std::string::npos);
}

TEST(ServeRender, JsonCarriesPlanDriftAndApply) {
  Json j = renderJson(hostileView());
  ASSERT_EQ(j["targets"].size(), 1u);
  const Json& t = j["targets"][0];
  EXPECT_EQ(t["name"], "evil\"name\\with\nnewline<b>");
  EXPECT_EQ(t["state"], "drifted");
  EXPECT_EQ(t["drift"][0]["paths"], Json::array({"mtu"}));
  EXPECT_EQ(t["lastPlan"]["changes"][0]["actions"], Json::array({"update"}));
  EXPECT_EQ(t["lastApply"]["outcome"], "rolled-back");
  EXPECT_EQ(t["lastApply"]["at"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(j["source"]["revision"], "0123456789abcdef0123456789abcdef01234567");
}

}  // namespace
