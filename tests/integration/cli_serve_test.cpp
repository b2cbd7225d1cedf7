// End-to-end: `vnetplan serve` against a Git repository the test creates and linux targets in network namespaces
// it creates. commit -> plan -> apply (auto for one target, by an operator for the other) -> out-of-band change ->
// drift in /metrics (checked by promtool), the JSON API and the status page (rendered by headless Chromium, which
// also takes a screenshot that is checked) -> a broken commit reported without touching any host. Then the
// webhook, and the bearer token an agent bound to a non-loopback address requires.
#include <signal.h>
#include <sys/wait.h>

#include <functional>
#include <set>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/peer_sandbox.h"

using namespace vnptest;
using namespace std::chrono_literals;

namespace {

std::string manifests(const std::string& ns1, const std::string& ns2, const std::string& extra = "") {
  return "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: t1, labels: {rollout: auto}}\n"
         "spec: {provider: linux, netns: " + ns1 + "}\n---\n"
         "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: t2}\nspec: {provider: linux, netns: " + ns2 + "}\n"
         "---\napiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: br0}\nspec: {targets: [t1, t2], mtu: 1400}\n" +
         extra;
}

// The agent as a child process; its stderr in a file (the listening address is its first line).
class ServeProcess {
 public:
  ~ServeProcess() { stop(); }
  bool start(const std::string& cmd, const fs::path& errFile) {
    errFile_ = errFile;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      std::string full = "exec " + cmd + " >" + errFile.string() + ".out 2>" + errFile.string() + " </dev/null";
      ::execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return pid_ > 0;
  }
  // "http://HOST:PORT" once the agent says where it listens ("" if it exited or took too long).
  std::string address(std::chrono::seconds within = 20s) {
    for (auto end = std::chrono::steady_clock::now() + within; std::chrono::steady_clock::now() < end;) {
      std::string err = readAll(errFile_);
      size_t p = err.find("listening on http://");
      if (p != std::string::npos) {
        size_t e = err.find(' ', p + 13);
        return err.substr(p + 13, e - p - 13);
      }
      if (exited()) return "";
      std::this_thread::sleep_for(50ms);
    }
    return "";
  }
  bool exited() {
    if (pid_ <= 0) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      exitCode_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      pid_ = -1;
      return true;
    }
    return false;
  }
  // SIGTERM, then SIGKILL after 15 s; the exit code (-1: killed).
  int stop() {
    if (pid_ <= 0) return exitCode_;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 300 && !exited(); ++i) std::this_thread::sleep_for(50ms);
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
      pid_ = -1;
      exitCode_ = -1;
    }
    return exitCode_;
  }
  std::string log() const { return readAll(errFile_); }

 private:
  pid_t pid_ = -1;
  int exitCode_ = -1;
  fs::path errFile_;
};

// Distinct colours of a PNG screenshot (8-bit RGB or RGBA, not interlaced), decoded by Python's zlib: a blank page
// has one.
const char* kPngColours = R"PY(
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat, w, h, ctype = 8, b'', 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
    if kind == b'IHDR': w, h, depth, ctype, _, _, inter = struct.unpack('>IIBBBBB', body); assert depth == 8 and inter == 0
    elif kind == b'IDAT': idat += body
bpp = {2: 3, 6: 4}[ctype]; raw = zlib.decompress(idat); stride = w * bpp; prev = bytearray(stride); colours = set(); i = 0
for y in range(h):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0; b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    if y % 4 == 0:
        for x in range(0, stride, bpp * 2): colours.add(bytes(line[x:x + 3]))
    prev = line
print(len(colours))
)PY";

