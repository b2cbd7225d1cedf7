#include "providers/vpc/vpc_provider.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

#include "base/redact.h"
#include "base/sha256.h"
#include "providers/vpc/cloud_config.h"
#include "providers/vpc/kind.h"
#include "providers/vpc/session.h"

namespace vnetplan {

namespace vpc {

void fail(const Resource& r, Diagnostics& diags, const std::string& message, const char* code) {
  diags.error(r.loc, "vpc: " + message, code);
}

}  // namespace vpc

namespace {

using namespace vpc;

long envNumber(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return end && *end == '\0' && n > 0 ? n : fallback;
}

// Extensions every target must have; the message names the missing ones.
const std::vector<std::pair<const char*, const char*>>& requiredExtensions() {
  static const std::vector<std::pair<const char*, const char*>> e{
      {"router", "routers (Vpc)"},
      {"security-group", "security groups"},
      {"standard-attr-tag", "tags, by which vnetplan knows what it owns"},
      {"standard-attr-description", "descriptions"},
      {"revision-if-match", "If-Match revision checks, which keep a concurrent change from being overwritten"},
      {"extraroute-atomic", "add_extraroutes/remove_extraroutes (Route)"},
  };
  return e;
}

const std::set<std::string>& targetFields() {
  static const std::set<std::string> f{"provider", "cloud",   "endpoint",    "auth", "project", "password.env",
                                       "password.file", "password.cloud", "applicationCredentialSecret.env",
                                       "applicationCredentialSecret.file", "applicationCredentialSecret.cloud",
                                       "token.env", "token.file", "token.cloud", "physicalNetwork"};
  return f;
}

class VpcProvider final : public TableProvider<const Snapshot, ApplyCtx> {
 public:
  VpcProvider() : TableProvider(vpcKinds()) {}

  std::string_view name() const override { return "vpc"; }

  void checkTarget(const Target& t, Diagnostics& diags) const override {
    const std::string who = "vpc: Target " + t.name + ": ";
    for (const auto& [path, value] : t.spec.values())
      if (!targetFields().count(path))
        diags.error(t.loc,
                    who + "field " + path + " is not supported (a vpc Target takes cloud, or endpoint + auth + "
                          "project; password, applicationCredentialSecret, token as secret references; physicalNetwork)",
                    "provider/unsupported");
    if (t.name.find(',') != std::string::npos)
      diags.error(t.loc, who + "the name must not contain ',' (it is part of the tag vnetplan filters Neutron's lists by)",
                  "provider/invalid");
    if (std::string(kOwnerTag).size() + t.name.size() > kMaxTag)
      diags.error(t.loc, who + "the name is too long for Neutron's 255-character tags", "provider/invalid");
    // A URL with userinfo would put a secret into the manifest and from there into plans, logs and the state.
    if (auto ep = t.spec.getString("endpoint"); ep && redactCredentials(*ep) != *ep)
      diags.error(t.loc,
                  who + "endpoint '" + redactCredentials(*ep) +
                      "' carries credentials in the URL; give them as secret references (password.env, "
                      "password.file, token.env, ...) or in clouds.yaml",
                  "provider/invalid");
    if (t.spec.getString("auth").value_or("") == "noauth" && !t.spec.getString("project"))
      diags.error(t.loc, who + "auth: noauth needs project (the tenant id Neutron records on what vnetplan creates)",
                  "provider/invalid");
  }

