/*
 * vjobs.c — a build or a trial as a job on the pool (the plumbing every door shares): the
 * job runs it, sets its result, and frees it when done or when it could not be queued.
 */
#include "vector/vector.h"

#include <stdlib.h>

typedef struct vec_job {
    lh_vbuild *build; /* one of the two */
    lh_vtrial *trial;
} vec_job;

static int
run_vec_job(lh_job *job, void *arg, lh_err *err)
{
    vec_job *j = arg;
    json_t *result = NULL;
    int rc = j->build ? lh_vbuild_run(j->build, job, &result, err)
                      : lh_vtrial_run(j->trial, job, &result, err);
    if (rc == 0)
        lh_job_set_result(job, result);
    return rc;
}

static void
vec_job_free(void *arg)
{
    vec_job *j = arg;
    lh_vbuild_free(j->build);
    lh_vtrial_free(j->trial);
    free(j);
}

int
lh_vectors_submit(lh_jobs *jobs, const char *owner, lh_vbuild *b, lh_vtrial *t,
                  char id[LH_JOB_ID_MAX], lh_err *err)
{
    vec_job *j = lh_calloc(1, sizeof *j);
    j->build = b;
    j->trial = t;
    return lh_jobs_submit(jobs, b ? "vector_index" : "hnsw_trial", owner, run_vec_job, j,
                          vec_job_free, id, err);
}
