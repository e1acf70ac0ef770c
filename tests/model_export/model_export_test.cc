// The export writers against the client models: for every model kind, the ONNX graph (run
// by our scorer, and by an independent numpy evaluator after python3-onnx's checker) and the
// JSON file compute on raw rows what client::Model::Predict computes on the same rows
// standardised. Also the CSV coefficient table, and the errors.
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/dataset.h"
#include "client/model.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "model_export/exported_model.h"
#include "model_export/scorer.h"
#include "proto/federation.pb.h"
#include "proto/model_layout.h"
#include "proto/task.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::model_export {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::HasSubstr;

constexpr size_t kFeatures = 6;
constexpr size_t kRows = 40;

struct Case {
  std::string name;
  v1::ModelSpec model;
};

v1::ModelSpec Spec(v1::ModelSpec::Kind kind, uint32_t classes = 0,
                   const std::vector<uint32_t>& hidden = {}) {
  v1::ModelSpec m;
  m.set_kind(kind);
  m.set_num_classes(classes);
  for (uint32_t h : hidden) m.add_hidden_layers(h);
  return m;
}

std::vector<Case> Cases() {
  return {{"Logistic", Spec(v1::ModelSpec::LOGISTIC_REGRESSION)},
          {"Softmax", Spec(v1::ModelSpec::SOFTMAX_REGRESSION, 4)},
          {"Linear", Spec(v1::ModelSpec::LINEAR_REGRESSION)},
          {"MlpClassifier", Spec(v1::ModelSpec::MLP, 3, {8, 5})},
          {"MlpRegression", Spec(v1::ModelSpec::MLP, 0, {7})},
          {"Cox", Spec(v1::ModelSpec::COX_PH)}};
}

// A task over features f0..f5 with label y (and event e for Cox), random parameters, a
// random standardisation and random raw rows.
struct Fixture {
  v1::TaskSpec spec;
  v1::Standardization standardization;
  std::vector<float> params;
  std::vector<double> raw;  // kRows x kFeatures
};

Fixture MakeFixture(const v1::ModelSpec& model, uint64_t seed) {
  Fixture f;
  f.spec.set_name("export-test");
  f.spec.mutable_dataset()->set_id("data");
  for (size_t j = 0; j < kFeatures; ++j)
    f.spec.mutable_dataset()->add_features(absl::StrCat("f", j));
  f.spec.mutable_dataset()->set_label("y");
  if (model.kind() == v1::ModelSpec::COX_PH) f.spec.mutable_dataset()->set_event("e");
  *f.spec.mutable_model() = model;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> uniform(-1, 1);
  for (size_t j = 0; j < kFeatures; ++j) {
    f.standardization.add_mean(40 * uniform(rng));
    f.standardization.add_stddev(0.5 + 10 * std::abs(uniform(rng)));
  }
  auto n = proto::NumParameters(model, kFeatures);
  EXPECT_TRUE(n.ok()) << n.status();
  for (size_t i = 0; i < *n; ++i) f.params.push_back(static_cast<float>(uniform(rng)));
  for (size_t r = 0; r < kRows; ++r) {
    for (size_t j = 0; j < kFeatures; ++j) {
      f.raw.push_back(f.standardization.mean(j) + 1.5 * f.standardization.stddev(j) * normal(rng));
    }
  }
  return f;
}

// What the client's model predicts for the rows, standardised as a site does.
std::vector<double> ClientPredictions(const Fixture& f) {
  auto model = client::MakeModel(f.spec.model(), kFeatures);
  EXPECT_TRUE(model.ok()) << model.status();
  client::Dataset data;
  data.num_rows = kRows;
  data.num_features = kFeatures;
  data.x = f.raw;
  data.y.assign(kRows, 0.0);
  if (f.spec.model().kind() == v1::ModelSpec::COX_PH) data.event.assign(kRows, 0.0);
  std::vector<double> mean(f.standardization.mean().begin(), f.standardization.mean().end());
  std::vector<double> sd(f.standardization.stddev().begin(), f.standardization.stddev().end());
  EXPECT_OK(client::Standardize(mean, sd, &data));
  std::vector<double> out(kRows * (*model)->num_outputs());
  (*model)->Predict(f.params, data, out);
  return out;
}

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want, double tol,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << what << " value " << i;
  }
}

std::string Csv(const Fixture& f) {
  std::vector<std::string> header;
  for (const std::string& name : f.spec.dataset().features()) header.push_back(name);
  header.push_back("y");
  std::string out = absl::StrJoin(header, ",") + "\n";
  for (size_t r = 0; r < kRows; ++r) {
    for (size_t j = 0; j < kFeatures; ++j) absl::StrAppend(&out, f.raw[r * kFeatures + j], ",");
    out += "0\n";
  }
  return out;
}

