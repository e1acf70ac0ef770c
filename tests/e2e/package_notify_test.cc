// The daemons' sd_notify messages (common/service_notify.h) with real processes: the test
// owns a NOTIFY_SOCKET datagram socket, as systemd does for a Type=notify unit, and checks
// that READY=1 comes only once the ready file exists, that SIGHUP is announced as
// RELOADING=1 then READY=1, and SIGTERM as STOPPING=1 before a clean exit.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/testing/eventually.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;

// One datagram, and whether the watched ready file existed when it arrived.
struct Notification {
  std::string text;
  bool ready_file_existed = false;
};

// A NOTIFY_SOCKET the test owns: a thread receives every datagram and notes, at arrival,
// whether the ready file (its path from `ready_file`, asked at each arrival) exists.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    bound_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{0, 50000};  // recv wakes up every 50 ms to see whether to stop
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~NotifySocket() {
    done_ = true;
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }

  bool bound() const { return bound_; }

  void Watch(std::function<std::string()> ready_file) {
    reader_ = std::thread([this, ready_file = std::move(ready_file)] {
      char buf[4096];
      while (!done_) {
        ssize_t n = recv(fd_, buf, sizeof(buf), 0);
        if (n <= 0) continue;
        Notification got{std::string(buf, n), access(ready_file().c_str(), F_OK) == 0};
        absl::MutexLock lock(&mu_);
        received_.push_back(got);
      }
    });
  }

  std::vector<Notification> Received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

  // Index of the first datagram at or after `from` containing `line` (a whole line), or -1.
  int Find(const std::string& line, size_t from = 0) {
    std::vector<Notification> got = Received();
    for (size_t i = from; i < got.size(); ++i) {
      if (("\n" + got[i].text + "\n").find("\n" + line + "\n") != std::string::npos) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  // Waits (up to 30 s) for a datagram at or after `from` with `line`; its index or -1.
  int WaitFor(const std::string& line, size_t from = 0) {
    int at = -1;
    testing::Eventually([&] { return (at = Find(line, from)) >= 0; }, absl::Seconds(30));
    return at;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
  std::atomic<bool> done_{false};
  std::thread reader_;
  absl::Mutex mu_;
  std::vector<Notification> received_ ABSL_GUARDED_BY(mu_);
};

class PackageNotifyTest : public FederationTest {
 protected:
  // SIGHUP: RELOADING=1 then READY=1 again; then SIGTERM: STOPPING=1 and exit 0.
  void ExpectReloadThenStop(NotifySocket& notify, Process& daemon) {
    const size_t before = notify.Received().size();
    ASSERT_OK(daemon.Kill(SIGHUP));
    const int reloading = notify.WaitFor("RELOADING=1", before);
    ASSERT_GE(reloading, 0) << daemon.LogTail();
    EXPECT_GT(notify.WaitFor("READY=1", reloading + 1), reloading) << daemon.LogTail();

    const size_t stopped_from = notify.Received().size();
    ASSERT_OK(daemon.Kill(SIGTERM));
    EXPECT_GE(notify.WaitFor("STOPPING=1", stopped_from), 0) << daemon.LogTail();
    ASSERT_OK_AND_ASSIGN(ExitStatus exit, daemon.Wait(absl::Seconds(30)));
    EXPECT_TRUE(exit.Succeeded()) << exit.ToString() << daemon.LogTail();
  }

  testing::TempDir sockets_;
};

TEST_F(PackageNotifyTest, CoordinatorNotifiesReadyAfterItsReadyFileReloadingAndStopping) {
  ASSERT_OK(MakeTestPki());
  NotifySocket notify(sockets_.File("notify"));
  ASSERT_TRUE(notify.bound()) << sockets_.File("notify");
  // The fixture names the file after the start it is in: the one this start will write.
  notify.Watch([path = next_coordinator_ready_file()] { return path; });
  ASSERT_OK(StartCoordinator("127.0.0.1:0", {{"NOTIFY_SOCKET", sockets_.File("notify")}}));

  const int ready = notify.WaitFor("READY=1");
  ASSERT_GE(ready, 0) << coordinator()->LogTail();
  const Notification first = notify.Received()[ready];
  EXPECT_TRUE(first.ready_file_existed) << "READY=1 came before the ready file";
  EXPECT_THAT(first.text, HasSubstr("STATUS=serving on " + address()));
  ExpectReloadThenStop(notify, *coordinator());
}

TEST_F(PackageNotifyTest, ClientNotifiesReadyAfterItsReadyFileReloadingAndStopping) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData({"hospital-a"}));
  ASSERT_OK(StartCoordinator());
  Site& a = site("hospital-a");
  a.ready_path = a.dir + "/ready";
  NotifySocket notify(sockets_.File("notify"));
  ASSERT_TRUE(notify.bound()) << sockets_.File("notify");
  notify.Watch([path = a.ready_path] { return path; });
  ASSERT_OK(StartClient("hospital-a", "", {{"NOTIFY_SOCKET", sockets_.File("notify")}}, 1));

  const int ready = notify.WaitFor("READY=1");
  ASSERT_GE(ready, 0) << a.process->LogTail();
  const Notification first = notify.Received()[ready];
  EXPECT_TRUE(first.ready_file_existed) << "READY=1 came before the ready file";
  EXPECT_THAT(first.text, HasSubstr("STATUS=connected to " + address()));
  ExpectReloadThenStop(notify, *a.process);
}

TEST_F(PackageNotifyTest, DaemonsWithoutNotifySocketSendNothingAndRunAsBefore) {
  // No NOTIFY_SOCKET (the test's own environment has none): the daemons start, serve and
  // stop as they always did; the wrapper is a no-op.
  ASSERT_EQ(getenv("NOTIFY_SOCKET"), nullptr);
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(coordinator()->Kill(SIGHUP));
  // SIGHUP reopens the log (logrotate) and says so (the packages' journal check looks for it).
  EXPECT_TRUE(tessera::testing::Eventually(
      [&] { return coordinator()->Log().find("event=log_reopened") != std::string::npos; },
      absl::Seconds(20)))
      << coordinator()->LogTail();
  ASSERT_OK(StopCoordinator());
}

}  // namespace
}  // namespace tessera::e2e
