/*
 * ingest.h — loading data into datasets: files (CSV, JSON, NDJSON, Parquet) and
 * PostgreSQL tables or queries, all through one commit path (ingest_common.c).
 */
#ifndef LH_INGEST_H
#define LH_INGEST_H

#include "catalog/catalog.h"
#include "core/core.h"

typedef enum { LH_INGEST_CREATE, LH_INGEST_APPEND, LH_INGEST_REPLACE } lh_ingest_mode;

/* What a CSV ingest does with rows whose field count disagrees with the header. */
typedef enum { LH_BAD_ROWS_ERROR, LH_BAD_ROWS_SKIP, LH_BAD_ROWS_NULL_PAD } lh_bad_rows;

typedef struct lh_ingest_file_opts {
    const char *dataset;
    const char *bucket; /* for a new dataset; NULL: the primary bucket */
    const char *format; /* "csv", "json", "ndjson", "parquet" */
    lh_ingest_mode mode;
    const char *src_path; /* local file the engine can read; not removed */
    int64_t src_bytes;
    const json_t *metadata;    /* validated by lh_catalog_check_metadata; may be NULL */
    const char *source_object; /* lineage: the file's name as the client gave it */
    const char *actor;
    lh_bad_rows on_bad_rows; /* CSV: error (default), skip or null_pad */
    lh_job *job;             /* progress goes here when set */
    /* when set: may the caller use this bucket? Checked inside the transaction, on the
     * bucket the dataset really lives in. */
    bool (*allow_bucket)(void *ctx, const char *bucket);
    void *allow_ctx;
} lh_ingest_file_opts;

/* Convert the file to zstd Parquet, check the schema against the dataset for append,
 * store the data file and commit a new manifest version. On any failure nothing becomes
 * visible: no version is written and the stored data file is removed. A CSV whose rows
 * disagree with its header is 400 ragged_rows unless o->on_bad_rows says otherwise.
 * *result (new): {"dataset","version","rows","total_rows","columns","files","timings_ms"}
 * and, when rows were skipped or padded, "bad_rows": {"count","action","first_lines"}. */
int lh_ingest_file(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets,
                   const lh_ingest_file_opts *o, json_t **result, lh_err *err);
int lh_ingest_mode_parse(const char *s);     /* -1 when unknown */
int lh_ingest_bad_rows_parse(const char *s); /* "error", "skip", "null_pad"; -1 when unknown */

/* ---- PostgreSQL ------------------------------------------------------------------------ */

typedef enum { LH_PG_COPY, LH_PG_CURSOR } lh_pg_method;

typedef struct lh_ingest_db_opts {
    const char *dataset;
    const char *bucket; /* for a new dataset; NULL: the primary bucket */
    lh_ingest_mode mode;
    const char *dsn;          /* URI or key=value (PQconninfoParse); may hold a password */
    const char *password;     /* from a secret_ref; overrides the DSN's; NULL: none */
    const char *table;        /* "schema.table" or "table" ... */
    const char *query;        /* ... or a SELECT (exactly one of the two) */
    const char *since_column; /* incremental: only rows newer than the last watermark */
    int64_t batch_rows;       /* rows per Parquet file; <= 0: LH_PG_BATCH_ROWS */
    lh_pg_method method;
    /* streams that read a table at once, each a connection in the same snapshot
     * (1..LH_PG_MAX_PARALLEL); <= 0: lh_ingest_db_parallel_default() */
    int parallel;
    const json_t *metadata; /* validated by lh_catalog_check_metadata; may be NULL */
    const char *actor;
    lh_job *job; /* progress goes here when set */
    bool (*allow_bucket)(void *ctx, const char *bucket);
    void *allow_ctx;
} lh_ingest_db_opts;

#define LH_PG_BATCH_ROWS 250000
#define LH_PG_MAX_BATCH_ROWS 50000000
#define LH_PG_MAX_PARALLEL 16

/* The streams a table is read with when neither request nor configuration says: half
 * the cores, at least 1 and at most 4. A stream keeps about two cores busy (a server
 * backend when PostgreSQL is local, the reader, the converter's DuckDB); more streams
 * than that only add contention (bench/pg_ingest: on two cores, two streams were 20-60%
 * slower than one). */
int lh_ingest_db_parallel_default(void);

/* Check a DSN without connecting: syntax (libpq's parser) and keys (those that would make
 * the server read its own files — passfile, service, ssl key/cert paths — are refused).
 * 400 invalid_dsn naming the problem; the password never appears in err. */
int lh_ingest_db_check_dsn(const char *dsn, lh_err *err);

