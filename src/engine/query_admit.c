/*
 * query_admit.c — what user SQL may be, and what its errors become.
 *
 * Admission: the text must hold exactly one statement and DuckDB must classify it as a
 * SELECT (duckdb_prepared_statement_type). COPY ... TO, ATTACH, INSTALL/LOAD, SET,
 * PRAGMA, CALL and every write are refused before they run; what the SELECT names is
 * checked by query_allow.c (datasets, never files), and the database-wide sandbox set in
 * engine.c (no external access outside allowed_directories, locked configuration) is
 * the floor beneath both.
 *
 * Errors: the one place DuckDB errors of user SQL become lh_err (internal statements
 * have their own mapping, lh_engine__internal_error in engine.c).
 *
 * Trimming: the statement goes into our wrappers' parentheses (query.c), so what follows
 * its last token must go first; see lh_engine__trim_sql.
 *
 * Time limit: running queries are on the engine's watched list; the watchdog thread
 * (engine.c) interrupts those past their deadline (duckdb_interrupt) and Parquet results
 * grown past their byte limit, and those whose client went away. Everything here is called by one
 * query's thread, except lh_engine__watchdog_scan (the watchdog's), which holds watch_lock.
 */
#include "engine/engine_int.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- errors ------------------------------------------------------------------------------ */

int
lh_engine__sql_error(lh_err *err, duckdb_error_type type, const char *message)
{
    const char *msg = message ? message : "query failed";
    switch (type) {
    case DUCKDB_ERROR_PERMISSION:
        lh_err_set(err, LH_EPERM, 403, "sql_forbidden", "the query tried something not allowed");
        lh_err_detail(err, "%s", msg);
        lh_err_hint(err, "queries may read datasets only; files outside the data path, "
                         "extensions and settings are off limits");
        return LH_EPERM;
    case DUCKDB_ERROR_INTERRUPT:
        lh_err_set(err, LH_ETIMEOUT, 408, "query_timeout", "the query ran past its time limit");
        lh_err_hint(err, "narrow the query, or raise [engine] query_timeout_ms");
        return LH_ETIMEOUT;
    case DUCKDB_ERROR_OUT_OF_MEMORY:
        lh_err_set(err, LH_ENOMEM, 503, "query_out_of_memory", "the query ran out of memory");
        lh_err_detail(err, "%s", msg);
        return LH_ENOMEM;
    case DUCKDB_ERROR_IO:
        lh_err_set(err, LH_EIO, 503, "data_unavailable", "a data file could not be read");
        lh_err_detail(err, "%s", msg);
        lh_err_hint(err, "POST /catalog/resync-missing, or check the bucket");
        return LH_EIO;
    case DUCKDB_ERROR_INTERNAL:
    case DUCKDB_ERROR_FATAL:
        lh_err_set(err, LH_EINTERNAL, 500, "engine_error", "the query engine failed");
        lh_err_detail(err, "%s", msg);
        return LH_EINTERNAL;
    default:
        lh_err_set(err, LH_EINVAL, 400, "invalid_sql", "the query is not valid");
        lh_err_detail(err, "%s", msg);
        return LH_EINVAL;
    }
}

duckdb_error_type
lh_engine__prepare_error_type(const char *message)
{
    const char *m = message ? message : "";
    if (strncmp(m, "Permission Error", 16) == 0)
        return DUCKDB_ERROR_PERMISSION;
    if (strncmp(m, "INTERRUPT", 9) == 0 || strstr(m, "Interrupted"))
        return DUCKDB_ERROR_INTERRUPT;
    return DUCKDB_ERROR_INVALID;
}

/* Prepare errors carry no type: read it from DuckDB's message prefix. */
static int
prepare_error(lh_err *err, const char *message)
{
    return lh_engine__sql_error(err, lh_engine__prepare_error_type(message),
                                message ? message : "");
}

int
lh_engine__wrapped_error(lh_err *err, duckdb_error_type type, const char *message)
{
    int rc = lh_engine__sql_error(err, type, message);
    if (rc == LH_EINVAL && message && strncmp(message, "Parser Error", 12) == 0) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_sql", "only plain SELECT queries are supported");
        lh_err_hint(err, "PRAGMA, SHOW and DESCRIBE are not available; query the data itself");
    }
    return rc;
}

