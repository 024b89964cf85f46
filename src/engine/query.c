/*
 * query.c — user SQL: starting a query on a pooled connection, handing out its rendered
 * bytes, and writing a whole result as Parquet.
 *
 * A query is admitted (query_admit.c: one SELECT), wrapped for its format and row limit,
 * prepared, executed streaming and run until its first row is rendered (query_render.c),
 * so that errors, timeouts and an oversized first row get a proper status code before any
 * byte is sent. The wrapper is composed around the user's text, never re-parsed by us;
 * the text goes inside parentheses on lines of its own, so a trailing "-- comment"
 * cannot swallow the closing parenthesis.
 *
 * Statements: a query runs on a pooled connection (pool.c), which keeps the wrapped
 * statement it prepared for the next query of the same text, format and limit. DuckDB
 * rebinds a statement over Parquet files on every execution anyway, so a kept statement
 * saves the second bind. It is used only while the views are as they were when it was
 * prepared (the engine's catalog generation); its executed column names and types are
 * still checked against the prepared ones, and a statement that no longer fits (or no
 * longer binds) is forgotten and the query prepared afresh, within the same time limit.
 *
 * Time limit: a watchdog thread interrupts queries past their deadline
 * (duckdb_interrupt); the fetch then fails and the caller answers 408 (or ends the
 * stream with an error when bytes were already sent). A query belongs to one thread at a
 * time; see README.md for the locks.
 */
#include "engine/engine_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

lh_query *
lh_engine__query_new(lh_engine *eng, int64_t deadline_mono_us, int64_t max_bytes)
{
    lh_query *q = lh_calloc(1, sizeof *q);
    q->eng = eng;
    q->limit = INT64_MAX;
    q->max_bytes = max_bytes > 0 ? max_bytes : INT64_MAX;
    q->deadline_mono_us = deadline_mono_us;
    lh_buf_init(&q->pending);
    return q;
}

/* The caller's own statements, on the query's connection, before the user's SQL. */
static int
run_prelude(lh_query *q, const lh_query_opts *opts, lh_err *err)
{
    for (size_t i = 0; i < opts->n_prelude; i++) {
        duckdb_result res;
        if (duckdb_query(q->con, opts->prelude[i], &res) == DuckDBError) {
            lh_err_set(err, LH_EIO, 500, "engine_error", "could not prepare the query's views");
            lh_err_detail(err, "%s", duckdb_result_error(&res));
            duckdb_destroy_result(&res);
            return LH_EIO;
        }
        duckdb_destroy_result(&res);
    }
    return 0;
}

/* Execute the prepared statement, streaming, and run it until the first row is rendered
 * (or the result is known to be empty), so errors and timeouts still get a proper status
 * code. *stale is set when the executed statement's columns are not the prepared ones
 * (a cached statement rebound to a changed view): then nothing has been rendered. */
static int
execute(lh_query *q, duckdb_prepared_statement prep, const lh_prep_cols *pc, bool *stale,
        lh_err *err)
{
    *stale = false;
    int rc = lh_engine__bind(prep, q->params, q->n_params, err);
    if (rc != 0)
        return rc;
    if (duckdb_execute_prepared_streaming(prep, &q->result) == DuckDBError) {
        q->has_result = true;
        duckdb_error_type type = duckdb_result_error_type(&q->result);
        *stale = type == DUCKDB_ERROR_BINDER || type == DUCKDB_ERROR_CATALOG;
        return lh_engine__sql_error(err, type, duckdb_result_error(&q->result));
    }
    q->has_result = true;
    /* a rebound statement keeps its prepared names and types: compare them with what ran */
    idx_t n = (idx_t)pc->n;
    *stale = duckdb_column_count(&q->result) != n;
    if (q->n_params > 0 && n == 1 && pc->types[0] == DUCKDB_TYPE_INVALID) {
        /* typed only once bound (see lh_engine__describe_result); rendered by to_json */
        lh_engine__describe_result(q, q->format != LH_QUERY_CSV && !q->native ? 1 : 0);
        lh_engine__render_header(q);
        return lh_engine__produce(q, q->pending.len + 1, err);
    }
    for (idx_t i = 0; i < n && !*stale; i++) {
        const char *name = duckdb_column_name(&q->result, i);
        *stale = duckdb_column_type(&q->result, i) != pc->types[i] || !name ||
                 strcmp(pc->names[i], name) != 0;
    }
    if (*stale)
        return lh_err_set(err, LH_EUNAVAIL, 503, "dataset_changed",
                          "a dataset changed while the query started");
    lh_engine__render_header(q);
    return lh_engine__produce(q, q->pending.len + 1, err);
}

/* The cache key of a query: everything the wrapped statement depends on — format, limit,
 * text, and the caller's view of the registry (what its resolver turns names into): a
 * statement kept for one view is never executed for another. */
