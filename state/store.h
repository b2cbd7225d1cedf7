// The state store: what vnetplan owns, what it last applied, its generations, the apply journal and locks.
//
// Two layers: a Backend stores opaque documents under string keys and provides locks (file://DIR on one machine,
// etcd:// for a fleet), chosen by URL scheme; the Store gives them types. Every write is atomic and durable
// (temp file + fsync + rename + fsync of the directory for file://; a transaction for etcd://, which also refuses
// to overwrite a change another writer made since this process read the key).
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/model.h"
#include "model/step.h"

namespace vnetplan::state {

struct LockInfo {
  std::string id;         // random hex, shown to users, accepted by `state unlock`
  std::string name;       // what is locked: "target/<name>"
  std::string owner;      // user@host
  std::string operation;  // "apply", "rollback", ...
  std::string created;    // RFC 3339 UTC
  int64_t pid = 0;
};

// Held until destroyed. A holder that dies releases it: at once with file:// (flock; its info record is then
// stale), when its lease expires with etcd://.
class Lock {
 public:
  virtual ~Lock() = default;
  virtual const LockInfo& info() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string url() const = 0;
  virtual Result<std::optional<std::string>> read(const std::string& key) = 0;
  virtual Status write(const std::string& key, const std::string& bytes) = 0;  // atomic + durable
  virtual Status remove(const std::string& key) = 0;                          // absent is fine
  virtual Result<std::vector<std::string>> list(const std::string& prefix) = 0;  // keys, sorted
  // Waits up to `wait` for the lock; on timeout the error names the current holder (id, owner, op, time).
  virtual Result<std::unique_ptr<Lock>> lock(const LockInfo& info, std::chrono::milliseconds wait) = 0;
  // Locks currently recorded, each with whether its holder is still alive.
  struct LockStatus {
    LockInfo info;
    bool held = false;
  };
  virtual Result<std::vector<LockStatus>> locks() = 0;
  // Removes a lock record by id. Refuses (error) when the holder is still alive and holding it.
  virtual Status unlock(const std::string& lockId) = 0;
};

// file://DIR (relative to the working directory) or etcd://host:port[,host:port...]/prefix (state/backends.h).
Result<std::unique_ptr<Backend>> openBackend(const std::string& url);

struct OwnedObject {
  Address addr;
  std::string provider;
  Attrs lastApplied;
  int64_t sinceGeneration = 0;
  ProviderIdentity identity;  // the provider's id and revision as verified after the last apply (if it has them)
  // Created by vnetplan, or adopted (it existed before; `adopt: true`). An adopted object is released when it
  // leaves the manifests (or a rollback goes to before its adoption): its attributes as they were when it was
  // adopted are restored and ownership is dropped; it is deleted only if it said `onRelease: delete`.
  bool adopted = false;
  std::optional<Attrs> preAdoption;  // adopted: the live attributes at adoption
  bool deleteOnRelease = false;
};

struct TargetState {
  std::string target;
  int64_t generation = 0;  // last successful apply; 0 = never
  std::map<Address, OwnedObject> owned;
  std::string connection;  // the Target (JSON: provider and spec) the owned objects were reached through
};

struct Generation {
  int64_t number = 0;
  std::string created;          // RFC 3339 UTC
  std::string operation;        // "apply" | "rollback"
  std::string manifestsDigest;
  std::string gitCommit;        // empty when the manifests are not in a git work tree
  std::string summary;          // "3 created, 1 updated, 0 deleted"
  std::map<Address, OwnedObject> owned;  // snapshot after this generation
  std::string connection;                // the Target it was applied through
};

// Applying: steps running (or done, being verified). AwaitingConfirm: verified, held until confirmed (or the
// deadline). Committing: verified (and confirmed), state and generation being written. RollingBack: going back to
// the pre-image. Failed: the rollback could not restore everything (damage recorded).
enum class JournalStatus { Applying, RollingBack, AwaitingConfirm, Committing, Failed };
const char* journalStatusName(JournalStatus s);

// Written (durably) before the first change to a target; removed when the apply or rollback has finished.
struct Journal {
  std::string id;
  std::string target;
  Target targetSpec;  // to reconnect during recovery
  std::string provider;
  JournalStatus status = JournalStatus::Applying;
  std::string operation;  // "apply" | "rollback"
  std::string started;    // RFC 3339 UTC
  int64_t pid = 0;
  std::map<Address, std::optional<Attrs>> preImage;  // nullopt = did not exist before
  std::map<Address, bool> preOwned;                  // ownership before (restored on rollback)
  // The whole state before the change (ownership and generation): a rollback restores it together with the live
  // pre-image, whichever side of each state write a crash fell on.
  TargetState preState;
  // What committing the change records: the generation (its `owned` is the new state). Recorded before the
  // status becomes Committing, so a confirm watchdog can finish the commit of a confirmed change whose apply died.
  std::optional<Generation> commit;
  std::vector<Step> steps;
  size_t stepsDone = 0;  // steps known to be done when the journal was last written (never more than are)
  std::string confirmDeadline;  // RFC 3339 UTC, for --confirm-timeout
  int64_t watchdogPid = 0;      // the process that enforces the deadline if the apply is gone
  std::string error;            // what failed, once known
};

// A record of what was left behind when a rollback could not restore everything (exit 3).
struct Damage {
  std::string target;
  std::string created;
  std::vector<std::string> unrestored;  // "hv01/Switch/br0: mtu: pre-image 1500, live 9000"
};

class Store {
 public:
  explicit Store(std::unique_ptr<Backend> backend);
  Backend& backend() { return *backend_; }

