#include "reconciler/netaddr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace vnetplan {

std::string IpPrefix::addressStr() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(family, addr.data(), buf, sizeof buf);
  return buf;
}

std::string IpPrefix::str() const { return addressStr() + "/" + std::to_string(prefixLen); }

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

std::optional<IpPrefix> parseAddress(const std::string& text) {
  IpPrefix p;
  if (inet_pton(AF_INET, text.c_str(), p.addr.data()) == 1) {
    p.family = AF_INET;
    p.prefixLen = 32;
    return p;
  }
  if (inet_pton(AF_INET6, text.c_str(), p.addr.data()) == 1) {
    p.family = AF_INET6;
    p.prefixLen = 128;
    return p;
  }
  return std::nullopt;
}

std::optional<IpPrefix> parsePrefix(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos || slash + 1 >= text.size() || text.size() - slash > 4) return std::nullopt;
  auto p = parseAddress(text.substr(0, slash));
  if (!p) return std::nullopt;
  const std::string lenText = text.substr(slash + 1);
  if (!std::all_of(lenText.begin(), lenText.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  int len = std::stoi(lenText);
  if (len > p->prefixLen) return std::nullopt;
  p->prefixLen = len;
  return p;
}

}  // namespace vnetplan
