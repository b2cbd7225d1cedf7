// The views of `vnetplan serve`: Prometheus metrics, JSON, and the status page. Pure functions of an AgentView.
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "cli/serve.h"

namespace vnetplan::cli::serve {

namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

std::string isoTime(double unixSeconds) {
  if (unixSeconds <= 0) return "";
  std::time_t t = static_cast<std::time_t>(unixSeconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Resident memory and open descriptors of this process (the soak checks neither grows).
double residentBytes() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, rss = 0;
  in >> pages >> rss;
  return static_cast<double>(rss) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

double openFds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return 0;
  double n = 0;
  while (struct dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory stream itself
}

class Metrics {
 public:
  void family(const std::string& name, const char* type, const std::string& help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void sample(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels, double v) {
    out_ << name;
    if (!labels.empty()) {
      out_ << "{";
      bool first = true;
      for (const auto& [k, val] : labels) {
        out_ << (first ? "" : ",") << k << "=\"" << promLabel(val) << "\"";
        first = false;
      }
      out_ << "}";
    }
    out_ << " " << num(v) << "\n";
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

const char* kStates[] = {"in-sync", "pending", "drifted", "busy", "unreachable", "apply-failed", "unknown"};

}  // namespace

std::string promLabel(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string htmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string renderMetrics(const AgentView& v) {
  Metrics m;
  m.family("vnetplan_serve_info", "gauge", "The agent: version, manifest source and the revision it plans.");
  m.sample("vnetplan_serve_info",
           {{"version", v.version}, {"source", v.source.kind}, {"revision", v.source.revision}}, 1);
  m.family("vnetplan_manifests_valid", "gauge",
           "1 when the newest revision of the manifests loads; 0 when it is broken (the last good one is planned).");
  m.sample("vnetplan_manifests_valid", {}, v.source.valid ? 1 : 0);
  m.family("vnetplan_sync_failures_total", "counter", "Pulls of the manifest source that failed.");
  m.sample("vnetplan_sync_failures_total", {}, static_cast<double>(v.syncFailures));
  m.family("vnetplan_syncs_total", "counter", "Pulls of the manifest source.");
  m.sample("vnetplan_syncs_total", {}, static_cast<double>(v.syncs));
  m.family("vnetplan_webhooks_total", "counter", "Webhook calls that asked for a pull.");
  m.sample("vnetplan_webhooks_total", {}, static_cast<double>(v.webhooks));
  m.family("vnetplan_runs_total", "counter", "Plan runs over every target.");
  m.sample("vnetplan_runs_total", {}, static_cast<double>(v.runs));
  m.family("vnetplan_run_failures_total", "counter", "Plan runs that failed as a whole (no target planned).");
  m.sample("vnetplan_run_failures_total", {}, static_cast<double>(v.runFailures));
  m.family("vnetplan_last_run_timestamp_seconds", "gauge", "When the last plan run ended (Unix time).");
  m.sample("vnetplan_last_run_timestamp_seconds", {}, v.lastRunAt);
  m.family("vnetplan_last_run_duration_seconds", "gauge", "How long the last plan run took.");
  m.sample("vnetplan_last_run_duration_seconds", {}, v.lastRunDuration);

  m.family("vnetplan_target_up", "gauge", "1 when the target could be observed and planned in the last run.");
  for (const auto& [name, t] : v.targets)
    m.sample("vnetplan_target_up", {{"target", name}},
             t.state != "unreachable" && t.state != "busy" && t.state != "unknown" ? 1 : 0);
  m.family("vnetplan_target_state", "gauge", "1 for the state the target is in (one series per possible state).");
  for (const auto& [name, t] : v.targets)
    for (const char* s : kStates) m.sample("vnetplan_target_state", {{"target", name}, {"state", s}}, t.state == s ? 1 : 0);
  m.family("vnetplan_target_drift_resources", "gauge", "Resources of the target whose live state differs from the last apply.");
  for (const auto& [name, t] : v.targets)
    m.sample("vnetplan_target_drift_resources", {{"target", name}}, static_cast<double>(t.drift.size()));
  m.family("vnetplan_target_pending_changes", "gauge", "Changes a plan would make on the target (manifests differ from live).");
  for (const auto& [name, t] : v.targets)
    m.sample("vnetplan_target_pending_changes", {{"target", name}}, static_cast<double>(t.changes.size()));
  m.family("vnetplan_resource_drift", "gauge", "1 for each resource that drifted from the last apply.");
  for (const auto& [name, t] : v.targets)
    for (const auto& d : t.drift)
      m.sample("vnetplan_resource_drift",
               {{"target", name}, {"address", d.value("address", "")}, {"kind", d.value("kind", "")}}, 1);
  m.family("vnetplan_resource_pending_change", "gauge", "1 for each resource a plan would change, by action.");
  for (const auto& [name, t] : v.targets)
    for (const auto& c : t.changes) {
      std::string action;
      for (const auto& a : c.value("actions", Json::array())) action += (action.empty() ? "" : "+") + a.get<std::string>();
      m.sample("vnetplan_resource_pending_change",
               {{"target", name}, {"address", c.value("address", "")}, {"kind", c.value("kind", "")}, {"action", action}},
               1);
    }
  m.family("vnetplan_target_last_plan_timestamp_seconds", "gauge", "When the target was last planned (Unix time).");
  for (const auto& [name, t] : v.targets)
    m.sample("vnetplan_target_last_plan_timestamp_seconds", {{"target", name}}, t.lastPlanAt);
  m.family("vnetplan_target_last_plan_duration_seconds", "gauge", "How long the run that last planned the target took.");
  for (const auto& [name, t] : v.targets)
    m.sample("vnetplan_target_last_plan_duration_seconds", {{"target", name}}, t.lastPlanDuration);
  m.family("vnetplan_target_generation", "gauge", "The target's generation in the state store (0: never applied).");
  for (const auto& [name, t] : v.targets)
    m.sample("vnetplan_target_generation", {{"target", name}}, static_cast<double>(t.generation));
  m.family("vnetplan_target_last_apply_timestamp_seconds", "gauge", "When the agent last applied the target (Unix time).");
  for (const auto& [name, t] : v.targets)
    if (t.lastApply) m.sample("vnetplan_target_last_apply_timestamp_seconds", {{"target", name}}, t.lastApply->at);
  m.family("vnetplan_target_last_apply_duration_seconds", "gauge", "How long the agent's last apply of the target took.");
  for (const auto& [name, t] : v.targets)
    if (t.lastApply) m.sample("vnetplan_target_last_apply_duration_seconds", {{"target", name}}, t.lastApply->duration);
  m.family("vnetplan_applies_total", "counter", "Applies the agent ran, by target and outcome.");
  for (const auto& [name, t] : v.targets)
    for (const auto& [outcome, n] : t.applies)
      m.sample("vnetplan_applies_total", {{"target", name}, {"outcome", outcome}}, static_cast<double>(n));

  m.family("process_resident_memory_bytes", "gauge", "Resident memory size of the agent in bytes.");
  m.sample("process_resident_memory_bytes", {}, residentBytes());
  m.family("process_open_fds", "gauge", "Open file descriptors of the agent.");
  m.sample("process_open_fds", {}, openFds());
  m.family("process_start_time_seconds", "gauge", "When the agent started (Unix time).");
  m.sample("process_start_time_seconds", {}, v.startedAt);
  return m.str();
}

Json renderTargetJson(const TargetView& t) {
  Json j{{"name", t.name},
         {"provider", t.provider},
         {"labels", t.labels},
         {"autoApply", t.autoApply},
         {"state", t.state},
         {"error", t.error},
         {"generation", t.generation},
         {"lastPlan",
          {{"at", isoTime(t.lastPlanAt)},
           {"durationSeconds", t.lastPlanDuration},
           {"revision", t.planRevision},
           {"changes", t.changes}}},
         {"drift", t.drift},
         {"applies", t.applies}};
  if (t.lastApply)
    j["lastApply"] = Json{{"at", isoTime(t.lastApply->at)},     {"durationSeconds", t.lastApply->duration},
                          {"revision", t.lastApply->revision},  {"outcome", t.lastApply->outcome},
                          {"exitCode", t.lastApply->exitCode},  {"message", t.lastApply->message},
                          {"generation", t.lastApply->generation}};
  else
    j["lastApply"] = nullptr;
  return j;
}

Json renderJson(const AgentView& v) {
  Json targets = Json::array();
  for (const auto& [_, t] : v.targets) targets.push_back(renderTargetJson(t));
  return Json{{"version", v.version},
              {"source",
               {{"kind", v.source.kind},
                {"location", v.source.location},
                {"branch", v.source.branch},
                {"revision", v.source.revision},
                {"subject", v.source.subject},
                {"valid", v.source.valid},
                {"brokenRevision", v.source.brokenRevision},
                {"brokenErrors", v.source.brokenErrors},
                {"syncError", v.source.syncError},
                {"lastSyncAt", isoTime(v.source.lastSyncAt)}}},
              {"intervalSeconds", v.intervalSeconds},
              {"startedAt", isoTime(v.startedAt)},
              {"lastRunAt", isoTime(v.lastRunAt)},
              {"lastRunDurationSeconds", v.lastRunDuration},
              {"runError", v.runError},
              {"runs", v.runs},
              {"targets", targets}};
}

std::string renderPage(const AgentView& v, int refreshSeconds) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<meta http-equiv=\"refresh\" content=\"" << refreshSeconds << "\">\n"
    << "<title>vnetplan serve</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:1.5em;color:#222;background:#fafafa}\n"
    << "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.35em .7em;text-align:left;"
       "vertical-align:top}\n"
    << "th{background:#e8e8e8}.state{font-weight:bold;border-radius:3px;padding:.1em .4em}\n"
    << ".in-sync{background:#c8efc8}.pending{background:#fff1b8}.drifted{background:#ffd2a6}"
       ".unreachable,.apply-failed{background:#ffb8b8}.busy{background:#c8dcff}.unknown{background:#ddd}\n"
    << ".banner{padding:.6em 1em;margin:.5em 0;border-radius:4px}.broken{background:#ffb8b8}.ok{background:#c8efc8}\n"
    << "pre{background:#fff;border:1px solid #ddd;padding:.5em;white-space:pre-wrap;max-width:100em}\n"
    << "</style></head><body>\n<h1>vnetplan serve</h1>\n";
  h << "<p id=\"source\">Manifests: " << htmlEscape(v.source.kind) << " <code>" << htmlEscape(v.source.location)
    << "</code>" << (v.source.branch.empty() ? "" : " branch <code>" + htmlEscape(v.source.branch) + "</code>")
    << ", revision <code id=\"revision\">" << htmlEscape(v.source.revision.substr(0, 12)) << "</code>"
    << (v.source.subject.empty() ? "" : " (" + htmlEscape(v.source.subject) + ")") << "; last run "
    << htmlEscape(isoTime(v.lastRunAt)) << ", every " << v.intervalSeconds << "s.</p>\n";
  if (!v.source.valid)
    h << "<div id=\"manifests\" class=\"banner broken\"><b>Revision <code>"
      << htmlEscape(v.source.brokenRevision.substr(0, 12))
      << "</code> is broken</b>: it was not planned and nothing was applied from it; the last good revision is "
         "planned instead.<pre>"
      << htmlEscape(v.source.brokenErrors) << "</pre></div>\n";
  else
    h << "<div id=\"manifests\" class=\"banner ok\">Manifests valid.</div>\n";
  if (!v.source.syncError.empty())
    h << "<div id=\"sync-error\" class=\"banner broken\">Pull failed: " << htmlEscape(v.source.syncError) << "</div>\n";
  if (!v.runError.empty())
    h << "<div id=\"run-error\" class=\"banner broken\">Last run failed: <pre>" << htmlEscape(v.runError)
      << "</pre></div>\n";
  h << "<table id=\"targets\">\n<thead><tr><th>Target</th><th>Provider</th><th>State</th><th>Drift</th>"
       "<th>Pending</th><th>Generation</th><th>Last plan</th><th>Last apply</th><th>Auto-apply</th></tr></thead>\n"
       "<tbody>\n";
  for (const auto& [name, t] : v.targets) {
    h << "<tr data-target=\"" << htmlEscape(name) << "\" data-state=\"" << htmlEscape(t.state) << "\"><td>"
      << "<a href=\"#t-" << htmlEscape(name) << "\">" << htmlEscape(name) << "</a></td><td>" << htmlEscape(t.provider)
      << "</td><td><span class=\"state " << htmlEscape(t.state) << "\">" << htmlEscape(t.state) << "</span>"
      << (t.error.empty() ? "" : "<br><small>" + htmlEscape(t.error) + "</small>") << "</td><td class=\"n-drift\">"
      << t.drift.size() << "</td><td class=\"n-pending\">" << t.changes.size() << "</td><td>" << t.generation
      << "</td><td>" << htmlEscape(isoTime(t.lastPlanAt)) << "</td><td>";
    if (t.lastApply)
      h << htmlEscape(t.lastApply->outcome) << " " << htmlEscape(isoTime(t.lastApply->at));
    h << "</td><td>" << (t.autoApply ? "yes" : "no") << "</td></tr>\n";
  }
  h << "</tbody></table>\n";
  for (const auto& [name, t] : v.targets) {
    if (t.changes.empty() && t.drift.empty() && !t.lastApply) continue;
    h << "<section id=\"t-" << htmlEscape(name) << "\"><h2>" << htmlEscape(name) << "</h2>\n";
    if (!t.drift.empty()) {
      h << "<h3>Drift</h3><ul class=\"drift-list\">";
      for (const auto& d : t.drift) {
        std::string paths;
        for (const auto& p : d.value("paths", Json::array())) paths += (paths.empty() ? "" : ", ") + p.get<std::string>();
        h << "<li><code>" << htmlEscape(d.value("address", "")) << "</code>: " << htmlEscape(paths) << "</li>";
      }
      h << "</ul>\n";
    }
    if (!t.changes.empty()) {
      h << "<h3>Last plan (" << htmlEscape(t.planRevision.substr(0, 12)) << ")</h3><pre class=\"plan\">";
      for (const auto& c : t.changes) {
        std::string actions;
        for (const auto& a : c.value("actions", Json::array())) actions += (actions.empty() ? "" : "+") + a.get<std::string>();
        h << htmlEscape(actions) << "  " << htmlEscape(c.value("address", "")) << "\n    "
          << htmlEscape(c.value("description", "")) << "\n    # " << htmlEscape(c.value("reason", "")) << "\n";
      }
      h << "</pre>\n";
    }
    if (t.lastApply)
      h << "<h3>Last apply</h3><p>" << htmlEscape(t.lastApply->outcome) << " at " << htmlEscape(isoTime(t.lastApply->at))
        << " (revision " << htmlEscape(t.lastApply->revision.substr(0, 12)) << ", exit " << t.lastApply->exitCode
        << ")</p><pre>" << htmlEscape(t.lastApply->message) << "</pre>\n";
    h << "</section>\n";
  }
  h << "<p><small>vnetplan " << htmlEscape(v.version) << ". <a href=\"/api/v1/status\">JSON</a> · "
    << "<a href=\"/metrics\">metrics</a> · refreshes every " << refreshSeconds << "s.</small></p>\n</body></html>\n";
  return h.str();
}

}  // namespace vnetplan::cli::serve
