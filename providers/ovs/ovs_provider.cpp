#include "providers/ovs/ovs_provider.h"

#include <algorithm>
#include <map>
#include <set>

#include "providers/ovs/kind.h"
#include "providers/ovs/session.h"
#include "reconciler/kind_table.h"

namespace vnetplan {

namespace {

using ovs::canonicalTrunks;

bool under(const std::string& path, const std::string& prefix) {
  return path == prefix || path.rfind(prefix + ".", 0) == 0;
}

// What OVS does anyway, in the portable security vocabulary (fields.cpp refuses the opposites).
const std::map<std::string, bool> kNativeSecurity{
    {"security.allowPromiscuous", false}, {"security.allowMacChanges", true}, {"security.allowForgedTransmits", true}};

class OvsProvider final : public TableProvider<const ovs::OvsLive, ovs::TxnContext> {
 public:
  OvsProvider() : TableProvider(ovs::ovsKinds()) {}

  std::string_view name() const override { return "ovs"; }

  void checkTarget(const Target& target, Diagnostics& diags) const override {
    for (const auto& [path, value] : target.spec.values()) {
      if (path == "provider") continue;
      if (path == "db") {
        if (!value.is_string()) {
          diags.error(target.loc, "ovs: Target " + target.name + ": db must be a string", "provider/invalid");
        } else if (auto r = ovs::parseRemote(value.get<std::string>()); !r) {
          diags.error(target.loc, "ovs: Target " + target.name + ": db " + r.error().message, "provider/invalid");
        }
        continue;
      }
      if (path == "netns") {
        if (!value.is_string())
          diags.error(target.loc, "ovs: Target " + target.name + ": netns must be a string", "provider/invalid");
        continue;
      }
      diags.error(target.loc,
                  "ovs: Target " + target.name + ": field " + path +
                      " is not supported (an ovs Target takes db, and netns where ovs-vswitchd makes its devices)",
                  "provider/unsupported");
    }
  }

  void checkTogether(const Target& target, const std::vector<const Resource*>& resources,
                     Diagnostics& diags) const override {
    // Bridges' local ports, ports and uplink NICs share one namespace of port and interface names.
    std::map<std::string, const Resource*> taken;
    auto claim = [&](const std::string& name, const Resource* r, const std::string& what) {
      auto [it, fresh] = taken.emplace(name, r);
      if (fresh || it->second == r) return;
      diags.error(r->loc,
                  "ovs: " + r->addr.str() + ": " + what + " '" + name + "' is also used by " + it->second->addr.str() +
                      " (at " + it->second->loc.str() + "); OVS port and interface names are unique per switch daemon",
                  "provider/name-collision");
    };
    // A NIOC class must be one its switch divides the uplink for, and classifying needs the host's OpenFlow socket.
    std::map<std::string, const Resource*> switches, groups;
    for (const Resource* r : resources) {
      if (r->addr.kind == Kind::Switch) switches[r->addr.name] = r;
      if (r->addr.kind == Kind::PortGroup) groups[r->addr.name] = r;
    }
    const bool unixDb = target.spec.getString("db").value_or("unix:").rfind("unix:", 0) == 0;
    for (const Resource* r : resources) {
      auto cls = r->attrs.getString("niocClass");
      if (!cls) continue;
      std::string sw = r->attrs.getString("switch").value_or("");
      if (auto g = r->attrs.getString("portGroup"); g && groups.count(*g)) sw = groups[*g]->attrs.getString("switch").value_or("");
      auto it = switches.find(sw);
      const bool niocOn = it != switches.end() && it->second->attrs.getBool("nioc.enabled") != false &&
                          !it->second->attrs.subtree("nioc.").empty();
      if (!niocOn || (*cls != "virtualmachine" && it->second->attrs.subtree("nioc.classes." + *cls + ".").empty()))
        diags.error(r->loc,
                    "ovs: " + r->addr.str() + ": niocClass " + *cls + " is not a class of switch " + sw +
                        "'s nioc (add nioc.classes." + *cls + " there)",
                    "provider/invalid");
      else if (!unixDb && *cls != "virtualmachine")  // virtualmachine is queue 0: no flow to write
        diags.error(r->loc,
                    "ovs: " + r->addr.str() + ": niocClass needs OpenFlow flows written through ovs-vswitchd's "
                    "management socket on the host; the Target's db must be a unix: socket",
                    "provider/unsupported");
    }
    // A mirror's output port that is an internal port stays admin-down unless it says up: true, and a down
    // device drops every mirrored frame.
    std::map<std::string, const Resource*> ports;
    for (const Resource* r : resources)
      if (r->addr.kind == Kind::Port) ports[r->addr.name] = r;
    for (const Resource* r : resources) {
      if (r->addr.kind != Kind::Mirror) continue;
      auto out = r->attrs.getString("destination.port");
      auto it = out ? ports.find(*out) : ports.end();
      if (it == ports.end() || it->second->attrs.getString("type").value_or("internal") != "internal") continue;
      if (it->second->attrs.getBool("up") != true)
        diags.warning(r->locOf("destination.port"),
                      "ovs: " + r->addr.str() + ": its output port " + *out + " is an internal port, which the kernel "
                      "keeps down (dropping every mirrored frame) unless it says up: true",
                      "provider/mirror-output-down");
    }
    for (const Resource* r : resources) {
      if (r->addr.kind == Kind::Switch || r->addr.kind == Kind::Port) claim(r->addr.name, r, "port name");
      if (r->addr.kind == Kind::Switch) {
        auto nics = r->attrs.getStrings("uplinks.nics");
        for (const auto& nic : nics) claim(nic, r, "uplink interface");
        if (nics.size() > 1) claim(ovs::uplinkPortName(r->addr.name, nics), r, "uplink bond port");
      }
    }
  }

