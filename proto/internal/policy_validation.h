// Validation of a site's LocalPolicy (proto/config.proto), part of ValidateClientConfig.
#ifndef TESSERA_PROTO_INTERNAL_POLICY_VALIDATION_H_
#define TESSERA_PROTO_INTERNAL_POLICY_VALIDATION_H_

#include <set>
#include <string>
#include <vector>

#include "common/proto_text.h"

namespace tessera::v1 {
class LocalPolicy;
}  // namespace tessera::v1

namespace tessera::proto::internal {

// Appends an error naming the field path ("policy.allowed_columns[0].dataset") for every
// bad value of `policy`. `datasets`: the config's dataset ids; every dataset the policy
// names must be one of them (a typo would otherwise refuse every task silently).
void ValidateLocalPolicy(const v1::LocalPolicy& policy, const std::set<std::string>& datasets,
                         std::vector<common::FieldError>* errors);

}  // namespace tessera::proto::internal

#endif  // TESSERA_PROTO_INTERNAL_POLICY_VALIDATION_H_
