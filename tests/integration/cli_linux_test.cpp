// End-to-end: the vnetplan binary against the real kernel, in a network namespace each test creates and
// removes. Results are checked independently with `ip -j`, not only through vnetplan's own observe.
#include <fcntl.h>
#include <sched.h>

#include "tests/integration/harness.h"

using namespace vnptest;

namespace {

const char* kTarget = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: t1}
spec: {provider: linux, netns: NETNS}
)";

std::string doc(const std::string& body) { return "---\napiVersion: vnetplan.io/v1\n" + body; }

std::string sw(const std::string& name, const std::string& spec) {
  return doc("kind: Switch\nmetadata: {name: " + name + "}\nspec: {targets: [t1], " + spec + "}\n");
}
std::string port(const std::string& name, const std::string& spec) {
  return doc("kind: Port\nmetadata: {name: " + name + "}\nspec: {targets: [t1], " + spec + "}\n");
}

// What the kernel has, reduced to what the manifests manage; used to compare before/after exactly.
std::string snapshot(NetnsTest& t, std::map<std::string, Json> links) {
  std::string out;
  for (const auto& [name, l] : links) {
    if (name == "lo") continue;
    out += name + " kind=" + l.value("linkinfo", Json::object()).value("info_kind", "") +
           " mtu=" + std::to_string(l.value("mtu", 0)) + " master=" + l.value("master", "") +
           " mac=" + l.value("address", "") + " up=" +
           (std::find(l["flags"].begin(), l["flags"].end(), "UP") != l["flags"].end() ? "1" : "0");
    (void)t;
    out += "\n";
  }
  return out;
}

}  // namespace

class CliLinux : public NetnsTest {
 protected:
  std::string base(const std::string& extra = "") {
    return kTarget + sw("br0", "mtu: 9000, stp: false, addresses: [10.9.0.1/24]") +
           port("vm1", "switch: br0, type: tap, mtu: 9000, mac: \"52:54:00:00:00:01\"") +
           port("vm2", "switch: br0, type: veth, peer: vm2-p") + extra;
  }
  std::string fullSnapshot() {
    std::string s = snapshot(*this, links());
    for (const auto& [name, _] : links()) {
      s += name + " addrs=";
      for (const auto& a : addrs(name)) s += a + ",";
      s += "\n";
    }
    return s;
  }
};

