// Tags, the snapshot's indexes and the apply context shared by the vpc kinds.
#include <spdlog/spdlog.h>

#include "providers/vpc/kind.h"

namespace vnetplan::vpc {

std::optional<std::string> tagValue(const Json& obj, const std::string& prefix) {
  if (!obj.is_object() || !obj.contains("tags") || !obj["tags"].is_array()) return std::nullopt;
  for (const auto& t : obj["tags"])
    if (t.is_string() && t.get_ref<const std::string&>().rfind(prefix, 0) == 0)
      return t.get<std::string>().substr(prefix.size());
  return std::nullopt;
}

std::vector<std::string> tagsWith(const Json& obj, const std::string& prefix) {
  std::vector<std::string> out;
  if (!obj.is_object() || !obj.contains("tags") || !obj["tags"].is_array()) return out;
  for (const auto& t : obj["tags"])
    if (t.is_string() && t.get_ref<const std::string&>().rfind(prefix, 0) == 0)
      out.push_back(t.get<std::string>().substr(prefix.size()));
  return out;
}

std::optional<Address> taggedAddress(const Json& obj, const std::string& target) {
  if (tagValue(obj, kOwnerTag) != target) return std::nullopt;
  auto a = tagValue(obj, kAddressTag);
  if (!a) return std::nullopt;
  auto addr = Address::parse(*a);
  if (!addr || addr->target != target) return std::nullopt;
  return addr;
}

std::string routeTag(const std::string& dest, const std::string& nexthop, const std::string& name) {
  std::string d = dest;
  for (char& c : d)
    if (c == '/') c = '|';
  return std::string(kRouteTag) + d + " " + nexthop + " " + name;
}

std::optional<RouteTag> parseRouteTag(const std::string& value) {
  size_t a = value.find(' ');
  if (a == std::string::npos) return std::nullopt;
  size_t b = value.find(' ', a + 1);
  if (b == std::string::npos || b + 1 >= value.size()) return std::nullopt;
  RouteTag t{value.substr(0, a), value.substr(a + 1, b - a - 1), value.substr(b + 1)};
  for (char& c : t.dest)
    if (c == '|') c = '/';
  return t;
}

std::string jsonString(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return "";
  return obj[key].get<std::string>();
}

std::string revisionOf(const Json& obj) {
  if (!obj.is_object() || !obj.contains("revision_number") || !obj["revision_number"].is_number_integer()) return "";
  return std::to_string(obj["revision_number"].get<long long>());
}

std::string canonicalPrefix(const std::string& text) {
  auto p = parsePrefix(text);
  return p ? p->network().str() : "";
}

std::string canonicalAddress(const std::string& text) {
  auto p = parseAddress(text);
  return p ? p->addressStr() : "";
}

std::string nthAddress(const std::string& prefix, int n) {
  auto p = parsePrefix(prefix);
  if (!p) return "";
  IpPrefix a = p->network();
  // Add n to the address, big-endian.
  int carry = n;
  for (int i = static_cast<int>(a.addrLen()) - 1; i >= 0 && carry; --i) {
    int v = a.addr[i] + carry;
    a.addr[i] = static_cast<unsigned char>(v & 0xff);
    carry = v >> 8;
  }
  return a.addressStr();
}

// ---- Snapshot

void Snapshot::index() {
  for (const auto& r : routers) {
    auto a = taggedAddress(r, target);
    if (!a || a->kind != Kind::Vpc) continue;
    routerOfVpc[a->name] = &r;
    vpcOfRouter[jsonString(r, "id")] = a->name;
  }
  std::map<std::string, const Json*> netById;
  for (const auto& n : networks) {
    auto a = taggedAddress(n, target);
    if (!a) continue;
    netById[jsonString(n, "id")] = &n;
    if (a->kind == Kind::Subnet) {
      networkOfSubnet[a->name] = &n;
    } else if (a->kind == Kind::Vpc) {
      if (auto peer = tagValue(n, kPeerTag)) transits.push_back(Transit{&n, nullptr, a->name, *peer});
    }
  }
  for (const auto& s : subnets) {
    auto a = taggedAddress(s, target);
    if (!a) continue;
    const std::string net = jsonString(s, "network_id");
    if (a->kind == Kind::Subnet) {
      auto it = networkOfSubnet.find(a->name);
      if (it != networkOfSubnet.end() && jsonString(*it->second, "id") == net) subnetOfSubnet[a->name] = &s;
    } else if (a->kind == Kind::Vpc) {
      for (auto& t : transits)
        if (jsonString(*t.network, "id") == net) t.subnet = &s;
    }
  }
  for (const auto& g : groups) {
    auto a = taggedAddress(g, target);
    if (!a || a->kind != Kind::SecurityGroup) continue;
    groupByName[a->name] = &g;
  }
  for (const auto& g : groups) groupNameById[jsonString(g, "id")] = "";
  for (const auto& [name, g] : groupByName) groupNameById[jsonString(*g, "id")] = name;
  for (const auto& p : interfacePorts) interfacesOfRouter[jsonString(p, "device_id")].push_back(&p);
  std::map<std::string, int> nameCount;
  for (const auto& e : externals) ++nameCount[jsonString(e, "name")];
  for (const auto& e : externals) {
    const std::string name = jsonString(e, "name");
    externalNameById[jsonString(e, "id")] = !name.empty() && nameCount[name] == 1 ? name : jsonString(e, "id");
  }
}

bool Snapshot::hasInterface(const std::string& routerId, const std::string& subnetId, const std::string& ip) const {
  auto it = interfacesOfRouter.find(routerId);
  if (it == interfacesOfRouter.end()) return false;
  for (const Json* p : it->second) {
    if (!p->contains("fixed_ips") || !(*p)["fixed_ips"].is_array()) continue;
    for (const auto& f : (*p)["fixed_ips"])
      if (jsonString(f, "subnet_id") == subnetId && (ip.empty() || canonicalAddress(jsonString(f, "ip_address")) == ip))
        return true;
  }
  return false;
}

std::string Snapshot::externalName(const std::string& id) const {
  auto it = externalNameById.find(id);
  return it == externalNameById.end() ? id : it->second;
}

// ---- ApplyCtx

Json ApplyCtx::body(const Address& addr, const std::string& name) const {
  Json b = {{"name", name}, {"description", kDescriptionPrefix + addr.str()}};
  if (s_.noauth) b["tenant_id"] = s_.projectId;
  return b;
}

const std::string& ApplyCtx::tenantUnderNoauth() const {
  static const std::string none;
  return s_.noauth ? s_.projectId : none;
}

std::vector<std::string> ApplyCtx::tags(const Address& addr, const std::vector<std::string>& extra) const {
  std::vector<std::string> t{std::string(kOwnerTag) + s_.target, std::string(kAddressTag) + addr.str()};
  t.insert(t.end(), extra.begin(), extra.end());
  return t;
}

Result<Json> ApplyCtx::createTagged(const std::string& collection, const std::string& member, const Json& body,
                                    const std::vector<std::string>& tags) {
  Json req = {{member, body}};
  auto reply = api_.call("POST", "/" + collection, &req, Retry::OnlyIfNotSent);
  if (!reply || reply->status >= 500) {
    std::string why = reply ? "neutron " + Neutron::failure("POST", "/" + collection, *reply) : reply.error().message;
    return err(why + cleanUpUnknownCreate(collection, member, body));
  }
  if (!reply->ok()) return err("neutron " + Neutron::failure("POST", "/" + collection, *reply));
  Result<Json> created = reply->json;
  if (!created->is_object() || !created->contains(member) || !(*created)[member].is_object() ||
      jsonString((*created)[member], "id").empty())
    return err("neutron POST /" + collection + ": the reply holds no " + member + " with an id: " +
               excerpt(created->dump(), 160));
  Json obj = (*created)[member];
  const std::string id = jsonString(obj, "id");
  Json tagBody = {{"tags", tags}};
  auto tagged = api_.expect("PUT", "/" + collection + "/" + id + "/tags", &tagBody, Retry::Idempotent);
  if (!tagged) {
    auto undo = api_.call("DELETE", "/" + collection + "/" + id, nullptr, Retry::Idempotent);
    std::string left = undo && (undo->ok() || undo->status == 404)
                           ? " (the untagged " + member + " was deleted again)"
                           : "; the untagged " + member + " " + id + " could not be deleted: delete it by hand";
    return err(tagged.error().message + left);
  }
  obj["tags"] = tags;
  wrote(id);
  return obj;
}

std::string ApplyCtx::cleanUpUnknownCreate(const std::string& collection, const std::string& member,
                                           const Json& body) {
  std::string query = "name=" + urlEncode(jsonString(body, "name")) + "&description=" +
                      urlEncode(jsonString(body, "description")) + "&not-tags=" + urlEncode(kOwnerTag + s_.target) +
                      "&fields=id";
  if (!s_.projectId.empty()) query += "&project_id=" + urlEncode(s_.projectId);
  auto found = api_.list(collection, query);
  if (!found)
    return "; the outcome is unknown and vnetplan could not look for an untagged " + member + " '" +
           jsonString(body, "name") + "' it may have made (" + found.error().message + "): check by hand";
  if (found->empty()) return "; no " + member + " was made";
  int deleted = 0;
  for (const auto& o : *found) {
    auto r = api_.call("DELETE", "/" + collection + "/" + jsonString(o, "id"), nullptr, Retry::Idempotent);
    if (r && (r->ok() || r->status == 404)) ++deleted;
  }
  if (deleted == static_cast<int>(found->size()))
    return "; the " + member + " it made anyway was deleted again";
  return "; " + std::to_string(found->size() - deleted) + " untagged " + member + "(s) named '" +
         jsonString(body, "name") + "' it made could not be deleted: delete them by hand";
}

Status ApplyCtx::addTag(const std::string& collection, const std::string& id, const std::string& tag) {
  auto r = api_.expect("PUT", "/" + collection + "/" + id + "/tags/" + urlEncode(tag), nullptr, Retry::Idempotent);
  if (!r) return r.error();
  wrote(id);
  return {};
}

Status ApplyCtx::removeTag(const std::string& collection, const std::string& id, const std::string& tag) {
  const std::string path = "/" + collection + "/" + id + "/tags/" + urlEncode(tag);
  auto r = api_.call("DELETE", path, nullptr, Retry::Idempotent);
  if (!r) return r.error();
  if (!r->ok() && r->status != 404) return err("neutron " + Neutron::failure("DELETE", path, *r));
  wrote(id);
  return {};
}

Status ApplyCtx::remove(const std::string& collection, const std::string& id, const std::string& what) {
  const std::string path = "/" + collection + "/" + id;
  auto r = api_.call("DELETE", path, nullptr, Retry::Idempotent);
  if (!r) return r.error();
  if (r->ok() || r->status == 404) return {};
  std::string hint;
  if (r->type == "NetworkInUse" || r->type == "SecurityGroupInUse")
    hint = " (ports vnetplan does not manage, e.g. VM interfaces, still use the " + what + ")";
  return err("cannot delete " + what + ": neutron " + Neutron::failure("DELETE", path, *r) + hint);
}

Result<Json> ApplyCtx::routerAction(const std::string& routerId, const std::string& action, const Json& body,
                                    const std::set<std::string>& tolerate) {
  const std::string path = "/routers/" + routerId + "/" + action;
  auto r = api_.call("PUT", path, &body, Retry::OnlyIfNotSent);
  if (!r) return r.error();
  if (r->ok()) {
    if (r->json.is_object() && r->json.contains("router")) wrote(routerId, revisionOf(r->json["router"]));
    else wrote(routerId);
    return r->json;
  }
  if (tolerate.count(r->type) || (tolerate.count("404") && r->status == 404)) return Json(nullptr);
  return err("neutron " + Neutron::failure("PUT", path, *r));
}

void ApplyCtx::wrote(const std::string& id, const std::string& revision) {
  std::lock_guard<std::mutex> lock(mu_);
  written_[id] = revision;
}

Result<std::string> ApplyCtx::revisionFor(const std::string& collection, const std::string& member,
                                          const std::string& id, const std::string& planned) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = written_.find(id);
    if (it == written_.end() && !planned.empty()) return planned;
    if (it != written_.end() && !it->second.empty()) return it->second;
  }
  // This session changed the object (or the plan knew no revision): what it is now. A change by someone else
  // between our own write and this read goes unnoticed; the window is one request long.
  auto cur = api_.expect("GET", "/" + collection + "/" + id + "?fields=revision_number", nullptr, Retry::Idempotent);
  if (!cur) return cur.error();
  std::string rev = cur->is_object() && cur->contains(member) ? revisionOf((*cur)[member]) : "";
  if (rev.empty()) return err("neutron GET /" + collection + "/" + id + ": no revision_number");
  return rev;
}

