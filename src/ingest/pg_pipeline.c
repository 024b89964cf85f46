/*
 * pg_pipeline.c — the rows of a PostgreSQL ingest, streamed into batches and converted to
 * stored Parquet files while the next batch arrives, over one or several streams.
 *
 * A stream is a connection in the ingest's snapshot and the SELECT of its slice
 * (pg_slices.c; the whole source when there is one stream). Its reader drives libpq: it
 * streams the rows in PostgreSQL's binary format (COPY (...) TO STDOUT WITH (FORMAT
 * binary), or FETCH from a server-side cursor with binary results), decoding each value
 * straight into a typed batch (pg_binary.c; lh_writer: DuckDB data chunks). Every
 * batch_rows rows (or BATCH_BYTES of values) it hands the batch to the stream's converter
 * thread and starts the next; the converter has DuckDB write the batch as zstd Parquet and
 * stores it in the bucket. A stream holds at most two batches whatever the table's size,
 * so an ingest holds at most two per stream, and PostgreSQL keeps sending while DuckDB
 * writes.
 *
 * Threads: stream 0 is read on the caller's thread, the others on one thread each, and
 * every stream has its converter. A converter's state is under its converter.mu; what
 * the streams share (the first failure, the stored files) under shared.mu and
 * shared.store_mu, never both. The first failure anywhere stops every stream at its next
 * row or hand-off, and cancels the statements of the others, which may be waiting on the
 * server.
 */
#include "ingest/pg_int.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* a batch is handed over after batch_rows rows or this many bytes of values */
#define BATCH_BYTES (INT64_C(128) << 20)
#define CURSOR_FETCH_ROWS 10000
#define CANCEL_CHECK_ROWS 16384

/* ---- what the streams share ------------------------------------------------------------ */

/* One ingest's streams: the first failure (under mu) and the stored files (under
 * store_mu: lh_ingest__store numbers the write's files, and the first one gives the
 * dataset's columns). */
typedef struct shared {
    pthread_mutex_t mu;
    int rc; /* the first failure; every stream stops at its next row */
    lh_err err;
    atomic_bool stop;
    PGcancel **cancels; /* per stream (NULL entries allowed): ends a waiting statement */
    int n_streams;

    pthread_mutex_t store_mu;
    lh_catalog *cat;
    lh_ingest__target *target;
    const json_t *append_to; /* the dataset's columns for append, else NULL */
    json_t *columns;         /* from the first Parquet file */
    int64_t rows_done, convert_us, files;

    const char *select_list; /* "c0 AS "a", CAST(c1 AS JSON) AS "b", ..." */
    const char *dir;         /* the work dir, for the Parquet files */
    bool keep_order;         /* the source is a query with ORDER BY */
    lh_job *job;
    atomic_int_fast64_t rows_read; /* progress: every stream's rows, CANCEL_CHECK_ROWS at a time */
} shared;

/* Record a stream's failure; the first one is the ingest's, and it stops the others:
 * they see `stop` at their next row, and a statement waiting on the server is cancelled. */
static void
shared_fail(shared *sh, int stream, int rc, const lh_err *err)
{
    pthread_mutex_lock(&sh->mu);
    bool first = sh->rc == 0;
    if (first) {
        sh->rc = rc;
        sh->err = *err;
        atomic_store(&sh->stop, true);
    }
    pthread_mutex_unlock(&sh->mu);
    if (!first)
        return;
    for (int i = 0; i < sh->n_streams; i++) {
        char errbuf[256];
        if (i != stream && sh->cancels[i])
            PQcancel(sh->cancels[i], errbuf, sizeof errbuf); /* thread-safe; best effort */
    }
}

/* Write the batch w as the Parquet file `parquet` and store it as the write's next file. */
static int
convert_batch(shared *sh, lh_writer *w, const char *parquet, lh_err *err)
{
    /* zstd level 1: on typical tables 10% faster than DuckDB's default level 3 and no
     * bigger, and conversion is what limits a streamed ingest (bench/pg_ingest). A table
     * has no order, so DuckDB may write row groups in parallel; a query that sorts keeps
     * its order. */
    lh_writer_copy_opts opts = {
        .row_group_size = 122880, .zstd_level = 1, .preserve_order = sh->keep_order};
    int64_t rows = 0, t0 = lh_mono_us();
    int rc = lh_writer_finish_as(w, sh->select_list, parquet, &opts, &rows, err);
    int64_t took = lh_mono_us() - t0;
    if (rc != 0 && err->http_status == 400) {
        /* our SQL over our batch: a failure is a value DuckDB could not take */
        char copy[LH_ERR_TEXT_MAX];
        snprintf(copy, sizeof copy, "%s", err->detail);
        rc = lh_err_set(err, LH_EINVAL, 422, "unconvertible_value",
                        "a source value has no faithful DuckDB form");
        lh_err_detail(err, "%s", copy);
        lh_err_hint(err, "cast the column in a query (e.g. col::text) and ingest the query");
    }
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&sh->store_mu);
    sh->convert_us += took;
    if (sh->columns == NULL) {
        rc = lh_catalog_schema_of(sh->cat, parquet, &sh->columns, err);
        if (rc == 0 && sh->append_to)
            rc = lh_ingest__check_schema(sh->append_to, sh->columns, "the source", err);
    }
    if (rc == 0)
        rc = lh_ingest__store(sh->target, parquet, rows, err);
    if (rc == 0) {
        sh->rows_done += rows;
        sh->files++;
    }
    pthread_mutex_unlock(&sh->store_mu);
    return rc;
}

