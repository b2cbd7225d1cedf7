// The safety promises of DESIGN §4-§6, each against the real kernel in a namespace of its own, through the binary:
// ownership after a crash, rollback that compares everything, adopted is not created, edited plan files, a
// confirmation deadline that outlives the CLI, probes where the target's traffic is, files vnetplan must not be
// tricked into, and read-only commands beside a running apply. Each test failed on the code before issue 8.
#include <sys/socket.h>
#include <sys/stat.h>

#include "base/sha256.h"
#include "tests/integration/harness.h"

using namespace vnptest;

namespace {

const char* kTarget = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: t1}
spec: {provider: linux, netns: NETNS}
)";

std::string doc(const std::string& body) { return "---\napiVersion: vnetplan.io/v1\n" + body; }
std::string sw(const std::string& name, const std::string& spec) {
  return doc("kind: Switch\nmetadata: {name: " + name + "}\nspec: {targets: [t1], " + spec + "}\n");
}
std::string port(const std::string& name, const std::string& spec) {
  return doc("kind: Port\nmetadata: {name: " + name + "}\nspec: {targets: [t1], " + spec + "}\n");
}

// A run through the shell that was killed by SIGKILL (the shell reports 128 + 9).
bool killed(const RunResult& r) { return r.signal == SIGKILL || r.exitCode == 128 + SIGKILL; }

bool isUp(const Json& l) { return std::find(l["flags"].begin(), l["flags"].end(), "UP") != l["flags"].end(); }

// The crash points a run passes, from VNETPLAN_CRASH_LOG.
std::vector<std::string> crashPoints(const fs::path& log) {
  std::vector<std::string> out;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) out.push_back(line.substr(line.find(' ') + 1));
  return out;
}

}  // namespace

class Safety : public NetnsTest {
 protected:
  RunResult vnp(const std::string& args, const std::string& env = "", int timeout = 120) {
    return runShell(env + " " + VNETPLAN_BINARY + " --state file://" + (dir / "state").string() + " " + args, dir,
                    timeout);
  }
  Json stateOf() {
    auto txt = readAll(dir / "state" / "targets" / "t1" / "state.json");
    return txt.empty() ? Json() : Json::parse(txt);
  }
  std::vector<int> generations() {
    std::vector<int> out;
    fs::path g = dir / "state" / "targets" / "t1" / "generations";
    if (!fs::exists(g)) return out;
    for (const auto& e : fs::directory_iterator(g))
      if (e.path().extension() == ".json") out.push_back(std::stoi(e.path().stem().string()));
    std::sort(out.begin(), out.end());
    return out;
  }
  std::set<std::string> owned() {
    std::set<std::string> out;
    Json st = stateOf();
    if (st.is_null()) return out;
    for (const auto& o : st["owned"]) out.insert(o["address"].get<std::string>());
    return out;
  }
};

// 8.1: a kill between the new state's write and the journal's removal, then `vnetplan rollback`: live state,
// ownership and generation all go back together (the deleted object is owned again; no generation remains).
TEST_F(Safety, CrashAfterTheStateWriteRestoresOwnershipAndGeneration) {
  auto f = manifest(std::string(kTarget) + sw("br0", "mtu: 1500") + sw("br1", "mtu: 1500"));
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  const auto ownedBefore = owned();
  auto g = manifest(std::string(kTarget) + sw("br0", "mtu: 9000"), "g.yaml");  // br1 deleted, br0 updated
  // Find the crash point right after the state write: the journal's removal.
  const fs::path log = dir / "points.log";
  ASSERT_EQ(vnp("apply --auto-approve -f " + g, "VNETPLAN_CRASH_LOG=" + log.string()).exitCode, 0);
  auto points = crashPoints(log);
  size_t at = 0;
  for (size_t i = 0; i < points.size(); ++i)
    if (points[i] == "journal remove") at = i + 1;
  ASSERT_GT(at, 0u) << "no journal removal point";
  // Back to generation 1, then crash there.
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  ASSERT_EQ(vnp("rollback --to 1 --target t1 --auto-approve -f " + f).exitCode, 0);
  const auto gensBefore = generations();
  const auto linksBefore = links();
  auto crashed = vnp("apply --auto-approve -f " + g, "VNETPLAN_CRASH_AT=" + std::to_string(at));
  ASSERT_TRUE(killed(crashed)) << crashed.exitCode << " " << crashed.err;
  auto r = vnp("rollback");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_TRUE(links().count("br1")) << "the deleted bridge came back";
  EXPECT_EQ(links()["br0"]["mtu"], 1500);
  EXPECT_EQ(owned(), ownedBefore) << "ownership was not restored with the live state";
  EXPECT_EQ(generations(), gensBefore) << "a rolled-back generation stayed in the history";
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << "re-applying the old manifests is refused";
}

