#include "client/site_crl.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"

namespace tessera::client {

absl::StatusOr<std::unique_ptr<SiteCrl>> SiteCrl::Open(const std::string& ca_cert_pem,
                                                       const std::string& data_dir,
                                                       const std::string& crl_file) {
  std::unique_ptr<SiteCrl> crl(
      new SiteCrl(ca_cert_pem, absl::StrCat(data_dir, "/crl.pem"), crl_file));
  if (common::PathExists(crl->persisted_)) {
    absl::StatusOr<std::string> pem = common::ReadFile(crl->persisted_);
    absl::StatusOr<bool> taken = pem.ok() ? crl->list_.Offer(*pem) : pem.status();
    if (!taken.ok()) {
      common::LogWarning("crl_refused")
          .With("from", crl->persisted_)
          .With("error", std::string(taken.status().message()));
    }
  }
  if (!crl_file.empty()) {
    ASSIGN_OR_RETURN(std::string pem, common::ReadFile(crl_file));
    absl::StatusOr<bool> taken = crl->list_.Offer(pem);
    if (!taken.ok()) return common::Annotate(taken.status(), absl::StrCat("crl_file ", crl_file));
  }
  return crl;
}

bool SiteCrl::Offer(const std::string& pem, const char* from) {
  if (pem.empty()) return false;
  absl::StatusOr<bool> taken = list_.Offer(pem);
  if (!taken.ok()) {
    common::LogWarning("crl_refused")
        .With("from", from)
        .With("kept_number", list_.number())
        .With("error", std::string(taken.status().message()));
    return false;
  }
  if (!*taken) return false;
  common::LogInfo("crl_updated").With("from", from).With("number", list_.number());
  if (absl::Status st = common::WriteFileAtomic(persisted_, list_.pem(), 0644); !st.ok()) {
    common::LogWarning("crl_not_persisted").With("error", st.ToString());
  }
  return true;
}

void SiteCrl::ReloadFile() {
  if (crl_file_.empty()) return;
  absl::StatusOr<std::string> pem = common::ReadFile(crl_file_);
  if (!pem.ok()) {
    common::LogWarning("crl_refused")
        .With("from", crl_file_)
        .With("error", pem.status().ToString());
    return;
  }
  Offer(*pem, "crl_file");
}

}  // namespace tessera::client
