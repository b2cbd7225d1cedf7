// Schema validation: every kind's valid form passes; each kind of mistake yields one clear error at file:line:col.

// GCC 12 false positives in libstdc++ code (std::string at -O3, std::regex with sanitizers); see
// reconciler/schema_validator.cpp.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "reconciler/manifest.h"
#include "reconciler/schema_validator.h"

namespace vnetplan {
namespace {

const SchemaValidator& validator() {
  static const SchemaValidator v;
  return v;
}

// Loads `yaml` as test.yaml, validates every document, and returns the rendered diagnostics ("" when valid).
std::string validate(const std::string& yaml) {
  Diagnostics load;
  auto docs = loadManifestText(yaml, "test.yaml", load);
  EXPECT_FALSE(load.hasErrors()) << load.render();
  Diagnostics diags;
  bool ok = true;
  for (const auto& d : docs) ok = validator().validate(d, diags) && ok;
  EXPECT_EQ(ok, !diags.hasErrors()) << diags.render();
  return diags.render();
}

size_t lineCount(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

#define EXPECT_HAS(haystack, needle)                                                                         \
  do {                                                                                                       \
    const std::string h_ = (haystack);                                                                       \
    EXPECT_NE(h_.find(needle), std::string::npos) << "expected to find:\n  " << (needle) << "\nin:\n" << h_; \
  } while (0)

// One error, exactly this line.
#define EXPECT_ONE_ERROR(yaml, expected)           \
  do {                                             \
    const std::string out_ = validate(yaml);       \
    EXPECT_EQ(out_, std::string(expected) + "\n"); \
  } while (0)

const char* kHeader = "apiVersion: vnetplan.io/v1\n";

std::string doc(const std::string& kind, const std::string& spec, const std::string& name = "x") {
  return std::string(kHeader) + "kind: " + kind + "\nmetadata:\n  name: " + name + "\nspec:\n" + spec;
}

// --------------------------------------------------------------------------------------------- valid documents

TEST(SchemaValid, EveryKind) {
  const std::string all = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata:
  name: hv01
  labels: {role: hypervisor, rack: "12"}
  annotations: {owner: netops}
spec:
  provider: linux
  netns: blue
  createNetns: true
---
apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: ovs01}
spec: {provider: ovs, db: "unix:/var/run/openvswitch/db.sock"}
---
apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: ovs02}
spec: {provider: ovs, db: "tcp:192.0.2.5:6640"}
---
apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: esx01}
spec:
  provider: esxi
  host: esx01.example.net
  port: 22
  user: root
  identityFile: ~/.ssh/id_ed25519
  knownHostsFile: ~/.ssh/known_hosts
---
apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: cloud}
spec: {provider: vpc, cloud: devstack}
---
apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: neutron}
spec: {provider: vpc, endpoint: "http://127.0.0.1:9696", auth: noauth, project: demo}
---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br-prod, labels: {tier: prod}}
spec:
  selector: {role: hypervisor}
  mtu: 9000
  stp: true
  up: true
  addresses: [192.0.2.1/24, "2001:db8::1/64"]
  uplinks:
    nics: [eth1, eth2, eth3]
    teaming:
      policy: lacp
      active: [eth1, eth2]
      standby: [eth3]
      failureDetection: link
      notifySwitches: true
      failback: false
      lacp: {mode: active, rate: fast}
      hashPolicy: layer3+4
  security: {allowPromiscuous: false, allowMacChanges: false, allowForgedTransmits: false}
  shaping: {averageKbps: 100000, peakKbps: 200000, burstKiB: 1024}
  nioc:
    enabled: true
    uplinkMbps: 10000
    classes:
      virtualmachine: {shares: high, reservationMbps: 1000}
      vmotion: {shares: 50, limitMbps: 4000}
      management: {shares: low}
      iscsi: {shares: normal}
      nfs: {shares: 100}
      vsan: {shares: 1}
      faulttolerance: {shares: high}
      hbr: {shares: low}
      vdp: {shares: low}
      backupnfc: {shares: low}
  linux:
    bridge: {forwardDelay: 15, ageingTime: 300, helloTime: 2, maxAge: 20, priority: 32768, vlanFiltering: true}
    bond: {mode: 802.3ad, miimon: 100, arpInterval: 0, arpIpTarget: [192.0.2.254], updelay: 200, downdelay: 200,
           xmitHashPolicy: layer3+4, lacpRate: fast}
  ovs:
    datapathType: netdev
    failMode: secure
    otherConfig: {hwaddr: "52:54:00:00:00:aa"}
    externalIds: {team: net}
    rstp: false
    netflow: {targets: ["192.0.2.10:2055"], activeTimeout: 60}
    sflow: {targets: ["collector.example.net:6343"], sampling: 64, polling: 10}
  esxi:
    numPorts: 128
    cdpStatus: both
    beacon: {interval: 1, threshold: 3}
  adopt: true
  justification: existing bridge taken over
---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br-mode}
spec:
  targets: [hv01]
  linux: {bond: {mode: 1}}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: web}
spec:
  targets: [hv01, esx01]
  switch: br-prod
  vlan: 100
  security: {allowPromiscuous: true}
  justification: IDS sensor needs to see all traffic
  shaping: {averageKbps: 1000}
  teaming: {policy: src-port, active: [eth1], standby: [eth2], failureDetection: beacon}
  niocClass: virtualmachine
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: trunk}
spec:
  targets: [esx01]
  switch: br-prod
  vlan: {trunk: [10, 20, "100-199", "4000-4094"]}