TEST_F(CliLinux, CreateNoopUpdateReplacePrune) {
  auto f = manifest(base());
  auto r = vnetplan("plan --detailed-exitcode -f " + f);
  ASSERT_EQ(r.exitCode, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("+   t1/Switch/br0"), std::string::npos) << r.out;

  r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto l = links();
  ASSERT_TRUE(l.count("br0") && l.count("vm1") && l.count("vm2") && l.count("vm2-p")) << r.out;
  EXPECT_EQ(l["br0"]["linkinfo"]["info_kind"], "bridge");
  EXPECT_EQ(l["br0"]["mtu"], 9000);
  EXPECT_EQ(l["vm1"]["master"], "br0");
  EXPECT_EQ(l["vm1"]["address"], "fe:54:00:00:00:01");  // the host side of the guest's 52:54:00:00:00:01
  EXPECT_EQ(l["vm1"]["linkinfo"]["info_kind"], "tun");
  EXPECT_EQ(l["vm2"]["master"], "br0");
  EXPECT_EQ(addrs("br0"), std::vector<std::string>{"10.9.0.1/24"});

  // Second plan is empty.
  r = vnetplan("plan --detailed-exitcode -f " + f);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("No changes"), std::string::npos) << r.out;

  // Update in place: mtu, addresses, mac.
  f = manifest(kTarget + sw("br0", "mtu: 8000, stp: false, addresses: [10.9.0.1/24, 10.9.5.1/24]") +
               port("vm1", "switch: br0, type: tap, mtu: 8000, mac: \"52:54:00:00:00:02\"") +
               port("vm2", "switch: br0, type: veth, peer: vm2-p"));
  int brIndex = links()["br0"]["ifindex"];
  r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("~   t1/Switch/br0"), std::string::npos) << r.out;
  l = links();
  EXPECT_EQ(l["br0"]["ifindex"], brIndex) << "updated in place, not recreated";
  EXPECT_EQ(l["br0"]["mtu"], 8000);
  EXPECT_EQ(l["vm1"]["address"], "fe:54:00:00:00:02");
  EXPECT_EQ(addrs("br0"), (std::vector<std::string>{"10.9.0.1/24", "10.9.5.1/24"}));
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);

  // Replace: vm1 changes type tap -> veth (cannot change in place).
  f = manifest(kTarget + sw("br0", "mtu: 8000, stp: false, addresses: [10.9.0.1/24, 10.9.5.1/24]") +
               port("vm1", "switch: br0, type: veth, peer: vm1-p, mtu: 8000") +
               port("vm2", "switch: br0, type: veth, peer: vm2-p"));
  r = vnetplan("plan -f " + f);
  EXPECT_NE(r.out.find("-/+ t1/Port/vm1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("disruptive"), std::string::npos) << r.out;
  r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  l = links();
  EXPECT_EQ(l["vm1"]["linkinfo"]["info_kind"], "veth");
  EXPECT_TRUE(l.count("vm1-p"));
  EXPECT_EQ(l["vm1"]["master"], "br0");

  // Prune: vm2 removed from the manifests -> deleted (with its peer).
  f = manifest(kTarget + sw("br0", "mtu: 8000, stp: false, addresses: [10.9.0.1/24, 10.9.5.1/24]") +
               port("vm1", "switch: br0, type: veth, peer: vm1-p, mtu: 8000"));
  r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  l = links();
  EXPECT_FALSE(l.count("vm2"));
  EXPECT_FALSE(l.count("vm2-p"));
  EXPECT_TRUE(l.count("vm1"));
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);

  r = vnetplan("state history t1");
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_NE(r.out.find("4  "), std::string::npos) << "four generations:\n" << r.out;
}

TEST_F(CliLinux, UnmanagedInterfacesAreNeverTouched) {
  ip("link add hand0 type bridge");
  ip("link set hand0 mtu 1400");
  ip("link add hand1 type veth peer name hand1-p");
  auto f = manifest(base());
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  // Remove everything from the manifests: only owned objects go.
  f = manifest(kTarget);
  auto r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto l = links();
  EXPECT_FALSE(l.count("br0"));
  EXPECT_FALSE(l.count("vm1"));
  ASSERT_TRUE(l.count("hand0"));
  EXPECT_EQ(l["hand0"]["mtu"], 1400);
  EXPECT_TRUE(l.count("hand1") && l.count("hand1-p"));

  // Declaring an unmanaged interface is an error unless adopt: true.
  f = manifest(kTarget + sw("hand0", "mtu: 1500"));
  r = vnetplan("plan -f " + f);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("not managed by vnetplan"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("net.yaml:"), std::string::npos) << r.err;
  EXPECT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 1);
  EXPECT_EQ(links()["hand0"]["mtu"], 1400);

  f = manifest(kTarget + sw("hand0", "mtu: 1500, adopt: true"));
  r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(links()["hand0"]["mtu"], 1500);
  EXPECT_NE(vnetplan("state show t1").out.find("t1/Switch/hand0"), std::string::npos);
}

