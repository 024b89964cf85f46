/*
 * query_render.c — a running query's rows rendered as JSON, NDJSON or CSV.
 *
 * The statement query.c runs is a wrapper around the user's SELECT:
 *   JSON/NDJSON: SELECT t.* FROM (\n<sql>\n) AS t LIMIT n+1
 *                and, when a column has a type we do not render (see native_type),
 *                SELECT CAST(to_json(t) AS VARCHAR), t.* FROM (\n<sql>\n) AS t LIMIT n+1
 *   CSV:         SELECT COLUMNS(*)::VARCHAR FROM (\n<sql>\n) AS t LIMIT n+1
 * so DuckDB formats every type (nested, dates, decimals) and we only copy strings, except
 * for plain numbers, booleans, text and dates, which we write here exactly as to_json
 * would (to_json costs ~0.2 ms a query to bind and start). Rows stream chunk by chunk
 * (duckdb_fetch_chunk on a streaming result), so memory stays bounded by one chunk (and
 * the bytes not yet handed out) whatever the result size. A row that would take the
 * result past max_bytes is never rendered whole: the stream ends with 413 instead.
 *
 * One query's thread at a time; nothing here takes a lock.
 */
#include "engine/engine_int.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    bool quote = len == 0 ? false
                          : memchr(s, ',', len) || memchr(s, '"', len) || memchr(s, '\n', len) ||
                                memchr(s, '\r', len);
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
        case '"':
            *w++ = '"';
            break;
        case '\\':
            *w++ = '\\';
            break;
        case '\b':
            *w++ = 'b';
            break;
        case '\f':
            *w++ = 'f';
            break;
        case '\n':
            *w++ = 'n';
            break;
        case '\r':
            *w++ = 'r';
            break;
        case '\t':
            *w++ = 't';
            break;
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
    size_t t = lh_json_decimal(text, negative, digits, n, exp10, -6, 21);
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
        case DUCKDB_TYPE_TINYINT:
            num = snprintf(text, sizeof text, "%d", ((int8_t *)data)[r]);
            break;
        case DUCKDB_TYPE_SMALLINT:
            num = snprintf(text, sizeof text, "%d", ((int16_t *)data)[r]);
            break;
        case DUCKDB_TYPE_INTEGER:
            num = snprintf(text, sizeof text, "%d", ((int32_t *)data)[r]);
            break;
        case DUCKDB_TYPE_BIGINT:
            num = snprintf(text, sizeof text, "%lld", (long long)((int64_t *)data)[r]);
            break;
        case DUCKDB_TYPE_UTINYINT:
            num = snprintf(text, sizeof text, "%u", ((uint8_t *)data)[r]);
            break;
        case DUCKDB_TYPE_USMALLINT:
            num = snprintf(text, sizeof text, "%u", ((uint16_t *)data)[r]);
            break;
        case DUCKDB_TYPE_UINTEGER:
            num = snprintf(text, sizeof text, "%u", ((uint32_t *)data)[r]);
            break;
        case DUCKDB_TYPE_UBIGINT:
            num = snprintf(text, sizeof text, "%llu", (unsigned long long)((uint64_t *)data)[r]);
            break;
        case DUCKDB_TYPE_FLOAT:
            native_double(out, ((float *)data)[r]);
            break;
        case DUCKDB_TYPE_DOUBLE:
            native_double(out, ((double *)data)[r]);
            break;
        case DUCKDB_TYPE_DATE:
            native_date(out, ((duckdb_date *)data)[r]);
            break;
        case DUCKDB_TYPE_VARCHAR:
            native_str(out, str, str_len);
            break;
        default:
            lh_buf_append(out, "null", 4);
            break; /* not reached: see native_type */
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

bool
lh_engine__native_prepare(lh_query *q, const lh_prep_cols *pc)
{
    size_t n = pc->n;
    for (size_t i = 0; i < n; i++)
        if (!native_type(pc->types[i]))
            return false;
    q->col_kinds = lh_calloc(n ? n : 1, sizeof *q->col_kinds);
    q->col_keys = lh_calloc(n ? n : 1, sizeof *q->col_keys);
    for (size_t i = 0; i < n; i++) {
        q->col_kinds[i] = pc->types[i];
        const char *name = pc->names[i];
        size_t len = strlen(name);
        /* a column name is small: the aborting allocation is fine here */
        lh_buf key = {.data = lh_malloc(6 * len + 4), .len = 0, .cap = 6 * len + 4};
        native_str(&key, name, len);
        lh_buf_append(&key, ":", 1);
        q->col_keys[i] = lh_buf_steal(&key);
    }
    q->native = true;
    return true;
}

void
lh_engine__render_header(lh_query *q)
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

void
lh_engine__render_footer(lh_query *q, const lh_err *error)
{
    lh_buf *out = &q->pending;
    if (q->format == LH_QUERY_JSON) {
        lh_buf_printf(out, "],\"row_count\":%lld,\"truncated\":%s", (long long)q->rows,
                      q->truncated ? "true" : "false");
        if (q->rescue_used) /* read from rescue copies: said in the body as in the header */
            lh_buf_puts(out, ",\"rescue_used\":true");
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
                                        : (size_t)duckdb_string_t_length(*s)) +
             1;
    }
    return n;
}

int
lh_engine__too_large(const lh_query *q, lh_err *err)
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
            return lh_engine__too_large(q, err);
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
                return lh_engine__too_large(q, err);
            }
            if (q->format == LH_QUERY_NDJSON)
                lh_buf_append(&q->pending, "\n", 1);
            if (q->sent_bytes + (int64_t)q->pending.len > q->max_bytes) {
                q->pending.len = before;
                q->pending.data[before] = '\0';
                return lh_engine__too_large(q, err);
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
            if (json_row_append(&q->pending, duckdb_string_t_data(s), duckdb_string_t_length(*s)) !=
                0)
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
            lh_engine__sql_error(err, duckdb_result_error_type(&q->result), e);
            *failed = true;
        }
        return false;
    }
    return true;
}

int
lh_engine__produce(lh_query *q, size_t want, lh_err *err)
{
    if (!q->header_sent)
        lh_engine__render_header(q);
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
