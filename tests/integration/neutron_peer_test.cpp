// The Neutron (and Keystone) peers themselves, through neutron_harness.h: the real neutron-server that the vpc
// provider will be tested against serves every API the provider needs, with the semantics the provider must
// handle (If-Match, tag filters, extra routes, deletion order), and Keystone issues tokens that neutron-server
// accepts. Each assertion is on what the real server answered.
#include <algorithm>
#include <set>

#include "tests/integration/neutron_harness.h"

using namespace vnptest;

namespace {

std::set<std::string> ids(const std::vector<Json>& objects) {
  std::set<std::string> out;
  for (const auto& o : objects) out.insert(o.value("id", ""));
  return out;
}

// The external (flat, router:external) network with a subnet that router gateways take their address from.
struct External {
  Json network, subnet;
};

class NeutronPeer : public NeutronTest {
 protected:
  External external() {
    External e;
    e.network = create("networks", {{"name", "public"},
                                    {"router:external", true},
                                    {"provider:network_type", "flat"},
                                    {"provider:physical_network", neutronSandbox->fact("FLAT_PHYSNET")}});
    if (e.network.is_null()) return e;
    e.subnet = create("subnets", {{"network_id", e.network["id"]},
                                  {"cidr", "198.51.100.0/24"},
                                  {"ip_version", 4},
                                  {"enable_dhcp", false}});
    return e;
  }

  // A network on a VLAN provider segment of the sandbox's physnet, with one subnet.
  std::pair<Json, Json> vlanNetwork(const std::string& name, int vlan, const std::string& cidr) {
    Json net = create("networks", {{"name", name},
                                   {"provider:network_type", "vlan"},
                                   {"provider:physical_network", neutronSandbox->fact("PHYSNET")},
                                   {"provider:segmentation_id", vlan}});
    if (net.is_null()) return {nullptr, nullptr};
    Json subnet = create("subnets", {{"network_id", net["id"]}, {"cidr", cidr}, {"ip_version", 4}});
    return {net, subnet};
  }
};

}  // namespace

TEST_F(NeutronPeer, ServesTheExtensionsTheVpcProviderUses) {
  HttpReply r = neutron.get("/extensions");
  ASSERT_EQ(r.status, 200) << r;
  std::set<std::string> aliases;
  for (const auto& e : r.json["extensions"]) aliases.insert(e.value("alias", ""));
  for (const char* needed : {"router", "ext-gw-mode", "external-net", "provider", "security-group",
                             "standard-attr-tag", "revision-if-match", "standard-attr-revisions", "extraroute",
                             "extraroute-atomic", "port-security", "net-mtu"})
    EXPECT_TRUE(aliases.count(needed)) << "extension " << needed << " is missing";
  // Debian 12 does not package neutron-fwaas: no network ACLs on this peer.
  EXPECT_FALSE(aliases.count("fwaas_v2"));
}

TEST_F(NeutronPeer, NoauthPostWithoutTenantIsRefused) {
  HttpReply r = neutron.post("/networks", {{"network", {{"name", "orphan"}}}});
  EXPECT_EQ(r.status, 400) << r;
  EXPECT_NE(r.body.find("tenant_id"), std::string::npos) << r;
}

TEST_F(NeutronPeer, RouterWithExternalGatewayAndSnat) {
  External ext = external();
  ASSERT_FALSE(ext.subnet.is_null());
  Json router = create("routers", {{"name", "edge"},
                                   {"external_gateway_info", {{"network_id", ext.network["id"]}, {"enable_snat", true}}}});
  ASSERT_FALSE(router.is_null());
  Json seen = show("routers", router["id"]);
  ASSERT_TRUE(seen.is_object());
  const Json gw = seen["external_gateway_info"];  // a copy: seen is read again below
  EXPECT_EQ(gw["network_id"], ext.network["id"]);
  EXPECT_EQ(gw["enable_snat"], true);
  ASSERT_EQ(gw["external_fixed_ips"].size(), 1u) << gw.dump();
  EXPECT_EQ(gw["external_fixed_ips"][0]["subnet_id"], ext.subnet["id"]);

  // ext-gw-mode: SNAT off in place, same gateway.
  HttpReply r = update("routers", router["id"], {{"external_gateway_info",
                                                  {{"network_id", ext.network["id"]}, {"enable_snat", false}}}});
  ASSERT_EQ(r.status, 200) << r;
  seen = show("routers", router["id"]);
  EXPECT_EQ(seen["external_gateway_info"]["enable_snat"], false);
  EXPECT_EQ(seen["external_gateway_info"]["external_fixed_ips"], gw["external_fixed_ips"]);

  // The gateway is a port of the external network owned by the router.
  auto ports = list("ports", "device_id=" + router["id"].get<std::string>() + "&device_owner=network:router_gateway");
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0]["network_id"], ext.network["id"]);
}

