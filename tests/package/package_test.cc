// The packaging (docs/packaging.md): the systemd units' sandbox scores, the install rules
// into a temporary prefix, and — on request, TESSERA_PACKAGE_TEST=1 — the three .deb in a
// clean Debian 12 root booted with systemd-nspawn, running the demo federation from the
// installed units (debian_root_test.sh, in_root.sh).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;

const char* const kUnits[] = {"tessera-coordinator", "tessera-client", "tessera-client@"};

// The unit as configured into the build tree (deploy/debian/packaging.cmake).
std::string BuiltUnit(const std::string& unit) {
  const std::string package = unit == "tessera-client@" ? "tessera-client" : unit;
  return absl::StrCat(TESSERA_BINARY_DIR, "/debian/", package, "/", unit, ".service");
}

bool Executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// "→ Overall exposure level for tessera-client.service: 1.2 OK 🙂" -> 1.2; -1 if absent.
double OverallExposure(const std::string& output) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    const size_t at = line.find("Overall exposure level for ");
    if (at == absl::string_view::npos) continue;
    absl::string_view rest = line.substr(line.find(": ", at) + 2);
    double score = -1;
    if (absl::SimpleAtod(rest.substr(0, rest.find(' ')), &score)) return score;
  }
  return -1;
}

TEST(PackageUnitTest, SystemdAnalyzeSecurityExposureOfEachUnitIsBelowThree) {
  if (!Executable("/usr/bin/systemd-analyze")) {
    GTEST_SKIP() << "no /usr/bin/systemd-analyze (Debian's systemd package)";
  }
  for (const std::string unit : kUnits) {
    ASSERT_OK_AND_ASSIGN(CommandResult analyzed,
                         RunCommand({"/usr/bin/systemd-analyze", "security", "--offline=true",
                                     "--no-pager", BuiltUnit(unit)}));
    const double exposure = OverallExposure(analyzed.out);
    ASSERT_GE(exposure, 0) << unit << ": no score in\n" << analyzed.out << analyzed.err;
    EXPECT_LT(exposure, 3.0) << unit << "\n" << analyzed.out;
    std::printf("%s.service: exposure %.1f\n", unit.c_str(), exposure);
  }
}

TEST(PackageUnitTest, UnitsAreNotifyServicesOfTheirOwnUserWithTheIssuesSandbox) {
  for (const std::string unit : kUnits) {
    const std::string text = ReadFileOrEmpty(BuiltUnit(unit));
    ASSERT_FALSE(text.empty()) << BuiltUnit(unit);
    const std::string user = unit == "tessera-coordinator" ? unit : "tessera-client";
    for (const std::string& line : std::vector<std::string>{
             "Type=notify", "User=" + user, "ProtectSystem=strict", "PrivateTmp=yes",
             "NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service",
             "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
             "ExecReload=/bin/kill -HUP $MAINPID",
             "StateDirectory=", "RuntimeDirectory=", "ConfigurationDirectory=tessera-"}) {
      EXPECT_THAT(text, HasSubstr("\n" + line)) << unit;
    }
  }
}

// Every regular file under `root`, relative, with its permission bits.
std::map<std::string, int> FilesAndModes(const std::string& root) {
  std::map<std::string, int> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    struct stat st;
    if (stat(entry.path().c_str(), &st) != 0) continue;
    files[std::filesystem::relative(entry.path(), root).string()] = st.st_mode & 07777;
  }
  return files;
}

TEST(PackageInstallTest, CmakeInstallIntoATemporaryPrefixLaysOutEveryComponent) {
  testing::TempDir prefix;
  ASSERT_OK_AND_ASSIGN(
      CommandResult installed,
      RunCommand({TESSERA_CMAKE, "--install", TESSERA_BINARY_DIR, "--prefix", prefix.path()}));
  ASSERT_EQ(installed.exit_code(), 0) << installed.out << installed.err;
  std::map<std::string, int> expected = {
      {"bin/tessera-coordinator", 0755},
      {"bin/tessera-client", 0755},
      {"bin/tessera", 0755},
      {"lib/systemd/system/tessera-coordinator.service", 0644},
      {"lib/systemd/system/tessera-client.service", 0644},
      {"lib/systemd/system/tessera-client@.service", 0644},
      {"etc/tessera-coordinator/coordinator.textproto", 0644},
      {"etc/tessera-client/client.textproto", 0644},
  };
  for (const std::string package : {"tessera-coordinator", "tessera-client", "tessera-console"}) {
    for (const std::string doc : {"copyright", "changelog.Debian.gz", "packaging.md"}) {
      expected[absl::StrCat("share/doc/", package, "/", doc)] = 0644;
    }
  }
  EXPECT_EQ(FilesAndModes(prefix.path()), expected);
  // The units start the binaries where the configured prefix puts them.
  EXPECT_THAT(ReadFileOrEmpty(prefix.File("lib/systemd/system/tessera-coordinator.service")),
              HasSubstr(absl::StrCat("\nExecStart=", TESSERA_FULL_BINDIR,
                                     "/tessera-coordinator --config "
                                     "/etc/tessera-coordinator/coordinator.textproto\n")));
}

TEST(PackageInstallTest, EachComponentInstallsOnlyItsPackagesFiles) {
  const std::map<std::string, std::string> component_binary = {
      {"coordinator", "bin/tessera-coordinator"},
      {"client", "bin/tessera-client"},
      {"console", "bin/tessera"}};
  for (const auto& [component, binary] : component_binary) {
    testing::TempDir prefix;
    ASSERT_OK_AND_ASSIGN(CommandResult installed,
                         RunCommand({TESSERA_CMAKE, "--install", TESSERA_BINARY_DIR, "--prefix",
                                     prefix.path(), "--component", component}));
    ASSERT_EQ(installed.exit_code(), 0) << installed.out << installed.err;
    std::vector<std::string> binaries;
    for (const auto& [file, mode] : FilesAndModes(prefix.path())) {
      if (file.starts_with("bin/")) binaries.push_back(file);
    }
    EXPECT_THAT(binaries, ::testing::ElementsAre(binary)) << component;
  }
}

TEST(PackageDebianRootTest, PackagesInstallInDebian12AndRunTheDemoFromTheInstalledUnits) {
  const char* requested = std::getenv("TESSERA_PACKAGE_TEST");
  if (requested == nullptr || std::string(requested) != "1") {
    GTEST_SKIP() << "long (a Release build, debootstrap, apt, systemd-nspawn --boot; minutes): "
                    "set TESSERA_PACKAGE_TEST=1 to run it";
  }
  if (geteuid() != 0) GTEST_SKIP() << "needs root (debootstrap, systemd-nspawn)";
  for (const std::string tool : {"/usr/sbin/debootstrap", "/usr/bin/systemd-nspawn"}) {
    if (!Executable(tool)) GTEST_SKIP() << "no " << tool << " (deploy/install-deps.sh)";
  }
  ASSERT_OK_AND_ASSIGN(CommandResult ran,
                       RunCommand({"/bin/bash", absl::StrCat(TESSERA_SOURCE_DIR,
                                                             "/tests/package/debian_root_test.sh")},
                                  absl::Minutes(40)));
  std::printf("%s", ran.out.c_str());
  ASSERT_EQ(ran.exit_code(), 0) << Tail(ran.out, 60) << ran.err;
  EXPECT_THAT(ran.out, HasSubstr("pid 1: systemd"));
  EXPECT_THAT(ran.out, HasSubstr("test_accuracy=0.9"));
  EXPECT_THAT(ran.out, HasSubstr("---- in_root.sh status: ok"));
}

}  // namespace
}  // namespace tessera::e2e
