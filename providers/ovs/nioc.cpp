// NIOC on OVS: the Switch's `nioc` becomes a linux-htb QoS on its uplink port with one Queue per traffic class;
// a port's class (its own niocClass, else its PortGroup's) becomes an OpenFlow flow `in_port=P ->
// set_queue:Q, NORMAL` (openflow.cpp), since OVSDB cannot classify traffic.
//
// virtualmachine is queue 0, the queue linux-htb gives every packet no flow classified, and it always exists
// (normal shares unless configured): a VM port without a niocClass is a virtual machine's traffic, as on vSphere,
// never HTB's unconfigured default class (12 kbit/s). Ports in class virtualmachine therefore need no flow.
//
// Shares become HTB guaranteed rates: every class first gets its reservation, and what is left of the uplink is
// divided in proportion to the shares; HTB lends unused bandwidth in proportion to those rates, which is how
// vSphere shares behave under contention. A limit is the class's ceiling (default: the whole uplink).
#include <algorithm>

#include "providers/ovs/kind.h"

namespace vnetplan::ovs {

namespace {

const std::vector<std::string>& classes() {
  static const std::vector<std::string> c{"virtualmachine", "vmotion", "management", "iscsi", "nfs",
                                          "vsan",           "faulttolerance", "hbr", "vdp", "backupnfc"};
  return c;
}

constexpr int64_t kMbps = 1000000;
constexpr int64_t kMaxMbps = 10000000;  // 10 Tbit/s

struct ClassRates {
  int64_t min = 0, max = 0;
};

// The QoS max-rate and per-class queue rates for a Switch's nioc.* attributes (bits per second).
std::map<std::string, ClassRates> rates(const Attrs& a, int64_t* uplinkBps) {
  std::map<std::string, ClassRates> out;
  // Inputs are clamped (10 Tbit/s, shares 1..100) so the arithmetic cannot overflow, whatever was stored.
  auto mbps = [&](const std::string& path, int64_t fallback) {
    return std::clamp<int64_t>(a.getInt(path).value_or(fallback), 0, kMaxMbps) * kMbps;
  };
  auto sharesOf = [&](const std::string& p) { return std::clamp<int64_t>(a.getInt(p + "shares").value_or(50), 1, 100); };
  const int64_t uplink = mbps("nioc.uplinkMbps", 0);
  *uplinkBps = uplink;
  int64_t reserved = 0, shares = 0;
  std::vector<std::string> configured;
  for (const auto& c : classes()) {
    const std::string p = "nioc.classes." + c + ".";
    if (a.subtree(p).empty()) continue;
    configured.push_back(c);
    reserved += mbps(p + "reservationMbps", 0);
    shares += sharesOf(p);
  }
  const int64_t rest = std::max<int64_t>(0, uplink - reserved);
  for (const auto& c : configured) {
    const std::string p = "nioc.classes." + c + ".";
    ClassRates r;
    r.min = mbps(p + "reservationMbps", 0) + (shares > 0 ? rest / shares * sharesOf(p) + rest % shares * sharesOf(p) / shares : 0);
    r.max = a.has(p + "limitMbps") ? mbps(p + "limitMbps", 0) : uplink;
    r.min = std::min(r.min, r.max);
    out[c] = r;
  }
  return out;
}

bool hasVnetplanNioc(const QosRow& qos) { return qos.externalIds.count("vnetplan:nioc") > 0; }

std::string get(const StrMap& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? "" : it->second;
}

// The QoS row on a bridge's uplink port, if any.
const QosRow* uplinkQos(const Snapshot& snap, const BridgeRow& bridge) {
  for (const auto& pu : bridge.ports) {
    const PortRow* port = snap.port(pu);
    if (port && isUplinkPort(*port) && port->qos) return snap.qos(*port->qos);
  }
  return nullptr;
}

}  // namespace

int niocQueueId(const std::string& cls) {
  const auto& c = classes();
  auto it = std::find(c.begin(), c.end(), cls);
  return it == c.end() ? -1 : static_cast<int>(it - c.begin());
}

Json insertNioc(TxnContext& ctx, const Address& addr, const Attrs& a) {
  int64_t uplink = 0;
  auto r = rates(a, &uplink);
  Json queues = Json::array();
  for (const auto& [cls, rate] : r) {
    std::map<std::string, std::string> oc{{"min-rate", std::to_string(rate.min)}, {"max-rate", std::to_string(rate.max)}};
    Json q = ctx.txn().insert("Queue",
                              Json{{"other_config", mapOf(oc)}, {"external_ids", ctx.ownedIds(addr, {{"vnetplan:nioc-class", cls}})}},
                              "create NIOC queue " + cls + " of " + addr.name);
    queues.push_back(Json::array({niocQueueId(cls), q}));
  }
  Json config = a.subtree("nioc.").toJson()["nioc"];
  return ctx.txn().insert("QoS",
                          Json{{"type", "linux-htb"},
                               {"other_config", mapOf({{"max-rate", std::to_string(uplink)}})},
                               {"queues", Json::array({"map", queues})},
                               {"external_ids", ctx.ownedIds(addr, {{"vnetplan:nioc", config.dump()}})}},
                          "create NIOC QoS of " + addr.name);
}

void deleteNioc(TxnContext& ctx, const std::string& portUuid, const std::string& qosUuid) {
  const QosRow* qos = ctx.snap().qos(qosUuid);
  if (!qos || !ownedByVnetplan(qos->externalIds)) return;
  // Referential integrity: the port lets go of the QoS first (even a port being removed still holds it here).
  ctx.txn().update("Port", portUuid, Json{{"qos", setOf({})}}, "detach the NIOC QoS from the uplink port");
  ctx.guard("QoS", qosUuid, "NIOC QoS " + qosUuid);
  ctx.txn().remove("QoS", qosUuid, "delete NIOC QoS " + qosUuid);
  for (const auto& [id, qu] : qos->queues) {
    const QueueRow* queue = ctx.snap().queue(qu);
    if (queue && ownedByVnetplan(queue->externalIds)) ctx.txn().remove("Queue", qu, "delete NIOC queue " + std::to_string(id));
  }
}

void niocAttrs(const Snapshot& snap, const std::string& qosUuid, Attrs& a) {
  const QosRow* qos = snap.qos(qosUuid);
  if (!qos) return;
  auto it = qos->externalIds.find("vnetplan:nioc");
  Attrs config = it == qos->externalIds.end() ? Attrs() : parseSettings(it->second);
  if (config.empty()) {  // a QoS vnetplan did not make (or a damaged one): visible, so the plan replaces it
    a.set("ovs.uplinkQos", qos->type.empty() ? "?" : printable(qos->type, 40));
    return;
  }
  Attrs declared;
  for (const auto& [k, v] : config.values()) declared.set("nioc." + k, v);
  for (const auto& [k, v] : declared.values()) a.set(k, v);
  // What the rows hold must still be what that configuration makes; anything else is drift.
  int64_t uplink = 0;
  auto want = rates(declared, &uplink);
  if (qos->type != "linux-htb" || get(qos->otherConfig, "max-rate") != std::to_string(uplink))
    a.set("ovs.niocRates.qos", qos->type + " max-rate=" + get(qos->otherConfig, "max-rate"));
  for (const auto& [cls, rate] : want) {
    auto q = qos->queues.find(niocQueueId(cls));
    const QueueRow* row = q == qos->queues.end() ? nullptr : snap.queue(q->second);
    if (!row) {
      a.set("ovs.niocRates." + cls, "queue missing");
      continue;
    }
    const std::string min = get(row->otherConfig, "min-rate"), max = get(row->otherConfig, "max-rate");
    if (min != std::to_string(rate.min) || max != std::to_string(rate.max))
      a.set("ovs.niocRates." + cls, "min-rate=" + min + " max-rate=" + max);
  }
  if (qos->queues.size() != want.size()) a.set("ovs.niocRates.queues", static_cast<int64_t>(qos->queues.size()));
}

void sweepNioc(TxnContext& ctx) {
  std::set<std::string> usedQos, usedQueues;
  for (const auto& [pu, port] : ctx.snap().ports())
    if (port.qos) usedQos.insert(*port.qos);
  for (const auto& [qu, qos] : ctx.snap().qosRows())
    for (const auto& [id, queue] : qos.queues) usedQueues.insert(queue);
  auto ours = [&](const StrMap& ids) {
    auto it = ids.find(kOwnerKey);
    return it != ids.end() && it->second == ctx.target();
  };
  for (const auto& [qu, qos] : ctx.snap().qosRows()) {
    if (usedQos.count(qu) || !ours(qos.externalIds)) continue;
    ctx.guard("QoS", qu, "NIOC QoS " + qu);
    ctx.txn().remove("QoS", qu, "delete an orphaned NIOC QoS of this target");
    for (const auto& [id, queue] : qos.queues) usedQueues.erase(queue);  // its queues go too, below
  }
  for (const auto& [qu, queue] : ctx.snap().queueRows())
    if (!usedQueues.count(qu) && ours(queue.externalIds))
      ctx.txn().remove("Queue", qu, "delete an orphaned NIOC queue of this target");
}

std::vector<std::string> niocBridges(const Snapshot& snap) {
  std::vector<std::string> out;
  for (const auto& [bu, br] : snap.bridges())
    if (const QosRow* qos = uplinkQos(snap, br); qos && hasVnetplanNioc(*qos)) out.push_back(br.name);
  return out;
}

std::map<std::string, ExpectedFlow> expectedNiocFlows(const Snapshot& snap) {
  std::map<std::string, ExpectedFlow> out;
  for (const auto& [bu, br] : snap.bridges()) {
    const QosRow* qos = uplinkQos(snap, br);
    if (!qos || !hasVnetplanNioc(*qos)) continue;
    std::set<std::string> configured;
    for (const auto& c : classes())
      if (qos->queues.count(niocQueueId(c))) configured.insert(c);
    for (const auto& pu : br.ports) {
      const PortRow* port = snap.port(pu);
      if (!port) continue;
      std::string cls = get(port->externalIds, kNiocClassKey);
      if (std::string group = get(port->externalIds, kPortGroupKey); cls.empty() && !group.empty()) {
        cls = parseSettings(get(br.externalIds, kGroupPrefix + group)).getString("niocClass").value_or("");
      }
      // virtualmachine is queue 0, where unclassified packets go: no flow.
      if (cls.empty() || cls == "virtualmachine" || !configured.count(cls)) continue;
      ExpectedFlow f;
      f.bridge = br.name;
      f.queue = static_cast<uint32_t>(niocQueueId(cls));
      if (!port->interfaces.empty())
        if (const InterfaceRow* iface = snap.interface(port->interfaces[0])) f.ofport = iface->ofport.value_or(-1);
      out[port->name] = f;
    }
  }
  return out;
}

}  // namespace vnetplan::ovs
