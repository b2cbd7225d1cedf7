// The state store's backend suite: the same tests against every backend (file:// in unit_tests,
// tests/unit/state_store_test.cpp; etcd:// against a real etcd in integration_tests,
// tests/integration/state_etcd_test.cpp). A backend is given by a factory of StoreUnderTest: one fresh, empty
// store per test. Include this header in exactly one file of a test program and instantiate StateBackend there:
//
//   INSTANTIATE_TEST_SUITE_P(File, StateBackend, ::testing::Values(StoreKind{"file", makeFileStore}),
//                            storeKindName);
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "state/store.h"

namespace vnptest::statesuite {

using namespace std::chrono_literals;
using vnetplan::Address;
using vnetplan::Attrs;
using vnetplan::Json;
using vnetplan::Kind;
using vnetplan::Status;
using namespace vnetplan::state;

// One fresh, empty store of one backend, for one test.
class StoreUnderTest {
 public:
  virtual ~StoreUnderTest() = default;
  virtual std::string url() const = 0;
  // How long the lock of a holder that was SIGKILLed outlives it (file://: not at all; etcd://: its lease TTL and
  // the reaping delay).
  virtual std::chrono::milliseconds lockExpiry() const = 0;
  // Whether anything at all has been stored (read-only operations must store nothing).
  virtual bool anythingStored() = 0;
};

struct StoreKind {
  std::string name;
  // A store for one test; nullptr with *skipReason set when the backend cannot run here.
  std::function<std::unique_ptr<StoreUnderTest>(std::string* skipReason)> make;
};

inline std::string storeKindName(const ::testing::TestParamInfo<StoreKind>& info) { return info.param.name; }

class StateBackend : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    std::string why;
    sut_ = GetParam().make(&why);
    if (!sut_) GTEST_SKIP() << "SKIPPED: " << why;
  }
  void TearDown() override { sut_.reset(); }

  std::string url() const { return sut_->url(); }
  std::unique_ptr<Backend> backend() {
    auto b = openBackend(url());
    EXPECT_TRUE(b.ok()) << b.error().message;
    return b.ok() ? std::move(*b) : nullptr;
  }
  Store store() { return Store(backend()); }
  // A document written behind the Store's back (corrupt, from a newer vnetplan, ...), by another client.
  void writeRaw(const std::string& key, const std::string& bytes) {
    auto b = backend();
    ASSERT_TRUE(b);
    Status s = b->write(key, bytes);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  std::unique_ptr<StoreUnderTest> sut_;
};

inline Address addr(const std::string& t, Kind k, const std::string& n) { return Address{t, k, n}; }

inline Attrs sampleAttrs(int mtu) {
  Attrs a;
  a.set("mtu", mtu);
  a.set("security.allowPromiscuous", false);
  a.set("linux.bridge.forwardDelay", 15);
  a.set("vlans", Json::array({10, 20, 30}));
  a.set("description", "prod \"bridge\"\nwith newline");
  return a;
}

inline std::map<Address, OwnedObject> sampleOwned(const std::string& t) {
  std::map<Address, OwnedObject> m;
  OwnedObject sw{addr(t, Kind::Switch, "br0"), "linux", sampleAttrs(9000), 1};
  OwnedObject port{addr(t, Kind::Port, "br0-p1"), "linux", Attrs(), 2};
  port.lastApplied.set("switch", "br0");
  m[sw.addr] = sw;
  m[port.addr] = port;
  return m;
}

inline void expectOwnedEq(const std::map<Address, OwnedObject>& a, const std::map<Address, OwnedObject>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    ASSERT_NE(it, b.end()) << k.str();
    EXPECT_EQ(v.addr, it->second.addr);
    EXPECT_EQ(v.provider, it->second.provider);
    EXPECT_EQ(v.lastApplied, it->second.lastApplied) << k.str();
    EXPECT_EQ(v.sinceGeneration, it->second.sinceGeneration);
  }
}

inline bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Addresses ("T/Kind/name") cannot carry a target name with '/' (callers reject such names); the store must
// still keep every such name apart, so those owned objects use a plain target.
inline std::string hostileAddrTarget(const std::string& n) { return n.find('/') == std::string::npos ? n : "hv01"; }

// Forks a child that takes the lock on hv01 and then sleeps; returns its pid once it holds the lock.
inline pid_t forkLockHolder(const std::string& url) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    auto b = openBackend(url);
    if (!b.ok()) ::_exit(2);
    Store s(std::move(*b));
    auto l = s.lockTarget("hv01", "apply", 0ms);
    char c = l.ok() ? 'y' : 'n';
    if (::write(fds[1], &c, 1) != 1) ::_exit(3);
    for (;;) ::pause();
  }
  ::close(fds[1]);
  char c = 0;
  ssize_t n = ::read(fds[0], &c, 1);
  ::close(fds[0]);
  if (n != 1 || c != 'y') {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    return -1;
  }
  return pid;
}

