/*
 * manifest.c — manifest files: writing one (JSON lines → COPY ... TO Parquet in the work dir),
 * reading one back through the local cache, and checking what a bucket gave us.
 *
 * Manifest Parquet layout (one file per version; any engine can read it): one row per
 * record, the `record` column saying which kind, the other columns null where they do
 * not apply:
 *
 *   record      'dataset' | 'file' | 'column'
 *   name, version, state, change, created_at, created_by, row_count, bytes,
 *   metadata (JSON text: owner, sensitivity, description, tags, freshness_sla_s, lineage)
 *                                                           -- the 'dataset' row
 *   path, file_bytes, file_rows, file_kind                  -- one 'file' row per data file
 *   column_name, column_type, position                      -- one 'column' row per column
 *
 * Manifests are written through the engine (JSON lines → COPY ... TO parquet) into the
 * work dir, then put create-only into the bucket. Reading goes the other way, through the
 * local cache for remote buckets.
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A unique scratch path in the work dir. Returns new. */
static char *
work_path(lh_catalog *c, const char *suffix)
{
    char hex[17];
    lh_random_hex(hex, 8);
    return lh_sprintf("%s/%s%s", c->work_dir, hex, suffix);
}

/* ---- manifest files ---------------------------------------------------------------------- */

static void
append_line(lh_buf *out, json_t *rec)
{
    char *line = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    lh_buf_puts(out, line);
    lh_buf_append(out, "\n", 1);
    free(line);
}

static const char MANIFEST_COLUMNS[] =
    "{record: 'VARCHAR', name: 'VARCHAR', version: 'BIGINT', state: 'VARCHAR', "
    "change: 'VARCHAR', created_at: 'VARCHAR', created_by: 'VARCHAR', row_count: 'BIGINT', "
    "bytes: 'BIGINT', metadata: 'VARCHAR', path: 'VARCHAR', file_bytes: 'BIGINT', "
    "file_rows: 'BIGINT', file_kind: 'VARCHAR', column_name: 'VARCHAR', column_type: 'VARCHAR', "
    "position: 'INTEGER'}";

/* The manifest as JSON lines, one record a line, in the column layout above. */
static void
manifest_lines(const json_t *m, lh_buf *lines)
{
    char *meta = json_dumps(json_object_get(m, "metadata"), JSON_COMPACT | JSON_SORT_KEYS);
    json_t *row_count = json_object_get(m, "row_count");
    append_line(lines,
                json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:O, s:I, s:s}", "record", "dataset",
                          "name", str_of(m, "name"), "version", (json_int_t)int_of(m, "version"),
                          "state", str_of(m, "state"), "change", str_of(m, "change"), "created_at",
                          str_of(m, "created_at"), "created_by", str_of(m, "created_by"),
                          "row_count", row_count ? row_count : json_null(), "bytes",
                          (json_int_t)int_of(m, "bytes"), "metadata", meta ? meta : "{}"));
    free(meta);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        json_t *rows = json_object_get(f, "rows");
        append_line(lines, json_pack("{s:s, s:s, s:I, s:O, s:s}", "record", "file", "path",
                                     str_of(f, "path"), "file_bytes",
                                     (json_int_t)int_of(f, "bytes"), "file_rows",
                                     rows ? rows : json_null(), "file_kind", str_of(f, "kind")));
    }
    json_t *col;
    json_array_foreach(json_object_get(m, "columns"), i, col)
    {
        append_line(lines, json_pack("{s:s, s:s, s:s, s:I}", "record", "column", "column_name",
                                     str_of(col, "name"), "column_type", str_of(col, "type"),
                                     "position", (json_int_t)i));
    }
}

int
lh_catalog__write_manifest(lh_catalog *c, const json_t *m, char **path_out, lh_err *err)
{
    lh_buf lines, sql;
    lh_buf_init(&lines);
    lh_buf_init(&sql);
    char *jsonl = work_path(c, ".jsonl");
    char *parquet = work_path(c, ".parquet");
    FILE *fp = NULL;
    int rc = 0;
    manifest_lines(m, &lines);
    fp = fopen(jsonl, "w");
    if (fp == NULL || fwrite(lines.data, 1, lines.len, fp) != lines.len) {
        rc = lh_err_set(err, LH_EIO, 500, "work_dir_unwritable", "could not write a manifest");
        lh_err_detail(err, "%s: %s", jsonl, strerror(errno));
        goto out;
    }
    int closed = fclose(fp);
    fp = NULL;
    if (closed != 0) {
        rc = lh_err_set(err, LH_EIO, 500, "work_dir_unwritable", "could not write a manifest");
        lh_err_detail(err, "%s: %s", jsonl, strerror(errno));
        goto out;
    }
    lh_buf_puts(&sql, "COPY (SELECT * FROM read_json(");
    lh_sql_quote(&sql, jsonl);
    lh_buf_printf(&sql, ", format = 'newline_delimited', columns = %s)) TO ", MANIFEST_COLUMNS);
    lh_sql_quote(&sql, parquet);
    lh_buf_puts(&sql, " (FORMAT parquet, COMPRESSION zstd)");
    if ((rc = lh_engine_exec(c->engine, sql.data, NULL, err)) != 0)
        goto out;
    *path_out = parquet;
    parquet = NULL;
out:
    if (parquet)
        unlink(parquet);
    free(parquet);
    if (fp)
        fclose(fp);
    unlink(jsonl);
    free(jsonl);
    lh_buf_free(&sql);
    lh_buf_free(&lines);
    return rc;
}

