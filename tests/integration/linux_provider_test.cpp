// The linux provider against the real kernel: every test works inside its own throw-away network namespace
// (never the host's), and checks results both through the provider's observe() and independently with
// `ip -j` inside the namespace.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "providers/linux/linux_provider.h"
#include "reconciler/provider.h"

namespace vnetplan {
namespace {

// ---------------------------------------------------------------- helpers

std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    if (status) *status = -1;
    return out;
  }
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int rc = ::pclose(p);
  if (status) *status = rc;
  return out;
}

bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

std::string uniqueNetns() {
  static std::atomic<int> counter{0};
  return "vnp-t-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

bool netnsFileExists(const std::string& name) {
  struct stat st {};
  return ::stat(("/run/netns/" + name).c_str(), &st) == 0;
}

// `ip -n NS -j ARGS`, parsed.
Json ipJson(const std::string& ns, const std::string& args) {
  std::string out = run("ip -n " + ns + " -j " + args + " 2>/dev/null");
  if (out.empty()) return Json::array();
  return Json::parse(out, nullptr, false);
}

// The `ip -j -d link show` entry of one interface (null if absent).
Json ipLink(const std::string& ns, const std::string& ifname) {
  for (const auto& l : ipJson(ns, "-d link show"))
    if (l.value("ifname", "") == ifname) return l;
  return nullptr;
}

// The addresses `ip -j addr` shows for one interface, without kernel-made IPv6 link-locals.
std::vector<std::string> ipAddrs(const std::string& ns, const std::string& ifname) {
  std::vector<std::string> out;
  for (const auto& l : ipJson(ns, "addr show"))
    if (l.value("ifname", "") == ifname)
      for (const auto& a : l.value("addr_info", Json::array())) {
        std::string local = a.value("local", "");
        if (local.rfind("fe80:", 0) == 0) continue;
        out.push_back(local + "/" + std::to_string(a.value("prefixlen", 0)));
      }
  std::sort(out.begin(), out.end());
  return out;
}

bool hasFlag(const Json& link, const std::string& flag) {
  for (const auto& f : link.value("flags", Json::array()))
    if (f == flag) return true;
  return false;
}

Attrs attrs(const Json& j) { return Attrs::fromJson(j); }

Target linuxTarget(const std::string& netns, bool createNetns = false) {
  Target t;
  t.name = "t1";
  t.provider = "linux";
  if (!netns.empty()) t.spec.set("netns", netns);
  if (createNetns) t.spec.set("createNetns", true);
  return t;
}

Resource resource(Kind kind, const std::string& name, const Json& spec) {
  Resource r;
  r.addr = Address{"t1", kind, name};
  r.attrs = attrs(spec);
  r.loc = SourceLoc{"test.yaml", 1, 1};
  return r;
}

// Desired attributes as the engine would hand them over: normalized, with the provider's defaults.
Attrs desired(const Provider& p, Kind kind, const std::string& name, const Json& spec) {
  Resource r = resource(kind, name, spec);
  p.normalize(r);
  if (const KindTraits* t = p.traits(kind))
    for (const auto& [path, value] : t->defaults)
      if (!r.attrs.has(path)) r.attrs.set(path, value);
  return r.attrs;
}

Step createStep(Kind kind, const std::string& name, Attrs after) {
  Step s;
  s.addr = Address{"t1", kind, name};
  s.action = StepAction::Create;
  s.after = std::move(after);
  return s;
}

Step updateStep(const ObservedObject& live, Attrs after, std::vector<std::string> changed) {
  Step s;
  s.addr = live.addr;
  s.action = StepAction::Update;
  s.before = live.attrs;
  s.after = std::move(after);
  s.changed = std::move(changed);
  return s;
}

Step deleteStep(const ObservedObject& live) {
  Step s;
  s.addr = live.addr;
  s.action = StepAction::Delete;
  s.before = live.attrs;
  return s;
}

const ObservedObject* findObj(const Observation& obs, Kind kind, const std::string& name) {
  auto it = obs.objects.find(Address{"t1", kind, name});
  return it == obs.objects.end() ? nullptr : &it->second;
}

// Every desired attribute is observed with exactly the same (normalized) value.
void expectObservedMatches(const Attrs& want, const ObservedObject* live) {
  ASSERT_NE(live, nullptr);
  for (const auto& [path, value] : want.values()) {
    const Json* got = live->attrs.find(path);
    if (value.is_null()) {  // a default of "none" (e.g. not attached): absent or null when observed
      EXPECT_TRUE(got == nullptr || got->is_null()) << live->addr.str() << ": " << path << " = " << got->dump();
      continue;
    }
    ASSERT_NE(got, nullptr) << live->addr.str() << ": " << path << " not observed";
    EXPECT_EQ(*got, value) << live->addr.str() << ": " << path;
  }
}

std::vector<std::string> messages(const Diagnostics& d) {
  std::vector<std::string> out;
  for (const auto& i : d.items()) out.push_back(i.message);
  return out;
}

bool anyContains(const Diagnostics& d, const std::string& needle) {
  for (const auto& m : messages(d))
    if (m.find(needle) != std::string::npos) return true;
  return false;
}

std::string dump(const Diagnostics& d) {
  std::string out;
  for (const auto& m : messages(d)) out += "  " + m + "\n";
  return out;
}

// ---------------------------------------------------------------- plan-time checks (no root needed)

class LinuxProviderCheck : public ::testing::Test {
 protected:
  Diagnostics check(Kind kind, const std::string& name, const Json& spec, const Target& t = linuxTarget("demo")) {
    Diagnostics d;
    Resource r = resource(kind, name, spec);
    p_->check(r, t, d);
    return d;
  }
  std::unique_ptr<Provider> p_ = makeLinuxProvider();
};

TEST_F(LinuxProviderCheck, AcceptsWhatItImplements) {
  EXPECT_FALSE(check(Kind::Switch, "br0",
                     {{"mtu", 9000},
                      {"up", true},
                      {"stp", true},
                      {"addresses", {"10.0.0.1/24", "2001:db8::1/64"}},
                      {"linux", {{"bridge", {{"forwardDelay", 4}, {"helloTime", 1}, {"maxAge", 10},
                                             {"ageingTime", 120}, {"priority", 4096}}}}}})
                   .hasErrors());
  Diagnostics d = check(Kind::Port, "vm1", {{"type", "veth"}, {"peer", "vm1-p"}, {"peerNetns", "other"},
                                            {"switch", "br0"}, {"mtu", 1500}, {"mac", "52:54:00:AA:bb:01"},
                                            {"addresses", {"192.168.1.2/24"}}, {"up", false}});
  EXPECT_FALSE(d.hasErrors()) << dump(d);
  d = check(Kind::Port, "tap0", {{"type", "tap"}, {"switch", "br0"}, {"mtu", 65521}});
  EXPECT_FALSE(d.hasErrors()) << dump(d);
}

TEST_F(LinuxProviderCheck, RejectsBadInterfaceNames) {
  for (const std::string bad : {"", "0123456789abcdef", ".", "..", "a/b", "a:b", "a b", "tab\tx", "ctl\x01",
                                "caf\xc3\xa9"}) {
    Diagnostics d = check(Kind::Switch, bad, Json::object());
    EXPECT_TRUE(anyContains(d, "linux: invalid interface name")) << "'" << bad << "'\n" << dump(d);
  }
  EXPECT_FALSE(check(Kind::Switch, "0123456789abcde", Json::object()).hasErrors());  // 15 bytes is fine
  Diagnostics d = check(Kind::Port, "vm1", {{"type", "veth"}, {"peer", "bad/peer"}});
  EXPECT_TRUE(anyContains(d, "invalid interface name 'bad/peer' in field peer: it contains '/'")) << dump(d);
  d = check(Kind::Port, "vm1", {{"type", "veth"}, {"peer", "vm1"}});
  EXPECT_TRUE(anyContains(d, "names the Port itself")) << dump(d);
  d = check(Kind::Port, "vm1", {{"type", "tap"}, {"switch", "this-name-is-too-long"}});
  EXPECT_TRUE(anyContains(d, "in field switch: it is 21 bytes long (at most 15)")) << dump(d);
  d = check(Kind::Port, "vm1", {{"type", "veth"}, {"peer", "p"}, {"peerNetns", "../etc"}});
  EXPECT_TRUE(anyContains(d, "invalid netns name '../etc' in field peerNetns")) << dump(d);
  d = check(Kind::Port, "vm1", {{"type", "veth"}, {"peer", "p"}, {"peerNetns", "demo"}});
  EXPECT_TRUE(anyContains(d, "is the port's own netns")) << dump(d);
}

TEST_F(LinuxProviderCheck, RejectsEveryFieldItDoesNotImplement) {
  Diagnostics d = check(Kind::Port, "vm1", {{"type", "gre"}, {"remote", "10.0.0.1"}});
  EXPECT_TRUE(anyContains(d, "linux: Port type 'gre' is not supported")) << dump(d);
  d = check(Kind::Port, "vm1", {{"type", "tap"}, {"switch", "br0"}, {"network", "default"}});
  EXPECT_TRUE(anyContains(d, "field network of Port vm1 cannot be combined with switch")) << dump(d);
  d = check(Kind::Port, "vm1", {{"type", "tap"}, {"security", {{"allowPromiscuous", true}}}});
  EXPECT_TRUE(anyContains(d, "linux: security.allowPromiscuous: true cannot be honoured on a Linux bridge port")) << dump(d);
  d = check(Kind::Port, "vm1", {{"type", "tap"}, {"security", {{"allowForgedTransmits", false}}}});
  EXPECT_TRUE(anyContains(d, "filter on the guest's MAC: set mac")) << dump(d);
  d = check(Kind::Port, "vm1", {{"type", "vxlan"}, {"vni", 5}, {"security", {{"allowForgedTransmits", false}}}});
  EXPECT_TRUE(anyContains(d, "field security.allowForgedTransmits is only valid for a")) << dump(d);
  d = check(Kind::Network, "n1", {{"mode", "nat"}, {"ipv4", {{"address", "10.9.0.1/24"}}}});
  EXPECT_TRUE(anyContains(d, "mode nat needs forwardDev on linux")) << dump(d);
  d = check(Kind::Network, "n1", {{"mode", "internal"}, {"ipv4", {{"address", "10.9.0.1/24"}}}});
  EXPECT_TRUE(anyContains(d, "mode internal keeps the host off the network")) << dump(d);
  d = check(Kind::Network, "n1", {{"mode", "isolated"}, {"ipv4", {{"address", "10.9.0.1/24"}}}, {"portForwards", Json::array({{{"proto", "tcp"}, {"port", 80}, {"to", "10.9.0.5"}}})}});
  EXPECT_TRUE(anyContains(d, "field portForwards only applies to mode nat")) << dump(d);
  d = check(Kind::Switch, "br0", {{"uplinks", {{"nics", {"eth0"}}}}, {"nioc", {{"enabled", true}}}});
  EXPECT_FALSE(anyContains(d, "linux: field uplinks.nics is not supported yet")) << dump(d);
  EXPECT_TRUE(anyContains(d, "linux: t1/Switch/br0: nioc needs uplinkMbps on linux")) << dump(d);
  // A PortGroup's class is its ports' (the builder gives it to them): the group takes any known class.
  d = check(Kind::PortGroup, "pg", {{"switch", "br0"}, {"niocClass", "vmotion"}});
  EXPECT_FALSE(d.hasErrors()) << dump(d);
  d = check(Kind::PortGroup, "pg", {{"switch", "br0"}, {"niocClass", "bulk"}});
  EXPECT_TRUE(anyContains(d, "field niocClass: no traffic class bulk")) << dump(d);
  d = check(Kind::Port, "vx", {{"type", "vxlan"}, {"vni", 5}, {"niocClass", "vmotion"}});
  EXPECT_TRUE(anyContains(d, "field niocClass: only a tap or veth Port's traffic can be put in a class")) << dump(d);
  d = check(Kind::Mirror, "m", {{"switch", "br0"}, {"source", {{"ports", {"a", "b"}}}}, {"destination", {{"port", "b"}}}});
  EXPECT_TRUE(anyContains(d, "destination.port b is also a source port")) << dump(d);
  d = check(Kind::Port, "vm1", {{"type", "tap"}, {"shaping", {{"averageKbps", 1000}, {"peakKbps", 500}, {"burstKiB", 64}}}});
  EXPECT_TRUE(anyContains(d, "shaping.peakKbps 500 is below averageKbps 1000")) << dump(d);
  d = check(Kind::Port, "vm1", {{"type", "tap"}, {"shaping", {{"peakKbps", 500}}}});
  EXPECT_TRUE(anyContains(d, "shaping needs averageKbps and burstKiB")) << dump(d);
  d = check(Kind::Switch, "br0", {{"linux", {{"bridge", {{"multicastSnooping", false}}}}}});
  EXPECT_TRUE(anyContains(d, "linux: field linux.bridge.multicastSnooping is not supported yet")) << dump(d);
  d = check(Kind::Switch, "br0", {{"peer", "x"}});  // a Port field on a Switch
  EXPECT_TRUE(anyContains(d, "linux: field peer is not supported yet")) << dump(d);
  d = check(Kind::Port, "v", {{"type", "veth"}, {"peer", "x"}, {"linux", {{"owner", 0}, {"multiQueue", true}}}});
  EXPECT_TRUE(anyContains(d, "field linux.owner is only valid for a tap Port")) << dump(d);
  EXPECT_TRUE(anyContains(d, "field linux.multiQueue is only valid for a tap Port")) << dump(d);
  d = check(Kind::Port, "t", {{"type", "tap"}, {"linux", {{"owner", "no-such-user-here"}, {"ttl", 3}}}});
  EXPECT_TRUE(anyContains(d, "no user named 'no-such-user-here' on this host")) << dump(d);
  EXPECT_TRUE(anyContains(d, "linux.ttl")) << dump(d);
  d = check(Kind::Port, "tap0", {{"type", "tap"}, {"peer", "x"}, {"linux", {{"peerMac", "52:54:00:00:00:01"}}}});
  EXPECT_TRUE(anyContains(d, "field peer is only valid for a veth Port")) << dump(d);
  EXPECT_TRUE(anyContains(d, "field linux.peerMac is only valid for a veth Port")) << dump(d);
  EXPECT_NE(p_->traits(Kind::PortGroup), nullptr);
}

TEST_F(LinuxProviderCheck, RequiredFieldsAndValueRanges) {
  EXPECT_TRUE(anyContains(check(Kind::Port, "vm1", {{"type", "veth"}}), "field peer is required for a veth Port"));
  EXPECT_TRUE(anyContains(check(Kind::Port, "vm1", {{"mtu", 1500}}), "field type is required for a Port"));
  EXPECT_TRUE(anyContains(check(Kind::Switch, "br0", {{"mtu", 67}}), "field mtu is 67, outside 68..65535"));
  EXPECT_TRUE(anyContains(check(Kind::Port, "t", {{"type", "tap"}, {"mtu", 65535}}), "outside 68..65521"));
  EXPECT_TRUE(anyContains(check(Kind::Switch, "br0", {{"mtu", "big"}}), "field mtu must be a whole number"));
  EXPECT_TRUE(anyContains(check(Kind::Switch, "br0", {{"stp", "yes"}}), "field stp must be true or false"));
  EXPECT_TRUE(anyContains(check(Kind::Switch, "br0", {{"linux", {{"bridge", {{"forwardDelay", 31}}}}}}),
                          "linux.bridge.forwardDelay is 31, outside 2..30 seconds"));
  EXPECT_TRUE(anyContains(check(Kind::Switch, "br0", {{"linux", {{"bridge", {{"helloTime", 1.5}}}}}}),
                          "must be a whole number of seconds"));
  Diagnostics d = check(Kind::Switch, "br0", {{"addresses", {"10.0.0.1", "10.0.0.300/24", "10.0.0.2/33",
                                                              "fe80::1/64", "10.0.0.5/24", "10.0.0.05/24"}}});
  EXPECT_TRUE(anyContains(d, "'10.0.0.1': it has no prefix length")) << dump(d);
  EXPECT_TRUE(anyContains(d, "'10.0.0.300' is not an IPv4 or IPv6 address")) << dump(d);
  EXPECT_TRUE(anyContains(d, "prefix length 33 is above 32")) << dump(d);
  EXPECT_TRUE(anyContains(d, "IPv6 link-local")) << dump(d);
  d = check(Kind::Switch, "br0", {{"addresses", {"2001:db8::1/64", "2001:DB8:0::1/64"}}});
  EXPECT_TRUE(anyContains(d, "lists 2001:db8::1/64 more than once")) << dump(d);
  for (const std::string bad : {"52:54:00:12:34", "01:00:5e:00:00:01", "00:00:00:00:00:00", "52-54-00-12-34-56"})
    EXPECT_TRUE(anyContains(check(Kind::Port, "t", {{"type", "tap"}, {"mac", bad}}), "invalid mac")) << bad;
}

TEST_F(LinuxProviderCheck, TargetSpec) {
  Diagnostics d;
  p_->checkTarget(linuxTarget("ok-ns"), d);
  p_->checkTarget(linuxTarget(""), d);
  EXPECT_FALSE(d.hasErrors()) << dump(d);
  for (const std::string& bad : std::vector<std::string>{"..", "a/b", "../../etc", "with space", std::string(256, 'n')}) {
    Diagnostics e;
    p_->checkTarget(linuxTarget(bad), e);
    EXPECT_TRUE(anyContains(e, "linux: Target t1: invalid netns name")) << bad;
  }
  Target t = linuxTarget("x");
  t.spec.set("db", "unix:/run/ovs.sock");
  Diagnostics e;
  p_->checkTarget(t, e);
  EXPECT_TRUE(anyContains(e, "field db is not supported")) << dump(e);
  Diagnostics f;
  p_->checkTarget(linuxTarget("", true), f);
  EXPECT_TRUE(anyContains(f, "createNetns needs netns")) << dump(f);
}

TEST_F(LinuxProviderCheck, NormalizeAndTraits) {
  Resource r = resource(Kind::Port, "vm1",
                        {{"type", "tap"},
                         {"mac", "52:54:00:AB:CD:EF"},
                         {"mtu", "9000"},
                         {"addresses", {"2001:DB8:0:0::10/64", "10.0.0.2/24", "10.0.0.2/24"}}});
  p_->normalize(r);
  EXPECT_EQ(*r.attrs.find("mac"), "52:54:00:ab:cd:ef");
  EXPECT_EQ(*r.attrs.find("mtu"), 9000);
  EXPECT_EQ(*r.attrs.find("addresses"), Json({"10.0.0.2/24", "2001:db8::10/64"}));
  const KindTraits* port = p_->traits(Kind::Port);
  ASSERT_NE(port, nullptr);
  EXPECT_EQ(port->replaceOn,
            (std::vector<std::string>{"type", "peer", "peerNetns", "linux.multiQueue", "linux.vnetHdr", "link",
                                      "vlanId", "vni", "dstPort", "mode", "vf", "pciAddress"}));
  EXPECT_EQ(port->defaults.at("up"), true);
  const KindTraits* sw = p_->traits(Kind::Switch);
  ASSERT_NE(sw, nullptr);
  EXPECT_TRUE(sw->replaceOn.empty());
  EXPECT_EQ(sw->unorderedLists,
            (std::vector<std::string>{"addresses", "uplinks.nics", "uplinks.teaming.standby", "linux.bond.arpIpTarget"}));
}

TEST_F(LinuxProviderCheck, Describe) {
  Diagnostics d;
  const Target demo = linuxTarget("demo");
  p_->checkTarget(demo, d);
  EXPECT_EQ(p_->describe(createStep(Kind::Switch, "br0", attrs({{"mtu", 9000}, {"stp", true}})), demo),
            "create bridge br0 (mtu 9000, stp on) in netns demo");
  EXPECT_EQ(p_->describe(createStep(Kind::Port, "vm1", attrs({{"type", "veth"}, {"peer", "vm1-p"},
                                                               {"peerNetns", "other"}, {"switch", "br0"}})),
                         demo),
            "create veth vm1 (peer vm1-p in netns other, on bridge br0) in netns demo");
  ObservedObject live{Address{"t1", Kind::Port, "vm1"},
                      attrs({{"type", "tap"}, {"mtu", 1500}, {"addresses", {"10.0.0.1/24"}}})};
  EXPECT_EQ(p_->describe(updateStep(live, attrs({{"type", "tap"}, {"mtu", 9000}, {"addresses", {"10.0.0.2/24"}}}),
                                    {"mtu", "addresses"}),
                         demo),
            "update tap vm1 in netns demo: mtu 1500 -> 9000, addresses +10.0.0.2/24 -10.0.0.1/24");
  ObservedObject veth{Address{"t1", Kind::Port, "v0"}, attrs({{"type", "veth"}, {"peer", "v0p"}})};
  EXPECT_EQ(p_->describe(deleteStep(veth), demo), "delete veth v0 (and its peer v0p) in netns demo");
}

// ---------------------------------------------------------------- against the kernel

class LinuxProviderKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: needs root and network namespaces";
    struct stat st {};
    if (::stat("/dev/net/tun", &st) != 0) GTEST_SKIP() << "SKIPPED: needs /dev/net/tun (tap ports)";
    ns_ = addNetns();
    if (ns_.empty()) GTEST_SKIP() << "SKIPPED: needs root and network namespaces";
    p_ = makeLinuxProvider();
    auto s = p_->connect(linuxTarget(ns_));
    ASSERT_TRUE(s.ok()) << s.error().message;
    session_ = std::move(s.value());
  }
  void TearDown() override {
    session_.reset();
    for (const auto& n : namespaces_)
      if (netnsFileExists(n) && !sh("ip netns del " + n)) ADD_FAILURE() << "could not remove netns " << n;
  }
  // A fresh named netns (via `ip netns add`), removed in TearDown.
  std::string addNetns() {
    std::string name = uniqueNetns();
    if (!sh("ip netns add " + name + " 2>/dev/null")) return "";
    namespaces_.push_back(name);
    return name;
  }
  Observation observe() {
    auto obs = session_->observe();
    EXPECT_TRUE(obs.ok()) << obs.error().message;
    return obs.ok() ? obs.value() : Observation{};
  }
  void apply(const Step& step) {
    Status st = session_->apply(step);
    ASSERT_TRUE(st.ok()) << p_->describe(step, linuxTarget(ns_)) << ": " << st.error().message;
  }
  Attrs want(Kind kind, const std::string& name, const Json& spec) { return desired(*p_, kind, name, spec); }

  std::string ns_;
  std::vector<std::string> namespaces_;
  std::unique_ptr<Provider> p_;
  std::unique_ptr<TargetSession> session_;
};

