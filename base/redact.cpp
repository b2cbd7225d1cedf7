#include "base/redact.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace vnetplan {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

std::string redactCredentials(std::string_view in) {
  std::string s(in);
  // userinfo: everything between the scheme ("x://" or "tcp:"/"ssl:") and the last '@' of the authority. A
  // string without a scheme ("ops@example") is not a connection string and stays as it is.
  size_t authority = std::string::npos;
  if (size_t p = s.find("://"); p != std::string::npos) {
    authority = p + 3;
  } else if (size_t c = s.find(':'); c != std::string::npos && c > 0) {
    const bool scheme = std::all_of(s.begin(), s.begin() + static_cast<long>(c), [](unsigned char ch) {
      return std::isalpha(ch) || ch == '+' || ch == '-' || ch == '.';
    });
    if (scheme) authority = c + 1;
  }
  if (authority != std::string::npos) {
    size_t end = s.find_first_of("/?#", authority);
    size_t at = s.rfind('@', end == std::string::npos ? std::string::npos : end);
    if (at != std::string::npos && at >= authority) s = s.substr(0, authority) + "***" + s.substr(at);
  }
  // query parameters that carry secrets
  static const std::array<std::string_view, 7> kSecretKeys{"password", "passwd", "pass", "token", "secret",
                                                           "key", "auth"};
  size_t q = s.find('?');
  while (q != std::string::npos && q + 1 < s.size()) {
    size_t start = q + 1;
    size_t eq = s.find('=', start);
    size_t amp = s.find('&', start);
    if (eq == std::string::npos || (amp != std::string::npos && amp < eq)) {
      q = amp;
      continue;
    }
    std::string key = lower(std::string_view(s).substr(start, eq - start));
    bool secret = std::any_of(kSecretKeys.begin(), kSecretKeys.end(),
                              [&](std::string_view k) { return key.find(k) != std::string::npos; });
    if (secret) {
      size_t valueEnd = amp == std::string::npos ? s.size() : amp;
      s = s.substr(0, eq + 1) + "***" + s.substr(valueEnd);
      amp = s.find('&', eq);
    }
    q = amp;
  }
  return s;
}

}  // namespace vnetplan
