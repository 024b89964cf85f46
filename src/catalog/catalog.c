/*
 * catalog.c — the dataset index, manifest files and the commit protocol.
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
 *
 * Locking: `lock` (a mutex) guards the index; each dataset has a `writing` flag and the
 * catalog a condition variable, so one local writer per dataset runs at a time while
 * readers never wait on I/O.
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANIFEST_MAX (64u << 20)

static const char *const SENSITIVITIES[] = {"public", "internal", "confidential", "pii", NULL};

/* ---- helpers ------------------------------------------------------------------------------ */

static dataset *
find_locked(lh_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->items[i]->name, name) == 0)
            return c->items[i];
    return NULL;
}

static dataset *
add_locked(lh_catalog *c, const char *name, const char *bucket)
{
    dataset *ds = lh_calloc(1, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "%s", name);
    snprintf(ds->bucket, sizeof ds->bucket, "%s", bucket ? bucket : "");
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->items = lh_realloc(c->items, c->cap * sizeof *c->items);
    }
    c->items[c->n++] = ds;
    return ds;
}

static void
remove_locked(lh_catalog *c, dataset *ds)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i] == ds) {
            c->items[i] = c->items[--c->n];
            break;
        }
}

static void
unpin_all(lh_catalog *c, dataset *ds)
{
    for (size_t i = 0; i < ds->n_pinned; i++) {
        if (ds->pinned[i])
            lh_cache_unpin(c->cache, ds->pinned[i]);
        free(ds->pinned[i]);
    }
    free(ds->pinned);
    ds->pinned = NULL;
    ds->n_pinned = 0;
}

static void
dataset_free(lh_catalog *c, dataset *ds)
{
    unpin_all(c, ds);
    json_decref(ds->manifest);
    free(ds);
}

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

/* Write manifest m as a Parquet file in the work dir; *path_out is new. */
static int
write_manifest_file(lh_catalog *c, const json_t *m, char **path_out, lh_err *err)
{
    lh_buf lines;
    lh_buf_init(&lines);
    char *meta = json_dumps(json_object_get(m, "metadata"), JSON_COMPACT | JSON_SORT_KEYS);
    json_t *row_count = json_object_get(m, "row_count");
    append_line(&lines, json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:O, s:I, s:s}", "record",
                                  "dataset", "name", str_of(m, "name"), "version",
                                  (json_int_t)int_of(m, "version"), "state", str_of(m, "state"),
                                  "change", str_of(m, "change"), "created_at",
                                  str_of(m, "created_at"), "created_by", str_of(m, "created_by"),
                                  "row_count", row_count ? row_count : json_null(), "bytes",
                                  (json_int_t)int_of(m, "bytes"), "metadata", meta ? meta : "{}"));
    free(meta);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        json_t *rows = json_object_get(f, "rows");
        append_line(&lines, json_pack("{s:s, s:s, s:I, s:O, s:s}", "record", "file", "path",
                                      str_of(f, "path"), "file_bytes",
                                      (json_int_t)int_of(f, "bytes"), "file_rows",
                                      rows ? rows : json_null(), "file_kind", str_of(f, "kind")));
    }
    json_t *col;
    json_array_foreach(json_object_get(m, "columns"), i, col)
    {
        append_line(&lines, json_pack("{s:s, s:s, s:s, s:I}", "record", "column", "column_name",
                                      str_of(col, "name"), "column_type", str_of(col, "type"),
                                      "position", (json_int_t)i));
    }
    char *jsonl = work_path(c, ".jsonl");
    char *parquet = work_path(c, ".parquet");
    int rc = 0;
    FILE *fp = fopen(jsonl, "w");
    if (fp == NULL || fwrite(lines.data, 1, lines.len, fp) != lines.len) {
        rc = lh_err_set(err, LH_EIO, 500, "work_dir_unwritable", "could not write a manifest");
        lh_err_detail(err, "%s: %s", jsonl, strerror(errno));
    }
    if (fp && fclose(fp) != 0 && rc == 0)
        rc = lh_err_set(err, LH_EIO, 500, "work_dir_unwritable", "could not write a manifest");
    lh_buf_free(&lines);
    if (rc == 0) {
        lh_buf sql;
        lh_buf_init(&sql);
        lh_buf_puts(&sql, "COPY (SELECT * FROM read_json(");
        lh_sql_quote(&sql, jsonl);
        lh_buf_printf(&sql, ", format = 'newline_delimited', columns = %s)) TO ", MANIFEST_COLUMNS);
        lh_sql_quote(&sql, parquet);
        lh_buf_puts(&sql, " (FORMAT parquet, COMPRESSION zstd)");
        rc = lh_engine_exec(c->engine, sql.data, NULL, err);
        lh_buf_free(&sql);
    }
    unlink(jsonl);
    free(jsonl);
    if (rc != 0) {
        unlink(parquet);
        free(parquet);
        return rc;
    }
    *path_out = parquet;
    return 0;
}

/* A manifest comes from a bucket, which others may write: its column types end up in
 * SQL (empty views) and its paths in file lists, so both are checked. A type is kept only
 * if DuckDB reads it back as exactly itself; a path must be a valid key under the
 * dataset's own data folder. */
