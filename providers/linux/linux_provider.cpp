#include "providers/linux/linux_provider.h"
#include "providers/linux/netns.h"

#include <cmath>
#include <map>
#include <mutex>
#include <set>

#include "base/netaddr.h"
#include "providers/linux/kind.h"
#include "providers/linux/session.h"
#include "providers/linux/values.h"
#include "reconciler/kind_table.h"

namespace vnetplan {

namespace {



// An integer from an integer, an integral float or a decimal string (normalize() turns them into ints).
std::optional<int64_t> asInt(const Json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
    return std::nullopt;
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.empty() || s.size() > 18) return std::nullopt;
    int64_t n = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + (c - '0');
    }
    return n;
  }
  return std::nullopt;
}

// Why a portable field has no linux implementation yet (for the error message).
std::string unsupportedReason(const std::string& path) {
  auto under = [&](const char* prefix) { return path.rfind(prefix, 0) == 0; };
  if (path == "linux.bridge.vlanFiltering")
    return "it needs bridge VLAN filtering, which the CI kernel lacks (a later issue)";
  if (under("uplinks")) return "uplink teams (bonds) are a later issue";
  if (under("security") || under("shaping") || under("teaming") || under("nioc") || path == "niocClass")
    return "the linux provider does not implement this policy yet";
  if (path == "vlan" || path == "vlanId") return "VLANs need bridge VLAN filtering or 802.1q, a later issue";
  if (path == "portGroup") return "port groups need bridge VLAN filtering, a later issue";
  if (path == "network") return "Networks are a later issue; attach the port to a bridge with switch:";
  return "";
}

class LinuxProvider final : public TableProvider<lnx::LinuxSession, lnx::LinuxSession> {
 public:
  LinuxProvider() : TableProvider(lnx::linuxKinds()) {}

  std::string_view name() const override { return "linux"; }

  Status prepare(const Target& target) override {
    auto netns = target.spec.getString("netns");
    if (!netns || !target.spec.getBool("createNetns").value_or(false) || lnx::netnsExists(*netns)) return {};
    if (Status st = lnx::createNetns(*netns); !st.ok())
      return err("linux: target " + target.name + ": create netns " + *netns + ": " + st.error().message);
    return {};
  }

  // Bridges, ports and veth peers in one namespace share one set of interface names.
  void checkTogether(const Target& target, const std::vector<const Resource*>& resources,
                     Diagnostics& diags) const override {
    const auto netns = target.spec.getString("netns");
    std::map<std::string, const Resource*> taken;
    auto claim = [&](const std::string& ifname, const Resource* r, const std::string& what) {
      auto [it, fresh] = taken.emplace(ifname, r);
      if (fresh) return;
      diags.error(r->loc,
                  "linux: " + r->addr.str() + ": " + what + " '" + ifname + "' is also the interface of " +
                      it->second->addr.str() + " (at " + it->second->loc.str() +
                      "); bridges, ports and veth peers in one namespace need distinct names",
                  "provider/name-collision");
    };
    for (const Resource* r : resources)
      if (r->addr.kind == Kind::Switch || r->addr.kind == Kind::Port) claim(r->addr.name, r, "interface name");
    for (const Resource* r : resources) {
      if (r->addr.kind != Kind::Port || r->attrs.getString("type") != "veth") continue;
      auto peer = r->attrs.getString("peer");
      auto peerNetns = r->attrs.getString("peerNetns");
      if (peer && (!peerNetns || peerNetns == netns)) claim(*peer, r, "veth peer");
    }
  }

  void checkTarget(const Target& target, Diagnostics& diags) const override {
    const SourceLoc& loc = target.loc;
    for (const auto& [path, value] : target.spec.values()) {
      if (path == "netns") {
        if (!value.is_string()) {
          diags.error(loc, "linux: Target " + target.name + ": netns must be a string", "provider/invalid");
          continue;
        }
        std::string ns = value.get<std::string>();
        if (std::string why = lnx::netnsNameProblem(ns); !why.empty())
          diags.error(loc, "linux: Target " + target.name + ": invalid netns name '" + ns + "': " + why,
                      "provider/invalid");
      } else if (path == "createNetns") {
        if (!value.is_boolean())
          diags.error(loc, "linux: Target " + target.name + ": createNetns must be true or false", "provider/invalid");
      } else if (path == "provider") {
        continue;
      } else {
        diags.error(loc,
                    "linux: Target " + target.name + ": field " + path +
                        " is not supported (a linux Target takes netns and createNetns)",
                    "provider/unsupported");
      }
    }
    if (target.spec.getBool("createNetns").value_or(false) && !target.spec.has("netns"))
      diags.error(loc, "linux: Target " + target.name + ": createNetns needs netns (the host namespace always exists)",
                  "provider/invalid");
  }

