#include "coordinator/internal/upload_call.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "crypto/tls.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "proto/grpc_status.h"
#include "proto/transfer.h"

namespace tessera::coordinator::internal {
namespace {

// The call, from the site's first chunk to its answer. What the gate's callbacks, gRPC's
// callbacks and the worker share lives in State; the reactor is touched only while the
// call is not finished (gRPC deletes it in OnDone, which comes only after Finish).
class UploadCall final : public grpc::ServerReadReactor<v1::PushResultChunk> {
 public:
  UploadCall(const Uploads* uploads, std::string site, CallLimiter::PullSlot slot,
             uint64_t declared_bytes)
      : state_(std::make_shared<State>(uploads, this, std::move(site), std::move(slot))) {
    state_->declared = declared_bytes;
    const uint64_t ticket = uploads->gate->Acquire(
        state_->site, declared_bytes,
        [state = state_](uint64_t ticket) { Admitted(state, ticket); },
        [state = state_](absl::Duration read_for, uint64_t received) {
          Overstayed(state, read_for, received);
        });
    absl::MutexLock lock(&state_->mu);
    state_->ticket = ticket;
  }

  void OnReadDone(bool ok) override {
    State& s = *state_;
    if (!ok) return Assembled(state_);
    if (s.first) {
      s.first = false;
      s.total = s.chunk.total_bytes();
      s.announced = s.total;
      // The cap, or the largest answer the site's open work expects if that is more.
      uint64_t most = s.uploads->max_bytes;
      const char* bound = "max_message_bytes";
      if (s.uploads->largest_answer) {
        const uint64_t expected =
            std::min<uint64_t>(s.uploads->largest_answer(s.site), crypto::kMaxMessageBytes);
        if (expected > most) {
          most = expected;
          bound = "the largest answer this site's open work expects";
        }
      }
      if (s.declared != 0 && s.total != s.declared) {
        return End(state_,
                   grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                absl::StrCat("an upload announced ", s.total, " bytes, not the ",
                                             s.declared, " its call declared (",
                                             proto::kDeclaredUploadBytesMetadata, ")")));
      }
      if (s.total == 0 || s.total > most) {
        return End(state_, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                        absl::StrCat("an upload announced ", s.total,
                                                     " bytes (1 to ", most, ", ", bound, ")")));
      }
      // Grown as bytes arrive, never reserved on the site's word: an announcement alone
      // must not make the coordinator allocate.
      s.bytes.reserve(std::min<uint64_t>(s.total, s.chunk.data().size()));
    }
    if (s.bytes.size() + s.chunk.data().size() > s.total) {
      return End(state_, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                      absl::StrCat("the upload's chunks pass the ", s.total,
                                                   " bytes it announced")));
    }
    s.bytes += s.chunk.data();
    const uint64_t received = s.chunk.data().size();
    s.chunk.Clear();
    absl::MutexLock lock(&s.mu);
    if (s.finished) return;  // ended meanwhile (overstayed): read no more
    s.uploads->gate->Received(s.ticket, received);
    StartRead(&s.chunk);
  }

  void OnCancel() override {
    bool withdrawn = false;
    {
      absl::MutexLock lock(&state_->mu);
      state_->cancelled = true;
      if (!state_->admitted) withdrawn = state_->uploads->gate->Withdraw(state_->ticket);
    }
    // Still waiting at the gate: it ends here. Otherwise its read or its worker ends it.
    if (withdrawn) End(state_, grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled"));
  }

  void OnDone() override { delete this; }

 private:
  struct State {
    State(const Uploads* uploads, UploadCall* reactor, std::string site, CallLimiter::PullSlot slot)
        : uploads(uploads), reactor(reactor), site(std::move(site)), slot(std::move(slot)) {}
    const Uploads* const uploads;
    UploadCall* const reactor;  // valid until OnDone, which comes only after Finish
    const std::string site;
    std::optional<CallLimiter::PullSlot> slot;  // released at Finish
    absl::Mutex mu;
    uint64_t ticket ABSL_GUARDED_BY(mu) = 0;
    bool admitted ABSL_GUARDED_BY(mu) = false;  // holds a place at the gate
    bool cancelled ABSL_GUARDED_BY(mu) = false;
    bool assembled ABSL_GUARDED_BY(mu) = false;  // read whole: no longer the site's time
    bool finished ABSL_GUARDED_BY(mu) = false;
    std::atomic<uint64_t> announced{0};  // total, for a refusal's message
    // The reads' own (gRPC runs one reactor callback at a time, and the worker only after
    // the last read).
    v1::PushResultChunk chunk;
    std::string bytes;
    uint64_t total = 0;
    uint64_t declared = 0;  // set before the first read
    bool first = true;
  };

  // The gate's callback: a place is this call's.
  static void Admitted(const std::shared_ptr<State>& state, uint64_t ticket) {
    bool cancelled = false;
    {
      absl::MutexLock lock(&state->mu);
      state->ticket = ticket;  // perhaps before the constructor stores it
      state->admitted = true;
      cancelled = state->cancelled;
      if (!cancelled && !state->finished) {
        // The site's go-ahead (upload_call.h); Finish then sends only the status.
        state->reactor->StartSendInitialMetadata();
        state->reactor->StartRead(&state->chunk);
      }
    }
    if (cancelled) End(state, grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled"));
  }

  // The gate's watcher: the site took too long. Refused unless its bytes are all in (what
  // follows, parsing and adding, is the coordinator's time).
  static void Overstayed(const std::shared_ptr<State>& state, absl::Duration read_for,
                         uint64_t received) {
    const UploadGate& gate = *state->uploads->gate;
    common::LogWarning("upload_too_slow")
        .With("client", state->site)
        .With("received_bytes", received)
        .With("announced_bytes", state->announced.load())
        .With("ms", absl::ToInt64Milliseconds(read_for));
    End(state,
        grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                     absl::StrFormat(
                         "the upload sent %d of the %d bytes it announced in %.1f s, slower "
                         "than the coordinator reads an upload: %d s "
                         "(upload_timeout_seconds) plus its bytes at %d KiB/s "
                         "(min_upload_kib_per_second)",
                         received, state->announced.load(), absl::ToDoubleSeconds(read_for),
                         absl::ToInt64Seconds(gate.timeout()), gate.min_bytes_per_second() >> 10)),
        /*unless_assembled=*/true);
  }

  // The site ended its stream (or the call broke): a whole answer goes to the coordinator.
  static void Assembled(const std::shared_ptr<State>& state) {
    {
      absl::MutexLock lock(&state->mu);
      if (state->finished) return;
      state->assembled = true;
    }
    if (state->total == 0 || state->bytes.size() != state->total) {
      return End(state,
                 grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              absl::StrCat("the upload ended after ", state->bytes.size(),
                                           " of the ", state->total, " bytes it announced")));
    }
    state->uploads->workers->Schedule([state] {
      absl::StatusOr<v1::PushResultRequest> request =
          ParseUploadedAnswer(std::exchange(state->bytes, std::string()));
      if (!request.ok()) return End(state, proto::ToGrpcStatus(request.status()));
      End(state, proto::ToGrpcStatus(state->uploads->push(state->site, *request)));
    });
  }

  // The call's one answer; frees its place at the gate. With `unless_assembled`, nothing
  // happens if the site's bytes are all in.
  static void End(const std::shared_ptr<State>& state, const grpc::Status& status,
                  bool unless_assembled = false) {
    uint64_t release = 0;
    {
      absl::MutexLock lock(&state->mu);
      if (state->finished || (unless_assembled && state->assembled)) return;
      state->finished = true;
      if (state->admitted) release = state->ticket;
    }
    state->slot.reset();
    if (release != 0) state->uploads->gate->Release(release);
    state->reactor->Finish(status);
  }

  std::shared_ptr<State> state_;
};

}  // namespace

