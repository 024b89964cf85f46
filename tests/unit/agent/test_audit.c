/*
 * test_audit.c — the audit trail: group commit under 64 threads (every record once, far
 * fewer fsyncs than records), torn-line recovery, shipping (idempotent after a crash
 * between the put and the removal of the segment), filters, paging and cursors, the
 * `_audit` view and the name gate of user SQL.
 */
#include "testutil.h"

#include "agent/audit_int.h"

#include <pthread.h>

typedef struct fixture {
    char *dir;
    lh_config *cfg;
    lh_buckets *buckets;
    lh_local_dirs dirs;
    lh_engine *views, *internal;
    lh_cache *cache;
    lh_audit *audit;
} fixture;

static void
open_audit(fixture *f, int ship_records)
{
    lh_audit_deps deps = {.buckets = f->buckets,
                          .cache = f->cache,
                          .views = f->views,
                          .internal = f->internal,
                          .dir = f->dirs.audit_dir,
                          .ship_ms = 3600 * 1000, /* tests ship by closing */
                          .ship_records = ship_records};
    lh_err err;
    int rc = lh_audit_open(&deps, &f->audit, &err);
    if (rc != 0)
        print_error("lh_audit_open: %s %s\n", err.message, err.detail);
    assert_int_equal(rc, 0);
}

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = lh_test_mkdtemp("audit");
    char *env_dir = lh_sprintf("LAKEHOUSE_SERVER_DATA_DIR=%s/data", f->dir);
    char *env[] = {env_dir, "LAKEHOUSE_STORAGE_PROBE_INTERVAL_MS=0", NULL};
    lh_err err;
    assert_int_equal(lh_config_load(NULL, env, &f->cfg, &err), 0);
    free(env_dir);
    assert_int_equal(lh_buckets_open(f->cfg, &f->buckets, &err), 0);
    char *data_dir = lh_sprintf("%s/data", f->dir);
    assert_int_equal(lh_buckets_local_dirs(f->buckets, data_dir, &f->dirs, &err), 0);
    free(data_dir);
    lh_engine_opts o = {.allowed_dirs = (const char *const *)f->dirs.user_readable,
                        .user_sql = true};
    assert_int_equal(lh_engine_open(&o, &f->views, &err), 0);
    o.allowed_dirs = (const char *const *)f->dirs.internal_readable;
    o.user_sql = false;
    assert_int_equal(lh_engine_open(&o, &f->internal, &err), 0);
    f->cache = lh_cache_new(f->dirs.objects_dir, 1 << 30);
    open_audit(f, 1000000);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    lh_audit_close(f->audit);
    lh_cache_free(f->cache);
    lh_buckets_close(f->buckets);
    lh_engine_close(f->views);
    lh_engine_close(f->internal);
    lh_local_dirs_free(&f->dirs);
    lh_config_free(f->cfg);
    lh_test_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void
reopen(fixture *f)
{
    lh_audit_close(f->audit);
    f->audit = NULL;
    open_audit(f, 1000000);
}

/* A record with ts = base + offset microseconds. */
static json_t *
record(const char *call_id, int64_t ts_us, const char *tool, const char *principal,
       const char *outcome)
{
    char ts[64];
    time_t secs = (time_t)(ts_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts, sizeof ts, "%s.%06lldZ", date, (long long)(ts_us % 1000000));
    return json_pack("{s:s, s:s, s:s, s:[s], s:s, s:i, s:s, s:{s:s}, s:n, s:s, s:i}", "call_id",
                     call_id, "ts", ts, "principal", principal, "roles", "agent", "tool", tool,
                     "tool_version", 1, "via", "http", "arguments", "q", "x", "workspace_id",
                     "outcome", outcome, "status", 200);
}

static void
append(fixture *f, json_t *r)
{
    lh_err err;
    int rc = lh_audit_append(f->audit, r, &err);
    if (rc != 0)
        print_error("append: %s %s\n", err.message, err.detail);
    assert_int_equal(rc, 0);
    json_decref(r);
}

