// Port of type vmkernel = a vmkernel NIC (vmkN) on a port group: its MTU, MAC, administrative state, netstack and
// IPv4 setting (a static address, DHCP, or none). It takes its port group's VLAN and policies.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <regex>

#include "base/netaddr.h"
#include "providers/esxi/kind.h"

namespace vnetplan::esxi {

namespace {

using std::chrono::milliseconds;

const KindTraits kPortTraits{
    .kind = Kind::Port,
    // esxcli sets a vmknic's MTU, state and IPv4, nothing else: a new port group, MAC or netstack is a new vmknic.
    .replaceOn = {"type", "portGroup", "mac", "esxi.netstack"},
    .disruptiveOn = {"addresses", "esxi.dhcp", "mtu", "up"},
    .unorderedLists = {},
    .defaults = {{"type", "vmkernel"},
                 {"mtu", 1500},
                 {"up", true},
                 {"esxi.dhcp", false},
                 {"esxi.netstack", "defaultTcpipStack"}},
    // A vmknic's MAC is ESXi's choice unless the manifest gives one: only the manifest's fields are compared (and
    // every other managed field has a default, so a vmknic that moved from it is still noticed).
    .exhaustive = false,
    .verify = {3, milliseconds(50)},
};

const std::vector<std::string> kIf = {"network", "ip", "interface"};

std::vector<std::string> ipif(std::initializer_list<std::string> more) {
  std::vector<std::string> out = kIf;
  out.insert(out.end(), more);
  return out;
}

void checkType(const FieldCheck& fc) { (void)fc; }  // only vmkernel reaches this row

void checkBool(const FieldCheck& fc) { fc.requireBool(); }

void checkNetstack(const FieldCheck& fc) {
  if (!fc.requireString()) return;
  const std::string& n = fc.value.get_ref<const std::string&>();
  bool ok = !n.empty() && n.size() <= 64 &&
            std::all_of(n.begin(), n.end(), [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
  if (!ok) fc.fail("field esxi.netstack: '" + n + "' is not a netstack name (e.g. defaultTcpipStack, vmotion)");
}

void checkAddresses(const FieldCheck& fc) {
  if (!fc.value.is_array()) return;  // the schema says it
  int v4 = 0;
  for (const auto& a : fc.value) {
    if (!a.is_string()) continue;
    auto p = parsePrefix(a.get<std::string>());
    if (!p) continue;  // the schema says it
    if (p->family != AF_INET)
      unsupported(fc, a.get<std::string>() + ": vnetplan sets a vmkernel NIC's IPv4 address only (IPv6: not yet)");
    else
      ++v4;
  }
  if (v4 > 1) unsupported(fc, "a vmkernel NIC has one IPv4 address");
}

// Policies reach a vmknic from its port group; one of its own is something ESXi has no place for.
void checkPolicy(const FieldCheck& fc) {
  if (inherited(fc)) return;
  unsupported(fc, "a vmkernel NIC takes its port group's policies; set " + fc.path.substr(0, fc.path.find('.')) +
                      " on the PortGroup");
}

void checkTags(const FieldCheck& fc) {
  unsupported(fc, "tagging vmkernel services (esxcli network ip interface tag) is not implemented yet");
}

std::vector<FieldRule> portFields() {
  return {{"type", checkType},       {"portGroup", nullptr},        {"mtu", checkMtu},
          {"mac", nullptr},          {"addresses", checkAddresses}, {"up", checkBool},
          {"esxi.dhcp", checkBool},  {"esxi.netstack", checkNetstack}, {"esxi.tags", checkTags},
          {"security.", checkPolicy}, {"shaping.", checkPolicy},     {"teaming.", checkPolicy}};
}

void check(const Resource& r, const Target&, Diagnostics& diags) {
  static const std::regex vmk("^vmk([0-9]|[1-9][0-9])$");
  if (!std::regex_match(r.addr.name, vmk))
    diags.error(r.loc,
                "esxi: " + r.addr.str() + ": a vmkernel NIC is named vmkN, N from 0 to 99 (e.g. vmk1), not '" +
                    r.addr.name + "'",
                "provider/invalid");
  if (r.attrs.getBool("esxi.dhcp") == true && !r.attrs.getStrings("addresses").empty())
    diags.error(r.loc, "esxi: " + r.addr.str() + ": addresses and esxi.dhcp: true exclude each other",
                "provider/invalid");
  if (r.addr.name == "vmk0")
    diags.warning(r.loc,
                  "esxi: " + r.addr.str() +
                      ": vmk0 is usually the host's management interface; a change to it can cut the SSH "
                      "connection vnetplan works through",
                  "provider/management-vmk");
}

void normalize(Resource& r) {
  Attrs& a = r.attrs;
  for (const char* prefix : {"security.", "shaping.", "teaming."}) {
    std::vector<std::string> drop;
    for (const auto& [path, v] : a.values())
      if (path.rfind(prefix, 0) == 0 && isInherited(r, path)) drop.push_back(path);
    for (const auto& p : drop) a.erase(p);
  }
  if (auto mac = a.getString("mac")) {
    std::string m = *mac;
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
    a.set("mac", m);
  }
  if (const Json* list = a.find("addresses"); list && list->is_array()) {
    Json out = Json::array();
    for (const auto& e : *list) {
      auto p = e.is_string() ? parsePrefix(e.get<std::string>()) : std::nullopt;
      out.push_back(p ? Json(p->str()) : e);
    }
    a.set("addresses", out);
  }
  // No addresses and no DHCP is "no IPv4": compared as such, so an address added by hand is noticed.
  if (a.getBool("esxi.dhcp") != true && !a.has("addresses")) {
    a.set("addresses", Json::array());
    r.origins["addresses"] = AttrOrigin{Origin::Default, ""};
  }
}

void describe(const Step& step, const Target&, std::vector<std::string>& parts) {
  if (step.action != StepAction::Create) return;
  const Attrs& a = step.after;
  if (auto p = a.getString("portGroup")) parts.push_back("on port group " + *p);
  if (a.getBool("esxi.dhcp") == true) parts.push_back("IPv4 by DHCP");
  for (const auto& addr : a.getStrings("addresses")) parts.push_back(addr);
  if (auto n = a.getString("esxi.netstack"); n && *n != "defaultTcpipStack") parts.push_back("netstack " + *n);
}

std::string prefixOf(const std::string& address, const std::string& netmask) {
  in_addr m{};
  if (inet_pton(AF_INET, netmask.c_str(), &m) != 1) return address;
  uint32_t bits = ntohl(m.s_addr);
  int len = 0;
  while (len < 32 && (bits & (0x80000000u >> len))) ++len;
  if (len < 32 && (bits << len) != 0) return address + "/" + netmask;  // not a prefix: shown as ESXi has it
  auto p = parsePrefix(address + "/" + std::to_string(len));
  return p ? p->str() : address + "/" + std::to_string(len);
}

void observe(const EsxLive& live, Observation& obs) {
  for (const auto& k : live.host.vmknics) {
    ObservedObject o;
    o.addr = Address{live.target, Kind::Port, k.name};
    Attrs& a = o.attrs;
    a.set("type", "vmkernel");
    a.set("portGroup", k.portgroup);
    a.set("mtu", k.mtu);
    std::string mac = k.mac;
    std::transform(mac.begin(), mac.end(), mac.begin(), [](unsigned char c) { return std::tolower(c); });
    a.set("mac", mac);
    a.set("up", k.enabled);
    a.set("esxi.netstack", k.netstack);
    a.set("esxi.dhcp", k.ipv4Type == "DHCP");
    if (k.ipv4Type == "STATIC") a.set("addresses", Json::array({prefixOf(k.ipv4Address, k.ipv4Netmask)}));
    else if (k.ipv4Type != "DHCP") a.set("addresses", Json::array());
    obs.objects[o.addr] = std::move(o);
  }
}

// `ip interface ipv4 set` for the IPv4 setting of `a`.
Result<std::vector<std::string>> ipv4Args(const std::string& vmk, const Attrs& a) {
  auto args = ipif({"ipv4", "set", "--interface-name=" + vmk});
  if (a.getBool("esxi.dhcp") == true) {
    args.push_back("--type=dhcp");
    return args;
  }
  auto addrs = a.getStrings("addresses");
  if (addrs.empty()) {
    args.push_back("--type=none");
    return args;
  }
  auto p = parsePrefix(addrs[0]);
  if (!p || p->family != AF_INET) return err("addresses: " + addrs[0] + " is not an IPv4 address with a prefix length");
  uint32_t mask = p->prefixLen == 0 ? 0 : ~uint32_t{0} << (32 - p->prefixLen);
  in_addr m{};
  m.s_addr = htonl(mask);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &m, buf, sizeof buf);
  args.push_back("--type=static");
  args.push_back("--ipv4=" + p->addressStr());
  args.push_back("--netmask=" + std::string(buf));
  return args;
}

Status create(StepCommands& ctx, const Step& step) {
  const Attrs& a = step.after;
  const std::string i = "--interface-name=" + step.addr.name;
  auto group = a.getString("portGroup");
  if (!group) return err("a vmkernel NIC needs its portGroup");
  auto add = ipif({"add", i, "--portgroup-name=" + *group});
  if (auto mac = a.getString("mac")) add.push_back("--mac-address=" + *mac);
  if (auto mtu = a.getInt("mtu"); mtu && *mtu != 1500) add.push_back("--mtu=" + std::to_string(*mtu));
  if (auto n = a.getString("esxi.netstack"); n && *n != "defaultTcpipStack") add.push_back("--netstack=" + *n);
  ctx.add(add);
  // A new vmknic has no IPv4 setting until one is set.
  if (a.getBool("esxi.dhcp") == true || !a.getStrings("addresses").empty()) {
    auto v4 = ipv4Args(step.addr.name, a);
    if (!v4) return v4.error();
    ctx.add(*v4);
  }
  if (a.getBool("up") == false) ctx.add(ipif({"set", i, "--enabled=false"}));
  return {};
}

Status update(StepCommands& ctx, const Step& step) {
  const Attrs& a = step.after;
  const std::string i = "--interface-name=" + step.addr.name;
  auto set = ipif({"set", i});
  if (changed(step, "mtu")) set.push_back("--mtu=" + std::to_string(a.getInt("mtu").value_or(1500)));
  if (changed(step, "up")) set.push_back("--enabled=" + boolText(a.getBool("up").value_or(true)));
  if (set.size() > 5) ctx.add(set);
  if (changed(step, "addresses") || changed(step, "esxi.dhcp")) {
    auto v4 = ipv4Args(step.addr.name, a);
    if (!v4) return v4.error();
    ctx.add(*v4);
  }
  return {};
}

Status remove(StepCommands& ctx, const Step& step) {
  ctx.add(ipif({"remove", "--interface-name=" + step.addr.name}));
  return {};
}

}  // namespace

const KindOps kVmkernelOps{
    .kind = Kind::Port,
    .variant = "vmkernel",
    .label = "vmkernel NIC",
    .traits = &kPortTraits,
    .fields = portFields(),
    .check = check,
    .normalize = normalize,
    .describe = describe,
    .observe = observe,
    .create = create,
    .update = update,
    .remove = remove,
};

}  // namespace vnetplan::esxi
