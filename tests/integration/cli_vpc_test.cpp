// End-to-end: the vnetplan binary against a real neutron-server (Debian's, noauth, sqlite; one per test), per kind:
// create, an empty second plan, update in place, replace, prune, drift after a change made directly through the
// API, rollback after an injected failure to the exact pre-image, a concurrent change refused by its revision;
// objects without vnetplan's tags are never touched; `show` output applies as an empty plan; the example applies.
// Every result is read back independently from Neutron with the test's own client (vpc_harness.h).
#include <sys/wait.h>

#include "tests/integration/vpc_harness.h"

using namespace vnptest;

namespace {

std::vector<std::string> sortedTags(const Json& o) {
  auto t = o.value("tags", Json::array()).get<std::vector<std::string>>();
  std::sort(t.begin(), t.end());
  return t;
}

}  // namespace

class CliVpc : public VpcCliTest {};

TEST_F(CliVpc, VpcCreateNoopUpdatePruneDriftRollbackAndConcurrency) {
  ASSERT_FALSE(externalNetwork().is_null());
  const std::string vpc = doc("Vpc", "shop", "internetGateway: {externalNetwork: public}, natGateway: true");
  auto f = manifest(target() + vpc);
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json router = routerOf("shop");
  ASSERT_TRUE(router.is_object());
  EXPECT_EQ(router["name"], "shop");
  EXPECT_EQ(sortedTags(router), (std::vector<std::string>{"vnetplan:address=cloud/Vpc/shop", "vnetplan:owner=cloud"}));
  EXPECT_EQ(router["external_gateway_info"]["enable_snat"], true);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << "second plan is empty";

  // Update in place: SNAT off, then the gateway gone; the same router all along.
  auto g = manifest(target() + doc("Vpc", "shop", "internetGateway: {externalNetwork: public}"), "nonat.yaml");
  auto plan = vnp("plan --detailed-exitcode -f " + g);
  EXPECT_EQ(plan.exitCode, 2);
  EXPECT_NE(plan.out.find("natGateway"), std::string::npos) << plan.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_EQ(routerOf("shop")["external_gateway_info"]["enable_snat"], false);
  EXPECT_EQ(routerOf("shop")["id"], router["id"]);
  auto h = manifest(target() + doc("Vpc", "shop", ""), "nogw.yaml");
  ASSERT_EQ(vnp("apply --auto-approve -f " + h).exitCode, 0);
  EXPECT_TRUE(routerOf("shop")["external_gateway_info"].is_null());
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + h).exitCode, 0);

  // Drift: the gateway set again directly through the API.
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  HttpReply u = update("routers", router["id"], {{"external_gateway_info",
                                                  {{"network_id", routerOf("shop")["external_gateway_info"]["network_id"]},
                                                   {"enable_snat", false}}}});
  ASSERT_EQ(u.status, 200) << u;
  auto d = vnp("drift -f " + f);
  EXPECT_EQ(d.exitCode, 2) << d.out << d.err;
  EXPECT_NE(d.out.find("natGateway"), std::string::npos) << d.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + f).exitCode, 0);
  EXPECT_EQ(routerOf("shop")["external_gateway_info"]["enable_snat"], true);

  // Rollback after an injected failure: the second step fails, the first is undone.
  const std::string before = cloudSnapshot();
  auto two = manifest(target() + doc("Vpc", "shop", "internetGateway: {externalNetwork: public}") + doc("Vpc", "lab", ""),
                      "two.yaml");
  r = vnp("apply --auto-approve -f " + two, "VNETPLAN_FAIL_AT_STEP=2 VNETPLAN_VPC_PARALLELISM=1");
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("injected failure"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Rolled back"), std::string::npos) << r.err;
  EXPECT_EQ(cloudSnapshot(), before);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);

  // A concurrent change: the apply observes, then waits; meanwhile someone renames the router's description.
  // The router's revision moved, so the guarded update is refused (412) and nothing is overwritten.
  pid_t pid = fork();
  if (pid == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    HttpReply x = update("routers", router["id"].get<std::string>(), {{"description", "changed by hand"}});
    _exit(x.status == 200 ? 0 : 1);
  }
  r = vnp("apply --auto-approve -f " + g, "VNETPLAN_SLOW_STEP_MS=3000");
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("stale"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("changed by someone else"), std::string::npos) << r.err;
  Json now = routerOf("shop");
  EXPECT_EQ(now["description"], "changed by hand") << "the other writer's change is kept";
  EXPECT_EQ(now["external_gateway_info"]["enable_snat"], true) << "the stale update was not made";

  // Prune: what leaves the manifests is deleted.
  ASSERT_EQ(vnp("apply --auto-approve -f " + manifest(target(), "empty.yaml")).exitCode, 0);
  EXPECT_TRUE(tagged("routers", "cloud/Vpc/shop").empty());
}

