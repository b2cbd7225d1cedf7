// vnetplan's linux provider on Debian's stock kernel (the stock-kernel lane, scripts/vmlane/): uplink bonds and
// VLAN port groups, which need bonding, bridge VLAN filtering and 802.1Q that the CI machines' kernel lacks. The
// vnetplan binary drives the kernel in a namespace each test creates and removes; checks go through `ip -j`,
// `bridge -j vlan`, carrier failover and real frames. On a kernel without the feature each test SKIPs with the
// reason.
#include <sys/utsname.h>

#include <fstream>
#include <functional>
#include <tuple>

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
// Polls until `pred` holds; under TCG the kernel's timers and the polls are slow.
bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}
// The records vnetplan keeps as altnames, in name order (the kernel lists them in the order they were added).
std::string sortedAltnames(const Json& l) {
  std::vector<std::string> names;
  for (const auto& a : l.value("altnames", Json::array())) names.push_back(a.get<std::string>());
  std::sort(names.begin(), names.end());
  return Json(names).dump();
}
std::string readText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
std::string kernelRelease() {
  utsname u{};
  return ::uname(&u) == 0 ? u.release : "";
}
bool isUp(const Json& l) {
  const Json flags = l.value("flags", Json::array());
  return std::find(flags.begin(), flags.end(), "UP") != flags.end();
}

}  // namespace

class LinuxL2Lane : public NetnsTest {
 protected:
  // SKIPs the test unless the kernel makes a `type` device (tried in the test's namespace, then removed).
  bool kernelHas(const std::string& args, const std::string& feature) {
    auto r = runShell("ip -n " + ns + " link add vnpprobe " + args + " && ip -n " + ns + " link del vnpprobe", dir);
    if (r.exitCode != 0) {
      why = "SKIPPED: this kernel has no " + feature + " (" + r.err + ")";
      return false;
    }
    return true;
  }
  // 802.1Q needs a lower device that takes VLANs (not lo): a throwaway veth pair.
  bool kernelHasVlanDevices() {
    auto r = runShell("ip -n " + ns + " link add vnpprobe0 type veth peer name vnpprobe1 && ip -n " + ns +
                          " link add link vnpprobe0 name vnpprobe0.10 type vlan id 10; rc=$?; ip -n " + ns +
                          " link del vnpprobe0; exit $rc",
                      dir);
    if (r.exitCode != 0) {
      why = "SKIPPED: this kernel has no 802.1Q VLAN devices (" + r.err + ")";
      return false;
    }
    return true;
  }
  std::string why;
  void nic(const std::string& name, const std::string& farNs = "") {
    ip("link add " + name + " type veth peer name " + name + "-far");
    if (!farNs.empty()) ip("link set " + name + "-far netns " + farNs);
    else ip("link set " + name + "-far up");
  }
  Json bridgeVlans() {
    auto r = runShell("bridge -n " + ns + " -j vlan show", dir);
    return r.exitCode == 0 && !r.out.empty() ? Json::parse(r.out) : Json::array();
  }
  // "pvid untagged" style summary of one port's VLAN entries.
  std::string vlansOf(const std::string& dev) {
    std::string out;
    for (const auto& p : bridgeVlans()) {
      if (p.value("ifname", "") != dev) continue;
      for (const auto& v : p.value("vlans", Json::array())) {
        out += std::to_string(v.value("vlan", 0));
        for (const auto& f : v.value("flags", Json::array()))
          out += f == "PVID" ? "P" : f == "Egress Untagged" ? "U" : "";
        out += " ";
      }
    }
    return out;
  }
  std::string snapshot() {
    std::string out;
    for (auto [name, l] : links()) {
      if (name == "lo") continue;
      Json info = l.value("linkinfo", Json::object());
      Json data = info.value("info_data", Json::object());
      data.erase("active_slave");  // chosen by the kernel
      for (const char* k : {"gc_timer", "hello_timer", "tcn_timer", "topology_change_timer", "bridge_id", "root_id"})
        data.erase(k);
      data.erase("ad_info");
      out += name + " kind=" + info.value("info_kind", "") + " data=" + data.dump() +
             " mtu=" + std::to_string(l.value("mtu", 0)) + " master=" + l.value("master", "") +
             " up=" + (isUp(l) ? "1" : "0") + " alt=" + sortedAltnames(l) +
             " vlans=" + vlansOf(name) + "\n";
    }
    return out;
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
};

TEST_F(LinuxL2Lane, FailoverBondUplinkCreateUpdateDriftRollbackFailoverRelease) {
  if (!kernelHas("type bond", "bonding")) GTEST_SKIP() << why;
  nic("eth1");
  nic("eth2");
  const std::string vm = obj("Port", "vm1", "switch: br0, type: tap, mac: \"52:54:00:00:0d:01\"");
  auto f = manifest(kTarget + obj("Switch", "br0", "stp: false, uplinks: {nics: [eth1, eth2], teaming: "
                                                   "{policy: failover, active: [eth1]}}") + vm);
  auto r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto l = links();
  ASSERT_TRUE(l.count("br0-bond")) << r.out;
  const Json bond = l["br0-bond"]["linkinfo"]["info_data"];
  EXPECT_EQ(bond["mode"], "active-backup");
  EXPECT_EQ(bond["miimon"], 100);
  EXPECT_EQ(bond["primary"], "eth1");
  EXPECT_EQ(l["br0-bond"]["master"], "br0");
  EXPECT_EQ(l["eth1"]["master"], "br0-bond");
  EXPECT_EQ(l["eth2"]["master"], "br0-bond");
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);
  showRoundTrip(f);

