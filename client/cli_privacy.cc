#include "client/cli_privacy.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "client/config_reload.h"
#include "client/internal/cli_flags.h"
#include "client/site_budget.h"
#include "client/site_store.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "google/protobuf/struct.pb.h"
#include "proto/config.pb.h"
#include "proto/site_budget.pb.h"
#include "proto/validation.h"

namespace tessera::client {
namespace {

std::optional<double> Remaining(const DatasetAccount& a) {
  if (!a.epsilon_budget.has_value()) return std::nullopt;
  return std::max(0.0, *a.epsilon_budget - a.epsilon_spent);
}

std::string Json(const std::vector<DatasetAccount>& accounts) {
  google::protobuf::Struct out;
  google::protobuf::ListValue* list = (*out.mutable_fields())["datasets"].mutable_list_value();
  auto number_or_null = [](std::optional<double> v) {
    google::protobuf::Value value;
    if (v.has_value()) {
      value.set_number_value(*v);
    } else {
      value.set_null_value(google::protobuf::NULL_VALUE);
    }
    return value;
  };
  for (const DatasetAccount& a : accounts) {
    auto& fields = *list->add_values()->mutable_struct_value()->mutable_fields();
    fields["dataset"].set_string_value(a.dataset);
    fields["releases"].set_number_value(static_cast<double>(a.releases));
    fields["delta"].set_number_value(a.delta);
    fields["epsilon_spent"].set_number_value(a.epsilon_spent);
    fields["epsilon_budget"] = number_or_null(a.epsilon_budget);
    fields["epsilon_remaining"] = number_or_null(Remaining(a));
  }
  return common::ToJson(out);
}

std::string Text(const std::vector<DatasetAccount>& accounts) {
  if (accounts.empty()) return "no dataset: no differentially private release recorded\n";
  std::string out = absl::StrFormat("%-24s %8s %10s %10s %10s %8s\n", "dataset", "releases",
                                    "eps_spent", "eps_budget", "remaining", "delta");
  auto cell = [](std::optional<double> v) {
    return v.has_value() ? absl::StrFormat("%.4f", *v) : std::string("-");
  };
  for (const DatasetAccount& a : accounts) {
    absl::StrAppendFormat(&out, "%-24s %8d %10.4f %10s %10s %8g\n", a.dataset, a.releases,
                          a.epsilon_spent, cell(a.epsilon_budget), cell(Remaining(a)), a.delta);
  }
  return out;
}

}  // namespace

absl::Status PrivacyCommand(const std::vector<std::string>& args) {
  std::string store_dir;
  std::string config_path;
  bool json = false;
  common::FlagParser flags(
      "tessera-client privacy [--store DIR | --config FILE] [--json]",
      "Shows this site's own privacy budget per dataset: the differentially private\n"
      "releases it contributed to across all tasks, the epsilon they spent (Renyi DP),\n"
      "the budget (policy.site_budgets, default_site_budget) and what remains. Reads the\n"
      "site store without writing; works while the daemon runs.");
  flags.AddString("config", &config_path,
                  "ClientConfig file: its data_dir, budgets and datasets (text format or .json)");
  flags.AddString("store", &store_dir,
                  "a site store directory (no budgets: epsilon at delta 1e-5)");
  flags.AddBool("json", &json, "print JSON");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseCliFlags(flags, args, &positional, 0));
  if (!go) return absl::OkStatus();
  if (store_dir.empty() == config_path.empty()) {
    return absl::InvalidArgumentError("privacy needs either --store DIR or --config FILE");
  }
  v1::ClientConfig config;
  std::vector<std::string> datasets;
  if (!config_path.empty()) {
    ASSIGN_OR_RETURN(config, LoadClientConfig(config_path));
    store_dir = config.data_dir();
    for (const v1::LocalDataset& d : config.datasets()) datasets.push_back(d.id());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SiteStore> store, OpenSiteStoreReadOnly(store_dir));
  ASSIGN_OR_RETURN(std::vector<v1::BudgetCharge> charges, store->ListBudgetCharges());
  ASSIGN_OR_RETURN(std::vector<DatasetAccount> accounts,
                   Accounts(config.policy(), charges, kDefaultAccountDelta, datasets));
  const std::string out = json ? Json(accounts) : Text(accounts);
  std::fputs(out.c_str(), stdout);
  return absl::OkStatus();
}

}  // namespace tessera::client
