// Port type vxlan: a VXLAN tunnel endpoint (`vni`, `remote` unicast peer or multicast group, `local`, `dstPort`,
// `link` underlay device, linux.learning, linux.ttl), usually a port of a switch. The kernel cannot change a VNI
// or UDP port in place (a disruptive replace); remote, local, learning and TTL change in place. Its MTU follows
// the underlay (minus the 50/70 bytes of encapsulation) unless set: an MTU inherited from a switch is dropped.
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <netlink/attr.h>
#include <sys/socket.h>

#include "base/netaddr.h"
#include "providers/linux/attach.h"
#include "providers/linux/kind.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

namespace {

constexpr int64_t kDefaultPort = 4789;  // IANA; the kernel's own default is the pre-standard 8472

bool vxlanMatches(const LinkInfo& l) { return l.kind == "vxlan"; }

void vxlanAttrs(LinuxSession& s, const LinkInfo& l, Attrs& a) {
  a.set("vni", static_cast<int64_t>(l.get(IFLA_VXLAN_ID).value_or(0)));
  a.set("remote", l.vxlanRemote.empty() ? Json(nullptr) : Json(l.vxlanRemote));
  a.set("local", l.vxlanLocal.empty() ? Json(nullptr) : Json(l.vxlanLocal));
  a.set("dstPort", static_cast<int64_t>(l.get(IFLA_VXLAN_PORT).value_or(0)));
  const LinkInfo* lower = nullptr;
  if (auto dev = l.get(IFLA_VXLAN_LINK); dev && *dev) lower = s.linkAt(static_cast<int>(*dev));
  a.set("link", lower ? Json(lower->name) : Json(nullptr));
  a.set("linux.learning", l.get(IFLA_VXLAN_LEARNING).value_or(1) != 0);
  a.set("linux.ttl", static_cast<int64_t>(l.get(IFLA_VXLAN_TTL).value_or(0)));
}

bool putAddr(nl_msg* m, int v4, int v6, const std::string& text) {
  auto addr = parseAddress(text);
  if (!addr) return false;
  if (addr->family == AF_INET) return nla_put(m, v4, 4, addr->addr.data()) == 0;
  return nla_put(m, v6, 16, addr->addr.data()) == 0;
}

// The options of `a` that `pick` selects (all of them at creation).
template <typename Pick>
bool putVxlanOptions(nl_msg* m, const Attrs& a, Pick pick) {
  bool ok = true;
  if (pick("vni")) ok = ok && nla_put_u32(m, IFLA_VXLAN_ID, static_cast<uint32_t>(a.getInt("vni").value_or(0))) == 0;
  if (pick("remote"))
    if (auto r = a.getString("remote")) ok = ok && putAddr(m, IFLA_VXLAN_GROUP, IFLA_VXLAN_GROUP6, *r);
  if (pick("local"))
    if (auto l = a.getString("local")) ok = ok && putAddr(m, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LOCAL6, *l);
  if (pick("dstPort"))
    ok = ok && nla_put_u16(m, IFLA_VXLAN_PORT, htons(static_cast<uint16_t>(a.getInt("dstPort").value_or(kDefaultPort)))) == 0;
  if (pick("linux.learning"))
    ok = ok && nla_put_u8(m, IFLA_VXLAN_LEARNING, a.getBool("linux.learning").value_or(true) ? 1 : 0) == 0;
  if (pick("linux.ttl") && a.has("linux.ttl"))
    ok = ok && nla_put_u8(m, IFLA_VXLAN_TTL, static_cast<uint8_t>(a.getInt("linux.ttl").value_or(0))) == 0;
  return ok;
}

bool putVxlan(nl_msg* m, const Attrs& a) {
  return putVxlanOptions(m, a, [](const char*) { return true; });
}

Status vxlanCreate(LinuxSession& s, const Step& step) {
  int lower = 0;
  if (step.after.getString("link")) {
    auto idx = lowerIndex(s, kVxlanOps, step.addr.name, step.after);
    if (!idx.ok()) return idx.error();
    lower = *idx;
  }
  // vxlan takes its underlay as IFLA_VXLAN_LINK, not IFLA_LINK.
  return createPortLink(s, kVxlanOps, step, "vxlan", 0, [lower](nl_msg* m, const Attrs& a) {
    if (!putVxlan(m, a)) return false;
    return lower <= 0 || nla_put_u32(m, IFLA_VXLAN_LINK, static_cast<uint32_t>(lower)) == 0;
  });
}

Status vxlanUpdate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  if (Status st = rejectReplaceOnly(s, kVxlanOps, step, {"type", "vni", "dstPort", "link"}); !st.ok()) return st;
  bool tunnel = false;
  for (const auto& path : step.changed) {
    if (path == "remote" || path == "local" || path == "linux.learning" || path == "linux.ttl") {
      tunnel = true;
    } else if (path != "mtu" && path != "mac" && path != "switch" && path != "portGroup" && path != "vlan" &&
               path != "vlan.trunk" && path != "up" && path != "addresses" && path != "linux.txQueueLen") {
      return s.failure("update vxlan " + name, "changing " + path + " is not supported by the linux provider");
    }
  }
  if (tunnel) {
    NlMsg m = newMsg(RTM_NEWLINK, 0);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    bool ok = m && nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) == 0 &&
              nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) == 0;
    nlattr* info = ok ? nla_nest_start(m.get(), IFLA_LINKINFO) : nullptr;
    ok = info && nla_put_string(m.get(), IFLA_INFO_KIND, "vxlan") == 0;
    nlattr* data = ok ? nla_nest_start(m.get(), IFLA_INFO_DATA) : nullptr;
    ok = data && putVxlanOptions(m.get(), step.after, [&](const char* p) { return changes(step, p); });
    // An endpoint taken away is the unspecified address of its family.
    for (const char* p : {"remote", "local"})
      if (ok && changes(step, p) && !step.after.has(p))
        if (auto old = step.before.getString(p))
          ok = putAddr(m.get(), std::string(p) == "remote" ? IFLA_VXLAN_GROUP : IFLA_VXLAN_LOCAL,
                       std::string(p) == "remote" ? IFLA_VXLAN_GROUP6 : IFLA_VXLAN_LOCAL6,
                       old->find(':') != std::string::npos ? "::" : "0.0.0.0");
    if (!ok) return s.failure("update vxlan " + name, "cannot build the request (out of memory)");
    nla_nest_end(m.get(), data);
    nla_nest_end(m.get(), info);
    if (NlOutcome o = s.nl().request(m.get()); !o.ok()) return s.failure("update vxlan " + name, o.message);
  }
  auto change = portLinkChange(s, kVxlanOps, step);
  if (!change.ok()) return change.error();
  if (Status st = applyPortChange(s, kVxlanOps, step, *change); !st.ok()) return st;
  if (changes(step, "addresses")) return syncAddresses(s, kVxlanOps, name, step.before, step.after);
  return {};
}

