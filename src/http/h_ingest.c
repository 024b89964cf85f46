/*
 * h_ingest.c — POST /ingest/file (an uploaded CSV/JSON/NDJSON/Parquet file) and
 * POST /ingest/db (a PostgreSQL table or query). Both run in the request or, with
 * async, as a job whose progress GET /jobs/{id} reports. A job keeps its own copy of the
 * principal (jobs may outlive the request) and of any secret, wiped when it ends.
 */
#include "http/http_int.h"
#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A job's own copy of the principal (with its bucket list): jobs may outlive the request. */
static void
principal_copy(lh_principal *dst, const lh_principal *src)
{
    *dst = *src;
    dst->profile = NULL; /* belongs to the request's principal set, which the job outlives */
    dst->buckets = lh_calloc(src->n_buckets ? src->n_buckets : 1, sizeof *dst->buckets);
    for (size_t i = 0; i < src->n_buckets; i++)
        dst->buckets[i] = lh_strdup(src->buckets[i]);
}

static void
principal_free(lh_principal *p)
{
    for (size_t i = 0; i < p->n_buckets; i++)
        free(p->buckets[i]);
    free(p->buckets);
}

static bool
principal_may_use(const lh_principal *who, const char *bucket)
{
    return lh_catalog_may_see_bucket(who, bucket);
}

/* ---- POST /ingest/file -------------------------------------------------------------------- */

typedef struct ingest_job {
    lh_server *srv;
    char *dataset, *bucket, *format, *source_object, *actor, *path;
    lh_ingest_mode mode;
    lh_bad_rows on_bad_rows;
    int64_t bytes;
    json_t *metadata;
    lh_principal who; /* a copy (with its own bucket list): jobs may outlive the request */
} ingest_job;

static bool
job_may_use(void *ctx, const char *bucket)
{
    const ingest_job *j = ctx;
    return principal_may_use(&j->who, bucket);
}

