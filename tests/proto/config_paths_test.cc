#include "proto/config_paths.h"

#include <filesystem>

#include "gtest/gtest.h"

namespace tessera::proto {
namespace {

TEST(ConfigPathsTest, RelativePathsAreUnderTheConfigFilesFolder) {
  v1::ConsoleConfig console;
  console.mutable_tls()->set_ca_cert("ca.crt");
  console.mutable_tls()->set_cert("certs/alice.crt");
  console.mutable_tls()->set_key("/abs/alice.key");
  ResolveRelativePaths("/home/alice/.tessera/console.textproto", &console);
  EXPECT_EQ(console.tls().ca_cert(), "/home/alice/.tessera/ca.crt");
  EXPECT_EQ(console.tls().cert(), "/home/alice/.tessera/certs/alice.crt");
  EXPECT_EQ(console.tls().key(), "/abs/alice.key");
}

TEST(ConfigPathsTest, EveryPathOfASiteConfigIsResolvedAndEmptyOnesStayEmpty) {
  v1::ClientConfig site;
  site.mutable_tls()->set_ca_cert("../ca.crt");
  site.set_data_dir("store");
  site.set_ready_file("/run/tessera-client/ready");
  site.set_log_file("log/site.log");
  site.set_metrics_ready_file("metrics.ready");
  v1::LocalDataset* d = site.add_datasets();
  d->set_train_csv("data/train.csv");
  ResolveRelativePaths("/etc/tessera-client/site.textproto", &site);
  EXPECT_EQ(site.tls().ca_cert(), "/etc/ca.crt");
  EXPECT_EQ(site.data_dir(), "/etc/tessera-client/store");
  EXPECT_EQ(site.ready_file(), "/run/tessera-client/ready");
  EXPECT_EQ(site.datasets(0).train_csv(), "/etc/tessera-client/data/train.csv");
  EXPECT_EQ(site.datasets(0).test_csv(), "");
  EXPECT_EQ(site.control_socket(), "");
  EXPECT_EQ(site.log_file(), "/etc/tessera-client/log/site.log");
  EXPECT_EQ(site.metrics_ready_file(), "/etc/tessera-client/metrics.ready");
}

TEST(ConfigPathsTest, AConfigWithoutTlsStaysWithoutTls) {
  v1::CoordinatorConfig config;
  config.set_data_dir("db");
  config.set_log_file("coordinator.log");
  ResolveRelativePaths("/srv/coordinator.textproto", &config);
  EXPECT_FALSE(config.has_tls());
  EXPECT_EQ(config.data_dir(), "/srv/db");
  EXPECT_EQ(config.log_file(), "/srv/coordinator.log");
}

TEST(ConfigPathsTest, ARelativeConfigFileIsTakenFromTheWorkingDirectory) {
  const std::string cwd = std::filesystem::current_path().string();
  EXPECT_EQ(ResolveConfigPath("conf/site.textproto", "site.crt"), cwd + "/conf/site.crt");
  EXPECT_EQ(ResolveConfigPath("site.textproto", "site.crt"), cwd + "/site.crt");
}

}  // namespace
}  // namespace tessera::proto