---
apiVersion: vnetplan.io/v1
kind: PortGroup
metadata: {name: all}
spec: {targets: [esx01], switch: vSwitch0, vlan: 4095}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vm1-eth0}
spec:
  targets: [hv01]
  switch: br-prod
  type: tap
  mtu: 9000
  mac: "52:54:00:12:34:56"
  addresses: [10.0.0.5/24]
  up: true
  security: {allowMacChanges: true}
  shaping: {averageKbps: 5000, peakKbps: 10000, burstKiB: 64}
  niocClass: virtualmachine
  linux: {txQueueLen: 1000, owner: qemu, group: 107, multiQueue: true, vnetHdr: true}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: v0}
spec: {targets: [hv01], portGroup: web, type: veth, peer: v0-peer, peerNetns: vm1}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: mv0}
spec: {targets: [hv01], type: macvtap, link: eth0, mode: passthru}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vx100}
spec:
  targets: [hv01]
  switch: br-prod
  type: vxlan
  vni: 100
  remote: 192.0.2.20
  local: 192.0.2.10
  dstPort: 4789
  link: eth1
  linux: {learning: false, ttl: 64}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: eth1.42}
spec: {targets: [hv01], type: vlan, link: eth1, vlanId: 42, addresses: ["2001:db8:42::1/64"]}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: int0}
spec: {targets: [ovs01], switch: br-int, type: internal, ovs: {externalIds: {iface-id: abc}, ofport: 10}}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: patch-a}
spec: {targets: [ovs01], switch: br-int, type: patch, peer: patch-b}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: gre0}
spec: {targets: [ovs01], switch: br-int, type: gre, remote: 192.0.2.30}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: gnv0}
spec: {targets: [ovs01], portGroup: overlay, type: geneve, vni: 5000, remote: "2001:db8::30"}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vmk1}
spec:
  targets: [esx01]
  portGroup: vmotion
  type: vmkernel
  mtu: 9000
  addresses: [10.10.0.11/24]
  esxi: {netstack: vmotion, tags: [VMotion]}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vm2}
spec: {selector: {role: hypervisor}, network: default}
---
apiVersion: vnetplan.io/v1
kind: Network
metadata: {name: default}
spec:
  selector: {role: hypervisor}
  mode: nat
  bridge: virbr1
  ipv4:
    address: 192.168.100.1/24
    dhcp: {start: 192.168.100.10, end: 192.168.100.200}
  forwardDev: eth0
  portForwards:
    - {proto: tcp, port: 2222, to: "192.168.100.10:22"}
    - {proto: udp, port: 53, to: 192.168.100.11}
---
apiVersion: vnetplan.io/v1
kind: Network
metadata: {name: lan}
spec: {targets: [hv01], mode: bridged, bridge: br-prod}
---
apiVersion: vnetplan.io/v1
kind: Network
metadata: {name: lab}
spec: {targets: [hv01], mode: isolated, ipv4: {address: 10.99.0.1/24, dhcp: {start: 10.99.0.100, end: 10.99.0.150}}}
---
apiVersion: vnetplan.io/v1
kind: Network
metadata: {name: backplane}
spec: {targets: [hv01], mode: internal}
---
apiVersion: vnetplan.io/v1
kind: Network
metadata: {name: routed}
spec: {targets: [hv01], mode: routed, ipv4: {address: 198.51.100.1/25}, forwardDev: eth0}
---
apiVersion: vnetplan.io/v1
kind: Network
metadata: {name: open}
spec: {targets: [hv01], mode: open, ipv4: {address: 10.98.0.1/24}}
---
apiVersion: vnetplan.io/v1
kind: Vpc
metadata: {name: prod}
spec:
  targets: [neutron]
  internetGateway: {externalNetwork: public}
  natGateway: true
---
apiVersion: vnetplan.io/v1
kind: Subnet
metadata: {name: web}
spec: {targets: [neutron], vpc: prod, cidr: 10.0.1.0/24, gateway: 10.0.1.1, dhcp: true, vlan: 101, public: true}
---
apiVersion: vnetplan.io/v1
kind: SecurityGroup
metadata: {name: web}
spec:
  targets: [neutron]
  vpc: prod
  rules:
    - {direction: ingress, protocol: tcp, ports: 443, cidr: 0.0.0.0/0, description: https}
    - {direction: ingress, protocol: tcp, ports: "8000-8100", group: lb}
    - {direction: ingress, protocol: icmp}
    - {direction: egress, protocol: any, cidr: "::/0"}
    - {direction: ingress, protocol: 6, ports: 22}
    - {direction: egress, protocol: 47}
---
apiVersion: vnetplan.io/v1
kind: Route
metadata: {name: to-dc}
spec: {targets: [neutron], vpc: prod, destination: 10.20.0.0/16, nexthop: 10.0.1.254}
---
apiVersion: vnetplan.io/v1
kind: Mirror
metadata: {name: span}
spec:
  targets: [hv01]
  switch: br-prod
  source: {ports: [vm1-eth0, v0], direction: both}
  destination: {port: ids0}
)";
  EXPECT_EQ(validate(all), "");
}

TEST(SchemaValid, NamesMayContainUnicodeAndSpaces) {
  EXPECT_EQ(validate(doc("PortGroup", "  targets: [esx01]\n  switch: vSwitch0\n", "\"Management Network é\"")), "");
}

