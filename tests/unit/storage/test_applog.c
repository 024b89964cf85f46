/*
 * test_applog.c — the write-once append log (src/storage/applog.c) over an fs store:
 * when batches are written (count, age, flush), what they are called and hold, reading
 * back the newest events, compaction, a store that goes away and comes back, the
 * buffer cap, and several logs writing into one prefix at once.
 */
#include "testutil.h"

#include "storage/storage.h"

#include <pthread.h>
#include <time.h>

#define PREFIX "_j/"

typedef struct fixture {
    char *root;
    lh_store *s;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->root = lh_test_mkdtemp("applog_");
    lh_err err;
    assert_int_equal(lh_store_fs_open(f->root, &f->s, &err), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    lh_store_free(f->s);
    lh_test_rm_rf(f->root);
    free(f->root);
    free(f);
    return 0;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static json_t *
event(int n)
{
    json_t *ev = json_pack("{s:i, s:s}", "n", n, "what", "test");
    assert_non_null(ev);
    return ev;
}

static void
append_ok(lh_applog *log, int n)
{
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_applog_append(log, event(n), &err);
    if (rc != 0)
        print_error("append %d: %s\n", n, err.message);
    assert_int_equal(rc, 0);
}

/* The batch keys under PREFIX in order (all of them; a new NULL-terminated array). */
static char **
list_batches(lh_store *s, size_t *n_out)
{
    lh_list_page page;
    lh_err err;
    assert_int_equal(lh_store_list(s, PREFIX, NULL, 10000, &page, &err), 0);
    assert_null(page.next_cursor);
    char **keys = calloc(page.n + 1, sizeof *keys);
    assert_non_null(keys);
    for (size_t i = 0; i < page.n; i++) {
        keys[i] = strdup(page.entries[i].key);
        assert_non_null(keys[i]);
    }
    *n_out = page.n;
    lh_list_page_free(&page);
    return keys;
}

static void
free_keys(char **keys)
{
    for (size_t i = 0; keys[i]; i++)
        free(keys[i]);
    free(keys);
}

static size_t
count_batches(lh_store *s)
{
    size_t n;
    free_keys(list_batches(s, &n));
    return n;
}

static char *
read_object(lh_store *s, const char *key)
{
    lh_buf buf;
    lh_err err;
    int rc = lh_store_get_buffer(s, key, 1u << 20, &buf, NULL, &err);
    if (rc != 0)
        print_error("get %s: %s\n", key, err.message);
    assert_int_equal(rc, 0);
    return buf.data;
}

/* key must be PREFIX "batch_" + 20 digits + ".jsonl"; returns the number. */
static long long
batch_number(const char *key)
{
    assert_prefix(key, PREFIX "batch_");
    const char *digits = key + strlen(PREFIX "batch_");
    for (int i = 0; i < 20; i++)
        assert_true(digits[i] >= '0' && digits[i] <= '9');
    assert_string_equal(digits + 20, ".jsonl");
    char name[128];
    long long n = atoll(digits);
    snprintf(name, sizeof name, PREFIX "batch_%020lld.jsonl", n);
    assert_string_equal(key, name);
    return n;
}

/* The text of events from..to-1 as a batch holds them. */
static char *
lines(int from, int to)
{
    lh_buf b;
    lh_buf_init(&b);
    for (int i = from; i < to; i++)
        lh_buf_printf(&b, "{\"n\":%d,\"what\":\"test\"}\n", i);
    lh_buf_append(&b, "", 0);
    return lh_buf_steal(&b);
}

/* arr must be the events from..to-1 in order. */
static void
expect_events(json_t *arr, int from, int to)
{
    assert_true(json_is_array(arr));
    if (json_array_size(arr) != (size_t)(to - from)) {
        char *dump = json_dumps(arr, JSON_COMPACT);
        print_error("expected events %d..%d, got %s\n", from, to - 1, dump);
        free(dump);
    }
    assert_int_equal(json_array_size(arr), (size_t)(to - from));
    for (int i = from; i < to; i++) {
        json_t *ev = json_array_get(arr, (size_t)(i - from));
        assert_int_equal(json_integer_value(json_object_get(ev, "n")), i);
    }
}

static void
expect_stats(lh_applog *log, int64_t buffered, int64_t batches, int64_t dropped)
{
    int64_t b, w, d;
    lh_applog_stats(log, &b, &w, &d);
    assert_int_equal(b, buffered);
    assert_int_equal(w, batches);
    assert_int_equal(d, dropped);
}

/* ---- tests ----------------------------------------------------------------------------- */

static void
test_below_threshold_writes_nothing(void **state)
{
    fixture *f = *state;
    lh_applog *log = lh_applog_new(f->s, PREFIX, 5, 3600 * 1000);
    for (int i = 0; i < 4; i++)
        append_ok(log, i);
    assert_int_equal(count_batches(f->s), 0);
    expect_stats(log, 4, 0, 0);
    lh_err err;
    /* a tick long before max_age writes nothing either */
    assert_int_equal(lh_applog_tick(log, &err), 0);
    assert_int_equal(count_batches(f->s), 0);
    /* free does not flush: the buffered events are gone */
    lh_applog_free(log);
    lh_applog_free(NULL);
    assert_int_equal(count_batches(f->s), 0);
}

static void
test_threshold_writes_one_batch(void **state)
{
    fixture *f = *state;
    lh_applog *log = lh_applog_new(f->s, PREFIX, 5, 3600 * 1000);
    int64_t before = lh_now_us();
    for (int i = 0; i < 5; i++)
        append_ok(log, i);
    int64_t after = lh_now_us();
    expect_stats(log, 0, 1, 0);

    size_t n;
    char **keys = list_batches(f->s, &n);
    assert_int_equal(n, 1);
    long long stamp = batch_number(keys[0]);
    assert_true(stamp >= before && stamp <= after); /* named by the time it was written */
    char *text = read_object(f->s, keys[0]);
    char *want = lines(0, 5);
    assert_string_equal(text, want);
    free(want);
    free(text);
    free_keys(keys);

    /* the next events start a new buffer; the batch is not touched again */
    for (int i = 5; i < 9; i++)
        append_ok(log, i);
    assert_int_equal(count_batches(f->s), 1);
    append_ok(log, 9);
    keys = list_batches(f->s, &n);
    assert_int_equal(n, 2);
    assert_true(batch_number(keys[1]) > stamp);
    text = read_object(f->s, keys[0]);
    want = lines(0, 5);
    assert_string_equal(text, want);
    free(want);
    free(text);
    text = read_object(f->s, keys[1]);
    want = lines(5, 10);
    assert_string_equal(text, want);
    free(want);
    free(text);
    free_keys(keys);
    expect_stats(log, 0, 2, 0);
    lh_applog_free(log);
}

static void
test_flush(void **state)
{
    fixture *f = *state;
    lh_applog *log = lh_applog_new(f->s, PREFIX, 100, 3600 * 1000);
    lh_err err;
    assert_int_equal(lh_applog_flush(log, &err), 0);
    assert_int_equal(count_batches(f->s), 0);
    expect_stats(log, 0, 0, 0);

    append_ok(log, 0);
    append_ok(log, 1);
    assert_int_equal(lh_applog_flush(log, &err), 0);
    size_t n;
    char **keys = list_batches(f->s, &n);
    assert_int_equal(n, 1);
    char *text = read_object(f->s, keys[0]);
    char *want = lines(0, 2);
    assert_string_equal(text, want);
    free(want);
    free(text);
    free_keys(keys);
    expect_stats(log, 0, 1, 0);

    /* flushing again with nothing buffered writes nothing */
    assert_int_equal(lh_applog_flush(log, &err), 0);
    assert_int_equal(lh_applog_flush(log, NULL), 0);
    assert_int_equal(count_batches(f->s), 1);

    /* key order inside an event is kept */
    lh_applog_append(log, json_pack("{s:i, s:i, s:i}", "z", 1, "a", 2, "m", 3), &err);
    assert_int_equal(lh_applog_flush(log, &err), 0);
    keys = list_batches(f->s, &n);
    assert_int_equal(n, 2);
    text = read_object(f->s, keys[1]);
    assert_string_equal(text, "{\"z\":1,\"a\":2,\"m\":3}\n");
    free(text);
    free_keys(keys);
    lh_applog_free(log);
}

static void
test_tick_by_age(void **state)
{
    fixture *f = *state;
    lh_applog *log = lh_applog_new(f->s, PREFIX, 100, 20);
    lh_err err;
    assert_int_equal(lh_applog_tick(log, &err), 0); /* nothing buffered */
    assert_int_equal(count_batches(f->s), 0);

    append_ok(log, 0);
    assert_int_equal(lh_applog_tick(log, &err), 0);
    assert_int_equal(count_batches(f->s), 0); /* not 20 ms old yet */
    sleep_ms(15);
    append_ok(log, 1); /* a younger event does not restart the clock: the age is the */
    sleep_ms(10);      /* oldest's, 25 ms, though the newest is only 10 ms old */
    assert_int_equal(lh_applog_tick(log, &err), 0);
    size_t n;
    char **keys = list_batches(f->s, &n);
    assert_int_equal(n, 1);
    char *text = read_object(f->s, keys[0]);
    char *want = lines(0, 2);
    assert_string_equal(text, want);
    free(want);
    free(text);
    free_keys(keys);
    expect_stats(log, 0, 1, 0);

    /* nothing left: ticking again writes nothing */
    sleep_ms(25);
    assert_int_equal(lh_applog_tick(log, &err), 0);
    assert_int_equal(count_batches(f->s), 1);

    /* the age counts from the first event of the new buffer */
    append_ok(log, 2);
    assert_int_equal(lh_applog_tick(log, &err), 0);
    assert_int_equal(count_batches(f->s), 1);
    sleep_ms(25);
    assert_int_equal(lh_applog_tick(log, &err), 0);
    assert_int_equal(count_batches(f->s), 2);
    lh_applog_free(log);
}

static void
test_read(void **state)
{
    fixture *f = *state;
    lh_applog *log = lh_applog_new(f->s, PREFIX, 3, 3600 * 1000);
    lh_err err;
    json_t *arr = NULL;
    assert_int_equal(lh_applog_read(log, 100, &arr, &err), 0);
    expect_events(arr, 0, 0);
    json_decref(arr);

    for (int i = 0; i < 7; i++) /* two batches of 3, one event buffered */
        append_ok(log, i);
    assert_int_equal(count_batches(f->s), 2);
    expect_stats(log, 1, 2, 0);

    static const struct {
        size_t limit;
        int from;
    } cases[] = {{100, 0}, {7, 0}, {6, 1}, {4, 3}, {3, 4}, {2, 5}, {1, 6}, {0, 7}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        arr = NULL;
        assert_int_equal(lh_applog_read(log, cases[i].limit, &arr, &err), 0);
        expect_events(arr, cases[i].from, 7);
        json_decref(arr);
    }
    /* reading changed nothing */
    assert_int_equal(count_batches(f->s), 2);
    expect_stats(log, 1, 2, 0);

    /* a new log over the same objects sees what was stored (the buffer died with the
     * old one) */
    lh_applog *again = lh_applog_new(f->s, PREFIX, 3, 3600 * 1000);
    assert_int_equal(lh_applog_read(again, 100, &arr, &err), 0);
    expect_events(arr, 0, 6);
    json_decref(arr);
    lh_applog_free(again);

    /* lines that are not JSON and objects that are not batches are skipped */
    const char *junk = "{\"n\":100,\"what\":\"test\"}\nnot json\n\n{\"n\":101}";
    assert_int_equal(lh_store_put_buffer(f->s, PREFIX "batch_99999999999999999999.jsonl", junk,
                                         strlen(junk), 0, &err),
                     0);
    assert_int_equal(lh_store_put_buffer(f->s, PREFIX "notes.txt", "{\"n\":-1}\n", 9, 0, &err), 0);
    assert_int_equal(
        lh_store_put_buffer(f->s, PREFIX "sub/batch_1.jsonl", "{\"n\":-2}\n", 9, 0, &err), 0);
    assert_int_equal(lh_applog_read(log, 3, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "n")), 100);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 1), "n")), 101);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 2), "n")), 6);
    json_decref(arr);
    lh_applog_free(log);
}

