// The dashboard's pages and event streams over real loopback HTTP, with a fake admin
// service the test changes underneath it.
#include "dashboard/dashboard.h"

#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/raw_http.h"

namespace tessera::dashboard {
namespace {

using ::tessera::testing::RawHttpBody;
using ::tessera::testing::RawHttpConnection;
using ::tessera::testing::RawHttpGet;
using ::tessera::testing::RawHttpStatus;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kDeadline = absl::Seconds(10);

// One task whose rounds the test adds; a switch that makes every call UNAVAILABLE.
class FakeAdmin : public AdminSource {
 public:
  struct State {
    std::mutex mu;
    v1::GetTaskResponse task;
    bool unavailable = false;
  };
  explicit FakeAdmin(std::shared_ptr<State> state) : state_(std::move(state)) {}

  absl::StatusOr<v1::ListTasksResponse> ListTasks() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->unavailable) return absl::UnavailableError("coordinator unreachable: <down>");
    v1::ListTasksResponse r;
    *r.add_tasks() = state_->task.task();
    return r;
  }
  absl::StatusOr<v1::GetTaskResponse> GetTask(const std::string& id) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->unavailable) return absl::UnavailableError("coordinator unreachable: <down>");
    if (id != state_->task.task().task_id()) return absl::NotFoundError("no task " + id);
    return state_->task;
  }
  absl::StatusOr<v1::ListClientsResponse> ListClients() override {
    v1::ListClientsResponse r;
    v1::ClientRecord* c = r.add_clients();
    c->set_client_id("hospital-a");
    return r;
  }

 private:
  std::shared_ptr<State> state_;
};

class DashboardServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_->task.mutable_task()->set_task_id("task-7");
    state_->task.mutable_task()->set_state(v1::TASK_RUNNING);
    state_->task.mutable_task()->mutable_spec()->set_name("demo <b>");
    state_->task.mutable_task()->mutable_spec()->set_rounds(5);
    AddRound(0);
    AddRound(1);
    AddRound(2);
    DashboardOptions options;
    options.listen = "127.0.0.1:0";
    options.poll_ms = 100;
    auto board = Dashboard::Start(options, std::make_unique<FakeAdmin>(state_));
    ASSERT_TRUE(board.ok()) << board.status();
    board_ = *std::move(board);
  }

  void AddRound(uint32_t r) {
    std::lock_guard<std::mutex> lock(state_->mu);
    v1::RoundRecord* rec = state_->task.add_rounds();
    rec->set_round(r);
    rec->add_fit_participants("hospital-a");
    if (r > 0) {
      v1::Metric* m = rec->add_metrics();
      m->set_name("accuracy");
      m->set_value(0.5 + 0.1 * r);
    }
    state_->task.mutable_task()->set_last_committed_round(static_cast<int>(r));
  }

  // A keep-alive GET with the Host a browser sends.
  std::string Get(const std::string& path) const {
    return absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: localhost:", board_->port(), "\r\n\r\n");
  }

  std::shared_ptr<FakeAdmin::State> state_ = std::make_shared<FakeAdmin::State>();
  std::unique_ptr<Dashboard> board_;
};

TEST_F(DashboardServerTest, ServesTheOverviewAndATaskPage) {
  EXPECT_EQ(board_->url(), absl::StrCat("http://127.0.0.1:", board_->port(), "/"));
  std::string overview = RawHttpGet(board_->port(), "/");
  EXPECT_EQ(RawHttpStatus(overview), 200) << overview;
  EXPECT_THAT(overview, HasSubstr("Content-Type: text/html; charset=utf-8"));
  EXPECT_THAT(overview, HasSubstr("Content-Security-Policy: default-src 'self'"));
  EXPECT_THAT(overview, HasSubstr("<a href=\"/task?id=task-7\">task-7</a>"));
  EXPECT_THAT(overview, HasSubstr("demo &lt;b&gt;"));
  EXPECT_THAT(overview, HasSubstr("data-stream=\"/events\""));
  std::string task = RawHttpGet(board_->port(), "/task?id=task-7");
  EXPECT_EQ(RawHttpStatus(task), 200);
  EXPECT_THAT(task, HasSubstr("data-points=\"2\""));
  EXPECT_THAT(task, HasSubstr("data-stream=\"/events?task=task-7\""));
  std::string script = RawHttpGet(board_->port(), "/dashboard.js");
  EXPECT_THAT(script, HasSubstr("Content-Type: text/javascript"));
  EXPECT_THAT(RawHttpBody(script), HasSubstr("new EventSource("));
  EXPECT_THAT(RawHttpGet(board_->port(), "/dashboard.css"), HasSubstr("Content-Type: text/css"));
}

