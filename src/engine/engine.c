/*
 * engine.c — DuckDB database lifetime, the sandbox, the watchdog thread, and the one
 * place DuckDB errors at open/ping become lh_err.
 *
 * DuckDB's duckdb_database is thread-safe; each caller takes its own connection.
 */
#include "engine/engine_int.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG_TICK_MS 20

/* libduckdb's own jemalloc (DuckDB allocates its buffers there) exports its mallctl.
 * Weak: with a libduckdb that does not, the allocator keeps DuckDB's defaults. */
extern int duckdb_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                             size_t newlen) __attribute__((weak));

/* How long freed DuckDB memory stays with the allocator for reuse before it goes back to
 * the system (DuckDB's own default is 1 s). */
#define ALLOC_DECAY_MS 10000

/* Keep the memory a statement frees for the next one. By default DuckDB returns it to
 * the system about 1 s after it is freed, and each database's worker threads purge
 * their allocator arena after 0.5 s idle. In a process with two databases (ours) whose
 * workers idle between requests, that purges every arena between two ingests, so every
 * conversion started on cold memory: twice the page faults of a standalone DuckDB
 * (~25k against ~11k for the 21 MB demo CSV) and ~1.7x its time. Background allocator
 * threads (allocator_background_threads, below) replace the idle purges, and purge
 * after ALLOC_DECAY_MS instead of 1 s, also while the server idles. */
static void
allocator_decay_once(void)
{
    if (duckdb_je_mallctl == NULL)
        return;
    ssize_t ms = ALLOC_DECAY_MS;
    duckdb_je_mallctl("arenas.dirty_decay_ms", NULL, NULL, &ms, sizeof ms);
    duckdb_je_mallctl("arenas.muzzy_decay_ms", NULL, NULL, &ms, sizeof ms);
    unsigned n = 0;
    size_t len = sizeof n;
    if (duckdb_je_mallctl("arenas.narenas", &n, &len, NULL, 0) != 0)
        return;
    for (unsigned i = 0; i < n; i++) { /* arenas that exist already */
        char name[48];
        snprintf(name, sizeof name, "arena.%u.dirty_decay_ms", i);
        duckdb_je_mallctl(name, NULL, NULL, &ms, sizeof ms);
        snprintf(name, sizeof name, "arena.%u.muzzy_decay_ms", i);
        duckdb_je_mallctl(name, NULL, NULL, &ms, sizeof ms);
    }
}

static int
engine_error(lh_err *err, const char *what, const char *detail)
{
    lh_err_set(err, LH_EIO, 500, "engine_unavailable", "could not %s the query engine", what);
    if (detail)
        lh_err_detail(err, "%s", detail);
    return LH_EIO;
}

static void *
watchdog_main(void *arg)
{
    lh_engine *eng = arg;
    pthread_mutex_lock(&eng->stop_lock);
    while (!eng->stopping) {
        /* no query running: sleep until one starts (idle wake-ups are not free, least
         * of all on a virtual machine) */
        if (atomic_load(&eng->n_watched) == 0) {
            eng->watchdog_idle = true;
            pthread_cond_wait(&eng->stop_cond, &eng->stop_lock);
            eng->watchdog_idle = false;
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCHDOG_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&eng->stop_cond, &eng->stop_lock, &ts);
        if (!eng->stopping) {
            pthread_mutex_unlock(&eng->stop_lock);
            lh_engine__watchdog_scan(eng);
            pthread_mutex_lock(&eng->stop_lock);
        }
    }
    pthread_mutex_unlock(&eng->stop_lock);
    return NULL;
}

void
lh_engine__watchdog_wake(lh_engine *eng)
{
    /* only from its idle sleep: while queries run it ticks anyway, and waking it for
     * every query is a context switch each (3% of a trivial query's time) */
    pthread_mutex_lock(&eng->stop_lock);
    if (eng->watchdog_idle)
        pthread_cond_broadcast(&eng->stop_cond);
    pthread_mutex_unlock(&eng->stop_lock);
}

