// End-to-end: the vnetplan binary against a real ovsdb-server + ovs-vswitchd (userspace netdev datapath),
// started per test inside a network namespace the test creates (tests/integration/ovs_harness.h). Results
// are checked independently with ovsdb-client reads of the database, not through vnetplan's own observe.
#include "tests/integration/ovs_harness.h"

using namespace vnptest;

namespace {

const char* kTarget = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: hv1}
spec: {provider: ovs, db: "OVSDB"}
)";

std::string doc(const std::string& kind, const std::string& name, const std::string& spec) {
  return "---\napiVersion: vnetplan.io/v1\nkind: " + kind + "\nmetadata: {name: " + name + "}\nspec: {targets: [hv1], " +
         spec + "}\n";
}

// Tag of a Port row as the database has it (0 = none).
int64_t tagOf(const Json& port) {
  if (port.is_null() || !port.contains("tag")) return -1;
  const Json& t = port["tag"];
  return t.is_number_integer() ? t.get<int64_t>() : 0;
}

}  // namespace

class CliOvs : public OvsTest {
 protected:
  std::string base(const std::string& extra = "", int vlan = 10, const std::string& vm2Type = "internal") {
    return kTarget + doc("Switch", "br0", "mtu: 1600, ovs: {datapathType: netdev, failMode: secure}") +
           doc("PortGroup", "web", "switch: br0, vlan: " + std::to_string(vlan)) +
           doc("Port", "vm1", "portGroup: web") + doc("Port", "vm2", "portGroup: web, type: " + vm2Type) +
           doc("Port", "up1", "switch: br0, vlan: {trunk: [10, \"20-22\"]}") +
           doc("Port", "vx1", "switch: br0, type: vxlan, remote: 192.0.2.1, vni: 5000") +
           doc("Mirror", "span", "switch: br0, source: {ports: [vm1]}, destination: {port: up1}") + extra;
  }
  RunResult vnp(const std::string& args, const std::string& env = "") {
    return runShell(env + " VNETPLAN_OVS_SETTLE_MS=5000 " + std::string(VNETPLAN_BINARY) + " --state file://" +
                        (dir / "state").string() + " " + args,
                    dir);
  }
  // Everything vnetplan manages, as the database holds it, for exact before/after comparisons.
  std::string dbSnapshot() {
    std::string out;
    for (const char* t : {"Bridge", "Port", "Interface", "Mirror"}) {
      std::vector<std::string> rows;
      for (const auto& r : table(t)) {
        Json keep = Json::object();
        for (const char* c : {"name", "datapath_type", "fail_mode", "tag", "trunks", "vlan_mode", "type", "options",
                              "mtu_request", "external_ids", "select_src_port", "select_dst_port", "_uuid"})
          if (r.contains(c)) keep[c] = r[c];
        rows.push_back(keep.dump());
      }
      std::sort(rows.begin(), rows.end());
      for (const auto& r : rows) out += std::string(t) + " " + r + "\n";
    }
    return out;
  }
};

TEST_F(CliOvs, CreateNoopUpdateReplacePrune) {
  auto f = ovsManifest(base());
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json br = row("Bridge", "br0");
  ASSERT_FALSE(br.is_null());
  EXPECT_EQ(br["datapath_type"], "netdev");
  EXPECT_EQ(br["fail_mode"], "secure");
  EXPECT_EQ(br["external_ids"]["vnetplan:owner"], "hv1");
  EXPECT_EQ(row("Interface", "br0")["mtu_request"], 1600);
  EXPECT_EQ(tagOf(row("Port", "vm1")), 10);
  EXPECT_EQ(row("Port", "vm1")["external_ids"]["vnetplan:portgroup"], "web");
  EXPECT_EQ(row("Port", "up1")["trunks"], Json::array({10, 20, 21, 22}));
  EXPECT_EQ(row("Interface", "vx1")["type"], "vxlan");
  EXPECT_EQ(row("Interface", "vx1")["options"]["remote_ip"], "192.0.2.1");
  EXPECT_EQ(row("Interface", "vx1")["options"]["key"], "5000");
  EXPECT_EQ(row("Mirror", "span")["output_port"], row("Port", "up1")["_uuid"]);
  // ovs-vswitchd made the internal ports as devices in the namespace.
  EXPECT_TRUE(links().count("vm1"));
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << "second plan is empty";

  // Update in place: the group's VLAN reaches its members; the Port rows are the same rows.
  const Json vm1Uuid = row("Port", "vm1")["_uuid"];
  auto g = ovsManifest(base("", 20), "next.yaml");
  auto plan = vnp("plan --detailed-exitcode -f " + g);
  EXPECT_EQ(plan.exitCode, 2) << plan.out << plan.err;
  EXPECT_NE(plan.out.find("vlan: 10 -> 20"), std::string::npos) << plan.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_EQ(tagOf(row("Port", "vm1")), 20);
  EXPECT_EQ(tagOf(row("Port", "vm2")), 20);
  EXPECT_EQ(row("Port", "vm1")["_uuid"], vm1Uuid);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);

  // Replace: a Port's type cannot change in place.
  const Json vm2Uuid = row("Port", "vm2")["_uuid"];
  auto h = ovsManifest(base("", 20, "tap"), "replace.yaml");
  plan = vnp("plan -f " + h);
  EXPECT_NE(plan.out.find("-/+"), std::string::npos) << plan.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + h).exitCode, 0);
  EXPECT_EQ(row("Interface", "vm2")["type"], "tap");
  EXPECT_NE(row("Port", "vm2")["_uuid"], vm2Uuid);
  EXPECT_EQ(tagOf(row("Port", "vm2")), 20);

  // Prune: what leaves the manifests goes; then everything goes.
  std::string without = kTarget + doc("Switch", "br0", "mtu: 1600, ovs: {datapathType: netdev, failMode: secure}");
  ASSERT_EQ(vnp("apply --auto-approve -f " + ovsManifest(without, "prune.yaml")).exitCode, 0);
  EXPECT_TRUE(row("Port", "vm1").is_null());
  EXPECT_TRUE(row("Mirror", "span").is_null());
  EXPECT_FALSE(row("Bridge", "br0").is_null());
  EXPECT_EQ(row("Bridge", "br0")["external_ids"].count("vnetplan:portgroup:web"), 0u);
  ASSERT_EQ(vnp("apply --auto-approve -f " + ovsManifest(kTarget, "empty.yaml")).exitCode, 0);
  EXPECT_TRUE(table("Bridge").empty());
  EXPECT_TRUE(table("Port").empty());
}

