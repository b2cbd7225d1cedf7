// The etcd:// state backend against a real etcd (Debian's etcd-server, one member on 127.0.0.1, started per test
// by scripts/etcd-sandbox.sh): the whole backend suite (tests/unit/state_backend_suite.h, the same tests file://
// passes in unit_tests), then what only etcd has: compare-and-swap between writers, fencing of a holder whose
// lease is gone, state and locks across an etcd restart, failover between endpoints, authentication, and keys
// as an independent client (etcdctl, over gRPC) sees them.
#include <chrono>
#include <thread>

#include "state/backends.h"
#include "tests/integration/etcd_harness.h"
#include "tests/unit/state_backend_suite.h"

using namespace vnptest;
using namespace vnptest::statesuite;
using namespace std::chrono_literals;

namespace {

// One etcd for one test of the suite, in a scratch directory of its own.
class EtcdStore : public StoreUnderTest {
 public:
  // nullptr (and *why) when etcd cannot run here.
  static std::unique_ptr<StoreUnderTest> make(std::string* why) {
    auto s = std::unique_ptr<EtcdStore>(new EtcdStore());
    if (!s->start(why)) return nullptr;
    return s;
  }
  ~EtcdStore() override {
    if (sandbox_) (void)sandbox_->stop(dir_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // A TTL of 2 s (etcd's shortest) keeps the expiry tests short.
  std::string url() const override { return "etcd://" + hostPort_ + "/vnp-suite?lock-ttl=2s&timeout=5s"; }
  // The TTL, plus etcd's reaping of expired leases (every 500 ms).
  std::chrono::milliseconds lockExpiry() const override { return 2500ms; }
  bool anythingStored() override {
    RunResult r = runShell("ETCDCTL_API=3 etcdctl --endpoints=" + shellQuote(endpoint_) +
                               " get --prefix /vnp-suite --keys-only --command-timeout=10s",
                           dir_, 30);
    return r.exitCode != 0 || !r.out.empty();
  }

 private:
  EtcdStore() {
    char tmpl[] = "/tmp/vnp-etcdstore-XXXXXX";
    if (::mkdtemp(tmpl)) dir_ = tmpl;
  }
  bool start(std::string* why) {
    if (dir_.empty()) {
      *why = "mkdtemp failed";
      return false;
    }
    sandbox_ = std::make_unique<Sandbox>("etcd-sandbox.sh", dir_ / "etcd", std::vector<std::string>{"etcd.log"});
    if (std::string u = sandbox_->unavailable(dir_); !u.empty()) {
      *why = "etcd cannot run here: " + u;
      sandbox_.reset();
      return false;
    }
    auto started = sandbox_->start(dir_);
    if (!started) {
      ADD_FAILURE() << started.message();
      *why = "etcd did not start (a failure)";
      return false;
    }
    endpoint_ = sandbox_->fact("ENDPOINT");
    hostPort_ = endpoint_.substr(endpoint_.find("://") + 3);
    return true;
  }

  fs::path dir_;
  std::unique_ptr<Sandbox> sandbox_;
  std::string endpoint_, hostPort_;
};

}  // namespace

namespace vnptest::statesuite {
INSTANTIATE_TEST_SUITE_P(Etcd, StateBackend, ::testing::Values(StoreKind{"etcd", EtcdStore::make}), storeKindName);
}

namespace {

class StateEtcd : public EtcdTest {
 protected:
  std::string hostPort() const { return endpoint.substr(endpoint.find("://") + 3); }
  std::string url(const std::string& extra = "") const {
    return "etcd://" + hostPort() + "/vnetplan?lock-ttl=2s&timeout=5s" + extra;
  }
  std::unique_ptr<vnetplan::state::Backend> open(const std::string& u) {
    auto b = openBackend(u);
    EXPECT_TRUE(b.ok()) << b.error().message;
    return b.ok() ? std::move(*b) : nullptr;
  }
  Store store(const std::string& extra = "") { return Store(open(url(extra))); }
};

// Documents are plain keys under PREFIX/state/, as any etcd client sees them; locks live under PREFIX/locks/,
// bound to a lease.
TEST_F(StateEtcd, LayoutAsAnotherClientSeesIt) {
  Store s = store();
  TargetState st;
  st.target = "hv01";
  st.generation = 4;
  ASSERT_TRUE(s.save(st).ok());
  RunResult r = etcdctl("get /vnetplan/state/targets/hv01/state.json --print-value-only");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  Json doc = Json::parse(r.out);
  EXPECT_EQ(doc["generation"], 4);
  EXPECT_EQ(doc["target"], "hv01");

  auto lock = s.lockTarget("hv01", "apply", 0ms);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  auto kvs = range("/vnetplan/locks/target/hv01", "");
  ASSERT_EQ(kvs.size(), 1u);
  EXPECT_NE(kvs[0].lease, 0) << "a lock is bound to a lease";
  Json rec = Json::parse(kvs[0].value);
  EXPECT_EQ(rec["id"], (*lock)->info().id);
  EXPECT_EQ(rec["ttlSeconds"], 2);
  lock->reset();
  EXPECT_TRUE(range("/vnetplan/locks/target/hv01", "").empty()) << "released: the record is gone";
  r = etcdctl("lease list");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out.find("found 0 leases") != std::string::npos || r.out.find("found 0 lease") != std::string::npos,
            true)
      << "the lease is revoked on release: " << r.out;

