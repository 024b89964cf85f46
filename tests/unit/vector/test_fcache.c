/*
 * test_fcache.c — the filter cache: a kept answer is found by its key while the datasets
 * its filter read keep their registration, never after one of them is registered again;
 * lh_fcache_has (a door's question "would the search hit now?") agrees with
 * lh_fcache_get without copying, counting or dropping anything.
 */
#include "testutil.h"
#include "vector/vector_int.h"

typedef struct fixture {
    char *dir, *slash;
    lh_engine *eng;
} fixture;

static int
setup(void **state)
{
    fixture *f = lh_calloc(1, sizeof *f);
    f->dir = lh_test_mkdtemp("fcache");
    f->slash = lh_sprintf("%s/", f->dir);
    const char *dirs[] = {f->slash, NULL};
    lh_engine_opts o = {.allowed_dirs = dirs, .user_sql = true};
    lh_err err;
    assert_int_equal(lh_engine_open(&o, &f->eng, &err), 0);
    assert_int_equal(lh_engine_set_dataset(f->eng, "people", "SELECT * FROM range(3) r(a)", &err),
                     0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    lh_engine_close(f->eng);
    rmdir(f->dir);
    free(f->slash);
    free(f->dir);
    free(f);
    return 0;
}

static int
ignore_rows(void *ctx, const lh_batch *b)
{
    (void)ctx;
    (void)b;
    return 0;
}

/* What a filter over people reads, as the search's scan records it. */
static lh_reads
reads_of(fixture *f, const char *sql)
{
    lh_reads reads;
    lh_err err;
    lh_scan_opts o = {.sql = sql, .reads = &reads};
    assert_int_equal(lh_engine_scan(f->eng, &o, ignore_rows, NULL, &err), 0);
    assert_true(reads.stable);
    return reads;
}

/* The counters of the cache's stats. */
static json_int_t
stat_of(lh_fcache *fc, const char *name)
{
    json_t *stats = lh_fcache_stats(fc);
    json_int_t value = json_integer_value(json_object_get(stats, name));
    json_decref(stats);
    return value;
}

static void
test_has_agrees_with_get(void **state)
{
    fixture *f = *state;
    lh_fcache *fc = lh_fcache_new(1 << 20);
    uint64_t bits[3] = {0x5, 0, 0}, out[3];
    size_t n_positions = 0, n_docs = 0;
    lh_reads reads = reads_of(f, "SELECT a FROM people WHERE a > 0");
    assert_false(lh_fcache_has(fc, f->eng, "1|0:|5:a > 0|", 3));
    lh_fcache_put(fc, "1|0:|5:a > 0|", &reads, bits, 3, 2, 2);
    assert_true(lh_fcache_has(fc, f->eng, "1|0:|5:a > 0|", 3));
    /* another key (another generation, view, filter) or another size is no hit */
    assert_false(lh_fcache_has(fc, f->eng, "2|0:|5:a > 0|", 3));
    assert_false(lh_fcache_has(fc, f->eng, "1|0:|5:a > 0|", 4));
    /* asking counts nothing */
    assert_int_equal(stat_of(fc, "hits"), 0);
    assert_int_equal(stat_of(fc, "misses"), 0);
    assert_true(lh_fcache_get(fc, f->eng, "1|0:|5:a > 0|", out, 3, &n_positions, &n_docs));
    assert_int_equal(out[0], 0x5);
    assert_int_equal(stat_of(fc, "hits"), 1);
    /* people registered again (a new version): stale for both, and has leaves the entry
     * for get to drop and count */
    lh_err err;
    assert_int_equal(lh_engine_set_dataset(f->eng, "people", "SELECT * FROM range(4) r(a)", &err),
                     0);
    assert_false(lh_fcache_has(fc, f->eng, "1|0:|5:a > 0|", 3));
    assert_int_equal(stat_of(fc, "entries"), 1);
    assert_int_equal(stat_of(fc, "stale"), 0);
    assert_false(lh_fcache_get(fc, f->eng, "1|0:|5:a > 0|", out, 3, &n_positions, &n_docs));
    assert_int_equal(stat_of(fc, "stale"), 1);
    assert_int_equal(stat_of(fc, "entries"), 0);
    /* answered again over the new version: current again */
    reads = reads_of(f, "SELECT a FROM people WHERE a > 0");
    lh_fcache_put(fc, "1|0:|5:a > 0|", &reads, bits, 3, 2, 2);
    assert_true(lh_fcache_has(fc, f->eng, "1|0:|5:a > 0|", 3));
    lh_fcache_free(fc);
}

static void
test_nothing_kept(void **state)
{
    fixture *f = *state;
    lh_fcache *fc = lh_fcache_new(0); /* [vector] filter_cache_bytes = 0 */
    uint64_t bits[2] = {1, 0};
    lh_reads reads = reads_of(f, "SELECT a FROM people");
    lh_fcache_put(fc, "k", &reads, bits, 2, 1, 1);
    assert_false(lh_fcache_has(fc, f->eng, "k", 2));
    assert_false(lh_fcache_has(NULL, f->eng, "k", 2));
    lh_fcache_free(fc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_has_agrees_with_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
