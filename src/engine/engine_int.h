/*
 * engine_int.h — internals of src/engine. Not used outside this folder.
 */
#ifndef LH_ENGINE_INT_H
#define LH_ENGINE_INT_H

#include "engine/engine.h"

#include <duckdb.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct lh_pooled lh_pooled;
typedef struct lh_reserved lh_reserved;
typedef struct slot_user slot_user;
typedef struct slot_waiter slot_waiter;
typedef struct lh_slot lh_slot;

#define LH_SLOT_NAME_MAX 72 /* a principal's name and its NUL */

struct lh_engine {
    duckdb_database db;
    /* running user queries, for the time-limit watchdog */
    pthread_mutex_t watch_lock;
    struct lh_query *watched;
    atomic_int n_watched; /* the watchdog sleeps while this is 0 */
    pthread_t watchdog;
    bool watchdog_started;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
    bool watchdog_idle; /* waiting for a query to start (under stop_lock) */
    /* open writers, found by id by the lh_writer_scan table function (writer.c) */
    pthread_mutex_t writers_lock;
    struct lh_writer *writers;
    bool writer_scan_registered;
    /* idle connections for user queries, with their prepared statements (pool.c) */
    atomic_uint_fast64_t catalog_generation; /* bumped by every internal statement */
    pthread_mutex_t pool_lock;
    lh_pooled *pool_idle;
    int pool_n_idle;
    bool pool_closed;
    /* admission checks what user SQL names (query_allow.c) */
    bool user_sql;
    /* names a dataset may not take, sorted, lowercase; read-only after open */
    lh_reserved *reserved;
    size_t n_reserved;
    /* functions whose answer is not fixed by their arguments (now, random, ...), sorted,
     * lowercase; read-only after open (query_allow.c) */
    char **changing_fns;
    size_t n_changing_fns;
    /* query slots (slots.c): the bound on user queries running at once */
    pthread_mutex_t slots_lock;
    pthread_cond_t slots_cond;
    int slots_max; /* 0: no bound */
    int slots_per_principal, slots_queue_per_principal;
    int slots_running;
    slot_user **slot_users;
    size_t n_slot_users, cap_slot_users;
    slot_waiter *slot_line;
    /* for lh_engine_load */
    atomic_int n_running, n_queued;
    atomic_llong n_cancelled, n_queue_timeouts, n_refused;
    /* datasets resolved on demand by a replacement scan (relations.c): name -> SELECT */
    pthread_rwlock_t relations_lock;
    json_t *relations;
    json_t *relation_stamps;     /* name -> the stamp of its registration (lh_reads) */
    uint64_t relations_seq;      /* the last stamp given */
    lh_read_check_fn read_check; /* under relations_lock */
    void *read_check_ctx;
};

/* Interrupt every watched query past its deadline. */
void lh_engine__watchdog_scan(lh_engine *eng);
/* A query was added to the watched list: wake the watchdog if it sleeps. */
void lh_engine__watchdog_wake(lh_engine *eng);

/* Translate the error of a failed internal statement (classified: bad data is a 400, not
 * a 500). Returns err's code. */
int lh_engine__internal_error(lh_err *err, duckdb_result *r);

/* ---- user queries (query.c, query_admit.c, query_render.c, query_scan.c) -------------- */

/* One running user query: its connection, streaming result and rendering state. Owned by
 * one thread at a time; the watchdog reads deadline_mono_us, con, out_path and max_bytes
 * and sets too_large, under watch_lock while the query is watched. */
struct lh_query {
    lh_engine *eng;
    duckdb_connection con;
    lh_pooled *pooled; /* con comes from the engine's pool (else it is the query's own) */
    bool unpoolable;   /* the query may have left state on con: close it, do not pool it */
    duckdb_result result;
    bool has_result;
    duckdb_data_chunk chunk; /* the chunk being rendered, or NULL */
    idx_t chunk_row;
    lh_query_format format;
    int64_t limit, rows;
    bool truncated, done, header_sent, footer_sent, failed;
    size_t n_cols;
    char **col_names;
    char **col_types;
    /* JSON/NDJSON rendered here from typed vectors instead of by to_json (see
     * native_type); then col_kinds holds each column's type and col_keys its
     * '"name":' text */
    bool native;
    duckdb_type *col_kinds;
    char **col_keys;
    lh_buf pending; /* rendered bytes not yet handed out */
    int64_t max_bytes, sent_bytes;
    int64_t deadline_mono_us;
    struct lh_query *watch_next; /* engine's list of running queries */
    bool watched;
    const char *out_path;       /* a Parquet result being written: watched for its size */
    atomic_bool too_large;      /* the watchdog stopped it for growing past max_bytes */
    lh_slot *slot;              /* the query slot it holds (given back when freed), or NULL */
    lh_gone_check gone;         /* asked by the watchdog whether the client is still there */
    const lh_sql_param *params; /* bound before each execution (borrowed during start) */
    size_t n_params;
    atomic_bool client_gone; /* the watchdog stopped it because the client went away */
    /* the plain table names the statement uses (lowercase; CTEs included), as
     * lh_engine__admit_names found them (lh_engine_describe's "tables"; a kept statement
     * carries them). JSON array, or NULL. */
    json_t *names;
    bool rescue_used; /* a dataset was read from rescue copies (the JSON footer says so) */
    /* the statement calls a function whose answer changes between runs (now(), random())
     * or samples rows: its answer is not fixed by what it reads (lh_reads.stable) */
    bool changing;
};

