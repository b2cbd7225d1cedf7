// `vnetplan graph` read by the real renderers: the DOT through graphviz's `dot` (as JSON, so the test sees what dot
// understood), the Mermaid through Mermaid's own parser from npm (tests/graph/parse-mermaid.mjs, installed by
// scripts/packages/graph.sh). Both must understand the same picture of tests/graph/topology.yaml, whose names are
// chosen to break naive renderers (vm-a.1 / vm-a_1, quotes, '#', '<', '|', ';', a Mermaid keyword).
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>

#include "tests/integration/harness.h"

using namespace vnptest;

namespace {

struct Picture {
  std::multiset<std::string> nodes;                                 // labels, lines joined with '\n'
  std::multiset<std::tuple<std::string, std::string, std::string>> edges;  // from label, to label, edge label
  std::map<std::string, std::set<std::string>> clusters;            // cluster label -> node labels
};

fs::path sourceDir() { return fs::path(VNETPLAN_SOURCE_DIR); }

fs::path graphTools() {
  const char* env = std::getenv("VNETPLAN_GRAPH_TOOLS");
  return env && *env ? fs::path(env) : fs::path("/var/cache/vnetplan/graph-tools");
}

class CliGraph : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("vnp-graph-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string graph(const std::string& format) {
    RunResult r = runShell(std::string(VNETPLAN_BINARY) + " graph --format " + format + " -f " +
                               shellQuote((sourceDir() / "tests/graph/topology.yaml").string()),
                           dir);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    return r.out;
  }
  fs::path dir;
};

// graphviz keeps label escapes as written except \" ; a label's "\n" is a line break.
std::string dotText(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      out += n == 'n' ? '\n' : n;
    } else {
      out += s[i];
    }
  }
  return out;
}

Picture fromDotJson(const Json& j) {
  Picture p;
  std::map<int, std::string> labelOf;
  for (const auto& o : j.value("objects", Json::array())) {
    if (o.contains("nodes")) continue;  // a cluster; its members are listed below
    labelOf[o.at("_gvid").get<int>()] = dotText(o.value("label", ""));
    p.nodes.insert(dotText(o.value("label", "")));
  }
  for (const auto& o : j.value("objects", Json::array()))
    if (o.contains("nodes") && o.value("name", "").rfind("cluster_", 0) == 0)
      for (const auto& n : o.at("nodes")) p.clusters[dotText(o.value("label", ""))].insert(labelOf[n.get<int>()]);
  for (const auto& e : j.value("edges", Json::array()))
    p.edges.insert({labelOf[e.at("tail").get<int>()], labelOf[e.at("head").get<int>()], dotText(e.value("label", ""))});
  return p;
}

Picture fromMermaidJson(const Json& j) {
  Picture p;
  std::map<std::string, std::string> labelOf;
  for (const auto& v : j.at("vertices")) {
    labelOf[v.at("id").get<std::string>()] = v.at("text").get<std::string>();
    p.nodes.insert(v.at("text").get<std::string>());
  }
  for (const auto& s : j.at("subgraphs"))
    for (const auto& n : s.at("nodes")) p.clusters[s.at("title").get<std::string>()].insert(labelOf[n.get<std::string>()]);
  for (const auto& e : j.at("edges"))
    p.edges.insert({labelOf[e.at("start").get<std::string>()], labelOf[e.at("end").get<std::string>()],
                    e.at("text").get<std::string>()});
  return p;
}

// What the topology must look like, whichever renderer read it.
void expectTopology(const Picture& p, const std::string& who) {
  SCOPED_TRACE(who);
  EXPECT_EQ(p.nodes.size(), 17u);
  EXPECT_EQ(p.nodes.count("Port vm-a.1\ntap"), 1u);
  EXPECT_EQ(p.nodes.count("Port vm-a_1\ninternal"), 1u);
  EXPECT_EQ(p.nodes.count("Port a<b>|c;end\ntap"), 1u);
  EXPECT_EQ(p.nodes.count("Port end\ninternal"), 1u);
  EXPECT_EQ(p.nodes.count("PortGroup web\"front\"\nVLAN 10"), 1u);
  EXPECT_EQ(p.nodes.count("PortGroup trunk#1\ntrunk 20,100-199"), 1u);
  EXPECT_EQ(p.nodes.count("uplink team of br-prod\nlacp (active)"), 1u);
  EXPECT_EQ(p.nodes.count("Switch br-vm"), 2u);  // one per target, not merged
  using E = std::tuple<std::string, std::string, std::string>;
  // The two ports whose names sanitize alike are two nodes, each attached where it was declared.
  EXPECT_EQ(p.edges.count(E{"Port vm-a.1\ntap", "PortGroup web\"front\"\nVLAN 10", ""}), 1u);
  EXPECT_EQ(p.edges.count(E{"Port vm-a_1\ninternal", "Switch br-prod\nMTU 9000", ""}), 1u);
  EXPECT_EQ(p.edges.count(E{"Port vm-a_1\ninternal", "PortGroup web\"front\"\nVLAN 10", ""}), 0u);
  // Uplinks through the team; mirror sources into the mirror, the mirror into its destination.
  EXPECT_EQ(p.edges.count(E{"NIC eth1", "uplink team of br-prod\nlacp (active)", ""}), 1u);
  EXPECT_EQ(p.edges.count(E{"NIC eth2", "uplink team of br-prod\nlacp (active)", ""}), 1u);
  EXPECT_EQ(p.edges.count(E{"uplink team of br-prod\nlacp (active)", "Switch br-prod\nMTU 9000", "uplink"}), 1u);
  EXPECT_EQ(p.edges.count(E{"Port vm-a.1\ntap", "Mirror span\ndirection both", "mirrored"}), 1u);
  EXPECT_EQ(p.edges.count(E{"Port a<b>|c;end\ntap", "Mirror span\ndirection both", "mirrored"}), 1u);
  EXPECT_EQ(p.edges.count(E{"Mirror span\ndirection both", "Port end\ninternal", "copies to"}), 1u);
  // veth ends in the namespace they live in: another target's, or a namespace no target manages.
  EXPECT_EQ(p.edges.count(E{"Port cable-a\nveth", "veth end cable-b", "veth pair"}), 1u);
  EXPECT_EQ(p.edges.count(E{"Port to-router\nveth", "veth end rtr0", "veth pair"}), 1u);
  ASSERT_TRUE(p.clusters.count("hv-b (linux, netns graph-hv-b)"));
  EXPECT_TRUE(p.clusters.at("hv-b (linux, netns graph-hv-b)").count("veth end cable-b"));
  ASSERT_TRUE(p.clusters.count("netns graph-router"));
  EXPECT_TRUE(p.clusters.at("netns graph-router").count("veth end rtr0"));
  ASSERT_TRUE(p.clusters.count("ovs-host (ovs)"));
  EXPECT_EQ(p.clusters.at("ovs-host (ovs)").size(), 11u);
}

