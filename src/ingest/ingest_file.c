/*
 * ingest_file.c — file ingest: upload → Parquet (zstd) → data object → manifest.
 *
 * CSV goes through DuckDB's sniffer. ADR-010: a column that is ambiguous or mixed
 * ("123", "N/A", "") must become a string, never a rejected file. The sniffer decides
 * from a sample; when a later row does not fit the sampled type the conversion fails,
 * and we convert again with the sniffer reading the whole file (sample_size = -1), which
 * types such a column VARCHAR. Only a file that is not CSV at all is refused.
 *
 * The commit order makes failures invisible: the data object is written first, then the
 * manifest with a create-only put. If the manifest cannot be written the data object is
 * deleted again; a crash in between leaves an unreferenced file that the sweep removes.
 */
#include "ingest/ingest.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
lh_ingest_mode_parse(const char *s)
{
    if (strcmp(s, "create") == 0)
        return LH_INGEST_CREATE;
    if (strcmp(s, "append") == 0)
        return LH_INGEST_APPEND;
    if (strcmp(s, "replace") == 0)
        return LH_INGEST_REPLACE;
    return -1;
}

static const char *
mode_name(lh_ingest_mode m)
{
    return m == LH_INGEST_CREATE ? "create" : m == LH_INGEST_APPEND ? "append" : "replace";
}

/* For an append, the dataset's column types are imposed on a CSV's columns of the same
 * name: a column the dataset holds as VARCHAR stays VARCHAR even if this file happens to
 * hold only numbers, and a value that does not fit is a clear conversion error. */
static void
csv_types(lh_buf *sql, const json_t *columns)
{
    if (json_array_size(columns) == 0)
        return;
    lh_buf_puts(sql, ", types = {");
    size_t i;
    json_t *c;
    json_array_foreach(columns, i, c)
    {
        if (i)
            lh_buf_puts(sql, ", ");
        lh_sql_quote(sql, json_string_value(json_object_get(c, "name")));
        lh_buf_puts(sql, ": ");
        lh_sql_quote(sql, json_string_value(json_object_get(c, "type")));
    }
    lh_buf_puts(sql, "}");
}

static void
reader_sql(lh_buf *sql, const char *format, const char *path, bool full_sniff,
           const json_t *append_columns)
{
    if (strcmp(format, "csv") == 0) {
        lh_buf_puts(sql, "read_csv(");
        lh_sql_quote(sql, path);
        csv_types(sql, append_columns);
        /* header autodetected; strings stay strings; a full sniff when asked */
        lh_buf_puts(sql, full_sniff ? ", sample_size = -1)" : ")");
    } else if (strcmp(format, "parquet") == 0) {
        lh_buf_puts(sql, "read_parquet(");
        lh_sql_quote(sql, path);
        lh_buf_puts(sql, ")");
    } else {
        lh_buf_puts(sql, "read_json(");
        lh_sql_quote(sql, path);
        lh_buf_puts(sql, strcmp(format, "ndjson") == 0 ? ", format = 'newline_delimited'"
                                                       : ", format = 'auto'");
        lh_buf_puts(sql, full_sniff ? ", sample_size = -1)" : ")");
    }
}

static int
report(void *ctx, int64_t done, int64_t total)
{
    lh_job *job = ctx;
    lh_job_progress(job, done, total > 0 ? total : -1, "rows");
    return lh_job_cancelled(job) ? 1 : 0;
}

static int
convert(lh_engine *eng, const lh_ingest_file_opts *o, const json_t *append_columns,
        const char *out, int64_t *rows, lh_err *err)
{
    bool full_sniff = false;
    for (int attempt = 0; attempt < 3; attempt++) {
        lh_buf sql;
        lh_buf_init(&sql);
        lh_buf_puts(&sql, "COPY (SELECT * FROM ");
        reader_sql(&sql, o->format, o->src_path, full_sniff, append_columns);
        lh_buf_puts(&sql, ") TO ");
        lh_sql_quote(&sql, out);
        lh_buf_puts(&sql, " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)");
        int rc = o->job ? lh_engine_exec_watch(eng, sql.data, rows, report, o->job, err)
                        : lh_engine_exec(eng, sql.data, rows, err);
        lh_buf_free(&sql);
        if (rc == 0)
            return 0;
        unlink(out);
        const char *detail = err ? err->detail : "";
        if (rc == LH_EINVAL && append_columns && strstr(detail, "COLUMN_TYPES")) {
            /* the file lacks a dataset column: read it as it is and let the schema check
             * say which column differs */
            append_columns = NULL;
            continue;
        }
        if (rc == LH_EINVAL && !full_sniff && strcmp(o->format, "parquet") != 0 &&
            strstr(detail, "Conversion Error") && !append_columns) {
            full_sniff = true; /* ADR-010: let the whole file decide the types */
            continue;
        }
        if (rc == LH_EINVAL && err) {
            char copy[LH_ERR_TEXT_MAX];
            snprintf(copy, sizeof copy, "%s", detail);
            lh_err_set(err, LH_EINVAL, 400, "invalid_file", "the file is not valid %s", o->format);
            lh_err_detail(err, "%s", copy);
            lh_err_hint(err, append_columns ? "a value does not fit the dataset's column type"
                                            : "check format= and the file's contents");
        }
        return rc;
    }
    return LH_EINVAL;
}

