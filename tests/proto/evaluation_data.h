// Data and reference metrics for the evaluation tests (tests/proto/evaluation*_test.cc):
// the demo data sets of deploy/data with fixed scorers, rows dealt to sites, the federated
// encode-sum-decode path, and pooled metrics computed directly by their definitions. Test
// code only; a failure to read data is a gtest failure (EXPECT), not a status.
#ifndef TESSERA_TESTS_PROTO_EVALUATION_DATA_H_
#define TESSERA_TESTS_PROTO_EVALUATION_DATA_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "proto/evaluation.h"
#include "proto/task.pb.h"

namespace tessera::proto::evaluation_testing {

// ---- Data ----

// A CSV of deploy/data, all numeric.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;
};

// deploy/data/<name>.csv.
Table ReadCsv(const std::string& name);
// The test-row mask of deploy/data/splits/<name>.test_rows.txt.
std::vector<bool> TestRowMask(const std::string& name, size_t num_rows);
// Features (the first `num_features` columns) standardised with the training rows' mean and
// population sd, as the data README's recipe.
std::vector<std::vector<double>> Standardize(const Table& t, size_t num_features,
                                             const std::vector<bool>& test);
double Dot(const std::vector<double>& w, const std::vector<double>& x);
double Sigmoid(double z);
// A fixed scorer: plain full-batch gradient descent on the mean log-loss over the training
// rows (weights then intercept).
std::vector<double> LogisticScorer(const std::vector<std::vector<double>>& x,
                                   const std::vector<double>& y, const std::vector<bool>& test,
                                   int steps, double rate);

// ---- Sites ----

// Row indices of `rows` dealt to `k` sites by a fixed hash, so sites differ in size and mix.
std::vector<std::vector<size_t>> Sites(const std::vector<size_t>& rows, size_t k);

// One site's input from per-row predictions (`outputs` per row), labels, events.
struct Rows {
  std::vector<double> predictions, labels, events;
};

Rows Select(const Rows& all, const std::vector<size_t>& rows, size_t outputs);
EvaluationInput Input(const Rows& rows, size_t outputs, double label_mean = 0,
                      double label_stddev = 1);
// Encodes each site's rows, sums the vectors, decodes. `quantize` rounds every site's
// values to the evaluation stage's fixed point (16 fractional bits) first.
std::map<std::string, double> Federated(const EvaluationLayout& layout, const Rows& all,
                                        const std::vector<std::vector<size_t>>& sites,
                                        size_t outputs, double label_mean = 0,
                                        double label_stddev = 1, bool quantize = false);
std::vector<size_t> AllRows(size_t n);
// Indices i with mask[i] == value.
std::vector<size_t> MaskRows(const std::vector<bool>& mask, bool value);

// ---- Direct (pooled) metrics ----

double Clip(double p);
// Exact pairwise AUC: pairs (pos, neg) with s_pos > s_neg, ties 1/2.
double ExactAuc(const std::vector<double>& scores, const std::vector<double>& labels,
                const std::vector<size_t>& rows);
// Harrell's C by its definition, O(n^2).
double ExactHarrellC(const std::vector<double>& t, const std::vector<double>& eta,
                     const std::vector<double>& event, const std::vector<size_t>& rows);
v1::ModelSpec Model(v1::ModelSpec::Kind kind, uint32_t num_classes = 0);

// ---- Data sets with fixed scorers ----

// A binary data set with the logistic scorer's P(y = 1) for every row.
struct Binary {
  Rows all;
  std::vector<bool> test;
};
Binary BinaryWithLogisticScorer(const std::string& name);

// digits with a fixed scorer: softmax of minus the squared distance to each class's
// training centroid. Sets *test_rows to the test-row mask.
Rows DigitsWithCentroidScorer(std::vector<bool>* test_rows);

// diabetes_progression with a fixed linear scorer; the label's training mean and sd.
struct Regression {
  Rows all;
  std::vector<bool> test;
  double mean = 0, sd = 0;
};
Regression DiabetesWithLinearScorer();

// rotterdam_survival with the reference Cox model's linear predictor.
struct Survival {
  Rows all;  // predictions = eta, labels = time
  std::vector<bool> test;
  double time_mean = 0, time_sd = 0;
};
Survival RotterdamWithReferenceModel();

}  // namespace tessera::proto::evaluation_testing

#endif  // TESSERA_TESTS_PROTO_EVALUATION_DATA_H_