TEST_F(CliVpc, SubnetCreateNoopUpdateReplacePruneDriftRollback) {
  const std::string vpc = doc("Vpc", "shop", "");
  auto subnet = [&](const std::string& spec) { return target() + vpc + doc("Subnet", "web", "vpc: shop, " + spec); };
  auto f = manifest(subnet("cidr: 10.1.0.0/24, vlan: 101, public: true"));
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json net = networkOf("web"), sub = subnetOf("web"), router = routerOf("shop");
  ASSERT_TRUE(net.is_object() && sub.is_object() && router.is_object());
  EXPECT_EQ(net["provider:network_type"], "vlan");
  EXPECT_EQ(net["provider:segmentation_id"], 101);
  EXPECT_EQ(net["provider:physical_network"], "physnet1");
  EXPECT_EQ(sub["cidr"], "10.1.0.0/24");
  EXPECT_EQ(sub["gateway_ip"], "10.1.0.1");
  EXPECT_EQ(sub["enable_dhcp"], true);
  EXPECT_TRUE(attached(router, sub));
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << "second plan is empty";

  // Update in place: DHCP off, another gateway, and no longer public (the interface goes).
  auto g = manifest(subnet("cidr: 10.1.0.0/24, vlan: 101, dhcp: false, gateway: 10.1.0.254"), "update.yaml");
  r = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json sub2 = subnetOf("web");
  EXPECT_EQ(sub2["id"], sub["id"]);
  EXPECT_EQ(sub2["enable_dhcp"], false);
  EXPECT_EQ(sub2["gateway_ip"], "10.1.0.254");
  EXPECT_FALSE(attached(routerOf("shop"), sub2));
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);
  // Public again with the new gateway: the interface takes it.
  auto gp = manifest(subnet("cidr: 10.1.0.0/24, vlan: 101, dhcp: false, gateway: 10.1.0.254, public: true"), "pub.yaml");
  ASSERT_EQ(vnp("apply --auto-approve -f " + gp).exitCode, 0);
  bool onGateway = false;
  for (const auto& p : interfaces(routerOf("shop")))
    for (const auto& ip : p["fixed_ips"]) onGateway |= ip["ip_address"] == "10.1.0.254";
  EXPECT_TRUE(onGateway);

  // Replace: another cidr and VLAN cannot change in place.
  auto h = manifest(subnet("cidr: 10.2.0.0/24, vlan: 102, public: true"), "replace.yaml");
  auto plan = vnp("plan -f " + h);
  EXPECT_NE(plan.out.find("-/+"), std::string::npos) << plan.out;
  r = vnp("apply --auto-approve -f " + h);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(networkOf("web")["id"], net["id"]);
  EXPECT_EQ(subnetOf("web")["cidr"], "10.2.0.0/24");
  EXPECT_EQ(networkOf("web")["provider:segmentation_id"], 102);
  EXPECT_TRUE(attached(routerOf("shop"), subnetOf("web")));
  EXPECT_TRUE(show("networks", net["id"]).is_null());

  // Drift: DHCP turned off through the API is reported and put back.
  ASSERT_EQ(update("subnets", subnetOf("web")["id"], {{"enable_dhcp", false}}).status, 200);
  auto d = vnp("drift -f " + h);
  EXPECT_EQ(d.exitCode, 2) << d.out << d.err;
  EXPECT_NE(d.out.find("dhcp"), std::string::npos) << d.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + h).exitCode, 0);
  EXPECT_EQ(subnetOf("web")["enable_dhcp"], true);

  // Rollback at every step of a change that adds a subnet and replaces another: the exact pre-image each time.
  const std::string before = cloudSnapshot();
  auto k = manifest(target() + vpc + doc("Subnet", "web", "vpc: shop, cidr: 10.3.0.0/24, public: true") +
                        doc("Subnet", "db", "vpc: shop, cidr: 10.4.0.0/24, vlan: 104"),
                    "more.yaml");
  for (int step = 1; step <= 3; ++step) {
    r = vnp("apply --auto-approve -f " + k, "VNETPLAN_FAIL_AT_STEP=" + std::to_string(step));
    EXPECT_EQ(r.exitCode, 1) << "step " << step << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("Rolled back"), std::string::npos) << r.err;
    EXPECT_EQ(cloudSnapshot(), before) << "step " << step;
  }
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + h).exitCode, 0);

  // A concurrent change: the subnet's description set by hand after the apply observed. The subnet's revision
  // moved, so the guarded update (DHCP off) is refused as stale and the other writer's change is kept. (After the
  // rollbacks: a replace rolled back re-creates the subnet with vnetplan's description, not one set by hand.)
  {
    auto off = manifest(subnet("cidr: 10.2.0.0/24, vlan: 102, public: true, dhcp: false"), "dhcpoff.yaml");
    const std::string sid = subnetOf("web")["id"].get<std::string>();
    pid_t pid = fork();
    if (pid == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      HttpReply x = update("subnets", sid, {{"description", "changed by hand"}});
      _exit(x.status == 200 ? 0 : 1);
    }
    r = vnp("apply --auto-approve -f " + off, "VNETPLAN_SLOW_STEP_MS=3000");
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("stale"), std::string::npos) << r.err;
    Json now = subnetOf("web");
    EXPECT_EQ(now["description"], "changed by hand") << "the other writer's change is kept";
    EXPECT_EQ(now["enable_dhcp"], true) << "the stale update was not made";
    EXPECT_EQ(vnp("plan --detailed-exitcode -f " + h).exitCode, 0);
  }

  // Prune: the subnet goes (interface, subnet, network), the Vpc stays.
  r = vnp("apply --auto-approve -f " + manifest(target() + vpc, "prune.yaml"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_TRUE(tagged("networks", "cloud/Subnet/web").empty());
  EXPECT_TRUE(interfaces(routerOf("shop")).empty());
}

TEST_F(CliVpc, SecurityGroupRulesCreateUpdateDriftPrune) {
  const std::string vpc = doc("Vpc", "shop", "");
  const std::string web = doc("SecurityGroup", "web",
                              "vpc: shop, rules: [{direction: ingress, protocol: tcp, ports: 443}, "
                              "{direction: ingress, protocol: 6, ports: \"8000-8100\", cidr: 10.0.0.0/8, description: alt}, "
                              "{direction: egress, cidr: 0.0.0.0/0}]");
  const std::string db = doc("SecurityGroup", "db",
                             "vpc: shop, rules: [{direction: ingress, protocol: tcp, ports: 5432, group: web}, "
                             "{direction: ingress, group: db}]");
  auto f = manifest(target() + vpc + web + db);
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json gw = groupOf("web"), gd = groupOf("db");
  ASSERT_TRUE(gw.is_object() && gd.is_object());
  // Exactly the declared rules: of the two default egress rules, the IPv6 one is gone (0.0.0.0/0 is Neutron's
  // IPv4 rule without a remote prefix, kept); a rule without cidr is IPv4 + IPv6.
  auto rules = [&](const Json& g) {
    std::vector<std::string> out;
    const Json live = show("security-groups", g["id"]);
    for (const auto& x : live["security_group_rules"])
      out.push_back(x["direction"].get<std::string>() + " " + x["ethertype"].get<std::string>() + " " +
                    (x["protocol"].is_null() ? "any" : x["protocol"].get<std::string>()) + " " +
                    (x["port_range_min"].is_null() ? "-" : std::to_string(x["port_range_min"].get<int>())) + " " +
                    (x["remote_ip_prefix"].is_null() ? "-" : x["remote_ip_prefix"].get<std::string>()) + " " +
                    (x["remote_group_id"].is_null() ? "-" : x["remote_group_id"] == gw["id"] ? "web" : "db"));
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(rules(gw), (std::vector<std::string>{"egress IPv4 any - - -", "ingress IPv4 tcp 443 - -",
                                                 "ingress IPv4 tcp 8000 10.0.0.0/8 -", "ingress IPv6 tcp 443 - -"}));
  EXPECT_EQ(rules(gd), (std::vector<std::string>{"ingress IPv4 any - - db", "ingress IPv4 tcp 5432 - web",
                                                 "ingress IPv6 any - - db", "ingress IPv6 tcp 5432 - web"}));
  EXPECT_EQ(gw["tags"].size(), 3u);  // owner, address, vpc
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << "second plan is empty";

  // Update: one rule changes (delete + create), the others keep their ids.
  std::map<std::string, std::string> idsBefore;
  const Json webBefore = show("security-groups", gw["id"]);
  for (const auto& x : webBefore["security_group_rules"])
    idsBefore[x["id"]] = x.value("port_range_min", Json(0)).dump();
  const std::string web2 = doc("SecurityGroup", "web",
                               "vpc: shop, rules: [{direction: ingress, protocol: tcp, ports: 8443}, "
                               "{direction: ingress, protocol: 6, ports: \"8000-8100\", cidr: 10.0.0.0/8, description: alt}, "
                               "{direction: egress, cidr: 0.0.0.0/0}]");
  auto g = manifest(target() + vpc + web2 + db, "update.yaml");
  r = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(groupOf("web")["id"], gw["id"]);
  int kept = 0;
  const Json webAfter = show("security-groups", gw["id"]);
  for (const auto& x : webAfter["security_group_rules"]) kept += idsBefore.count(x["id"]);
  EXPECT_EQ(kept, 2) << "the unchanged rules are the same rules";
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);

  // Drift: a rule added by hand is reported and removed; a rule deleted by hand comes back.
  Json extra = create("security-group-rules", {{"security_group_id", gw["id"]}, {"direction", "ingress"},
                                               {"ethertype", "IPv4"}, {"protocol", "udp"}, {"port_range_min", 53},
                                               {"port_range_max", 53}});
  ASSERT_FALSE(extra.is_null());
  const Json dbLive = show("security-groups", gd["id"]);
  for (const auto& x : dbLive["security_group_rules"]) {
    if (x["protocol"] == "tcp") {
      ASSERT_EQ(remove("security-group-rules", x["id"]).status, 204);
    }
  }
  auto d = vnp("drift -f " + g);
  EXPECT_EQ(d.exitCode, 2) << d.out << d.err;
  EXPECT_NE(d.out.find("cloud/SecurityGroup/web"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("cloud/SecurityGroup/db"), std::string::npos) << d.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_TRUE(show("security-group-rules", extra["id"]).is_null());
  EXPECT_EQ(rules(groupOf("db")).size(), 4u);
  EXPECT_EQ(vnp("drift -f " + g).exitCode, 0);

  // Rollback after an injected failure at either of two steps: exact pre-image.
  const std::string before = cloudSnapshot();
  const std::string db2 = doc("SecurityGroup", "db", "vpc: shop, rules: [{direction: ingress, protocol: udp, ports: 53, group: web}]");
  auto both = manifest(target() + vpc + web + db2, "both.yaml");
  for (int step = 1; step <= 2; ++step) {
    r = vnp("apply --auto-approve -f " + both, "VNETPLAN_FAIL_AT_STEP=" + std::to_string(step) + " VNETPLAN_VPC_PARALLELISM=1");
    EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
    EXPECT_EQ(cloudSnapshot(), before) << "step " << step;
  }

  // Concurrent change: a rule added by hand after the plan's observe moves the group's revision.
  pid_t pid = fork();
  if (pid == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    Json x = create("security-group-rules", {{"security_group_id", gw["id"]}, {"direction", "ingress"},
                                             {"ethertype", "IPv6"}, {"protocol", "udp"}, {"port_range_min", 123},
                                             {"port_range_max", 123}});
    _exit(x.is_null() ? 1 : 0);
  }
  r = vnp("apply --auto-approve -f " + f, "VNETPLAN_SLOW_STEP_MS=3000");
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("stale"), std::string::npos) << r.err;

  // Prune both groups (db names web in a rule: either order works, Neutron drops the rule with web).
  r = vnp("apply --auto-approve -f " + manifest(target() + vpc, "prune.yaml"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_TRUE(tagged("security-groups", "cloud/SecurityGroup/web").empty());
  EXPECT_TRUE(tagged("security-groups", "cloud/SecurityGroup/db").empty());
}

TEST_F(CliVpc, RouteCreateReplaceDriftPruneAndHandMadeRoutesStay) {
  const std::string base = target() + doc("Vpc", "shop", "") +
                           doc("Subnet", "web", "vpc: shop, cidr: 10.1.0.0/24, public: true");
  auto f = manifest(base + doc("Route", "onprem", "vpc: shop, destination: 172.16.0.0/12, nexthop: 10.1.0.254"));
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json router = routerOf("shop");
  EXPECT_EQ(router["routes"], Json::array({{{"destination", "172.16.0.0/12"}, {"nexthop", "10.1.0.254"}}}));
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);

  // A route added by hand to vnetplan's router is not a Route: never removed.
  const std::string rid = router["id"];
  ASSERT_EQ(neutron.put("/routers/" + rid + "/add_extraroutes",
                        {{"router", {{"routes", {{{"destination", "192.168.50.0/24"}, {"nexthop", "10.1.0.9"}}}}}}})
                .status,
            200);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);

  // Replace: a new nexthop is remove + add.
  auto g = manifest(base + doc("Route", "onprem", "vpc: shop, destination: 172.16.0.0/12, nexthop: 10.1.0.253"), "g.yaml");
  auto plan = vnp("plan -f " + g);
  EXPECT_NE(plan.out.find("-/+"), std::string::npos) << plan.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + g).exitCode, 0);
  auto routes = show("routers", rid)["routes"].get<std::vector<Json>>();
  std::sort(routes.begin(), routes.end());
  EXPECT_EQ(Json(routes), Json::array({{{"destination", "172.16.0.0/12"}, {"nexthop", "10.1.0.253"}},
                                       {{"destination", "192.168.50.0/24"}, {"nexthop", "10.1.0.9"}}}));

  // Drift: the route removed through the API is missing, and comes back.
  ASSERT_EQ(neutron.put("/routers/" + rid + "/remove_extraroutes",
                        {{"router", {{"routes", {{{"destination", "172.16.0.0/12"}, {"nexthop", "10.1.0.253"}}}}}}})
                .status,
            200);
  auto d = vnp("drift -f " + g);
  EXPECT_EQ(d.exitCode, 2) << d.out;
  EXPECT_NE(d.out.find("cloud/Route/onprem"), std::string::npos) << d.out;
  ASSERT_EQ(vnp("apply --auto-approve -f " + g).exitCode, 0);
  EXPECT_EQ(show("routers", rid)["routes"].size(), 2u);

  // Rollback after an injected failure: the exact pre-image.
  const std::string before = cloudSnapshot();
  auto k = manifest(base + doc("Route", "onprem", "vpc: shop, destination: 172.16.0.0/12, nexthop: 10.1.0.250") +
                        doc("Route", "lab", "vpc: shop, destination: 10.99.0.0/16, nexthop: 10.1.0.250"),
                    "k.yaml");
  for (int step = 1; step <= 3; ++step) {
    r = vnp("apply --auto-approve -f " + k, "VNETPLAN_FAIL_AT_STEP=" + std::to_string(step));
    EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
    EXPECT_EQ(cloudSnapshot(), before) << "step " << step;
  }

  // Prune: the Route goes, the hand-made route stays; then everything goes, in Neutron's order.
  ASSERT_EQ(vnp("apply --auto-approve -f " + manifest(base, "prune.yaml")).exitCode, 0);
  EXPECT_EQ(show("routers", rid)["routes"], Json::array({{{"destination", "192.168.50.0/24"}, {"nexthop", "10.1.0.9"}}}));
  r = vnp("apply --auto-approve -f " + manifest(target(), "empty.yaml"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_TRUE(show("routers", rid).is_null());
}

TEST_F(CliVpc, PeeringThroughATransitNetwork) {
  const std::string two = target() + doc("Vpc", "b", "") +
                          doc("Subnet", "a1", "vpc: a, cidr: 10.1.0.0/24, public: true") +
                          doc("Subnet", "b1", "vpc: b, cidr: 10.2.0.0/24, public: true");
  const std::string peered = two + doc("Vpc", "a", "peering: [{vpc: b, cidr: 100.64.0.0/29}]");
  auto f = manifest(peered);
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json transit = one("subnets", "cloud/Vpc/a");
  ASSERT_TRUE(transit.is_object());
  EXPECT_EQ(transit["cidr"], "100.64.0.0/29");
  auto portOn = [&](const Json& router) {
    for (const auto& p : interfaces(router))
      for (const auto& ip : p["fixed_ips"])
        if (ip["subnet_id"] == transit["id"]) return Json{{"port", p["id"]}, {"ip", ip["ip_address"]}};
    return Json(nullptr);
  };
  auto addressOn = [&](const Json& router) {
    Json p = portOn(router);
    return p.is_null() ? std::string() : p["ip"].get<std::string>();
  };
  EXPECT_EQ(addressOn(routerOf("a")), "100.64.0.1");
  EXPECT_EQ(addressOn(routerOf("b")), "100.64.0.2");
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);

  // Drift: the peer's interface removed by hand leaves the peering incomplete; apply rebuilds it.
  Json bPort = portOn(routerOf("b"));
  ASSERT_FALSE(bPort.is_null());
  ASSERT_EQ(neutron.put("/routers/" + routerOf("b")["id"].get<std::string>() + "/remove_router_interface",
                        {{"port_id", bPort["port"]}})
                .status,
            200);
  auto d = vnp("drift -f " + f);
  EXPECT_EQ(d.exitCode, 2) << d.out << d.err;
  EXPECT_NE(d.out.find("peering"), std::string::npos) << d.out;
  r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  transit = one("subnets", "cloud/Vpc/a");
  ASSERT_TRUE(transit.is_object());
  EXPECT_EQ(addressOn(routerOf("b")), "100.64.0.2");

  // Routes across the peering, each way.
  const std::string routed = peered + doc("Route", "a-to-b", "vpc: a, destination: 10.2.0.0/24, nexthop: 100.64.0.2") +
                             doc("Route", "b-to-a", "vpc: b, destination: 10.1.0.0/24, nexthop: 100.64.0.1");
  auto g = manifest(routed, "routed.yaml");
  r = vnp("apply --auto-approve -f " + g);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(routerOf("b")["routes"], Json::array({{{"destination", "10.1.0.0/24"}, {"nexthop", "100.64.0.1"}}}));
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + g).exitCode, 0);

  // Without the peering (and its routes): routes first, then the transit; the Vpcs stay.
  const std::string apart = two + doc("Vpc", "a", "");
  r = vnp("apply --auto-approve -f " + manifest(apart, "apart.yaml"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_TRUE(tagged("networks", "cloud/Vpc/a").empty());
  EXPECT_EQ(interfaces(routerOf("b")).size(), 1u);
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + manifest(apart, "apart.yaml")).exitCode, 0);
}

