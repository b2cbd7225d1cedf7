// Which attributes of a resource name another resource of the same target: the reference graph the builder
// checks (a reference to something undeclared is an error) and the planner orders by (what a resource refers
// to is created before it and deleted after it).
#pragma once
#include <string>
#include <vector>

#include "model/model.h"

namespace vnetplan {

struct ReferenceField {
  Kind from;
  std::string path;  // an attribute holding a name; "rules[].group" = the `group` of each element of `rules`
  Kind to;
  bool required;  // the builder reports a name that is not declared (otherwise it may name an unmanaged object)
};
const std::vector<ReferenceField>& referenceFields();

// The names held at a reference path ("switch", "source.ports", "rules[].group") of `attrs`.
std::vector<std::string> referencedNames(const Attrs& attrs, const std::string& path);

// The resources `attrs` (of an object at `addr`) refers to, in declaration order, without duplicates.
std::vector<Address> referencesOf(const Address& addr, const Attrs& attrs);

}  // namespace vnetplan