// ---- documents -------------------------------------------------------------------------------------------

TEST_P(StateBackend, EmptyTargetLoadsEmpty) {
  Store s = store();
  auto st = s.load("hv01");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->target, "hv01");
  EXPECT_EQ(st->generation, 0);
  EXPECT_TRUE(st->owned.empty());
  auto ts = s.targets();
  ASSERT_TRUE(ts.ok());
  EXPECT_TRUE(ts->empty());
  auto j = s.journal("hv01");
  ASSERT_TRUE(j.ok());
  EXPECT_FALSE(j->has_value());
  auto d = s.damage("hv01");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->has_value());
  auto h = s.history("hv01");
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->empty());
  auto g = s.generation("hv01", 1);
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->has_value());
  auto ls = s.backend().locks();
  ASSERT_TRUE(ls.ok());
  EXPECT_TRUE(ls->empty());
  EXPECT_FALSE(sut_->anythingStored()) << "read-only operations must not store anything";
}

TEST_P(StateBackend, TargetStateRoundTrip) {
  Store s = store();
  TargetState st;
  st.target = "hv01";
  st.generation = 7;
  st.owned = sampleOwned("hv01");
  st.connection = R"({"provider":"linux"})";
  ASSERT_TRUE(s.save(st).ok());
  auto back = s.load("hv01");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->target, "hv01");
  EXPECT_EQ(back->generation, 7);
  EXPECT_EQ(back->connection, st.connection);
  expectOwnedEq(st.owned, back->owned);

  auto raw = s.backend().read("targets/hv01/state.json");
  ASSERT_TRUE(raw.ok() && raw->has_value());
  EXPECT_EQ(Json::parse(**raw).at("formatVersion"), 1);

  // A second store over the same URL sees the same thing.
  auto again = store().load("hv01");
  ASSERT_TRUE(again.ok());
  expectOwnedEq(st.owned, again->owned);

  // Saved again (and again) by the same store: each write replaces the last.
  for (int g = 8; g < 12; ++g) {
    st.generation = g;
    ASSERT_TRUE(s.save(st).ok());
  }
  back = store().load("hv01");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->generation, 11);
}

TEST_P(StateBackend, GenerationsRoundTripAndHistoryOrder) {
  Store s = store();
  std::vector<int64_t> order;
  for (int64_t n = 1; n <= 23; ++n) order.push_back(n);
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  for (int64_t n : order) {
    Generation g;
    g.number = n;
    g.created = "2024-05-01T10:00:" + std::string(n < 10 ? "0" : "") + std::to_string(n) + "Z";
    g.operation = n % 5 == 0 ? "rollback" : "apply";
    g.manifestsDigest = "sha256:" + std::to_string(n);
    g.gitCommit = n % 2 ? "abc123" : "";
    g.summary = std::to_string(n) + " created, 0 updated, 0 deleted";
    g.owned = sampleOwned("hv01");
    ASSERT_TRUE(s.addGeneration("hv01", g).ok());
  }
  auto h = s.history("hv01");
  ASSERT_TRUE(h.ok()) << h.error().message;
  ASSERT_EQ(h->size(), 23u);
  for (size_t i = 0; i < h->size(); ++i) {
    const auto& g = (*h)[i];
    EXPECT_EQ(g.number, static_cast<int64_t>(i + 1));
    EXPECT_EQ(g.operation, g.number % 5 == 0 ? "rollback" : "apply");
    EXPECT_EQ(g.gitCommit, g.number % 2 ? "abc123" : "");
    EXPECT_EQ(g.manifestsDigest, "sha256:" + std::to_string(g.number));
    EXPECT_EQ(g.summary, std::to_string(g.number) + " created, 0 updated, 0 deleted");
    expectOwnedEq(sampleOwned("hv01"), g.owned);
  }
  auto g12 = s.generation("hv01", 12);
  ASSERT_TRUE(g12.ok());
  ASSERT_TRUE(g12->has_value());
  EXPECT_EQ((*g12)->number, 12);
  EXPECT_EQ((*g12)->created, "2024-05-01T10:00:12Z");
  auto missing = s.generation("hv01", 99);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  // Keys are zero-padded, so a plain listing is already in order.
  auto keys = s.backend().list("targets/hv01/generations/");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 23u);
  EXPECT_EQ(keys->front(), "targets/hv01/generations/00000001.json");
  EXPECT_EQ(keys->back(), "targets/hv01/generations/00000023.json");

  ASSERT_TRUE(s.removeGeneration("hv01", 23).ok());
  ASSERT_TRUE(s.removeGeneration("hv01", 23).ok()) << "removing an absent generation is fine";
  h = s.history("hv01");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->size(), 22u);

  Generation bad;
  bad.number = 0;
  EXPECT_FALSE(s.addGeneration("hv01", bad).ok());
}

