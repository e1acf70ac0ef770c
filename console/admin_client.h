// The admin service as the console reaches it: connection flags, call deadlines and
// errors. Used by the commands that talk to the coordinator (admin_commands.cc,
// provenance_command.cc); kept apart from internal.h so that the other commands do not
// compile gRPC's headers.
#ifndef TESSERA_COORDINATOR_CONSOLE_ADMIN_CLIENT_H_
#define TESSERA_COORDINATOR_CONSOLE_ADMIN_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"
#include "proto/config.pb.h"

namespace tessera::console::internal {

// How long one admin call may take.
inline constexpr absl::Duration kCallTimeout = absl::Seconds(30);

// Connection flags shared by every admin command: a ConsoleConfig file (--config or
// $TESSERA_CONSOLE_CONFIG) with flags overriding its fields.
struct Connection {
  std::string config;
  std::string coordinator;
  std::string server_name;
  std::string ca;
  std::string cert;
  std::string key;

  void Register(common::FlagParser& flags);
  // The config in force: the file's, overridden by the flags, validated (errors name the
  // file and field).
  absl::StatusOr<v1::ConsoleConfig> Config() const;
  // A stub over TLS 1.3 with the operator's certificate.
  absl::StatusOr<std::unique_ptr<v1::Admin::Stub>> Connect() const;
};

// Sets the call's deadline (kCallTimeout from now).
void SetDeadline(grpc::ClientContext* ctx);
// The call's status; names the coordinator in transport errors, which gRPC words tersely.
absl::Status CallStatus(const grpc::Status& st);
// "2026-01-02 03:04:05" (UTC), "-" for 0.
std::string FormatMillis(int64_t ms);

// `tessera tasks provenance ID --round N ...` (provenance_command.cc); args start after
// "provenance".
absl::Status ProvenanceCommand(const std::vector<std::string>& args);

// GetTask: the task, its committed rounds and its round in flight.
absl::StatusOr<v1::GetTaskResponse> FetchTask(v1::Admin::Stub& stub, const std::string& id);

// `tessera tasks show ...` and `tessera tasks wait ...` (tasks_show_command.cc); args start
// after "show" / "wait".
absl::Status ShowCommand(const std::vector<std::string>& args);
absl::Status WaitCommand(const std::vector<std::string>& args);

}  // namespace tessera::console::internal

#endif  // TESSERA_COORDINATOR_CONSOLE_ADMIN_CLIENT_H_
