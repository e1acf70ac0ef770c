#include "console/task_tables.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "console/admin_client.h"
#include "crypto/hash.h"
#include "proto/labels.h"
#include "proto/validation_split.h"

namespace tessera::console::internal {

std::string ShortState(v1::TaskState s) {
  std::string name = v1::TaskState_Name(s);
  return name.rfind("TASK_", 0) == 0 ? name.substr(5) : name;
}

std::string FormatMetric(const std::string& name, double v) {
  if (name == "num_examples" || name == "train_examples" || name == "num_train_rows") {
    return absl::StrFormat("%.0f", v);
  }
  return absl::StrFormat("%.4f", v);
}

std::vector<std::string> MetricNames(
    const google::protobuf::RepeatedPtrField<v1::RoundRecord>& rounds) {
  std::vector<std::string> names;
  for (const auto& r : rounds) {
    for (const auto& m : r.metrics()) {
      if (std::find(names.begin(), names.end(), m.name()) == names.end()) names.push_back(m.name());
    }
  }
  return names;
}

std::vector<std::string> RoundRow(const v1::RoundRecord& r, const std::vector<std::string>& names) {
  std::vector<std::string> row = {absl::StrCat(r.round()), absl::StrCat(r.fit_participants_size()),
                                  absl::StrCat(r.attempts())};
  for (const std::string& n : names) {
    std::string cell = "-";
    for (const auto& m : r.metrics()) {
      if (m.name() == n) cell = FormatMetric(n, m.value());
    }
    row.push_back(cell);
  }
  row.push_back(FormatMillis(r.committed_unix_ms()));
  return row;
}

std::string PadRow(const std::vector<std::string>& cells, const std::vector<size_t>& widths) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 < cells.size() && i < widths.size() && cells[i].size() < widths[i]) {
      line += std::string(widths[i] - cells[i].size(), ' ');
    }
    if (i + 1 < cells.size()) line += "  ";
  }
  return line;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) std::printf("%s\n", PadRow(r, width).c_str());
}

std::vector<std::string> RoundHeader(const std::vector<std::string>& names) {
  std::vector<std::string> h = {"ROUND", "SITES", "ATTEMPTS"};
  for (const std::string& n : names) h.push_back(absl::AsciiStrToUpper(n));
  h.push_back("COMMITTED (UTC)");
  return h;
}

absl::StatusOr<v1::GetTaskResponse> FetchTask(v1::Admin::Stub& stub, const std::string& id) {
  v1::GetTaskRequest request;
  request.set_task_id(id);
  v1::GetTaskResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  RETURN_IF_ERROR(CallStatus(stub.GetTask(&ctx, request, &response)));
  return response;
}

void PrintTaskSummary(const v1::TaskRecord& t) {
  std::printf("task      %s (%s)\n", t.task_id().c_str(), t.spec().name().c_str());
  std::printf("state     %s%s%s\n", ShortState(t.state()).c_str(),
              t.state_reason().empty() ? "" : ": ", t.state_reason().c_str());
  if (t.has_waiting()) {
    std::printf("waiting   %s (since %s)\n", t.waiting().message().c_str(),
                FormatMillis(t.waiting().since_unix_ms()).c_str());
  }
  std::printf("rounds    %d of %u committed\n", std::max(0, t.last_committed_round()),
              t.spec().rounds());
  std::printf("dataset   %s (%d features, label %s)\n", t.spec().dataset().id().c_str(),
              t.spec().dataset().features_size(), t.spec().dataset().label().c_str());
  if (!t.statistics_cohort().empty()) {
    std::printf("cohort    %s (the sites in the pooled statistics: only they train)\n",
                absl::StrJoin(t.statistics_cohort(), ", ").c_str());
  }
  std::printf("spec      sha256 %s\n", crypto::ToHex(t.spec_hash()).c_str());
  std::printf("submitted %s by %s\n", FormatMillis(t.created_unix_ms()).c_str(),
              t.submitted_by().c_str());
}

namespace {

// "AWAITING_APPROVAL" for SITE_AWAITING_APPROVAL: the decline reasons' words.
std::string DecisionName(v1::SiteDecisionState state) {
  std::string name = v1::SiteDecisionState_Name(state);
  return name.rfind("SITE_", 0) == 0 ? name.substr(5) : name;
}

}  // namespace

void PrintSiteDecisions(const v1::TaskRecord& t) {
  if (t.site_decisions().empty()) return;
  std::printf("\n");
  std::vector<std::vector<std::string>> rows = {{"SITE", "DECISION", "SINCE (UTC)", "REASON"}};
  for (const v1::SiteDecision& d : t.site_decisions()) {
    rows.push_back({d.client_id(), DecisionName(d.state()), FormatMillis(d.since_unix_ms()),
                    d.reason().empty() ? "-" : d.reason()});
  }
  PrintTable(rows);
}

