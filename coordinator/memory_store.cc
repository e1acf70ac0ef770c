// The in-memory Store: std::map per kind behind one mutex. Records are kept as protos
// (copies in, copies out), so callers never share state with the store.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "coordinator/internal/store_records.h"
#include "coordinator/internal/task_id.h"
#include "coordinator/store.h"
#include "proto/state.pb.h"

namespace tessera::coordinator {
namespace {

using RoundKey = std::pair<std::string, uint32_t>;  // (task id, round)

class MemoryStore final : public Store {
 public:
  absl::StatusOr<std::string> CreateTask(v1::TaskRecord record) override {
    absl::MutexLock lock(&mu_);
    const uint64_t seq = last_task_seq_ + 1;
    record.set_task_id(internal::FormatTaskId(seq));
    std::string id = record.task_id();
    tasks_.emplace(seq, std::move(record));
    last_task_seq_ = seq;
    return id;
  }

  absl::Status UpdateTask(const v1::TaskRecord& record) override {
    absl::MutexLock lock(&mu_);
    auto it = FindTask(record.task_id());
    if (it == tasks_.end()) return TaskNotFound("UpdateTask", record.task_id());
    it->second = record;
    return absl::OkStatus();
  }

  absl::StatusOr<v1::TaskRecord> GetTask(const std::string& task_id) override {
    absl::MutexLock lock(&mu_);
    auto it = FindTask(task_id);
    if (it == tasks_.end()) return TaskNotFound("GetTask", task_id);
    return it->second;
  }

  absl::StatusOr<std::vector<v1::TaskRecord>> ListTasks() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::TaskRecord> out;
    out.reserve(tasks_.size());
    for (const auto& [seq, record] : tasks_) out.push_back(record);
    return out;
  }

  absl::Status CommitRound(const v1::TaskRecord& task, const v1::RoundRecord& round,
                           std::span<const float> model, const v1::RoundRecord* previous) override {
    RETURN_IF_ERROR(internal::CheckCommitRound(task, round, previous));
    absl::MutexLock lock(&mu_);
    auto it = FindTask(task.task_id());
    if (it == tasks_.end()) return TaskNotFound("CommitRound", task.task_id());
    if (previous != nullptr) {
      const RoundKey previous_key(task.task_id(), previous->round());
      if (!rounds_.contains(previous_key)) return internal::PreviousNotCommitted(*previous);
      rounds_[previous_key] = *previous;
    }
    RoundKey key(task.task_id(), round.round());
    rounds_[key] = round;
    models_[key].assign(model.begin(), model.end());
    it->second = task;
    in_flight_.erase(task.task_id());
    return absl::OkStatus();
  }

  absl::Status PutInFlight(const v1::InFlightRound& record) override {
    absl::MutexLock lock(&mu_);
    if (FindTask(record.task_id()) == tasks_.end()) {
      return TaskNotFound("PutInFlight", record.task_id());
    }
    in_flight_[record.task_id()] = record;
    return absl::OkStatus();
  }

  absl::StatusOr<v1::InFlightRound> GetInFlight(const std::string& task_id) override {
    absl::MutexLock lock(&mu_);
    auto it = in_flight_.find(task_id);
    if (it == in_flight_.end()) {
      return absl::NotFoundError(absl::StrCat("GetInFlight: no round in flight for ", task_id));
    }
    return it->second;
  }

  absl::Status DeleteInFlight(const std::string& task_id) override {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(task_id);
    return absl::OkStatus();
  }

  absl::Status PutStatistics(const v1::PooledStatisticsRecord& record) override {
    ASSIGN_OR_RETURN(std::string key,
                     internal::StatisticsKey(record.dataset_id(),
                                             {record.columns().begin(), record.columns().end()}));
    absl::MutexLock lock(&mu_);
    statistics_[key] = record;
    return absl::OkStatus();
  }

  absl::StatusOr<v1::PooledStatisticsRecord> GetStatistics(
      const std::string& dataset_id, const std::vector<std::string>& columns) override {
    ASSIGN_OR_RETURN(std::string key, internal::StatisticsKey(dataset_id, columns));
    absl::MutexLock lock(&mu_);
    auto it = statistics_.find(key);
    if (it == statistics_.end()) {
      return absl::NotFoundError(
          absl::StrCat("GetStatistics: no pooled statistics for dataset ", dataset_id));
    }
    return it->second;
  }

  absl::StatusOr<std::vector<v1::RoundRecord>> ListRounds(const std::string& task_id) override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::RoundRecord> out;
    for (auto it = rounds_.lower_bound(RoundKey(task_id, 0));
         it != rounds_.end() && it->first.first == task_id; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  absl::StatusOr<std::vector<float>> GetCheckpoint(const std::string& task_id,
                                                   uint32_t round) override {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(RoundKey(task_id, round));
    if (it == models_.end()) {
      return absl::NotFoundError(
          absl::StrCat("GetCheckpoint: no checkpoint for ", task_id, " round ", round));
    }
    return it->second;
  }

  absl::Status PutClient(const v1::ClientRecord& record) override {
    if (record.client_id().empty()) {
      return absl::InvalidArgumentError("PutClient: client_id is empty");
    }
    absl::MutexLock lock(&mu_);
    clients_[record.client_id()] = record;
    return absl::OkStatus();
  }

  absl::StatusOr<v1::ClientRecord> GetClient(const std::string& client_id) override {
    absl::MutexLock lock(&mu_);
    auto it = clients_.find(client_id);
    if (it == clients_.end()) {
      return absl::NotFoundError(absl::StrCat("GetClient: no client \"", client_id, "\""));
    }
    return it->second;
  }

  absl::StatusOr<std::vector<v1::ClientRecord>> ListClients() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::ClientRecord> out;
    out.reserve(clients_.size());
    for (const auto& [id, record] : clients_) out.push_back(record);
    return out;
  }

  absl::Status Checkpoint(const std::string& directory) override {
    return absl::UnimplementedError(absl::StrCat(
        "the in-memory coordinator store has nothing on disk to copy into ", directory));
  }

 private:
  static absl::Status TaskNotFound(const char* op, const std::string& task_id) {
    return absl::NotFoundError(absl::StrCat(op, ": no task \"", task_id, "\""));
  }

  std::map<uint64_t, v1::TaskRecord>::iterator FindTask(const std::string& task_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::optional<uint64_t> seq = internal::ParseTaskId(task_id);
    return seq.has_value() ? tasks_.find(*seq) : tasks_.end();
  }

  absl::Mutex mu_;
  uint64_t last_task_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // Keyed by sequence number: iteration order is creation order.
  std::map<uint64_t, v1::TaskRecord> tasks_ ABSL_GUARDED_BY(mu_);
  std::map<RoundKey, v1::RoundRecord> rounds_ ABSL_GUARDED_BY(mu_);
  std::map<RoundKey, std::vector<float>> models_ ABSL_GUARDED_BY(mu_);
  // std::string orders bytewise (unsigned), like RocksDB's default comparator.
  std::map<std::string, v1::ClientRecord> clients_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::InFlightRound> in_flight_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::PooledStatisticsRecord> statistics_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Store> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace tessera::coordinator
