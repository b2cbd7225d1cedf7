// PCI passthrough Ports (type pci) in the stock-kernel lane: the VM's emulated e1000 NIC is handed to vfio-pci
// through driver_override and given back to e1000 (q35 machine with an emulated Intel IOMMU, intel_iommu=on), and
// refused at plan time on a machine without an IOMMU (plain pc). Both rebind a real PCI device, so they run only
// inside the lane's VM (its initramfs has /vmlane/config): on any other machine they SKIP and touch nothing.
// The target is the VM's host namespace: a PCI device belongs to no network namespace.
#include <fstream>

#include "tests/integration/harness.h"

using namespace vnptest;

namespace {

const char* kTarget = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: host}
spec: {provider: linux}
)";

std::string port(const std::string& name, const std::string& spec) {
  return "---\napiVersion: vnetplan.io/v1\nkind: Port\nmetadata: {name: " + name + "}\nspec: {targets: [host], " +
         spec + "}\n";
}

std::string driverOf(const std::string& addr) {
  std::error_code ec;
  auto t = fs::read_symlink("/sys/bus/pci/devices/" + addr + "/driver", ec);
  return ec ? "" : t.filename().string();
}

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

bool iommuGroups() {
  std::error_code ec;
  return fs::exists("/sys/kernel/iommu_groups", ec) && !fs::is_empty("/sys/kernel/iommu_groups", ec);
}

}  // namespace

class PciLane : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/vmlane/config"))
      GTEST_SKIP() << "SKIPPED: PCI passthrough is tested only inside the stock-kernel lane's VM (it rebinds a PCI "
                      "device; this machine's are left alone)";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/bus/pci/devices", ec))
      if (driverOf(e.path().filename().string()) == "e1000") addr = e.path().filename().string();
    if (addr.empty()) GTEST_SKIP() << "SKIPPED: no e1000 PCI device in this VM (the lane adds one with --nic e1000)";
    dir = fs::temp_directory_path() / ("vnp-pci-" + std::to_string(getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
  RunResult vnetplan(const std::string& args) {
    return runShell(std::string(VNETPLAN_BINARY) + " --state file://" + (dir / "state").string() + " " + args, dir, 120);
  }
  std::string manifest(const std::string& yaml, const std::string& name) {
    writeFile(dir / name, yaml);
    return (dir / name).string();
  }
  std::string addr;
  fs::path dir;
};

using PciPassthroughLane = PciLane;
using PciNoIommuLane = PciLane;

// Bind to vfio-pci, second plan empty, a rollback after an injected failure, drift (rebound by hand), release.
TEST_F(PciPassthroughLane, BindsToVfioAndGivesTheDeviceBack) {
  if (!iommuGroups()) GTEST_FAIL() << "the q35-iommu lane has no IOMMU groups";
  auto f = manifest(kTarget + port("gpu0", "type: pci, pciAddress: \"" + addr + "\""), "f.yaml");
  auto empty = manifest(kTarget, "empty.yaml");
  auto p = vnetplan("plan -f " + f);
  ASSERT_EQ(p.exitCode, 0) << p.out << p.err;
  EXPECT_NE(p.out.find("pciAddress"), std::string::npos) << p.out;

  // A failure after the bind: rolled back, e1000 has the device again and its netdev is back.
  auto r = runShell("VNETPLAN_FAIL_AT_STEP=2 " + std::string(VNETPLAN_BINARY) + " --state file://" +
                        (dir / "state").string() + " apply --auto-approve -f " + f + " -f " +
                        manifest(port("tap9", "type: tap"), "tap.yaml"),
                    dir);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_EQ(driverOf(addr), "e1000") << r.out << r.err;
  EXPECT_FALSE(fs::exists("/run/vnetplan/pci/" + addr));
  EXPECT_TRUE(fs::exists("/sys/bus/pci/devices/" + addr + "/net")) << "e1000 made no netdev again";

  r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(driverOf(addr), "vfio-pci");
  EXPECT_EQ(readText("/sys/bus/pci/devices/" + addr + "/driver_override"), "vfio-pci");
  EXPECT_TRUE(fs::exists("/dev/vfio/" + fs::read_symlink("/sys/bus/pci/devices/" + addr + "/iommu_group")
                                            .filename()
                                            .string()));
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 0);

  // Drift: given back to e1000 by hand; the plan binds it again.
  // (in a subshell: runShell appends its own output redirection to the command line)
  ASSERT_EQ(runShell("(echo > /sys/bus/pci/devices/" + addr + "/driver_override && echo " + addr +
                         " > /sys/bus/pci/devices/" + addr + "/driver/unbind && echo " + addr +
                         " > /sys/bus/pci/drivers/e1000/bind)",
                     dir)
                .exitCode,
            0);
  ASSERT_EQ(driverOf(addr), "e1000");
  EXPECT_EQ(vnetplan("plan --detailed-exitcode -f " + f).exitCode, 2);
  r = vnetplan("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(driverOf(addr), "vfio-pci");
  EXPECT_EQ(readText("/run/vnetplan/pci/" + addr), "gpu0\ne1000");

  // Released: back to e1000 with no override left.
  r = vnetplan("apply --auto-approve -f " + empty);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(driverOf(addr), "e1000") << r.out << r.err;
  EXPECT_EQ(readText("/sys/bus/pci/devices/" + addr + "/driver_override"), "(null)");
  EXPECT_FALSE(fs::exists("/run/vnetplan/pci/" + addr));
}

TEST_F(PciNoIommuLane, RefusedWithoutIommuGroups) {
  if (iommuGroups()) GTEST_SKIP() << "SKIPPED: this machine has IOMMU groups (the refusal runs on the pc lane)";
  auto f = manifest(kTarget + port("gpu0", "type: pci, pciAddress: \"" + addr + "\""), "f.yaml");
  auto r = vnetplan("plan -f " + f);
  EXPECT_EQ(r.exitCode, 1) << r.out;
  EXPECT_NE(r.err.find("Port gpu0 of type pci is refused: this host has no IOMMU groups"), std::string::npos) << r.err;
  EXPECT_EQ(driverOf(addr), "e1000");
}
