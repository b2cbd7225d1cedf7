#include "providers/esxi/esxi_provider.h"

#include <map>
#include <mutex>
#include <set>

#include "providers/esxi/kind.h"
#include "providers/esxi/session.h"
#include "reconciler/kind_table.h"

namespace vnetplan {

namespace esxi {

const EsxiKinds& esxiKinds() {
  static const EsxiKinds table({&kVswitchOps, &kPortGroupOps, &kVmkernelOps});
  return table;
}

}  // namespace esxi

namespace {

using esxi::EsxLive;
using esxi::StepCommands;

bool under(const std::string& path, const std::string& prefix) {
  return path == prefix || path.rfind(prefix + ".", 0) == 0;
}

// Kinds a standard vSwitch has no object for. They get traits so that the engine asks check(), which says why.
const KindTraits& refusedTraits(Kind k) {
  static std::map<Kind, KindTraits> traits;
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  auto it = traits.find(k);
  if (it == traits.end()) it = traits.emplace(k, KindTraits{.kind = k}).first;
  return it->second;
}

class EsxiProvider final : public TableProvider<const EsxLive, StepCommands> {
 public:
  EsxiProvider() : TableProvider(esxi::esxiKinds()) {}

  std::string_view name() const override { return "esxi"; }

  const KindTraits* traits(Kind kind) const override {
    if (const KindTraits* t = table_.traits(kind)) return t;
    if (kind == Kind::Target) return nullptr;
    return &refusedTraits(kind);
  }

  void checkTarget(const Target& target, Diagnostics& diags) const override {
    auto fail = [&](const std::string& m, const char* code = "provider/invalid") {
      diags.error(target.loc, "esxi: Target " + target.name + ": " + m, code);
    };
    if (!target.spec.getString("host")) fail("host is required (the ESXi host's name or address)");
    for (const auto& [path, value] : target.spec.values()) {
      if (path == "host") {
        const std::string h = value.is_string() ? value.get<std::string>() : "";
        bool ok = !h.empty() && h.size() <= 253 && h[0] != '-';
        for (unsigned char c : h)
          if (c <= 0x20 || c == 0x7f || c == '/' || c == '@') ok = false;
        if (!ok) fail("host '" + h + "' is not a host name or address");
      } else if (path == "port" || path == "user" || path == "identityFile" || path == "knownHostsFile") {
        if (path == "user" && value.is_string() &&
            value.get<std::string>().find_first_of(" \t\r\n@:") != std::string::npos)
          fail("user '" + value.get<std::string>() + "' is not a user name");
      } else if (path == "identityPassphrase.env" || path == "identityPassphrase.file") {
      } else if (path == "identityPassphrase.cloud") {
        fail("identityPassphrase: {cloud: ...} holds cloud credentials; give the key's passphrase as {env: VAR} or "
             "{file: PATH}");
      } else {
        fail("field " + path + " is not supported (an esxi Target takes host, port, user, identityFile, "
             "identityPassphrase and knownHostsFile)",
             "provider/unsupported");
      }
    }
  }

  void checkTogether(const Target& target, const std::vector<const Resource*>& resources,
                     Diagnostics& diags) const override {
    (void)target;
    std::map<std::string, const Resource*> switches, groups, nicOwner, vmkOnGroup;
    for (const Resource* r : resources) {
      if (r->addr.kind == Kind::Switch) switches[r->addr.name] = r;
      if (r->addr.kind == Kind::PortGroup) groups[r->addr.name] = r;
    }
    auto error = [&](const Resource* r, const std::string& m) {
      diags.error(r->loc, "esxi: " + r->addr.str() + ": " + m, "provider/invalid");
    };
    for (const Resource* r : resources) {
      if (r->addr.kind == Kind::Switch) {
        // A physical NIC is an uplink of at most one vSwitch.
        for (const auto& nic : r->attrs.getStrings("uplinks.nics")) {
          auto [it, fresh] = nicOwner.emplace(nic, r);
          if (!fresh)
            error(r, "uplink " + nic + " is also an uplink of " + it->second->addr.str() + " (at " +
                         it->second->loc.str() + "); a physical NIC belongs to one vSwitch");
        }
      } else if (r->addr.kind == Kind::PortGroup) {
        auto sw = r->attrs.getString("switch");
        auto it = sw ? switches.find(*sw) : switches.end();
        if (it == switches.end()) continue;  // an unmanaged vSwitch (vSwitch0): the host says
        const auto nics = it->second->attrs.getStrings("uplinks.nics");
        for (const char* list : {"teaming.active", "teaming.standby"})
          for (const auto& n : r->attrs.getStrings(list))
            if (std::find(nics.begin(), nics.end(), n) == nics.end())
              error(r, std::string(list) + " names " + n + ", which is not an uplink of vSwitch " + *sw);
        // Beacon probing needs three uplinks to tell which one failed (lint/beacon says it for a vSwitch).
        const Resource* sr = it->second;
        std::string detection = r->attrs.getString("teaming.failureDetection")
                                    .value_or(sr->attrs.getString("uplinks.teaming.failureDetection").value_or("link"));
        size_t used = r->attrs.has("teaming.active")
                          ? r->attrs.getStrings("teaming.active").size() + r->attrs.getStrings("teaming.standby").size()
                          : nics.size();
        if (detection == "beacon" && r->attrs.has("teaming.failureDetection") && used < 3)
          diags.warning(r->loc,
                        "esxi: " + r->addr.str() + ": beacon probing with fewer than 3 uplinks cannot tell which "
                        "uplink failed",
                        "lint/beacon");
      } else if (r->addr.kind == Kind::Port) {
        auto g = r->attrs.getString("portGroup");
        if (!g) continue;
        // One vmkernel NIC per port group on a standard vSwitch.
        auto [it, fresh] = vmkOnGroup.emplace(*g, r);
        if (!fresh)
          error(r, "port group " + *g + " already has vmkernel NIC " + it->second->addr.name +
                       "; a standard port group takes one");
      }
    }
  }

