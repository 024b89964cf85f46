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
    duckdb_data_chunk chunk;
    size_t row;     /* the row being set in chunk */
    size_t cap;     /* rows per chunk */
    int64_t rows;   /* rows appended in total */
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
    for (size_t i = 0; i < w->n_cols; i++)
        w->types[i] = duckdb_appender_column_type(w->app, i);
    w->cap = (size_t)duckdb_vector_size();
    new_chunk(w);
    *out = w;
    return 0;
fail:
    lh_writer_free(w);
    return rc;
}

void
lh_writer_str(lh_writer *w, size_t col, const char *s, size_t len)
{
    duckdb_vector v = duckdb_data_chunk_get_vector(w->chunk, col);
    if (s == NULL) {
        duckdb_vector_ensure_validity_writable(v);
        duckdb_validity_set_row_invalid(duckdb_vector_get_validity(v), w->row);
        return;
    }
    duckdb_vector_assign_string_element_len(v, w->row, s, len);
}

void
lh_writer_int(lh_writer *w, size_t col, int64_t value)
{
    duckdb_vector v = duckdb_data_chunk_get_vector(w->chunk, col);
    switch (duckdb_get_type_id(w->types[col])) {
    case DUCKDB_TYPE_INTEGER: ((int32_t *)duckdb_vector_get_data(v))[w->row] = (int32_t)value; break;
    case DUCKDB_TYPE_BIGINT: ((int64_t *)duckdb_vector_get_data(v))[w->row] = value; break;
    default: assert(!"lh_writer_int on a column that is not INTEGER or BIGINT");
    }
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
    int rc = append_chunk(w, err);
    if (rc != 0)
        return rc;
    if (duckdb_appender_flush(w->app) == DuckDBError)
        return writer_error(err, "append rows", duckdb_appender_error(w->app));
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "COPY lh_writer_rows TO ");
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 8192)");
    duckdb_result r;
    if (duckdb_query(w->con, sql.data, &r) == DuckDBError)
        rc = writer_error(err, "write a parquet file", duckdb_result_error(&r));
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
    if (w->con)
        duckdb_disconnect(&w->con);
    free(w);
}
