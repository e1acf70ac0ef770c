#include "coordinator/work_board.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::coordinator {

// NOLINTNEXTLINE(performance-unnecessary-value-param): the items are moved into the board.
absl::Status WorkBoard::Post(const std::string& work_id, std::map<std::string, v1::WorkItem> items,
                             std::shared_ptr<ResultSink> sink) {
  OpenWork work;
  for (auto& [client, item] : items) {
    if (item.work_id() != work_id) {
      return absl::InvalidArgumentError(absl::StrCat("item for ", client, " carries work id ",
                                                     item.work_id(), ", not ", work_id));
    }
    work.undelivered.insert(client);
    work.items[client] = std::make_shared<const v1::WorkItem>(std::move(item));
  }
  work.pending = work.undelivered;
  work.sink = std::move(sink);
  absl::MutexLock lock(&mu_);
  if (open_.count(work_id) > 0) {
    return absl::InvalidArgumentError(absl::StrCat("work ", work_id, " is already open"));
  }
  work.seq = next_seq_++;
  order_[work.seq] = work_id;
  open_.emplace(work_id, std::move(work));
  return absl::OkStatus();
}

void WorkBoard::Close(const std::string& work_id) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(work_id);
  if (it == open_.end()) return;
  order_.erase(it->second.seq);
  open_.erase(it);
}

WorkBoard::OpenWork* WorkBoard::Deliverable(const std::string& client_id) {
  for (const auto& [seq, id] : order_) {
    OpenWork& w = open_.at(id);
    if (w.undelivered.count(client_id) > 0) return &w;
  }
  return nullptr;
}

std::shared_ptr<const v1::WorkItem> WorkBoard::Pull(const std::string& client_id,
                                                    absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  ++waiting_[client_id];
  const uint64_t wakes = wakes_[client_id];
  // The condition only looks; absl may evaluate it on other threads.
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shutdown_ || wakes_[client_id] != wakes || Deliverable(client_id) != nullptr;
  };
  clock_->AwaitWithDeadline(&mu_, absl::Condition(&ready), deadline);
  if (--waiting_[client_id] == 0) waiting_.erase(client_id);
  if (shutdown_ || wakes_[client_id] != wakes) return nullptr;
  OpenWork* w = Deliverable(client_id);
  if (w == nullptr) return nullptr;
  w->undelivered.erase(client_id);
  w->fetched.insert(client_id);
  return w->items.at(client_id);
}

absl::Status WorkBoard::Push(const std::string& client_id, const v1::PushResultRequest& result) {
  std::shared_ptr<ResultSink> sink;
  {
    absl::MutexLock lock(&mu_);
    auto it = open_.find(result.work_id());
    if (it == open_.end() || it->second.pending.count(client_id) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("no open work ", result.work_id(), " for ", client_id,
                       " (never given, already answered, or the step ended)"));
    }
    // One answer per item, whatever the sink makes of it.
    it->second.pending.erase(client_id);
    it->second.undelivered.erase(client_id);
    it->second.fetched.insert(client_id);
    sink = it->second.sink;
  }
  // Never call out under the lock: the sink may verify signatures or add large vectors.
  return sink->Accept(client_id, result);
}

void WorkBoard::Redeliver(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  for (auto& [id, work] : open_) {
    if (work.pending.count(client_id) > 0) work.undelivered.insert(client_id);
  }
}

bool WorkBoard::Reoffer(const std::string& work_id, const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(work_id);
  if (it == open_.end() || !it->second.items.contains(client_id)) return false;
  it->second.pending.insert(client_id);
  it->second.undelivered.insert(client_id);
  return true;
}

std::set<std::string> WorkBoard::Fetched(const std::string& work_id) const {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(work_id);
  return it == open_.end() ? std::set<std::string>() : it->second.fetched;
}

int WorkBoard::WaitingPulls(const std::string& client_id) const {
  absl::MutexLock lock(&mu_);
  auto it = waiting_.find(client_id);
  return it == waiting_.end() ? 0 : it->second;
}

void WorkBoard::Wake(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  ++wakes_[client_id];
}

void WorkBoard::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

}  // namespace tessera::coordinator