  // The active NIC loses carrier: the bond fails over to eth2.
  ip("link set eth1-far down");
  EXPECT_TRUE(waitFor([&] {
    return links()["br0-bond"]["linkinfo"]["info_data"].value("active_slave", "") == "eth2";
  }, std::chrono::seconds(15)))
      << links()["br0-bond"].dump();
  ip("link set eth1-far up");

  // Update in place: MII timings, rolled back exactly after a failure.
  auto g = manifest(kTarget + obj("Switch", "br0", "stp: false, uplinks: {nics: [eth1, eth2], teaming: "
                                                   "{policy: failover, active: [eth1]}}, linux: {bond: "
                                                   "{miimon: 200, updelay: 400}}") + vm,
                    "g.yaml");
  injectFailures(g, 1, f);
  r = vnetplan("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  l = links();
  EXPECT_EQ(l["br0-bond"]["linkinfo"]["info_data"]["miimon"], 200);
  EXPECT_EQ(l["br0-bond"]["linkinfo"]["info_data"]["updelay"], 400);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + g).exitCode, 0);

  // Policy change failover -> src-mac: balance-xor layer2, in place (the NICs leave and come back).
  auto h = manifest(kTarget + obj("Switch", "br0", "stp: false, uplinks: {nics: [eth1, eth2], teaming: "
                                                   "{policy: src-mac}}") + vm,
                    "h.yaml");
  injectFailures(h, 1, g);
  r = vnetplan("apply --auto-approve -f " + h);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  l = links();
  EXPECT_EQ(l["br0-bond"]["linkinfo"]["info_data"]["mode"], "balance-xor");
  EXPECT_EQ(l["br0-bond"]["linkinfo"]["info_data"]["xmit_hash_policy"], "layer2");
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + h).exitCode, 0);

  // Drift: a NIC taken out of the bond with ip.
  ip("link set eth2 nomaster");
  r = vnetplan("drift -f " + h);
  EXPECT_EQ(r.exitCode, 2) << r.out;
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + h).exitCode, 0);
  EXPECT_EQ(links()["eth2"]["master"], "br0-bond");

  // Prune: the bond goes, the NICs come back as they were (1500, down, no record).
  auto empty = manifest(kTarget, "empty.yaml");
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + empty).exitCode, 0);
  l = links();
  EXPECT_FALSE(l.count("br0-bond"));
  for (const char* n : {"eth1", "eth2"}) {
    ASSERT_TRUE(l.count(n));
    EXPECT_EQ(l[n].value("master", ""), "") << n;
    EXPECT_EQ(l[n]["mtu"], 1500) << n;
    EXPECT_FALSE(isUp(l[n])) << n;
    EXPECT_EQ(l[n].value("altnames", Json::array()), Json::array()) << n;
  }
}

