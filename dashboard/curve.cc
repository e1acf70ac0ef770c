// MetricCurveSvg and CurveSeries (render.h): the metric curves, as SVG drawn here.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dashboard/render.h"

namespace tessera::dashboard {
namespace {

// The figure's size and the plot area inside it, in SVG user units.
constexpr double kWidth = 560, kHeight = 220;
constexpr double kLeft = 64, kRight = 16, kTop = 28, kBottom = 34;

std::string Num(double v) { return absl::StrFormat("%.4g", v); }
std::string Coord(double v) { return absl::StrFormat("%.1f", v); }

bool IsCount(const std::string& name) {
  return name == "num_examples" || name == "train_examples" || name == "num_train_rows" ||
         name == "delta";
}

}  // namespace

std::string MetricCurveSvg(std::string_view metric, const std::vector<CurvePoint>& all) {
  std::vector<CurvePoint> points;
  for (const CurvePoint& p : all) {
    if (std::isfinite(p.value)) points.push_back(p);
  }
  std::sort(points.begin(), points.end(),
            [](const CurvePoint& a, const CurvePoint& b) { return a.round < b.round; });
  const std::string name = EscapeHtml(metric);
  std::string svg = absl::StrCat("<figure class=\"curve\" data-metric=\"", name,
                                 "\"><svg xmlns=\"http://www.w3.org/2000/svg\"", " viewBox=\"0 0 ",
                                 Num(kWidth), " ", Num(kHeight), "\" role=\"img\" aria-label=\"",
                                 name, " per round\"><text class=\"title\" x=\"", Num(kLeft),
                                 "\" y=\"18\">", name, "</text>");
  const double x0 = kLeft, x1 = kWidth - kRight, y0 = kHeight - kBottom, y1 = kTop;
  absl::StrAppend(&svg, "<line class=\"axis\" x1=\"", Num(x0), "\" y1=\"", Num(y0), "\" x2=\"",
                  Num(x1), "\" y2=\"", Num(y0), "\" stroke=\"currentColor\"/>",
                  "<line class=\"axis\" x1=\"", Num(x0), "\" y1=\"", Num(y0), "\" x2=\"", Num(x0),
                  "\" y2=\"", Num(y1), "\" stroke=\"currentColor\"/>");
  if (points.empty()) {
    absl::StrAppend(&svg, "<text class=\"empty\" x=\"", Num((x0 + x1) / 2), "\" y=\"",
                    Num((y0 + y1) / 2), "\" text-anchor=\"middle\">no committed round yet</text>",
                    "</svg></figure>");
    return svg;
  }
  double lo = points[0].value, hi = points[0].value;
  for (const CurvePoint& p : points) {
    lo = std::min(lo, p.value);
    hi = std::max(hi, p.value);
  }
  if (hi - lo < 1e-12) {  // a flat curve sits in the middle
    const double pad = std::max(std::fabs(hi) * 0.1, 0.5);
    lo -= pad;
    hi += pad;
  }
  const uint32_t r0 = points.front().round, r1 = points.back().round;
  auto x = [&](uint32_t r) {
    return r1 == r0 ? (x0 + x1) / 2 : x0 + (x1 - x0) * (r - r0) / static_cast<double>(r1 - r0);
  };
  auto y = [&](double v) { return y0 - (y0 - y1) * (v - lo) / (hi - lo); };
  // Value labels at the bottom, middle and top; round labels at both ends.
  for (double v : {lo, (lo + hi) / 2, hi}) {
    absl::StrAppend(&svg, "<text class=\"tick\" x=\"", Num(x0 - 6), "\" y=\"", Coord(y(v) + 4),
                    "\" text-anchor=\"end\">", Num(v), "</text>");
  }
  absl::StrAppend(&svg, "<text class=\"tick\" x=\"", Num(x0), "\" y=\"", Num(y0 + 16),
                  "\" text-anchor=\"start\">round ", r0, "</text><text class=\"tick\" x=\"",
                  Num(x1), "\" y=\"", Num(y0 + 16), "\" text-anchor=\"end\">round ", r1, "</text>");
  std::string d;
  for (size_t i = 0; i < points.size(); ++i) {
    absl::StrAppend(&d, i == 0 ? "M" : " L", Coord(x(points[i].round)), ",",
                    Coord(y(points[i].value)));
  }
  absl::StrAppend(&svg, "<path class=\"curve\" data-points=\"", points.size(), "\" d=\"", d,
                  "\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\"/>");
  for (const CurvePoint& p : points) {
    absl::StrAppend(&svg, "<circle class=\"point\" cx=\"", Coord(x(p.round)), "\" cy=\"",
                    Coord(y(p.value)), "\" r=\"3\"><title>round ", p.round, ": ", Num(p.value),
                    "</title></circle>");
  }
  absl::StrAppend(&svg, "</svg></figure>");
  return svg;
}

std::vector<MetricSeries> CurveSeries(const v1::GetTaskResponse& task) {
  std::vector<MetricSeries> series;
  for (const v1::RoundRecord& r : task.rounds()) {
    if (r.round() == 0) continue;  // the statistics round has no model to evaluate
    for (const v1::Metric& m : r.metrics()) {
      if (IsCount(m.name())) continue;
      auto it = std::find_if(series.begin(), series.end(),
                             [&](const MetricSeries& s) { return s.name == m.name(); });
      if (it == series.end()) {
        series.push_back({m.name(), {}});
        it = series.end() - 1;
      }
      it->points.push_back({r.round(), m.value()});
    }
  }
  return series;
}

}  // namespace tessera::dashboard
