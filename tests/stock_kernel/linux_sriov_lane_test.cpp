// vnetplan's SR-IOV ports on Debian's stock kernel (the stock-kernel lane, scripts/vmlane/), proven on netdevsim:
// a kernel test device whose PF keeps a real VF table (sriov_numvfs in sysfs, `ip link set PF vf N ...`). Each
// test makes a netdevsim device, moves its port into the test's namespace as pf0 and removes the device at the
// end. Checks go through `ip -j link show` (IFLA_VFINFO_LIST as iproute2 reads it) and sysfs. On a kernel without
// netdevsim (the CI machines') each test SKIPs with the reason.
#include <fstream>

#include "tests/integration/harness.h"

using namespace vnptest;

namespace {

const char* kTarget = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: t1}
spec: {provider: linux, netns: NETNS}
)";

std::string doc(const std::string& body) { return "---\napiVersion: vnetplan.io/v1\n" + body; }
std::string obj(const std::string& kind, const std::string& name, const std::string& spec) {
  return doc("kind: " + kind + "\nmetadata: {name: " + name + "}\nspec: {targets: [t1], " + spec + "}\n");
}
std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}
bool writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

class LinuxSriovLane : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!fs::exists("/sys/bus/netdevsim/new_device"))
      GTEST_SKIP() << "SKIPPED: this kernel has no netdevsim (/sys/bus/netdevsim; CONFIG_NETDEVSIM is off in "
                      "Debian's kernel, the stock-kernel lane builds it out of tree)";
    static int next = 100;
    id = ++next + getpid() % 1000 * 10;
    ASSERT_TRUE(writeText("/sys/bus/netdevsim/new_device", std::to_string(id) + " 1"));
    dev = "/sys/bus/netdevsim/devices/netdevsim" + std::to_string(id);
    std::string name;
    for (int i = 0; i < 100 && name.empty(); ++i) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(dev + "/net", ec)) name = e.path().filename().string();
      if (name.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_FALSE(name.empty()) << "netdevsim" << id << " made no netdev";
    ASSERT_EQ(std::system(("ip link set " + name + " netns " + ns).c_str()), 0);
    ip("link set " + name + " name pf0");
  }
  void TearDown() override {
    if (id) (void)writeText("/sys/bus/netdevsim/del_device", std::to_string(id));
    NetnsTest::TearDown();
  }

  int numVfs() { return std::stoi(readText(dev + "/sriov_numvfs")); }
  Json pf() { return links()["pf0"]; }
  Json vf(int n) {
    for (const auto& v : pf().value("vfinfo_list", Json::array()))
      if (v.value("vf", -1) == n) return v;
    return Json::object();
  }
  // The PF's VF table and records, and its VF count: what a rollback must give back exactly.
  std::string snapshot() {
    Json p = pf();
    return std::to_string(numVfs()) + " " + p.value("vfinfo_list", Json::array()).dump() + " " +
           p.value("altnames", Json::array()).dump();
  }
  void injectFailures(const std::string& next, int steps, const std::string& current) {
    const std::string before = snapshot();
    for (int k = 1; k <= steps; ++k) {
      auto r = runShell("VNETPLAN_FAIL_AT_STEP=" + std::to_string(k) + " " + std::string(VNETPLAN_BINARY) +
                            " --state file://" + (dir / "state").string() + " apply --auto-approve -f " + next,
                        dir);
      ASSERT_EQ(r.exitCode, 1) << "k=" << k << "\n" << r.out << r.err;
      EXPECT_EQ(snapshot(), before) << "k=" << k << "\n" << r.err;
      EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + current).exitCode, 0) << "k=" << k;
    }
  }
  void showRoundTrip(const std::string& f) {
    auto r = vnetplan("show --target t1 -f " + f);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto g = manifest(std::string(kTarget) + r.out, "shown.yaml");
    auto p = vnetplan("plan --detailed-exitcode -f " + g);
    EXPECT_EQ(p.exitCode, 0) << p.out << p.err << r.out;
  }
  int id = 0;
  std::string dev;
};

