// Integration tests against a real OpenStack Neutron API (Debian's neutron-server, run by
// scripts/neutron-sandbox.sh in the test's scratch directory on 127.0.0.1) and, for token tests, a real Keystone
// (scripts/keystone-sandbox.sh), with a JSON client for the test's own reads and out-of-band changes.
//
//   class MyVpc : public vnptest::NeutronTest {};
//   TEST_F(MyVpc, X) {
//     Json net = create("networks", {{"name", "app"}});        // adds this test's tenant_id (noauth)
//     EXPECT_EQ(show("networks", net["id"])["name"], "app");  // an independent read
//     neutron.put("/networks/" + id, ...);                     // any raw call: neutron is a JsonHttp on $URL/v2.0
//   }
//   class MyVpcWithTokens : public vnptest::NeutronKeystoneTest {};  // Keystone first, neutron in keystone mode
//
// One server per test. Measured on the 2-core machine (shared, load 1-6): neutron-server answers 2.6-5.5 s after
// `start` with the cached schema (the first start on a machine also builds the schema: +2-5 s), Keystone 3.3-5.3 s,
// neutron in keystone mode then ~4-5 s more. Nearly all of it is Python importing neutron/keystone. ctest runs every
// test of integration_tests as a process of its own (gtest_discover_tests), so a server shared per process would be
// one per test anyway under CI; a fresh server also spares tests the noauth pitfall that every list shows every
// project, and leaves no VLAN or address of one test taken in the next.
//
// noauth (NeutronTest): requests run as admin without a project; create() adds "tenant_id": project (a fresh
// 32-hex id per test) and raw POSTs must carry one too. Keystone mode (NeutronKeystoneTest): neutron's requests
// carry the token of the "vnetplan" user (roles member + admin in project "vnetplan") and create() adds nothing.
// Without the packages every test skips with "SKIPPED: ...".
#pragma once
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/integration/peer_sandbox.h"