// Each bond mode under a bridge that carries VMs, with its lint outcome (seed 004): 0, 3, 5, 6 are errors naming
// the usable modes; 1, 2, 4 apply; ARP monitoring is a warning.
TEST_F(LinuxL2Lane, EveryBondModeWithItsLintOutcome) {
  if (!kernelHas("type bond", "bonding")) GTEST_SKIP() << why;
  nic("eth1");
  nic("eth2");
  const std::string vm = obj("Port", "vm1", "switch: br0, type: tap");
  for (const std::string mode : {"balance-rr", "broadcast", "balance-tlb", "balance-alb"}) {
    auto f = manifest(kTarget + obj("Switch", "br0", "uplinks: {nics: [eth1, eth2]}, linux: {bond: {mode: " +
                                                         mode + "}}") + vm);
    auto r = vnetplan("plan -f " + f);
    EXPECT_NE(r.exitCode, 0) << mode << r.out;
    EXPECT_NE(r.err.find(mode), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("active-backup"), std::string::npos) << r.err;
  }
  for (const std::string mode : {"active-backup", "balance-xor", "802.3ad"}) {
    auto f = manifest(kTarget + obj("Switch", "br0", "uplinks: {nics: [eth1, eth2]}, linux: {bond: {mode: " +
                                                         mode + "}}") + vm);
    auto r = vnetplan("apply --auto-approve -f " + f);
    ASSERT_EQ(r.exitCode, 0) << mode << r.out << r.err;
    EXPECT_EQ(links()["br0-bond"]["linkinfo"]["info_data"]["mode"], mode);
    EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0) << mode;
  }
  auto f = manifest(kTarget + obj("Switch", "br0", "uplinks: {nics: [eth1, eth2], teaming: {failureDetection: arp}}"
                                                   ", linux: {bond: {arpIpTarget: [192.0.2.1]}}") + vm);
  auto r = vnetplan("plan -f " + f);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("MII"), std::string::npos) << r.err;
}