TEST_F(CliVpc, UntaggedObjectsOfTheSameNameAreNeverTouched) {
  // Hand-made objects with the names the manifests use.
  Json router = create("routers", {{"name", "shop"}});
  Json net = create("networks", {{"name", "web"}});
  Json sub = create("subnets", {{"network_id", net["id"]}, {"cidr", "10.1.0.0/24"}, {"ip_version", 4}});
  Json group = create("security-groups", {{"name", "web"}});
  ASSERT_FALSE(router.is_null() || sub.is_null() || group.is_null());
  auto rev = [&](const std::string& c, const Json& o) { return show(c, o["id"])["revision_number"]; };
  const Json r0 = rev("routers", router), n0 = rev("networks", net), s0 = rev("subnets", sub), g0 = rev("security-groups", group);

  auto f = manifest(target() + doc("Vpc", "shop", "") + doc("Subnet", "web", "vpc: shop, cidr: 10.1.0.0/24, public: true") +
                    doc("SecurityGroup", "web", "vpc: shop, rules: [{direction: ingress, protocol: tcp, ports: 80}]") +
                    doc("Route", "r", "vpc: shop, destination: 10.9.0.0/16, nexthop: 10.1.0.9"));
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(routerOf("shop")["id"], router["id"]) << "a new router, not the hand-made one";
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0);
  ASSERT_EQ(vnp("apply --auto-approve -f " + manifest(target(), "empty.yaml")).exitCode, 0);
  // The hand-made ones: there, unchanged (same revision), and no vnetplan tag added.
  EXPECT_EQ(rev("routers", router), r0);
  EXPECT_EQ(rev("networks", net), n0);
  EXPECT_EQ(rev("subnets", sub), s0);
  EXPECT_EQ(rev("security-groups", group), g0);
  EXPECT_TRUE(show("routers", router["id"])["tags"].empty());
  EXPECT_EQ(list("routers", "project_id=" + project).size(), 1u);
}

