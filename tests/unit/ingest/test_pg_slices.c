/*
 * test_pg_slices.c — splitting a table into ctid slices: how many streams a table of a
 * given size gets (never more than asked, none smaller than LH_PG_MIN_SLICE_PAGES, a
 * small table one), slices that cover every page exactly once, the SQL of each slice
 * (the first without a start, the last without an end), and the plans that need no
 * server: one stream asked, a query, a server too old for TID range scans.
 */
#include "ingest/pg_slices.c"
#include "testutil.h"

static void
test_slice_count(void **state)
{
    (void)state;
    assert_int_equal(lh_ingest__pg_slice_count(0, 4), 1);
    assert_int_equal(lh_ingest__pg_slice_count(12, 4), 1);
    assert_int_equal(lh_ingest__pg_slice_count(LH_PG_MIN_SLICE_PAGES - 1, 4), 1);
    assert_int_equal(lh_ingest__pg_slice_count(2 * LH_PG_MIN_SLICE_PAGES - 1, 4), 1);
    assert_int_equal(lh_ingest__pg_slice_count(2 * LH_PG_MIN_SLICE_PAGES, 4), 2);
    assert_int_equal(lh_ingest__pg_slice_count(3 * LH_PG_MIN_SLICE_PAGES + 5, 4), 3);
    assert_int_equal(lh_ingest__pg_slice_count(INT64_C(1) << 31, 4), 4);
    assert_int_equal(lh_ingest__pg_slice_count(INT64_C(1) << 31, 16), 16);
    assert_int_equal(lh_ingest__pg_slice_count(INT64_C(1) << 31, 1), 1);
    assert_int_equal(lh_ingest__pg_slice_count(INT64_C(1) << 31, 0), 1);
}

/* Every page in exactly one slice, each slice at least LH_PG_MIN_SLICE_PAGES long. */
static void
test_slices_cover_every_page(void **state)
{
    (void)state;
    const int64_t sizes[] = {0,
                             1,
                             1023,
                             1024,
                             2047,
                             2048,
                             3000,
                             4096,
                             4097,
                             10007,
                             16 * 1024,
                             16 * 1024 + 15,
                             65536,
                             99991,
                             131072,
                             1000003,
                             INT64_C(1) << 32};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (int asked = 1; asked <= LH_PG_MAX_PARALLEL; asked++) {
            int64_t pages = sizes[k];
            int n = lh_ingest__pg_slice_count(pages, asked);
            assert_true(n >= 1 && n <= asked);
            assert_int_equal(lh_ingest__pg_slice_start(pages, n, 0), 0);
            assert_int_equal(lh_ingest__pg_slice_start(pages, n, n), pages);
            for (int i = 0; i < n; i++) {
                int64_t a = lh_ingest__pg_slice_start(pages, n, i);
                int64_t b = lh_ingest__pg_slice_start(pages, n, i + 1);
                assert_true(b >= a);
                if (n > 1)
                    assert_true(b - a >= LH_PG_MIN_SLICE_PAGES);
            }
        }
}

static void
test_slice_sql(void **state)
{
    (void)state;
    const char *src = "SELECT * FROM public.t";
    char *sql = lh_ingest__pg_slice_sql(src, 5000, 1, 0);
    assert_string_equal(sql, src);
    free(sql);
    sql = lh_ingest__pg_slice_sql(src, 3000, 3, 0);
    assert_string_equal(sql, "SELECT * FROM public.t WHERE ctid < '(1000,0)'::tid");
    free(sql);
    sql = lh_ingest__pg_slice_sql(src, 3000, 3, 1);
    assert_string_equal(
        sql, "SELECT * FROM public.t WHERE ctid >= '(1000,0)'::tid AND ctid < '(2000,0)'::tid");
    free(sql);
    sql = lh_ingest__pg_slice_sql(src, 3000, 3, 2);
    assert_string_equal(sql, "SELECT * FROM public.t WHERE ctid >= '(2000,0)'::tid");
    free(sql);
}

/* Plans decided before the table is asked about: no connection is needed (a NULL one
 * reads as a server of version 0). */
static void
test_plan_without_server(void **state)
{
    (void)state;
    lh_pg_src s = {.what = "the table"};
    lh_pg_plan plan;
    lh_err err;
    assert_int_equal(lh_ingest__pg_plan(&s, 16384, 1, &plan, &err), 0);
    assert_int_equal(plan.streams, 1);
    assert_int_equal(plan.asked, 1);
    assert_null(plan.reason);
    lh_ingest__pg_plan_free(&plan);

    assert_int_equal(lh_ingest__pg_plan(&s, 0, 4, &plan, &err), 0);
    assert_int_equal(plan.streams, 1);
    assert_int_equal(plan.asked, 4);
    assert_non_null(strstr(plan.reason, "query"));
    lh_ingest__pg_plan_free(&plan);

    assert_int_equal(lh_ingest__pg_plan(&s, 16384, 4, &plan, &err), 0);
    assert_int_equal(plan.streams, 1);
    assert_non_null(strstr(plan.reason, "before 14"));
    lh_ingest__pg_plan_free(&plan);
    lh_ingest__pg_plan_free(&plan); /* twice is harmless */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slice_count),
        cmocka_unit_test(test_slices_cover_every_page),
        cmocka_unit_test(test_slice_sql),
        cmocka_unit_test(test_plan_without_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
