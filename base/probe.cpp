#include "base/probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/random.h>
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
  const auto* target = reinterpret_cast<const sockaddr_in*>(res.ai->ai_addr);
  // Unprivileged ICMP sockets when allowed (the kernel then sets the identifier and delivers only the replies
  // to it), raw ones as root (every ICMP message arrives: ours are told apart by identifier and sequence).
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP));
  bool raw = false;
  if (!s) {
    s.reset(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
    raw = true;
  }
  if (!s) return err("cannot open an ICMP socket: " + errnoText(errno));
  uint16_t id = 0, seq = 0;
  (void)!::getrandom(&id, sizeof id, 0);
  (void)!::getrandom(&seq, sizeof seq, 0);
  unsigned char pkt[16] = {8, 0, 0, 0, 0, 0, 0, 0, 'v', 'n', 'e', 't', 'p', 'l', 'a', 'n'};
  pkt[4] = static_cast<unsigned char>(id >> 8);
  pkt[5] = static_cast<unsigned char>(id & 0xff);
  pkt[6] = static_cast<unsigned char>(seq >> 8);
  pkt[7] = static_cast<unsigned char>(seq & 0xff);
  uint16_t c = checksum(pkt, sizeof pkt);
  pkt[2] = static_cast<unsigned char>(c >> 8);
  pkt[3] = static_cast<unsigned char>(c & 0xff);
  if (::sendto(s.get(), pkt, sizeof pkt, 0, res.ai->ai_addr, res.ai->ai_addrlen) < 0) return err(errnoText(errno));
  const Deadline deadline = SteadyClock::now() + timeout;
  while (true) {
    if (Status w = waitReady(s.get(), POLLIN, deadline); !w) return err("no echo reply");
    unsigned char buf[1500];
    sockaddr_in from{};
    socklen_t fromLen = sizeof from;
    ssize_t n = ::recvfrom(s.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fromLen);
    if (n <= 0) continue;
    // Only an echo reply from the probed address, to this probe, counts: any other ICMP traffic (another
    // ping, an error from a router on the way) confirms nothing.
    if (from.sin_addr.s_addr != target->sin_addr.s_addr) continue;
    size_t off = raw ? static_cast<size_t>((buf[0] & 0x0f) * 4) : 0;
    if (static_cast<size_t>(n) < off + 8 || buf[off] != 0) continue;
    const uint16_t gotSeq = static_cast<uint16_t>((buf[off + 6] << 8) | buf[off + 7]);
    const uint16_t gotId = static_cast<uint16_t>((buf[off + 4] << 8) | buf[off + 5]);
    if (gotSeq != seq || (raw && gotId != id)) continue;
    return {};
  }
}

}  // namespace

Status runProbe(const Probe& p, std::chrono::milliseconds timeout) {
  Status s = p.type == Probe::Type::Tcp ? tcpProbe(p, timeout) : icmpProbe(p, timeout);
  if (!s) return err("probe " + p.spec + ": " + s.error().message);
  return s;
}

}  // namespace vnetplan