/* Every record the filter matches, following cursors with pages of `limit`. */
static json_t *
list_all(fixture *f, lh_audit_filter filter, size_t limit, size_t *pages)
{
    json_t *all = json_array();
    char *cursor = NULL;
    *pages = 0;
    for (;;) {
        filter.limit = limit;
        filter.cursor = cursor;
        json_t *page = NULL;
        lh_err err;
        int rc = lh_audit_list(f->audit, &filter, &page, &err);
        if (rc != 0)
            print_error("list: %s %s\n", err.message, err.detail);
        assert_int_equal(rc, 0);
        (*pages)++;
        json_array_extend(all, json_object_get(page, "records"));
        free(cursor);
        cursor = NULL;
        const char *next = json_string_value(json_object_get(page, "next"));
        if (next)
            cursor = lh_strdup(next);
        json_decref(page);
        if (!cursor)
            break;
    }
    return all;
}

static int64_t
stat_of(fixture *f, const char *name)
{
    json_t *s = json_object();
    lh_audit_stats(f->audit, s);
    int64_t v = json_integer_value(json_object_get(s, name));
    json_decref(s);
    return v;
}

static size_t
count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

/* ---- group commit ------------------------------------------------------------------------ */

#define THREADS 64
#define PER_THREAD 40

typedef struct worker {
    fixture *f;
    int id;
    int failures;
} worker;

static void *
append_many(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char id[64];
        snprintf(id, sizeof id, "t%02d-%03d", w->id, i);
        json_t *r = record(id, lh_now_us(), "search_candidates", "agent1", "ok");
        lh_err err;
        if (lh_audit_append(w->f->audit, r, &err) != 0)
            w->failures++;
        json_decref(r);
    }
    return NULL;
}

static void
check_each_once(json_t *all)
{
    assert_int_equal(json_array_size(all), THREADS * PER_THREAD);
    json_t *seen = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "call_id"));
        assert_non_null(id);
        assert_null(json_object_get(seen, id));
        json_object_set_new(seen, id, json_true());
    }
    assert_int_equal(json_object_size(seen), THREADS * PER_THREAD);
    json_decref(seen);
}

static void
test_group_commit(void **state)
{
    fixture *f = *state;
    pthread_t threads[THREADS];
    worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (worker){.f = f, .id = t};
        pthread_create(&threads[t], NULL, append_many, &workers[t]);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(workers[t].failures, 0);
    }
    int64_t appended = stat_of(f, "appended"), fsyncs = stat_of(f, "fsyncs");
    print_message("group commit: %lld records, %lld fsyncs (%d threads)\n", (long long)appended,
                  (long long)fsyncs, THREADS);
    assert_int_equal(appended, THREADS * PER_THREAD);
    assert_int_equal(stat_of(f, "pending"), THREADS * PER_THREAD);
    assert_true(fsyncs > 0);
    assert_true(fsyncs * 4 <= appended); /* shared: far fewer syncs than records */
    /* pending records are read back, each once */
    size_t pages;
    json_t *all = list_all(f, (lh_audit_filter){0}, 1000, &pages);
    check_each_once(all);
    assert_int_equal(pages, 3);
    json_decref(all);
    /* shipped at close; read back from the bucket after reopening, each once still */
    reopen(f);
    assert_int_equal(stat_of(f, "pending"), 0);
    assert_int_equal(count_files(f->dirs.audit_dir, "seg_"), 1); /* the new, empty one */
    all = list_all(f, (lh_audit_filter){0}, 1000, &pages);
    check_each_once(all);
    json_decref(all);
}

/* ---- recovery ------------------------------------------------------------------------------ */