static const char *
type_name(duckdb_type t)
{
    switch (t) {
    case DUCKDB_TYPE_BOOLEAN:
        return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT:
        return "TINYINT";
    case DUCKDB_TYPE_SMALLINT:
        return "SMALLINT";
    case DUCKDB_TYPE_INTEGER:
        return "INTEGER";
    case DUCKDB_TYPE_BIGINT:
        return "BIGINT";
    case DUCKDB_TYPE_UTINYINT:
        return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT:
        return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER:
        return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT:
        return "UBIGINT";
    case DUCKDB_TYPE_HUGEINT:
        return "HUGEINT";
    case DUCKDB_TYPE_FLOAT:
        return "FLOAT";
    case DUCKDB_TYPE_DOUBLE:
        return "DOUBLE";
    case DUCKDB_TYPE_DECIMAL:
        return "DECIMAL";
    case DUCKDB_TYPE_VARCHAR:
        return "VARCHAR";
    case DUCKDB_TYPE_BLOB:
        return "BLOB";
    case DUCKDB_TYPE_DATE:
        return "DATE";
    case DUCKDB_TYPE_TIME:
        return "TIME";
    case DUCKDB_TYPE_TIMESTAMP:
        return "TIMESTAMP";
    case DUCKDB_TYPE_TIMESTAMP_TZ:
        return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_INTERVAL:
        return "INTERVAL";
    case DUCKDB_TYPE_UUID:
        return "UUID";
    case DUCKDB_TYPE_LIST:
        return "LIST";
    case DUCKDB_TYPE_ARRAY:
        return "ARRAY";
    case DUCKDB_TYPE_STRUCT:
        return "STRUCT";
    case DUCKDB_TYPE_MAP:
        return "MAP";
    case DUCKDB_TYPE_ENUM:
        return "ENUM";
    case DUCKDB_TYPE_SQLNULL:
        return "NULL";
    default:
        return "OTHER";
    }
}

/* ---- admission ---------------------------------------------------------------------------- */

void
lh_engine__prep_cols(duckdb_prepared_statement prep, lh_prep_cols *out)
{
    out->n = (size_t)duckdb_prepared_statement_column_count(prep);
    out->types = lh_calloc(out->n ? out->n : 1, sizeof *out->types);
    out->names = lh_calloc(out->n ? out->n : 1, sizeof *out->names);
    for (size_t i = 0; i < out->n; i++) {
        /* each call copies all the types: n^2 once per prepared statement, not per use */
        out->types[i] = duckdb_prepared_statement_column_type(prep, i);
        const char *name = duckdb_prepared_statement_column_name(prep, i);
        out->names[i] = lh_strdup(name ? name : "");
        duckdb_free((void *)name);
    }
}

void
lh_engine__prep_cols_free(lh_prep_cols *pc)
{
    for (size_t i = 0; i < pc->n && pc->names; i++)
        free(pc->names[i]);
    free(pc->names);
    free(pc->types);
    memset(pc, 0, sizeof *pc);
}

void
lh_engine__describe_columns(lh_query *q, const lh_prep_cols *pc, size_t first)
{
    q->n_cols = pc->n > first ? pc->n - first : 0;
    q->col_names = lh_calloc(q->n_cols ? q->n_cols : 1, sizeof *q->col_names);
    q->col_types = lh_calloc(q->n_cols ? q->n_cols : 1, sizeof *q->col_types);
    for (size_t i = 0; i < q->n_cols; i++) {
        q->col_names[i] = lh_strdup(pc->names[first + i]);
        q->col_types[i] = lh_strdup(type_name(pc->types[first + i]));
    }
}

void
lh_engine__describe_result(lh_query *q, size_t first)
{
    for (size_t i = 0; i < q->n_cols; i++) {
        free(q->col_names[i]);
        free(q->col_types[i]);
    }
    free(q->col_names);
    free(q->col_types);
    size_t total = (size_t)duckdb_column_count(&q->result);
    q->n_cols = total > first ? total - first : 0;
    q->col_names = lh_calloc(q->n_cols ? q->n_cols : 1, sizeof *q->col_names);
    q->col_types = lh_calloc(q->n_cols ? q->n_cols : 1, sizeof *q->col_types);
    for (size_t i = 0; i < q->n_cols; i++) {
        const char *name = duckdb_column_name(&q->result, first + i);
        q->col_names[i] = lh_strdup(name ? name : "");
        q->col_types[i] = lh_strdup(type_name(duckdb_column_type(&q->result, first + i)));
    }
}

int
lh_engine__admit(lh_query *q, const char *sql, duckdb_prepared_statement *keep, lh_err *err)
{
    duckdb_extracted_statements stmts = NULL;
    duckdb_prepared_statement prep = NULL;
    int rc = 0;
    idx_t n = duckdb_extract_statements(q->con, sql, &stmts);
    if (n == 0) {
        const char *e = duckdb_extract_statements_error(stmts);
        rc = e ? prepare_error(err, e)
               : lh_err_set(err, LH_EINVAL, 400, "invalid_sql", "the query holds no statement");
        goto out;
    }
    if (n > 1) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_sql", "one statement per query (found %llu)",
                        (unsigned long long)n);
        goto out;
    }
    if (duckdb_prepare_extracted_statement(q->con, stmts, 0, &prep) == DuckDBError) {
        rc = prepare_error(err, duckdb_prepare_error(prep));
        goto out;
    }
    if (duckdb_prepared_statement_type(prep) != DUCKDB_STATEMENT_TYPE_SELECT) {
        rc = lh_err_set(err, LH_EPERM, 403, "sql_forbidden",
                        "only read queries (SELECT) are allowed");
        lh_err_hint(err, "data changes go through the ingest and dataset endpoints");
        goto out;
    }
    lh_prep_cols pc;
    lh_engine__prep_cols(prep, &pc);
    lh_engine__describe_columns(q, &pc, 0);
    lh_engine__prep_cols_free(&pc);
