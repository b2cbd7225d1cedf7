#include "providers/vpc/http.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <random>
#include <thread>

#include "base/redact.h"

namespace vnetplan::vpc {

std::string Url::origin() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return std::string(https ? "https://" : "http://") + h + ":" + std::to_string(port);
}

Result<Url> parseUrl(const std::string& text) {
  // Every message quotes the URL without its credentials: the text may carry userinfo that must never reach a
  // message, a log or a plan.
  const std::string shown = redactCredentials(text);
  Url u;
  std::string rest;
  if (text.rfind("https://", 0) == 0) {
    u.https = true;
    rest = text.substr(8);
  } else if (text.rfind("http://", 0) == 0) {
    rest = text.substr(7);
  } else {
    return err("'" + shown + "' is not an http:// or https:// URL");
  }
  size_t slash = rest.find('/');
  std::string hostPort = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  if (u.path.find_first_of("?#") != std::string::npos) return err("'" + shown + "': a base URL takes no query or fragment");
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  // userinfo (user:password@host) is refused, not used: secrets come from secret references or clouds.yaml.
  if (hostPort.find('@') != std::string::npos)
    return err("'" + shown + "': credentials do not belong in a URL (give them as secret references or in clouds.yaml)");
  std::string portText;
  if (!hostPort.empty() && hostPort[0] == '[') {
    size_t close = hostPort.find(']');
    if (close == std::string::npos) return err("'" + shown + "': unterminated [IPv6 address]");
    u.host = hostPort.substr(1, close - 1);
    if (close + 1 < hostPort.size()) {
      if (hostPort[close + 1] != ':') return err("'" + shown + "': unexpected text after ]");
      portText = hostPort.substr(close + 2);
    }
  } else {
    size_t colon = hostPort.rfind(':');
    u.host = hostPort.substr(0, colon);
    if (colon != std::string::npos) portText = hostPort.substr(colon + 1);
  }
  if (u.host.empty()) return err("'" + shown + "' has no host");
  u.port = u.https ? 443 : 80;
  if (!portText.empty()) {
    if (portText.size() > 5 || portText.find_first_not_of("0123456789") != std::string::npos)
      return err("'" + shown + "': bad port '" + portText + "'");
    u.port = std::stoi(portText);
    if (u.port < 1 || u.port > 65535) return err("'" + shown + "': port out of range");
  }
  return u;
}

std::string HttpReply::header(const std::string& name) const {
  auto it = headers.find(name);  // case-insensitive in httplib
  return it == headers.end() ? "" : it->second;
}

std::optional<std::chrono::milliseconds> retryAfter(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (value.find_first_not_of("0123456789") == std::string::npos) {
    if (value.size() > 9) return std::chrono::milliseconds(std::chrono::hours(24));
    return std::chrono::milliseconds(std::stoll(value) * 1000);
  }
  // An HTTP date: "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  if (!strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return std::nullopt;
  std::time_t when = timegm(&tm);
  std::time_t now = std::time(nullptr);
  return std::chrono::milliseconds(std::max<long long>(0, static_cast<long long>(when - now)) * 1000);
}

std::string excerpt(const std::string& body, size_t max) {
  std::string out;
  for (unsigned char c : body) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (c == '\n' || c == '\r' || c == '\t') out += ' ';
    else if (c < 0x20 || c == 0x7f) out += '?';
    else out += static_cast<char>(c);
  }
  return out;
}

HttpClient::HttpClient(Url base, HttpOptions opts) : base_(std::move(base)), opts_(std::move(opts)) {}
HttpClient::~HttpClient() = default;

std::unique_ptr<httplib::Client> HttpClient::acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  auto c = std::make_unique<httplib::Client>(base_.origin());
  c->set_keep_alive(true);
  c->set_follow_location(false);
  if (base_.https) {
    // Verification stays on; the cloud's CA bundle replaces the system's when it names one.
    c->enable_server_certificate_verification(true);
    if (!opts_.caFile.empty()) c->set_ca_cert_path(opts_.caFile.c_str());
  }
  return c;
}

void HttpClient::release(std::unique_ptr<httplib::Client> c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < 32) idle_.push_back(std::move(c));
}

