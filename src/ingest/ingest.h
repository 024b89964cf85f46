/*
 * ingest.h — loading data into datasets: files (CSV, JSON, NDJSON, Parquet) now;
 * PostgreSQL tables and row changes build on the same commit path.
 */
#ifndef LH_INGEST_H
#define LH_INGEST_H

#include "catalog/catalog.h"
#include "core/core.h"

typedef enum { LH_INGEST_CREATE, LH_INGEST_APPEND, LH_INGEST_REPLACE } lh_ingest_mode;

typedef struct lh_ingest_file_opts {
    const char *dataset;
    const char *bucket;  /* for a new dataset; NULL: "primary" */
    const char *format;  /* "csv", "json", "ndjson", "parquet" */
    lh_ingest_mode mode;
    const char *src_path; /* local file the engine can read; not removed */
    int64_t src_bytes;
    const json_t *metadata; /* validated by lh_catalog_check_metadata; may be NULL */
    const char *source_object; /* lineage: the file's name as the client gave it */
    const char *actor;
    lh_job *job; /* progress goes here when set */
    /* when set: may the caller use this bucket? Checked inside the transaction, on the
     * bucket the dataset really lives in. */
    bool (*allow_bucket)(void *ctx, const char *bucket);
    void *allow_ctx;
} lh_ingest_file_opts;

/* Convert the file to zstd Parquet, check the schema against the dataset for append,
 * store the data file and commit a new manifest version. On any failure nothing becomes
 * visible: no version is written and the stored data file is removed. *result (new):
 * {"dataset","version","rows","bytes","columns","files"}. */
int lh_ingest_file(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets,
                   const lh_ingest_file_opts *o, json_t **result, lh_err *err);
int lh_ingest_mode_parse(const char *s); /* -1 when unknown */

#endif
