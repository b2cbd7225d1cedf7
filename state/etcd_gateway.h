// A client of etcd v3's HTTP/JSON gateway (the grpc-gateway every etcd serves under /v3/ on its client URLs), used
// by the etcd:// state backend. One object per store, shared (shared_ptr) with the locks it hands out, which may
// outlive the store; safe to use from several threads (each request takes a connection of its own from a pool).
//
// Facts of the gateway this relies on (etcd 3.4; checked by tests/integration/etcd_peer_test.cpp):
// - every call is a POST of a JSON body; keys and values are base64; int64 fields come back as JSON strings;
// - fields at their zero value are left out of replies (a failed txn has no "succeeded", a missing key no "kvs");
// - errors are HTTP 4xx/5xx with {"error", "message", "code" (a gRPC code)}, sent chunked with a trailer that
//   cpp-httplib 0.11.4 cannot parse (it reports a Read error after reading status, headers and the whole body).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/model.h"
#include "model/secret.h"

namespace httplib {
class Client;
}

namespace vnetplan::state::etcd {

using Clock = std::chrono::steady_clock;

struct Endpoint {
  std::string host;  // without brackets for IPv6
  int port = 2379;
  std::string str() const;  // "host:port" ("[::1]:2379")
};

// Everything an etcd:// URL (and the VNETPLAN_ETCD_* environment) says. Holds no secret: a password is only a
// reference (an environment variable or a file), read when authenticating.
struct Config {
  std::vector<Endpoint> endpoints;
  std::string prefix;  // "/vnetplan": every key of the store starts with prefix + "/"
  bool tls = false;
  std::string caFile, certFile, keyFile;
  std::string user;
  std::optional<SecretRef> password;
  std::chrono::seconds lockTtl{15};
  std::chrono::milliseconds timeout{10000};  // per operation, across retries and endpoints
};

// Parses etcd://HOST[:PORT][,HOST[:PORT]...]/PREFIX[?OPTION=VALUE&...]; see backend_etcd.cpp for the options.
// Errors never repeat a credential found in the URL.
Result<Config> parseUrl(const std::string& url);

std::string base64Encode(const std::string& in);
std::optional<std::string> base64Decode(const std::string& in);
// The range_end that selects every key starting with `prefix`.
std::string prefixEnd(std::string prefix);
// An int64 field of a gateway reply (a JSON string, sometimes a number); absent (zero value) is 0.
int64_t int64Field(const Json& obj, const char* field);

struct KeyValue {
  std::string key, value;
  int64_t createRevision = 0, modRevision = 0, version = 0, lease = 0;
};
// The "kvs" of a range reply (or of a txn's response_range); nullopt if a key or value is not base64.
std::optional<std::vector<KeyValue>> keyValues(const Json& rangeReply);

class Gateway {
 public:
  explicit Gateway(Config cfg);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  const Config& config() const { return cfg_; }

  // POST /v3/<path> (e.g. "kv/range"). Retries on another endpoint (or the same one, after a pause) while etcd
  // cannot be reached or has no leader, until `deadline`; an error names the endpoints and etcd's own message.
  // *ambiguous (if given) is set when an attempt may have reached etcd without its reply reaching us, so that the
  // reply returned may be that of a repeated request (a txn that already took effect once).
  Result<Json> call(const std::string& path, const Json& body, Clock::time_point deadline, bool* ambiguous = nullptr);
  Result<Json> call(const std::string& path, const Json& body, bool* ambiguous = nullptr) {
    return call(path, body, Clock::now() + cfg_.timeout, ambiguous);
  }

  // Requests sent (every attempt), by every gateway of this process: for metrics and benchmarks.
  static uint64_t requestsSent();

 private:
  struct Attempt;
  std::unique_ptr<httplib::Client> takeClient(size_t endpoint);
  void giveBack(size_t endpoint, std::unique_ptr<httplib::Client> client);
  Status authenticate(Clock::time_point deadline);
  std::string token();

  Config cfg_;
  std::mutex mu_;
  std::vector<std::vector<std::unique_ptr<httplib::Client>>> idle_;  // per endpoint, guarded by mu_
  std::string token_;                                                 // auth token, guarded by mu_
  std::atomic<size_t> current_{0};                                    // the endpoint tried first
};

}  // namespace vnetplan::state::etcd