static int
check_manifest(lh_catalog *c, const json_t *m, lh_err *err)
{
    const char *name = str_of(m, "name");
    char *prefix = lh_layout_data_prefix(name);
    size_t i;
    json_t *f;
    int rc = lh_name_valid(name) ? 0 : LH_EINVAL;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        const char *path = str_of(f, "path");
        const char *want = strcmp(str_of(f, "kind"), "events") == 0 ? LH_LAYOUT_JOURNAL : prefix;
        if (rc == 0 && (strncmp(path, want, strlen(want)) != 0 || lh_key_check(path, NULL) != 0))
            rc = LH_EINVAL;
    }
    free(prefix);
    json_t *col;
    json_array_foreach(json_object_get(m, "columns"), i, col)
    {
        if (rc != 0)
            break;
        const char *type = str_of(col, "type");
        if (type[0] == '\0' || strchr(type, ';') || strstr(type, "--") || strstr(type, "/*")) {
            rc = LH_EINVAL;
            break;
        }
        char *sql = lh_sprintf("SELECT typeof(CAST(NULL AS %s)) AS t", type);
        json_t *rows = NULL;
        lh_err ignored;
        if (lh_engine_rows(c->engine, sql, &rows, &ignored) != 0 || json_array_size(rows) != 1 ||
            json_object_size(json_array_get(rows, 0)) != 1 ||
            strcmp(str_of(json_array_get(rows, 0), "t"), type) != 0)
            rc = LH_EINVAL;
        json_decref(rows);
        free(sql);
    }
    if (rc != 0) {
        lh_err_set(err, LH_EINVAL, 500, "manifest_invalid",
                   "the manifest of '%s' holds an invalid column type or file path", name);
        return rc;
    }
    return 0;
}

/* Rows (JSON objects, new) of `before 'path' after`: a statement over one local file. */
static int
rows_of_file(lh_catalog *c, const char *before, const char *path, const char *after, json_t **rows,
             lh_err *err)
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

/* Rebuild the manifest JSON from a local manifest Parquet file. Returns new. */
static int
read_manifest_file(lh_catalog *c, const char *bucket, const char *path, json_t **out, lh_err *err)
{
    json_t *rows = NULL;
    int rc = rows_of_file(c, "SELECT * FROM read_parquet(", path, ") ORDER BY record, position",
                          &rows, err);
    if (rc != 0)
        return rc;
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
            json_array_append_new(files, json_pack("{s:s, s:I, s:O, s:s}", "path", str_of(r, "path"),
                                                   "bytes", (json_int_t)int_of(r, "file_bytes"),
                                                   "rows", json_object_get(r, "file_rows"), "kind",
                                                   str_of(r, "file_kind")));
        } else if (strcmp(record, "column") == 0) {
            json_array_append_new(columns, json_pack("{s:s, s:s}", "name", str_of(r, "column_name"),
                                                     "type", str_of(r, "column_type")));
        }
    }
    json_decref(rows);
    if (m == NULL) {
        json_decref(files);
        json_decref(columns);
        lh_err_set(err, LH_EINVAL, 500, "manifest_invalid", "manifest has no dataset record");
        lh_err_detail(err, "%s", path);
        return LH_EINVAL;
    }
    json_object_set_new(m, "files", files);
    json_object_set_new(m, "columns", columns);
    if ((rc = check_manifest(c, m, err)) != 0) {
        json_decref(m);
        return rc;
    }
    *out = m;
    return 0;
}

int
lh_catalog__load_manifest(lh_catalog *c, const char *bucket, const char *name, int64_t version,
                          json_t **out, lh_err *err)
{
    lh_store *store = lh_buckets_get(c->buckets, bucket, err);
    if (store == NULL)
        return LH_ENOTFOUND;
    char *key = lh_layout_manifest_key(name, version);
    char *path = NULL;
    /* pinned while we read it, so a concurrent download cannot evict it meanwhile */
    int rc = lh_cache_local_path(c->cache, store, key, true, &path, err);
    if (rc == 0 && access(path, F_OK) != 0 && errno == ENOENT) /* fs: the path is in place */
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "version_not_found",
                        "no manifest %s in bucket '%s'", key, bucket);
    free(key);
    if (rc != 0) {
        if (path)
            lh_cache_unpin(c->cache, path);
        free(path);
        return rc;
    }
    rc = read_manifest_file(c, bucket, path, out, err);
    lh_cache_unpin(c->cache, path);
    free(path);
    return rc;
}

/* ---- views -------------------------------------------------------------------------------- */

/* Local copies of m's files that hold rows (fs: in place; remote: cached and pinned),
 * NULL for the others; *out (new) is released with unpin_paths. */
static int
pin_paths(lh_catalog *c, lh_store *store, const json_t *m, char ***out, lh_err *err)
{
    json_t *files = json_object_get(m, "files");
    size_t n = json_array_size(files);
    char **paths = lh_calloc(n ? n : 1, sizeof *paths);
    for (size_t i = 0; i < n; i++) {
        const json_t *f = json_array_get(files, i);
        if (!lh_catalog_file_has_rows(f))
            continue;
        int rc = lh_cache_local_path(c->cache, store, str_of(f, "path"), true, &paths[i], err);
        if (rc != 0) {
            for (size_t j = 0; j < i; j++) {
                if (paths[j])
                    lh_cache_unpin(c->cache, paths[j]);
                free(paths[j]);
            }
            free(paths);
            return rc;
        }
    }
    *out = paths;
    return 0;
}

