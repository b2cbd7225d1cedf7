// Integration tests against a real etcd (Debian's etcd-server 3.4, one member, run by scripts/etcd-sandbox.sh in the
// test's scratch directory on 127.0.0.1), through the same JSON gateway the etcd:// state backend uses, plus
// independent reads with etcdctl (gRPC, not the gateway).
//
//   class MyState : public vnptest::EtcdTest {};
//   TEST_F(MyState, X) {
//     put("/vnetplan/a", "1");
//     EXPECT_EQ(get("/vnetplan/a"), "1");
//     EXPECT_EQ(etcdctl("get /vnetplan/a --print-value-only").out, "1\n");
//     ASSERT_TRUE(restartEtcd());  // same endpoint, same data
//   }
//
// One etcd per test: it answers ~0.5 s after `start` (a restart ~1.3 s: the member waits an election timeout).
// Facts of the gateway (paths, zero values left out, int64 as strings, errors) are in scripts/etcd-sandbox.sh.
// Without etcd installed every test skips with "SKIPPED: ...".
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/peer_sandbox.h"

namespace vnptest {

inline std::string base64Encode(const std::string& in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {tbl[v >> 18], tbl[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], '='};
  }
  return out;
}

// Standard base64 (with or without padding) to bytes; std::nullopt on a character outside the alphabet.
inline std::optional<std::string> base64Decode(const std::string& in) {
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') break;
    else return std::nullopt;
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  return out;
}

// The range_end that makes [prefix, range_end) every key starting with prefix (etcd's "prefix end": the last byte
// that is not 0xff, plus one).
inline std::string etcdPrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last < 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

// An int64 of a gateway reply: a JSON string ("42"), sometimes a number; a field left out (zero value) is 0.
inline long long etcdInt(const Json& obj, const std::string& field) {
  if (!obj.is_object() || !obj.contains(field)) return 0;
  const Json& v = obj[field];
  if (v.is_number_integer()) return v.get<long long>();
  if (v.is_string()) return std::stoll(v.get<std::string>());
  return 0;
}

struct EtcdKv {
  std::string key, value;
  long long createRevision = 0, modRevision = 0, version = 0, lease = 0;
};

class EtcdTest : public ScratchTest {
 protected:
  void SetUp() override {
    ScratchTest::SetUp();
    if (HasFatalFailure()) return;
    etcdSandbox = std::make_unique<Sandbox>("etcd-sandbox.sh", dir / "etcd",
                                            std::vector<std::string>{"etcd.log", "etcd.out"});
    if (std::string why = etcdSandbox->unavailable(dir); !why.empty())
      GTEST_SKIP() << "SKIPPED: etcd cannot run here: " << why;
    ASSERT_TRUE(etcdSandbox->start(dir));
    endpoint = etcdSandbox->fact("ENDPOINT");
    ASSERT_FALSE(endpoint.empty()) << "etcd-sandbox.sh printed no ENDPOINT";
    gateway = JsonHttp(endpoint + "/v3");
  }

  void TearDown() override {
    if (etcdSandbox) {
      if (HasFailure() && etcdSandbox->started()) std::cerr << etcdSandbox->logTails(dir);
      EXPECT_TRUE(etcdSandbox->stop(dir));
    }
    ScratchTest::TearDown();
  }

  // Stops etcd and starts it again on the same endpoint with the same data.
  ::testing::AssertionResult restartEtcd() { return etcdSandbox->run("restart", dir); }

  // POST /v3/PATH with a JSON body through the gateway.
  HttpReply call(const std::string& path, const Json& body) { return gateway.post(path, body); }

  // kv/put; returns the revision of the put (0 after a test failure).
  long long put(const std::string& key, const std::string& value, long long lease = 0) {
    Json body = {{"key", base64Encode(key)}, {"value", base64Encode(value)}};
    if (lease) body["lease"] = std::to_string(lease);
    HttpReply r = call("/kv/put", body);
    if (r.status != 200) {
      ADD_FAILURE() << "put " << key << ": " << r;
      return 0;
    }
    return etcdInt(r.json["header"], "revision");
  }

  // kv/range of one key: its value, or nullopt if there is no such key.
  std::optional<std::string> get(const std::string& key) {
    auto kvs = range(key, "");
    if (kvs.empty()) return std::nullopt;
    return kvs.front().value;
  }

  // kv/range [key, rangeEnd) (one key if rangeEnd is empty).
  std::vector<EtcdKv> range(const std::string& key, const std::string& rangeEnd) {
    Json body = {{"key", base64Encode(key)}};
    if (!rangeEnd.empty()) body["range_end"] = base64Encode(rangeEnd);
    HttpReply r = call("/kv/range", body);
    if (r.status != 200 || !r.json.is_object()) {
      ADD_FAILURE() << "range " << key << ": " << r;
      return {};
    }
    std::vector<EtcdKv> out;
    for (const auto& kv : r.json.value("kvs", Json::array())) {
      EtcdKv e;
      e.key = base64Decode(kv.value("key", "")).value_or("<bad base64>");
      e.value = base64Decode(kv.value("value", "")).value_or("<bad base64>");
      e.createRevision = etcdInt(kv, "create_revision");
      e.modRevision = etcdInt(kv, "mod_revision");
      e.version = etcdInt(kv, "version");
      e.lease = etcdInt(kv, "lease");
      out.push_back(std::move(e));
    }
    return out;
  }

  std::vector<EtcdKv> rangePrefix(const std::string& prefix) { return range(prefix, etcdPrefixEnd(prefix)); }

  // lease/grant: the lease ID (0 after a test failure). The granted TTL is in *grantedTtl.
  long long grantLease(long long ttl, long long* grantedTtl = nullptr) {
    HttpReply r = call("/lease/grant", {{"TTL", std::to_string(ttl)}});
    if (r.status != 200 || !etcdInt(r.json, "ID")) {
      ADD_FAILURE() << "lease grant: " << r;
      return 0;
    }
    if (grantedTtl) *grantedTtl = etcdInt(r.json, "TTL");
    return etcdInt(r.json, "ID");
  }

  // lease/keepalive once: the TTL the lease has again, 0 if the lease is gone (the gateway then still answers 200).
  long long keepAlive(long long lease) {
    HttpReply r = call("/lease/keepalive", {{"ID", std::to_string(lease)}});
    if (r.status != 200) {
      ADD_FAILURE() << "lease keepalive: " << r;
      return 0;
    }
    return etcdInt(r.json.value("result", Json::object()), "TTL");
  }

  // etcdctl against this etcd over gRPC: an independent reader and writer (it does not use the JSON gateway).
  RunResult etcdctl(const std::string& args) {
    return runShell("ETCDCTL_API=3 etcdctl --endpoints=" + shellQuote(endpoint) + " --command-timeout=10s " + args,
                    dir, 30);
  }

  std::string endpoint;  // http://127.0.0.1:PORT
  JsonHttp gateway;      // $ENDPOINT/v3
  std::unique_ptr<Sandbox> etcdSandbox;
};

}  // namespace vnptest
