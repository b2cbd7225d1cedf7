// SecurityGroup = a Neutron security group and exactly the declared rules (a new group's two default egress rules
// go unless declared). Neutron has no rule update: a changed rule is the old one deleted and the new one created.
// Its Vpc is only a tag: Neutron's groups belong to the project, not to a router.
#include <algorithm>

#include "providers/vpc/kind.h"

namespace vnetplan::vpc {

namespace {

std::vector<NRule> liveRules(const Json& group) {
  std::vector<NRule> out;
  if (group.contains("security_group_rules") && group["security_group_rules"].is_array())
    for (const auto& r : group["security_group_rules"]) out.push_back(liveRule(r));
  return out;
}

void observeGroups(const Snapshot& snap, Observation& obs) {
  for (const auto& [name, g] : snap.groupByName) {
    ObservedObject o;
    o.addr = Address{snap.target, Kind::SecurityGroup, name};
    o.taggedByVnetplan = true;
    o.identity = ProviderIdentity{jsonString(*g, "id"), revisionOf(*g)};
    o.attrs.set("vpc", tagValue(*g, kVpcTag).value_or(""));
    o.attrs.set("rules", foldRules(liveRules(*g), snap.groupNameById));
    obs.objects[o.addr] = std::move(o);
  }
}

// Deletes the live rules nobody declares and creates the declared rules that are missing (one bulk POST).
Status syncRules(ApplyCtx& ctx, const std::string& groupId, const std::string& groupName, const Json& desiredRules,
                 std::vector<NRule> live) {
  std::vector<NRule> want = expandRules(desiredRules);
  for (auto& w : want) {
    if (w.remoteGroup.empty()) continue;
    auto id = w.remoteGroup == groupName ? std::optional<std::string>(groupId) : ctx.groupId(w.remoteGroup);
    if (!id) return err("rule refers to SecurityGroup " + w.remoteGroup + ", which does not exist");
    w.remoteGroup = *id;
  }
  std::sort(want.begin(), want.end());
  std::sort(live.begin(), live.end());
  std::vector<NRule> extra, missing;
  std::set_difference(live.begin(), live.end(), want.begin(), want.end(), std::back_inserter(extra));
  std::set_difference(want.begin(), want.end(), live.begin(), live.end(), std::back_inserter(missing));
  for (const auto& r : extra)  // a rule that named a deleted group went with it: 404 is fine
    if (Status s = ctx.remove("security-group-rules", r.id, "rule of SecurityGroup " + groupName); !s) return s;
  if (!missing.empty()) {
    Json list = Json::array();
    for (const auto& r : missing) {
      Json b = ruleBody(r, groupId);
      if (!ctx.tenantUnderNoauth().empty()) b["tenant_id"] = ctx.tenantUnderNoauth();
      list.push_back(b);
    }
    Json req = {{"security_group_rules", list}};
    // One request for all of them; Neutron creates them in one transaction (all or none).
    auto r = ctx.api().expect("POST", "/security-group-rules", &req, Retry::OnlyIfNotSent);
    if (!r) return err("rules of SecurityGroup " + groupName + ": " + r.error().message);
  }
  if (!extra.empty() || !missing.empty()) ctx.wrote(groupId);
  return {};
}

Status createGroup(ApplyCtx& ctx, const Step& s) {
  const std::string vpc = s.after.getString("vpc").value_or("");
  auto g = ctx.createTagged("security-groups", "security_group", ctx.body(s.addr),
                            ctx.tags(s.addr, {std::string(kVpcTag) + vpc}));
  if (!g) return g.error();
  const std::string id = jsonString(*g, "id");
  ctx.setGroup(s.addr.name, id);
  const Json* rules = s.after.find("rules");
  return syncRules(ctx, id, s.addr.name, rules ? *rules : Json::array(), liveRules(*g));
}

Status updateGroup(ApplyCtx& ctx, const Step& s) {
  auto id = ctx.groupId(s.addr.name);
  if (!id) return err("SecurityGroup " + s.addr.name + " does not exist");
  if (Status g = ctx.guard("security-groups", "security_group", *id, s.identity.revision,
                           "security group " + s.addr.name);
      !g)
    return g;
  if (std::find(s.changed.begin(), s.changed.end(), "vpc") != s.changed.end()) {
    if (auto old = s.before.getString("vpc"); old && !old->empty())
      if (Status st = ctx.removeTag("security-groups", *id, std::string(kVpcTag) + *old); !st) return st;
    if (Status st = ctx.addTag("security-groups", *id, std::string(kVpcTag) + s.after.getString("vpc").value_or(""));
        !st)
      return st;
  }
  if (std::find(s.changed.begin(), s.changed.end(), "rules") == s.changed.end()) return {};
  auto it = ctx.snap().groupByName.find(s.addr.name);
  std::vector<NRule> live = it != ctx.snap().groupByName.end() ? liveRules(*it->second) : std::vector<NRule>{};
  const Json* rules = s.after.find("rules");
  return syncRules(ctx, *id, s.addr.name, rules ? *rules : Json::array(), live);
}

Status removeGroup(ApplyCtx& ctx, const Step& s) {
  std::string id = s.identity.id;
  if (id.empty()) id = ctx.groupId(s.addr.name).value_or("");
  if (id.empty()) return {};
  // Rules of other groups that name this one go with it (Neutron): their revisions move.
  for (const auto& [name, g] : ctx.snap().groupByName)
    for (const auto& r : liveRules(*g))
      if (r.remoteGroup == id) ctx.wrote(jsonString(*g, "id"));
  if (Status st = ctx.remove("security-groups", id, "security group " + s.addr.name); !st) return st;
  ctx.setGroup(s.addr.name, std::nullopt);
  return {};
}

void describeGroup(const Step& s, const Target&, std::vector<std::string>& parts) {
  const Attrs& a = s.action == StepAction::Delete ? s.before : s.after;
  const Json* rules = a.find("rules");
  const size_t n = rules && rules->is_array() ? rules->size() : 0;
  parts.push_back(std::to_string(n) + " rule" + (n == 1 ? "" : "s"));
  if (auto v = a.getString("vpc")) parts.push_back("vpc " + *v);
}

void checkGroup(const Resource& r, const Target&, Diagnostics& diags) {
  const Json* rules = r.attrs.find("rules");
  if (!rules || !rules->is_array()) return;
  std::string why;
  Json canon = canonicalRules(*rules, &why);
  if (!why.empty()) fail(r, diags, r.addr.str() + ": rules: " + why);
  // Two declared rules that are one Neutron rule would be refused (409) at apply time: say it now.
  std::vector<NRule> all = expandRules(canon);
  std::sort(all.begin(), all.end());
  for (size_t i = 1; i < all.size(); ++i)
    if (all[i] == all[i - 1]) {
      fail(r, diags, r.addr.str() + ": rules: two rules allow the same traffic (" + all[i].direction + " " +
                         all[i].ethertype + " " + (all[i].protocol.empty() ? "any" : all[i].protocol) +
                         (all[i].remoteIp.empty() ? "" : " from " + all[i].remoteIp) +
                         "); Neutron refuses duplicate rules");
      break;
    }
  for (const auto& rule : *rules)
    if (rule.is_object() && rule.contains("cidr") && rule["cidr"].is_string()) {
      auto p = parsePrefix(rule["cidr"].get<std::string>());
      if (p && p->network().str() != p->str())
        fail(r, diags, r.addr.str() + ": rules: cidr " + p->str() + " has host bits set; write " + p->network().str());
    }
}

void normalizeGroup(Resource& r) {
  if (const Json* rules = r.attrs.find("rules")) r.attrs.set("rules", canonicalRules(*rules));
}

KindTraits groupTraits() {
  KindTraits t;
  t.kind = Kind::SecurityGroup;
  t.unorderedLists = {"rules"};
  t.disruptiveOn = {"rules"};
  t.defaults = {{"rules", Json::array()}};
  t.exhaustive = true;
  t.verify = VerifyPolicy{3, std::chrono::milliseconds(100)};
  return t;
}

const KindTraits kGroupTraits = groupTraits();

}  // namespace

const Row kSecurityGroupRow = [] {
  Row r;
  r.kind = Kind::SecurityGroup;
  r.label = "security group";
  r.traits = &kGroupTraits;
  r.fields = {{"vpc", nullptr}, {"rules", nullptr}};
  r.check = checkGroup;
  r.normalize = normalizeGroup;
  r.describe = describeGroup;
  r.observe = observeGroups;
  r.create = createGroup;
  r.update = updateGroup;
  r.remove = removeGroup;
  return r;
}();

}  // namespace vnetplan::vpc