namespace {

// Where a length-delimited field lies in a message's bytes: its tag at `field`, its
// payload in [begin, end).
struct FieldRange {
  size_t field = 0;
  size_t begin = 0;
  size_t end = 0;
};

// The one length-delimited field `number` of the message `bytes`, if the message holds it
// exactly once and nothing else but length-delimited fields `other` (0: none); otherwise
// nullopt (the caller then parses the usual way). Offsets are within `bytes`.
std::optional<FieldRange> SoleField(std::string_view bytes, uint32_t number, uint32_t other) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(bytes.data()),
                                               static_cast<int>(bytes.size()));
  std::optional<FieldRange> found;
  while (true) {
    const size_t field = static_cast<size_t>(input.CurrentPosition());
    const uint32_t tag = input.ReadTag();
    if (tag == 0) break;
    const uint32_t field_number = WireFormatLite::GetTagFieldNumber(tag);
    uint32_t length = 0;
    if (WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_LENGTH_DELIMITED ||
        field_number == 0 || (field_number != number && field_number != other) ||
        !input.ReadVarint32(&length)) {
      return std::nullopt;
    }
    const size_t begin = static_cast<size_t>(input.CurrentPosition());
    if (!input.Skip(static_cast<int>(length))) return std::nullopt;
    if (field_number == number) {
      if (found.has_value()) return std::nullopt;
      found = FieldRange{field, begin, begin + length};
    }
  }
  if (static_cast<size_t>(input.CurrentPosition()) != bytes.size()) return std::nullopt;
  return found;
}

