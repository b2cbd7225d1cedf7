// The applier, journal recovery, confirm and rollback against the in-memory fake provider: no root, no peer, and
// failures exactly where each test wants them. Every apply mode (step by step, batched, atomic) is covered.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "reconciler/applier.h"
#include "reconciler/pipeline.h"
#include "state/store.h"
#include "tests/support/fake_provider.h"

using namespace vnetplan;
using namespace vnptest;
namespace fs = std::filesystem;

namespace {

const char* kManifest = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: hv1}
spec: {provider: esxi, host: hv1.example}
---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: sw}
spec: {targets: [hv1], mtu: 9000}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: pg}
spec: {targets: [hv1], switch: sw, vlan: 10}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: p1}
spec: {targets: [hv1], portGroup: pg, mtu: 1500}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: p2}
spec: {targets: [hv1], portGroup: pg, mtu: 1500}
)";

class FakeApply : public ::testing::TestWithParam<TargetSession::Mode> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = fs::temp_directory_path() / ("vnp-fake-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    world_.mode = GetParam();
    registry_ = fakeRegistry(world_, "esxi");
    auto backend = state::openBackend("file://" + dir_.string());
    ASSERT_TRUE(backend.ok()) << backend.error().message;
    store_ = std::make_unique<state::Store>(std::move(*backend));
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<Plan> plan(const std::string& yaml = kManifest) {
    Diagnostics d;
    desired_ = loadDesiredText(yaml, "m.yaml", registry_, d);
    if (d.hasErrors()) return err(d.render(false));
    return planDesired(desired_, {}, *store_, registry_, d);
  }

  ApplyOutcome apply(const Plan& p, ApplyOptions opts = {}) { return applyPlan(p, *store_, registry_, opts); }

  std::map<Address, ObservedObject> live() {
    std::lock_guard<std::mutex> lock(world_.mu);
    return world_.live["hv1"];
  }

  fs::path dir_;
  FakeWorld world_;
  ProviderRegistry registry_;
  std::unique_ptr<state::Store> store_;
  DesiredState desired_;
};

bool sameLive(const std::map<Address, ObservedObject>& a, const std::map<Address, ObservedObject>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [addr, obj] : a) {
    auto it = b.find(addr);
    if (it == b.end() || !(it->second.attrs == obj.attrs)) return false;
  }
  return true;
}

}  // namespace

TEST_P(FakeApply, CreatesVerifiesRecordsAndIsIdempotent) {
  auto p = plan();
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->count(Action::Create), 4u);
  auto out = apply(*p);
  ASSERT_EQ(out.exitCode(), 0) << out.targets[0].message;
  EXPECT_EQ(out.targets[0].result, TargetResult::Applied);
  EXPECT_EQ(out.targets[0].generation, 1);
  EXPECT_EQ(live().size(), 4u);
  EXPECT_EQ(world_.get("hv1/Switch/sw")->getInt("mtu"), 9000);
  // The reference graph decides the order: switch, group, then the ports.
  std::vector<std::string> creates;
  for (const auto& l : world_.log)
    if (l.rfind("create ", 0) == 0) creates.push_back(l.substr(7));
  ASSERT_EQ(creates.size(), 4u);
  EXPECT_EQ(creates[0], "hv1/Switch/sw");
  EXPECT_EQ(creates[1], "hv1/PortGroup/pg");
  auto j = store_->journal("hv1");
  ASSERT_TRUE(j.ok());
  EXPECT_FALSE(j->has_value()) << "the journal is removed after a successful apply";
  auto st = store_->load("hv1");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->generation, 1);
  EXPECT_EQ(st->owned.size(), 4u);
  auto again = plan();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->hasChanges());
}

