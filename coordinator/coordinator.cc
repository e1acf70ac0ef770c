#include "coordinator/coordinator.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "coordinator/limits.h"
#include "coordinator/store_backup.h"
#include "crypto/hash.h"
#include "proto/transfer.h"
#include "proto/validation.h"

namespace tessera::coordinator {

Coordinator::Coordinator(std::unique_ptr<Store> store, const common::Clock* clock,
                         const CoordinatorOptions& options)
    : store_(std::move(store)),
      clock_(clock),
      options_(options),
      board_(clock),
      registry_(
          store_.get(), clock, options.client_liveness,
          [this](const std::string& id) { return board_.WaitingPulls(id); },
          options.client_stale_after),
      access_(clock, AccessControlOptions{options.ca_cert_pem, options.crl_file,
                                          options.instance_liveness}) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(
    std::unique_ptr<Store> store, const common::Clock* clock, const CoordinatorOptions& options) {
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(store), clock, options));
  RETURN_IF_ERROR(c->registry_.Load());
  RETURN_IF_ERROR(c->access_.LoadCrl());
  c->HandCrlToSites();
  return c;
}

Coordinator::~Coordinator() { Shutdown(); }

void Coordinator::StartRunner(const std::string& task_id) {
  auto runner = std::make_unique<TaskRunner>(task_id, store_.get(), &board_, &registry_, clock_,
                                             options_.ca_cert_pem, options_.runner);
  runner->Start();
  runners_[task_id] = std::move(runner);
}

absl::Status Coordinator::ResumeTasks() {
  ASSIGN_OR_RETURN(std::vector<v1::TaskRecord> tasks, store_->ListTasks());
  absl::MutexLock lock(&mu_);
  if (shut_down_) return absl::FailedPreconditionError("coordinator is shutting down");
  for (const v1::TaskRecord& t : tasks) {
    if (t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED ||
        t.state() == v1::TASK_CANCELLED) {
      continue;
    }
    if (runners_.count(t.task_id()) > 0) continue;
    common::LogInfo("task_resumed")
        .With("task", t.task_id())
        .With("last_committed_round", t.last_committed_round());
    StartRunner(t.task_id());
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SubmitTaskResponse> Coordinator::SubmitTask(const std::string& operator_id,
                                                               v1::TaskSpec spec) {
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateTaskSpec(spec)));
  proto::ApplyTaskDefaults(&spec);
  RETURN_IF_ERROR(CheckTaskFitsMessages(spec, options_.max_message_bytes));
  v1::TaskRecord record;
  int64_t now = common::ToUnixMillis(clock_->Now());
  record.set_spec_hash(crypto::HashTaskSpec(spec));
  *record.mutable_spec() = std::move(spec);
  record.set_state(v1::TASK_PENDING);
  record.set_submitted_by(operator_id);
  record.set_created_unix_ms(now);
  record.set_updated_unix_ms(now);
  record.set_last_committed_round(-1);

  absl::MutexLock lock(&mu_);
  if (shut_down_) return absl::UnavailableError("coordinator is shutting down");
  ASSIGN_OR_RETURN(std::string task_id, store_->CreateTask(record));
  common::LogInfo("task_submitted")
      .With("task", task_id)
      .With("name", record.spec().name())
      .With("operator", operator_id)
      .With("spec_sha256", crypto::ToHex(record.spec_hash()));
  StartRunner(task_id);
  v1::SubmitTaskResponse response;
  response.set_task_id(task_id);
  response.set_spec_hash(record.spec_hash());
  return response;
}

absl::StatusOr<std::vector<v1::TaskRecord>> Coordinator::ListTasks() { return store_->ListTasks(); }