  Result<std::vector<std::string>> targets();  // every target with any state
  Result<TargetState> load(const std::string& target);  // empty state when none
  Status save(const TargetState& st);

  Status addGeneration(const std::string& target, const Generation& g);
  // Removes a generation record (a rolled-back commit's), if it exists.
  Status removeGeneration(const std::string& target, int64_t number);
  Result<std::vector<Generation>> history(const std::string& target);  // oldest first
  Result<std::optional<Generation>> generation(const std::string& target, int64_t number);

  // The journal as last written: journal.json, with the progress written since (writeJournalProgress) applied.
  Result<std::optional<Journal>> journal(const std::string& target);
  Status writeJournal(const Journal& j);
  // Records only how far the journal `j` got (stepsDone, status) in a small document of its own beside
  // journal.json, tied to the last writeJournal of `j` by this store: a journal of thousands of steps is then
  // written whole only when more than its progress changed. Without such a write (another process wrote the
  // journal, or none was written), the whole journal is written. A later writeJournal, by any process, supersedes
  // the progress (its write id no longer matches).
  Status writeJournalProgress(const Journal& j);
  Status clearJournal(const std::string& target);

  Status recordDamage(const Damage& d);
  Result<std::optional<Damage>> damage(const std::string& target);
  Status clearDamage(const std::string& target);

  // `vnetplan confirm`: marks the journal `journalId` (status AwaitingConfirm) as confirmed.
  Status confirm(const std::string& target, const std::string& journalId);
  Result<bool> confirmed(const std::string& target, const std::string& journalId);
  Status clearConfirm(const std::string& target);

  Result<std::unique_ptr<Lock>> lockTarget(const std::string& target, const std::string& operation,
                                           std::chrono::milliseconds wait);
  // Who holds the target's lock right now (a live apply, rollback...), if anyone.
  Result<std::optional<LockInfo>> lockHolder(const std::string& target);

 private:
  std::unique_ptr<Backend> backend_;
  std::mutex mu_;
  // Per target: the last journal.json this store wrote (its write id, the journal's id) and whether progress of it
  // was written since.
  struct JournalWrite {
    std::string writeId, journalId;
    bool progress = false;
  };
  std::map<std::string, JournalWrite> journalWrites_;
};

std::string nowRfc3339();

// Why a Target name cannot name a target's state in every backend (nullopt: it can). `validate` reports it, so a
// name the store would refuse never reaches an apply.
std::optional<std::string> targetNameProblem(const std::string& target);

}  // namespace vnetplan::state
