#include "reconciler/render.h"

#include <map>
#include <set>
#include <sstream>

namespace vnetplan {

namespace {

struct Palette {
  bool on;
  const char* green() const { return on ? "\033[32m" : ""; }
  const char* red() const { return on ? "\033[31m" : ""; }
  const char* yellow() const { return on ? "\033[33m" : ""; }
  const char* dim() const { return on ? "\033[2m" : ""; }
  const char* bold() const { return on ? "\033[1m" : ""; }
  const char* reset() const { return on ? "\033[0m" : ""; }
  const char* forAction(Action a) const {
    switch (a) {
      case Action::Create: return green();
      case Action::Delete: return red();
      case Action::Update: return yellow();
      case Action::Replace: return red();
      case Action::NoOp: return dim();
      case Action::Adopt: return yellow();
      case Action::Release: return yellow();
    }
    return "";
  }
};

std::string show(const Json* v) {
  if (!v || v->is_null()) return "(unset)";
  return v->dump();
}

std::string originNote(const ResourceChange& c, const std::string& path) {
  auto it = c.origins.find(path);
  if (it == c.origins.end()) return "";
  if (it->second.origin == Origin::Inherited) return "  (inherited from " + it->second.from + ")";
  if (it->second.origin == Origin::Default) return "  (default)";
  return "";
}

size_t widest(const std::vector<std::string>& keys) {
  size_t w = 0;
  for (const auto& k : keys) w = std::max(w, k.size());
  return w;
}

void renderAttrsOf(std::ostringstream& out, const ResourceChange& c, const Palette& p) {
  const std::string indent = "      ";
  if (c.action == Action::Create && c.after) {
    // A default that means "none" (null, []) says nothing about what is created: left out of the text (the JSON
    // plan has every attribute).
    auto noise = [&](const std::string& k, const Json& v) {
      auto o = c.origins.find(k);
      return o != c.origins.end() && o->second.origin == Origin::Default && (v.is_null() || (v.is_array() && v.empty()));
    };
    std::vector<std::string> keys;
    for (const auto& [k, v] : c.after->values())
      if (!noise(k, v)) keys.push_back(k);
    size_t w = widest(keys);
    for (const auto& [k, v] : c.after->values())
      if (!noise(k, v))
        out << indent << k << ":" << std::string(w - k.size() + 1, ' ') << v.dump() << p.dim() << originNote(c, k)
          << p.reset() << "\n";
  } else if (c.action == Action::Update || c.action == Action::Replace || c.action == Action::Release) {
    size_t w = widest(c.changedPaths);
    for (const auto& k : c.changedPaths)
      out << indent << k << ":" << std::string(w - k.size() + 1, ' ') << show(c.before ? c.before->find(k) : nullptr)
          << " -> " << show(c.after ? c.after->find(k) : nullptr) << p.dim() << originNote(c, k) << p.reset() << "\n";
  }
  // What the provider will make (e.g. which shape a port group takes on this kernel; a tap's host-side MAC). An
  // update's description repeats the lines above.
  if (!c.description.empty() && (c.action == Action::Create || c.action == Action::Replace))
    out << indent << p.dim() << "# " << c.description << p.reset() << "\n";
  if (!c.reason.empty()) out << indent << p.dim() << "# " << c.reason << p.reset() << "\n";
}

}  // namespace

// The targets a plan left out because they could not be observed.
static std::string unreachableText(const Plan& plan, const Palette& p) {
  if (plan.unreachable.empty()) return "";
  std::ostringstream out;
  out << "\n" << p.red() << "Not planned: " << plan.unreachable.size() << " target(s):" << p.reset() << "\n";
  for (const auto& u : plan.unreachable) out << "  " << p.red() << "!" << p.reset() << " " << u.target << ": " << u.error << "\n";
  return out.str();
}

std::string planSummary(const Plan& plan) {
  std::ostringstream out;
  out << "Plan: " << plan.count(Action::Create) << " to add, " << plan.count(Action::Update) << " to change, "
      << plan.count(Action::Delete) << " to destroy, " << plan.count(Action::Replace) << " to replace";
  // Ownership changes are changes too: vnetplan may later delete what it adopts.
  if (size_t n = plan.adoptions()) out << ", " << n << " to adopt";
  if (size_t n = plan.count(Action::Release)) out << ", " << n << " to release";
  out << ".";
  return out.str();
}

// "Drift: ..." and one "! address" block per drifted resource, with its attributes' last-applied and live values.
static std::string driftListText(const Plan& plan, const Palette& p) {
  std::ostringstream out;
  out << p.yellow() << "Drift: live state differs from what vnetplan last applied:" << p.reset() << "\n";
  for (const auto& d : plan.drift) {
    out << "  " << p.yellow() << "!" << p.reset() << " " << d.addr.str() << "\n";
    if (!d.live) {
      out << "      deleted out of band\n";
      continue;
    }
    for (const auto& path : d.paths)
      out << "      " << path << ": last applied " << show(d.lastApplied->find(path)) << ", live "
          << show(d.live->find(path)) << "\n";
  }
  return out.str();
}

std::string renderPlanText(const Plan& plan, const RenderOptions& opts) {
  Palette p{opts.color};
  std::ostringstream out;
  std::map<std::string, std::string> providerOf;
  for (const auto& t : plan.targets) providerOf[t.name] = t.provider;
  auto listChanges = [&] {
    std::string currentTarget;
    for (const auto& c : plan.changes) {
      if (c.action == Action::NoOp && !opts.showNoOps) continue;
      if (c.addr.target != currentTarget) {
        currentTarget = c.addr.target;
        out << "\n" << p.bold() << "Target " << currentTarget << " (" << providerOf[currentTarget] << ")" << p.reset()
            << "\n";
      }
      std::string sym = actionSymbol(c.action);
      out << "  " << p.forAction(c.action) << (sym + std::string(sym.size() < 3 ? 3 - sym.size() : 0, ' ')) << " "
          << c.addr.str() << p.reset();
      if (c.adopt) out << p.yellow() << "  (adopt)" << p.reset();
      if (c.disruptive && c.action != Action::Create) out << p.red() << "  [disruptive]" << p.reset();
      out << "\n";
      renderAttrsOf(out, c, p);
    }
  };
  if (!plan.hasChanges()) {
    out << p.green() << "No changes." << p.reset()
        << (plan.unreachable.empty() ? " Live state matches the manifests.\n"
                                     : " Live state of the reachable targets matches the manifests.\n");
    if (opts.showNoOps && !plan.changes.empty()) {
      out << "\nUnchanged resources:\n";
      listChanges();
    }
  } else {
    out << "vnetplan will perform the following actions:\n";
    listChanges();
    out << "\n" << p.bold() << planSummary(plan) << p.reset() << "\n";
    size_t disruptive = 0;
    for (const auto& c : plan.changes)
      if (c.disruptive && c.action != Action::NoOp && c.action != Action::Create) ++disruptive;
    if (disruptive) out << p.red() << disruptive << " change(s) are disruptive: links flap or traffic drops." << p.reset() << "\n";
  }
  if (!plan.drift.empty()) out << "\n" << driftListText(plan, p);
  out << unreachableText(plan, p);
  return out.str();
}

std::string renderPlanMarkdown(const Plan& plan) {
  std::ostringstream out;
  out << "### vnetplan plan\n\n";
  if (!plan.hasChanges()) {
    out << "No changes. Live state matches the manifests.\n";
  } else {
    out << "| | address | action | changes | disruptive |\n|---|---|---|---|---|\n";
    for (const auto& c : plan.changes) {
      if (c.action == Action::NoOp) continue;
      std::string changes;
      for (const auto& path : c.changedPaths) changes += (changes.empty() ? "" : ", ") + ("`" + path + "`");
      if (c.action == Action::Create) changes = "new";
      if (c.action == Action::Delete) changes = c.reason;
      out << "| `" << actionSymbol(c.action) << "` | `" << c.addr.str() << "` | " << actionName(c.action) << " | "
          << changes << " | " << ((c.disruptive && c.action != Action::Create) ? "**yes**" : "no") << " |\n";
    }
    out << "\n**" << planSummary(plan) << "**\n";
  }
  if (!plan.drift.empty()) {
    out << "\n#### Drift (live differs from last apply)\n\n";
    for (const auto& d : plan.drift) {
      out << "- `" << d.addr.str() << "`: ";
      for (size_t i = 0; i < d.paths.size(); ++i) out << (i ? ", " : "") << "`" << d.paths[i] << "`";
      out << "\n";
    }
  }
  if (!plan.unreachable.empty()) {
    out << "\n#### Not planned: unreachable targets\n\n";
    for (const auto& u : plan.unreachable) out << "- `" << u.target << "`: " << u.error << "\n";
  }
  return out.str();
}

std::string renderPlanJson(const Plan& plan) { return planToJson(plan).dump(2) + "\n"; }

std::string renderDriftText(const Plan& plan, const RenderOptions& opts) {
  Palette p{opts.color};
  std::ostringstream out;
  if (plan.drift.empty())
    out << p.green() << "No drift." << p.reset() << " Live state matches what vnetplan last applied.\n";
  else
    out << driftListText(plan, p);
  // Drift is what changed behind vnetplan's back; a manifest change not applied yet is the other half of "in sync".
  if (size_t pending = plan.pendingChanges(); pending > 0)
    out << p.yellow() << "Pending:" << p.reset() << " " << pending << " change(s) in the manifests not applied yet"
        << (plan.drift.empty() ? "" : " (including the corrections of the drift above)")
        << "; 'vnetplan plan' shows them.\n";
  else
    out << "No pending changes: the manifests ask for nothing that is not applied.\n";
  return out.str();
}

std::string renderDriftJson(const Plan& plan) {
  Json j = planToJson(plan);
  Json out{{"format_version", j["format_version"]},
           {"in_sync", plan.drift.empty()},
           {"resource_drift", j["resource_drift"]},
           {"pending_changes", plan.pendingChanges()},
           {"unreachable_targets", j["unreachable_targets"]}};
  return out.dump(2) + "\n";
}

static std::string xmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string renderDriftJunit(const Plan& plan) {
  std::map<std::string, const DriftEntry*> drifted;
  for (const auto& d : plan.drift) drifted[d.addr.str()] = &d;
  std::set<std::string> addresses;
  for (const auto& c : plan.changes) addresses.insert(c.addr.str());
  for (const auto& d : plan.drift) addresses.insert(d.addr.str());
  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"vnetplan drift\" tests=\""
      << addresses.size() + plan.unreachable.size() << "\" failures=\"" << drifted.size() << "\" errors=\""
      << plan.unreachable.size() << "\">\n";
  for (const auto& u : plan.unreachable)
    out << "    <testcase classname=\"vnetplan.target\" name=\"" << xmlEscape(u.target)
        << "\">\n      <error message=\"unreachable: " << xmlEscape(u.error) << "\"/>\n    </testcase>\n";
  for (const auto& a : addresses) {
    out << "    <testcase classname=\"vnetplan.drift\" name=\"" << xmlEscape(a) << "\"";
    auto it = drifted.find(a);
    if (it == drifted.end()) {
      out << "/>\n";
      continue;
    }
    // The message names what drifted with the values (last applied = expected, live = actual); the body has one
    // line per attribute, for CI tools that show only one of the two.
    const DriftEntry& d = *it->second;
    std::vector<std::string> lines;
    if (!d.live) lines.push_back("deleted out of band (expected it to exist)");
    else
      for (const auto& p : d.paths)
        lines.push_back(p + ": expected " + show(d.lastApplied->find(p)) + ", actual " + show(d.live->find(p)));
    std::string msg, body;
    for (const auto& l : lines) {
      msg += (msg.empty() ? "" : "; ") + l;
      body += l + "\n";
    }
    out << ">\n      <failure type=\"drift\" message=\"drift: " << xmlEscape(msg) << "\">" << xmlEscape(body)
        << "</failure>\n    </testcase>\n";
  }
  out << "  </testsuite>\n</testsuites>\n";
  return out.str();
}

static std::string promLabel(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string renderDriftPrometheus(const Plan& plan, std::chrono::system_clock::time_point now) {
  std::ostringstream out;
  std::set<std::string> drifted;
  for (const auto& d : plan.drift) drifted.insert(d.addr.str());
  std::map<std::string, Address> resources;  // every resource of the plan, sorted: a series each, 0 or 1
  for (const auto& c : plan.changes) resources.emplace(c.addr.str(), c.addr);
  for (const auto& d : plan.drift) resources.emplace(d.addr.str(), d.addr);
  out << "# HELP vnetplan_drift_resources Resources whose live state differs from the last apply.\n"
      << "# TYPE vnetplan_drift_resources gauge\n"
      << "vnetplan_drift_resources " << plan.drift.size() << "\n"
      << "# HELP vnetplan_resource_drift 1 when this resource drifted from the last apply, 0 when it did not.\n"
      << "# TYPE vnetplan_resource_drift gauge\n";
  for (const auto& [str, addr] : resources)
    out << "vnetplan_resource_drift{address=\"" << promLabel(str) << "\",target=\"" << promLabel(addr.target)
        << "\",kind=\"" << kindName(addr.kind) << "\"} " << (drifted.count(str) ? 1 : 0) << "\n";
  out << "# HELP vnetplan_target_up 1 when the target could be observed.\n"
      << "# TYPE vnetplan_target_up gauge\n";
  for (const auto& t : plan.targets) out << "vnetplan_target_up{target=\"" << promLabel(t.name) << "\"} 1\n";
  for (const auto& u : plan.unreachable) out << "vnetplan_target_up{target=\"" << promLabel(u.target) << "\"} 0\n";
  out << "# HELP vnetplan_pending_changes Changes a plan would make (manifests differ from live).\n"
      << "# TYPE vnetplan_pending_changes gauge\n"
      << "vnetplan_pending_changes " << plan.pendingChanges() << "\n"
      << "# HELP vnetplan_last_run_timestamp_seconds When this drift check ran (Unix time); alert on "
         "time() - vnetplan_last_run_timestamp_seconds to catch a check that stopped running.\n"
      << "# TYPE vnetplan_last_run_timestamp_seconds gauge\n"
      << "vnetplan_last_run_timestamp_seconds "
      << std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() << "\n";
  return out.str();
}

}  // namespace vnetplan
