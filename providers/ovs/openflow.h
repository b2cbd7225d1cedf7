// A minimal OpenFlow 1.3 client for what OVSDB cannot express: the flows that put a port's traffic into its
// NIOC queue (set_queue, then NORMAL switching). It talks to ovs-vswitchd's per-bridge management socket
// (RUNDIR/BRIDGE.mgmt), and only ever touches flows carrying vnetplan's cookie.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/socket.h"

namespace vnetplan::ovs {

// "vnplan" + 0x0001: every flow vnetplan writes carries it; deletes are by this cookie only.
inline constexpr uint64_t kFlowCookie = 0x766e706c616e0001ULL;
inline constexpr uint16_t kQueueFlowPriority = 1000;

struct QueueFlow {
  uint32_t inPort = 0;  // OpenFlow port number (Interface.ofport)
  uint32_t queue = 0;
  bool operator==(const QueueFlow&) const = default;
  bool operator<(const QueueFlow& o) const { return inPort != o.inPort ? inPort < o.inPort : queue < o.queue; }
};

class OpenFlowChannel {
 public:
  // Connects to a unix socket and negotiates OpenFlow 1.3.
  static Result<std::unique_ptr<OpenFlowChannel>> open(const std::string& socketPath, std::chrono::milliseconds timeout);
  OpenFlowChannel(const OpenFlowChannel&) = delete;
  OpenFlowChannel& operator=(const OpenFlowChannel&) = delete;

  // The queue flows with vnetplan's cookie, sorted.
  Result<std::vector<QueueFlow>> queueFlows();
  // Makes the flows with vnetplan's cookie, `have` (as queueFlows() read them), equal `want`: changed ones
  // modified in place, new ones added, stale ones deleted last, then a barrier, so no wanted port is ever without
  // its flow. Refuses when a flow someone else made has the same match and priority as one of `want` (an add
  // would replace it).
  Status replaceQueueFlows(const std::vector<QueueFlow>& want, const std::vector<QueueFlow>& have);

 private:
  OpenFlowChannel(std::string path, StreamSocket sock, std::chrono::milliseconds timeout)
      : path_(std::move(path)), sock_(std::move(sock)), timeout_(timeout) {}
  Status send(const std::string& msg);
  // Reads the next message (answering echo requests); an OpenFlow error becomes an Error.
  Result<std::string> receive(std::chrono::steady_clock::time_point deadline);
  Error failure(const std::string& what) const;
  Result<std::vector<QueueFlow>> flows(bool ours);

  std::string path_;
  StreamSocket sock_;
  std::chrono::milliseconds timeout_;
  std::string buf_;
  uint32_t xid_ = 1;
};

}  // namespace vnetplan::ovs