TEST_F(CliLinux, DriftAfterOutOfBandChange) {
  auto f = manifest(base());
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  auto r = vnetplan("drift -f " + f);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;

  ip("link set br0 mtu 1500");
  r = vnetplan("drift -f " + f);
  EXPECT_EQ(r.exitCode, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("t1/Switch/br0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mtu: last applied 9000, live 1500"), std::string::npos) << r.out;
  r = vnetplan("drift --format prometheus -f " + f);
  EXPECT_NE(r.out.find("vnetplan_drift_resources 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vnetplan_resource_drift{address=\"t1/Switch/br0\",target=\"t1\",kind=\"Switch\"} 1"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vnetplan_resource_drift{address=\"t1/Port/vm1\",target=\"t1\",kind=\"Port\"} 0"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vnetplan_last_run_timestamp_seconds "), std::string::npos) << r.out;
  if (std::system("command -v promtool >/dev/null") == 0) {  // Prometheus' own checker accepts the exposition
    writeFile(dir / "drift.prom", r.out);
    auto check = runShell("promtool check metrics < " + (dir / "drift.prom").string(), dir);
    EXPECT_EQ(check.exitCode, 0) << check.out << check.err;
  }
  r = vnetplan("drift --format junit -f " + f);
  EXPECT_NE(r.out.find("message=\"drift: mtu: expected 9000, actual 1500\""), std::string::npos) << r.out;
  EXPECT_EQ(links()["br0"]["mtu"], 1500) << "drift is read-only";

  r = vnetplan("plan -f " + f);
  EXPECT_NE(r.out.find("drift (changed out of band)"), std::string::npos) << r.out;
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_EQ(links()["br0"]["mtu"], 9000);
  EXPECT_EQ(vnetplan("drift -f " + f).exitCode, 0);

  // An owned object deleted out of band is drift, and apply recreates it.
  ip("link del vm1");
  r = vnetplan("drift -f " + f);
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_NE(r.out.find("deleted out of band"), std::string::npos) << r.out;
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_TRUE(links().count("vm1"));
}

TEST_F(CliLinux, RollbackAfterFailureAtEveryStepRestoresThePreImage) {
  auto f = manifest(base());
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  const std::string before = fullSnapshot();
  // A change of 5 steps: delete vm2, update br0, update vm1, create vm3 (tap), create vm4 (veth).
  auto g = manifest(kTarget + sw("br0", "mtu: 7000, stp: false, addresses: [10.9.7.1/24]") +
                        port("vm1", "switch: br0, type: tap, mtu: 7000, mac: \"52:54:00:00:00:09\"") +
                        port("vm3", "switch: br0, type: tap") + port("vm4", "switch: br0, type: veth, peer: vm4-p"),
                    "next.yaml");
  for (int k = 1; k <= 5; ++k) {
    auto r = runShell("VNETPLAN_FAIL_AT_STEP=" + std::to_string(k) + " " + std::string(VNETPLAN_BINARY) +
                     " --state file://" + (dir / "state").string() + " apply --auto-approve -f " + g,
                 dir);
    ASSERT_EQ(r.exitCode, 1) << "k=" << k << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("injected failure at step " + std::to_string(k)), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("Rolled back"), std::string::npos) << r.err;
    EXPECT_EQ(fullSnapshot(), before) << "k=" << k;
    // State is untouched too: the original manifests still plan empty.
    EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0) << "k=" << k;
    auto st = vnetplan("state list");
    EXPECT_EQ(st.out.find("UNFINISHED"), std::string::npos) << st.out;
  }
}

TEST_F(CliLinux, SigkillDuringApplyThenRecovery) {
  auto f = manifest(base());
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  const std::string before = fullSnapshot();
  std::string many = kTarget + sw("br0", "mtu: 9000, stp: false, addresses: [10.9.0.1/24]");
  for (int i = 0; i < 12; ++i) many += port("p" + std::to_string(i), "switch: br0, type: tap");
  auto g = manifest(many, "many.yaml");

  pid_t pid = fork();
  if (pid == 0) {
    setenv("VNETPLAN_SLOW_STEP_MS", "200", 1);
    std::string state = "file://" + (dir / "state").string();
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(VNETPLAN_BINARY, VNETPLAN_BINARY, "--state", state.c_str(), "apply", "--auto-approve", "-f", g.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until the apply is half way, then kill it without warning.
  for (int i = 0; i < 300 && !links().count("p3"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(links().count("p3")) << "the apply never got going";
  ASSERT_NE(fullSnapshot(), before);

  // The next apply refuses and says what to do.
  auto r = vnetplan("apply --auto-approve -f " + f);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("did not finish"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("vnetplan rollback"), std::string::npos) << r.err;
  EXPECT_NE(vnetplan("state list").out.find("UNFINISHED apply"), std::string::npos);

  r = vnetplan("rollback");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(fullSnapshot(), before);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);
  EXPECT_EQ(vnetplan("rollback").out.find("Nothing to roll back") != std::string::npos, true);
  // And the big change now goes through.
  r = vnetplan("apply --auto-approve -f " + g);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
}

TEST_F(CliLinux, ConcurrentAppliesOneWaitsOrFailsCleanly) {
  std::string many = std::string(kTarget) + sw("br0", "mtu: 9000");
  for (int i = 0; i < 8; ++i) many += port("p" + std::to_string(i), "switch: br0, type: tap");
  auto f = manifest(many);
  const std::string state = "file://" + (dir / "state").string();
  std::string cmd = std::string(VNETPLAN_BINARY) + " --state " + state + " apply --auto-approve -f " + f;
  // First: slow. Second (no wait): fails naming the holder. Third (waits): succeeds after, with no changes.
  pid_t first = fork();
  if (first == 0) {
    setenv("VNETPLAN_SLOW_STEP_MS", "250", 1);
    execl("/bin/sh", "sh", "-c", (cmd + " >/dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 200 && !links().count("br0"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  auto second = runShell(cmd, dir);
  EXPECT_EQ(second.exitCode, 1) << second.out << second.err;
  EXPECT_NE(second.err.find("locked by"), std::string::npos) << second.err;
  auto third = runShell(cmd + " --lock-timeout 60s", dir, 120);
  int status = 0;
  waitpid(first, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(third.exitCode, 0) << third.out << third.err;
  auto l = links();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(l["p" + std::to_string(i)]["master"], "br0");
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);
}

TEST_F(CliLinux, StaleSavedPlanIsRefused) {
  auto f = manifest(base());
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  f = manifest(kTarget + sw("br0", "mtu: 8000, stp: false, addresses: [10.9.0.1/24]") +
               port("vm1", "switch: br0, type: tap, mtu: 8000, mac: \"52:54:00:00:00:01\"") +
               port("vm2", "switch: br0, type: veth, peer: vm2-p"));
  const std::string planFile = (dir / "plan.json").string();
  auto r = vnetplan("plan -f " + f + " --out " + planFile);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  // Someone changes a touched object in between.
  ip("link set br0 mtu 1600");
  r = vnetplan("apply " + planFile);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("stale"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("t1/Switch/br0"), std::string::npos) << r.err;
  EXPECT_EQ(links()["br0"]["mtu"], 1600) << "nothing applied";

  // A fresh plan applies; a plan whose manifests changed afterwards is refused.
  ASSERT_EQ(vnetplan("plan -f " + f + " --out " + planFile).exitCode, 0);
  r = vnetplan("apply " + planFile);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(links()["br0"]["mtu"], 8000);
  ASSERT_EQ(vnetplan("plan -f " + f + " --out " + planFile).exitCode, 0);
  manifest(base());  // rewrite the same file
  r = vnetplan("apply " + planFile);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("manifests changed"), std::string::npos) << r.err;
}

TEST_F(CliLinux, VethPeerInAnotherNamespaceAndCreateNetns) {
  const std::string other = ns + "-o";
  extraNetns.push_back(other);
  auto f = manifest(std::string(kTarget) + sw("br0", "mtu: 1500") +
                    port("uplink", "switch: br0, type: veth, peer: downlink, peerNetns: " + other) +
                    doc("kind: Target\nmetadata: {name: t2}\nspec: {provider: linux, netns: " + other +
                        ", createNetns: true}\n") +
                    doc("kind: Switch\nmetadata: {name: br9}\nspec: {targets: [t2]}\n"));
  auto r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto o = runShell("ip -n " + other + " -j link show", dir);
  ASSERT_EQ(o.exitCode, 0) << o.err;
  EXPECT_NE(o.out.find("\"downlink\""), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("\"br9\""), std::string::npos) << o.out;
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);
}

TEST_F(CliLinux, ShowRendersLiveStateAsManifestsThatPlanEmpty) {
  auto f = manifest(base());
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  auto r = vnetplan("show --target t1 -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("kind: Switch"), std::string::npos) << r.out;
  // The rendered manifests, with the Target, validate and plan empty.
  auto g = manifest(std::string(kTarget) + r.out, "shown.yaml");
  auto v = vnetplan("validate -f " + g);
  EXPECT_EQ(v.exitCode, 0) << v.out << v.err << r.out;
  auto p = vnetplan("plan --detailed-exitcode -f " + g);
  EXPECT_EQ(p.exitCode, 0) << p.out << p.err;
}

TEST_F(CliLinux, ExamplesValidateAndApply) {
  const fs::path examples = fs::path(VNETPLAN_SOURCE_DIR) / "examples";
  int applied = 0;
  for (const auto& e : fs::recursive_directory_iterator(examples)) {
    if (e.path().extension() != ".yaml") continue;
    std::string text = readAll(e.path());
    if (text.find("provider: linux") == std::string::npos) continue;
    // SR-IOV NICs and PCI devices are this machine's hardware, not a namespace's: those examples are proven in the
    // stock-kernel lane (tests/stock_kernel/linux_sriov_lane_test.cpp, linux_pci_lane_test.cpp).
    if (text.find("# needs hardware:") != std::string::npos) continue;
    // Every namespace the example names (netns: / peerNetns:) becomes a throwaway one of this test.
    std::map<std::string, std::string> nsMap;
    std::string rewritten;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      for (const std::string key : {"peerNetns: ", "netns: "}) {
        auto p = line.find(key);
        if (p == std::string::npos || (key == "netns: " && line.find("peerNetns") != std::string::npos)) continue;
        std::string name = line.substr(p + key.size());
        name = name.substr(0, name.find_first_of(" ,}#"));
        if (!nsMap.count(name)) {
          nsMap[name] = nsMap.empty() ? std::string("NETNS") : ns + "-" + std::to_string(nsMap.size());
          if (!nsMap.empty() && nsMap[name] != "NETNS") extraNetns.push_back(nsMap[name]);
        }
        line = line.substr(0, p + key.size()) + nsMap[name] + line.substr(p + key.size() + name.size());
      }
      rewritten += line + "\n";
    }
    auto f = manifest(rewritten, e.path().filename().string());
    auto v = vnetplan("validate -f " + f);
    ASSERT_EQ(v.exitCode, 0) << e.path() << "\n" << v.out << v.err;
    auto r = vnetplan("apply --auto-approve -f " + f);
    ASSERT_EQ(r.exitCode, 0) << e.path() << "\n" << r.out << r.err;
    EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0) << e.path();
    // Clean up for the next example: the same Targets with nothing on them prunes everything it made.
    std::string targetsOnly;
    size_t start = 0;
    while (start < rewritten.size()) {
      size_t next = rewritten.find("\n---", start);
      std::string d = rewritten.substr(start, next == std::string::npos ? std::string::npos : next - start);
      if (d.find("kind: Target") != std::string::npos) targetsOnly += "\n---\n" + d;
      if (next == std::string::npos) break;
      start = next + 4;
    }
    auto c = vnetplan("apply --auto-approve -f " + manifest(targetsOnly, "empty.yaml"));
    ASSERT_EQ(c.exitCode, 0) << c.out << c.err;
    EXPECT_EQ(links().size(), 1u) << "only lo is left";
    ++applied;
  }
  EXPECT_GT(applied, 0);
}

TEST_F(CliLinux, ConfirmTimeoutRollsBackUnlessConfirmedOrProbesPass) {
  auto f = manifest(base());
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  const std::string before = fullSnapshot();
  auto g = manifest(kTarget + sw("br0", "mtu: 7000, stp: false, addresses: [10.9.0.1/24]") +
                        port("vm1", "switch: br0, type: tap, mtu: 7000, mac: \"52:54:00:00:00:01\"") +
                        port("vm2", "switch: br0, type: veth, peer: vm2-p"),
                    "next.yaml");
  // Nobody confirms: rolled back at the deadline.
  auto r = vnetplan("apply --auto-approve --confirm-timeout 2s -f " + g);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("not confirmed within 2s"), std::string::npos) << r.err;
  EXPECT_EQ(fullSnapshot(), before);
  EXPECT_EQ(vnetplan("confirm").exitCode, 1) << "nothing awaits confirmation";

  // A failing probe does not keep it either.
  r = vnetplan("apply --auto-approve --confirm-timeout 2s --probe tcp:127.0.0.1:1 -f " + g);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("last probe failure"), std::string::npos) << r.err;
  EXPECT_EQ(fullSnapshot(), before);

  // 'vnetplan confirm' from another process keeps it.
  const std::string state = "file://" + (dir / "state").string();
  pid_t pid = fork();
  if (pid == 0) {
    std::string cmd = std::string(VNETPLAN_BINARY) + " --state " + state +
                      " apply --auto-approve --confirm-timeout 60s -f " + g + " >/dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  bool awaiting = false;
  for (int i = 0; i < 200 && !awaiting; ++i) {
    awaiting = vnetplan("state list").out.find("awaiting-confirm") != std::string::npos;
    if (!awaiting) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(awaiting);
  EXPECT_EQ(links()["br0"]["mtu"], 7000) << "the change is live while it awaits confirmation";
  r = vnetplan("confirm");
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(links()["br0"]["mtu"], 7000);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + g).exitCode, 0);

  // A probe that succeeds keeps the change without a confirm. Probes run in the target's namespace: the
  // listener is made there (a socket stays in the namespace it was created in).
  ip("link set lo up");
  int listener = -1;
  sockaddr_in addr{};
  std::thread([&] {
    int nsfd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) return;
    close(nsfd);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener, 8) != 0) {
      close(listener);
      listener = -1;
      return;
    }
    socklen_t len = sizeof addr;
    getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  }).join();
  ASSERT_GE(listener, 0) << "no listener in the target's namespace";
  r = vnetplan("apply --auto-approve --confirm-timeout 30s --probe tcp:127.0.0.1:" +
               std::to_string(ntohs(addr.sin_port)) + " -f " + f);
  close(listener);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(links()["br0"]["mtu"], 9000);
}