Status ApplyCtx::guard(const std::string& collection, const std::string& member, const std::string& id,
                       const std::string& planned, const std::string& what) {
  const Json* live = nullptr;
  const std::vector<Json>& objs = collection == "routers" ? snap_.routers
                                  : collection == "security-groups" ? snap_.groups
                                  : collection == "networks" ? snap_.networks
                                                             : snap_.subnets;
  for (const auto& o : objs)
    if (jsonString(o, "id") == id) live = &o;
  Json attrs = {{"description", live ? jsonString(*live, "description") : std::string()}};
  auto r = guardedUpdate(collection, member, id, planned, attrs, what);
  return r ? Status{} : Status(r.error());
}

Result<Json> ApplyCtx::guardedUpdate(const std::string& collection, const std::string& member, const std::string& id,
                                     const std::string& planned, const Json& attrs, const std::string& what) {
  auto rev = revisionFor(collection, member, id, planned);
  if (!rev) return rev.error();
  const std::string path = "/" + collection + "/" + id;
  Json req = {{member, attrs}};
  auto r = api_.call("PUT", path, &req, Retry::OnlyIfNotSent, {{"If-Match", "revision_number=" + *rev}});
  if (!r) return r.error();
  if (r->status == 412)
    return err("stale: " + what + " was changed by someone else since it was observed (revision " + *rev +
               " expected; " + r->message + "); nothing of this step was done, and vnetplan does not overwrite a "
               "concurrent change: run plan again");
  if (!r->ok()) return err("neutron " + Neutron::failure("PUT", path, *r));
  wrote(id, r->json.is_object() && r->json.contains(member) ? revisionOf(r->json[member]) : "");
  return r->json.is_object() && r->json.contains(member) ? r->json[member] : Json(nullptr);
}

