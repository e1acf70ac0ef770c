// Metrics, health and logs of the real daemons: a real Prometheus server (Debian's
// /usr/bin/prometheus) scraping a running federation, the /metrics /healthz /readyz
// listeners, the standard gRPC health service on the coordinator's port, and JSON logs
// with a failed TLS handshake naming its peer.
#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/e2e/health.grpc.pb.h"
#include "tests/testing/raw_http.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMonitoredSite[] = "hospital-a";

// "127.0.0.1:41875\n" -> 41875.
int PortOf(const std::string& address) {
  int port = 0;
  std::string a(absl::StripSuffix(address, "\n"));
  if (!absl::SimpleAtoi(a.substr(a.rfind(':') + 1), &port)) return -1;
  return port;
}

class MonitoringTest : public FederationTest {
 protected:
  // Metrics listeners on the coordinator and on kMonitoredSite, both on OS-chosen ports.
  void AddMetricsListeners() {
    edit_coordinator_config_ = [this](v1::CoordinatorConfig* c) {
      c->set_metrics_listen_address("127.0.0.1:0");
      c->set_metrics_ready_file(temp().File("coordinator-metrics"));
    };
    edit_client_config_ = [this](const std::string& site, v1::ClientConfig* c) {
      if (site != kMonitoredSite) return;
      c->set_metrics_listen_address("127.0.0.1:0");
      c->set_metrics_ready_file(temp().File("site-metrics"));
    };
  }

  // The PKI, the data split, the coordinator and the sites with the listeners above; the
  // coordinator's metrics port.
  absl::StatusOr<int> StartMonitoredFederation() {
    AddMetricsListeners();
    RETURN_IF_ERROR(MakeTestPki());
    RETURN_IF_ERROR(SplitData());
    RETURN_IF_ERROR(StartCoordinator());
    RETURN_IF_ERROR(StartClients());
    return MetricsPort(temp().File("coordinator-metrics"), *coordinator());
  }

  absl::StatusOr<int> MetricsPort(const std::string& ready_file, Process& owner) {
    ASSIGN_OR_RETURN(std::string bound, WaitForFile(ready_file, owner, absl::Seconds(30)));
    return PortOf(bound);
  }

  // Runs the example task for `rounds` rounds to completion; returns its id.
  absl::StatusOr<std::string> RunTask(uint32_t rounds) {
    ASSIGN_OR_RETURN(v1::TaskSpec spec, LoadExampleTask());
    spec.set_rounds(rounds);
    ASSIGN_OR_RETURN(std::string id, SubmitTask(spec));
    ASSIGN_OR_RETURN(v1::TaskRecord task, WaitForTask(id, [](const v1::TaskRecord& t) {
                       return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
                     }));
    if (task.state() != v1::TASK_COMPLETED) {
      return absl::InternalError(
          absl::StrCat("task ended ", v1::TaskState_Name(task.state()), ": ", task.state_reason()));
    }
    return id;
  }
};

// The value of an instant query's single sample ("3"), or "" while Prometheus has none.
std::string QueryValue(int prometheus_port, const std::string& query) {
  const std::string answer = testing::RawHttpGet(
      prometheus_port, absl::StrCat("/api/v1/query?query=", query), absl::Seconds(5));
  if (testing::RawHttpStatus(answer) != 200) return "";
  google::protobuf::Struct json;
  if (!google::protobuf::util::JsonStringToMessage(testing::RawHttpBody(answer), &json).ok()) {
    return "";
  }
  const auto& data = json.fields().at("data").struct_value();
  const auto& result = data.fields().at("result").list_value();
  if (result.values_size() != 1) return "";
  const auto& value = result.values(0).struct_value().fields().at("value").list_value();
  return value.values_size() == 2 ? value.values(1).string_value() : "";
}

// Debian's Prometheus, scraping the coordinator's and the site's metrics ports every
// second, its files in `dir`; its own port into `*prometheus_port`.
absl::StatusOr<std::unique_ptr<Process>> StartPrometheus(const testing::TempDir& dir,
                                                         int coordinator_port, int site_port,
                                                         int* prometheus_port) {
  ASSIGN_OR_RETURN(*prometheus_port, ReserveLoopbackPort());
  const std::string config = dir.File("prometheus.yml");
  testing::WriteTestFile(config, absl::StrCat("global:\n  scrape_interval: 1s\n"
                                              "scrape_configs:\n"
                                              "  - job_name: coordinator\n"
                                              "    static_configs:\n"
                                              "      - targets: ['127.0.0.1:",
                                              coordinator_port,
                                              "']\n"
                                              "  - job_name: site\n"
                                              "    static_configs:\n"
                                              "      - targets: ['127.0.0.1:",
                                              site_port, "']\n"));
  return Process::Start(
      {"/usr/bin/prometheus", "--config.file=" + config, "--storage.tsdb.path=" + dir.File("tsdb"),
       absl::StrCat("--web.listen-address=127.0.0.1:", *prometheus_port)},
      dir.File("prometheus.log"));
}

