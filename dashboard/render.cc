// The dashboard's pages (render.h). Every string from the coordinator goes through
// EscapeHtml; attribute values are always double-quoted.
#include "dashboard/render.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "proto/labels.h"

namespace tessera::dashboard {
namespace {

std::string Time(int64_t ms) {
  if (ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

// "RUNNING" for TASK_RUNNING; "AWAITING_APPROVAL" for SITE_AWAITING_APPROVAL.
std::string Short(const std::string& name, std::string_view prefix) {
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}
std::string StateName(v1::TaskState s) { return Short(v1::TaskState_Name(s), "TASK_"); }

std::string TaskLink(const std::string& id) {
  return absl::StrCat("<a href=\"/task?id=", EscapeHtml(UrlEncode(id)), "\">", EscapeHtml(id),
                      "</a>");
}

std::string Cell(const std::string& html) { return absl::StrCat("<td>", html, "</td>"); }

std::string HeaderRow(const std::vector<std::string>& names) {
  std::string row = "<tr>";
  for (const std::string& n : names) absl::StrAppend(&row, "<th>", EscapeHtml(n), "</th>");
  return row + "</tr>";
}

std::string StateBadge(v1::TaskState s) {
  std::string name = StateName(s);
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  return absl::StrCat("<span class=\"state state-", lower, "\">", name, "</span>");
}

std::string Progress(const v1::TaskRecord& t) {
  const int done = std::max(0, t.last_committed_round());
  return absl::StrCat("<progress max=\"", std::max<uint32_t>(1, t.spec().rounds()), "\" value=\"",
                      done, "\"></progress> <span class=\"rounds\">", done, " of ",
                      t.spec().rounds(), "</span>");
}

// "ACTIVE", "STALE", "OFFLINE" in a badge whose class colours it.
std::string ClientStatusBadge(v1::ClientStatus status) {
  const std::string name = Short(v1::ClientStatus_Name(status), "CLIENT_");
  return absl::StrCat("<span class=\"client-status status-", absl::AsciiStrToLower(name), "\">",
                      EscapeHtml(name), "</span>");
}

// The operator's decisions that keep a client out of every cohort, after its status:
// QUARANTINED (who named it and why) and DISABLED (by whom and why).
std::string HeldBack(const v1::ClientRecord& c) {
  std::string html;
  if (c.has_quarantine()) {
    absl::StrAppend(&html, " <span class=\"client-status status-held\">QUARANTINED</span>",
                    "<br><span class=\"muted\">named by ",
                    EscapeHtml(absl::StrJoin(c.quarantine().named_by(), ", ")), ": ",
                    EscapeHtml(c.quarantine().reason()), " (since ",
                    Time(c.quarantine().since_unix_ms()), " UTC; <code>tessera clients release ",
                    EscapeHtml(c.client_id()), "</code>)</span>");
  }
  if (c.disabled()) {
    absl::StrAppend(&html, " <span class=\"client-status status-held\">DISABLED</span>",
                    "<br><span class=\"muted\">by ", EscapeHtml(c.disabled_by()),
                    c.disabled_reason().empty() ? "" : ": ", EscapeHtml(c.disabled_reason()),
                    " (<code>tessera clients enable ", EscapeHtml(c.client_id()),
                    "</code>)</span>");
  }
  return html;
}

std::string ClientsTable(const v1::ListClientsResponse& clients) {
  std::string html = absl::StrCat(
      "<table class=\"clients\"><thead>",
      HeaderRow({"Client", "Status", "Datasets", "Last seen", "Version", "Certificate SHA-256"}),
      "</thead><tbody>");
  for (const v1::ClientRecord& c : clients.clients()) {
    const int64_t ago =
        std::max<int64_t>(0, (clients.now_unix_ms() - c.last_seen_unix_ms()) / 1000);
    absl::StrAppend(
        &html, "<tr>", Cell(EscapeHtml(c.client_id())),
        Cell(absl::StrCat(ClientStatusBadge(c.status()), HeldBack(c))),
        Cell(EscapeHtml(absl::StrJoin(c.dataset_ids(), ", "))),
        Cell(absl::StrCat(ago, " s ago <span class=\"muted\">(", Time(c.last_seen_unix_ms()),
                          " UTC)</span>")),
        Cell(EscapeHtml(c.client_version())),
        Cell(absl::StrCat("<code>", EscapeHtml(c.cert_fingerprint().substr(0, 16)), "…</code>")),
        "</tr>");
  }
  if (clients.clients().empty())
    absl::StrAppend(&html, "<tr><td colspan=\"6\">no client has connected yet</td></tr>");
  absl::StrAppend(&html, "</tbody></table>");
  if (clients.stale_after_ms() > 0) {
    absl::StrAppend(
        &html, "<p class=\"muted thresholds\">STALE: no long-poll open and no call for ",
        clients.stale_after_ms() / 1000, " s (still picked into cohorts); OFFLINE: the same ",
        "for ", clients.offline_after_ms() / 1000, " s (not picked until it calls again).</p>");
  }
  return html;
}

using StageAttempts = google::protobuf::RepeatedPtrField<v1::StageAttempt>;

// One answer of a site in one session, with the site's detail ("DECLINED POLICY_REFUSED:
// the rule's text"), in a span whose class says its kind ("answer answer-declined").
std::string AnswerHtml(const v1::SiteAnswer& a, const std::string& prefix) {
  const std::string kind =
      absl::AsciiStrToLower(Short(v1::SiteAnswerKind_Name(a.kind()), "SITE_ANSWER_"));
  std::string text = absl::StrCat(prefix, proto::SiteAnswerLabel(a));
  if (!a.detail().empty()) absl::StrAppend(&text, ": ", a.detail());
  return absl::StrCat("<span class=\"answer answer-", EscapeHtml(kind), "\">", EscapeHtml(text),
                      "</span>");
}

// A site's answers in a committed round's sessions, one line each ("fit 1: CONTRIBUTED");
// empty when the round kept none (rounds committed before answers were recorded).
std::string SiteSessions(const StageAttempts& attempts, const std::string& site) {
  std::string html;
  for (const v1::StageAttempt& s : attempts) {
    for (const v1::SiteAnswer& a : s.sites()) {
      if (a.client_id() != site) continue;
      absl::StrAppend(
          &html, AnswerHtml(a, absl::StrCat(proto::StageLabel(s.stage()), " ", s.attempt(), ": ")));
    }
  }
  return html;
}

// How a session ended: "running", "sum", or "no sum: <why>".
std::string SessionOutcome(const v1::StageAttempt& s) {
  if (s.ended_unix_ms() == 0) return "running";
  return s.completed() ? "sum" : absl::StrCat("no sum: ", s.outcome());
}

// One row per session (stage and attempt), one column per invited site with its answer, and
// how the session ended.
std::string AttemptsTable(const StageAttempts& attempts) {
  std::set<std::string> sites;
  for (const v1::StageAttempt& s : attempts) {
    for (const v1::SiteAnswer& a : s.sites()) sites.insert(a.client_id());
  }
  std::vector<std::string> header = {"Stage", "Attempt", "Threshold"};
  header.insert(header.end(), sites.begin(), sites.end());
  header.push_back("Outcome");
  std::string html =
      absl::StrCat("<table class=\"attempts\"><thead>", HeaderRow(header), "</thead><tbody>");
  for (const v1::StageAttempt& s : attempts) {
    absl::StrAppend(&html, "<tr data-session=\"", EscapeHtml(s.session()), "\">",
                    Cell(proto::StageLabel(s.stage())), Cell(absl::StrCat(s.attempt())),
                    Cell(absl::StrCat(s.threshold())));
    for (const std::string& site : sites) {
      std::string cell = "<td class=\"absent\">not invited</td>";
      for (const v1::SiteAnswer& a : s.sites()) {
        if (a.client_id() == site) cell = Cell(AnswerHtml(a, ""));
      }
      absl::StrAppend(&html, cell);
    }
    absl::StrAppend(&html, "<td class=\"outcome\">", EscapeHtml(SessionOutcome(s)), "</td></tr>");
  }
  return html + "</tbody></table>";
}

// The round in flight: its stage and attempt, each invited site's answer in each session so
// far (PENDING with where the site is), and the drops so far.
std::string InFlight(const v1::InFlightRound& f) {
  v1::Stage stage = f.session_stage();
  if (f.session().empty() && !f.stage_attempts().empty())
    stage = f.stage_attempts(f.stage_attempts_size() - 1).stage();
  std::string html = absl::StrCat("<section class=\"in-flight\"><h2>Round ", f.round(),
                                  " in flight</h2><p>Attempt ", f.attempt(),
                                  ", stage <strong class=\"stage\">", proto::StageLabel(stage),
                                  "</strong>", f.fit_done() ? " (fit done, evaluating)" : "",
                                  ", started ", Time(f.started_unix_ms()), " UTC</p>");
  if (f.stage_attempts().empty()) {
    absl::StrAppend(&html, "<p class=\"muted\">no session has opened yet</p>");
  } else {
    absl::StrAppend(&html, AttemptsTable(f.stage_attempts()));
  }
  if (!f.drops().empty()) {
    std::vector<std::string> drops;
    for (const std::string& d : f.drops()) drops.push_back(EscapeHtml(d));
    absl::StrAppend(&html, "<p class=\"drops\">", absl::StrJoin(drops, "<br>"), "</p>");
  }
  return html + "</section>";
}

// Each site's part in each round: fit and/or eval, or nothing; and the round's drops.
std::string Participation(const v1::GetTaskResponse& task) {
  std::set<std::string> sites;
  for (const v1::RoundRecord& r : task.rounds()) {
    sites.insert(r.fit_participants().begin(), r.fit_participants().end());
    sites.insert(r.eval_participants().begin(), r.eval_participants().end());
  }
  for (const v1::SiteDecision& d : task.task().site_decisions()) sites.insert(d.client_id());
  for (const v1::RoundRecord& r : task.rounds()) {
    for (const v1::StageAttempt& a : r.stage_attempts()) {
      for (const v1::SiteAnswer& answer : a.sites()) sites.insert(answer.client_id());
    }
  }
  std::vector<std::string> header = {"Round", "Attempts"};
  header.insert(header.end(), sites.begin(), sites.end());
  header.push_back("Drops");
  std::string html =
      absl::StrCat("<table class=\"participation\"><thead>", HeaderRow(header), "</thead><tbody>");
  for (const v1::RoundRecord& r : task.rounds()) {
    absl::StrAppend(&html, "<tr data-round=\"", r.round(), "\">",
                    Cell(r.round() == 0 ? "0 <span class=\"muted\">statistics</span>"
                                        : absl::StrCat(r.round())),
                    Cell(absl::StrCat(r.attempts())));
    for (const std::string& s : sites) {
      const bool fit = std::count(r.fit_participants().begin(), r.fit_participants().end(), s);
      const bool eval = std::count(r.eval_participants().begin(), r.eval_participants().end(), s);
      const char* what = fit && eval ? "fit, eval" : fit ? "fit" : eval ? "eval" : "—";
      absl::StrAppend(&html, "<td class=\"", fit || eval ? "took-part" : "absent", "\">", what,
                      SiteSessions(r.stage_attempts(), s), "</td>");
    }
    std::vector<std::string> drops;
    for (const std::string& d : r.drops()) drops.push_back(EscapeHtml(d));
    absl::StrAppend(&html, Cell(drops.empty() ? "" : absl::StrJoin(drops, "<br>")), "</tr>");
  }
  if (task.rounds().empty()) {
    absl::StrAppend(&html, "<tr><td colspan=\"", header.size(),
                    "\">no committed round yet</td></tr>");
  }
  return html + "</tbody></table>";
}

std::string Decisions(const v1::TaskRecord& t) {
  if (t.site_decisions().empty()) return "<p class=\"muted\">no site has answered yet</p>";
  std::string html =
      absl::StrCat("<table class=\"decisions\"><thead>",
                   HeaderRow({"Site", "Decision", "Since (UTC)", "Reason"}), "</thead><tbody>");
  for (const v1::SiteDecision& d : t.site_decisions()) {
    const std::string state = Short(v1::SiteDecisionState_Name(d.state()), "SITE_");
    absl::StrAppend(&html, "<tr class=\"decision-",
                    d.state() == v1::SITE_APPROVED ? "ok" : "declined", "\">",
                    Cell(EscapeHtml(d.client_id())), Cell(EscapeHtml(state)),
                    Cell(Time(d.since_unix_ms())), Cell(EscapeHtml(d.reason())), "</tr>");
  }
  return html + "</tbody></table>";
}

// An analytics task's answer: its metrics as a table (a curve per cell would say nothing).
std::string AnswerTable(const v1::GetTaskResponse& task) {
  if (task.rounds().empty()) return "<p class=\"muted\">no answer yet</p>";
  std::string html = absl::StrCat("<table class=\"answer\"><thead>", HeaderRow({"Value", "Answer"}),
                                  "</thead><tbody>");
  for (const v1::Metric& m : task.rounds(task.rounds_size() - 1).metrics()) {
    absl::StrAppend(&html, "<tr>", Cell(EscapeHtml(m.name())),
                    Cell(absl::StrFormat("%.10g", m.value())), "</tr>");
  }
  return html + "</tbody></table>";
}

// A task with a validation split (TrainingSpec.validation_fraction): the round it selected,
// why, and that round's model on the sites' test rows — the task's reported figures.
std::string SelectionSection(const v1::TaskRecord& t) {
  if (t.selected_round() == 0) return "";
  std::string html = absl::StrCat("<section class=\"test\"><h2>Test: round ", t.selected_round(),
                                  "</h2><p class=\"muted\">", EscapeHtml(t.selection()), "</p>");
  if (t.test_metrics().empty()) {
    return html + "<p class=\"muted\">no test metrics (yet)</p></section>";
  }
  absl::StrAppend(
      &html, "<table class=\"answer\"><thead>",
      HeaderRow({"Metric", absl::StrCat("Test rows of ", t.test_participants_size(), " sites")}),
      "</thead><tbody>");
  for (const v1::Metric& m : t.test_metrics()) {
    absl::StrAppend(&html, "<tr>", Cell(EscapeHtml(m.name())),
                    Cell(absl::StrFormat("%.10g", m.value())), "</tr>");
  }
  return html + "</tbody></table></section>";
}

}  // namespace

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string UrlEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += absl::StrFormat("%%%02X", c);
    }
  }
  return out;
}