TEST_F(CliOvs, UnmanagedRowsAreNeverTouchedAndAdoptTakesOver) {
  ASSERT_EQ(vsctl("add-br manual -- set bridge manual datapath_type=netdev").exitCode, 0);
  auto f = ovsManifest(base());
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  // Someone adds a port by hand to vnetplan's bridge.
  ASSERT_EQ(vsctl("add-port br0 handmade -- set interface handmade type=internal").exitCode, 0);
  // A manifest naming the unmanaged bridge is refused without adopt.
  std::string claim = base(doc("Switch", "manual", "ovs: {datapathType: netdev}"));
  auto r = vnp("plan -f " + ovsManifest(claim, "claim.yaml"));
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("not managed by vnetplan"), std::string::npos) << r.err;
  // Pruning everything leaves the unmanaged bridge and port alone.
  ASSERT_EQ(vnp("apply --auto-approve -f " + ovsManifest(kTarget, "empty.yaml")).exitCode, 0);
  EXPECT_FALSE(row("Bridge", "manual").is_null());
  EXPECT_TRUE(row("Port", "vm1").is_null());
  // Adopt: the manual bridge becomes vnetplan's, tagged as such.
  std::string adopt = kTarget + doc("Switch", "manual", "adopt: true, ovs: {datapathType: netdev}");
  r = vnp("apply --auto-approve -f " + ovsManifest(adopt, "adopt.yaml"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  // Adopted, it is vnetplan's: state records it. Leaving the manifests releases it: it stays, as it was, and
  // vnetplan no longer owns it (adopted is not created).
  EXPECT_NE(vnp("state show hv1").out.find("hv1/Switch/manual"), std::string::npos);
  r = vnp("apply --auto-approve -f " + ovsManifest(kTarget, "empty.yaml"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1 to release"), std::string::npos) << r.out;
  EXPECT_FALSE(row("Bridge", "manual").is_null());
  EXPECT_EQ(vnp("state show hv1").out.find("hv1/Switch/manual"), std::string::npos);
  // Unless it says so: onRelease: delete.
  std::string adoptDelete = kTarget + doc("Switch", "manual", "adopt: true, onRelease: delete, ovs: {datapathType: netdev}");
  ASSERT_EQ(vnp("apply --auto-approve -f " + ovsManifest(adoptDelete, "adopt-delete.yaml")).exitCode, 0);
  ASSERT_EQ(vnp("apply --auto-approve -f " + ovsManifest(kTarget, "empty.yaml")).exitCode, 0);
  EXPECT_TRUE(row("Bridge", "manual").is_null());
}

TEST_F(CliOvs, DriftAfterAnOvsVsctlChange) {
  auto f = ovsManifest(base());
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  ASSERT_EQ(vsctl("set port vm1 tag=99 -- set interface br0 mtu_request=1500 -- set bridge br0 other_config:x=y "
                  "-- clear mirror span select_dst_port -- set interface vx1 options:key=7")
                .exitCode,
            0);
  auto d = vnp("drift -f " + f);
  EXPECT_EQ(d.exitCode, 2) << d.out << d.err;
  EXPECT_NE(d.out.find("hv1/Port/vm1"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("vlan"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("mtu"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("ovs.otherConfig.x"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("hv1/Mirror/span"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("source.direction"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("vni"), std::string::npos) << d.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_EQ(row("Mirror", "span")["select_dst_port"], row("Port", "vm1")["_uuid"]);
  EXPECT_EQ(row("Interface", "vx1")["options"]["key"], "5000");
  EXPECT_EQ(tagOf(row("Port", "vm1")), 10);
  EXPECT_EQ(row("Interface", "br0")["mtu_request"], 1600);
  EXPECT_EQ(row("Bridge", "br0")["other_config"].count("x"), 0u);
  EXPECT_EQ(vnp("drift -f " + f).exitCode, 0);
}

TEST_F(CliOvs, InjectedFailureInsideTheTransactionChangesNothing) {
  auto f = ovsManifest(base());
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  const std::string before = dbSnapshot();
  // Six steps: delete vx1, update br0, update web, update vm1's... (whatever the plan holds), create vm3.
  std::string next = kTarget + doc("Switch", "br0", "mtu: 1400, ovs: {datapathType: netdev, failMode: secure}") +
                     doc("PortGroup", "web", "switch: br0, vlan: 30") + doc("Port", "vm1", "portGroup: web") +
                     doc("Port", "vm2", "portGroup: web") + doc("Port", "up1", "switch: br0, vlan: 7") +
                     doc("Port", "vm3", "switch: br0, vlan: 3") +
                     doc("Mirror", "span", "switch: br0, source: {ports: [vm1, vm2]}, destination: {port: up1}");
  auto g = ovsManifest(next, "next.yaml");
  for (int k = 1; k <= 5; ++k) {
    auto r = vnp("apply --auto-approve -f " + g, "VNETPLAN_FAIL_AT_STEP=" + std::to_string(k));
    ASSERT_EQ(r.exitCode, 1) << "k=" << k << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("injected failure at step " + std::to_string(k)), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("Nothing was changed"), std::string::npos) << r.err;
    EXPECT_EQ(dbSnapshot(), before) << "k=" << k;
    EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << "k=" << k;
  }
  // A failure after the commit rolls back with a second transaction, to the exact pre-image (same rows).
  auto r = vnp("apply --auto-approve -f " + g, "VNETPLAN_FAIL_AFTER_COMMIT=1");
  ASSERT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("Rolled back"), std::string::npos) << r.err;
  // Rows deleted and re-created get new uuids: compare without them.
  auto strip = [](std::string s) {
    std::string out;
    std::vector<std::string> lines;
    std::istringstream in(s);
    for (std::string line; std::getline(in, line);) {
      auto sp = line.find(' ');
      Json j = Json::parse(line.substr(sp + 1));
      j.erase("_uuid");
      j.erase("select_src_port");
      j.erase("select_dst_port");
      lines.push_back(line.substr(0, sp) + " " + j.dump() + "\n");
    }
    std::sort(lines.begin(), lines.end());
    for (const auto& l : lines) out += l;
    return out;
  };
  EXPECT_EQ(strip(dbSnapshot()), strip(before));
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
  ASSERT_EQ(vnp("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_EQ(tagOf(row("Port", "vm3")), 3);
}

TEST_F(CliOvs, ConcurrentChangeToAPlannedRowIsStaleAndKept) {
  auto f = ovsManifest(base());
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  auto g = ovsManifest(base("", 20), "next.yaml");
  // The apply observes, then sleeps before sending its transaction; meanwhile someone re-tags vm1.
  pid_t pid = fork();
  if (pid == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    int rc = std::system(("ovs-vsctl --no-wait --db=" + remote() + " set port vm1 tag=42").c_str());
    _exit(rc == 0 ? 0 : 1);
  }
  auto r = vnp("apply --auto-approve -f " + g, "VNETPLAN_SLOW_STEP_MS=2000");
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("stale"), std::string::npos) << r.err;
  EXPECT_EQ(tagOf(row("Port", "vm1")), 42) << "the other writer's change is not overwritten";
  EXPECT_EQ(tagOf(row("Port", "vm2")), 10) << "nothing of the stale transaction was committed";

  // A concurrent change to a row the plan does not touch (another port on the same bridge) is retried.
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  pid = fork();
  if (pid == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    int rc = std::system(("ovs-vsctl --no-wait --db=" + remote() + " add-port br0 other -- set interface other type=internal").c_str());
    _exit(rc == 0 ? 0 : 1);
  }
  // The plan also updates br0, whose row guard fails when the port is added: rebuilt and retried.
  std::string more = base(doc("Port", "vm9", "switch: br0, vlan: 9"));
  more.replace(more.find("mtu: 1600"), 9, "mtu: 1500");
  r = vnp("apply --auto-approve -f " + ovsManifest(more, "more.yaml"), "VNETPLAN_SLOW_STEP_MS=2000");
  waitpid(pid, &status, 0);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("retrying"), std::string::npos) << r.err;
  EXPECT_EQ(tagOf(row("Port", "vm9")), 9);
  EXPECT_EQ(row("Interface", "br0")["mtu_request"], 1500);
  EXPECT_FALSE(row("Port", "other").is_null());
}

TEST_F(CliOvs, InterfaceOvsVswitchdCannotSetUpIsRolledBack) {
  auto f = ovsManifest(base());
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  const Json before = table("Port").size();
  // A system port naming a device that does not exist: the transaction commits, ovs-vswitchd reports the
  // error in Interface.error, and the apply rolls back with a second transaction.
  auto r = vnp("apply --auto-approve -f " + ovsManifest(base(doc("Port", "ghost0", "switch: br0, type: system")), "ghost.yaml"));
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("could not set up interface ghost0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Rolled back"), std::string::npos) << r.err;
  EXPECT_TRUE(row("Port", "ghost0").is_null());
  EXPECT_EQ(Json(table("Port").size()), before);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
}

TEST_F(CliOvs, BondUplinkShapingAndPatchPorts) {
  ip("link add nic1 type veth peer name nic1-p");
  ip("link add nic2 type veth peer name nic2-p");
  ip("link add nic3 type veth peer name nic3-p");
  std::string m = kTarget +
                  doc("Switch", "br0",
                      "ovs: {datapathType: netdev, bond: {miimonMs: 100, updelayMs: 200}}, uplinks: {nics: [nic1, nic2], "
                      "teaming: {policy: failover, active: [nic2], standby: [nic1]}}, shaping: {averageKbps: 10000, burstKiB: 100}") +
                  doc("Switch", "br1",
                      "ovs: {datapathType: netdev, rstp: true, otherConfig: {mac-table-size: \"4096\"}, "
                      "netflow: {targets: [\"192.0.2.9:2055\"], activeTimeout: 60}, "
                      "sflow: {targets: [\"192.0.2.9:6343\"], sampling: 64}}") +
                  doc("Port", "vm1", "switch: br0") +
                  doc("Port", "p0", "switch: br0, type: patch, peer: p1") +
                  doc("Port", "p1", "switch: br1, type: patch, peer: p0") +
                  doc("Port", "vm2", "switch: br0, vlan: 5, mac: \"52:54:00:AA:00:02\", ovs: {ofport: 77, externalIds: {iface-id: vm2-uuid}}") +
                  doc("Mirror", "m1", "switch: br0, source: {ports: [vm1], direction: ingress}, destination: {port: vm2}");
  auto f = ovsManifest(m);
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json bond = row("Port", "br0-uplink");
  ASSERT_FALSE(bond.is_null());
  EXPECT_EQ(bond["bond_mode"], "active-backup");
  EXPECT_EQ(bond["other_config"]["bond-primary"], "nic2");
  EXPECT_EQ(bond["other_config"]["bond-detect-mode"], "miimon");
  EXPECT_EQ(bond["bond_updelay"], 200);
  // Shaping on the switch reaches its ports as ingress policing (kbps, and KiB -> kilobits).
  EXPECT_EQ(row("Interface", "vm1")["ingress_policing_rate"], 10000);
  EXPECT_EQ(row("Interface", "vm1")["ingress_policing_burst"], 819);
  EXPECT_EQ(row("Interface", "p0")["options"]["peer"], "p1");
  Json br1 = row("Bridge", "br1");
  EXPECT_EQ(br1["rstp_enable"], true);
  EXPECT_EQ(br1["other_config"]["mac-table-size"], "4096");
  Json nf = table("NetFlow"), sf = table("sFlow");
  ASSERT_EQ(nf.size(), 1u);
  EXPECT_EQ(nf[0]["targets"], "192.0.2.9:2055");
  EXPECT_EQ(nf[0]["active_timeout"], 60);
  ASSERT_EQ(sf.size(), 1u);
  EXPECT_EQ(sf[0]["sampling"], 64);
  Json vm2 = row("Interface", "vm2");
  EXPECT_EQ(vm2["mac"], "52:54:00:aa:00:02");
  EXPECT_EQ(vm2["ofport_request"], 77);
  EXPECT_EQ(vm2["external_ids"]["iface-id"], "vm2-uuid");
  Json m1 = row("Mirror", "m1");
  EXPECT_EQ(m1["select_src_port"], row("Port", "vm1")["_uuid"]);
  EXPECT_EQ(m1["select_dst_port"], Json::array());
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
  // Mirror direction and NetFlow collector updated in place.
  std::string m2 = m;
  m2.replace(m2.find("direction: ingress"), 18, "direction: both");
  m2.replace(m2.find("192.0.2.9:2055"), 14, "192.0.2.7:2055");
  auto f2 = ovsManifest(m2, "m2.yaml");
  ASSERT_EQ(vnp("apply --auto-approve -f " + f2).exitCode, 0);
  EXPECT_EQ(row("Mirror", "m1")["select_dst_port"], row("Port", "vm1")["_uuid"]);
  EXPECT_EQ(table("NetFlow")[0]["targets"], "192.0.2.7:2055");
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f2).exitCode, 0);
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  auto plan = vnp("plan -f " + f + " --show-unchanged");
  // Teaming: the bond becomes LACP (balance-tcp) with three NICs: the uplink port is rebuilt in place.
  std::string lacp = kTarget +
                     doc("Switch", "br0",
                         "ovs: {datapathType: netdev}, uplinks: {nics: [nic1, nic2, nic3], teaming: {policy: lacp, lacp: {rate: fast}}}") +
                     doc("Switch", "br1", "ovs: {datapathType: netdev}") + doc("Port", "vm1", "switch: br0") +
                     doc("Port", "p0", "switch: br0, type: patch, peer: p1") +
                     doc("Port", "p1", "switch: br1, type: patch, peer: p0");
  auto g = ovsManifest(lacp, "lacp.yaml");
  // (br1 loses its NetFlow/sFlow/RSTP/other_config, vm2 and m1 go.)
  r = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  bond = row("Port", "br0-uplink");
  EXPECT_EQ(bond["bond_mode"], "balance-tcp");
  EXPECT_EQ(bond["lacp"], "active");
  EXPECT_EQ(bond["other_config"]["lacp-time"], "fast");
  EXPECT_EQ(bond["interfaces"].size(), 3u);
  EXPECT_EQ(row("Interface", "vm1")["ingress_policing_rate"], 0);
  EXPECT_TRUE(table("NetFlow").empty());
  EXPECT_TRUE(table("sFlow").empty());
  EXPECT_TRUE(row("Mirror", "m1").is_null());
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);
}

TEST_F(CliOvs, UnsupportedFieldsAreRejectedAtPlanTimeNamingTheReason) {
  struct Case {
    std::string resource, needle;
  };
  const std::vector<Case> cases{
      {doc("Switch", "br0", "ovs: {datapathType: netdev}, security: {allowPromiscuous: true}, justification: lab"),
       "security.allowPromiscuous"},
      {doc("Switch", "br0", "ovs: {datapathType: netdev}, nioc: {enabled: true, uplinkMbps: 100}"), "needs uplinks.nics"},
      {doc("Port", "vm1", "switch: brx, niocClass: vmotion"), "not a class of switch brx"},
      {doc("Switch", "br0", "ovs: {datapathType: netdev}, uplinks: {nics: [a, b], teaming: {policy: src-port}}"),
       "no OVS equivalent"},
      {doc("Port", "vm1", "switch: br0, type: veth, peer: x"), "not 'veth'"},
      {doc("Port", "vm1", "switch: br0, shaping: {averageKbps: 10, peakKbps: 20}"), "peak"},
      {doc("Switch", "br0", "ovs: {datapathType: netdev}, addresses: [10.0.0.1/24]"), "local port"},
      {doc("Port", "vm1", "switch: brx, type: tap, addresses: [10.0.0.1/24]"), "belong to internal ports"},
      {doc("Port", "vm1", "switch: br0, vlan: 4095"), "ESXi only"},
      {doc("Switch", "br0", "ovs: {datapathType: netdev, bond: {miimonMs: 100}}, uplinks: {nics: [eth9]}"),
       "two or more uplinks.nics"},
  };
  for (const auto& c : cases) {
    std::string m = kTarget + doc("Switch", "brx", "ovs: {datapathType: netdev}") + c.resource;
    auto r = vnp("plan -f " + ovsManifest(m, "bad.yaml"));
    EXPECT_EQ(r.exitCode, 1) << c.resource;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.resource << "\n" << r.err;
    EXPECT_NE(r.err.find("ovs:"), std::string::npos) << r.err;
  }
  EXPECT_TRUE(table("Bridge").empty()) << "plan never changes the target";
}

// A VM's MAC is the guest's: on a tap or system port (a tap libvirt made) `mac` goes to external_ids:attached-mac,
// where libvirt and OVN keep it, and the interface's own MAC is left alone; an internal port's `mac` is its own.
TEST_F(CliOvs, AVmPortsMacIsTheGuestsAndAnInternalPortsItsOwn) {
  ip("link add vnet7 type veth peer name vnet7-guest");  // what libvirt would have made for a guest
  const std::string m = kTarget + doc("Switch", "br0", "ovs: {datapathType: netdev}") +
                        doc("Port", "vm1", "switch: br0, type: tap, mac: \"52:54:00:0A:00:01\"") +
                        doc("Port", "vnet7", "switch: br0, type: system, mac: \"52:54:00:0a:00:07\"") +
                        doc("Port", "mgmt0", "switch: br0, type: internal, mac: \"02:00:00:00:00:09\"");
  auto f = ovsManifest(m);
  const std::string hostMac = runShell("ip netns exec " + ns + " cat /sys/class/net/vnet7/address", dir).out;
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json vm1 = row("Interface", "vm1"), vnet7 = row("Interface", "vnet7"), mgmt = row("Interface", "mgmt0");
  EXPECT_EQ(vm1["external_ids"]["attached-mac"], "52:54:00:0a:00:01");
  EXPECT_TRUE(vm1["mac"].is_null() || vm1["mac"] == Json::array()) << vm1["mac"];
  EXPECT_EQ(vnet7["external_ids"]["attached-mac"], "52:54:00:0a:00:07");
  EXPECT_EQ(runShell("ip netns exec " + ns + " cat /sys/class/net/vnet7/address", dir).out, hostMac)
      << "the host side keeps its own MAC";
  EXPECT_EQ(mgmt["mac"], "02:00:00:00:00:09");
  EXPECT_FALSE(mgmt["external_ids"].contains("attached-mac"));
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
  // Someone points the port at another guest: drift on mac, repaired.
  ASSERT_EQ(vsctl("set interface vm1 external_ids:attached-mac=52:54:00:ff:ff:ff").exitCode, 0);
  auto d = vnp("drift -f " + f);
  EXPECT_EQ(d.exitCode, 2) << d.out << d.err;
  EXPECT_NE(d.out.find("mac"), std::string::npos) << d.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_EQ(row("Interface", "vm1")["external_ids"]["attached-mac"], "52:54:00:0a:00:01");
  // `show` renders it back as mac, which re-applied plans nothing.
  auto show = vnp("show --target hv1 -f " + f);
  ASSERT_EQ(show.exitCode, 0) << show.err;
  EXPECT_NE(show.out.find("mac: 52:54:00:0a:00:01\n"), std::string::npos) << show.out;  // hex: no YAML reader retypes it
  EXPECT_EQ(show.out.find("attached-mac"), std::string::npos) << show.out;
  // Both at once is a contradiction, refused at plan time.
  auto both = vnp("plan -f " + ovsManifest(kTarget + doc("Switch", "br0", "ovs: {datapathType: netdev}") +
                                                doc("Port", "vm1", "switch: br0, type: tap, mac: \"52:54:00:0a:00:01\", "
                                                                   "ovs: {externalIds: {attached-mac: \"52:54:00:0a:00:02\"}}"),
                                            "both.yaml"));
  EXPECT_EQ(both.exitCode, 1);
  EXPECT_NE(both.err.find("the guest's MAC is set by mac"), std::string::npos) << both.err;
}

// Jumbo frames take effect end to end: the switch's MTU is its uplinks' (mtu_request on every uplink NIC, which
// ovs-vswitchd applies to the kernel device) and its ports' (inherited; the plan says so).
TEST_F(CliOvs, SwitchMtuReachesUplinksAndPorts) {
  ip("link add eth1 type veth peer name eth1-p");
  ip("link add eth2 type veth peer name eth2-p");
  auto manifest = [&](int mtu) {
    return kTarget + doc("Switch", "br0", "mtu: " + std::to_string(mtu) + ", ovs: {datapathType: netdev}, uplinks: {nics: [eth1, eth2]}") +
           doc("Port", "vm1", "switch: br0");
  };
  auto f = ovsManifest(manifest(9000), "jumbo.yaml");
  auto p = vnp("plan -f " + f);
  EXPECT_NE(p.out.find("inherited from hv1/Switch/br0"), std::string::npos) << p.out;
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto kernelMtu = [&](const std::string& dev) {
    return runShell("ip netns exec " + ns + " cat /sys/class/net/" + dev + "/mtu", dir).out;
  };
  for (const char* nic : {"eth1", "eth2"}) {
    EXPECT_EQ(row("Interface", nic)["mtu_request"], 9000) << nic;
    EXPECT_EQ(kernelMtu(nic), "9000\n") << nic;
  }
  EXPECT_EQ(row("Interface", "vm1")["mtu_request"], 9000);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
  // A NIC set back by hand is drift, repaired without rebuilding the bond.
  const Json bondUuid = row("Port", "br0-uplink")["_uuid"];
  ASSERT_EQ(vsctl("set interface eth2 mtu_request=1500").exitCode, 0);
  auto d = vnp("drift -f " + f);
  EXPECT_EQ(d.exitCode, 2) << d.out;
  EXPECT_NE(d.out.find("ovs.uplinkMtu.eth2"), std::string::npos) << d.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_EQ(row("Interface", "eth2")["mtu_request"], 9000);
  EXPECT_EQ(row("Port", "br0-uplink")["_uuid"], bondUuid);
  // A change that fails after the commit rolls the uplinks back to 9000.
  auto g = ovsManifest(manifest(1600), "small.yaml");
  r = vnp("apply --auto-approve -f " + g, "VNETPLAN_FAIL_AFTER_COMMIT=1");
  ASSERT_EQ(r.exitCode, 1) << r.out << r.err;
  for (const char* nic : {"eth1", "eth2"}) EXPECT_EQ(row("Interface", nic)["mtu_request"], 9000) << nic;
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
  r = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  for (const char* nic : {"eth1", "eth2"}) EXPECT_EQ(row("Interface", nic)["mtu_request"], 1600) << nic;
}

TEST_F(CliOvs, ExamplesValidateAndApply) {
  const fs::path examples = fs::path(VNETPLAN_SOURCE_DIR) / "examples";
  int applied = 0;
  for (const auto& e : fs::recursive_directory_iterator(examples)) {
    if (e.path().extension() != ".yaml") continue;
    std::string text = readAll(e.path());
    if (text.find("provider: ovs") == std::string::npos) continue;
    // The example's db: line points at this test's sandbox.
    std::string rewritten;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      auto p = line.find("db: ");
      if (p != std::string::npos) line = line.substr(0, p) + "db: \"OVSDB\"";
      rewritten += line + "\n";
    }
    // Uplink NICs the example names exist in the test namespace.
    for (const char* nic : {"eth1", "eth2"}) ip(std::string("link add ") + nic + " type veth peer name " + nic + "-p");
    auto f = ovsManifest(rewritten, e.path().filename().string());
    auto v = vnp("validate -f " + f);
    ASSERT_EQ(v.exitCode, 0) << e.path() << "\n" << v.out << v.err;
    auto r = vnp("apply --auto-approve -f " + f);
    ASSERT_EQ(r.exitCode, 0) << e.path() << "\n" << r.out << r.err;
    EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << e.path();
    ++applied;
  }
  EXPECT_GT(applied, 0);
}

// NIOC: a linux-htb QoS on the uplink bond with a Queue per class (rates from shares and reservations), and
// OpenFlow set_queue flows classifying each port (own niocClass or its port group's); read back independently
// with ovsdb-client and ovs-ofctl.
TEST_F(CliOvs, NiocQosQueuesAndClassificationFlows) {
  ip("link add eth1 type veth peer name eth1-p");
  ip("link add eth2 type veth peer name eth2-p");
  auto sw = [](const std::string& nioc) {
    return doc("Switch", "br0", "ovs: {datapathType: netdev}, uplinks: {nics: [eth1, eth2]}" + nioc);
  };
  const std::string nioc =
      ", nioc: {uplinkMbps: 1000, classes: {virtualmachine: {shares: high, reservationMbps: 100}, "
      "vmotion: {shares: normal, limitMbps: 400}}}";
  std::string m = kTarget + sw(nioc) + doc("PortGroup", "vmotion", "switch: br0, vlan: 30, niocClass: vmotion") +
                  doc("Port", "vmk1", "portGroup: vmotion") + doc("Port", "vm1", "switch: br0, niocClass: virtualmachine") +
                  doc("Port", "vm2", "switch: br0");
  auto f = ovsManifest(m);
  auto p = vnp("plan -f " + f);
  // vm2 names no class: it is a virtual machine's port, and the plan says so.
  EXPECT_NE(p.out.find("niocClass: \"virtualmachine\"  (default)"), std::string::npos) << p.out << p.err;
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json bond = row("Port", "br0-uplink");
  ASSERT_FALSE(bond.is_null());
  Json qos = table("QoS");
  ASSERT_EQ(qos.size(), 1u);
  EXPECT_EQ(qos[0]["type"], "linux-htb");
  EXPECT_EQ(qos[0]["other_config"]["max-rate"], "1000000000");
  EXPECT_EQ(bond["qos"], qos[0]["_uuid"]);
  // 100 reserved for VMs; the other 900 split 100:50 -> VMs 100+600, vMotion 300 (capped at 400).
  std::map<std::string, Json> queues;
  for (const auto& q : table("Queue")) queues[q["external_ids"]["vnetplan:nioc-class"]] = q["other_config"];
  EXPECT_EQ(queues["virtualmachine"]["min-rate"], "700000000");
  EXPECT_EQ(queues["virtualmachine"]["max-rate"], "1000000000");
  EXPECT_EQ(queues["vmotion"]["min-rate"], "300000000");
  EXPECT_EQ(queues["vmotion"]["max-rate"], "400000000");
  auto flows = [&] {
    auto d = runShell("ovs-ofctl -O OpenFlow13 dump-flows unix:" + (dir / "ovs" / "br0.mgmt").string(), dir);
    std::map<int64_t, std::string> out;  // ofport -> set_queue
    std::istringstream in(d.out);
    for (std::string line; std::getline(in, line);) {
      auto p = line.find("in_port="), q = line.find("set_queue:");
      if (p == std::string::npos || q == std::string::npos) continue;
      out[std::stoll(line.substr(p + 8))] = line.substr(q + 10, line.find(',', q) - q - 10);
    }
    return out;
  };
  auto ofport = [&](const std::string& name) { return row("Interface", name)["ofport"].get<int64_t>(); };
  auto fl = flows();
  EXPECT_EQ(fl.size(), 1u);            // virtualmachine = queue 0, where linux-htb puts what no flow classifies
  EXPECT_EQ(fl[ofport("vmk1")], "1");  // vmotion via the port group = queue 1
  EXPECT_EQ(row("Port", "vm2")["external_ids"]["vnetplan:nioc-class"], "virtualmachine");
  std::map<std::string, std::string> queueOf;  // queue id -> class
  for (const auto& [id, uuid] : qos[0]["queues"].items())
    for (const auto& q : table("Queue"))
      if (q["_uuid"] == uuid) queueOf[id] = q["external_ids"]["vnetplan:nioc-class"];
  EXPECT_EQ(queueOf["0"], "virtualmachine") << qos[0].dump() << "vm2 has no niocClass: its traffic is a virtual machine's";
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);

  // Flows are changed in place: a port whose class does not change keeps its flow (never deleted and re-added,
  // so never a moment without it); a port changing class has its flow modified; a new one added, a stale one
  // deleted last. OpenFlow's flow duration shows which flows were left alone.
  auto durations = [&] {
    auto d = runShell("ovs-ofctl -O OpenFlow13 dump-flows unix:" + (dir / "ovs" / "br0.mgmt").string(), dir);
    std::map<int64_t, double> out;  // ofport -> seconds since the flow was added
    std::istringstream in(d.out);
    for (std::string line; std::getline(in, line);) {
      auto p = line.find("in_port="), t = line.find("duration=");
      if (p == std::string::npos || t == std::string::npos || line.find("set_queue:") == std::string::npos) continue;
      out[std::stoll(line.substr(p + 8))] = std::stod(line.substr(t + 9));
    }
    return out;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  {
    // vm1 joins vmotion (a flow added); then moves on to a new class, management (its flow modified in place).
    std::string moved = m;
    moved.replace(moved.find("niocClass: virtualmachine}"), 26, "niocClass: vmotion}");
    auto mv = vnp("apply --auto-approve -f " + ovsManifest(moved, "moved.yaml"));
    ASSERT_EQ(mv.exitCode, 0) << mv.out << mv.err;
    EXPECT_EQ(flows()[ofport("vm1")], "1");
    EXPECT_GE(durations()[ofport("vmk1")], 1.4) << "an unchanged flow was deleted and re-added";
    std::string managed = moved;
    managed.replace(managed.find("niocClass: vmotion}", managed.find("name: vm1}")), 19, "niocClass: management}");
    managed.replace(managed.find("vmotion: {shares: normal, limitMbps: 400}"), 41,
                    "vmotion: {shares: normal, limitMbps: 400}, management: {shares: low}");
    mv = vnp("apply --auto-approve -f " + ovsManifest(managed, "managed.yaml"));
    ASSERT_EQ(mv.exitCode, 0) << mv.out << mv.err;
    EXPECT_EQ(flows()[ofport("vm1")], "2");
    EXPECT_GE(durations()[ofport("vmk1")], 1.4) << "an unchanged flow was deleted and re-added";
    // Back: vm1's flow is deleted (last), vmk1's still untouched.
    ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
    EXPECT_EQ(flows().count(ofport("vm1")), 0u);
    EXPECT_GE(durations()[ofport("vmk1")], 1.4);
  }

  // A flow someone else made for vm2 at vnetplan's priority: giving vm2 a class is refused, not overwritten.
  const std::string mgmt = "unix:" + (dir / "ovs" / "br0.mgmt").string();
  ASSERT_EQ(runShell("ovs-ofctl -O OpenFlow13 add-flow " + mgmt + " priority=1000,in_port=" + std::to_string(ofport("vm2")) +
                         ",actions=drop",
                     dir)
                .exitCode,
            0);
  std::string withVm2 = m;
  const size_t vm2 = withVm2.find("switch: br0}", withVm2.find("name: vm2}"));
  withVm2.replace(vm2, 12, "switch: br0, niocClass: vmotion}");
  auto refused = vnp("apply --auto-approve -f " + ovsManifest(withVm2, "vm2.yaml"));
  EXPECT_EQ(refused.exitCode, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("a flow vnetplan did not make already matches"), std::string::npos) << refused.err;
  EXPECT_NE(runShell("ovs-ofctl -O OpenFlow13 dump-flows " + mgmt, dir).out.find("actions=drop"), std::string::npos);
  ASSERT_EQ(runShell("ovs-ofctl -O OpenFlow13 del-flows --strict " + mgmt + " priority=1000,in_port=" +
                         std::to_string(ofport("vm2")),
                     dir)
                .exitCode,
            0);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);

  // Drift: a flow deleted and a queue rate changed by hand.
  ASSERT_EQ(runShell("ovs-ofctl -O OpenFlow13 del-flows unix:" + (dir / "ovs" / "br0.mgmt").string() + " in_port=" +
                         std::to_string(ofport("vmk1")),
                     dir)
                .exitCode,
            0);
  std::string vmotionQueue;
  for (const auto& q : table("Queue"))
    if (q["external_ids"]["vnetplan:nioc-class"] == "vmotion") vmotionQueue = q["_uuid"];
  ASSERT_EQ(vsctl("set queue " + vmotionQueue + " other_config:max-rate=5").exitCode, 0);
  auto d = vnp("drift -f " + f);
  EXPECT_EQ(d.exitCode, 2) << d.out << d.err;
  EXPECT_NE(d.out.find("ovs.niocFlow"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("ovs.niocRates.vmotion"), std::string::npos) << d.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_EQ(flows().size(), 1u);
  EXPECT_EQ(vnp("drift -f " + f).exitCode, 0);

  // Update: a port leaves its class; the switch's NIOC changes (new QoS rows, old ones deleted: root tables).
  std::string next = kTarget + sw(", nioc: {uplinkMbps: 2000, classes: {vmotion: {shares: 100}}}") +
                     doc("PortGroup", "vmotion", "switch: br0, vlan: 30, niocClass: vmotion") +
                     doc("Port", "vmk1", "portGroup: vmotion") + doc("Port", "vm1", "switch: br0") + doc("Port", "vm2", "switch: br0");
  auto g = ovsManifest(next, "next.yaml");
  r = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(table("QoS").size(), 1u);
  // The old queues are deleted; virtualmachine is there with normal shares although the manifest names only
  // vmotion: 2000 Mbit/s split 50:100.
  ASSERT_EQ(table("Queue").size(), 2u);
  queues.clear();
  for (const auto& q : table("Queue")) queues[q["external_ids"]["vnetplan:nioc-class"]] = q["other_config"];
  EXPECT_EQ(queues["virtualmachine"]["min-rate"], "666666666");
  EXPECT_EQ(queues["vmotion"]["min-rate"], "1333333333");
  fl = flows();
  EXPECT_EQ(fl.size(), 1u);
  EXPECT_EQ(fl[ofport("vmk1")], "1");
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);

  // Rollback after the commit restores the rows and the flows of the pre-image.
  r = vnp("apply --auto-approve -f " + f, "VNETPLAN_FAIL_AFTER_COMMIT=1");
  ASSERT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("Rolled back"), std::string::npos) << r.err;
  EXPECT_EQ(table("Queue").size(), 2u);
  EXPECT_EQ(flows().size(), 1u);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);

  // The uplink bond removed by hand orphans its QoS and Queue (root tables): the next apply re-creates the
  // uplink and deletes the orphans.
  ASSERT_EQ(vsctl("del-port br0 br0-uplink").exitCode, 0);
  EXPECT_EQ(table("QoS").size(), 1u);
  r = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(table("QoS").size(), 1u);
  EXPECT_EQ(table("Queue").size(), 2u);
  EXPECT_EQ(row("Port", "br0-uplink")["qos"], table("QoS")[0]["_uuid"]);

  // Everything removed: no QoS or Queue row is left behind, no vnetplan flow either.
  ASSERT_EQ(vnp("apply --auto-approve -f " + ovsManifest(kTarget, "empty.yaml")).exitCode, 0);
  EXPECT_TRUE(table("QoS").empty());
  EXPECT_TRUE(table("Queue").empty());
}