// Port groups on a VLAN-filtering bridge: two VMs on VLAN 10 reach each other, one on VLAN 20 does not, a trunk
// port and the far end of the uplink see the frames tagged.
TEST_F(LinuxL2Lane, PortGroupVlansCarryRealFrames) {
  if (!kernelHas("type bridge vlan_filtering 1", "bridge VLAN filtering")) GTEST_SKIP() << why;
  std::vector<std::string> vms = {"a", "b", "c", "t"};
  for (const auto& v : vms) {
    ASSERT_EQ(std::system(("ip netns add " + ns + "-" + v).c_str()), 0);
    extraNetns.push_back(ns + "-" + v);
  }
  const std::string far = ns + "-far";
  ASSERT_EQ(std::system(("ip netns add " + far).c_str()), 0);
  extraNetns.push_back(far);
  nic("eth1", far);
  auto vmPort = [&](const std::string& v, const std::string& where) {
    return obj("Port", "vm" + v, where + ", type: veth, peer: eth0, peerNetns: " + ns + "-" + v);
  };
  auto f = manifest(kTarget + obj("Switch", "br0", "stp: false, uplinks: {nics: [eth1]}") +
                    obj("PortGroup", "pg10", "switch: br0, vlan: 10") +
                    obj("PortGroup", "pg20", "switch: br0, vlan: 20") +
                    obj("PortGroup", "trunk", "switch: br0, vlan: {trunk: [10, 20]}") + vmPort("a", "portGroup: pg10") +
                    vmPort("b", "portGroup: pg10") + vmPort("c", "portGroup: pg20") + vmPort("t", "portGroup: trunk"));
  // The plan says which shape the port groups take on this kernel.
  auto r = vnetplan("plan --format json -f " + f);
  EXPECT_NE(r.out.find("VLAN-aware bridge br0"), std::string::npos) << r.out;
  r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(links()["br0"]["linkinfo"]["info_data"]["vlan_filtering"], 1);
  EXPECT_EQ(vlansOf("vma"), "10PU ");
  EXPECT_EQ(vlansOf("vmc"), "20PU ");
  EXPECT_EQ(vlansOf("vmt"), "1PU 10 20 ");
  EXPECT_EQ(vlansOf("eth1"), "1PU 10 20 ");
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);
  showRoundTrip(f);

  auto in = [&](const std::string& v, const std::string& cmd) {
    return runShell("ip netns exec " + ns + "-" + v + " " + cmd, dir);
  };
  int host = 1;
  for (const auto& v : {"a", "b", "c"}) {
    in(v, "ip addr add 10.10.0." + std::to_string(host++) + "/24 dev eth0");
    in(v, "ip link set eth0 up");
  }
  in("t", "ip link set eth0 up");
  runShell("ip -n " + far + " link set eth1-far up", dir);
  // Captures on the trunk VM and the far end of the uplink while a pings b and c.
  auto cap = [&](const std::string& netns, const std::string& dev, const std::string& file) {
    return "ip netns exec " + netns + " timeout 12 tcpdump -U -nn -e -i " + dev + " -w " + (dir / file).string() +
           " vlan >/dev/null 2>&1 &";
  };
  runShell(cap(ns + "-t", "eth0", "trunk.pcap") + cap(far, "eth1-far", "far.pcap") + " sleep 2", dir);
  auto ab = in("a", "ping -c 3 -W 2 10.10.0.2");
  auto ac = in("a", "ping -c 2 -W 1 10.10.0.3");
  EXPECT_EQ(ab.exitCode, 0) << "VLAN 10 to VLAN 10: " << ab.out << ab.err;
  EXPECT_NE(ac.exitCode, 0) << "VLAN 10 must not reach VLAN 20: " << ac.out;
  in("c", "ping -c 2 -W 1 10.10.0.1");
  runShell("sleep 10", dir);
  auto trunk = runShell("tcpdump -nn -e -r " + (dir / "trunk.pcap").string(), dir);
  auto uplink = runShell("tcpdump -nn -e -r " + (dir / "far.pcap").string(), dir);
  EXPECT_NE(trunk.out.find("vlan 10"), std::string::npos) << trunk.out << trunk.err;
  EXPECT_NE(trunk.out.find("vlan 20"), std::string::npos) << trunk.out << trunk.err;
  EXPECT_NE(uplink.out.find("vlan 10"), std::string::npos) << uplink.out << uplink.err;
  EXPECT_NE(uplink.out.find("vlan 20"), std::string::npos) << uplink.out << uplink.err;

  // Moving a port to another port group and changing a port group's VLAN are in-place updates; rollback exact.
  auto g = manifest(kTarget + obj("Switch", "br0", "stp: false, uplinks: {nics: [eth1]}") +
                        obj("PortGroup", "pg10", "switch: br0, vlan: 10") +
                        obj("PortGroup", "pg20", "switch: br0, vlan: 30") +
                        obj("PortGroup", "trunk", "switch: br0, vlan: {trunk: [10, 30]}") +
                        vmPort("a", "portGroup: pg10") + vmPort("b", "portGroup: pg20") +
                        vmPort("c", "portGroup: pg20") + vmPort("t", "portGroup: trunk"),
                    "g.yaml");
  const int index = links()["vmb"]["ifindex"];
  injectFailures(g, 3, f);
  r = vnetplan("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(links()["vmb"]["ifindex"], index);
  EXPECT_EQ(vlansOf("vmb"), "30PU ");
  EXPECT_EQ(vlansOf("vmc"), "30PU ");
  EXPECT_EQ(vlansOf("eth1"), "1PU 10 30 ");
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + g).exitCode, 0);

  // Drift: a VLAN removed with `bridge vlan del`.
  runShell("bridge -n " + ns + " vlan del dev vma vid 10", dir);
  EXPECT_EQ(vnetplan("drift -f " + g).exitCode, 2);
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_EQ(vlansOf("vma"), "10PU ");

  auto empty = manifest(kTarget, "empty.yaml");
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + empty).exitCode, 0);
  auto l = links();
  EXPECT_FALSE(l.count("br0"));
  EXPECT_EQ(l["eth1"].value("master", ""), "");
}

