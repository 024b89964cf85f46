/*
 * catalog.c — the dataset index: loading it from the buckets at open, and reading it
 * (lists, one dataset, its versions, counters). The other parts of the catalog live
 * beside it: manifest.c (the manifest file format), views.c (dataset views), commit.c
 * (transactions and the commit protocol), metadata.c (metadata checks, patch, delete),
 * resync.c (facts from Parquet footers), history.c and asof.c (time travel), journal.c
 * (the events journal), sweep.c (retention and leftovers); README.md describes them.
 *
 * Locking: `lock` (a mutex) guards the index; each dataset has a `writing` flag and the
 * catalog a condition variable, so one local writer per dataset runs at a time while
 * readers never wait on I/O.
 */
#include "catalog/catalog_int.h"

#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the index ---------------------------------------------------------------------------- */

/* by_name maps a name to its entry's place in items, so a lookup does not walk the
 * array: at open every dataset and every events batch looks its dataset up, and a walk
 * made that quadratic in the number of datasets. */
dataset *
lh_catalog__find_locked(lh_catalog *c, const char *name)
{
    json_t *at = json_object_get(c->by_name, name);
    return at ? c->items[json_integer_value(at)] : NULL;
}

dataset *
lh_catalog__add_locked(lh_catalog *c, const char *name, const char *bucket)
{
    dataset *ds = lh_calloc(1, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "%s", name);
    snprintf(ds->bucket, sizeof ds->bucket, "%s", bucket ? bucket : "");
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->items = lh_realloc(c->items, c->cap * sizeof *c->items);
    }
    json_object_set_new(c->by_name, ds->name, json_integer((json_int_t)c->n));
    c->items[c->n++] = ds;
    return ds;
}

void
lh_catalog__remove_locked(lh_catalog *c, dataset *ds)
{
    json_t *at = json_object_get(c->by_name, ds->name);
    size_t i = at ? (size_t)json_integer_value(at) : c->n;
    if (i >= c->n || c->items[i] != ds)
        return;
    json_object_del(c->by_name, ds->name);
    c->items[i] = c->items[--c->n];
    if (i < c->n) /* the last one moved into its place */
        json_object_set_new(c->by_name, c->items[i]->name, json_integer((json_int_t)i));
}

void
lh_catalog__dataset_free(lh_catalog *c, dataset *ds)
{
    lh_catalog__unpin_all(c, ds);
    lh_catalog__rescue_release(c, ds);
    json_decref(ds->manifest);
    json_decref(ds->warnings);
    free(ds);
}

/* ---- loading ------------------------------------------------------------------------------ */

typedef struct listing {
    json_t *latest; /* name -> newest manifest version N */
    json_t *sizes;  /* name -> size of that manifest object */
} listing;

/* lh_buckets_each: the newest manifest version of each dataset and its size. */
static int
note_latest(void *ctx, const lh_list_entry *e)
{
    listing *l = ctx;
    char name[LH_NAME_MAX];
    int64_t v;
    if (lh_layout_parse_manifest_key(e->key, name, sizeof name, &v) == 0 &&
        v > json_integer_value(json_object_get(l->latest, name))) {
        json_object_set_new(l->latest, name, json_integer(v));
        json_object_set_new(l->sizes, name, json_integer(e->size));
    }
    return 0;
}

/* Folders a walk of an fs bucket enters: only those that can hold manifests. */
static bool
enter_manifests(void *ctx, const char *folder)
{
    (void)ctx;
    return lh_layout_manifest_folder(folder);
}

/* List the bucket's manifests (a listing is cheap next to reading manifests) into l; a
 * failure is logged and counted (l then holds what was listed before it). */
static int
list_bucket(lh_catalog *c, const char *bucket, listing *l)
{
    lh_err err;
    l->latest = json_object();
    l->sizes = json_object();
    int rc = lh_buckets_each_in(c->buckets, bucket, LH_LAYOUT_DATASETS, enter_manifests, NULL,
                                note_latest, l, NULL, &err);
    if (rc != 0) {
        lh_log(LH_LOG_ERROR, NULL, NULL, "catalog: cannot list bucket '%s': %s", bucket,
               err.message);
        pthread_mutex_lock(&c->lock);
        c->load_errors++;
        pthread_mutex_unlock(&c->lock);
    }
    return rc;
}

