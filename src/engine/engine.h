/*
 * engine.h — the DuckDB wrapper. Everything DuckDB-specific (types, error strings) stays
 * behind this header; callers see lh_err, bytes and JSON.
 *
 * The database is sandboxed once at open: external access is off except for the
 * allowed directories, extensions cannot be installed or loaded, and the configuration
 * is locked so no statement can undo any of it.
 */
#ifndef LH_ENGINE_H
#define LH_ENGINE_H

#include "core/core.h"

typedef struct lh_engine lh_engine;

typedef struct lh_engine_opts {
    const char *path;                /* NULL: in-memory database */
    int threads;                     /* DuckDB worker threads; 0: DuckDB's default */
    const char *memory_limit;        /* e.g. "4GB"; NULL: DuckDB's default */
    const char *const *allowed_dirs; /* NULL-terminated; each ends with '/' */
    /* Runs users' SQL: admission then also checks what a statement names (query_allow.c):
     * only datasets (views) and the allowed table functions, never a file. */
    bool user_sql;
    /* Where DuckDB spills what does not fit in memory (created if missing; leftover
     * spill files in it are removed at open), and at most how many bytes it may hold
     * there (0: nothing; a query that must spill fails). NULL: DuckDB's default, a .tmp
     * folder in the working directory without a cap. */
    const char *spill_dir;
    int64_t spill_bytes;
    /* user queries running at once (0: no bound); more wait for a slot within their time
     * limit, passed over while their principal holds max_queries_per_principal (0: half
     * of max_queries); a principal's query beyond max_queued_per_principal waiting ones
     * (0: no bound) is refused with 429 */
    int max_queries;
    int max_queries_per_principal;
    int max_queued_per_principal;
    /* 32 bytes, or NULL: defines the SQL function lh_mask_hash(VARCHAR) → VARCHAR,
     * HMAC-SHA256 of its argument under this key as 64 hex digits (mask_fn.c; the key is
     * copied and never appears in SQL) */
    const uint8_t *mask_key;
} lh_engine_opts;
/* The name of the function mask_key defines. */
#define LH_ENGINE_MASK_HASH_FN "lh_mask_hash"

/* Open and sandbox an engine. Returns new (lh_engine_close). Thread-safe once opened. */
int lh_engine_open(const lh_engine_opts *opts, lh_engine **out, lh_err *err);
void lh_engine_close(lh_engine *eng); /* accepts NULL */
/* The DuckDB library version, e.g. "v1.4.4". Static storage. */
const char *lh_engine_version(void);
/* Run a trivial query end to end; 0 when the engine answers. */
int lh_engine_ping(lh_engine *eng, lh_err *err);
/* Why `name` may not name a dataset in this engine's SQL, or NULL when it may: it is a
 * catalog or schema ("a catalog name"), a system view that it would shadow ("a system
 * view name"), or an SQL keyword that only works quoted ("a reserved SQL keyword").
 * Compared without case. Static storage; thread-safe. */
const char *lh_engine_reserved_name(const lh_engine *eng, const char *name);

/* Load on the user queries, for metrics. */
typedef struct lh_engine_load_stats {
    int max_running;          /* the bound (0: none) */
    int running, queued;      /* now: holding a slot, waiting for one */
    long long cancelled;      /* since start: stopped because their client went away */
    long long queue_timeouts; /* since start: waited for a slot past their time limit */
    long long refused;        /* since start: 429, their principal's line was full */
} lh_engine_load_stats;
void lh_engine_load(lh_engine *eng, lh_engine_load_stats *out);
/* Change the per-principal bounds of the query slots (as lh_engine_opts: 0 per principal
 * is half of max_queries; 0 queued is no bound) for the queries that take or wait for a
 * slot from now on; waiters are woken to re-check. Thread-safe (a configuration reload). */
void lh_engine_set_principal_limits(lh_engine *eng, int max_queries_per_principal,
                                    int max_queued_per_principal);

/* Asked (from the engine's watchdog thread, about every 20 ms, and by a query waiting for
 * a slot) whether the client of a query went away: fn(ctx) returns true then, and the
 * query is interrupted and fails with 499 client_gone. fn must be quick, must not block
 * and must take no lock of the engine; ctx must stay valid until the query is freed. */
