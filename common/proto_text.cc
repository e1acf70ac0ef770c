#include "common/proto_text.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace tessera::common {

namespace pb = google::protobuf;

struct TextLocations::Impl {
  const pb::Descriptor* root = nullptr;
  pb::TextFormat::ParseInfoTree tree;
};

TextLocations::TextLocations() = default;
TextLocations::~TextLocations() = default;
TextLocations::TextLocations(TextLocations&&) noexcept = default;
TextLocations& TextLocations::operator=(TextLocations&&) noexcept = default;

int TextLocations::LineOf(const std::string& path) const {
  if (impl_ == nullptr || impl_->root == nullptr || path.empty()) return 0;
  const pb::Descriptor* desc = impl_->root;
  const pb::TextFormat::ParseInfoTree* tree = &impl_->tree;
  int best = 0;
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string name = parts[i];
    int index = -1;
    size_t bracket = name.find('[');
    if (bracket != std::string::npos && name.back() == ']') {
      if (!absl::SimpleAtoi(name.substr(bracket + 1, name.size() - bracket - 2), &index)) {
        return best;
      }
      name = name.substr(0, bracket);
    }
    if (desc == nullptr) return best;
    const pb::FieldDescriptor* field = desc->FindFieldByName(name);
    if (field == nullptr) return best;
    // ParseInfoTree wants index -1 for singular fields and the element index for
    // repeated ones; a path naming a whole repeated field points at its first element.
    int lookup_index = field->is_repeated() ? (index < 0 ? 0 : index) : -1;
    pb::TextFormat::ParseLocation loc = tree->GetLocation(field, lookup_index);
    if (loc.line < 0) return best;
    best = loc.line + 1;
    if (i + 1 == parts.size()) return best;
    if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) return best;
    tree = tree->GetTreeForNested(field, lookup_index);
    if (tree == nullptr) return best;
    desc = field->message_type();
  }
  return best;
}

namespace {

class FirstErrorCollector : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (!has_error_) {
      has_error_ = true;
      line_ = line;
      column_ = column;
      message_ = message;
    }
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}

  bool has_error_ = false;
  int line_ = 0;
  int column_ = 0;
  std::string message_;
};

}  // namespace

absl::Status ParseTextProto(const std::string& text, const std::string& source_name,
                            pb::Message* message, TextLocations* locations) {
  message->Clear();
  pb::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  auto impl = std::make_unique<TextLocations::Impl>();
  impl->root = message->GetDescriptor();
  parser.WriteLocationsTo(&impl->tree);
  if (!parser.ParseFromString(text, message)) {
    message->Clear();
    if (errors.has_error_) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ":", errors.line_ + 1, ":",
                                                     errors.column_ + 1, ": ", errors.message_));
    }
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": cannot parse"));
  }
  if (locations != nullptr) locations->impl_ = std::move(impl);
  return absl::OkStatus();
}

absl::Status LoadProtoFile(const std::string& path, pb::Message* message,
                           TextLocations* locations) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  if (absl::EndsWith(path, ".json")) {
    message->Clear();
    pb::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto status = pb::util::JsonStringToMessage(text, message, options);
    if (!status.ok()) {
      message->Clear();
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", std::string(status.message())));
    }
    return absl::OkStatus();
  }
  return ParseTextProto(text, path, message, locations);
}

absl::Status FieldErrorsToStatus(const std::vector<FieldError>& errors,
                                 const std::string& source_name, const TextLocations* locations) {
  if (errors.empty()) return absl::OkStatus();
  std::vector<std::string> parts;
  parts.reserve(errors.size());
  for (const FieldError& e : errors) {
    std::string where;
    if (!source_name.empty()) {
      int line = locations != nullptr ? locations->LineOf(e.path) : 0;
      where =
          line > 0 ? absl::StrCat(source_name, ":", line, ": ") : absl::StrCat(source_name, ": ");
    }
    parts.push_back(absl::StrCat(where, e.path, ": ", e.message));
  }
  return absl::InvalidArgumentError(absl::StrJoin(parts, "; "));
}

std::string ToTextProto(const pb::Message& message) {
  std::string out;
  pb::TextFormat::PrintToString(message, &out);
  return out;
}

std::string ToJson(const pb::Message& message, bool pretty) {
  std::string out;
  pb::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  auto status = pb::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return "{}";
  return out;
}

}  // namespace tessera::common
