/*
 * h_catalog.c — /catalog (datasets, versions, metadata, tombstones, resync) and
 * /ingest/file. Datasets in buckets a principal may not use are invisible to it.
 */
#include "http/http_int.h"
#include "ingest/ingest.h"

#include <microhttpd.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool
bucket_ok(lh_req *req, const char *bucket)
{
    lh_err ignored;
    return lh_http__auth_bucket(req->principal, bucket, &ignored) == 0;
}

/* Fetch a dataset the principal may see, or answer 404 like a missing one. */
static json_t *
visible_dataset(lh_req *req, lh_resp *resp, const char *name)
{
    lh_err err;
    json_t *m = NULL;
    if (lh_catalog_get(req->srv->catalog, name, &m, &err) != 0) {
        lh_resp_error(resp, &err);
        return NULL;
    }
    if (!bucket_ok(req, json_string_value(json_object_get(m, "bucket")))) {
        json_decref(m);
        lh_err_set(&err, LH_ENOTFOUND, 404, "dataset_not_found", "no dataset named '%s'", name);
        lh_resp_error(resp, &err);
        return NULL;
    }
    return m;
}

int
lh_h_datasets_list(lh_req *req, lh_resp *resp)
{
    lh_catalog_filter f = {
        .tag = lh_req_query(req, "tag"),
        .owner = lh_req_query(req, "owner"),
        .sensitivity = lh_req_query(req, "sensitivity"),
        .text = lh_req_query(req, "q"),
    };
    const char *deleted = lh_req_query(req, "include_deleted");
    f.include_deleted = deleted && strcmp(deleted, "true") == 0;
    json_t *all = lh_catalog_list(req->srv->catalog, &f);
    json_t *mine = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d)
    {
        if (bucket_ok(req, json_string_value(json_object_get(d, "bucket"))))
            json_array_append(mine, d);
    }
    json_decref(all);
    return lh_resp_json(resp, 200, json_pack("{s:o}", "datasets", mine));
}

int
lh_h_dataset_get(lh_req *req, lh_resp *resp)
{
    json_t *m = visible_dataset(req, resp, lh_req_param(req, "name"));
    return m ? lh_resp_json(resp, 200, m) : 0;
}

int
lh_h_dataset_versions(lh_req *req, lh_resp *resp)
{
    lh_err err;
    const char *name = lh_req_param(req, "name");
    json_t *m = visible_dataset(req, resp, name);
    if (m == NULL)
        return 0;
    int64_t m_version = json_integer_value(json_object_get(m, "version"));
    json_decref(m);
    int64_t range[2]; /* from, limit */
    if (lh_req_query_int(req, "from", 1, 1, INT64_MAX, &range[0], &err) != 0 ||
        lh_req_query_int(req, "limit", 100, 1, 1000, &range[1], &err) != 0)
        return lh_resp_error(resp, &err);
    json_t *versions = NULL;
    if (lh_catalog_versions(req->srv->catalog, name, range[0], range[1], &versions, &err) != 0)
        return lh_resp_error(resp, &err);
    size_t got = json_array_size(versions);
    json_t *last = json_array_get(versions, got ? got - 1 : 0);
    int64_t next = got == (size_t)range[1] ? json_integer_value(json_object_get(last, "version")) + 1 : 0;
    json_t *body = json_pack("{s:s, s:o}", "dataset", name, "versions", versions);
    json_object_set_new(body, "next_from", next && next <= m_version ? json_integer(next) : json_null());
    return lh_resp_json(resp, 200, body);
}

int
lh_h_dataset_patch(lh_req *req, lh_resp *resp)
{
    lh_err err;
    const char *name = lh_req_param(req, "name");
    json_t *m = visible_dataset(req, resp, name);
    if (m == NULL)
        return 0;
    json_decref(m);
    json_t *body = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    json_t *committed = NULL;
    int rc = lh_catalog_patch(req->srv->catalog, name, body, req->principal->name, &committed, &err);
    json_decref(body);
    return rc ? lh_resp_error(resp, &err) : lh_resp_json(resp, 200, committed);
}

