#include "providers/vpc/keystone.h"

#include <spdlog/spdlog.h>

#include <ctime>

namespace vnetplan::vpc {

std::optional<std::chrono::system_clock::time_point> parseIsoTime(const std::string& s) {
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return std::nullopt;
  if (*rest == '.')
    while (*++rest >= '0' && *rest <= '9') {
    }
  if (*rest != 'Z' && *rest != '\0' && std::string(rest) != "+00:00") return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

namespace {

std::string v3Url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.size() < 3 || url.compare(url.size() - 3, 3, "/v3") != 0) url += "/v3";
  return url;
}

Json nameOrId(const std::string& name, const std::string& id) {
  return id.empty() ? Json{{"name", name}} : Json{{"id", id}};
}

}  // namespace

KeystoneAuth::KeystoneAuth(const CloudConfig& config, HttpOptions http) : config_(config) {
  if (!config_.authUrl.empty())
    if (auto u = parseUrl(v3Url(config_.authUrl))) http_ = std::make_shared<HttpClient>(*u, std::move(http));
}

int KeystoneAuth::issued() {
  std::lock_guard<std::mutex> lock(mu_);
  return issued_;
}

std::string KeystoneAuth::projectId() {
  std::lock_guard<std::mutex> lock(mu_);
  return current_ ? current_->projectId : config_.projectId;
}

bool KeystoneAuth::fresh(const Token& t) const {
  // Renew a little before the end: a request sent with a token that expires on the way is refused.
  auto life = t.expires - t.issued;
  auto margin = std::min<std::chrono::system_clock::duration>(std::chrono::seconds(60), life / 5);
  return std::chrono::system_clock::now() < t.expires - margin;
}

Json KeystoneAuth::identityBody() const {
  const CloudConfig& c = config_;
  Json auth;
  if (c.authType == "v3applicationcredential") {
    Json cred = {{"secret", c.appCredSecret}};
    if (!c.appCredId.empty()) {
      cred["id"] = c.appCredId;
    } else {
      cred["name"] = c.appCredName;
      Json user = nameOrId(c.username, c.userId);
      if (c.userId.empty()) user["domain"] = nameOrId(c.userDomainName, c.userDomainId);
      cred["user"] = user;
    }
    auth["identity"] = {{"methods", {"application_credential"}}, {"application_credential", cred}};
    return Json{{"auth", auth}};  // an application credential is scoped already
  }
  if (c.authType == "token") {
    auth["identity"] = {{"methods", {"token"}}, {"token", {{"id", c.token}}}};
  } else {
    Json user = nameOrId(c.username, c.userId);
    if (c.userId.empty()) user["domain"] = nameOrId(c.userDomainName, c.userDomainId);
    user["password"] = c.password;
    auth["identity"] = {{"methods", {"password"}}, {"password", {{"user", user}}}};
  }
  Json project = nameOrId(c.projectName, c.projectId);
  if (c.projectId.empty()) project["domain"] = nameOrId(c.projectDomainName, c.projectDomainId);
  auth["scope"] = {{"project", project}};
  return Json{{"auth", auth}};
}

