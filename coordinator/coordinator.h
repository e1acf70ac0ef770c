// The coordinator's core, independent of gRPC: the task manager behind the admin service
// and the work hand-out behind the federation service. It owns the store, the client
// registry, the work board and one TaskRunner per unfinished task.
//
// Identities passed in (operator_id, client_id) are certificate subjects the transport
// layer has already verified and role-checked; nothing here trusts a message field for
// who is calling.
//
// Thread-safe.
#ifndef TESSERA_COORDINATOR_COORDINATOR_H_
#define TESSERA_COORDINATOR_COORDINATOR_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/access_control.h"
#include "coordinator/client_registry.h"
#include "coordinator/store.h"
#include "coordinator/task_runner.h"
#include "coordinator/work_board.h"
#include "crypto/signature.h"
#include "crypto/tls.h"
#include "proto/admin.pb.h"
#include "proto/federation.pb.h"

namespace tessera::coordinator {

struct CoordinatorOptions {
  // The federation CA (PEM): every site's certificate in a secure-aggregation session must
  // chain to it.
  std::string ca_cert_pem;
  // A client not heard from for this long is not picked into cohorts.
  absl::Duration client_liveness = absl::Seconds(90);
  // A client with no open long-poll and no call for this long shows STALE (at most
  // client_liveness; after that, OFFLINE): client_registry.h. The daemon sets twice its
  // long-poll time.
  absl::Duration client_stale_after = absl::Seconds(40);
  TaskRunnerOptions runner;
  // The coordinator's certificate (PEM) and a signer with its key, for the model provenance
  // records of ExportModel. Unset (null): ExportModel is FAILED_PRECONDITION.
  std::string certificate_pem;
  std::shared_ptr<const crypto::Signer> signer;
  // Where BackupStore stages its checkpoints (store_backup.h BackupStagingDir). Empty:
  // BackupStore is UNIMPLEMENTED.
  std::string backup_staging_dir;
  // Certificate lifecycle (coordinator/access_control.h): the CRL file (empty: none) and
  // how long a site's bound daemon instance stays live after its last call.
  std::string crl_file;
  absl::Duration instance_liveness = absl::Seconds(10);
  // Largest gRPC message (limits.h): SubmitTask refuses a task whose model or
  // secure-aggregation vector would not fit (INVALID_ARGUMENT naming both sizes).
  size_t max_message_bytes = crypto::kDefaultMaxMessageBytes;
};

class Coordinator {
 public:
  // Loads the client registry from `store`. Does not start any task (see ResumeTasks).
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(std::unique_ptr<Store> store,
                                                             const common::Clock* clock,
                                                             const CoordinatorOptions& options);
  // Shuts down (as Shutdown).
  ~Coordinator();

  // Starts a runner for every task that is neither completed, failed nor cancelled; each
  // goes on from its last committed round.
  absl::Status ResumeTasks();

  // ---- Admin ----
  // INVALID_ARGUMENT naming every bad field (nothing is stored then). Defaults are applied
  // before storing, so the stored spec and its hash say exactly what runs.
  absl::StatusOr<v1::SubmitTaskResponse> SubmitTask(const std::string& operator_id,
                                                    v1::TaskSpec spec);
  absl::StatusOr<std::vector<v1::TaskRecord>> ListTasks();
  // The task and its committed rounds, without the rounds' provenance, and its round in
  // flight (if any) without the session's snapshot, the next model, the strategy's state
  // and the provenance.
  absl::StatusOr<v1::GetTaskResponse> GetTask(const std::string& task_id);
  // One committed round with its provenance. NOT_FOUND for an unknown task or a round not
  // committed.
  absl::StatusOr<v1::RoundRecord> GetRound(const std::string& task_id, uint32_t round);
  // NOT_FOUND for an unknown task, FAILED_PRECONDITION for a finished one.
  absl::Status CancelTask(const std::string& operator_id, const std::string& task_id,
                          const std::string& reason);
  // Every known client with its status as of now (client_registry.h).
  std::vector<v1::ClientRecord> ListClients() const;
  // The status thresholds (ClientRegistry::stale_after, offline_after).
  absl::Duration client_stale_after() const { return registry_.stale_after(); }
  absl::Duration client_offline_after() const { return registry_.offline_after(); }
  // A committed round's model as a file with its signed provenance record
  // (proto/admin.proto ExportModel; model_export.cc). Errors as documented there.
  absl::StatusOr<v1::ExportModelResponse> ExportModel(const v1::ExportModelRequest& request);
  // A consistent backup of the store while everything runs, handed to `send` chunk by
  // chunk (proto/admin.proto BackupStore; store_backup.h StreamStoreBackup).
  absl::Status BackupStore(const std::function<bool(const v1::BackupStoreChunk&)>& send);

  // ---- Federation ----
  absl::StatusOr<v1::HelloResponse> Hello(const std::string& client_id,
                                          const std::string& cert_fingerprint,
                                          const v1::HelloRequest& request,
                                          uint32_t long_poll_seconds,
                                          const crypto::CertificateInfo* certificate = nullptr);