// Port type vlan: an 802.1Q sub-interface of a NIC. Frames leave tagged (the far end's own sub-interface answers);
// MTU updates in place with an exact rollback; a VLAN id change is a replace; drift made with `ip` is repaired.
TEST_F(LinuxL2Lane, VlanPortTagsFramesUpdatesReplacesDriftsAndRollsBack) {
  if (!kernelHasVlanDevices()) GTEST_SKIP() << why;
  const std::string far = ns + "-far";
  ASSERT_EQ(std::system(("ip netns add " + far).c_str()), 0);
  extraNetns.push_back(far);
  nic("eth1", far);
  ip("link set eth1 up");
  auto vlanPort = [&](int vid, int mtu) {
    return obj("Port", "v10", "type: vlan, link: eth1, vlanId: " + std::to_string(vid) + ", mtu: " +
                                  std::to_string(mtu) + ", up: true, addresses: [192.0.2.1/24]");
  };
  auto f = manifest(kTarget + vlanPort(10, 1500));
  auto r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto l = links();
  ASSERT_TRUE(l.count("v10")) << r.out;
  EXPECT_EQ(l["v10"]["linkinfo"]["info_kind"], "vlan");
  EXPECT_EQ(l["v10"]["linkinfo"]["info_data"]["id"], 10);
  EXPECT_EQ(l["v10"]["linkinfo"]["info_data"]["protocol"], "802.1Q");
  EXPECT_EQ(l["v10"].value("link", ""), "eth1");
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);
  showRoundTrip(f);

  // Real frames: only the far end's VLAN 10 sub-interface answers, so a reply proves the tag.
  auto inFar = [&](const std::string& cmd) { return runShell("ip netns exec " + far + " " + cmd, dir); };
  inFar("ip link set eth1-far up");
  inFar("ip link add link eth1-far name far.10 type vlan id 10");
  inFar("ip addr add 192.0.2.2/24 dev far.10");
  inFar("ip link set far.10 up");
  auto ping = runShell("ip netns exec " + ns + " ping -c 3 -W 2 192.0.2.2", dir);
  EXPECT_EQ(ping.exitCode, 0) << ping.out << ping.err;

  // MTU: in place (same ifindex), rolled back exactly after a failure at each step.
  const int index = links()["v10"]["ifindex"];
  auto g = manifest(kTarget + vlanPort(10, 1400), "g.yaml");
  injectFailures(g, 1, f);
  r = vnetplan("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  l = links();
  EXPECT_EQ(l["v10"]["ifindex"], index);
  EXPECT_EQ(l["v10"]["mtu"], 1400);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + g).exitCode, 0);

  // Drift: the MTU changed with ip; the plan shows it and apply repairs it.
  ip("link set v10 mtu 1300");
  r = vnetplan("drift -f " + g);
  EXPECT_EQ(r.exitCode, 2) << r.out;
  EXPECT_NE(r.out.find("mtu"), std::string::npos) << r.out;
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_EQ(links()["v10"]["mtu"], 1400);

  // A VLAN id change cannot be made in place: the plan says replace, and the port comes back on VLAN 20.
  auto h = manifest(kTarget + vlanPort(20, 1400), "h.yaml");
  r = vnetplan("plan -f " + h);
  EXPECT_NE(r.out.find("replace"), std::string::npos) << r.out;
  injectFailures(h, 2, g);
  r = vnetplan("apply --auto-approve -f " + h);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(links()["v10"]["linkinfo"]["info_data"]["id"], 20);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + h).exitCode, 0);
  ping = runShell("ip netns exec " + ns + " ping -c 2 -W 1 192.0.2.2", dir);
  EXPECT_NE(ping.exitCode, 0) << "VLAN 20 must not reach the far end's VLAN 10: " << ping.out;

  // Prune: the sub-interface goes; its NIC stays.
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + manifest(kTarget, "empty.yaml")).exitCode, 0);
  l = links();
  EXPECT_FALSE(l.count("v10"));
  EXPECT_TRUE(l.count("eth1"));
}