TEST_F(NeutronPeer, VlanNetworkSubnetAndRouterInterface) {
  auto [net, subnet] = vlanNetwork("app", 120, "10.20.0.0/24");
  ASSERT_FALSE(subnet.is_null());
  Json seen = show("networks", net["id"]);
  EXPECT_EQ(seen["provider:network_type"], "vlan");
  EXPECT_EQ(seen["provider:physical_network"], neutronSandbox->fact("PHYSNET"));
  EXPECT_EQ(seen["provider:segmentation_id"], 120);
  EXPECT_EQ(seen["subnets"], Json::array({subnet["id"]}));
  EXPECT_EQ(show("subnets", subnet["id"])["gateway_ip"], "10.20.0.1");

  // The same segment twice is refused: the VLAN is taken.
  HttpReply dup = neutron.post("/networks", {{"network",
                                              {{"name", "dup"},
                                               {"tenant_id", project},
                                               {"provider:network_type", "vlan"},
                                               {"provider:physical_network", neutronSandbox->fact("PHYSNET")},
                                               {"provider:segmentation_id", 120}}}});
  EXPECT_EQ(dup.status, 409) << dup;

  Json router = create("routers", {{"name", "r"}});
  ASSERT_FALSE(router.is_null());
  HttpReply r = neutron.put("/routers/" + router["id"].get<std::string>() + "/add_router_interface",
                            {{"subnet_id", subnet["id"]}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.json["subnet_id"], subnet["id"]);
  Json port = show("ports", r.json["port_id"]);
  ASSERT_TRUE(port.is_object());
  EXPECT_EQ(port["device_owner"], "network:router_interface");
  EXPECT_EQ(port["device_id"], router["id"]);
  EXPECT_EQ(port["fixed_ips"][0]["ip_address"], "10.20.0.1");  // the interface takes the subnet's gateway
}

TEST_F(NeutronPeer, SecurityGroupRulesIncludingARemoteGroup) {
  Json web = create("security-groups", {{"name", "web"}});
  Json db = create("security-groups", {{"name", "db"}});
  ASSERT_FALSE(web.is_null() || db.is_null());
  // A new group comes with two egress rules (IPv4 and IPv6, any); a test owning rules must expect them.
  EXPECT_EQ(list("security-group-rules", "security_group_id=" + db["id"].get<std::string>()).size(), 2u);

  Json fromWeb = create("security-group-rules", {{"security_group_id", db["id"]},
                                                  {"direction", "ingress"},
                                                  {"ethertype", "IPv4"},
                                                  {"protocol", "tcp"},
                                                  {"port_range_min", 5432},
                                                  {"port_range_max", 5432},
                                                  {"remote_group_id", web["id"]}});
  Json https = create("security-group-rules", {{"security_group_id", web["id"]},
                                               {"direction", "ingress"},
                                               {"ethertype", "IPv4"},
                                               {"protocol", "tcp"},
                                               {"port_range_min", 443},
                                               {"port_range_max", 443},
                                               {"remote_ip_prefix", "0.0.0.0/0"}});
  ASSERT_FALSE(fromWeb.is_null() || https.is_null());
  Json seen = show("security-groups", db["id"]);
  bool found = false;
  for (const auto& rule : seen["security_group_rules"])
    if (rule["id"] == fromWeb["id"]) {
      found = true;
      EXPECT_EQ(rule["remote_group_id"], web["id"]);
      EXPECT_TRUE(rule["remote_ip_prefix"].is_null());
    }
  EXPECT_TRUE(found) << seen.dump();

  // The same rule again is a conflict.
  HttpReply dup = neutron.post("/security-group-rules",
                               {{"security_group_rule",
                                 {{"security_group_id", db["id"]}, {"direction", "ingress"}, {"ethertype", "IPv4"},
                                  {"protocol", "tcp"}, {"port_range_min", 5432}, {"port_range_max", 5432},
                                  {"remote_group_id", web["id"]}, {"tenant_id", project}}}});
  EXPECT_EQ(dup.status, 409) << dup;

  // Rules have no update: a changed port is refused as read-only (400), and even the description, which the API
  // reference calls updatable, fails (500: Ml2Plugin has no update_security_group_rule). Delete + create.
  HttpReply port = update("security-group-rules", https["id"], {{"port_range_min", 8443}, {"port_range_max", 8443}});
  EXPECT_EQ(port.status, 400) << port;
  HttpReply desc = update("security-group-rules", https["id"], {{"description", "x"}});
  EXPECT_GE(desc.status, 400) << desc;
  EXPECT_EQ(remove("security-group-rules", https["id"]).status, 204);
  EXPECT_TRUE(show("security-group-rules", https["id"]).is_null());

  // Deleting a group that another group's rule names is allowed and takes that rule with it.
  HttpReply del = remove("security-groups", web["id"]);
  EXPECT_EQ(del.status, 204) << del;
  EXPECT_TRUE(show("security-group-rules", fromWeb["id"]).is_null());
}

TEST_F(NeutronPeer, TagsAndListByTag) {
  Json a = create("networks", {{"name", "a"}});
  Json b = create("networks", {{"name", "b"}});
  ASSERT_FALSE(a.is_null() || b.is_null());
  const std::string aid = a["id"], bid = b["id"];
  // Replace all tags of a (PUT .../tags), add one to b (PUT .../tags/TAG, 201 with an empty body).
  HttpReply r = neutron.put("/networks/" + aid + "/tags", {{"tags", {"vnetplan:owned", "env=prod"}}});
  ASSERT_EQ(r.status, 200) << r;
  r = neutron.putEmpty("/networks/" + bid + "/tags/vnetplan:owned");
  ASSERT_EQ(r.status, 201) << r;

  auto tags = show("networks", aid)["tags"].get<std::vector<std::string>>();
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<std::string>{"env=prod", "vnetplan:owned"}));

  const std::string mine = "project_id=" + project;
  EXPECT_EQ(ids(list("networks", mine + "&tags=vnetplan:owned")), (std::set<std::string>{aid, bid}));
  EXPECT_EQ(ids(list("networks", mine + "&tags=" + urlEncode("vnetplan:owned,env=prod"))), std::set<std::string>{aid});
  EXPECT_EQ(ids(list("networks", mine + "&tags-any=" + urlEncode("env=prod,nope"))), std::set<std::string>{aid});
  EXPECT_EQ(ids(list("networks", mine + "&not-tags=" + urlEncode("env=prod"))), std::set<std::string>{bid});
  EXPECT_TRUE(list("networks", mine + "&tags=absent").empty());

  EXPECT_EQ(neutron.del("/networks/" + aid + "/tags/env=prod").status, 204);
  EXPECT_EQ(show("networks", aid)["tags"], Json::array({"vnetplan:owned"}));
}

