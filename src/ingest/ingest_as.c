/*
 * ingest_as.c — a principal's ingest, whichever door it came through (HTTP POST
 * /ingest/file and /ingest/db, gRPC Ingest/UploadFile and Ingest/FromPostgres): the
 * request's fields checked into a task that owns copies of everything it needs (the
 * principal with its buckets, the upload, the DSN and password, wiped when it ends), then
 * run at once or queued as a job. Jobs may outlive the request and its principal set, so
 * nothing in a task is borrowed from either.
 */
#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lh_ingest_task {
    lh_ingest_deps d;
    bool db; /* a PostgreSQL ingest; else a file */
    lh_principal who;
    char *dataset, *bucket;
    lh_ingest_mode mode;
    json_t *metadata;
    /* a file */
    char *format, *source_object, *path;
    int64_t bytes;
    lh_bad_rows on_bad_rows;
    /* PostgreSQL */
    char *table, *query, *since_column;
    char *dsn, *password; /* secrets: wiped when the task is freed */
    lh_pg_method method;
    int64_t batch_rows;
    int parallel;
};

static const char *const META_FIELDS[] = {"owner",           "sensitivity",   "description", "tags",
                                          "freshness_sla_s", "source_system", "primary_key", NULL};
static const char *const FILE_FIELDS[] = {
    "dataset",         "format",        "mode",        "bucket",      "on_bad_rows",
    "source_object",   "owner",         "sensitivity", "description", "tags",
    "freshness_sla_s", "source_system", "primary_key", NULL};
static const char *const DB_FIELDS[] = {
    "dsn",         "secret_ref", "table",           "query",        "dataset",  "mode",
    "bucket",      "batch_rows", "method",          "since_column", "owner",    "sensitivity",
    "description", "tags",       "freshness_sla_s", "primary_key",  "parallel", NULL};

void
lh_ingest_task_free(lh_ingest_task *t)
{
    if (t == NULL)
        return;
    lh_principal_copy_free(&t->who);
    if (t->path)
        unlink(t->path);
    lh_free_secret(t->dsn);
    lh_free_secret(t->password);
    free(t->dataset);
    free(t->bucket);
    free(t->format);
    free(t->source_object);
    free(t->path);
    free(t->table);
    free(t->query);
    free(t->since_column);
    json_decref(t->metadata);
    free(t);
}

static char *
dup_or_null(const char *s)
{
    return s ? lh_strdup(s) : NULL;
}

/* The checks both kinds make: the dataset's name, the mode (may be NULL), the bucket (may
 * be NULL: the primary). */
static int
check_dataset(const char *dataset, lh_err *err)
{
    if (dataset != NULL && lh_name_valid(dataset))
        return 0;
    lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
               "'dataset' must be a name like customer_orders");
    lh_err_hint(err, "names match [a-z][a-z0-9_]{0,62}");
    return LH_EINVAL;
}

static int
check_mode(const char *mode, lh_err *err)
{
    if (mode && lh_ingest_mode_parse(mode) < 0)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'mode' must be create, append or replace");
    return 0;
}

static int
check_bucket(const lh_ingest_deps *d, const lh_principal *who, const char *bucket, lh_err *err)
{
    if (bucket && lh_auth_bucket(who, bucket, err) != 0)
        return LH_EPERM;
    if (bucket && lh_buckets_get(d->buckets, bucket, err) == NULL)
        return LH_ENOTFOUND;
    return 0;
}

/* The metadata fields of params, checked like PATCH, and required as the catalog's
 * [catalog] rules say for a new dataset. *out new, sharing nothing with params (a door
 * wipes its request once the task is made). */
static int
metadata_of(const lh_ingest_deps *d, const json_t *params, const char *dataset, json_t **out,
            lh_err *err)
{
    json_t *m = json_object(), *meta = NULL;
    for (const char *const *f = META_FIELDS; *f; f++)
        if (json_object_get(params, *f))
            json_object_set_new(m, *f, json_deep_copy(json_object_get(params, *f)));
    int rc = lh_catalog_check_metadata(m, &meta, err);
    json_decref(m);
    if (rc == 0 && (rc = lh_catalog_require_for(d->catalog, dataset, meta, err)) != 0) {
        json_decref(meta);
        meta = NULL;
    }
    *out = meta;
    return rc;
}

static lh_ingest_task *
task_new(const lh_ingest_deps *d, const lh_principal *who, const char *dataset, const char *bucket,
         const char *mode, json_t *metadata)
{
    lh_ingest_task *t = lh_calloc(1, sizeof *t);
    t->d = *d;
    lh_principal_copy(&t->who, who);
    t->dataset = lh_strdup(dataset);
    t->bucket = dup_or_null(bucket);
    t->mode = mode ? (lh_ingest_mode)lh_ingest_mode_parse(mode) : LH_INGEST_CREATE;
    t->metadata = metadata;
    return t;
}

