// The etcd:// state backend: etcd v3 through its HTTP/JSON gateway (state/etcd_gateway.h), for fleets where many
// CI runners and agents on many machines share state and locks.
//
//   etcd://HOST[:PORT][,HOST[:PORT]...]/PREFIX[?OPTION=VALUE&...]
//     tls=true|false        https to the endpoints (implied by cacert/cert/key)
//     cacert=PATH           CA that signed the server's certificate   (or VNETPLAN_ETCD_CACERT)
//     cert=PATH, key=PATH   client certificate for mutual TLS          (or VNETPLAN_ETCD_CERT, VNETPLAN_ETCD_KEY)
//     user=NAME             etcd authentication                        (or VNETPLAN_ETCD_USER)
//     password-env=VAR      the password's environment variable        (or VNETPLAN_ETCD_PASSWORD itself)
//     password-file=PATH    the password's file (first line)           (or VNETPLAN_ETCD_PASSWORD_FILE)
//     lock-ttl=15s          lease of a lock: how long a dead holder's lock outlives it (at least 2s)
//     timeout=10s           how long one operation retries an unreachable etcd
//   A password is never part of the URL (refused: it would show in process lists and logs).
//
// Layout under PREFIX:
//   PREFIX/state/<key>     documents (the Store's keys, e.g. targets/hv01/state.json), bytes as given
//   PREFIX/locks/<name>    a held lock: its LockInfo (JSON), bound to the holder's lease
//
// Semantics are those of file:// (state/store.h), with what etcd adds for a fleet:
// - Every write and remove is a transaction that compares the key's mod_revision with the one this process last
//   read or wrote (or, for a key it never saw, the one it finds just before), so two writers never overwrite
//   each other: the second one fails and says so. The same transaction checks that every lock this process holds
//   is still its own (fencing): a holder whose lease expired (etcd was out of reach for longer than lock-ttl)
//   can no longer write.
// - A lock is a key bound to a lease that a thread of the holder keeps alive; a holder that dies (SIGKILL,
//   power loss, partition) loses it when its lease expires, lock-ttl later. `unlock` refuses a live lease, except
//   that a holder on this very machine (same boot, same pid namespace) whose process is gone is released at once.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <fstream>
#include <list>
#include <map>
#include <thread>
#include <unordered_map>

#include "state/backends.h"
#include "state/etcd_gateway.h"
#include "state/lock_record.h"
#include "state/store.h"

namespace vnetplan::state {
namespace {

using etcd::Clock;
using etcd::Gateway;
using etcd::KeyValue;
using etcd::base64Encode;
using etcd::int64Field;

// Identifies this process's pid namespace on this boot of this kernel: pids recorded under the same value can be
// checked with kill(pid, 0).
std::string processNamespace() {
  std::string boot;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  char ns[128] = {};
  ssize_t n = ::readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  if (boot.empty() || n <= 0) return "";
  return boot + "/" + std::string(ns, static_cast<size_t>(n));
}

Status checkKey(const std::string& key) {
  if (key.empty()) return err("invalid state key: empty");
  if (key.find('\0') != std::string::npos) return err("invalid state key: contains a NUL byte");
  if (key.front() == '/') return err("invalid state key '" + key + "': absolute");
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    std::string comp = key.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (comp.empty()) return err("invalid state key '" + key + "': empty path component");
    if (comp == "." || comp == "..") return err("invalid state key '" + key + "': '" + comp + "' component");
    if (slash == std::string::npos) return {};
    start = slash + 1;
  }
}

Json compareCreate(const std::string& key, int64_t rev) {
  return Json{{"key", base64Encode(key)}, {"target", "CREATE"}, {"result", "EQUAL"},
              {"create_revision", std::to_string(rev)}};
}
Json compareMod(const std::string& key, int64_t rev) {
  return Json{{"key", base64Encode(key)}, {"target", "MOD"}, {"result", "EQUAL"},
              {"mod_revision", std::to_string(rev)}};
}
Json rangeOp(const std::string& key) { return Json{{"request_range", {{"key", base64Encode(key)}}}}; }

// The kvs of the i-th response of a txn (each a response_range); empty when absent.
std::vector<KeyValue> txnRange(const Json& reply, size_t i) {
  auto rs = reply.find("responses");
  if (rs == reply.end() || !rs->is_array() || i >= rs->size()) return {};
  auto kvs = etcd::keyValues((*rs)[i].value("response_range", Json::object()));
  return kvs ? *kvs : std::vector<KeyValue>();
}

// The locks a process holds through one store (and the locks it handed out, which may outlive it): each write
// checks they are still there, created by us.
struct Fences {
  std::mutex mu;
  std::map<std::string, std::pair<int64_t, std::string>> held;  // lock key -> (create revision, lock name)
};

// Keeps a lease alive from a thread of its own until stopped; then revokes it (which deletes the keys bound to
// it, the lock record among them).
class LeaseKeeper {
 public:
  LeaseKeeper(std::shared_ptr<Gateway> gw, int64_t lease, std::chrono::seconds ttl, std::string what)
      : gw_(std::move(gw)), lease_(lease), ttl_(ttl), what_(std::move(what)) {
    thread_ = std::thread([this] { run(); });
  }
  ~LeaseKeeper() { stop(); }