std::optional<std::string> ApplyCtx::routerId(const std::string& vpc) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = routers_.find(vpc); it != routers_.end()) return it->second;
  if (auto it = snap_.routerOfVpc.find(vpc); it != snap_.routerOfVpc.end()) return jsonString(*it->second, "id");
  return std::nullopt;
}

void ApplyCtx::setRouter(const std::string& vpc, std::optional<std::string> id) {
  std::lock_guard<std::mutex> lock(mu_);
  routers_[vpc] = std::move(id);
}

std::optional<std::string> ApplyCtx::groupId(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = groups_.find(name); it != groups_.end()) return it->second;
  if (auto it = snap_.groupByName.find(name); it != snap_.groupByName.end()) return jsonString(*it->second, "id");
  return std::nullopt;
}

void ApplyCtx::setGroup(const std::string& name, std::optional<std::string> id) {
  std::lock_guard<std::mutex> lock(mu_);
  groups_[name] = std::move(id);
}

std::optional<ApplyCtx::NetIds> ApplyCtx::subnetIds(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = subnets_.find(name); it != subnets_.end()) return it->second;
  auto n = snap_.networkOfSubnet.find(name);
  if (n == snap_.networkOfSubnet.end()) return std::nullopt;
  NetIds ids{jsonString(*n->second, "id"), ""};
  if (auto s = snap_.subnetOfSubnet.find(name); s != snap_.subnetOfSubnet.end()) ids.subnet = jsonString(*s->second, "id");
  return ids;
}

