#include "coordinator/internal/store_records.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "coordinator/internal/task_id.h"
#include "coordinator/internal/wire_fields.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/field_mask_util.h"

namespace tessera::coordinator::internal {
namespace {

template <typename Message>
absl::StatusOr<Message> ParseValue(std::string_view bytes, const char* kind,
                                   const std::string& key_description) {
  Message message;
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(
        absl::StrCat("stored ", kind, " record of ", key_description, " does not parse"));
  }
  return message;
}

}  // namespace

void AppendBigEndian(uint64_t value, int bytes, std::string* out) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

uint64_t ReadBigEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

std::string TaskKey(uint64_t seq) {
  std::string key;
  AppendBigEndian(seq, 8, &key);
  return key;
}

std::string RoundPrefix(const std::string& task_id) {
  std::string prefix = task_id;
  prefix.push_back('\0');
  return prefix;
}

std::string RoundKey(const std::string& task_id, uint32_t round) {
  std::string key = RoundPrefix(task_id);
  AppendBigEndian(round, 4, &key);
  return key;
}

absl::StatusOr<v1::TaskRecord> DecodeTask(std::string_view key, std::string_view value) {
  if (key.size() != 8) {
    return absl::DataLossError(
        absl::StrCat("stored tasks key has length ", key.size(), ", want 8"));
  }
  const std::string id = FormatTaskId(ReadBigEndian(key));
  ASSIGN_OR_RETURN(v1::TaskRecord record, ParseValue<v1::TaskRecord>(value, "tasks", id));
  if (record.task_id() != id) {
    return absl::DataLossError(
        absl::StrCat("stored tasks record of ", id, " has task_id \"", record.task_id(), "\""));
  }
  return record;
}

absl::StatusOr<v1::RoundRecord> DecodeRound(const std::string& task_id, std::string_view key,
                                            std::string_view value) {
  const std::string prefix = RoundPrefix(task_id);
  if (key.size() != prefix.size() + 4 || key.substr(0, prefix.size()) != prefix) {
    return absl::DataLossError(
        absl::StrCat("stored rounds key of ", task_id, " has length ", key.size()));
  }
  const auto round = static_cast<uint32_t>(ReadBigEndian(key.substr(prefix.size())));
  const std::string description = absl::StrCat(task_id, " round ", round);
  ASSIGN_OR_RETURN(v1::RoundRecord record,
                   ParseValue<v1::RoundRecord>(value, "rounds", description));
  if (record.task_id() != task_id || record.round() != round) {
    return absl::DataLossError(absl::StrCat("stored rounds record of ", description, " is for ",
                                            record.task_id(), " round ", record.round()));
  }
  return record;
}

absl::StatusOr<std::vector<float>> DecodeCheckpoint(const std::string& description,
                                                    std::string_view value) {
  if (const std::optional<std::string_view> words = PackedModelWords(value)) {
    // The floats straight from the words: no parsed message (a model-sized copy) between.
    std::vector<float> values(words->size() / 4);
    for (size_t i = 0; i < values.size(); ++i) {
      const auto* at = reinterpret_cast<const unsigned char*>(words->data() + 4 * i);
      values[i] = std::bit_cast<float>(
          static_cast<uint32_t>(at[0]) | (static_cast<uint32_t>(at[1]) << 8) |
          (static_cast<uint32_t>(at[2]) << 16) | (static_cast<uint32_t>(at[3]) << 24));
    }
    return values;
  }
  ASSIGN_OR_RETURN(v1::ModelParameters parameters,
                   ParseValue<v1::ModelParameters>(value, "models", description));
  return std::vector<float>(parameters.values().begin(), parameters.values().end());
}

std::string InFlightBulkKey(const std::string& task_id) {
  // A NUL never occurs in a task id ("task-<n>").
  return task_id + std::string("\0bulk", 5);
}

std::string InFlightModelKey(const std::string& task_id) {
  return task_id + std::string("\0model", 6);
}

namespace {

bool IsBulkField(int number) {
  return number == v1::InFlightRound::kServerSnapshotFieldNumber ||
         number == v1::InFlightRound::kNextModelFieldNumber ||
         number == v1::InFlightRound::kStrategyStateFieldNumber;
}

// A length-delimited field's tag and `length`.
std::string LengthDelimitedHeader(int field_number, size_t length) {
  std::string header;
  AppendFieldHeader(field_number, length, &header);
  return header;
}

}  // namespace

size_t PiecesSize(std::span<const std::string_view> pieces) {
  size_t total = 0;
  for (std::string_view piece : pieces) total += piece.size();
  return total;
}

absl::Status CheckSnapshotApart(const v1::InFlightRound& record) {
  if (record.server_snapshot().empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("PutInFlightWithSnapshot ", record.task_id(),
                   ": the record holds a server snapshot besides the one given apart"));
}

