#include "state/etcd_gateway.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <thread>

#include "base/duration.h"

namespace vnetplan::state::etcd {

namespace {

std::atomic<uint64_t> gRequests{0};

const char* kOptions = "tls, cacert, cert, key, user, password-env, password-file, lock-ttl, timeout";

std::optional<std::string> percentDecodeValue(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
      return std::nullopt;
    out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
    i += 2;
  }
  return out;
}

std::string envOr(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Status readableFile(const std::string& what, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || ::access(path.c_str(), R_OK) != 0)
    return err(what + " " + path + " is not a readable file");
  return {};
}

Result<Endpoint> parseEndpoint(const std::string& s) {
  Endpoint ep;
  std::string portText;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) return err("endpoint '" + s + "': unclosed '['");
    ep.host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return err("endpoint '" + s + "': expected ':' after ']'");
      portText = s.substr(close + 2);
    }
  } else {
    size_t colon = s.rfind(':');
    ep.host = s.substr(0, colon);
    if (colon != std::string::npos) portText = s.substr(colon + 1);
    if (ep.host.find(':') != std::string::npos) return err("endpoint '" + s + "': write an IPv6 address as [ADDR]:PORT");
  }
  if (ep.host.empty()) return err("endpoint '" + s + "' has no host");
  for (char c : ep.host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ':'))
      return err("endpoint '" + s + "': invalid character in host");
  if (!portText.empty() || s.back() == ':') {
    if (portText.empty() || portText.size() > 5 ||
        !std::all_of(portText.begin(), portText.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return err("endpoint '" + s + "': the port is not a number");
    ep.port = std::stoi(portText);
    if (ep.port < 1 || ep.port > 65535) return err("endpoint '" + s + "': port out of range");
  }
  return ep;
}

}  // namespace

