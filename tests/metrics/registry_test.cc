#include "metrics/registry.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace tessera::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Checked {
  int exit_code = -1;
  std::string output;
};

// Debian's `promtool check metrics` (Prometheus 2.42) parses the text from stdin with the
// Prometheus parser and lints it; exit 0 only for a clean exposition.
Checked Promtool(const std::string& exposition) {
  tessera::testing::TempDir dir;
  tessera::testing::WriteTestFile(dir.File("metrics.txt"), exposition);
  const std::string cmd = "/usr/bin/promtool check metrics < " + dir.File("metrics.txt") + " > " +
                          dir.File("out.txt") + " 2>&1";
  Checked c;
  int rc = std::system(cmd.c_str());
  c.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream in(dir.File("out.txt"));
  std::stringstream s;
  s << in.rdbuf();
  c.output = s.str();
  return c;
}

TEST(MetricsRegistryTest, CounterRendersHelpTypeAndLabelledSamples) {
  Registry r;
  CounterFamily& f = r.Counter("tessera_declines_total", "Declines by reason.", {"reason"});
  f.With({"POLICY_REFUSED"}).Increment();
  f.With({"POLICY_REFUSED"}).Increment(2);
  f.With({"DATASET_MISSING"}).Increment();
  EXPECT_EQ(r.Render(),
            "# HELP tessera_declines_total Declines by reason.\n"
            "# TYPE tessera_declines_total counter\n"
            "tessera_declines_total{reason=\"DATASET_MISSING\"} 1\n"
            "tessera_declines_total{reason=\"POLICY_REFUSED\"} 3\n");
}

TEST(MetricsRegistryTest, UnlabelledFamiliesRenderZeroBeforeFirstUse) {
  Registry r;
  r.Counter("tessera_rounds_committed_total", "Rounds.");
  r.Gauge("tessera_up", "Up.");
  std::string out = r.Render();
  EXPECT_THAT(out, HasSubstr("\ntessera_rounds_committed_total 0\n"));
  EXPECT_THAT(out, HasSubstr("\ntessera_up 0\n"));
  // A labelled family has no sample until a label set is used.
  Registry r2;
  r2.Counter("tessera_x_total", "X.", {"reason"});
  EXPECT_THAT(r2.Render(), Not(HasSubstr("tessera_x_total{")));
}

TEST(MetricsRegistryTest, LabelValuesAndHelpAreEscaped) {
  Registry r;
  r.Gauge("tessera_g", "Help with \\ and\nnewline.", {"v"}).With({"a\"b\\c\nd"}).Set(1.5);
  EXPECT_EQ(r.Render(),
            "# HELP tessera_g Help with \\\\ and\\nnewline.\n"
            "# TYPE tessera_g gauge\n"
            "tessera_g{v=\"a\\\"b\\\\c\\nd\"} 1.5\n");
  Checked c = Promtool(r.Render());
  EXPECT_EQ(c.exit_code, 0) << c.output;
}

TEST(MetricsRegistryTest, HistogramRendersCumulativeBucketsSumAndCount) {
  Registry r;
  HistogramFamily& h =
      r.Histogram("tessera_step_duration_seconds", "Step durations.", {"step"}, {0.1, 1, 10});
  Histogram& s = h.With({"masked_input"});
  s.Observe(0.05);
  s.Observe(0.1);  // inclusive upper bound
  s.Observe(2);
  s.Observe(100);
  EXPECT_EQ(s.count(), 4u);
  EXPECT_EQ(r.Render(),
            "# HELP tessera_step_duration_seconds Step durations.\n"
            "# TYPE tessera_step_duration_seconds histogram\n"
            "tessera_step_duration_seconds_bucket{step=\"masked_input\",le=\"0.1\"} 2\n"
            "tessera_step_duration_seconds_bucket{step=\"masked_input\",le=\"1\"} 2\n"
            "tessera_step_duration_seconds_bucket{step=\"masked_input\",le=\"10\"} 3\n"
            "tessera_step_duration_seconds_bucket{step=\"masked_input\",le=\"+Inf\"} 4\n"
            "tessera_step_duration_seconds_sum{step=\"masked_input\"} 102.15\n"
            "tessera_step_duration_seconds_count{step=\"masked_input\"} 4\n");
}