/* Settings that make user SQL harmless. Applied on a connection; they are database-wide
 * and lock_configuration comes last so nothing can change them afterwards. */
static int
sandbox(lh_engine *eng, const lh_engine_opts *opts, lh_err *err)
{
    duckdb_connection con = NULL;
    lh_buf dirs;
    lh_buf_init(&dirs);
    int rc = 0;
    if (duckdb_connect(eng->db, &con) == DuckDBError) {
        rc = engine_error(err, "connect to", NULL);
        goto out;
    }
    lh_buf_puts(&dirs, "SET allowed_directories = [");
    for (const char *const *d = opts->allowed_dirs; d && *d; d++) {
        if (d != opts->allowed_dirs)
            lh_buf_puts(&dirs, ", ");
        lh_sql_quote(&dirs, *d);
    }
    lh_buf_puts(&dirs, "]");
    const char *steps[] = {
        dirs.data, "SET enable_external_access = false", "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false", "SET allow_community_extensions = false",
        /* data files are write-once: their footers can be cached safely,
         * so binding a view does not re-read every file's metadata */
        "SET parquet_metadata_cache = true", "SET lock_configuration = true", NULL};
    for (int i = 0; steps[i]; i++) {
        duckdb_result r;
        if (duckdb_query(con, steps[i], &r) == DuckDBError)
            rc = engine_error(err, "sandbox", duckdb_result_error(&r));
        duckdb_destroy_result(&r);
        if (rc != 0)
            goto out;
    }
out:
    lh_buf_free(&dirs);
    duckdb_disconnect(&con);
    return rc;
}

/* Spill under opts->spill_dir, capped at opts->spill_bytes. The folder belongs to this
 * engine alone (each engine has its own: DuckDB names its spill files the same in every
 * database), so what a crash left in it is removed first. */
static int
spill_config(duckdb_config config, const lh_engine_opts *opts, lh_err *err)
{
    int rc = lh_mkdirs(opts->spill_dir, err);
    if (rc != 0)
        return rc;
    DIR *dir = opendir(opts->spill_dir);
    for (struct dirent *e; dir && (e = readdir(dir)) != NULL;) {
        if (strncmp(e->d_name, "duckdb_temp", 11) != 0)
            continue;
        char *path = lh_sprintf("%s/%s", opts->spill_dir, e->d_name);
        unlink(path);
        free(path);
    }
    if (dir)
        closedir(dir);
    char cap[48];
    snprintf(cap, sizeof cap, "%lld bytes",
             (long long)(opts->spill_bytes > 0 ? opts->spill_bytes : 0));
    if (duckdb_set_config(config, "temp_directory", opts->spill_dir) == DuckDBError ||
        duckdb_set_config(config, "max_temp_directory_size", cap) == DuckDBError)
        return engine_error(err, "configure", "the spill folder or its cap was refused");
    return 0;
}

