#include "providers/linux/values.h"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <netinet/in.h>

#include <cstdio>
#include <vector>

namespace vnetplan::lnx {

namespace {

std::string nameProblem(std::string_view name, size_t maxLen) {
  if (name.empty()) return "it is empty";
  if (name.size() > maxLen) return "it is " + std::to_string(name.size()) + " bytes long (at most " +
                                   std::to_string(maxLen) + ")";
  if (name == "." || name == "..") return "'" + std::string(name) + "' is not allowed";
  for (unsigned char c : name) {
    if (c == '/') return "it contains '/'";
    if (c == ':') return "it contains ':'";
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') return "it contains whitespace";
    if (c < 0x20 || c == 0x7f) return "it contains a control character";
    if (c >= 0x80) return "it contains a non-ASCII byte";
    // The kernel would take more, but shells, udev rules and `ip` output do not: keep names boring.
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                 c == '_';
    if (!plain)
      return std::string("it contains '") + static_cast<char>(c) +
             "' (names use letters, digits, '.', '-' and '_' only)";
  }
  if (name.front() == '-') return "it starts with '-' (it would read as an option to other tools)";
  return "";
}

}  // namespace

std::string ifnameProblem(std::string_view name) { return nameProblem(name, 15); }

std::string netnsNameProblem(std::string_view name) { return nameProblem(name, 255); }


std::optional<Mac> parseMac(std::string_view text, std::string* why) {
  auto fail = [&](std::string msg) -> std::optional<Mac> {
    if (why) *why = std::move(msg);
    return std::nullopt;
  };
  auto hex = [](char ch) -> int {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
  };
  if (text.size() != 17) return fail("it is not six hex octets separated by ':' (e.g. 52:54:00:12:34:56)");
  Mac m{};
  for (size_t i = 0; i < 6; ++i) {
    int hi = hex(text[i * 3]), lo = hex(text[i * 3 + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[i * 3 + 2] != ':'))
      return fail("it is not six hex octets separated by ':' (e.g. 52:54:00:12:34:56)");
    m[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  if (m[0] & 1) return fail("it is a multicast address (lowest bit of the first octet set)");
  bool zero = true;
  for (auto b : m) zero = zero && b == 0;
  if (zero) return fail("it is all zeros");
  return m;
}

std::string formatMac(const uint8_t* bytes, size_t len) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, i ? ":%02x" : "%02x", bytes[i]);
    out += buf;
  }
  return out;
}

namespace {

std::optional<int64_t> decimalId(const std::string& s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n < 4294967295LL ? std::optional<int64_t>(n) : std::nullopt;
}

}  // namespace

std::optional<int64_t> lookupUserId(const std::string& nameOrId) {
  if (auto id = decimalId(nameOrId)) return id;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(nameOrId.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) return std::nullopt;
  return static_cast<int64_t>(found->pw_uid);
}

std::optional<int64_t> lookupGroupId(const std::string& nameOrId) {
  if (auto id = decimalId(nameOrId)) return id;
  std::vector<char> buf(16384);
  group gr{};
  group* found = nullptr;
  if (::getgrnam_r(nameOrId.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || !found) return std::nullopt;
  return static_cast<int64_t>(found->gr_gid);
}

}  // namespace vnetplan::lnx
