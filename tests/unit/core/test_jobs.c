/*
 * test_jobs.c — the background job pool (src/core/jobs.c): success with a result,
 * failure with the error body, cancellation of queued and running jobs, the bounded
 * queue, eviction of old records, listing filters and stopping with work in flight.
 *
 * Jobs that must stay running wait on a gate the test opens; every wait is bounded so a
 * broken pool fails the test instead of hanging it.
 */
#include "testutil.h"

#include "core/core.h"

#include <stdatomic.h>
#include <time.h>

#define WAIT_LIMIT_US (10 * 1000 * 1000)

static atomic_int n_freed; /* free_job_arg calls */
static atomic_int n_ran;   /* job_count_run calls */

typedef struct job_arg {
    int value;
    atomic_bool entered; /* set by the job when it starts */
    atomic_bool open;    /* the gate it waits on, for job_gate */
} job_arg;

static job_arg *
new_arg(int value)
{
    job_arg *a = calloc(1, sizeof *a);
    assert_non_null(a);
    a->value = value;
    atomic_init(&a->entered, false);
    atomic_init(&a->open, false);
    return a;
}

static void
free_job_arg(void *p)
{
    atomic_fetch_add(&n_freed, 1);
    free(p);
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void
reset_counters(void)
{
    atomic_store(&n_freed, 0);
    atomic_store(&n_ran, 0);
}

/* ---- job functions ------------------------------------------------------------------- */

static int
job_succeed(lh_job *job, void *arg, lh_err *err)
{
    job_arg *a = arg;
    lh_job_progress(job, 3, 3, "rows");
    lh_job_set_result(job,
                      json_pack("{s:i,s:s}", "answer", a ? a->value : 0, "id", lh_job_id(job)));
    return 0;
}

static int
job_count_run(lh_job *job, void *arg, lh_err *err)
{
    atomic_fetch_add(&n_ran, 1);
    return 0;
}

static int
job_fail_with_err(lh_job *job, void *arg, lh_err *err)
{
    lh_err_set(err, LH_EINVAL, 0, "bad_input", "bad row %d", 7);
    lh_err_detail(err, "column %s", "x");
    return LH_EINVAL;
}

static int
job_fail_plain(lh_job *job, void *arg, lh_err *err)
{
    return LH_EIO;
}

/* Runs until the gate opens, ignoring cancellation (arg: job_arg, not freed by the pool). */
static int
job_gate(lh_job *job, void *arg, lh_err *err)
{
    job_arg *a = arg;
    atomic_store(&a->entered, true);
    int64_t deadline = lh_mono_us() + WAIT_LIMIT_US;
    while (!atomic_load(&a->open) && lh_mono_us() < deadline)
        sleep_ms(1);
    return 0;
}

/* Runs until cancelled, reporting progress. */
static int
job_poll_cancel(lh_job *job, void *arg, lh_err *err)
{
    job_arg *a = arg;
    atomic_store(&a->entered, true);
    int64_t deadline = lh_mono_us() + WAIT_LIMIT_US;
    for (int64_t done = 0; lh_mono_us() < deadline; done++) {
        lh_job_progress(job, done, -1, "steps");
        if (lh_job_cancelled(job))
            return LH_ECANCELED;
        sleep_ms(1);
    }
    return lh_err_set(err, LH_ETIMEOUT, 0, "test_timeout", "never cancelled");
}

/* ---- helpers -------------------------------------------------------------------------- */

static const char *
state_of(const json_t *j)
{
    return json_string_value(json_object_get(j, "state"));
}

/* Wait until job id reaches state; returns its JSON (json_decref). */
static json_t *
wait_state(lh_jobs *jobs, const char *id, const char *state)
{
    int64_t deadline = lh_mono_us() + WAIT_LIMIT_US;
    for (;;) {
        json_t *j = lh_jobs_get_json(jobs, id);
        assert_non_null(j);
        if (strcmp(state_of(j), state) == 0)
            return j;
        if (lh_mono_us() > deadline) {
            print_error("job %s is %s, expected %s\n", id, state_of(j), state);
            json_decref(j);
            fail();
        }
        json_decref(j);
        sleep_ms(1);
    }
}

static void
wait_flag(atomic_bool *flag)
{
    int64_t deadline = lh_mono_us() + WAIT_LIMIT_US;
    while (!atomic_load(flag)) {
        assert_true(lh_mono_us() < deadline);
        sleep_ms(1);
    }
}

static void
wait_freed(int n)
{
    int64_t deadline = lh_mono_us() + WAIT_LIMIT_US;
    while (atomic_load(&n_freed) < n) {
        assert_true(lh_mono_us() < deadline);
        sleep_ms(1);
    }
    assert_int_equal(atomic_load(&n_freed), n);
}

static void
submit_ok(lh_jobs *jobs, const char *owner, lh_job_fn fn, void *arg, void (*free_arg)(void *),
          char id[LH_JOB_ID_MAX])
{
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_jobs_submit(jobs, "test", owner, fn, arg, free_arg, id, &err);
    if (rc != 0)
        print_error("submit: %s\n", err.message);
    assert_int_equal(rc, 0);
}

static bool
is_timestamp(const json_t *v)
{
    const char *s = json_string_value(v);
    return s && strlen(s) == 24 && s[10] == 'T' && s[23] == 'Z';
}

/* ---- tests -------------------------------------------------------------------------------- */

static void
test_succeeds_with_result(void **state)
{
    reset_counters();
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(2, 8, 10, &jobs, &err), 0);
    char id[LH_JOB_ID_MAX];
    assert_int_equal(
        lh_jobs_submit(jobs, "ingest", "alice", job_succeed, new_arg(42), free_job_arg, id, &err),
        0);
    assert_prefix(id, "job_000001_");
    assert_int_equal(strlen(id), 19);

    json_t *j = wait_state(jobs, id, "succeeded");
    assert_string_equal(json_string_value(json_object_get(j, "id")), id);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "ingest");
    assert_string_equal(json_string_value(json_object_get(j, "owner")), "alice");
    json_t *progress = json_object_get(j, "progress");
    assert_int_equal(json_integer_value(json_object_get(progress, "done")), 3);
    assert_int_equal(json_integer_value(json_object_get(progress, "total")), 3);
    assert_string_equal(json_string_value(json_object_get(progress, "unit")), "rows");
    json_t *result = json_object_get(j, "result");
    assert_int_equal(json_integer_value(json_object_get(result, "answer")), 42);
    assert_string_equal(json_string_value(json_object_get(result, "id")), id);
    assert_true(json_is_null(json_object_get(j, "error")));
    assert_true(json_is_false(json_object_get(j, "cancel_requested")));
    assert_true(is_timestamp(json_object_get(j, "created_at")));
    assert_true(is_timestamp(json_object_get(j, "started_at")));
    assert_true(is_timestamp(json_object_get(j, "finished_at")));
    json_decref(j);
    /* the argument is released as soon as the job is done */
    assert_int_equal(atomic_load(&n_freed), 1);

    char owner[128];
    assert_true(lh_jobs_owner(jobs, id, owner, sizeof owner));
    assert_string_equal(owner, "alice");
    assert_false(lh_jobs_owner(jobs, "job_999999_00000000", owner, sizeof owner));
    assert_null(lh_jobs_get_json(jobs, "job_999999_00000000"));

    /* ids count up; a NULL owner is stored as "" */
    char id2[LH_JOB_ID_MAX];
    submit_ok(jobs, NULL, job_succeed, NULL, NULL, id2);
    assert_prefix(id2, "job_000002_");
    j = wait_state(jobs, id2, "succeeded");
    assert_string_equal(json_string_value(json_object_get(j, "owner")), "");
    json_decref(j);

    lh_jobs_stop(jobs);
    assert_int_equal(atomic_load(&n_freed), 1); /* not freed twice */
    lh_jobs_stop(NULL);
}

