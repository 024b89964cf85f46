/*
 * query_scan.c — typed rows into C: a SELECT's rows handed to a callback one DuckDB chunk
 * at a time (lh_engine_scan), with accessors that read values straight from the chunk's
 * vectors. For callers that need values, not rendered text (vectors, ids).
 *
 * The SELECT is admitted like user SQL (query_admit.c) and runs on a connection of its
 * own under the same watchdog time limit. A batch belongs to the scanning thread and is
 * valid during the callback only.
 */
#include "engine/engine_int.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

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
        mut->array_size[col] =
            mut->type[col] == DUCKDB_TYPE_ARRAY ? (size_t)duckdb_array_type_array_size(t) + 1 : 1;
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
    case DUCKDB_TYPE_INTEGER:
        *out = ((int32_t *)data)[row];
        return true;
    case DUCKDB_TYPE_BIGINT:
        *out = ((int64_t *)data)[row];
        return true;
    case DUCKDB_TYPE_SMALLINT:
        *out = ((int16_t *)data)[row];
        return true;
    default:
        assert(!"lh_batch_int on a column that is not an integer");
        return false;
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
    lh_query *q = lh_engine__query_new(eng, lh_engine__deadline(opts->timeout_ms), 0);
    duckdb_prepared_statement prep = NULL;
    int rc = 0;
    if (opts->principal && (rc = lh_engine__slot_take(eng, opts->principal, q->deadline_mono_us,
                                                      NULL, &q->slot, err)) != 0)
        goto out;
    if (duckdb_connect(eng->db, &q->con) == DuckDBError) {
        rc = lh_err_set(err, LH_EIO, 503, "engine_unavailable", "could not connect to the engine");
        goto out;
    }
    lh_engine__watch(eng, q);
    lh_engine__resolver_set(opts->resolver);
    lh_engine__note_reset();
    lh_engine__reads_set(opts->reads);
    if ((rc = lh_engine__fault(err)) != 0 ||
        (rc = lh_engine__admit(q, opts->sql, &prep, err)) != 0 ||
        (rc = lh_engine__admit_names(q, opts->sql, err)) != 0)
        goto out;
    if ((rc = lh_engine__bind(prep, opts->params, opts->n_params, err)) != 0)
        goto out;
    q->has_result = true;
    if (duckdb_execute_prepared_streaming(prep, &q->result) == DuckDBError) {
        rc = lh_engine__sql_error(err, duckdb_result_error_type(&q->result),
                                  duckdb_result_error(&q->result));
        goto out;
    }
    for (;;) {
        lh_batch b = {.chunk = duckdb_fetch_chunk(q->result)};
        if (b.chunk == NULL) {
            const char *e = duckdb_result_error(&q->result);
            if (e)
                rc = lh_engine__sql_error(err, duckdb_result_error_type(&q->result), e);
            break;
        }
        b.n_rows = (size_t)duckdb_data_chunk_get_size(b.chunk);
        rc = fn(ctx, &b);
        duckdb_destroy_data_chunk(&b.chunk);
        if (rc != 0)
            break;
    }
out:
    lh_engine__resolver_set(NULL);
    lh_engine__reads_set(NULL);
    bool rescue_used = false;
    rc = lh_engine__note_finish(rc, &rescue_used, err);
    if (opts->rescue_used)
        *opts->rescue_used = rescue_used;
    /* an engine without the admission walk never learnt whether the text changes by
     * itself: nothing it answers is stable */
    if (opts->reads && (rc != 0 || rescue_used || q->changing || !eng->user_sql))
        opts->reads->stable = false;
    duckdb_destroy_prepare(&prep);
    lh_query_free(q);
    return rc;
}

/* ---- bound parameters ----------------------------------------------------------------- */

static duckdb_value
param_value(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return duckdb_create_varchar_length(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return duckdb_create_int64(json_integer_value(v));
    case JSON_REAL:
        return duckdb_create_double(json_real_value(v));
    case JSON_TRUE:
    case JSON_FALSE:
        return duckdb_create_bool(json_is_true(v));
    case JSON_NULL:
        return duckdb_create_null_value();
    default:
        return NULL;
    }
}

int
lh_engine__bind(duckdb_prepared_statement prep, const lh_sql_param *params, size_t n, lh_err *err)
{
    duckdb_clear_bindings(prep);
    for (size_t i = 0; i < n; i++) {
        idx_t idx = 0;
        if (duckdb_bind_parameter_index(prep, &idx, params[i].name) == DuckDBError)
            return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                              "the statement has no parameter $%s", params[i].name);
        duckdb_value v = param_value(params[i].value);
        if (v == NULL)
            return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                              "parameter $%s must be a string, number, boolean or null",
                              params[i].name);
        duckdb_state bound = duckdb_bind_value(prep, idx, v);
        duckdb_destroy_value(&v);
        if (bound == DuckDBError)
            return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                              "could not bind parameter $%s", params[i].name);
    }
    idx_t wanted = duckdb_nparams(prep);
    if (wanted > n) {
        /* name the first parameter left without a value */
        for (idx_t p = 1; p <= wanted; p++) {
            const char *name = duckdb_parameter_name(prep, p);
            bool given = false;
            for (size_t i = 0; name && i < n && !given; i++)
                given = strcmp(params[i].name, name) == 0;
            if (!given) {
                int rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                                    "parameter $%s has no value", name ? name : "?");
                duckdb_free((void *)name);
                return rc;
            }
            duckdb_free((void *)name);
        }
    }
    return 0;
}

/* ---- describing a statement ------------------------------------------------------------ */

static bool
all_digits(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int
lh_engine_describe(lh_engine *eng, const char *sql, json_t **out, lh_err *err)
{
    lh_query *q = lh_engine__query_new(eng, lh_engine__deadline(10000), 0);
    duckdb_prepared_statement prep = NULL;
    json_t *params = json_array(), *tables = NULL, *columns = json_array();
    int rc = 0;
    if (duckdb_connect(eng->db, &q->con) == DuckDBError) {
        rc = lh_err_set(err, LH_EIO, 503, "engine_unavailable", "could not connect to the engine");
        goto out;
    }
    lh_engine__watch(eng, q);
    if ((rc = lh_engine__admit(q, sql, &prep, err)) != 0 ||
        (rc = lh_engine__admit_names(q, sql, err)) != 0 ||
        (rc = lh_engine__names(q, sql, &tables, err)) != 0)
        goto out;
    for (idx_t p = 1; p <= duckdb_nparams(prep); p++) {
        const char *name = duckdb_parameter_name(prep, p);
        bool positional = name == NULL || all_digits(name);
        if (!positional)
            json_array_append_new(params, json_string(name));
        duckdb_free((void *)name);
        if (positional) {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_sql",
                            "the query has a positional parameter ($1 or ?)");
            lh_err_hint(err, "name parameters after the input schema's properties, e.g. $city");
            goto out;
        }
    }
    for (size_t i = 0; i < q->n_cols; i++)
        json_array_append_new(
            columns, json_pack("{s:s, s:s}", "name", q->col_names[i], "type", q->col_types[i]));
    *out = json_pack("{s:O, s:O, s:O}", "params", params, "tables", tables, "columns", columns);
out:
    json_decref(params);
    json_decref(tables);
    json_decref(columns);
    duckdb_destroy_prepare(&prep);
    lh_query_free(q);
    return rc;
}