/* Whether DuckDB reads `type` back as exactly itself (and it is one type, not SQL). The
 * answer for a valid type is remembered (c->valid_types, under the lock): manifests
 * repeat a few types, and asking DuckDB once per column made a manifest of 10,000
 * columns cost 10,000 statements at every start. */
static bool
type_valid(lh_catalog *c, const char *type)
{
    if (type[0] == '\0' || strchr(type, ';') || strstr(type, "--") || strstr(type, "/*"))
        return false;
    pthread_mutex_lock(&c->lock);
    bool known = json_object_get(c->valid_types, type) != NULL;
    pthread_mutex_unlock(&c->lock);
    if (known)
        return true;
    char *sql = lh_sprintf("SELECT typeof(CAST(NULL AS %s)) AS t", type);
    json_t *rows = NULL;
    lh_err ignored;
    bool valid = lh_engine_rows(c->engine, sql, &rows, &ignored) == 0 &&
                 json_array_size(rows) == 1 && json_object_size(json_array_get(rows, 0)) == 1 &&
                 strcmp(str_of(json_array_get(rows, 0), "t"), type) == 0;
    json_decref(rows);
    free(sql);
    if (valid) {
        pthread_mutex_lock(&c->lock);
        json_object_set_new_nocheck(c->valid_types, type, json_true());
        pthread_mutex_unlock(&c->lock);
    }
    return valid;
}

/* A manifest comes from a bucket, which others may write: its column types end up in
 * SQL (empty views) and its paths in file lists, so both are checked. A type is kept only
 * if DuckDB reads it back as exactly itself; a path must be a valid key under the
 * dataset's own data folder. */
int
lh_catalog__check_manifest(lh_catalog *c, const json_t *m, lh_err *err)
{
    const char *name = str_of(m, "name");
    char *prefix = lh_layout_data_prefix(name);
    size_t i;
    json_t *f, *col;
    int rc = 0;
    if (!lh_name_valid(name))
        goto invalid;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        const char *path = str_of(f, "path");
        const char *want = strcmp(str_of(f, "kind"), "events") == 0 ? LH_LAYOUT_JOURNAL : prefix;
        if (strncmp(path, want, strlen(want)) != 0 || lh_key_check(path, NULL) != 0)
            goto invalid;
    }
    json_array_foreach(json_object_get(m, "columns"), i, col)
    {
        if (!type_valid(c, str_of(col, "type")))
            goto invalid;
    }
    goto out;
invalid:
    rc = lh_err_set(err, LH_EINVAL, 500, "manifest_invalid",
                    "the manifest of '%s' holds an invalid column type or file path", name);
out:
    free(prefix);
    return rc;
}

int
lh_catalog__rows_of_file(lh_catalog *c, const char *before, const char *path, const char *after,
                         json_t **rows, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, before);
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, after);
    int rc = lh_engine_rows(c->engine, sql.data, rows, err);
    lh_buf_free(&sql);
    return rc;
}

json_t *
lh_catalog__manifest_of_rows(const json_t *rows, const char *bucket)
{
    json_t *m = NULL;
    json_t *files = json_array(), *columns = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *record = str_of(r, "record");
        if (strcmp(record, "dataset") == 0 && m == NULL) {
            json_t *meta = json_loads(str_of(r, "metadata"), 0, NULL);
            m = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:O, s:I, s:o}", "name",
                          str_of(r, "name"), "bucket", bucket, "version",
                          (json_int_t)int_of(r, "version"), "state", str_of(r, "state"), "change",
                          str_of(r, "change"), "created_at", str_of(r, "created_at"), "created_by",
                          str_of(r, "created_by"), "row_count", json_object_get(r, "row_count"),
                          "bytes", (json_int_t)int_of(r, "bytes"), "metadata",
                          meta ? meta : json_object());
        } else if (strcmp(record, "file") == 0) {
            json_array_append_new(
                files, json_pack("{s:s, s:I, s:O, s:s}", "path", str_of(r, "path"), "bytes",
                                 (json_int_t)int_of(r, "file_bytes"), "rows",
                                 json_object_get(r, "file_rows"), "kind", str_of(r, "file_kind")));
        } else if (strcmp(record, "column") == 0) {
            json_array_append_new(columns, json_pack("{s:s, s:s}", "name", str_of(r, "column_name"),
                                                     "type", str_of(r, "column_type")));
        }
    }
    if (m) {
        json_object_set(m, "files", files);
        json_object_set(m, "columns", columns);
    }
    json_decref(files);
    json_decref(columns);
    return m;
}

