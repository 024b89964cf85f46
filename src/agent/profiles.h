/*
 * profiles.h — model profiles: what a principal's [[profile]] means for its searches,
 * embeddings and listings. Every door (HTTP search and /embed, tool calls, MCP through the
 * tools) asks these functions, so a profile means the same through each.
 *
 * A profile (lh_profile_cfg, parsed and validated by src/core/config.c) binds dataset or
 * logical names to indexes ("candidates=candidates_minilm"), names embedding models (a
 * default and one per purpose), an optional generation model endpoint, a default bucket
 * and limits. The principal carries a pointer to its profile that is valid while the
 * principal's set (lh_auth) is, which a request holds for its whole life.
 *
 * Thread safety: the functions only read the immutable profile and the vector registry
 * (its own lock); all are thread-safe.
 */
#ifndef LH_AGENT_PROFILES_H
#define LH_AGENT_PROFILES_H

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "core/core.h"
#include "engine/engine.h"
#include "vector/vector.h"
#include "workspace/workspace.h"

/* The index a search of `name` by who uses: the index its profile binds to `name` (a
 * dataset or a logical name), else `name` itself (an index named explicitly). Copied into
 * out (LH_NAME_MAX); *via_profile says whether the profile decided. Never fails. */
void lh_profile_index(const lh_principal *who, const char *name, char out[LH_NAME_MAX],
                      bool *via_profile);

/* For a tool bound to index `index` over `dataset` that lets profiles decide: the index
 * who's profile binds to the dataset (or to the index's name), else `index`. 409
 * profile_binding_mismatch when the bound index is over another dataset (or unknown). out
 * may be index itself. */
int lh_profile_tool_index(lh_vectors *v, const lh_principal *who, const char *index,
                          const char *dataset, char out[LH_NAME_MAX], lh_err *err);

/* A model name as POST /embed and index definitions take it: "profile" is who's profile's
 * default embedding model, "profile:<purpose>" its model for that purpose (else its
 * default); any other name is returned as it is. 400 no_profile_model when who has no
 * profile or the profile names no such model. *model borrowed (valid while who is). */
int lh_profile_model(const lh_principal *who, const char *name, const char **model, lh_err *err);

/* The most hits who's searches may ask for: its profile's max_k, else max_k_default. */
int64_t lh_profile_max_k(const lh_principal *who, int64_t max_k_default);

/* ---- a search as who asks it, from any door (search.c) --------------------------------- */
/* The index a search of `name` by who uses (lh_profile_index) into out, if who may see it
 * (its dataset's bucket); else 404 index_not_found, the same for one that does not exist. */
int lh_search_index(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *name,
                    char out[LH_NAME_MAX], bool *via_profile, lh_err *err);
/* Run s (query or vector, k — 10 when 0 —, ef, filter, include, exact, mode: as the door
 * decoded them; timeout_ms, when > 0, shortens [engine] query_timeout_ms) on index as who: 400 for
 * a request no door may make (both or an empty query, a vector too long or not finite, more than 64
 * included columns, k above the profile's max_k), 403 for a filter from one who may not write SQL,
 * then lh_vectors_search with who's clearance, query time limit and view of the datasets. *out
 * (new) as lh_vectors_search gives it, plus "profile" and, when a profile mapped `requested` to
 * another index, "requested". */
int lh_search_run(lh_vectors *v, lh_catalog *c, const lh_principal *who, const lh_config *cfg,
                  const char *index, const char *requested, lh_vsearch *s, json_t **out,
                  lh_err *err);

/* Whether s, as a door decoded it (index: the name requested; query or vector, k, ef,
 * exact, mode, filter and its parameters, include), asked by who, is answered without
 * waiting — on CPU, with nothing to wait for (no query slot, no provider, no storage), so a
 * door may run it on the thread that read it instead of handing it to one that may wait:
 * a vector search that lh_vectors_search_is_quick finds quick, with no included columns,
 * and no filter or one the filter cache answers now (lh_vectors_filter_is_cached, through
 * who's view as lh_search_run builds it). A selective filter's exact search over its
 * matches is quick; an exact search the request asks for is not. Requests refused at once
 * (a filter from who may not write SQL) are quick. A hint: the search itself decides
 * again, and a cache entry gone stale since runs the filter's SQL on that thread once.
 * Takes the vector registry's and the filter cache's locks briefly. */