/* ---- batches: writers handed to a stream's converter ------------------------------------ */

typedef struct converter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    lh_writer *pending; /* a batch handed over, not yet taken */
    bool busy;          /* converting a batch */
    bool finished;      /* the reader is done: convert what is pending, then stop */
    int rc;             /* first failure; the reader stops at its next hand-off */
    lh_err err;

    shared *sh;
    int stream;
    int batch_no;
} converter;

static int
converter_convert(converter *cv, lh_writer *w, lh_err *err)
{
    char *parquet = lh_sprintf("%s/pg-%s-%d-%d.parquet", cv->sh->dir, cv->sh->target->tag,
                               cv->stream, cv->batch_no++);
    int rc = convert_batch(cv->sh, w, parquet, err);
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
        bool skip = cv->rc != 0 || atomic_load(&cv->sh->stop);
        pthread_mutex_unlock(&cv->mu);
        lh_err err;
        int rc = skip ? 0 : converter_convert(cv, w, &err);
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
    shared *sh;
    lh_engine *eng;
    const char *columns; /* the batch table: "c0 BIGINT, c1 VARCHAR, ..." */
    const lh_pg_field *fields;
    int n_fields;
    lh_writer *w;
    int64_t rows_in_batch, bytes_in_batch, rows_total, batch_rows;
} batch_writer;

static int
writer_open(batch_writer *b, lh_err *err)
{
    b->rows_in_batch = 0;
    b->bytes_in_batch = 0;
    return lh_writer_open(b->eng, b->columns, &b->w, err);
}

/* Hand the current batch over. */
static int
writer_hand(batch_writer *b, lh_err *err)
{
    lh_writer *w = b->w;
    b->w = NULL;
    return converter_hand(b->cv, w, err);
}

static lh_writer *
writer_current(void *ctx)
{
    return ((batch_writer *)ctx)->w;
}

