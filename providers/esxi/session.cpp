#include "providers/esxi/session.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "providers/esxi/kind.h"

namespace vnetplan::esxi {

namespace {

// Steps per applyBatch call (the applier records progress in the journal between calls). Every command reports
// its own status, so a batch's size costs nothing in what a failure leaves known; it only bounds how long one exec
// runs before the journal is written again. On a real host one esxcli takes 0.2-1 s, so 100 steps (a few hundred
// commands) are a few minutes at most.
constexpr size_t kStepsPerBatch = 100;
// Bytes of script per exec: the script goes on stdin, so this only bounds what one exec holds in memory (a plan of a
// host with thousands of port groups is well below it).
constexpr size_t kMaxScriptBytes = 8u << 20;

long envMs(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return (end && *end == '\0' && n > 0) ? n : fallback;
}

std::chrono::milliseconds commandTimeout() {
  return std::chrono::milliseconds(envMs("VNETPLAN_ESXI_COMMAND_TIMEOUT_MS", 60000));
}
std::chrono::milliseconds reconnectTimeout() {
  return std::chrono::milliseconds(envMs("VNETPLAN_ESXI_CONNECT_TIMEOUT_MS", 30000));
}

std::string trimmed(const std::string& s) {
  size_t end = s.find_last_not_of(" \t\r\n");
  return end == std::string::npos ? "" : s.substr(0, end + 1);
}

std::string failureText(const EsxcliCommand& c, const CommandResult& r) {
  std::string out = trimmed(r.output);
  std::string msg = "`" + c.text() + "` failed (exit " + std::to_string(r.status) + ")";
  if (r.status == 127) return msg + ": the host has no esxcli (is it an ESXi host?)";
  return msg + (out.empty() ? "" : ": " + printable(out, 400));
}

}  // namespace

size_t EsxiSession::batchSize() const { return kStepsPerBatch; }

ConnectionPool& ConnectionPool::instance() {
  static ConnectionPool* pool = new ConnectionPool();
  return *pool;
}

void ConnectionPool::closeAll() {
  std::map<std::string, Idle> idle;
  {
    std::lock_guard<std::mutex> lock(m_);
    idle.swap(idle_);
  }
}

std::optional<ConnectionPool::Idle> ConnectionPool::take(const std::string& key) {
  std::lock_guard<std::mutex> lock(m_);
  auto it = idle_.find(key);
  if (it == idle_.end()) return std::nullopt;
  Idle out = std::move(it->second);
  idle_.erase(it);
  return out;
}

void ConnectionPool::put(const std::string& key, Idle idle) {
  // Registered after libssh initialized OpenSSL (a connection exists), so it runs before OpenSSL's own exit handler.
  static std::once_flag registered;
  std::call_once(registered, [] { std::atexit([] { ConnectionPool::instance().closeAll(); }); });
  std::lock_guard<std::mutex> lock(m_);
  idle_[key] = std::move(idle);
}

Result<std::unique_ptr<EsxiSession>> EsxiSession::connect(const Target& target, Deadline deadline,
                                                          ConnectionPool* pool) {
  auto ep = endpointFor(target);
  if (!ep) return ep.error();
  std::unique_ptr<EsxiSession> s(new EsxiSession());
  s->ep_ = std::move(*ep);
  s->connectDeadline_ = deadline;
  s->pool_ = pool;
  // Everything that decides what the connection is and how it was authenticated.
  s->poolKey_ = s->ep_.target + "\n" + s->ep_.hostName + "\n" + std::to_string(s->ep_.port) + "\n" + s->ep_.user + "\n" +
                s->ep_.knownHostsFile + "\n" + (s->ep_.passphrase ? s->ep_.passphrase->describe() : "");
  for (const auto& f : s->ep_.identityFiles) s->poolKey_ += "\n" + f;
  if (pool)
    if (auto idle = pool->take(s->poolKey_); idle && idle->conn && idle->conn->usable()) {
      s->conn_ = std::move(idle->conn);
      s->knownSwitches_ = std::move(idle->switches);
      s->knownGroups_ = std::move(idle->groups);
      spdlog::debug("esxi: target {}: reusing the SSH connection to {}", s->ep_.target, s->ep_.hostLabel());
      return s;
    }
  auto c = SshConnection::open(s->ep_, deadline);
  if (!c) return Error{"esxi: " + c.error().message};
  s->conn_ = std::move(*c);
  s->connections_ = 1;
  return s;
}

EsxiSession::~EsxiSession() {
  spdlog::debug("esxi: target {}: {} new SSH connection(s), {} exec(s), {} esxcli command(s)", ep_.target,
                connections_, execs_, commands_);
  if (pool_ && conn_ && conn_->usable())
    pool_->put(poolKey_, ConnectionPool::Idle{std::move(conn_), knownSwitches_, knownGroups_});
}

Deadline EsxiSession::commandDeadline() const {
  Deadline d = SteadyClock::now() + commandTimeout();
  if (connectDeadline_ && *connectDeadline_ < d) d = *connectDeadline_;
  return d;
}

Status EsxiSession::ensureConnected() {
  if (conn_ && conn_->usable()) return {};
  // The connection broke (dropped, or a protocol error left it in an unknown place): a new one, so whatever comes
  // next -- typically observing and rolling back -- can still reach the host.
  conn_.reset();
  Deadline d = SteadyClock::now() + reconnectTimeout();
  if (connectDeadline_ && *connectDeadline_ < d) d = *connectDeadline_;
  auto c = SshConnection::open(ep_, d);
  if (!c) return Error{"reconnecting: " + c.error().message};
  spdlog::warn("esxi: target {}: the SSH connection was lost; reconnected to {}", ep_.target, ep_.hostLabel());
  conn_ = std::move(*c);
  ++connections_;
  return {};
}

EsxiSession::Run EsxiSession::run(const std::vector<EsxcliCommand>& cmds, bool stopAtFailure,
                                  const std::function<void(size_t, const CommandResult&)>& onCommand) {
  Run out;
  size_t i = 0;
  bool retried = false;
  while (i < cmds.size()) {
    if (Status s = ensureConnected(); !s) {
      out.status = s;
      return out;
    }
    // As many commands as fit the script size (at least one).
    size_t end = i, bytes = 0;
    std::vector<EsxcliCommand> chunk;
    while (end < cmds.size()) {
      size_t len = 64;
      for (const auto& a : cmds[end].args) len += a.size() + 4;
      if (!chunk.empty() && bytes + len > kMaxScriptBytes) break;
      bytes += len;
      chunk.push_back(cmds[end++]);
    }
    const std::string nonce = newNonce();
    const std::string script = buildScript(chunk, i, nonce, stopAtFailure);
    MarkerReader reader(nonce, i);
    Deadline deadline = commandDeadline();
    bool failedCommand = false;
    auto exec = conn_->exec(
        remoteCommand(), script,
        [&](std::string_view data) {
          reader.feed(data, [&](size_t idx, CommandResult r) {
            deadline = commandDeadline();  // each command has the full timeout
            ++commands_;
            if (r.status != 0) failedCommand = true;
            if (onCommand) onCommand(idx, r);
            out.results.push_back(std::move(r));
          });
        },
        [&] { return deadline; });
    ++execs_;
    if (exec.broken && exec.notStarted && !retried) {
      // The connection was gone before the script went out (an idle one the host dropped): nothing ran, so the
      // same commands go again over a new connection, once.
      retried = true;
      conn_.reset();
      continue;
    }
    const size_t next = reader.nextIndex();
    spdlog::debug("esxi: target {}: exec {}: {} of {} command(s) done", ep_.target, execs_, next - i, chunk.size());
    if (!reader.error().empty()) {
      conn_.reset();  // whatever the host does, it is not running our script as written
      out.status = Error{"the host's output does not follow the batch protocol (" + reader.error() + ") after `" +
                         (next < cmds.size() ? cmds[next].text() : std::string("the last command")) + "`"};
      return out;
    }
    if (stopAtFailure && failedCommand) {
      out.status = Error{failureText(cmds[next - 1], out.results.back())};
      return out;
    }
    if (next == i + chunk.size()) {  // every command reported, even if the channel's end was not seen
      if (exec.broken) conn_.reset();
      i = next;
      continue;
    }
    if (exec.timedOut) {
      out.status = Error{"`" + cmds[next].text() + "` did not finish within " +
                         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(commandTimeout()).count()) +
                         " ms; it was stopped (its channel closed)" +
                         (next > 0 ? "; the commands before it completed" : "")};
      return out;
    }
    if (exec.broken) {
      conn_.reset();
      out.status = Error{exec.status.error().message + ", while `" + cmds[next].text() + "` was running"};
      return out;
    }
    std::string said = trimmed(reader.pending() + exec.stderrText);
    out.status = Error{"the host's shell stopped before `" + cmds[next].text() + "` reported its status" +
                       (said.empty() ? "" : ": " + printable(said, 300))};
    return out;
  }
  return out;
}

