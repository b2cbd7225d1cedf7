// IP addresses and prefixes: parsing (with the reason a text is refused), canonical text and overlap. The one
// CIDR parser of the code base: manifests, lint, providers and observe all spell prefixes through it, so desired
// and observed values compare equal (IPv6 lowercase and compressed).
#pragma once
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace vnetplan {

struct IpPrefix {
  int family = 0;  // AF_INET or AF_INET6
  std::array<unsigned char, 16> addr{};
  int prefixLen = 0;
  size_t addrLen() const;          // 4 or 16
  std::string str() const;         // canonical "10.0.0.1/24", "2001:db8::1/64"
  std::string addressStr() const;  // without the prefix length
  bool contains(const IpPrefix& other) const;  // other's address inside this network
  bool overlaps(const IpPrefix& other) const;  // the two networks share addresses
  bool isIpv6LinkLocal() const;                // fe80::/10: the kernel manages those itself
  IpPrefix network() const;                    // host bits cleared ("10.0.0.0/24" for 10.0.0.1/24)
};

// "ADDR/LEN". On failure, nullopt and `*why` says why ("it has no prefix length (write e.g. 10.0.0.1/24)").
std::optional<IpPrefix> parsePrefix(std::string_view text, std::string* why = nullptr);
// "ADDR" (a full-length prefix).
std::optional<IpPrefix> parseAddress(std::string_view text);
// Canonical text of raw address bytes with a prefix length.
std::string formatPrefix(int family, const void* addr, int prefixLen);

}  // namespace vnetplan
