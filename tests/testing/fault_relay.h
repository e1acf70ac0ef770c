// A fault-injecting TCP relay for tests: it accepts connections on a listening address and
// forwards each to an upstream address, injecting faults on the way, scripted per direction
// ("up" is client → upstream, "down" is upstream → client):
//
// - delay with jitter: every chunk read is delivered `delay` ± `jitter` (uniform) later, never
//   before the chunk ahead of it, so the byte order within a connection is kept;
// - a bandwidth limit: chunks leave at most `rate` bytes per second (serialised, then
//   delayed, as on a link), with a bounded queue so that the sender feels TCP back-pressure;
// - stalls: windows (from the relay's start) during which a direction forwards nothing;
// - connection resets: a connection is reset (RST to both peers: SO_LINGER 0, then close)
//   once a direction has forwarded `reset_after_bytes`, at most `max_resets` times in all, or
//   every live connection at given times, or on command;
// - a link cut after a byte count: once a direction has forwarded `cut_after_bytes` (over
//   all connections, counted from when the faults were set), the whole link is cut as on
//   command; the chunk that crosses the count is split, so that exactly that many bytes
//   pass (a message in flight arrives in part, as on a cable pulled mid-transfer);
// - a link cut: on a schedule or on command, nothing is forwarded any more (the data waits,
//   as TCP would retransmit it) and new connections are accepted but not connected upstream;
//   on restore everything resumes. `refuse` instead closes the listener and resets every
//   connection (a host that answers with RST), until restore.
//
// The relay runs one thread of its own, which owns the connections and the faults in force.
// Every public method is thread-safe: the commands (Cut, Restore, SetUp, ...) run on that
// thread, in the order given, and return once they have taken effect, so stats() read after
// one shows it (a reset's connections counted, a cut). A change of faults applies to data
// read after it. Errors are absl::Status values; nothing throws out of it.
//
// The command-line program tests/netns/fault_relay_main.cc (tessera-fault-relay) wraps it and
// takes commands from a control file, one per line: "cut", "restore", "refuse", "reset",
// "up <faults>", "down <faults>" (faults as ParseDirectionFaults reads them).
#ifndef TESSERA_TESTS_TESTING_FAULT_RELAY_H_
#define TESSERA_TESTS_TESTING_FAULT_RELAY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tessera::testing {

// The faults of one direction. A default-constructed value forwards as fast as it can.
struct DirectionFaults {
  absl::Duration delay = absl::ZeroDuration();
  // Uniform in [-jitter, +jitter] around `delay` (clamped at zero).
  absl::Duration jitter = absl::ZeroDuration();
  // Bytes per second; 0 for no limit.
  double rate_bytes_per_second = 0;
  // Reset a connection once this direction forwarded this many bytes on it; 0 for never.
  int64_t reset_after_bytes = 0;
  // Cut the link once this direction forwarded this many more bytes; 0 for never.
  int64_t cut_after_bytes = 0;
  struct Stall {
    absl::Duration at;  // from the relay's start
    absl::Duration for_;
  };
  std::vector<Stall> stalls;
};

// Parses "delay=50ms,jitter=10ms,rate=10mbit,reset_after=65536,cut_after=16384,stall=2s+500ms"
// (every key optional; "" is no fault). rate takes bit/s with a kbit, mbit or gbit suffix (10mbit =
// 1.25e6 bytes/s); stall is AT+FOR and may repeat. INVALID_ARGUMENT naming the key or value.
absl::StatusOr<DirectionFaults> ParseDirectionFaults(absl::string_view text);

// Events of the whole relay, at times from its start.
struct RelaySchedule {
  std::vector<absl::Duration> reset_at;  // reset every live connection
  std::vector<absl::Duration> cut_at;
  std::vector<absl::Duration> restore_at;
};

// Parses "reset@2s,cut@5s,restore@8s" (any number of each). INVALID_ARGUMENT naming the item.
absl::StatusOr<RelaySchedule> ParseRelaySchedule(absl::string_view text);

struct RelayOptions {
  // "host:port" to listen on (port 0: the OS picks; see FaultRelay::address()).
  std::string listen = "127.0.0.1:0";
  // "host:port" (a numeric IPv4 or IPv6 address) to forward to. Required.
  std::string upstream;
  DirectionFaults up;
  DirectionFaults down;
  RelaySchedule schedule;
  // Resets triggered by reset_after_bytes, over all connections; -1 for no limit.
  int max_resets = -1;
  // Seeds the jitter.
  uint64_t seed = 1;
};

// What the relay did so far.
struct RelayStats {
  int64_t connections = 0;
  int64_t resets = 0;
  int64_t bytes_up = 0;    // forwarded client → upstream
  int64_t bytes_down = 0;  // forwarded upstream → client
  int64_t cuts = 0;
  bool cut = false;
  // "connections=3 resets=1 bytes_up=... bytes_down=... cuts=0 cut=false".
  std::string ToString() const;
};

class FaultRelay {
 public:
  // Binds and listens, then serves on its own thread. INVALID_ARGUMENT for a bad address,
  // UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<FaultRelay>> Start(const RelayOptions& options);
  // Stops: closes the listener and every connection, joins the thread.
  ~FaultRelay();
  // The same stop, early: afterwards stats() still answers, with every byte the relay
  // wrote counted. No command may follow it. Idempotent.
  void Stop();
  FaultRelay(const FaultRelay&) = delete;
  FaultRelay& operator=(const FaultRelay&) = delete;

  // The bound "host:port".
  std::string address() const;
  int port() const;

  void Cut();
  void Refuse();
  void Restore();
  // Resets every live connection now.
  void ResetAll();
  void SetUp(const DirectionFaults& faults);
  void SetDown(const DirectionFaults& faults);
  // One control-file line ("cut", "up delay=50ms", ...). INVALID_ARGUMENT for anything else.
  absl::Status Command(absl::string_view line);

  RelayStats stats() const;

  class Impl;

 private:
  explicit FaultRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_FAULT_RELAY_H_
