#include "reconciler/plan.h"

#include <algorithm>

#include "base/sha256.h"
#include "model/codec.h"

namespace vnetplan {

const char* actionName(Action a) {
  switch (a) {
    case Action::NoOp: return "no-op";
    case Action::Create: return "create";
    case Action::Update: return "update";
    case Action::Delete: return "delete";
    case Action::Replace: return "replace";
    case Action::Adopt: return "adopt";
    case Action::Release: return "release";
  }
  return "?";
}

const char* actionSymbol(Action a) {
  switch (a) {
    case Action::NoOp: return " ";
    case Action::Create: return "+";
    case Action::Update: return "~";
    case Action::Delete: return "-";
    case Action::Replace: return "-/+";
    case Action::Adopt: return "<=";
    case Action::Release: return "=>";
  }
  return "?";
}

bool Plan::hasChanges() const {
  return std::any_of(changes.begin(), changes.end(), [](const ResourceChange& c) { return c.action != Action::NoOp; });
}

size_t Plan::adoptions() const {
  return static_cast<size_t>(std::count_if(changes.begin(), changes.end(), [](const ResourceChange& c) {
    return c.action == Action::Adopt || (c.adopt && (c.action == Action::Update || c.action == Action::Replace));
  }));
}

size_t Plan::pendingChanges() const {
  return static_cast<size_t>(
      std::count_if(changes.begin(), changes.end(), [](const ResourceChange& c) { return c.action != Action::NoOp; }));
}

size_t Plan::count(Action a) const {
  return static_cast<size_t>(
      std::count_if(changes.begin(), changes.end(), [a](const ResourceChange& c) { return c.action == a; }));
}

std::vector<Step> Plan::steps() const {
  std::vector<Step> out;
  // Deletes first, dependents before what they depend on (reverse of the dependency order).
  for (auto it = changes.rbegin(); it != changes.rend(); ++it) {
    if ((it->action == Action::Delete || it->action == Action::Replace) && it->before)
      out.push_back(Step{it->addr, StepAction::Delete, *it->before, {}, {}, it->identity});
  }
  for (const auto& c : changes) {
    if (c.action == Action::Create || c.action == Action::Replace)
      out.push_back(Step{c.addr, StepAction::Create, {}, *c.after, {}, {}});
    else if ((c.action == Action::Update || c.action == Action::Release) && c.after && !c.changedPaths.empty())
      out.push_back(Step{c.addr, StepAction::Update, c.before.value_or(Attrs{}), *c.after, c.changedPaths, c.identity});
  }
  return out;
}

static Json actionsJson(Action a) {
  if (a == Action::Replace) return Json::array({"delete", "create"});
  return Json::array({actionName(a)});
}

static Json originsJson(const std::map<std::string, AttrOrigin>& origins) {
  Json out = Json::object();
  for (const auto& [path, o] : origins) {
    if (o.origin == Origin::Explicit) continue;  // explicit is the default; keep the document small
    out[path] = o.origin == Origin::Inherited ? Json{{"inherited", o.from}} : Json("default");
  }
  return out;
}

Json planToJson(const Plan& plan) {
  Json changes = Json::array();
  for (const auto& c : plan.changes) {
    changes.push_back(Json{
        {"address", c.addr.str()},
        {"target", c.addr.target},
        {"type", kindName(c.addr.kind)},
        {"name", c.addr.name},
        {"provider_name", c.provider},
        {"change",
         {{"actions", actionsJson(c.action)},
          {"before", c.before ? c.before->toJson() : Json(nullptr)},
          {"after", c.after ? c.after->toJson() : Json(nullptr)},
          {"after_origins", originsJson(c.origins)}}},
        {"changed_paths", c.changedPaths},
        {"reason", c.reason},
        {"disruptive", c.disruptive},
        {"adopt", c.adopt},
        {"delete_on_release", c.deleteOnRelease},
        {"description", c.description},
        {"identity", toJson(c.identity)},
    });
  }
  Json drift = Json::array();
  for (const auto& d : plan.drift)
    drift.push_back(Json{{"address", d.addr.str()},
                         {"last_applied", d.lastApplied ? d.lastApplied->toJson() : Json(nullptr)},
                         {"live", d.live ? d.live->toJson() : Json(nullptr)},
                         {"paths", d.paths}});
  Json targets = Json::array();
  for (const auto& t : plan.targets) targets.push_back(toJson(t));
  Json warnings = Json::array();
  for (const auto& w : plan.warnings) warnings.push_back(Json{{"location", w.loc.str()}, {"message", w.message}});
  Json unreachable = Json::array();
  for (const auto& u : plan.unreachable) unreachable.push_back(Json{{"target", u.target}, {"error", u.error}});
  Json out{{"format_version", std::to_string(Plan::kFormatVersion)},
              {"vnetplan_version", VNETPLAN_VERSION},
              {"manifests", {{"digest", plan.manifestsDigest}, {"files", plan.manifestFiles}}},
              {"targets", targets},
              {"resource_changes", changes},
              {"resource_drift", drift},
              {"live_fingerprints", plan.liveFingerprints},
              {"warnings", warnings},
              {"unreachable_targets", unreachable}};
  out["plan_digest"] = sha256Hex(out.dump());
  return out;
}

static Result<std::optional<Attrs>> optionalAttrs(const Json& j) {
  if (j.is_null()) return std::optional<Attrs>{};
  if (!j.is_object()) return err("expected an object or null");
  return std::optional<Attrs>{Attrs::fromJson(j)};
}

Result<Plan> planFromJson(const Json& j) {
  try {
    if (!j.is_object()) return err("not a vnetplan plan (expected a JSON object)");
    if (j.value("format_version", "") != std::to_string(Plan::kFormatVersion))
      return err("unsupported plan format_version '" + j.value("format_version", std::string("?")) +
                 "' (this vnetplan reads " + std::to_string(Plan::kFormatVersion) + ")");
    {
      Json content = j;
      content.erase("plan_digest");
      const std::string want = j.value("plan_digest", std::string());
      if (want.empty() || sha256Hex(content.dump()) != want)
        return err("the plan file is damaged or was edited after it was saved (its content does not match its "
                   "plan_digest); make the plan again with 'vnetplan plan --out'");
    }
    Plan p;
    p.manifestsDigest = j.at("manifests").value("digest", "");
    for (const auto& f : j.at("manifests").value("files", Json::array())) p.manifestFiles.push_back(f.get<std::string>());
    for (const auto& t : j.at("targets")) {
      auto target = targetFromJson(t);
      if (!target) return target.error();
      p.targets.push_back(*target);
    }
    for (const auto& c : j.at("resource_changes")) {
      ResourceChange rc;
      auto addr = addressFromJson(c.at("address"));
      if (!addr) return addr.error();
      rc.addr = *addr;
      rc.provider = c.value("provider_name", "");
      const Json& actions = c.at("change").at("actions");
      if (actions.size() == 2) rc.action = Action::Replace;
      else {
        std::string a = actions.at(0).get<std::string>();
        if (a == "no-op") rc.action = Action::NoOp;
        else if (a == "create") rc.action = Action::Create;
        else if (a == "update") rc.action = Action::Update;
        else if (a == "delete") rc.action = Action::Delete;
        else if (a == "adopt") rc.action = Action::Adopt;
        else if (a == "release") rc.action = Action::Release;
        else return err("unknown action '" + a + "' for " + rc.addr.str());
      }
      auto before = optionalAttrs(c.at("change").at("before"));
      auto after = optionalAttrs(c.at("change").at("after"));
      if (!before || !after) return err("malformed before/after for " + rc.addr.str());
      rc.before = *before;
      rc.after = *after;
      if ((rc.action == Action::Create || rc.action == Action::Update || rc.action == Action::Replace) && !rc.after)
        return err(rc.addr.str() + ": a " + actionName(rc.action) + " needs an 'after' value");
      for (const auto& pth : c.value("changed_paths", Json::array())) rc.changedPaths.push_back(pth.get<std::string>());
      const Json origins = c.at("change").value("after_origins", Json::object());
      for (auto it = origins.begin(); it != origins.end(); ++it) {
        if (it.value().is_object() && it.value().contains("inherited"))
          rc.origins[it.key()] = AttrOrigin{Origin::Inherited, it.value()["inherited"].get<std::string>()};
        else if (it.value() == "default")
          rc.origins[it.key()] = AttrOrigin{Origin::Default, ""};
      }
      rc.reason = c.value("reason", "");
      rc.disruptive = c.value("disruptive", false);
      rc.adopt = c.value("adopt", false);
      rc.deleteOnRelease = c.value("delete_on_release", false);
      rc.description = c.value("description", "");
      rc.identity = identityFromJson(c.value("identity", Json()));
      p.changes.push_back(std::move(rc));
    }
    for (auto it = j.at("live_fingerprints").begin(); it != j.at("live_fingerprints").end(); ++it)
      p.liveFingerprints[it.key()] = it.value().get<std::string>();
    for (const auto& u : j.value("unreachable_targets", Json::array()))
      p.unreachable.push_back(UnreachableTarget{u.at("target").get<std::string>(), u.at("error").get<std::string>()});
    return p;
  } catch (const Json::exception& e) {
    return err(std::string("malformed plan file: ") + e.what());
  }
}

}  // namespace vnetplan
