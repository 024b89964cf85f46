/*
 * jobs.c — background jobs on a bounded worker pool.
 *
 * One mutex guards the whole registry: the job list (newest first), the FIFO of queued
 * jobs and every job's mutable fields. Job functions run without the lock and touch
 * their job only through lh_job_progress/lh_job_set_result/lh_job_cancelled, which
 * lock briefly. A job record lives until it is evicted (finished, and more than
 * keep_finished newer finished jobs exist) or the pool stops; running and queued jobs
 * are never evicted, so a worker's pointer stays valid.
 *
 * Cancellation is cooperative: a queued job is cancelled at once; a running job sees
 * lh_job_cancelled() return true and should return LH_ECANCELED at a safe point.
 */
#include "core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lh_job {
    struct lh_job *next; /* registry list, newest first */
    struct lh_job *next_queued;
    char id[LH_JOB_ID_MAX];
    char kind[32];
    char owner[128];
    lh_job_state state;
    atomic_bool cancel_requested;
    int64_t created_us, started_us, finished_us;
    int64_t done, total;
    char unit[16];
    json_t *result;
    lh_err error;
    lh_job_fn fn;
    void *arg;
    void (*free_arg)(void *);
    struct lh_jobs *pool;
};

struct lh_jobs {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t *threads;
    int n_workers;
    int max_queued, keep_finished;
    int n_queued, n_finished;
    bool stopping;
    lh_job *all;
    lh_job *queue_head, *queue_tail;
    uint64_t seq;
};

static const char *state_names[] = {"queued", "running", "succeeded", "failed", "cancelled"};

const char *
lh_job_state_name(lh_job_state s)
{
    return state_names[s];
}

int
lh_job_state_parse(const char *s)
{
    for (int i = 0; i <= LH_JOB_CANCELLED; i++)
        if (strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

static bool
finished(lh_job_state s)
{
    return s == LH_JOB_SUCCEEDED || s == LH_JOB_FAILED || s == LH_JOB_CANCELLED;
}

static void
job_free(lh_job *job)
{
    if (job->free_arg && job->arg)
        job->free_arg(job->arg);
    json_decref(job->result);
    free(job);
}

/* Drop the oldest finished records beyond keep_finished. Caller holds the lock. */
static void
evict_locked(lh_jobs *pool)
{
    if (pool->n_finished <= pool->keep_finished)
        return;
    int seen = 0;
    lh_job **link = &pool->all;
    while (*link) {
        lh_job *job = *link;
        if (finished(job->state) && ++seen > pool->keep_finished) {
            *link = job->next;
            pool->n_finished--;
            job_free(job);
            continue;
        }
        link = &job->next;
    }
}

/* Mark a job finished. Its argument is handed back through *arg_out (with its free
 * function) so the caller can release it after dropping the lock: freeing may close
 * connections or call back into the pool. */
static void
finish_locked(lh_job *job, lh_job_state state, void **arg_out, void (**free_out)(void *))
{
    job->state = state;
    job->finished_us = lh_now_us();
    *arg_out = job->arg;
    *free_out = job->free_arg;
    job->arg = NULL;
    job->pool->n_finished++;
    evict_locked(job->pool);
}

static void
release_arg(void *arg, void (*free_arg)(void *))
{
    if (free_arg && arg)
        free_arg(arg);
}

static void *
worker_main(void *data)
{
    lh_jobs *pool = data;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stopping && pool->queue_head == NULL)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->queue_head == NULL && pool->stopping)
            break;
        lh_job *job = pool->queue_head;
        pool->queue_head = job->next_queued;
        if (pool->queue_head == NULL)
            pool->queue_tail = NULL;
        pool->n_queued--;
        void *arg;
        void (*free_arg)(void *);
        if (atomic_load(&job->cancel_requested)) {
            finish_locked(job, LH_JOB_CANCELLED, &arg, &free_arg);
            pthread_mutex_unlock(&pool->lock);
            release_arg(arg, free_arg);
            pthread_mutex_lock(&pool->lock);
            continue;
        }
        job->state = LH_JOB_RUNNING;
        job->started_us = lh_now_us();
        pthread_mutex_unlock(&pool->lock);

        lh_err err;
        lh_err_clear(&err);
        int rc = job->fn(job, job->arg, &err);

        pthread_mutex_lock(&pool->lock);
        if (rc == 0) {
            finish_locked(job, LH_JOB_SUCCEEDED, &arg, &free_arg);
        } else if (rc == LH_ECANCELED) {
            finish_locked(job, LH_JOB_CANCELLED, &arg, &free_arg);
        } else {
            if (err.code[0] == '\0')
                lh_err_set(&err, rc, 0, "job_failed", "job failed");
            job->error = err;
            finish_locked(job, LH_JOB_FAILED, &arg, &free_arg);
        }
        pthread_mutex_unlock(&pool->lock);
        release_arg(arg, free_arg);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

int
lh_jobs_start(int n_workers, int max_queued, int keep_finished, lh_jobs **out, lh_err *err)
{
    lh_jobs *pool = lh_calloc(1, sizeof *pool);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->max_queued = max_queued;
    pool->keep_finished = keep_finished;
    pool->threads = lh_calloc((size_t)n_workers, sizeof *pool->threads);
    for (int i = 0; i < n_workers; i++) {
        if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0) {
            pool->n_workers = i;
            lh_jobs_stop(pool);
            return lh_err_set(err, LH_EIO, 500, "thread_failed", "could not start job workers");
        }
        pool->n_workers = i + 1;
    }
    *out = pool;
    return 0;
}

