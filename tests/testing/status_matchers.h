// GoogleTest helpers for absl::Status / absl::StatusOr.
#ifndef TESSERA_TESTS_TESTING_STATUS_MATCHERS_H_
#define TESSERA_TESTS_TESTING_STATUS_MATCHERS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

// EXPECT_THAT(f(), IsOk());
MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::tessera::testing::GetStatus(arg);
  if (!s.ok()) *result_listener << "status: " << s;
  return s.ok();
}

// EXPECT_THAT(f(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rounds")));
MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& s = ::tessera::testing::GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

// EXPECT_THAT(f(), StatusIs(absl::StatusCode::kNotFound));
MATCHER_P(StatusIs, code, "") {
  const absl::Status& s = ::tessera::testing::GetStatus(arg);
  *result_listener << "status: " << s;
  return s.code() == code;
}

// EXPECT_THAT(store->GetTask(id), IsOkAndHolds(EqualsProto(want))). (testing::Optional
// does not work with absl::StatusOr on this abseil.)
MATCHER_P(IsOkAndHolds, inner, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status: " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(inner, *arg, result_listener);
}

}  // namespace tessera::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::tessera::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::tessera::testing::IsOk())

// ASSERT_OK_AND_ASSIGN(auto x, F()); fails the test if F() is not OK.
#define TESSERA_TEST_CONCAT_INNER_(a, b) a##b
#define TESSERA_TEST_CONCAT_(a, b) TESSERA_TEST_CONCAT_INNER_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(TESSERA_TEST_CONCAT_(statusor_, __LINE__), lhs, expr)
// `so` names a variable and `lhs` may be a declaration: neither can be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSERT_OK_AND_ASSIGN_IMPL_(so, lhs, expr) \
  auto so = (expr);                               \
  ASSERT_TRUE(so.ok()) << so.status();            \
  lhs = std::move(so).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // TESSERA_TESTS_TESTING_STATUS_MATCHERS_H_
