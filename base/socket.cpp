#include "base/socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vnetplan {

int msUntil(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

Status waitReady(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, msUntil(deadline));
    if (n > 0) return {};
    if (n == 0) return err("timed out");
    if (errno != EINTR) return err("poll: " + errnoText(errno));
  }
}

namespace {

Result<UniqueFd> connectAddr(int family, const sockaddr* addr, socklen_t len, Deadline deadline) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return err("socket: " + errnoText(errno));
  if (::connect(fd.get(), addr, len) == 0) return fd;
  if (errno != EINPROGRESS && errno != EAGAIN) return Error{errnoText(errno), errno};
  if (Status st = waitReady(fd.get(), POLLOUT, deadline); !st) return st.error();
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &sl);
  if (soerr != 0) return Error{errnoText(soerr), soerr};
  return fd;
}

}  // namespace

Result<StreamSocket> StreamSocket::connectTcp(const std::string& host, int port, Deadline deadline) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0)
    return err("cannot resolve " + host + ": " + gai_strerror(rc));
  Result<UniqueFd> fd = err("no address");
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = connectAddr(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline);
    if (fd.ok()) break;
  }
  ::freeaddrinfo(res);
  if (!fd) return fd.error();
  return StreamSocket(std::move(*fd));
}

Result<StreamSocket> StreamSocket::connectUnix(const std::string& path, Deadline deadline) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa.sun_path)
    return err("unix socket path must be 1.." + std::to_string(sizeof sa.sun_path - 1) + " bytes");
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  auto fd = connectAddr(AF_UNIX, reinterpret_cast<sockaddr*>(&sa), sizeof sa, deadline);
  if (!fd) return fd.error();
  return StreamSocket(std::move(*fd));
}

Status StreamSocket::sendAll(const std::string& bytes, Deadline deadline) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (Status st = waitReady(fd_.get(), POLLOUT, deadline); !st) return st.error();
      continue;
    }
    return Error{"connection lost while sending: " + errnoText(errno), errno};
  }
  return {};
}

Result<size_t> StreamSocket::recvSome(char* buf, size_t len, Deadline deadline) {
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, len, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Error{"connection lost: " + errnoText(errno), errno};
    if (Status st = waitReady(fd_.get(), POLLIN, deadline); !st) return st.error();
  }
}

}  // namespace vnetplan
