// A small command-line parser for the daemons and the console: `--name=value`,
// `--name value`, boolean `--name` / `--name=false`, `--` ends flags, `-h`/`--help`.
// Unknown flags, missing values and malformed numbers are errors that name the flag.
//
// Not thread-safe; used once in main().
#ifndef TESSERA_COMMON_FLAGS_H_
#define TESSERA_COMMON_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::common {

class FlagParser {
 public:
  // `usage` is the synopsis line ("tessera tasks submit [flags] FILE"); `summary` one or
  // two sentences on what the command does.
  FlagParser(std::string usage, std::string summary);

  // Registers a flag bound to `*target`, which keeps its current value as the default.
  // `name` without dashes.
  void AddString(const std::string& name, std::string* target, const std::string& help);
  void AddUint(const std::string& name, uint64_t* target, const std::string& help);
  void AddBool(const std::string& name, bool* target, const std::string& help);

  // Marks a registered flag as required; Parse fails if it is not given.
  void Require(const std::string& name);

  // Parses `args` (without the program and sub-command words). Returns the positional
  // arguments. INVALID_ARGUMENT naming the flag on errors. If help was asked for,
  // returns OK with help_requested() true and does not check required flags.
  absl::StatusOr<std::vector<std::string>> Parse(const std::vector<std::string>& args);

  bool help_requested() const { return help_requested_; }

  // Multi-line help: usage, summary, flags with their help and defaults.
  std::string Help() const;

 private:
  enum class Kind { kString, kUint, kBool };
  struct Flag {
    std::string name;
    Kind kind;
    void* target;
    std::string help;
    std::string default_text;
    bool required = false;
    bool seen = false;
  };
  Flag* Find(const std::string& name);

  std::string usage_;
  std::string summary_;
  std::vector<Flag> flags_;
  bool help_requested_ = false;
};

}  // namespace tessera::common

#endif  // TESSERA_COMMON_FLAGS_H_
