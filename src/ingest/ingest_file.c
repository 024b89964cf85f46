/*
 * ingest_file.c — file ingest: upload → Parquet (zstd) → data object → manifest.
 *
 * CSV is converted by ingest_csv.c (DuckDB's sniffer, kept from reshaping the file or
 * losing digits). JSON and NDJSON go through DuckDB's JSON reader; ADR-010: when a later
 * value does not fit the type sampled, we convert again with the whole file sampled.
 *
 * The commit order makes failures invisible: the data object is written first, then the
 * manifest with a create-only put. If the manifest cannot be written the data object is
 * deleted again; a crash in between leaves an unreferenced file that the sweep removes.
 */
#include "ingest/ingest_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reader. For JSON with columns given ([{"name","type"}] as the reader would type
 * them): those types, except that a DOUBLE column is read as text, so that the select
 * list can keep its integers exact. */
static void
reader_sql(lh_buf *sql, const lh_ingest_file_opts *o, bool full_sniff, const json_t *columns)
{
    if (strcmp(o->format, "parquet") == 0) {
        lh_buf_puts(sql, "read_parquet(");
        lh_sql_quote(sql, o->src_path);
        lh_buf_puts(sql, ")");
        return;
    }
    lh_buf_puts(sql, "read_json(");
    lh_sql_quote(sql, o->src_path);
    lh_buf_puts(sql, strcmp(o->format, "ndjson") == 0 ? ", format = 'newline_delimited'"
                                                      : ", format = 'auto'");
    if (full_sniff)
        lh_buf_puts(sql, ", sample_size = -1");
    if (json_array_size(columns) > 0) {
        lh_buf_puts(sql, ", columns = {");
        size_t i;
        json_t *c;
        json_array_foreach(columns, i, c)
        {
            const char *type = json_string_value(json_object_get(c, "type"));
            if (i)
                lh_buf_puts(sql, ", ");
            lh_sql_quote(sql, json_string_value(json_object_get(c, "name")));
            lh_buf_puts(sql, ": ");
            lh_sql_quote(sql, strcmp(type, "DOUBLE") == 0 ? "VARCHAR" : type);
        }
        lh_buf_puts(sql, "}");
    }
    lh_buf_puts(sql, ")");
}

/* The JSON reader's columns (new [{"name","type"}]) when one of them is DOUBLE — it may
 * hold integers past int64 — else NULL: the file is read as the reader types it. */
static int
json_double_columns(lh_engine *eng, const lh_ingest_file_opts *o, bool full_sniff, json_t **out,
                    lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql,
                "SELECT column_name AS name, column_type AS type FROM (DESCRIBE SELECT * FROM ");
    reader_sql(&sql, o, full_sniff, NULL);
    lh_buf_puts(&sql, ")");
    json_t *columns = NULL;
    int rc = lh_engine_rows(eng, sql.data, &columns, err);
    lh_buf_free(&sql);
    if (rc != 0)
        return rc;
    bool any_double = false;
    size_t i;
    json_t *c;
    json_array_foreach(columns, i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        any_double |= type && strcmp(type, "DOUBLE") == 0;
    }
    if (!any_double) {
        json_decref(columns);
        columns = NULL;
    }
    *out = columns;
    return 0;
}

/* The select list over the JSON reader: DOUBLE columns through lh_ingest__number_select
 * (or kept as text once retyped so), the others as they are. */
static void
json_select(lh_buf *sql, const json_t *columns, const json_t *retype)
{
    size_t i;
    json_t *c;
    json_array_foreach(columns, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *type = json_string_value(json_object_get(c, "type"));
        json_int_t how = json_integer_value(json_object_get(retype, name));
        if (i)
            lh_buf_puts(sql, ", ");
        if (strcmp(type, "DOUBLE") == 0 && how < LH_INGEST__AS_TEXT)
            lh_ingest__number_select(sql, name, i, how == 1);
        else
            lh_sql_ident(sql, name);
    }
}

static int
report(void *ctx, int64_t done, int64_t total)
{
    lh_job *job = ctx;
    lh_job_progress(job, done, total > 0 ? total : -1, "rows");
    return lh_job_cancelled(job) ? 1 : 0;
}

