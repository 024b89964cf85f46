/*
 * query.c — user SQL: admission, sandboxed execution and streamed rendering.
 *
 * Admission: the text must hold exactly one statement and DuckDB must classify it as a
 * SELECT (duckdb_prepared_statement_type). COPY ... TO, ATTACH, INSTALL/LOAD, SET,
 * PRAGMA, CALL and every write are refused before they run; the database-wide sandbox
 * set in engine.c (no external access outside allowed_directories, locked
 * configuration) stops what a SELECT could still try, e.g. read_csv('/etc/passwd').
 *
 * Rendering: the admitted statement is wrapped, not re-parsed by us —
 *   JSON/NDJSON: SELECT t.* FROM (\n<sql>\n) AS t LIMIT n+1
 *                and, when a column has a type we do not render (see native_type),
 *                SELECT CAST(to_json(t) AS VARCHAR), t.* FROM (\n<sql>\n) AS t LIMIT n+1
 *   CSV:         SELECT COLUMNS(*)::VARCHAR FROM (\n<sql>\n) AS t LIMIT n+1
 * so DuckDB formats every type (nested, dates, decimals) and we only copy strings, except
 * for plain numbers, booleans, text and dates, which we write exactly as to_json would
 * (to_json costs ~0.2 ms a query to bind and start). The newlines keep a trailing
 * "-- comment" from swallowing the closing parenthesis. Rows
 * stream chunk by chunk (duckdb_fetch_chunk on a streaming result), so memory stays
 * bounded by one chunk whatever the result size.
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
 * stream with an error when bytes were already sent).
 */
#include "engine/engine_int.h"

#include <assert.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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
    const char *out_path;  /* a Parquet result being written: watched for its size */
    atomic_bool too_large; /* the watchdog stopped it for growing past max_bytes */
};

/* ---- errors: the one place DuckDB errors become lh_err for user SQL ---------------------- */

static int
sql_error(lh_err *err, duckdb_error_type type, const char *message)
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

/* Prepare errors carry no type: read it from DuckDB's message prefix. */
static int
prepare_error(lh_err *err, const char *message)
{
    const char *m = message ? message : "";
    if (strncmp(m, "Permission Error", 16) == 0)
        return sql_error(err, DUCKDB_ERROR_PERMISSION, m);
    if (strncmp(m, "INTERRUPT", 9) == 0 || strstr(m, "Interrupted"))
        return sql_error(err, DUCKDB_ERROR_INTERRUPT, m);
    return sql_error(err, DUCKDB_ERROR_INVALID, m);
}

static const char *
type_name(duckdb_type t)
{
    switch (t) {
    case DUCKDB_TYPE_BOOLEAN: return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT: return "TINYINT";
    case DUCKDB_TYPE_SMALLINT: return "SMALLINT";
    case DUCKDB_TYPE_INTEGER: return "INTEGER";
    case DUCKDB_TYPE_BIGINT: return "BIGINT";
    case DUCKDB_TYPE_UTINYINT: return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT: return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER: return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT: return "UBIGINT";
    case DUCKDB_TYPE_HUGEINT: return "HUGEINT";
    case DUCKDB_TYPE_FLOAT: return "FLOAT";
    case DUCKDB_TYPE_DOUBLE: return "DOUBLE";
    case DUCKDB_TYPE_DECIMAL: return "DECIMAL";
    case DUCKDB_TYPE_VARCHAR: return "VARCHAR";
    case DUCKDB_TYPE_BLOB: return "BLOB";
    case DUCKDB_TYPE_DATE: return "DATE";
    case DUCKDB_TYPE_TIME: return "TIME";
    case DUCKDB_TYPE_TIMESTAMP: return "TIMESTAMP";
    case DUCKDB_TYPE_TIMESTAMP_TZ: return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_INTERVAL: return "INTERVAL";
    case DUCKDB_TYPE_UUID: return "UUID";
    case DUCKDB_TYPE_LIST: return "LIST";
    case DUCKDB_TYPE_ARRAY: return "ARRAY";
    case DUCKDB_TYPE_STRUCT: return "STRUCT";
    case DUCKDB_TYPE_MAP: return "MAP";
    case DUCKDB_TYPE_ENUM: return "ENUM";
    case DUCKDB_TYPE_SQLNULL: return "NULL";
    default: return "OTHER";
    }
}

/* ---- admission ---------------------------------------------------------------------------- */

/* Column names and types of the prepared statement, past its first `first`. */
static void
describe_columns(lh_query *q, duckdb_prepared_statement prep, size_t first)
{
    size_t total = (size_t)duckdb_prepared_statement_column_count(prep);
    q->n_cols = total > first ? total - first : 0;
    q->col_names = lh_calloc(q->n_cols ? q->n_cols : 1, sizeof *q->col_names);
    q->col_types = lh_calloc(q->n_cols ? q->n_cols : 1, sizeof *q->col_types);
    for (size_t i = 0; i < q->n_cols; i++) {
        const char *name = duckdb_prepared_statement_column_name(prep, first + i);
        q->col_names[i] = lh_strdup(name ? name : "");
        duckdb_free((void *)name);
        q->col_types[i] = lh_strdup(
            type_name(duckdb_prepared_statement_column_type(prep, first + i)));
    }
}

/* Check the text is one SELECT; fill column names/types from its prepared form, which
 * goes to *keep (new) when keep is given, else is released. */