TEST_F(LinuxProviderKernel, ObservesAnEmptyNamespace) {
  Observation obs = observe();
  EXPECT_TRUE(obs.objects.empty());  // only "lo", which is neither a Switch nor a Port
}

TEST_F(LinuxProviderKernel, BridgeRoundTrip) {
  Attrs br = want(Kind::Switch, "br0",
                  {{"mtu", 9000},
                   {"stp", true},
                   {"addresses", {"2001:DB8::1/64", "10.0.0.1/24"}},
                   {"linux", {{"bridge", {{"forwardDelay", 4}, {"helloTime", 1}, {"maxAge", 10},
                                          {"ageingTime", 120}, {"priority", 4096}}}}}});
  apply(createStep(Kind::Switch, "br0", br));
  Observation obs = observe();
  ASSERT_EQ(obs.objects.size(), 1u);
  expectObservedMatches(br, findObj(obs, Kind::Switch, "br0"));

  // Independently, with iproute2.
  Json l = ipLink(ns_, "br0");
  ASSERT_FALSE(l.is_null());
  EXPECT_EQ(l["mtu"], 9000);
  EXPECT_TRUE(hasFlag(l, "UP"));
  const Json& info = l["linkinfo"];
  EXPECT_EQ(info["info_kind"], "bridge");
  EXPECT_EQ(info["info_data"]["stp_state"], 1);
  EXPECT_EQ(info["info_data"]["forward_delay"], 400);
  EXPECT_EQ(info["info_data"]["hello_time"], 100);
  EXPECT_EQ(info["info_data"]["max_age"], 1000);
  EXPECT_EQ(info["info_data"]["ageing_time"], 12000);
  EXPECT_EQ(info["info_data"]["priority"], 4096);
  EXPECT_EQ(ipAddrs(ns_, "br0"), (std::vector<std::string>{"10.0.0.1/24", "2001:db8::1/64"}));
}

