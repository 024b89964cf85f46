/*
 * writer.c — typed rows from C into a Parquet file. Rows are set column by column into
 * DuckDB data chunks, which the writer keeps; the file is written with one COPY whose
 * source is the table function lh_writer_scan(id), handing those very chunks to DuckDB
 * (their vectors are referenced, not copied). Nothing goes through a table or the
 * appender, each of which would copy every value once more. This is how data computed or
 * decoded in C (embedding vectors, PostgreSQL's binary rows) becomes Parquet without text
 * conversions.
 *
 * lh_writer_scan is registered in an engine's database the first time a writer opens on
 * it; it finds the writer by id in the engine's registry (writers_lock), so SQL can reach
 * only writers that are open on that same engine, and only by their random 63-bit id,
 * which appears nowhere but in the writer's own COPY. Writers open on the internal
 * engine, which runs no user SQL.
 *
 * Thread safety: one thread at a time per writer; writers on the same engine are
 * independent. The scan may run on several of DuckDB's threads at once (when the order
 * need not be kept); they share only an atomic chunk counter.
 */
#include "engine/engine_int.h"

#include <assert.h>
#include <stdatomic.h>
#include <string.h>

#define CHUNKS_GROWTH 64

struct lh_writer {
    lh_engine *eng;
    int64_t id;             /* in eng's registry, for lh_writer_scan(id) */
    struct lh_writer *next; /* in eng's registry */
    duckdb_connection con;
    size_t n_cols;
    char **names;
    duckdb_logical_type *types;
    duckdb_type *ids;          /* per column: its type, or a DECIMAL's storage type */
    duckdb_data_chunk *chunks; /* full chunks, in order */
    size_t n_chunks, cap_chunks;
    duckdb_data_chunk chunk; /* the chunk being filled */
    void **data;             /* per column: the chunk's values */
    uint64_t **validity;     /* per column: the chunk's validity mask, once a NULL is set */
    size_t row;              /* the row being set in chunk */
    size_t cap;              /* rows per chunk */
    int64_t rows;            /* rows completed in total */
    bool parallel;           /* the scan may hand chunks out in any order */
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

/* ---- lh_writer_scan(id) -------------------------------------------------------------- */

typedef struct scan_state {
    atomic_size_t next_chunk;
} scan_state;

static void
scan_bind(duckdb_bind_info info)
{
    lh_engine *eng = duckdb_bind_get_extra_info(info);
    duckdb_value arg = duckdb_bind_get_parameter(info, 0);
    int64_t id = duckdb_get_int64(arg);
    duckdb_destroy_value(&arg);
    pthread_mutex_lock(&eng->writers_lock);
    lh_writer *w = eng->writers;
    while (w && w->id != id)
        w = w->next;
    pthread_mutex_unlock(&eng->writers_lock);
    if (w == NULL) {
        duckdb_bind_set_error(info, "no open writer has this id");
        return;
    }
    for (size_t i = 0; i < w->n_cols; i++)
        duckdb_bind_add_result_column(info, w->names[i], w->types[i]);
    duckdb_bind_set_cardinality(info, (idx_t)w->rows, true);
    duckdb_bind_set_bind_data(info, w, NULL);
}

static void
scan_init(duckdb_init_info info)
{
    lh_writer *w = duckdb_init_get_bind_data(info);
    scan_state *st = duckdb_malloc(sizeof *st);
    atomic_init(&st->next_chunk, 0);
    duckdb_init_set_init_data(info, st, duckdb_free);
    duckdb_init_set_max_threads(info, w->parallel && w->n_chunks > 1 ? w->n_chunks : 1);
}

static void
scan_next(duckdb_function_info info, duckdb_data_chunk output)
{
    lh_writer *w = duckdb_function_get_bind_data(info);
    scan_state *st = duckdb_function_get_init_data(info);
    size_t i = atomic_fetch_add(&st->next_chunk, 1);
    if (i >= w->n_chunks) {
        duckdb_data_chunk_set_size(output, 0);
        return;
    }
    for (size_t c = 0; c < w->n_cols; c++)
        duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(output, c),
                                       duckdb_data_chunk_get_vector(w->chunks[i], c));
    duckdb_data_chunk_set_size(output, duckdb_data_chunk_get_size(w->chunks[i]));
}

