#include <gtest/gtest.h>

#include "reconciler/builder.h"
#include "reconciler/lint.h"
#include "reconciler/manifest.h"
#include "base/netaddr.h"
#include "reconciler/schema_validator.h"

using namespace vnetplan;

namespace {

DesiredState build(const std::string& yaml, Diagnostics& diags) {
  auto docs = loadManifestText(yaml, "m.yaml", diags);
  SchemaValidator v;
  std::vector<Document> ok;
  for (auto& d : docs)
    if (v.validate(d, diags)) ok.push_back(std::move(d));
  return buildDesiredState(ok, diags);
}

const char* kTargets = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: hv01, labels: {role: hypervisor, site: a}}
spec: {provider: esxi, host: hv01.example}
---
apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: hv02, labels: {role: hypervisor, site: b}}
spec: {provider: esxi, host: hv02.example}
---
apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: kvm1, labels: {role: kvm}}
spec: {provider: linux, netns: lab}
)";

const Resource* find(const DesiredState& d, const std::string& addr) {
  for (const auto& r : d.resources)
    if (r.addr.str() == addr) return &r;
  return nullptr;
}

}  // namespace

TEST(Builder, SelectorFansOutOverTargetLabels) {
  Diagnostics diags;
  auto d = build(std::string(kTargets) + R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: vSwitch1}
spec: {selector: {role: hypervisor}, mtu: 9000}
)", diags);
  ASSERT_FALSE(diags.hasErrors()) << diags.render();
  ASSERT_EQ(d.resources.size(), 2u);
  EXPECT_TRUE(find(d, "hv01/Switch/vSwitch1"));
  EXPECT_TRUE(find(d, "hv02/Switch/vSwitch1"));
  EXPECT_FALSE(find(d, "kvm1/Switch/vSwitch1"));
}

// A selector typo must not plan the deletion of what the resource owns: it is an error, with the label meant.
TEST(Builder, SelectorMatchingNothingIsAnErrorWithDidYouMean) {
  Diagnostics diags;
  build(std::string(kTargets) + R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: s}
spec: {selector: {role: hypervsior}}
)", diags);
  EXPECT_TRUE(diags.hasErrors());
  EXPECT_NE(diags.render().find("selector {role: hypervsior} matches no Target (did you mean role: hypervisor?)"),
            std::string::npos)
      << diags.render();
  EXPECT_NE(diags.render().find("m.yaml:"), std::string::npos) << diags.render();
  Diagnostics keys;
  build(std::string(kTargets) + R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: s}
spec: {selector: {rol: kvm}}
)", keys);
  EXPECT_NE(keys.render().find("(did you mean role: kvm?)"), std::string::npos) << keys.render();
}

TEST(Builder, DuplicateAddressNamesBothPlaces) {
  Diagnostics diags;
  build(std::string(kTargets) + R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: s}
spec: {targets: [hv01]}
---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: s}
spec: {selector: {site: a}}
)", diags);
  ASSERT_TRUE(diags.hasErrors());
  EXPECT_NE(diags.render().find("m.yaml:23:12: error: duplicate address hv01/Switch/s (also declared at m.yaml:18:12)"),
            std::string::npos)
      << diags.render();
}

TEST(Builder, UnknownTargetAndReferenceSuggest) {
  Diagnostics diags;
  build(std::string(kTargets) + R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: vSwitch1}
spec: {targets: [hv1]}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: web}
spec: {targets: [hv02], switch: vSwitch1}
)", diags);
  std::string out = diags.render();
  EXPECT_NE(out.find("unknown Target 'hv1' (did you mean 'hv01'?)"), std::string::npos) << out;
  EXPECT_NE(out.find("hv02/PortGroup/web: spec.switch refers to Switch 'vSwitch1', which is not declared for target hv02"),
            std::string::npos)
      << out;
}

TEST(Builder, PoliciesInheritSwitchToPortGroupToPortUnlessOverridden) {
  Diagnostics diags;
  auto d = build(std::string(kTargets) + R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: vs}
spec:
  targets: [hv01]
  security: {allowPromiscuous: false, allowForgedTransmits: false}
  shaping: {averageKbps: 1000}
  uplinks: {nics: [vmnic0, vmnic1], teaming: {policy: failover, active: [vmnic0], standby: [vmnic1]}}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: pg}
