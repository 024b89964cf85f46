/*
 * svc_jobs.c — lakehouse.v1.Jobs (list, get, cancel, watch) on the job pool's own
 * functions, with the visibility GET /jobs has (lh_jobs_visible: one's own jobs, or all
 * for an admin); and the watching every job-starting method streams (index builds,
 * PostgreSQL ingest).
 */
#include "rpc/rpc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lakehouse/v1/jobs.pb-c.h"

#define WATCH_MS 100 /* how often a watched job's record is read */

static char *
text(const json_t *v)
{
    return (char *)(json_is_string(v) ? json_string_value(v) : "");
}

/* A job's record as a JobUpdate: strings borrowed from job, the result a new Struct
 * (update_clear frees it). */
static void
update_of(const json_t *job, Lakehouse__V1__JobUpdate *u)
{
    lakehouse__v1__job_update__init(u);
    const json_t *p = json_object_get(job, "progress"), *e = json_object_get(job, "error");
    u->job_id = text(json_object_get(job, "id"));
    u->kind = text(json_object_get(job, "kind"));
    u->state = text(json_object_get(job, "state"));
    u->done = json_integer_value(json_object_get(p, "done"));
    u->total = json_integer_value(json_object_get(p, "total"));
    u->unit = text(json_object_get(p, "unit"));
    u->error_code = text(json_object_get(e, "code"));
    u->error_message = text(json_object_get(e, "message"));
    u->owner = text(json_object_get(job, "owner"));
    u->created_at = text(json_object_get(job, "created_at"));
    u->started_at = text(json_object_get(job, "started_at"));
    u->finished_at = text(json_object_get(job, "finished_at"));
    const json_t *result = json_object_get(job, "result");
    if (json_is_object(result))
        u->result = lh_grpc__struct(result);
}

static void
update_clear(Lakehouse__V1__JobUpdate *u)
{
    if (u->result)
        protobuf_c_message_free_unpacked(&u->result->base, NULL);
    u->result = NULL;
}

static bool
is_admin(const lh_gcall *c)
{
    return (c->principal->roles & LH_ROLE_ADMIN) != 0;
}

/* The record of a job the caller may see (new), or 404 as for one that does not exist. */
static json_t *
visible_job(lh_gcall *c, const char *id, lh_err *err)
{
    json_t *job = lh_jobs_visible(c->deps->jobs, id, c->principal->name, is_admin(c))
                      ? lh_jobs_get_json(c->deps->jobs, id)
                      : NULL;
    if (job == NULL)
        lh_jobs_not_found(err, id);
    return job;
}

static bool
over(const char *state)
{
    return state && lh_job_state_parse(state) >= LH_JOB_SUCCEEDED; /* or failed, cancelled */
}

int
lh_grpc__watch_job(lh_gcall *c, const char *id, lh_gstream *s, lh_err *err)
{
    char last[512] = "";
    for (;;) {
        if (lh_grpc__gone(s)) /* the watching stops; the job goes on */
            return lh_err_set(err, LH_ECANCELED, 499, "client_gone", "the client went away");
        json_t *job = lh_jobs_get_json(c->deps->jobs, id);
        if (job == NULL) /* records last until restart: only a stopping pool drops them */
            return lh_err_set(err, LH_EUNAVAIL, 503, "shutting_down", "job %s is gone", id);
        const char *state = json_string_value(json_object_get(job, "state"));
        const json_t *p = json_object_get(job, "progress");
        bool ended = over(state);
        char now[512];
        snprintf(now, sizeof now, "%s %lld %lld %s", state ? state : "",
                 (long long)json_integer_value(json_object_get(p, "done")),
                 (long long)json_integer_value(json_object_get(p, "total")),
                 text(json_object_get(p, "unit")));
        int rc = 0;
        if (ended || strcmp(now, last) != 0) {
            Lakehouse__V1__JobUpdate u;
            update_of(job, &u);
            rc = lh_grpc__send(s, &u.base, err);
            update_clear(&u);
            memcpy(last, now, sizeof last);
        }
        json_decref(job);
        if (rc != 0 || ended)
            return rc;
        usleep(WATCH_MS * 1000);
    }
}

static int
reply_job(const json_t *job, uint8_t **out, size_t *out_len)
{
    Lakehouse__V1__JobUpdate u;
    update_of(job, &u);
    lh_grpc__pack(&u.base, out, out_len);
    update_clear(&u);
    return 0;
}