out:
    if (rc == 0 && keep) {
        *keep = prep;
        prep = NULL;
    }
    duckdb_destroy_prepare(&prep);
    duckdb_destroy_extracted(&stmts);
    return rc;
}

/* Where a quoted run starting at s[i] ends (the index past its closing quote), or
 * SIZE_MAX when it does not end. quote is ' or "; a doubled quote stays inside; backslash escapes
 * count in E'...' strings. */
static size_t
quoted_end(const char *s, size_t i, size_t n, char quote, bool backslash)
{
    for (i++; i < n; i++) {
        if (backslash && s[i] == '\\' && i + 1 < n)
            i++;
        else if (s[i] == quote && i + 1 < n && s[i + 1] == quote)
            i++;
        else if (s[i] == quote)
            return i + 1;
    }
    return SIZE_MAX;
}

static bool
ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

/* The statement text without what follows its last token: blanks, comments and
 * semicolons ("SELECT 1; -- done" → "SELECT 1"), so that it can stand inside the wrapper's
 * parentheses. Strings, quoted names, dollar-quoted text and nested block comments are
 * skipped as the parser does; on anything unterminated the text is kept whole, for the
 * parser to refuse. Semicolons between statements stay, and the wrapper then refuses
 * the text as several statements. */
char *
lh_engine__trim_sql(const char *sql)
{
    size_t n = strlen(sql), i = 0, end = 0;
    while (i < n) {
        char c = sql[i];
        if (isspace((unsigned char)c) || c == ';') {
            i++;
        } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
            while (i < n && sql[i] != '\n' && sql[i] != '\r') /* as DuckDB's scanner */
                i++;
        } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
            int depth = 1;
            for (i += 2; i < n && depth > 0;) {
                if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*')
                    depth++, i += 2;
                else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/')
                    depth--, i += 2;
                else
                    i++;
            }
            if (depth > 0)
                return lh_strdup(sql);
        } else if (c == '\'' || c == '"') {
            bool e_string = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                            (i < 2 || !ident_char(sql[i - 2]));
            size_t close = quoted_end(sql, i, n, c, e_string);
            if (close == SIZE_MAX)
                return lh_strdup(sql);
            i = end = close;
        } else if (c == '$') {
            /* $$...$$ or $tag$...$tag$; else ($1) an ordinary character */
            size_t t = i + 1;
            while (t < n && ident_char(sql[t]))
                t++;
            if (t < n && sql[t] == '$' && (t == i + 1 || !isdigit((unsigned char)sql[i + 1]))) {
                size_t tag_len = t - i + 1;
                const char *close = NULL;
                for (size_t k = t + 1; k + tag_len <= n && !close; k++)
                    if (memcmp(sql + k, sql + i, tag_len) == 0)
                        close = sql + k;
                if (!close)
                    return lh_strdup(sql);
                i = end = (size_t)(close - sql) + tag_len;
            } else {
                i = end = i + 1;
            }
        } else {
            i = end = i + 1;
        }
    }
    return lh_strndup(sql, end);
}

/* ---- the watchdog ------------------------------------------------------------------------- */

void
lh_engine__watch(lh_engine *eng, lh_query *q)
{
    pthread_mutex_lock(&eng->watch_lock);
    q->watch_next = eng->watched;
    eng->watched = q;
    q->watched = true;
    atomic_fetch_add(&eng->n_watched, 1);
    pthread_mutex_unlock(&eng->watch_lock);
    lh_engine__watchdog_wake(eng);
}

void
lh_engine__unwatch(lh_engine *eng, lh_query *q)
{
    if (!q->watched)
        return;
    pthread_mutex_lock(&eng->watch_lock);
    for (lh_query **link = &eng->watched; *link; link = &(*link)->watch_next)
        if (*link == q) {
            *link = q->watch_next;
            atomic_fetch_sub(&eng->n_watched, 1);
            break;
        }
    q->watched = false;
    pthread_mutex_unlock(&eng->watch_lock);
}

void
lh_engine__watchdog_scan(lh_engine *eng)
{
    int64_t now = lh_mono_us();
    pthread_mutex_lock(&eng->watch_lock);
    for (lh_query *q = eng->watched; q; q = q->watch_next) {
        if (q->deadline_mono_us > 0 && now > q->deadline_mono_us)
            duckdb_interrupt(q->con);
        /* the client went away: stop (again at every tick, as an interrupt that comes
         * between two statements of the query is forgotten by the next) */
        if (q->gone.fn && (atomic_load(&q->client_gone) || q->gone.fn(q->gone.ctx))) {
            if (!atomic_exchange(&q->client_gone, true))
                atomic_fetch_add(&eng->n_cancelled, 1);
            duckdb_interrupt(q->con);
        }
        struct stat st;
        if (q->out_path && stat(q->out_path, &st) == 0 && (int64_t)st.st_size > q->max_bytes) {
            atomic_store(&q->too_large, true);
            duckdb_interrupt(q->con);
        }
    }
    pthread_mutex_unlock(&eng->watch_lock);
}
