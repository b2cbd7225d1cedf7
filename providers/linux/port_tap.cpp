// Port type tap: a persistent TAP device made with TUNSETIFF (IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL, plus
// IFF_MULTI_QUEUE / IFF_VNET_HDR on request), TUNSETOWNER / TUNSETGROUP and TUNSETPERSIST on /dev/net/tun
// opened *inside* the target namespace (a tun device is created in the namespace of the opener), then one
// netlink change for mtu, mac, master, txqueuelen and up.

// <net/if.h> first: it tells the kernel's <linux/if.h> (pulled in by if_tun.h) not to redefine its types.
#include <net/if.h>
// (keep the order)
#include <fcntl.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/fd.h"
#include "providers/linux/attach.h"
#include "providers/linux/kind.h"
#include "providers/linux/records.h"
#include "providers/linux/policy_security.h"
#include "providers/linux/nioc.h"
#include "providers/linux/session.h"
#include "providers/linux/shaping.h"

namespace vnetplan::lnx {

namespace {

bool tapMatches(const LinkInfo& l) {
  if (l.kind != "tun") return false;
  if (l.tunType) return *l.tunType == IFF_TAP;
  return l.type == ARPHRD_ETHER;  // kernels without IFLA_TUN_TYPE: a tap is an Ethernet device
}

// The host side of a VM's tap must not carry the guest's MAC: the bridge would install it as a local (host)
// address and keep every frame for the guest to itself. So `mac` is the guest's, kept as a record on the tap,
// and the tap gets libvirt's derivation (the first octet 0xfe) unless linux.hostMac says otherwise.
Mac hostMacFor(const Mac& guest) {
  Mac host = guest;
  host[0] = guest[0] == 0xfe ? 0xfa : 0xfe;
  return host;
}

void tapAttrs(LinuxSession& s, const LinkInfo& l, Attrs& a) {
  a.set("linux.hostMac", l.mac.empty() ? Json(nullptr) : Json(l.mac));
  a.set("mac", nullptr);
  for (const auto& alt : l.altnames)
    if (auto m = parseGuestMacRecord(alt, l.index)) a.set("mac", formatMac(m->data(), m->size()));
  auto get = [&](int t) -> std::optional<uint64_t> {
    auto it = l.tun.find(t);
    return it == l.tun.end() ? std::nullopt : std::optional<uint64_t>(it->second);
  };
  if (auto v = get(IFLA_TUN_MULTI_QUEUE)) a.set("linux.multiQueue", *v != 0);
  if (auto v = get(IFLA_TUN_VNET_HDR)) a.set("linux.vnetHdr", *v != 0);
  // Absent = no owner / group, said explicitly so a pre-image records it.
  auto v = get(IFLA_TUN_OWNER);
  a.set("linux.owner", v ? Json(static_cast<int64_t>(*v)) : Json(nullptr));
  v = get(IFLA_TUN_GROUP);
  a.set("linux.group", v ? Json(static_cast<int64_t>(*v)) : Json(nullptr));
  observeSecurity(s, l.name, a.getString("mac").value_or(""), a);
  observeShaping(s, l, a);
  observeNiocClass(s, l.name, a);
}

short tapFlags(const Attrs& a, bool exclusive) {
  unsigned flags = IFF_TAP | IFF_NO_PI;
  if (a.getBool("linux.multiQueue").value_or(false)) flags |= IFF_MULTI_QUEUE;
  if (a.getBool("linux.vnetHdr").value_or(false)) flags |= IFF_VNET_HDR;
  if (exclusive) flags |= IFF_TUN_EXCL;  // fail on an existing device instead of attaching to it
  return static_cast<short>(static_cast<unsigned short>(flags));
}

// Opens /dev/net/tun in the session's namespace, attaches to (or creates) `name` with `flags`, sets owner
// and group as `a` says (only those in `which`), then `persist` (creation only).
Status tunIoctls(LinuxSession& s, const std::string& name, const Attrs& a, short flags,
                 const std::vector<std::string>& which, bool persist, int* index) {
  return runInNetns(s.nsFd(), [&]() -> Status {
    Fd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return err(std::string("open /dev/net/tun: ") + errnoText(errno));
    ifreq ifr{};
    ifr.ifr_flags = flags;
    std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), sizeof ifr.ifr_name - 1));
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
      int e = errno;
      if (e == EBUSY && (flags & IFF_TUN_EXCL)) return err(std::strerror(EEXIST));
      if (e == EBUSY) return err("the tap is in use by another process (EBUSY)");
      return err(std::string("TUNSETIFF: ") + errnoText(e));
    }
    for (const auto& path : which) {
      unsigned long request = path == "linux.owner" ? TUNSETOWNER : TUNSETGROUP;
      const Json* v = a.find(path);
      if (!v || v->is_null()) {
        if (persist) continue;  // a new tap has none
        // The kernel has no way back to "no owner" (TUNSETOWNER refuses -1): that takes a new tap (the traits
        // say so: replaceOnRemove).
        return err("removing " + path + " needs a replace (delete + create) of the tap");
      }
      if (!v->is_number_integer()) return err(path + " '" + v->dump() + "' is not a known user or group id");
      long id = v->get<long>();
      if (::ioctl(fd.get(), request, id) < 0)
        return err(std::string(path == "linux.owner" ? "TUNSETOWNER: " : "TUNSETGROUP: ") + errnoText(errno));
    }
    // Until TUNSETPERSIST succeeds a new device vanishes with the fd, so a failure leaves nothing behind.
    if (persist && ::ioctl(fd.get(), TUNSETPERSIST, 1) < 0)
      return err(std::string("TUNSETPERSIST: ") + errnoText(errno));
    if (index) *index = static_cast<int>(::if_nametoindex(name.c_str()));
    return {};
  });
}

