#include "cli/serve.h"

#include "base/retain.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "base/redact.h"
#include "cli/common.h"
#include "cli/subprocess.h"
#include "state/backends.h"
#include "state/store.h"

namespace vnetplan::cli {

namespace fs = std::filesystem;
using namespace serve;

namespace {

double unixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The last lines of a child's stderr, for a message (children never print secrets: they redact their own).
std::string tail(const std::string& s, size_t maxLines = 40) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::string out;
  for (size_t i = lines.size() > maxLines ? lines.size() - maxLines : 0; i < lines.size(); ++i)
    out += lines[i] + "\n";
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool isGitUrl(const std::string& s) {
  static const std::regex scheme(R"(^(file|https?|ssh|git)://)");
  static const std::regex scp(R"(^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:)");
  return std::regex_search(s, scheme) || std::regex_search(s, scp) ||
         (s.size() > 4 && s.compare(s.size() - 4, 4, ".git") == 0 && !fs::is_directory(fs::path(s) / ".git"));
}

bool isLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

bool constantTimeEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base64Decode(const std::string& in) {
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
    else break;
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  return out;
}

const std::map<int, std::string> kApplyExit{{0, "applied"}, {1, "rolled-back"}, {3, "damaged"}, {4, "not-recorded"}};

class Agent {
 public:
  Agent(const GlobalOptions& g, const ServeArgs& a, std::string workDir)
      : g_(g), a_(a), work_(std::move(workDir)), self_(selfExecutable()) {
    view_.version = VNETPLAN_VERSION;
    view_.startedAt = unixNow();
    view_.intervalSeconds = std::chrono::duration<double>(a.interval).count();
    view_.source.kind = git() ? "git" : "directory";
    view_.source.location = redactCredentials(a.manifests);  // an https URL may carry a token
    view_.source.branch = git() ? a.branch : "";
    for (const auto& t : a.autoApplyTargets) autoTargets_.insert(t);
    for (const auto& l : a.autoApplyLabels) {
      size_t eq = l.find('=');
      autoLabels_.emplace_back(l.substr(0, eq), eq == std::string::npos ? "" : l.substr(eq + 1));
    }
  }

  bool git() const { return isGitUrl(a_.manifests); }

