// Pieces shared by the harnesses of the HTTP peers (neutron_harness.h, etcd_harness.h): a scratch directory per
// test, a sandbox script run from scripts/ whose `start` prints KEY=VALUE facts, and a small JSON-over-HTTP client
// (cpp-httplib) for the test's own, independent reads and out-of-band changes.
#pragma once
#include <httplib.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace vnptest {

// "KEY=VALUE" lines (as the sandbox scripts print them) to a map; other lines are ignored.
inline std::map<std::string, std::string> parseKeyValues(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string key = line.substr(0, eq);
    if (key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") != std::string::npos) continue;
    out[key] = line.substr(eq + 1);
  }
  return out;
}

// One run of a scripts/<name>-sandbox.sh in its own directory: start, facts, stop, and the tails of its logs.
class Sandbox {
 public:
  Sandbox(std::string scriptName, fs::path dir, std::vector<std::string> logs)
      : script_(shellQuote(std::string(VNETPLAN_SOURCE_DIR) + "/scripts/" + scriptName)),
        dir_(std::move(dir)),
        logs_(std::move(logs)) {}

  // `script check`: empty if the peer can run here, else the script's reason.
  std::string unavailable(const fs::path& scratch) const {
    RunResult r = runShell(script_ + " check", scratch, 30);
    if (r.exitCode == 0) return "";
    std::string why = r.err.empty() ? r.out : r.err;
    while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
    return why.empty() ? "check failed" : why;
  }

  // `script start DIR ARGS...`; on success facts() holds what it printed. A failed start is a test failure whose
  // message carries the script's stderr (which ends with the daemon's log tail).
  ::testing::AssertionResult start(const fs::path& scratch, const std::string& args = "", int timeoutSec = 180) {
    started_ = true;  // even a failed start may have left a process for stop()
    RunResult r = runShell(script_ + " start " + shellQuote(dir_.string()) + (args.empty() ? "" : " " + args),
                           scratch, timeoutSec);
    if (r.exitCode != 0)
      return ::testing::AssertionFailure() << script_ << " start failed (exit " << r.exitCode << "):\n" << r.err;
    facts_ = parseKeyValues(r.out);
    return ::testing::AssertionSuccess();
  }

  // Another subcommand on this sandbox's directory (e.g. "restart"); KEY=VALUE lines it prints update facts().
  ::testing::AssertionResult run(const std::string& subcommand, const fs::path& scratch, int timeoutSec = 120) {
    RunResult r = runShell(script_ + " " + subcommand + " " + shellQuote(dir_.string()), scratch, timeoutSec);
    if (r.exitCode != 0)
      return ::testing::AssertionFailure() << script_ << " " << subcommand << " failed (exit " << r.exitCode
                                           << "):\n" << r.err;
    for (auto& [k, v] : parseKeyValues(r.out)) facts_[k] = v;
    return ::testing::AssertionSuccess();
  }

  ::testing::AssertionResult stop(const fs::path& scratch) {
    if (!started_) return ::testing::AssertionSuccess();
    RunResult r = runShell(script_ + " stop " + shellQuote(dir_.string()), scratch, 60);
    started_ = false;
    if (r.exitCode != 0)
      return ::testing::AssertionFailure() << script_ << " stop failed (exit " << r.exitCode << "):\n" << r.err;
    return ::testing::AssertionSuccess();
  }

  // The last `lines` lines of every log of the sandbox, for a failed test's output.
  std::string logTails(const fs::path& scratch, int lines = 40) const {
    std::string out;
    for (const auto& name : logs_) {
      fs::path p = dir_ / name;
      if (!fs::exists(p) || fs::file_size(p) == 0) continue;
      out += "---- last lines of " + p.string() + " ----\n" +
             runShell("tail -n " + std::to_string(lines) + " " + shellQuote(p.string()), scratch, 10).out;
    }
    return out;
  }

  const std::string& fact(const std::string& key) const {
    static const std::string none;
    auto it = facts_.find(key);
    return it == facts_.end() ? none : it->second;
  }
  const std::map<std::string, std::string>& facts() const { return facts_; }
  const fs::path& dir() const { return dir_; }
  bool started() const { return started_; }

 private:
  std::string script_;
  fs::path dir_;
  std::vector<std::string> logs_;
  std::map<std::string, std::string> facts_;
  bool started_ = false;
};

// A test with a scratch directory of its own (no root or namespace needed: the HTTP peers listen on loopback).
class ScratchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vnp-peer-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << "mkdtemp: " << std::strerror(errno);
    dir = tmpl;
  }
  void TearDown() override {
    if (dir.empty()) return;
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  fs::path dir;
};

