// Port = an OVS Port with one Interface of the same name: internal, system (an existing host device), tap,
// vxlan/gre/geneve tunnels and patch ports. `mac` of a tap or system port is the guest's (external_ids:
// attached-mac); of an internal port, its own. VLAN from `vlan` or from the Port's PortGroup; shaping as
// ingress policing.
#include <algorithm>
#include <cmath>
#include <set>

#include "providers/ovs/kind.h"

namespace vnetplan::ovs {

namespace {

// A VM's port (a tap, or a system port: a tap libvirt made) carries the guest's MAC, not its own: `mac` is
// written where libvirt and OVN look for it, external_ids:attached-mac. The host side's own MAC stays what the
// device has (OVS sets Interface.mac on internal ports only, and forwards by learning, so it never matters).
// An internal port is a host interface: `mac` is its own address.
constexpr const char* kAttachedMac = "attached-mac";
bool guestMac(const std::string& ifaceType) { return ifaceType == "tap" || ifaceType.empty(); }

// Tunnel and patch fields <-> Interface options.
struct OptionField {
  const char* attr;
  const char* option;
  bool integer;
};
const OptionField kOptions[] = {
    {"remote", "remote_ip", false}, {"local", "local_ip", false}, {"vni", "key", true},
    {"dstPort", "dst_port", true},  {"peer", "peer", false},
};

// OVS policing burst is in kilobits (1000 bits); the manifest's is KiB. Exact both ways for whole KiB.
int64_t kibToKb(int64_t kib) { return std::llround(static_cast<double>(kib) * 8.192); }
int64_t kbToKib(int64_t kb) { return std::llround(static_cast<double>(kb) / 8.192); }

void observePorts(const OvsLive& live, Observation& obs) {
  const Snapshot& snap = live.snap;
  const std::string& target = live.target;
  // Port group definitions: group -> (its bridge, its VLAN).
  std::map<std::string, std::pair<std::string, Attrs>> groups;
  for (const auto& [buuid, br] : snap.bridges())
    for (const auto& [key, value] : br.externalIds)
      if (key.rfind(kGroupPrefix, 0) == 0)
        groups[key.substr(std::string(kGroupPrefix).size())] = {br.name, vlanOnly(groupSettings(parseSettings(value)))};
  for (const auto& [buuid, br] : snap.bridges()) {
    for (const auto& puuid : br.ports) {
      const PortRow* port = snap.port(puuid);
      if (!port || port->name == br.name || isUplinkPort(*port)) continue;  // the local and uplink ports are the Switch's
      ObservedObject o;
      o.addr = Address{target, Kind::Port, port->name};
      o.taggedByVnetplan = ownedByVnetplan(port->externalIds);
      o.identity.id = puuid;  // the row's uuid
      Attrs& a = o.attrs;
      const StrMap& pids = port->externalIds;
      Attrs vlan;
      vlanAttrs(*port, vlan);
      if (auto g = pids.find(kPortGroupKey); g != pids.end()) {
        a.set("portGroup", g->second);
        // The VLAN and the bridge come from the group: shown only when the port's own disagree with it.
        auto def = groups.find(g->second);
        Attrs groupVlan = def == groups.end() ? Attrs() : def->second.second;
        if (!(vlan == groupVlan))
          for (const auto& [k, v] : vlan.values()) a.set(k, v);
        if (def != groups.end() && def->second.first != br.name) a.set("ovs.bridge", br.name);
      } else {
        a.set("switch", br.name);
        for (const auto& [k, v] : vlan.values()) a.set(k, v);
      }
      if (auto c = pids.find(kNiocClassKey); c != pids.end()) a.set("niocClass", c->second);
      const InterfaceRow* iface = port->interfaces.empty() ? nullptr : snap.interface(port->interfaces[0]);
      if (iface) {
        const InterfaceRow& i = *iface;
        a.set("type", i.type.empty() ? "system" : i.type);
        if (i.mtuRequest) a.set("mtu", *i.mtuRequest);
        StrMap ids = userKeys(i.externalIds);
        if (guestMac(i.type)) {
          if (auto m = ids.find(kAttachedMac); m != ids.end()) a.set("mac", m->second), ids.erase(m);
        } else if (i.mac) {
          a.set("mac", *i.mac);
        }
        if (i.ofportRequest) a.set("ovs.ofport", *i.ofportRequest);
        StrMap options = i.options;
        for (const auto& f : kOptions) {
          auto it = options.find(f.option);
          if (it == options.end()) continue;
          char* end = nullptr;
          long long n = std::strtoll(it->second.c_str(), &end, 10);
          if (f.integer && end && *end == '\0' && !it->second.empty()) a.set(f.attr, static_cast<int64_t>(n));
          else a.set(f.attr, it->second);
          options.erase(it);
        }
        mapToAttrs(options, "ovs.options", a);  // options vnetplan does not write: shown so drift is visible
        mapToAttrs(i.otherConfig, "ovs.otherConfig", a);
        mapToAttrs(ids, "ovs.externalIds", a);
        if (i.policingRate > 0) a.set("shaping.averageKbps", i.policingRate);
        if (i.policingBurst > 0) a.set("shaping.burstKiB", kbToKib(i.policingBurst));
      }
      if (port->interfaces.size() > 1) {
        std::vector<std::string> names;
        for (const auto& iu : port->interfaces) names.push_back(snap.nameOf("Interface", iu));
        a.set("ovs.bondInterfaces", Json(names));  // a bond vnetplan did not make: visible, never changed
      }
      obs.objects[o.addr] = std::move(o);
    }
  }
}

// The Interface columns vnetplan manages, from the desired attributes.
Json interfaceRow(TxnContext& ctx, const Step& step) {
  const Attrs& a = step.after;
  std::string type = a.getString("type").value_or("internal");
  std::map<std::string, std::string> ids = attrsToMap(a, "ovs.externalIds");
  const bool vmMac = guestMac(type == "system" ? "" : type);
  if (vmMac && a.has("mac")) ids[kAttachedMac] = *a.getString("mac");
  std::map<std::string, std::string> options = attrsToMap(a, "ovs.options");
  for (const auto& f : kOptions)
    if (const Json* v = a.find(f.attr)) options[f.option] = v->is_string() ? v->get<std::string>() : v->dump();
  Json row{{"type", type == "system" ? "" : type},
           {"options", mapOf(options)},
           {"mtu_request", a.has("mtu") ? Json(*a.getInt("mtu")) : setOf({})},
           {"mac", a.has("mac") && !vmMac ? Json(*a.getString("mac")) : setOf({})},
           {"ofport_request", a.has("ovs.ofport") ? Json(*a.getInt("ovs.ofport")) : setOf({})},
           {"ingress_policing_rate", a.getInt("shaping.averageKbps").value_or(0)},
           {"ingress_policing_burst", a.has("shaping.burstKiB") ? kibToKb(*a.getInt("shaping.burstKiB")) : 0},
           {"other_config", mapOf(attrsToMap(a, "ovs.otherConfig"))},
           {"external_ids", ctx.ownedIds(step.addr, ids)}};
  return row;
}

// The bridge a port belongs on and its VLAN attributes (its own, or its group's).
struct Placement {
  std::string bridge;
  Attrs vlan;
  std::string group;
};
Result<Placement> placement(TxnContext& ctx, const Attrs& a) {
  Placement p;
  if (auto g = a.getString("portGroup")) {
    auto group = ctx.group(*g);
    if (!group) return err("port group " + *g + " does not exist");
    p.bridge = group->bridge;
    p.vlan = vlanOnly(group->attrs);
    p.group = *g;
    return p;
  }
  auto sw = a.getString("switch");
  if (!sw) return err("the port has neither switch nor portGroup");
  p.bridge = *sw;
  p.vlan = vlanOnly(a);
  return p;
}

Json portRow(TxnContext& ctx, const Step& step, const Placement& where) {
  VlanColumns v = vlanColumns(where.vlan);
  std::map<std::string, std::string> extra;
  if (!where.group.empty()) extra[kPortGroupKey] = where.group;
  if (auto cls = step.after.getString("niocClass")) extra[kNiocClassKey] = *cls;
  return Json{{"tag", v.tag}, {"trunks", v.trunks}, {"vlan_mode", v.vlanMode}, {"external_ids", ctx.ownedIds(step.addr, extra)}};
}

Status createPort(TxnContext& ctx, const Step& step) {
  const std::string& name = step.addr.name;
  auto where = placement(ctx, step.after);
  if (!where) return where.error();
  if (!ctx.bridgeRef(where->bridge)) return err("bridge " + where->bridge + " does not exist");
  ctx.guardAbsent("Port", name, "port " + name);
  ctx.guardAbsent("Interface", name, "interface " + name);
  Json iface = interfaceRow(ctx, step);
  iface["name"] = name;
  Json ifaceRef = ctx.txn().insert("Interface", iface, "create interface " + name);
  Json row = portRow(ctx, step, *where);
  row["name"] = name;
  row["interfaces"] = setOf({ifaceRef});
  Json ref = ctx.txn().insert("Port", row, "create port " + name);
  // A replace (the old row was removed above): mirrors hold weak references, so the old row's place in every
  // mirror would silently vanish; the new row takes it.
  if (auto old = ctx.portGone(name) ? ctx.snap().portUuid(name) : std::nullopt)
    for (const auto& [mu, m] : ctx.snap().mirrors()) {
      Json mutations = Json::array();
      for (const auto& [column, refs] : {std::pair<const char*, const std::vector<std::string>*>{"select_src_port", &m.selectSrcPort},
                                         {"select_dst_port", &m.selectDstPort}})
        if (std::find(refs->begin(), refs->end(), *old) != refs->end())
          mutations.push_back(Json::array({column, "insert", setOf({ref})}));
      if (!mutations.empty()) ctx.txn().mutate("Mirror", mu, mutations, "keep port " + name + " in mirror " + m.name);
      if (m.outputPort == *old)
        ctx.txn().update("Mirror", mu, Json{{"output_port", ref}}, "keep port " + name + " as the output of mirror " + m.name);
    }
  ctx.addedPort(name, ref);
  return ctx.bridgeSetInsert(where->bridge, "ports", ref, "add port " + name + " to bridge " + where->bridge);
}

Status updatePort(TxnContext& ctx, const Step& step) {
  const std::string& name = step.addr.name;
  auto puuid = ctx.snap().portUuid(name);
  if (!puuid) return err("port " + name + " no longer exists");
  auto where = placement(ctx, step.after);
  if (!where) return where.error();
  ctx.guard("Port", *puuid, "port " + name);
  auto ifaces = ctx.snap().interfacesOf(*puuid);
  if (ifaces.size() != 1) return err("port " + name + " has " + std::to_string(ifaces.size()) + " interfaces (a bond vnetplan did not make)");
  ctx.guard("Interface", ifaces[0], "interface " + name);
  ctx.txn().update("Interface", ifaces[0], interfaceRow(ctx, step), "update interface " + name);
  ctx.txn().update("Port", *puuid, portRow(ctx, step, *where), "update port " + name);
  auto oldBridge = ctx.snap().bridgeOfPort(*puuid);
  std::string oldName = oldBridge ? ctx.snap().nameOf("Bridge", *oldBridge) : "";
  if (oldName != where->bridge) {
    if (oldBridge)
      if (Status s = ctx.bridgeSetDelete(oldName, "ports", uuidRef(*puuid), "move port " + name + " off bridge " + oldName); !s)
        return s;
    return ctx.bridgeSetInsert(where->bridge, "ports", uuidRef(*puuid), "move port " + name + " to bridge " + where->bridge);
  }
  return {};
}

Status deletePort(TxnContext& ctx, const Step& step) {
  const std::string& name = step.addr.name;
  auto puuid = ctx.snap().portUuid(name);
  if (!puuid) return {};  // already gone
  ctx.guard("Port", *puuid, "port " + name);
  auto bridge = ctx.snap().bridgeOfPort(*puuid);
  ctx.removedPort(name);
  if (!bridge) return {};
  // The Port and its Interface are not root rows: removing the reference deletes them.
  return ctx.bridgeSetDelete(ctx.snap().nameOf("Bridge", *bridge), "ports", uuidRef(*puuid), "delete port " + name);
}

// ---- plan time

const std::set<std::string> kPortTypes{"internal", "system", "tap", "vxlan", "gre", "geneve", "patch"};
const std::set<std::string> kTunnelTypes{"vxlan", "gre", "geneve"};

std::string typeOf(const Resource& r) { return r.attrs.getString("type").value_or("internal"); }

void checkType(const FieldCheck& fc) {
  const std::string type = typeOf(fc.resource);
  if (!kPortTypes.count(type))
    unsupported(fc, "OVS ports are internal, system, tap, vxlan, gre, geneve or patch, not '" + type + "'");
}

void checkMac(const FieldCheck& fc) {
  const std::string type = typeOf(fc.resource);
  if (type != "internal" && type != "tap" && type != "system")
    unsupported(fc, "a MAC address is an internal port's own or the guest's behind a tap or system port");
}

// up / addresses: the kernel side of a host interface (host_port.h).
void checkHostSide(const FieldCheck& fc) {
  if (typeOf(fc.resource) != "internal")
    return unsupported(fc, "up and addresses belong to internal ports (host interfaces); a " + typeOf(fc.resource) +
                               " port's device belongs to its VM or the host");
  if (fc.path == "up") fc.requireBool();
  else fc.requireAddressList();
}

void checkPeer(const FieldCheck& fc) {
  if (typeOf(fc.resource) != "patch") unsupported(fc, "peer on OVS is the other end of a patch port (type patch)");
}

void checkTunnelEndpoint(const FieldCheck& fc) {
  if (!kTunnelTypes.count(typeOf(fc.resource))) unsupported(fc, "tunnel endpoints apply to vxlan, gre and geneve ports");
}

void checkVni(const FieldCheck& fc) {
  if (!kTunnelTypes.count(typeOf(fc.resource)))
    unsupported(fc, "a tunnel key applies to vxlan, geneve (VNI) and gre (key) ports");
}

void checkDstPort(const FieldCheck& fc) {
  const std::string type = typeOf(fc.resource);
  if (type != "vxlan" && type != "geneve") unsupported(fc, "a UDP destination port applies to vxlan and geneve");
}

void checkPeak(const FieldCheck& fc) {
  unsupported(fc, "OVS ingress policing has one rate (averageKbps) and a burst; a peak rate needs an egress QoS, "
                  "which vnetplan does not write yet");
}

void portCheck(const Resource& r, const Target&, Diagnostics& diags) {
  const Attrs& a = r.attrs;
  const std::string type = typeOf(r);
  auto fail = [&](const std::string& msg) { diags.error(r.loc, "ovs: " + r.addr.str() + ": " + msg, "provider/invalid"); };
  if (!a.has("switch") && !a.has("portGroup")) fail("a Port needs switch or portGroup");
  if (a.has("portGroup") && (a.has("vlan") || a.has("vlan.trunk")))
    fail("field vlan: the VLAN of a Port in a port group comes from the group; set it there");
  if (kTunnelTypes.count(type) && !a.has("remote")) fail("a " + type + " Port needs remote");
  if (type == "patch" && !a.has("peer")) fail("a patch Port needs peer (the other patch port)");
  if (a.has("mac") && a.has(std::string("ovs.externalIds.") + kAttachedMac))
    fail(std::string("field ovs.externalIds.") + kAttachedMac + ": the guest's MAC is set by mac; set one of them");
  if (a.has("shaping.burstKiB") && !a.has("shaping.averageKbps"))
    fail("field shaping.burstKiB needs shaping.averageKbps (OVS polices a rate with a burst)");
}

void portDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  const Attrs& a = step.after;
  parts.push_back(a.getString("type").value_or("internal"));
  if (auto g = a.getString("portGroup")) parts.push_back("in port group " + *g);
  else if (auto sw = a.getString("switch")) parts.push_back("on bridge " + *sw);
  if (auto vlan = a.getInt("vlan")) parts.push_back("vlan " + std::to_string(*vlan));
  if (const Json* t = a.find("vlan.trunk")) parts.push_back("trunk " + t->dump());
  if (auto remote = a.getString("remote")) parts.push_back("remote " + *remote);
  if (a.getBool("up") == true) parts.push_back("up");
  if (auto addrs = a.getStrings("addresses"); !addrs.empty()) {
    std::string text = "addresses";
    for (const auto& x : addrs) text += " " + x;
    parts.push_back(text);
  }
}

// A tunnel or patch port has no MTU of its own to take from its switch (a tunnel's must stay below the
// underlay's): an inherited one is dropped; an explicit one is kept (and checked).
void portNormalize(Resource& r) {
  const std::string type = typeOf(r);
  auto o = r.origins.find("mtu");
  if ((kTunnelTypes.count(type) || type == "patch") && o != r.origins.end() && o->second.origin == Origin::Inherited) {
    r.attrs.erase("mtu");
    r.origins.erase(o);
  }
}

KindTraits portTraits() {
  KindTraits t;
  t.kind = Kind::Port;
  t.replaceOn = {"type"};
  t.disruptiveOn = {"switch", "portGroup", "vlan", "vlan.", "mtu", "remote", "local", "vni", "dstPort", "peer"};
  t.defaults = {{"type", "internal"}};
  t.exhaustive = true;  // observe reports exactly the columns vnetplan manages
  t.unorderedLists = {"addresses"};
  t.managedOnlyWhenSet = {"up", "addresses"};  // an internal port's kernel side, where a manifest sets it
  return t;
}

const KindTraits kPortTraits = portTraits();

}  // namespace

const KindOps kPortOps{.kind = Kind::Port,
                       .variant = "",
                       .label = "port",
                       .traits = &kPortTraits,
                       .fields = {{"type", checkType},
                                  {"switch"},
                                  {"portGroup"},
                                  {"mtu"},
                                  {"niocClass"},
                                  {"ovs.ofport"},
                                  {"ovs.otherConfig."},
                                  {"shaping.averageKbps"},
                                  {"shaping.burstKiB"},
                                  {"shaping.peakKbps", checkPeak},
                                  {"vlan", checkVlanField},
                                  {"vlan.trunk", checkVlanField},
                                  {"mac", checkMac},
                                  {"peer", checkPeer},
                                  {"remote", checkTunnelEndpoint},
                                  {"local", checkTunnelEndpoint},
                                  {"vni", checkVni},
                                  {"dstPort", checkDstPort},
                                  {"up", checkHostSide},
                                  {"addresses", checkHostSide}},
                       .check = portCheck,
                       .normalize = portNormalize,
                       .describe = portDescribe,
                       .observe = observePorts,
                       .create = createPort,
                       .update = updatePort,
                       .remove = deletePort};

}  // namespace vnetplan::ovs
