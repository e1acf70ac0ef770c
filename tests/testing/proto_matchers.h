// GoogleTest matchers for protobuf messages.
#ifndef TESSERA_TESTS_TESTING_PROTO_MATCHERS_H_
#define TESSERA_TESTS_TESTING_PROTO_MATCHERS_H_

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"

namespace tessera::testing {

// EXPECT_THAT(record, EqualsProto(want)): every field equal (MessageDifferencer::Equals).
MATCHER_P(EqualsProto, expected, "equals " + expected.ShortDebugString()) {
  if (google::protobuf::util::MessageDifferencer::Equals(arg, expected)) return true;
  *result_listener << "which is " << arg.ShortDebugString();
  return false;
}

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_PROTO_MATCHERS_H_
