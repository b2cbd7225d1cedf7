// What every backend records about a lock's holder, and how it is written: shared by file:// and etcd://.
#pragma once
#include <optional>
#include <string>

#include "model/model.h"
#include "state/store.h"

namespace vnetplan::state {

// "user@host" of this process.
std::string currentOwner();
// The host part of an owner ("user@host" -> "host").
std::string ownerHost(const std::string& owner);
// Fills what the caller left out: a random id, this process's owner and pid, the time now.
LockInfo completeLockInfo(const LockInfo& requested);

Json lockInfoToJson(const LockInfo& i);
// nullopt for anything that is not a lock record (or has no id).
std::optional<LockInfo> lockInfoFromJson(const std::string& bytes);

// "state is locked by OWNER (pid N, operation OP, since T, lock id ID)" — the words every backend uses, so that
// callers (and users) see one message whatever the store.
std::string describeHolder(const LockInfo& holder);

}  // namespace vnetplan::state
