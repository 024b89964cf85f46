/*
 * commit.c — transactions and the commit protocol: one local writer per dataset (begin waits
 * or fails with 409 dataset_busy), a primary key checked against the data, then the new
 * manifest put create-only so that a writer elsewhere that got there first makes ours fail
 * with 409 manifest_conflict, never overwrite.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- writing ------------------------------------------------------------------------------ */

int
lh_catalog_begin(lh_catalog *c, const char *name, bool wait, lh_txn **out, lh_err *err)
{
    if (!lh_name_valid(name)) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_name", "dataset name '%s' is not valid", name);
        lh_err_hint(err, "names match [a-z][a-z0-9_]{0,62}");
        return LH_EINVAL;
    }
    /* a new dataset's view must not shadow what its name means in SQL */
    const char *reserved = lh_engine_reserved_name(c->views, name);
    pthread_mutex_lock(&c->lock);
    dataset *ds;
    if (reserved && lh_catalog__find_locked(c, name) == NULL) {
        pthread_mutex_unlock(&c->lock);
        lh_err_set(err, LH_EINVAL, 400, "reserved_name", "dataset name '%s' is %s", name, reserved);
        lh_err_detail(err, "queries could not name it without quotes, or it would hide what "
                           "that name means in SQL");
        lh_err_hint(err, "choose another name, e.g. '%s_data'", name);
        return LH_EINVAL;
    }
    while ((ds = lh_catalog__find_locked(c, name)) != NULL && ds->writing) {
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
        ds = lh_catalog__add_locked(c, name, NULL);
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

int64_t
lh_txn_next_version(const lh_txn *t)
{
    /* above every version in the bucket, also newer ones that could not be read at start:
     * a create-only put onto one of those would conflict for ever */
    int64_t version = t->ds->manifest ? int_of(t->ds->manifest, "version") : 0;
    return (t->ds->newest_version > version ? t->ds->newest_version : version) + 1;
}

static void
end_txn(lh_txn *t, bool drop_placeholder)
{
    lh_catalog *c = t->cat;
    pthread_mutex_lock(&c->lock);
    t->ds->writing = false;
    if (drop_placeholder && t->ds->manifest == NULL) {
        lh_catalog__remove_locked(c, t->ds);
        lh_catalog__dataset_free(c, t->ds);
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
        json_array_foreach(json_object_get(old, "files"), j, g) known |=
            strcmp(str_of(f, "path"), str_of(g, "path")) == 0;
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
        json_array_foreach(json_object_get(m, "columns"), j, col) found |=
            strcmp(str_of(col, "name"), json_string_value(k)) == 0;
        if (!found) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_primary_key",
                       "primary key column '%s' is not a column of the dataset",
                       json_string_value(k));
            return LH_EINVAL;
        }
    }
    char **paths = NULL;
    int rc = lh_catalog__pin_paths(c, store, m, &paths, err);
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
    lh_catalog__unpin_paths(c, m, paths);
    return rc;
}

/* Check and put manifest version `version` of ds into bucket `target` (create-only);
 * *bytes gets the object's size. */
static int
put_manifest(lh_catalog *c, dataset *ds, const char *target, int64_t version,
             const json_t *manifest, int64_t *bytes, lh_err *err)
{
    char *path = NULL, *key = NULL;
    int rc = 0;
    lh_store *store = lh_buckets_get(c->buckets, target, err);
    if (store == NULL) {
        rc = LH_ENOTFOUND;
        goto out;
    }
    if (key_needs_check(ds->manifest, manifest) && (rc = check_key(c, store, manifest, err)) != 0)
        goto out;
    if ((rc = lh_catalog__write_manifest(c, manifest, &path, err)) != 0)
        goto out;
    key = lh_layout_manifest_key(ds->name, version);
    rc = lh_buckets_put_file(c->buckets, target, key, path, false, LH_PUT_CREATE_ONLY, bytes, NULL,
                             err);
    if (rc == LH_EEXIST) {
        lh_err_set(err, LH_EEXIST, 409, "manifest_conflict",
                   "dataset '%s' changed meanwhile: version %lld exists already", ds->name,
                   (long long)version);
        lh_err_hint(err, "another writer committed first; retry on the new version");
    }
out:
    if (path)
        unlink(path);
    free(path);
    free(key);
    return rc;
}