// The coordinator's own page after a `rounds`-round task: what the rounds did, in a valid
// exposition (promtool, the page written to `prom_file`).
void ExpectCoordinatorPage(int coordinator_port, uint32_t rounds, const std::string& prom_file) {
  const uint32_t kRounds = rounds;
  const std::string page = testing::RawHttpBody(testing::RawHttpGet(coordinator_port, "/metrics"));
  EXPECT_THAT(page, HasSubstr(absl::StrCat("tessera_rounds_committed_total ", kRounds, "\n")));
  // One session per round: round 1 a fit, the later rounds fit_evaluate (each carrying the
  // previous round's evaluation), and the last round's model its own evaluate session.
  EXPECT_THAT(page, HasSubstr("tessera_secagg_sessions_total{stage=\"fit\",outcome=\"completed\"} "
                              "1\n"));
  EXPECT_THAT(page, HasSubstr(absl::StrCat("tessera_secagg_sessions_total{stage=\"fit_evaluate\","
                                           "outcome=\"completed\"} ",
                                           kRounds - 1, "\n")));
  EXPECT_THAT(page, HasSubstr("tessera_secagg_sessions_total{stage=\"evaluate\",outcome="
                              "\"completed\"} 1\n"));
  EXPECT_THAT(page, HasSubstr(absl::StrCat("tessera_secagg_step_duration_seconds_count{stage=\""
                                           "fit_evaluate\",step=\"masked_input\"} ",
                                           kRounds - 1, "\n")));
  EXPECT_THAT(page, HasSubstr("tessera_tasks{state=\"TASK_COMPLETED\"} 1\n"));
  EXPECT_THAT(page, HasSubstr("tessera_clients_connected 3\n"));
  EXPECT_THAT(page, HasSubstr("tessera_grpc_server_handled_total{method=\"/tessera.v1.Federation/"
                              "PushResult\",code=\"OK\"}"));
  EXPECT_THAT(page, HasSubstr("tessera_grpc_server_received_bytes_total{method=\"/tessera.v1."
                              "Federation/PushResult\"}"));
  testing::WriteTestFile(prom_file, page);
  ASSERT_OK_AND_ASSIGN(
      CommandResult promtool,
      RunCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + prom_file}));
  EXPECT_EQ(promtool.exit_code(), 0) << promtool.out << promtool.err;
}

// The site's page after a `rounds`-round task, its health and its readiness (and the
// coordinator's).
void ExpectSitePage(int site_port, int coordinator_port, uint32_t rounds) {
  const uint32_t kRounds = rounds;
  const std::string site_page = testing::RawHttpBody(testing::RawHttpGet(site_port, "/metrics"));
  EXPECT_THAT(site_page, HasSubstr("tessera_client_connected 1\n"));
  EXPECT_THAT(site_page, HasSubstr("tessera_client_training_duration_seconds_count "));
  EXPECT_THAT(site_page, HasSubstr("tessera_client_sent_bytes_total{method=\"/tessera.v1."
                                   "Federation/PushResult\"}"));
  // Every model the site was sent is counted, whole (round 1's at least) or as a delta from
  // the model it held: rounds 2 and 3 and the last round's own evaluation may each go either
  // way (a 31-parameter model's delta saves a few bytes or none, and is then not sent).
  int whole = 0, delta = 0;
  for (absl::string_view line : absl::StrSplit(site_page, '\n')) {
    if (absl::ConsumePrefix(&line, "tessera_client_models_received_total{form=\"whole\"} ")) {
      EXPECT_TRUE(absl::SimpleAtoi(line, &whole)) << line;
    }
    if (absl::ConsumePrefix(&line, "tessera_client_models_received_total{form=\"delta\"} ")) {
      EXPECT_TRUE(absl::SimpleAtoi(line, &delta)) << line;
    }
  }
  EXPECT_GE(whole, 1);
  EXPECT_EQ(whole + delta, static_cast<int>(kRounds) + 1);
  EXPECT_THAT(site_page, Not(HasSubstr("delta_refused")));
  EXPECT_EQ(testing::RawHttpStatus(testing::RawHttpGet(site_port, "/healthz")), 200);
  EXPECT_EQ(testing::RawHttpStatus(testing::RawHttpGet(site_port, "/readyz")), 200);
  EXPECT_EQ(testing::RawHttpStatus(testing::RawHttpGet(coordinator_port, "/readyz")), 200);
  EXPECT_EQ(testing::RawHttpStatus(testing::RawHttpGet(coordinator_port, "/nothing")), 404);
}

