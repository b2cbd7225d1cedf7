// The ovs provider's pure parts, without a server: JSON-RPC framing, datum decoding, transactions as data
// (error mapping back to the operation and plan step), VLAN canonical forms and the select snapshot's checks.
#include <gtest/gtest.h>

#include "providers/ovs/db.h"
#include "providers/ovs/kind.h"
#include "providers/ovs/ovsdb.h"

using namespace vnetplan;
using namespace vnetplan::ovs;

TEST(OvsFraming, FindsObjectsAcrossReadsAndIgnoresBracesInStrings) {
  Framer f;
  std::string buf = R"({"id":1,"result":["a}b", "c\"{"]})";
  std::string part = buf.substr(0, 10);
  EXPECT_EQ(f.scan(part), 0u);  // incomplete
  part = buf;
  EXPECT_EQ(f.scan(part), buf.size());
  Framer g;
  std::string two = "  \n{\"a\":[1,{}]}{\"b\":2}";
  auto end = g.scan(two);
  ASSERT_TRUE(end);
  EXPECT_EQ(two.substr(0, *end), "  \n{\"a\":[1,{}]}");
}

TEST(OvsFraming, RejectsWhatCannotBeAMessage) {
  Framer f;
  std::string http = "HTTP/1.1 400 Bad Request\r\n";
  EXPECT_FALSE(f.scan(http).has_value());
  Framer g;
  std::string stray = "]{}";
  EXPECT_FALSE(g.scan(stray).has_value());
  // Bracket kinds must match, and nesting is bounded (deeper input would exhaust a later copy's stack).
  Framer h;
  std::string mismatched = "{\"a\":1]}";
  EXPECT_FALSE(h.scan(mismatched).has_value());
  Framer deep;
  std::string nested = "{\"a\":" + std::string(Framer::kMaxDepth, '[') + std::string(Framer::kMaxDepth, ']') + "}";
  EXPECT_FALSE(deep.scan(nested).has_value());
  Framer ok;
  std::string fine = "{\"a\":" + std::string(Framer::kMaxDepth - 1, '[') + std::string(Framer::kMaxDepth - 1, ']') + "}";
  EXPECT_EQ(ok.scan(fine), fine.size());
}

TEST(OvsDatum, DecodesSetsMapsAndUuids) {
  EXPECT_EQ(setAtoms(Json::parse(R"(["set",[1,2]])")).size(), 2u);
  EXPECT_EQ(setAtoms(Json(5)).size(), 1u);
  EXPECT_EQ(intOf(Json::parse(R"(["set",[]])")), std::nullopt);
  EXPECT_EQ(intOf(Json::parse(R"(["set",[7]])")), 7);
  auto m = mapEntries(Json::parse(R"(["map",[[1,["uuid","u1"]],["k","v"]]])"));
  EXPECT_EQ(uuidOf(m["1"]), "u1");
  EXPECT_EQ(stringMap(Json::parse(R"(["map",[["k","v"],["n",3]]])")).size(), 1u);
  // Garbage decodes to nothing, never throws.
  EXPECT_TRUE(mapEntries(Json::parse(R"(["map","x"])")).empty());
  EXPECT_FALSE(uuidOf(Json::parse(R"(["uuid",5])")));
}

TEST(OvsTxn, WaitsGoFirstAndErrorsMapBackToTheStep) {
  Txn t("Open_vSwitch");
  t.setStep(0);
  Json ref = t.insert("Port", Json{{"name", "p1"}}, "create port p1");
  t.setStep(1);
  t.update("Interface", "u2", Json{{"mtu_request", 9000}}, "update interface p2");
  t.wait("Port", whereName("p9"), {"name"}, Json::array(), "port p9 still does not exist");
  Json params = t.params();
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[1]["op"], "wait");
  EXPECT_EQ(params[2]["uuid-name"], ref[1]);
  // The update (third operation sent) fails.
  Json reply = Json::parse(R"([{}, {"uuid":["uuid","x"]}, {"error":"constraint violation","details":"mtu"}])");
  auto o = t.interpret(reply);
  EXPECT_FALSE(o.ok);
  EXPECT_FALSE(o.stale);
  EXPECT_EQ(o.failedStep, 1);
  EXPECT_NE(o.message.find("update interface p2: constraint violation (mtu)"), std::string::npos) << o.message;
  // A failed wait is a stale transaction.
  auto s = t.interpret(Json::parse(R"([{"error":"timed out"}])"));
  EXPECT_TRUE(s.stale);
  // The commit's own error comes after the operations' results.
  auto c = t.interpret(Json::parse(R"([{}, {"uuid":["uuid","x"]}, {"count":1}, {"error":"referential integrity violation"}])"));
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.message.find("commit: referential integrity violation"), std::string::npos);
  auto ok = t.interpret(Json::parse(R"([{}, {"uuid":["uuid","new-port"]}, {"count":1}])"));
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(t.insertedUuid(ok, ref[1].get<std::string>()), "new-port");
  EXPECT_FALSE(t.interpret(Json("nope")).ok);
  EXPECT_FALSE(t.interpret(Json::array()).ok) << "fewer results than operations";
}