/* A new query on no connection yet, with its deadline (0: none) and max_bytes (<= 0:
 * none). Returns new (lh_query_free). */
lh_query *lh_engine__query_new(lh_engine *eng, int64_t deadline_mono_us, int64_t max_bytes);
/* The deadline of a time limit starting now (timeout_ms <= 0: none, 0). */
static inline int64_t
lh_engine__deadline(int64_t timeout_ms)
{
    return timeout_ms > 0 ? lh_mono_us() + timeout_ms * 1000 : 0;
}

/* Bind params to prep's named parameters, clearing earlier bindings first (a kept
 * statement runs again with new values). 400 invalid_parameter for a name the statement
 * does not have, a value of no supported type, or a parameter left without a value. */
int lh_engine__bind(duckdb_prepared_statement prep, const lh_sql_param *params, size_t n,
                    lh_err *err);

/* query_admit.c: the one place DuckDB errors become lh_err for user SQL. */
int lh_engine__sql_error(lh_err *err, duckdb_error_type type, const char *message);
/* The type of a prepare error, which DuckDB gives as a message prefix only. */
duckdb_error_type lh_engine__prepare_error_type(const char *message);
/* The error of the user's statement inside one of our wrappers (it was admitted on its
 * own): as lh_engine__sql_error, except that a parser error means a SELECT that does not
 * stand as a subquery (a PRAGMA or SHOW in disguise). */
int lh_engine__wrapped_error(lh_err *err, duckdb_error_type type, const char *message);
/* A prepared statement's columns, read once: DuckDB's per-column accessors
 * (duckdb_prepared_statement_column_type/_name) copy every column's type on each call, so
 * describing n columns through them costs n^2 — seconds at 10,000 columns. Every use of a
 * statement's columns goes through one of these, read right after it was prepared. */
typedef struct lh_prep_cols {
    size_t n;
    duckdb_type *types;
    char **names; /* "" where DuckDB gives none */
} lh_prep_cols;
void lh_engine__prep_cols(duckdb_prepared_statement prep, lh_prep_cols *out);
void lh_engine__prep_cols_free(lh_prep_cols *pc); /* accepts a zeroed one */
/* Fill q's column names and types from a statement's columns past its first `first`. */
void lh_engine__describe_columns(lh_query *q, const lh_prep_cols *pc, size_t first);
/* Fill q's column names and types from its executed result's columns past `first`: a
 * statement whose parameters' types DuckDB cannot tell before they are bound is described
 * at prepare time as one column "unknown" of no type. */
void lh_engine__describe_result(lh_query *q, size_t first);
/* Check sql is one SELECT on q's connection; fill the column names and types from its
 * prepared form, which goes to *keep (new) when keep is given, else is released. */
int lh_engine__admit(lh_query *q, const char *sql, duckdb_prepared_statement *keep, lh_err *err);
/* query_allow.c: on an engine that runs user SQL, check what the statement sql names
 * (parsed by DuckDB, never by us): datasets and CTEs, the allowed table functions, no
 * file as a table, nothing that shows the server's settings or paths. 403 sql_forbidden
 * naming the first thing refused; a text that does not parse gets admission's error.
 * The plain table names go to q->names. 0 at once on other engines. */
int lh_engine__admit_names(lh_query *q, const char *sql, lh_err *err);
/* The tables an admitted statement reads by name (its CTEs left out): *out new array. */
int lh_engine__names(lh_query *q, const char *sql, json_t **out, lh_err *err);
/* Read the reserved names of eng's SQL into eng->reserved (at open). */
int lh_engine__load_reserved(lh_engine *eng, lh_err *err);
void lh_engine__free_reserved(lh_engine *eng);
/* The statement without trailing blanks, comments and semicolons (new). */
char *lh_engine__trim_sql(const char *sql);
/* Add q to / remove it from the watchdog's list (unwatch accepts an unwatched q). */
void lh_engine__watch(lh_engine *eng, lh_query *q);
void lh_engine__unwatch(lh_engine *eng, lh_query *q);

/* query_render.c: rendering rows into q->pending. */
/* Whether prep's columns can all be rendered natively; fills col_kinds and col_keys when
 * so. */
