#include "providers/linux/linux_provider.h"
#include "base/netns.h"
#include "providers/linux/nioc.h"
#include "providers/linux/policy_security.h"
#include "providers/linux/shaping.h"

#include <cmath>
#include <map>
#include <mutex>
#include <set>

#include "base/netaddr.h"
#include "providers/linux/caps.h"
#include "providers/linux/kind.h"
#include "providers/linux/session.h"
#include "providers/linux/vlans.h"
#include "providers/linux/values.h"
#include "reconciler/kind_table.h"

namespace vnetplan {

namespace {



// An integer from an integer, an integral float or a decimal string (normalize() turns them into ints).
std::optional<int64_t> asInt(const Json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
    return std::nullopt;
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.empty() || s.size() > 18) return std::nullopt;
    int64_t n = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + (c - '0');
    }
    return n;
  }
  return std::nullopt;
}

// Why a portable field has no linux implementation yet (for the error message).
std::string unsupportedReason(const std::string& path) {
  auto under = [&](const char* prefix) { return path.rfind(prefix, 0) == 0; };
  if (under("teaming"))
    return "a Linux bond has one teaming policy for the whole switch: set it in the Switch's uplinks.teaming";
  if (under("security"))
    return "security policy is enforced on tap and veth ports (bridge-family nftables on the guest's MAC)";
  if (under("shaping"))
    return "shaping is a TBF on tap and veth ports";
  if (under("nioc")) return "nioc is a Switch's: an HTB tree on its uplink";
  return "";
}

