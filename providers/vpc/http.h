// HTTP(S) for the vpc provider, on cpp-httplib (+ OpenSSL): one base URL, certificate verification always on
// (the cloud's CA file when it names one, else the system's), a timeout on every attempt that never runs past the
// caller's deadline, and bounded retries with back-off where a retry cannot do harm:
//   - the connection could not be made (nothing was sent): every request;
//   - 429 Too Many Requests (the server refused before doing anything; Retry-After honoured): every request;
//   - other errors after the request was sent (5xx, a lost or timed-out answer): only requests that are safe to
//     repeat (Retry::Idempotent: GET, DELETE, setting a whole tag list). A POST or a guarded PUT may have been
//     done by a server that then failed (neutron-server answers 500 after some commits), so it is not repeated:
//     the error says the outcome is unknown and the caller re-observes.
// Connections are kept alive and pooled, one per request in flight, so concurrent requests are fine. Nothing here
// logs a header or a body (tokens and passwords travel in them).
#pragma once
#include <httplib.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/socket.h"

namespace vnetplan::vpc {

struct Url {
  bool https = false;
  std::string host;
  int port = 0;
  std::string path;  // without a trailing '/', "" for the root
  std::string origin() const;  // "https://host:port"
  std::string str() const { return origin() + path; }
};
// "http(s)://host[:port][/path]"; an error says what is wrong with it.
Result<Url> parseUrl(const std::string& text);

struct HttpOptions {
  std::string caFile;  // PEM file of the CAs to trust ("" = the system's)
  std::chrono::milliseconds attemptTimeout{30000};
  std::chrono::milliseconds connectTimeout{10000};
  int maxAttempts = 4;
  std::chrono::milliseconds firstBackoff{250};
  std::chrono::milliseconds maxRetryAfter{30000};  // a longer Retry-After is an error, not a wait
};

struct HttpReply {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  std::string header(const std::string& name) const;
};

enum class Retry { Idempotent, OnlyIfNotSent };

class HttpClient {
 public:
  HttpClient(Url base, HttpOptions opts);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // METHOD base.path + `path` (which starts with '/' and may carry a query). An error when no HTTP answer came,
  // or a retryable one kept coming until the attempts or the deadline ran out; any other answer (4xx, 5xx) is a
  // reply for the caller to judge.
  Result<HttpReply> send(const std::string& method, const std::string& path, const std::string* body,
                         const httplib::Headers& headers, Retry retry, std::optional<Deadline> deadline = {});

  const Url& base() const { return base_; }
  const HttpOptions& options() const { return opts_; }

 private:
  std::unique_ptr<httplib::Client> acquire();
  void release(std::unique_ptr<httplib::Client> c);

  Url base_;
  HttpOptions opts_;
  std::mutex mu_;
  std::vector<std::unique_ptr<httplib::Client>> idle_;
};

// The wait a Retry-After header asks for (seconds or an HTTP date); nullopt if absent or unreadable.
std::optional<std::chrono::milliseconds> retryAfter(const std::string& value);
// Printable, bounded excerpt of a reply body for error messages.
std::string excerpt(const std::string& body, size_t max = 300);

}  // namespace vnetplan::vpc
