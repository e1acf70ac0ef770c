// Fuzz target: the coordinator store's record decoding (coordinator/internal/
// store_records.h) without a database, at libFuzzer speed; coordinator_store keeps the
// whole-store path (RocksDB open, checksums, iteration). The input is laid out as for
// coordinator_store (raw_store.h), over the same column families, so each target's corpus
// seeds the other. Every record left after the input's puts and erases is decoded the way
// the store decodes what it finds under that key: a refusal is DATA_LOSS, and a record
// accepted, encoded again, is accepted again as the same record.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_split.h"
#include "coordinator/internal/store_records.h"
#include "coordinator/internal/task_id.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/raw_store.h"
#include "tests/fuzz/record_fuzz_util.h"

namespace {

using namespace tessera;
namespace records = coordinator::internal;

std::string Joined(const std::vector<std::string_view>& pieces) {
  std::string out;
  for (std::string_view piece : pieces) out.append(piece);
  return out;
}

// The families of a fresh coordinator store, sorted by name (raw_store.h's Families).
const std::vector<std::string>& Families() {
  static const std::vector<std::string>* const families = new std::vector<std::string>{
      "clients", "default", "inflight", "meta", "models", "rounds", "statistics", "tasks"};
  return *families;
}

void DecodeOne(const std::string& family, const std::string& key, const std::string& value) {
  using fuzz::DecodeChecked;
  using fuzz::RequireDataLossOrOk;
  if (family == "tasks") {
    (void)DecodeChecked(records::DecodeTask, key, value);
  } else if (family == "rounds") {
    const std::string task_id = key.substr(0, key.find('\0'));
    (void)DecodeChecked(
        [&](std::string_view k, std::string_view v) { return records::DecodeRound(task_id, k, v); },
        key, value);
  } else if (family == "models") {
    const absl::StatusOr<std::vector<float>> values =
        records::DecodeCheckpoint(key.substr(0, key.find('\0')), value);
    RequireDataLossOrOk(values.status());
    if (values.ok()) {
      // Read from its words or parsed, the floats protobuf reads, bit for bit; serialized
      // again, the words are found, and they are the value's own when it had them.
      v1::ModelParameters parsed;
      if (!parsed.ParseFromString(value) ||
          static_cast<size_t>(parsed.values_size()) != values->size() ||
          (!values->empty() &&
           std::memcmp(parsed.values().data(), values->data(), 4 * values->size()) != 0)) {
        std::abort();
      }
      const std::shared_ptr<const std::string> bytes = records::SerializedModel(*values);
      if (!records::PackedModelWords(*bytes).has_value() ||
          (records::PackedModelWords(value).has_value() && *bytes != value)) {
        std::abort();
      }
    }
  } else if (family == "inflight") {
    // Written as its values (schema version 3): for a message, whatever its fields, the
    // light part and the pieces of the model-sized fields together parse as the whole.
    v1::InFlightRound whole;
    if (whole.ParseFromString(value)) {
      const records::InFlightBulkPieces pieces(whole);
      v1::InFlightRound joined;
      if (!joined.ParseFromString(records::InFlightWithoutBulk(whole).SerializeAsString() +
                                  Joined(pieces.bulk()) + Joined(pieces.model())) ||
          joined.SerializeAsString() != whole.SerializeAsString()) {
        std::abort();
      }
    }
    (void)DecodeChecked(
        [](std::string_view k, std::string_view v) {
          return records::DecodeInFlight(std::string(k), v);
        },
        key, value);
  } else if (family == "clients") {
    (void)DecodeChecked([](std::string_view k,
                           std::string_view v) { return records::DecodeClient(std::string(k), v); },
                        key, value);
  } else if (family == "statistics") {
    std::vector<std::string> parts = absl::StrSplit(key, '\0');
    if (parts.size() < 3) return;
    const std::string dataset = parts.front();
    parts.erase(parts.begin());
    parts.pop_back();  // the key ends with a NUL
    (void)DecodeChecked(
        [&](std::string_view, std::string_view v) {
          return records::DecodeStatistics(dataset, parts, v);
        },
        key, value);
  } else if (family == "meta") {
    RequireDataLossOrOk(key == "last_task_seq"
                            ? records::DecodeLastTaskSeq("store", value).status()
                            : records::DecodeSchemaVersion("store", value).status());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  for (const auto& [family, records] : fuzz::Apply(fuzz::ReadRecords(in, Families()))) {
    for (const auto& [key, value] : records) DecodeOne(family, key, value);
  }
  return 0;
}
