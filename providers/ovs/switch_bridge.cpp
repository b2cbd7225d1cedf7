// Switch = OVS Bridge, with its local (internal) port of the same name, optional NetFlow/sFlow rows and the
// uplink Port (a bond when there are several NICs).
#include <algorithm>

#include "providers/ovs/kind.h"

namespace vnetplan::ovs {

namespace {

// ---- teaming <-> bond columns

struct BondColumns {
  Json bondMode = setOf({});
  Json lacp = setOf({});
  std::map<std::string, std::string> otherConfig;
  Json updelay = 0, downdelay = 0;
  std::map<std::string, std::string> ids;  // vnetplan:teaming (the portable policy, where OVS merges two)
};

BondColumns bondColumns(const Attrs& a) {
  BondColumns b;
  std::string policy = a.getString("uplinks.teaming.policy").value_or("failover");
  if (policy == "failover") {
    b.bondMode = "active-backup";
    auto active = a.getStrings("uplinks.teaming.active");
    if (!active.empty()) b.otherConfig["bond-primary"] = active[0];
  } else if (policy == "src-mac") {
    b.bondMode = "balance-slb";
  } else {  // ip-hash, lacp
    b.bondMode = "balance-tcp";
    b.lacp = a.getString("uplinks.teaming.lacp.mode").value_or("active");
    if (auto rate = a.getString("uplinks.teaming.lacp.rate")) b.otherConfig["lacp-time"] = *rate;
    b.ids["vnetplan:teaming"] = policy;
  }
  if (auto miimon = a.getInt("ovs.bond.miimonMs")) {
    b.otherConfig["bond-detect-mode"] = "miimon";
    b.otherConfig["bond-miimon-interval"] = std::to_string(*miimon);
  }
  b.updelay = a.getInt("ovs.bond.updelayMs").value_or(0);
  b.downdelay = a.getInt("ovs.bond.downdelayMs").value_or(0);
  return b;
}

void bondAttrs(const PortRow& port, Attrs& a) {
  const std::string mode = port.bondMode.value_or("");
  const StrMap& oc = port.otherConfig;
  auto get = [](const StrMap& m, const char* k) -> std::optional<std::string> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
  if (mode == "active-backup" || mode.empty()) {
    a.set("uplinks.teaming.policy", "failover");
    if (auto primary = get(oc, "bond-primary")) a.set("uplinks.teaming.active", Json::array({*primary}));
  } else if (mode == "balance-slb") {
    a.set("uplinks.teaming.policy", "src-mac");
  } else if (mode == "balance-tcp") {
    a.set("uplinks.teaming.policy", get(port.externalIds, "vnetplan:teaming") == "ip-hash" ? "ip-hash" : "lacp");
    if (port.lacp && *port.lacp != "off") a.set("uplinks.teaming.lacp.mode", *port.lacp);
    if (auto rate = get(oc, "lacp-time")) a.set("uplinks.teaming.lacp.rate", *rate);
  } else {
    a.set("ovs.bond.mode", mode);  // not one vnetplan writes: shown as is
  }
  if (get(oc, "bond-detect-mode") == "miimon") {
    long ms = 100;  // OVS's default interval
    if (auto v = get(oc, "bond-miimon-interval")) ms = std::strtol(v->c_str(), nullptr, 10);
    a.set("ovs.bond.miimonMs", static_cast<int64_t>(ms));
  }
  if (port.bondUpdelay) a.set("ovs.bond.updelayMs", port.bondUpdelay);
  if (port.bondDowndelay) a.set("ovs.bond.downdelayMs", port.bondDowndelay);
}

// ---- observe

void observeSwitches(const Snapshot& snap, const std::string& target, Observation& obs) {
  for (const auto& [buuid, br] : snap.bridges()) {
    ObservedObject o;
    o.addr = Address{target, Kind::Switch, br.name};
    o.taggedByVnetplan = ownedByVnetplan(br.externalIds);
    Attrs& a = o.attrs;
    a.set("ovs.datapathType", br.datapathType.empty() ? "system" : br.datapathType);
    a.set("ovs.failMode", br.failMode.value_or("standalone"));
    a.set("stp", br.stp);
    a.set("ovs.rstp", br.rstp);
    mapToAttrs(br.otherConfig, "ovs.otherConfig", a);
    mapToAttrs(userKeys(br.externalIds), "ovs.externalIds", a);
    for (const auto& puuid : br.ports) {
      const PortRow* port = snap.port(puuid);
      if (!port) continue;
      if (port->name == br.name) {  // the bridge's local port: its MTU is the switch's
        for (const auto& iu : port->interfaces)
          if (const InterfaceRow* iface = snap.interface(iu); iface && iface->mtuRequest) a.set("mtu", *iface->mtuRequest);
      } else if (isUplinkPort(*port)) {
        std::vector<std::string> nics;
        for (const auto& iu : port->interfaces) nics.push_back(snap.nameOf("Interface", iu));
        std::sort(nics.begin(), nics.end());
        a.set("uplinks.nics", Json(nics));
        if (nics.size() > 1) bondAttrs(*port, a);
        if (port->qos) niocAttrs(snap, *port->qos, a);
      }
    }
    if (const NetFlowRow* nf = br.netflow ? snap.netflow(*br.netflow) : nullptr) {
      std::vector<std::string> targets = nf->targets;
      std::sort(targets.begin(), targets.end());
      a.set("ovs.netflow.targets", Json(targets));
      if (nf->activeTimeout != 0) a.set("ovs.netflow.activeTimeout", nf->activeTimeout);
    }
    if (const SflowRow* sf = br.sflow ? snap.sflow(*br.sflow) : nullptr) {
      std::vector<std::string> targets = sf->targets;
      std::sort(targets.begin(), targets.end());
      a.set("ovs.sflow.targets", Json(targets));
      if (sf->sampling) a.set("ovs.sflow.sampling", *sf->sampling);
      if (sf->polling) a.set("ovs.sflow.polling", *sf->polling);
    }
    obs.objects[o.addr] = std::move(o);
  }
}

// ---- rows

Json netflowRow(const Attrs& a, const Json& ids) {
  std::vector<Json> targets;
  for (const auto& t : a.getStrings("ovs.netflow.targets")) targets.emplace_back(t);
  return Json{{"targets", setOf(targets)},
              {"active_timeout", a.getInt("ovs.netflow.activeTimeout").value_or(0)},
              {"external_ids", ids}};
}

Json sflowRow(const Attrs& a, const Json& ids) {
  std::vector<Json> targets;
  for (const auto& t : a.getStrings("ovs.sflow.targets")) targets.emplace_back(t);
  Json row{{"targets", setOf(targets)}, {"external_ids", ids}};
  row["sampling"] = a.has("ovs.sflow.sampling") ? Json(*a.getInt("ovs.sflow.sampling")) : setOf({});
  row["polling"] = a.has("ovs.sflow.polling") ? Json(*a.getInt("ovs.sflow.polling")) : setOf({});
  return row;
}

Json bridgeColumns(const Attrs& a, const Json& ids) {
  std::string dp = a.getString("ovs.datapathType").value_or("system");
  std::string fail = a.getString("ovs.failMode").value_or("standalone");
  return Json{{"datapath_type", dp == "system" ? "" : dp},
              {"fail_mode", fail == "standalone" ? setOf({}) : Json(fail)},
              {"stp_enable", a.getBool("stp").value_or(false)},
              {"rstp_enable", a.getBool("ovs.rstp").value_or(false)},
              {"other_config", mapOf(attrsToMap(a, "ovs.otherConfig"))},
              {"external_ids", ids}};
}

// Inserts the uplink Port (and its Interfaces) for `a`; returns the port reference, or nullopt if none.
std::optional<Json> insertUplink(TxnContext& ctx, const Address& addr, const Attrs& a) {
  auto nics = a.getStrings("uplinks.nics");
  if (nics.empty()) return std::nullopt;
  std::vector<Json> ifaces;
  for (const auto& nic : nics) {
    ctx.guardAbsent("Interface", nic, "interface " + nic);
    ifaces.push_back(ctx.txn().insert("Interface", Json{{"name", nic}, {"type", "system"}, {"external_ids", ctx.ownedIds(addr)}},
                                      "create uplink interface " + nic));
  }
  const std::string pname = uplinkPortName(addr.name, nics);
  std::map<std::string, std::string> extra{{kRoleKey, "uplink"}};
  Json row{{"name", pname}, {"interfaces", setOf(ifaces)}};
  if (nics.size() > 1) {
    BondColumns b = bondColumns(a);
    extra.insert(b.ids.begin(), b.ids.end());
    row["bond_mode"] = b.bondMode;
    row["lacp"] = b.lacp;
    row["other_config"] = mapOf(b.otherConfig);
    row["bond_updelay"] = b.updelay;
    row["bond_downdelay"] = b.downdelay;
  }
  row["external_ids"] = ctx.ownedIds(addr, extra);
  if (a.getBool("nioc.enabled") == true) row["qos"] = insertNioc(ctx, addr, a);
  ctx.guardAbsent("Port", pname, "port " + pname);
  Json ref = ctx.txn().insert("Port", row, "create uplink port " + pname);
  ctx.addedPort(pname, ref);
  return ref;
}

// The bridge's uplink port uuid, if it has one.
std::optional<std::string> uplinkOf(const Snapshot& snap, const std::string& bridgeUuid) {
  const BridgeRow* br = snap.bridge(bridgeUuid);
  if (!br) return std::nullopt;
  for (const auto& u : br->ports)
    if (const PortRow* port = snap.port(u); port && isUplinkPort(*port)) return u;
  return std::nullopt;
}

Status createSwitch(TxnContext& ctx, const Step& step) {
  const std::string& name = step.addr.name;
  const Attrs& a = step.after;
  Json ids = ctx.ownedIds(step.addr, attrsToMap(a, "ovs.externalIds"));
  ctx.guardAbsent("Bridge", name, "bridge " + name);
  ctx.guardAbsent("Port", name, "port " + name);
  ctx.guardAbsent("Interface", name, "interface " + name);
  Json iface{{"name", name}, {"type", "internal"}, {"external_ids", ctx.ownedIds(step.addr)}};
  if (auto mtu = a.getInt("mtu")) iface["mtu_request"] = *mtu;
  Json ifaceRef = ctx.txn().insert("Interface", iface, "create interface " + name + " (the bridge's local port)");
  Json portRef = ctx.txn().insert("Port", Json{{"name", name}, {"interfaces", setOf({ifaceRef})}, {"external_ids", ctx.ownedIds(step.addr)}},
                                  "create port " + name + " (the bridge's local port)");
  std::vector<Json> ports{portRef};
  ctx.addedPort(name, portRef);
  if (auto up = insertUplink(ctx, step.addr, a)) ports.push_back(*up);
  Json row = bridgeColumns(a, ids);
  row["name"] = name;
  row["ports"] = setOf(ports);
  if (a.has("ovs.netflow.targets")) row["netflow"] = ctx.txn().insert("NetFlow", netflowRow(a, ctx.ownedIds(step.addr)), "create NetFlow of " + name);
  if (a.has("ovs.sflow.targets")) row["sflow"] = ctx.txn().insert("sFlow", sflowRow(a, ctx.ownedIds(step.addr)), "create sFlow of " + name);
  Json ref = ctx.txn().insert("Bridge", row, "create bridge " + name);
  ctx.addedBridge(name, ref);
  ctx.txn().mutate("Open_vSwitch", ctx.snap().rootUuid(), Json::array({Json::array({"bridges", "insert", setOf({ref})})}),
                   "add bridge " + name + " to the switch");
  return {};
}

Status updateSwitch(TxnContext& ctx, const Step& step) {
  const std::string& name = step.addr.name;
  const Attrs& a = step.after;
  auto buuid = ctx.snap().bridgeUuid(name);
  if (!buuid) return err("bridge " + name + " no longer exists");
  ctx.guard("Bridge", *buuid, "bridge " + name);
  // external_ids also hold the port groups' definitions, which PortGroup steps of this transaction may change:
  // only the bridge's own keys are replaced, by a mutation, never the whole column.
  std::vector<Json> oldKeys;
  for (const auto& [k, v] : ctx.snap().bridge(*buuid)->externalIds)
    if (k.rfind(kGroupPrefix, 0) != 0) oldKeys.emplace_back(k);
  Json row = bridgeColumns(a, Json());
  row.erase("external_ids");
  ctx.txn().mutate("Bridge", *buuid,
                   Json::array({Json::array({"external_ids", "delete", setOf(oldKeys)}),
                                Json::array({"external_ids", "insert", ctx.ownedIds(step.addr, attrsToMap(a, "ovs.externalIds"))})}),
                   "set the external_ids of bridge " + name);
  if (changed(step, "ovs.netflow")) {
    row["netflow"] = a.has("ovs.netflow.targets") ? ctx.txn().insert("NetFlow", netflowRow(a, ctx.ownedIds(step.addr)), "create NetFlow of " + name)
                                                  : setOf({});
  }
  if (changed(step, "ovs.sflow")) {
    row["sflow"] = a.has("ovs.sflow.targets") ? ctx.txn().insert("sFlow", sflowRow(a, ctx.ownedIds(step.addr)), "create sFlow of " + name)
                                              : setOf({});
  }
  ctx.txn().update("Bridge", *buuid, row, "update bridge " + name);
  if (changed(step, "mtu")) {
    auto iu = ctx.snap().interfaceUuid(name);
    if (!iu) return err("bridge " + name + " has no local interface to set the MTU on");
    ctx.guard("Interface", *iu, "interface " + name);
    Json mtu = a.has("mtu") ? Json(*a.getInt("mtu")) : setOf({});
    ctx.txn().update("Interface", *iu, Json{{"mtu_request", mtu}}, "set mtu_request of " + name);
  }
  auto oldUplink = uplinkOf(ctx.snap(), *buuid);
  const bool rebuild = changed(step, "uplinks") || changed(step, "ovs.bond");
  if ((rebuild || changed(step, "nioc") || changed(step, "ovs.niocRates") || changed(step, "ovs.uplinkQos")) && oldUplink)
    if (auto q = ctx.snap().port(*oldUplink)->qos) deleteNioc(ctx, *oldUplink, *q);
  if (!rebuild && oldUplink && (changed(step, "nioc") || changed(step, "ovs.niocRates") || changed(step, "ovs.uplinkQos"))) {
    // Only the NIOC changed: new QoS rows on the same uplink port (the bond does not flap).
    ctx.guard("Port", *oldUplink, "uplink port " + ctx.snap().nameOf("Port", *oldUplink));
    Json qos = a.getBool("nioc.enabled") == true ? insertNioc(ctx, step.addr, a) : setOf({});
    ctx.txn().update("Port", *oldUplink, Json{{"qos", qos}}, "set the NIOC QoS of " + name);
  }
  if (rebuild) {
    // The uplink Port is rebuilt: its interfaces and bond settings change together.
    if (auto old = oldUplink) {
      ctx.guard("Port", *old, "uplink port " + ctx.snap().nameOf("Port", *old));
      ctx.txn().mutate("Bridge", *buuid, Json::array({Json::array({"ports", "delete", setOf({uuidRef(*old)})})}),
                       "remove the old uplink port of " + name);
      ctx.removedPort(ctx.snap().nameOf("Port", *old));
    }
    if (auto up = insertUplink(ctx, step.addr, a))
      ctx.txn().mutate("Bridge", *buuid, Json::array({Json::array({"ports", "insert", setOf({*up})})}),
                       "add the uplink port of " + name);
  }
  return {};
}

Status deleteSwitch(TxnContext& ctx, const Step& step) {
  const std::string& name = step.addr.name;
  auto buuid = ctx.snap().bridgeUuid(name);
  if (!buuid) return {};  // already gone
  ctx.guard("Bridge", *buuid, "bridge " + name);
  ctx.removedBridge(name);
  // QoS and Queue are root tables: nothing removes them with the bridge.
  if (auto up = uplinkOf(ctx.snap(), *buuid))
    if (auto q = ctx.snap().port(*up)->qos) deleteNioc(ctx, *up, *q);
  // Ports, interfaces, mirrors and NetFlow/sFlow rows are not root rows: they go with the bridge.
  ctx.txn().mutate("Open_vSwitch", ctx.snap().rootUuid(),
                   Json::array({Json::array({"bridges", "delete", setOf({uuidRef(*buuid)})})}), "delete bridge " + name);
  return {};
}

Status planSwitch(TxnContext& ctx, const Step& step) {
  switch (step.action) {
    case StepAction::Create: return createSwitch(ctx, step);
    case StepAction::Update: return updateSwitch(ctx, step);
    case StepAction::Delete: return deleteSwitch(ctx, step);
  }
  return {};
}

}  // namespace

const KindOps kSwitchOps{Kind::Switch, observeSwitches, planSwitch};

}  // namespace vnetplan::ovs
