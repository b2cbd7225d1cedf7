// The table of state backends by URL scheme. Adding a backend is one row here and one opener.
#include "state/backends.h"

namespace vnetplan::state {

namespace {

struct Scheme {
  const char* scheme;  // including "://"
  const char* usage;
  Result<std::unique_ptr<Backend>> (*open)(const std::string& url, const std::string& rest);
};

const Scheme kSchemes[] = {
    {"file://", "file://DIR", openFileBackend},
    {"etcd://", "etcd://HOST:PORT[,HOST:PORT...]/PREFIX", openEtcdBackend},
};

}  // namespace

std::string redactStateUrl(const std::string& url) {
  std::string out = url;
  size_t scheme = out.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t authorityEnd = out.find_first_of("/?#", start);
  size_t at = out.rfind('@', authorityEnd == std::string::npos ? std::string::npos : authorityEnd);
  if (at != std::string::npos && at >= start) out.replace(start, at - start, "***");
  size_t q = out.find('?');
  while (q != std::string::npos && q < out.size()) {
    size_t begin = q + 1;
    size_t end = out.find('&', begin);
    std::string kv = out.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    std::string k = kv.substr(0, kv.find('='));
    if ((k == "password" || k == "pass" || k == "token") && kv.find('=') != std::string::npos) {
      out.replace(begin, kv.size(), k + "=***");
      end = begin + k.size() + 4;
      if (end >= out.size()) break;
    }
    q = end;
  }
  return out;
}

Result<std::unique_ptr<Backend>> openBackend(const std::string& url) {
  for (const auto& s : kSchemes) {
    std::string p = s.scheme;
    if (url.compare(0, p.size(), p) == 0) return s.open(url, url.substr(p.size()));
  }
  std::string supported;
  for (const auto& s : kSchemes) supported += (supported.empty() ? "" : ", ") + std::string(s.usage);
  return err("unsupported state backend URL '" + redactStateUrl(url) + "': supported: " + supported);
}

}  // namespace vnetplan::state