// Replaces the guest MAC record of a tap (`before` -> `after`, either may be absent).
Status recordGuestMac(LinuxSession& s, const std::string& name, int index, const std::optional<std::string>* before,
                      const std::optional<std::string>& after) {
  auto macOf = [](const std::optional<std::string>& t) { return t ? parseMac(*t, nullptr) : std::nullopt; };
  if (before)
    if (auto m = macOf(*before))
      if (NlOutcome o = delAltname(s.nl(), index, guestMacRecord(index, *m)); !o.ok())
        return s.failure("update the guest MAC of tap " + name, o.message);
  if (auto m = macOf(after))
    if (NlOutcome o = addAltname(s.nl(), index, guestMacRecord(index, *m)); !o.ok())
      return s.failure("record the guest MAC of tap " + name, o.message);
  return {};
}

Status tapCreate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  const Attrs& a = step.after;
  const std::string what = "create tap " + name;
  if (name.size() >= IFNAMSIZ) return s.failure(what, "the name is longer than 15 bytes");

  std::vector<std::string> ids;
  for (const char* path : {"linux.owner", "linux.group"})
    if (a.has(path)) ids.push_back(path);
  int index = 0;
  if (Status st = tunIoctls(s, name, a, tapFlags(a, true), ids, true, &index); !st.ok())
    return s.failure(what, st.error().message);
  if (index > 0) s.remember(name, index);

  auto undo = [&](Status st) {
    (void)deleteLink(s, kTapOps, name);  // all or nothing
    return st;
  };
  LinkChange c;
  if (auto mtu = a.getInt("mtu")) c.mtu = static_cast<uint32_t>(*mtu);
  if (auto text = a.getString("linux.hostMac")) {
    std::string why;
    auto mac = parseMac(*text, &why);
    if (!mac) return undo(s.failure(what, "invalid linux.hostMac '" + *text + "': " + why));
    c.mac = *mac;
  }
  auto at = attachmentOf(s, kTapOps, name, a, true);
  if (!at.ok()) return undo(at.error());
  if (at->bridge) c.master = at->bridge;
  if (auto q = a.getInt("linux.txQueueLen")) c.txqlen = static_cast<uint32_t>(*q);
  if (a.getBool("up").value_or(true)) c.up = true;
  if (Status st = changeLink(s, kTapOps, name, c, "create"); !st.ok()) return undo(st);
  auto idx = s.ifindex(name);
  if (!idx.ok()) return undo(s.failure(what, idx.error().message));
  if (Status st = settleAttachment(s, kTapOps, name, *idx, *at, std::nullopt); !st.ok()) return undo(st);
  if (Status st = recordGuestMac(s, name, *idx, nullptr, a.getString("mac")); !st.ok()) return undo(st);
  auto addrs = a.getStrings("addresses");
  if (!addrs.empty())
    if (Status st = addAddresses(s, kTapOps, name, *idx, addrs); !st.ok()) return undo(st);
  if (Status st = syncSecurity(s, name, a, "mac"); !st.ok()) return undo(st);
  if (Status st = syncShaping(s, name, a); !st.ok()) return undo(st);
  if (Status st = syncNiocClass(s, name, a); !st.ok()) return undo(st);
  return {};
}

