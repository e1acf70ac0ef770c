// FaultInjectingStore: counts write calls and refuses them before they reach the base
// store, so a refused write changes nothing. A write counts when it is attempted, whether
// or not the base store then accepts it.
#include "tests/coordinator/fault_injecting_store.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "coordinator/store.h"
#include "proto/state.pb.h"

namespace tessera::coordinator::testing {

FaultInjectingStore::FaultInjectingStore(std::unique_ptr<Store> base)
    : owned_(std::move(base)), base_(owned_.get()) {
  if (base_ == nullptr) {
    // A broken test set-up, not a runtime condition.
    std::fprintf(stderr, "FaultInjectingStore: base store is null\n");
    std::abort();
  }
}

FaultInjectingStore::FaultInjectingStore(Store* base) : base_(base) {
  if (base_ == nullptr) {
    std::fprintf(stderr, "FaultInjectingStore: base store is null\n");
    std::abort();
  }
}

void FaultInjectingStore::SetWriteHook(WriteHook hook) {
  absl::MutexLock lock(&mu_);
  hook_ = std::move(hook);
}

void FaultInjectingStore::FailWritesAfter(int n) {
  absl::MutexLock lock(&mu_);
  // -1 means "never fail" internally; a negative request means "fail from now on".
  writes_left_ = n < 0 ? 0 : n;
}

void FaultInjectingStore::Heal() {
  absl::MutexLock lock(&mu_);
  writes_left_ = -1;
}

absl::Status FaultInjectingStore::MaybeFail(const char* op, int round) {
  absl::MutexLock lock(&mu_);
  if (hook_) RETURN_IF_ERROR(hook_(op, round));
  if (writes_left_ < 0) return absl::OkStatus();
  if (writes_left_ == 0) {
    return absl::UnavailableError(absl::StrCat(op, ": injected write failure"));
  }
  --writes_left_;
  return absl::OkStatus();
}

absl::StatusOr<std::string> FaultInjectingStore::CreateTask(v1::TaskRecord record) {
  RETURN_IF_ERROR(MaybeFail("CreateTask"));
  return base_->CreateTask(std::move(record));
}

absl::Status FaultInjectingStore::UpdateTask(const v1::TaskRecord& record) {
  RETURN_IF_ERROR(MaybeFail("UpdateTask"));
  return base_->UpdateTask(record);
}

absl::StatusOr<v1::TaskRecord> FaultInjectingStore::GetTask(const std::string& task_id) {
  return base_->GetTask(task_id);
}

absl::StatusOr<std::vector<v1::TaskRecord>> FaultInjectingStore::ListTasks() {
  return base_->ListTasks();
}

absl::Status FaultInjectingStore::CommitRound(const v1::TaskRecord& task,
                                              const v1::RoundRecord& round,
                                              std::span<const float> model,
                                              const v1::RoundRecord* previous) {
  RETURN_IF_ERROR(MaybeFail("CommitRound", static_cast<int>(round.round())));
  return base_->CommitRound(task, round, model, previous);
}

absl::StatusOr<std::vector<v1::RoundRecord>> FaultInjectingStore::ListRounds(
    const std::string& task_id) {
  return base_->ListRounds(task_id);
}

absl::StatusOr<std::vector<float>> FaultInjectingStore::GetCheckpoint(const std::string& task_id,
                                                                      uint32_t round) {
  return base_->GetCheckpoint(task_id, round);
}

absl::Status FaultInjectingStore::PutInFlight(const v1::InFlightRound& record) {
  RETURN_IF_ERROR(MaybeFail("PutInFlight"));
  return base_->PutInFlight(record);
}

absl::StatusOr<v1::InFlightRound> FaultInjectingStore::GetInFlight(const std::string& task_id) {
  return base_->GetInFlight(task_id);
}

absl::Status FaultInjectingStore::DeleteInFlight(const std::string& task_id) {
  RETURN_IF_ERROR(MaybeFail("DeleteInFlight"));
  return base_->DeleteInFlight(task_id);
}

absl::Status FaultInjectingStore::PutStatistics(const v1::PooledStatisticsRecord& record) {
  RETURN_IF_ERROR(MaybeFail("PutStatistics"));
  return base_->PutStatistics(record);
}

absl::StatusOr<v1::PooledStatisticsRecord> FaultInjectingStore::GetStatistics(
    const std::string& dataset_id, const std::vector<std::string>& columns) {
  return base_->GetStatistics(dataset_id, columns);
}

absl::Status FaultInjectingStore::PutClient(const v1::ClientRecord& record) {
  RETURN_IF_ERROR(MaybeFail("PutClient"));
  return base_->PutClient(record);
}

absl::StatusOr<v1::ClientRecord> FaultInjectingStore::GetClient(const std::string& client_id) {
  return base_->GetClient(client_id);
}

absl::StatusOr<std::vector<v1::ClientRecord>> FaultInjectingStore::ListClients() {
  return base_->ListClients();
}

absl::Status FaultInjectingStore::Checkpoint(const std::string& directory) {
  return base_->Checkpoint(directory);
}

}  // namespace tessera::coordinator::testing
