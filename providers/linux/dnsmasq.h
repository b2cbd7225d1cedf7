// DHCP of a Network: one dnsmasq per Network, started inside the target's namespace as a daemon of its own (it
// outlives the vnetplan run that started it), found again by its pid file. Its files live in
// <run dir>/<netns or "host">/<network>/ (run dir: $VNETPLAN_RUN_DIR, default /run/vnetplan/dnsmasq): the config
// vnetplan writes, the pid file, the lease file (kept across restarts, so leases survive re-applies) and its log.
#pragma once
#include <string>

#include "base/result.h"
#include "model/model.h"

namespace vnetplan::lnx {

class LinuxSession;

// The dnsmasq config of Network `network` on `bridge` from its attributes (ipv4.address, ipv4.dhcp.*, mode).
std::string dnsmasqConfig(const std::string& network, const std::string& bridge, const Attrs& a);
// Makes the Network's dnsmasq run with `config`: nothing when it already does, a restart when the config changed
// or it died.
Status startDnsmasq(LinuxSession& s, const std::string& network, const std::string& config);
// Stops it and removes its files (leases included). Not running is fine.
Status stopDnsmasq(LinuxSession& s, const std::string& network);
// During observe: ipv4.dhcp.start/end from the config it runs with, and status.dhcp "running" / "dead".
void observeDnsmasq(LinuxSession& s, const std::string& network, Attrs& a);
// The directory of the Network's dnsmasq (for tests and messages).
std::string dnsmasqDir(const std::string& netns, const std::string& network);

}  // namespace vnetplan::lnx
