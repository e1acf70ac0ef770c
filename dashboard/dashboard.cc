// The dashboard's routes and event streams (dashboard.h).
#include "dashboard/dashboard.h"

#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "dashboard/internal/assets.h"
#include "dashboard/render.h"
#include "http/server.h"

namespace tessera::dashboard {
namespace {

// Answers shared between pages and streams for a while, so that many open pages still
// cost the coordinator about one call per poll. Failures are not kept.
class SharedSource {
 public:
  SharedSource(std::unique_ptr<AdminSource> source, absl::Duration max_age)
      : source_(std::move(source)), max_age_(max_age) {}

  absl::StatusOr<v1::ListTasksResponse> ListTasks() {
    return Get<v1::ListTasksResponse>("tasks", [&] { return source_->ListTasks(); });
  }
  absl::StatusOr<v1::ListClientsResponse> ListClients() {
    return Get<v1::ListClientsResponse>("clients", [&] { return source_->ListClients(); });
  }
  absl::StatusOr<v1::GetTaskResponse> GetTask(const std::string& id) {
    return Get<v1::GetTaskResponse>("task/" + id, [&] { return source_->GetTask(id); });
  }

 private:
  template <typename T, typename Fetch>
  absl::StatusOr<T> Get(const std::string& key, Fetch fetch) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(key);
      if (it != cache_.end() && absl::Now() - it->second.at < max_age_) {
        T copy;
        copy.CopyFrom(*it->second.message);
        return copy;
      }
    }
    absl::StatusOr<T> fresh = fetch();  // not under the lock: a slow call blocks no one else
    if (!fresh.ok()) return fresh;
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() > 256) cache_.clear();  // bound: one entry per task page opened
    cache_[key] = {absl::Now(), std::make_shared<T>(*fresh)};
    return fresh;
  }

  struct Entry {
    absl::Time at;
    std::shared_ptr<google::protobuf::Message> message;
  };
  std::unique_ptr<AdminSource> source_;
  const absl::Duration max_age_;
  std::mutex mu_;
  std::map<std::string, Entry> cache_;  // guarded by mu_
};

// What one page shows now: its fragment, or the problem that stops it from showing one.
struct Snapshot {
  std::string fragment;
  absl::Status problem;
  bool ended = false;  // a task that will not change again (or does not exist)
};

http::Response Html(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  return r;
}

int HttpStatusOf(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnavailable:
      return 502;
    default:
      return 500;
  }
}

}  // namespace

class Dashboard::Impl {
 public:
  Impl(const DashboardOptions& options, std::unique_ptr<AdminSource> source)
      : options_(options), source_(std::move(source), absl::Milliseconds(options.poll_ms / 2)) {}

  absl::Status Start();
  void Stop() {
    if (server_) server_->Stop();
  }
  std::string url() const { return absl::StrCat("http://", server_->address(), "/"); }
  int port() const { return server_->port(); }

 private:
  Snapshot Overview();
  Snapshot Task(const std::string& id);
  http::Response Page(const std::string& title, const std::string& stream, const Snapshot& s);
  void Follow(const http::Request& request, http::EventStream& events);

  const DashboardOptions options_;
  SharedSource source_;
  std::unique_ptr<http::Server> server_;
};

Snapshot Dashboard::Impl::Overview() {
  auto tasks = source_.ListTasks();
  if (!tasks.ok()) return {"", tasks.status()};
  auto clients = source_.ListClients();
  if (!clients.ok()) return {"", clients.status()};
  return {RenderOverview(*tasks, *clients), absl::OkStatus()};
}

Snapshot Dashboard::Impl::Task(const std::string& id) {
  auto task = source_.GetTask(id);
  if (!task.ok()) {
    return {"", task.status(), task.status().code() == absl::StatusCode::kNotFound};
  }
  return {RenderTask(*task), absl::OkStatus(), IsTerminal(task->task().state())};
}

http::Response Dashboard::Impl::Page(const std::string& title, const std::string& stream,
                                     const Snapshot& s) {
  if (!s.problem.ok()) {
    return Html(HttpStatusOf(s.problem),
                RenderPage(title, s.problem.code() == absl::StatusCode::kUnavailable ? stream : "",
                           RenderProblem(std::string(s.problem.message()))));
  }
  return Html(200, RenderPage(title, stream, s.fragment));
}

