// An uploaded answer parsed (coordinator/internal/upload_call.h ParseUploadedAnswer): as
// protobuf reads it, whatever its shape, and a masked input's words without a copy.
#include "coordinator/internal/upload_call.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/unknown_field_set.h"
#include "gtest/gtest.h"
#include "proto/federation.pb.h"
#include "tests/testing/proto_matchers.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator::internal {
namespace {

using ::tessera::testing::EqualsProto;
using ::tessera::testing::IsOkAndHolds;
using ::tessera::testing::StatusIs;

v1::PushResultRequest MaskedInputAnswer(size_t words) {
  v1::PushResultRequest request;
  request.set_work_id("task-1/r1/fit/a1/s3");
  std::string bytes(4 * words, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 1);
  request.mutable_secagg()->mutable_masked_input()->set_masked_input(bytes);
  return request;
}

TEST(UploadCallTest, AMaskedInputsWordsAreMovedIntoTheMessageNotCopied) {
  const v1::PushResultRequest sent = MaskedInputAnswer(100000);
  std::string bytes = sent.SerializeAsString();
  const char* buffer = bytes.data();
  ASSERT_OK_AND_ASSIGN(const v1::PushResultRequest parsed, ParseUploadedAnswer(std::move(bytes)));
  EXPECT_THAT(parsed, EqualsProto(sent));
  // The words are in the buffer the bytes arrived in.
  EXPECT_EQ(parsed.secagg().masked_input().masked_input().data(), buffer);
}

// Any other shape is read as ParseFromString reads it: the oneof's last member wins, a
// field twice is merged, unknown fields are kept.
TEST(UploadCallTest, AnyOtherAnswerParsesAsProtobufReadsIt) {
  const std::string masked = MaskedInputAnswer(10).SerializeAsString();
  v1::PushResultRequest decline;
  decline.mutable_decline()->set_reason(v1::Decline::DATA_ERROR);
  v1::PushResultRequest advertisement;
  advertisement.set_work_id("w");
  advertisement.mutable_secagg()->mutable_advertisement()->set_channel_public_key("k");
  v1::PushResultRequest unknown = MaskedInputAnswer(3);
  unknown.GetReflection()->MutableUnknownFields(&unknown)->AddVarint(99, 1);
  v1::PushResultRequest empty_words;
  empty_words.mutable_secagg()->mutable_masked_input();
  for (const std::string& bytes :
       {masked + decline.SerializeAsString(), decline.SerializeAsString() + masked, masked + masked,
        advertisement.SerializeAsString(), unknown.SerializeAsString(),
        empty_words.SerializeAsString(), std::string()}) {
    v1::PushResultRequest expected;
    ASSERT_TRUE(expected.ParseFromString(bytes));
    EXPECT_THAT(ParseUploadedAnswer(bytes), IsOkAndHolds(EqualsProto(expected)));
  }
}

TEST(UploadCallTest, BytesThatDoNotParseAreRefused) {
  const std::string masked = MaskedInputAnswer(10).SerializeAsString();
  // A masked input message with a field numbered 0 beside its words (no such field exists).
  const std::string words = std::string("\x0a\x04", 2) + "abcd" + std::string("\x02\x00", 2);
  const std::string response = std::string("\x1a") + static_cast<char>(words.size()) + words;
  const std::string field_zero =
      std::string("\x22") + static_cast<char>(response.size()) + response;
  for (const std::string& bytes : {masked.substr(0, masked.size() - 1), std::string("\x22\x05", 2),
                                   std::string("\xff\xff\xff", 3), field_zero}) {
    EXPECT_THAT(ParseUploadedAnswer(bytes), StatusIs(absl::StatusCode::kInvalidArgument,
                                                     ::testing::HasSubstr("does not parse")));
  }
}

}  // namespace
}  // namespace tessera::coordinator::internal