void
lh_catalog_unpin_rows(lh_catalog *c, char **paths, size_t n)
{
    for (size_t i = 0; paths && i < n; i++) {
        if (paths[i])
            lh_cache_unpin(c->cache, paths[i]);
        free(paths[i]);
    }
    free(paths);
}

static void
unpin_paths(lh_catalog *c, const json_t *m, char **paths)
{
    lh_catalog_unpin_rows(c, paths, json_array_size(json_object_get(m, "files")));
}

int
lh_catalog_pin_rows(lh_catalog *c, const json_t *m, char ***paths, size_t *n, lh_err *err)
{
    lh_store *store = lh_buckets_get(c->buckets, str_of(m, "bucket"), err);
    if (store == NULL)
        return LH_ENOTFOUND;
    int rc = pin_paths(c, store, m, paths, err);
    if (rc == 0)
        *n = json_array_size(json_object_get(m, "files"));
    return rc;
}

/* (Re)define the view of a live dataset, or drop it when deleted. Caller holds no lock
 * but is the dataset's only writer (or the loader). */
static int
refresh_view(lh_catalog *c, dataset *ds, lh_err *err)
{
    const json_t *m = ds->manifest;
    if (strcmp(str_of(m, "state"), "live") != 0) {
        unpin_all(c, ds);
        return lh_engine_drop_view(c->views, ds->name, err);
    }
    lh_store *store = lh_buckets_get(c->buckets, ds->bucket, err);
    if (store == NULL)
        return LH_ENOTFOUND;
    size_t n = json_array_size(json_object_get(m, "files"));
    char **paths = NULL;
    int rc = pin_paths(c, store, m, &paths, err);
    if (rc == 0) {
        char *select = lh_catalog_rows_sql(m, paths);
        lh_buf sql;
        lh_buf_init(&sql);
        lh_buf_puts(&sql, "CREATE OR REPLACE VIEW ");
        lh_sql_ident(&sql, ds->name);
        lh_buf_printf(&sql, " AS %s", select);
        rc = lh_engine_exec(c->views, sql.data, NULL, err);
        lh_buf_free(&sql);
        free(select);
    }
    if (rc == 0) {
        unpin_all(c, ds);
        ds->pinned = paths;
        ds->n_pinned = n;
        return 0;
    }
    unpin_paths(c, m, paths);
    return rc;
}

/* ---- loading ------------------------------------------------------------------------------ */

/* lh_store_each: the newest manifest version of each dataset (latest: name -> N). */
static int
note_latest(void *ctx, const lh_list_entry *e)
{
    json_t *latest = ctx;
    char name[LH_NAME_MAX];
    int64_t v;
    if (lh_layout_parse_manifest_key(e->key, name, sizeof name, &v) == 0 &&
        v > json_integer_value(json_object_get(latest, name)))
        json_object_set_new(latest, name, json_integer(v));
    return 0;
}

static void
load_bucket(lh_catalog *c, const char *bucket)
{
    lh_err err;
    lh_store *store = lh_buckets_get(c->buckets, bucket, &err);
    if (store == NULL)
        return;
    /* newest version per dataset name */
    json_t *latest = json_object();
    if (lh_store_each(store, LH_LAYOUT_DATASETS, note_latest, latest, &err) != 0) {
        lh_log(LH_LOG_ERROR, NULL, NULL, "catalog: cannot list bucket '%s': %s", bucket,
               err.message);
        c->load_errors++;
    }
    const char *name;
    json_t *v;
    json_object_foreach(latest, name, v)
    {
        json_t *m = NULL;
        if (lh_catalog__load_manifest(c, bucket, name, json_integer_value(v), &m, &err) != 0) {
            lh_log(LH_LOG_ERROR, NULL, NULL, "catalog: cannot load dataset '%s' from '%s': %s %s",
                   name, bucket, err.message, err.detail);
            c->load_errors++;
            continue;
        }
        pthread_mutex_lock(&c->lock);
        dataset *existing = find_locked(c, name);
        if (existing) {
            pthread_mutex_unlock(&c->lock);
            lh_log(LH_LOG_ERROR, NULL, NULL,
                   "catalog: dataset '%s' exists in buckets '%s' and '%s'; keeping '%s'", name,
                   existing->bucket, bucket, existing->bucket);
            c->load_errors++;
            json_decref(m);
            continue;
        }
        dataset *ds = add_locked(c, name, bucket);
        ds->manifest = m;
        pthread_mutex_unlock(&c->lock);
        if (refresh_view(c, ds, &err) != 0) {
            lh_log(LH_LOG_ERROR, NULL, NULL, "catalog: no view for dataset '%s': %s %s", name,
                   err.message, err.detail);
            c->load_errors++;
        }
    }
    json_decref(latest);
}

int
lh_catalog_open(const lh_catalog_deps *deps, lh_catalog **out, lh_err *err)
{
    lh_catalog *c = lh_calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->writer_done, NULL);
    c->buckets = deps->buckets;
    c->engine = deps->engine;
    c->views = deps->views ? deps->views : deps->engine;
    c->cache = deps->cache;
    c->work_dir = lh_strdup(deps->work_dir);
    c->retain_versions_s = deps->retain_versions_s;
    int64_t t0 = lh_mono_us();
    size_t n = lh_buckets_count(c->buckets);
    for (size_t i = 0; i < n; i++) {
        const char *name = lh_buckets_name_at(c->buckets, i);
        if (strncmp(name, "profile:", 8) != 0)
            load_bucket(c, name);
    }
    lh_catalog__journal_load(c);
    c->load_ms = (lh_mono_us() - t0) / 1000;
    json_t *fields = json_pack("{s:I, s:I, s:i}", "datasets", (json_int_t)c->n, "load_ms",
                               (json_int_t)c->load_ms, "load_errors", c->load_errors);
    lh_log(LH_LOG_INFO, NULL, fields, "catalog loaded");
    json_decref(fields);
    (void)err;
    *out = c;
    return 0;
}

