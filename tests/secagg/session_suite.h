// The fixture of the whole-session tests (session_test.cc, session_uniformity_test.cc): a
// federation of 21 clients made once per suite, and their inputs.
#ifndef TESSERA_TESTS_SECAGG_SESSION_SUITE_H_
#define TESSERA_TESTS_SECAGG_SESSION_SUITE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/secagg/secagg_harness.h"

namespace tessera::secagg {

class SecAggSessionTest : public testing::FederationSuite<21> {
 protected:
  static std::vector<std::string> Ids(int n) {
    return std::vector<std::string>(federation_->ids().begin(), federation_->ids().begin() + n);
  }

  static std::map<std::string, std::vector<uint32_t>> Inputs(const std::vector<std::string>& ids,
                                                             uint32_t words) {
    std::map<std::string, std::vector<uint32_t>> inputs;
    uint64_t seed = 1;
    for (const std::string& id : ids) inputs[id] = testing::TestWords(seed++, words);
    return inputs;
  }
};

}  // namespace tessera::secagg

#endif  // TESSERA_TESTS_SECAGG_SESSION_SUITE_H_