void
lh_jobs_stop(lh_jobs *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    for (lh_job *job = pool->all; job; job = job->next)
        atomic_store(&job->cancel_requested, true);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->n_workers; i++)
        pthread_join(pool->threads[i], NULL);
    for (lh_job *job = pool->all; job;) {
        lh_job *next = job->next;
        job_free(job);
        job = next;
    }
    free(pool->threads);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

int
lh_jobs_submit(lh_jobs *pool, const char *kind, const char *owner, lh_job_fn fn, void *arg,
               void (*free_arg)(void *), char id_out[LH_JOB_ID_MAX], lh_err *err)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping || pool->n_queued >= pool->max_queued) {
        bool stopping = pool->stopping;
        int max = pool->max_queued;
        pthread_mutex_unlock(&pool->lock);
        if (free_arg && arg)
            free_arg(arg);
        if (stopping)
            return lh_err_set(err, LH_EUNAVAIL, 503, "shutting_down",
                              "the server is shutting down");
        lh_err_set(err, LH_EUNAVAIL, 503, "job_queue_full", "too many jobs are waiting");
        lh_err_detail(err, "%d jobs are queued ([jobs] max_queued)", max);
        lh_err_hint(err, "retry later or cancel queued jobs");
        return LH_EUNAVAIL;
    }
    lh_job *job = lh_calloc(1, sizeof *job);
    job->pool = pool;
    job->fn = fn;
    job->arg = arg;
    job->free_arg = free_arg;
    job->state = LH_JOB_QUEUED;
    job->created_us = lh_now_us();
    job->total = -1; /* unknown until the job reports it */
    atomic_init(&job->cancel_requested, false);
    snprintf(job->kind, sizeof job->kind, "%s", kind);
    snprintf(job->owner, sizeof job->owner, "%s", owner ? owner : "");
    /* ids sort by creation and are unique within a run; the random tail keeps them
     * unguessable-ish across restarts so an old id never names a new job */
    char hex[9];
    lh_random_hex(hex, 4);
    snprintf(job->id, sizeof job->id, "job_%06llu_%s", (unsigned long long)++pool->seq, hex);
    job->next = pool->all;
    pool->all = job;
    if (pool->queue_tail)
        pool->queue_tail->next_queued = job;
    else
        pool->queue_head = job;
    pool->queue_tail = job;
    pool->n_queued++;
    memcpy(id_out, job->id, LH_JOB_ID_MAX);
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

static lh_job *
find_locked(lh_jobs *pool, const char *id)
{
    for (lh_job *job = pool->all; job; job = job->next)
        if (strcmp(job->id, id) == 0)
            return job;
    return NULL;
}

