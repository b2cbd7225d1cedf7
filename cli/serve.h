// `vnetplan serve`: the GitOps agent (DESIGN §3). It pulls a manifest repository (a directory, or a Git URL and
// branch) at an interval and when a webhook says so, validates each new revision, plans every target, optionally
// applies (per target or label), and serves what it knows over HTTP: /healthz, /metrics (Prometheus), a JSON API
// under /api/v1/ and a status page at /.
//
// Every piece of work runs as a child process (git; this binary's validate, plan --format json, apply): a target
// that hangs or crashes a run, or a leak in one, never reaches the agent, which keeps only the last results.
#pragma once
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "model/model.h"

namespace vnetplan::cli {

struct ServeArgs {
  std::string manifests;               // a directory, or a Git URL
  std::string branch = "main";         // Git only
  std::string path = ".";              // the manifests' directory inside the repository (Git only)
  std::chrono::milliseconds interval{60000};
  std::string listen = "127.0.0.1:8479";
  bool autoApplyAll = false;
  std::vector<std::string> autoApplyTargets;  // names
  std::vector<std::string> autoApplyLabels;   // KEY=VALUE
  std::string tokenFile;                      // bearer token (else VNETPLAN_SERVE_TOKEN)
  std::string workDir;                        // Git checkouts (default: a temp dir, removed at exit)
  std::chrono::milliseconds runTimeout{std::chrono::minutes(10)};
};

int cmdServe(const GlobalOptions& g, const ServeArgs& a);

// What the agent knows, as its HTTP views render it (cli/serve_render.cpp). Times are Unix seconds.
namespace serve {

struct ApplyRecord {
  double at = 0, duration = 0;
  std::string revision, outcome, message;  // outcome: applied, no-changes, rolled-back, refused, damaged,
                                           // not-recorded, failed
  int exitCode = 0;
  int64_t generation = 0;
};

struct TargetView {
  std::string name, provider;
  Json labels = Json::object();
  bool autoApply = false;
  // in-sync | pending | drifted | busy (an apply runs or did not finish) | unreachable | apply-failed | unknown
  std::string state = "unknown";
  std::string error;         // why it could not be planned
  Json changes = Json::array();  // [{address, kind, actions, description, reason, disruptive}]
  Json drift = Json::array();    // [{address, kind, paths}]
  double lastPlanAt = 0, lastPlanDuration = 0;
  std::string planRevision;
  int64_t generation = 0;
  std::optional<ApplyRecord> lastApply;
  std::map<std::string, uint64_t> applies;  // outcome -> count
};

struct SourceView {
  std::string kind;  // directory | git
  std::string location, branch;
  std::string revision, subject;      // the revision being planned (git: commit; directory: manifests digest)
  bool valid = true;                  // the newest revision loads
  std::string brokenRevision;         // the newest revision, when it does not load
  std::string brokenErrors;           // its diagnostics
  std::string syncError;              // git could not fetch, etc.
  double lastSyncAt = 0;
};

struct AgentView {
  std::string version;
  SourceView source;
  std::map<std::string, TargetView> targets;
  std::string runError;  // the last plan run failed as a whole (state store unreachable...)
  double startedAt = 0, lastRunAt = 0, lastRunDuration = 0;
  uint64_t runs = 0, runFailures = 0, syncs = 0, syncFailures = 0, webhooks = 0;
  double intervalSeconds = 0;
};

std::string renderMetrics(const AgentView& v);
Json renderJson(const AgentView& v);
Json renderTargetJson(const TargetView& t);
std::string renderPage(const AgentView& v, int refreshSeconds);

// The value of a Prometheus label, escaped (\\, \", \n).
std::string promLabel(const std::string& s);
std::string htmlEscape(const std::string& s);

}  // namespace serve
}  // namespace vnetplan::cli