namespace {

bool nothingSent(httplib::Error e) {
  // Connect failures: the request never left (a TLS handshake refused for its certificate is not retried).
  return e == httplib::Error::Connection || e == httplib::Error::BindIPAddress ||
         e == httplib::Error::SSLConnection;
}

std::string whyNoAnswer(httplib::Error e, const Url& base, std::chrono::milliseconds timeout) {
  switch (e) {
    case httplib::Error::Connection: return "cannot connect to " + base.origin();
    case httplib::Error::Read: return "no (complete) answer from " + base.origin() + " within " +
                                      std::to_string(timeout.count()) + " ms or the connection was closed";
    case httplib::Error::Write: return "the connection to " + base.origin() + " broke while sending";
    case httplib::Error::SSLConnection: return "TLS handshake with " + base.origin() + " failed";
    case httplib::Error::SSLServerVerification:
      return "the certificate of " + base.origin() +
             " could not be verified (give the cloud's CA bundle: cacert in clouds.yaml or OS_CACERT)";
    case httplib::Error::SSLLoadingCerts: return "cannot load the CA bundle for " + base.origin();
    default: return httplib::to_string(e) + " (" + base.origin() + ")";
  }
}

std::chrono::milliseconds jittered(std::chrono::milliseconds base) {
  thread_local std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pct(75, 125);
  return std::chrono::milliseconds(base.count() * pct(rng) / 100);
}

}  // namespace

Result<HttpReply> HttpClient::send(const std::string& method, const std::string& path, const std::string* body,
                                   const httplib::Headers& headers, Retry retry, std::optional<Deadline> deadline) {
  const std::string what = method + " " + base_.path + path.substr(0, path.find('?'));
  auto backoff = opts_.firstBackoff;
  std::string lastProblem;
  for (int attempt = 1;; ++attempt) {
    auto timeout = opts_.attemptTimeout;
    auto connectTimeout = opts_.connectTimeout;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - SteadyClock::now());
      if (left.count() <= 0)
        return err(what + ": out of time" + (lastProblem.empty() ? "" : " (last attempt: " + lastProblem + ")"));
      timeout = std::min(timeout, left);
      connectTimeout = std::min(connectTimeout, left);
    }
    // A request that must not run twice goes on a fresh connection: a kept-alive one the server has just closed
    // would fail it after it may have been sent.
    std::unique_ptr<httplib::Client> client;
    if (retry == Retry::Idempotent) {
      client = acquire();
    } else {
      auto fresh = std::make_unique<httplib::Client>(base_.origin());
      fresh->set_keep_alive(true);
      fresh->set_follow_location(false);
      if (base_.https) {
        fresh->enable_server_certificate_verification(true);
        if (!opts_.caFile.empty()) fresh->set_ca_cert_path(opts_.caFile.c_str());
      }
      client = std::move(fresh);
    }
    client->set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(connectTimeout));
    client->set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    client->set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));

    httplib::Request req;
    req.method = method;
    req.path = base_.path + path;
    req.headers = headers;
    req.headers.emplace("Accept", "application/json");
    if (body) {
      req.body = *body;
      req.headers.emplace("Content-Type", "application/json");
    }
    httplib::Response res;
    httplib::Error e = httplib::Error::Success;
    const auto t0 = SteadyClock::now();
    const bool answered = client->send(req, res, e);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count();

    bool again = false;
    std::chrono::milliseconds wait = jittered(backoff);
    if (!answered) {
      lastProblem = whyNoAnswer(e, base_, timeout);
      spdlog::debug("vpc: {} {}: {} ({} ms)", method, req.path, lastProblem, ms);
      if (e == httplib::Error::SSLServerVerification || e == httplib::Error::SSLLoadingCerts)
        return err(what + ": " + lastProblem);
      again = nothingSent(e) || retry == Retry::Idempotent;
      if (!again || attempt >= opts_.maxAttempts)
        return err(what + ": " + lastProblem +
                   (again ? " (after " + std::to_string(attempt) + " attempts)"
                          : "; the request may or may not have been carried out"));
    } else {
      spdlog::debug("vpc: {} {} -> {} ({} ms)", method, req.path, res.status, ms);
      release(std::move(client));
      HttpReply reply{res.status, std::move(res.body), std::move(res.headers)};
      const bool throttled = reply.status == 429;
      const bool serverError = reply.status >= 500 && reply.status <= 599;
      again = throttled || (serverError && retry == Retry::Idempotent);
      if (!again || attempt >= opts_.maxAttempts) return reply;
      if (throttled || reply.status == 503) {
        if (auto ra = retryAfter(reply.header("Retry-After"))) {
          if (*ra > opts_.maxRetryAfter) return reply;  // the caller reports the status and the wait asked for
          wait = std::max(*ra, std::chrono::milliseconds(1));
        }
      }
      lastProblem = "HTTP " + std::to_string(reply.status);
      if (deadline && SteadyClock::now() + wait >= *deadline) return reply;
    }
    spdlog::debug("vpc: {}: retrying in {} ms (attempt {}/{}): {}", what, wait.count(), attempt + 1,
                  opts_.maxAttempts, lastProblem);
    std::this_thread::sleep_for(wait);
    backoff *= 2;
  }
}

}  // namespace vnetplan::vpc
