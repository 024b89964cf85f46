/*
 * storage.h — object storage: one interface over a local folder (fs) and any
 * S3-compatible server (s3); the bucket registry with rescue reads and reachability
 * probes; the bucket error journal; the write-once append log (ADR-018).
 *
 * Keys are validated by lh_key_check before any backend sees them and can never
 * escape their bucket. Objects are never half-visible: fs writes go to a temporary file
 * that is fsynced and renamed (or linked, for create-only puts) into place; S3 puts are
 * atomic by protocol. All functions are thread-safe unless said otherwise.
 */
#ifndef LH_STORAGE_H
#define LH_STORAGE_H

#include "core/core.h"
#include "storage/layout.h"

#define LH_KEY_MAX 1024
#define LH_ETAG_MAX 80

/* ---- keys ------------------------------------------------------------------------ */

/* 0 when key is a valid object key: 1..1024 bytes of UTF-8 without NUL, control
 * characters or backslashes; no leading or trailing '/', no empty, "." or ".." segment,
 * and not under the reserved ".lh-tmp/". Otherwise 400 invalid_key saying why. */
int lh_key_check(const char *key, lh_err *err);

/* ---- one store (a bucket's backend) ------------------------------------------------- */

typedef struct lh_store lh_store;

typedef struct lh_obj_info {
    int64_t size;
    int64_t mtime_us;
    char etag[LH_ETAG_MAX]; /* opaque; changes whenever the content is replaced */
} lh_obj_info;

/* Where a get writes: a callback receiving the bytes in order. Return 0 to go on; to
 * stop, return LH_ETOOBIG (the get fails with 413 object_too_large), LH_ENOMEM (503) or
 * any other non-zero value (499 read_aborted, e.g. the client went away). */
typedef int (*lh_sink_fn)(void *ctx, const void *data, size_t len);

/* What a put reads: a buffer or an open file (read with pread, so it can be re-read
 * for retries and multipart parts; the caller keeps the descriptor). */
typedef struct lh_source {
    const void *data; /* used when fd < 0 */
    int fd;
    int64_t len;
    /* fs: the store may hard-link the whole file instead of copying it (the caller will
     * not change it afterwards, e.g. a converted file it is about to delete) */
    bool may_link;
} lh_source;

enum { LH_PUT_CREATE_ONLY = 1 };

typedef struct lh_list_entry {
    char *key;
    int64_t size;
    int64_t mtime_us;
    char etag[LH_ETAG_MAX];
} lh_list_entry;

typedef struct lh_list_page {
    lh_list_entry *entries;
    size_t n;
    char *next_cursor; /* NULL on the last page */
} lh_list_page;
void lh_list_page_free(lh_list_page *page); /* accepts NULL members */

/* Errors: LH_ENOTFOUND (no such key), LH_EEXIST (create-only lost; 409), LH_EINVAL (bad
 * key or range), LH_EPERM (the backend refused our credentials), LH_EUNAVAIL (the
 * backend cannot be reached: connection, timeout, 5xx after retries), LH_EIO (other). */

/* Get bytes [offset, offset+len) (len < 0: to the end). info is filled (may be NULL). */
int lh_store_get(lh_store *s, const char *key, int64_t offset, int64_t len, lh_sink_fn sink,
                 void *ctx, lh_obj_info *info, lh_err *err);
/* Get a whole small object into a new buffer (free), refusing objects over max_bytes. */
int lh_store_get_buffer(lh_store *s, const char *key, size_t max_bytes, lh_buf *out,
                        lh_obj_info *info, lh_err *err);
int lh_store_put(lh_store *s, const char *key, const lh_source *src, int flags, lh_obj_info *info,
                 lh_err *err);
int lh_store_put_buffer(lh_store *s, const char *key, const void *data, size_t len, int flags,
                        lh_err *err);
int lh_store_head(lh_store *s, const char *key, lh_obj_info *info, lh_err *err);
int lh_store_delete(lh_store *s, const char *key, lh_err *err);
/* Keys starting with prefix, in byte order, after cursor (exclusive), at most limit. */
int lh_store_list(lh_store *s, const char *prefix, const char *cursor, size_t limit,
                  lh_list_page *page, lh_err *err);
/* Call fn for every key starting with prefix, in byte order, a page of the listing at a
 * time. A non-zero return from fn stops the walk and is returned; a listing error is
 * returned with err set. Keys may be deleted by fn as they are seen. */
