// `tessera-client privacy [--store DIR | --config FILE] [--json]`: the site's privacy
// budget per dataset (client/site_budget.h), read from its site store with
// OpenSiteStoreReadOnly, so it works while the daemon runs.
#ifndef TESSERA_CLIENT_CLI_PRIVACY_H_
#define TESSERA_CLIENT_CLI_PRIVACY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tessera::client {

// The command. `args` without the command word. With --config FILE: the store of the
// config's data_dir, its budgets (policy.site_budgets, default_site_budget) and every
// dataset it maps; with --store DIR: that store alone (no budget known; ε at δ =
// kDefaultAccountDelta). Prints per dataset the releases charged, ε spent, the budget and
// what remains (text, or JSON with --json). INVALID_ARGUMENT for bad flags or config;
// the store's errors (NOT_FOUND for no store, DATA_LOSS naming what is damaged).
absl::Status PrivacyCommand(const std::vector<std::string>& args);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CLI_PRIVACY_H_
