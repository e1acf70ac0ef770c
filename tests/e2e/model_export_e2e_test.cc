// Getting the model out of a real federation (real daemons, gRPC, RocksDB): `tessera models
// export` writes the demo's committed model as ONNX with its signed provenance record;
// Debian's python3-onnx checker accepts the file and an independent numpy evaluator of the
// standard operators (tests/model_export/onnx_numpy.py, not our C++ code) scores the
// reference test rows to the accuracy the federation reported for that round; `tessera
// models verify` accepts it with the CA certificate and refuses one flipped byte in the
// file or in the record; `tessera predict` gives the same predictions and accuracy. And
// `tessera simulate --export` writes a checker-valid ONNX with a verifying record, and a
// DP task's record carries the epsilon the task reported.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "proto/model_provenance.pb.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;

const char kNumpyScorer[] = "tests/model_export/onnx_numpy.py";
const char kSplitFile[] = "deploy/data/splits/breast_cancer_wisconsin.test_rows.txt";
const char kDemoCsv[] = "deploy/data/breast_cancer_wisconsin.csv";

// The numpy scorer's JSON answer for `model` on `csv` (optionally only rows `rows`).
absl::StatusOr<google::protobuf::Struct> NumpyScore(const std::string& model,
                                                    const std::string& csv,
                                                    const std::string& rows = "") {
  std::vector<std::string> argv = {"/usr/bin/python3", SourcePath(kNumpyScorer), model, csv};
  if (!rows.empty()) argv.push_back(rows);
  ASSIGN_OR_RETURN(CommandResult run, RunCommand(argv));
  if (run.exit_code() != 0) {
    return absl::InternalError(absl::StrCat("onnx_numpy.py failed: ", run.out, run.err));
  }
  google::protobuf::Struct result;
  auto st = google::protobuf::util::JsonStringToMessage(run.out, &result);
  if (!st.ok()) return absl::InternalError(absl::StrCat("not JSON: ", run.out));
  return result;
}

double Metric(const v1::RoundRecord& round, const std::string& name) {
  for (const v1::Metric& m : round.metrics()) {
    if (m.name() == name) return m.value();
  }
  return NAN;
}

std::string FlipByte(const std::string& text, size_t at) {
  std::string out = text;
  out[at] ^= 0x01;
  return out;
}

class E2eModelExportTest : public FederationTest {
 protected:
  // Every site's test rows in one CSV (one header).
  std::string AllTestRows() {
    std::string out;
    for (const std::string& name : Sites()) {
      std::string text = ReadFileOrEmpty(site(name).test_csv);
      if (!out.empty()) text = text.substr(text.find('\n') + 1);
      out += text;
    }
    return out;
  }

  // One flipped byte in `model`'s file, then one in its provenance record: verify fails
  // for each, naming why; both files are restored after.
  void ExpectVerifyRefusesAFlippedByte(const std::string& model) {
    const std::string bytes = ReadFileOrEmpty(model);
    const std::string record = ReadFileOrEmpty(model + ".provenance");
    ASSERT_FALSE(bytes.empty());
    ASSERT_OK(common::WriteFileAtomic(model, FlipByte(bytes, bytes.size() / 2)));
    ASSERT_OK_AND_ASSIGN(CommandResult bad_file, Console({"models", "verify"}, {model}));
    EXPECT_EQ(bad_file.exit_code(), 1);
    EXPECT_THAT(bad_file.err, HasSubstr("does not verify: file: its SHA-256"));
    ASSERT_OK(common::WriteFileAtomic(model, bytes));
    const size_t in_body = record.find("accuracy");
    ASSERT_NE(in_body, std::string::npos);
    ASSERT_OK(common::WriteFileAtomic(model + ".provenance", FlipByte(record, in_body)));
    ASSERT_OK_AND_ASSIGN(CommandResult bad_record, Console({"models", "verify"}, {model}));
    EXPECT_EQ(bad_record.exit_code(), 1);
    EXPECT_THAT(bad_record.err, HasSubstr("does not verify: signature:"));
    ASSERT_OK(common::WriteFileAtomic(model + ".provenance", record));
  }