static void
test_running_job_snapshot(void **state)
{
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(1, 8, 10, &jobs, &err), 0);
    job_arg *gate = new_arg(0);
    char id[LH_JOB_ID_MAX];
    submit_ok(jobs, "alice", job_gate, gate, NULL, id);
    wait_flag(&gate->entered);
    json_t *j = wait_state(jobs, id, "running");
    json_t *progress = json_object_get(j, "progress");
    assert_int_equal(json_integer_value(json_object_get(progress, "done")), 0);
    assert_true(json_is_null(json_object_get(progress, "total"))); /* not reported yet */
    assert_string_equal(json_string_value(json_object_get(progress, "unit")), "");
    assert_true(is_timestamp(json_object_get(j, "started_at")));
    assert_true(json_is_null(json_object_get(j, "finished_at")));
    assert_true(json_is_null(json_object_get(j, "result")));
    json_decref(j);
    atomic_store(&gate->open, true);
    json_decref(wait_state(jobs, id, "succeeded"));
    lh_jobs_stop(jobs);
    free(gate);
}

static void
test_failure_has_error_body(void **state)
{
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(2, 8, 10, &jobs, &err), 0);
    char id[LH_JOB_ID_MAX], id2[LH_JOB_ID_MAX];
    submit_ok(jobs, "bob", job_fail_with_err, NULL, NULL, id);
    submit_ok(jobs, "bob", job_fail_plain, NULL, NULL, id2);

    json_t *j = wait_state(jobs, id, "failed");
    json_t *e = json_object_get(j, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 3);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "bad_input");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "bad row 7");
    assert_string_equal(json_string_value(json_object_get(e, "detail")), "column x");
    assert_null(json_object_get(e, "hint"));
    assert_true(is_timestamp(json_object_get(j, "finished_at")));
    json_decref(j);

    /* a job that fails without saying why still gets a code and message */
    j = wait_state(jobs, id2, "failed");
    e = json_object_get(j, "error");
    assert_int_equal(json_object_size(e), 2);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "job_failed");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "job failed");
    json_decref(j);
    lh_jobs_stop(jobs);
}

