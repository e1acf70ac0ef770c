// Test helpers for the secure-stage runner (coordinator/secure_stage.h). Test code only.
#ifndef TESSERA_TESTS_COORDINATOR_SECURE_STAGE_TESTING_H_
#define TESSERA_TESTS_COORDINATOR_SECURE_STAGE_TESTING_H_

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "coordinator/secure_stage.h"
#include "proto/federation.pb.h"
#include "tests/secagg/secagg_harness.h"

namespace tessera::coordinator::testing {

// A session of `federation`'s sites for round 1 of "task-1": `stage`, `threshold`, vectors
// of `length` values in the harness's encoding, 30 s for every step. Tests change what
// they need after.
inline SecureStageRequest ToyStageRequest(const secagg::testing::Federation& federation,
                                          v1::Stage stage, uint32_t threshold, size_t length = 8) {
  SecureStageRequest request;
  request.task_id = "task-1";
  request.round = 1;
  request.stage = stage;
  request.cohort = federation.ids();
  request.threshold = threshold;
  request.encoding = secagg::testing::MakeSetup(request.cohort, threshold, length).encoding();
  request.first_step_deadline = absl::Seconds(30);
  request.step_deadline = absl::Seconds(30);
  return request;
}

}  // namespace tessera::coordinator::testing

#endif  // TESSERA_TESTS_COORDINATOR_SECURE_STAGE_TESTING_H_
