// The dashboard's HTML and SVG: escaping of everything from the coordinator, the curves'
// geometry, and what a task page and the overview show.
#include "dashboard/render.h"

#include <cmath>
#include <regex>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::dashboard {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kEvil[] = "<script>alert('x')</script>&\"";
constexpr char kEvilEscaped[] = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;";

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

v1::GetTaskResponse TaskWithRounds(int rounds) {
  v1::GetTaskResponse t;
  v1::TaskRecord* task = t.mutable_task();
  task->set_task_id("task-7");
  task->set_state(v1::TASK_RUNNING);
  task->set_last_committed_round(rounds);
  task->mutable_spec()->set_name("breast-cancer");
  task->mutable_spec()->set_rounds(10);
  task->mutable_spec()->mutable_dataset()->set_id("breast_cancer");
  for (int r = 0; r <= rounds; ++r) {
    v1::RoundRecord* rec = t.add_rounds();
    rec->set_task_id("task-7");
    rec->set_round(r);
    rec->set_attempts(1);
    rec->add_fit_participants("hospital-a");
    rec->add_fit_participants("hospital-b");
    if (r == 0) continue;
    rec->add_eval_participants("hospital-a");
    v1::Metric* loss = rec->add_metrics();
    loss->set_name("loss");
    loss->set_value(1.0 / r);
    v1::Metric* n = rec->add_metrics();
    n->set_name("num_examples");
    n->set_value(114);
  }
  return t;
}

TEST(DashboardRenderTest, EscapesTheFiveCharacters) {
  EXPECT_EQ(EscapeHtml(kEvil), kEvilEscaped);
  EXPECT_EQ(EscapeHtml("plain text, é"), "plain text, é");
  EXPECT_EQ(UrlEncode("task-1 &x=é"), "task-1%20%26x%3D%C3%A9");
}

TEST(DashboardRenderTest, ACurveHasOnePointPerRoundInRoundOrder) {
  std::vector<CurvePoint> points = {{3, 0.5}, {1, 0.9}, {2, 0.7}, {4, 0.4}, {5, 0.3}};
  std::string svg = MetricCurveSvg("loss", points);
  EXPECT_THAT(svg, HasSubstr("data-points=\"5\""));
  EXPECT_EQ(Count(svg, "<circle class=\"point\""), 5);
  // First round at the left edge of the plot (x 64), last at the right (544); the highest
  // value at the top (y 28), the lowest at the bottom (186).
  EXPECT_THAT(svg, HasSubstr("d=\"M64.0,28.0 L184.0,"));
  EXPECT_THAT(svg, HasSubstr(" L544.0,186.0\""));
  EXPECT_EQ(Count(svg, " L"), 4);
  EXPECT_THAT(svg, AllOf(HasSubstr(">round 1<"), HasSubstr(">round 5<"), HasSubstr(">0.9<"),
                         HasSubstr(">0.3<"), HasSubstr("<title>round 3: 0.5</title>")));
}

TEST(DashboardRenderTest, ACurveLeavesOutNonFiniteValuesAndCentresOnePoint) {
  std::string svg = MetricCurveSvg("auc", {{1, NAN}, {2, 0.8}, {3, INFINITY}});
  EXPECT_THAT(svg, HasSubstr("data-points=\"1\""));
  EXPECT_THAT(svg, HasSubstr("d=\"M304.0,107.0\""));  // the middle of the plot area
  std::string empty = MetricCurveSvg("auc", {});
  EXPECT_THAT(empty, HasSubstr("no committed round yet"));
  EXPECT_THAT(empty, Not(HasSubstr("<path")));
}

TEST(DashboardRenderTest, ACurveEscapesItsName) {
  std::string svg = MetricCurveSvg(kEvil, {{1, 1}});
  EXPECT_THAT(svg, HasSubstr(kEvilEscaped));
  EXPECT_THAT(svg, Not(HasSubstr("<script")));
}

TEST(DashboardRenderTest, CurvesSkipTheStatisticsRoundAndCounts) {
  std::vector<MetricSeries> series = CurveSeries(TaskWithRounds(4));
  ASSERT_EQ(series.size(), 1u);
  EXPECT_EQ(series[0].name, "loss");
  ASSERT_EQ(series[0].points.size(), 4u);
  EXPECT_EQ(series[0].points[0].round, 1u);
  EXPECT_EQ(series[0].points[3].round, 4u);
}