int
lh_engine_open(const lh_engine_opts *opts, lh_engine **out, lh_err *err)
{
    static pthread_once_t decay_once = PTHREAD_ONCE_INIT;
    duckdb_config config = NULL;
    char *open_msg = NULL;
    lh_engine *eng = NULL;
    int rc = 0;
    pthread_once(&decay_once, allocator_decay_once);
    if (duckdb_create_config(&config) == DuckDBError) {
        rc = engine_error(err, "configure", NULL);
        goto out;
    }
    duckdb_set_config(config, "allocator_background_threads", "true");
    if (opts->threads > 0) {
        char value[16];
        snprintf(value, sizeof value, "%d", opts->threads);
        duckdb_set_config(config, "threads", value);
    }
    if (opts->memory_limit && opts->memory_limit[0])
        duckdb_set_config(config, "memory_limit", opts->memory_limit);
    if (opts->spill_dir && (rc = spill_config(config, opts, err)) != 0)
        goto out;
    eng = lh_calloc(1, sizeof *eng);
    eng->user_sql = opts->user_sql;
    atomic_init(&eng->catalog_generation, 0);
    pthread_mutex_init(&eng->watch_lock, NULL);
    pthread_mutex_init(&eng->writers_lock, NULL);
    pthread_mutex_init(&eng->pool_lock, NULL);
    pthread_mutex_init(&eng->stop_lock, NULL);
    pthread_cond_init(&eng->stop_cond, NULL);
    lh_engine__slots_init(eng, opts);
    lh_engine__relations_init(eng);
    if (duckdb_open_ext(opts->path, &eng->db, config, &open_msg) == DuckDBError) {
        rc = engine_error(err, "open", open_msg);
        goto out;
    }
    lh_engine__relations_attach(eng);
    if ((rc = sandbox(eng, opts, err)) != 0 || (rc = lh_engine__load_reserved(eng, err)) != 0)
        goto out;
    if (opts->mask_key && (rc = lh_engine__define_mask_hash(eng, opts->mask_key, err)) != 0)
        goto out;
    if (pthread_create(&eng->watchdog, NULL, watchdog_main, eng) != 0) {
        rc = engine_error(err, "start", "could not start the query watchdog");
        goto out;
    }
    eng->watchdog_started = true;
out:
    duckdb_free(open_msg);
    duckdb_destroy_config(&config);
    if (rc != 0) {
        lh_engine_close(eng);
        return rc;
    }
    *out = eng;
    return 0;
}

void
lh_engine_close(lh_engine *eng)
{
    if (eng == NULL)
        return;
    if (eng->watchdog_started) {
        pthread_mutex_lock(&eng->stop_lock);
        eng->stopping = true;
        pthread_cond_broadcast(&eng->stop_cond);
        pthread_mutex_unlock(&eng->stop_lock);
        pthread_join(eng->watchdog, NULL);
    }
    lh_engine__pool_close(eng);
    if (eng->db)
        duckdb_close(&eng->db);
    lh_engine__free_reserved(eng);
    pthread_cond_destroy(&eng->stop_cond);
    pthread_mutex_destroy(&eng->stop_lock);
    pthread_mutex_destroy(&eng->watch_lock);
    pthread_mutex_destroy(&eng->writers_lock);
    pthread_mutex_destroy(&eng->pool_lock);
    lh_engine__slots_destroy(eng);
    lh_engine__relations_free(eng);
    free(eng);
}

const char *
lh_engine_version(void)
{
    return duckdb_library_version();
}

int
lh_engine_ping(lh_engine *eng, lh_err *err)
{
    duckdb_connection con = NULL;
    duckdb_result result;
    bool have_result = false;
    int rc = 0;
    if (duckdb_connect(eng->db, &con) == DuckDBError) {
        rc = engine_error(err, "connect to", NULL);
        goto out;
    }
    have_result = true;
    if (duckdb_query(con, "SELECT 40 + 2", &result) == DuckDBError)
        rc = engine_error(err, "query", duckdb_result_error(&result));
    else if (duckdb_value_int64(&result, 0, 0) != 42)
        rc = engine_error(err, "verify", "SELECT 40 + 2 did not return 42");
out:
    if (have_result)
        duckdb_destroy_result(&result);
    duckdb_disconnect(&con);
    return rc;
}

/* ---- internal statements ---------------------------------------------------------------- */

int
lh_engine__fault(lh_err *err)
{
    if (!lh_fault_hit(LH_FAULT_ENGINE))
        return 0;
    lh_err_set(err, LH_EIO, 500, "engine_error", "the query engine failed");
    lh_err_detail(err, "injected fault");
    return LH_EIO;
}

/* DuckDB error for an internal statement: still classified, so a bad CSV in an ingest is
 * a 400, not a 500. */