InFlightBulkPieces::InFlightBulkPieces(const v1::InFlightRound& record,
                                       std::span<const std::string_view> snapshot) {
  task_id_field_ =
      LengthDelimitedHeader(v1::InFlightRound::kTaskIdFieldNumber, record.task_id().size()) +
      record.task_id();
  const std::string_view whole_snapshot = record.server_snapshot();
  if (snapshot.empty() && !whole_snapshot.empty()) snapshot = std::span(&whole_snapshot, 1);
  const size_t snapshot_size = PiecesSize(snapshot);
  const std::string& strategy = record.strategy_state();
  if (snapshot_size > 0 || !strategy.empty()) {
    bulk_.push_back(task_id_field_);
    if (snapshot_size > 0) {
      snapshot_header_ =
          LengthDelimitedHeader(v1::InFlightRound::kServerSnapshotFieldNumber, snapshot_size);
      bulk_.push_back(snapshot_header_);
      for (std::string_view piece : snapshot) {
        if (!piece.empty()) bulk_.push_back(piece);
      }
    }
    if (!strategy.empty()) {
      strategy_header_ =
          LengthDelimitedHeader(v1::InFlightRound::kStrategyStateFieldNumber, strategy.size());
      bulk_.insert(bulk_.end(), {strategy_header_, strategy});
    }
  }
  if (!record.has_next_model()) return;
  const v1::ModelParameters& next = record.next_model();
  model_.push_back(task_id_field_);
  if (next.GetReflection()->GetUnknownFields(next).empty()) {
    model_values_.emplace(
        std::span<const float>(next.values().data(), static_cast<size_t>(next.values_size())));
    model_header_ =
        LengthDelimitedHeader(v1::InFlightRound::kNextModelFieldNumber, model_values_->size());
    model_.push_back(model_header_);
    model_.insert(model_.end(), model_values_->pieces().begin(), model_values_->pieces().end());
  } else {
    model_serialized_ = next.SerializeAsString();
    model_header_ =
        LengthDelimitedHeader(v1::InFlightRound::kNextModelFieldNumber, model_serialized_.size());
    model_.insert(model_.end(), {model_header_, model_serialized_});
  }
}

v1::InFlightRound InFlightWithoutBulk(const v1::InFlightRound& record) {
  static const google::protobuf::FieldMask* const kLight = [] {
    auto* mask = new google::protobuf::FieldMask;
    const google::protobuf::Descriptor* descriptor = v1::InFlightRound::descriptor();
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* field = descriptor->field(i);
      if (!IsBulkField(field->number())) mask->add_paths(field->name());
    }
    return mask;
  }();
  v1::InFlightRound light;
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(
      record, *kLight, google::protobuf::util::FieldMaskUtil::MergeOptions(), &light);
  light.GetReflection()->MutableUnknownFields(&light)->MergeFrom(
      record.GetReflection()->GetUnknownFields(record));
  return light;
}

absl::StatusOr<v1::InFlightRound> DecodeInFlight(const std::string& task_id,
                                                 std::string_view value) {
  ASSIGN_OR_RETURN(v1::InFlightRound record,
                   ParseValue<v1::InFlightRound>(value, "inflight", task_id));
  if (record.task_id() != task_id) {
    return absl::DataLossError(absl::StrCat("stored inflight record of ", task_id,
                                            " has task_id \"", record.task_id(), "\""));
  }
  return record;
}

absl::StatusOr<v1::ClientRecord> DecodeClient(const std::string& client_id,
                                              std::string_view value) {
  const std::string description = "client \"" + client_id + "\"";
  ASSIGN_OR_RETURN(v1::ClientRecord record,
                   ParseValue<v1::ClientRecord>(value, "clients", description));
  if (record.client_id() != client_id) {
    return absl::DataLossError(absl::StrCat("stored clients record of ", description,
                                            " has client_id \"", record.client_id(), "\""));
  }
  return record;
}

absl::StatusOr<v1::PooledStatisticsRecord> DecodeStatistics(const std::string& dataset_id,
                                                            const std::vector<std::string>& columns,
                                                            std::string_view value) {
  ASSIGN_OR_RETURN(v1::PooledStatisticsRecord record,
                   ParseValue<v1::PooledStatisticsRecord>(value, "statistics", dataset_id));
  if (record.dataset_id() != dataset_id ||
      !std::equal(record.columns().begin(), record.columns().end(), columns.begin(),
                  columns.end())) {
    return absl::DataLossError(absl::StrCat("stored statistics record of dataset ", dataset_id,
                                            " names other columns or another dataset"));
  }
  return record;
}

absl::StatusOr<uint64_t> DecodeLastTaskSeq(const std::string& directory, std::string_view value) {
  if (value.size() != 8) {
    return absl::DataLossError(absl::StrCat("stored meta record last_task_seq in ", directory,
                                            " has ", value.size(), " bytes, want 8"));
  }
  return ReadBigEndian(value);
}

absl::StatusOr<uint64_t> DecodeSchemaVersion(const std::string& directory, std::string_view value) {
  if (value.size() != 4) {
    return absl::DataLossError(absl::StrCat("stored meta record schema_version in ", directory,
                                            " has ", value.size(), " bytes, want 4"));
  }
  return ReadBigEndian(value);
}

absl::Status CheckCommitRound(const v1::TaskRecord& task, const v1::RoundRecord& round,
                              const v1::RoundRecord* previous) {
  if (round.task_id() != task.task_id()) {
    return absl::InvalidArgumentError(absl::StrCat("CommitRound: round.task_id \"", round.task_id(),
                                                   "\" differs from task.task_id \"",
                                                   task.task_id(), "\""));
  }
  if (previous != nullptr && (previous->task_id() != task.task_id() || round.round() == 0 ||
                              previous->round() != round.round() - 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CommitRound: the previous record (", previous->task_id(), " round ", previous->round(),
        ") is not of ", task.task_id(), " round ", round.round(), " - 1"));
  }
  return absl::OkStatus();
}

absl::Status PreviousNotCommitted(const v1::RoundRecord& previous) {
  return absl::InvalidArgumentError(
      absl::StrCat("CommitRound: ", previous.task_id(), " round ", previous.round(),
                   " is not committed: its record cannot be replaced"));
}

}  // namespace tessera::coordinator::internal
