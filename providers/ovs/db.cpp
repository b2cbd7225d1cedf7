#include "providers/ovs/db.h"

#include <cstdlib>

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
        "ingress_policing_burst", "other_config", "external_ids", "error", "ofport", "ifindex"},
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
  // Typed rows. A column of an unexpected type reads as empty (the plan then shows the difference); nothing
  // a peer sends can make these throw.
  auto str = [](const Json& d) { return stringOf(d).value_or(""); };
  auto uuids = [](const Json& d) {
    std::vector<std::string> out;
    for (const auto& a : setAtoms(d))
      if (auto u = uuidOf(a)) out.push_back(*u);
    return out;
  };
  auto ref = [](const Json& d) -> std::optional<std::string> {
    auto atoms = setAtoms(d);
    return atoms.size() == 1 ? uuidOf(atoms[0]) : std::nullopt;
  };
  auto boolean = [](const Json& d) {
    auto atoms = setAtoms(d);
    return atoms.size() == 1 && atoms[0].is_boolean() && atoms[0].get<bool>();
  };
  auto strings = [](const Json& d) {
    std::vector<std::string> out;
    for (const auto& a : setAtoms(d))
      if (a.is_string()) out.push_back(a.get<std::string>());
    return out;
  };
  for (const auto& [u, r] : s.tables_["Bridge"]) {
    BridgeRow b{u, str(r["name"]), str(r["datapath_type"]), stringOf(r["fail_mode"]), ref(r["netflow"]), ref(r["sflow"]),
                boolean(r["stp_enable"]), boolean(r["rstp_enable"]), uuids(r["ports"]), uuids(r["mirrors"]),
                stringMap(r["other_config"]), stringMap(r["external_ids"])};
    s.bridgeRows_[u] = std::move(b);
  }
  for (const auto& [u, r] : s.tables_["Port"]) {
    PortRow p;
    p.uuid = u, p.name = str(r["name"]), p.interfaces = uuids(r["interfaces"]), p.tag = intOf(r["tag"]);
    for (const auto& t : setAtoms(r["trunks"]))
      if (t.is_number_integer()) p.trunks.push_back(t.get<int64_t>());
    p.vlanMode = stringOf(r["vlan_mode"]), p.bondMode = stringOf(r["bond_mode"]), p.lacp = stringOf(r["lacp"]);
    p.qos = ref(r["qos"]);
    p.bondUpdelay = intOf(r["bond_updelay"]).value_or(0), p.bondDowndelay = intOf(r["bond_downdelay"]).value_or(0);
    p.otherConfig = stringMap(r["other_config"]), p.externalIds = stringMap(r["external_ids"]);
    s.portRows_[u] = std::move(p);
  }
  for (const auto& [u, r] : s.tables_["Interface"]) {
    InterfaceRow i;
    i.uuid = u, i.name = str(r["name"]), i.type = str(r["type"]);
    i.options = stringMap(r["options"]), i.otherConfig = stringMap(r["other_config"]);
    i.externalIds = stringMap(r["external_ids"]);
    i.mtuRequest = intOf(r["mtu_request"]), i.ofportRequest = intOf(r["ofport_request"]), i.ofport = intOf(r["ofport"]);
    i.ifindex = intOf(r["ifindex"]).value_or(0);
    i.mac = stringOf(r["mac"]), i.error = stringOf(r["error"]);
    i.policingRate = intOf(r["ingress_policing_rate"]).value_or(0);
    i.policingBurst = intOf(r["ingress_policing_burst"]).value_or(0);
    s.ifaceRows_[u] = std::move(i);
  }
  for (const auto& [u, r] : s.tables_["Mirror"])
    s.mirrorRows_[u] = MirrorRow{u, str(r["name"]), uuids(r["select_src_port"]), uuids(r["select_dst_port"]),
                                 ref(r["output_port"]), boolean(r["select_all"]), stringMap(r["external_ids"])};
  for (const auto& [u, r] : s.tables_["QoS"]) {
    QosRow q{u, str(r["type"]), stringMap(r["other_config"]), stringMap(r["external_ids"]), {}};
    for (const auto& [id, qu] : mapEntries(r["queues"])) {
      char* end = nullptr;
      long long n = std::strtoll(id.c_str(), &end, 10);
      if (auto uu = uuidOf(qu); uu && end && *end == '\0') q.queues[n] = *uu;
    }
    s.qosRows_[u] = std::move(q);
  }
  for (const auto& [u, r] : s.tables_["Queue"])
    s.queueRows_[u] = QueueRow{u, stringMap(r["other_config"]), stringMap(r["external_ids"])};
  for (const auto& [u, r] : s.tables_["NetFlow"])
    s.netflowRows_[u] = NetFlowRow{u, strings(r["targets"]), intOf(r["active_timeout"]).value_or(0)};
  for (const auto& [u, r] : s.tables_["sFlow"])
    s.sflowRows_[u] = SflowRow{u, strings(r["targets"]), intOf(r["sampling"]), intOf(r["polling"])};

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
  // Mirror names are not unique in the schema: vnetplan's own row wins over a user's of the same name.
  for (const auto& [u, m] : s.mirrorRows_) {
    auto it = s.mirrors_.find(m.name);
    if (it == s.mirrors_.end() || (!s.mirrorRows_[it->second].externalIds.count(kOwnerKey) && m.externalIds.count(kOwnerKey)))
      s.mirrors_[m.name] = u;
  }
  for (const auto& [buuid, b] : s.bridgeRows_) {
    for (const auto& p : b.ports) s.portBridge_[p] = buuid;
    for (const auto& m : b.mirrors) s.mirrorBridge_[m] = buuid;
  }
  return s;
}

template <typename Row>
static const Row* findRow(const std::map<std::string, Row>& m, const std::string& uuid) {
  auto it = m.find(uuid);
  return it == m.end() ? nullptr : &it->second;
}
const BridgeRow* Snapshot::bridge(const std::string& u) const { return findRow(bridgeRows_, u); }
const PortRow* Snapshot::port(const std::string& u) const { return findRow(portRows_, u); }
const InterfaceRow* Snapshot::interface(const std::string& u) const { return findRow(ifaceRows_, u); }
const MirrorRow* Snapshot::mirror(const std::string& u) const { return findRow(mirrorRows_, u); }
const QosRow* Snapshot::qos(const std::string& u) const { return findRow(qosRows_, u); }
const QueueRow* Snapshot::queue(const std::string& u) const { return findRow(queueRows_, u); }
const NetFlowRow* Snapshot::netflow(const std::string& u) const { return findRow(netflowRows_, u); }
const SflowRow* Snapshot::sflow(const std::string& u) const { return findRow(sflowRows_, u); }

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
  const PortRow* p = port(portUuid);
  return p ? p->interfaces : std::vector<std::string>{};
}

std::string Snapshot::nameOf(const std::string& table, const std::string& uuid) const {
  const Json* r = row(table, uuid);
  if (!r || !r->contains("name")) return uuid;
  return (*r)["name"].get<std::string>();
}

}  // namespace vnetplan::ovs
