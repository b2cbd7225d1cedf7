#include "providers/ovs/session.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "providers/ovs/kind.h"
#include "providers/ovs/openflow.h"

namespace vnetplan::ovs {

namespace {

constexpr const char* kDefaultDb = "unix:/var/run/openvswitch/db.sock";
constexpr int kStaleRetries = 3;

long envMs(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return (end && *end == '\0' && n >= 0) ? n : fallback;
}

// A step that sets or clears a NIOC setting (the flows are synced after its transaction).
bool touchesNioc(const std::vector<Step>& steps) {
  for (const auto& s : steps)
    for (const Attrs* a : {&s.before, &s.after})
      for (const auto& [path, v] : a->values())
        if (path == "niocClass" || path.rfind("nioc.", 0) == 0) return true;
  return false;
}

}  // namespace

Result<std::unique_ptr<OvsSession>> OvsSession::connect(const Target& target, Deadline deadline) {
  const std::string db = target.spec.getString("db").value_or(kDefaultDb);
  auto remote = parseRemote(db);
  if (!remote) return err("ovs: db " + remote.error().message);
  auto timeout = std::chrono::milliseconds(envMs("VNETPLAN_OVSDB_TIMEOUT_MS", 30000));
  // Each request keeps its own bound; none may run past the target's deadline.
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  timeout = std::max(std::chrono::milliseconds(1), std::min(timeout, left));
  auto conn = Connection::open(*remote, timeout);
  if (!conn) return err("ovs: " + conn.error().message);
  std::unique_ptr<OvsSession> s(new OvsSession());
  s->target_ = target.name;
  s->conn_ = std::move(*conn);
  s->host_ = std::make_unique<HostPorts>(target.spec.getString("netns").value_or(""));
  if (Status st = s->checkSchema(); !st) return err("ovs: " + st.error().message);
  return s;
}

Result<Json> OvsSession::call(const std::string& method, Json params) {
  if (conn_->broken()) {
    // After a protocol error or a lost connection the stream position is unknown: start a new connection (the
    // outcome of whatever was in flight is learnt by observing again).
    auto fresh = Connection::open(conn_->remote(), conn_->remoteTimeout());
    if (!fresh) return fresh.error();
    conn_ = std::move(*fresh);
    if (Status s = checkSchema(); !s) return s.error();
  }
  return conn_->call(method, std::move(params));
}

Status OvsSession::checkSchema() {
  auto schema = conn_->call("get_schema", Json::array({"Open_vSwitch"}));
  if (!schema) return schema.error();
  const Json& s = *schema;
  const std::string where = "ovsdb " + conn_->remote().str();
  if (!s.is_object() || s.value("name", Json()) != "Open_vSwitch" || !s.contains("tables") || !s["tables"].is_object())
    return err(where + ": get_schema did not return the Open_vSwitch schema");
  const Json version = s.value("version", Json());
  std::string v = version.is_string() ? version.get<std::string>() : "";
  int major = -1;
  if (!v.empty() && v.find_first_not_of("0123456789.") == std::string::npos) major = std::atoi(v.c_str());
  if (major != kSchemaMajor)
    return err(where + ": unexpected Open_vSwitch schema version " +
               (v.empty() ? printable(version.dump(), 60) + " (not a version string)" : "'" + printable(v, 60) + "'") +
               "; vnetplan speaks version " + std::to_string(kSchemaMajor) + ".x (Open vSwitch 2.13 and later)");
  const Json& tables = s["tables"];
  for (const auto& t : tableColumns()) {
    if (!tables.contains(t.table) || !tables[t.table].is_object() || !tables[t.table].contains("columns"))
      return err(where + ": the schema (version " + v + ") has no table " + t.table);
    for (const auto& c : t.read)
      if (!tables[t.table]["columns"].contains(c))
        return err(where + ": the schema (version " + v + ") has no column " + t.table + "." + c);
  }
  return {};
}

Result<Snapshot> OvsSession::read() {
  auto reply = call("transact", selectAll());
  if (!reply) return reply.error();
  auto snap = Snapshot::fromSelect(*reply);
  if (!snap) return err("ovsdb " + conn_->remote().str() + ": " + snap.error().message);
  return snap;
}

Result<Observation> OvsSession::observe() {
  auto snap = read();
  if (!snap) return err("ovs: " + snap.error().message);
  snap_ = std::move(*snap);
  Observation obs;
  const OvsLive live{*snap_, target_};
  ovsKinds().observe(live, obs);
  annotateFlows(obs);
  if (Status st = host_->observe(*snap_, obs); !st) return err("ovs: " + st.error().message);
  lastObs_ = obs;
  return obs;
}

Status OvsSession::apply(const Step& step) {
  BatchResult r = applyBatch({step}, nullptr);
  return r.status;
}

bool OvsSession::stillApplies(const std::vector<Step>& steps, const Observation& before, const Observation& now) const {
  // Every object seen before must be as it was (a port group member re-tagged by someone else is not a step
  // of this plan, but the plan was made from its old state); new objects nobody planned are fine.
  for (const auto& [addr, obj] : before.objects) {
    auto it = now.objects.find(addr);
    if (it == now.objects.end() || !(it->second.attrs == obj.attrs)) return false;
  }
  // Deleting a bridge deletes whatever is on it: then no new object at all may have appeared meanwhile (a VM
  // port added after the plan would go with the bridge without ever having been in a plan).
  for (const auto& step : steps)
    if (step.action == StepAction::Delete && step.addr.kind == Kind::Switch && now.objects.size() != before.objects.size())
      return false;
  for (const auto& step : steps) {
    auto it = now.objects.find(step.addr);
    if (step.action == StepAction::Create) {
      if (it != now.objects.end()) return false;
    } else if (it == now.objects.end() || !(it->second.attrs == step.before)) {
      return false;
    }
  }
  return true;
}

TargetSession::BatchResult OvsSession::applyBatch(const std::vector<Step>& steps,
                                                const std::function<void(size_t)>& done) {
  const long failAt = failAt_;
  failAt_ = -1;
  if (steps.empty()) return {};
  const std::string who = "ovs: ";
  for (int attempt = 1;; ++attempt) {
    if (!snap_) {
      auto obs = observe();
      if (!obs) return {obs.error(), 0, true};
    }
    const std::vector<std::string> niocBefore = niocBridges(*snap_);
    TxnContext ctx(*snap_, target_);
    for (size_t i = 0; i < steps.size(); ++i) {
      ctx.txn().setStep(static_cast<long>(i));
      if (Status s = ovsKinds().apply(ctx, steps[i]); !s)
        return {err(who + s.error().message), i, true};
      if (static_cast<long>(i) == failAt) ctx.txn().abort("injected failure at step " + std::to_string(i + 1));
    }
    ctx.txn().setStep(-1);
    sweepNioc(ctx);
    ctx.finish();
    // Ask ovs-vswitchd to report when it has applied this configuration (as ovs-vsctl does).
    ctx.txn().mutate("Open_vSwitch", snap_->rootUuid(), Json::array({Json::array({"next_cfg", "+=", 1})}),
                     "request reconfiguration");
    ctx.txn().select("Open_vSwitch", {"next_cfg"}, "read next_cfg");
    Json params = ctx.txn().params();
    spdlog::debug("target={} ovs: one transaction of {} operations for {} steps", target_, ctx.txn().size(), steps.size());
    auto reply = call("transact", params);
    snap_.reset();  // whatever happened, the next step starts from fresh rows
    if (!reply) return {err(who + reply.error().message + " (the transaction's outcome is unknown; it is re-observed)"), 0};
    Txn::Outcome o = ctx.txn().interpret(*reply);
    if (o.ok) {
      int64_t nextCfg = -1;
      if (!o.results.empty() && o.results.back().is_object() && o.results.back().contains("rows")) {
        const Json& rows = o.results.back()["rows"];
        if (rows.is_array() && !rows.empty() && rows[0].is_object() && rows[0].contains("next_cfg"))
          nextCfg = intOf(rows[0]["next_cfg"]).value_or(-1);
      }
      BatchResult settled = settle(nextCfg, steps);
      if (!settled.status) return settled;
      if (!niocBefore.empty() || touchesNioc(steps)) {
        auto fresh = read();
        if (!fresh) return {err(who + fresh.error().message), 0};
        std::set<std::string> bridges(niocBefore.begin(), niocBefore.end());
        for (const auto& b : niocBridges(*fresh)) bridges.insert(b);
        snap_ = std::move(*fresh);
        if (Status s = syncFlows(std::vector<std::string>(bridges.begin(), bridges.end())); !s)
          return {err(who + s.error().message), 0};
        snap_.reset();
      }
      if (BatchResult host = applyHostPorts(steps); !host.status) return host;
      if (done)
        for (size_t i = 0; i < steps.size(); ++i) done(i);
      return {};
    }
    size_t index = o.failedStep >= 0 ? static_cast<size_t>(o.failedStep) : 0;
    if (!o.stale) return {err(who + "transaction failed, nothing was changed: " + o.message), index, true};
    // A guard failed: something changed since the observe. Retry against fresh rows if what the steps touch is
    // still as they expect; otherwise the plan is stale.
    const Observation before = lastObs_;
    auto now = observe();
    if (!now) return {now.error(), index, true};
    if (attempt >= kStaleRetries || !stillApplies(steps, before, *now))
      return {err(who + "stale: " + o.message + " failed; the target was changed by someone else since it was "
                        "observed, nothing was changed. Run plan again."),
              index, true};
    spdlog::warn("target={} ovs: {} changed concurrently (not an object of this plan); retrying ({}/{})", target_,
                 o.message, attempt, kStaleRetries);
  }
}

TargetSession::BatchResult OvsSession::applyHostPorts(const std::vector<Step>& steps) {
  if (std::none_of(steps.begin(), steps.end(), HostPorts::touches)) return {};
  auto fresh = read();  // the devices' ifindexes, as ovs-vswitchd set them up after the commit
  if (!fresh) return {err("ovs: " + fresh.error().message), 0};
  for (size_t i = 0; i < steps.size(); ++i)
    if (HostPorts::touches(steps[i]))
      if (Status s = host_->apply(*fresh, steps[i]); !s) return {err("ovs: " + s.error().message), i};
  return {};
}

Result<std::string> OvsSession::mgmtSocket(const std::string& bridge) const {
  const Remote& r = conn_->remote();
  if (!r.unix)
    return err("NIOC classification needs ovs-vswitchd's OpenFlow management socket, reachable only on the host: "
               "use a unix: db remote");
  std::string dir = r.path.substr(0, r.path.rfind('/') == std::string::npos ? 0 : r.path.rfind('/'));
  return (dir.empty() ? std::string(".") : dir) + "/" + bridge + ".mgmt";
}

void OvsSession::annotateFlows(Observation& obs) {
  auto bridges = niocBridges(*snap_);
  if (bridges.empty()) return;
  auto expected = expectedNiocFlows(*snap_);
  // ofport -> port name, per bridge, for flows that should not be there.
  for (const auto& bridge : bridges) {
    auto sock = mgmtSocket(bridge);
    auto ch = sock ? OpenFlowChannel::open(*sock, conn_->remoteTimeout()) : Result<std::unique_ptr<OpenFlowChannel>>(sock.error());
    auto flows = ch ? (*ch)->queueFlows() : Result<std::vector<QueueFlow>>(ch.error());
    if (!flows) {
      spdlog::warn("target={} ovs: cannot read the NIOC flows of bridge {}: {}", target_, bridge, flows.error().message);
      continue;
    }
    std::map<uint32_t, uint32_t> actual;
    for (const auto& f : *flows) actual[f.inPort] = f.queue;
    std::map<int64_t, std::string> portAt;
    for (const auto& [name, want] : expected) {
      if (want.bridge != bridge || want.ofport < 0) continue;
      portAt[want.ofport] = name;
      auto it = actual.find(static_cast<uint32_t>(want.ofport));
      auto obj = obs.objects.find(Address{target_, Kind::Port, name});
      if (obj == obs.objects.end()) continue;
      if (it == actual.end()) obj->second.attrs.set("ovs.niocFlow", "missing");
      else if (it->second != want.queue) obj->second.attrs.set("ovs.niocFlow", "queue " + std::to_string(it->second));
    }
    // A flow for a port that should have none (OpenFlow port numbers are per bridge: only this bridge's ports).
    const BridgeRow* br = snap_->bridgeUuid(bridge) ? snap_->bridge(*snap_->bridgeUuid(bridge)) : nullptr;
    for (const auto& [ofport, queue] : actual) {
      if (portAt.count(ofport) || !br) continue;
      for (const auto& pu : br->ports) {
        const PortRow* port = snap_->port(pu);
        const InterfaceRow* iface = port && !port->interfaces.empty() ? snap_->interface(port->interfaces[0]) : nullptr;
        if (!iface || iface->ofport != static_cast<int64_t>(ofport)) continue;
        auto obj = obs.objects.find(Address{target_, Kind::Port, port->name});
        if (obj != obs.objects.end()) obj->second.attrs.set("ovs.niocFlow", "queue " + std::to_string(queue));
      }
    }
  }
}

Status OvsSession::syncFlows(const std::vector<std::string>& bridges) {
  auto expected = expectedNiocFlows(*snap_);
  for (const auto& bridge : bridges) {
    if (!snap_->bridgeUuid(bridge)) continue;  // deleted: its flows went with it
    std::vector<QueueFlow> want;
    for (const auto& [name, f] : expected) {
      if (f.bridge != bridge) continue;
      if (f.ofport < 0) return err("port " + name + " has no OpenFlow port number yet (is ovs-vswitchd running?)");
      want.push_back(QueueFlow{static_cast<uint32_t>(f.ofport), f.queue});
    }
    std::sort(want.begin(), want.end());
    auto sock = mgmtSocket(bridge);
    if (!sock) return sock.error();
    auto ch = OpenFlowChannel::open(*sock, conn_->remoteTimeout());
    if (!ch) return ch.error();
    auto have = (*ch)->queueFlows();
    if (!have) return have.error();
    if (*have == want) continue;
    spdlog::debug("target={} ovs: bridge {}: writing {} NIOC flow(s)", target_, bridge, want.size());
    if (Status s = (*ch)->replaceQueueFlows(want, *have); !s) return s;
  }
  return {};
}

TargetSession::BatchResult OvsSession::settle(int64_t nextCfg, const std::vector<Step>& steps) {
  const long settleMs = envMs("VNETPLAN_OVS_SETTLE_MS", 10000);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(settleMs);
  const Json query = Json::array({"Open_vSwitch",
                                  Json{{"op", "select"}, {"table", "Open_vSwitch"}, {"where", Json::array()}, {"columns", {"cur_cfg"}}},
                                  Json{{"op", "select"}, {"table", "Interface"}, {"where", Json::array()}, {"columns", {"name", "error"}}}});
  if (nextCfg < 0 || settleMs == 0) return {};
  for (;;) {
    auto reply = call("transact", query);
    if (!reply) return {err("ovs: " + reply.error().message), 0};
    const Json& r = *reply;
    int64_t cur = -1;
    if (r.is_array() && r.size() >= 2 && r[0].is_object() && r[0].contains("rows") && r[0]["rows"].is_array() &&
        !r[0]["rows"].empty() && r[0]["rows"][0].is_object() && r[0]["rows"][0].contains("cur_cfg"))
      cur = intOf(r[0]["rows"][0]["cur_cfg"]).value_or(-1);
    if (cur >= nextCfg) {
      // Applied: interfaces ovs-vswitchd could not set up fail the step that made them.
      std::map<std::string, std::string> errors;
      if (r[1].is_object() && r[1].contains("rows") && r[1]["rows"].is_array())
        for (const auto& row : r[1]["rows"])
          if (row.is_object() && row.contains("name") && row["name"].is_string() && row.contains("error"))
            if (auto e = stringOf(row["error"]); e && !e->empty()) errors[row["name"].get<std::string>()] = *e;
      for (size_t i = 0; i < steps.size(); ++i) {
        const Step& s = steps[i];
        if (s.action == StepAction::Delete) continue;
        std::vector<std::string> names;
        if (s.addr.kind == Kind::Port || s.addr.kind == Kind::Switch) names.push_back(s.addr.name);
        if (s.addr.kind == Kind::Switch)
          for (const auto& nic : s.after.getStrings("uplinks.nics")) names.push_back(nic);
        for (const auto& n : names)
          if (auto it = errors.find(n); it != errors.end())
            return {err("ovs: ovs-vswitchd could not set up interface " + printable(n) + ": " +
                        printable(it->second)),
                    i};
      }
      return {};
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::warn("target={} ovs: ovs-vswitchd has not applied the change within {} ms (is it running?); the "
                   "database holds the new configuration",
                   target_, settleMs);
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace vnetplan::ovs
