// The state store: the backend suite (tests/unit/state_backend_suite.h) against file://, what only file://
// has (files, modes, symlinks, FIFOs, temp files), and what opening a backend by URL checks (etcd:// URLs
// included: parsing them needs no server; the suite runs against a real etcd in
// tests/integration/state_etcd_test.cpp).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "state/backends.h"
#include "state/etcd_gateway.h"
#include "state/store.h"
#include "tests/unit/state_backend_suite.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace vnptest::statesuite;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vnetplan-state-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class FileStore : public StoreUnderTest {
 public:
  std::string url() const override { return "file://" + (tmp_.path() / "state").string(); }
  std::chrono::milliseconds lockExpiry() const override { return 0ms; }
  bool anythingStored() override { return fs::exists(tmp_.path() / "state"); }

 private:
  TempDir tmp_;
};

std::unique_ptr<StoreUnderTest> makeFileStore(std::string*) { return std::make_unique<FileStore>(); }

}  // namespace

namespace vnptest::statesuite {
INSTANTIATE_TEST_SUITE_P(File, StateBackend, ::testing::Values(StoreKind{"file", makeFileStore}), storeKindName);
}

namespace {

// What only the file:// backend has: files and directories.
class StateTest : public ::testing::Test {
 protected:
  fs::path dir() const { return tmp_.path() / "state"; }
  std::string url() const { return "file://" + dir().string(); }
  std::unique_ptr<Backend> backend() {
    auto b = openBackend(url());
    EXPECT_TRUE(b.ok()) << b.error().message;
    return std::move(*b);
  }
  Store store() { return Store(backend()); }
  std::vector<fs::path> allFiles(const fs::path& root) const {
    std::vector<fs::path> out;
    for (auto& e : fs::recursive_directory_iterator(root)) out.push_back(e.path());
    return out;
  }
  TempDir tmp_;
};

TEST_F(StateTest, StateAtomicWriteLeavesNoTempFilesAndPrivateModes) {
  ::umask(022);
  Store s = store();
  TargetState st;
  st.target = "hv01";
  st.owned = sampleOwned("hv01");
  for (int i = 0; i < 20; ++i) {
    st.generation = i;
    ASSERT_TRUE(s.save(st).ok());
    Generation g;
    g.number = i + 1;
    ASSERT_TRUE(s.addGeneration("hv01", g).ok());
  }
  {
    auto l = s.lockTarget("hv01", "apply", 0ms);
    ASSERT_TRUE(l.ok());
  }
  for (const auto& p : allFiles(dir())) {
    std::string name = p.filename().string();
    EXPECT_EQ(name.rfind(".tmp", 0), std::string::npos) << "temp file left behind: " << p;
    struct stat sb {};
    ASSERT_EQ(::lstat(p.c_str(), &sb), 0);
    if (S_ISDIR(sb.st_mode))
      EXPECT_EQ(sb.st_mode & 0777, 0700u) << p;
    else
      EXPECT_EQ(sb.st_mode & 0777, 0600u) << p;
  }
  struct stat root {};
  ASSERT_EQ(::stat(dir().c_str(), &root), 0);
  EXPECT_EQ(root.st_mode & 0777, 0700u);
  auto back = s.load("hv01");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->generation, 19);
}

TEST_F(StateTest, StateSymlinksInsideDirAreRefused) {
  fs::create_directories(dir());
  fs::create_directories(tmp_.path() / "elsewhere");
  fs::create_directory_symlink(tmp_.path() / "elsewhere", dir() / "targets");
  Store s = store();
  TargetState st;
  st.target = "hv01";
  EXPECT_FALSE(s.save(st).ok());
  EXPECT_FALSE(s.load("hv01").ok());
  EXPECT_TRUE(fs::is_empty(tmp_.path() / "elsewhere"));
}

// A FIFO (or any non-regular file) planted where a state document or a lock file belongs is refused at once
// with a clear error, instead of hanging plan and drift on open().
TEST_F(StateTest, StateNonRegularFilesAreRefusedWithoutHanging) {
  Store s = store();
  TargetState st;
  st.target = "hv01";
  ASSERT_TRUE(s.save(st).ok());
  const fs::path doc = dir() / "targets" / "hv01" / "state.json";
  fs::remove(doc);
  ASSERT_EQ(::mkfifo(doc.c_str(), 0600), 0);
  auto t0 = std::chrono::steady_clock::now();
  auto loaded = s.load("hv01");
  ASSERT_FALSE(loaded.ok());
  EXPECT_TRUE(contains(loaded.error().message, "not a regular file")) << loaded.error().message;
  // The lock file too.
  fs::create_directories(dir() / ".locks");
  for (const auto& e : fs::directory_iterator(dir() / ".locks")) fs::remove(e.path());
  auto l1 = s.lockTarget("hv02", "apply", std::chrono::milliseconds(0));
  ASSERT_TRUE(l1.ok()) << l1.error().message;
  l1->reset();
  for (const auto& e : fs::directory_iterator(dir() / ".locks"))
    if (e.path().extension() == ".lock") {
      fs::remove(e.path());
      ASSERT_EQ(::mkfifo(e.path().c_str(), 0600), 0);
    }
  auto l2 = s.lockTarget("hv02", "apply", std::chrono::milliseconds(0));
  ASSERT_FALSE(l2.ok());
  EXPECT_TRUE(contains(l2.error().message, "not a regular file")) << l2.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "a FIFO made vnetplan wait";
}

