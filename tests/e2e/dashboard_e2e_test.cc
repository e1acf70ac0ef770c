// `tessera dashboard` against a real federation, looked at by a real browser: Debian's
// headless Chromium loads the pages from the dashboard process, which reads the coordinator
// through the admin service with the operator's certificate.
//
// - The page of a finished task shows its metric curves with one point per committed
//   training round, the values the federation reported, and each site's participation
//   (its answer in each session of each round).
// - A page opened while a task runs follows it: the sites are frozen (SIGSTOP) so that the
//   page loads with k rounds, then thawed; Chromium's DOM, dumped once the task has ended
//   and the page's event stream closed, shows every round (the page's script applied the
//   pushed fragments: data-updates > 0, data-initial-points k < rounds).
// - Screenshots of the overview and of a task page (PNG). TESSERA_UPDATE_SCREENSHOTS=1 copies
//   them to docs/images/ in the source tree (docs/dashboard.md shows them).
//
// Chromium is required (deploy/install-deps.sh installs it): without it the test fails
// naming the path it looked for ($TESSERA_CHROMIUM, default /usr/bin/chromium).
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/testing/raw_http.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;

std::string ChromiumBinary() {
  const char* env = std::getenv("TESSERA_CHROMIUM");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/chromium";
}

// All values of `attribute` in `html`, in order.
std::vector<std::string> AttributeValues(const std::string& html, const std::string& attribute) {
  std::vector<std::string> values;
  std::regex re(attribute + "=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator();
       ++it) {
    values.push_back((*it)[1].str());
  }
  return values;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The <main id="live" ...> start tag of a dumped DOM.
std::string LiveTag(const std::string& dom) {
  std::smatch m;
  std::regex re("<main id=\"live\"[^>]*>");
  return std::regex_search(dom, m, re) ? m[0].str() : "";
}

// The document in what Chromium printed (its stderr shares the log).
std::string Document(const std::string& output) {
  const size_t start = output.find("<html");
  const size_t end = output.rfind("</html>");
  if (start == std::string::npos || end == std::string::npos || end < start) return "";
  return output.substr(start, end + 7 - start);
}

class DashboardChromiumTest : public FederationTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(ChromiumBinary().c_str(), X_OK), 0)
        << "no Chromium at " << ChromiumBinary()
        << ": install Debian's chromium (deploy/install-deps.sh does) or set TESSERA_CHROMIUM";
  }

  // Chromium's flags for one run, with a profile directory of its own.
  std::vector<std::string> Chromium(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {
        ChromiumBinary(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        absl::StrCat("--user-data-dir=", temp().path(), "/chromium-", ++chromium_runs_)};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // The DOM after the page's script ran and its event stream ended (a finished task's
  // stream ends at once; a running task's when it ends).
  absl::StatusOr<std::string> DumpDom(const std::string& url) {
    ASSIGN_OR_RETURN(CommandResult r,
                     RunCommand(Chromium({"--virtual-time-budget=30000", "--dump-dom", url}),
                                absl::Seconds(90)));
    if (r.exit_code() != 0) {
      return absl::InternalError(absl::StrCat("chromium --dump-dom ", url, ": ",
                                              r.status.ToString(), "\n", Tail(r.err, 20)));
    }
    return r.out;
  }

  // A PNG of `url`; copied to docs/images/<name> when TESSERA_UPDATE_SCREENSHOTS=1.
  absl::Status Screenshot(const std::string& url, const std::string& name, const std::string& size,
                          bool wait_for_stream_end) {
    const std::string path = absl::StrCat(temp().path(), "/", name);
    std::vector<std::string> args = {"--screenshot=" + path, "--window-size=" + size};
    if (wait_for_stream_end) args.push_back("--virtual-time-budget=30000");
    args.push_back(url);
    ASSIGN_OR_RETURN(CommandResult r, RunCommand(Chromium(args), absl::Seconds(90)));
    const std::string png = ReadFileOrEmpty(path);
    if (r.exit_code() != 0 || png.size() < 10'000 || png.substr(0, 8) != "\x89PNG\r\n\x1a\n") {
      return absl::InternalError(absl::StrCat("chromium --screenshot ", url, ": ",
                                              r.status.ToString(), ", ", png.size(), " bytes\n",
                                              Tail(r.err, 20)));
    }
    const char* update = std::getenv("TESSERA_UPDATE_SCREENSHOTS");
    if (update != nullptr && std::string(update) == "1") {
      std::error_code ec;
      std::filesystem::copy_file(path, SourcePath("docs/images/" + name),
                                 std::filesystem::copy_options::overwrite_existing, ec);
      if (ec) return absl::InternalError(absl::StrCat("copying ", name, ": ", ec.message()));
    }
    return absl::OkStatus();
  }

  // `tessera dashboard` on a free port, with the operator's certificate as flags.
  absl::Status StartDashboard() {
    const std::string ready = absl::StrCat(temp().path(), "/dashboard.ready");
    std::vector<std::string> argv = {ConsoleBinary(), "dashboard",
                                     "--listen",      "127.0.0.1:0",
                                     "--poll-ms",     "200",
                                     "--ready-file",  ready,
                                     "--coordinator", address(),
                                     "--ca",          operator_tls().ca_cert(),
                                     "--cert",        operator_tls().cert(),
                                     "--key",         operator_tls().key()};
    ASSIGN_OR_RETURN(dashboard_,
                     Process::Start(argv, absl::StrCat(temp().path(), "/dashboard.log")));
    ASSIGN_OR_RETURN(url_, WaitForFile(ready, *dashboard_, absl::Seconds(30)));
    return absl::OkStatus();
  }

  // Submits `spec` for kLiveRounds rounds; freezes the sites once round 3 has committed
  // (rounds 1 and 2 then have their metrics: one session per round brings a round's
  // evaluation with the next round's fit),
  // opens the task's page in Chromium, thaws them, and checks the DOM Chromium dumps when
  // the task has ended: the page's script applied the stream's fragments up to the last
  // round.
  void FollowsALiveTask(v1::TaskSpec spec) {
    constexpr int kLiveRounds = 8;
    spec.set_rounds(kLiveRounds);
    ASSERT_OK_AND_ASSIGN(std::string live, SubmitTask(spec));
    ASSERT_OK_AND_ASSIGN(v1::TaskRecord at_k, WaitForTask(live, [](const v1::TaskRecord& t) {
                           return t.last_committed_round() >= 3 || t.state() == v1::TASK_FAILED ||
                                  t.state() == v1::TASK_CANCELLED;
                         }));
    ASSERT_EQ(at_k.state(), v1::TASK_RUNNING) << at_k.state_reason();
    for (const std::string& site : Sites()) ASSERT_OK(this->site(site).process->Stop());
    const std::string live_page = absl::StrCat(url_, "task?id=", live);
    ASSERT_OK(Screenshot(live_page, "dashboard-running.png", "1280,760", false));
    // The screenshot's page opened a stream too: wait for one more.
    const std::string opened = absl::StrCat("event=dashboard_stream_opened task=", live);
    const int streams_before = Count(dashboard_->Log(), opened);
    ASSERT_OK_AND_ASSIGN(
        auto browser,
        Process::Start(Chromium({"--virtual-time-budget=120000", "--dump-dom", live_page}),
                       absl::StrCat(temp().path(), "/chromium-live.log")));
    ASSERT_OK(WaitFor(
        "the page's event stream",
        [&] { return Count(dashboard_->Log(), opened) > streams_before; }, absl::Seconds(60)));
    for (const std::string& site : Sites()) ASSERT_OK(this->site(site).process->Continue());
    ASSERT_OK_AND_ASSIGN(ExitStatus how, browser->Wait(absl::Seconds(120)));
    ASSERT_TRUE(how.Succeeded()) << how.ToString() << "\n" << browser->LogTail();
    const std::string live_dom = Document(browser->Log());
    const std::string tag = LiveTag(live_dom);
    ASSERT_FALSE(tag.empty()) << browser->LogTail();
    const std::vector<std::string> initial = AttributeValues(tag, "data-initial-points");
    const std::vector<std::string> updates = AttributeValues(tag, "data-updates");
    ASSERT_EQ(initial.size(), 1u) << tag;
    ASSERT_EQ(updates.size(), 1u) << tag;
    EXPECT_GE(std::stoi(initial[0]), 2) << tag;
    EXPECT_LT(std::stoi(initial[0]), kLiveRounds) << tag;
    EXPECT_GE(std::stoi(updates[0]), 1) << tag;
    const std::vector<std::string> final_points = AttributeValues(live_dom, "data-points");
    ASSERT_GE(final_points.size(), 2u) << live_dom;
    for (const std::string& p : final_points) EXPECT_EQ(p, absl::StrCat(kLiveRounds));
    EXPECT_THAT(live_dom, HasSubstr("COMPLETED"));
    std::printf("live page: loaded at %s of %d rounds, %s updates applied\n", initial[0].c_str(),
                kLiveRounds, updates[0].c_str());
  }

  int chromium_runs_ = 0;
  std::unique_ptr<Process> dashboard_;
  std::string url_;  // "http://127.0.0.1:PORT/"
};

TEST_F(DashboardChromiumTest, ShowsARealRunsCurvesAndFollowsALiveTask) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  ASSERT_OK(StartDashboard());
  ASSERT_THAT(url_, HasSubstr("http://127.0.0.1:"));

  // A finished task: its page in a real browser.
  constexpr int kRounds = 6;
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  spec.set_rounds(kRounds);
  spec.set_name("dashboard-finished");
  ASSERT_OK_AND_ASSIGN(std::string finished, SubmitTask(spec));
  ASSERT_OK(WaitForTask(finished, [](const v1::TaskRecord& t) {
              return t.state() == v1::TASK_COMPLETED;
            }).status());
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse reported, GetTask(finished));
  double accuracy = -1;
  for (const v1::Metric& m : reported.rounds(kRounds).metrics()) {
    if (m.name() == "accuracy") accuracy = m.value();
  }
  ASSERT_GE(accuracy, 0.9);
  const std::string page = absl::StrCat(url_, "task?id=", finished);
  ASSERT_OK_AND_ASSIGN(std::string dom, DumpDom(page));
  // One curve per metric, each through one point per training round.
  const std::vector<std::string> points = AttributeValues(dom, "data-points");
  ASSERT_GE(points.size(), 2u) << dom;
  for (const std::string& p : points) EXPECT_EQ(p, absl::StrCat(kRounds)) << dom;
  EXPECT_THAT(dom, HasSubstr("data-metric=\"accuracy\""));
  EXPECT_THAT(dom, HasSubstr(absl::StrFormat("<title>round %d: %.4g</title>", kRounds, accuracy)));
  EXPECT_THAT(dom, HasSubstr("<progress max=\"6\" value=\"6\">"));
  EXPECT_EQ(AttributeValues(dom, "data-round").size(), static_cast<size_t>(kRounds + 1));
  for (const std::string& site : Sites()) EXPECT_THAT(dom, HasSubstr("<th>" + site + "</th>"));
  // Each site's answer in each session of each round: at least one contributed fit (or
  // fit_evaluate: one session per round) per training round.
  const std::string contributed_fit = "<span class=\"answer answer-contributed\">fit";
  size_t fits = 0;
  for (size_t at = dom.find(contributed_fit); at != std::string::npos;
       at = dom.find(contributed_fit, at + 1)) {
    ++fits;
  }
  EXPECT_GE(fits, static_cast<size_t>(kRounds)) << dom;
  EXPECT_THAT(dom, HasSubstr("task ended: no more updates"));  // the page's script ran

  ASSERT_OK(Screenshot(page, "dashboard-task.png", "1280,1300", true));

  // A running task: the page loads at k rounds (sites frozen) and follows it to the end.
  spec.set_name("dashboard-live");
  // Another training configuration: a site contributes to one configuration once.
  spec.mutable_training()->set_learning_rate(0.25);
  FollowsALiveTask(spec);
  if (HasFatalFailure()) return;
  ASSERT_OK(Screenshot(url_, "dashboard-overview.png", "1280,560", false));

  // The dashboard stops cleanly on SIGTERM.
  EXPECT_TRUE(dashboard_->Terminate().Succeeded()) << dashboard_->LogTail();
}