  // Certificate lifecycle (docs/pki.md). At the TLS handshake: the certificate is not
  // revoked (OpenSSL checked the chain and validity) and its site not disabled.
  absl::Status AdmitHandshake(const crypto::CertificateInfo& caller);
  // At every call: not expired, not revoked, not disabled (PERMISSION_DENIED naming the
  // operator's decision) and, for an institution sending `instance_id`, the identity's
  // bound daemon (ALREADY_EXISTS for a second live one; access_control.h).
  absl::Status Admit(const crypto::CertificateInfo& caller, const std::string& instance_id,
                     const std::string& peer);
  // A PullWork of an admitted institution began / ended (the instance binding's liveness).
  void PullStarted(const std::string& client_id, const std::string& instance_id);
  void PullEnded(const std::string& client_id, const std::string& instance_id, bool cancelled);
  // Re-reads the CRL file if it changed (or always, `force`); the live sessions of every
  // newly revoked client are dropped (DropClient). Returns those clients. Calls and
  // handshakes are checked against the new CRL at once; the sites are handed it (crl_pem)
  // only after the drops, so that no site refuses a peer whose answers the coordinator
  // still counts. One re-read at a time (concurrent callers wait).
  std::vector<std::string> RefreshCrl(bool force) ABSL_LOCKS_EXCLUDED(refresh_mu_);
  // Admin.DisableClient / EnableClient: persisted, logged; disabling drops live sessions.
  absl::StatusOr<v1::ClientRecord> SetClientDisabled(const std::string& operator_id,
                                                     const std::string& client_id, bool disabled,
                                                     const std::string& reason);
  // Admin.ReleaseClient: ends a quarantine (ClientRegistry::Release).
  absl::StatusOr<v1::ClientRecord> ReleaseClient(const std::string& operator_id,
                                                 const std::string& client_id) {
    return registry_.Release(client_id, operator_id);
  }
  // Ends what `client_id` has going: its waiting PullWork calls wake (and are refused when
  // they re-check the caller), it is not picked into cohorts, its binding is forgotten, and
  // every running secure session drops it at once (SecureStageRunner::Expel; an input it
  // sent before stays in that sum), so no step waits for it and it counts toward no later
  // threshold.
  // Also for a caller refused at a call (expired).
  void DropClient(const std::string& client_id, const std::string& why);
  // Federation.FetchCertificates: the certificates of the advertisement list of `request`'s
  // running session, for `client_id`, a site listed in it. INVALID_ARGUMENT for no digest,
  // more than proto::kMaxCertificatesPerFetch or one not 32 bytes; NOT_FOUND if the task
  // or session is not running; otherwise SecAggServer::ListedCertificates's answer.
  absl::StatusOr<v1::FetchCertificatesResponse> FetchCertificates(
      const std::string& client_id, const v1::FetchCertificatesRequest& request);
  // The CRL (PEM) handed to sites (work items, Hello); "" if none. After a re-read, the
  // new one only once its revoked clients were dropped (RefreshCrl).
  std::shared_ptr<const std::string> crl_pem() const ABSL_LOCKS_EXCLUDED(crl_mu_);
  // FAILED_PRECONDITION if the client never said Hello. Null if no work before `deadline`.
  // The whole item (PostedItem::Whole), for in-process sites (simulation, tests).
  absl::StatusOr<std::shared_ptr<const v1::WorkItem>> PullWork(const std::string& client_id,
                                                               absl::Time deadline);
  // PullWork without a waiting thread (WorkBoard::PullAsync): FAILED_PRECONDITION if the
  // client never said Hello (and `done` does not run); otherwise `done` runs exactly once,
  // with the item or null, on the thread that ends the wait (this one if an item is ready;
  // it should be quick). Returns a ticket for CancelPull (0 if `done` already ran).
  absl::StatusOr<uint64_t> StartPull(const std::string& client_id, absl::Time deadline,
                                     WorkBoard::PullDone done);
  // Ends pull `ticket` now with null (its caller went away); nothing if it already ended.
  void CancelPull(uint64_t ticket) { board_.CancelPull(ticket); }
  // The largest answer `client_id`'s open work may need (WorkBoard::LargestAnswer).
  uint64_t LargestAnswer(const std::string& client_id) const {
    return board_.LargestAnswer(client_id);
  }
  // The model `work_id` carries apart for `client_id` to fetch (WorkBoard::ModelFor; with
  // `delta`, its model delta's data): FAILED_PRECONDITION if the client never said Hello;
  // NOT_FOUND if the work is closed, was not handed to the client, or carries no such bytes
  // apart.
  absl::StatusOr<std::shared_ptr<const std::string>> ModelFor(const std::string& client_id,
                                                              const std::string& work_id,
                                                              bool delta = false) const;
  // The client called (registry liveness, "last seen").
  void Seen(const std::string& client_id) { registry_.Seen(client_id); }
  // Puts a work item the transport could not deliver back on the board for `client_id`.
  void ReturnUndelivered(const std::string& client_id);
  absl::Status PushResult(const std::string& client_id, const v1::PushResultRequest& request);

  // Stops every runner (tasks keep their stored state) and wakes every waiting pull.
  // Idempotent.
  void Shutdown();

  Store* store() { return store_.get(); }

 private:
  Coordinator(std::unique_ptr<Store> store, const common::Clock* clock,
              const CoordinatorOptions& options);
  void StartRunner(const std::string& task_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // FAILED_PRECONDITION unless `client_id` said Hello (the site calls other than Hello).
  absl::Status RequireHello(const std::string& client_id) const;

  const std::unique_ptr<Store> store_;
  const common::Clock* const clock_;
  const CoordinatorOptions options_;
  WorkBoard board_;
  ClientRegistry registry_;
  AccessControl access_;

  // Serialises RefreshCrl, so that a second re-read cannot publish a CRL whose drops
  // the first has not finished.
  absl::Mutex refresh_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex crl_mu_;
  std::shared_ptr<const std::string> handed_crl_ ABSL_GUARDED_BY(crl_mu_) =
      std::make_shared<const std::string>();
  void HandCrlToSites() ABSL_LOCKS_EXCLUDED(crl_mu_);

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::unique_ptr<TaskRunner>> runners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_COORDINATOR_H_