static char *
cache_key(const lh_query_opts *opts)
{
    const char *view = opts->resolver && opts->resolver->fn && opts->resolver->view_key
                           ? opts->resolver->view_key
                           : "";
    return lh_sprintf("%d %lld %s\n%s", (int)opts->format, (long long)opts->row_limit, view,
                      opts->sql);
}

/* Take a connection for q — a pooled one, unless the caller runs statements of its own
 * first (as_of views), which would stay on a pooled connection — put q under the time
 * limit (which covers binding too: a read_csv sniffs when bound) and run the prelude. */
static int
connect_query(lh_query *q, const lh_query_opts *opts, lh_err *err)
{
    if (opts->n_prelude == 0 && (q->pooled = lh_engine__pool_take(q->eng)) != NULL)
        q->con = lh_engine__pool_con(q->pooled);
    else if (opts->n_prelude == 0 || duckdb_connect(q->eng->db, &q->con) == DuckDBError)
        return lh_err_set(err, LH_EIO, 503, "engine_unavailable",
                          "could not connect to the engine");
    lh_engine__watch(q->eng, q);
    /* setseed() changes the connection's random numbers for later queries */
    if (q->pooled)
        q->unpoolable = strcasestr(opts->sql, "setseed") != NULL;
    return run_prelude(q, opts, err);
}

/* A statement this connection prepared for the same text before: execute it. Sets *stale
 * when the statement no longer fits (the caller prepares afresh). */
static int
start_cached(lh_query *q, duckdb_prepared_statement prep, bool *stale, lh_err *err)
{
    size_t first = 0;
    lh_prep_cols pc;
    lh_engine__prep_cols(prep, &pc);
    if (q->format != LH_QUERY_CSV && !lh_engine__native_prepare(q, &pc))
        first = 1; /* the to_json column */
    lh_engine__describe_columns(q, &pc, first);
    int rc = execute(q, prep, &pc, stale, err);
    lh_engine__prep_cols_free(&pc);
    return rc;
}

/* The text must be one statement on its own (parsing only is cheap); the wrapper then
 * admits one SELECT only, as no other kind of statement parses inside it. */
static int
one_statement(lh_query *q, const char *sql, lh_err *err)
{
    duckdb_extracted_statements stmts = NULL;
    idx_t n_stmts = duckdb_extract_statements(q->con, sql, &stmts);
    duckdb_destroy_extracted(&stmts);
    if (n_stmts == 1)
        return 0;
    int rc = lh_engine__admit(q, sql, NULL, err); /* says why: empty, several, or a syntax error */
    if (rc == 0)
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_sql", "one statement per query");
    return rc;
}

/* The statement that runs for the user's text (body, trimmed): see query_render.c.
 * alias names the row; to_json adds the to_json column first. Returns new. */
static char *
wrap(const lh_query *q, const char *body, const char *alias, const char *limit_clause, bool to_json)
{
    if (q->format == LH_QUERY_CSV)
        return lh_sprintf("SELECT COLUMNS(*)::VARCHAR FROM (\n%s\n) AS %s%s", body, alias,
                          limit_clause);
    if (to_json)
        return lh_sprintf("SELECT CAST(to_json(%s) AS VARCHAR), %s.* FROM (\n%s\n) AS %s%s", alias,
                          alias, body, alias, limit_clause);
    /* JSON also selects the row's own columns: the prepared statement then describes
     * them (names and types for the header) and the query is bound only once */
    return lh_sprintf("SELECT %s.* FROM (\n%s\n) AS %s%s", alias, body, alias, limit_clause);
}

/* Admit the text, wrap and prepare it (*prep new on success, *pc its columns: free with
 * lh_engine__prep_cols_free), and fill q's columns. */
