// The operator's web dashboard: a local web page (http/ server) over the coordinator's admin
// service, which it reads through an AdminSource (with the operator's own certificate; the
// coordinator opens no port for it). Pages: the tasks and clients ("/"), one task
// ("/task?id=ID": state, progress, ε spent, metric curves, participation and drops per
// round, the sites' decisions), and their event streams ("/events", "/events?task=ID").
//
// Live updates: each open page's stream polls the admin service every poll_ms (answers are
// shared between streams for half that time) and pushes the page's fragment when it changed
// (and at least every refresh_seconds, so "last seen" stays fresh); a task page's stream
// ends with a "done" event once the task has ended.
//
// No authentication of its own: whoever can open the page sees what the operator sees. It
// therefore binds to loopback by default and then answers only requests whose Host is a
// loopback name (against DNS rebinding); binding elsewhere logs a warning.
#ifndef TESSERA_DASHBOARD_DASHBOARD_H_
#define TESSERA_DASHBOARD_DASHBOARD_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/admin.pb.h"

namespace tessera::dashboard {

// What the dashboard reads from the coordinator. Implementations must be thread-safe (pages
// and streams call concurrently). Errors are the admin service's (UNAVAILABLE when it
// cannot be reached, NOT_FOUND for an unknown task).
class AdminSource {
 public:
  virtual ~AdminSource() = default;
  virtual absl::StatusOr<v1::ListTasksResponse> ListTasks() = 0;
  virtual absl::StatusOr<v1::GetTaskResponse> GetTask(const std::string& task_id) = 0;
  virtual absl::StatusOr<v1::ListClientsResponse> ListClients() = 0;
};

struct DashboardOptions {
  // host:port of the page; port 0 = the OS chooses.
  std::string listen = "127.0.0.1:8080";
  // How often an open page's stream asks the coordinator, in milliseconds (>= 100).
  int poll_ms = 1000;
  // A page's fragment is pushed at least this often, changed or not (> 0).
  int refresh_seconds = 10;
};

class Dashboard {
 public:
  // Binds and serves. INVALID_ARGUMENT for bad options or address, UNAVAILABLE when the
  // address cannot be bound (both naming it).
  static absl::StatusOr<std::unique_ptr<Dashboard>> Start(const DashboardOptions& options,
                                                          std::unique_ptr<AdminSource> source);
  ~Dashboard();

  // "http://127.0.0.1:8080/".
  std::string url() const;
  int port() const;
  // Ends the streams, stops serving. Idempotent; the destructor calls it.
  void Stop();

  class Impl;

 private:
  explicit Dashboard(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::dashboard

#endif  // TESSERA_DASHBOARD_DASHBOARD_H_
