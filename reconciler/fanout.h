// Work across targets on a bounded pool of threads (--parallelism): one slow or unreachable target never holds
// up the others beyond the pool's width.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace vnetplan {

// Runs fn(i) for every i in [0, n) on up to `parallelism` threads (inline when one is enough).
template <typename Fn>
void forEachParallel(size_t n, int parallelism, Fn fn) {
  const size_t workers = std::min<size_t>(n, static_cast<size_t>(std::max(1, parallelism)));
  if (workers <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (size_t w = 0; w < workers; ++w)
    threads.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) fn(i);
    });
  for (auto& t : threads) t.join();
}

}  // namespace vnetplan
