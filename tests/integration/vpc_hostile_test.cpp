// The vpc provider against a hostile peer: a proxy in front of the real neutron-server (vpc_harness.h) answers
// 409, 500 (also after the server did the work), 429 with Retry-After, nothing within the timeout, bodies that are
// not JSON, and goes away in the middle of an apply. Each time: a clear error, exit 1 with the cloud exactly as
// before (rolled back, nothing left behind, not even an untagged object), or success where a retry is safe; never
// a crash.
#include "tests/integration/vpc_harness.h"

using namespace vnptest;

namespace {

using Act = NeutronProxy::Act;

NeutronProxy::Fault fault(const std::string& method, const std::string& path, Act act, int status = 500,
                          const std::string& body = "", int nth = 1) {
  NeutronProxy::Fault f;
  f.method = method;
  f.path = std::regex(path);
  f.act = act;
  f.status = status;
  f.body = body;
  f.nth = nth;
  return f;
}

}  // namespace

class VpcHostile : public VpcCliTest {
 protected:
  void SetUp() override {
    VpcCliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    proxy = std::make_unique<NeutronProxy>(neutronSandbox->fact("URL"));
    endpoint = proxy->url();
  }
  void TearDown() override {
    proxy.reset();
    VpcCliTest::TearDown();
  }
  std::string shop() {
    return manifest(target() + doc("Vpc", "shop", "") + doc("Subnet", "web", "vpc: shop, cidr: 10.1.0.0/24, public: true") +
                    doc("SecurityGroup", "web", "vpc: shop, rules: [{direction: ingress, protocol: tcp, ports: 443}]"));
  }
  // Objects of the project: none may be left by a failed apply (tagged or not).
  size_t objects() {
    size_t n = 0;
    for (const char* c : {"routers", "networks", "subnets"}) n += list(c, "project_id=" + project).size();
    for (const auto& g : list("security-groups", "project_id=" + project)) n += g["name"] != "default";
    return n;
  }
  std::unique_ptr<NeutronProxy> proxy;
};

TEST_F(VpcHostile, ConflictIsAClearErrorAndRollsBack) {
  proxy->add(fault("POST", "^/v2.0/networks", Act::Reply, 409,
                   R"j({"NeutronError": {"type": "VlanIdInUse", "message": "Unable to create the network (injected).", "detail": ""}})j"));
  auto r = vnp("apply --auto-approve -f " + shop());
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("HTTP 409 VlanIdInUse: Unable to create the network (injected)."), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Rolled back"), std::string::npos) << r.err;
  EXPECT_EQ(objects(), 0u);
}

TEST_F(VpcHostile, ServerErrorAfterTheServerDidItLeavesNothingBehind) {
  // neutron-server answers 500 after some commits; here the router exists but the answer says 500. A POST is not
  // repeated; the router it may have made is found by name, description and missing tag, and deleted.
  proxy->add(fault("POST", "^/v2.0/routers$", Act::ForwardThenReply, 500,
                   R"j({"NeutronError": {"type": "HTTPInternalServerError", "message": "Request Failed: internal server error (injected)"}})j"));
  auto r = vnp("apply --auto-approve -f " + shop());
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("HTTP 500"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("deleted again"), std::string::npos) << r.err;
  EXPECT_EQ(objects(), 0u);
  EXPECT_EQ(proxy->fired(0), 1) << "the POST was not repeated";
}

TEST_F(VpcHostile, ServerErrorsAndTimeoutsOnReadsAreRetried) {
  proxy->add(fault("GET", "^/v2.0/routers", Act::Reply, 500, "oops"));
  auto slow = fault("GET", "^/v2.0/security-groups", Act::Delay);
  slow.ms = 2500;
  proxy->add(slow);
  proxy->add(fault("GET", "^/v2.0/subnets", Act::Reply, 503, R"j({"NeutronError": {"message": "busy"}})j"));
  auto r = vnp("plan --detailed-exitcode -f " + shop(), "VNETPLAN_VPC_TIMEOUT_MS=1000");
  EXPECT_EQ(r.exitCode, 2) << r.out << r.err;
  EXPECT_EQ(proxy->fired(0), 1);
  EXPECT_EQ(proxy->fired(1), 1);
  EXPECT_EQ(proxy->fired(2), 1);
  // Every answer late: a clear error naming the time it waited, after a bounded number of attempts.
  auto always = fault("GET", "^/v2.0/networks", Act::Delay, 0, "", 0);
  always.ms = 1500;
  proxy->add(always);
  auto t0 = std::chrono::steady_clock::now();
  r = vnp("plan -f " + shop(), "VNETPLAN_VPC_TIMEOUT_MS=500 VNETPLAN_VPC_ATTEMPTS=3");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("within 500 ms"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("after 3 attempts"), std::string::npos) << r.err;
  EXPECT_LT(took, std::chrono::seconds(20));
}