class CliServe : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (std::system("command -v git >/dev/null 2>&1") != 0) GTEST_SKIP() << "SKIPPED: git is not installed";
    ns2 = ns + "-b";
    ASSERT_EQ(std::system(("ip netns add " + ns2).c_str()), 0);
    extraNetns.push_back(ns2);
    repo = dir / "repo";
    fs::create_directories(repo);
    ASSERT_EQ(git("init -q -b main"), 0);
  }
  void TearDown() override {
    if (agent) {
      if (HasFailure()) std::cerr << "---- serve log ----\n" << agent->log();
      agent->stop();
    }
    NetnsTest::TearDown();
  }

  int git(const std::string& args) {
    return std::system(("git -C " + shellQuote(repo.string()) + " -c user.name=test -c user.email=test@vnetplan.invalid " +
                        args + " >/dev/null 2>&1")
                           .c_str());
  }
  std::string commit(const std::string& yaml, const std::string& message) {
    writeFile(repo / "net.yaml", yaml);
    EXPECT_EQ(git("add net.yaml"), 0);
    EXPECT_EQ(git("commit -q -m " + shellQuote(message)), 0);
    return runShell("git -C " + shellQuote(repo.string()) + " rev-parse HEAD", dir).out.substr(0, 40);
  }
  std::string stateUrl() const { return state.empty() ? "file://" + (dir / "state").string() : state; }

  void startAgent(const std::string& extra, const std::string& env = "") {
    agent = std::make_unique<ServeProcess>();
    ASSERT_TRUE(agent->start((env.empty() ? "" : "env " + env + " ") + std::string(VNETPLAN_BINARY) + " --state " + stateUrl() + " serve --manifests file://" +
                                 repo.string() + " --listen 127.0.0.1:0 " + extra,
                             dir / "serve.err"));
    base = agent->address();
    ASSERT_FALSE(base.empty()) << agent->log();
    http = JsonHttp(base);
  }

  // Polls the JSON API until `pred` holds for the target `name`.
  Json waitTarget(const std::string& name, const std::function<bool(const Json&)>& pred, std::chrono::seconds within = 30s) {
    Json last;
    for (auto end = std::chrono::steady_clock::now() + within; std::chrono::steady_clock::now() < end;
         std::this_thread::sleep_for(200ms)) {
      HttpReply r = http.get("/api/v1/targets/" + name);
      if (r.status == 200) {
        last = r.json;
        if (pred(r.json)) return r.json;
      }
    }
    ADD_FAILURE() << "target " << name << " never reached the expected state; last: " << last.dump(2);
    return last;
  }
  Json waitStatus(const std::function<bool(const Json&)>& pred, std::chrono::seconds within = 30s) {
    Json last;
    for (auto end = std::chrono::steady_clock::now() + within; std::chrono::steady_clock::now() < end;
         std::this_thread::sleep_for(200ms)) {
      HttpReply r = http.get("/api/v1/status");
      if (r.status == 200) {
        last = r.json;
        if (pred(r.json)) return r.json;
      }
    }
    ADD_FAILURE() << "the agent never reached the expected status; last: " << last.dump(2);
    return last;
  }
  int mtu(const std::string& netns, const std::string& link) {
    auto r = runShell("ip -n " + netns + " -j link show " + link, dir);
    if (r.exitCode != 0) return 0;
    return Json::parse(r.out)[0].value("mtu", 0);
  }
  bool hasLink(const std::string& netns, const std::string& link) {
    return runShell("ip -n " + netns + " link show " + link, dir).exitCode == 0;
  }
  // /metrics, checked by promtool (Prometheus's own strict parser of the exposition format).
  std::string metrics() {
    HttpReply r = http.get("/metrics");
    EXPECT_EQ(r.status, 200);
    writeFile(dir / "metrics.txt", r.body);
    if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
      RunResult p = runShell("promtool check metrics < " + (dir / "metrics.txt").string(), dir);
      EXPECT_EQ(p.exitCode, 0) << "promtool: " << p.out << p.err;
    } else {
      ADD_FAILURE() << "promtool is not installed (scripts/packages/fleet.list: prometheus)";
    }
    return r.body;
  }

  std::string ns2, state;
  fs::path repo;
  std::unique_ptr<ServeProcess> agent;
  std::string base;
  JsonHttp http;
};