absl::StatusOr<v1::GetTaskResponse> Coordinator::GetTask(const std::string& task_id) {
  v1::GetTaskResponse response;
  ASSIGN_OR_RETURN(*response.mutable_task(), store_->GetTask(task_id));
  ASSIGN_OR_RETURN(std::vector<v1::RoundRecord> rounds, store_->ListRounds(task_id));
  for (v1::RoundRecord& r : rounds) {
    // Kept out of the task's view: certificates and signatures for every session of every
    // round would make it large (GetRound has them), and so would the strategy's state (an
    // adaptive strategy's moments: two floats per model parameter, in every round).
    r.clear_provenance();
    r.clear_strategy_state();
    *response.add_rounds() = std::move(r);
  }
  // What the operator reads: attempts, cohort, drops, each site's answers. Not the
  // session's snapshot (keys, encrypted shares, the masked running sum), the next model or
  // the strategy's state, which the store does not even read here (megabytes at d = 10^6,
  // at every poll of a console or dashboard).
  absl::StatusOr<v1::InFlightRound> in_flight = store_->GetInFlightShown(task_id);
  if (in_flight.ok()) {
    in_flight->clear_provenance();
    *response.mutable_in_flight() = *std::move(in_flight);
  } else if (in_flight.status().code() != absl::StatusCode::kNotFound) {
    return in_flight.status();
  }
  return response;
}

absl::StatusOr<v1::RoundRecord> Coordinator::GetRound(const std::string& task_id, uint32_t round) {
  RETURN_IF_ERROR(store_->GetTask(task_id).status());
  ASSIGN_OR_RETURN(std::vector<v1::RoundRecord> rounds, store_->ListRounds(task_id));
  for (v1::RoundRecord& r : rounds) {
    if (r.round() == round) return std::move(r);
  }
  return absl::NotFoundError(absl::StrCat(task_id, " has no committed round ", round));
}

absl::Status Coordinator::CancelTask(const std::string& operator_id, const std::string& task_id,
                                     const std::string& reason) {
  ASSIGN_OR_RETURN(v1::TaskRecord task, store_->GetTask(task_id));
  if (task.state() == v1::TASK_COMPLETED || task.state() == v1::TASK_FAILED ||
      task.state() == v1::TASK_CANCELLED) {
    return absl::FailedPreconditionError(
        absl::StrCat(task_id, " has already finished (", v1::TaskState_Name(task.state()), ")"));
  }
  std::string why =
      absl::StrCat("cancelled by ", operator_id, reason.empty() ? "" : ": ", reason.substr(0, 500));
  absl::MutexLock lock(&mu_);
  auto it = runners_.find(task_id);
  if (it == runners_.end() || it->second->Done()) {
    return absl::FailedPreconditionError(absl::StrCat(task_id, " is not running here"));
  }
  common::LogInfo("task_cancel_requested").With("task", task_id).With("operator", operator_id);
  it->second->Cancel(why);
  return absl::OkStatus();
}

std::vector<v1::ClientRecord> Coordinator::ListClients() const { return registry_.List(); }

absl::StatusOr<v1::HelloResponse> Coordinator::Hello(const std::string& client_id,
                                                     const std::string& cert_fingerprint,
                                                     const v1::HelloRequest& request,
                                                     uint32_t long_poll_seconds,
                                                     const crypto::CertificateInfo* certificate) {
  if (request.dataset_ids_size() > 1000) {
    return absl::InvalidArgumentError("at most 1000 dataset ids");
  }
  std::vector<std::string> datasets(request.dataset_ids().begin(), request.dataset_ids().end());
  for (const std::string& d : datasets) {
    if (d.empty() || d.size() > 64) {
      return absl::InvalidArgumentError("dataset ids must be 1..64 characters");
    }
  }
  RETURN_IF_ERROR(
      registry_.Hello(client_id, cert_fingerprint, datasets, request.client_version(),
                      certificate == nullptr ? "" : certificate->serial_hex,
                      certificate == nullptr ? absl::InfinitePast() : certificate->not_after));
  // A client saying Hello again may have lost what it was handed before.
  board_.Redeliver(client_id);
  common::LogInfo("client_hello")
      .With("client", client_id)
      .With("datasets", static_cast<uint64_t>(datasets.size()));
  v1::HelloResponse response;
  response.set_client_id(client_id);
  response.set_long_poll_seconds(long_poll_seconds);
  response.set_crl_pem(*crl_pem());
  return response;
}