int
lh_engine__internal_error(lh_err *err, duckdb_result *r)
{
    duckdb_error_type type = duckdb_result_error_type(r);
    const char *msg = duckdb_result_error(r);
    switch (type) {
    case DUCKDB_ERROR_CONVERSION:
    case DUCKDB_ERROR_INVALID_INPUT:
    case DUCKDB_ERROR_PARSER:
    case DUCKDB_ERROR_BINDER:
    case DUCKDB_ERROR_CATALOG:
    case DUCKDB_ERROR_INVALID_TYPE:
    case DUCKDB_ERROR_MISMATCH_TYPE:
    case DUCKDB_ERROR_OUT_OF_RANGE:
        lh_err_set(err, LH_EINVAL, 400, "invalid_data", "the data could not be read");
        break;
    case DUCKDB_ERROR_OUT_OF_MEMORY:
        lh_err_set(err, LH_ENOMEM, 503, "engine_out_of_memory", "the engine ran out of memory");
        break;
    case DUCKDB_ERROR_INTERRUPT:
        lh_err_set(err, LH_ECANCELED, 409, "cancelled", "the operation was cancelled");
        break;
    default:
        lh_err_set(err, LH_EIO, 500, "engine_error", "the query engine failed");
        break;
    }
    lh_err_detail(err, "%s", msg ? msg : "(no message)");
    return err ? err->rc : LH_EIO;
}

/* Run exactly one statement (never a script: text that came from a file or a manifest
 * must not be able to smuggle in a second statement). The text is parsed once to count
 * its statements, then run with duckdb_query: preparing it instead would bind twice, and
 * binding a read_csv runs the sniffer (about +25% on a large ingest). *r is filled when
 * *have_result (destroy it then). */
static int
run_one(duckdb_connection con, const char *sql, duckdb_result *r, bool *have_result, lh_err *err)
{
    duckdb_extracted_statements stmts = NULL;
    int rc = 0;
    *have_result = false;
    idx_t n = duckdb_extract_statements(con, sql, &stmts);
    if (n != 1) {
        const char *e = n == 0 ? duckdb_extract_statements_error(stmts) : NULL;
        lh_err_set(err, LH_EINVAL, 400, "invalid_data", "the data could not be read");
        lh_err_detail(err, "%s",
                      n == 0 ? (e ? e : "no statement")
                             : "an internal statement held several statements");
        rc = LH_EINVAL;
    } else if ((rc = lh_engine__fault(err)) == 0) {
        *have_result = true;
        if (duckdb_query(con, sql, r) == DuckDBError)
            rc = lh_engine__internal_error(err, r);
    }
    duckdb_destroy_extracted(&stmts);
    return rc;
}

/* An internal statement may change views: the catalog generation moves before it runs and
 * again after it ended, so no statement a pooled connection prepared in between is used
 * again (pool.c), and idle connections let go of the statements they kept and of the
 * files those hold open. */
void
lh_engine__views_changed(lh_engine *eng)
{
    atomic_fetch_add(&eng->catalog_generation, 1);
    lh_engine__pool_sweep(eng);
}

static int
exec_internal(lh_engine *eng, const char *sql, int64_t *changed, lh_err *err)
{
    duckdb_connection con = NULL;
    duckdb_result r;
    bool have = false;
    int rc = 0;
    if (duckdb_connect(eng->db, &con) == DuckDBError) {
        rc = engine_error(err, "connect to", NULL);
        goto out;
    }
    if ((rc = run_one(con, sql, &r, &have, err)) != 0)
        goto out;
    if (changed)
        *changed = (int64_t)duckdb_rows_changed(&r);
out:
    if (have)
        duckdb_destroy_result(&r);
    duckdb_disconnect(&con);
    return rc;
}

int
lh_engine_exec(lh_engine *eng, const char *sql, int64_t *changed, lh_err *err)
{
    lh_engine__views_changed(eng);
    int rc = exec_internal(eng, sql, changed, err);
    lh_engine__views_changed(eng);
    return rc;
}