  // Keys written by someone else that the store would never write are not documents.
  ASSERT_EQ(etcdctl("put /vnetplan/state/a//b x").exitCode, 0);
  ASSERT_EQ(etcdctl("put /vnetplan/statex y").exitCode, 0);
  auto keys = s.backend().list("");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, std::vector<std::string>{"targets/hv01/state.json"});
}

// Two writers that both read a document: the first write wins, the second is refused (nothing is overwritten)
// until it has read the new version.
TEST_F(StateEtcd, WritersCompareAndSwapOnTheRevision) {
  auto a = open(url());
  auto b = open(url());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->write("k", "v1").ok());
  auto ra = a->read("k");
  auto rb = b->read("k");
  ASSERT_TRUE(ra.ok() && rb.ok());
  ASSERT_TRUE(a->write("k", "from-a").ok());
  Status sb = b->write("k", "from-b");
  ASSERT_FALSE(sb.ok());
  EXPECT_TRUE(contains(sb.error().message, "another writer changed it")) << sb.error().message;
  EXPECT_EQ(get("/vnetplan/state/k"), "from-a") << "b did not overwrite a";
  // Removing what b has not seen is refused the same way.
  Status rm = b->remove("k");
  ASSERT_FALSE(rm.ok());
  EXPECT_EQ(get("/vnetplan/state/k"), "from-a");
  // Having read it, b may write.
  ASSERT_TRUE(b->read("k").ok());
  ASSERT_TRUE(b->write("k", "from-b").ok());
  EXPECT_EQ(get("/vnetplan/state/k"), "from-b");
  // Even the very same bytes on a stale revision are refused: a read-modify-write that lost a race must redo it.
  EXPECT_FALSE(a->write("k", "from-b").ok());
  // And a change out of band (etcdctl) is never overwritten by a store that read the older value.
  ASSERT_TRUE(a->read("k").ok());
  ASSERT_EQ(etcdctl("put /vnetplan/state/k by-hand").exitCode, 0);
  EXPECT_FALSE(a->write("k", "from-a-again").ok());
  EXPECT_EQ(get("/vnetplan/state/k"), "by-hand");
}

