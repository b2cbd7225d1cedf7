// The etcd peer itself, through etcd_harness.h: the JSON gateway of the real etcd serves what the etcd:// state
// backend needs (base64 keys, prefix ranges, compare-and-swap on mod_revision, leases that keep a key alive and
// drop it when they expire), its error replies look as the backend expects, and data survives a restart.
// Reads that check a write go through etcdctl (gRPC) where it matters, so the gateway is not checked by itself.
#include <chrono>
#include <thread>

#include "tests/integration/etcd_harness.h"

using namespace vnptest;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

class EtcdPeer : public EtcdTest {};

}  // namespace

TEST_F(EtcdPeer, GatewayServesV3AndV3betaNotV3alpha) {
  const Json body = {{"key", base64Encode("/probe")}};
  EXPECT_EQ(gateway.post("/kv/range", body).status, 200);
  EXPECT_EQ(JsonHttp(endpoint + "/v3beta").post("/kv/range", body).status, 200);
  EXPECT_EQ(JsonHttp(endpoint + "/v3alpha").post("/kv/range", body).status, 404);
  // Every gateway call is a POST.
  EXPECT_EQ(gateway.get("/kv/range").status, 405);
  HttpReply status = call("/maintenance/status", Json::object());
  ASSERT_EQ(status.status, 200) << status;
  EXPECT_EQ(status.json["version"], etcdSandbox->fact("VERSION"));
}

TEST_F(EtcdPeer, PutAndGetWithBase64Keys) {
  const std::string key = "/vnetplan/targets/host-1/owned", value = "{\"k\": \"v\"}\n\xff binary";
  long long rev = put(key, value);
  ASSERT_GT(rev, 0);
  auto kvs = range(key, "");
  ASSERT_EQ(kvs.size(), 1u);
  EXPECT_EQ(kvs[0].value, value);
  EXPECT_EQ(kvs[0].modRevision, rev);
  EXPECT_EQ(kvs[0].createRevision, rev);
  EXPECT_EQ(kvs[0].version, 1);
  // Independent read over gRPC.
  RunResult r = etcdctl("get " + shellQuote(key) + " --print-value-only");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, value + "\n");

  // A missing key: 200 and a reply without "kvs" and without "count" (zero values are left out).
  HttpReply missing = call("/kv/range", {{"key", base64Encode("/vnetplan/none")}});
  ASSERT_EQ(missing.status, 200) << missing;
  EXPECT_FALSE(missing.json.contains("kvs"));
  EXPECT_FALSE(missing.json.contains("count"));
  EXPECT_FALSE(get("/vnetplan/none").has_value());
}

TEST_F(EtcdPeer, RangeByPrefix) {
  ASSERT_EQ(etcdctl("put /vnetplan/a 1").exitCode, 0);
  ASSERT_EQ(etcdctl("put /vnetplan/b/c 2").exitCode, 0);
  ASSERT_EQ(etcdctl("put /vnetplan0 outside").exitCode, 0);  // '0' follows '/': just past the prefix's end
  ASSERT_EQ(etcdctl("put /vnetplam before").exitCode, 0);
  auto kvs = rangePrefix("/vnetplan/");
  ASSERT_EQ(kvs.size(), 2u);
  EXPECT_EQ(kvs[0].key, "/vnetplan/a");  // sorted by key
  EXPECT_EQ(kvs[1].key, "/vnetplan/b/c");
  EXPECT_EQ(kvs[1].value, "2");

  HttpReply count = call("/kv/range", {{"key", base64Encode("/vnetplan/")},
                                       {"range_end", base64Encode(etcdPrefixEnd("/vnetplan/"))},
                                       {"count_only", true}});
  ASSERT_EQ(count.status, 200) << count;
  EXPECT_EQ(etcdInt(count.json, "count"), 2);
  EXPECT_FALSE(count.json.contains("kvs"));

  HttpReply del = call("/kv/deleterange", {{"key", base64Encode("/vnetplan/")},
                                           {"range_end", base64Encode(etcdPrefixEnd("/vnetplan/"))}});
  ASSERT_EQ(del.status, 200) << del;
  EXPECT_EQ(etcdInt(del.json, "deleted"), 2);
  EXPECT_EQ(etcdctl("get /vnetplan0 --print-value-only").out, "outside\n");
}