static void
test_compact(void **state)
{
    fixture *f = *state;
    lh_applog *log = lh_applog_new(f->s, PREFIX, 2, 3600 * 1000);
    lh_err err;
    int merged = -1;
    assert_int_equal(lh_applog_compact(log, &merged, &err), 0); /* nothing to merge */
    assert_int_equal(merged, 0);

    for (int i = 0; i < 6; i++)
        append_ok(log, i);
    size_t n;
    char **old = list_batches(f->s, &n);
    assert_int_equal(n, 3);
    append_ok(log, 6); /* buffered: not part of the compaction */

    merged = -1;
    assert_int_equal(lh_applog_compact(log, &merged, &err), 0);
    assert_int_equal(merged, 3);
    char **keys = list_batches(f->s, &n);
    assert_int_equal(n, 1);
    /* the merged batch is new and sorts after every batch it replaced */
    long long stamp = batch_number(keys[0]);
    for (size_t i = 0; old[i]; i++) {
        assert_true(stamp > batch_number(old[i]));
        lh_obj_info info;
        assert_int_equal(lh_store_head(f->s, old[i], &info, &err), LH_ENOTFOUND);
    }
    char *text = read_object(f->s, keys[0]);
    char *want = lines(0, 6);
    assert_string_equal(text, want);
    free(want);
    free(text);
    free_keys(keys);
    free_keys(old);
    expect_stats(log, 1, 4, 0);

    json_t *arr = NULL;
    assert_int_equal(lh_applog_read(log, 100, &arr, &err), 0);
    expect_events(arr, 0, 7);
    json_decref(arr);

    /* one batch is already compact */
    merged = -1;
    assert_int_equal(lh_applog_compact(log, &merged, &err), 0);
    assert_int_equal(merged, 0);
    assert_int_equal(count_batches(f->s), 1);

    /* later batches merge with the compacted one, order kept */
    assert_int_equal(lh_applog_flush(log, &err), 0);
    for (int i = 7; i < 9; i++)
        append_ok(log, i);
    assert_int_equal(count_batches(f->s), 3);
    assert_int_equal(lh_applog_compact(log, &merged, &err), 0);
    assert_int_equal(merged, 3);
    keys = list_batches(f->s, &n);
    assert_int_equal(n, 1);
    text = read_object(f->s, keys[0]);
    want = lines(0, 9);
    assert_string_equal(text, want);
    free(want);
    free(text);
    free_keys(keys);
    lh_applog_free(log);
}

