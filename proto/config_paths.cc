#include "proto/config_paths.h"

#include <filesystem>
#include <system_error>

namespace tessera::proto {
namespace {

namespace fs = std::filesystem;

void Resolve(const std::string& config_path, std::string* path) {
  *path = ResolveConfigPath(config_path, *path);
}

// Only called when the config has a tls block (mutable_tls() would make one present).
void ResolveTls(const std::string& config_path, v1::TlsFiles* tls) {
  Resolve(config_path, tls->mutable_ca_cert());
  Resolve(config_path, tls->mutable_cert());
  Resolve(config_path, tls->mutable_key());
}

}  // namespace

std::string ResolveConfigPath(const std::string& config_path, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  std::error_code ec;
  fs::path folder = fs::absolute(fs::path(config_path), ec).parent_path();
  if (ec) folder = fs::path(config_path).parent_path();
  return (folder / path).lexically_normal().string();
}

void ResolveRelativePaths(const std::string& config_path, v1::CoordinatorConfig* config) {
  if (config->has_tls()) ResolveTls(config_path, config->mutable_tls());
  Resolve(config_path, config->mutable_ready_file());
  Resolve(config_path, config->mutable_data_dir());
  Resolve(config_path, config->mutable_metrics_ready_file());
  Resolve(config_path, config->mutable_log_file());
  Resolve(config_path, config->mutable_crl_file());
}

void ResolveRelativePaths(const std::string& config_path, v1::ClientConfig* config) {
  if (config->has_tls()) ResolveTls(config_path, config->mutable_tls());
  Resolve(config_path, config->mutable_ready_file());
  Resolve(config_path, config->mutable_data_dir());
  Resolve(config_path, config->mutable_control_socket());
  Resolve(config_path, config->mutable_metrics_ready_file());
  Resolve(config_path, config->mutable_log_file());
  Resolve(config_path, config->mutable_crl_file());
  for (v1::LocalDataset& d : *config->mutable_datasets()) {
    Resolve(config_path, d.mutable_train_csv());
    Resolve(config_path, d.mutable_test_csv());
  }
}

void ResolveRelativePaths(const std::string& config_path, v1::ConsoleConfig* config) {
  if (config->has_tls()) ResolveTls(config_path, config->mutable_tls());
}

}  // namespace tessera::proto
