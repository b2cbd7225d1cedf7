#include "cli/app.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>

#include "base/duration.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/output.h"
#include "cli/providers.h"
#include "cli/serve.h"

namespace vnetplan::cli {

namespace {

const char* kExitCodes = R"(
Exit codes:
  validate              0 valid, 1 invalid
  plan                  0 success (with --detailed-exitcode: 0 no changes, 1 error, 2 changes present)
  drift                 0 in sync, 1 error, 2 drift present
  apply / rollback      0 applied and verified
                        1 failed, and everything was rolled back (the target is as before), or refused
                        3 failed, and the rollback could not restore everything (the message lists
                          exactly what is left; state records it; run 'vnetplan rollback' to retry)
                        4 applied and verified, but the state store could not record it (the journal
                          is kept: 'vnetplan rollback' undoes the change; then apply again)

Environment:
  NO_COLOR              disable colored output
  VNETPLAN_STATE        default for --state
  VNETPLAN_SERVE_TOKEN  bearer token of 'serve' (or --token-file)
  VNETPLAN_ETCD_USER, VNETPLAN_ETCD_PASSWORD (or _PASSWORD_FILE), VNETPLAN_ETCD_CACERT, VNETPLAN_ETCD_CERT,
  VNETPLAN_ETCD_KEY     etcd:// authentication and TLS (or the URL's options user=, password-env=, cacert=...)
  VNETPLAN_CACHE_DIR    where parsed manifests are cached (default $XDG_CACHE_HOME/vnetplan or
                          ~/.cache/vnetplan); VNETPLAN_CACHE=off disables the cache
  VNETPLAN_OVSDB_TIMEOUT_MS  bound on every OVSDB request (default 30000)
  VNETPLAN_OVS_SETTLE_MS     how long apply waits for ovs-vswitchd to take a change (default 10000)
)";

// "unknown command 'pln' (did you mean 'plan'?)" when the first word that is not an option (or an option's value)
// names no subcommand.
std::optional<std::string> unknownCommand(const CLI::App& app, int argc, char** argv) {
  static const std::set<std::string> withValue{"--state", "--log-level", "--log-format", "--parallelism",
                                               "--target-timeout"};
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    if (!sub->get_group().empty()) names.push_back(sub->get_name());
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("-", 0) == 0) {
      if (withValue.count(a)) ++i;
      continue;
    }
    if (std::find(names.begin(), names.end(), a) != names.end()) return std::nullopt;
    std::string hint = closestMatch(a, names);
    return "unknown command '" + a + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
           "; 'vnetplan --help' lists the commands";
  }
  return std::nullopt;
}

std::atomic<bool> gInterrupted{false};
extern "C" void onSignal(int) { gInterrupted.store(true); }

}  // namespace

int run(int argc, char** argv) { return run(argc, argv, builtinProviders()); }