TEST_P(StateBackend, JournalRoundTrip) {
  Store s = store();
  Journal j;
  j.id = "j-0123";
  j.target = "hv01";
  j.targetSpec.name = "hv01";
  j.targetSpec.provider = "linux";
  j.targetSpec.spec.set("netns", "demo");
  j.provider = "linux";
  j.status = JournalStatus::AwaitingConfirm;
  j.operation = "apply";
  j.started = "2024-05-01T10:00:00Z";
  j.pid = 4242;
  j.preImage[addr("hv01", Kind::Switch, "br0")] = sampleAttrs(1500);
  j.preImage[addr("hv01", Kind::Port, "p1")] = std::nullopt;
  j.preOwned[addr("hv01", Kind::Switch, "br0")] = true;
  j.preOwned[addr("hv01", Kind::Port, "p1")] = false;
  vnetplan::Step create{addr("hv01", Kind::Port, "p1"), vnetplan::StepAction::Create, Attrs(), Attrs(), {}};
  create.after.set("switch", "br0");
  vnetplan::Step update{addr("hv01", Kind::Switch, "br0"), vnetplan::StepAction::Update, sampleAttrs(1500),
                        sampleAttrs(9000), {"mtu"}};
  vnetplan::Step del{addr("hv01", Kind::Network, "old"), vnetplan::StepAction::Delete, Attrs(), Attrs(), {}};
  del.before.set("mode", "nat");
  j.steps = {create, update, del};
  j.stepsDone = 2;
  j.confirmDeadline = "2024-05-01T10:05:00Z";
  j.error = "step 3 failed: EBUSY";
  ASSERT_TRUE(s.writeJournal(j).ok());

  auto back = s.journal("hv01");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_TRUE(back->has_value());
  const Journal& b = **back;
  EXPECT_EQ(b.id, j.id);
  EXPECT_EQ(b.target, "hv01");
  EXPECT_EQ(b.targetSpec.name, "hv01");
  EXPECT_EQ(b.targetSpec.provider, "linux");
  EXPECT_EQ(b.targetSpec.spec, j.targetSpec.spec);
  EXPECT_EQ(b.provider, "linux");
  EXPECT_EQ(b.status, JournalStatus::AwaitingConfirm);
  EXPECT_EQ(b.operation, "apply");
  EXPECT_EQ(b.started, j.started);
  EXPECT_EQ(b.pid, 4242);
  EXPECT_EQ(b.preImage, j.preImage);
  EXPECT_EQ(b.preOwned, j.preOwned);
  ASSERT_EQ(b.steps.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(b.steps[i].addr, j.steps[i].addr);
    EXPECT_EQ(b.steps[i].action, j.steps[i].action);
    EXPECT_EQ(b.steps[i].before, j.steps[i].before);
    EXPECT_EQ(b.steps[i].after, j.steps[i].after);
    EXPECT_EQ(b.steps[i].changed, j.steps[i].changed);
  }
  EXPECT_EQ(b.stepsDone, 2u);
  EXPECT_EQ(b.confirmDeadline, j.confirmDeadline);
  EXPECT_EQ(b.error, j.error);

  for (auto st : {JournalStatus::Applying, JournalStatus::RollingBack, JournalStatus::AwaitingConfirm,
                  JournalStatus::Committing, JournalStatus::Failed}) {
    j.status = st;
    ASSERT_TRUE(s.writeJournal(j).ok());
    auto r = s.journal("hv01");
    ASSERT_TRUE(r.ok() && r->has_value());
    EXPECT_EQ((*r)->status, st) << journalStatusName(st);
  }

  // Confirmation, as `vnetplan confirm` (another store) records it and the waiting apply reads it.
  Store other = store();
  ASSERT_TRUE(other.confirm("hv01", j.id).ok());
  auto c = s.confirmed("hv01", j.id);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(*c);
  ASSERT_TRUE(s.clearConfirm("hv01").ok());
  c = s.confirmed("hv01", j.id);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(*c);

  ASSERT_TRUE(s.clearJournal("hv01").ok());
  auto gone = s.journal("hv01");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  EXPECT_TRUE(s.clearJournal("hv01").ok()) << "clearing an absent journal is fine";
}

