/*
 * catalog_int.h — the catalog's internals, shared by its files (catalog.c: the index, loading
 * and reading; manifest.c: manifest files; views.c: dataset views; commit.c: transactions;
 * metadata.c, resync.c: changes of one version; rows_sql.c: merge-on-read SQL; history.c,
 * asof.c: time travel; journal.c: the events journal; sweep.c: retention and leftovers).
 * Not for use outside src/catalog/.
 */
#ifndef LH_CATALOG_INT_H
#define LH_CATALOG_INT_H

#include "catalog/catalog.h"

#include <pthread.h>

typedef struct dataset {
    char name[LH_NAME_MAX];
    char bucket[80];
    json_t *manifest; /* newest version */
    /* the highest version number in the bucket: above manifest's when newer manifests
     * could not be read (the next commit goes above it, never onto a bad one's number) */
    int64_t newest_version;
    json_t *warnings;       /* strings about the unreadable newer versions, or NULL */
    int64_t manifest_bytes; /* size of manifest's object in the bucket; 0: not known */
    bool writing;
    char **pinned; /* cache paths the view reads */
    size_t n_pinned;
    /* rescue copies of manifest's files while its bucket is unreachable (rescue.c):
     * local paths (pinned), and the manifest they belong to (a reference), or NULL */
    char **rescue_pinned;
    json_t *rescue_of;
} dataset;

#define LH_CATALOG_MAX_GUARDS 16

struct lh_catalog {
    pthread_mutex_t lock;
    /* guards of lakehouse's own relations (visible.c), under `lock` */
    struct {
        char relation[LH_NAME_MAX + 1];
        lh_catalog_guard_fn fn;
        void *ctx;
    } guards[LH_CATALOG_MAX_GUARDS];
    size_t n_guards;
    pthread_cond_t writer_done;
    dataset **items;
    size_t n, cap;
    json_t *by_name; /* name -> its index in items */
    lh_buckets *buckets;
    lh_engine *engine; /* internal work: manifests, footers, conversions */
    lh_engine *views;  /* where users' SQL runs: the dataset views live here */
    lh_cache *cache;
    char *work_dir;
    int64_t load_ms;
    int load_errors;
    /* the events journal (journal.c): committed events batches, guarded by `lock` */
    json_t *journal; /* [{"bucket", "key", "path" (local, pinned), "dataset", "version"}] */
    int64_t retain_versions_s; /* snapshot retention for the sweep; 0: keep every version */
    int64_t max_diff_rows;     /* [catalog] max_diff_rows: see lh_catalog_max_diff_rows */
    json_t *valid_types;       /* column types DuckDB read back as themselves (a set; `lock`) */
    int load_threads;          /* manifests read at once at open (load.c) */
    /* the catalog checkpoint (checkpoint.c) */
    bool checkpoint_on;       /* [catalog] checkpoint */
    int64_t checkpoint_after; /* commits before the next one; 0: only after start */
    json_t *ckpt_datasets;    /* at open: "bucket\nname" -> the checkpoint's row */
    json_t *ckpt_batches;     /* at open: "bucket\nkey" -> true */
    int64_t ckpt_seq;         /* highest checkpoint number seen or written */
    int64_t ckpt_read_ms;     /* how long the start's checkpoint read took */
    /* buckets whose datasets could not be listed at open (names, under lock), listed again
     * every relist_interval_ms by the relister thread until they answer */
    json_t *unlisted;
    int64_t relist_interval_ms;
    pthread_t relist_thread;
    bool relist_started, relist_closing, relist_joinable;
    pthread_cond_t relist_wake;
    int64_t ckpt_used;              /* datasets taken from the checkpoint at open */
    int64_t manifests_read;         /* datasets whose manifest was read at open */
    char ckpt_ignored[160];         /* why the newest checkpoint was not used, or "" */
    int64_t commits_since_ckpt;     /* under `lock` */
    bool ckpt_wanted, ckpt_closing; /* under `lock` */
    pthread_cond_t ckpt_wake;       /* on `lock`: a checkpoint is wanted, or closing */
    pthread_t ckpt_thread;
    bool ckpt_thread_started;
    /* column governance (columns.c) */
    char *require;        /* [catalog] require: metadata fields, comma-separated, or NULL */
    uint8_t mask_key[32]; /* the key of "hash" masks; never shown */
    bool mask_key_set;
};

struct lh_txn {
    lh_catalog *cat;
    dataset *ds;
    bool created; /* ds was made for this transaction */
};

/* A string member of a JSON object, "" when missing; an integer member, 0 when missing. */
static inline const char *
str_of(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static inline int64_t
int_of(const json_t *obj, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(obj, key));
}