typedef struct lh_gone_check {
    bool (*fn)(void *ctx);
    void *ctx;
} lh_gone_check;

/* ---- internal statements ------------------------------------------------------------- */
/* These run SQL that lakehouse itself composed (never user text): views, COPY into the
 * data dir, reading manifests and Parquet footers. String values must be quoted with
 * lh_sql_quote. */

/* Run one statement; *changed (may be NULL) gets DuckDB's changed-rows count (COPY). */
int lh_engine_exec(lh_engine *eng, const char *sql, int64_t *changed, lh_err *err);
/* Like lh_engine_exec, reporting progress about every 100 ms: progress(ctx, rows done,
 * rows expected) — DuckDB's estimate — and interrupting the statement when it returns
 * non-zero (the call then fails with LH_ECANCELED). */
typedef int (*lh_progress_fn)(void *ctx, int64_t done, int64_t total);
int lh_engine_exec_watch(lh_engine *eng, const char *sql, int64_t *changed, lh_progress_fn progress,
                         void *ctx, lh_err *err);
/* Like lh_engine_exec_watch (progress may be NULL), then, when the statement succeeded,
 * run then_sql (a SELECT composed by lakehouse) on the same connection — so it sees the
 * statement's temporary tables, such as the CSV reader's reject_errors — and return its
 * rows in *then_rows (new JSON array of objects; written only on success). */
int lh_engine_exec_then_rows(lh_engine *eng, const char *sql, int64_t *changed,
                             lh_progress_fn progress, void *ctx, const char *then_sql,
                             json_t **then_rows, lh_err *err);
/* Run a SELECT and return its rows as a JSON array of objects (new). For small results. */
int lh_engine_rows(lh_engine *eng, const char *sql, json_t **out, lh_err *err);
/* The first row of a SELECT as a JSON object (new), or JSON null when it has none. */
int lh_engine_row(lh_engine *eng, const char *sql, json_t **out, lh_err *err);
/* Append s as a SQL string literal ('it''s') to out. */
void lh_sql_quote(lh_buf *out, const char *s);
/* Whether `name` appears in sql as a word of its own, without case (a cheap first filter
 * before a parse: it may find a name inside a string literal or comment). */
bool lh_sql_mentions(const char *sql, const char *name);
/* lh_sql_quote, or a NULL of type VARCHAR when s is NULL. */
void lh_sql_quote_or_null(lh_buf *out, const char *s);
/* Append name as a quoted identifier ("order") to out. */
void lh_sql_ident(lh_buf *out, const char *name);
/* Make `name` a view over the Parquet files at paths (absolute local paths), replacing
 * any earlier definition; with n_paths == 0 the view is empty but keeps the columns
 * given as a select list in empty_columns ('NULL::BIGINT AS "a", NULL::VARCHAR AS "b"'). */
int lh_engine_define_view(lh_engine *eng, const char *name, const char *const *paths,
                          size_t n_paths, const char *empty_columns, lh_err *err);
int lh_engine_drop_view(lh_engine *eng, const char *name, lh_err *err);
/* Make the dataset `name` (an lh_name_valid name, or one of lakehouse's own relations:
 * '_' followed by one) resolve, in every statement that names it and finds nothing of
 * that name in DuckDB's catalog, to the rows of `select` (SQL lakehouse composed: one
 * SELECT), replacing any earlier one; select NULL removes the name. Nothing runs in
 * DuckDB: the name is bound only by the statements that use it (relations.c). Moves the
 * catalog generation like an internal statement. Errors: 400 invalid_name; an injected
 * engine fault. Copies select. Thread-safe. */
int lh_engine_set_dataset(lh_engine *eng, const char *name, const char *select, lh_err *err);
/* The read check of dataset names: asked, while a statement binds a registered name,
 * whether its rows can be read as registered. fn returns 0 to read `select` as it is, or
 * 0 with *instead (new, freed by the engine) to read that SELECT instead — with *rescue
 * set when it reads rescue copies, which the query reports (lh_query_opts.rescue_used) —
 * or an error in err: the statement fails with that error (not DuckDB's). fn runs on the
 * binding thread at every bind of a name, outside the engine's locks; it must be quick
 * when all is well. NULL fn: none. Set before queries run, cleared before ctx goes. */
typedef int (*lh_read_check_fn)(void *ctx, const char *name, char **instead, bool *rescue,
                                lh_err *err);
