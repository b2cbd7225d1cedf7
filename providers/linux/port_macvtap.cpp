// Port type macvtap: a VM's interface straight on a NIC (`link`), in mode bridge | vepa | private | passthru. The
// lower device hands a macvtap the frames addressed to its MAC, so the macvtap's MAC is the guest's (`mac`, as
// libvirt does) -- unlike a tap, whose host side must not carry it. Lower device and mode are fixed once made (a
// replace); it is never a bridge port. The character device (/dev/tapN) is udev's; qemu opens it.
#include <linux/if_link.h>
#include <netlink/attr.h>

#include "providers/linux/kind.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

namespace {

struct ModeName {
  const char* name;
  uint32_t value;
};
constexpr ModeName kModes[] = {{"private", MACVLAN_MODE_PRIVATE},
                               {"vepa", MACVLAN_MODE_VEPA},
                               {"bridge", MACVLAN_MODE_BRIDGE},
                               {"passthru", MACVLAN_MODE_PASSTHRU}};

bool macvtapMatches(const LinkInfo& l) { return l.kind == "macvtap"; }

void macvtapAttrs(LinuxSession& s, const LinkInfo& l, Attrs& a) {
  const LinkInfo* lower = l.linkNetnsid ? nullptr : s.linkAt(l.link);
  a.set("link", lower ? Json(lower->name) : Json(nullptr));
  a.set("mode", nullptr);
  const uint64_t mode = l.get(IFLA_MACVLAN_MODE).value_or(0);
  for (const auto& m : kModes)
    if (m.value == mode) a.set("mode", m.name);
}

bool putMacvtap(nl_msg* m, const Attrs& a) {
  uint32_t mode = MACVLAN_MODE_BRIDGE;
  const std::string want = a.getString("mode").value_or("bridge");
  for (const auto& k : kModes)
    if (want == k.name) mode = k.value;
  return nla_put_u32(m, IFLA_MACVLAN_MODE, mode) == 0;
}

Status macvtapCreate(LinuxSession& s, const Step& step) {
  auto lower = lowerIndex(s, kMacvtapOps, step.addr.name, step.after);
  if (!lower.ok()) return lower.error();
  return createPortLink(s, kMacvtapOps, step, "macvtap", *lower, putMacvtap);
}

Status macvtapUpdate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  if (Status st = rejectReplaceOnly(s, kMacvtapOps, step, {"type", "link", "mode"}); !st.ok()) return st;
  for (const auto& path : step.changed)
    if (path != "mtu" && path != "mac" && path != "up" && path != "addresses" && path != "linux.txQueueLen")
      return s.failure("update macvtap " + name, "changing " + path + " is not supported by the linux provider");
  auto change = portLinkChange(s, kMacvtapOps, step);
  if (!change.ok()) return change.error();
  if (Status st = applyPortChange(s, kMacvtapOps, step, *change); !st.ok()) return st;
  if (changes(step, "addresses")) return syncAddresses(s, kMacvtapOps, name, step.before, step.after);
  return {};
}

Status macvtapRemove(LinuxSession& s, const Step& step) { return deleteLink(s, kMacvtapOps, step.addr.name); }

void macvtapObserve(LinuxSession& s, Observation& obs) {
  s.observeLinks(obs, kMacvtapOps, macvtapMatches, macvtapAttrs);
}

void macvtapDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  if (auto link = step.after.getString("link"))
    parts.push_back("on " + *link + ", mode " + step.after.getString("mode").value_or("bridge"));
}

void checkMode(const FieldCheck& fc) {
  if (!fc.requireString()) return;
  for (const auto& m : kModes)
    if (fc.value.get<std::string>() == m.name) return;
  fc.fail("field mode must be bridge, vepa, private or passthru");
}

void macvtapCheck(const Resource& r, const Target&, Diagnostics& diags) {
  auto fail = [&](const std::string& m) { diags.error(r.loc, "linux: " + m, "provider/invalid"); };
  if (!r.attrs.has("link")) fail("field link is required for a macvtap Port (the NIC it sits on)");
}

void macvtapNormalize(Resource& r) {
  dropInheritedMtu(r);
  if (!r.attrs.has("mode")) {
    r.attrs.set("mode", "bridge");
    r.origins["mode"] = AttrOrigin{Origin::Default, ""};
  }
}

}  // namespace

const KindOps kMacvtapOps{.kind = Kind::Port,
                          .variant = "macvtap",
                          .label = "macvtap",
                          .traits = &kPortTraits,
                          .fields = {{"link", checkInterfaceNameField}, {"mode", checkMode}},
                          .check = macvtapCheck,
                          .normalize = macvtapNormalize,
                          .describe = macvtapDescribe,
                          .observe = macvtapObserve,
                          .create = macvtapCreate,
                          .update = macvtapUpdate,
                          .remove = macvtapRemove};

}  // namespace vnetplan::lnx
