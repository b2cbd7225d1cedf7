#include "providers/ovs/ovs_provider.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "providers/ovs/kind.h"
#include "providers/ovs/session.h"

namespace vnetplan {

namespace {

using ovs::canonicalTrunks;

bool under(const std::string& path, const std::string& prefix) {
  return path == prefix || path.rfind(prefix + ".", 0) == 0;
}

// What OVS itself does, in the portable security vocabulary: a learning switch delivers a port only the frames
// addressed to it or flooded (no promiscuous mode), and filters neither changed nor forged source MACs.
const std::map<std::string, bool> kNativeSecurity{
    {"security.allowPromiscuous", false}, {"security.allowMacChanges", true}, {"security.allowForgedTransmits", true}};

const std::set<std::string> kPortTypes{"internal", "system", "tap", "vxlan", "gre", "geneve", "patch"};
const std::set<std::string> kTunnelTypes{"vxlan", "gre", "geneve"};

class OvsProvider final : public Provider {
 public:
  OvsProvider() {
    switch_.kind = Kind::Switch;
    switch_.disruptiveOn = {"ovs.datapathType", "ovs.failMode", "stp", "ovs.rstp", "uplinks.", "ovs.bond.", "mtu"};
    switch_.unorderedLists = {"uplinks.nics", "ovs.netflow.targets", "ovs.sflow.targets"};
    switch_.defaults = {{"stp", false}, {"ovs.rstp", false}, {"ovs.datapathType", "system"}, {"ovs.failMode", "standalone"}};
    group_.kind = Kind::PortGroup;
    group_.replaceOn = {"switch"};
    group_.disruptiveOn = {"vlan", "vlan."};
    port_.kind = Kind::Port;
    port_.replaceOn = {"type"};
    port_.disruptiveOn = {"switch", "portGroup", "vlan", "vlan.", "mtu", "remote", "local", "vni", "dstPort", "peer"};
    port_.defaults = {{"type", "internal"}};
    mirror_.kind = Kind::Mirror;
    mirror_.replaceOn = {"switch"};
    mirror_.unorderedLists = {"source.ports"};
    mirror_.defaults = {{"source.direction", "both"}};
    // Observe reports exactly the columns vnetplan manages: anything set out of band is a difference.
    for (KindTraits* t : {&switch_, &group_, &port_, &mirror_}) t->exhaustive = true;
  }

  std::string_view name() const override { return "ovs"; }

  const KindTraits* traits(Kind kind) const override {
    switch (kind) {
      case Kind::Switch: return &switch_;
      case Kind::PortGroup: return &group_;
      case Kind::Port: return &port_;
      case Kind::Mirror: return &mirror_;
      default: return nullptr;
    }
  }

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
      diags.error(target.loc,
                  "ovs: Target " + target.name + ": field " + path + " is not supported (an ovs Target takes db)",
                  "provider/unsupported");
    }
    std::lock_guard<std::mutex> lock(mu_);
    dbOf_[target.name] = target.spec.getString("db").value_or("unix:/var/run/openvswitch/db.sock");
  }

