// Execution order from the reference graph (a resource after what it refers to; deletes in reverse), not from a
// global rank of kinds; a reference cycle is an error naming the resources in it.
#include <gtest/gtest.h>

#include <algorithm>

#include "base/toposort.h"
#include "reconciler/builder.h"
#include "reconciler/manifest.h"
#include "reconciler/plan.h"
#include "reconciler/planner.h"
#include "reconciler/schema_validator.h"

using namespace vnetplan;

namespace {

ResourceChange create(const std::string& addr, Json spec) {
  ResourceChange c;
  c.addr = *Address::parse(addr);
  c.action = Action::Create;
  c.after = Attrs::fromJson(spec);
  return c;
}

ResourceChange remove(const std::string& addr, Json live) {
  ResourceChange c;
  c.addr = *Address::parse(addr);
  c.action = Action::Delete;
  c.before = Attrs::fromJson(live);
  return c;
}

std::vector<std::string> order(const std::vector<ResourceChange>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) out.push_back(c.addr.str());
  return out;
}

size_t pos(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), x) - v.begin());
}

DesiredState build(const std::string& yaml, Diagnostics& diags) {
  auto docs = loadManifestText(yaml, "m.yaml", diags);
  SchemaValidator v;
  std::vector<Document> ok;
  for (auto& d : docs)
    if (v.validate(d, diags)) ok.push_back(std::move(d));
  return buildDesiredState(ok, diags);
}

}  // namespace

TEST(TopoSort, DependenciesFirstTiesByOrder) {
  // 0 depends on 2, 1 on nothing, 2 on 1; ties broken by index.
  auto o = topoSort({{2}, {}, {1}, {}}, [](size_t a, size_t b) { return a < b; });
  EXPECT_TRUE(o.cycle.empty());
  EXPECT_EQ(o.order, (std::vector<size_t>{1, 2, 0, 3}));
  // Self-references and duplicates are ignored.
  o = topoSort({{0, 1, 1}, {}}, [](size_t a, size_t b) { return a < b; });
  EXPECT_EQ(o.order, (std::vector<size_t>{1, 0}));
}

TEST(TopoSort, ReportsACycle) {
  // 0 -> 1 -> 2 -> 0, and 3 waits behind the cycle.
  auto o = topoSort({{1}, {2}, {0}, {0}}, [](size_t a, size_t b) { return a < b; });
  EXPECT_TRUE(o.order.empty());
  ASSERT_EQ(o.cycle.size(), 4u);
  EXPECT_EQ(o.cycle.front(), o.cycle.back());
  std::vector<size_t> members(o.cycle.begin(), o.cycle.end() - 1);
  std::sort(members.begin(), members.end());
  EXPECT_EQ(members, (std::vector<size_t>{0, 1, 2}));
}

TEST(PlanOrder, ReferencesBeatKindRankAndNames) {
  // "a-vlan" sorts before "z-bond" by name and both are Ports; it refers to z-bond (its lower device), so it
  // comes after it. The Switch both sit on comes first.
  std::vector<ResourceChange> changes{create("h/Port/a-vlan", {{"type", "vlan"}, {"link", "z-bond"}}),
                                      create("h/Port/z-bond", {{"type", "tap"}, {"switch", "sw"}}),
                                      create("h/Switch/sw", Json::object())};
  ASSERT_TRUE(orderChanges(changes).ok());
  EXPECT_EQ(order(changes), (std::vector<std::string>{"h/Switch/sw", "h/Port/z-bond", "h/Port/a-vlan"}));
}

TEST(PlanOrder, CloudReferences) {
  std::vector<ResourceChange> changes{
      create("c/SecurityGroup/a-web", {{"vpc", "v"}, {"rules", {{{"direction", "ingress"}, {"group", "b-lb"}}}}}),
      create("c/SecurityGroup/b-lb", {{"vpc", "v"}}),
      create("c/Subnet/s1", {{"vpc", "v"}}),
      create("c/Vpc/v", Json::object()),
      create("c/Route/r", {{"vpc", "v"}})};
  ASSERT_TRUE(orderChanges(changes).ok());
  auto o = order(changes);
  EXPECT_EQ(o.front(), "c/Vpc/v");
  EXPECT_LT(pos(o, "c/SecurityGroup/b-lb"), pos(o, "c/SecurityGroup/a-web"));
}

TEST(PlanOrder, TargetsStayApartAndInNameOrder) {
  std::vector<ResourceChange> changes{create("t2/Switch/a", Json::object()), create("t1/Port/p", {{"switch", "b"}}),
                                      create("t1/Switch/b", Json::object())};
  ASSERT_TRUE(orderChanges(changes).ok());
  EXPECT_EQ(order(changes), (std::vector<std::string>{"t1/Switch/b", "t1/Port/p", "t2/Switch/a"}));
}

TEST(PlanOrder, DeletesRunDependentsFirst) {
  // Deleting a port group, its switch and a port on it: the port goes first, the switch last.
  Plan plan;
  plan.changes = {remove("h/Switch/sw", Json::object()), remove("h/PortGroup/pg", {{"switch", "sw"}}),
                  remove("h/Port/p", {{"portGroup", "pg"}})};
  ASSERT_TRUE(orderChanges(plan.changes).ok());
  std::vector<std::string> deletes;
  for (const auto& s : plan.steps()) deletes.push_back(s.addr.str());
  EXPECT_EQ(deletes, (std::vector<std::string>{"h/Port/p", "h/PortGroup/pg", "h/Switch/sw"}));
}

TEST(PlanOrder, CycleIsAnErrorNamingTheResources) {
  std::vector<ResourceChange> changes{create("h/Port/a", {{"type", "vlan"}, {"link", "b"}}),
                                      create("h/Port/b", {{"type", "vlan"}, {"link", "a"}})};
  Status st = orderChanges(changes);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("reference cycle"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("h/Port/a"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("h/Port/b"), std::string::npos) << st.error().message;
  EXPECT_EQ(changes.size(), 2u);  // still a usable order
}

TEST(PlanOrder, CycleInManifestsIsAValidateError) {
  Diagnostics d;
  build(R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: h}
spec: {provider: linux}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: a}
spec: {targets: [h], type: vlan, link: b, vlanId: 10}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: b}
spec: {targets: [h], type: vlan, link: a, vlanId: 20}
)",
        d);
  ASSERT_TRUE(d.hasErrors());
  bool found = false;
  for (const auto& item : d.items())
    if (item.code == "reference-cycle") {
      found = true;
      EXPECT_NE(item.message.find("h/Port/a"), std::string::npos) << item.message;
      EXPECT_NE(item.message.find("h/Port/b"), std::string::npos) << item.message;
      EXPECT_EQ(item.loc.file, "m.yaml");
      EXPECT_GT(item.loc.line, 0);
    }
  EXPECT_TRUE(found);
}
