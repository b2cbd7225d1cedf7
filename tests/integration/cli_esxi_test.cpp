// End-to-end: the vnetplan binary against the ESXi test peer -- a real OpenSSH server on 127.0.0.1 whose esxcli is
// the emulator of tests/esxi (tests/integration/esxi_harness.h, one host per test, three for the fleet tests).
// Results are checked independently: in the emulator's state file, and with esxcli run by the system ssh client as
// an admin would. vnetplan runs with HOME set to the test's directory (no ~/.ssh/config, agent or cache of the
// machine's user gets involved).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include "tests/integration/esxi_harness.h"

using namespace vnptest;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = 0; (p = hay.find(needle, p)) != std::string::npos; p += needle.size()) ++n;
  return n;
}

// A YAML single-quoted scalar: any text without control characters.
std::string yq(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string doc(const std::string& kind, const std::string& name, const std::string& spec,
                const std::string& where = "targets: [esx1]") {
  return "---\napiVersion: vnetplan.io/v1\nkind: " + kind + "\nmetadata: {name: " + yq(name) + "}\nspec: {" + where +
         (spec.empty() ? "" : ", " + spec) + "}\n";
}

// The emulator's state, for exact before/after comparisons of everything a manifest can manage: the allocation
// counters and vmknic port ids are the host's own, and a vSwitch's or port group's shaping numbers mean nothing
// while shaping is off (esxcli keeps them, no manifest can say them).
Json comparable(Json s) {
  s.erase("nextPortId");
  for (auto& k : s["vmknics"]) k.erase("portId");
  for (auto& v : s["vswitches"])
    if (!v["shaping"].value("enabled", false)) v["shaping"] = {{"enabled", false}};
  for (auto& p : s["portgroups"])
    if (p["shaping"].is_object() && !p["shaping"].value("enabled", false)) p["shaping"] = {{"enabled", false}};
  return s;
}


}  // namespace

class CliEsxi : public EsxiHostTest {
 protected:
  void SetUp() override {
    EsxiHostTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    fs::create_directories(dir / "home");
  }

  // The Target of host i (named esx<i+1>), with `extra` spec fields (or replacing the identity/known_hosts ones).
  std::string target(size_t i = 0, const std::string& extra = "", bool withKeys = true) {
    const EsxiHost& h = host(i);
    std::string spec = "provider: esxi, host: 127.0.0.1, port: " + std::to_string(h.port) + ", user: " + h.user;
    if (withKeys) spec += ", identityFile: " + yq(h.identityFile) + ", knownHostsFile: " + yq(h.knownHosts);
    if (!extra.empty()) spec += ", " + extra;
    return "---\napiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: esx" + std::to_string(i + 1) +
           ", labels: {role: esx}}\nspec: {" + spec + "}\n";
  }

  std::string manifest(const std::string& text, const std::string& name = "m.yaml") {
    fs::path p = dir / name;
    writeFile(p, text);
    return p.string();
  }

  // vnetplan with this test's state, HOME and no ssh-agent.
  RunResult vnp(const std::string& args, const std::string& env = "", int timeoutSec = 120) {
    return run("cd " + shellQuote(dir.string()) + " && env -u SSH_AUTH_SOCK HOME=" + shellQuote((dir / "home").string()) +
                   " " + env + " " + std::string(VNETPLAN_BINARY) + " --state file://" + (dir / "state").string() +
                   " " + args,
               timeoutSec);
  }

  // SSH execs and connections the host's sshd has seen so far.
  size_t execs(size_t i = 0) { return count(readAll(host(i).sshdLog), "Starting session:"); }
  size_t connections(size_t i = 0) { return count(readAll(host(i).sshdLog), "Accepted publickey"); }

  // Invocations that change something (observe runs list/get with --formatter=xml).
  std::vector<std::vector<std::string>> changes(size_t i = 0) {
    std::vector<std::vector<std::string>> out;
    for (auto& argv : invocations(i))
      if (argv.empty() || argv[0] != "--formatter=xml") out.push_back(argv);
    return out;
  }

  std::string base(const std::string& mtu = "9000", int vlan = 10, bool promiscuous = true,
                   const std::string& vmk1Addr = "192.168.50.11/24", const std::string& nics = "[vmnic1, vmnic2]",
                   const std::string& webSwitch = "vSwitch1", const std::string& vmk1Extra = "") {
    return target() +
           doc("Switch", "vSwitch1",
               "mtu: " + mtu + ", uplinks: {nics: " + nics +
                   ", teaming: {policy: failover, active: [vmnic1], standby: [vmnic2]}}, "
                   "security: {allowForgedTransmits: false}, shaping: {averageKbps: 100000, peakKbps: 200000, "
                   "burstKiB: 1024}") +
           doc("Switch", "vSwitch2", "") +
           doc("PortGroup", "VM Net 10", "switch: vSwitch1, vlan: " + std::to_string(vlan)) +
           doc("PortGroup", "storage",
               "switch: vSwitch1, vlan: 30, teaming: {active: [vmnic2], standby: []}" +
                   std::string(promiscuous ? ", security: {allowPromiscuous: true}, justification: lab capture" : "")) +
           doc("PortGroup", "web", "switch: " + webSwitch + ", vlan: 4095") +
           doc("Port", "vmk1", "portGroup: storage, mtu: " + mtu + ", addresses: [" + vmk1Addr + "]" + vmk1Extra) +
           doc("Port", "vmk2", "portGroup: VM Net 10, esxi: {dhcp: true}");
  }
};

