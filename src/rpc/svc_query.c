/*
 * svc_query.c — lakehouse.v1.Query/Run: the caller's SELECT, prepared by the module every
 * door uses (lh_user_query_prepare: the SQL rule, limits, time travel, workspaces, the
 * caller's view), run by the engine as for POST /query, and streamed as batches of typed
 * columns. The engine renders its JSON answer ({"columns": [...], "rows": [{...}, ...],
 * "row_count", "truncated"}) a chunk at a time; this file cuts the rows out of that text
 * as they come (a scanner that knows strings and nesting), reads each row's values in
 * order, and fills the columns of the batch being built. Memory: one read chunk, one row
 * and one batch. The call's deadline shortens the query's time limit; a cancel stops it
 * (lh_grpc__gone is the query's gone check).
 */
#include "rpc/rpc_int.h"

#include "agent/profiles.h"

#include <stdlib.h>
#include <string.h>

#include "lakehouse/v1/query.pb-c.h"

#define BATCH_ROWS_DEFAULT 1024
#define BATCH_ROWS_MAX 65536
#define BATCH_BYTES (1024 * 1024) /* a batch is sent when its rows' text passes this */

enum { K_INT, K_DOUBLE, K_BOOL, K_STRING };

static int
kind_of(const char *type)
{
    static const char *const ints[] = {"TINYINT",  "SMALLINT",  "INTEGER",  "BIGINT",
                                       "UTINYINT", "USMALLINT", "UINTEGER", NULL};
    for (size_t i = 0; ints[i]; i++)
        if (strcmp(type, ints[i]) == 0)
            return K_INT;
    if (strcmp(type, "FLOAT") == 0 || strcmp(type, "DOUBLE") == 0 ||
        strncmp(type, "DECIMAL", 7) == 0)
        return K_DOUBLE;
    if (strcmp(type, "BOOLEAN") == 0)
        return K_BOOL;
    return K_STRING;
}

typedef struct runner {
    lh_gstream *stream;
    enum { S_HEADER, S_ROWS, S_FOOTER } state;
    lh_buf text; /* the header or footer so far, or the row being cut out */
    int depth;   /* in the rows array: nesting of the row being read (0: between rows) */
    bool in_string, escape;
    size_t n_cols;
    json_t *columns; /* [{"name","type"}] */
    int *kinds;
    bool sent_columns;
    size_t batch_rows, rows, text_bytes;
    int64_t row_count;
    Lakehouse__V1__ColumnValues *values; /* n_cols */
    bool *any_null;
    size_t cap;
} runner;

static void
batch_reset(runner *r)
{
    for (size_t i = 0; i < r->n_cols; i++) {
        Lakehouse__V1__ColumnValues *v = &r->values[i];
        v->n_nulls = v->n_ints = v->n_doubles = v->n_bools = v->n_strings = 0;
        for (size_t k = 0; k < r->rows && v->strings; k++) {
            free(v->strings[k]);
            v->strings[k] = NULL;
        }
        r->any_null[i] = false;
    }
    r->rows = 0;
    r->text_bytes = 0;
}

static int
send_batch(runner *r, bool last, bool truncated, lh_err *err)
{
    Lakehouse__V1__QueryBatch b = LAKEHOUSE__V1__QUERY_BATCH__INIT;
    Lakehouse__V1__ColumnInfo *infos = NULL, **infop = NULL;
    Lakehouse__V1__ColumnValues **vals = lh_malloc((r->n_cols ? r->n_cols : 1) * sizeof *vals);
    if (!r->sent_columns) {
        infos = lh_malloc((r->n_cols ? r->n_cols : 1) * sizeof *infos);
        infop = lh_malloc((r->n_cols ? r->n_cols : 1) * sizeof *infop);
        for (size_t i = 0; i < r->n_cols; i++) {
            const json_t *c = json_array_get(r->columns, i);
            lakehouse__v1__column_info__init(&infos[i]);
            infos[i].name = (char *)json_string_value(json_object_get(c, "name"));
            infos[i].type = (char *)json_string_value(json_object_get(c, "type"));
            infop[i] = &infos[i];
        }
        b.columns = infop;
        b.n_columns = r->n_cols;
        r->sent_columns = true;
    }
    for (size_t i = 0; i < r->n_cols; i++) {
        Lakehouse__V1__ColumnValues *v = &r->values[i];
        v->n_nulls = r->any_null[i] ? r->rows : 0;
        vals[i] = v;
    }
    b.values = vals;
    b.n_values = r->n_cols;
    b.rows = (int64_t)r->rows;
    b.last = last;
    b.truncated = truncated;
    b.row_count = last ? r->row_count : 0;
    int rc = lh_grpc__send(r->stream, &b.base, err);
    free(vals);
    free(infos);
    free(infop);
    batch_reset(r);
    return rc;
}