void
lh_catalog_close(lh_catalog *c)
{
    if (c == NULL)
        return;
    lh_catalog__journal_free(c);
    for (size_t i = 0; i < c->n; i++)
        dataset_free(c, c->items[i]);
    free(c->items);
    free(c->work_dir);
    pthread_cond_destroy(&c->writer_done);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ---- reading ------------------------------------------------------------------------------ */

static bool
has_tag(const json_t *meta, const char *tag)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(meta, "tags"), i, t)
    {
        if (json_is_string(t) && strcmp(json_string_value(t), tag) == 0)
            return true;
    }
    return false;
}

static json_t *
freshness(const json_t *m)
{
    const json_t *meta = json_object_get(m, "metadata");
    json_t *sla = json_object_get(meta, "freshness_sla_s");
    const char *ingested = str_of(json_object_get(meta, "lineage"), "ingested_at");
    if (ingested[0] == '\0')
        ingested = str_of(m, "created_at");
    struct tm tm = {0};
    int64_t age_s = -1;
    if (strptime(ingested, "%Y-%m-%dT%H:%M:%S", &tm))
        age_s = (lh_now_us() / 1000000) - (int64_t)timegm(&tm);
    const char *status = "unknown";
    if (json_is_integer(sla) && age_s >= 0)
        status = age_s <= json_integer_value(sla) ? "fresh" : "stale";
    return json_pack("{s:s, s:O, s:I, s:s}", "status", status, "sla_s",
                     sla ? sla : json_null(), "age_s", (json_int_t)age_s, "last_ingested_at",
                     ingested);
}

json_t *
lh_catalog_list(lh_catalog *c, const lh_catalog_filter *f)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        const json_t *m = c->items[i]->manifest;
        if (m == NULL)
            continue; /* being created */
        const json_t *meta = json_object_get(m, "metadata");
        bool live = strcmp(str_of(m, "state"), "live") == 0;
        if (!live && !(f && f->include_deleted))
            continue;
        if (f && f->tag && !has_tag(meta, f->tag))
            continue;
        if (f && f->owner && strcmp(str_of(meta, "owner"), f->owner) != 0)
            continue;
        if (f && f->sensitivity && strcmp(str_of(meta, "sensitivity"), f->sensitivity) != 0)
            continue;
        if (f && f->text && !strcasestr(str_of(meta, "description"), f->text) &&
            !strcasestr(str_of(m, "name"), f->text))
            continue;
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:I, s:s, s:O, s:I, s:I, s:O, s:o}", "name",
                           str_of(m, "name"), "bucket", str_of(m, "bucket"), "version",
                           (json_int_t)int_of(m, "version"), "state", str_of(m, "state"),
                           "row_count", json_object_get(m, "row_count"), "bytes",
                           (json_int_t)int_of(m, "bytes"), "columns",
                           (json_int_t)json_array_size(json_object_get(m, "columns")), "metadata",
                           json_object_get(m, "metadata"), "freshness", freshness(m)));
    }
    pthread_mutex_unlock(&c->lock);
    return arr;
}

static int
not_found(lh_err *err, const char *name)
{
    lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found", "no dataset named '%s'", name);
    lh_err_hint(err, "GET /catalog/datasets lists the datasets");
    return LH_ENOTFOUND;
}

int
lh_catalog_get(lh_catalog *c, const char *name, json_t **out, lh_err *err)
{
    pthread_mutex_lock(&c->lock);
    dataset *ds = find_locked(c, name);
    json_t *m = ds && ds->manifest ? json_deep_copy(ds->manifest) : NULL;
    pthread_mutex_unlock(&c->lock);
    if (m == NULL)
        return not_found(err, name);
    json_object_set_new(m, "freshness", freshness(m));
    *out = m;
    return 0;
}

int
lh_catalog_versions(lh_catalog *c, const char *name, int64_t from, int64_t limit, json_t **out,
                    lh_err *err)
{
    pthread_mutex_lock(&c->lock);
    dataset *ds = find_locked(c, name);
    char bucket[80] = "";
    int64_t newest = 0;
    if (ds && ds->manifest) {
        snprintf(bucket, sizeof bucket, "%s", ds->bucket);
        newest = int_of(ds->manifest, "version");
    }
    pthread_mutex_unlock(&c->lock);
    if (newest == 0)
        return not_found(err, name);
    json_t *arr = json_array();
    if (from < 1)
        from = 1;
    for (int64_t v = from; v <= newest && v < from + limit; v++) {
        json_t *m = NULL;
        lh_err e;
        if (lh_catalog__load_manifest(c, bucket, name, v, &m, &e) != 0) {
            json_array_append_new(arr, json_pack("{s:I, s:s}", "version", (json_int_t)v, "error",
                                                 e.message));
            continue;
        }
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:s, s:s, s:O, s:I, s:I}", "version", (json_int_t)v,
                           "state", str_of(m, "state"), "change", str_of(m, "change"), "created_at",
                           str_of(m, "created_at"), "created_by", str_of(m, "created_by"),
                           "row_count", json_object_get(m, "row_count"), "bytes",
                           (json_int_t)int_of(m, "bytes"), "files",
                           (json_int_t)json_array_size(json_object_get(m, "files"))));
        json_decref(m);
    }
    *out = arr;
    return 0;
}

