/*
 * h_jobs.c — the background job API: list, inspect, cancel, and the diagnostic
 * "sleep" job that lets an operator check the worker pool end to end.
 *
 * Visibility: an admin sees every job; anyone else sees only the jobs they started.
 * A job that is not visible answers 404, exactly like one that does not exist.
 */
#include "http/http_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool
is_admin(const lh_req *req)
{
    return (req->principal->roles & LH_ROLE_ADMIN) != 0;
}

static bool
visible(lh_req *req, const char *id)
{
    return lh_jobs_visible(req->srv->jobs, id, req->principal->name, is_admin(req));
}

static int
not_found(lh_resp *resp, const char *id)
{
    lh_err err;
    lh_jobs_not_found(&err, id);
    return lh_resp_error(resp, &err);
}

int
lh_h_jobs_list(lh_req *req, lh_resp *resp)
{
    lh_err err;
    const char *state_q = lh_req_query(req, "state");
    const char *owner_q = lh_req_query(req, "owner");
    int state = -1;
    if (state_q && (state = lh_job_state_parse(state_q)) < 0) {
        lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "unknown job state '%s'", state_q);
        lh_err_hint(&err, "state is one of queued, running, succeeded, failed, cancelled");
        return lh_resp_error(resp, &err);
    }
    const char *owner = is_admin(req) ? owner_q : req->principal->name;
    json_t *body = json_object();
    json_object_set_new(body, "jobs", lh_jobs_list_json(req->srv->jobs, owner, state));
    return lh_resp_json(resp, 200, body);
}

int
lh_h_jobs_get(lh_req *req, lh_resp *resp)
{
    const char *id = lh_req_param(req, "id");
    json_t *job = visible(req, id) ? lh_jobs_get_json(req->srv->jobs, id) : NULL;
    if (job == NULL)
        return not_found(resp, id);
    return lh_resp_json(resp, 200, job);
}

int
lh_h_jobs_cancel(lh_req *req, lh_resp *resp)
{
    lh_err err;
    const char *id = lh_req_param(req, "id");
    if (!visible(req, id))
        return not_found(resp, id);
    if (lh_jobs_cancel(req->srv->jobs, id, &err) != 0)
        return lh_resp_error(resp, &err);
    json_t *job = lh_jobs_get_json(req->srv->jobs, id);
    return lh_resp_json(resp, 202, job ? job : json_object());
}

/* ---- the diagnostic sleep job ------------------------------------------------------------ */

typedef struct sleep_arg {
    int64_t total_ms;
} sleep_arg;

static int
run_sleep(lh_job *job, void *arg, lh_err *err)
{
    const sleep_arg *a = arg;
    int64_t done = 0;
    while (done < a->total_ms) {
        if (lh_job_cancelled(job))
            return LH_ECANCELED;
        int64_t step = a->total_ms - done < 20 ? a->total_ms - done : 20;
        struct timespec ts = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        done += step;
        lh_job_progress(job, done, a->total_ms, "ms");
    }
    lh_job_set_result(job, json_pack("{s:I}", "slept_ms", (json_int_t)done));
    return 0;
}

int
lh_h_jobs_submit(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    static const char *const fields[] = {"kind", "seconds", NULL};
    if (lh_json_check_fields(body, fields, "POST /jobs takes {\"kind\": \"sleep\", \"seconds\": N}",
                             &err) != 0) {
        json_decref(body);
        return lh_resp_error(resp, &err);
    }
    json_t *kind = json_object_get(body, "kind");
    json_t *seconds = json_object_get(body, "seconds");
    int rc = 0;
    if (!json_is_string(kind)) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "'kind' must be a string");
    } else if (strcmp(json_string_value(kind), "sleep") != 0) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "unknown job kind '%s'",
                        json_string_value(kind));
        lh_err_hint(&err, "jobs of other kinds are started by their own endpoints (ingest, "
                          "index builds); POST /jobs only starts the diagnostic 'sleep' job");
    } else if (!json_is_number(seconds) || !isfinite(json_number_value(seconds)) ||
               json_number_value(seconds) < 0 || json_number_value(seconds) > 3600) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'seconds' must be a number from 0 to 3600");
    }
    if (rc != 0) {
        json_decref(body);
        return lh_resp_error(resp, &err);
    }
    sleep_arg *arg = lh_malloc(sizeof *arg);
    arg->total_ms = (int64_t)llround(json_number_value(seconds) * 1000.0);
    json_decref(body);
    return lh_http__submit_job(req, resp, "sleep", run_sleep, arg, free, NULL);
}

int
lh_http__submit_job(lh_req *req, lh_resp *resp, const char *kind, lh_job_fn fn, void *arg,
                    void (*free_arg)(void *), json_t *wrap)
{
    lh_err err;
    char id[LH_JOB_ID_MAX];
    if (lh_jobs_submit(req->srv->jobs, kind, req->principal->name, fn, arg, free_arg, id, &err) !=
        0) {
        json_decref(wrap);
        return lh_resp_error(resp, &err);
    }
    return lh_http__answer_job(req, resp, id, wrap);
}

int
lh_http__answer_job(lh_req *req, lh_resp *resp, const char *id, json_t *wrap)
{
    lh_resp_header(resp, "Location", lh_arena_printf(req->arena, "/jobs/%s", id));
    /* the job may already be done, its record still there (kept until restart) */
    json_t *job = lh_jobs_get_json(req->srv->jobs, id);
    if (wrap == NULL)
        return lh_resp_json(resp, 202, job ? job : json_pack("{s:s}", "id", id));
    json_object_set_new(wrap, "job_id", json_string(id));
    json_object_set_new(wrap, "job", job ? job : json_null());
    return lh_resp_json(resp, 202, wrap);
}