bool IsTerminal(v1::TaskState s) {
  return s == v1::TASK_COMPLETED || s == v1::TASK_FAILED || s == v1::TASK_CANCELLED;
}

std::string EpsilonSpent(const v1::GetTaskResponse& task) {
  const v1::TaskSpec& spec = task.task().spec();
  if (!spec.has_privacy()) return "no differential privacy";
  double epsilon = 0;
  for (const v1::RoundRecord& r : task.rounds()) {
    for (const v1::Metric& m : r.metrics()) {
      if (m.name() == "epsilon") epsilon = m.value();
    }
  }
  return absl::StrFormat("ε %.4g of %.4g (δ %.3g)", epsilon, spec.privacy().epsilon_budget(),
                         spec.privacy().delta());
}

std::string RenderOverview(const v1::ListTasksResponse& tasks,
                           const v1::ListClientsResponse& clients) {
  std::string html = absl::StrCat(
      "<section><h2>Tasks</h2><table class=\"tasks\"><thead>",
      HeaderRow({"Task", "Name", "State", "Rounds", "Dataset", "Submitted (UTC)", "By"}),
      "</thead><tbody>");
  for (const v1::TaskRecord& t : tasks.tasks()) {
    absl::StrAppend(&html, "<tr>", Cell(TaskLink(t.task_id())), Cell(EscapeHtml(t.spec().name())),
                    Cell(StateBadge(t.state())), Cell(Progress(t)),
                    Cell(EscapeHtml(t.spec().dataset().id())), Cell(Time(t.created_unix_ms())),
                    Cell(EscapeHtml(t.submitted_by())), "</tr>");
  }
  if (tasks.tasks().empty()) absl::StrAppend(&html, "<tr><td colspan=\"7\">no task yet</td></tr>");
  absl::StrAppend(&html, "</tbody></table></section><section><h2>Clients</h2>",
                  ClientsTable(clients), "</section>");
  return html;
}

