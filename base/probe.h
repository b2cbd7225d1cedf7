// Connectivity probes for `apply --confirm-timeout --probe SPEC`: the change is kept only if every probe
// succeeds (or `vnetplan confirm` is run) before the deadline, like `netplan try`.
#pragma once
#include <chrono>
#include <string>

#include "base/result.h"

namespace vnetplan {

struct Probe {
  enum class Type { Tcp, Icmp } type = Type::Tcp;
  std::string host;
  int port = 0;
  std::string spec;  // as given
};

// "tcp:HOST:PORT" or "icmp:HOST" (HOST: IPv4/IPv6 literal or a name; IPv6 with a port as [addr]:port).
Result<Probe> parseProbe(const std::string& spec);
// One attempt, bounded by `timeout`, in the calling thread's network namespace (a provider runs it where the
// target's traffic is: TargetSession::probe). ICMP: only an echo reply from the probed address carrying this
// probe's identifier and sequence counts.
Status runProbe(const Probe& p, std::chrono::milliseconds timeout);

}  // namespace vnetplan