TEST_F(CliEsxi, CreateNoopUpdateReplacePrune) {
  const Json fresh = comparable(state());
  auto f = manifest(base());
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json vs = vswitchState("vSwitch1");
  ASSERT_FALSE(vs.is_null());
  EXPECT_EQ(vs["mtu"], 9000);
  EXPECT_EQ(vs["uplinks"], Json::array({"vmnic1", "vmnic2"}));
  EXPECT_EQ(vs["failover"]["loadBalancing"], "explicit");
  EXPECT_EQ(vs["failover"]["active"], Json::array({"vmnic1"}));
  EXPECT_EQ(vs["failover"]["standby"], Json::array({"vmnic2"}));
  EXPECT_EQ(vs["security"]["allowForgedTransmits"], false);
  EXPECT_EQ(vs["shaping"]["enabled"], true);
  EXPECT_EQ(vs["shaping"]["burstSize"], 8192) << "1024 KiB = 8192 Kib";
  EXPECT_EQ(portgroupState("VM Net 10")["vlanId"], 10);
  Json st = portgroupState("storage");
  EXPECT_EQ(st["vlanId"], 30);
  EXPECT_EQ(st["security"]["allowPromiscuous"], true);
  EXPECT_TRUE(st["security"]["allowForgedTransmits"].is_null()) << "inherited, not copied: " << st.dump();
  EXPECT_EQ(st["failover"]["uplinks"]["active"], Json::array({"vmnic2"}));
  EXPECT_EQ(portgroupState("web")["vlanId"], 4095);
  Json k1 = vmknicState("vmk1");
  EXPECT_EQ(k1["portgroup"], "storage");
  EXPECT_EQ(k1["mtu"], 9000);
  EXPECT_EQ(k1["ipv4"]["type"], "static");
  EXPECT_EQ(k1["ipv4"]["address"], "192.168.50.11");
  EXPECT_EQ(k1["ipv4"]["netmask"], "255.255.255.0");
  EXPECT_EQ(vmknicState("vmk2")["ipv4"]["type"], "dhcp");
  // An admin sees it the same way.
  RunResult seen = esxcli("network vswitch standard portgroup policy failover get -p storage");
  EXPECT_TRUE(contains(seen.out, "Override Vswitch Uplinks: true")) << seen.out;
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << "second plan is empty";

  // Update in place: MTU, an uplink more, a VLAN, an override dropped (back to inherit), a vmknic's address.
  auto g = manifest(base("1600", 11, false, "192.168.60.11/24", "[vmnic1, vmnic2, vmnic3]"), "next.yaml");
  auto plan = vnp("plan --detailed-exitcode -f " + g);
  EXPECT_EQ(plan.exitCode, 2) << plan.out << plan.err;
  EXPECT_TRUE(contains(plan.out, "vlan: 10 -> 11")) << plan.out;
  EXPECT_TRUE(contains(plan.out, "security.allowPromiscuous: true -> (unset)")) << plan.out;
  EXPECT_FALSE(contains(plan.out, "-/+")) << plan.out;
  r = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  vs = vswitchState("vSwitch1");
  EXPECT_EQ(vs["mtu"], 1600);
  EXPECT_EQ(vs["uplinks"], Json::array({"vmnic1", "vmnic2", "vmnic3"}));
  // vmnic3 is neither active nor standby in the manifest: unused, as ESXi has it.
  EXPECT_EQ(vs["failover"]["active"], Json::array({"vmnic1"}));
  EXPECT_EQ(portgroupState("VM Net 10")["vlanId"], 11);
  EXPECT_TRUE(portgroupState("storage")["security"]["allowPromiscuous"].is_null());
  EXPECT_EQ(vmknicState("vmk1")["ipv4"]["address"], "192.168.60.11");
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);

  // Replace: a port group cannot move to another vSwitch, nor a vmknic change its MAC, in place.
  auto h = manifest(base("1600", 11, false, "192.168.60.11/24", "[vmnic1, vmnic2, vmnic3]", "vSwitch2",
                         ", mac: \"00:50:56:AB:CD:EF\""),
                    "replace.yaml");
  plan = vnp("plan -f " + h);
  EXPECT_EQ(count(plan.out, "-/+"), 2u) << plan.out;
  r = vnp("apply --auto-approve -f " + h);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(portgroupState("web")["vswitch"], "vSwitch2");
  EXPECT_EQ(vmknicState("vmk1")["macAddress"], "00:50:56:ab:cd:ef");
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + h).exitCode, 0) << "MAC spelled in another case still matches";

  // Prune: what leaves the manifests goes, dependents first; then everything vnetplan made is gone and the host is
  // exactly as installed.
  r = vnp("apply --auto-approve -f " + manifest(target() + doc("Switch", "vSwitch2", ""), "prune.yaml"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_TRUE(vswitchState("vSwitch1").is_null());
  EXPECT_TRUE(portgroupState("storage").is_null());
  EXPECT_TRUE(vmknicState("vmk1").is_null());
  EXPECT_FALSE(vswitchState("vSwitch2").is_null());
  r = vnp("apply --auto-approve -f " + manifest(target(), "empty.yaml"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json now = comparable(state());
  EXPECT_EQ(now, fresh) << now.dump(1);
}

TEST_F(CliEsxi, PortGroupInheritsOrOverridesExactlyAsDeclared) {
  auto m = [&](bool swForged) {
    return target() +
           doc("Switch", "vSwitch1",
               "uplinks: {nics: [vmnic1, vmnic2]}, security: {allowForgedTransmits: " + std::string(swForged ? "true" : "false") +
                   "}") +
           doc("PortGroup", "inherits", "switch: vSwitch1") +
           doc("PortGroup", "explicit",
               "switch: vSwitch1, security: {allowForgedTransmits: false}, teaming: {policy: src-port}");
  };
  auto f = manifest(m(false));
  auto plan = vnp("plan -f " + f);
  ASSERT_EQ(plan.exitCode, 0) << plan.err;
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  // Equal effective values, different states: inherit (null) vs an override.
  EXPECT_TRUE(portgroupState("inherits")["security"]["allowForgedTransmits"].is_null());
  EXPECT_EQ(portgroupState("explicit")["security"]["allowForgedTransmits"], false);
  EXPECT_EQ(portgroupState("explicit")["failover"]["loadBalancing"], "portid");
  EXPECT_TRUE(portgroupState("explicit")["failover"]["uplinks"].is_null()) << "only the fields declared";
  // The vSwitch changes: the inheriting port group follows on ESXi itself; the overriding one keeps its value and
  // needs no step.
  auto g = manifest(m(true), "next.yaml");
  plan = vnp("plan -f " + g);
  EXPECT_TRUE(contains(plan.out, "esx1/Switch/vSwitch1")) << plan.out;
  EXPECT_FALSE(contains(plan.out, "PortGroup/inherits")) << plan.out;
  EXPECT_FALSE(contains(plan.out, "PortGroup/explicit")) << plan.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_TRUE(contains(esxcli("network vswitch standard portgroup policy security get -p inherits").out,
                       "Allow Forged Transmits: true"));
  EXPECT_TRUE(contains(esxcli("network vswitch standard portgroup policy security get -p explicit").out,
                       "Allow Forged Transmits: false"));
  // Someone overrides the inheriting one with the very value it inherits: a different state, shown as such, and
  // put back to inherit.
  ASSERT_EQ(esxcli("network vswitch standard portgroup policy security set -p inherits -f true").exitCode, 0);
  plan = vnp("plan --detailed-exitcode -f " + g);
  EXPECT_EQ(plan.exitCode, 2) << plan.out;
  EXPECT_TRUE(contains(plan.out, "security.allowForgedTransmits: true -> (unset)  (inherited from esx1/Switch/vSwitch1)"))
      << plan.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_TRUE(portgroupState("inherits")["security"]["allowForgedTransmits"].is_null());
  bool reset = false;
  for (const auto& argv : changes())
    if (std::find(argv.begin(), argv.end(), "--portgroup-name=inherits") != argv.end() &&
        std::find(argv.begin(), argv.end(), "--use-vswitch") != argv.end())
      reset = true;
  EXPECT_TRUE(reset) << "inherit is applied as --use-vswitch: " << Json(changes()).dump();
}

TEST_F(CliEsxi, DriftFromEsxcliOverSsh) {
  auto f = manifest(base());
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  ASSERT_EQ(ssh("esxcli network vswitch standard portgroup set -p 'VM Net 10' -v 99; "
                "esxcli network vswitch standard set -v vSwitch1 -m 1500 -c both; "
                "esxcli network ip interface set -i vmk1 -m 1500; "
                "esxcli network vswitch standard policy failover set -v vSwitch1 -l iphash; "
                "esxcli network vswitch standard portgroup policy shaping set -p 'VM Net 10' -e true -b 10 -k 10 -t 80")
                .exitCode,
            0);
  auto d = vnp("drift -f " + f);
  EXPECT_EQ(d.exitCode, 2) << d.out << d.err;
  for (const char* needle : {"esx1/PortGroup/VM Net 10", "vlan", "esx1/Switch/vSwitch1", "mtu", "esxi.cdpStatus",
                             "uplinks.teaming.policy", "esx1/Port/vmk1", "shaping.averageKbps"})
    EXPECT_TRUE(contains(d.out, needle)) << needle << "\n" << d.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_EQ(portgroupState("VM Net 10")["vlanId"], 10);
  EXPECT_TRUE(portgroupState("VM Net 10")["shaping"].is_null());
  EXPECT_EQ(vswitchState("vSwitch1")["failover"]["loadBalancing"], "explicit");
  EXPECT_EQ(vnp("drift -f " + f).exitCode, 0);
}

// Rollback after an esxcli failure midway restores the exact pre-image: every kind, failures early, in the middle
// and late, a host that fails after making the change, and the engine's own injected failure at each step.
TEST_F(CliEsxi, RollbackAfterAnInjectedFailureRestoresTheExactPreImage) {
  auto f = manifest(base());
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  const Json before = comparable(state());
  // Touches every kind: updates of all three, creates and a delete (web goes).
  std::string next = target() +
                     doc("Switch", "vSwitch1",
                         "mtu: 8000, uplinks: {nics: [vmnic1, vmnic3], teaming: {policy: src-mac}}, "
                         "security: {allowPromiscuous: true}, justification: test") +
                     doc("Switch", "vSwitch2", "") + doc("Switch", "vSwitch3", "uplinks: {nics: [vmnic2]}") +
                     doc("PortGroup", "VM Net 10", "switch: vSwitch1, vlan: 12, shaping: {averageKbps: 5, peakKbps: 5, burstKiB: 5}") +
                     doc("PortGroup", "storage", "switch: vSwitch1, vlan: 31, teaming: {failback: false}") +
                     doc("PortGroup", "new", "switch: vSwitch3, vlan: 7") +
                     doc("Port", "vmk1", "portGroup: storage, mtu: 1500, addresses: [192.168.70.1/24]") +
                     doc("Port", "vmk2", "portGroup: VM Net 10") + doc("Port", "vmk3", "portGroup: new, esxi: {dhcp: true}");
  auto g = manifest(next, "next.yaml");
  struct Fault {
    Json rule;
    const char* why;
  };
  const std::vector<Fault> faults{
      {{{"match", "uplink add"}, {"action", "fail"}, {"message", "Sysinfo error: Busy"}}, "early"},
      {{{"match", "portgroup set --portgroup-name=storage"}, {"action", "fail"}}, "middle"},
      {{{"match", "ipv4 set --interface-name=vmk3"}, {"action", "fail"}}, "late"},
      {{{"match", "policy failover set --portgroup-name=storage"}, {"action", "fail"}, {"when", "after"}},
       "a lying host: the change is made, the command fails"},
  };
  for (const auto& fault : faults) {
    setFaults(Json::array({fault.rule}));
    auto r = vnp("apply --auto-approve -f " + g);
    clearFaults();
    EXPECT_EQ(r.exitCode, 1) << fault.why << "\n" << r.out << r.err;
    EXPECT_TRUE(contains(r.err + r.out, "Rolled back: the target is as it was before (verified)")) << r.out << r.err;
    EXPECT_TRUE(contains(r.err + r.out, "failed (exit 1)")) << r.out << r.err;
    EXPECT_EQ(comparable(state()), before) << fault.why << "\n" << comparable(state()).dump(1);
    EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << fault.why;
  }
  // The engine's own failure injection: step k fails before its commands run, the steps before it are done.
  auto p = vnp("plan -f " + g);
  const int steps = static_cast<int>(count(p.out, "\n  +") + count(p.out, "\n  ~") + count(p.out, "\n  -"));
  ASSERT_GE(steps, 8) << p.out;
  for (int k : {1, steps / 2, steps}) {
    auto r = vnp("apply --auto-approve -f " + g, "VNETPLAN_FAIL_AT_STEP=" + std::to_string(k));
    EXPECT_EQ(r.exitCode, 1) << "k=" << k << "\n" << r.out << r.err;
    EXPECT_TRUE(contains(r.err + r.out, "injected failure")) << r.err;
    EXPECT_EQ(comparable(state()), before) << "k=" << k;
  }
  // Without a fault the same change applies.
  ASSERT_EQ(vnp("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);
}

TEST_F(CliEsxi, HostKeyUnknownOrChangedIsRefusedWithItsFingerprint) {
  const EsxiHost& h = host();
  std::string fp = run("ssh-keygen -lf " + shellQuote(h.hostKey)).out;
  fp = fp.substr(fp.find(' ') + 1);
  fp = fp.substr(0, fp.find(' '));
  ASSERT_EQ(fp.rfind("SHA256:", 0), 0u) << fp;
  const std::string kh = (dir / "kh").string();
  writeFile(kh, "");
  auto m = [&](const std::string& knownHosts) {
    return manifest(target(0, "identityFile: " + yq(h.identityFile) + ", knownHostsFile: " + yq(knownHosts), false) +
                        doc("Switch", "vSwitch1", ""),
                    "hk.yaml");
  };
  const size_t before = invocations().size();
  auto r = vnp("plan -f " + m(kh));
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "is not known")) << r.err;
  EXPECT_TRUE(contains(r.err, "ED25519 key " + fp)) << r.err;
  EXPECT_TRUE(contains(r.err, "VNETPLAN_ESXI_ACCEPT_NEW_HOST_KEY=" + fp)) << r.err;
  EXPECT_TRUE(contains(r.err, "ssh-keyscan -p " + std::to_string(h.port))) << r.err;
  // Accepting another fingerprint accepts nothing.
  r = vnp("plan -f " + m(kh), "VNETPLAN_ESXI_ACCEPT_NEW_HOST_KEY=SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(readAll(kh), "");
  EXPECT_EQ(invocations().size(), before) << "nothing ran on an unverified host";
  // The explicit opt-in records exactly this key; from then on it is known.
  r = vnp("plan -f " + m(kh), "VNETPLAN_ESXI_ACCEPT_NEW_HOST_KEY=" + fp);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "recorded the new host key")) << r.err;
  EXPECT_TRUE(contains(readAll(kh), "[127.0.0.1]:" + std::to_string(h.port) + " ssh-ed25519 ")) << readAll(kh);
  EXPECT_EQ(vnp("plan -f " + m(kh)).exitCode, 0);

  // A changed key is refused, whatever the opt-in says.
  const std::string other = (dir / "other").string();
  ASSERT_EQ(run("ssh-keygen -q -t ed25519 -N '' -f " + shellQuote(other)).exitCode, 0);
  std::string pub = readAll(other + ".pub");
  const std::string bad = (dir / "bad_kh").string();
  writeFile(bad, "[127.0.0.1]:" + std::to_string(h.port) + " " + pub.substr(0, pub.rfind(' ')) + "\n");
  const size_t before2 = invocations().size();
  for (const std::string& env :
       std::vector<std::string>{"", "VNETPLAN_ESXI_ACCEPT_NEW_HOST_KEY=yes", "VNETPLAN_ESXI_ACCEPT_NEW_HOST_KEY=" + fp}) {
    r = vnp("apply --auto-approve -f " + m(bad), env);
    EXPECT_EQ(r.exitCode, 1) << env << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "HOST KEY MISMATCH")) << r.err;
    EXPECT_TRUE(contains(r.err, fp)) << r.err;
    EXPECT_TRUE(contains(r.err, "ssh-keygen -R")) << r.err;
  }
  EXPECT_EQ(invocations().size(), before2);
  EXPECT_TRUE(vswitchState("vSwitch1").is_null());
}