/* Take the listed datasets whose newest manifest the checkpoint holds from it, and read
 * the others. */
static void
load_bucket(lh_catalog *c, const char *bucket, listing *l)
{
    lh_catalog__checkpoint_apply(c, bucket, l->latest, l->sizes);
    lh_catalog__load_datasets(c, bucket, l->latest, l->sizes);
    json_decref(l->sizes);
    json_decref(l->latest);
}

static void *
checkpoint_reader(void *arg)
{
    lh_catalog__checkpoint_read(arg);
    return NULL;
}

/* The start's first steps at once, since none needs another: the checkpoint is read
 * (one Parquet object, its manifests parsed) on a thread of its own while the buckets'
 * datasets and journals are listed (system calls or round trips). Then each bucket's
 * datasets are taken from the checkpoint or read; *journal_keys (new, one array per
 * bucket, NULL for profile buckets; free with free_keys) is for lh_catalog__journal_load. */
static void
load_buckets(lh_catalog *c, int64_t *checkpoint_ms, json_t ***journal_keys)
{
    size_t n = lh_buckets_count(c->buckets);
    listing *lists = lh_calloc(n ? n : 1, sizeof *lists);
    json_t **keys = lh_calloc(n ? n : 1, sizeof *keys);
    pthread_t reader;
    bool threaded = pthread_create(&reader, NULL, checkpoint_reader, c) == 0;
    if (!threaded)
        lh_catalog__checkpoint_read(c);
    for (size_t i = 0; i < n; i++) {
        const char *name = lh_buckets_name_at(c->buckets, i);
        if (strncmp(name, "profile:", 8) != 0) {
            if (list_bucket(c, name, &lists[i]) != 0)
                json_array_append_new(c->unlisted, json_string(name)); /* relister.c */
            keys[i] = lh_catalog__journal_list(c, name);
        }
    }
    if (threaded)
        pthread_join(reader, NULL);
    *checkpoint_ms = c->ckpt_read_ms;
    for (size_t i = 0; i < n; i++) {
        if (lists[i].latest)
            load_bucket(c, lh_buckets_name_at(c->buckets, i), &lists[i]);
    }
    free(lists);
    *journal_keys = keys;
}

static void
free_keys(lh_catalog *c, json_t **keys)
{
    for (size_t i = 0, n = lh_buckets_count(c->buckets); i < n; i++)
        json_decref(keys[i]);
    free(keys);
}

