// How a vpc Target reaches its cloud, resolved at connect time from the Target, clouds.yaml (+ secure.yaml) and
// the environment, the way the OpenStack tools read them:
//
//   cloud: NAME                       clouds.yaml entry NAME, secure.yaml's entry merged over it. Files: the one
//                                     OS_CLIENT_CONFIG_FILE names, else clouds.yaml in ., ~/.config/openstack,
//                                     /etc/openstack (first found; secure.yaml likewise, or OS_CLIENT_SECURE_FILE)
//   endpoint: URL, auth: noauth       no authentication (test clouds); project is the tenant id sent on creates
//   endpoint: URL [, auth: keystone]  Keystone credentials from the entry OS_CLOUD names, else from OS_AUTH_URL,
//                                     OS_USERNAME / OS_USER_ID, OS_PASSWORD, OS_APPLICATION_CREDENTIAL_ID, ...;
//                                     the endpoint replaces the catalog's network endpoint
//
// The Target's `password`, `applicationCredentialSecret` and `token` (secret references) replace the secrets the
// entry or the environment would give; `project` replaces the project to scope to. Secrets live only in this
// struct, in memory, for as long as the provider needs them; messages name where a secret comes from, never it.
#pragma once
#include <string>

#include "base/result.h"
#include "model/model.h"

namespace vnetplan::vpc {

struct CloudConfig {
  std::string describe;  // "clouds.yaml entry 'prod' (/home/u/.config/openstack/clouds.yaml)", for messages

  bool noauth = false;
  std::string endpoint;  // the Neutron endpoint, replacing the catalog's ("" = from the catalog)

  // Keystone v3
  std::string authType;  // "password" | "v3applicationcredential" | "token"
  std::string authUrl;
  std::string username, userId, userDomainName, userDomainId;
  std::string projectName, projectId, projectDomainName, projectDomainId;
  std::string appCredId, appCredName;
  std::string regionName;
  std::string interface = "public";

  std::string caFile;  // PEM bundle for https ("" = the system's)

  // Secrets: never logged, never written.
  std::string password, appCredSecret, token;
};

Result<CloudConfig> resolveCloudConfig(const Target& target);

// The clouds.yaml and secure.yaml that would be read (for messages and tests); "" when none exists.
std::string cloudsYamlPath();
std::string secureYamlPath();

// A 32-hex-digit Keystone id (a `project` given as an id rather than a name).
bool looksLikeId(const std::string& s);

}  // namespace vnetplan::vpc
