// The daemon configs deploy/ ships for containers (deploy/container/*.textproto, the images'
// examples) and Kubernetes (deploy/kubernetes/*/*.textproto, their ConfigMaps) load and
// validate as the daemons load them: common::LoadProtoFile, proto::ResolveRelativePaths,
// proto::Validate*Config. The manifests around them are checked by check_kubernetes.py and
// check_containerfiles.py (ctest Kubernetes*, Containerfile*).
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/match.h"
#include "common/proto_text.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "proto/config_paths.h"
#include "proto/validation.h"
#include "tests/testing/status_matchers.h"

namespace tessera {
namespace {

std::string Source(const std::string& relative) {
  return std::string(TESSERA_SOURCE_DIR) + "/" + relative;
}

std::vector<common::FieldError> Validate(const v1::CoordinatorConfig& c) {
  return proto::ValidateCoordinatorConfig(c);
}
std::vector<common::FieldError> Validate(const v1::ClientConfig& c) {
  return proto::ValidateClientConfig(c);
}

// The config at `relative`, loaded, resolved and validated as the daemon's --config loads
// it (tessera-coordinator, tessera-client run); a site's with its defaults applied.
template <typename Config>
Config Load(const std::string& relative) {
  Config config;
  common::TextLocations where;
  const std::string path = Source(relative);
  EXPECT_OK(common::LoadProtoFile(path, &config, &where));
  proto::ResolveRelativePaths(path, &config);
  EXPECT_OK(common::FieldErrorsToStatus(Validate(config), path, &where));
  if constexpr (std::is_same_v<Config, v1::ClientConfig>) proto::ApplyClientDefaults(&config);
  return config;
}

TEST(DeployConfigTest, ContainerConfigsValidateWithTheImagesPaths) {
  const v1::CoordinatorConfig coordinator =
      Load<v1::CoordinatorConfig>("deploy/container/coordinator.textproto");
  EXPECT_TRUE(absl::StartsWith(coordinator.data_dir(), "/var/lib/tessera-coordinator/"));
  EXPECT_TRUE(absl::StartsWith(coordinator.tls().key(), "/etc/tessera-coordinator/"));
  // The health check's listener stays inside the container.
  EXPECT_TRUE(proto::IsLoopbackAddress(coordinator.metrics_listen_address()));
  EXPECT_EQ(coordinator.metrics_ready_file(), "/run/tessera-coordinator/metrics");

  const v1::ClientConfig site = Load<v1::ClientConfig>("deploy/container/client.textproto");
  EXPECT_TRUE(absl::StartsWith(site.data_dir(), "/var/lib/tessera-client/"));
  EXPECT_TRUE(proto::IsLoopbackAddress(site.metrics_listen_address()));
  EXPECT_EQ(site.metrics_ready_file(), "/run/tessera-client/metrics");
  // The control socket of `tessera-client tasks` lands on the store's volume, not on the
  // read-only root file system.
  EXPECT_TRUE(absl::StartsWith(site.control_socket(), "/var/lib/tessera-client/"));
}

TEST(DeployConfigTest, KubernetesConfigsValidateWithTheManifestsPaths) {
  const v1::CoordinatorConfig coordinator =
      Load<v1::CoordinatorConfig>("deploy/kubernetes/coordinator/coordinator.textproto");
  EXPECT_EQ(coordinator.listen_address(), "0.0.0.0:7443");
  EXPECT_EQ(coordinator.tls().key(), "/run/tessera-coordinator/tls/coordinator.key");
  EXPECT_EQ(coordinator.log_format(), "json");

  const v1::ClientConfig site = Load<v1::ClientConfig>("deploy/kubernetes/site/client.textproto");
  EXPECT_EQ(site.coordinator_address(), "tessera-coordinator.tessera.svc:7443");
  EXPECT_EQ(site.tls().key(), "/run/tessera-client/tls/site.key");
  EXPECT_TRUE(absl::StartsWith(site.control_socket(), "/var/lib/tessera-client/"));
}

// The kubelet's probes reach the metrics listener on the pod's address, so the Kubernetes
// configs bind it to 0.0.0.0, which the daemons refuse without metrics_allow_remote.
TEST(DeployConfigTest, KubernetesMetricsListenerIsRefusedWithoutAllowRemote) {
  v1::CoordinatorConfig coordinator =
      Load<v1::CoordinatorConfig>("deploy/kubernetes/coordinator/coordinator.textproto");
  ASSERT_TRUE(coordinator.metrics_allow_remote());
  coordinator.set_metrics_allow_remote(false);
  const auto errors = proto::ValidateCoordinatorConfig(coordinator);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "metrics_listen_address");

  v1::ClientConfig site = Load<v1::ClientConfig>("deploy/kubernetes/site/client.textproto");
  ASSERT_TRUE(site.metrics_allow_remote());
  site.set_metrics_allow_remote(false);
  const auto site_errors = proto::ValidateClientConfig(site);
  ASSERT_EQ(site_errors.size(), 1u);
  EXPECT_EQ(site_errors[0].path, "metrics_listen_address");
}

}  // namespace
}  // namespace tessera
