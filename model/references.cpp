#include "model/references.h"

#include <algorithm>

namespace vnetplan {

const std::vector<ReferenceField>& referenceFields() {
  static const std::vector<ReferenceField> fields{
      {Kind::PortGroup, "switch", Kind::Switch, true},
      {Kind::Port, "switch", Kind::Switch, true},
      {Kind::Port, "portGroup", Kind::PortGroup, true},
      {Kind::Port, "network", Kind::Network, true},
      // The lower device of a vlan/macvtap/vxlan port: often a NIC vnetplan does not manage.
      {Kind::Port, "link", Kind::Port, false},
      {Kind::Network, "switch", Kind::Switch, true},
      {Kind::Mirror, "switch", Kind::Switch, true},
      {Kind::Mirror, "source.ports", Kind::Port, false},
      {Kind::Mirror, "destination.port", Kind::Port, false},
      {Kind::Subnet, "vpc", Kind::Vpc, true},
      {Kind::SecurityGroup, "vpc", Kind::Vpc, true},
      {Kind::SecurityGroup, "rules[].group", Kind::SecurityGroup, true},
      {Kind::Route, "vpc", Kind::Vpc, true},
      {Kind::Vpc, "peering[].vpc", Kind::Vpc, true},
  };
  return fields;
}

std::vector<std::string> referencedNames(const Attrs& attrs, const std::string& path) {
  std::vector<std::string> out;
  auto add = [&](const Json& name) {
    if (name.is_string()) out.push_back(name.get<std::string>());
  };
  auto brackets = path.find("[].");
  if (brackets == std::string::npos) {
    if (const Json* v = attrs.find(path)) {
      if (v->is_array())
        for (const auto& e : *v) add(e);
      else
        add(*v);
    }
    return out;
  }
  const Json* list = attrs.find(path.substr(0, brackets));
  if (!list || !list->is_array()) return out;
  const std::string field = path.substr(brackets + 3);
  for (const auto& e : *list)
    if (e.is_object() && e.contains(field)) add(e[field]);
  return out;
}

std::vector<Address> referencesOf(const Address& addr, const Attrs& attrs) {
  std::vector<Address> out;
  for (const auto& f : referenceFields()) {
    if (f.from != addr.kind) continue;
    for (const auto& name : referencedNames(attrs, f.path)) {
      Address to{addr.target, f.to, name};
      if (to != addr && std::find(out.begin(), out.end(), to) == out.end()) out.push_back(to);
    }
  }
  return out;
}

}  // namespace vnetplan