// Port groups as a bridge per VLAN over 802.1Q sub-interfaces of the uplink (the shape for kernels without VLAN
// filtering, chosen here with linux.bridge.vlanFiltering: false): VMs on VLAN 10 reach each other, not VLAN 20,
// and the far end of the uplink sees both tagged. Moving a VM between port groups keeps its device.
TEST_F(LinuxL2Lane, BridgePerVlanOverSubInterfacesCarriesRealFrames) {
  if (!kernelHasVlanDevices()) GTEST_SKIP() << why;
  std::vector<std::string> vms = {"a", "b", "c"};
  for (const auto& v : vms) {
    ASSERT_EQ(std::system(("ip netns add " + ns + "-" + v).c_str()), 0);
    extraNetns.push_back(ns + "-" + v);
  }
  const std::string far = ns + "-far";
  ASSERT_EQ(std::system(("ip netns add " + far).c_str()), 0);
  extraNetns.push_back(far);
  nic("eth1", far);
  auto vmPort = [&](const std::string& v, const std::string& pg) {
    return obj("Port", "vm" + v, "portGroup: " + pg + ", type: veth, peer: eth0, peerNetns: " + ns + "-" + v);
  };
  auto manifestWith = [&](const std::string& bGroup, const std::string& name) {
    return manifest(kTarget + obj("Switch", "br0", "stp: false, uplinks: {nics: [eth1]}, linux: {bridge: "
                                                   "{vlanFiltering: false}}") +
                        obj("PortGroup", "pg10", "switch: br0, vlan: 10") +
                        obj("PortGroup", "pg20", "switch: br0, vlan: 20") + vmPort("a", "pg10") +
                        vmPort("b", bGroup) + vmPort("c", "pg20"),
                    name);
  };
  auto f = manifestWith("pg10", "f.yaml");
  auto r = vnetplan("plan -f " + f);
  EXPECT_NE(r.out.find("one bridge per VLAN"), std::string::npos) << r.out;
  r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto l = links();
  EXPECT_EQ(l["br0"]["linkinfo"]["info_data"]["vlan_filtering"], 0);
  for (const auto& [sub, vid, bridge] : std::vector<std::tuple<std::string, int, std::string>>{
           {"eth1.10", 10, "pg10"}, {"eth1.20", 20, "pg20"}}) {
    ASSERT_TRUE(l.count(sub)) << sub;
    EXPECT_EQ(l[sub]["linkinfo"]["info_data"]["id"], vid) << sub;
    EXPECT_EQ(l[sub].value("link", ""), "eth1") << sub;
    EXPECT_EQ(l[sub].value("master", ""), bridge) << sub;
    EXPECT_EQ(l[bridge]["linkinfo"]["info_kind"], "bridge") << bridge;
  }
  EXPECT_EQ(l["vma"].value("master", ""), "pg10");
  EXPECT_EQ(l["vmb"].value("master", ""), "pg10");
  EXPECT_EQ(l["vmc"].value("master", ""), "pg20");
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);
  showRoundTrip(f);

  auto in = [&](const std::string& v, const std::string& cmd) {
    return runShell("ip netns exec " + ns + "-" + v + " " + cmd, dir);
  };
  int host = 1;
  for (const auto& v : vms) {
    in(v, "ip addr add 10.10.0." + std::to_string(host++) + "/24 dev eth0");
    in(v, "ip link set eth0 up");
  }
  runShell("ip -n " + far + " link set eth1-far up", dir);
  runShell("ip netns exec " + far + " timeout 10 tcpdump -U -nn -e -i eth1-far -w " + (dir / "far.pcap").string() +
               " vlan >/dev/null 2>&1 & sleep 2",
           dir);
  auto ab = in("a", "ping -c 3 -W 2 10.10.0.2");
  auto ac = in("a", "ping -c 2 -W 1 10.10.0.3");
  EXPECT_EQ(ab.exitCode, 0) << "VLAN 10 to VLAN 10: " << ab.out << ab.err;
  EXPECT_NE(ac.exitCode, 0) << "VLAN 10 must not reach VLAN 20: " << ac.out;
  in("c", "ping -c 2 -W 1 10.10.0.1");
  runShell("sleep 8", dir);
  auto uplink = runShell("tcpdump -nn -e -r " + (dir / "far.pcap").string(), dir);
  EXPECT_NE(uplink.out.find("vlan 10"), std::string::npos) << uplink.out << uplink.err;
  EXPECT_NE(uplink.out.find("vlan 20"), std::string::npos) << uplink.out << uplink.err;

  // vmb moves to pg20: the same device changes bridge; rollback exact at each step.
  const int index = links()["vmb"]["ifindex"];
  auto g = manifestWith("pg20", "g.yaml");
  injectFailures(g, 1, f);
  r = vnetplan("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(links()["vmb"]["ifindex"], index);
  EXPECT_EQ(links()["vmb"].value("master", ""), "pg20");
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + g).exitCode, 0);

  // Drift: a sub-interface taken off its bridge with ip is reported and repaired.
  ip("link set eth1.10 nomaster");
  r = vnetplan("drift -f " + g);
  EXPECT_EQ(r.exitCode, 2) << r.out << r.err;
  r = vnetplan("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(links()["eth1.10"].value("master", ""), "pg10");

  ASSERT_EQ(vnetplan("apply --auto-approve -f " + manifest(kTarget, "empty.yaml")).exitCode, 0);
  l = links();
  for (const char* gone : {"br0", "pg10", "pg20", "eth1.10", "eth1.20"}) EXPECT_FALSE(l.count(gone)) << gone;
  EXPECT_EQ(l["eth1"].value("master", ""), "");
}

