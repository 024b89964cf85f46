/*
 * catalog.h — datasets and their manifest versions (ADR-002, ADR-013).
 *
 * A dataset is a sequence of manifests stored as Parquet in its bucket at
 * datasets/{name}/_manifest/v{N:020}.parquet. The newest manifest is the dataset's
 * state; older ones are its history. A manifest lists the data files (path, bytes, rows,
 * kind), the columns and the metadata (owner, sensitivity, description, tags, freshness
 * SLA, lineage). The in-memory index is rebuilt from the buckets at start: there is no
 * other state. Every live dataset is a view of the same name in the query engine.
 *
 * Commits: one local writer per dataset at a time (lh_catalog_begin waits for the
 * previous one), and the manifest is written with a create-only put, so a writer in
 * another process that got there first makes ours fail with 409, never overwrite.
 *
 * Manifests are passed around as JSON objects:
 *   {"name", "bucket", "version", "state": "live"|"deleted", "change", "created_at",
 *    "created_by", "row_count", "bytes", "columns": [{"name","type"}],
 *    "files": [{"path","bytes","rows","kind"}], "metadata": {...}}
 * All functions are thread-safe.
 */
#ifndef LH_CATALOG_H
#define LH_CATALOG_H

#include "auth/auth.h"
#include "core/core.h"
#include "engine/engine.h"
#include "storage/storage.h"

typedef struct lh_catalog lh_catalog;

typedef struct lh_catalog_deps {
    lh_buckets *buckets;
    lh_engine *engine; /* internal work (manifests, footers); may read/write work_dir */
    lh_engine *views;  /* the users' engine, where dataset views are defined (NULL: engine) */
    lh_cache *cache;
    const char *work_dir;      /* scratch folder `engine` may read and write */
    int64_t retain_versions_s; /* the sweep expires versions older (never the newest); 0: none */
    int64_t max_diff_rows;     /* a replace changing more rows is journaled as one event */
    int load_threads;          /* manifests read at once at open; < 1: one */
    /* keep a catalog checkpoint in the primary bucket: read at open, written after it and
     * every checkpoint_after_commits commits (0: only after open) by a thread of its own */
    bool checkpoint;
    int64_t checkpoint_after_commits;
    /* a bucket whose datasets could not be listed at open is listed again this often, by
     * a thread of its own, until it answers (<= 0: 10 s) */
    int64_t relist_interval_ms;
    /* metadata every ingest that creates or rewrites a dataset must have, comma-separated
     * ([catalog] require; NULL or "": none); see lh_catalog_check_required */
    const char *require;
    /* 32 bytes: the key of "hash" column masks (copied; NULL: hash masks give NULL) */
    const uint8_t *mask_key;
} lh_catalog_deps;

/* Load every dataset of every bucket and define their views. Datasets that cannot be
 * loaded are logged and skipped (the server still starts). Returns new. */
int lh_catalog_open(const lh_catalog_deps *deps, lh_catalog **out, lh_err *err);
void lh_catalog_close(lh_catalog *c); /* accepts NULL */
/* A bucket the registry gained while serving (a configuration reload): load its datasets
 * and journal batches as a start does (every manifest read: no checkpoint holds them)
 * and give the datasets their views. A name another bucket already holds keeps that
 * bucket's (logged, counted in *errors). *datasets: how many were loaded. */
void lh_catalog_add_bucket(lh_catalog *c, const char *bucket, int64_t *datasets, int64_t *errors);

typedef struct lh_catalog_filter {
    const char *tag, *owner, *sensitivity, *text; /* NULL: any */
    bool include_deleted;
} lh_catalog_filter;

/* Summaries of the datasets that match (new array). */
json_t *lh_catalog_list(lh_catalog *c, const lh_catalog_filter *f);
/* The latest manifest plus "freshness" (new), or 404 dataset_not_found. Deleted
 * datasets are found too (state "deleted"). */
int lh_catalog_get(lh_catalog *c, const char *name, json_t **out, lh_err *err);
/* Versions from..from+limit-1, oldest first: [{"version","change","created_at",
 * "created_by","row_count","state"}] (new). Each costs one manifest read. */