TEST_F(NeutronPeer, StaleIfMatchRevisionIsRefusedWith412) {
  Json net = create("networks", {{"name", "rev"}});
  ASSERT_FALSE(net.is_null());
  const std::string id = net["id"];
  const long long rev = net["revision_number"];
  HttpReply r = update("networks", id, {{"description", "one"}},
                       {{"If-Match", "revision_number=" + std::to_string(rev)}});
  ASSERT_EQ(r.status, 200) << r;
  const long long next = r.json["network"]["revision_number"];
  EXPECT_GT(next, rev);

  HttpReply stale = update("networks", id, {{"description", "two"}},
                           {{"If-Match", "revision_number=" + std::to_string(rev)}});
  EXPECT_EQ(stale.status, 412) << stale;
  EXPECT_EQ(stale.json["NeutronError"]["type"], "RevisionNumberConstraintFailed") << stale;
  EXPECT_EQ(show("networks", id)["description"], "one");
  // A tag change bumps the revision too: a plan's If-Match must come from after its own tag writes.
  ASSERT_EQ(neutron.putEmpty("/networks/" + id + "/tags/t").status, 201);
  EXPECT_GT(show("networks", id)["revision_number"].get<long long>(), next);
}

TEST_F(NeutronPeer, ExtraRoutesAddAndRemoveAtomically) {
  auto [net, subnet] = vlanNetwork("routed", 130, "10.30.0.0/24");
  ASSERT_FALSE(subnet.is_null());
  Json router = create("routers", {{"name", "r"}});
  ASSERT_FALSE(router.is_null());
  const std::string rid = router["id"];
  ASSERT_EQ(neutron.put("/routers/" + rid + "/add_router_interface", {{"subnet_id", subnet["id"]}}).status, 200);

  Json r1 = {{"destination", "10.99.0.0/16"}, {"nexthop", "10.30.0.5"}};
  Json r2 = {{"destination", "10.98.0.0/16"}, {"nexthop", "10.30.0.6"}};
  HttpReply r = neutron.put("/routers/" + rid + "/add_extraroutes", {{"router", {{"routes", {r1, r2}}}}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(show("routers", rid)["routes"].size(), 2u);
  // Adding a route that is there already is a no-op, not an error.
  EXPECT_EQ(neutron.put("/routers/" + rid + "/add_extraroutes", {{"router", {{"routes", {r1}}}}}).status, 200);
  EXPECT_EQ(show("routers", rid)["routes"].size(), 2u);
  // A nexthop outside every subnet of the router is refused.
  HttpReply bad = neutron.put("/routers/" + rid + "/add_extraroutes",
                              {{"router", {{"routes", {{{"destination", "10.97.0.0/16"}, {"nexthop", "192.0.2.1"}}}}}}});
  EXPECT_EQ(bad.status, 400) << bad;

  r = neutron.put("/routers/" + rid + "/remove_extraroutes", {{"router", {{"routes", {r1}}}}});
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(show("routers", rid)["routes"], Json::array({r2}));
}

TEST_F(NeutronPeer, RouterDeletionOrder) {
  External ext = external();
  auto [net, subnet] = vlanNetwork("inside", 140, "10.40.0.0/24");
  ASSERT_FALSE(ext.subnet.is_null() || subnet.is_null());
  Json router = create("routers", {{"name", "doomed"},
                                   {"external_gateway_info", {{"network_id", ext.network["id"]}, {"enable_snat", true}}}});
  ASSERT_FALSE(router.is_null());
  const std::string rid = router["id"];
  ASSERT_EQ(neutron.put("/routers/" + rid + "/add_router_interface", {{"subnet_id", subnet["id"]}}).status, 200);
  Json route = {{"destination", "10.77.0.0/16"}, {"nexthop", "10.40.0.9"}};
  ASSERT_EQ(neutron.put("/routers/" + rid + "/add_extraroutes", {{"router", {{"routes", {route}}}}}).status, 200);

  // Out of order: the interface a route goes through cannot go (409 RouterInterfaceInUseByRoute), nor the router
  // while it has an interface (409 RouterInUse), nor the network while the router's port is on it.
  HttpReply early = neutron.put("/routers/" + rid + "/remove_router_interface", {{"subnet_id", subnet["id"]}});
  EXPECT_EQ(early.status, 409) << early;
  EXPECT_EQ(early.json["NeutronError"]["type"], "RouterInterfaceInUseByRoute");
  HttpReply routerFirst = remove("routers", rid);
  EXPECT_EQ(routerFirst.status, 409) << routerFirst;
  EXPECT_EQ(routerFirst.json["NeutronError"]["type"], "RouterInUse");
  EXPECT_EQ(remove("networks", net["id"]).status, 409);

  // In order: extra routes, interfaces, gateway, router.
  ASSERT_EQ(neutron.put("/routers/" + rid + "/remove_extraroutes", {{"router", {{"routes", {route}}}}}).status, 200);
  ASSERT_EQ(neutron.put("/routers/" + rid + "/remove_router_interface", {{"subnet_id", subnet["id"]}}).status, 200);
  HttpReply gw = update("routers", rid, {{"external_gateway_info", Json::object()}});
  ASSERT_EQ(gw.status, 200) << gw;
  EXPECT_TRUE(gw.json["router"]["external_gateway_info"].is_null());
  EXPECT_TRUE(list("ports", "device_id=" + rid).empty());
  EXPECT_EQ(remove("routers", rid).status, 204);
  EXPECT_TRUE(show("routers", rid).is_null());
  EXPECT_EQ(remove("networks", net["id"]).status, 204);
}

TEST_F(NeutronPeer, SandboxStopLeavesNoProcess) {
  const std::string pid = neutronSandbox->fact("PID");
  ASSERT_FALSE(pid.empty());
  // The API process and the workers it forked share its process group.
  auto members = [&] {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator("/proc")) {
      std::string stat = readAll(e.path() / "stat");
      size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 2));
      std::string state, ppid, pgrp;
      rest >> state >> ppid >> pgrp;
      if (pgrp == pid && state != "Z") out.push_back(e.path().filename().string());
    }
    return out;
  };
  EXPECT_GE(members().size(), 1u);
  ASSERT_TRUE(neutronSandbox->stop(dir));
  EXPECT_EQ(members(), std::vector<std::string>{});
  EXPECT_NE(neutron.get("/networks").status, 200);
}