bool lh_search_is_quick(lh_vectors *v, lh_catalog *c, const lh_principal *who,
                        const char *requested, const lh_vsearch *s);

/* The default bucket of who: its profile's `bucket` with "{user}" replaced by who's name,
 * else "profile:<name>". Into out. */
void lh_profile_bucket(const lh_principal *who, char *out, size_t size);

/* Warnings about the profiles of cfg that the file alone cannot show (new array of
 * strings): a generate_secret_ref the secrets file ([secrets] file) does not hold, or a
 * secrets file that cannot be read. Never a secret value. */
json_t *lh_profiles_check(const lh_config *cfg);

/* One profile as an API answer shows it (new): never a secret, and the secrets-file table
 * of its generation key only to admins. */
json_t *lh_profile_json(const lh_profile_cfg *p, bool admin);

/* The profiles who may see (new array): admins every profile of the set, anyone else only
 * its own. */
json_t *lh_profiles_list(const lh_auth *set, const lh_principal *who);

/* ---- a principal's own SQL, from any door (user_query.c) ------------------------------ */
typedef struct lh_user_query {
    lh_query_opts opts; /* for lh_query_start / lh_query_to_parquet: the door sets format,
                           gone and rescue_used */
    lh_catalog_view view;
    bool has_view;
    lh_as_of_views *as_of;
    lh_ws_prelude *ws;
    const char **prelude; /* the time travel and workspace statements, in that order */
} lh_user_query;
/* Prepare sql as who's query: 403 for one who may not write SQL (agents), 400 for an
 * empty statement, a limit outside 0..[engine] max_row_limit (0: the default limit) or
 * as_of with workspace_id; as_of ({"version"}, {"timestamp"} or {"datasets"}: the
 * catalog's time travel through who's buckets and clearance) or workspace_id (its staged
 * rows merged on read; ws may be NULL: none) become the statements run first; the result
 * and time limits come from cfg, the view of the datasets from who. q is the door's (on
 * its stack); release it when the query is over (it pins files and holds the view). */
int lh_user_query_prepare(lh_catalog *c, lh_workspaces *ws, const lh_principal *who,
                          const lh_config *cfg, const char *sql, int64_t limit, const json_t *as_of,
                          const char *workspace_id, lh_user_query *q, lh_err *err);
void lh_user_query_release(lh_user_query *q);

/* ---- changes of a vector index a principal asks for, from any door (index_ops.c) ------ */
/* 0 when index `name` exists and who may see its dataset (an index outliving its dataset
 * is visible); else 404 index_not_found — the same answer either way. */
int lh_index_visible(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *name,
                     lh_err *err);
/* Begin a new index (body as POST /vectors/indexes takes it; "model": "profile" becomes
 * who's profile's model in body): 404 for a dataset who may not see, else as
 * lh_vectors_create_begin. *b: run it with lh_vbuild_run or lh_vectors_submit. */
int lh_index_create_as(lh_vectors *v, lh_catalog *c, const lh_principal *who, json_t *body,
                       lh_vbuild **b, lh_err *err);
/* Begin a refresh / a promotion (body {"trial_id"} or {"hnsw": {...}}) of an index whose
 * dataset who may see (else 404 index_not_found, as for none). */
int lh_index_refresh_as(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *name,
                        lh_vbuild **b, lh_err *err);
int lh_index_promote_as(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *name,
                        const json_t *body, lh_vbuild **b, lh_err *err);
/* Roll back an index whose dataset who may see: *out as lh_vectors_rollback. */
int lh_index_rollback_as(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *name,
                         json_t **out, lh_err *err);

#endif