static int
header_done(runner *r, lh_err *err)
{
    /* "{"columns":[...]," then "rows":[ — parse the columns part as an object */
    lh_buf_append(&r->text, "}", 1);
    json_t *h = json_loadb(r->text.data, r->text.len, 0, NULL);
    r->columns = json_incref(json_object_get(h, "columns"));
    json_decref(h);
    if (!json_is_array(r->columns))
        return lh_err_set(err, LH_EINTERNAL, 500, "internal", "the query's answer had no columns");
    r->n_cols = json_array_size(r->columns);
    r->kinds = lh_calloc(r->n_cols ? r->n_cols : 1, sizeof *r->kinds);
    r->values = lh_calloc(r->n_cols ? r->n_cols : 1, sizeof *r->values);
    r->any_null = lh_calloc(r->n_cols ? r->n_cols : 1, sizeof *r->any_null);
    r->cap = r->batch_rows;
    for (size_t i = 0; i < r->n_cols; i++) {
        const char *type =
            json_string_value(json_object_get(json_array_get(r->columns, i), "type"));
        r->kinds[i] = kind_of(type ? type : "");
        Lakehouse__V1__ColumnValues *v = &r->values[i];
        lakehouse__v1__column_values__init(v);
        v->nulls = lh_calloc(r->cap, sizeof *v->nulls);
        switch (r->kinds[i]) {
        case K_INT:
            v->ints = lh_calloc(r->cap, sizeof *v->ints);
            break;
        case K_DOUBLE:
            v->doubles = lh_calloc(r->cap, sizeof *v->doubles);
            break;
        case K_BOOL:
            v->bools = lh_calloc(r->cap, sizeof *v->bools);
            break;
        default:
            v->strings = lh_calloc(r->cap, sizeof *v->strings);
        }
    }
    r->text.len = 0;
    r->state = S_ROWS;
    return 0;
}

/* The end of a JSON value starting at p (a scalar, string, object or array). */
static const char *
value_end(const char *p, const char *end)
{
    int depth = 0;
    bool in_string = false, escape = false;
    for (; p < end; p++) {
        char ch = *p;
        if (in_string) {
            if (escape)
                escape = false;
            else if (ch == '\\')
                escape = true;
            else if (ch == '"') {
                in_string = false;
                if (depth == 0)
                    return p + 1;
            }
            continue;
        }
        if (ch == '"')
            in_string = true;
        else if (ch == '{' || ch == '[')
            depth++;
        else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return p;
            if (--depth == 0)
                return p + 1;
        } else if (ch == ',' && depth == 0)
            return p;
    }
    return end;
}

/* One row's text ({"a":1,"b":"x"}): its values in order into the batch. */
/* One row's text ({"a":1,"b":"x"}): its values in order into the batch. A value is read
 * from its own text: NULL is the token null; integers through jansson (their range always
 * fits); floating and decimal values by strtod; strings unescaped by jansson; any other
 * value (nested, or a number past 64 bits) is its JSON text as the engine wrote it. */