TEST_F(CliLinux, PlanAgainstASnapshotNeedsNoConnection) {
  auto f = manifest(base());
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  ip("link set br0 mtu 1500");
  auto r = vnetplan("show --snapshot --target t1 -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  writeFile(dir / "snap.json", r.out);
  // The namespace goes away; the snapshot still plans (the drift fix), without touching anything.
  (void)std::system(("ip netns del " + ns).c_str());
  auto p = vnetplan("plan --detailed-exitcode --observed " + (dir / "snap.json").string() + " -f " + f);
  EXPECT_EQ(p.exitCode, 2) << p.out << p.err;
  EXPECT_NE(p.out.find("mtu: 1500 -> 9000"), std::string::npos) << p.out;
  auto bad = vnetplan("plan --observed " + f + " -f " + f);
  EXPECT_EQ(bad.exitCode, 1);
  EXPECT_NE(bad.err.find("not JSON"), std::string::npos) << bad.err;
}

TEST_F(CliLinux, ATargetLeftOutOfTheManifestsIsReportedNotForgotten) {
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + manifest(base())).exitCode, 0);
  // Another repository's manifests, sharing the state store, without t1.
  auto other = manifest("apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: t9}\nspec: {provider: linux, netns: NETNS}\n",
                        "other.yaml");
  for (const char* cmd : {"plan -f ", "drift -f "}) {
    auto r = vnetplan(cmd + other);
    EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_NE(r.err.find("Target t1 is not in the manifests, but vnetplan still owns 3 object(s) there"),
              std::string::npos)
        << cmd << r.err;
  }
  EXPECT_TRUE(links().count("br0")) << "nothing is deleted without its Target";
  // Declared again with no resources: its objects are deleted, and the warning goes.
  auto empty = manifest(kTarget, "empty.yaml");
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + empty).exitCode, 0);
  EXPECT_FALSE(links().count("br0"));
  EXPECT_EQ(vnetplan("plan -f " + other).err.find("still owns"), std::string::npos);
}

