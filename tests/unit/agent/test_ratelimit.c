/*
 * test_ratelimit.c — the tool-call rate limiter: refill arithmetic, all-or-none across
 * buckets, Retry-After rounding, and 64 threads racing on a fake clock admitted exactly
 * as many times as the tokens allow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent/agent_int.h"

#include <pthread.h>

static void
test_burst_then_refill(void **state)
{
    (void)state;
    lh_rate *r = lh_agent__rate_new();
    lh_rate_limit l = {.key = "a", .per_minute = 60, .burst = 3};
    int64_t wait = 0;
    for (int i = 0; i < 3; i++)
        assert_true(lh_agent__rate_take(r, &l, 1, 1000000, &wait));
    assert_false(lh_agent__rate_take(r, &l, 1, 1000000, &wait));
    assert_int_equal(wait, 1000000); /* one token a second */
    assert_false(lh_agent__rate_take(r, &l, 1, 1500000, &wait));
    assert_int_equal(wait, 500000);
    assert_true(lh_agent__rate_take(r, &l, 1, 2000000, &wait));
    /* a long pause refills to the burst, never past it */
    for (int i = 0; i < 3; i++)
        assert_true(lh_agent__rate_take(r, &l, 1, 100000000, &wait));
    assert_false(lh_agent__rate_take(r, &l, 1, 100000000, &wait));
    lh_agent__rate_free(r);
}

static void
test_all_or_none(void **state)
{
    (void)state;
    lh_rate *r = lh_agent__rate_new();
    lh_rate_limit tool = {.key = "tool", .per_minute = 60, .burst = 5};
    lh_rate_limit ceiling = {.key = "ceiling", .per_minute = 6, .burst = 2};
    lh_rate_limit both[2] = {tool, ceiling};
    int64_t wait = 0;
    assert_true(lh_agent__rate_take(r, both, 2, 0, &wait));
    assert_true(lh_agent__rate_take(r, both, 2, 0, &wait));
    /* the ceiling is empty: refused, and the tool's bucket keeps its token */
    assert_false(lh_agent__rate_take(r, both, 2, 0, &wait));
    assert_int_equal(wait, 10000000); /* 6 a minute: 10 s a token */
    for (int i = 0; i < 3; i++)
        assert_true(lh_agent__rate_take(r, &tool, 1, 0, &wait));
    assert_false(lh_agent__rate_take(r, &tool, 1, 0, &wait));
    lh_agent__rate_free(r);
}

typedef struct racer {
    lh_rate *r;
    pthread_barrier_t *start;
    int64_t now_us;
    int admitted;
} racer;

static void *
race(void *arg)
{
    racer *x = arg;
    lh_rate_limit l[2] = {{.key = "bot\ntool", .per_minute = 60, .burst = 10},
                          {.key = "bot", .per_minute = 600, .burst = 100}};
    pthread_barrier_wait(x->start);
    for (int i = 0; i < 50; i++) {
        int64_t wait = 0;
        if (lh_agent__rate_take(x->r, l, 2, x->now_us, &wait))
            x->admitted++;
    }
    return NULL;
}

static void
test_64_threads_exact(void **state)
{
    (void)state;
    lh_rate *r = lh_agent__rate_new();
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 64);
    racer xs[64];
    pthread_t th[64];
    /* round 1 at t=0: the burst of 10; round 2 at t=+5.5 s: 5 more (one a second) */
    int64_t times[2] = {0, 5500000};
    int expected[2] = {10, 5};
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 64; i++) {
            xs[i] = (racer){.r = r, .start = &start, .now_us = times[round]};
            pthread_create(&th[i], NULL, race, &xs[i]);
        }
        int total = 0;
        for (int i = 0; i < 64; i++) {
            pthread_join(th[i], NULL);
            total += xs[i].admitted;
        }
        assert_int_equal(total, expected[round]);
    }
    pthread_barrier_destroy(&start);
    lh_agent__rate_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_all_or_none),
        cmocka_unit_test(test_64_threads_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
