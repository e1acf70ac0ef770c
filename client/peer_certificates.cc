#include "client/peer_certificates.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "proto/secagg.pb.h"
#include "proto/transfer.h"

namespace tessera::client {

v1::FetchCertificatesRequest FetchRequestFor(const v1::WorkItem& item,
                                             const std::vector<std::string>& sha256s) {
  v1::FetchCertificatesRequest request;
  request.set_task_id(item.task_id());
  request.set_secagg_session(item.secagg_session());
  for (const std::string& digest : sha256s) request.add_certificate_sha256(digest);
  return request;
}

std::vector<std::string> FetchedCertificates(const v1::FetchCertificatesResponse& response) {
  return {response.certificates().begin(), response.certificates().end()};
}

void PeerCertificates::Add(const std::string& pem) {
  std::string digest = crypto::Sha256(pem);
  if (by_digest_.contains(digest) || pem.size() > max_bytes_) return;
  while (bytes_ + pem.size() > max_bytes_ && !order_.empty()) {
    auto oldest = by_digest_.find(order_.front());
    bytes_ -= oldest->second.size();
    by_digest_.erase(oldest);
    order_.pop_front();
  }
  bytes_ += pem.size();
  order_.push_back(digest);
  by_digest_.emplace(std::move(digest), pem);
}

const std::string* PeerCertificates::Find(const std::string& sha256) const {
  auto it = by_digest_.find(sha256);
  return it == by_digest_.end() ? nullptr : &it->second;
}

absl::StatusOr<CompletedList> PeerCertificates::Complete(v1::WorkItem* item,
                                                         const FetchCertificatesCall& fetch) {
  CompletedList done;
  if (!item->has_secagg() || !item->secagg().has_advertisements()) return done;
  auto* entries = item->mutable_secagg()->mutable_advertisements()->mutable_entries();
  // The digests of the entries that lack their certificate and are not held, once each.
  std::vector<std::string> wanted;
  for (const v1::AdvertisementEntry& entry : *entries) {
    const v1::KeyAdvertisement& ad = entry.advertisement();
    if (!ad.certificate().empty() || ad.certificate_sha256().empty()) continue;
    if (Find(ad.certificate_sha256()) == nullptr) wanted.push_back(ad.certificate_sha256());
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  // Fetched certificates are held apart until every call succeeded: a failed fetch changes
  // nothing in the item. Each is kept only if it hashes to the digest it was asked for.
  std::map<std::string, std::string> fetched;
  for (size_t start = 0; start < wanted.size(); start += proto::kMaxCertificatesPerFetch) {
    const size_t end = std::min(wanted.size(), start + proto::kMaxCertificatesPerFetch);
    const std::vector<std::string> batch(wanted.begin() + static_cast<std::ptrdiff_t>(start),
                                         wanted.begin() + static_cast<std::ptrdiff_t>(end));
    ASSIGN_OR_RETURN(std::vector<std::string> pems, fetch(batch));
    for (size_t i = 0; i < batch.size() && i < pems.size(); ++i) {
      if (crypto::Sha256(pems[i]) == batch[i]) fetched.emplace(batch[i], std::move(pems[i]));
    }
  }
  for (auto& [digest, pem] : fetched) Add(pem);
  for (v1::AdvertisementEntry& entry : *entries) {
    v1::KeyAdvertisement* ad = entry.mutable_advertisement();
    if (!ad->certificate().empty() || ad->certificate_sha256().empty()) continue;
    if (auto it = fetched.find(ad->certificate_sha256()); it != fetched.end()) {
      ad->set_certificate(it->second);
      ++done.fetched;
    } else if (const std::string* held = Find(ad->certificate_sha256())) {
      ad->set_certificate(*held);
      ++done.from_cache;
    } else {
      done.refused.push_back(entry.client_id());
    }
  }
  return done;
}

}  // namespace tessera::client