int lh_catalog_versions(lh_catalog *c, const char *name, int64_t from, int64_t limit, json_t **out,
                        lh_err *err);
/* {"datasets", "load_ms", "load_errors", "from_checkpoint", "manifests_read"} and, with
 * checkpoints on, "checkpoint" (the newest one's number, or null) and
 * "checkpoint_ignored" (why the one found at open was not used; only when it was not)
 * (new). */
json_t *lh_catalog_stats(lh_catalog *c);

/* ---- what a principal may see (visible.c) ------------------------------------------- */

/* The one rule of invariant 11: a principal sees a dataset when it may use the dataset's
 * bucket (lh_auth_bucket). Every door asks one of these; a dataset it may not see is
 * answered as one that does not exist. */
bool lh_catalog_may_see_bucket(const lh_principal *who, const char *bucket);
/* The same with the manifest (or summary) of the dataset: its "bucket". */
bool lh_catalog_may_see_manifest(const lh_principal *who, const json_t *manifest);
/* Whether dataset `name` exists (live or deleted) and who may see it. Takes the lock. */
bool lh_catalog_may_see(lh_catalog *c, const lh_principal *who, const char *name);
/* Whether dataset `name` is known (lh_catalog_get would answer it) and who may not see it:
 * what a door asks of things derived from a dataset (its indexes), without copying the
 * dataset's manifest. Takes the lock. */
bool lh_catalog_hides(lh_catalog *c, const lh_principal *who, const char *name);
/* lh_catalog_get for a door: the dataset as who sees it — one in a bucket who may not use
 * is the same 404 dataset_not_found (same message and hint) as a name nothing defines. */
int lh_catalog_get_visible(lh_catalog *c, const lh_principal *who, const char *name, json_t **out,
                           lh_err *err);
/* lh_catalog_list for a door: only the datasets who may see (new array). */
json_t *lh_catalog_list_visible(lh_catalog *c, const lh_principal *who, const lh_catalog_filter *f);
/* A page of versions of a dataset who may see (else 404 as lh_catalog_get_visible):
 * {"dataset", "versions": lh_catalog_versions from..from+limit-1, "next_from": the next
 * page's from, or null after the latest} (new). from >= 1, limit 1..1000 (400 otherwise). */
int lh_catalog_versions_visible(lh_catalog *c, const lh_principal *who, const char *name,
                                int64_t from, int64_t limit, json_t **out, lh_err *err);
/* The journal as who sees it (every door asks these, not the functions below them):
 * a page of events (f->limit 1..10000, f->offset from a cursor; f->since/until ISO 8601
 * dates or times, else 400): {"events", "next_cursor": "o<N>" or null} (new), the
 * dataset's events only when f->dataset is given and who may see it (404 as
 * lh_catalog_get_visible), all datasets' only for a principal not limited to buckets
 * (else 403 naming dataset=); values of fields above who's clearance masked. */
typedef struct lh_events_filter lh_events_filter; /* below, with lh_catalog_events */
int lh_catalog_events_visible(lh_catalog *c, const lh_principal *who, lh_events_filter *f,
                              json_t **out, lh_err *err);
/* One record's history (lh_catalog_record_history), masked for who. */
int lh_catalog_history_visible(lh_catalog *c, const lh_principal *who, const char *name,
                               const char *key_text, json_t **out, lh_err *err);
/* The change feed between two versions (lh_catalog_changes), masked for who: from 0..latest
 * (0: before the first), to 1..latest (0: the latest), limit 1..1000000 (400 otherwise). */
int lh_catalog_changes_visible(lh_catalog *c, const lh_principal *who, const char *name,
                               int64_t from, int64_t to, int64_t limit, json_t **out, lh_err *err);
/* That 404 dataset_not_found, for a door that found the dataset invisible itself. */
int lh_catalog_not_found(lh_err *err, const char *name);
/* True for an admin limited to no buckets: it sees every dataset and relation. */
bool lh_catalog_sees_all(const lh_principal *who);
/* lh_catalog_may_see_bucket as an lh_bucket_access_fn (ctx: the lh_principal). */
bool lh_catalog_bucket_access(void *principal, const char *bucket);

