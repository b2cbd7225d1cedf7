#include "reconciler/graph.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

#include "model/references.h"

namespace vnetplan {

namespace {

// Node and cluster ids are [A-Za-z0-9_] (valid unquoted in DOT and Mermaid) and unique: names that sanitize
// alike ("vm-a.1", "vm-a_1") get a numeric suffix, checked against every id handed out so far. Resources are
// visited in manifest order, so ids are stable from run to run.
class Ids {
 public:
  std::string make(const std::string& prefix, const std::string& name) {
    std::string base = prefix;
    for (unsigned char c : name) base += std::isalnum(c) ? static_cast<char>(c) : '_';
    std::string id = base;
    for (int n = 2; !used_.insert(id).second; ++n) id = base + "_" + std::to_string(n);
    return id;
  }

 private:
  std::set<std::string> used_;
};

std::string vlanText(const Attrs& a, const std::string& path) {
  if (auto v = a.getInt(path)) return *v == 0 ? "untagged" : *v == 4095 ? "all VLANs" : "VLAN " + std::to_string(*v);
  if (const Json* t = a.find(path + ".trunk"); t && t->is_array()) {
    std::string s = "trunk ";
    for (size_t i = 0; i < t->size(); ++i)
      s += (i ? "," : "") + ((*t)[i].is_string() ? (*t)[i].get<std::string>() : (*t)[i].dump());
    return s;
  }
  return "";
}

std::string str(const Attrs& a, const std::string& path) { return a.getString(path).value_or(""); }

std::vector<std::string> labelOf(const Resource& r) {
  const Attrs& a = r.attrs;
  std::vector<std::string> l{std::string(kindName(r.addr.kind)) + " " + r.addr.name};
  auto add = [&](const std::string& s) {
    if (!s.empty()) l.push_back(s);
  };
  switch (r.addr.kind) {
    case Kind::Switch:
      if (auto m = a.getInt("mtu")) add("MTU " + std::to_string(*m));
      break;
    case Kind::PortGroup: {
      std::string v = vlanText(a, "vlan");
      add(v.empty() ? "untagged" : v);
      break;
    }
    case Kind::Port: {
      std::string line = str(a, "type");
      auto join = [&](const std::string& s) {
        if (!s.empty()) line += (line.empty() ? "" : " · ") + s;
      };
      join(vlanText(a, "vlan"));
      if (auto id = a.getInt("vlanId")) join("VLAN " + std::to_string(*id));
      if (auto vni = a.getInt("vni")) join("VNI " + std::to_string(*vni));
      if (auto m = a.getString("mode")) join(*m);
      add(line);
      if (auto remote = a.getString("remote")) add("remote " + *remote);
      for (const auto& addr : a.getStrings("addresses")) add(addr);
      break;
    }
    case Kind::Network:
      add("mode " + (str(a, "mode").empty() ? std::string("nat") : str(a, "mode")));
      add(str(a, "ipv4.address"));
      if (a.has("ipv4.dhcp.start")) add("DHCP " + str(a, "ipv4.dhcp.start") + " - " + str(a, "ipv4.dhcp.end"));
      if (a.has("bridge")) add("bridge " + str(a, "bridge"));
      break;
    case Kind::Mirror:
      if (a.has("source.direction")) add("direction " + str(a, "source.direction"));
      break;
    case Kind::Subnet:
      add(str(a, "cidr"));
      add(vlanText(a, "vlan"));
      if (a.getBool("public").value_or(false)) add("public");
      break;
    case Kind::Vpc:
      if (a.has("internetGateway.externalNetwork"))
        add("internet gateway " + str(a, "internetGateway.externalNetwork"));
      if (a.getBool("natGateway").value_or(false)) add("NAT gateway");
      break;
    case Kind::Route:
      add(str(a, "destination") + " via " + str(a, "nexthop"));
      break;
    default:
      break;
  }
  return l;
}

}  // namespace

Graph buildGraph(const DesiredState& desired) {
  Graph g;
  Ids ids;
  std::map<std::string, size_t> clusterOfTarget;  // target name -> cluster index
  std::map<std::string, size_t> clusterOfNetns;   // netns name -> cluster index
  std::map<std::string, std::string> nodeOfKey;   // Address::str() or "target\x1fextra\x1fname" -> node id
  std::set<std::pair<std::string, std::string>> drawn;

  for (const auto& t : desired.targets) {
    std::string where = t.provider;
    if (auto ns = t.spec.getString("netns")) {
      where += ", netns " + *ns;
      clusterOfNetns.emplace(*ns, g.clusters.size());
    } else if (auto host = t.spec.getString("host")) {
      where += ", " + *host;
    }
    clusterOfTarget[t.name] = g.clusters.size();
    g.clusters.push_back({ids.make("t_", t.name), t.name + " (" + where + ")"});
  }
  auto clusterFor = [&](const std::string& target) -> int {
    auto it = clusterOfTarget.find(target);
    return it == clusterOfTarget.end() ? -1 : static_cast<int>(it->second);
  };
  for (const auto& r : desired.resources) {
    std::string id = ids.make("n_", std::string(kindName(r.addr.kind)) + "_" + r.addr.name);
    nodeOfKey[r.addr.str()] = id;
    g.nodes.push_back({id, labelOf(r), GraphNode::Shape::Resource, clusterFor(r.addr.target)});
  }
  // A thing vnetplan does not manage but the picture needs (a NIC, a bond, the far end of a veth).
  auto extra = [&](const std::string& kind, const std::string& name, int cluster, std::vector<std::string> label,
                   GraphNode::Shape shape) {
    std::string key = std::to_string(cluster) + '\x1f' + kind + '\x1f' + name;
    if (auto it = nodeOfKey.find(key); it != nodeOfKey.end()) return it->second;
    std::string id = ids.make("x_", kind + "_" + name);
    nodeOfKey[key] = id;
    g.nodes.push_back({id, std::move(label), shape, cluster});
    return id;
  };
  auto edge = [&](const std::string& from, const std::string& to, std::string label, GraphEdge::Style style) {
    if (!drawn.insert({from, to}).second) return;
    g.edges.push_back({from, to, std::move(label), style});
  };
  auto resourceNode = [&](const std::string& target, Kind kind, const std::string& name) -> std::string {
    auto it = nodeOfKey.find(Address{target, kind, name}.str());
    return it == nodeOfKey.end() ? "" : it->second;
  };

  for (const auto& r : desired.resources) {
    const std::string self = nodeOfKey[r.addr.str()];
    const int cluster = clusterFor(r.addr.target);
    const Attrs& a = r.attrs;
    // References, labelled with what they mean. Traffic direction for mirrors: source -> mirror -> destination.
    for (const auto& ref : referenceFields()) {
      if (ref.from != r.addr.kind) continue;
      for (const auto& name : referencedNames(a, ref.path)) {
        std::string to = resourceNode(r.addr.target, ref.to, name);
        if (to.empty()) {
          if (ref.to != Kind::Port) continue;  // an unknown required reference never validates
          to = extra("nic", name, cluster, {"interface " + name}, GraphNode::Shape::External);
        }
        if (ref.path == "source.ports")
          edge(to, self, "mirrored", GraphEdge::Style::Mirror);
        else if (ref.path == "destination.port")
          edge(self, to, "copies to", GraphEdge::Style::Mirror);
        else if (ref.path == "link")
          edge(self, to, "over", GraphEdge::Style::Plain);
        else if (ref.path == "network")
          edge(self, to, "attached", GraphEdge::Style::Plain);
        else if (ref.path == "rules[].group")
          edge(self, to, "allows", GraphEdge::Style::Dashed);
        else
          edge(self, to, "", GraphEdge::Style::Plain);
      }
    }
    // Uplinks: one NIC straight to the switch; a team through a bond node that says how it is teamed.
    if (r.addr.kind == Kind::Switch) {
      auto nics = a.getStrings("uplinks.nics");
      std::string policy = str(a, "uplinks.teaming.policy");
      std::string into = self;
      if (nics.size() > 1 || !policy.empty()) {
        std::vector<std::string> label{"uplink team of " + r.addr.name};
        if (!policy.empty())
          label.push_back(policy + (a.has("uplinks.teaming.lacp.mode") ? " (" + str(a, "uplinks.teaming.lacp.mode") + ")" : ""));
        into = extra("bond", r.addr.name, cluster, label, GraphNode::Shape::Team);
        edge(into, self, "uplink", GraphEdge::Style::Plain);
      }
      auto active = a.getStrings("uplinks.teaming.active");
      auto standby = a.getStrings("uplinks.teaming.standby");
      for (const auto& nic : nics) {
        std::string n = extra("nic", nic, cluster, {"NIC " + nic}, GraphNode::Shape::External);
        std::string role = into == self ? "uplink" : "";
        if (std::find(active.begin(), active.end(), nic) != active.end()) role = "active";
        if (std::find(standby.begin(), standby.end(), nic) != standby.end()) role = "standby";
        edge(n, into, role, GraphEdge::Style::Plain);
      }
    }
    // A veth's far end, in the namespace it lives in (another target's cluster when one manages that netns).
    if (r.addr.kind == Kind::Port && str(a, "type") == "veth" && a.has("peer")) {
      std::string peer = str(a, "peer"), ns = str(a, "peerNetns");
      int where = cluster;
      if (!ns.empty()) {
        if (auto it = clusterOfNetns.find(ns); it != clusterOfNetns.end()) {
          where = static_cast<int>(it->second);
        } else {
          where = static_cast<int>(g.clusters.size());
          clusterOfNetns.emplace(ns, g.clusters.size());
          g.clusters.push_back({ids.make("ns_", ns), "netns " + ns});
        }
      }
      std::string to;
      if (where >= 0)
        for (const auto& t : desired.targets)
          if (clusterFor(t.name) == where)
            if (auto n = resourceNode(t.name, Kind::Port, peer); !n.empty()) to = n;
      if (to.empty()) to = extra("veth", peer, where, {"veth end " + peer}, GraphNode::Shape::External);
      if (!drawn.count({to, self})) edge(self, to, "veth pair", GraphEdge::Style::Pair);
    }
    // Where a Network's traffic leaves the host.
    if (r.addr.kind == Kind::Network && a.has("forwardDev")) {
      std::string nic = extra("nic", str(a, "forwardDev"), cluster, {"NIC " + str(a, "forwardDev")},
                              GraphNode::Shape::External);
      edge(self, nic, "forward", GraphEdge::Style::Dashed);
    }
    // Anything else the resource depends on.
    for (const auto& dep : r.dependsOn)
      if (auto to = resourceNode(dep.target, dep.kind, dep.name); !to.empty() && !drawn.count({to, self}))
        edge(self, to, "", GraphEdge::Style::Plain);
  }
  return g;
}

namespace {

std::string dotQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string dotLabel(const std::vector<std::string>& lines) {
  std::string joined;
  for (size_t i = 0; i < lines.size(); ++i) joined += (i ? "\n" : "") + lines[i];
  return dotQuote(joined);
}

// Inside a Mermaid "..." string only letters, digits and a few punctuation marks are safe: quotes end it, '#' starts
// an entity, '<' '>' '&' are HTML, ';' '|' '%' have meanings of their own. Everything else becomes an entity code
// (#34; for '"'), which Mermaid turns back into the character when it renders.
std::string mermaidText(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c >= 0x80 || std::string_view(" .,:/_=+-()").find(static_cast<char>(c)) != std::string_view::npos)
      out += static_cast<char>(c);
    else
      out += "#" + std::to_string(c) + ";";
  }
  return out;
}