/* Run a SELECT on con and return its rows as a JSON array of objects (new). */
static int
rows_on(duckdb_connection con, const char *sql, json_t **out, lh_err *err)
{
    char *wrapped = lh_sprintf("SELECT CAST(to_json(lh_r) AS VARCHAR) FROM (\n%s\n) AS lh_r", sql);
    duckdb_result r;
    bool have = false;
    json_t *rows = json_array();
    int rc = run_one(con, wrapped, &r, &have, err);
    if (rc != 0)
        goto out;
    idx_t n = duckdb_row_count(&r);
    for (idx_t i = 0; i < n; i++) {
        char *text = duckdb_value_varchar(&r, 0, i);
        json_t *row = text ? json_loads(text, 0, NULL) : NULL;
        duckdb_free(text);
        json_array_append_new(rows, row ? row : json_null());
    }
out:
    if (have)
        duckdb_destroy_result(&r);
    free(wrapped);
    if (rc != 0) {
        json_decref(rows);
        return rc;
    }
    *out = rows;
    return 0;
}

int
lh_engine_rows(lh_engine *eng, const char *sql, json_t **out, lh_err *err)
{
    duckdb_connection con = NULL;
    int rc = 0;
    if (duckdb_connect(eng->db, &con) == DuckDBError)
        rc = engine_error(err, "connect to", NULL);
    else
        rc = rows_on(con, sql, out, err);
    duckdb_disconnect(&con);
    return rc;
}

void
lh_sql_quote(lh_buf *out, const char *s)
{
    lh_buf_append(out, "'", 1);
    for (; *s; s++) {
        if (*s == '\'')
            lh_buf_append(out, "'", 1);
        lh_buf_append(out, s, 1);
    }
    lh_buf_append(out, "'", 1);
}

bool
lh_sql_mentions(const char *sql, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = sql; (p = strcasestr(p, name)) != NULL; p += n) {
        bool before = p > sql && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool after = isalnum((unsigned char)p[n]) || p[n] == '_';
        if (!before && !after)
            return true;
    }
    return false;
}

void
lh_sql_quote_or_null(lh_buf *out, const char *s)
{
    if (s)
        lh_sql_quote(out, s);
    else
        lh_buf_puts(out, "CAST(NULL AS VARCHAR)");
}

int
lh_engine_row(lh_engine *eng, const char *sql, json_t **out, lh_err *err)
{
    json_t *rows = NULL;
    int rc = lh_engine_rows(eng, sql, &rows, err);
    if (rc == 0) {
        json_t *first = json_array_get(rows, 0);
        *out = first ? json_incref(first) : json_null();
    }
    json_decref(rows);
    return rc;
}

void
lh_sql_ident(lh_buf *out, const char *name)
{
    lh_buf_append(out, "\"", 1);
    for (; *name; name++) {
        if (*name == '"')
            lh_buf_append(out, "\"", 1);
        lh_buf_append(out, name, 1);
    }
    lh_buf_append(out, "\"", 1);
}

int
lh_engine_define_view(lh_engine *eng, const char *name, const char *const *paths, size_t n_paths,
                      const char *empty_columns, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "CREATE OR REPLACE VIEW ");
    lh_sql_ident(&sql, name);
    if (n_paths > 0) {
        lh_buf_puts(&sql, " AS SELECT * FROM read_parquet([");
        for (size_t i = 0; i < n_paths; i++) {
            if (i)
                lh_buf_puts(&sql, ", ");
            lh_sql_quote(&sql, paths[i]);
        }
        /* files of a dataset share one schema (append checks it): no union_by_name,
         * which would cost plans their pushdowns */
        lh_buf_puts(&sql, "])");
    } else {
        /* no files: an empty relation with the dataset's columns */
        lh_buf_printf(&sql, " AS SELECT %s WHERE false",
                      empty_columns && empty_columns[0] ? empty_columns : "NULL AS \"empty\"");
    }
    int rc = lh_engine_exec(eng, sql.data, NULL, err);
    lh_buf_free(&sql);
    return rc;
}