// ---- Keystone ----

class KeystonePeer : public NeutronKeystoneTest {};

TEST_F(KeystonePeer, TokensForPasswordAndApplicationCredential) {
  KeystoneToken pw = token(keystoneSandbox->fact("CLOUD_PASSWORD"));
  ASSERT_EQ(pw.reply.status, 201) << pw.reply;
  EXPECT_FALSE(pw.token.empty());
  const Json& t = pw.reply.json["token"];
  EXPECT_EQ(t["project"]["id"], keystoneSandbox->fact("PROJECT_ID"));
  EXPECT_EQ(t["user"]["id"], keystoneSandbox->fact("USER_ID"));
  EXPECT_EQ(t["methods"], Json::array({"password"}));
  // The catalog names this neutron-server as the "network" service.
  std::string networkUrl;
  for (const auto& svc : t["catalog"])
    if (svc["type"] == "network")
      for (const auto& ep : svc["endpoints"])
        if (ep["interface"] == "public") networkUrl = ep["url"];
  EXPECT_EQ(networkUrl, neutronSandbox->fact("URL"));

  KeystoneToken ac = token(keystoneSandbox->fact("CLOUD_APPCRED"));
  ASSERT_EQ(ac.reply.status, 201) << ac.reply;
  const Json& at = ac.reply.json["token"];
  EXPECT_EQ(at["methods"], Json::array({"application_credential"}));
  EXPECT_EQ(at["project"]["id"], keystoneSandbox->fact("PROJECT_ID"));  // an app credential is project-scoped
  EXPECT_EQ(at["application_credential"]["id"], keystoneSandbox->fact("APPCRED_ID"));

  // A wrong secret is 401, and the reply does not echo it.
  HttpReply bad = keystone.post("/auth/tokens",
                                {{"auth", {{"identity", {{"methods", {"application_credential"}},
                                                         {"application_credential",
                                                          {{"id", keystoneSandbox->fact("APPCRED_ID")},
                                                           {"secret", "not-the-secret"}}}}}}}});
  EXPECT_EQ(bad.status, 401) << bad;
  EXPECT_EQ(bad.body.find("not-the-secret"), std::string::npos);
}

