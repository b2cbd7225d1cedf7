// Link operations shared by the kinds: one-message link changes, deletes, Port update plumbing.
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/attr.h>
#include <netlink/route/link.h>

#include <algorithm>
#include <set>

#include "base/netaddr.h"
#include "providers/linux/kind.h"
#include "providers/linux/nioc.h"
#include "providers/linux/attach.h"
#include "providers/linux/session.h"

namespace vnetplan::lnx {

namespace {

struct LinkFree {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkFree>;

}  // namespace

const LinuxKinds& linuxKinds() {
  static const LinuxKinds table(
      {&kBridgeOps, &kPortGroupOps, &kVethOps, &kTapOps, &kVlanOps, &kMacvtapOps, &kVxlanOps, &kVfOps, &kNicOps, &kPciOps,
       &kNetworkOps, &kMirrorOps});
  return table;
}

namespace {

KindTraits makePortTraits() {
  KindTraits t;
  t.kind = Kind::Port;
  // A tap's multi-queue and vnet_hdr modes are fixed when it is made; so are a sub-interface's lower device and
  // VLAN id, a macvtap's lower device and mode, a vxlan's VNI and UDP port (the kernel refuses to change them).
  t.replaceOn = {"type", "peer", "peerNetns", "linux.multiQueue", "linux.vnetHdr", "link", "vlanId", "vni",
                 "dstPort", "mode", "vf", "pciAddress"};
  t.replaceOnRemove = {"linux.owner", "linux.group"};  // the kernel cannot unset a tap's owner or group
  // A vNIC's MTU change drops frames until the guest follows; moving a port to another switch, port group or VLAN
  // (or taking VLANs off its trunk) cuts its traffic; a vxlan's new remote or local endpoint drops what is in flight.
  // A PF's new VF count replaces every VF (the kernel goes through 0); a VF's link state cuts its guest off.
  t.disruptiveOn = {"switch", "portGroup", "network", "vlan", "vlan.trunk", "up", "mtu", "remote", "local",
                    "linux.sriov.numVfs", "linkState"};
  t.unorderedLists = {"addresses"};
  // Left out of a manifest: the port is up, has no addresses, is not attached to a bridge and has no VLAN.
  t.defaults = {{"up", true}, {"addresses", Json::array()}, {"switch", nullptr}, {"portGroup", nullptr}, {"network", nullptr},
                {"vlan", nullptr}};
  return t;
}

constexpr int64_t kMinMtu = 68;

void checkMtu(const FieldCheck& fc) { fc.requireInt(kMinMtu, maxMtuFor(fc.resource), "bytes"); }
void checkBool(const FieldCheck& fc) { fc.requireBool(); }
void checkTxQueueLen(const FieldCheck& fc) { fc.requireInt(0, 4294967295LL); }

void checkAddresses(const FieldCheck& fc) { fc.requireAddressList(); }

void checkVlan(const FieldCheck& fc) {
  Attrs one;
  one.set(fc.path, fc.value);
  std::string why;
  auto v = vlanOf(one, &why);
  if (!v) return fc.fail("field " + fc.path + ": " + why);
  if (v->mode == VlanSpec::Mode::Access && v->id == kNativeVid)
    fc.fail("field " + fc.path + ": VLAN 1 is a Linux bridge's native VLAN, carried untagged; leave vlan out (or 0) "
            "for the untagged segment, or use another VLAN id");
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

void checkNetworkRef(const FieldCheck& fc) {
  if (!fc.value.is_string()) fc.fail("field " + fc.path + " must be the name of a Network");
}

void checkPortGroupRef(const FieldCheck& fc) {
  if (!fc.value.is_string()) return fc.fail("field " + fc.path + " must be the name of a PortGroup");
  std::string n = fc.value.get<std::string>();
  if (std::string why = ifnameProblem(n); !why.empty())
    fc.fail("field " + fc.path + ": '" + n + "' cannot be a linux port group (a port group may become a bridge " +
            "of that name): " + why);
}

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
                                             {"mac", checkMac},
                                             {"linux.txQueueLen", checkTxQueueLen},
                                             {"niocClass", checkNiocClassField}};
  return fields;
}

const std::vector<FieldRule>& bridgePortFields() {
  static const std::vector<FieldRule> fields{{"switch", checkInterfaceNameField},
                                             {"portGroup", checkPortGroupRef},
                                             {"network", checkNetworkRef},
                                             {"vlan", checkVlan},
                                             {"vlan.trunk", checkVlan}};
  return fields;
}

void checkBridgePort(const Resource& r, const Target&, Diagnostics& diags) {
  auto fail = [&](const std::string& m) { diags.error(r.loc, "linux: " + m, "provider/invalid"); };
  const bool ownVlan = (r.attrs.has("vlan") && !r.attrs.find("vlan")->is_null() && r.attrs.getInt("vlan") != 0) ||
                       r.attrs.has("vlan.trunk");
  if (r.attrs.has("network") && !r.attrs.find("network")->is_null() &&
      (r.attrs.getString("switch") || r.attrs.getString("portGroup") || ownVlan))
    fail("field network of Port " + r.addr.name +
         " cannot be combined with switch, portGroup or vlan (the port joins the Network's bridge, untagged)");
  else if (ownVlan && r.attrs.has("portGroup"))
    fail("field vlan of Port " + r.addr.name + " cannot be combined with portGroup (the port group's VLAN applies)");
  else if (ownVlan && !r.attrs.has("switch"))
    fail("field vlan of Port " + r.addr.name + " needs switch (a VLAN of which bridge?)");
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

std::vector<FieldRule> withBridgePortFields(std::vector<FieldRule> own) {
  for (const auto& f : bridgePortFields()) own.push_back(f);
  return own;
}

bool changesAttachment(const Step& step) {
  return changes(step, "switch") || changes(step, "portGroup") || changes(step, "network") || changes(step, "vlan") || changes(step, "vlan.trunk");
}

Result<PortChange> portLinkChange(LinuxSession& s, const KindOps& ops, const Step& step, const char* macPath) {
  const std::string& name = step.addr.name;
  const Attrs& a = step.after;
  PortChange pc;
  LinkChange& c = pc.link;
  if (changes(step, "mtu")) {
    if (auto mtu = a.getInt("mtu")) c.mtu = static_cast<uint32_t>(*mtu);
  }
  if (changes(step, macPath)) {
    if (auto text = a.getString(macPath)) {
      std::string why;
      auto mac = parseMac(*text, &why);
      if (!mac) return s.failure(std::string("update ") + ops.label + " " + name, "invalid mac '" + *text + "': " + why);
      c.mac = *mac;
    }
  }
  if (changesAttachment(step)) {
    auto before = attachmentOf(s, ops, name, step.before, false);
    if (!before.ok()) return before.error();
    auto now = attachmentOf(s, ops, name, a, true);
    if (!now.ok()) return now.error();
    int current = 0;
    if (auto idx = s.ifindex(name); idx.ok())
      if (auto m = s.topo().master.find(*idx); m != s.topo().master.end()) current = m->second;
    if (now->bridge != current || now->bridge != before->bridge) c.master = now->bridge;  // 0 = detach
    pc.before = *before;
    pc.now = *now;
  }
  if (changes(step, "up")) c.up = a.getBool("up").value_or(true);
  if (changes(step, "linux.txQueueLen"))
    if (auto q = a.getInt("linux.txQueueLen")) c.txqlen = static_cast<uint32_t>(*q);
  return pc;
}

Status applyPortChange(LinuxSession& s, const KindOps& ops, const Step& step, const PortChange& pc) {
  if (Status st = changeLink(s, ops, step.addr.name, pc.link); !st.ok()) return st;
  if (!pc.now) return {};
  auto index = s.ifindex(step.addr.name);
  if (!index.ok()) return s.failure(std::string("update ") + ops.label + " " + step.addr.name, index.error().message);
  return settleAttachment(s, ops, step.addr.name, *index, *pc.now, pc.before);
}

Status removePort(LinuxSession& s, const KindOps& ops, const Step& step) {
  const std::string& name = step.addr.name;
  int index = 0;
  if (auto idx = s.ifindex(name); idx.ok()) index = *idx;
  auto before = attachmentOf(s, ops, name, step.before, false);
  if (Status st = deleteLink(s, ops, name); !st.ok()) return st;
  if (!before.ok() || !index) return {};
  return forgetAttachment(s, ops, name, index, *before);
}

Result<int> lowerIndex(LinuxSession& s, const KindOps& ops, const std::string& port, const Attrs& a) {
  auto link = a.getString("link");
  if (!link) return s.failure(std::string("create ") + ops.label + " " + port, "no lower device (link) given");
  auto index = s.ifindex(*link);
  if (!index.ok())
    return s.failure(std::string("create ") + ops.label + " " + port + " on " + *link, index.error().message);
  return index;
}

void dropInheritedMtu(Resource& r) {
  auto o = r.origins.find("mtu");
  if (o != r.origins.end() && o->second.origin == Origin::Inherited) {
    r.attrs.erase("mtu");
    r.origins.erase(o);
  }
}

Status createPortLink(LinuxSession& s, const KindOps& ops, const Step& step, const char* kind, int lower,
                      const std::function<bool(nl_msg*, const Attrs&)>& putData, const char* macPath) {
  const std::string& name = step.addr.name;
  const Attrs& a = step.after;
  const std::string what = std::string("create ") + ops.label + " " + name;
  auto at = attachmentOf(s, ops, name, a, true);
  if (!at.ok()) return at.error();
  NlMsg m = newMsg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (a.getBool("up").value_or(true)) ifi.ifi_flags = ifi.ifi_change = IFF_UP;
  bool ok = m && nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) == 0 &&
            nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) == 0;
  if (ok && lower > 0) ok = nla_put_u32(m.get(), IFLA_LINK, static_cast<uint32_t>(lower)) == 0;
  if (ok && at->bridge) ok = nla_put_u32(m.get(), IFLA_MASTER, static_cast<uint32_t>(at->bridge)) == 0;
  if (auto mtu = a.getInt("mtu"); ok && mtu) ok = nla_put_u32(m.get(), IFLA_MTU, static_cast<uint32_t>(*mtu)) == 0;
  if (auto q = a.getInt("linux.txQueueLen"); ok && q) ok = nla_put_u32(m.get(), IFLA_TXQLEN, static_cast<uint32_t>(*q)) == 0;
  if (auto text = a.getString(macPath); ok && text) {
    std::string why;
    auto mac = parseMac(*text, &why);
    if (!mac) return s.failure(what, "invalid " + std::string(macPath) + " '" + *text + "': " + why);
    ok = nla_put(m.get(), IFLA_ADDRESS, static_cast<int>(mac->size()), mac->data()) == 0;
  }
  nlattr* info = ok ? nla_nest_start(m.get(), IFLA_LINKINFO) : nullptr;
  ok = info && nla_put_string(m.get(), IFLA_INFO_KIND, kind) == 0;
  nlattr* data = ok ? nla_nest_start(m.get(), IFLA_INFO_DATA) : nullptr;
  ok = data && putData(m.get(), a);
  if (!ok) return s.failure(what, "cannot build the request (out of memory)");
  nla_nest_end(m.get(), data);
  nla_nest_end(m.get(), info);
  auto created = s.createLink(m.get(), name);
  if (!created.ok()) return s.failure(what, created.error().message);
  const int index = *created;
  auto undo = [&](Status st) {
    (void)deleteLink(s, ops, name);  // all or nothing
    (void)forgetAttachment(s, ops, name, index, *at);
    return st;
  };
  if (Status st = settleAttachment(s, ops, name, index, *at, std::nullopt); !st.ok()) return undo(st);
  auto addrs = a.getStrings("addresses");
  if (!addrs.empty())
    if (Status st = addAddresses(s, ops, name, index, addrs); !st.ok()) return undo(st);
  return {};
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
