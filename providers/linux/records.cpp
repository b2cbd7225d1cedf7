#include "providers/linux/records.h"

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <sys/socket.h>

#include <cerrno>

namespace vnetplan::lnx {

namespace {

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string prefixed(const char* kind, int ifindex) { return std::string(kind) + "." + std::to_string(ifindex) + "."; }

NlOutcome altnameRequest(NlSocket& sock, int type, int ifindex, const std::string& alt) {
  NlMsg m = newMsg(type, type == RTM_NEWLINKPROP ? NLM_F_CREATE | NLM_F_EXCL : 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) return {ENOMEM, "out of memory"};
  nlattr* list = nla_nest_start(m.get(), IFLA_PROP_LIST);
  if (!list || nla_put_string(m.get(), IFLA_ALT_IFNAME, alt.c_str()) < 0) return {ENOMEM, "out of memory"};
  nla_nest_end(m.get(), list);
  return sock.request(m.get());
}

}  // namespace

std::string pgTag(const std::string& portGroup, const VlanSpec& v) { return "vnppg." + portGroup + "." + vlanCode(v); }

std::optional<PgTag> parsePgTag(std::string_view alt) {
  if (!startsWith(alt, "vnppg.")) return std::nullopt;
  std::string_view rest = alt.substr(6);
  auto dot = rest.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  auto vlan = parseVlanCode(rest.substr(dot + 1));
  if (!vlan) return std::nullopt;
  return PgTag{std::string(rest.substr(0, dot)), *vlan};
}

std::string pgBridgeMark(int ifindex) { return "vnppgb." + std::to_string(ifindex); }
bool isPgBridgeMark(std::string_view alt) { return startsWith(alt, "vnppgb."); }

std::string uplinkRecord(int ifindex, const UplinkRecord& r) {
  return prefixed("vnpup", ifindex) + std::to_string(r.mtu) + (r.up ? ".up" : ".down");
}

bool isUplinkRecord(std::string_view alt) { return startsWith(alt, "vnpup."); }

std::optional<UplinkRecord> parseUplinkRecord(std::string_view alt, int ifindex) {
  const std::string p = prefixed("vnpup", ifindex);
  if (!startsWith(alt, p)) return std::nullopt;
  std::string_view rest = alt.substr(p.size());
  auto dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 6) return std::nullopt;
  std::string_view mtu = rest.substr(0, dot), state = rest.substr(dot + 1);
  if (mtu.find_first_not_of("0123456789") != std::string_view::npos || (state != "up" && state != "down"))
    return std::nullopt;
  return UplinkRecord{static_cast<uint32_t>(std::stoul(std::string(mtu))), state == "up"};
}

std::string vfMark(int ifindex, VfMark m) {
  return "vnpvf." + std::to_string(ifindex) + (m == VfMark::Off ? ".off" : ".auto");
}

VfMark parseVfMark(std::string_view alt, int ifindex) {
  if (alt == vfMark(ifindex, VfMark::Auto)) return VfMark::Auto;
  if (alt == vfMark(ifindex, VfMark::Off)) return VfMark::Off;
  return VfMark::None;
}

std::string guestMacRecord(int ifindex, const Mac& mac) {
  std::string hex = formatMac(mac.data(), mac.size());
  std::string compact;
  for (char c : hex)
    if (c != ':') compact += c;
  return prefixed("vnpmac", ifindex) + compact;
}

std::optional<Mac> parseGuestMacRecord(std::string_view alt, int ifindex) {
  const std::string p = prefixed("vnpmac", ifindex);
  if (!startsWith(alt, p) || alt.size() != p.size() + 12) return std::nullopt;
  std::string text;
  for (size_t i = 0; i < 12; i += 2) text += std::string(alt.substr(p.size() + i, 2)) + (i < 10 ? ":" : "");
  return parseMac(text, nullptr);
}

std::string netMark(const std::string& network, const std::string& mode) { return "vnpnet." + network + "." + mode; }

std::optional<NetMark> parseNetMark(std::string_view alt) {
  if (!startsWith(alt, "vnpnet.")) return std::nullopt;
  std::string_view rest = alt.substr(7);
  auto dot = rest.rfind('.');  // a Network's name may hold dots, a mode never does
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == rest.size()) return std::nullopt;
  return NetMark{std::string(rest.substr(0, dot)), std::string(rest.substr(dot + 1))};
}

std::string mirrorRecord(const std::string& mirror) { return "vnpmir." + mirror; }

std::optional<std::string> parseMirrorRecord(std::string_view alt) {
  if (!startsWith(alt, "vnpmir.") || alt.size() == 7) return std::nullopt;
  return std::string(alt.substr(7));
}

std::string fwdRecord(const std::string& network, bool before) {
  return "vnpfwd." + network + (before ? ".1" : ".0");
}

std::optional<FwdRecord> parseFwdRecord(std::string_view alt) {
  if (!startsWith(alt, "vnpfwd.") || alt.size() < 10) return std::nullopt;
  std::string_view tail = alt.substr(alt.size() - 2);
  if (tail != ".0" && tail != ".1") return std::nullopt;
  return FwdRecord{std::string(alt.substr(7, alt.size() - 9)), tail == ".1"};
}

NlOutcome addAltname(NlSocket& sock, int ifindex, const std::string& alt) {
  NlOutcome o = altnameRequest(sock, RTM_NEWLINKPROP, ifindex, alt);
  if (o.errnum == EEXIST) return {};
  return o;
}

NlOutcome delAltname(NlSocket& sock, int ifindex, const std::string& alt) {
  NlOutcome o = altnameRequest(sock, RTM_DELLINKPROP, ifindex, alt);
  if (o.errnum == ENOENT || o.errnum == ENODEV) return {};
  return o;
}

}  // namespace vnetplan::lnx
