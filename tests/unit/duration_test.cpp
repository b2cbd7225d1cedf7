#include <gtest/gtest.h>

#include "base/duration.h"

using namespace vnetplan;
using std::chrono::milliseconds;

TEST(Duration, UnitsAndBareSeconds) {
  EXPECT_EQ(parseDuration("30"), milliseconds(30000));
  EXPECT_EQ(parseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(parseDuration("10s"), milliseconds(10000));
  EXPECT_EQ(parseDuration("5m"), milliseconds(300000));
  EXPECT_EQ(parseDuration("2h"), milliseconds(7200000));
}

// A value too long to hold is refused, not an overflow or an exception ("internal error: stoll" before).
TEST(Duration, GarbageAndHugeValuesAreRefused) {
  for (const char* bad : {"", "s", "-1", "1.5s", "10d", "99999999999999999999", "1234567890s"})
    EXPECT_FALSE(parseDuration(bad).has_value()) << bad;
  EXPECT_EQ(parseDuration("999999999h"), milliseconds(999999999LL * 3600000));
}