json_t *
lh_catalog_stats(lh_catalog *c)
{
    pthread_mutex_lock(&c->lock);
    size_t live = 0;
    for (size_t i = 0; i < c->n; i++)
        live += c->items[i]->manifest && strcmp(str_of(c->items[i]->manifest, "state"), "live") == 0;
    pthread_mutex_unlock(&c->lock);
    return json_pack("{s:I, s:I, s:i}", "datasets", (json_int_t)live, "load_ms",
                     (json_int_t)c->load_ms, "load_errors", c->load_errors);
}

const char *
lh_catalog_work_dir(lh_catalog *c)
{
    return c->work_dir;
}

int
lh_catalog_schema_of(lh_catalog *c, const char *local_parquet, json_t **columns, lh_err *err)
{
    json_t *rows = NULL;
    int rc = rows_of_file(c, "DESCRIBE SELECT * FROM read_parquet(", local_parquet, ")", &rows, err);
    if (rc != 0)
        return rc;
    json_t *cols = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_array_append_new(cols, json_pack("{s:s, s:s}", "name", str_of(r, "column_name"), "type",
                                              str_of(r, "column_type")));
    }
    json_decref(rows);
    *columns = cols;
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

int
lh_catalog_begin(lh_catalog *c, const char *name, bool wait, lh_txn **out, lh_err *err)
{
    if (!lh_name_valid(name)) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_name", "dataset name '%s' is not valid", name);
        lh_err_hint(err, "names match [a-z][a-z0-9_]{0,62}");
        return LH_EINVAL;
    }
    pthread_mutex_lock(&c->lock);
    dataset *ds;
    while ((ds = find_locked(c, name)) != NULL && ds->writing) {
        if (!wait) {
            pthread_mutex_unlock(&c->lock);
            lh_err_set(err, LH_EEXIST, 409, "dataset_busy", "dataset '%s' is being changed", name);
            lh_err_hint(err, "retry when the running change (e.g. an ingest job) has finished");
            return LH_EEXIST;
        }
        pthread_cond_wait(&c->writer_done, &c->lock);
    }
    lh_txn *t = lh_calloc(1, sizeof *t);
    t->cat = c;
    if (ds == NULL) {
        ds = add_locked(c, name, NULL);
        t->created = true;
    }
    ds->writing = true;
    t->ds = ds;
    pthread_mutex_unlock(&c->lock);
    *out = t;
    return 0;
}

const json_t *
lh_txn_current(const lh_txn *t)
{
    return t->ds->manifest;
}

bool
lh_txn_live(const lh_txn *t)
{
    return t->ds->manifest && strcmp(str_of(t->ds->manifest, "state"), "live") == 0;
}

static void
end_txn(lh_txn *t, bool drop_placeholder)
{
    lh_catalog *c = t->cat;
    pthread_mutex_lock(&c->lock);
    t->ds->writing = false;
    if (drop_placeholder && t->ds->manifest == NULL) {
        remove_locked(c, t->ds);
        dataset_free(c, t->ds);
    }
    pthread_cond_broadcast(&c->writer_done);
    pthread_mutex_unlock(&c->lock);
    free(t);
}

void
lh_catalog_abort(lh_txn *t)
{
    if (t)
        end_txn(t, true);
}

/* A primary key is checked against the data when it is new or changed, and when base
 * files arrive (an ingest); changes through deltas keep it by construction. */
static bool
key_needs_check(const json_t *old, const json_t *m)
{
    const json_t *key = json_object_get(json_object_get(m, "metadata"), "primary_key");
    if (!json_is_array(key) || strcmp(str_of(m, "state"), "live") != 0)
        return false;
    if (!old || !json_equal(key, json_object_get(json_object_get(old, "metadata"), "primary_key")))
        return true;
    size_t i, j;
    json_t *f, *g;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        if (strcmp(str_of(f, "kind"), "base") != 0)
            continue;
        bool known = false;
        json_array_foreach(json_object_get(old, "files"), j, g)
            known |= strcmp(str_of(f, "path"), str_of(g, "path")) == 0;
        if (!known)
            return true;
    }
    return false;
}

/* 400 invalid_primary_key unless the key's columns exist and every row has a key of its
 * own, not NULL in any part. */