namespace vnptest {

// The member name of one object of a Neutron collection: "security-group-rules" -> "security_group_rule".
inline std::string neutronSingular(const std::string& collection) {
  static const std::map<std::string, std::string> irregular = {{"policies", "policy"}};
  if (auto it = irregular.find(collection); it != irregular.end()) return it->second;
  std::string s = collection;
  if (s.size() > 1 && s.back() == 's') s.pop_back();
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

// A token from Keystone for one entry of a clouds.yaml (auth_type password or v3applicationcredential).
struct KeystoneToken {
  HttpReply reply;    // POST /v3/auth/tokens (201 on success; its body is the token's JSON)
  std::string token;  // X-Subject-Token, empty on failure
};

class NeutronTest : public ScratchTest {
 protected:
  void SetUp() override {
    ScratchTest::SetUp();
    if (HasFatalFailure()) return;
    neutronSandbox = std::make_unique<Sandbox>("neutron-sandbox.sh", dir / "neutron",
                                               std::vector<std::string>{"neutron-server.log", "neutron-server.out"});
    if (std::string why = neutronSandbox->unavailable(dir); !why.empty())
      GTEST_SKIP() << "SKIPPED: neutron-server cannot run here: " << why;
    std::string args;
    if (withKeystone()) {
      keystoneSandbox = std::make_unique<Sandbox>(
          "keystone-sandbox.sh", dir / "keystone",
          std::vector<std::string>{"keystone.log", "keystone.out", "keystone-manage.log"});
      if (std::string why = keystoneSandbox->unavailable(dir); !why.empty())
        GTEST_SKIP() << "SKIPPED: keystone cannot run here: " << why;
      ASSERT_TRUE(keystoneSandbox->start(dir));
      keystone = JsonHttp(keystoneSandbox->fact("AUTH_URL"));
      args = "--keystone " + shellQuote(keystoneSandbox->dir().string());
    }
    ASSERT_TRUE(neutronSandbox->start(dir, args));
    ASSERT_FALSE(neutronSandbox->fact("URL").empty()) << "neutron-sandbox.sh printed no URL";
    neutron = JsonHttp(neutronSandbox->fact("URL") + "/v2.0");
    if (withKeystone()) {
      KeystoneToken t = token(keystoneSandbox->fact("CLOUD_PASSWORD"));
      ASSERT_FALSE(t.token.empty()) << "no token for the test user: " << t.reply;
      neutron.setHeader("X-Auth-Token", t.token);
      project = keystoneSandbox->fact("PROJECT_ID");
    } else {
      project = randomHex(32);
    }
  }

  void TearDown() override {
    // A failed test gets the servers' last log lines: Neutron logs the traceback behind a 500 only there.
    if (HasFailure()) {
      if (neutronSandbox && neutronSandbox->started()) std::cerr << neutronSandbox->logTails(dir);
      if (keystoneSandbox && keystoneSandbox->started()) std::cerr << keystoneSandbox->logTails(dir);
    }
    if (neutronSandbox) {
      EXPECT_TRUE(neutronSandbox->stop(dir));
    }
    if (keystoneSandbox) {
      EXPECT_TRUE(keystoneSandbox->stop(dir));
    }
    ScratchTest::TearDown();
  }

  virtual bool withKeystone() const { return false; }

  // POST /COLLECTION {singular: attrs} (plus tenant_id under noauth); the created object, or null after a test
  // failure naming the reply.
  Json create(const std::string& collection, Json attrs) {
    if (!withKeystone() && !attrs.contains("tenant_id") && !attrs.contains("project_id")) attrs["tenant_id"] = project;
    const std::string member = neutronSingular(collection);
    HttpReply r = neutron.post("/" + collection, Json{{member, attrs}});
    if (r.status != 201 || !r.json.is_object() || !r.json.contains(member)) {
      ADD_FAILURE() << "create " << member << " " << attrs.dump() << ": " << r;
      return nullptr;
    }
    return r.json[member];
  }

  // GET /COLLECTION/ID: the object, or null if Neutron answers 404 (any other failure is a test failure).
  Json show(const std::string& collection, const std::string& id) {
    HttpReply r = neutron.get("/" + collection + "/" + id);
    if (r.status == 404) return nullptr;
    const std::string member = neutronSingular(collection);
    if (r.status != 200 || !r.json.is_object() || !r.json.contains(member)) {
      ADD_FAILURE() << "show " << member << " " << id << ": " << r;
      return nullptr;
    }
    return r.json[member];
  }

  // GET /COLLECTION?QUERY (QUERY already encoded, e.g. "tags=a,b&fields=id"): the objects.
  std::vector<Json> list(const std::string& collection, const std::string& query = "") {
    HttpReply r = neutron.get("/" + collection + (query.empty() ? "" : "?" + query));
    std::string key = collection;  // the reply's key: "security-group-rules" -> "security_group_rules"
    std::replace(key.begin(), key.end(), '-', '_');
    if (r.status != 200 || !r.json.is_object() || !r.json.contains(key)) {
      ADD_FAILURE() << "list " << collection << "?" << query << ": " << r;
      return {};
    }
    return r.json[key].get<std::vector<Json>>();
  }

  // PUT /COLLECTION/ID {singular: attrs}, e.g. with {{"If-Match", "revision_number=3"}}.
  HttpReply update(const std::string& collection, const std::string& id, const Json& attrs,
                   const httplib::Headers& headers = {}) {
    return neutron.put("/" + collection + "/" + id, Json{{neutronSingular(collection), attrs}}, headers);
  }

  HttpReply remove(const std::string& collection, const std::string& id) {
    return neutron.del("/" + collection + "/" + id);
  }

  // A token for entry `cloud` of the Keystone sandbox's clouds.yaml (NeutronKeystoneTest only). The secrets read
  // from the file go into the request body only, never into a message.
  KeystoneToken token(const std::string& cloud) {
    KeystoneToken out;
    if (!keystoneSandbox) {
      ADD_FAILURE() << "token(): this test runs without Keystone";
      return out;
    }
    YAML::Node c = YAML::LoadFile(keystoneSandbox->fact("CLOUDS_YAML"))["clouds"][cloud];
    if (!c) {
      ADD_FAILURE() << "no cloud " << cloud << " in " << keystoneSandbox->fact("CLOUDS_YAML");
      return out;
    }
    YAML::Node a = c["auth"];
    Json identity;
    if (c["auth_type"].as<std::string>("password") == "v3applicationcredential") {
      identity = {{"methods", {"application_credential"}},
                  {"application_credential",
                   {{"id", a["application_credential_id"].as<std::string>()},
                    {"secret", a["application_credential_secret"].as<std::string>()}}}};
    } else {
      identity = {{"methods", {"password"}},
                  {"password",
                   {{"user",
                     {{"name", a["username"].as<std::string>()},
                      {"domain", {{"name", a["user_domain_name"].as<std::string>("Default")}}},
                      {"password", a["password"].as<std::string>()}}}}}};
    }
    Json auth = {{"identity", identity}};
    if (a["project_name"])
      auth["scope"] = {{"project",
                        {{"name", a["project_name"].as<std::string>()},
                         {"domain", {{"name", a["project_domain_name"].as<std::string>("Default")}}}}}};
    out.reply = keystone.post("/auth/tokens", Json{{"auth", auth}});
    if (out.reply.status == 201) out.token = out.reply.header("X-Subject-Token");
    return out;
  }

  static std::string randomHex(size_t n) {
    static std::mt19937_64 rng(std::random_device{}());
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i) s += hex[rng() & 15];
    return s;
  }

  JsonHttp neutron;   // $URL/v2.0 (with the test user's X-Auth-Token in keystone mode)
  JsonHttp keystone;  // $AUTH_URL (.../v3), keystone mode only
  std::string project;
  std::unique_ptr<Sandbox> neutronSandbox;   // facts: URL AUTH PHYSNET VLAN_RANGE FLAT_PHYSNET PID LOG ...
  std::unique_ptr<Sandbox> keystoneSandbox;  // facts: URL AUTH_URL CLOUDS_YAML CLOUD_* PROJECT_ID USER_ID ...
};

// Keystone first (password user + application credential in clouds.yaml), then neutron-server taking its tokens.
class NeutronKeystoneTest : public NeutronTest {
 protected:
  bool withKeystone() const override { return true; }
};

}  // namespace vnptest
