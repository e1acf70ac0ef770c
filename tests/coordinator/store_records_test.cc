// The coordinator store's keys and record decoding as pure functions
// (coordinator/internal/store_records.h); the same checks through RocksDB are in
// rocksdb_store_test.cc.
#include "coordinator/internal/store_records.h"

#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/unknown_field_set.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator::internal {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(StoreRecordsTest, KeysAreBigEndianSoThatByteOrderIsNumericOrder) {
  EXPECT_EQ(TaskKey(1), std::string("\0\0\0\0\0\0\0\x01", 8));
  EXPECT_LT(TaskKey(255), TaskKey(256));
  EXPECT_EQ(ReadBigEndian(TaskKey(0x0102030405060708)), 0x0102030405060708u);
  EXPECT_EQ(RoundKey("task-1", 258), std::string("task-1\0\0\0\x01\x02", 11));
  EXPECT_LT(RoundKey("task-1", 9), RoundKey("task-1", 10));
  // A task id never matches the prefix of a longer one.
  EXPECT_NE(RoundKey("task-10", 1).rfind(RoundPrefix("task-1"), 0), 0u);
}

TEST(StoreRecordsTest, ARecordDecodesUnderItsOwnKeyOnly) {
  v1::TaskRecord task;
  task.set_task_id("task-7");
  const std::string bytes = task.SerializeAsString();
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord decoded, DecodeTask(TaskKey(7), bytes));
  EXPECT_EQ(decoded.task_id(), "task-7");
  EXPECT_THAT(DecodeTask(TaskKey(1), bytes),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("of task-1 has task_id \"task-7\"")));
  EXPECT_THAT(DecodeTask("short", bytes),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("length 5, want 8")));
  EXPECT_THAT(DecodeTask(TaskKey(7), "\xff\xff"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not parse")));

  v1::RoundRecord round;
  round.set_task_id("task-7");
  round.set_round(3);
  ASSERT_OK(DecodeRound("task-7", RoundKey("task-7", 3), round.SerializeAsString()));
  EXPECT_THAT(
      DecodeRound("task-7", RoundKey("task-7", 4), round.SerializeAsString()),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("task-7 round 4 is for task-7 round 3")));
  EXPECT_THAT(DecodeRound("task-8", RoundKey("task-7", 3), round.SerializeAsString()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("rounds key of task-8")));

  v1::ClientRecord client;
  client.set_client_id("hospital-a");
  ASSERT_OK(DecodeClient("hospital-a", client.SerializeAsString()));
  EXPECT_THAT(DecodeClient("hospital-b", client.SerializeAsString()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("has client_id \"hospital-a\"")));

  v1::InFlightRound in_flight;
  in_flight.set_task_id("task-7");
  ASSERT_OK(DecodeInFlight("task-7", in_flight.SerializeAsString()));
  EXPECT_THAT(DecodeInFlight("task-1", in_flight.SerializeAsString()),
              StatusIs(absl::StatusCode::kDataLoss));

  v1::PooledStatisticsRecord statistics;
  statistics.set_dataset_id("diabetes");
  statistics.add_columns("age");
  statistics.add_columns("bmi");
  ASSERT_OK(DecodeStatistics("diabetes", {"age", "bmi"}, statistics.SerializeAsString()));
  EXPECT_THAT(DecodeStatistics("diabetes", {"bmi", "age"}, statistics.SerializeAsString()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("names other columns")));
  EXPECT_THAT(DecodeStatistics("diabetes", {"age"}, statistics.SerializeAsString()),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(StoreRecordsTest, CheckpointsAndMetaRecords) {
  v1::ModelParameters parameters;
  parameters.add_values(1.5f);
  parameters.add_values(-2.0f);
  ASSERT_OK_AND_ASSIGN(std::vector<float> values,
                       DecodeCheckpoint("task-1 round 2", parameters.SerializeAsString()));
  EXPECT_THAT(values, ElementsAre(1.5f, -2.0f));
  EXPECT_THAT(DecodeCheckpoint("task-1 round 2", "\x0a\xff"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("models record of task-1 round 2")));

  std::string counter;
  AppendBigEndian(42, 8, &counter);
  EXPECT_THAT(DecodeLastTaskSeq("/srv/store", counter), ::tessera::testing::IsOkAndHolds(42u));
  EXPECT_THAT(DecodeLastTaskSeq("/srv/store", "1234"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("/srv/store has 4 bytes, want 8")));
  std::string version;
  AppendBigEndian(1, 4, &version);
  EXPECT_THAT(DecodeSchemaVersion("/srv/store", version), ::tessera::testing::IsOkAndHolds(1u));
  EXPECT_THAT(DecodeSchemaVersion("/srv/store", counter), StatusIs(absl::StatusCode::kDataLoss));
}

// An unparseable record is named by its family and key, never quoted.
TEST(StoreRecordsTest, AnUnparseableRecordIsNamedNotQuoted) {
  const std::string secret = "\x0a\x08SECRETSS\xff";
  for (const absl::Status& status :
       {DecodeTask(TaskKey(1), secret).status(), DecodeClient("c", secret).status(),
        DecodeInFlight("task-1", secret).status(), DecodeCheckpoint("d", secret).status()}) {
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kDataLoss, Not(HasSubstr("SECRETSS"))));
  }
}