Result<HostState> EsxiSession::readHostOnce(bool& raced) {
  raced = false;
  // Round one: every list, plus the policy gets of the names known from before (usually all of them).
  std::vector<EsxcliCommand> cmds = listCommands();
  const size_t nlists = cmds.size();
  std::vector<std::string> specSwitches(knownSwitches_.begin(), knownSwitches_.end());
  std::vector<std::string> specGroups(knownGroups_.begin(), knownGroups_.end());
  for (const auto& v : specSwitches)
    for (auto& c : vswitchPolicyCommands(v)) cmds.push_back(std::move(c));
  for (const auto& g : specGroups)
    for (auto& c : portgroupPolicyCommands(g)) cmds.push_back(std::move(c));
  Run r1 = run(cmds, false);
  if (!r1.status) return r1.status.error();
  std::vector<std::string> lists;
  for (size_t k = 0; k < nlists; ++k) {
    if (r1.results[k].status != 0) return Error{failureText(cmds[k], r1.results[k])};
    lists.push_back(r1.results[k].output);
  }
  auto host = parseLists(lists);
  if (!host) return host.error();

  auto outputsOf = [](const Run& r, size_t at) -> std::optional<std::vector<std::string>> {
    std::vector<std::string> out;
    for (size_t k = at; k < at + 3; ++k) {
      if (r.results[k].status != 0) return std::nullopt;
      out.push_back(r.results[k].output);
    }
    return out;
  };
  size_t at = nlists;
  for (const auto& name : specSwitches) {
    auto outs = outputsOf(r1, at);
    at += 3;
    for (auto& vs : host->vswitches)
      if (vs.name == name && outs)
        if (Status s = parseVswitchPolicies(*outs, vs); !s) return s.error();
  }
  for (const auto& name : specGroups) {
    auto outs = outputsOf(r1, at);
    at += 3;
    for (auto& pg : host->portgroups)
      if (pg.name == name && outs)
        if (Status s = parsePortgroupPolicies(*outs, pg); !s) return s.error();
  }

  // Round two: the policies of whatever round one listed but did not read.
  std::vector<EsxcliCommand> more;
  std::vector<std::pair<bool, size_t>> who;  // (is vSwitch, index)
  for (size_t k = 0; k < host->vswitches.size(); ++k)
    if (!host->vswitches[k].policiesRead) {
      for (auto& c : vswitchPolicyCommands(host->vswitches[k].name)) more.push_back(std::move(c));
      who.emplace_back(true, k);
    }
  for (size_t k = 0; k < host->portgroups.size(); ++k)
    if (!host->portgroups[k].policiesRead) {
      for (auto& c : portgroupPolicyCommands(host->portgroups[k].name)) more.push_back(std::move(c));
      who.emplace_back(false, k);
    }
  if (!more.empty()) {
    Run r2 = run(more, false);
    if (!r2.status) return r2.status.error();
    for (size_t w = 0; w < who.size(); ++w) {
      for (size_t k = w * 3; k < w * 3 + 3; ++k)
        if (r2.results[k].status != 0) {
          // Listed a moment ago, gone now: someone changed the host while we read it.
          if (isNotFound(r2.results[k].output)) {
            raced = true;
            return Error{failureText(more[k], r2.results[k])};
          }
          return Error{failureText(more[k], r2.results[k])};
        }
      std::vector<std::string> outs{r2.results[w * 3].output, r2.results[w * 3 + 1].output,
                                    r2.results[w * 3 + 2].output};
      Status s = who[w].first ? parseVswitchPolicies(outs, host->vswitches[who[w].second])
                              : parsePortgroupPolicies(outs, host->portgroups[who[w].second]);
      if (!s) return s.error();
    }
  }
  return host;
}

