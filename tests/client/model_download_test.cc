// Fetching a model sent apart (client/model_download.h) from a fake coordinator's chunks:
// the model arrives whole through chunks of any size; every way the coordinator's side
// can fail to add up is refused with DATA_LOSS naming it, and the item is left as it was;
// a transport error is handed back as is. A model sent as a delta from the one a site holds
// (HeldModels) decodes to the very model, inline or apart, and is refused, changing nothing,
// whenever it does not add up.
#include "client/model_download.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/federation.pb.h"
#include "proto/model_delta.h"
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
  auto reply = [](uint64_t total, const std::string& data) {
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

// `model` for task `task`, inline, with its hash and a spec whose model has its size (a
// logistic regression on model.size() - 1 features).
v1::WorkItem WithModel(const std::string& task, const std::vector<float>& model) {
  v1::WorkItem item;
  item.mutable_spec()->mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  for (size_t i = 1; i < model.size(); ++i)
    item.mutable_spec()->mutable_dataset()->add_features("f");
  item.set_task_id(task);
  item.set_work_id(task + "/r2/fit_evaluate/a1/s0");
  item.mutable_model()->mutable_values()->Assign(model.begin(), model.end());
  item.set_model_hash(crypto::HashModel(model));
  return item;
}

std::vector<float> Values(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(i % 97) / 97.0F;
  return v;
}

// `next` for `task` as a delta from `base`, inline.
v1::WorkItem AsDelta(const std::string& task, const std::vector<float>& base,
                     const std::vector<float>& next) {
  v1::WorkItem item = WithModel(task, next);
  item.clear_model();
  item.mutable_model_delta()->set_base_hash(crypto::HashModel(base));
  item.mutable_model_delta()->set_data(*proto::EncodeModelDelta(base, next));
  return item;
}

FetchModelChunk NoFetch(int* calls) {
  return [calls](uint64_t) -> absl::StatusOr<v1::PullModelChunkResponse> {
    ++*calls;
    return absl::UnavailableError("not expected");
  };
}

TEST(HeldModelsTest, ListsTheLastModelOfEachTask) {
  HeldModels held;
  v1::PullWorkRequest request;
  held.ListIn(&request);
  EXPECT_TRUE(request.accepts_model_delta());
  EXPECT_EQ(request.held_model_hashes_size(), 0);
  held.Remember(WithModel("t1", Values(10, 1)));
  held.Remember(WithModel("t2", Values(10, 2)));
  held.Remember(WithModel("t1", Values(10, 3)));  // replaces t1's
  request.Clear();
  held.ListIn(&request);
  EXPECT_THAT(request.held_model_hashes(),
              ::testing::UnorderedElementsAre(crypto::HashModel(Values(10, 2)),
                                              crypto::HashModel(Values(10, 3))));
  held.Forget("t2");
  request.Clear();
  held.ListIn(&request);
  EXPECT_THAT(request.held_model_hashes(),
              ::testing::ElementsAre(crypto::HashModel(Values(10, 3))));
}

TEST(HeldModelsTest, HoldsAtMostEightTasksForgettingTheLeastRecentlySent) {
  HeldModels held;
  for (int t = 0; t < 10; ++t) held.Remember(WithModel(absl::StrCat("t", t), Values(4, t)));
  EXPECT_EQ(held.size(), proto::kMaxHeldModels);
  v1::PullWorkRequest request;
  held.ListIn(&request);
  EXPECT_THAT(request.held_model_hashes(),
              ::testing::Not(::testing::Contains(crypto::HashModel(Values(4, 0)))));
  EXPECT_THAT(request.held_model_hashes(), ::testing::Contains(crypto::HashModel(Values(4, 9))));
}

TEST(HeldModelsTest, AnItemWithoutModelOrHashOrWithAModelNotItsSpecsIsNotHeld) {
  HeldModels held;
  v1::WorkItem no_hash = WithModel("t1", Values(4, 1));
  no_hash.clear_model_hash();
  held.Remember(no_hash);
  v1::WorkItem later_step;
  later_step.set_task_id("t1");
  held.Remember(later_step);
  // A model larger than its spec's: a coordinator cannot make the site keep more.
  v1::WorkItem oversize = WithModel("t1", Values(4, 1));
  oversize.mutable_model()->add_values(1.0F);
  oversize.set_model_hash(crypto::HashModel(
      std::vector<float>(oversize.model().values().begin(), oversize.model().values().end())));
  held.Remember(oversize);
  EXPECT_EQ(held.size(), 0u);
}

// A site holding task t1's model `base`, sent `next`.
class HeldDeltaTest : public ::testing::Test {
 protected:
  HeldDeltaTest() { held_.Remember(WithModel("t1", base_)); }

  // `item` with its delta's data apart; returns the data.
  static std::string Apart(v1::WorkItem* item) {
    std::string data = item->model_delta().data();
    item->mutable_model_delta()->clear_data();
    item->mutable_model_delta()->set_data_size(data.size());
    return data;
  }

  const std::vector<float> base_ = Values(1000, 1);
  const std::vector<float> next_ = Values(1000, 1.001F);
  HeldModels held_;
};

TEST_F(HeldDeltaTest, ADeltaInlineDecodesToTheModel) {
  v1::WorkItem item = AsDelta("t1", base_, next_);
  int calls = 0;
  ASSERT_OK(held_.Apply(&item, NoFetch(&calls)));
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(item.has_model_delta());
  EXPECT_TRUE(MessageDifferencer::Equals(item, WithModel("t1", next_)));
}

TEST_F(HeldDeltaTest, ADeltaApartArrivesThroughChunks) {
  v1::WorkItem item = AsDelta("t1", base_, next_);
  const std::string data = Apart(&item);
  int calls = 0;
  ASSERT_OK(held_.Apply(&item, Serving(data, 100, &calls)));
  EXPECT_EQ(calls, static_cast<int>((data.size() + 99) / 100));
  EXPECT_TRUE(MessageDifferencer::Equals(item, WithModel("t1", next_)));
}

TEST_F(HeldDeltaTest, ADeltaThatDoesNotAddUpIsRefusedAndNothingChanges) {
  const std::vector<float>& base = base_;
  const std::vector<float>& next = next_;
  HeldModels& held = held_;
  struct Case {
    const char* name;
    v1::WorkItem item;
    const char* says;
  };
  std::vector<Case> cases;
  cases.push_back({"a base the site does not hold", AsDelta("t1", Values(1000, 5), next),
                   "its base is not the model this site holds"});
  cases.push_back({"another task's base", AsDelta("t2", base, next),
                   "its base is not the model this site holds"});
  v1::WorkItem wrong_hash = AsDelta("t1", base, next);
  wrong_hash.set_model_hash(crypto::HashModel(base));
  cases.push_back(
      {"a model that does not hash to model_hash", wrong_hash, "does not hash to model_hash"});
  v1::WorkItem garbage = AsDelta("t1", base, next);
  garbage.mutable_model_delta()->set_data("not zlib");
  cases.push_back({"data that does not decode", garbage, "not a whole zlib stream"});
  v1::WorkItem huge = AsDelta("t1", base, next);
  Apart(&huge);
  huge.mutable_model_delta()->set_data_size(4001);
  cases.push_back({"more bytes apart than the model", huge, "4001 bytes announced apart"});
  for (Case& c : cases) {
    const v1::WorkItem before = c.item;
    int calls = 0;
    EXPECT_THAT(held.Apply(&c.item, NoFetch(&calls)),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(c.says)))
        << c.name;
    EXPECT_EQ(calls, 0) << c.name;
    EXPECT_TRUE(MessageDifferencer::Equals(c.item, before)) << c.name;
  }
}

TEST_F(HeldDeltaTest, ATransportErrorFetchingADeltaIsHandedBackAsIs) {
  v1::WorkItem item = AsDelta("t1", base_, next_);
  Apart(&item);
  int calls = 0;
  EXPECT_THAT(held_.Apply(&item, NoFetch(&calls)), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(item.has_model_delta());
}

}  // namespace
}  // namespace tessera::client
