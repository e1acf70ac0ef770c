#include "coordinator/work_board.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::coordinator {

v1::WorkItem PostedItem::Whole() const {
  v1::WorkItem whole = own;
  if (!own_tail.empty() && !whole.MergeFromString(own_tail.Joined())) return own;
  if (shared != nullptr && !whole.MergeFromString(*shared)) return own;
  if (model != nullptr) {
    if (!whole.mutable_model()->ParseFromString(*model)) return own;
    whole.clear_model_size();
  }
  return whole;
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): the items are moved into the board.
absl::Status WorkBoard::Post(const std::string& work_id, std::map<std::string, v1::WorkItem> items,
                             std::shared_ptr<ResultSink> sink,
                             const std::shared_ptr<const std::string>& shared,
                             const std::shared_ptr<const std::string>& model,
                             uint64_t largest_answer,
                             const std::shared_ptr<const ModelDeltaVariant>& delta,
                             std::map<std::string, OwnTail> own_tails) {
  OpenWork work;
  for (auto& [client, item] : items) {
    if (item.work_id() != work_id) {
      return absl::InvalidArgumentError(absl::StrCat("item for ", client, " carries work id ",
                                                     item.work_id(), ", not ", work_id));
    }
    work.undelivered.insert(client);
    OwnTail tail;
    if (auto it = own_tails.find(client); it != own_tails.end()) tail = std::move(it->second);
    work.items[client] = std::make_shared<const PostedItem>(
        PostedItem{std::move(item), shared, model, delta, std::move(tail)});
  }
  work.pending = work.undelivered;
  work.sink = std::move(sink);
  work.largest_answer = largest_answer;
  const std::set<std::string> clients = work.undelivered;
  Ended ended;
  {
    absl::MutexLock lock(&mu_);
    if (open_.count(work_id) > 0) {
      return absl::InvalidArgumentError(absl::StrCat("work ", work_id, " is already open"));
    }
    work.seq = next_seq_++;
    order_[work.seq] = work_id;
    open_.emplace(work_id, std::move(work));
    for (const std::string& client : clients) MatchLocked(client, &ended);
  }
  RunEnded(ended);
  return absl::OkStatus();
}

WorkBoard::~WorkBoard() {
  Shutdown();
  std::thread timer;
  {
    absl::MutexLock lock(&mu_);
    timer.swap(timer_);
  }
  if (timer.joinable()) timer.join();
}

void WorkBoard::Close(const std::string& work_id) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(work_id);
  if (it == open_.end()) return;
  order_.erase(it->second.seq);
  open_.erase(it);
}

uint64_t WorkBoard::LargestAnswer(const std::string& client_id) const {
  absl::MutexLock lock(&mu_);
  uint64_t largest = 0;
  for (const auto& [id, work] : open_) {
    if (work.pending.contains(client_id)) largest = std::max(largest, work.largest_answer);
  }
  return largest;
}

std::shared_ptr<const std::string> WorkBoard::ModelFor(const std::string& work_id,
                                                       const std::string& client_id,
                                                       bool delta) const {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(work_id);
  if (it == open_.end() || it->second.fetched.count(client_id) == 0) return nullptr;
  auto item = it->second.items.find(client_id);
  if (item == it->second.items.end()) return nullptr;
  if (!delta) return item->second->model;
  return item->second->delta == nullptr ? nullptr : item->second->delta->data;
}

WorkBoard::OpenWork* WorkBoard::Deliverable(const std::string& client_id) {
  for (const auto& [seq, id] : order_) {
    OpenWork& w = open_.at(id);
    if (w.undelivered.count(client_id) > 0) return &w;
  }
  return nullptr;
}

std::shared_ptr<const PostedItem> WorkBoard::Pull(const std::string& client_id,
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
  return w == nullptr ? nullptr : HandOut(w, client_id);
}

std::shared_ptr<const PostedItem> WorkBoard::HandOut(OpenWork* w, const std::string& client_id) {
  w->undelivered.erase(client_id);
  w->fetched.insert(client_id);
  return w->items.at(client_id);
}