static void
test_unavailable_store_keeps_events(void **state)
{
    fixture *f = *state;
    lh_applog *log = lh_applog_new(f->s, PREFIX, 3, 3600 * 1000);
    append_ok(log, 0);
    lh_test_rm_rf(f->root);

    lh_err err;
    lh_err_clear(&err);
    assert_int_equal(lh_applog_append(log, event(1), &err), 0);
    lh_err_clear(&err);
    /* the third event triggers a write, which fails: the events stay */
    assert_int_equal(lh_applog_append(log, event(2), &err), LH_EUNAVAIL);
    assert_int_equal(err.rc, LH_EUNAVAIL);
    assert_string_equal(err.code, "bucket_unavailable");
    expect_stats(log, 3, 0, 0);
    lh_err_clear(&err);
    /* right after a failed write, appends only buffer (no request waits on a dead store) */
    assert_int_equal(lh_applog_append(log, event(3), &err), 0);
    expect_stats(log, 4, 0, 0);
    lh_err_clear(&err);
    assert_int_equal(lh_applog_flush(log, &err), LH_EUNAVAIL);
    assert_int_equal(lh_applog_tick(log, &err), 0); /* not old enough to try */
    json_t *arr = NULL;
    assert_int_equal(lh_applog_read(log, 10, &arr, &err), LH_EUNAVAIL);
    assert_null(arr);
    int merged = -1;
    assert_int_equal(lh_applog_compact(log, &merged, &err), LH_EUNAVAIL);
    assert_int_equal(merged, 0);
    expect_stats(log, 4, 0, 0);

    /* the folder comes back: the next flush writes everything, in order, once */
    assert_int_equal(mkdir(f->root, 0755), 0);
    assert_int_equal(lh_applog_flush(log, &err), 0);
    expect_stats(log, 0, 1, 0);
    size_t n;
    char **keys = list_batches(f->s, &n);
    assert_int_equal(n, 1);
    char *text = read_object(f->s, keys[0]);
    char *want = lines(0, 4);
    assert_string_equal(text, want);
    free(want);
    free(text);
    free_keys(keys);
    assert_int_equal(lh_applog_read(log, 10, &arr, &err), 0);
    expect_events(arr, 0, 4);
    json_decref(arr);
    lh_applog_free(log);
}