TEST_F(EtcdPeer, TxnCompareAndSwapOnModRevision) {
  const std::string key = "/vnetplan/generation";
  long long rev = put(key, "1");
  ASSERT_GT(rev, 0);
  auto cas = [&](long long expected, const std::string& value) {
    return call("/kv/txn", {{"compare", {{{"target", "MOD"},
                                          {"key", base64Encode(key)},
                                          {"result", "EQUAL"},
                                          {"mod_revision", std::to_string(expected)}}}},
                            {"success", {{{"request_put", {{"key", base64Encode(key)}, {"value", base64Encode(value)}}}}}},
                            {"failure", {{{"request_range", {{"key", base64Encode(key)}}}}}}});
  };
  HttpReply won = cas(rev, "2");
  ASSERT_EQ(won.status, 200) << won;
  EXPECT_EQ(won.json["succeeded"], true);
  const long long newRev = etcdInt(won.json["header"], "revision");
  EXPECT_GT(newRev, rev);

  // The stale revision loses: still HTTP 200, no "succeeded" at all (false is left out), and the failure branch's
  // range shows the current value and revision.
  HttpReply lost = cas(rev, "3");
  ASSERT_EQ(lost.status, 200) << lost;
  EXPECT_FALSE(lost.json.value("succeeded", false));
  EXPECT_FALSE(lost.json.contains("succeeded"));
  const Json& current = lost.json["responses"][0]["response_range"]["kvs"][0];
  EXPECT_EQ(base64Decode(current.value("value", "")), "2");
  EXPECT_EQ(etcdInt(current, "mod_revision"), newRev);
  EXPECT_EQ(etcdctl("get " + key + " --print-value-only").out, "2\n");

  // Create-if-absent: create_revision == 0 holds only for a key that does not exist.
  auto create = [&](const std::string& k) {
    return call("/kv/txn", {{"compare", {{{"target", "CREATE"},
                                          {"key", base64Encode(k)},
                                          {"result", "EQUAL"},
                                          {"create_revision", "0"}}}},
                            {"success", {{{"request_put", {{"key", base64Encode(k)}, {"value", base64Encode("me")}}}}}}});
  };
  EXPECT_EQ(create("/vnetplan/lock").json["succeeded"], true);
  HttpReply second = create("/vnetplan/lock");
  EXPECT_EQ(second.status, 200);
  EXPECT_FALSE(second.json.contains("succeeded"));
  EXPECT_FALSE(second.json.contains("responses"));  // an empty failure branch: no responses either
}

TEST_F(EtcdPeer, LeaseKeepsKeyAliveUntilItExpires) {
  long long granted = 0;
  long long lease = grantLease(1, &granted);
  ASSERT_NE(lease, 0);
  EXPECT_EQ(granted, 2);  // below the minimum TTL (1.5 x election timeout, rounded up) etcd grants 2 s
  ASSERT_GT(put("/vnetplan/lock", "holder", lease), 0);
  EXPECT_EQ(range("/vnetplan/lock", "")[0].lease, lease);

  // Kept alive three times at half the TTL: the key outlives two TTLs.
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(keepAlive(lease), granted);
  }
  EXPECT_TRUE(get("/vnetplan/lock").has_value());
  HttpReply ttl = call("/lease/timetolive", {{"ID", std::to_string(lease)}, {"keys", true}});
  ASSERT_EQ(ttl.status, 200) << ttl;
  EXPECT_GT(etcdInt(ttl.json, "TTL"), 0);
  EXPECT_EQ(ttl.json["keys"], Json::array({base64Encode("/vnetplan/lock")}));

  // No more keepalives: gone within TTL plus the 500 ms reaping period (bounded wait).
  const auto lastKeepalive = Clock::now();
  while (get("/vnetplan/lock").has_value() && Clock::now() - lastKeepalive < 10s) std::this_thread::sleep_for(100ms);
  const auto lived = Clock::now() - lastKeepalive;
  EXPECT_FALSE(get("/vnetplan/lock").has_value()) << "the key outlived its lease by far";
  EXPECT_GE(lived, 1500ms);  // not before its TTL (2 s, minus the time the last keepalive took to come back)
  EXPECT_LE(lived, 4s);
  EXPECT_EQ(etcdctl("get /vnetplan/lock").out, "");  // gRPC agrees

  // An expired lease: keepalive still answers 200, without a TTL; timetolive says -1; a put with it is 404.
  EXPECT_EQ(keepAlive(lease), 0);
  ttl = call("/lease/timetolive", {{"ID", std::to_string(lease)}});
  EXPECT_EQ(etcdInt(ttl.json, "TTL"), -1);
  HttpReply late = call("/kv/put", {{"key", base64Encode("/x")}, {"value", base64Encode("y")}, {"lease", std::to_string(lease)}});
  EXPECT_EQ(late.status, 404) << late;
}