static int
check_key(lh_catalog *c, lh_store *store, const json_t *m, lh_err *err)
{
    const json_t *key = json_object_get(json_object_get(m, "metadata"), "primary_key");
    size_t i, j;
    json_t *k, *col;
    json_array_foreach(key, i, k)
    {
        bool found = false;
        json_array_foreach(json_object_get(m, "columns"), j, col)
            found |= strcmp(str_of(col, "name"), json_string_value(k)) == 0;
        if (!found) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_primary_key",
                       "primary key column '%s' is not a column of the dataset",
                       json_string_value(k));
            return LH_EINVAL;
        }
    }
    char **paths = NULL;
    int rc = pin_paths(c, store, m, &paths, err);
    if (rc != 0)
        return rc;
    char *rows = lh_catalog_rows_sql(m, paths);
    lh_buf keys, nulls, sql;
    lh_buf_init(&keys);
    lh_buf_init(&nulls);
    lh_buf_init(&sql);
    lh_buf keyjson;
    lh_buf_init(&keyjson);
    json_array_foreach(key, i, k)
    {
        lh_buf_puts(&keyjson, i ? ", " : "");
        lh_sql_quote(&keyjson, json_string_value(k));
        lh_buf_puts(&keyjson, ": ");
        lh_sql_ident(&keyjson, json_string_value(k));
        lh_buf_puts(&keys, i ? ", " : "");
        lh_sql_ident(&keys, json_string_value(k));
        lh_buf_puts(&nulls, i ? " OR " : "");
        lh_sql_ident(&nulls, json_string_value(k));
        lh_buf_puts(&nulls, " IS NULL");
    }
    lh_buf_printf(&sql,
                  "SELECT (SELECT count(*) FROM (%s) AS r WHERE %s) AS nulls, "
                  "(SELECT CAST(to_json({%s}) AS VARCHAR) FROM (%s) AS r GROUP BY ALL "
                  "HAVING count(*) > 1 LIMIT 1) AS dup",
                  rows, nulls.data, keyjson.data, rows);
    json_t *out = NULL;
    rc = lh_engine_rows(c->engine, sql.data, &out, err);
    if (rc == 0) {
        const json_t *r = json_array_get(out, 0);
        if (json_integer_value(json_object_get(r, "nulls")) > 0) {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_primary_key",
                            "%lld rows have a NULL in the primary key (%s)",
                            (long long)json_integer_value(json_object_get(r, "nulls")), keys.data);
        } else if (json_is_string(json_object_get(r, "dup"))) {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_primary_key",
                            "the primary key (%s) is not unique: %s appears more than once",
                            keys.data, str_of(r, "dup"));
        }
        if (rc != 0)
            lh_err_hint(err, "choose columns that identify each row, or clean the data first");
    }
    json_decref(out);
    lh_buf_free(&keys);
    lh_buf_free(&keyjson);
    lh_buf_free(&nulls);
    lh_buf_free(&sql);
    free(rows);
    unpin_paths(c, m, paths);
    return rc;
}

int
lh_catalog_commit(lh_txn *t, const char *bucket, json_t *manifest, json_t **committed, lh_err *err)
{
    lh_catalog *c = t->cat;
    dataset *ds = t->ds;
    char target[80]; /* a copy: ds->bucket is rewritten below */
    snprintf(target, sizeof target, "%s",
             ds->bucket[0] ? ds->bucket : bucket ? bucket : lh_buckets_primary_name(c->buckets));
    int64_t version = ds->manifest ? int_of(ds->manifest, "version") + 1 : 1;
    char when[LH_TIME_MAX];
    lh_time_format(lh_now_us(), when);
    json_object_set_new(manifest, "name", json_string(ds->name));
    json_object_set_new(manifest, "bucket", json_string(target));
    json_object_set_new(manifest, "version", json_integer(version));
    json_object_set_new(manifest, "created_at", json_string(when));
    if (json_object_get(manifest, "state") == NULL)
        json_object_set_new(manifest, "state", json_string("live"));
    lh_store *store = lh_buckets_get(c->buckets, target, err);
    char *path = NULL, *key = NULL;
    int rc = store ? 0 : LH_ENOTFOUND;
    if (rc == 0 && key_needs_check(ds->manifest, manifest))
        rc = check_key(c, store, manifest, err);
    if (rc == 0)
        rc = write_manifest_file(c, manifest, &path, err);
    if (rc == 0) {
        key = lh_layout_manifest_key(ds->name, version);
        rc = lh_buckets_put_file(c->buckets, target, key, path, false, LH_PUT_CREATE_ONLY, NULL,
                                 NULL, err);
        if (rc == LH_EEXIST) {
            lh_err_set(err, LH_EEXIST, 409, "manifest_conflict",
                       "dataset '%s' changed meanwhile: version %lld exists already", ds->name,
                       (long long)version);
            lh_err_hint(err, "another writer committed first; retry on the new version");
        }
        unlink(path);
    }
    free(path);
    free(key);
    if (rc != 0) {
        json_decref(manifest);
        end_txn(t, true);
        return rc;
    }
    pthread_mutex_lock(&c->lock);
    json_t *old = ds->manifest;
    ds->manifest = manifest;
    snprintf(ds->bucket, sizeof ds->bucket, "%s", target);
    pthread_mutex_unlock(&c->lock);
    json_decref(old);
    lh_err verr;
    /* the version is committed whatever happens now; a view left behind would answer with
     * the old rows until the next commit or a restart, so a failure is tried once more */
    if (refresh_view(c, ds, &verr) != 0 && refresh_view(c, ds, &verr) != 0)
        lh_log(LH_LOG_ERROR, NULL, NULL, "catalog: view of '%s' not updated: %s %s", ds->name,
               verr.message, verr.detail);
    lh_catalog__journal_add(c, manifest); /* still ours: only this writer replaces it */
    if (committed) {
        pthread_mutex_lock(&c->lock);
        *committed = json_deep_copy(ds->manifest);
        pthread_mutex_unlock(&c->lock);
    }
    end_txn(t, false);
    return 0;
}