TEST_F(LinuxProviderKernel, VethAndTapRoundTrip) {
  apply(createStep(Kind::Switch, "br0", want(Kind::Switch, "br0", {{"mtu", 9000}})));
  Attrs v0 = want(Kind::Port, "v0",
                  {{"type", "veth"},
                   {"peer", "v0p"},
                   {"linux", {{"peerMac", "52:54:00:00:00:F1"}}},
                   {"switch", "br0"},
                   {"mtu", 9000},
                   {"mac", "52:54:00:00:00:01"},
                   {"addresses", {"192.168.10.2/24", "fd00::2/64"}}});
  apply(createStep(Kind::Port, "v0", v0));
  Attrs tap = want(Kind::Port, "tap0",
                   {{"type", "tap"}, {"switch", "br0"}, {"mtu", 1400}, {"mac", "52:54:00:00:00:02"},
                    {"addresses", {"192.168.20.1/24"}}});
  apply(createStep(Kind::Port, "tap0", tap));
  Attrs down = want(Kind::Port, "v1", {{"type", "veth"}, {"peer", "v1p"}, {"up", false}});
  apply(createStep(Kind::Port, "v1", down));

  Observation obs = observe();
  expectObservedMatches(v0, findObj(obs, Kind::Port, "v0"));
  expectObservedMatches(tap, findObj(obs, Kind::Port, "tap0"));
  expectObservedMatches(down, findObj(obs, Kind::Port, "v1"));
  // The peers are veths too; the engine decides what is owned, so they are reported.
  const ObservedObject* peer = findObj(obs, Kind::Port, "v0p");
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(*peer->attrs.find("peer"), "v0");
  EXPECT_EQ(*peer->attrs.find("mtu"), 9000);  // the pair's MTU is kept equal
  EXPECT_FALSE(peer->attrs.getString("switch").has_value());  // not attached (said: null)
  EXPECT_FALSE(findObj(obs, Kind::Port, "v0")->attrs.has("peerNetns"));
  EXPECT_EQ(*findObj(obs, Kind::Switch, "br0")->attrs.find("mtu"), 9000);  // the bridge kept its MTU

  Json l = ipLink(ns_, "v0");
  ASSERT_FALSE(l.is_null());
  EXPECT_EQ(l["linkinfo"]["info_kind"], "veth");
  EXPECT_EQ(l["master"], "br0");
  EXPECT_EQ(l["mtu"], 9000);
  EXPECT_EQ(l["address"], "52:54:00:00:00:01");
  EXPECT_EQ(l["link"], "v0p");
  EXPECT_TRUE(hasFlag(l, "UP"));
  EXPECT_EQ(ipAddrs(ns_, "v0"), (std::vector<std::string>{"192.168.10.2/24", "fd00::2/64"}));
  EXPECT_TRUE(hasFlag(ipLink(ns_, "v0p"), "UP"));
  EXPECT_EQ(ipLink(ns_, "v0p")["address"], "52:54:00:00:00:f1");
  Json t = ipLink(ns_, "tap0");
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(t["linkinfo"]["info_kind"], "tun");
  EXPECT_EQ(t["linkinfo"]["info_data"]["type"], "tap");
  EXPECT_EQ(t["linkinfo"]["info_data"]["persist"], true);
  EXPECT_EQ(t["linkinfo"]["info_data"]["pi"], false);
  EXPECT_EQ(t["master"], "br0");
  EXPECT_EQ(t["mtu"], 1400);
  // `mac` is the guest's: the host side of the tap gets fe: + the rest (as libvirt does).
  EXPECT_EQ(t["address"], "fe:54:00:00:00:02");
  EXPECT_TRUE(hasFlag(t, "UP"));
  EXPECT_EQ(ipAddrs(ns_, "tap0"), (std::vector<std::string>{"192.168.20.1/24"}));
  EXPECT_FALSE(hasFlag(ipLink(ns_, "v1"), "UP"));

  // Bridge MTU is pinned: a smaller port joining does not drag the bridge down.
  EXPECT_EQ(ipLink(ns_, "br0")["mtu"], 9000);
}

