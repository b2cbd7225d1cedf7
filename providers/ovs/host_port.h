// The kernel side of OVS internal ports (host interfaces): admin state (`up`) and `addresses`, which OVSDB does
// not hold. They are read and set over route netlink in the namespace where ovs-vswitchd makes its devices
// (Target.spec.netns; the host's by default), on the device whose ifindex ovs-vswitchd reports for the
// Interface (Interface.ifindex) and whose name is the port's: a device of that name elsewhere is never touched.
// Managed only where a manifest sets them (KindTraits::managedOnlyWhenSet).
#pragma once
#include <memory>
#include <string>

#include "base/netlink.h"
#include "base/result.h"
#include "model/step.h"
#include "providers/ovs/db.h"

namespace vnetplan::ovs {

class HostPorts {
 public:
  // `netns`: the named namespace (/run/netns/NAME) of ovs-vswitchd's devices; empty = this process's.
  explicit HostPorts(std::string netns) : netns_(std::move(netns)) {}

  // Adds `up` and `addresses` to every internal Port of `obs` whose kernel device is found. Nothing is read when
  // there is no internal port.
  Status observe(const Snapshot& snap, Observation& obs);
  // True when the step sets the kernel side of an internal port.
  static bool touches(const Step& step);
  // Sets what `step` changes of `up` / `addresses` (after ovs-vswitchd has made the device: `snap` is read after
  // the commit). Addresses are removed before others are added.
  Status apply(const Snapshot& snap, const Step& step);

 private:
  Result<NlSocket*> socket();
  std::string where() const;
  std::string netns_;
  std::unique_ptr<NlSocket> sock_;
};

}  // namespace vnetplan::ovs