/* Markers for events batches whose version expired (journal.c, the sweep). */
#define LH_JOURNAL_CONFIRMED LH_LAYOUT_JOURNAL "confirmed/"

/* ---- the index (catalog.c); callers hold `lock` for the *_locked ones ---- */
dataset *lh_catalog__find_locked(lh_catalog *c, const char *name);
/* A new entry without a manifest (a dataset being created or loaded). */
dataset *lh_catalog__add_locked(lh_catalog *c, const char *name, const char *bucket);
void lh_catalog__remove_locked(lh_catalog *c, dataset *ds);
void lh_catalog__dataset_free(lh_catalog *c, dataset *ds);
/* 404 dataset_not_found for `name`, with a hint; returns LH_ENOTFOUND. */
int lh_catalog__not_found(lh_err *err, const char *name);

/* ---- reads of an unreachable bucket (rescue.c) ---- */
/* The users' engine's read check (lh_engine_set_read_check), ctx the catalog. */
int lh_catalog__read_check(void *ctx, const char *name, char **instead, bool *rescue, lh_err *err);
/* Release ds's rescue copies (caller holds `lock` or owns ds). */
void lh_catalog__rescue_release(lh_catalog *c, dataset *ds);

/* ---- manifest files (manifest.c) ---- */
/* Read manifest `version` of dataset `name` in `bucket` (new). 404 version_not_found
 * when there is no such object; 500 manifest_invalid when it is not a valid manifest. */
int lh_catalog__load_manifest(lh_catalog *c, const char *bucket, const char *name, int64_t version,
                              json_t **out, lh_err *err);
/* At open: the newest manifest of `name` that can be read, from version `newest` down.
 * Each newer one that cannot be read is journaled (lh_buckets_record_error, op
 * "load_manifest") and described in *warnings (new array of strings, or NULL when the
 * newest was read). An unreachable bucket is an error, not a reason to serve an older
 * version; so is finding no readable version. */
int lh_catalog__load_newest_valid(lh_catalog *c, const char *bucket, const char *name,
                                  int64_t newest, json_t **out, json_t **warnings, lh_err *err);
/* Write manifest m as a Parquet file in the work dir; *path_out (new) is the caller's to
 * unlink and free. */
int lh_catalog__write_manifest(lh_catalog *c, const json_t *m, char **path_out, lh_err *err);
/* The manifest JSON (new) of the records of one manifest file (rows as read back,
 * ORDER BY record, position), or NULL when no record is the 'dataset' one. */
json_t *lh_catalog__manifest_of_rows(const json_t *rows, const char *bucket);
/* Check a manifest read from a bucket: valid name, column types that DuckDB reads back as
 * themselves, paths under the dataset's own folders. 500 manifest_invalid otherwise. */
int lh_catalog__check_manifest(lh_catalog *c, const json_t *m, lh_err *err);
/* Rows (JSON objects, new) of `before 'path' after`: a statement over one local file. */
int lh_catalog__rows_of_file(lh_catalog *c, const char *before, const char *path, const char *after,
                             json_t **rows, lh_err *err);

/* ---- loading at open (load.c) ---- */
/* Call fn(ctx, i) for every i in [0, n), on up to `load_threads` threads (the caller's
 * among them; one more thread for every per_thread items), returning when all are done.
 * fn must be safe to run concurrently. */
void lh_catalog__each_parallel(lh_catalog *c, size_t n, size_t per_thread,
                               void (*fn)(void *ctx, size_t i), void *ctx);
/* Load the newest manifest of each dataset in latest (name -> N) from bucket, several
 * at a time, and add each to the index with its view; errors are logged and counted in
 * load_errors. A name the index already holds (from an earlier bucket) keeps it. */
void lh_catalog__load_datasets(lh_catalog *c, const char *bucket, const json_t *latest,
                               const json_t *sizes);

/* List bucket's datasets and journal and load them (as a start does, no checkpoint):
 * 0 with *datasets added and *errors counted, or the listing's error (nothing loaded). */
int lh_catalog__load_bucket(lh_catalog *c, const char *bucket, int64_t *datasets, int64_t *errors);

/* ---- buckets unreachable at open (relist.c) ---- */
/* Start the relister when c->unlisted holds a bucket and it is not running (idempotent);
 * stop and join it (at close). */
void lh_catalog__relist_start(lh_catalog *c);
void lh_catalog__relist_stop(lh_catalog *c);