// Temp files of writers that were killed mid-write are removed by the next write in their directory.
TEST_F(StateTest, StateTempFilesOfKilledWritersAreCleanedUp) {
  Store s = store();
  TargetState st;
  st.target = "hv01";
  ASSERT_TRUE(s.save(st).ok());
  const fs::path d = dir() / "targets" / "hv01";
  // A writer that is gone (pid 1 is never us and a huge pid is never alive... use a pid that cannot exist).
  std::ofstream(d / ".tmp.999999999.abcdef") << "half a document";
  std::ofstream(d / (".tmp." + std::to_string(::getpid()) + ".123456")) << "ours: a write in progress";
  ASSERT_TRUE(s.save(st).ok());
  EXPECT_FALSE(fs::exists(d / ".tmp.999999999.abcdef"));
  EXPECT_TRUE(fs::exists(d / (".tmp." + std::to_string(::getpid()) + ".123456")));
}

TEST_F(StateTest, StateFilesStayInsideDirAndLongNamesFailCleanly) {
  std::ofstream(tmp_.path() / "victim") << "precious";
  Store s = store();
  for (const std::string n : {"../x", "../../etc/passwd", "a/b", "..", ".", "/abs/path", "%2F"}) {
    TargetState st;
    st.target = n;
    st.owned = sampleOwned(hostileAddrTarget(n));
    ASSERT_TRUE(s.save(st).ok()) << n;
    ASSERT_TRUE(s.lockTarget(n, "apply", 0ms).ok()) << n;
  }
  // A name too long for a file name once encoded fails cleanly.
  std::string longName(300, 'L');
  TargetState st;
  st.target = longName;
  auto r = s.save(st);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "too long")) << r.error().message;
  auto longLock = s.lockTarget(longName, "apply", 0ms);  // locks have no length limit: nothing is stored
  ASSERT_TRUE(longLock.ok()) << longLock.error().message;
  EXPECT_FALSE(s.lockTarget(longName, "apply", 0ms).ok());
  EXPECT_FALSE(s.load(longName).ok());
  for (const auto& p : allFiles(tmp_.path())) {
    if (p == tmp_.path() / "victim" || p == dir()) continue;
    EXPECT_EQ(p.string().rfind(dir().string() + "/", 0), 0u) << "escaped: " << p;
  }
  std::string victim;
  std::getline(std::ifstream(tmp_.path() / "victim"), victim);
  EXPECT_EQ(victim, "precious");
  EXPECT_FALSE(fs::exists("/abs/path"));
}

