// The ESXi test peer itself (scripts/esxi-sandbox.sh + the esxcli emulator of tests/esxi), end to end through a
// real sshd and the system ssh client: every command family's happy path and errors, the four formatters against
// the verbatim samples of reference/esxcli.md, the portid/srcport asymmetry, inherit vs override (--use-vswitch),
// strict parsing, concurrent invocations, hostile names that must never execute, every fault action, a batch of
// invocations in one exec, key handling, a fleet of hosts, and a stop that leaves nothing running.
//
// Each test gets a fresh host (vmnic0..vmnic3, vSwitch0 with uplink vmnic0, "Management Network" with vmk0 and
// "VM Network") from EsxiHostTest; results are checked in esxcli's own output and, independently, in the
// emulator's state file.
#include <algorithm>
#include <chrono>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/integration/esxi_harness.h"

using namespace vnptest;

namespace {

using Clock = std::chrono::steady_clock;

// "   Label: value" lines of a single-structure output, by label.
std::map<std::string, std::string> fields(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("   ", 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    m[line.substr(3, colon - 3)] = value;
  }
  return m;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }


class EsxiPeer : public EsxiHostTest {
 protected:
  // Runs esxcli and expects success.
  std::string ok(const std::string& args, size_t i = 0) {
    RunResult r = esxcli(args, i);
    EXPECT_EQ(r.exitCode, 0) << "esxcli " << args << "\nstdout: " << r.out << "\nstderr: " << r.err;
    return r.out;
  }
  // Runs esxcli, expects it to fail with exit 1 and `message` in its output, and nothing changed in the state.
  void fails(const std::string& args, const std::string& message, size_t i = 0) {
    Json before = state(i);
    RunResult r = esxcli(args, i);
    EXPECT_EQ(r.exitCode, 1) << "esxcli " << args << "\n" << r.out << r.err;
    EXPECT_TRUE(contains(r.out, message)) << "esxcli " << args << ": expected \"" << message << "\" in:\n" << r.out;
    EXPECT_EQ(state(i), before) << "esxcli " << args << " failed but changed the state";
  }
};

// ---------------------------------------------------------------- the fresh host

TEST_F(EsxiPeer, FreshHostIsAFreshlyInstalledEsxi) {
  std::string out = ok("network vswitch standard list");
  auto f = fields(out);
  EXPECT_EQ(lines(out).at(0), "vSwitch0");
  EXPECT_EQ(f["Uplinks"], "vmnic0");
  EXPECT_EQ(f["Portgroups"], "VM Network, Management Network");  // newest first, as ESXi lists them
  EXPECT_EQ(f["Configured Ports"], "128");
  EXPECT_EQ(f["MTU"], "1500");
  EXPECT_EQ(f["CDP Status"], "listen");

  auto sec = fields(ok("network vswitch standard policy security get -v vSwitch0"));
  EXPECT_EQ(sec["Allow Promiscuous"], "false");
  EXPECT_EQ(sec["Allow MAC Address Change"], "true");
  EXPECT_EQ(sec["Allow Forged Transmits"], "true");
  auto fo = fields(ok("network vswitch standard policy failover get -v vSwitch0"));
  EXPECT_EQ(fo["Load Balancing"], "srcport");
  EXPECT_EQ(fo["Network Failure Detection"], "link");
  EXPECT_EQ(fo["Notify Switches"], "true");
  EXPECT_EQ(fo["Failback"], "true");
  EXPECT_EQ(fo["Active Adapters"], "vmnic0");
  EXPECT_EQ(fo["Standby Adapters"], "");
  auto sh = fields(ok("network vswitch standard policy shaping get -v vSwitch0"));
  EXPECT_EQ(sh["Enabled"], "false");
  EXPECT_EQ(sh["Average Bandwidth"], "100000 Kbps");
  EXPECT_EQ(sh["Burst Size"], "102400 Kib");

  std::string nics = ok("network nic list");
  for (const char* n : {"vmnic0", "vmnic1", "vmnic2", "vmnic3"}) EXPECT_TRUE(contains(nics, n)) << nics;
  EXPECT_FALSE(contains(nics, "vmnic4"));
  auto ipv4 = lines(ok("network ip interface ipv4 get -i vmk0"));
  ASSERT_EQ(ipv4.size(), 3u);
  EXPECT_TRUE(std::regex_search(ipv4[2], std::regex("^vmk0 +10\\.0\\.0\\.10 +255\\.255\\.255\\.0 +10\\.0\\.0\\.255 +STATIC")))
      << ipv4[2];

  Json s = state();
  EXPECT_EQ(s["vmknics"].size(), 1u);
  EXPECT_EQ(vmknicState("vmk0")["portgroup"], "Management Network");
  EXPECT_TRUE(portgroupState("VM Network")["security"]["allowPromiscuous"].is_null());  // inherited
}

// ---------------------------------------------------------------- vSwitches and uplinks

TEST_F(EsxiPeer, VswitchLifecycle) {
  ok("network vswitch standard add -v vSwitch1 -P 256");
  auto f = fields(ok("network vswitch standard list -v vSwitch1"));
  EXPECT_EQ(f["Name"], "vSwitch1");
  EXPECT_EQ(f["Configured Ports"], "256");
  EXPECT_EQ(f["Uplinks"], "");
  EXPECT_EQ(vswitchState("vSwitch1")["ports"], 256);

  ok("network vswitch standard set --vswitch-name=vSwitch1 --mtu=9000 --cdp-status=both");
  f = fields(ok("network vswitch standard list --vswitch-name vSwitch1"));
  EXPECT_EQ(f["MTU"], "9000");
  EXPECT_EQ(f["CDP Status"], "both");

  ok("network vswitch standard uplink add -u vmnic1 -v vSwitch1");
  ok("network vswitch standard uplink add --uplink-name=vmnic2 --vswitch-name=vSwitch1");
  EXPECT_EQ(fields(ok("network vswitch standard list -v vSwitch1"))["Uplinks"], "vmnic1, vmnic2");
  EXPECT_EQ(fields(ok("network vswitch standard policy failover get -v vSwitch1"))["Active Adapters"],
            "vmnic1, vmnic2");
  // An uplink takes its vSwitch's MTU.
  EXPECT_TRUE(std::regex_search(ok("network nic list"), std::regex("\\nvmnic1 .* 9000  Intel")));

  ok("network vswitch standard uplink remove -u vmnic1 -v vSwitch1");
  EXPECT_EQ(vswitchState("vSwitch1")["uplinks"], Json({"vmnic2"}));
  EXPECT_EQ(vswitchState("vSwitch1")["failover"]["active"], Json({"vmnic2"}));

  ok("network vswitch standard remove -v vSwitch1");
  EXPECT_TRUE(vswitchState("vSwitch1").is_null());
  EXPECT_EQ(ok("network vswitch standard list -v vSwitch1"), "");  // no such vSwitch: nothing, exit 0
  // Its uplink is free again.
  ok("network vswitch standard uplink add -u vmnic2 -v vSwitch0");
}

TEST_F(EsxiPeer, VswitchErrors) {
  fails("network vswitch standard add -v vSwitch0", "A portset with this name already exists");
  const std::string name32(32, 'v'), name33(33, 'v');
  ok("network vswitch standard add -v " + name32);
  fails("network vswitch standard add -v " + name33, "Invalid virtual switch name");
  ok("network vswitch standard add -v big -P 4096");
  fails("network vswitch standard add -v bigger -P 4097", "maximum ports per virtual switch is 4096");
  fails("network vswitch standard set -v vSwitch0 -m 9001", "Invalid MTU 9001");
  fails("network vswitch standard set -v nosuch -m 9000", "Sysinfo error: Not found");
  fails("network vswitch standard remove -v nosuch", "Sysinfo error: Not found");

  fails("network vswitch standard uplink add -u vmnic9 -v vSwitch0", "Not a valid pnic");
  fails("network vswitch standard uplink add -u vmnic0 -v vSwitch0", "Uplink already exists: vmnic0");
  fails("network vswitch standard uplink add -u vmnic0 -v big", "Sysinfo error: Busy");  // one vSwitch per pnic
  fails("network vswitch standard uplink remove -u vmnic2 -v vSwitch0", "No such uplink: vmnic2");

  // A vSwitch with port groups (and so with vmkernel NICs) cannot be removed.
  fails("network vswitch standard remove -v vSwitch0", "Sysinfo error: Busy");
  ok("network vswitch standard portgroup add -p onbig -v big");
  fails("network vswitch standard remove -v big", "Sysinfo error: Busy");
  ok("network vswitch standard portgroup remove -p onbig -v big");
  ok("network vswitch standard remove -v big");
}

// ---------------------------------------------------------------- port groups

TEST_F(EsxiPeer, PortgroupLifecycle) {
  ok("network vswitch standard add -v vSwitch1");
  ok("network vswitch standard portgroup add -p web -v vSwitch1");
  ok("network vswitch standard portgroup set -p web -v 100");  // -v is the VLAN id here
  ok("network vswitch standard portgroup add --portgroup-name=trunk --vswitch-name=vSwitch1");
  ok("network vswitch standard portgroup set --portgroup-name=trunk --vlan-id=4095");
  auto table = lines(ok("network vswitch standard portgroup list"));
  ASSERT_EQ(table.size(), 6u);
  EXPECT_TRUE(std::regex_match(table[4], std::regex("trunk +vSwitch1 +0 +4095"))) << table[4];
  EXPECT_TRUE(std::regex_match(table[5], std::regex("web +vSwitch1 +0 +100"))) << table[5];
  EXPECT_EQ(portgroupState("web")["vlanId"], 100);
  EXPECT_EQ(portgroupState("web")["vswitch"], "vSwitch1");

  fails("network vswitch standard portgroup set -p web -v 4096", "Valid vlanIds range from [0,4095]");
  fails("network vswitch standard portgroup set -p web -v -1", "Valid vlanIds range from [0,4095]");
  fails("network vswitch standard portgroup set -p nosuch -v 5", "Sysinfo error: Not found");
  // Names are unique on the host, not per vSwitch.
  fails("network vswitch standard portgroup add -p web -v vSwitch0", "A portgroup with the name web already exists");
  fails("network vswitch standard portgroup add -p x -v nosuch", "Sysinfo error: Not found");
  fails("network vswitch standard portgroup remove -p web -v vSwitch0", "Sysinfo error: Not found");

  ok("network vswitch standard portgroup remove -p web -v vSwitch1");
  EXPECT_TRUE(portgroupState("web").is_null());
  fails("network vswitch standard portgroup remove -p web -v vSwitch1", "Sysinfo error: Not found");
  // A port group with a vmkernel NIC cannot be removed.
  fails("network vswitch standard portgroup remove -p 'Management Network' -v vSwitch0", "Sysinfo error: Busy");
}

// ---------------------------------------------------------------- policies: inherit vs override

TEST_F(EsxiPeer, SecurityPolicyInheritAndOverride) {
  const std::string pg = "-p 'VM Network'";
  auto get = [&] { return fields(ok("network vswitch standard portgroup policy security get " + pg)); };
  auto f = get();
  EXPECT_EQ(f.size(), 6u);
  EXPECT_EQ(f["Allow Promiscuous"], "false");
  EXPECT_EQ(f["Override Vswitch Allow Promiscuous"], "false");

  // Inherited values follow the vSwitch.
  ok("network vswitch standard policy security set -v vSwitch0 -p true -m false");
  f = get();
  EXPECT_EQ(f["Allow Promiscuous"], "true");
  EXPECT_EQ(f["Allow MAC Address Change"], "false");
  EXPECT_EQ(f["Override Vswitch Allow Promiscuous"], "false");

  // An override is per field, even when it equals the vSwitch's value.
  ok("network vswitch standard portgroup policy security set " + pg + " -o true");
  f = get();
  EXPECT_EQ(f["Allow Promiscuous"], "true");
  EXPECT_EQ(f["Override Vswitch Allow Promiscuous"], "true");
  EXPECT_EQ(f["Override Vswitch Allow MAC Address Change"], "false");
  ok("network vswitch standard policy security set -v vSwitch0 -p false");
  f = get();
  EXPECT_EQ(f["Allow Promiscuous"], "true");  // overridden: the vSwitch's change does not reach it
  EXPECT_EQ(portgroupState("VM Network")["security"]["allowPromiscuous"], true);
  EXPECT_TRUE(portgroupState("VM Network")["security"]["allowMacChange"].is_null());

  // --use-vswitch resets every field to inherit, then applies the other options.
  ok("network vswitch standard portgroup policy security set " + pg + " -u -f false");
  f = get();
  EXPECT_EQ(f["Allow Promiscuous"], "false");
  EXPECT_EQ(f["Override Vswitch Allow Promiscuous"], "false");
  EXPECT_EQ(f["Allow Forged Transmits"], "false");
  EXPECT_EQ(f["Override Vswitch Allow Forged Transmits"], "true");
  ok("network vswitch standard portgroup policy security set " + pg + " --use-vswitch");
  f = get();
  for (const char* o : {"Override Vswitch Allow Promiscuous", "Override Vswitch Allow MAC Address Change",
                        "Override Vswitch Allow Forged Transmits"})
    EXPECT_EQ(f[o], "false") << o;
  EXPECT_EQ(f["Allow Forged Transmits"], "true");

  // The port group's -p is its name: promiscuous mode is -o there.
  fails("network vswitch standard portgroup policy security set " + pg + " -p true", "given more than once");
}

TEST_F(EsxiPeer, FailoverLoadBalancingSetAndGetSpellingsDiffer) {
  const std::map<std::string, std::string> shown = {
      {"portid", "srcport"}, {"mac", "srcmac"}, {"iphash", "iphash"}, {"explicit", "explicit"}};
  for (const auto& [set, get] : shown) {
    ok("network vswitch standard policy failover set -v vSwitch0 -l " + set);
    EXPECT_EQ(fields(ok("network vswitch standard policy failover get -v vSwitch0"))["Load Balancing"], get);
    EXPECT_EQ(vswitchState("vSwitch0")["failover"]["loadBalancing"], set);
    ok("network vswitch standard portgroup policy failover set -p 'VM Network' --load-balancing=" + set);
    EXPECT_EQ(fields(ok("network vswitch standard portgroup policy failover get -p 'VM Network'"))["Load Balancing"],
              get);
  }
  // The get spelling is not accepted by set.
  fails("network vswitch standard policy failover set -v vSwitch0 -l srcport",
        "Invalid data constraint for parameter 'load-balancing'");
  fails("network vswitch standard policy failover set -v vSwitch0 -f arp",
        "Invalid data constraint for parameter 'failure-detection'");
}

TEST_F(EsxiPeer, FailoverUplinkOrderAndOverride) {
  ok("network vswitch standard uplink add -u vmnic1 -v vSwitch0");
  ok("network vswitch standard uplink add -u vmnic2 -v vSwitch0");
  ok("network vswitch standard policy failover set -v vSwitch0 -a vmnic2,vmnic0 -s vmnic1 -b false -n false");
  auto f = fields(ok("network vswitch standard policy failover get -v vSwitch0"));
  EXPECT_EQ(f["Active Adapters"], "vmnic2, vmnic0");
  EXPECT_EQ(f["Standby Adapters"], "vmnic1");
  EXPECT_EQ(f["Unused Adapters"], "");
  EXPECT_EQ(f["Failback"], "false");
  EXPECT_EQ(f["Notify Switches"], "false");

  // A port group inherits the whole order until it overrides it.
  const std::string pg = "network vswitch standard portgroup policy failover ";
  f = fields(ok(pg + "get -p 'Management Network'"));
  EXPECT_EQ(f.size(), 12u);
  EXPECT_EQ(f["Active Adapters"], "vmnic2, vmnic0");
  EXPECT_EQ(f["Override Vswitch Uplinks"], "false");
  ok(pg + "set -p 'Management Network' -a vmnic1");
  f = fields(ok(pg + "get -p 'Management Network'"));
  EXPECT_EQ(f["Active Adapters"], "vmnic1");
  EXPECT_EQ(f["Standby Adapters"], "");  // vmnic1 moved out of standby
  EXPECT_EQ(f["Unused Adapters"], "vmnic0, vmnic2");
  EXPECT_EQ(f["Override Vswitch Uplinks"], "true");
  EXPECT_EQ(f["Override Vswitch Load Balancing"], "false");
  EXPECT_EQ(f["Failback"], "false");  // still inherited
  EXPECT_EQ(portgroupState("Management Network")["failover"]["uplinks"], Json({{"active", Json::array({"vmnic1"})}, {"standby", Json::array()}}));

  // The vSwitch's order no longer reaches it; removing an uplink does.
  ok("network vswitch standard policy failover set -v vSwitch0 -a vmnic0 -s ''");
  EXPECT_EQ(fields(ok(pg + "get -p 'Management Network'"))["Active Adapters"], "vmnic1");
  EXPECT_EQ(fields(ok("network vswitch standard policy failover get -v vSwitch0"))["Standby Adapters"], "");
  ok("network vswitch standard uplink remove -u vmnic1 -v vSwitch0");
  EXPECT_EQ(fields(ok(pg + "get -p 'Management Network'"))["Active Adapters"], "");

  ok(pg + "set -p 'Management Network' -u -l iphash");
  f = fields(ok(pg + "get -p 'Management Network'"));
  EXPECT_EQ(f["Override Vswitch Uplinks"], "false");
  EXPECT_EQ(f["Override Vswitch Load Balancing"], "true");
  EXPECT_EQ(f["Active Adapters"], "vmnic0");

  fails("network vswitch standard policy failover set -v vSwitch0 -a vmnic3", "not an uplink of virtual switch");
  fails("network vswitch standard policy failover set -v vSwitch0 -a 'vmnic0, vmnic2'", "not an uplink");
  fails("network vswitch standard policy failover set -v vSwitch0 -a vmnic0 -s vmnic0", "both active and standby");
  fails("network vswitch standard policy failover set -v vSwitch0 -a vmnic0,vmnic0", "more than once");
  fails(pg + "set -p 'Management Network' -s vmnic9", "not an uplink");
}

TEST_F(EsxiPeer, ShapingPolicy) {
  fails("network vswitch standard policy shaping set -v vSwitch0 -e true -b 1000",
        "--avg-bandwidth, --peak-bandwidth and --burst-size are required");
  fails("network vswitch standard policy shaping set -v vSwitch0 -e true -b 2000 -k 1000 -t 100", "Peak bandwidth");
  ok("network vswitch standard policy shaping set -v vSwitch0 -e true -b 1000 -k 2000 -t 4096");
  auto f = fields(ok("network vswitch standard policy shaping get -v vSwitch0"));
  EXPECT_EQ(f["Enabled"], "true");
  EXPECT_EQ(f["Average Bandwidth"], "1000 Kbps");
  EXPECT_EQ(f["Peak Bandwidth"], "2000 Kbps");
  EXPECT_EQ(f["Burst Size"], "4096 Kib");

  const std::string pg = "network vswitch standard portgroup policy shaping ";
  f = fields(ok(pg + "get -p 'VM Network'"));
  EXPECT_EQ(f.size(), 5u);
  EXPECT_EQ(f["Average Bandwidth"], "1000 Kbps");  // inherited
  EXPECT_EQ(f["Override Vswitch Shaping"], "false");
  ok(pg + "set -p 'VM Network' --enabled=false");
  f = fields(ok(pg + "get -p 'VM Network'"));
  EXPECT_EQ(f["Enabled"], "false");
  EXPECT_EQ(f["Average Bandwidth"], "1000 Kbps");  // the override starts from the effective values
  EXPECT_EQ(f["Override Vswitch Shaping"], "true");
  ok("network vswitch standard policy shaping set -v vSwitch0 -b 1500 -k 3000");
  EXPECT_EQ(fields(ok(pg + "get -p 'VM Network'"))["Average Bandwidth"], "1000 Kbps");
  ok(pg + "set -p 'VM Network' -u");
  f = fields(ok(pg + "get -p 'VM Network'"));
  EXPECT_EQ(f["Average Bandwidth"], "1500 Kbps");
  EXPECT_EQ(f["Enabled"], "true");
  EXPECT_EQ(f["Override Vswitch Shaping"], "false");
  EXPECT_TRUE(portgroupState("VM Network")["shaping"].is_null());
}

TEST_F(EsxiPeer, BooleanSpellings) {
  const std::vector<std::pair<std::string, std::string>> spellings = {
      {"true", "true"}, {"false", "false"}, {"True", "true"}, {"FALSE", "false"},
      {"yes", "true"},  {"no", "false"},    {"1", "true"},    {"0", "false"}};
  for (const auto& [given, shown] : spellings) {
    ok("network vswitch standard policy security set -v vSwitch0 --allow-promiscuous=" + given);
    EXPECT_EQ(fields(ok("network vswitch standard policy security get -v vSwitch0"))["Allow Promiscuous"], shown)
        << given;
  }
  fails("network vswitch standard policy security set -v vSwitch0 -p maybe", "is not a boolean");
}

// ---------------------------------------------------------------- vmkernel NICs

TEST_F(EsxiPeer, VmkernelNics) {
  ok("network vswitch standard portgroup add -p vMotion -v vSwitch0");
  ok("network ip interface add -p vMotion -m 9000 -N vmotion");
  Json vmk1 = vmknicState("vmk1");
  ASSERT_FALSE(vmk1.is_null()) << state().dump(1);
  EXPECT_EQ(vmk1["portgroup"], "vMotion");
  EXPECT_EQ(vmk1["mtu"], 9000);
  std::string list = ok("network ip interface list");
  EXPECT_TRUE(contains(list, "vmk1\n   Name: vmk1\n")) << list;
  EXPECT_TRUE(contains(list, "   Portgroup: vMotion\n   Netstack Instance: vmotion\n")) << list;
  EXPECT_EQ(lines(ok("network vswitch standard portgroup list"))[4].find("vMotion"), 0u);

  fails("network ip interface add -p vMotion", "A vmkernel nic for the connection point already exists");
  fails("network ip interface add -p 'VM Network' -i vmk100", "Invalid interface name vmk100");
  fails("network ip interface add -p 'VM Network' -i vmk0", "AlreadyExists");
  fails("network ip interface add -p nosuch", "Sysinfo error: Not found");
  fails("network ip interface add -p 'VM Network' -M 00:50:56:zz:00:01", "Invalid MAC address");

  ok("network ip interface ipv4 set -i vmk1 -t static -I 192.168.10.5 -N 255.255.255.0 -g 192.168.10.1");
  auto row = lines(ok("network ip interface ipv4 get -i vmk1")).at(2);
  EXPECT_TRUE(std::regex_search(row, std::regex("^vmk1 +192\\.168\\.10\\.5 +255\\.255\\.255\\.0 +192\\.168\\.10\\.255 +"
                                                "STATIC +192\\.168\\.10\\.1 +false$")))
      << row;
  fails("network ip interface ipv4 set -i vmk1 -t static -I 192.168.10.5", "--ipv4 and --netmask are required");
  fails("network ip interface ipv4 set -i vmk1 -t static -I 300.1.1.1 -N 255.255.255.0", "Invalid IPv4 address");
  fails("network ip interface ipv4 set -i vmk1 -t static -I 10.1.1.1 -N 255.0.255.0", "Invalid IPv4 netmask");
  fails("network ip interface ipv4 set -i vmk1 -t bootp", "Invalid data constraint for parameter 'type'");
  ok("network ip interface ipv4 set -i vmk1 -t dhcp");
  EXPECT_TRUE(contains(ok("network ip interface ipv4 get -i vmk1"), " DHCP "));

  ok("network ip interface set -i vmk1 -e false -m 1500");
  EXPECT_EQ(vmknicState("vmk1")["enabled"], false);
  EXPECT_EQ(vmknicState("vmk1")["mtu"], 1500);
  fails("network ip interface set -i vmk1 -m 100", "Invalid MTU 100");

  fails("network vswitch standard portgroup remove -p vMotion -v vSwitch0", "Sysinfo error: Busy");
  ok("network ip interface remove -i vmk1");
  fails("network ip interface remove -i vmk1", "Sysinfo error: Not found");
  ok("network vswitch standard portgroup remove -p vMotion -v vSwitch0");
}

// ---------------------------------------------------------------- strict parsing

TEST_F(EsxiPeer, StrictParsing) {
  fails("network vswitch standard add", "Error: Missing required parameter -v|--vswitch-name");
  fails("network vswitch standard portgroup add -p x", "Error: Missing required parameter -v|--vswitch-name");
  fails("network vswitch standard add -v x --bogus=1", "Error: Invalid option --bogus");
  fails("network vswitch standard add -v x -Z", "Error: Invalid option -Z");
  fails("network vswitch standard add -v", "Missing value for option -v|--vswitch-name");
  fails("network vswitch standard add -v x -v y", "given more than once");
  fails("network vswitch standard add -v x stray", "Unexpected argument 'stray'");
  fails("network vswitch standard add -v x -P 12abc", "is not a number");
  fails("network vswitch standard portgroup policy security set -p 'VM Network' --use-vswitch=true",
        "does not take a value");
  fails("network vswitch standard frobnicate", "Error: Unknown command or namespace network vswitch standard frobnicate");
  fails("--formatter=json network nic list", "Unknown formatter 'json'");
  fails("--bogus network nic list", "Error: Invalid option --bogus");
  // Usage follows a parse error, as on ESXi.
  RunResult r = esxcli("network vswitch standard add");
  EXPECT_TRUE(contains(r.out, "Usage: esxcli network vswitch standard add [cmd options]")) << r.out;
  EXPECT_TRUE(contains(r.out, "-v|--vswitch-name=<str>")) << r.out;
  // A namespace alone lists what is in it.
  r = esxcli("network vswitch standard");
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_TRUE(contains(r.out, "Available Commands:") && contains(r.out, "Available Namespaces:")) << r.out;
  // The accepted spellings of an option's value.
  ok("network vswitch standard add --vswitch-name=a1");
  ok("network vswitch standard add --vswitch-name a2");
  ok("network vswitch standard add -v a3");
  ok("--formatter xml network vswitch standard add -v a4");
  for (const char* n : {"a1", "a2", "a3", "a4"}) EXPECT_FALSE(vswitchState(n).is_null()) << n;
}

// ---------------------------------------------------------------- formatters against reference/esxcli.md

TEST_F(EsxiPeer, KeyvalueMatchesReferenceSample) {
  // Shape the host like the one of the reference's keyvalue capture: port groups vss-mgmt then vss-vmnet, one
  // vmkernel NIC, uplink vmnic0.
  ok("network ip interface remove -i vmk0");
  ok("network vswitch standard portgroup remove -p 'Management Network' -v vSwitch0");
  ok("network vswitch standard portgroup remove -p 'VM Network' -v vSwitch0");
  ok("network vswitch standard portgroup add -p vss-mgmt -v vSwitch0");
  ok("network vswitch standard portgroup add -p vss-vmnet -v vSwitch0");
  ok("network ip interface add -i vmk0 -p vss-mgmt");
  const std::string sample =  // verbatim from reference/esxcli.md
      "structure[0].VirtualSwitch.BeaconEnabled.boolean=false\n"
      "structure[0].VirtualSwitch.BeaconInterval.integer=1\n"
      "structure[0].VirtualSwitch.BeaconRequiredBy.string[] = \n"
      "structure[0].VirtualSwitch.BeaconThreshold.integer=3\n"
      "structure[0].VirtualSwitch.CDPStatus.string=listen\n"
      "structure[0].VirtualSwitch.Class.string=cswitch\n"
      "structure[0].VirtualSwitch.ConfiguredPorts.integer=128\n"
      "structure[0].VirtualSwitch.MTU.integer=1500\n"
      "structure[0].VirtualSwitch.Name.string=vSwitch0\n"
      "structure[0].VirtualSwitch.NumPorts.integer=2560\n"
      "structure[0].VirtualSwitch.Portgroups.string[0].string=vss-vmnet\n"
      "structure[0].VirtualSwitch.Portgroups.string[1].string=vss-mgmt\n"
      "structure[0].VirtualSwitch.Uplinks.string[0].string=vmnic0\n"
      "structure[0].VirtualSwitch.UsedPorts.integer=4\n";
  EXPECT_EQ(ok("--formatter=keyvalue network vswitch standard list"), sample);

  // A single structure has no "structure[i]." prefix; an empty list is "string[] = ".
  std::string kv = ok("--formatter=keyvalue network vswitch standard policy failover get -v vSwitch0");
  EXPECT_EQ(kv,
            "VirtualSwitchFailoverPolicy.ActiveAdapters.string[0].string=vmnic0\n"
            "VirtualSwitchFailoverPolicy.Failback.boolean=true\n"
            "VirtualSwitchFailoverPolicy.LoadBalancing.string=srcport\n"
            "VirtualSwitchFailoverPolicy.NetworkFailureDetection.string=link\n"
            "VirtualSwitchFailoverPolicy.NotifySwitches.boolean=true\n"
            "VirtualSwitchFailoverPolicy.StandbyAdapters.string[] = \n"
            "VirtualSwitchFailoverPolicy.UnusedAdapters.string[] = \n");
}

TEST_F(EsxiPeer, HumanOutputMatchesReferenceSamples) {
  // The host of the reference's captures: uplink vmnic2, port groups "Management" then "WAN network" (VLAN 98),
  // one client on each.
  ok("network ip interface remove -i vmk0");
  ok("network vswitch standard portgroup remove -p 'Management Network' -v vSwitch0");
  ok("network vswitch standard portgroup remove -p 'VM Network' -v vSwitch0");
  ok("network vswitch standard uplink remove -u vmnic0 -v vSwitch0");
  ok("network vswitch standard uplink add -u vmnic2 -v vSwitch0");
  ok("network vswitch standard portgroup add -p Management -v vSwitch0");
  ok("network vswitch standard portgroup add -p 'WAN network' -v vSwitch0");
  ok("network vswitch standard portgroup set -p 'WAN network' -v 98");
  ok("network ip interface add -p Management");
  ok("network ip interface add -p 'WAN network'");

  const std::vector<std::string> sample = {  // verbatim from reference/esxcli.md
      "vSwitch0",
      "   Name: vSwitch0",
      "   Class: cswitch",
      "   Num Ports: 10496",
      "   Used Ports: 6",
      "   Configured Ports: 128",
      "   MTU: 1500",
      "   CDP Status: listen",
      "   Beacon Enabled: false",
      "   Beacon Interval: 1",
      "   Beacon Threshold: 3",
      "   Beacon Required By:",
      "   Uplinks: vmnic2",
      "   Portgroups: WAN network, Management"};
  auto got = lines(ok("network vswitch standard list"));
  ASSERT_GE(got.size(), sample.size());
  for (size_t i = 0; i < sample.size(); ++i) {
    // The elastic port counts (system wide, and VMs' ports) are not modelled: only their lines' form is checked.
    if (contains(sample[i], "Num Ports") || contains(sample[i], "Used Ports"))
      EXPECT_TRUE(std::regex_match(got[i], std::regex(sample[i].substr(0, sample[i].find(':') + 1) + " [0-9]+")))
          << got[i];
    else
      EXPECT_EQ(got[i], sample[i]);
  }

  // The port group table: the same columns, numbers right-aligned under their headers. (The capture's Name
  // column is two wider than its longest name -- names were edited for publication -- so that column is
  // compared by content only.)
  const std::vector<std::string> pgSample = {"Name           Virtual Switch  Active Clients  VLAN ID",
                                             "-------------  --------------  --------------  -------",
                                             "Management     vSwitch0                     1        0",
                                             "WAN network    vSwitch0                     1       98"};
  auto pgs = lines(ok("network vswitch standard portgroup list"));
  ASSERT_EQ(pgs.size(), pgSample.size());
  const size_t ourWidth = pgs[1].find(' '), theirWidth = pgSample[1].find(' ');
  for (size_t i = 0; i < pgs.size(); ++i) {
    auto trim = [](std::string s) { return s.erase(s.find_last_not_of(' ') + 1); };
    if (i == 1)
      EXPECT_EQ(pgs[i].substr(0, ourWidth), std::string(ourWidth, '-'));
    else
      EXPECT_EQ(trim(pgs[i].substr(0, ourWidth)), trim(pgSample[i].substr(0, theirWidth))) << pgs[i];
    EXPECT_EQ(pgs[i].substr(ourWidth), pgSample[i].substr(theirWidth)) << pgs[i];
  }

  // nic list: give the host the reference's NIC (an out-of-band change of the state, as a hardware swap).
  Json s = state();
  s["nics"] = Json::array({{{"name", "vmnic0"},
                            {"pciDevice", "0000:01:00.0"},
                            {"driver", "ixgbe"},
                            {"adminStatus", "Up"},
                            {"linkStatus", "Up"},
                            {"speed", 10000},
                            {"duplex", "Full"},
                            {"macAddress", "24:6e:96:2f:69:80"},
                            {"description", "Intel(R) Ethernet Controller X540-AT2"}}});
  writeFile(host().state, s.dump());
  EXPECT_EQ(ok("network nic list"),
            "Name    PCI Device    Driver  Admin Status  Link Status  Speed  Duplex  MAC Address         MTU  Description\n"
            "------  ------------  ------  ------------  -----------  -----  ------  -----------------  ----  "
            "-------------------------------------\n"
            "vmnic0  0000:01:00.0  ixgbe   Up            Up           10000  Full    24:6e:96:2f:69:80  1500  Intel(R) "
            "Ethernet Controller X540-AT2\n");
}

TEST_F(EsxiPeer, CsvMatchesReferenceSample) {
  EXPECT_EQ(ok("--formatter=csv network vswitch standard portgroup list"),
            "ActiveClients,Name,VLANID,VirtualSwitch,\n"
            "1,Management Network,0,vSwitch0,\n"  // verbatim from reference/esxcli.md
            "0,VM Network,0,vSwitch0,\n");
  ok("network vswitch standard uplink add -u vmnic1 -v vSwitch0");
  std::string csv = ok("--formatter=csv network vswitch standard list");
  EXPECT_EQ(lines(csv).at(0),
            "BeaconEnabled,BeaconInterval,BeaconRequiredBy,BeaconThreshold,CDPStatus,Class,ConfiguredPorts,MTU,Name,"
            "NumPorts,Portgroups,Uplinks,UsedPorts,");
  EXPECT_TRUE(contains(csv, ",\"VM Network,Management Network\",\"vmnic0,vmnic1\",")) << csv;
}

TEST_F(EsxiPeer, XmlFormatter) {
  ok("network vswitch standard portgroup add -p " + shellQuote("a<b>&\"c'") + " -v vSwitch0");
  std::string x = ok("--formatter=xml network vswitch standard list");
  EXPECT_EQ(x.rfind("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n", 0), 0u) << x;
  for (const char* want :
       {"<output xmlns=\"http://www.vmware.com/Products/ESX/5.0/esxcli\">", "<root>", "<list type=\"structure\">",
        "<structure typeName=\"VirtualSwitch\">", "<field name=\"BeaconEnabled\">", "<boolean>false</boolean>",
        "<field name=\"ConfiguredPorts\">", "<integer>128</integer>", "<field name=\"BeaconRequiredBy\">",
        "<list type=\"string\">", "<string>a&lt;b&gt;&amp;&quot;c&apos;</string>", "</output>"})
    EXPECT_TRUE(contains(x, want)) << want << " not in:\n" << x;
  // Fields in ASCII order, as in the other formatters.
  EXPECT_LT(x.find("\"BeaconEnabled\""), x.find("\"CDPStatus\""));
  EXPECT_LT(x.find("\"CDPStatus\""), x.find("\"Class\""));
  EXPECT_LT(x.find("\"UsedPorts\""), x.find("</structure>"));
  std::string single = ok("--formatter=xml network vswitch standard policy security get -v vSwitch0");
  EXPECT_TRUE(contains(single, "<root>\n   <structure typeName=\"VirtualSwitchSecurityPolicy\">")) << single;
  EXPECT_FALSE(contains(single, "<list type=\"structure\">"));
  // Commands that change something print nothing, whatever the formatter.
  EXPECT_EQ(ok("--formatter=xml network vswitch standard add -v quiet"), "");
}

// ---------------------------------------------------------------- the shell between ssh and esxcli

TEST_F(EsxiPeer, HostileNamesNeverExecute) {
  const std::string marker = (dir / "marker").string();
  const std::vector<std::string> names = {
      "$(touch " + marker + ")", "`touch " + marker + "`", "x; touch " + marker, "x | touch " + marker,
      "x && touch " + marker,    "it's \"quoted\"",        "two\nlines; touch " + marker, "back\\slash $HOME ${PATH}",
      "VM Network 2",            "-starts-with-dash"};
  for (const auto& name : names) {
    RunResult r = esxcli("network vswitch standard portgroup add -p " + shellQuote(name) + " -v vSwitch0");
    EXPECT_EQ(r.exitCode, 0) << name << ": " << r.out << r.err;
    EXPECT_FALSE(portgroupState(name).is_null()) << "port group " << name << " not created as named";
    r = esxcli("network vswitch standard portgroup set -p " + shellQuote(name) + " -v 7");
    EXPECT_EQ(r.exitCode, 0) << name << ": " << r.out;
    EXPECT_EQ(portgroupState(name)["vlanId"], 7) << name;
  }
  EXPECT_FALSE(fs::exists(marker)) << "a port group name was executed by a shell";
  // Each name reached esxcli as one argument, byte for byte.
  auto log = invocations();
  std::set<std::string> seen;
  for (const auto& argv : log)
    if (argv.size() == 9 && argv[4] == "add") seen.insert(argv[6]);
  for (const auto& name : names) EXPECT_TRUE(seen.count(name)) << name;
  std::string kv = ok("--formatter=keyvalue network vswitch standard portgroup list");
  EXPECT_TRUE(contains(kv, ".Name.string=$(touch " + marker + ")\n")) << kv;
}

TEST_F(EsxiPeer, BatchOfInvocationsWithPerCommandStatus) {
  const auto before = invocations().size();
  const size_t sessionsBefore = lines(readAll(host().sshdLog)).size();
  RunResult r = ssh(
      "esxcli network vswitch standard portgroup add -p b1 -v vSwitch0; echo \"@@rc=$?\"; "
      "esxcli network vswitch standard portgroup add -p b1 -v vSwitch0; echo \"@@rc=$?\"; "
      "esxcli --formatter=keyvalue network vswitch standard portgroup list; echo \"@@rc=$?\"");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  std::vector<int> statuses;
  std::vector<std::string> outputs(1);
  for (const auto& l : lines(r.out)) {
    if (l.rfind("@@rc=", 0) == 0) {
      statuses.push_back(std::stoi(l.substr(5)));
      outputs.emplace_back();
    } else {
      outputs.back() += l + "\n";
    }
  }
  EXPECT_EQ(statuses, (std::vector<int>{0, 1, 0}));
  ASSERT_GE(outputs.size(), 3u);
  EXPECT_EQ(outputs[0], "");
  EXPECT_EQ(outputs[1], "A portgroup with the name b1 already exists\n");
  EXPECT_TRUE(std::regex_search(outputs[2], std::regex("\\nstructure\\[[0-9]+\\]\\.PortGroup\\.Name\\.string=b1\\n")))
      << outputs[2];
  EXPECT_EQ(invocations().size(), before + 3);
  // One SSH session for the three.
  std::string newLog;
  auto all = lines(readAll(host().sshdLog));
  for (size_t i = sessionsBefore; i < all.size(); ++i) newLog += all[i] + "\n";
  size_t sessions = 0;
  for (size_t p = 0; (p = newLog.find("Starting session", p)) != std::string::npos; ++p) ++sessions;
  EXPECT_EQ(sessions, 1u) << newLog;
}

TEST_F(EsxiPeer, ConcurrentInvocationsLoseNoUpdate) {
  constexpr int kSessions = 8, kEach = 5;
  std::vector<RunResult> results(kSessions);
  std::vector<std::thread> threads;
  for (int t = 0; t < kSessions; ++t)
    threads.emplace_back([&, t] {
      results[t] = ssh("for i in 0 1 2 3 4; do esxcli network vswitch standard portgroup add -p pg-" +
                       std::to_string(t) + "-$i -v vSwitch0 || exit 1; done");
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kSessions; ++t) EXPECT_EQ(results[t].exitCode, 0) << results[t].out << results[t].err;
  Json s = state();
  int found = 0;
  for (int t = 0; t < kSessions; ++t)
    for (int i = 0; i < kEach; ++i)
      if (!findNamed(s["portgroups"], "pg-" + std::to_string(t) + "-" + std::to_string(i)).is_null()) ++found;
  EXPECT_EQ(found, kSessions * kEach);
  EXPECT_EQ(s["portgroups"].size(), static_cast<size_t>(2 + kSessions * kEach));
  EXPECT_EQ(invocations().size(), static_cast<size_t>(kSessions * kEach));
}

// ---------------------------------------------------------------- fault injection

TEST_F(EsxiPeer, FaultFailBeforeAndAfter) {
  setFaults(Json::array({{{"match", "portgroup add -p f1"},
                          {"action", "fail"},
                          {"message", "Simulated: the host is in maintenance"},
                          {"exitCode", 3}}}));
  Json before = state();
  RunResult r = esxcli("network vswitch standard portgroup add -p f1 -v vSwitch0");
  EXPECT_EQ(r.exitCode, 3);
  EXPECT_EQ(r.out, "Simulated: the host is in maintenance\n");
  EXPECT_EQ(state(), before);
  EXPECT_EQ(invocations().back().at(6), "f1");  // logged all the same
  ok("network vswitch standard portgroup add -p f2 -v vSwitch0");  // does not match

  // "after": the change is made, the caller is told it failed.
  setFaults(Json::array({{{"match", "portgroup add"}, {"action", "fail"}, {"when", "after"}, {"message", "lost"}}}));
  r = esxcli("network vswitch standard portgroup add -p f3 -v vSwitch0");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(r.out, "lost\n");
  EXPECT_FALSE(portgroupState("f3").is_null());

  // A broken rule file is loud.
  writeFile(host().faults, "{not json");
  r = esxcli("network nic list");
  EXPECT_EQ(r.exitCode, 3);
  EXPECT_TRUE(contains(r.out, "not a JSON array of fault rules")) << r.out;
  clearFaults();
  ok("network nic list");
}

TEST_F(EsxiPeer, FaultOnNthMatchingInvocation) {
  setFaults(Json::array({{{"match", "portgroup add"}, {"nth", 2}, {"action", "fail"}, {"message", "second"}}}));
  RunResult r = ssh(
      "for p in n1 n2 n3; do esxcli network vswitch standard portgroup add -p $p -v vSwitch0; echo \"@@rc=$?\"; "
      "esxcli network nic list >/dev/null; done");
  EXPECT_EQ(r.out, "@@rc=0\nsecond\n@@rc=1\n@@rc=0\n");
  EXPECT_FALSE(portgroupState("n1").is_null());
  EXPECT_TRUE(portgroupState("n2").is_null());
  EXPECT_FALSE(portgroupState("n3").is_null());
}

TEST_F(EsxiPeer, FaultHangEndsWhenTheClientGivesUp) {
  setFaults(Json::array({{{"match", "nic list"}, {"action", "hang"}, {"seconds", 120}}}));
  auto t0 = Clock::now();
  RunResult r = run("timeout 3 " + sshPrefix() + " -- 'esxcli network nic list'", 30);
  EXPECT_EQ(r.exitCode, 124) << "the command should have hung: " << r.out << r.err;
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
  // The hung esxcli goes away with its SSH channel, and never held the host's lock while hanging.
  EXPECT_TRUE(eventually([&] { return sessionProcesses(host().state).empty(); }, std::chrono::seconds(10)))
      << "still running: " << sessionProcesses(host().state).size() << " session process(es)";
  t0 = Clock::now();
  ok("network vswitch standard list");
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));