// The values of an in-flight record (schema version 3): the light part is what
// InFlightWithoutBulk copies (a progress write), unknown fields included; the bulk and
// model parts view the record's own bytes (nothing model-sized copied); together they parse
// as the whole record.
std::string Joined(const std::vector<std::string_view>& pieces) {
  std::string out;
  for (std::string_view piece : pieces) out.append(piece);
  return out;
}

// Whether `piece` lies within `bytes`.
bool Within(std::string_view piece, std::string_view bytes) {
  return piece.data() >= bytes.data() && piece.data() + piece.size() <= bytes.data() + bytes.size();
}

TEST(StoreRecordsTest, AnInFlightRecordIsALightPartAndViewsOfItsModelSizedFields) {
  v1::InFlightRound record;
  record.set_task_id("task-3");
  record.set_round(4);
  record.set_server_snapshot(std::string(1000, 's'));
  record.add_cohort("site-a");
  for (int i = 0; i < 300; ++i) record.mutable_next_model()->add_values(0.5f * i - 7.25f);
  record.set_strategy_state("state");
  record.add_drops("site-b");
  // An unknown field (from a newer version), field 9999 as a varint.
  record.GetReflection()->MutableUnknownFields(&record)->AddVarint(9999, 7);

  const InFlightBulkPieces pieces(record);
  EXPECT_TRUE(Within(pieces.bulk()[2], record.server_snapshot()));
  const std::string_view floats(reinterpret_cast<const char*>(record.next_model().values().data()),
                                4 * 300);
  EXPECT_TRUE(Within(pieces.model().back(), floats));
  const std::string light_bytes = InFlightWithoutBulk(record).SerializeAsString();
  v1::InFlightRound light, bulk, model, joined;
  ASSERT_TRUE(light.ParseFromString(light_bytes));
  ASSERT_TRUE(bulk.ParseFromString(Joined(pieces.bulk())));
  ASSERT_TRUE(model.ParseFromString(Joined(pieces.model())));
  ASSERT_TRUE(joined.ParseFromString(light_bytes + Joined(pieces.bulk()) + Joined(pieces.model())));
  EXPECT_EQ(joined.SerializeAsString(), record.SerializeAsString());
  EXPECT_EQ(bulk.task_id(), "task-3");
  EXPECT_EQ(bulk.server_snapshot().size(), 1000u);
  EXPECT_EQ(bulk.strategy_state(), "state");
  EXPECT_FALSE(bulk.has_next_model());
  EXPECT_EQ(bulk.cohort_size(), 0);
  EXPECT_EQ(model.task_id(), "task-3");
  EXPECT_EQ(model.next_model().SerializeAsString(), record.next_model().SerializeAsString());
  EXPECT_TRUE(model.server_snapshot().empty());
  EXPECT_TRUE(light.server_snapshot().empty());
  EXPECT_FALSE(light.has_next_model());
  EXPECT_TRUE(light.strategy_state().empty());
  EXPECT_EQ(light.GetReflection()->GetUnknownFields(light).field_count(), 1);
  EXPECT_EQ(light.cohort(0), "site-a");
  EXPECT_EQ(light.drops(0), "site-b");
}

