// The in-memory SiteStore (NewMemorySiteStore, client/site_store.h): two sorted maps under
// one mutex. std::map<std::string> orders keys bytewise (char_traits<char> compares as
// unsigned char), like RocksDB, so both stores list in the same order.

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/site_store_rules.h"
#include "client/site_store.h"
#include "common/status.h"
#include "proto/site_state.pb.h"

namespace tessera::client {
namespace {

class MemorySiteStore final : public SiteStore {
 public:
  absl::StatusOr<v1::ContributionRecord> GetContribution(const std::string& key) override {
    absl::MutexLock lock(&mu_);
    auto it = contributions_.find(key);
    if (it == contributions_.end()) return internal::NoContribution(key);
    return it->second;
  }

  absl::StatusOr<std::vector<v1::ContributionRecord>> ListContributions() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::ContributionRecord> out;
    out.reserve(contributions_.size());
    for (const auto& [key, record] : contributions_) out.push_back(record);
    return out;
  }

  absl::StatusOr<v1::SiteSessionRecord> GetSession(const std::string& session) override {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return internal::NoSession(session);
    return it->second;
  }

  absl::StatusOr<std::vector<v1::SiteSessionRecord>> ListSessions() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::SiteSessionRecord> out;
    out.reserve(sessions_.size());
    for (const auto& [label, record] : sessions_) out.push_back(record);
    return out;
  }

  absl::Status PutSession(const v1::SiteSessionRecord& session,
                          const v1::ContributionRecord* contribution) override {
    RETURN_IF_ERROR(internal::CheckPutSession(session, contribution));
    absl::MutexLock lock(&mu_);
    if (contribution != nullptr) {
      auto it = contributions_.find(contribution->key());
      if (it != contributions_.end()) {
        RETURN_IF_ERROR(internal::CheckContributionOwner(it->second, session.session()));
      }
      contributions_[contribution->key()] = *contribution;
    }
    sessions_[session.session()] = session;
    return absl::OkStatus();
  }

  absl::Status DeleteSession(const std::string& session) override {
    absl::MutexLock lock(&mu_);
    sessions_.erase(session);
    return absl::OkStatus();
  }

  // Nothing is on disk to scrub.
  absl::Status ScrubNow() override { return absl::OkStatus(); }

 private:
  absl::Mutex mu_;
  std::map<std::string, v1::ContributionRecord> contributions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::SiteSessionRecord> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<SiteStore> NewMemorySiteStore() { return std::make_unique<MemorySiteStore>(); }

}  // namespace tessera::client
