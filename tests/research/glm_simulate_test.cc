// Exact federated regression end to end (issue 13): `tessera simulate TASK --clients K
// --test-rows ROWS DATA.csv --json` on the shipped datasets, through the real coordinator,
// sites and secure aggregation, prints a top-level "coefficients" list equal to R's glm() /
// survival::coxph() on the pooled training rows (tests/research/reference/, made by
// glm_reference.R) to 1e-6 relative, within 10 rounds: binomial and Gaussian (the example
// tasks, the interface the checks rely on), Poisson with and without an offset, site fixed
// effects and Cox stratified by site (round-robin dealing, as the R script deals).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/research/research_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::research {
namespace {

// Runs the console with `args`; stdout returned, stderr into `err_path`; exit code out.
std::string RunConsole(const std::vector<std::string>& args, const std::string& err_path,
                       int* exit_code) {
  CommandOutput run = RunCommand(TESSERA_CONSOLE_BIN, args, err_path);
  *exit_code = run.exit_code;
  return run.out;
}

// R's coefficients of one reference model: term -> the row's cells by column name.
struct Reference {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // of the model
};

Reference ReadReference(const std::string& model) {
  std::ifstream in(SourcePath("tests/research/reference/glm_coefficients.csv"));
  Reference ref;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (ref.header.empty()) {
      ref.header = std::move(cells);
    } else if (cells[0] == model) {
      ref.rows.push_back(std::move(cells));
    }
  }
  return ref;
}

// R names a site's intercept "sitesite_K" (the factor `site` with levels site_1..); the
// simulator's sites are site-01.. and their intercepts "(Intercept):site-01"...
std::string OurName(const std::string& r_term) {
  if (r_term.rfind("sitesite_", 0) == 0) {
    int k = 0;
    EXPECT_TRUE(absl::SimpleAtoi(r_term.substr(9), &k)) << r_term;
    return absl::StrCat("(Intercept):site-", k < 10 ? "0" : "", k);
  }
  return r_term;
}

struct Case {
  std::string name;     // test name
  std::string task;     // an example's name, or a spec in text format
  std::string dataset;  // deploy/data/<dataset>.csv
  int clients = 5;
  std::string partition;  // iid or round-robin
  std::string reference;  // glm_coefficients.csv's model
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string Features(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) absl::StrAppend(&out, " features: \"", n, "\"");
  return out;
}

const std::vector<std::string> kRotterdamBaseline = {
    "year", "age", "meno", "size_20_50", "size_gt50", "grade", "pgr", "er", "hormon", "chemo"};

std::vector<std::string> RotterdamCovariates() {
  return {"year",  "age", "meno", "size_20_50", "size_gt50", "grade",
          "nodes", "pgr", "er",   "hormon",     "chemo"};
}

const std::vector<std::string> kSmoking = {
    "ban",  "age",      "edu_hs_grad", "edu_some_college", "edu_college", "edu_master",
    "afam", "hispanic", "female"};