  Result<std::unique_ptr<TargetSession>> connect(const Target& target, Deadline deadline) override {
    auto s = esxi::EsxiSession::connect(target, deadline, &esxi::ConnectionPool::instance());
    if (!s) return s.error();
    return std::unique_ptr<TargetSession>(std::move(*s));
  }

 protected:
  void checkCommon(const Resource& r, const Target&, Diagnostics& diags) const override {
    auto fail = [&](const std::string& m) { diags.error(r.loc, "esxi: " + r.addr.str() + ": " + m, "provider/invalid"); };
    if (r.addr.kind == Kind::Switch && r.addr.name.size() > 32)
      fail("a vSwitch name has at most 32 characters ('" + r.addr.name + "' has " +
           std::to_string(r.addr.name.size()) + ")");
    for (unsigned char c : r.addr.name)
      if (c < 0x20 || c == 0x7f) {
        fail("the name contains a control character");
        break;
      }
  }

  const std::vector<FieldRule>& commonFields(Kind) const override {
    static const std::vector<FieldRule> none;
    return none;
  }

  void unsupportedField(const FieldCheck& fc, const Row* row) const override {
    const std::string& p = fc.path;
    std::string why;
    if (p == "niocClass" || under(p, "nioc"))
      why = "nioc needs a vSphere Distributed Switch; a standard vSwitch supports shaping only";
    else if (under(p, "esxi.beacon"))
      why = "esxcli cannot set a standard vSwitch's beacon interval or threshold";
    else if (p == "addresses")
      why = "a vSwitch has no host address; declare a Port of type vmkernel on one of its port groups";
    else if (p == "vlan" && fc.resource.addr.kind == Kind::Port)
      why = "a vmkernel NIC takes its port group's VLAN; set vlan on the PortGroup";
    else if (p == "switch" || p == "network")
      why = "a vmkernel NIC is attached to a port group (portGroup:)";
    else if (under(p, "linux") || under(p, "ovs"))
      why = "it belongs to the " + p.substr(0, p.find('.')) + " provider";
    else if (under(p, "uplinks.teaming"))
      why = "not a teaming field ESXi has";
    else
      why = "not an esxi " + std::string(row ? row->label : kindName(fc.resource.addr.kind)) + " field";
    esxi::unsupported(fc, why);
  }

  void rejectKind(const Resource& r, const Target&, Diagnostics& diags) const override {
    std::string why;
    switch (r.addr.kind) {
      case Kind::Mirror:
        why = "port mirroring needs a vSphere Distributed Switch; a standard vSwitch has no mirror sessions";
        break;
      case Kind::Port:
        why = "Port type '" + table_.variantOf(r.addr.kind, r.attrs) +
              "' is not supported by the esxi provider: it manages vmkernel NICs (type: vmkernel); a VM's vNIC is "
              "part of the VM's configuration, not of the host's networking";
        break;
      default:
        why = "kind " + std::string(kindName(r.addr.kind)) +
              " is not supported by the esxi provider (it manages Switch, PortGroup and Port of type vmkernel)";
    }
    diags.error(r.loc, "esxi: " + r.addr.str() + ": " + why, "provider/unsupported");
  }

  void commonDetails(const Attrs&, std::vector<std::string>&) const override {}
  void commonDetailsAfter(const Attrs& a, std::vector<std::string>& parts) const override {
    if (auto mtu = a.getInt("mtu"); mtu && *mtu != 1500) parts.push_back("mtu " + std::to_string(*mtu));
  }

  std::string whereText(const Target& target) const override {
    return " on esxi host " + target.spec.getString("host").value_or(target.name);
  }
};

}  // namespace

std::unique_ptr<Provider> makeEsxiProvider() { return std::make_unique<EsxiProvider>(); }

}  // namespace vnetplan
