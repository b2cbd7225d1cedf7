// Port type vf: virtual function `vf` of the SR-IOV physical function `link`, given to a VM (by PCI passthrough
// of the VF, or by a macvtap/its own netdev on the host). The VF itself is made by the PF (linux.sriov.numVfs of
// a nic Port); this Port sets what the PF keeps per VF (IFLA_VFINFO_LIST): mac, vlan + linux.vlanQos,
// shaping.averageKbps (max_tx_rate) + linux.minTxRate, security (spoofchk, trust) and linkState. The Port's name
// is recorded on the PF (sriov.h) with the VF's settings from before, which its removal (and a rollback of its
// creation) restores. A VF no Port names is observed as <pf>v<vf> (shown by `show --all`, adoptable).
#include <linux/if_link.h>

#include <set>

#include "providers/linux/kind.h"
#include "providers/linux/records.h"
#include "providers/linux/session.h"
#include "providers/linux/sriov.h"
#include "providers/linux/sriov_check.h"

namespace vnetplan::lnx {

namespace {

// The Port attributes of one VF (manifest vocabulary).
void vfAttrs(const std::string& pf, const VfConfig& c, Attrs& a) {
  a.set("type", "vf");
  a.set("link", pf);
  a.set("vf", static_cast<int64_t>(c.vf));
  a.set("mac", c.mac == "00:00:00:00:00:00" ? Json(nullptr) : Json(c.mac));
  a.set("vlan", c.vlan ? Json(static_cast<int64_t>(c.vlan)) : Json(nullptr));
  a.set("linux.vlanQos", static_cast<int64_t>(c.qos));
  a.set("shaping.averageKbps", c.maxRate ? Json(c.maxRate * 1000) : Json(nullptr));
  a.set("linux.minTxRate", c.minRate);
  if (c.spoofchk >= 0) a.set("security.allowForgedTransmits", c.spoofchk == 0);
  if (c.trust >= 0) a.set("security.allowMacChanges", c.trust == 1);
  a.set("linkState", linkStateName(c.linkState));
  // A VF is no host interface: these are what a vf Port always is (check refuses other values).
  a.set("up", true);
  a.set("addresses", Json::array());
  a.set("switch", nullptr);
  a.set("portGroup", nullptr);
}

// `base` with the settings `a` declares.
VfConfig desiredVf(const Attrs& a, VfConfig base) {
  if (const Json* m = a.find("mac")) base.mac = m->is_string() ? m->get<std::string>() : "00:00:00:00:00:00";
  if (const Json* v = a.find("vlan")) {
    base.vlan = v->is_number_integer() ? v->get<int>() : 0;
    base.vlanProto = 0x8100;
  }
  if (auto q = a.getInt("linux.vlanQos")) base.qos = static_cast<int>(*q);
  if (base.vlan == 0) base.qos = 0;
  if (const Json* r = a.find("shaping.averageKbps")) base.maxRate = r->is_number_integer() ? r->get<int64_t>() / 1000 : 0;
  if (auto r = a.getInt("linux.minTxRate")) base.minRate = *r;
  if (auto f = a.getBool("security.allowForgedTransmits")) base.spoofchk = *f ? 0 : 1;
  if (auto t = a.getBool("security.allowMacChanges")) base.trust = *t ? 1 : 0;
  if (auto s = a.getString("linkState")) base.linkState = linkStateOf(*s).value_or(IFLA_VF_LINK_STATE_AUTO);
  return base;
}

void vfObserve(LinuxSession& s, Observation& obs) {
  for (const auto& [index, link] : s.links()) {
    std::vector<VfRecord> records;
    for (const auto& alt : link.altnames)
      if (auto r = parseVfRecord(alt)) records.push_back(*r);
    const PfDevice dev = pfDevice(link);
    if (records.empty() && !dev.sriov) continue;
    auto vfs = readVfs(s.nl(), link.name);
    if (!vfs.ok()) continue;  // gone since the dump
    std::set<int> named;
    for (const auto& r : records) {
      for (const auto& c : *vfs) {
        if (c.vf != r.pre.vf) continue;
        ObservedObject obj;
        obj.addr = Address{s.targetName(), Kind::Port, r.port};
        vfAttrs(link.name, c, obj.attrs);
        obs.objects.emplace(obj.addr, std::move(obj));
        named.insert(c.vf);
      }
    }
    for (const auto& c : *vfs) {
      const std::string name = link.name + "v" + std::to_string(c.vf);
      if (named.count(c.vf) || !ifnameProblem(name).empty()) continue;
      ObservedObject obj;
      obj.addr = Address{s.targetName(), Kind::Port, name};
      vfAttrs(link.name, c, obj.attrs);
      obs.objects.emplace(obj.addr, std::move(obj));
    }
  }
}

struct Pf {
  LinkInfo link;
  std::vector<VfConfig> vfs;
  std::optional<VfRecord> record;  // the record of this Port's VF, if any
  std::string recordAlt;
};

Result<Pf> loadPf(LinuxSession& s, const std::string& what, const std::string& port, const Attrs& a) {
  auto pfName = a.getString("link");
  if (!pfName) return s.failure(what, "no physical function (link) given");
  auto link = s.getLink(*pfName);
  if (!link.ok()) return s.failure(what, link.error().message);
  auto vfs = readVfs(s.nl(), *pfName);
  if (!vfs.ok()) return s.failure(what, vfs.error().message);
  Pf pf{std::move(link.value()), std::move(vfs.value()), std::nullopt, ""};
  const int vf = static_cast<int>(a.getInt("vf").value_or(-1));
  for (const auto& alt : pf.link.altnames)
    if (auto r = parseVfRecord(alt); r && (r->port == port || r->pre.vf == vf)) {
      pf.record = r;
      pf.recordAlt = alt;
      if (r->port == port) break;
    }
  return pf;
}

const VfConfig* vfAt(const Pf& pf, int vf) {
  for (const auto& c : pf.vfs)
    if (c.vf == vf) return &c;
  return nullptr;
}

Error refused(LinuxSession& s, const std::string& what, const Pf& pf, VfField f, const NlOutcome& o) {
  return s.failure(what, pf.link.name + " (driver " + driverOf(pf.link) + ") refused " + vfFieldName(f) + ": " +
                             o.message);
}

Status vfCreate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const std::string what = "create vf " + name;
  auto pf = loadPf(s, what, name, step.after);
  if (!pf.ok()) return pf.error();
  const int vf = static_cast<int>(step.after.getInt("vf").value_or(-1));
  const VfConfig* have = vfAt(*pf, vf);
  if (!have)
    return s.failure(what, pf->link.name + " has " + std::to_string(pf->vfs.size()) + " VFs, no VF " +
                               std::to_string(vf) + " (linux.sriov.numVfs of its nic Port)");
  if (pf->record && pf->record->port != name)
    return s.failure(what, "VF " + std::to_string(vf) + " of " + pf->link.name + " is already the Port " +
                               pf->record->port);
  const VfConfig pre = *have;
  const VfConfig want = desiredVf(step.after, pre);
  VfField failed{};
  if (NlOutcome o = setVfDiff(s.nl(), pf->link.name, want, &pre, &failed); !o.ok()) {
    (void)setVfDiff(s.nl(), pf->link.name, pre, &want);  // all or nothing
    return refused(s, what, *pf, failed, o);
  }
  if (!pf->record) {
    if (NlOutcome o = addAltname(s.nl(), pf->link.index, vfRecord(pre, name)); !o.ok()) {
      (void)setVfDiff(s.nl(), pf->link.name, pre, &want);
      return s.failure(what, "cannot record the VF on " + pf->link.name + ": " + o.message);
    }
  }
  return {};
}

Status vfUpdate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const std::string what = "update vf " + name;
  if (Status st = rejectReplaceOnly(s, kVfOps, step, {"type", "link", "vf"}); !st.ok()) return st;
  auto pf = loadPf(s, what, name, step.after);
  if (!pf.ok()) return pf.error();
  const int vf = static_cast<int>(step.after.getInt("vf").value_or(-1));
  const VfConfig* have = vfAt(*pf, vf);
  if (!have) return s.failure(what, pf->link.name + " has no VF " + std::to_string(vf));
  const VfConfig before = *have;
  const VfConfig want = desiredVf(step.after, before);
  VfField failed{};
  if (NlOutcome o = setVfDiff(s.nl(), pf->link.name, want, &before, &failed); !o.ok()) {
    (void)setVfDiff(s.nl(), pf->link.name, before, &want);
    return refused(s, what, *pf, failed, o);
  }
  return {};
}