/* Another stream failed: this one stops too (the first failure is the ingest's). */
static int
stopped(lh_err *err)
{
    return lh_err_set(err, LH_ECANCELED, 500, "stopped", "another stream failed");
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
    if (atomic_load_explicit(&b->sh->stop, memory_order_relaxed))
        return stopped(err);
    if (b->rows_total % CANCEL_CHECK_ROWS == 0) {
        int64_t all = atomic_fetch_add(&b->sh->rows_read, CANCEL_CHECK_ROWS) + CANCEL_CHECK_ROWS;
        if (b->sh->job) {
            lh_job_progress(b->sh->job, all, -1, "rows");
            if (lh_job_cancelled(b->sh->job))
                return lh_err_set(err, LH_ECANCELED, 0, "cancelled", "the job was cancelled");
        }
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

/* One stream: its connection and SELECT, its batches and converter. */
typedef struct stream {
    shared *sh;
    int index;
    lh_pg_src *src;
    const char *select;
    lh_pg_method method;
    batch_writer b;
    converter cv;
    int64_t read_end_us; /* when its last row was read */
    pthread_t th;
    bool started;
} stream;

/* Read the stream's slice into batches its converter writes; then close its connection
 * (the snapshot is read) and let the converter finish. A failure goes to shared_fail. */
static void
stream_run(stream *st)
{
    shared *sh = st->sh;
    lh_err err;
    int rc = 0;
    pthread_t th;
    pthread_mutex_init(&st->cv.mu, NULL);
    pthread_cond_init(&st->cv.cv, NULL);
    if (atomic_load(&sh->stop))
        rc = stopped(&err);
    else if (pthread_create(&th, NULL, converter_main, &st->cv) != 0)
        rc = lh_err_set(&err, LH_EUNAVAIL, 503, "overloaded", "could not start a converter");
    bool converter_started = rc == 0;
    if (rc == 0 && (rc = writer_open(&st->b, &err)) == 0)
        rc = st->method == LH_PG_CURSOR ? stream_cursor(st->src, st->select, &st->b, &err)
                                        : stream_copy(st->src, st->select, &st->b, &err);
    /* an empty batch is not handed over: the pipeline writes one file for an empty source */
    if (rc == 0 && st->b.rows_in_batch > 0)
        rc = writer_hand(&st->b, &err);
    if (rc == 0) {
        int64_t left = st->b.rows_total % CANCEL_CHECK_ROWS;
        atomic_fetch_add(&sh->rows_read, left);
    }
    st->read_end_us = lh_mono_us();
    /* the slice is read: let the connection go before the last conversion */
    PQfinish(st->src->conn);
    st->src->conn = NULL;
    if (rc != 0) { /* failed while reading: nothing pending is converted */
        shared_fail(sh, st->index, rc, &err);
        pthread_mutex_lock(&st->cv.mu);
        if (st->cv.rc == 0) {
            st->cv.rc = rc;
            st->cv.err = err;
        }
        pthread_mutex_unlock(&st->cv.mu);
    }
    if (converter_started && (rc = converter_finish(&st->cv, th, &err)) != 0)
        shared_fail(sh, st->index, rc, &err);
    lh_writer_free(st->b.w);
    st->b.w = NULL;
    pthread_mutex_destroy(&st->cv.mu);
    pthread_cond_destroy(&st->cv.cv);
}

static void *
stream_main(void *arg)
{
    stream_run(arg);
    return NULL;
}

/* A source without rows still makes a dataset with its columns: one empty file. */
static int
empty_file(shared *sh, lh_engine *eng, const char *columns, lh_err *err)
{
    lh_writer *w = NULL;
    int rc = lh_writer_open(eng, columns, &w, err);
    if (rc == 0) {
        char *parquet = lh_sprintf("%s/pg-%s-empty.parquet", sh->dir, sh->target->tag);
        rc = convert_batch(sh, w, parquet, err);
        unlink(parquet);
        free(parquet);
    }
    lh_writer_free(w);
    return rc;
}

int
lh_ingest__pg_pipeline(lh_pg_src *srcs, char *const *selects, int n_streams, const lh_pg_col *cols,
                       int n_cols, lh_ingest__target *t, lh_catalog *cat, lh_engine *eng,
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
    shared sh = {.n_streams = n_streams,
                 .cat = cat,
                 .target = t,
                 .append_to =
                     o->mode == LH_INGEST_APPEND ? json_object_get(t->cur, "columns") : NULL,
                 .select_list = select_list,
                 .dir = lh_catalog_work_dir(cat),
                 .keep_order = o->query && has_order_by(o->query),
                 .job = o->job};
    pthread_mutex_init(&sh.mu, NULL);
    pthread_mutex_init(&sh.store_mu, NULL);
    atomic_init(&sh.stop, false);
    atomic_init(&sh.rows_read, 0);
    sh.cancels = lh_calloc((size_t)n_streams, sizeof *sh.cancels);
    stream *streams = lh_calloc((size_t)n_streams, sizeof *streams);
    for (int i = 0; i < n_streams; i++) {
        stream *st = &streams[i];
        sh.cancels[i] = PQgetCancel(srcs[i].conn);
        st->sh = &sh;
        st->index = i;
        st->src = &srcs[i];
        st->select = selects[i];
        st->method = o->method;
        st->cv = (converter){.sh = &sh, .stream = i};
        st->b = (batch_writer){.cv = &st->cv,
                               .sh = &sh,
                               .eng = eng,
                               .columns = columns,
                               .fields = fields,
                               .n_fields = n_cols,
                               .batch_rows = o->batch_rows > 0 ? o->batch_rows : LH_PG_BATCH_ROWS};
    }
    int64_t t_read = lh_mono_us();
    for (int i = 1; i < n_streams; i++) {
        if (pthread_create(&streams[i].th, NULL, stream_main, &streams[i]) != 0) {
            lh_err e;
            lh_err_set(&e, LH_EUNAVAIL, 503, "overloaded", "could not start a stream");
            shared_fail(&sh, -1, e.rc, &e);
            break;
        }
        streams[i].started = true;
    }
    stream_run(&streams[0]); /* the leader's stream, on the caller's thread */
    int64_t read_end = streams[0].read_end_us;
    for (int i = 1; i < n_streams; i++)
        if (streams[i].started) {
            pthread_join(streams[i].th, NULL);
            if (streams[i].read_end_us > read_end)
                read_end = streams[i].read_end_us;
        }
    out->read_us = read_end - t_read;
    int rc = sh.rc;
    if (rc != 0)
        *err = sh.err;
    if (rc == 0 && sh.files == 0)
        rc = empty_file(&sh, eng, columns, err);
    if (rc == 0 && o->job && lh_job_cancelled(o->job))
        rc = LH_ECANCELED;
    if (rc == 0) {
        if (o->job)
            lh_job_progress(o->job, atomic_load(&sh.rows_read), -1, "rows");
        out->columns = sh.columns;
        sh.columns = NULL;
        out->rows = sh.rows_done;
        out->convert_us = sh.convert_us;
    }
    for (int i = 0; i < n_streams; i++)
        if (sh.cancels[i])
            PQfreeCancel(sh.cancels[i]);
    free(sh.cancels);
    free(streams);
    json_decref(sh.columns);
    pthread_mutex_destroy(&sh.mu);
    pthread_mutex_destroy(&sh.store_mu);
    free(fields);
    free(columns);
    free(select_list);
    return rc;
}