static int
admit(lh_query *q, const char *sql, duckdb_prepared_statement *keep, lh_err *err)
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
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_sql",
                        "one statement per query (found %llu)", (unsigned long long)n);
        goto out;
    }
    if (duckdb_prepare_extracted_statement(q->con, stmts, 0, &prep) == DuckDBError) {
        rc = prepare_error(err, duckdb_prepare_error(prep));
        goto out;
    }
    if (duckdb_prepared_statement_type(prep) != DUCKDB_STATEMENT_TYPE_SELECT) {
        rc = lh_err_set(err, LH_EPERM, 403, "sql_forbidden", "only read queries (SELECT) are allowed");
        lh_err_hint(err, "data changes go through the ingest and dataset endpoints");
        goto out;
    }
    describe_columns(q, prep, 0);
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
static char *
trimmed(const char *sql)
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

static void
watch(lh_engine *eng, lh_query *q)
{
    pthread_mutex_lock(&eng->watch_lock);
    q->watch_next = eng->watched;
    eng->watched = q;
    q->watched = true;
    atomic_fetch_add(&eng->n_watched, 1);
    pthread_mutex_unlock(&eng->watch_lock);
    lh_engine__watchdog_wake(eng);
}

static void
unwatch(lh_engine *eng, lh_query *q)
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
        struct stat st;
        if (q->out_path && stat(q->out_path, &st) == 0 && (int64_t)st.st_size > q->max_bytes) {
            atomic_store(&q->too_large, true);
            duckdb_interrupt(q->con);
        }
    }
    pthread_mutex_unlock(&eng->watch_lock);
}

/* ---- rendering ---------------------------------------------------------------------------- */

static void
json_str(lh_buf *out, const char *s)
{
    json_t *j = json_string(s);
    char *text = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    lh_buf_puts(out, text ? text : "\"\"");
    free(text);
    json_decref(j);
}

static void
csv_field(lh_buf *out, const char *s, size_t len)
{
    bool quote = len == 0 ? false : memchr(s, ',', len) || memchr(s, '"', len) ||
                                        memchr(s, '\n', len) || memchr(s, '\r', len);
    if (!quote) {
        lh_buf_append(out, s, len);
        return;
    }
    lh_buf_append(out, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            lh_buf_append(out, "\"", 1);
        lh_buf_append(out, &s[i], 1);
    }
    lh_buf_append(out, "\"", 1);
}

/* Append one row's JSON as DuckDB's to_json wrote it, except that the non-finite numbers
 * it writes as bare NaN, Infinity and -Infinity — which are not JSON, and which strict
 * parsers reject — become null. Strings are left alone. 0, or -1 when out of memory. */
static int
json_row_append(lh_buf *out, const char *s, size_t len)
{
    if (!memmem(s, len, "NaN", 3) && !memmem(s, len, "Infinity", 8))
        return lh_buf_try_append(out, s, len);
    if (lh_buf_try_reserve(out, 2 * len) != 0)
        return -1;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\' && i + 1 < len) {
                lh_buf_append(out, &s[i], 2);
                i++;
                continue;
            }
            in_string = c != '"';
        } else if (c == '"') {
            in_string = true;
        } else if (c == 'N' && len - i >= 3 && memcmp(&s[i], "NaN", 3) == 0) {
            lh_buf_append(out, "null", 4);
            i += 2;
            continue;
        } else if ((c == 'I' || c == '-') && len - i >= 8) {
            size_t skip = c == '-' ? 1 : 0;
            if (len - i >= 8 + skip && memcmp(&s[i + skip], "Infinity", 8) == 0) {
                lh_buf_append(out, "null", 4);
                i += 7 + skip;
                continue;
            }
        }
        lh_buf_append(out, &c, 1);
    }
    return 0;
}


/* ---- native JSON rendering ------------------------------------------------------------------
 * Binding and starting to_json costs about 0.2 ms per query (its bind data and per-thread
 * state), most of what a small query costs beyond DuckDB itself. Results whose columns are
 * all of the types below are rendered here instead, byte for byte as to_json writes them
 * (yyjson's string escapes and shortest round-trip doubles; NaN and infinities become
 * null, as json_row_append does). Any other type keeps the to_json wrapper. */

static bool
native_type(duckdb_type t)
{
    switch (t) {
    case DUCKDB_TYPE_BOOLEAN:
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE:
    case DUCKDB_TYPE_VARCHAR:
    case DUCKDB_TYPE_DATE:
        return true;
    default:
        return false;
    }
}

/* s as a JSON string the way yyjson escapes it: only '"', '\\' and control bytes. Room
 * for 6 * len + 3 bytes (with the NUL) must be reserved. */
static void
native_str(lh_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *w = out->data + out->len;
    *w++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *w++ = (char)c;
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '\b': *w++ = 'b'; break;
        case '\f': *w++ = 'f'; break;
        case '\n': *w++ = 'n'; break;
        case '\r': *w++ = 'r'; break;
        case '\t': *w++ = 't'; break;
        default:
            memcpy(w, "u00", 3);
            w[3] = hex[c >> 4];
            w[4] = hex[c & 15];
            w += 5;
        }
    }
    *w++ = '"';
    *w = '\0';
    out->len = (size_t)(w - out->data);
}

/* A double as yyjson writes it: the shortest digits that read back exactly, in plain
 * notation for decimal exponents -6..20 (integers get ".0") and as 1.5e-7 otherwise. */