struct HttpReply {
  int status = 0;  // 0: no HTTP answer at all (error says why)
  std::string body;
  Json json;  // the body parsed, or null if it is not JSON
  httplib::Headers headers;
  std::string error;
  bool trailerNotRead = false;  // a chunked reply with trailer fields that cpp-httplib could not parse (see request)

  bool ok() const { return status >= 200 && status < 300; }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);  // httplib::Headers compares names case-insensitively
    return it == headers.end() ? "" : it->second;
  }
  // For assertion messages: status and body. Never the request, whose headers may carry a token.
  std::string describe() const {
    if (status == 0) return "no answer: " + error;
    return "HTTP " + std::to_string(status) + ": " + body.substr(0, 2000);
  }
};

inline std::ostream& operator<<(std::ostream& os, const HttpReply& r) { return os << r.describe(); }

// JSON over HTTP to one base URL ("http://127.0.0.1:PORT/v2.0"): paths are relative to it. Bodies are sent as
// application/json. Default headers (e.g. X-Auth-Token) go with every request and are never printed.
class JsonHttp {
 public:
  JsonHttp() = default;
  explicit JsonHttp(const std::string& baseUrl) {
    // scheme://host:port, then the path prefix
    size_t schemeEnd = baseUrl.find("://");
    size_t pathStart = baseUrl.find('/', schemeEnd == std::string::npos ? 0 : schemeEnd + 3);
    origin_ = baseUrl.substr(0, pathStart);
    prefix_ = pathStart == std::string::npos ? "" : baseUrl.substr(pathStart);
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
    base_ = origin_ + prefix_;
  }

  void setHeader(const std::string& name, const std::string& value) { defaultHeaders_[name] = value; }
  void clearHeader(const std::string& name) { defaultHeaders_.erase(name); }
  const std::string& baseUrl() const { return base_; }

  HttpReply request(const std::string& method, const std::string& path, const Json* body = nullptr,
                    const httplib::Headers& extra = {}, int timeoutSec = 60) const {
    httplib::Client client(origin_);
    client.set_connection_timeout(10);
    client.set_read_timeout(timeoutSec);
    client.set_write_timeout(timeoutSec);
    httplib::Request req;
    req.method = method;
    req.path = prefix_ + path;
    for (const auto& [k, v] : defaultHeaders_) req.headers.emplace(k, v);
    for (const auto& [k, v] : extra) req.headers.emplace(k, v);
    if (body) {
      req.body = body->dump();
      req.headers.emplace("Content-Type", "application/json");
    }
    req.headers.emplace("Accept", "application/json");
    HttpReply reply;
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    if (!client.send(req, res, err)) {
      // cpp-httplib 0.11.4 (Debian 12) fails with Error::Read on a chunked reply that ends with trailer fields
      // (fixed upstream later: yhirose/cpp-httplib#1486). etcd's gateway sends its gRPC errors that way
      // ("Trailer: Grpc-Trailer-Content-Type"). By then status, headers and every chunk of the body have been
      // read: such a reply is complete, only the trailer section was not understood.
      const bool trailerOnly = err == httplib::Error::Read && res.status > 0 && res.has_header("Trailer") &&
                               res.get_header_value("Transfer-Encoding") == "chunked";
      if (!trailerOnly) {
        reply.error = httplib::to_string(err) + " (" + method + " " + req.path + ")";
        return reply;
      }
      reply.trailerNotRead = true;
    }
    reply.status = res.status;
    reply.body = res.body;
    reply.headers = res.headers;
    reply.json = Json::parse(reply.body, nullptr, false);
    if (reply.json.is_discarded()) reply.json = nullptr;
    return reply;
  }

  HttpReply get(const std::string& path, const httplib::Headers& extra = {}) const {
    return request("GET", path, nullptr, extra);
  }
  HttpReply post(const std::string& path, const Json& body, const httplib::Headers& extra = {}) const {
    return request("POST", path, &body, extra);
  }
  HttpReply put(const std::string& path, const Json& body, const httplib::Headers& extra = {}) const {
    return request("PUT", path, &body, extra);
  }
  HttpReply putEmpty(const std::string& path, const httplib::Headers& extra = {}) const {
    return request("PUT", path, nullptr, extra);
  }
  HttpReply del(const std::string& path, const httplib::Headers& extra = {}) const {
    return request("DELETE", path, nullptr, extra);
  }

 private:
  std::string origin_, prefix_, base_;
  std::map<std::string, std::string> defaultHeaders_;
};

// Percent-encoding for a query parameter value.
inline std::string urlEncode(const std::string& s) {
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

}  // namespace vnptest