TEST_F(DashboardServerTest, ErrorsAreClearPages) {
  std::string missing = RawHttpGet(board_->port(), "/task?id=task-99");
  EXPECT_EQ(RawHttpStatus(missing), 404);
  EXPECT_THAT(missing, HasSubstr("no task task-99"));
  EXPECT_EQ(RawHttpStatus(RawHttpGet(board_->port(), "/task")), 400);
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->unavailable = true;
  }
  std::string down = RawHttpGet(board_->port(), "/task?id=task-7");
  EXPECT_EQ(RawHttpStatus(down), 502);
  EXPECT_THAT(down, HasSubstr("coordinator unreachable: &lt;down&gt;"));
}

TEST_F(DashboardServerTest, AnswersOnlyLoopbackHostNames) {
  RawHttpConnection c(board_->port());
  ASSERT_TRUE(c.Write("GET / HTTP/1.1\r\nHost: attacker.example\r\n\r\n"));
  EXPECT_EQ(RawHttpStatus(c.ReadUntilClosed(kDeadline)), 421);
}

TEST_F(DashboardServerTest, TheStreamPushesEachCommittedRoundThenEnds) {
  RawHttpConnection c(board_->port());
  ASSERT_TRUE(c.Write(Get("/events?task=task-7")));
  ASSERT_THAT(c.ReadUntil("data-points=\"2\"", kDeadline), HasSubstr("event: update"));
  AddRound(3);
  EXPECT_THAT(c.ReadUntil("data-points=\"3\"", kDeadline), HasSubstr("data-points=\"3\""));
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->unavailable = true;
  }
  EXPECT_THAT(c.ReadUntil("event: problem", kDeadline),
              HasSubstr("event: problem\ndata: coordinator unreachable: <down>"));
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->unavailable = false;
    state_->task.mutable_task()->set_state(v1::TASK_COMPLETED);
  }
  std::string all = c.ReadUntilClosed(kDeadline);
  EXPECT_TRUE(c.closed());
  EXPECT_THAT(all, HasSubstr("COMPLETED"));
  EXPECT_THAT(all, HasSubstr("event: done\n"));
}

TEST_F(DashboardServerTest, TheStreamPushesEachSitesAnswerInTheRoundInFlight) {
  auto answer = [&](v1::SiteAnswerKind kind, const std::string& detail) {
    std::lock_guard<std::mutex> lock(state_->mu);
    v1::InFlightRound* f = state_->task.mutable_in_flight();
    f->set_round(3);
    f->set_attempt(1);
    f->set_session_stage(v1::STAGE_FIT);
    f->clear_stage_attempts();
    v1::StageAttempt* s = f->add_stage_attempts();
    s->set_stage(v1::STAGE_FIT);
    s->set_attempt(1);
    s->set_session("task-7/r3/fit/a1");
    v1::SiteAnswer* a = s->add_sites();
    a->set_client_id("hospital-a");
    a->set_kind(kind);
    a->set_step(v1::SECAGG_SHARE_KEYS);
    a->set_decline_reason(v1::Decline::POLICY_REFUSED);
    a->set_detail(detail);
  };
  answer(v1::SITE_ANSWER_PENDING, "has not answered this step yet");
  RawHttpConnection c(board_->port());
  ASSERT_TRUE(c.Write(Get("/events?task=task-7")));
  ASSERT_THAT(c.ReadUntil("PENDING at share_keys: has not answered this step yet", kDeadline),
              HasSubstr("PENDING at share_keys: has not answered this step yet"));
  answer(v1::SITE_ANSWER_DECLINED, "rule <7>");
  EXPECT_THAT(c.ReadUntil("DECLINED POLICY_REFUSED: rule &lt;7&gt;", kDeadline),
              HasSubstr("DECLINED POLICY_REFUSED: rule &lt;7&gt;"));
}

TEST_F(DashboardServerTest, StopEndsOpenStreams) {
  RawHttpConnection c(board_->port());
  ASSERT_TRUE(c.Write(Get("/events")));
  ASSERT_THAT(c.ReadUntil("task-7", kDeadline), HasSubstr("event: update"));
  board_->Stop();
  c.ReadUntilClosed(kDeadline);
  EXPECT_TRUE(c.closed());
}

}  // namespace
}  // namespace tessera::dashboard
