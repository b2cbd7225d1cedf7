// state/decoded_cache: decoded state files cached by their exact bytes. The state file stays the truth: a changed
// file is a miss, a damaged or foreign entry is a miss, and a hit gives back exactly what decoding the JSON gives.
#include "state/decoded_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "base/cachedir.h"
#include "model/bytestream.h"
#include "state/backends.h"

namespace fs = std::filesystem;
using namespace vnetplan;
using namespace vnetplan::state;

namespace {

class DecodedCache : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "vnetplan-decoded-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir = tmpl;
    setenv("VNETPLAN_CACHE_DIR", (dir / "cache").c_str(), 1);
    unsetenv("VNETPLAN_CACHE");
  }
  void TearDown() override {
    unsetenv("VNETPLAN_CACHE_DIR");
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Store store() {
    auto b = openBackend("file://" + (dir / "state").string());
    if (!b.ok()) throw std::runtime_error(b.error().message);
    return Store(std::move(*b));
  }
  std::string stateBytes() {
    std::ifstream in(dir / "state/targets/hv01/state.json", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  size_t entries() {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir / "cache", ec))
      if (e.path().extension() == ".state") ++n;
    return n;
  }
  fs::path dir;
};

// Every field the store keeps, absent ones too: an adopted object with and without its pre-image, identities,
// values of every JSON type (nested, unsigned, floating point).
TargetState sample() {
  TargetState st;
  st.target = "hv01";
  st.generation = 7;
  st.connection = R"({"provider":"linux","spec":{"netns":"x"}})";
  OwnedObject sw{Address{"hv01", Kind::Switch, "br0"}, "linux", Attrs(), 3};
  sw.lastApplied.set("mtu", 9000);
  sw.lastApplied.set("stp", false);
  sw.lastApplied.set("vlans", Json::array({10, 20}));
  sw.lastApplied.set("ratio", 0.5);
  sw.lastApplied.set("big", Json(uint64_t{18446744073709551615ull}));
  sw.lastApplied.set("note", nullptr);
  sw.identity = ProviderIdentity{"uuid-1", "rev-9"};
  OwnedObject nic{Address{"hv01", Kind::Port, "eth1"}, "linux", Attrs(), 5};
  nic.lastApplied.set("switch", "br0");
  nic.adopted = true;
  nic.preAdoption = Attrs();
  nic.preAdoption->set("mtu", 1500);
  nic.deleteOnRelease = true;
  OwnedObject bare{Address{"hv01", Kind::Port, "tap0"}, "linux", Attrs(), 6};
  bare.adopted = true;  // adopted with no recorded pre-image
  for (auto* o : {&sw, &nic, &bare}) st.owned[o->addr] = *o;
  return st;
}

// With `types`, every value also has the same JSON type (a JSON round trip may make 9000 unsigned; a cache must
// give back what the JSON gave).
void expectSame(const TargetState& a, const TargetState& b, bool types = true) {
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.generation, b.generation);
  EXPECT_EQ(a.connection, b.connection);
  ASSERT_EQ(a.owned.size(), b.owned.size());
  for (const auto& [addr, o] : a.owned) {
    auto it = b.owned.find(addr);
    ASSERT_NE(it, b.owned.end()) << addr.str();
    const OwnedObject& p = it->second;
    EXPECT_EQ(o.addr, p.addr);
    EXPECT_EQ(o.provider, p.provider);
    EXPECT_EQ(o.lastApplied, p.lastApplied) << addr.str();
    for (const auto& [path, v] : o.lastApplied.values()) {
      if (types) {
        EXPECT_EQ(v.type(), p.lastApplied.find(path)->type()) << addr.str() << " " << path;
      }
    }
    EXPECT_EQ(o.sinceGeneration, p.sinceGeneration);
    EXPECT_EQ(o.identity, p.identity);
    EXPECT_EQ(o.adopted, p.adopted);
    EXPECT_EQ(o.preAdoption.has_value(), p.preAdoption.has_value()) << addr.str();
    if (o.preAdoption && p.preAdoption) {
      EXPECT_EQ(*o.preAdoption, *p.preAdoption);
    }
    EXPECT_EQ(o.deleteOnRelease, p.deleteOnRelease);
  }
}

