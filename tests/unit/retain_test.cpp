// base/retain.h: a one-shot process keeps what it is given until exit; any other process frees it at once.
#include <gtest/gtest.h>

#include <memory>

#include "base/retain.h"

using namespace vnetplan;

namespace {
struct Counted {
  std::shared_ptr<int> alive;
  explicit Counted(std::shared_ptr<int> a) : alive(std::move(a)) { ++*alive; }
  Counted(Counted&& o) noexcept : alive(o.alive) { ++*alive; }
  ~Counted() { --*alive; }
};
}  // namespace

TEST(Retain, OnlyAOneShotProcessKeepsValuesUntilExit) {
  auto alive = std::make_shared<int>(0);
  setOneShotProcess(false);
  {
    Counted c(alive);
    retainUntilExit(std::move(c));
  }
  EXPECT_EQ(*alive, 0) << "serve and tests free at scope exit, as usual";
  setOneShotProcess(true);
  {
    Counted c(alive);
    retainUntilExit(std::move(c));
  }
  EXPECT_EQ(*alive, 1) << "the moved-into copy lives until the process exits";
  setOneShotProcess(false);
}