// --log-format json: every stderr line of an esxi run is one JSON object, also the host-key refusal (whose message
// carries the fingerprint and the commands to accept it) and the steps of an apply, which name their target.
TEST_F(CliEsxi, JsonLogsStayOneObjectPerLine) {
  const EsxiHost& h = host();
  auto lines = [](const std::string& err) {
    std::vector<Json> out;
    std::istringstream in(err);
    for (std::string line; std::getline(in, line);) {
      try {
        Json j = Json::parse(line);
        EXPECT_TRUE(j.is_object() && j.contains("level") && j.contains("message")) << line;
        out.push_back(std::move(j));
      } catch (const std::exception& e) {
        ADD_FAILURE() << "not a JSON line: " << line << " (" << e.what() << ")";
      }
    }
    return out;
  };
  const std::string kh = (dir / "kh").string();
  writeFile(kh, "");
  auto r = vnp("--log-format json plan -f " +
               manifest(target(0, "identityFile: " + yq(h.identityFile) + ", knownHostsFile: " + yq(kh), false) +
                            doc("Switch", "vSwitch1", ""),
                        "hk.yaml"));
  EXPECT_EQ(r.exitCode, 1) << r.err;
  bool refusal = false;
  for (const auto& j : lines(r.err))
    if (j.value("level", "") == "error" && contains(j.dump(), "VNETPLAN_ESXI_ACCEPT_NEW_HOST_KEY=")) refusal = true;
  EXPECT_TRUE(refusal) << r.err;
  r = vnp("--log-format json --log-level debug apply --auto-approve -f " + manifest(base()));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  bool step = false;
  for (const auto& j : lines(r.err))
    if (j.contains("step")) {
      step = true;
      EXPECT_EQ(j.value("target", ""), "esx1") << j.dump();
    }
  EXPECT_TRUE(step) << r.err;
}

