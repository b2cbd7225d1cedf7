// The Neutron v2.0 API as the vpc provider uses it: JSON in and out, the token added (and renewed once on a 401),
// NeutronError bodies turned into messages that name the request, the status and Neutron's own error type, and a
// reply that is not the JSON it should be reported as such (never trusted, never a crash).
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "providers/vpc/http.h"
#include "providers/vpc/keystone.h"

namespace vnetplan::vpc {

struct ApiReply {
  int status = 0;
  Json json;         // the body, parsed (null when empty)
  std::string type;  // NeutronError.type ("RouterInUse", "RevisionNumberConstraintFailed", ...) if any
  std::string message;
  bool ok() const { return status >= 200 && status < 300; }
};

class Neutron {
 public:
  // `base` is the endpoint including /v2.0; `auth` null for noauth.
  Neutron(std::shared_ptr<HttpClient> http, std::shared_ptr<TokenSource> auth);

  // A call whose every HTTP answer is returned (errors: no answer, or an answer that is not JSON).
  Result<ApiReply> call(const std::string& method, const std::string& path, const Json* body, Retry retry,
                        const httplib::Headers& headers = {}, std::optional<Deadline> deadline = {});
  // The same, an answer other than 2xx becoming an error that says what was asked and what Neutron said.
  Result<Json> expect(const std::string& method, const std::string& path, const Json* body, Retry retry,
                      const httplib::Headers& headers = {}, std::optional<Deadline> deadline = {});

  // GET /COLLECTION?QUERY, following pagination links: the objects.
  Result<std::vector<Json>> list(const std::string& collection, const std::string& query,
                                 std::optional<Deadline> deadline = {});

  // "POST /routers: HTTP 409 RouterInUse: ..." for a reply that failed.
  static std::string failure(const std::string& method, const std::string& path, const ApiReply& r);

  const std::string& endpoint() const { return endpoint_; }
  long requests() const { return requests_.load(); }

 private:
  std::shared_ptr<HttpClient> http_;
  std::shared_ptr<TokenSource> auth_;
  std::string endpoint_;
  std::atomic<long> requests_{0};
};

// Percent-encoding of a query value.
std::string urlEncode(const std::string& s);

}  // namespace vnetplan::vpc
