#include "cli/commands.h"

#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "cli/providers.h"
#include "model/codec.h"
#include "reconciler/applier.h"
#include "reconciler/pipeline.h"
#include "reconciler/probe.h"
#include "reconciler/render.h"
#include "reconciler/schema_validator.h"
#include "reconciler/snapshot.h"
#include "state/store.h"

namespace vnetplan {
extern const char kEmbeddedDemo[];
extern const std::size_t kEmbeddedDemoSize;
}  // namespace vnetplan

namespace vnetplan::cli {

namespace fs = std::filesystem;

const ProviderRegistry& GlobalOptions::registry() const { return providers ? *providers : builtinProviders(); }

namespace {

int fail(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  return 1;
}

void printDiagnostics(const GlobalOptions& g, const Diagnostics& diags) {
  if (diags.items().empty()) return;
  std::cerr << diags.render(useColor(g.output, STDERR_FILENO));
}

Result<std::unique_ptr<state::Store>> openStore(const GlobalOptions& g) {
  auto backend = state::openBackend(g.stateUrl);
  if (!backend) return err("--state " + g.stateUrl + ": " + backend.error().message);
  return std::make_unique<state::Store>(std::move(*backend));
}

std::set<std::string> toSet(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

// Loads manifests; prints every diagnostic. nullopt when there are errors.
std::optional<DesiredState> loadOrReport(const GlobalOptions& g, const std::vector<std::string>& files,
                                         Prefetch* prefetch = nullptr) {
  Diagnostics diags;
  DesiredState desired = loadDesired(files, g.registry(), diags, prefetch);
  printDiagnostics(g, diags);
  if (diags.hasErrors()) {
    std::cerr << diags.errorCount() << " error(s), " << diags.warningCount() << " warning(s)\n";
    return std::nullopt;
  }
  return desired;
}

Status writeFileAtomic(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return err("cannot write " + path + ": " + std::strerror(errno));
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size() && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return err("cannot write " + path + ": " + std::strerror(errno));
  }
  return {};
}

std::string gitCommitOf(const std::vector<std::string>& files) {
  if (files.empty()) return "";
  fs::path dir = fs::is_directory(files[0]) ? fs::path(files[0]) : fs::path(files[0]).parent_path();
  if (dir.empty()) dir = ".";
  std::string cmd = "git -C '" + dir.string() + "' rev-parse HEAD 2>/dev/null";
  if (dir.string().find('\'') != std::string::npos) return "";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  char buf[64] = {0};
  std::string out = std::fgets(buf, sizeof buf, p) ? buf : "";
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.size() == 40 ? out : "";
}

void warnPendingJournals(state::Store& store, const Plan& plan) {
  for (const auto& t : plan.targets) {
    auto j = store.journal(t.name);
    if (j && j->has_value())
      std::cerr << "warning: target " << t.name << " has an unfinished " << (**j).operation << " (journal "
                << (**j).id << "); apply will refuse until 'vnetplan rollback' restores it\n";
  }
}

std::string renderPlan(const GlobalOptions& g, const Plan& plan, const std::string& format, bool showNoOps) {
  if (format == "json") return renderPlanJson(plan);
  if (format == "markdown") return renderPlanMarkdown(plan);
  return renderPlanText(plan, {useColor(g.output, STDOUT_FILENO), showNoOps});
}

int reportOutcome(const GlobalOptions& g, const ApplyOutcome& outcome) {
  bool color = useColor(g.output, STDOUT_FILENO);
  for (const auto& t : outcome.targets) {
    const char* label = "";
    const char* c = "";
    switch (t.result) {
      case TargetResult::NoChanges: label = "no changes"; c = "\033[32m"; break;
      case TargetResult::Applied: label = "applied"; c = "\033[32m"; break;
      case TargetResult::Refused: label = "refused"; c = "\033[31m"; break;
      case TargetResult::RolledBack: label = "failed, rolled back"; c = "\033[33m"; break;
      case TargetResult::Damaged: label = "FAILED, NOT fully restored"; c = "\033[31;1m"; break;
    }
    std::ostream& os = (t.result == TargetResult::Applied || t.result == TargetResult::NoChanges) ? std::cout : std::cerr;
    os << (color ? c : "") << "Target " << t.target << ": " << label << (color ? "\033[0m" : "");
    if (t.generation > 0) os << " (generation " << t.generation << ")";
    os << "\n";
    if (!t.message.empty() && t.result != TargetResult::NoChanges) os << "  " << t.message << "\n";
  }
  return outcome.exitCode();
}

FanoutOptions fanout(const GlobalOptions& g, Progress* progress) {
  FanoutOptions f;
  f.parallelism = g.parallelism;
  f.targetTimeout = g.targetTimeout;
  f.progress = progress;
  return f;
}

// Names, on stderr, the targets a plan left out; true if there were any (the command then exits 1).
bool reportUnreachable(const Plan& plan, const char* what) {
  if (plan.unreachable.empty()) return false;
  for (const auto& u : plan.unreachable)
    std::cerr << "error: target " << u.target << " was not " << what << ": it could not be reached: " << u.error << "\n";
  return true;
}

ApplyOptions applyOptions(const GlobalOptions& g, Progress* progress) {
  ApplyOptions o;
  o.faults = FaultInjection::fromEnv();
  o.progress = progress;
  o.interrupted = g.interrupted;
  o.parallelism = g.parallelism;
  return o;
}

bool confirmInteractively() {
  if (!isatty(STDIN_FILENO)) {
    std::cerr << "error: refusing to apply without confirmation: stdin is not a terminal; "
                 "pass --auto-approve (or apply a reviewed plan file)\n";
    return false;
  }
  std::cout << "\nDo you want to apply these changes? Only 'yes' will be accepted: " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != "yes") {
    std::cerr << "Apply cancelled.\n";
    return false;
  }
  return true;
}

YAML::Node toYaml(const Json& j) {
  YAML::Node n;
  if (j.is_object()) {
    n = YAML::Node(YAML::NodeType::Map);
    for (auto it = j.begin(); it != j.end(); ++it) n[it.key()] = toYaml(it.value());
  } else if (j.is_array()) {
    n = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& e : j) n.push_back(toYaml(e));
  } else if (j.is_string()) {
    n = j.get<std::string>();
  } else if (j.is_boolean()) {
    n = j.get<bool>();
  } else if (j.is_number_integer()) {
    n = j.get<int64_t>();
  } else if (j.is_number()) {
    n = j.get<double>();
  }
  return n;
}

}  // namespace

