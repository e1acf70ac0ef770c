#include "http/internal/target.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::http::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(HttpTargetTest, SplitsAndDecodesPathAndQuery) {
  auto t = ParseTarget("/a%20b/c?x=1&name=task+%231&empty&x=2#frag");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->path, "/a b/c");
  EXPECT_THAT(t->query, ElementsAre(Pair("empty", ""), Pair("name", "task #1"), Pair("x", "2")));
}

TEST(HttpTargetTest, RefusesBadTargets) {
  EXPECT_FALSE(ParseTarget("").ok());
  EXPECT_FALSE(ParseTarget("http://example.org/").ok());
  EXPECT_FALSE(ParseTarget("/a%2").ok());
  EXPECT_FALSE(ParseTarget("/a%zz").ok());
  EXPECT_FALSE(ParseTarget("/a%00b").ok());
  EXPECT_FALSE(ParseTarget("/?k=%").ok());
}

TEST(HttpTargetTest, ParsesListenAddresses) {
  auto a = ParseListenAddress("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  auto b = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  auto c = ParseListenAddress("localhost:1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "127.0.0.1");
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "example.org:80",
                          "127.0.0.1:-1", "127.0.0.1:8x"}) {
    auto r = ParseListenAddress(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(bad));
  }
}

}  // namespace
}  // namespace tessera::http::internal
