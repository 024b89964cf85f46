/*
 * pg_pipeline.c — the rows of a PostgreSQL ingest, streamed into batches and converted to
 * stored Parquet files while the next batch arrives.
 *
 * The pipeline has two threads. The caller's thread drives libpq: it streams the rows in
 * PostgreSQL's binary format (COPY (...) TO STDOUT WITH (FORMAT binary), or FETCH from a
 * server-side cursor with binary results), decoding each value straight into a typed
 * batch (pg_binary.c; lh_writer: a DuckDB temporary table). Every batch_rows rows (or
 * BATCH_BYTES of values) it hands the batch to the converter thread and starts the next;
 * the converter has DuckDB write the batch as zstd Parquet and stores it in the bucket.
 * Memory stays bounded by two batches whatever the table's size, and PostgreSQL keeps
 * sending while DuckDB writes. The converter's state is under converter.mu; the first
 * failure on either side stops both at the next hand-off.
 */
#include "ingest/pg_int.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* a batch is handed over after batch_rows rows or this many bytes of values */
#define BATCH_BYTES (INT64_C(128) << 20)
#define CURSOR_FETCH_ROWS 10000
#define CANCEL_CHECK_ROWS 16384

/* ---- batches: writers handed to the converter ------------------------------------------ */

typedef struct converter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    lh_writer *pending; /* a batch handed over, not yet taken */
    bool busy;          /* converting a batch */
    bool finished;      /* the reader is done: convert what is pending, then stop */
    int rc;             /* first failure; the reader stops at its next hand-off */
    lh_err err;

    lh_catalog *cat;
    lh_ingest__target *target;
    const char *select_list; /* "c0 AS "a", CAST(c1 AS JSON) AS "b", ..." */
    const char *dir;         /* the work dir, for the Parquet files */
    int batch_no;
    json_t *columns;         /* from the first Parquet file */
    const json_t *append_to; /* the dataset's columns for append, else NULL */
    bool keep_order;         /* the source is a query with ORDER BY */
    int64_t rows_done;
    int64_t convert_us;
} converter;

static int
convert_batch(converter *cv, lh_writer *w, lh_err *err)
{
    char *parquet = lh_sprintf("%s/pg-%s-%d.parquet", cv->dir, cv->target->tag, cv->batch_no++);
    /* zstd level 1: on typical tables 10% faster than DuckDB's default level 3 and no
     * bigger, and conversion is what limits a streamed ingest (bench/pg_ingest). A table
     * has no order, so DuckDB may write row groups in parallel; a query that sorts keeps
     * its order. */
    lh_writer_copy_opts opts = {
        .row_group_size = 122880, .zstd_level = 1, .preserve_order = cv->keep_order};
    int64_t rows = 0, t0 = lh_mono_us();
    int rc = lh_writer_finish_as(w, cv->select_list, parquet, &opts, &rows, err);
    cv->convert_us += lh_mono_us() - t0;
    if (rc != 0 && err->http_status == 400) {
        /* our SQL over our batch: a failure is a value DuckDB could not take */
        char copy[LH_ERR_TEXT_MAX];
        snprintf(copy, sizeof copy, "%s", err->detail);
        rc = lh_err_set(err, LH_EINVAL, 422, "unconvertible_value",
                        "a source value has no faithful DuckDB form");
        lh_err_detail(err, "%s", copy);
        lh_err_hint(err, "cast the column in a query (e.g. col::text) and ingest the query");
    }
    if (rc == 0 && cv->columns == NULL) {
        rc = lh_catalog_schema_of(cv->cat, parquet, &cv->columns, err);
        if (rc == 0 && cv->append_to)
            rc = lh_ingest__check_schema(cv->append_to, cv->columns, "the source", err);
    }
    if (rc == 0)
        rc = lh_ingest__store(cv->target, parquet, rows, err);
    if (rc == 0)
        cv->rows_done += rows;
    unlink(parquet);
    free(parquet);
    return rc;
}

