#include "providers/ovs/db.h"

namespace vnetplan::ovs {

bool isVnetplanKey(const std::string& key) { return key.rfind("vnetplan:", 0) == 0; }

const std::vector<TableColumns>& tableColumns() {
  // Status columns ovs-vswitchd writes (Interface error/mtu/ofport, statistics) are never guarded.
  static const std::vector<TableColumns> cols{
      {"Open_vSwitch", {"bridges", "next_cfg", "cur_cfg"}, {}},
      {"Bridge",
       {"name", "ports", "mirrors", "netflow", "sflow", "datapath_type", "fail_mode", "stp_enable", "rstp_enable",
        "other_config", "external_ids"},
       {"name", "ports", "mirrors", "netflow", "sflow", "datapath_type", "fail_mode", "stp_enable", "rstp_enable",
        "other_config", "external_ids"}},
      {"Port",
       {"name", "interfaces", "tag", "trunks", "vlan_mode", "bond_mode", "lacp", "bond_updelay", "bond_downdelay",
        "other_config", "external_ids", "qos"},
       {"name", "interfaces", "tag", "trunks", "vlan_mode", "bond_mode", "lacp", "bond_updelay", "bond_downdelay",
        "other_config", "external_ids", "qos"}},
      {"Interface",
       {"name", "type", "options", "mtu_request", "mac", "ofport_request", "ingress_policing_rate",
        "ingress_policing_burst", "other_config", "external_ids", "error", "ofport"},
       {"name", "type", "options", "mtu_request", "mac", "ofport_request", "ingress_policing_rate",
        "ingress_policing_burst", "other_config", "external_ids"}},
      {"Mirror",
       {"name", "select_src_port", "select_dst_port", "output_port", "select_all", "external_ids"},
       {"name", "select_src_port", "select_dst_port", "output_port", "select_all", "external_ids"}},
      {"QoS", {"type", "other_config", "queues", "external_ids"}, {"type", "other_config", "queues", "external_ids"}},
      {"Queue", {"other_config", "external_ids"}, {"other_config", "external_ids"}},
      {"NetFlow", {"targets", "active_timeout", "external_ids"}, {"targets", "active_timeout", "external_ids"}},
      {"sFlow", {"targets", "sampling", "polling", "external_ids"}, {"targets", "sampling", "polling", "external_ids"}},
  };
  return cols;
}

const TableColumns& columnsOf(const std::string& table) {
  for (const auto& t : tableColumns())
    if (table == t.table) return t;
  static const TableColumns none{"", {}, {}};
  return none;
}

Json selectAll() {
  Json params = Json::array({"Open_vSwitch"});
  for (const auto& t : tableColumns()) {
    std::vector<std::string> columns = t.read;
    columns.insert(columns.begin(), "_uuid");
    params.push_back(Json{{"op", "select"}, {"table", t.table}, {"where", Json::array()}, {"columns", columns}});
  }
  return params;
}

Result<Snapshot> Snapshot::fromSelect(const Json& results) {
  const auto& tables = tableColumns();
  if (!results.is_array() || results.size() < tables.size())
    return err("the select reply has the wrong shape (expected " + std::to_string(tables.size()) + " results)");
  Snapshot s;
  for (size_t i = 0; i < tables.size(); ++i) {
    const Json& r = results[i];
    const std::string table = tables[i].table;
    if (!r.is_object()) return err("select " + table + ": the reply is not an object");
    if (r.contains("error") && !r["error"].is_null())
      return err("select " + table + ": " + r["error"].dump() +
                 (r.contains("details") ? " (" + r["details"].dump() + ")" : ""));
    if (!r.contains("rows") || !r["rows"].is_array()) return err("select " + table + ": the reply has no rows");
    auto& out = s.tables_[table];
    for (const Json& row : r["rows"]) {
      if (!row.is_object()) return err("select " + table + ": a row is not an object");
      auto uuid = row.contains("_uuid") ? uuidOf(row["_uuid"]) : std::nullopt;
      if (!uuid) return err("select " + table + ": a row without a valid _uuid");
      for (const auto& col : tables[i].read)
        if (!row.contains(col)) return err("select " + table + ": a row without column " + col);
      if (row.contains("name") && !row["name"].is_string())
        return err("select " + table + ": row " + *uuid + " has a name that is not a string");
      out[*uuid] = row;
    }
  }
  const auto& roots = s.tables_["Open_vSwitch"];
  if (roots.size() != 1)
    return err("the Open_vSwitch table has " + std::to_string(roots.size()) +
               " rows (expected exactly one: was the database initialized with 'ovs-vsctl init'?)");
  s.root_ = roots.begin()->first;
  auto index = [&](const char* table, std::map<std::string, std::string>& byName) {
    for (const auto& [uuid, row] : s.tables_[table]) byName[row["name"].get<std::string>()] = uuid;
  };
  index("Bridge", s.bridges_);
  index("Port", s.ports_);
  index("Interface", s.interfaces_);
  index("Mirror", s.mirrors_);
  for (const auto& [buuid, row] : s.tables_["Bridge"]) {
    for (const auto& p : setAtoms(row["ports"]))
      if (auto u = uuidOf(p)) s.portBridge_[*u] = buuid;
    for (const auto& m : setAtoms(row["mirrors"]))
      if (auto u = uuidOf(m)) s.mirrorBridge_[*u] = buuid;
  }
  return s;
}

const Json* Snapshot::row(const std::string& table, const std::string& uuid) const {
  auto t = tables_.find(table);
  if (t == tables_.end()) return nullptr;
  auto r = t->second.find(uuid);
  return r == t->second.end() ? nullptr : &r->second;
}

const std::map<std::string, Json>& Snapshot::rows(const std::string& table) const {
  static const std::map<std::string, Json> none;
  auto t = tables_.find(table);
  return t == tables_.end() ? none : t->second;
}

static std::optional<std::string> lookup(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Snapshot::bridgeUuid(const std::string& name) const { return lookup(bridges_, name); }
std::optional<std::string> Snapshot::portUuid(const std::string& name) const { return lookup(ports_, name); }
std::optional<std::string> Snapshot::interfaceUuid(const std::string& name) const { return lookup(interfaces_, name); }
std::optional<std::string> Snapshot::mirrorUuid(const std::string& name) const { return lookup(mirrors_, name); }
std::optional<std::string> Snapshot::bridgeOfPort(const std::string& u) const { return lookup(portBridge_, u); }
std::optional<std::string> Snapshot::bridgeOfMirror(const std::string& u) const { return lookup(mirrorBridge_, u); }

std::vector<std::string> Snapshot::interfacesOf(const std::string& portUuid) const {
  std::vector<std::string> out;
  if (const Json* p = row("Port", portUuid))
    for (const auto& i : setAtoms((*p)["interfaces"]))
      if (auto u = uuidOf(i)) out.push_back(*u);
  return out;
}

std::string Snapshot::nameOf(const std::string& table, const std::string& uuid) const {
  const Json* r = row(table, uuid);
  if (!r || !r->contains("name")) return uuid;
  return (*r)["name"].get<std::string>();
}

}  // namespace vnetplan::ovs