std::string mermaidLabel(const std::vector<std::string>& lines) {
  std::string joined;
  for (size_t i = 0; i < lines.size(); ++i) joined += (i ? "<br>" : "") + mermaidText(lines[i]);
  return "\"" + joined + "\"";
}

}  // namespace

std::string renderGraphDot(const DesiredState& desired) {
  Graph g = buildGraph(desired);
  std::ostringstream out;
  out << "digraph vnetplan {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n";
  auto nodeLine = [&](const GraphNode& n, const char* indent) {
    out << indent << n.id << " [label=" << dotLabel(n.label);
    if (n.shape == GraphNode::Shape::External) out << ", shape=box, style=dashed";
    if (n.shape == GraphNode::Shape::Team) out << ", shape=hexagon, style=solid";
    out << "];\n";
  };
  for (size_t c = 0; c < g.clusters.size(); ++c) {
    out << "  subgraph cluster_" << g.clusters[c].id << " {\n    label=" << dotQuote(g.clusters[c].label) << ";\n";
    for (const auto& n : g.nodes)
      if (n.cluster == static_cast<int>(c)) nodeLine(n, "    ");
    out << "  }\n";
  }
  for (const auto& n : g.nodes)
    if (n.cluster < 0) nodeLine(n, "  ");
  for (const auto& e : g.edges) {
    std::vector<std::string> attrs;
    if (!e.label.empty()) attrs.push_back("label=" + dotQuote(e.label));
    if (e.style == GraphEdge::Style::Dashed) attrs.push_back("style=dashed");
    if (e.style == GraphEdge::Style::Mirror) attrs.push_back("style=dashed, color=darkorange");
    if (e.style == GraphEdge::Style::Pair) attrs.push_back("dir=none, style=bold");
    out << "  " << e.from << " -> " << e.to;
    for (size_t i = 0; i < attrs.size(); ++i) out << (i ? ", " : " [") << attrs[i];
    out << (attrs.empty() ? ";\n" : "];\n");
  }
  out << "}\n";
  return out.str();
}