/* JSON, NDJSON and Parquet (CSV has its own, ingest_csv.c). */
static int
convert(lh_engine *eng, const lh_ingest_file_opts *o, const char *out, int64_t *rows, lh_err *err)
{
    bool full_sniff = false, described = false;
    bool is_json = strcmp(o->format, "parquet") != 0;
    json_t *columns = NULL, *retype = json_object();
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        if (is_json && !described) {
            json_decref(columns);
            columns = NULL;
            if ((rc = json_double_columns(eng, o, full_sniff, &columns, err)) != 0)
                goto failed;
            described = true;
        }
        /* each DOUBLE column moves at most twice, plus the full sniff */
        if (attempt > 2 + 2 * (int)json_array_size(columns)) {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_file", "the file is not valid %s",
                            o->format);
            lh_err_detail(err, "the column types did not settle after %d conversions", attempt);
            break;
        }
        lh_buf sql;
        lh_buf_init(&sql);
        lh_buf_puts(&sql, "COPY (SELECT ");
        if (columns)
            json_select(&sql, columns, retype);
        else
            lh_buf_puts(&sql, "*");
        lh_buf_puts(&sql, " FROM ");
        reader_sql(&sql, o, full_sniff, columns);
        lh_buf_puts(&sql, ") TO ");
        lh_sql_quote(&sql, out);
        lh_buf_puts(&sql, " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)");
        rc = o->job ? lh_engine_exec_watch(eng, sql.data, rows, report, o->job, err)
                    : lh_engine_exec(eng, sql.data, rows, err);
        lh_buf_free(&sql);
        if (rc == 0)
            break;
        unlink(out);
    failed:;
        const char *detail = err ? err->detail : "";
        if (rc == LH_EINVAL && columns && lh_ingest__retype_next(columns, retype, detail))
            continue; /* an integer past what the column's type holds exactly */
        if (rc == LH_EINVAL && is_json && !full_sniff && strstr(detail, "Conversion Error")) {
            full_sniff = true; /* ADR-010: let the whole file decide the types */
            described = false;
            continue;
        }
        if (rc == LH_EINVAL && err) {
            char copy[LH_ERR_TEXT_MAX];
            snprintf(copy, sizeof copy, "%s", detail);
            lh_err_set(err, LH_EINVAL, 400, "invalid_file", "the file is not valid %s", o->format);
            lh_err_detail(err, "%s", copy);
            lh_err_hint(err, "check format= and the file's contents");
        }
        break;
    }
    json_decref(columns);
    json_decref(retype);
    return rc;
}

int
lh_ingest_file(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets, const lh_ingest_file_opts *o,
               json_t **result, lh_err *err)
{
    lh_ingest__target t;
    char *out = NULL;
    json_t *columns = NULL, *bad_rows = NULL;
    int64_t rows = 0;
    /* a job may wait for the dataset's other writer; a request must not hold its thread */
    int rc = lh_ingest__begin(cat, buckets, o->dataset, o->bucket, o->mode, o->job != NULL,
                              o->allow_bucket, o->allow_ctx, &t, err);
    if (rc != 0)
        goto out;
    t.eng = eng;
    if ((rc = lh_catalog_check_required(cat, o->metadata, t.cur, err)) != 0)
        goto out;
    if (o->job)
        lh_job_progress(o->job, 0, -1, "rows");

    /* 1. convert */
    out = lh_sprintf("%s/ingest-%s.parquet", lh_catalog_work_dir(cat), t.tag);
    const json_t *append_columns =
        o->mode == LH_INGEST_APPEND ? json_object_get(t.cur, "columns") : NULL;
    int64_t t_convert = lh_mono_us();
    rc = strcmp(o->format, "csv") == 0
             ? lh_ingest__csv_convert(eng, o, append_columns, out, &rows, &bad_rows, err)
             : convert(eng, o, out, &rows, err);
    if (rc != 0)
        goto out;
    t_convert = lh_mono_us() - t_convert;
    if (o->job && lh_job_cancelled(o->job)) {
        rc = LH_ECANCELED;
        goto out;
    }
    if ((rc = lh_catalog_schema_of(cat, out, &columns, err)) != 0)
        goto out;
    if (json_array_size(columns) == 0) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_file", "the file has no columns");
        goto out;
    }
    if (o->mode == LH_INGEST_APPEND &&
        (rc = lh_ingest__check_schema(json_object_get(t.cur, "columns"), columns, "the file",
                                      err)) != 0)
        goto out;
    if (o->job)
        lh_job_progress(o->job, rows, rows, "rows");

    /* 2. store the data file (its columns, just read, serve the sampling too) */
    int64_t t_store = lh_mono_us();
    t.file_columns = columns;
    rc = lh_ingest__store(&t, out, rows, err);
    t.file_columns = NULL;
    if (rc != 0)
        goto out;
    t_store = lh_mono_us() - t_store;

    /* 3. the manifest */
    json_t *lineage = json_pack("{s:s, s:s, s:s, s:s, s:s}", "source_system", "upload",
                                "source_object", o->source_object ? o->source_object : "", "ingest",
                                "file", "format", o->format, "mode", lh_ingest__mode_name(o->mode));
    json_t *committed = NULL;
    int64_t t_commit = lh_mono_us();
    if ((rc = lh_ingest__commit(&t, columns, o->metadata, lineage, o->actor, &committed, err)) != 0)
        goto out;
    t_commit = lh_mono_us() - t_commit;
    *result = json_pack("{s:s, s:O, s:I, s:O, s:O, s:O, s:{s:I, s:I, s:I}}", "dataset", o->dataset,
                        "version", json_object_get(committed, "version"), "rows", (json_int_t)rows,
                        "total_rows", json_object_get(committed, "row_count"), "columns",
                        json_object_get(committed, "columns"), "files",
                        json_object_get(committed, "files"), "timings_ms", "convert",
                        (json_int_t)(t_convert / 1000), "store", (json_int_t)(t_store / 1000),
                        "commit", (json_int_t)(t_commit / 1000));
    json_object_set(*result, "journal", t.journal);
    json_decref(committed);
    if (bad_rows)
        json_object_set(*result, "bad_rows", bad_rows);
out:
    lh_ingest__end(&t);
    if (out)
        unlink(out);
    free(out);
    json_decref(columns);
    json_decref(bad_rows);
    return rc;
}
