// Task ids ("task-<n>", n >= 1, decimal without leading zeros) and their sequence
// numbers, and the keys of pooled statistics, shared by the store implementations so that
// they agree on which records exist.
#ifndef TESSERA_COORDINATOR_INTERNAL_TASK_ID_H_
#define TESSERA_COORDINATOR_INTERNAL_TASK_ID_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::coordinator::internal {

// "task-<seq>". `seq` >= 1.
std::string FormatTaskId(uint64_t seq);

// The sequence number of a canonical task id; nullopt for anything FormatTaskId does not
// produce ("task-0", "task-01", "task-+1", "task-1 ", "Task-1", overflow, ...), so that
// two spellings never name the same task.
std::optional<uint64_t> ParseTaskId(std::string_view task_id);

// The key of pooled statistics: the dataset id, a NUL, then each column followed by a NUL
// (column names hold no NUL), so distinct (dataset, columns) never share a key.
// INVALID_ARGUMENT if the dataset id or the column list is empty.
absl::StatusOr<std::string> StatisticsKey(const std::string& dataset_id,
                                          const std::vector<std::string>& columns);

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_TASK_ID_H_