absl::Status Coordinator::RequireHello(const std::string& client_id) const {
  if (registry_.Known(client_id)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(client_id, " must call Hello first"));
}

absl::StatusOr<std::shared_ptr<const v1::WorkItem>> Coordinator::PullWork(
    const std::string& client_id, absl::Time deadline) {
  RETURN_IF_ERROR(RequireHello(client_id));
  registry_.Seen(client_id);
  std::shared_ptr<const PostedItem> item = board_.Pull(client_id, deadline);
  registry_.Seen(client_id);
  if (item == nullptr) return std::shared_ptr<const v1::WorkItem>();
  return std::make_shared<const v1::WorkItem>(item->Whole());
}

absl::StatusOr<std::shared_ptr<const std::string>> Coordinator::ModelFor(
    const std::string& client_id, const std::string& work_id, bool delta) const {
  RETURN_IF_ERROR(RequireHello(client_id));
  std::shared_ptr<const std::string> model = board_.ModelFor(work_id, client_id, delta);
  if (model == nullptr) {
    return absl::NotFoundError(absl::StrCat("work ", work_id,
                                            " is closed, not yours, or carries no ",
                                            delta ? "model delta" : "model", " apart"));
  }
  return model;
}

absl::StatusOr<uint64_t> Coordinator::StartPull(const std::string& client_id, absl::Time deadline,
                                                WorkBoard::PullDone done) {
  RETURN_IF_ERROR(RequireHello(client_id));
  registry_.Seen(client_id);
  return board_.PullAsync(client_id, deadline, std::move(done));
}

void Coordinator::ReturnUndelivered(const std::string& client_id) { board_.Redeliver(client_id); }

absl::Status Coordinator::PushResult(const std::string& client_id,
                                     const v1::PushResultRequest& request) {
  RETURN_IF_ERROR(RequireHello(client_id));
  registry_.Seen(client_id);
  return board_.Push(client_id, request);
}

absl::Status Coordinator::AdmitHandshake(const crypto::CertificateInfo& caller) {
  if (std::optional<crypto::RevokedCertificate> entry = access_.crl().Find(caller.serial_hex)) {
    return absl::UnauthenticatedError(crypto::DescribeRevocation(caller, *entry));
  }
  if (caller.role == crypto::Role::kInstitution && registry_.Disabled(caller.node_id)) {
    return absl::PermissionDeniedError(absl::StrCat(caller.node_id, " is disabled"));
  }
  return absl::OkStatus();
}

absl::Status Coordinator::Admit(const crypto::CertificateInfo& caller,
                                const std::string& instance_id, const std::string& peer) {
  RETURN_IF_ERROR(access_.CheckCertificate(caller));
  if (caller.role != crypto::Role::kInstitution) return absl::OkStatus();
  if (std::optional<v1::ClientRecord> off = registry_.Disabled(caller.node_id)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "site ", caller.node_id, " is disabled by the federation operator ", off->disabled_by(),
        " since ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(off->disabled_unix_ms()),
                         absl::UTCTimeZone()),
        off->disabled_reason().empty() ? "" : absl::StrCat(": ", off->disabled_reason()),
        " (ask them to run 'tessera clients enable ", caller.node_id, "')"));
  }
  return access_.BindInstance(caller.node_id, instance_id, peer);
}

void Coordinator::PullStarted(const std::string& client_id, const std::string& instance_id) {
  access_.PullStarted(client_id, instance_id);
}

void Coordinator::PullEnded(const std::string& client_id, const std::string& instance_id,
                            bool cancelled) {
  access_.PullEnded(client_id, instance_id, cancelled);
}