TEST_F(LinuxProviderKernel, TapOwnerGroupQueuesAndTxQueueLen) {
  Attrs tap = want(Kind::Port, "tapq",
                   {{"type", "tap"},
                    {"linux", {{"owner", "nobody"}, {"group", "65534"}, {"multiQueue", true}, {"vnetHdr", true},
                               {"txQueueLen", 500}}}});
  EXPECT_EQ(*tap.find("linux.owner"), 65534);  // names are normalized to ids, as the kernel reports them
  apply(createStep(Kind::Port, "tapq", tap));
  Attrs veth = want(Kind::Port, "vq", {{"type", "veth"}, {"peer", "vqp"}, {"linux", {{"txQueueLen", 2000}}}});
  apply(createStep(Kind::Port, "vq", veth));
  Observation obs = observe();
  expectObservedMatches(tap, findObj(obs, Kind::Port, "tapq"));
  expectObservedMatches(veth, findObj(obs, Kind::Port, "vq"));
  Json l = ipLink(ns_, "tapq");
  ASSERT_FALSE(l.is_null());
  const Json& data = l["linkinfo"]["info_data"];
  EXPECT_EQ(data["multi_queue"], true);
  EXPECT_EQ(data["vnet_hdr"], true);
  EXPECT_EQ(data["user"], "nobody");
  EXPECT_EQ(data["group"], "nogroup");
  EXPECT_EQ(l["txqlen"], 500);
  EXPECT_EQ(ipLink(ns_, "vq")["txqlen"], 2000);

  // Owner and txqueuelen change in place; multi-queue needs a replace.
  Attrs after = tap;
  after.set("linux.owner", 0);
  after.set("linux.txQueueLen", 100);
  int index = l["ifindex"].get<int>();
  apply(updateStep(*findObj(obs, Kind::Port, "tapq"), after, {"linux.owner", "linux.txQueueLen"}));
  l = ipLink(ns_, "tapq");
  EXPECT_EQ(l["ifindex"], index);
  EXPECT_EQ(l["linkinfo"]["info_data"]["user"], "root");
  EXPECT_EQ(l["txqlen"], 100);
  EXPECT_EQ(l["linkinfo"]["info_data"]["multi_queue"], true) << "attaching must not change the tap's flags";
  expectObservedMatches(after, findObj(observe(), Kind::Port, "tapq"));
  Attrs single = after;
  single.set("linux.multiQueue", false);
  Status st = session_->apply(updateStep(*findObj(obs, Kind::Port, "tapq"), single, {"linux.multiQueue"}));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("changing linux.multiQueue needs a replace"), std::string::npos)
      << st.error().message;
  EXPECT_NE(std::find(p_->traits(Kind::Port)->replaceOn.begin(), p_->traits(Kind::Port)->replaceOn.end(),
                      "linux.multiQueue"),
            p_->traits(Kind::Port)->replaceOn.end());
}

