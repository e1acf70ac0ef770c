#include "tests/e2e/doc_runner.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/status.h"
#include "tests/e2e/federation.h"

namespace tessera::e2e {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kReadyTimeout = absl::Seconds(60);
constexpr absl::Duration kStopTimeout = absl::Seconds(30);

// "```sh" -> "sh"; nullopt for a line that is not a fence.
std::optional<std::string> FenceInfo(const std::string& line) {
  absl::string_view s = absl::StripLeadingAsciiWhitespace(line);
  if (!absl::ConsumePrefix(&s, "```")) return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(s));
}

// Replaces every match of `re` in `text` by `replace(match)`, in one pass (a replacement
// is never matched again).
template <typename F>
std::string ReplaceEach(const std::string& text, const std::regex& re, F replace) {
  std::string out;
  auto last = text.cbegin();
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
    out.append(last, (*it)[0].first);
    out += replace(*it);
    last = (*it)[0].second;
  }
  out.append(last, text.cend());
  return out;
}

// Why a documented command is not run on a test machine; nullopt if it is run.
std::optional<std::string> NotRunReason(const std::string& command) {
  const std::vector<std::string> w = Words(command);
  if (w.size() >= 2 && w[0] == "bash" && w[1] == "deploy/install-deps.sh") {
    return "installs Debian packages as root (apt-get); CI runs it in deploy/test.sh";
  }
  if (!w.empty() && (w[0] == "cmake" || w[0] == "ninja")) {
    return "builds the programs; the test runs the ones CMake built for it";
  }
  return std::nullopt;
}

}  // namespace

std::string FencedBlock::Text() const {
  std::string text;
  for (const auto& [n, line] : lines) absl::StrAppend(&text, line, "\n");
  return text;
}

bool FencedBlock::IsShell() const { return info == "sh" || info == "bash" || info == "shell"; }

absl::StatusOr<std::vector<FencedBlock>> ReadFencedBlocks(const std::string& path,
                                                          const std::string& name) {
  ASSIGN_OR_RETURN(std::string contents, common::ReadFile(path));
  std::vector<FencedBlock> blocks;
  std::optional<FencedBlock> open;
  std::string last_prose;
  int n = 0;
  for (absl::string_view raw : absl::StrSplit(contents, '\n')) {
    ++n;
    std::string line(raw);
    std::optional<std::string> fence = FenceInfo(line);
    if (open.has_value()) {
      if (fence.has_value() && fence->empty()) {
        blocks.push_back(std::move(*open));
        open.reset();
        last_prose.clear();
      } else {
        open->lines.emplace_back(n, line);
      }
    } else if (fence.has_value()) {
      open = FencedBlock{name, n, *fence, last_prose, {}};
    } else if (!absl::StripAsciiWhitespace(line).empty()) {
      last_prose = line;
    }
  }
  if (open.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":", open->line, ": a ``` fence that is never closed"));
  }
  return blocks;
}

const FencedBlock* FindFileBlock(const std::vector<FencedBlock>& blocks,
                                 const std::string& file_name) {
  for (const FencedBlock& b : blocks) {
    if (absl::StartsWith(b.intro, absl::StrCat("`", file_name, "`"))) return &b;
  }
  return nullptr;
}

std::vector<DocCommand> ShellCommands(const FencedBlock& block) {
  std::vector<DocCommand> commands;
  std::optional<DocCommand> pending;
  for (const auto& [n, raw] : block.lines) {
    std::string line = raw;
    const bool continued = absl::EndsWith(absl::StripTrailingAsciiWhitespace(line), "\\");
    if (continued) {
      line = std::string(absl::StripTrailingAsciiWhitespace(line));
      line.pop_back();
    }
    if (pending.has_value()) {
      absl::StrAppend(&pending->text, " ", absl::StripAsciiWhitespace(line));
    } else {
      absl::string_view s = absl::StripAsciiWhitespace(line);
      if (s.empty() || absl::StartsWith(s, "#")) continue;
      pending = DocCommand{n, std::string(s)};
    }
    if (!continued) {
      commands.push_back(std::move(*pending));
      pending.reset();
    }
  }
  if (pending.has_value()) commands.push_back(std::move(*pending));
  return commands;
}