// Bridges with untagged tap and veth ports need nothing the kernel may lack: planning them does not probe it
// (a probe makes and removes a network namespace, a third of a no-op plan's time on a big target).
TEST_F(CliLinux, UntaggedPortsDoNotProbeTheKernel) {
  auto f = manifest(base());
  auto r = vnetplan("--log-level debug plan -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("linux: kernel probe took"), std::string::npos) << r.err;
  // A port group is a VLAN: its shape depends on what the kernel has, so that plan asks (kept answers aside).
  f = manifest(base(doc("kind: PortGroup\nmetadata: {name: pg10}\nspec: {targets: [t1], switch: br0, vlan: 10}\n")));
  r = runShell("VNETPLAN_CACHE=off " + std::string(VNETPLAN_BINARY) + " --state file://" + (dir / "state").string() +
                   " --log-level debug plan -f " + f,
               dir);
  EXPECT_NE(r.err.find("linux: kernel probe took"), std::string::npos) << r.out << r.err;
}

// A create names the new link's ifindex itself (one round trip: session.h createLink). A link someone else made
// meanwhile may hold that index: the create then lets the kernel choose, and the apply goes on.
TEST_F(CliLinux, ACreateWhoseIfindexWasTakenMeanwhileStillSucceeds) {
  auto f = manifest(kTarget + sw("br-a", "stp: false") + sw("br-b", "stp: false"));
  std::thread intruder([&] {
    // While step 2 waits (VNETPLAN_SLOW_STEP_MS), a link made with `ip` takes the next free index: the one the
    // session set aside for br-b.
    for (int i = 0; i < 300 && !links().count("br-a"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    (void)std::system(("ip -n " + ns + " link add intruder type bridge").c_str());
  });
  auto r = runShell("VNETPLAN_SLOW_STEP_MS=1500 " + std::string(VNETPLAN_BINARY) + " --state file://" +
                        (dir / "state").string() + " apply --auto-approve -f " + f,
                    dir);
  intruder.join();
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto l = links();
  ASSERT_TRUE(l.count("br-a") && l.count("br-b") && l.count("intruder")) << r.out;
  // The case is the one meant: the intruder holds the index right after br-a's (the one set aside for br-b).
  EXPECT_EQ(l["intruder"]["ifindex"].get<int>(), l["br-a"]["ifindex"].get<int>() + 1);
  EXPECT_NE(l["br-b"]["ifindex"], l["intruder"]["ifindex"]);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);
}

// Ports without policies: observe asks the kernel for nftables table names only (no libnftables listing, the
// library is not even loaded) when the namespace holds no table of vnetplan's; a table of vnetplan's that someone
// left on a port is still seen.
TEST_F(CliLinux, PortsWithoutPoliciesListNoRulesetButSeeALeftTable) {
  if (std::system("command -v nft >/dev/null 2>&1") != 0) GTEST_SKIP() << "SKIPPED: nft (nftables) is missing";
  auto f = manifest(base());
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  // The loader's own account of what it opened (LD_DEBUG=files): libnftables and libssh are opened on first use
  // (base/dynlib.h), so a plan that needs neither never loads them.
  auto plan = [&] {
    return runShell("LD_DEBUG=files " + std::string(VNETPLAN_BINARY) + " --state file://" + (dir / "state").string() +
                        " --log-level debug plan --detailed-exitcode -f " + f,
                    dir);
  };
  auto r = plan();
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("no table of vnetplan's, nothing to list"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("listed vnetplan's tables"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("file=libnl-3.so"), std::string::npos) << "LD_DEBUG=files printed nothing: " << r.err;
  EXPECT_EQ(r.err.find("file=libnftables.so"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("file=libssh.so"), std::string::npos) << r.err;

  ASSERT_EQ(runShell("ip netns exec " + ns + " nft add table bridge vnp-port-vm2", dir).exitCode, 0);
  r = plan();
  EXPECT_EQ(r.exitCode, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("listed vnetplan's tables"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("file=libnftables.so.1 [0];  dynamically loaded by"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("vnp-port-vm2"), std::string::npos) << r.out;
  ASSERT_EQ(vnetplan("apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_EQ(runShell("ip netns exec " + ns + " nft list tables", dir).out.find("vnp-port-vm2"), std::string::npos);
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);
}
