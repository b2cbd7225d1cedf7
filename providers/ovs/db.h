// The slice of the Open_vSwitch database the ovs provider reads and writes: which tables and columns, the
// ownership keys vnetplan puts in external_ids, and a snapshot of the rows read by one observe.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "providers/ovs/ovsdb.h"

namespace vnetplan::ovs {

// external_ids keys vnetplan writes on every row it creates.
inline constexpr const char* kOwnerKey = "vnetplan:owner";      // the Target name
inline constexpr const char* kAddressKey = "vnetplan:address";  // TARGET/Kind/name
// On a Port: the PortGroup it belongs to. On a Bridge: one key per PortGroup, holding its settings as JSON.
inline constexpr const char* kPortGroupKey = "vnetplan:portgroup";
inline constexpr const char* kGroupPrefix = "vnetplan:portgroup:";
// On the Port that carries a Switch's uplinks: "uplink".
inline constexpr const char* kRoleKey = "vnetplan:role";
bool isVnetplanKey(const std::string& key);

// The schema this provider was written against: vswitch.ovsschema 8.x (Open vSwitch 2.13 and later).
inline constexpr int kSchemaMajor = 8;

struct TableColumns {
  const char* table;
  std::vector<std::string> read;     // selected by observe
  std::vector<std::string> guarded;  // compared by `wait` before a change (what vnetplan manages)
};
const std::vector<TableColumns>& tableColumns();
const TableColumns& columnsOf(const std::string& table);

// Rows of one observe: table -> uuid -> {column: datum}.
class Snapshot {
 public:
  static Result<Snapshot> fromSelect(const Json& results);

  const Json* row(const std::string& table, const std::string& uuid) const;
  const std::map<std::string, Json>& rows(const std::string& table) const;
  const std::string& rootUuid() const { return root_; }
  std::optional<std::string> bridgeUuid(const std::string& name) const;
  std::optional<std::string> portUuid(const std::string& name) const;
  std::optional<std::string> interfaceUuid(const std::string& name) const;
  std::optional<std::string> mirrorUuid(const std::string& name) const;
  // The bridge holding a port (by port uuid).
  std::optional<std::string> bridgeOfPort(const std::string& portUuid) const;
  std::optional<std::string> bridgeOfMirror(const std::string& mirrorUuid) const;
  // Interface uuids of a port.
  std::vector<std::string> interfacesOf(const std::string& portUuid) const;
  std::string nameOf(const std::string& table, const std::string& uuid) const;

 private:
  std::map<std::string, std::map<std::string, Json>> tables_;
  std::string root_;
  std::map<std::string, std::string> bridges_, ports_, interfaces_, mirrors_;  // name -> uuid
  std::map<std::string, std::string> portBridge_, mirrorBridge_;             // uuid -> bridge uuid
};

// The transaction reading every table above in one round trip.
Json selectAll();

}  // namespace vnetplan::ovs
