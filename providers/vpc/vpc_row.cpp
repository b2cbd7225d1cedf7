// Vpc = a Neutron router: internetGateway = its external gateway, natGateway = SNAT on that gateway. A peering
// {vpc: B, cidr: C} declared on Vpc A is a transit network + subnet C (tagged as A's, with vnetplan:peer=B) on
// which A's router takes the first address and B's router the second.
#include <spdlog/spdlog.h>

#include "providers/vpc/kind.h"

namespace vnetplan::vpc {

namespace {

Json peeringOf(const Snapshot& snap, const std::string& vpc, const std::string& routerId) {
  Json list = Json::array();
  for (const auto& t : snap.transits) {
    if (t.vpc != vpc) continue;
    Json e = {{"vpc", t.peer}};
    bool complete = false;
    if (t.subnet) {
      const std::string cidr = canonicalPrefix(jsonString(*t.subnet, "cidr"));
      e["cidr"] = cidr;
      auto peer = snap.routerOfVpc.find(t.peer);
      const std::string sid = jsonString(*t.subnet, "id");
      complete = snap.hasInterface(routerId, sid, nthAddress(cidr, 1)) && peer != snap.routerOfVpc.end() &&
                 snap.hasInterface(jsonString(*peer->second, "id"), sid, nthAddress(cidr, 2));
    }
    // A half-made peering (an interrupted apply, a router interface removed by hand) differs from any declared
    // one, so the plan rebuilds it.
    if (!complete) e["incomplete"] = true;
    list.push_back(e);
  }
  std::sort(list.begin(), list.end());
  return list;
}

void observeVpcs(const Snapshot& snap, Observation& obs) {
  for (const auto& [name, router] : snap.routerOfVpc) {
    ObservedObject o;
    o.addr = Address{snap.target, Kind::Vpc, name};
    o.taggedByVnetplan = true;
    o.identity = ProviderIdentity{jsonString(*router, "id"), revisionOf(*router)};
    const Json& gw = router->contains("external_gateway_info") ? (*router)["external_gateway_info"] : Json(nullptr);
    const std::string net = jsonString(gw, "network_id");
    if (!net.empty()) {
      o.attrs.set("internetGateway.externalNetwork", snap.externalName(net));
      o.attrs.set("natGateway", gw.contains("enable_snat") && gw["enable_snat"].is_boolean() ? gw["enable_snat"].get<bool>() : true);
    } else {
      o.attrs.set("natGateway", false);
    }
    Json peering = peeringOf(snap, name, o.identity.id);
    if (!peering.empty()) o.attrs.set("peering", peering);
    obs.objects[o.addr] = std::move(o);
  }
}

Result<Json> gatewayInfo(ApplyCtx& ctx, const Attrs& a) {
  auto ext = a.getString("internetGateway.externalNetwork");
  if (!ext) return Json::object();  // no gateway
  auto id = ctx.externalNetwork(*ext);
  if (!id) return id.error();
  return Json{{"network_id", *id}, {"enable_snat", a.getBool("natGateway").value_or(false)}};
}

// Removes a transit network: the router interfaces on it (each router's own), any port left on it, the network.
Status teardownTransit(ApplyCtx& ctx, const std::string& networkId, const std::string& what) {
  auto ports = ctx.api().list("ports", "network_id=" + urlEncode(networkId));
  if (!ports) return ports.error();
  for (const auto& p : *ports) {
    const std::string owner = jsonString(p, "device_owner"), device = jsonString(p, "device_id");
    if (owner == "network:router_interface" && !device.empty()) {
      auto r = ctx.routerAction(device, "remove_router_interface", {{"port_id", jsonString(p, "id")}},
                                {"404", "RouterInterfaceNotFound", "RouterNotFound"});
      if (!r) return err("peering " + what + ": " + r.error().message);
    } else if (tagValue(p, kOwnerTag) == ctx.target()) {
      if (Status s = ctx.remove("ports", jsonString(p, "id"), "transit port"); !s) return s;
    }
  }
  return ctx.remove("networks", networkId, "peering transit network of " + what);
}

Status setupPeering(ApplyCtx& ctx, const Address& vpc, const std::string& routerId, const Json& entry) {
  const std::string peer = entry.value("vpc", ""), cidr = entry.value("cidr", "");
  const std::string what = vpc.name + " <-> " + peer;
  auto peerRouter = ctx.routerId(peer);
  if (!peerRouter) return err("peering " + what + ": Vpc " + peer + " has no router");
  auto prefix = parsePrefix(cidr);
  if (!prefix) return err("peering " + what + ": bad cidr " + cidr);
  const std::vector<std::string> tags = ctx.tags(vpc, {std::string(kPeerTag) + peer});
  Json nb = ctx.body(vpc, "vnetplan-peering " + what);
  auto net = ctx.createTagged("networks", "network", nb, tags);
  if (!net) return err("peering " + what + ": " + net.error().message);
  const std::string netId = jsonString(*net, "id");
  Json sb = ctx.body(vpc, "vnetplan-peering " + what);
  sb["network_id"] = netId;
  sb["cidr"] = cidr;
  sb["ip_version"] = prefix->family == AF_INET6 ? 6 : 4;
  sb["gateway_ip"] = nthAddress(cidr, 1);
  sb["enable_dhcp"] = false;
  auto sub = ctx.createTagged("subnets", "subnet", sb, tags);
  if (!sub) return err("peering " + what + ": " + sub.error().message);
  const std::string subId = jsonString(*sub, "id");
  if (auto r = ctx.routerAction(routerId, "add_router_interface", {{"subnet_id", subId}}); !r)
    return err("peering " + what + ": " + r.error().message);
  // The peer's end: a port on the second address (ports take tags when they are created).
  Json pb = ctx.body(vpc, "vnetplan-peering " + what);
  pb["network_id"] = netId;
  pb["fixed_ips"] = Json::array({{{"subnet_id", subId}, {"ip_address", nthAddress(cidr, 2)}}});
  pb["tags"] = tags;
  Json req = {{"port", pb}};
  auto port = ctx.api().expect("POST", "/ports", &req, Retry::OnlyIfNotSent);
  if (!port) return err("peering " + what + ": " + port.error().message);
  const std::string portId = port->is_object() && port->contains("port") ? jsonString((*port)["port"], "id") : "";
  if (portId.empty()) return err("peering " + what + ": POST /ports returned no port id");
  if (auto r = ctx.routerAction(*peerRouter, "add_router_interface", {{"port_id", portId}}); !r)
    return err("peering " + what + ": " + r.error().message);
  return {};
}

Status createVpc(ApplyCtx& ctx, const Step& s) {
  Json b = ctx.body(s.addr);
  auto gw = gatewayInfo(ctx, s.after);
  if (!gw) return gw.error();
  if (!gw->empty()) b["external_gateway_info"] = *gw;
  auto router = ctx.createTagged("routers", "router", b, ctx.tags(s.addr));
  if (!router) return router.error();
  const std::string id = jsonString(*router, "id");
  ctx.setRouter(s.addr.name, id);
  if (const Json* p = s.after.find("peering"); p && p->is_array())
    for (const auto& e : *p)
      if (Status st = setupPeering(ctx, s.addr, id, e); !st) return st;
  return {};
}

bool changedUnder(const Step& s, const std::string& path) {
  for (const auto& c : s.changed)
    if (c == path || c.rfind(path + ".", 0) == 0) return true;
  return false;
}

Status updateVpc(ApplyCtx& ctx, const Step& s) {
  auto rid = ctx.routerId(s.addr.name);
  if (!rid) return err("Vpc " + s.addr.name + " has no router");
  // Neutron does not hold a router's gateway update to If-Match (it applies it even when the check fails), so
  // the router is guarded by a revision-checked write of its own description first.
  if (Status g = ctx.guard("routers", "router", *rid, s.identity.revision, "router of Vpc " + s.addr.name); !g) return g;
  if (changedUnder(s, "internetGateway") || changedUnder(s, "natGateway")) {
    auto gw = gatewayInfo(ctx, s.after);
    if (!gw) return gw.error();
    Json req = {{"router", {{"external_gateway_info", *gw}}}};
    auto r = ctx.api().expect("PUT", "/routers/" + *rid, &req, Retry::OnlyIfNotSent);
    if (!r) return r.error();
    ctx.wrote(*rid, r->is_object() && r->contains("router") ? revisionOf((*r)["router"]) : "");
  }
  if (changedUnder(s, "peering")) {
    const Json* before = s.before.find("peering");
    const Json* after = s.after.find("peering");
    auto has = [](const Json* list, const Json& e) {
      return list && list->is_array() && std::find(list->begin(), list->end(), e) != list->end();
    };
    if (before && before->is_array())
      for (const auto& e : *before) {
        if (has(after, e)) continue;
        for (const auto& t : ctx.snap().transits)
          if (t.vpc == s.addr.name && t.peer == e.value("vpc", "") &&
              (!t.subnet || canonicalPrefix(jsonString(*t.subnet, "cidr")) == e.value("cidr", "")))
            if (Status st = teardownTransit(ctx, jsonString(*t.network, "id"), s.addr.name + " <-> " + t.peer); !st)
              return st;
      }
    if (after && after->is_array())
      for (const auto& e : *after)
        if (!has(before, e))
          if (Status st = setupPeering(ctx, s.addr, *rid, e); !st) return st;
  }
  return {};
}

// Neutron's order: extra routes, interfaces, (the gateway goes with the router), the router.
Status removeVpc(ApplyCtx& ctx, const Step& s) {
  std::string rid = s.identity.id;
  if (rid.empty()) rid = ctx.routerId(s.addr.name).value_or("");
  if (rid.empty()) return {};
  auto cur = ctx.api().call("GET", "/routers/" + rid, nullptr, Retry::Idempotent);
  if (!cur) return cur.error();
  if (cur->status == 404) {
    ctx.setRouter(s.addr.name, std::nullopt);
    return {};
  }
  if (!cur->ok()) return err("neutron " + Neutron::failure("GET", "/routers/" + rid, *cur));
  const Json router = cur->json.value("router", Json::object());
  if (router.contains("routes") && router["routes"].is_array() && !router["routes"].empty())
    if (auto r = ctx.routerAction(rid, "remove_extraroutes", {{"router", {{"routes", router["routes"]}}}}); !r)
      return r.error();
  for (const auto& t : ctx.snap().transits)
    if (t.vpc == s.addr.name)
      if (Status st = teardownTransit(ctx, jsonString(*t.network, "id"), s.addr.name + " <-> " + t.peer); !st) return st;
  auto ports = ctx.api().list("ports", "device_id=" + urlEncode(rid) + "&device_owner=network%3Arouter_interface");
  if (!ports) return ports.error();
  for (const auto& p : *ports)
    if (auto r = ctx.routerAction(rid, "remove_router_interface", {{"port_id", jsonString(p, "id")}},
                                  {"404", "RouterInterfaceNotFound"});
        !r)
      return r.error();
  if (Status st = ctx.remove("routers", rid, "router of Vpc " + s.addr.name); !st) return st;
  ctx.setRouter(s.addr.name, std::nullopt);
  return {};
}

void describeVpc(const Step& s, const Target&, std::vector<std::string>& parts) {
  const Attrs& a = s.action == StepAction::Delete ? s.before : s.after;
  if (auto ext = a.getString("internetGateway.externalNetwork"))
    parts.push_back("internet gateway on " + *ext + (a.getBool("natGateway").value_or(false) ? ", NAT gateway (SNAT)" : ""));
  if (const Json* p = a.find("peering"); p && p->is_array())
    for (const auto& e : *p)
      parts.push_back("peering with " + e.value("vpc", "?") + " over " + e.value("cidr", "?"));
  if (s.action == StepAction::Delete) parts.push_back("its extra routes and router interfaces first");
}

void checkVpc(const Resource& r, const Target&, Diagnostics& diags) {
  if (r.attrs.getBool("natGateway").value_or(false) && !r.attrs.has("internetGateway.externalNetwork"))
    fail(r, diags, r.addr.str() + ": natGateway needs internetGateway (SNAT happens on the router's external gateway)");
  if (const Json* p = r.attrs.find("peering"); p && p->is_array())
    for (const auto& e : *p) {
      const std::string cidr = e.value("cidr", "");
      auto prefix = parsePrefix(cidr);
      if (!prefix) continue;  // the schema reported it
      const int hostBits = (prefix->family == AF_INET6 ? 128 : 32) - prefix->prefixLen;
      if (hostBits < 2)
        fail(r, diags, r.addr.str() + ": peering with " + e.value("vpc", "?") + ": cidr " + cidr +
                           " is too small: it needs two router addresses (at most /30 for IPv4, /126 for IPv6)");
      if (prefix->network().str() != prefix->str())
        fail(r, diags, r.addr.str() + ": peering cidr " + cidr + " has host bits set; write " + prefix->network().str());
      if (e.value("vpc", "") == r.addr.name) fail(r, diags, r.addr.str() + ": a Vpc cannot peer with itself");
    }
}

void normalizeVpc(Resource& r) {
  if (const Json* p = r.attrs.find("peering"); p && p->is_array()) {
    Json list = Json::array();
    for (const auto& e : *p) {
      if (!e.is_object()) continue;
      Json c = {{"vpc", e.value("vpc", "")}};
      auto prefix = parsePrefix(e.value("cidr", ""));
      c["cidr"] = prefix ? prefix->str() : e.value("cidr", "");
      list.push_back(c);
    }
    std::sort(list.begin(), list.end());
    if (list.empty()) r.attrs.erase("peering");
    else r.attrs.set("peering", list);
  }
}

KindTraits vpcTraits() {
  KindTraits t;
  t.kind = Kind::Vpc;
  t.disruptiveOn = {"internetGateway.", "natGateway", "peering"};
  t.unorderedLists = {"peering"};
  t.defaults = {{"natGateway", false}};
  t.exhaustive = true;
  t.verify = VerifyPolicy{3, std::chrono::milliseconds(100)};
  return t;
}

const KindTraits kVpcTraits = vpcTraits();

}  // namespace

const Row kVpcRow = [] {
  Row r;
  r.kind = Kind::Vpc;
  r.label = "vpc (router)";
  r.traits = &kVpcTraits;
  r.fields = {{"internetGateway.externalNetwork", [](const FieldCheck& f) { f.requireString(); }},
              {"natGateway", [](const FieldCheck& f) { f.requireBool(); }},
              {"peering", nullptr}};
  r.check = checkVpc;
  r.normalize = normalizeVpc;
  r.describe = describeVpc;
  r.observe = observeVpcs;
  r.create = createVpc;
  r.update = updateVpc;
  r.remove = removeVpc;
  return r;
}();

}  // namespace vnetplan::vpc