TEST(MetricsRegistryTest, ValuesFormatForPrometheus) {
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(1e300), "1e+300");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
}

TEST(MetricsRegistryTest, CollectorsRunAtEachRender) {
  Registry r;
  GaugeFamily& tasks = r.Gauge("tessera_tasks", "Tasks by state.", {"state"});
  int state = 0;
  r.AddCollector([&] {
    tasks.Clear();
    tasks.With({state == 0 ? "RUNNING" : "COMPLETED"}).Set(1);
  });
  EXPECT_THAT(r.Render(), HasSubstr("tessera_tasks{state=\"RUNNING\"} 1\n"));
  state = 1;
  std::string out = r.Render();
  EXPECT_THAT(out, HasSubstr("tessera_tasks{state=\"COMPLETED\"} 1\n"));
  EXPECT_THAT(out, Not(HasSubstr("RUNNING")));
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  CounterFamily& c = r.Counter("tessera_c_total", "C.", {"t"});
  HistogramFamily& h = r.Histogram("tessera_h_seconds", "H.", {}, DurationBuckets());
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        c.With({t % 2 == 0 ? "even" : "odd"}).Increment();
        h.With({}).Observe(0.5);
        if (i % 1000 == 0) r.Render();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.With({"even"}).value() + c.With({"odd"}).value(), 40000u);
  EXPECT_EQ(h.With({}).count(), 40000u);
  EXPECT_DOUBLE_EQ(h.With({}).sum(), 20000.0);
}

TEST(MetricsRegistryTest, WholeExpositionPassesPromtool) {
  Registry r;
  r.Counter("tessera_rounds_committed_total", "Training rounds committed.").With({}).Increment(7);
  r.Counter("tessera_grpc_received_bytes_total", "Bytes received.", {"method"})
      .With({"/tessera.v1.Federation/PullWork"})
      .Increment(123);
  r.Gauge("tessera_clients", "Clients by status.", {"status"}).With({"ACTIVE"}).Set(3);
  HistogramFamily& h = r.Histogram("tessera_secagg_step_duration_seconds", "Step durations.",
                                   {"stage", "step"}, DurationBuckets());
  h.With({"fit", "advertise_keys"}).Observe(1.25);
  h.With({"evaluate", "unmasking"}).Observe(0.003);
  r.Histogram("tessera_empty_seconds", "Never observed.", {}, {1, 2});
  Checked c = Promtool(r.Render());
  EXPECT_EQ(c.exit_code, 0) << c.output << "\n" << r.Render();
}

TEST(MetricsRegistryTest, PromtoolRejectsABrokenExposition) {
  // The check above would pass vacuously if promtool accepted anything.
  Checked c = Promtool("# TYPE x counter\nx{a=\"unterminated} 1\n");
  EXPECT_NE(c.exit_code, 0) << c.output;
}

TEST(MetricsRegistryDeathTest, ProgrammingErrorsAbortWithAMessage) {
  EXPECT_DEATH(
      {
        Registry r;
        r.Counter("tessera_rounds", "no _total suffix");
      },
      "must end in _total");
  EXPECT_DEATH(
      {
        Registry r;
        r.Gauge("bad-name", "x");
      },
      "bad metric name");
  EXPECT_DEATH(
      {
        Registry r;
        r.Gauge("tessera_g", "x", {"le"});
      },
      "bad label name");
  EXPECT_DEATH(
      {
        Registry r;
        r.Gauge("tessera_g", "x");
        r.Gauge("tessera_g", "y");
      },
      "registered twice");
  EXPECT_DEATH(
      {
        Registry r;
        r.Gauge("tessera_g", "x", {"a", "b"}).With({"only one"});
      },
      "takes 2 label values");
  EXPECT_DEATH(
      {
        Registry r;
        r.Histogram("tessera_h", "x", {}, {1, 1});
      },
      "strictly increasing");
}

}  // namespace
}  // namespace tessera::metrics
