#include "tests/esxi/emulator/state.h"

#include <cstdio>

namespace esxemu {

VSwitch* Host::vswitch(const std::string& name) {
  for (auto& v : vswitches)
    if (v.name == name) return &v;
  return nullptr;
}
PortGroup* Host::portgroup(const std::string& name) {
  for (auto& p : portgroups)
    if (p.name == name) return &p;
  return nullptr;
}
Nic* Host::nic(const std::string& name) {
  for (auto& n : nics)
    if (n.name == name) return &n;
  return nullptr;
}
Vmknic* Host::vmknic(const std::string& name) {
  for (auto& k : vmknics)
    if (k.name == name) return &k;
  return nullptr;
}
Vmknic* Host::vmknicOn(const std::string& pg) {
  for (auto& k : vmknics)
    if (k.portgroup == pg) return &k;
  return nullptr;
}
VSwitch* Host::vswitchOfUplink(const std::string& nicName) {
  for (auto& v : vswitches)
    for (const auto& u : v.uplinks)
      if (u == nicName) return &v;
  return nullptr;
}

static const VSwitch& parentOf(const Host& h, const PortGroup& pg) {
  for (const auto& v : h.vswitches)
    if (v.name == pg.vswitch) return v;
  static const VSwitch orphan;  // only a hand-edited state file can have a port group without its vSwitch
  return orphan;
}

Security effectiveSecurity(const Host& h, const PortGroup& pg) {
  Security s = parentOf(h, pg).security;
  if (pg.allowPromiscuous) s.allowPromiscuous = *pg.allowPromiscuous;
  if (pg.allowMacChange) s.allowMacChange = *pg.allowMacChange;
  if (pg.allowForgedTransmits) s.allowForgedTransmits = *pg.allowForgedTransmits;
  return s;
}

Failover effectiveFailover(const Host& h, const PortGroup& pg) {
  Failover f = parentOf(h, pg).failover;
  if (pg.loadBalancing) f.loadBalancing = *pg.loadBalancing;
  if (pg.failureDetection) f.failureDetection = *pg.failureDetection;
  if (pg.notifySwitches) f.notifySwitches = *pg.notifySwitches;
  if (pg.failback) f.failback = *pg.failback;
  if (pg.uplinks) {
    f.active = pg.uplinks->active;
    f.standby = pg.uplinks->standby;
  }
  return f;
}

Shaping effectiveShaping(const Host& h, const PortGroup& pg) {
  return pg.shaping ? *pg.shaping : parentOf(h, pg).shaping;
}

// ---------------------------------------------------------------- JSON

template <class T>
static Json opt(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}
template <class T>
static std::optional<T> optFrom(const Json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<T>();
}

static Json shapingJson(const Shaping& s) {
  return {{"enabled", s.enabled},
          {"avgBandwidth", s.avgBandwidth},
          {"peakBandwidth", s.peakBandwidth},
          {"burstSize", s.burstSize}};
}
static Shaping shapingFrom(const Json& j) {
  Shaping s;
  s.enabled = j.at("enabled").get<bool>();
  s.avgBandwidth = j.at("avgBandwidth").get<long long>();
  s.peakBandwidth = j.at("peakBandwidth").get<long long>();
  s.burstSize = j.at("burstSize").get<long long>();
  return s;
}

Json toJson(const Host& h) {
  Json j = {{"version", 1}, {"nextPortId", h.nextPortId}, {"macSeed", h.macSeed}};
  Json nics = Json::array();
  for (const auto& n : h.nics)
    nics.push_back({{"name", n.name},
                    {"pciDevice", n.pciDevice},
                    {"driver", n.driver},
                    {"adminStatus", n.adminStatus},
                    {"linkStatus", n.linkStatus},
                    {"speed", n.speed},
                    {"duplex", n.duplex},
                    {"macAddress", n.macAddress},
                    {"description", n.description}});
  j["nics"] = nics;
  Json vss = Json::array();
  for (const auto& v : h.vswitches)
    vss.push_back({{"name", v.name},
                   {"ports", v.ports},
                   {"mtu", v.mtu},
                   {"cdpStatus", v.cdpStatus},
                   {"uplinks", v.uplinks},
                   {"security",
                    {{"allowPromiscuous", v.security.allowPromiscuous},
                     {"allowMacChange", v.security.allowMacChange},
                     {"allowForgedTransmits", v.security.allowForgedTransmits}}},
                   {"failover",
                    {{"loadBalancing", v.failover.loadBalancing},
                     {"failureDetection", v.failover.failureDetection},
                     {"notifySwitches", v.failover.notifySwitches},
                     {"failback", v.failover.failback},
                     {"active", v.failover.active},
                     {"standby", v.failover.standby}}},
                   {"shaping", shapingJson(v.shaping)}});
  j["vswitches"] = vss;
  Json pgs = Json::array();
  for (const auto& p : h.portgroups) {
    Json uplinks = nullptr;
    if (p.uplinks) uplinks = {{"active", p.uplinks->active}, {"standby", p.uplinks->standby}};
    pgs.push_back({{"name", p.name},
                   {"vswitch", p.vswitch},
                   {"vlanId", p.vlanId},
                   {"security",
                    {{"allowPromiscuous", opt(p.allowPromiscuous)},
                     {"allowMacChange", opt(p.allowMacChange)},
                     {"allowForgedTransmits", opt(p.allowForgedTransmits)}}},
                   {"failover",
                    {{"loadBalancing", opt(p.loadBalancing)},
                     {"failureDetection", opt(p.failureDetection)},
                     {"notifySwitches", opt(p.notifySwitches)},
                     {"failback", opt(p.failback)},
                     {"uplinks", uplinks}}},
                   {"shaping", p.shaping ? shapingJson(*p.shaping) : Json(nullptr)}});
  }
  j["portgroups"] = pgs;
  Json vmks = Json::array();
  for (const auto& k : h.vmknics)
    vmks.push_back({{"name", k.name},
                    {"portgroup", k.portgroup},
                    {"macAddress", k.macAddress},
                    {"netstack", k.netstack},
                    {"enabled", k.enabled},
                    {"mtu", k.mtu},
                    {"portId", k.portId},
                    {"ipv4",
                     {{"type", k.ipv4Type},
                      {"address", k.ipv4Address},
                      {"netmask", k.ipv4Netmask},
                      {"gateway", k.gateway},
                      {"peerDns", k.peerDns}}}});
  j["vmknics"] = vmks;
  return j;
}

Host fromJson(const Json& j) {
  Host h;
  h.nextPortId = j.value("nextPortId", 33554436LL);
  h.macSeed = j.value("macSeed", 0U);
  for (const auto& n : j.at("nics")) {
    Nic x;
    x.name = n.at("name").get<std::string>();
    x.pciDevice = n.value("pciDevice", "");
    x.driver = n.value("driver", "");
    x.adminStatus = n.value("adminStatus", "Up");
    x.linkStatus = n.value("linkStatus", "Up");
    x.speed = n.value("speed", 10000LL);
    x.duplex = n.value("duplex", "Full");
    x.macAddress = n.value("macAddress", "");
    x.description = n.value("description", "");
    h.nics.push_back(std::move(x));
  }
  for (const auto& v : j.at("vswitches")) {
    VSwitch x;
    x.name = v.at("name").get<std::string>();
    x.ports = v.at("ports").get<long long>();
    x.mtu = v.at("mtu").get<long long>();
    x.cdpStatus = v.at("cdpStatus").get<std::string>();
    x.uplinks = v.at("uplinks").get<std::vector<std::string>>();
    const Json& s = v.at("security");
    x.security.allowPromiscuous = s.at("allowPromiscuous").get<bool>();
    x.security.allowMacChange = s.at("allowMacChange").get<bool>();
    x.security.allowForgedTransmits = s.at("allowForgedTransmits").get<bool>();
    const Json& f = v.at("failover");
    x.failover.loadBalancing = f.at("loadBalancing").get<std::string>();
    x.failover.failureDetection = f.at("failureDetection").get<std::string>();
    x.failover.notifySwitches = f.at("notifySwitches").get<bool>();
    x.failover.failback = f.at("failback").get<bool>();
    x.failover.active = f.at("active").get<std::vector<std::string>>();
    x.failover.standby = f.at("standby").get<std::vector<std::string>>();
    x.shaping = shapingFrom(v.at("shaping"));
    h.vswitches.push_back(std::move(x));
  }
  for (const auto& p : j.at("portgroups")) {
    PortGroup x;
    x.name = p.at("name").get<std::string>();
    x.vswitch = p.at("vswitch").get<std::string>();
    x.vlanId = p.at("vlanId").get<long long>();
    const Json& s = p.at("security");
    x.allowPromiscuous = optFrom<bool>(s, "allowPromiscuous");
    x.allowMacChange = optFrom<bool>(s, "allowMacChange");
    x.allowForgedTransmits = optFrom<bool>(s, "allowForgedTransmits");
    const Json& f = p.at("failover");
    x.loadBalancing = optFrom<std::string>(f, "loadBalancing");
    x.failureDetection = optFrom<std::string>(f, "failureDetection");
    x.notifySwitches = optFrom<bool>(f, "notifySwitches");
    x.failback = optFrom<bool>(f, "failback");
    if (f.contains("uplinks") && !f.at("uplinks").is_null())
      x.uplinks = UplinkOrder{f.at("uplinks").at("active").get<std::vector<std::string>>(),
                              f.at("uplinks").at("standby").get<std::vector<std::string>>()};
    if (p.contains("shaping") && !p.at("shaping").is_null()) x.shaping = shapingFrom(p.at("shaping"));
    h.portgroups.push_back(std::move(x));
  }
  for (const auto& k : j.at("vmknics")) {
    Vmknic x;
    x.name = k.at("name").get<std::string>();
    x.portgroup = k.at("portgroup").get<std::string>();
    x.macAddress = k.value("macAddress", "");
    x.netstack = k.value("netstack", "defaultTcpipStack");
    x.enabled = k.value("enabled", true);
    x.mtu = k.value("mtu", 1500LL);
    x.portId = k.value("portId", 0LL);
    const Json& ip = k.at("ipv4");
    x.ipv4Type = ip.value("type", "none");
    x.ipv4Address = ip.value("address", "");
    x.ipv4Netmask = ip.value("netmask", "");
    x.gateway = ip.value("gateway", "");
    x.peerDns = ip.value("peerDns", false);
    h.vmknics.push_back(std::move(x));
  }
  return h;
}

std::string macAddress(const char* oui, unsigned seed, unsigned index) {
  unsigned v = seed * 2654435761U + index * 40503U + 1U;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s:%02x:%02x:%02x", oui, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
  return buf;
}

Host freshHost(int nics, const std::string& mgmtIp, const std::string& mgmtNetmask, unsigned macSeed) {
  Host h;
  h.macSeed = macSeed;
  for (int i = 0; i < nics; ++i) {
    Nic n;
    n.name = "vmnic" + std::to_string(i);
    char pci[32];
    std::snprintf(pci, sizeof pci, "0000:%02x:00.%d", 3 + i / 2, i % 2);
    n.pciDevice = pci;
    n.driver = "ixgben";
    n.macAddress = macAddress("a0:36:9f", macSeed, static_cast<unsigned>(i));
    n.description = "Intel(R) Ethernet Controller X540-AT2";
    h.nics.push_back(std::move(n));
  }
  VSwitch vs;
  vs.name = "vSwitch0";
  if (nics > 0) {
    vs.uplinks = {"vmnic0"};
    vs.failover.active = {"vmnic0"};
  }
  h.vswitches.push_back(vs);
  PortGroup mgmt;
  mgmt.name = "Management Network";
  mgmt.vswitch = "vSwitch0";
  PortGroup vm;
  vm.name = "VM Network";
  vm.vswitch = "vSwitch0";
  h.portgroups = {mgmt, vm};
  Vmknic k;
  k.name = "vmk0";
  k.portgroup = "Management Network";
  // The installer gives vmk0 the MAC of the first uplink.
  k.macAddress = nics > 0 ? h.nics[0].macAddress : macAddress("00:50:56", macSeed, 0);
  k.portId = h.nextPortId++;
  k.ipv4Type = "static";
  k.ipv4Address = mgmtIp;
  k.ipv4Netmask = mgmtNetmask;
  h.vmknics.push_back(k);
  return h;
}

}  // namespace esxemu
