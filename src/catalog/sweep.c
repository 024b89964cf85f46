/*
 * sweep.c — POST /maintenance/sweep: snapshot retention (expired versions) and the removal
 * of data files no retained version references. Runs under each dataset's writer slot, so
 * no local commit interleaves; files younger than the grace period are never touched, so
 * another server's commit in flight is safe too. Every listing, put and delete goes through
 * the bucket layer, so a failure is also in the error journal (/storage/errors).
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
lh_catalog__each_object(lh_catalog *c, const char *bucket, const char *prefix, lh_store_each_fn fn,
                        void *ctx, lh_err *err)
{
    char *cursor = NULL;
    int rc = 0;
    for (;;) {
        lh_list_page page;
        rc = lh_buckets_list_objects(c->buckets, bucket, prefix, cursor, 1000, &page, NULL, err);
        free(cursor);
        cursor = NULL;
        if (rc != 0)
            break;
        for (size_t i = 0; i < page.n && rc == 0; i++)
            rc = fn(ctx, &page.entries[i]);
        if (rc == 0 && page.next_cursor)
            cursor = lh_strdup(page.next_cursor);
        lh_list_page_free(&page);
        if (rc != 0 || cursor == NULL)
            break;
    }
    return rc;
}

/* Every data file any version of `name` references (a set as a JSON object). */
static int
referenced_files(lh_catalog *c, const char *bucket, const char *name, int64_t newest, json_t *set,
                 lh_err *err)
{
    for (int64_t v = 1; v <= newest; v++) {
        json_t *m = NULL;
        int rc = lh_catalog__load_manifest(c, bucket, name, v, &m, err);
        if (rc == LH_ENOTFOUND)
            continue; /* an expired version: its files are no longer owed to anyone */
        if (rc != 0)
            return rc; /* unsure what is referenced: sweep nothing */
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(m, "files"), i, f)
            json_object_set_new(set, str_of(f, "path"), json_true());
        json_decref(m);
    }
    return 0;
}

/* Snapshot retention: remove the manifests of versions created before cutoff (never the
 * newest), oldest first. A version's events batch is confirmed by a marker first, so the
 * journal keeps serving it once the manifest that named it is gone (history is never
 * deleted). Their files then belong to no version and go in the same sweep. */
static void
expire_versions(lh_catalog *c, const char *bucket, const char *name, int64_t newest,
                const char *cutoff, bool dry_run, json_t *report)
{
    for (int64_t v = 1; v < newest; v++) {
        json_t *m = NULL;
        lh_err err;
        int rc = lh_catalog__load_manifest(c, bucket, name, v, &m, &err);
        if (rc == LH_ENOTFOUND)
            continue; /* expired before */
        if (rc != 0 || strcmp(str_of(m, "created_at"), cutoff) >= 0) {
            if (rc != 0)
                json_array_append_new(json_object_get(report, "errors"),
                                      json_pack("{s:s, s:s, s:s}", "bucket", bucket, "dataset",
                                                name, "error", err.message));
            json_decref(m);
            return; /* versions are in time order: the rest are retained */
        }
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(m, "files"), i, f)
        {
            if (rc != 0 || dry_run || strcmp(str_of(f, "kind"), "events") != 0)
                continue;
            const char *path = str_of(f, "path");
            char *marker =
                lh_sprintf("%s%s", LH_JOURNAL_CONFIRMED, path + strlen(LH_LAYOUT_JOURNAL));
            lh_source empty = {.data = "", .fd = -1, .len = 0};
            rc = lh_buckets_put_object(c->buckets, bucket, marker, &empty, LH_PUT_CREATE_ONLY, NULL,
                                       NULL, &err);
            if (rc == LH_EEXIST)
                rc = 0;
            free(marker);
        }
        char *key = lh_layout_manifest_key(name, v);
        if (rc == 0 && !dry_run)
            rc = lh_buckets_delete_object(c->buckets, bucket, key, NULL, &err);
        free(key);
        json_decref(m);
        if (rc != 0) {
            json_array_append_new(json_object_get(report, "errors"),
                                  json_pack("{s:s, s:s, s:s}", "bucket", bucket, "dataset", name,
                                            "error", err.message));
            return;
        }
        json_array_append_new(json_object_get(report, "expired"),
                              json_pack("{s:s, s:s, s:I}", "bucket", bucket, "dataset", name,
                                        "version", (json_int_t)v));
    }
}

typedef struct sweep_walk {
    lh_buckets *buckets;
    const char *bucket;
    const json_t *refs; /* keys some retained version lists */
    int64_t older_than_us;
    bool dry_run;
    json_t *report;
} sweep_walk;

