#include "tests/e2e/operations_guide.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <regex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "proto/config_paths.h"
#include "proto/task.pb.h"
#include "tests/e2e/federation.h"

namespace tessera::e2e {
namespace {

namespace fs = std::filesystem;

}  // namespace

// --- Set-up --------------------------------------------------------------------------------

absl::Status OperationsGuideWalk::Run() {
  ASSIGN_OR_RETURN(blocks_,
                   ReadFencedBlocks(SourcePath("docs/operations.md"), "docs/operations.md"));
  RETURN_IF_ERROR(FindDocSite());
  RETURN_IF_ERROR(MakeMachines());
  RETURN_IF_ERROR(OpenSession());
  int shell_blocks = 0;
  for (const FencedBlock& block : blocks_) {
    if (!block.IsShell()) continue;
    ++shell_blocks;
    RETURN_IF_ERROR(RunBlock(block));
  }
  if (shell_blocks == 0) return absl::NotFoundError("docs/operations.md has no ```sh block");
  std::fprintf(stderr, "docs/operations.md: %d shell blocks, %d commands run\n", shell_blocks,
               commands_run_);
  return absl::OkStatus();
}

// A fresh machine root with what any Debian machine has (/etc, /root, /run, /var/lib),
// and work/, where its commands run.
absl::StatusOr<OperationsGuideWalk::Machine> OperationsGuideWalk::MakeMachine(
    const std::string& name, const std::string& root) {
  for (const char* dir : {"etc", "root", "run", "var/lib", "work"}) {
    RETURN_IF_ERROR(common::MakeDirectories(absl::StrCat(root, "/", dir), 0755));
  }
  return Machine{name, root, root + "/work"};
}

// The institution the guide shows; the federation needs kDocSites, made the same way.
absl::Status OperationsGuideWalk::FindDocSite() {
  for (const DocCommand& c : ShellCommands(blocks_)) {
    std::vector<std::string> w = Words(c.text);
    if (doc_site_.empty() && w.size() >= 2 && w[0] == "tessera-client" && w[1] == "keygen") {
      doc_site_ = FlagValue(w, "--name").value_or("");
    }
  }
  if (doc_site_.empty()) {
    return absl::NotFoundError("docs/operations.md shows no `tessera-client keygen --name ...`");
  }
  return absl::OkStatus();
}

absl::Status OperationsGuideWalk::MakeMachines() {
  std::vector<std::string> names = {doc_site_};
  for (const char* other : {"hospital-north", "hospital-south", "hospital-east", "hospital-west"}) {
    if (names.size() < kDocSites && other != doc_site_) names.push_back(other);
  }
  ASSIGN_OR_RETURN(host_, MakeMachine("coordinator host", temp_.File("host")));
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(Machine m, MakeMachine(name, temp_.File("sites/" + name)));
    sites_.push_back(m);
  }
  // The operator works in a clone of the repository (the guide's commands name
  // deploy/examples/...): here a folder with a link to the source tree's deploy/.
  RETURN_IF_ERROR(LinkDeploy(host_.cwd));
  for (const Machine& site : sites_) RETURN_IF_ERROR(LinkDeploy(site.cwd));
  return absl::OkStatus();
}

absl::Status OperationsGuideWalk::OpenSession() {
  const std::string home = host_.root + "/home/operator";
  RETURN_IF_ERROR(common::MakeDirectories(home, 0755));
  RETURN_IF_ERROR(common::MakeDirectories(temp_.File("tmp"), 0755));
  // No programs on PATH yet: the guide's first block puts them there.
  const char* path = std::getenv("PATH");
  ASSIGN_OR_RETURN(session_,
                   ShellSession::Create(temp_.File("shell"),
                                        {{"HOME", home},
                                         {"TMPDIR", temp_.File("tmp")},
                                         {"PATH", path != nullptr ? path : "/usr/bin:/bin"}},
                                        {"TESSERA_CONSOLE_CONFIG"}));
  return absl::OkStatus();
}

// --- Running -------------------------------------------------------------------------------