static void
test_torn_line_dropped(void **state)
{
    fixture *f = *state;
    lh_audit_close(f->audit);
    f->audit = NULL;
    /* what a crash mid-write leaves: two whole records and the start of a third */
    char *path = lh_sprintf("%s/seg_%020lld_00112233aabbccdd.jsonl", f->dirs.audit_dir,
                            (long long)lh_now_us());
    FILE *fp = fopen(path, "w");
    fputs("{\"call_id\":\"c1\",\"ts\":\"2026-03-01T09:00:00.000001Z\",\"tool\":\"t\"}\n"
          "{\"call_id\":\"c2\",\"ts\":\"2026-03-01T09:00:00.000002Z\",\"tool\":\"t\"}\n"
          "{\"call_id\":\"c3\",\"ts\":\"2026-03-0",
          fp);
    fclose(fp);
    open_audit(f, 1000000);
    /* shipped at open: the segment is gone, its batch holds the two whole records */
    assert_int_equal(access(path, F_OK), -1);
    char *batch =
        lh_sprintf("%s/data/buckets/primary/_audit/batch_%s", f->dir, strrchr(path, '/') + 5);
    size_t len = 0;
    char *text = lh_test_read_file(batch, &len);
    assert_non_null(text);
    assert_int_equal(len, 2 * 63);
    free(text);
    free(batch);
    size_t pages;
    json_t *all = list_all(f, (lh_audit_filter){0}, 10, &pages);
    assert_int_equal(json_array_size(all), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "call_id")),
                        "c2");
    json_decref(all);
    json_t *one = NULL;
    lh_err err;
    assert_int_equal(lh_audit_get(f->audit, "c3", &one, &err), LH_ENOTFOUND);
    assert_string_equal(err.code, "audit_record_not_found");
    assert_int_equal(err.http_status, 404);
    free(path);
}

static void
test_shipped_once_after_crash_between_put_and_remove(void **state)
{
    fixture *f = *state;
    lh_audit_close(f->audit);
    f->audit = NULL;
    const char *line = "{\"call_id\":\"dup\",\"ts\":\"2026-03-01T09:00:00.000001Z\"}\n";
    char name[80];
    snprintf(name, sizeof name, "seg_%020lld_0011223344556677.jsonl", (long long)lh_now_us());
    char *path = lh_sprintf("%s/%s", f->dirs.audit_dir, name);
    FILE *fp = fopen(path, "w");
    fputs(line, fp);
    fclose(fp);
    /* the batch was stored, then the process died before removing the segment */
    char *key = lh_layout_audit_batch_key(name);
    lh_err err;
    assert_int_equal(lh_store_put_buffer(lh_buckets_primary(f->buckets), key, line, strlen(line),
                                         LH_PUT_CREATE_ONLY, &err),
                     0);
    open_audit(f, 1000000);
    assert_int_equal(access(path, F_OK), -1);
    size_t pages;
    json_t *all = list_all(f, (lh_audit_filter){0}, 10, &pages);
    assert_int_equal(json_array_size(all), 1);
    json_decref(all);
    assert_int_equal(stat_of(f, "errors"), 0);
    free(key);
    free(path);
}

/* ---- filters, paging, cursors -------------------------------------------------------------- */

static const int64_t BASE_US = 1772355600000000; /* 2026-03-01T09:00:00Z */

static void
fill(fixture *f)
{
    static const char *const tools[] = {"search_candidates", "update_phone", "list_open_jobs"};
    static const char *const outcomes[] = {"ok", "refused", "failed"};
    for (int i = 0; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%02d", i);
        append(f, record(id, BASE_US + (int64_t)i * 1000000, tools[i % 3],
                         i % 2 ? "agent1" : "agent2", outcomes[i % 3]));
    }
    /* two records in the same microsecond: the call id orders them */
    append(f, record("same-a", BASE_US + 100000000, "update_phone", "agent1", "ok"));
    append(f, record("same-b", BASE_US + 100000000, "update_phone", "agent1", "ok"));
}

