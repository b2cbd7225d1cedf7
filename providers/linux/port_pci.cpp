// Port type pci: a host PCI device (`pciAddress`, e.g. a NIC or one of its VFs) handed to a VM by PCI passthrough:
// bound to vfio-pci through driver_override (so that no other driver takes it back on a re-probe), for qemu's
// `-device vfio-pci,host=...`. Its driver from before is restored when the Port goes (and by a rollback).
//
// Refused at plan time where vfio-pci cannot work: a host without IOMMU groups (no IOMMU, or it is off: VT-d /
// AMD-Vi in firmware, intel_iommu=on), a device outside any IOMMU group, a target other than the host namespace
// (a PCI device belongs to the host, not to a network namespace).
//
// A PCI device has nowhere in the kernel to keep a note, so the Port's name and the device's driver from before
// are kept in /run/vnetplan/pci/<address> (a tmpfs: gone with a reboot, as is the binding itself).
#include <unistd.h>

#include <cctype>

#include <filesystem>
#include <fstream>

#include "providers/linux/kind.h"
#include "providers/linux/session.h"
#include "providers/linux/sriov.h"

namespace vnetplan::lnx {

namespace {

namespace fs = std::filesystem;

constexpr const char* kRecordDir = "/run/vnetplan/pci";
constexpr const char* kVfio = "vfio-pci";

std::string deviceDir(const std::string& addr) { return "/sys/bus/pci/devices/" + addr; }

struct PciRecord {
  std::string port, driver;  // driver "" = it had none
};

std::optional<PciRecord> readRecord(const std::string& addr) {
  std::ifstream in(std::string(kRecordDir) + "/" + addr);
  PciRecord r;
  if (!in || !std::getline(in, r.port) || r.port.empty()) return std::nullopt;
  std::getline(in, r.driver);
  return r;
}

Status writeRecord(const std::string& addr, const PciRecord& r) {
  std::error_code ec;
  fs::create_directories(kRecordDir, ec);
  const std::string path = std::string(kRecordDir) + "/" + addr, tmp = path + ".new";
  {
    std::ofstream out(tmp);
    out << r.port << "\n" << r.driver << "\n";
    if (!out.flush()) return err("cannot write " + tmp);
  }
  fs::rename(tmp, path, ec);
  if (ec) return err("cannot write " + path + ": " + ec.message());
  return {};
}

bool hostHasIommuGroups() {
  std::error_code ec;
  return fs::exists("/sys/kernel/iommu_groups", ec) && !fs::is_empty("/sys/kernel/iommu_groups", ec);
}

// Binds `addr` to `driver` ("" = whatever the kernel picks, or none): driver_override, unbind, bind.
Status rebind(const std::string& addr, const std::string& override, const std::string& driver) {
  const std::string dir = deviceDir(addr);
  if (Status st = writeSysfs(dir + "/driver_override", override.empty() ? "\n" : override); !st.ok()) return st;
  if (!linkTarget(dir + "/driver").empty())
    if (Status st = writeSysfs(dir + "/driver/unbind", addr); !st.ok()) return st;
  if (!driver.empty() && fs::exists("/sys/bus/pci/drivers/" + driver)) {
    if (Status st = writeSysfs("/sys/bus/pci/drivers/" + driver + "/bind", addr); !st.ok()) return st;
  } else if (!override.empty() || !driver.empty()) {
    if (Status st = writeSysfs("/sys/bus/pci/drivers_probe", addr); !st.ok()) return st;
  }
  const std::string now = linkTarget(dir + "/driver");
  const std::string want = override.empty() ? driver : override;
  if (!want.empty() && now != want)
    return err(addr + " is bound to " + (now.empty() ? "no driver" : now) + ", not " + want);
  return {};
}

void pciObserve(LinuxSession& s, Observation& obs) {
  if (!s.netns().empty()) return;  // PCI devices are the host's (check refuses other targets)
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kRecordDir, ec)) {
    const std::string addr = e.path().filename().string();
    auto rec = readRecord(addr);
    if (!rec || addr.find('.') == std::string::npos || e.path().extension() == ".new") continue;
    // Bound elsewhere meanwhile (by hand, a driver reload): missing, so the plan binds it again.
    if (linkTarget(deviceDir(addr) + "/driver") != kVfio) continue;
    ObservedObject obj;
    obj.addr = Address{s.targetName(), Kind::Port, rec->port};
    Attrs& a = obj.attrs;
    a.set("type", "pci");
    a.set("pciAddress", addr);
    // What a pci Port always is (check refuses other values).
    a.set("up", true);
    a.set("addresses", Json::array());
    a.set("switch", nullptr);
    a.set("portGroup", nullptr);
    a.set("vlan", nullptr);
    obs.objects.emplace(obj.addr, std::move(obj));
  }
}