typedef int (*lh_store_each_fn)(void *ctx, const lh_list_entry *entry);
int lh_store_each(lh_store *s, const char *prefix, lh_store_each_fn fn, void *ctx, lh_err *err);
/* lh_store_each with a hint: a backend that keeps folders (fs) does not enter a folder
 * (a key prefix ending in '/') for which enter returns false, so its keys are neither read
 * nor listed — one pass, no pages. Other backends list every key under prefix: fn must
 * still pick the keys it wants. */
typedef bool (*lh_list_enter_fn)(void *ctx, const char *folder);
int lh_store_each_in(lh_store *s, const char *prefix, lh_list_enter_fn enter, void *enter_ctx,
                     lh_store_each_fn fn, void *ctx, lh_err *err);
int lh_store_copy(lh_store *s, const char *src_key, const char *dst_key, lh_err *err);
/* Check the backend answers (fs: root is a writable directory; s3: list one key). */
int lh_store_probe(lh_store *s, lh_err *err);
/* fs only: open the object's file read-only (fd returned new, close it); LH_EINVAL for
 * backends without local files. Lets the gateway send files with sendfile. */
int lh_store_open_local(lh_store *s, const char *key, int *fd_out, lh_obj_info *info, lh_err *err);
/* Remove (or with dry_run only count) the store's own temporary files that were last
 * changed before older_than_us: fs, the files in <root>/.lh-tmp that puts cut short by a
 * crash left; other backends have none (0). *files and *bytes say what went (or would). */
int lh_store_sweep_temp(lh_store *s, int64_t older_than_us, bool dry_run, int64_t *files,
                        int64_t *bytes, lh_err *err);
const char *lh_store_backend(const lh_store *s); /* "fs" or "s3" */
/* "fs:/abs/root" or "s3:http://host:port/bucket" — no credentials, safe to show. */
const char *lh_store_describe(const lh_store *s);
void lh_store_free(lh_store *s);

/* Backends. */
int lh_store_fs_open(const char *root, lh_store **out, lh_err *err);

typedef struct lh_s3_options {
    const char *endpoint; /* "http://127.0.0.1:9000" or "https://s3.eu-west-1.amazonaws.com" */
    const char *region;
    const char *bucket;
    const char *prefix; /* optional key prefix inside the bucket ("" for none) */
    bool path_style;
    bool tls_verify;
    const char *access_key_id;     /* borrowed for the call; copied */
    const char *secret_access_key; /* borrowed for the call; copied, wiped on free */
    int retries;                   /* extra attempts for transient failures */
    int64_t connect_timeout_ms;
    int64_t request_timeout_ms;  /* a request making no progress for this long fails */
    int64_t multipart_threshold; /* bytes; larger puts use multipart upload */
    int64_t part_size;
} lh_s3_options;
int lh_store_s3_open(const lh_s3_options *opt, lh_store **out, lh_err *err);

/* ---- the append log (ADR-018) ---------------------------------------------------------- */

typedef struct lh_applog lh_applog;
/* Events (JSON objects) buffer in memory and are written as one new object
 * {prefix}batch_{epoch_us:020}.jsonl when max_events are buffered, when the oldest is
 * max_age_ms old (checked by lh_applog_tick), or on lh_applog_flush. Existing objects
 * are never rewritten. When a write fails the events stay buffered (up to
 * 10 * max_events; beyond that the oldest are dropped and counted). */
lh_applog *lh_applog_new(lh_store *store, const char *prefix, int max_events, int64_t max_age_ms);
void lh_applog_free(lh_applog *log); /* does not flush */
/* Takes ownership of event. May flush (errors are reported through the return code,
 * the event is kept either way). */
int lh_applog_append(lh_applog *log, json_t *event, lh_err *err);
int lh_applog_flush(lh_applog *log, lh_err *err);
int lh_applog_tick(lh_applog *log, lh_err *err);
/* Merge every batch into one new batch (fresh timestamp, events in original order),
 * then delete the merged ones. Returns the number of batches merged in *merged. */
int lh_applog_compact(lh_applog *log, int *merged, lh_err *err);
/* Read back events, oldest first, from stored batches then the buffer; at most the
 * newest `limit`. Returns a new JSON array. */
int lh_applog_read(lh_applog *log, size_t limit, json_t **out, lh_err *err);
/* buffered events, batches written, events dropped */
void lh_applog_stats(lh_applog *log, int64_t *buffered, int64_t *written_batches, int64_t *dropped);

/* ---- the bucket registry ---------------------------------------------------------------- */

typedef struct lh_buckets lh_buckets;

/* Build every bucket from config ([storage], [[bucket]]), resolving credentials through
 * the secrets provider. Errors name the config line. Starts the probe thread and opens
 * the error journal at primary://_errors/bucket_errors/. Returns new. */
