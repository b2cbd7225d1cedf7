// Traffic shaping of a tap or veth Port (DESIGN §2 `shaping`, inherited Switch -> PortGroup -> Port) as a TBF root
// qdisc on the port, through libnl-route. It shapes what the port sends, i.e. the traffic towards the guest:
//   averageKbps -> rate (bytes/s = kbps * 125, exact both ways)
//   burstKiB    -> bucket (bytes = KiB * 1024; the kernel keeps it as time at that rate: read back to the KiB)
//   peakKbps    -> peakrate (bytes/s = kbps * 125), with a minimum burst of one MTU-sized frame
// The queue holds 50 ms at the average rate beyond the bucket (TBF needs a limit).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "providers/linux/kind.h"

namespace vnetplan::lnx {

void checkShapingField(const FieldCheck& fc);
bool shapingPath(const std::string& path);
void checkShaping(const Resource& r, Diagnostics& diags);
// Leaves the port's root qdisc as `a` asks: a TBF, or the kernel's default (no root qdisc of ours).
Status syncShaping(LinuxSession& s, const std::string& port, const Attrs& a);
// Every root TBF qdisc of the namespace by ifindex ({kind: tbf, rate, bucket, peak}, bytes) and every root HTB
// ({kind: htb, handle}: NIOC trees, nioc.h), for LinuxSession::qdiscs().
Result<std::map<int, Json>> dumpTbfQdiscs(NlSocket& sock);
// One tc dump (`type` RTM_GETQDISC, RTM_GETTCLASS, ...; of the link `ifindex`, or of every link when 0): each
// message is parsed by libnl-route into its object and handed to `onObject` with `arg` (nl_msg_parse); `reset`
// runs when an interrupted dump starts over.
NlOutcome dumpTc(NlSocket& sock, int type, int ifindex, void (*onObject)(nl_object*, void*), void* arg,
                 const std::function<void()>& reset);
// During observe: shaping.* of a port with a TBF root qdisc.
void observeShaping(LinuxSession& s, const LinkInfo& l, Attrs& a);

}  // namespace vnetplan::lnx
