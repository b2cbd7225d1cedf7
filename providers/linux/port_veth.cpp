// Port type veth: a pair created in one RTM_NEWLINK (libnl rtnl_link_veth_*), the peer optionally in
// another named namespace (IFLA_NET_NS_FD inside the peer's info). The peer gets the port's MTU and is
// brought up with it; deleting either end removes both.
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>

#include "providers/linux/attach.h"
#include "providers/linux/kind.h"
#include "providers/linux/policy_security.h"
#include "providers/linux/nioc.h"
#include "providers/linux/session.h"
#include "providers/linux/shaping.h"

namespace vnetplan::lnx {

namespace {

bool vethMatches(const LinkInfo& l) { return l.kind == "veth"; }

void vethAttrs(LinuxSession& s, const LinkInfo& l, Attrs& a) {
  const LinkInfo* peer = nullptr;
  if (l.linkNetnsid) {
    auto remote = s.remoteLink(*l.linkNetnsid, l.link);
    a.set("peerNetns", remote.netns);
    peer = remote.link;
  } else {
    peer = s.linkAt(l.link);
  }
  if (peer) {
    a.set("peer", peer->name);
    // The other end's own state: not a manifest field (it follows the port), but part of the pre-image, so a
    // rollback that finds the peer down or at another MTU puts it back.
    a.set("status.peerUp", (peer->flags & IFF_UP) != 0);
    a.set("status.peerMtu", static_cast<int64_t>(peer->mtu));
    // The peer's MAC is not a portable field, but without it a rollback that re-creates the pair could not
    // give the other end (often a container's eth0) its old address back.
    if (!peer->mac.empty()) a.set("linux.peerMac", peer->mac);
  }
  observeSecurity(s, l.name, peer ? peer->mac : "", a);
  observeShaping(s, l, a);
  observeNiocClass(s, l.name, a);
}

Status vethCreate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const Attrs& a = step.after;
  auto peerName = a.getString("peer");
  auto peerNetns = a.getString("peerNetns");
  std::string what = "create veth " + name;
  if (!peerName) return s.failure(what, "a veth Port needs spec.peer (the name of the other end)");
  what += " (peer " + *peerName + (peerNetns ? " in netns " + *peerNetns : "") + ")";

  rtnl_link* link = rtnl_link_veth_alloc();
  if (!link) return s.failure(what, "out of memory");
  rtnl_link* peer = rtnl_link_veth_get_peer(link);  // takes a reference
  struct Release {
    rtnl_link* link;
    rtnl_link* peer;
    ~Release() {
      rtnl_link_put(peer);
      rtnl_link_veth_release(link);
    }
  } release{link, peer};

  rtnl_link_set_name(link, name.c_str());
  rtnl_link_set_name(peer, peerName->c_str());
  if (auto mtu = a.getInt("mtu")) {
    rtnl_link_set_mtu(link, static_cast<unsigned>(*mtu));
    rtnl_link_set_mtu(peer, static_cast<unsigned>(*mtu));
  }
  if (auto peerMtu = a.getInt("status.peerMtu")) rtnl_link_set_mtu(peer, static_cast<unsigned>(*peerMtu));
  if (auto text = a.getString("mac")) {
    std::string why;
    auto mac = parseMac(*text, &why);
    if (!mac) return s.failure(what, "invalid mac '" + *text + "': " + why);
    nl_addr* addr = nl_addr_build(AF_LLC, mac->data(), mac->size());
    if (!addr) return s.failure(what, "out of memory");
    rtnl_link_set_addr(link, addr);
    nl_addr_put(addr);
  }
  if (auto q = a.getInt("linux.txQueueLen")) rtnl_link_set_txqlen(link, static_cast<unsigned>(*q));
  if (auto text = a.getString("linux.peerMac")) {
    std::string why;
    auto mac = parseMac(*text, &why);
    if (!mac) return s.failure(what, "invalid linux.peerMac '" + *text + "': " + why);
    nl_addr* addr = nl_addr_build(AF_LLC, mac->data(), mac->size());
    if (!addr) return s.failure(what, "out of memory");
    rtnl_link_set_addr(peer, addr);
    nl_addr_put(addr);
  }
  auto at = attachmentOf(s, kVethOps, name, a, true);
  if (!at.ok()) return at.error();
  if (at->bridge) rtnl_link_set_master(link, static_cast<int>(at->bridge));
  if (a.getBool("up").value_or(true)) rtnl_link_set_flags(link, IFF_UP);
  // The peer cannot be brought up in the create request itself (veth_open() refuses with ENOTCONN until the
  // pair is linked, which happens after the peer is configured): it gets its own change below.
  if (peerNetns) {
    auto fd = s.netnsFd(*peerNetns);
    if (!fd.ok()) return s.failure(what, fd.error().message);
    rtnl_link_set_ns_fd(peer, *fd);
  }