// 8.2: the pre-image records every managed attribute, absent ones too, and rollback compares all of them: a port
// that a failed apply attached is detached again; a veth peer left down is brought up again.
TEST_F(Safety, RollbackRestoresAbsentAttributesAndTheVethPeer) {
  auto f = manifest(std::string(kTarget) + sw("br0", "mtu: 1500") + port("v0", "type: veth, peer: v0p"));
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  ASSERT_FALSE(links()["v0"].contains("master"));
  // Attach v0 and add br1 (which fails): v0 must end up detached again.
  auto g = manifest(std::string(kTarget) + sw("br0", "mtu: 1500") + sw("br1", "mtu: 1500") +
                        port("v0", "type: veth, peer: v0p, switch: br0"),
                    "g.yaml");
  auto r = vnp("apply --auto-approve -f " + g, "VNETPLAN_FAIL_AT_STEP=2");
  ASSERT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_FALSE(links()["v0"].contains("master")) << "the port stayed attached; the rollback said: " << r.err;
  // A journal left by a crash, then the peer downed by hand: the rollback brings it back up.
  auto crashed = vnp("apply --auto-approve -f " + g, "VNETPLAN_CRASH_AT=3");
  ASSERT_TRUE(killed(crashed)) << crashed.exitCode << " " << crashed.err;
  ip("link set v0p down");
  r = vnp("rollback");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_TRUE(isUp(links()["v0p"])) << "the rollback said verified with the peer down";
  EXPECT_FALSE(links()["v0"].contains("master"));
}

// 8.3: adopted is not created: rollback --to a generation before the adoption releases the object (detached,
// its old attributes back, not owned), never deletes it; leaving the manifests does the same.
TEST_F(Safety, AdoptThenRollbackToBeforeTheAdoptionReleasesIt) {
  ip("link add v9 type veth peer name v9p");
  ip("link set v9 mtu 1400");
  auto f = manifest(std::string(kTarget) + sw("br0", "mtu: 9000"));
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  auto g = manifest(std::string(kTarget) + sw("br0", "mtu: 9000") +
                        port("v9", "type: veth, peer: v9p, adopt: true, switch: br0, mtu: 9000"),
                    "g.yaml");
  auto r = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1 to adopt"), std::string::npos) << r.out;
  ASSERT_EQ(links()["v9"].value("master", ""), "br0");
  // rollback --to shows its plan and needs approval.
  r = vnp("rollback --to 1 --target t1 -f " + g);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.out.find("t1/Port/v9"), std::string::npos) << "rollback --to did not show its plan:\n" << r.out;
  EXPECT_EQ(links()["v9"].value("master", ""), "br0") << "it acted without approval";
  r = vnp("rollback --to 1 --target t1 --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  ASSERT_TRUE(links().count("v9")) << "an adopted veth was deleted";
  EXPECT_FALSE(links()["v9"].contains("master"));
  EXPECT_EQ(links()["v9"]["mtu"], 1400);
  EXPECT_FALSE(owned().count("t1/Port/v9"));
}