int cmdValidate(const GlobalOptions& g, const ValidateArgs& a) {
  Diagnostics diags;
  DesiredState desired = loadDesired(a.files, g.registry(), diags);
  if (a.format == "json") {
    Json out{{"valid", !diags.hasErrors()}, {"diagnostics", Json::array()}};
    for (const auto& d : diags.items())
      out["diagnostics"].push_back(Json{{"severity", d.severity == Severity::Error ? "error" : "warning"},
                                        {"location", d.loc.str()},
                                        {"message", d.message},
                                        {"code", d.code}});
    std::cout << out.dump(2) << "\n";
  } else {
    printDiagnostics(g, diags);
    if (diags.hasErrors())
      std::cerr << diags.errorCount() << " error(s), " << diags.warningCount() << " warning(s)\n";
    else
      std::cout << "Valid: " << desired.targets.size() << " target(s), " << desired.resources.size()
                << " resource(s) in " << desired.files.size() << " file(s)"
                << (diags.warningCount() ? ", " + std::to_string(diags.warningCount()) + " warning(s)" : "") << ".\n";
  }
  return diags.hasErrors() ? 1 : 0;
}

int cmdPlan(const GlobalOptions& g, const PlanArgs& a) {
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  auto progress = makeProgress(g.output);  // outlives the prefetch, which reports to it
  std::optional<Prefetch> prefetch;
  if (a.observed.empty()) prefetch.emplace(g.registry(), **store, toSet(a.targets), fanout(g, progress.get()));
  auto desired = loadOrReport(g, a.files, prefetch ? &*prefetch : nullptr);
  if (!desired) return 1;
  Diagnostics diags;
  Result<Plan> plan = err("");
  if (!a.observed.empty()) {
    std::ifstream in(a.observed);
    if (!in) return fail("cannot read snapshot " + a.observed);
    Json j = Json::parse(in, nullptr, false);
    if (j.is_discarded()) return fail(a.observed + ": not JSON");
    auto snapshots = snapshotFromJson(j);
    if (!snapshots) return fail(a.observed + ": " + snapshots.error().message);
    plan = planAgainst(*desired, toSet(a.targets), *snapshots, g.registry(), diags);
  } else {
    plan = planDesired(*desired, toSet(a.targets), **store, g.registry(), diags, &*prefetch);
  }
  if (!plan) return fail(plan.error().message);
  if (!diags.items().empty()) printDiagnostics(g, diags);
  if (diags.hasErrors()) return 1;
  if (a.observed.empty()) warnPendingJournals(**store, *plan);
  std::cout << renderPlan(g, *plan, a.format, a.showUnchanged);
  if (!a.out.empty()) {
    if (Status s = writeFileAtomic(a.out, renderPlanJson(*plan)); !s) return fail(s.error().message);
    std::cerr << "Saved the plan to " << a.out << ". Apply exactly this plan with: vnetplan apply " << a.out << "\n";
  }
  if (reportUnreachable(*plan, "planned")) return 1;
  if (a.detailedExitCode && plan->hasChanges()) return 2;
  return 0;
}

