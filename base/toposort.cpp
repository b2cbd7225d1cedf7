#include "base/toposort.h"

#include <algorithm>
#include <queue>

namespace vnetplan {

namespace {

// A cycle among the items that never became ready: walk dependencies from one of them until an item repeats.
std::vector<size_t> findCycle(const std::vector<std::vector<size_t>>& deps, const std::vector<size_t>& pending) {
  std::vector<char> stuck(deps.size(), 0);
  for (size_t i = 0; i < deps.size(); ++i) stuck[i] = pending[i] > 0;
  size_t start = 0;
  while (start < deps.size() && !stuck[start]) ++start;
  if (start == deps.size()) return {};
  std::vector<size_t> path;
  std::vector<long> at(deps.size(), -1);
  size_t cur = start;
  while (at[cur] < 0) {
    at[cur] = static_cast<long>(path.size());
    path.push_back(cur);
    size_t next = cur;
    for (size_t d : deps[cur])
      if (d != cur && d < deps.size() && stuck[d]) {
        next = d;
        break;
      }
    if (next == cur) return {};  // cannot happen for a stuck item; be safe
    cur = next;
  }
  std::vector<size_t> cycle(path.begin() + at[cur], path.end());
  cycle.push_back(cycle.front());
  return cycle;
}

}  // namespace

TopoOrder topoSort(const std::vector<std::vector<size_t>>& deps, const std::function<bool(size_t, size_t)>& before) {
  const size_t n = deps.size();
  std::vector<std::vector<size_t>> dependents(n);
  std::vector<size_t> pending(n, 0);
  for (size_t i = 0; i < n; ++i) {
    std::vector<size_t> unique;
    for (size_t d : deps[i])
      if (d < n && d != i && std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(d);
    pending[i] = unique.size();
    for (size_t d : unique) dependents[d].push_back(i);
  }
  auto later = [&](size_t a, size_t b) { return before(b, a); };  // min-heap on `before`
  std::priority_queue<size_t, std::vector<size_t>, decltype(later)> ready(later);
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(i);
  TopoOrder out;
  out.order.reserve(n);
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    out.order.push_back(i);
    for (size_t j : dependents[i])
      if (--pending[j] == 0) ready.push(j);
  }
  if (out.order.size() != n) {
    out.cycle = findCycle(deps, pending);
    out.order.clear();
  }
  return out;
}

}  // namespace vnetplan
