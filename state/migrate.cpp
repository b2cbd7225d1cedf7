#include "state/migrate.h"

#include <memory>
#include <vector>

#include "state/lock_record.h"

namespace vnetplan::state {

Result<MigrateReport> migrate(Store& from, Store& to) {
  const std::string src = from.backend().url(), dst = to.backend().url();
  auto present = to.backend().list("");
  if (!present) return err("cannot list the destination " + dst + ": " + present.error().message);
  if (!present->empty())
    return err("the destination " + dst + " is not empty (" + std::to_string(present->size()) + " document(s), e.g. " +
               present->front() + "): migrate copies into an empty store only, it never merges or overwrites");

  auto targets = from.targets();
  if (!targets) return err("cannot list the targets of " + src + ": " + targets.error().message);
  // Every target's lock, so that no apply writes while we copy; a held one means an operation is running now.
  std::vector<std::unique_ptr<Lock>> held;
  for (const auto& t : *targets) {
    auto l = from.lockTarget(t, "migrate", std::chrono::milliseconds(0));
    if (!l) return err("not migrating while an operation runs: " + l.error().message);
    held.push_back(std::move(*l));
  }
  auto locks = from.backend().locks();
  if (!locks) return err("cannot list the locks of " + src + ": " + locks.error().message);
  for (const auto& l : *locks) {
    bool ours = false;
    for (const auto& h : held) ours = ours || h->info().id == l.info.id;
    if (l.held && !ours)
      return err("not migrating while an operation runs: " + l.info.name + ": " + describeHolder(l.info));
  }

  auto keys = from.backend().list("");
  if (!keys) return err("cannot list " + src + ": " + keys.error().message);
  MigrateReport report;
  report.targets = targets->size();
  for (const auto& k : *keys) {
    auto bytes = from.backend().read(k);
    if (!bytes) return err("cannot read " + k + " from " + src + ": " + bytes.error().message);
    if (!bytes->has_value()) continue;  // removed since we listed it: nothing to copy
    if (Status s = to.backend().write(k, **bytes); !s)
      return err("cannot write " + k + " to " + dst + ": " + s.error().message + " (the destination now holds part "
                 "of the store: empty it before migrating again)");
    ++report.keys;
    report.bytes += (*bytes)->size();
  }
  // Read back: what the destination serves is what the source holds.
  for (const auto& k : *keys) {
    auto a = from.backend().read(k);
    auto b = to.backend().read(k);
    if (!a || !b) return err("cannot verify " + k + ": " + (!a ? a.error().message : b.error().message));
    if (*a != *b) return err("verification failed: " + k + " differs between " + src + " and " + dst);
  }
  return report;
}

}  // namespace vnetplan::state