TEST(DashboardRenderTest, ATaskPageShowsProgressCurvesParticipationAndDecisions) {
  v1::GetTaskResponse t = TaskWithRounds(3);
  t.mutable_rounds(2)->add_drops(std::string("hospital-c dropped: ") + kEvil);
  v1::SiteDecision* d = t.mutable_task()->add_site_decisions();
  d->set_client_id("hospital-c");
  d->set_state(v1::SITE_REJECTED);
  d->set_reason(kEvil);
  t.mutable_task()->set_state_reason(kEvil);
  t.mutable_task()->mutable_spec()->set_name(kEvil);
  std::string html = RenderTask(t);
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_EQ(Count(html, kEvilEscaped), 4);  // name, reason, drop, decision
  EXPECT_THAT(html, HasSubstr("<progress max=\"10\" value=\"3\">"));
  EXPECT_THAT(html, HasSubstr("data-points=\"3\""));
  EXPECT_THAT(html, HasSubstr("no differential privacy"));
  // hospital-a fit and evaluated, hospital-b fit only, hospital-c (declined) absent.
  EXPECT_THAT(html, HasSubstr("<tr data-round=\"2\"><td>2</td><td>1</td><td class=\"took-part\">"
                              "fit, eval</td><td class=\"took-part\">fit</td>"
                              "<td class=\"absent\">—</td>"));
  EXPECT_THAT(html, HasSubstr("<td>REJECTED</td>"));
}

