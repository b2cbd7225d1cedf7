// The uplink part of a Switch (uplinks.nics, uplinks.teaming.*, linux.bond.*): one NIC enslaved to the bridge,
// or a bond of several with the portable teaming policy mapped onto a bond mode. A NIC is taken over as it is
// (adopted by nature: vnetplan did not make it) and, when it leaves the switch, released as it was: its MTU and
// link state are recorded on the NIC itself first (records.h) and restored from there.
#pragma once
#include <string>
#include <vector>

#include "providers/linux/kind.h"

namespace vnetplan::lnx {

class LinuxSession;

std::vector<FieldRule> uplinkFields();
bool uplinkPath(const std::string& path);
void checkUplinks(const Resource& r, const Target& t, Diagnostics& diags);
void normalizeUplinks(Resource& r);
void describeUplinks(const Step& step, std::vector<std::string>& parts);

// uplinks.nics and the bond's settings (every one; null where there is no bond), and the smallest uplink MTU.
void observeUplinks(LinuxSession& s, const LinkInfo& bridge, Attrs& a, uint32_t* uplinkMtu);
// After the bridge exists: takes the NICs over (directly or in a new bond).
Status createUplinks(LinuxSession& s, const Step& step, int bridgeIndex);
// The uplink attributes among step.changed, and `mtu` (the uplinks carry the switch's MTU).
Status updateUplinks(LinuxSession& s, const Step& step, int bridgeIndex);
// Before the bridge goes: releases every NIC as it was and deletes the bond.
Status removeUplinks(LinuxSession& s, const Step& step, int bridgeIndex);

}  // namespace vnetplan::lnx