/* A principal's view of the users' engine: what each name of the registry is to it.
 * Fill one per request with lh_catalog_view_init and put the resolver it returns in the
 * query's options (lh_query_opts.resolver, lh_scan_opts.resolver); the view must stay
 * where it is (the resolver points at it) until lh_catalog_view_free. */
typedef struct lh_catalog_view {
    lh_catalog *catalog;
    const lh_principal *who; /* borrowed */
    lh_resolver resolver;
    char *view_key;
} lh_catalog_view;
/* Returns the resolver for who (borrowed from v), or NULL when who sees every name as
 * registered (lh_catalog_sees_all; also when c is NULL). Datasets resolve as registered
 * when who may see them, else they are absent; lakehouse's own relations ('_' + name) as
 * their guard says (absent without one). */
const lh_resolver *lh_catalog_view_init(lh_catalog_view *v, lh_catalog *c, const lh_principal *who);
void lh_catalog_view_free(lh_catalog_view *v); /* accepts NULL */
/* Append the quoted names of the datasets v sees ('a', 'b'), or NULL when none, for an
 * IN list of a guard's rewrite. Takes the catalog's lock. */
void lh_catalog_view_datasets_sql(const lh_catalog_view *v, lh_buf *out);

/* A guard decides what one of lakehouse's own relations ('_' + name, registered with
 * lh_engine_set_dataset) is to a principal's view: absent, as registered, or a SELECT
 * written into out that wraps `select` (rows of the datasets v sees, typed NULLs for
 * masked columns). Runs while a statement binds (see lh_resolver): quick, no engine
 * call. The catalog guards `_events` itself. */
typedef lh_resolved (*lh_catalog_guard_fn)(void *ctx, const lh_catalog_view *v, const char *select,
                                           lh_buf *out);
#define LH_CATALOG_EVENTS_VIEW "_events"
/* Set (fn NULL: clear) the guard of relation; at most 16 relations. Set before queries
 * run and cleared after the last (ctx must outlive them). */
void lh_catalog_set_guard(lh_catalog *c, const char *relation, lh_catalog_guard_fn fn, void *ctx);

/* ---- writing ----------------------------------------------------------------------- */

typedef struct lh_txn lh_txn;
/* Start changing dataset `name` (valid name or 400). When another local writer of the
 * same dataset is at work, wait for it (jobs) or fail with 409 dataset_busy (request
 * handlers, so HTTP threads never queue behind a long ingest). Returns new: end it with
 * lh_catalog_commit or lh_catalog_abort. */
int lh_catalog_begin(lh_catalog *c, const char *name, bool wait, lh_txn **out, lh_err *err);
/* The dataset's newest manifest (borrowed; NULL when the dataset does not exist). */
const json_t *lh_txn_current(const lh_txn *t);
/* True when the dataset exists and is not deleted. */
bool lh_txn_live(const lh_txn *t);
/* The version lh_catalog_commit will write: above the current one and above any newer
 * version in the bucket that could not be read at start (whose number is never reused). */
int64_t lh_txn_next_version(const lh_txn *t);
/* Write `manifest` (takes ownership, even on failure) as the next version in `bucket`
 * (for a new dataset; an existing one stays in its bucket), update the index and the
 * view, and end the transaction. *committed (may be NULL) gets a copy. 409
 * manifest_conflict when another writer committed that version first. */
int lh_catalog_commit(lh_txn *t, const char *bucket, json_t *manifest, json_t **committed,
                      lh_err *err);
void lh_catalog_abort(lh_txn *t); /* accepts NULL */

/* The next three fail with 409 dataset_busy instead of waiting for another writer. */
/* Metadata-only change as a new version: owner, sensitivity, description, tags,
 * freshness_sla_s (validated here: 400 naming the field). */
int lh_catalog_patch(lh_catalog *c, const char *name, const json_t *patch, const char *actor,
                     json_t **committed, lh_err *err);
/* A tombstone version: the view disappears, data files stay until a sweep. */
int lh_catalog_delete(lh_catalog *c, const char *name, const char *actor, json_t **committed,
                      lh_err *err);
/* Re-read the Parquet footers of the dataset's files and write their true row counts,
 * sizes and columns as a new version (change "resync"). */
int lh_catalog_resync(lh_catalog *c, const char *name, const char *actor, json_t **committed,
                      lh_err *err);