TEST_F(LinuxProviderKernel, VethPeerInAnotherNamespace) {
  std::string other = addNetns();
  ASSERT_FALSE(other.empty());
  Attrs v = want(Kind::Port, "vx", {{"type", "veth"}, {"peer", "vx-peer"}, {"peerNetns", other}, {"mtu", 1450}});
  apply(createStep(Kind::Port, "vx", v));
  Observation obs = observe();
  expectObservedMatches(v, findObj(obs, Kind::Port, "vx"));
  EXPECT_EQ(findObj(obs, Kind::Port, "vx-peer"), nullptr);  // not in this namespace

  Json peer = ipLink(other, "vx-peer");
  ASSERT_FALSE(peer.is_null()) << "peer not found in netns " << other;
  EXPECT_EQ(*findObj(obs, Kind::Port, "vx")->attrs.find("linux.peerMac"), peer["address"]);
  EXPECT_EQ(peer["mtu"], 1450);
  EXPECT_TRUE(hasFlag(peer, "UP"));
  EXPECT_TRUE(ipLink(ns_, "vx-peer").is_null());
  EXPECT_TRUE(ipLink(ns_, "vx").contains("link_netnsid"));

  // An MTU update follows to the peer in the other namespace; the peer's MAC can be set there too.
  Attrs after = v;
  after.set("mtu", 1400);
  after.set("linux.peerMac", "52:54:00:00:00:aa");
  apply(updateStep(*findObj(obs, Kind::Port, "vx"), after, {"mtu", "linux.peerMac"}));
  EXPECT_EQ(ipLink(ns_, "vx")["mtu"], 1400);
  EXPECT_EQ(ipLink(other, "vx-peer")["mtu"], 1400);
  EXPECT_EQ(ipLink(other, "vx-peer")["address"], "52:54:00:00:00:aa");
  expectObservedMatches(after, findObj(observe(), Kind::Port, "vx"));

  // Re-created from what was observed (as a rollback does), the pair comes back with the same MACs.
  Observation live = observe();
  const ObservedObject& pre = *findObj(live, Kind::Port, "vx");
  apply(deleteStep(pre));
  apply(createStep(Kind::Port, "vx", pre.attrs));
  expectObservedMatches(pre.attrs, findObj(observe(), Kind::Port, "vx"));

  // Deleting the port removes both ends.
  apply(deleteStep(*findObj(observe(), Kind::Port, "vx")));
  EXPECT_TRUE(ipLink(other, "vx-peer").is_null());
  EXPECT_TRUE(observe().objects.empty());
}