static json_t *
job_json_locked(const lh_job *job)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(job->id));
    json_object_set_new(j, "kind", json_string(job->kind));
    json_object_set_new(j, "owner", json_string(job->owner));
    json_object_set_new(j, "state", json_string(state_names[job->state]));
    json_t *progress = json_object();
    json_object_set_new(progress, "done", json_integer(job->done));
    json_object_set_new(progress, "total",
                        job->total >= 0 ? json_integer(job->total) : json_null());
    json_object_set_new(progress, "unit", json_string(job->unit));
    json_object_set_new(j, "progress", progress);
    json_object_set_new(j, "created_at", lh_json_time(job->created_us));
    json_object_set_new(j, "started_at", lh_json_time(job->started_us));
    json_object_set_new(j, "finished_at", lh_json_time(job->finished_us));
    json_object_set_new(j, "cancel_requested", json_boolean(atomic_load(&job->cancel_requested)));
    json_object_set_new(j, "result", job->result ? json_deep_copy(job->result) : json_null());
    if (job->state == LH_JOB_FAILED) {
        json_t *e = lh_err_to_json(&job->error);
        json_object_set(j, "error", json_object_get(e, "error"));
        json_decref(e);
    } else {
        json_object_set_new(j, "error", json_null());
    }
    return j;
}

json_t *
lh_jobs_get_json(lh_jobs *pool, const char *id)
{
    pthread_mutex_lock(&pool->lock);
    lh_job *job = find_locked(pool, id);
    json_t *j = job ? job_json_locked(job) : NULL;
    pthread_mutex_unlock(&pool->lock);
    return j;
}

bool
lh_jobs_owner(lh_jobs *pool, const char *id, char *owner_out, size_t owner_size)
{
    pthread_mutex_lock(&pool->lock);
    lh_job *job = find_locked(pool, id);
    if (job)
        snprintf(owner_out, owner_size, "%s", job->owner);
    pthread_mutex_unlock(&pool->lock);
    return job != NULL;
}

json_t *
lh_jobs_list_json(lh_jobs *pool, const char *owner, int state)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&pool->lock);
    for (lh_job *job = pool->all; job; job = job->next) {
        if (owner && strcmp(owner, job->owner) != 0)
            continue;
        if (state >= 0 && (int)job->state != state)
            continue;
        json_array_append_new(arr, job_json_locked(job));
    }
    pthread_mutex_unlock(&pool->lock);
    return arr;
}

int
lh_jobs_cancel(lh_jobs *pool, const char *id, lh_err *err)
{
    void *arg = NULL;
    void (*free_arg)(void *) = NULL;
    pthread_mutex_lock(&pool->lock);
    lh_job *job = find_locked(pool, id);
    int rc = 0;
    if (job == NULL) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "job_not_found", "no job with id '%s'", id);
    } else if (finished(job->state)) {
        rc = lh_err_set(err, LH_EINVAL, 409, "job_finished", "job '%s' has already %s", id,
                        state_names[job->state]);
    } else {
        atomic_store(&job->cancel_requested, true);
        if (job->state == LH_JOB_QUEUED) {
            /* take it out of the queue now so it stops holding a max_queued slot */
            lh_job **link = &pool->queue_head;
            lh_job *prev = NULL;
            while (*link && *link != job) {
                prev = *link;
                link = &(*link)->next_queued;
            }
            if (*link == job) {
                *link = job->next_queued;
                if (pool->queue_tail == job)
                    pool->queue_tail = prev;
                pool->n_queued--;
                finish_locked(job, LH_JOB_CANCELLED, &arg, &free_arg);
            }
        }
    }
    pthread_mutex_unlock(&pool->lock);
    release_arg(arg, free_arg);
    return rc;
}

void
lh_job_progress(lh_job *job, int64_t done, int64_t total, const char *unit)
{
    pthread_mutex_lock(&job->pool->lock);
    job->done = done;
    job->total = total;
    if (unit)
        snprintf(job->unit, sizeof job->unit, "%s", unit);
    pthread_mutex_unlock(&job->pool->lock);
}

bool
lh_job_cancelled(const lh_job *job)
{
    return atomic_load(&job->cancel_requested);
}

void
lh_job_set_result(lh_job *job, json_t *result)
{
    pthread_mutex_lock(&job->pool->lock);
    json_decref(job->result);
    job->result = result;
    pthread_mutex_unlock(&job->pool->lock);
}

const char *
lh_job_id(const lh_job *job)
{
    return job->id;
}

bool
lh_jobs_visible(lh_jobs *jobs, const char *id, const char *name, bool all)
{
    char owner[128];
    if (!lh_jobs_owner(jobs, id, owner, sizeof owner))
        return false;
    return all || strcmp(owner, name) == 0;
}

int
lh_jobs_not_found(lh_err *err, const char *id)
{
    lh_err_set(err, LH_ENOTFOUND, 404, "job_not_found", "no job with id '%s'", id);
    lh_err_hint(err, "GET /jobs lists the jobs you can see; records last until restart");
    return LH_ENOTFOUND;
}
