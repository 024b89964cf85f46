/*
 * writer.c — typed rows from C into a Parquet file. Rows are set column by column into a
 * DuckDB data chunk, appended to a temporary table on the writer's own connection a chunk
 * at a time, and written out with one COPY at the end. Row groups are small (8,192 rows)
 * so that readers picking a few rows by a sorted key skip most of the file. This is how
 * data computed in C (embedding vectors) becomes Parquet without text conversions.
 *
 * Thread safety: one thread at a time per writer; writers on the same engine are
 * independent (each has its connection, so its temporary table is private).
 */
#include "engine/engine_int.h"

#include <assert.h>
#include <string.h>

struct lh_writer {
    duckdb_connection con;
    duckdb_appender app;
    size_t n_cols;
    duckdb_logical_type *types;
    duckdb_type *ids;     /* per column: its type, or a DECIMAL's storage type */
    duckdb_data_chunk chunk;
    void **data;          /* per column: the chunk's values */
    uint64_t **validity;  /* per column: the chunk's validity mask, once a NULL is set */
    size_t row;           /* the row being set in chunk */
    size_t cap;           /* rows per chunk */
    int64_t rows;         /* rows appended in total */
};

static int
writer_error(lh_err *err, const char *what, const char *detail)
{
    lh_err_set(err, LH_EIO, 500, "engine_error", "could not %s", what);
    if (detail)
        lh_err_detail(err, "%s", detail);
    return LH_EIO;
}

static void
new_chunk(lh_writer *w)
{
    w->chunk = duckdb_create_data_chunk(w->types, w->n_cols);
    for (size_t i = 0; i < w->n_cols; i++) {
        duckdb_vector v = duckdb_data_chunk_get_vector(w->chunk, i);
        w->data[i] = duckdb_vector_get_data(v);
        w->validity[i] = NULL;
    }
    w->row = 0;
}

int
lh_writer_open(lh_engine *eng, const char *columns, lh_writer **out, lh_err *err)
{
    lh_writer *w = lh_calloc(1, sizeof *w);
    int rc = 0;
    if (duckdb_connect(eng->db, &w->con) == DuckDBError) {
        rc = writer_error(err, "connect to the engine", NULL);
        goto fail;
    }
    char *sql = lh_sprintf("CREATE TEMP TABLE lh_writer_rows (%s)", columns);
    duckdb_result r;
    if (duckdb_query(w->con, sql, &r) == DuckDBError)
        rc = writer_error(err, "create a table to write", duckdb_result_error(&r));
    duckdb_destroy_result(&r);
    free(sql);
    if (rc != 0)
        goto fail;
    if (duckdb_appender_create_ext(w->con, "temp", "main", "lh_writer_rows", &w->app) ==
        DuckDBError) {
        rc = writer_error(err, "append rows", duckdb_appender_error(w->app));
        goto fail;
    }
    w->n_cols = (size_t)duckdb_appender_column_count(w->app);
    w->types = lh_calloc(w->n_cols, sizeof *w->types);
    w->ids = lh_calloc(w->n_cols, sizeof *w->ids);
    w->data = lh_calloc(w->n_cols, sizeof *w->data);
    w->validity = lh_calloc(w->n_cols, sizeof *w->validity);
    for (size_t i = 0; i < w->n_cols; i++) {
        w->types[i] = duckdb_appender_column_type(w->app, i);
        w->ids[i] = duckdb_get_type_id(w->types[i]);
        if (w->ids[i] == DUCKDB_TYPE_DECIMAL)
            w->ids[i] = duckdb_decimal_internal_type(w->types[i]);
    }
    w->cap = (size_t)duckdb_vector_size();
    new_chunk(w);
    *out = w;
    return 0;
fail:
    lh_writer_free(w);
    return rc;
}

void
lh_writer_null(lh_writer *w, size_t col)
{
    if (w->validity[col] == NULL) {
        duckdb_vector v = duckdb_data_chunk_get_vector(w->chunk, col);
        duckdb_vector_ensure_validity_writable(v);
        w->validity[col] = duckdb_vector_get_validity(v);
    }
    duckdb_validity_set_row_invalid(w->validity[col], w->row);
}

void
lh_writer_str(lh_writer *w, size_t col, const char *s, size_t len)
{
    if (s == NULL) {
        lh_writer_null(w, col);
        return;
    }
    duckdb_vector_assign_string_element_len(duckdb_data_chunk_get_vector(w->chunk, col), w->row,
                                            s, len);
}

void
lh_writer_int(lh_writer *w, size_t col, int64_t value)
{
    void *d = w->data[col];
    switch (w->ids[col]) {
    case DUCKDB_TYPE_SMALLINT: ((int16_t *)d)[w->row] = (int16_t)value; break;
    case DUCKDB_TYPE_INTEGER: ((int32_t *)d)[w->row] = (int32_t)value; break;
    case DUCKDB_TYPE_BIGINT: ((int64_t *)d)[w->row] = value; break;
    case DUCKDB_TYPE_HUGEINT:
        ((duckdb_hugeint *)d)[w->row] = (duckdb_hugeint){(uint64_t)value, value < 0 ? -1 : 0};
        break;
    default: assert(!"lh_writer_int on a column that is not an integer or DECIMAL");
    }
}

void
lh_writer_int128(lh_writer *w, size_t col, int64_t upper, uint64_t lower)
{
    if (w->ids[col] != DUCKDB_TYPE_HUGEINT) {
        lh_writer_int(w, col, (int64_t)lower);
        return;
    }
    ((duckdb_hugeint *)w->data[col])[w->row] = (duckdb_hugeint){lower, upper};
}