static int
add_row(runner *r, const char *s, size_t len, lh_err *err)
{
    const char *p = s + 1, *end = s + len - 1; /* inside the braces */
    size_t row = r->rows;
    for (size_t col = 0; col < r->n_cols; col++) {
        /* "key": */
        p = value_end(p, end);
        while (p < end && *p != ':')
            p++;
        p++;
        const char *vend = p < end ? value_end(p, end) : end;
        if (p >= end || vend <= p)
            return lh_err_set(err, LH_EINTERNAL, 500, "internal",
                              "a row of the answer has fewer values than its columns");
        size_t n = (size_t)(vend - p);
        p = vend + 1; /* past the comma */
        const char *tok = vend - n;
        Lakehouse__V1__ColumnValues *cv = &r->values[col];
        bool null = n == 4 && memcmp(tok, "null", 4) == 0;
        cv->nulls[row] = null;
        r->any_null[col] |= null;
        json_t *v = NULL;
        switch (r->kinds[col]) {
        case K_INT:
            v = null ? NULL : json_loadb(tok, n, JSON_DECODE_ANY, NULL);
            cv->ints[row] = json_integer_value(v);
            cv->n_ints = row + 1;
            break;
        case K_DOUBLE: {
            char num[64];
            size_t k = n < sizeof num - 1 ? n : sizeof num - 1;
            const char *t = tok;
            if (k >= 2 && *t == '"') { /* "NaN", "Infinity" */
                t++;
                k -= 2;
            }
            memcpy(num, t, k);
            num[k] = '\0';
            cv->doubles[row] = null ? 0 : strtod(num, NULL);
            cv->n_doubles = row + 1;
            break;
        }
        case K_BOOL:
            cv->bools[row] = n == 4 && memcmp(tok, "true", 4) == 0;
            cv->n_bools = row + 1;
            break;
        default:
            if (null) {
                cv->strings[row] = lh_strdup("");
            } else if (*tok == '"') {
                v = json_loadb(tok, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
                cv->strings[row] = lh_strndup(json_string_value(v) ? json_string_value(v) : "",
                                              json_string_length(v));
            } else {
                cv->strings[row] = lh_strndup(tok, n);
            }
            cv->n_strings = row + 1;
        }
        json_decref(v);
    }
    r->rows++;
    r->row_count++;
    r->text_bytes += len;
    if (r->rows == r->batch_rows || r->text_bytes >= BATCH_BYTES)
        return send_batch(r, false, false, err);
    return 0;
}

/* Feed rendered bytes through the scanner. */
static int
feed(runner *r, const char *buf, size_t n, lh_err *err)
{
    for (size_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (r->state == S_HEADER) {
            lh_buf_append(&r->text, &ch, 1);
            static const char marker[] = "],\"rows\":[";
            size_t m = sizeof marker - 1;
            if (r->text.len >= m && memcmp(r->text.data + r->text.len - m, marker, m) == 0) {
                r->text.len -= m - 1; /* keep the ']' closing columns */
                int rc = header_done(r, err);
                if (rc != 0)
                    return rc;
            }
            continue;
        }
        if (r->state == S_FOOTER) { /* ,"row_count":N,"truncated":B} */
            if (!(r->text.len == 1 && ch == ','))
                lh_buf_append(&r->text, &ch, 1);
            continue;
        }
        /* S_ROWS */
        if (r->depth == 0) {
            if (ch == '{') {
                r->text.len = 0;
                lh_buf_append(&r->text, &ch, 1);
                r->depth = 1;
            } else if (ch == ']') {
                r->state = S_FOOTER;
                r->text.len = 0;
                lh_buf_append(&r->text, "{", 1);
            }
            continue;
        }
        lh_buf_append(&r->text, &ch, 1);
        if (r->in_string) {
            if (r->escape)
                r->escape = false;
            else if (ch == '\\')
                r->escape = true;
            else if (ch == '"')
                r->in_string = false;
        } else if (ch == '"') {
            r->in_string = true;
        } else if (ch == '{' || ch == '[') {
            r->depth++;
        } else if ((ch == '}' || ch == ']') && --r->depth == 0) {
            int rc = add_row(r, r->text.data, r->text.len, err);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static void
runner_free(runner *r)
{
    batch_reset(r);
    for (size_t i = 0; r->values && i < r->n_cols; i++) {
        free(r->values[i].nulls);
        free(r->values[i].ints);
        free(r->values[i].doubles);
        free(r->values[i].bools);
        free(r->values[i].strings);
    }
    free(r->values);
    free(r->kinds);
    free(r->any_null);
    json_decref(r->columns);
    lh_buf_free(&r->text);
}

static json_t *
point_json(int64_t version, const char *timestamp, bool is_version)
{
    return is_version ? json_pack("{s:I}", "version", (json_int_t)version)
                      : json_pack("{s:s}", "timestamp", timestamp ? timestamp : "");
}

/* The API's as_of object for the message's. */
static json_t *
as_of_json(const Lakehouse__V1__AsOf *a)
{
    if (a == NULL)
        return NULL;
    if (a->n_datasets) {
        json_t *ds = json_object();
        for (size_t i = 0; i < a->n_datasets; i++) {
            const Lakehouse__V1__AsOfPoint *p = a->datasets[i]->value;
            json_object_set_new(
                ds, a->datasets[i]->key,
                p ? point_json(p->version, p->timestamp,
                               p->point_case == LAKEHOUSE__V1__AS_OF_POINT__POINT_VERSION)
                  : json_object());
        }
        return json_pack("{s:o}", "datasets", ds);
    }
    if (a->point_case == LAKEHOUSE__V1__AS_OF__POINT__NOT_SET)
        return json_object(); /* the catalog says what is missing */
    return point_json(a->version, a->timestamp,
                      a->point_case == LAKEHOUSE__V1__AS_OF__POINT_VERSION);
}

static int
run(lh_gcall *c, const uint8_t *in, size_t in_len, lh_gstream *s, lh_err *err)
{
    Lakehouse__V1__QueryRequest *req = lakehouse__v1__query_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.QueryRequest");
    if (req->batch_rows > BATCH_ROWS_MAX) {
        lakehouse__v1__query_request__free_unpacked(req, NULL);
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'batch_rows' may be at most %d", BATCH_ROWS_MAX);
    }
    json_t *as_of = as_of_json(req->as_of);
    lh_user_query uq;
    int rc = lh_user_query_prepare(c->deps->catalog, c->deps->workspaces, c->principal, c->config,
                                   req->sql, req->limit, as_of,
                                   req->workspace_id[0] ? req->workspace_id : NULL, &uq, err);
    json_decref(as_of);
    runner r = {.stream = s, .batch_rows = req->batch_rows ? req->batch_rows : BATCH_ROWS_DEFAULT};
    lh_buf_init(&r.text);
    lh_query *q = NULL;
    if (rc == 0) {
        lh_query_opts opts = uq.opts;
        opts.format = LH_QUERY_JSON;
        opts.gone = (lh_gone_check){lh_grpc__gone, s};
        opts.timeout_ms = lh_grpc__time_limit(c, opts.timeout_ms);
        rc = lh_query_start(c->deps->engine, &opts, &q, err);
    }
    char buf[65536];
    bool end = false, failed = false;
    while (rc == 0 && !end) {
        size_t n = lh_query_read(q, buf, sizeof buf, &end, &failed, err);
        rc = feed(&r, buf, n, err);
        if (rc == 0 && failed)
            rc = err->http_status ? LH_EIO : LH_EINTERNAL; /* err is the query's */
    }
    if (rc == 0) {
        json_t *footer = json_loadb(r.text.data, r.text.len, 0, NULL);
        rc = send_batch(&r, true, json_is_true(json_object_get(footer, "truncated")), err);
        json_decref(footer);
    }
    lh_query_free(q);
    lh_user_query_release(&uq);
    runner_free(&r);
    lakehouse__v1__query_request__free_unpacked(req, NULL);
    return rc;
}

const lh_gmethod lh_grpc__query[] = {
    {"/lakehouse.v1.Query/Run", LH_ALLOW_ANY, NULL, run, NULL, 0, NULL},
};
const size_t lh_grpc__n_query = sizeof lh_grpc__query / sizeof lh_grpc__query[0];
