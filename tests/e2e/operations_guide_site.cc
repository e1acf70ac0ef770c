// The walk's rules for docs/operations.md chapter 6, "For the site" (operations_guide.h).

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/status.h"
#include "tests/e2e/operations_guide.h"

namespace tessera::e2e {

// Before `tessera-client audit provenance FILE`: the file travels to the site. Before
// `tessera-client tasks show|approve|reject ID --config FILE`: waits until the site's
// daemon lists ID as pending (it declines the task's work once it has seen it). Polls
// `tessera-client tasks pending`, 100 ms apart, for up to 60 s.
absl::Status OperationsGuideWalk::BeforeSiteDecision(const Where& where,
                                                     const std::vector<std::string>& w,
                                                     const Machine& machine) {
  if (w.size() >= 4 && w[0] == "tessera-client" && w[1] == "audit" && w[2] == "provenance") {
    return DeliverProvenance(where, w[3], machine);
  }
  if (w.size() < 4 || w[0] != "tessera-client" || w[1] != "tasks") return absl::OkStatus();
  if (w[2] != "show" && w[2] != "approve" && w[2] != "reject") return absl::OkStatus();
  const std::optional<std::string> config = FlagValue(w, "--config");
  if (!config.has_value()) return absl::OkStatus();
  const std::string& id = w[3];
  const std::string pending = "tessera-client tasks pending --config " + *config;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  std::string last;
  while (true) {
    ASSIGN_OR_RETURN(CommandResult r, session_->Run(pending, machine.cwd));
    if (r.status.Succeeded()) {
      for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
        if (absl::StartsWith(line, id + " ")) return absl::OkStatus();
      }
    }
    last = r.out + r.err;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(where.ToString(), "  ", machine.name, " did not list ", id,
                       " as pending within 60 s (`", pending, "` said: ", last, ")"));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

// The round's provenance file the operator wrote travels to the site (the guide says so in
// prose): copied from the operator's working directory to the site's.
absl::Status OperationsGuideWalk::DeliverProvenance(const Where& where, const std::string& file,
                                                    const Machine& machine) {
  const std::string from = host_.cwd + "/" + file;
  if (!common::PathExists(from)) {
    return absl::FailedPreconditionError(absl::StrCat(
        where.ToString(), "  checks ", file,
        ", which the operator did not write (`tessera tasks provenance ... --out ", file, "`)"));
  }
  ASSIGN_OR_RETURN(std::string contents, common::ReadFile(from));
  return common::WriteFileAtomic(machine.cwd + "/" + file, contents, 0644);
}

}  // namespace tessera::e2e