/* Every check of a file ingest but the upload's; *meta (new) the checked metadata. */
static int
file_checked(const lh_ingest_deps *d, const lh_principal *who, const json_t *params, json_t **meta,
             lh_err *err)
{
    *meta = NULL;
    const char *dataset, *format, *mode, *bucket, *on_bad_rows, *source_object;
    int rc;
    if ((rc = lh_json_check_fields(params, FILE_FIELDS, "see docs/API.md, POST /ingest/file",
                                   err)) ||
        (rc = lh_json_opt_string(params, "dataset", &dataset, err)) ||
        (rc = lh_json_opt_string(params, "format", &format, err)) ||
        (rc = lh_json_opt_string(params, "mode", &mode, err)) ||
        (rc = lh_json_opt_string(params, "bucket", &bucket, err)) ||
        (rc = lh_json_opt_string(params, "on_bad_rows", &on_bad_rows, err)) ||
        (rc = lh_json_opt_string(params, "source_object", &source_object, err)))
        return rc;
    if ((rc = check_dataset(dataset, err)) != 0)
        return rc;
    if (format == NULL || (strcmp(format, "csv") && strcmp(format, "json") &&
                           strcmp(format, "ndjson") && strcmp(format, "parquet")))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'format' must be csv, json, ndjson or parquet");
    if (on_bad_rows && lh_ingest_bad_rows_parse(on_bad_rows) < 0) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                   "'on_bad_rows' must be error, skip or null_pad");
        lh_err_hint(err, "it says what to do with CSV lines whose field count differs from the "
                         "header's");
        return LH_EINVAL;
    }
    if (on_bad_rows && strcmp(format, "csv") != 0 && strcmp(on_bad_rows, "error") != 0)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'on_bad_rows' applies to format=csv only");
    if ((rc = check_mode(mode, err)) != 0 || (rc = check_bucket(d, who, bucket, err)) != 0)
        return rc;
    return metadata_of(d, params, dataset, meta, err);
}

int
lh_ingest_file_check(const lh_ingest_deps *d, const lh_principal *who, const json_t *params,
                     lh_err *err)
{
    json_t *meta = NULL;
    int rc = file_checked(d, who, params, &meta, err);
    json_decref(meta);
    return rc;
}

int
lh_ingest_file_prepare(const lh_ingest_deps *d, const lh_principal *who, const json_t *params,
                       char **path, int64_t bytes, lh_ingest_task **out, lh_err *err)
{
    *out = NULL;
    json_t *meta = NULL;
    int rc = file_checked(d, who, params, &meta, err);
    if (rc != 0)
        return rc;
    if (path == NULL || *path == NULL || bytes <= 0) {
        json_decref(meta);
        return lh_err_set(err, LH_EINVAL, 400, "empty_body", "the file is empty");
    }
    const char *bucket = json_string_value(json_object_get(params, "bucket"));
    const char *mode = json_string_value(json_object_get(params, "mode"));
    const char *on_bad_rows = json_string_value(json_object_get(params, "on_bad_rows"));
    const char *source_object = json_string_value(json_object_get(params, "source_object"));
    lh_ingest_task *t =
        task_new(d, who, json_string_value(json_object_get(params, "dataset")), bucket, mode, meta);
    t->format = lh_strdup(json_string_value(json_object_get(params, "format")));
    t->source_object = lh_strdup(source_object ? source_object : "");
    t->on_bad_rows =
        on_bad_rows ? (lh_bad_rows)lh_ingest_bad_rows_parse(on_bad_rows) : LH_BAD_ROWS_ERROR;
    t->bytes = bytes;
    t->path = *path; /* the task owns the upload now */
    *path = NULL;
    *out = t;
    return 0;
}