// maxLength counts characters (JSON Schema), not bytes: 200 two-byte characters fit in 253; 254 ASCII ones do not.
TEST(SchemaValues, MaxLengthCountsCharactersNotBytes) {
  std::string name;
  for (int i = 0; i < 200; ++i) name += "\xc3\xa9";  // é
  EXPECT_EQ(validate(doc("PortGroup", "  targets: [esx01]\n  switch: vSwitch0\n", "\"" + name + "\"")), "");
  EXPECT_HAS(validate(doc("PortGroup", "  targets: [esx01]\n  switch: vSwitch0\n", std::string(254, 'a'))),
             "must be at most 253 characters long (got 254)");
}

TEST(SchemaText, IsTheEmbeddedDraft7Schema) {
  const std::string& text = SchemaValidator::schemaText();
  auto j = Json::parse(text);
  EXPECT_EQ(j["$schema"], "http://json-schema.org/draft-07/schema#");
  for (const char* kind :
       {"Target", "Switch", "PortGroup", "Port", "Network", "Vpc", "Subnet", "SecurityGroup", "Route", "Mirror"}) {
    EXPECT_TRUE(j["definitions"].contains(kind)) << kind;
    EXPECT_EQ(j["definitions"][kind]["properties"]["kind"]["const"], kind);
  }
  // The top level selects the kind's definition for editors.
  EXPECT_EQ(j["allOf"].size(), 10u);
}

// What editors do: validate against the top-level schema, whose `kind` selects the definition.
TEST(SchemaText, TopLevelSchemaSelectsTheKind) {
  const Json root = Json::parse(SchemaValidator::schemaText());
  valijson::Schema schema;
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  valijson::adapters::NlohmannJsonAdapter schemaAdapter(root);
  parser.populateSchema(schemaAdapter, schema);
  auto valid = [&](const std::string& yaml) {
    Diagnostics diags;
    auto docs = loadManifestText(yaml, "test.yaml", diags);
    EXPECT_EQ(docs.size(), 1u);
    valijson::Validator v;
    valijson::adapters::NlohmannJsonAdapter target(docs.at(0).body);
    return v.validate(schema, target, nullptr);
  };
  EXPECT_TRUE(valid(doc("Switch", "  targets: [a]\n  mtu: 9000\n")));
  EXPECT_FALSE(valid(doc("Switch", "  targets: [a]\n  mtu: 70000\n")));
  EXPECT_FALSE(valid(doc("Switch", "  targets: [a]\n  vlan: 10\n")));  // vlan is a PortGroup field
  EXPECT_TRUE(valid(doc("PortGroup", "  targets: [a]\n  switch: s\n  vlan: 10\n")));
  EXPECT_TRUE(valid(doc("Target", "  provider: ovs\n  db: unix:/run/db.sock\n")));
  EXPECT_FALSE(valid(doc("Target", "  provider: linux\n  db: unix:/run/db.sock\n")));
  EXPECT_FALSE(valid(doc("Gadget", "  targets: [a]\n")));
}

// ------------------------------------------------------------------------------------------ envelope errors

TEST(SchemaEnvelope, UnknownKindSuggestsClosest) {
  EXPECT_ONE_ERROR(doc("Swich", "  targets: [a]\n"),
                   "test.yaml:2:7: error: unknown kind 'Swich' (did you mean 'Switch'?) [unknown-kind]");
  EXPECT_ONE_ERROR(doc("portgroup", "  targets: [a]\n"),
                   "test.yaml:2:7: error: unknown kind 'portgroup' (did you mean 'PortGroup'?) [unknown-kind]");
  EXPECT_HAS(validate(doc("Frobnicator", "  targets: [a]\n")), "unknown kind 'Frobnicator' (expected one of Target");
}

TEST(SchemaEnvelope, ApiVersion) {
  EXPECT_ONE_ERROR(
      "apiVersion: v1\nkind: Route\nmetadata: {name: r}\nspec: {targets: [a], vpc: v, destination: "
      "10.0.0.0/8, nexthop: 10.0.0.1}\n",
      "test.yaml:1:13: error: apiVersion: must be 'vnetplan.io/v1' (got 'v1') [api-version]");
  EXPECT_ONE_ERROR(
      "kind: Route\nmetadata: {name: r}\nspec: {targets: [a], vpc: v, destination: 10.0.0.0/8, "
      "nexthop: 10.0.0.1}\n",
      "test.yaml:1:1: error: missing required field 'apiVersion' (apiVersion: vnetplan.io/v1) "
      "[api-version]");
}

TEST(SchemaEnvelope, MissingKindMetadataSpecAndName) {
  EXPECT_HAS(validate("apiVersion: vnetplan.io/v1\nmetadata: {name: a}\n"),
             "test.yaml:1:1: error: missing required field 'kind' (one of Target, Switch");
  EXPECT_ONE_ERROR("apiVersion: vnetplan.io/v1\nkind: Vpc\nmetadata: {name: a}\n",
                   "test.yaml:1:1: error: missing required field 'spec' [schema]");
  EXPECT_ONE_ERROR("apiVersion: vnetplan.io/v1\nkind: Vpc\nmetadata:\n  labels: {a: b}\nspec: {targets: [t]}\n",
                   "test.yaml:3:1: error: metadata: missing required field 'name' [schema]");
}