int cmdApply(const GlobalOptions& g, const ApplyArgs& a) {
  if (a.planFile.empty() == a.files.empty())
    return fail("apply needs either a saved PLANFILE or -f manifests (not both)");
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  Plan plan;
  std::vector<std::unique_ptr<state::Lock>> locks;
  std::vector<std::string> manifestFiles = a.files;
  if (!a.planFile.empty()) {
    std::ifstream in(a.planFile);
    if (!in) return fail("cannot read plan file " + a.planFile);
    Json j = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return fail(a.planFile + ": not a JSON plan file");
    auto p = planFromJson(j);
    if (!p) return fail(a.planFile + ": " + p.error().message);
    plan = std::move(*p);
    // The manifests the plan was made from must not have changed under it (when they are here to check).
    bool present = !plan.manifestFiles.empty() &&
                   std::all_of(plan.manifestFiles.begin(), plan.manifestFiles.end(),
                               [](const std::string& f) { return fs::exists(f); });
    if (present) {
      Diagnostics diags;
      DesiredState now = loadDesired(plan.manifestFiles, g.registry(), diags);
      if (now.digest != plan.manifestsDigest)
        return fail("the manifests changed since " + a.planFile + " was made (digest " +
                    plan.manifestsDigest.substr(0, 12) + " then, " + now.digest.substr(0, 12) +
                    " now); run plan again");
    }
    manifestFiles = plan.manifestFiles;
  } else {
    auto desired = loadOrReport(g, a.files);
    if (!desired) return 1;
    // Lock before planning, so the plan cannot be overtaken by a concurrent apply.
    std::vector<std::string> names;
    for (const auto& t : desired->targets)
      if (a.targets.empty() || std::find(a.targets.begin(), a.targets.end(), t.name) != a.targets.end())
        names.push_back(t.name);
    auto held = lockTargets(**store, names, "apply", a.lockTimeout);
    if (!held) return fail(held.error().message);
    locks = std::move(*held);
    Diagnostics diags;
    auto observing = makeProgress(g.output);
    auto p = planDesired(*desired, toSet(a.targets), **store, g.registry(), diags, nullptr, fanout(g, observing.get()));
    if (!p) return fail(p.error().message);
    if (!diags.items().empty()) printDiagnostics(g, diags);
    if (diags.hasErrors()) return 1;
    plan = std::move(*p);
  }
  std::cout << renderPlan(g, plan, a.format, false);
  if (plan.hasChanges() && !a.autoApprove && a.planFile.empty() && !confirmInteractively()) return 1;
  auto progress = makeProgress(g.output);
  ApplyOptions opts = applyOptions(g, progress.get());
  opts.parallelism = g.parallelism;
  opts.lockTimeout = a.lockTimeout;
  opts.locksHeld = !locks.empty();
  opts.confirmTimeout = a.confirmTimeout;
  for (const auto& spec : a.probes) {
    auto p = parseProbe(spec);
    if (!p) return fail(p.error().message);
    opts.probes.push_back(*p);
  }
  opts.gitCommit = gitCommitOf(manifestFiles);
  int rc = reportOutcome(g, applyPlan(plan, **store, g.registry(), opts));
  if (reportUnreachable(plan, "applied") && rc == 0) rc = 1;
  return rc;
}

