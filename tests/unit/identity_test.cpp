// Provider identity and revisions: a provider that identifies objects by id (Neutron's uuid, an OVS row uuid) and
// versions them (revision_number) gets both recorded in state, covered by a saved plan's staleness fingerprint,
// and handed to it with every update and delete so it can guard the change (If-Match).
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>

#include "base/sha256.h"
#include "model/codec.h"
#include "reconciler/applier.h"
#include "reconciler/pipeline.h"
#include "state/store.h"
#include "tests/support/fake_provider.h"

using namespace vnetplan;
using namespace vnptest;
namespace fs = std::filesystem;

namespace {

std::string manifest(int mtu) {
  return "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: c1}\nspec: {provider: esxi, host: h}\n---\n"
         "apiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: s1}\nspec: {targets: [c1], mtu: " +
         std::to_string(mtu) + "}\n";
}

class Identity : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vnp-identity-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    world_.identities = true;
    registry_ = fakeRegistry(world_, "esxi");
    store_ = std::make_unique<state::Store>(std::move(*state::openBackend("file://" + dir_.string())));
  }
  void TearDown() override { fs::remove_all(dir_); }

  Plan plan(int mtu) {
    Diagnostics d;
    desired_ = loadDesiredText(manifest(mtu), "m.yaml", registry_, d);
    EXPECT_FALSE(d.hasErrors()) << d.render(false);
    auto p = planDesired(desired_, {}, *store_, registry_, d);
    EXPECT_TRUE(p.ok());
    return *p;
  }
  ApplyOutcome apply(const Plan& p) { return applyPlan(p, *store_, registry_, ApplyOptions{}); }
  state::OwnedObject owned() { return store_->load("c1")->owned.at(*Address::parse("c1/Switch/s1")); }

  fs::path dir_;
  FakeWorld world_;
  ProviderRegistry registry_;
  std::unique_ptr<state::Store> store_;
  DesiredState desired_;
};

}  // namespace

TEST_F(Identity, IdAndRevisionAreRecordedInState) {
  ASSERT_EQ(apply(plan(1500)).exitCode(), 0);
  EXPECT_EQ(owned().identity.id, "id-1");
  EXPECT_EQ(owned().identity.revision, "1");
  ASSERT_EQ(apply(plan(9000)).exitCode(), 0);
  EXPECT_EQ(owned().identity.id, "id-1") << "an update keeps the object";
  EXPECT_EQ(owned().identity.revision, "2");
  EXPECT_FALSE(plan(9000).hasChanges());
}

TEST_F(Identity, StepsCarryTheLiveRevision) {
  ASSERT_EQ(apply(plan(1500)).exitCode(), 0);
  Plan p = plan(9000);
  auto steps = p.steps();
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].identity.id, "id-1");
  EXPECT_EQ(steps[0].identity.revision, "1");
  // Saved and read back, the plan still carries it.
  auto again = planFromJson(planToJson(p));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->steps()[0].identity.revision, "1");
}

TEST_F(Identity, AChangedRevisionMakesASavedPlanStale) {
  ASSERT_EQ(apply(plan(1500)).exitCode(), 0);
  Plan p = plan(9000);
  world_.bumpRevision("c1/Switch/s1");  // changed by someone else; the attributes vnetplan sees are the same
  auto out = apply(p);
  EXPECT_EQ(out.exitCode(), 1);
  EXPECT_EQ(out.targets[0].result, TargetResult::Refused);
  EXPECT_NE(out.targets[0].message.find("stale"), std::string::npos) << out.targets[0].message;
  EXPECT_EQ(world_.get("c1/Switch/s1")->getInt("mtu"), 1500);
}

TEST_F(Identity, AConcurrentChangeDuringTheApplyIsRefusedByTheProvider) {
  ASSERT_EQ(apply(plan(1500)).exitCode(), 0);
  Plan p = plan(9000);
  // Between the apply's own observation and its update, someone else changes the object.
  world_.beforeStep = [&](const Step& s) {
    if (s.action == StepAction::Update) world_.bumpRevision("c1/Switch/s1");
  };
  auto out = apply(p);
  world_.beforeStep = nullptr;
  EXPECT_EQ(out.exitCode(), 1) << out.targets[0].message;
  EXPECT_NE(out.targets[0].message.find("changed concurrently"), std::string::npos) << out.targets[0].message;
  EXPECT_EQ(world_.get("c1/Switch/s1")->getInt("mtu"), 1500);
}

// Saved plans carry fingerprints: they must keep meaning the same bytes (sha256 of the flat JSON dump) from
// version to version, or every plan saved by the previous vnetplan would be refused as stale.
TEST(Fingerprint, IsTheSha256OfTheFlatJsonDump) {
  Attrs a;
  a.set("mtu", 9000);
  a.set("addresses", Json::array({"10.0.0.1/24", "fd00::1/64"}));
  a.set("linux.weird \"key\"\\", "\xc3\xa9t\xc3\xa9\n");
  a.set("nested", Json{{"b", 1}, {"a", Json::array({true, nullptr, 1.5})}});
  a.set("neg", -3);
  a.set("big", std::numeric_limits<uint64_t>::max());
  a.set("float", 0.1);
  a.set("ctl", std::string("a\x01b\tc"));
  a.set("obj", Json{{"k\"q", Json::object()}, {"z", Json::array()}, {"\xe2\x82\xac", "x"}});
  EXPECT_EQ(fingerprint(&a), sha256Hex(flatJson(a).dump()));
  Attrs empty;
  EXPECT_EQ(fingerprint(&empty), sha256Hex(flatJson(empty).dump()));
  ObservedObject o{Address::parse("t/Switch/s").value(), a, true, ProviderIdentity{"id-1", "7"}};
  EXPECT_EQ(fingerprint(&o), sha256Hex(flatJson(a).dump() + '\0' + "id-1" + '\0' + "7"));
  EXPECT_EQ(fingerprint(static_cast<const Attrs*>(nullptr)), "absent");
}