void
lh_writer_bool(lh_writer *w, size_t col, bool value)
{
    assert(w->ids[col] == DUCKDB_TYPE_BOOLEAN);
    ((bool *)w->data[col])[w->row] = value;
}

void
lh_writer_double(lh_writer *w, size_t col, double value)
{
    if (w->ids[col] == DUCKDB_TYPE_FLOAT) {
        ((float *)w->data[col])[w->row] = (float)value;
        return;
    }
    assert(w->ids[col] == DUCKDB_TYPE_DOUBLE);
    ((double *)w->data[col])[w->row] = value;
}

void
lh_writer_date(lh_writer *w, size_t col, int32_t days)
{
    assert(w->ids[col] == DUCKDB_TYPE_DATE);
    ((int32_t *)w->data[col])[w->row] = days;
}

void
lh_writer_micros(lh_writer *w, size_t col, int64_t micros)
{
    assert(w->ids[col] == DUCKDB_TYPE_TIME || w->ids[col] == DUCKDB_TYPE_TIMESTAMP ||
           w->ids[col] == DUCKDB_TYPE_TIMESTAMP_TZ);
    ((int64_t *)w->data[col])[w->row] = micros;
}

void
lh_writer_uuid(lh_writer *w, size_t col, const uint8_t bytes[16])
{
    assert(w->ids[col] == DUCKDB_TYPE_UUID);
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = hi << 8 | bytes[i];
        lo = lo << 8 | bytes[8 + i];
    }
    /* DuckDB keeps a UUID as a signed 128-bit number with the top bit flipped, so that
     * UUIDs sort as their text does */
    ((duckdb_hugeint *)w->data[col])[w->row] =
        (duckdb_hugeint){lo, (int64_t)(hi ^ ((uint64_t)1 << 63))};
}

void
lh_writer_floats(lh_writer *w, size_t col, const float *values, size_t dim)
{
    assert(duckdb_get_type_id(w->types[col]) == DUCKDB_TYPE_ARRAY);
    assert((size_t)duckdb_array_type_array_size(w->types[col]) == dim);
    duckdb_vector v = duckdb_data_chunk_get_vector(w->chunk, col);
    float *child = duckdb_vector_get_data(duckdb_array_vector_get_child(v));
    memcpy(child + w->row * dim, values, dim * sizeof *values);
}

void
lh_writer_ints(lh_writer *w, size_t col, const int32_t *values, size_t dim)
{
    assert(duckdb_get_type_id(w->types[col]) == DUCKDB_TYPE_ARRAY);
    assert((size_t)duckdb_array_type_array_size(w->types[col]) == dim);
    duckdb_vector v = duckdb_data_chunk_get_vector(w->chunk, col);
    int32_t *child = duckdb_vector_get_data(duckdb_array_vector_get_child(v));
    memcpy(child + w->row * dim, values, dim * sizeof *values);
}

static int
append_chunk(lh_writer *w, lh_err *err)
{
    if (w->row == 0)
        return 0;
    duckdb_data_chunk_set_size(w->chunk, w->row);
    int rc = 0;
    if (duckdb_append_data_chunk(w->app, w->chunk) == DuckDBError)
        rc = writer_error(err, "append rows", duckdb_appender_error(w->app));
    duckdb_destroy_data_chunk(&w->chunk);
    new_chunk(w);
    return rc;
}

int
lh_writer_next_row(lh_writer *w, lh_err *err)
{
    w->row++;
    w->rows++;
    return w->row == w->cap ? append_chunk(w, err) : 0;
}

int
lh_writer_finish(lh_writer *w, const char *path, int64_t *rows, lh_err *err)
{
    lh_writer_copy_opts opts = {.row_group_size = 8192, .preserve_order = true};
    return lh_writer_finish_as(w, NULL, path, &opts, rows, err);
}

int
lh_writer_finish_as(lh_writer *w, const char *select_list, const char *path,
                    const lh_writer_copy_opts *opts, int64_t *rows, lh_err *err)
{
    int rc = append_chunk(w, err);
    if (rc != 0)
        return rc;
    if (duckdb_appender_flush(w->app) == DuckDBError)
        return writer_error(err, "append rows", duckdb_appender_error(w->app));
    lh_buf sql;
    lh_buf_init(&sql);
    if (select_list)
        lh_buf_printf(&sql, "COPY (SELECT %s FROM lh_writer_rows) TO ", select_list);
    else
        lh_buf_puts(&sql, "COPY lh_writer_rows TO ");
    lh_sql_quote(&sql, path);
    lh_buf_printf(&sql, " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE %lld",
                  (long long)(opts->row_group_size > 0 ? opts->row_group_size : 122880));
    if (opts->zstd_level > 0)
        lh_buf_printf(&sql, ", COMPRESSION_LEVEL %d", opts->zstd_level);
    lh_buf_puts(&sql, opts->preserve_order ? ")" : ", PRESERVE_ORDER false)");
    duckdb_result r;
    if (duckdb_query(w->con, sql.data, &r) == DuckDBError)
        rc = lh_engine__internal_error(err, &r);
    duckdb_destroy_result(&r);
    lh_buf_free(&sql);
    if (rc == 0 && rows)
        *rows = w->rows;
    return rc;
}

void
lh_writer_free(lh_writer *w)
{
    if (w == NULL)
        return;
    if (w->chunk)
        duckdb_destroy_data_chunk(&w->chunk);
    if (w->app)
        duckdb_appender_destroy(&w->app);
    for (size_t i = 0; i < w->n_cols; i++)
        duckdb_destroy_logical_type(&w->types[i]);
    free(w->types);
    free(w->ids);
    free(w->data);
    free(w->validity);
    if (w->con)
        duckdb_disconnect(&w->con);
    free(w);
}