static void
native_double(lh_buf *out, double v)
{
    if (isnan(v) || isinf(v)) {
        lh_buf_append(out, "null", 4);
        return;
    }
    /* Any decimal of up to 15 digits reads back as one double only, so when the 15-digit
     * rounding reads back, the shortest form is it without its trailing zeros; else 16 or
     * 17 digits it is (at most three tries, not seventeen). Subnormals carry fewer
     * digits: they try every length. */
    char sci[40];
    for (int prec = fabs(v) < DBL_MIN ? 0 : 14; prec < 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec, v);
        if (strtod(sci, NULL) == v)
            break;
    }
    char *e = strchr(sci, 'e'), *last = e - 1;
    while (*last == '0')
        last--;
    if (*last == '.')
        last--;
    memmove(last + 1, e, strlen(e) + 1);
    /* sci: [-]d[.ddd]e[+-]x */
    const char *p = sci;
    char digits[24] = {0};
    size_t n = 0;
    bool negative = *p == '-';
    if (negative)
        p++;
    for (; *p != 'e'; p++)
        if (*p != '.')
            digits[n++] = *p;
    int exp10 = atoi(p + 1);
    char text[48];
    size_t t = 0;
    if (negative)
        text[t++] = '-';
    if (exp10 >= 21 || exp10 < -6) {
        text[t++] = digits[0];
        if (n > 1) {
            text[t++] = '.';
            memcpy(&text[t], &digits[1], n - 1);
            t += n - 1;
        }
        t += (size_t)snprintf(&text[t], sizeof text - t, "e%d", exp10);
    } else if (exp10 >= 0) {
        size_t whole = (size_t)exp10 + 1;
        for (size_t i = 0; i < whole; i++)
            text[t++] = i < n ? digits[i] : '0';
        text[t++] = '.';
        if (n > whole) {
            memcpy(&text[t], &digits[whole], n - whole);
            t += n - whole;
        } else {
            text[t++] = '0';
        }
    } else {
        text[t++] = '0';
        text[t++] = '.';
        for (int i = -1; i > exp10; i--)
            text[t++] = '0';
        memcpy(&text[t], digits, n);
        t += n;
    }
    lh_buf_append(out, text, t);
}

/* A DATE as DuckDB casts it to text: 2024-01-02, 0044-03-15 (BC), infinity. */
static void
native_date(lh_buf *out, duckdb_date d)
{
    if (d.days == INT32_MAX || d.days == -INT32_MAX) {
        lh_buf_puts(out, d.days > 0 ? "\"infinity\"" : "\"-infinity\"");
        return;
    }
    duckdb_date_struct ds = duckdb_from_date(d);
    bool bc = ds.year <= 0;
    lh_buf_printf(out, "\"%04d-%02d-%02d%s\"", bc ? 1 - ds.year : ds.year, ds.month, ds.day,
                  bc ? " (BC)" : "");
}

/* Append one row as to_json would write it. 0; 1 when a value alone takes the result past
 * max_bytes; -1 when out of memory (out unchanged but for its capacity, both cases). */
static int
native_row(lh_query *q, idx_t r)
{
    lh_buf *out = &q->pending;
    size_t before = out->len;
    for (size_t c = 0; c < q->n_cols; c++) {
        duckdb_vector v = duckdb_data_chunk_get_vector(q->chunk, c);
        uint64_t *valid = duckdb_vector_get_validity(v);
        void *data = duckdb_vector_get_data(v);
        size_t need = strlen(q->col_keys[c]) + 48; /* key, separator and any scalar */
        const char *str = NULL;
        size_t str_len = 0;
        bool is_null = valid && !duckdb_validity_row_is_valid(valid, r);
        char text[24];
        int num = 0;
        if (!is_null && q->col_kinds[c] == DUCKDB_TYPE_VARCHAR) {
            duckdb_string_t *s = (duckdb_string_t *)data + r;
            str = duckdb_string_t_data(s);
            str_len = duckdb_string_t_length(*s);
            /* over the limit even unescaped: do not copy a huge value at all */
            if (q->sent_bytes + (int64_t)(out->len + str_len) > q->max_bytes) {
                out->len = before;
                return 1;
            }
            need += 6 * str_len + 3;
        }
        if (lh_buf_try_reserve(out, need) != 0) {
            out->len = before;
            return -1;
        }
        lh_buf_append(out, c ? "," : "{", 1);
        lh_buf_puts(out, q->col_keys[c]);
        if (is_null) {
            lh_buf_append(out, "null", 4);
            continue;
        }
        switch (q->col_kinds[c]) {
        case DUCKDB_TYPE_BOOLEAN:
            lh_buf_puts(out, ((bool *)data)[r] ? "true" : "false");
            break;
        case DUCKDB_TYPE_TINYINT: num = snprintf(text, sizeof text, "%d", ((int8_t *)data)[r]); break;
        case DUCKDB_TYPE_SMALLINT: num = snprintf(text, sizeof text, "%d", ((int16_t *)data)[r]); break;
        case DUCKDB_TYPE_INTEGER: num = snprintf(text, sizeof text, "%d", ((int32_t *)data)[r]); break;
        case DUCKDB_TYPE_BIGINT:
            num = snprintf(text, sizeof text, "%lld", (long long)((int64_t *)data)[r]);
            break;
        case DUCKDB_TYPE_UTINYINT: num = snprintf(text, sizeof text, "%u", ((uint8_t *)data)[r]); break;
        case DUCKDB_TYPE_USMALLINT: num = snprintf(text, sizeof text, "%u", ((uint16_t *)data)[r]); break;
        case DUCKDB_TYPE_UINTEGER: num = snprintf(text, sizeof text, "%u", ((uint32_t *)data)[r]); break;
        case DUCKDB_TYPE_UBIGINT:
            num = snprintf(text, sizeof text, "%llu", (unsigned long long)((uint64_t *)data)[r]);
            break;
        case DUCKDB_TYPE_FLOAT: native_double(out, ((float *)data)[r]); break;
        case DUCKDB_TYPE_DOUBLE: native_double(out, ((double *)data)[r]); break;
        case DUCKDB_TYPE_DATE: native_date(out, ((duckdb_date *)data)[r]); break;
        case DUCKDB_TYPE_VARCHAR: native_str(out, str, str_len); break;
        default: lh_buf_append(out, "null", 4); break; /* not reached: see native_type */
        }
        if (num > 0)
            lh_buf_append(out, text, (size_t)num);
    }
    if (lh_buf_try_reserve(out, 1) != 0) {
        out->len = before;
        return -1;
    }
    lh_buf_append(out, "}", 1);
    return 0;
}

