// TargetSession of the esxi provider: one SSH connection per target (re-opened only if it breaks, e.g. to roll
// back after the connection dropped mid-apply), observe in at most two round trips, and an apply sent as batches
// of esxcli invocations per exec with a status marker after each, so the session reports exactly which steps are
// done (Mode::Batched).
//
// Timeouts: connecting and the first observe end by the deadline connect() was given (--target-timeout); every
// esxcli command after that has VNETPLAN_ESXI_COMMAND_TIMEOUT_MS (default 60 s) to finish -- an exec of a batch
// may take longer as long as its commands keep finishing. A command that does not finish in time has its channel
// closed (the steps before it stay done). Re-connecting has VNETPLAN_ESXI_CONNECT_TIMEOUT_MS (default 30 s).
#pragma once
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "providers/esxi/batch.h"
#include "providers/esxi/host.h"
#include "providers/esxi/ssh.h"
#include "reconciler/provider.h"

namespace vnetplan::esxi {

// Connections kept between the sessions of one run: `vnetplan apply -f` plans (one session per target) and then
// applies (another), and both go over the same SSH connection; what the plan learnt (the names to read policies
// of) comes along, so the apply's first observe takes one round trip. A connection is used by one session at a
// time: taking it removes it from the pool. Idle connections are closed at exit, before OpenSSL (which libssh
// uses) cleans up after itself.
class ConnectionPool {
 public:
  struct Idle {
    std::unique_ptr<SshConnection> conn;
    std::set<std::string> switches, groups;
  };
  // The process's pool (never destroyed: it is drained by an atexit handler instead).
  static ConnectionPool& instance();
  std::optional<Idle> take(const std::string& key);
  void put(const std::string& key, Idle idle);
  void closeAll();

 private:
  ConnectionPool() = default;
  std::mutex m_;
  std::map<std::string, Idle> idle_;
};

class EsxiSession final : public TargetSession {
 public:
  static Result<std::unique_ptr<EsxiSession>> connect(const Target& target, Deadline deadline,
                                                      ConnectionPool* pool = nullptr);
  ~EsxiSession() override;

  Result<Observation> observe() override;
  Mode mode() const override { return Mode::Batched; }
  Status apply(const Step& step) override;
  BatchResult applyBatch(const std::vector<Step>& steps, const std::function<void(size_t)>& done) override;
  size_t batchSize() const override;
  void injectFailure(long index) override { failAt_ = index; }

 private:
  EsxiSession() = default;

  struct Run {
    Status status;  // ok: every command ran (whatever its exit status, unless stopAtFailure)
    std::vector<CommandResult> results;  // one per command that ran, in order
  };
  // Runs `cmds` in as few execs as the script size allows. With `stopAtFailure` the first command that fails ends
  // the run (status: which command and what it said). `onCommand` is called as each command's marker arrives.
  Run run(const std::vector<EsxcliCommand>& cmds, bool stopAtFailure,
          const std::function<void(size_t, const CommandResult&)>& onCommand = nullptr);
  Status ensureConnected();
  Deadline commandDeadline() const;
  Result<HostState> readHost();
  Result<HostState> readHostOnce(bool& raced);

  SshEndpoint ep_;
  ConnectionPool* pool_ = nullptr;
  std::string poolKey_;
  std::unique_ptr<SshConnection> conn_;
  std::optional<Deadline> connectDeadline_;  // bounds everything until the first observe is done
  HostState last_;
  bool observed_ = false;
  // Names whose policy `get`s go into the first round trip of the next observe.
  std::set<std::string> knownSwitches_, knownGroups_;
  long failAt_ = -1;
  // For the log line at the end and the benchmark.
  long connections_ = 0, execs_ = 0, commands_ = 0;
};

}  // namespace vnetplan::esxi