// Plans whose steps interact inside one transaction (found in review): each applies, verifies, and leaves an
// empty second plan.
TEST_F(CliOvs, StepsThatInteractInOneTransaction) {
  ip("link add eth1 type veth peer name eth1-p");
  auto manifestOf = [&](const std::string& brMtu, const std::string& webSwitch, const std::string& vm1Type,
                        bool oldGroup, bool mirror) {
    return kTarget + doc("Switch", "br0", "mtu: " + brMtu + ", ovs: {datapathType: netdev}") +
           doc("Switch", "br1", "ovs: {datapathType: netdev}") +
           doc("PortGroup", "web", "switch: " + webSwitch + ", vlan: 10") +
           (oldGroup ? doc("PortGroup", "old", "switch: br0, vlan: 99") : "") +
           doc("Port", "vm1", "portGroup: web, type: " + vm1Type) + doc("Port", "vm2", "portGroup: web") +
           doc("Port", "up1", "switch: br0, vlan: 7") +
           (mirror ? doc("Mirror", "span", "switch: br0, source: {ports: [up1]}, destination: {port: vm1}") : "");
  };
  auto applyAndCheck = [&](const std::string& yaml, const std::string& file) {
    auto m = ovsManifest(yaml, file);
    auto r = vnp("apply --auto-approve -f " + m);
    EXPECT_EQ(r.exitCode, 0) << file << "\n" << r.out << r.err;
    auto p = vnp("plan --detailed-exitcode -f " + m);
    EXPECT_EQ(p.exitCode, 0) << file << "\n" << p.out << p.err;
  };
  applyAndCheck(manifestOf("1600", "br0", "internal", true, true), "start.yaml");
  // A PortGroup removed while its bridge's own settings change: the group stays removed.
  applyAndCheck(manifestOf("1500", "br0", "internal", false, true), "a.yaml");
  EXPECT_EQ(row("Bridge", "br0")["external_ids"].count("vnetplan:portgroup:old"), 0u);
  // The mirror's output port replaced (new type): the mirror keeps it.
  applyAndCheck(manifestOf("1500", "br0", "tap", false, true), "b.yaml");
  EXPECT_EQ(row("Interface", "vm1")["type"], "tap");
  EXPECT_EQ(row("Mirror", "span")["output_port"], row("Port", "vm1")["_uuid"]);
  // The port group moves to br1: its members move with it.
  applyAndCheck(manifestOf("1500", "br1", "tap", false, false), "c.yaml");
  auto on = [&](const std::string& bridge, const std::string& port) {
    Json ports = row("Bridge", bridge)["ports"];
    Json u = row("Port", port)["_uuid"];
    if (!ports.is_array()) return ports == u;
    return std::find(ports.begin(), ports.end(), u) != ports.end();
  };
  EXPECT_TRUE(on("br1", "vm1"));
  EXPECT_TRUE(on("br1", "vm2"));
  EXPECT_FALSE(on("br0", "vm1"));
  EXPECT_EQ(tagOf(row("Port", "vm1")), 10);
  // A switch renamed that keeps its uplink NIC, in one transaction.
  applyAndCheck(kTarget + doc("Switch", "bry", "ovs: {datapathType: netdev}, uplinks: {nics: [eth1]}"), "d1.yaml");
  applyAndCheck(kTarget + doc("Switch", "brz", "ovs: {datapathType: netdev}, uplinks: {nics: [eth1]}"), "d2.yaml");
  EXPECT_TRUE(row("Bridge", "bry").is_null());
  EXPECT_FALSE(row("Bridge", "brz").is_null());
  EXPECT_FALSE(row("Interface", "eth1").is_null());
}