TEST_P(FakeApply, FailureAtEveryStepRollsBackToTheExactPreImage) {
  // A prior generation, then a change touching every object: fail each step in turn.
  auto first = plan();
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(apply(*first).exitCode(), 0);
  std::string changed = kManifest;
  changed.replace(changed.find("mtu: 9000"), 9, "mtu: 1600");
  changed.replace(changed.find("vlan: 10"), 8, "vlan: 20");
  for (size_t at = changed.find("mtu: 1500"); at != std::string::npos; at = changed.find("mtu: 1500"))
    changed.replace(at, 9, "mtu: 1400");
  const auto before = live();
  auto p = plan(changed);
  ASSERT_TRUE(p.ok()) << p.error().message;
  const auto steps = p->steps();
  ASSERT_EQ(steps.size(), 4u);
  for (size_t k = 0; k < steps.size(); ++k) {
    world_.failOn(steps[k].addr.str(), steps[k].action);
    auto out = apply(*p);
    EXPECT_EQ(out.exitCode(), 1) << "failure at step " << k + 1 << ": " << out.targets[0].message;
    EXPECT_TRUE(sameLive(before, live())) << "failure at step " << k + 1 << " left the target changed";
    auto j = store_->journal("hv1");
    ASSERT_TRUE(j.ok());
    EXPECT_FALSE(j->has_value());
    auto st = store_->load("hv1");
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->generation, 1) << "a failed apply records no generation";
    if (GetParam() == TargetSession::Mode::Atomic)
      EXPECT_NE(out.targets[0].message.find("Nothing was changed"), std::string::npos) << out.targets[0].message;
    else
      EXPECT_NE(out.targets[0].message.find("Rolled back"), std::string::npos) << out.targets[0].message;
  }
}

TEST_P(FakeApply, JournalCountsOnlyStepsThatAreDone) {
  auto p = plan();
  ASSERT_TRUE(p.ok());
  std::vector<std::pair<size_t, size_t>> seen;  // (steps executed before this one, journal's stepsDone)
  size_t executed = 0;
  world_.beforeStep = [&](const Step&) {
    auto j = store_->journal("hv1");
    ASSERT_TRUE(j.ok() && j->has_value());
    seen.emplace_back(executed, (**j).stepsDone);
    ++executed;
  };
  ASSERT_EQ(apply(*p).exitCode(), 0);
  ASSERT_EQ(seen.size(), 4u);
  for (const auto& [done, recorded] : seen) EXPECT_LE(recorded, done) << "the journal claimed a step not yet done";
  if (GetParam() == TargetSession::Mode::Batched) {
    // Recorded at every batch boundary (batches of 3): the 4th step starts with 3 recorded.
    EXPECT_EQ(seen[3].second, 3u);
  }
}

TEST_P(FakeApply, InterruptedJournalIsRecoveredToThePreImage) {
  auto first = plan();
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(apply(*first).exitCode(), 0);
  const auto before = live();
  auto madeBefore = plan();  // a plan made before the crash
  ASSERT_TRUE(madeBefore.ok());
  // An apply that "crashed" after its journal and two changes: what a SIGKILL leaves.
  state::Journal j;
  j.id = "deadbeef";
  j.target = "hv1";
  j.targetSpec = desired_.targets[0];
  j.provider = "esxi";
  j.operation = "apply";
  j.started = state::nowRfc3339();
  j.pid = 999999;
  for (const auto& [addr, obj] : before) {
    j.preImage[addr] = obj.attrs;
    j.preOwned[addr] = true;
  }
  j.preImage[*Address::parse("hv1/Port/p3")] = std::nullopt;
  j.preOwned[*Address::parse("hv1/Port/p3")] = false;
  ASSERT_TRUE(store_->writeJournal(j).ok());
  world_.put("hv1/Port/p3", {{"portGroup", "pg"}});
  {
    std::lock_guard<std::mutex> lock(world_.mu);
    world_.live["hv1"][*Address::parse("hv1/Switch/sw")].attrs.set("mtu", 1234);
  }
  // Planning names the unfinished apply instead of planning over it (its objects are half-applied).
  auto p = plan();
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->unreachable.size(), 1u);
  EXPECT_NE(p->unreachable[0].error.find("did not finish"), std::string::npos) << p->unreachable[0].error;
  EXPECT_NE(p->unreachable[0].error.find("vnetplan rollback"), std::string::npos) << p->unreachable[0].error;
  // Applying a plan made before is refused too.
  auto refused = apply(*madeBefore);
  EXPECT_EQ(refused.exitCode(), 1);
  ASSERT_FALSE(refused.targets.empty());
  EXPECT_NE(refused.targets[0].message.find("vnetplan rollback"), std::string::npos) << refused.targets[0].message;
  ApplyOptions opts;
  auto out = recoverJournals(*store_, registry_, opts, {});
  ASSERT_EQ(out.exitCode(), 0) << out.targets[0].message;
  EXPECT_TRUE(sameLive(before, live()));
  auto jr = store_->journal("hv1");
  ASSERT_TRUE(jr.ok());
  EXPECT_FALSE(jr->has_value());
}

