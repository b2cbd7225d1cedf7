// Network I/O control of a Switch (DESIGN §2 `nioc`, seed 001) as an HTB tree on the switch's uplink (its one
// NIC, or its bond), made through libnl-route (rtnl_htb_*):
//
//   1:     root HTB qdisc, default class 1:10 (virtualmachine: a VM port no rule classifies)
//   1:1    the uplink: rate = ceil = uplinkMbps
//   1:1N   one leaf per declared class (virtualmachine always), N fixed per class (kNiocClasses):
//            reservationMbps -> rate (guaranteed; 0 = 1 kbit/s, HTB needs a rate)
//            limitMbps       -> ceil (absent = uplinkMbps)
//            shares          -> quantum = shares x 1514 bytes (one full frame per share and round)
//
// Why quantum for shares: HTB lends what the uplink has beyond the leaves' rates to the leaves that want more,
// round-robin among leaves of one priority, each taking `quantum` bytes per round, so the excess divides in
// proportion to quantum. Priorities would give it all to one class first, and rates are the reservations.
//
// A Port's traffic gets its class by `niocClass` (tap and veth): a bridge-family nftables table of its own,
// `bridge vnp-nioc-<port>`, sets skb->priority to the class id (`iifname P meta priority set 1:1N`), which HTB
// classifies by (DESIGN §7). `virtualmachine` needs no rule: it is the default class.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "providers/linux/kind.h"

namespace vnetplan::lnx {

struct NiocClass {
  const char* name;
  unsigned minor;
};
const std::vector<NiocClass>& niocClasses();
const NiocClass* niocClass(const std::string& name);

// ---- the Switch
std::vector<FieldRule> niocFields();
bool niocPath(const std::string& path);
void checkNioc(const Resource& r, Diagnostics& diags);
// Shares in numbers, the defaults of declared classes, null for what is not declared (so that taking a class or
// the whole nioc out of the manifests removes it); `enabled: false` is no nioc.
void normalizeNioc(Resource& r);
// During observe: nioc.* of the switch `bridge`, read back from the HTB tree on its uplink (none: no tree).
void observeNioc(LinuxSession& s, const LinkInfo& bridge, Attrs& a);
// Leaves the switch's uplink with the tree `a` asks for (none when nioc is off); `formerUplink` (0 = none) is an
// uplink the switch had before this step whose tree goes.
Status syncNioc(LinuxSession& s, const std::string& sw, const Attrs& a, int bridgeIndex, int formerUplink = 0);
// The ifindex of the switch's uplink device (its one NIC or its bond), 0 if it has none.
int niocDevice(LinuxSession& s, int bridgeIndex);
// Removes vnetplan's HTB tree from a device, if it has one.
Status dropNioc(LinuxSession& s, const std::string& sw, int device);

// ---- the Port
void checkNiocClassField(const FieldCheck& fc);
// A PortGroup's niocClass: a known class. Its ports inherit it (the builder), and it is enforced on them.
void checkGroupNiocClassField(const FieldCheck& fc);
// Across a target's resources: a port's class must be one its switch's tree has (else HTB would put its traffic
// in the default class without a word).
void checkNiocClasses(const std::vector<const Resource*>& resources, Diagnostics& diags);
// Stages the port's classification table as `a` asks (none for no class or virtualmachine).
Status syncNiocClass(LinuxSession& s, const std::string& port, const Attrs& a);
Status dropNiocClass(LinuxSession& s, const std::string& port);
// During observe: niocClass of a port with a classification table.
void observeNiocClass(LinuxSession& s, const std::string& port, Attrs& a);

}  // namespace vnetplan::lnx
