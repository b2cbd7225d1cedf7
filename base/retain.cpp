#include "base/retain.h"

#include <atomic>
#include <mutex>
#include <vector>

namespace vnetplan {

namespace {
std::atomic<bool> gOneShot{false};
std::mutex gMu;
// Never deleted: what it holds lives until the process exits, and stays reachable from here.
std::vector<std::shared_ptr<void>>* gKept = new std::vector<std::shared_ptr<void>>;
}  // namespace

void setOneShotProcess(bool oneShot) { gOneShot = oneShot; }
bool oneShotProcess() { return gOneShot; }

void keepUntilExit(std::shared_ptr<void> p) {
  std::lock_guard<std::mutex> lock(gMu);
  gKept->push_back(std::move(p));
}

}  // namespace vnetplan