  void runLoop() {
    while (!stopping()) {
      cycle();
      // Short waits: a signal only sets a flag (it cannot notify), and it must stop the agent within a moment
      // however long the interval.
      const auto until = std::chrono::steady_clock::now() + a_.interval;
      std::unique_lock<std::mutex> lock(wakeMu_);
      while (!wake_ && !stopping()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= until) break;
        wakeCv_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(200)));
      }
      wake_ = false;
    }
  }

  void trigger() {
    {
      std::lock_guard<std::mutex> lock(wakeMu_);
      wake_ = true;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++view_.webhooks;
    }
    wakeCv_.notify_all();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(wakeMu_);  // not between the waiter's check and its wait
      stop_ = true;
    }
    wakeCv_.notify_all();
  }
  bool stopping() const { return stop_.load() || (g_.interrupted && g_.interrupted->load()); }

  AgentView snapshot() {
    std::lock_guard<std::mutex> lock(mu_);
    return view_;
  }

  // Alive: a run ended within a few intervals (plus the time a run may take).
  bool healthy() {
    std::lock_guard<std::mutex> lock(mu_);
    const double now = unixNow();
    const double slack = 3 * view_.intervalSeconds + std::chrono::duration<double>(a_.runTimeout).count();
    const double last = view_.lastRunAt > 0 ? view_.lastRunAt : view_.startedAt;
    return now - last <= slack;
  }

  std::string stateUrl() const { return g_.stateUrl; }

 private:
  std::vector<std::string> common() const {
    std::vector<std::string> args{self_, "--no-color", "-q", "--state", g_.stateUrl, "--parallelism",
                                  std::to_string(g_.parallelism), "--target-timeout",
                                  std::to_string(std::max<int64_t>(1, g_.targetTimeout.count() / 1000)) + "s"};
    return args;
  }

  ChildOptions childOptions(bool cancellable = true) const {
    ChildOptions o;
    o.timeout = a_.runTimeout;
    if (cancellable) o.cancel = &stop_;
    o.env["VNETPLAN_CACHE"] = "off";  // a fresh tree per revision: nothing to gain, a directory to grow
    return o;
  }

  // ---- the source ----------------------------------------------------------------------------------------

  // The directory to plan this time (empty: none yet). Git: fetches, and adopts a new commit once it validates.
  std::string sync() {
    const double now = unixNow();
    if (!git()) {
      // A directory is planned as it is; whether it loads decides valid/broken each time.
      ChildResult v = validate(a_.manifests);
      std::lock_guard<std::mutex> lock(mu_);
      ++view_.syncs;
      view_.source.lastSyncAt = now;
      view_.source.valid = v.exitCode == 0;
      view_.source.brokenRevision = v.exitCode == 0 ? "" : "(working directory)";
      view_.source.brokenErrors = v.exitCode == 0 ? "" : tail(v.err + v.out + v.error);
      return v.exitCode == 0 ? a_.manifests : "";
    }
    const fs::path mirror = fs::path(work_) / "mirror.git";
    ChildResult r;
    if (!fs::exists(mirror / "HEAD")) {
      r = runChild({"git", "clone", "--quiet", "--bare", "--single-branch", "--branch", a_.branch, "--", a_.manifests,
                    mirror.string()},
                   childOptions());
    } else {
      r = runChild({"git", "--git-dir=" + mirror.string(), "fetch", "--quiet", "--prune", "--", a_.manifests,
                    "+refs/heads/" + a_.branch + ":refs/heads/" + a_.branch},
                   childOptions());
    }
    std::string sha;
    if (r.exitCode == 0) {
      ChildResult rev = runChild({"git", "--git-dir=" + mirror.string(), "rev-parse", "--verify", "--quiet",
                                  "refs/heads/" + a_.branch + "^{commit}"},
                                 childOptions());
      sha = rev.out.substr(0, rev.out.find('\n'));
      if (rev.exitCode != 0 || sha.size() != 40) {
        r.exitCode = 1;
        r.err = "branch " + a_.branch + " not found";
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++view_.syncs;
      view_.source.lastSyncAt = now;
      if (r.exitCode != 0) {
        ++view_.syncFailures;
        view_.source.syncError = redactCredentials("git: " + tail(r.err + r.error, 5));
        if (!lastSyncError_) say("serve: pulling " + view_.source.location + " failed: " + view_.source.syncError);
        lastSyncError_ = true;
        return current_;
      }
      view_.source.syncError.clear();
      lastSyncError_ = false;
      if (sha == currentSha_ || sha == brokenSha_) return current_;
    }
    // A new commit: extract it next to the current tree, validate, adopt or report it.
    const fs::path tree = fs::path(work_) / ("tree-" + sha);
    std::error_code ec;
    fs::remove_all(tree, ec);
    fs::create_directories(tree, ec);
    ChildResult x = runChild({"bash", "-c", "set -o pipefail; git --git-dir=\"$1\" archive --format=tar \"$2\" | tar -x -C \"$3\"",
                              "extract", mirror.string(), sha, tree.string()},
                             childOptions());
    ChildResult subj = runChild({"git", "--git-dir=" + mirror.string(), "log", "-1", "--format=%s", sha}, childOptions());
    const std::string subject = subj.out.substr(0, subj.out.find('\n'));
    const std::string dir = (tree / a_.path).lexically_normal().string();
    ChildResult v;
    if (x.exitCode != 0) {
      v = x;
      v.err = "cannot extract commit " + sha + ": " + x.err;
    } else if (!fs::is_directory(dir)) {
      v.exitCode = 1;
      v.err = "the commit has no directory " + a_.path;
    } else {
      v = validate(dir);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (v.exitCode != 0) {
      fs::remove_all(tree, ec);
      brokenSha_ = sha;
      view_.source.valid = false;
      view_.source.brokenRevision = sha;
      view_.source.brokenErrors = tail(v.err + v.out + v.error);
      say("serve: commit " + sha.substr(0, 12) + " (" + subject + ") is broken; planning " +
          (currentSha_.empty() ? std::string("nothing") : currentSha_.substr(0, 12)) + " still:\n" +
          view_.source.brokenErrors);
      return current_;
    }
    if (!currentTree_.empty()) fs::remove_all(currentTree_, ec);
    currentTree_ = tree.string();
    current_ = dir;
    currentSha_ = sha;
    brokenSha_.clear();
    view_.source.valid = true;
    view_.source.brokenRevision.clear();
    view_.source.brokenErrors.clear();
    view_.source.revision = sha;
    view_.source.subject = subject;
    say("serve: planning commit " + sha.substr(0, 12) + " (" + subject + ")");
    return current_;
  }

  ChildResult validate(const std::string& dir) {
    auto args = common();
    args.insert(args.end(), {"validate", "-f", dir});
    return runChild(args, childOptions());
  }

  // ---- a run ---------------------------------------------------------------------------------------------

  void cycle() {
    const std::string dir = sync();
    if (dir.empty() || stopping()) {
      std::lock_guard<std::mutex> lock(mu_);
      view_.lastRunAt = unixNow();
      return;
    }
    std::set<std::string> toApply = plan(dir);
    if (toApply.empty() || stopping()) return;
    for (const auto& t : toApply) {
      if (stopping()) break;
      apply(dir, t);
    }
    (void)plan(dir);  // what the applies left, shown at once rather than an interval later
  }

  std::string revision() {
    std::lock_guard<std::mutex> lock(mu_);
    return view_.source.revision;
  }

  // One plan of every target; returns the targets to apply now.
  std::set<std::string> plan(const std::string& dir) {
    auto args = common();
    args.insert(args.end(), {"plan", "--format", "json", "-f", dir});
    const double started = unixNow();
    ChildResult r = runChild(args, childOptions());
    const double ended = unixNow();
    const double duration = std::chrono::duration<double>(r.duration).count();
    Json j = Json::parse(r.out, nullptr, false);
    const bool ok = j.is_object() && j.contains("targets");
    std::set<std::string> toApply;
    std::map<std::string, int64_t> generations;
    if (ok) generations = loadGenerations(j);

    std::lock_guard<std::mutex> lock(mu_);
    ++view_.runs;
    view_.lastRunAt = ended;
    view_.lastRunDuration = duration;
    (void)started;
    if (!ok) {
      ++view_.runFailures;
      view_.runError = tail(r.err + r.error) + (r.timedOut ? "\n(timed out)" : "");
      if (!lastRunFailed_) say("serve: plan failed: " + view_.runError);
      lastRunFailed_ = true;
      return toApply;
    }
    lastRunFailed_ = false;
    view_.runError.clear();
    if (!git()) {
      const std::string digest = j.value("manifests", Json::object()).value("digest", "");
      view_.source.revision = digest;
    }
    const std::string rev = view_.source.revision;
    std::map<std::string, TargetView> next;
    for (const auto& t : j["targets"]) {
      TargetView tv;
      const std::string name = t.value("name", "");
      auto old = view_.targets.find(name);
      if (old != view_.targets.end()) {
        tv.lastApply = old->second.lastApply;
        tv.applies = old->second.applies;
      }
      tv.name = name;
      tv.provider = t.value("provider", "");
      tv.labels = t.value("labels", Json::object());
      tv.autoApply = autoApplies(name, tv.labels);
      tv.lastPlanAt = ended;
      tv.lastPlanDuration = duration;
      tv.planRevision = rev;
      auto g = generations.find(name);
      tv.generation = g == generations.end() ? 0 : g->second;
      next[name] = std::move(tv);
    }
    for (const auto& c : j.value("resource_changes", Json::array())) {
      auto it = next.find(c.value("target", ""));
      if (it == next.end()) continue;
      Json actions = c.value("change", Json::object()).value("actions", Json::array());
      if (actions.size() == 1 && actions[0] == "no-op") continue;
      it->second.changes.push_back(Json{{"address", c.value("address", "")},
                                        {"kind", c.value("type", "")},
                                        {"actions", actions},
                                        {"description", c.value("description", "")},
                                        {"reason", c.value("reason", "")},
                                        {"disruptive", c.value("disruptive", false)}});
    }
    for (const auto& d : j.value("resource_drift", Json::array())) {
      const std::string address = d.value("address", "");
      const std::string target = address.substr(0, address.find('/'));
      auto it = next.find(target);
      if (it == next.end()) continue;
      size_t a = address.find('/'), b = address.find('/', a + 1);
      it->second.drift.push_back(Json{{"address", address},
                                      {"kind", a == std::string::npos ? "" : address.substr(a + 1, b - a - 1)},
                                      {"paths", d.value("paths", Json::array())}});
    }
    std::set<std::string> unreachable;
    for (const auto& u : j.value("unreachable_targets", Json::array())) {
      std::string name = u.is_object() ? u.value("target", "") : "";
      if (name.empty()) continue;
      auto it = next.find(name);
      if (it == next.end()) {  // a plan lists only the targets it planned: keep what is known of this one
        TargetView tv;
        auto old = view_.targets.find(name);
        if (old != view_.targets.end()) tv = old->second;
        tv.name = name;
        tv.changes = Json::array();
        tv.drift = Json::array();
        tv.lastPlanAt = ended;
        tv.lastPlanDuration = duration;
        tv.planRevision = rev;
        it = next.emplace(name, std::move(tv)).first;
      }
      it->second.error = u.value("error", "");
      // The plan names why (reconciler/pipeline.cpp targetBusy): an apply running (its lock held) or one that did
      // not finish (its journal) is "busy", not a host that cannot be reached.
      const std::string& e = it->second.error;
      const bool busy = e.find(" is running on it (lock ") != std::string::npos || e.find("an earlier ") != std::string::npos;
      it->second.state = busy ? "busy" : "unreachable";
      unreachable.insert(name);
    }
    for (auto& [name, tv] : next) {
      if (unreachable.count(name)) continue;
      const bool lastFailed = tv.lastApply && tv.lastApply->outcome != "applied" && tv.lastApply->outcome != "no-changes";
      if (!tv.drift.empty()) tv.state = "drifted";
      else if (!tv.changes.empty()) tv.state = lastFailed ? "apply-failed" : "pending";
      else tv.state = "in-sync";
      if (!tv.changes.empty() && tv.autoApply && !backingOff(tv, rev)) toApply.insert(name);
    }
    view_.targets = std::move(next);  // targets gone from the manifests go from the views (and metrics) too
    return toApply;
  }

  // A failed apply is not repeated on the same revision until a while later (no rollback loop every interval).
  bool backingOff(const TargetView& tv, const std::string& rev) const {
    if (!tv.lastApply || tv.lastApply->exitCode == 0 || tv.lastApply->revision != rev) return false;
    const double wait = std::max(60.0, 5 * view_.intervalSeconds);
    return unixNow() - tv.lastApply->at < wait;
  }

  bool autoApplies(const std::string& name, const Json& labels) const {
    if (a_.autoApplyAll || autoTargets_.count(name)) return true;
    for (const auto& [k, v] : autoLabels_) {
      auto it = labels.find(k);
      if (it != labels.end() && it->is_string() && it->get<std::string>() == v) return true;
    }
    return false;
  }

  std::map<std::string, int64_t> loadGenerations(const Json& plan) {
    std::map<std::string, int64_t> out;
    if (!store_) {
      auto b = state::openBackend(g_.stateUrl);
      if (!b) return out;
      store_ = std::make_unique<state::Store>(std::move(*b));
    }
    for (const auto& t : plan["targets"]) {
      const std::string name = t.value("name", "");
      auto st = store_->load(name);
      if (st) out[name] = st->generation;
    }
    return out;
  }

  void apply(const std::string& dir, const std::string& target) {
    auto args = common();
    args.insert(args.end(), {"--log-format", "json", "apply", "--auto-approve", "--lock-timeout", "0s", "-f", dir,
                             "--target", target});
    ChildOptions o = childOptions(/*cancellable=*/false);  // an apply under way finishes (or rolls back) itself
    const std::string rev = revision();
    if (git()) o.env["VNETPLAN_GIT_COMMIT"] = rev;
    const double at = unixNow();
    ChildResult r = runChild(args, o);
    ApplyRecord rec;
    rec.at = at;
    rec.duration = std::chrono::duration<double>(r.duration).count();
    rec.revision = rev;
    rec.exitCode = r.exitCode;
    auto e = kApplyExit.find(r.exitCode);
    rec.outcome = e == kApplyExit.end() ? "failed" : e->second;
    std::string messages;
    std::istringstream in(r.err);
    for (std::string line; std::getline(in, line);) {
      Json l = Json::parse(line, nullptr, false);
      if (!l.is_object()) continue;
      if (l.contains("outcome") && l.value("target", "") == target) {
        rec.outcome = l.value("outcome", rec.outcome);
        rec.generation = l.value("generation", int64_t{0});
      }
      if (l.contains("message")) messages += l.value("message", "") + "\n";
    }
    if (r.exitCode == 1 && messages.find("state is locked by") != std::string::npos) rec.outcome = "refused";
    rec.message = tail(messages.empty() ? r.err + r.error : messages, 20);
    say("serve: apply " + target + ": " + rec.outcome + (rec.generation ? " (generation " + std::to_string(rec.generation) + ")" : ""));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = view_.targets.find(target);
    if (it == view_.targets.end()) return;
    it->second.lastApply = rec;
    ++it->second.applies[rec.outcome];
  }

  const GlobalOptions& g_;
  const ServeArgs& a_;
  std::string work_, self_;
  std::set<std::string> autoTargets_;
  std::vector<std::pair<std::string, std::string>> autoLabels_;
  std::unique_ptr<state::Store> store_;  // for generations (the worker thread only)

  std::string current_, currentTree_, currentSha_, brokenSha_;  // the worker thread only
  bool lastSyncError_ = false, lastRunFailed_ = false;

  std::mutex mu_;  // guards view_
  AgentView view_;

  std::mutex wakeMu_;
  std::condition_variable wakeCv_;
  bool wake_ = false;
  std::atomic<bool> stop_{false};
};

struct Listen {
  std::string host;
  int port = 0;
};

Result<Listen> parseListen(const std::string& s) {
  Listen l;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return err("--listen " + s + ": expected [ADDR]:PORT");
    l.host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos) return err("--listen " + s + ": expected HOST:PORT");
    l.host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (l.host.empty() || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return err("--listen " + s + ": expected HOST:PORT (PORT 0: any free port)");
  l.port = std::stoi(port);
  if (l.port > 65535) return err("--listen " + s + ": port out of range");
  return l;
}

Result<std::string> readToken(const ServeArgs& a) {
  std::string token;
  if (!a.tokenFile.empty()) {
    std::ifstream in(a.tokenFile);
    if (!in) return err("--token-file " + a.tokenFile + ": cannot read it");
    std::getline(in, token);
  } else if (const char* e = std::getenv("VNETPLAN_SERVE_TOKEN"); e && *e) {
    token = e;
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) token.pop_back();
  if (!token.empty() && token.size() < 16)
    return err("the bearer token is too short (" + std::to_string(token.size()) + " characters; at least 16)");
  return token;
}

}  // namespace

