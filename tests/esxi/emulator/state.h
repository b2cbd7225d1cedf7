// The emulated ESXi host's network configuration: physical NICs, standard vSwitches with their policies, port
// groups (whose policies are either inherited from their vSwitch or overridden field by field, as on ESXi) and
// vmkernel NICs. It lives in a JSON file (env ESXCLI_STATE) that tests read directly as an independent view.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace esxemu {

using Json = nlohmann::json;

struct Security {
  // A fresh standard vSwitch rejects promiscuous mode and accepts MAC changes and forged transmits (vSphere
  // networking guide: "By default, Promiscuous Mode is set to Reject. MAC Address Changes and Forged Transmits
  // are set to Accept"; distributed switches reject all three, standard ones do not).
  bool allowPromiscuous = false;
  bool allowMacChange = true;
  bool allowForgedTransmits = true;
};

struct Failover {
  std::string loadBalancing = "portid";  // stored in the `set` spelling: portid | mac | iphash | explicit
  std::string failureDetection = "link";  // link | beacon
  bool notifySwitches = true;
  bool failback = true;
  std::vector<std::string> active;  // the order is the failover order
  std::vector<std::string> standby;
};

struct Shaping {
  // [R] A vSwitch that never had shaping configured reports these values (reference/esxcli.md, reconstructed).
  bool enabled = false;
  long long avgBandwidth = 100000;   // Kbps
  long long peakBandwidth = 100000;  // Kbps
  long long burstSize = 102400;      // Kib
};

struct VSwitch {
  std::string name;
  long long ports = 128;
  long long mtu = 1500;
  std::string cdpStatus = "listen";
  std::vector<std::string> uplinks;  // in the order they were added
  Security security;
  Failover failover;
  Shaping shaping;
};

struct UplinkOrder {
  std::vector<std::string> active, standby;
};

// A port group's policy fields are overridden one by one (security, failover) or as a whole (shaping); an unset
// field means "inherited from the vSwitch", a state distinct from an explicit value equal to the vSwitch's.
struct PortGroup {
  std::string name;
  std::string vswitch;
  long long vlanId = 0;
  std::optional<bool> allowPromiscuous, allowMacChange, allowForgedTransmits;
  std::optional<std::string> loadBalancing, failureDetection;
  std::optional<bool> notifySwitches, failback;
  std::optional<UplinkOrder> uplinks;
  std::optional<Shaping> shaping;
};

struct Nic {
  std::string name, pciDevice, driver, macAddress, description;
  std::string adminStatus = "Up", linkStatus = "Up", duplex = "Full";
  long long speed = 10000;
};

struct Vmknic {
  std::string name, portgroup, macAddress;
  std::string netstack = "defaultTcpipStack";
  bool enabled = true;
  long long mtu = 1500;
  long long portId = 0;
  std::string ipv4Type = "none";  // static | dhcp | none
  std::string ipv4Address, ipv4Netmask, gateway;
  bool peerDns = false;
};

struct Host {
  std::vector<Nic> nics;
  std::vector<VSwitch> vswitches;    // creation order
  std::vector<PortGroup> portgroups; // creation order
  std::vector<Vmknic> vmknics;       // creation order
  long long nextPortId = 33554436;
  unsigned macSeed = 0;  // makes the MACs of one emulated host differ from another's

  VSwitch* vswitch(const std::string& name);
  PortGroup* portgroup(const std::string& name);
  Nic* nic(const std::string& name);
  Vmknic* vmknic(const std::string& name);
  Vmknic* vmknicOn(const std::string& portgroup);
  // The vSwitch an uplink belongs to, or nullptr.
  VSwitch* vswitchOfUplink(const std::string& nic);
};

// Effective (inherited or overridden) port group policies.
Security effectiveSecurity(const Host& h, const PortGroup& pg);
Failover effectiveFailover(const Host& h, const PortGroup& pg);
Shaping effectiveShaping(const Host& h, const PortGroup& pg);

Json toJson(const Host& h);
Host fromJson(const Json& j);  // throws std::exception on a malformed state file

// A freshly installed host: vmnic0..vmnic<nics-1>, vSwitch0 (uplink vmnic0) with "Management Network" and
// "VM Network", vmk0 on "Management Network" with a static IPv4 address.
Host freshHost(int nics, const std::string& mgmtIp, const std::string& mgmtNetmask, unsigned macSeed);

std::string macAddress(const char* oui, unsigned seed, unsigned index);

}  // namespace esxemu
