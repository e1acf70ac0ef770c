// Fetching a model sent apart (client/model_download.h) from a fake coordinator's chunks:
// the model arrives whole through chunks of any size; every way the coordinator's side
// can fail to add up is refused with DATA_LOSS naming it, and the item is left as it was;
// a transport error is handed back as is.
#include "client/model_download.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/federation.pb.h"
#include "proto/model_layout.h"
#include "proto/transfer.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

// A logistic regression on 30 features: 31 parameters.
v1::WorkItem Announcing(const std::string& model_bytes) {
  v1::WorkItem item;
  item.set_work_id("t/r1/fit/a1/s0");
  item.mutable_spec()->mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  for (int i = 0; i < 30; ++i) item.mutable_spec()->mutable_dataset()->add_features("f");
  item.set_model_size(model_bytes.size());
  return item;
}

std::string ModelBytes(int parameters) {
  v1::ModelParameters model;
  for (int i = 0; i < parameters; ++i) model.add_values(0.25F * static_cast<float>(i));
  return model.SerializeAsString();
}

// Serves `bytes` in chunks of `chunk` bytes, counting the calls.
FetchModelChunk Serving(const std::string& bytes, size_t chunk, int* calls) {
  return [bytes, chunk, calls](uint64_t offset) -> absl::StatusOr<v1::PullModelChunkResponse> {
    ++*calls;
    v1::PullModelChunkResponse response;
    response.set_total(bytes.size());
    response.set_data(bytes.substr(offset, chunk));
    return response;
  };
}

TEST(FetchModelTest, TheModelArrivesWholeThroughChunks) {
  const std::string bytes = ModelBytes(31);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}, bytes.size()}) {
    v1::WorkItem item = Announcing(bytes);
    int calls = 0;
    ASSERT_OK(FetchModel(&item, Serving(bytes, chunk, &calls)));
    EXPECT_EQ(item.model_size(), 0u);
    ASSERT_EQ(item.model().values_size(), 31);
    EXPECT_EQ(item.model().values(30), 7.5F);
    EXPECT_EQ(calls, static_cast<int>((bytes.size() + chunk - 1) / chunk)) << chunk;
  }
}

TEST(FetchModelTest, ACoordinatorWhoseChunksDoNotAddUpIsRefusedAndNothingChanges) {
  const std::string bytes = ModelBytes(31);
  struct Case {
    const char* what;
    FetchModelChunk fetch;
    const char* says;
  };
  auto reply = [](uint64_t total, std::string data) {
    return [total, data](uint64_t) -> absl::StatusOr<v1::PullModelChunkResponse> {
      v1::PullModelChunkResponse response;
      response.set_total(total);
      response.set_data(data);
      return response;
    };
  };
  const std::vector<Case> cases = {
      {"another total", reply(bytes.size() + 1, bytes), "a total of"},
      {"an empty chunk", reply(bytes.size(), ""), "a chunk of 0 bytes at offset 0"},
      {"a chunk past the end", reply(bytes.size(), bytes + "x"), "a chunk of"},
      {"bytes that are no model", reply(bytes.size(), std::string(bytes.size(), '\xff')),
       "do not parse"},
  };
  for (const Case& c : cases) {
    v1::WorkItem item = Announcing(bytes);
    const v1::WorkItem before = item;
    EXPECT_THAT(FetchModel(&item, c.fetch),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(c.says)))
        << c.what;
    EXPECT_TRUE(MessageDifferencer::Equals(item, before)) << c.what;
  }
}

TEST(FetchModelTest, ASizeLargerThanTheTasksModelIsRefusedBeforeAnyDownload) {
  // 31 parameters take at most 1 + 10 + 124 bytes; announce a gigabyte.
  v1::WorkItem item = Announcing(ModelBytes(31));
  item.set_model_size(uint64_t{1} << 30);
  int calls = 0;
  EXPECT_THAT(FetchModel(&item, Serving(ModelBytes(31), 64, &calls)),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("1073741824 bytes announced, more than the 135 a model of 31")));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(proto::MaxSerializedModelBytes(31), 135u);
}

TEST(FetchModelTest, ATransportErrorIsHandedBackAsIs) {
  const std::string bytes = ModelBytes(31);
  v1::WorkItem item = Announcing(bytes);
  int calls = 0, served = 0;
  const FetchModelChunk serving = Serving(bytes, 16, &served);
  FetchModelChunk failing = [&](uint64_t offset) -> absl::StatusOr<v1::PullModelChunkResponse> {
    if (++calls == 2) return absl::UnavailableError("connection reset");
    return serving(offset);
  };
  EXPECT_THAT(FetchModel(&item, failing),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("connection reset")));
  EXPECT_EQ(served, 1);
  EXPECT_FALSE(item.has_model());
  EXPECT_EQ(item.model_size(), bytes.size());
}

TEST(FetchModelTest, AnItemWithoutAModelApartIsNotFetched) {
  v1::WorkItem item = Announcing(ModelBytes(31));
  item.set_model_size(0);
  int calls = 0;
  EXPECT_THAT(FetchModel(&item, Serving("", 1, &calls)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace tessera::client