TEST_F(CliEsxi, ClientKeysPassphrasesAndSecrets) {
  const EsxiHost& h = host();
  const std::string sw = doc("Switch", "vSwitch1", "");
  auto m = [&](const std::string& identity) {
    return manifest(target(0, identity + ", knownHostsFile: " + yq(h.knownHosts), false) + sw, "keys.yaml");
  };
  // A key the host does not know.
  const std::string stranger = (dir / "stranger").string();
  ASSERT_EQ(run("ssh-keygen -q -t ed25519 -N '' -f " + shellQuote(stranger)).exitCode, 0);
  auto r = vnp("plan -f " + m("identityFile: " + yq(stranger)));
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.err, "refused public key authentication as user " + h.user)) << r.err;
  EXPECT_TRUE(contains(r.err, "SHA256:")) << r.err;
  r = vnp("plan -f " + m("identityFile: " + yq((dir / "missing").string())));
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.err, "cannot read identity file")) << r.err;
  // An encrypted key: without its passphrase, with a wrong one, from a file, from the environment.
  const std::string enc = "identityFile: " + yq(h.passphraseIdentityFile);
  r = vnp("plan -f " + m(enc));
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.err, "identityPassphrase")) << r.err;
  const std::string wrong = (dir / "wrong-pass").string();
  writeFile(wrong, "not-the-passphrase\n");
  r = vnp("plan -f " + m(enc + ", identityPassphrase: {file: " + yq(wrong) + "}"));
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.err, "wrong passphrase")) << r.err;
  r = vnp("plan -f " + m(enc + ", identityPassphrase: {env: VNP_TEST_MISSING}"));
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.err, "VNP_TEST_MISSING")) << r.err;
  std::string pass = readAll(h.passphraseFile);
  pass = pass.substr(0, pass.find('\n'));
  ASSERT_FALSE(pass.empty());
  const std::string planFile = (dir / "plan.json").string();
  r = vnp("plan --out " + planFile + " -f " + m(enc + ", identityPassphrase: {file: " + yq(h.passphraseFile) + "}"));
  EXPECT_EQ(r.exitCode, 0) << r.err;
  r = vnp("--log-level debug apply --auto-approve -f " + m(enc + ", identityPassphrase: {env: VNP_TEST_PASS}"),
          "VNP_TEST_PASS=" + shellQuote(pass));
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_FALSE(vswitchState("vSwitch1").is_null());
  // The passphrase is nowhere vnetplan writes: output, logs, the plan file, state.
  EXPECT_FALSE(contains(r.out + r.err, pass));
  EXPECT_FALSE(contains(readAll(planFile), pass));
  for (const auto& e : fs::recursive_directory_iterator(dir / "state"))
    if (e.is_regular_file()) {
      EXPECT_FALSE(contains(readAll(e.path()), pass)) << e.path();
    }
}

