#include "providers/esxi/host.h"

#include <algorithm>

namespace vnetplan::esxi {

namespace {

const char* const kXml = "--formatter=xml";

EsxcliCommand cmd(std::initializer_list<std::string> words) { return EsxcliCommand{std::vector<std::string>(words)}; }

// Reads one command's XML and checks its shape: `wantList` for list commands, one structure for gets.
Result<XmlOutput> readXml(const std::string& output, const char* what, bool wantList) {
  auto x = parseEsxcliXml(output);
  if (!x) return Error{what + std::string(": ") + x.error().message + " (output: \"" + printable(output, 80) + "\")"};
  if (x->isList != wantList || (!wantList && x->structures.size() != 1))
    return Error{what + std::string(": expected ") + (wantList ? "a list" : "one structure") + " in the XML output"};
  return x;
}

// Collects the first error of a series of typed reads.
struct Reader {
  const XmlStructure& s;
  std::optional<Error> error;
  std::string str(const char* f) {
    auto v = s.str(f);
    if (!v) return note(v.error()), std::string();
    return *v;
  }
  int64_t integer(const char* f) {
    auto v = s.integer(f);
    if (!v) return note(v.error()), 0;
    return *v;
  }
  bool boolean(const char* f) {
    auto v = s.boolean(f);
    if (!v) return note(v.error()), false;
    return *v;
  }
  std::vector<std::string> strings(const char* f) {
    auto v = s.strings(f);
    if (!v) return note(v.error()), std::vector<std::string>();
    return *v;
  }
  void note(const Error& e) {
    if (!error) error = e;
  }
};

void readSecurity(Reader& r, Security& out) {
  out.allowPromiscuous = r.boolean("AllowPromiscuous");
  out.allowMacChange = r.boolean("AllowMACAddressChange");
  out.allowForgedTransmits = r.boolean("AllowForgedTransmits");
}

void readFailover(Reader& r, Failover& out) {
  out.loadBalancing = r.str("LoadBalancing");
  out.failureDetection = r.str("NetworkFailureDetection");
  out.notifySwitches = r.boolean("NotifySwitches");
  out.failback = r.boolean("Failback");
  out.active = r.strings("ActiveAdapters");
  out.standby = r.strings("StandbyAdapters");
}

void readShaping(Reader& r, Shaping& out) {
  out.enabled = r.boolean("Enabled");
  out.averageKbps = r.integer("AverageBandwidth");
  out.peakKbps = r.integer("PeakBandwidth");
  out.burstKib = r.integer("BurstSize");
}

// The three policy gets: security, failover, shaping (in that order), each one structure.
Result<std::vector<XmlStructure>> readPolicies(const std::vector<std::string>& outputs, const std::string& who) {
  if (outputs.size() != 3) return Error{who + ": expected 3 policy outputs"};
  std::vector<XmlStructure> out;
  const char* names[] = {"policy security get", "policy failover get", "policy shaping get"};
  for (size_t i = 0; i < 3; ++i) {
    auto x = readXml(outputs[i], (who + " " + names[i]).c_str(), false);
    if (!x) return x.error();
    out.push_back(std::move(x->structures[0]));
  }
  return out;
}

}  // namespace

const VSwitchInfo* HostState::vswitch(const std::string& name) const {
  for (const auto& v : vswitches)
    if (v.name == name) return &v;
  return nullptr;
}
const PortGroupInfo* HostState::portgroup(const std::string& name) const {
  for (const auto& p : portgroups)
    if (p.name == name) return &p;
  return nullptr;
}
const NicInfo* HostState::nic(const std::string& name) const {
  for (const auto& n : nics)
    if (n.name == name) return &n;
  return nullptr;
}
std::string HostState::nicNames() const {
  std::string out;
  for (const auto& n : nics) out += (out.empty() ? "" : ", ") + n.name;
  return out.empty() ? "none" : out;
}

std::vector<EsxcliCommand> listCommands() {
  return {cmd({kXml, "network", "vswitch", "standard", "list"}),
          cmd({kXml, "network", "vswitch", "standard", "portgroup", "list"}),
          cmd({kXml, "network", "nic", "list"}),
          cmd({kXml, "network", "ip", "interface", "list"}),
          cmd({kXml, "network", "ip", "interface", "ipv4", "get"})};
}

std::vector<EsxcliCommand> vswitchPolicyCommands(const std::string& vswitch) {
  std::vector<EsxcliCommand> out;
  for (const char* p : {"security", "failover", "shaping"})
    out.push_back(cmd({kXml, "network", "vswitch", "standard", "policy", p, "get", "--vswitch-name=" + vswitch}));
  return out;
}

std::vector<EsxcliCommand> portgroupPolicyCommands(const std::string& portgroup) {
  std::vector<EsxcliCommand> out;
  for (const char* p : {"security", "failover", "shaping"})
    out.push_back(
        cmd({kXml, "network", "vswitch", "standard", "portgroup", "policy", p, "get", "--portgroup-name=" + portgroup}));
  return out;
}

Result<HostState> parseLists(const std::vector<std::string>& outputs) {
  if (outputs.size() != 5) return Error{"expected 5 list outputs"};
  HostState h;
  auto vs = readXml(outputs[0], "vswitch standard list", true);
  if (!vs) return vs.error();
  for (const auto& s : vs->structures) {
    Reader r{s, {}};
    VSwitchInfo v;
    v.name = r.str("Name");
    v.configuredPorts = r.integer("ConfiguredPorts");
    v.mtu = r.integer("MTU");
    v.cdpStatus = r.str("CDPStatus");
    v.uplinks = r.strings("Uplinks");
    if (r.error) return Error{"vswitch standard list: " + r.error->message};
    h.vswitches.push_back(std::move(v));
  }
  auto pgs = readXml(outputs[1], "portgroup list", true);
  if (!pgs) return pgs.error();
  for (const auto& s : pgs->structures) {
    Reader r{s, {}};
    PortGroupInfo p;
    p.name = r.str("Name");
    p.vswitch = r.str("VirtualSwitch");
    p.vlan = r.integer("VLANID");
    if (r.error) return Error{"portgroup list: " + r.error->message};
    h.portgroups.push_back(std::move(p));
  }
  auto nics = readXml(outputs[2], "nic list", true);
  if (!nics) return nics.error();
  for (const auto& s : nics->structures) {
    Reader r{s, {}};
    NicInfo n;
    n.name = r.str("Name");
    n.mac = r.str("MACAddress");
    n.linkStatus = r.str("LinkStatus");
    if (r.error) return Error{"nic list: " + r.error->message};
    h.nics.push_back(std::move(n));
  }
  auto vmks = readXml(outputs[3], "ip interface list", true);
  if (!vmks) return vmks.error();
  for (const auto& s : vmks->structures) {
    Reader r{s, {}};
    VmknicInfo k;
    k.name = r.str("Name");
    k.mac = r.str("MACAddress");
    k.portgroup = r.str("Portgroup");
    k.netstack = r.str("NetstackInstance");
    k.enabled = r.boolean("Enabled");
    k.mtu = r.integer("MTU");
    if (r.error) return Error{"ip interface list: " + r.error->message};
    h.vmknics.push_back(std::move(k));
  }
  auto v4 = readXml(outputs[4], "ip interface ipv4 get", true);
  if (!v4) return v4.error();
  for (const auto& s : v4->structures) {
    Reader r{s, {}};
    std::string name = r.str("Name");
    std::string type = r.str("AddressType");
    std::string addr = r.str("IPv4Address"), mask = r.str("IPv4Netmask");
    if (r.error) return Error{"ip interface ipv4 get: " + r.error->message};
    for (auto& k : h.vmknics)
      if (k.name == name) {
        std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::toupper(c); });
        k.ipv4Type = type;
        k.ipv4Address = addr;
        k.ipv4Netmask = mask;
      }
  }
  return h;
}

