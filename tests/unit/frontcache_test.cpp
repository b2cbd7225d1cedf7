// The front-end cache: an entry round-trips exactly (resources, origins, locations, warnings), the key follows
// every byte of every manifest, a damaged or foreign entry is a miss, and a cached plan reports the same
// warnings and the same desired state as an uncached one.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "cli/providers.h"
#include "reconciler/frontcache.h"
#include "reconciler/pipeline.h"
#include "reconciler/provider.h"

using namespace vnetplan;
namespace fs = std::filesystem;

namespace {

class FrontCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("vnp-frontcache-" + std::to_string(getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    setenv("VNETPLAN_CACHE_DIR", (dir / "cache").c_str(), 1);
    unsetenv("VNETPLAN_CACHE");
  }
  void TearDown() override {
    unsetenv("VNETPLAN_CACHE_DIR");
    fs::remove_all(dir);
  }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  }
  fs::path dir;
};

const char* kManifest = R"(apiVersion: vnetplan.io/v1
kind: Target
metadata: {name: t1, labels: {role: hv}}
spec: {provider: linux, netns: x}
---
apiVersion: vnetplan.io/v1
kind: Switch
metadata: {name: br0}
spec: {selector: {role: hv}, mtu: 9000, security: {allowPromiscuous: true}}
---
apiVersion: vnetplan.io/v1
kind: Port
metadata: {name: vm1}
spec: {targets: [t1], switch: br0, type: tap, mtu: 9000}
)";

size_t entries(const fs::path& d) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(d, ec)) n += e.path().extension() == ".msgpack";
  return n;
}

}  // namespace

TEST_F(FrontCache, CachedLoadEqualsUncachedLoad) {
  auto f = write("m.yaml", kManifest);
  Diagnostics d1;
  DesiredState first = loadDesired({f}, builtinProviders(), d1);
  ASSERT_EQ(entries(dir / "cache"), 1u) << "the front end had no errors (the linux provider's come after)";
  Diagnostics d2;
  DesiredState second = loadDesired({f}, builtinProviders(), d2);
  // The lint warning (promiscuous without justification) is reported again; the provider pass runs again.
  EXPECT_EQ(d1.render(), d2.render());
  EXPECT_EQ(d1.warningCount(), 1u);
  ASSERT_EQ(first.resources.size(), second.resources.size());
  for (size_t i = 0; i < first.resources.size(); ++i) {
    const Resource &a = first.resources[i], &b = second.resources[i];
    EXPECT_EQ(a.addr, b.addr);
    EXPECT_EQ(a.attrs, b.attrs);
    EXPECT_EQ(a.loc.str(), b.loc.str());
    EXPECT_EQ(a.dependsOn, b.dependsOn);
    ASSERT_EQ(a.origins.size(), b.origins.size());
    for (const auto& [p, o] : a.origins) {
      EXPECT_EQ(o.origin, b.origins.at(p).origin) << p;
      EXPECT_EQ(o.from, b.origins.at(p).from) << p;
    }
  }
  EXPECT_EQ(first.targets.size(), second.targets.size());
  EXPECT_EQ(first.targets[0].labels, second.targets[0].labels);
  EXPECT_EQ(first.targets[0].loc.str(), second.targets[0].loc.str());
  EXPECT_EQ(first.digest, second.digest);
  EXPECT_EQ(first.files, second.files);
}