TEST_F(CliVpc, ShowImportsTaggedObjectsAndRoundTrips) {
  ASSERT_FALSE(externalNetwork().is_null());
  auto f = manifest(target() + doc("Vpc", "shop", "internetGateway: {externalNetwork: public}, natGateway: true") +
                    doc("Vpc", "lab", "peering: [{vpc: shop, cidr: 100.64.1.0/30}]") +
                    doc("Subnet", "web", "vpc: shop, cidr: 10.1.0.0/24, public: true, vlan: 55") +
                    doc("Subnet", "db", "vpc: shop, cidr: 10.2.0.0/24, dhcp: false, gateway: 10.2.0.100") +
                    doc("SecurityGroup", "web",
                        "vpc: shop, rules: [{direction: ingress, protocol: tcp, ports: 443}, {direction: ingress, "
                        "protocol: 47, group: web, description: gre}, {direction: egress, cidr: \"::/0\"}]") +
                    doc("Route", "r", "vpc: shop, destination: 10.9.0.0/16, nexthop: 10.1.0.9"));
  auto r = vnp("apply --auto-approve -f " + f);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  auto t = manifest(target(), "target.yaml");
  auto s = vnp("show --target cloud -f " + t);
  ASSERT_EQ(s.exitCode, 0) << s.err;
  EXPECT_NE(s.out.find("kind: SecurityGroup"), std::string::npos) << s.out;
  // The import, applied from a fresh state directory, is exactly what is there: an empty plan.
  auto imported = manifest(target() + s.out, "imported.yaml");
  auto p = vnp("plan --detailed-exitcode -f " + imported);
  EXPECT_EQ(p.exitCode, 0) << s.out << "\n" << p.out << p.err;
}

