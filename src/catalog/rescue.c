/*
 * rescue.c — a dataset whose bucket is unreachable, read through SQL (invariant 7:
 * reads may fall back to the rescue bucket and always say so).
 *
 * The users' engine asks lh_catalog__read_check each time a statement binds a dataset
 * (lh_engine_set_read_check), so every door that runs SQL — /query, search filters,
 * tool SQL, index builds — gets the same answer. All is well when the first local file
 * the view reads is there (an fs bucket's file in place, or the pinned cache copy of a
 * remote one): one access(2), nothing else. When it is not, the bucket is asked for the
 * object (lh_buckets_head_object: its failure is journaled in /storage/errors, and it
 * falls back to the rescue bucket):
 *
 *   - the object is there, or only that object is missing: the view is read as it is,
 *     and DuckDB's error (503 data_unavailable) says what went wrong;
 *   - the bucket is unreachable and the rescue bucket holds the file: every file of the
 *     manifest is taken from the rescue bucket (the same keys), and the statement reads
 *     those copies; the query reports rescue_used (X-Lakehouse-Rescue-Used: true) and the
 *     error record says "rescue";
 *   - the bucket is unreachable and there is no rescue copy (or no rescue bucket):
 *     503 bucket_unreachable naming the bucket and the dataset.
 *
 * A remote dataset's view reads pinned cache copies, which stay readable while its
 * bucket is down, so only datasets read in place (fs buckets) and vanished cache copies
 * get here. The rescue copies are pinned once per manifest (dataset.rescue_pinned) and
 * kept until the manifest changes or the dataset goes. Locking: the catalog lock guards
 * the dataset's fields; no I/O happens under it.
 */
#include "catalog/catalog_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
lh_catalog__rescue_release(lh_catalog *c, dataset *ds)
{
    if (ds->rescue_pinned)
        lh_catalog_unpin_rows(c, ds->rescue_pinned,
                              json_array_size(json_object_get(ds->rescue_of, "files")));
    ds->rescue_pinned = NULL;
    json_decref(ds->rescue_of);
    ds->rescue_of = NULL;
}

static int
unreachable(lh_err *err, const char *name, const char *bucket, const char *rescue,
            const lh_err *why)
{
    lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unreachable",
               "bucket '%s' is unreachable: dataset '%s' cannot be read", bucket, name);
    /* the storage error's message only: its detail may hold the server's paths, which
     * /storage/errors keeps for operators */
    lh_err_detail(err, "%s", why->message);
    if (rescue)
        lh_err_hint(err,
                    "the rescue bucket '%s' holds no complete copy of it; retry when '%s' is "
                    "back (GET /storage/buckets shows its state, GET /storage/errors why)",
                    rescue, bucket);
    else
        lh_err_hint(err,
                    "retry when '%s' is back (GET /storage/buckets shows its state, GET "
                    "/storage/errors why); with [storage] rescue set, reads fall back to a copy",
                    bucket);
    return LH_EUNAVAIL;
}

/* The rescue copies of m's files (pinned; new), each checked to be readable. */
static int
pin_rescue(lh_catalog *c, const json_t *m, char ***out, lh_err *err)
{
    const char *rescue = lh_buckets_rescue_name(c->buckets);
    lh_store *store = lh_buckets_get(c->buckets, rescue, err);
    if (store == NULL)
        return LH_ENOTFOUND;
    char **paths = NULL;
    int rc = lh_catalog__pin_paths(c, store, m, &paths, err);
    if (rc != 0)
        return rc;
    size_t n = json_array_size(json_object_get(m, "files"));
    for (size_t i = 0; i < n && rc == 0; i++)
        if (paths[i] && access(paths[i], R_OK) != 0) {
            const char *key = str_of(json_array_get(json_object_get(m, "files"), i), "path");
            rc = lh_err_set(err, LH_ENOTFOUND, 404, "object_not_found",
                            "the rescue bucket has no object '%s'", key);
        }
    if (rc != 0) {
        lh_catalog_unpin_rows(c, paths, n);
        return rc;
    }
    *out = paths;
    return 0;
}

/* The SELECT of m's rows over its rescue copies (new in *instead). */
static int
rescue_select(lh_catalog *c, const char *name, json_t *m, char **instead, lh_err *err)
{
    pthread_mutex_lock(&c->lock);
    dataset *ds = lh_catalog__find_locked(c, name);
    if (ds && ds->rescue_of == m && ds->rescue_pinned) {
        *instead = lh_catalog_rows_sql(m, ds->rescue_pinned);
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    pthread_mutex_unlock(&c->lock);
    char **paths = NULL;
    int rc = pin_rescue(c, m, &paths, err);
    if (rc != 0)
        return rc;
    *instead = lh_catalog_rows_sql(m, paths);
    /* kept for the next statement (and while this one reads), unless the dataset changed
     * meanwhile; what is not kept is released */
    char **drop = paths;
    json_t *drop_of = json_incref(m);
    pthread_mutex_lock(&c->lock);
    ds = lh_catalog__find_locked(c, name);
    if (ds && ds->manifest == m) {
        json_decref(drop_of);
        drop = ds->rescue_pinned;
        drop_of = ds->rescue_of;
        ds->rescue_pinned = paths;
        ds->rescue_of = json_incref(m);
    }
    pthread_mutex_unlock(&c->lock);
    if (drop)
        lh_catalog_unpin_rows(c, drop, json_array_size(json_object_get(drop_of, "files")));
    json_decref(drop_of);
    return 0;
}

int
lh_catalog__read_check(void *ctx, const char *name, char **instead, bool *rescue, lh_err *err)
{
    lh_catalog *c = ctx;
    char bucket[sizeof((dataset *)0)->bucket] = "", *probe = NULL;
    json_t *m = NULL;
    size_t at = 0;
    pthread_mutex_lock(&c->lock);
    dataset *ds = lh_catalog__find_locked(c, name);
    for (size_t i = 0; ds && ds->pinned && i < ds->n_pinned && !probe; i++)
        if (ds->pinned[i]) {
            probe = lh_strdup(ds->pinned[i]);
            at = i;
            m = json_incref(ds->manifest);
            snprintf(bucket, sizeof bucket, "%s", ds->bucket);
        }
    pthread_mutex_unlock(&c->lock);
    int rc = 0;
    if (probe == NULL || access(probe, R_OK) == 0)
        goto out; /* all is well, or nothing to read */
    /* the copy the view reads is not there: ask its bucket (journaled; falls back) */
    const char *key = str_of(json_array_get(json_object_get(m, "files"), at), "path");
    lh_obj_info info;
    bool used = false;
    lh_err why;
    lh_err_clear(&why);
    int hrc = lh_buckets_head_object(c->buckets, bucket, key, &info, &used, NULL, &why);
    if ((hrc == 0 && !used) || (hrc != 0 && hrc != LH_EUNAVAIL))
        goto out; /* the bucket answers: DuckDB's own error says what is wrong */
    const char *rescue_name = lh_buckets_rescue_name(c->buckets);
    if (hrc != 0) {
        rc = unreachable(err, name, bucket, rescue_name, &why);
        goto out;
    }
    lh_err rerr;
    lh_err_clear(&rerr);
    if (rescue_select(c, name, m, instead, &rerr) != 0) {
        rc = unreachable(err, name, bucket, rescue_name, &rerr);
        goto out;
    }
    *rescue = true;
out:
    free(probe);
    json_decref(m);
    return rc;
}