static void
test_cancel_queued(void **state)
{
    reset_counters();
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(1, 8, 10, &jobs, &err), 0);
    job_arg *gate = new_arg(0);
    char blocker[LH_JOB_ID_MAX], queued[LH_JOB_ID_MAX], later[LH_JOB_ID_MAX];
    submit_ok(jobs, "alice", job_gate, gate, NULL, blocker);
    wait_flag(&gate->entered); /* the only worker is busy */
    submit_ok(jobs, "alice", job_count_run, new_arg(1), free_job_arg, queued);
    json_t *j = lh_jobs_get_json(jobs, queued);
    assert_string_equal(state_of(j), "queued");
    assert_true(json_is_null(json_object_get(j, "started_at")));
    json_decref(j);

    /* a queued job is cancelled at once, and its argument released */
    assert_int_equal(lh_jobs_cancel(jobs, queued, &err), 0);
    j = lh_jobs_get_json(jobs, queued);
    assert_string_equal(state_of(j), "cancelled");
    assert_true(json_is_true(json_object_get(j, "cancel_requested")));
    assert_true(json_is_null(json_object_get(j, "started_at")));
    assert_true(is_timestamp(json_object_get(j, "finished_at")));
    assert_true(json_is_null(json_object_get(j, "error")));
    json_decref(j);
    assert_int_equal(atomic_load(&n_freed), 1);

    /* cancelling it again: it has finished */
    lh_err_clear(&err);
    assert_int_equal(lh_jobs_cancel(jobs, queued, &err), LH_EINVAL);
    assert_int_equal(err.http_status, 409);
    assert_string_equal(err.code, "job_finished");
    char expect[128];
    snprintf(expect, sizeof expect, "job '%s' has already cancelled", queued);
    assert_string_equal(err.message, expect);

    /* the job behind it in the queue still runs; the cancelled one never does */
    submit_ok(jobs, "alice", job_count_run, NULL, NULL, later);
    atomic_store(&gate->open, true);
    json_decref(wait_state(jobs, blocker, "succeeded"));
    json_decref(wait_state(jobs, later, "succeeded"));
    assert_int_equal(atomic_load(&n_ran), 1);
    j = lh_jobs_get_json(jobs, queued);
    assert_string_equal(state_of(j), "cancelled");
    json_decref(j);
    lh_jobs_stop(jobs);
    assert_int_equal(atomic_load(&n_freed), 1);
    free(gate);
}

static void
test_cancel_running(void **state)
{
    reset_counters();
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(1, 8, 10, &jobs, &err), 0);
    job_arg *arg = new_arg(0);
    char id[LH_JOB_ID_MAX];
    submit_ok(jobs, "alice", job_poll_cancel, arg, free_job_arg, id);
    wait_flag(&arg->entered);
    json_t *j = wait_state(jobs, id, "running");
    json_decref(j);

    assert_int_equal(lh_jobs_cancel(jobs, id, &err), 0);
    j = wait_state(jobs, id, "cancelled");
    assert_true(json_is_true(json_object_get(j, "cancel_requested")));
    assert_true(json_is_null(json_object_get(j, "error")));
    assert_true(is_timestamp(json_object_get(j, "started_at")));
    assert_true(is_timestamp(json_object_get(j, "finished_at")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "progress"), "unit")),
                        "steps");
    json_decref(j);
    assert_int_equal(atomic_load(&n_freed), 1);
    lh_jobs_stop(jobs);
}