int
lh_engine_drop_view(lh_engine *eng, const char *name, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "DROP VIEW IF EXISTS ");
    lh_sql_ident(&sql, name);
    int rc = lh_engine_exec(eng, sql.data, NULL, err);
    lh_buf_free(&sql);
    return rc;
}

/* Run sql on con, reporting progress (may be NULL: then it runs like run_one). */
static int
watch_on(duckdb_connection con, const char *sql, int64_t *changed, lh_progress_fn progress,
         void *ctx, lh_err *err)
{
    duckdb_prepared_statement prep = NULL;
    duckdb_pending_result pending = NULL;
    duckdb_result r;
    bool have_result = false;
    int rc = 0;
    if (progress == NULL) {
        if ((rc = run_one(con, sql, &r, &have_result, err)) == 0 && changed)
            *changed = (int64_t)duckdb_rows_changed(&r);
        goto out;
    }
    if (duckdb_prepare(con, sql, &prep) == DuckDBError) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_data", "the data could not be read");
        lh_err_detail(err, "%s", duckdb_prepare_error(prep));
        rc = LH_EINVAL;
        goto out;
    }
    if ((rc = lh_engine__fault(err)) != 0)
        goto out;
    if (duckdb_pending_prepared(prep, &pending) == DuckDBError) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_data", "the data could not be read");
        lh_err_detail(err, "%s", duckdb_pending_error(pending));
        rc = LH_EINVAL;
        goto out;
    }
    int64_t next_report = lh_mono_us();
    bool cancelled = false;
    for (;;) {
        duckdb_pending_state st = duckdb_pending_execute_task(pending);
        if (st == DUCKDB_PENDING_RESULT_READY || st == DUCKDB_PENDING_ERROR)
            break;
        if (lh_mono_us() >= next_report) {
            duckdb_query_progress_type p = duckdb_query_progress(con);
            if (progress(ctx, (int64_t)p.rows_processed, (int64_t)p.total_rows_to_process) != 0 &&
                !cancelled) {
                duckdb_interrupt(con);
                cancelled = true;
            }
            next_report = lh_mono_us() + 100000;
        }
    }
    /* executing the pending result also yields the typed error when a task failed */
    have_result = true;
    if (duckdb_execute_pending(pending, &r) == DuckDBError)
        rc = cancelled
                 ? lh_err_set(err, LH_ECANCELED, 409, "cancelled", "the operation was cancelled")
                 : lh_engine__internal_error(err, &r);
    else if (changed)
        *changed = (int64_t)duckdb_rows_changed(&r);
out:
    if (have_result)
        duckdb_destroy_result(&r);
    duckdb_destroy_pending(&pending);
    duckdb_destroy_prepare(&prep);
    return rc;
}

int
lh_engine_exec_watch(lh_engine *eng, const char *sql, int64_t *changed, lh_progress_fn progress,
                     void *ctx, lh_err *err)
{
    /* conversions (COPY ... TO a file) only: no views change here */
    duckdb_connection con = NULL;
    int rc = 0;
    if (duckdb_connect(eng->db, &con) == DuckDBError)
        rc = engine_error(err, "connect to", NULL);
    else
        rc = watch_on(con, sql, changed, progress, ctx, err);
    duckdb_disconnect(&con);
    return rc;
}

int
lh_engine_exec_then_rows(lh_engine *eng, const char *sql, int64_t *changed, lh_progress_fn progress,
                         void *ctx, const char *then_sql, json_t **then_rows, lh_err *err)
{
    /* conversions only, like lh_engine_exec_watch: no views change here */
    duckdb_connection con = NULL;
    int rc = 0;
    if (duckdb_connect(eng->db, &con) == DuckDBError)
        rc = engine_error(err, "connect to", NULL);
    else if ((rc = watch_on(con, sql, changed, progress, ctx, err)) == 0)
        rc = rows_on(con, then_sql, then_rows, err);
    duckdb_disconnect(&con);
    return rc;
}