TEST_P(FakeApply, UnrestorableRollbackIsDamageWithTheLeftovers) {
  auto first = plan();
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(apply(*first).exitCode(), 0);
  std::string changed = kManifest;
  changed.replace(changed.find("mtu: 9000"), 9, "mtu: 1600");
  changed.replace(changed.find("vlan: 10"), 8, "vlan: 20");
  auto p = plan(changed);
  ASSERT_TRUE(p.ok());
  // The apply fails after the switch was updated (the group's update fails; an atomic transaction commits and
  // then fails verification), and the switch's way back fails too.
  ApplyOptions opts;
  if (GetParam() == TargetSession::Mode::Atomic)
    opts.faults.failAfterCommit = true;
  else
    world_.failOn("hv1/PortGroup/pg", StepAction::Update);
  int switchUpdates = 0;
  world_.beforeStep = [&](const Step& s) {
    if (s.addr.str() == "hv1/Switch/sw" && s.action == StepAction::Update && ++switchUpdates == 2)
      world_.failOn("hv1/Switch/sw", StepAction::Update, 5);
  };
  auto out = apply(*p, opts);
  EXPECT_EQ(out.exitCode(), 3) << out.targets[0].message;
  ASSERT_FALSE(out.targets[0].leftovers.empty());
  EXPECT_NE(out.targets[0].leftovers[0].find("hv1/Switch/sw: mtu"), std::string::npos) << out.targets[0].leftovers[0];
  auto dmg = store_->damage("hv1");
  ASSERT_TRUE(dmg.ok() && dmg->has_value());
  auto j = store_->journal("hv1");
  ASSERT_TRUE(j.ok() && j->has_value()) << "the journal stays for 'vnetplan rollback'";
  EXPECT_EQ((**j).status, state::JournalStatus::Failed);
}