Result<KeystoneAuth::Token> KeystoneAuth::issue(std::optional<Deadline> deadline) {
  const CloudConfig& c = config_;
  if (c.authType == "token" && !http_) {
    // A ready token and no Keystone to ask about it: used as it is, for as long as the cloud takes it.
    Token t;
    t.value = c.token;
    t.issued = std::chrono::system_clock::now();
    t.expires = t.issued + std::chrono::hours(24 * 365);
    t.projectId = c.projectId;
    return t;
  }
  if (!http_) {
    auto u = parseUrl(v3Url(c.authUrl));
    return err("Keystone URL: " + (u ? std::string("unusable") : u.error().message));
  }
  Result<HttpReply> reply = err("");
  if (c.authType == "token" && c.projectId.empty() && c.projectName.empty()) {
    // A ready token without a project to rescope to: validate it to learn its project, expiry and catalog.
    reply = http_->send("GET", "/auth/tokens", nullptr, {{"X-Auth-Token", c.token}, {"X-Subject-Token", c.token}},
                        Retry::Idempotent, deadline);
  } else {
    const std::string body = identityBody().dump();
    // Asking Keystone twice for a token does no harm: idempotent for retries.
    reply = http_->send("POST", "/auth/tokens", &body, {}, Retry::Idempotent, deadline);
  }
  if (!reply) return err("Keystone " + http_->base().str() + ": " + reply.error().message);
  if (reply->status == 401 || reply->status == 403 || reply->status == 404)
    return err("Keystone " + http_->base().str() + " refused the credentials of " + c.describe + " (HTTP " +
               std::to_string(reply->status) + ")");
  if (reply->status != 200 && reply->status != 201)
    return err("Keystone " + http_->base().str() + ": HTTP " + std::to_string(reply->status) + ": " +
               excerpt(reply->body));
  Json j = Json::parse(reply->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("token") || !j["token"].is_object())
    return err("Keystone " + http_->base().str() + " answered a token request with something that is not a token: " +
               excerpt(reply->body, 120));
  const Json& tok = j["token"];
  Token t;
  t.value = c.authType == "token" && reply->status == 200 ? c.token : reply->header("X-Subject-Token");
  if (t.value.empty()) return err("Keystone " + http_->base().str() + " issued no X-Subject-Token");
  auto exp = parseIsoTime(tok.value("expires_at", ""));
  auto iss = parseIsoTime(tok.value("issued_at", ""));
  if (!exp) return err("Keystone " + http_->base().str() + ": token without a readable expires_at");
  t.expires = *exp;
  t.issued = iss ? *iss : std::chrono::system_clock::now();
  if (tok.contains("project") && tok["project"].is_object()) t.projectId = tok["project"].value("id", "");
  if (t.projectId.empty())
    return err("Keystone " + http_->base().str() + " issued a token with no project scope for " + c.describe +
               " (name a project)");
  t.catalog = tok.value("catalog", Json::array());
  spdlog::debug("vpc: Keystone token for {} (project {}), valid until {}", c.describe, t.projectId,
                tok.value("expires_at", "?"));
  return t;
}

Result<std::string> KeystoneAuth::token(const std::string& refused, std::optional<Deadline> deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!refused.empty() && current_ && current_->value != refused && fresh(*current_)) return current_->value;
  const bool renew = !refused.empty();
  if (renew && config_.authType == "token" && current_)
    return err("the token given for " + config_.describe + " was refused (HTTP 401) and a ready token cannot be "
               "renewed: give credentials instead");
  if (!renew && current_ && fresh(*current_)) return current_->value;
  if (renew) spdlog::info("vpc: the cloud refused the Keystone token of {}; authenticating again", config_.describe);
  auto t = issue(deadline);
  if (!t) return t.error();
  current_ = std::move(*t);
  ++issued_;
  return current_->value;
}

Result<std::string> KeystoneAuth::networkEndpoint(const std::string& region, const std::string& interface) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!current_) return err("no token yet");
  std::string want = interface;
  if (want.size() > 3 && want.compare(want.size() - 3, 3, "URL") == 0) want.resize(want.size() - 3);  // publicURL
  std::vector<std::string> regions;
  for (const auto& svc : current_->catalog) {
    if (!svc.is_object() || svc.value("type", "") != "network" || !svc.contains("endpoints")) continue;
    for (const auto& ep : svc["endpoints"]) {
      if (!ep.is_object() || ep.value("interface", "") != want) continue;
      const std::string r = ep.value("region_id", ep.value("region", ""));
      regions.push_back(r);
      if (region.empty() || r == region || ep.value("region", "") == region) return ep.value("url", "");
    }
  }
  if (regions.empty())
    return err("the catalog of " + config_.describe + " has no " + want +
               " endpoint of type network (give the Neutron endpoint with the Target's endpoint)");
  std::string list;
  for (const auto& r : regions) list += (list.empty() ? "" : ", ") + r;
  return err("the catalog of " + config_.describe + " has no network endpoint in region '" + region +
             "' (regions: " + list + ")");
}

}  // namespace vnetplan::vpc