TEST_F(CliGraph, DotIsReadByGraphvizAsDeclared) {
  if (std::system("command -v dot >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "SKIPPED: graphviz `dot` is not installed (scripts/setup.sh installs it)";
  writeFile(dir / "g.dot", graph("dot"));
  RunResult svg = runShell("dot -Tsvg " + shellQuote((dir / "g.dot").string()), dir);
  ASSERT_EQ(svg.exitCode, 0) << svg.err;
  EXPECT_TRUE(svg.err.empty()) << "dot warned: " << svg.err;
  RunResult json = runShell("dot -Tjson " + shellQuote((dir / "g.dot").string()), dir);
  ASSERT_EQ(json.exitCode, 0) << json.err;
  expectTopology(fromDotJson(Json::parse(json.out)), "dot");
}

TEST_F(CliGraph, MermaidIsReadByMermaidsParserAsDeclared) {
  fs::path tools = graphTools();
  if (std::system("command -v node >/dev/null 2>&1") != 0 || !fs::exists(tools / "node_modules/mermaid"))
    GTEST_SKIP() << "SKIPPED: node or the mermaid npm package is missing in " << tools
                 << " (scripts/packages/graph.sh installs them)";
  // ESM resolves imports next to the script: run a copy beside a link to the installed packages.
  fs::copy_file(sourceDir() / "tests/graph/parse-mermaid.mjs", dir / "parse-mermaid.mjs");
  fs::create_directory_symlink(tools / "node_modules", dir / "node_modules");
  writeFile(dir / "g.mmd", graph("mermaid"));
  RunResult r = runShell("node " + shellQuote((dir / "parse-mermaid.mjs").string()) + " " +
                             shellQuote((dir / "g.mmd").string()),
                         dir, 180);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j.at("type"), "flowchart-v2");
  expectTopology(fromMermaidJson(j), "mermaid");
}

TEST_F(CliGraph, DotAndMermaidDrawTheSamePicture) {
  fs::path tools = graphTools();
  if (std::system("command -v dot >/dev/null 2>&1") != 0 || std::system("command -v node >/dev/null 2>&1") != 0 ||
      !fs::exists(tools / "node_modules/mermaid"))
    GTEST_SKIP() << "SKIPPED: needs graphviz `dot`, node and the mermaid npm package (scripts/setup.sh)";
  writeFile(dir / "g.dot", graph("dot"));
  writeFile(dir / "g.mmd", graph("mermaid"));
  fs::copy_file(sourceDir() / "tests/graph/parse-mermaid.mjs", dir / "parse-mermaid.mjs");
  fs::create_directory_symlink(tools / "node_modules", dir / "node_modules");
  RunResult dot = runShell("dot -Tjson " + shellQuote((dir / "g.dot").string()), dir);
  ASSERT_EQ(dot.exitCode, 0) << dot.err;
  RunResult mmd = runShell("node " + shellQuote((dir / "parse-mermaid.mjs").string()) + " " +
                               shellQuote((dir / "g.mmd").string()),
                           dir, 180);
  ASSERT_EQ(mmd.exitCode, 0) << mmd.err;
  Picture a = fromDotJson(Json::parse(dot.out)), b = fromMermaidJson(Json::parse(mmd.out));
  EXPECT_EQ(a.nodes, b.nodes);
  EXPECT_EQ(a.edges, b.edges);
  EXPECT_EQ(a.clusters, b.clusters);
}

}  // namespace