TEST(OvsVlan, TrunksHaveOneCanonicalForm) {
  std::string why;
  auto c = canonicalTrunks(Json::parse(R"([22, "20-21", 10, 10])"), &why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(*c, Json::parse(R"([10, "20-22"])"));
  EXPECT_FALSE(canonicalTrunks(Json::parse(R"(["5-2"])"), &why));
  EXPECT_NE(why.find("empty range"), std::string::npos);
  EXPECT_FALSE(canonicalTrunks(Json::parse(R"([4095])"), &why));
  EXPECT_FALSE(canonicalTrunks(Json::array(), &why));
  Attrs a;
  a.set("vlan.trunk", *c);
  VlanColumns v = vlanColumns(a);
  EXPECT_EQ(v.vlanMode, "trunk");
  EXPECT_EQ(setAtoms(v.trunks).size(), 4u);
  // Read back from a Port row: the same canonical attributes.
  PortRow port;
  for (const auto& t : setAtoms(v.trunks)) port.trunks.push_back(t.get<int64_t>());
  port.vlanMode = "trunk";
  Attrs back;
  vlanAttrs(port, back);
  EXPECT_EQ(back, vlanOnly(a));
  // A native VLAN mode vnetplan never writes shows up as such.
  PortRow native;
  native.tag = 5, native.trunks = {7}, native.vlanMode = "native-untagged";
  Attrs odd;
  vlanAttrs(native, odd);
  EXPECT_EQ(odd.getString("ovs.vlanMode"), "native-untagged");
}

TEST(OvsSnapshot, RefusesMalformedSelectReplies) {
  auto empty = [](size_t n) {
    Json r = Json::array();
    for (size_t i = 0; i < n; ++i) r.push_back(Json{{"rows", Json::array()}});
    return r;
  };
  const size_t n = tableColumns().size();
  auto zeroRoots = Snapshot::fromSelect(empty(n));
  ASSERT_FALSE(zeroRoots);
  EXPECT_NE(zeroRoots.error().message.find("exactly one"), std::string::npos);
  EXPECT_FALSE(Snapshot::fromSelect(empty(n - 1)));
  EXPECT_FALSE(Snapshot::fromSelect(Json("x")));
  Json r = empty(n);
  r[1]["rows"].push_back(Json{{"name", "br0"}});  // Bridge row without _uuid
  EXPECT_FALSE(Snapshot::fromSelect(r));
  Json bad = empty(n);
  Json root{{"_uuid", uuidRef("r")}, {"bridges", setOf({})}, {"next_cfg", 0}, {"cur_cfg", 0}};
  bad[0]["rows"].push_back(root);
  Json br{{"_uuid", uuidRef("b")}};
  for (const auto& c : columnsOf("Bridge").read) br[c] = setOf({});
  br["name"] = 42;  // not a string
  bad[1]["rows"].push_back(br);
  auto e = Snapshot::fromSelect(bad);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("name that is not a string"), std::string::npos);
  br["name"] = "br0";
  bad[1]["rows"][0] = br;
  auto ok = Snapshot::fromSelect(bad);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->bridgeUuid("br0"), "b");
  ASSERT_TRUE(ok->bridge("b"));
  EXPECT_EQ(ok->bridge("b")->name, "br0");
  EXPECT_TRUE(ok->bridge("b")->ports.empty());
}

TEST(OvsText, PeerTextIsMadePrintable) {
  EXPECT_EQ(printable("not leader\n\x1b]0;x\x07"), "not leader??]0;x?");
  EXPECT_EQ(printable(std::string(500, 'a'), 10), "aaaaaaaaaa...");
}

TEST(OvsRemote, ParsesUnixAndTcpAndRejectsTheRest) {
  EXPECT_TRUE(parseRemote("unix:/run/openvswitch/db.sock"));
  auto t = parseRemote("tcp:[::1]:6640");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->port, 6640);
  EXPECT_FALSE(parseRemote("tcp:host:0"));
  EXPECT_FALSE(parseRemote("tcp:host:99999"));
  EXPECT_FALSE(parseRemote("ssl:host:6640"));
  EXPECT_FALSE(parseRemote("unix:"));
  EXPECT_FALSE(parseRemote("unix:/" + std::string(200, 'x')));
}