// One page's event stream: the fragment when it changed (or every refresh_seconds), a
// "problem" while the coordinator cannot answer, "done" when the task has ended.
void Dashboard::Impl::Follow(const http::Request& request, http::EventStream& events) {
  auto it = request.query.find("task");
  const std::string task = it == request.query.end() ? "" : it->second;
  common::LogInfo("dashboard_stream_opened").With("task", task.empty() ? "-" : task);
  std::string last;
  absl::Time last_sent = absl::InfinitePast();
  while (true) {
    const Snapshot s = task.empty() ? Overview() : Task(task);
    if (!s.problem.ok()) {
      if (!events.Send("problem", std::string(s.problem.message()))) break;
    } else if (s.fragment != last ||
               absl::Now() - last_sent >= absl::Seconds(options_.refresh_seconds)) {
      if (!events.Send("update", s.fragment)) break;
      last = s.fragment;
      last_sent = absl::Now();
    }
    if (s.ended) {
      events.Send("done", "");
      break;
    }
    if (!events.Wait(options_.poll_ms)) break;
  }
  common::LogInfo("dashboard_stream_closed").With("task", task.empty() ? "-" : task);
}

absl::Status Dashboard::Impl::Start() {
  if (options_.poll_ms < 100 || options_.refresh_seconds <= 0) {
    return absl::InvalidArgumentError(
        "dashboard: poll interval must be at least 100 ms and the refresh period positive");
  }
  http::Routes routes;
  routes.Get("/", [this](const http::Request&) { return Page("Tasks", "/events", Overview()); });
  routes.Get("/task", [this](const http::Request& r) {
    auto id = r.query.find("id");
    if (id == r.query.end() || id->second.empty()) {
      return Html(400, RenderPage("Task", "", RenderProblem("which task? (/task?id=TASK_ID)")));
    }
    return Page(id->second, absl::StrCat("/events?task=", UrlEncode(id->second)), Task(id->second));
  });
  routes.Get("/dashboard.js", [](const http::Request&) {
    return http::Response{200, "text/javascript; charset=utf-8", internal::kScript, {}};
  });
  routes.Get("/dashboard.css", [](const http::Request&) {
    return http::Response{200, "text/css; charset=utf-8", internal::kStylesheet, {}};
  });
  routes.Stream("/events",
                [this](const http::Request& r, http::EventStream& events) { Follow(r, events); });
  http::ServerOptions http_options;
  http_options.listen = options_.listen;
  // A page waits on the coordinator in an I/O thread (streams have their own): a few, so
  // that a slow coordinator does not hold up the script and stylesheet.
  http_options.threads = 4;
  const bool loopback = options_.listen.rfind("127.", 0) == 0 ||
                        options_.listen.rfind("localhost:", 0) == 0 ||
                        options_.listen.rfind("[::1]:", 0) == 0;
  if (loopback) {
    http_options.allowed_hosts = http::LoopbackHosts();
  } else {
    common::LogWarning("dashboard_not_on_loopback")
        .With("listen", options_.listen)
        .With("note", "the dashboard has no login: anyone who reaches it sees every task");
  }
  auto server = http::Server::Start(http_options, std::move(routes));
  if (!server.ok()) return server.status();
  server_ = *std::move(server);
  return absl::OkStatus();
}

Dashboard::Dashboard(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dashboard::~Dashboard() { Stop(); }

absl::StatusOr<std::unique_ptr<Dashboard>> Dashboard::Start(const DashboardOptions& options,
                                                            std::unique_ptr<AdminSource> source) {
  auto impl = std::make_unique<Impl>(options, std::move(source));
  if (absl::Status st = impl->Start(); !st.ok()) return st;
  return std::unique_ptr<Dashboard>(new Dashboard(std::move(impl)));
}

std::string Dashboard::url() const { return impl_->url(); }
int Dashboard::port() const { return impl_->port(); }
void Dashboard::Stop() { impl_->Stop(); }

}  // namespace tessera::dashboard