static void
ingest_job_free(void *arg)
{
    ingest_job *j = arg;
    principal_free(&j->who);
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

/* The ingest's options: the job's file and parameters (job: where progress goes, or NULL). */
static lh_ingest_file_opts
file_opts(ingest_job *j, lh_job *job)
{
    lh_ingest_file_opts o = {.dataset = j->dataset,
                             .bucket = j->bucket,
                             .format = j->format,
                             .mode = j->mode,
                             .src_path = j->path,
                             .src_bytes = j->bytes,
                             .metadata = j->metadata,
                             .source_object = j->source_object,
                             .actor = j->actor,
                             .on_bad_rows = j->on_bad_rows,
                             .job = job,
                             .allow_bucket = job_may_use,
                             .allow_ctx = j};
    return o;
}

static int
run_ingest(lh_job *job, void *arg, lh_err *err)
{
    ingest_job *j = arg;
    lh_ingest_file_opts o = file_opts(j, job);
    json_t *result = NULL;
    int rc =
        lh_ingest_file(j->srv->catalog, j->srv->internal_engine, j->srv->buckets, &o, &result, err);
    if (rc == 0)
        lh_job_set_result(job, result);
    return rc;
}

static const char *const META_PARAMS[] = {"owner",           "sensitivity",   "description", "tags",
                                          "freshness_sla_s", "source_system", "primary_key", NULL};
static const char *const OTHER_PARAMS[] = {"dataset", "format",        "mode",        "bucket",
                                           "async",   "source_object", "on_bad_rows", NULL};

/* Metadata from query parameters, validated like PATCH. */
static int
metadata_from_query(lh_req *req, json_t **out, lh_err *err)
{
    json_t *m = json_object();
    for (const char *const *p = META_PARAMS; *p; p++) {
        const char *v = lh_req_query(req, *p);
        if (v == NULL)
            continue;
        if (strcmp(*p, "tags") == 0 || strcmp(*p, "primary_key") == 0) {
            json_t *tags = json_array();
            char *copy = lh_strdup(v);
            for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save))
                if (*tok)
                    json_array_append_new(tags, lh_json_text(tok));
            free(copy);
            json_object_set_new(m, *p, tags);
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
    if (lh_req_check_query(req, META_PARAMS, OTHER_PARAMS, "see docs/API.md, POST /ingest/file",
                           &err) != 0)
        return lh_resp_error(resp, &err);
    const char *dataset = lh_req_query(req, "dataset");
    const char *format = lh_req_query(req, "format");
    const char *mode = lh_req_query(req, "mode");
    const char *bucket = lh_req_query(req, "bucket");
    const char *async = lh_req_query(req, "async");
    const char *on_bad_rows = lh_req_query(req, "on_bad_rows");
    int rc = 0;
    if (dataset == NULL || !lh_name_valid(dataset)) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'dataset' must be a name like customer_orders");
        lh_err_hint(&err, "names match [a-z][a-z0-9_]{0,62}");
    } else if (format == NULL || (strcmp(format, "csv") && strcmp(format, "json") &&
                                  strcmp(format, "ndjson") && strcmp(format, "parquet"))) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'format' must be csv, json, ndjson or parquet");
    } else if (mode && lh_ingest_mode_parse(mode) < 0) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'mode' must be create, append or replace");
    } else if (on_bad_rows && lh_ingest_bad_rows_parse(on_bad_rows) < 0) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'on_bad_rows' must be error, skip or null_pad");
        lh_err_hint(&err, "it says what to do with CSV lines whose field count differs from the "
                          "header's");
    } else if (on_bad_rows && strcmp(format, "csv") != 0 && strcmp(on_bad_rows, "error") != 0) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'on_bad_rows' applies to format=csv only");
    } else if (async && strcmp(async, "true") && strcmp(async, "false")) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "'async' must be true or false");
    } else if (bucket && lh_auth_bucket(req->principal, bucket, &err) != 0) {
        rc = LH_EPERM;
    } else if (bucket && lh_buckets_get(req->srv->buckets, bucket, &err) == NULL) {
        rc = LH_ENOTFOUND;
    } else if (req->body_path == NULL || req->body_fd_len == 0) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "empty_body", "the request body (the file) is empty");
    }
    json_t *meta = NULL;
    if (rc == 0)
        rc = metadata_from_query(req, &meta, &err);
    if (rc == 0 && (rc = lh_catalog_require_for(req->srv->catalog, dataset, meta, &err)) != 0)
        json_decref(meta);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    ingest_job *j = lh_calloc(1, sizeof *j);
    principal_copy(&j->who, req->principal);
    j->srv = req->srv;
    j->dataset = lh_strdup(dataset);
    j->bucket = bucket ? lh_strdup(bucket) : NULL;
    j->format = lh_strdup(format);
    const char *so = lh_req_query(req, "source_object");
    j->source_object = lh_strdup(so ? so : "");
    j->actor = lh_strdup(req->principal->name);
    j->mode = mode ? (lh_ingest_mode)lh_ingest_mode_parse(mode) : LH_INGEST_CREATE;
    j->on_bad_rows =
        on_bad_rows ? (lh_bad_rows)lh_ingest_bad_rows_parse(on_bad_rows) : LH_BAD_ROWS_ERROR;
    j->bytes = req->body_fd_len;
    j->metadata = meta;
    j->path = req->body_path; /* the job owns the upload now */
    req->body_path = NULL;

    if (async && strcmp(async, "true") == 0)
        return lh_http__submit_job(req, resp, "ingest", run_ingest, j, ingest_job_free, NULL);
    lh_ingest_file_opts o = file_opts(j, NULL);
    json_t *result = NULL;
    rc = lh_ingest_file(req->srv->catalog, req->srv->internal_engine, req->srv->buckets, &o,
                        &result, &err);
    ingest_job_free(j);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 201, result);
}

/* ---- POST /ingest/db ------------------------------------------------------------------------ */

typedef struct db_job {
    lh_server *srv;
    char *dataset, *bucket, *table, *query, *since_column, *actor;
    char *dsn, *password; /* secrets: wiped when the job ends */
    lh_ingest_mode mode;
    lh_pg_method method;
    int64_t batch_rows;
    int parallel; /* 0: the default */
    json_t *metadata;
    lh_principal who;
} db_job;

static bool
db_job_may_use(void *ctx, const char *bucket)
{
    const db_job *j = ctx;
    return principal_may_use(&j->who, bucket);
}

static void
db_job_free(void *arg)
{
    db_job *j = arg;
    principal_free(&j->who);
    lh_free_secret(j->dsn);
    lh_free_secret(j->password);
    free(j->dataset);
    free(j->bucket);
    free(j->table);
    free(j->query);
    free(j->since_column);
    free(j->actor);
    json_decref(j->metadata);
    free(j);
}

static int
db_ingest(db_job *j, lh_job *job, json_t **result, lh_err *err)
{
    lh_ingest_db_opts o = {.dataset = j->dataset,
                           .bucket = j->bucket,
                           .mode = j->mode,
                           .dsn = j->dsn,
                           .password = j->password,
                           .table = j->table,
                           .query = j->query,
                           .since_column = j->since_column,
                           .batch_rows = j->batch_rows,
                           .method = j->method,
                           .parallel = j->parallel,
                           .metadata = j->metadata,
                           .actor = j->actor,
                           .job = job,
                           .allow_bucket = db_job_may_use,
                           .allow_ctx = j};
    return lh_ingest_db(j->srv->catalog, j->srv->internal_engine, j->srv->buckets, &o, result, err);
}