  void check(const Resource& r, const Target& target, Diagnostics& diags) const override {
    (void)target;
    const std::string kind = kindName(r.addr.kind);
    auto fail = [&](const std::string& msg, const char* code = "provider/invalid") { diags.error(r.loc, "ovs: " + msg, code); };
    auto unsupported = [&](const std::string& path, const std::string& why) {
      fail(r.addr.str() + ": field " + path + " is not supported by the ovs provider: " + why, "provider/unsupported");
    };
    if (!traits(r.addr.kind)) {
      fail("kind " + kind + " is not supported by the ovs provider (it manages Switch, PortGroup, Port and Mirror)",
           "provider/unsupported");
      return;
    }
    if (std::string why = nameProblem(r.addr.name); !why.empty())
      fail("invalid name '" + r.addr.name + "' for " + kind + " " + r.addr.str() + ": " + why);
    const Attrs& a = r.attrs;
    auto explicitly = [&](const std::string& path) {
      auto it = r.origins.find(path);
      return it == r.origins.end() || it->second.origin == Origin::Explicit;
    };
    std::string type = a.getString("type").value_or("internal");
    // Bridges' local ports and internal, tap and system ports are kernel (or TAP) devices.
    if ((r.addr.kind == Kind::Switch || (r.addr.kind == Kind::Port && (type == "internal" || type == "tap" || type == "system"))) &&
        r.addr.name.size() > 15)
      fail("invalid name '" + r.addr.name + "' for " + kind + " " + r.addr.str() +
           ": longer than 15 bytes (IFNAMSIZ); it becomes a network device");

    for (const auto& [path, v] : a.values()) {
      if (v.is_object() && v.empty()) continue;
      // ---- shared
      if (under(path, "security")) {
        auto native = kNativeSecurity.find(path);
        if (native != kNativeSecurity.end() && v.is_boolean() && v.get<bool>() != native->second)
          unsupported(path, std::string("Open vSwitch is a learning switch that ") +
                                (path == "security.allowPromiscuous"
                                     ? "never delivers a port frames not addressed to it"
                                     : "does not filter source MAC addresses") +
                                "; enforcing " + path + ": " + v.dump() +
                                " needs OpenFlow rules, which vnetplan does not write yet");
        continue;
      }
      if (under(path, "teaming")) {  // a PortGroup's or Port's teaming (inherited from the Switch's uplinks)
        if (explicitly(path))
          unsupported(path, "teaming is a property of the switch's uplink bond; OVS has no per-port-group failover order");
        continue;
      }
      if (path == "niocClass") {
        if (r.addr.kind != Kind::Port && r.addr.kind != Kind::PortGroup) unsupported(path, "niocClass belongs on a Port or PortGroup");
        continue;
      }
      if (under(path, "nioc")) {
        if (r.addr.kind != Kind::Switch) unsupported(path, "nioc is configured on the Switch");
        continue;
      }
      if (path == "up") {
        unsupported(path, "an interface's administrative state is kept by ovs-vswitchd, not in OVSDB");
        continue;
      }
      if (path == "addresses") {
        unsupported(path, "OVSDB has no IP addresses; address the bridge's internal port on the host");
        continue;
      }
      if (under(path, "linux") || under(path, "esxi")) {
        unsupported(path, "it belongs to the " + path.substr(0, path.find('.')) + " provider");
        continue;
      }
      if (under(path, "ovs.externalIds") && ovs::isVnetplanKey(path.substr(std::string("ovs.externalIds.").size()))) {
        fail(r.addr.str() + ": field " + path + ": keys starting with 'vnetplan:' are vnetplan's own");
        continue;
      }
      switch (r.addr.kind) {
        case Kind::Switch: checkSwitchField(r, path, v, fail, unsupported); break;
        case Kind::PortGroup:
          if (path == "switch") break;
          if (path == "vlan" || path == "vlan.trunk") checkVlan(path, v, fail);
          else if (under(path, "shaping")) break;  // applied to every member port
          else unsupported(path, "not an ovs PortGroup field");
          break;
        case Kind::Port: checkPortField(r, type, path, v, fail, unsupported); break;
        case Kind::Mirror:
          if (path == "switch" || path == "source.ports" || path == "source.direction" || path == "destination.port") break;
          unsupported(path, "not an ovs Mirror field");
          break;
        default: break;
      }
    }
    if (r.addr.kind == Kind::Port) {
      if (!a.has("switch") && !a.has("portGroup")) fail(r.addr.str() + ": a Port needs switch or portGroup");
      if (a.has("portGroup") && (a.has("vlan") || a.has("vlan.trunk")))
        fail(r.addr.str() + ": field vlan: the VLAN of a Port in a port group comes from the group; set it there");
      if (kTunnelTypes.count(type) && !a.has("remote")) fail(r.addr.str() + ": a " + type + " Port needs remote");
      if (type == "patch" && !a.has("peer")) fail(r.addr.str() + ": a patch Port needs peer (the other patch port)");
      if (a.has("shaping.burstKiB") && !a.has("shaping.averageKbps"))
        fail(r.addr.str() + ": field shaping.burstKiB needs shaping.averageKbps (OVS polices a rate with a burst)");
    }
    if (r.addr.kind == Kind::Switch && a.getBool("nioc.enabled") != false && !a.subtree("nioc.").empty()) {
      // NIOC divides the uplink: a linux-htb QoS on the uplink port.
      if (a.getStrings("uplinks.nics").empty())
        fail(r.addr.str() + ": nioc needs uplinks.nics (the QoS that divides the bandwidth sits on the uplink)");
      auto uplink = a.getInt("nioc.uplinkMbps");
      if (!uplink) fail(r.addr.str() + ": nioc needs uplinkMbps (the capacity that shares and reservations divide)");
      int64_t reserved = 0;
      const Attrs classAttrs = a.subtree("nioc.classes.");
      for (const auto& [path, v] : classAttrs.values()) {
        if (path.size() > 16 && path.compare(path.size() - 16, 16, ".reservationMbps") == 0 && v.is_number_integer())
          reserved += v.get<int64_t>();
        if (path.size() > 10 && path.compare(path.size() - 10, 10, ".limitMbps") == 0 && v.is_number_integer()) {
          std::string cls = path.substr(13, path.size() - 10 - 13);  // nioc.classes.CLS.limitMbps
          auto res = a.getInt("nioc.classes." + cls + ".reservationMbps");
          if (res && *res > v.get<int64_t>())
            fail(r.addr.str() + ": nioc class " + cls + ": reservationMbps " + std::to_string(*res) + " exceeds limitMbps " +
                 std::to_string(v.get<int64_t>()));
        }
      }
      if (uplink && reserved > *uplink)
        fail(r.addr.str() + ": nioc reservations add up to " + std::to_string(reserved) + " Mbit/s, more than uplinkMbps " +
             std::to_string(*uplink));
    }
    if (r.addr.kind == Kind::Switch && !a.subtree("ovs.bond.").empty() && a.getStrings("uplinks.nics").size() < 2)
      fail(r.addr.str() + ": ovs.bond applies to a bond, which needs two or more uplinks.nics", "provider/unsupported");
    if (r.addr.kind == Kind::Switch && a.getBool("stp") == true && a.getBool("ovs.rstp") == true)
      fail(r.addr.str() + ": stp and ovs.rstp cannot both be enabled on one bridge");
    if (r.addr.kind == Kind::Mirror) {
      auto dest = a.getString("destination.port");
      auto src = a.getStrings("source.ports");
      if (dest && std::find(src.begin(), src.end(), *dest) != src.end())
        fail(r.addr.str() + ": destination.port " + *dest + " is also a source port");
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
      if (it == switches.end() || it->second->attrs.getBool("nioc.enabled") == false ||
          it->second->attrs.subtree("nioc.classes." + *cls + ".").empty())
        diags.error(r->loc,
                    "ovs: " + r->addr.str() + ": niocClass " + *cls + " is not a class of switch " + sw +
                        "'s nioc (add nioc.classes." + *cls + " there)",
                    "provider/invalid");
      else if (!unixDb)
        diags.error(r->loc,
                    "ovs: " + r->addr.str() + ": niocClass needs OpenFlow flows written through ovs-vswitchd's "
                    "management socket on the host; the Target's db must be a unix: socket",
                    "provider/unsupported");
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

  void normalize(Resource& r) const override {
    if (r.addr.kind == Kind::Switch && !r.attrs.subtree("nioc.").empty()) {
      // A nioc block is on unless it says enabled: false; off means no QoS at all.
      if (r.attrs.getBool("nioc.enabled") == false) {
        std::vector<std::string> off;
        const Attrs nioc = r.attrs.subtree("nioc.");
        for (const auto& [path, v] : nioc.values()) off.push_back(path);
        for (const auto& p : off) r.attrs.erase(p);
      } else {
        r.attrs.set("nioc.enabled", true);
        static const std::map<std::string, int64_t> named{{"low", 25}, {"normal", 50}, {"high", 100}};
        std::vector<std::pair<std::string, int64_t>> shares;
        for (const auto& [path, v] : r.attrs.values())
          if (path.rfind("nioc.classes.", 0) == 0 && path.size() > 7 && path.compare(path.size() - 7, 7, ".shares") == 0 &&
              v.is_string() && named.count(v.get<std::string>()))
            shares.emplace_back(path, named.at(v.get<std::string>()));
        for (const auto& [p, n] : shares) r.attrs.set(p, n);
      }
    }
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
    if (r.addr.kind == Kind::Switch) {
      if (r.attrs.getInt("ovs.netflow.activeTimeout") == 0) r.attrs.erase("ovs.netflow.activeTimeout");
      for (const char* p : {"ovs.bond.updelayMs", "ovs.bond.downdelayMs"})
        if (r.attrs.getInt(p) == 0) r.attrs.erase(p);
      normalizeTeaming(r.attrs);
    }
  }

  Result<std::unique_ptr<TargetSession>> connect(const Target& target) override {
    auto s = ovs::OvsSession::connect(target);
    if (!s) return s.error();
    return std::unique_ptr<TargetSession>(std::move(*s));
  }

  std::string describe(const Step& step) const override {
    static const std::map<Kind, const char*> labels{
        {Kind::Switch, "bridge"}, {Kind::PortGroup, "port group"}, {Kind::Port, "port"}, {Kind::Mirror, "mirror"}};
    auto it = labels.find(step.addr.kind);
    std::string label = it != labels.end() ? it->second : kindName(step.addr.kind);
    const Attrs& a = step.action == StepAction::Delete ? step.before : step.after;
    std::string out = std::string(stepActionName(step.action)) + " " + label + " " + step.addr.name;
    std::vector<std::string> parts;
    if (step.action == StepAction::Create) {
      if (step.addr.kind == Kind::Port) {
        parts.push_back(a.getString("type").value_or("internal"));
        if (auto g = a.getString("portGroup")) parts.push_back("in port group " + *g);
        else if (auto sw = a.getString("switch")) parts.push_back("on bridge " + *sw);
        if (auto vlan = a.getInt("vlan")) parts.push_back("vlan " + std::to_string(*vlan));
        if (const Json* t = a.find("vlan.trunk")) parts.push_back("trunk " + t->dump());
        if (auto remote = a.getString("remote")) parts.push_back("remote " + *remote);
      } else if (step.addr.kind == Kind::Switch) {
        if (auto dp = a.getString("ovs.datapathType")) parts.push_back("datapath " + *dp);
        auto nics = a.getStrings("uplinks.nics");
        if (!nics.empty()) {
          std::string list;
          for (const auto& n : nics) list += (list.empty() ? "" : "+") + n;
          parts.push_back("uplinks " + list);
        }
      } else if (step.addr.kind == Kind::PortGroup) {
        if (auto sw = a.getString("switch")) parts.push_back("on bridge " + *sw);
        if (auto vlan = a.getInt("vlan")) parts.push_back("vlan " + std::to_string(*vlan));
        if (const Json* t = a.find("vlan.trunk")) parts.push_back("trunk " + t->dump());
      }
      if (auto mtu = a.getInt("mtu")) parts.push_back("mtu " + std::to_string(*mtu));
    } else if (step.action == StepAction::Update) {
      for (const auto& p : step.changed) {
        const Json* b = step.before.find(p);
        const Json* n = step.after.find(p);
        parts.push_back(p + " " + (b ? b->dump() : "(none)") + " -> " + (n ? n->dump() : "(none)"));
      }
    }
    if (!parts.empty()) {
      out += " (";
      for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
      out += ")";
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (auto db = dbOf_.find(step.addr.target); db != dbOf_.end()) out += " on " + db->second;
    return out;
  }

 private:
  template <typename F, typename U>
  void checkSwitchField(const Resource& r, const std::string& path, const Json& v, F& fail, U& unsupported) const {
    (void)v;
    static const std::set<std::string> plain{"mtu", "stp", "ovs.datapathType", "ovs.failMode", "ovs.rstp",
                                             "ovs.netflow.targets", "ovs.netflow.activeTimeout", "ovs.sflow.targets",
                                             "ovs.sflow.sampling", "ovs.sflow.polling", "ovs.bond.miimonMs",
                                             "ovs.bond.updelayMs", "ovs.bond.downdelayMs", "uplinks.nics"};
    if (plain.count(path) || under(path, "ovs.otherConfig") || under(path, "ovs.externalIds") || under(path, "shaping"))
      return;
    if (under(path, "uplinks.teaming")) {
      checkTeaming(r, path, fail, unsupported);
      return;
    }
    unsupported(path, "not an ovs Switch field");
  }

  template <typename F, typename U>
  void checkTeaming(const Resource& r, const std::string& path, F& fail, U& unsupported) const {
    const Attrs& a = r.attrs;
    const std::string policy = a.getString("uplinks.teaming.policy").value_or("failover");
    const size_t nics = a.getStrings("uplinks.nics").size();
    const std::string field = path.substr(std::string("uplinks.teaming.").size());
    if (nics < 2) {
      unsupported(path, "a single uplink NIC is a plain port; teaming needs two or more NICs");
      return;
    }
    if (field == "policy") {
      if (policy == "src-port" || policy == "load-based" || policy == "round-robin")
        unsupported(path, "OVS bonds balance by source MAC (src-mac = balance-slb) or L3/L4 with LACP "
                          "(ip-hash/lacp = balance-tcp), or fail over (failover = active-backup); '" +
                              policy + "' has no OVS equivalent");
    } else if (field == "active") {
      if (policy != "failover") unsupported(path, "an active NIC order applies to policy failover (active-backup) only");
      else if (a.getStrings(path).size() > 1)
        unsupported(path, "an OVS active-backup bond has one primary NIC; list one NIC in active, the rest in standby");
    } else if (field == "standby") {
      if (policy != "failover") {
        unsupported(path, "standby NICs apply to policy failover (active-backup) only");
      } else {
        std::set<std::string> rest;
        auto active = a.getStrings("uplinks.teaming.active");
        for (const auto& n : a.getStrings("uplinks.nics"))
          if (std::find(active.begin(), active.end(), n) == active.end()) rest.insert(n);
        auto standby = a.getStrings(path);
        if (std::set<std::string>(standby.begin(), standby.end()) != rest)
          unsupported(path, "in an OVS active-backup bond every NIC that is not the primary is a standby; standby "
                            "must list exactly the other NICs");
      }
    } else if (field == "failureDetection") {
      if (a.getString(path) != "link")
        unsupported(path, "OVS bonds detect failure by link state (carrier or miimon: ovs.bond.miimonMs); "
                          "beacon and ARP probing have no OVS equivalent");
    } else if (field == "notifySwitches" || field == "failback") {
      if (a.getBool(path) == false)
        unsupported(path, field == "failback" ? "an OVS bond always returns to its primary NIC when it recovers"
                                              : "OVS always sends learning packets to the physical switches on failover");
    } else if (field == "lacp.mode" || field == "lacp.rate") {
      if (policy != "lacp" && policy != "ip-hash") unsupported(path, "LACP settings apply to policy lacp or ip-hash");
    } else if (field == "hashPolicy") {
      if (a.getString(path) != "layer3+4" || (policy != "lacp" && policy != "ip-hash"))
        unsupported(path, "OVS balance-tcp hashes layer3+4 (with LACP); other hash policies have no OVS equivalent");
    } else {
      unsupported(path, "not an ovs teaming field");
    }
    (void)fail;
  }

  static void normalizeTeaming(Attrs& a) {
    auto nics = a.getStrings("uplinks.nics");
    if (nics.empty()) return;
    std::sort(nics.begin(), nics.end());
    a.set("uplinks.nics", Json(nics));
    if (nics.size() < 2) return;
    std::string policy = a.getString("uplinks.teaming.policy").value_or("failover");
    a.set("uplinks.teaming.policy", policy);
    // Values that state what an OVS bond does anyway.
    if (a.getString("uplinks.teaming.failureDetection") == "link") a.erase("uplinks.teaming.failureDetection");
    if (a.getBool("uplinks.teaming.notifySwitches") == true) a.erase("uplinks.teaming.notifySwitches");
    if (a.getBool("uplinks.teaming.failback") == true) a.erase("uplinks.teaming.failback");
    if (a.getString("uplinks.teaming.hashPolicy") == "layer3+4") a.erase("uplinks.teaming.hashPolicy");
    a.erase("uplinks.teaming.standby");  // checked: exactly the NICs that are not the primary
    if ((policy == "lacp" || policy == "ip-hash") && !a.has("uplinks.teaming.lacp.mode"))
      a.set("uplinks.teaming.lacp.mode", "active");
  }

  template <typename F>
  static void checkVlan(const std::string& path, const Json& v, F& fail) {
    if (path == "vlan") {
      if (v.is_number_integer() && v.get<int64_t>() == 4095)
        fail("field vlan: 4095 (all VLANs, guest tagging) is ESXi only; on OVS use vlan: {trunk: [\"1-4094\"]}",
             "provider/unsupported");
      return;
    }
    std::string why;
    if (!canonicalTrunks(v, &why)) fail("field vlan.trunk: " + why, "provider/invalid");
  }

  template <typename F, typename U>
  void checkPortField(const Resource& r, const std::string& type, const std::string& path, const Json& v, F& fail,
                      U& unsupported) const {
    (void)r;
    if (path == "type") {
      if (!kPortTypes.count(type))
        unsupported(path, "OVS ports are internal, system, tap, vxlan, gre, geneve or patch, not '" + type + "'");
    } else if (path == "switch" || path == "portGroup" || path == "mtu" || path == "ovs.ofport" ||
               under(path, "ovs.otherConfig") || under(path, "ovs.externalIds") || path == "shaping.averageKbps" ||
               path == "shaping.burstKiB") {
    } else if (path == "vlan" || path == "vlan.trunk") {
      checkVlan(path, v, fail);
    } else if (path == "mac") {
      if (type != "internal") unsupported(path, "OVS sets the MAC address of internal ports only");
    } else if (path == "peer") {
      if (type != "patch") unsupported(path, "peer on OVS is the other end of a patch port (type patch)");
    } else if (path == "remote" || path == "local") {
      if (!kTunnelTypes.count(type)) unsupported(path, "tunnel endpoints apply to vxlan, gre and geneve ports");
    } else if (path == "vni") {
      if (!kTunnelTypes.count(type)) unsupported(path, "a tunnel key applies to vxlan, geneve (VNI) and gre (key) ports");
    } else if (path == "dstPort") {
      if (type != "vxlan" && type != "geneve") unsupported(path, "a UDP destination port applies to vxlan and geneve");
    } else if (path == "shaping.peakKbps") {
      unsupported(path, "OVS ingress policing has one rate (averageKbps) and a burst; a peak rate needs an egress "
                        "QoS, which vnetplan does not write yet");
    } else {
      unsupported(path, "not an ovs Port field");
    }
  }

  static std::string nameProblem(const std::string& n) {
    if (n.empty()) return "empty";
    if (n.size() > 255) return "longer than 255 bytes";
    for (unsigned char c : n)
      if (c < 0x21 || c == 0x7f || c == '/') return "contains whitespace, '/' or a control character";
    return "";
  }

  KindTraits switch_, group_, port_, mirror_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::string> dbOf_;  // target -> db remote, for describe()
};

}  // namespace

std::unique_ptr<Provider> makeOvsProvider() { return std::make_unique<OvsProvider>(); }

}  // namespace vnetplan
