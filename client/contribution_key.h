// The contribution key: what determines the vector a site computes for a stage, hashed.
// A site sends a masked input under a given key at most once, in one session, ever
// (client/secure_sessions.h keeps the record in the site store): a coordinator that asks
// again — another attempt, another cohort, another task id or name, after a restart — gets
// a decline, so it can never difference two sums to isolate one site's vector.
//
// The key is SHA-256 over "tessera/contribution/v1", the stage, the global model hash and
// the deterministic serialisation of the spec fields the vector depends on:
//   STATISTICS  dataset id and the columns pooled (features, then the label when the model
//               pools it) with the dataset's preparation (what the columns hold); with a
//               validation split, its fraction and the seed (the rows pooled); no model
//   FIT         dataset (id, features, label, event), the model spec, the training spec
//               without early_stopping (the split with it), and the seed; the global model
//               hash
//   EVALUATE    dataset (id, features, label, event) and the model spec without its
//               penalty; with a validation split, its fraction and the seed (the rows are
//               the validation rows); the global model hash
//   TEST        the key of EVALUATE without a split (the same vector: the test rows), so a
//               model evaluated on the test rows once, in either stage, is never again
//   GLM         dataset (id, features, label, event) and the model spec (family, link,
//               fixed effects, offset, weights, ties) without its tolerance; the global
//               model hash (the coefficients)
//   FIT_EVALUATE  not a key of its own: the vector spends the FIT and the EVALUATE key of
//               its model (ContributionKeys)
//   ANALYTICS   dataset id, the queries (columns, edges, value ranges) and the filter; no
//               model (a noised query always has value ranges and an exact one never
//               does, so the two never share a key; two noised tasks that differ only in
//               their privacy settings do)
// Deliberately left out, so that varying them cannot buy a second vector: the task's id,
// name, description, rounds, cohort sizes, deadlines and attempts, the strategy, the
// secure-aggregation settings (threshold, clip: the encoding), the privacy settings, N (the
// pooled row count), the standardisation and the analytics minimum cell size. What a
// near-identical repeat still reveals (another seed, a slightly different model) is bounded
// only by differential privacy (docs/secure-aggregation.md).
//
// Pure; thread-safe.
#ifndef TESSERA_CLIENT_CONTRIBUTION_KEY_H_
#define TESSERA_CLIENT_CONTRIBUTION_KEY_H_

#include <string>
#include <vector>

namespace tessera::v1 {
class TaskSpec;
}  // namespace tessera::v1

namespace tessera::client {

// 32 raw bytes. `stage` is a v1::Stage value; `model_hash` the SHA-256 of the global model
// (ignored for STATISTICS and ANALYTICS). `spec` has its defaults applied.
std::string ContributionKey(const v1::TaskSpec& spec, int stage, const std::string& model_hash);

// The keys a stage's vector spends, the first being the one it is recorded under: the FIT
// and the EVALUATE key of the model for STAGE_FIT_EVALUATE (its vector holds both: a site
// that sent either part of a model in another session must not send it again inside the
// other), ContributionKey(spec, stage, model_hash) alone for every other stage.
std::vector<std::string> ContributionKeys(const v1::TaskSpec& spec, int stage,
                                          const std::string& model_hash);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CONTRIBUTION_KEY_H_