// issue 9: an internal port is a host interface. `up` and `addresses` are set on its kernel device in the Target's
// netns (where ovs-vswitchd makes it), shown, drift when changed with ip, and rolled back exactly after the kernel
// refuses one. A mirror's internal output port left down drops every mirrored frame (and the plan warns); up, it
// receives them.
TEST_F(CliOvs, InternalPortUpAndAddressesAndAMirrorOutputThatReceives) {
  const std::string target = "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: hv1}\n"
                             "spec: {provider: ovs, db: \"OVSDB\", netns: NETNS}\n";
  for (const char* vm : {"a", "b"}) {
    const std::string vns = ns + "-" + vm;
    ASSERT_EQ(std::system(("ip netns add " + vns).c_str()), 0);
    extraNetns.push_back(vns);
    ip(std::string("link add vm") + vm + " type veth peer name eth0 netns " + vns);
    ip(std::string("link set vm") + vm + " up");
    runShell("ip -n " + vns + " addr add 10.7.0." + (vm[0] == 'a' ? "1" : "2") + "/24 dev eth0 && ip -n " + vns +
                 " link set eth0 up",
             dir);
  }
  auto manifestWith = [&](const std::string& mgmt, const std::string& span, const std::string& file) {
    return ovsManifest(target + doc("Switch", "br0", "ovs: {datapathType: netdev}") +
                           doc("Port", "vma", "switch: br0, type: system") +
                           doc("Port", "vmb", "switch: br0, type: system") +
                           doc("Port", "mgmt0", "switch: br0" + mgmt) + doc("Port", "span0", "switch: br0" + span) +
                           doc("Mirror", "m1", "switch: br0, source: {ports: [vma]}, destination: {port: span0}"),
                       file);
  };
  auto addrsOf = [&](const std::string& dev) {
    std::vector<std::string> out;
    auto r = runShell("ip -n " + ns + " -j addr show dev " + dev, dir);
    if (r.exitCode != 0 || r.out.empty()) return out;
    for (const auto& l : Json::parse(r.out))
      for (const auto& a : l.value("addr_info", Json::array()))
        if (a.value("scope", "") != "link") out.push_back(a.value("local", "") + "/" + std::to_string(a.value("prefixlen", 0)));
    std::sort(out.begin(), out.end());
    return out;
  };
  auto isUp = [&](const std::string& dev) {
    const Json flags = links()[dev].value("flags", Json::array());
    return std::find(flags.begin(), flags.end(), "UP") != flags.end();
  };
  auto rxPackets = [&](const std::string& dev) -> int64_t {
    auto r = runShell("ip -n " + ns + " -s -j link show dev " + dev, dir);
    if (r.exitCode != 0 || r.out.empty()) return -1;
    return Json::parse(r.out)[0]["stats64"]["rx"].value("packets", int64_t{-1});
  };
  auto pingAB = [&] { return runShell("ip netns exec " + ns + "-a ping -c 3 -i 0.3 -W 2 10.7.0.2", dir); };

  // The mirror's output port without up: a warning, and the mirrored frames never reach its device.
  auto f = manifestWith(", up: true, addresses: [10.9.0.1/24]", "", "f.yaml");
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("its output port span0 is an internal port"), std::string::npos) << r.err;
  EXPECT_TRUE(isUp("mgmt0"));
  EXPECT_EQ(addrsOf("mgmt0"), std::vector<std::string>{"10.9.0.1/24"});
  EXPECT_FALSE(isUp("span0"));
  auto ping = pingAB();
  ASSERT_EQ(ping.exitCode, 0) << ping.out << ping.err;
  EXPECT_LE(rxPackets("span0"), 0);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << "second plan is empty";

  // up: true on the output port: the mirrored frames arrive.
  auto g = manifestWith(", up: true, addresses: [10.9.0.1/24]", ", up: true", "g.yaml");
  r = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("its output port span0"), std::string::npos) << r.err;
  EXPECT_TRUE(isUp("span0"));
  const int64_t before = rxPackets("span0");
  ping = pingAB();
  ASSERT_EQ(ping.exitCode, 0) << ping.out << ping.err;
  EXPECT_GE(rxPackets("span0") - before, 3) << "mirrored echo requests reach the output port's device";
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);

  // show renders them; re-applied, nothing to do.
  auto shown = vnp("show --target hv1 -f " + g);
  ASSERT_EQ(shown.exitCode, 0) << shown.err;
  EXPECT_NE(shown.out.find("10.9.0.1/24"), std::string::npos) << shown.out;
  auto again = ovsManifest(target + shown.out, "shown.yaml");
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + again).exitCode, 0) << shown.out;

  // Drift: an address removed and the port set down with ip; apply puts both back.
  ip("addr del 10.9.0.1/24 dev mgmt0");
  ip("link set mgmt0 down");
  r = vnp("drift -f " + g);
  EXPECT_EQ(r.exitCode, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("addresses"), std::string::npos) << r.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_TRUE(isUp("mgmt0"));
  EXPECT_EQ(addrsOf("mgmt0"), std::vector<std::string>{"10.9.0.1/24"});

  // The kernel refuses an IPv6 address on a device with IPv6 off, after the old address went and the new IPv4
  // one came: the apply fails and rolls back to exactly what was there, in OVSDB and in the kernel.
  ASSERT_EQ(runShell("ip netns exec " + ns + " sysctl -qw net.ipv6.conf.mgmt0.disable_ipv6=1", dir).exitCode, 0);
  const std::string db = dbSnapshot();
  auto h = manifestWith(", up: true, addresses: [10.9.1.1/24, \"2001:db8::1/64\"], mtu: 1400", ", up: true", "h.yaml");
  r = vnp("apply --auto-approve -f " + h);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("2001:db8::1/64"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rolled back"), std::string::npos) << r.err;
  EXPECT_EQ(addrsOf("mgmt0"), std::vector<std::string>{"10.9.0.1/24"});
  EXPECT_TRUE(isUp("mgmt0"));
  EXPECT_EQ(dbSnapshot(), db);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);

  // up / addresses belong to internal ports only.
  auto bad = ovsManifest(target + doc("Switch", "br0", "ovs: {datapathType: netdev}") +
                             doc("Port", "vma", "switch: br0, type: system, up: true"),
                         "bad.yaml");
  r = vnp("validate -f " + bad);
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE((r.out + r.err).find("up and addresses belong to internal ports"), std::string::npos) << r.out << r.err;
}