TEST_F(StateTest, StateForeignFilesAreNotDocuments) {
  auto b = backend();
  ASSERT_TRUE(b->write("a/b", "x").ok());
  std::ofstream(dir() / "a" / "stray file") << "x";
  auto all = b->list("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, std::vector<std::string>{"a/b"});
}

// A SIGKILLed holder leaves its record behind (stale, not held) until the next lock() replaces it.
TEST_F(StateTest, StateStaleRecordOfSigkilledHolder) {
  Store s = store();
  pid_t child = forkLockHolder(url());
  ASSERT_GT(child, 0);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  auto ls = s.backend().locks();
  ASSERT_TRUE(ls.ok());
  ASSERT_EQ(ls->size(), 1u);
  EXPECT_FALSE((*ls)[0].held);
  EXPECT_EQ((*ls)[0].info.pid, child);
  auto holder = s.lockHolder("hv01");
  ASSERT_TRUE(holder.ok());
  EXPECT_FALSE(holder->has_value()) << "a stale record holds nothing";
}

// ---- openBackend -----------------------------------------------------------------------------------------

TEST_F(StateTest, StateOpenBackendSchemes) {
  auto bad = openBackend("s3://bucket/x");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(contains(bad.error().message, "file://")) << bad.error().message;
  EXPECT_TRUE(contains(bad.error().message, "etcd://")) << bad.error().message;
  auto bare = openBackend("/var/lib/vnetplan");
  ASSERT_FALSE(bare.ok());
  EXPECT_TRUE(contains(bare.error().message, "file://")) << bare.error().message;
  // etcd:// opens without connecting: the first operation does.
  auto etcd = openBackend("etcd://127.0.0.1:2379/vnetplan");
  ASSERT_TRUE(etcd.ok()) << etcd.error().message;
  EXPECT_EQ((*etcd)->url(), "etcd://127.0.0.1:2379/vnetplan");
  EXPECT_FALSE(openBackend("file://").ok());

  std::ofstream(tmp_.path() / "afile") << "x";
  EXPECT_FALSE(openBackend("file://" + (tmp_.path() / "afile").string()).ok());

  // Absolute: file:///abs/path
  auto abs = openBackend("file://" + dir().string());
  ASSERT_TRUE(abs.ok());
  EXPECT_EQ((*abs)->url(), "file://" + dir().string());
  ASSERT_TRUE((*abs)->write("k", "v").ok());
  EXPECT_TRUE(fs::exists(dir() / "k"));

  // Relative to the working directory at open time.
  auto cwd = fs::current_path();
  fs::current_path(tmp_.path());
  auto rel = openBackend("file://.vnetplan");
  fs::current_path(cwd);
  ASSERT_TRUE(rel.ok()) << rel.error().message;
  ASSERT_TRUE((*rel)->write("targets/hv01/state.json", "{}").ok());
  EXPECT_TRUE(fs::exists(tmp_.path() / ".vnetplan/targets/hv01/state.json"));
}

// Environment variables of the etcd:// backend, cleared for a test and restored after it.
class EtcdUrl : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars) {
      if (const char* x = std::getenv(v)) saved_.emplace_back(v, x);
      ::unsetenv(v);
    }
  }
  void TearDown() override {
    for (const char* v : kVars) ::unsetenv(v);
    for (const auto& [k, v] : saved_) ::setenv(k.c_str(), v.c_str(), 1);
  }
  static constexpr const char* kVars[] = {"VNETPLAN_ETCD_CACERT", "VNETPLAN_ETCD_CERT", "VNETPLAN_ETCD_KEY",
                                          "VNETPLAN_ETCD_USER", "VNETPLAN_ETCD_PASSWORD",
                                          "VNETPLAN_ETCD_PASSWORD_FILE"};
  std::vector<std::pair<std::string, std::string>> saved_;
  TempDir tmp_;
};

