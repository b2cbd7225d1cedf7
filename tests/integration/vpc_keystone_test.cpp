// The vpc provider with a real Keystone (Debian's keystone, scripts/keystone-sandbox.sh) in front of a real
// neutron-server in keystone mode: password and application-credential logins from clouds.yaml, secrets given
// as references, the OS_* environment; a token is issued once and reused, renewed when it expires and when the
// cloud refuses it (401). Tokens issued are counted in Keystone's own access log. No secret reaches the output,
// the state or the journal.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "providers/vpc/vpc_provider.h"
#include "tests/integration/vpc_harness.h"

using namespace vnptest;

namespace {

class KeystoneCli : public NeutronKeystoneTest {
 protected:
  void SetUp() override {
    NeutronKeystoneTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    clouds = keystoneSandbox->fact("CLOUDS_YAML");
  }
  std::string target(const std::string& spec) const {
    return "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: cloud}\nspec: {provider: vpc, " + spec + "}\n";
  }
  static std::string vpcDoc(const std::string& name) {
    return "---\napiVersion: vnetplan.io/v1\nkind: Vpc\nmetadata: {name: " + name + "}\nspec: {targets: [cloud]}\n";
  }
  std::string manifest(const std::string& yaml, const std::string& file = "vpc.yaml") {
    writeFile(dir / file, yaml);
    return (dir / file).string();
  }
  RunResult vnp(const std::string& args, const std::string& env = "") {
    return runShell("OS_CLIENT_CONFIG_FILE=" + shellQuote(clouds) + " " + env + " " + std::string(VNETPLAN_BINARY) +
                        " --state file://" + (dir / "state").string() + " " + args,
                    dir, 240);
  }
  std::string secret(const std::string& cloud, const std::string& key) {
    return YAML::LoadFile(clouds)["clouds"][cloud]["auth"][key].as<std::string>();
  }
  // Tokens Keystone has issued so far to anyone (its access log): the provider's, and neutron's service user's
  // (keystonemiddleware logs in once per API worker, again when its token expires).
  int keystoneTokens() {
    std::istringstream in(readAll(keystoneSandbox->dir() / "keystone.out"));
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line.find("\"POST /v3/auth/tokens HTTP/1.1\" 201") != std::string::npos;
    return n;
  }
  // Tokens the in-process provider was issued: its debug log line per token Keystone gave it, counted from a
  // logger of the test's own (captureTokens()); each is also one more in Keystone's log (checked).
  void captureTokens() {
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("vpc-keystone-test",
                                                   std::make_shared<spdlog::sinks::ostream_sink_mt>(logs_));
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
    keystone0_ = keystoneTokens();
  }
  int tokensIssued() {
    spdlog::default_logger()->flush();
    const std::string text = logs_.str();
    int n = 0;
    for (size_t at = text.find("vpc: Keystone token for "); at != std::string::npos;
         at = text.find("vpc: Keystone token for ", at + 1))
      ++n;
    EXPECT_GE(keystoneTokens() - keystone0_, n) << "Keystone issued each of them";
    return n;
  }
  void TearDown() override {
    if (previous_) spdlog::set_default_logger(previous_);
    NeutronKeystoneTest::TearDown();
  }
  std::ostringstream logs_;
  std::shared_ptr<spdlog::logger> previous_;
  int keystone0_ = 0;
  // Every file vnetplan wrote, and what it printed, must not hold `s`.
  void expectNowhere(const std::string& s, const RunResult& r) {
    ASSERT_GE(s.size(), 8u);
    EXPECT_EQ(r.out.find(s), std::string::npos);
    EXPECT_EQ(r.err.find(s), std::string::npos);
    for (const auto& e : fs::recursive_directory_iterator(dir / "state")) {
      if (e.is_regular_file()) {
        EXPECT_EQ(readAll(e.path()).find(s), std::string::npos) << e.path();
      }
    }
  }
  std::string clouds;
};

}  // namespace

TEST_F(KeystoneCli, PasswordAndApplicationCredentialFromCloudsYaml) {
  auto f = manifest(target("cloud: vnetplan-password") + vpcDoc("shop"));
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto routers = list("routers", "tags=" + urlEncode("vnetplan:address=cloud/Vpc/shop"));
  ASSERT_EQ(routers.size(), 1u);
  EXPECT_EQ(routers[0]["project_id"], keystoneSandbox->fact("PROJECT_ID")) << "the project comes from the token";
  expectNowhere(secret("vnetplan-password", "password"), r);

  // The application credential of the same user and project sees the same objects: an empty plan.
  auto g = manifest(target("cloud: vnetplan-appcred") + vpcDoc("shop"), "appcred.yaml");
  r = vnp("plan --detailed-exitcode -f " + g);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  expectNowhere(secret("vnetplan-appcred", "application_credential_secret"), r);

  // The OS_* environment with an endpoint of our own (no catalog lookup).
  YAML::Node a = YAML::LoadFile(clouds)["clouds"]["vnetplan-password"]["auth"];
  const std::string env = "OS_AUTH_URL=" + shellQuote(a["auth_url"].as<std::string>()) +
                          " OS_USERNAME=" + shellQuote(a["username"].as<std::string>()) +
                          " OS_PASSWORD=" + shellQuote(a["password"].as<std::string>()) +
                          " OS_PROJECT_NAME=" + shellQuote(a["project_name"].as<std::string>()) +
                          " OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default";
  auto h = manifest(target("endpoint: \"" + neutronSandbox->fact("URL") + "\", auth: keystone") + vpcDoc("shop"), "env.yaml");
  r = runShell(env + " " + std::string(VNETPLAN_BINARY) + " --state file://" + (dir / "state").string() +
                   " plan --detailed-exitcode -f " + h,
               dir, 240);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  expectNowhere(a["password"].as<std::string>(), r);
}