/* 0 when the new columns equal the dataset's; else 400 naming the first difference. */
static int
check_schema(const json_t *have, const json_t *got, lh_err *err)
{
    size_t n_have = json_array_size(have), n_got = json_array_size(got);
    for (size_t i = 0; i < n_have || i < n_got; i++) {
        const json_t *h = json_array_get(have, i), *g = json_array_get(got, i);
        const char *hn = h ? json_string_value(json_object_get(h, "name")) : NULL;
        const char *gn = g ? json_string_value(json_object_get(g, "name")) : NULL;
        const char *ht = h ? json_string_value(json_object_get(h, "type")) : NULL;
        const char *gt = g ? json_string_value(json_object_get(g, "type")) : NULL;
        int rc = 0;
        if (!g)
            rc = lh_err_set(err, LH_EINVAL, 400, "schema_mismatch",
                            "the file has no column '%s' (column %zu of the dataset)", hn, i + 1);
        else if (!h)
            rc = lh_err_set(err, LH_EINVAL, 400, "schema_mismatch",
                            "the file has an extra column '%s' (column %zu)", gn, i + 1);
        else if (strcmp(hn, gn) != 0)
            rc = lh_err_set(err, LH_EINVAL, 400, "schema_mismatch",
                            "column %zu is '%s' in the dataset but '%s' in the file", i + 1, hn, gn);
        else if (strcmp(ht, gt) != 0)
            rc = lh_err_set(err, LH_EINVAL, 400, "schema_mismatch",
                            "column '%s' is %s in the dataset but %s in the file", hn, ht, gt);
        if (rc != 0) {
            lh_err_hint(err, "append needs the same columns in the same order with the same "
                             "types; use mode=replace to change the schema");
            return rc;
        }
    }
    return 0;
}

static json_t *
build_metadata(const lh_ingest_file_opts *o, const json_t *current)
{
    json_t *meta = current ? json_deep_copy(json_object_get(current, "metadata")) : json_object();
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    if (!current) { /* defaults, ADR-013: auto-detected where possible */
        json_object_set_new(meta, "owner", json_string(o->actor ? o->actor : ""));
        json_object_set_new(meta, "sensitivity", json_string("internal"));
        json_object_set_new(meta, "description", json_string(""));
        json_object_set_new(meta, "tags", json_array());
        json_object_set_new(meta, "freshness_sla_s", json_null());
    }
    const json_t *ss = o->metadata ? json_object_get(o->metadata, "source_system") : NULL;
    if (o->metadata) {
        json_t *copy = json_deep_copy(o->metadata);
        json_object_del(copy, "source_system"); /* lineage, below */
        json_object_update(meta, copy);
        json_decref(copy);
    }
    char when[32];
    lh_time_format(lh_now_us(), when);
    json_object_set_new(meta, "lineage",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "source_system",
                                  json_is_string(ss) ? json_string_value(ss) : "upload",
                                  "source_object", o->source_object ? o->source_object : "",
                                  "ingest", "file", "format", o->format, "mode",
                                  mode_name(o->mode), "ingested_at", when, "ingested_by",
                                  o->actor ? o->actor : ""));
    return meta;
}

