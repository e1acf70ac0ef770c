#include "client/control_server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/approvals.h"
#include "client/task_egress.h"
#include "common/log.h"
#include "common/status.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/server_posix.h"
#include "proto/grpc_status.h"
#include "proto/site_control.grpc.pb.h"

namespace tessera::client {
namespace {

std::string Errno(const std::string& what) {
  return absl::StrCat(what, ": ", std::strerror(errno));
}

std::string UserName(uid_t uid) {
  passwd pw;
  passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return absl::StrCat("uid-", uid);
}

// The socket's directory: 0700 and ours (created so if missing).
absl::Status PrepareSocketDirectory(const std::string& dir) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT || ::mkdir(dir.c_str(), 0700) != 0) {
      return absl::FailedPreconditionError(Errno(absl::StrCat("control socket directory ", dir)));
    }
    return absl::OkStatus();
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("control socket directory ", dir, " is not a directory"));
  }
  if (st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("control socket directory ", dir, " belongs to uid ", st.st_uid,
                     ", not to this daemon's user (uid ", ::geteuid(), ")"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "control socket directory ", dir, " has mode ", absl::StrFormat("%04o", st.st_mode & 07777),
        ": group and others must have no access (chmod 700 ", dir, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<sockaddr_un> SocketAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "control socket path '", path, "' must be 1..", sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// A socket file left at `path`: removed if no one listens on it.
absl::Status ClearStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("control socket path ", path, " exists and is not a socket"));
  }
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return absl::InternalError(Errno("socket"));
  const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  ::close(probe);
  if (rc == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("control socket ", path,
                     " is in use by another daemon (give each its own control_socket)"));
  }
  if (::unlink(path.c_str()) != 0) {
    return absl::FailedPreconditionError(Errno(absl::StrCat("removing stale socket ", path)));
  }
  return absl::OkStatus();
}

}  // namespace

class ControlServer::Impl final : public v1::SiteControl::Service {
 public:
  Impl(std::string path, ControlHandlers handlers)
      : path_(std::move(path)), handlers_(std::move(handlers)) {}