// Every VF field: create, second plan empty, update, drift after `ip link set pf0 vf N ...`, show, rollback after
// an injected failure, and removal giving the VF back as it was.
TEST_F(LinuxSriovLane, VfFieldsCreateUpdateDriftRollbackRemove) {
  const std::string nic = obj("Port", "pf0", "type: nic, adopt: true, linux: {sriov: {numVfs: 2}}");
  const std::string vm1 =
      obj("Port", "vm1", "type: vf, link: pf0, vf: 0, mac: \"52:54:00:00:0f:01\", vlan: 10, linux: {vlanQos: 3, "
                         "minTxRate: 10}, shaping: {averageKbps: 100000}, security: {allowForgedTransmits: false, "
                         "allowMacChanges: true}, linkState: enable");
  const std::string vm2 = obj("Port", "vm2", "type: vf, link: pf0, vf: 1, mac: \"52:54:00:00:0f:02\"");
  auto f = manifest(kTarget + nic + vm1 + vm2);
  auto r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(numVfs(), 2);
  Json v0 = vf(0);
  EXPECT_EQ(v0.value("address", ""), "52:54:00:00:0f:01") << v0.dump();
  ASSERT_TRUE(v0.contains("vlan_list")) << v0.dump();
  EXPECT_EQ(v0["vlan_list"][0].value("vlan", 0), 10) << v0.dump();
  EXPECT_EQ(v0["vlan_list"][0].value("qos", 0), 3) << v0.dump();
  EXPECT_EQ(v0["rate"].value("max_tx", 0), 100) << v0.dump();
  EXPECT_EQ(v0["rate"].value("min_tx", 0), 10) << v0.dump();
  EXPECT_EQ(v0.value("spoofchk", false), true) << v0.dump();
  EXPECT_EQ(v0.value("trust", false), true) << v0.dump();
  EXPECT_EQ(v0.value("link_state", ""), "enable") << v0.dump();
  EXPECT_EQ(vf(1).value("address", ""), "52:54:00:00:0f:02");
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);
  showRoundTrip(f);

  // Update in place, first rolled back exactly after an injected failure.
  const std::string vm1b =
      obj("Port", "vm1", "type: vf, link: pf0, vf: 0, mac: \"52:54:00:00:0f:11\", vlan: 20, linux: {vlanQos: 0, "
                         "minTxRate: 0}, shaping: {averageKbps: 200000}, security: {allowForgedTransmits: true, "
                         "allowMacChanges: false}, linkState: disable");
  auto g = manifest(kTarget + nic + vm1b + vm2, "g.yaml");
  injectFailures(g, 1, f);
  r = vnetplan("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  v0 = vf(0);
  EXPECT_EQ(v0.value("address", ""), "52:54:00:00:0f:11") << v0.dump();
  EXPECT_EQ(v0["vlan_list"][0].value("vlan", 0), 20) << v0.dump();
  EXPECT_EQ(v0["rate"].value("max_tx", 0), 200) << v0.dump();
  EXPECT_EQ(v0["rate"].value("min_tx", -1), 0) << v0.dump();
  EXPECT_EQ(v0.value("spoofchk", true), false) << v0.dump();
  EXPECT_EQ(v0.value("trust", true), false) << v0.dump();
  EXPECT_EQ(v0.value("link_state", ""), "disable") << v0.dump();
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + g).exitCode, 0);

  // Drift: a VF setting changed by hand is found and repaired.
  ip("link set pf0 vf 0 vlan 30");
  ip("link set pf0 vf 0 trust on");
  r = vnetplan("drift -f " + g);
  EXPECT_EQ(r.exitCode, 2) << r.out;
  EXPECT_NE(r.out.find("vlan"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("security.allowMacChanges"), std::string::npos) << r.out;
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_EQ(vf(0)["vlan_list"][0].value("vlan", 0), 20);
  EXPECT_EQ(vf(0).value("trust", true), false);

  // A new vf Port on a VF set by hand: creating it, rolled back, gives the VF back exactly (its record too).
  ip("link set pf0 vf 1 vlan 7 qos 1");
  auto h = manifest(kTarget + nic + vm1b + vm2 + obj("Port", "vm3", "type: vf, link: pf0, vf: 1, vlan: 8"), "h.yaml");
  // vm2 already is VF 1: a second Port on it is refused at apply, the VF left alone.
  r = vnetplan("apply --auto-approve -f " + h);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("already the Port vm2"), std::string::npos) << r.err;
  EXPECT_EQ(vf(1)["vlan_list"][0].value("vlan", 0), 7);

  // Removal: VF 1 goes back to how it was before vm2 (blank mac), the record goes.
  auto k = manifest(kTarget + nic + vm1b, "k.yaml");
  r = vnetplan("apply --auto-approve -f " + k);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(vf(1).value("address", ""), "00:00:00:00:00:00") << vf(1).dump();
  EXPECT_EQ(pf().value("altnames", Json::array()).size(), 1u) << pf().dump();
  // Creation rolled back: the VF and the PF's records exactly as before.
  auto m = manifest(kTarget + nic + vm1b + obj("Port", "vm3", "type: vf, link: pf0, vf: 1, vlan: 8, linkState: enable"),
                    "m.yaml");
  injectFailures(m, 1, k);
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + m).exitCode, 0);
  EXPECT_EQ(vf(1)["vlan_list"][0].value("vlan", 0), 8);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + m).exitCode, 0);
}