// Progress (stepsDone, status) is a small record beside journal.json, tied to the store's last whole write of that
// journal; the journal as read has it applied. A whole write by anyone later supersedes it.
TEST_P(StateBackend, JournalProgressAppliesToItsOwnWriteOnly) {
  Store s = store();
  Journal j;
  j.id = "j-1";
  j.target = "hv01";
  j.targetSpec.name = "hv01";
  j.targetSpec.provider = "linux";
  j.provider = "linux";
  j.operation = "apply";
  vnetplan::Step create{addr("hv01", Kind::Port, "p1"), vnetplan::StepAction::Create, Attrs(), Attrs(), {}};
  j.steps = {create, create, create};
  // Without a whole write of this journal by this store, progress is written whole.
  j.stepsDone = 1;
  ASSERT_TRUE(s.writeJournalProgress(j).ok());
  auto r = s.journal("hv01");
  ASSERT_TRUE(r.ok() && r->has_value()) << (r.ok() ? "none" : r.error().message);
  EXPECT_EQ((*r)->stepsDone, 1u);
  EXPECT_EQ((*r)->steps.size(), 3u);

  j.stepsDone = 2;
  ASSERT_TRUE(s.writeJournalProgress(j).ok());
  j.stepsDone = 3;
  j.status = JournalStatus::Committing;
  ASSERT_TRUE(s.writeJournalProgress(j).ok());
  r = s.journal("hv01");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->stepsDone, 3u);
  EXPECT_EQ((*r)->status, JournalStatus::Committing);
  EXPECT_EQ((*r)->steps.size(), 3u);
  Store reader = store();  // another process reads the same
  r = reader.journal("hv01");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->status, JournalStatus::Committing);

  // Another process (a rollback) writes the journal whole: the earlier progress no longer applies.
  Journal back = **r;
  back.status = JournalStatus::RollingBack;
  back.stepsDone = 0;
  ASSERT_TRUE(reader.writeJournal(back).ok());
  r = s.journal("hv01");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->status, JournalStatus::RollingBack);
  EXPECT_EQ((*r)->stepsDone, 0u);
  // The first store still thinks its write is the last one: its progress must not revive the old status.
  j.status = JournalStatus::Committing;
  ASSERT_TRUE(s.writeJournalProgress(j).ok());
  r = reader.journal("hv01");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->status, JournalStatus::RollingBack) << "progress of a superseded write applied";

  // A damaged progress record of the current write is an error naming it, never a silent zero.
  back.status = JournalStatus::Applying;
  ASSERT_TRUE(reader.writeJournal(back).ok());
  back.stepsDone = 2;
  ASSERT_TRUE(reader.writeJournalProgress(back).ok());
  auto b = backend();
  ASSERT_TRUE(b);
  auto text = b->read("targets/hv01/journal-progress.json");
  ASSERT_TRUE(text.ok() && text->has_value());
  Json doc = Json::parse(**text);
  doc["stepsDone"] = 9;  // of 3 steps
  const std::string bad = doc.dump();
  writeRaw("targets/hv01/journal-progress.json", bad);
  r = reader.journal("hv01");
  ASSERT_FALSE(r.ok()) << bad;
  EXPECT_TRUE(contains(r.error().message, "journal-progress.json")) << r.error().message;

  // Cleared: both go.
  ASSERT_TRUE(reader.clearJournal("hv01").ok());
  r = s.journal("hv01");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  auto left = b->read("targets/hv01/journal-progress.json");
  ASSERT_TRUE(left.ok());
  EXPECT_FALSE(left->has_value()) << "progress left behind";
}

TEST_P(StateBackend, DamageRoundTrip) {
  Store s = store();
  Damage d{"hv01",
           "2024-05-01T10:00:00Z",
           {"hv01/Switch/br0: mtu: pre-image 1500, live 9000", "hv01/Port/p1: still exists"}};
  ASSERT_TRUE(s.recordDamage(d).ok());
  auto back = s.damage("hv01");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ((*back)->target, "hv01");
  EXPECT_EQ((*back)->created, d.created);
  EXPECT_EQ((*back)->unrestored, d.unrestored);
  // Recorded again by another store (a later failed rollback), without reading it first.
  d.unrestored.push_back("hv01/Port/p2: still exists");
  ASSERT_TRUE(store().recordDamage(d).ok());
  back = s.damage("hv01");
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->unrestored.size(), 3u);
  ASSERT_TRUE(s.clearDamage("hv01").ok());
  auto gone = s.damage("hv01");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST_P(StateBackend, TargetsListsEveryTargetWithAnyState) {
  Store s = store();
  TargetState a;
  a.target = "hv01";
  ASSERT_TRUE(s.save(a).ok());
  Journal j;
  j.id = "x";
  j.target = "hv02";
  j.targetSpec.name = "hv02";
  j.targetSpec.provider = "linux";
  j.operation = "apply";
  ASSERT_TRUE(s.writeJournal(j).ok());
  Generation g;
  g.number = 1;
  ASSERT_TRUE(s.addGeneration("hv03", g).ok());
  ASSERT_TRUE(s.recordDamage(Damage{"hv00", "", {}}).ok());
  auto ts = s.targets();
  ASSERT_TRUE(ts.ok()) << ts.error().message;
  EXPECT_EQ(*ts, (std::vector<std::string>{"hv00", "hv01", "hv02", "hv03"}));
  // A lock alone is not state.
  auto l = s.lockTarget("hv09", "apply", 0ms);
  ASSERT_TRUE(l.ok());
  ts = s.targets();
  ASSERT_TRUE(ts.ok());
  EXPECT_EQ(ts->size(), 4u);
}

