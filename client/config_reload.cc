#include "client/config_reload.h"

#include <utility>

#include "common/proto_text.h"
#include "common/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/message_differencer.h"
#include "proto/config_paths.h"
#include "proto/validation.h"

namespace tessera::client {
namespace {

// Whether `a` and `b` differ in top-level field `field`.
bool Differs(const v1::ClientConfig& a, const v1::ClientConfig& b,
             const google::protobuf::FieldDescriptor* field) {
  v1::ClientConfig a_only;
  v1::ClientConfig b_only;
  const google::protobuf::Reflection* reflection = a.GetReflection();
  a_only.CopyFrom(a);
  b_only.CopyFrom(b);
  const google::protobuf::Descriptor* descriptor = a.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    if (descriptor->field(i) == field) continue;
    reflection->ClearField(&a_only, descriptor->field(i));
    reflection->ClearField(&b_only, descriptor->field(i));
  }
  return !google::protobuf::util::MessageDifferencer::Equals(a_only, b_only);
}

}  // namespace

absl::StatusOr<v1::ClientConfig> LoadClientConfig(const std::string& path) {
  v1::ClientConfig config;
  common::TextLocations where;
  RETURN_IF_ERROR(common::LoadProtoFile(path, &config, &where));
  proto::ResolveRelativePaths(path, &config);
  RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateClientConfig(config), path, &where));
  proto::ApplyClientDefaults(&config);
  return config;
}

v1::ClientConfig LiveConfig::Get(uint64_t* generation) const {
  absl::MutexLock lock(&mu_);
  if (generation != nullptr) *generation = generation_;
  return config_;
}

uint64_t LiveConfig::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

absl::StatusOr<std::vector<std::string>> LiveConfig::Reload(const std::string& path) {
  ASSIGN_OR_RETURN(v1::ClientConfig fresh, LoadClientConfig(path));
  absl::MutexLock lock(&mu_);
  std::vector<std::string> needs_restart;
  const google::protobuf::Descriptor* descriptor = fresh.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->name() == "policy") continue;
    if (Differs(config_, fresh, field)) needs_restart.push_back(field->name());
  }
  *config_.mutable_policy() = fresh.policy();
  ++generation_;
  return needs_restart;
}

}  // namespace tessera::client
