#include "providers/linux/sriov.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netlink/attr.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <algorithm>

#include "base/fd.h"
#include "providers/linux/kind.h"
#include "providers/linux/values.h"

namespace vnetplan::lnx {

namespace {

struct StateName {
  int id;
  const char* name;
};
constexpr StateName kStates[] = {
    {IFLA_VF_LINK_STATE_AUTO, "auto"}, {IFLA_VF_LINK_STATE_ENABLE, "enable"}, {IFLA_VF_LINK_STATE_DISABLE, "disable"}};

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

void parseVfInfo(nlattr* info, VfConfig& c) {
  nlattr* tb[IFLA_VF_MAX + 1] = {};
  if (nla_parse_nested(tb, IFLA_VF_MAX, info, nullptr) < 0) return;
  auto fits = [](nlattr* a, size_t n) { return a && static_cast<size_t>(nla_len(a)) >= n; };
  if (fits(tb[IFLA_VF_MAC], sizeof(ifla_vf_mac))) {
    const auto* m = static_cast<const ifla_vf_mac*>(nla_data(tb[IFLA_VF_MAC]));
    c.vf = static_cast<int>(m->vf);
    c.mac = formatMac(m->mac, 6);
  }
  if (fits(tb[IFLA_VF_VLAN], sizeof(ifla_vf_vlan))) {
    const auto* v = static_cast<const ifla_vf_vlan*>(nla_data(tb[IFLA_VF_VLAN]));
    c.vlan = static_cast<int>(v->vlan);
    c.qos = static_cast<int>(v->qos);
  }
  if (tb[IFLA_VF_VLAN_LIST]) {
    nlattr* a;
    int rem;
    nla_for_each_nested(a, tb[IFLA_VF_VLAN_LIST], rem) {
      if (nla_type(a) != IFLA_VF_VLAN_INFO || !fits(a, sizeof(ifla_vf_vlan_info))) continue;
      const auto* v = static_cast<const ifla_vf_vlan_info*>(nla_data(a));
      c.vlanProto = ntohs(v->vlan_proto);
      break;  // the kernel reports one entry
    }
  }
  if (fits(tb[IFLA_VF_RATE], sizeof(ifla_vf_rate))) {
    const auto* r = static_cast<const ifla_vf_rate*>(nla_data(tb[IFLA_VF_RATE]));
    c.minRate = r->min_tx_rate;
    c.maxRate = r->max_tx_rate;
  }
  if (fits(tb[IFLA_VF_SPOOFCHK], sizeof(ifla_vf_spoofchk))) {
    const auto* s = static_cast<const ifla_vf_spoofchk*>(nla_data(tb[IFLA_VF_SPOOFCHK]));
    c.spoofchk = static_cast<int32_t>(s->setting) < 0 ? -1 : static_cast<int>(s->setting != 0);
  }
  if (fits(tb[IFLA_VF_TRUST], sizeof(ifla_vf_trust))) {
    const auto* t = static_cast<const ifla_vf_trust*>(nla_data(tb[IFLA_VF_TRUST]));
    c.trust = static_cast<int32_t>(t->setting) < 0 ? -1 : static_cast<int>(t->setting != 0);
  }
  if (fits(tb[IFLA_VF_LINK_STATE], sizeof(ifla_vf_link_state))) {
    const auto* l = static_cast<const ifla_vf_link_state*>(nla_data(tb[IFLA_VF_LINK_STATE]));
    c.linkState = static_cast<int>(l->link_state);
  }
}

std::string hex12(const std::string& mac) {
  std::string out;
  for (char ch : mac)
    if (ch != ':') out += ch;
  return out;
}

}  // namespace

const char* linkStateName(int state) {
  for (const auto& s : kStates)
    if (s.id == state) return s.name;
  return "auto";
}

std::optional<int> linkStateOf(std::string_view name) {
  for (const auto& s : kStates)
    if (name == s.name) return s.id;
  return std::nullopt;
}

Result<std::vector<VfConfig>> readVfs(NlSocket& sock, const std::string& pf) {
  NlMsg m = newMsg(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
      nla_put_string(m.get(), IFLA_IFNAME, pf.c_str()) < 0 ||
      nla_put_u32(m.get(), IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS) < 0)
    return err("out of memory");
  std::vector<VfConfig> out;
  bool seen = false;
  NlOutcome o = sock.request(m.get(), [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    nlattr* tb[IFLA_MAX + 1] = {};
    if (nlmsg_parse(const_cast<nlmsghdr*>(h), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0) return;
    seen = true;
    if (!tb[IFLA_VFINFO_LIST]) return;
    nlattr* a;
    int rem;
    nla_for_each_nested(a, tb[IFLA_VFINFO_LIST], rem) {
      if (nla_type(a) != IFLA_VF_INFO) continue;
      VfConfig c;
      parseVfInfo(a, c);
      out.push_back(c);
    }
  });
  if (!o.ok()) return err(o.errnum == ENODEV ? "no interface named " + pf : o.message);
  if (!seen) return err("no interface named " + pf);
  std::sort(out.begin(), out.end(), [](const VfConfig& a, const VfConfig& b) { return a.vf < b.vf; });
  return out;
}

const char* vfFieldName(VfField f) {
  switch (f) {
    case VfField::Mac: return "mac";
    case VfField::Vlan: return "vlan";
    case VfField::Rate: return "shaping";
    case VfField::Spoofchk: return "security.allowForgedTransmits";
    case VfField::Trust: return "security.allowMacChanges";
    case VfField::LinkState: return "linkState";
  }
  return "?";
}

NlOutcome setVf(NlSocket& sock, const std::string& pf, VfField field, const VfConfig& c) {
  NlMsg m = newMsg(RTM_SETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (!m || nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
      nla_put_string(m.get(), IFLA_IFNAME, pf.c_str()) < 0)
    return {ENOMEM, "out of memory"};
  nlattr* list = nla_nest_start(m.get(), IFLA_VFINFO_LIST);
  nlattr* info = list ? nla_nest_start(m.get(), IFLA_VF_INFO) : nullptr;
  if (!info) return {ENOMEM, "out of memory"};
  const auto vf = static_cast<uint32_t>(c.vf);
  int rc = 0;
  switch (field) {
    case VfField::Mac: {
      ifla_vf_mac v{};
      v.vf = vf;
      if (auto mac = parseMac(c.mac, nullptr)) std::memcpy(v.mac, mac->data(), mac->size());
      rc = nla_put(m.get(), IFLA_VF_MAC, sizeof v, &v);
      break;
    }
    case VfField::Vlan: {
      ifla_vf_vlan v{vf, static_cast<uint32_t>(c.vlan), static_cast<uint32_t>(c.qos)};
      rc = nla_put(m.get(), IFLA_VF_VLAN, sizeof v, &v);
      break;
    }
    case VfField::Rate: {
      ifla_vf_rate v{vf, static_cast<uint32_t>(c.minRate), static_cast<uint32_t>(c.maxRate)};
      rc = nla_put(m.get(), IFLA_VF_RATE, sizeof v, &v);
      break;
    }
    case VfField::Spoofchk: {
      ifla_vf_spoofchk v{vf, static_cast<uint32_t>(c.spoofchk > 0)};
      rc = nla_put(m.get(), IFLA_VF_SPOOFCHK, sizeof v, &v);
      break;
    }
    case VfField::Trust: {
      ifla_vf_trust v{vf, static_cast<uint32_t>(c.trust > 0)};
      rc = nla_put(m.get(), IFLA_VF_TRUST, sizeof v, &v);
      break;
    }
    case VfField::LinkState: {
      ifla_vf_link_state v{vf, static_cast<uint32_t>(c.linkState)};
      rc = nla_put(m.get(), IFLA_VF_LINK_STATE, sizeof v, &v);
      break;
    }
  }
  if (rc < 0) return {ENOMEM, "out of memory"};
  nla_nest_end(m.get(), info);
  nla_nest_end(m.get(), list);
  return sock.request(m.get());
}

NlOutcome setVfDiff(NlSocket& sock, const std::string& pf, const VfConfig& want, const VfConfig* have,
                    VfField* failed) {
  struct Item {
    VfField f;
    bool differs;
  };
  const Item items[] = {
      {VfField::Mac, !have || have->mac != want.mac},
      {VfField::Vlan, !have || have->vlan != want.vlan || have->qos != want.qos || have->vlanProto != want.vlanProto},
      {VfField::Rate, !have || have->minRate != want.minRate || have->maxRate != want.maxRate},
      {VfField::Spoofchk, want.spoofchk >= 0 && (!have || have->spoofchk != want.spoofchk)},
      {VfField::Trust, want.trust >= 0 && (!have || have->trust != want.trust)},
      {VfField::LinkState, !have || have->linkState != want.linkState},
  };
  for (const auto& it : items) {
    if (!it.differs) continue;
    NlOutcome o = setVf(sock, pf, it.f, want);
    if (!o.ok()) {
      if (failed) *failed = it.f;
      return o;
    }
  }
  return {};
}

std::string vfRecord(const VfConfig& p, const std::string& port) {
  std::ostringstream s;
  s << "vnpsvf." << p.vf << "." << hex12(p.mac) << "." << p.vlan << "." << p.qos << "." << p.minRate << "."
    << p.maxRate << "." << (p.spoofchk < 0 ? 2 : p.spoofchk) << "." << (p.trust < 0 ? 2 : p.trust) << "."
    << p.linkState << "." << port;
  return s.str();
}

std::optional<VfRecord> parseVfRecord(std::string_view alt) {
  if (!startsWith(alt, "vnpsvf.")) return std::nullopt;
  std::string_view rest = alt.substr(7);
  std::vector<std::string> parts;
  for (int i = 0; i < 9; ++i) {
    auto dot = rest.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    parts.emplace_back(rest.substr(0, dot));
    rest = rest.substr(dot + 1);
  }
  if (rest.empty()) return std::nullopt;
  auto num = [](const std::string& t) -> std::optional<int64_t> {
    if (t.empty() || t.size() > 10 || t.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return std::stoll(t);
  };
  VfRecord r;
  r.port = std::string(rest);
  const std::string& h = parts[1];
  if (h.size() != 12 || h.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
  r.pre.mac.clear();
  for (size_t i = 0; i < 12; i += 2) r.pre.mac += (i ? ":" : "") + h.substr(i, 2);
  std::optional<int64_t> v[9];
  for (int i : {0, 2, 3, 4, 5, 6, 7, 8}) {
    v[i] = num(parts[static_cast<size_t>(i)]);
    if (!v[i]) return std::nullopt;
  }
  r.pre.vf = static_cast<int>(*v[0]);
  r.pre.vlan = static_cast<int>(*v[2]);
  r.pre.qos = static_cast<int>(*v[3]);
  r.pre.minRate = *v[4];
  r.pre.maxRate = *v[5];
  r.pre.spoofchk = *v[6] > 1 ? -1 : static_cast<int>(*v[6]);
  r.pre.trust = *v[7] > 1 ? -1 : static_cast<int>(*v[7]);
  r.pre.linkState = static_cast<int>(*v[8]);
  return r;
}

// ---- sysfs

std::optional<std::string> readSysfs(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Status writeSysfs(const std::string& path, const std::string& value) {
  // One write(2): sysfs attributes take their value from a single write, and its errno is the driver's answer.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return err("cannot open " + path + ": " + errnoText(errno));
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) return err("writing '" + value + "' to " + path + ": " + errnoText(errno));
  return {};
}

std::string linkTarget(const std::string& path) {
  std::error_code ec;
  auto t = std::filesystem::read_symlink(path, ec);
  return ec ? "" : t.filename().string();
}

PfDevice pfDevice(const LinkInfo& link) {
  PfDevice d;
  if (link.parentBus.empty() || link.parentDev.empty()) return d;
  d.dir = "/sys/bus/" + link.parentBus + "/devices/" + link.parentDev;
  d.driver = linkTarget(d.dir + "/driver");
  std::error_code ec;
  d.sriov = std::filesystem::exists(d.dir + "/sriov_numvfs", ec);
  return d;
}

std::string driverOf(const LinkInfo& link) {
  PfDevice d = pfDevice(link);
  if (!d.driver.empty()) return d.driver;
  return link.kind;
}

Result<int> readNumVfs(const PfDevice& d) {
  auto s = readSysfs(d.dir + "/sriov_numvfs");
  if (!s || s->empty() || s->find_first_not_of("0123456789") != std::string::npos)
    return err("cannot read " + d.dir + "/sriov_numvfs");
  return std::stoi(*s);
}

Status writeNumVfs(const PfDevice& d, int n) { return writeSysfs(d.dir + "/sriov_numvfs", std::to_string(n)); }

}  // namespace vnetplan::lnx
