#include "base/netaddr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace vnetplan {

size_t IpPrefix::addrLen() const { return family == AF_INET ? 4 : 16; }

std::string IpPrefix::addressStr() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (!inet_ntop(family, addr.data(), buf, sizeof buf)) return "?";
  return buf;
}

std::string IpPrefix::str() const { return addressStr() + "/" + std::to_string(prefixLen); }

std::string formatPrefix(int family, const void* addr, int prefixLen) {
  IpPrefix p;
  p.family = family;
  std::memcpy(p.addr.data(), addr, p.addrLen());
  p.prefixLen = prefixLen;
  return p.str();
}

static bool samePrefix(const IpPrefix& a, const IpPrefix& b, int len) {
  int full = len / 8, rest = len % 8;
  if (std::memcmp(a.addr.data(), b.addr.data(), static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a.addr[static_cast<size_t>(full)] & mask) == (b.addr[static_cast<size_t>(full)] & mask);
}

bool IpPrefix::contains(const IpPrefix& other) const {
  return family == other.family && samePrefix(*this, other, prefixLen);
}

bool IpPrefix::overlaps(const IpPrefix& other) const {
  return family == other.family && samePrefix(*this, other, std::min(prefixLen, other.prefixLen));
}

bool IpPrefix::isIpv6LinkLocal() const { return family == AF_INET6 && addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80; }

IpPrefix IpPrefix::network() const {
  IpPrefix n = *this;
  for (size_t i = 0; i < addrLen(); ++i) {
    int bits = std::clamp(prefixLen - static_cast<int>(i) * 8, 0, 8);
    n.addr[i] &= static_cast<unsigned char>(bits == 0 ? 0 : 0xff << (8 - bits));
  }
  return n;
}

std::optional<IpPrefix> parseAddress(std::string_view text) {
  IpPrefix p;
  std::string host(text);
  if (inet_pton(AF_INET, host.c_str(), p.addr.data()) == 1) {
    p.family = AF_INET;
    p.prefixLen = 32;
    return p;
  }
  if (inet_pton(AF_INET6, host.c_str(), p.addr.data()) == 1) {
    p.family = AF_INET6;
    p.prefixLen = 128;
    return p;
  }
  return std::nullopt;
}

std::optional<IpPrefix> parsePrefix(std::string_view text, std::string* why) {
  auto fail = [&](std::string msg) -> std::optional<IpPrefix> {
    if (why) *why = std::move(msg);
    return std::nullopt;
  };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return fail("it has no prefix length (write e.g. 10.0.0.1/24)");
  std::string_view host = text.substr(0, slash), len = text.substr(slash + 1);
  auto p = parseAddress(host);
  if (!p) return fail("'" + std::string(host) + "' is not an IPv4 or IPv6 address");
  if (len.empty() || len.size() > 3) return fail("'" + std::string(len) + "' is not a prefix length");
  int prefix = 0;
  for (char ch : len) {
    if (ch < '0' || ch > '9') return fail("'" + std::string(len) + "' is not a prefix length");
    prefix = prefix * 10 + (ch - '0');
  }
  if (prefix > p->prefixLen)
    return fail("prefix length " + std::to_string(prefix) + " is above " + std::to_string(p->prefixLen));
  p->prefixLen = prefix;
  return p;
}

}  // namespace vnetplan