int
lh_ingest_file(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets, const lh_ingest_file_opts *o,
               json_t **result, lh_err *err)
{
    lh_txn *t = NULL;
    char *out = NULL, *data_key = NULL;
    json_t *columns = NULL;
    char bucket[80] = ""; /* a copy: the current manifest may be freed once we commit */
    bool stored = false;
    int64_t rows = 0;
    /* a job may wait for the dataset's other writer; a request must not hold its thread */
    int rc = lh_catalog_begin(cat, o->dataset, o->job != NULL, &t, err);
    if (rc != 0)
        return rc;
    const json_t *cur = lh_txn_live(t) ? lh_txn_current(t) : NULL;
    if (o->mode == LH_INGEST_CREATE && cur) {
        rc = lh_err_set(err, LH_EEXIST, 409, "dataset_exists", "dataset '%s' exists already",
                        o->dataset);
        lh_err_hint(err, "use mode=append or mode=replace");
        goto out;
    }
    if (o->mode != LH_INGEST_CREATE && !cur) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found", "no dataset named '%s'",
                        o->dataset);
        lh_err_hint(err, "use mode=create for a new dataset");
        goto out;
    }
    /* an existing dataset (live or deleted: its versions stay where they are) keeps its
     * bucket; a new one goes where asked */
    const json_t *any = lh_txn_current(t);
    snprintf(bucket, sizeof bucket, "%s",
             any ? json_string_value(json_object_get(any, "bucket"))
                 : (o->bucket ? o->bucket : "primary"));
    if (any && o->bucket && strcmp(o->bucket, bucket) != 0) {
        rc = lh_err_set(err, LH_EEXIST, 409, "dataset_elsewhere",
                        "dataset '%s' lives in bucket '%s', not '%s'", o->dataset, bucket, o->bucket);
        lh_err_hint(err, "a dataset's versions stay in one bucket; choose another name");
        goto out;
    }
    if (strncmp(bucket, "profile:", 8) == 0) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "datasets cannot live in profile buckets");
        goto out;
    }
    if (o->allow_bucket && !o->allow_bucket(o->allow_ctx, bucket)) {
        rc = lh_err_set(err, LH_EPERM, 403, "forbidden", "you may not use bucket '%s'", bucket);
        goto out;
    }
    lh_store *store = lh_buckets_get(buckets, bucket, err);
    if (store == NULL) {
        rc = LH_ENOTFOUND;
        goto out;
    }
    if (o->job)
        lh_job_progress(o->job, 0, -1, "rows");

    /* 1. convert */
    uint8_t rnd[4];
    char hex[9];
    lh_random_bytes(rnd, sizeof rnd, NULL);
    lh_hex(rnd, sizeof rnd, hex);
    out = lh_sprintf("%s/ingest-%s.parquet", lh_catalog_work_dir(cat), hex);
    const json_t *append_columns =
        o->mode == LH_INGEST_APPEND ? json_object_get(cur, "columns") : NULL;
    int64_t t_convert = lh_mono_us();
    if ((rc = convert(eng, o, append_columns, out, &rows, err)) != 0)
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
        (rc = check_schema(json_object_get(cur, "columns"), columns, err)) != 0)
        goto out;
    if (o->job)
        lh_job_progress(o->job, rows, rows, "rows");

    /* 2. store the data file */
    int64_t t_store = lh_mono_us();
    int fd = open(out, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        rc = lh_err_set(err, LH_EIO, 500, "work_dir_unreadable", "could not read the converted file");
        goto out;
    }
    data_key = lh_sprintf("datasets/%s/data/%020lld-%s-0.parquet", o->dataset,
                          (long long)lh_now_us(), hex);
    lh_source src = {.fd = fd, .len = (int64_t)st.st_size, .may_link = true};
    rc = lh_buckets_put_object(buckets, bucket, data_key, &src, LH_PUT_CREATE_ONLY, NULL, NULL, err);
    close(fd);
    if (rc != 0)
        goto out;
    stored = true;
    t_store = lh_mono_us() - t_store;

    /* 3. the manifest */
    json_t *files = o->mode == LH_INGEST_APPEND ? json_deep_copy(json_object_get(cur, "files"))
                                                : json_array();
    json_array_append_new(files, json_pack("{s:s, s:I, s:I, s:s}", "path", data_key, "bytes",
                                           (json_int_t)st.st_size, "rows", (json_int_t)rows, "kind",
                                           "base"));
    int64_t total_rows = 0, total_bytes = 0;
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        total_rows += json_integer_value(json_object_get(f, "rows"));
        total_bytes += json_integer_value(json_object_get(f, "bytes"));
    }
    json_t *m = json_pack("{s:s, s:s, s:s, s:I, s:I, s:O, s:o, s:o}", "state", "live", "change",
                          mode_name(o->mode), "created_by", o->actor ? o->actor : "", "row_count",
                          (json_int_t)total_rows, "bytes", (json_int_t)total_bytes, "columns",
                          columns, "files", files, "metadata",
                          build_metadata(o, o->mode == LH_INGEST_CREATE ? NULL : cur));
    json_t *committed = NULL;
    int64_t t_commit = lh_mono_us();
    rc = lh_catalog_commit(t, bucket, m, &committed, err);
    t_commit = lh_mono_us() - t_commit;
    t = NULL; /* commit ends the transaction either way */
    if (rc == LH_EEXIST || rc == LH_EUNAVAIL || rc == LH_EIO)
        stored = false; /* the manifest may exist after all (a lost answer): leave the
                           data file to the sweep rather than delete what it may point at */
    if (rc != 0)
        goto out;
    stored = false; /* referenced now */
    *result = json_pack("{s:s, s:O, s:I, s:I, s:O, s:O, s:{s:I, s:I, s:I}}", "dataset",
                        o->dataset, "version", json_object_get(committed, "version"), "rows",
                        (json_int_t)rows, "total_rows", (json_int_t)total_rows, "columns",
                        json_object_get(committed, "columns"), "files",
                        json_object_get(committed, "files"), "timings_ms", "convert",
                        (json_int_t)(t_convert / 1000), "store", (json_int_t)(t_store / 1000),
                        "commit", (json_int_t)(t_commit / 1000));
    json_decref(committed);
out:
    if (stored) {
        lh_err ignored;
        lh_buckets_delete_object(buckets, bucket, data_key, NULL, &ignored);
    }
    lh_catalog_abort(t);
    if (out)
        unlink(out);
    free(out);
    free(data_key);
    json_decref(columns);
    return rc;
}