TEST_F(LinuxProviderKernel, UpdatesInPlace) {
  apply(createStep(Kind::Switch, "br0", want(Kind::Switch, "br0", {})));
  apply(createStep(Kind::Switch, "br1", want(Kind::Switch, "br1", {{"addresses", {"10.1.0.1/24"}}})));
  Attrs v = want(Kind::Port, "v0", {{"type", "veth"}, {"peer", "v0p"}, {"switch", "br0"}, {"mtu", 1500},
                                    {"addresses", {"10.0.0.2/24", "10.0.0.3/24"}}});
  apply(createStep(Kind::Port, "v0", v));
  Attrs t = want(Kind::Port, "tap0", {{"type", "tap"}, {"switch", "br0"}});
  apply(createStep(Kind::Port, "tap0", t));
  int vIndex = ipLink(ns_, "v0")["ifindex"].get<int>();
  int tIndex = ipLink(ns_, "tap0")["ifindex"].get<int>();
  int brIndex = ipLink(ns_, "br1")["ifindex"].get<int>();

  Observation obs = observe();
  // veth: mtu, mac, move to br1, swap an address, take it down.
  Attrs v2 = v;
  v2.set("mtu", 9000);
  v2.set("mac", "52:54:00:12:34:56");
  v2.set("switch", "br1");
  v2.set("addresses", Json({"10.0.0.2/24", "10.0.0.4/25"}));
  v2.set("up", false);
  apply(updateStep(*findObj(obs, Kind::Port, "v0"), v2, {"mtu", "mac", "switch", "addresses", "up"}));
  // tap: detach from the bridge (switch removed), new MTU.
  Attrs t2 = t;
  t2.erase("switch");
  t2.set("mtu", 1280);
  apply(updateStep(*findObj(obs, Kind::Port, "tap0"), t2, {"switch", "mtu"}));
  // bridge: STP on, timers, address list emptied, down.
  Attrs b2 = want(Kind::Switch, "br1", {{"stp", true}, {"up", false}, {"addresses", Json::array()},
                                        {"linux", {{"bridge", {{"forwardDelay", 5}, {"priority", 100}}}}}});
  apply(updateStep(*findObj(obs, Kind::Switch, "br1"), b2,
                   {"stp", "up", "addresses", "linux.bridge.forwardDelay", "linux.bridge.priority"}));

  Observation after = observe();
  expectObservedMatches(v2, findObj(after, Kind::Port, "v0"));
  expectObservedMatches(t2, findObj(after, Kind::Port, "tap0"));
  EXPECT_FALSE(findObj(after, Kind::Port, "tap0")->attrs.getString("switch").has_value());  // detached (null)
  expectObservedMatches(b2, findObj(after, Kind::Switch, "br1"));
  EXPECT_EQ(*findObj(after, Kind::Port, "v0p")->attrs.find("mtu"), 9000);

  // In place: same interfaces (ifindex unchanged), as iproute2 sees them.
  Json l = ipLink(ns_, "v0");
  EXPECT_EQ(l["ifindex"], vIndex);
  EXPECT_EQ(l["master"], "br1");
  EXPECT_EQ(l["mtu"], 9000);
  EXPECT_EQ(l["address"], "52:54:00:12:34:56");
  EXPECT_FALSE(hasFlag(l, "UP"));
  EXPECT_EQ(ipAddrs(ns_, "v0"), (std::vector<std::string>{"10.0.0.2/24", "10.0.0.4/25"}));
  Json tl = ipLink(ns_, "tap0");
  EXPECT_EQ(tl["ifindex"], tIndex);
  EXPECT_FALSE(tl.contains("master"));
  EXPECT_EQ(tl["mtu"], 1280);
  Json bl = ipLink(ns_, "br1");
  EXPECT_EQ(bl["ifindex"], brIndex);
  EXPECT_EQ(bl["linkinfo"]["info_data"]["stp_state"], 1);
  EXPECT_EQ(bl["linkinfo"]["info_data"]["forward_delay"], 500);
  EXPECT_EQ(bl["linkinfo"]["info_data"]["priority"], 100);
  EXPECT_FALSE(hasFlag(bl, "UP"));
  EXPECT_TRUE(ipAddrs(ns_, "br1").empty());

  // Removing a bridge option from the manifest restores the kernel default.
  Attrs b3 = b2;
  b3.erase("linux.bridge.forwardDelay");
  apply(updateStep(*findObj(after, Kind::Switch, "br1"), b3, {"linux.bridge.forwardDelay"}));
  EXPECT_EQ(ipLink(ns_, "br1")["linkinfo"]["info_data"]["forward_delay"], 1500);

  // A replace-only attribute is refused in place.
  Attrs v3 = v2;
  v3.set("peer", "other");
  Status st = session_->apply(updateStep(*findObj(after, Kind::Port, "v0"), v3, {"peer"}));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("changing peer needs a replace"), std::string::npos) << st.error().message;
}