  // A short hang is a slow command that then succeeds.
  setFaults(Json::array({{{"match", "nic list"}, {"action", "hang"}, {"seconds", 1.5}}}));
  t0 = Clock::now();
  std::string out = ok("network nic list");
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(1500));
  EXPECT_TRUE(contains(out, "vmnic0")) << out;
}

TEST_F(EsxiPeer, FaultGarbageAndTruncatedOutput) {
  const std::string args = "--formatter=keyvalue network vswitch standard portgroup list";
  const std::string normal = ok(args);
  setFaults(Json::array({{{"match", "portgroup list"}, {"action", "garbage"}}}));
  RunResult r = esxcli(args);
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_NE(r.out, normal);
  EXPECT_FALSE(std::regex_search(r.out, std::regex("structure\\[[0-9]+\\]\\.PortGroup\\."))) << r.out;
  setFaults(Json::array({{{"match", "portgroup list"}, {"action", "garbage"}, {"output", "<html>502</html>"}}}));
  EXPECT_EQ(ok(args), "<html>502</html>");

  setFaults(Json::array({{{"match", "portgroup list"}, {"action", "truncate"}, {"bytes", 25}}}));
  EXPECT_EQ(ok(args), normal.substr(0, 25));
  setFaults(Json::array({{{"match", "portgroup list"}, {"action", "truncate"}}}));
  EXPECT_EQ(ok(args), normal.substr(0, normal.size() / 2));
  clearFaults();
  EXPECT_EQ(ok(args), normal);
}