/* Resync every live dataset whose manifest lacks counts or columns, or whose files'
 * sizes differ from the manifest. Returns {"checked", "resynced": [names], "errors"}. */
json_t *lh_catalog_resync_missing(lh_catalog *c, const char *actor);

/* Remove data files under datasets/{name}/data/ of every bucket that no manifest version
 * references (leftovers of a crash between a data put and its commit, or of datasets
 * whose manifests are gone) and that are older than grace_s (so another server's ingest
 * in flight is never touched). With dry_run, only reports. Datasets being written are
 * skipped (reported as errors). Returns {"removed": [{"bucket","key","bytes"}],
 * "removed_bytes", "kept_young", "errors", "dry_run", "grace_s"} (new). */
json_t *lh_catalog_sweep(lh_catalog *c, int64_t grace_s, bool dry_run);

/* Validate and normalise dataset metadata given by a client (owner, sensitivity,
 * description, tags, freshness_sla_s). Returns 0 and fills *out (new) or 400. */
int lh_catalog_check_metadata(const json_t *in, json_t **out, lh_err *err);

/* ---- column governance (columns.c) ------------------------------------------------- */

/* Each column's metadata lives in the dataset's metadata under "columns": {"<column>":
 * {"sensitivity": level, "mask": "null"|"hash", "suggested_sensitivity": level,
 * "suggestion_reason": text}}. PATCH sets sensitivity and mask (lh_catalog_patch); ingest
 * records suggestions, which change nothing until an owner sets the sensitivity. A column
 * without a sensitivity of its own has the dataset's. */

/* Add to each entry of manifest.columns its effective "sensitivity" and what
 * metadata.columns holds for it (mask, suggestion). For answers, never for a manifest to
 * commit. */
void lh_catalog_describe_columns(json_t *manifest);

/* The masking a reader of `clearance` (LH_LEVEL_*) needs on manifest's columns: NULL when
 * none (clearance 0: lakehouse's own work; pii: everything visible; or no column above
 * it: the common case, decided without visiting the columns when none has metadata),
 * else {"<column>": "null"|"hash"} (new). */
json_t *lh_catalog_mask_plan(const json_t *manifest, int clearance);
/* Mask row {"<column>": value, ...} in place by plan (borrowed; NULL: nothing). */
void lh_catalog_mask_row(lh_catalog *c, const json_t *plan, json_t *row);

/* The SQL name of the keyed hash the users' engine defines (lh_engine_opts.mask_key). */
#define LH_MASK_HASH_FN LH_ENGINE_MASK_HASH_FN
/* Masking in SQL. For dataset m (a manifest) read by a reader of `clearance`, wrap
 * `select` (borrowed: the dataset's rows, one column per manifest column) as
 *   SELECT "a", CAST(NULL AS <type>) AS "b", lh_mask_hash(CAST("c" AS VARCHAR)) AS "c"
 *   FROM (<select>) AS lh_masked
 * masking each column above the clearance with a typed NULL, or with mask "hash" by
 * HMAC-SHA256 under the server's key as 64 hex digits (equal values stay equal, so joins
 * on the column still work; the key stays in the engine). Returns 0 and *out = NULL when
 * nothing needs masking (use `select` as it is), 1 and *out (new) otherwise. */
int lh_catalog_masked_select_of(const json_t *manifest, int clearance, const char *select,
                                char **out);
/* The same for dataset `name` of the catalog (404 when it does not exist); the clearance
 * check comes first, so a reader with clearance pii costs no lookup. */
/* Whether columns may be masked for `who` (a clearance below pii): its SQL then needs the
 * resolver even when it sees every bucket. */
bool lh_catalog_masks(const lh_principal *who);
int lh_catalog_masked_select(lh_catalog *c, const char *name, int clearance, const char *select,
                             char **out, lh_err *err);
/* Mask, for a reader of `clearance`, the column values in an answer of
 * lh_catalog_record_history ("current", each "row", each change's old/new of a masked
 * field: the field stays, its values become null or their hash) or lh_catalog_changes
 * (inserted, updated before/after, deleted) of dataset `name`, in place. */
