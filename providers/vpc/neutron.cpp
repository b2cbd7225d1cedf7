#include "providers/vpc/neutron.h"

#include <algorithm>
#include <cctype>

namespace vnetplan::vpc {

std::string urlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

Neutron::Neutron(std::shared_ptr<HttpClient> http, std::shared_ptr<TokenSource> auth)
    : http_(std::move(http)), auth_(std::move(auth)), endpoint_(http_->base().str()) {}

std::string Neutron::failure(const std::string& method, const std::string& path, const ApiReply& r) {
  std::string p = path.substr(0, path.find('?'));
  std::string out = method + " " + p + ": HTTP " + std::to_string(r.status);
  if (!r.type.empty()) out += " " + r.type;
  if (!r.message.empty()) out += ": " + r.message;
  return out;
}

Result<ApiReply> Neutron::call(const std::string& method, const std::string& path, const Json* body, Retry retry,
                               const httplib::Headers& headers, std::optional<Deadline> deadline) {
  const std::string text = body ? body->dump() : std::string();
  std::string refused;
  for (int round = 0;; ++round) {
    httplib::Headers h = headers;
    std::string sent;
    if (auth_) {
      auto tok = auth_->token(refused, deadline);
      if (!tok) return tok.error();
      sent = *tok;
      h.emplace("X-Auth-Token", *tok);
    }
    ++requests_;
    auto reply = http_->send(method, path, body ? &text : nullptr, h, retry, deadline);
    if (!reply) return err("neutron " + reply.error().message);
    // 401: the token expired or was revoked; one new token, one more try (the request was refused, not done).
    if (reply->status == 401 && auth_ && round == 0) {
      refused = sent;
      continue;
    }
    ApiReply r;
    r.status = reply->status;
    const std::string what = method + " " + http_->base().path + path.substr(0, path.find('?'));
    const bool hasBody = reply->body.find_first_not_of(" \t\r\n") != std::string::npos;
    if (hasBody) {
      r.json = Json::parse(reply->body, nullptr, false);
      if (r.json.is_discarded()) {
        r.json = nullptr;
        if (r.ok())
          return err("neutron " + what + ": HTTP " + std::to_string(r.status) +
                     " with a body that is not JSON: " + excerpt(reply->body, 160));
        r.message = excerpt(reply->body, 200);
      }
    }
    if (!r.ok() && r.json.is_object()) {
      const Json& e = r.json.contains("NeutronError") ? r.json["NeutronError"] : r.json;
      if (e.is_object()) {
        if (e.contains("type") && e["type"].is_string()) r.type = e["type"].get<std::string>();
        if (e.contains("message") && e["message"].is_string()) r.message = excerpt(e["message"].get<std::string>());
      }
      if (r.message.empty()) r.message = excerpt(reply->body, 200);
    }
    if (r.status == 429) {
      std::string ra = reply->header("Retry-After");
      r.message = "too many requests" + (ra.empty() ? std::string() : " (Retry-After: " + excerpt(ra, 40) + ")") +
                  (r.message.empty() ? "" : "; " + r.message);
    }
    if (r.status == 401) r.message = "the cloud refused the (renewed) token" + (r.message.empty() ? "" : ": " + r.message);
    return r;
  }
}

Result<Json> Neutron::expect(const std::string& method, const std::string& path, const Json* body, Retry retry,
                             const httplib::Headers& headers, std::optional<Deadline> deadline) {
  auto r = call(method, path, body, retry, headers, deadline);
  if (!r) return r.error();
  if (!r->ok()) return err("neutron " + failure(method, http_->base().path + path, *r));
  return r->json;
}

Result<std::vector<Json>> Neutron::list(const std::string& collection, const std::string& query,
                                        std::optional<Deadline> deadline) {
  std::string key = collection;
  std::replace(key.begin(), key.end(), '-', '_');
  std::vector<Json> out;
  std::string path = "/" + collection + (query.empty() ? "" : "?" + query);
  for (int page = 0; page < 10000; ++page) {
    auto j = expect("GET", path, nullptr, Retry::Idempotent, {}, deadline);
    if (!j) return j.error();
    if (!j->is_object() || !j->contains(key) || !(*j)[key].is_array())
      return err("neutron GET " + http_->base().path + "/" + collection + ": the reply has no list '" + key +
                 "': " + excerpt(j->dump(), 160));
    for (auto& o : (*j)[key]) {
      if (!o.is_object()) return err("neutron GET /" + collection + ": an element is not an object");
      out.push_back(std::move(o));
    }
    // Pagination (only when the server limits pages): follow rel=next, relative to the endpoint.
    std::string next;
    if (j->contains(key + "_links") && (*j)[key + "_links"].is_array())
      for (const auto& l : (*j)[key + "_links"])
        if (l.is_object() && l.value("rel", "") == "next" && l.contains("href") && l["href"].is_string())
          next = l["href"].get<std::string>();
    if (next.empty()) return out;
    size_t at = next.find(http_->base().path + "/" + collection);
    if (at == std::string::npos) return err("neutron: a pagination link points elsewhere: " + excerpt(next, 160));
    path = next.substr(at + http_->base().path.size());
  }
  return err("neutron GET /" + collection + ": too many pages");
}

}  // namespace vnetplan::vpc