TEST_P(StateBackend, CorruptDocumentsAreErrorsNotEmpty) {
  Store s = store();
  writeRaw("targets/hv01/state.json", "{\"formatVersion\": 1, \"target\": \"hv01\", \"gener");
  auto st = s.load("hv01");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "targets/hv01/state.json")) << st.error().message;
  EXPECT_TRUE(contains(st.error().message, "corrupt")) << st.error().message;

  writeRaw("targets/hv01/state.json", "");
  EXPECT_FALSE(s.load("hv01").ok());
  writeRaw("targets/hv01/state.json", "[1,2,3]");
  EXPECT_FALSE(s.load("hv01").ok());
  writeRaw("targets/hv01/state.json", R"({"target": "hv01", "generation": 1, "owned": []})");
  EXPECT_FALSE(s.load("hv01").ok()) << "missing formatVersion";
  writeRaw("targets/hv01/state.json", R"({"formatVersion": 1, "target": "hv01", "generation": "x", "owned": []})");
  st = s.load("hv01");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "state.json")) << st.error().message;
  writeRaw("targets/hv01/state.json", R"({"formatVersion": 1, "target": "hv01", "generation": 1, "owned": {}})");
  EXPECT_FALSE(s.load("hv01").ok());
  writeRaw("targets/hv01/state.json",
           R"({"formatVersion": 1, "target": "hv01", "generation": 1, "owned": [{"address": 5}]})");
  EXPECT_FALSE(s.load("hv01").ok());
  writeRaw("targets/hv01/state.json", R"({"formatVersion": 1, "target": "other", "generation": 1, "owned": []})");
  EXPECT_FALSE(s.load("hv01").ok()) << "a state document of another target";

  writeRaw("targets/hv01/journal.json", "\x01\x02garbage");
  auto j = s.journal("hv01");
  ASSERT_FALSE(j.ok());
  EXPECT_TRUE(contains(j.error().message, "journal.json")) << j.error().message;
  writeRaw("targets/hv01/journal.json", R"({"formatVersion": 1, "id": "x", "target": "hv01"})");
  EXPECT_FALSE(s.journal("hv01").ok()) << "truncated journal";

  writeRaw("targets/hv01/damage.json", "{");
  EXPECT_FALSE(s.damage("hv01").ok());

  Generation g;
  g.number = 1;
  ASSERT_TRUE(s.addGeneration("hv01", g).ok());
  writeRaw("targets/hv01/generations/00000002.json", "not json");
  auto h = s.history("hv01");
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(contains(h.error().message, "00000002.json")) << h.error().message;
  EXPECT_FALSE(s.generation("hv01", 2).ok());
  // A generation whose content disagrees with its key.
  writeRaw("targets/hv01/generations/00000002.json", R"({"formatVersion": 1, "number": 3, "owned": []})");
  EXPECT_FALSE(s.history("hv01").ok());
  EXPECT_FALSE(s.generation("hv01", 2).ok());
}

TEST_P(StateBackend, NewerFormatVersionIsRefused) {
  Store s = store();
  writeRaw("targets/hv01/state.json",
           R"({"formatVersion": 2, "target": "hv01", "generation": 1, "owned": [], "newThing": true})");
  auto st = s.load("hv01");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "newer")) << st.error().message;
  EXPECT_TRUE(contains(st.error().message, "formatVersion 2")) << st.error().message;
  EXPECT_TRUE(contains(st.error().message, "state.json")) << st.error().message;

  writeRaw("targets/hv01/journal.json", R"({"formatVersion": 99})");
  EXPECT_FALSE(s.journal("hv01").ok());
  writeRaw("targets/hv01/damage.json", R"({"formatVersion": 3, "target": "hv01", "unrestored": []})");
  EXPECT_FALSE(s.damage("hv01").ok());
  writeRaw("targets/hv01/generations/00000001.json", R"({"formatVersion": 2, "number": 1, "owned": []})");
  EXPECT_FALSE(s.history("hv01").ok());
  EXPECT_FALSE(s.generation("hv01", 1).ok());
}

// ---- keys and hostile names ------------------------------------------------------------------------------

