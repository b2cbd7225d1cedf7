// TargetSession of the ovs provider: one OVSDB connection per target. Observe is one `transact` of selects;
// an apply is one transaction holding every step, guarded by `wait` operations on the rows it read, so a
// concurrent change by someone else fails it cleanly (stale) instead of being overwritten.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "providers/ovs/db.h"
#include "providers/ovs/host_port.h"
#include "providers/ovs/ovsdb.h"
#include "reconciler/provider.h"

namespace vnetplan::ovs {

class OvsSession : public TargetSession {
 public:
  // Connects and checks the server's schema (name, version, every table and column used).
  // Connects (by `deadline` at the latest) and checks the server's schema.
  static Result<std::unique_ptr<OvsSession>> connect(const Target& target, Deadline deadline);

  Result<Observation> observe() override;
  Status apply(const Step& step) override;
  Mode mode() const override { return Mode::Atomic; }
  BatchResult applyBatch(const std::vector<Step>& steps, const std::function<void(size_t)>& done) override;
  // Test hook (VNETPLAN_FAIL_AT_STEP): the next transaction carries an `abort` after step `index`'s operations.
  void injectFailure(long index) override { failAt_ = index; }

 private:
  OvsSession() = default;
  Status checkSchema();
  // conn_->call, reconnecting first if an earlier error left the connection unusable.
  Result<Json> call(const std::string& method, Json params);
  Result<Snapshot> read();
  // After a commit: waits (bounded) until ovs-vswitchd has applied it, then reports interfaces it could not
  // set up (Interface.error) as the failure of the step that made them.
  BatchResult settle(int64_t nextCfg, const std::vector<Step>& steps);
  // A wait failed: true if everything the steps touch is still as they expect, so the transaction can be
  // rebuilt against fresh rows (someone changed something else, e.g. added another port to the bridge).
  bool stillApplies(const std::vector<Step>& steps, const Observation& before, const Observation& now) const;

  // NIOC classification flows (OpenFlow): marks ports whose flow differs from what their class needs, and
  // brings the flows of `bridges` in line with the rows after a commit.
  void annotateFlows(Observation& obs);
  Status syncFlows(const std::vector<std::string>& bridges);
  // After a commit: the kernel side of the internal ports the steps set (up, addresses). A failure names its step.
  BatchResult applyHostPorts(const std::vector<Step>& steps);
  Result<std::string> mgmtSocket(const std::string& bridge) const;

  std::string target_;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<HostPorts> host_;  // internal ports' kernel side
  std::optional<Snapshot> snap_;
  Observation lastObs_;
  long failAt_ = -1;
};

}  // namespace vnetplan::ovs