std::string Endpoint::str() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Config> parseUrl(const std::string& url) {
  const std::string scheme = "etcd://";
  if (url.compare(0, scheme.size(), scheme) != 0) return err("not an etcd:// URL");
  std::string rest = url.substr(scheme.size());
  if (rest.find('\0') != std::string::npos) return err("the URL contains a NUL byte");
  if (rest.find('#') != std::string::npos) return err("a fragment ('#') has no meaning here");
  std::string query;
  if (size_t q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest.resize(q);
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string::npos)
    return err("credentials in the URL are refused (they would show in process lists and logs): give user=NAME "
               "with password-env=VARIABLE or password-file=PATH, or set VNETPLAN_ETCD_USER and "
               "VNETPLAN_ETCD_PASSWORD (or VNETPLAN_ETCD_PASSWORD_FILE)");
  Config cfg;
  if (authority.empty()) return err("no endpoint (etcd://HOST:PORT/PREFIX)");
  size_t start = 0;
  while (true) {
    size_t comma = authority.find(',', start);
    auto ep = parseEndpoint(authority.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!ep) return ep.error();
    cfg.endpoints.push_back(*ep);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path.empty() || path == "/")
    return err("no key prefix: every key of the store lives under it (e.g. etcd://127.0.0.1:2379/vnetplan)");
  for (size_t i = 1; i <= path.size();) {
    size_t next = path.find('/', i);
    if (next == std::string::npos) next = path.size();
    std::string comp = path.substr(i, next - i);
    if (comp.empty() || comp == "." || comp == "..")
      return err("key prefix '" + path + "': empty, '.' and '..' components are not allowed");
    i = next + 1;
  }
  cfg.prefix = path;

  // Defaults from the environment (like etcdctl's ETCDCTL_*), then the URL's options.
  cfg.caFile = envOr("VNETPLAN_ETCD_CACERT");
  cfg.certFile = envOr("VNETPLAN_ETCD_CERT");
  cfg.keyFile = envOr("VNETPLAN_ETCD_KEY");
  cfg.user = envOr("VNETPLAN_ETCD_USER");
  if (!envOr("VNETPLAN_ETCD_PASSWORD").empty())
    cfg.password = SecretRef{SecretRef::Source::Env, "VNETPLAN_ETCD_PASSWORD"};
  else if (std::string f = envOr("VNETPLAN_ETCD_PASSWORD_FILE"); !f.empty())
    cfg.password = SecretRef{SecretRef::Source::File, f};
  std::optional<bool> tls;
  start = 0;
  while (!query.empty() && start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string kv = query.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    start = amp == std::string::npos ? query.size() + 1 : amp + 1;
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    std::string k = kv.substr(0, eq);
    if (k == "password" || k == "pass" || k == "token")
      return err("option '" + k + "': a secret is never given in the URL (it would show in process lists and "
                 "logs): use password-env=VARIABLE or password-file=PATH");
    if (eq == std::string::npos) return err("option '" + k + "' has no value (OPTION=VALUE)");
    auto v = percentDecodeValue(kv.substr(eq + 1));
    if (!v) return err("option '" + k + "': invalid percent-encoding");
    if (k == "tls") {
      if (*v == "true" || *v == "1" || *v == "yes") tls = true;
      else if (*v == "false" || *v == "0" || *v == "no") tls = false;
      else return err("option tls: expected true or false");
    } else if (k == "cacert") {
      cfg.caFile = *v;
    } else if (k == "cert") {
      cfg.certFile = *v;
    } else if (k == "key") {
      cfg.keyFile = *v;
    } else if (k == "user") {
      cfg.user = *v;
    } else if (k == "password-env") {
      cfg.password = SecretRef{SecretRef::Source::Env, *v};
    } else if (k == "password-file") {
      cfg.password = SecretRef{SecretRef::Source::File, *v};
    } else if (k == "lock-ttl" || k == "timeout") {
      auto d = parseDuration(*v);
      if (!d) return err("option " + k + ": not a duration: " + *v + " (e.g. 15s)");
      if (k == "lock-ttl") {
        if (*d < std::chrono::seconds(2))
          return err("option lock-ttl: etcd's shortest lease is 2s (got " + *v + ")");
        cfg.lockTtl = std::chrono::duration_cast<std::chrono::seconds>(*d);
      } else {
        if (*d < std::chrono::milliseconds(100)) return err("option timeout: at least 100ms");
        cfg.timeout = *d;
      }
    } else {
      return err("unknown option '" + k + "' (known: " + kOptions + ")");
    }
  }
  const bool wantsTls = !cfg.caFile.empty() || !cfg.certFile.empty() || !cfg.keyFile.empty();
  if (tls == false && wantsTls) return err("tls=false, but a CA or client certificate is given");
  cfg.tls = tls.value_or(wantsTls);
  if (cfg.certFile.empty() != cfg.keyFile.empty())
    return err("a client certificate needs both cert= and key= (or VNETPLAN_ETCD_CERT and VNETPLAN_ETCD_KEY)");
  if (!cfg.caFile.empty())
    if (Status s = readableFile("CA certificate", cfg.caFile); !s) return s.error();
  if (!cfg.certFile.empty()) {
    if (Status s = readableFile("client certificate", cfg.certFile); !s) return s.error();
    if (Status s = readableFile("client key", cfg.keyFile); !s) return s.error();
  }
  if (cfg.password && cfg.user.empty()) return err("a password is given but no user (user=NAME or VNETPLAN_ETCD_USER)");
  if (!cfg.user.empty() && !cfg.password)
    return err("user " + cfg.user + " needs a password: password-env=VARIABLE or password-file=PATH (or "
               "VNETPLAN_ETCD_PASSWORD / VNETPLAN_ETCD_PASSWORD_FILE)");
  return cfg;
}

std::string base64Encode(const std::string& in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
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

std::optional<std::string> base64Decode(const std::string& in) {
  std::string out;
  out.reserve(in.size() / 4 * 3);
  unsigned buf = 0;
  int bits = 0;
  bool padding = false;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') {
      padding = true;
      continue;
    } else return std::nullopt;
    if (padding) return std::nullopt;  // data after '='
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  return out;
}

std::string prefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last < 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

int64_t int64Field(const Json& obj, const char* field) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(field);
  if (it == obj.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    return end && *end == '\0' ? v : 0;
  }
  return 0;
}