int lh_buckets_open(const lh_config *cfg, lh_buckets **out, lh_err *err);
/* Flush the error journal, stop the prober, free everything. Accepts NULL. */
void lh_buckets_close(lh_buckets *b);
/* How the [[bucket]] entries of two configurations differ, by name (new): {"added": [..],
 * "changed": [..] (same name, other settings), "removed": [..]}. */
json_t *lh_buckets_config_diff(const lh_config *old, const lh_config *now);
/* The backend ("fs", "s3") of cfg's [[bucket]] entry of that name (borrowed from cfg), or
 * NULL when there is none. */
const char *lh_buckets_config_backend(const lh_config *cfg, const char *name);
/* A reload: open the [[bucket]] entries of cfg named in names (a JSON array; each must be
 * new to the registry) and add them as tenant buckets. All or nothing: one that does not
 * open (its error names the config line) or whose name the registry already holds (409)
 * adds none. */
int lh_buckets_add_from(lh_buckets *b, const lh_config *cfg, const json_t *names, lh_err *err);

/* The store of a bucket: "primary", a tenant name, "profile:{user}" (created on demand
 * when [storage] profile_bucket is set) or the rescue bucket's name. NULL + 404 when
 * unknown. Valid until lh_buckets_close. */
lh_store *lh_buckets_get(lh_buckets *b, const char *name, lh_err *err);
lh_store *lh_buckets_primary(lh_buckets *b);
/* "primary", or the [[bucket]] that [storage] primary names (where new datasets go). */
const char *lh_buckets_primary_name(lh_buckets *b);
const char *lh_buckets_rescue_name(lh_buckets *b); /* NULL when there is none */
/* The bucket that holds the profile:{user} buckets, or NULL. */
const char *lh_buckets_profile_base_name(lh_buckets *b);
/* Iterate bucket names (profiles included once created). Names stay valid until close. */
size_t lh_buckets_count(lh_buckets *b);
const char *lh_buckets_name_at(lh_buckets *b, size_t i);

/* ---- local copies for the query engine ----------------------------------------------- */

typedef struct lh_cache lh_cache;
/* Objects of remote stores are copied into dir (keyed by store, key and ETag) so DuckDB
 * reads local files; fs objects are used in place. The cache keeps at most max_bytes,
 * evicting the least recently used copies that are not pinned. */
lh_cache *lh_cache_new(const char *dir, int64_t max_bytes);
void lh_cache_free(lh_cache *c);
/* A local path for key (new, free it). pin: keep the copy until lh_cache_unpin. */
int lh_cache_local_path(lh_cache *c, lh_store *s, const char *key, bool pin, char **path_out,
                        lh_err *err);
void lh_cache_unpin(lh_cache *c, const char *path);
/* {"entries","bytes","max_bytes","hits","misses","evictions"} (new) */
json_t *lh_cache_stats_json(lh_cache *c);
/* fs stores: the object's path on disk (new) or NULL for other backends. */
char *lh_store_fs_path(lh_store *s, const char *key);

/* The server's local folders under the data dir, and the sandboxes of its two query
 * engines: the folders each may read (lh_engine_opts.allowed_dirs). */
typedef struct lh_local_dirs {
    char *objects_dir; /* {data_dir}/cache/objects: copies of remote objects (lh_cache) */
    char *results_dir; /* {data_dir}/cache/results: Parquet answers on their way out */
    char *work_dir;    /* {data_dir}/work: uploads arriving and being converted */
    char *audit_dir;   /* {data_dir}/audit: audit records not yet shipped (src/agent) */
    int work_lock_fd;  /* holds the work folder's lock (flock) while the server runs; -1 */
    /* NULL-terminated lists of absolute folders, each ending in '/'.
     *   user:     for user SQL — in every fs bucket its datasets, events journal (the
     *             _events view), HNSW trial journal (_hnsw_trials) and audit batches
     *             (_audit, which only admins may name); objects_dir, results_dir and
     *             audit_dir.
     *   internal: for lakehouse's own statements — the same bucket folders plus vector
     *             indexes' embeddings and eval sets (which user SQL never sees: an index
     *             may be over a dataset the caller cannot read); objects_dir,
     *             audit_dir and work_dir (which user SQL must never see either).
     * Neither holds the data dir itself (admin token, journals). */
    char **user_readable;
    char **internal_readable;
} lh_local_dirs;
/* Create data_dir and the folders above in it (objects_dir is lh_cache_new's to make),
 * resolve it to an absolute path and fill *out for the buckets open now (profile buckets
 * made later are not included). The work folder belongs to this process alone: it is
 * locked (flock, held until lh_local_dirs_free) and emptied of what an earlier run left
 * there, which is logged; one another live process holds is left as it is. *out is written only on
 * success; free it with lh_local_dirs_free. Errors: the data dir cannot be created (lh_mkdirs) or
 * resolved. */
