#include "providers/vpc/cloud_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>

#include "base/redact.h"
#include "model/secret.h"

namespace vnetplan::vpc {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::vector<fs::path> searchDirs() {
  std::vector<fs::path> dirs{fs::current_path()};
  if (std::string x = env("XDG_CONFIG_HOME"); !x.empty()) dirs.push_back(fs::path(x) / "openstack");
  else if (std::string h = env("HOME"); !h.empty()) dirs.push_back(fs::path(h) / ".config" / "openstack");
  dirs.push_back("/etc/openstack");
  return dirs;
}

std::string findFile(const char* override, const char* base) {
  if (std::string o = env(override); !o.empty()) return o;
  std::error_code ec;
  for (const auto& d : searchDirs())
    for (const char* ext : {".yaml", ".yml"}) {
      fs::path p = d / (std::string(base) + ext);
      if (fs::is_regular_file(p, ec)) return p.string();
    }
  return "";
}

// `over`'s maps merged into `base` (secure.yaml over clouds.yaml).
YAML::Node merged(const YAML::Node& base, const YAML::Node& over) {
  if (!over || over.IsNull()) return YAML::Clone(base);
  if (!base || !base.IsMap() || !over.IsMap()) return YAML::Clone(over);
  YAML::Node out = YAML::Clone(base);
  for (const auto& kv : over) {
    const std::string key = kv.first.as<std::string>();
    out[key] = merged(base[key], kv.second);
  }
  return out;
}

std::string str(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap()) return "";
  YAML::Node v = n[key];
  if (!v || !v.IsScalar()) return "";
  return v.as<std::string>();
}

Result<YAML::Node> loadYaml(const std::string& path) {
  try {
    return YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return err("cannot read " + path + ": " + e.what());
  }
}

// The entry `name` of clouds.yaml with secure.yaml's entry of the same name merged over it.
Result<YAML::Node> cloudEntry(const std::string& name, std::string& where) {
  const std::string clouds = cloudsYamlPath();
  if (clouds.empty())
    return err("cloud '" + name + "': no clouds.yaml found (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, "
               "~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml)");
  auto doc = loadYaml(clouds);
  if (!doc) return doc.error();
  YAML::Node entry;
  if ((*doc)["clouds"] && (*doc)["clouds"].IsMap()) entry = (*doc)["clouds"][name];
  where = "clouds.yaml entry '" + name + "' (" + clouds + ")";
  const std::string secure = secureYamlPath();
  YAML::Node secureEntry;
  if (!secure.empty()) {
    auto s = loadYaml(secure);
    if (!s) return s.error();
    if ((*s)["clouds"] && (*s)["clouds"].IsMap()) secureEntry = (*s)["clouds"][name];
  }
  if ((!entry || !entry.IsMap()) && (!secureEntry || !secureEntry.IsMap()))
    return err("cloud '" + name + "' is not in " + clouds + (secure.empty() ? "" : " or " + secure));
  return merged(entry, secureEntry);
}

