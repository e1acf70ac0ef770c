#include "tests/e2e/flood.h"

#include <deque>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "proto/federation.grpc.pb.h"

namespace tessera::e2e {

struct Flood::Call {
  bool hello = false;
  bool in_flight = false;
  absl::Time issued;
  std::unique_ptr<grpc::ClientContext> context;
  v1::HelloResponse hello_response;
  v1::PullWorkResponse pull_response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::HelloResponse>> hello_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::PullWorkResponse>> pull_reader;
};

Flood::Flood(std::shared_ptr<grpc::Channel> channel, int pulls, int hellos,
             absl::Duration reissue_after)
    : channel_(std::move(channel)), pulls_(pulls), hellos_(hellos), reissue_after_(reissue_after) {}

Flood::~Flood() { Stop(); }

void Flood::Start() {
  driver_ = std::thread([this] { Drive(); });
}

void Flood::Stop() {
  stop_ = true;
  if (driver_.joinable()) driver_.join();
}

std::map<int, int> Flood::codes() const {
  absl::MutexLock lock(&mu_);
  return codes_;
}

std::map<std::string, std::string> Flood::refusals() const {
  absl::MutexLock lock(&mu_);
  return refusals_;
}

void Flood::Drive() {
  std::unique_ptr<v1::Federation::Stub> stub = v1::Federation::NewStub(channel_);
  grpc::CompletionQueue queue;
  std::vector<Call> calls(static_cast<size_t>(pulls_ + hellos_));
  auto issue = [&](size_t i) {
    Call& c = calls[i];
    c.context = std::make_unique<grpc::ClientContext>();
    c.context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    c.context->AddMetadata("tessera-instance", "flooding-instance");
    c.issued = absl::Now();
    c.in_flight = true;
    void* tag = &c;  // the call itself: its index is its place in `calls`
    if (c.hello) {
      v1::HelloRequest request;
      request.set_client_version("flood");
      request.set_instance_id("flooding-instance");
      c.hello_reader = stub->AsyncHello(c.context.get(), request, &queue);
      c.hello_reader->Finish(&c.hello_response, &c.status, tag);
    } else {
      c.pull_reader = stub->AsyncPullWork(c.context.get(), v1::PullWorkRequest(), &queue);
      c.pull_reader->Finish(&c.pull_response, &c.status, tag);
    }
    ++issued_;
  };
  for (size_t i = 0; i < calls.size(); ++i) {
    calls[i].hello = i >= static_cast<size_t>(pulls_);
    issue(i);
  }
  // Calls that ended, in the order they are due again (all wait the same time).
  std::deque<size_t> due;
  int in_flight = static_cast<int>(calls.size());
  bool cancelled = false;
  while (!stop_ || in_flight > 0) {
    void* tag = nullptr;
    bool ok = false;
    const auto next =
        queue.AsyncNext(&tag, &ok, absl::ToChronoTime(absl::Now() + absl::Milliseconds(20)));
    if (next == grpc::CompletionQueue::GOT_EVENT) {
      Call& c = *static_cast<Call*>(tag);
      c.in_flight = false;
      --in_flight;
      {
        absl::MutexLock lock(&mu_);
        ++codes_[c.status.error_code()];
        if (c.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          refusals_[c.hello ? "Hello" : "PullWork"] = c.status.error_message();
        }
      }
      due.push_back(static_cast<size_t>(&c - calls.data()));
    }
    if (stop_ && !cancelled) {
      for (Call& c : calls) {
        if (c.in_flight) c.context->TryCancel();
      }
      cancelled = true;
    }
    while (!stop_ && !due.empty() && calls[due.front()].issued + reissue_after_ <= absl::Now()) {
      issue(due.front());
      due.pop_front();
      ++in_flight;
    }
  }
  queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) {
  }
}

}  // namespace tessera::e2e