void lh_engine_set_read_check(lh_engine *eng, lh_read_check_fn fn, void *ctx);

/* ---- user queries ------------------------------------------------------------------ */

typedef enum { LH_QUERY_JSON, LH_QUERY_NDJSON, LH_QUERY_CSV } lh_query_format;

/* A named parameter of a user statement (`$city` in its text), bound as a typed DuckDB
 * value — never spliced into the text, so no value can change what the statement does.
 * value: a JSON string (VARCHAR), integer (BIGINT), real (DOUBLE), boolean or null;
 * anything else is a 400 invalid_parameter. Both borrowed. */
typedef struct lh_sql_param {
    const char *name; /* without the '$' */
    const json_t *value;
} lh_sql_param;

/* The resolver: how the names a statement binds through the engine's registry (datasets,
 * lakehouse's own relations such as `_events`, `_audit`; lh_engine_set_dataset) look to
 * one caller. For each such name the statement would resolve, while it binds, fn is
 * given the name (lowercase) and its registered SELECT and answers:
 *   LH_RESOLVE_ABSENT     the name is treated as absent: the statement fails exactly as
 *                         for a table nothing defines (DuckDB's own 400 "Table with name
 *                         X does not exist"), and nothing tells it from an unknown name;
 *   LH_RESOLVE_AS_IS      the registered SELECT is used;
 *   LH_RESOLVE_REWRITTEN  the SELECT fn wrote into out (empty on entry) is used instead,
 *                         a SELECT of lakehouse's own that wraps the registered one (row
 *                         filters, columns replaced by typed NULLs); never user text.
 * fn runs on the calling thread during lh_query_start / lh_query_to_parquet /
 * lh_engine_scan only, holds no lock of the engine when called, must not block for long
 * and must not call the engine. view_key names everything fn's answers depend on besides
 * the registry itself (which moves the catalog generation): statements a connection keeps
 * are keyed by it, so two callers share a kept statement only when their keys are equal
 * (NULL or "": the view of a caller without a resolver). */
typedef enum lh_resolved {
    LH_RESOLVE_ABSENT = 0,
    LH_RESOLVE_AS_IS,
    LH_RESOLVE_REWRITTEN,
} lh_resolved;
typedef lh_resolved (*lh_resolve_fn)(void *ctx, const char *name, const char *select, lh_buf *out);
typedef struct lh_resolver {
    lh_resolve_fn fn; /* NULL: every name as registered */
    void *ctx;
    const char *view_key;
} lh_resolver;

typedef struct lh_query_opts {
    const char *sql;
    lh_query_format format;
    int64_t row_limit;  /* rows beyond this are cut and reported as truncated; 0: none */
    int64_t max_bytes;  /* rendered bytes beyond this end the stream with an error */
    int64_t timeout_ms; /* the query is interrupted after this long; 0: none */
    /* statements lakehouse composed (e.g. CREATE TEMP VIEW for time travel), run first on
     * the query's own connection; they vanish with it */
    const char *const *prelude;
    size_t n_prelude;
    /* who asks: the query waits for a slot as this principal (NULL: an anonymous one);
     * the wait counts against timeout_ms */
    const char *principal;
    lh_gone_check gone; /* fn NULL: not asked */
    /* values for the statement's named parameters (borrowed until lh_query_start
     * returns); every parameter the text names must be given, and none other (400) */
    const lh_sql_param *params;
    size_t n_params;
    /* The resolver of registry names (NULL: every name as registered); see lh_resolver. */
    const lh_resolver *resolver;
    /* out (may be NULL): set when the statement read a dataset from rescue copies (the
     * read check said so; see lh_engine_set_read_check), so the caller says so */
    bool *rescue_used;
} lh_query_opts;

typedef struct lh_query lh_query;

/* Wait for a query slot as opts->principal (429 too_many_queries when its line is full,
 * 408 past the time limit, 499 when opts->gone says the client left; the slot is given
 * back by lh_query_free), then admit (one SELECT only: else 403 sql_forbidden / 400
 * invalid_sql), start, and run until
 * the first row is rendered, so that errors, timeouts (408) and an oversized first row
 * (413) are reported here, before any byte is sent. Returns new (lh_query_free). */