  void checkTogether(const Target& target, const std::vector<const Resource*>& resources,
                     Diagnostics& diags) const override {
    aclCheck(target, resources, diags);
    struct Net {
      const Resource* r;
      IpPrefix prefix;
      std::string vpc;
      bool isPublic;
    };
    std::vector<Net> subnets;
    std::map<std::string, const Resource*> vpcs;
    std::map<int64_t, const Resource*> vlans;
    for (const Resource* r : resources) {
      if (r->addr.kind == Kind::Vpc) vpcs[r->addr.name] = r;
      if (r->addr.kind != Kind::Subnet) continue;
      if (auto p = parsePrefix(r->attrs.getString("cidr").value_or("")))
        subnets.push_back({r, *p, r->attrs.getString("vpc").value_or(""), r->attrs.getBool("public").value_or(false)});
      if (auto v = r->attrs.getInt("vlan")) {
        auto [it, fresh] = vlans.emplace(*v, r);
        if (!fresh)
          fail(*r, diags, r->addr.str() + ": vlan " + std::to_string(*v) + " is also the VLAN of " +
                              it->second->addr.str() + " (a VLAN segment belongs to one network)");
      }
    }
    // Peering transit networks, as (Vpc, peer, prefix).
    struct Link {
      const Resource* r;
      std::string a, b;
      IpPrefix prefix;
    };
    std::vector<Link> links;
    for (const auto& [name, r] : vpcs)
      if (const Json* p = r->attrs.find("peering"); p && p->is_array())
        for (const auto& e : *p) {
          auto prefix = parsePrefix(e.value("cidr", ""));
          if (prefix) links.push_back({r, name, e.value("vpc", ""), *prefix});
        }
    for (size_t i = 0; i < links.size(); ++i)
      for (size_t j = 0; j < links.size(); ++j) {
        if (i == j) continue;
        const Link &x = links[i], &y = links[j];
        if (i < j && x.a == y.b && x.b == y.a)
          fail(*y.r, diags, y.r->addr.str() + ": the peering with " + y.b + " is declared on both Vpcs; declare it on one");
        if (i < j && x.prefix.overlaps(y.prefix))
          fail(*y.r, diags, y.r->addr.str() + ": peering cidr " + y.prefix.str() + " overlaps the peering cidr " +
                                x.prefix.str() + " of " + x.r->addr.str());
      }
    for (const auto& l : links)
      for (const auto& s : subnets)
        if ((s.vpc == l.a || s.vpc == l.b) && l.prefix.overlaps(s.prefix))
          fail(*l.r, diags, l.r->addr.str() + ": peering cidr " + l.prefix.str() + " overlaps " + s.r->addr.str() +
                                " (" + s.prefix.str() + ")");
    // One router cannot have interfaces on overlapping subnets.
    for (size_t i = 0; i < subnets.size(); ++i)
      for (size_t j = i + 1; j < subnets.size(); ++j) {
        const Net &x = subnets[i], &y = subnets[j];
        if (x.isPublic && y.isPublic && x.vpc == y.vpc && x.prefix.overlaps(y.prefix))
          fail(*y.r, diags, y.r->addr.str() + ": cidr " + y.prefix.str() + " overlaps " + x.r->addr.str() + " (" +
                                x.prefix.str() + "); both are public subnets of Vpc " + x.vpc +
                                " and its router cannot have interfaces on both");
      }
    // A Route's nexthop must be on a subnet its Vpc's router is attached to.
    std::map<std::string, const Resource*> routes;
    for (const Resource* r : resources) {
      if (r->addr.kind != Kind::Route) continue;
      const std::string vpc = r->attrs.getString("vpc").value_or("");
      auto hop = parseAddress(r->attrs.getString("nexthop").value_or(""));
      const std::string key = vpc + " " + r->attrs.getString("destination").value_or("") + " " +
                              r->attrs.getString("nexthop").value_or("");
      auto [it, fresh] = routes.emplace(key, r);
      if (!fresh) fail(*r, diags, r->addr.str() + ": the same route as " + it->second->addr.str());
      if (!hop) continue;
      bool reachable = false;
      for (const auto& s : subnets)
        if (s.vpc == vpc && s.isPublic && s.prefix.contains(*hop)) reachable = true;
      for (const auto& l : links)
        if ((l.a == vpc || l.b == vpc) && l.prefix.contains(*hop)) reachable = true;
      if (!reachable)
        fail(*r, diags, r->addr.str() + ": nexthop " + hop->addressStr() + " is not on a subnet Vpc " + vpc +
                            "'s router is attached to (a public Subnet of it, or one of its peerings)");
    }
  }

