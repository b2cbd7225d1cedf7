// Where messages point: at the field's value (not at metadata:), an inherited value at the resource that declares
// it (once), and checks that used to surface only at apply (a Target name the state store cannot record).
#include <gtest/gtest.h>

#include "cli/providers.h"
#include "reconciler/lint.h"
#include "reconciler/pipeline.h"

namespace vnetplan {
namespace {

std::vector<Diagnostic> withCode(const Diagnostics& d, const std::string& code) {
  std::vector<Diagnostic> out;
  for (const auto& item : d.items())
    if (item.code == code) out.push_back(item);
  return out;
}

// 1-based line of the first line containing `needle`.
int lineOf(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
}

const char* kOvs = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: ovs1}
spec: {provider: ovs, db: "unix:/nonexistent/db.sock"}
---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br0}
spec: {targets: [ovs1], mtu: 1500}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata:
  name: web
spec:
  targets: [ovs1]
  switch: br0
  security:
    allowMacChanges: false
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vm1}
spec: {targets: [ovs1], portGroup: web, type: internal}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vm2}
spec: {targets: [ovs1], portGroup: web, type: internal}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata:
  name: vm3
spec:
  targets: [ovs1]
  switch: br0
  type: internal
  mtu: 9000
)";

TEST(DiagLocation, AnInheritedValueTheProviderRejectsIsReportedOnceWhereItIsDeclared) {
  Diagnostics d;
  (void)loadDesiredText(kOvs, "m.yaml", builtinProviders(), d);
  auto errs = withCode(d, "provider/unsupported");
  ASSERT_EQ(errs.size(), 1u) << d.render();  // not once more for each of vm1 and vm2
  EXPECT_EQ(errs[0].loc.line, lineOf(kOvs, "allowMacChanges: false"));
  EXPECT_EQ(errs[0].loc.col, 22);  // the value
  EXPECT_NE(errs[0].message.find("ovs1/PortGroup/web"), std::string::npos) << errs[0].message;
  EXPECT_EQ(errs[0].message.find("vm1"), std::string::npos) << errs[0].message;
}

TEST(DiagLocation, LintPointsAtTheOffendingField) {
  Diagnostics d;
  (void)loadDesiredText(kOvs, "m.yaml", builtinProviders(), d);
  auto errs = withCode(d, "lint/port-mtu");
  ASSERT_EQ(errs.size(), 1u) << d.render();
  EXPECT_EQ(errs[0].loc.line, lineOf(kOvs, "mtu: 9000"));
}

TEST(DiagLocation, DuplicateFindingsAreKeptOnce) {
  Diagnostics d;
  d.error(SourceLoc{"a.yaml", 3, 5}, "x", "c");
  d.error(SourceLoc{"a.yaml", 3, 5}, "x", "c");
  d.error(SourceLoc{"a.yaml", 4, 5}, "x", "c");
  d.warning(SourceLoc{"a.yaml", 3, 5}, "x", "c");
  Diagnostics other;
  other.error(SourceLoc{"a.yaml", 3, 5}, "x", "c");
  d.append(other);
  EXPECT_EQ(d.errorCount(), 2u);
  EXPECT_EQ(d.warningCount(), 1u);
}

Resource network(Json spec) {
  Resource r;
  r.addr = Address{"h", Kind::Network, "n"};
  r.attrs = Attrs::fromJson(spec);
  r.fieldLocs["ipv4.dhcp.start"] = SourceLoc{"m.yaml", 7, 3};
  r.fieldLocs["ipv4.dhcp.end"] = SourceLoc{"m.yaml", 8, 3};
  return r;
}

TEST(DiagLocation, AReversedOrOutsideDhcpRangeIsAnError) {
  DesiredState s;
  s.targets.push_back(Target{"h", "linux", {}, {}, {}});
  s.resources.push_back(network(Json{{"mode", "nat"},
                                     {"ipv4", {{"address", "10.0.0.1/24"},
                                               {"dhcp", {{"start", "10.0.0.200"}, {"end", "10.0.0.100"}}}}}}));
  Diagnostics d;
  lint(s, d);
  auto errs = withCode(d, "lint/dhcp-range");
  ASSERT_EQ(errs.size(), 1u) << d.render();
  EXPECT_EQ(errs[0].loc.line, 7);
  EXPECT_NE(errs[0].message.find("start 10.0.0.200 is after its end 10.0.0.100"), std::string::npos);

  s.resources[0] = network(Json{{"mode", "nat"},
                                {"ipv4", {{"address", "10.0.0.1/24"},
                                          {"dhcp", {{"start", "10.0.0.2"}, {"end", "10.0.1.9"}}}}}});
  Diagnostics d2;
  lint(s, d2);
  errs = withCode(d2, "lint/dhcp-range");
  ASSERT_EQ(errs.size(), 1u) << d2.render();
  EXPECT_EQ(errs[0].loc.line, 8);
  EXPECT_NE(errs[0].message.find("10.0.1.9 is outside the network 10.0.0.0/24"), std::string::npos);

  s.resources[0] = network(Json{{"mode", "nat"},
                                {"ipv4", {{"address", "10.0.0.1/24"},
                                          {"dhcp", {{"start", "10.0.0.2"}, {"end", "10.0.0.254"}}}}}});
  Diagnostics d3;
  lint(s, d3);
  EXPECT_TRUE(withCode(d3, "lint/dhcp-range").empty()) << d3.render();
}

TEST(DiagLocation, ATargetNameTheStateStoreCannotRecordFailsValidation) {
  std::string longName;
  for (int i = 0; i < 150; ++i) longName += "\xc3\xa9";  // 150 characters, within the schema's 253
  std::string yaml = "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: \"" + longName +
                     "\"}\nspec: {provider: linux, netns: x}\n";
  Diagnostics d;
  (void)loadDesiredText(yaml, "m.yaml", builtinProviders(), d);
  auto errs = withCode(d, "target-name");
  ASSERT_EQ(errs.size(), 1u) << d.render();
  EXPECT_EQ(errs[0].loc.line, 3);
  EXPECT_NE(errs[0].message.find("900 bytes"), std::string::npos) << errs[0].message;

  Diagnostics ok;
  (void)loadDesiredText("apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: " + std::string(253, 'a') +
                            "}\nspec: {provider: linux, netns: x}\n",
                        "m.yaml", builtinProviders(), ok);
  EXPECT_TRUE(withCode(ok, "target-name").empty()) << ok.render();
}

}  // namespace
}  // namespace vnetplan

namespace vnetplan {
namespace {

TEST(DiagLocation, ANameTheKernelHoldsInEveryNamespaceIsAPlanError) {
  for (const char* name : {"lo", "bonding_masters"}) {
    std::string yaml = std::string("apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: h}\n"
                                   "spec: {provider: linux, netns: x}\n---\napiVersion: vnetplan.io/v1\nkind: Switch\n"
                                   "metadata: {name: br0}\nspec: {targets: [h]}\n---\napiVersion: vnetplan.io/v1\n"
                                   "kind: Port\nmetadata: {name: ") +
                       name + "}\nspec: {targets: [h], switch: br0, type: tap}\n";
    Diagnostics d;
    (void)loadDesiredText(yaml, "m.yaml", builtinProviders(), d);
    auto errs = withCode(d, "provider/name-collision");
    ASSERT_EQ(errs.size(), 1u) << name << "\n" << d.render();
    EXPECT_NE(errs[0].message.find("choose another name"), std::string::npos) << errs[0].message;
  }
}

}  // namespace
}  // namespace vnetplan