/* Whether the prepared statement's columns can all be rendered natively; fills col_kinds
 * and col_keys when so. */
static bool
native_prepare(lh_query *q, duckdb_prepared_statement prep)
{
    size_t n = (size_t)duckdb_prepared_statement_column_count(prep);
    for (size_t i = 0; i < n; i++)
        if (!native_type(duckdb_prepared_statement_column_type(prep, i)))
            return false;
    q->col_kinds = lh_calloc(n ? n : 1, sizeof *q->col_kinds);
    q->col_keys = lh_calloc(n ? n : 1, sizeof *q->col_keys);
    for (size_t i = 0; i < n; i++) {
        q->col_kinds[i] = duckdb_prepared_statement_column_type(prep, i);
        const char *name = duckdb_prepared_statement_column_name(prep, i);
        size_t len = name ? strlen(name) : 0;
        /* a column name is small: the aborting allocation is fine here */
        lh_buf key = {.data = lh_malloc(6 * len + 4), .len = 0, .cap = 6 * len + 4};
        native_str(&key, name ? name : "", len);
        lh_buf_append(&key, ":", 1);
        q->col_keys[i] = lh_buf_steal(&key);
        duckdb_free((void *)name);
    }
    q->native = true;
    return true;
}

static void
render_header(lh_query *q)
{
    lh_buf *out = &q->pending;
    if (q->format == LH_QUERY_JSON) {
        lh_buf_puts(out, "{\"columns\":[");
        for (size_t i = 0; i < q->n_cols; i++) {
            lh_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
            json_str(out, q->col_names[i]);
            lh_buf_puts(out, ",\"type\":");
            json_str(out, q->col_types[i]);
            lh_buf_puts(out, "}");
        }
        lh_buf_puts(out, "],\"rows\":[");
    } else if (q->format == LH_QUERY_CSV) {
        for (size_t i = 0; i < q->n_cols; i++) {
            if (i)
                lh_buf_append(out, ",", 1);
            csv_field(out, q->col_names[i], strlen(q->col_names[i]));
        }
        lh_buf_append(out, "\n", 1);
    }
    q->header_sent = true;
}

static void
render_footer(lh_query *q, const lh_err *error)
{
    lh_buf *out = &q->pending;
    if (q->format == LH_QUERY_JSON) {
        lh_buf_printf(out, "],\"row_count\":%lld,\"truncated\":%s", (long long)q->rows,
                      q->truncated ? "true" : "false");
        if (error) {
            json_t *e = lh_err_to_json(error);
            char *text = json_dumps(json_object_get(e, "error"), JSON_COMPACT);
            lh_buf_printf(out, ",\"error\":%s", text);
            free(text);
            json_decref(e);
        }
        lh_buf_puts(out, "}\n");
    } else if (q->format == LH_QUERY_NDJSON && error) {
        char *text = lh_err_to_body(error);
        lh_buf_puts(out, text);
        lh_buf_append(out, "\n", 1);
        free(text);
    }
    /* CSV has no place for an error: the stream just ends early (the log says why) */
    q->footer_sent = true;
}

/* Bytes a row will take at most once rendered (CSV quoting may double a field). */
static size_t
row_bound(lh_query *q, idx_t r)
{
    size_t n = 2;
    size_t cols = q->format == LH_QUERY_CSV ? q->n_cols : 1;
    for (size_t c = 0; c < cols; c++) {
        duckdb_vector v = duckdb_data_chunk_get_vector(q->chunk, c);
        uint64_t *valid = duckdb_vector_get_validity(v);
        if (valid && !duckdb_validity_row_is_valid(valid, r)) {
            n += 1; /* NULL: an empty field; the string slot holds garbage */
            continue;
        }
        duckdb_string_t *s = (duckdb_string_t *)duckdb_vector_get_data(v) + r;
        n += (q->format == LH_QUERY_CSV ? 2 * (size_t)duckdb_string_t_length(*s) + 3
                                        : (size_t)duckdb_string_t_length(*s)) + 1;
    }
    return n;
}

static int
too_large(lh_query *q, lh_err *err)
{
    lh_err_set(err, LH_ETOOBIG, 413, "result_too_large",
               "the result is over the limit of %lld bytes", (long long)q->max_bytes);
    lh_err_hint(err, "select fewer columns or rows, or raise [engine] max_result_bytes");
    return LH_ETOOBIG;
}

/* Render rows of the current chunk until the buffer holds `want` bytes. A row that would
 * take the result past max_bytes is not rendered at all (so one huge value cannot blow
 * up memory); growth goes through the fallible append. */
