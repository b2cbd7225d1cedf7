// Subnet = a Neutron network of its own (on a VLAN provider segment when `vlan` is set) with one subnet; a public
// Subnet also has an interface of its Vpc's router (on the subnet's gateway address).
#include <algorithm>
#include <compare>

#include "providers/vpc/kind.h"

namespace vnetplan::vpc {

namespace {

void observeSubnets(const Snapshot& snap, Observation& obs) {
  for (const auto& [name, net] : snap.networkOfSubnet) {
    ObservedObject o;
    o.addr = Address{snap.target, Kind::Subnet, name};
    o.taggedByVnetplan = true;
    const std::string vpc = tagValue(*net, kVpcTag).value_or("");
    o.attrs.set("vpc", vpc);
    if (jsonString(*net, "provider:network_type") == "vlan" && net->contains("provider:segmentation_id") &&
        (*net)["provider:segmentation_id"].is_number_integer())
      o.attrs.set("vlan", (*net)["provider:segmentation_id"]);
    auto sub = snap.subnetOfSubnet.find(name);
    if (sub == snap.subnetOfSubnet.end()) {
      // A network without its subnet (an interrupted create): differs from every declared Subnet.
      o.identity = ProviderIdentity{jsonString(*net, "id"), revisionOf(*net)};
      obs.objects[o.addr] = std::move(o);
      continue;
    }
    const Json& s = *sub->second;
    o.identity = ProviderIdentity{jsonString(s, "id"), revisionOf(s)};
    o.attrs.set("cidr", canonicalPrefix(jsonString(s, "cidr")));
    if (std::string gw = jsonString(s, "gateway_ip"); !gw.empty()) o.attrs.set("gateway", canonicalAddress(gw));
    o.attrs.set("dhcp", s.contains("enable_dhcp") && s["enable_dhcp"].is_boolean() ? s["enable_dhcp"].get<bool>() : true);
    bool attached = false;
    if (auto r = snap.routerOfVpc.find(vpc); r != snap.routerOfVpc.end())
      attached = snap.hasInterface(jsonString(*r->second, "id"), jsonString(s, "id"));
    o.attrs.set("public", attached);
    obs.objects[o.addr] = std::move(o);
  }
}

// The address `a` plus `delta` (-1 or +1), as raw bytes.
IpPrefix step(IpPrefix a, int delta) {
  for (int i = static_cast<int>(a.addrLen()) - 1; i >= 0; --i) {
    int v = a.addr[i] + delta;
    a.addr[i] = static_cast<unsigned char>(v & 0xff);
    if (v >= 0 && v <= 0xff) break;
  }
  return a;
}

// Neutron's allocation pools for `cidr` with `gateway` taken out: every host address but the gateway (IPv4 also
// without the broadcast address). A gateway moved into the old pools is otherwise refused (409
// GatewayConflictWithAllocationPools).
Json allocationPools(const std::string& cidr, const std::string& gateway) {
  auto net = parsePrefix(cidr);
  if (!net) return Json::array();
  IpPrefix first = step(net->network(), +1), last = net->network();
  const size_t len = last.addrLen();
  for (size_t i = 0; i < len; ++i) {
    int bits = std::max(0, std::min(8, static_cast<int>(i * 8 + 8) - net->prefixLen));
    last.addr[i] |= static_cast<unsigned char>((1u << bits) - 1);
  }
  if (net->family == AF_INET) last = step(last, -1);
  first.prefixLen = last.prefixLen = static_cast<int>(len * 8);
  auto cmp = [&](const IpPrefix& a, const IpPrefix& b) {
    return std::lexicographical_compare_three_way(a.addr.begin(), a.addr.begin() + static_cast<long>(len), b.addr.begin(),
                                                  b.addr.begin() + static_cast<long>(len));
  };
  Json pools = Json::array();
  auto add = [&](const IpPrefix& a, const IpPrefix& b) {
    if (cmp(a, b) <= 0) pools.push_back({{"start", a.addressStr()}, {"end", b.addressStr()}});
  };
  auto gw = parseAddress(gateway);
  if (!gw || gw->family != net->family || cmp(*gw, first) < 0 || cmp(*gw, last) > 0) {
    add(first, last);
  } else {
    add(first, step(*gw, -1));
    add(step(*gw, +1), last);
  }
  return pools;
}

Result<std::string> routerOf(ApplyCtx& ctx, const std::string& vpc) {
  auto id = ctx.routerId(vpc);
  if (!id) return err("Vpc " + vpc + " has no router");
  return *id;
}

Status attach(ApplyCtx& ctx, const std::string& vpc, const std::string& subnetId) {
  auto rid = routerOf(ctx, vpc);
  if (!rid) return rid.error();
  auto r = ctx.routerAction(*rid, "add_router_interface", {{"subnet_id", subnetId}});
  return r ? Status{} : Status(r.error());
}

Status detach(ApplyCtx& ctx, const std::string& vpc, const std::string& subnetId, const std::string& cidr) {
  auto rid = routerOf(ctx, vpc);
  if (!rid) return {};  // no router, no interface
  const std::set<std::string> gone = {"404", "RouterInterfaceNotFoundForSubnet", "RouterInterfaceNotFound", "RouterNotFound"};
  auto r = ctx.routerAction(*rid, "remove_router_interface", {{"subnet_id", subnetId}}, gone);
  if (r || r.error().message.find("RouterInterfaceInUseByRoute") == std::string::npos) return r ? Status{} : Status(r.error());
  if (!ctx.vpcBeingDeleted(vpc))
    return err(r.error().message + " (an extra route of Vpc " + vpc +
               "'s router goes through this subnet, a Route or one made by hand: remove it first)");
  // The router goes too: the extra routes through this subnet (made by hand, or the router's would have been
  // deleted before) go first.
  auto cur = ctx.api().expect("GET", "/routers/" + *rid + "?fields=routes", nullptr, Retry::Idempotent);
  if (!cur) return cur.error();
  auto net = parsePrefix(cidr);
  Json through = Json::array();
  if (cur->is_object() && cur->contains("router") && (*cur)["router"].contains("routes") && net)
    for (const auto& route : (*cur)["router"]["routes"])
      if (auto hop = parseAddress(jsonString(route, "nexthop")); hop && net->contains(*hop)) through.push_back(route);
  if (!through.empty())
    if (auto rm = ctx.routerAction(*rid, "remove_extraroutes", {{"router", {{"routes", through}}}}); !rm) return rm.error();
  r = ctx.routerAction(*rid, "remove_router_interface", {{"subnet_id", subnetId}}, gone);
  return r ? Status{} : Status(r.error());
}

Status createSubnet(ApplyCtx& ctx, const Step& s) {
  const Attrs& a = s.after;
  const std::string vpc = a.getString("vpc").value_or("");
  const std::string cidr = a.getString("cidr").value_or("");
  auto prefix = parsePrefix(cidr);
  if (!prefix) return err("bad cidr " + cidr);
  const std::vector<std::string> tags = ctx.tags(s.addr, {std::string(kVpcTag) + vpc});
  Json nb = ctx.body(s.addr);
  if (auto vlan = a.getInt("vlan")) {
    nb["provider:network_type"] = "vlan";
    nb["provider:physical_network"] = ctx.physicalNetwork();
    nb["provider:segmentation_id"] = *vlan;
  }
  auto net = ctx.createTagged("networks", "network", nb, tags);
  if (!net) return net.error();
  const std::string netId = jsonString(*net, "id");
  ctx.setSubnet(s.addr.name, ApplyCtx::NetIds{netId, ""});
  Json sb = ctx.body(s.addr);
  sb["network_id"] = netId;
  sb["cidr"] = cidr;
  sb["ip_version"] = prefix->family == AF_INET6 ? 6 : 4;
  if (auto gw = a.getString("gateway")) sb["gateway_ip"] = *gw;
  sb["enable_dhcp"] = a.getBool("dhcp").value_or(true);
  auto sub = ctx.createTagged("subnets", "subnet", sb, tags);
  if (!sub) return sub.error();
  const std::string subId = jsonString(*sub, "id");
  ctx.setSubnet(s.addr.name, ApplyCtx::NetIds{netId, subId});
  if (a.getBool("public").value_or(false)) return attach(ctx, vpc, subId);
  return {};
}

bool changed(const Step& s, const char* path) {
  return std::find(s.changed.begin(), s.changed.end(), path) != s.changed.end();
}

Status updateSubnet(ApplyCtx& ctx, const Step& s) {
  auto ids = ctx.subnetIds(s.addr.name);
  if (!ids || ids->subnet.empty()) return err("Subnet " + s.addr.name + " has no Neutron subnet to update");
  const std::string vpc = s.after.getString("vpc").value_or("");
  const bool wasPublic = s.before.getBool("public").value_or(false);
  const bool isPublic = s.after.getBool("public").value_or(false);
  const bool gatewayChanges = changed(s, "gateway");
  bool attached = wasPublic;
  if (changed(s, "dhcp") || gatewayChanges) {
    // The router's interface holds the gateway address: it lets go of the old one first.
    if (gatewayChanges && attached) {
      if (Status st = detach(ctx, vpc, ids->subnet, s.before.getString("cidr").value_or("")); !st) return st;
      attached = false;
    }
    Json attrs = Json::object();
    if (changed(s, "dhcp")) attrs["enable_dhcp"] = s.after.getBool("dhcp").value_or(true);
    if (gatewayChanges) {
      const std::string gw = s.after.getString("gateway").value_or("");
      attrs["gateway_ip"] = gw.empty() ? Json(nullptr) : Json(gw);
      attrs["allocation_pools"] = allocationPools(s.after.getString("cidr").value_or(""), gw);
    }
    auto r = ctx.guardedUpdate("subnets", "subnet", ids->subnet, s.identity.revision, attrs, "subnet of " + s.addr.name);
    if (!r) return r.error();
  }
  if (isPublic && !attached) return attach(ctx, vpc, ids->subnet);
  if (!isPublic && attached) return detach(ctx, vpc, ids->subnet, s.before.getString("cidr").value_or(""));
  return {};
}

Status removeSubnet(ApplyCtx& ctx, const Step& s) {
  auto ids = ctx.subnetIds(s.addr.name);
  if (!ids) return {};
  if (!ids->subnet.empty()) {
    const std::string vpc = s.before.getString("vpc").value_or("");
    if (auto rid = ctx.routerId(vpc); rid && ctx.snap().hasInterface(*rid, ids->subnet))
      if (Status st = detach(ctx, vpc, ids->subnet, s.before.getString("cidr").value_or("")); !st) return st;
  }
  // The network takes its subnet with it.
  if (Status st = ctx.remove("networks", ids->network, "network of Subnet " + s.addr.name); !st) return st;
  ctx.setSubnet(s.addr.name, std::nullopt);
  return {};
}

void describeSubnet(const Step& s, const Target&, std::vector<std::string>& parts) {
  const Attrs& a = s.action == StepAction::Delete ? s.before : s.after;
  if (auto c = a.getString("cidr")) parts.push_back(*c);
  if (auto v = a.getString("vpc")) parts.push_back("in vpc " + *v);
  if (auto vlan = a.getInt("vlan")) parts.push_back("vlan " + std::to_string(*vlan));
  if (a.getBool("public").value_or(false)) parts.push_back(s.action == StepAction::Delete ? "detached from the router first" : "public: router interface");
  if (a.getBool("dhcp") == false) parts.push_back("no DHCP");
}

void checkSubnet(const Resource& r, const Target& t, Diagnostics& diags) {
  auto cidr = parsePrefix(r.attrs.getString("cidr").value_or(""));
  if (cidr && cidr->network().str() != cidr->str())
    fail(r, diags, r.addr.str() + ": cidr " + cidr->str() + " has host bits set; write " + cidr->network().str());
  if (cidr) {
    const int hostBits = (cidr->family == AF_INET6 ? 128 : 32) - cidr->prefixLen;
    if (hostBits < 2) fail(r, diags, r.addr.str() + ": cidr " + cidr->str() + " leaves no room for hosts");
  }
  if (auto gw = r.attrs.getString("gateway"); gw && cidr) {
    auto g = parseAddress(*gw);
    if (g && (g->family != cidr->family || !cidr->contains(*g)))
      fail(r, diags, r.addr.str() + ": gateway " + *gw + " is not inside cidr " + cidr->str());
    else if (g && g->addressStr() == cidr->network().addressStr())
      fail(r, diags, r.addr.str() + ": gateway " + *gw + " is the network address of " + cidr->str());
  }
  if (r.attrs.has("vlan") && !t.spec.getString("physicalNetwork"))
    fail(r, diags, r.addr.str() + ": field vlan needs the Target's physicalNetwork (the provider physical network "
                                  "VLAN segments are on, e.g. physnet1)");
}

void normalizeSubnet(Resource& r) {
  auto cidr = parsePrefix(r.attrs.getString("cidr").value_or(""));
  if (!cidr) return;
  if (auto gw = r.attrs.getString("gateway")) {
    if (auto g = parseAddress(*gw)) r.attrs.set("gateway", g->addressStr());
  } else {
    // Neutron's default, made explicit so that a second plan compares it.
    r.attrs.set("gateway", nthAddress(cidr->str(), 1));
    r.origins["gateway"] = AttrOrigin{Origin::Default, ""};
  }
}

KindTraits subnetTraits() {
  KindTraits t;
  t.kind = Kind::Subnet;
  t.replaceOn = {"cidr", "vlan", "vpc"};
  t.disruptiveOn = {"public", "gateway"};
  t.defaults = {{"dhcp", true}, {"public", false}};
  t.exhaustive = true;
  t.verify = VerifyPolicy{3, std::chrono::milliseconds(100)};
  return t;
}

const KindTraits kSubnetTraits = subnetTraits();

}  // namespace

const Row kSubnetRow = [] {
  Row r;
  r.kind = Kind::Subnet;
  r.label = "subnet";
  r.traits = &kSubnetTraits;
  r.fields = {{"vpc", nullptr},
              {"cidr", nullptr},
              {"gateway", nullptr},
              {"dhcp", [](const FieldCheck& f) { f.requireBool(); }},
              {"vlan", [](const FieldCheck& f) { f.requireInt(1, 4094, "VLAN id"); }},
              {"public", [](const FieldCheck& f) { f.requireBool(); }}};
  r.check = checkSubnet;
  r.normalize = normalizeSubnet;
  r.describe = describeSubnet;
  r.observe = observeSubnets;
  r.create = createSubnet;
  r.update = updateSubnet;
  r.remove = removeSubnet;
  return r;
}();

}  // namespace vnetplan::vpc