static void
test_cancel_is_cooperative(void **state)
{
    /* a running job that never checks lh_job_cancelled finishes as it would have */
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(1, 8, 10, &jobs, &err), 0);
    job_arg *gate = new_arg(0);
    char id[LH_JOB_ID_MAX];
    submit_ok(jobs, "alice", job_gate, gate, NULL, id);
    wait_flag(&gate->entered);
    json_decref(wait_state(jobs, id, "running"));
    assert_int_equal(lh_jobs_cancel(jobs, id, &err), 0);
    json_t *j = lh_jobs_get_json(jobs, id);
    assert_string_equal(state_of(j), "running");
    assert_true(json_is_true(json_object_get(j, "cancel_requested")));
    json_decref(j);
    atomic_store(&gate->open, true);
    json_decref(wait_state(jobs, id, "succeeded"));
    lh_jobs_stop(jobs);
    free(gate);
}

static void
test_cancel_unknown_and_finished(void **state)
{
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(1, 8, 10, &jobs, &err), 0);
    lh_err_clear(&err);
    assert_int_equal(lh_jobs_cancel(jobs, "job_nope", &err), LH_ENOTFOUND);
    assert_int_equal(err.rc, LH_ENOTFOUND);
    assert_int_equal(err.http_status, 404);
    assert_string_equal(err.code, "job_not_found");
    assert_string_equal(err.message, "no job with id 'job_nope'");
    assert_int_equal(lh_jobs_cancel(jobs, "job_nope", NULL), LH_ENOTFOUND);

    char done[LH_JOB_ID_MAX], failed[LH_JOB_ID_MAX];
    submit_ok(jobs, "alice", job_succeed, NULL, NULL, done);
    submit_ok(jobs, "alice", job_fail_plain, NULL, NULL, failed);
    json_decref(wait_state(jobs, done, "succeeded"));
    json_decref(wait_state(jobs, failed, "failed"));
    char expect[128];
    lh_err_clear(&err);
    assert_int_equal(lh_jobs_cancel(jobs, done, &err), LH_EINVAL);
    assert_int_equal(err.http_status, 409);
    assert_string_equal(err.code, "job_finished");
    snprintf(expect, sizeof expect, "job '%s' has already succeeded", done);
    assert_string_equal(err.message, expect);
    assert_int_equal(lh_jobs_cancel(jobs, failed, &err), LH_EINVAL);
    snprintf(expect, sizeof expect, "job '%s' has already failed", failed);
    assert_string_equal(err.message, expect);
    /* and the records are unchanged */
    json_t *j = lh_jobs_get_json(jobs, done);
    assert_string_equal(state_of(j), "succeeded");
    assert_true(json_is_false(json_object_get(j, "cancel_requested")));
    json_decref(j);
    lh_jobs_stop(jobs);
}

static void
test_queue_full(void **state)
{
    reset_counters();
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(1, 2, 100, &jobs, &err), 0);
    job_arg *gate = new_arg(0);
    char blocker[LH_JOB_ID_MAX], q1[LH_JOB_ID_MAX], q2[LH_JOB_ID_MAX], q3[LH_JOB_ID_MAX];
    submit_ok(jobs, "alice", job_gate, gate, NULL, blocker);
    wait_flag(&gate->entered); /* running jobs do not count against the queue */
    submit_ok(jobs, "alice", job_count_run, new_arg(1), free_job_arg, q1);
    submit_ok(jobs, "alice", job_count_run, new_arg(2), free_job_arg, q2);

    char refused[LH_JOB_ID_MAX] = "untouched";
    lh_err_clear(&err);
    assert_int_equal(lh_jobs_submit(jobs, "test", "alice", job_count_run, new_arg(3), free_job_arg,
                                    refused, &err),
                     LH_EUNAVAIL);
    assert_int_equal(err.rc, LH_EUNAVAIL);
    assert_int_equal(err.http_status, 503);
    assert_string_equal(err.code, "job_queue_full");
    assert_string_equal(err.message, "too many jobs are waiting");
    assert_string_equal(err.detail, "2 jobs are queued ([jobs] max_queued)");
    assert_contains(err.hint, "retry later");
    assert_string_equal(refused, "untouched");
    assert_int_equal(atomic_load(&n_freed), 1); /* the refused job's argument */
    /* a refused job leaves no record */
    json_t *list = lh_jobs_list_json(jobs, NULL, -1);
    assert_int_equal(json_array_size(list), 3);
    json_decref(list);
    /* without free_arg nothing is freed, and NULL err is accepted */
    assert_int_equal(
        lh_jobs_submit(jobs, "test", "alice", job_count_run, NULL, NULL, refused, NULL),
        LH_EUNAVAIL);

    /* cancelling a queued job frees its place */
    assert_int_equal(lh_jobs_cancel(jobs, q1, &err), 0);
    assert_int_equal(atomic_load(&n_freed), 2);
    submit_ok(jobs, "alice", job_count_run, NULL, NULL, q3);

    atomic_store(&gate->open, true);
    json_decref(wait_state(jobs, q2, "succeeded"));
    json_decref(wait_state(jobs, q3, "succeeded"));
    assert_int_equal(atomic_load(&n_ran), 2);
    assert_int_equal(atomic_load(&n_freed), 3);
    lh_jobs_stop(jobs);
    assert_int_equal(atomic_load(&n_freed), 3);
    free(gate);
}