static int
render_rows(lh_query *q, size_t want, lh_err *err)
{
    idx_t size = duckdb_data_chunk_get_size(q->chunk);
    while (q->chunk_row < size && q->pending.len < want) {
        if (q->rows >= q->limit) {
            q->truncated = true;
            q->done = true;
            return 0;
        }
        idx_t r = q->chunk_row;
        if (!q->native &&
            q->sent_bytes + (int64_t)q->pending.len + (int64_t)row_bound(q, r) > q->max_bytes)
            return too_large(q, err);
        size_t before = q->pending.len;
        if (q->native) {
            /* the escaped length is only known once rendered: render, then check, so the
             * row that crosses the limit is still never handed out */
            if (q->format == LH_QUERY_JSON && q->rows > 0)
                lh_buf_append(&q->pending, ",", 1);
            int native_rc = native_row(q, r);
            if (native_rc < 0)
                goto oom;
            if (native_rc > 0) {
                q->pending.len = before;
                q->pending.data[before] = '\0';
                return too_large(q, err);
            }
            if (q->format == LH_QUERY_NDJSON)
                lh_buf_append(&q->pending, "\n", 1);
            if (q->sent_bytes + (int64_t)q->pending.len > q->max_bytes) {
                q->pending.len = before;
                q->pending.data[before] = '\0';
                return too_large(q, err);
            }
        } else if (q->format == LH_QUERY_CSV) {
            for (size_t c = 0; c < q->n_cols; c++) {
                duckdb_vector v = duckdb_data_chunk_get_vector(q->chunk, c);
                uint64_t *valid = duckdb_vector_get_validity(v);
                if (c)
                    lh_buf_append(&q->pending, ",", 1);
                if (valid && !duckdb_validity_row_is_valid(valid, r))
                    continue; /* NULL is an empty field */
                duckdb_string_t *s = (duckdb_string_t *)duckdb_vector_get_data(v) + r;
                size_t len = duckdb_string_t_length(*s);
                /* reserve the worst case first, so csv_field's appends cannot abort */
                if (lh_buf_try_reserve(&q->pending, 2 * len + 3) != 0)
                    goto oom;
                csv_field(&q->pending, duckdb_string_t_data(s), len);
            }
            lh_buf_append(&q->pending, "\n", 1);
        } else {
            duckdb_vector v = duckdb_data_chunk_get_vector(q->chunk, 0);
            duckdb_string_t *s = (duckdb_string_t *)duckdb_vector_get_data(v) + r;
            if (q->format == LH_QUERY_JSON && q->rows > 0)
                lh_buf_append(&q->pending, ",", 1);
            if (json_row_append(&q->pending, duckdb_string_t_data(s), duckdb_string_t_length(*s)) != 0)
                goto oom;
            if (q->format == LH_QUERY_NDJSON)
                lh_buf_append(&q->pending, "\n", 1);
        }
        q->chunk_row++;
        q->rows++;
        continue;
    oom:
        q->pending.len = before;
        return lh_err_set(err, LH_ENOMEM, 503, "out_of_memory",
                          "not enough memory to render the result");
    }
    return 0;
}

/* Fetch the next chunk; false when the result is exhausted or failed (err set). */
static bool
next_chunk(lh_query *q, lh_err *err, bool *failed)
{
    if (q->chunk)
        duckdb_destroy_data_chunk(&q->chunk);
    q->chunk = duckdb_fetch_chunk(q->result);
    q->chunk_row = 0;
    *failed = false;
    if (q->chunk == NULL) {
        const char *e = duckdb_result_error(&q->result);
        if (e) {
            sql_error(err, duckdb_result_error_type(&q->result), e);
            *failed = true;
        }
        return false;
    }
    return true;
}

/* Fill q->pending with up to about `want` bytes. */
static int
produce(lh_query *q, size_t want, lh_err *err)
{
    if (!q->header_sent)
        render_header(q);
    while (!q->done && q->pending.len < want) {
        if (q->chunk == NULL || q->chunk_row >= duckdb_data_chunk_get_size(q->chunk)) {
            bool failed;
            if (!next_chunk(q, err, &failed)) {
                q->done = true;
                if (failed) {
                    q->failed = true;
                    return err ? err->rc : LH_EIO;
                }
                break;
            }
        }
        int rc = render_rows(q, want, err);
        if (rc != 0) {
            q->done = true;
            q->failed = true;
            return rc;
        }
    }
    return 0;
}

/* ---- public -------------------------------------------------------------------------------- */

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
execute(lh_query *q, duckdb_prepared_statement prep, bool *stale, lh_err *err)
{
    *stale = false;
    if (duckdb_execute_prepared_streaming(prep, &q->result) == DuckDBError) {
        q->has_result = true;
        duckdb_error_type type = duckdb_result_error_type(&q->result);
        *stale = type == DUCKDB_ERROR_BINDER || type == DUCKDB_ERROR_CATALOG;
        return sql_error(err, type, duckdb_result_error(&q->result));
    }
    q->has_result = true;
    /* a rebound statement keeps its prepared names and types: compare them with what ran */
    idx_t n = duckdb_prepared_statement_column_count(prep);
    *stale = duckdb_column_count(&q->result) != n;
    for (idx_t i = 0; i < n && !*stale; i++) {
        const char *prepared_name = duckdb_prepared_statement_column_name(prep, i);
        const char *name = duckdb_column_name(&q->result, i);
        *stale = duckdb_column_type(&q->result, i) !=
                     duckdb_prepared_statement_column_type(prep, i) ||
                 !prepared_name || !name || strcmp(prepared_name, name) != 0;
        duckdb_free((void *)prepared_name);
    }
    if (*stale)
        return lh_err_set(err, LH_EUNAVAIL, 503, "dataset_changed",
                          "a dataset changed while the query started");
    render_header(q);
    return produce(q, q->pending.len + 1, err);
}