TEST_F(MonitoringTest, PrometheusScrapesTheRoundsTheFederationCommitted) {
  constexpr uint32_t kRounds = 3;
  ASSERT_OK_AND_ASSIGN(int coordinator_port, StartMonitoredFederation());
  ASSERT_OK_AND_ASSIGN(int site_port,
                       MetricsPort(temp().File("site-metrics"), *site(kMonitoredSite).process));

  int prometheus_port = 0;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Process> prometheus,
                       StartPrometheus(temp(), coordinator_port, site_port, &prometheus_port));
  ASSERT_OK_AND_ASSIGN(std::string task_id, RunTask(kRounds));

  // Prometheus reaches the federation's count within a few scrapes.
  std::string rounds;
  absl::Status reached = WaitFor(
      "Prometheus to see tessera_rounds_committed_total == 3",
      [&] {
        rounds = QueryValue(prometheus_port, "tessera_rounds_committed_total");
        return rounds == absl::StrCat(kRounds);
      },
      absl::Seconds(30));
  ASSERT_OK(reached) << "last value '" << rounds << "'; prometheus log:\n"
                     << Tail(prometheus->Log(), 20);
  // The site was scraped too: it answered every step of every session it was in.
  std::string site_items;
  ASSERT_OK(WaitFor(
      "Prometheus to see the site's work items",
      [&] {
        site_items = QueryValue(prometheus_port, "sum(tessera_client_work_items_total)");
        int n = 0;
        // Five steps in each session: statistics, one per round (one session per round),
        // and the last round's evaluation.
        return absl::SimpleAtoi(site_items, &n) && n >= (static_cast<int>(kRounds) + 2) * 5;
      },
      absl::Seconds(30)))
      << site_items;
  EXPECT_EQ(QueryValue(prometheus_port, "up{job=\"site\"}"), "1");

  ASSERT_NO_FATAL_FAILURE(
      ExpectCoordinatorPage(coordinator_port, kRounds, temp().File("coordinator.prom")));
  ASSERT_NO_FATAL_FAILURE(ExpectSitePage(site_port, coordinator_port, kRounds));

  // With the coordinator gone, the site is alive but not ready.
  ASSERT_OK(StopCoordinator());
  ASSERT_OK(WaitFor(
      "the site's /readyz to turn 503",
      [&] { return testing::RawHttpStatus(testing::RawHttpGet(site_port, "/readyz")) == 503; },
      absl::Seconds(30)));
  const std::string not_ready = testing::RawHttpGet(site_port, "/readyz");
  EXPECT_THAT(testing::RawHttpBody(not_ready), HasSubstr("not connected to the coordinator"));
  EXPECT_EQ(testing::RawHttpStatus(testing::RawHttpGet(site_port, "/healthz")), 200);
}