TEST_F(CliVpc, PlanTimeErrorsNameTheProviderFieldAndReason) {
  struct Case {
    std::string resources, needle;
  };
  const std::string vpc = doc("Vpc", "shop", "");
  const std::vector<Case> cases{
      {doc("Subnet", "s", "vpc: shop, cidr: 10.0.0.0/24, vlan: 7"), "physicalNetwork"},
      {doc("Subnet", "s", "vpc: shop, cidr: 10.0.0.5/24"), "host bits"},
      {doc("Subnet", "s", "vpc: shop, cidr: 10.0.0.0/24, gateway: 10.9.9.9"), "not inside cidr"},
      {doc("Route", "r", "vpc: shop, destination: 10.8.0.0/16, nexthop: 10.0.0.9"), "not on a subnet"},
      {doc("Subnet", "s", "vpc: shop, cidr: 10.0.0.0/24, public: true") + doc("Subnet", "t", "vpc: shop, cidr: 10.0.0.0/25, public: true"),
       "overlaps"},
      {doc("SecurityGroup", "g", "vpc: shop, rules: [{direction: ingress, protocol: tcp, ports: 80}, {direction: ingress, protocol: 6, ports: 80}]"),
       "same traffic"},
      {doc("Vpc", "b", "peering: [{vpc: shop, cidr: 100.64.0.0/31}]"), "too small"},
      {doc("Subnet", "s", "vpc: shop, cidr: 10.0.0.0/24, vlan: 7") + doc("Subnet", "t", "vpc: shop, cidr: 10.0.1.0/24, vlan: 7"),
       "also the VLAN of"},
  };
  for (const auto& c : cases) {
    std::string m = target().substr(0, target().find(", physicalNetwork")) + "}\n" + vpc + c.resources;
    if (c.needle != "physicalNetwork") m = target() + vpc + c.resources;
    auto r = vnp("plan -f " + manifest(m, "bad.yaml"));
    EXPECT_EQ(r.exitCode, 1) << c.resources << r.out;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.resources << "\n" << r.err;
    EXPECT_NE(r.err.find("vpc:"), std::string::npos) << r.err;
  }
  // Network ACLs: the schema knows them (validate, offline, accepts them), but this neutron-server has no
  // firewall extension, so plan says so, naming the provider, the field and where the cloud says it.
  auto acl = manifest(target() + doc("Vpc", "shop", "networkAcls: [{action: deny, direction: ingress, protocol: tcp, ports: 23}]"),
                      "acl.yaml");
  auto v = vnp("validate -f " + acl);
  EXPECT_EQ(v.exitCode, 0) << v.out << v.err;
  auto r = vnp("plan -f " + acl);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("vpc:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("networkAcls"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fwaas_v2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/v2.0/extensions"), std::string::npos) << r.err;
  EXPECT_TRUE(list("routers", "project_id=" + project).empty()) << "plan never changes the cloud";
}

