// Validation of the schema messages people write: task files and daemon configs.
// Each Validate* returns every error found, each naming its field path from the root
// ("training.learning_rate", "dataset.features[3]"); an empty vector means valid.
// common::FieldErrorsToStatus turns them into one INVALID_ARGUMENT with file lines.
//
// Unset (zero) fields that have a documented default are valid; ApplyTaskDefaults makes
// them explicit so the stored spec, and its hash, say exactly what ran.
#ifndef TESSERA_PROTO_VALIDATION_H_
#define TESSERA_PROTO_VALIDATION_H_

#include <cstdint>
#include <vector>

#include "common/proto_text.h"

namespace tessera::v1 {
class TaskSpec;
class CoordinatorConfig;
class ClientConfig;
class ConsoleConfig;
}  // namespace tessera::v1

namespace tessera::proto {

// TaskSpec.approval_timeout_seconds: its default (72 hours) and its largest value (30 days).
// ApplyTaskDefaults leaves the field unset (0 stands for the default): it is the
// coordinator's to apply, and filling it in would change the spec hash of every task
// written before it existed, which sites may have approved by hash.
inline constexpr uint32_t kDefaultApprovalTimeoutSeconds = 72 * 3600;
inline constexpr uint32_t kMaxApprovalTimeoutSeconds = 30 * 24 * 3600;

std::vector<common::FieldError> ValidateTaskSpec(const v1::TaskSpec& spec);

// Fills every unset field that has a default and expands feature ranges. Idempotent. Call
// after validation.
void ApplyTaskDefaults(v1::TaskSpec* spec);

// Replaces every feature written as a range, "px{0..63}", by the columns it names (px0 ..
// px63, prefix and suffix kept), so task files need not list hundreds of columns. Returns
// errors for malformed ranges (and then changes nothing).
std::vector<common::FieldError> ExpandFeatureRanges(v1::TaskSpec* spec);

std::vector<common::FieldError> ValidateCoordinatorConfig(const v1::CoordinatorConfig& config);

// Whether "host:port" names a loopback host: localhost, [::1] or 127.0.0.0/8.
bool IsLoopbackAddress(const std::string& address);
void ApplyCoordinatorDefaults(v1::CoordinatorConfig* config);

std::vector<common::FieldError> ValidateClientConfig(const v1::ClientConfig& config);
void ApplyClientDefaults(v1::ClientConfig* config);

std::vector<common::FieldError> ValidateConsoleConfig(const v1::ConsoleConfig& config);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_VALIDATION_H_
