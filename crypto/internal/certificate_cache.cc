#include "crypto/internal/certificate_cache.h"

#include <openssl/evp.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "crypto/hash.h"

namespace tessera::crypto::internal {
namespace {

// OpenSSL compares times to the second (X509_VERIFY_PARAM_set_time takes a time_t).
absl::Time ToSecond(absl::Time t) { return absl::FromTimeT(absl::ToTimeT(t)); }

template <typename Map>
void MakeRoom(Map& map) {
  if (map.size() >= kMaxEntries) map.erase(map.begin());
}

}  // namespace

VerifiedCertificates& VerifiedCertificates::Instance() {
  static VerifiedCertificates* const instance = new VerifiedCertificates;
  return *instance;
}

std::string VerifiedCertificates::Key(std::string_view cert_pem, std::string_view ca_cert_pem) {
  Sha256Stream digest;
  digest.Update(absl::StrCat(cert_pem.size(), ":"));
  digest.Update(cert_pem);
  digest.Update(absl::StrCat(ca_cert_pem.size(), ":"));
  digest.Update(ca_cert_pem);
  return digest.Finish();
}

std::optional<CertificateInfo> VerifiedCertificates::Find(const std::string& key, absl::Time now) {
  const absl::Time t = ToSecond(now);
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  // X509_cmp_time: valid from notBefore itself; expired at notAfter itself.
  if (t < it->second.valid_from || t >= it->second.valid_until) return std::nullopt;
  ++hits_;
  return it->second.info;
}

void VerifiedCertificates::Insert(const std::string& key, const CertificateInfo& info,
                                  absl::Time valid_from, absl::Time valid_until) {
  absl::MutexLock lock(&mu_);
  if (!entries_.contains(key)) MakeRoom(entries_);
  entries_[key] = Entry{info, valid_from, valid_until};
}

uint64_t VerifiedCertificates::hits() {
  absl::MutexLock lock(&mu_);
  return hits_;
}

size_t VerifiedCertificates::size() {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

PublicKeys& PublicKeys::Instance() {
  static PublicKeys* const instance = new PublicKeys;
  return *instance;
}

UniqueEvpPkey PublicKeys::Find(const std::string& cert_pem) {
  const std::string key = Sha256(cert_pem);
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(key);
  if (it == keys_.end() || EVP_PKEY_up_ref(it->second.get()) != 1) return nullptr;
  ++hits_;
  return UniqueEvpPkey(it->second.get());
}

void PublicKeys::Insert(const std::string& cert_pem, EVP_PKEY* key) {
  if (EVP_PKEY_up_ref(key) != 1) return;
  UniqueEvpPkey held(key);
  const std::string digest = Sha256(cert_pem);
  absl::MutexLock lock(&mu_);
  if (!keys_.contains(digest)) MakeRoom(keys_);
  keys_[digest] = std::move(held);
}

uint64_t PublicKeys::hits() {
  absl::MutexLock lock(&mu_);
  return hits_;
}

ParsedCertificates& ParsedCertificates::Instance() {
  static ParsedCertificates* const instance = new ParsedCertificates;
  return *instance;
}

std::optional<CertificateInfo> ParsedCertificates::Find(std::string_view cert_pem) {
  const std::string key = Sha256(cert_pem);
  absl::MutexLock lock(&mu_);
  auto it = infos_.find(key);
  if (it == infos_.end()) return std::nullopt;
  ++hits_;
  return it->second;
}

void ParsedCertificates::Insert(std::string_view cert_pem, const CertificateInfo& info) {
  const std::string key = Sha256(cert_pem);
  absl::MutexLock lock(&mu_);
  if (!infos_.contains(key)) MakeRoom(infos_);
  infos_[key] = info;
}

uint64_t ParsedCertificates::hits() {
  absl::MutexLock lock(&mu_);
  return hits_;
}

}  // namespace tessera::crypto::internal
