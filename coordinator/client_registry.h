// Who belongs to the federation and who is connected now.
//
// The lasting part (ClientRecord: id, certificate fingerprint, datasets, first and last
// seen) is kept in the store; liveness is in memory. A client counts as connected while a
// PullWork call of its is waiting, or if it called within the liveness window. The
// registry is loaded from the store at start, so a restarted coordinator knows every
// client and picks cohorts again as soon as they poll.
//
// The status List() reports is computed when it is read (the stored one stays ACTIVE):
// ACTIVE while a PullWork call is open or the client called within `stale_after`; STALE
// past that; OFFLINE past the liveness window (then it is not picked into cohorts). A
// healthy client always has a long-poll open except while it computes an answer, and its
// last call ends at most a long-poll after it began; a frozen process (SIGSTOP: its TCP
// connection stays open, but it never calls again once its open long-poll returns at the
// coordinator's long-poll deadline) or a cut-off site turns STALE within long_poll +
// stale_after. A site computing a long contribution may show STALE until it answers.
//
// Two decisions keep a site out of cohorts, both in its stored record and surviving its
// Hellos and coordinator restarts: an operator's disable (SetDisabled; every call refused)
// and a quarantine (Quarantine: honest sites named it as the sender of shares that did not
// authenticate, coordinator/culprits.h; its calls are served, it is invited to no session)
// until an operator releases it (Release).
//
// Thread-safe.
#ifndef TESSERA_COORDINATOR_CLIENT_REGISTRY_H_
#define TESSERA_COORDINATOR_CLIENT_REGISTRY_H_

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/store.h"
#include "proto/state.pb.h"

namespace tessera::coordinator {

class ClientRegistry {
 public:
  // `store` and `clock` must outlive the registry. `waiting_pulls(id)` tells how many
  // PullWork calls of a client are waiting now.
  // `stale_after` (clamped to at most `liveness`): see the status above.
  ClientRegistry(Store* store, const common::Clock* clock, absl::Duration liveness,
                 std::function<int(const std::string&)> waiting_pulls,
                 absl::Duration stale_after = absl::Seconds(40));

  // Loads every known client from the store. Call once before serving.
  absl::Status Load();

  // A Hello from `client_id` whose certificate has `fingerprint`: creates or updates its
  // record (datasets, version, fingerprint) and persists it when anything but the last-seen
  // time changed (the last-seen time alone is persisted at most once a minute, as by Seen).
  // A changed fingerprint (the site re-keyed) is logged.
  // `serial` and `not_after` of the certificate are kept for `tessera clients list` (empty /
  // InfinitePast: not known). An operator's disable survives a Hello.
  absl::Status Hello(const std::string& client_id, const std::string& fingerprint,
                     const std::vector<std::string>& dataset_ids, const std::string& version,
                     const std::string& serial = "", absl::Time not_after = absl::InfinitePast());

  // An operator's decision (Admin.DisableClient/EnableClient), persisted in the client's
  // record. NOT_FOUND for a client that never said Hello. Returns the updated record.
  absl::StatusOr<v1::ClientRecord> SetDisabled(const std::string& client_id, bool disabled,
                                               const std::string& by, const std::string& reason);
  // Quarantines `client_id` with `why` (reason, who named it, when, task and session),
  // persisted first, logged: it is left out of Connected() until Release. A client already
  // quarantined keeps its first quarantine. NOT_FOUND for a client that never said Hello.
  absl::Status Quarantine(const std::string& client_id, const v1::ClientQuarantine& why);
  // An operator (`by`) ends the quarantine of `client_id` (Admin.ReleaseClient): persisted,
  // logged. Returns the updated record. NOT_FOUND for a client that never said Hello,
  // FAILED_PRECONDITION for one not quarantined.
  absl::StatusOr<v1::ClientRecord> Release(const std::string& client_id, const std::string& by);

  // The record of `client_id` if it is disabled.
  std::optional<v1::ClientRecord> Disabled(const std::string& client_id) const;
  // Clients whose last presented certificate has serial `serial_hex`.
  std::vector<std::string> WithSerial(const std::string& serial_hex) const;

  // Whether `client_id` has a record (said Hello at some time).
  bool Known(const std::string& client_id) const;

  // Any call from `client_id`: refreshes its last-seen time (persisted at most once a
  // minute, to keep the store quiet).
  void Seen(const std::string& client_id);

  // `client_id` did not answer in time: it is not picked into cohorts again until it calls
  // (a crashed site would otherwise stall every stage until its liveness ran out).
  void MarkUnresponsive(const std::string& client_id);

  // `client_id` was refused (revoked, expired, disabled): not picked into cohorts until its
  // next accepted Hello.
  void Exclude(const std::string& client_id);
  // Whether `client_id` is excluded (Exclude) now.
  bool Excluded(const std::string& client_id) const;

  // Connected clients that hold `dataset_id`, sorted by id (never a disabled or quarantined
  // one).
  std::vector<std::string> Connected(const std::string& dataset_id) const;

  // Every record, sorted by id, with last-seen times as known in memory and the status as of
  // now (ACTIVE, STALE or OFFLINE).
  std::vector<v1::ClientRecord> List() const;

  // The thresholds of the status: STALE after stale_after(), OFFLINE after offline_after()
  // (the liveness window) without an open long-poll or a call.
  absl::Duration stale_after() const { return stale_after_; }
  absl::Duration offline_after() const { return liveness_; }

 private:
  Store* const store_;
  const common::Clock* const clock_;
  const absl::Duration liveness_;
  const absl::Duration stale_after_;
  const std::function<int(const std::string&)> waiting_pulls_;

  mutable absl::Mutex mu_;
  std::map<std::string, v1::ClientRecord> clients_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> last_persisted_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> unresponsive_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> excluded_ ABSL_GUARDED_BY(mu_);

  // The record of `client_id`, a copy; NOT_FOUND naming it if it never said Hello.
  absl::StatusOr<v1::ClientRecord> Record(const std::string& client_id) const;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_CLIENT_REGISTRY_H_