static int
prepare_fresh(lh_query *q, const lh_query_opts *opts, duckdb_prepared_statement *prep,
              lh_prep_cols *pc, lh_err *err)
{
    char *body = NULL, *wrapped = NULL;
    int rc = 0;
    if ((rc = one_statement(q, opts->sql, err)) != 0 ||
        (rc = lh_engine__admit_names(q, opts->sql, err)) != 0)
        goto out;
    body = lh_engine__trim_sql(opts->sql);
    /* a row alias no result column will have (to_json(alias) must mean the row) */
    char hex[9], alias[32];
    lh_random_hex(hex, 4);
    snprintf(alias, sizeof alias, "lh_row_%s", hex);
    /* one row more than the limit tells us whether the answer was cut */
    char limit_clause[48] = "";
    if (opts->row_limit > 0)
        snprintf(limit_clause, sizeof limit_clause, " LIMIT %lld", (long long)opts->row_limit + 1);
    wrapped = wrap(q, body, alias, limit_clause, false);
    duckdb_state prepared = duckdb_prepare(q->con, wrapped, prep);
    if (prepared == DuckDBSuccess)
        lh_engine__prep_cols(*prep, pc);
    if (prepared == DuckDBSuccess && q->format != LH_QUERY_CSV &&
        !lh_engine__native_prepare(q, pc)) {
        /* a type rendered by to_json only: bind once more with it (the wrapper is the
         * same subquery, so it admits exactly what the first one did) */
        lh_engine__prep_cols_free(pc);
        duckdb_destroy_prepare(prep);
        free(wrapped);
        wrapped = wrap(q, body, alias, limit_clause, true);
        prepared = duckdb_prepare(q->con, wrapped, prep);
        if (prepared == DuckDBSuccess)
            lh_engine__prep_cols(*prep, pc);
    }
    if (prepared == DuckDBError) {
        /* the slow path, for errors only: classify the statement on its own */
        if ((rc = lh_engine__admit(q, opts->sql, NULL, err)) != 0)
            goto out;
        const char *e = duckdb_prepare_error(*prep);
        rc = lh_engine__wrapped_error(err, lh_engine__prepare_error_type(e), e ? e : "");
        goto out;
    }
    lh_engine__describe_columns(q, pc, q->format == LH_QUERY_CSV || q->native ? 0 : 1);
out:
    if (rc != 0) {
        lh_engine__prep_cols_free(pc);
        duckdb_destroy_prepare(prep);
    }
    free(wrapped);
    free(body);
    return rc;
}

int
lh_query_start(lh_engine *eng, const lh_query_opts *opts, lh_query **out, lh_err *err)
{
    /* the deadline is set once: a retry keeps the original time limit */
    int64_t deadline = lh_engine__deadline(opts->timeout_ms);
    lh_query *q = NULL;
    lh_slot *slot = NULL;
    char *key = NULL;
    duckdb_prepared_statement prep = NULL;
    lh_prep_cols pc = {0};
    uint64_t generation = 0;
    bool stale = false;
    /* the wait for a slot counts against the time limit: the deadline is set before it */
    int rc = lh_engine__slot_take(eng, opts->principal, deadline, &opts->gone, &slot, err);
    if (rc != 0)
        return rc;
    /* whatever this thread binds from here on goes through the caller's resolver */
    lh_engine__resolver_set(opts->resolver);
    lh_engine__note_reset();
    /* at most twice: a kept statement that no longer fits is forgotten, and the query
     * starts again on a clean query, preparing afresh */
    for (bool lookup = true;; lookup = false) {
        q = lh_engine__query_new(eng, deadline, opts->max_bytes);
        q->gone = opts->gone;
        q->params = opts->params;
        q->n_params = opts->n_params;
        q->format = opts->format;
        q->limit = opts->row_limit > 0 ? opts->row_limit : INT64_MAX;
        if ((rc = connect_query(q, opts, err)) != 0)
            goto out;
        /* the generation the views are in before this query's statement is prepared */
        generation = atomic_load(&eng->catalog_generation);
        if (q->pooled)
            key = cache_key(opts);
        const json_t *cached_names = NULL;
        /* kept under the caller's view (cache_key): it binds what this caller may see */
        duckdb_prepared_statement cached =
            q->pooled && lookup ? lh_engine__pool_lookup(q->pooled, key, generation, &cached_names)
                                : NULL;
        if (cached == NULL)
            break;
        rc = start_cached(q, cached, &stale, err);
        if (rc == 0 || !stale)
            goto out;
        lh_engine__pool_forget(q->pooled, key);
        free(key);
        key = NULL;
        lh_query_free(q);
        q = NULL;
    }
    if ((rc = prepare_fresh(q, opts, &prep, &pc, err)) != 0 ||
        (rc = execute(q, prep, &pc, &stale, err)) != 0)
        goto out;
    if (q->pooled && !q->unpoolable) { /* for the next query of the same text here */
        lh_engine__pool_keep(q->pooled, key, prep, generation, q->names);
        prep = NULL;
    }
out:
    lh_engine__resolver_set(NULL);
    bool rescue_used = false;
    rc = lh_engine__note_finish(rc, &rescue_used, err);
    if (opts->rescue_used)
        *opts->rescue_used = rescue_used;
    if (q)
        q->rescue_used = rescue_used;
    duckdb_destroy_prepare(&prep);
    lh_engine__prep_cols_free(&pc);
    free(key);
    if (rc != 0 && q && atomic_load(&q->client_gone))
        rc = lh_engine__gone_error(err);
    if (rc != 0) {
        lh_query_free(q);
        lh_engine__slot_give(eng, slot);
        return rc;
    }
    q->slot = slot;
    *out = q;
    return 0;
}