bool startsWith(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

class LinuxProvider final : public TableProvider<lnx::LinuxSession, lnx::LinuxSession> {
 public:
  LinuxProvider() : TableProvider(lnx::linuxKinds()) {}

  std::string_view name() const override { return "linux"; }

  Status prepare(const Target& target) override {
    auto netns = target.spec.getString("netns");
    if (!netns || !target.spec.getBool("createNetns").value_or(false) || netnsExists(*netns)) return {};
    if (Status st = createNetns(*netns); !st.ok())
      return err("linux: target " + target.name + ": create netns " + *netns + ": " + st.error().message);
    return {};
  }

  // Bridges, ports, veth peers, bonds and uplink NICs in one namespace share one set of interface names; port
  // groups of one switch are told apart by their VLAN; each switch's port groups take one shape.
  void checkTogether(const Target& target, const std::vector<const Resource*>& resources,
                     Diagnostics& diags) const override {
    checkNames(target, resources, diags);
    checkNetworkPorts(resources, diags);
    checkUplinkNics(resources, diags);
    checkSegments(target, resources, diags);
    lnx::checkNiocClasses(resources, diags);
  }

  std::string describe(const Step& step, const Target& target) const override {
    std::string out = TableProvider::describe(step, target);
    if (step.action == StepAction::Update && lnx::changes(step, "linux.sriov.numVfs")) {
      const auto before = step.before.getInt("linux.sriov.numVfs").value_or(0);
      const auto after = step.after.getInt("linux.sriov.numVfs").value_or(0);
      return out + " (replaces every VF of " + step.addr.name + ": the kernel removes all " + std::to_string(before) +
             " VFs before it makes " + std::to_string(after) + "; guests using them lose them; vf Ports get their "
             "settings again)";
    }
    if (step.addr.kind != Kind::PortGroup || step.action == StepAction::Delete) return out;
    if (step.action == StepAction::Update) {
      bool moved = false;
      for (const auto& p : step.changed) moved = moved || p == "switch" || p == "vlan" || p == "vlan.trunk";
      if (!moved) return out;
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = shapes_.find(target.name + "/" + step.addr.name);
    return it == shapes_.end() ? out : out + ": " + it->second;
  }

 private:
  void checkNames(const Target& target, const std::vector<const Resource*>& resources, Diagnostics& diags) const {
    const auto netns = target.spec.getString("netns");
    std::map<std::string, const Resource*> taken;
    auto claim = [&](const std::string& ifname, const Resource* r, const std::string& what) {
      // Names the kernel holds in every namespace, which observe never reports as objects: a plan would say
      // "create" and the apply fail on "File exists".
      if (ifname == "lo" || ifname == "bonding_masters")
        diags.error(r->loc,
                    "linux: " + r->addr.str() + ": " + what + " '" + ifname + "' is " +
                        (ifname == "lo" ? "the loopback interface every network namespace has"
                                        : "the bonding driver's control file in /sys/class/net") +
                        "; choose another name",
                    "provider/name-collision");
      auto [it, fresh] = taken.emplace(ifname, r);
      if (fresh) return;
      diags.error(r->loc,
                  "linux: " + r->addr.str() + ": " + what + " '" + ifname + "' is also the interface of " +
                      it->second->addr.str() + " (at " + it->second->loc.str() +
                      "); bridges, ports and veth peers in one namespace need distinct names",
                  "provider/name-collision");
    };
    for (const Resource* r : resources)
      if (r->addr.kind == Kind::Switch || r->addr.kind == Kind::Port) claim(r->addr.name, r, "interface name");
    for (const Resource* r : resources) {
      if (r->addr.kind != Kind::Port || r->attrs.getString("type") != "veth") continue;
      auto peer = r->attrs.getString("peer");
      auto peerNetns = r->attrs.getString("peerNetns");
      if (peer && (!peerNetns || peerNetns == netns)) claim(*peer, r, "veth peer");
    }
    for (const Resource* r : resources)
      if (r->addr.kind == Kind::Network && r->attrs.getString("mode") != "bridged")
        claim(r->attrs.getString("bridge").value_or(r->addr.name), r, "bridge of the Network");
    for (const Resource* r : resources) {
      if (r->addr.kind == Kind::PortGroup) claim(r->addr.name, r, "port group (a bridge of that name where the "
                                                                  "kernel has no VLAN filtering)");
      if (r->addr.kind != Kind::Switch) continue;
      if (auto bond = r->attrs.getString("linux.bond.name")) claim(*bond, r, "bond");
    }
  }

  // A bridged Network marks a bridge that is someone else's (a Switch's, or the LAN's): its ports are that bridge's
  // ports, attached with switch:, and observed so.
  void checkNetworkPorts(const std::vector<const Resource*>& resources, Diagnostics& diags) const {
    std::map<std::string, const Resource*> networks;
    for (const Resource* r : resources)
      if (r->addr.kind == Kind::Network) networks[r->addr.name] = r;
    for (const Resource* r : resources) {
      if (r->addr.kind != Kind::Port) continue;
      auto net = r->attrs.getString("network");
      if (!net) continue;
      auto it = networks.find(*net);
      if (it != networks.end() && it->second->attrs.getString("mode") == "bridged")
        diags.error(r->locOf("network"),
                    "linux: " + r->addr.str() + ": Network " + *net + " is mode bridged, on bridge " +
                        it->second->attrs.getString("bridge").value_or("?") +
                        ", which is not the Network's own: attach the port with switch: " +
                        it->second->attrs.getString("bridge").value_or("?"),
                    "provider/invalid");
    }
  }

  // A NIC is the uplink of one switch, and not also a Port of the manifests.
  void checkUplinkNics(const std::vector<const Resource*>& resources, Diagnostics& diags) const {
    std::map<std::string, const Resource*> owner, declared;
    for (const Resource* r : resources)
      if (r->addr.kind == Kind::Port || r->addr.kind == Kind::Switch) declared[r->addr.name] = r;
    for (const Resource* r : resources) {
      if (r->addr.kind != Kind::Switch) continue;
      for (const auto& nic : r->attrs.getStrings("uplinks.nics")) {
        auto [it, fresh] = owner.emplace(nic, r);
        if (!fresh)
          diags.error(r->loc,
                      "linux: " + r->addr.str() + ": NIC " + nic + " is also an uplink of " + it->second->addr.str() +
                          " (at " + it->second->loc.str() + "); a NIC serves one switch",
                      "provider/name-collision");
        if (auto d = declared.find(nic); d != declared.end())
          diags.error(r->loc,
                      "linux: " + r->addr.str() + ": uplink NIC " + nic + " is also declared as " + d->second->addr.str() +
                          " (at " + d->second->loc.str() + "); an uplink belongs to its switch",
                      "provider/name-collision");
      }
    }
  }

  // On a Linux bridge a port group is its VLAN (that is all the kernel knows of it): two port groups of a switch
  // need two VLANs, and a port directly on the switch is the untagged segment. Which shape a switch's port groups
  // take is decided here (and said in the plan).
  void checkSegments(const Target& target, const std::vector<const Resource*>& resources, Diagnostics& diags) const {
    std::map<std::string, const Resource*> switches;
    for (const Resource* r : resources)
      if (r->addr.kind == Kind::Switch) switches[r->addr.name] = r;
    struct Segment {
      lnx::VlanSpec vlan;
      const Resource* owner;
      bool portGroup;
    };
    std::map<std::string, std::vector<Segment>> bySwitch;
    for (const Resource* r : resources) {
      auto spec = lnx::vlanOf(r->attrs);
      if (!spec) continue;
      if (r->addr.kind == Kind::PortGroup) {
        if (auto sw = r->attrs.getString("switch")) bySwitch[*sw].push_back({*spec, r, true});
      } else if (r->addr.kind == Kind::Port && !r->attrs.getString("portGroup")) {
        if (auto sw = r->attrs.getString("switch"); sw && switches.count(*sw)) bySwitch[*sw].push_back({*spec, r, false});
      }
    }
    auto fail = [&](const Resource* r, const std::string& m) {
      diags.error(r->loc, "linux: " + r->addr.str() + ": " + m, "provider/invalid");
    };
    for (const auto& [swName, segments] : bySwitch) {
      const Resource* sw = switches.count(swName) ? switches[swName] : nullptr;
      // Each port group is recorded on the switch's bridge as an altname (records.h), and the kernel holds at
      // most 496 per device (each counts 132 bytes of a 64 KiB property list); a few stay free for other records.
      constexpr size_t kMaxPortGroups = 480;
      size_t groups = 0;
      for (const auto& seg : segments) groups += seg.portGroup ? 1 : 0;
      if (groups > kMaxPortGroups)
        diags.error(sw ? sw->loc : segments.front().owner->loc,
                    "linux: switch " + swName + " has " + std::to_string(groups) + " port groups; the linux provider "
                    "records each on the switch's bridge as an altname and the kernel holds at most 496 per device, "
                    "so at most " + std::to_string(kMaxPortGroups) + " port groups per switch (split them over "
                    "several switches, or give VMs vlan Ports on a bridge each)",
                    "provider/unsupported");
      bool needsVlans = false;
      for (const auto& seg : segments) needsVlans = needsVlans || !seg.vlan.untagged();
      // Ports straight on the switch, all untagged: one segment, no shape to choose, nothing to ask the kernel.
      if (!needsVlans && groups == 0) continue;
      // The switch's linux.bridge.vlanFiltering: 1 true, 0 false, -1 not said.
      int vf = -1;
      if (const std::optional<bool> said = sw ? sw->attrs.getBool("linux.bridge.vlanFiltering") : std::nullopt) vf = *said ? 1 : 0;
      const lnx::KernelCaps& caps = lnx::kernelCaps();
      enum { Aware, PerVlan, Unknown } shape;
      std::string why;
      if (vf == 1 || (vf == -1 && caps.vlanFiltering == lnx::Cap::Yes)) {
        shape = Aware;
      } else if (vf == 0) {
        shape = PerVlan;
        why = "the switch says linux.bridge.vlanFiltering: false";
      } else if (caps.vlanFiltering == lnx::Cap::No) {
        shape = PerVlan;
        why = lnx::lacks(caps, "bridge VLAN filtering");
      } else {
        shape = Unknown;
        why = caps.unknownWhy;
      }
      std::string uplink;
      if (sw) {
        if (auto bond = sw->attrs.getString("linux.bond.name")) uplink = *bond;
        else if (auto nics = sw->attrs.getStrings("uplinks.nics"); !nics.empty()) uplink = nics.front();
      }
      for (size_t i = 0; i < segments.size(); ++i) {
        const Segment& a = segments[i];
        for (size_t j = 0; j < i; ++j) {
          const Segment& b = segments[j];
          const bool same = a.vlan == b.vlan ||
                            (shape == PerVlan && a.portGroup && b.portGroup &&
                             (a.vlan.untagged() || a.vlan.allVlans()) && (b.vlan.untagged() || b.vlan.allVlans()));
          if (!same || (!a.portGroup && !b.portGroup)) continue;
          const Segment& pg = a.portGroup ? a : b;
          const Segment& other = a.portGroup ? b : a;
          fail(other.owner, "it is the same segment of switch " + swName + " (" + lnx::vlanText(other.vlan) + ") as " +
                                pg.owner->addr.str() + " (at " + pg.owner->loc.str() +
                                "): on a Linux bridge a port group is its VLAN; " +
                                (other.portGroup ? "give the port groups different VLANs, or use one"
                                                 : "put the port in that port group"));
        }
        if (shape == PerVlan && !a.vlan.untagged()) {
          if (!a.portGroup)
            fail(a.owner, "a port's own vlan on switch " + swName + " needs bridge VLAN filtering, and " + why +
                              "; use a PortGroup (a bridge per VLAN)");
          else if (a.vlan.mode == lnx::VlanSpec::Mode::Trunk && !a.vlan.allVlans())
            fail(a.owner, "a trunk of some VLANs (" + lnx::vlanText(a.vlan) + ") needs bridge VLAN filtering, and " + why +
                              " (a bridge per VLAN can give a port every VLAN, 1-4094, or one)");
          else if (a.vlan.mode == lnx::VlanSpec::Mode::Access && !uplink.empty() &&
                   caps.vlanDevices == lnx::Cap::No)
            fail(a.owner, "VLAN " + std::to_string(a.vlan.id) + " over uplink " + uplink + " needs bridge VLAN filtering " +
                              "or 802.1Q sub-interfaces, and " + lnx::lacks(caps, "either"));
        }
        if (!a.portGroup) continue;
        std::string text;
        if (shape == Aware && !a.vlan.untagged())
          text = "a VLAN of the VLAN-aware bridge " + swName + (uplink.empty() ? "" : ", carried tagged on " + uplink);
        else if (shape == PerVlan && a.vlan.mode == lnx::VlanSpec::Mode::Access)
          text = "bridge " + a.owner->addr.name + (uplink.empty() ? "" : " over " + uplink + "." + std::to_string(a.vlan.id)) +
                 ", one bridge per VLAN (" + why + ")";
        else if (a.vlan.untagged())
          text = "the untagged segment: its ports sit on bridge " + swName;
        else if (shape == PerVlan)
          text = "every VLAN: its ports sit on bridge " + swName + " (" + why + ")";
        else
          text = "shape chosen at apply (the kernel could not be probed: " + why + ")";
        std::lock_guard<std::mutex> lock(mu_);
        shapes_[target.name + "/" + a.owner->addr.name] = text;
      }
    }
  }

 public:

  void checkTarget(const Target& target, Diagnostics& diags) const override {
    const SourceLoc& loc = target.loc;
    for (const auto& [path, value] : target.spec.values()) {
      if (path == "netns") {
        if (!value.is_string()) {
          diags.error(loc, "linux: Target " + target.name + ": netns must be a string", "provider/invalid");
          continue;
        }
        std::string ns = value.get<std::string>();
        if (std::string why = lnx::netnsNameProblem(ns); !why.empty())
          diags.error(loc, "linux: Target " + target.name + ": invalid netns name '" + ns + "': " + why,
                      "provider/invalid");
      } else if (path == "createNetns") {
        if (!value.is_boolean())
          diags.error(loc, "linux: Target " + target.name + ": createNetns must be true or false", "provider/invalid");
      } else if (path == "provider") {
        continue;
      } else {
        diags.error(loc,
                    "linux: Target " + target.name + ": field " + path +
                        " is not supported (a linux Target takes netns and createNetns)",
                    "provider/unsupported");
      }
    }
    if (target.spec.getBool("createNetns").value_or(false) && !target.spec.has("netns"))
      diags.error(loc, "linux: Target " + target.name + ": createNetns needs netns (the host namespace always exists)",
                  "provider/invalid");
  }

  // Netlink in a local namespace answers at once: nothing here can outlast the deadline.
  Result<std::unique_ptr<TargetSession>> connect(const Target& target, Deadline) override {
    auto s = lnx::LinuxSession::connect(target);
    if (!s.ok()) return s.error();
    return std::unique_ptr<TargetSession>(std::move(s.value()));
  }

 protected:
  void checkCommon(const Resource& r, const Target&, Diagnostics& diags) const override {
    if (r.addr.kind == Kind::Network || r.addr.kind == Kind::Mirror) return;  // its name is no interface's (its bridge's is checked by its row)
    if (std::string why = lnx::ifnameProblem(r.addr.name); !why.empty())
      diags.error(r.loc,
                  "linux: invalid interface name '" + r.addr.name + "' for " + kindName(r.addr.kind) + " " +
                      r.addr.str() + ": " + why,
                  "provider/invalid");
  }

  // Security and shaping on a Switch or PortGroup (inherited by their ports).
  static const std::vector<FieldRule>& policyFields() {
    static const std::vector<FieldRule> fields = [] {
      auto f = lnx::securityFields();
      f.push_back({"shaping.averageKbps", lnx::checkShapingField});
      f.push_back({"shaping.peakKbps", lnx::checkShapingField});
      f.push_back({"shaping.burstKiB", lnx::checkShapingField});
      return f;
    }();
    return fields;
  }

  const std::vector<FieldRule>& commonFields(Kind kind) const override {
    static const std::vector<FieldRule> none;
    // Security policy on a Switch or PortGroup reaches their tap and veth ports by inheritance; it is enforced
    // there (policy_security.h).
    static const std::vector<FieldRule> switchFields = [] {
      auto f = lnx::commonLinkFields();
      for (const auto& r : policyFields()) f.push_back(r);
      return f;
    }();
    if (kind == Kind::Network) return none;
    if (kind == Kind::PortGroup) return policyFields();
    return kind == Kind::Port ? lnx::commonPortFields() : switchFields;
  }

  void unsupportedField(const FieldCheck& fc, const Row* row) const override {
    // Teaming inherited from the switch is the switch's (its bond); normalize drops it from the port.
    if (startsWith(fc.path, "teaming.")) {
      auto o = fc.resource.origins.find(fc.path);
      if (o != fc.resource.origins.end() && o->second.origin == Origin::Inherited) return;
    }
    // A field another Port type has: name the types it belongs to.
    auto others = row ? table().rowsAccepting(row->kind, fc.path, row) : std::vector<const Row*>{};
    if (!others.empty()) {
      std::string types;
      for (const Row* o : others) types += std::string(types.empty() ? "" : " or ") + o->variant;
      return fc.fail("field " + fc.path + " is only valid for a " + types + " Port, not type '" + row->variant + "'",
                     "provider/unsupported");
    }
    std::string why = unsupportedReason(fc.path);
    fc.fail("field " + fc.path + " is not supported yet" + (why.empty() ? "" : " (" + why + ")"), "provider/unsupported");
  }

  void rejectKind(const Resource& r, const Target&, Diagnostics& diags) const override {
    auto fail = [&](const std::string& msg, const char* code) { diags.error(r.loc, "linux: " + msg, code); };
    if (r.addr.kind != Kind::Port)
      return fail("kind " + std::string(kindName(r.addr.kind)) + " is not supported yet (the linux provider manages "
                  "Switch, PortGroup, Port, Network and Mirror)", "provider/unsupported");
    const Json* type = r.attrs.find("type");
    if (!type) return fail("field type is required for a Port (" + table().variantList(Kind::Port) + ")", "provider/invalid");
    if (!type->is_string())
      return fail("field type must be a string (" + table().variantList(Kind::Port) + ")", "provider/invalid");
    fail("Port type '" + type->get<std::string>() + "' is not supported yet (supported: " +
             table().variantList(Kind::Port) + ")",
         "provider/unsupported");
  }

  void normalizeCommon(Resource& r) const override {
    TableProvider::normalizeCommon(r);
    auto toInt = [&](const std::string& path) {
      if (const Json* v = r.attrs.find(path); v && !v->is_number_integer())
        if (auto n = asInt(*v)) r.attrs.set(path, *n);
    };
    toInt("mtu");
    toInt("linux.txQueueLen");
    for (const char* p : {"shaping.averageKbps", "shaping.peakKbps", "shaping.burstKiB"}) toInt(p);
    if (r.addr.kind == Kind::Switch || r.addr.kind == Kind::PortGroup) {
      // Inherited by the ports already (which enforce it); the bridge itself has nothing to hold it.
      std::vector<std::string> security;
      for (const auto& [path, v] : r.attrs.values())
        if (startsWith(path, "security.") || startsWith(path, "shaping.")) security.push_back(path);
      for (const auto& p : security) r.attrs.erase(p), r.origins.erase(p);
    }
    // virtualmachine is the default class of a NIOC tree: no rule puts a port in it, as observe says by leaving
    // niocClass out.
    if (r.addr.kind == Kind::Port && r.attrs.getString("niocClass") == "virtualmachine") r.attrs.set("niocClass", nullptr);
    // A PortGroup's class is its ports' (inherited by them, enforced on each): the group holds nothing of it.
    if (r.addr.kind == Kind::PortGroup) r.attrs.erase("niocClass"), r.origins.erase("niocClass");
    if (r.addr.kind == Kind::Port || r.addr.kind == Kind::PortGroup) {
      // Teaming reaches a port by inheritance only (check() refuses it declared there): it is the switch's.
      std::vector<std::string> teaming;
      for (const auto& [path, v] : r.attrs.values())
        if (startsWith(path, "teaming.")) teaming.push_back(path);
      for (const auto& p : teaming) r.attrs.erase(p), r.origins.erase(p);
      if (auto spec = lnx::vlanOf(r.attrs)) {
        const bool had = r.attrs.has("vlan") || r.attrs.has("vlan.trunk");
        auto origin = r.origins.count("vlan.trunk") ? r.origins["vlan.trunk"] : r.origins["vlan"];
        r.origins.erase("vlan");
        r.origins.erase("vlan.trunk");
        lnx::setVlan(r.attrs, *spec);
        if (!had) r.attrs.erase("vlan");
        else r.origins[spec->mode == lnx::VlanSpec::Mode::Trunk ? "vlan.trunk" : "vlan"] = origin;
      }
    }
    if (const Json* v = r.attrs.find("addresses"); v && v->is_array()) {
      std::set<std::string> out;
      for (const auto& e : *v) {
        auto c = e.is_string() ? parsePrefix(e.get<std::string>()) : std::nullopt;
        if (!c) return;  // check() reports it
        out.insert(c->str());
      }
      r.attrs.set("addresses", Json(std::vector<std::string>(out.begin(), out.end())));
    }
    if (auto mac = r.attrs.getString("mac"))
      if (auto m = lnx::parseMac(*mac, nullptr)) r.attrs.set("mac", lnx::formatMac(m->data(), m->size()));
  }

  void commonDetailsAfter(const Attrs& a, std::vector<std::string>& parts) const override {
    if (auto sw = a.getString("switch")) {
      auto vlan = lnx::vlanOf(a);
      parts.push_back("on bridge " + *sw + (vlan && !vlan->untagged() ? " " + lnx::vlanText(*vlan) : ""));
    }
    if (auto pg = a.getString("portGroup")) parts.push_back("in port group " + *pg);
    if (auto net = a.getString("network")) parts.push_back("on network " + *net);
    if (auto mac = a.getString("mac")) {
      auto host = a.getString("linux.hostMac");
      parts.push_back(host ? "guest mac " + *mac + ", host side " + *host : "mac " + *mac);
    }
    if (auto addrs = a.getStrings("addresses"); !addrs.empty()) parts.push_back("addresses " + show(a.find("addresses")));
    if (a.getBool("up") == false) parts.push_back("down");
  }

  std::string whereText(const Target& target) const override {
    auto netns = target.spec.getString("netns");
    return netns ? " in netns " + *netns : " in the host netns";
  }

 private:
  // The shape each port group takes, decided by checkTogether() for the plan's descriptions.
  mutable std::mutex mu_;
  mutable std::map<std::string, std::string> shapes_;
};

}  // namespace

std::unique_ptr<Provider> makeLinuxProvider() { return std::make_unique<LinuxProvider>(); }

}  // namespace vnetplan