uint64_t WorkBoard::PullAsync(const std::string& client_id, absl::Time deadline, PullDone done) {
  std::shared_ptr<const PostedItem> now;
  {
    absl::MutexLock lock(&mu_);
    if (!shutdown_) {
      OpenWork* w = Deliverable(client_id);
      if (w == nullptr) {
        const uint64_t ticket = next_ticket_++;
        if (deadlines_.empty() || deadline < deadlines_.begin()->first) ++timer_generation_;
        deadlines_.emplace(deadline, ticket);
        async_of_[client_id].insert(ticket);
        async_.emplace(ticket, AsyncPull{client_id, deadline, std::move(done)});
        if (!timer_.joinable()) timer_ = std::thread([this] { ExpireLoop(); });
        return ticket;
      }
      now = HandOut(w, client_id);
    }
  }
  done(std::move(now));
  return 0;
}

void WorkBoard::CancelPull(uint64_t ticket) {
  Ended ended;
  {
    absl::MutexLock lock(&mu_);
    if (async_.contains(ticket)) EndLocked(ticket, nullptr, &ended);
  }
  RunEnded(ended);
}

void WorkBoard::MatchLocked(const std::string& client_id, Ended* ended) {
  auto waiting = async_of_.find(client_id);
  while (waiting != async_of_.end()) {
    OpenWork* w = Deliverable(client_id);
    if (w == nullptr) return;
    const uint64_t oldest = *waiting->second.begin();
    EndLocked(oldest, HandOut(w, client_id), ended);  // may erase `waiting`
    waiting = async_of_.find(client_id);
  }
}

void WorkBoard::EndLocked(uint64_t ticket, std::shared_ptr<const PostedItem> item, Ended* ended) {
  auto it = async_.find(ticket);
  deadlines_.erase({it->second.deadline, ticket});
  auto of = async_of_.find(it->second.client_id);
  of->second.erase(ticket);
  if (of->second.empty()) async_of_.erase(of);
  ended->emplace_back(std::move(it->second.done), std::move(item));
  async_.erase(it);
}

void WorkBoard::RunEnded(Ended& ended) {
  for (auto& [done, item] : ended) done(std::move(item));
}

void WorkBoard::ExpireLoop() {
  mu_.Lock();
  while (!shutdown_) {
    const uint64_t generation = timer_generation_;
    const absl::Time next = deadlines_.empty() ? absl::InfiniteFuture() : deadlines_.begin()->first;
    auto replan = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return shutdown_ || timer_generation_ != generation;
    };
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&replan), next);
    Ended ended;
    const absl::Time now = clock_->Now();
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      EndLocked(deadlines_.begin()->second, nullptr, &ended);
    }
    if (ended.empty()) continue;
    mu_.Unlock();  // never call out under the lock
    RunEnded(ended);
    mu_.Lock();
  }
  mu_.Unlock();
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
  Ended ended;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, work] : open_) {
      if (work.pending.count(client_id) > 0) work.undelivered.insert(client_id);
    }
    MatchLocked(client_id, &ended);
  }
  RunEnded(ended);
}

bool WorkBoard::Reoffer(const std::string& work_id, const std::string& client_id) {
  Ended ended;
  {
    absl::MutexLock lock(&mu_);
    auto it = open_.find(work_id);
    if (it == open_.end() || !it->second.items.contains(client_id)) return false;
    it->second.pending.insert(client_id);
    it->second.undelivered.insert(client_id);
    MatchLocked(client_id, &ended);
  }
  RunEnded(ended);
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
  auto async = async_of_.find(client_id);
  return (it == waiting_.end() ? 0 : it->second) +
         (async == async_of_.end() ? 0 : static_cast<int>(async->second.size()));
}

void WorkBoard::Wake(const std::string& client_id) {
  Ended ended;
  {
    absl::MutexLock lock(&mu_);
    ++wakes_[client_id];
    while (async_of_.contains(client_id)) {
      EndLocked(*async_of_.at(client_id).begin(), nullptr, &ended);
    }
  }
  RunEnded(ended);
}

void WorkBoard::Shutdown() {
  Ended ended;
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    ++timer_generation_;
    while (!async_.empty()) EndLocked(async_.begin()->first, nullptr, &ended);
  }
  RunEnded(ended);
}

}  // namespace tessera::coordinator
