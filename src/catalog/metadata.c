/*
 * metadata.c — dataset metadata given by clients (checked here, once, for every door), and
 * the metadata-only changes: patch and delete.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const SENSITIVITIES[] = {"public", "internal", "confidential", "pii", NULL};

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

static int
check_tags(const json_t *v, lh_err *err)
{
    if (!json_is_array(v) || json_array_size(v) > 64)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                          "'tags' must be an array of at most 64 strings");
    size_t i;
    json_t *tag;
    json_array_foreach(v, i, tag)
    {
        if (!json_is_string(tag) || json_string_length(tag) == 0 || json_string_length(tag) > 64)
            return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                              "tag #%zu must be a string of 1 to 64 characters", i + 1);
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
            rc = check_tags(v, err);
        } else if (strcmp(key, "columns") == 0) {
            rc = lh_catalog__check_columns_meta(v, err);
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
                             "freshness_sla_s, primary_key, source_system, columns");
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

int
lh_catalog_patch(lh_catalog *c, const char *name, const json_t *patch, const char *actor,
                 json_t **committed, lh_err *err)
{
    json_t *clean = NULL;
    lh_txn *t = NULL;
    int rc = lh_catalog_check_metadata(patch, &clean, err);
    if (rc != 0)
        goto out;
    if (json_object_size(clean) == 0) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_metadata", "nothing to change");
        goto out;
    }
    if (json_object_get(clean, "source_system")) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                        "'source_system' is lineage: it is set by ingest, not patched");
        goto out;
    }
    if ((rc = lh_catalog__begin_live(c, name, &t, err)) != 0)
        goto out;
    json_t *m = lh_catalog__next_of(lh_txn_current(t), "patch", actor);
    json_t *columns = json_incref(json_object_get(clean, "columns"));
    json_object_del(clean, "columns");
    json_object_update(json_object_get(m, "metadata"), clean);
    if (columns && (rc = lh_catalog__merge_columns_meta(
                        lh_txn_current(t), columns, json_object_get(m, "metadata"), err)) != 0) {
        json_decref(columns);
        json_decref(m);
        goto out;
    }
    json_decref(columns);
    rc = lh_catalog_commit(t, NULL, m, committed, err);
    t = NULL;
out:
    lh_catalog_abort(t);
    json_decref(clean);
    return rc;
}

/* A delete is journaled (ADR-012) as one dataset-level event, in an events batch the
 * tombstone version lists: stored first, then the version (create-only), as a change of
 * rows is. The batch of a delete that did not commit is deleted again, or, when the
 * commit's answer is uncertain, left unreferenced (the journal never counts it). */
int
lh_catalog_delete(lh_catalog *c, const char *name, const char *actor, json_t **committed,
                  lh_err *err)
{
    lh_txn *t = NULL;
    json_t *m = NULL, *before = NULL;
    char *path = NULL, *key = NULL, bucket[80] = "";
    int64_t bytes = 0;
    int rc = lh_catalog__begin_live(c, name, &t, err);
    if (rc != 0)
        goto out;
    const json_t *cur = lh_txn_current(t);
    snprintf(bucket, sizeof bucket, "%s", str_of(cur, "bucket"));
    m = lh_catalog__next_of(cur, "delete", actor);
    json_object_set_new(m, "state", json_string("deleted"));
    int64_t version = json_integer_value(json_object_get(cur, "version")) + 1;
    char tag[40], hex[9];
    lh_random_hex(hex, 4);
    snprintf(tag, sizeof tag, "%020lld-%s", (long long)lh_now_us(), hex);
    before = json_pack("{s:O}", "row_count", json_object_get(cur, "row_count"));
    lh_dataset_event e = {
        .dataset = name, .op = "delete", .actor = actor, .before = before, .version = version};
    path = lh_sprintf("%s/delete-%s-events.parquet", c->work_dir, tag);
    key = lh_layout_events_key(tag, name, version);
    if ((rc = lh_catalog_write_dataset_event(c, &e, path, err)) != 0 ||
        (rc = lh_buckets_put_file(c->buckets, bucket, key, path, true, LH_PUT_CREATE_ONLY, &bytes,
                                  NULL, err)) != 0)
        goto out;
    json_array_append_new(json_object_get(m, "files"),
                          json_pack("{s:s, s:I, s:i, s:s}", "path", key, "bytes", (json_int_t)bytes,
                                    "rows", 1, "kind", "events"));
    rc = lh_catalog_commit(t, NULL, m, committed, err);
    t = NULL; /* the commit ends the transaction and takes m, either way */
    m = NULL;
    if (rc != 0 && rc != LH_EEXIST && rc != LH_EUNAVAIL && rc != LH_EIO) {
        lh_err ignored;
        lh_buckets_delete_object(c->buckets, bucket, key, NULL, &ignored);
    }
out:
    lh_catalog_abort(t);
    if (path)
        unlink(path);
    free(path);
    free(key);
    json_decref(before);
    json_decref(m);
    return rc;
}