TEST_F(CliVpc, ExamplesValidateAndApply) {
  ASSERT_FALSE(externalNetwork().is_null());
  const fs::path examples = fs::path(VNETPLAN_SOURCE_DIR) / "examples";
  int applied = 0;
  for (const auto& e : fs::recursive_directory_iterator(examples)) {
    if (e.path().extension() != ".yaml") continue;
    std::string text = readAll(e.path());
    if (text.find("provider: vpc") == std::string::npos) continue;
    // The example's Target points at this test's neutron-server.
    std::string rewritten;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.find("cloud: ") != std::string::npos && line.find("targets") == std::string::npos)
        line = "  endpoint: \"" + endpoint + "\"\n  auth: noauth\n  project: \"" + project + "\"";
      rewritten += line + "\n";
    }
    auto f = manifest(rewritten, e.path().filename().string());
    auto v = vnp("validate -f " + f);
    ASSERT_EQ(v.exitCode, 0) << e.path() << "\n" << v.out << v.err;
    auto r = vnp("apply --auto-approve -f " + f);
    ASSERT_EQ(r.exitCode, 0) << e.path() << "\n" << r.out << r.err;
    EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f).exitCode, 0) << e.path();
    ++applied;
  }
  EXPECT_GE(applied, 1);
  // The example's pieces, as Neutron has them.
  Json router = routerOf("shop");
  ASSERT_TRUE(router.is_object());
  EXPECT_EQ(router["external_gateway_info"]["enable_snat"], true);
  EXPECT_TRUE(attached(router, subnetOf("web")));
  EXPECT_TRUE(attached(router, subnetOf("app")));
  EXPECT_FALSE(attached(router, subnetOf("db")));
  EXPECT_EQ(networkOf("app")["provider:segmentation_id"], 120);
  EXPECT_EQ(router["routes"][0]["destination"], "172.16.0.0/12");
}

