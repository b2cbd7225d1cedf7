// A connected stream socket (TCP or unix) whose every operation has a deadline: the one piece of socket code
// that the OVSDB and OpenFlow clients and the connectivity probes share.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

#include "base/fd.h"
#include "base/result.h"

namespace vnetplan {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

// Milliseconds left until `deadline` (0 when passed), for poll(2).
int msUntil(Deadline deadline);
// Waits until `fd` is ready for `events` (POLLIN/POLLOUT). Errors: "timed out" or the poll errno text.
Status waitReady(int fd, short events, Deadline deadline);

class StreamSocket {
 public:
  // Connects to HOST:PORT (every address the name resolves to, in order) or to a unix socket path, before
  // `deadline`. Errors are short ("cannot resolve HOST: ...", "connection refused", "timed out"); callers add who
  // they were connecting to.
  static Result<StreamSocket> connectTcp(const std::string& host, int port, Deadline deadline);
  static Result<StreamSocket> connectUnix(const std::string& path, Deadline deadline);

  int fd() const { return fd_.get(); }
  // Sends every byte (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
  Status sendAll(const std::string& bytes, Deadline deadline);
  // Receives what is available (waiting for at least one byte): the byte count, 0 when the peer closed.
  Result<size_t> recvSome(char* buf, size_t len, Deadline deadline);

 private:
  explicit StreamSocket(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace vnetplan