// Fills `c` from a clouds.yaml entry.
Status fromEntry(const YAML::Node& e, CloudConfig& c) {
  const YAML::Node a = e["auth"];
  std::string type = str(e, "auth_type");
  if (type.empty()) type = !str(a, "application_credential_secret").empty() || !str(a, "application_credential_id").empty()
                               ? "v3applicationcredential"
                           : !str(a, "token").empty() && str(a, "password").empty() ? "token"
                                                                                    : "password";
  if (type == "v3password") type = "password";
  if (type == "v3token") type = "token";
  if (type == "none" || type == "noauth") {
    c.noauth = true;
  } else if (type != "password" && type != "v3applicationcredential" && type != "token") {
    return err(c.describe + ": auth_type '" + type +
               "' is not supported (password, v3applicationcredential, token or none)");
  }
  c.authType = type;
  c.authUrl = str(a, "auth_url");
  c.username = str(a, "username");
  c.userId = str(a, "user_id");
  c.userDomainName = str(a, "user_domain_name");
  c.userDomainId = str(a, "user_domain_id");
  c.projectName = str(a, "project_name");
  if (c.projectName.empty()) c.projectName = str(a, "tenant_name");
  c.projectId = str(a, "project_id");
  if (c.projectId.empty()) c.projectId = str(a, "tenant_id");
  c.projectDomainName = str(a, "project_domain_name");
  c.projectDomainId = str(a, "project_domain_id");
  // domain_name / domain_id apply to user and project where they say nothing themselves.
  if (std::string d = str(a, "domain_name"); !d.empty()) {
    if (c.userDomainName.empty() && c.userDomainId.empty()) c.userDomainName = d;
    if (c.projectDomainName.empty() && c.projectDomainId.empty()) c.projectDomainName = d;
  }
  if (std::string d = str(a, "domain_id"); !d.empty()) {
    if (c.userDomainName.empty() && c.userDomainId.empty()) c.userDomainId = d;
    if (c.projectDomainName.empty() && c.projectDomainId.empty()) c.projectDomainId = d;
  }
  c.appCredId = str(a, "application_credential_id");
  c.appCredName = str(a, "application_credential_name");
  c.password = str(a, "password");
  c.appCredSecret = str(a, "application_credential_secret");
  c.token = str(a, "token");
  c.regionName = str(e, "region_name");
  if (std::string i = str(e, "interface"); !i.empty()) c.interface = i;
  else if (std::string t = str(e, "endpoint_type"); !t.empty()) c.interface = t;
  if (std::string ep = str(e, "network_endpoint_override"); !ep.empty()) c.endpoint = ep;
  else if (std::string ep2 = str(e, "endpoint_override"); !ep2.empty()) c.endpoint = ep2;
  if (c.noauth && c.endpoint.empty()) {
    // openstacksdk's "none" auth uses the endpoint override; an auth_url is the next best guess.
    if (!c.authUrl.empty()) c.endpoint = c.authUrl;
    else return err(c.describe + ": auth_type none needs network_endpoint_override (the Neutron URL)");
  }
  c.caFile = str(e, "cacert");
  const std::string verify = str(e, "verify"), insecure = str(e, "insecure");
  if (verify == "false" || verify == "False" || insecure == "true" || insecure == "True")
    return err(c.describe + " turns certificate verification off (verify: false / insecure: true); vnetplan always "
               "verifies the cloud's certificate: give its CA bundle with cacert instead");
  return {};
}

void fromEnvironment(CloudConfig& c) {
  c.describe = "the OS_* environment variables";
  c.authUrl = env("OS_AUTH_URL");
  c.username = env("OS_USERNAME");
  c.userId = env("OS_USER_ID");
  c.userDomainName = env("OS_USER_DOMAIN_NAME");
  c.userDomainId = env("OS_USER_DOMAIN_ID");
  c.projectName = env("OS_PROJECT_NAME");
  if (c.projectName.empty()) c.projectName = env("OS_TENANT_NAME");
  c.projectId = env("OS_PROJECT_ID");
  if (c.projectId.empty()) c.projectId = env("OS_TENANT_ID");
  c.projectDomainName = env("OS_PROJECT_DOMAIN_NAME");
  c.projectDomainId = env("OS_PROJECT_DOMAIN_ID");
  c.appCredId = env("OS_APPLICATION_CREDENTIAL_ID");
  c.appCredName = env("OS_APPLICATION_CREDENTIAL_NAME");
  c.regionName = env("OS_REGION_NAME");
  if (std::string i = env("OS_INTERFACE"); !i.empty()) c.interface = i;
  c.password = env("OS_PASSWORD");
  c.appCredSecret = env("OS_APPLICATION_CREDENTIAL_SECRET");
  c.token = env("OS_TOKEN");
  std::string type = env("OS_AUTH_TYPE");
  if (type == "v3applicationcredential" || (type.empty() && (!c.appCredId.empty() || !c.appCredName.empty())))
    c.authType = "v3applicationcredential";
  else if (type == "token" || type == "v3token" || (type.empty() && !c.token.empty() && c.password.empty()))
    c.authType = "token";
  else
    c.authType = "password";
}

// Reads a secret reference of the Target. {cloud: X} is entry X's value at `cloudKey` (clouds.yaml/secure.yaml).
Result<std::optional<std::string>> targetSecret(const Target& t, const std::string& path, const char* cloudKey) {
  auto ref = secretAt(t.spec, path);
  if (!ref) return std::optional<std::string>();
  if (ref->source != SecretRef::Source::Cloud) {
    auto v = resolveSecret(*ref);
    if (!v) return err("vpc: Target " + t.name + ": " + path + ": " + v.error().message);
    return std::optional<std::string>(*v);
  }
  std::string where;
  auto entry = cloudEntry(ref->name, where);
  if (!entry) return err("vpc: Target " + t.name + ": " + path + ": " + entry.error().message);
  std::string v = str((*entry)["auth"], cloudKey);
  if (v.empty()) return err("vpc: Target " + t.name + ": " + path + ": " + where + " has no auth." + cloudKey);
  return std::optional<std::string>(v);
}

}  // namespace