TEST_F(LinuxProviderKernel, Deletes) {
  apply(createStep(Kind::Switch, "br0", want(Kind::Switch, "br0", {})));
  apply(createStep(Kind::Port, "v0", want(Kind::Port, "v0", {{"type", "veth"}, {"peer", "v0p"}, {"switch", "br0"}})));
  apply(createStep(Kind::Port, "tap0", want(Kind::Port, "tap0", {{"type", "tap"}, {"switch", "br0"}})));
  Observation obs = observe();
  ASSERT_EQ(obs.objects.size(), 4u);  // br0, v0, v0p, tap0

  apply(deleteStep(*findObj(obs, Kind::Port, "v0")));
  EXPECT_TRUE(ipLink(ns_, "v0p").is_null());  // the pair goes together
  apply(deleteStep(*findObj(obs, Kind::Port, "v0p")));  // already gone with its peer: still a success
  apply(deleteStep(*findObj(obs, Kind::Port, "tap0")));
  apply(deleteStep(*findObj(obs, Kind::Switch, "br0")));
  EXPECT_TRUE(observe().objects.empty());
  EXPECT_EQ(ipJson(ns_, "link show").size(), 1u);  // just lo
}

TEST_F(LinuxProviderKernel, ErrorsNameTheObjectAndNamespace) {
  apply(createStep(Kind::Switch, "br0", want(Kind::Switch, "br0", {})));
  Status st = session_->apply(createStep(Kind::Switch, "br0", want(Kind::Switch, "br0", {})));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "linux: create bridge br0 in netns " + ns_ + ": File exists");

  st = session_->apply(createStep(Kind::Port, "br0", want(Kind::Port, "br0", {{"type", "tap"}})));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "linux: create tap br0 in netns " + ns_ + ": File exists");

  st = session_->apply(createStep(Kind::Port, "v9", want(Kind::Port, "v9", {{"type", "veth"}, {"peer", "v9p"},
                                                                            {"switch", "nosuch"}})));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "linux: attach veth v9 to bridge nosuch in netns " + ns_ +
                                    ": no interface named nosuch");

  // A create failing half-way leaves nothing behind (here: an address the kernel refuses).
  st = session_->apply(createStep(Kind::Port, "tap1", want(Kind::Port, "tap1", {{"type", "tap"},
                                                                                {"mtu", 1200},
                                                                                {"addresses", {"2001:db8::5/64"}}})));
  ASSERT_FALSE(st.ok()) << "IPv6 on a link with MTU < 1280 should be refused";
  EXPECT_NE(st.error().message.find("linux: add address 2001:db8::5/64 to tap tap1 in netns " + ns_),
            std::string::npos)
      << st.error().message;
  EXPECT_TRUE(ipLink(ns_, "tap1").is_null());

  // Connecting to a namespace that does not exist (and may not be created).
  auto s = p_->connect(linuxTarget("vnp-t-does-not-exist"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("netns vnp-t-does-not-exist does not exist"), std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("createNetns"), std::string::npos);
}

