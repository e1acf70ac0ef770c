// Who is to blame when sites abort a secure-aggregation session naming a peer
// (v1::Decline.culprit: the peer whose encrypted share to them did not authenticate or was
// malformed inside; secagg/client.h culprit()).
//
// The rule: a site is quarantined if at least one site that named it is not itself named
// in the same session. Honest sites name only a sender whose share failed the AEAD, so
// with one site sending garbage every honest site names it and nobody names them; a
// garbage sender that names honest sites back cannot save itself as long as one of its
// accusers is not named, and cannot get an honest site quarantined while it is named itself
// (its word then counts for nothing). Two sites naming only each other are both named:
// neither is quarantined (the session fails, and the retry invites both again; an operator
// sees the declines in `tessera tasks show`).
//
// What this costs whom: a coordinator that damages one honest site's ciphertexts makes its
// peers name that site, and a lying site can name an honest one; either way an honest site
// is left out of cohorts until an operator releases it — availability only. Quarantine
// only removes a site from cohorts; it releases nothing and lowers no threshold (every site
// checks its own), so a cheating coordinator gains no privacy from it
// (docs/secure-aggregation.md, "Culprits and quarantine").
//
// Pure functions; thread-safe.
#ifndef TESSERA_COORDINATOR_CULPRITS_H_
#define TESSERA_COORDINATOR_CULPRITS_H_

#include <map>
#include <string>
#include <vector>

namespace tessera::coordinator {

// One site's naming of a peer in a session: whom, and the abort it reported
// ("SECAGG_CORRUPTED_SHARE: the share from hospital-d does not authenticate").
struct Accusation {
  std::string culprit;
  std::string reason;
};

// A site to quarantine: the sites whose naming counts (sorted) and the first of their
// reasons.
struct Verdict {
  std::string client_id;
  std::vector<std::string> named_by;
  std::string reason;
};

// The sites to quarantine after a session, by the rule above, sorted by client id.
// `accusations` maps each naming site to its accusation; a site naming itself counts for
// nothing.
std::vector<Verdict> JudgeCulprits(const std::map<std::string, Accusation>& accusations);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_CULPRITS_H_
