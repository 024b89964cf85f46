/*
 * ingest_common.c — the commit path every ingest shares (see ingest_int.h): the
 * dataset's writer slot, the data files, the schema check, metadata and lineage, and
 * the manifest commit with its clean-up on failure.
 */
#include "ingest/ingest_int.h"

#include <fcntl.h>
#include <stdio.h>
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

int
lh_ingest_bad_rows_parse(const char *s)
{
    if (strcmp(s, "error") == 0)
        return LH_BAD_ROWS_ERROR;
    if (strcmp(s, "skip") == 0)
        return LH_BAD_ROWS_SKIP;
    if (strcmp(s, "null_pad") == 0)
        return LH_BAD_ROWS_NULL_PAD;
    return -1;
}

const char *
lh_ingest__mode_name(lh_ingest_mode m)
{
    return m == LH_INGEST_CREATE    ? "create"
           : m == LH_INGEST_APPEND  ? "append"
           : m == LH_INGEST__CHANGE ? "rows"
                                    : "replace";
}

int
lh_ingest__begin(lh_catalog *cat, lh_buckets *buckets, const char *dataset, const char *bucket,
                 lh_ingest_mode mode, bool wait, bool (*allow_bucket)(void *, const char *),
                 void *allow_ctx, lh_ingest__target *t, lh_err *err)
{
    memset(t, 0, sizeof *t);
    t->cat = cat;
    t->buckets = buckets;
    t->dataset = dataset;
    t->mode = mode;
    t->new_files = json_array();
    t->row_count = -1;
    char hex[9];
    lh_random_hex(hex, 4);
    snprintf(t->tag, sizeof t->tag, "%020lld-%s", (long long)lh_now_us(), hex);

    int rc = lh_catalog_begin(cat, dataset, wait, &t->txn, err);
    if (rc != 0)
        return rc;
    t->cur = lh_txn_live(t->txn) ? lh_txn_current(t->txn) : NULL;
    if (mode == LH_INGEST_CREATE && t->cur) {
        rc = lh_err_set(err, LH_EEXIST, 409, "dataset_exists", "dataset '%s' exists already",
                        dataset);
        lh_err_hint(err, "use mode=append or mode=replace");
        return rc;
    }
    if (mode != LH_INGEST_CREATE && !t->cur) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found", "no dataset named '%s'",
                        dataset);
        lh_err_hint(err, "use mode=create for a new dataset");
        return rc;
    }
    /* an existing dataset (live or deleted: its versions stay where they are) keeps its
     * bucket; a new one goes where asked */
    const json_t *any = lh_txn_current(t->txn);
    snprintf(t->bucket, sizeof t->bucket, "%s",
             any ? json_string_value(json_object_get(any, "bucket"))
                 : (bucket ? bucket : lh_buckets_primary_name(buckets)));
    if (any && allow_bucket && !allow_bucket(allow_ctx, t->bucket)) {
        /* a dataset the caller may not see (another tenant's): absent to it, and its
         * bucket is never named; only its name is taken, as names are global */
        if (mode == LH_INGEST_CREATE) {
            rc = lh_err_set(err, LH_EEXIST, 409, "dataset_exists", "dataset '%s' exists already",
                            dataset);
            lh_err_hint(err, "choose another name");
            return rc;
        }
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found", "no dataset named '%s'",
                        dataset);
        lh_err_hint(err, "use mode=create for a new dataset");
        return rc;
    }
    if (any && bucket && strcmp(bucket, t->bucket) != 0) {
        rc = lh_err_set(err, LH_EEXIST, 409, "dataset_elsewhere",
                        "dataset '%s' lives in bucket '%s', not '%s'", dataset, t->bucket, bucket);
        lh_err_hint(err, "a dataset's versions stay in one bucket; choose another name");
        return rc;
    }
    if (mode == LH_INGEST_APPEND && t->cur && lh_ingest_delta_count(t->cur) > 0) {
        /* appended rows would meet keys the deltas already changed: merge first */
        rc = lh_err_set(err, LH_EEXIST, 409, "compaction_needed",
                        "dataset '%s' has row changes not yet compacted", dataset);
        lh_err_hint(err, "POST /datasets/%s/compact, then append", dataset);
        return rc;
    }
    if (strncmp(t->bucket, "profile:", 8) == 0)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "datasets cannot live in profile buckets");
    if (allow_bucket && !allow_bucket(allow_ctx, t->bucket))
        return lh_err_set(err, LH_EPERM, 403, "forbidden", "you may not use bucket '%s'",
                          t->bucket);
    if (lh_buckets_get(buckets, t->bucket, err) == NULL)
        return LH_ENOTFOUND;
    return 0;
}