TEST(StoreRecordsTest, InFlightPiecesOfARecordWithoutModelSizedFieldsAreEmpty) {
  v1::InFlightRound record;
  record.set_task_id("task-3");
  record.set_round(1);
  const InFlightBulkPieces none(record);
  EXPECT_TRUE(none.bulk().empty());
  EXPECT_TRUE(none.model().empty());
  // A model with no parameters is still a model (has_next_model), and one with a field of
  // a newer version keeps it.
  record.mutable_next_model();
  const InFlightBulkPieces empty_model(record);
  v1::InFlightRound parsed;
  ASSERT_TRUE(parsed.ParseFromString(Joined(empty_model.model())));
  EXPECT_TRUE(parsed.has_next_model());
  record.mutable_next_model()->add_values(1.0f);
  record.mutable_next_model()
      ->GetReflection()
      ->MutableUnknownFields(record.mutable_next_model())
      ->AddVarint(99, 3);
  const InFlightBulkPieces newer(record);
  ASSERT_TRUE(parsed.ParseFromString(Joined(newer.model())));
  EXPECT_EQ(parsed.next_model().SerializeAsString(), record.next_model().SerializeAsString());
}

// A checkpoint written as the store writes one is read from its words (PackedModelWords);
// any other encoding protobuf accepts still decodes, to the same floats.
TEST(StoreRecordsTest, CheckpointsAreReadFromTheirWordsOrParsedAsProtobufReadsThem) {
  const std::vector<float> values = {1.5f, -2.0f, 0.25f};
  v1::ModelParameters parameters;
  parameters.mutable_values()->Add(values.begin(), values.end());
  const std::string canonical = parameters.SerializeAsString();
  ASSERT_TRUE(PackedModelWords(canonical).has_value());
  EXPECT_EQ(*PackedModelWords(canonical), canonical.substr(2));
  EXPECT_THAT(PackedModelWords(""), ::testing::Optional(std::string_view()));
  const std::vector<float> big(40000, -0.125f);  // a length of three varint bytes
  v1::ModelParameters big_parameters;
  big_parameters.mutable_values()->Add(big.begin(), big.end());
  ASSERT_TRUE(PackedModelWords(big_parameters.SerializeAsString()).has_value());
  EXPECT_EQ(PackedModelWords(big_parameters.SerializeAsString())->size(), 4 * big.size());
  EXPECT_THAT(DecodeCheckpoint("task-1 round 2", big_parameters.SerializeAsString()),
              ::tessera::testing::IsOkAndHolds(big));

  // Other encodings of the same message: the length as a longer varint, the floats one
  // field each (unpacked), an unknown field after them.
  const std::string longer_varint = std::string("\x0a\x8c\x00", 3) + canonical.substr(2);
  std::string unpacked;
  for (float v : values) {
    unpacked += '\x0d';
    unpacked.append(reinterpret_cast<const char*>(&v), 4);
  }
  const std::string with_unknown = canonical + std::string("\x10\x01", 2);
  for (const std::string& other : {longer_varint, unpacked, with_unknown}) {
    EXPECT_FALSE(PackedModelWords(other).has_value());
    EXPECT_THAT(DecodeCheckpoint("task-1 round 2", other),
                ::tessera::testing::IsOkAndHolds(values));
  }
  // An empty packed field is no parameters, as protobuf reads it (none is written).
  EXPECT_FALSE(PackedModelWords(std::string("\x0a\x00", 2)).has_value());
  EXPECT_THAT(DecodeCheckpoint("task-1 round 2", std::string("\x0a\x00", 2)),
              ::tessera::testing::IsOkAndHolds(::testing::IsEmpty()));
  // Not a model: refused as it was.
  for (const std::string& broken :
       {std::string("\x0a\x0b", 2) + canonical.substr(2),
        std::string("\x0a\x0d", 2) + canonical.substr(2), canonical.substr(0, 5)}) {
    EXPECT_FALSE(PackedModelWords(broken).has_value());
    EXPECT_THAT(DecodeCheckpoint("task-1 round 2", broken),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("task-1 round 2")));
  }
}

TEST(StoreRecordsTest, ModelPiecesAreTheSerializedModel) {
  for (const std::vector<float>& values :
       {std::vector<float>{}, std::vector<float>{1.5f}, std::vector<float>(40000, -0.125f)}) {
    v1::ModelParameters parameters;
    parameters.mutable_values()->Add(values.begin(), values.end());
    const ModelPieces pieces(values);
    EXPECT_EQ(Joined(pieces.pieces()), parameters.SerializeAsString());
    EXPECT_EQ(pieces.size(), parameters.ByteSizeLong());
  }
}

}  // namespace
}  // namespace tessera::coordinator::internal
