// A route-netlink socket on top of libnl-3: one request at a time, its ack awaited, the kernel's real errno
// and extended-ack message kept (libnl's own helpers fold errnos into NLE_* codes, which loses "File exists").
#pragma once
#include <linux/netlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"

namespace vnetplan {

struct NlMsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using NlMsg = std::unique_ptr<nl_msg, NlMsgFree>;

// A fresh message with NLM_F_REQUEST | NLM_F_ACK | flags (sequence number filled on send).
NlMsg newMsg(int type, int flags);

// The outcome of one request.
struct NlOutcome {
  int errnum = 0;       // the kernel's errno (positive) when it refused the request
  std::string message;  // empty = success; otherwise "File exists" or "Invalid argument (kernel: ...)"
  bool inconsistent = false;  // dump only: still flagged interrupted after every retry (see dump())
  int retries = 0;            // dump only: how many times it was read again because the kernel flagged it interrupted
  bool ok() const { return message.empty(); }
};

class NlSocket {
 public:
  using Handler = std::function<void(const nlmsghdr*)>;

  // A netlink socket (NETLINK_ROUTE unless said) bound to the calling thread's network namespace (for the
  // socket's lifetime).
  static Result<std::unique_ptr<NlSocket>> open(int protocol = NETLINK_ROUTE);
  // ... bound to the network namespace `nsFd` (-1: the caller's).
  static Result<std::unique_ptr<NlSocket>> openIn(int nsFd, int protocol = NETLINK_ROUTE);
  ~NlSocket();
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;

  // Sends `msg` and waits for the kernel's ack or error. Other replies (an NLM_F_ECHO copy, the answer of a
  // GET) are passed to `onReply`.
  NlOutcome request(nl_msg* msg, const Handler& onReply = {});
  // Sends a dump request and passes every message to `onMsg`. If the kernel flags the dump as interrupted
  // (the table changed meanwhile), `reset` is called and the dump is repeated a few times with a short
  // back-off. A table that never holds still (thousands of links running IPv6 DAD at once) yields the last
  // dump, marked `inconsistent`: a snapshot of some moment during the read, which the engine's verify
  // (re-observe with bounded retry) tolerates, rather than no answer at all.
  NlOutcome dump(nl_msg* msg, const Handler& onMsg, const std::function<void()>& reset);

 private:
  NlSocket() = default;
  NlOutcome exchange(nl_msg* msg, const Handler& onReply, bool* interrupted);
  // One exchange at a time: threads that share a socket (an observe building objects on every core) take turns,
  // so no thread reads another's replies. Handlers must not use the socket they are called from.
  std::mutex mu_;
  nl_sock* sk_ = nullptr;
  static constexpr size_t kBufSize = 4 << 20;
  std::unique_ptr<char[]> buf_{new char[kBufSize]};  // replies are read here (only the pages used are touched)
};

}  // namespace vnetplan