  int64_t lease() const { return lease_; }

  // Stops keeping it alive and revokes it (best effort: an unrevoked lease expires by itself after its TTL).
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    auto r = gw_->call("lease/revoke", Json{{"ID", std::to_string(lease_)}}, Clock::now() + std::chrono::seconds(5));
    if (!r && r.error().message.find("lease not found") == std::string::npos)
      spdlog::warn("{}: could not revoke etcd lease {:x} ({}); it expires by itself within {}s", what_, lease_,
                   r.error().message, ttl_.count());
  }

 private:
  void run() {
    // Renew at a third of the TTL: two renewals may fail before the lease is at risk.
    const auto interval = std::max<std::chrono::milliseconds>(ttl_ / 3, std::chrono::milliseconds(500));
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopped_) {
      if (cv_.wait_for(lock, interval, [&] { return stopped_; })) break;
      lock.unlock();
      auto r = gw_->call("lease/keepalive", Json{{"ID", std::to_string(lease_)}}, Clock::now() + interval);
      lock.lock();
      if (!r) {
        spdlog::warn("{}: keeping etcd lease {:x} alive failed: {}", what_, lease_, r.error().message);
        continue;
      }
      // An expired lease still gets a 200, with no TTL.
      if (int64Field(r->value("result", Json::object()), "TTL") <= 0) {
        spdlog::error("{}: LOST: its etcd lease {:x} expired (etcd was out of reach for longer than lock-ttl {}s, "
                      "or the lock was removed); this process can no longer write state",
                      what_, lease_, ttl_.count());
        return;
      }
    }
  }

  std::shared_ptr<Gateway> gw_;
  int64_t lease_;
  std::chrono::seconds ttl_;
  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::thread thread_;
};

class EtcdLock : public Lock {
 public:
  EtcdLock(std::shared_ptr<Gateway> gw, std::shared_ptr<Fences> fences, std::unique_ptr<LeaseKeeper> keeper,
           std::string key, int64_t createRevision, LockInfo info)
      : gw_(std::move(gw)),
        fences_(std::move(fences)),
        keeper_(std::move(keeper)),
        key_(std::move(key)),
        createRevision_(createRevision),
        info_(std::move(info)) {
    std::lock_guard<std::mutex> lock(fences_->mu);
    fences_->held[key_] = {createRevision_, info_.name};
  }
  ~EtcdLock() override {
    {
      std::lock_guard<std::mutex> lock(fences_->mu);
      fences_->held.erase(key_);
    }
    // Delete our record first (only if it is still ours), then revoke the lease (which would delete it too).
    Json txn{{"compare", Json::array({compareCreate(key_, createRevision_)})},
             {"success", Json::array({Json{{"request_delete_range", {{"key", base64Encode(key_)}}}}})}};
    (void)gw_->call("kv/txn", txn, Clock::now() + std::chrono::seconds(5));
    keeper_->stop();
  }
  const LockInfo& info() const override { return info_; }

