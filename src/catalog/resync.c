/*
 * resync.c — a dataset's facts (row counts, sizes, columns) re-read from its files' Parquet
 * footers and written as a new version; and finding the datasets that need it.
 */
#include "catalog/catalog_int.h"

#include <stdlib.h>
#include <string.h>

/* Footer facts of one data file: rows and bytes (head), into f. */
static int
resync_file(lh_catalog *c, lh_store *store, json_t *f, lh_err *err)
{
    const char *key = str_of(f, "path");
    char *path = NULL;
    json_t *rows = NULL;
    lh_obj_info info;
    int rc = lh_store_head(store, key, &info, err);
    if (rc != 0)
        goto out;
    if ((rc = lh_cache_local_path(c->cache, store, key, true, &path, err)) != 0)
        goto out;
    rc = lh_catalog__rows_of_file(
        c, "SELECT sum(num_rows)::BIGINT AS n FROM parquet_file_metadata(", path, ")", &rows, err);
    if (rc != 0)
        goto out;
    json_object_set(f, "rows", json_object_get(json_array_get(rows, 0), "n"));
    json_object_set_new(f, "bytes", json_integer(info.size));
out:
    if (path)
        lh_cache_unpin(c->cache, path);
    free(path);
    json_decref(rows);
    return rc;
}

/* Rows manifest m shows (deltas merged). */
static int
count_rows(lh_catalog *c, lh_store *store, const json_t *m, int64_t *out, lh_err *err)
{
    char **paths = NULL;
    int rc = lh_catalog__pin_paths(c, store, m, &paths, err);
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
    lh_catalog__unpin_paths(c, m, paths);
    return rc;
}

/* The columns as manifest m's first base file says, through the same view definition. */
static int
resync_columns(lh_catalog *c, lh_store *store, json_t *m, lh_err *err)
{
    const json_t *first_base = NULL;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        if (strcmp(str_of(f, "kind"), "base") == 0) {
            first_base = f;
            break;
        }
    }
    if (first_base == NULL)
        return 0;
    char *first = NULL;
    json_t *cols = NULL;
    int rc = lh_cache_local_path(c->cache, store, str_of(first_base, "path"), true, &first, err);
    if (rc != 0)
        goto out;
    if ((rc = lh_catalog_schema_of(c, first, &cols, err)) != 0)
        goto out;
    json_object_set_new(m, "columns", cols);
out:
    if (first)
        lh_cache_unpin(c->cache, first);
    free(first);
    return rc;
}

int
lh_catalog_resync(lh_catalog *c, const char *name, const char *actor, json_t **committed,
                  lh_err *err)
{
    lh_txn *t = NULL;
    json_t *m = NULL;
    int rc = lh_catalog__begin_live(c, name, &t, err);
    if (rc != 0)
        return rc;
    m = lh_catalog__next_of(lh_txn_current(t), "resync", actor);
    lh_store *store = lh_buckets_get(c->buckets, str_of(m, "bucket"), err);
    if (store == NULL) {
        rc = LH_ENOTFOUND;
        goto out;
    }
    int64_t total_rows = 0, total_bytes = 0;
    bool deltas = false;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        if ((rc = resync_file(c, store, f, err)) != 0)
            goto out;
        total_rows += int_of(f, "rows");
        total_bytes += int_of(f, "bytes");
        deltas |= strcmp(str_of(f, "kind"), "delta") == 0;
    }
    if (deltas && (rc = count_rows(c, store, m, &total_rows, err)) != 0)
        goto out; /* merged on read: count what the view shows */
    if ((rc = resync_columns(c, store, m, err)) != 0)
        goto out;
    json_object_set_new(m, "row_count", json_integer(total_rows));
    json_object_set_new(m, "bytes", json_integer(total_bytes));
    rc = lh_catalog_commit(t, NULL, m, committed, err);
    m = NULL; /* the commit took it and the transaction */
    t = NULL;
out:
    json_decref(m);
    if (t)
        lh_catalog_abort(t);
    return rc;
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