// The command itself, without a browser: its flags, a page address already taken, and a
// coordinator that is not there (the page says so; the dashboard keeps serving).
class DashboardCommandTest : public FederationTest {};

TEST_F(DashboardCommandTest, RefusesBadFlagsAndServesWhileTheCoordinatorIsAway) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK_AND_ASSIGN(int free_port, ReserveLoopbackPort());
  const std::vector<std::string> tls = {
      "--ca",  operator_tls().ca_cert(), "--cert",        operator_tls().cert(),
      "--key", operator_tls().key(),     "--coordinator", absl::StrCat("127.0.0.1:", free_port)};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {ConsoleBinary(), "dashboard"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), tls.begin(), tls.end());
    return RunCommand(argv, absl::Seconds(30));
  };
  ASSERT_OK_AND_ASSIGN(CommandResult poll, run({"--poll-ms", "5"}));
  EXPECT_EQ(poll.exit_code(), 2);
  EXPECT_THAT(poll.err, HasSubstr("--poll-ms must be from 100"));
  ASSERT_OK_AND_ASSIGN(CommandResult where, run({"--listen", "nowhere.example:80"}));
  EXPECT_EQ(where.exit_code(), 2);
  EXPECT_THAT(where.err, HasSubstr("listen address 'nowhere.example:80'"));

  const std::string ready = absl::StrCat(temp().path(), "/dashboard.ready");
  std::vector<std::string> argv = {ConsoleBinary(), "dashboard",    "--listen",
                                   "127.0.0.1:0",   "--ready-file", ready};
  argv.insert(argv.end(), tls.begin(), tls.end());
  ASSERT_OK_AND_ASSIGN(auto board,
                       Process::Start(argv, absl::StrCat(temp().path(), "/dashboard.log")));
  ASSERT_OK_AND_ASSIGN(std::string url, WaitForFile(ready, *board, absl::Seconds(30)));
  const std::string address = url.substr(7, url.size() - 8);  // http://ADDRESS/
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  std::string page = testing::RawHttpGet(port, "/");
  EXPECT_EQ(testing::RawHttpStatus(page), 502) << page;
  EXPECT_THAT(page, HasSubstr("coordinator unreachable"));
  EXPECT_EQ(testing::RawHttpStatus(testing::RawHttpGet(port, "/dashboard.js")), 200);

  // A second dashboard on the same address: exit 1 naming it (not 4, "coordinator gone").
  ASSERT_OK_AND_ASSIGN(CommandResult taken, run({"--listen", address}));
  EXPECT_EQ(taken.exit_code(), 1) << taken.err;
  EXPECT_THAT(taken.err, HasSubstr(address));
  EXPECT_TRUE(board->Terminate().Succeeded()) << board->LogTail();
}

}  // namespace
}  // namespace tessera::e2e