Status pciCreate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const std::string addr = step.after.getString("pciAddress").value_or("");
  const std::string what = "bind PCI device " + addr + " of Port " + name + " to vfio-pci";
  if (!fs::exists(deviceDir(addr))) return s.failure(what, "no PCI device " + addr);
  if (!fs::exists(deviceDir(addr) + "/iommu_group"))
    return s.failure(what, addr + " is in no IOMMU group: vfio-pci cannot hand it to a VM");
  if (!fs::exists("/sys/bus/pci/drivers/vfio-pci"))
    return s.failure(what, "the vfio-pci driver is not loaded (modprobe vfio-pci)");
  if (auto other = readRecord(addr); other && other->port != name)
    return s.failure(what, addr + " is already the Port " + other->port);
  std::string before = linkTarget(deviceDir(addr) + "/driver");
  if (before == kVfio)
    if (auto rec = readRecord(addr)) before = rec->driver;  // bound by an earlier run of this Port
  // The record first: whatever happens next, the driver to give the device back to is known.
  if (Status st = writeRecord(addr, {name, before}); !st.ok()) return s.failure(what, st.error().message);
  if (Status st = rebind(addr, kVfio, ""); !st.ok()) {
    (void)rebind(addr, "", before);  // all or nothing
    std::error_code ec;
    fs::remove(std::string(kRecordDir) + "/" + addr, ec);
    return s.failure(what, st.error().message);
  }
  return {};
}

Status pciRemove(LinuxSession& s, const Step& step) {
  const std::string addr = step.before.getString("pciAddress").value_or("");
  const std::string what = "give PCI device " + addr + " of Port " + step.addr.name + " back to its driver";
  auto rec = readRecord(addr);
  if (!rec || rec->port != step.addr.name) return {};
  // A device that was vfio-pci's before the Port stays so.
  if (fs::exists(deviceDir(addr)) && rec->driver != kVfio)
    if (Status st = rebind(addr, "", rec->driver); !st.ok()) return s.failure(what, st.error().message);
  std::error_code ec;
  fs::remove(std::string(kRecordDir) + "/" + addr, ec);
  return {};
}

Status pciUpdate(LinuxSession& s, const Step& step) {
  if (Status st = rejectReplaceOnly(s, kPciOps, step, {"type", "pciAddress"}); !st.ok()) return st;
  if (!step.changed.empty())
    return s.failure("update pci " + step.addr.name, "changing " + step.changed.front() + " is not supported");
  return {};
}

void pciDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action == StepAction::Create) {
    const std::string addr = step.after.getString("pciAddress").value_or("?");
    const std::string drv = linkTarget(deviceDir(addr) + "/driver");
    parts.push_back(addr + " to vfio-pci" + (drv.empty() || drv == kVfio ? "" : ", from " + drv));
  }
  if (step.action == StepAction::Delete) {
    const std::string addr = step.before.getString("pciAddress").value_or("?");
    parts.push_back(addr + " back to its driver from before");
  }
}