TEST_F(VpcHostile, TooManyRequestsWaitsForRetryAfter) {
  auto throttle = fault("POST", "^/v2.0/security-groups$", Act::Reply, 429,
                        R"j({"message": "Too Many Requests (injected)"})j");
  throttle.retryAfter = "2";
  proxy->add(throttle);
  auto t0 = std::chrono::steady_clock::now();
  auto r = vnp("apply --auto-approve -f " + shop());
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(proxy->fired(0), 1);
  EXPECT_GE(took, std::chrono::seconds(2));
  EXPECT_TRUE(groupOf("web").is_object());
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + shop()).exitCode, 0);

  // A Retry-After longer than vnetplan waits: a clear error saying so, rolled back.
  auto longer = fault("POST", "^/v2.0/routers$", Act::Reply, 429, "{}");
  longer.retryAfter = "3600";
  proxy->add(longer);
  r = vnp("apply --auto-approve -f " + manifest(target() + doc("Vpc", "lab", ""), "lab.yaml"));
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("Retry-After: 3600"), std::string::npos) << r.err;
  EXPECT_TRUE(tagged("routers", "cloud/Vpc/lab").empty());
}

TEST_F(VpcHostile, BodiesThatAreNotJsonAreErrorsNotCrashes) {
  proxy->add(fault("GET", "^/v2.0/routers", Act::Reply, 200, "{\"routers\": [ this is not json", 0));
  auto r = vnp("plan -f " + shop());
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_EQ(r.signal, 0);
  EXPECT_NE(r.err.find("not JSON"), std::string::npos) << r.err;
  // JSON of the wrong shape.
  NeutronProxy other(neutronSandbox->fact("URL"));
  other.add(fault("GET", "^/v2.0/security-groups", Act::Reply, 200, R"j({"security_groups": 5})j", 0));
  other.add(fault("GET", "^/v2.0/networks", Act::Reply, 200,
                  R"j({"networks": [{"id": 7, "tags": "vnetplan:owner=cloud", "provider:segmentation_id": "x"}]})j", 0));
  endpoint = other.url();
  r = vnp("plan -f " + shop());
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_EQ(r.signal, 0);
  EXPECT_NE(r.err.find("security_groups"), std::string::npos) << r.err;

  // A create answered with garbage after the server made it: not repeated, the object found and deleted.
  endpoint = proxy->url();
  NeutronProxy third(neutronSandbox->fact("URL"));
  third.add(fault("POST", "^/v2.0/security-groups$", Act::ForwardThenReply, 201, "<html>proxy error</html>"));
  endpoint = third.url();
  r = vnp("apply --auto-approve -f " + shop());
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("not JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Rolled back"), std::string::npos) << r.err;
  EXPECT_EQ(objects(), 0u);
}

TEST_F(VpcHostile, CreateWithoutAnAnswerIsCleanedUp) {
  auto hang = fault("POST", "^/v2.0/networks$", Act::ForwardThenHang);
  hang.ms = 3000;
  proxy->add(hang);
  auto r = vnp("apply --auto-approve -f " + shop(), "VNETPLAN_VPC_TIMEOUT_MS=1000");
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("may or may not have been carried out"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("deleted again"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Rolled back"), std::string::npos) << r.err;
  EXPECT_EQ(objects(), 0u);
}

TEST_F(VpcHostile, ServerThatDiesMidApplyAndComesBack) {
  ASSERT_EQ(vnp("apply --auto-approve -f " + manifest(target() + doc("Vpc", "shop", ""), "first.yaml")).exitCode, 0);
  const std::string before = cloudSnapshot();
  // The subnet is made, then the server goes away (connections refused) for 2.5 s without answering.
  auto die = fault("POST", "^/v2.0/subnets$", Act::ForwardThenDie);
  die.ms = 2500;
  proxy->add(die);
  auto r = vnp("apply --auto-approve -f " + shop(), "VNETPLAN_VPC_TIMEOUT_MS=1500 VNETPLAN_VPC_PARALLELISM=1");
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_EQ(r.signal, 0);
  EXPECT_NE(r.err.find("POST /v2.0/subnets"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Rolled back"), std::string::npos) << r.err;
  EXPECT_EQ(cloudSnapshot(), before);
  ASSERT_EQ(vnp("apply --auto-approve -f " + shop()).exitCode, 0);
}

TEST_F(VpcHostile, ServerThatStaysDeadIsNamedNotACrash) {
  ASSERT_EQ(vnp("apply --auto-approve -f " + shop()).exitCode, 0);
  const std::string dead = "http://127.0.0.1:9";  // the discard port: nothing listens there
  endpoint = dead;
  auto r = vnp("plan -f " + shop(), "VNETPLAN_VPC_ATTEMPTS=2");
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot connect to " + dead), std::string::npos) << r.err;
}