static void
test_buffer_cap(void **state)
{
    fixture *f = *state;
    lh_applog *log = lh_applog_new(f->s, PREFIX, 2, 3600 * 1000); /* cap: 20 events */
    lh_test_rm_rf(f->root);
    lh_err err;
    for (int i = 0; i < 25; i++) {
        int rc = lh_applog_append(log, event(i), &err);
        /* the first full buffer tries and fails; later appends back off and only buffer */
        assert_int_equal(rc, i == 1 ? LH_EUNAVAIL : 0);
    }
    expect_stats(log, 20, 0, 5);
    json_t *arr = NULL;
    assert_int_equal(mkdir(f->root, 0755), 0);
    /* the newest 20 survived, oldest first */
    assert_int_equal(lh_applog_read(log, 100, &arr, &err), 0);
    expect_events(arr, 5, 25);
    json_decref(arr);
    assert_int_equal(lh_applog_flush(log, &err), 0);
    expect_stats(log, 0, 1, 5);
    size_t n;
    char **keys = list_batches(f->s, &n);
    assert_int_equal(n, 1);
    char *text = read_object(f->s, keys[0]);
    char *want = lines(5, 25);
    assert_string_equal(text, want);
    free(want);
    free(text);
    free_keys(keys);
    lh_applog_free(log);
}