TEST_F(LinuxProviderKernel, CreatesTheNamespaceOnFirstApplyOnly) {
  std::string name = uniqueNetns();
  namespaces_.push_back(name);  // removed in TearDown
  auto s = p_->connect(linuxTarget(name, true));
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto obs = (*s)->observe();
  ASSERT_TRUE(obs.ok()) << obs.error().message;
  EXPECT_TRUE(obs->objects.empty());
  EXPECT_FALSE(netnsFileExists(name)) << "plan/observe must not create the namespace";

  Attrs br = want(Kind::Switch, "br0", {{"mtu", 1500}, {"addresses", {"10.9.0.1/16"}}});
  Status st = (*s)->apply(createStep(Kind::Switch, "br0", br));
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_TRUE(netnsFileExists(name));
  Json l = ipLink(name, "br0");
  ASSERT_FALSE(l.is_null());
  EXPECT_EQ(ipAddrs(name, "br0"), (std::vector<std::string>{"10.9.0.1/16"}));
  obs = (*s)->observe();
  ASSERT_TRUE(obs.ok()) << obs.error().message;
  expectObservedMatches(br, findObj(*obs, Kind::Switch, "br0"));
  // `ip netns` knows it as a regular named namespace.
  EXPECT_NE(run("ip netns list").find(name), std::string::npos);
}

TEST_F(LinuxProviderKernel, ManyObjectsObserveOnce) {
  // 100 bridges with 2 veth ports each, then one observe: a smoke test of the steady per-step cost.
  constexpr int kBridges = 100;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kBridges; ++i) {
    std::string br = "br" + std::to_string(i);
    apply(createStep(Kind::Switch, br, want(Kind::Switch, br, {{"mtu", 1500}})));
    for (int j = 0; j < 2; ++j) {
      std::string v = "v" + std::to_string(i) + "-" + std::to_string(j);
      apply(createStep(Kind::Port, v, want(Kind::Port, v, {{"type", "veth"}, {"peer", v + "p"}, {"switch", br}})));
    }
  }
  auto created = std::chrono::steady_clock::now();
  Observation obs = observe();
  auto observed = std::chrono::steady_clock::now();
  EXPECT_EQ(obs.objects.size(), static_cast<size_t>(kBridges * 5));
  EXPECT_EQ(*findObj(obs, Kind::Port, "v42-1")->attrs.find("switch"), "br42");
  using ms = std::chrono::milliseconds;
  std::printf("[ info ] %d bridges + %d veth pairs: create %lld ms, observe %lld ms\n", kBridges, kBridges * 2,
              static_cast<long long>(std::chrono::duration_cast<ms>(created - start).count()),
              static_cast<long long>(std::chrono::duration_cast<ms>(observed - created).count()));
}

TEST_F(LinuxProviderKernel, ManyPortsAreObservedOnEveryCoreAsTheyAre) {
  // Enough ports that observe builds their objects on several threads at once, with every lazy listing they
  // share in use: traffic shaping (the qdisc dump), port security (vnetplan's nftables tables), veth peers in
  // another namespace (its link dump) and the addresses. Every object must come out exactly as applied, and two
  // observes must agree.
  std::string other = addNetns();
  ASSERT_FALSE(other.empty());
  constexpr int kPorts = 300;
  apply(createStep(Kind::Switch, "br0", want(Kind::Switch, "br0", {{"mtu", 1500}})));
  std::map<std::string, Attrs> wanted;
  for (int i = 0; i < kPorts; ++i) {
    const std::string v = "v" + std::to_string(i);
    Json spec = {{"type", "veth"}, {"peer", v + "p"}, {"switch", "br0"}};
    if (i % 2) spec["peerNetns"] = other;
    if (i % 3 == 0) spec["shaping"] = {{"averageKbps", 1000 + i}, {"peakKbps", 2000 + i}, {"burstKiB", 64}};
    if (i % 4 == 0) {  // filtered on the guest's MAC, the peer's
      char mac[18];
      std::snprintf(mac, sizeof mac, "52:54:00:00:%02x:%02x", i / 256, i % 256);
      spec["security"] = {{"allowForgedTransmits", false}};
      spec["linux"] = {{"peerMac", mac}};
    }
    if (i % 5 == 0) spec["addresses"] = Json::array({"10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + "/32"});
    wanted[v] = want(Kind::Port, v, spec);
    apply(createStep(Kind::Port, v, wanted[v]));
  }
  ASSERT_TRUE(session_->flush().ok());
  Observation first = observe();
  Observation second = observe();
  // The switch, the ports, and the peers of the ports whose peer stayed in this namespace (they show as Ports).
  ASSERT_EQ(first.objects.size(), static_cast<size_t>(1 + kPorts + kPorts / 2));
  for (const auto& [name, attrs] : wanted) {
    SCOPED_TRACE(name);
    const ObservedObject* obj = findObj(first, Kind::Port, name);
    ASSERT_NE(obj, nullptr);
    expectObservedMatches(attrs, obj);
    const ObservedObject* again = findObj(second, Kind::Port, name);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(obj->attrs, again->attrs);
  }
}

}  // namespace
}  // namespace vnetplan
