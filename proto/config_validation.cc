// proto/validation.h's daemon and console configs (the task spec's rules are in
// validation.cc).
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proto/analytics.h"
#include "proto/config.pb.h"
#include "proto/internal/names.h"
#include "proto/internal/policy_validation.h"
#include "proto/validation.h"

namespace tessera::proto {
namespace {

using common::FieldError;
using internal::IsValidName;

// "host:port" with a non-empty host and a port in 0..65535.
bool IsValidAddress(const std::string& addr) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size()) return false;
  std::string port = addr.substr(colon + 1);
  if (port.size() > 5) return false;
  for (char c : port) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return std::stoi(port) <= 65535;
}

// Fields 20..24 of both daemons' configs: the metrics listener and the log.
template <typename Config>
void CheckMonitoring(const Config& config, std::vector<FieldError>* errors) {
  const std::string& metrics = config.metrics_listen_address();
  if (!metrics.empty() && !IsValidAddress(metrics)) {
    errors->push_back({"metrics_listen_address", "must be host:port with a port in 0..65535"});
  } else if (!metrics.empty() && !config.metrics_allow_remote() && !IsLoopbackAddress(metrics)) {
    errors->push_back({"metrics_listen_address",
                       "must be a loopback address (127.0.0.1, [::1] or localhost): the "
                       "listener has no authentication; set metrics_allow_remote to serve "
                       "another network"});
  }
  if (!config.log_format().empty() && config.log_format() != "logfmt" &&
      config.log_format() != "json") {
    errors->push_back({"log_format", "must be logfmt or json"});
  }
}

void CheckTls(const v1::TlsFiles& tls, const std::string& prefix, std::vector<FieldError>* errors) {
  if (tls.ca_cert().empty()) errors->push_back({prefix + ".ca_cert", "required"});
  if (tls.cert().empty()) errors->push_back({prefix + ".cert", "required"});
  if (tls.key().empty()) errors->push_back({prefix + ".key", "required"});
}

}  // namespace

std::vector<FieldError> ValidateCoordinatorConfig(const v1::CoordinatorConfig& config) {
  std::vector<FieldError> errors;
  if (!config.listen_address().empty() && !IsValidAddress(config.listen_address())) {
    errors.push_back({"listen_address", "must be host:port with a port in 0..65535"});
  }
  if (config.data_dir().empty()) errors.push_back({"data_dir", "required"});
  if (!config.has_tls()) {
    errors.push_back({"tls", "required (ca_cert, cert, key)"});
  } else {
    CheckTls(config.tls(), "tls", &errors);
  }
  if (config.long_poll_seconds() > 300) {
    errors.push_back({"long_poll_seconds", "must be 1..300"});
  }
  if (config.client_liveness_seconds() > 86400) {
    errors.push_back({"client_liveness_seconds", "must be 1..86400"});
  }
  if (config.crl_poll_seconds() > 3600) {
    errors.push_back({"crl_poll_seconds", "must be 1..3600"});
  }
  CheckMonitoring(config, &errors);
  return errors;
}

bool IsLoopbackAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  const std::string host = address.substr(0, colon);
  return host == "localhost" || host == "[::1]" || absl::StartsWith(host, "127.");
}

void ApplyCoordinatorDefaults(v1::CoordinatorConfig* config) {
  if (config->listen_address().empty()) config->set_listen_address("0.0.0.0:7443");
  if (config->long_poll_seconds() == 0) config->set_long_poll_seconds(20);
  if (config->client_liveness_seconds() == 0) config->set_client_liveness_seconds(90);
  if (config->crl_poll_seconds() == 0) config->set_crl_poll_seconds(2);
}

