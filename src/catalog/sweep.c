/*
 * sweep.c — POST /maintenance/sweep: snapshot retention (expired versions) and the removal
 * of data files no retained version references. Runs under each dataset's writer slot, so
 * no local commit interleaves; files younger than the grace period are never touched, so
 * another server's commit in flight is safe too. Every listing, put and delete goes through
 * the bucket layer, so a failure is also in the error journal (/storage/errors). Each
 * bucket's own temporary files older than the grace period (fs: .lh-tmp/, left by puts a
 * crash cut short) go too.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* One error of the sweep in its report: {"bucket", "dataset" (when there is one), "error"}. */
static void
report_error(json_t *report, const char *bucket, const char *name, const lh_err *err)
{
    json_t *e = json_pack("{s:s, s:s}", "bucket", bucket, "error", err->message);
    if (name)
        json_object_set_new(e, "dataset", json_string(name));
    json_array_append_new(json_object_get(report, "errors"), e);
}

/* Confirm the events batches manifest m lists (a marker each, create-only), so the journal
 * keeps serving them once m is gone. */
static int
confirm_events(lh_catalog *c, const char *bucket, const json_t *m, lh_err *err)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        if (strcmp(str_of(f, "kind"), "events") != 0)
            continue;
        const char *path = str_of(f, "path");
        char *marker = lh_sprintf("%s%s", LH_JOURNAL_CONFIRMED, path + strlen(LH_LAYOUT_JOURNAL));
        lh_source empty = {.data = "", .fd = -1, .len = 0};
        int rc = lh_buckets_put_object(c->buckets, bucket, marker, &empty, LH_PUT_CREATE_ONLY, NULL,
                                       NULL, err);
        free(marker);
        if (rc != 0 && rc != LH_EEXIST)
            return rc;
    }
    return 0;
}

/* Expire version v when it was created before cutoff: its events confirmed, then its
 * manifest deleted. *expired says whether it was (or, with dry_run, would be); a version
 * created at or after cutoff is kept (0, *expired false). */
static int
expire_version(lh_catalog *c, const char *bucket, const char *name, int64_t v, const char *cutoff,
               bool dry_run, bool *expired, lh_err *err)
{
    json_t *m = NULL;
    char *key = NULL;
    *expired = false;
    int rc = lh_catalog__load_manifest(c, bucket, name, v, &m, err);
    if (rc != 0 || strcmp(str_of(m, "created_at"), cutoff) >= 0)
        goto out;
    if (!dry_run) {
        if ((rc = confirm_events(c, bucket, m, err)) != 0)
            goto out;
        key = lh_layout_manifest_key(name, v);
        if ((rc = lh_buckets_delete_object(c->buckets, bucket, key, NULL, err)) != 0)
            goto out;
    }
    *expired = true;
out:
    free(key);
    json_decref(m);
    return rc;
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
        lh_err err;
        bool expired = false;
        int rc = expire_version(c, bucket, name, v, cutoff, dry_run, &expired, &err);
        if (rc == LH_ENOTFOUND)
            continue; /* expired before */
        if (rc != 0)
            report_error(report, bucket, name, &err);
        if (rc != 0 || !expired)
            return; /* versions are in time order: the rest are retained */
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

/* lh_buckets_each over a dataset's data folder: remove what no version references. */
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
    json_t *refs = json_object();
    char *prefix = NULL;
    if (c->retain_versions_s > 0 && newest > 1) {
        char cutoff[LH_TIME_MAX];
        lh_time_format(lh_now_us() - c->retain_versions_s * 1000000, cutoff);
        expire_versions(c, bucket, name, newest, cutoff, dry_run, report);
    }
    if (newest > 0 && referenced_files(c, bucket, name, newest, refs, &err) != 0)
        goto failed;
    prefix = lh_layout_data_prefix(name);
    sweep_walk w = {c->buckets, bucket, refs, older_than_us, dry_run, report};
    if (lh_buckets_each(c->buckets, bucket, prefix, sweep_file, &w, NULL, &err) != 0)
        goto failed;
    goto out;
failed:
    report_error(report, bucket, name, &err);
out:
    free(prefix);
    json_decref(refs);
}

/* The store's own temporary files left by puts a crash cut short (fs: .lh-tmp/). */
static void
sweep_temp(lh_catalog *c, const char *bucket, int64_t older_than_us, bool dry_run, json_t *report)
{
    int64_t files = 0, bytes = 0;
    lh_err err;
    if (lh_buckets_sweep_temp(c->buckets, bucket, older_than_us, dry_run, &files, &bytes, &err) !=
        0) {
        report_error(report, bucket, NULL, &err);
        return;
    }
    json_t *n = json_object_get(report, "temp_files_removed");
    json_t *b = json_object_get(report, "temp_bytes_removed");
    json_integer_set(n, json_integer_value(n) + files);
    json_integer_set(b, json_integer_value(b) + bytes);
}

/* lh_buckets_each over datasets/: every dataset name (names: name -> newest version, 0
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

/* Sweep every dataset of one bucket, each under its writer slot. */
static void
sweep_bucket(lh_catalog *c, const char *bucket, int64_t older_than_us, bool dry_run, json_t *report)
{
    /* every dataset name with files in this bucket, and its newest manifest version */
    json_t *names = json_object();
    lh_err err;
    if (lh_buckets_each(c->buckets, bucket, LH_LAYOUT_DATASETS, note_dataset, names, NULL, &err) !=
        0)
        report_error(report, bucket, NULL, &err);
    const char *name;
    json_t *v;
    json_object_foreach(names, name, v)
    {
        /* hold the dataset's writer slot so no local commit interleaves */
        lh_txn *t = NULL;
        if (lh_catalog_begin(c, name, false, &t, &err) != 0) {
            report_error(report, bucket, name, &err);
            continue;
        }
        sweep_dataset(c, bucket, name, json_integer_value(v), older_than_us, dry_run, report);
        lh_catalog_abort(t);
    }
    json_decref(names);
}

json_t *
lh_catalog_sweep(lh_catalog *c, int64_t grace_s, bool dry_run)
{
    json_t *report = json_pack(
        "{s:b, s:I, s:[], s:i, s:[], s:[], s:I, s:i, s:i}", "dry_run", dry_run, "grace_s",
        (json_int_t)grace_s, "removed", "kept_young", 0, "errors", "expired", "retain_versions_s",
        (json_int_t)c->retain_versions_s, "temp_files_removed", 0, "temp_bytes_removed", 0);
    int64_t older_than = lh_now_us() - grace_s * 1000000;
    size_t n = lh_buckets_count(c->buckets);
    for (size_t b = 0; b < n; b++) {
        const char *bucket = lh_buckets_name_at(c->buckets, b);
        if (strncmp(bucket, "profile:", 8) == 0)
            continue; /* views of their base bucket, which is swept itself */
        sweep_bucket(c, bucket, older_than, dry_run, report);
        sweep_temp(c, bucket, older_than, dry_run, report);
    }
    int64_t bytes = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(report, "removed"), i, r) bytes +=
        json_integer_value(json_object_get(r, "bytes"));
    json_object_set_new(report, "removed_bytes", json_integer(bytes));
    return report;
}