std::vector<DocCommand> ShellCommands(const std::vector<FencedBlock>& blocks) {
  std::vector<DocCommand> commands;
  for (const FencedBlock& b : blocks) {
    if (!b.IsShell()) continue;
    for (DocCommand& c : ShellCommands(b)) commands.push_back(std::move(c));
  }
  return commands;
}

std::vector<std::string> Words(const std::string& command) {
  std::vector<std::string> words;
  for (absl::string_view w : absl::StrSplit(command, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
    if (absl::StartsWith(w, "#")) break;
    words.emplace_back(w);
  }
  return words;
}

std::optional<std::string> FlagValue(const std::vector<std::string>& words,
                                     const std::string& flag) {
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i] == flag && i + 1 < words.size()) return words[i + 1];
    if (absl::StartsWith(words[i], flag + "=")) return words[i].substr(flag.size() + 1);
  }
  return std::nullopt;
}

std::string MapMachinePaths(const std::string& text, const std::string& root) {
  static const std::regex kMachinePath(
      R"re((^|[\s"'=,:])(/(?:etc|var/lib|run|root|data)(?=[/\s"']|$)))re");
  return ReplaceEach(text, kMachinePath, [&](const std::smatch& m) {
    return absl::StrCat(m[1].str(), root, m[2].str());
  });
}

