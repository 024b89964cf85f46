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

static lh_ingest_deps
ingest_deps(const lh_req *req)
{
    return (lh_ingest_deps){.catalog = req->srv->catalog,
                            .engine = req->srv->internal_engine,
                            .buckets = req->srv->buckets,
                            .jobs = req->srv->jobs,
                            .secrets = req->srv->secrets};
}

/* Answer a checked ingest: queued as a job (202 with its record) or run now. */
static int
answer(lh_req *req, lh_resp *resp, lh_ingest_task *t, bool async)
{
    lh_err err;
    if (async) {
        char id[LH_JOB_ID_MAX];
        if (lh_ingest_task_submit(t, id, &err) != 0)
            return lh_resp_error(resp, &err);
        return lh_http__answer_job(req, resp, id, NULL);
    }
    json_t *result = NULL;
    int rc = lh_ingest_task_run(t, NULL, &result, &err);
    lh_ingest_task_free(t);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, json_is_true(json_object_get(result, "unchanged")) ? 200 : 201,
                        result);
}

/* ---- POST /ingest/file -------------------------------------------------------------------- */

static const char *const META_PARAMS[] = {"owner",           "sensitivity",   "description", "tags",
                                          "freshness_sla_s", "source_system", "primary_key", NULL};
static const char *const OTHER_PARAMS[] = {"dataset", "format",        "mode",        "bucket",
                                           "async",   "source_object", "on_bad_rows", NULL};

/* The query's parameters as the ingest module takes them: lists split at commas, a
 * whole-number freshness as a number (anything else is left for the module to refuse). */
static json_t *
params_from_query(lh_req *req)
{
    json_t *p = json_object();
    for (const char *const *k = OTHER_PARAMS; *k; k++) {
        const char *v = lh_req_query(req, *k);
        if (v && strcmp(*k, "async") != 0)
            json_object_set_new(p, *k, lh_json_text(v));
    }
    for (const char *const *k = META_PARAMS; *k; k++) {
        const char *v = lh_req_query(req, *k);
        if (v == NULL)
            continue;
        if (strcmp(*k, "tags") == 0 || strcmp(*k, "primary_key") == 0) {
            json_t *list = json_array();
            char *copy = lh_strdup(v);
            for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save))
                if (*tok)
                    json_array_append_new(list, lh_json_text(tok));
            free(copy);
            json_object_set_new(p, *k, list);
        } else if (strcmp(*k, "freshness_sla_s") == 0) {
            char *end = NULL;
            long long n = strtoll(v, &end, 10);
            json_object_set_new(p, *k, *v && *end == '\0' ? json_integer(n) : lh_json_text(v));
        } else {
            json_object_set_new(p, *k, lh_json_text(v));
        }
    }
    return p;
}

int
lh_h_ingest_file(lh_req *req, lh_resp *resp)
{
    lh_err err;
    if (lh_req_check_query(req, META_PARAMS, OTHER_PARAMS, "see docs/API.md, POST /ingest/file",
                           &err) != 0)
        return lh_resp_error(resp, &err);
    const char *async = lh_req_query(req, "async");
    if (async && strcmp(async, "true") && strcmp(async, "false")) {
        lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "'async' must be true or false");
        return lh_resp_error(resp, &err);
    }
    json_t *params = params_from_query(req);
    lh_ingest_deps d = ingest_deps(req);
    lh_ingest_task *t = NULL;
    int rc = lh_ingest_file_prepare(&d, req->principal, params, &req->body_path, req->body_fd_len,
                                    &t, &err);
    json_decref(params);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return answer(req, resp, t, async && strcmp(async, "true") == 0);
}

/* ---- POST /ingest/db ------------------------------------------------------------------------ */

int
lh_h_ingest_db(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    const json_t *async = json_object_get(body, "async");
    bool is_async = json_is_true(async);
    int rc = 0;
    if (async && !json_is_boolean(async))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "'async' must be true or false");
    json_object_del(body, "async");
    lh_ingest_deps d = ingest_deps(req);
    lh_ingest_task *t = NULL;
    if (rc == 0)
        rc = lh_ingest_db_prepare(&d, req->principal, req->config, body, &t, &err);
    lh_json_wipe(body); /* the DSN may hold a password: the parsed body and the raw one */
    json_decref(body);
    lh_wipe(req->body.data, req->body.len);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return answer(req, resp, t, is_async);
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
    int rc = lh_json_check_fields(body, fields,
                                  "the body takes upsert, delete, source and workspace_id", &err);
    const json_t *upsert = json_object_get(body, "upsert"), *del = json_object_get(body, "delete");
    const char *source = NULL, *workspace = NULL;
    json_t *result = NULL;
    if (rc == 0 && ((upsert && !json_is_array(upsert)) || (del && !json_is_array(del))))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'upsert' and 'delete' must be arrays of objects");
    if (rc != 0 || (rc = lh_json_opt_string(body, "source", &source, &err)) != 0 ||
        (rc = lh_json_opt_string(body, "workspace_id", &workspace, &err)) != 0)
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