/* Register lh_writer_scan in eng's database, once (under writers_lock). */
static int
register_scan(lh_engine *eng, duckdb_connection con, lh_err *err)
{
    if (eng->writer_scan_registered)
        return 0;
    duckdb_table_function tf = duckdb_create_table_function();
    duckdb_table_function_set_name(tf, "lh_writer_scan");
    duckdb_logical_type bigint = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
    duckdb_table_function_add_parameter(tf, bigint);
    duckdb_destroy_logical_type(&bigint);
    duckdb_table_function_set_extra_info(tf, eng, NULL);
    duckdb_table_function_set_bind(tf, scan_bind);
    duckdb_table_function_set_init(tf, scan_init);
    duckdb_table_function_set_function(tf, scan_next);
    duckdb_state st = duckdb_register_table_function(con, tf);
    duckdb_destroy_table_function(&tf);
    if (st == DuckDBError)
        return writer_error(err, "register the writer's scan", NULL);
    eng->writer_scan_registered = true;
    return 0;
}

/* ---- writers ------------------------------------------------------------------------------ */

/* Column names and types of the rows to write, from the table's prepared SELECT. */
static void
describe_rows(lh_writer *w, duckdb_prepared_statement prep)
{
    w->n_cols = (size_t)duckdb_prepared_statement_column_count(prep);
    w->names = lh_calloc(w->n_cols, sizeof *w->names);
    w->types = lh_calloc(w->n_cols, sizeof *w->types);
    w->ids = lh_calloc(w->n_cols, sizeof *w->ids);
    w->data = lh_calloc(w->n_cols, sizeof *w->data);
    w->validity = lh_calloc(w->n_cols, sizeof *w->validity);
    for (size_t i = 0; i < w->n_cols; i++) {
        const char *name = duckdb_prepared_statement_column_name(prep, i);
        w->names[i] = lh_strdup(name ? name : "");
        duckdb_free((void *)name);
        w->types[i] = duckdb_prepared_statement_column_logical_type(prep, i);
        w->ids[i] = duckdb_get_type_id(w->types[i]);
        if (w->ids[i] == DUCKDB_TYPE_DECIMAL)
            w->ids[i] = duckdb_decimal_internal_type(w->types[i]);
    }
}

/* Give w an id and add it to the engine's open writers, where lh_writer_scan finds it. */
static int
add_writer(lh_engine *eng, lh_writer *w, lh_err *err)
{
    pthread_mutex_lock(&eng->writers_lock);
    int rc = register_scan(eng, w->con, err);
    if (rc == 0) {
        /* an id SQL cannot guess: only the writer's own COPY names it */
        for (bool taken = true; taken;) {
            w->id = (int64_t)(lh_random_u64() >> 1) | 1;
            taken = false;
            for (lh_writer *o = eng->writers; o && !taken; o = o->next)
                taken = o->id == w->id;
        }
        w->next = eng->writers;
        eng->writers = w;
    }
    pthread_mutex_unlock(&eng->writers_lock);
    return rc;
}

