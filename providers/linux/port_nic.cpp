// Port type nic: a physical NIC of the host (it exists; a manifest adopts it), for its SR-IOV virtual function
// count, linux.sriov.numVfs (sysfs sriov_numvfs of its device). The NIC may be a Switch's uplink at the same time:
// a nic Port manages nothing else of it (mtu, up, addresses stay the uplink's or the host's).
//
// The kernel changes a VF count only through 0 (N -> M with both non-zero is refused), and going to 0 destroys
// every VF: so a new count replaces every VF of the PF (the plan says so, and marks it disruptive). The update
// keeps the VF table it found and sets the settings of the VFs that exist again afterwards (a driver starts new
// VFs blank), so vf Ports keep their settings.
#include <linux/if_link.h>

#include "providers/linux/kind.h"
#include "providers/linux/session.h"
#include "providers/linux/sriov.h"
#include "providers/linux/sriov_check.h"

namespace vnetplan::lnx {

namespace {

void nicObserve(LinuxSession& s, Observation& obs) {
  for (const auto& [index, link] : s.links()) {
    const PfDevice dev = pfDevice(link);
    if (!dev.sriov) continue;
    auto n = readNumVfs(dev);
    if (!n.ok()) continue;
    ObservedObject obj;
    obj.addr = Address{s.targetName(), Kind::Port, link.name};
    Attrs& a = obj.attrs;
    a.set("type", "nic");
    a.set("linux.sriov.numVfs", static_cast<int64_t>(*n));
    // What a nic Port always is (check refuses other values): it manages only linux.sriov.
    a.set("up", true);
    a.set("addresses", Json::array());
    a.set("switch", nullptr);
    a.set("portGroup", nullptr);
    a.set("vlan", nullptr);
    obs.objects.emplace(obj.addr, std::move(obj));
  }
}

// Sets the VF count to `want` through 0 and gives the VFs that exist again the settings of `saved`.
Status setNumVfs(LinuxSession& s, const std::string& what, const LinkInfo& link, const PfDevice& dev, int want) {
  auto have = readNumVfs(dev);
  if (!have.ok()) return s.failure(what, have.error().message);
  if (*have == want) return {};
  auto saved = readVfs(s.nl(), link.name);
  if (!saved.ok()) return s.failure(what, saved.error().message);
  const std::string driver = dev.driver.empty() ? "?" : dev.driver;
  if (*have > 0)
    if (Status st = writeNumVfs(dev, 0); !st.ok())
      return s.failure(what, link.name + " (driver " + driver + ") kept its VFs: " + st.error().message);
  if (want > 0)
    if (Status st = writeNumVfs(dev, want); !st.ok()) {
      (void)writeNumVfs(dev, *have);  // back to how it was, settings included
      auto now = readVfs(s.nl(), link.name);
      for (const auto& c : *saved)
        for (const auto& n : now.ok() ? *now : std::vector<VfConfig>{})
          if (n.vf == c.vf) (void)setVfDiff(s.nl(), link.name, c, &n);
      return s.failure(what, link.name + " (driver " + driver + ") refused linux.sriov.numVfs " +
                                 std::to_string(want) + ": " + st.error().message);
    }
  auto fresh = readVfs(s.nl(), link.name);
  if (!fresh.ok()) return s.failure(what, fresh.error().message);
  for (const auto& c : *saved)
    for (const auto& n : *fresh)
      if (n.vf == c.vf) {
        VfField failed{};
        if (NlOutcome o = setVfDiff(s.nl(), link.name, c, &n, &failed); !o.ok())
          return s.failure(what, link.name + " (driver " + driver + ") refused VF " + std::to_string(c.vf) + " " +
                                     vfFieldName(failed) + " again: " + o.message);
      }
  return {};
}

Status nicApply(LinuxSession& s, const Step& step, const char* verb, const Attrs& a) {
  const std::string what = std::string(verb) + " nic " + step.addr.name;
  auto link = s.getLink(step.addr.name);
  if (!link.ok()) return s.failure(what, link.error().message);
  const PfDevice dev = pfDevice(*link);
  if (!dev.sriov)
    return s.failure(what, step.addr.name + " (driver " + driverOf(*link) + ") has no SR-IOV virtual functions");
  auto n = a.getInt("linux.sriov.numVfs");
  if (!n) return {};
  return setNumVfs(s, what, *link, dev, static_cast<int>(*n));
}

Status nicCreate(LinuxSession& s, const Step& step) {
  // Only a NIC the observe did not see as an SR-IOV PF gets here (a present one is adopted).
  return nicApply(s, step, "create", step.after);
}

Status nicUpdate(LinuxSession& s, const Step& step) {
  if (Status st = rejectReplaceOnly(s, kNicOps, step, {"type"}); !st.ok()) return st;
  for (const auto& path : step.changed)
    if (path != "linux.sriov.numVfs")
      return s.failure("update nic " + step.addr.name, "changing " + path + " is not supported for a nic Port");
  return nicApply(s, step, "update", step.after);
}

// The NIC stays; its VFs go.
Status nicRemove(LinuxSession& s, const Step& step) {
  Attrs none;
  none.set("linux.sriov.numVfs", 0);
  auto link = s.getLink(step.addr.name);
  if (!link.ok()) return {};
  return nicApply(s, step, "remove", none);
}

void nicDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action == StepAction::Create)
    if (auto n = step.after.getInt("linux.sriov.numVfs")) parts.push_back(std::to_string(*n) + " VFs");
  if (step.action == StepAction::Delete) parts.push_back("its VFs removed; the NIC stays");
}

