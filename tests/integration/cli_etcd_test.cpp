// End-to-end: `vnetplan --state etcd://...` as CI runners use it: two applies from two processes on one target
// (one proceeds, the other fails naming the holder or waits for it), a SIGKILLed apply whose lock expires with its
// lease, and state read back by another process after etcd restarted. A real etcd (scripts/etcd-sandbox.sh on
// 127.0.0.1) and a linux target in a network namespace the test creates.
#include <atomic>
#include <map>
#include <thread>

#include "state/store.h"
#include "tests/integration/harness.h"
#include "tests/integration/peer_sandbox.h"

using namespace vnptest;
using namespace std::chrono_literals;

namespace {

const char* kManifest = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: t1}
spec: {provider: linux, netns: NETNS}
---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br0}
spec: {targets: [t1], mtu: 1400}
)";

class CliEtcd : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    etcd = std::make_unique<Sandbox>("etcd-sandbox.sh", dir / "etcd", std::vector<std::string>{"etcd.log"});
    if (std::string why = etcd->unavailable(dir); !why.empty()) GTEST_SKIP() << "SKIPPED: etcd cannot run here: " << why;
    ASSERT_TRUE(etcd->start(dir));
    std::string ep = etcd->fact("ENDPOINT");
    url = "etcd://" + ep.substr(ep.find("://") + 3) + "/ci?lock-ttl=2s&timeout=10s";
  }
  void TearDown() override {
    if (etcd) {
      if (HasFailure()) std::cerr << etcd->logTails(dir);
      EXPECT_TRUE(etcd->stop(dir));
    }
    NetnsTest::TearDown();
  }

  // The vnetplan binary on the etcd store; its output in files of its own (several run at once).
  RunResult run(const std::string& args, const std::string& name, const std::string& env = "") {
    fs::path out = dir / (name + ".out"), err = dir / (name + ".err");
    RunResult r = runShell("(" + env + " " + VNETPLAN_BINARY + " --no-color --state " + shellQuote(url) + " " + args +
                               " >" + out.string() + " 2>" + err.string() + ")",
                           dir, 120);
    r.out = readAll(out);
    r.err = readAll(err);
    return r;
  }

  vnetplan::state::Store store() {
    auto b = vnetplan::state::openBackend(url);
    EXPECT_TRUE(b.ok()) << b.error().message;
    return vnetplan::state::Store(std::move(*b));
  }

  // Waits until target t1's journal says `status` (an apply reached that point).
  bool journalReaches(vnetplan::state::JournalStatus status, std::chrono::seconds within) {
    auto s = store();
    for (auto deadline = std::chrono::steady_clock::now() + within; std::chrono::steady_clock::now() < deadline;
         std::this_thread::sleep_for(100ms)) {
      auto j = s.journal("t1");
      if (j.ok() && j->has_value() && (**j).status == status) return true;
    }
    return false;
  }

  std::unique_ptr<Sandbox> etcd;
  std::string url;
};

// Runner A applies with --confirm-timeout and so holds t1's lock while it waits; runner B is refused at once,
// naming A's lock; runner C waits (--lock-timeout) and proceeds once A is confirmed and done.
TEST_F(CliEtcd, TwoConcurrentAppliesOneProceedsTheOtherFailsOrWaits) {
  auto f = manifest(kManifest);
  RunResult a, c;
  std::thread ta([&] { a = run("apply --auto-approve --confirm-timeout 90s -f " + f, "a"); });
  ASSERT_TRUE(journalReaches(vnetplan::state::JournalStatus::AwaitingConfirm, 60s)) << readAll(dir / "a.err");
  auto held = store().lockHolder("t1");
  ASSERT_TRUE(held.ok() && held->has_value()) << "A holds the lock while it awaits confirmation";
  const std::string holderId = (**held).id;

  RunResult b = run("apply --auto-approve -f " + f, "b");
  EXPECT_EQ(b.exitCode, 1) << b.out << b.err;
  EXPECT_NE(b.err.find("state is locked by"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(holderId), std::string::npos) << "B names A's lock: " << b.err;
  EXPECT_NE(b.err.find("operation apply"), std::string::npos) << b.err;

  std::atomic<bool> cDone{false};
  std::thread tc([&] {
    c = run("apply --auto-approve --lock-timeout 60s -f " + f, "c");
    cDone = true;
  });
  std::this_thread::sleep_for(2500ms);  // longer than the lock's TTL: A keeps its lease alive
  EXPECT_FALSE(cDone.load()) << "C waits for A's lock: " << readAll(dir / "c.err");
  RunResult conf = run("confirm", "confirm");
  EXPECT_EQ(conf.exitCode, 0) << conf.out << conf.err;
  ta.join();
  tc.join();
  EXPECT_EQ(a.exitCode, 0) << a.out << a.err;
  EXPECT_EQ(c.exitCode, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("no changes"), std::string::npos) << "C planned after A's commit: " << c.out;
  EXPECT_EQ(links()["br0"]["mtu"], 1400);
  auto st = store().load("t1");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->generation, 1);
}