void PrintAttempts(const std::string& title,
                   const google::protobuf::RepeatedPtrField<v1::StageAttempt>& attempts) {
  if (attempts.empty()) return;
  std::printf("\n%s\n", title.c_str());
  std::vector<std::vector<std::string>> rows = {
      {"ROUND", "STAGE", "ATTEMPT", "SITE", "ANSWER", "DETAIL"}};
  std::vector<std::string> outcomes;
  for (const v1::StageAttempt& s : attempts) {
    for (const v1::SiteAnswer& a : s.sites()) {
      rows.push_back({absl::StrCat(s.round()), proto::StageLabel(s.stage()),
                      absl::StrCat(s.attempt()), a.client_id(), proto::SiteAnswerLabel(a),
                      a.detail().empty() ? "-" : a.detail()});
    }
    const std::string outcome = s.ended_unix_ms() == 0 ? "running"
                                : s.completed()        ? "sum"
                                                       : "no sum: " + s.outcome();
    outcomes.push_back(
        absl::StrCat("  ", s.session(), " (threshold ", s.threshold(), "): ", outcome));
  }
  PrintTable(rows);
  for (const std::string& o : outcomes) std::printf("%s\n", o.c_str());
}

void PrintGlmReport(const v1::GlmReport& report) {
  const std::string ratio = report.family() == "binomial"  ? "ODDS_RATIO"
                            : report.family() == "poisson" ? "RATE_RATIO"
                            : report.family() == "cox"     ? "HAZARD_RATIO"
                                                           : "";
  std::vector<std::string> header = {
      "TERM", "ESTIMATE", "STD_ERROR", report.statistic() == "t" ? "T" : "Z",
      "P",    "CI_LOW",   "CI_HIGH"};
  if (!ratio.empty()) header.push_back(ratio + " (95% CI)");
  std::vector<std::vector<std::string>> rows = {header};
  for (const v1::GlmCoefficient& c : report.coefficients()) {
    std::vector<std::string> row = {c.name(),
                                    absl::StrFormat("%.6g", c.estimate()),
                                    absl::StrFormat("%.6g", c.std_error()),
                                    absl::StrFormat("%.4f", c.statistic()),
                                    absl::StrFormat("%.4g", c.p_value()),
                                    absl::StrFormat("%.6g", c.ci_low()),
                                    absl::StrFormat("%.6g", c.ci_high())};
    if (!ratio.empty()) {
      row.push_back(absl::StrFormat("%.4g (%.4g, %.4g)", std::exp(c.estimate()),
                                    std::exp(c.ci_low()), std::exp(c.ci_high())));
    }
    rows.push_back(std::move(row));
  }
  std::printf(
      "\n%s regression on %lld rows%s: %s after %u rounds (%u Newton steps)\n",
      report.family().c_str(), static_cast<long long>(report.rows()),
      report.family() == "cox"
          ? absl::StrCat(
                ", ", report.events(), " events, ",
                report.pooled_grid_points() > 0
                    ? absl::StrCat("pooled on a grid of ", report.pooled_grid_points(), " times")
                    : std::string("stratified by site"))
                .c_str()
          : "",
      report.converged() ? "converged" : "NOT converged", report.rounds(), report.iterations());
  PrintTable(rows);
  if (report.family() == "cox") {
    std::printf("partial log-likelihood %.6f\n", report.log_likelihood());
  } else {
    std::printf("residual deviance %.6f on %lld degrees of freedom", report.deviance(),
                static_cast<long long>(report.df_residual()));
    if (report.null_deviance() != 0) std::printf(" (null deviance %.6f)", report.null_deviance());
    std::printf("; AIC %.6f", report.aic());
    if (report.family() == "gaussian") std::printf("; dispersion %.6g", report.dispersion());
    std::printf("\n");
  }
}

void PrintSelection(const v1::TaskRecord& t) {
  if (!proto::HasValidationSplit(t.spec())) return;
  std::printf(
      "\nvalidation  %g%% of each site's training rows held out; the rounds' metrics are "
      "on them; rounds selected on validation %s\n",
      t.spec().training().validation_fraction() * 100, proto::SelectionMetric(t.spec()).c_str());
  if (t.selected_round() == 0) return;
  std::printf("selected    round %u: %s\n", t.selected_round(), t.selection().c_str());
  if (t.test_metrics().empty()) return;
  std::vector<std::string> parts;
  for (const v1::Metric& m : t.test_metrics()) {
    parts.push_back(absl::StrCat(m.name(), "=", FormatMetric(m.name(), m.value())));
  }
  std::printf("test        round %u on the test rows of %d sites: %s\n", t.selected_round(),
              t.test_participants_size(), absl::StrJoin(parts, " ").c_str());
}

}  // namespace tessera::console::internal
