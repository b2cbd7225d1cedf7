// The esxi provider's pure parts, without a host: esxcli's XML, the batch script and its status markers (run by a
// real shell), ~/.ssh/config, and the plan-time checks and normalization of the three kinds (through the same
// front end and provider pass `vnetplan plan` uses).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "providers/esxi/batch.h"
#include "providers/esxi/esxi_provider.h"
#include "providers/esxi/host.h"
#include "providers/esxi/kind.h"
#include "providers/esxi/ssh.h"
#include "providers/esxi/xml.h"
#include "reconciler/builder.h"
#include "reconciler/lint.h"
#include "reconciler/manifest.h"
#include "reconciler/pipeline.h"
#include "reconciler/schema_validator.h"

using namespace vnetplan;
using namespace vnetplan::esxi;
namespace fs = std::filesystem;

namespace {

const char* kVswitchList = R"(<?xml version="1.0" encoding="utf-8"?>
<output xmlns="http://www.vmware.com/Products/ESX/5.0/esxcli">
<root>
   <list type="structure">
      <structure typeName="VirtualSwitch">
         <field name="BeaconEnabled">
            <boolean>false</boolean>
         </field>
         <field name="CDPStatus">
            <string>listen</string>
         </field>
         <field name="ConfiguredPorts">
            <integer>128</integer>
         </field>
         <field name="MTU">
            <integer>1500</integer>
         </field>
         <field name="Name">
            <string>vSwitch &amp; &lt;0&gt; &#233;</string>
         </field>
         <field name="Portgroups">
            <list type="string">
               <string>VM Network</string>
               <string>Management Network</string>
            </list>
         </field>
         <field name="Uplinks">
            <list type="string">
               <string>vmnic0</string>
            </list>
         </field>
      </structure>
   </list>
</root>
</output>
)";

std::string single(const std::string& type, const std::string& fields) {
  return "<?xml version=\"1.0\"?><output xmlns=\"http://www.vmware.com/Products/ESX/5.0/esxcli\"><root><structure "
         "typeName=\"" +
         type + "\">" + fields + "</structure></root></output>";
}
std::string field(const std::string& name, const std::string& value) {
  return "<field name=\"" + name + "\">" + value + "</field>";
}
std::string b(bool v) { return std::string("<boolean>") + (v ? "true" : "false") + "</boolean>"; }
std::string s(const std::string& v) { return "<string>" + v + "</string>"; }
std::string i(long long v) { return "<integer>" + std::to_string(v) + "</integer>"; }
std::string l(const std::vector<std::string>& v) {
  std::string out = "<list type=\"string\">";
  for (const auto& x : v) out += s(x);
  return out + "</list>";
}

}  // namespace

TEST(EsxiXml, ReadsListsAndEntities) {
  auto x = parseEsxcliXml(kVswitchList);
  ASSERT_TRUE(x) << x.error().message;
  ASSERT_TRUE(x->isList);
  ASSERT_EQ(x->structures.size(), 1u);
  const auto& st = x->structures[0];
  EXPECT_EQ(st.typeName, "VirtualSwitch");
  EXPECT_EQ(*st.str("Name"), "vSwitch & <0> \xc3\xa9");
  EXPECT_EQ(*st.integer("MTU"), 1500);
  EXPECT_FALSE(*st.boolean("BeaconEnabled"));
  EXPECT_EQ(*st.strings("Portgroups"), (std::vector<std::string>{"VM Network", "Management Network"}));
  EXPECT_FALSE(st.integer("Name"));
  EXPECT_FALSE(st.str("Nope"));
  // An empty list and an empty result.
  auto e = parseEsxcliXml("<output><root><list type=\"structure\"></list></root></output>");
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->isList);
  EXPECT_TRUE(e->structures.empty());
  auto s1 = parseEsxcliXml(single("X", field("L", "<list type=\"string\"/>")));
  ASSERT_TRUE(s1) << s1.error().message;
  EXPECT_TRUE(s1->structures[0].strings("L")->empty());
}

