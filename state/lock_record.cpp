#include "state/lock_record.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/random.h"

namespace vnetplan::state {

std::string currentOwner() {
  std::string user;
  struct passwd pw {};
  struct passwd* res = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &res) == 0 && res && res->pw_name)
    user = res->pw_name;
  if (user.empty()) {
    const char* u = std::getenv("USER");
    user = u && *u ? u : "uid" + std::to_string(::geteuid());
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "localhost");
  return user + "@" + host;
}

std::string ownerHost(const std::string& owner) {
  size_t at = owner.rfind('@');
  return at == std::string::npos ? std::string() : owner.substr(at + 1);
}

LockInfo completeLockInfo(const LockInfo& requested) {
  LockInfo info = requested;
  if (info.id.empty()) info.id = randomHex(8);
  if (info.owner.empty()) info.owner = currentOwner();
  if (info.created.empty()) info.created = nowRfc3339();
  if (info.pid == 0) info.pid = ::getpid();
  return info;
}

Json lockInfoToJson(const LockInfo& i) {
  return Json{{"formatVersion", 1},       {"id", i.id},           {"name", i.name}, {"owner", i.owner},
              {"operation", i.operation}, {"created", i.created}, {"pid", i.pid}};
}

std::optional<LockInfo> lockInfoFromJson(const std::string& bytes) {
  Json j = Json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto str = [&](const char* k) -> std::string {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  LockInfo i;
  i.id = str("id");
  i.name = str("name");
  i.owner = str("owner");
  i.operation = str("operation");
  i.created = str("created");
  auto p = j.find("pid");
  if (p != j.end() && p->is_number_integer()) i.pid = p->get<int64_t>();
  if (i.id.empty()) return std::nullopt;
  return i;
}

std::string describeHolder(const LockInfo& h) {
  return "state is locked by " + h.owner + " (pid " + std::to_string(h.pid) + ", operation " + h.operation +
         ", since " + h.created + ", lock id " + h.id + ")";
}

}  // namespace vnetplan::state
