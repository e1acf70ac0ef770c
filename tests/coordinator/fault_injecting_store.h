// FaultInjectingStore: a coordinator Store for tests of error paths and crashes. It forwards
// every call to a base store and refuses writes on demand, before they reach the base, so a
// refused write changes nothing: after the next `n` writes (FailWritesAfter), or whenever a
// hook says so (e.g. the commit of one round: what a crash right before that commit leaves).
// Test code only; the daemons never use it.
//
// Thread-safe.
#ifndef TESSERA_TESTS_COORDINATOR_FAULT_INJECTING_STORE_H_
#define TESSERA_TESTS_COORDINATOR_FAULT_INJECTING_STORE_H_

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store.h"

namespace tessera::coordinator::testing {

class FaultInjectingStore : public Store {
 public:
  // Owns `base`.
  explicit FaultInjectingStore(std::unique_ptr<Store> base);
  // Borrows `base`, which must outlive this store (a restart test keeps the base store
  // across two coordinators).
  explicit FaultInjectingStore(Store* base);

  // The next `n` writes succeed; every write after them fails with UNAVAILABLE (and
  // changes nothing) until Heal(). Reads always pass through.
  void FailWritesAfter(int n);
  void Heal();
  // Called before every write with the operation's name ("CommitRound", "PutInFlight", ...)
  // and, for CommitRound, the round being committed (else -1); a non-OK status refuses the
  // write with that status.
  using WriteHook = std::function<absl::Status(const std::string& op, int round)>;
  void SetWriteHook(WriteHook hook);

  absl::StatusOr<std::string> CreateTask(v1::TaskRecord record) override;
  absl::Status UpdateTask(const v1::TaskRecord& record) override;
  absl::StatusOr<v1::TaskRecord> GetTask(const std::string& task_id) override;
  absl::StatusOr<std::vector<v1::TaskRecord>> ListTasks() override;
  using Store::CommitRound;
  absl::Status CommitRound(const v1::TaskRecord& task, const v1::RoundRecord& round,
                           std::span<const float> model, const v1::RoundRecord* previous) override;
  absl::StatusOr<std::vector<v1::RoundRecord>> ListRounds(const std::string& task_id) override;
  absl::StatusOr<std::vector<float>> GetCheckpoint(const std::string& task_id,
                                                   uint32_t round) override;
  absl::Status PutInFlight(const v1::InFlightRound& record) override;
  absl::StatusOr<v1::InFlightRound> GetInFlight(const std::string& task_id) override;
  absl::Status DeleteInFlight(const std::string& task_id) override;
  absl::Status PutStatistics(const v1::PooledStatisticsRecord& record) override;
  absl::StatusOr<v1::PooledStatisticsRecord> GetStatistics(
      const std::string& dataset_id, const std::vector<std::string>& columns) override;
  absl::Status PutClient(const v1::ClientRecord& record) override;
  absl::StatusOr<v1::ClientRecord> GetClient(const std::string& client_id) override;
  absl::StatusOr<std::vector<v1::ClientRecord>> ListClients() override;
  absl::Status Checkpoint(const std::string& directory) override;

 private:
  absl::Status MaybeFail(const char* op, int round = -1) ABSL_LOCKS_EXCLUDED(mu_);

  const std::unique_ptr<Store> owned_;
  Store* const base_;
  absl::Mutex mu_;
  // -1: never fail. Otherwise the number of writes still allowed.
  int writes_left_ ABSL_GUARDED_BY(mu_) = -1;
  WriteHook hook_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator::testing

#endif  // TESSERA_TESTS_COORDINATOR_FAULT_INJECTING_STORE_H_