TEST(SchemaEnvelope, BadNames) {
  EXPECT_ONE_ERROR(doc("Vpc", "  targets: [t]\n", "a/b"),
                   "test.yaml:4:9: error: metadata.name: must be a name without '/', newlines or other control "
                   "characters (got 'a/b') [schema]");
  EXPECT_ONE_ERROR(doc("Vpc", "  targets: [t]\n", "\"a\\nb\""),
                   "test.yaml:4:9: error: metadata.name: must be a name without '/', newlines or other control "
                   "characters (got 'a\\nb') [schema]");
  EXPECT_ONE_ERROR(doc("Vpc", "  targets: [t]\n", "\"\""),
                   "test.yaml:4:9: error: metadata.name: must not be empty [schema]");
  EXPECT_ONE_ERROR(doc("Vpc", "  targets: [t]\n", std::string(254, 'a')),
                   "test.yaml:4:9: error: metadata.name: must be at most 253 characters long (got 254) [schema]");
  EXPECT_ONE_ERROR(doc("Vpc", "  targets: [t]\n", "123"),
                   "test.yaml:4:9: error: metadata.name: must be a string (got integer 123) [schema]");
}

TEST(SchemaEnvelope, LabelsAreStrings) {
  EXPECT_ONE_ERROR(
      "apiVersion: vnetplan.io/v1\nkind: Vpc\nmetadata:\n  name: a\n  labels: {rack: 12}\n"
      "spec: {targets: [t]}\n",
      "test.yaml:5:18: error: metadata.labels.rack: must be a string (got integer 12) [schema]");
}

// ---------------------------------------------------------------------------------------- placement

TEST(SchemaPlacement, TargetsXorSelector) {
  EXPECT_ONE_ERROR(doc("Switch", "  mtu: 1500\n"),
                   "test.yaml:5:1: error: spec: one of 'targets' or 'selector' is required [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [hv01]\n  selector: {role: hv}\n"),
                   "test.yaml:7:3: error: spec: give only one of 'targets' or 'selector', not both [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  selector: {}\n"),
                   "test.yaml:6:13: error: spec.selector: must not be empty [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: []\n"),
                   "test.yaml:6:12: error: spec.targets: must list at least one item [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a, b, a]\n"),
                   "test.yaml:6:19: error: spec.targets: 'a' is listed twice (items 0 and 2) [schema]");
  // Targets have no placement.
  EXPECT_HAS(validate(doc("Target", "  provider: linux\n  targets: [a]\n")),
             "test.yaml:7:3: error: unknown field 'targets' in spec");
}

// ---------------------------------------------------------------------------------- types and ranges

TEST(SchemaValues, WrongTypes) {
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  mtu: \"1500\"\n"),
                   "test.yaml:7:8: error: spec.mtu: must be an integer (got string '1500') [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  mtu: 1500.5\n"),
                   "test.yaml:7:8: error: spec.mtu: must be an integer (got number 1500.5) [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  stp: yes\n"),
                   "test.yaml:7:8: error: spec.stp: must be true or false (got string 'yes') [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: hv01\n"),
                   "test.yaml:6:12: error: spec.targets: must be a list (got string 'hv01') [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  uplinks: [eth0]\n"),
                   "test.yaml:7:12: error: spec.uplinks: must be a mapping (got a list) [schema]");
  EXPECT_ONE_ERROR("apiVersion: vnetplan.io/v1\nkind: Vpc\nmetadata: {name: a}\nspec: [1]\n",
                   "test.yaml:4:7: error: spec: must be a mapping (got a list) [schema]");
}

TEST(SchemaValues, OutOfRange) {
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  mtu: 70000\n"),
                   "test.yaml:7:8: error: spec.mtu: must be between 68 and 65535 (got 70000) [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  mtu: 20\n"),
                   "test.yaml:7:8: error: spec.mtu: must be between 68 and 65535 (got 20) [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  linux:\n    bridge: {forwardDelay: 1}\n"),
                   "test.yaml:8:28: error: spec.linux.bridge.forwardDelay: must be between 2 and 30 (got 1) [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  shaping: {averageKbps: 0}\n"),
                   "test.yaml:7:26: error: spec.shaping.averageKbps: must be at least 1 (got 0) [schema]");
  EXPECT_ONE_ERROR(doc("Port", "  targets: [a]\n  type: vxlan\n  vni: 16777216\n"),
                   "test.yaml:8:8: error: spec.vni: must be between 0 and 16777215 (got 16777216) [schema]");
}

TEST(SchemaValues, EnumsSuggest) {
  EXPECT_ONE_ERROR(doc("PortGroup", "  targets: [a]\n  switch: s\n  teaming: {policy: src-prot}\n"),
                   "test.yaml:8:21: error: spec.teaming.policy: must be one of failover, src-port, src-mac, ip-hash, "
                   "lacp, load-based, round-robin (got 'src-prot'); did you mean 'src-port'? [schema]");
  EXPECT_ONE_ERROR(doc("Port", "  targets: [a]\n  type: tapp\n"),
                   "test.yaml:7:9: error: spec.type: must be one of tap, veth, macvtap, vxlan, vlan, internal, system, patch, "
                   "gre, geneve, vmkernel, vf, nic, pci (got 'tapp'); did you mean 'tap'? [schema]");
}

