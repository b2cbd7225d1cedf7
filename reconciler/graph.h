// The declared topology as a picture (`vnetplan graph`): targets (and network namespaces that veth pairs reach
// into) as clusters; resources as nodes labelled with what users look for (VLANs, port types, network modes,
// addresses); references as arrows labelled with what they mean; uplink NICs, teams (bonds) and veth far ends as
// extra nodes. buildGraph() decides what is drawn; the two renderers only spell it in DOT or Mermaid.
#pragma once
#include <string>
#include <vector>

#include "model/model.h"

namespace vnetplan {

struct GraphNode {
  enum class Shape { Resource, External, Team };
  std::string id;                  // unique, [A-Za-z0-9_]
  std::vector<std::string> label;  // lines, unescaped
  Shape shape = Shape::Resource;
  int cluster = -1;  // index into Graph::clusters, -1 = none
};

struct GraphEdge {
  enum class Style { Plain, Dashed, Mirror, Pair };
  std::string from, to;  // node ids
  std::string label;     // unescaped, may be empty
  Style style = Style::Plain;
};

struct GraphCluster {
  std::string id;  // unique among node and cluster ids
  std::string label;
};

struct Graph {
  std::vector<GraphCluster> clusters;
  std::vector<GraphNode> nodes;
  std::vector<GraphEdge> edges;
};

Graph buildGraph(const DesiredState& desired);
std::string renderGraphDot(const DesiredState& desired);
std::string renderGraphMermaid(const DesiredState& desired);

}  // namespace vnetplan