/* ---- metadata ------------------------------------------------------------------------------ */

static bool
in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* A primary key is 1 to 16 distinct column names (existence is checked against the
 * dataset's columns where they are known). */
static int
check_primary_key(const json_t *v, lh_err *err)
{
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n < 1 || n > 16)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                          "'primary_key' must be an array of 1 to 16 column names");
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(v, i);
        if (!json_is_string(c) || json_string_length(c) == 0 || json_string_length(c) > 255)
            return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                              "primary_key entry #%zu must be a column name", i + 1);
        for (size_t j = 0; j < i; j++)
            if (json_equal(c, json_array_get(v, j)))
                return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                                  "primary_key names '%s' twice", json_string_value(c));
    }
    return 0;
}

int
lh_catalog_check_metadata(const json_t *in, json_t **out, lh_err *err)
{
    json_t *m = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)in, key, v)
    {
        int rc = 0;
        if (strcmp(key, "owner") == 0 || strcmp(key, "description") == 0 ||
            strcmp(key, "source_system") == 0) {
            if (!json_is_string(v) || json_string_length(v) > 4096)
                rc = lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                                "'%s' must be a string of at most 4096 characters", key);
        } else if (strcmp(key, "sensitivity") == 0) {
            if (!json_is_string(v) || !in_list(SENSITIVITIES, json_string_value(v)))
                rc = lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                                "'sensitivity' must be one of public, internal, confidential, pii");
        } else if (strcmp(key, "tags") == 0) {
            size_t i;
            json_t *tag;
            if (!json_is_array(v) || json_array_size(v) > 64)
                rc = lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                                "'tags' must be an array of at most 64 strings");
            json_array_foreach(v, i, tag) if (rc == 0 && (!json_is_string(tag) || json_string_length(tag) == 0 || json_string_length(tag) > 64)) rc =
                lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                           "tag #%zu must be a string of 1 to 64 characters", i + 1);
        } else if (strcmp(key, "primary_key") == 0) {
            rc = check_primary_key(v, err);
        } else if (strcmp(key, "freshness_sla_s") == 0) {
            if (!json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 1))
                rc = lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                                "'freshness_sla_s' must be a positive integer (seconds) or null");
        } else {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_metadata", "unknown metadata field '%s'",
                            key);
            lh_err_hint(err, "metadata fields: owner, sensitivity, description, tags, "
                             "freshness_sla_s, primary_key, source_system");
        }
        if (rc != 0) {
            json_decref(m);
            return rc;
        }
        json_object_set(m, key, v);
    }
    *out = m;
    return 0;
}

/* Begin a change of a live dataset: 404 when it does not exist or is deleted. */
static int
begin_live(lh_catalog *c, const char *name, lh_txn **out, lh_err *err)
{
    lh_txn *t = NULL;
    /* called from request handlers: never park an HTTP thread behind a long writer */
    int rc = lh_catalog_begin(c, name, false, &t, err);
    if (rc != 0)
        return rc;
    if (!lh_txn_live(t)) {
        lh_catalog_abort(t);
        return not_found(err, name);
    }
    *out = t;
    return 0;
}

/* A new version of the current manifest with changes applied by the caller. */
static json_t *
next_of(const json_t *current, const char *change, const char *actor)
{
    json_t *m = json_deep_copy(current);
    json_object_del(m, "freshness");
    lh_catalog_drop_events(m);
    json_object_set_new(m, "change", json_string(change));
    json_object_set_new(m, "created_by", json_string(actor ? actor : ""));
    return m;
}

int
lh_catalog_patch(lh_catalog *c, const char *name, const json_t *patch, const char *actor,
                 json_t **committed, lh_err *err)
{
    json_t *clean = NULL;
    if (lh_catalog_check_metadata(patch, &clean, err) != 0)
        return LH_EINVAL;
    if (json_object_size(clean) == 0) {
        json_decref(clean);
        return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata", "nothing to change");
    }
    if (json_object_get(clean, "source_system")) {
        json_decref(clean);
        return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                          "'source_system' is lineage: it is set by ingest, not patched");
    }
    lh_txn *t = NULL;
    int rc = begin_live(c, name, &t, err);
    if (rc != 0) {
        json_decref(clean);
        return rc;
    }
    json_t *m = next_of(lh_txn_current(t), "patch", actor);
    json_t *meta = json_object_get(m, "metadata");
    json_object_update(meta, clean);
    json_decref(clean);
    return lh_catalog_commit(t, NULL, m, committed, err);
}

int
lh_catalog_delete(lh_catalog *c, const char *name, const char *actor, json_t **committed,
                  lh_err *err)
{
    lh_txn *t = NULL;
    int rc = begin_live(c, name, &t, err);
    if (rc != 0)
        return rc;
    json_t *m = next_of(lh_txn_current(t), "delete", actor);
    json_object_set_new(m, "state", json_string("deleted"));
    return lh_catalog_commit(t, NULL, m, committed, err);
}