  // tessera predict on the sites' test rows (written to `test_csv`): numpy's predictions
  // and the `reported` accuracy.
  void ExpectPredictionsAsNumpyMakesThem(const std::string& model, double reported,
                                         const std::string& test_csv) {
    ASSERT_OK(common::WriteFileAtomic(test_csv, AllTestRows()));
    const std::string predictions = temp().File("predictions.csv");
    ASSERT_OK_AND_ASSIGN(CommandResult predicted, RunCommand({ConsoleBinary(), "predict", model,
                                                              test_csv, "--out", predictions}));
    ASSERT_EQ(predicted.exit_code(), 0) << predicted.err;
    double predict_accuracy = 0;
    ASSERT_TRUE(absl::SimpleAtod(std::string(absl::StripAsciiWhitespace(
                                     predicted.err.substr(predicted.err.find("accuracy=") + 9))),
                                 &predict_accuracy))
        << predicted.err;
    EXPECT_NEAR(predict_accuracy, reported, 1e-6);
    ASSERT_OK_AND_ASSIGN(google::protobuf::Struct numpy_rows, NumpyScore(model, test_csv));
    std::vector<std::string> lines =
        absl::StrSplit(ReadFileOrEmpty(predictions), '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), static_cast<size_t>(kTestRows) + 1);
    EXPECT_EQ(lines[0], "probability,predicted");
    const auto& numpy_outputs = numpy_rows.fields().at("outputs").list_value().values();
    for (int r = 0; r < kTestRows; ++r) {
      double p = 0;
      ASSERT_TRUE(absl::SimpleAtod(lines[r + 1].substr(0, lines[r + 1].find(',')), &p));
      EXPECT_NEAR(p, numpy_outputs[r].list_value().values(0).number_value(), 1e-6) << "row " << r;
    }
  }

  // An earlier round of `task_id` (as committed in `got`) exported as JSON predicts with its
  // own accuracy on `test_csv`; the csv table verifies; bad requests are named and write
  // nothing.
  void ExpectOtherFormatsAndBadRequests(const std::string& task_id, const v1::GetTaskResponse& got,
                                        const std::string& test_csv) {
    const std::string json_model = temp().File("round5.json");
    ASSERT_OK_AND_ASSIGN(CommandResult json_export,
                         Console({"models", "export"}, {task_id, "--round", "5", "--format", "json",
                                                        "--out", json_model}));
    ASSERT_EQ(json_export.exit_code(), 0) << json_export.err;
    ASSERT_OK_AND_ASSIGN(CommandResult json_predicted,
                         RunCommand({ConsoleBinary(), "predict", json_model, test_csv}));
    ASSERT_EQ(json_predicted.exit_code(), 0) << json_predicted.err;
    EXPECT_THAT(json_predicted.err,
                HasSubstr(absl::StrFormat("accuracy=%.17g", Metric(got.rounds(5), "accuracy"))));
    const std::string csv_model = temp().File("coefficients.csv");
    ASSERT_OK_AND_ASSIGN(
        CommandResult csv_export,
        Console({"models", "export"}, {task_id, "--format", "csv", "--out", csv_model}));
    ASSERT_EQ(csv_export.exit_code(), 0) << csv_export.err;
    ASSERT_OK_AND_ASSIGN(CommandResult csv_verified, Console({"models", "verify"}, {csv_model}));
    EXPECT_EQ(csv_verified.exit_code(), 0) << csv_verified.err;

    ASSERT_OK_AND_ASSIGN(CommandResult bad_format,
                         Console({"models", "export"},
                                 {task_id, "--format", "pmml", "--out", temp().File("x.pmml")}));
    EXPECT_EQ(bad_format.exit_code(), 2);
    EXPECT_THAT(bad_format.err, HasSubstr("unknown format 'pmml'"));
    ASSERT_OK_AND_ASSIGN(CommandResult bad_round,
                         Console({"models", "export"}, {task_id, "--round", "99", "--format",
                                                        "onnx", "--out", temp().File("x.onnx")}));
    EXPECT_NE(bad_round.exit_code(), 0);
    EXPECT_THAT(bad_round.err, HasSubstr("has no committed round 99"));
    EXPECT_FALSE(common::PathExists(temp().File("x.onnx")));
  }

  // An institution's certificate may not take `task_id`'s model out.
  void ExpectAnInstitutionCannotExport(const std::string& task_id) {
    ASSERT_OK_AND_ASSIGN(auto channel, ChannelAs(site(Sites()[0]).tls, crypto::Role::kInstitution));
    auto admin = v1::Admin::NewStub(channel);
    grpc::ClientContext ctx;
    v1::ExportModelRequest request;
    request.set_task_id(task_id);
    request.set_format("onnx");
    v1::ExportModelResponse response;
    const grpc::Status refused = admin->ExportModel(&ctx, request, &response);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED) << refused.error_message();
    EXPECT_TRUE(response.file().empty());
  }
};

