// Topological order with deterministic ties (Kahn's algorithm over a priority queue): what each item depends on
// comes first, and among items that are ready the `before` order decides.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

namespace vnetplan {

struct TopoOrder {
  std::vector<size_t> order;  // every item, dependencies first (empty when there is a cycle)
  std::vector<size_t> cycle;  // a cycle: each item depends on the next; the first is repeated at the end
};

// `deps[i]`: the items item i depends on (indices < n; duplicates and self-references are ignored).
TopoOrder topoSort(const std::vector<std::vector<size_t>>& deps, const std::function<bool(size_t, size_t)>& before);

}  // namespace vnetplan