// An apply killed (SIGKILL, right after it took the lock) leaves its lock behind: another runner is refused,
// naming it, until its lease expires (lock-ttl=2s); then the apply goes through.
TEST_F(CliEtcd, SigkilledApplysLockExpiresWithItsLease) {
  auto f = manifest(kManifest);
  RunResult killed = run("apply --auto-approve -f " + f, "killed", "VNETPLAN_CRASH_AT=1");
  ASSERT_TRUE(killed.exitCode == 128 + SIGKILL || killed.signal == SIGKILL) << killed.out << killed.err;
  auto t0 = std::chrono::steady_clock::now();
  auto held = store().lockHolder("t1");
  ASSERT_TRUE(held.ok());
  if (held->has_value()) {  // unless the lease expired already (a slow machine)
    RunResult refused = run("apply --auto-approve -f " + f, "refused");
    if (std::chrono::steady_clock::now() - t0 < 1500ms) {
      RecordProperty("refused_while_held", 1);
      EXPECT_EQ(refused.exitCode, 1) << refused.out << refused.err;
      EXPECT_NE(refused.err.find((**held).id), std::string::npos) << refused.err;
    }
  }
  RunResult later = run("apply --auto-approve --lock-timeout 10s -f " + f, "later");
  EXPECT_EQ(later.exitCode, 0) << later.out << later.err;
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(waited, 8s) << "the lock expired with the lease (2s), not later";
  EXPECT_EQ(links()["br0"]["mtu"], 1400);
}

// What one runner applied, another process reads after etcd restarted: state list, history and an empty plan.
TEST_F(CliEtcd, StateSurvivesAnEtcdRestart) {
  auto f = manifest(kManifest);
  RunResult r = run("apply --auto-approve -f " + f, "apply");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  ASSERT_TRUE(etcd->run("restart", dir));
  r = run("state history t1", "history");
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("apply"), std::string::npos) << r.out;
  r = run("plan --detailed-exitcode -f " + f, "plan");
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  r = run("state list", "list");
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("t1"), std::string::npos) << r.out;
}

// Every document of a store, as bytes.
std::map<std::string, std::string> dump(const std::string& url) {
  std::map<std::string, std::string> out;
  auto b = vnetplan::state::openBackend(url);
  if (!b.ok()) {
    ADD_FAILURE() << b.error().message;
    return out;
  }
  auto keys = (*b)->list("");
  EXPECT_TRUE(keys.ok());
  if (!keys.ok()) return out;
  for (const auto& k : *keys) {
    auto v = (*b)->read(k);
    if (v.ok() && v->has_value()) out[k] = **v;
  }
  return out;
}