TEST_F(KeystonePeer, NeutronTakesKeystoneTokens) {
  // No token, a bogus token: 401 from keystonemiddleware.
  JsonHttp anonymous(neutronSandbox->fact("URL") + "/v2.0");
  EXPECT_EQ(anonymous.get("/networks").status, 401);
  anonymous.setHeader("X-Auth-Token", "bogus");
  EXPECT_EQ(anonymous.get("/networks").status, 401);

  // With the application credential's token: the project comes from the token, no tenant_id in the body.
  KeystoneToken ac = token(keystoneSandbox->fact("CLOUD_APPCRED"));
  ASSERT_FALSE(ac.token.empty()) << ac.reply;
  JsonHttp asApp(neutronSandbox->fact("URL") + "/v2.0");
  asApp.setHeader("X-Auth-Token", ac.token);
  HttpReply r = asApp.post("/networks", {{"network", {{"name", "from-appcred"}}}});
  ASSERT_EQ(r.status, 201) << r;
  EXPECT_EQ(r.json["network"]["project_id"], keystoneSandbox->fact("PROJECT_ID"));
  // The user's admin role reaches neutron: a VLAN provider network is allowed.
  r = asApp.post("/networks", {{"network", {{"name", "vlan"},
                                            {"provider:network_type", "vlan"},
                                            {"provider:physical_network", neutronSandbox->fact("PHYSNET")},
                                            {"provider:segmentation_id", 33}}}});
  EXPECT_EQ(r.status, 201) << r;
  // The password user's token (the fixture's neutron client) sees both networks of the project.
  EXPECT_EQ(list("networks", "project_id=" + project).size(), 2u);
}