 private:
  std::shared_ptr<Gateway> gw_;
  std::shared_ptr<Fences> fences_;
  std::unique_ptr<LeaseKeeper> keeper_;
  std::string key_;
  int64_t createRevision_;
  LockInfo info_;
};

// The mod_revision of each key this process last read or wrote (0: it saw the key absent), bounded (least
// recently used first out): a key forgotten is treated as never seen.
class Revisions {
 public:
  std::optional<int64_t> get(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }
  void set(const std::string& key, int64_t rev) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->second = rev;
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.emplace_front(key, rev);
    index_[key] = order_.begin();
    if (order_.size() > kMax) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

 private:
  static constexpr size_t kMax = 8192;
  std::mutex mu_;
  std::list<std::pair<std::string, int64_t>> order_;
  std::unordered_map<std::string, std::list<std::pair<std::string, int64_t>>::iterator> index_;
};

class EtcdBackend : public Backend {
 public:
  EtcdBackend(std::string url, etcd::Config cfg)
      : url_(std::move(url)),
        docs_(cfg.prefix + "/state/"),
        locks_(cfg.prefix + "/locks/"),
        ttl_(cfg.lockTtl),
        gw_(std::make_shared<Gateway>(std::move(cfg))),
        fences_(std::make_shared<Fences>()) {}

  std::string url() const override { return url_; }

  Result<std::optional<std::string>> read(const std::string& key) override {
    if (Status s = checkKey(key); !s) return s.error();
    auto r = gw_->call("kv/range", Json{{"key", base64Encode(docs_ + key)}});
    if (!r) return err("cannot read " + where(key) + ": " + r.error().message);
    auto kvs = etcd::keyValues(*r);
    if (!kvs) return err("cannot read " + where(key) + ": etcd returned a key or value that is not base64");
    if (kvs->empty()) {
      revisions_.set(key, 0);
      return std::optional<std::string>();
    }
    revisions_.set(key, kvs->front().modRevision);
    return std::optional<std::string>(std::move(kvs->front().value));
  }

  Status write(const std::string& key, const std::string& bytes) override {
    if (Status s = checkKey(key); !s) return s;
    for (int attempt = 0;; ++attempt) {
      std::optional<int64_t> seen = revisions_.get(key);
      int64_t expected = 0;
      if (seen) {
        expected = *seen;
      } else {
        // Never read here: compare with what is there now, so that at least a write racing with this one wins
        // cleanly.
        auto cur = modRevision(key);
        if (!cur) return err("cannot write " + where(key) + ": " + cur.error().message);
        expected = *cur;
      }
      auto fences = heldFences();
      Json compare = Json::array({compareMod(docs_ + key, expected)});
      Json failure = Json::array({rangeOp(docs_ + key)});
      for (const auto& [lockKey, f] : fences) {
        compare.push_back(compareCreate(lockKey, f.first));
        failure.push_back(rangeOp(lockKey));
      }
      Json txn{{"compare", compare},
               {"success", Json::array({Json{{"request_put", {{"key", base64Encode(docs_ + key)},
                                                               {"value", base64Encode(bytes)}}}}})},
               {"failure", failure}};
      bool ambiguous = false;
      auto r = gw_->call("kv/txn", txn, &ambiguous);
      if (!r) return err("cannot write " + where(key) + ": " + r.error().message);
      if (r->value("succeeded", false)) {
        revisions_.set(key, int64Field(r->value("header", Json::object()), "revision"));
        return {};
      }
      if (auto lost = lostFence(*r, fences)) return err("not writing " + where(key) + ": " + *lost);
      auto cur = txnRange(*r, 0);
      const int64_t now = cur.empty() ? 0 : cur.front().modRevision;
      if (ambiguous && !cur.empty() && cur.front().value == bytes) {
        // Our own first attempt took effect; its reply was lost and the repeated txn found its result.
        revisions_.set(key, now);
        return {};
      }
      if (!seen && attempt == 0) continue;  // changed between our look and our write: look again, once
      return err("not writing " + where(key) + ": another writer changed it since this process " +
                 (seen ? "read it" : "looked") + " (revision " + std::to_string(expected) + " then, " +
                 std::to_string(now) + " now); nothing was overwritten: run the command again");
    }
  }