int cmdServe(const GlobalOptions& g, const ServeArgs& a) {
  setOneShotProcess(false);  // long-running: every plan's objects are freed as usual
  auto listen = parseListen(a.listen);
  if (!listen) return fail(listen.error().message);
  auto token = readToken(a);
  if (!token) return fail(token.error().message);
  if (!isLoopback(listen->host) && token->empty())
    return fail("--listen " + a.listen + " is not a loopback address: a bearer token is required (--token-file PATH "
                "or VNETPLAN_SERVE_TOKEN)");
  if (a.interval < std::chrono::milliseconds(200)) return fail("--interval: at least 200ms");
  for (const auto& l : a.autoApplyLabels)
    if (l.find('=') == std::string::npos || l.front() == '=')
      return fail("--auto-apply-label " + l + ": expected KEY=VALUE");
  if (!isGitUrl(a.manifests) && !fs::is_directory(a.manifests))
    return fail("--manifests " + redactCredentials(a.manifests) + ": neither a directory nor a Git URL (file://, https://, ssh://, "
                "git://, user@host:path, or *.git)");
  // The state store must open (a wrong URL is an error now, not one per run).
  if (auto b = state::openBackend(g.stateUrl); !b)
    return fail("--state " + state::redactStateUrl(g.stateUrl) + ": " + b.error().message);

  std::string work = a.workDir;
  bool ownWork = false;
  if (work.empty()) {
    char tmpl[] = "/tmp/vnetplan-serve-XXXXXX";
    if (!::mkdtemp(tmpl)) return fail("cannot create a work directory under /tmp");
    work = tmpl;
    ownWork = true;
  } else {
    std::error_code ec;
    fs::create_directories(work, ec);
    if (ec) return fail("--work-dir " + work + ": " + ec.message());
  }
  ::signal(SIGPIPE, SIG_IGN);
  struct RemoveWork {  // a temp work dir of our own goes, however cmdServe returns
    std::string dir;
    ~RemoveWork() {
      std::error_code ec;
      if (!dir.empty()) fs::remove_all(dir, ec);
    }
  } removeWork{ownWork ? work : ""};

  Agent agent(g, a, work);
  httplib::Server server;
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  server.set_payload_max_length(1 << 20);
  const std::string tok = *token;
  auto authorized = [&](const httplib::Request& req) {
    if (tok.empty()) return true;
    std::string h = req.get_header_value("Authorization");
    if (h.rfind("Bearer ", 0) == 0) return constantTimeEqual(h.substr(7), tok);
    // Browsers: HTTP basic authentication with the token as the password (any user name).
    if (h.rfind("Basic ", 0) == 0) {
      std::string up = base64Decode(h.substr(6));
      size_t colon = up.find(':');
      return colon != std::string::npos && constantTimeEqual(up.substr(colon + 1), tok);
    }
    return false;
  };
  server.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/healthz" || authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
    res.status = 401;
    res.set_header("WWW-Authenticate", req.path == "/" ? "Basic realm=\"vnetplan\"" : "Bearer realm=\"vnetplan\"");
    res.set_content("unauthorized: a bearer token is required\n", "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
  server.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
    const bool ok = agent.healthy();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "stalled: no run finished recently\n", "text/plain");
  });
  server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(renderMetrics(agent.snapshot()), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/api/v1/status", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(renderJson(agent.snapshot()).dump(2), "application/json");
  });
  server.Get("/api/v1/targets", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(renderJson(agent.snapshot())["targets"].dump(2), "application/json");
  });
  server.Get(R"(/api/v1/targets/([^/]+))", [&](const httplib::Request& req, httplib::Response& res) {
    auto v = agent.snapshot();
    auto it = v.targets.find(req.matches[1].str());
    if (it == v.targets.end()) {
      res.status = 404;
      res.set_content(Json{{"error", "no such target"}}.dump(), "application/json");
      return;
    }
    res.set_content(renderTargetJson(it->second).dump(2), "application/json");
  });
  server.Get(R"(/api/v1/targets/([^/]+)/generations)", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1].str();
    auto v = agent.snapshot();
    if (!v.targets.count(name)) {
      res.status = 404;
      res.set_content(Json{{"error", "no such target"}}.dump(), "application/json");
      return;
    }
    auto b = state::openBackend(agent.stateUrl());
    if (!b) {
      res.status = 503;
      res.set_content(Json{{"error", b.error().message}}.dump(), "application/json");
      return;
    }
    state::Store store(std::move(*b));
    auto h = store.history(name);
    if (!h) {
      res.status = 503;
      res.set_content(Json{{"error", h.error().message}}.dump(), "application/json");
      return;
    }
    Json out = Json::array();
    for (const auto& gen : *h)
      out.push_back(Json{{"number", gen.number},
                         {"created", gen.created},
                         {"operation", gen.operation},
                         {"gitCommit", gen.gitCommit},
                         {"summary", gen.summary},
                         {"manifestsDigest", gen.manifestsDigest}});
    res.set_content(Json{{"target", name}, {"generations", out}}.dump(2), "application/json");
  });
  auto webhook = [&](const httplib::Request&, httplib::Response& res) {
    agent.trigger();
    res.status = 202;
    res.set_content(Json{{"queued", true}}.dump(), "application/json");
  };
  server.Post("/webhook", webhook);
  server.Post("/api/v1/sync", webhook);
  const int refresh = static_cast<int>(std::clamp<int64_t>(a.interval.count() / 1000, 2, 30));
  server.Get("/", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(renderPage(agent.snapshot(), refresh), "text/html; charset=utf-8");
  });

  int port = listen->port;
  if (port == 0) {
    port = server.bind_to_any_port(listen->host);
    if (port <= 0) return fail("cannot listen on " + listen->host + " (any port)");
  } else if (!server.bind_to_port(listen->host, port)) {
    return fail("cannot listen on " + a.listen + " (in use, or not an address of this host)");
  }
  const std::string hostText = listen->host.find(':') != std::string::npos ? "[" + listen->host + "]" : listen->host;
  say("serve: listening on http://" + hostText + ":" + std::to_string(port) + " (manifests " +
      redactCredentials(a.manifests) +
      (agent.git() ? " branch " + a.branch : "") + ", every " + std::to_string(a.interval.count()) + "ms, state " +
      state::redactStateUrl(g.stateUrl) + (tok.empty() ? "" : ", bearer token required") + ")");

  std::thread worker([&] { agent.runLoop(); });
  std::thread watcher([&] {
    while (!agent.stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    server.stop();
  });
  server.listen_after_bind();
  agent.stop();
  worker.join();
  watcher.join();
  say("serve: stopped");
  return 0;
}

}  // namespace vnetplan::cli