int lh_catalog_mask_history(lh_catalog *c, const char *name, int clearance, json_t *answer,
                            lh_err *err);
/* Mask old_value/new_value of the events (lh_catalog_events rows) whose field is a masked
 * column of their dataset, in place. */
void lh_catalog_mask_events(lh_catalog *c, int clearance, json_t *events);

/* 400 metadata_required naming each field of [catalog] require that neither client_meta
 * (borrowed, may be NULL) nor, for an existing dataset, current's metadata (may be NULL)
 * has (a non-empty string or list, or a number). 0 when none is missing. */
int lh_catalog_check_required(lh_catalog *c, const json_t *client_meta, const json_t *current,
                              lh_err *err);
/* The same for a door, before it accepts an ingest of dataset `name` (its live manifest, if
 * any, counts): refuses early what the ingest itself would refuse. */
int lh_catalog_require_for(lh_catalog *c, const char *name, const json_t *client_meta, lh_err *err);
/* Likely personal data among `columns` ([{"name","type"}]) of the local Parquet file
 * local_parquet (which the internal engine may read): by name (email, phone, ssn, iban,
 * first_name, date_of_birth, address, ...) and by the shapes of the first 200 values of
 * text and whole-number columns (e-mail addresses, phone numbers, Luhn-valid 13-19 digit
 * numbers, SSN-like ddd-dd-dddd; 80% of at least 3 non-empty values). *out (new):
 * {"<column>": {"suggested_sensitivity": "pii", "suggestion_reason": "name" | "values:
 * email" | "name, values: email"}}. One DuckDB statement; none when no column is text. */
int lh_catalog_suggest_sensitivity(lh_catalog *c, const char *local_parquet, const json_t *columns,
                                   json_t **out, lh_err *err);
/* Record suggestions (as from lh_catalog_suggest_sensitivity) in metadata meta.columns. */
void lh_catalog_apply_suggestions(json_t *meta, const json_t *suggestions);

/* ---- rows -------------------------------------------------------------------------- */

/* True for files holding rows of the dataset (kinds "base" and "delta"). */
bool lh_catalog_file_has_rows(const json_t *file);
/* Remove the "events" file of a manifest (each version lists only its own commit's). */
void lh_catalog_drop_events(json_t *manifest);
/* The SELECT giving manifest m's rows: its base files, merging its delta files on read
 * (the newest row of each primary key wins; deletes hide keys). paths[i] is the local
 * path of m.files[i] (NULL for files without rows). Returns new. */
char *lh_catalog_rows_sql(const json_t *m, char *const *paths);

/* The events journal: every committed mutation. A change of rows (row changes, a replace
 * of a dataset with a primary key) is one event per changed field; a change of a whole
 * dataset (create, append, replace, delete) one event with key and field NULL. Filters are exact
 * matches (NULL: any); key is the key's JSON text ({"id":42}); since and until bound ts (ISO 8601;
 * since inclusive, until exclusive). Ordered by time, dataset, version, seq. Returns rows (new):
 * {"dataset","key","field","old_value", "new_value" (JSON text or null),"op" (insert|update|delete,
 * or create|append|replace| delete for a dataset-level event),"actor","ts","source",
 * "workspace_id","version","seq"}. */
typedef struct lh_events_filter {
    const char *dataset, *key, *field, *actor, *workspace_id, *since, *until;
    int64_t max_version; /* > 0: only versions up to it */
    int64_t limit, offset;
} lh_events_filter;
int lh_catalog_events(lh_catalog *c, const lh_events_filter *f, json_t **out, lh_err *err);

/* A dataset-level event: a change of a whole dataset (create, append, replace, delete),
 * journaled as one event with key and field NULL. before/after (borrowed, may be NULL)
 * become old_value/new_value as JSON text: what the version brought (rows, row_count) and,
 * for a replace journaled whole, why. */
typedef struct lh_dataset_event {
    const char *dataset, *op;                  /* op: create|append|replace|delete */
    const char *actor, *source, *workspace_id; /* may be NULL */
    const json_t *before, *after;
    int64_t version; /* the version the change becomes */
} lh_dataset_event;
/* Write the events batch holding event e (one row, the journal's columns) to the local
 * Parquet file `path` with the internal engine. The caller stores it under
 * lh_layout_events_key and lists it in version e->version's manifest as kind "events". */
