// Loading config and task files (protobuf text format, or JSON for *.json) with errors
// that say where: "task.textproto:12:5: ..." for syntax errors and unknown fields, and
// "task.textproto:12: training.learning_rate: must be > 0" for validation errors.
//
// Heavy protobuf headers stay in the .cc; Message is only forward-declared here.
#ifndef TESSERA_COMMON_PROTO_TEXT_H_
#define TESSERA_COMMON_PROTO_TEXT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace tessera::common {

// One validation error. `path` names the field from the root message, with repeated
// indices in brackets: "training.learning_rate", "dataset.features[3]".
struct FieldError {
  std::string path;
  std::string message;
};

// Where each field of a parsed text file was written. Move-only.
class TextLocations {
 public:
  TextLocations();
  ~TextLocations();
  TextLocations(TextLocations&&) noexcept;
  TextLocations& operator=(TextLocations&&) noexcept;

  // 1-based line of the field at `path` in the file; if that field was not written, the
  // line of its nearest written ancestor; 0 if none (or the file was JSON).
  int LineOf(const std::string& path) const;

 private:
  friend absl::Status ParseTextProto(const std::string&, const std::string&,
                                     google::protobuf::Message*, TextLocations*);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses `text` (text format) into `message`, which is cleared first. INVALID_ARGUMENT
// "source:line:column: reason" on the first syntax error or unknown field. `locations`
// may be null.
absl::Status ParseTextProto(const std::string& text, const std::string& source_name,
                            google::protobuf::Message* message, TextLocations* locations);

// Reads `path` and parses it: JSON if it ends in ".json", text format otherwise.
// NOT_FOUND / PERMISSION_DENIED for unreadable files, INVALID_ARGUMENT for bad contents.
absl::Status LoadProtoFile(const std::string& path, google::protobuf::Message* message,
                           TextLocations* locations = nullptr);

// OK if `errors` is empty, else one INVALID_ARGUMENT listing every error, each as
// "source:line: path: message" (source and line when known), joined by "; ".
absl::Status FieldErrorsToStatus(const std::vector<FieldError>& errors,
                                 const std::string& source_name = "",
                                 const TextLocations* locations = nullptr);

// Text-format rendering of `message` (for `--json`-less human output and for tests).
std::string ToTextProto(const google::protobuf::Message& message);

// JSON rendering (proto3 JSON mapping, field names as in the .proto files).
std::string ToJson(const google::protobuf::Message& message, bool pretty = true);

}  // namespace tessera::common

#endif  // TESSERA_COMMON_PROTO_TEXT_H_