static void
test_keep_finished_eviction(void **state)
{
    reset_counters();
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(1, 16, 2, &jobs, &err), 0);
    char ids[5][LH_JOB_ID_MAX];
    for (int i = 0; i < 5; i++) {
        submit_ok(jobs, "alice", job_succeed, new_arg(i), free_job_arg, ids[i]);
        json_decref(wait_state(jobs, ids[i], "succeeded"));
    }
    /* the two newest finished records stay, newest first */
    json_t *list = lh_jobs_list_json(jobs, NULL, -1);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), ids[4]);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "id")), ids[3]);
    json_decref(list);
    for (int i = 0; i < 3; i++) {
        assert_null(lh_jobs_get_json(jobs, ids[i]));
        char owner[128];
        assert_false(lh_jobs_owner(jobs, ids[i], owner, sizeof owner));
        assert_int_equal(lh_jobs_cancel(jobs, ids[i], &err), LH_ENOTFOUND);
    }
    assert_int_equal(atomic_load(&n_freed), 5);
    lh_jobs_stop(jobs);
    assert_int_equal(atomic_load(&n_freed), 5);
}

static void
test_keep_none(void **state)
{
    /* keep_finished = 0: a job is visible while it runs and gone once it is done */
    reset_counters();
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(1, 16, 0, &jobs, &err), 0);
    job_arg *gate = new_arg(0);
    char running[LH_JOB_ID_MAX], quick[LH_JOB_ID_MAX];
    submit_ok(jobs, "alice", job_gate, gate, NULL, running);
    wait_flag(&gate->entered);
    submit_ok(jobs, "alice", job_succeed, new_arg(1), free_job_arg, quick);
    json_t *j = lh_jobs_get_json(jobs, running);
    assert_non_null(j);
    assert_string_equal(state_of(j), "running");
    json_decref(j);
    j = lh_jobs_get_json(jobs, quick);
    assert_non_null(j);
    assert_string_equal(state_of(j), "queued");
    json_decref(j);
    /* a queued job cancelled with nothing kept disappears at once */
    assert_int_equal(lh_jobs_cancel(jobs, quick, &err), 0);
    assert_null(lh_jobs_get_json(jobs, quick));
    assert_int_equal(atomic_load(&n_freed), 1);

    atomic_store(&gate->open, true);
    int64_t deadline = lh_mono_us() + WAIT_LIMIT_US;
    while ((j = lh_jobs_get_json(jobs, running)) != NULL) {
        json_decref(j);
        assert_true(lh_mono_us() < deadline);
        sleep_ms(1);
    }
    json_t *list = lh_jobs_list_json(jobs, NULL, -1);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    lh_jobs_stop(jobs);
    free(gate);
}

/* The ids of a list, newest first, joined with ','. */
static void
list_ids(json_t *list, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(list, i), "id"));
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "," : "", id);
        assert_true(used < size);
    }
}