int
lh_ingest_db_prepare(const lh_ingest_deps *d, const lh_principal *who, const lh_config *cfg,
                     const json_t *body, lh_ingest_task **out, lh_err *err)
{
    *out = NULL;
    if (lh_json_check_fields(body, DB_FIELDS, "see docs/API.md, POST /ingest/db", err) != 0)
        return LH_EINVAL;
    const char *dsn, *ref, *table, *query, *dataset, *mode, *bucket, *method, *since;
    int rc;
    if ((rc = lh_json_opt_string(body, "dsn", &dsn, err)) ||
        (rc = lh_json_opt_string(body, "secret_ref", &ref, err)) ||
        (rc = lh_json_opt_string(body, "table", &table, err)) ||
        (rc = lh_json_opt_string(body, "query", &query, err)) ||
        (rc = lh_json_opt_string(body, "dataset", &dataset, err)) ||
        (rc = lh_json_opt_string(body, "mode", &mode, err)) ||
        (rc = lh_json_opt_string(body, "bucket", &bucket, err)) ||
        (rc = lh_json_opt_string(body, "method", &method, err)) ||
        (rc = lh_json_opt_string(body, "since_column", &since, err)))
        return rc;
    const json_t *batch = json_object_get(body, "batch_rows");
    const json_t *parallel = json_object_get(body, "parallel");
    if (!dsn)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'dsn' is required (postgresql://user@host:port/dbname)");
    if (!table == !query)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "give exactly one of 'table' and 'query'");
    if ((rc = check_dataset(dataset, err)) != 0 || (rc = check_mode(mode, err)) != 0)
        return rc;
    if (method && strcmp(method, "copy") != 0 && strcmp(method, "cursor") != 0)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'method' must be copy or cursor");
    if (batch && (!json_is_integer(batch) || json_integer_value(batch) < 1 ||
                  json_integer_value(batch) > LH_PG_MAX_BATCH_ROWS))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'batch_rows' must be an integer from 1 to %d", LH_PG_MAX_BATCH_ROWS);
    if (parallel && (!json_is_integer(parallel) || json_integer_value(parallel) < 1 ||
                     json_integer_value(parallel) > LH_PG_MAX_PARALLEL)) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                   "'parallel' must be an integer from 1 to %d", LH_PG_MAX_PARALLEL);
        lh_err_hint(err, "the number of connections that read a table at once; 1 reads it "
                         "with one");
        return LH_EINVAL;
    }
    if ((rc = check_bucket(d, who, bucket, err)) != 0 ||
        (rc = lh_ingest_db_check_dsn(dsn, err)) != 0)
        return rc;
    json_t *meta = NULL;
    if ((rc = metadata_of(d, body, dataset, &meta, err)) != 0)
        return rc;
    char *password = NULL;
    if (ref && d->secrets == NULL) {
        json_decref(meta);
        return lh_err_set(err, LH_EINVAL, 400, "invalid_secret_ref",
                          "no secrets file is configured for secret_ref '%s'", ref);
    }
    if (ref && (rc = lh_ingest_secret_password(d->secrets, ref, &password, err)) != 0) {
        json_decref(meta);
        return rc;
    }
    lh_ingest_task *t = task_new(d, who, dataset, bucket, mode, meta);
    t->db = true;
    t->table = dup_or_null(table);
    t->query = dup_or_null(query);
    t->since_column = dup_or_null(since);
    t->dsn = lh_strdup(dsn);
    t->password = password;
    t->method = method && strcmp(method, "cursor") == 0 ? LH_PG_CURSOR : LH_PG_COPY;
    t->batch_rows = batch ? json_integer_value(batch) : 0;
    t->parallel = parallel ? (int)json_integer_value(parallel)
                           : (int)lh_config_int(cfg, "ingest.pg_parallel");
    *out = t;
    return 0;
}

int
lh_ingest_task_run(lh_ingest_task *t, lh_job *job, json_t **result, lh_err *err)
{
    *result = NULL;
    if (t->db) {
        lh_ingest_db_opts o = {.dataset = t->dataset,
                               .bucket = t->bucket,
                               .mode = t->mode,
                               .dsn = t->dsn,
                               .password = t->password,
                               .table = t->table,
                               .query = t->query,
                               .since_column = t->since_column,
                               .batch_rows = t->batch_rows,
                               .method = t->method,
                               .parallel = t->parallel,
                               .metadata = t->metadata,
                               .actor = t->who.name,
                               .job = job,
                               .allow_bucket = lh_catalog_bucket_access,
                               .allow_ctx = &t->who};
        return lh_ingest_db(t->d.catalog, t->d.engine, t->d.buckets, &o, result, err);
    }
    lh_ingest_file_opts o = {.dataset = t->dataset,
                             .bucket = t->bucket,
                             .format = t->format,
                             .mode = t->mode,
                             .src_path = t->path,
                             .src_bytes = t->bytes,
                             .metadata = t->metadata,
                             .source_object = t->source_object,
                             .actor = t->who.name,
                             .on_bad_rows = t->on_bad_rows,
                             .job = job,
                             .allow_bucket = lh_catalog_bucket_access,
                             .allow_ctx = &t->who};
    return lh_ingest_file(t->d.catalog, t->d.engine, t->d.buckets, &o, result, err);
}

static int
run_task(lh_job *job, void *arg, lh_err *err)
{
    json_t *result = NULL;
    int rc = lh_ingest_task_run(arg, job, &result, err);
    if (rc == 0)
        lh_job_set_result(job, result);
    return rc;
}

static void
free_task(void *arg)
{
    lh_ingest_task_free(arg);
}

int
lh_ingest_task_submit(lh_ingest_task *t, char id[LH_JOB_ID_MAX], lh_err *err)
{
    if (t->d.jobs == NULL) {
        lh_ingest_task_free(t);
        return lh_err_set(err, LH_EUNAVAIL, 503, "jobs_unavailable", "no job pool is running");
    }
    return lh_jobs_submit(t->d.jobs, t->db ? "ingest_db" : "ingest", t->who.name, run_task, t,
                          free_task, id, err);
}