/* Passwords named by secret_ref, from the secrets file ([ref] password = "..."). The file
 * is read on first use and again whenever it changes (lstat: inode, size, mode, owner,
 * mtime, ctime), so a rotated password needs no restart; every read is checked like
 * lh_secrets_open (mode 0600, our owner, no symlink). Thread-safe. */
typedef struct lh_ingest_secrets lh_ingest_secrets;
/* Returns new (free with lh_ingest_secrets_free); the file is not read yet. path is
 * copied. */
lh_ingest_secrets *lh_ingest_secrets_new(const char *path);
void lh_ingest_secrets_free(lh_ingest_secrets *s); /* accepts NULL */
/* The password of secret_ref `ref` (new in *out; free with lh_free_secret). 400
 * invalid_secret_ref naming the ref when the file is missing, refused or not valid TOML,
 * or has no [ref] with a string password; the detail says which, never a value. */
int lh_ingest_secret_password(lh_ingest_secrets *s, const char *ref, char **out, lh_err *err);

/* Read the table or query from one REPEATABLE READ READ ONLY snapshot, streamed
 * (COPY ... TO STDOUT or a server-side cursor), converting every batch_rows rows to a
 * zstd Parquet file while the next batch arrives, then commit one manifest version whose
 * lineage names the source as postgresql://user:***@host:port/db with the table or query,
 * the snapshot time and, with since_column, the new watermark. Failures leave no new
 * version and no stored file. Errors: 400 invalid_dsn / source_auth_failed /
 * invalid_query / query_not_select / schema_mismatch, 403 source_permission_denied, 404
 * source_table_not_found, 502 source_unreachable / source_connection_lost. *result (new):
 * {"dataset","version","rows","total_rows","columns","files","source","snapshot_at",
 *  "watermark","method","parallel","timings_ms"}; with since_column and no newer rows, no
 * version is written and the result says "unchanged": true. A table is read by up to
 * o->parallel streams, each a connection that imported the leader's snapshot and reads a
 * ctid range of the table (PostgreSQL 14 or later); "parallel" is {"requested",
 * "streams"} and, when fewer streams were used than requested, "reason". Memory: two
 * batches per stream. */
int lh_ingest_db(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets, const lh_ingest_db_opts *o,
                 json_t **result, lh_err *err);

/* ---- a door's ingest (ingest_as.c) ------------------------------------------------------ */

/* What a door's ingest needs; all borrowed, and must outlive the jobs it starts. */
typedef struct lh_ingest_deps {
    lh_catalog *catalog;
    lh_engine *engine; /* the internal engine: it reads the uploads */
    lh_buckets *buckets;
    lh_jobs *jobs;              /* for lh_ingest_task_submit (NULL: none) */
    lh_ingest_secrets *secrets; /* secret_ref passwords (NULL: none configured) */
} lh_ingest_deps;

/* A checked ingest, ready to run now or as a job: it owns copies of everything it needs
 * (the principal and its buckets, the upload, the DSN and password), so it may outlive the
 * request and its principal set; its secrets are wiped and its upload removed when it is
 * freed. */
typedef struct lh_ingest_task lh_ingest_task;

/* A file ingest as who asks it. params (a JSON object): "dataset", "format" (csv, json,
 * ndjson, parquet), and optionally "mode" (create, append, replace), "bucket",
 * "on_bad_rows" (csv only), "source_object" and a new dataset's metadata as PATCH takes it
 * ("owner", "sensitivity", "description", "tags", "freshness_sla_s", "source_system",
 * "primary_key"). 400 invalid_parameter naming an unknown or wrong field, 403 for a bucket
 * who may not use, 404 for an unknown one, 400 empty_body when bytes is 0, and the
 * catalog's required metadata. *path: the uploaded file (bytes long); on success the task
 * takes it (*path becomes NULL; removed when the task is freed). *out new. */
int lh_ingest_file_prepare(const lh_ingest_deps *d, const lh_principal *who, const json_t *params,
                           char **path, int64_t bytes, lh_ingest_task **out, lh_err *err);
/* Every check lh_ingest_file_prepare makes but the upload's: a door that receives the file
 * after its parameters refuses a bad request before spooling a byte. */
int lh_ingest_file_check(const lh_ingest_deps *d, const lh_principal *who, const json_t *params,
                         lh_err *err);
/* A PostgreSQL ingest as who asks it: body holds the fields of POST /ingest/db (docs/API.md)
 * but "async", which is the door's. The same errors, plus lh_ingest_db_check_dsn's and a
 * secret_ref's (its password is read here). cfg: the [ingest] pg_parallel default. The
 * caller wipes body's strings (the DSN may hold a password). *out new. */
int lh_ingest_db_prepare(const lh_ingest_deps *d, const lh_principal *who, const lh_config *cfg,
                         const json_t *body, lh_ingest_task **out, lh_err *err);