static void
test_list_filters(void **state)
{
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(2, 16, 100, &jobs, &err), 0);
    char a1[LH_JOB_ID_MAX], b1[LH_JOB_ID_MAX], a2[LH_JOB_ID_MAX];
    submit_ok(jobs, "alice", job_succeed, NULL, NULL, a1);
    submit_ok(jobs, "bob", job_fail_plain, NULL, NULL, b1);
    submit_ok(jobs, "alice", job_succeed, NULL, NULL, a2);
    json_decref(wait_state(jobs, a1, "succeeded"));
    json_decref(wait_state(jobs, b1, "failed"));
    json_decref(wait_state(jobs, a2, "succeeded"));

    char got[256], want[256];
    json_t *list = lh_jobs_list_json(jobs, NULL, -1);
    list_ids(list, got, sizeof got);
    snprintf(want, sizeof want, "%s,%s,%s", a2, b1, a1);
    assert_string_equal(got, want);
    json_decref(list);

    list = lh_jobs_list_json(jobs, "alice", -1);
    list_ids(list, got, sizeof got);
    snprintf(want, sizeof want, "%s,%s", a2, a1);
    assert_string_equal(got, want);
    for (size_t i = 0; i < json_array_size(list); i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, i), "owner")),
                            "alice");
    json_decref(list);

    list = lh_jobs_list_json(jobs, "bob", -1);
    list_ids(list, got, sizeof got);
    assert_string_equal(got, b1);
    json_decref(list);

    list = lh_jobs_list_json(jobs, "carol", -1);
    assert_true(json_is_array(list));
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    list = lh_jobs_list_json(jobs, NULL, LH_JOB_FAILED);
    list_ids(list, got, sizeof got);
    assert_string_equal(got, b1);
    json_decref(list);

    list = lh_jobs_list_json(jobs, NULL, LH_JOB_SUCCEEDED);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);

    list = lh_jobs_list_json(jobs, "alice", LH_JOB_FAILED);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    list = lh_jobs_list_json(jobs, "bob", LH_JOB_FAILED);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    lh_jobs_stop(jobs);
}

static void
test_stop_with_work_in_flight(void **state)
{
    reset_counters();
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(2, 16, 100, &jobs, &err), 0);
    job_arg *r1 = new_arg(1), *r2 = new_arg(2);
    char id[LH_JOB_ID_MAX];
    submit_ok(jobs, "alice", job_poll_cancel, r1, free_job_arg, id);
    submit_ok(jobs, "alice", job_poll_cancel, r2, free_job_arg, id);
    wait_flag(&r1->entered);
    wait_flag(&r2->entered);
    for (int i = 0; i < 3; i++) /* queued behind the two running jobs */
        submit_ok(jobs, "alice", job_count_run, new_arg(10 + i), free_job_arg, id);
    lh_jobs_stop(jobs); /* cancels everything, waits for the workers, frees all */
    assert_int_equal(atomic_load(&n_freed), 5);
    assert_int_equal(atomic_load(&n_ran), 0);
}

static void
test_many_jobs(void **state)
{
    reset_counters();
    lh_jobs *jobs = NULL;
    lh_err err;
    assert_int_equal(lh_jobs_start(4, 256, 50, &jobs, &err), 0);
    enum { N = 200 };
    static char ids[N][LH_JOB_ID_MAX];
    for (int i = 0; i < N; i++)
        submit_ok(jobs, i % 2 ? "alice" : "bob", job_count_run, new_arg(i), free_job_arg, ids[i]);
    wait_freed(N);
    assert_int_equal(atomic_load(&n_ran), N);
    for (int i = 1; i < N; i++) /* unique and increasing */
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    json_t *list = lh_jobs_list_json(jobs, NULL, -1);
    assert_int_equal(json_array_size(list), 50);
    json_decref(list);
    lh_jobs_stop(jobs);
}

static void
test_state_names(void **state)
{
    static const char *const names[] = {"queued", "running", "succeeded", "failed", "cancelled"};
    for (int s = LH_JOB_QUEUED; s <= LH_JOB_CANCELLED; s++) {
        assert_string_equal(lh_job_state_name((lh_job_state)s), names[s]);
        assert_int_equal(lh_job_state_parse(names[s]), s);
    }
    assert_int_equal(lh_job_state_parse("canceled"), -1);
    assert_int_equal(lh_job_state_parse("QUEUED"), -1);
    assert_int_equal(lh_job_state_parse(""), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_succeeds_with_result),
        cmocka_unit_test(test_running_job_snapshot),
        cmocka_unit_test(test_failure_has_error_body),
        cmocka_unit_test(test_cancel_queued),
        cmocka_unit_test(test_cancel_running),
        cmocka_unit_test(test_cancel_is_cooperative),
        cmocka_unit_test(test_cancel_unknown_and_finished),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_keep_finished_eviction),
        cmocka_unit_test(test_keep_none),
        cmocka_unit_test(test_list_filters),
        cmocka_unit_test(test_stop_with_work_in_flight),
        cmocka_unit_test(test_many_jobs),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