// Runs tests/model_export/onnx_numpy.py (Debian's python3-onnx checker and a numpy
// evaluator) on the model file and the CSV; returns its "outputs", row-major.
std::vector<double> NumpyOutputs(const std::string& model_path, const std::string& csv_path) {
  const std::string command =
      absl::StrCat("/usr/bin/python3 ", TESSERA_SOURCE_DIR, "/tests/model_export/onnx_numpy.py ",
                   model_path, " ", csv_path, " 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) text.append(buffer, n);
  EXPECT_EQ(::pclose(pipe), 0) << text;
  google::protobuf::Struct result;
  auto st = google::protobuf::util::JsonStringToMessage(text, &result);
  EXPECT_TRUE(st.ok()) << text;
  std::vector<double> out;
  for (const auto& row : result.fields().at("outputs").list_value().values()) {
    for (const auto& v : row.list_value().values()) out.push_back(v.number_value());
  }
  return out;
}

class ExportKindTest : public ::testing::TestWithParam<Case> {};

TEST_P(ExportKindTest, OnnxAndJsonScoreRawRowsLikeTheClientModel) {
  const Fixture f = MakeFixture(GetParam().model, 7);
  const std::vector<double> want = ClientPredictions(f);
  ASSERT_OK_AND_ASSIGN(v1::ExportedModel model,
                       BuildExportedModel(f.spec, f.standardization, f.params, {"task-9", 3}));
  EXPECT_EQ(model.output_columns_size() * kRows, want.size());
  for (Format format : {Format::kOnnx, Format::kJson}) {
    ASSERT_OK_AND_ASSIGN(std::string bytes, WriteModelFile(model, format));
    ASSERT_OK_AND_ASSIGN(std::string again, WriteModelFile(model, format));
    EXPECT_EQ(bytes, again) << "the writer must be deterministic";
    ASSERT_OK_AND_ASSIGN(auto scorer, Scorer::Load(bytes, FormatName(format)));
    EXPECT_EQ(scorer->features().size(), kFeatures);
    EXPECT_EQ(scorer->kind(), v1::ModelSpec::Kind_Name(GetParam().model.kind()));
    ASSERT_OK_AND_ASSIGN(std::vector<double> got, scorer->Score(f.raw, kRows));
    // The standardisation travels as float32 in the graph: ~1e-7 relative.
    ExpectNear(got, want, 2e-5, FormatName(format));
  }
}

TEST_P(ExportKindTest, PythonOnnxCheckerAcceptsItAndNumpyScoresTheSame) {
  const Fixture f = MakeFixture(GetParam().model, 11);
  const std::vector<double> want = ClientPredictions(f);
  ASSERT_OK_AND_ASSIGN(v1::ExportedModel model,
                       BuildExportedModel(f.spec, f.standardization, f.params, {"task-9", 3}));
  ASSERT_OK_AND_ASSIGN(std::string bytes, WriteModelFile(model, Format::kOnnx));
  testing::TempDir dir;
  testing::WriteTestFile(dir.File("model.onnx"), bytes);
  testing::WriteTestFile(dir.File("rows.csv"), Csv(f));
  // numpy reads the rows as float32, the graph's input type: ~1e-7 relative per value.
  ExpectNear(NumpyOutputs(dir.File("model.onnx"), dir.File("rows.csv")), want, 1e-4, "numpy");
}

INSTANTIATE_TEST_SUITE_P(AllKinds, ExportKindTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

TEST(ExportCsvTest, RawScaleCoefficientsGiveTheSameLinearPredictor) {
  const Fixture f = MakeFixture(Spec(v1::ModelSpec::LINEAR_REGRESSION), 3);
  const std::vector<double> want = ClientPredictions(f);
  ASSERT_OK_AND_ASSIGN(v1::ExportedModel model,
                       BuildExportedModel(f.spec, f.standardization, f.params, {"task-1", 1}));
  ASSERT_OK_AND_ASSIGN(std::string csv, WriteModelFile(model, Format::kCsv));
  // Parse by hand: output,feature,coefficient,standardized_coefficient,mean,stddev.
  std::vector<double> coef;
  double intercept = 0;
  size_t lines = 0;
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(csv, '\n'))) {
    if (line.empty() || lines++ == 0) continue;
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    ASSERT_EQ(cells.size(), 6u) << line;
    EXPECT_EQ(cells[0], "prediction");
    if (cells[1] == "(intercept)") {
      intercept = std::stod(cells[2]);
    } else {
      coef.push_back(std::stod(cells[2]));
    }
  }
  ASSERT_EQ(coef.size(), kFeatures);
  for (size_t r = 0; r < kRows; ++r) {
    double y = intercept;
    for (size_t j = 0; j < kFeatures; ++j) y += coef[j] * f.raw[r * kFeatures + j];
    EXPECT_NEAR(y, want[r], 1e-9 * (1 + std::abs(want[r])));
  }
}

TEST(ExportCsvTest, MlpIsRefusedWithAReason) {
  const Fixture f = MakeFixture(Spec(v1::ModelSpec::MLP, 3, {4}), 3);
  ASSERT_OK_AND_ASSIGN(v1::ExportedModel model,
                       BuildExportedModel(f.spec, f.standardization, f.params, {"task-1", 1}));
  EXPECT_THAT(WriteModelFile(model, Format::kCsv),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("an MLP has no per-feature")));
}

TEST(ExportErrorsTest, BadInputsAreRefusedNamingTheProblem) {
  Fixture f = MakeFixture(Spec(v1::ModelSpec::LOGISTIC_REGRESSION), 5);
  std::vector<float> short_params(f.params.begin(), f.params.end() - 1);
  EXPECT_THAT(BuildExportedModel(f.spec, f.standardization, short_params, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("parameters")));
  v1::Standardization bad = f.standardization;
  bad.set_stddev(2, 0.0);
  EXPECT_THAT(BuildExportedModel(f.spec, bad, f.params, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stddev")));
  v1::TaskSpec analytics = f.spec;
  analytics.mutable_analytics()->add_queries()->set_column("f0");
  EXPECT_THAT(BuildExportedModel(analytics, f.standardization, f.params, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("analytics")));
  EXPECT_THAT(ParseFormat("pmml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("onnx, json or csv")));
  EXPECT_THAT(Scorer::Load("not a model", "x.onnx"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x.onnx")));
  EXPECT_THAT(Scorer::Load("{\"kind\": 1}", "x.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x.json: model:")));
}

}  // namespace
}  // namespace tessera::model_export