int cmdConfirm(const GlobalOptions& g, const std::vector<std::string>& targets) {
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  auto confirmed = confirmPending(**store, targets);
  if (!confirmed) return fail(confirmed.error().message);
  if (confirmed->empty()) {
    std::cout << "Nothing awaits confirmation.\n";
    return 1;
  }
  for (const auto& t : *confirmed) std::cout << "Confirmed target " << t << ": the apply keeps its change.\n";
  return 0;
}

int cmdRollback(const GlobalOptions& g, const RollbackArgs& a) {
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  auto progress = makeProgress(g.output);
  ApplyOptions opts = applyOptions(g, progress.get());
  opts.lockTimeout = a.lockTimeout;
  if (!a.generation) {
    auto outcome = recoverJournals(**store, g.registry(), opts, a.targets);
    if (outcome.targets.empty()) {
      std::cout << "Nothing to roll back: no interrupted apply is recorded.\n";
      return 0;
    }
    return reportOutcome(g, outcome);
  }
  if (a.targets.size() != 1) return fail("rollback --to needs exactly one --target");
  if (a.files.empty()) return fail("rollback --to needs -f manifests that declare the Target (its connection)");
  auto desired = loadOrReport(g, a.files);
  if (!desired) return 1;
  const Target* t = desired->findTarget(a.targets[0]);
  if (!t) return fail("no Target " + a.targets[0] + " in the manifests");
  return reportOutcome(g, rollbackToGeneration(*t, *a.generation, **store, g.registry(), opts));
}

int cmdDrift(const GlobalOptions& g, const DriftArgs& a) {
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  auto progress = makeProgress(g.output);
  Prefetch prefetch(g.registry(), **store, toSet(a.targets), fanout(g, progress.get()));
  auto desired = loadOrReport(g, a.files, &prefetch);
  if (!desired) return 1;
  Diagnostics diags;
  auto plan = planDesired(*desired, toSet(a.targets), **store, g.registry(), diags, &prefetch, fanout(g, progress.get()));
  if (!plan) return fail(plan.error().message);
  if (!diags.items().empty()) printDiagnostics(g, diags);
  if (diags.hasErrors()) return 1;
  if (a.format == "json") std::cout << renderDriftJson(*plan);
  else if (a.format == "junit") std::cout << renderDriftJunit(*plan);
  else if (a.format == "prometheus") std::cout << renderDriftPrometheus(*plan);
  else std::cout << renderDriftText(*plan, {useColor(g.output, STDOUT_FILENO), false});
  if (reportUnreachable(*plan, "checked for drift")) return 1;
  return plan->drift.empty() ? 0 : 2;
}

int cmdShow(const GlobalOptions& g, const ShowArgs& a) {
  auto desired = loadOrReport(g, a.files);
  if (!desired) return 1;
  const Target* t = desired->findTarget(a.target);
  if (!t) return fail("no Target " + a.target + " in the manifests");
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  auto st = (*store)->load(a.target);
  if (!st) return fail(st.error().message);
  auto live = connectAndObserve(*t, g.registry());
  if (!live) return fail(live.error().message);
  if (a.snapshot) {
    std::map<std::string, TargetSnapshot> snap;
    snap[a.target] = TargetSnapshot{live->observed, ownedOf(*st)};
    std::cout << snapshotToJson(snap).dump(2) << "\n";
    return 0;
  }
  Json docs = Json::array();
  for (const auto& [addr, obj] : live->observed.objects) {
    bool owned = st->owned.count(addr) != 0;
    if (!owned && !a.all) continue;
    Json spec = obj.attrs.toJson();
    spec["targets"] = Json::array({a.target});
    if (!owned) spec["adopt"] = true;
    docs.push_back(Json{{"apiVersion", "vnetplan.io/v1"},
                        {"kind", kindName(addr.kind)},
                        {"metadata", {{"name", addr.name}}},
                        {"spec", spec}});
  }
  if (a.format == "json") {
    std::cout << docs.dump(2) << "\n";
    return 0;
  }
  std::cout << "# live state of target " << a.target << " (" << docs.size() << " object(s)"
            << (a.all ? ", including unmanaged ones marked adopt: true" : ", managed by vnetplan") << ")\n";
  for (const auto& d : docs) {
    YAML::Emitter e;
    e << toYaml(d);
    std::cout << "---\n" << e.c_str() << "\n";
  }
  return 0;
}