void checkPciAddress(const FieldCheck& fc) {
  if (!fc.requireString()) return;
  const std::string a = fc.value.get<std::string>();
  const bool shape = a.size() == 12 && a[4] == ':' && a[7] == ':' && a[10] == '.' && a[11] >= '0' && a[11] <= '7' &&
                     std::isxdigit(static_cast<unsigned char>(a[0])) &&
                     a.find_first_not_of("0123456789abcdef:.") == std::string::npos;
  if (!shape) fc.fail("field pciAddress must be a PCI address like 0000:00:04.0 (lowercase hex), not '" + a + "'");
}

void pciCheck(const Resource& r, const Target& t, Diagnostics& diags) {
  auto fail = [&](const std::string& m, const char* code = "provider/unsupported") {
    diags.error(r.loc, "linux: " + m, code);
  };
  for (const char* p : {"mtu", "mac", "linux.txQueueLen"})
    if (r.attrs.has(p))
      fail("field " + std::string(p) + " is not supported for a pci Port: the device belongs to the guest");
  if (r.attrs.getBool("up") == false) fail("field up is not supported for a pci Port");
  if (!r.attrs.getStrings("addresses").empty()) fail("field addresses is not supported for a pci Port");
  for (const char* p : {"switch", "portGroup", "vlan"})
    if (const Json* v = r.attrs.find(p); v && !v->is_null())
      fail("field " + std::string(p) + " is not supported for a pci Port: the guest has the device itself");
  auto addr = r.attrs.getString("pciAddress");
  if (!addr) return fail("field pciAddress is required for a pci Port", "provider/invalid");
  if (auto ns = t.spec.getString("netns"))
    return fail("Port " + r.addr.name + " of type pci on target " + t.name + " (netns " + *ns +
                "): a PCI device belongs to the host, not to a network namespace; use a Target without netns");
  // Not on the machine running validate: the apply names it.
  if (!fs::exists(deviceDir(*addr))) return;
  if (!hostHasIommuGroups())
    return diags.error(r.locOf("pciAddress"),
                       "linux: Port " + r.addr.name + " of type pci is refused: this host has no IOMMU groups "
                       "(/sys/kernel/iommu_groups is empty: no IOMMU, or it is off; enable VT-d/AMD-Vi in firmware "
                       "and intel_iommu=on on the kernel command line); vfio-pci cannot hand " + *addr +
                           " to a VM without one",
                       "provider/unsupported");
  const std::string group = linkTarget(deviceDir(*addr) + "/iommu_group");
  if (group.empty())
    return diags.error(r.locOf("pciAddress"),
                       "linux: Port " + r.addr.name + " of type pci is refused: " + *addr +
                           " is in no IOMMU group; vfio-pci cannot hand it to a VM",
                       "provider/unsupported");
  // vfio gives a VM a whole group: the others in it must be vfio's (or driverless) too.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/kernel/iommu_groups/" + group + "/devices", ec)) {
    const std::string other = e.path().filename().string();
    const std::string drv = linkTarget(e.path().string() + "/driver");
    if (other != *addr && !drv.empty() && drv != kVfio && drv != "pcieport")
      diags.warning(r.locOf("pciAddress"),
                    "linux: Port " + r.addr.name + ": IOMMU group " + group + " of " + *addr + " also holds " +
                        other + " (driver " + drv + "); a VM can use the group only when that device is bound to "
                        "vfio-pci too",
                    "pci/iommu-group");
  }
}

}  // namespace

const KindOps kPciOps{.kind = Kind::Port,
                      .variant = "pci",
                      .label = "pci",
                      .traits = &kPortTraits,
                      .fields = {{"pciAddress", checkPciAddress}, {"switch", nullptr}, {"portGroup", nullptr},
                                 {"vlan", nullptr}},
                      .check = pciCheck,
                      .normalize = dropInheritedMtu,
                      .describe = pciDescribe,
                      .observe = pciObserve,
                      .create = pciCreate,
                      .update = pciUpdate,
                      .remove = pciRemove};

}  // namespace vnetplan::lnx