std::string renderGraphMermaid(const DesiredState& desired) {
  Graph g = buildGraph(desired);
  std::ostringstream out;
  out << "graph LR\n";
  auto nodeLine = [&](const GraphNode& n, const char* indent) {
    const std::string label = mermaidLabel(n.label);
    if (n.shape == GraphNode::Shape::Team)
      out << indent << n.id << "{{" << label << "}}\n";
    else if (n.shape == GraphNode::Shape::External)
      out << indent << n.id << "[/" << label << "/]\n";
    else
      out << indent << n.id << "[" << label << "]\n";
  };
  for (size_t c = 0; c < g.clusters.size(); ++c) {
    out << "  subgraph " << g.clusters[c].id << "[\"" << mermaidText(g.clusters[c].label) << "\"]\n";
    for (const auto& n : g.nodes)
      if (n.cluster == static_cast<int>(c)) nodeLine(n, "    ");
    out << "  end\n";
  }
  for (const auto& n : g.nodes)
    if (n.cluster < 0) nodeLine(n, "  ");
  for (const auto& e : g.edges) {
    const char* arrow = e.style == GraphEdge::Style::Pair                                              ? "==="
                        : (e.style == GraphEdge::Style::Dashed || e.style == GraphEdge::Style::Mirror) ? "-.->"
                                                                                                        : "-->";
    out << "  " << e.from << " " << arrow;
    if (!e.label.empty()) out << "|\"" << mermaidText(e.label) << "\"|";
    out << " " << e.to << "\n";
  }
  return out.str();
}

}  // namespace vnetplan