TEST(SchemaValues, AlternativesReportTheIntendedForm) {
  // shares: low|normal|high or 1..100 — a number is judged as a number, a word as a word.
  const std::string nioc = "  targets: [a]\n  nioc:\n    classes:\n      vmotion: {shares: ";
  EXPECT_ONE_ERROR(doc("Switch", nioc + "150}\n"),
                   "test.yaml:9:25: error: spec.nioc.classes.vmotion.shares: must be between 1 and 100 (got 150) "
                   "[schema]");
  EXPECT_ONE_ERROR(doc("Switch", nioc + "hihg}\n"),
                   "test.yaml:9:25: error: spec.nioc.classes.vmotion.shares: must be one of low, normal, high (got "
                   "'hihg'); did you mean 'high'? [schema]");
  EXPECT_ONE_ERROR(doc("Switch", nioc + "true}\n"),
                   "test.yaml:9:25: error: spec.nioc.classes.vmotion.shares: must be a string or an integer (got "
                   "boolean true) [schema]");
  // bond mode: 0-6 or a name.
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  linux: {bond: {mode: 7}}\n"),
                   "test.yaml:7:24: error: spec.linux.bond.mode: must be between 0 and 6 (got 7) [schema]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  linux: {bond: {mode: active-backpu}}\n"),
                   "test.yaml:7:24: error: spec.linux.bond.mode: must be one of balance-rr, active-backup, "
                   "balance-xor, broadcast, 802.3ad, balance-tlb, balance-alb (got 'active-backpu'); did you mean "
                   "'active-backup'? [schema]");
}

TEST(SchemaValues, Vlan) {
  const std::string pg = "  targets: [a]\n  switch: s\n";
  EXPECT_ONE_ERROR(doc("PortGroup", pg + "  vlan: 5000\n"),
                   "test.yaml:8:9: error: spec.vlan: must be between 0 and 4095 (got 5000) [schema]");
  EXPECT_ONE_ERROR(doc("PortGroup", pg + "  vlan: \"100\"\n"),
                   "test.yaml:8:9: error: spec.vlan: must be an integer or a mapping (got string '100') [schema]");
  EXPECT_ONE_ERROR(doc("PortGroup", pg + "  vlan: {trunk: [10, \"100-x\"]}\n"),
                   "test.yaml:8:22: error: spec.vlan.trunk[1]: must be a VLAN id or an inclusive range "
                   "\"FIRST-LAST\" of ids 0-4094, like \"100-199\" (got '100-x') [schema]");
  EXPECT_ONE_ERROR(doc("PortGroup", pg + "  vlan: {trunk: [\"100-5000\"]}\n"),
                   "test.yaml:8:18: error: spec.vlan.trunk[0]: must be a VLAN id or an inclusive range "
                   "\"FIRST-LAST\" of ids 0-4094, like \"100-199\" (got '100-5000') [schema]");
  EXPECT_ONE_ERROR(doc("PortGroup", pg + "  vlan: {trunk: [\"200-100\"]}\n"),
                   "test.yaml:8:18: error: spec.vlan.trunk[0]: range '200-100' is reversed; write it as '100-200' "
                   "[schema]");
  EXPECT_ONE_ERROR(doc("PortGroup", pg + "  vlan: {trunk: [4095]}\n"),
                   "test.yaml:8:18: error: spec.vlan.trunk[0]: must be between 0 and 4094 (got 4095) [schema]");
  EXPECT_ONE_ERROR(doc("PortGroup", pg + "  vlan: {trunk: []}\n"),
                   "test.yaml:8:17: error: spec.vlan.trunk: must list at least one item [schema]");
  EXPECT_ONE_ERROR(doc("PortGroup", pg + "  vlan: {}\n"),
                   "test.yaml:8:3: error: spec.vlan: missing required field 'trunk' [schema]");
  EXPECT_ONE_ERROR(doc("PortGroup", pg + "  vlan: {trunks: [1]}\n"),
                   "test.yaml:8:10: error: unknown field 'trunks' in spec.vlan (did you mean 'trunk'?) "
                   "[unknown-field]");
}

TEST(SchemaValues, MacAndAddresses) {
  const std::string port = "  targets: [a]\n  switch: s\n";
  EXPECT_ONE_ERROR(doc("Port", port + "  mac: \"52:54:00:12:34\"\n"),
                   "test.yaml:8:8: error: spec.mac: must be a MAC address xx:xx:xx:xx:xx:xx, like 52:54:00:12:34:56 "
                   "(quote it in YAML) (got '52:54:00:12:34') [schema]");
  EXPECT_ONE_ERROR(doc("Port", port + "  mac: \"52-54-00-12-34-56\"\n"),
                   "test.yaml:8:8: error: spec.mac: must be a MAC address xx:xx:xx:xx:xx:xx, like 52:54:00:12:34:56 "
                   "(quote it in YAML) (got '52-54-00-12-34-56') [schema]");
  EXPECT_ONE_ERROR(doc("Port", port + "  addresses: [10.0.0.1/24, 10.0.0.300/24]\n"),
                   "test.yaml:8:28: error: spec.addresses[1]: must be an IPv4 or IPv6 address with a prefix length, "
                   "like 192.0.2.1/24 or 2001:db8::1/64 (got '10.0.0.300/24') [schema]");
  EXPECT_ONE_ERROR(doc("Port", port + "  addresses: [\"2001:db8::1::2/64\"]\n"),
                   "test.yaml:8:15: error: spec.addresses[0]: must be an IPv4 or IPv6 address with a prefix length, "
                   "like 192.0.2.1/24 or 2001:db8::1/64 (got '2001:db8::1::2/64') [schema]");
  EXPECT_ONE_ERROR(doc("Port", port + "  addresses: [10.0.0.1]\n"),
                   "test.yaml:8:15: error: spec.addresses[0]: must be an IPv4 or IPv6 address with a prefix length, "
                   "like 192.0.2.1/24 or 2001:db8::1/64 (got '10.0.0.1') [schema]");
}

// ------------------------------------------------------------------------------------------ unknown fields

