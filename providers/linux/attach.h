// Where a Port sits: the bridge it is enslaved to and, on a VLAN-filtering bridge, its VLAN entries, for a port on
// a Switch (`switch`, optionally with its own `vlan`) or in a PortGroup (`portGroup`, whose shape decides: a VLAN
// of the switch's bridge, or the port group's own bridge). Shared by every Port type that can be a bridge port,
// the PortGroup (which moves its members) and the Switch (whose uplinks carry every VLAN in use).
#pragma once
#include <optional>
#include <string>

#include "providers/linux/kind.h"
#include "providers/linux/vlans.h"

namespace vnetplan::lnx {

class LinuxSession;

// The attachment `a` (a Port's desired or pre-image attributes) asks for. `prepare`: turn on the switch's VLAN
// filtering where the port needs a VLAN of it (apply time); without it, a missing switch or port group is not an
// error (a delete's pre-image may name one that is gone).
Result<Attachment> attachmentOf(LinuxSession& s, const KindOps& ops, const std::string& port, const Attrs& a,
                                bool prepare);
// After the port was enslaved (or detached) as `now` says: its VLAN entries, its switch's uplinks, and the uplink
// VLANs of `before`'s switch that no one uses any more.
Status settleAttachment(LinuxSession& s, const KindOps& ops, const std::string& port, int ifindex,
                        const Attachment& now, const std::optional<Attachment>& before);
// A port that is gone: forgets it and drops the uplink VLANs only it used.
Status forgetAttachment(LinuxSession& s, const KindOps& ops, const std::string& port, int ifindex,
                        const Attachment& before);

// The VLAN-filtering state of a Switch's bridge: turned on for port groups and VLAN ports when it is off (and
// recorded as turned on for them), back off when none of them is left.
Status ensureVlanFiltering(LinuxSession& s, const KindOps& ops, int switchIndex);
Status releaseVlanFiltering(LinuxSession& s, const KindOps& ops, int switchIndex);
// A VLAN-aware switch's uplinks carry the native VLAN untagged and every VLAN in use tagged, nothing else.
Status syncUplinkVlans(LinuxSession& s, const KindOps& ops, int switchIndex);
// Sets IFLA_BR_VLAN_FILTERING of a bridge.
Status setVlanFiltering(LinuxSession& s, const KindOps& ops, int bridgeIndex, bool on);

}  // namespace vnetplan::lnx