void checkNumVfs(const FieldCheck& fc) { fc.requireInt(0, 65535, "VFs"); }

void nicCheck(const Resource& r, const Target& t, Diagnostics& diags) {
  auto fail = [&](const std::string& m, const char* code = "provider/unsupported") {
    diags.error(r.loc, "linux: " + m, code);
  };
  for (const char* p : {"mtu", "mac", "linux.txQueueLen"})
    if (r.attrs.has(p))
      fail("field " + std::string(p) + " is not supported for a nic Port: it manages only linux.sriov (the NIC's own "
           "settings are its Switch's, as an uplink)");
  if (r.attrs.getBool("up") == false) fail("field up is not supported for a nic Port: it manages only linux.sriov");
  if (!r.attrs.getStrings("addresses").empty())
    fail("field addresses is not supported for a nic Port: it manages only linux.sriov");
  for (const char* p : {"switch", "portGroup", "vlan"})
    if (const Json* v = r.attrs.find(p); v && !v->is_null())
      fail("field " + std::string(p) + " is not supported for a nic Port (make the NIC a Switch's uplink)");
  if (!r.attrs.has("linux.sriov.numVfs")) fail("field linux.sriov.numVfs is required for a nic Port", "provider/invalid");
  PfProbe p = probePf(t, r.addr.name);
  if (!p.reached || !p.link) return;  // not on this machine: the apply names it (sriov_check.h)
  if (!p.dev.sriov)
    diags.error(r.locOf("linux.sriov.numVfs"),
                "linux: field linux.sriov.numVfs of Port " + r.addr.name + ": " + r.addr.name + " (driver " +
                    (driverOf(*p.link).empty() ? "none" : driverOf(*p.link)) +
                    ") has no SR-IOV virtual functions (its device has no sriov_numvfs)",
                "provider/unsupported");
  else if (auto have = readNumVfs(p.dev); have.ok() && *have > 0 &&
                                          r.attrs.getInt("linux.sriov.numVfs").value_or(*have) != *have)
    // The plan's step says it too (JSON description); this is the line every text plan shows.
    diags.warning(r.locOf("linux.sriov.numVfs"),
                  "linux: Port " + r.addr.name + ": linux.sriov.numVfs " + std::to_string(*have) + " -> " +
                      std::to_string(*r.attrs.getInt("linux.sriov.numVfs")) + " replaces every VF of " + r.addr.name + " (the kernel removes all " +
                      std::to_string(*have) + " before it makes new ones): guests using them lose them",
                  "sriov/replace-vfs");
  if (auto total = p.dev.sriov ? readSysfs(p.dev.dir + "/sriov_totalvfs") : std::nullopt)
    if (auto n = r.attrs.getInt("linux.sriov.numVfs"); n && !total->empty() && *n > std::stoll(*total))
      diags.error(r.locOf("linux.sriov.numVfs"),
                  "linux: field linux.sriov.numVfs of Port " + r.addr.name + " is " + std::to_string(*n) + ", but " +
                      r.addr.name + " (driver " + p.dev.driver + ") has at most " + *total + " VFs",
                  "provider/unsupported");
}

}  // namespace

const KindOps kNicOps{.kind = Kind::Port,
                      .variant = "nic",
                      .label = "nic",
                      .traits = &kPortTraits,
                      .fields = {{"linux.sriov.numVfs", checkNumVfs}, {"switch", nullptr}, {"portGroup", nullptr},
                                 {"vlan", nullptr}},
                      .check = nicCheck,
                      .normalize = dropInheritedMtu,
                      .describe = nicDescribe,
                      .observe = nicObserve,
                      .create = nicCreate,
                      .update = nicUpdate,
                      .remove = nicRemove};

}  // namespace vnetplan::lnx