TEST_F(FrontCache, AnyChangedByteIsAMissAndErrorsAreNeverCached) {
  auto f = write("m.yaml", kManifest);
  Diagnostics d;
  (void)loadDesired({f}, builtinProviders(), d);
  std::string changed = kManifest;
  changed.replace(changed.find("mtu: 9000,"), 10, "mtu: 9001,");  // the Switch's
  write("m.yaml", changed);
  Diagnostics d2;
  DesiredState s = loadDesired({f}, builtinProviders(), d2);
  EXPECT_EQ(entries(dir / "cache"), 2u);
  const Resource* br = nullptr;
  for (const auto& r : s.resources)
    if (r.addr.name == "br0") br = &r;
  ASSERT_TRUE(br);
  EXPECT_EQ(br->attrs.getInt("mtu"), 9001);
  // A manifest with a front-end error (the port's MTU above its switch's): reported, not stored.
  write("m.yaml", std::string(kManifest).replace(std::string(kManifest).find("mtu: 9000}"), 10, "mtu: 9100}"));
  Diagnostics d3;
  (void)loadDesired({f}, builtinProviders(), d3);
  EXPECT_TRUE(d3.hasErrors());
  EXPECT_EQ(entries(dir / "cache"), 2u);
  Diagnostics d4;
  (void)loadDesired({f}, builtinProviders(), d4);
  EXPECT_EQ(d3.render(), d4.render());
}

TEST_F(FrontCache, DamagedOrForeignEntriesAreMisses) {
  auto f = write("m.yaml", kManifest);
  Diagnostics d;
  DesiredState good = loadDesired({f}, builtinProviders(), d);
  fs::path entry;
  for (const auto& e : fs::directory_iterator(dir / "cache")) entry = e.path();
  // Truncated: a miss, and the next load rewrites it.
  fs::resize_file(entry, 10);
  EXPECT_FALSE(frontcache::load(entry.stem().string()));
  Diagnostics d2;
  DesiredState again = loadDesired({f}, builtinProviders(), d2);
  EXPECT_EQ(d2.render(), d.render());
  EXPECT_EQ(again.resources.size(), good.resources.size());
  EXPECT_TRUE(frontcache::load(entry.stem().string()));
  // Writable by others: ignored.
  ::chmod(entry.c_str(), 0666);
  EXPECT_FALSE(frontcache::load(entry.stem().string()));
  // An entry of the right shape with a wrong type inside, or saved under another key: a miss, not an error.
  auto head = vnetplan::Json::to_msgpack(vnetplan::Json{{"format", "x"}, {"targets", vnetplan::Json::array()}});
  std::string wrongType(4, '\0');
  wrongType[3] = static_cast<char>(head.size());
  wrongType.append(head.begin(), head.end());
  EXPECT_FALSE(frontcache::decode(wrongType));
  ::chmod(entry.c_str(), 0600);
  fs::copy_file(entry, dir / "cache" / (std::string(64, 'a') + ".msgpack"));
  EXPECT_FALSE(frontcache::load(std::string(64, 'a'))) << "the entry names its own key";
  // Garbage bytes never crash the decoder.
  for (const std::string& bytes : {std::string(), std::string("\x00\x00\x00\x05garbage", 11),
                                  std::string("\xff\xff\xff\xff", 4), std::string(100, '\x91')})
    EXPECT_FALSE(frontcache::decode(bytes));
}

TEST_F(FrontCache, OffMeansNoKeyAndNoFiles) {
  setenv("VNETPLAN_CACHE", "off", 1);
  auto f = write("m.yaml", kManifest);
  Diagnostics d;
  (void)loadDesired({f}, builtinProviders(), d);
  EXPECT_FALSE(fs::exists(dir / "cache"));
  EXPECT_EQ(frontcache::keyOf({{f, kManifest}}), "");
  unsetenv("VNETPLAN_CACHE");
  EXPECT_NE(frontcache::keyOf({{f, kManifest}}), frontcache::keyOf({{f, std::string(kManifest) + " "}}));
  EXPECT_NE(frontcache::keyOf({{f, kManifest}}), frontcache::keyOf({{f + "x", kManifest}}));
}

