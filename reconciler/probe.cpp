#include "reconciler/probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace vnetplan {

Result<Probe> parseProbe(const std::string& spec) {
  Probe p;
  p.spec = spec;
  auto colon = spec.find(':');
  if (colon == std::string::npos) return err("probe '" + spec + "': expected tcp:HOST:PORT or icmp:HOST");
  std::string type = spec.substr(0, colon), rest = spec.substr(colon + 1);
  if (type == "icmp") {
    if (rest.empty()) return err("probe '" + spec + "': missing host");
    p.type = Probe::Type::Icmp;
    p.host = rest;
    return p;
  }
  if (type != "tcp") return err("probe '" + spec + "': unknown type '" + type + "' (tcp or icmp)");
  auto last = rest.rfind(':');
  if (last == std::string::npos || last + 1 >= rest.size()) return err("probe '" + spec + "': expected tcp:HOST:PORT");
  p.type = Probe::Type::Tcp;
  p.host = rest.substr(0, last);
  if (p.host.size() > 2 && p.host.front() == '[' && p.host.back() == ']') p.host = p.host.substr(1, p.host.size() - 2);
  const std::string port = rest.substr(last + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5)
    return err("probe '" + spec + "': bad port '" + port + "'");
  p.port = std::stoi(port);
  if (p.port < 1 || p.port > 65535 || p.host.empty()) return err("probe '" + spec + "': expected tcp:HOST:PORT");
  return p;
}

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

struct AddrInfo {
  addrinfo* ai = nullptr;
  ~AddrInfo() {
    if (ai) freeaddrinfo(ai);
  }
};

Status waitFor(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd pfd{fd, events, 0};
  int n = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (n == 0) return err("timed out");
  if (n < 0) return err(std::strerror(errno));
  return {};
}

Status tcpProbe(const Probe& p, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  AddrInfo res;
  int rc = getaddrinfo(p.host.c_str(), std::to_string(p.port).c_str(), &hints, &res.ai);
  if (rc != 0) return err(gai_strerror(rc));
  Fd s;
  s.fd = ::socket(res.ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.fd < 0) return err(std::strerror(errno));
  if (::connect(s.fd, res.ai->ai_addr, res.ai->ai_addrlen) != 0 && errno != EINPROGRESS) return err(std::strerror(errno));
  if (Status w = waitFor(s.fd, POLLOUT, timeout); !w) return w;
  int soerr = 0;
  socklen_t len = sizeof soerr;
  getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
  if (soerr != 0) return err(std::strerror(soerr));
  return {};
}

uint16_t checksum(const unsigned char* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>((data[i] << 8) | data[i + 1]);
  if (len % 2) sum += static_cast<uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

Status icmpProbe(const Probe& p, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  AddrInfo res;
  int rc = getaddrinfo(p.host.c_str(), nullptr, &hints, &res.ai);
  if (rc != 0) return err(std::string(gai_strerror(rc)) + " (icmp probes are IPv4)");
  Fd s;
  // Unprivileged ICMP sockets when allowed, raw ones as root.
  s.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
  bool raw = false;
  if (s.fd < 0) {
    s.fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    raw = true;
  }
  if (s.fd < 0) return err(std::string("cannot open an ICMP socket: ") + std::strerror(errno));
  unsigned char pkt[16] = {8, 0, 0, 0, 0x76, 0x6e, 0, 1, 'v', 'n', 'e', 't', 'p', 'l', 'a', 'n'};
  uint16_t c = checksum(pkt, sizeof pkt);
  pkt[2] = static_cast<unsigned char>(c >> 8);
  pkt[3] = static_cast<unsigned char>(c & 0xff);
  if (::sendto(s.fd, pkt, sizeof pkt, 0, res.ai->ai_addr, res.ai->ai_addrlen) < 0) return err(std::strerror(errno));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return err("no echo reply");
    if (Status w = waitFor(s.fd, POLLIN, left); !w) return err("no echo reply");
    unsigned char buf[1500];
    ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n <= 0) continue;
    size_t off = raw ? static_cast<size_t>((buf[0] & 0x0f) * 4) : 0;
    if (static_cast<size_t>(n) > off && buf[off] == 0) return {};  // echo reply
  }
}

}  // namespace

Status runProbe(const Probe& p, std::chrono::milliseconds timeout) {
  Status s = p.type == Probe::Type::Tcp ? tcpProbe(p, timeout) : icmpProbe(p, timeout);
  if (!s) return err("probe " + p.spec + ": " + s.error().message);
  return s;
}

}  // namespace vnetplan