TEST_F(E2eModelExportTest, DemoModelAsOnnxScoresTheTestRowsAsReportedAndItsProvenanceVerifies) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(spec));
  ASSERT_OK(WaitForTask(task_id, [](const v1::TaskRecord& t) {
              return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
            }).status());
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, GetTask(task_id));
  ASSERT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  const v1::RoundRecord& last = got.rounds(got.rounds_size() - 1);
  ASSERT_EQ(last.round(), spec.rounds());
  const double reported = Metric(last, "accuracy");
  ASSERT_EQ(Metric(last, "num_examples"), kTestRows);

  const std::string model = temp().File("demo.onnx");
  ASSERT_OK_AND_ASSIGN(
      CommandResult exported,
      Console({"models", "export"}, {task_id, "--format", "onnx", "--out", model}));
  ASSERT_EQ(exported.exit_code(), 0) << exported.err;
  EXPECT_THAT(exported.out, HasSubstr("wrote        " + model + " and " + model + ".provenance"));
  // The coordinator logs who took which model out (hashes, never parameters).
  EXPECT_THAT(ReadFileOrEmpty(coordinator()->log_path()),
              HasSubstr(absl::StrCat("event=model_exported operator=operator task=", task_id,
                                     " round=", spec.rounds(), " format=onnx")));

  // Debian's checker, and numpy's own arithmetic on the reference test rows.
  ASSERT_OK_AND_ASSIGN(google::protobuf::Struct scored,
                       NumpyScore(model, SourcePath(kDemoCsv), SourcePath(kSplitFile)));
  EXPECT_EQ(scored.fields().at("rows").number_value(), kTestRows);
  EXPECT_EQ(scored.fields().at("ir_version").number_value(), 8);
  EXPECT_NEAR(scored.fields().at("accuracy").number_value(), reported, 1e-6);

  // The record verifies with the CA certificate alone, and with the console's CA.
  ASSERT_OK_AND_ASSIGN(CommandResult verified, RunCommand({ConsoleBinary(), "models", "verify",
                                                           model, "--ca", pki()->ca_cert_path()}));
  EXPECT_EQ(verified.exit_code(), 0) << verified.err;
  EXPECT_THAT(verified.out, HasSubstr("verified"));
  EXPECT_THAT(verified.out, HasSubstr(absl::StrCat("round ", spec.rounds(), " of ")));
  ASSERT_OK_AND_ASSIGN(CommandResult via_config, Console({"models", "verify"}, {model}));
  EXPECT_EQ(via_config.exit_code(), 0) << via_config.err;

  ASSERT_NO_FATAL_FAILURE(ExpectVerifyRefusesAFlippedByte(model));
  const std::string test_csv = temp().File("test_rows.csv");
  ASSERT_NO_FATAL_FAILURE(ExpectPredictionsAsNumpyMakesThem(model, reported, test_csv));
  ASSERT_NO_FATAL_FAILURE(ExpectOtherFormatsAndBadRequests(task_id, got, test_csv));
  ASSERT_NO_FATAL_FAILURE(ExpectAnInstitutionCannotExport(task_id));
}