/* lh_catalog__each_object over a dataset's data folder: remove what no version references. */
static int
sweep_file(void *ctx, const lh_list_entry *e)
{
    sweep_walk *w = ctx;
    lh_err err;
    if (json_object_get(w->refs, e->key))
        return 0;
    if (e->mtime_us > w->older_than_us) {
        /* maybe an ingest in flight on another server: not yet */
        json_t *young = json_object_get(w->report, "kept_young");
        json_integer_set(young, json_integer_value(young) + 1);
        return 0;
    }
    if (!w->dry_run && lh_buckets_delete_object(w->buckets, w->bucket, e->key, NULL, &err) != 0) {
        json_array_append_new(
            json_object_get(w->report, "errors"),
            json_pack("{s:s, s:s, s:s}", "bucket", w->bucket, "key", e->key, "error", err.message));
        return 0;
    }
    json_array_append_new(json_object_get(w->report, "removed"),
                          json_pack("{s:s, s:s, s:I}", "bucket", w->bucket, "key", e->key, "bytes",
                                    (json_int_t)e->size));
    return 0;
}

/* Sweep one dataset folder of one bucket. newest = 0: no manifest at all. */
static void
sweep_dataset(lh_catalog *c, const char *bucket, const char *name, int64_t newest,
              int64_t older_than_us, bool dry_run, json_t *report)
{
    lh_err err;
    if (c->retain_versions_s > 0 && newest > 1) {
        char cutoff[LH_TIME_MAX];
        lh_time_format(lh_now_us() - c->retain_versions_s * 1000000, cutoff);
        expire_versions(c, bucket, name, newest, cutoff, dry_run, report);
    }
    json_t *refs = json_object();
    if (newest > 0 && referenced_files(c, bucket, name, newest, refs, &err) != 0) {
        json_array_append_new(
            json_object_get(report, "errors"),
            json_pack("{s:s, s:s, s:s}", "bucket", bucket, "dataset", name, "error", err.message));
        json_decref(refs);
        return;
    }
    char *prefix = lh_layout_data_prefix(name);
    sweep_walk w = {c->buckets, bucket, refs, older_than_us, dry_run, report};
    if (lh_catalog__each_object(c, bucket, prefix, sweep_file, &w, &err) != 0)
        json_array_append_new(
            json_object_get(report, "errors"),
            json_pack("{s:s, s:s, s:s}", "bucket", bucket, "dataset", name, "error", err.message));
    free(prefix);
    json_decref(refs);
}

/* lh_catalog__each_object over datasets/: every dataset name (names: name -> newest version, 0
 * when only data files are left). */
static int
note_dataset(void *ctx, const lh_list_entry *e)
{
    json_t *names = ctx;
    const char *k = e->key + strlen(LH_LAYOUT_DATASETS);
    const char *slash = strchr(k, '/');
    if (slash == NULL || (size_t)(slash - k) >= 64)
        return 0;
    char name[LH_NAME_MAX];
    memcpy(name, k, (size_t)(slash - k));
    name[slash - k] = '\0';
    if (!lh_name_valid(name))
        return 0;
    int64_t v = 0;
    char mname[LH_NAME_MAX];
    if (lh_layout_parse_manifest_key(e->key, mname, sizeof mname, &v) != 0)
        v = 0; /* a data file: the name is known, its version is not */
    int64_t seen = json_integer_value(json_object_get(names, name));
    if (json_object_get(names, name) == NULL || v > seen)
        json_object_set_new(names, name, json_integer(v > seen ? v : seen));
    return 0;
}

json_t *
lh_catalog_sweep(lh_catalog *c, int64_t grace_s, bool dry_run)
{
    json_t *report = json_pack("{s:b, s:I, s:[], s:i, s:[], s:[], s:I}", "dry_run", dry_run,
                               "grace_s", (json_int_t)grace_s, "removed", "kept_young", 0, "errors",
                               "expired", "retain_versions_s", (json_int_t)c->retain_versions_s);
    int64_t older_than = lh_now_us() - grace_s * 1000000;
    size_t n = lh_buckets_count(c->buckets);
    for (size_t b = 0; b < n; b++) {
        const char *bucket = lh_buckets_name_at(c->buckets, b);
        if (strncmp(bucket, "profile:", 8) == 0)
            continue;
        /* every dataset name with files in this bucket, and its newest manifest version */
        json_t *names = json_object();
        lh_err err;
        if (lh_catalog__each_object(c, bucket, LH_LAYOUT_DATASETS, note_dataset, names, &err) != 0)
            json_array_append_new(json_object_get(report, "errors"),
                                  json_pack("{s:s, s:s}", "bucket", bucket, "error", err.message));
        const char *name;
        json_t *v;
        json_object_foreach(names, name, v)
        {
            /* hold the dataset's writer slot so no local commit interleaves */
            lh_txn *t = NULL;
            if (lh_catalog_begin(c, name, false, &t, &err) != 0) {
                json_array_append_new(json_object_get(report, "errors"),
                                      json_pack("{s:s, s:s, s:s}", "bucket", bucket, "dataset",
                                                name, "error", err.message));
                continue;
            }
            sweep_dataset(c, bucket, name, json_integer_value(v), older_than, dry_run, report);
            lh_catalog_abort(t);
        }
        json_decref(names);
    }
    int64_t bytes = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(report, "removed"), i, r) bytes +=
        json_integer_value(json_object_get(r, "bytes"));
    json_object_set_new(report, "removed_bytes", json_integer(bytes));
    return report;
}