Status vfRemove(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const std::string what = "remove vf " + name;
  auto pfName = step.before.getString("link");
  if (!pfName || !s.getLink(*pfName).ok()) return {};  // the PF (and its VFs) are gone
  auto pf = loadPf(s, what, name, step.before);
  if (!pf.ok()) return pf.error();
  if (!pf->record || pf->record->port != name) return {};  // an adopted VF without a record: nothing to restore
  if (const VfConfig* have = vfAt(*pf, pf->record->pre.vf)) {
    VfField failed{};
    if (NlOutcome o = setVfDiff(s.nl(), pf->link.name, pf->record->pre, have, &failed); !o.ok())
      return refused(s, what, *pf, failed, o);
  }
  if (NlOutcome o = delAltname(s.nl(), pf->link.index, pf->recordAlt); !o.ok())
    return s.failure(what, "cannot drop the VF's record on " + pf->link.name + ": " + o.message);
  return {};
}

void vfDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action == StepAction::Create) {
    parts.push_back("VF " + std::to_string(step.after.getInt("vf").value_or(-1)) + " of " +
                    step.after.getString("link").value_or("?"));
    if (auto v = step.after.getInt("vlan"); v && *v)
      parts.push_back("vlan " + std::to_string(*v) + " qos " + std::to_string(step.after.getInt("linux.vlanQos").value_or(0)));
    if (auto r = step.after.getInt("shaping.averageKbps")) parts.push_back("max " + std::to_string(*r / 1000) + " Mbps");
  }
  if (step.action == StepAction::Delete)
    parts.push_back("VF " + std::to_string(step.before.getInt("vf").value_or(-1)) + " of " +
                    step.before.getString("link").value_or("?") + " back to its settings from before");
}

