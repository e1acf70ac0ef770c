// The dashboard's HTML, rendered on the server from what the admin service returns: pure
// functions, no I/O, so that tests can check them byte for byte. Everything that comes from
// the coordinator (task names, ids, reasons, drop lines, client ids) is HTML-escaped;
// nothing is loaded from anywhere but the dashboard itself (no CDN, no external font,
// script or stylesheet), and metric curves are SVG drawn here.
//
// A page is a shell (RenderPage) around a "live" fragment; the page's script replaces the
// fragment with each one the event stream pushes, so a fragment is all that changes.
#ifndef TESSERA_DASHBOARD_RENDER_H_
#define TESSERA_DASHBOARD_RENDER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/admin.pb.h"

namespace tessera::dashboard {

// "&", "<", ">", '"' and "'" as entities: safe in text and in quoted attributes.
std::string EscapeHtml(std::string_view text);
// Percent-encodes everything but unreserved characters (RFC 3986), for a query value.
std::string UrlEncode(std::string_view text);

struct CurvePoint {
  uint32_t round = 0;
  double value = 0;
};

// One metric over rounds as an inline <svg> figure: a <path class="curve"> through one point
// per finite value, in round order (data-points says how many), a <circle class="point">
// per point with its round and value as a tooltip, axes labelled with the first and last
// round and the value range. Non-finite values are left out. No points: a figure saying so.
std::string MetricCurveSvg(std::string_view metric, const std::vector<CurvePoint>& points);

// The training rounds' values of each metric worth a curve (not the counts num_examples,
// train_examples, num_train_rows, nor delta), in first-seen order.
struct MetricSeries {
  std::string name;
  std::vector<CurvePoint> points;
};
std::vector<MetricSeries> CurveSeries(const v1::GetTaskResponse& task);

// The privacy spent by a task: "ε 1.23 of 4 (δ 1e-05)", or "no differential privacy". ε is
// the last committed round's "epsilon" metric, as the coordinator's accountant computed it.
std::string EpsilonSpent(const v1::GetTaskResponse& task);

// The live fragment of the overview: every task (linking to its page) and every client
// with its status (ACTIVE, STALE, OFFLINE in a badge of class "status-<status>", and the
// thresholds behind them) and when it was last seen (against the coordinator's clock,
// now_unix_ms).
std::string RenderOverview(const v1::ListTasksResponse& tasks,
                           const v1::ListClientsResponse& clients);

// The live fragment of one task: state and progress (a failed task's reason in a banner,
// why it waits), ε spent, the round in flight (stage, attempt, each invited site's answer
// per session: PENDING with where the site is, DECLINED with the site's reason, ...), the
// sessions of the round a failed task failed in, a curve per metric, each site's
// participation per committed round (fit/eval, and its answer in each session) with the
// round's drops, and the sites' decisions with their reasons.
std::string RenderTask(const v1::GetTaskResponse& task);

// A short fragment for an error (coordinator unreachable, unknown task).
std::string RenderProblem(std::string_view message);

// A whole page: `title` (escaped), the dashboard's stylesheet and script, and `fragment`
// inside <main id="live" data-stream="STREAM"> (the event-stream path the script follows;
// empty for none).
std::string RenderPage(std::string_view title, std::string_view stream, std::string_view fragment);

// True for the states after which a task changes no more.
bool IsTerminal(v1::TaskState state);

}  // namespace tessera::dashboard

#endif  // TESSERA_DASHBOARD_RENDER_H_
