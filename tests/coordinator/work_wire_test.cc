#include "coordinator/work_wire.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/internal/model_download_call.h"
#include "coordinator/internal/wire_fields.h"
#include "coordinator/work_board.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/federation.pb.h"
#include "proto/transfer.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

// A site's own fields of a first step: the work id and its secure-aggregation message.
v1::WorkItem Own(const std::string& work_id, const std::string& session) {
  v1::WorkItem own;
  own.set_work_id(work_id);
  own.set_task_id("t1");
  own.set_round(3);
  own.set_stage(v1::STAGE_FIT);
  own.set_cohort_size(50);
  own.set_secagg_session(session);
  own.mutable_secagg()->mutable_setup()->set_session_nonce(std::string(32, 'n'));
  return own;
}

// The set-up's shared fields, with a model large enough to need a multi-byte length.
std::shared_ptr<const std::string> Shared(size_t weights) {
  v1::WorkItem fields;
  fields.mutable_spec()->set_name("digits");
  fields.set_spec_hash(std::string(32, 's'));
  fields.set_model_hash(std::string(32, 'm'));
  fields.set_l2(0.25);
  fields.mutable_standardization()->set_num_train_rows(1234);
  auto* model = fields.mutable_model();
  for (size_t i = 0; i < weights; ++i) model->add_values(static_cast<float>(i) * 0.5F);
  return std::make_shared<const std::string>(fields.SerializeAsString());
}

v1::PullWorkResponse Parse(const grpc::ByteBuffer& bytes) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(bytes.Dump(&slices).ok());
  std::string wire;
  for (const grpc::Slice& s : slices)
    wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
  v1::PullWorkResponse response;
  EXPECT_TRUE(response.ParseFromString(wire));
  return response;
}