int lh_query_start(lh_engine *eng, const lh_query_opts *opts, lh_query **out, lh_err *err);
/* Copy up to max rendered bytes into buf. *end is set when nothing is left. If the query
 * fails mid-stream, the rendering ends with an error marker (JSON: an "error" member,
 * NDJSON: a last error line, CSV: the stream stops), *failed is set and err filled.
 * One thread at a time. */
size_t lh_query_read(lh_query *q, char *buf, size_t max, bool *end, bool *failed, lh_err *err);
/* Take a slot and admit like lh_query_start, then write the whole result (up to row_limit rows) as
 * one zstd Parquet file at path (which must be in an allowed directory). */
int lh_query_to_parquet(lh_engine *eng, const lh_query_opts *opts, const char *path, int64_t *rows,
                        lh_err *err);
void lh_query_free(lh_query *q); /* accepts NULL; interrupts nothing, just releases */

/* ---- typed rows into C ------------------------------------------------------------- */
/* For callers that need values, not rendered text (vectors, ids). A batch is one DuckDB
 * chunk (up to 2048 rows); it and everything read from it are valid during the callback
 * only. Columns must have the types the accessors name: compose the SQL with casts. */
typedef struct lh_batch lh_batch;
size_t lh_batch_rows(const lh_batch *b);
/* A VARCHAR value (not NUL-terminated; *len set) or NULL for SQL NULL. */
const char *lh_batch_str(const lh_batch *b, size_t col, size_t row, size_t *len);
/* A BIGINT/INTEGER value; false for SQL NULL. */
bool lh_batch_int(const lh_batch *b, size_t col, size_t row, int64_t *out);
/* A FLOAT[] (list) or FLOAT[d] (array) value: its floats and *dim, or NULL for SQL NULL.
 * NULL elements are not flagged: compose the SQL to find them where it matters. */
const float *lh_batch_floats(const lh_batch *b, size_t col, size_t row, size_t *dim);
/* The same for INTEGER[] / INTEGER[d]. */
const int32_t *lh_batch_ints(const lh_batch *b, size_t col, size_t row, size_t *dim);

typedef int (*lh_batch_fn)(void *ctx, const lh_batch *b);

/* What a statement's answer depended on, for a caller that keeps the answer to use it
 * again (the vector filter cache): the registered names the statement bound, each with the
 * stamp of its registration (every lh_engine_set_dataset of a name gives it a new one).
 * When stable is set, running the same text with the same parameters and the same
 * resolver view gives the same answer for as long as lh_engine_reads_current holds.
 * stable is false when the answer may change without a registration: a function whose
 * answer is not fixed by its arguments (now(), current_date, random(), ...), a sample, a
 * dataset read from rescue copies, one of lakehouse's own relations ('_' + name; their
 * guards filter per principal and their rows grow without a registration), or more than
 * LH_READS_MAX names. */
#define LH_READS_MAX 8
typedef struct lh_reads {
    bool stable;
    size_t n;
    struct {
        char name[LH_NAME_MAX];
        uint64_t stamp;
    } read[LH_READS_MAX];
} lh_reads;
/* True when every name of r is registered with the stamp r holds (r->stable is the
 * caller's to check). Takes the registry's read lock. */
bool lh_engine_reads_current(lh_engine *eng, const lh_reads *r);

typedef struct lh_scan_opts {
    const char *sql;
    int64_t timeout_ms; /* 408 after this long; 0: none */
    /* user work (a search filter): wait for a query slot as this principal, like
     * lh_query_start; NULL: work of lakehouse's own, no slot */
    const char *principal;
    /* values for the statement's named parameters, as in lh_query_opts */
    const lh_sql_param *params;
    size_t n_params;
    /* the resolver of registry names, as in lh_query_opts (NULL: every name as is) */
    const lh_resolver *resolver;
    /* out (may be NULL): set when the statement read a dataset from rescue copies (the
     * read check said so; see lh_engine_set_read_check), so the caller says so */
    bool *rescue_used;
    /* out (may be NULL): what the answer depended on (see lh_reads), filled when the scan
     * succeeds */
    lh_reads *reads;
} lh_scan_opts;
/* Run a SELECT (admitted like user SQL: one SELECT, else 400/403, so user text such as a
 * search filter may be part of it) and hand its rows to fn a batch at a time, in order;
 * a non-zero return from fn stops the scan and is returned (err as fn left it). Memory
 * is one batch. */