namespace {

// Whether a command runs at an institution: its program or its paths are the site's
// (tessera-client, /etc/tessera-client/...). An `scp` runs where its files are: on the
// institution when it sends the site's files, on the operator's machine when it sends
// certificates to the site.
bool OnInstitution(const std::string& command) {
  const std::vector<std::string> w = Words(command);
  if (w.size() >= 3 && w[0] == "scp") {
    return std::any_of(w.begin() + 1, w.end() - 1,
                       [](const std::string& f) { return absl::StrContains(f, "tessera-client"); });
  }
  return absl::StrContains(command, "tessera-client");
}

// The coordinator's data_dir in the guide's coordinator.textproto (section 3).
constexpr char kCoordinatorDataDir[] = "/var/lib/tessera";

}  // namespace

absl::Status OperationsGuideWalk::RunBlock(const FencedBlock& block) {
  std::set<int> stopped;  // sites whose daemon this block stopped
  for (const DocCommand& c : ShellCommands(block)) {
    if (NotRunHere(block, c)) continue;
    Where where{&block, c.line, c.text, ""};
    // An institution's own command (its program, its paths) runs on each institution's
    // machine; the operator's command for an institution (signing its CSR) runs once per
    // institution on the operator's.
    const bool institution = OnInstitution(c.text);
    if (!institution && !absl::StrContains(c.text, doc_site_)) {
      RETURN_IF_ERROR(StopCoordinatorForItsStore(where));
      RETURN_IF_ERROR(RunGuideCommand(where, c.text, host_, -1));
      continue;
    }
    RETURN_IF_ERROR(RunForEachSite(where, institution, stopped));
  }
  return RestartStopped(block, stopped);
}

// Section 7's restore: "stop the coordinator" before a line that touches its store (names
// its data_dir, or restores into it); the guide starts it again itself.
absl::Status OperationsGuideWalk::StopCoordinatorForItsStore(const Where& where) {
  const std::vector<std::string> w = Words(where.as_written);
  const bool touches_store =
      std::find(w.begin(), w.end(), "--restore-from") != w.end() ||
      std::any_of(w.begin(), w.end(), [](const std::string& word) {
        return word == kCoordinatorDataDir ||
               absl::StartsWith(word, absl::StrCat(kCoordinatorDataDir, "/"));
      });
  if (!touches_store || coordinator_daemon_ == nullptr ||
      !coordinator_daemon_->process->Running()) {
    return absl::OkStatus();
  }
  std::fprintf(stderr, "test [coordinator]: stopped (SIGTERM) for the store's line %d\n",
               where.line);
  return DocDaemons::Stop(*coordinator_daemon_);
}

// Runs `where.as_written` once per site, under the site's name; `institution`: on the site's
// machine (else on the operator's). Adds to `stopped` the sites whose daemon it stopped.
absl::Status OperationsGuideWalk::RunForEachSite(Where where, bool institution,
                                                 std::set<int>& stopped) {
  for (size_t i = 0; i < sites_.size(); ++i) {
    Machine& site = sites_[i];
    where.site = site.name;
    const std::string text = absl::StrReplaceAll(where.as_written, {{doc_site_, site.name}});
    // tar and mv on the site store: "with tessera-client stopped".
    if (institution && Words(text)[0] != "tessera-client" && site_daemons_.contains(site.name) &&
        site_daemons_[site.name]->process->Running()) {
      std::fprintf(stderr, "test [%s]: stopped (SIGTERM) for the site store's lines\n",
                   site.name.c_str());
      RETURN_IF_ERROR(DocDaemons::Stop(*site_daemons_[site.name]));
      stopped.insert(static_cast<int>(i));
    }
    RETURN_IF_ERROR(RunGuideCommand(where, text, institution ? site : host_, static_cast<int>(i)));
  }
  return absl::OkStatus();
}