std::vector<Case> Cases() {
  const std::string smoking_fe = absl::StrCat(
      "name: \"smoking-fe\" dataset { id: \"smoking_nhis\"", Features(kSmoking),
      " label: \"smoker\" } model { glm { family: BINOMIAL site_fixed_effects: true } } "
      "min_clients: 3");
  const std::string nodes =
      absl::StrCat("name: \"nodes\" dataset { id: \"rotterdam\"", Features(kRotterdamBaseline),
                   " label: \"nodes\" } model { glm { family: POISSON } } min_clients: 3");
  const std::string rate = absl::StrCat(
      "name: \"rate\" dataset { id: \"rotterdam\"", Features(RotterdamCovariates()),
      " label: \"event\" } model { glm { family: POISSON offset: \"time\" log_offset: true } } "
      "min_clients: 3");
  // A Cox task on Rotterdam: `glm` holds the family's other fields.
  const auto cox_task = [](const std::string& name, const std::string& glm) {
    return absl::StrCat("name: \"", name, "\" dataset { id: \"rotterdam\"",
                        Features(RotterdamCovariates()),
                        " label: \"time\" event: \"event\" } model { glm { family: COX ", glm,
                        " } } min_clients: 3");
  };
  const std::string cox = cox_task("cox", "");
  const std::string cox_breslow = cox_task("cox-breslow", "ties: BRESLOW");
  // One baseline hazard over all sites, on a 30-day grid of 200 times (GlmSpec.
  // pooled_time_grid): R's coxph without strata on the gridded pooled rows.
  const std::string cox_pooled =
      cox_task("cox-pooled", "pooled_time_grid { unit: 30 points: 200 }");
  const std::string cox_pooled_breslow =
      cox_task("cox-pooled-breslow", "ties: BRESLOW pooled_time_grid { unit: 30 points: 200 }");
  // A grid of one day over the whole follow-up (the times are whole days up to 7043): the
  // exact pooled partial likelihood, R's coxph on the raw pooled rows.
  const std::string cox_pooled_daily =
      cox_task("cox-pooled-daily", "pooled_time_grid { unit: 1 points: 7100 }");
  return {
      {"rotterdam_cox_efron_pooled_daily_3", cox_pooled_daily, "rotterdam_survival", 3, "iid",
       "rotterdam_cox_efron"},
      {"rotterdam_cox_efron_pooled_grid_3", cox_pooled, "rotterdam_survival", 3, "iid",
       "rotterdam_cox_efron_pooled_grid"},
      {"rotterdam_cox_efron_pooled_grid_5", cox_pooled, "rotterdam_survival", 5, "iid",
       "rotterdam_cox_efron_pooled_grid"},
      {"rotterdam_cox_breslow_pooled_grid_3", cox_pooled_breslow, "rotterdam_survival", 3,
       "round-robin", "rotterdam_cox_breslow_pooled_grid"},
      {"smoking_binomial_example", "smoking_nhis_glm", "smoking_nhis", 5, "iid",
       "smoking_nhis_binomial"},
      {"diabetes_gaussian_example", "diabetes_glm", "diabetes_progression", 5, "iid",
       "diabetes_gaussian"},
      {"smoking_binomial_site_fixed_effects", smoking_fe, "smoking_nhis", 3, "round-robin",
       "smoking_nhis_binomial_site_fe_3"},
      {"rotterdam_poisson", nodes, "rotterdam_survival", 3, "iid", "rotterdam_nodes_poisson"},
      {"rotterdam_poisson_rate_offset", rate, "rotterdam_survival", 5, "iid",
       "rotterdam_rate_poisson"},
      {"rotterdam_cox_efron_stratified", cox, "rotterdam_survival", 5, "round-robin",
       "rotterdam_cox_efron_site_strata_5"},
      {"rotterdam_cox_breslow_stratified", cox_breslow, "rotterdam_survival", 3, "round-robin",
       "rotterdam_cox_breslow_site_strata_3"},
  };
}

class GlmSimulateTest : public ::testing::TestWithParam<Case> {
 protected:
  testing::TempDir temp_;
};

void ExpectRelative(double got, double want, double tolerance, const std::string& what) {
  EXPECT_LE(std::abs(got - want), tolerance * std::max(std::abs(want), 1e-300))
      << what << ": got " << got << ", R gives " << want;
}

TEST_P(GlmSimulateTest, CoefficientsEqualRsOnThePooledTrainingRows) {
  const Case& c = GetParam();
  std::string task = c.task;
  if (task.find(' ') == std::string::npos) {
    task = ExamplePath(task);
  } else {
    ASSERT_OK(common::WriteFileAtomic(temp_.File("task.textproto"), task));
    task = temp_.File("task.textproto");
  }
  int exit_code = -1;
  const std::string out = RunConsole(
      {"simulate", task, "--clients", absl::StrCat(c.clients), "--partition", c.partition,
       "--test-rows", TestRowsPath(c.dataset), DataPath(c.dataset), "--json"},
      temp_.File("stderr"), &exit_code);
  ASSERT_EQ(exit_code, 0) << common::ReadFile(temp_.File("stderr")).value_or("");
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out, &json).ok()) << out;
  EXPECT_EQ(json.fields().at("state").string_value(), "TASK_COMPLETED") << out;
  ASSERT_TRUE(json.fields().contains("coefficients")) << out;
  const google::protobuf::Struct& glm = json.fields().at("glm").struct_value();
  EXPECT_TRUE(glm.fields().at("converged").bool_value()) << out;
  EXPECT_LE(glm.fields().at("rounds").number_value(), 10) << out;

  const Reference ref = ReadReference(c.reference);
  ASSERT_FALSE(ref.rows.empty()) << "no reference " << c.reference;
  const auto& got = json.fields().at("coefficients").list_value().values();
  ASSERT_EQ(got.size(), static_cast<int>(ref.rows.size())) << out;
  for (const std::vector<std::string>& row : ref.rows) {
    const std::string name = OurName(row[1]);
    const google::protobuf::Struct* coefficient = nullptr;
    for (const google::protobuf::Value& v : got) {
      if (v.struct_value().fields().at("name").string_value() == name) {
        coefficient = &v.struct_value();
      }
    }
    ASSERT_NE(coefficient, nullptr) << "no coefficient " << name << " in " << out;
    for (size_t column = 2; column < ref.header.size(); ++column) {
      const std::string& field = ref.header[column];
      double want = 0;
      ASSERT_TRUE(absl::SimpleAtod(row[column], &want)) << row[column];
      ExpectRelative(coefficient->fields().at(field).number_value(), want,
                     field == "p_value" ? 1e-5 : 1e-6, absl::StrCat(name, " ", field));
    }
  }
}