TEST_P(FakeApply, ConfirmKeepsTheChangeAndNoConfirmRollsItBack) {
  auto p = plan();
  ASSERT_TRUE(p.ok());
  ApplyOptions opts;
  opts.confirmTimeout = std::chrono::milliseconds(3000);
  std::thread confirmer([&] {
    for (int i = 0; i < 100; ++i) {
      auto c = confirmPending(*store_, {});
      if (c.ok() && !c->empty()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  auto out = apply(*p, opts);
  confirmer.join();
  ASSERT_EQ(out.exitCode(), 0) << out.targets[0].message;
  EXPECT_EQ(live().size(), 4u);

  std::string smaller = kManifest;
  smaller.erase(smaller.find("---\napiVersion: vnetplan.io/v1\nkind: Port\nmetadata: {name: p2}"));
  auto p2 = plan(smaller);
  ASSERT_TRUE(p2.ok());
  const auto before = live();
  opts.confirmTimeout = std::chrono::milliseconds(300);
  auto timedOut = apply(*p2, opts);
  EXPECT_EQ(timedOut.exitCode(), 1) << timedOut.targets[0].message;
  EXPECT_NE(timedOut.targets[0].message.find("not confirmed within"), std::string::npos) << timedOut.targets[0].message;
  EXPECT_TRUE(sameLive(before, live())) << "the unconfirmed delete was not undone";
}

TEST_P(FakeApply, RollbackToAnEarlierGeneration) {
  auto p = plan();
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(apply(*p).exitCode(), 0);
  const auto gen1 = live();
  std::string changed = kManifest;
  changed.replace(changed.find("mtu: 9000"), 9, "mtu: 1600");
  auto p2 = plan(changed);
  ASSERT_TRUE(p2.ok());
  ASSERT_EQ(apply(*p2).exitCode(), 0);
  EXPECT_EQ(world_.get("hv1/Switch/sw")->getInt("mtu"), 1600);
  ApplyOptions opts;
  auto out = rollbackToGeneration(desired_.targets[0], 1, *store_, registry_, opts);
  ASSERT_EQ(out.exitCode(), 0) << out.targets[0].message;
  EXPECT_TRUE(sameLive(gen1, live()));
  auto hist = store_->history("hv1");
  ASSERT_TRUE(hist.ok());
  ASSERT_EQ(hist->size(), 3u);
  EXPECT_EQ(hist->back().operation, "rollback");
}

INSTANTIATE_TEST_SUITE_P(Modes, FakeApply,
                         ::testing::Values(TargetSession::Mode::StepByStep, TargetSession::Mode::Batched,
                                           TargetSession::Mode::Atomic),
                         [](const ::testing::TestParamInfo<TargetSession::Mode>& i) {
                           switch (i.param) {
                             case TargetSession::Mode::StepByStep: return std::string("StepByStep");
                             case TargetSession::Mode::Batched: return std::string("Batched");
                             case TargetSession::Mode::Atomic: return std::string("Atomic");
                           }
                           return std::string("?");
                         });

namespace {

// A backend that refuses to write one kind of document (a full disk, a lost etcd), delegating everything else.
class RefusingBackend : public state::Backend {
 public:
  RefusingBackend(std::unique_ptr<state::Backend> inner, std::string refuse)
      : inner_(std::move(inner)), refuse_(std::move(refuse)) {}
  std::string url() const override { return inner_->url(); }
  Result<std::optional<std::string>> read(const std::string& key) override { return inner_->read(key); }
  Status write(const std::string& key, const std::string& bytes) override {
    if (key.find(refuse_) != std::string::npos) return err("No space left on device");
    return inner_->write(key, bytes);
  }
  Status remove(const std::string& key) override { return inner_->remove(key); }
  Result<std::vector<std::string>> list(const std::string& prefix) override { return inner_->list(prefix); }
  Result<std::unique_ptr<state::Lock>> lock(const state::LockInfo& info, std::chrono::milliseconds wait) override {
    return inner_->lock(info, wait);
  }
  Result<std::vector<LockStatus>> locks() override { return inner_->locks(); }
  Status unlock(const std::string& id) override { return inner_->unlock(id); }

 private:
  std::unique_ptr<state::Backend> inner_;
  std::string refuse_;
};

}  // namespace

// Applied and verified, but the state store cannot record it: its own outcome and exit code (4), not "failed and
// not restored" (3); the journal stays so the next apply refuses until 'vnetplan rollback'.
// A step-by-step session that defers some work (a linux target's nftables changes) to one flush per apply.
class DeferredApply : public FakeApply {};

TEST_P(DeferredApply, DeferredWorkIsCommittedOnceAfterTheLastStep) {
  world_.deferredKinds = {Kind::PortGroup, Kind::Port};
  auto p = plan();
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto out = apply(*p);
  ASSERT_EQ(out.exitCode(), 0) << out.targets[0].message;
  EXPECT_EQ(live().size(), 4u) << "the deferred creates are live after the apply (verified)";
  EXPECT_EQ(world_.count("flush hv1"), 1u) << "one flush per apply";
  EXPECT_EQ(world_.count("flush hv1 3"), 1u) << "the group and both ports, committed together";
  // The flush follows the last step: nothing was applied after it.
  auto flushAt = std::find(world_.log.begin(), world_.log.end(), "flush hv1 3");
  ASSERT_NE(flushAt, world_.log.end());
  for (auto it = flushAt + 1; it != world_.log.end(); ++it) EXPECT_NE(it->rfind("defer ", 0), 0u) << *it;
  auto again = plan();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->hasChanges());
}

TEST_P(DeferredApply, AFailedFlushRollsBackTheStepsThatRan) {
  world_.deferredKinds = {Kind::Port};
  auto first = plan();
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(apply(*first).exitCode(), 0);
  std::string changed = kManifest;
  changed.replace(changed.find("mtu: 9000"), 9, "mtu: 1600");
  for (size_t at = changed.find("mtu: 1500"); at != std::string::npos; at = changed.find("mtu: 1500"))
    changed.replace(at, 9, "mtu: 1400");
  const auto before = live();
  auto p = plan(changed);
  ASSERT_TRUE(p.ok()) << p.error().message;
  world_.flushFails = 1;
  auto out = apply(*p);
  EXPECT_EQ(out.exitCode(), 1) << out.targets[0].message;
  EXPECT_NE(out.targets[0].message.find("injected flush failure"), std::string::npos) << out.targets[0].message;
  EXPECT_NE(out.targets[0].message.find("Rolled back"), std::string::npos) << out.targets[0].message;
  EXPECT_TRUE(sameLive(before, live())) << "the switch's mtu (not deferred) is restored, the ports never changed";
  auto st = store_->load("hv1");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->generation, 1);
}

TEST_P(DeferredApply, WorkDeferredBeforeAFailingStepIsNeverCommitted) {
  world_.deferredKinds = {Kind::PortGroup};
  auto first = plan();
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(apply(*first).exitCode(), 0);
  std::string changed = kManifest;
  changed.replace(changed.find("vlan: 10"), 8, "vlan: 20");
  for (size_t at = changed.find("mtu: 1500"); at != std::string::npos; at = changed.find("mtu: 1500"))
    changed.replace(at, 9, "mtu: 1400");
  const auto before = live();
  auto p = plan(changed);
  ASSERT_TRUE(p.ok()) << p.error().message;
  // The group's vlan change is deferred; then a port's update fails. The rollback must not commit the group's
  // pending change with its own flush.
  world_.failOn("hv1/Port/p2", StepAction::Update);
  auto out = apply(*p);
  EXPECT_EQ(out.exitCode(), 1) << out.targets[0].message;
  EXPECT_TRUE(sameLive(before, live())) << out.targets[0].message;
  EXPECT_EQ(world_.get("hv1/PortGroup/pg")->getInt("vlan"), 10);
  EXPECT_EQ(world_.count("discard 1"), 1u) << "the pending group change was dropped before the rollback";
}

INSTANTIATE_TEST_SUITE_P(StepByStep, DeferredApply, ::testing::Values(TargetSession::Mode::StepByStep));

TEST(FakeApplyStateStore, AppliedButNotRecordedIsExitFour) {
  const fs::path dir = fs::temp_directory_path() / ("vnp-fake-norecord-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  FakeWorld world;
  ProviderRegistry registry = fakeRegistry(world, "esxi");
  state::Store store(std::make_unique<RefusingBackend>(std::move(*state::openBackend("file://" + dir.string())),
                                                       "/generations/"));
  Diagnostics d;
  DesiredState desired = loadDesiredText(kManifest, "m.yaml", registry, d);
  ASSERT_FALSE(d.hasErrors()) << d.render(false);
  auto p = planDesired(desired, {}, store, registry, d);
  ASSERT_TRUE(p.ok());
  auto out = applyPlan(*p, store, registry, ApplyOptions{});
  EXPECT_EQ(out.exitCode(), 4) << out.targets[0].message;
  EXPECT_EQ(out.targets[0].result, TargetResult::StateNotRecorded);
  EXPECT_NE(out.targets[0].message.find("could not record"), std::string::npos) << out.targets[0].message;
  EXPECT_NE(out.targets[0].message.find("No space left on device"), std::string::npos) << out.targets[0].message;
  EXPECT_EQ(world.live["hv1"].size(), 4u) << "the change is on the target";
  auto j = store.journal("hv1");
  ASSERT_TRUE(j.ok() && j->has_value());
  fs::remove_all(dir);
}
