// The coordinator's resource limits (coordinator/limits.h): config ranges and defaults, the
// largest message of a task against the cap (and SubmitTask's refusal), the per-site limits
// on waiting pulls and on the Hello rate, and a Hello that changes nothing not being a store
// write.
#include "coordinator/limits.h"

#include <memory>
#include <string>
#include <vector>

#include "coordinator/client_registry.h"
#include "coordinator/coordinator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "proto/transfer.h"
#include "proto/validation.h"
#include "tests/coordinator/fake_site.h"
#include "tests/coordinator/fault_injecting_store.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::coordinator {
namespace {

using fake::FastOptions;
using fake::ToySpec;
using ::tessera::testing::FakeClock;
using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(ServerLimitsTest, DefaultsAndRangesNameTheField) {
  v1::CoordinatorConfig config;
  ASSERT_OK_AND_ASSIGN(ServerLimits limits, ResolveServerLimits(config));
  EXPECT_EQ(limits.max_message_bytes, size_t{8} << 20);
  EXPECT_EQ(limits.max_threads, 512);
  EXPECT_EQ(limits.memory_quota_bytes, size_t{1024} << 20);
  EXPECT_EQ(limits.max_pulls_per_site, 4);
  EXPECT_EQ(limits.max_hellos_per_minute, 30);
  EXPECT_EQ(limits.max_pushes_per_site, 4);
  config.set_max_pushes_per_site(65);
  EXPECT_THAT(ResolveServerLimits(config),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_pushes_per_site")));
  config.set_max_pushes_per_site(1);
  ASSERT_OK_AND_ASSIGN(limits, ResolveServerLimits(config));
  EXPECT_EQ(limits.max_pushes_per_site, 1);
  config.clear_max_pushes_per_site();
  config.set_max_message_bytes(16 << 20);
  config.set_max_pulls_per_site(2);
  ASSERT_OK_AND_ASSIGN(limits, ResolveServerLimits(config));
  EXPECT_EQ(limits.max_message_bytes, size_t{16} << 20);
  EXPECT_EQ(limits.max_pulls_per_site, 2);
  config.set_max_message_bytes(1000);
  EXPECT_THAT(ResolveServerLimits(config),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_message_bytes")));
  config.clear_max_message_bytes();
  config.set_max_pulls_per_site(65);
  EXPECT_THAT(ResolveServerLimits(config),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_pulls_per_site")));
  config.clear_max_pulls_per_site();
  config.set_max_threads(8);
  EXPECT_THAT(ResolveServerLimits(config),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_threads")));
  config.clear_max_threads();
  EXPECT_EQ(limits.max_model_downloads, 4);
  config.set_max_model_downloads(1025);
  EXPECT_THAT(ResolveServerLimits(config),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_model_downloads")));
  config.set_max_model_downloads(1);
  ASSERT_OK_AND_ASSIGN(limits, ResolveServerLimits(config));
  EXPECT_EQ(limits.max_model_downloads, 1);
}

TEST(ServerLimitsTest, UploadTimeoutAndMinimumRate) {
  v1::CoordinatorConfig config;
  ASSERT_OK_AND_ASSIGN(ServerLimits limits, ResolveServerLimits(config));
  EXPECT_EQ(limits.upload_timeout, absl::Seconds(30));
  EXPECT_EQ(limits.min_upload_bytes_per_second, uint64_t{64} << 10);
  config.set_upload_timeout_seconds(5);
  config.set_min_upload_kib_per_second(1024);
  ASSERT_OK_AND_ASSIGN(limits, ResolveServerLimits(config));
  EXPECT_EQ(limits.upload_timeout, absl::Seconds(5));
  EXPECT_EQ(limits.min_upload_bytes_per_second, uint64_t{1} << 20);
  config.set_upload_timeout_seconds(3601);
  EXPECT_THAT(ResolveServerLimits(config),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("upload_timeout_seconds")));
  config.clear_upload_timeout_seconds();
  config.set_min_upload_kib_per_second(1048577);
  EXPECT_THAT(ResolveServerLimits(config),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min_upload_kib_per_second")));
}

// An MLP on `features` inputs with hidden layers of `width`, softmax over 10 classes.
v1::TaskSpec Mlp(int features, uint32_t width) {
  v1::TaskSpec spec = ToySpec(1, 3);
  spec.mutable_dataset()->clear_features();
  for (int i = 0; i < features; ++i) spec.mutable_dataset()->add_features("f" + std::to_string(i));
  spec.mutable_model()->set_kind(v1::ModelSpec::MLP);
  spec.mutable_model()->clear_inverse_regularization();
  spec.mutable_model()->set_num_classes(10);
  spec.mutable_model()->add_hidden_layers(width);
  spec.mutable_model()->add_hidden_layers(width);
  proto::ApplyTaskDefaults(&spec);
  return spec;
}

TEST(TaskMessageSizeTest, TheLargestMessageNoLongerGrowsWithTheModel) {
  // 100 features, two layers of 1024: 1.17 M parameters, 4.7 MB as float32 — sent apart in
  // chunks, as is the masked input: the largest message holds at most one chunk of either.
  v1::TaskSpec spec = Mlp(100, 1024);
  ASSERT_OK_AND_ASSIGN(size_t largest, LargestTaskMessageBytes(spec));
  EXPECT_GE(largest, proto::kModelChunkBytes);
  EXPECT_LE(largest,
            proto::kModelChunkBytes + 16 * 101 + spec.ByteSizeLong() + kMessageOverheadBytes);
  ASSERT_OK_AND_ASSIGN(size_t larger, LargestTaskMessageBytes(Mlp(100, 2048)));
  EXPECT_LE(larger, largest + 64) << "4.4 M parameters need no larger message";
  // The toy model is tiny: its largest message is the fixed room and its vectors.
  v1::TaskSpec toy = ToySpec(1, 3);
  proto::ApplyTaskDefaults(&toy);
  ASSERT_OK_AND_ASSIGN(size_t small, LargestTaskMessageBytes(toy));
  EXPECT_LT(small, kMessageOverheadBytes + (64 << 10));
}

TEST(TaskMessageSizeTest, ATaskAboveTheCapIsRefusedNamingBothSizes) {
  v1::TaskSpec spec = Mlp(100, 2048);  // ~4.4 M parameters: ~17.6 MB as float32
  EXPECT_THAT(CheckTaskFitsMessages(spec, size_t{1} << 20),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("1048576 bytes"), HasSubstr("max_message_bytes"),
                             HasSubstr("models and masked inputs travel in chunks"))));
  EXPECT_OK(CheckTaskFitsMessages(spec, size_t{2} << 20));
  EXPECT_OK(CheckTaskFitsMessages(spec, size_t{8} << 20));
}

TEST(TaskMessageSizeTest, SubmitTaskRefusesATaskAboveTheCapAndStoresNothing) {
  tessera::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto pki, tessera::testing::TestPki::Create(dir.path()));
  CoordinatorOptions options = FastOptions(*pki);
  options.max_message_bytes = size_t{1} << 20;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Coordinator> coordinator,
                       Coordinator::Create(NewMemoryStore(), common::Clock::Real(), options));
  EXPECT_THAT(coordinator->SubmitTask("op", Mlp(100, 1024)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1048576 bytes")));
  EXPECT_THAT(coordinator->ListTasks(), ::tessera::testing::IsOkAndHolds(::testing::IsEmpty()));
  coordinator->Shutdown();
}

TEST(CallLimiterTest, ExcessPullsAreRefusedAtOnceAndSlotsComeBack) {
  FakeClock clock;
  CallLimiter limiter(2, 30, &clock);
  {
    CallLimiter::PullSlot a = limiter.BeginPull("site-a");
    CallLimiter::PullSlot b = limiter.BeginPull("site-a");
    EXPECT_OK(a.status());
    EXPECT_OK(b.status());
    CallLimiter::PullSlot c = limiter.BeginPull("site-a");
    EXPECT_THAT(c.status(), StatusIs(absl::StatusCode::kResourceExhausted,
                                     AllOf(HasSubstr("site-a"), HasSubstr("max_pulls_per_site"))));
    // Another site is not affected.
    CallLimiter::PullSlot other = limiter.BeginPull("site-b");
    EXPECT_OK(other.status());
    EXPECT_EQ(limiter.WaitingPulls("site-a"), 2);
  }
  EXPECT_EQ(limiter.WaitingPulls("site-a"), 0);
  EXPECT_OK(limiter.BeginPull("site-a").status());
}

// Pushes in progress have their own count: a site at its pull limit may still push, and
// the reverse.
TEST(CallLimiterTest, ExcessPushesAreRefusedAtOnceApartFromPulls) {
  FakeClock clock;
  CallLimiter limiter(1, 30, &clock, /*max_pushes_per_site=*/2);
  {
    CallLimiter::PullSlot pull = limiter.BeginPull("site-a");
    CallLimiter::PullSlot a = limiter.BeginPush("site-a");
    CallLimiter::PullSlot b = limiter.BeginPush("site-a");
    EXPECT_OK(pull.status());
    EXPECT_OK(a.status());
    EXPECT_OK(b.status());
    CallLimiter::PullSlot c = limiter.BeginPush("site-a");
    EXPECT_THAT(c.status(),
                StatusIs(absl::StatusCode::kResourceExhausted,
                         AllOf(HasSubstr("site-a already has 2 PushResult calls in progress"),
                               HasSubstr("max_pushes_per_site"))));
    EXPECT_OK(limiter.BeginPush("site-b").status());
    EXPECT_EQ(limiter.WaitingPulls("site-a"), 1);
  }
  EXPECT_OK(limiter.BeginPush("site-a").status());
  EXPECT_EQ(limiter.WaitingPulls("site-a"), 0);
}

TEST(CallLimiterTest, HellosBeyondTheRateAreRefusedUntilTokensRefill) {
  FakeClock clock;
  CallLimiter limiter(4, 6, &clock);  // a burst of 6, then one every 10 s
  for (int i = 0; i < 6; ++i) EXPECT_OK(limiter.AdmitHello("site-a")) << i;
  EXPECT_THAT(limiter.AdmitHello("site-a"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("site-a"), HasSubstr("max_hellos_per_minute"))));
  EXPECT_OK(limiter.AdmitHello("site-b"));
  clock.Advance(absl::Seconds(9));
  EXPECT_FALSE(limiter.AdmitHello("site-a").ok());
  clock.Advance(absl::Seconds(2));
  EXPECT_OK(limiter.AdmitHello("site-a"));
  EXPECT_FALSE(limiter.AdmitHello("site-a").ok());
}

TEST(CallLimiterTest, RefusalsAreLoggedOnceEveryTenSecondsPerSiteAndMethod) {
  FakeClock clock;
  CallLimiter limiter(4, 30, &clock);
  EXPECT_EQ(limiter.TakeLogTurn("site-a", "Hello"), 0);
  EXPECT_EQ(limiter.TakeLogTurn("site-a", "Hello"), -1);
  EXPECT_EQ(limiter.TakeLogTurn("site-a", "Hello"), -1);
  EXPECT_EQ(limiter.TakeLogTurn("site-a", "PullWork"), 0);
  EXPECT_EQ(limiter.TakeLogTurn("site-b", "Hello"), 0);
  clock.Advance(absl::Seconds(10));
  EXPECT_EQ(limiter.TakeLogTurn("site-a", "Hello"), 2);
}

TEST(HelloWriteTest, AHelloThatChangesNothingIsNotAStoreWrite) {
  FakeClock clock;
  testing::FaultInjectingStore store(NewMemoryStore());
  int writes = 0;
  store.SetWriteHook([&](const std::string& op, int) {
    if (op == "PutClient") ++writes;
    return absl::OkStatus();
  });
  ClientRegistry registry(
      &store, &clock, absl::Seconds(90), [](const std::string&) { return 0; }, absl::Seconds(40));
  ASSERT_OK(registry.Hello("site-a", "fp", {"d"}, "1"));
  EXPECT_EQ(writes, 1);
  for (int i = 0; i < 100; ++i) {
    clock.Advance(absl::Milliseconds(100));
    ASSERT_OK(registry.Hello("site-a", "fp", {"d"}, "1"));
  }
  EXPECT_EQ(writes, 1) << "Hellos that change nothing wrote the store";
  // What changes is written at once: datasets, version, certificate.
  ASSERT_OK(registry.Hello("site-a", "fp", {"d", "e"}, "1"));
  EXPECT_EQ(writes, 2);
  ASSERT_OK(registry.Hello("site-a", "fp2", {"d", "e"}, "1"));
  EXPECT_EQ(writes, 3);
  ASSERT_OK_AND_ASSIGN(v1::ClientRecord stored, store.GetClient("site-a"));
  EXPECT_EQ(stored.cert_fingerprint(), "fp2");
  // The last-seen time alone is written once a minute.
  clock.Advance(absl::Minutes(1));
  ASSERT_OK(registry.Hello("site-a", "fp2", {"d", "e"}, "1"));
  EXPECT_EQ(writes, 4);
  ASSERT_OK_AND_ASSIGN(stored, store.GetClient("site-a"));
  EXPECT_EQ(stored.last_seen_unix_ms(), common::ToUnixMillis(clock.Now()));
}

}  // namespace
}  // namespace tessera::coordinator