void checkVfIndex(const FieldCheck& fc) { fc.requireInt(0, 65535); }
void checkVfVlan(const FieldCheck& fc) {
  if (fc.value.is_null()) return;
  if (fc.path == "vlan.trunk") return fc.fail("a VF carries one VLAN (the PF tags its frames); a trunk is not possible");
  fc.requireInt(0, 4094);
}
void checkQos(const FieldCheck& fc) { fc.requireInt(0, 7); }
void checkMinRate(const FieldCheck& fc) { fc.requireInt(0, 4294967295LL, "Mbps"); }
void checkAverage(const FieldCheck& fc) {
  if (!fc.requireInt(1000, 4294967295000LL, "Kbps")) return;
  if (fc.value.get<int64_t>() % 1000 != 0)
    fc.fail("field shaping.averageKbps of a vf Port must be whole Mbps (a multiple of 1000): the PF limits a VF's "
            "transmit rate in Mbps (max_tx_rate)");
}
void checkLinkState(const FieldCheck& fc) {
  if (!fc.requireString()) return;
  if (!linkStateOf(fc.value.get<std::string>())) fc.fail("field linkState must be auto, enable or disable");
}

void vfCheck(const Resource& r, const Target& t, Diagnostics& diags) {
  auto fail = [&](const std::string& m, const char* code = "provider/invalid") {
    diags.error(r.loc, "linux: " + m, code);
  };
  if (!r.attrs.has("link")) fail("field link is required for a vf Port (its physical function)");
  if (!r.attrs.has("vf")) fail("field vf is required for a vf Port (the VF's index on its physical function)");
  for (const char* p : {"mtu", "linux.txQueueLen"})
    if (r.attrs.has(p))
      fail("field " + std::string(p) + " is not supported for a vf Port: the guest's VF driver sets it",
           "provider/unsupported");
  if (r.attrs.getBool("up") == false)
    fail("field up is not supported for a vf Port: use linkState (auto, enable, disable)", "provider/unsupported");
  if (!r.attrs.getStrings("addresses").empty())
    fail("field addresses is not supported for a vf Port: the VF belongs to the guest", "provider/unsupported");
  for (const char* p : {"switch", "portGroup"})
    if (const Json* v = r.attrs.find(p); v && !v->is_null())
      fail("field " + std::string(p) + " is not supported for a vf Port: a VF's frames go through the NIC's own "
           "switch, not a Linux bridge (use vlan)", "provider/unsupported");
  if (auto q = r.attrs.getInt("linux.vlanQos"); q && *q && !r.attrs.getInt("vlan").value_or(0))
    fail("field linux.vlanQos needs vlan (the priority goes into the VF's VLAN tag)");
  // (the generic "not supported" message names the field too; this one says why)
  for (const char* p : {"shaping.peakKbps", "shaping.burstKiB"})
    if (r.attrs.has(p))
      diags.error(r.locOf(p), "linux: field " + std::string(p) + " of Port " + r.addr.name + ": a VF's rate limiter "
                  "has one rate (max_tx_rate = shaping.averageKbps), no peak or burst", "provider/unsupported");
  if (r.attrs.has("security.allowPromiscuous"))
    diags.error(r.locOf("security.allowPromiscuous"),
                "linux: field security.allowPromiscuous of Port " + r.addr.name + ": the PF decides a VF's "
                "promiscuous mode through trust (security.allowMacChanges)", "provider/unsupported");
  if (auto link = r.attrs.getString("link")) checkPfSupports(r, t, *link, diags);
}