// file:// -> etcd:// -> file://: every document byte for byte; the target plans empty on each store and applies
// on the new one; a non-empty destination and a running operation are refused.
TEST_F(CliEtcd, StateMigrateFileToEtcdAndBack) {
  auto f = manifest(kManifest);
  const std::string fileUrl = "file://" + (dir / "state").string();
  const std::string bin = std::string(VNETPLAN_BINARY) + " --no-color --state ";
  RunResult r = runShell(bin + fileUrl + " apply --auto-approve -f " + f, dir);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  ip("link set br0 mtu 1450");  // a second generation, from a repair
  r = runShell(bin + fileUrl + " apply --auto-approve -f " + f, dir);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto source = dump(fileUrl);
  ASSERT_GE(source.size(), 3u) << "state and two generations";

  r = runShell(bin + fileUrl + " state migrate --to " + shellQuote(url), dir);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Copied " + std::to_string(source.size()) + " document(s)"), std::string::npos) << r.out;
  EXPECT_EQ(dump(url), source);
  EXPECT_EQ(dump(fileUrl), source) << "the source is unchanged";
  RunResult hist = run("state history t1", "history");
  EXPECT_EQ(hist.exitCode, 0) << hist.err;
  RunResult fileHist = runShell(bin + fileUrl + " --no-color state history t1", dir);
  EXPECT_EQ(hist.out, fileHist.out);
  RunResult plan = run("plan --detailed-exitcode -f " + f, "plan");
  EXPECT_EQ(plan.exitCode, 0) << plan.out << plan.err;

  // Again into the same (now non-empty) store: refused, nothing touched.
  r = runShell(bin + fileUrl + " state migrate --to " + shellQuote(url), dir);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("is not empty"), std::string::npos) << r.err;
  EXPECT_EQ(dump(url), source);

  // The etcd store moves on (a third generation), then goes back to a fresh file:// store.
  ip("link set br0 mtu 1460");
  RunResult a = run("apply --auto-approve -f " + f, "apply3");
  ASSERT_EQ(a.exitCode, 0) << a.out << a.err;
  auto etcdDocs = dump(url);
  EXPECT_GT(etcdDocs.size(), source.size());
  const std::string backUrl = "file://" + (dir / "state-back").string();

  // While an apply holds t1's lock (awaiting confirmation), migrate refuses, naming it.
  ip("link set br0 mtu 1470");
  RunResult held;
  std::thread th([&] { held = run("apply --auto-approve --confirm-timeout 60s -f " + f, "held"); });
  ASSERT_TRUE(journalReaches(vnetplan::state::JournalStatus::AwaitingConfirm, 60s)) << readAll(dir / "held.err");
  RunResult busy = run("state migrate --to " + shellQuote(backUrl), "busy");
  EXPECT_EQ(busy.exitCode, 1);
  EXPECT_NE(busy.err.find("not migrating while an operation runs"), std::string::npos) << busy.err;
  EXPECT_NE(busy.err.find("operation apply"), std::string::npos) << busy.err;
  EXPECT_TRUE(dump(backUrl).empty());
  EXPECT_EQ(run("confirm", "confirm").exitCode, 0);
  th.join();
  ASSERT_EQ(held.exitCode, 0) << held.out << held.err;

  etcdDocs = dump(url);
  RunResult back = run("state migrate --to " + shellQuote(backUrl), "back");
  ASSERT_EQ(back.exitCode, 0) << back.out << back.err;
  EXPECT_EQ(dump(backUrl), etcdDocs);
  r = runShell(bin + backUrl + " plan --detailed-exitcode -f " + f, dir);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(links()["br0"]["mtu"], 1400);
}

// A refused URL never echoes a credential.
TEST_F(CliEtcd, CredentialsInTheUrlAreRefusedAndNotEchoed) {
  RunResult r = runShell(std::string(VNETPLAN_BINARY) + " --state 'etcd://admin:S3cretPw@127.0.0.1:1/x' state list", dir);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(r.err.find("S3cretPw"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("credentials in the URL are refused"), std::string::npos) << r.err;
  r = runShell(std::string(VNETPLAN_BINARY) + " --state 'etcd://127.0.0.1:1/x?user=a&password=S3cretPw' state list", dir);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(r.err.find("S3cretPw"), std::string::npos) << r.err;
}

}  // namespace