TEST_F(E2eModelExportTest, SimulateExportWritesACheckerValidOnnxWithAVerifyingRecord) {
  const std::string model = temp().File("simulated.onnx");
  ASSERT_OK_AND_ASSIGN(
      CommandResult run,
      RunCommand({ConsoleBinary(), "simulate", ExampleTaskPath(), "--clients", "3", "--test-rows",
                  SourcePath(kSplitFile), "--json", "--export", model, SourcePath(kDemoCsv)}));
  ASSERT_EQ(run.exit_code(), 0) << run.err;
  google::protobuf::Struct summary;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &summary).ok()) << run.out;
  const double reported =
      summary.fields().at("final").struct_value().fields().at("accuracy").number_value();
  ASSERT_OK_AND_ASSIGN(google::protobuf::Struct scored,
                       NumpyScore(model, SourcePath(kDemoCsv), SourcePath(kSplitFile)));
  EXPECT_NEAR(scored.fields().at("accuracy").number_value(), reported, 1e-6);
  ASSERT_OK_AND_ASSIGN(CommandResult verified,
                       RunCommand({ConsoleBinary(), "models", "verify", model, "--ca",
                                   model + ".simulation-ca.pem"}));
  EXPECT_EQ(verified.exit_code(), 0) << verified.err;
  EXPECT_THAT(verified.out, HasSubstr("signed by    simulation-coordinator"));
  // The federation's CA did not sign it.
  ASSERT_OK(MakeTestPki());
  ASSERT_OK_AND_ASSIGN(CommandResult foreign, RunCommand({ConsoleBinary(), "models", "verify",
                                                          model, "--ca", pki()->ca_cert_path()}));
  EXPECT_EQ(foreign.exit_code(), 1);
  EXPECT_THAT(foreign.err, HasSubstr("certificate:"));
}

TEST_F(E2eModelExportTest, SimulateExportOfADpTaskRecordsTheEpsilonTheTaskReported) {
  const std::string model = temp().File("dp.json");
  ASSERT_OK_AND_ASSIGN(CommandResult run,
                       RunCommand({ConsoleBinary(), "simulate",
                                   SourcePath("deploy/examples/breast_cancer_dp.textproto"),
                                   "--clients", "3", "--test-rows", SourcePath(kSplitFile),
                                   "--json", "--export", model, SourcePath(kDemoCsv)}));
  ASSERT_EQ(run.exit_code(), 0) << run.err;
  google::protobuf::Struct summary;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &summary).ok()) << run.out;
  const auto& final_metrics = summary.fields().at("final").struct_value().fields();
  v1::ModelProvenance record;
  ASSERT_OK(
      common::ParseTextProto(ReadFileOrEmpty(model + ".provenance"), "record", &record, nullptr));
  EXPECT_TRUE(record.body().differential_privacy());
  EXPECT_EQ(record.body().epsilon_at_round(), final_metrics.at("epsilon").number_value());
  EXPECT_EQ(record.body().delta(), final_metrics.at("delta").number_value());
  EXPECT_EQ(record.body().export_format(), "json");
  // The JSON export scores the test rows as the federation reported.
  const std::string test_csv = temp().File("test.csv");
  std::vector<std::string> lines = absl::StrSplit(ReadFileOrEmpty(SourcePath(kDemoCsv)), '\n');
  std::string text = lines[0] + "\n";
  const std::vector<std::string> rows =
      absl::StrSplit(ReadFileOrEmpty(SourcePath(kSplitFile)), '\n', absl::SkipEmpty());
  for (const std::string& row : rows) {
    text += lines[std::stoi(row) + 1] + "\n";
  }
  ASSERT_OK(common::WriteFileAtomic(test_csv, text));
  ASSERT_OK_AND_ASSIGN(CommandResult predicted,
                       RunCommand({ConsoleBinary(), "predict", model, test_csv}));
  ASSERT_EQ(predicted.exit_code(), 0) << predicted.err;
  EXPECT_THAT(predicted.err,
              HasSubstr(absl::StrFormat("rows=%d accuracy=%.17g", kTestRows,
                                        final_metrics.at("accuracy").number_value())));
}

}  // namespace
}  // namespace tessera::e2e