// HTTPS with certificate verification: a TLS front (a certificate for 127.0.0.1 signed by a CA of the test's own)
// before the real server. The cloud's CA (OS_CACERT; clouds.yaml cacert) is honoured; without it the connection is
// refused, as it is for a certificate of another name; verification cannot be turned off.
TEST_F(CliVpc, HttpsVerifiesTheCertificateAgainstTheCloudsCa) {
  const std::string sh =
      "set -e; cd " + shellQuote(dir.string()) +
      "; openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=vnetplan-test-ca"
      " 2>/dev/null; for n in good:IP:127.0.0.1 wrong:DNS:elsewhere.invalid; do name=${n%%:*}; san=${n#*:};"
      " openssl req -newkey rsa:2048 -nodes -keyout $name.key -out $name.csr -subj /CN=$name 2>/dev/null;"
      " printf 'subjectAltName=%s\\n' $san > $name.ext;"
      " openssl x509 -req -in $name.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $name.pem -days 2"
      " -extfile $name.ext 2>/dev/null; done";
  auto gen = runShell(sh, dir, 60);
  ASSERT_EQ(gen.exitCode, 0) << gen.err;
  NeutronProxy good(endpoint, (dir / "good.pem").string(), (dir / "good.key").string());
  NeutronProxy wrong(endpoint, (dir / "wrong.pem").string(), (dir / "wrong.key").string());
  const std::string vpc = doc("Vpc", "shop", "");
  const std::string ca = "OS_CACERT=" + shellQuote((dir / "ca.pem").string());

  endpoint = good.url();
  auto f = manifest(target() + vpc);
  auto r = vnp("apply --auto-approve -f " + f, ca);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_TRUE(routerOf("shop").is_object());
  EXPECT_FALSE(good.log().empty()) << "the requests went through the TLS front";
  EXPECT_EQ(vnp("plan --detailed-exitcode -f " + f, ca).exitCode, 0);

  // Without the cloud's CA the system's CAs do not know this certificate: refused, nothing sent in the clear.
  auto sent = good.log().size();
  r = vnp("plan -f " + f, "OS_CACERT= VNETPLAN_VPC_ATTEMPTS=1");
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("certificate"), std::string::npos) << r.err;
  EXPECT_EQ(good.log().size(), sent);

  // A certificate the CA signed for another name.
  endpoint = wrong.url();
  r = vnp("plan -f " + manifest(target() + vpc, "wrong.yaml"), ca + " VNETPLAN_VPC_ATTEMPTS=1");
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("certificate"), std::string::npos) << r.err;
  EXPECT_TRUE(wrong.log().empty());

  // clouds.yaml: cacert honoured; verify: false refused.
  writeFile(dir / "clouds.yaml", "clouds:\n  tls:\n    auth_type: none\n    network_endpoint_override: \"" + good.url() +
                                     "\"\n    cacert: \"" + (dir / "ca.pem").string() +
                                     "\"\n  insecure:\n    auth_type: none\n    network_endpoint_override: \"" +
                                     good.url() + "\"\n    verify: false\n");
  const std::string env = "OS_CACERT= OS_CLIENT_CONFIG_FILE=" + shellQuote((dir / "clouds.yaml").string());
  auto cloudTarget = [&](const std::string& cloud) {
    return "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: cloud}\nspec: {provider: vpc, cloud: " + cloud +
           ", project: \"" + project + "\"}\n";
  };
  r = vnp("plan --detailed-exitcode -f " + manifest(cloudTarget("tls") + vpc, "tls.yaml"), env);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  r = vnp("plan -f " + manifest(cloudTarget("insecure") + vpc, "insecure.yaml"), env);
  EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("verification"), std::string::npos) << r.err;
}

