// The per-kind hooks of the ovs provider. Each kind (Switch = Bridge, Port = Port + Interface, PortGroup =
// VLAN settings kept on the Bridge and applied to member ports, Mirror = Mirror) is one KindOps: it turns the
// snapshot of one observe into objects, and turns one plan step into OVSDB operations added to the target's
// single transaction (TxnContext).
#pragma once
#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "providers/ovs/db.h"
#include "providers/ovs/ovsdb.h"
#include "reconciler/kind_table.h"
#include "reconciler/provider.h"

namespace vnetplan::ovs {

// Everything one target's transaction is built from: the observed rows, the operations so far, and the rows
// this transaction creates (so a Port created in the same transaction as its Bridge can refer to it).
class TxnContext {
 public:
  TxnContext(const Snapshot& snap, std::string target) : snap_(snap), target_(std::move(target)), txn_("Open_vSwitch") {}

  const Snapshot& snap() const { return snap_; }
  Txn& txn() { return txn_; }
  const std::string& target() const { return target_; }

  // external_ids for a row vnetplan creates for `addr` (plus the user's own keys).
  Json ownedIds(const Address& addr, const std::map<std::string, std::string>& user = {}) const;

  // A reference to a bridge / port by name: an existing row's uuid or the named-uuid of a row inserted
  // earlier in this transaction; nullopt if neither.
  std::optional<Json> bridgeRef(const std::string& name) const;
  std::optional<Json> portRef(const std::string& name) const;
  void addedBridge(const std::string& name, Json ref) { newBridges_[name] = std::move(ref); }
  void addedPort(const std::string& name, Json ref) { newPorts_[name] = std::move(ref); }
  // A port (and its interfaces) this transaction removes: its name may be created again in the same
  // transaction (a replace), so it is not guarded as absent.
  void removedPort(const std::string& name);
  // A bridge this transaction deletes: its name, its ports and their interfaces are free again.
  void removedBridge(const std::string& name);
  void removedMirror(const std::string& name) { goneRows_.insert("Mirror/" + name); }
  bool portGone(const std::string& name) const { return goneRows_.count("Port/" + name) > 0; }

  // Adds `ref` to (or removes it from) a set column of a bridge (ports, mirrors), whether the bridge exists
  // or is inserted by this transaction.
  Status bridgeSetInsert(const std::string& bridge, const std::string& column, const Json& ref, const std::string& label);
  Status bridgeSetDelete(const std::string& bridge, const std::string& column, const Json& ref, const std::string& label);

  // Guards an existing row: the transaction fails (stale) unless its managed columns still hold what the
  // observe saw. Each row is guarded once.
  void guard(const std::string& table, const std::string& uuid, const std::string& what);
  // Guards that no row named `name` exists in `table` (nobody created it since the observe). The waits are
  // emitted by finish(), once every step is in, so a name freed by any step of the transaction is not guarded.
  void guardAbsent(const std::string& table, const std::string& name, const std::string& what);
  void finish();

  // Port group VLAN settings as this transaction leaves them: from a PortGroup step of this transaction,
  // else from the bridge's external_ids. nullopt = group unknown.
  struct Group {
    std::string bridge;
    Attrs attrs;  // "vlan" / "vlan.trunk"
  };
  std::optional<Group> group(const std::string& name) const;
  void setGroup(const std::string& name, std::optional<Group> g) { groups_[name] = std::move(g); }

