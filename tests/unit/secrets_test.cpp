// Connection secrets reach the provider that connects and nothing else: a secret planted in the environment is
// found in no file vnetplan writes (state, journal, generations, saved plans, the front-end cache) and in no log
// line or output, through every command that touches the Target, at trace level and in JSON logs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/random.h"
#include "cli/app.h"
#include "tests/support/fake_provider.h"

using namespace vnetplan;
using namespace vnptest;
namespace fs = std::filesystem;

namespace {

class Secrets : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vnp-secrets-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cache");
    secret_ = "S3cr3t-" + randomHex(12);
    ::setenv("VNP_TEST_PASSPHRASE", secret_.c_str(), 1);
    ::setenv("VNETPLAN_CACHE_DIR", (dir_ / "cache").c_str(), 1);
    ::unsetenv("VNETPLAN_CACHE");
    registry_ = fakeRegistry(world_, "esxi");
  }
  void TearDown() override {
    ::unsetenv("VNP_TEST_PASSPHRASE");
    ::unsetenv("VNETPLAN_CACHE_DIR");
    fs::remove_all(dir_);
  }

  std::string manifest(const std::string& mtu) {
    std::string f = (dir_ / "m.yaml").string();
    std::ofstream(f) << "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: hv1}\n"
                        "spec: {provider: esxi, host: hv1.example, identityFile: /keys/id,\n"
                        "       identityPassphrase: {env: VNP_TEST_PASSPHRASE}}\n---\n"
                        "apiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: vSwitch1}\n"
                        "spec: {targets: [hv1], mtu: "
                     << mtu << "}\n";
    return f;
  }

  int cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"vnetplan", "--state", "file://" + (dir_ / "state").string(), "--log-level", "trace"});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    int rc = 0;
    try {
      rc = cli::run(static_cast<int>(argv.size()), argv.data(), registry_);
    } catch (const std::exception& e) {
      rc = -1;
    }
    output_ += ::testing::internal::GetCapturedStdout();
    output_ += ::testing::internal::GetCapturedStderr();
    return rc;
  }

  // Every regular file under the test directory that holds the secret.
  std::vector<std::string> filesWithSecret() {
    std::vector<std::string> hits;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      if (ss.str().find(secret_) != std::string::npos) hits.push_back(e.path().string());
    }
    return hits;
  }

  fs::path dir_;
  std::string secret_;
  FakeWorld world_;
  ProviderRegistry registry_;
  std::string output_;
};

}  // namespace

TEST_F(Secrets, APlantedSecretIsInNoWrittenFileAndNoLogLine) {
  const std::string plan = (dir_ / "plan.json").string();
  std::string f = manifest("9000");
  EXPECT_EQ(cli({"validate", "-f", f}), 0) << output_;
  EXPECT_EQ(cli({"plan", "-f", f, "--out", plan}), 0) << output_;
  // A journal exists while steps run: look at it then.
  std::vector<std::string> journalHits;
  world_.beforeStep = [&](const Step&) {
    for (const auto& h : filesWithSecret()) journalHits.push_back(h);
  };
  EXPECT_EQ(cli({"apply", plan}), 0) << output_;
  EXPECT_EQ(world_.secretsSeen["hv1"], secret_) << "the provider never got the secret: the test proves nothing";
  // A failing apply leaves (and removes) a journal with the pre-image, and rolls back.
  world_.failOn("hv1/Switch/vSwitch1", StepAction::Update);
  f = manifest("1600");
  EXPECT_EQ(cli({"--log-format", "json", "apply", "-f", f, "--auto-approve"}), 1) << output_;
  EXPECT_EQ(cli({"apply", "-f", f, "--auto-approve"}), 0) << output_;
  EXPECT_EQ(cli({"drift", "-f", f, "--format", "json"}), 0) << output_;
  EXPECT_EQ(cli({"show", "--target", "hv1", "-f", f}), 0) << output_;
  EXPECT_EQ(cli({"show", "--target", "hv1", "-f", f, "--snapshot"}), 0) << output_;
  EXPECT_EQ(cli({"state", "show", "hv1"}), 0) << output_;
  EXPECT_EQ(cli({"state", "history", "hv1"}), 0) << output_;
  EXPECT_EQ(cli({"rollback", "--to", "1", "--target", "hv1", "-f", f, "--auto-approve"}), 0) << output_;

  EXPECT_TRUE(journalHits.empty()) << "the secret was in " << journalHits.front();
  auto hits = filesWithSecret();
  EXPECT_TRUE(hits.empty()) << "the secret was written to " << hits.front();
  EXPECT_EQ(output_.find(secret_), std::string::npos) << "the secret reached the output or logs";
  // What was written does name where the secret comes from.
  std::ifstream in(plan);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("VNP_TEST_PASSPHRASE"), std::string::npos);
}

TEST_F(Secrets, PlainTextInAManifestIsRefusedWithoutRepeatingIt) {
  std::string f = (dir_ / "bad.yaml").string();
  std::ofstream(f) << "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: hv1}\n"
                      "spec: {provider: esxi, host: hv1.example, identityPassphrase: "
                   << secret_ << "}\n";
  EXPECT_EQ(cli({"validate", "-f", f}), 1);
  EXPECT_NE(output_.find("secrets never go in manifests in plain text"), std::string::npos) << output_;
  EXPECT_NE(output_.find("bad.yaml:4:"), std::string::npos) << output_;
  EXPECT_EQ(output_.find(secret_), std::string::npos) << "the error repeated the secret:\n" << output_;
}

TEST_F(Secrets, AMissingSecretIsAConnectErrorNamingWhereItWasLookedFor) {
  ::unsetenv("VNP_TEST_PASSPHRASE");
  std::string f = manifest("9000");
  EXPECT_EQ(cli({"plan", "-f", f}), 1);
  EXPECT_NE(output_.find("environment variable VNP_TEST_PASSPHRASE is not set"), std::string::npos) << output_;
}