  Result<std::unique_ptr<TargetSession>> connect(const Target& target, Deadline deadline) override {
    auto cfg = resolveCloudConfig(target);
    if (!cfg) return cfg.error();
    HttpOptions opts;
    opts.caFile = cfg->caFile;
    opts.attemptTimeout = std::chrono::milliseconds(envNumber("VNETPLAN_VPC_TIMEOUT_MS", 30000));
    opts.connectTimeout = std::min(opts.connectTimeout, opts.attemptTimeout);
    opts.maxAttempts = static_cast<int>(envNumber("VNETPLAN_VPC_ATTEMPTS", 4));
    const std::string who = "vpc: Target " + target.name + ": ";

    std::shared_ptr<TokenSource> auth;
    std::string endpoint = cfg->endpoint;
    std::string projectId = cfg->projectId;
    if (!cfg->noauth) {
      auto ks = keystoneFor(*cfg, opts);
      if (auto tok = ks->token("", deadline); !tok) return err(who + tok.error().message);
      projectId = ks->projectId();
      if (endpoint.empty()) {
        auto ep = ks->networkEndpoint(cfg->regionName, cfg->interface);
        if (!ep) return err(who + ep.error().message);
        endpoint = *ep;
      }
      auth = ks;
    }
    auto url = parseUrl(endpoint);
    if (!url) return err(who + "endpoint: " + url.error().message);
    if (url->path.size() < 5 || url->path.compare(url->path.size() - 5, 5, "/v2.0") != 0) url->path += "/v2.0";
    auto http = std::make_shared<HttpClient>(*url, opts);

    // What the cloud can do, once per connection.
    Neutron probe(http, auth);
    auto ext = probe.expect("GET", "/extensions", nullptr, Retry::Idempotent, {}, deadline);
    if (!ext) return err(who + ext.error().message);
    std::set<std::string> aliases;
    if (ext->is_object() && ext->contains("extensions") && (*ext)["extensions"].is_array())
      for (const auto& e : (*ext)["extensions"])
        if (e.is_object() && e.contains("alias") && e["alias"].is_string()) aliases.insert(e["alias"].get<std::string>());
    std::string missing;
    for (const auto& [alias, what] : requiredExtensions())
      if (!aliases.count(alias)) missing += std::string(missing.empty() ? "" : "; ") + alias + " (" + what + ")";
    if (!missing.empty())
      return err(who + "the Neutron API at " + url->str() + " lacks extensions vnetplan needs: " + missing);

    if (auto acl = aclBlocked(target.name, aliases, url->str()); !acl.empty()) return err(who + acl);

    ApplyCtx::Settings settings{target.name, projectId, target.spec.getString("physicalNetwork").value_or(""),
                                cfg->noauth};
    return std::unique_ptr<TargetSession>(std::make_unique<VpcSession>(
        http, auth, std::move(settings), std::move(aliases), deadline,
        static_cast<int>(envNumber("VNETPLAN_VPC_PARALLELISM", 10))));
  }

 protected:
  void checkCommon(const Resource& r, const Target&, Diagnostics& diags) const override {
    if (r.addr.name.size() > 255)
      fail(r, diags, r.addr.str() + ": the name is longer than Neutron's 255 characters");
    if (std::string(kAddressTag).size() + r.addr.str().size() > kMaxTag)
      fail(r, diags, r.addr.str() + ": the address is too long for the Neutron tag that records it (" +
                         std::to_string(kMaxTag - std::string(kAddressTag).size()) + " characters at most)");
  }

  const std::vector<FieldRule>& commonFields(Kind) const override {
    static const std::vector<FieldRule> none;
    return none;
  }

  void unsupportedField(const FieldCheck& fc, const Row*) const override {
    const std::string& p = fc.path;
    std::string why;
    if (p == "mtu") why = "the cloud chooses a network's MTU (net-mtu) from its network type";
    else if (p.rfind("security.", 0) == 0 || p.rfind("shaping.", 0) == 0 || p.rfind("teaming.", 0) == 0)
      why = "it belongs to a virtual switch; in the cloud, use a SecurityGroup";
    else if (p.rfind("networkAcls", 0) == 0) return;  // checked against the cloud's extensions: aclCheck, connect
    else why = "not a field of a vpc " + std::string(kindName(fc.resource.addr.kind));
    fc.fail(fc.resource.addr.str() + ": field " + p + " is not supported by the vpc provider: " + why,
            "provider/unsupported");
  }