int
lh_ingest__store(lh_ingest__target *t, const char *local_path, int64_t rows, lh_err *err)
{
    return lh_ingest__store_as(t, local_path, NULL, "base", rows, err);
}

/* Column governance: the first base file of a write that brings data (not compaction,
 * whose rows are the dataset's already, nor a change of rows) is sampled for likely
 * personal data. A failure costs the suggestion only, never the ingest. */
static void
suggest(lh_ingest__target *t, const char *local_path)
{
    t->sampled = true;
    json_t *columns = t->file_columns ? json_incref((json_t *)t->file_columns) : NULL;
    lh_err err;
    if ((columns == NULL && lh_catalog_schema_of(t->cat, local_path, &columns, &err) != 0) ||
        lh_catalog_suggest_sensitivity(t->cat, local_path, columns, &t->suggestions, &err) != 0) {
        json_t *fields = json_pack("{s:s, s:s}", "dataset", t->dataset, "error", err.message);
        lh_log(LH_LOG_WARN, NULL, fields, "ingest: could not sample columns for personal data");
        json_decref(fields);
    }
    json_decref(columns);
}

int
lh_ingest__store_as(lh_ingest__target *t, const char *local_path, const char *key_in,
                    const char *kind, int64_t rows, lh_err *err)
{
    if (!t->sampled && t->eng && t->mode != LH_INGEST__CHANGE && strcmp(kind, "base") == 0)
        suggest(t, local_path);
    char *key = key_in ? lh_strdup(key_in)
                       : lh_layout_data_key(t->dataset, t->tag, json_array_size(t->new_files));
    int64_t bytes = 0;
    int rc = lh_buckets_put_file(t->buckets, t->bucket, key, local_path, true, LH_PUT_CREATE_ONLY,
                                 &bytes, NULL, err);
    if (rc == 0)
        json_array_append_new(t->new_files,
                              json_pack("{s:s, s:I, s:I, s:s}", "path", key, "bytes",
                                        (json_int_t)bytes, "rows", (json_int_t)rows, "kind", kind));
    free(key);
    return rc;
}

int
lh_ingest__check_schema(const json_t *have, const json_t *got, const char *what, lh_err *err)
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
                            "%s has no column '%s' (column %zu of the dataset)", what, hn, i + 1);
        else if (!h)
            rc = lh_err_set(err, LH_EINVAL, 400, "schema_mismatch",
                            "%s has an extra column '%s' (column %zu)", what, gn, i + 1);
        else if (strcmp(hn, gn) != 0)
            rc =
                lh_err_set(err, LH_EINVAL, 400, "schema_mismatch",
                           "column %zu is '%s' in the dataset but '%s' in %s", i + 1, hn, gn, what);
        else if (strcmp(ht, gt) != 0)
            rc = lh_err_set(err, LH_EINVAL, 400, "schema_mismatch",
                            "column '%s' is %s in the dataset but %s in %s", hn, ht, gt, what);
        if (rc != 0) {
            lh_err_hint(err, "append needs the same columns in the same order with the same "
                             "types; use mode=replace to change the schema");
            return rc;
        }
    }
    return 0;
}