 private:
  const Snapshot& snap_;
  std::string target_;
  Txn txn_;
  std::map<std::string, Json> newBridges_, newPorts_;
  std::set<std::string> goneRows_;
  std::set<std::string> guarded_;
  std::vector<std::array<std::string, 3>> absent_;  // table, name, what
  std::map<std::string, std::optional<Group>> groups_;
};

// The kinds of the ovs provider, one row each (reconciler/kind_table.h): observe reads the target's snapshot,
// and a step becomes operations added to the target's single transaction.
struct OvsLive {
  const Snapshot& snap;
  const std::string& target;
};
using KindOps = KindHooks<const OvsLive, TxnContext>;
using OvsKinds = KindTable<const OvsLive, TxnContext>;

extern const KindOps kSwitchOps;
extern const KindOps kPortOps;
extern const KindOps kPortGroupOps;
extern const KindOps kMirrorOps;
const OvsKinds& ovsKinds();

// ---- plan-time field checks shared by the kinds (fields.cpp)

// "ovs: ADDR: field PATH is not supported by the ovs provider: WHY".
void unsupported(const FieldCheck& fc, const std::string& why);
// Fields every ovs kind accepts: policies with their OVS meaning (security, teaming), ovs.externalIds.
const std::vector<FieldRule>& commonOvsFields();
// vlan / vlan.trunk.
void checkVlanField(const FieldCheck& fc);
// What an OVS object name must not contain ("" when fine).
std::string ovsNameProblem(const std::string& n);

// ---- shared values (values.cpp)

// The ownership marker of a row, from its external_ids.
bool ownedByVnetplan(const StrMap& externalIds);
// The user's own keys of external_ids (vnetplan:* keys removed).
StrMap userKeys(const StrMap& externalIds);
// Writes a map column's entries as attributes below `prefix` ("ovs.otherConfig").
void mapToAttrs(const std::map<std::string, std::string>& m, const std::string& prefix, Attrs& a);
// Collects the attributes below `prefix` as a string map.
std::map<std::string, std::string> attrsToMap(const Attrs& a, const std::string& prefix);
bool changed(const Step& step, const std::string& path);  // exact path or anything below it
// The Port carrying a Switch's uplinks (external_ids vnetplan:role=uplink): part of the Switch, not a Port.
bool isUplinkPort(const PortRow& port);
// The name of the Port that carries a Switch's uplinks (a bond when there are several NICs).
std::string uplinkPortName(const std::string& switchName, const std::vector<std::string>& nics);

// VLAN settings (vlan.cpp): "vlan": N | "vlan.trunk": [..] <-> Port tag / trunks / vlan_mode.
struct VlanColumns {
  Json tag = setOf({});
  Json trunks = setOf({});
  Json vlanMode = setOf({});
};
VlanColumns vlanColumns(const Attrs& a);
// Reads a Port row's VLAN columns into attributes ("vlan", "vlan.trunk", "ovs.vlanMode" when unusual).
void vlanAttrs(const PortRow& port, Attrs& out);
// Canonical trunk list: sorted ids and "a-b" ranges; nullopt (with `why`) if not a valid list of VLANs.
std::optional<Json> canonicalTrunks(const Json& list, std::string* why);
std::vector<int64_t> trunkIds(const Json& canonical);
// The VLAN attributes of `a` (the keys "vlan", "vlan.trunk").
Attrs vlanOnly(const Attrs& a);

// The settings a PortGroup keeps in its bridge's external_ids: its VLAN and NIOC class.
Attrs groupSettings(const Attrs& a);
// Settings JSON read back from external_ids (a port group's, NIOC's): bounded in size and depth, since anyone
// with access to the database can write these keys; anything else reads as empty.
Attrs parseSettings(const std::string& text);
inline constexpr const char* kNiocClassKey = "vnetplan:nioc-class";  // on a Port: its explicit NIOC class

// ---- NIOC (nioc.cpp): a linux-htb QoS on the uplink port, one Queue per traffic class, and OpenFlow
// set_queue flows classifying each member port's traffic.
int niocQueueId(const std::string& cls);  // 0 (virtualmachine, the default queue)..9; -1 if unknown
// Inserts the QoS and Queue rows for a Switch's `nioc.*` attributes; returns the QoS reference.
Json insertNioc(TxnContext& ctx, const Address& addr, const Attrs& a);
// Deletes a QoS row and its Queues if vnetplan owns them (both are root tables: nothing else removes them).
void deleteNioc(TxnContext& ctx, const std::string& portUuid, const std::string& qosUuid);
// Reads a QoS row back into `nioc.*` attributes (and the out-of-band differences of its rates).
void niocAttrs(const Snapshot& snap, const std::string& qosUuid, Attrs& a);
// Per port name: the queue flow the port should have (ports of bridges whose uplink has a vnetplan NIOC QoS).
struct ExpectedFlow {
  std::string bridge;
  int64_t ofport = -1;  // -1: not assigned yet
  uint32_t queue = 0;
};
std::map<std::string, ExpectedFlow> expectedNiocFlows(const Snapshot& snap);
// Deletes this target's own QoS and Queue rows that nothing references any more (root tables are not
// garbage-collected: an uplink port or bridge removed by hand would leave them forever).
void sweepNioc(TxnContext& ctx);
// Bridges whose uplink carries a vnetplan NIOC QoS.
std::vector<std::string> niocBridges(const Snapshot& snap);

}  // namespace vnetplan::ovs