std::string RenderTask(const v1::GetTaskResponse& task) {
  const v1::TaskRecord& t = task.task();
  std::string html =
      absl::StrCat("<section class=\"summary\"><h2>", EscapeHtml(t.task_id()),
                   " <span class=\"muted\">", EscapeHtml(t.spec().name()), "</span></h2>");
  const bool failed = t.state() == v1::TASK_FAILED;
  if (failed) {
    absl::StrAppend(&html, "<p class=\"banner failure\"><strong>Failed:</strong> ",
                    EscapeHtml(t.state_reason().empty() ? "no reason recorded" : t.state_reason()),
                    "</p>");
  }
  absl::StrAppend(&html, "<dl><dt>State</dt><dd>", StateBadge(t.state()));
  if (!t.state_reason().empty() && !failed) {
    const bool bad = t.state() == v1::TASK_CANCELLED;
    absl::StrAppend(&html, " <span class=\"", bad ? "reason" : "muted", "\">",
                    EscapeHtml(t.state_reason()), "</span>");
  }
  absl::StrAppend(&html, "</dd>");
  if (t.has_waiting()) {
    absl::StrAppend(&html, "<dt>Waiting</dt><dd class=\"waiting\">",
                    EscapeHtml(t.waiting().message()), " <span class=\"muted\">(since ",
                    Time(t.waiting().since_unix_ms()), " UTC)</span></dd>");
  }
  absl::StrAppend(&html, "<dt>Rounds committed</dt><dd>", Progress(t), "</dd>",
                  "<dt>Dataset</dt><dd>", EscapeHtml(t.spec().dataset().id()), "</dd>",
                  "<dt>Privacy spent</dt><dd class=\"epsilon\">", EscapeHtml(EpsilonSpent(task)),
                  "</dd><dt>Submitted</dt><dd>", Time(t.created_unix_ms()), " UTC by ",
                  EscapeHtml(t.submitted_by()), "</dd></dl></section>");
  if (task.has_in_flight()) absl::StrAppend(&html, InFlight(task.in_flight()));
  if (!t.failed_round_attempts().empty()) {
    absl::StrAppend(&html, "<section class=\"failed-round\"><h2>The round the task failed in</h2>",
                    AttemptsTable(t.failed_round_attempts()), "</section>");
  }
  if (t.spec().has_analytics()) {
    absl::StrAppend(&html, "<section><h2>Answer</h2>", AnswerTable(task), "</section>");
  } else {
    absl::StrAppend(
        &html, SelectionSection(t), "<section class=\"curves\"><h2>Federated evaluation",
        t.spec().training().validation_fraction() > 0 ? " (validation rows)" : "", "</h2>");
    const std::vector<MetricSeries> series = CurveSeries(task);
    if (series.empty()) absl::StrAppend(&html, MetricCurveSvg("metrics", {}));
    for (const MetricSeries& s : series) absl::StrAppend(&html, MetricCurveSvg(s.name, s.points));
    absl::StrAppend(&html, "</section>");
  }
  absl::StrAppend(&html, "<section><h2>Participation per round</h2>", Participation(task),
                  "</section><section><h2>Sites' decisions</h2>", Decisions(t), "</section>");
  return html;
}

std::string RenderProblem(std::string_view message) {
  return absl::StrCat("<section class=\"problem\"><h2>Problem</h2><p>", EscapeHtml(message),
                      "</p></section>");
}

std::string RenderPage(std::string_view title, std::string_view stream, std::string_view fragment) {
  return absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>",
      EscapeHtml(title),
      " · Tessera</title><link rel=\"stylesheet\" href=\"/dashboard.css\">"
      "<script src=\"/dashboard.js\" defer></script></head><body>"
      "<header><a class=\"home\" href=\"/\">Tessera dashboard</a>"
      "<span id=\"connection\" class=\"muted\">",
      stream.empty() ? "" : "connecting…", "</span></header><main id=\"live\" data-stream=\"",
      EscapeHtml(stream), "\">", std::string(fragment), "</main></body></html>\n");
}

}  // namespace tessera::dashboard