int
lh_writer_open(lh_engine *eng, const char *columns, lh_writer **out, lh_err *err)
{
    lh_writer *w = lh_calloc(1, sizeof *w);
    w->eng = eng;
    char *sql = NULL;
    duckdb_result r;
    bool have_result = false;
    duckdb_prepared_statement prep = NULL;
    int rc = 0;
    if (duckdb_connect(eng->db, &w->con) == DuckDBError) {
        rc = writer_error(err, "connect to the engine", NULL);
        goto out;
    }
    /* the column definitions resolved by DuckDB: a temporary table's shape (it holds no
     * rows; the rows stay in our chunks) */
    sql = lh_sprintf("CREATE TEMP TABLE lh_writer_rows (%s)", columns);
    have_result = true;
    if (duckdb_query(w->con, sql, &r) == DuckDBError) {
        rc = writer_error(err, "create a table to write", duckdb_result_error(&r));
        goto out;
    }
    if (duckdb_prepare(w->con, "SELECT * FROM lh_writer_rows", &prep) == DuckDBError) {
        rc = writer_error(err, "describe the rows to write", duckdb_prepare_error(prep));
        goto out;
    }
    describe_rows(w, prep);
    w->cap = (size_t)duckdb_vector_size();
    new_chunk(w);
    rc = add_writer(eng, w, err);
out:
    duckdb_destroy_prepare(&prep);
    if (have_result)
        duckdb_destroy_result(&r);
    free(sql);
    if (rc != 0) {
        lh_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
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
    duckdb_vector_assign_string_element_len(duckdb_data_chunk_get_vector(w->chunk, col), w->row, s,
                                            len);
}

void
lh_writer_int(lh_writer *w, size_t col, int64_t value)
{
    void *d = w->data[col];
    switch (w->ids[col]) {
    case DUCKDB_TYPE_SMALLINT:
        ((int16_t *)d)[w->row] = (int16_t)value;
        break;
    case DUCKDB_TYPE_INTEGER:
        ((int32_t *)d)[w->row] = (int32_t)value;
        break;
    case DUCKDB_TYPE_BIGINT:
        ((int64_t *)d)[w->row] = value;
        break;
    case DUCKDB_TYPE_HUGEINT:
        ((duckdb_hugeint *)d)[w->row] = (duckdb_hugeint){(uint64_t)value, value < 0 ? -1 : 0};
        break;
    default:
        assert(!"lh_writer_int on a column that is not an integer or DECIMAL");
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

/* Copy the row's dim elements of a fixed-size array column (TYPE[dim]). */
static void
put_array(lh_writer *w, size_t col, const void *values, size_t dim, size_t elem_size)
{
    assert(duckdb_get_type_id(w->types[col]) == DUCKDB_TYPE_ARRAY);
    assert((size_t)duckdb_array_type_array_size(w->types[col]) == dim);
    duckdb_vector v = duckdb_data_chunk_get_vector(w->chunk, col);
    char *child = duckdb_vector_get_data(duckdb_array_vector_get_child(v));
    memcpy(child + w->row * dim * elem_size, values, dim * elem_size);
}

void
lh_writer_floats(lh_writer *w, size_t col, const float *values, size_t dim)
{
    put_array(w, col, values, dim, sizeof *values);
}

void
lh_writer_ints(lh_writer *w, size_t col, const int32_t *values, size_t dim)
{
    put_array(w, col, values, dim, sizeof *values);
}

/* The chunk being filled is full or the rows end: keep it. */
static void
keep_chunk(lh_writer *w)
{
    if (w->row == 0)
        return;
    duckdb_data_chunk_set_size(w->chunk, w->row);
    if (w->n_chunks == w->cap_chunks) {
        w->cap_chunks += CHUNKS_GROWTH;
        w->chunks = lh_realloc(w->chunks, w->cap_chunks * sizeof *w->chunks);
    }
    w->chunks[w->n_chunks++] = w->chunk;
    new_chunk(w);
}

int
lh_writer_next_row(lh_writer *w, lh_err *err)
{
    w->row++;
    w->rows++;
    if (w->row == w->cap)
        keep_chunk(w);
    return 0;
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
    keep_chunk(w);
    w->parallel = !opts->preserve_order;
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_printf(&sql, "COPY (SELECT %s FROM lh_writer_scan(%lld) AS lh_writer_rows) TO ",
                  select_list ? select_list : "*", (long long)w->id);
    lh_sql_quote(&sql, path);
    lh_buf_printf(&sql, " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE %lld",
                  (long long)(opts->row_group_size > 0 ? opts->row_group_size : 122880));
    if (opts->zstd_level > 0)
        lh_buf_printf(&sql, ", COMPRESSION_LEVEL %d", opts->zstd_level);
    lh_buf_puts(&sql, opts->preserve_order ? ")" : ", PRESERVE_ORDER false)");
    duckdb_result r;
    int rc = lh_engine__fault(err);
    if (rc != 0)
        goto done;
    if (duckdb_query(w->con, sql.data, &r) == DuckDBError) {
        rc = lh_engine__internal_error(err, &r);
        goto out;
    }
    if (rows)
        *rows = w->rows;
out:
    duckdb_destroy_result(&r);
done:
    lh_buf_free(&sql);
    return rc;
}

void
lh_writer_free(lh_writer *w)
{
    if (w == NULL)
        return;
    if (w->id) {
        pthread_mutex_lock(&w->eng->writers_lock);
        lh_writer **p = &w->eng->writers;
        while (*p && *p != w)
            p = &(*p)->next;
        if (*p)
            *p = w->next;
        pthread_mutex_unlock(&w->eng->writers_lock);
    }
    for (size_t i = 0; i < w->n_chunks; i++)
        duckdb_destroy_data_chunk(&w->chunks[i]);
    free(w->chunks);
    if (w->chunk)
        duckdb_destroy_data_chunk(&w->chunk);
    for (size_t i = 0; i < w->n_cols; i++) {
        free(w->names ? w->names[i] : NULL);
        if (w->types)
            duckdb_destroy_logical_type(&w->types[i]);
    }
    free(w->names);
    free(w->types);
    free(w->ids);
    free(w->data);
    free(w->validity);
    if (w->con)
        duckdb_disconnect(&w->con);
    free(w);
}