  ~Impl() override {
    if (wake_fd_ >= 0) {
      const uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof(one));
    }
    if (acceptor_.joinable()) acceptor_.join();
    if (server_) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    if (listen_fd_ >= 0) {
      ::close(listen_fd_);
      ::unlink(path_.c_str());
    }
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  absl::Status Start() {
    const size_t slash = path_.find_last_of('/');
    const std::string dir =
        slash == std::string::npos ? "." : path_.substr(0, std::max<size_t>(slash, 1));
    RETURN_IF_ERROR(PrepareSocketDirectory(dir));
    ASSIGN_OR_RETURN(sockaddr_un addr, SocketAddress(path_));
    RETURN_IF_ERROR(ClearStaleSocket(path_, addr));
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(Errno("control socket"));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      const std::string error = Errno(absl::StrCat("binding control socket ", path_));
      ::close(fd);
      return absl::FailedPreconditionError(error);
    }
    listen_fd_ = fd;  // from here on the destructor removes the file
    // No connection can arrive before listen(): the mode is right before anyone may connect
    // (and the 0700 directory keeps others out of it meanwhile).
    if (::chmod(path_.c_str(), 0600) != 0 || ::listen(fd, 16) != 0) {
      return absl::InternalError(Errno(absl::StrCat("control socket ", path_)));
    }
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (wake_fd_ < 0) return absl::InternalError(Errno("eventfd"));
    grpc::ServerBuilder builder;  // no listening port: connections come from Accept()
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (!server_) return absl::InternalError("control socket: the gRPC server did not start");
    acceptor_ = std::thread([this] { AcceptLoop(); });
    common::LogInfo("control_socket_listening").With("path", path_);
    return absl::OkStatus();
  }

  // ---- SiteControl
  grpc::Status ListPending(grpc::ServerContext*, const v1::ListPendingRequest*,
                           v1::ListPendingResponse* response) override {
    auto pending = handlers_.approvals->Pending();
    if (!pending.ok()) return proto::ToGrpcStatus(pending.status());
    for (v1::ApprovalRecord& r : *pending) *response->add_pending() = std::move(r);
    return grpc::Status::OK;
  }

  grpc::Status ShowTask(grpc::ServerContext*, const v1::ShowTaskRequest* request,
                        v1::ShowTaskResponse* response) override {
    auto records = handlers_.approvals->Records(request->task_id());
    if (!records.ok()) return proto::ToGrpcStatus(records.status());
    for (v1::ApprovalRecord& r : *records) *response->add_records() = std::move(r);
    DescribeTask(response->records().rbegin()->spec(), handlers_.config(), response);
    return grpc::Status::OK;
  }

  grpc::Status Approve(grpc::ServerContext* ctx, const v1::DecideRequest* request,
                       v1::DecideResponse* response) override {
    return Decide(ctx, *request, v1::TaskDecision::APPROVED, response);
  }

  grpc::Status Reject(grpc::ServerContext* ctx, const v1::DecideRequest* request,
                      v1::DecideResponse* response) override {
    return Decide(ctx, *request, v1::TaskDecision::REJECTED, response);
  }

  grpc::Status ReloadPolicy(grpc::ServerContext*, const v1::ReloadPolicyRequest*,
                            v1::ReloadPolicyResponse* response) override {
    auto reloaded = handlers_.reload();
    if (!reloaded.ok()) return proto::ToGrpcStatus(reloaded.status());
    *response = *std::move(reloaded);
    return grpc::Status::OK;
  }

 private:
  grpc::Status Decide(grpc::ServerContext* ctx, const v1::DecideRequest& request,
                      v1::TaskDecision::Kind kind, v1::DecideResponse* response) {
    v1::TaskDecision decision;
    decision.set_kind(kind);
    decision.set_reason(request.reason());
    std::string by = Caller(ctx->peer());
    if (!request.sudo_user().empty()) {
      by += absl::StrCat(", via sudo from ", request.sudo_user().substr(0, 64));
    }
    decision.set_by(std::move(by));
    auto record = handlers_.approvals->Decide(request.task_id(), request.spec_sha256(),
                                              std::move(decision), absl::Now());
    if (!record.ok()) return proto::ToGrpcStatus(record.status());
    *response->mutable_record() = *std::move(record);
    return grpc::Status::OK;
  }

  // "<user> (uid N)" of the connection a call came on (gRPC names it "fd:N").
  std::string Caller(const std::string& peer) {
    int fd = -1;
    if (absl::StartsWith(peer, "fd:") && absl::SimpleAtoi(peer.substr(3), &fd)) {
      absl::MutexLock lock(&mu_);
      auto it = peers_.find(fd);
      if (it != peers_.end()) return absl::StrCat(UserName(it->second), " (uid ", it->second, ")");
    }
    return absl::StrCat("unknown caller (", peer, ")");
  }

  void AcceptLoop() {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    while (true) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        common::LogError("control_socket_failed").With("error", Errno("poll"));
        return;
      }
      if (fds[1].revents != 0) return;
      if ((fds[0].revents & POLLIN) == 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) continue;  // the peer went away meanwhile, or out of descriptors for now
      Admit(fd);
    }
  }

  // Hands the connection to gRPC if its peer is the daemon's user or root; refuses it
  // otherwise.
  void Admit(int fd) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      common::LogWarning("control_refused").With("error", Errno("SO_PEERCRED"));
      ::close(fd);
      return;
    }
    const uid_t self = ::geteuid();
    if (cred.uid != self && cred.uid != 0) {
      common::LogWarning("control_refused")
          .With("uid", static_cast<uint64_t>(cred.uid))
          .With("pid", static_cast<int64_t>(cred.pid))
          .With("reason", "neither the daemon's user nor root");
      const std::string line = absl::StrCat(
          "refused: uid ", cred.uid, " is neither this daemon's user (uid ", self, ") nor root\n");
      (void)!::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
      ::close(fd);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      peers_[fd] = cred.uid;
    }
    grpc::AddInsecureChannelFromFd(server_.get(), fd);
  }

  const std::string path_;
  const ControlHandlers handlers_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::unique_ptr<grpc::Server> server_;
  std::thread acceptor_;
  absl::Mutex mu_;
  // Peer uid by connection descriptor (a descriptor reused by a later connection is
  // overwritten when that one is admitted).
  std::map<int, uid_t> peers_ ABSL_GUARDED_BY(mu_);
};

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlServer::~ControlServer() = default;

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& socket_path,
                                                                    ControlHandlers handlers) {
  auto impl = std::make_unique<Impl>(socket_path, std::move(handlers));
  RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

}  // namespace tessera::client
