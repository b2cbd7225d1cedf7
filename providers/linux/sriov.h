// SR-IOV: a physical function's (PF's) virtual functions (VFs) as the kernel shows them (IFLA_VFINFO_LIST of the
// PF's link, asked for with RTEXT_FILTER_VF) and sets them (one IFLA_VF_* attribute per RTM_SETLINK, so that a
// refusal names the one setting the driver refused), and the PF's VF count (sriov_numvfs in sysfs: the kernel
// has no netlink for it). The PF's sysfs device is found through the link's parent device
// (IFLA_PARENT_DEV_BUS_NAME / IFLA_PARENT_DEV_NAME, Linux >= 5.15): /sys/class/net is the view of the namespace
// that mounted /sys, not of the target's, while /sys/bus/<bus>/devices/<dev> is the same from every namespace.
//
// What vnetplan records, as altnames of the PF (records.h explains why altnames):
//   vnpsvf.<vf>.<pre-image>.<port>   VF <vf> is the vf Port <port>; <pre-image> is the VF as it was before
//                                    vnetplan configured it (restored when the Port goes): mac (12 hex), vlan,
//                                    qos, min rate, max rate, spoofchk, trust, link state, '.'-separated.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/netlink.h"

namespace vnetplan::lnx {

struct LinkInfo;

// One VF's settings; -1 = the kernel did not report it.
struct VfConfig {
  int vf = 0;
  std::string mac = "00:00:00:00:00:00";
  int vlan = 0, qos = 0;
  uint16_t vlanProto = 0x8100;
  int64_t minRate = 0, maxRate = 0;  // Mbps
  int spoofchk = -1, trust = -1;
  int linkState = 0;  // IFLA_VF_LINK_STATE_AUTO / ENABLE / DISABLE
  bool operator==(const VfConfig&) const = default;
};

const char* linkStateName(int state);           // "auto", "enable", "disable"
std::optional<int> linkStateOf(std::string_view name);

// The PF's VF table (RTM_GETLINK of `pf` with RTEXT_FILTER_VF), by VF index.
Result<std::vector<VfConfig>> readVfs(NlSocket& sock, const std::string& pf);

// Which VF setting a request carries.
enum class VfField { Mac, Vlan, Rate, Spoofchk, Trust, LinkState };
const char* vfFieldName(VfField f);  // the manifest field: "mac", "vlan", "shaping", ...
// Sets one setting of VF `c.vf` of `pf` to c's value.
NlOutcome setVf(NlSocket& sock, const std::string& pf, VfField field, const VfConfig& c);
// Sets every setting where `want` differs from `have` (or all when `have` is null); stops at the first refusal
// and says which setting it was in `*failed`.
NlOutcome setVfDiff(NlSocket& sock, const std::string& pf, const VfConfig& want, const VfConfig* have,
                    VfField* failed = nullptr);

// The PF record.
std::string vfRecord(const VfConfig& pre, const std::string& port);
struct VfRecord {
  VfConfig pre;
  std::string port;
};
std::optional<VfRecord> parseVfRecord(std::string_view alt);

// ---- the PF's device in sysfs
struct PciDevice;
struct PfDevice {
  std::string dir;     // /sys/bus/<bus>/devices/<dev> ("" when the link has no parent device)
  std::string driver;  // the bound driver's name ("" when none)
  bool sriov = false;  // has sriov_numvfs
};
// Where the PF's device lives (from the parent device the link dump reported).
PfDevice pfDevice(const LinkInfo& link);
// The driver or kind to name in messages about `link`: its device's driver, else its kind ("veth"), else "".
std::string driverOf(const LinkInfo& link);
Result<int> readNumVfs(const PfDevice& d);
// Writes sriov_numvfs (the kernel refuses N -> M with both non-zero: callers go through 0 themselves).
Status writeNumVfs(const PfDevice& d, int n);

// sysfs helpers shared with PCI passthrough.
std::optional<std::string> readSysfs(const std::string& path);
Status writeSysfs(const std::string& path, const std::string& value);
std::string linkTarget(const std::string& path);  // basename of a symlink's target ("" when not a link)

}  // namespace vnetplan::lnx
