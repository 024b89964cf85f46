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

#include "engine/engine.h"
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
    lh_engine *eng;     /* the internal engine, for the diff of a replace (set by the caller) */
    bool no_journal;    /* the commit writes no events (compaction, or they are stored) */
    json_t *journal;    /* after the commit: what it journaled (see lh_ingest__journal) */
    /* likely personal data found in the write's first base file (lh_ingest__store_as,
     * when eng is set), recorded in the new version's metadata.columns; or NULL */
    json_t *suggestions;
    bool sampled;
    /* the columns of the file stored next, when the caller read them already (borrowed,
     * for that store only), so the sampling does not read the footer again; or NULL */
    const json_t *file_columns;
} lh_ingest__target;

/* Begin a write of `dataset` in `mode`: takes the dataset's writer slot (waits when
 * `wait`, else 409 dataset_busy), checks the mode against the dataset's existence (409
 * dataset_exists / 404 dataset_not_found), resolves the bucket (an existing dataset stays
 * where it is: 409 dataset_elsewhere when `bucket` names another) and asks allow_bucket.
 * *t is filled even on failure, so lh_ingest__end(t) is always right. */
int lh_ingest__begin(lh_catalog *cat, lh_buckets *buckets, const char *dataset, const char *bucket,
                     lh_ingest_mode mode, bool wait, bool (*allow_bucket)(void *, const char *),
                     void *allow_ctx, lh_ingest__target *t, lh_err *err);

/* Store the local Parquet file `local_path` (rows rows) as the next data file of the
 * write and record it in t->new_files. The local file is not removed. */
int lh_ingest__store(lh_ingest__target *t, const char *local_path, int64_t rows, lh_err *err);
/* The same with the object's key (NULL: the next data file's) and kind given. */
int lh_ingest__store_as(lh_ingest__target *t, const char *local_path, const char *key,
                        const char *kind, int64_t rows, lh_err *err);

/* 0 when `got` has the same columns (names, order, types) as `have`; else 400
 * schema_mismatch naming the first difference. `what` names the new side ("the file"). */
int lh_ingest__check_schema(const json_t *have, const json_t *got, const char *what, lh_err *err);

/* Commit the stored files as a new version: for append the dataset's files plus the new
 * ones, else only the new ones. client_meta (validated; may be NULL) and lineage (takes
 * ownership, also on failure; NULL keeps the current lineage) go into the metadata. Unless
 * t->no_journal (and except for a change of rows, which stores its own), the version's
 * events batch is written and stored first (lh_ingest__journal) and listed with the
 * files. Ends the transaction. *committed (new) on success. */
int lh_ingest__commit(lh_ingest__target *t, const json_t *columns, const json_t *client_meta,
                      json_t *lineage, const char *actor, json_t **committed, lh_err *err);

/* End the write: abort the transaction if still open, delete stored files that no
 * commit took. Accepts a target whose begin failed. */
void lh_ingest__end(lh_ingest__target *t);

const char *lh_ingest__mode_name(lh_ingest_mode m);

/* ---- the events journal (events.c) -------------------------------------------------------- */

/* Who made a change of rows and which version it becomes: the columns every event row
 * carries besides the values. columns: [{"name"}], the fields of the changes relation. */
typedef struct lh_ingest__events {
    const char *dataset, *actor, *source, *workspace_id; /* actor, source, workspace: may be NULL */
    int64_t version;
    const json_t *columns;
} lh_ingest__events;

/* COPY the field-level events of `changes` to the Parquet file events_path: one event per
 * changed field (inserts: every non-NULL field; deletes: every non-NULL field before;
 * updates: each field that differs), with the values as JSON text. `changes` is a SELECT
 * with, per changed key, lh_new_{i} and lh_old_{i} for column i of e->columns, lh_key (the
 * key as JSON text, see lh_ingest__key_json), lh_kind (insert|update|delete) and lh_n (the
 * key's order in the batch). *n_events gets the number of events. */
int lh_ingest__field_events(lh_engine *eng, const lh_ingest__events *e, const char *changes,
                            const char *events_path, int64_t *n_events, lh_err *err);
/* Append the key of a row as the journal writes it, CAST(to_json({'k': a.k, ...}) AS
 * VARCHAR), to sql; with b, each part is coalesce(a.k, b.k). */
void lh_ingest__key_json(lh_buf *sql, const json_t *key, const char *a, const char *b);
/* Write and store (kind "events") the events batch of the version the write is about to
 * commit: a replace of a dataset with a primary key as the field-level diff of the rows it
 * changes (unless the primary key or its columns change, or it changes more rows than
 * [catalog] max_diff_rows), everything else as one dataset-level event (op: the mode;
 * new_value {"rows" (this write's), "row_count" (after), and "diff": "skipped", "reason"
 * when a replace is journaled whole}). `rows` and `row_count` describe the new version.
 * Sets t->journal (new): {"level": "field"|"dataset", "events", and "inserted",
 * "updated", "deleted" for a diff or "reason" for a replace journaled whole}. */
