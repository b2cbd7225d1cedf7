// IP prefixes: parsing, canonical text and overlap, for normalization and lint.
#pragma once
#include <array>
#include <optional>
#include <string>

namespace vnetplan {

struct IpPrefix {
  int family = 0;  // AF_INET or AF_INET6
  std::array<unsigned char, 16> addr{};
  int prefixLen = 0;
  std::string str() const;         // canonical "10.0.0.1/24", "2001:db8::1/64"
  std::string addressStr() const;  // without the prefix length
  bool contains(const IpPrefix& other) const;  // other's address inside this network
  bool overlaps(const IpPrefix& other) const;  // the two networks share addresses
};

std::optional<IpPrefix> parsePrefix(const std::string& text);   // "a/len"
std::optional<IpPrefix> parseAddress(const std::string& text);  // "a" (full-length prefix)

}  // namespace vnetplan