  // The pair's indexes (session.h): a peer in this namespace takes the one after the port's, so that the kernel
  // does not give it one the session has set aside for a later link.
  const int reserved = s.reserveIndexes(peerNetns ? 1 : 2);
  if (reserved > 0) {
    rtnl_link_set_ifindex(link, reserved);
    if (!peerNetns) rtnl_link_set_ifindex(peer, reserved + 1);
  }
  auto addrs = a.getStrings("addresses");
  nl_msg* raw = nullptr;
  int rc = rtnl_link_build_add_request(link, NLM_F_CREATE | NLM_F_EXCL, &raw);
  if (rc < 0) return s.failure(what, std::string("cannot build the request: ") + nl_geterror(rc));
  NlMsg msg(raw);
  auto created = s.createLink(msg.get(), name, reserved);
  if (!created.ok()) return s.failure(what, created.error().message);

  auto undo = [&](Status st) {
    (void)deleteLink(s, kVethOps, name);  // all or nothing (takes the peer along)
    return st;
  };
  // The other end carries no state of its own in the model: it is always up, so the pair has carrier
  // whenever the port is up.
  NlSocket* peerSock = &s.nl();
  if (peerNetns) {
    auto other = s.socketIn(*peerNetns);
    if (!other.ok()) return undo(s.failure(what, "bring the peer up: " + other.error().message));
    peerSock = *other;
  }
  // Up, unless a pre-image being restored says the peer was down.
  LinkChange peerUp;
  peerUp.up = a.getBool("status.peerUp").value_or(true);
  if (*peerUp.up)
    if (NlOutcome po = sendLinkChange(*peerSock, *peerName, peerUp); !po.ok())
      return undo(s.failure(what, "bring the peer up: " + po.message));
  if (Status st = settleAttachment(s, kVethOps, name, *created, *at, std::nullopt); !st.ok()) return undo(st);
  if (!addrs.empty())
    if (Status st = addAddresses(s, kVethOps, name, *created, addrs); !st.ok()) return undo(st);
  if (Status st = syncSecurity(s, name, a, "linux.peerMac"); !st.ok()) return undo(st);
  if (Status st = syncShaping(s, name, a); !st.ok()) return undo(st);
  if (Status st = syncNiocClass(s, name, a); !st.ok()) return undo(st);
  return {};
}

Status vethUpdate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  if (Status st = rejectReplaceOnly(s, kVethOps, step, {"type", "peer", "peerNetns"}); !st.ok()) return st;
  for (const auto& path : step.changed)
    if (path != "mtu" && path != "mac" && path != "switch" && path != "portGroup" && path != "vlan" &&
        path != "vlan.trunk" && path != "up" && path != "addresses" && path != "linux.peerMac" &&
        path != "linux.txQueueLen" && path != "status.peerUp" && path != "status.peerMtu" && !securityPath(path) &&
        !shapingPath(path) && path != "niocClass")
      return s.failure("update veth " + name, "changing " + path + " is not supported by the linux provider");
  auto change = portLinkChange(s, kVethOps, step);
  if (!change.ok()) return change.error();
  if (Status st = applyPortChange(s, kVethOps, step, *change); !st.ok()) return st;
  // The peer follows the port's MTU (the pair's MTU stays equal) and takes linux.peerMac.
  LinkChange peerChange;
  peerChange.mtu = change->link.mtu;
  if (changes(step, "status.peerMtu"))
    if (auto m = step.after.getInt("status.peerMtu")) peerChange.mtu = static_cast<uint32_t>(*m);
  if (changes(step, "status.peerUp")) peerChange.up = step.after.getBool("status.peerUp").value_or(true);
  if (changes(step, "linux.peerMac"))
    if (auto text = step.after.getString("linux.peerMac")) {
      std::string why;
      auto mac = parseMac(*text, &why);
      if (!mac) return s.failure("update veth " + name, "invalid linux.peerMac '" + *text + "': " + why);
      peerChange.mac = *mac;
    }
  auto peer = step.after.getString("peer");
  if (peer && !peerChange.empty()) {
    auto peerNetns = step.after.getString("peerNetns");
    NlSocket* sock = &s.nl();
    std::string where = s.where();
    if (peerNetns) {
      auto other = s.socketIn(*peerNetns);
      if (!other.ok()) return s.failure("update veth peer " + *peer, other.error().message);
      sock = *other;
      where = "in netns " + *peerNetns;
    }
    NlOutcome o = sendLinkChange(*sock, *peer, peerChange);
    if (!o.ok()) return err("linux: update veth peer " + *peer + " " + where + ": " + o.message);
  }
  if (changes(step, "addresses"))
    if (Status st = syncAddresses(s, kVethOps, name, step.before, step.after); !st.ok()) return st;
  return syncPortPolicies(s, step, "linux.peerMac");
}