// A URL with userinfo (https://user:password@host) is refused, and the password is never shown: not by validate or
// plan, not in JSON logs, not in the state. Needs no cloud: the refusal comes before any request.
class VpcUrlCredentials : public ScratchTest {};

TEST_F(VpcUrlCredentials, RefusedAndNeverShown) {
  const std::string pw = "Sup3rSecretPw";
  auto run = [&](const std::string& args, const std::string& env = "") {
    return runShell("cd " + shellQuote(dir.string()) + " && " + env + " " + std::string(VNETPLAN_BINARY) +
                        " --state file://" + (dir / "state").string() + " " + args,
                    dir, 60);
  };
  auto expectRefusedUnshown = [&](const RunResult& r, const std::string& what) {
    EXPECT_EQ(r.exitCode, 1) << what << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("credentials"), std::string::npos) << what << "\n" << r.err;
    EXPECT_NE(r.err.find("***@"), std::string::npos) << what << " names the URL, redacted\n" << r.err;
    EXPECT_EQ(r.out.find(pw), std::string::npos) << what << "\n" << r.out;
    EXPECT_EQ(r.err.find(pw), std::string::npos) << what << "\n" << r.err;
    if (fs::exists(dir / "state"))
      for (const auto& e : fs::recursive_directory_iterator(dir / "state"))
        if (e.is_regular_file()) {
          EXPECT_EQ(readAll(e.path()).find(pw), std::string::npos) << what << ": " << e.path();
        }
  };
  const std::string vpc = "---\napiVersion: vnetplan.io/v1\nkind: Vpc\nmetadata: {name: shop}\nspec: {targets: [cloud]}\n";
  auto target = [](const std::string& spec) {
    return "apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: cloud}\nspec: {provider: vpc, " + spec + "}\n";
  };

  // The Target's endpoint: refused at plan time, with a port and without one (where the text after the last ':'
  // is the password, not a port).
  for (const std::string& ep : {"http://admin:" + pw + "@127.0.0.1:9696", "https://admin:" + pw + "@neutron.example"}) {
    writeFile(dir / "m.yaml", target("endpoint: \"" + ep + "\", auth: noauth, project: p1") + vpc);
    for (const char* cmd : {"validate -f m.yaml", "plan -f m.yaml", "--log-format json plan -f m.yaml"})
      expectRefusedUnshown(run(cmd), ep + ": " + cmd);
  }

  // clouds.yaml: a Keystone auth_url and a Neutron endpoint override with userinfo are refused on connecting.
  writeFile(dir / "clouds.yaml", "clouds:\n"
                                 "  ks:\n"
                                 "    auth: {auth_url: \"http://keystone:" + pw + "@127.0.0.1/v3\", username: u,\n"
                                 "           password: another-secret, project_name: p, user_domain_name: Default,\n"
                                 "           project_domain_name: Default}\n"
                                 "  direct:\n"
                                 "    auth_type: none\n"
                                 "    network_endpoint_override: \"http://u:" + pw + "@127.0.0.1:9/\"\n");
  const std::string env = "OS_CLIENT_CONFIG_FILE=" + shellQuote((dir / "clouds.yaml").string());
  for (const char* cloud : {"ks", "direct"}) {
    writeFile(dir / "c.yaml", target(std::string("cloud: ") + cloud + ", project: p1") + vpc);
    expectRefusedUnshown(run("plan -f c.yaml", env), std::string("cloud ") + cloud);
    expectRefusedUnshown(run("--log-format json plan -f c.yaml", env), std::string("cloud ") + cloud + ", JSON logs");
  }
}