TEST(SchemaUnknownFields, SuggestNearestName) {
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  mut: 9000\n"),
                   "test.yaml:7:3: error: unknown field 'mut' in spec (did you mean 'mtu'?) [unknown-field]");
  EXPECT_ONE_ERROR(doc("Switch", "  targets: [a]\n  linux:\n    bridge:\n      forwardDelai: 4\n"),
                   "test.yaml:9:7: error: unknown field 'forwardDelai' in spec.linux.bridge (did you mean "
                   "'forwardDelay'?) [unknown-field]");
  EXPECT_ONE_ERROR("apiVersion: vnetplan.io/v1\nkind: Vpc\nmetadata: {name: a, lables: {}}\nspec: {targets: [t]}\n",
                   "test.yaml:3:21: error: unknown field 'lables' in metadata (did you mean 'labels'?) "
                   "[unknown-field]");
  EXPECT_ONE_ERROR("apiVersion: vnetplan.io/v1\nkind: Vpc\nmetadata: {name: a}\nspec: {targets: [t]}\nstatus: {}\n",
                   "test.yaml:5:1: error: unknown field 'status' at the top level (valid fields: apiVersion, kind, "
                   "metadata, spec) [unknown-field]");
  EXPECT_ONE_ERROR(
      doc("SecurityGroup", "  targets: [t]\n  vpc: v\n  rules:\n    - {direction: ingress, protocl: tcp}\n"),
      "test.yaml:9:28: error: unknown field 'protocl' in spec.rules[0] (did you mean 'protocol'?) "
      "[unknown-field]");
}

TEST(SchemaUnknownFields, EveryUnknownKeyIsReported) {
  const std::string out = validate(doc("Switch",
                                       "  targets: [a]\n  mut: 9000\n  sTp: true\n  frobnicate: 1\n"
                                       "  security: {allowPromiscous: true}\n"));
  EXPECT_EQ(lineCount(out), 4u) << out;
  EXPECT_HAS(out, "test.yaml:7:3: error: unknown field 'mut' in spec (did you mean 'mtu'?)");
  EXPECT_HAS(out, "test.yaml:8:3: error: unknown field 'sTp' in spec (did you mean 'stp'?)");
  EXPECT_HAS(out, "test.yaml:9:3: error: unknown field 'frobnicate' in spec (valid fields: addresses, adopt,");
  EXPECT_HAS(out,
             "test.yaml:10:14: error: unknown field 'allowPromiscous' in spec.security (did you mean "
             "'allowPromiscuous'?)");
}

TEST(SchemaUnknownFields, MisspelledRequiredFieldIsOneError) {
  EXPECT_ONE_ERROR(doc("Switch", "  selctor: {a: b}\n"),
                   "test.yaml:6:3: error: unknown field 'selctor' in spec (did you mean 'selector'?) [unknown-field]");
  EXPECT_ONE_ERROR(doc("Target", "  provder: linux\n"),
                   "test.yaml:6:3: error: unknown field 'provder' in spec (did you mean 'provider'?) [unknown-field]");
}

// ------------------------------------------------------------------------------------- kind-specific rules

TEST(SchemaTarget, ProviderFields) {
  EXPECT_ONE_ERROR(doc("Target", "  provider: linux\n  db: unix:/run/ovs.sock\n"),
                   "test.yaml:7:3: error: spec.db: only valid for provider ovs [schema]");
  EXPECT_ONE_ERROR(doc("Target", "  provider: ovs\n  db: \"tcp:host\"\n"),
                   "test.yaml:7:7: error: spec.db: must be an OVSDB remote, unix:PATH or tcp:HOST:PORT (got "
                   "'tcp:host') [schema]");
  // A connection string with credentials in it is wrong, and the error does not repeat them.
  EXPECT_ONE_ERROR(doc("Target", "  provider: ovs\n  db: \"tcp:admin:s3cret@10.0.0.1:6640\"\n"),
                   "test.yaml:7:7: error: spec.db: must be an OVSDB remote, unix:PATH or tcp:HOST:PORT (got "
                   "'tcp:***@10.0.0.1:6640') [schema]");
  EXPECT_ONE_ERROR(doc("Target", "  provider: esxi\n"),
                   "test.yaml:5:1: error: spec: missing required field 'host' (required when provider is esxi) "
                   "[schema]");
  EXPECT_ONE_ERROR(doc("Target", "  provider: vpc\n"),
                   "test.yaml:5:1: error: spec: one of 'cloud' or 'endpoint' is required (required when provider is "
                   "vpc) [schema]");
  EXPECT_ONE_ERROR(doc("Target", "  provider: vpc\n  cloud: a\n  endpoint: http://x:9696\n"),
                   "test.yaml:8:3: error: spec: give only one of 'cloud' or 'endpoint', not both [schema]");
  EXPECT_ONE_ERROR(doc("Target", "  provider: lnux\n"),
                   "test.yaml:6:13: error: spec.provider: must be one of linux, ovs, esxi, vpc (got 'lnux'); did you "
                   "mean 'linux'? [schema]");
  EXPECT_ONE_ERROR(doc("Target", "  netns: blue\n"),
                   "test.yaml:5:1: error: spec: missing required field 'provider' [schema]");
  EXPECT_ONE_ERROR(doc("Target", "  provider: linux\n  createNetns: true\n"),
                   "test.yaml:7:3: error: spec: 'createNetns' needs 'netns' [schema]");
  // A secret in plain text is refused, and the error does not repeat it.
  EXPECT_ONE_ERROR(doc("Target", "  provider: esxi\n  host: h\n  password: hunter2\n"),
                   "test.yaml:8:13: error: spec.password: secrets never go in manifests in plain text: write {env: "
                   "VARIABLE}, {file: PATH} or {cloud: ENTRY} [schema]");
  EXPECT_ONE_ERROR(doc("Target", "  provider: vpc\n  cloud: c\n  token: {env: 'not a name'}\n"),
                   "test.yaml:8:16: error: spec.token.env: must be an environment variable name (got 'not a name') "
                   "[schema]");
  EXPECT_ONE_ERROR(doc("Target", "  provider: linux\n  identityPassphrase: {env: X}\n"),
                   "test.yaml:7:3: error: spec.identityPassphrase: only valid for provider esxi [schema]");
}