TEST_F(CliServe, CommitPlanApplyDriftAndABrokenCommit) {
  const std::string sha1 = commit(manifests(ns, ns2), "br0 on both targets");
  startAgent("--interval 1s --auto-apply-label rollout=auto");

  // t1 (label rollout=auto) is applied by the agent; t2 is only planned: its change waits for an operator.
  Json t1 = waitTarget("t1", [](const Json& t) { return t["state"] == "in-sync" && t["generation"] == 1; });
  EXPECT_EQ(t1["lastApply"]["outcome"], "applied");
  EXPECT_EQ(t1["lastApply"]["revision"], sha1);
  EXPECT_EQ(mtu(ns, "br0"), 1400);
  Json t2 = waitTarget("t2", [](const Json& t) { return t["state"] == "pending"; });
  ASSERT_EQ(t2["lastPlan"]["changes"].size(), 1u) << t2.dump(2);
  EXPECT_EQ(t2["lastPlan"]["changes"][0]["address"], "t2/Switch/br0");
  EXPECT_EQ(t2["lastPlan"]["changes"][0]["actions"], Json::array({"create"}));
  EXPECT_EQ(t2["lastPlan"]["revision"], sha1);
  EXPECT_FALSE(hasLink(ns2, "br0")) << "no auto-apply for t2";
  std::string m = metrics();
  EXPECT_NE(m.find("vnetplan_resource_pending_change{target=\"t2\",address=\"t2/Switch/br0\",kind=\"Switch\",action=\"create\"} 1"),
            std::string::npos) << m;
  EXPECT_NE(m.find("vnetplan_applies_total{target=\"t1\",outcome=\"applied\"} 1"), std::string::npos) << m;

  // The operator applies t2 from their own checkout; the agent sees it in sync, and the generation the commit made.
  RunResult r = runShell(std::string(VNETPLAN_BINARY) + " --state " + stateUrl() + " apply --auto-approve --target t2 -f " +
                             (repo / "net.yaml").string(), dir);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  waitTarget("t2", [](const Json& t) { return t["state"] == "in-sync" && t["generation"] == 1; });
  HttpReply gens = http.get("/api/v1/targets/t2/generations");
  ASSERT_EQ(gens.status, 200) << gens;
  ASSERT_EQ(gens.json["generations"].size(), 1u) << gens;
  EXPECT_EQ(gens.json["generations"][0]["gitCommit"], sha1);
  HttpReply gens1 = http.get("/api/v1/targets/t1/generations");
  ASSERT_EQ(gens1.status, 200) << gens1;
  EXPECT_EQ(gens1.json["generations"][0]["gitCommit"], sha1) << "the agent's apply records the commit";

  // Out of band: t2's bridge MTU. Drift in the JSON API, /metrics and the page.
  ip("link set br0 mtu 1300");  // in ns (t1): the agent repairs it (auto-apply)
  ASSERT_EQ(std::system(("ip -n " + ns2 + " link set br0 mtu 1280").c_str()), 0);
  t2 = waitTarget("t2", [](const Json& t) { return t["state"] == "drifted"; });
  ASSERT_EQ(t2["drift"].size(), 1u);
  EXPECT_EQ(t2["drift"][0]["address"], "t2/Switch/br0");
  EXPECT_EQ(t2["drift"][0]["paths"], Json::array({"mtu"}));
  t1 = waitTarget("t1", [](const Json& t) { return t["applies"].value("applied", 0) == 2 && t["state"] == "in-sync"; });
  EXPECT_EQ(mtu(ns, "br0"), 1400) << "t1's drift was repaired by the agent";
  EXPECT_EQ(mtu(ns2, "br0"), 1280) << "t2's drift is reported, not repaired";
  m = metrics();
  EXPECT_NE(m.find("vnetplan_resource_drift{target=\"t2\",address=\"t2/Switch/br0\",kind=\"Switch\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("vnetplan_target_drift_resources{target=\"t2\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("vnetplan_target_state{target=\"t2\",state=\"drifted\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("vnetplan_target_drift_resources{target=\"t1\"} 0"), std::string::npos) << m;

  // The page: fetched plainly, then rendered by headless Chromium (DOM and a screenshot).
  HttpReply page = http.get("/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("data-target=\"t2\" data-state=\"drifted\""), std::string::npos);
  EXPECT_NE(page.body.find("http-equiv=\"refresh\""), std::string::npos) << "the page refreshes itself";
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) {
    ADD_FAILURE() << "chromium is not installed (scripts/packages/fleet.list)";
  } else {
    const std::string chrome = "timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run "
                               "--user-data-dir=" + (dir / "chromium").string() + " --window-size=1280,900 ";
    RunResult dom = runShell(chrome + "--dump-dom " + shellQuote(base + "/") + " 2>/dev/null", dir, 120);
    ASSERT_EQ(dom.exitCode, 0) << dom.err;
    EXPECT_NE(dom.out.find("<table id=\"targets\">"), std::string::npos) << dom.out.substr(0, 2000);
    EXPECT_NE(dom.out.find("data-target=\"t1\" data-state=\"in-sync\""), std::string::npos) << dom.out.substr(0, 3000);
    EXPECT_NE(dom.out.find("data-target=\"t2\" data-state=\"drifted\""), std::string::npos) << dom.out.substr(0, 3000);
    EXPECT_NE(dom.out.find("t2/Switch/br0"), std::string::npos);
    // Saved where the test is run from (the build directory), for a human to look at.
    const fs::path shot = fs::current_path() / "test-artifacts" / "serve-status.png";
    fs::create_directories(shot.parent_path());
    fs::remove(shot);
    RunResult s = runShell(chrome + "--screenshot=" + shot.string() + " " + shellQuote(base + "/"), dir, 120);
    ASSERT_EQ(s.exitCode, 0) << s.err;
    ASSERT_TRUE(fs::exists(shot)) << s.err;
    RunResult blank = runShell(chrome + "--screenshot=" + (dir / "blank.png").string() + " about:blank", dir, 120);
    ASSERT_EQ(blank.exitCode, 0);
    RunResult colours = runShell("/usr/bin/python3 -c " + shellQuote(kPngColours) + " " + shot.string(), dir);
    RunResult blankColours = runShell("/usr/bin/python3 -c " + shellQuote(kPngColours) + " " + (dir / "blank.png").string(), dir);
    ASSERT_EQ(colours.exitCode, 0) << colours.err;
    ASSERT_EQ(blankColours.exitCode, 0) << blankColours.err;
    EXPECT_EQ(std::stoi(blankColours.out), 1) << "the blank page has one colour";
    EXPECT_GE(std::stoi(colours.out), 6) << "the status page is not blank: its state colours, text and table lines";
    RecordProperty("screenshot", shot.string());
  }

  // A broken commit (an invalid manifest, next to a change t1 would otherwise get): reported, nothing applied,
  // the last good commit still planned for every target.
  const std::string sha2 = commit(manifests(ns, ns2, "---\napiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: br1}\n"
                                                    "spec: {targets: [t1], mtu: banana}\n"),
                                  "broken: br1");
  Json st = waitStatus([&](const Json& s) { return s["source"]["valid"] == false && s["source"]["brokenRevision"] == sha2; });
  EXPECT_EQ(st["source"]["revision"], sha1) << "the last good commit is still the one planned";
  EXPECT_NE(st["source"]["brokenErrors"].get<std::string>().find("mtu"), std::string::npos) << st.dump(2);
  const double before = [&] {
    HttpReply r2 = http.get("/api/v1/status");
    return r2.json.value("runs", 0.0);
  }();
  waitStatus([&](const Json& s) { return s.value("runs", 0.0) >= before + 2; });  // it goes on planning
  EXPECT_FALSE(hasLink(ns, "br1")) << "nothing of the broken commit reached t1";
  EXPECT_EQ(mtu(ns, "br0"), 1400);
  t1 = waitTarget("t1", [](const Json& t) { return t["state"] == "in-sync"; });
  EXPECT_EQ(t1["applies"].value("applied", 0), 2) << "no apply since";
  t2 = waitTarget("t2", [](const Json& t) { return t["state"] == "drifted"; });
  m = metrics();
  EXPECT_NE(m.find("vnetplan_manifests_valid 0"), std::string::npos) << m;
  page = http.get("/");
  EXPECT_NE(page.body.find("id=\"manifests\" class=\"banner broken\""), std::string::npos);
  EXPECT_NE(page.body.find(sha2.substr(0, 12)), std::string::npos);

  // A fixed commit is picked up again.
  const std::string sha3 = commit(manifests(ns, ns2), "revert br1");
  waitStatus([&](const Json& s) { return s["source"]["valid"] == true && s["source"]["revision"] == sha3; });

  EXPECT_EQ(agent->stop(), 0) << "SIGTERM stops the agent cleanly";
  EXPECT_NE(agent->log().find("serve: stopped"), std::string::npos);
}

// An auto-apply that fails is rolled back (the same apply as the CLI's), shown as apply-failed, and not repeated on
// the same commit every interval; the other targets go on being planned. (VNETPLAN_FAIL_AT_STEP=1, inherited by
// the agent's apply, makes the first step fail.)
TEST_F(CliServe, FailedAutoApplyIsRolledBackAndNotRepeated) {
  const std::string sha1 = commit(manifests(ns, ns2), "br0");
  startAgent("--interval 1s --auto-apply-target t1", "VNETPLAN_FAIL_AT_STEP=1");
  Json t1 = waitTarget("t1", [](const Json& t) { return t["state"] == "apply-failed"; });
  EXPECT_EQ(t1["lastApply"]["outcome"], "rolled-back") << t1.dump(2);
  EXPECT_EQ(t1["lastApply"]["exitCode"], 1);
  EXPECT_EQ(t1["lastApply"]["revision"], sha1);
  EXPECT_NE(t1["lastApply"]["message"].get<std::string>().find("Rolled back"), std::string::npos) << t1.dump(2);
  EXPECT_FALSE(hasLink(ns, "br0")) << "rolled back: the target is as before";
  const double runs = http.get("/api/v1/status").json.value("runs", 0.0);
  waitStatus([&](const Json& s) { return s.value("runs", 0.0) >= runs + 3; });
  t1 = waitTarget("t1", [](const Json& t) { return t["state"] == "apply-failed"; });
  EXPECT_EQ(t1["applies"].value("rolled-back", 0), 1) << "not retried every interval on the same commit";
  waitTarget("t2", [](const Json& t) { return t["state"] == "pending"; });  // t2 goes on being planned
  std::string m = metrics();
  EXPECT_NE(m.find("vnetplan_applies_total{target=\"t1\",outcome=\"rolled-back\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("vnetplan_target_state{target=\"t1\",state=\"apply-failed\"} 1"), std::string::npos) << m;
}

// The agent and a CI runner share an etcd:// store: while the runner's apply holds t1's lock (awaiting
// confirmation), the agent reports t1 as busy, naming the holder, and does not apply it; once confirmed, the agent
// sees the runner's generation. (A real etcd on 127.0.0.1, scripts/etcd-sandbox.sh.)
TEST_F(CliServe, SharesAnEtcdStoreWithACiRunner) {
  Sandbox etcd("etcd-sandbox.sh", dir / "etcd", {"etcd.log"});
  if (std::string why = etcd.unavailable(dir); !why.empty()) GTEST_SKIP() << "SKIPPED: etcd cannot run here: " << why;
  RunResult runner;  // before the cleanup: the runner's thread writes it until joined
  // Whatever fails below: etcd stopped, the runner's thread joined (it ends by its confirmation deadline).
  struct Cleanup {
    Sandbox& etcd;
    const fs::path& dir;
    std::thread th;
    ~Cleanup() {
      if (th.joinable()) th.join();
      (void)etcd.stop(dir);
    }
  } cleanup{etcd, dir, {}};
  ASSERT_TRUE(etcd.start(dir));
  const std::string ep = etcd.fact("ENDPOINT");
  state = "etcd://" + ep.substr(ep.find("://") + 3) + "/fleet?lock-ttl=2s";
  commit(manifests(ns, ns2), "br0");

  std::thread& th = cleanup.th;
  th = std::thread([&] {
    runner = runShell(std::string(VNETPLAN_BINARY) + " --state " + shellQuote(state) +
                          " apply --auto-approve --confirm-timeout 60s --target t1 -f " + (repo / "net.yaml").string(),
                      dir, 120);
  });
  // The runner holds the lock once its journal awaits confirmation.
  bool held = false;
  for (int i = 0; i < 300 && !held; ++i, std::this_thread::sleep_for(100ms)) {
    RunResult l = runShell(std::string(VNETPLAN_BINARY) + " --state " + shellQuote(state) + " state list", dir, 30);
    held = l.out.find("apply") != std::string::npos && l.out.find("lock") != std::string::npos;
  }
  ASSERT_TRUE(held) << "the runner took the lock";
  startAgent("--interval 1s --auto-apply-target t1");
  Json t1 = waitTarget("t1", [](const Json& t) { return t["state"] == "busy"; });
  EXPECT_NE(t1["error"].get<std::string>().find("apply is running on it"), std::string::npos) << t1.dump(2);
  std::string m = metrics();
  EXPECT_NE(m.find("vnetplan_target_state{target=\"t1\",state=\"busy\"} 1"), std::string::npos) << m;
  EXPECT_TRUE(t1["lastApply"].is_null()) << "the agent did not apply over the runner";
  waitTarget("t2", [](const Json& t) { return t["state"] == "pending"; });  // the others go on

  RunResult conf = runShell(std::string(VNETPLAN_BINARY) + " --state " + shellQuote(state) + " confirm", dir, 60);
  EXPECT_EQ(conf.exitCode, 0) << conf.out << conf.err;
  th.join();
  EXPECT_EQ(runner.exitCode, 0) << runner.out << runner.err;
  t1 = waitTarget("t1", [](const Json& t) { return t["state"] == "in-sync" && t["generation"] == 1; });
  EXPECT_TRUE(t1["lastApply"].is_null()) << "nothing was left for the agent to apply";
  HttpReply gens = http.get("/api/v1/targets/t1/generations");
  ASSERT_EQ(gens.status, 200) << gens;
  EXPECT_EQ(gens.json["generations"].size(), 1u) << gens;
  EXPECT_EQ(mtu(ns, "br0"), 1400);
  EXPECT_EQ(agent->stop(), 0);
}

// A webhook pulls at once (the interval here is an hour). A target that cannot be reached (its namespace does not
// exist) is reported as such; the others are planned all the same.
TEST_F(CliServe, WebhookPullsAtOnce) {
  const std::string missing = "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: t3}\n"
                              "spec: {provider: linux, netns: vnp-missing-" + std::to_string(::getpid()) + "}\n---\n";
  const std::string sha1 = commit(missing + manifests(ns, ns2), "one");
  startAgent("--interval 1h");
  waitStatus([&](const Json& s) { return s["source"]["revision"] == sha1 && s.value("runs", 0) >= 1; });
  Json t3 = waitTarget("t3", [](const Json& t) { return t["state"] == "unreachable"; });
  EXPECT_NE(t3["error"].get<std::string>().find("vnp-missing"), std::string::npos) << t3.dump(2);
  waitTarget("t1", [](const Json& t) { return t["state"] == "pending"; });
  const std::string sha2 = commit(missing + manifests(ns, ns2, "---\napiVersion: vnetplan.io/v1\nkind: Switch\n"
                                                              "metadata: {name: br1}\nspec: {targets: [t1]}\n"),
                                  "two");
  std::this_thread::sleep_for(1500ms);
  HttpReply s = http.get("/api/v1/status");
  EXPECT_EQ(s.json["source"]["revision"], sha1) << "no pull before the webhook";
  HttpReply hook = http.post("/webhook", Json::object());
  EXPECT_EQ(hook.status, 202) << hook;
  waitStatus([&](const Json& st) { return st["source"]["revision"] == sha2; }, 15s);
  Json t1 = waitTarget("t1", [](const Json& t) { return t["lastPlan"]["changes"].size() == 2; });
  EXPECT_EQ(t1["state"], "pending");
  EXPECT_FALSE(hasLink(ns, "br0")) << "planned only (no auto-apply)";
  EXPECT_EQ(http.get("/healthz").status, 200);
  std::string m = metrics();
  EXPECT_NE(m.find("vnetplan_webhooks_total 1"), std::string::npos) << m;
  EXPECT_NE(m.find("vnetplan_target_up{target=\"t3\"} 0"), std::string::npos) << m;
  EXPECT_NE(m.find("vnetplan_target_up{target=\"t1\"} 1"), std::string::npos) << m;
  // SIGTERM ends it at once, however long the interval.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(agent->stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

// Bound to anything but loopback the agent needs a bearer token, and then every view but /healthz asks for it.
// (The address is inside the test's namespace, never the machine's own network.)
TEST_F(CliServe, NonLoopbackNeedsABearerToken) {
  commit(manifests(ns, ns2), "one");
  ip("link add vnp-a type veth peer name vnp-b");
  ip("addr add 10.77.0.1/24 dev vnp-a");
  ip("link set vnp-a up");
  ip("link set vnp-b up");
  ip("link set lo up");
  const std::string serve = "ip netns exec " + ns + " " + VNETPLAN_BINARY + " --state " + stateUrl() +
                            " serve --manifests file://" + repo.string() + " --interval 1h --listen 10.77.0.1:0";
  RunResult refused = runShell(serve, dir, 30);
  EXPECT_EQ(refused.exitCode, 1);
  EXPECT_NE(refused.err.find("a bearer token is required"), std::string::npos) << refused.err;

  const std::string token = "tok-" + std::to_string(::getpid()) + "-0123456789abcdef";
  writeFile(dir / "token", token + "\n");
  agent = std::make_unique<ServeProcess>();
  ASSERT_TRUE(agent->start(serve + " --token-file " + (dir / "token").string(), dir / "serve.err"));
  std::string addr = agent->address();
  ASSERT_FALSE(addr.empty()) << agent->log();
  EXPECT_EQ(agent->log().find(token), std::string::npos) << "the token is never logged";
  auto curl = [&](const std::string& path, const std::string& auth) {
    return runShell("ip netns exec " + ns + " curl -s -o /dev/null -w '%{http_code}' " +
                        (auth.empty() ? "" : "-H " + shellQuote("Authorization: " + auth) + " ") + shellQuote(addr + path),
                    dir, 30)
        .out;
  };
  EXPECT_EQ(curl("/healthz", ""), "200");
  EXPECT_EQ(curl("/metrics", ""), "401");
  EXPECT_EQ(curl("/api/v1/status", ""), "401");
  EXPECT_EQ(curl("/", ""), "401");
  EXPECT_EQ(curl("/api/v1/status", "Bearer wrong-token-0123456789"), "401");
  EXPECT_EQ(curl("/api/v1/status", "Bearer " + token), "200");
  EXPECT_EQ(curl("/metrics", "Bearer " + token), "200");
  // A browser: basic authentication with the token as the password.
  RunResult basic = runShell("ip netns exec " + ns + " curl -s -o /dev/null -w '%{http_code}' -u " +
                                 shellQuote("me:" + token) + " " + shellQuote(addr + "/"), dir, 30);
  EXPECT_EQ(basic.out, "200");
  EXPECT_EQ(agent->stop(), 0);
}

}  // namespace

namespace {

// A Git URL with a token in it: the agent shows the URL without it (log, JSON, page) and reports the failed pull.
class CliServeUrl : public ScratchTest {};

TEST_F(CliServeUrl, CredentialsInTheGitUrlAreNeverShown) {
  ServeProcess agent;
  ASSERT_TRUE(agent.start(std::string(VNETPLAN_BINARY) + " --state file://" + (dir / "state").string() +
                              " serve --manifests 'https://bob:S3cretTok3n@127.0.0.1:1/net.git' --interval 1h"
                              " --listen 127.0.0.1:0",
                          dir / "serve.err"));
  std::string base = agent.address();
  ASSERT_FALSE(base.empty()) << agent.log();
  JsonHttp http(base);
  Json st;
  for (int i = 0; i < 100; ++i, std::this_thread::sleep_for(100ms)) {
    st = http.get("/api/v1/status").json;
    if (st.is_object() && !st["source"].value("syncError", "").empty()) break;
  }
  EXPECT_NE(st["source"].value("syncError", "").find("git:"), std::string::npos) << st.dump(2);
  EXPECT_EQ(st["source"]["location"], "https://***@127.0.0.1:1/net.git");
  EXPECT_EQ(st.dump().find("S3cretTok3n"), std::string::npos);
  EXPECT_EQ(http.get("/").body.find("S3cretTok3n"), std::string::npos);
  EXPECT_EQ(http.get("/metrics").body.find("S3cretTok3n"), std::string::npos);
  EXPECT_EQ(agent.stop(), 0);
  EXPECT_EQ(agent.log().find("S3cretTok3n"), std::string::npos) << agent.log();
}

}  // namespace