// ---------------------------------------------------------------- SSH itself

TEST_F(EsxiPeer, KeysAndHostKeyChecking) {
  const EsxiHost& h = host();
  auto base = [&](const std::string& identity, const std::string& knownHosts, const std::string& extra) {
    return "ssh -F /dev/null -o IdentitiesOnly=yes -i " + shellQuote(identity) + " -o UserKnownHostsFile=" +
           shellQuote(knownHosts) + " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes " + extra +
           " -p " + std::to_string(h.port) + " " + h.user + "@127.0.0.1 -- 'esxcli network nic list'";
  };
  // The passphrase key needs its passphrase: BatchMode cannot ask for it ...
  RunResult r = run(base(h.passphraseIdentityFile, h.knownHosts, "-o BatchMode=yes"), 30);
  EXPECT_EQ(r.exitCode, 255);
  // ... an askpass program can.
  const std::string askpass = (dir / "askpass.sh").string();
  writeFile(askpass, "#!/bin/sh\ncat " + shellQuote(h.passphraseFile) + "\n");
  fs::permissions(askpass, fs::perms::owner_all);
  r = run("SSH_ASKPASS=" + shellQuote(askpass) + " SSH_ASKPASS_REQUIRE=force " +
              base(h.passphraseIdentityFile, h.knownHosts, "-o BatchMode=no -o NumberOfPasswordPrompts=1") +
              " </dev/null",
          30);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "vmnic0"));
  writeFile(askpass, "#!/bin/sh\necho wrong-passphrase\n");
  r = run("SSH_ASKPASS=" + shellQuote(askpass) + " SSH_ASKPASS_REQUIRE=force " +
              base(h.passphraseIdentityFile, h.knownHosts, "-o BatchMode=no -o NumberOfPasswordPrompts=1") +
              " </dev/null",
          30);
  EXPECT_EQ(r.exitCode, 255);

  // Only keys: no password authentication is offered.
  r = run(base(h.identityFile, h.knownHosts, "-o BatchMode=yes -o PreferredAuthentications=password"), 30);
  EXPECT_EQ(r.exitCode, 255);
  EXPECT_TRUE(contains(r.err, "Permission denied (publickey)")) << r.err;

  // known_hosts pins the host key: another key for [127.0.0.1]:PORT is refused.
  const std::string otherKey = (dir / "other_host_key").string();
  ASSERT_EQ(run("ssh-keygen -q -t ed25519 -N '' -f " + shellQuote(otherKey)).exitCode, 0);
  const std::string badKnownHosts = (dir / "bad_known_hosts").string();
  std::string pub = readAll(otherKey + ".pub");
  writeFile(badKnownHosts, "[127.0.0.1]:" + std::to_string(h.port) + " " + pub.substr(0, pub.rfind(' ')) + "\n");
  r = run(base(h.identityFile, badKnownHosts, "-o BatchMode=yes"), 30);
  EXPECT_EQ(r.exitCode, 255);
  EXPECT_TRUE(contains(r.err, "Host key verification failed")) << r.err;
  // The published known_hosts line is right.
  EXPECT_EQ(readAll(h.knownHosts).rfind("[127.0.0.1]:" + std::to_string(h.port) + " ssh-ed25519 ", 0), 0u);
  EXPECT_EQ(ok("network nic list").find("Name"), 0u);
}

