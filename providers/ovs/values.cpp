// Shared helpers of the ovs kinds: ownership markers, map columns <-> attributes, the transaction context.
#include <algorithm>

#include "providers/ovs/kind.h"

namespace vnetplan::ovs {

bool ownedByVnetplan(const StrMap& externalIds) { return externalIds.count(kOwnerKey) > 0; }

std::map<std::string, std::string> userKeys(const StrMap& externalIds) {
  auto m = externalIds;
  for (auto it = m.begin(); it != m.end();) it = isVnetplanKey(it->first) ? m.erase(it) : std::next(it);
  return m;
}

void mapToAttrs(const std::map<std::string, std::string>& m, const std::string& prefix, Attrs& a) {
  for (const auto& [k, v] : m) a.set(prefix + "." + k, v);
}

std::map<std::string, std::string> attrsToMap(const Attrs& a, const std::string& prefix) {
  std::map<std::string, std::string> out;
  const std::string p = prefix + ".";
  for (auto it = a.values().lower_bound(p); it != a.values().end() && it->first.rfind(p, 0) == 0; ++it)
    out[it->first.substr(p.size())] = it->second.is_string() ? it->second.get<std::string>() : it->second.dump();
  return out;
}

static bool shallow(const Json& j, int depth) {
  if (!j.is_structured()) return true;
  if (depth == 0) return false;
  for (const auto& e : j)
    if (!shallow(e, depth - 1)) return false;
  return true;
}

Attrs parseSettings(const std::string& text) {
  if (text.size() > 65536) return {};
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object() || !shallow(j, 4)) return {};
  return Attrs::fromJson(j);
}

bool changed(const Step& step, const std::string& path) {
  return std::any_of(step.changed.begin(), step.changed.end(), [&](const std::string& c) {
    return c == path || c.rfind(path + ".", 0) == 0;
  });
}

bool isUplinkPort(const PortRow& port) {
  auto it = port.externalIds.find(kRoleKey);
  return it != port.externalIds.end() && it->second == "uplink";
}

std::string uplinkPortName(const std::string& switchName, const std::vector<std::string>& nics) {
  if (nics.size() == 1) return nics[0];
  return switchName + "-uplink";
}

const OvsKinds& ovsKinds() {
  static const OvsKinds table({&kSwitchOps, &kPortGroupOps, &kPortOps, &kMirrorOps});
  return table;
}

// ---- TxnContext

Json TxnContext::ownedIds(const Address& addr, const std::map<std::string, std::string>& user) const {
  std::map<std::string, std::string> ids = user;
  ids[kOwnerKey] = target_;
  ids[kAddressKey] = addr.str();
  return mapOf(ids);
}

std::optional<Json> TxnContext::bridgeRef(const std::string& name) const {
  if (auto it = newBridges_.find(name); it != newBridges_.end()) return it->second;
  if (auto u = snap_.bridgeUuid(name)) return uuidRef(*u);
  return std::nullopt;
}

std::optional<Json> TxnContext::portRef(const std::string& name) const {
  if (auto it = newPorts_.find(name); it != newPorts_.end()) return it->second;
  if (portGone(name)) return std::nullopt;
  if (auto u = snap_.portUuid(name)) return uuidRef(*u);
  return std::nullopt;
}

static Status bridgeSetMutate(TxnContext& ctx, const std::string& bridge, const std::string& column, const Json& ref,
                              const char* mutator, const std::string& label) {
  auto b = ctx.bridgeRef(bridge);
  if (!b) return err("bridge " + bridge + " does not exist");
  // A bridge inserted by this transaction is referenced by its named-uuid; ovsdb-server resolves named-uuids in
  // where clauses of later operations.
  ctx.txn().mutateWhere("Bridge", Json::array({Json::array({"_uuid", "==", *b})}),
                        Json::array({Json::array({column, mutator, setOf({ref})})}), label);
  return {};
}

Status TxnContext::bridgeSetInsert(const std::string& bridge, const std::string& column, const Json& ref,
                                   const std::string& label) {
  return bridgeSetMutate(*this, bridge, column, ref, "insert", label);
}

Status TxnContext::bridgeSetDelete(const std::string& bridge, const std::string& column, const Json& ref,
                                   const std::string& label) {
  return bridgeSetMutate(*this, bridge, column, ref, "delete", label);
}

void TxnContext::guard(const std::string& table, const std::string& uuid, const std::string& what) {
  if (!guarded_.insert(table + "/" + uuid).second) return;
  const Json* row = snap_.row(table, uuid);
  if (!row) return;
  const auto& cols = columnsOf(table).guarded;
  Json expect = Json::object();
  for (const auto& c : cols) expect[c] = (*row)[c];
  txn_.wait(table, whereUuid(uuid), cols, Json::array({expect}), what + " is unchanged since it was observed");
}

void TxnContext::removedPort(const std::string& name) {
  newPorts_.erase(name);
  goneRows_.insert("Port/" + name);
  if (auto u = snap_.portUuid(name))
    for (const auto& iu : snap_.interfacesOf(*u)) goneRows_.insert("Interface/" + snap_.nameOf("Interface", iu));
}

void TxnContext::removedBridge(const std::string& name) {
  goneRows_.insert("Bridge/" + name);
  auto b = snap_.bridgeUuid(name);
  const BridgeRow* br = b ? snap_.bridge(*b) : nullptr;
  if (!br) return;
  for (const auto& pu : br->ports) removedPort(snap_.nameOf("Port", pu));
  for (const auto& mu : br->mirrors) removedMirror(snap_.nameOf("Mirror", mu));
}

void TxnContext::guardAbsent(const std::string& table, const std::string& name, const std::string& what) {
  absent_.push_back({table, name, what});
}

void TxnContext::finish() {
  for (const auto& [table, name, what] : absent_) {
    if (goneRows_.count(table + "/" + name)) continue;  // removed by this transaction
    if (!guarded_.insert(table + "/name:" + name).second) continue;
    txn_.wait(table, whereName(name), {"name"}, Json::array(), what + " still does not exist");
  }
  absent_.clear();
}

std::optional<TxnContext::Group> TxnContext::group(const std::string& name) const {
  if (auto it = groups_.find(name); it != groups_.end()) return it->second;
  for (const auto& [uuid, br] : snap_.bridges()) {
    auto it = br.externalIds.find(kGroupPrefix + name);
    if (it == br.externalIds.end()) continue;
    Group g;
    g.bridge = br.name;
    g.attrs = groupSettings(parseSettings(it->second));
    return g;
  }
  return std::nullopt;
}

}  // namespace vnetplan::ovs