Status parseVswitchPolicies(const std::vector<std::string>& outputs, VSwitchInfo& vs) {
  auto p = readPolicies(outputs, "vSwitch " + vs.name);
  if (!p) return p.error();
  Reader sec{(*p)[0], {}}, fo{(*p)[1], {}}, sh{(*p)[2], {}};
  readSecurity(sec, vs.security);
  readFailover(fo, vs.failover);
  readShaping(sh, vs.shaping);
  for (Reader* r : {&sec, &fo, &sh})
    if (r->error) return Error{"vSwitch " + vs.name + ": " + r->error->message};
  vs.policiesRead = true;
  return {};
}

Status parsePortgroupPolicies(const std::vector<std::string>& outputs, PortGroupInfo& pg) {
  auto p = readPolicies(outputs, "port group " + pg.name);
  if (!p) return p.error();
  Reader sec{(*p)[0], {}}, fo{(*p)[1], {}}, sh{(*p)[2], {}};
  readSecurity(sec, pg.security);
  pg.ovPromiscuous = sec.boolean("OverrideVswitchAllowPromiscuous");
  pg.ovMacChange = sec.boolean("OverrideVswitchAllowMACAddressChange");
  pg.ovForgedTransmits = sec.boolean("OverrideVswitchAllowForgedTransmits");
  readFailover(fo, pg.failover);
  pg.ovLoadBalancing = fo.boolean("OverrideVswitchLoadBalancing");
  pg.ovFailureDetection = fo.boolean("OverrideVswitchNetworkFailureDetection");
  pg.ovNotifySwitches = fo.boolean("OverrideVswitchNotifySwitches");
  pg.ovFailback = fo.boolean("OverrideVswitchFailback");
  pg.ovUplinks = fo.boolean("OverrideVswitchUplinks");
  readShaping(sh, pg.shaping);
  pg.ovShaping = sh.boolean("OverrideVswitchShaping");
  for (Reader* r : {&sec, &fo, &sh})
    if (r->error) return Error{"port group " + pg.name + ": " + r->error->message};
  pg.policiesRead = true;
  return {};
}

bool isNotFound(const std::string& output) { return output.find("Not found") != std::string::npos; }

}  // namespace vnetplan::esxi