static int
run_db_ingest(lh_job *job, void *arg, lh_err *err)
{
    json_t *result = NULL;
    int rc = db_ingest(arg, job, &result, err);
    if (rc == 0)
        lh_job_set_result(job, result);
    return rc;
}

static const char *const DB_FIELDS[] = {"dsn",         "secret_ref",   "table",  "query",
                                        "dataset",     "mode",         "bucket", "batch_rows",
                                        "method",      "since_column", "async",  "owner",
                                        "sensitivity", "description",  "tags",   "freshness_sla_s",
                                        "primary_key", "parallel",     NULL};
static const char *const DB_META[] = {"owner",           "sensitivity", "description", "tags",
                                      "freshness_sla_s", "primary_key", NULL};

/* An optional string field without NUL bytes; 400 naming it otherwise. */
static int
opt_string(const json_t *body, const char *field, const char **out, lh_err *err)
{
    const json_t *v = json_object_get(body, field);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'%s' must be a non-empty string", field);
    *out = json_string_value(v);
    return 0;
}

static int
db_job_from_body(lh_req *req, const json_t *body, db_job **out, lh_err *err)
{
    if (lh_req_check_fields(body, DB_FIELDS, "see docs/API.md, POST /ingest/db", err) != 0)
        return LH_EINVAL;
    const char *dsn, *ref, *table, *query, *dataset, *mode, *bucket, *method, *since;
    int rc;
    if ((rc = opt_string(body, "dsn", &dsn, err)) ||
        (rc = opt_string(body, "secret_ref", &ref, err)) ||
        (rc = opt_string(body, "table", &table, err)) ||
        (rc = opt_string(body, "query", &query, err)) ||
        (rc = opt_string(body, "dataset", &dataset, err)) ||
        (rc = opt_string(body, "mode", &mode, err)) ||
        (rc = opt_string(body, "bucket", &bucket, err)) ||
        (rc = opt_string(body, "method", &method, err)) ||
        (rc = opt_string(body, "since_column", &since, err)))
        return rc;
    const json_t *batch = json_object_get(body, "batch_rows");
    const json_t *async = json_object_get(body, "async");
    const json_t *parallel = json_object_get(body, "parallel");
    if (!dsn)
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'dsn' is required (postgresql://user@host:port/dbname)");
    else if (!table == !query)
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "give exactly one of 'table' and 'query'");
    else if (!dataset || !lh_name_valid(dataset)) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'dataset' must be a name like customer_orders");
        lh_err_hint(err, "names match [a-z][a-z0-9_]{0,62}");
    } else if (mode && lh_ingest_mode_parse(mode) < 0)
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'mode' must be create, append or replace");
    else if (method && strcmp(method, "copy") != 0 && strcmp(method, "cursor") != 0)
        rc =
            lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "'method' must be copy or cursor");
    else if (batch && (!json_is_integer(batch) || json_integer_value(batch) < 1 ||
                       json_integer_value(batch) > LH_PG_MAX_BATCH_ROWS))
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'batch_rows' must be an integer from 1 to %d", LH_PG_MAX_BATCH_ROWS);
    else if (parallel && (!json_is_integer(parallel) || json_integer_value(parallel) < 1 ||
                          json_integer_value(parallel) > LH_PG_MAX_PARALLEL)) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'parallel' must be an integer from 1 to %d", LH_PG_MAX_PARALLEL);
        lh_err_hint(err, "the number of connections that read a table at once; 1 reads it "
                         "with one");
    } else if (async && !json_is_boolean(async))
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "'async' must be true or false");
    else if (bucket && lh_auth_bucket(req->principal, bucket, err) != 0)
        rc = LH_EPERM;
    else if (bucket && lh_buckets_get(req->srv->buckets, bucket, err) == NULL)
        rc = LH_ENOTFOUND;
    else
        rc = lh_ingest_db_check_dsn(dsn, err);
    if (rc != 0)
        return rc;
    json_t *m = json_object(), *meta = NULL;
    for (const char *const *f = DB_META; *f; f++)
        if (json_object_get(body, *f))
            json_object_set(m, *f, json_object_get(body, *f));
    rc = lh_catalog_check_metadata(m, &meta, err);
    json_decref(m);
    if (rc == 0 && (rc = lh_catalog_require_for(req->srv->catalog, dataset, meta, err)) != 0)
        json_decref(meta);
    if (rc != 0)
        return rc;
    char *password = NULL;
    if (ref && (rc = lh_ingest_secret_password(req->srv->secrets, ref, &password, err)) != 0) {
        json_decref(meta);
        return rc;
    }
    db_job *j = lh_calloc(1, sizeof *j);
    j->srv = req->srv;
    principal_copy(&j->who, req->principal);
    j->dataset = lh_strdup(dataset);
    j->bucket = bucket ? lh_strdup(bucket) : NULL;
    j->table = table ? lh_strdup(table) : NULL;
    j->query = query ? lh_strdup(query) : NULL;
    j->since_column = since ? lh_strdup(since) : NULL;
    j->actor = lh_strdup(req->principal->name);
    j->dsn = lh_strdup(dsn);
    j->password = password;
    j->mode = mode ? (lh_ingest_mode)lh_ingest_mode_parse(mode) : LH_INGEST_CREATE;
    j->method = method && strcmp(method, "cursor") == 0 ? LH_PG_CURSOR : LH_PG_COPY;
    j->batch_rows = batch ? json_integer_value(batch) : 0;
    j->parallel = parallel ? (int)json_integer_value(parallel)
                           : (int)lh_config_int(req->config, "ingest.pg_parallel");
    j->metadata = meta;
    *out = j;
    return 0;
}