int
lh_catalog__load_bucket(lh_catalog *c, const char *bucket, int64_t *datasets, int64_t *errors)
{
    pthread_mutex_lock(&c->lock);
    size_t n_before = c->n;
    int errors_before = c->load_errors;
    pthread_mutex_unlock(&c->lock);
    listing l = {0};
    int rc = list_bucket(c, bucket, &l);
    if (rc != 0) {
        json_decref(l.sizes);
        json_decref(l.latest);
        return rc;
    }
    json_t *keys = lh_catalog__journal_list(c, bucket);
    lh_catalog__load_datasets(c, bucket, l.latest, l.sizes);
    json_decref(l.sizes);
    json_decref(l.latest);
    lh_catalog__journal_add_bucket(c, bucket, keys);
    json_decref(keys);
    pthread_mutex_lock(&c->lock);
    *datasets = (int64_t)(c->n - n_before);
    *errors = c->load_errors - errors_before;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

void
lh_catalog_add_bucket(lh_catalog *c, const char *bucket, int64_t *datasets, int64_t *errors)
{
    *datasets = *errors = 0;
    if (lh_catalog__load_bucket(c, bucket, datasets, errors) != 0) {
        *errors = 1;
        pthread_mutex_lock(&c->lock);
        json_array_append_new(c->unlisted, json_string(bucket)); /* listed again later */
        pthread_mutex_unlock(&c->lock);
        lh_catalog__relist_start(c);
    }
    json_t *fields = json_pack("{s:s, s:I, s:I}", "bucket", bucket, "datasets",
                               (json_int_t)*datasets, "load_errors", (json_int_t)*errors);
    lh_log(LH_LOG_INFO, NULL, fields, "catalog: bucket added");
    json_decref(fields);
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
    c->max_diff_rows = deps->max_diff_rows;
    c->valid_types = json_object();
    c->by_name = json_object();
    c->load_threads = deps->load_threads > 0 ? deps->load_threads : 1;
    c->checkpoint_on = deps->checkpoint;
    c->checkpoint_after = deps->checkpoint_after_commits;
    c->unlisted = json_array();
    c->relist_interval_ms = deps->relist_interval_ms > 0 ? deps->relist_interval_ms : 10000;
    pthread_cond_init(&c->relist_wake, NULL);
    c->require = deps->require && deps->require[0] ? lh_strdup(deps->require) : NULL;
    if (deps->mask_key) {
        memcpy(c->mask_key, deps->mask_key, sizeof c->mask_key);
        c->mask_key_set = true;
    }
    pthread_cond_init(&c->ckpt_wake, NULL);
    lh_catalog__guards_init(c);
    int64_t t0 = lh_mono_us(), checkpoint_ms = 0;
    json_t **journal_keys = NULL;
    load_buckets(c, &checkpoint_ms, &journal_keys);
    int64_t t_datasets = lh_mono_us();
    lh_catalog__journal_load(c, (const json_t *const *)journal_keys);
    free_keys(c, journal_keys);
    int64_t t_end = lh_mono_us();
    c->load_ms = (t_end - t0) / 1000;
    /* where a start goes: the datasets (listings, the checkpoint read beside them, then the
     * manifests it did not hold), the journal's batches; "checkpoint" is the read's own
     * time */
    json_t *fields = json_pack(
        "{s:I, s:I, s:i, s:I, s:I, s:{s:I, s:I, s:I}}", "datasets", (json_int_t)c->n, "load_ms",
        (json_int_t)c->load_ms, "load_errors", c->load_errors, "from_checkpoint",
        (json_int_t)c->ckpt_used, "manifests_read", (json_int_t)c->manifests_read, "ms",
        "checkpoint", (json_int_t)checkpoint_ms, "datasets", (json_int_t)((t_datasets - t0) / 1000),
        "journal", (json_int_t)((t_end - t_datasets) / 1000));
    lh_log(LH_LOG_INFO, NULL, fields, "catalog loaded");
    json_decref(fields);
    lh_catalog__checkpoint_start(c);
    lh_catalog__relist_start(c);
    /* a dataset whose bucket is unreachable is read from the rescue bucket, or fails
     * with 503 bucket_unreachable, in whatever statement names it */
    lh_engine_set_read_check(c->views, lh_catalog__read_check, c);
    (void)err;
    *out = c;
    return 0;
}

void
lh_catalog_close(lh_catalog *c)
{
    if (c == NULL)
        return;
    lh_engine_set_read_check(c->views, NULL, NULL);
    lh_catalog__relist_stop(c);
    lh_catalog__checkpoint_stop(c);
    lh_catalog__journal_free(c);
    for (size_t i = 0; i < c->n; i++)
        lh_catalog__dataset_free(c, c->items[i]);
    free(c->items);
    json_decref(c->valid_types);
    json_decref(c->by_name);
    free(c->work_dir);
    free(c->require);
    memset(c->mask_key, 0, sizeof c->mask_key);
    json_decref(c->unlisted);
    pthread_cond_destroy(&c->relist_wake);
    pthread_cond_destroy(&c->ckpt_wake);
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
    return json_pack("{s:s, s:O, s:I, s:s}", "status", status, "sla_s", sla ? sla : json_null(),
                     "age_s", (json_int_t)age_s, "last_ingested_at", ingested);
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
        json_t *summary =
            json_pack("{s:s, s:s, s:I, s:s, s:O, s:I, s:I, s:O, s:o}", "name", str_of(m, "name"),
                      "bucket", str_of(m, "bucket"), "version", (json_int_t)int_of(m, "version"),
                      "state", str_of(m, "state"), "row_count", json_object_get(m, "row_count"),
                      "bytes", (json_int_t)int_of(m, "bytes"), "columns",
                      (json_int_t)json_array_size(json_object_get(m, "columns")), "metadata",
                      json_object_get(m, "metadata"), "freshness", freshness(m));
        if (c->items[i]->warnings)
            json_object_set_new(summary, "warnings", json_deep_copy(c->items[i]->warnings));
        json_array_append_new(arr, summary);
    }
    pthread_mutex_unlock(&c->lock);
    return arr;
}