static void
test_list_filters(void **state)
{
    fixture *f = *state;
    fill(f);
    reopen(f); /* half shipped, half pending: both are read */
    append(f, record("late", BASE_US + 200000000, "search_candidates", "agent2", "ok"));
    size_t pages;
    json_t *all = list_all(f, (lh_audit_filter){0}, 0, &pages);
    assert_int_equal(json_array_size(all), 33);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "call_id")),
                        "late");
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 1), "call_id")),
                        "same-b");
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 2), "call_id")),
                        "same-a");
    json_decref(all);
    all = list_all(f, (lh_audit_filter){.tool = "update_phone"}, 0, &pages);
    assert_int_equal(json_array_size(all), 12);
    json_decref(all);
    all = list_all(f, (lh_audit_filter){.tool = "update_phone", .principal = "agent1"}, 0, &pages);
    assert_int_equal(json_array_size(all), 7); /* r01 r07 r13 r19 r25 and the two same-* */
    json_decref(all);
    all = list_all(f, (lh_audit_filter){.outcome = "refused"}, 0, &pages);
    assert_int_equal(json_array_size(all), 10);
    json_decref(all);
    /* since inclusive, until exclusive */
    all = list_all(
        f, (lh_audit_filter){.since_us = BASE_US + 10000000, .until_us = BASE_US + 20000000}, 0,
        &pages);
    assert_int_equal(json_array_size(all), 10);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "call_id")),
                        "r19");
    json_decref(all);
    all = list_all(f, (lh_audit_filter){.workspace_id = "ws"}, 0, &pages);
    assert_int_equal(json_array_size(all), 0);
    json_decref(all);
}

static void
test_paging(void **state)
{
    fixture *f = *state;
    fill(f);
    size_t pages;
    json_t *all = list_all(f, (lh_audit_filter){0}, 4, &pages);
    assert_int_equal(json_array_size(all), 32);
    assert_int_equal(pages, 8);
    /* strictly newest first, no record twice, across pages */
    for (size_t i = 1; i < json_array_size(all); i++) {
        const char *a = json_string_value(json_object_get(json_array_get(all, i - 1), "ts"));
        const char *b = json_string_value(json_object_get(json_array_get(all, i), "ts"));
        assert_true(strcmp(a, b) >= 0);
    }
    json_decref(all);
    /* a page appended to meanwhile does not shift */
    json_t *page = NULL;
    lh_err err;
    assert_int_equal(lh_audit_list(f->audit, &(lh_audit_filter){.limit = 5}, &page, &err), 0);
    char *next = lh_strdup(json_string_value(json_object_get(page, "next")));
    json_decref(page);
    append(f, record("newest", BASE_US + 500000000, "t", "agent1", "ok"));
    assert_int_equal(
        lh_audit_list(f->audit, &(lh_audit_filter){.limit = 5, .cursor = next}, &page, &err), 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(page, "records"), 0), "call_id")),
                        "r26");
    json_decref(page);
    free(next);
}

static void
test_bad_cursors(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {"",           "garbage",    "v1.",        "v1.x.6162",
                                      "v1.12.616",  "v1.12.zz",   "v2.12.6162", "v1.12.",
                                      "v1.-5.6162", "v1.12.6100", NULL};
    for (size_t i = 0; bad[i]; i++) {
        json_t *page = NULL;
        lh_err err;
        lh_err_clear(&err);
        int rc = lh_audit_list(f->audit, &(lh_audit_filter){.cursor = bad[i]}, &page, &err);
        if (rc != LH_EINVAL)
            print_error("cursor '%s' was taken\n", bad[i]);
        assert_int_equal(rc, LH_EINVAL);
        assert_int_equal(err.http_status, 400);
        assert_string_equal(err.code, "invalid_cursor");
        assert_null(page);
    }
    /* hostile call ids in a cursor are data, not SQL */
    char *cursor = lh_sprintf("v1.1.%s", "27206f7220313d31202d2d"); /* "' or 1=1 --" */
    json_t *page = NULL;
    lh_err err;
    fill(f);
    assert_int_equal(lh_audit_list(f->audit, &(lh_audit_filter){.cursor = cursor}, &page, &err), 0);
    assert_int_equal(json_array_size(json_object_get(page, "records")), 0);
    json_decref(page);
    free(cursor);
}