TEST(SchemaPort, TypeSpecificFields) {
  const std::string base = "  targets: [a]\n";
  EXPECT_ONE_ERROR(doc("Port", base + "  type: vlan\n  link: eth0\n"),
                   "test.yaml:5:1: error: spec: missing required field 'vlanId' (required when type is vlan) [schema]");
  EXPECT_ONE_ERROR(doc("Port", base + "  type: tap\n  vni: 10\n"),
                   "test.yaml:8:3: error: spec.vni: only valid for type vxlan or geneve [schema]");
  EXPECT_ONE_ERROR(doc("Port", base + "  mode: vepa\n"),
                   "test.yaml:7:3: error: spec.mode: only valid for type macvtap [schema]");
  EXPECT_ONE_ERROR(doc("Port", base + "  type: internal\n"),
                   "test.yaml:5:1: error: spec: one of 'switch' or 'portGroup' is required (required when type is "
                   "internal) [schema]");
  EXPECT_ONE_ERROR(doc("Port", base + "  switch: s\n  network: n\n"),
                   "test.yaml:8:3: error: spec: give only one of 'switch', 'portGroup' or 'network' [schema]");
  EXPECT_ONE_ERROR(doc("Port", base + "  type: vlan\n  link: eth0\n  vlanId: 4095\n"),
                   "test.yaml:9:11: error: spec.vlanId: must be between 1 and 4094 (got 4095) [schema]");
}

TEST(SchemaNetwork, ModeRules) {
  const std::string base = "  targets: [a]\n";
  EXPECT_ONE_ERROR(doc("Network", base + "  mode: nat\n"),
                   "test.yaml:5:1: error: spec: missing required field 'ipv4' (required when mode is nat) [schema]");
  EXPECT_ONE_ERROR(doc("Network", base + "  mode: isolated\n  portForwards: []\n"),
                   "test.yaml:8:3: error: spec.portForwards: only valid for mode nat [schema]");
  EXPECT_ONE_ERROR(doc("Network", base + "  mode: nat\n  ipv4: {address: 10.0.0.1/24}\n"
                                         "  portForwards: [{proto: sctp, port: 22, to: 10.0.0.5}]\n"),
                   "test.yaml:9:26: error: spec.portForwards[0].proto: must be one of tcp, udp (got 'sctp'); did you "
                   "mean 'tcp'? [schema]");
  EXPECT_ONE_ERROR(doc("Network", base + "  mode: nat\n  ipv4: {address: 10.0.0.1/24}\n"
                                         "  portForwards: [{proto: tcp, port: 22, to: \"10.0.0.5:99999\"}]\n"),
                   "test.yaml:9:45: error: spec.portForwards[0].to: must be IP or IP:PORT of a VM, like "
                   "192.168.100.10:22 (got '10.0.0.5:99999') [schema]");
  EXPECT_ONE_ERROR(doc("Network", base + "  mode: nat\n  ipv4: {address: 10.0.0.1/24, dhcp: {start: 10.0.0.10}}\n"),
                   "test.yaml:8:32: error: spec.ipv4.dhcp: missing required field 'end' [schema]");
  EXPECT_ONE_ERROR(doc("Network", base + "  mode: nated\n"),
                   "test.yaml:7:9: error: spec.mode: must be one of bridged, nat, routed, isolated, host-only, "
                   "internal, open (got 'nated'); did you mean 'nat'? [schema]");
}

TEST(SchemaVpcKinds, Rules) {
  const std::string base = "  targets: [a]\n";
  EXPECT_ONE_ERROR(doc("Vpc", base + "  natGateway: true\n"),
                   "test.yaml:5:1: error: spec: missing required field 'internetGateway' (required when natGateway is "
                   "true) [schema]");
  EXPECT_ONE_ERROR(doc("Subnet", base + "  vpc: v\n  cidr: 10.0.0.0/33\n"),
                   "test.yaml:8:9: error: spec.cidr: must be an IPv4 or IPv6 address with a prefix length, like "
                   "192.0.2.1/24 or 2001:db8::1/64 (got '10.0.0.0/33') [schema]");
  const std::string sg = base + "  vpc: v\n  rules:\n";
  EXPECT_ONE_ERROR(doc("SecurityGroup", sg + "    - {direction: ingress, protocol: tcp, ports: 70000}\n"),
                   "test.yaml:9:50: error: spec.rules[0].ports: must be between 1 and 65535 (got 70000) [schema]");
  EXPECT_ONE_ERROR(doc("SecurityGroup", sg + "    - {direction: ingress, protocol: tcp, ports: \"90-80\"}\n"),
                   "test.yaml:9:50: error: spec.rules[0].ports: range '90-80' is reversed; write it as '80-90' "
                   "[schema]");
  EXPECT_ONE_ERROR(doc("SecurityGroup", sg + "    - {direction: ingress, protocol: tcp, ports: \"80..90\"}\n"),
                   "test.yaml:9:50: error: spec.rules[0].ports: must be a port range \"FIRST-LAST\" of ports 1-65535, "
                   "like \"8000-8100\" (got '80..90') [schema]");
  EXPECT_ONE_ERROR(doc("SecurityGroup", sg + "    - {direction: ingress, protocol: icmp, ports: 80}\n"),
                   "test.yaml:9:44: error: spec.rules[0].ports: only valid with protocol tcp or udp [schema]");
  EXPECT_ONE_ERROR(doc("SecurityGroup", sg + "    - {direction: ingress, cidr: 10.0.0.0/8, group: g}\n"),
                   "test.yaml:9:46: error: spec.rules[0]: give either 'cidr' or 'group', not both [schema]");
  EXPECT_ONE_ERROR(doc("SecurityGroup", sg + "    - {protocol: tcp}\n"),
                   "test.yaml:9:7: error: spec.rules[0]: missing required field 'direction' [schema]");
  EXPECT_ONE_ERROR(doc("Route", base + "  vpc: v\n  destination: 10.0.0.0/8\n"),
                   "test.yaml:5:1: error: spec: missing required field 'nexthop' [schema]");
  EXPECT_ONE_ERROR(
      doc("Mirror", base + "  switch: s\n  source: {ports: [p], direction: in}\n  destination: {port: d}\n"),
      "test.yaml:8:35: error: spec.source.direction: must be one of ingress, egress, both (got 'in') "
      "[schema]");
}