static void *
converter_main(void *arg)
{
    converter *cv = arg;
    pthread_mutex_lock(&cv->mu);
    for (;;) {
        while (!cv->pending && !cv->finished)
            pthread_cond_wait(&cv->cv, &cv->mu);
        if (!cv->pending)
            break;
        lh_writer *w = cv->pending;
        cv->pending = NULL;
        cv->busy = true;
        bool skip = cv->rc != 0;
        pthread_mutex_unlock(&cv->mu);
        lh_err err;
        int rc = skip ? 0 : convert_batch(cv, w, &err);
        lh_writer_free(w);
        pthread_mutex_lock(&cv->mu);
        cv->busy = false;
        if (rc != 0 && cv->rc == 0) {
            cv->rc = rc;
            cv->err = err;
        }
        pthread_cond_broadcast(&cv->cv);
    }
    pthread_mutex_unlock(&cv->mu);
    return NULL;
}

/* Give the converter a finished batch (takes ownership, also on failure); waits until
 * the converter is free, so that at most two batches are in memory: this one being
 * written and the next being filled. (A queue would not help: the reader is the slower
 * side, see bench/pg_ingest.) Returns the converter's failure, if any. */
static int
converter_hand(converter *cv, lh_writer *w, lh_err *err)
{
    pthread_mutex_lock(&cv->mu);
    while ((cv->pending || cv->busy) && cv->rc == 0)
        pthread_cond_wait(&cv->cv, &cv->mu);
    int rc = cv->rc;
    if (rc == 0) {
        cv->pending = w;
        w = NULL;
        pthread_cond_broadcast(&cv->cv);
    } else {
        *err = cv->err;
    }
    pthread_mutex_unlock(&cv->mu);
    lh_writer_free(w);
    return rc;
}

/* Let the converter finish and join it; its failure, if any. */
static int
converter_finish(converter *cv, pthread_t th, lh_err *err)
{
    pthread_mutex_lock(&cv->mu);
    cv->finished = true;
    pthread_cond_broadcast(&cv->cv);
    pthread_mutex_unlock(&cv->mu);
    pthread_join(th, NULL);
    if (cv->rc != 0)
        *err = cv->err;
    return cv->rc;
}

/* The reader's side: the batch being filled. */
typedef struct batch_writer {
    converter *cv;
    lh_engine *eng;
    const char *columns; /* the batch table: "c0 BIGINT, c1 VARCHAR, ..." */
    const lh_pg_field *fields;
    int n_fields;
    lh_writer *w;
    int64_t rows_in_batch, bytes_in_batch, rows_total, batch_rows;
    int handed; /* batches given to the converter */
    lh_job *job;
} batch_writer;

static int
writer_open(batch_writer *b, lh_err *err)
{
    b->rows_in_batch = 0;
    b->bytes_in_batch = 0;
    return lh_writer_open(b->eng, b->columns, &b->w, err);
}

/* Hand the current batch over (even when empty: the first batch carries the schema of
 * an empty source). */
static int
writer_hand(batch_writer *b, lh_err *err)
{
    lh_writer *w = b->w;
    b->w = NULL;
    b->handed++;
    return converter_hand(b->cv, w, err);
}

static lh_writer *
writer_current(void *ctx)
{
    return ((batch_writer *)ctx)->w;
}

/* A row of `bytes` bytes of values has been set in the current batch. */
static int
writer_row(void *ctx, size_t bytes, lh_err *err)
{
    batch_writer *b = ctx;
    int rc = lh_writer_next_row(b->w, err);
    if (rc != 0)
        return rc;
    b->rows_in_batch++;
    b->rows_total++;
    b->bytes_in_batch += (int64_t)bytes;
    if (b->rows_in_batch >= b->batch_rows || b->bytes_in_batch >= BATCH_BYTES) {
        if ((rc = writer_hand(b, err)) != 0 || (rc = writer_open(b, err)) != 0)
            return rc;
    }
    if (b->job && b->rows_total % CANCEL_CHECK_ROWS == 0) {
        lh_job_progress(b->job, b->rows_total, -1, "rows");
        if (lh_job_cancelled(b->job))
            return LH_ECANCELED;
    }
    return 0;
}
/* ---- streaming --------------------------------------------------------------------------- */