// The guide goes on with the sites running: start the stopped daemons again, with the
// command the guide gave (on the restored store).
absl::Status OperationsGuideWalk::RestartStopped(const FencedBlock& block,
                                                 const std::set<int>& stopped) {
  for (int i : stopped) {
    Daemon& d = *site_daemons_[sites_[i].name];
    std::fprintf(stderr, "test [%s]: started again after the block at line %d: %s\n",
                 d.label.c_str(), block.line, d.command.c_str());
    absl::StatusOr<std::string> ready = daemons_.Start(*session_, d);
    if (!ready.ok()) {
      return absl::InternalError(
          absl::StrCat(block.file, ": the ```sh block at line ", block.line, " left ", d.label,
                       " unable to start again: ", ready.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status OperationsGuideWalk::RunGuideCommand(const Where& where, const std::string& as_written,
                                                  Machine& machine, int site) {
  ASSIGN_OR_RETURN(std::string command, RewriteCommand(where, as_written, machine));
  std::vector<std::string> w = Words(command);
  // A config file the guide shows as text is written from its block, for this machine.
  if (std::optional<std::string> config = FlagValue(w, "--config");
      config.has_value() && (w[0] == "tessera-coordinator" || w[0] == "tessera-client")) {
    RETURN_IF_ERROR(WriteGuideConfig(where, w[0], *config, machine, site));
  }
  RETURN_IF_ERROR(CheckTaskIds(where, w));
  RETURN_IF_ERROR(BeforeSiteDecision(where, w, machine));
  if (w.size() >= 3 && w[0] == "tessera" && w[1] == "tasks" && w[2] == "cancel") {
    ASSIGN_OR_RETURN(command, PrepareCancel(where, command));
    w = Words(command);
  }
  // A daemon: started in the background; ready when its ready file is written. (A restore
  // with --restore-from is a command: it exits.)
  const bool restore = std::find(w.begin(), w.end(), "--restore-from") != w.end();
  if ((w[0] == "tessera-coordinator" && !restore) ||
      (w.size() >= 2 && w[0] == "tessera-client" && w[1] == "run")) {
    return StartGuideDaemon(where, command, w, machine);
  }
  Trace(where, command);
  ASSIGN_OR_RETURN(CommandResult r, session_->Run(command, machine.cwd));
  ++commands_run_;
  if (!r.status.Succeeded()) return Failed(where, command, machine.cwd, r, r.status.ToString());
  return AfterGuideCommand(where, w, r, machine);
}

// `as_written` for `machine`: the build folder, the machine's paths, the hosts.
absl::StatusOr<std::string> OperationsGuideWalk::RewriteCommand(const Where& where,
                                                                const std::string& as_written,
                                                                const Machine& machine) const {
  if (absl::StartsWith(as_written, "scp ")) return RewriteCopy(where, as_written, machine);
  std::string command = MapMachinePaths(MapBuildDir(as_written, BuildDir()), machine.root);
  absl::StatusOr<std::string> hosts = MapExampleHosts(command, address_);
  if (!hosts.ok()) {
    return absl::FailedPreconditionError(where.ToString() + hosts.status().ToString());
  }
  return *hosts;
}

// `scp FILE... HOST:DIR/` as a copy between the machines' roots: the files from `machine`,
// the folder on the machine HOST names (an institution by its name, else the coordinator
// host's, which is also the CA's and the operator's workstation). `~` is the operator's
// home; the folder must exist, as scp wants.
absl::StatusOr<std::string> OperationsGuideWalk::RewriteCopy(const Where& where,
                                                             const std::string& as_written,
                                                             const Machine& machine) const {
  const std::vector<std::string> w = Words(as_written);
  const std::vector<std::string> to = absl::StrSplit(w.back(), absl::MaxSplits(':', 1));
  if (w.size() < 3 || to.size() != 2 || !absl::StrContains(to[0], ".example.")) {
    return absl::InvalidArgumentError(
        where.ToString() + "  an scp the walk understands is `scp FILE... HOST.example.org:DIR/`");
  }
  const Machine* target = &host_;
  for (const Machine& site : sites_) {
    if (absl::StartsWith(to[0], site.name + ".")) target = &site;
  }
  const std::string& dir = to[1];
  if (absl::StartsWith(dir, "~")) {
    if (target != &host_) {
      return absl::InvalidArgumentError(where.ToString() + "  `~` at an institution");
    }
  } else if (!fs::path(dir).is_absolute()) {
    return absl::InvalidArgumentError(where.ToString() + "  scp to a relative folder");
  }
  std::vector<std::string> files(w.begin() + 1, w.end() - 1);
  return absl::StrCat("cp ", MapMachinePaths(absl::StrJoin(files, " "), machine.root), " ",
                      MapMachinePaths(dir, target->root));
}

// Every task id a console command names must be one a submit printed.
absl::Status OperationsGuideWalk::CheckTaskIds(const Where& where,
                                               const std::vector<std::string>& w) const {
  static const std::regex kTaskId(R"(\btask-[0-9]+\b)");
  for (const std::string& word : w) {
    if (std::regex_match(word, kTaskId) && !task_ids_.contains(word)) {
      return absl::FailedPreconditionError(absl::StrCat(
          where.ToString(), "  names ", word, ", which no `tessera tasks submit` printed"));
    }
  }
  return absl::OkStatus();
}

absl::Status OperationsGuideWalk::StartGuideDaemon(const Where& where, const std::string& command,
                                                   const std::vector<std::string>& w,
                                                   const Machine& machine) {
  const bool coordinator = w[0] == "tessera-coordinator";
  const std::string config = machine.cwd + "/" + FlagValue(w, "--config").value_or("");
  if (!ready_files_.contains(config)) {
    return absl::FailedPreconditionError(where.ToString() + "  starts a daemon with no config");
  }
  // A coordinator started again comes back where the sites look for it.
  const std::string as_run =
      coordinator && coordinator_daemon_ != nullptr ? command + " --listen " + address_ : command;
  Trace(where, as_run + "   (in the background)");
  Daemon& d = daemons_.Add(coordinator ? "coordinator" : machine.name, as_run, machine.cwd,
                           ready_files_[config]);
  absl::StatusOr<std::string> ready = daemons_.Start(*session_, d);
  if (!ready.ok()) {
    return absl::InternalError(absl::StrCat(where.ToString(), "  ran:        ", as_run,
                                            " (in the background)\n  ", ready.status().message()));
  }
  ++commands_run_;
  if (coordinator) {
    coordinator_daemon_ = &d;
    address_ = std::string(absl::StripAsciiWhitespace(*ready));
  } else {
    site_daemons_[machine.name] = &d;
    if (*ready != machine.name + "\n") {
      return absl::InternalError(absl::StrCat(where.ToString(), "  its ready file holds '", *ready,
                                              "', not ", machine.name));
    }
  }
  return absl::OkStatus();
}

// Runs a command of the walk's own (not from the guide) in the session; it must succeed.
absl::StatusOr<CommandResult> OperationsGuideWalk::RunOwn(const std::string& command,
                                                          const std::string& cwd) {
  std::fprintf(stderr, "test: %s\n", command.c_str());
  ASSIGN_OR_RETURN(CommandResult r, session_->Run(command, cwd));
  if (!r.status.Succeeded()) {
    return absl::InternalError(absl::StrCat("(the test's own step) ", command, " in ", cwd, ": ",
                                            r.status.ToString(), "\n", r.out, r.err));
  }
  return r;
}

// The spec hash `tessera tasks submit --dry-run` prints for `file`.
absl::StatusOr<std::string> OperationsGuideWalk::SpecHash(const std::string& file,
                                                          const std::string& cwd) {
  ASSIGN_OR_RETURN(CommandResult r, RunOwn("tessera tasks submit --dry-run " + file, cwd));
  std::smatch m;
  static const std::regex kHash("spec sha256 ([0-9a-f]{64})");
  if (!std::regex_search(r.out, m, kHash)) {
    return absl::InternalError("no spec hash in: " + r.out);
  }
  return m[1].str();
}

// --- Config files --------------------------------------------------------------------------

absl::Status OperationsGuideWalk::WriteGuideConfig(const Where& where, const std::string& program,
                                                   const std::string& name, const Machine& machine,
                                                   int site) {
  const std::string path = fs::path(name).is_absolute() ? name : machine.cwd + "/" + name;
  if (fs::exists(path)) return absl::OkStatus();
  const FencedBlock* block = FindFileBlock(blocks_, name);
  if (block == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(where.ToString(), "  names ", name, ", which the guide shows nowhere"));
  }
  const std::string origin = absl::StrCat(block->file, ":", block->line, " (", name, ")");
  ASSIGN_OR_RETURN(std::string text, GuideConfigText(*block, origin, program, machine, site));
  std::string ready_file;
  if (program == "tessera-coordinator") {
    v1::CoordinatorConfig config;
    ASSIGN_OR_RETURN(ready_file,
                     CompleteConfig(where, origin, path, program, machine, text, config));
  } else {
    v1::ClientConfig config;
    ASSIGN_OR_RETURN(ready_file,
                     CompleteConfig(where, origin, path, program, machine, text, config));
    RETURN_IF_ERROR(DeliverSiteData(config, site));
    RETURN_IF_ERROR(CheckSubmittedFiles(origin, config));
  }
  RETURN_IF_ERROR(common::WriteFileAtomic(path, text));
  ready_files_[path] = ready_file;
  return absl::OkStatus();
}

// The text of the config `block` shows, for `machine` (and under its name, for a site).
absl::StatusOr<std::string> OperationsGuideWalk::GuideConfigText(const FencedBlock& block,
                                                                 const std::string& origin,
                                                                 const std::string& program,
                                                                 const Machine& machine,
                                                                 int site) const {
  std::string text = block.Text();
  if (site >= 0) text = absl::StrReplaceAll(text, {{doc_site_, machine.name}});
  text = MapMachinePaths(text, machine.root);
  if (program == "tessera-coordinator") {
    static const std::regex kListen(R"re(listen_address:\s*"[^"]*")re");
    text = std::regex_replace(text, kListen, "listen_address: \"127.0.0.1:0\"");
  }
  absl::StatusOr<std::string> hosts = MapExampleHosts(text, address_);
  if (!hosts.ok()) return absl::FailedPreconditionError(origin + ": " + hosts.status().ToString());
  return *hosts;
}

// Parses `text` into `config` and completes it for the test: a ready_file added to `text`
// where it has none, its TLS files delivered. Returns the ready file.
template <typename Config>
absl::StatusOr<std::string> OperationsGuideWalk::CompleteConfig(
    const Where& where, const std::string& origin, const std::string& path,
    const std::string& program, const Machine& machine, std::string& text, Config& config) {
  RETURN_IF_ERROR(common::Annotate(common::ParseTextProto(text, path, &config, nullptr), origin));
  std::string ready_file = config.ready_file();
  if (ready_file.empty()) {
    // The guide's site.textproto has none; the test needs it to know when the daemon is in.
    ready_file = absl::StrCat(machine.root, "/run/", program, ".ready");
    absl::StrAppend(&text, "ready_file: \"", ready_file, "\"  # added by the test\n");
  }
  RETURN_IF_ERROR(CheckTlsFiles(where, path, config.tls()));
  return ready_file;
}

// The files a config names must be where the guide's commands put them (the walk copies
// none): relative to the config file's folder when relative.
absl::Status OperationsGuideWalk::CheckTlsFiles(const Where& where, const std::string& config_path,
                                                const v1::TlsFiles& tls) {
  for (const std::string& file : {tls.ca_cert(), tls.cert(), tls.key()}) {
    const std::string path = proto::ResolveConfigPath(config_path, file);
    if (!fs::exists(path)) {
      return absl::FailedPreconditionError(
          absl::StrCat(where.ToString(), "  its config ", config_path, " names ", file,
                       ", which no command of the guide put there (", path, ")"));
    }
  }
  return absl::OkStatus();
}

// The institution's own data, where its config says: its share of the shipped CSV.
absl::Status OperationsGuideWalk::DeliverSiteData(const v1::ClientConfig& config, int site) {
  for (const v1::LocalDataset& d : config.datasets()) {
    ASSIGN_OR_RETURN(std::string stem, DatasetStem(d.id()));
    ASSIGN_OR_RETURN(std::vector<SiteShare> shares,
                     SplitDataset(stem, static_cast<int>(sites_.size())));
    const SiteShare& share = shares[site];
    RETURN_IF_ERROR(common::MakeDirectories(fs::path(d.train_csv()).parent_path().string(), 0755));
    RETURN_IF_ERROR(
        common::WriteFileAtomic(d.train_csv(), d.test_csv().empty() ? share.all : share.train));
    if (!d.test_csv().empty()) RETURN_IF_ERROR(common::WriteFileAtomic(d.test_csv(), share.test));
  }
  return absl::OkStatus();
}

// The task files the guide sends to the sites: those of `tessera query FILE` and of
// `tessera tasks submit FILE`.
// A file the guide makes with `cp SRC FILE` before submitting it is SRC's copy: the sites'
// configs are written before that line runs.
std::vector<std::string> OperationsGuideWalk::SubmittedFiles() const {
  std::vector<std::string> files = QueryFiles(blocks_);
  std::map<std::string, std::string> copied_from;
  for (const DocCommand& c : ShellCommands(blocks_)) {
    std::vector<std::string> w = Words(c.text);
    if (w.size() == 3 && w[0] == "cp") copied_from[w[2]] = w[1];
    if (w.size() == 4 && w[0] == "tessera" && w[1] == "tasks" && w[2] == "submit") {
      files.push_back(copied_from.contains(w[3]) ? copied_from[w[3]] : w[3]);
    }
  }
  return files;
}

// Every file the guide submits to the sites must name a dataset the site holds and, when
// the policy lists spec hashes, be one of them: else every site declines it (or, for a
// dataset no site holds, the task waits for sites forever).
absl::Status OperationsGuideWalk::CheckSubmittedFiles(const std::string& origin,
                                                      const v1::ClientConfig& config) {
  for (const std::string& file : SubmittedFiles()) {
    v1::TaskSpec spec;
    RETURN_IF_ERROR(common::LoadProtoFile(host_.cwd + "/" + file, &spec));
    const auto& held = config.datasets();
    if (std::none_of(held.begin(), held.end(),
                     [&](const v1::LocalDataset& d) { return d.id() == spec.dataset().id(); })) {
      return absl::FailedPreconditionError(absl::StrCat(origin, ": holds no dataset '",
                                                        spec.dataset().id(), "', which ", file,
                                                        " (submitted by the guide) asks for"));
    }
    const auto& allowed = config.policy().allowed_spec_hashes();
    if (allowed.empty()) continue;
    ASSIGN_OR_RETURN(std::string hash, SpecHash(file, host_.cwd));
    if (std::find(allowed.begin(), allowed.end(), hash) == allowed.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat(origin, ": policy.allowed_spec_hashes does not list ", hash,
                       ", the spec hash of ", file, " (`tessera tasks submit --dry-run ", file,
                       "`), which the guide submits: every site would decline it"));
    }
  }
  return absl::OkStatus();
}

// The console config the guide shows (`console.textproto`), written where
// TESSERA_CONSOLE_CONFIG names it, as the reader would with an editor.
absl::Status OperationsGuideWalk::WriteConsoleConfig(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  const FencedBlock* block = FindFileBlock(blocks_, name);
  if (block == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("TESSERA_CONSOLE_CONFIG names ", path, ", but the guide shows no ", name));
  }
  const std::string origin = absl::StrCat(block->file, ":", block->line, " (", name, ")");
  ASSIGN_OR_RETURN(std::string text, GuideConfigText(*block, origin, "tessera", host_, -1));
  v1::ConsoleConfig config;
  RETURN_IF_ERROR(common::Annotate(common::ParseTextProto(text, path, &config, nullptr), origin));
  RETURN_IF_ERROR(CheckTlsFiles(Where{block, block->line, name, ""}, path, config.tls()));
  return common::WriteFileAtomic(path, text, 0600);
}

// --- After a command -----------------------------------------------------------------------

absl::Status OperationsGuideWalk::AfterGuideCommand(const Where& where,
                                                    const std::vector<std::string>& w,
                                                    const CommandResult& r,
                                                    const Machine& machine) {
  if (w.size() >= 2 && w[0] == "export") RETURN_IF_ERROR(AfterExport(where, w, machine));
  if (w.size() >= 3 && w[0] == "tessera" && w[1] == "tasks") {
    RETURN_IF_ERROR(AfterTasks(where, w, r));
  }
  return absl::OkStatus();
}

// After an `export`: the guide's PATH must find the programs CMake built; the console
// config it names is written once it is needed.
absl::Status OperationsGuideWalk::AfterExport(const Where& where, const std::vector<std::string>& w,
                                              const Machine& machine) {
  if (absl::StrContains(w[1], "PATH=")) {
    ASSIGN_OR_RETURN(CommandResult found,
                     RunOwn("command -v tessera tessera-coordinator tessera-client", machine.cwd));
    std::vector<std::string> paths = absl::StrSplit(found.out, '\n', absl::SkipEmpty());
    const std::vector<std::string> want = {ConsoleBinary(), CoordinatorBinary(), ClientBinary()};
    for (size_t i = 0; i < want.size(); ++i) {
      std::error_code ec;
      if (i >= paths.size() || !fs::equivalent(paths[i], want[i], ec)) {
        return Failed(where, absl::StrJoin(w, " "), machine.cwd, found,
                      "after it, PATH does not lead to " + want[i]);
      }
    }
  }
  ASSIGN_OR_RETURN(std::string console_config, session_->Variable("TESSERA_CONSOLE_CONFIG"));
  if (!console_config.empty() && !fs::exists(console_config)) {
    RETURN_IF_ERROR(WriteConsoleConfig(console_config));
  }
  return absl::OkStatus();
}

// After `tessera tasks ...`: the id a submit printed; a cancelled task must end CANCELLED.
absl::Status OperationsGuideWalk::AfterTasks(const Where& where, const std::vector<std::string>& w,
                                             const CommandResult& r) {
  if (w[2] == "submit" && std::find(w.begin(), w.end(), "--dry-run") == w.end()) {
    task_ids_.insert(std::string(absl::StripAsciiWhitespace(r.out)));
    last_task_file_ = w.back();
  }
  if (w[2] == "cancel") {
    // The cancelled task ends: `tasks wait` returns 3 and says so.
    std::fprintf(stderr, "test: tessera tasks wait %s   (must end CANCELLED)\n", w[3].c_str());
    ASSIGN_OR_RETURN(CommandResult ended, session_->Run("tessera tasks wait " + w[3], host_.cwd));
    if (ended.exit_code() != 3 || !absl::StrContains(ended.err, "CANCELLED")) {
      return Failed(where, "tessera tasks wait " + w[3], host_.cwd, ended,
                    "the task it cancelled did not end as CANCELLED");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> OperationsGuideWalk::PrepareCancel(const Where& where,
                                                               const std::string& command) {
  // The guide cancels task-1, which its `tasks wait` has seen complete; a finished task
  // cannot be cancelled. So the walk first submits a second task that stays running (it
  // waits for one site more than the federation has) and cancels that one instead.
  if (last_task_file_.empty()) {
    return absl::FailedPreconditionError(where.ToString() + "  cancels before any submit");
  }
  v1::TaskSpec spec;
  RETURN_IF_ERROR(common::LoadProtoFile(host_.cwd + "/" + last_task_file_, &spec));
  spec.set_name(spec.name() + "-to-cancel");
  spec.set_min_clients(static_cast<uint32_t>(sites_.size()) + 1);
  RETURN_IF_ERROR(common::WriteFileAtomic(
      host_.cwd + "/task-to-cancel.textproto",
      absl::StrCat("# ", last_task_file_, " waiting for one site more than the federation has\n",
                   common::ToTextProto(spec))));
  ASSIGN_OR_RETURN(CommandResult r,
                   RunOwn("tessera tasks submit task-to-cancel.textproto", host_.cwd));
  const std::string id(absl::StripAsciiWhitespace(r.out));
  std::vector<std::string> w = Words(command);
  const std::string doc_id = w[3];
  task_ids_.insert(id);
  return absl::StrCat("tessera tasks cancel ", id,
                      command.substr(command.find(doc_id) + doc_id.size()));
}

}  // namespace tessera::e2e
