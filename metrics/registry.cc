#include "metrics/registry.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"

namespace tessera::metrics {
namespace {

// A programming error (see the header): say what and stop.
[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "tessera metrics: %s\n", what.c_str());
  std::abort();
}

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

void CheckNames(const std::string& name, const std::vector<std::string>& labels) {
  if (!ValidName(name, /*allow_colon=*/true)) Fail(absl::StrCat("bad metric name '", name, "'"));
  for (const std::string& l : labels) {
    if (!ValidName(l, /*allow_colon=*/false) || l == "le" || l.rfind("__", 0) == 0) {
      Fail(absl::StrCat("bad label name '", l, "' of ", name));
    }
  }
}

void AppendLabels(std::string& out, const std::vector<std::string>& names, const Labels& values,
                  std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out.push_back('{');
  bool first = true;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!first) out.push_back(',');
    first = false;
    absl::StrAppend(&out, names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra_name.empty()) {
    if (!first) out.push_back(',');
    out.append(extra_name).append("=\"").append(extra_value).append("\"");
  }
  out.push_back('}');
}

// Backslash and newline escaped, and the double quote too if `quote`.
std::string Escape(std::string_view v, bool quote) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '"' && quote) {
      out.append("\\\"");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string EscapeLabelValue(std::string_view v) { return Escape(v, /*quote=*/true); }

std::string EscapeHelp(std::string_view v) { return Escape(v, /*quote=*/false); }

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

std::vector<double> DurationBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

std::vector<double> ByteBuckets() {
  std::vector<double> out;
  for (double b = 64; b <= 1024.0 * 1024 * 1024; b *= 4) out.push_back(b);
  return out;
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_->size() && v > (*bounds_)[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t Histogram::CumulativeCount(size_t i) const {
  uint64_t total = 0;
  for (size_t j = 0; j <= i && j <= bounds_->size(); ++j) {
    total += buckets_[j].load(std::memory_order_relaxed);
  }
  return total;
}

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {}

template <typename T>
std::unique_ptr<T> Family<T>::Make() const {
  if constexpr (std::is_same_v<T, metrics::Histogram>) {
    return std::make_unique<T>(&bounds_);
  } else {
    return std::make_unique<T>();
  }
}

template <typename T>
T& Family<T>::With(const Labels& values) {
  if (values.size() != label_names_.size()) {
    Fail(absl::StrCat(name_, " takes ", label_names_.size(), " label values, got ", values.size()));
  }
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<T>& child = children_[values];
  if (child == nullptr) child = Make();
  return *child;
}

template <typename T>
void Family<T>::Clear() {
  absl::MutexLock lock(&mu_);
  children_.clear();
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// A registered family and how it renders.
struct Registry::Entry {
  std::variant<std::unique_ptr<CounterFamily>, std::unique_ptr<GaugeFamily>,
               std::unique_ptr<HistogramFamily>>
      family;
  const std::string& name() const {
    return std::visit([](const auto& f) -> const std::string& { return f->name(); }, family);
  }
};

Registry::Registry() = default;
Registry::~Registry() = default;

void Registry::Add(std::unique_ptr<Entry> entry) {
  absl::MutexLock lock(&mu_);
  for (const auto& e : entries_) {
    if (e->name() == entry->name())
      Fail(absl::StrCat("metric ", entry->name(), " registered twice"));
  }
  entries_.push_back(std::move(entry));
}

CounterFamily& Registry::Counter(std::string name, std::string help,
                                 std::vector<std::string> labels) {
  CheckNames(name, labels);
  if (name.size() < 6 || name.substr(name.size() - 6) != "_total") {
    Fail(absl::StrCat("counter ", name, " must end in _total"));
  }
  auto entry = std::make_unique<Entry>();
  auto owned = std::unique_ptr<CounterFamily>(
      new CounterFamily(std::move(name), std::move(help), std::move(labels)));
  CounterFamily* family = owned.get();
  entry->family = std::move(owned);
  Add(std::move(entry));
  return *family;
}

GaugeFamily& Registry::Gauge(std::string name, std::string help, std::vector<std::string> labels) {
  CheckNames(name, labels);
  auto entry = std::make_unique<Entry>();
  auto owned = std::unique_ptr<GaugeFamily>(
      new GaugeFamily(std::move(name), std::move(help), std::move(labels)));
  GaugeFamily* family = owned.get();
  entry->family = std::move(owned);
  Add(std::move(entry));
  return *family;
}

HistogramFamily& Registry::Histogram(std::string name, std::string help,
                                     std::vector<std::string> labels, std::vector<double> bounds) {
  CheckNames(name, labels);
  if (bounds.empty()) Fail(absl::StrCat("histogram ", name, " has no buckets"));
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Fail(absl::StrCat("histogram ", name, ": bounds must be finite and strictly increasing"));
    }
  }
  auto entry = std::make_unique<Entry>();
  auto owned = std::unique_ptr<HistogramFamily>(
      new HistogramFamily(std::move(name), std::move(help), std::move(labels), std::move(bounds)));
  HistogramFamily* family = owned.get();
  entry->family = std::move(owned);
  Add(std::move(entry));
  return *family;
}

void Registry::AddCollector(std::function<void()> collect) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(collect));
}