int cmdGraph(const GlobalOptions& g, const GraphArgs& a) {
  auto desired = loadOrReport(g, a.files);
  if (!desired) return 1;
  auto id = [](const Address& addr) {
    std::string s = addr.str();
    for (auto& c : s)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return "n_" + s;
  };
  std::ostringstream out;
  if (a.format == "dot") {
    out << "digraph vnetplan {\n  rankdir=LR;\n";
    for (const auto& t : desired->targets) {
      out << "  subgraph \"cluster_" << t.name << "\" {\n    label=\"" << t.name << " (" << t.provider << ")\";\n";
      for (const auto& r : desired->resources)
        if (r.addr.target == t.name)
          out << "    " << id(r.addr) << " [label=\"" << kindName(r.addr.kind) << "\\n" << r.addr.name << "\"];\n";
      out << "  }\n";
    }
    for (const auto& r : desired->resources)
      for (const auto& dep : r.dependsOn) out << "  " << id(r.addr) << " -> " << id(dep) << ";\n";
    out << "}\n";
  } else {
    out << "graph LR\n";
    for (const auto& t : desired->targets) {
      out << "  subgraph " << id(Address{t.name, Kind::Target, "t"}) << "[\"" << t.name << " (" << t.provider
          << ")\"]\n";
      for (const auto& r : desired->resources)
        if (r.addr.target == t.name)
          out << "    " << id(r.addr) << "[\"" << kindName(r.addr.kind) << " " << r.addr.name << "\"]\n";
      out << "  end\n";
    }
    for (const auto& r : desired->resources)
      for (const auto& dep : r.dependsOn) out << "  " << id(r.addr) << " --> " << id(dep) << "\n";
  }
  std::cout << out.str();
  return 0;
}

int cmdStateList(const GlobalOptions& g) {
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  auto targets = (*store)->targets();
  if (!targets) return fail(targets.error().message);
  if (targets->empty()) std::cout << "No state yet in " << g.stateUrl << ".\n";
  for (const auto& t : *targets) {
    auto st = (*store)->load(t);
    if (!st) return fail(st.error().message);
    std::cout << t << ": generation " << st->generation << ", " << st->owned.size() << " owned object(s)";
    auto j = (*store)->journal(t);
    if (j && j->has_value())
      std::cout << ", UNFINISHED " << (**j).operation << " (journal " << (**j).id << ", "
                << state::journalStatusName((**j).status) << ")";
    auto d = (*store)->damage(t);
    if (d && d->has_value()) std::cout << ", DAMAGED (" << (**d).unrestored.size() << " unrestored)";
    std::cout << "\n";
  }
  auto locks = (*store)->backend().locks();
  if (locks)
    for (const auto& l : *locks)
      std::cout << "lock " << l.info.id << " on " << l.info.name << " by " << l.info.owner << " (pid " << l.info.pid
                << ", " << l.info.operation << ", since " << l.info.created << ")"
                << (l.held ? "" : " — stale: holder is gone") << "\n";
  return 0;
}

int cmdStateShow(const GlobalOptions& g, const std::string& target) {
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  auto st = (*store)->load(target);
  if (!st) return fail(st.error().message);
  Json out{{"target", target}, {"generation", st->generation}, {"owned", Json::object()}};
  for (const auto& [addr, obj] : st->owned)
    out["owned"][addr.str()] = Json{{"provider", obj.provider},
                                    {"since_generation", obj.sinceGeneration},
                                    {"last_applied", obj.lastApplied.toJson()}};
  auto d = (*store)->damage(target);
  if (d && d->has_value()) out["damage"] = (**d).unrestored;
  std::cout << out.dump(2) << "\n";
  return 0;
}