/* ---- records ------------------------------------------------------------------------------- */

static void
test_invalid_and_large_records(void **state)
{
    fixture *f = *state;
    lh_err err;
    json_t *no_id = json_pack("{s:s}", "ts", "2026-03-01T09:00:00Z");
    assert_int_equal(lh_audit_append(f->audit, no_id, &err), LH_EINTERNAL);
    assert_int_equal(err.http_status, 500);
    assert_string_equal(err.code, "audit_record_invalid");
    json_decref(no_id);
    json_t *bad_ts = json_pack("{s:s, s:s}", "call_id", "x", "ts", "yesterday");
    assert_int_equal(lh_audit_append(f->audit, bad_ts, &err), LH_EINTERNAL);
    json_decref(bad_ts);
    /* over 256 KB: stored, with its arguments replaced */
    char *big = malloc(300 * 1024);
    memset(big, 'a', 300 * 1024 - 1);
    big[300 * 1024 - 1] = '\0';
    json_t *r = record("big", BASE_US, "t", "agent1", "ok");
    json_object_set_new(r, "arguments", json_pack("{s:s}", "text", big));
    free(big);
    append(f, r);
    json_t *got = NULL;
    assert_int_equal(lh_audit_get(f->audit, "big", &got, &err), 0);
    assert_true(json_is_true(json_object_get(json_object_get(got, "arguments"), "truncated")));
    assert_string_equal(json_string_value(json_object_get(got, "tool")), "t");
    json_decref(got);
    assert_int_equal(stat_of(f, "appended"), 1);
}