int run(int argc, char** argv, const ProviderRegistry& providers) {
  CLI::App app{
      "vnetplan: declarative VM networking. Keep manifests of bridges, bonds, VLANs, port groups and policies "
      "in Git; plan diffs them against live hosts, apply reconciles idempotently, verifies, and rolls back on "
      "failure."};
  app.footer(kExitCodes);
  app.require_subcommand(1);
  // Global options are accepted after the subcommand too (vnetplan plan -f x --state file://y).
  app.fallthrough();
  app.set_version_flag("--version", std::string("vnetplan ") + VNETPLAN_VERSION);

  GlobalOptions g;
  g.providers = &providers;
  if (const char* s = std::getenv("VNETPLAN_STATE"); s && *s) g.stateUrl = s;
  app.add_option("--state", g.stateUrl,
                 "State store URL: file://DIR (relative to the working directory) or etcd://host:port/prefix")
      ->capture_default_str();
  app.add_option("--log-level", g.output.logLevel, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_option("--log-format", g.output.logFormat, "text|json")->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--no-color", g.output.noColor, "Disable colors (also: NO_COLOR=1)");
  app.add_flag_function("-v,--verbose", [&](int64_t n) { g.output.verbosity += static_cast<int>(n); },
                        "More log output (repeatable)");
  app.add_flag_function("-q,--quiet", [&](int64_t n) { g.output.verbosity -= static_cast<int>(n); },
                        "Less output: no progress");
  app.add_option("--parallelism", g.parallelism, "Targets observed and applied at once")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  std::string targetTimeout = "60s";
  app.add_option("--target-timeout", targetTimeout,
                 "How long one target may take to connect and be observed before it is reported as unreachable "
                 "(the others go on)")
      ->capture_default_str();

  // validate
  ValidateArgs va;
  auto* validate = app.add_subcommand("validate", "Check manifests: schema, references, lint. Never touches a target.");
  validate->add_option("-f,--file", va.files, "Manifest file or directory (repeatable)")->required();
  validate->add_option("--format", va.format, "text|json")->check(CLI::IsMember({"text", "json"}));

  // plan
  PlanArgs pa;
  auto* plan = app.add_subcommand("plan", "Show what apply would change: manifests vs live state (and drift).");
  plan->add_option("-f,--file", pa.files, "Manifest file or directory (repeatable)")->required();
  plan->add_option("--target", pa.targets, "Only these targets (repeatable)");
  plan->add_option("--out", pa.out, "Save the plan (JSON) for 'vnetplan apply PLANFILE'");
  plan->add_option("--format", pa.format, "text|json|markdown")->check(CLI::IsMember({"text", "json", "markdown"}));
  plan->add_flag("--detailed-exitcode", pa.detailedExitCode, "Exit 0 = no changes, 1 = error, 2 = changes");
  plan->add_option("--observed", pa.observed,
                   "Plan against a snapshot ('vnetplan show --snapshot') instead of connecting to targets");
  plan->add_flag("--show-unchanged", pa.showUnchanged, "List up-to-date resources too");
  std::string planLockTimeout = "0s";
  plan->add_option("--lock-timeout", planLockTimeout,
                   "How long to wait for an apply running on a target to finish (otherwise that target is "
                   "reported as busy and not planned)");

  // apply
  ApplyArgs aa;
  std::string lockTimeout = "0s";
  auto* apply = app.add_subcommand("apply", "Apply a saved plan, or plan and apply manifests; verify; roll back on failure.");
  apply->add_option("planfile", aa.planFile, "A plan saved with 'plan --out' (refused if live state moved since)");
  apply->add_option("-f,--file", aa.files, "Manifest file or directory (repeatable)");
  apply->add_option("--target", aa.targets, "Only these targets (repeatable)");
  apply->add_flag("--auto-approve", aa.autoApprove, "Do not ask for confirmation");
  apply->add_option("--lock-timeout", lockTimeout, "How long to wait for a target's lock (e.g. 30s, 5m)");
  std::string confirmTimeout;
  apply->add_option("--confirm-timeout", confirmTimeout,
                    "Keep the change un-committed and roll it back unless 'vnetplan confirm' is run (or every "
                    "--probe succeeds) within this time, e.g. 120s (like netplan try). apply WAITS until then; "
                    "confirm from another shell with 'vnetplan confirm' (same --state). The deadline holds even if "
                    "this process is hung up or killed: a watchdog process rolls the change back then");
  apply->add_option("--probe", aa.probes,
                    "With --confirm-timeout: tcp:HOST:PORT or icmp:HOST (repeatable); run where the target's "
                    "traffic is (inside a linux Target's namespace)");
  apply->add_option("--format", aa.format, "Plan rendering: text|json|markdown")
      ->check(CLI::IsMember({"text", "json", "markdown"}));

  // The confirmation watchdog an apply with --confirm-timeout starts (not for users).
  WatchdogArgs wd;
  auto* watchdog = app.add_subcommand("__confirm-watchdog", "");
  watchdog->group("");
  watchdog->add_option("--target", wd.target)->required();
  watchdog->add_option("--journal", wd.journal)->required();

  std::vector<std::string> confirmTargets;
  auto* confirm = app.add_subcommand(
      "confirm",
      "Keep the change of an apply waiting with --confirm-timeout (run it from another shell). Exit codes: 0 "
      "confirmed; 1 nothing awaits confirmation, the deadline has passed (the change is being rolled back), or "
      "error.");
  confirm->add_option("--target", confirmTargets, "Only these targets (default: every target awaiting confirmation)");

  // rollback
  RollbackArgs ra;
  std::string rbLockTimeout = "0s";
  auto* rollback = app.add_subcommand(
      "rollback",
      "Finish an interrupted apply by restoring the state recorded before it; or, with --to, return a target's "
      "owned objects to an earlier generation.");
  rollback->add_option("--to", ra.generation, "Generation to return to (see 'state history TARGET')");
  rollback->add_option("--target", ra.targets, "Only these targets (with --to: exactly one)");
  rollback->add_option("-f,--file", ra.files, "Manifests that declare the Target (needed with --to)");
  rollback->add_option("--lock-timeout", rbLockTimeout, "How long to wait for a target's lock");
  rollback->add_flag("--auto-approve", ra.autoApprove, "With --to: do not ask for confirmation of the plan");

  // drift
  DriftArgs da;
  auto* drift = app.add_subcommand("drift", "Read-only: report live state that differs from what vnetplan last applied.");
  drift->add_option("-f,--file", da.files, "Manifest file or directory (repeatable)")->required();
  drift->add_option("--target", da.targets, "Only these targets (repeatable)");
  drift->add_option("--format", da.format, "text|json|junit|prometheus")
      ->check(CLI::IsMember({"text", "json", "junit", "prometheus"}));
  std::string driftLockTimeout = "0s";
  drift->add_option("--lock-timeout", driftLockTimeout,
                    "How long to wait for an apply running on a target to finish (otherwise it is reported as busy)");

  // show
  ShowArgs sa;
  auto* show = app.add_subcommand("show", "Render a target's live state as manifests (import).");
  show->add_option("--target", sa.target, "The Target to read")->required();
  show->add_option("-f,--file", sa.files, "Manifests that declare the Target")->required();
  show->add_option("--format", sa.format, "yaml|json")->check(CLI::IsMember({"yaml", "json"}));
  show->add_flag("--all", sa.all, "Include objects vnetplan does not manage");
  show->add_flag("--snapshot", sa.snapshot, "Write a snapshot (live + owned, JSON) for 'plan --observed'");

  // graph
  GraphArgs ga;
  auto* graph = app.add_subcommand("graph",
      "Draw the declared topology: targets (and namespaces veth pairs reach) as boxes; switches, port groups with "
      "their VLANs, ports, networks with their modes, mirrors; uplink NICs and teams; veth pairs. Render the DOT "
      "with graphviz (dot -Tsvg), paste the Mermaid into any Markdown that renders it. Never contacts a target.");
  graph->add_option("-f,--file", ga.files, "Manifest file or directory (repeatable)")->required();
  graph->add_option("--format", ga.format, "mermaid|dot")->check(CLI::IsMember({"mermaid", "dot"}));

  // state
  auto* stateCmd = app.add_subcommand("state", "Inspect and repair the state store.");
  stateCmd->require_subcommand(1);
  std::string stTarget, stLock;
  auto* stList = stateCmd->add_subcommand("list", "Targets with state, their generation, owned objects and locks.");
  auto* stShow = stateCmd->add_subcommand("show", "Owned objects of a target with their last applied values.");
  stShow->add_option("target", stTarget)->required();
  auto* stHistory = stateCmd->add_subcommand("history", "Generations of a target.");
  stHistory->add_option("target", stTarget)->required();
  auto* stUnlock = stateCmd->add_subcommand("unlock", "Remove a lock left by a process that is gone.");
  stUnlock->add_option("lock_id", stLock)->required();
  std::string stMigrateTo;
  auto* stMigrate = stateCmd->add_subcommand(
      "migrate", "Copy the whole store (--state) to another, empty one (e.g. file:// to etcd://), and verify the copy.");
  stMigrate->add_option("--to", stMigrateTo, "The destination store's URL")->required();

  // serve
  ServeArgs sv;
  std::string svInterval = "60s", svRunTimeout = "10m";
  auto* serveCmd = app.add_subcommand(
      "serve",
      "GitOps agent: pulls the manifests (a directory, or a Git URL and branch) at an interval and on a webhook, "
      "plans every target, optionally applies, and serves /healthz, /metrics (Prometheus), a JSON API (/api/v1/) "
      "and a status page (/). Every run is a child process; a broken commit or a bad target never stops the others.");
  serveCmd->add_option("--manifests", sv.manifests, "A directory, or a Git URL (file://, https://, ssh://, user@host:path)")
      ->required();
  serveCmd->add_option("--branch", sv.branch, "Git: the branch to follow")->capture_default_str();
  serveCmd->add_option("--path", sv.path, "Git: the manifests' directory inside the repository")->capture_default_str();
  serveCmd->add_option("--interval", svInterval, "How often to pull and plan (e.g. 30s, 5m)")->capture_default_str();
  serveCmd->add_option("--listen", sv.listen,
                       "HOST:PORT to serve on (PORT 0: any free port); anything but loopback needs a bearer token")
      ->capture_default_str();
  serveCmd->add_flag("--auto-apply", sv.autoApplyAll, "Apply every target with pending changes (with rollback)");
  serveCmd->add_option("--auto-apply-target", sv.autoApplyTargets, "Apply this target automatically (repeatable)");
  serveCmd->add_option("--auto-apply-label", sv.autoApplyLabels,
                       "Apply targets with this label automatically, KEY=VALUE (repeatable)");
  serveCmd->add_option("--token-file", sv.tokenFile,
                       "File holding the bearer token HTTP clients must send (else VNETPLAN_SERVE_TOKEN); never logged");
  serveCmd->add_option("--work-dir", sv.workDir, "Where Git checkouts are kept (default: a temp dir removed at exit)");
  serveCmd->add_option("--run-timeout", svRunTimeout, "Longest a pull, plan or apply may take")->capture_default_str();

  auto* schema = app.add_subcommand("schema", "Print the JSON Schema of manifests (point your editor at it).");

  DemoArgs demo;
  auto* demoCmd = app.add_subcommand(
      "demo", "Plan and apply the built-in quickstart in a throwaway network namespace, then remove it (needs root).");
  demoCmd->add_flag("--keep", demo.keep, "Keep the namespace and state afterwards");

  // Each subcommand's --help shows its own exit codes (the whole table is in `vnetplan --help`).
  validate->footer("\nExit codes: 0 valid, 1 invalid.\n");
  plan->footer("\nExit codes: 0 success; with --detailed-exitcode 0 no changes, 1 error, 2 changes present. 1 also\n"
               "when a target could not be planned (unreachable, or an apply running or unfinished on it).\n");
  apply->footer("\nExit codes:\n  0 applied and verified\n  1 failed, and everything was rolled back (the target is as "
                "before), or refused\n  3 failed, and the rollback could not restore everything (listed; 'vnetplan "
                "rollback' retries)\n  4 applied and verified, but the state store could not record it ('vnetplan "
                "rollback' undoes it)\n");
  rollback->footer("\nExit codes: 0 restored (or nothing to roll back), 1 refused or not approved, 3 could not restore "
                   "everything (listed), 4 restored but not recorded.\n");
  confirm->footer("\nExit codes: 0 confirmed; 1 nothing awaits confirmation, the deadline has passed, or error.\n");
  drift->footer("\nExit codes: 0 in sync, 1 error (or a target could not be checked), 2 drift present.\n");
  serveCmd->footer("\nExit codes: 0 stopped (SIGTERM/SIGINT), 1 could not start.\n");
  for (auto* sub : {show, graph, stateCmd, schema, demoCmd}) sub->footer("\nExit codes: 0 success, 1 error.\n");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (auto unknown = unknownCommand(app, argc, argv)) {
      return fail(*unknown);
    }
    return app.exit(e) == 0 ? 0 : 1;
  }

  setupLogging(g.output);
  if (auto d = parseDuration(targetTimeout); d && d->count() > 0) {
    g.targetTimeout = *d;
  } else {
    return fail(std::string("--target-timeout: not a duration: ") + targetTimeout + " (e.g. 30s, 2m)");
  }
  struct sigaction sa_{};
  sa_.sa_handler = onSignal;
  sigaction(SIGINT, &sa_, nullptr);
  sigaction(SIGTERM, &sa_, nullptr);
  // A dropped SSH session must not end an apply half-way, nor its wait for confirmation: it goes on (and a
  // watchdog process enforces a confirmation deadline even if this one is killed).
  signal(SIGHUP, SIG_IGN);
  g.interrupted = &gInterrupted;

  try {
    if (*validate) return cmdValidate(g, va);
    if (*plan) {
      auto d = parseDuration(planLockTimeout);
      if (!d) {
        return fail(std::string("--lock-timeout: not a duration: ") + planLockTimeout + " (e.g. 30s, 5m)");
      }
      pa.lockTimeout = *d;
      return cmdPlan(g, pa);
    }
    if (*apply) {
      auto d = parseDuration(lockTimeout);
      if (!d) {
        return fail(std::string("--lock-timeout: not a duration: ") + lockTimeout + " (e.g. 30s, 5m)");
      }
      aa.lockTimeout = *d;
      if (!confirmTimeout.empty()) {
        auto c = parseDuration(confirmTimeout);
        if (!c || c->count() == 0) {
          return fail(std::string("--confirm-timeout: not a positive duration: ") + confirmTimeout);
        }
        aa.confirmTimeout = *c;
      } else if (!aa.probes.empty()) {
        return fail("--probe needs --confirm-timeout");
      }
      return cmdApply(g, aa);
    }
    if (*rollback) {
      auto d = parseDuration(rbLockTimeout);
      if (!d) {
        return fail(std::string("--lock-timeout: not a duration: ") + rbLockTimeout);
      }
      ra.lockTimeout = *d;
      return cmdRollback(g, ra);
    }
    if (*confirm) return cmdConfirm(g, confirmTargets);
    if (*watchdog) return cmdConfirmWatchdog(g, wd);
    if (*drift) {
      auto d = parseDuration(driftLockTimeout);
      if (!d) {
        return fail(std::string("--lock-timeout: not a duration: ") + driftLockTimeout + " (e.g. 30s, 5m)");
      }
      da.lockTimeout = *d;
      return cmdDrift(g, da);
    }
    if (*show) return cmdShow(g, sa);
    if (*graph) return cmdGraph(g, ga);
    if (*stList) return cmdStateList(g);
    if (*stShow) return cmdStateShow(g, stTarget);
    if (*stHistory) return cmdStateHistory(g, stTarget);
    if (*stUnlock) return cmdStateUnlock(g, stLock);
    if (*stMigrate) return cmdStateMigrate(g, stMigrateTo);
    if (*serveCmd) {
      auto i = parseDuration(svInterval);
      if (!i || i->count() == 0) return fail("--interval: not a positive duration: " + svInterval);
      sv.interval = *i;
      auto rt = parseDuration(svRunTimeout);
      if (!rt || rt->count() == 0) return fail("--run-timeout: not a positive duration: " + svRunTimeout);
      sv.runTimeout = *rt;
      return cmdServe(g, sv);
    }
    if (*schema) return cmdSchema();
    if (*demoCmd) return cmdDemo(g, demo);
  } catch (const std::exception& e) {
    // Only truly unexpected failures get here; routine errors are Results.
    return fail(std::string("internal error: ") + e.what());
  }
  return 1;
}

}  // namespace vnetplan::cli