/* Rebuild the manifest JSON from a local manifest Parquet file (new). A file that is not
 * a readable manifest is a 500 manifest_invalid: the bucket holds it, not the client. */
static int
read_manifest_file(lh_catalog *c, const char *bucket, const char *key, const char *path,
                   json_t **out, lh_err *err)
{
    json_t *rows = NULL, *m = NULL;
    lh_err read_err;
    int rc = lh_catalog__rows_of_file(c, "SELECT * FROM read_parquet(", path,
                                      ") ORDER BY record, position", &rows, &read_err);
    if (rc != 0) {
        rc = lh_err_set(err, LH_EINVAL, 500, "manifest_invalid", "could not read a manifest");
        lh_err_detail(err, "%s in bucket '%s': %s", key, bucket, read_err.message);
        goto out;
    }
    if ((m = lh_catalog__manifest_of_rows(rows, bucket)) == NULL) {
        rc = lh_err_set(err, LH_EINVAL, 500, "manifest_invalid", "manifest has no dataset record");
        lh_err_detail(err, "%s in bucket '%s'", key, bucket);
        goto out;
    }
    if ((rc = lh_catalog__check_manifest(c, m, err)) != 0)
        goto out;
    *out = m;
    m = NULL;
out:
    json_decref(m);
    json_decref(rows);
    return rc;
}

int
lh_catalog__load_manifest(lh_catalog *c, const char *bucket, const char *name, int64_t version,
                          json_t **out, lh_err *err)
{
    char *key = NULL, *path = NULL;
    int rc = 0;
    lh_store *store = lh_buckets_get(c->buckets, bucket, err);
    if (store == NULL) {
        rc = LH_ENOTFOUND;
        goto out;
    }
    key = lh_layout_manifest_key(name, version);
    /* pinned while we read it, so a concurrent download cannot evict it meanwhile */
    if ((rc = lh_cache_local_path(c->cache, store, key, true, &path, err)) != 0)
        goto out;
    if (access(path, F_OK) != 0 && errno == ENOENT) { /* fs: the path is in place */
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "version_not_found",
                        "no manifest %s in bucket '%s'", key, bucket);
        goto out;
    }
    rc = read_manifest_file(c, bucket, key, path, out, err);
out:
    if (path)
        lh_cache_unpin(c->cache, path);
    free(path);
    free(key);
    return rc;
}

/* older versions tried at start before a dataset is given up as unreadable */
#define FALLBACK_MAX 64

int
lh_catalog__load_newest_valid(lh_catalog *c, const char *bucket, const char *name, int64_t newest,
                              json_t **out, json_t **warnings, lh_err *err)
{
    json_t *bad = json_array(); /* warnings, one per unreadable newer version */
    json_t *m = NULL;
    int rc = LH_ENOTFOUND;
    for (int64_t v = newest; v >= 1 && v > newest - FALLBACK_MAX; v--) {
        rc = lh_catalog__load_manifest(c, bucket, name, v, &m, err);
        /* served, or older versions expired, or the bucket itself is away: stop */
        if (rc == 0 || rc == LH_ENOTFOUND || rc == LH_EUNAVAIL)
            break;
        char *key = lh_layout_manifest_key(name, v);
        lh_buckets_record_error(c->buckets, bucket, "load_manifest", key, err, NULL);
        lh_log(LH_LOG_ERROR, NULL, NULL,
               "catalog: manifest v%lld of '%s' in '%s' unreadable: %s %s", (long long)v, name,
               bucket, err->message, err->detail);
        json_array_append_new(
            bad, json_sprintf("manifest v%lld could not be read (%s)", (long long)v, err->message));
        free(key);
    }
    if (rc != 0)
        goto out;
    size_t i;
    json_t *w;
    json_array_foreach(bad, i, w)
    {
        char *text =
            lh_sprintf("%s; serving v%lld", json_string_value(w), (long long)int_of(m, "version"));
        json_string_set(w, text);
        free(text);
    }
    *warnings = json_array_size(bad) ? json_incref(bad) : NULL;
    *out = m;
out:
    json_decref(bad);
    return rc;
}

int
lh_catalog_schema_of(lh_catalog *c, const char *local_parquet, json_t **columns, lh_err *err)
{
    json_t *rows = NULL;
    int rc = lh_catalog__rows_of_file(c, "DESCRIBE SELECT * FROM read_parquet(", local_parquet, ")",
                                      &rows, err);
    if (rc != 0)
        return rc;
    json_t *cols = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_array_append_new(cols, json_pack("{s:s, s:s}", "name", str_of(r, "column_name"),
                                              "type", str_of(r, "column_type")));
    }
    json_decref(rows);
    *columns = cols;
    return 0;
}