TEST(GlmSimulateExportTest, AnExactRegressionHasNoModelToExportAndSaysSoBeforeRunning) {
  testing::TempDir temp;
  int exit_code = -1;
  RunConsole({"simulate", ExamplePath("diabetes_glm"), "--clients", "3", "--export",
              temp.File("model.onnx"), DataPath("diabetes_progression")},
             temp.File("stderr"), &exit_code);
  EXPECT_EQ(exit_code, 2);
  const std::string err = common::ReadFile(temp.File("stderr")).value_or("");
  EXPECT_THAT(err, ::testing::HasSubstr("an exact regression's result is its report"));
  EXPECT_THAT(err, ::testing::Not(::testing::HasSubstr("round_committed")));
}

INSTANTIATE_TEST_SUITE_P(Models, GlmSimulateTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace tessera::research

namespace tessera::research {
namespace {

// ColumnPreparation's `standardize` on an exact regression: age standardised by its pooled
// training mean m and population sd s is the same fit per standard deviation — by the
// invariance of the maximum-likelihood fit to a linear change of a covariate, age's
// estimate and standard error are R's times s (its z and p R's), the intercept R's plus
// age's estimate times m, every other coefficient R's.
TEST(GlmStandardizeTest, AStandardizedCovariateIsRsFitPerStandardDeviation) {
  testing::TempDir temp;
  std::string task = common::ReadFile(ExamplePath("smoking_nhis_glm")).value_or("");
  ASSERT_THAT(task, ::testing::HasSubstr("  label: \"smoker\"\n}"));
  task = absl::StrReplaceAll(
      task, {{"  label: \"smoker\"\n}",
              "  label: \"smoker\"\n  prepare { column: \"age\" standardize: true }\n}"}});
  ASSERT_OK(common::WriteFileAtomic(temp.File("task.textproto"), task));
  int exit_code = -1;
  const std::string out =
      RunConsole({"simulate", temp.File("task.textproto"), "--clients", "5", "--test-rows",
                  TestRowsPath("smoking_nhis"), DataPath("smoking_nhis"), "--json"},
                 temp.File("stderr"), &exit_code);
  ASSERT_EQ(exit_code, 0) << common::ReadFile(temp.File("stderr")).value_or("");
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out, &json).ok()) << out;

  // m and s over the pooled training rows.
  std::set<int> test;
  {
    std::ifstream in(TestRowsPath("smoking_nhis"));
    int row = 0;
    while (in >> row) test.insert(row);
  }
  std::ifstream csv(DataPath("smoking_nhis"));
  std::string line;
  std::getline(csv, line);
  const std::vector<std::string> header = absl::StrSplit(line, ',');
  const auto age = std::find(header.begin(), header.end(), "age") - header.begin();
  double sum = 0, sum_sq = 0;
  int n = 0;
  for (int row = 0; std::getline(csv, line); ++row) {
    if (test.contains(row)) continue;
    const std::vector<std::string> cells = absl::StrSplit(line, ',');
    double v = 0;
    ASSERT_TRUE(absl::SimpleAtod(cells[static_cast<size_t>(age)], &v));
    sum += v;
    sum_sq += v * v;
    ++n;
  }
  const double m = sum / n;
  const double s = std::sqrt(sum_sq / n - m * m);

  std::map<std::string, std::map<std::string, double>> r;
  const Reference ref = ReadReference("smoking_nhis_binomial");
  for (const std::vector<std::string>& row : ref.rows) {
    for (size_t c = 2; c < ref.header.size(); ++c) {
      ASSERT_TRUE(absl::SimpleAtod(row[c], &r[row[1]][ref.header[c]]));
    }
  }
  ASSERT_TRUE(r.contains("age") && r.contains("(Intercept)"));
  const auto& got = json.fields().at("coefficients").list_value().values();
  ASSERT_EQ(got.size(), static_cast<int>(r.size())) << out;
  for (const google::protobuf::Value& v : got) {
    const auto& f = v.struct_value().fields();
    const std::string name = f.at("name").string_value();
    std::map<std::string, double> want = r.at(name);
    if (name == "age") {
      want["estimate"] *= s;
      want["std_error"] *= s;
    } else if (name == "(Intercept)") {
      want["estimate"] += r.at("age").at("estimate") * m;
    }
    for (const char* field : {"estimate", "std_error", "statistic", "p_value"}) {
      if (name == "(Intercept)" && std::string(field) != "estimate") continue;  // they change
      ExpectRelative(f.at(field).number_value(), want.at(field),
                     std::string(field) == "p_value" ? 1e-5 : 1e-6, name + " " + field);
    }
  }
}

}  // namespace
}  // namespace tessera::research