TEST_F(EtcdPeer, ErrorReplies) {
  // {"error", "message", "code" (gRPC code)} with an HTTP status that follows the code.
  HttpReply noLease = call("/lease/revoke", {{"ID", "12345"}});
  EXPECT_EQ(noLease.status, 404) << noLease;
  EXPECT_EQ(noLease.json["code"], 5);  // NOT_FOUND
  EXPECT_EQ(noLease.json["error"], "etcdserver: requested lease not found");
  // Errors of etcd itself (not of the gateway's JSON decoding) come chunked with an HTTP trailer, which Debian 12's
  // cpp-httplib 0.11.4 cannot parse (JsonHttp::request works around it): the etcd:// backend must too.
  EXPECT_EQ(noLease.header("Trailer"), "Grpc-Trailer-Content-Type");

  HttpReply badBase64 = call("/kv/put", {{"key", "!!!"}, {"value", "eA=="}});
  EXPECT_EQ(badBase64.status, 400) << badBase64;
  EXPECT_EQ(badBase64.json["code"], 3);  // INVALID_ARGUMENT

  HttpReply noKey = call("/kv/put", {{"value", "eA=="}});
  EXPECT_EQ(noKey.status, 400) << noKey;
  EXPECT_EQ(noKey.json["error"], "etcdserver: key is not provided");

  HttpReply badJson = gateway.request("POST", "/kv/put", nullptr);
  EXPECT_EQ(badJson.status, 400) << badJson;

  long long rev = put("/a", "1");
  HttpReply future = call("/kv/range", {{"key", base64Encode("/a")}, {"revision", std::to_string(rev + 100)}});
  EXPECT_EQ(future.status, 400) << future;
  EXPECT_EQ(future.json["code"], 11);  // OUT_OF_RANGE
  put("/a", "2");
  ASSERT_EQ(call("/kv/compaction", {{"revision", std::to_string(rev + 1)}}).status, 200);
  HttpReply compacted = call("/kv/range", {{"key", base64Encode("/a")}, {"revision", std::to_string(rev)}});
  EXPECT_EQ(compacted.status, 400) << compacted;
  EXPECT_EQ(compacted.json["error"], "etcdserver: mvcc: required revision has been compacted");
}

TEST_F(EtcdPeer, StateSurvivesRestart) {
  long long rev = put("/vnetplan/journal/1", "applied");
  ASSERT_GT(rev, 0);
  long long lease = grantLease(30);
  ASSERT_GT(put("/vnetplan/lock", "holder", lease), 0);
  const std::string before = endpoint;
  const std::string pidBefore = etcdSandbox->fact("PID");

  ASSERT_TRUE(restartEtcd());
  EXPECT_EQ(etcdSandbox->fact("ENDPOINT"), before);
  EXPECT_NE(etcdSandbox->fact("PID"), pidBefore);
  EXPECT_EQ(get("/vnetplan/journal/1"), "applied");
  EXPECT_EQ(range("/vnetplan/journal/1", "")[0].modRevision, rev);
  // The lease survives too, with its full TTL again.
  EXPECT_EQ(get("/vnetplan/lock"), "holder");
  HttpReply ttl = call("/lease/timetolive", {{"ID", std::to_string(lease)}});
  EXPECT_GE(etcdInt(ttl.json, "TTL"), 28) << ttl;
  // Revisions go on from where they were.
  EXPECT_GT(put("/vnetplan/journal/2", "x"), rev);
}

TEST_F(EtcdPeer, SandboxStopLeavesNoProcess) {
  const std::string pid = etcdSandbox->fact("PID");
  ASSERT_FALSE(pid.empty());
  auto runs = [&] {
    std::string stat = readAll("/proc/" + pid + "/stat");
    size_t close = stat.rfind(')');
    return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
  };
  EXPECT_TRUE(runs());
  ASSERT_TRUE(etcdSandbox->stop(dir));
  EXPECT_FALSE(runs());
  EXPECT_EQ(gateway.post("/kv/range", {{"key", "eA=="}}).status, 0);  // nobody listens
}