TEST_F(DecodedCache, AnEntryDecodesToExactlyWhatWasEncoded) {
  const TargetState st = sample();
  auto back = decodedcache::decode(decodedcache::encode("k1", st), "k1");
  ASSERT_TRUE(back.has_value());
  expectSame(st, *back);
}

TEST_F(DecodedCache, EveryDamagedOrForeignEntryIsAMiss) {
  const std::string bytes = decodedcache::encode("k1", sample());
  EXPECT_FALSE(decodedcache::decode(bytes, "k2").has_value());  // saved under another key
  for (size_t n = 0; n < bytes.size(); ++n)
    ASSERT_FALSE(decodedcache::decode(bytes.substr(0, n), "k1").has_value()) << "truncated to " << n;
  EXPECT_FALSE(decodedcache::decode(bytes + "x", "k1").has_value());
  std::string flipped = bytes;
  flipped[flipped.size() - 1] = 7;  // deleteOnRelease is a flag: 7 is not one
  EXPECT_FALSE(decodedcache::decode(flipped, "k1").has_value());
}

// Through the store: the first load decodes the JSON and keeps the result; the second is served from the entry
// (shown by planting a different state under the same key); a changed file is read afresh.
TEST_F(DecodedCache, TheStoreUsesAnEntryOnlyForTheSameBytes) {
  Store s = store();
  TargetState st = sample();
  ASSERT_TRUE(s.save(st).ok());
  auto first = s.load("hv01");
  ASSERT_TRUE(first.ok()) << first.error().message;
  expectSame(st, *first, false);  // decoded from JSON: every field survives the file too
  ASSERT_EQ(entries(), 1u);
  const std::string key = decodedcache::keyOf(stateBytes());
  ASSERT_FALSE(key.empty());
  auto cached = decodedcache::load(key, "hv01");
  ASSERT_TRUE(cached.has_value());
  expectSame(*first, *cached);  // the entry is what the JSON decoded to, value types included

  TargetState planted = st;
  planted.generation = 99;
  decodedcache::store(key, planted);
  auto second = s.load("hv01");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->generation, 99);  // the entry was used

  st.generation = 8;
  ASSERT_TRUE(s.save(st).ok());
  auto third = s.load("hv01");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->generation, 8);  // new bytes: the file, not the entry
  EXPECT_EQ(entries(), 2u);

  // A damaged entry for the current bytes: the JSON is decoded again and the entry rewritten.
  { std::ofstream(dir / "cache" / (decodedcache::keyOf(stateBytes()) + ".state"), std::ios::trunc) << "garbage"; }
  auto fourth = s.load("hv01");
  ASSERT_TRUE(fourth.ok());
  expectSame(st, *fourth, false);
  EXPECT_TRUE(decodedcache::load(decodedcache::keyOf(stateBytes()), "hv01").has_value());
  // An entry is only given for the target it was decoded for.
  EXPECT_FALSE(decodedcache::load(decodedcache::keyOf(stateBytes()), "hv02").has_value());
}

// Attributes are written in key order and read back without a search; bytes out of that order are damage.
TEST(ByteStream, AttrsComeBackInKeyOrderAndOutOfOrderIsDamage) {
  Attrs a;
  a.set("z", 1);
  a.set("a.b", Json::array({"x"}));
  a.set("m", nullptr);
  bytestream::Writer w;
  bytestream::writeAttrs(w, a);
  const std::string ok = w.finish();
  bytestream::Reader in(ok.data(), ok.data() + ok.size());
  EXPECT_EQ(bytestream::readAttrs(in), a);
  EXPECT_TRUE(in.atEnd());

  bytestream::Writer bad;
  bad.u32(2);
  bad.str("b");
  bad.value(1);
  bad.str("a");
  bad.value(2);
  const std::string bytes = bad.finish();
  bytestream::Reader r(bytes.data(), bytes.data() + bytes.size());
  EXPECT_THROW(bytestream::readAttrs(r), bytestream::Damaged);
}

TEST_F(DecodedCache, OffMeansNoEntries) {
  setenv("VNETPLAN_CACHE", "off", 1);
  Store s = store();
  ASSERT_TRUE(s.save(sample()).ok());
  auto back = s.load("hv01");
  unsetenv("VNETPLAN_CACHE");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(entries(), 0u);
  EXPECT_EQ(decodedcache::keyOf("x").empty(), false);
}

}  // namespace