// The kernel probe (providers/linux/caps.h) runs in a namespace of its own; a kernel that has every feature is
// asked once per boot: the answer is kept in /run/vnetplan/kernel-caps with the boot id, and an answer of another
// boot (or a damaged file) is not believed.
TEST_F(LinuxL2Lane, AKernelWithEveryFeatureIsProbedOncePerBoot) {
  if (!kernelHas("type bond", "bonding") || !kernelHas("type bridge vlan_filtering 1", "bridge VLAN filtering") ||
      !kernelHasVlanDevices())
    GTEST_SKIP() << why;
  const std::string cache = "/run/vnetplan/kernel-caps";
  std::error_code ec;
  fs::remove(cache, ec);
  nic("eth1");
  auto f = manifest(kTarget + obj("Switch", "br0", "stp: false") +
                    obj("Port", "eth1.10", "type: vlan, link: eth1, vlanId: 10, switch: br0"));
  const std::string probed = "linux: kernel probe took";
  auto r = vnetplan("--log-level debug plan -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.err.find(probed), std::string::npos) << r.err;
  std::string boot = readText("/proc/sys/kernel/random/boot_id");
  while (!boot.empty() && boot.back() == '\n') boot.pop_back();
  const std::string kept = readText(cache);
  EXPECT_EQ(kept.rfind("vnetplan-kernel-caps 1 " + boot + " " + kernelRelease() + " ", 0), 0u) << kept;

  r = vnetplan("--log-level debug plan -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find(probed), std::string::npos) << "the kept answer was not used: " << r.err;

  // Another boot's answer, and a damaged file: probed again, and the file is this boot's once more.
  std::string other = kept;
  other.replace(other.find(boot), boot.size(), "00000000-0000-0000-0000-000000000000");
  for (const std::string& bad : {other, std::string("vnetplan-kernel-caps 1 garbage\n")}) {
    writeFile(cache, bad);
    r = vnetplan("--log-level debug plan -f " + f);
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_NE(r.err.find(probed), std::string::npos) << bad << r.err;
    EXPECT_EQ(readText(cache), kept);
  }
  // VNETPLAN_CACHE=off: always asked.
  r = runShell("VNETPLAN_CACHE=off " + std::string(VNETPLAN_BINARY) + " --state file://" + (dir / "state").string() +
                   " --log-level debug plan -f " + f,
               dir);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.err.find(probed), std::string::npos) << r.err;
}