  Status remove(const std::string& key) override {
    if (Status s = checkKey(key); !s) return s;
    std::optional<int64_t> seen = revisions_.get(key);
    auto fences = heldFences();
    Json compare = Json::array();
    if (seen && *seen != 0) compare.push_back(compareMod(docs_ + key, *seen));
    Json failure = Json::array({rangeOp(docs_ + key)});
    for (const auto& [lockKey, f] : fences) {
      compare.push_back(compareCreate(lockKey, f.first));
      failure.push_back(rangeOp(lockKey));
    }
    Json txn{{"compare", compare},
             {"success", Json::array({Json{{"request_delete_range", {{"key", base64Encode(docs_ + key)}}}}})},
             {"failure", failure}};
    auto r = gw_->call("kv/txn", txn);
    if (!r) return err("cannot remove " + where(key) + ": " + r.error().message);
    if (r->value("succeeded", false)) {
      revisions_.set(key, 0);
      return {};
    }
    if (auto lost = lostFence(*r, fences)) return err("not removing " + where(key) + ": " + *lost);
    auto cur = txnRange(*r, 0);
    if (cur.empty()) {  // gone already: absent is fine
      revisions_.set(key, 0);
      return {};
    }
    return err("not removing " + where(key) + ": another writer changed it since this process read it (revision " +
               std::to_string(*seen) + " then, " + std::to_string(cur.front().modRevision) +
               " now); run the command again");
  }