TEST(EsxiXml, RefusesGarbageTruncationAndOtherShapes) {
  const std::string ok = kVswitchList;
  for (const std::string& bad :
       {std::string(""), std::string("   \n"), std::string("\x01\x02<!DOCTYPE garbage>{{{ structure[0].Bogus = \xff\xfe\n"),
        ok.substr(0, ok.size() / 2), std::string("Error: Unknown command or namespace network vswitch foo"),
        std::string("structure[0].VirtualSwitch.MTU.integer=1500\n"), std::string("<output><root></output>"),
        std::string("<html><root/></html>"), std::string("<output><root><integer>1</integer></root></output>"),
        std::string("<output><root><structure><field name=\"a\"><integer>x1</integer></field></structure></root></output>"),
        std::string("<output><root><structure><field name=\"a\"><boolean>maybe</boolean></field></structure></root></output>"),
        std::string("<output><root><structure><field name=\"a\">&bogus;</field></structure></root></output>"),
        std::string("<output><root><structure></structure></root></output> trailing"),
        std::string(40, '<')}) {
    auto x = parseEsxcliXml(bad);
    EXPECT_FALSE(x) << printable(bad);
    if (!x) {
      EXPECT_FALSE(x.error().message.empty());
    }
  }
  // Nesting deeper than esxcli ever does is refused, not recursed into.
  std::string deep;
  for (int k = 0; k < 100; ++k) deep += "<a>";
  EXPECT_FALSE(parseEsxcliXml("<output><root>" + deep + "</root></output>"));
}

TEST(EsxiXml, ReadsAHostWithPoliciesAndOverrides) {
  std::vector<std::string> lists{
      kVswitchList,
      "<output><root><list type=\"structure\"><structure typeName=\"PortGroup\">" + field("ActiveClients", i(0)) +
          field("Name", s("VM Network")) + field("VLANID", i(10)) + field("VirtualSwitch", s("vSwitch0")) +
          "</structure></list></root></output>",
      "<output><root><list type=\"structure\"><structure typeName=\"Nic\">" + field("Name", s("vmnic0")) +
          field("MACAddress", s("00:50:56:aa:bb:cc")) + field("LinkStatus", s("Up")) + "</structure></list></root></output>",
      "<output><root><list type=\"structure\"><structure typeName=\"NetworkInterface\">" + field("Name", s("vmk1")) +
          field("MACAddress", s("00:50:56:AA:00:01")) + field("Portgroup", s("VM Network")) +
          field("NetstackInstance", s("defaultTcpipStack")) + field("Enabled", b(true)) + field("MTU", i(9000)) +
          "</structure></list></root></output>",
      "<output><root><list type=\"structure\"><structure typeName=\"IPv4Interface\">" + field("Name", s("vmk1")) +
          field("AddressType", s("STATIC")) + field("IPv4Address", s("10.1.2.3")) +
          field("IPv4Netmask", s("255.255.255.0")) + "</structure></list></root></output>"};
  auto h = parseLists(lists);
  ASSERT_TRUE(h) << h.error().message;
  ASSERT_EQ(h->portgroups.size(), 1u);
  EXPECT_EQ(h->portgroups[0].vlan, 10);
  EXPECT_EQ(h->vmknics[0].ipv4Type, "STATIC");
  PortGroupInfo& pg = h->portgroups[0];
  std::vector<std::string> pol{
      single("PortGroupSecurityPolicy",
             field("AllowPromiscuous", b(true)) + field("AllowMACAddressChange", b(true)) +
                 field("AllowForgedTransmits", b(true)) + field("OverrideVswitchAllowPromiscuous", b(true)) +
                 field("OverrideVswitchAllowMACAddressChange", b(false)) +
                 field("OverrideVswitchAllowForgedTransmits", b(false))),
      single("PortGroupFailoverPolicy",
             field("LoadBalancing", s("srcmac")) + field("NetworkFailureDetection", s("link")) +
                 field("NotifySwitches", b(true)) + field("Failback", b(false)) + field("ActiveAdapters", l({"vmnic0"})) +
                 field("StandbyAdapters", l({})) + field("UnusedAdapters", l({})) +
                 field("OverrideVswitchLoadBalancing", b(true)) + field("OverrideVswitchNetworkFailureDetection", b(false)) +
                 field("OverrideVswitchNotifySwitches", b(false)) + field("OverrideVswitchFailback", b(true)) +
                 field("OverrideVswitchUplinks", b(false))),
      single("PortGroupTrafficShapingPolicy",
             field("Enabled", b(true)) + field("AverageBandwidth", i(1000)) + field("PeakBandwidth", i(2000)) +
                 field("BurstSize", i(8200)) + field("OverrideVswitchShaping", b(true)))};
  ASSERT_TRUE(parsePortgroupPolicies(pol, pg));
  Observation obs;
  const std::string target = "h";
  esxiKinds().observe(EsxLive{*h, target}, obs);
  const Attrs& a = obs.objects.at(Address{"h", Kind::PortGroup, "VM Network"}).attrs;
  // Only the overridden fields, in the portable vocabulary (srcmac -> src-mac, Kib -> KiB).
  EXPECT_EQ(*a.find("security.allowPromiscuous"), true);
  EXPECT_FALSE(a.has("security.allowMacChanges"));
  EXPECT_EQ(*a.getString("teaming.policy"), "src-mac");
  EXPECT_EQ(*a.getBool("teaming.failback"), false);
  EXPECT_FALSE(a.has("teaming.active"));
  EXPECT_EQ(*a.getInt("shaping.averageKbps"), 1000);
  // 8200 Kib is not a whole number of KiB: it stays a fraction, so it never equals a manifest's integer.
  EXPECT_DOUBLE_EQ(a.find("shaping.burstKiB")->get<double>(), 1025.0);
  EXPECT_EQ(*a.getString("switch"), "vSwitch0");
  const Attrs& k = obs.objects.at(Address{"h", Kind::Port, "vmk1"}).attrs;
  EXPECT_EQ(*k.getString("mac"), "00:50:56:aa:00:01");
  EXPECT_EQ(k.getStrings("addresses"), std::vector<std::string>{"10.1.2.3/24"});
  EXPECT_EQ(*k.getBool("esxi.dhcp"), false);
  // A structure that lacks a field it must have is an error, not a default.
  std::vector<std::string> broken = pol;
  broken[1] = single("PortGroupFailoverPolicy", field("LoadBalancing", s("srcport")));
  EXPECT_FALSE(parsePortgroupPolicies(broken, pg));
}