TEST(WorkWireTest, TheResponseIsTheWholeItemWithTheCrl) {
  const PostedItem item{Own("t1/r3/fit/a1/s0", "t1/r3/fit/a1"), Shared(100'000), nullptr, nullptr};
  const v1::PullWorkResponse response = Parse(PullWorkResponseBytes(item, "-----CRL-----"));
  ASSERT_TRUE(response.has_work());
  v1::WorkItem expected = item.Whole();
  expected.set_crl_pem("-----CRL-----");
  EXPECT_TRUE(MessageDifferencer::Equals(response.work(), expected))
      << response.work().ShortDebugString().substr(0, 400);
  EXPECT_EQ(response.work().model().values_size(), 100'000);
  EXPECT_EQ(response.work().model().values(99'999), 99'999 * 0.5F);
  EXPECT_EQ(response.work().secagg_session(), "t1/r3/fit/a1") << "the site's own fields kept";
  EXPECT_EQ(response.work().standardization().num_train_rows(), 1234u);
}

TEST(WorkWireTest, EverySitesResponseSendsTheOneSharedCopyOfTheModel) {
  const std::shared_ptr<const std::string> shared = Shared(10'000);
  const PostedItem a{Own("w/s0", "w"), shared, nullptr, nullptr};
  const PostedItem b{Own("w/s0", "w"), shared, nullptr, nullptr};
  for (const PostedItem* item : {&a, &b}) {
    grpc::ByteBuffer bytes = PullWorkResponseBytes(*item, "");
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(bytes.Dump(&slices).ok());
    ASSERT_EQ(slices.size(), 2u);
    EXPECT_EQ(static_cast<const void*>(slices[1].begin()), static_cast<const void*>(shared->data()))
        << "the shared bytes are referenced, not copied";
    EXPECT_EQ(slices[1].size(), shared->size());
  }
}

TEST(WorkWireTest, TheSharedBytesOutliveTheBoardWhileGrpcHoldsThem) {
  auto shared = std::make_shared<const std::string>(*Shared(1'000));
  const std::string copy = *shared;
  grpc::ByteBuffer bytes;
  {
    const PostedItem item{Own("w/s0", "w"), shared, nullptr, nullptr};
    bytes = PullWorkResponseBytes(item, "");
  }
  std::weak_ptr<const std::string> watch = shared;
  shared.reset();  // the board closed the step
  EXPECT_FALSE(watch.expired()) << "the response still references the bytes";
  const v1::PullWorkResponse response = Parse(bytes);
  EXPECT_EQ(response.work().model().values_size(), 1'000);
  bytes.Clear();
  EXPECT_TRUE(watch.expired()) << "released with the response";
}

TEST(WorkWireTest, AnItemWithNothingSharedIsItsOwnFields) {
  const PostedItem item{Own("w/s2", "w"), nullptr, nullptr, nullptr};
  const v1::PullWorkResponse response = Parse(PullWorkResponseBytes(item, ""));
  EXPECT_TRUE(MessageDifferencer::Equals(response.work(), item.own));
  EXPECT_FALSE(response.work().has_model());
}

// A share relay kept serialized (PostedItem::own_tail: the secagg field's header and the
// message's head, then the relay's bytes as the server keeps them) goes out as the item's
// secagg field, the relay's bytes referenced by the response rather than copied.
TEST(WorkWireTest, ASitesMessageKeptAsBytesIsPartOfItsItem) {
  v1::SecAggServerMessage relay;
  relay.set_round(v1::SECAGG_MASKED_INPUT);
  relay.mutable_share_relay()->add_share_holders("site-a");
  v1::EncryptedShare* share = relay.mutable_share_relay()->add_shares();
  share->set_sender("site-b");
  share->set_receiver("site-a");
  share->set_ciphertext(std::string(80, 'c'));
  const std::string message = relay.SerializeAsString();
  auto relay_bytes = std::make_shared<const std::string>(relay.share_relay().SerializeAsString());
  ASSERT_TRUE(message.ends_with(*relay_bytes));
  OwnTail tail;
  internal::AppendFieldHeader(v1::WorkItem::kSecaggFieldNumber, message.size(), &tail.head);
  tail.head += message.substr(0, message.size() - relay_bytes->size());
  tail.shared = relay_bytes;
  v1::WorkItem own = Own("w/s3", "w");
  own.clear_secagg();  // the site's message is the tail
  grpc::ByteBuffer bytes;
  {
    const PostedItem item{own, Shared(10), nullptr, nullptr, std::move(tail)};
    bytes = PullWorkResponseBytes(item, "-----CRL-----");
    const v1::PullWorkResponse response = Parse(bytes);
    EXPECT_TRUE(MessageDifferencer::Equals(response.work().secagg(), relay))
        << response.work().secagg().ShortDebugString();
    EXPECT_EQ(response.work().work_id(), "w/s3");
    EXPECT_EQ(response.work().model().values_size(), 10);
    v1::WorkItem expected = item.Whole();
    expected.set_crl_pem("-----CRL-----");
    EXPECT_TRUE(MessageDifferencer::Equals(response.work(), expected));
    EXPECT_TRUE(MessageDifferencer::Equals(item.Whole().secagg(), relay));
  }
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(bytes.Dump(&slices).ok());
  ASSERT_EQ(slices.size(), 3u);
  EXPECT_EQ(static_cast<const void*>(slices[1].begin()),
            static_cast<const void*>(relay_bytes->data()))
      << "the relay is referenced, not copied";
  std::weak_ptr<const std::string> watch = relay_bytes;
  relay_bytes.reset();  // the server let go of it, the item is gone
  EXPECT_FALSE(watch.expired()) << "the response still references the relay";
  slices.clear();
  bytes.Clear();
  EXPECT_TRUE(watch.expired()) << "released with the response";
}

TEST(WorkWireTest, NoWorkIsAValidEmptyResponse) {
  grpc::ByteBuffer bytes = EmptyPullWorkResponse();
  EXPECT_TRUE(bytes.Valid());
  EXPECT_EQ(bytes.Length(), 0u);
  EXPECT_FALSE(Parse(bytes).has_work());
}

TEST(WorkWireTest, ABoardStepToManySitesHoldsOneCopyOfTheSharedBytes) {
  WorkBoard board;
  class NullSink : public ResultSink {
    absl::Status Accept(const std::string&, const v1::PushResultRequest&) override {
      return absl::OkStatus();
    }
  };
  const std::shared_ptr<const std::string> shared = Shared(1'000);
  std::map<std::string, v1::WorkItem> items;
  for (int i = 0; i < 50; ++i) items["site-" + std::to_string(i)] = Own("w/s0", "w");
  ASSERT_OK(board.Post("w/s0", std::move(items), std::make_shared<NullSink>(), shared));
  std::shared_ptr<const PostedItem> first = board.Pull("site-0", absl::Now());
  std::shared_ptr<const PostedItem> last = board.Pull("site-49", absl::Now());
  ASSERT_NE(first, nullptr);
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(first->shared.get(), shared.get());
  EXPECT_EQ(last->shared.get(), shared.get());
  EXPECT_EQ(first->Whole().model().values_size(), 1'000);
}

// A model sent apart: each chunk's response is its range of the one copy, the last one cut
// at the model's end, and it parses as an ordinary PullModelChunkResponse.
TEST(WorkWireTest, AModelChunkIsItsRangeOfTheOneCopy) {
  std::string bytes(2 * proto::kModelChunkBytes + 12345, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131) ^ (i >> 9));
  auto model = std::make_shared<const std::string>(bytes);
  std::weak_ptr<const std::string> watch = model;
  std::string assembled;
  grpc::ByteBuffer last;
  for (uint64_t offset = 0; offset < bytes.size(); offset += proto::kModelChunkBytes) {
    last = ModelChunkResponseBytes(model, offset);
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(last.Dump(&slices).ok());
    std::string wire;
    for (const grpc::Slice& s : slices) {
      wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    v1::PullModelChunkResponse chunk;
    ASSERT_TRUE(chunk.ParseFromString(wire)) << offset;
    EXPECT_EQ(chunk.total(), bytes.size());
    EXPECT_EQ(chunk.data(), bytes.substr(offset, proto::kModelChunkBytes)) << offset;
    assembled += chunk.data();
  }
  EXPECT_EQ(assembled, bytes);
  model.reset();
  EXPECT_FALSE(watch.expired()) << "the last response still references the model";
  last.Clear();
  EXPECT_TRUE(watch.expired()) << "released with the response";
}

grpc::ByteBuffer Bytes(const std::string& wire) {
  grpc::Slice slice(wire.data(), wire.size());
  return grpc::ByteBuffer(&slice, 1);
}

// A site's PullModelChunk request is refused, naming what is wrong, unless it parses, asks
// for a model the site may fetch, and starts inside it.
TEST(WorkWireTest, AChunkRequestIsCheckedBeforeAnythingIsSent) {
  auto model = std::make_shared<const std::string>(3000, 'm');
  auto delta_data = std::make_shared<const std::string>(1500, 'd');
  internal::Downloads downloads{
      nullptr,
      [&](const std::string& site, const std::string& work_id,
          bool delta) -> absl::StatusOr<std::shared_ptr<const std::string>> {
        if (site == "site-0" && work_id == "w/s0" && !delta) return model;
        if (site == "site-0" && work_id == "w/s0" && delta) return delta_data;
        return absl::NotFoundError("work " + work_id +
                                   " is closed, not yours, or carries no model apart");
      }};
  auto request = [](const std::string& work_id, uint64_t offset) {
    v1::PullModelChunkRequest r;
    r.set_work_id(work_id);
    r.set_offset(offset);
    return Bytes(r.SerializeAsString());
  };
  grpc::ByteBuffer ok = request("w/s0", 2999);
  ASSERT_OK_AND_ASSIGN(internal::ChunkRequest chunk,
                       internal::CheckChunkRequest(downloads, "site-0", &ok));
  EXPECT_EQ(chunk.model.get(), model.get());
  EXPECT_EQ(chunk.offset, 2999u);
  v1::PullModelChunkRequest of_delta;
  of_delta.set_work_id("w/s0");
  of_delta.set_offset(10);
  of_delta.set_delta(true);
  grpc::ByteBuffer delta_request = Bytes(of_delta.SerializeAsString());
  ASSERT_OK_AND_ASSIGN(internal::ChunkRequest delta_chunk,
                       internal::CheckChunkRequest(downloads, "site-0", &delta_request));
  EXPECT_EQ(delta_chunk.model.get(), delta_data.get()) << "the delta's data, not the model";
  grpc::ByteBuffer past = request("w/s0", 3000);
  EXPECT_THAT(internal::CheckChunkRequest(downloads, "site-0", &past),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("offset 3000 is past the model's 3000 bytes")));
  grpc::ByteBuffer other = request("w/s0", 0);
  EXPECT_THAT(internal::CheckChunkRequest(downloads, "site-1", &other),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not yours")));
  grpc::ByteBuffer garbage = Bytes(std::string("\xff\xff\xff", 3));
  EXPECT_THAT(internal::CheckChunkRequest(downloads, "site-0", &garbage),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not parse")));
  EXPECT_THAT(internal::CheckChunkRequest(downloads, "site-0", nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unreadable")));
}

// The board gives a model apart only to a site its item was handed to, while the work is
// open; in process, the whole item has the model back.
TEST(WorkWireTest, ABoardModelApartGoesOnlyToTheSitesItsItemWasHandedTo) {
  WorkBoard board;
  class NullSink : public ResultSink {
    absl::Status Accept(const std::string&, const v1::PushResultRequest&) override {
      return absl::OkStatus();
    }
  };
  v1::WorkItem fields;
  fields.set_model_hash(std::string(32, 'm'));
  v1::ModelParameters parameters;
  for (int i = 0; i < 1000; ++i) parameters.add_values(static_cast<float>(i));
  auto model = std::make_shared<const std::string>(parameters.SerializeAsString());
  fields.set_model_size(model->size());
  auto shared = std::make_shared<const std::string>(fields.SerializeAsString());
  std::map<std::string, v1::WorkItem> items;
  items["site-0"] = Own("w/s0", "w");
  items["site-1"] = Own("w/s0", "w");
  ASSERT_OK(board.Post("w/s0", std::move(items), std::make_shared<NullSink>(), shared, model));
  EXPECT_EQ(board.ModelFor("w/s0", "site-0"), nullptr) << "not handed out yet";
  std::shared_ptr<const PostedItem> item = board.Pull("site-0", absl::Now());
  ASSERT_NE(item, nullptr);
  EXPECT_EQ(board.ModelFor("w/s0", "site-0").get(), model.get());
  EXPECT_EQ(board.ModelFor("w/s0", "site-1"), nullptr) << "site-1 has not pulled it";
  EXPECT_EQ(board.ModelFor("w/s0", "stranger"), nullptr);
  EXPECT_EQ(board.ModelFor("w/other", "site-0"), nullptr);
  // On the wire the item announces the model's size and carries none.
  const v1::PullWorkResponse response = Parse(PullWorkResponseBytes(*item, ""));
  EXPECT_FALSE(response.work().has_model());
  EXPECT_EQ(response.work().model_size(), model->size());
  // In process, the whole item has it back.
  const v1::WorkItem whole = item->Whole();
  EXPECT_EQ(whole.model().values_size(), 1000);
  EXPECT_EQ(whole.model_size(), 0u);
  board.Close("w/s0");
  EXPECT_EQ(board.ModelFor("w/s0", "site-0"), nullptr) << "closed";
}

// The largest answer a site's open work expects bounds what the coordinator reads of its
// chunked uploads beyond the message cap: the largest posted with work still awaiting the
// site's answer.
TEST(WorkWireTest, TheLargestAnswerIsThatOfTheWorkStillAwaitingTheSite) {
  WorkBoard board;
  class NullSink : public ResultSink {
    absl::Status Accept(const std::string&, const v1::PushResultRequest&) override {
      return absl::OkStatus();
    }
  };
  std::map<std::string, v1::WorkItem> small, large;
  small["site-0"] = Own("a/s0", "a");
  large["site-0"] = Own("b/s2", "b");
  large["site-1"] = Own("b/s2", "b");
  ASSERT_OK(
      board.Post("a/s0", std::move(small), std::make_shared<NullSink>(), nullptr, nullptr, 1000));
  ASSERT_OK(board.Post("b/s2", std::move(large), std::make_shared<NullSink>(), nullptr, nullptr,
                       uint64_t{5} << 20));
  EXPECT_EQ(board.LargestAnswer("site-0"), uint64_t{5} << 20);
  EXPECT_EQ(board.LargestAnswer("site-1"), uint64_t{5} << 20);
  EXPECT_EQ(board.LargestAnswer("stranger"), 0u);
  ASSERT_NE(board.Pull("site-0", absl::Now()), nullptr);
  ASSERT_NE(board.Pull("site-0", absl::Now()), nullptr);
  v1::PushResultRequest answer;
  answer.set_work_id("b/s2");
  ASSERT_OK(board.Push("site-0", answer));
  EXPECT_EQ(board.LargestAnswer("site-0"), 1000u) << "answered: only the small work awaits it";
  board.Close("a/s0");
  EXPECT_EQ(board.LargestAnswer("site-0"), 0u);
  EXPECT_EQ(board.LargestAnswer("site-1"), uint64_t{5} << 20);
}

// A step's model as a delta goes only to a site that accepts deltas and lists the delta's
// base among the first eight models it holds; every other site gets the model whole. Its
// data apart is served only when asked for with `delta`.
TEST(WorkWireTest, TheModelGoesAsADeltaOnlyToSitesThatHoldItsBase) {
  WorkBoard board;
  class NullSink : public ResultSink {
    absl::Status Accept(const std::string&, const v1::PushResultRequest&) override {
      return absl::OkStatus();
    }
  };
  const std::shared_ptr<const std::string> shared = Shared(1000);
  v1::WorkItem delta_fields;
  delta_fields.set_model_hash(std::string(32, 'm'));
  delta_fields.mutable_model_delta()->set_base_hash(std::string(32, 'b'));
  delta_fields.mutable_model_delta()->set_data_size(5000);
  auto variant = std::make_shared<ModelDeltaVariant>();
  variant->base_hash = std::string(32, 'b');
  variant->shared = std::make_shared<const std::string>(delta_fields.SerializeAsString());
  variant->data = std::make_shared<const std::string>(5000, 'd');
  std::map<std::string, v1::WorkItem> items;
  items["site-0"] = Own("w/s0", "w");
  ASSERT_OK(board.Post("w/s0", std::move(items), std::make_shared<NullSink>(), shared, nullptr, 0,
                       variant));
  std::shared_ptr<const PostedItem> item = board.Pull("site-0", absl::Now());
  ASSERT_NE(item, nullptr);

  v1::PullWorkRequest holds;
  holds.set_accepts_model_delta(true);
  holds.add_held_model_hashes(std::string(32, 'x'));
  holds.add_held_model_hashes(std::string(32, 'b'));
  v1::PullWorkResponse response = Parse(PullWorkResponseBytes(*item, "", holds));
  EXPECT_FALSE(response.work().has_model());
  EXPECT_EQ(response.work().model_delta().base_hash(), std::string(32, 'b'));
  EXPECT_EQ(response.work().model_delta().data_size(), 5000u);
  EXPECT_EQ(response.work().secagg_session(), "w") << "the site's own fields kept";

  v1::PullWorkRequest old_site;  // accepts nothing: a daemon from before deltas
  v1::PullWorkRequest not_accepting = holds;
  not_accepting.set_accepts_model_delta(false);
  v1::PullWorkRequest other_base;
  other_base.set_accepts_model_delta(true);
  other_base.add_held_model_hashes(std::string(32, 'x'));
  v1::PullWorkRequest listed_ninth;
  listed_ninth.set_accepts_model_delta(true);
  for (int i = 0; i < 8; ++i) listed_ninth.add_held_model_hashes(std::string(32, 'x'));
  listed_ninth.add_held_model_hashes(std::string(32, 'b'));
  for (const v1::PullWorkRequest* r : {&old_site, &not_accepting, &other_base, &listed_ninth}) {
    response = Parse(PullWorkResponseBytes(*item, "", *r));
    EXPECT_FALSE(response.work().has_model_delta()) << r->ShortDebugString().substr(0, 80);
    EXPECT_EQ(response.work().model().values_size(), 1000);
  }
  EXPECT_EQ(board.ModelFor("w/s0", "site-0", /*delta=*/true).get(), variant->data.get());
  EXPECT_EQ(board.ModelFor("w/s0", "site-0", /*delta=*/false), nullptr) << "no model apart";
}

}  // namespace
}  // namespace tessera::coordinator