  Result<std::unique_ptr<TargetSession>> connect(const Target& target, Deadline deadline) override {
    auto s = ovs::OvsSession::connect(target, deadline);
    if (!s) return s.error();
    return std::unique_ptr<TargetSession>(std::move(*s));
  }

 protected:
  void checkCommon(const Resource& r, const Target&, Diagnostics& diags) const override {
    const std::string kind = kindName(r.addr.kind);
    auto fail = [&](const std::string& msg) { diags.error(r.loc, "ovs: " + msg, "provider/invalid"); };
    if (std::string why = ovs::ovsNameProblem(r.addr.name); !why.empty())
      fail("invalid name '" + r.addr.name + "' for " + kind + " " + r.addr.str() + ": " + why);
    // Bridges' local ports and internal, tap and system ports are kernel (or TAP) devices.
    std::string type = r.attrs.getString("type").value_or("internal");
    if ((r.addr.kind == Kind::Switch ||
         (r.addr.kind == Kind::Port && (type == "internal" || type == "tap" || type == "system"))) &&
        r.addr.name.size() > 15)
      fail("invalid name '" + r.addr.name + "' for " + kind + " " + r.addr.str() +
           ": longer than 15 bytes (IFNAMSIZ); it becomes a network device");
  }

  const std::vector<FieldRule>& commonFields(Kind) const override { return ovs::commonOvsFields(); }

  void unsupportedField(const FieldCheck& fc, const Row*) const override {
    const std::string& path = fc.path;
    std::string why;
    if (path == "niocClass") why = "niocClass belongs on a Port or PortGroup";
    else if (under(path, "nioc")) why = "nioc is configured on the Switch";
    else if (path == "up" || path == "addresses")
      why = "the bridge's own local port is not managed as a host interface; give the host an internal Port "
            "(type internal) with up and addresses";
    else if (under(path, "linux") || under(path, "esxi")) why = "it belongs to the " + path.substr(0, path.find('.')) + " provider";
    else why = "not an ovs " + std::string(kindName(fc.resource.addr.kind)) + " field";
    ovs::unsupported(fc, why);
  }

  void rejectKind(const Resource& r, const Target&, Diagnostics& diags) const override {
    diags.error(r.loc,
                "ovs: kind " + std::string(kindName(r.addr.kind)) +
                    " is not supported by the ovs provider (it manages Switch, PortGroup, Port and Mirror)",
                "provider/unsupported");
  }

  void normalizeCommon(Resource& r) const override {
    std::vector<std::string> drop;
    for (const auto& [path, v] : r.attrs.values()) {
      if (v.is_object() && v.empty()) drop.push_back(path);
      // Native security values describe what OVS does anyway; shaping on a Switch/PortGroup reaches the ports by
      // inheritance; teaming on ports and groups is the switch's bond, set on the Switch.
      auto native = kNativeSecurity.find(path);
      if (native != kNativeSecurity.end() && v.is_boolean() && v.get<bool>() == native->second) drop.push_back(path);
      if (r.addr.kind != Kind::Port && under(path, "shaping")) drop.push_back(path);
      if (r.addr.kind != Kind::Switch && under(path, "teaming")) drop.push_back(path);
    }
    for (const auto& p : drop) r.attrs.erase(p), r.origins.erase(p);
    if (auto vlan = r.attrs.getInt("vlan"); vlan && *vlan == 0) r.attrs.erase("vlan");
    if (const Json* t = r.attrs.find("vlan.trunk"))
      if (auto c = canonicalTrunks(*t, nullptr)) r.attrs.set("vlan.trunk", *c);
    if (auto mac = r.attrs.getString("mac")) {
      std::string m = *mac;
      std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
      r.attrs.set("mac", m);
    }
  }

  void commonDetails(const Attrs&, std::vector<std::string>&) const override {}
  void commonDetailsAfter(const Attrs& a, std::vector<std::string>& parts) const override {
    if (auto mtu = a.getInt("mtu")) parts.push_back("mtu " + std::to_string(*mtu));
  }

  std::string whereText(const Target& target) const override {
    return " on " + target.spec.getString("db").value_or("unix:/var/run/openvswitch/db.sock");
  }
};

}  // namespace

std::unique_ptr<Provider> makeOvsProvider() { return std::make_unique<OvsProvider>(); }

}  // namespace vnetplan