Status tapUpdate(LinuxSession& s, const Step& step) {
  const std::string& name = step.addr.name;
  if (Status st = rejectReplaceOnly(s, kTapOps, step, {"type", "linux.multiQueue", "linux.vnetHdr"}); !st.ok())
    return st;
  std::vector<std::string> ids;
  for (const auto& path : step.changed) {
    if (path == "linux.owner" || path == "linux.group") {
      ids.push_back(path);
    } else if (path != "mtu" && path != "mac" && path != "linux.hostMac" && path != "switch" &&
               path != "portGroup" && path != "vlan" && path != "vlan.trunk" && path != "up" &&
               path != "addresses" && path != "linux.txQueueLen" && !securityPath(path) &&
        !shapingPath(path) && path != "niocClass") {
      return s.failure("update tap " + name, "changing " + path + " is not supported by the linux provider");
    }
  }
  if (!ids.empty()) {
    // Owner and group change by attaching to the device (same flags as it has) and setting them again.
    if (Status st = tunIoctls(s, name, step.after, tapFlags(step.after, false), ids, false, nullptr); !st.ok())
      return s.failure("update tap " + name, st.error().message);
  }
  auto change = portLinkChange(s, kTapOps, step, "linux.hostMac");
  if (!change.ok()) return change.error();
  if (Status st = applyPortChange(s, kTapOps, step, *change); !st.ok()) return st;
  if (changes(step, "mac")) {
    auto idx = s.ifindex(name);
    if (!idx.ok()) return s.failure("update tap " + name, idx.error().message);
    const std::optional<std::string> before = step.before.getString("mac");
    if (Status st = recordGuestMac(s, name, *idx, &before, step.after.getString("mac")); !st.ok()) return st;
  }
  if (changes(step, "addresses"))
    if (Status st = syncAddresses(s, kTapOps, name, step.before, step.after); !st.ok()) return st;
  return syncPortPolicies(s, step, "mac");
}

Status tapRemove(LinuxSession& s, const Step& step) {
  if (Status st = dropSecurity(s, step.addr.name); !st.ok()) return st;
  if (Status st = dropNiocClass(s, step.addr.name); !st.ok()) return st;
  return removePort(s, kTapOps, step);
}

void tapObserve(LinuxSession& s, Observation& obs) { s.observeLinks(obs, kTapOps, tapMatches, tapAttrs); }

void tapDescribe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  const Attrs& a = step.after;
  if (a.getBool("linux.multiQueue").value_or(false)) parts.push_back("multi-queue");
  if (a.getBool("linux.vnetHdr").value_or(false)) parts.push_back("vnet_hdr");
  if (const Json* v = a.find("linux.owner")) parts.push_back("owner " + (v->is_string() ? v->get<std::string>() : v->dump()));
  if (const Json* v = a.find("linux.group")) parts.push_back("group " + (v->is_string() ? v->get<std::string>() : v->dump()));
}