/* ---- several writers into one prefix ------------------------------------------------------ */

enum { WRITERS = 4, EVENTS_EACH = 60 };

typedef struct writer {
    lh_applog *log;
    int id;
    int failures;
} writer;

static void *
write_events(void *arg)
{
    writer *w = arg;
    for (int i = 0; i < EVENTS_EACH; i++) {
        lh_err err;
        if (lh_applog_append(w->log, json_pack("{s:i, s:i}", "w", w->id, "i", i), &err) != 0)
            w->failures++;
    }
    return NULL;
}

static void
test_concurrent_logs(void **state)
{
    fixture *f = *state;
    /* separate logs (as separate servers would be) batching every 2 events: batch names
     * collide within a microsecond and must move on, never overwrite */
    writer w[WRITERS];
    pthread_t threads[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){.log = lh_applog_new(f->s, PREFIX, 2, 3600 * 1000), .id = i};
        assert_int_equal(pthread_create(&threads[i], NULL, write_events, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    int64_t total_batches = 0;
    for (int i = 0; i < WRITERS; i++) {
        assert_int_equal(w[i].failures, 0);
        int64_t b, batches, d;
        lh_applog_stats(w[i].log, &b, &batches, &d);
        assert_int_equal(b, 0);
        assert_int_equal(d, 0);
        total_batches += batches;
    }
    assert_int_equal(total_batches, WRITERS * EVENTS_EACH / 2);
    assert_int_equal(count_batches(f->s), (size_t)total_batches);

    /* every event is stored once, and each writer's events are in its order */
    json_t *arr = NULL;
    lh_err err;
    assert_int_equal(lh_applog_read(w[0].log, 100000, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), WRITERS * EVENTS_EACH);
    int next[WRITERS] = {0};
    size_t i;
    json_t *ev;
    json_array_foreach(arr, i, ev)
    {
        int id = (int)json_integer_value(json_object_get(ev, "w"));
        assert_true(id >= 0 && id < WRITERS);
        assert_int_equal(json_integer_value(json_object_get(ev, "i")), next[id]);
        next[id]++;
    }
    json_decref(arr);
    for (int k = 0; k < WRITERS; k++)
        lh_applog_free(w[k].log);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_below_threshold_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_writes_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_by_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unavailable_store_keeps_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_logs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
