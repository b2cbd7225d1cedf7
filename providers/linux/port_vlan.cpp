// Port type vlan: an 802.1Q sub-interface (`link` + `vlanId`), created in one RTM_NEWLINK. Its lower device and
// VLAN id are fixed once made (the traits plan a replace); it may itself be a bridge port (switch / portGroup).
// Its MTU follows the lower device unless set: an MTU inherited from a switch is dropped.
#include <linux/if_link.h>
#include <netlink/attr.h>

#include "providers/linux/attach.h"
#include "providers/linux/caps.h"
#include "providers/linux/kind.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

namespace {

bool vlanMatches(const LinkInfo& l) { return l.kind == "vlan"; }

void vlanAttrs(LinuxSession& s, const LinkInfo& l, Attrs& a) {
  const LinkInfo* lower = l.linkNetnsid ? nullptr : s.linkAt(l.link);
  a.set("link", lower ? Json(lower->name) : Json(nullptr));
  a.set("vlanId", static_cast<int64_t>(l.get(IFLA_VLAN_ID).value_or(0)));
}

bool putVlan(nl_msg* m, const Attrs& a) {
  return nla_put_u16(m, IFLA_VLAN_ID, static_cast<uint16_t>(a.getInt("vlanId").value_or(0))) == 0;
}

Status vlanCreate(LinuxSession& s, const Step& step) {
  auto lower = lowerIndex(s, kVlanOps, step.addr.name, step.after);
  if (!lower.ok()) return lower.error();
  return createPortLink(s, kVlanOps, step, "vlan", *lower, putVlan);
}

Status vlanUpdate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  if (Status st = rejectReplaceOnly(s, kVlanOps, step, {"type", "link", "vlanId"}); !st.ok()) return st;
  for (const auto& path : step.changed)
    if (path != "mtu" && path != "mac" && path != "switch" && path != "portGroup" && path != "vlan" &&
        path != "vlan.trunk" && path != "up" && path != "addresses" && path != "linux.txQueueLen")
      return s.failure("update vlan " + name, "changing " + path + " is not supported by the linux provider");
  auto change = portLinkChange(s, kVlanOps, step);
  if (!change.ok()) return change.error();
  if (Status st = applyPortChange(s, kVlanOps, step, *change); !st.ok()) return st;
  if (changes(step, "addresses")) return syncAddresses(s, kVlanOps, name, step.before, step.after);
  return {};
}

Status vlanRemove(LinuxSession& s, const Step& step) { return removePort(s, kVlanOps, step); }

void vlanObserve(LinuxSession& s, Observation& obs) { s.observeLinks(obs, kVlanOps, vlanMatches, vlanAttrs); }

void vlanDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  if (auto link = step.after.getString("link"))
    parts.push_back("VLAN " + std::to_string(step.after.getInt("vlanId").value_or(0)) + " of " + *link);
}

void checkVlanId(const FieldCheck& fc) { fc.requireInt(1, 4094); }

void vlanCheck(const Resource& r, const Target& t, Diagnostics& diags) {
  checkBridgePort(r, t, diags);
  auto fail = [&](const std::string& m, const char* code = "provider/invalid") {
    diags.error(r.loc, "linux: " + m, code);
  };
  if (!r.attrs.has("link")) fail("field link is required for a vlan Port (the device it tags frames on)");
  if (!r.attrs.has("vlanId")) fail("field vlanId is required for a vlan Port (1-4094)");
  const KernelCaps& caps = kernelCaps();
  if (caps.vlanDevices == Cap::No)
    fail("Port " + r.addr.name + " of type vlan needs 802.1Q VLAN devices, but " + lacks(caps, "8021q support"),
         "provider/unsupported");
}

void vlanNormalize(Resource& r) {
  dropInheritedMtu(r);
  if (const Json* v = r.attrs.find("vlanId"); v && v->is_string()) {
    const std::string t = v->get<std::string>();
    if (!t.empty() && t.size() <= 4 && t.find_first_not_of("0123456789") == std::string::npos)
      r.attrs.set("vlanId", std::stoll(t));
  }
}

}  // namespace

const KindOps kVlanOps{.kind = Kind::Port,
                       .variant = "vlan",
                       .label = "vlan",
                       .traits = &kPortTraits,
                       .fields = withBridgePortFields({{"link", checkInterfaceNameField}, {"vlanId", checkVlanId}}),
                       .check = vlanCheck,
                       .normalize = vlanNormalize,
                       .describe = vlanDescribe,
                       .observe = vlanObserve,
                       .create = vlanCreate,
                       .update = vlanUpdate,
                       .remove = vlanRemove};

}  // namespace vnetplan::lnx
