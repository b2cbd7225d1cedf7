// Copying a whole state store to another backend (`vnetplan state migrate --to URL`): e.g. from one machine's
// file:// store to the etcd:// store a fleet shares, or back.
#pragma once
#include <cstddef>
#include <string>

#include "state/store.h"

namespace vnetplan::state {

struct MigrateReport {
  size_t targets = 0;  // targets with state
  size_t keys = 0;     // documents copied (state, generations, journals, damage records...)
  size_t bytes = 0;
};

// Copies every document of `from` to `to`, then reads each one back from `to` and compares the bytes.
// While copying it holds the lock of every target of `from` (so no apply changes the state under it), and refuses
// - when a lock of `from` is held (an apply, rollback or confirm watchdog is running: the error names it);
// - when `to` holds any document already (nothing is merged or overwritten).
// Locks themselves are not copied: they belong to running processes. `from` is left as it was.
Result<MigrateReport> migrate(Store& from, Store& to);

}  // namespace vnetplan::state
