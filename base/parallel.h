// Data parallelism for many small independent items (comparing or building thousands of objects): a few threads,
// the calling one included, take blocks of consecutive indexes, so neither a thread nor an atomic operation is
// spent per item.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace vnetplan {

// How many threads to use for `n` items (documents, bytes, objects): one below `threshold` (starting threads would
// cost more than they save), else every core (at most 8).
inline int parallelWorkers(size_t n, size_t threshold) {
  if (n < threshold) return 1;
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
}

// Runs fn(i) for every i in [0, n) on up to `workers` threads. fn must only touch item i's own output (or
// shared data that is safe to share). The first exception fn throws is rethrown here after every thread has
// stopped; the items not started by then are skipped.
template <typename Fn>
void forEachParallelChunks(size_t n, int workers, Fn fn) {
  constexpr size_t kBlock = 32;
  const size_t blocks = (n + kBlock - 1) / kBlock;
  const size_t threads = std::min<size_t>(blocks, static_cast<size_t>(std::max(1, workers)));
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::exception_ptr failed;
  std::mutex failedMu;
  auto run = [&] {
    try {
      for (size_t b = next++; b < blocks; b = next++)
        for (size_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failedMu);
      if (!failed) failed = std::current_exception();
      next = blocks;
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (size_t w = 1; w < threads; ++w) pool.emplace_back(run);
  run();
  for (auto& t : pool) t.join();
  if (failed) std::rethrow_exception(failed);
}

}  // namespace vnetplan