TEST_F(MonitoringTest, GrpcHealthServiceIsServingThenNotServingAtShutdown) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(StartCoordinator());
  // mTLS still applies: a federation certificate (here the operator's) is needed.
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                       ChannelAs(operator_tls(), crypto::Role::kOperator));
  auto stub = grpc::health::v1::Health::NewStub(channel);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status st = stub->Check(&ctx, request, &response);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  {
    // Without a client certificate the handshake fails: no health answer either.
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = pki()->ca().cert_pem;
    auto anonymous = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(address(), grpc::SslCredentials(options)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckResponse response;
    EXPECT_FALSE(anonymous->Check(&ctx, {}, &response).ok());
  }
  // A watcher sees SERVING, then NOT_SERVING once the coordinator is told to stop.
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto watch = stub->Watch(&watch_ctx, grpc::health::v1::HealthCheckRequest());
  grpc::health::v1::HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  ASSERT_OK(coordinator()->Kill(SIGTERM));
  ASSERT_TRUE(watch->Read(&update)) << watch->Finish().error_message();
  EXPECT_EQ(update.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  watch_ctx.TryCancel();
  ASSERT_OK_AND_ASSIGN(ExitStatus how, coordinator()->Wait(absl::Seconds(30)));
  EXPECT_TRUE(how.Succeeded()) << how.ToString();
}

// Sends plain HTTP to the coordinator's TLS port; returns the local port it came from.
int SendPlainHttp(int port) {
  testing::RawHttpConnection peer(port);
  if (!peer.ok() || !peer.Write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) return -1;
  // The coordinator hangs up on us; waiting for that orders its log line before our check.
  peer.ReadUntilClosed(absl::Seconds(10));
  return peer.local_port();
}

// Every line parses as one JSON object with ts, level and event.
void ExpectJsonLines(const std::string& log, const std::string& who) {
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    ++lines;
    google::protobuf::Struct json;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &json).ok())
        << who << ": not a JSON line: " << line;
    EXPECT_TRUE(json.fields().contains("ts")) << line;
    EXPECT_TRUE(json.fields().contains("level")) << line;
    EXPECT_TRUE(json.fields().contains("event")) << line;
  }
  EXPECT_GT(lines, 2) << who;
}

TEST_F(MonitoringTest, JsonLogsOnBothDaemonsAndHandshakeFailuresNameThePeer) {
  edit_coordinator_config_ = [](v1::CoordinatorConfig* c) { c->set_log_format("json"); };
  edit_client_config_ = [](const std::string&, v1::ClientConfig* c) { c->set_log_format("json"); };
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(std::string task_id, RunTask(1));
  const int peer_port = SendPlainHttp(port());
  ASSERT_GT(peer_port, 0);
  ASSERT_OK(WaitFor(
      "the coordinator to log the failed handshake",
      [&] { return coordinator()->Log().find("tls_handshake_failed") != std::string::npos; },
      absl::Seconds(10)));
  ASSERT_OK(StopClient(kMonitoredSite));
  ASSERT_OK(StopCoordinator());

  const std::string coordinator_log = coordinator()->Log();
  ExpectJsonLines(coordinator_log, "coordinator");
  EXPECT_THAT(coordinator_log,
              HasSubstr(absl::StrCat("\"level\":\"warning\",\"event\":\"tls_handshake_failed\","
                                     "\"peer\":\"ipv4:127.0.0.1:",
                                     peer_port, "\",\"error\":\"SSL_ERROR_SSL")));
  EXPECT_THAT(coordinator_log, HasSubstr("\"event\":\"round_committed\""));
  ExpectJsonLines(site(kMonitoredSite).process->Log(), kMonitoredSite);
  EXPECT_THAT(site(kMonitoredSite).process->Log(), HasSubstr("\"event\":\"work_answered\""));
}

// A masked input between 64 KiB and 1 MiB goes as PushResultChunked, waiting for its turn
// at the site (HelloResponse.uploads_wait_for_admission; client/chunked_upload.h), not as one
// PushResult that every site sends at once: the coordinator's page counts the chunked calls.
TEST_F(MonitoringTest, AMidSizeMaskedInputGoesChunkedToACoordinatorThatAdmitsUploads) {
  ASSERT_OK_AND_ASSIGN(int coordinator_port, StartMonitoredFederation());
  // 30 features -> 600 -> 2 classes: 19,802 parameters, a masked input of about 80 KB.
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  spec.set_rounds(1);
  v1::ModelSpec* model = spec.mutable_model();
  model->Clear();
  model->set_kind(v1::ModelSpec::MLP);
  model->add_hidden_layers(600);
  model->set_num_classes(2);
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord task, WaitForTask(task_id, IsFinished, absl::Seconds(120)));
  ASSERT_EQ(task.state(), v1::TASK_COMPLETED) << task.state_reason();
  const std::string page = testing::RawHttpBody(testing::RawHttpGet(coordinator_port, "/metrics"));
  int chunked = 0;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (absl::ConsumePrefix(&line,
                            "tessera_grpc_server_handled_total{method=\"/tessera.v1."
                            "Federation/PushResultChunked\",code=\"OK\"} ")) {
      EXPECT_TRUE(absl::SimpleAtoi(line, &chunked)) << line;
    }
  }
  // Every site's masked input of the round's session (the evaluation session's vector, of
  // the AUC sketch and counts, is small).
  EXPECT_EQ(chunked, static_cast<int>(Sites().size())) << page;
}

}  // namespace
}  // namespace tessera::e2e