int lh_engine_scan(lh_engine *eng, const lh_scan_opts *opts, lh_batch_fn fn, void *ctx,
                   lh_err *err);

/* Describe a user SELECT without running it, admitted like lh_query_start (one SELECT,
 * only datasets and allowed functions: 400/403 otherwise; an unknown dataset or column is
 * DuckDB's 400). *out (new): {"params": ["city", ...] (its named parameters, each once),
 * "tables": ["candidates", ...] (what it reads by name, CTEs left out), "columns":
 * [{"name","type"}]}. A positional parameter ($1, ?) is a 400 invalid_sql: tools name
 * theirs. Takes no query slot (nothing runs). */
int lh_engine_describe(lh_engine *eng, const char *sql, json_t **out, lh_err *err);

/* A writer collects typed rows in DuckDB's own vectors and writes them out as one zstd
 * Parquet file: how data computed or decoded in C (vectors, PostgreSQL's binary rows)
 * becomes Parquet without text conversions. It holds every row until written (memory:
 * the rows in DuckDB's form). One thread at a time per writer; writers are independent
 * of each other (each has its own connection). */
typedef struct lh_writer lh_writer;
/* columns: the table's column definitions, composed by lakehouse (e.g.
 * "doc_id VARCHAR, chunk_id INTEGER, vector FLOAT[384]"). Returns new (lh_writer_free). */
int lh_writer_open(lh_engine *eng, const char *columns, lh_writer **out, lh_err *err);
/* Set column col of the current row. Every column must be set or left NULL; each setter
 * takes only the column types named, and borrows its input. */
void lh_writer_null(lh_writer *w, size_t col);
void lh_writer_str(lh_writer *w, size_t col, const char *s, size_t len); /* VARCHAR, BLOB;
                                                                           NULL s: NULL */
/* SMALLINT, INTEGER, BIGINT, or a DECIMAL's unscaled value (123.45 in DECIMAL(5,2): 12345) */
void lh_writer_int(lh_writer *w, size_t col, int64_t v);
/* a DECIMAL's unscaled value as upper * 2^64 + lower (any precision) */
void lh_writer_int128(lh_writer *w, size_t col, int64_t upper, uint64_t lower);
void lh_writer_bool(lh_writer *w, size_t col, bool v);
void lh_writer_double(lh_writer *w, size_t col, double v); /* FLOAT, DOUBLE */
/* DATE: days since 1970-01-01; INT32_MAX is infinity, -INT32_MAX -infinity */
void lh_writer_date(lh_writer *w, size_t col, int32_t days);
/* TIME: microseconds since midnight; TIMESTAMP, TIMESTAMPTZ: since 1970-01-01 00:00 UTC,
 * INT64_MAX infinity, -INT64_MAX -infinity */
void lh_writer_micros(lh_writer *w, size_t col, int64_t micros);
void lh_writer_uuid(lh_writer *w, size_t col, const uint8_t bytes[16]);      /* RFC 4122 order */
void lh_writer_floats(lh_writer *w, size_t col, const float *v, size_t dim); /* FLOAT[d] */
void lh_writer_ints(lh_writer *w, size_t col, const int32_t *v, size_t dim); /* INTEGER[d] */
/* The current row is complete. */
int lh_writer_next_row(lh_writer *w, lh_err *err);
/* Write every row appended so far to path (in an allowed directory) in row groups of
 * 8,192 rows; *rows may be NULL. */
int lh_writer_finish(lh_writer *w, const char *path, int64_t *rows, lh_err *err);
typedef struct lh_writer_copy_opts {
    int64_t row_group_size; /* <= 0: 122,880 */
    int zstd_level;         /* 0: DuckDB's default */
    bool preserve_order;    /* false lets DuckDB write row groups in parallel */
} lh_writer_copy_opts;
/* The same, writing `SELECT select_list FROM <the rows>` (NULL: every column; the
 * expressions are composed by lakehouse). A value the expressions cannot convert is a
 * 400 invalid_data with DuckDB's words in the detail. */
int lh_writer_finish_as(lh_writer *w, const char *select_list, const char *path,
                        const lh_writer_copy_opts *opts, int64_t *rows, lh_err *err);
void lh_writer_free(lh_writer *w); /* accepts NULL */

#endif