TEST_P(StateBackend, RejectsEscapingKeys) {
  auto b = backend();
  ASSERT_TRUE(b);
  for (const std::string& key : std::vector<std::string>{"../x", "/etc/passwd", "a/../../x", "a//b", "a/./b", "",
                                                         "a/", "..", std::string("a\0b", 3)}) {
    EXPECT_FALSE(b->write(key, "x").ok()) << key;
    EXPECT_FALSE(b->read(key).ok()) << key;
    EXPECT_FALSE(b->remove(key).ok()) << key;
  }
  EXPECT_FALSE(b->list("../").ok());
  EXPECT_FALSE(b->list("/").ok());
  EXPECT_FALSE(sut_->anythingStored());
}

TEST_P(StateBackend, ListAndUnusualKeyCharacters) {
  auto b = backend();
  ASSERT_TRUE(b);
  std::vector<std::string> keys = {"a/b c/d", "a/%41", "a/A", "a/.hidden", "a/x\ny", "a/\xc3\xa9t\xc3\xa9", "b"};
  for (const auto& k : keys) ASSERT_TRUE(b->write(k, "v:" + k).ok()) << k;
  for (const auto& k : keys) {
    auto r = b->read(k);
    ASSERT_TRUE(r.ok() && r->has_value()) << k;
    EXPECT_EQ(**r, "v:" + k);
  }
  auto all = b->list("");
  ASSERT_TRUE(all.ok());
  auto sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(*all, sorted);
  auto sub = b->list("a/");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->size(), 6u);
  auto partial = b->list("a/b");
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(*partial, std::vector<std::string>{"a/b c/d"});
  auto none = b->list("zzz/");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(b->remove("a/%41").ok());
  auto r = b->read("a/%41");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  auto other = b->read("a/A");
  ASSERT_TRUE(other.ok() && other->has_value()) << "'%41' and 'A' are different keys";
  // Binary values survive as they are.
  std::string binary("\x00\xff\x01 \n\r\x7f", 7);
  ASSERT_TRUE(b->write("bin", binary).ok());
  auto bin = backend()->read("bin");
  ASSERT_TRUE(bin.ok() && bin->has_value());
  EXPECT_EQ(**bin, binary);
}

TEST_P(StateBackend, HostileTargetNamesStayApart) {
  Store s = store();
  std::vector<std::string> names = {"../x", "../../etc/passwd", "a/b",  "..",          ".",         ".hidden",
                                    "x\ny", "/abs/path",        "50%off", "%2F",       "sp ace",    std::string(250, 'h'),
                                    "tab\tname", "uni\xc3\xa9"};
  for (const auto& n : names) {
    TargetState st;
    st.target = n;
    st.generation = 3;
    st.owned = sampleOwned(hostileAddrTarget(n));
    Status saved = s.save(st);
    ASSERT_TRUE(saved.ok()) << n << ": " << saved.error().message;
    Generation g;
    g.number = 1;
    ASSERT_TRUE(s.addGeneration(n, g).ok()) << n;
    ASSERT_TRUE(s.recordDamage(Damage{n, "", {"x"}}).ok()) << n;
    auto l = s.lockTarget(n, "apply", 0ms);
    ASSERT_TRUE(l.ok()) << n << ": " << l.error().message;
  }
  for (const auto& n : names) {
    auto st = s.load(n);
    ASSERT_TRUE(st.ok()) << n << ": " << st.error().message;
    EXPECT_EQ(st->target, n);
    EXPECT_EQ(st->generation, 3);
    expectOwnedEq(sampleOwned(hostileAddrTarget(n)), st->owned);
    auto h = s.history(n);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->size(), 1u) << n;
  }
  auto ts = s.targets();
  ASSERT_TRUE(ts.ok());
  auto sorted = names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(*ts, sorted);

  TargetState st;
  st.target = "";
  EXPECT_FALSE(s.save(st).ok());
  st.target = "bad\xff\xfeutf8";
  EXPECT_FALSE(s.save(st).ok()) << "JSON cannot hold it: a clean error, not an exception";
  EXPECT_TRUE(s.lockTarget(st.target, "apply\xff", 0ms).ok());
  st.target = std::string("nul\0byte", 8);
  EXPECT_TRUE(s.save(st).ok()) << "a NUL is percent-encoded by the store";
}

// ---- locks -----------------------------------------------------------------------------------------------