// Every field of every resource survives encode/decode exactly (values of every JSON type, locations in several
// files, origins, dependencies, labels, flags), and every truncation or flipped byte of the entry is a miss or a
// clean decode, never a crash.
TEST(FrontCacheCodec, RoundTripsEveryFieldAndSurvivesDamage) {
  DesiredState d;
  Target t;
  t.name = "t1";
  t.provider = "linux";
  t.spec.set("netns", "x");
  t.labels = {{"role", "hv"}};
  t.loc = SourceLoc{"/m/a.yaml", 1, 2};
  d.targets.push_back(t);
  for (int i = 0; i < 3; ++i) {
    Resource r;
    r.addr = *Address::parse("t1/Port/p" + std::to_string(i));
    r.loc = SourceLoc{i % 2 ? "/m/b.yaml" : "/m/a.yaml", 10 + i, 3};
    r.attrs.set("mtu", 1500 + i);
    r.attrs.set("big", std::numeric_limits<uint64_t>::max());
    r.attrs.set("ratio", 0.25);
    r.attrs.set("up", i % 2 == 0);
    r.attrs.set("none", nullptr);
    r.attrs.set("addresses", Json::array({"10.0.0.1/24", "fd00::1/64"}));
    r.attrs.set("shaping", Json{{"averageKbps", 1000}, {"x", Json::object()}});
    r.attrs.set("name", "\xc3\xa9t\xc3\xa9 \"q\"");
    r.origins["mtu"] = AttrOrigin{Origin::Inherited, "t1/Switch/br0"};
    r.origins["up"] = AttrOrigin{Origin::Default, ""};
    r.fieldLocs["mtu"] = SourceLoc{"/m/c.yaml", 7, 9};
    r.dependsOn = {*Address::parse("t1/Switch/br0")};
    r.labels = {{"tier", "web"}, {"empty", ""}};
    r.adopt = i == 1;
    r.deleteOnRelease = i == 2;
    r.justification = i == 0 ? "" : "because";
    d.resources.push_back(r);
  }
  d.files = {"/m/a.yaml", "/m/b.yaml"};
  d.digest = "abc";
  std::vector<Diagnostic> warnings{Diagnostic{Severity::Warning, SourceLoc{"/m/b.yaml", 3, 4}, "careful", "w-code"}};
  const std::string bytes = frontcache::encode("k", d, warnings);
  auto e = frontcache::decode(bytes);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->key, "k");
  ASSERT_EQ(e->desired.resources.size(), d.resources.size());
  for (size_t i = 0; i < d.resources.size(); ++i) {
    const Resource &a = d.resources[i], &b = e->desired.resources[i];
    EXPECT_EQ(a.addr, b.addr);
    EXPECT_EQ(a.attrs, b.attrs);
    EXPECT_EQ(a.attrs.find("big")->type(), b.attrs.find("big")->type());
    EXPECT_EQ(a.loc.str(), b.loc.str());
    ASSERT_EQ(a.origins.size(), b.origins.size());
    for (const auto& [p, o] : a.origins) {
      EXPECT_EQ(o.origin, b.origins.at(p).origin);
      EXPECT_EQ(o.from, b.origins.at(p).from);
    }
    ASSERT_EQ(a.fieldLocs.size(), b.fieldLocs.size());
    EXPECT_EQ(a.fieldLocs.at("mtu").str(), b.fieldLocs.at("mtu").str());
    EXPECT_EQ(a.dependsOn, b.dependsOn);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.adopt, b.adopt);
    EXPECT_EQ(a.deleteOnRelease, b.deleteOnRelease);
    EXPECT_EQ(a.justification, b.justification);
  }
  EXPECT_EQ(e->desired.files, d.files);
  EXPECT_EQ(e->desired.digest, d.digest);
  ASSERT_EQ(e->warnings.size(), 1u);
  EXPECT_EQ(e->warnings[0].loc.str(), "/m/b.yaml:3:4");
  EXPECT_EQ(e->warnings[0].message, "careful");
  EXPECT_EQ(e->warnings[0].code, "w-code");
  ASSERT_EQ(e->desired.targets.size(), 1u);
  EXPECT_EQ(e->desired.targets[0].labels, t.labels);
  // Damage: every proper prefix is a miss; a flipped byte anywhere decodes or misses (ASan watches for the rest).
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(frontcache::decode(bytes.substr(0, n))) << n;
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0xff);
    (void)frontcache::decode(flipped);
  }
}