TEST_F(KeystoneCli, SecretReferencesAndRefusedCredentials) {
  const std::string pw = secret("vnetplan-password", "password");
  // The Target's reference replaces the password of the clouds.yaml entry.
  auto f = manifest(target("cloud: vnetplan-password, password: {env: VNP_PASSWORD}") + vpcDoc("shop"));
  auto bad = vnp("plan -f " + f, "VNP_PASSWORD=not-the-password-at-all");
  EXPECT_EQ(bad.exitCode, 1) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("refused the credentials"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find("not-the-password-at-all"), std::string::npos) << bad.err;
  auto missing = vnp("plan -f " + f);
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_NE(missing.err.find("VNP_PASSWORD"), std::string::npos) << missing.err;
  writeFile(dir / "pw", pw + "\n");
  auto g = manifest(target("cloud: vnetplan-password, password: {file: " + (dir / "pw").string() + "}") + vpcDoc("shop"),
                    "file.yaml");
  auto ok = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(ok.exitCode, 0) << ok.out << ok.err;
  expectNowhere(pw, ok);
  // {cloud: ENTRY}: the secret of another entry (the same user's password under another name).
  auto h = manifest(target("cloud: vnetplan-password, password: {cloud: vnetplan-password}") + vpcDoc("shop"), "cloud.yaml");
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + h).exitCode, 0);
}

// In-process, to count the tokens of one provider across connects.
TEST_F(KeystoneCli, TokenReusedAndRenewedAfterA401) {
  setenv("OS_CLIENT_CONFIG_FILE", clouds.c_str(), 1);
  captureTokens();
  auto provider = vnetplan::makeVpcProvider();
  vnetplan::Target t;
  t.name = "cloud";
  t.provider = "vpc";
  t.spec = vnetplan::Attrs::fromJson(Json{{"provider", "vpc"}, {"cloud", "vnetplan-password"}});
  int n0 = tokensIssued();
  auto s1 = provider->connect(t);
  ASSERT_TRUE(s1) << s1.error().message;
  ASSERT_TRUE((*s1)->observe());
  EXPECT_EQ(tokensIssued(), n0 + 1);
  auto s2 = provider->connect(t);
  ASSERT_TRUE(s2) << s2.error().message;
  ASSERT_TRUE((*s2)->observe());
  EXPECT_EQ(tokensIssued(), n0 + 1) << "the second connect reuses the token";

  // Keystone revokes the user's tokens (the user is disabled and enabled again): neutron answers 401, the
  // provider logs in again and the request goes through.
  KeystoneToken admin = token(keystoneSandbox->fact("CLOUD_ADMIN"));
  ASSERT_FALSE(admin.token.empty()) << admin.reply;
  JsonHttp asAdmin = keystone;
  asAdmin.setHeader("X-Auth-Token", admin.token);
  const std::string user = "/users/" + keystoneSandbox->fact("USER_ID");
  const Json off = {{"user", {{"enabled", false}}}}, on = {{"user", {{"enabled", true}}}};
  ASSERT_EQ(asAdmin.request("PATCH", user, &off).status, 200);
  ASSERT_EQ(asAdmin.request("PATCH", user, &on).status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // revocation events have one-second resolution
  int n1 = tokensIssued();
  auto obs = (*s2)->observe();
  ASSERT_TRUE(obs) << obs.error().message;
  EXPECT_EQ(tokensIssued(), n1 + 1) << "one new token after the 401";
  ASSERT_TRUE((*s1)->observe()) << "the other session shares the new token";
  EXPECT_EQ(tokensIssued(), n1 + 1);
}

class KeystoneShortTokens : public KeystoneCli {
 protected:
  void SetUp() override {
    setenv("KEYSTONE_SANDBOX_TOKEN_EXPIRATION", "10", 1);
    KeystoneCli::SetUp();
    unsetenv("KEYSTONE_SANDBOX_TOKEN_EXPIRATION");
  }
};

TEST_F(KeystoneShortTokens, TokenRenewedBeforeItExpires) {
  setenv("OS_CLIENT_CONFIG_FILE", clouds.c_str(), 1);
  captureTokens();
  auto provider = vnetplan::makeVpcProvider();
  vnetplan::Target t;
  t.name = "cloud";
  t.provider = "vpc";
  t.spec = vnetplan::Attrs::fromJson(Json{{"provider", "vpc"}, {"cloud", "vnetplan-appcred"}});
  int n0 = tokensIssued();
  auto s = provider->connect(t);
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_TRUE((*s)->observe());
  EXPECT_EQ(tokensIssued(), n0 + 1);
  ASSERT_TRUE((*s)->observe());
  EXPECT_EQ(tokensIssued(), n0 + 1) << "reused while valid";
  // Past its life (10 s): the token is renewed before a request could be refused with it.
  std::this_thread::sleep_for(std::chrono::seconds(10));
  auto obs = (*s)->observe();
  ASSERT_TRUE(obs) << obs.error().message;
  EXPECT_EQ(tokensIssued(), n0 + 2);
}