TEST_P(StateBackend, LockReleaseRemovesRecord) {
  Store s = store();
  {
    auto l = s.lockTarget("hv01", "apply", 0ms);
    ASSERT_TRUE(l.ok()) << l.error().message;
    const LockInfo& i = (*l)->info();
    EXPECT_EQ(i.name, "target/hv01");
    EXPECT_EQ(i.operation, "apply");
    EXPECT_EQ(i.pid, ::getpid());
    EXPECT_TRUE(std::regex_match(i.id, std::regex("[0-9a-f]{16}"))) << i.id;
    EXPECT_TRUE(contains(i.owner, "@")) << i.owner;
    auto ls = s.backend().locks();
    ASSERT_TRUE(ls.ok());
    ASSERT_EQ(ls->size(), 1u);
    EXPECT_EQ((*ls)[0].info.id, i.id);
    EXPECT_EQ((*ls)[0].info.owner, i.owner);
    EXPECT_EQ((*ls)[0].info.created, i.created);
    EXPECT_EQ((*ls)[0].info.pid, i.pid);
    EXPECT_TRUE((*ls)[0].held);
    auto holder = s.lockHolder("hv01");
    ASSERT_TRUE(holder.ok() && holder->has_value());
    EXPECT_EQ((**holder).id, i.id);
    // Other targets are independent.
    auto other = s.lockTarget("hv02", "apply", 0ms);
    EXPECT_TRUE(other.ok());
  }
  auto ls = s.backend().locks();
  ASSERT_TRUE(ls.ok());
  EXPECT_TRUE(ls->empty());
  auto holder = s.lockHolder("hv01");
  ASSERT_TRUE(holder.ok());
  EXPECT_FALSE(holder->has_value());
  auto again = s.lockTarget("hv01", "rollback", 0ms);
  ASSERT_TRUE(again.ok());
}

TEST_P(StateBackend, LockMayOutliveItsStore) {
  std::unique_ptr<Lock> lock;
  {
    Store s = store();
    auto l = s.lockTarget("hv01", "apply", 0ms);
    ASSERT_TRUE(l.ok());
    lock = std::move(*l);
  }
  Store other = store();
  EXPECT_FALSE(other.lockTarget("hv01", "apply", 0ms).ok());
  lock.reset();
  auto ls = other.backend().locks();
  ASSERT_TRUE(ls.ok());
  EXPECT_TRUE(ls->empty());
  EXPECT_TRUE(other.lockTarget("hv01", "apply", 0ms).ok());
}

TEST_P(StateBackend, LockContentionBetweenThreads) {
  Store a = store();
  Store b = store();
  auto held = a.lockTarget("hv01", "apply", 0ms);
  ASSERT_TRUE(held.ok());
  const std::string id = (*held)->info().id;

  auto start = std::chrono::steady_clock::now();
  auto denied = b.lockTarget("hv01", "apply", 150ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(denied.ok());
  EXPECT_GE(waited, 140ms);
  const std::string& msg = denied.error().message;
  EXPECT_TRUE(contains(msg, "state is locked by " + (*held)->info().owner)) << msg;
  EXPECT_TRUE(contains(msg, "pid " + std::to_string(::getpid()))) << msg;
  EXPECT_TRUE(contains(msg, "operation apply")) << msg;
  EXPECT_TRUE(contains(msg, "since " + (*held)->info().created)) << msg;
  EXPECT_TRUE(contains(msg, "lock id " + id)) << msg;
  EXPECT_TRUE(contains(msg, "vnetplan state unlock " + id)) << msg;

  // The waiter gets the lock once the holder lets go.
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    auto l = b.lockTarget("hv01", "rollback", 5000ms);
    got = l.ok();
    if (l.ok()) {
      EXPECT_EQ((*l)->info().operation, "rollback");
    }
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(got.load());
  held.value().reset();
  waiter.join();
  EXPECT_TRUE(got.load());
}

TEST_P(StateBackend, UnlockRefusesLiveLock) {
  Store a = store();
  Store b = store();
  auto held = a.lockTarget("hv01", "apply", 0ms);
  ASSERT_TRUE(held.ok());
  auto r = b.backend().unlock((*held)->info().id);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "held")) << r.error().message;
  auto ls = b.backend().locks();
  ASSERT_TRUE(ls.ok());
  ASSERT_EQ(ls->size(), 1u);
  EXPECT_TRUE((*ls)[0].held);
  auto unknown = b.backend().unlock("0000000000000000");
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(contains(unknown.error().message, "no lock")) << unknown.error().message;
  EXPECT_FALSE(b.backend().unlock("").ok());
}