TEST_F(EtcdUrl, EndpointsPrefixAndOptions) {
  namespace etcd = vnetplan::state::etcd;
  auto c = etcd::parseUrl("etcd://10.0.0.1:2379,etcd-2.example:23790,[::1]:2379,etcd3/fleet/prod/?lock-ttl=5s&timeout=1500ms");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->endpoints.size(), 4u);
  EXPECT_EQ(c->endpoints[0].str(), "10.0.0.1:2379");
  EXPECT_EQ(c->endpoints[1].str(), "etcd-2.example:23790");
  EXPECT_EQ(c->endpoints[2].host, "::1");
  EXPECT_EQ(c->endpoints[2].str(), "[::1]:2379");
  EXPECT_EQ(c->endpoints[3].port, 2379) << "the default client port";
  EXPECT_EQ(c->prefix, "/fleet/prod");
  EXPECT_EQ(c->lockTtl, std::chrono::seconds(5));
  EXPECT_EQ(c->timeout, std::chrono::milliseconds(1500));
  EXPECT_FALSE(c->tls);
  EXPECT_TRUE(c->user.empty());

  for (const std::string bad :
       {"etcd://", "etcd://h:2379", "etcd://h:2379/", "etcd:///p", "etcd://h:99999/p", "etcd://h:x/p",
        "etcd://h:2379/a/../b", "etcd://h:2379//p", "etcd://h/p?lock-ttl=1s", "etcd://h/p?frobnicate=1",
        "etcd://h/p?timeout=soon", "etcd://h/p?tls=maybe", "etcd://h/p?user=root", "etcd://::1/p",
        "etcd://h/p#frag", "etcd://h/p?cert=/etc/hostname"}) {
    auto r = etcd::parseUrl(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

// A credential never travels in the URL, and errors never repeat one.
TEST_F(EtcdUrl, CredentialsNeverInTheUrlNorInErrors) {
  for (const std::string url : {"etcd://root:s3cr3tPW@127.0.0.1:2379/vnetplan",
                                "etcd://127.0.0.1:2379/vnetplan?user=root&password=s3cr3tPW"}) {
    auto b = openBackend(url);
    ASSERT_FALSE(b.ok()) << url;
    EXPECT_FALSE(contains(b.error().message, "s3cr3tPW")) << b.error().message;
    EXPECT_TRUE(contains(b.error().message, "password-env")) << b.error().message;
  }
  EXPECT_EQ(redactStateUrl("etcd://root:pw@h:1/p?x=1&password=pw&y=2"), "etcd://***@h:1/p?x=1&password=***&y=2");
  EXPECT_EQ(redactStateUrl("file://.vnetplan"), "file://.vnetplan");

  // References: an environment variable or a file, named in the URL or by VNETPLAN_ETCD_*.
  namespace etcd = vnetplan::state::etcd;
  auto byEnv = etcd::parseUrl("etcd://h/p?user=vnetplan&password-env=MY_PW");
  ASSERT_TRUE(byEnv.ok()) << byEnv.error().message;
  EXPECT_EQ(byEnv->user, "vnetplan");
  ASSERT_TRUE(byEnv->password.has_value());
  EXPECT_EQ(byEnv->password->describe(), "environment variable MY_PW");
  ::setenv("VNETPLAN_ETCD_USER", "agent", 1);
  ::setenv("VNETPLAN_ETCD_PASSWORD_FILE", "/run/secrets/etcd", 1);
  auto byVars = etcd::parseUrl("etcd://h/p");
  ASSERT_TRUE(byVars.ok()) << byVars.error().message;
  EXPECT_EQ(byVars->user, "agent");
  EXPECT_EQ(byVars->password->describe(), "file /run/secrets/etcd");
  ::unsetenv("VNETPLAN_ETCD_PASSWORD_FILE");
  auto noPassword = etcd::parseUrl("etcd://h/p");
  ASSERT_FALSE(noPassword.ok());
  EXPECT_TRUE(contains(noPassword.error().message, "needs a password")) << noPassword.error().message;
}

TEST_F(EtcdUrl, TlsFilesAreChecked) {
  namespace etcd = vnetplan::state::etcd;
  const std::string ca = (tmp_.path() / "ca.pem").string(), cert = (tmp_.path() / "c.pem").string(),
                    key = (tmp_.path() / "c.key").string();
  for (const auto& f : {ca, cert, key}) std::ofstream(f) << "-----BEGIN-----\n";
  auto c = etcd::parseUrl("etcd://h/p?cacert=" + ca + "&cert=" + cert + "&key=" + key);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->tls) << "a CA or client certificate means https";
  EXPECT_EQ(c->caFile, ca);
  EXPECT_FALSE(etcd::parseUrl("etcd://h/p?cert=" + cert).ok()) << "cert without key";
  EXPECT_FALSE(etcd::parseUrl("etcd://h/p?cacert=" + ca + "&tls=false").ok());
  auto missing = etcd::parseUrl("etcd://h/p?cacert=/nonexistent/ca.pem");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(contains(missing.error().message, "/nonexistent/ca.pem")) << missing.error().message;
  ::setenv("VNETPLAN_ETCD_CACERT", ca.c_str(), 1);
  auto byEnv = etcd::parseUrl("etcd://h/p");
  ASSERT_TRUE(byEnv.ok());
  EXPECT_TRUE(byEnv->tls);
  EXPECT_TRUE(etcd::parseUrl("etcd://h/p?tls=true").ok());
}

// Nothing listens there: the first operation fails within the URL's timeout, naming the endpoint.
TEST_F(EtcdUrl, UnreachableEtcdFailsWithinTheTimeout) {
  auto b = openBackend("etcd://127.0.0.1:1/vnetplan?timeout=300ms");
  ASSERT_TRUE(b.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto r = (*b)->read("targets/x/state.json");
  ASSERT_FALSE(r.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(contains(r.error().message, "127.0.0.1:1")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "unreachable")) << r.error().message;
}

TEST(StateClock, StateNowRfc3339IsUtcSeconds) {
  std::string now = nowRfc3339();
  EXPECT_TRUE(std::regex_match(now, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)"))) << now;
}

TEST(StateEtcdCodec, Base64AndPrefixEnd) {
  namespace etcd = vnetplan::state::etcd;
  for (const std::string& s : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                              std::string("\x00\xff\x10", 3), std::string(1000, '\xab')}) {
    auto back = etcd::base64Decode(etcd::base64Encode(s));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(etcd::base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(etcd::base64Decode("Zm9v!").has_value());
  EXPECT_FALSE(etcd::base64Decode("Zg==Zg==").has_value());
  EXPECT_EQ(etcd::prefixEnd("/a/"), "/a0");
  EXPECT_EQ(etcd::prefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(etcd::int64Field(Json{{"r", "42"}}, "r"), 42);
  EXPECT_EQ(etcd::int64Field(Json{{"r", 7}}, "r"), 7);
  EXPECT_EQ(etcd::int64Field(Json::object(), "r"), 0);
}

}  // namespace