spec: {targets: [hv01], switch: vs, vlan: 10, security: {allowForgedTransmits: true}}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vmk1}
spec: {targets: [hv01], portGroup: pg, type: vmkernel, shaping: {averageKbps: 5}}
)", diags);
  ASSERT_FALSE(diags.hasErrors()) << diags.render();
  const Resource* pg = find(d, "hv01/PortGroup/pg");
  ASSERT_TRUE(pg);
  EXPECT_EQ(pg->attrs.getBool("security.allowPromiscuous"), false);
  EXPECT_EQ(pg->origins.at("security.allowPromiscuous").origin, Origin::Inherited);
  EXPECT_EQ(pg->origins.at("security.allowPromiscuous").from, "hv01/Switch/vs");
  EXPECT_EQ(pg->attrs.getBool("security.allowForgedTransmits"), true);
  EXPECT_EQ(pg->origins.at("security.allowForgedTransmits").origin, Origin::Explicit);
  EXPECT_EQ(pg->attrs.getString("teaming.policy"), "failover");  // from uplinks.teaming
  EXPECT_EQ(pg->origins.at("teaming.policy").origin, Origin::Inherited);

  const Resource* port = find(d, "hv01/Port/vmk1");
  ASSERT_TRUE(port);
  // Through the port group, the original source is named.
  EXPECT_EQ(port->origins.at("security.allowPromiscuous").from, "hv01/Switch/vs");
  EXPECT_EQ(port->attrs.getBool("security.allowForgedTransmits"), true);
  EXPECT_EQ(port->origins.at("security.allowForgedTransmits").from, "hv01/PortGroup/pg");
  EXPECT_EQ(port->attrs.getInt("shaping.averageKbps"), 5);
  EXPECT_EQ(port->origins.at("shaping.averageKbps").origin, Origin::Explicit);
  ASSERT_EQ(port->dependsOn.size(), 1u);
  EXPECT_EQ(port->dependsOn[0].str(), "hv01/PortGroup/pg");
}

namespace {
std::string lintOf(const std::string& yaml) {
  Diagnostics diags;
  auto d = build(std::string(kTargets) + yaml, diags);
  lint(d, diags);
  return diags.render();
}
}  // namespace

TEST(Lint, BondModesThatBreakVmBridges) {
  auto out = lintOf(R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br0}
spec: {targets: [kvm1], uplinks: {nics: [eth0, eth1]}, linux: {bond: {mode: balance-alb, arpInterval: 100}}}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: web}
spec: {targets: [kvm1], switch: br0, vlan: 10}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vm1}
spec: {targets: [kvm1], portGroup: web, type: tap}
)");
  EXPECT_NE(out.find("error: kvm1/Switch/br0: bond mode \"balance-alb\""), std::string::npos) << out;
  EXPECT_NE(out.find("warning: kvm1/Switch/br0: ARP monitoring"), std::string::npos) << out;
  // A bridge with no VM ports yet (e.g. a storage bond): a warning, not an error.
  auto empty = lintOf(R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br0}
spec: {targets: [kvm1], uplinks: {nics: [eth0, eth1], teaming: {policy: round-robin}}, linux: {bond: {mode: 0}}}
)");
  EXPECT_EQ(empty.find("error:"), std::string::npos) << empty;
  EXPECT_NE(empty.find("warning: kvm1/Switch/br0: bond mode 0 breaks forwarding once VMs are attached"),
            std::string::npos) << empty;
  EXPECT_NE(empty.find("warning: kvm1/Switch/br0: teaming policy round-robin is bond mode 0 (balance-rr) on Linux"),
            std::string::npos) << empty;
  auto ok = lintOf(R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br0}
spec: {targets: [kvm1], uplinks: {nics: [eth0, eth1]}, linux: {bond: {mode: 802.3ad, miimon: 100}}}
)");
  EXPECT_EQ(ok.find("lint/bond"), std::string::npos) << ok;
}

TEST(Lint, IpHashRulesBeaconAndEsxiLacp) {
  auto out = lintOf(R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: vs}
spec:
  targets: [hv01]
  uplinks: {nics: [vmnic0, vmnic1], teaming: {policy: ip-hash, active: [vmnic0], standby: [vmnic1], failureDetection: beacon}}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: pg}
spec: {targets: [hv02], switch: vs2, teaming: {policy: lacp}}
---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: vs2}
spec: {targets: [hv02]}
)");
  EXPECT_NE(out.find("ip-hash teaming cannot have standby uplinks"), std::string::npos) << out;
  EXPECT_NE(out.find("ip-hash teaming cannot use beacon probing"), std::string::npos) << out;
  EXPECT_NE(out.find("beacon probing with fewer than 3 uplinks"), std::string::npos) << out;
  EXPECT_NE(out.find("hv02/PortGroup/pg: LACP needs a vSphere Distributed Switch"), std::string::npos) << out;
}

TEST(Lint, VlanMtuSubnetsPromiscuousNat) {
  auto out = lintOf(R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br0}
spec: {targets: [kvm1], mtu: 1500, addresses: [10.0.0.1/16]}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: all}
spec: {targets: [kvm1], switch: br0, vlan: 4095, security: {allowPromiscuous: true}}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vm1}
spec: {targets: [kvm1], switch: br0, type: tap, mtu: 9000}
---
apiVersion: vnetplan.io/v1
kind: Network
metadata: {name: nat1}
spec: {targets: [kvm1], mode: nat, ipv4: {address: 10.0.5.1/24}, portForwards: [{proto: tcp, port: 80, to: "192.168.9.9:80"}]}
)");
  EXPECT_NE(out.find("vlan 4095 is out of range for provider linux"), std::string::npos) << out;
  EXPECT_NE(out.find("kvm1/Port/vm1: mtu 9000 is above its switch br0's mtu 1500"), std::string::npos) << out;
  EXPECT_NE(out.find("subnet 10.0.5.1/24 overlaps 10.0.0.1/16"), std::string::npos) << out;
  EXPECT_NE(out.find("warning: kvm1/PortGroup/all: allowPromiscuous: true"), std::string::npos) << out;
  EXPECT_NE(out.find("port forward to 192.168.9.9:80 is outside the network 10.0.5.1/24"), std::string::npos) << out;
}