TEST(SchemaErrors, AllErrorsOfADocumentAreReported) {
  const std::string out = validate(doc("Port",
                                       "  targets: [a]\n  switch: s\n  mtu: 99999\n  mac: bad\n  up: 1\n"
                                       "  tpye: tap\n"));
  EXPECT_EQ(lineCount(out), 4u) << out;
  EXPECT_HAS(out, "test.yaml:8:8: error: spec.mtu: must be between 68 and 65535 (got 99999)");
  EXPECT_HAS(out, "test.yaml:9:8: error: spec.mac: must be a MAC address");
  EXPECT_HAS(out, "test.yaml:10:7: error: spec.up: must be true or false (got integer 1)");
  EXPECT_HAS(out, "test.yaml:11:3: error: unknown field 'tpye' in spec (did you mean 'type'?)");
}

TEST(SchemaErrors, ManyDocumentsAreIndependent) {
  const std::string out = validate(doc("Switch", "  targets: [a]\n  mtu: 1\n", "a") + "---\n" +
                                   doc("Switch", "  targets: [a]\n  mtu: 1500\n", "b") + "---\n" +
                                   doc("Switch", "  targets: [a]\n  mtu: 2\n", "c"));
  EXPECT_EQ(lineCount(out), 2u) << out;
  EXPECT_HAS(out, "test.yaml:7:8: error: spec.mtu");
  EXPECT_HAS(out, "test.yaml:23:8: error: spec.mtu");
}

TEST(SchemaErrors, OneValidatorServesManyThreads) {
  Diagnostics load;
  auto docs = loadManifestText(doc("Switch", "  targets: [a]\n  mtu: 70000\n  mut: 1\n") + "---\n" +
                                   doc("PortGroup", "  targets: [a]\n  switch: s\n  vlan: {trunk: [\"1-9\"]}\n"),
                               "test.yaml", load);
  ASSERT_EQ(docs.size(), 2u);
  std::vector<std::thread> threads;
  std::vector<size_t> errors(4, 0);
  for (size_t t = 0; t < errors.size(); ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        Diagnostics diags;
        for (const auto& d : docs) validator().validate(d, diags);
        errors[t] += diags.errorCount();
      }
    });
  for (auto& th : threads) th.join();
  for (size_t e : errors) EXPECT_EQ(e, 400u);  // 2 errors in the Switch, none in the PortGroup, 200 rounds
}

// ------------------------------------------------------------------------------------------------ examples

TEST(SchemaExamples, EveryExampleValidates) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(VNETPLAN_SOURCE_DIR) / "examples";
  if (!fs::exists(root)) GTEST_SKIP() << "SKIPPED: no examples/ directory";
  Diagnostics diags;
  auto docs = loadManifests({root.string()}, diags);
  for (const auto& d : docs) validator().validate(d, diags);
  EXPECT_FALSE(diags.hasErrors()) << diags.render();
  EXPECT_GT(docs.size(), 0u);
}

// ------------------------------------------------------------------------------------------------ speed

TEST(SchemaSpeed, TenThousandDocuments) {
  std::ostringstream yaml;
  for (int i = 0; i < 10000; ++i) {
    if (i) yaml << "---\n";
    char mac[32];
    std::snprintf(mac, sizeof mac, "52:54:00:00:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
    yaml << "apiVersion: vnetplan.io/v1\nkind: Port\nmetadata: {name: p" << i << ", labels: {vm: vm" << i << "}}\n"
         << "spec:\n  targets: [hv01]\n  switch: br0\n  type: tap\n  mtu: 1500\n  mac: \"" << mac
         << "\"\n  addresses: [10.0." << (i % 250) << ".1/24]\n"
         << "  security: {allowPromiscuous: false}\n";
  }
  Diagnostics diags;
  auto docs = loadManifestText(yaml.str(), "bench.yaml", diags);
  ASSERT_EQ(docs.size(), 10000u);
  auto start = std::chrono::steady_clock::now();
  for (const auto& d : docs) validator().validate(d, diags);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(diags.hasErrors()) << diags.render().substr(0, 2000);
  std::cout << "validated 10000 documents in " << ms << " ms\n";
  EXPECT_LT(ms, 20000);  // generous: sanitizer builds are slow; the point is "no per-document schema build"
}

}  // namespace
}  // namespace vnetplan