// No identity file anywhere: the keys of the user's ssh-agent (SSH_AUTH_SOCK). The agent is a real ssh-agent
// of this test, stopped by its pid whatever happens.
TEST_F(CliEsxi, SshAgentKeysAuthenticateAndTheSocketIsNeverLogged) {
  const EsxiHost& h = host();
  const std::string sock = (dir / "agent.sock").string();
  auto started = run("ssh-agent -s -a " + shellQuote(sock));
  ASSERT_EQ(started.exitCode, 0) << started.err;
  const auto at = started.out.find("SSH_AGENT_PID=");
  ASSERT_NE(at, std::string::npos) << started.out;
  const long agentPid = std::stol(started.out.substr(at + 14));
  ASSERT_GT(agentPid, 1);
  struct Stop {
    long pid;
    ~Stop() { ::kill(static_cast<pid_t>(pid), SIGTERM); }
  } stop{agentPid};
  const std::string agentEnv = "SSH_AUTH_SOCK=" + shellQuote(sock);
  const auto f = manifest(target(0, "knownHostsFile: " + yq(h.knownHosts), false) + doc("Switch", "vSwitch1", ""),
                          "agent.yaml");
  // Without an agent and without keys there is nothing to try: the message says what to do.
  auto r = vnp("plan -f " + f);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.err, "no key to authenticate with")) << r.err;
  // An agent that holds only a key the host does not know.
  const std::string stranger = (dir / "stranger").string();
  ASSERT_EQ(run("ssh-keygen -q -t ed25519 -N '' -f " + shellQuote(stranger)).exitCode, 0);
  ASSERT_EQ(run(agentEnv + " ssh-add " + shellQuote(stranger)).exitCode, 0);
  r = vnp("plan -f " + f, agentEnv);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.err, "the keys of ssh-agent")) << r.err;
  // The agent holds the host's key: the apply authenticates with it.
  ASSERT_EQ(run(agentEnv + " ssh-add " + shellQuote(h.identityFile)).exitCode, 0);
  r = vnp("--log-level debug apply --auto-approve -f " + f, agentEnv);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_FALSE(vswitchState("vSwitch1").is_null());
  EXPECT_FALSE(contains(r.out + r.err, sock)) << "the agent socket was logged";
  for (const auto& e : fs::recursive_directory_iterator(dir / "state"))
    if (e.is_regular_file()) {
      EXPECT_FALSE(contains(readAll(e.path()), sock)) << e.path();
    }
}

TEST_F(CliEsxi, SshConfigGivesHostNamePortUserKeyButNeverWeakensHostKeyChecking) {
  const EsxiHost& h = host();
  fs::create_directories(dir / "home" / ".ssh");
  writeFile(dir / "home" / ".ssh" / "config",
            "Host esx-lab\n"
            "  HostName 127.0.0.1\n"
            "  Port " + std::to_string(h.port) + "\n"
            "  User " + h.user + "\n"
            "  IdentityFile " + h.identityFile + "\n"
            "  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  ProxyCommand touch " + (dir / "proxy-ran").string() + "\n");
  auto m = [&](const std::string& extra) {
    return manifest("---\napiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: esx1}\nspec: {provider: esxi, "
                    "host: esx-lab" + extra + "}\n" + doc("Switch", "vSwitch1", ""),
                    "cfg.yaml");
  };
  auto r = vnp("apply --auto-approve -f " + m(", knownHostsFile: " + yq(h.knownHosts)));
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_FALSE(vswitchState("vSwitch1").is_null());
  EXPECT_FALSE(fs::exists(dir / "proxy-ran")) << "ProxyCommand is never run";
  // Without knownHostsFile: ~/.ssh/known_hosts, which does not know the host -- the config's
  // "StrictHostKeyChecking no" and "UserKnownHostsFile /dev/null" change nothing.
  r = vnp("plan -f " + m(""));
  EXPECT_EQ(r.exitCode, 1) << r.out;
  EXPECT_TRUE(contains(r.err, "is not known (not in " + (dir / "home" / ".ssh" / "known_hosts").string())) << r.err;
  // The Target's own fields win over the config.
  r = vnp("plan -f " + m(", port: 1, knownHostsFile: " + yq(h.knownHosts)));
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(contains(r.err, "cannot connect to 127.0.0.1:1")) << r.err;
}