Result<HostState> EsxiSession::readHost() {
  bool raced = false;
  auto h = readHostOnce(raced);
  if (!h && raced) h = readHostOnce(raced);  // once more: a concurrent change is over by now, usually
  return h;
}

Result<Observation> EsxiSession::observe() {
  auto host = readHost();
  if (!host) return Error{"esxi: " + ep_.hostLabel() + ": " + host.error().message};
  last_ = std::move(*host);
  observed_ = true;
  connectDeadline_.reset();  // connecting and the first observe are done: from here on, per-command timeouts
  knownSwitches_.clear();
  knownGroups_.clear();
  for (const auto& v : last_.vswitches) knownSwitches_.insert(v.name);
  for (const auto& p : last_.portgroups) knownGroups_.insert(p.name);
  Observation obs;
  const std::string target = ep_.target;
  esxiKinds().observe(EsxLive{last_, target}, obs);
  return obs;
}

Status EsxiSession::apply(const Step& step) { return applyBatch({step}, nullptr).status; }

TargetSession::BatchResult EsxiSession::applyBatch(const std::vector<Step>& steps,
                                                   const std::function<void(size_t)>& done) {
  BatchResult br;
  // Every step's commands first: a step the provider cannot express fails before anything of it runs.
  std::vector<EsxcliCommand> all;
  std::vector<size_t> endOf(steps.size(), 0);  // commands [.., endOf[k]) belong to steps 0..k
  size_t runnable = steps.size();
  Status buildError;
  const long failAt = failAt_;
  failAt_ = -1;
  for (size_t k = 0; k < steps.size(); ++k) {
    if (failAt >= 0 && static_cast<long>(k) == failAt) {
      runnable = k;
      buildError = Error{"injected failure (VNETPLAN_FAIL_AT_STEP) before its esxcli commands ran"};
      break;
    }
    StepCommands sc;
    sc.live = observed_ ? &last_ : nullptr;
    if (Status s = esxiKinds().apply(sc, steps[k]); !s) {
      runnable = k;
      buildError = s;
      break;
    }
    for (auto& c : sc.cmds) all.push_back(std::move(c));
    endOf[k] = all.size();
  }
  size_t doneSteps = 0;
  auto advance = [&](size_t commandsDone) {
    while (doneSteps < runnable && endOf[doneSteps] <= commandsDone) {
      if (done) done(doneSteps);
      const Step& s = steps[doneSteps];
      // The next observe reads the policies of what this created in its first round trip.
      if (s.addr.kind == Kind::Switch) {
        if (s.action == StepAction::Delete) knownSwitches_.erase(s.addr.name);
        else knownSwitches_.insert(s.addr.name);
      } else if (s.addr.kind == Kind::PortGroup) {
        if (s.action == StepAction::Delete) knownGroups_.erase(s.addr.name);
        else knownGroups_.insert(s.addr.name);
      }
      ++doneSteps;
    }
  };
  advance(0);
  Run r = run(all, true, [&](size_t idx, const CommandResult& res) {
    if (res.status == 0) advance(idx + 1);
  });
  if (!r.status) {
    br.status = r.status;
    br.failedIndex = doneSteps;
    return br;
  }
  if (runnable < steps.size()) {
    br.status = buildError;
    br.failedIndex = runnable;
  }
  return br;
}

}  // namespace vnetplan::esxi