std::vector<std::string> Coordinator::RefreshCrl(bool force) {
  absl::MutexLock refreshing(&refresh_mu_);
  std::vector<std::string> dropped;
  for (const crypto::RevokedCertificate& entry : access_.ReloadCrl(force)) {
    for (const std::string& id : registry_.WithSerial(entry.serial_hex)) {
      DropClient(id, absl::StrCat("certificate ", entry.serial_hex, " revoked"));
      dropped.push_back(id);
    }
  }
  HandCrlToSites();
  return dropped;
}

void Coordinator::HandCrlToSites() {
  auto pem = std::make_shared<const std::string>(access_.crl_pem());
  absl::MutexLock lock(&crl_mu_);
  handed_crl_ = std::move(pem);
}

std::shared_ptr<const std::string> Coordinator::crl_pem() const {
  absl::MutexLock lock(&crl_mu_);
  return handed_crl_;
}

absl::StatusOr<v1::ClientRecord> Coordinator::SetClientDisabled(const std::string& operator_id,
                                                                const std::string& client_id,
                                                                bool disabled,
                                                                const std::string& reason) {
  if (reason.size() > 200) return absl::InvalidArgumentError("reason: at most 200 characters");
  ASSIGN_OR_RETURN(v1::ClientRecord record,
                   registry_.SetDisabled(client_id, disabled, operator_id, reason));
  common::LogWarning(disabled ? "client_disabled" : "client_enabled")
      .With("client", client_id)
      .With("operator", operator_id)
      .With("reason", reason);
  if (disabled) DropClient(client_id, "disabled by the operator");
  return record;
}

absl::StatusOr<v1::FetchCertificatesResponse> Coordinator::FetchCertificates(
    const std::string& client_id, const v1::FetchCertificatesRequest& request) {
  const auto& digests = request.certificate_sha256();
  if (digests.empty() || static_cast<size_t>(digests.size()) > proto::kMaxCertificatesPerFetch) {
    return absl::InvalidArgumentError(absl::StrCat("a request names 1 to ",
                                                   proto::kMaxCertificatesPerFetch,
                                                   " certificates, not ", digests.size()));
  }
  for (const std::string& digest : digests) {
    if (digest.size() != 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("a certificate digest is 32 bytes (SHA-256), not ", digest.size()));
    }
  }
  const std::vector<std::string> sha256s(digests.begin(), digests.end());
  absl::StatusOr<std::vector<std::string>> pems;
  {
    absl::MutexLock lock(&mu_);
    auto runner = runners_.find(request.task_id());
    if (runner == runners_.end()) {
      return absl::NotFoundError(
          absl::StrCat("task ", request.task_id().substr(0, 128), " is not running"));
    }
    pems = runner->second->ListedCertificates(request.secagg_session(), client_id, sha256s);
  }
  RETURN_IF_ERROR(pems.status());
  v1::FetchCertificatesResponse response;
  for (std::string& pem : *pems) response.add_certificates(std::move(pem));
  return response;
}

void Coordinator::DropClient(const std::string& client_id, const std::string& why) {
  common::LogWarning("client_sessions_dropped").With("client", client_id).With("why", why);
  registry_.MarkUnresponsive(client_id);
  registry_.Exclude(client_id);
  access_.Unbind(client_id);
  board_.Wake(client_id);
  // Its running sessions go on without it at once, rather than waiting for its answers
  // until their steps' deadlines.
  absl::MutexLock lock(&mu_);
  for (auto& [id, runner] : runners_) runner->Expel(client_id, why);
}

void Coordinator::Shutdown() {
  std::map<std::string, std::unique_ptr<TaskRunner>> runners;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    runners.swap(runners_);
  }
  board_.Shutdown();
  for (auto& [id, runner] : runners) runner->Stop();
}

absl::Status Coordinator::BackupStore(
    const std::function<bool(const v1::BackupStoreChunk&)>& send) {
  if (options_.backup_staging_dir.empty()) {
    return absl::UnimplementedError("this coordinator has no durable store to back up");
  }
  return StreamStoreBackup(*store_, options_.backup_staging_dir, clock_->Now(), send);
}

}  // namespace tessera::coordinator