// Many writers race on one key, each read-modify-writing a counter with retries: no increment is lost.
TEST_F(StateEtcd, NoLostUpdatesUnderConcurrentReadModifyWrite) {
  {
    auto b = open(url());
    ASSERT_TRUE(b && b->write("counter", "0").ok());
  }
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      auto b = openBackend(url());
      if (!b.ok()) return;
      for (int i = 0; i < 10; ++i) {
        for (;;) {
          auto v = (*b)->read("counter");
          if (!v.ok() || !v->has_value()) return;
          if ((*b)->write("counter", std::to_string(std::stoi(**v) + 1)).ok()) break;
          ++conflicts;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(get("/vnetplan/state/counter"), "40");
  RecordProperty("cas_conflicts", conflicts.load());
}

// A holder whose lease is gone (expired while etcd was out of reach, or removed out of band) can no longer write:
// each write checks that the locks the process holds are still its own.
TEST_F(StateEtcd, HolderThatLostItsLeaseCannotWrite) {
  Store s = store();
  auto lock = s.lockTarget("hv01", "apply", 0ms);
  ASSERT_TRUE(lock.ok());
  TargetState st;
  st.target = "hv01";
  ASSERT_TRUE(s.save(st).ok());
  auto kvs = range("/vnetplan/locks/target/hv01", "");
  ASSERT_EQ(kvs.size(), 1u);
  char hex[32];
  std::snprintf(hex, sizeof hex, "%llx", kvs[0].lease);
  ASSERT_EQ(etcdctl(std::string("lease revoke ") + hex).exitCode, 0);
  // Someone else takes the lock now.
  Store other = store();
  auto theirs = other.lockTarget("hv01", "apply", 3000ms);
  ASSERT_TRUE(theirs.ok()) << theirs.error().message;
  st.generation = 99;
  Status w = s.save(st);
  ASSERT_FALSE(w.ok());
  EXPECT_TRUE(contains(w.error().message, "no longer holds its lock on target/hv01")) << w.error().message;
  auto back = other.load("hv01");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->generation, 0) << "the stale holder's write did not land";
  lock->reset();  // releasing a lost lock does not remove the new holder's
  auto ls = other.backend().locks();
  ASSERT_TRUE(ls.ok());
  ASSERT_EQ(ls->size(), 1u);
  EXPECT_EQ((*ls)[0].info.id, (*theirs)->info().id);
  EXPECT_TRUE((*ls)[0].held);
}

// State, generations, journal and a held lock all survive a restart of etcd; the holder keeps its lock alive
// through it, and operations during the restart wait for etcd to come back (within the URL's timeout).
TEST_F(StateEtcd, StateAndLocksSurviveAnEtcdRestart) {
  Store s = store("&lock-ttl=3s");
  TargetState st;
  st.target = "hv01";
  st.generation = 2;
  st.owned = sampleOwned("hv01");
  ASSERT_TRUE(s.save(st).ok());
  for (int64_t n = 1; n <= 2; ++n) {
    Generation g;
    g.number = n;
    g.owned = sampleOwned("hv01");
    ASSERT_TRUE(s.addGeneration("hv01", g).ok());
  }
  Journal j;
  j.id = "j1";
  j.target = "hv01";
  j.targetSpec.name = "hv01";
  j.targetSpec.provider = "linux";
  j.operation = "apply";
  ASSERT_TRUE(s.writeJournal(j).ok());
  auto lock = s.lockTarget("hv01", "apply", 0ms);
  ASSERT_TRUE(lock.ok());

  // Writes go on while etcd restarts: they wait for it.
  std::atomic<bool> writing{true};
  std::atomic<int> writes{0}, failures{0};
  std::string failed;  // the writer's errors, read after join()
  std::thread writer([&] {
    auto b = openBackend(url("&timeout=20s"));
    if (!b.ok()) return;
    for (int i = 0; writing; ++i) {
      if (Status w = (*b)->write("during-restart", std::to_string(i)); w.ok()) {
        ++writes;
      } else {
        ++failures;
        failed += w.error().message + "\n";
      }
      std::this_thread::sleep_for(50ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(restartEtcd());
  std::this_thread::sleep_for(4s);  // longer than the lock's TTL: only kept alive does it survive
  writing = false;
  writer.join();
  EXPECT_EQ(failures.load(), 0) << failed;
  EXPECT_GT(writes.load(), 10);

  Store after = store();
  auto back = after.load("hv01");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->generation, 2);
  expectOwnedEq(st.owned, back->owned);
  auto h = after.history("hv01");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->size(), 2u);
  auto jr = after.journal("hv01");
  ASSERT_TRUE(jr.ok() && jr->has_value());
  EXPECT_EQ((**jr).id, "j1");
  auto denied = after.lockTarget("hv01", "apply", 0ms);
  ASSERT_FALSE(denied.ok()) << "the lock is still held";
  EXPECT_TRUE(contains(denied.error().message, (*lock)->info().id)) << denied.error().message;
  st.generation = 3;
  EXPECT_TRUE(s.save(st).ok()) << "the holder still holds it and may write";
  lock->reset();
  EXPECT_TRUE(after.lockTarget("hv01", "apply", 0ms).ok());
}

// The first endpoint is down: the backend goes on with the next one.
TEST_F(StateEtcd, FailsOverToTheNextEndpoint) {
  auto b = open("etcd://127.0.0.1:1," + hostPort() + "/vnetplan?timeout=5s");
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->write("k", "v").ok());
  auto r = b->read("k");
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ(**r, "v");
  // Only dead endpoints: an error naming them, within the timeout.
  auto dead = open("etcd://127.0.0.1:1,127.0.0.1:2/vnetplan?timeout=500ms");
  auto t0 = std::chrono::steady_clock::now();
  auto e = dead->read("k");
  ASSERT_FALSE(e.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(contains(e.error().message, "127.0.0.1:1, 127.0.0.1:2")) << e.error().message;
}

// With etcd's authentication on: the password comes from a reference (an environment variable), never from the
// URL, and no error repeats it.
TEST_F(StateEtcd, AuthenticationWithAPasswordReference) {
  const std::string pw = "Pw-" + std::to_string(::getpid()) + "-not-in-logs";
  ASSERT_EQ(etcdctl("user add root:" + pw).exitCode, 0);
  ASSERT_EQ(etcdctl("user add vnp:" + pw).exitCode, 0);
  ASSERT_EQ(etcdctl("role add vnp-rw").exitCode, 0);
  ASSERT_EQ(etcdctl("role grant-permission vnp-rw --prefix=true readwrite /vnetplan/").exitCode, 0);
  ASSERT_EQ(etcdctl("user grant-role vnp vnp-rw").exitCode, 0);
  RunResult on = etcdctl("auth enable");
  ASSERT_EQ(on.exitCode, 0) << on.err;

  ::setenv("VNP_TEST_ETCD_PW", pw.c_str(), 1);
  Store s = store("&user=vnp&password-env=VNP_TEST_ETCD_PW");
  TargetState st;
  st.target = "hv01";
  Status saved = s.save(st);
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  auto lock = s.lockTarget("hv01", "apply", 0ms);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  lock->reset();

  // Without credentials, or with a wrong password: refused, and the message never holds a password.
  Store anon = store();
  auto r = anon.load("hv01");
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(contains(r.error().message, pw));
  ::setenv("VNP_TEST_ETCD_PW", "wrong-password-xyz", 1);
  Store wrong = store("&user=vnp&password-env=VNP_TEST_ETCD_PW");
  r = wrong.load("hv01");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "authentication")) << r.error().message;
  EXPECT_FALSE(contains(r.error().message, "wrong-password-xyz")) << r.error().message;
  // Outside its permission: a clear error.
  ::setenv("VNP_TEST_ETCD_PW", pw.c_str(), 1);
  auto outside = open("etcd://" + hostPort() + "/elsewhere?user=vnp&password-env=VNP_TEST_ETCD_PW&timeout=3s");
  auto denied = outside->write("k", "v");
  ASSERT_FALSE(denied.ok());
  EXPECT_TRUE(contains(denied.error().message, "permission denied")) << denied.error().message;
  ::unsetenv("VNP_TEST_ETCD_PW");
  (void)etcdctl("--user root:" + pw + " auth disable");
}

}  // namespace