// The range of a masked input's words in an answer's bytes, if the answer is a work id and
// a masked input and nothing else (how a site sends one); `secagg` is the answer's
// SecAggClientMessage field.
std::optional<FieldRange> MaskedInputWords(std::string_view bytes, FieldRange* secagg) {
  const std::optional<FieldRange> message = SoleField(
      bytes, v1::PushResultRequest::kSecaggFieldNumber, v1::PushResultRequest::kWorkIdFieldNumber);
  if (!message.has_value()) return std::nullopt;
  const std::string_view message_bytes =
      bytes.substr(message->begin, message->end - message->begin);
  const std::optional<FieldRange> response =
      SoleField(message_bytes, v1::SecAggClientMessage::kMaskedInputFieldNumber, 0);
  if (!response.has_value()) return std::nullopt;
  const std::optional<FieldRange> words =
      SoleField(message_bytes.substr(response->begin, response->end - response->begin),
                v1::MaskedInputResponse::kMaskedInputFieldNumber, 0);
  if (!words.has_value()) return std::nullopt;
  *secagg = *message;
  const size_t offset = message->begin + response->begin;
  return FieldRange{offset + words->field, offset + words->begin, offset + words->end};
}

}  // namespace

absl::StatusOr<v1::PushResultRequest> ParseUploadedAnswer(std::string bytes) {
  v1::PushResultRequest request;
  FieldRange secagg;
  const std::optional<FieldRange> words = MaskedInputWords(bytes, &secagg);
  if (!words.has_value()) {
    if (!request.ParseFromString(bytes)) {
      return absl::InvalidArgumentError("the uploaded answer does not parse");
    }
    return request;
  }
  // The answer without its SecAggClientMessage (the work id), then the words in place.
  const std::string rest = bytes.substr(0, secagg.field) + bytes.substr(secagg.end);
  if (!request.ParseFromString(rest)) {
    return absl::InvalidArgumentError("the uploaded answer does not parse");
  }
  bytes.erase(0, words->begin);
  bytes.resize(words->end - words->begin);
  request.mutable_secagg()->mutable_masked_input()->set_masked_input(std::move(bytes));
  return request;
}

absl::StatusOr<uint64_t> DeclaredUploadBytes(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  const auto it = metadata.find(proto::kDeclaredUploadBytesMetadata);
  if (it == metadata.end()) return 0;
  uint64_t bytes = 0;
  if (!absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &bytes) ||
      bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat("the call's ",
                                                   proto::kDeclaredUploadBytesMetadata,
                                                   " metadata is not a size of 1 byte or more"));
  }
  return bytes;
}

grpc::ServerReadReactor<v1::PushResultChunk>* StartUpload(const Uploads* uploads, std::string site,
                                                          CallLimiter::PullSlot slot,
                                                          uint64_t declared_bytes) {
  // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): gRPC reactors delete themselves (OnDone).
  return new UploadCall(uploads, std::move(site), std::move(slot), declared_bytes);
}

}  // namespace tessera::coordinator::internal