std::optional<std::vector<KeyValue>> keyValues(const Json& reply) {
  std::vector<KeyValue> out;
  if (!reply.is_object()) return out;
  auto kvs = reply.find("kvs");
  if (kvs == reply.end() || !kvs->is_array()) return out;
  for (const auto& kv : *kvs) {
    KeyValue e;
    auto k = base64Decode(kv.value("key", ""));
    auto v = base64Decode(kv.value("value", ""));
    if (!k || !v) return std::nullopt;
    e.key = std::move(*k);
    e.value = std::move(*v);
    e.createRevision = int64Field(kv, "create_revision");
    e.modRevision = int64Field(kv, "mod_revision");
    e.version = int64Field(kv, "version");
    e.lease = int64Field(kv, "lease");
    out.push_back(std::move(e));
  }
  return out;
}

// ---- the gateway ----------------------------------------------------------------------------------------

Gateway::Gateway(Config cfg) : cfg_(std::move(cfg)), idle_(cfg_.endpoints.size()) {
  // OpenSSL writes to the socket with write(2): a connection etcd closed (a refused client certificate, a restart)
  // raises SIGPIPE, whose default action ends the whole process. cpp-httplib's plain sockets use MSG_NOSIGNAL;
  // TLS ones cannot, so SIGPIPE is ignored (write then fails with EPIPE, an error like any other) unless the
  // program chose a disposition of its own.
  if (cfg_.tls) {
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
  }
}
Gateway::~Gateway() = default;

uint64_t Gateway::requestsSent() { return gRequests.load(); }

std::unique_ptr<httplib::Client> Gateway::takeClient(size_t endpoint) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& pool = idle_[endpoint];
    if (!pool.empty()) {
      auto c = std::move(pool.back());
      pool.pop_back();
      return c;
    }
  }
  const Endpoint& ep = cfg_.endpoints[endpoint];
  std::string origin = (cfg_.tls ? "https://" : "http://") + ep.str();
  std::unique_ptr<httplib::Client> c;
  if (cfg_.tls && !cfg_.certFile.empty())
    c = std::make_unique<httplib::Client>(origin, cfg_.certFile, cfg_.keyFile);
  else
    c = std::make_unique<httplib::Client>(origin);
  if (cfg_.tls) {
    if (!cfg_.caFile.empty()) c->set_ca_cert_path(cfg_.caFile);
    c->enable_server_certificate_verification(true);
  }
  c->set_keep_alive(true);
  c->set_connection_timeout(2, 0);
  return c;
}

void Gateway::giveBack(size_t endpoint, std::unique_ptr<httplib::Client> client) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& pool = idle_[endpoint];
  if (pool.size() < 4) pool.push_back(std::move(client));
}

std::string Gateway::token() {
  std::lock_guard<std::mutex> lock(mu_);
  return token_;
}

Status Gateway::authenticate(Clock::time_point deadline) {
  auto password = resolveSecret(*cfg_.password);
  if (!password) return err("etcd user " + cfg_.user + ": " + password.error().message);
  auto r = call("auth/authenticate", Json{{"name", cfg_.user}, {"password", *password}}, deadline);
  if (!r) return err("etcd authentication as user " + cfg_.user + " failed: " + r.error().message);
  std::string tok = r->value("token", "");
  if (tok.empty()) return err("etcd authentication as user " + cfg_.user + " returned no token (is auth enabled?)");
  std::lock_guard<std::mutex> lock(mu_);
  token_ = std::move(tok);
  return {};
}