namespace {

// etcd with mutual TLS (scripts/etcd-sandbox.sh with ETCD_SANDBOX_TLS): certificates made here with openssl, a CA
// of the test's own. The backend trusts the server only through cacert=, and proves itself with cert=/key=.
// etcd 3.4's JSON gateway dials etcd's own gRPC port with the server certificate as its client certificate: with
// --client-cert-auth that certificate needs extendedKeyUsage clientAuth too (else every gateway call fails with
// "certificate specifies an incompatible key usage" in etcd's log).
class StateEtcdTls : public ScratchTest {
 protected:
  void SetUp() override {
    ScratchTest::SetUp();
    if (HasFatalFailure()) return;
    if (std::system("command -v openssl >/dev/null 2>&1 && command -v curl >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "SKIPPED: openssl and curl are needed to make and check certificates";
    tls = dir / "tls";
    fs::create_directories(tls);
    const std::string t = shellQuote(tls.string());
    auto key = [&](const std::string& name) {
      return "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + t + "/" + name +
             "-key.pem -out " + t + "/" + name + ".csr -subj /CN=" + name;
    };
    auto sign = [&](const std::string& name, const std::string& ca, const std::string& ext) {
      return "printf '" + ext + "' >" + t + "/" + name + ".ext && openssl x509 -req -in " + t + "/" + name + ".csr -CA " +
             t + "/" + ca + ".pem -CAkey " + t + "/" + ca + "-key.pem -CAcreateserial -days 2 -out " + t + "/" + name +
             ".pem -extfile " + t + "/" + name + ".ext";
    };
    const std::string script =
        "set -e; for ca in ca other-ca; do openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout " + t + "/$ca-key.pem -out " + t + "/$ca.pem -days 2 -subj /CN=vnp-test-$ca; done; " +
        key("server") + "; " + sign("server", "ca", "subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth") + "; " +
        key("client") + "; " + sign("client", "ca", "extendedKeyUsage=clientAuth") + "; " + key("stranger") + "; " +
        sign("stranger", "other-ca", "extendedKeyUsage=clientAuth");
    RunResult r = runShell("bash -c " + shellQuote(script), dir, 60);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    sandbox = std::make_unique<Sandbox>("etcd-sandbox.sh", dir / "etcd", std::vector<std::string>{"etcd.log", "etcd.out"});
    if (std::string why = sandbox->unavailable(dir); !why.empty()) GTEST_SKIP() << "SKIPPED: etcd cannot run here: " << why;
    ::setenv("ETCD_SANDBOX_TLS", tls.c_str(), 1);
    auto started = sandbox->start(dir);
    ::unsetenv("ETCD_SANDBOX_TLS");
    ASSERT_TRUE(started);
    endpoint = sandbox->fact("ENDPOINT");
    ASSERT_EQ(endpoint.rfind("https://", 0), 0u) << endpoint;
    hostPort = endpoint.substr(8);
  }
  void TearDown() override {
    if (sandbox) {
      if (HasFailure()) std::cerr << sandbox->logTails(dir);
      EXPECT_TRUE(sandbox->stop(dir));
    }
    ScratchTest::TearDown();
  }
  std::string url(const std::string& options) const { return "etcd://" + hostPort + "/vnetplan?timeout=3s&" + options; }
  std::string pem(const std::string& name) const { return (tls / (name + ".pem")).string(); }

  fs::path tls;
  std::unique_ptr<Sandbox> sandbox;
  std::string endpoint, hostPort;
};

TEST_F(StateEtcdTls, MutualTlsWithTheUrlsOptionsOrTheEnvironment) {
  const std::string good = "cacert=" + pem("ca") + "&cert=" + pem("client") + "&key=" + pem("client-key");
  {
    auto b = openBackend(url(good));
    ASSERT_TRUE(b.ok()) << b.error().message;
    Store s(std::move(*b));
    TargetState st;
    st.target = "hv01";
    st.generation = 3;
    Status saved = s.save(st);
    ASSERT_TRUE(saved.ok()) << saved.error().message;
    auto lock = s.lockTarget("hv01", "apply", 0ms);
    ASSERT_TRUE(lock.ok()) << lock.error().message;
    auto back = s.load("hv01");
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->generation, 3);
  }
  // The same through VNETPLAN_ETCD_* (as a systemd unit's environment file would give them).
  ::setenv("VNETPLAN_ETCD_CACERT", pem("ca").c_str(), 1);
  ::setenv("VNETPLAN_ETCD_CERT", pem("client").c_str(), 1);
  ::setenv("VNETPLAN_ETCD_KEY", pem("client-key").c_str(), 1);
  {
    auto b = openBackend("etcd://" + hostPort + "/vnetplan?timeout=3s");
    ::unsetenv("VNETPLAN_ETCD_CACERT");
    ::unsetenv("VNETPLAN_ETCD_CERT");
    ::unsetenv("VNETPLAN_ETCD_KEY");
    ASSERT_TRUE(b.ok()) << b.error().message;
    Store s(std::move(*b));
    auto back = s.load("hv01");
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->generation, 3);
  }
  // A server certificate from a CA we were not told to trust: refused, and said so.
  {
    auto b = openBackend(url("cacert=" + pem("other-ca") + "&cert=" + pem("client") + "&key=" + pem("client-key")));
    ASSERT_TRUE(b.ok());
    auto r = (*b)->read("targets/hv01/state.json");
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "not trusted")) << r.error().message;
  }
  // No client certificate, or one from another CA: etcd refuses the connection.
  for (const std::string& opts :
       {"cacert=" + pem("ca"), "cacert=" + pem("ca") + "&cert=" + pem("stranger") + "&key=" + pem("stranger-key")}) {
    auto b = openBackend(url(opts));
    ASSERT_TRUE(b.ok());
    auto r = (*b)->read("targets/hv01/state.json");
    EXPECT_FALSE(r.ok()) << opts;
  }
  // Plain http to the TLS port: an error, not a hang.
  auto plain = openBackend("etcd://" + hostPort + "/vnetplan?timeout=1s");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE((*plain)->read("targets/hv01/state.json").ok());
}

}  // namespace