namespace {

void Header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(help), "\n# TYPE ", name, " ", type, "\n");
}

}  // namespace

// Friend access to a family's parts, for rendering.
class Renderer {
 public:
  static void Render(const CounterFamily& f, std::string& out) {
    Header(out, f.name_, f.help_, "counter");
    absl::ReaderMutexLock lock(&f.mu_);
    if (f.children_.empty() && f.label_names_.empty()) absl::StrAppend(&out, f.name_, " 0\n");
    for (const auto& [labels, c] : f.children_) {
      out.append(f.name_);
      AppendLabels(out, f.label_names_, labels);
      absl::StrAppend(&out, " ", c->value(), "\n");
    }
  }
  static void Render(const GaugeFamily& f, std::string& out) {
    Header(out, f.name_, f.help_, "gauge");
    absl::ReaderMutexLock lock(&f.mu_);
    if (f.children_.empty() && f.label_names_.empty()) absl::StrAppend(&out, f.name_, " 0\n");
    for (const auto& [labels, g] : f.children_) {
      out.append(f.name_);
      AppendLabels(out, f.label_names_, labels);
      absl::StrAppend(&out, " ", FormatValue(g->value()), "\n");
    }
  }
  static void Render(const HistogramFamily& f, std::string& out) {
    Header(out, f.name_, f.help_, "histogram");
    absl::ReaderMutexLock lock(&f.mu_);
    std::map<Labels, std::unique_ptr<metrics::Histogram>> empty;
    if (f.children_.empty() && f.label_names_.empty()) {
      empty[{}] = std::make_unique<metrics::Histogram>(&f.bounds_);
    }
    for (const auto& [labels, h] : f.children_.empty() ? empty : f.children_) {
      // Count first, buckets after: an observation landing meanwhile never makes a bucket
      // exceed +Inf.
      const uint64_t count = h->count();
      for (size_t i = 0; i < f.bounds_.size(); ++i) {
        absl::StrAppend(&out, f.name_, "_bucket");
        AppendLabels(out, f.label_names_, labels, "le", FormatValue(f.bounds_[i]));
        absl::StrAppend(&out, " ", std::min(count, h->CumulativeCount(i)), "\n");
      }
      absl::StrAppend(&out, f.name_, "_bucket");
      AppendLabels(out, f.label_names_, labels, "le", "+Inf");
      absl::StrAppend(&out, " ", count, "\n", f.name_, "_sum");
      AppendLabels(out, f.label_names_, labels);
      absl::StrAppend(&out, " ", FormatValue(h->sum()), "\n", f.name_, "_count");
      AppendLabels(out, f.label_names_, labels);
      absl::StrAppend(&out, " ", count, "\n");
    }
  }
};

std::string Registry::Render() const {
  absl::MutexLock render(&render_mu_);
  std::vector<std::function<void()>> collectors;
  {
    absl::MutexLock lock(&mu_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect();
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& e : entries_) {
    std::visit([&out](const auto& f) { Renderer::Render(*f, out); }, e->family);
  }
  return out;
}

}  // namespace tessera::metrics
