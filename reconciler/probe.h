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
// One attempt, bounded by `timeout`.
Status runProbe(const Probe& p, std::chrono::milliseconds timeout);

}  // namespace vnetplan
