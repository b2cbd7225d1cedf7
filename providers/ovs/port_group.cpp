// PortGroup = a VLAN segment on an OVS bridge. OVS has no port-group row, so the group's settings live in its
// bridge's external_ids (key vnetplan:portgroup:NAME, value JSON) and are applied to every member Port
// (tag / trunks / vlan_mode); members carry vnetplan:portgroup=NAME.
#include "providers/ovs/kind.h"

namespace vnetplan::ovs {

Attrs groupSettings(const Attrs& a) {
  Attrs out = vlanOnly(a);
  if (auto c = a.getString("niocClass")) out.set("niocClass", *c);
  return out;
}

namespace {

void observeGroups(const OvsLive& live, Observation& obs) {
  const Snapshot& snap = live.snap;
  const std::string& target = live.target;
  for (const auto& [buuid, br] : snap.bridges()) {
    for (const auto& [key, value] : br.externalIds) {
      if (key.rfind(kGroupPrefix, 0) != 0 || key.size() == std::string(kGroupPrefix).size()) continue;
      ObservedObject o;
      o.addr = Address{target, Kind::PortGroup, key.substr(std::string(kGroupPrefix).size())};
      o.taggedByVnetplan = true;
      o.attrs.set("switch", br.name);
      Attrs settings = parseSettings(value);
      if (!settings.empty() || value == "{}") {
        const Attrs known = groupSettings(settings);
        for (const auto& [k, val] : known.values()) o.attrs.set(k, val);
      } else {
        o.attrs.set("ovs.invalidDefinition", printable(value, 80));  // edited by hand: the plan rewrites it
      }
      obs.objects[o.addr] = std::move(o);
    }
  }
}

Json keySet(const std::string& key) { return setOf({Json(key)}); }

// Brings the group's existing member ports (vnetplan's own) to the group's bridge and VLAN; ports created in
// this transaction take both from the group then.
Status placeMembers(TxnContext& ctx, const std::string& group, const std::string& bridge, const Attrs& vlan) {
  VlanColumns v = vlanColumns(vlan);
  for (const auto& [puuid, port] : ctx.snap().ports()) {
    auto it = port.externalIds.find(kPortGroupKey);
    if (it == port.externalIds.end() || it->second != group || !ownedByVnetplan(port.externalIds)) continue;
    const std::string& name = port.name;
    if (ctx.portGone(name)) continue;
    ctx.guard("Port", puuid, "port " + name);
    ctx.txn().update("Port", puuid, Json{{"tag", v.tag}, {"trunks", v.trunks}, {"vlan_mode", v.vlanMode}},
                     "apply port group " + group + " VLAN to port " + name);
    auto on = ctx.snap().bridgeOfPort(puuid);
    const std::string current = on ? ctx.snap().nameOf("Bridge", *on) : "";
    if (current == bridge) continue;
    if (!current.empty())
      if (Status s = ctx.bridgeSetDelete(current, "ports", uuidRef(puuid), "move port " + name + " off bridge " + current); !s)
        return s;
    if (Status s = ctx.bridgeSetInsert(bridge, "ports", uuidRef(puuid), "move port " + name + " to bridge " + bridge); !s)
      return s;
  }
  return {};
}

Status planGroup(TxnContext& ctx, const Step& step) {
  const std::string& name = step.addr.name;
  const std::string key = kGroupPrefix + name;
  auto dropFrom = [&](const std::string& bridge) -> Status {
    auto b = ctx.bridgeRef(bridge);
    if (!b) return {};
    ctx.txn().mutateWhere("Bridge", Json::array({Json::array({"_uuid", "==", *b})}),
                          Json::array({Json::array({"external_ids", "delete", keySet(key)})}),
                          "remove port group " + name + " from bridge " + bridge);
    return {};
  };
  if (step.action == StepAction::Delete) {
    ctx.setGroup(name, std::nullopt);
    return dropFrom(step.before.getString("switch").value_or(""));
  }
  const std::string bridge = step.after.getString("switch").value_or("");
  auto b = ctx.bridgeRef(bridge);
  if (!b) return err("bridge " + bridge + " does not exist");
  if (step.action == StepAction::Update) {
    if (Status s = dropFrom(step.before.getString("switch").value_or(bridge)); !s) return s;
  }
  Attrs vlan = vlanOnly(step.after);
  std::map<std::string, std::string> entry{{key, groupSettings(step.after).toJson().dump()}};
  ctx.txn().mutateWhere("Bridge", Json::array({Json::array({"_uuid", "==", *b})}),
                        Json::array({Json::array({"external_ids", "insert", mapOf(entry)})}),
                        "define port group " + name + " on bridge " + bridge);
  ctx.setGroup(name, TxnContext::Group{bridge, groupSettings(step.after)});
  return placeMembers(ctx, name, bridge, vlan);
}

void groupDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  const Attrs& a = step.after;
  if (auto sw = a.getString("switch")) parts.push_back("on bridge " + *sw);
  if (auto vlan = a.getInt("vlan")) parts.push_back("vlan " + std::to_string(*vlan));
  if (const Json* t = a.find("vlan.trunk")) parts.push_back("trunk " + t->dump());
}

KindTraits groupTraits() {
  KindTraits t;
  t.kind = Kind::PortGroup;
  t.replaceOn = {"switch"};
  t.disruptiveOn = {"vlan", "vlan."};
  t.exhaustive = true;  // observe reports exactly what vnetplan manages
  return t;
}

const KindTraits kGroupTraits = groupTraits();

}  // namespace

const KindOps kPortGroupOps{.kind = Kind::PortGroup,
                            .variant = "",
                            .label = "port group",
                            .traits = &kGroupTraits,
                            .fields = {{"switch"},
                                       {"vlan", checkVlanField},
                                       {"vlan.trunk", checkVlanField},
                                       {"shaping."},  // applied to every member port
                                       {"niocClass"}},
                            .check = nullptr,
                            .normalize = nullptr,
                            .describe = groupDescribe,
                            .observe = observeGroups,
                            .create = planGroup,
                            .update = planGroup,
                            .remove = planGroup};

}  // namespace vnetplan::ovs