static int
list_jobs(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
          lh_err *err)
{
    Lakehouse__V1__ListJobsRequest *req =
        lakehouse__v1__list_jobs_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.ListJobsRequest");
    int state = -1, rc = 0;
    if (req->state[0] && (state = lh_job_state_parse(req->state)) < 0) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "unknown job state '%s'", req->state);
        lh_err_hint(err, "state is one of queued, running, succeeded, failed, cancelled");
        rc = LH_EINVAL;
    }
    json_t *jobs = NULL;
    if (rc == 0)
        jobs = lh_jobs_list_json(
            c->deps->jobs, is_admin(c) ? (req->owner[0] ? req->owner : NULL) : c->principal->name,
            state);
    lakehouse__v1__list_jobs_request__free_unpacked(req, NULL);
    if (rc != 0)
        return rc;
    size_t n = json_array_size(jobs);
    Lakehouse__V1__JobUpdate *us = lh_calloc(n ? n : 1, sizeof *us),
                             **ps = lh_calloc(n ? n : 1, sizeof *ps);
    for (size_t i = 0; i < n; i++) {
        update_of(json_array_get(jobs, i), &us[i]);
        ps[i] = &us[i];
    }
    Lakehouse__V1__ListJobsResponse res = LAKEHOUSE__V1__LIST_JOBS_RESPONSE__INIT;
    res.jobs = ps;
    res.n_jobs = n;
    lh_grpc__pack(&res.base, out, out_len);
    for (size_t i = 0; i < n; i++)
        update_clear(&us[i]);
    free(us);
    free(ps);
    json_decref(jobs);
    return 0;
}

/* The id of a JobRequest (new), or NULL with err. */
static char *
job_id_of(const uint8_t *in, size_t in_len, lh_err *err)
{
    Lakehouse__V1__JobRequest *req = lakehouse__v1__job_request__unpack(NULL, in_len, in);
    if (req == NULL) {
        lh_grpc__bad_message(err, "lakehouse.v1.JobRequest");
        return NULL;
    }
    char *id = NULL;
    if (req->id[0] == '\0')
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "'id' is required");
    else
        id = lh_strdup(req->id);
    lakehouse__v1__job_request__free_unpacked(req, NULL);
    return id;
}

static int
get_job(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len, lh_err *err)
{
    char *id = job_id_of(in, in_len, err);
    json_t *job = id ? visible_job(c, id, err) : NULL;
    free(id);
    if (job == NULL)
        return err->rc;
    reply_job(job, out, out_len);
    json_decref(job);
    return 0;
}

static int
cancel_job(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
           lh_err *err)
{
    char *id = job_id_of(in, in_len, err);
    json_t *job = id ? visible_job(c, id, err) : NULL;
    int rc = job ? lh_jobs_cancel(c->deps->jobs, id, err) : err->rc;
    json_decref(job);
    if (rc == 0) {
        job = lh_jobs_get_json(c->deps->jobs, id);
        reply_job(job, out, out_len);
        json_decref(job);
    }
    free(id);
    return rc;
}

static int
watch_job(lh_gcall *c, const uint8_t *in, size_t in_len, lh_gstream *s, lh_err *err)
{
    char *id = job_id_of(in, in_len, err);
    json_t *job = id ? visible_job(c, id, err) : NULL;
    int rc = job ? lh_grpc__watch_job(c, id, s, err) : err->rc;
    json_decref(job);
    free(id);
    return rc;
}

const lh_gmethod lh_grpc__jobs[] = {
    {"/lakehouse.v1.Jobs/ListJobs", LH_ALLOW_ANY, list_jobs, NULL, NULL, 0, NULL},
    {"/lakehouse.v1.Jobs/GetJob", LH_ALLOW_ANY, get_job, NULL, NULL, 0, NULL},
    {"/lakehouse.v1.Jobs/CancelJob", LH_ALLOW_ANY, cancel_job, NULL, NULL, 0, NULL},
    {"/lakehouse.v1.Jobs/WatchJob", LH_ALLOW_ANY, NULL, watch_job, NULL, 0, NULL},
};
const size_t lh_grpc__n_jobs = sizeof lh_grpc__jobs / sizeof lh_grpc__jobs[0];
