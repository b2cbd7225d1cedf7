// GCC 12 reports false positives in libstdc++ code inlined here at -O3 (-Wrestrict on std::string operator+,
// GCC PR 105651) and with sanitizers (-Wmaybe-uninitialized inside std::regex's std::function); both are compiler
// bugs in headers we do not own, and -Werror would otherwise break Release and sanitizer builds.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "reconciler/validation/text.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>

#include "base/redact.h"

namespace vnetplan::validation {

std::vector<std::string> splitPointer(const std::string& pointer) {
  std::vector<std::string> out;
  if (pointer.empty()) return out;
  size_t pos = 1;
  while (true) {
    size_t next = pointer.find('/', pos);
    std::string raw = pointer.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    std::string seg;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        seg += raw[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        seg += raw[i];
      }
    }
    out.push_back(std::move(seg));
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return out;
}

bool isIndex(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The child of `v` named by one pointer segment, or nullptr.
const Json* childOf(const Json* v, const std::string& seg) {
  if (!v) return nullptr;
  if (v->is_object()) {
    auto it = v->find(seg);
    return it == v->end() ? nullptr : &*it;
  }
  if (v->is_array() && isIndex(seg)) {
    size_t i = std::stoul(seg);
    return i < v->size() ? &(*v)[i] : nullptr;
  }
  return nullptr;
}

const Json* valueAt(const Json& body, const std::vector<std::string>& segs) {
  const Json* v = &body;
  for (const auto& s : segs) v = childOf(v, s);
  return v;
}

// User text echoed in a message: shortened, with control characters escaped so a diagnostic stays one line.
std::string truncated(const std::string& s, size_t max) {
  std::string out;
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80 && ++n > max) {
      out += "...";
      break;
    }
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool isPlainKey(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// "spec.vlan.trunk[0]", "metadata.labels['app.kubernetes.io/name']"; "" for the document itself.
std::string displayPath(const Json& body, const std::vector<std::string>& segs) {
  std::string out;
  const Json* v = &body;
  for (const auto& s : segs) {
    if (v && v->is_array()) {
      out += "[" + s + "]";
    } else if (isPlainKey(s)) {
      out += (out.empty() ? "" : ".") + s;
    } else {
      out += "['" + truncated(s) + "']";
    }
    v = childOf(v, s);
  }
  return out;
}

std::string formatNumber(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
  std::string s = std::to_string(d);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// How a value reads inside "(got ...)".
std::string gotValue(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string:
      return "'" + truncated(redactCredentials(v.get<std::string>())) + "'";
    case Json::value_t::array:
      return "a list";
    case Json::value_t::object:
      return "a mapping";
    case Json::value_t::null:
      return "an empty value";
    default:
      return truncated(v.dump());
  }
}

// Like gotValue, naming the type too: for type mismatches ("string '1500'").
std::string gotTyped(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string:
      return "string '" + truncated(redactCredentials(v.get<std::string>())) + "'";
    case Json::value_t::boolean:
      return "boolean " + v.dump();
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer " + v.dump();
    case Json::value_t::number_float:
      return "number " + v.dump();
    default:
      return gotValue(v);
  }
}

std::string quotedList(const std::vector<std::string>& names, const char* conj) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? std::string(" ") + conj + " " : ", ";
    out += "'" + names[i] + "'";
  }
  return out;
}

std::string typePhrase(const std::string& t) {
  if (t == "integer") return "an integer";
  if (t == "number") return "a number";
  if (t == "string") return "a string";
  if (t == "boolean") return "true or false";
  if (t == "object") return "a mapping";
  if (t == "array") return "a list";
  if (t == "null") return "null";
  return t;
}

bool valueHasType(const Json& v, const std::string& t) {
  if (t == "integer") return v.is_number_integer();  // strict, like valijson: 1.0 is not an integer
  if (t == "number") return v.is_number();
  if (t == "string") return v.is_string();
  if (t == "boolean") return v.is_boolean();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "null") return v.is_null();
  return false;
}

size_t utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// "10-20" -> {10, 20}
bool parseRange(const std::string& s, long long& a, long long& b) {
  auto dash = s.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 >= s.size()) return false;
  try {
    a = std::stoll(s.substr(0, dash));
    b = std::stoll(s.substr(dash + 1));
  } catch (...) {
    return false;
  }
  return true;
}

bool checkAddressFormat(const std::string& format, const std::string& s) {
  unsigned char buf[16];
  auto ip4 = [&](const std::string& a) { return inet_pton(AF_INET, a.c_str(), buf) == 1; };
  auto ip6 = [&](const std::string& a) { return inet_pton(AF_INET6, a.c_str(), buf) == 1; };
  auto prefixOk = [](const std::string& p, int max) {
    if (p.empty() || p.size() > 3 || !isIndex(p)) return false;
    return std::stoi(p) <= max;
  };
  if (format == "ip") return ip4(s) || ip6(s);
  if (format == "ipv4") return ip4(s);
  auto slash = s.find('/');
  if (slash == std::string::npos) return false;
  std::string addr = s.substr(0, slash), prefix = s.substr(slash + 1);
  if (format == "cidr") return (ip4(addr) && prefixOk(prefix, 32)) || (ip6(addr) && prefixOk(prefix, 128));
  if (format == "ipv4cidr") return ip4(addr) && prefixOk(prefix, 32);
  return true;  // unknown formats are not enforced
}

}  // namespace vnetplan::validation