std::vector<FieldError> ValidateClientConfig(const v1::ClientConfig& config) {
  std::vector<FieldError> errors;
  if (config.coordinator_address().empty()) {
    errors.push_back({"coordinator_address", "required"});
  } else if (!IsValidAddress(config.coordinator_address())) {
    errors.push_back({"coordinator_address", "must be host:port"});
  }
  if (!config.has_tls()) {
    errors.push_back({"tls", "required (ca_cert, cert, key)"});
  } else {
    CheckTls(config.tls(), "tls", &errors);
  }
  if (config.data_dir().empty()) {
    errors.push_back({"data_dir",
                      "required: the directory of the site store, which records "
                      "what this site sent"});
  }
  if (config.datasets().empty()) {
    errors.push_back({"datasets", "at least one local dataset is required"});
  }
  std::set<std::string> ids;
  for (int i = 0; i < config.datasets_size(); ++i) {
    const v1::LocalDataset& d = config.datasets(i);
    std::string prefix = absl::StrCat("datasets[", i, "]");
    if (d.id().empty()) {
      errors.push_back({prefix + ".id", "required"});
    } else if (!IsValidName(d.id(), /*allow_upper=*/false)) {
      errors.push_back({prefix + ".id", "must be 1..64 characters from [a-z0-9._-]"});
    } else if (!ids.insert(d.id()).second) {
      errors.push_back({prefix + ".id", absl::StrCat("dataset id '", d.id(), "' appears twice")});
    }
    if (d.train_csv().empty()) errors.push_back({prefix + ".train_csv", "required"});
  }
  internal::ValidateLocalPolicy(config.policy(), ids, &errors);
  if (config.ledger().checkpoint_every() > 1000000) {
    errors.push_back({"ledger.checkpoint_every", "must be 1..1000000"});
  }
  if (config.retry().max_backoff_ms() != 0 &&
      config.retry().max_backoff_ms() < config.retry().initial_backoff_ms()) {
    errors.push_back({"retry.max_backoff_ms", "must be >= retry.initial_backoff_ms"});
  }
  // sockaddr_un.sun_path holds 108 bytes with the terminating 0; the default is checked
  // when the daemon binds it.
  if (config.control_socket().size() > 107) {
    errors.push_back({"control_socket", "longer than 107 bytes (the limit of a Unix socket path)"});
  }
  if (config.max_message_bytes() != 0 &&
      (config.max_message_bytes() < (1u << 20) || config.max_message_bytes() > (512u << 20))) {
    errors.push_back({"max_message_bytes", "must be 1048576..536870912 (1 MiB..512 MiB)"});
  }
  CheckMonitoring(config, &errors);
  return errors;
}

void ApplyClientDefaults(v1::ClientConfig* config) {
  if (config->policy().min_cohort() == 0) config->mutable_policy()->set_min_cohort(2);
  if (config->policy().min_cell_size() == 0) {
    config->mutable_policy()->set_min_cell_size(kDefaultMinCellSize);
  }
  if (config->retry().initial_backoff_ms() == 0) {
    config->mutable_retry()->set_initial_backoff_ms(250);
  }
  if (config->retry().max_backoff_ms() == 0) {
    config->mutable_retry()->set_max_backoff_ms(
        std::max<uint32_t>(10000, config->retry().initial_backoff_ms()));
  }
  if (config->ledger().checkpoint_every() == 0) config->mutable_ledger()->set_checkpoint_every(64);
  if (config->control_socket().empty() && !config->data_dir().empty()) {
    config->set_control_socket(config->data_dir() + "/control.sock");
  }
}

std::vector<FieldError> ValidateConsoleConfig(const v1::ConsoleConfig& config) {
  std::vector<FieldError> errors;
  if (config.coordinator_address().empty()) {
    errors.push_back({"coordinator_address", "required"});
  } else if (!IsValidAddress(config.coordinator_address())) {
    errors.push_back({"coordinator_address", "must be host:port"});
  }
  if (!config.has_tls()) {
    errors.push_back({"tls", "required (ca_cert, cert, key)"});
  } else {
    CheckTls(config.tls(), "tls", &errors);
  }
  return errors;
}

}  // namespace tessera::proto