// numVfs: set on an adopted NIC; a new count is planned as a disruptive replace of every VF, applied through 0,
// and the vf Ports keep their settings; rolled back exactly; released back to the count it had.
TEST_F(LinuxSriovLane, NumVfsChangeIsADisruptiveReplaceOfEveryVf) {
  const std::string vm1 = obj("Port", "vm1", "type: vf, link: pf0, vf: 0, vlan: 10, mac: \"52:54:00:00:0f:01\"");
  auto f = manifest(kTarget + obj("Port", "pf0", "type: nic, adopt: true, linux: {sriov: {numVfs: 2}}") + vm1);
  auto r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(numVfs(), 2);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);

  auto g = manifest(kTarget + obj("Port", "pf0", "type: nic, adopt: true, linux: {sriov: {numVfs: 4}}") + vm1, "g.yaml");
  r = vnetplan("plan -f " + g);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE((r.out + r.err).find("linux.sriov.numVfs 2 -> 4 replaces every VF of pf0"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("t1/Port/pf0  [disruptive]"), std::string::npos) << r.out;
  auto j = vnetplan("plan --format json -f " + g);
  ASSERT_EQ(j.exitCode, 0) << j.err;
  bool said = false;
  for (const auto& c : Json::parse(j.out).value("resource_changes", Json::array()))
    if (c.value("address", "") == "t1/Port/pf0") {
      EXPECT_TRUE(c.value("disruptive", false)) << c.dump();
      said = c.value("description", "").find("replaces every VF of pf0: the kernel removes all 2 VFs before it makes 4") !=
             std::string::npos;
    }
  EXPECT_TRUE(said) << j.out;
  injectFailures(g, 1, f);
  r = vnetplan("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(numVfs(), 4);
  EXPECT_EQ(vf(0)["vlan_list"][0].value("vlan", 0), 10);
  EXPECT_EQ(vf(3).value("vf", -1), 3);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + g).exitCode, 0);
  showRoundTrip(g);
  // `show --all` imports the VFs no Port names too (as <pf>v<N>, to adopt), set by hand or not.
  ip("link set pf0 vf 3 vlan 33 qos 2");
  auto all = vnetplan("show --all --target t1 -f " + g);
  ASSERT_EQ(all.exitCode, 0) << all.err;
  const auto at = all.out.find("name: pf0v3");
  ASSERT_NE(at, std::string::npos) << all.out;
  const std::string v3 = all.out.substr(at, all.out.find("---", at) - at);
  for (const char* want : {"type: vf", "link: pf0", "vf: 3", "vlan: 33", "vlanQos: 2", "adopt: true"})
    EXPECT_NE(v3.find(want), std::string::npos) << want << "\n" << v3;
  EXPECT_NE(all.out.find("name: pf0v1"), std::string::npos) << all.out;
  EXPECT_EQ(all.out.find("name: pf0v0"), std::string::npos) << all.out;  // VF 0 is vm1

  // Out of the manifests: the VF goes back to blank, the NIC to the count it had when adopted (0).
  auto empty = manifest(kTarget, "empty.yaml");
  r = vnetplan("apply --auto-approve -f " + empty);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(numVfs(), 0);
  EXPECT_EQ(pf().value("altnames", Json::array()), Json::array());
}

// What a PF or driver cannot do is a plan error naming the driver and the field.
TEST_F(LinuxSriovLane, PlanErrorsNameTheDriverAndTheField) {
  ip("link add v0 type veth peer name v0p");
  auto f = manifest(kTarget + obj("Port", "vm1", "type: vf, link: v0, vf: 0") +
                    obj("Port", "v0p", "type: nic, adopt: true, linux: {sriov: {numVfs: 2}}") +
                    obj("Port", "vm2", "type: vf, link: pf0, vf: 1, shaping: {averageKbps: 1500, peakKbps: 2000}") +
                    obj("Port", "vm3", "type: vf, link: pf0, vf: 2, vlan: {trunk: [10]}, up: false"));
  auto r = vnetplan("plan -f " + f);
  EXPECT_EQ(r.exitCode, 1) << r.out;
  for (const char* want : {"field link of Port vm1: v0 (driver veth) has no SR-IOV virtual functions",
                           "field linux.sriov.numVfs of Port v0p: v0p (driver veth) has no SR-IOV",
                           "shaping.averageKbps of a vf Port must be whole Mbps",
                           "field shaping.peakKbps of Port vm2: a VF's rate limiter has one rate", "a trunk is not possible",
                           "use linkState"})
    EXPECT_NE(r.err.find(want), std::string::npos) << want << "\n" << r.err;
}
