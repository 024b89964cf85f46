/*
 * test_kept.c — kept threads (src/core/kept.c): work runs, then its done; a thread that
 * finished is reused for the next work instead of a new one starting; work never waits for
 * a busy thread; at most `keep` wait idle; a stopped pool refuses work and its stats stay
 * readable until it is freed. Every wait is bounded, so a broken pool fails the test
 * instead of hanging it.
 */
#include "testutil.h"

#include "core/core.h"

#include <stdatomic.h>
#include <time.h>

#define WAIT_LIMIT_US (10 * 1000 * 1000)

typedef struct item {
    atomic_bool worked, done, open; /* open: the gate gated work waits on */
    atomic_int order;               /* 1 after work, 2 after done */
} item;

static void
work(void *arg)
{
    item *it = arg;
    atomic_store(&it->order, 1);
    atomic_store(&it->worked, true);
}

static void
gated(void *arg)
{
    item *it = arg;
    int64_t until = lh_mono_us() + WAIT_LIMIT_US;
    while (!atomic_load(&it->open) && lh_mono_us() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&it->worked, true);
}

static void
done(void *arg)
{
    item *it = arg;
    if (atomic_load(&it->order) == 1 || atomic_load(&it->worked))
        atomic_store(&it->order, 2);
    atomic_store(&it->done, true);
}

static void
wait_for(atomic_bool *flag)
{
    int64_t until = lh_mono_us() + WAIT_LIMIT_US;
    while (!atomic_load(flag) && lh_mono_us() < until) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(flag));
}

/* Wait until the pool counts n threads idle. */
static void
wait_idle(lh_kept *k, int n)
{
    int64_t handed, started;
    int threads, idle = -1;
    int64_t until = lh_mono_us() + WAIT_LIMIT_US;
    while (lh_mono_us() < until) {
        lh_kept_stats(k, &handed, &started, &threads, &idle);
        if (idle == n)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(idle, n);
}

static void
test_work_then_done_and_reuse(void **state)
{
    (void)state;
    lh_kept *k = lh_kept_new(4, 30);
    lh_err err;
    item a = {0}, b = {0};
    assert_int_equal(lh_kept_run(k, work, done, &a, &err), 0);
    wait_for(&a.done);
    assert_int_equal(atomic_load(&a.order), 2); /* done after work */
    wait_idle(k, 1);
    assert_int_equal(lh_kept_run(k, work, NULL, &b, &err), 0); /* done may be NULL */
    wait_for(&b.worked);
    int64_t handed, started;
    int threads, idle;
    wait_idle(k, 1);
    lh_kept_stats(k, &handed, &started, &threads, &idle);
    assert_int_equal(handed, 2);
    assert_int_equal(started, 1); /* the second work found the first thread */
    assert_int_equal(threads, 1);
    lh_kept_free(k);
}

static void
test_never_waits_for_a_busy_thread(void **state)
{
    (void)state;
    lh_kept *k = lh_kept_new(1, 30);
    lh_err err;
    item busy[3] = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(lh_kept_run(k, gated, done, &busy[i], &err), 0);
    int64_t handed, started;
    int threads, idle;
    lh_kept_stats(k, &handed, &started, &threads, &idle);
    assert_int_equal(started, 3); /* each started its own thread */
    assert_int_equal(threads, 3);
    for (int i = 0; i < 3; i++)
        atomic_store(&busy[i].open, true);
    for (int i = 0; i < 3; i++)
        wait_for(&busy[i].done);
    /* keep = 1: one thread stays, the others exit */
    int64_t until = lh_mono_us() + WAIT_LIMIT_US;
    do {
        lh_kept_stats(k, &handed, &started, &threads, &idle);
    } while (threads != 1 && lh_mono_us() < until);
    assert_int_equal(threads, 1);
    assert_int_equal(idle, 1);
    lh_kept_free(k);
}

static void
test_stop_refuses_and_waits(void **state)
{
    (void)state;
    lh_kept *k = lh_kept_new(4, 30);
    lh_err err;
    item running = {0}, late = {0};
    assert_int_equal(lh_kept_run(k, gated, done, &running, &err), 0);
    atomic_store(&running.open, true);
    lh_kept_stop(k); /* waits for the running work */
    assert_true(atomic_load(&running.done));
    assert_int_equal(lh_kept_run(k, work, done, &late, &err), LH_EUNAVAIL);
    assert_int_equal(err.http_status, 503);
    assert_false(atomic_load(&late.worked));
    int64_t handed, started;
    int threads, idle;
    lh_kept_stats(k, &handed, &started, &threads, &idle); /* still readable */
    assert_int_equal(threads, 0);
    lh_kept_free(k);
    lh_kept_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_work_then_done_and_reuse),
        cmocka_unit_test(test_never_waits_for_a_busy_thread),
        cmocka_unit_test(test_stop_refuses_and_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