TEST_F(CliEsxi, ConnectionDroppedMidApplyIsRolledBackOverANewConnection) {
  auto f = manifest(base());
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  const Json before = comparable(state());
  setFaults(Json::array({{{"match", "portgroup set --portgroup-name=storage"}, {"action", "hang"}, {"seconds", 60}}}));
  // MTU and VLANs change; storage's VLAN change is the command that hangs, after others have run.
  auto g = manifest(std::regex_replace(base("8000", 20), std::regex("vlan: 30"), "vlan: 31"), "next.yaml");
  RunResult r;
  std::thread apply([&] { r = vnp("apply --auto-approve -f " + g, "", 120); });
  const std::string state = host().state;
  bool hung = eventually(
      [&] {
        for (const auto& argv : invocations())
          if (Json(argv).dump().find("--portgroup-name=storage\",\"--vlan-id=31") != std::string::npos) return true;
        return false;
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(hung);
  // Drop the connection: kill the sshd processes serving connections (not the listener).
  const std::string listener = readAll(host().dir / "sshd.pid").substr(0, readAll(host().dir / "sshd.pid").find('\n'));
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string pid = e.path().filename().string();
    if (!std::all_of(pid.begin(), pid.end(), ::isdigit) || pid == listener) continue;
    std::string cmd = readAll(e.path() / "cmdline");
    std::string stat = readAll(e.path() / "stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string st, ppid;
    rest >> st >> ppid;
    if (ppid == listener && cmd.rfind("sshd", 0) == 0) kill(std::stoi(pid), SIGKILL);
  }
  apply.join();
  clearFaults();
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.err + r.out, "was lost")) << r.out << r.err;
  EXPECT_TRUE(contains(r.err + r.out, "Rolled back")) << r.out << r.err;
  EXPECT_EQ(comparable(this->state()), before) << comparable(this->state()).dump(1);
  EXPECT_TRUE(eventually([&] { return sessionProcesses(state).empty(); }, std::chrono::seconds(10)));
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
}

TEST_F(CliEsxi, AHangingEsxcliTimesOutAndIsRolledBack) {
  auto f = manifest(base());
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  const Json before = comparable(state());
  setFaults(Json::array({{{"match", "portgroup add --portgroup-name=late"}, {"action", "hang"}, {"seconds", 300}}}));
  auto g = manifest(base("8000", 20) + doc("PortGroup", "late", "switch: vSwitch1"), "next.yaml");
  auto start = std::chrono::steady_clock::now();
  auto r = vnp("apply --auto-approve -f " + g, "VNETPLAN_ESXI_COMMAND_TIMEOUT_MS=2000", 120);
  auto took = std::chrono::steady_clock::now() - start;
  clearFaults();
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.err + r.out, "did not finish within 2000 ms")) << r.err;
  EXPECT_TRUE(contains(r.err + r.out, "Rolled back")) << r.err;
  EXPECT_LT(took, std::chrono::seconds(60));
  EXPECT_EQ(comparable(state()), before);
  // The hung esxcli went away with its channel.
  EXPECT_TRUE(eventually([&] { return sessionProcesses(host().state).empty(); }, std::chrono::seconds(10)));
}

TEST_F(CliEsxi, GarbageOrTruncatedOutputIsAClearErrorNeverACrash) {
  auto f = manifest(base());
  for (const Json& rule :
       {Json{{"match", "vswitch standard list"}, {"action", "garbage"}},
        Json{{"match", "portgroup list"}, {"action", "truncate"}, {"bytes", 90}},
        Json{{"match", "ip interface ipv4 get"}, {"action", "garbage"}, {"output", "<output><root><list type=\"structure\"><structure typeName=\"IPv4Interface\"><field name=\"Name\"><integer>x</integer></field></structure></list></root></output>"}},
        Json{{"match", "nic list"}, {"action", "fail"}, {"message", "\x01\x02 segfault \u00e9"}, {"exitCode", 139}}}) {
    setFaults(Json::array({rule}));
    auto r = vnp("plan -f " + f);
    clearFaults();
    EXPECT_EQ(r.exitCode, 1) << rule.dump() << r.out << r.err;
    EXPECT_EQ(r.signal, 0);
    EXPECT_TRUE(contains(r.err, "esxi: 127.0.0.1") || contains(r.err, "esx1")) << r.err;
    EXPECT_TRUE(contains(r.err, "XML") || contains(r.err, "failed (exit 139)")) << rule.dump() << "\n" << r.err;
  }
  EXPECT_TRUE(changes().empty()) << "plan never changes the host";
  // Garbage where the apply verifies: the new port group's policies read as garbage three times -> verification
  // fails -> the port group is removed again.
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  const Json before = comparable(state());
  setFaults(Json::array({{{"match", "policy security get --portgroup-name=fresh"}, {"action", "garbage"}, {"count", 3}}}));
  auto r = vnp("apply --auto-approve -f " + manifest(base() + doc("PortGroup", "fresh", "switch: vSwitch1"), "g.yaml"));
  clearFaults();
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.err + r.out, "not esxcli XML")) << r.err;
  EXPECT_TRUE(contains(r.err + r.out, "Rolled back")) << r.err;
  EXPECT_EQ(comparable(state()), before);
}