int
lh_catalog__not_found(lh_err *err, const char *name)
{
    lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found", "no dataset named '%s'", name);
    lh_err_hint(err, "GET /catalog/datasets lists the datasets");
    return LH_ENOTFOUND;
}

int
lh_catalog_get(lh_catalog *c, const char *name, json_t **out, lh_err *err)
{
    pthread_mutex_lock(&c->lock);
    dataset *ds = lh_catalog__find_locked(c, name);
    json_t *m = ds && ds->manifest ? json_deep_copy(ds->manifest) : NULL;
    if (m && ds->warnings)
        json_object_set_new(m, "warnings", json_deep_copy(ds->warnings));
    pthread_mutex_unlock(&c->lock);
    if (m == NULL)
        return lh_catalog__not_found(err, name);
    json_object_set_new(m, "freshness", freshness(m));
    *out = m;
    return 0;
}

int
lh_catalog_versions(lh_catalog *c, const char *name, int64_t from, int64_t limit, json_t **out,
                    lh_err *err)
{
    pthread_mutex_lock(&c->lock);
    dataset *ds = lh_catalog__find_locked(c, name);
    char bucket[80] = "";
    int64_t newest = 0;
    if (ds && ds->manifest) {
        snprintf(bucket, sizeof bucket, "%s", ds->bucket);
        newest = int_of(ds->manifest, "version");
        if (ds->newest_version > newest) /* unreadable newer ones are listed with their error */
            newest = ds->newest_version;
    }
    pthread_mutex_unlock(&c->lock);
    if (newest == 0)
        return lh_catalog__not_found(err, name);
    json_t *arr = json_array();
    if (from < 1)
        from = 1;
    for (int64_t v = from; v <= newest && v < from + limit; v++) {
        json_t *m = NULL;
        lh_err e;
        if (lh_catalog__load_manifest(c, bucket, name, v, &m, &e) != 0) {
            json_array_append_new(
                arr, json_pack("{s:I, s:s}", "version", (json_int_t)v, "error", e.message));
            continue;
        }
        json_array_append_new(
            arr,
            json_pack("{s:I, s:s, s:s, s:s, s:s, s:O, s:I, s:I}", "version", (json_int_t)v, "state",
                      str_of(m, "state"), "change", str_of(m, "change"), "created_at",
                      str_of(m, "created_at"), "created_by", str_of(m, "created_by"), "row_count",
                      json_object_get(m, "row_count"), "bytes", (json_int_t)int_of(m, "bytes"),
                      "files", (json_int_t)json_array_size(json_object_get(m, "files"))));
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
        live +=
            c->items[i]->manifest && strcmp(str_of(c->items[i]->manifest, "state"), "live") == 0;
    int64_t ckpt_seq = c->ckpt_seq;
    json_t *unlisted = json_deep_copy(c->unlisted);
    pthread_mutex_unlock(&c->lock);
    json_t *stats =
        json_pack("{s:I, s:I, s:i, s:I, s:I}", "datasets", (json_int_t)live, "load_ms",
                  (json_int_t)c->load_ms, "load_errors", c->load_errors, "from_checkpoint",
                  (json_int_t)c->ckpt_used, "manifests_read", (json_int_t)c->manifests_read);
    json_object_set_new(stats, "buckets_unlisted", unlisted);
    if (c->checkpoint_on) {
        json_object_set_new(stats, "checkpoint", ckpt_seq ? json_integer(ckpt_seq) : json_null());
        if (c->ckpt_ignored[0])
            json_object_set_new(stats, "checkpoint_ignored", json_string(c->ckpt_ignored));
    }
    return stats;
}

const char *
lh_catalog_work_dir(lh_catalog *c)
{
    return c->work_dir;
}
