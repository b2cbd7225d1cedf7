#include "base/redact.h"

#include <gtest/gtest.h>

using vnetplan::redactCredentials;

TEST(Redact, UserinfoOfConnectionStrings) {
  EXPECT_EQ(redactCredentials("tcp:admin:s3cret@10.0.0.1:6640"), "tcp:***@10.0.0.1:6640");
  EXPECT_EQ(redactCredentials("https://admin:s3cret@keystone.example:5000/v3"), "https://***@keystone.example:5000/v3");
  EXPECT_EQ(redactCredentials("http://a:b@c@host/x@y"), "http://***@host/x@y");  // the last '@' of the authority
  EXPECT_EQ(redactCredentials("ssh://root@esx1"), "ssh://***@esx1");
}

TEST(Redact, SecretQueryParameters) {
  EXPECT_EQ(redactCredentials("https://h/v3?token=abc&region=one"), "https://h/v3?token=***&region=one");
  EXPECT_EQ(redactCredentials("https://h/?x=1&Password=p&y=2"), "https://h/?x=1&Password=***&y=2");
}

TEST(Redact, OtherStringsUnchanged) {
  for (const char* s : {"unix:/var/run/openvswitch/db.sock", "tcp:10.0.0.1:6640", "https://h:5000/v3", "ops@example",
                        "br-prod", "52:54:00:00:00:01", ""})
    EXPECT_EQ(redactCredentials(s), s) << s;
}
