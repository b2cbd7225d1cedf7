// Fan-out over targets, through the whole CLI in-process against the fake provider: a bounded pool, a deadline per
// target, and one unreachable target reported while the others are still planned and applied.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "cli/app.h"
#include "tests/support/fake_provider.h"

using namespace vnetplan;
using namespace vnptest;
namespace fs = std::filesystem;

namespace {

std::string targetsManifest(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) {
    std::string t = "hv" + std::to_string(i);
    out += "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: " + t + ", labels: {role: esx}}\nspec: {provider: esxi, host: " +
           t + ".example}\n---\n";
  }
  out += "apiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: vSwitch1}\nspec: {selector: {role: esx}, mtu: 9000}\n";
  return out;
}

struct CliRun {
  int rc = 0;
  std::string out, err;
  double seconds = 0;
};

class Fanout : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vnp-fanout-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    registry_ = fakeRegistry(world_, "esxi");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& text) {
    std::string f = (dir_ / "m.yaml").string();
    std::ofstream(f) << text;
    return f;
  }

  CliRun cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"vnetplan", "--state", "file://" + (dir_ / "state").string()});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    ::setenv("VNETPLAN_CACHE", "off", 1);
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    auto t0 = std::chrono::steady_clock::now();
    CliRun r;
    try {
      r.rc = cli::run(static_cast<int>(argv.size()), argv.data(), registry_);
    } catch (const std::exception& e) {
      r.rc = -1;
      r.err = std::string("exception: ") + e.what();
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.out = ::testing::internal::GetCapturedStdout();
    r.err += ::testing::internal::GetCapturedStderr();
    return r;
  }

  fs::path dir_;
  FakeWorld world_;
  ProviderRegistry registry_;
};

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

TEST_F(Fanout, UnreachableTargetIsNamedAndTheOthersArePlanned) {
  world_.unreachable.insert("hv2");
  std::string f = write(targetsManifest(3));
  CliRun r = cli({"plan", "-f", f});
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hv1/Switch/vSwitch1")) << r.out;
  EXPECT_TRUE(has(r.out, "hv3/Switch/vSwitch1")) << r.out;
  EXPECT_FALSE(has(r.out, "hv2/Switch/vSwitch1")) << r.out;
  EXPECT_TRUE(has(r.out, "Not planned: 1 target(s):")) << r.out;
  EXPECT_TRUE(has(r.out, "hv2: it could not be reached: connection refused")) << r.out;
  EXPECT_TRUE(has(r.err, "target hv2 was not planned: it could not be reached: connection refused")) << r.err;
  // JSON plans carry it too.
  CliRun j = cli({"plan", "-f", f, "--format", "json"});
  EXPECT_TRUE(has(j.out, "\"unreachable_targets\"")) << j.out << j.err;
  EXPECT_TRUE(has(j.out, "\"target\": \"hv2\"")) << j.out;
}

TEST_F(Fanout, ApplyAppliesTheReachableTargetsAndExitsOneNamingTheOthers) {
  world_.unreachable.insert("hv2");
  std::string f = write(targetsManifest(3));
  CliRun r = cli({"apply", "-f", f, "--auto-approve"});
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_TRUE(world_.get("hv1/Switch/vSwitch1").has_value());
  EXPECT_TRUE(world_.get("hv3/Switch/vSwitch1").has_value());
  EXPECT_FALSE(world_.get("hv2/Switch/vSwitch1").has_value());
  EXPECT_TRUE(has(r.out, "Target hv1: applied")) << r.out;
  EXPECT_TRUE(has(r.err, "target hv2 was not applied: it could not be reached")) << r.err;
  // Once it is back, the next apply does only what is left.
  world_.unreachable.clear();
  CliRun again = cli({"apply", "-f", f, "--auto-approve"});
  EXPECT_EQ(again.rc, 0) << again.out << again.err;
  EXPECT_TRUE(world_.get("hv2/Switch/vSwitch1").has_value());
}

TEST_F(Fanout, ASlowTargetHitsItsDeadlineWithoutHoldingUpTheOthers) {
  world_.connectDelay["hv1"] = std::chrono::milliseconds(20000);
  std::string f = write(targetsManifest(3));
  CliRun r = cli({"--target-timeout", "700ms", "drift", "-f", f});
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "target hv1 was not checked for drift")) << r.err;
  EXPECT_TRUE(has(r.err, "no answer before the deadline")) << r.err;
  EXPECT_LT(r.seconds, 10.0) << "the 20 s target held the run up";
}

TEST_F(Fanout, AtMostParallelismTargetsAtOnce) {
  for (int i = 1; i <= 6; ++i) world_.connectDelay["hv" + std::to_string(i)] = std::chrono::milliseconds(150);
  std::string f = write(targetsManifest(6));
  CliRun r = cli({"--parallelism", "2", "plan", "-f", f});
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_LE(world_.maxActiveConnects, 2);
  EXPECT_EQ(world_.count("connect "), 6u);
  world_.maxActiveConnects = 0;
  CliRun wide = cli({"--parallelism", "10", "plan", "-f", f});
  EXPECT_EQ(wide.rc, 0);
  EXPECT_GT(world_.maxActiveConnects, 2) << "targets were not observed in parallel";
  world_.maxActiveConnects = 0;
  CliRun one = cli({"--parallelism", "1", "plan", "-f", f});
  EXPECT_EQ(one.rc, 0);
  EXPECT_EQ(world_.maxActiveConnects, 1);
}