  void rejectKind(const Resource& r, const Target&, Diagnostics& diags) const override {
    diags.error(r.loc,
                "vpc: kind " + std::string(kindName(r.addr.kind)) +
                    " is not supported by the vpc provider (it manages Vpc, Subnet, SecurityGroup and Route)",
                "provider/unsupported");
  }

  void commonDetails(const Attrs&, std::vector<std::string>&) const override {}

  std::string whereText(const Target& t) const override {
    if (auto c = t.spec.getString("cloud")) return " on cloud " + *c;
    return " on " + redactCredentials(t.spec.getString("endpoint").value_or(t.name));
  }

 private:
  // One KeystoneAuth per identity (and secret), so that tokens are reused across connects of this process.
  std::shared_ptr<KeystoneAuth> keystoneFor(const CloudConfig& c, const HttpOptions& opts) {
    const std::string key = sha256Hex(c.authUrl + "\n" + c.authType + "\n" + c.username + "\n" + c.userId + "\n" +
                                      c.userDomainName + c.userDomainId + "\n" + c.projectName + "\n" + c.projectId +
                                      "\n" + c.projectDomainName + c.projectDomainId + "\n" + c.appCredId + "\n" +
                                      c.appCredName + "\n" + c.password + "\n" + c.appCredSecret + "\n" + c.token +
                                      "\n" + c.caFile);
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = auths_[key];
    if (!slot) slot = std::make_shared<KeystoneAuth>(c, opts);
    return slot;
  }

  // Network ACLs need FWaaS, which only the cloud can say it has (/v2.0/extensions), so the check is made at plan
  // time by whichever of checkTogether (knows the manifests) and connect (knows the extensions; the plan may start
  // it before the manifests are checked) comes second, under aclMu_.
  void aclCheck(const Target& target, const std::vector<const Resource*>& resources, Diagnostics& diags) const {
    const Resource* wants = nullptr;
    for (const Resource* r : resources)
      if (r->addr.kind == Kind::Vpc)
        for (const auto& [path, value] : r->attrs.values())
          if (path.rfind("networkAcls", 0) == 0 && !wants) wants = r;
    std::lock_guard<std::mutex> lock(aclMu_);
    if (!wants) {
      aclWanted_.erase(target.name);
      return;
    }
    aclWanted_[target.name] = wants->addr.str();
    if (auto it = extensions_.find(target.name); it != extensions_.end())
      if (std::string why = aclWhy(wants->addr.str(), it->second.first, it->second.second); !why.empty())
        fail(*wants, diags, why);
  }
  std::string aclBlocked(const std::string& target, const std::set<std::string>& aliases, const std::string& url) {
    std::lock_guard<std::mutex> lock(aclMu_);
    extensions_[target] = {aliases, url};
    auto it = aclWanted_.find(target);
    return it == aclWanted_.end() ? "" : aclWhy(it->second, aliases, url);
  }
  static std::string aclWhy(const std::string& addr, const std::set<std::string>& aliases, const std::string& url) {
    if (!aliases.count("fwaas_v2"))
      return addr + ": field networkAcls is not supported on this cloud: network ACLs need the firewall extension " +
             "(FWaaS v2, alias fwaas_v2), which the Neutron API at " + url + " does not offer (GET /v2.0/extensions)";
    return addr + ": field networkAcls: the cloud at " + url +
           " has the firewall extension (fwaas_v2), but this version of the vpc provider does not manage FWaaS "
           "firewall groups yet";
  }

  mutable std::mutex aclMu_;
  mutable std::map<std::string, std::string> aclWanted_;  // target -> address of a Vpc with networkAcls
  std::map<std::string, std::pair<std::set<std::string>, std::string>> extensions_;  // target -> (aliases, URL)

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<KeystoneAuth>> auths_;
};

}  // namespace

std::unique_ptr<Provider> makeVpcProvider() { return std::make_unique<VpcProvider>(); }

}  // namespace vnetplan