TEST(EsxiPolicy, SpellingsAndUnits) {
  EXPECT_EQ(esxcliLoadBalancing("src-port"), "portid");
  EXPECT_EQ(esxcliLoadBalancing("src-mac"), "mac");
  EXPECT_EQ(esxcliLoadBalancing("ip-hash"), "iphash");
  EXPECT_EQ(esxcliLoadBalancing("failover"), "explicit");
  EXPECT_EQ(esxcliLoadBalancing("load-based"), "");
  for (const char* p : {"src-port", "src-mac", "ip-hash", "failover"}) {
    EXPECT_EQ(portableLoadBalancing(esxcliLoadBalancing(p)), p);  // set spelling
  }
  EXPECT_EQ(portableLoadBalancing("srcport"), "src-port");  // get spelling
  EXPECT_EQ(portableLoadBalancing("srcmac"), "src-mac");
  EXPECT_EQ(burstKiBOf(8192), Json(1024));
  Attrs a;
  a.set("shaping.averageKbps", 100);
  a.set("shaping.peakKbps", 200);
  a.set("shaping.burstKiB", 64);
  EXPECT_EQ(shapingSetArgs(a), (std::vector<std::string>{"--enabled=true", "--avg-bandwidth=100", "--peak-bandwidth=200",
                                                         "--burst-size=512"}));
  EXPECT_EQ(shapingSetArgs(Attrs{}), std::vector<std::string>{"--enabled=false"});
}

// ---- the batch script, run by a real shell with a stand-in esxcli