int lh_ingest__journal(lh_ingest__target *t, const json_t *columns, const json_t *client_meta,
                       const json_t *lineage, const char *actor, int64_t rows, int64_t row_count,
                       lh_err *err);

/* ---- PostgreSQL's binary values (pg_binary.c) ---------------------------------------- */

/* How a column's values arrive from PostgreSQL in binary, and so which writer setter they
 * take: LH_PGW_TEXT for every type the source sends as text (text itself, enums, and the
 * values pg_describe.c casts ::text on the server). */
typedef enum lh_pg_wire {
    LH_PGW_TEXT,      /* VARCHAR */
    LH_PGW_BYTEA,     /* BLOB */
    LH_PGW_BOOL,      /* BOOLEAN */
    LH_PGW_INT2,      /* SMALLINT */
    LH_PGW_INT4,      /* INTEGER */
    LH_PGW_INT8,      /* BIGINT */
    LH_PGW_OID,       /* BIGINT */
    LH_PGW_FLOAT4,    /* FLOAT */
    LH_PGW_FLOAT8,    /* DOUBLE */
    LH_PGW_NUMERIC,   /* DECIMAL(precision, scale) */
    LH_PGW_DATE,      /* DATE */
    LH_PGW_TIME,      /* TIME */
    LH_PGW_TIMESTAMP, /* TIMESTAMP or TIMESTAMPTZ */
    LH_PGW_UUID,      /* UUID */
} lh_pg_wire;

typedef struct lh_pg_field {
    const char *name; /* for messages */
    lh_pg_wire wire;
    int precision, scale; /* LH_PGW_NUMERIC */
} lh_pg_field;

/* Set column col of w's current row from one binary value (v NULL: SQL NULL). 422
 * unconvertible_value for a value DuckDB cannot hold, 502 for one of the wrong size. */
int lh_ingest__pg_put(lh_writer *w, size_t col, const lh_pg_field *f, const char *v, int len,
                      lh_err *err);

/* A COPY ... TO STDOUT (FORMAT binary) stream being decoded. Each row's values go to the
 * writer that writer(ctx) returns at the start of that row; row_done(ctx, bytes) follows
 * each row (it may hand the writer on and make a new one). */
typedef struct lh_pg_copy {
    const lh_pg_field *fields;
    int n_fields;
    lh_writer *(*writer)(void *ctx);
    int (*row_done)(void *ctx, size_t bytes, lh_err *err);
    void *ctx;
    bool header_seen;
    bool ended; /* the end marker was read */
} lh_pg_copy;

/* Decode one CopyData message (what PQgetCopyData returned). */
int lh_ingest__pg_copy_message(lh_pg_copy *c, const char *msg, int len, lh_err *err);

/* Convert the CSV file o->src_path to the zstd Parquet file out (ingest_csv.c): rows
 * whose field count disagrees with the header are a 400 ragged_rows, or skipped or
 * padded as o->on_bad_rows says, and then *bad_rows (new) reports them ({"count",
 * "action","first_lines"}; left alone when there were none); integers past int64 stay
 * exact (DECIMAL(38,0)) or become VARCHAR. append_columns (the dataset's, for append;
 * else NULL) fix the types of the columns of the same name. *rows: rows written. */
int lh_ingest__csv_convert(lh_engine *eng, const lh_ingest_file_opts *o,
                           const json_t *append_columns, const char *out, int64_t *rows,
                           json_t **bad_rows, lh_err *err);

/* Exact numbers (ingest_csv.c), for readers that type integers past int64 DOUBLE. A
 * column such a reader typed DOUBLE is read as text and selected by the expression
 * lh_ingest__number_select appends ("... AS name"): with exact false, the text cast to
 * DOUBLE, stopping the statement on an integer of 16 or more digits; with exact true,
 * DECIMAL(38,0), stopping on anything but an integer of at most 38 digits. idx is the
 * column's position in the reader's columns. After a failed statement,
 * lh_ingest__retype_next tells from err->detail whether it stopped there and moves that
 * column on in retype ({"name": step}: 0 as read, 1 exact, 2 text); false: some other
 * error, or the column was text already. */
void lh_ingest__number_select(lh_buf *select, const char *name, size_t idx, bool exact);
bool lh_ingest__retype_next(const json_t *columns, json_t *retype, const char *detail);
/* the step after which a column is read and kept as text */
#define LH_INGEST__AS_TEXT 2

#endif
