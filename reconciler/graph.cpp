#include "reconciler/graph.h"

#include <cctype>
#include <sstream>

namespace vnetplan {

namespace {

std::string id(const Address& addr) {
  std::string s = addr.str();
  for (auto& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return "n_" + s;
}

}  // namespace

std::string renderGraphDot(const DesiredState& d) {
  const DesiredState* desired = &d;
  std::ostringstream out;
  out << "digraph vnetplan {\n  rankdir=LR;\n";
  for (const auto& t : desired->targets) {
    out << "  subgraph \"cluster_" << t.name << "\" {\n    label=\"" << t.name << " (" << t.provider << ")\";\n";
    for (const auto& r : desired->resources)
      if (r.addr.target == t.name)
        out << "    " << id(r.addr) << " [label=\"" << kindName(r.addr.kind) << "\\n" << r.addr.name << "\"];\n";
    out << "  }\n";
  }
  for (const auto& r : desired->resources)
    for (const auto& dep : r.dependsOn) out << "  " << id(r.addr) << " -> " << id(dep) << ";\n";
  out << "}\n";
  return out.str();
}

std::string renderGraphMermaid(const DesiredState& d) {
  const DesiredState* desired = &d;
  std::ostringstream out;
  out << "graph LR\n";
  for (const auto& t : desired->targets) {
    out << "  subgraph " << id(Address{t.name, Kind::Target, "t"}) << "[\"" << t.name << " (" << t.provider
        << ")\"]\n";
    for (const auto& r : desired->resources)
      if (r.addr.target == t.name)
        out << "    " << id(r.addr) << "[\"" << kindName(r.addr.kind) << " " << r.addr.name << "\"]\n";
    out << "  end\n";
  }
  for (const auto& r : desired->resources)
    for (const auto& dep : r.dependsOn) out << "  " << id(r.addr) << " --> " << id(dep) << "\n";
  return out.str();
}

}  // namespace vnetplan