bool lh_engine__native_prepare(lh_query *q, const lh_prep_cols *pc);
void lh_engine__render_header(lh_query *q);
/* error: the failure that ended the stream, or NULL. */
void lh_engine__render_footer(lh_query *q, const lh_err *error);
/* Fill q->pending with up to about `want` bytes, fetching chunks as needed. */
int lh_engine__produce(lh_query *q, size_t want, lh_err *err);
/* 413 result_too_large for q's byte limit. Returns err's code. */
int lh_engine__too_large(const lh_query *q, lh_err *err);

/* ---- slots.c: how many user queries run at once ------------------------------------ */

void lh_engine__slots_init(lh_engine *eng, const lh_engine_opts *opts);
void lh_engine__slots_destroy(lh_engine *eng);
/* Wait for a query slot as `principal` (NULL: ""), until deadline_mono_us (0: none).
 * *out new (lh_engine__slot_give). 429 too_many_queries when the principal already has
 * max_queued_per_principal waiting, 408 query_timeout past the deadline, 499 client_gone
 * when gone (may be NULL) says the client left. */
int lh_engine__slot_take(lh_engine *eng, const char *principal, int64_t deadline_mono_us,
                         const lh_gone_check *gone, lh_slot **out, lh_err *err);
void lh_engine__slot_give(lh_engine *eng, lh_slot *slot); /* accepts NULL */
/* 499 client_gone, counted as a cancellation (client_gone) or not (gone_error: the
 * watchdog counted it when it stopped the query). Returns err's code. */
int lh_engine__client_gone(lh_engine *eng, lh_err *err);
int lh_engine__gone_error(lh_err *err);

/* ---- pool.c: connections for user queries and their prepared statements ---------- */

/* An idle connection, or a new one (NULL when DuckDB refuses one). */
lh_pooled *lh_engine__pool_take(lh_engine *eng);
/* Give a connection back (accepts NULL); closed when enough are idle. */
void lh_engine__pool_give(lh_engine *eng, lh_pooled *pc);
/* The views changed (catalog_generation was bumped): idle connections drop the
 * statements they kept. */
void lh_engine__pool_sweep(lh_engine *eng);
/* Close every idle connection; later gives close theirs. */
void lh_engine__pool_close(lh_engine *eng);
duckdb_connection lh_engine__pool_con(lh_pooled *pc);
/* The statement kept under key on this connection, prepared in this catalog generation
 * (borrowed; valid until forgotten or evicted by a later keep), or NULL. */
duckdb_prepared_statement lh_engine__pool_lookup(lh_pooled *pc, const char *key,
                                                 uint64_t generation, const json_t **names);
/* Keep prep under key (takes ownership), with the generation read before it was
 * prepared and the table names it uses (q->names; a reference is taken, NULL: none);
 * the least recently used goes when full. The lookup hands the names back (borrowed). */
void lh_engine__pool_keep(lh_pooled *pc, const char *key, duckdb_prepared_statement prep,
                          uint64_t generation, json_t *names);
void lh_engine__pool_forget(lh_pooled *pc, const char *key);
/* The connection's statement sql (query_allow.c's serializer), prepared on first use
 * and kept for the connection's life (borrowed), or NULL when it does not prepare. */
duckdb_prepared_statement lh_engine__pool_serializer(lh_pooled *pc, const char *sql);
/* Close a taken connection instead of giving it back (accepts NULL). */
void lh_engine__pool_discard(lh_pooled *pc);

/* ---- relations.c: dataset names resolved on demand ------------------------------- */

/* The registry, before the database opens / once it is open / at close. */
void lh_engine__relations_init(lh_engine *eng);
void lh_engine__relations_attach(lh_engine *eng);
void lh_engine__relations_free(lh_engine *eng);
/* The resolver of the statements this thread binds (lh_query_opts.resolver; NULL or one
 * without fn: none): set before a query's statements are prepared or executed, cleared
 * (NULL) when they are. Borrowed until cleared. */
void lh_engine__resolver_set(const lh_resolver *r);
/* What the read check said while this thread bound (lh_engine_set_read_check): reset
 * before a user statement binds; after it, note_finish sets *rescue_used (may be NULL)
 * and, when rc != 0 and a read check failed, puts its error in err and returns its code
 * (else rc as it was). */
void lh_engine__note_reset(void);
/* Record, for this thread, the registered names the replacement scan resolves into r
 * (NULL: stop recording); see lh_reads. */
void lh_engine__reads_set(lh_reads *r);
int lh_engine__note_finish(int rc, bool *rescue_used, lh_err *err);
/* The views may change (engine.c): move the catalog generation and sweep idle
 * connections' kept statements. Called before and after every change. */
void lh_engine__views_changed(lh_engine *eng);

/* ---- fault injection (core.h) ----------------------------------------------------- */

/* Called where a DuckDB statement is about to run: LH_EIO 500 engine_error (what a
 * failing statement gives) when a fault test made this one fail, else 0. */
int lh_engine__fault(lh_err *err);

/* Define lh_mask_hash(VARCHAR) with the 32-byte key (copied) in eng (mask_fn.c). */
int lh_engine__define_mask_hash(lh_engine *eng, const uint8_t key[32], lh_err *err);

#endif