int cmdStateHistory(const GlobalOptions& g, const std::string& target) {
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  auto h = (*store)->history(target);
  if (!h) return fail(h.error().message);
  if (h->empty()) std::cout << "No generations for target " << target << ".\n";
  for (const auto& gen : *h)
    std::cout << gen.number << "  " << gen.created << "  " << gen.operation << "  " << gen.summary << "  "
              << gen.owned.size() << " owned"
              << (gen.gitCommit.empty() ? "" : "  commit " + gen.gitCommit.substr(0, 12))
              << (gen.manifestsDigest.empty() ? "" : "  manifests " + gen.manifestsDigest.substr(0, 12)) << "\n";
  return 0;
}

int cmdStateUnlock(const GlobalOptions& g, const std::string& lockId) {
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  if (Status s = (*store)->backend().unlock(lockId); !s) return fail(s.error().message);
  std::cout << "Removed lock " << lockId << ".\n";
  return 0;
}

int cmdSchema() {
  std::cout << SchemaValidator::schemaText();
  return 0;
}

int cmdDemo(const GlobalOptions& g, const DemoArgs& a) {
  if (geteuid() != 0) return fail("the demo creates a network namespace and needs root (run it with sudo)");
  const std::string netns = "vnetplan-demo-" + std::to_string(getpid());
  std::string text(kEmbeddedDemo, kEmbeddedDemoSize);
  auto pos = text.find("netns: vnetplan-demo");
  if (pos == std::string::npos) return fail("internal: the embedded demo has no netns line");
  text.replace(pos, std::string("netns: vnetplan-demo").size(), "netns: " + netns);

  char dirTemplate[] = "/tmp/vnetplan-demo-state-XXXXXX";
  if (!mkdtemp(dirTemplate)) return fail("cannot create a temporary state directory");
  GlobalOptions dg = g;
  dg.stateUrl = std::string("file://") + dirTemplate;
  auto store = openStore(dg);
  if (!store) return fail(store.error().message);

  std::cout << "vnetplan demo: a bridge with two VM ports in the throwaway network namespace " << netns
            << "\n(state in " << dirTemplate << "). The manifests:\n\n" << std::string(kEmbeddedDemo, kEmbeddedDemoSize)
            << "\n";
  int rc = 0;
  {
    Diagnostics diags;
    DesiredState desired = loadDesiredText(text, "quickstart.yaml", g.registry(), diags);
    printDiagnostics(g, diags);
    if (diags.hasErrors()) return 1;
    auto plan = planDesired(desired, {}, **store, g.registry(), diags);
    if (!plan) return fail(plan.error().message);
    std::cout << "== vnetplan plan ==\n" << renderPlanText(*plan, {useColor(g.output, STDOUT_FILENO), false});
    auto progress = makeProgress(g.output);
    std::cout << "\n== vnetplan apply ==\n";
    rc = reportOutcome(g, applyPlan(*plan, **store, g.registry(), applyOptions(g, progress.get())));
    if (rc == 0) {
      auto again = planDesired(desired, {}, **store, g.registry(), diags);
      if (!again) return fail(again.error().message);
      std::cout << "\n== vnetplan plan (again: apply is idempotent) ==\n"
                << renderPlanText(*again, {useColor(g.output, STDOUT_FILENO), false});
      if (again->hasChanges()) rc = 1;
      std::cout << "\n== live state (ip -br link / addr, inside " << netns << ") ==\n" << std::flush;
      std::string cmd = "ip -n " + netns + " -br link show; ip -n " + netns + " -br addr show";
      if (std::system(cmd.c_str()) != 0) std::cout << "(could not run ip)\n";
    }
  }
  if (a.keep) {
    std::cout << "\nKept: netns " << netns << ", state " << dirTemplate << "\n";
  } else {
    std::string nsPath = "/run/netns/" + netns;
    umount2(nsPath.c_str(), MNT_DETACH);
    ::unlink(nsPath.c_str());
    std::error_code ec;
    fs::remove_all(dirTemplate, ec);
    std::cout << "\nRemoved the demo namespace " << netns << " and its state.\n";
  }
  return rc;
}

}  // namespace vnetplan::cli
