/*
 * ingest_int.h — what the ingest paths (files, PostgreSQL) share: opening a write to a
 * dataset, storing converted Parquet files, the schema check, the metadata and lineage
 * of a new version, and the commit. Private to src/ingest/.
 *
 * A write goes: lh_ingest__begin → lh_ingest__store (once per data file) →
 * lh_ingest__commit, and always lh_ingest__end. Until the commit succeeds every stored
 * file is deleted again by lh_ingest__end, so a failed ingest leaves no visible trace;
 * when the commit's answer is uncertain (the manifest may exist after all) the files are
 * left for the sweep instead of deleted under a manifest that may point at them.
 */
#ifndef LH_INGEST_INT_H
#define LH_INGEST_INT_H

#include "ingest/ingest.h"

/* A change of rows: like append (the dataset must exist, its files stay), but deltas
 * already there are no obstacle. */
#define LH_INGEST__CHANGE ((lh_ingest_mode)(LH_INGEST_REPLACE + 1))

typedef struct lh_ingest__target {
    lh_catalog *cat;
    lh_buckets *buckets;
    const char *dataset;
    lh_ingest_mode mode;
    lh_txn *txn;        /* open until commit or end */
    const json_t *cur;  /* the live manifest (borrowed from txn) or NULL */
    char bucket[80];    /* where the dataset lives or will live */
    json_t *new_files;  /* [{"path","bytes","rows","kind"}] stored by this write */
    bool keep_files;    /* commit done or uncertain: do not delete new_files */
    char tag[40];       /* "{epoch_us}-{random}": names this write's data files */
    const char *change; /* the version's "change" (NULL: the mode's name) */
    int64_t row_count;  /* the new version's rows when known otherwise (-1: sum of files) */
} lh_ingest__target;

/* Begin a write of `dataset` in `mode`: takes the dataset's writer slot (waits when
 * `wait`, else 409 dataset_busy), checks the mode against the dataset's existence (409
 * dataset_exists / 404 dataset_not_found), resolves the bucket (an existing dataset stays
 * where it is: 409 dataset_elsewhere when `bucket` names another) and asks allow_bucket.
 * *t is filled even on failure, so lh_ingest__end(t) is always right. */
int lh_ingest__begin(lh_catalog *cat, lh_buckets *buckets, const char *dataset,
                     const char *bucket, lh_ingest_mode mode, bool wait,
                     bool (*allow_bucket)(void *, const char *), void *allow_ctx,
                     lh_ingest__target *t, lh_err *err);

/* Store the local Parquet file `local_path` (rows rows) as the next data file of the
 * write and record it in t->new_files. The local file is not removed. */
int lh_ingest__store(lh_ingest__target *t, const char *local_path, int64_t rows, lh_err *err);
/* The same with the object's key (NULL: the next data file's) and kind given. */
int lh_ingest__store_as(lh_ingest__target *t, const char *local_path, const char *key,
                        const char *kind, int64_t rows, lh_err *err);

/* 0 when `got` has the same columns (names, order, types) as `have`; else 400
 * schema_mismatch naming the first difference. `what` names the new side ("the file"). */
int lh_ingest__check_schema(const json_t *have, const json_t *got, const char *what,
                            lh_err *err);

/* Commit the stored files as a new version: for append the dataset's files plus the new
 * ones, else only the new ones. client_meta (validated; may be NULL) and lineage (takes
 * ownership; NULL keeps the current lineage) go into the metadata. Ends the transaction.
 * *committed (new) on success. */
int lh_ingest__commit(lh_ingest__target *t, const json_t *columns, const json_t *client_meta,
                      json_t *lineage, const char *actor, json_t **committed, lh_err *err);

/* End the write: abort the transaction if still open, delete stored files that no
 * commit took. Accepts a target whose begin failed. */
void lh_ingest__end(lh_ingest__target *t);

const char *lh_ingest__mode_name(lh_ingest_mode m);

#endif