/* The cache key of a query: everything the wrapped statement depends on. */
static char *
cache_key(const lh_query_opts *opts)
{
    return lh_sprintf("%d %lld\n%s", (int)opts->format, (long long)opts->row_limit, opts->sql);
}

static int query_start(lh_engine *eng, const lh_query_opts *opts, bool lookup,
                       int64_t deadline_mono_us, lh_query **out, lh_err *err);

/* A statement this connection prepared for the same text before: execute it. Sets *retry
 * when the statement no longer fits (the caller prepares afresh). */
static int
start_cached(lh_query *q, duckdb_prepared_statement prep, bool *retry, lh_err *err)
{
    size_t first = 0;
    if (q->format != LH_QUERY_CSV && !native_prepare(q, prep))
        first = 1; /* the to_json column */
    describe_columns(q, prep, first);
    return execute(q, prep, retry, err);
}

int
lh_query_start(lh_engine *eng, const lh_query_opts *opts, lh_query **out, lh_err *err)
{
    int64_t deadline = opts->timeout_ms > 0 ? lh_mono_us() + opts->timeout_ms * 1000 : 0;
    return query_start(eng, opts, true, deadline, out, err);
}

/* lookup: a kept statement may be used; deadline_mono_us: when the time limit ends
 * (0: none), the same for a retry. */
static int
query_start(lh_engine *eng, const lh_query_opts *opts, bool lookup, int64_t deadline_mono_us,
            lh_query **out, lh_err *err)
{
    lh_query *q = lh_calloc(1, sizeof *q);
    q->eng = eng;
    q->format = opts->format;
    q->limit = opts->row_limit > 0 ? opts->row_limit : INT64_MAX;
    q->max_bytes = opts->max_bytes > 0 ? opts->max_bytes : INT64_MAX;
    q->deadline_mono_us = deadline_mono_us;
    lh_buf_init(&q->pending);
    int rc = 0;
    char *body = NULL, *wrapped = NULL, *key = NULL;
    duckdb_prepared_statement prep = NULL;
    bool stale = false;
    /* statements of the caller's own (as_of views) would stay on a pooled connection */
    if (opts->n_prelude == 0 && (q->pooled = lh_engine__pool_take(eng)) != NULL)
        q->con = lh_engine__pool_con(q->pooled);
    else if (opts->n_prelude == 0 || duckdb_connect(eng->db, &q->con) == DuckDBError) {
        rc = lh_err_set(err, LH_EIO, 503, "engine_unavailable", "could not connect to the engine");
        goto fail;
    }
    watch(eng, q); /* the time limit covers binding too (a read_csv sniffs when bound) */
    if ((rc = run_prelude(q, opts, err)) != 0)
        goto fail;
    /* the generation the views are in before this query's statement is prepared */
    uint64_t generation = atomic_load(&eng->catalog_generation);
    if (q->pooled) {
        /* setseed() changes the connection's random numbers for later queries */
        q->unpoolable = strcasestr(opts->sql, "setseed") != NULL;
        key = cache_key(opts);
        duckdb_prepared_statement cached =
            lookup ? lh_engine__pool_lookup(q->pooled, key, generation) : NULL;
        if (cached) {
            bool retry = false;
            rc = start_cached(q, cached, &retry, err);
            if (rc == 0)
                goto done;
            if (retry) { /* prepare it afresh, on a clean query */
                lh_engine__pool_forget(q->pooled, key);
                free(key);
                lh_query_free(q);
                return query_start(eng, opts, false, deadline_mono_us, out, err);
            }
            goto fail;
        }
    }
    /* one statement on its own (parsing only is cheap), and one SELECT inside the wrapper
     * below, in which no other kind of statement parses */
    duckdb_extracted_statements stmts = NULL;
    idx_t n_stmts = duckdb_extract_statements(q->con, opts->sql, &stmts);
    duckdb_destroy_extracted(&stmts);
    if (n_stmts != 1) {
        rc = admit(q, opts->sql, NULL, err); /* says why: empty, several, or a syntax error */
        if (rc == 0)
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_sql", "one statement per query");
        goto fail;
    }
    body = trimmed(opts->sql);
    /* a row alias no result column will have (to_json(alias) must mean the row) */
    char hex[9], alias[32];
    lh_random_hex(hex, 4);
    snprintf(alias, sizeof alias, "lh_row_%s", hex);
    /* one row more than the limit tells us whether the answer was cut */
    char limit_clause[48] = "";
    if (opts->row_limit > 0)
        snprintf(limit_clause, sizeof limit_clause, " LIMIT %lld", (long long)opts->row_limit + 1);
    /* JSON also selects the row's own columns: the prepared statement then describes
     * them (names and types for the header) and the query is bound only once */
    if (q->format == LH_QUERY_CSV)
        wrapped = lh_sprintf("SELECT COLUMNS(*)::VARCHAR FROM (\n%s\n) AS %s%s", body, alias,
                             limit_clause);
    else
        wrapped = lh_sprintf("SELECT %s.* FROM (\n%s\n) AS %s%s", alias, body, alias, limit_clause);
    duckdb_state prepared = duckdb_prepare(q->con, wrapped, &prep);
    if (prepared == DuckDBSuccess && q->format != LH_QUERY_CSV && !native_prepare(q, prep)) {
        /* a type rendered by to_json only: bind once more with it (the wrapper is the
         * same subquery, so it admits exactly what the first one did) */
        duckdb_destroy_prepare(&prep);
        free(wrapped);
        wrapped = lh_sprintf("SELECT CAST(to_json(%s) AS VARCHAR), %s.* FROM (\n%s\n) AS %s%s",
                             alias, alias, body, alias, limit_clause);
        prepared = duckdb_prepare(q->con, wrapped, &prep);
    }
    if (prepared == DuckDBError) {
        /* the slow path, for errors only: classify the statement on its own */
        if ((rc = admit(q, opts->sql, NULL, err)) != 0)
            goto fail;
        const char *e = duckdb_prepare_error(prep);
        rc = prepare_error(err, e);
        /* a SELECT alone but not as a subquery: a PRAGMA or SHOW in disguise */
        if (rc == LH_EINVAL && e && strncmp(e, "Parser Error", 12) == 0) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_sql", "only plain SELECT queries are supported");
            lh_err_hint(err, "PRAGMA, SHOW and DESCRIBE are not available; query the data itself");
        }
        goto fail;
    }
    describe_columns(q, prep, q->format == LH_QUERY_CSV || q->native ? 0 : 1);
    if ((rc = execute(q, prep, &stale, err)) != 0)
        goto fail;
    if (q->pooled && !q->unpoolable) { /* for the next query of the same text here */
        lh_engine__pool_keep(q->pooled, key, prep, generation);
        prep = NULL;
    }
