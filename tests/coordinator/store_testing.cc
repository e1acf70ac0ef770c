#include "tests/coordinator/store_testing.h"

#include <bit>

namespace tessera::coordinator::store_testing {

v1::TaskRecord MakeTask(const std::string& name) {
  v1::TaskRecord task;
  task.mutable_spec()->set_name(name);
  task.mutable_spec()->set_rounds(5);
  task.set_spec_hash(std::string("\x00\x01\xfe\xff", 4));
  task.set_state(v1::TASK_PENDING);
  task.set_submitted_by("operator-1");
  task.set_created_unix_ms(1700000000123);
  task.set_last_committed_round(-1);
  return task;
}

v1::RoundRecord MakeRound(const std::string& task_id, uint32_t round) {
  v1::RoundRecord record;
  record.set_task_id(task_id);
  record.set_round(round);
  record.add_fit_participants("site-a");
  record.add_fit_participants("site-b");
  record.add_eval_participants("site-a");
  v1::Metric* loss = record.add_metrics();
  loss->set_name("loss");
  loss->set_value(0.25 + round);
  record.set_model_hash(std::string(32, static_cast<char>(round)));
  record.set_started_unix_ms(1000 * round);
  record.set_committed_unix_ms(1000 * round + 500);
  record.set_attempts(1);
  return record;
}

v1::ClientRecord MakeClient(const std::string& id, const std::string& fingerprint) {
  v1::ClientRecord client;
  client.set_client_id(id);
  client.set_cert_fingerprint(fingerprint);
  client.set_status(v1::CLIENT_ACTIVE);
  client.add_dataset_ids("heart");
  return client;
}

std::vector<uint32_t> Bits(const std::vector<float>& values) {
  std::vector<uint32_t> bits;
  bits.reserve(values.size());
  for (float v : values) bits.push_back(std::bit_cast<uint32_t>(v));
  return bits;
}

std::vector<std::string> TaskIds(const std::vector<v1::TaskRecord>& tasks) {
  std::vector<std::string> ids;
  ids.reserve(tasks.size());
  for (const auto& t : tasks) ids.push_back(t.task_id());
  return ids;
}

std::vector<uint32_t> RoundNumbers(const std::vector<v1::RoundRecord>& rounds) {
  std::vector<uint32_t> numbers;
  numbers.reserve(rounds.size());
  for (const auto& r : rounds) numbers.push_back(r.round());
  return numbers;
}

std::vector<std::string> ClientIds(const std::vector<v1::ClientRecord>& clients) {
  std::vector<std::string> ids;
  ids.reserve(clients.size());
  for (const auto& c : clients) ids.push_back(c.client_id());
  return ids;
}

}  // namespace tessera::coordinator::store_testing