// A validation split: the curves are validation curves, and the selected round's test
// metrics are shown with why it was selected (escaped like everything else).
TEST(DashboardRenderTest, ATaskWithAValidationSplitShowsTheSelectedRoundsTestMetrics) {
  v1::GetTaskResponse t = TaskWithRounds(3);
  EXPECT_THAT(RenderTask(t), Not(HasSubstr("Test: round")));
  v1::TaskRecord* task = t.mutable_task();
  task->mutable_spec()->mutable_training()->set_validation_fraction(0.25);
  task->set_selected_round(2);
  task->set_selection(std::string("round 2 has the best validation loss ") + kEvil);
  std::string html = RenderTask(t);
  EXPECT_THAT(html, HasSubstr("Federated evaluation (validation rows)"));
  EXPECT_THAT(html, HasSubstr("<h2>Test: round 2</h2>"));
  EXPECT_THAT(html, HasSubstr("no test metrics (yet)"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  v1::Metric* auc = task->add_test_metrics();
  auc->set_name("auc");
  auc->set_value(0.9942);
  task->add_test_participants("hospital-a");
  task->add_test_participants("hospital-b");
  html = RenderTask(t);
  EXPECT_THAT(html, HasSubstr("Test rows of 2 sites"));
  EXPECT_THAT(html, HasSubstr("<td>auc</td><td>0.9942</td>"));
}

TEST(DashboardRenderTest, EpsilonSpentIsTheLastRoundsEpsilon) {
  v1::GetTaskResponse t = TaskWithRounds(2);
  v1::PrivacySpec* p = t.mutable_task()->mutable_spec()->mutable_privacy();
  p->set_epsilon_budget(8);
  p->set_delta(1e-5);
  for (int r = 1; r <= 2; ++r) {
    v1::Metric* m = t.mutable_rounds(r)->add_metrics();
    m->set_name("epsilon");
    m->set_value(r * 1.5);
  }
  EXPECT_EQ(EpsilonSpent(t), "ε 3 of 8 (δ 1e-05)");
  EXPECT_THAT(RenderTask(t), HasSubstr("ε 3 of 8 (δ 1e-05)"));
}

TEST(DashboardRenderTest, TheOverviewLinksTasksAndShowsLastSeen) {
  v1::ListTasksResponse tasks;
  v1::TaskRecord* t = tasks.add_tasks();
  t->set_task_id("task-1");
  t->set_state(v1::TASK_COMPLETED);
  t->mutable_spec()->set_name(kEvil);
  t->mutable_spec()->set_rounds(30);
  t->set_last_committed_round(30);
  v1::ListClientsResponse clients;
  clients.set_now_unix_ms(1'800'000'065'000);
  v1::ClientRecord* c = clients.add_clients();
  c->set_client_id("hospital-a");
  c->set_status(v1::CLIENT_ACTIVE);
  c->set_last_seen_unix_ms(1'800'000'000'000);
  c->add_dataset_ids("breast_cancer");
  std::string html = RenderOverview(tasks, clients);
  EXPECT_THAT(html, HasSubstr("<a href=\"/task?id=task-1\">task-1</a>"));
  EXPECT_THAT(html, HasSubstr(kEvilEscaped));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, HasSubstr("<span class=\"state state-completed\">COMPLETED</span>"));
  EXPECT_THAT(html, HasSubstr("30 of 30"));
  EXPECT_THAT(html, HasSubstr("<td>hospital-a</td><td><span class=\"client-status "
                              "status-active\">ACTIVE</span></td><td>breast_cancer</td>"
                              "<td>65 s ago"));
}

TEST(DashboardRenderTest, TheOverviewShowsStaleAndOfflineClientsAndTheThresholds) {
  v1::ListClientsResponse clients;
  clients.set_now_unix_ms(1'800'000'400'000);
  clients.set_stale_after_ms(60'000);
  clients.set_offline_after_ms(300'000);
  for (auto [id, status] :
       {std::pair{"hospital-b", v1::CLIENT_STALE}, std::pair{"hospital-c", v1::CLIENT_OFFLINE}}) {
    v1::ClientRecord* c = clients.add_clients();
    c->set_client_id(id);
    c->set_status(status);
    c->set_last_seen_unix_ms(1'800'000'000'000);
  }
  std::string html = RenderOverview({}, clients);
  EXPECT_THAT(html, HasSubstr("<td>hospital-b</td><td><span class=\"client-status "
                              "status-stale\">STALE</span></td>"));
  EXPECT_THAT(html, HasSubstr("<td>hospital-c</td><td><span class=\"client-status "
                              "status-offline\">OFFLINE</span></td>"));
  EXPECT_THAT(html, HasSubstr("<td>400 s ago"));
  EXPECT_THAT(html, HasSubstr("STALE: no long-poll open and no call for 60 s"));
  EXPECT_THAT(html, HasSubstr("OFFLINE: the same for 300 s"));
}

// A quarantined or disabled client says so after its status, with who decided, why, and
// the command that lets it back in; the reason text is escaped.
TEST(DashboardRenderTest, TheOverviewShowsQuarantinedAndDisabledClients) {
  v1::ListClientsResponse clients;
  clients.set_now_unix_ms(1'800'000'400'000);
  v1::ClientRecord* d = clients.add_clients();
  d->set_client_id("hospital-d");
  d->set_status(v1::CLIENT_ACTIVE);
  d->mutable_quarantine()->set_reason("SECAGG_CORRUPTED_SHARE: <b>x</b>");
  d->mutable_quarantine()->add_named_by("hospital-a");
  d->mutable_quarantine()->add_named_by("hospital-b");
  v1::ClientRecord* e = clients.add_clients();
  e->set_client_id("hospital-e");
  e->set_status(v1::CLIENT_OFFLINE);
  e->set_disabled(true);
  e->set_disabled_by("operator-1");
  e->set_disabled_reason("key leaked");
  v1::ClientRecord* a = clients.add_clients();
  a->set_client_id("hospital-a");
  a->set_status(v1::CLIENT_ACTIVE);
  std::string html = RenderOverview({}, clients);
  EXPECT_THAT(html, HasSubstr("ACTIVE</span> <span class=\"client-status status-held\">"
                              "QUARANTINED</span><br><span class=\"muted\">named by hospital-a, "
                              "hospital-b: SECAGG_CORRUPTED_SHARE: &lt;b&gt;x&lt;/b&gt;"));
  EXPECT_THAT(html, HasSubstr("<code>tessera clients release hospital-d</code>"));
  EXPECT_THAT(html, HasSubstr("OFFLINE</span> <span class=\"client-status status-held\">"
                              "DISABLED</span><br><span class=\"muted\">by operator-1: key leaked "
                              "(<code>tessera clients enable hospital-e</code>)"));
  EXPECT_THAT(html, Not(HasSubstr("<b>x</b>")));
  // hospital-a: its status only.
  EXPECT_THAT(html, HasSubstr("<td>hospital-a</td><td><span class=\"client-status "
                              "status-active\">ACTIVE</span></td>"));
}

v1::SiteAnswer* AddAnswer(v1::StageAttempt* s, const std::string& site, v1::SiteAnswerKind kind,
                          v1::SecAggRound step = v1::SECAGG_ROUND_UNSPECIFIED,
                          const std::string& detail = "") {
  v1::SiteAnswer* a = s->add_sites();
  a->set_client_id(site);
  a->set_kind(kind);
  a->set_step(step);
  a->set_detail(detail);
  return a;
}

// Round 4's FIT: attempt 1 ended without a sum (hospital-c refused with a hostile reason,
// hospital-b dropped at share_keys), attempt 2 runs with hospital-a computing.
google::protobuf::RepeatedPtrField<v1::StageAttempt> TwoFitAttempts() {
  google::protobuf::RepeatedPtrField<v1::StageAttempt> attempts;
  v1::StageAttempt* first = attempts.Add();
  first->set_round(4);
  first->set_stage(v1::STAGE_FIT);
  first->set_attempt(1);
  first->set_session("task-7/r4/fit/a1");
  first->set_threshold(2);
  first->set_ended_unix_ms(1'800'000'000'000);
  first->set_outcome("SECAGG_SERVER_TOO_FEW_CLIENTS: 1 of 2");
  AddAnswer(first, "hospital-a", v1::SITE_ANSWER_NO_SUM);
  AddAnswer(first, "hospital-b", v1::SITE_ANSWER_DROPPED, v1::SECAGG_SHARE_KEYS)
      ->set_drop_reason(v1::SECAGG_DROP_NO_ANSWER);
  AddAnswer(first, "hospital-c", v1::SITE_ANSWER_DECLINED, v1::SECAGG_ADVERTISE_KEYS, kEvil)
      ->set_decline_reason(v1::Decline::POLICY_REFUSED);
  v1::StageAttempt* second = attempts.Add();
  second->set_round(4);
  second->set_stage(v1::STAGE_FIT);
  second->set_attempt(2);
  second->set_session("task-7/r4/fit/a2");
  second->set_threshold(2);
  AddAnswer(second, "hospital-a", v1::SITE_ANSWER_PENDING, v1::SECAGG_MASKED_INPUT,
            "computing its contribution");
  AddAnswer(second, "hospital-b", v1::SITE_ANSWER_PENDING, v1::SECAGG_MASKED_INPUT,
            "answered this step");
  return attempts;
}

TEST(DashboardRenderTest, ATaskPageShowsTheRoundInFlightWithEachSitesAnswer) {
  v1::GetTaskResponse t = TaskWithRounds(3);
  v1::InFlightRound* f = t.mutable_in_flight();
  f->set_round(4);
  f->set_attempt(2);
  f->set_session_stage(v1::STAGE_FIT);
  f->set_session("task-7/r4/fit/a2");
  *f->mutable_stage_attempts() = TwoFitAttempts();
  f->add_drops(std::string("hospital-b dropped at share_keys: ") + kEvil);
  std::string html = RenderTask(t);
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_EQ(Count(html, kEvilEscaped), 2);  // the decline's detail, the drop line
  EXPECT_THAT(html, HasSubstr("<h2>Round 4 in flight</h2><p>Attempt 2, stage <strong "
                              "class=\"stage\">fit</strong>"));
  EXPECT_THAT(html, HasSubstr("<tr data-session=\"task-7/r4/fit/a1\"><td>fit</td><td>1</td>"
                              "<td>2</td><td><span class=\"answer answer-no_sum\">NO_SUM</span>"
                              "</td><td><span class=\"answer answer-dropped\">DROPPED at "
                              "share_keys: NO_ANSWER</span></td><td><span class=\"answer "
                              "answer-declined\">DECLINED POLICY_REFUSED: " +
                              std::string(kEvilEscaped) +
                              "</span></td><td class=\"outcome\">no sum: "
                              "SECAGG_SERVER_TOO_FEW_CLIENTS: 1 of 2</td></tr>"));
  EXPECT_THAT(html, HasSubstr("<td><span class=\"answer answer-pending\">PENDING at "
                              "masked_input: computing its contribution</span></td>"));
  // hospital-c was not invited again in attempt 2; the session still runs.
  EXPECT_THAT(html, HasSubstr("<td class=\"absent\">not invited</td><td class=\"outcome\">"
                              "running</td>"));
  // The committed rounds' rows are only those of the participation table.
  EXPECT_EQ(Count(html, "data-round="), 4);
}

TEST(DashboardRenderTest, AFailedTaskShowsItsReasonAndTheRoundItFailedIn) {
  v1::GetTaskResponse t = TaskWithRounds(3);
  t.mutable_task()->set_state(v1::TASK_FAILED);
  t.mutable_task()->set_state_reason(std::string("round 4 failed after 2 attempts: ") + kEvil);
  *t.mutable_task()->mutable_failed_round_attempts() = TwoFitAttempts();
  std::string html = RenderTask(t);
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, HasSubstr("<p class=\"banner failure\"><strong>Failed:</strong> round 4 "
                              "failed after 2 attempts: " +
                              std::string(kEvilEscaped) + "</p>"));
  EXPECT_EQ(Count(html, kEvilEscaped), 2);  // the banner, the decline (not the state line too)
  EXPECT_THAT(html, HasSubstr("<h2>The round the task failed in</h2><table class=\"attempts\">"));
  EXPECT_THAT(html, HasSubstr("data-session=\"task-7/r4/fit/a2\""));
  EXPECT_THAT(html, Not(HasSubstr("in flight")));
}

TEST(DashboardRenderTest, AWaitingTaskSaysWhatItWaitsFor) {
  v1::GetTaskResponse t = TaskWithRounds(0);
  t.mutable_task()->mutable_waiting()->set_message(
      std::string("waiting for 3 sites holding dataset breast_cancer (have 2) ") + kEvil);
  t.mutable_task()->mutable_waiting()->set_since_unix_ms(1'800'000'000'000);
  std::string html = RenderTask(t);
  EXPECT_THAT(html, HasSubstr("<dt>Waiting</dt><dd class=\"waiting\">waiting for 3 sites "
                              "holding dataset breast_cancer (have 2) " +
                              std::string(kEvilEscaped) +
                              " <span class=\"muted\">(since "
                              "2027-01-15 08:00:00 UTC)</span></dd>"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
}

TEST(DashboardRenderTest, ACommittedRoundShowsEachSitesAnswerPerSession) {
  v1::GetTaskResponse t = TaskWithRounds(1);
  v1::RoundRecord* r = t.mutable_rounds(1);
  v1::StageAttempt* fit = r->add_stage_attempts();
  fit->set_stage(v1::STAGE_FIT);
  fit->set_attempt(1);
  AddAnswer(fit, "hospital-a", v1::SITE_ANSWER_CONTRIBUTED);
  AddAnswer(fit, "hospital-b", v1::SITE_ANSWER_CONTRIBUTED);
  v1::StageAttempt* eval = r->add_stage_attempts();
  eval->set_stage(v1::STAGE_EVALUATE);
  eval->set_attempt(1);
  AddAnswer(eval, "hospital-a", v1::SITE_ANSWER_CONTRIBUTED);
  AddAnswer(eval, "hospital-b", v1::SITE_ANSWER_DECLINED, v1::SECAGG_ADVERTISE_KEYS, kEvil)
      ->set_decline_reason(v1::Decline::POLICY_REFUSED);
  std::string html = RenderTask(t);
  EXPECT_THAT(html,
              HasSubstr("<td class=\"took-part\">fit, eval<span class=\"answer "
                        "answer-contributed\">fit 1: CONTRIBUTED</span><span class=\"answer "
                        "answer-contributed\">evaluate 1: CONTRIBUTED</span></td>"
                        "<td class=\"took-part\">fit<span class=\"answer answer-contributed\">"
                        "fit 1: CONTRIBUTED</span><span class=\"answer answer-declined\">"
                        "evaluate 1: DECLINED POLICY_REFUSED: " +
                        std::string(kEvilEscaped) + "</span></td>"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
}

TEST(DashboardRenderTest, APageLoadsNothingFromElsewhere) {
  std::string page = RenderPage(kEvil, "/events?task=task-1", RenderTask(TaskWithRounds(2)));
  EXPECT_THAT(page, HasSubstr(kEvilEscaped));
  EXPECT_THAT(page, HasSubstr("<script src=\"/dashboard.js\" defer></script>"));
  EXPECT_THAT(page, HasSubstr("<link rel=\"stylesheet\" href=\"/dashboard.css\">"));
  EXPECT_THAT(page, HasSubstr("data-stream=\"/events?task=task-1\""));
  // Every src and href is a path on this server.
  std::regex ref("(src|href)=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(page.begin(), page.end(), ref); it != std::sregex_iterator();
       ++it) {
    EXPECT_EQ((*it)[2].str().substr(0, 1), "/") << (*it)[0];
  }
  EXPECT_EQ(Count(page, "<script"), 1);
  EXPECT_THAT(page, Not(HasSubstr("style=")));  // CSP: no inline style either
}

}  // namespace
}  // namespace tessera::dashboard
