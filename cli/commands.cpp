#include "cli/commands.h"

#include "base/retain.h"

#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "base/probe.h"
#include "cli/common.h"
#include "cli/providers.h"
#include "cli/yaml_out.h"
#include "model/codec.h"
#include "reconciler/applier.h"
#include "reconciler/graph.h"
#include "reconciler/pipeline.h"
#include "reconciler/render.h"
#include "reconciler/schema_validator.h"
#include "reconciler/snapshot.h"
#include "state/backends.h"
#include "state/migrate.h"
#include "state/store.h"

namespace vnetplan::cli {

namespace fs = std::filesystem;

const ProviderRegistry& GlobalOptions::registry() const { return providers ? *providers : builtinProviders(); }


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
      say(std::to_string(diags.errorCount()) + " error(s), " + std::to_string(diags.warningCount()) + " warning(s)");
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
  FanoutOptions planFanout = fanout(g, progress.get());
  planFanout.lockTimeout = a.lockTimeout;
  if (a.observed.empty()) prefetch.emplace(g.registry(), **store, toSet(a.targets), planFanout);
  auto desired = loadOrReport(g, a.files, prefetch ? &*prefetch : nullptr);
  if (!desired) return 1;
  Diagnostics diags;
  Result<Plan> plan = err("");
  // A plan that is saved (-out) or printed as JSON can be applied later: it records what it saw (fingerprints).
  const bool applicable = !a.out.empty() || a.format == "json";
  if (!a.observed.empty()) {
    std::ifstream in(a.observed);
    if (!in) return fail("cannot read snapshot " + a.observed);
    Json j = Json::parse(in, nullptr, false);
    if (j.is_discarded()) return fail(a.observed + ": not JSON");
    auto snapshots = snapshotFromJson(j);
    if (!snapshots) return fail(a.observed + ": " + snapshots.error().message);
    plan = planAgainst(*desired, toSet(a.targets), *snapshots, g.registry(), diags, {}, applicable);
  } else {
    plan = planDesired(*desired, toSet(a.targets), **store, g.registry(), diags, &*prefetch, planFanout, applicable);
  }
  if (!plan) return fail(plan.error().message);
  if (!diags.items().empty()) printDiagnostics(g, diags);
  if (diags.hasErrors()) return 1;
  std::cout << renderPlan(g, *plan, a.format, a.showUnchanged);
  if (!a.out.empty()) {
    if (Status s = writeFileAtomic(a.out, renderPlanJson(*plan)); !s) return fail(s.error().message);
    say("Saved the plan to " + a.out + ". Apply exactly this plan with: vnetplan apply " + a.out);
  }
  const int rc = reportUnreachable(*plan, "planned") ? 1 : a.detailedExitCode && plan->hasChanges() ? 2 : 0;
  retainUntilExit(std::move(*plan));
  retainUntilExit(std::move(*desired));
  return rc;
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
  if (a.confirmTimeout) opts.startWatchdog = watchdogStarter(g);
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
    return fail(std::string("nothing awaits confirmation (no apply with --confirm-timeout is waiting") +
                (targets.empty() ? "" : " on the targets given") + ")");
  }
  // The waiting apply (or, if it is gone, its watchdog) commits the change: wait a little to say which.
  for (const auto& t : *confirmed) {
    bool done = false;
    for (int i = 0; i < 100 && !done; ++i) {
      auto j = (*store)->journal(t);
      done = j && !j->has_value();
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::cout << "Confirmed target " << t << ": " << (done ? "the change is kept (committed)." : "the change is kept; the apply is committing it.") << "\n";
  }
  return 0;
}

int cmdConfirmWatchdog(const GlobalOptions& g, const WatchdogArgs& a) {
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  ApplyOptions opts = applyOptions(g, nullptr);
  auto outcome = superviseConfirmation(**store, g.registry(), a.target, a.journal, opts);
  for (const auto& t : outcome.targets)
    spdlog::warn("target={} confirm watchdog: {}", t.target, t.message);
  return outcome.exitCode();
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
  // Like apply: show what it will do, and ask (or --auto-approve).
  auto approve = [&](const Plan& plan) {
    std::cout << renderPlan(g, plan, "text", false);
    if (!plan.hasChanges() || a.autoApprove) return true;
    return confirmInteractively();
  };
  return reportOutcome(g, rollbackToGeneration(*t, *a.generation, **store, g.registry(), opts, approve));
}

int cmdDrift(const GlobalOptions& g, const DriftArgs& a) {
  auto store = openStore(g);
  if (!store) return fail(store.error().message);
  auto progress = makeProgress(g.output);
  FanoutOptions driftFanout = fanout(g, progress.get());
  driftFanout.lockTimeout = a.lockTimeout;
  Prefetch prefetch(g.registry(), **store, toSet(a.targets), driftFanout);
  auto desired = loadOrReport(g, a.files, &prefetch);
  if (!desired) return 1;
  Diagnostics diags;
  auto plan = planDesired(*desired, toSet(a.targets), **store, g.registry(), diags, &prefetch, driftFanout);
  if (!plan) return fail(plan.error().message);
  if (!diags.items().empty()) printDiagnostics(g, diags);
  if (diags.hasErrors()) return 1;
  if (a.format == "json") std::cout << renderDriftJson(*plan);
  else if (a.format == "junit") std::cout << renderDriftJunit(*plan);
  else if (a.format == "prometheus") std::cout << renderDriftPrometheus(*plan, std::chrono::system_clock::now());
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
    // Manifest fields only: an unset attribute is left out, and what a provider observes about an object's state
    // (status.*) is not something a manifest sets.
    Attrs fields;
    for (const auto& [path, v] : obj.attrs.values())
      if (!v.is_null() && path.rfind("status.", 0) != 0) fields.set(path, v);
    Json spec = fields.toJson();
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
    std::cout << "---\n" << toYamlText(d) << "\n";
  }
  return 0;
}

int cmdGraph(const GlobalOptions& g, const GraphArgs& a) {
  auto desired = loadOrReport(g, a.files);
  if (!desired) return 1;
  std::cout << (a.format == "dot" ? renderGraphDot(*desired) : renderGraphMermaid(*desired));
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

int cmdStateMigrate(const GlobalOptions& g, const std::string& toUrl) {
  auto from = openStore(g);
  if (!from) return fail(from.error().message);
  auto toBackend = state::openBackend(toUrl);
  if (!toBackend) return fail("--to " + state::redactStateUrl(toUrl) + ": " + toBackend.error().message);
  if ((*toBackend)->url() == (*from)->backend().url()) return fail("--to names the store being migrated (--state)");
  state::Store to(std::move(*toBackend));
  auto report = state::migrate(**from, to);
  if (!report) return fail(report.error().message);
  std::cout << "Copied " << report->keys << " document(s) (" << report->bytes << " bytes) of " << report->targets
            << " target(s) from " << state::redactStateUrl(g.stateUrl) << " to " << state::redactStateUrl(toUrl)
            << " and verified them. The source is unchanged; point --state (or VNETPLAN_STATE) at the new store.\n";
  return 0;
}

int cmdSchema() {
  std::cout << SchemaValidator::schemaText();
  return 0;
}

}  // namespace vnetplan::cli