TEST_F(EsxiPeer, StopLeavesNothingRunning) {
  size_t extra = startHosts(1).at(0);
  ASSERT_FALSE(HasFatalFailure());
  const EsxiHost& h = host(extra);
  setFaults(Json::array({{{"match", "nic list"}, {"action", "hang"}, {"seconds", 120}}}), extra);
  // A session that hangs, from a client that does not give up.
  std::thread client([&] { run(sshPrefix(extra) + " -- 'esxcli network nic list'", 60); });
  ASSERT_TRUE(eventually([&] { return !sessionProcesses(h.state).empty(); }, std::chrono::seconds(10)));
  const std::string sshdPid = readAll(h.dir / "sshd.pid");
  RunResult r = run(esxiSandboxScript() + " stop " + shellQuote(h.dir.string()), 60);
  client.join();
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(sessionProcesses(h.state).empty());
  std::string stat = readAll("/proc/" + sshdPid.substr(0, sshdPid.find('\n')) + "/stat");
  EXPECT_TRUE(stat.empty() || stat[stat.rfind(')') + 2] == 'Z') << "sshd still runs: " << stat;
  r = run(sshPrefix(extra) + " -- true", 30);
  EXPECT_EQ(r.exitCode, 255) << "the sandbox still answers";
}

class EsxiFleet : public EsxiPeer {
 protected:
  int hostsAtSetUp() const override { return 3; }
};