static void
test_parse_time(void **state)
{
    int64_t us = 0;
    assert_int_equal(lh_audit_parse_time("2026-03-01T09:00:00Z", &us), 0);
    assert_int_equal(us, BASE_US);
    assert_int_equal(lh_audit_parse_time("2026-03-01T10:00:00.5+01:00", &us), 0);
    assert_int_equal(us, BASE_US + 500000);
    assert_int_equal(lh_audit_parse_time("2026-03-01", &us), 0);
    assert_int_equal(us, BASE_US - 9 * 3600 * 1000000LL);
    static const char *const bad[] = {"",
                                      "2026-3-1",
                                      "2026-02-30",
                                      "2026-03-01T09:00",
                                      "2026-03-01T09:00:00",
                                      "2026-03-01T25:00:00Z",
                                      "2026-03-01T09:00:00.Z",
                                      "2026-03-01T09:00:00Zjunk",
                                      "yesterday",
                                      NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_int_equal(lh_audit_parse_time(bad[i], &us), -1);
}

/* ---- the view and the gate ------------------------------------------------------------------ */

static lh_resolved
refuse_audit_fn(void *ctx, const char *name, const char *select, lh_buf *out)
{
    (void)ctx, (void)select, (void)out;
    return strcmp(name, LH_AUDIT_VIEW) != 0 ? LH_RESOLVE_AS_IS : LH_RESOLVE_ABSENT;
}

static lh_resolved
allow_all_fn(void *ctx, const char *name, const char *select, lh_buf *out)
{
    (void)ctx, (void)name, (void)select, (void)out;
    return LH_RESOLVE_AS_IS;
}

/* a rewrite wrapping the registered SELECT: only the refused calls */
static lh_resolved
refused_only_fn(void *ctx, const char *name, const char *select, lh_buf *out)
{
    (void)ctx;
    if (strcmp(name, LH_AUDIT_VIEW) != 0)
        return LH_RESOLVE_AS_IS;
    lh_buf_printf(out, "SELECT * FROM (%s) AS a WHERE outcome = 'refused'", select);
    return LH_RESOLVE_REWRITTEN;
}

static const lh_resolver refuse_audit_r = {refuse_audit_fn, NULL, "no-audit"};
static const lh_resolver *const refuse_audit = &refuse_audit_r;
static const lh_resolver allow_all_r = {allow_all_fn, NULL, "all"};
static const lh_resolver *const allow_all = &allow_all_r;
static const lh_resolver refused_only_r = {refused_only_fn, NULL, "refused-only"};
static const lh_resolver *const refused_only = &refused_only_r;

static int
query(fixture *f, const char *sql, const lh_resolver *resolver, char **text, lh_err *err)
{
    lh_query_opts o = {.sql = sql, .format = LH_QUERY_NDJSON, .resolver = resolver};
    lh_query *q = NULL;
    int rc = lh_query_start(f->views, &o, &q, err);
    if (rc != 0)
        return rc;
    lh_buf out;
    lh_buf_init(&out);
    bool end = false, failed = false;
    char chunk[4096];
    while (!end && !failed)
        lh_buf_append(&out, chunk, lh_query_read(q, chunk, sizeof chunk, &end, &failed, err));
    lh_query_free(q);
    lh_buf_append(&out, "", 1);
    *text = lh_buf_steal(&out);
    return failed ? -1 : 0;
}

static void
test_view_and_gate(void **state)
{
    fixture *f = *state;
    fill(f);
    reopen(f);
    append(f, record("pending-one", BASE_US, "update_phone", "agent1", "refused"));
    const char *sql = "SELECT count(*) AS n, count(DISTINCT call_id) AS ids, "
                      "count(*) FILTER (WHERE outcome = 'refused') AS refused, "
                      "max(ts) AS newest, min(roles[1]) AS role FROM _audit";
    char *text = NULL;
    lh_err err;
    /* admitted, twice: the second run reuses the kept statement */
    for (int i = 0; i < 2; i++) {
        int rc = query(f, sql, allow_all, &text, &err);
        if (rc != 0)
            print_error("%s %s\n", err.message, err.detail);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(text, "\"n\":33"));
        assert_non_null(strstr(text, "\"ids\":33"));
        assert_non_null(strstr(text, "\"refused\":11"));
        assert_non_null(strstr(text, "\"role\":\"agent\""));
        free(text);
    }
    /* rewritten for another view: the kept statement of the first is not reused, and
     * the first view's statement is still its own afterwards */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(query(f, sql, refused_only, &text, &err), 0);
        assert_non_null(strstr(text, "\"n\":11"));
        free(text);
    }
    assert_int_equal(query(f, sql, NULL, &text, &err), 0);
    assert_non_null(strstr(text, "\"n\":33"));
    free(text);
    /* refused: as a table nothing defines, even with the statement kept */
    assert_int_equal(query(f, sql, refuse_audit, &text, &err), LH_EINVAL);
    assert_int_equal(err.http_status, 400);
    assert_non_null(strstr(err.detail, "Table with name _audit does not exist"));
    lh_err missing;
    assert_int_equal(query(f, "SELECT * FROM _no_such_table", refuse_audit, &text, &missing),
                     LH_EINVAL);
    assert_string_equal(err.code, missing.code);
    assert_string_equal(err.message, missing.message);
    /* a CTE of that name is the statement's own */
    assert_int_equal(
        query(f, "WITH _audit AS (SELECT 1 AS x) SELECT x FROM _audit", refuse_audit, &text, &err),
        0);
    assert_non_null(strstr(text, "\"x\":1"));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_line_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipped_once_after_crash_between_put_and_remove, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cursors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_and_large_records, setup, teardown),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test_setup_teardown(test_view_and_gate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
