// base/dynlib: libraries opened on first use. The real tables (libnftables, libssh) are proven by the tests that
// use them (policies, ESXi); these pin the failure messages and the table macro.
#include "base/dynlib.h"

#include <gtest/gtest.h>

#include <cstring>

namespace vnetplan {
namespace {

#define LIBC_FUNCTIONS(X) X(strlen) X(strcmp)
VNP_DYNLIB_TABLE(Libc, "libc.so.6", LIBC_FUNCTIONS)

TEST(DynLib, ATableBindsEveryFunctionOnce) {
  const Libc& c = Libc::get();
  ASSERT_EQ(c.error, "");
  ASSERT_NE(c.strlen, nullptr);
  EXPECT_EQ(c.strlen("vnetplan"), 8u);
  EXPECT_EQ(c.strcmp("a", "a"), 0);
  EXPECT_EQ(&Libc::get(), &c);
}

TEST(DynLib, AMissingLibraryIsNamedWithTheLoadersReason) {
  DynLib lib("libvnetplan-absent.so.9");
  size_t (*fn)(const char*) = nullptr;
  lib.bind(fn, "strlen");
  EXPECT_EQ(fn, nullptr);
  EXPECT_NE(lib.error().find("cannot load libvnetplan-absent.so.9: "), std::string::npos) << lib.error();
  EXPECT_NE(lib.error().find("No such file"), std::string::npos) << lib.error();
}

TEST(DynLib, AMissingFunctionIsNamedAndLaterBindsAreSkipped) {
  DynLib lib("libc.so.6");
  void (*missing)() = nullptr;
  size_t (*len)(const char*) = nullptr;
  lib.bind(missing, "vnetplan_no_such_function");
  lib.bind(len, "strlen");
  EXPECT_EQ(missing, nullptr);
  EXPECT_EQ(len, nullptr);
  EXPECT_EQ(lib.error(), "libc.so.6 has no function vnetplan_no_such_function (a different version than vnetplan was "
                         "built for?)");
}

}  // namespace
}  // namespace vnetplan
