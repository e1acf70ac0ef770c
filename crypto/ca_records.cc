#include "crypto/ca_records.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/status.h"
#include "crypto/pki_files.h"

namespace tessera::crypto {
namespace {

constexpr char kIndexHeader[] = "# serial\tnode_id\trole\tnot_after_unix\n";

std::string InDir(const std::string& dir, const char* name) {
  return dir.empty() || dir.back() == '/' ? dir + name : absl::StrCat(dir, "/", name);
}

std::string Utc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

absl::Status WriteCrl(const std::string& ca_dir, const CertificateAuthority& ca,
                      const std::vector<RevokedCertificate>& revoked, uint64_t number,
                      absl::Duration validity, absl::Time now) {
  ASSIGN_OR_RETURN(std::string pem, CreateCrl(ca, revoked, number, now, validity));
  return common::WriteFileAtomic(InDir(ca_dir, kCrlFile), pem, 0644);
}

bool IsHexSerial(const std::string& s) {
  return !s.empty() && s.size() <= 40 &&
         s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

}  // namespace

absl::StatusOr<std::vector<IssuedCertificate>> ReadIssuedIndex(const std::string& ca_dir) {
  const std::string path = InDir(ca_dir, kIssuedIndexFile);
  std::vector<IssuedCertificate> out;
  if (!common::PathExists(path)) return out;
  ASSIGN_OR_RETURN(std::string text, common::ReadFile(path));
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.empty() || line.front() == '#') continue;
    std::vector<std::string> fields = absl::StrSplit(line, '\t');
    int64_t not_after = 0;
    if (fields.size() != 4 || !IsHexSerial(fields[0]) || !absl::SimpleAtoi(fields[3], &not_after)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " line ", line_number, ": not 'serial node_id role not_after_unix'"));
    }
    out.push_back(
        {absl::AsciiStrToLower(fields[0]), fields[1], fields[2], absl::FromUnixSeconds(not_after)});
  }
  return out;
}

absl::Status RecordIssued(const std::string& ca_dir, const CertificateInfo& info) {
  ASSIGN_OR_RETURN(std::vector<IssuedCertificate> issued, ReadIssuedIndex(ca_dir));
  std::string text = kIndexHeader;
  for (const IssuedCertificate& c : issued) {
    absl::StrAppend(&text, c.serial_hex, "\t", c.node_id, "\t", c.role, "\t",
                    absl::ToUnixSeconds(c.not_after), "\n");
  }
  absl::StrAppend(&text, info.serial_hex, "\t", info.node_id, "\t", RoleName(info.role), "\t",
                  absl::ToUnixSeconds(info.not_after), "\n");
  return common::WriteFileAtomic(InDir(ca_dir, kIssuedIndexFile), text, 0644);
}

absl::StatusOr<CrlInfo> ReadCaDirCrl(const std::string& ca_dir) {
  const std::string path = InDir(ca_dir, kCrlFile);
  if (!common::PathExists(path)) return CrlInfo{};
  ASSIGN_OR_RETURN(std::string pem, common::ReadFile(path));
  ASSIGN_OR_RETURN(std::string ca_pem, common::ReadFile(InDir(ca_dir, kCaCertFile)));
  absl::StatusOr<CrlInfo> info = VerifyCrl(pem, ca_pem);
  if (!info.ok()) return common::Annotate(info.status(), path);
  return info;
}

absl::StatusOr<RevokeResult> RevokeCertificate(const std::string& ca_dir,
                                               const RevokeRequest& request, absl::Time now) {
  RETURN_IF_ERROR(CheckRevocationReason(request.reason));
  ASSIGN_OR_RETURN(CertificateAuthority ca, LoadCertificateAuthorityDir(ca_dir));
  ASSIGN_OR_RETURN(std::vector<IssuedCertificate> issued, ReadIssuedIndex(ca_dir));
  ASSIGN_OR_RETURN(CrlInfo crl, ReadCaDirCrl(ca_dir));
  auto revoked_entry = [&crl](const std::string& serial) -> const RevokedCertificate* {
    for (const RevokedCertificate& r : crl.revoked) {
      if (r.serial_hex == serial) return &r;
    }
    return nullptr;
  };

  RevokeResult result;
  std::vector<const IssuedCertificate*> named;
  for (const IssuedCertificate& c : issued) {
    if (c.node_id == request.name_or_serial) named.push_back(&c);
  }
  std::string serial;
  if (!named.empty()) {
    std::vector<const IssuedCertificate*> live;
    for (const IssuedCertificate* c : named) {
      if (revoked_entry(c->serial_hex) == nullptr) live.push_back(c);
    }
    if (live.size() > 1) {
      std::vector<std::string> lines;
      lines.reserve(live.size());
      for (const IssuedCertificate* c : live) {
        lines.push_back(absl::StrCat(c->serial_hex, " (not after ", Utc(c->not_after), ")"));
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "'", request.name_or_serial, "' names ", live.size(),
          " unrevoked certificates; revoke one by its serial: ", absl::StrJoin(lines, ", ")));
    }
    serial = live.empty() ? named.back()->serial_hex : live.front()->serial_hex;
    result.node_id = request.name_or_serial;
  } else if (IsHexSerial(request.name_or_serial)) {
    serial = absl::AsciiStrToLower(request.name_or_serial);
    for (const IssuedCertificate& c : issued) {
      if (c.serial_hex == serial) result.node_id = c.node_id;
    }
  } else {
    return absl::NotFoundError(
        absl::StrCat("unknown name '", request.name_or_serial, "': no certificate for it in ",
                     InDir(ca_dir, kIssuedIndexFile),
                     " ('tessera pki list' shows them; a certificate "
                     "signed before the index existed is revoked by its serial)"));
  }
  if (const RevokedCertificate* r = revoked_entry(serial); r != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("certificate ", serial,
                                                      " is already revoked (at ",
                                                      Utc(r->revoked_at), ", ", r->reason, ")"));
  }
  result.entry = {serial, now, request.reason};
  crl.revoked.push_back(result.entry);
  RETURN_IF_ERROR(WriteCrl(ca_dir, ca, crl.revoked, crl.number + 1, request.crl_validity, now));
  result.crl_path = InDir(ca_dir, kCrlFile);
  ASSIGN_OR_RETURN(result.crl, ReadCaDirCrl(ca_dir));
  return result;
}

absl::StatusOr<CrlInfo> ReissueCrl(const std::string& ca_dir, absl::Duration validity,
                                   absl::Time now) {
  ASSIGN_OR_RETURN(CertificateAuthority ca, LoadCertificateAuthorityDir(ca_dir));
  ASSIGN_OR_RETURN(CrlInfo crl, ReadCaDirCrl(ca_dir));
  RETURN_IF_ERROR(WriteCrl(ca_dir, ca, crl.revoked, crl.number + 1, validity, now));
  return ReadCaDirCrl(ca_dir);
}

}  // namespace tessera::crypto