namespace {

struct ShellRun {
  int status = -1;
  std::string out;
};

// Runs `script` as the host does: SHELL... -c remoteCommand() with the script on stdin (e.g. {"/bin/busybox",
// "ash"}: ESXi's shell), PATH starting with `bin`.
ShellRun runScript(const std::string& script, const fs::path& bin, std::vector<std::string> shell = {"/bin/sh"}) {
  int out[2], in[2];
  EXPECT_EQ(pipe(out), 0);
  EXPECT_EQ(pipe(in), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(in[0], 0);
    close(out[0]), close(out[1]), close(in[0]), close(in[1]);
    std::string path = bin.string() + ":/usr/bin:/bin";
    setenv("PATH", path.c_str(), 1);
    shell.push_back("-c");
    shell.push_back(remoteCommand());
    std::vector<char*> argv;
    for (auto& a : shell) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(in[0]);
  // The shell reads all of stdin before it runs anything: no deadlock writing it all first.
  for (size_t off = 0; off < script.size();) {
    ssize_t n = write(in[1], script.data() + off, script.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(in[1]);
  ShellRun r;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) r.out.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace

class EsxiScript : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("vnp-esxi-script-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "bin");
    // Prints each argument on its own line between brackets; `fail` in the arguments makes it exit 3.
    std::ofstream(dir / "bin" / "esxcli") << "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n"
                                           << "case \"$*\" in *fail*) echo 'Error: failing'; exit 3;; esac\n";
    fs::permissions(dir / "bin" / "esxcli", fs::perms::owner_all);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
};

TEST_F(EsxiScript, EveryValueIsOneWordAndNothingExecutes) {
  const std::string marker = (dir / "pwned").string();
  const std::vector<std::string> hostile{
      "$(touch " + marker + ")", "`touch " + marker + "`", "; touch " + marker, "| touch " + marker,
      "' ; touch " + marker + " ; '", "\" ; touch " + marker + " ; \"", "VM Network", "a\nb; touch " + marker,
      "-v", "--help", "$HOME", "\\", "'", "&& touch " + marker};
  std::vector<EsxcliCommand> cmds;
  for (const auto& h : hostile) cmds.push_back(EsxcliCommand{{"network", "x", "--portgroup-name=" + h}});
  int shells = 0;
  for (const std::vector<std::string>& shellArgs :
       {std::vector<std::string>{"/bin/sh"}, std::vector<std::string>{"/bin/busybox", "ash"}}) {
    const std::string shell = shellArgs[0];
    if (access(shell.c_str(), X_OK) != 0) continue;
    ++shells;
    const std::string nonce = newNonce();
    std::string script = buildScript(cmds, 0, nonce, true);
    ShellRun r = runScript(script, dir / "bin", shellArgs);
    ASSERT_EQ(r.status, 0) << shell << "\n" << r.out;
    std::vector<CommandResult> got;
    MarkerReader reader(nonce, 0);
    // Fed byte by byte: markers split anywhere are still found.
    for (char c : r.out)
      ASSERT_TRUE(reader.feed(std::string_view(&c, 1), [&](size_t, CommandResult cr) { got.push_back(cr); }));
    ASSERT_EQ(got.size(), hostile.size()) << shell << "\n" << r.out;
    for (size_t k = 0; k < hostile.size(); ++k) {
      EXPECT_EQ(got[k].status, 0);
      EXPECT_EQ(got[k].output, "[network]\n[x]\n[--portgroup-name=" + hostile[k] + "]\n") << shell << " " << k;
    }
    EXPECT_FALSE(fs::exists(marker)) << shell;
  }
  EXPECT_GT(shells, 0);
}

TEST_F(EsxiScript, StopsAtTheFirstFailureAndSaysWhich) {
  std::vector<EsxcliCommand> cmds{{{"ok1"}}, {{"fail"}}, {{"never"}}};
  const std::string nonce = newNonce();
  ShellRun r = runScript(buildScript(cmds, 7, nonce, true), dir / "bin");
  std::vector<std::pair<size_t, CommandResult>> got;
  MarkerReader reader(nonce, 7);
  ASSERT_TRUE(reader.feed(r.out, [&](size_t idx, CommandResult cr) { got.emplace_back(idx, cr); }));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, 7u);
  EXPECT_EQ(got[1].first, 8u);
  EXPECT_EQ(got[1].second.status, 3);
  EXPECT_NE(got[1].second.output.find("Error: failing"), std::string::npos);
  EXPECT_EQ(r.out.find("[never]"), std::string::npos);
  // Without stopAtFailure every command runs.
  ShellRun all = runScript(buildScript(cmds, 0, nonce, false), dir / "bin");
  EXPECT_NE(all.out.find("[never]"), std::string::npos);
}

TEST(EsxiMarkers, ForgedOrDisorderedMarkersAreNotBelieved) {
  MarkerReader r("VNPabc", 0);
  std::vector<size_t> seen;
  auto note = [&](size_t idx, CommandResult) { seen.push_back(idx); };
  // Another nonce is just output.
  ASSERT_TRUE(r.feed("hello\nVNPxyz 0 0\n", note));
  EXPECT_TRUE(seen.empty());
  ASSERT_TRUE(r.feed("\nVNPabc 0 0\n", note));
  ASSERT_EQ(seen.size(), 1u);
  MarkerReader bad("VNPabc", 0);
  EXPECT_FALSE(bad.feed("\nVNPabc 1 0\n", note));
  EXPECT_FALSE(bad.error().empty());
  MarkerReader junk("VNPabc", 0);
  EXPECT_FALSE(junk.feed("\nVNPabc zero 0\n", note));
}

TEST(EsxiMarkers, CommandTextQuotesOnlyWhatNeedsIt) {
  EsxcliCommand c{{"network", "vswitch", "standard", "portgroup", "add", "--portgroup-name=VM Network",
                   "--vswitch-name=vSwitch0"}};
  EXPECT_EQ(c.text(), "esxcli network vswitch standard portgroup add --portgroup-name='VM Network' --vswitch-name=vSwitch0");
  EXPECT_EQ(shellQuote("it's"), "'it'\\''s'");
}

// ---- ~/.ssh/config

TEST(EsxiSshConfig, HostBlocksFirstValueWinsAndNothingWeakensChecking) {
  const std::string cfg = R"(# global
Host esx-*  !esx-lab
  HostName %h.mgmt.example
  User admin
  Port 2222
  IdentityFile ~/.ssh/esx_%r
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  ProxyCommand nc evil 22

Host esx-01
  User other
  IdentityFile "/keys/with space"

Match host esx-01
  User matched

Host *
  IdentityFile ~/.ssh/id_default
  Port=2200
)";
  auto v = parseSshConfig(cfg, "esx-01", "/home/u", "u");
  EXPECT_EQ(v.hostName, "esx-01.mgmt.example");
  EXPECT_EQ(v.user, "admin");  // the first value wins
  EXPECT_EQ(v.port, 2222);
  EXPECT_EQ(v.identityFiles,
            (std::vector<std::string>{"/home/u/.ssh/esx_admin", "/keys/with space", "/home/u/.ssh/id_default"}));
  auto lab = parseSshConfig(cfg, "esx-lab", "/home/u", "u");  // negated: only Host * applies
  EXPECT_FALSE(lab.hostName);
  EXPECT_EQ(lab.port, 2200);
  EXPECT_EQ(lab.identityFiles, std::vector<std::string>{"/home/u/.ssh/id_default"});
}

// ---- plan-time checks and normalization (the front end + provider pass of `vnetplan plan`)

namespace {

struct Planned {
  Diagnostics diags;
  DesiredState desired;
  const Resource* find(const std::string& addr) const {
    for (const auto& r : desired.resources)
      if (r.addr.str() == addr) return &r;
    return nullptr;
  }
  std::string text() const { return diags.render(); }
};

const ProviderRegistry& registry() {
  static const ProviderRegistry r = [] {
    ProviderRegistry x;
    x.add(makeEsxiProvider());
    return x;
  }();
  return r;
}

std::unique_ptr<Planned> front(const std::string& body) {
  auto p = std::make_unique<Planned>();
  std::string yaml = "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: h1}\nspec: {provider: esxi, host: "
                     "esx01.example}\n" +
                     body;
  auto docs = loadManifestText(yaml, "m.yaml", p->diags);
  SchemaValidator v;
  std::vector<Document> ok;
  for (auto& d : docs)
    if (v.validate(d, p->diags)) ok.push_back(std::move(d));
  p->desired = buildDesiredState(ok, p->diags);
  lint(p->desired, p->diags);
  checkWithProviders(p->desired, registry(), p->diags);
  return p;
}

// A YAML single-quoted scalar: any text, ' doubled.
std::string yq(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string doc(const std::string& kind, const std::string& name, const std::string& spec) {
  return "---\napiVersion: vnetplan.io/v1\nkind: " + kind + "\nmetadata: {name: " + yq(name) +
         "}\nspec: {targets: [h1], " + spec + "}\n";
}

}  // namespace

TEST(EsxiPlanTime, RefusesWhatAStandardVswitchCannotDo) {
  struct Case {
    std::string body, needle;
  };
  const std::string sw = doc("Switch", "vSwitch1", "uplinks: {nics: [vmnic1, vmnic2]}");
  const std::vector<Case> cases{
      {doc("Switch", "s", "nioc: {enabled: true}"), "nioc needs a vSphere Distributed Switch"},
      {sw + doc("PortGroup", "g", "switch: vSwitch1, niocClass: vmotion"), "nioc needs a vSphere Distributed Switch"},
      {doc("Switch", "s", "uplinks: {nics: [vmnic1], teaming: {policy: lacp}}"), "LACP needs a vSphere Distributed Switch"},
      {doc("Switch", "s", "uplinks: {nics: [vmnic1], teaming: {lacp: {rate: fast}}}"), "LACP needs a vSphere Distributed"},
      {doc("Switch", "s", "uplinks: {nics: [vmnic1], teaming: {policy: load-based}}"), "load-based teaming"},
      {doc("Switch", "s", "uplinks: {nics: [vmnic1], teaming: {policy: round-robin}}"), "no round-robin"},
      {doc("Switch", "s", "uplinks: {nics: [vmnic1], teaming: {failureDetection: arp}}"), "not by ARP"},
      {doc("Switch", "s", "uplinks: {nics: [vmnic1], teaming: {hashPolicy: layer3+4}}"), "hash cannot be chosen"},
      {sw + doc("PortGroup", "g", "switch: vSwitch1, vlan: {trunk: [10, \"20-30\"]}"), "VLAN ranges need a vSphere"},
      {doc("Mirror", "m", "switch: vSwitch1, source: {ports: [a]}, destination: {port: b}"), "port mirroring needs a vSphere"},
      {doc("Switch", "s", "stp: true"), "no spanning tree"},
      {doc("Switch", "s", "mtu: 9500"), "outside 1280..9000"},
      {doc("Switch", "s", "addresses: [10.0.0.1/24]"), "Port of type vmkernel"},
      {doc("Switch", "s", "esxi: {beacon: {interval: 5}}"), "beacon interval"},
      {doc("Switch", "s", "shaping: {averageKbps: 1000}"), "averageKbps, peakKbps and burstKiB together"},
      {doc("Switch", "s", "shaping: {averageKbps: 2000, peakKbps: 1000, burstKiB: 10}"), "below shaping.averageKbps"},
      {doc("Switch", "s", "uplinks: {nics: [vmnic1], teaming: {active: [vmnic7]}}"), "not one of uplinks.nics"},
      {doc("Switch", "s", "uplinks: {nics: [\"vmnic1,vmnic2\"]}"), "is not a physical NIC name"},
      {doc("Switch", "this-name-is-longer-than-32-characters", ""), "at most 32 characters"},
      {sw + doc("PortGroup", "g", "switch: vSwitch1, teaming: {standby: [vmnic1]}"), "needs teaming.active too"},
      {sw + doc("PortGroup", "g", "switch: vSwitch1, teaming: {active: [vmnic9]}"), "not an uplink of vSwitch vSwitch1"},
      {sw + doc("PortGroup", "g", "switch: vSwitch1") + doc("Port", "vmk1", "type: tap, portGroup: g"), "vmkernel NICs"},
      {sw + doc("PortGroup", "g", "switch: vSwitch1") + doc("Port", "nic1", "portGroup: g"), "named vmkN"},
      {sw + doc("PortGroup", "g", "switch: vSwitch1") + doc("Port", "vmk1", "portGroup: g, security: {allowPromiscuous: false}"),
       "takes its port group's policies"},
      {sw + doc("PortGroup", "g", "switch: vSwitch1") + doc("Port", "vmk1", "portGroup: g, addresses: [2001:db8::1/64]"),
       "IPv4 address only"},
      {sw + doc("PortGroup", "g", "switch: vSwitch1") +
           doc("Port", "vmk1", "portGroup: g, addresses: [10.0.0.1/24], esxi: {dhcp: true}"),
       "exclude each other"},
      {sw + doc("PortGroup", "g", "switch: vSwitch1") + doc("Port", "vmk1", "portGroup: g") + doc("Port", "vmk2", "portGroup: g"),
       "a standard port group takes one"},
      {sw + doc("Switch", "vSwitch2", "uplinks: {nics: [vmnic2]}"), "a physical NIC belongs to one vSwitch"},
  };
  for (const auto& c : cases) {
    auto p = front(c.body);
    EXPECT_TRUE(p->diags.hasErrors()) << c.body;
    EXPECT_NE(p->text().find(c.needle), std::string::npos) << c.body << "\n" << p->text();
  }
  // The VMware rules of DESIGN §8 come from lint, once each.
  auto ipHash = front(doc("Switch", "s", "uplinks: {nics: [vmnic1, vmnic2], teaming: {policy: ip-hash, standby: [vmnic2]}}"));
  EXPECT_NE(ipHash->text().find("lint/ip-hash"), std::string::npos) << ipHash->text();
  auto beacon = front(doc("Switch", "s", "uplinks: {nics: [vmnic1, vmnic2], teaming: {failureDetection: beacon}}"));
  EXPECT_FALSE(beacon->diags.hasErrors()) << beacon->text();
  EXPECT_NE(beacon->text().find("lint/beacon"), std::string::npos) << beacon->text();
  // Names with spaces, quotes and shell metacharacters are fine: they are quoted, never interpreted.
  const std::string hostile = "v$(x)`y`;|'\"";
  auto names = front(doc("Switch", hostile, "") + doc("PortGroup", "VM Network; rm -rf $HOME", "switch: " + yq(hostile)));
  EXPECT_FALSE(names->diags.hasErrors()) << names->text();
}

TEST(EsxiPlanTime, PortGroupInheritsOnEsxiItself) {
  auto p = front(doc("Switch", "vSwitch1",
                     "uplinks: {nics: [vmnic1, vmnic2, vmnic3], teaming: {policy: failover, standby: [vmnic3]}}, "
                     "security: {allowForgedTransmits: false}, shaping: {averageKbps: 1000, peakKbps: 2000, burstKiB: 100}") +
                 doc("PortGroup", "a", "switch: vSwitch1, vlan: 0") +
                 doc("PortGroup", "b", "switch: vSwitch1, vlan: 4095, security: {allowForgedTransmits: false}, "
                                       "teaming: {active: [vmnic3]}, shaping: {averageKbps: 10}"));
  ASSERT_FALSE(p->diags.hasErrors()) << p->text();
  const Resource* sw = p->find("h1/Switch/vSwitch1");
  ASSERT_TRUE(sw);
  // No active list: every uplink that is not standby, in the order given; the ESXi defaults fill the rest.
  EXPECT_EQ(sw->attrs.getStrings("uplinks.teaming.active"), (std::vector<std::string>{"vmnic1", "vmnic2"}));
  EXPECT_EQ(*sw->attrs.getString("uplinks.teaming.failureDetection"), "link");
  EXPECT_EQ(*sw->attrs.getBool("security.allowPromiscuous"), false);
  const Resource* a = p->find("h1/PortGroup/a");
  ASSERT_TRUE(a);
  // Everything a inherits stays ESXi's inheritance: none of it is a field of the port group; vlan 0 is no VLAN.
  EXPECT_EQ(a->attrs.values().size(), 1u) << a->attrs.toJson().dump();
  EXPECT_TRUE(a->origins.count("security.allowForgedTransmits"));
  const Resource* g = p->find("h1/PortGroup/b");
  ASSERT_TRUE(g);
  // Explicit values are overrides, even when equal to the vSwitch's; the failover order is overridden whole
  // (standby comes along, minus what became active) and so is shaping (its inherited numbers come along).
  EXPECT_EQ(*g->attrs.getBool("security.allowForgedTransmits"), false);
  EXPECT_EQ(*g->attrs.getInt("vlan"), 4095);
  EXPECT_EQ(g->attrs.getStrings("teaming.active"), std::vector<std::string>{"vmnic3"});
  EXPECT_TRUE(g->attrs.getStrings("teaming.standby").empty());
  EXPECT_FALSE(g->attrs.has("teaming.policy"));
  EXPECT_EQ(*g->attrs.getInt("shaping.averageKbps"), 10);
  EXPECT_EQ(*g->attrs.getInt("shaping.peakKbps"), 2000);
  EXPECT_EQ(*g->attrs.getInt("shaping.burstKiB"), 100);
}

TEST_F(EsxiScript, AScriptLargerThanACommandLineRunsInOneExec) {
  // 2,000 invocations with long arguments: ~400 KB, far beyond the 128 KiB one command-line argument may have.
  std::vector<EsxcliCommand> cmds;
  for (int k = 0; k < 2000; ++k)
    cmds.push_back(EsxcliCommand{{"network", "vswitch", "standard", "portgroup", "policy", "security", "get",
                                  "--portgroup-name=" + std::string(120, 'x') + std::to_string(k)}});
  const std::string nonce = newNonce();
  const std::string script = buildScript(cmds, 0, nonce, false);
  ASSERT_GT(script.size(), 256u * 1024);
  ShellRun r = runScript(script, dir / "bin");
  size_t n = 0;
  MarkerReader reader(nonce, 0);
  ASSERT_TRUE(reader.feed(r.out, [&](size_t, CommandResult cr) { n += cr.status == 0 ? 1 : 0; }));
  EXPECT_EQ(n, cmds.size());
}
