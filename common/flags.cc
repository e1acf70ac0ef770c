#include "common/flags.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tessera::common {

FlagParser::FlagParser(std::string usage, std::string summary)
    : usage_(std::move(usage)), summary_(std::move(summary)) {}

void FlagParser::AddString(const std::string& name, std::string* target, const std::string& help) {
  flags_.push_back({name, Kind::kString, target, help, *target});
}

void FlagParser::AddUint(const std::string& name, uint64_t* target, const std::string& help) {
  flags_.push_back({name, Kind::kUint, target, help, absl::StrCat(*target)});
}

void FlagParser::AddBool(const std::string& name, bool* target, const std::string& help) {
  flags_.push_back({name, Kind::kBool, target, help, *target ? "true" : "false"});
}

void FlagParser::Require(const std::string& name) {
  if (Flag* f = Find(name)) f->required = true;
}

FlagParser::Flag* FlagParser::Find(const std::string& name) {
  for (Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

absl::StatusOr<std::vector<std::string>> FlagParser::Parse(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      help_requested_ = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string name = body;
    std::string value;
    bool has_value = false;
    size_t eq = body.find('=');
    if (eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (flag->kind == Kind::kBool) {
      bool* b = static_cast<bool*>(flag->target);
      if (!has_value || value == "true" || value == "1" || value == "yes") {
        *b = true;
      } else if (value == "false" || value == "0" || value == "no") {
        *b = false;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " takes true or false, not '", value, "'"));
      }
      flag->seen = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
      value = args[++i];
    }
    if (flag->kind == Kind::kString) {
      *static_cast<std::string*>(flag->target) = value;
    } else {
      uint64_t v = 0;
      if (!absl::SimpleAtoi(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " takes a non-negative integer, not '", value, "'"));
      }
      *static_cast<uint64_t*>(flag->target) = v;
    }
    flag->seen = true;
  }
  if (!help_requested_) {
    for (const Flag& f : flags_) {
      if (f.required && !f.seen) {
        return absl::InvalidArgumentError(
            absl::StrCat("missing required flag --", f.name, " (see --help)"));
      }
    }
  }
  return positional;
}

std::string FlagParser::Help() const {
  std::string out = absl::StrCat("usage: ", usage_, "\n\n", summary_, "\n");
  if (!flags_.empty()) out += "\nflags:\n";
  for (const Flag& f : flags_) {
    std::string left = absl::StrCat("  --", f.name);
    if (f.kind == Kind::kString) left += "=STRING";
    if (f.kind == Kind::kUint) left += "=N";
    std::string line = left;
    line.append(left.size() < 28 ? 28 - left.size() : 1, ' ');
    line += f.help;
    if (f.required) {
      line += " (required)";
    } else if (!f.default_text.empty() && f.kind != Kind::kBool) {
      line += absl::StrCat(" (default: ", f.default_text, ")");
    }
    out += line + "\n";
  }
  out += "  -h, --help                show this help\n";
  return out;
}

}  // namespace tessera::common
