/*
 * rows_as.c — a principal's change of rows, whichever door it came through (HTTP
 * POST /datasets/{name}/rows, gRPC Rows/Change): the request's bounds, the buckets the
 * principal may use, the change itself (lh_ingest_rows), and the compaction a dataset
 * gets in the background once it holds [catalog] compact_after_deltas delta files.
 */
#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>

typedef struct compact_job {
    lh_rows_deps deps;
    char *dataset, *actor;
} compact_job;

static void
compact_job_free(void *arg)
{
    compact_job *j = arg;
    free(j->dataset);
    free(j->actor);
    free(j);
}

static int
run_compact(lh_job *job, void *arg, lh_err *err)
{
    compact_job *j = arg;
    json_t *result = NULL;
    int rc = lh_ingest_compact(j->deps.catalog, j->deps.engine, j->deps.buckets, j->dataset,
                               j->actor, true, &result, err);
    if (rc == 0)
        lh_job_set_result(job, result);
    return rc;
}

static void
maybe_compact(const lh_rows_deps *d, const lh_principal *who, const lh_config *cfg,
              const char *dataset, const json_t *result)
{
    int64_t after = lh_config_int(cfg, "catalog.compact_after_deltas");
    if (d->jobs == NULL || after <= 0 ||
        json_integer_value(json_object_get(result, "deltas")) < after)
        return;
    compact_job *j = lh_calloc(1, sizeof *j);
    j->deps = *d;
    j->dataset = lh_strdup(dataset);
    j->actor = lh_strdup("lakehouse");
    char id[LH_JOB_ID_MAX];
    lh_err err;
    if (lh_jobs_submit(d->jobs, "compact", who->name, run_compact, j, compact_job_free, id, &err) !=
        0)
        lh_log(LH_LOG_WARN, NULL, NULL, "automatic compaction of '%s' not started: %s", dataset,
               err.message);
}

int
lh_ingest_rows_as(const lh_rows_deps *d, const lh_principal *who, const lh_config *cfg,
                  lh_rows_opts *o, json_t **result, lh_err *err)
{
    *result = NULL;
    size_t n = json_array_size(o->upsert) + json_array_size(o->deletes);
    int64_t max_rows = lh_config_int(cfg, "ingest.max_rows_per_request");
    if (n == 0)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "nothing to change: give rows in 'upsert' or keys in 'delete'");
    if ((int64_t)n > max_rows) {
        lh_err_set(err, LH_ETOOBIG, 413, "too_many_rows",
                   "%zu rows in one request; the limit is %lld", n, (long long)max_rows);
        lh_err_hint(err, "split the change, or raise [ingest] max_rows_per_request");
        return LH_ETOOBIG;
    }
    o->actor = who->name;
    o->allow_bucket = lh_catalog_bucket_access;
    o->allow_ctx = (void *)who;
    int rc = lh_ingest_rows(d->catalog, d->engine, d->buckets, o, result, err);
    if (rc == 0)
        maybe_compact(d, who, cfg, o->dataset, *result);
    return rc;
}