static json_t *
build_metadata(const json_t *client_meta, const char *actor, const json_t *current, json_t *lineage)
{
    json_t *meta = current ? json_deep_copy(json_object_get(current, "metadata")) : json_object();
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    if (!current) { /* defaults, ADR-013: auto-detected where possible */
        json_object_set_new(meta, "owner", json_string(actor ? actor : ""));
        json_object_set_new(meta, "sensitivity", json_string("internal"));
        json_object_set_new(meta, "description", json_string(""));
        json_object_set_new(meta, "tags", json_array());
        json_object_set_new(meta, "freshness_sla_s", json_null());
    }
    const json_t *ss = client_meta ? json_object_get(client_meta, "source_system") : NULL;
    if (json_is_string(ss) && lineage)
        json_object_set(lineage, "source_system", (json_t *)ss);
    if (client_meta) {
        json_t *copy = json_deep_copy(client_meta);
        json_object_del(copy, "source_system"); /* lineage, above */
        json_object_update(meta, copy);
        json_decref(copy);
    }
    if (lineage == NULL) /* a change of rows: the data's origin stays what it was */
        return meta;
    char when[LH_TIME_MAX];
    lh_time_format(lh_now_us(), when);
    json_object_set_new(lineage, "ingested_at", json_string(when));
    json_object_set_new(lineage, "ingested_by", json_string(actor ? actor : ""));
    json_object_set_new(meta, "lineage", lineage);
    return meta;
}

int
lh_ingest__commit(lh_ingest__target *t, const json_t *columns, const json_t *client_meta,
                  json_t *lineage, const char *actor, json_t **committed, lh_err *err)
{
    json_t *m = json_object();
    bool keep = t->mode == LH_INGEST_APPEND || t->mode == LH_INGEST__CHANGE;
    json_object_set_new(m, "files",
                        keep ? json_deep_copy(json_object_get(t->cur, "files")) : json_array());
    lh_catalog_drop_events(m);
    json_t *files = json_incref(json_object_get(m, "files"));
    json_decref(m);
    json_array_extend(files, t->new_files);
    int64_t total_rows = 0, total_bytes = 0, new_rows = 0;
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        if (!lh_catalog_file_has_rows(f)) /* an events batch holds no rows of the dataset */
            continue;
        total_rows += json_integer_value(json_object_get(f, "rows"));
        total_bytes += json_integer_value(json_object_get(f, "bytes"));
    }
    json_array_foreach(t->new_files, i, f) if (lh_catalog_file_has_rows(f)) new_rows +=
        json_integer_value(json_object_get(f, "rows"));
    if (t->row_count >= 0)
        total_rows = t->row_count;
    if (t->mode != LH_INGEST__CHANGE && !t->no_journal) {
        int rc =
            lh_ingest__journal(t, columns, client_meta, lineage, actor, new_rows, total_rows, err);
        if (rc != 0) {
            json_decref(files);
            json_decref(lineage);
            return rc;
        }
        /* the batch just stored is the last of the write's files */
        json_array_append(files, json_array_get(t->new_files, json_array_size(t->new_files) - 1));
    }
    json_t *meta =
        build_metadata(client_meta, actor, t->mode == LH_INGEST_CREATE ? NULL : t->cur, lineage);
    lh_catalog_apply_suggestions(meta, t->suggestions);
    m = json_pack("{s:s, s:s, s:s, s:I, s:I, s:O, s:o, s:o}", "state", "live", "change",
                  t->change ? t->change : lh_ingest__mode_name(t->mode), "created_by",
                  actor ? actor : "", "row_count", (json_int_t)total_rows, "bytes",
                  (json_int_t)total_bytes, "columns", columns, "files", files, "metadata", meta);
    int rc = lh_catalog_commit(t->txn, t->bucket, m, committed, err);
    t->txn = NULL; /* commit ends the transaction either way */
    t->cur = NULL;
    /* committed, or the manifest may exist after all (a lost answer): leave the data
     * files to the sweep rather than delete what a manifest may point at */
    if (rc == 0 || rc == LH_EEXIST || rc == LH_EUNAVAIL || rc == LH_EIO)
        t->keep_files = true;
    return rc;
}

void
lh_ingest__end(lh_ingest__target *t)
{
    if (t->new_files && !t->keep_files) {
        size_t i;
        json_t *f;
        json_array_foreach(t->new_files, i, f)
        {
            lh_err ignored;
            lh_buckets_delete_object(t->buckets, t->bucket,
                                     json_string_value(json_object_get(f, "path")), NULL, &ignored);
        }
    }
    lh_catalog_abort(t->txn);
    t->txn = NULL;
    json_decref(t->new_files);
    t->new_files = NULL;
    json_decref(t->journal);
    t->journal = NULL;
    json_decref(t->suggestions);
    t->suggestions = NULL;
}
