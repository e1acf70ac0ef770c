#include "coordinator/internal/task_id.h"

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace tessera::coordinator::internal {
namespace {

constexpr std::string_view kTaskIdPrefix = "task-";

}  // namespace

std::string FormatTaskId(uint64_t seq) { return std::string(kTaskIdPrefix) + std::to_string(seq); }

std::optional<uint64_t> ParseTaskId(std::string_view task_id) {
  if (!task_id.starts_with(kTaskIdPrefix)) return std::nullopt;
  const std::string_view digits = task_id.substr(kTaskIdPrefix.size());
  // from_chars accepts no sign or space, but would accept leading zeros.
  if (digits.empty() || digits.front() == '0') return std::nullopt;
  uint64_t seq = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return seq;
}

absl::StatusOr<std::string> StatisticsKey(const std::string& dataset_id,
                                          const std::vector<std::string>& columns) {
  if (dataset_id.empty() || columns.empty()) {
    return absl::InvalidArgumentError("pooled statistics need a dataset id and columns");
  }
  std::string key = dataset_id;
  key.push_back('\0');
  for (const std::string& column : columns) {
    key += column;
    key.push_back('\0');
  }
  return key;
}

}  // namespace tessera::coordinator::internal
