/*
 * pg_int.h — what the files of the PostgreSQL ingest share (private to src/ingest/):
 *
 *   pg_conn.c      the DSN, the connection, the snapshot, libpq's errors and the
 *                  scrubbing of secrets from every message libpq or the server sends
 *   pg_describe.c  the source as a SELECT and how each of its columns travels
 *   pg_slices.c    how many streams read a table, and the ctid range each one reads
 *   pg_pipeline.c  the streams: rows into batches, a converter thread per stream
 *   pg_binary.c    decoding PostgreSQL's binary values (declared in ingest_int.h)
 *   ingest_pg.c    lh_ingest_db: the steps above in order, the watermark, the commit
 *
 * A source (lh_pg_src) is used by one thread at a time: the caller's, until
 * pg_pipeline.c hands each stream's source to the thread that reads it. Only
 * pg_pipeline.c starts threads.
 */
#ifndef LH_INGEST_PG_INT_H
#define LH_INGEST_PG_INT_H

#include "ingest/ingest_int.h"

#include <libpq-fe.h>

/* A parsed DSN: libpq's keywords and values with ours added (passfile=/dev/null,
 * client_encoding, application_name, connect_timeout) and the password in effect. */
typedef struct lh_pg_dsn {
    const char **keys;
    const char **values;
    size_t n;
    PQconninfoOption *opts; /* owns the parsed strings */
    char *password;         /* the effective password (lh_free_secret) or NULL */
    char *redacted;         /* postgresql://user:***@host:port/db */
} lh_pg_dsn;

/* The source: a connection inside the snapshot every row is read from. */
typedef struct lh_pg_src {
    PGconn *conn;
    lh_pg_dsn dsn;
    const char *what; /* "the table" / "the query" for messages */
} lh_pg_src;

/* One column: what PostgreSQL selects, how its binary values arrive (and the DuckDB type
 * of the batch table's column that holds them), and the DuckDB expression over that
 * column that gives the dataset's column. */
typedef struct lh_pg_col {
    char *name;    /* the dataset's column name (unique) */
    char *pg_expr; /* over lh_src.c{i} */
    lh_pg_wire wire;
    int precision, scale; /* LH_PGW_NUMERIC */
    char *wire_type;      /* DuckDB type of the batch column c{i} */
    char *duck_expr;      /* over c{i} */
} lh_pg_col;

/* ---- pg_conn.c ------------------------------------------------------------------------ */

/* Parse o->dsn (o->password, when set, overrides its password), connect and open the
 * REPEATABLE READ READ ONLY snapshot everything is read from; *snapshot_at (new) is its
 * time in UTC. The session's settings make PostgreSQL print values in forms DuckDB reads
 * back exactly. On failure s may hold a parsed DSN or a connection: lh_ingest__pg_close
 * releases both. */
int lh_ingest__pg_open(lh_pg_src *s, const lh_ingest_db_opts *o, char **snapshot_at, lh_err *err);
/* Export the snapshot of s's transaction for other connections (*id new: its name, as
 * pg_export_snapshot gives it). It stays importable while s's transaction is open. */
int lh_ingest__pg_export_snapshot(lh_pg_src *s, char **id, lh_err *err);
/* Open another connection of the same ingest (o's DSN and password, the same session
 * settings) whose REPEATABLE READ READ ONLY transaction imports the snapshot `id`
 * (SET TRANSACTION SNAPSHOT) before anything else, so it sees exactly what the leader
 * sees. n_streams only words the hint of a refused connection. On failure s may hold a
 * parsed DSN or a connection: lh_ingest__pg_close releases both. */
int lh_ingest__pg_join(lh_pg_src *s, const lh_ingest_db_opts *o, const char *id, int n_streams,
                       lh_err *err);
/* Close the connection (if still open) and wipe and free the DSN. Accepts a zeroed s. */
void lh_ingest__pg_close(lh_pg_src *s);
/* Translate a failed libpq call (res may be NULL: a connection-level failure) into err.
 * The one place that reads SQLSTATEs and libpq's words. Returns err->rc. */
int lh_ingest__pg_fail(lh_pg_src *s, const PGresult *res, const char *doing, lh_err *err);
/* res if its status is `want`; else lh_ingest__pg_fail, clear it and NULL. */
PGresult *lh_ingest__pg_check(lh_pg_src *s, PGresult *res, ExecStatusType want, const char *doing,
                              lh_err *err);