/* Footer facts of one data file: rows and bytes (head), into f. */
static int
resync_file(lh_catalog *c, lh_store *store, json_t *f, lh_err *err)
{
    const char *key = str_of(f, "path");
    lh_obj_info info;
    int rc = lh_store_head(store, key, &info, err);
    if (rc != 0)
        return rc;
    char *path = NULL;
    if ((rc = lh_cache_local_path(c->cache, store, key, true, &path, err)) != 0)
        return rc;
    json_t *rows = NULL;
    rc = rows_of_file(c, "SELECT sum(num_rows)::BIGINT AS n FROM parquet_file_metadata(", path, ")",
                      &rows, err);
    lh_cache_unpin(c->cache, path);
    free(path);
    if (rc != 0)
        return rc;
    json_object_set(f, "rows", json_object_get(json_array_get(rows, 0), "n"));
    json_object_set_new(f, "bytes", json_integer(info.size));
    json_decref(rows);
    return 0;
}

/* Rows manifest m shows (deltas merged). */
static int
count_rows(lh_catalog *c, lh_store *store, const json_t *m, int64_t *out, lh_err *err)
{
    char **paths = NULL;
    int rc = pin_paths(c, store, m, &paths, err);
    if (rc != 0)
        return rc;
    char *rows = lh_catalog_rows_sql(m, paths);
    char *sql = lh_sprintf("SELECT count(*) AS n FROM (%s) AS r", rows);
    json_t *res = NULL;
    rc = lh_engine_rows(c->engine, sql, &res, err);
    if (rc == 0)
        *out = int_of(json_array_get(res, 0), "n");
    json_decref(res);
    free(sql);
    free(rows);
    unpin_paths(c, m, paths);
    return rc;
}

int
lh_catalog_resync(lh_catalog *c, const char *name, const char *actor, json_t **committed,
                  lh_err *err)
{
    lh_txn *t = NULL;
    int rc = begin_live(c, name, &t, err);
    if (rc != 0)
        return rc;
    json_t *m = next_of(lh_txn_current(t), "resync", actor);
    lh_store *store = lh_buckets_get(c->buckets, str_of(m, "bucket"), err);
    json_t *files = json_object_get(m, "files");
    int64_t total_rows = 0, total_bytes = 0;
    size_t i;
    json_t *f;
    rc = store ? 0 : LH_ENOTFOUND;
    json_array_foreach(files, i, f)
    {
        if (rc == 0)
            rc = resync_file(c, store, f, err);
        total_rows += int_of(f, "rows");
        total_bytes += int_of(f, "bytes");
    }
    const json_t *first_base = NULL;
    bool deltas = false;
    json_array_foreach(files, i, f)
    {
        deltas |= strcmp(str_of(f, "kind"), "delta") == 0;
        if (!first_base && strcmp(str_of(f, "kind"), "base") == 0)
            first_base = f;
    }
    if (rc == 0 && deltas) /* merged on read: count what the view shows */
        rc = count_rows(c, store, m, &total_rows, err);
    if (rc == 0 && first_base) {
        /* the columns as the files say, through the same view definition */
        char *first = NULL;
        rc = lh_cache_local_path(c->cache, store, str_of(first_base, "path"), true, &first, err);
        json_t *cols = NULL;
        if (rc == 0 && (rc = lh_catalog_schema_of(c, first, &cols, err)) == 0)
            json_object_set_new(m, "columns", cols);
        if (first)
            lh_cache_unpin(c->cache, first);
        free(first);
    }
    if (rc != 0) {
        json_decref(m);
        lh_catalog_abort(t);
        return rc;
    }
    json_object_set_new(m, "row_count", json_integer(total_rows));
    json_object_set_new(m, "bytes", json_integer(total_bytes));
    return lh_catalog_commit(t, NULL, m, committed, err);
}

static bool
needs_resync(lh_catalog *c, const json_t *m)
{
    if (!json_is_integer(json_object_get(m, "row_count")))
        return true;
    json_t *files = json_object_get(m, "files");
    if (json_array_size(files) > 0 && json_array_size(json_object_get(m, "columns")) == 0)
        return true;
    lh_store *store = lh_buckets_get(c->buckets, str_of(m, "bucket"), NULL);
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        lh_obj_info info;
        if (!json_is_integer(json_object_get(f, "rows")))
            return true;
        if (store && lh_store_head(store, str_of(f, "path"), &info, NULL) == 0 &&
            info.size != int_of(f, "bytes"))
            return true;
    }
    return false;
}

json_t *
lh_catalog_resync_missing(lh_catalog *c, const char *actor)
{
    json_t *names = json_array();
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i]->manifest && strcmp(str_of(c->items[i]->manifest, "state"), "live") == 0)
            json_array_append_new(names, json_string(c->items[i]->name));
    pthread_mutex_unlock(&c->lock);
    json_t *resynced = json_array(), *errors = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        json_t *m = NULL;
        lh_err err;
        if (lh_catalog_get(c, json_string_value(n), &m, &err) != 0)
            continue;
        bool needed = needs_resync(c, m);
        json_decref(m);
        if (!needed)
            continue;
        if (lh_catalog_resync(c, json_string_value(n), actor, NULL, &err) == 0)
            json_array_append(resynced, n);
        else {
            json_t *e = lh_err_to_json(&err);
            json_array_append_new(errors, json_pack("{s:O, s:O}", "dataset", n, "error",
                                                    json_object_get(e, "error")));
            json_decref(e);
        }
    }
    json_t *out = json_pack("{s:I, s:o, s:o}", "checked", (json_int_t)json_array_size(names),
                            "resynced", resynced, "errors", errors);
    json_decref(names);
    return out;
}
