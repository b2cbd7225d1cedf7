#include "reconciler/builder.h"

#include <algorithm>
#include <map>
#include <set>

#include "base/toposort.h"
#include "model/references.h"

namespace vnetplan {

const std::vector<std::string>& inheritedPolicies() {
  static const std::vector<std::string> kPolicies{"security", "shaping", "teaming"};
  return kPolicies;
}

namespace {

// Spec fields that route a resource rather than describe it.
const std::set<std::string> kEnvelopeFields{"targets", "selector", "adopt", "onRelease", "justification"};

std::map<std::string, std::string> stringMap(const Json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it)
    out[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
  return out;
}

bool matches(const std::map<std::string, std::string>& selector, const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

struct Builder {
  Builder(const std::vector<Document>& d, Diagnostics& g) : docs(d), diags(g) {}
  const std::vector<Document>& docs;
  Diagnostics& diags;
  DesiredState out;
  std::map<Address, size_t> index;  // address -> resources[i]

  void collectTargets() {
    std::map<std::string, SourceLoc> seen;
    for (const auto& d : docs) {
      if (d.body.value("kind", "") != "Target") continue;
      Target t;
      t.name = d.body["metadata"].value("name", "");
      t.loc = d.keyAt("/metadata/name");
      const Json& spec = d.body.value("spec", Json::object());
      t.provider = spec.value("provider", "");
      t.spec = Attrs::fromJson(spec);
      t.spec.erase("provider");
      t.labels = stringMap(d.body["metadata"].value("labels", Json::object()));
      auto [it, fresh] = seen.emplace(t.name, t.loc);
      if (!fresh) {
        diags.error(t.loc, "duplicate Target '" + t.name + "' (also declared at " + it->second.str() + ")",
                    "duplicate-address");
        continue;
      }
      out.targets.push_back(std::move(t));
    }
  }

  std::vector<std::string> targetNames() const {
    std::vector<std::string> names;
    for (const auto& t : out.targets) names.push_back(t.name);
    return names;
  }

  // "selector {role: hypervsior} matches no Target (did you mean role: hypervisor?)".
  std::string selectorMiss(const std::map<std::string, std::string>& selector) const {
    std::string text;
    for (const auto& [k, v] : selector) text += (text.empty() ? "" : ", ") + k + ": " + v;
    std::string hint;
    for (const auto& [k, v] : selector) {
      std::vector<std::string> keys, values;
      for (const auto& t : out.targets)
        for (const auto& [lk, lv] : t.labels) {
          keys.push_back(lk);
          if (lk == k) values.push_back(lv);
        }
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
        if (std::string m = closestMatch(k, keys); !m.empty()) hint = m + ": " + v;
      } else if (std::find(values.begin(), values.end(), v) == values.end()) {
        if (std::string m = closestMatch(v, values); !m.empty()) hint = k + ": " + m;
      }
      if (!hint.empty()) break;
    }
    return "selector {" + text + "} matches no Target" + (hint.empty() ? "" : " (did you mean " + hint + "?)") +
           "; a resource must be placed somewhere (a typo here would plan the deletion of what it owns)";
  }

  std::vector<std::string> resolveTargets(const Document& d, const Json& spec) {
    std::vector<std::string> result;
    if (spec.contains("targets") && spec["targets"].is_array()) {
      size_t i = 0;
      for (const auto& t : spec["targets"]) {
        std::string name = t.is_string() ? t.get<std::string>() : t.dump();
        if (!out.findTarget(name)) {
          std::string hint = closestMatch(name, targetNames());
          diags.error(d.at("/spec/targets/" + std::to_string(i)),
                      "unknown Target '" + name + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"),
                      "unknown-reference");
        } else if (std::find(result.begin(), result.end(), name) == result.end()) {
          result.push_back(name);
        }
        ++i;
      }
    } else if (spec.contains("selector")) {
      auto selector = stringMap(spec["selector"]);
      for (const auto& t : out.targets)
        if (matches(selector, t.labels)) result.push_back(t.name);
      // A typo in a selector must not silently plan the deletion of everything the resource owns: an error,
      // with the label most likely meant.
      if (result.empty()) diags.error(d.at("/spec/selector"), selectorMiss(selector), "selector-empty");
    }
    return result;
  }

  void collectResources() {
    std::map<Address, SourceLoc> seen;
    for (const auto& d : docs) {
      auto kind = parseKind(d.body.value("kind", ""));
      if (!kind || *kind == Kind::Target) continue;
      const Json& meta = d.body.value("metadata", Json::object());
      const Json& spec = d.body.value("spec", Json::object());
      std::string name = meta.value("name", "");
      Json described = Json::object();
      for (auto it = spec.begin(); it != spec.end(); ++it)
        if (!kEnvelopeFields.count(it.key())) described[it.key()] = it.value();
      Attrs attrs = Attrs::fromJson(described);
      for (const auto& target : resolveTargets(d, spec)) {
        Resource r;
        r.addr = Address{target, *kind, name};
        r.attrs = attrs;
        for (const auto& [path, _] : attrs.values()) {
          r.origins[path] = AttrOrigin{Origin::Explicit, ""};
          std::string pointer = "/spec/" + path;
          std::replace(pointer.begin() + 6, pointer.end(), '.', '/');
          r.fieldLocs[path] = d.at(pointer);
        }
        r.labels = stringMap(meta.value("labels", Json::object()));
        r.adopt = spec.value("adopt", false);
        r.deleteOnRelease = spec.value("onRelease", std::string("restore")) == "delete";
        r.justification = spec.value("justification", "");
        r.loc = d.keyAt("/metadata/name");
        auto [it, fresh] = seen.emplace(r.addr, r.loc);
        if (!fresh) {
          diags.error(r.loc, "duplicate address " + r.addr.str() + " (also declared at " + it->second.str() + ")",
                      "duplicate-address");
          continue;
        }
        index[r.addr] = out.resources.size();
        out.resources.push_back(std::move(r));
      }
    }
  }

  Resource* find(const Address& a) {
    auto it = index.find(a);
    return it == index.end() ? nullptr : &out.resources[it->second];
  }

  std::vector<std::string> namesOf(const std::string& target, Kind kind) const {
    std::vector<std::string> names;
    for (const auto& r : out.resources)
      if (r.addr.target == target && r.addr.kind == kind) names.push_back(r.addr.name);
    return names;
  }

  void resolveReferences() {
    for (auto& r : out.resources) {
      for (const auto& ref : referenceFields()) {
        if (ref.from != r.addr.kind) continue;
        for (const auto& name : referencedNames(r.attrs, ref.path)) {
          Address to{r.addr.target, ref.to, name};
          if (index.count(to)) {
            if (to != r.addr && std::find(r.dependsOn.begin(), r.dependsOn.end(), to) == r.dependsOn.end())
              r.dependsOn.push_back(to);
            continue;
          }
          if (!ref.required) continue;
          std::string hint = closestMatch(name, namesOf(r.addr.target, ref.to));
          diags.error(r.loc,
                      r.addr.str() + ": spec." + ref.path + " refers to " + kindName(ref.to) + " '" + name +
                          "', which is not declared for target " + r.addr.target +
                          (hint.empty() ? "" : " (did you mean '" + hint + "'?)"),
                      "unknown-reference");
        }
      }
    }
  }

  // A reference cycle (a -> b -> a) leaves nothing that could be created first.
  void rejectCycles() {
    std::vector<std::vector<size_t>> deps(out.resources.size());
    for (size_t i = 0; i < out.resources.size(); ++i)
      for (const auto& to : out.resources[i].dependsOn)
        if (auto it = index.find(to); it != index.end()) deps[i].push_back(it->second);
    TopoOrder order = topoSort(deps, [](size_t a, size_t b) { return a < b; });
    if (order.cycle.empty()) return;
    std::string path;
    for (size_t i : order.cycle) path += (path.empty() ? "" : " -> ") + out.resources[i].addr.str();
    const Resource& first = out.resources[order.cycle.front()];
    diags.error(first.loc, "reference cycle: " + path + " (each refers to the next; nothing can be created first)",
                "reference-cycle");
  }

  // Copies each policy attribute the child leaves unset from its parent, remembering where it came from.
  static void inheritFrom(Resource& child, const Resource& parent) {
    for (const auto& policy : inheritedPolicies()) {
      // A Switch carries its teaming under uplinks.teaming; everything else under the policy name.
      const bool fromSwitchTeaming = parent.addr.kind == Kind::Switch && policy == "teaming";
      const std::string prefix = fromSwitchTeaming ? "uplinks.teaming." : policy + ".";
      const Attrs inherited = parent.attrs.subtree(prefix);
      for (const auto& [parentPath, value] : inherited.values()) {
        const std::string path = policy + "." + parentPath.substr(prefix.size());
        if (child.attrs.has(path)) continue;
        child.attrs.set(path, value);
        auto po = parent.origins.find(parentPath);
        std::string from = (po != parent.origins.end() && po->second.origin == Origin::Inherited)
                               ? po->second.from
                               : parent.addr.str();
        child.origins[path] = AttrOrigin{Origin::Inherited, from};
        child.fieldLocs[path] = parent.locOf(parentPath);
      }
    }
  }

  void inheritPolicies() {
    // PortGroups first (from their Switch), then Ports (from their PortGroup, else their Switch).
    for (Kind kind : {Kind::PortGroup, Kind::Port}) {
      for (auto& r : out.resources) {
        if (r.addr.kind != kind) continue;
        const Resource* parent = nullptr;
        if (auto pg = r.attrs.getString("portGroup")) parent = find({r.addr.target, Kind::PortGroup, *pg});
        if (!parent)
          if (auto sw = r.attrs.getString("switch")) parent = find({r.addr.target, Kind::Switch, *sw});
        if (parent) inheritFrom(r, *parent);
        if (kind == Kind::Port) inheritMtu(r), defaultNiocClass(r);
      }
    }
  }

  // A port in a PortGroup with a class is in that class (inherited, as the policies are). On a switch that
  // divides its uplink (nioc), a port neither it nor its PortGroup puts in a class carries a virtual machine's
  // traffic: class virtualmachine, as on vSphere. The plan shows it as a default.
  void defaultNiocClass(Resource& port) {
    if (port.attrs.has("niocClass")) return;
    std::optional<std::string> sw = port.attrs.getString("switch");
    if (auto pg = port.attrs.getString("portGroup")) {
      const Resource* group = find({port.addr.target, Kind::PortGroup, *pg});
      if (!group) return;
      if (const Json* cls = group->attrs.find("niocClass"); cls && cls->is_string()) {
        port.attrs.set("niocClass", *cls);
        port.origins["niocClass"] = AttrOrigin{Origin::Inherited, group->addr.str()};
        port.fieldLocs["niocClass"] = group->locOf("niocClass");
        return;
      }
      sw = group->attrs.getString("switch");
    }
    const Resource* parent = sw ? find({port.addr.target, Kind::Switch, *sw}) : nullptr;
    if (!parent || parent->attrs.subtree("nioc.").empty() || parent->attrs.getBool("nioc.enabled") == false) return;
    port.attrs.set("niocClass", "virtualmachine");
    port.origins["niocClass"] = AttrOrigin{Origin::Default, ""};
  }

  // A Port takes its Switch's MTU (through its PortGroup's switch) unless it says otherwise: a VM's tap on a
  // 9000-byte bridge is a 9000-byte port. (PortGroups carry no MTU of their own.) A provider drops an inherited
  // MTU on a port type that has none of its own (a patch port) or must stay below it (a tunnel).
  void inheritMtu(Resource& port) {
    if (port.attrs.has("mtu")) return;
    std::optional<std::string> sw = port.attrs.getString("switch");
    if (auto pg = port.attrs.getString("portGroup"))
      if (const Resource* group = find({port.addr.target, Kind::PortGroup, *pg})) sw = group->attrs.getString("switch");
    if (!sw) return;
    const Resource* parent = find({port.addr.target, Kind::Switch, *sw});
    if (!parent || !parent->attrs.has("mtu")) return;
    port.attrs.set("mtu", *parent->attrs.find("mtu"));
    port.origins["mtu"] = AttrOrigin{Origin::Inherited, parent->addr.str()};
    port.fieldLocs["mtu"] = parent->locOf("mtu");
  }
};

}  // namespace

DesiredState buildDesiredState(const std::vector<Document>& docs, Diagnostics& diags) {
  Builder b(docs, diags);
  b.collectTargets();
  b.collectResources();
  b.resolveReferences();
  b.rejectCycles();
  b.inheritPolicies();
  std::set<std::string> files;
  for (const auto& d : docs) files.insert(d.file);
  b.out.files.assign(files.begin(), files.end());
  return std::move(b.out);
}

}  // namespace vnetplan