static int
stream_copy(lh_pg_src *s, const char *select, batch_writer *b, lh_err *err)
{
    char *sql = lh_sprintf("COPY (%s) TO STDOUT WITH (FORMAT binary)", select);
    PGresult *res =
        lh_ingest__pg_check(s, PQexec(s->conn, sql), PGRES_COPY_OUT, "starting the copy", err);
    free(sql);
    if (!res)
        return err->rc;
    PQclear(res);
    lh_pg_copy copy = {.fields = b->fields,
                       .n_fields = b->n_fields,
                       .writer = writer_current,
                       .row_done = writer_row,
                       .ctx = b};
    int rc = 0;
    for (;;) {
        char *msg = NULL;
        int n = PQgetCopyData(s->conn, &msg, 0);
        if (n > 0) {
            rc = lh_ingest__pg_copy_message(&copy, msg, n, err);
            PQfreemem(msg);
            if (rc != 0)
                return rc; /* the caller closes the connection, which ends the copy */
            continue;
        }
        if (n == -2)
            return lh_ingest__pg_fail(s, NULL, "streaming rows", err);
        break; /* -1: done; the final status follows */
    }
    res = PQgetResult(s->conn);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = lh_ingest__pg_fail(s, res, "streaming rows", err);
    PQclear(res);
    while ((res = PQgetResult(s->conn)) != NULL)
        PQclear(res);
    return rc;
}

static int
stream_cursor(lh_pg_src *s, const char *select, batch_writer *b, lh_err *err)
{
    char *sql = lh_sprintf("DECLARE lh_cursor NO SCROLL CURSOR FOR %s", select);
    PGresult *res = lh_ingest__pg_run(s, sql, 0, NULL, PGRES_COMMAND_OK, "opening the cursor", err);
    free(sql);
    if (!res)
        return err->rc;
    PQclear(res);
    char fetch[64];
    snprintf(fetch, sizeof fetch, "FETCH FORWARD %d FROM lh_cursor", CURSOR_FETCH_ROWS);
    for (;;) {
        /* binary results: the same values COPY (FORMAT binary) sends */
        res = lh_ingest__pg_check(s, PQexecParams(s->conn, fetch, 0, NULL, NULL, NULL, NULL, 1),
                                  PGRES_TUPLES_OK, "streaming rows", err);
        if (!res)
            return err->rc;
        int n_rows = PQntuples(res), rc = 0;
        if (PQnfields(res) != b->n_fields)
            rc = lh_err_set(err, LH_EIO, 502, "source_error",
                            "PostgreSQL sent rows of another shape than described");
        for (int r = 0; r < n_rows && rc == 0; r++) {
            size_t bytes = 0;
            for (int c = 0; c < b->n_fields && rc == 0; c++) {
                bool null = PQgetisnull(res, r, c);
                int len = null ? 0 : PQgetlength(res, r, c);
                rc = lh_ingest__pg_put(b->w, (size_t)c, &b->fields[c],
                                       null ? NULL : PQgetvalue(res, r, c), len, err);
                bytes += (size_t)len;
            }
            if (rc == 0)
                rc = writer_row(b, bytes, err);
        }
        PQclear(res);
        if (rc != 0)
            return rc;
        if (n_rows < CURSOR_FETCH_ROWS)
            return 0;
    }
}

/* Whether a query sorts its rows: an ORDER BY anywhere (a subquery's too: erring on the
 * side of keeping the order only costs speed). */
static bool
has_order_by(const char *q)
{
    for (const char *p = q; (p = strcasestr(p, "order")) != NULL; p += 5) {
        const char *r = p + 5;
        while (isspace((unsigned char)*r))
            r++;
        if (strncasecmp(r, "by", 2) == 0 && (p == q || !isalnum((unsigned char)p[-1])))
            return true;
    }
    return false;
}
/* ---- the pipeline ------------------------------------------------------------------------ */

