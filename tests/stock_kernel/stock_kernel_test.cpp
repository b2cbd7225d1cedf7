// Kernel features that Debian's stock kernel has and the CI machines' kernel lacks: bonding, bridge VLAN
// filtering, 802.1Q sub-interfaces and netdevsim SR-IOV VFs. They run in the stock-kernel lane (scripts/vmlane/,
// ctest label `vmlane`) and SKIP on a kernel without the feature. Every test works in network namespaces it
// creates and removes; the checks go through the kernel (carrier, failover, frames crossing or not crossing a
// VLAN), not only through what `ip` echoes back.
#include <gtest/gtest.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

struct Cmd {
  int rc = -1;
  std::string out;  // stdout and stderr
};

Cmd sh(const std::string& cmd) {
  Cmd r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string kernelRelease() {
  utsname u{};
  return ::uname(&u) == 0 ? u.release : "?";
}

// Polls until `pred` holds; the lane runs under TCG, where the kernel's timers and our polls are slow.
bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// The messages with which a kernel without the driver or option refuses (rtnetlink has no module to load).
bool unsupported(const std::string& err) {
  for (const char* m : {"Unknown device type", "Operation not supported", "not supported", "No such device"})
    if (err.find(m) != std::string::npos) return true;
  return false;
}

struct Attempt {
  bool ok = false, skip = false;
  std::string msg;
};

// Creates, and skips the test when the kernel lacks `feature`; any other failure fails the test.
#define CREATE_OR_SKIP(call)                  \
  do {                                        \
    Attempt a_ = (call);                      \
    if (a_.skip) GTEST_SKIP() << a_.msg;      \
    ASSERT_TRUE(a_.ok) << a_.msg;             \
  } while (0)

class StockKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: needs root (network namespaces)";
    ns_ = newNetns();
    if (ns_.empty()) GTEST_SKIP() << "SKIPPED: cannot create a network namespace: " << lastError_;
  }
  void TearDown() override {
    for (auto it = netns_.rbegin(); it != netns_.rend(); ++it) (void)sh("ip netns del " + *it);
  }

  // A further namespace that the test removes too ("" and lastError_ set if it cannot be made).
  std::string newNetns() {
    static std::atomic<int> counter{0};
    std::string name = "vnp-sk-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    Cmd r = sh("ip netns add " + name);
    if (r.rc != 0) {
      lastError_ = r.out;
      return "";
    }
    netns_.push_back(name);
    return name;
  }

  Cmd ip(const std::string& ns, const std::string& args) { return sh("ip -n " + ns + " " + args); }
  Cmd ip(const std::string& args) { return ip(ns_, args); }
  // For statements that must succeed: the failure message carries the command and what it printed.
  ::testing::AssertionResult ok(const Cmd& r, const std::string& what) {
    if (r.rc == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << what << " failed (" << r.rc << "): " << r.out;
  }
  ::testing::AssertionResult run(const std::string& ns, const std::string& ipArgs) {
    return ok(ip(ns, ipArgs), "ip -n " + ns + " " + ipArgs);
  }
  ::testing::AssertionResult bridge(const std::string& ns, const std::string& args) {
    return ok(sh("bridge -n " + ns + " " + args), "bridge -n " + ns + " " + args);
  }

  Attempt create(const std::string& ns, const std::string& ipArgs, const std::string& feature) {
    Cmd r = ip(ns, ipArgs);
    if (r.rc == 0) return {true, false, ""};
    if (unsupported(r.out))
      return {false, true,
              "SKIPPED: kernel " + kernelRelease() + " lacks " + feature + " (ip " + ipArgs + ": " + trim(r.out) +
                  "); the stock-kernel lane (ctest -L vmlane) runs this test"};
    return {false, false, "ip -n " + ns + " " + ipArgs + " failed: " + r.out};
  }

  // `ip -d -j link show dev` of one link (null when absent).
  Json link(const std::string& ns, const std::string& dev) {
    Cmd r = ip(ns, "-d -j link show dev " + dev);
    if (r.rc != 0) return nullptr;
    Json j = Json::parse(r.out, nullptr, false);
    return j.is_array() && !j.empty() ? j[0] : Json(nullptr);
  }

  // The kernel activates a link's qdisc (linkwatch) up to a second after its carrier comes; until then frames
  // are dropped, so a ping sent at once would be lost and cost its whole timeout.
  ::testing::AssertionResult operUp(const std::string& ns, const std::string& dev) {
    std::string state;
    if (waitFor([&] {
          state = link(ns, dev).value("operstate", "");
          return state == "UP";
        }))
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << dev << " in " << ns << " is " << state << ", not UP";
  }

  bool ping(const std::string& ns, const std::string& addr, int seconds) {
    // -W as well as -w: busybox's ping otherwise waits its default 10 s for the reply to its one packet.
    std::string t = std::to_string(seconds);
    return sh("ip netns exec " + ns + " ping -c 1 -w " + t + " -W " + t + " " + addr).rc == 0;
  }
  // Frames must be able to cross; the first ping also waits for ARP, which is slow under TCG.
  ::testing::AssertionResult reaches(const std::string& ns, const std::string& addr) {
    for (int i = 0; i < 6; ++i)
      if (ping(ns, addr, 2)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "no reply from " << addr << " in " << ns;
  }

  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  std::string ns_, lastError_;
  std::vector<std::string> netns_;
};

// ---------------------------------------------------------------- bonding

std::string activeSlave(const Json& bond) {
  if (bond.is_null()) return "";
  return bond["linkinfo"]["info_data"].value("active_slave", "");
}
std::string slaveState(const Json& slave) {
  if (slave.is_null() || !slave["linkinfo"].contains("info_slave_data")) return "";
  return slave["linkinfo"]["info_slave_data"].value("state", "");
}

TEST_F(StockKernelTest, BondActiveBackupFailsOverWhenTheActiveSlaveLosesCarrier) {
  CREATE_OR_SKIP(create(ns_, "link add bond0 type bond mode active-backup miimon 50", "bonding"));
  for (const char* i : {"1", "2"}) {
    ASSERT_TRUE(run(ns_, std::string("link add s") + i + " type veth peer name p" + i));
    ASSERT_TRUE(run(ns_, std::string("link set s") + i + " master bond0"));
    ASSERT_TRUE(run(ns_, std::string("link set p") + i + " up"));
  }
  ASSERT_TRUE(run(ns_, "link set bond0 up"));
  Json bond = link(ns_, "bond0");
  ASSERT_EQ(bond["linkinfo"].value("info_kind", ""), "bond");
  EXPECT_EQ(bond["linkinfo"]["info_data"].value("mode", ""), "active-backup");

  std::string active;
  ASSERT_TRUE(waitFor([&] {
    active = activeSlave(link(ns_, "bond0"));
    return !active.empty();
  })) << "bond0 never chose an active slave: " << link(ns_, "bond0").dump();
  ASSERT_TRUE(active == "s1" || active == "s2") << active;
  std::string backup = active == "s1" ? "s2" : "s1";
  EXPECT_EQ(slaveState(link(ns_, active)), "ACTIVE");
  EXPECT_EQ(slaveState(link(ns_, backup)), "BACKUP");

  // Taking the veth peer down drops the active slave's carrier; miimon must notice and promote the backup.
  ASSERT_TRUE(run(ns_, "link set p" + active.substr(1) + " down"));
  EXPECT_TRUE(waitFor([&] { return activeSlave(link(ns_, "bond0")) == backup; }))
      << "no failover from " << active << " to " << backup << ": " << link(ns_, "bond0").dump();
  EXPECT_EQ(slaveState(link(ns_, backup)), "ACTIVE");
  Json failed = link(ns_, active);
  EXPECT_EQ(slaveState(failed), "BACKUP");
  EXPECT_EQ(failed["linkinfo"]["info_slave_data"].value("mii_status", ""), "DOWN");

  // Carrier back: without a primary the bond stays on the new active slave, and the old one is a healthy backup.
  ASSERT_TRUE(run(ns_, "link set p" + active.substr(1) + " up"));
  EXPECT_TRUE(waitFor([&] {
    return link(ns_, active)["linkinfo"]["info_slave_data"].value("mii_status", "") == "UP";
  }));
  EXPECT_EQ(activeSlave(link(ns_, "bond0")), backup);
}

// ---------------------------------------------------------------- bridge VLAN filtering

bool hasVlan(const Json& vlanShow, const std::string& dev, int vid, bool* untagged = nullptr) {
  if (!vlanShow.is_array()) return false;
  for (const auto& port : vlanShow) {
    if (port.value("ifname", "") != dev) continue;
    for (const auto& v : port.value("vlans", Json::array())) {
      if (v.value("vlan", -1) != vid) continue;
      if (untagged) {
        *untagged = false;
        for (const auto& f : v.value("flags", Json::array())) *untagged |= f == "Egress Untagged";
      }
      return true;
    }
  }
  return false;
}

// Two VLAN-filtering bridges joined by a veth trunk: each bridge's own interface is an untagged member (PVID) of
// one VLAN, so a ping crosses only when both bridges use the same VLAN and both trunk ports admit it tagged.
TEST_F(StockKernelTest, BridgeWithVlanFilteringPassesOnlyTheTaggedVlanOfItsPort) {
  CREATE_OR_SKIP(create(ns_, "link add br0 type bridge vlan_filtering 1", "bridge VLAN filtering"));
  EXPECT_EQ(link(ns_, "br0")["linkinfo"]["info_data"].value("vlan_filtering", -1), 1);
  std::string peer = newNetns();
  ASSERT_FALSE(peer.empty()) << lastError_;
  ASSERT_TRUE(run(peer, "link add br1 type bridge vlan_filtering 1"));
  ASSERT_TRUE(run(ns_, "link add pa type veth peer name pb netns " + peer));
  ASSERT_TRUE(run(ns_, "link set pa master br0"));
  ASSERT_TRUE(run(peer, "link set pb master br1"));

  // The trunk: VLAN 100 tagged on both ends (no default VLAN 1); br1's end also admits 200.
  ASSERT_TRUE(bridge(ns_, "vlan del dev pa vid 1"));
  ASSERT_TRUE(bridge(ns_, "vlan add dev pa vid 100"));
  ASSERT_TRUE(bridge(peer, "vlan del dev pb vid 1"));
  ASSERT_TRUE(bridge(peer, "vlan add dev pb vid 100"));
  ASSERT_TRUE(bridge(peer, "vlan add dev pb vid 200"));
  struct End {
    std::string ns, br, addr;
  };
  for (const End& e : {End{ns_, "br0", "10.77.100.1/24"}, End{peer, "br1", "10.77.100.2/24"}}) {
    ASSERT_TRUE(bridge(e.ns, "vlan del dev " + e.br + " vid 1 self"));
    ASSERT_TRUE(bridge(e.ns, "vlan add dev " + e.br + " vid 100 pvid untagged self"));
    ASSERT_TRUE(run(e.ns, "addr add " + e.addr + " dev " + e.br));
    ASSERT_TRUE(run(e.ns, "link set " + e.br + " up"));
  }
  ASSERT_TRUE(run(ns_, "link set pa up"));
  ASSERT_TRUE(run(peer, "link set pb up"));

  Json vlans = Json::parse(sh("bridge -n " + ns_ + " -j vlan show").out, nullptr, false);
  bool untagged = true;
  ASSERT_TRUE(hasVlan(vlans, "pa", 100, &untagged)) << vlans.dump();
  EXPECT_FALSE(untagged) << "pa must carry VLAN 100 tagged";
  EXPECT_FALSE(hasVlan(vlans, "pa", 1)) << vlans.dump();

  for (const auto& [ns, dev] : {std::pair{ns_, "pa"}, {peer, "pb"}, {ns_, "br0"}, {peer, "br1"}})
    ASSERT_TRUE(operUp(ns, dev));
  EXPECT_TRUE(reaches(ns_, "10.77.100.2"));

  // Both bridges move into VLAN 200, which pb admits and pa does not: pa's filter alone must now stop the frames.
  for (const auto& [ns, br] : {std::pair{ns_, "br0"}, {peer, "br1"}}) {
    ASSERT_TRUE(bridge(ns, std::string("vlan add dev ") + br + " vid 200 pvid untagged self"));
    ASSERT_TRUE(bridge(ns, std::string("vlan del dev ") + br + " vid 100 self"));
    ASSERT_TRUE(run(ns, std::string("neigh flush dev ") + br));
  }
  EXPECT_FALSE(ping(ns_, "10.77.100.2", 2)) << "a frame of VLAN 200 crossed pa, which admits only VLAN 100";

  // Admitting VLAN 200 on pa, and nothing else, restores the path.
  ASSERT_TRUE(bridge(ns_, "vlan add dev pa vid 200"));
  ASSERT_TRUE(run(ns_, "neigh flush dev br0"));  // the failed ARP entry of the blocked ping would delay the next
  EXPECT_TRUE(reaches(ns_, "10.77.100.2"));
}

// ---------------------------------------------------------------- 802.1Q

TEST_F(StockKernelTest, VlanSubInterfaceTagsFramesWithItsId) {
  std::string peer = newNetns();
  ASSERT_FALSE(peer.empty()) << lastError_;
  ASSERT_TRUE(run(ns_, "link add va type veth peer name vb netns " + peer));
  CREATE_OR_SKIP(create(ns_, "link add link va name va.100 type vlan id 100", "802.1Q VLAN devices"));
  Json sub = link(ns_, "va.100");
  EXPECT_EQ(sub["linkinfo"].value("info_kind", ""), "vlan");
  EXPECT_EQ(sub["linkinfo"]["info_data"].value("protocol", ""), "802.1Q");
  EXPECT_EQ(sub["linkinfo"]["info_data"].value("id", -1), 100);
  EXPECT_EQ(sub.value("link", ""), "va");

  ASSERT_TRUE(run(ns_, "addr add 10.77.1.1/24 dev va.100"));
  ASSERT_TRUE(run(ns_, "link set va up"));
  ASSERT_TRUE(run(ns_, "link set va.100 up"));
  ASSERT_TRUE(run(peer, "link set vb up"));

  // The other end in VLAN 101: same subnet, other tag, so the frames must not meet.
  ASSERT_TRUE(run(peer, "link add link vb name vb.101 type vlan id 101"));
  ASSERT_TRUE(run(peer, "addr add 10.77.1.2/24 dev vb.101"));
  ASSERT_TRUE(run(peer, "link set vb.101 up"));
  ASSERT_TRUE(operUp(ns_, "va.100"));
  ASSERT_TRUE(operUp(peer, "vb.101"));
  EXPECT_FALSE(ping(ns_, "10.77.1.2", 2)) << "VLAN 100 reached a VLAN 101 interface";

  ASSERT_TRUE(run(peer, "link del vb.101"));
  ASSERT_TRUE(run(peer, "link add link vb name vb.100 type vlan id 100"));
  ASSERT_TRUE(run(peer, "addr add 10.77.1.2/24 dev vb.100"));
  ASSERT_TRUE(run(peer, "link set vb.100 up"));
  ASSERT_TRUE(operUp(peer, "vb.100"));
  EXPECT_TRUE(reaches(ns_, "10.77.1.2"));
}

// ---------------------------------------------------------------- netdevsim SR-IOV

class NetdevsimTest : public StockKernelTest {
 protected:
  void TearDown() override {
    if (!id_.empty()) (void)sh("echo " + id_ + " > /sys/bus/netdevsim/del_device");
    StockKernelTest::TearDown();
  }
  std::string id_;
};

TEST_F(NetdevsimTest, VfMacIsSetThroughThePhysicalFunction) {
  const fs::path bus = "/sys/bus/netdevsim";
  if (!fs::exists(bus)) (void)sh("modprobe netdevsim");
  if (!fs::exists(bus))
    GTEST_SKIP() << "SKIPPED: kernel " << kernelRelease()
                 << " has no netdevsim (no /sys/bus/netdevsim after modprobe netdevsim; Debian builds its kernel "
                    "without it, and the stock-kernel lane adds the one scripts/packages/vmlane.sh builds)";

  // The device's port is created in the namespace of the process that writes new_device.
  std::string id = std::to_string(1000 + ::getpid() % 30000);
  Cmd r = sh("ip netns exec " + ns_ + " sh -c 'echo \"" + id + " 1\" > " + (bus / "new_device").string() + "'");
  ASSERT_EQ(r.rc, 0) << r.out;
  id_ = id;
  fs::path dev = bus / "devices" / ("netdevsim" + id);
  ASSERT_TRUE(waitFor([&] { return fs::exists(dev / "sriov_numvfs"); })) << dev;
  r = sh("echo 2 > " + (dev / "sriov_numvfs").string());
  ASSERT_EQ(r.rc, 0) << r.out;

  std::string pf;
  ASSERT_TRUE(waitFor([&] {
    Json links = Json::parse(ip("-j link show").out, nullptr, false);
    for (const auto& l : links)
      if (l.value("ifname", "") != "lo") pf = l.value("ifname", "");
    return !pf.empty();
  })) << "no netdevsim port appeared in " << ns_;

  ASSERT_TRUE(run(ns_, "link set " + pf + " vf 0 mac 02:00:00:00:77:01"));
  ASSERT_TRUE(run(ns_, "link set " + pf + " vf 1 mac 02:00:00:00:77:02"));
  Json vfs = link(ns_, pf).value("vfinfo_list", Json::array());
  ASSERT_EQ(vfs.size(), 2u) << link(ns_, pf).dump();
  for (const auto& vf : vfs) {
    int n = vf.value("vf", -1);
    EXPECT_EQ(vf.value("address", ""), n == 0 ? "02:00:00:00:77:01" : "02:00:00:00:77:02") << vf.dump();
  }
}

}  // namespace
