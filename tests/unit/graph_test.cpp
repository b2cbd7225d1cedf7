// buildGraph(): what `vnetplan graph` draws, independent of the DOT/Mermaid spelling (which
// tests/integration/cli_graph_test.cpp checks with the real renderers).
#include <gtest/gtest.h>

#include <set>

#include "reconciler/graph.h"

namespace vnetplan {
namespace {

Resource res(const std::string& target, Kind kind, const std::string& name, Json spec) {
  Resource r;
  r.addr = Address{target, kind, name};
  r.attrs = Attrs::fromJson(spec);
  return r;
}

const GraphNode* nodeLabelled(const Graph& g, const std::string& firstLine) {
  for (const auto& n : g.nodes)
    if (!n.label.empty() && n.label[0] == firstLine) return &n;
  return nullptr;
}

TEST(Graph, IdsAreUniqueEvenWhenNamesSanitizeAlike) {
  DesiredState d;
  d.targets.push_back(Target{"h", "linux", Attrs::fromJson(Json{{"netns", "n"}}), {}, {}});
  d.resources.push_back(res("h", Kind::Switch, "br", Json{{"mtu", 9000}}));
  for (const char* name : {"vm-a.1", "vm-a_1", "vm-a-1", "vm-a_1_2"})
    d.resources.push_back(res("h", Kind::Port, name, Json{{"switch", "br"}, {"type", "tap"}}));
  Graph g = buildGraph(d);
  std::set<std::string> ids;
  for (const auto& n : g.nodes) EXPECT_TRUE(ids.insert(n.id).second) << n.id;
  for (const auto& c : g.clusters) EXPECT_TRUE(ids.insert(c.id).second) << c.id;
  for (const auto& id : ids)
    EXPECT_EQ(id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"), std::string::npos);
  EXPECT_EQ(g.nodes.size(), 5u);
}

TEST(Graph, NetworksShowTheirModeAddressesAndWhereTrafficLeaves) {
  DesiredState d;
  d.targets.push_back(Target{"h", "linux", Attrs::fromJson(Json{{"netns", "n"}}), {}, {}});
  d.resources.push_back(res("h", Kind::Network, "default",
                            Json{{"mode", "nat"},
                                 {"bridge", "virbr0"},
                                 {"ipv4", {{"address", "192.168.122.1/24"},
                                           {"dhcp", {{"start", "192.168.122.2"}, {"end", "192.168.122.254"}}}}},
                                 {"forwardDev", "eth0"}}));
  d.resources.push_back(res("h", Kind::Port, "vm9", Json{{"network", "default"}, {"type", "tap"}}));
  Graph g = buildGraph(d);
  const GraphNode* net = nodeLabelled(g, "Network default");
  ASSERT_NE(net, nullptr);
  EXPECT_EQ(net->label, (std::vector<std::string>{"Network default", "mode nat", "192.168.122.1/24",
                                                 "DHCP 192.168.122.2 - 192.168.122.254", "bridge virbr0"}));
  const GraphNode* nic = nodeLabelled(g, "NIC eth0");
  const GraphNode* vm = nodeLabelled(g, "Port vm9");
  ASSERT_NE(nic, nullptr);
  ASSERT_NE(vm, nullptr);
  bool forward = false, attached = false;
  for (const auto& e : g.edges) {
    forward |= e.from == net->id && e.to == nic->id && e.label == "forward";
    attached |= e.from == vm->id && e.to == net->id && e.label == "attached";
  }
  EXPECT_TRUE(forward);
  EXPECT_TRUE(attached);
}

TEST(Graph, AVethPairBetweenTwoDeclaredPortsIsOneEdge) {
  DesiredState d;
  d.targets.push_back(Target{"a", "linux", Attrs::fromJson(Json{{"netns", "na"}}), {}, {}});
  d.targets.push_back(Target{"b", "linux", Attrs::fromJson(Json{{"netns", "nb"}}), {}, {}});
  d.resources.push_back(res("a", Kind::Port, "x", Json{{"type", "veth"}, {"peer", "y"}, {"peerNetns", "nb"}}));
  d.resources.push_back(res("b", Kind::Port, "y", Json{{"type", "veth"}, {"peer", "x"}, {"peerNetns", "na"}}));
  Graph g = buildGraph(d);
  EXPECT_EQ(g.nodes.size(), 2u);  // no extra "veth end" nodes: both ends are declared
  ASSERT_EQ(g.edges.size(), 1u);
  EXPECT_EQ(g.edges[0].style, GraphEdge::Style::Pair);
}

}  // namespace
}  // namespace vnetplan