int lh_catalog_write_dataset_event(lh_catalog *c, const lh_dataset_event *e, const char *path,
                                   lh_err *err);
/* [catalog] max_diff_rows: a replace that changes more rows of a dataset with a primary
 * key is journaled as one dataset-level event instead of the changed fields. */
int64_t lh_catalog_max_diff_rows(lh_catalog *c);

/* Time travel: the manifest (new) of dataset `name` at a version, or at a time (the
 * newest version created at or before it; ISO 8601). 404 version_not_found /
 * dataset_not_found when the dataset had no such version, did not exist yet or was
 * deleted then; 400 for a time that does not parse. */
typedef struct lh_as_of {
    int64_t version; /* used when timestamp is NULL */
    const char *timestamp;
} lh_as_of;
int lh_catalog_manifest_at(lh_catalog *c, const char *name, const lh_as_of *at, json_t **out,
                           lh_err *err);

/* Time travel for one query, for every door: the statements that make `sql` see datasets
 * as they were, to run first on the query's own connection (lh_query_opts.prelude).
 * as_of (borrowed) is what the client gave: {"version": N} or {"timestamp": "..."} for
 * every dataset sql reads (as DuckDB's parser lists them), and/or {"datasets": {"name":
 * {...}}} for the datasets named there, read or not; any number of them. Each becomes a
 * CREATE TEMP VIEW of the same name over that version's files, which stay pinned in the
 * cache until lh_catalog_as_of_free. may_read(ctx, bucket) (NULL: everything) says
 * whether the caller may read datasets of a bucket; others are 404 as if absent.
 * Errors: 400 invalid_parameter naming the part of as_of at fault; 404 dataset_not_found
 * or version_not_found (lh_catalog_manifest_at). Returns new (lh_catalog_as_of_free). */
typedef struct lh_as_of_views lh_as_of_views;
typedef bool (*lh_bucket_access_fn)(void *ctx, const char *bucket);
int lh_catalog_as_of(lh_catalog *c, const json_t *as_of, const char *sql,
                     lh_bucket_access_fn may_read, void *ctx, int clearance, lh_as_of_views **out,
                     lh_err *err);
/* The statements (*n of them); valid until lh_catalog_as_of_free. */
const char *const *lh_as_of_views_sql(const lh_as_of_views *v, size_t *n);
void lh_catalog_as_of_free(lh_as_of_views *v); /* accepts NULL; unpins the files */

/* One record's history: every version that changed it, with who, when, what changed and
 * the row after; key_text is the value of a one-column key or a JSON object of all key
 * columns. {"dataset","key","version","current": row|null,"history": [{"version","at",
 * "actor","source","workspace_id","op","changes": [{"field","old","new"}],"row"}]} (new). */
int lh_catalog_record_history(lh_catalog *c, const char *name, const char *key_text, json_t **out,
                              lh_err *err);
/* Rows inserted, updated (before/after) and deleted between two versions (from 0: before
 * the first; to <= 0: the latest), at most `limit` in all. {"dataset","from_version",
 * "to_version","inserted": [row],"updated": [{"before","after"}],"deleted": [row],
 * "truncated"} (new). Needs a primary key. */
int lh_catalog_changes(lh_catalog *c, const char *name, int64_t from, int64_t to, int64_t limit,
                       json_t **out, lh_err *err);

/* Local copies of m's files (m a manifest of a dataset of this catalog), pinned in the
 * cache until lh_catalog_unpin_rows; *paths (new, *n entries) suits lh_catalog_rows_sql. */
int lh_catalog_pin_rows(lh_catalog *c, const json_t *m, char ***paths, size_t *n, lh_err *err);
void lh_catalog_unpin_rows(lh_catalog *c, char **paths, size_t n); /* accepts NULL */

/* Helpers for writers: the local path of a data file of `bucket` (fs: in place; remote:
 * a cached copy), and the schema of a local Parquet file as [{"name","type"}]. */
int lh_catalog_schema_of(lh_catalog *c, const char *local_parquet, json_t **columns, lh_err *err);
const char *lh_catalog_work_dir(lh_catalog *c);

#endif