/* DELETE and resync: check the principal may see the dataset, then one catalog change. */
static int
change_dataset(lh_req *req, lh_resp *resp,
               int (*change)(lh_catalog *, const char *, const char *, json_t **, lh_err *))
{
    lh_err err;
    const char *name = lh_req_param(req, "name");
    json_t *m = visible_dataset(req, resp, name);
    if (m == NULL)
        return 0;
    json_decref(m);
    json_t *committed = NULL;
    if (change(req->srv->catalog, name, req->principal->name, &committed, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, committed);
}

int
lh_h_dataset_delete(lh_req *req, lh_resp *resp)
{
    return change_dataset(req, resp, lh_catalog_delete);
}

int
lh_h_dataset_resync(lh_req *req, lh_resp *resp)
{
    return change_dataset(req, resp, lh_catalog_resync);
}

int
lh_h_sweep(lh_req *req, lh_resp *resp)
{
    lh_err err;
    int64_t grace_s;
    const char *dry = lh_req_query(req, "dry_run");
    if (lh_req_query_int(req, "grace_s", 3600, 0, INT64_C(10) * 365 * 86400, &grace_s, &err) != 0)
        return lh_resp_error(resp, &err);
    if (dry && strcmp(dry, "true") != 0 && strcmp(dry, "false") != 0) {
        lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "'dry_run' must be true or false");
        return lh_resp_error(resp, &err);
    }
    return lh_resp_json(resp, 200,
                        lh_catalog_sweep(req->srv->catalog, grace_s, dry && strcmp(dry, "true") == 0));
}

int
lh_h_resync_missing(lh_req *req, lh_resp *resp)
{
    return lh_resp_json(resp, 200, lh_catalog_resync_missing(req->srv->catalog, req->principal->name));
}

/* ---- POST /ingest/file -------------------------------------------------------------------- */

typedef struct ingest_job {
    lh_server *srv;
    char *dataset, *bucket, *format, *source_object, *actor, *path;
    lh_ingest_mode mode;
    int64_t bytes;
    json_t *metadata;
    lh_principal who; /* a copy (with its own bucket list): jobs may outlive the request */
} ingest_job;

static bool
job_may_use(void *ctx, const char *bucket)
{
    const ingest_job *j = ctx;
    lh_err ignored;
    return lh_http__auth_bucket(&j->who, bucket, &ignored) == 0;
}

static void
ingest_job_free(void *arg)
{
    ingest_job *j = arg;
    for (size_t i = 0; i < j->who.n_buckets; i++)
        free(j->who.buckets[i]);
    free(j->who.buckets);
    if (j->path)
        unlink(j->path);
    free(j->dataset);
    free(j->bucket);
    free(j->format);
    free(j->source_object);
    free(j->actor);
    free(j->path);
    json_decref(j->metadata);
    free(j);
}

static int
run_ingest(lh_job *job, void *arg, lh_err *err)
{
    ingest_job *j = arg;
    lh_ingest_file_opts o = {.dataset = j->dataset, .bucket = j->bucket, .format = j->format,
                             .mode = j->mode, .src_path = j->path, .src_bytes = j->bytes,
                             .metadata = j->metadata, .source_object = j->source_object,
                             .actor = j->actor, .job = job, .allow_bucket = job_may_use,
                             .allow_ctx = j};
    json_t *result = NULL;
    int rc = lh_ingest_file(j->srv->catalog, j->srv->internal_engine, j->srv->buckets, &o, &result,
                            err);
    if (rc == 0)
        lh_job_set_result(job, result);
    return rc;
}

static const char *const META_PARAMS[] = {"owner", "sensitivity", "description", "tags",
                                          "freshness_sla_s", "source_system", NULL};
static const char *const OTHER_PARAMS[] = {"dataset", "format", "mode", "bucket", "async",
                                           "source_object", NULL};

typedef struct param_check {
    lh_err *err;
    int rc;
} param_check;

static enum MHD_Result
check_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind, (void)value;
    param_check *pc = cls;
    for (const char *const *p = META_PARAMS; *p; p++)
        if (strcmp(*p, key) == 0)
            return MHD_YES;
    for (const char *const *p = OTHER_PARAMS; *p; p++)
        if (strcmp(*p, key) == 0)
            return MHD_YES;
    pc->rc = lh_err_set(pc->err, LH_EINVAL, 400, "invalid_parameter", "unknown parameter '%s'", key);
    lh_err_hint(pc->err, "see docs/API.md, POST /ingest/file");
    return MHD_NO;
}