/* Run a statement (text parameters, text results) expecting `want`; else
 * lh_ingest__pg_fail. Returns the result (PQclear it) or NULL. */
PGresult *lh_ingest__pg_run(lh_pg_src *s, const char *sql, int n_params, const char *const *params,
                            ExecStatusType want, const char *doing, lh_err *err);

/* ---- pg_describe.c -------------------------------------------------------------------- */

/* The source as a SELECT (new in *out): the query as given (checked to be a SELECT, a
 * trailing ';' removed), or every column of the table, whose name PostgreSQL resolves
 * and quotes; *relid is then the table's oid (0 for a query). 400 query_not_select, 404
 * source_table_not_found. */
int lh_ingest__pg_source_sql(lh_pg_src *s, const lh_ingest_db_opts *o, char **out, Oid *relid,
                             lh_err *err);
/* Describe the columns of `src` and decide how each travels (*out new, n_out columns;
 * free with lh_ingest__pg_cols_free). Repeated names get a suffix (_2, _3, ...). */
int lh_ingest__pg_describe(lh_pg_src *s, const char *src, lh_pg_col **out, int *n_out, lh_err *err);
void lh_ingest__pg_cols_free(lh_pg_col *cols, int n); /* accepts NULL */

/* ---- pg_slices.c ---------------------------------------------------------------------- */

/* A stream reads at least this many pages (8 MiB of 8 KiB pages): below it another
 * connection costs more than it saves. */
#define LH_PG_MIN_SLICE_PAGES 1024

/* How a source is read: in `streams` slices of its `pages` pages (1: the whole source on
 * the leader's connection) and, when that is fewer than `asked`, why (new). */
typedef struct lh_pg_plan {
    int asked, streams;
    int64_t pages;
    char *reason; /* NULL when streams == asked */
} lh_pg_plan;

/* Decide how the source (a table of oid relid, or a query when relid is 0) is read:
 * at most `asked` streams, one for a query, a PostgreSQL before 14 (no TID range scans),
 * a view or foreign table, or a table too small to split (LH_PG_MIN_SLICE_PAGES per
 * stream). The table's size is read in the snapshot of s. *plan is filled on success. */
int lh_ingest__pg_plan(lh_pg_src *s, Oid relid, int asked, lh_pg_plan *plan, lh_err *err);
void lh_ingest__pg_plan_free(lh_pg_plan *plan); /* accepts a zeroed plan */
/* Streams for a table of `pages` pages when `asked` are wanted (pure; >= 1). */
int lh_ingest__pg_slice_count(int64_t pages, int asked);
/* The first page of slice i of n over `pages` pages (pure); slice n-1 has no end. */
int64_t lh_ingest__pg_slice_start(int64_t pages, int n, int i);
/* The table source src (SELECT * FROM t) limited to slice i of n (new): the rows whose
 * ctid is in [start_i, start_i+1), by a TID range scan. Every row is in exactly one slice,
 * whatever the table's size when it is read, because the first slice has no start and the
 * last no end. */
char *lh_ingest__pg_slice_sql(const char *src, int64_t pages, int n, int i);

/* ---- pg_pipeline.c -------------------------------------------------------------------- */

typedef struct lh_pg_piped {
    json_t *columns; /* the dataset's columns, from the first Parquet file (new) */
    int64_t rows, read_us, convert_us;
} lh_pg_piped;

/* Stream selects[i] from srcs[i], for each of n_streams connections in the same snapshot
 * (srcs[0] the leader), into batches while a converter thread per stream turns each batch
 * into a stored Parquet file of the write t. Stream 0 is read on the caller's thread, the
 * others on threads of their own; every stream holds at most two batches. The first
 * failure stops every stream (the others' statements are cancelled). Closes each
 * connection once its stream is read; the caller still closes srcs (their DSNs). *out is
 * filled on success only. */
int lh_ingest__pg_pipeline(lh_pg_src *srcs, char *const *selects, int n_streams,
                           const lh_pg_col *cols, int n_cols, lh_ingest__target *t, lh_catalog *cat,
                           lh_engine *eng, const lh_ingest_db_opts *o, lh_pg_piped *out,
                           lh_err *err);

#endif