TEST_F(EsxiFleet, HostsAreIndependent) {
  std::set<int> ports;
  std::set<std::string> macs;
  for (size_t i = 0; i < hostCount(); ++i) {
    ports.insert(host(i).port);
    macs.insert(state(i)["nics"][0]["macAddress"].get<std::string>());
  }
  EXPECT_EQ(ports.size(), 3u);
  EXPECT_EQ(macs.size(), 3u);

  ok("network vswitch standard add -v only-on-1", 1);
  EXPECT_FALSE(vswitchState("only-on-1", 1).is_null());
  EXPECT_TRUE(vswitchState("only-on-1", 0).is_null());
  EXPECT_TRUE(vswitchState("only-on-1", 2).is_null());
  EXPECT_EQ(ok("network vswitch standard list -v only-on-1", 2), "");
  EXPECT_EQ(invocations(0).size(), 0u);
  EXPECT_EQ(invocations(1).size(), 1u);

  // Each host has its own host key: host 0's known_hosts entry does not vouch for host 1.
  std::string line = readAll(host(0).knownHosts);
  const std::string mixed = (dir / "mixed_known_hosts").string();
  writeFile(mixed, "[127.0.0.1]:" + std::to_string(host(1).port) + line.substr(line.find(' ')));
  RunResult r = run("ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i " + shellQuote(host(1).identityFile) +
                        " -o UserKnownHostsFile=" + shellQuote(mixed) +
                        " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -p " +
                        std::to_string(host(1).port) + " " + host(1).user + "@127.0.0.1 -- true",
                    30);
  EXPECT_EQ(r.exitCode, 255);
}

}  // namespace