/* DuckDB's side of every batch: the batch table's columns (c0 <type>, ...) and the select
 * list that turns them into the dataset's columns. */
static void
duck_select(const lh_pg_col *cols, int n, char **columns, char **select_list)
{
    lh_buf c, sel;
    lh_buf_init(&c);
    lh_buf_init(&sel);
    for (int i = 0; i < n; i++) {
        lh_buf_printf(&c, "%sc%d %s", i ? ", " : "", i, cols[i].wire_type);
        lh_buf_printf(&sel, "%s%s AS ", i ? ", " : "", cols[i].duck_expr);
        lh_sql_ident(&sel, cols[i].name);
    }
    *columns = lh_buf_steal(&c);
    *select_list = lh_buf_steal(&sel);
}

int
lh_ingest__pg_pipeline(lh_pg_src *s, const char *select, const lh_pg_col *cols, int n_cols,
                       lh_ingest__target *t, lh_catalog *cat, lh_engine *eng,
                       const lh_ingest_db_opts *o, lh_pg_piped *out, lh_err *err)
{
    char *columns = NULL, *select_list = NULL;
    duck_select(cols, n_cols, &columns, &select_list);
    lh_pg_field *fields = lh_calloc((size_t)n_cols, sizeof *fields);
    for (int i = 0; i < n_cols; i++)
        fields[i] = (lh_pg_field){.name = cols[i].name,
                                  .wire = cols[i].wire,
                                  .precision = cols[i].precision,
                                  .scale = cols[i].scale};
    converter cv = {
        .cat = cat, .target = t, .select_list = select_list, .dir = lh_catalog_work_dir(cat)};
    pthread_mutex_init(&cv.mu, NULL);
    pthread_cond_init(&cv.cv, NULL);
    cv.append_to = o->mode == LH_INGEST_APPEND ? json_object_get(t->cur, "columns") : NULL;
    cv.keep_order = o->query && has_order_by(o->query);
    batch_writer b = {.cv = &cv,
                      .eng = eng,
                      .columns = columns,
                      .fields = fields,
                      .n_fields = n_cols,
                      .job = o->job,
                      .batch_rows = o->batch_rows > 0 ? o->batch_rows : LH_PG_BATCH_ROWS};
    pthread_t th;
    int rc = 0;
    if (pthread_create(&th, NULL, converter_main, &cv) != 0) {
        rc = lh_err_set(err, LH_EUNAVAIL, 503, "overloaded", "could not start a converter");
        goto out;
    }
    int64_t t_read = lh_mono_us();
    if ((rc = writer_open(&b, err)) == 0)
        rc = o->method == LH_PG_CURSOR ? stream_cursor(s, select, &b, err)
                                       : stream_copy(s, select, &b, err);
    if (rc == 0 && (b.rows_in_batch > 0 || b.handed == 0))
        rc = writer_hand(&b, err);
    out->read_us = lh_mono_us() - t_read;
    /* the snapshot is read: let the source go before the last conversion */
    PQfinish(s->conn);
    s->conn = NULL;
    if (rc != 0) { /* failed while reading: nothing pending is converted */
        pthread_mutex_lock(&cv.mu);
        if (cv.rc == 0)
            cv.rc = rc;
        pthread_mutex_unlock(&cv.mu);
    }
    lh_err cerr;
    int crc = converter_finish(&cv, th, &cerr);
    if (rc == 0 && crc != 0) {
        rc = crc;
        *err = cerr;
    }
    if (rc == 0 && o->job && lh_job_cancelled(o->job))
        rc = LH_ECANCELED;
    if (rc == 0) {
        out->columns = cv.columns;
        cv.columns = NULL;
        out->rows = cv.rows_done;
        out->convert_us = cv.convert_us;
    }
out:
    lh_writer_free(b.w);
    json_decref(cv.columns);
    pthread_mutex_destroy(&cv.mu);
    pthread_cond_destroy(&cv.cv);
    free(fields);
    free(columns);
    free(select_list);
    return rc;
}
