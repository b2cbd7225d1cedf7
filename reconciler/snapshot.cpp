#include "reconciler/snapshot.h"

namespace vnetplan {

Json snapshotToJson(const std::map<std::string, TargetSnapshot>& snapshots) {
  Json out = Json::object();
  for (const auto& [target, snap] : snapshots) {
    Json live = Json::object(), owned = Json::object();
    for (const auto& [addr, obj] : snap.observed.objects) live[addr.str()] = obj.attrs.toJson();
    for (const auto& [addr, o] : snap.owned) {
      if (!o.adopted) {
        owned[addr.str()] = o.lastApplied.toJson();  // the short form: last applied attributes
        continue;
      }
      owned[addr.str()] = Json{{"lastApplied", o.lastApplied.toJson()},
                               {"adopted", true},
                               {"preAdoption", o.preAdoption ? o.preAdoption->toJson() : Json(nullptr)},
                               {"deleteOnRelease", o.deleteOnRelease}};
    }
    out[target] = Json{{"live", live}, {"owned", owned}};
  }
  return out;
}

Result<std::map<std::string, TargetSnapshot>> snapshotFromJson(const Json& j) {
  if (!j.is_object()) return err("snapshot: expected an object keyed by target name");
  std::map<std::string, TargetSnapshot> out;
  for (auto t = j.begin(); t != j.end(); ++t) {
    if (!t.value().is_object()) return err("snapshot: target " + t.key() + ": expected {live, owned}");
    TargetSnapshot snap;
    for (const char* section : {"live", "owned"}) {
      const Json objects = t.value().value(section, Json::object());
      if (!objects.is_object()) return err("snapshot: target " + t.key() + ": '" + section + "' must be an object");
      for (auto o = objects.begin(); o != objects.end(); ++o) {
        auto addr = Address::parse(o.key());
        if (!addr || addr->target != t.key())
          return err("snapshot: target " + t.key() + ": bad address '" + o.key() + "'");
        if (!o.value().is_object()) return err("snapshot: " + o.key() + ": attributes must be an object");
        if (std::string(section) == "live") {
          snap.observed.objects[*addr] = ObservedObject{*addr, Attrs::fromJson(o.value()), false, {}};
          continue;
        }
        state::OwnedObject owned;
        owned.addr = *addr;
        if (o.value().contains("lastApplied") && o.value()["lastApplied"].is_object()) {  // the long form
          owned.lastApplied = Attrs::fromJson(o.value()["lastApplied"]);
          owned.adopted = o.value().value("adopted", false);
          if (o.value().contains("preAdoption") && o.value()["preAdoption"].is_object())
            owned.preAdoption = Attrs::fromJson(o.value()["preAdoption"]);
          owned.deleteOnRelease = o.value().value("deleteOnRelease", false);
        } else {
          owned.lastApplied = Attrs::fromJson(o.value());
        }
        snap.owned[*addr] = std::move(owned);
      }
    }
    out[t.key()] = std::move(snap);
  }
  return out;
}

}  // namespace vnetplan
