// When the coordinator runs a session as SecAgg+ (SessionSparseSetup): only for a task that
// asks for it, only from its min_sites on, only when a sparse graph meets the conditions
// for every list the session may end up with, and with the spec's fractions in the set-up
// (which every site checks against its own minimum).
#include <optional>

#include "coordinator/secure_stage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/validation.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"
#include "tests/testing/status_matchers.h"

namespace tessera::coordinator {
namespace {

v1::TaskSpec PlusSpec(uint32_t min_sites) {
  v1::TaskSpec spec;
  spec.mutable_secure_aggregation()->mutable_secagg_plus()->set_min_sites(min_sites);
  proto::ApplyTaskDefaults(&spec);
  return spec;
}

TEST(SessionSparseSetupTest, FullBonawitzUnlessTheSpecAsksAndTheCohortIsLargeEnough) {
  ASSERT_OK_AND_ASSIGN(auto none, SessionSparseSetup(v1::TaskSpec(), 1000));
  EXPECT_FALSE(none.has_value()) << "no secagg_plus in the spec";
  ASSERT_OK_AND_ASSIGN(auto below, SessionSparseSetup(PlusSpec(500), 499));
  EXPECT_FALSE(below.has_value()) << "below min_sites";
  v1::TaskSpec many_colluders = PlusSpec(4);
  many_colluders.mutable_secure_aggregation()->mutable_secagg_plus()->set_colluding_fraction(0.3);
  ASSERT_OK_AND_ASSIGN(auto dense, SessionSparseSetup(many_colluders, 30));
  EXPECT_FALSE(dense.has_value()) << "30 sites, 9 colluding: no sparse graph meets sigma = 40";

  ASSERT_OK_AND_ASSIGN(auto sparse, SessionSparseSetup(PlusSpec(500), 1000));
  ASSERT_TRUE(sparse.has_value());
  EXPECT_EQ(sparse->colluding_fraction(), 0.05);
  EXPECT_EQ(sparse->dropout_fraction(), 0.05);
  EXPECT_EQ(sparse->security_bits(), secagg::kSecAggPlusSecurityBits);
  EXPECT_EQ(sparse->correctness_bits(), secagg::kSecAggPlusCorrectnessBits);
  EXPECT_LT(sparse->neighbours(), 1000u / 4);
  // Whatever list of 667..1000 sites the session ends up with, every site accepts k.
  for (uint32_t listed : {secagg::DefaultThreshold(1000), 800u, 1000u}) {
    EXPECT_OK(secagg::ValidateSparse(*sparse, 1000, listed)) << listed;
  }
}

}  // namespace
}  // namespace tessera::coordinator