void checkOwnerOrGroup(const FieldCheck& fc) {
  const bool user = fc.path == "linux.owner";
  if (fc.value.is_number_integer()) {
    fc.requireInt(0, 4294967294LL);
  } else if (!fc.value.is_string()) {
    fc.fail("field " + fc.path + " must be a " + (user ? "user" : "group") + " name or id");
  } else if (!(user ? lookupUserId(fc.value.get<std::string>()) : lookupGroupId(fc.value.get<std::string>()))) {
    fc.fail("field " + fc.path + ": no " + (user ? "user" : "group") + " named '" + fc.value.get<std::string>() +
            "' on this host");
  }
}

void checkFlag(const FieldCheck& fc) { fc.requireBool(); }

void checkHostMac(const FieldCheck& fc) {
  std::string why;
  if (!fc.value.is_string()) return fc.fail("field linux.hostMac must be a string like fe:54:00:12:34:56");
  auto mac = parseMac(fc.value.get<std::string>(), &why);
  if (!mac) return fc.fail("invalid linux.hostMac '" + fc.value.get<std::string>() + "': " + why);
  if (auto guest = fc.resource.attrs.getString("mac"))
    if (auto g = parseMac(*guest, nullptr); g && *g == *mac)
      fc.fail("linux.hostMac is the guest's MAC (mac): the bridge would keep every frame for the guest as its own; "
              "leave linux.hostMac out (the tap then gets " + formatMac(hostMacFor(*g).data(), 6) + ")");
}

void tapCheck(const Resource& r, const Target& t, Diagnostics& diags) {
  checkBridgePort(r, t, diags);
  checkSecurity(r, diags, "mac");
  checkShaping(r, diags);
}

// Owner and group by id, as the kernel reports them; the host side's MAC derived from the guest's.
void tapNormalize(Resource& r) {
  normalizePortPolicies(r);
  if (auto mac = r.attrs.getString("linux.hostMac"))
    if (auto m = parseMac(*mac, nullptr)) r.attrs.set("linux.hostMac", formatMac(m->data(), m->size()));
  if (!r.attrs.has("linux.hostMac"))
    if (auto guest = r.attrs.getString("mac"))
      if (auto g = parseMac(*guest, nullptr)) {
        Mac host = hostMacFor(*g);
        r.attrs.set("linux.hostMac", formatMac(host.data(), host.size()));
        r.origins["linux.hostMac"] = AttrOrigin{Origin::Default, ""};
      }
  if (auto user = r.attrs.getString("linux.owner"))
    if (auto id = lookupUserId(*user)) r.attrs.set("linux.owner", *id);
  if (auto group = r.attrs.getString("linux.group"))
    if (auto id = lookupGroupId(*group)) r.attrs.set("linux.group", *id);
}

}  // namespace

const KindOps kTapOps{.kind = Kind::Port,
                      .variant = "tap",
                      .label = "tap",
                      .traits = &kPortTraits,
                      .fields = withBridgePortFields({{"linux.multiQueue", checkFlag},
                                                      {"linux.vnetHdr", checkFlag},
                                                      {"linux.owner", checkOwnerOrGroup},
                                                      {"linux.group", checkOwnerOrGroup},
                                                      {"linux.hostMac", checkHostMac},
                                                      {"shaping.averageKbps", checkShapingField},
                                                      {"shaping.peakKbps", checkShapingField},
                                                      {"shaping.burstKiB", checkShapingField},
                                                      {"security.allowMacChanges", checkSecurityField},
                                                      {"security.allowForgedTransmits", checkSecurityField},
                                                      {"security.allowPromiscuous", checkSecurityField}}),
                      .check = tapCheck,
                      .normalize = tapNormalize,
                      .describe = tapDescribe,
                      .observe = tapObserve,
                      .create = tapCreate,
                      .update = tapUpdate,
                      .remove = tapRemove};

}  // namespace vnetplan::lnx