Status vethRemove(LinuxSession& s, const Step& step) {
  if (Status st = dropSecurity(s, step.addr.name); !st.ok()) return st;
  if (Status st = dropNiocClass(s, step.addr.name); !st.ok()) return st;
  Status st = removePort(s, kVethOps, step);
  if (auto peer = step.before.getString("peer"); peer && !step.before.has("peerNetns")) s.forget(*peer);
  return st;
}

void vethObserve(LinuxSession& s, Observation& obs) { s.observeLinks(obs, kVethOps, vethMatches, vethAttrs); }

void vethDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action == StepAction::Create) {
    if (auto peer = step.after.getString("peer")) {
      std::string p = "peer " + *peer;
      if (auto ns = step.after.getString("peerNetns")) p += " in netns " + *ns;
      if (auto mac = step.after.getString("linux.peerMac")) p += " mac " + *mac;
      parts.push_back(p);
    }
  } else if (step.action == StepAction::Delete) {
    if (auto peer = step.before.getString("peer")) {
      std::string p = "and its peer " + *peer;
      if (auto ns = step.before.getString("peerNetns")) p += " in netns " + *ns;
      parts.push_back(p);
    }
  }
}

void checkPeerNetns(const FieldCheck& fc) {
  if (!fc.value.is_string()) return fc.fail("field peerNetns must be a netns name");
  std::string ns = fc.value.get<std::string>();
  if (std::string why = netnsNameProblem(ns); !why.empty())
    fc.fail("invalid netns name '" + ns + "' in field peerNetns: " + why);
  else if (ns == fc.target.spec.getString("netns").value_or(""))
    fc.fail("field peerNetns '" + ns + "' is the port's own netns; leave peerNetns out for a same-netns peer");
}

void checkPeerMac(const FieldCheck& fc) {
  std::string why;
  if (!fc.value.is_string()) return fc.fail("field linux.peerMac must be a string like 52:54:00:12:34:56");
  if (!parseMac(fc.value.get<std::string>(), &why))
    fc.fail("invalid linux.peerMac '" + fc.value.get<std::string>() + "': " + why);
}

void vethCheck(const Resource& r, const Target& t, Diagnostics& diags) {
  checkBridgePort(r, t, diags);
  checkSecurity(r, diags, "linux.peerMac");
  checkShaping(r, diags);
  if (!r.attrs.has("peer"))
    diags.error(r.loc, "linux: field peer is required for a veth Port (the name of the other end)", "provider/invalid");
}

void vethNormalize(Resource& r) {
  normalizePortPolicies(r);
  if (auto mac = r.attrs.getString("linux.peerMac"))
    if (auto m = parseMac(*mac, nullptr)) r.attrs.set("linux.peerMac", formatMac(m->data(), m->size()));
}

}  // namespace

const KindOps kVethOps{.kind = Kind::Port,
                       .variant = "veth",
                       .label = "veth",
                       .traits = &kPortTraits,
                       .fields = withBridgePortFields({{"peer", checkInterfaceNameField},
                                                       {"peerNetns", checkPeerNetns},
                                                       {"linux.peerMac", checkPeerMac},
                                                       {"shaping.averageKbps", checkShapingField},
                                                      {"shaping.peakKbps", checkShapingField},
                                                      {"shaping.burstKiB", checkShapingField},
                                                      {"security.allowMacChanges", checkSecurityField},
                                                       {"security.allowForgedTransmits", checkSecurityField},
                                                       {"security.allowPromiscuous", checkSecurityField}}),
                       .check = vethCheck,
                       .normalize = vethNormalize,
                       .describe = vethDescribe,
                       .observe = vethObserve,
                       .create = vethCreate,
                       .update = vethUpdate,
                       .remove = vethRemove};

}  // namespace vnetplan::lnx
