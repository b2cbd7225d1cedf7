// Route = one extra route of its Vpc's router. An extra route has no id and no tags of its own, so the router
// carries a tag per Route (vnetplan:route=DEST NEXTHOP NAME): a route on vnetplan's router without that tag was
// added by someone else and is not a Route. The tag is written before the route is added and removed after it is
// gone, so an interruption never leaves a route vnetplan added without its tag.
#include "providers/vpc/kind.h"

namespace vnetplan::vpc {

namespace {

bool routerHasRoute(const Json& router, const std::string& dest, const std::string& nexthop) {
  if (!router.contains("routes") || !router["routes"].is_array()) return false;
  for (const auto& r : router["routes"])
    if (canonicalPrefix(jsonString(r, "destination")) == dest && canonicalAddress(jsonString(r, "nexthop")) == nexthop)
      return true;
  return false;
}

void observeRoutes(const Snapshot& snap, Observation& obs) {
  for (const auto& [vpc, router] : snap.routerOfVpc)
    for (const auto& value : tagsWith(*router, kRouteTag)) {
      auto t = parseRouteTag(value);
      if (!t) continue;
      const std::string dest = canonicalPrefix(t->dest), nexthop = canonicalAddress(t->nexthop);
      if (dest.empty() || nexthop.empty() || !routerHasRoute(*router, dest, nexthop)) continue;
      ObservedObject o;
      o.addr = Address{snap.target, Kind::Route, t->name};
      o.taggedByVnetplan = true;
      // The route lives in the router; its revision moves with every other change of the router, so none is
      // tracked for the route itself (adding and removing one route never overwrites anything else).
      o.identity = ProviderIdentity{jsonString(*router, "id"), ""};
      o.attrs.set("vpc", vpc);
      o.attrs.set("destination", dest);
      o.attrs.set("nexthop", nexthop);
      obs.objects[o.addr] = std::move(o);
    }
}

Json routeJson(const Attrs& a) {
  return Json::array({{{"destination", a.getString("destination").value_or("")},
                       {"nexthop", a.getString("nexthop").value_or("")}}});
}

Status createRoute(ApplyCtx& ctx, const Step& s) {
  const std::string vpc = s.after.getString("vpc").value_or("");
  auto rid = ctx.routerId(vpc);
  if (!rid) return err("Vpc " + vpc + " has no router");
  const std::string tag =
      routeTag(s.after.getString("destination").value_or(""), s.after.getString("nexthop").value_or(""), s.addr.name);
  if (Status st = ctx.addTag("routers", *rid, tag); !st) return st;
  auto r = ctx.routerAction(*rid, "add_extraroutes", {{"router", {{"routes", routeJson(s.after)}}}});
  if (!r) {
    std::string msg = r.error().message;
    if (msg.find("HTTP 400") != std::string::npos)
      msg += " (the nexthop must be on a subnet attached to Vpc " + vpc + "'s router: a public Subnet or a peering)";
    (void)ctx.removeTag("routers", *rid, tag);
    return err(msg);
  }
  return {};
}

Status removeRoute(ApplyCtx& ctx, const Step& s) {
  const std::string vpc = s.before.getString("vpc").value_or("");
  std::string rid = s.identity.id;
  if (rid.empty()) rid = ctx.routerId(vpc).value_or("");
  if (rid.empty()) return {};
  auto r = ctx.routerAction(rid, "remove_extraroutes", {{"router", {{"routes", routeJson(s.before)}}}}, {"404"});
  if (!r) return r.error();
  return ctx.removeTag("routers", rid,
                       routeTag(s.before.getString("destination").value_or(""),
                                s.before.getString("nexthop").value_or(""), s.addr.name));
}

void describeRoute(const Step& s, const Target&, std::vector<std::string>& parts) {
  const Attrs& a = s.action == StepAction::Delete ? s.before : s.after;
  parts.push_back(a.getString("destination").value_or("?") + " via " + a.getString("nexthop").value_or("?") +
                  " on vpc " + a.getString("vpc").value_or("?"));
}

void checkRoute(const Resource& r, const Target& t, Diagnostics& diags) {
  auto dest = parsePrefix(r.attrs.getString("destination").value_or(""));
  auto hop = parseAddress(r.attrs.getString("nexthop").value_or(""));
  if (dest && dest->network().str() != dest->str())
    fail(r, diags, r.addr.str() + ": destination " + dest->str() + " has host bits set; write " + dest->network().str());
  if (dest && hop && dest->family != hop->family)
    fail(r, diags, r.addr.str() + ": destination " + dest->str() + " and nexthop " + hop->addressStr() +
                       " are of different address families");
  const std::string tag = routeTag(dest ? dest->str() : "", hop ? hop->addressStr() : "", r.addr.name);
  if (tag.size() > kMaxTag)
    fail(r, diags, r.addr.str() + ": the name is too long: the router tag recording the Route (" +
                       std::to_string(tag.size()) + " characters) exceeds Neutron's " + std::to_string(kMaxTag));
  (void)t;
}

void normalizeRoute(Resource& r) {
  if (auto d = parsePrefix(r.attrs.getString("destination").value_or(""))) r.attrs.set("destination", d->str());
  if (auto h = parseAddress(r.attrs.getString("nexthop").value_or(""))) r.attrs.set("nexthop", h->addressStr());
}

KindTraits routeTraits() {
  KindTraits t;
  t.kind = Kind::Route;
  t.replaceOn = {"vpc", "destination", "nexthop"};
  t.exhaustive = true;
  t.verify = VerifyPolicy{3, std::chrono::milliseconds(100)};
  return t;
}

const KindTraits kRouteTraits = routeTraits();

}  // namespace

const Row kRouteRow = [] {
  Row r;
  r.kind = Kind::Route;
  r.label = "route";
  r.traits = &kRouteTraits;
  r.fields = {{"vpc", nullptr}, {"destination", nullptr}, {"nexthop", nullptr}};
  r.check = checkRoute;
  r.normalize = normalizeRoute;
  r.describe = describeRoute;
  r.observe = observeRoutes;
  r.create = createRoute;
  r.remove = removeRoute;
  return r;
}();

}  // namespace vnetplan::vpc