TEST_F(CliEsxi, HostileNamesAreQuotedAndNeverExecuted) {
  // Names cannot hold '/', so the injections name their marker through the session's own environment: a shell
  // that ran one would create STATE.p next to the host's state file (or ".p" wherever vnetplan runs).
  const std::string marker = host().state + ".p";
  const std::string t = "touch $ESXCLI_STATE.p";
  const std::vector<std::string> groups{"VM Network 2",   "$(" + t + ")",       "`" + t + "`",      "pg; " + t,
                                        "pg | " + t,      "pg && " + t,         "it's ' ; " + t,    "say \"hi\" ; " + t,
                                        "-v",             "--help",             "$HOME ${PATH} \\"};
  const std::string sw = "s$(" + t + ")";  // 32 characters at most
  ASSERT_LE(sw.size(), 32u);
  std::string m = target() + doc("Switch", sw, "uplinks: {nics: [vmnic1]}");
  for (size_t k = 0; k < groups.size(); ++k) m += doc("PortGroup", groups[k], "switch: " + yq(sw) + ", vlan: " + std::to_string(k + 1));
  m += doc("Port", "vmk5", "portGroup: " + yq(groups[1]) + ", addresses: [10.9.9.9/24]");
  auto f = manifest(m);
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_FALSE(vswitchState(sw).is_null());
  for (size_t k = 0; k < groups.size(); ++k) {
    Json pg = portgroupState(groups[k]);
    EXPECT_FALSE(pg.is_null()) << groups[k];
    EXPECT_EQ(pg["vlanId"], static_cast<int>(k + 1)) << groups[k];
    EXPECT_EQ(pg["vswitch"], sw);
  }
  EXPECT_EQ(vmknicState("vmk5")["portgroup"], groups[1]);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
  EXPECT_EQ(vnp("drift -f " + f).exitCode, 0);
  EXPECT_EQ(vnp("show --target esx1 -f " + f).exitCode, 0);
  // A name with a newline never gets past the schema.
  r = vnp("plan -f " + manifest(target() + "---\napiVersion: vnetplan.io/v1\nkind: PortGroup\nmetadata: {name: \"a\\n"
                                "touch $ESXCLI_STATE.p\"}\nspec: {targets: [esx1], switch: vSwitch0}\n",
                                "newline.yaml"));
  EXPECT_EQ(r.exitCode, 1);
  ASSERT_EQ(vnp("apply --auto-approve -f " + manifest(target(), "empty.yaml")).exitCode, 0);
  EXPECT_TRUE(vswitchState(sw).is_null());
  EXPECT_FALSE(fs::exists(marker)) << "a name was executed by the host's shell";
  EXPECT_FALSE(fs::exists(dir / ".p")) << "a name was executed by a local shell";
}

TEST_F(CliEsxi, ShowRendersManifestsThatPlanEmpty) {
  ASSERT_EQ(vnp("apply --auto-approve -f " + manifest(base())).exitCode, 0);
  auto r = vnp("show --target esx1 -f " + manifest(target(), "t.yaml"));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "name: storage")) << r.out;
  EXPECT_FALSE(contains(r.out, "name: vSwitch0")) << "only what vnetplan manages";
  auto g = manifest(target() + r.out, "shown.yaml");
  auto v = vnp("validate -f " + g);
  EXPECT_EQ(v.exitCode, 0) << v.out << v.err << r.out;
  auto p = vnp("plan --detailed-exitcode -f " + g);
  EXPECT_EQ(p.exitCode, 0) << p.out << p.err << r.out;
  // --all imports the host's own objects too (adopt: true). Taking ownership is a plan action (DESIGN §4), but
  // nothing on the host changes: only adopts are planned, and once adopted the plan is empty.
  r = vnp("show --all --target esx1 -f " + manifest(target(), "t.yaml"));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "name: vSwitch0")) << r.out;
  EXPECT_TRUE(contains(r.out, "name: Management Network")) << r.out;
  const auto all = manifest(target() + r.out, "all.yaml");
  p = vnp("plan --detailed-exitcode -f " + all);
  EXPECT_EQ(p.exitCode, 2) << p.out << p.err;
  EXPECT_TRUE(contains(p.out, "<=  esx1/Switch/vSwitch0  (adopt)")) << p.out;
  EXPECT_TRUE(contains(p.out, "Plan: 0 to add, 0 to change, 0 to destroy, 0 to replace")) << p.out;
  const size_t c0 = changes().size();
  ASSERT_EQ(vnp("apply --auto-approve -f " + all).exitCode, 0);
  EXPECT_EQ(changes().size(), c0) << "adopting ran a changing esxcli command";
  p = vnp("plan --detailed-exitcode -f " + all);
  EXPECT_EQ(p.exitCode, 0) << p.out << p.err;
  // An adopted object that leaves the manifests is released, never deleted.
  ASSERT_EQ(vnp("apply --auto-approve -f " + manifest(target(), "t.yaml")).exitCode, 0);
  EXPECT_FALSE(vswitchState("vSwitch0").is_null()) << "an adopted vSwitch was deleted";
  EXPECT_FALSE(portgroupState("Management Network").is_null()) << "an adopted port group was deleted";
  EXPECT_FALSE(vmknicState("vmk0").is_null()) << "an adopted vmkernel NIC was deleted";
}

TEST_F(CliEsxi, RoundTripsAndSessionsPerPlanAndApply) {
  auto f = manifest(base());
  size_t e0 = execs(), c0 = connections();
  ASSERT_EQ(vnp("plan -f " + f).exitCode, 0);
  EXPECT_EQ(connections() - c0, 1u);
  EXPECT_LE(execs() - e0, 2u) << "observe in at most 2 round trips";
  e0 = execs(), c0 = connections();
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const size_t applyExecs = execs() - e0, applyConns = connections() - c0;
  // Plan (2) + the applier's re-observe (1: the names are known by then) + the batch (1) + verify (1).
  EXPECT_LE(applyExecs, 5u);
  EXPECT_EQ(applyConns, 1u) << "one SSH connection per target for the whole run";
  e0 = execs();
  ASSERT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
  EXPECT_LE(execs() - e0, 2u);
  std::cout << "plan: 1 SSH connection, <= 2 execs; apply: " << applyConns << " connection(s), " << applyExecs
            << " execs, " << changes().size() << " changing esxcli invocations\n";
}