void ApplyCtx::setSubnet(const std::string& name, std::optional<NetIds> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  subnets_[name] = std::move(ids);
}

void ApplyCtx::setVpcsBeingDeleted(std::set<std::string> names) {
  std::lock_guard<std::mutex> lock(mu_);
  vpcsBeingDeleted_ = std::move(names);
}

bool ApplyCtx::vpcBeingDeleted(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  return vpcsBeingDeleted_.count(name) > 0;
}

Result<std::string> ApplyCtx::externalNetwork(const std::string& nameOrId) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!externals_) {
    auto l = api_.list("networks", "router%3Aexternal=true&fields=id&fields=name");
    if (!l) return l.error();
    externals_ = std::move(*l);
  }
  std::vector<std::string> byName;
  for (const auto& e : *externals_) {
    if (jsonString(e, "id") == nameOrId) return nameOrId;
    if (jsonString(e, "name") == nameOrId) byName.push_back(jsonString(e, "id"));
  }
  if (byName.size() == 1) return byName[0];
  if (byName.empty()) return err("no external network (router:external) named or with id '" + nameOrId + "'");
  return err(std::to_string(byName.size()) + " external networks are named '" + nameOrId +
             "': give internetGateway.externalNetwork as the id of the one to use");
}

const VpcKinds& vpcKinds() {
  static const VpcKinds table({&kVpcRow, &kSubnetRow, &kSecurityGroupRow, &kRouteRow});
  return table;
}

std::set<std::string> routersTouched(const Step& step) {
  std::set<std::string> out;
  for (const Attrs* a : {&step.before, &step.after}) {
    if (step.addr.kind == Kind::Vpc) {
      out.insert(step.addr.name);
      if (const Json* p = a->find("peering"); p && p->is_array())
        for (const auto& e : *p)
          if (e.is_object() && e.contains("vpc") && e["vpc"].is_string()) out.insert(e["vpc"].get<std::string>());
    } else if (step.addr.kind == Kind::Subnet || step.addr.kind == Kind::Route) {
      if (auto v = a->getString("vpc")) out.insert(*v);
    }
  }
  return out;
}

}  // namespace vnetplan::vpc