// 8.4: taking ownership is a change: applying `show --all` output is not "No changes".
TEST_F(Safety, AdoptionIsAPlanActionShownAndCounted) {
  ip("link add brx type bridge");
  auto f = manifest(std::string(kTarget) + sw("br0", "mtu: 1500"));
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  auto shown = vnp("show --target t1 --all -f " + f);
  ASSERT_EQ(shown.exitCode, 0) << shown.err;
  auto all = manifest(std::string(kTarget) + shown.out, "all.yaml");
  auto r = vnp("plan --detailed-exitcode -f " + all);
  EXPECT_EQ(r.exitCode, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("<=  t1/Switch/brx"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("to adopt"), std::string::npos) << r.out;
}

// 8.6: a saved plan that was edited is refused, whether or not its digest was forged too; nothing changes.
TEST_F(Safety, TamperedPlanFilesAreRefused) {
  ip("link add manual type bridge");
  auto f = manifest(std::string(kTarget) + sw("br0", "mtu: 1500"));
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  auto g = manifest(std::string(kTarget) + sw("br0", "mtu: 9000"), "g.yaml");
  const fs::path planFile = dir / "plan.json";
  ASSERT_EQ(vnp("plan -f " + g + " --out " + planFile.string()).exitCode, 0);
  const Json original = Json::parse(readAll(planFile));
  auto forge = [](Json j) {  // an adversary who also recomputes the digest
    j.erase("plan_digest");
    j["plan_digest"] = vnetplan::sha256Hex(j.dump());
    return j;
  };
  auto change = [](const std::string& addr, const std::string& action, Json before, Json after) {
    return Json{{"address", addr},
                {"target", "t1"},
                {"type", addr.substr(3, addr.rfind('/') - 3)},
                {"name", addr.substr(addr.rfind('/') + 1)},
                {"provider_name", "linux"},
                {"change", {{"actions", {action}}, {"before", before}, {"after", after}, {"after_origins", Json::object()}}},
                {"changed_paths", Json::array({"mtu"})},
                {"reason", "x"},
                {"disruptive", true},
                {"adopt", false},
                {"delete_on_release", false},
                {"description", ""},
                {"identity", nullptr}};
  };
  std::vector<std::pair<std::string, std::string>> corpus;  // name -> file content
  {
    Json j = original;  // an added delete of a bridge vnetplan does not own
    j["resource_changes"].push_back(change("t1/Switch/manual", "delete", {{"mtu", 1500}}, nullptr));
    corpus.emplace_back("added delete (digest forged)", forge(j).dump());
  }
  {
    Json j = original;  // the same, fingerprint forged too
    j["resource_changes"].push_back(change("t1/Switch/manual", "delete", {{"mtu", 1500}}, nullptr));
    j["live_fingerprints"]["t1/Switch/manual"] = "whatever";
    corpus.emplace_back("added delete with a fingerprint (digest forged)", forge(j).dump());
  }
  {
    Json j = original;  // an added update of lo
    j["resource_changes"].push_back(change("t1/Switch/lo", "update", {{"mtu", 65536}}, {{"mtu", 1280}}));
    corpus.emplace_back("added update of an unmanaged object (digest forged)", forge(j).dump());
  }
  {
    Json j = original;  // another namespace
    j["targets"][0]["spec"]["netns"] = ns + "-other";
    corpus.emplace_back("changed connection (digest forged)", forge(j).dump());
  }
  {
    Json j = original;  // edited values
    j["resource_changes"][0]["change"]["after"]["mtu"] = 1280;
    corpus.emplace_back("edited value", j.dump());
  }
  std::string truncated = original.dump();
  corpus.emplace_back("truncated", truncated.substr(0, truncated.size() / 2));
  const auto before = links();
  for (const auto& [name, content] : corpus) {
    writeFile(dir / "bad.json", content);
    auto r = vnp("apply " + (dir / "bad.json").string());
    EXPECT_EQ(r.exitCode, 1) << name << ":\n" << r.out << r.err;
    EXPECT_EQ(links().size(), before.size()) << name;
    EXPECT_TRUE(links().count("manual")) << name << ": deleted an unmanaged bridge";
    EXPECT_EQ(links()["br0"]["mtu"], 1500) << name;
    EXPECT_EQ(links()["lo"]["mtu"], before.at("lo")["mtu"]) << name;
  }
  // The genuine plan goes through, once; the second time it says it was applied already.
  auto ok = vnp("apply " + planFile.string());
  ASSERT_EQ(ok.exitCode, 0) << ok.out << ok.err;
  auto again = vnp("apply " + planFile.string());
  EXPECT_EQ(again.exitCode, 1);
  EXPECT_NE(again.err.find("already been applied"), std::string::npos) << again.err;
  // A stale plan names the attribute and both values.
  ASSERT_EQ(vnp("plan -f " + f + " --out " + planFile.string()).exitCode, 0);
  ip("link set br0 mtu 1400");
  auto stale = vnp("apply " + planFile.string());
  EXPECT_EQ(stale.exitCode, 1);
  EXPECT_NE(stale.err.find("t1/Switch/br0: mtu: 9000 when planned, 1400 now"), std::string::npos) << stale.err;
}

// 8.7: the confirmation deadline outlives the CLI: a hang-up does not end the wait, and a SIGKILLed apply is still
// rolled back at the deadline with no further command; confirm refuses when nothing waits or too late.
TEST_F(Safety, ConfirmDeadlineSurvivesHangupAndKill) {
  auto f = manifest(std::string(kTarget) + sw("br0", "mtu: 1500"));
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_EQ(vnp("confirm").exitCode, 1) << "confirm with nothing waiting";
  auto g = manifest(std::string(kTarget) + sw("br0", "mtu: 9000"), "g.yaml");
  for (int sig : {SIGHUP, SIGKILL}) {
    const std::string state = "file://" + (dir / "state").string();
    pid_t pid = fork();
    if (pid == 0) {
      setsid();
      int devnull = open("/dev/null", O_RDWR);
      dup2(devnull, 0), dup2(devnull, 1), dup2(devnull, 2);
      execl(VNETPLAN_BINARY, VNETPLAN_BINARY, "--state", state.c_str(), "apply", "--auto-approve", "-f", g.c_str(),
            "--confirm-timeout", "4s", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200 && links()["br0"]["mtu"] != 9000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(links()["br0"]["mtu"], 9000) << "the apply never applied";
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    kill(pid, sig);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (sig == SIGHUP) {
      EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "a hang-up ended the wait";
    }
    // No further command: wait past the deadline.
    for (int i = 0; i < 150 && (links()["br0"]["mtu"] != 1500 || fs::exists(dir / "state/targets/t1/journal.json")); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(links()["br0"]["mtu"], 1500) << "not rolled back at the deadline after signal " << sig;
    EXPECT_FALSE(fs::exists(dir / "state/targets/t1/journal.json")) << "signal " << sig;
    EXPECT_EQ(generations().size(), 1u) << "signal " << sig;
    waitpid(pid, nullptr, 0);
    auto late = vnp("confirm");
    EXPECT_EQ(late.exitCode, 1) << late.out << late.err;
  }
  // Confirm from another shell, then the apply is killed: the change is kept (the watchdog commits it).
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0), dup2(devnull, 1), dup2(devnull, 2);
    std::string state = "file://" + (dir / "state").string();
    execl(VNETPLAN_BINARY, VNETPLAN_BINARY, "--state", state.c_str(), "apply", "--auto-approve", "-f", g.c_str(),
          "--confirm-timeout", "30s", static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 200 && links()["br0"]["mtu"] != 9000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  auto c = vnp("confirm");
  EXPECT_EQ(c.exitCode, 0) << c.out << c.err;
  for (int i = 0; i < 100 && fs::exists(dir / "state/targets/t1/journal.json"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(fs::exists(dir / "state/targets/t1/journal.json"));
  EXPECT_EQ(links()["br0"]["mtu"], 9000);
  EXPECT_EQ(generations().size(), 2u);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);
}

// 8.8: probes run in the target's namespace: a TCP listener of the host namespace does not confirm a change in
// the target's; an echo reply to someone else's ping does not confirm an ICMP probe.
TEST_F(Safety, ProbesRunWhereTheTargetsTrafficIs) {
  int srv = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(srv, 8), 0);
  socklen_t len = sizeof sa;
  getsockname(srv, reinterpret_cast<sockaddr*>(&sa), &len);
  const int port = ntohs(sa.sin_port);
  ip("link set lo up");
  auto f = manifest(std::string(kTarget) + sw("br0", "mtu: 1500"));
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  auto g = manifest(std::string(kTarget) + sw("br0", "mtu: 9000"), "g.yaml");
  auto r = vnp("apply --auto-approve -f " + g + " --confirm-timeout 3s --probe tcp:127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(r.exitCode, 1) << "a host-namespace listener confirmed the change:\n" << r.out << r.err;
  EXPECT_EQ(links()["br0"]["mtu"], 1500);
  close(srv);
  // Someone else pings inside the namespace; the probe's own address never answers.
  pid_t pinger = fork();
  if (pinger == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 1), dup2(devnull, 2);
    execlp("ip", "ip", "netns", "exec", ns.c_str(), "ping", "-i", "0.2", "-c", "40", "127.0.0.1",
           static_cast<char*>(nullptr));
    _exit(127);
  }
  r = vnp("apply --auto-approve -f " + g + " --confirm-timeout 3s --probe icmp:10.254.254.254");
  kill(pinger, SIGKILL);
  waitpid(pinger, nullptr, 0);
  EXPECT_EQ(r.exitCode, 1) << "an echo reply to another ping confirmed the probe:\n" << r.out << r.err;
  EXPECT_EQ(links()["br0"]["mtu"], 1500);
  // And a probe that does answer in the namespace confirms.
  r = vnp("apply --auto-approve -f " + g + " --confirm-timeout 10s --probe icmp:127.0.0.1");
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(links()["br0"]["mtu"], 9000);
}

// 8.9: plan --out never writes through a planted symlink.
TEST_F(Safety, PlanOutDoesNotFollowASymlink) {
  auto f = manifest(std::string(kTarget) + sw("br0", "mtu: 1500"));
  writeFile(dir / "victim", "precious");
  fs::create_symlink(dir / "victim", dir / "plan.json");
  auto r = vnp("plan -f " + f + " --out " + (dir / "plan.json").string());
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_EQ(readAll(dir / "victim"), "precious");
  // A symlinked cache directory is not used (nor chmod-ed).
  fs::create_directories(dir / "realcache");
  chmod((dir / "realcache").c_str(), 0755);
  fs::create_directory_symlink(dir / "realcache", dir / "cachelink");
  r = vnp("plan -f " + f, "VNETPLAN_CACHE_DIR=" + (dir / "cachelink").string());
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(fs::is_empty(dir / "realcache"));
  struct stat st {};
  stat((dir / "realcache").c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
}

// 8.10: while an apply runs, plan and drift say so (naming the holder) or wait for it with --lock-timeout,
// instead of reporting its objects as unmanaged or as drift.
TEST_F(Safety, ReadOnlyCommandsRecogniseARunningApply) {
  auto f = manifest(std::string(kTarget) + sw("br0", "mtu: 1500"));
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  auto g = manifest(std::string(kTarget) + sw("br0", "mtu: 1500") + sw("br1", "mtu: 1500") + sw("br2", "mtu: 1500"),
                    "g.yaml");
  const std::string state = "file://" + (dir / "state").string();
  pid_t pid = fork();
  if (pid == 0) {
    setenv("VNETPLAN_SLOW_STEP_MS", "1500", 1);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0), dup2(devnull, 1), dup2(devnull, 2);
    execl(VNETPLAN_BINARY, VNETPLAN_BINARY, "--state", state.c_str(), "apply", "--auto-approve", "-f", g.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 100 && !fs::exists(dir / "state/targets/t1/journal.json"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto p = vnp("plan -f " + g);
  EXPECT_EQ(p.exitCode, 1) << p.out << p.err;
  EXPECT_NE(p.err.find("apply is running on it"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("pid " + std::to_string(pid)), std::string::npos) << p.err;
  EXPECT_EQ(p.err.find("not managed by vnetplan"), std::string::npos) << p.err;
  auto d = vnp("drift -f " + g);
  EXPECT_EQ(d.exitCode, 1) << d.out << d.err;
  auto waited = vnp("plan --detailed-exitcode --lock-timeout 30s -f " + g);
  EXPECT_EQ(waited.exitCode, 0) << waited.out << waited.err;
  waitpid(pid, nullptr, 0);
}
