// What `vnetplan drift` prints for people (text), CI (JUnit) and monitoring (Prometheus textfile).
#include <gtest/gtest.h>

#include "reconciler/plan.h"
#include "reconciler/render.h"

using namespace vnetplan;

namespace {

Address addr(const std::string& name, Kind kind = Kind::Switch) { return Address{"hv1", kind, name}; }

ResourceChange change(const std::string& name, Action a, Kind kind = Kind::Switch) {
  ResourceChange c;
  c.addr = addr(name, kind);
  c.provider = "linux";
  c.action = a;
  return c;
}

// br0 drifted (mtu 9000 -> 1500), vm1 was deleted out of band, br1 is in sync, br2 is a manifest change not
// applied yet.
Plan samplePlan() {
  Plan plan;
  plan.targets.push_back(Target{"hv1", "linux", {}, {}, {}});
  plan.changes = {change("br0", Action::Update), change("br1", Action::NoOp), change("br2", Action::Create),
                  change("vm1", Action::Create, Kind::Port)};
  DriftEntry d;
  d.addr = addr("br0");
  Attrs last, live;
  last.set("mtu", 9000);
  live.set("mtu", 1500);
  d.lastApplied = last;
  d.live = live;
  d.paths = {"mtu"};
  plan.drift.push_back(d);
  DriftEntry gone;
  gone.addr = addr("vm1", Kind::Port);
  gone.lastApplied = Attrs{};
  plan.drift.push_back(gone);
  return plan;
}

}  // namespace

TEST(DriftText, SaysBothDriftAndPendingChanges) {
  Plan plan = samplePlan();
  std::string out = renderDriftText(plan);
  EXPECT_NE(out.find("mtu: last applied 9000, live 1500"), std::string::npos) << out;
  EXPECT_NE(out.find("Pending: 3 change(s)"), std::string::npos) << out;

  // No drift, but a manifest change not applied: not just "No drift".
  plan.drift.clear();
  plan.changes = {change("br1", Action::NoOp), change("br2", Action::Create)};
  out = renderDriftText(plan);
  EXPECT_NE(out.find("No drift."), std::string::npos) << out;
  EXPECT_NE(out.find("Pending: 1 change(s) in the manifests not applied yet"), std::string::npos) << out;

  plan.changes = {change("br1", Action::NoOp)};
  out = renderDriftText(plan);
  EXPECT_NE(out.find("No pending changes"), std::string::npos) << out;
}

TEST(DriftJunit, FailuresCarryTheAttributeWithExpectedAndActual) {
  const std::string out = renderDriftJunit(samplePlan());
  EXPECT_NE(out.find("<failure type=\"drift\" message=\"drift: mtu: expected 9000, actual 1500\">"
                     "mtu: expected 9000, actual 1500\n</failure>"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("message=\"drift: deleted out of band (expected it to exist)\""), std::string::npos) << out;
  EXPECT_NE(out.find("<testcase classname=\"vnetplan.drift\" name=\"hv1/Switch/br1\"/>"), std::string::npos) << out;
  EXPECT_NE(out.find("tests=\"4\" failures=\"2\""), std::string::npos) << out;
}

TEST(DriftPrometheus, ASeriesPerResourceAndTheRunTime) {
  const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));
  const std::string out = renderDriftPrometheus(samplePlan(), when);
  EXPECT_NE(out.find("vnetplan_resource_drift{address=\"hv1/Switch/br0\",target=\"hv1\",kind=\"Switch\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("vnetplan_resource_drift{address=\"hv1/Switch/br1\",target=\"hv1\",kind=\"Switch\"} 0\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("vnetplan_resource_drift{address=\"hv1/Port/vm1\",target=\"hv1\",kind=\"Port\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("# TYPE vnetplan_last_run_timestamp_seconds gauge\nvnetplan_last_run_timestamp_seconds "
                     "1795000000\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("vnetplan_pending_changes 3\n"), std::string::npos) << out;
}

TEST(PlanText, ShowUnchangedListsUnchangedResourcesEvenWhenNothingChanges) {
  Plan plan;
  plan.targets.push_back(Target{"hv1", "linux", {}, {}, {}});
  plan.changes = {change("br0", Action::NoOp), change("br1", Action::NoOp)};
  RenderOptions opts;
  EXPECT_EQ(renderPlanText(plan, opts).find("hv1/Switch/br0"), std::string::npos);
  opts.showNoOps = true;
  std::string out = renderPlanText(plan, opts);
  EXPECT_NE(out.find("No changes."), std::string::npos) << out;
  EXPECT_NE(out.find("hv1/Switch/br0"), std::string::npos) << out;
  EXPECT_NE(out.find("hv1/Switch/br1"), std::string::npos) << out;
  plan.changes.push_back(change("br2", Action::Create));
  out = renderPlanText(plan, opts);
  EXPECT_NE(out.find("hv1/Switch/br1"), std::string::npos) << out;
  EXPECT_NE(out.find("hv1/Switch/br2"), std::string::npos) << out;
}
