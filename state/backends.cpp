// The table of state backends by URL scheme. Adding a backend is one row here and one opener.
#include "state/backends.h"

namespace vnetplan::state {

namespace {

Result<std::unique_ptr<Backend>> openEtcd(const std::string& url, const std::string&) {
  return err("state backend '" + url + "': etcd:// is not implemented yet (supported now: file://DIR)");
}

struct Scheme {
  const char* scheme;  // including "://"
  const char* usage;
  Result<std::unique_ptr<Backend>> (*open)(const std::string& url, const std::string& rest);
  bool implemented;
};

const Scheme kSchemes[] = {
    {"file://", "file://DIR", openFileBackend, true},
    {"etcd://", "etcd://HOST:PORT/PREFIX", openEtcd, false},
};

}  // namespace

Result<std::unique_ptr<Backend>> openBackend(const std::string& url) {
  for (const auto& s : kSchemes) {
    std::string p = s.scheme;
    if (url.compare(0, p.size(), p) == 0) return s.open(url, url.substr(p.size()));
  }
  std::string supported, planned;
  for (const auto& s : kSchemes) {
    std::string& list = s.implemented ? supported : planned;
    list += (list.empty() ? "" : ", ") + std::string(s.usage);
  }
  std::string msg = "unsupported state backend URL '" + url + "': supported: " + supported;
  if (!planned.empty()) msg += " (not implemented yet: " + planned + ")";
  return err(msg);
}

}  // namespace vnetplan::state
