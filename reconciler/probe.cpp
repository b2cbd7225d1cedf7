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

#include "base/fd.h"
#include "base/socket.h"

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

struct AddrInfo {
  addrinfo* ai = nullptr;
  ~AddrInfo() {
    if (ai) freeaddrinfo(ai);
  }
};

Status tcpProbe(const Probe& p, std::chrono::milliseconds timeout) {
  auto sock = StreamSocket::connectTcp(p.host, p.port, SteadyClock::now() + timeout);
  if (!sock) return sock.error();
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
  // Unprivileged ICMP sockets when allowed, raw ones as root.
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP));
  bool raw = false;
  if (!s) {
    s.reset(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
    raw = true;
  }
  if (!s) return err("cannot open an ICMP socket: " + errnoText(errno));
  unsigned char pkt[16] = {8, 0, 0, 0, 0x76, 0x6e, 0, 1, 'v', 'n', 'e', 't', 'p', 'l', 'a', 'n'};
  uint16_t c = checksum(pkt, sizeof pkt);
  pkt[2] = static_cast<unsigned char>(c >> 8);
  pkt[3] = static_cast<unsigned char>(c & 0xff);
  if (::sendto(s.get(), pkt, sizeof pkt, 0, res.ai->ai_addr, res.ai->ai_addrlen) < 0) return err(errnoText(errno));
  const Deadline deadline = SteadyClock::now() + timeout;
  while (true) {
    if (Status w = waitReady(s.get(), POLLIN, deadline); !w) return err("no echo reply");
    unsigned char buf[1500];
    ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
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
