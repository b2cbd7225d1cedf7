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

using StrMap = std::map<std::string, std::string>;

// Typed models of the rows vnetplan reads (the columns of tableColumns(); references are uuids).
struct BridgeRow {
  std::string uuid, name, datapathType;
  std::optional<std::string> failMode, netflow, sflow;
  bool stp = false, rstp = false;
  std::vector<std::string> ports, mirrors;
  StrMap otherConfig, externalIds;
};
struct PortRow {
  std::string uuid, name;
  std::vector<std::string> interfaces;
  std::optional<int64_t> tag;
  std::vector<int64_t> trunks;
  std::optional<std::string> vlanMode, bondMode, lacp, qos;
  int64_t bondUpdelay = 0, bondDowndelay = 0;
  StrMap otherConfig, externalIds;
};
struct InterfaceRow {
  std::string uuid, name, type;
  StrMap options, otherConfig, externalIds;
  std::optional<int64_t> mtuRequest, ofportRequest, ofport;
  std::optional<std::string> mac, error;
  int64_t policingRate = 0, policingBurst = 0;
  int64_t ifindex = 0;  // the kernel device's, in ovs-vswitchd's namespace (0: none, or not set up yet)
};
struct MirrorRow {
  std::string uuid, name;
  std::vector<std::string> selectSrcPort, selectDstPort;
  std::optional<std::string> outputPort;
  bool selectAll = false;
  StrMap externalIds;
};
struct QosRow {
  std::string uuid, type;
  StrMap otherConfig, externalIds;
  std::map<int64_t, std::string> queues;  // queue id -> Queue uuid
};
struct QueueRow {
  std::string uuid;
  StrMap otherConfig, externalIds;
};
struct NetFlowRow {
  std::string uuid;
  std::vector<std::string> targets;
  int64_t activeTimeout = 0;
};
struct SflowRow {
  std::string uuid;
  std::vector<std::string> targets;
  std::optional<int64_t> sampling, polling;
};

// Rows of one observe, typed; the raw datums are kept for `wait` guards (compared exactly as read).
class Snapshot {
 public:
  static Result<Snapshot> fromSelect(const Json& results);

  const Json* row(const std::string& table, const std::string& uuid) const;  // raw columns
  const std::map<std::string, Json>& rows(const std::string& table) const;

  const std::map<std::string, BridgeRow>& bridges() const { return bridgeRows_; }
  const std::map<std::string, PortRow>& ports() const { return portRows_; }
  const std::map<std::string, InterfaceRow>& interfaces() const { return ifaceRows_; }
  const std::map<std::string, MirrorRow>& mirrors() const { return mirrorRows_; }
  const std::map<std::string, QosRow>& qosRows() const { return qosRows_; }
  const std::map<std::string, QueueRow>& queueRows() const { return queueRows_; }
  const BridgeRow* bridge(const std::string& uuid) const;
  const PortRow* port(const std::string& uuid) const;
  const InterfaceRow* interface(const std::string& uuid) const;
  const MirrorRow* mirror(const std::string& uuid) const;
  const QosRow* qos(const std::string& uuid) const;
  const QueueRow* queue(const std::string& uuid) const;
  const NetFlowRow* netflow(const std::string& uuid) const;
  const SflowRow* sflow(const std::string& uuid) const;
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
  std::map<std::string, BridgeRow> bridgeRows_;
  std::map<std::string, PortRow> portRows_;
  std::map<std::string, InterfaceRow> ifaceRows_;
  std::map<std::string, MirrorRow> mirrorRows_;
  std::map<std::string, QosRow> qosRows_;
  std::map<std::string, QueueRow> queueRows_;
  std::map<std::string, NetFlowRow> netflowRows_;
  std::map<std::string, SflowRow> sflowRows_;
  std::string root_;
  std::map<std::string, std::string> bridges_, ports_, interfaces_, mirrors_;  // name -> uuid
  std::map<std::string, std::string> portBridge_, mirrorBridge_;             // uuid -> bridge uuid
};

// The transaction reading every table above in one round trip.
Json selectAll();

}  // namespace vnetplan::ovs
