// Test data of glm_test.cc and cox_test.cc: the public datasets and R's reference files
// (tests/research/reference), read as plain CSV, and the training rows dealt round-robin to
// sites the way glm_reference.R deals them.
#ifndef TESSERA_TESTS_GLM_GLM_DATA_H_
#define TESSERA_TESTS_GLM_GLM_DATA_H_

#include <string>
#include <vector>

#include "Eigen/Core"
#include "glm/glm.h"
#include "gtest/gtest.h"

namespace tessera::glm::test_data {

// A CSV of numbers with a header (deploy/data's format), or of the references (text in
// the first columns).
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int Column(const std::string& name) const {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return static_cast<int>(i);
    }
    ADD_FAILURE() << "no column " << name;
    return -1;
  }
};

Table ReadCsv(const std::string& path);

// A number cell (a failed expectation if it is not one).
double Number(const std::string& text);

// TESSERA_SOURCE_DIR + "/" + relative.
std::string Source(const std::string& relative);

// One reference model: which data, which columns, which family.
struct Model {
  std::string name;  // glm_reference.R's
  std::string dataset;
  std::string label;
  std::vector<std::string> excluded;  // besides the label
  std::string log_offset;             // a column whose log is the offset, or ""
  Family family;
};

// glm_reference.R's GLMs (binomial, Gaussian, two Poisson).
const std::vector<Model>& Models();

// A site's rows: X with the intercept first, y, the offset.
struct SiteData {
  Eigen::MatrixXd x;
  Eigen::VectorXd y;
  Eigen::VectorXd offset;
};

struct Split {
  // "(Intercept)", or with site fixed effects "sitesite_1" .. (R's names for the factor's
  // levels); then the features in CSV order.
  std::vector<std::string> names;
  std::vector<int> intercepts;  // their columns
  std::vector<SiteData> sites;
};

// The training rows of `model`'s dataset dealt round-robin to `count` sites (the i-th
// training row, from 0, to site i mod count, as glm_reference.R deals them). With
// `fixed_effects` each site has an intercept of its own (its column is 1 on its rows only).
Split Deal(const Model& model, int count, bool fixed_effects = false);

// |got - want| <= tolerance * |want|, naming `what` otherwise.
void ExpectRelative(double got, double want, double tolerance, const std::string& what);

}  // namespace tessera::glm::test_data

#endif  // TESSERA_TESTS_GLM_GLM_DATA_H_
