// The security policy of a bridge port (DESIGN §2 `security`, seed 001), enforced with bridge-family nftables
// rules in a table of the port's own, `bridge vnp-port-<port>`:
//   allowForgedTransmits: false  frames from the port whose source MAC is not the guest's are dropped
//   allowMacChanges: false       unicast frames to the port for another MAC than the guest's are dropped (a guest
//                                that changed its MAC gets nothing)
//   allowPromiscuous             false is what a Linux bridge port is (it gets its own unicast, floods and
//                                broadcasts); true cannot be honoured by a bridge port: a plan-time error
// Switch and PortGroup policies reach the ports by inheritance, and are enforced there.
#pragma once
#include <string>
#include <vector>

#include "providers/linux/kind.h"

namespace vnetplan::lnx {

// The field rule of every security.* path (a tap or veth Port, and the Switch / PortGroup they inherit from).
void checkSecurityField(const FieldCheck& fc);
const std::vector<FieldRule>& securityFields();
bool securityPath(const std::string& path);
// Plan time: a `false` needs the guest's MAC (`macPath`: a tap's mac, a veth's linux.peerMac).
void checkSecurity(const Resource& r, Diagnostics& diags, const char* macPath);
// Leaves the port's table as `a` asks (none when nothing is false), in one nftables batch.
Status syncSecurity(LinuxSession& s, const std::string& port, const Attrs& a, const char* macPath);
// After an update of a tap or veth: the security table and the shaping qdisc again, each only when the step
// changes something it depends on (the guest's MAC at `macPath`; the MTU sizes the shaping burst).
Status syncPortPolicies(LinuxSession& s, const Step& step, const char* macPath);
// Normalize of a tap or veth Port: a security or shaping field the port neither sets nor inherits is null (no
// rules, no qdisc: what observe reports by leaving the field out), so taking a policy out of the manifests removes
// its rules or qdisc; a restricted security policy is completed with the permissive values of its other fields.
void normalizePortPolicies(Resource& r);
// Removes the port's table if it has one.
Status dropSecurity(LinuxSession& s, const std::string& port);
// During observe: security.* of a port whose guest MAC is `guestMac` ("" if unknown); none when the port has no
// table (the permissive policy).
void observeSecurity(LinuxSession& s, const std::string& port, const std::string& guestMac, Attrs& a);

}  // namespace vnetplan::lnx
