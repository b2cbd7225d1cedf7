// Value rules of the linux provider: interface and netns names, CIDR and MAC text.
//
// Shared by check() (plan time), normalize() and observe() so that desired and observed values are spelled
// the same way: addresses as canonical CIDR text (IPv6 lowercase and compressed), MACs lowercase.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/socket.h>

namespace vnetplan::lnx {

// Why `name` is not a valid Linux interface name ("" when it is valid): 1..15 bytes, not "." or "..",
// printable ASCII without '/', ':' or whitespace.
std::string ifnameProblem(std::string_view name);

// Why `name` is not a usable named network namespace (a file name below /run/netns): 1..255 bytes, not "."
// or "..", printable ASCII without '/', ':' or whitespace.
std::string netnsNameProblem(std::string_view name);

using Mac = std::array<uint8_t, 6>;
// Parses "aa:bb:cc:dd:ee:ff" (either case); rejects multicast and all-zero addresses.
std::optional<Mac> parseMac(std::string_view text, std::string* why);
std::string formatMac(const uint8_t* bytes, size_t len);

// A user or group id from a name or a decimal id (the local passwd/group databases); nullopt if unknown.
std::optional<int64_t> lookupUserId(const std::string& nameOrId);
std::optional<int64_t> lookupGroupId(const std::string& nameOrId);

}  // namespace vnetplan::lnx
