// Crash safety at EVERY point, not at random moments: an apply (and the rollback of a failing apply, and an apply
// waiting for confirmation) is killed with SIGKILL at each state-store write and around each provider call it
// makes (VNETPLAN_CRASH_AT=k, k = 1..N, the points counted first with VNETPLAN_CRASH_LOG). Then the user does what
// the CLI tells them ('vnetplan rollback'), and the target must be EXACTLY its pre-image (live objects, ownership,
// generation, history) or EXACTLY the desired state -- never anything in between. Linux and Open vSwitch.
#include <functional>

#include "tests/integration/ovs_harness.h"

using namespace vnptest;

namespace {

bool killed(const RunResult& r) { return r.signal == SIGKILL || r.exitCode == 128 + SIGKILL; }

size_t countPoints(const fs::path& log) {
  std::ifstream in(log);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

// What must be identical between two moments: the live objects vnetplan manages (as the peer itself reports
// them), and the state store (owned objects with last applied values, generation, history).
struct World {
  std::string live;
  std::string owned;
  int64_t generation = 0;
  std::vector<std::string> history;
  bool operator==(const World& o) const {
    return live == o.live && owned == o.owned && generation == o.generation && history == o.history;
  }
};

std::string describe(const World& w) {
  std::string h;
  for (const auto& g : w.history) h += g + " ";
  return "generation " + std::to_string(w.generation) + ", history [" + h + "]\nowned " + w.owned + "\nlive\n" + w.live;
}

// The crash-point runs shared by both providers. `base`/`next` are manifests (the pre-image and the change).
class CrashPoints {
 public:
  std::function<RunResult(const std::string& args, const std::string& env)> vnp;
  std::function<std::string()> liveSnapshot;
  fs::path dir;  // the test's scratch dir (state in dir/state)

  World world() {
    World w;
    w.live = liveSnapshot();
    std::string st = readAll(dir / "state/targets" / target / "state.json");
    if (!st.empty()) {
      Json j = Json::parse(st);
      w.generation = j.value("generation", int64_t{0});
      Json owned = Json::array();
      for (const auto& o : j["owned"]) owned.push_back(Json{{"address", o["address"]}, {"lastApplied", o["lastApplied"]},
                                                            {"adopted", o.value("adopted", false)}});
      w.owned = owned.dump();
    }
    fs::path g = dir / "state/targets" / target / "generations";
    if (fs::exists(g))
      for (const auto& e : fs::directory_iterator(g)) w.history.push_back(e.path().filename().string());
    std::sort(w.history.begin(), w.history.end());
    return w;
  }

  // Brings the target back to `base` (an apply; it may add a generation) and returns the world there.
  World reset(const std::string& base) {
    auto r = vnp("apply --auto-approve -f " + base, "");
    EXPECT_EQ(r.exitCode, 0) << "reset: " << r.out << r.err;
    return world();
  }

  // Kills `run` (apply of `next` from `base`, with `env`) at every point; after each, 'vnetplan rollback' (and a
  // wait for a confirmation watchdog, if `settle`), then the world must be the pre-image or (if `canSucceed`) the
  // desired one. Returns the number of points.
  size_t run(const std::string& base, const std::string& next, const std::string& extraArgs, const std::string& env,
             bool canSucceed, std::chrono::milliseconds settle = std::chrono::milliseconds(0)) {
    const fs::path log = dir / "points.log";
    fs::remove(log);
    World pre = reset(base);
    auto counted = vnp("apply --auto-approve -f " + next + extraArgs, env + " VNETPLAN_CRASH_LOG=" + log.string());
    const size_t n = countPoints(log);
    EXPECT_GT(n, 3u) << "too few crash points: " << counted.err;
    World desired;
    if (canSucceed) {
      EXPECT_EQ(counted.exitCode, 0) << counted.out << counted.err;
      desired = world();
    }
    for (size_t k = 1; k <= n; ++k) {
      pre = reset(base);
      auto r = vnp("apply --auto-approve -f " + next + extraArgs, env + " VNETPLAN_CRASH_AT=" + std::to_string(k));
      EXPECT_TRUE(killed(r)) << "point " << k << " did not kill: " << r.out << r.err;
      // A confirmation watchdog acts at the deadline on a journal awaiting confirmation (or finishing its
      // rollback): give it until then; any other journal is the user's to roll back.
      const fs::path journal = dir / "state/targets" / target / "journal.json";
      for (auto until = std::chrono::steady_clock::now() + settle; std::chrono::steady_clock::now() < until;) {
        std::string j = readAll(journal);
        if (j.empty() || j.find("\"status\": \"applying\"") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      auto rb = vnp("rollback --lock-timeout 30s", "");
      EXPECT_EQ(rb.exitCode, 0) << "point " << k << ": rollback failed: " << rb.out << rb.err;
      World now = world();
      const bool isPre = now == pre;
      World desiredNow = desired;
      if (canSucceed) desiredNow.generation = pre.generation + 1;
      const bool isDesired = canSucceed && now.live == desired.live && now.owned == desired.owned &&
                             now.generation == pre.generation + 1 && now.history.size() == pre.history.size() + 1;
      EXPECT_TRUE(isPre || isDesired) << "after a kill at point " << k << " and a rollback, the target is neither its "
                                      << "pre-image nor the desired state:\n--- now\n" << describe(now)
                                      << "\n--- pre-image\n" << describe(pre);
      if (::testing::Test::HasFailure()) break;  // one broken point says enough
    }
    return n;
  }

  std::string target;
};

const char* kLinuxTarget = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: t1}
spec: {provider: linux, netns: NETNS}
)";

std::string doc(const std::string& kind, const std::string& name, const std::string& target, const std::string& spec) {
  return "---\napiVersion: vnetplan.io/v1\nkind: " + kind + "\nmetadata: {name: " + name + "}\nspec: {targets: [" +
         target + "], " + spec + "}\n";
}

}  // namespace

class CrashPointsLinux : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (IsSkipped()) return;
    cp.dir = dir;
    cp.target = "t1";
    cp.vnp = [this](const std::string& args, const std::string& env) {
      return runShell(env + " " + VNETPLAN_BINARY + " --state file://" + (dir / "state").string() + " " + args, dir);
    };
    cp.liveSnapshot = [this] {
      std::string out;
      for (const auto& [name, l] : links()) {
        if (name == "lo") continue;
        const std::string kind = l.value("linkinfo", Json::object()).value("info_kind", "");
        out += name + " " + kind + " mtu=" + std::to_string(l.value("mtu", 0)) + " master=" + l.value("master", "") +
               " up=" + (std::find(l["flags"].begin(), l["flags"].end(), "UP") != l["flags"].end() ? "1" : "0");
        if (kind != "bridge") out += " mac=" + l.value("address", "");  // a bridge's MAC is not managed
        out += "\n";
      }
      return out;
    };
    ip("link add hand type bridge");  // an object that exists before vnetplan: adopted by the change
    base_ = manifest(std::string(kLinuxTarget) + doc("Switch", "br0", "t1", "mtu: 1500") +
                         doc("Switch", "br1", "t1", "mtu: 1500") +
                         doc("Port", "p1", "t1", "type: veth, peer: p1p, switch: br0") +
                         doc("Port", "t9", "t1", "type: tap, switch: br1, mac: \"52:54:00:00:00:09\""),
                     "base.yaml");
    next_ = manifest(std::string(kLinuxTarget) + doc("Switch", "br0", "t1", "mtu: 9000") +
                         doc("Port", "p1", "t1", "type: veth, peer: p1p") +
                         doc("Port", "p2", "t1", "type: tap, switch: br0, mtu: 9000") +
                         doc("Switch", "hand", "t1", "adopt: true, mtu: 1400"),
                     "next.yaml");
  }
  CrashPoints cp;
  std::string base_, next_;
};