  // Netlink in a local namespace answers at once: nothing here can outlast the deadline.
  Result<std::unique_ptr<TargetSession>> connect(const Target& target, Deadline) override {
    auto s = lnx::LinuxSession::connect(target);
    if (!s.ok()) return s.error();
    return std::unique_ptr<TargetSession>(std::move(s.value()));
  }

 protected:
  void checkCommon(const Resource& r, const Target&, Diagnostics& diags) const override {
    if (std::string why = lnx::ifnameProblem(r.addr.name); !why.empty())
      diags.error(r.loc,
                  "linux: invalid interface name '" + r.addr.name + "' for " + kindName(r.addr.kind) + " " +
                      r.addr.str() + ": " + why,
                  "provider/invalid");
  }

  const std::vector<FieldRule>& commonFields(Kind kind) const override {
    return kind == Kind::Port ? lnx::commonPortFields() : lnx::commonLinkFields();
  }

  void unsupportedField(const FieldCheck& fc, const Row* row) const override {
    // A field another Port type has: name the types it belongs to.
    auto others = row ? table().rowsAccepting(row->kind, fc.path, row) : std::vector<const Row*>{};
    if (!others.empty()) {
      std::string types;
      for (const Row* o : others) types += std::string(types.empty() ? "" : " or ") + o->variant;
      return fc.fail("field " + fc.path + " is only valid for a " + types + " Port, not type '" + row->variant + "'",
                     "provider/unsupported");
    }
    std::string why = unsupportedReason(fc.path);
    fc.fail("field " + fc.path + " is not supported yet" + (why.empty() ? "" : " (" + why + ")"), "provider/unsupported");
  }

  void rejectKind(const Resource& r, const Target&, Diagnostics& diags) const override {
    auto fail = [&](const std::string& msg, const char* code) { diags.error(r.loc, "linux: " + msg, code); };
    if (r.addr.kind != Kind::Port)
      return fail("kind " + std::string(kindName(r.addr.kind)) + " is not supported yet (the linux provider manages "
                  "Switch and Port)", "provider/unsupported");
    const Json* type = r.attrs.find("type");
    if (!type) return fail("field type is required for a Port (" + table().variantList(Kind::Port) + ")", "provider/invalid");
    if (!type->is_string())
      return fail("field type must be a string (" + table().variantList(Kind::Port) + ")", "provider/invalid");
    fail("Port type '" + type->get<std::string>() + "' is not supported yet (supported: " +
             table().variantList(Kind::Port) + ")",
         "provider/unsupported");
  }

  void normalizeCommon(Resource& r) const override {
    TableProvider::normalizeCommon(r);
    auto toInt = [&](const std::string& path) {
      if (const Json* v = r.attrs.find(path); v && !v->is_number_integer())
        if (auto n = asInt(*v)) r.attrs.set(path, *n);
    };
    toInt("mtu");
    toInt("linux.txQueueLen");
    if (const Json* v = r.attrs.find("addresses"); v && v->is_array()) {
      std::set<std::string> out;
      for (const auto& e : *v) {
        auto c = e.is_string() ? parsePrefix(e.get<std::string>()) : std::nullopt;
        if (!c) return;  // check() reports it
        out.insert(c->str());
      }
      r.attrs.set("addresses", Json(std::vector<std::string>(out.begin(), out.end())));
    }
    if (auto mac = r.attrs.getString("mac"))
      if (auto m = lnx::parseMac(*mac, nullptr)) r.attrs.set("mac", lnx::formatMac(m->data(), m->size()));
  }

  void commonDetailsAfter(const Attrs& a, std::vector<std::string>& parts) const override {
    if (auto sw = a.getString("switch")) parts.push_back("on bridge " + *sw);
    if (auto mac = a.getString("mac")) parts.push_back("mac " + *mac);
    if (auto addrs = a.getStrings("addresses"); !addrs.empty()) parts.push_back("addresses " + show(a.find("addresses")));
    if (a.getBool("up") == false) parts.push_back("down");
  }

  std::string whereText(const Target& target) const override {
    auto netns = target.spec.getString("netns");
    return netns ? " in netns " + *netns : " in the host netns";
  }
};

}  // namespace

std::unique_ptr<Provider> makeLinuxProvider() { return std::make_unique<LinuxProvider>(); }

}  // namespace vnetplan