/* Zero the request's secrets (the DSN may hold a password) before the memory is freed:
 * the raw body and every string of its parsed document. */
static void
wipe_json(json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_string(j)) {
        volatile char *p = (volatile char *)json_string_value(j);
        for (size_t n = json_string_length(j); n > 0; n--)
            *p++ = '\0';
    } else if (json_is_object(j)) {
        json_object_foreach(j, key, v) wipe_json(v);
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) wipe_json(v);
    }
}

int
lh_h_ingest_db(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    db_job *j = NULL;
    int rc = db_job_from_body(req, body, &j, &err);
    bool async = json_is_true(json_object_get(body, "async"));
    wipe_json(body);
    json_decref(body);
    for (volatile char *p = req->body.data, *end = p + req->body.len; p && p < end; p++)
        *p = '\0';
    if (rc != 0)
        return lh_resp_error(resp, &err);
    if (async)
        return lh_http__submit_job(req, resp, "ingest_db", run_db_ingest, j, db_job_free, NULL);
    json_t *result = NULL;
    rc = db_ingest(j, NULL, &result, &err);
    db_job_free(j);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, json_is_true(json_object_get(result, "unchanged")) ? 200 : 201,
                        result);
}

/* ---- POST /datasets/{name}/rows --------------------------------------------------------- */

int
lh_h_rows(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    static const char *const fields[] = {"upsert", "delete", "source", "workspace_id", NULL};
    int rc = lh_req_check_fields(body, fields,
                                 "the body takes upsert, delete, source and workspace_id", &err);
    const json_t *upsert = json_object_get(body, "upsert"), *del = json_object_get(body, "delete");
    const char *source = NULL, *workspace = NULL;
    json_t *result = NULL;
    if (rc == 0 && ((upsert && !json_is_array(upsert)) || (del && !json_is_array(del))))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'upsert' and 'delete' must be arrays of objects");
    if (rc != 0 || (rc = opt_string(body, "source", &source, &err)) != 0 ||
        (rc = opt_string(body, "workspace_id", &workspace, &err)) != 0)
        goto out;
    lh_rows_opts o = {.dataset = lh_req_param(req, "name"),
                      .upsert = upsert,
                      .deletes = del,
                      .source = source,
                      .workspace_id = workspace};
    lh_rows_deps d = {.catalog = req->srv->catalog,
                      .engine = req->srv->internal_engine,
                      .buckets = req->srv->buckets,
                      .jobs = req->srv->jobs};
    rc = lh_ingest_rows_as(&d, req->principal, req->config, &o, &result, &err);
out:
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, json_is_true(json_object_get(result, "unchanged")) ? 200 : 201,
                        result);
}

/* ---- compaction: POST /datasets/{name}/compact, and automatic ------------------------------ */

int
lh_h_compact(lh_req *req, lh_resp *resp)
{
    const char *name = lh_req_param(req, "name");
    if (!lh_http__dataset_visible(req, resp, name))
        return 0;
    lh_err err;
    json_t *result = NULL;
    if (lh_ingest_compact(req->srv->catalog, req->srv->internal_engine, req->srv->buckets, name,
                          req->principal->name, false, &result, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, json_is_true(json_object_get(result, "unchanged")) ? 200 : 201,
                        result);
}
