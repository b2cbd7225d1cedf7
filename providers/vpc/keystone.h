// Keystone v3 tokens for the vpc provider: issued with a password or an application credential (or a ready token
// taken as is), reused while they are valid, renewed shortly before they expire and at once when the cloud answers
// 401. One KeystoneAuth per identity is kept by the provider, so the plan and the apply of one invocation (and
// every target on the same cloud account) share a token.
#pragma once
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "base/socket.h"
#include "providers/vpc/cloud_config.h"
#include "providers/vpc/http.h"

namespace vnetplan::vpc {

using Json = nlohmann::json;

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // A token to send as X-Auth-Token: the current one while it is fresh; a new one when it expires soon or when it
  // is `refused` (the cloud answered 401 to it). Requests in parallel refused with the same token share one
  // renewal: a token other than `refused` is already the new one.
  virtual Result<std::string> token(const std::string& refused, std::optional<Deadline> deadline) = 0;
};

class KeystoneAuth final : public TokenSource {
 public:
  KeystoneAuth(const CloudConfig& config, HttpOptions http);

  Result<std::string> token(const std::string& refused, std::optional<Deadline> deadline) override;

  // From the current token (after token() succeeded): its project and the network endpoint of its catalog.
  std::string projectId();
  Result<std::string> networkEndpoint(const std::string& region, const std::string& interface);

  // Tokens issued (or ready tokens validated) by this object: for tests of reuse and renewal.
  int issued();

 private:
  struct Token {
    std::string value;  // secret
    std::chrono::system_clock::time_point expires, issued;
    std::string projectId;
    Json catalog;
  };
  Result<Token> issue(std::optional<Deadline> deadline);
  Json identityBody() const;
  bool fresh(const Token& t) const;

  CloudConfig config_;  // holds the secrets
  std::shared_ptr<HttpClient> http_;
  std::mutex mu_;
  std::optional<Token> current_;
  int issued_ = 0;
};

// "2026-11-28T04:28:30.000000Z" -> time point; nullopt if unreadable.
std::optional<std::chrono::system_clock::time_point> parseIsoTime(const std::string& s);

}  // namespace vnetplan::vpc