  Result<std::vector<std::string>> list(const std::string& prefix) override {
    if (prefix.find('\0') != std::string::npos) return err("invalid state key prefix: contains a NUL byte");
    if (!prefix.empty() && prefix.front() == '/') return err("invalid state key prefix '" + prefix + "': absolute");
    if (size_t slash = prefix.rfind('/'); slash != std::string::npos)
      if (Status s = checkKey(prefix.substr(0, slash)); !s) return s.error();
    auto all = rangeAll(docs_ + prefix, true);
    if (!all) return err("cannot list " + where(prefix) + ": " + all.error().message);
    std::vector<std::string> out;
    for (auto& kv : *all) {
      std::string k = kv.key.substr(docs_.size());
      if (checkKey(k)) out.push_back(std::move(k));  // keys we would not have written are not documents
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::unique_ptr<Lock>> lock(const LockInfo& requested, std::chrono::milliseconds wait) override {
    if (requested.name.empty()) return err("internal error: lock without a name");
    if (requested.name.find('\0') != std::string::npos) return err("invalid lock name: contains a NUL byte");
    LockInfo info = completeLockInfo(requested);
    const std::string key = locks_ + info.name;
    Json record = lockInfoToJson(info);
    record["ttlSeconds"] = ttl_.count();
    record["process"] = processNamespace();
    std::string value;
    try {
      value = record.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
    } catch (const Json::exception& e) {
      return err("cannot encode the lock record of " + info.name + ": " + e.what());
    }
    auto grant = gw_->call("lease/grant", Json{{"TTL", std::to_string(ttl_.count())}});
    if (!grant) return err("cannot lock " + info.name + ": " + grant.error().message);
    const int64_t lease = int64Field(*grant, "ID");
    if (lease == 0) return err("cannot lock " + info.name + ": etcd granted no lease");
    // Kept alive while we wait too: a wait longer than the TTL must not lose the lease it would lock with.
    auto keeper = std::make_unique<LeaseKeeper>(gw_, lease, ttl_, "lock " + info.id + " on " + info.name);

    wait = std::clamp<std::chrono::milliseconds>(wait, std::chrono::milliseconds(0), std::chrono::hours(24 * 365));
    const auto deadline = Clock::now() + wait;
    auto pause = std::chrono::milliseconds(50);
    while (true) {
      Json txn{{"compare", Json::array({compareCreate(key, 0)})},
               {"success", Json::array({Json{{"request_put", {{"key", base64Encode(key)},
                                                               {"value", base64Encode(value)},
                                                               {"lease", std::to_string(lease)}}}}})},
               {"failure", Json::array({rangeOp(key)})}};
      auto r = gw_->call("kv/txn", txn);
      if (!r) return err("cannot lock " + info.name + ": " + r.error().message);  // keeper revokes the lease
      if (r->value("succeeded", false)) {
        const int64_t rev = int64Field(r->value("header", Json::object()), "revision");
        return std::unique_ptr<Lock>(new EtcdLock(gw_, fences_, std::move(keeper), key, rev, info));
      }
      auto holder = txnRange(*r, 0);
      if (!holder.empty() && holder.front().lease == lease)  // our own put, whose reply was lost
        return std::unique_ptr<Lock>(
            new EtcdLock(gw_, fences_, std::move(keeper), key, holder.front().createRevision, info));
      auto now = Clock::now();
      if (now >= deadline) {
        if (holder.empty()) continue;  // released just now: try again at once
        auto h = lockInfoFromJson(holder.front().value);
        if (!h)
          return err(info.name + ": state is locked by another process whose lock record in etcd cannot be read (" +
                     locks_ + info.name + "); wait and retry");
        return err(info.name + ": " + describeHolder(*h) + "; wait, or if that process is gone run 'vnetplan state unlock " +
                   h->id + "' (its lock also expires by itself within " + std::to_string(ttlOf(holder.front())) +
                   "s of its end: it is an etcd lease)");
      }
      std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, std::chrono::milliseconds(500));
    }
  }

  Result<std::vector<LockStatus>> locks() override {
    auto all = rangeAll(locks_, false);
    if (!all) return err("cannot list locks: " + all.error().message);
    std::vector<LockStatus> out;
    for (const auto& kv : *all) {
      LockStatus s;
      if (auto info = lockInfoFromJson(kv.value)) s.info = *info;
      else s.info.name = kv.key.substr(locks_.size());  // unreadable record: still reported
      auto alive = leaseAlive(kv.lease);
      if (!alive) return err("cannot list locks: " + alive.error().message);
      s.held = *alive;
      out.push_back(std::move(s));
    }
    std::sort(out.begin(), out.end(), [](const LockStatus& a, const LockStatus& b) { return a.info.name < b.info.name; });
    return out;
  }

  Status unlock(const std::string& lockId) override {
    if (lockId.empty()) return err("no lock id given");
    auto all = rangeAll(locks_, false);
    if (!all) return err("cannot list locks: " + all.error().message);
    for (const auto& kv : *all) {
      auto info = lockInfoFromJson(kv.value);
      if (!info || info->id != lockId) continue;
      auto alive = leaseAlive(kv.lease);
      if (!alive) return alive.error();
      if (*alive) {
        if (!holderIsGoneHere(kv.value, *info))
          return err("lock " + lockId + " (" + info->name + ") is held by a live process: " + info->owner + " (pid " +
                     std::to_string(info->pid) + ", operation " + info->operation + ", since " + info->created +
                     "); refusing to remove it — wait for that process to finish or stop it (if it is gone, its "
                     "lock expires by itself within " + std::to_string(ttlOf(kv)) + "s: it is an etcd lease)");
        // Its process is gone (checked on this machine): end its lease now rather than after the TTL.
        auto r = gw_->call("lease/revoke", Json{{"ID", std::to_string(kv.lease)}});
        if (!r && r.error().message.find("lease not found") == std::string::npos) return r.error();
        return {};
      }
      Json txn{{"compare", Json::array({compareMod(kv.key, kv.modRevision)})},
               {"success", Json::array({Json{{"request_delete_range", {{"key", base64Encode(kv.key)}}}}})}};
      auto r = gw_->call("kv/txn", txn);
      if (!r) return r.error();
      if (!r->value("succeeded", false)) return err("lock " + lockId + " was replaced by a new holder meanwhile");
      return {};
    }
    return err("no lock with id " + lockId + " (see 'vnetplan state list')");
  }

 private:
  std::string where(const std::string& key) const { return url_ + " key " + key; }

  std::map<std::string, std::pair<int64_t, std::string>> heldFences() {
    std::lock_guard<std::mutex> lock(fences_->mu);
    return fences_->held;
  }

  // Which lock of ours is gone, from a failed txn whose failure branch ranged the key and then each fence.
  static std::optional<std::string> lostFence(const Json& reply,
                                              const std::map<std::string, std::pair<int64_t, std::string>>& fences) {
    size_t i = 1;
    for (const auto& [lockKey, f] : fences) {
      auto kvs = txnRange(reply, i++);
      if (kvs.empty() || kvs.front().createRevision != f.first)
        return "this process no longer holds its lock on " + f.second +
               " (its etcd lease expired: etcd was out of reach for longer than lock-ttl, or the lock was removed); "
               "another process may hold it now";
    }
    return std::nullopt;
  }

  Result<int64_t> modRevision(const std::string& key) {
    auto r = gw_->call("kv/range", Json{{"key", base64Encode(docs_ + key)}, {"keys_only", true}});
    if (!r) return r.error();
    auto kvs = etcd::keyValues(*r);
    if (!kvs) return err("etcd returned a key that is not base64");
    return kvs->empty() ? 0 : kvs->front().modRevision;
  }

  // Every key starting with `prefix`, sorted, fetched in pages.
  Result<std::vector<KeyValue>> rangeAll(const std::string& prefix, bool keysOnly) {
    std::vector<KeyValue> out;
    const std::string end = etcd::prefixEnd(prefix);
    std::string from = prefix;
    while (true) {
      Json body{{"key", base64Encode(from)}, {"range_end", base64Encode(end)}, {"limit", "1000"}};
      if (keysOnly) body["keys_only"] = true;
      auto r = gw_->call("kv/range", body);
      if (!r) return r.error();
      auto kvs = etcd::keyValues(*r);
      if (!kvs) return err("etcd returned a key or value that is not base64");
      for (auto& kv : *kvs) out.push_back(std::move(kv));
      if (!r->value("more", false) || kvs->empty()) return out;
      from = out.back().key + std::string(1, '\0');
    }
  }

  Result<bool> leaseAlive(int64_t lease) {
    if (lease == 0) return false;  // a record without a lease (not written by a lock) holds nothing
    auto r = gw_->call("lease/timetolive", Json{{"ID", std::to_string(lease)}});
    if (!r) {
      if (r.error().message.find("lease not found") != std::string::npos) return false;
      return r.error();
    }
    return int64Field(*r, "TTL") > 0;
  }

  int64_t ttlOf(const KeyValue& kv) const {
    Json j = Json::parse(kv.value, nullptr, false);
    int64_t t = j.is_object() ? j.value("ttlSeconds", int64_t{0}) : 0;
    return t > 0 ? t : ttl_.count();
  }

  // The holder recorded the same pid namespace of the same boot as ours, and its pid is not running.
  static bool holderIsGoneHere(const std::string& record, const LockInfo& info) {
    Json j = Json::parse(record, nullptr, false);
    if (!j.is_object()) return false;
    const std::string ns = j.value("process", "");
    if (ns.empty() || ns != processNamespace() || info.pid <= 0) return false;
    return ::kill(static_cast<pid_t>(info.pid), 0) != 0 && errno == ESRCH;
  }

  std::string url_;
  std::string docs_, locks_;
  std::chrono::seconds ttl_;
  std::shared_ptr<Gateway> gw_;
  std::shared_ptr<Fences> fences_;
  Revisions revisions_;
};

}  // namespace

Result<std::unique_ptr<Backend>> openEtcdBackend(const std::string& url, const std::string&) {
  auto cfg = etcd::parseUrl(url);
  if (!cfg) return err("state backend URL " + redactStateUrl(url) + ": " + cfg.error().message);
  return std::unique_ptr<Backend>(new EtcdBackend(url, std::move(*cfg)));
}

uint64_t etcdRequestsSent() { return Gateway::requestsSent(); }

}  // namespace vnetplan::state
