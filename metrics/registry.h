// A small metrics registry: counters, gauges and histograms with label sets, rendered in the
// Prometheus text exposition format 0.0.4 (`Registry::Render`, served on GET /metrics).
//
// What may be a metric: counts, durations, sizes in bytes and reasons (enum names), never a
// value computed from a site's data (DESIGN.md, "Principles"). Label values must come from
// small fixed sets (stages, steps, enum names, gRPC methods): a label set is kept for the
// life of the process.
//
// Use: register each family once at start-up, keep the returned reference (it lives as long
// as the registry), then update from any thread:
//   Registry registry;
//   CounterFamily& rounds = registry.Counter("tessera_rounds_committed_total", "Rounds ...");
//   rounds.With({}).Increment();
//   HistogramFamily& steps = registry.Histogram("tessera_step_duration_seconds", "...",
//                                              {"stage", "step"}, DurationBuckets());
//   steps.With({"fit", "masked_input"}).Observe(0.42);
// A child (one label set) is looked up under a reader lock and created on first use; its
// updates are lock-free atomics. Keep a child reference for a label set used in a loop.
//
// Programming errors abort the process with a message on stderr (a broken invariant, not
// input): a metric or label name that Prometheus would refuse, a family registered twice, a
// label set of the wrong size, histogram bounds not strictly increasing.
//
// Thread-safe: registration, updates, collectors and Render may run concurrently.
#ifndef TESSERA_METRICS_REGISTRY_H_
#define TESSERA_METRICS_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tessera::metrics {

// The Content-Type of Render's output.
inline constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// A monotonically increasing count.
class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets (upper bounds, inclusive), with their sum.
class Histogram {
 public:
  // `bounds` strictly increasing and finite; the +Inf bucket is implicit.
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double v);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  // Observations <= bounds[i] (cumulative), for i < bounds.size().
  uint64_t CumulativeCount(size_t i) const;

 private:
  const std::vector<double>* const bounds_;           // owned by the family
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

using Labels = std::vector<std::string>;

class Renderer;

// One metric name with its children, one per label set (values in the order of the
// family's label names).
template <typename T>
class Family {
 public:
  // The child for `values` (as many as the family has label names), created on first use.
  T& With(const Labels& values);
  // Forgets every child (for gauges a collector recomputes from scratch at each scrape).
  void Clear();

  const std::string& name() const { return name_; }

 private:
  friend class Registry;
  friend class Renderer;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {});
  std::unique_ptr<T> Make() const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // histograms only
  mutable absl::Mutex mu_;
  std::map<Labels, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Bucket bounds for durations in seconds, 5 ms to 10 min.
std::vector<double> DurationBuckets();
// Bucket bounds for sizes in bytes, 64 B to 1 GiB by powers of 4.
std::vector<double> ByteBuckets();

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // `name` must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not
  // "le", not starting with "__"); counters' names end in "_total". `help` is one line.
  CounterFamily& Counter(std::string name, std::string help, std::vector<std::string> labels = {});
  GaugeFamily& Gauge(std::string name, std::string help, std::vector<std::string> labels = {});
  HistogramFamily& Histogram(std::string name, std::string help, std::vector<std::string> labels,
                             std::vector<double> bounds);

  // `collect` runs at the start of every Render (one at a time, in registration order), to
  // set gauges computed from state (tasks by state, clients by status). It must be quick and
  // must not call Render.
  void AddCollector(std::function<void()> collect);

  // Every family, in registration order, in the text format 0.0.4: HELP and TYPE lines, then
  // one sample per child (sorted by label values); histograms as _bucket (cumulative, with
  // le="+Inf"), _sum and _count. A family with no child renders no sample, except a family
  // without labels, which renders its zero value.
  std::string Render() const;

 private:
  struct Entry;
  void Add(std::unique_ptr<Entry> entry);

  mutable absl::Mutex render_mu_;  // one Render (and its collectors) at a time
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> collectors_ ABSL_GUARDED_BY(mu_);
};

// Text-format escaping, exposed for tests: label values escape backslash, double quote and
// newline; HELP text escapes backslash and newline.
std::string EscapeLabelValue(std::string_view v);
std::string EscapeHelp(std::string_view v);
// A sample value: integers without a fraction, others in the shortest form that reads back
// the same, "+Inf", "-Inf", "NaN".
std::string FormatValue(double v);

}  // namespace tessera::metrics

#endif  // TESSERA_METRICS_REGISTRY_H_