void vfNormalize(Resource& r) {
  dropInheritedMtu(r);
  if (const Json* v = r.attrs.find("vlan"); v && v->is_number_integer() && v->get<int64_t>() == 0) r.attrs.set("vlan", nullptr);
  if (r.attrs.has("vlan") && !r.attrs.has("linux.vlanQos")) {
    r.attrs.set("linux.vlanQos", 0);
    r.origins["linux.vlanQos"] = AttrOrigin{Origin::Default, ""};
  }
}

}  // namespace

const KindOps kVfOps{.kind = Kind::Port,
                     .variant = "vf",
                     .label = "vf",
                     .traits = &kPortTraits,
                     .fields = {{"link", checkInterfaceNameField},
                                {"vf", checkVfIndex},
                                {"vlan", checkVfVlan},
                                {"vlan.trunk", checkVfVlan},
                                {"linux.vlanQos", checkQos},
                                {"linux.minTxRate", checkMinRate},
                                {"shaping.averageKbps", checkAverage},
                                {"security.allowForgedTransmits", [](const FieldCheck& fc) { fc.requireBool(); }},
                                {"security.allowMacChanges", [](const FieldCheck& fc) { fc.requireBool(); }},
                                {"linkState", checkLinkState},
                                {"switch", nullptr},
                                {"portGroup", nullptr}},
                     .check = vfCheck,
                     .normalize = vfNormalize,
                     .describe = vfDescribe,
                     .observe = vfObserve,
                     .create = vfCreate,
                     .update = vfUpdate,
                     .remove = vfRemove};

}  // namespace vnetplan::lnx