/* ---- the catalog checkpoint (checkpoint.c) ---- */
/* At open, while the buckets are listed: read the newest checkpoint of the primary
 * bucket in one statement into ckpt_datasets and ckpt_batches; when there is none, or
 * it is damaged, of another format or inconsistent, both stay NULL and the reason is
 * logged (and kept in ckpt_ignored). */
void lh_catalog__checkpoint_read(lh_catalog *c);
/* At open, per bucket: add each dataset of latest (name -> newest N; sizes: name ->
 * bytes of that manifest) whose checkpoint entry is of that very manifest to the index,
 * and remove it from latest, leaving the datasets whose manifests must be read. */
void lh_catalog__checkpoint_apply(lh_catalog *c, const char *bucket, json_t *latest,
                                  const json_t *sizes);
/* Whether the checkpoint counted events batch `key` of `bucket` (journal.c at open). */
bool lh_catalog__checkpoint_has_batch(lh_catalog *c, const char *bucket, const char *key);
/* At the end of open: forget the checkpoint read, start the checkpoint thread and, when
 * the index differs from what the checkpoint held, ask it for a new one. */
void lh_catalog__checkpoint_start(lh_catalog *c);
/* After a commit: count it; every checkpoint_after commits ask for a checkpoint (the
 * thread writes it; the commit never waits for it). */
void lh_catalog__checkpoint_note_commit(lh_catalog *c);
/* At close: stop the thread (a checkpoint being written is finished first). */
void lh_catalog__checkpoint_stop(lh_catalog *c);
/* Add a dataset loaded at open to the index with its view (load.c; takes ownership of
 * m and warnings). bytes: its manifest object's size, 0 when not known. */
void lh_catalog__add_loaded(lh_catalog *c, const char *bucket, const char *name, int64_t newest,
                            int64_t bytes, json_t *m, json_t *warnings);

/* ---- views (views.c) ---- */
/* Local copies of m's files that hold rows (fs: in place; remote: cached and pinned),
 * NULL for the others; *out (new) is released with lh_catalog__unpin_paths. */
int lh_catalog__pin_paths(lh_catalog *c, lh_store *store, const json_t *m, char ***out,
                          lh_err *err);
void lh_catalog__unpin_paths(lh_catalog *c, const json_t *m, char **paths);
/* Release the files the dataset's view pins. */
void lh_catalog__unpin_all(lh_catalog *c, dataset *ds);
/* (Re)define the view of a live dataset, or drop it when deleted. The caller holds no
 * lock but is the dataset's only writer (or the loader). */
int lh_catalog__refresh_view(lh_catalog *c, dataset *ds, lh_err *err);

/* ---- changes (commit.c) ---- */
/* Begin a change of a live dataset without waiting (409 dataset_busy); 404 when it does
 * not exist or is deleted. */
int lh_catalog__begin_live(lh_catalog *c, const char *name, lh_txn **out, lh_err *err);
/* A new version of the current manifest, to change and commit (new). */
json_t *lh_catalog__next_of(const json_t *current, const char *change, const char *actor);

/* ---- column governance (columns.c) ---- */
/* 400 invalid_metadata unless v is {"<column>": {"sensitivity": level|null, "mask":
 * "null"|"hash"|null}}. */
int lh_catalog__check_columns_meta(const json_t *v, lh_err *err);
/* Merge a checked "columns" patch into meta.columns (null removes a field); 400
 * unknown_column naming a column `current` does not have. */
int lh_catalog__merge_columns_meta(const json_t *current, const json_t *patch, json_t *meta,
                                   lh_err *err);
/* A masked value (new): null, or with how "hash" the keyed hash of v's text. */
json_t *lh_catalog__mask_value(lh_catalog *c, const char *how, const json_t *v);

/* Journal (journal.c), at open: the keys under _journal/ of one bucket (new; a listing
 * error is logged and counted); then, once the datasets are loaded, the committed events
 * batches among each bucket's keys (keys[i]: bucket i's, NULL: none) and the `_events`
 * view. */
json_t *lh_catalog__journal_list(lh_catalog *c, const char *bucket);
void lh_catalog__journal_load(lh_catalog *c, const json_t *const *keys);
/* The same for one bucket added while serving: its batches among keys, then the view. */
void lh_catalog__journal_add_bucket(lh_catalog *c, const char *bucket, const json_t *keys);
/* The catalog's own guards (visible.c: `_events`), at open. */
void lh_catalog__guards_init(lh_catalog *c);
/* After manifest m committed: add its events batch, if it has one, and refresh the view. */
void lh_catalog__journal_add(lh_catalog *c, const json_t *m);
void lh_catalog__journal_free(lh_catalog *c);

#endif
