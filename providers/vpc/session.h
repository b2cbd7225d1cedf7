// TargetSession of the vpc provider: one Neutron endpoint (and its Keystone token) per target.
//
// Observe is a fixed handful of list calls filtered by this target's owner tag (routers, networks, subnets,
// security groups with their rules; then the interfaces of those routers, and external network names when a
// router has a gateway): the number of requests grows with the kinds, not with the objects.
//
// Apply is Batched: Neutron has no transactions, so a failure leaves exactly the steps done that were done, and
// the engine rolls back toward the pre-image from a fresh observation. Inside a batch, steps run on up to
// `parallelism` requests at once, each as soon as what it depends on is done: the reference graph (a Subnet after
// its Vpc, a rule's group before the rule), deletes before creates and updates, and the plan's order between
// steps of different kinds on one router (a Route after the Subnet its nexthop is on, and deleted before it).
#pragma once
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "providers/vpc/kind.h"
#include "reconciler/provider.h"

namespace vnetplan::vpc {

class VpcSession final : public TargetSession {
 public:
  VpcSession(std::shared_ptr<HttpClient> http, std::shared_ptr<TokenSource> auth, ApplyCtx::Settings settings,
             std::set<std::string> extensions, std::optional<Deadline> firstObserveBy, int parallelism);

  Result<Observation> observe() override;
  Mode mode() const override { return Mode::Batched; }
  size_t batchSize() const override { return 512; }
  Status apply(const Step& step) override;
  BatchResult applyBatch(const std::vector<Step>& steps, const std::function<void(size_t)>& done) override;
  void injectFailure(long index) override { failAt_ = index; }
  void setParallelism(int n) override { parallelism_ = std::max(1, n); }

  Neutron& api() { return api_; }
  const std::set<std::string>& extensions() const { return extensions_; }

 private:
  Result<std::unique_ptr<Snapshot>> read(std::optional<Deadline> deadline);
  Status runStep(const Step& step);

  Neutron api_;
  ApplyCtx::Settings settings_;
  std::set<std::string> extensions_;
  std::optional<Deadline> firstObserveBy_;
  int parallelism_;
  std::unique_ptr<Snapshot> snap_;
  std::unique_ptr<ApplyCtx> ctx_;
  std::mutex doneMu_;
  std::set<std::string> doneSteps_;  // steps already done since the last observe (a resumed batch skips them)
  long failAt_ = -1;
};

}  // namespace vnetplan::vpc
