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

namespace vnetplan {

namespace {

using lnx::BridgeOption;
using lnx::KindOps;

constexpr int64_t kMinMtu = 68;
constexpr int64_t kMaxMtu = 65535;     // bridge, veth
constexpr int64_t kMaxTapMtu = 65521;  // tun/tap

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

const BridgeOption* bridgeOption(const std::string& path) {
  for (const auto& opt : lnx::bridgeOptions())
    if (path == opt.path) return &opt;
  return nullptr;
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

class LinuxProvider final : public Provider {
 public:
  LinuxProvider() {
    switch_.kind = Kind::Switch;
    switch_.disruptiveOn = {"up", "stp"};  // enabling STP sends every port through listening/learning
    switch_.unorderedLists = {"addresses"};
    // Left out of a manifest: the bridge is up and has no host addresses.
    switch_.defaults = {{"up", true}, {"addresses", Json::array()}};
    port_.kind = Kind::Port;
    // A tap's multi-queue and vnet_hdr modes are fixed when it is made.
    port_.replaceOn = {"type", "peer", "peerNetns", "linux.multiQueue", "linux.vnetHdr"};
    port_.disruptiveOn = {"switch", "up", "mtu"};  // a vNIC's MTU change drops frames until the guest follows
    port_.unorderedLists = {"addresses"};
    // Left out of a manifest: the port is up, has no addresses and is not attached to a bridge.
    port_.defaults = {{"up", true}, {"addresses", Json::array()}, {"switch", nullptr}};
  }

  std::string_view name() const override { return "linux"; }

  Status prepare(const Target& target) override {
    auto netns = target.spec.getString("netns");
    if (!netns || !target.spec.getBool("createNetns").value_or(false) || lnx::netnsExists(*netns)) return {};
    if (Status st = lnx::createNetns(*netns); !st.ok())
      return err("linux: target " + target.name + ": create netns " + *netns + ": " + st.error().message);
    return {};
  }

  const KindTraits* traits(Kind kind) const override {
    if (kind == Kind::Switch) return &switch_;
    if (kind == Kind::Port) return &port_;
    return nullptr;
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
    rememberTarget(target);
  }

  void check(const Resource& r, const Target& target, Diagnostics& diags) const override {
    const SourceLoc& loc = r.loc;
    const std::string kind = kindName(r.addr.kind);
    auto fail = [&](const std::string& msg, const char* code = "provider/invalid") {
      diags.error(loc, "linux: " + msg, code);
    };
    auto unsupported = [&](const std::string& path) {
      std::string why = unsupportedReason(path);
      fail("field " + path + " is not supported yet" + (why.empty() ? "" : " (" + why + ")"), "provider/unsupported");
    };
    if (r.addr.kind != Kind::Switch && r.addr.kind != Kind::Port) {
      fail("kind " + kind + " is not supported yet (the linux provider manages Switch and Port)",
           "provider/unsupported");
      return;
    }
    if (std::string why = lnx::ifnameProblem(r.addr.name); !why.empty())
      fail("invalid interface name '" + r.addr.name + "' for " + kind + " " + r.addr.str() + ": " + why);

    std::string type = r.attrs.getString("type").value_or("");
    const int64_t maxMtu = type == "tap" ? kMaxTapMtu : kMaxMtu;
    auto checkInt = [&](const std::string& path, const Json& v, int64_t lo, int64_t hi, const char* unit) {
      auto n = asInt(v);
      if (!n) return fail("field " + path + " must be a whole number" + (*unit ? std::string(" of ") + unit : ""));
      if (*n < lo || *n > hi)
        fail("field " + path + " is " + std::to_string(*n) + ", outside " + std::to_string(lo) + ".." +
             std::to_string(hi) + (*unit ? std::string(" ") + unit : ""));
    };
    auto checkBool = [&](const std::string& path, const Json& v) {
      if (!v.is_boolean()) fail("field " + path + " must be true or false");
    };
    auto checkName = [&](const std::string& path, const Json& v) {
      if (!v.is_string()) return fail("field " + path + " must be an interface name");
      std::string n = v.get<std::string>();
      if (std::string why = lnx::ifnameProblem(n); !why.empty())
        fail("invalid interface name '" + n + "' in field " + path + ": " + why);
      else if (n == r.addr.name)
        fail("field " + path + " names the " + kind + " itself (" + n + ")");
    };
    auto checkAddresses = [&](const std::string& path, const Json& v) {
      if (!v.is_array()) return fail("field " + path + " must be a list of CIDR addresses");
      std::set<std::string> seen;
      for (const auto& e : v) {
        if (!e.is_string()) {
          fail("field " + path + ": " + e.dump() + " is not a CIDR address");
          continue;
        }
        std::string why;
        auto c = parsePrefix(e.get<std::string>(), &why);
        if (!c) {
          fail("field " + path + ": invalid address '" + e.get<std::string>() + "': " + why);
          continue;
        }
        if (c->isIpv6LinkLocal())
          fail("field " + path + ": " + e.get<std::string>() +
               " is an IPv6 link-local address; the kernel manages those itself");
        if (!seen.insert(c->str()).second)
          fail("field " + path + " lists " + c->str() + " more than once");
      }
    };

    for (const auto& [path, v] : r.attrs.values()) {
      if (v.is_object() && v.empty()) continue;  // an empty block sets nothing (normalize drops it)
      if (path == "mtu") {
        checkInt(path, v, kMinMtu, maxMtu, "bytes");
      } else if (path == "up") {
        checkBool(path, v);
      } else if (path == "addresses") {
        checkAddresses(path, v);
      } else if (r.addr.kind == Kind::Switch) {
        if (const BridgeOption* opt = bridgeOption(path)) {
          if (opt->boolean)
            checkBool(path, v);
          else
            checkInt(path, v, opt->min, opt->max, opt->seconds ? "seconds" : "");
        } else {
          unsupported(path);
        }
      } else if (path == "type") {
        if (!v.is_string())
          fail("field type must be a string (veth or tap)");
        else if (type != "veth" && type != "tap")
          fail("Port type '" + type + "' is not supported yet (supported: veth, tap)", "provider/unsupported");
      } else if (path == "switch") {
        checkName(path, v);
      } else if (path == "mac") {
        std::string why;
        if (!v.is_string())
          fail("field mac must be a string like 52:54:00:12:34:56");
        else if (!lnx::parseMac(v.get<std::string>(), &why))
          fail("invalid mac '" + v.get<std::string>() + "': " + why);
      } else if (path == "linux.txQueueLen") {
        checkInt(path, v, 0, 4294967295LL, "");
      } else if (path == "linux.multiQueue" || path == "linux.vnetHdr") {
        if (type != "tap")
          fail("field " + path + " is only valid for a tap Port, not type '" + type + "'", "provider/unsupported");
        else
          checkBool(path, v);
      } else if (path == "linux.owner" || path == "linux.group") {
        bool user = path == "linux.owner";
        if (type != "tap") {
          fail("field " + path + " is only valid for a tap Port, not type '" + type + "'", "provider/unsupported");
        } else if (v.is_number_integer()) {
          checkInt(path, v, 0, 4294967294LL, "");
        } else if (!v.is_string()) {
          fail("field " + path + " must be a " + (user ? "user" : "group") + " name or id");
        } else if (!(user ? lnx::lookupUserId(v.get<std::string>()) : lnx::lookupGroupId(v.get<std::string>()))) {
          fail("field " + path + ": no " + (user ? "user" : "group") + " named '" + v.get<std::string>() +
               "' on this host");
        }
      } else if (path == "linux.peerMac") {
        std::string why;
        if (type != "veth")
          fail("field linux.peerMac is only valid for a veth Port, not type '" + type + "'", "provider/unsupported");
        else if (!v.is_string())
          fail("field linux.peerMac must be a string like 52:54:00:12:34:56");
        else if (!lnx::parseMac(v.get<std::string>(), &why))
          fail("invalid linux.peerMac '" + v.get<std::string>() + "': " + why);
      } else if (path == "peer" || path == "peerNetns") {
        if (type != "veth") {
          fail("field " + path + " is only valid for a veth Port, not type '" + type + "'", "provider/unsupported");
        } else if (path == "peer") {
          checkName(path, v);
        } else if (!v.is_string()) {
          fail("field peerNetns must be a netns name");
        } else {
          std::string ns = v.get<std::string>();
          if (std::string why = lnx::netnsNameProblem(ns); !why.empty())
            fail("invalid netns name '" + ns + "' in field peerNetns: " + why);
          else if (ns == target.spec.getString("netns").value_or(""))
            fail("field peerNetns '" + ns + "' is the port's own netns; leave peerNetns out for a same-netns peer");
        }
      } else {
        unsupported(path);
      }
    }
    if (r.addr.kind == Kind::Port) {
      if (!r.attrs.has("type"))
        fail("field type is required for a Port (veth or tap)");
      else if (type == "veth" && !r.attrs.has("peer"))
        fail("field peer is required for a veth Port (the name of the other end)");
    }
  }

  void normalize(Resource& r) const override {
    if (r.addr.kind != Kind::Switch && r.addr.kind != Kind::Port) return;
    std::vector<std::string> empties;
    for (const auto& [path, v] : r.attrs.values())
      if (v.is_object() && v.empty()) empties.push_back(path);
    for (const auto& path : empties) r.attrs.erase(path);

    auto toInt = [&](const std::string& path) {
      if (const Json* v = r.attrs.find(path); v && !v->is_number_integer())
        if (auto n = asInt(*v)) r.attrs.set(path, *n);
    };
    toInt("mtu");
    toInt("linux.txQueueLen");
    // Tap owner and group by id, as the kernel reports them.
    if (auto user = r.attrs.getString("linux.owner"))
      if (auto id = lnx::lookupUserId(*user)) r.attrs.set("linux.owner", *id);
    if (auto group = r.attrs.getString("linux.group"))
      if (auto id = lnx::lookupGroupId(*group)) r.attrs.set("linux.group", *id);
    if (r.addr.kind == Kind::Switch)
      for (const auto& opt : lnx::bridgeOptions())
        if (!opt.boolean) toInt(opt.path);

    if (const Json* v = r.attrs.find("addresses"); v && v->is_array()) {
      std::set<std::string> out;
      bool valid = true;
      for (const auto& e : *v) {
        auto c = e.is_string() ? parsePrefix(e.get<std::string>(), nullptr) : std::nullopt;
        if (!c) {
          valid = false;
          break;
        }
        out.insert(c->str());
      }
      if (valid) r.attrs.set("addresses", Json(std::vector<std::string>(out.begin(), out.end())));
    }
    for (const char* path : {"mac", "linux.peerMac"})
      if (auto mac = r.attrs.getString(path))
        if (auto m = lnx::parseMac(*mac, nullptr)) r.attrs.set(path, lnx::formatMac(m->data(), m->size()));
  }

  Result<std::unique_ptr<TargetSession>> connect(const Target& target) override {
    rememberTarget(target);
    auto s = lnx::LinuxSession::connect(target);
    if (!s.ok()) return s.error();
    return std::unique_ptr<TargetSession>(std::move(s.value()));
  }

  std::string describe(const Step& step) const override {
    const KindOps* ops = lnx::opsForStep(step);
    std::string label = ops ? ops->label : kindName(step.addr.kind);
    std::string where = whereFor(step.addr.target);
    const std::string& name = step.addr.name;
    auto show = [](const Json* v) -> std::string {
      if (!v) return "(none)";
      if (v->is_string()) return v->get<std::string>();
      if (v->is_array()) {
        std::string out;
        for (const auto& e : *v) out += (out.empty() ? "" : " ") + (e.is_string() ? e.get<std::string>() : e.dump());
        return out.empty() ? "(none)" : out;
      }
      return v->dump();
    };
    switch (step.action) {
      case StepAction::Create: {
        const Attrs& a = step.after;
        std::vector<std::string> parts;
        if (auto mtu = a.find("mtu")) parts.push_back("mtu " + show(mtu));
        if (ops) ops->summarize(a, parts);
        if (auto sw = a.getString("switch")) parts.push_back("on bridge " + *sw);
        if (auto mac = a.getString("mac")) parts.push_back("mac " + *mac);
        if (auto addrs = a.getStrings("addresses"); !addrs.empty()) parts.push_back("addresses " + show(a.find("addresses")));
        if (a.getBool("up") == false) parts.push_back("down");
        std::string out = "create " + label + " " + name;
        if (!parts.empty()) {
          out += " (";
          for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
          out += ")";
        }
        return out + where;
      }
      case StepAction::Update: {
        std::string out = "update " + label + " " + name + where;
        std::string sep = ": ";
        for (const auto& path : step.changed) {
          out += sep + path + " ";
          sep = ", ";
          if (path == "addresses") {
            auto before = step.before.getStrings(path), after = step.after.getStrings(path);
            std::set<std::string> b(before.begin(), before.end()), a(after.begin(), after.end());
            std::string delta;
            for (const auto& x : a)
              if (!b.count(x)) delta += (delta.empty() ? "+" : " +") + x;
            for (const auto& x : b)
              if (!a.count(x)) delta += (delta.empty() ? "-" : " -") + x;
            out += delta.empty() ? "(reordered)" : delta;
          } else {
            out += show(step.before.find(path)) + " -> " + show(step.after.find(path));
          }
        }
        return out;
      }
      case StepAction::Delete: {
        std::string out = "delete " + label + " " + name;
        if (auto peer = step.before.getString("peer"); peer && ops == &lnx::kVethOps) {
          out += " (and its peer " + *peer;
          if (auto ns = step.before.getString("peerNetns")) out += " in netns " + *ns;
          out += ")";
        }
        return out + where;
      }
    }
    return Provider::describe(step);
  }

 private:
  void rememberTarget(const Target& t) const {
    std::lock_guard<std::mutex> lock(mu_);
    netnsOf_[t.name] = t.spec.getString("netns").value_or("");
  }

  std::string whereFor(const std::string& target) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = netnsOf_.find(target);
    if (it == netnsOf_.end()) return " on target " + target;
    return it->second.empty() ? " in the host netns" : " in netns " + it->second;
  }

  KindTraits switch_;
  KindTraits port_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::string> netnsOf_;  // target -> netns ("" = host), for describe()
};

}  // namespace

std::unique_ptr<Provider> makeLinuxProvider() { return std::make_unique<LinuxProvider>(); }

}  // namespace vnetplan
