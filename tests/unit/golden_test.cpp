// Golden cases: tests/golden/<case>/{desired.yaml, observed.json, plan.txt}.
// observed.json: {"TARGET": {"live": {"ADDRESS": {attrs}}, "owned": {"ADDRESS": {last applied attrs}}}}.
// plan.txt is the text rendering (no color) of the plan, followed by the diagnostics if there are any.
// Regenerate after an intended change with: UPDATE_GOLDEN=1 ./unit_tests --gtest_filter='Golden*'
// (then read the diff: the files are the specification).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/providers.h"
#include "model/codec.h"
#include "reconciler/pipeline.h"
#include "reconciler/render.h"
#include "reconciler/snapshot.h"

using namespace vnetplan;
namespace fs = std::filesystem;

namespace {

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> goldenCases() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(VNETPLAN_SOURCE_DIR) / "tests/golden"))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, PlanMatches) {
  const fs::path dir = fs::path(VNETPLAN_SOURCE_DIR) / "tests/golden" / GetParam();
  Diagnostics diags;
  DesiredState desired =
      loadDesiredText(readFile(dir / "desired.yaml"), "desired.yaml", builtinProviders(), diags);
  std::string actual;
  if (!diags.hasErrors()) {
    Json observed = Json::parse(readFile(dir / "observed.json"));
    auto snapshots = snapshotFromJson(observed);
    ASSERT_TRUE(snapshots.ok()) << snapshots.error().message;
    auto plan = planAgainst(desired, {}, *snapshots, builtinProviders(), diags);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    actual = renderPlanText(*plan);
    // The saved form must round-trip to the same plan.
    auto again = planFromJson(planToJson(*plan));
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(planToJson(*again)["resource_changes"].dump(), planToJson(*plan)["resource_changes"].dump());
  }
  if (!diags.items().empty()) actual += "\ndiagnostics:\n" + diags.render();
  const fs::path expectedPath = dir / "plan.txt";
  if (std::getenv("UPDATE_GOLDEN")) {
    std::ofstream(expectedPath, std::ios::binary) << actual;
    GTEST_SKIP() << "SKIPPED: regenerated " << expectedPath;
  }
  ASSERT_TRUE(fs::exists(expectedPath)) << "missing " << expectedPath << "; run with UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, readFile(expectedPath)) << "golden case " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Cases, Golden, ::testing::ValuesIn(goldenCases()),
                         [](const auto& info) { return info.param; });
