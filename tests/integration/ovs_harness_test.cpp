// The Open vSwitch test harness itself (ovs_harness.h + scripts/ovs-sandbox.sh): the sandbox starts, its database
// is read back correctly, ovs-vswitchd builds userspace bridges inside the test's namespace, and TearDown leaves
// no daemon behind.
#include <algorithm>
#include <vector>

#include "tests/integration/ovs_harness.h"

using namespace vnptest;

namespace {

// True if process `pid` exists and is not a zombie (a stopped daemon whose parent, PID 1 after --detach, has not
// reaped it yet is gone for our purposes).
bool processRuns(pid_t pid) {
  std::string stat = readAll("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// Live processes whose command line mentions `text` (zombies have an empty command line).
std::vector<std::string> processesMentioning(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string pid = e.path().filename().string();
    if (!std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
    std::string cmdline = readAll(e.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(text) != std::string::npos && pid != std::to_string(getpid())) out.push_back(pid + ": " + cmdline);
  }
  return out;
}

pid_t pidFromFile(const fs::path& p) {
  std::string s = readAll(p);
  return s.empty() ? 0 : static_cast<pid_t>(std::stol(s));
}

using OvsHarness = OvsTest;

// ovsdb-server only: the database works without ovs-vswitchd (changes need --no-wait).
class OvsHarnessDbOnly : public OvsTest {
 protected:
  bool startVswitchd() const override { return false; }
};

// Checks after the fixture's TearDown that both daemons of the sandbox are gone.
class OvsHarnessTeardown : public OvsTest {
 protected:
  void TearDown() override {
    if (!sandboxStarted) return OvsTest::TearDown();
    const fs::path sandbox = ovsDir;
    std::vector<pid_t> pids;
    for (const char* f : {"ovsdb-server.pid", "ovs-vswitchd.pid"}) pids.push_back(pidFromFile(sandbox / f));
    OvsTest::TearDown();
    for (pid_t pid : pids) EXPECT_FALSE(pid > 0 && processRuns(pid)) << "daemon " << pid << " still runs";
    EXPECT_EQ(processesMentioning(sandbox.string()), std::vector<std::string>{});
  }
};

}  // namespace

TEST_F(OvsHarness, SandboxStartsBothDaemons) {
  EXPECT_EQ(dbSocket, (ovsDir / "db.sock").string());
  EXPECT_TRUE(fs::is_socket(dbSocket));
  EXPECT_EQ(remote(), "unix:" + dbSocket);
  RunResult show = vsctl("show");
  EXPECT_EQ(show.exitCode, 0) << show.err;

  // ovs-vswitchd answers on its control socket and has filled in the root row: only the userspace datapath.
  RunResult version = runShell("ovs-appctl -t " + shellQuote((ovsDir / "ovs-vswitchd.ctl").string()) + " version", dir);
  EXPECT_EQ(version.exitCode, 0) << version.err;
  EXPECT_NE(version.out.find("Open vSwitch"), std::string::npos) << version.out;
  Json root = table("Open_vSwitch");
  ASSERT_EQ(root.size(), 1u) << root.dump();
  EXPECT_EQ(root[0]["datapath_types"], "netdev") << root.dump();  // a one-element set is the bare value
  const Json& types = root[0]["iface_types"];
  EXPECT_NE(std::find(types.begin(), types.end(), "internal"), types.end()) << root.dump();
}

TEST_F(OvsHarness, NetdevBridgeShowsUpInTheDatabaseAndTheNamespace) {
  RunResult r = vsctl("add-br br0 -- set bridge br0 datapath_type=netdev other-config:hwaddr=02:00:00:00:00:01"
                      " -- add-port br0 vm1 -- set interface vm1 type=internal"
                      " -- set port vm1 tag=10 trunks=20,30");
  ASSERT_EQ(r.exitCode, 0) << r.err;

  Json bridges = table("Bridge");
  ASSERT_EQ(bridges.size(), 1u) << bridges.dump();
  EXPECT_EQ(bridges[0]["name"], "br0");

  Json br0 = row("Bridge", "br0");
  ASSERT_TRUE(br0.is_object()) << bridges.dump();
  EXPECT_EQ(br0["datapath_type"], "netdev");
  EXPECT_EQ(br0["other_config"], (Json{{"hwaddr", "02:00:00:00:00:01"}}));  // a map is an object
  ASSERT_TRUE(br0["ports"].is_array());                                       // a set of two uuids is an array
  EXPECT_EQ(br0["ports"].size(), 2u);
  EXPECT_TRUE(br0["_uuid"].is_string());  // ["uuid", U] is U
  EXPECT_EQ(br0["mirrors"], Json::array());  // an empty set is []
  EXPECT_TRUE(row("Bridge", "nope").is_null());

  Json vm1 = row("Port", "vm1");
  EXPECT_EQ(vm1["tag"], 10);
  EXPECT_EQ(vm1["trunks"], (Json{20, 30}));
  EXPECT_TRUE(vm1["interfaces"].is_string()) << vm1.dump();  // one uuid is reported bare

  // ovs-vswitchd applied it (vsctl waited): the internal ports have OpenFlow numbers and no error...
  Json iface = row("Interface", "vm1");
  EXPECT_EQ(iface["type"], "internal");
  EXPECT_EQ(iface["error"], Json::array()) << iface.dump();
  EXPECT_TRUE(iface["ofport"].is_number_integer() && iface["ofport"].get<int>() > 0) << iface.dump();
  EXPECT_EQ(row("Interface", "br0")["ofport"], 65534);
  // ...and the netdev datapath made a TAP for each, in the test's namespace only.
  auto l = links();
  EXPECT_TRUE(l.count("br0")) << "no br0 in netns " << ns;
  EXPECT_TRUE(l.count("vm1")) << "no vm1 in netns " << ns;
  EXPECT_EQ(runShell("ip link show br0", dir).exitCode, 1) << "br0 appeared on the host";

  // Manifests get the remote and the namespace.
  std::string path = ovsManifest("spec: {provider: ovs, db: OVSDB, netns: NETNS, other: OVSDB}\n");
  EXPECT_EQ(readAll(path), "spec: {provider: ovs, db: " + remote() + ", netns: " + ns + ", other: " + remote() + "}\n");
}

TEST_F(OvsHarnessDbOnly, DatabaseWithoutVswitchd) {
  EXPECT_FALSE(fs::exists(ovsDir / "ovs-vswitchd.pid"));
  ASSERT_EQ(vsctl("--no-wait add-br br0").exitCode, 0);
  EXPECT_TRUE(row("Bridge", "br0").is_object());
  EXPECT_EQ(row("Open_vSwitch", "x"), nullptr);  // the root row has no name column
  EXPECT_EQ(table("Open_vSwitch")[0]["datapath_types"], Json::array());  // nobody filled it in
  EXPECT_EQ(links().count("br0"), 0u);
}

TEST_F(OvsHarnessTeardown, StopsEveryDaemonOfTheSandbox) {
  for (const char* f : {"ovsdb-server.pid", "ovs-vswitchd.pid"}) {
    pid_t pid = pidFromFile(ovsDir / f);
    EXPECT_GT(pid, 0) << f;
    EXPECT_TRUE(processRuns(pid)) << f;
  }
  EXPECT_EQ(processesMentioning(ovsDir.string()).size(), 2u);
  ASSERT_EQ(vsctl("add-br br0 -- set bridge br0 datapath_type=netdev").exitCode, 0);
}
