// Mirror = a row of the OVS Mirror table on the switch's bridge: source ports (select_src_port = frames the
// switch receives on them = ingress, select_dst_port = frames it sends out of them = egress) copied to an
// output port.
#include <algorithm>

#include "providers/ovs/kind.h"

namespace vnetplan::ovs {

namespace {

std::vector<std::string> portNames(const Snapshot& snap, const std::vector<std::string>& uuids) {
  std::vector<std::string> out;
  for (const auto& u : uuids) out.push_back(snap.nameOf("Port", u));
  std::sort(out.begin(), out.end());
  return out;
}

void observeMirrors(const OvsLive& live, Observation& obs) {
  const Snapshot& snap = live.snap;
  const std::string& target = live.target;
  for (const auto& [buuid, br] : snap.bridges()) {
    for (const auto& muuid : br.mirrors) {
      const MirrorRow* row = snap.mirror(muuid);
      // Of two mirrors with one name, the one the snapshot indexes (vnetplan's own, if any) is the object.
      if (!row || snap.mirrorUuid(row->name) != muuid) continue;
      ObservedObject o;
      o.addr = Address{target, Kind::Mirror, row->name};
      o.taggedByVnetplan = ownedByVnetplan(row->externalIds);
      o.identity.id = muuid;  // the row's uuid
      Attrs& a = o.attrs;
      a.set("switch", br.name);
      auto src = portNames(snap, row->selectSrcPort);
      auto dst = portNames(snap, row->selectDstPort);
      if (src == dst) {
        a.set("source.ports", Json(src));
        a.set("source.direction", "both");
      } else if (dst.empty()) {
        a.set("source.ports", Json(src));
        a.set("source.direction", "ingress");
      } else if (src.empty()) {
        a.set("source.ports", Json(dst));
        a.set("source.direction", "egress");
      } else {  // different ports per direction: not something vnetplan writes
        a.set("ovs.selectSrcPorts", Json(src));
        a.set("ovs.selectDstPorts", Json(dst));
      }
      if (row->outputPort) a.set("destination.port", snap.nameOf("Port", *row->outputPort));
      if (row->selectAll) a.set("ovs.selectAll", true);
      obs.objects[o.addr] = std::move(o);
    }
  }
}

Result<Json> mirrorRow(TxnContext& ctx, const Step& step) {
  const Attrs& a = step.after;
  std::vector<Json> ports;
  for (const auto& p : a.getStrings("source.ports")) {
    auto ref = ctx.portRef(p);
    if (!ref) return err("source port " + p + " does not exist");
    ports.push_back(*ref);
  }
  std::string dir = a.getString("source.direction").value_or("both");
  auto dest = a.getString("destination.port").value_or("");
  auto out = ctx.portRef(dest);
  if (!out) return err("destination port " + dest + " does not exist");
  return Json{{"select_src_port", setOf(dir == "egress" ? std::vector<Json>{} : ports)},
              {"select_dst_port", setOf(dir == "ingress" ? std::vector<Json>{} : ports)},
              {"output_port", *out},
              {"select_all", false},
              {"external_ids", ctx.ownedIds(step.addr)}};
}

Status planMirror(TxnContext& ctx, const Step& step) {
  const std::string& name = step.addr.name;
  auto muuid = ctx.snap().mirrorUuid(name);
  if (step.action == StepAction::Delete) {
    if (!muuid) return {};
    ctx.guard("Mirror", *muuid, "mirror " + name);
    ctx.removedMirror(name);
    auto bridge = ctx.snap().bridgeOfMirror(*muuid);
    if (!bridge) return {};
    return ctx.bridgeSetDelete(ctx.snap().nameOf("Bridge", *bridge), "mirrors", uuidRef(*muuid), "delete mirror " + name);
  }
  auto row = mirrorRow(ctx, step);
  if (!row) return row.error();
  const std::string bridge = step.after.getString("switch").value_or("");
  if (step.action == StepAction::Create) {
    ctx.guardAbsent("Mirror", name, "mirror " + name);
    (*row)["name"] = name;
    Json ref = ctx.txn().insert("Mirror", *row, "create mirror " + name);
    return ctx.bridgeSetInsert(bridge, "mirrors", ref, "add mirror " + name + " to bridge " + bridge);
  }
  if (!muuid) return err("mirror " + name + " no longer exists");
  ctx.guard("Mirror", *muuid, "mirror " + name);
  ctx.txn().update("Mirror", *muuid, *row, "update mirror " + name);
  return {};
}

void mirrorCheck(const Resource& r, const Target&, Diagnostics& diags) {
  auto dest = r.attrs.getString("destination.port");
  auto src = r.attrs.getStrings("source.ports");
  if (dest && std::find(src.begin(), src.end(), *dest) != src.end())
    diags.error(r.loc, "ovs: " + r.addr.str() + ": destination.port " + *dest + " is also a source port", "provider/invalid");
}

KindTraits mirrorTraits() {
  KindTraits t;
  t.kind = Kind::Mirror;
  t.replaceOn = {"switch"};
  t.unorderedLists = {"source.ports"};
  t.defaults = {{"source.direction", "both"}};
  t.exhaustive = true;  // observe reports exactly what vnetplan manages
  return t;
}

const KindTraits kMirrorTraits = mirrorTraits();

}  // namespace

const KindOps kMirrorOps{.kind = Kind::Mirror,
                         .variant = "",
                         .label = "mirror",
                         .traits = &kMirrorTraits,
                         .fields = {{"switch"}, {"source.ports"}, {"source.direction"}, {"destination.port"}},
                         .check = mirrorCheck,
                         .normalize = nullptr,
                         .describe = nullptr,
                         .observe = observeMirrors,
                         .create = planMirror,
                         .update = planMirror,
                         .remove = planMirror};

}  // namespace vnetplan::ovs
