// An ESXi host's network configuration as esxcli reports it (the `network` namespace, XML formatter), typed: the
// live side every kind of the esxi provider reads. Values keep esxcli's own spellings here (srcport, Kib); the
// kinds translate them into the portable vocabulary.
//
// Observing takes at most two round trips: the lists first (vSwitches, port groups, physical NICs, vmkernel NICs
// and their IPv4 settings), then the three policy `get`s of every vSwitch and port group -- which need the names
// the lists gave. The session folds the `get`s of names it already knows into the first round trip, so a verify
// after an apply usually takes one.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "providers/esxi/batch.h"
#include "providers/esxi/xml.h"

namespace vnetplan::esxi {

struct Security {
  bool allowPromiscuous = false;
  bool allowMacChange = true;
  bool allowForgedTransmits = true;
};

struct Failover {
  std::string loadBalancing = "srcport";  // as `get` prints it: srcport | srcmac | iphash | explicit
  std::string failureDetection = "link";  // link | beacon
  bool notifySwitches = true;
  bool failback = true;
  std::vector<std::string> active, standby;
};

struct Shaping {
  bool enabled = false;
  int64_t averageKbps = 0, peakKbps = 0, burstKib = 0;  // esxcli's units: Kbps and Kib (kibibits)
};

struct VSwitchInfo {
  std::string name;
  int64_t configuredPorts = 128;
  int64_t mtu = 1500;
  std::string cdpStatus = "listen";
  std::vector<std::string> uplinks;
  bool policiesRead = false;
  Security security;
  Failover failover;
  Shaping shaping;
};

// A port group's policies: the effective values (`get` shows them inherited or overridden) and which fields the
// port group overrides; the rest inherit its vSwitch's.
struct PortGroupInfo {
  std::string name;
  std::string vswitch;
  int64_t vlan = 0;
  bool policiesRead = false;
  Security security;
  bool ovPromiscuous = false, ovMacChange = false, ovForgedTransmits = false;
  Failover failover;
  bool ovLoadBalancing = false, ovFailureDetection = false, ovNotifySwitches = false, ovFailback = false,
       ovUplinks = false;
  Shaping shaping;
  bool ovShaping = false;
};

struct NicInfo {
  std::string name;
  std::string mac;
  std::string linkStatus;
};

struct VmknicInfo {
  std::string name;
  std::string mac;
  std::string portgroup;
  std::string netstack = "defaultTcpipStack";
  bool enabled = true;
  int64_t mtu = 1500;
  std::string ipv4Type = "NONE";  // STATIC | DHCP | NONE
  std::string ipv4Address, ipv4Netmask;
};

struct HostState {
  std::vector<VSwitchInfo> vswitches;
  std::vector<PortGroupInfo> portgroups;
  std::vector<NicInfo> nics;
  std::vector<VmknicInfo> vmknics;

  const VSwitchInfo* vswitch(const std::string& name) const;
  const PortGroupInfo* portgroup(const std::string& name) const;
  const NicInfo* nic(const std::string& name) const;
  // "vmnic0, vmnic1, ..." for messages.
  std::string nicNames() const;
};

// ---- the commands observe runs, and reading what they print

// The list commands of round one, in this order.
std::vector<EsxcliCommand> listCommands();
// The three policy `get`s of a vSwitch / a port group (security, failover, shaping).
std::vector<EsxcliCommand> vswitchPolicyCommands(const std::string& vswitch);
std::vector<EsxcliCommand> portgroupPolicyCommands(const std::string& portgroup);

// Reads the outputs of listCommands() (same order) into a HostState without policies.
Result<HostState> parseLists(const std::vector<std::string>& outputs);
// Reads the outputs of the three policy gets into `vs` / `pg`.
Status parseVswitchPolicies(const std::vector<std::string>& outputs, VSwitchInfo& vs);
Status parsePortgroupPolicies(const std::vector<std::string>& outputs, PortGroupInfo& pg);

// esxcli's failure texts for an object that does not exist ("Sysinfo error: Not found..."), e.g. a port group
// removed between the two round trips of an observe.
bool isNotFound(const std::string& output);

}  // namespace vnetplan::esxi