// DESIGN §8's Network lints on their own: two Networks of one target overlap (not Networks of different targets),
// a forward inside the subnet is fine, and a justification silences allowPromiscuous.
TEST(Lint, NetworkOverlapNatForwardAndJustifiedPromiscuous) {
  auto out = lintOf(R"(---
apiVersion: vnetplan.io/v1
kind: Network
metadata: {name: a}
spec: {targets: [kvm1], mode: nat, ipv4: {address: 192.168.50.1/24}, forwardDev: wan0, portForwards: [{proto: tcp, port: 22, to: "192.168.50.10:22"}, {proto: udp, port: 53, to: 192.168.51.10}]}
---
apiVersion: vnetplan.io/v1
kind: Network
metadata: {name: b}
spec: {targets: [kvm1], mode: isolated, ipv4: {address: 192.168.50.129/25}}
---
apiVersion: vnetplan.io/v1
kind: Network
metadata: {name: c}
spec: {targets: [hv01], mode: isolated, ipv4: {address: 192.168.50.1/24}}
---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: vSwitch0}
spec: {targets: [hv01]}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: ids}
spec: {targets: [hv01], switch: vSwitch0, vlan: 20, security: {allowPromiscuous: true}, justification: "IDS sensor VM"}
)");
  EXPECT_NE(out.find("kvm1/Network/b: subnet 192.168.50.129/25 overlaps 192.168.50.1/24 of kvm1/Network/a"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("hv01/Network/c: subnet"), std::string::npos) << out;
  EXPECT_NE(out.find("port forward to 192.168.51.10 is outside the network 192.168.50.1/24"), std::string::npos) << out;
  EXPECT_EQ(out.find("port forward to 192.168.50.10:22"), std::string::npos) << out;
  EXPECT_EQ(out.find("allowPromiscuous"), std::string::npos) << out;
  EXPECT_EQ(out.find("ids"), std::string::npos) << out;  // no other complaint about it either
}

TEST(Lint, LoadBasedTeamingOnLinuxAndPortMtuThroughAPortGroup) {
  auto out = lintOf(R"(---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br0}
spec: {targets: [kvm1], mtu: 1500, uplinks: {nics: [eth0, eth1], teaming: {policy: load-based}}}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: web}
spec: {targets: [kvm1], switch: br0, vlan: 10}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vm1}
spec: {targets: [kvm1], portGroup: web, type: tap, mtu: 9000}
)");
  EXPECT_NE(out.find("teaming policy load-based is bond mode 5 or 6"), std::string::npos) << out;
  EXPECT_NE(out.find("kvm1/Port/vm1: mtu 9000 is above its switch br0's mtu 1500"), std::string::npos) << out;
}

TEST(Lint, EveryRuleHasIdAndDescription) {
  std::set<std::string> ids;
  for (const auto& r : lintRules()) {
    EXPECT_TRUE(std::string(r.id).rfind("lint/", 0) == 0);
    EXPECT_FALSE(std::string(r.description).empty());
    EXPECT_TRUE(ids.insert(r.id).second) << "duplicate rule id " << r.id;
  }
  EXPECT_GE(ids.size(), 10u);
}

TEST(NetAddr, ParseCanonicalOverlap) {
  auto a = parsePrefix("10.0.0.1/24");
  auto b = parsePrefix("10.0.0.200/25");
  auto c = parsePrefix("2001:DB8:0:0::1/64");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(c->str(), "2001:db8::1/64");
  EXPECT_TRUE(a->overlaps(*b));
  EXPECT_FALSE(a->overlaps(*c));
  EXPECT_FALSE(parsePrefix("10.0.0.1/33"));
  EXPECT_FALSE(parsePrefix("10.0.0.1"));
  EXPECT_FALSE(parsePrefix("10.0.0.1/2a"));
  EXPECT_FALSE(parsePrefix("nonsense/24"));
}

TEST(ClosestMatch, ShortWordsNeedACloseCandidate) {
  const std::vector<std::string> keys{"up", "mtu", "mac", "switch", "addresses"};
  EXPECT_EQ(vnetplan::closestMatch("<<", keys), "");
  EXPECT_EQ(vnetplan::closestMatch("mu", keys), "mtu");
  EXPECT_EQ(vnetplan::closestMatch("swtich", keys), "switch");
  EXPECT_EQ(vnetplan::closestMatch("adresses", keys), "addresses");
  EXPECT_EQ(vnetplan::closestMatch("zzzzzz", keys), "");
}
