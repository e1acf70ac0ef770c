// Records for the coordinator store's tests (tests/coordinator/*store_test.cc) and the
// lists' keys, for comparing what a store returns. Test code only.
#ifndef TESSERA_TESTS_COORDINATOR_STORE_TESTING_H_
#define TESSERA_TESTS_COORDINATOR_STORE_TESTING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "proto/state.pb.h"

namespace tessera::coordinator::store_testing {

// A pending task named `name` (5 rounds, no id yet).
v1::TaskRecord MakeTask(const std::string& name);
// Round `round` of `task_id`: two fit participants, one evaluator, a loss metric.
v1::RoundRecord MakeRound(const std::string& task_id, uint32_t round);
// An active client holding dataset "heart".
v1::ClientRecord MakeClient(const std::string& id, const std::string& fingerprint);
// The bit patterns of `values`, for comparing checkpoints exactly.
std::vector<uint32_t> Bits(const std::vector<float>& values);
std::vector<std::string> TaskIds(const std::vector<v1::TaskRecord>& tasks);
std::vector<uint32_t> RoundNumbers(const std::vector<v1::RoundRecord>& rounds);
std::vector<std::string> ClientIds(const std::vector<v1::ClientRecord>& clients);

}  // namespace tessera::coordinator::store_testing

#endif  // TESSERA_TESTS_COORDINATOR_STORE_TESTING_H_