TEST_F(CrashPointsLinux, ApplyKilledAtEveryPoint) {
  size_t n = cp.run(base_, next_, "", "", /*canSucceed=*/true);
  std::cout << "crash points (linux apply): " << n << "\n";
}

TEST_F(CrashPointsLinux, RollbackKilledAtEveryPoint) {
  // The last step fails, so the apply rolls back: every point of the apply and of its rollback.
  size_t n = cp.run(base_, next_, "", "VNETPLAN_FAIL_AT_STEP=6", /*canSucceed=*/false);
  std::cout << "crash points (linux apply + rollback): " << n << "\n";
}

TEST_F(CrashPointsLinux, ConfirmWaitKilledAtEveryPoint) {
  // Not confirmed: rolled back at the deadline (by the apply, or by its watchdog if the apply was killed).
  size_t n = cp.run(base_, next_, " --confirm-timeout 1s", "", /*canSucceed=*/false, std::chrono::milliseconds(4000));
  std::cout << "crash points (linux apply + confirm wait + rollback at the deadline): " << n << "\n";
}

namespace {
const char* kOvsTarget = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: hv1}
spec: {provider: ovs, db: "OVSDB"}
)";
}  // namespace

class CrashPointsOvs : public OvsTest {
 protected:
  void SetUp() override {
    OvsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    cp.dir = dir;
    cp.target = "hv1";
    cp.vnp = [this](const std::string& args, const std::string& env) {
      return runShell(env + " VNETPLAN_OVS_SETTLE_MS=3000 " + VNETPLAN_BINARY + " --state file://" +
                          (dir / "state").string() + " " + args,
                      dir);
    };
    cp.liveSnapshot = [this] {
      std::string out;
      for (const char* t : {"Bridge", "Port", "Interface", "Mirror"}) {
        std::vector<std::string> rows;
        for (const auto& r : table(t)) {
          Json keep = Json::object();
          for (const char* c : {"name", "datapath_type", "fail_mode", "tag", "trunks", "vlan_mode", "type", "options",
                                "mtu_request", "external_ids"})
            if (r.contains(c)) keep[c] = r[c];
          rows.push_back(keep.dump());
        }
        std::sort(rows.begin(), rows.end());
        for (const auto& r : rows) out += std::string(t) + " " + r + "\n";
      }
      return out;
    };
    ASSERT_EQ(vsctl("add-br hand -- set bridge hand datapath_type=netdev").exitCode, 0);
    base_ = ovsManifest(std::string(kOvsTarget) + doc("Switch", "br0", "hv1", "ovs: {datapathType: netdev}") +
                            doc("Switch", "br1", "hv1", "ovs: {datapathType: netdev}") +
                            doc("PortGroup", "web", "hv1", "switch: br0, vlan: 10") +
                            doc("Port", "vm1", "hv1", "portGroup: web"),
                        "base.yaml");
    next_ = ovsManifest(std::string(kOvsTarget) + doc("Switch", "br0", "hv1", "mtu: 1600, ovs: {datapathType: netdev}") +
                            doc("PortGroup", "web", "hv1", "switch: br0, vlan: 20") +
                            doc("Port", "vm1", "hv1", "portGroup: web") + doc("Port", "vm2", "hv1", "switch: br0") +
                            doc("Switch", "hand", "hv1", "adopt: true, ovs: {datapathType: netdev}"),
                        "next.yaml");
  }
  CrashPoints cp;
  std::string base_, next_;
};

TEST_F(CrashPointsOvs, ApplyKilledAtEveryPoint) {
  size_t n = cp.run(base_, next_, "", "", /*canSucceed=*/true);
  std::cout << "crash points (ovs apply): " << n << "\n";
}

TEST_F(CrashPointsOvs, RollbackKilledAtEveryPoint) {
  // The transaction commits, then fails: the rollback is a second transaction.
  size_t n = cp.run(base_, next_, "", "VNETPLAN_FAIL_AFTER_COMMIT=1", /*canSucceed=*/false);
  std::cout << "crash points (ovs apply + rollback): " << n << "\n";
}

TEST_F(CrashPointsOvs, ConfirmWaitKilledAtEveryPoint) {
  size_t n = cp.run(base_, next_, " --confirm-timeout 1s", "", /*canSucceed=*/false, std::chrono::milliseconds(4000));
  std::cout << "crash points (ovs apply + confirm wait + rollback at the deadline): " << n << "\n";
}