/* Metadata from query parameters, validated like PATCH. */
static int
metadata_from_query(lh_req *req, json_t **out, lh_err *err)
{
    json_t *m = json_object();
    for (const char *const *p = META_PARAMS; *p; p++) {
        const char *v = lh_req_query(req, *p);
        if (v == NULL)
            continue;
        if (strcmp(*p, "tags") == 0) {
            json_t *tags = json_array();
            char *copy = lh_strdup(v);
            for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save))
                if (*tok)
                    json_array_append_new(tags, lh_json_text(tok));
            free(copy);
            json_object_set_new(m, "tags", tags);
        } else if (strcmp(*p, "freshness_sla_s") == 0) {
            char *end = NULL;
            long long n = strtoll(v, &end, 10);
            json_object_set_new(m, *p, *v && *end == '\0' ? json_integer(n) : lh_json_text(v));
        } else {
            json_object_set_new(m, *p, lh_json_text(v));
        }
    }
    json_t *clean = NULL;
    int rc = lh_catalog_check_metadata(m, &clean, err);
    json_decref(m);
    if (rc == 0)
        *out = clean;
    return rc;
}

int
lh_h_ingest_file(lh_req *req, lh_resp *resp)
{
    lh_err err;
    param_check pc = {&err, 0};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, check_param, &pc);
    if (pc.rc != 0)
        return lh_resp_error(resp, &err);
    const char *dataset = lh_req_query(req, "dataset");
    const char *format = lh_req_query(req, "format");
    const char *mode = lh_req_query(req, "mode");
    const char *bucket = lh_req_query(req, "bucket");
    const char *async = lh_req_query(req, "async");
    int rc = 0;
    if (dataset == NULL || !lh_name_valid(dataset)) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'dataset' must be a name like customer_orders");
        lh_err_hint(&err, "names match [a-z][a-z0-9_]{0,62}");
    } else if (format == NULL ||
               (strcmp(format, "csv") && strcmp(format, "json") && strcmp(format, "ndjson") &&
                strcmp(format, "parquet"))) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'format' must be csv, json, ndjson or parquet");
    } else if (mode && lh_ingest_mode_parse(mode) < 0) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'mode' must be create, append or replace");
    } else if (async && strcmp(async, "true") && strcmp(async, "false")) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "'async' must be true or false");
    } else if (bucket && lh_http__auth_bucket(req->principal, bucket, &err) != 0) {
        rc = LH_EPERM;
    } else if (bucket && lh_buckets_get(req->srv->buckets, bucket, &err) == NULL) {
        rc = LH_ENOTFOUND;
    } else if (req->body_path == NULL || req->body_fd_len == 0) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "empty_body", "the request body (the file) is empty");
    }
    json_t *meta = NULL;
    if (rc == 0)
        rc = metadata_from_query(req, &meta, &err);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    ingest_job *j = lh_calloc(1, sizeof *j);
    j->who = *req->principal;
    j->who.buckets = lh_calloc(j->who.n_buckets ? j->who.n_buckets : 1, sizeof *j->who.buckets);
    for (size_t i = 0; i < j->who.n_buckets; i++)
        j->who.buckets[i] = lh_strdup(req->principal->buckets[i]);
    j->srv = req->srv;
    j->dataset = lh_strdup(dataset);
    j->bucket = bucket ? lh_strdup(bucket) : NULL;
    j->format = lh_strdup(format);
    const char *so = lh_req_query(req, "source_object");
    j->source_object = lh_strdup(so ? so : "");
    j->actor = lh_strdup(req->principal->name);
    j->mode = mode ? (lh_ingest_mode)lh_ingest_mode_parse(mode) : LH_INGEST_CREATE;
    j->bytes = req->body_fd_len;
    j->metadata = meta;
    j->path = req->body_path; /* the job owns the upload now */
    req->body_path = NULL;

    if (async && strcmp(async, "true") == 0) {
        char id[LH_JOB_ID_MAX];
        if (lh_jobs_submit(req->srv->jobs, "ingest", req->principal->name, run_ingest, j,
                           ingest_job_free, id, &err) != 0)
            return lh_resp_error(resp, &err);
        lh_resp_header(resp, "Location", lh_arena_printf(req->arena, "/jobs/%s", id));
        json_t *job = lh_jobs_get_json(req->srv->jobs, id);
        return lh_resp_json(resp, 202, job ? job : json_pack("{s:s}", "id", id));
    }
    lh_ingest_file_opts o = {.dataset = j->dataset, .bucket = j->bucket, .format = j->format,
                             .mode = j->mode, .src_path = j->path, .src_bytes = j->bytes,
                             .metadata = j->metadata, .source_object = j->source_object,
                             .actor = j->actor, .allow_bucket = job_may_use, .allow_ctx = j};
    json_t *result = NULL;
    rc = lh_ingest_file(req->srv->catalog, req->srv->internal_engine, req->srv->buckets, &o, &result,
                        &err);
    ingest_job_free(j);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 201, result);
}