size_t
lh_query_read(lh_query *q, char *buf, size_t max, bool *end, bool *failed_out, lh_err *err)
{
    *end = false;
    *failed_out = false;
    if (q->pending.len == 0 && !q->footer_sent) {
        lh_err e;
        lh_err_clear(&e);
        int rc = lh_engine__produce(q, max, &e);
        if (q->done && !q->footer_sent) {
            lh_engine__render_footer(q, rc ? &e : NULL);
            if (rc) {
                *failed_out = true;
                if (err)
                    *err = e;
            }
        }
    }
    if (q->pending.len == 0) {
        *end = true;
        return 0;
    }
    size_t n = q->pending.len < max ? q->pending.len : max;
    memcpy(buf, q->pending.data, n);
    memmove(q->pending.data, q->pending.data + n, q->pending.len - n);
    q->pending.len -= n;
    q->sent_bytes += (int64_t)n;
    return n;
}

void
lh_query_free(lh_query *q)
{
    if (q == NULL)
        return;
    lh_engine__unwatch(q->eng, q);
    if (q->chunk)
        duckdb_destroy_data_chunk(&q->chunk);
    if (q->has_result)
        duckdb_destroy_result(&q->result);
    if (q->pooled && q->unpoolable)
        lh_engine__pool_discard(q->pooled);
    else if (q->pooled) /* after unwatch: the watchdog no longer interrupts this connection */
        lh_engine__pool_give(q->eng, q->pooled);
    else if (q->con)
        duckdb_disconnect(&q->con);
    lh_engine__slot_give(q->eng, q->slot); /* after its connection is back */
    for (size_t i = 0; i < q->n_cols; i++) {
        free(q->col_names[i]);
        free(q->col_types[i]);
    }
    for (size_t i = 0; q->col_keys && i < q->n_cols; i++)
        free(q->col_keys[i]);
    free(q->col_names);
    free(q->col_types);
    free(q->col_keys);
    free(q->col_kinds);
    json_decref(q->names);
    lh_buf_free(&q->pending);
    free(q);
}

int
lh_query_to_parquet(lh_engine *eng, const lh_query_opts *opts, const char *path, int64_t *rows,
                    lh_err *err)
{
    lh_query *q = lh_engine__query_new(eng, lh_engine__deadline(opts->timeout_ms), opts->max_bytes);
    q->out_path = path;
    q->gone = opts->gone;
    char *body = NULL;
    lh_buf sql;
    lh_buf_init(&sql);
    duckdb_prepared_statement prep = NULL;
    duckdb_result r;
    bool have_result = false;
    int rc =
        lh_engine__slot_take(eng, opts->principal, q->deadline_mono_us, &opts->gone, &q->slot, err);
    if (rc != 0)
        goto out;
    if (duckdb_connect(eng->db, &q->con) == DuckDBError) {
        rc = lh_err_set(err, LH_EIO, 503, "engine_unavailable", "could not connect to the engine");
        goto out;
    }
    lh_engine__watch(eng, q);
    lh_engine__resolver_set(opts->resolver);
    lh_engine__note_reset();
    if ((rc = run_prelude(q, opts, err)) != 0 ||
        (rc = lh_engine__admit(q, opts->sql, NULL, err)) != 0 ||
        (rc = lh_engine__admit_names(q, opts->sql, err)) != 0)
        goto out;
    body = lh_engine__trim_sql(opts->sql);
    lh_buf_printf(&sql, "COPY (SELECT * FROM (\n%s\n) AS lh_q", body);
    if (opts->row_limit > 0)
        lh_buf_printf(&sql, " LIMIT %lld", (long long)opts->row_limit);
    lh_buf_puts(&sql, ") TO ");
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, " (FORMAT parquet, COMPRESSION zstd)");
    /* prepare, not query: exactly one statement, whatever the text */
    if (duckdb_prepare(q->con, sql.data, &prep) == DuckDBError) {
        const char *e = duckdb_prepare_error(prep);
        rc = lh_engine__wrapped_error(err, lh_engine__prepare_error_type(e), e ? e : "");
        goto out;
    }
    have_result = true;
    if (duckdb_execute_prepared(prep, &r) == DuckDBError) {
        rc = atomic_load(&q->too_large)
                 ? lh_engine__too_large(q, err)
                 : lh_engine__wrapped_error(err, duckdb_result_error_type(&r),
                                            duckdb_result_error(&r));
        goto out;
    }
    if (rows)
        *rows = (int64_t)duckdb_rows_changed(&r);
out:
    lh_engine__resolver_set(NULL);
    rc = lh_engine__note_finish(rc, opts->rescue_used, err);
    if (rc != 0 && atomic_load(&q->client_gone))
        rc = lh_engine__gone_error(err);
    if (have_result)
        duckdb_destroy_result(&r);
    duckdb_destroy_prepare(&prep);
    lh_buf_free(&sql);
    free(body);
    lh_query_free(q);
    return rc;
}