/* Run it now (job: where progress goes, or NULL): lh_ingest_file or lh_ingest_db with who
 * as the actor and who's buckets. *result as theirs. t stays the caller's. */
int lh_ingest_task_run(lh_ingest_task *t, lh_job *job, json_t **result, lh_err *err);
/* Queue it as a job of who (kind "ingest" or "ingest_db"), its result the job's. Takes t,
 * whatever the outcome (503 when the queue is full or there is no pool). */
int lh_ingest_task_submit(lh_ingest_task *t, char id[LH_JOB_ID_MAX], lh_err *err);
void lh_ingest_task_free(lh_ingest_task *t); /* accepts NULL */

/* ---- row changes ----------------------------------------------------------------------- */

/* What an upsert may do to a key: insert or update it (the default), only insert a new
 * one (409 row_exists when it is there), or only update one that is there (404
 * row_not_found otherwise). Checked in the snapshot the change is made on. */
typedef enum { LH_ROWS_UPSERT = 0, LH_ROWS_INSERT_ONLY, LH_ROWS_UPDATE_ONLY } lh_rows_mode;

typedef struct lh_rows_opts {
    const char *dataset;
    const json_t *upsert;     /* array of row objects (borrowed; may be NULL) */
    const json_t *deletes;    /* array of key objects (borrowed; may be NULL) */
    const char *source;       /* events: where the change came from (may be NULL) */
    const char *workspace_id; /* events: the agent workspace (may be NULL) */
    const char *actor;
    bool (*allow_bucket)(void *ctx, const char *bucket);
    void *allow_ctx;
    lh_rows_mode mode; /* for the upserts */
} lh_rows_opts;

/* Apply one request's upserts and deletes to a dataset with a primary key as one delta
 * file, one events batch and one new version (see rows.c for why a crash can never
 * separate them). Fields an upsert leaves out keep their values. Never waits for another
 * writer (409 dataset_busy). Errors: 400 no_primary_key, 400 invalid_row naming the row
 * ("upsert[3]: ...") for a missing or NULL key, an unknown column, a repeated key or a
 * value of the wrong type. *result (new): {"dataset", "version", "row_count", "counts":
 * {"inserted", "updated", "deleted", "events"}}, or "unchanged": true when nothing
 * changed (deletes of absent keys only). */
int lh_ingest_rows(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets, const lh_rows_opts *o,
                   json_t **result, lh_err *err);

/* What a door's change of rows needs (rows_as.c); all borrowed. */
typedef struct lh_rows_deps {
    lh_catalog *catalog;
    lh_engine *engine; /* the internal engine */
    lh_buckets *buckets;
    lh_jobs *jobs; /* for the automatic compaction (NULL: none) */
} lh_rows_deps;
/* A change of rows as who asks it, from any door: 400 when there is nothing to change,
 * 413 too_many_rows beyond [ingest] max_rows_per_request, then lh_ingest_rows with who as
 * the actor and who's buckets (a dataset in another is 404), and, once the dataset holds
 * [catalog] compact_after_deltas delta files, a compaction job in the background. o's
 * dataset, upsert, deletes, source, workspace_id and mode are the door's. */
int lh_ingest_rows_as(const lh_rows_deps *d, const lh_principal *who, const lh_config *cfg,
                      lh_rows_opts *o, json_t **result, lh_err *err);

/* Stage a request's upserts and deletes without committing them (agent workspaces): the
 * same checks as lh_ingest_rows, then the whole rows after the change, against `base` (a
 * manifest, borrowed: the dataset's current one, with delta files staged earlier appended
 * so a later change builds on them), go to the local Parquet file delta_path with `_op`
 * and `_seq` = seq — a delta file the merge-on-read SQL (lh_catalog_rows_sql) accepts.
 * Nothing is stored or journaled; the caller keeps delta_path. o->allow_bucket is not
 * asked (the caller checks the bucket). *counts (new): {"inserted","updated","deleted",
 * "rows"} against base. */
int lh_ingest_rows_stage(lh_catalog *cat, lh_engine *eng, const lh_rows_opts *o, const json_t *base,
                         int64_t seq, const char *delta_path, json_t **counts, lh_err *err);

/* Merge the dataset's base and delta files into a new base file as a new version (change
 * "compact"): the same rows, the journal untouched. Without deltas nothing is written and
 * the result says "unchanged": true. wait: wait for another writer (jobs) instead of 409.
 * *result (new): {"dataset","version","row_count","deltas_merged","files_before",
 * "files_after"}. */
int lh_ingest_compact(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets, const char *dataset,
                      const char *actor, bool wait, json_t **result, lh_err *err);
/* Delta files a manifest lists. */
size_t lh_ingest_delta_count(const json_t *manifest);

#endif
