// The kinds of the esxi provider as rows of the shared hook table (reconciler/kind_table.h): Switch = a standard
// vSwitch with its uplinks and policies, PortGroup = a port group with its VLAN and policy overrides, Port of type
// vmkernel = a vmkernel NIC. Observe reads the HostState of one observe; a step becomes the esxcli commands that
// make it (StepCommands), which the session runs in batches.
//
// Attribute vocabulary (the manifest's paths, normalized the way check/normalize leave desired values):
//   Switch    mtu, esxi.numPorts, esxi.cdpStatus, uplinks.nics (unordered), uplinks.teaming.{policy, active,
//             standby (ordered: the failover order), failureDetection, notifySwitches, failback},
//             security.{allowPromiscuous, allowMacChanges, allowForgedTransmits},
//             shaping.{averageKbps, peakKbps, burstKiB} (present only while shaping is on)
//   PortGroup switch, vlan (absent = 0), and only the policy fields the port group overrides: an inherited field
//             is absent on both sides (ESXi: inherit, set with --use-vswitch), so inherit and an explicit value
//             equal to the vSwitch's are different states, as DESIGN §2 has it
//   Port      type (vmkernel), portGroup, mtu, mac, up, addresses ([IPv4 CIDR] or []), esxi.dhcp, esxi.netstack
#pragma once
#include <string>
#include <vector>

#include "providers/esxi/batch.h"
#include "providers/esxi/host.h"
#include "reconciler/kind_table.h"
#include "reconciler/provider.h"

namespace vnetplan::esxi {

struct EsxLive {
  const HostState& host;
  const std::string& target;
};

// The esxcli commands of one step, in order. `live` is the session's last observation (for checks that need the
// host, e.g. that an uplink is one of its physical NICs).
struct StepCommands {
  const HostState* live = nullptr;
  std::vector<EsxcliCommand> cmds;
  void add(std::vector<std::string> args) { cmds.push_back(EsxcliCommand{std::move(args)}); }
};

using KindOps = KindHooks<const EsxLive, StepCommands>;
using EsxiKinds = KindTable<const EsxLive, StepCommands>;

extern const KindOps kVswitchOps;
extern const KindOps kPortGroupOps;
extern const KindOps kVmkernelOps;
const EsxiKinds& esxiKinds();

// ---- plan-time checks shared by the kinds (fields.cpp)

// "esxi: ADDR: field PATH is not supported by the esxi provider: WHY".
void unsupported(const FieldCheck& fc, const std::string& why);
// True if the checked value was inherited from a parent (its own resource reports problems with it).
bool inherited(const FieldCheck& fc);
bool isInherited(const Resource& r, const std::string& path);
// The policy fields with their checks: security.*, shaping.*, and teaming under `teamingPrefix`
// ("uplinks.teaming." on a Switch, "teaming." on a PortGroup).
std::vector<FieldRule> policyFieldRules(bool onSwitch);
// Checks across one policy block: shaping complete and peak >= average; active and standby disjoint.
void checkPolicyBlocks(const Resource& r, const std::string& teamingPrefix, Diagnostics& diags);
// A physical NIC name esxcli can take in a comma-separated list (vmnic0, vusb0, ...).
bool validNicName(const std::string& n);
void checkNicList(const FieldCheck& fc);
void checkMtu(const FieldCheck& fc);

// ---- the portable vocabulary <-> esxcli (policy.cpp)

// Load balancing: portable policy -> `set` spelling (portid, mac, iphash, explicit); "" if ESXi has none.
std::string esxcliLoadBalancing(const std::string& policy);
// `get` spelling (srcport, srcmac, iphash, explicit; also the `set` ones) -> portable policy.
std::string portableLoadBalancing(const std::string& shown);
// Shaping burst: the portable KiB (kibibytes) is 8 esxcli Kib (kibibits); a Kib count that is not a whole number
// of KiB is reported as a fraction, so it never compares equal to a manifest's integer.
Json burstKiBOf(int64_t kib);

// Live policies as attributes. `prefix` of teaming: "uplinks.teaming." or "teaming.".
void securityAttrs(const Security& s, Attrs& out);
void failoverAttrs(const Failover& f, const std::string& prefix, Attrs& out);
void shapingAttrs(const Shaping& s, Attrs& out);

// `policy ... set` arguments for the values in `a` (fields absent from `a` are left out).
std::vector<std::string> securitySetArgs(const Attrs& a, bool portGroup);
std::vector<std::string> failoverSetArgs(const Attrs& a, const std::string& prefix);
std::vector<std::string> shapingSetArgs(const Attrs& a);

// Whether a step changes `path` or anything below it ("security" matches "security.allowPromiscuous").
bool changed(const Step& step, const std::string& path);
// Whether `a` has `path` or anything below it.
bool hasUnder(const Attrs& a, const std::string& prefix);
std::string boolText(bool b);
std::string joinComma(const std::vector<std::string>& v);

// Port group policies in the manifest that came from the vSwitch are dropped (ESXi inherits them itself); a
// partly explicit shaping or uplink order becomes a whole override, as ESXi stores it.
void normalizeGroupPolicies(Resource& r);

}  // namespace vnetplan::esxi
