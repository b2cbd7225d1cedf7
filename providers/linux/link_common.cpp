// Link operations shared by the kinds: one-message link changes, deletes, Port update plumbing.
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/route/link.h>

#include <algorithm>
#include <set>

#include "base/netaddr.h"
#include "providers/linux/kind.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

namespace {

struct LinkFree {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkFree>;

}  // namespace

const LinuxKinds& linuxKinds() {
  static const LinuxKinds table({&kBridgeOps, &kVethOps, &kTapOps});
  return table;
}

namespace {

KindTraits makePortTraits() {
  KindTraits t;
  t.kind = Kind::Port;
  // A tap's multi-queue and vnet_hdr modes are fixed when it is made.
  t.replaceOn = {"type", "peer", "peerNetns", "linux.multiQueue", "linux.vnetHdr"};
  t.replaceOnRemove = {"linux.owner", "linux.group"};  // the kernel cannot unset a tap's owner or group
  t.disruptiveOn = {"switch", "up", "mtu"};  // a vNIC's MTU change drops frames until the guest follows
  t.unorderedLists = {"addresses"};
  // Left out of a manifest: the port is up, has no addresses and is not attached to a bridge.
  t.defaults = {{"up", true}, {"addresses", Json::array()}, {"switch", nullptr}};
  return t;
}

constexpr int64_t kMinMtu = 68;

void checkMtu(const FieldCheck& fc) { fc.requireInt(kMinMtu, maxMtuFor(fc.resource), "bytes"); }
void checkBool(const FieldCheck& fc) { fc.requireBool(); }
void checkTxQueueLen(const FieldCheck& fc) { fc.requireInt(0, 4294967295LL); }

void checkAddresses(const FieldCheck& fc) {
  if (!fc.value.is_array()) return fc.fail("field " + fc.path + " must be a list of CIDR addresses");
  std::set<std::string> seen;
  for (const auto& e : fc.value) {
    if (!e.is_string()) {
      fc.fail("field " + fc.path + ": " + e.dump() + " is not a CIDR address");
      continue;
    }
    std::string why;
    auto c = parsePrefix(e.get<std::string>(), &why);
    if (!c) {
      fc.fail("field " + fc.path + ": invalid address '" + e.get<std::string>() + "': " + why);
      continue;
    }
    if (c->isIpv6LinkLocal())
      fc.fail("field " + fc.path + ": " + e.get<std::string>() +
              " is an IPv6 link-local address; the kernel manages those itself");
    if (!seen.insert(c->str()).second) fc.fail("field " + fc.path + " lists " + c->str() + " more than once");
  }
}

void checkMac(const FieldCheck& fc) {
  std::string why;
  if (!fc.value.is_string()) return fc.fail("field " + fc.path + " must be a string like 52:54:00:12:34:56");
  if (!parseMac(fc.value.get<std::string>(), &why))
    fc.fail("invalid " + (fc.path == "mac" ? std::string("mac") : fc.path) + " '" + fc.value.get<std::string>() +
            "': " + why);
}

}  // namespace

const KindTraits kPortTraits = makePortTraits();

int64_t maxMtuFor(const Resource& r) {
  constexpr int64_t kMaxMtu = 65535;     // bridge, veth
  constexpr int64_t kMaxTapMtu = 65521;  // tun/tap
  return r.attrs.getString("type") == "tap" ? kMaxTapMtu : kMaxMtu;
}

void checkInterfaceNameField(const FieldCheck& fc) {
  if (!fc.value.is_string()) return fc.fail("field " + fc.path + " must be an interface name");
  std::string n = fc.value.get<std::string>();
  if (std::string why = ifnameProblem(n); !why.empty())
    fc.fail("invalid interface name '" + n + "' in field " + fc.path + ": " + why);
  else if (n == fc.resource.addr.name)
    fc.fail("field " + fc.path + " names the " + std::string(kindName(fc.resource.addr.kind)) + " itself (" + n + ")");
}

const std::vector<FieldRule>& commonLinkFields() {
  static const std::vector<FieldRule> fields{{"mtu", checkMtu}, {"up", checkBool}, {"addresses", checkAddresses}};
  return fields;
}

const std::vector<FieldRule>& commonPortFields() {
  static const std::vector<FieldRule> fields{{"mtu", checkMtu},
                                             {"up", checkBool},
                                             {"addresses", checkAddresses},
                                             {"type", nullptr},  // chose the row
                                             {"switch", checkInterfaceNameField},
                                             {"mac", checkMac},
                                             {"linux.txQueueLen", checkTxQueueLen}};
  return fields;
}

bool changes(const Step& step, const std::string& path) {
  return std::find(step.changed.begin(), step.changed.end(), path) != step.changed.end();
}

Result<int> masterIndex(LinuxSession& s, const KindOps& ops, const std::string& port, const std::string& switchName) {
  auto index = s.ifindex(switchName);
  if (!index.ok())
    return s.failure(std::string("attach ") + ops.label + " " + port + " to bridge " + switchName,
                     index.error().message);
  return index;
}

NlOutcome sendLinkChange(NlSocket& sock, const std::string& name, const LinkChange& c) {
  // The link is addressed by name (ifi_index 0 + IFLA_IFNAME): no ifindex lookup needed.
  LinkPtr orig(rtnl_link_alloc());
  LinkPtr change(rtnl_link_alloc());
  if (!orig || !change) return {ENOMEM, "out of memory"};
  rtnl_link_set_name(change.get(), name.c_str());
  if (c.mtu) rtnl_link_set_mtu(change.get(), *c.mtu);
  if (c.mac) {
    nl_addr* mac = nl_addr_build(AF_LLC, c.mac->data(), c.mac->size());
    if (!mac) return {ENOMEM, "out of memory"};
    rtnl_link_set_addr(change.get(), mac);
    nl_addr_put(mac);
  }
  if (c.master) rtnl_link_set_master(change.get(), *c.master);
  if (c.txqlen) rtnl_link_set_txqlen(change.get(), *c.txqlen);
  if (c.up) {
    if (*c.up)
      rtnl_link_set_flags(change.get(), IFF_UP);
    else
      rtnl_link_unset_flags(change.get(), IFF_UP);
  }
  nl_msg* raw = nullptr;
  int rc = rtnl_link_build_change_request(orig.get(), change.get(), 0, &raw);
  if (rc < 0) return {0, std::string("cannot build the request: ") + nl_geterror(rc)};
  NlMsg msg(raw);
  return sock.request(msg.get());
}

Status changeLink(LinuxSession& s, const KindOps& ops, const std::string& name, const LinkChange& change,
                  const std::string& verb) {
  if (change.empty()) return {};
  NlOutcome o = sendLinkChange(s.nl(), name, change);
  if (!o.ok()) return s.failure(verb + " " + ops.label + " " + name, o.message);
  return {};
}

Status deleteLink(LinuxSession& s, const KindOps& ops, const std::string& name) {
  LinkPtr link(rtnl_link_alloc());
  if (!link) return err("linux: out of memory");
  rtnl_link_set_name(link.get(), name.c_str());
  nl_msg* raw = nullptr;
  int rc = rtnl_link_build_delete_request(link.get(), &raw);
  if (rc < 0) return s.failure(std::string("delete ") + ops.label + " " + name, nl_geterror(rc));
  NlMsg msg(raw);
  NlOutcome o = s.nl().request(msg.get());
  s.forget(name);
  if (!o.ok() && o.errnum != ENODEV) return s.failure(std::string("delete ") + ops.label + " " + name, o.message);
  return {};
}

Result<LinkChange> portLinkChange(LinuxSession& s, const KindOps& ops, const Step& step) {
  const std::string& name = step.addr.name;
  const Attrs& a = step.after;
  LinkChange c;
  if (changes(step, "mtu")) {
    if (auto mtu = a.getInt("mtu")) c.mtu = static_cast<uint32_t>(*mtu);
  }
  if (changes(step, "mac")) {
    if (auto text = a.getString("mac")) {
      std::string why;
      auto mac = parseMac(*text, &why);
      if (!mac) return s.failure(std::string("update ") + ops.label + " " + name, "invalid mac '" + *text + "': " + why);
      c.mac = *mac;
    }
  }
  if (changes(step, "switch")) {
    if (auto sw = a.getString("switch")) {
      auto index = masterIndex(s, ops, name, *sw);
      if (!index.ok()) return index.error();
      c.master = *index;
    } else {
      c.master = 0;  // detach
    }
  }
  if (changes(step, "up")) c.up = a.getBool("up").value_or(true);
  if (changes(step, "linux.txQueueLen"))
    if (auto q = a.getInt("linux.txQueueLen")) c.txqlen = static_cast<uint32_t>(*q);
  return c;
}

Status rejectReplaceOnly(LinuxSession& s, const KindOps& ops, const Step& step,
                         const std::vector<std::string>& replaceOnly) {
  for (const auto& path : replaceOnly)
    if (changes(step, path))
      return s.failure(std::string("update ") + ops.label + " " + step.addr.name,
                       "changing " + path + " needs a replace (delete + create), not an in-place update");
  return {};
}

}  // namespace vnetplan::lnx
