// `vnetplan demo`: the embedded quickstart planned, applied, planned again and shown in a throwaway network
// namespace, then removed: what a new user runs first.
#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/output.h"
#include "reconciler/render.h"

namespace vnetplan {
extern const char kEmbeddedDemo[];
extern const std::size_t kEmbeddedDemoSize;
}  // namespace vnetplan

namespace vnetplan::cli {

namespace fs = std::filesystem;

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