Result<Json> Gateway::call(const std::string& path, const Json& body, Clock::time_point deadline, bool* ambiguous) {
  const bool authCall = path == "auth/authenticate";
  const bool needsToken = !cfg_.user.empty() && !authCall;
  const std::string payload = body.dump();
  const size_t n = cfg_.endpoints.size();
  if (ambiguous) *ambiguous = false;
  bool reauthenticated = false;
  auto pause = std::chrono::milliseconds(50);
  std::string lastError;
  for (;;) {
    std::string tok;
    if (needsToken) {
      tok = token();
      if (tok.empty()) {
        if (Status s = authenticate(deadline); !s) return s.error();
        tok = token();
      }
    }
    const size_t ep = current_.load() % n;
    auto client = takeClient(ep);
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto readTimeout = std::max<std::chrono::milliseconds>(remaining, std::chrono::milliseconds(500));
    client->set_read_timeout(readTimeout.count() / 1000, (readTimeout.count() % 1000) * 1000);
    client->set_write_timeout(readTimeout.count() / 1000, (readTimeout.count() % 1000) * 1000);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v3/" + path;
    req.body = payload;
    req.headers.emplace("Content-Type", "application/json");
    req.headers.emplace("Accept", "application/json");
    if (!tok.empty()) req.headers.emplace("Authorization", tok);
    httplib::Response res;
    httplib::Error e = httplib::Error::Success;
    ++gRequests;
    bool sent = client->send(req, res, e);
    // cpp-httplib 0.11.4 fails with Error::Read on a chunked reply that ends with trailer fields (fixed upstream
    // later); etcd's gateway sends its errors that way. Status, headers and the whole body have been read by then:
    // such a reply is complete. The connection is not reused after it.
    const bool complete = sent || (e == httplib::Error::Read && res.status > 0 && res.has_header("Trailer"));
    if (complete) {
      if (sent) giveBack(ep, std::move(client));
      if (res.status == 200) {
        Json j = Json::parse(res.body, nullptr, false);
        if (j.is_discarded()) return err("etcd " + cfg_.endpoints[ep].str() + ": " + path + ": the reply is not JSON");
        return j;
      }
      Json ej = Json::parse(res.body, nullptr, false);
      std::string msg = ej.is_object() ? ej.value("message", ej.value("error", "")) : "";
      if (msg.empty()) msg = "HTTP " + std::to_string(res.status);
      int64_t code = ej.is_object() ? int64Field(ej, "code") : 0;
      if (needsToken && !reauthenticated &&
          (code == 16 || msg.find("auth token") != std::string::npos)) {
        // Simple tokens expire (etcd's --auth-token-ttl): authenticate again, once.
        std::lock_guard<std::mutex> lock(mu_);
        token_.clear();
        reauthenticated = true;
        continue;
      }
      // Unavailable (14) and ResourceExhausted (8, "too many requests") pass, as does what a stopping or starting
      // server answers without a gRPC code (a bare 502/503/504 from its gateway).
      const bool transient = code == 14 || code == 8 || res.status == 502 || res.status == 503 ||
                             res.status == 504 || msg.find("leader changed") != std::string::npos ||
                             msg.find("no leader") != std::string::npos ||
                             msg.find("not capable") != std::string::npos ||
                             msg.find("server stopped") != std::string::npos ||
                             msg.find("request timed out") != std::string::npos;
      if (!transient) {
        std::string hint;
        if (msg.find("request is too large") != std::string::npos)
          hint = " (etcd refuses requests over --max-request-bytes, 1.5 MiB by default)";
        if (code == 7 || msg.find("permission denied") != std::string::npos)
          hint = " (user " + (cfg_.user.empty() ? std::string("<none>") : cfg_.user) +
                 " needs read-write access to the keys under " + cfg_.prefix + "/)";
        return err("etcd " + cfg_.endpoints[ep].str() + ": " + path + ": " + msg + hint);
      }
      lastError = cfg_.endpoints[ep].str() + ": " + msg;
    } else {
      lastError = cfg_.endpoints[ep].str() + ": " + httplib::to_string(e);
      // Written (at least in part) but no answer: etcd may have done it.
      if (ambiguous && (e == httplib::Error::Read || e == httplib::Error::Write)) *ambiguous = true;
      // A certificate problem does not go away by retrying.
      if (e == httplib::Error::SSLServerVerification)
        return err("etcd " + lastError + ": the server's certificate is not trusted (give its CA: cacert=PATH or "
                   "VNETPLAN_ETCD_CACERT)");
      if (e == httplib::Error::SSLLoadingCerts) return err("etcd " + lastError + " (cacert=, cert=, key=)");
      size_t expected = current_.load();
      if (expected % n == ep) current_.compare_exchange_strong(expected, expected + 1);
    }
    spdlog::debug("etcd {}: {} (retrying)", path, lastError);
    if (Clock::now() + pause >= deadline) {
      std::string eps;
      for (const auto& x : cfg_.endpoints) eps += (eps.empty() ? "" : ", ") + x.str();
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.timeout).count();
      return err("etcd is unreachable (" + eps + "): " + lastError + "; gave up after " +
                 std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + "s");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace vnetplan::state::etcd