int
lh_catalog_commit(lh_txn *t, const char *bucket, json_t *manifest, json_t **committed, lh_err *err)
{
    lh_catalog *c = t->cat;
    dataset *ds = t->ds;
    char target[80]; /* a copy: ds->bucket is rewritten below */
    snprintf(target, sizeof target, "%s",
             ds->bucket[0] ? ds->bucket
             : bucket      ? bucket
                           : lh_buckets_primary_name(c->buckets));
    int64_t version = lh_txn_next_version(t);
    char when[LH_TIME_MAX];
    lh_time_format(lh_now_us(), when);
    json_object_set_new(manifest, "name", json_string(ds->name));
    json_object_set_new(manifest, "bucket", json_string(target));
    json_object_set_new(manifest, "version", json_integer(version));
    json_object_set_new(manifest, "created_at", json_string(when));
    if (json_object_get(manifest, "state") == NULL)
        json_object_set_new(manifest, "state", json_string("live"));
    int64_t bytes = 0;
    int rc = put_manifest(c, ds, target, version, manifest, &bytes, err);
    if (rc != 0) {
        json_decref(manifest);
        goto out;
    }
    pthread_mutex_lock(&c->lock);
    json_t *old = ds->manifest, *old_warnings = ds->warnings;
    ds->manifest = manifest;
    ds->newest_version = version;
    ds->manifest_bytes = bytes;
    ds->warnings = NULL; /* the newest version is served again */
    snprintf(ds->bucket, sizeof ds->bucket, "%s", target);
    pthread_mutex_unlock(&c->lock);
    json_decref(old);
    json_decref(old_warnings);
    lh_err verr;
    /* the version is committed whatever happens now; a view left behind would answer with
     * the old rows until the next commit or a restart, so a failure is tried once more */
    if (lh_catalog__refresh_view(c, ds, &verr) != 0 && lh_catalog__refresh_view(c, ds, &verr) != 0)
        lh_log(LH_LOG_ERROR, NULL, NULL, "catalog: view of '%s' not updated: %s %s", ds->name,
               verr.message, verr.detail);
    lh_catalog__journal_add(c, manifest);  /* still ours: only this writer replaces it */
    lh_catalog__checkpoint_note_commit(c); /* counts; the checkpoint is written elsewhere */
    if (committed) {
        pthread_mutex_lock(&c->lock);
        *committed = json_deep_copy(ds->manifest);
        pthread_mutex_unlock(&c->lock);
    }
out:
    end_txn(t, rc != 0); /* a failed first commit drops the placeholder */
    return rc;
}

/* Begin a change of a live dataset: 404 when it does not exist or is deleted. */
int
lh_catalog__begin_live(lh_catalog *c, const char *name, lh_txn **out, lh_err *err)
{
    lh_txn *t = NULL;
    /* called from request handlers: never park an HTTP thread behind a long writer */
    int rc = lh_catalog_begin(c, name, false, &t, err);
    if (rc != 0)
        return rc;
    if (!lh_txn_live(t)) {
        lh_catalog_abort(t);
        return lh_catalog__not_found(err, name);
    }
    *out = t;
    return 0;
}

/* A new version of the current manifest with changes applied by the caller. */
json_t *
lh_catalog__next_of(const json_t *current, const char *change, const char *actor)
{
    json_t *m = json_deep_copy(current);
    json_object_del(m, "freshness");
    lh_catalog_drop_events(m);
    json_object_set_new(m, "change", json_string(change));
    json_object_set_new(m, "created_by", json_string(actor ? actor : ""));
    return m;
}