Status vxlanRemove(LinuxSession& s, const Step& step) { return removePort(s, kVxlanOps, step); }

void vxlanObserve(LinuxSession& s, Observation& obs) { s.observeLinks(obs, kVxlanOps, vxlanMatches, vxlanAttrs); }

int familyOf(const Attrs& a, const char* path) {
  auto text = a.getString(path);
  if (!text) return 0;
  auto addr = parseAddress(*text);
  return addr ? addr->family : 0;
}

bool multicast(const std::string& text) {
  auto addr = parseAddress(text);
  if (!addr) return false;
  return addr->family == AF_INET ? (addr->addr[0] & 0xf0) == 0xe0 : addr->addr[0] == 0xff;
}

void vxlanDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  const Attrs& a = step.after;
  std::string t = "VNI " + std::to_string(a.getInt("vni").value_or(0));
  if (auto r = a.getString("remote")) t += (multicast(*r) ? " group " : " to ") + *r;
  if (auto l = a.getString("local")) t += " from " + *l;
  t += " port " + std::to_string(a.getInt("dstPort").value_or(kDefaultPort));
  if (auto link = a.getString("link")) t += " over " + *link;
  if (a.getBool("linux.learning") == false) t += ", no learning";
  parts.push_back(t);
}

void checkVni(const FieldCheck& fc) { fc.requireInt(0, 16777215); }
void checkPort(const FieldCheck& fc) { fc.requireInt(1, 65535); }
void checkTtl(const FieldCheck& fc) { fc.requireInt(0, 255); }
void checkFlag(const FieldCheck& fc) { fc.requireBool(); }
void checkAddress(const FieldCheck& fc) {
  if (!fc.value.is_string() || !parseAddress(fc.value.get<std::string>()))
    fc.fail("field " + fc.path + " must be an IPv4 or IPv6 address");
}

void vxlanCheck(const Resource& r, const Target& t, Diagnostics& diags) {
  checkBridgePort(r, t, diags);
  auto fail = [&](const std::string& m) { diags.error(r.loc, "linux: " + m, "provider/invalid"); };
  if (!r.attrs.has("vni")) fail("field vni is required for a vxlan Port");
  const int rf = familyOf(r.attrs, "remote"), lf = familyOf(r.attrs, "local");
  if (rf && lf && rf != lf)
    fail("fields remote and local of vxlan Port " + r.addr.name + " are of different address families");
  auto remote = r.attrs.getString("remote");
  if (remote && multicast(*remote) && !r.attrs.has("link"))
    fail("vxlan Port " + r.addr.name + ": a multicast group (remote " + *remote +
         ") needs link, the underlay device to join it on");
}

void vxlanNormalize(Resource& r) {
  dropInheritedMtu(r);
  auto dflt = [&](const char* path, Json v) {
    if (r.attrs.has(path)) return;
    r.attrs.set(path, std::move(v));
    r.origins[path] = AttrOrigin{Origin::Default, ""};
  };
  dflt("dstPort", kDefaultPort);
  dflt("linux.learning", true);
  dflt("linux.ttl", 0);
  dflt("link", nullptr);
  dflt("remote", nullptr);
  dflt("local", nullptr);
  for (const char* p : {"remote", "local"})
    if (auto text = r.attrs.getString(p))
      if (auto a = parseAddress(*text)) r.attrs.set(p, a->addressStr());
}

}  // namespace

const KindOps kVxlanOps{.kind = Kind::Port,
                        .variant = "vxlan",
                        .label = "vxlan",
                        .traits = &kPortTraits,
                        .fields = withBridgePortFields({{"vni", checkVni},
                                                        {"remote", checkAddress},
                                                        {"local", checkAddress},
                                                        {"dstPort", checkPort},
                                                        {"link", checkInterfaceNameField},
                                                        {"linux.learning", checkFlag},
                                                        {"linux.ttl", checkTtl}}),
                        .check = vxlanCheck,
                        .normalize = vxlanNormalize,
                        .describe = vxlanDescribe,
                        .observe = vxlanObserve,
                        .create = vxlanCreate,
                        .update = vxlanUpdate,
                        .remove = vxlanRemove};

}  // namespace vnetplan::lnx
