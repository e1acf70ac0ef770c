#include "coordinator/work_board.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::coordinator {

StageCollector::StageCollector(std::vector<std::string> cohort, size_t vector_length, Check check)
    : cohort_(cohort.begin(), cohort.end()),
      vector_length_(vector_length),
      check_(std::move(check)),
      sum_(vector_length, 0.0) {}

absl::Status StageCollector::Accept(const std::string& client_id,
                                    const v1::PushResultRequest& result) {
  if (cohort_.count(client_id) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(client_id, " is not part of the cohort of work ", result.work_id()));
  }
  // Validate outside the lock: it is pure and may touch a large vector.
  absl::Status verdict;
  if (result.has_contribution()) {
    const auto& values = result.contribution().values();
    if (static_cast<size_t>(values.size()) != vector_length_) {
      verdict = absl::InvalidArgumentError(absl::StrCat(
          "contribution has ", values.size(), " values, expected ", vector_length_));
    } else {
      for (int i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) {
          verdict = absl::InvalidArgumentError(absl::StrCat("contribution value ", i,
                                                            " is not finite"));
          break;
        }
      }
      if (verdict.ok() && check_) {
        verdict = check_(std::span<const double>(values.data(), values.size()));
      }
    }
  } else if (!result.has_decline()) {
    verdict = absl::InvalidArgumentError("result carries neither a contribution nor a decline");
  }

  absl::MutexLock lock(&mu_);
  if (closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("work ", result.work_id(), " is closed (the stage ended)"));
  }
  if (contributors_.count(client_id) > 0 || drops_.count(client_id) > 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(client_id, " already answered work ", result.work_id()));
  }
  if (!verdict.ok()) {
    drops_[client_id] = absl::StrCat("bad result: ", verdict.message());
    return verdict;
  }
  if (result.has_decline()) {
    const v1::Decline& d = result.decline();
    // The detail is the client's own text: keep it short in our records.
    std::string detail = d.detail().substr(0, 200);
    drops_[client_id] =
        absl::StrCat("declined (", v1::Decline::Reason_Name(d.reason()), "): ", detail);
    return absl::OkStatus();
  }
  const auto& values = result.contribution().values();
  for (size_t i = 0; i < vector_length_; ++i) sum_[i] += values[static_cast<int>(i)];
  contributors_.insert(client_id);
  return absl::OkStatus();
}

bool StageCollector::AllAnswered() const {
  return contributors_.size() + drops_.size() >= cohort_.size();
}

bool StageCollector::Wait(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return cancelled_ || AllAnswered(); };
  mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  return AllAnswered();
}

void StageCollector::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

StageCollector::Outcome StageCollector::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (const std::string& c : cohort_) {
    if (contributors_.count(c) == 0 && drops_.count(c) == 0) {
      drops_[c] = "no answer before the deadline";
    }
  }
  Outcome out;
  out.sum = sum_;
  out.contributors.assign(contributors_.begin(), contributors_.end());
  for (const auto& [client, reason] : drops_) out.drops.push_back(absl::StrCat(client, ": ", reason));
  return out;
}

absl::Status WorkBoard::Post(v1::WorkItem item, const std::vector<std::string>& cohort,
                             std::shared_ptr<StageCollector> collector) {
  absl::MutexLock lock(&mu_);
  if (open_.count(item.work_id()) > 0) {
    return absl::InvalidArgumentError(absl::StrCat("work ", item.work_id(), " is already open"));
  }
  uint64_t seq = next_seq_++;
  OpenWork work;
  std::string id = item.work_id();
  work.item = std::make_shared<const v1::WorkItem>(std::move(item));
  work.collector = std::move(collector);
  work.undelivered.insert(cohort.begin(), cohort.end());
  work.pending = work.undelivered;
  order_[seq] = id;
  open_.emplace(id, std::make_pair(seq, std::move(work)));
  return absl::OkStatus();
}

void WorkBoard::Close(const std::string& work_id) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(work_id);
  if (it == open_.end()) return;
  order_.erase(it->second.first);
  open_.erase(it);
}

std::shared_ptr<const v1::WorkItem> WorkBoard::Pull(const std::string& client_id, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  ++waiting_[client_id];
  // The condition only looks; absl may evaluate it on other threads.
  auto deliverable = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> OpenWork* {
    for (const auto& [seq, id] : order_) {
      OpenWork& w = open_.at(id).second;
      if (w.undelivered.count(client_id) > 0) return &w;
    }
    return nullptr;
  };
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shutdown_ || deliverable() != nullptr;
  };
  mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
  if (--waiting_[client_id] == 0) waiting_.erase(client_id);
  if (shutdown_) return nullptr;
  OpenWork* w = deliverable();
  if (w == nullptr) return nullptr;
  w->undelivered.erase(client_id);
  return w->item;
}

absl::Status WorkBoard::Push(const std::string& client_id, const v1::PushResultRequest& result) {
  std::shared_ptr<StageCollector> collector;
  {
    absl::MutexLock lock(&mu_);
    auto it = open_.find(result.work_id());
    if (it == open_.end() || it->second.second.pending.count(client_id) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no open work ", result.work_id(), " for ", client_id,
          " (never given, already answered, or the stage ended)"));
    }
    collector = it->second.second.collector;
  }
  // Never call out under the lock: the collector validates and sums outside it.
  absl::Status st = collector->Accept(client_id, result);
  if (st.code() != absl::StatusCode::kPermissionDenied) {
    absl::MutexLock lock(&mu_);
    auto it = open_.find(result.work_id());
    if (it != open_.end()) {
      it->second.second.pending.erase(client_id);
      it->second.second.undelivered.erase(client_id);
    }
  }
  return st;
}

void WorkBoard::Redeliver(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  for (auto& [id, entry] : open_) {
    if (entry.second.pending.count(client_id) > 0) entry.second.undelivered.insert(client_id);
  }
}

int WorkBoard::WaitingPulls(const std::string& client_id) const {
  absl::MutexLock lock(&mu_);
  auto it = waiting_.find(client_id);
  return it == waiting_.end() ? 0 : it->second;
}

void WorkBoard::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

}  // namespace tessera::coordinator