TEST_F(CliEsxi, ExamplesValidateAndApply) {
  const fs::path examples = fs::path(VNETPLAN_SOURCE_DIR) / "examples";
  const EsxiHost& h = host();
  int applied = 0;
  for (const auto& e : fs::recursive_directory_iterator(examples)) {
    if (e.path().extension() != ".yaml") continue;
    std::string text = readAll(e.path());
    if (!contains(text, "provider: esxi")) continue;
    // The example's connection lines point at this test's host.
    std::string out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      std::smatch mm;
      if (std::regex_match(line, mm, std::regex("^(\\s*)host: .*$")))
        line = mm[1].str() + "host: 127.0.0.1\n" + mm[1].str() + "port: " + std::to_string(h.port);
      else if (std::regex_match(line, mm, std::regex("^(\\s*)user: .*$")))
        line = mm[1].str() + "user: " + h.user;
      else if (std::regex_match(line, mm, std::regex("^(\\s*)identityFile: .*$")))
        line = mm[1].str() + "identityFile: " + yq(h.identityFile);
      else if (std::regex_match(line, mm, std::regex("^(\\s*)knownHostsFile: .*$")))
        line = mm[1].str() + "knownHostsFile: " + yq(h.knownHosts);
      out += line + "\n";
    }
    auto f = manifest(out, e.path().filename().string());
    auto v = vnp("validate -f " + f);
    ASSERT_EQ(v.exitCode, 0) << e.path() << "\n" << v.out << v.err;
    auto r = vnp("apply --auto-approve -f " + f);
    ASSERT_EQ(r.exitCode, 0) << e.path() << "\n" << r.out << r.err;
    EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << e.path();
    ++applied;
  }
  EXPECT_GT(applied, 0);
}

// ---- a fleet: one "distributed switch" made of standard vSwitches on several hosts

class CliEsxiFleet : public CliEsxi {
 protected:
  int hostsAtSetUp() const override { return 3; }
  std::string fleet(int vlan = 10) {
    return target(0) + target(1) + target(2) +
           doc("Switch", "dvs-prod", "mtu: 9000, uplinks: {nics: [vmnic1, vmnic2]}", "selector: {role: esx}") +
           doc("PortGroup", "prod", "switch: dvs-prod, vlan: " + std::to_string(vlan), "selector: {role: esx}") +
           doc("PortGroup", "backup", "switch: dvs-prod, vlan: 20, security: {allowMacChanges: false}",
               "selector: {role: esx}");
  }
};

TEST_F(CliEsxiFleet, AppliedInParallelEachHostIsolatedAndDifferingHostsReported) {
  std::vector<Json> fresh;
  for (size_t i = 0; i < 3; ++i) fresh.push_back(comparable(state(i)));
  auto f = manifest(fleet());
  // Host 2's esxcli fails midway: only host 2 is rolled back; the others are applied.
  setFaults(Json::array({{{"match", "portgroup add --portgroup-name=backup"}, {"action", "fail"}}}), 1);
  auto r = vnp("--parallelism 3 apply --auto-approve -f " + f);
  clearFaults(1);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out + r.err, "esx2")) << r.out << r.err;
  EXPECT_TRUE(contains(r.out + r.err, "Rolled back")) << r.out << r.err;
  for (size_t i : {0u, 2u}) {
    EXPECT_EQ(vswitchState("dvs-prod", i)["mtu"], 9000) << i;
    EXPECT_EQ(portgroupState("prod", i)["vlanId"], 10) << i;
    EXPECT_EQ(portgroupState("backup", i)["security"]["allowMacChange"], false) << i;
  }
  EXPECT_EQ(comparable(state(1)), fresh[1]) << "host 2 as it was";
  // The plan names the one host that differs from the others.
  auto p = vnp("plan --detailed-exitcode -f " + f);
  EXPECT_EQ(p.exitCode, 2) << p.out;
  EXPECT_TRUE(contains(p.out, "Target esx2")) << p.out;
  EXPECT_FALSE(contains(p.out, "Target esx1")) << p.out;
  EXPECT_FALSE(contains(p.out, "Target esx3")) << p.out;
  ASSERT_EQ(vnp("--parallelism 3 apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
  // Someone changes one host by hand: plan and drift name that host only.
  ASSERT_EQ(esxcli("network vswitch standard portgroup set -p prod -v 99", 2).exitCode, 0);
  p = vnp("plan --detailed-exitcode -f " + f);
  EXPECT_EQ(p.exitCode, 2);
  EXPECT_TRUE(contains(p.out, "Target esx3")) << p.out;
  EXPECT_TRUE(contains(p.out, "esx3/PortGroup/prod")) << p.out;
  EXPECT_FALSE(contains(p.out, "Target esx1")) << p.out;
  EXPECT_FALSE(contains(p.out, "Target esx2")) << p.out;
  auto d = vnp("drift -f " + f);
  EXPECT_EQ(d.exitCode, 2);
  EXPECT_TRUE(contains(d.out, "esx3/PortGroup/prod")) << d.out;
  EXPECT_FALSE(contains(d.out, "esx1/")) << d.out;
  // A fleet-wide change reaches every host.
  ASSERT_EQ(vnp("--parallelism 3 apply --auto-approve -f " + manifest(fleet(11), "v11.yaml")).exitCode, 0);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(portgroupState("prod", i)["vlanId"], 11) << i;
}

TEST_F(CliEsxiFleet, ParallelismOverlapsTheHosts) {
  // Each host's vSwitch creation is slowed by 1.5 s: applied in parallel the hosts overlap, one after another they
  // add up (compared in the same run, on the same machine).
  auto slow = [&] {
    for (size_t i = 0; i < 3; ++i)
      setFaults(Json::array({{{"match", "vswitch standard add"}, {"action", "hang"}, {"seconds", 1.5}}}), i);
  };
  auto f = manifest(fleet());
  auto empty = manifest(target(0) + target(1) + target(2), "empty.yaml");
  auto timed = [&](int parallelism) {
    slow();
    auto start = std::chrono::steady_clock::now();
    auto r = vnp("--parallelism " + std::to_string(parallelism) + " apply --auto-approve -f " + f);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
    for (size_t i = 0; i < 3; ++i) EXPECT_FALSE(vswitchState("dvs-prod", i).is_null());
    EXPECT_EQ(vnp("apply --auto-approve -f " + empty).exitCode, 0);
    return secs;
  };
  const double serial = timed(1), parallel = timed(3);
  std::cout << "3 hosts: --parallelism 1 " << serial << " s, --parallelism 3 " << parallel << " s\n";
  EXPECT_LT(parallel + 1.5, serial) << "the hosts were not applied in parallel";
}