// A holder killed with SIGKILL (no destructor runs) loses its lock: at once (file://: the kernel drops its flock)
// or when its lease expires (etcd://); until then the lock names it.
TEST_P(StateBackend, LockOfSigkilledHolderExpires) {
  Store s = store();
  pid_t child = forkLockHolder(url());
  ASSERT_GT(child, 0);

  auto denied = s.lockTarget("hv01", "apply", 100ms);
  ASSERT_FALSE(denied.ok());
  EXPECT_TRUE(contains(denied.error().message, "state is locked by")) << denied.error().message;
  EXPECT_TRUE(contains(denied.error().message, "pid " + std::to_string(child))) << denied.error().message;

  auto ls = s.backend().locks();
  ASSERT_TRUE(ls.ok());
  ASSERT_EQ(ls->size(), 1u);
  EXPECT_TRUE((*ls)[0].held);
  EXPECT_EQ((*ls)[0].info.pid, child);
  const std::string childId = (*ls)[0].info.id;
  EXPECT_FALSE(s.backend().unlock(childId).ok()) << "the child is alive and holds it";

  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  const auto killed = std::chrono::steady_clock::now();

  // The next lock() gets it within the backend's expiry, and replaces the dead holder's record.
  auto mine = s.lockTarget("hv01", "apply", sut_->lockExpiry() + 5000ms);
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  const auto took = std::chrono::steady_clock::now() - killed;
  EXPECT_LE(took, sut_->lockExpiry() + 2000ms);
  RecordProperty("lock_free_after_sigkill_ms",
                 static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_NE((*mine)->info().id, childId);
  ls = s.backend().locks();
  ASSERT_TRUE(ls.ok());
  ASSERT_EQ(ls->size(), 1u);
  EXPECT_EQ((*ls)[0].info.id, (*mine)->info().id);
  EXPECT_EQ((*ls)[0].info.pid, ::getpid());
  EXPECT_TRUE((*ls)[0].held);
}

// `state unlock` of a dead holder's lock works at once (file://: its record is stale; etcd://: its lease is ended
// early because its process is provably gone on this machine).
TEST_P(StateBackend, UnlockRemovesLockOfDeadHolder) {
  Store s = store();
  pid_t child = forkLockHolder(url());
  ASSERT_GT(child, 0);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  auto ls = s.backend().locks();
  ASSERT_TRUE(ls.ok());
  ASSERT_EQ(ls->size(), 1u);
  EXPECT_EQ((*ls)[0].info.name, "target/hv01");
  EXPECT_EQ((*ls)[0].info.pid, child);
  Status u = s.backend().unlock((*ls)[0].info.id);
  ASSERT_TRUE(u.ok()) << u.error().message;
  ls = s.backend().locks();
  ASSERT_TRUE(ls.ok());
  EXPECT_TRUE(ls->empty());
  EXPECT_TRUE(s.lockTarget("hv01", "apply", 0ms).ok());
}

TEST_P(StateBackend, LockHeldAcrossProcessesUntilReleased) {
  // A child blocks on the lock the parent holds, then gets it when the parent lets go. The child is forked
  // before the parent locks: a fork()ed child shares (and would keep alive) the parent's flock descriptor.
  int go[2], ready[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(ready), 0);
  const std::string u = url();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(go[1]);
    ::close(ready[0]);
    char c = 0;
    if (::read(go[0], &c, 1) != 1) ::_exit(6);
    auto b = openBackend(u);
    if (!b.ok()) ::_exit(2);
    Store cs(std::move(*b));
    auto denied = cs.lockTarget("hv01", "apply", 50ms);
    if (denied.ok()) ::_exit(4);
    if (!contains(denied.error().message, "pid " + std::to_string(::getppid()))) ::_exit(7);
    c = 'w';
    if (::write(ready[1], &c, 1) != 1) ::_exit(3);
    auto l = cs.lockTarget("hv01", "apply", 10000ms);
    ::_exit(l.ok() ? 0 : 5);
  }
  ::close(go[0]);
  ::close(ready[1]);
  Store s = store();
  auto held = s.lockTarget("hv01", "apply", 0ms);
  ASSERT_TRUE(held.ok());
  char c = 'g';
  ASSERT_EQ(::write(go[1], &c, 1), 1);
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(go[1]);
  ::close(ready[0]);
  std::this_thread::sleep_for(50ms);
  held.value().reset();
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Many threads of many stores race for one lock: at most one holds it at any time.
TEST_P(StateBackend, LockIsExclusiveUnderContention) {
  std::atomic<int> inside{0}, maxInside{0}, acquired{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      auto b = openBackend(url());
      if (!b.ok()) return;
      Store s(std::move(*b));
      for (int i = 0; i < 3; ++i) {
        auto l = s.lockTarget("hv01", "apply", 20000ms);
        if (!l.ok()) continue;
        int now = ++inside;
        int prev = maxInside.load();
        while (now > prev && !maxInside.compare_exchange_weak(prev, now)) {
        }
        ++acquired;
        std::this_thread::sleep_for(5ms);
        --inside;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(maxInside.load(), 1);
  EXPECT_EQ(acquired.load(), 18);
}

}  // namespace vnptest::statesuite