std::string cloudsYamlPath() { return findFile("OS_CLIENT_CONFIG_FILE", "clouds"); }
std::string secureYamlPath() { return findFile("OS_CLIENT_SECURE_FILE", "secure"); }

bool looksLikeId(const std::string& s) {
  return s.size() == 32 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

Result<CloudConfig> resolveCloudConfig(const Target& t) {
  CloudConfig c;
  const std::string cloud = t.spec.getString("cloud").value_or("");
  const std::string endpoint = t.spec.getString("endpoint").value_or("");
  const std::string auth = t.spec.getString("auth").value_or("keystone");
  const std::string project = t.spec.getString("project").value_or("");
  const std::string who = "vpc: Target " + t.name + ": ";
  if (!cloud.empty()) {
    std::string where;
    auto entry = cloudEntry(cloud, where);
    if (!entry) return err(who + entry.error().message);
    c.describe = where;
    if (Status s = fromEntry(*entry, c); !s) return err(who + s.error().message);
  } else if (endpoint.empty()) {
    return err(who + "needs cloud (a clouds.yaml entry) or endpoint");
  } else if (auth == "noauth") {
    c.noauth = true;
    c.describe = "endpoint " + redactCredentials(endpoint) + " without authentication";
  } else if (std::string osCloud = env("OS_CLOUD"); !osCloud.empty()) {
    std::string where;
    auto entry = cloudEntry(osCloud, where);
    if (!entry) return err(who + "OS_CLOUD: " + entry.error().message);
    c.describe = where + " (OS_CLOUD)";
    if (Status s = fromEntry(*entry, c); !s) return err(who + s.error().message);
  } else {
    fromEnvironment(c);
  }
  if (!endpoint.empty()) c.endpoint = endpoint;
  if (c.caFile.empty()) c.caFile = env("OS_CACERT");
  if (!project.empty()) {
    c.projectId = looksLikeId(project) || c.noauth ? project : "";
    c.projectName = c.projectId.empty() ? project : "";
  }

  auto pw = targetSecret(t, "password", "password");
  if (!pw) return pw.error();
  if (*pw) c.password = **pw, c.authType = "password";
  auto ac = targetSecret(t, "applicationCredentialSecret", "application_credential_secret");
  if (!ac) return ac.error();
  if (*ac) c.appCredSecret = **ac, c.authType = "v3applicationcredential";
  auto tok = targetSecret(t, "token", "token");
  if (!tok) return tok.error();
  if (*tok) c.token = **tok, c.authType = "token";

  if (c.noauth) {
    if (c.projectId.empty())
      return err(who + "noauth needs project: the tenant id Neutron records on what vnetplan creates");
    return c;
  }
  if (c.authType != "token" && c.authUrl.empty())
    return err(who + c.describe + " gives no auth_url (OS_AUTH_URL) to authenticate with");
  if (c.authType == "token" && c.authUrl.empty() && c.endpoint.empty())
    return err(who + "a ready token needs an endpoint (or an auth_url to find one in the catalog)");
  if (c.authType == "password") {
    if (c.username.empty() && c.userId.empty()) return err(who + c.describe + " names no user (username / user_id)");
    if (c.password.empty())
      return err(who + "no password for " + (c.username.empty() ? c.userId : c.username) + " in " + c.describe +
                 " (or give the Target a password: {env: ...} / {file: ...})");
    if (c.userId.empty() && c.userDomainName.empty() && c.userDomainId.empty()) c.userDomainId = "default";
    if (c.projectId.empty() && c.projectName.empty())
      return err(who + c.describe + " names no project to work in (project_name / project_id, or the Target's project)");
    if (c.projectId.empty() && c.projectDomainName.empty() && c.projectDomainId.empty()) c.projectDomainId = "default";
  } else if (c.authType == "v3applicationcredential") {
    if (c.appCredId.empty() && c.appCredName.empty())
      return err(who + c.describe + " names no application credential (application_credential_id)");
    if (c.appCredSecret.empty())
      return err(who + "no application credential secret in " + c.describe +
                 " (or give the Target applicationCredentialSecret: {env: ...} / {file: ...})");
    if (c.appCredId.empty() && c.username.empty() && c.userId.empty())
      return err(who + "an application credential given by name needs its user (username / user_id)");
  } else if (c.token.empty()) {
    return err(who + "auth_type token but no token (OS_TOKEN, or the Target's token: {env: ...})");
  }
  return c;
}

}  // namespace vnetplan::vpc
