// A reference to a secret (a password, a token, a key passphrase): manifests, plans, journals and state hold only
// the reference; the value is read when a provider connects and never kept anywhere vnetplan writes.
//
//   password: {env: OS_PASSWORD}          the value of an environment variable
//   password: {file: /run/secrets/pw}     the first line of a file (trailing newline removed)
//   password: {cloud: mycloud}            the entry of clouds.yaml / secure.yaml (the vpc provider reads it)
#pragma once
#include <optional>
#include <string>

#include "base/result.h"
#include "model/model.h"

namespace vnetplan {

struct SecretRef {
  enum class Source { Env, File, Cloud } source = Source::Env;
  std::string name;  // variable name, file path or cloud entry
  std::string describe() const;  // "environment variable OS_PASSWORD": says where, never what
};

// The reference held at `path` of `spec` (flattened: "password.env"), if there is one.
std::optional<SecretRef> secretAt(const Attrs& spec, const std::string& path);
// Reads an env or file secret (a cloud entry is the vpc provider's to read: an error here). The error says
// where the secret was looked for, never any part of its value.
Result<std::string> resolveSecret(const SecretRef& ref);

}  // namespace vnetplan