std::string MapBuildDir(const std::string& text, const std::string& build_dir) {
  static const std::regex kBuildDir(R"re((^|[\s"'=:])(?:\$PWD/)?build/)re");
  return ReplaceEach(text, kBuildDir, [&](const std::smatch& m) {
    return absl::StrCat(m[1].str(), build_dir, "/");
  });
}

absl::StatusOr<std::string> MapExampleHosts(const std::string& text, const std::string& address) {
  static const std::regex kExampleHost(
      R"re(\b(?:[A-Za-z0-9-]+\.)*example\.(?:org|com|net)(:[0-9]+)?\b)re");
  bool needs_address = false;
  std::string out = ReplaceEach(text, kExampleHost, [&](const std::smatch& m) -> std::string {
    if (!m[1].matched) return "127.0.0.1";
    needs_address = true;
    return address;
  });
  if (needs_address && address.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' names the coordinator's address before it was started"));
  }
  return out;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

absl::StatusOr<std::unique_ptr<ShellSession>> ShellSession::Create(
    const std::string& state_dir, const std::map<std::string, std::string>& exports,
    const std::vector<std::string>& unset) {
  RETURN_IF_ERROR(common::MakeDirectories(state_dir, 0700));
  std::string state;
  for (const std::string& name : unset) absl::StrAppend(&state, "unset ", name, "\n");
  for (const auto& [name, value] : exports) {
    absl::StrAppend(&state, "export ", name, "=", ShellQuote(value), "\n");
  }
  const std::string path = state_dir + "/exported.sh";
  RETURN_IF_ERROR(common::WriteFileAtomic(path, state));
  return std::unique_ptr<ShellSession>(new ShellSession(path));
}

std::string ShellSession::Prologue(const std::string& cwd) const {
  return absl::StrCat("source ", ShellQuote(state_path_), " || exit 97\ncd ", ShellQuote(cwd),
                      " || exit 97\n");
}

absl::StatusOr<CommandResult> ShellSession::Run(const std::string& command, const std::string& cwd,
                                                absl::Duration timeout) {
  // The command's own line, then its exit code saved and the exported variables written
  // back for the next command (export -p prints them as `declare -x NAME="value"`).
  const std::string tmp = state_path_ + ".new";
  const std::string script = absl::StrCat(Prologue(cwd), command, "\n__tessera_rc=$?\nexport -p > ",
                                          ShellQuote(tmp), " && mv -f ", ShellQuote(tmp), " ",
                                          ShellQuote(state_path_), "\nexit $__tessera_rc\n");
  return RunCommand({"/bin/bash", "--noprofile", "--norc", "-o", "pipefail", "-c", script},
                    timeout);
}

absl::StatusOr<std::unique_ptr<Process>> ShellSession::Start(const std::string& command,
                                                             const std::string& cwd,
                                                             const std::string& log_path) {
  return Process::Start(
      {"/bin/bash", "--noprofile", "--norc", "-c", absl::StrCat(Prologue(cwd), "exec ", command)},
      log_path);
}

absl::StatusOr<std::string> ShellSession::Variable(const std::string& name) {
  ASSIGN_OR_RETURN(CommandResult r,
                   RunCommand({"/bin/bash", "--noprofile", "--norc", "-c",
                               absl::StrCat(Prologue("/"), "printf '%s' \"${", name, "-}\"")}));
  if (!r.status.Succeeded()) {
    return absl::InternalError(absl::StrCat("cannot read $", name, ": ", r.err));
  }
  return r.out;
}

std::string BuildDir() { return fs::path(ConsoleBinary()).parent_path().parent_path().string(); }

bool NotRunHere(const FencedBlock& block, const DocCommand& command) {
  std::optional<std::string> why = NotRunReason(command.text);
  if (!why.has_value()) return false;
  std::fprintf(stderr, "%s:%d: not run (%s): %s\n", block.file.c_str(), command.line, why->c_str(),
               command.text.c_str());
  return true;
}

std::string Where::ToString() const {
  return absl::StrCat(block->file, ":", line, " (the ```", block->info, " block at line ",
                      block->line, ")", site.empty() ? "" : absl::StrCat(", for site ", site),
                      "\n  as written: ", as_written, "\n");
}

void Trace(const Where& where, const std::string& ran) {
  std::fprintf(stderr, "%s:%d%s: %s\n", where.block->file.c_str(), where.line,
               where.site.empty() ? "" : absl::StrCat(" [", where.site, "]").c_str(), ran.c_str());
}

absl::Status Failed(const Where& where, const std::string& ran, const std::string& cwd,
                    const CommandResult& result, const std::string& why) {
  return absl::InternalError(absl::StrCat(where.ToString(), "  ran:        ", ran,
                                          "\n  in:         ", cwd, "\n  ", why,
                                          "\n--- stdout (last 40 lines):\n", Tail(result.out, 40),
                                          "\n--- stderr (last 40 lines):\n", Tail(result.err, 40)));
}

std::vector<std::string> QueryFiles(const std::vector<FencedBlock>& blocks) {
  std::vector<std::string> files;
  for (const DocCommand& c : ShellCommands(blocks)) {
    std::vector<std::string> w = Words(c.text);
    if (w.size() >= 3 && w[0] == "tessera" && w[1] == "query") files.push_back(w[2]);
  }
  return files;
}

absl::StatusOr<std::string> DatasetStem(const std::string& id) {
  static const auto* kStems =
      new std::map<std::string, std::string>{{"breast_cancer", "breast_cancer_wisconsin"},
                                             {"diabetes", "diabetes_progression"},
                                             {"digits", "digits"},
                                             {"rotterdam", "rotterdam_survival"},
                                             {"smoking_nhis", "smoking_nhis"}};
  auto it = kStems->find(id);
  if (it == kStems->end()) {
    return absl::NotFoundError(absl::StrCat("dataset '", id, "': no CSV in deploy/data is known"));
  }
  return it->second;
}

absl::Status LinkDeploy(const std::string& dir) {
  std::error_code ec;
  fs::create_directory_symlink(SourcePath("deploy"), dir + "/deploy", ec);
  if (ec) return absl::InternalError("cannot link deploy/: " + ec.message());
  return absl::OkStatus();
}

Daemon& DocDaemons::Add(const std::string& label, const std::string& command,
                        const std::string& cwd, const std::string& ready_file) {
  daemons_.push_back(std::make_unique<Daemon>(Daemon{label, command, cwd, ready_file, nullptr}));
  return *daemons_.back();
}

absl::StatusOr<std::string> DocDaemons::Start(ShellSession& session, Daemon& d) {
  if (std::remove(d.ready_file.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError("cannot remove " + d.ready_file);
  }
  const std::string log = absl::StrCat(log_dir_, "/", d.label, ".log");
  RETURN_IF_ERROR(common::MakeDirectories(log_dir_, 0755));
  ASSIGN_OR_RETURN(d.process, session.Start(d.command, d.cwd, log));
  return WaitForFile(d.ready_file, *d.process, kReadyTimeout);
}

absl::Status DocDaemons::Stop(Daemon& d) {
  if (d.process == nullptr || !d.process->Running()) {
    return absl::FailedPreconditionError(d.label + " is not running");
  }
  RETURN_IF_ERROR(d.process->Kill(SIGTERM));
  ASSIGN_OR_RETURN(ExitStatus how, d.process->Wait(kStopTimeout));
  if (!how.Succeeded()) {
    return absl::InternalError(
        absl::StrCat(d.label, " stopped with ", how.ToString(), "\n", d.process->LogTail()));
  }
  return absl::OkStatus();
}

std::vector<std::string> DocDaemons::StopAll() {
  std::vector<std::string> failures;
  for (Daemon* d : StopOrder()) {
    if (d->process == nullptr || !d->process->Running()) continue;
    ExitStatus how = d->process->Terminate(kStopTimeout);
    if (!how.Succeeded()) {
      failures.push_back(absl::StrCat(d->label, " did not stop cleanly on SIGTERM: ",
                                      how.ToString(), "\n", d->process->LogTail(30)));
    }
  }
  return failures;
}

void DocDaemons::PrintLogs() const {
  for (Daemon* d : StopOrder()) {
    if (d->process == nullptr) continue;
    std::fprintf(stderr, "---- %s (%s): last lines of %s\n%s\n", d->label.c_str(),
                 d->command.c_str(), d->process->log_path().c_str(),
                 d->process->LogTail(30).c_str());
  }
}

std::vector<Daemon*> DocDaemons::StopOrder() const {
  std::vector<Daemon*> order;
  for (const auto& d : daemons_) {
    if (d->label != "coordinator") order.push_back(d.get());
  }
  for (const auto& d : daemons_) {
    if (d->label == "coordinator") order.push_back(d.get());
  }
  return order;
}

absl::StatusOr<std::vector<SiteShare>> SplitDataset(const std::string& stem, int sites) {
  if (sites < 1) return absl::InvalidArgumentError("no sites");
  const std::string csv_path = SourcePath(absl::StrCat("deploy/data/", stem, ".csv"));
  ASSIGN_OR_RETURN(std::string csv, common::ReadFile(csv_path));
  std::set<int> test_rows;
  const std::string split_path =
      SourcePath(absl::StrCat("deploy/data/splits/", stem, ".test_rows.txt"));
  if (common::PathExists(split_path)) {
    ASSIGN_OR_RETURN(std::string split, common::ReadFile(split_path));
    for (absl::string_view line : absl::StrSplit(split, '\n', absl::SkipWhitespace())) {
      int row;
      if (!absl::SimpleAtoi(line, &row)) {
        return absl::InvalidArgumentError(absl::StrCat(split_path, ": '", line, "' is no row"));
      }
      test_rows.insert(row);
    }
  }
  std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipWhitespace());
  if (lines.size() < 2) return absl::InvalidArgumentError(csv_path + " has no rows");
  const std::string header = lines[0] + "\n";
  std::vector<SiteShare> shares(sites, SiteShare{header, header, header});
  size_t n_train = 0;
  size_t n_test = 0;
  for (size_t row = 0; row + 1 < lines.size(); ++row) {
    const std::string line = lines[row + 1] + "\n";
    if (test_rows.contains(static_cast<int>(row))) {
      SiteShare& s = shares[n_test++ % sites];
      s.test += line;
      s.all += line;
    } else {
      SiteShare& s = shares[n_train++ % sites];
      s.train += line;
      s.all += line;
    }
  }
  return shares;
}

}  // namespace tessera::e2e
