// Switch = OVS Bridge, with its local (internal) port of the same name, optional NetFlow/sFlow rows and the
// uplink Port (a bond when there are several NICs).
#include <algorithm>
#include <set>

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

void observeSwitches(const OvsLive& live, Observation& obs) {
  const Snapshot& snap = live.snap;
  const std::string& target = live.target;
  for (const auto& [buuid, br] : snap.bridges()) {
    ObservedObject o;
    o.addr = Address{target, Kind::Switch, br.name};
    o.taggedByVnetplan = ownedByVnetplan(br.externalIds);
    o.identity.id = buuid;  // the row's uuid
    Attrs& a = o.attrs;
    a.set("ovs.datapathType", br.datapathType.empty() ? "system" : br.datapathType);
    a.set("ovs.failMode", br.failMode.value_or("standalone"));
    a.set("stp", br.stp);
    a.set("ovs.rstp", br.rstp);
    mapToAttrs(br.otherConfig, "ovs.otherConfig", a);
    mapToAttrs(userKeys(br.externalIds), "ovs.externalIds", a);
    std::map<std::string, Json> uplinkMtus;  // NIC -> its mtu_request (null: none)
    for (const auto& puuid : br.ports) {
      const PortRow* port = snap.port(puuid);
      if (!port) continue;
      if (port->name == br.name) {  // the bridge's local port: its MTU is the switch's
        for (const auto& iu : port->interfaces)
          if (const InterfaceRow* iface = snap.interface(iu); iface && iface->mtuRequest) a.set("mtu", *iface->mtuRequest);
      } else if (isUplinkPort(*port)) {
        std::vector<std::string> nics;
        for (const auto& iu : port->interfaces) {
          nics.push_back(snap.nameOf("Interface", iu));
          if (const InterfaceRow* iface = snap.interface(iu))
            uplinkMtus[nics.back()] = iface->mtuRequest ? Json(*iface->mtuRequest) : Json();
        }
        std::sort(nics.begin(), nics.end());
        a.set("uplinks.nics", Json(nics));
        if (nics.size() > 1) bondAttrs(*port, a);
        if (port->qos) niocAttrs(snap, *port->qos, a);
      }
    }
    // The switch's MTU is its uplinks' too (jumbo frames must leave the host): an uplink NIC at another MTU is
    // drift, shown per NIC.
    const Json* mtu = a.find("mtu");
    for (const auto& [nic, m] : uplinkMtus)
      if (mtu ? m != *mtu : !m.is_null()) a.set("ovs.uplinkMtu." + nic, m.is_null() ? Json("unset") : m);
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
    Json iface{{"name", nic}, {"type", "system"}, {"external_ids", ctx.ownedIds(addr)}};
    if (auto mtu = a.getInt("mtu")) iface["mtu_request"] = *mtu;
    ifaces.push_back(ctx.txn().insert("Interface", iface, "create uplink interface " + nic));
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
  if (!rebuild && oldUplink && (changed(step, "mtu") || changed(step, "ovs.uplinkMtu")))
    for (const auto& iu : ctx.snap().interfacesOf(*oldUplink)) {
      const std::string nic = ctx.snap().nameOf("Interface", iu);
      ctx.guard("Interface", iu, "uplink interface " + nic);
      // A rollback's pre-image may hold a NIC at its own MTU (ovs.uplinkMtu.NIC): restored exactly.
      Json mtu = a.has("mtu") ? Json(*a.getInt("mtu")) : setOf({});
      if (const Json* own = a.find("ovs.uplinkMtu." + nic)) mtu = own->is_number_integer() ? *own : setOf({});
      ctx.txn().update("Interface", iu, Json{{"mtu_request", mtu}}, "set mtu_request of uplink " + nic);
    }
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

// ---- plan time

void checkTeaming(const FieldCheck& fc) {
  const Attrs& a = fc.resource.attrs;
  const std::string policy = a.getString("uplinks.teaming.policy").value_or("failover");
  const size_t nics = a.getStrings("uplinks.nics").size();
  const std::string field = fc.path.substr(std::string("uplinks.teaming.").size());
  if (nics < 2) return unsupported(fc, "a single uplink NIC is a plain port; teaming needs two or more NICs");
  if (field == "policy") {
    if (policy == "src-port" || policy == "load-based" || policy == "round-robin")
      unsupported(fc, "OVS bonds balance by source MAC (src-mac = balance-slb) or L3/L4 with LACP "
                      "(ip-hash/lacp = balance-tcp), or fail over (failover = active-backup); '" +
                          policy + "' has no OVS equivalent");
  } else if (field == "active") {
    if (policy != "failover") unsupported(fc, "an active NIC order applies to policy failover (active-backup) only");
    else if (a.getStrings(fc.path).size() > 1)
      unsupported(fc, "an OVS active-backup bond has one primary NIC; list one NIC in active, the rest in standby");
  } else if (field == "standby") {
    if (policy != "failover") return unsupported(fc, "standby NICs apply to policy failover (active-backup) only");
    std::set<std::string> rest;
    auto active = a.getStrings("uplinks.teaming.active");
    for (const auto& n : a.getStrings("uplinks.nics"))
      if (std::find(active.begin(), active.end(), n) == active.end()) rest.insert(n);
    auto standby = a.getStrings(fc.path);
    if (std::set<std::string>(standby.begin(), standby.end()) != rest)
      unsupported(fc, "in an OVS active-backup bond every NIC that is not the primary is a standby; standby must "
                      "list exactly the other NICs");
  } else if (field == "failureDetection") {
    if (a.getString(fc.path) != "link")
      unsupported(fc, "OVS bonds detect failure by link state (carrier or miimon: ovs.bond.miimonMs); beacon and ARP "
                      "probing have no OVS equivalent");
  } else if (field == "notifySwitches" || field == "failback") {
    if (a.getBool(fc.path) == false)
      unsupported(fc, field == "failback" ? "an OVS bond always returns to its primary NIC when it recovers"
                                          : "OVS always sends learning packets to the physical switches on failover");
  } else if (field == "lacp.mode" || field == "lacp.rate") {
    if (policy != "lacp" && policy != "ip-hash") unsupported(fc, "LACP settings apply to policy lacp or ip-hash");
  } else if (field == "hashPolicy") {
    if (a.getString(fc.path) != "layer3+4" || (policy != "lacp" && policy != "ip-hash"))
      unsupported(fc, "OVS balance-tcp hashes layer3+4 (with LACP); other hash policies have no OVS equivalent");
  } else {
    unsupported(fc, "not an ovs teaming field");
  }
}

void switchCheck(const Resource& r, const Target&, Diagnostics& diags) {
  const Attrs& a = r.attrs;
  auto fail = [&](const std::string& msg, const char* code = "provider/invalid") {
    diags.error(r.loc, "ovs: " + r.addr.str() + ": " + msg, code);
  };
  if (a.getBool("nioc.enabled") != false && !a.subtree("nioc.").empty()) {
    // NIOC divides the uplink: a linux-htb QoS on the uplink port.
    if (a.getStrings("uplinks.nics").empty())
      fail("nioc needs uplinks.nics (the QoS that divides the bandwidth sits on the uplink)");
    auto uplink = a.getInt("nioc.uplinkMbps");
    if (!uplink) fail("nioc needs uplinkMbps (the capacity that shares and reservations divide)");
    int64_t reserved = 0;
    const Attrs classAttrs = a.subtree("nioc.classes.");
    for (const auto& [path, v] : classAttrs.values()) {
      if (path.size() > 16 && path.compare(path.size() - 16, 16, ".reservationMbps") == 0 && v.is_number_integer())
        reserved += v.get<int64_t>();
      if (path.size() > 10 && path.compare(path.size() - 10, 10, ".limitMbps") == 0 && v.is_number_integer()) {
        std::string cls = path.substr(13, path.size() - 10 - 13);  // nioc.classes.CLS.limitMbps
        auto res = a.getInt("nioc.classes." + cls + ".reservationMbps");
        if (res && *res > v.get<int64_t>())
          fail("nioc class " + cls + ": reservationMbps " + std::to_string(*res) + " exceeds limitMbps " +
               std::to_string(v.get<int64_t>()));
      }
    }
    if (uplink && reserved > *uplink)
      fail("nioc reservations add up to " + std::to_string(reserved) + " Mbit/s, more than uplinkMbps " +
           std::to_string(*uplink));
  }
  if (!a.subtree("ovs.bond.").empty() && a.getStrings("uplinks.nics").size() < 2)
    fail("ovs.bond applies to a bond, which needs two or more uplinks.nics", "provider/unsupported");
  if (a.getBool("stp") == true && a.getBool("ovs.rstp") == true)
    fail("stp and ovs.rstp cannot both be enabled on one bridge");
}

void normalizeTeaming(Attrs& a) {
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

void switchNormalize(Resource& r) {
  if (!r.attrs.subtree("nioc.").empty()) {
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
      // Traffic no port classifies is virtual machines' (queue 0): that class always has a share.
      if (r.attrs.subtree("nioc.classes.virtualmachine.").empty()) {
        r.attrs.set("nioc.classes.virtualmachine.shares", 50);
        r.origins["nioc.classes.virtualmachine.shares"] = AttrOrigin{Origin::Default, ""};
      }
    }
  }
  if (r.attrs.getInt("ovs.netflow.activeTimeout") == 0) r.attrs.erase("ovs.netflow.activeTimeout");
  for (const char* p : {"ovs.bond.updelayMs", "ovs.bond.downdelayMs"})
    if (r.attrs.getInt(p) == 0) r.attrs.erase(p);
  normalizeTeaming(r.attrs);
}

void switchDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  const Attrs& a = step.after;
  if (auto dp = a.getString("ovs.datapathType")) parts.push_back("datapath " + *dp);
  auto nics = a.getStrings("uplinks.nics");
  if (!nics.empty()) {
    std::string list;
    for (const auto& n : nics) list += (list.empty() ? "" : "+") + n;
    parts.push_back("uplinks " + list);
  }
}

KindTraits switchTraits() {
  KindTraits t;
  t.kind = Kind::Switch;
  t.disruptiveOn = {"ovs.datapathType", "ovs.failMode", "stp", "ovs.rstp", "uplinks.", "ovs.bond.", "mtu"};
  t.unorderedLists = {"uplinks.nics", "ovs.netflow.targets", "ovs.sflow.targets"};
  t.defaults = {{"stp", false}, {"ovs.rstp", false}, {"ovs.datapathType", "system"}, {"ovs.failMode", "standalone"}};
  t.exhaustive = true;  // observe reports exactly the columns vnetplan manages
  return t;
}

const KindTraits kSwitchTraits = switchTraits();

}  // namespace

const KindOps kSwitchOps{.kind = Kind::Switch,
                         .variant = "",
                         .label = "bridge",
                         .traits = &kSwitchTraits,
                         .fields = {{"mtu"},
                                    {"stp"},
                                    {"ovs.datapathType"},
                                    {"ovs.failMode"},
                                    {"ovs.rstp"},
                                    {"ovs.netflow.targets"},
                                    {"ovs.netflow.activeTimeout"},
                                    {"ovs.sflow.targets"},
                                    {"ovs.sflow.sampling"},
                                    {"ovs.sflow.polling"},
                                    {"ovs.bond.miimonMs"},
                                    {"ovs.bond.updelayMs"},
                                    {"ovs.bond.downdelayMs"},
                                    {"uplinks.nics"},
                                    {"uplinks.teaming.", checkTeaming},
                                    {"ovs.otherConfig."},
                                    {"shaping."},
                                    {"nioc."}},
                         .check = switchCheck,
                         .normalize = switchNormalize,
                         .describe = switchDescribe,
                         .observe = observeSwitches,
                         .create = createSwitch,
                         .update = updateSwitch,
                         .remove = deleteSwitch};

}  // namespace vnetplan::ovs