done:
    duckdb_destroy_prepare(&prep);
    free(body);
    free(wrapped);
    free(key);
    *out = q;
    return 0;
fail:
    duckdb_destroy_prepare(&prep);
    free(body);
    free(wrapped);
    free(key);
    lh_query_free(q);
    return rc;
}

size_t
lh_query_read(lh_query *q, char *buf, size_t max, bool *end, bool *failed_out, lh_err *err)
{
    *end = false;
    *failed_out = false;
    if (q->pending.len == 0 && !q->footer_sent) {
        lh_err e;
        lh_err_clear(&e);
        int rc = produce(q, max, &e);
        if (q->done && !q->footer_sent) {
            render_footer(q, rc ? &e : NULL);
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
    unwatch(q->eng, q);
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
    lh_buf_free(&q->pending);
    free(q);
}

int
lh_query_to_parquet(lh_engine *eng, const lh_query_opts *opts, const char *path, int64_t *rows,
                    lh_err *err)
{
    lh_query *q = lh_calloc(1, sizeof *q);
    q->eng = eng;
    q->deadline_mono_us = opts->timeout_ms > 0 ? lh_mono_us() + opts->timeout_ms * 1000 : 0;
    q->max_bytes = opts->max_bytes > 0 ? opts->max_bytes : INT64_MAX;
    q->out_path = path;
    lh_buf_init(&q->pending);
    char *body = NULL;
    lh_buf sql;
    lh_buf_init(&sql);
    int rc = 0;
    if (duckdb_connect(eng->db, &q->con) == DuckDBError) {
        rc = lh_err_set(err, LH_EIO, 503, "engine_unavailable", "could not connect to the engine");
        goto out;
    }
    watch(eng, q);
    if ((rc = run_prelude(q, opts, err)) != 0 || (rc = admit(q, opts->sql, NULL, err)) != 0)
        goto out;
    body = trimmed(opts->sql);
    lh_buf_printf(&sql, "COPY (SELECT * FROM (\n%s\n) AS lh_q", body);
    if (opts->row_limit > 0)
        lh_buf_printf(&sql, " LIMIT %lld", (long long)opts->row_limit);
    lh_buf_puts(&sql, ") TO '");
    for (const char *c = path; *c; c++) {
        if (*c == '\'')
            lh_buf_append(&sql, "'", 1);
        lh_buf_append(&sql, c, 1);
    }
    lh_buf_puts(&sql, "' (FORMAT parquet, COMPRESSION zstd)");
    duckdb_result r;
    duckdb_prepared_statement prep = NULL;
    /* prepare, not query: exactly one statement, whatever the text */
    if (duckdb_prepare(q->con, sql.data, &prep) == DuckDBError) {
        rc = prepare_error(err, duckdb_prepare_error(prep));
        duckdb_destroy_prepare(&prep);
        goto out;
    }
    duckdb_state st = duckdb_execute_prepared(prep, &r);
    duckdb_destroy_prepare(&prep);
    if (st == DuckDBError && atomic_load(&q->too_large)) {
        rc = lh_err_set(err, LH_ETOOBIG, 413, "result_too_large",
                        "the result is over the limit of %lld bytes", (long long)q->max_bytes);
        lh_err_hint(err, "select fewer columns or rows, or raise [engine] max_result_bytes");
    } else if (st == DuckDBError) {
        const char *e = duckdb_result_error(&r);
        rc = sql_error(err, duckdb_result_error_type(&r), e);
        if (rc == LH_EINVAL && e && strncmp(e, "Parser Error", 12) == 0) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_sql", "only plain SELECT queries are supported");
            lh_err_hint(err, "PRAGMA, SHOW and DESCRIBE are not available; query the data itself");
        }
    } else if (rows) {
        *rows = (int64_t)duckdb_rows_changed(&r);
    }
    duckdb_destroy_result(&r);
out:
    lh_buf_free(&sql);
    free(body);
    lh_query_free(q);
    return rc;
}

/* ---- typed rows into C -------------------------------------------------------------------- */

#define BATCH_MAX_COLS 16

struct lh_batch {
    duckdb_data_chunk chunk;
    size_t n_rows;
    /* per column, looked up once: the type, and an ARRAY's fixed size + 1 (1: a list) */
    duckdb_type type[BATCH_MAX_COLS];
    size_t array_size[BATCH_MAX_COLS];
};

size_t
lh_batch_rows(const lh_batch *b)
{
    return b->n_rows;
}

static bool
batch_valid(duckdb_vector v, size_t row)
{
    uint64_t *valid = duckdb_vector_get_validity(v);
    return valid == NULL || duckdb_validity_row_is_valid(valid, row);
}

const char *
lh_batch_str(const lh_batch *b, size_t col, size_t row, size_t *len)
{
    duckdb_vector v = duckdb_data_chunk_get_vector(b->chunk, col);
    if (!batch_valid(v, row))
        return NULL;
    duckdb_string_t *s = (duckdb_string_t *)duckdb_vector_get_data(v) + row;
    *len = duckdb_string_t_length(*s);
    return duckdb_string_t_data(s);
}

/* Column col's type (and an ARRAY's size), looked up on first use: a lookup allocates,
 * and readers call the accessors for every row. */
static duckdb_type
batch_type(const lh_batch *b, size_t col, duckdb_vector v)
{
    assert(col < BATCH_MAX_COLS);
    lh_batch *mut = (lh_batch *)b; /* the lookup cache only */
    if (mut->array_size[col] == 0) {
        duckdb_logical_type t = duckdb_vector_get_column_type(v);
        mut->type[col] = duckdb_get_type_id(t);
        mut->array_size[col] = mut->type[col] == DUCKDB_TYPE_ARRAY
                                   ? (size_t)duckdb_array_type_array_size(t) + 1
                                   : 1;
        duckdb_destroy_logical_type(&t);
    }
    return mut->type[col];
}

bool
lh_batch_int(const lh_batch *b, size_t col, size_t row, int64_t *out)
{
    duckdb_vector v = duckdb_data_chunk_get_vector(b->chunk, col);
    if (!batch_valid(v, row))
        return false;
    void *data = duckdb_vector_get_data(v);
    switch (batch_type(b, col, v)) {
    case DUCKDB_TYPE_INTEGER: *out = ((int32_t *)data)[row]; return true;
    case DUCKDB_TYPE_BIGINT: *out = ((int64_t *)data)[row]; return true;
    case DUCKDB_TYPE_SMALLINT: *out = ((int16_t *)data)[row]; return true;
    default: assert(!"lh_batch_int on a column that is not an integer"); return false;
    }
}

/* The element data of a list or array value (floats and ints are both 4 bytes). */
static const void *
batch_elements(const lh_batch *b, size_t col, size_t row, size_t *dim)
{
    duckdb_vector v = duckdb_data_chunk_get_vector(b->chunk, col);
    if (!batch_valid(v, row))
        return NULL;
    if (batch_type(b, col, v) == DUCKDB_TYPE_ARRAY) {
        size_t d = b->array_size[col] - 1;
        *dim = d;
        return (const uint32_t *)duckdb_vector_get_data(duckdb_array_vector_get_child(v)) + row * d;
    }
    duckdb_list_entry *e = (duckdb_list_entry *)duckdb_vector_get_data(v) + row;
    *dim = (size_t)e->length;
    return (const uint32_t *)duckdb_vector_get_data(duckdb_list_vector_get_child(v)) + e->offset;
}

const float *
lh_batch_floats(const lh_batch *b, size_t col, size_t row, size_t *dim)
{
    return batch_elements(b, col, row, dim);
}

const int32_t *
lh_batch_ints(const lh_batch *b, size_t col, size_t row, size_t *dim)
{
    return batch_elements(b, col, row, dim);
}

int
lh_engine_scan(lh_engine *eng, const lh_scan_opts *opts, lh_batch_fn fn, void *ctx, lh_err *err)
{
    lh_query *q = lh_calloc(1, sizeof *q);
    q->eng = eng;
    q->max_bytes = INT64_MAX;
    q->deadline_mono_us = opts->timeout_ms > 0 ? lh_mono_us() + opts->timeout_ms * 1000 : 0;
    lh_buf_init(&q->pending);
    duckdb_prepared_statement prep = NULL;
    int rc = 0;
    if (duckdb_connect(eng->db, &q->con) == DuckDBError) {
        rc = lh_err_set(err, LH_EIO, 503, "engine_unavailable", "could not connect to the engine");
        goto out;
    }
    watch(eng, q);
    if ((rc = lh_engine__fault(err)) != 0 || (rc = admit(q, opts->sql, &prep, err)) != 0)
        goto out;
    q->has_result = true;
    if (duckdb_execute_prepared_streaming(prep, &q->result) == DuckDBError) {
        rc = sql_error(err, duckdb_result_error_type(&q->result), duckdb_result_error(&q->result));
        goto out;
    }
    for (;;) {
        lh_batch b = {.chunk = duckdb_fetch_chunk(q->result)};
        if (b.chunk == NULL) {
            const char *e = duckdb_result_error(&q->result);
            if (e)
                rc = sql_error(err, duckdb_result_error_type(&q->result), e);
            break;
        }
        b.n_rows = (size_t)duckdb_data_chunk_get_size(b.chunk);
        rc = fn(ctx, &b);
        duckdb_destroy_data_chunk(&b.chunk);
        if (rc != 0)
            break;
    }
out:
    duckdb_destroy_prepare(&prep);
    lh_query_free(q);
    return rc;
}