int lh_buckets_local_dirs(lh_buckets *b, const char *data_dir, lh_local_dirs *out, lh_err *err);
void lh_local_dirs_free(lh_local_dirs *d); /* accepts NULL and a zeroed struct */

/* Reads with rescue fallback: when the target is unreachable (LH_EUNAVAIL) and a rescue
 * bucket exists, the same key is read from it and *rescue_used is set. */
int lh_buckets_get_object(lh_buckets *b, const char *bucket, const char *key, int64_t offset,
                          int64_t len, lh_sink_fn sink, void *ctx, lh_obj_info *info,
                          bool *rescue_used, const char *request_id, lh_err *err);
int lh_buckets_head_object(lh_buckets *b, const char *bucket, const char *key, lh_obj_info *info,
                           bool *rescue_used, const char *request_id, lh_err *err);
/* fs targets only: an open descriptor on the object, with the same fallback. */
int lh_buckets_open_object(lh_buckets *b, const char *bucket, const char *key, int *fd_out,
                           lh_obj_info *info, bool *rescue_used, const char *request_id,
                           lh_err *err);
/* Writes never fall back: an unreachable target is a 503. */
int lh_buckets_put_object(lh_buckets *b, const char *bucket, const char *key, const lh_source *src,
                          int flags, lh_obj_info *info, const char *request_id, lh_err *err);
/* Put the local file at path (which the caller keeps, and removes if it wants): the
 * same as lh_buckets_put_object over the whole file. may_link: an fs store may
 * hard-link the file instead of copying it (the caller will not change it afterwards).
 * *bytes (may be NULL) receives the file's size on success. An unreadable file is a 500
 * work_dir_unreadable naming it. */
int lh_buckets_put_file(lh_buckets *b, const char *bucket, const char *key, const char *path,
                        bool may_link, int flags, int64_t *bytes, const char *request_id,
                        lh_err *err);
int lh_buckets_delete_object(lh_buckets *b, const char *bucket, const char *key,
                             const char *request_id, lh_err *err);
int lh_buckets_list_objects(lh_buckets *b, const char *bucket, const char *prefix,
                            const char *cursor, size_t limit, lh_list_page *page,
                            const char *request_id, lh_err *err);
/* lh_store_each through the registry: every key under prefix in byte order, a page at a
 * time, each listing through lh_buckets_list_objects (so a failure is journaled). A
 * non-zero return from fn stops the walk and is returned. */
/* lh_store_each_in through the registry (a failure is journaled like a listing's). */
int lh_buckets_each_in(lh_buckets *b, const char *bucket, const char *prefix,
                       lh_list_enter_fn enter, void *enter_ctx, lh_store_each_fn fn, void *ctx,
                       const char *request_id, lh_err *err);
int lh_buckets_each(lh_buckets *b, const char *bucket, const char *prefix, lh_store_each_fn fn,
                    void *ctx, const char *request_id, lh_err *err);

/* lh_store_sweep_temp on a bucket; a failure is journaled (op "sweep_temp"). Profile
 * buckets are views of their base bucket, which holds their temporary files. */
int lh_buckets_sweep_temp(lh_buckets *b, const char *bucket, int64_t older_than_us, bool dry_run,
                          int64_t *files, int64_t *bytes, lh_err *err);

/* Record a failed operation in the error journal (ring + append log). Not-found,
 * conflicts and invalid keys are not operational failures and are not recorded. */
void lh_buckets_record_error(lh_buckets *b, const char *bucket, const char *op, const char *key,
                             const lh_err *e, const char *request_id);

/* JSON views for the gateway (new). */
json_t *lh_buckets_list_json(lh_buckets *b);
json_t *lh_buckets_probe_all(lh_buckets *b); /* probes now */
/* Recent errors, newest first, optionally of one bucket. */
json_t *lh_buckets_errors_json(lh_buckets *b, const char *bucket, size_t limit);
int lh_buckets_errors_flush(lh_buckets *b, lh_err *err);
int lh_buckets_errors_compact(lh_buckets *b, int *merged, lh_err *err);
/* Counters for /health: buckets, unreachable buckets, buffered error events. */
json_t *lh_buckets_health_json(lh_buckets *b);

#endif
