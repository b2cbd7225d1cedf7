#include "model/secret.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "base/fd.h"
#include "base/fileio.h"

namespace vnetplan {

std::string SecretRef::describe() const {
  switch (source) {
    case Source::Env: return "environment variable " + name;
    case Source::File: return "file " + name;
    case Source::Cloud: return "clouds.yaml entry " + name;
  }
  return name;
}

std::optional<SecretRef> secretAt(const Attrs& spec, const std::string& path) {
  if (auto v = spec.getString(path + ".env")) return SecretRef{SecretRef::Source::Env, *v};
  if (auto v = spec.getString(path + ".file")) return SecretRef{SecretRef::Source::File, *v};
  if (auto v = spec.getString(path + ".cloud")) return SecretRef{SecretRef::Source::Cloud, *v};
  return std::nullopt;
}

Result<std::string> resolveSecret(const SecretRef& ref) {
  switch (ref.source) {
    case SecretRef::Source::Env: {
      const char* v = std::getenv(ref.name.c_str());
      if (!v || !*v) return err("the secret's " + ref.describe() + " is not set");
      return std::string(v);
    }
    case SecretRef::Source::File: {
      auto fd = openRegularForRead(AT_FDCWD, ref.name);
      if (!fd) return err("cannot read the secret's " + ref.describe() + ": " + fd.error().message);
      UniqueFd owned(*fd);
      auto bytes = readAll(owned.get());
      if (!bytes) return err("cannot read the secret's " + ref.describe() + ": " + bytes.error().message);
      std::string v = *bytes;
      if (auto nl = v.find('\n'); nl != std::string::npos) v.resize(nl);
      if (!v.empty() && v.back() == '\r') v.pop_back();
      if (v.empty()) return err("the secret's " + ref.describe() + " is empty");
      return v;
    }
    case SecretRef::Source::Cloud:
      return err("the secret's " + ref.describe() + " is read by the provider that uses clouds.yaml");
  }
  return err("unknown secret source");
}

}  // namespace vnetplan
