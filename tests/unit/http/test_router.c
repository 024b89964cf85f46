/*
 * test_router.c — method + path matching (src/http/router.c): literals, captures,
 * literal-over-capture precedence, 404, 405 with the Allow list, HEAD via GET, and the
 * paths that must not match (trailing slash, empty segments, too many captures).
 */
#include "testutil.h"

#include "http/http_int.h"

/* Dummy handlers: each returns its own number so a match can be told apart. */
#define DUMMY_HANDLER(name, number)                                                                \
    static int name(lh_req *req, lh_resp *resp)                                                    \
    {                                                                                              \
        return number;                                                                             \
    }
DUMMY_HANDLER(h_root, 1)
DUMMY_HANDLER(h_health, 2)
DUMMY_HANDLER(h_jobs_list, 3)
DUMMY_HANDLER(h_jobs_submit, 4)
DUMMY_HANDLER(h_job_get, 5)
DUMMY_HANDLER(h_job_cancel, 6)
DUMMY_HANDLER(h_jobs_stats, 7)
DUMMY_HANDLER(h_file, 8)
DUMMY_HANDLER(h_eight, 9)
DUMMY_HANDLER(h_nine, 10)
DUMMY_HANDLER(h_ds_literal, 11)

/* The capture route comes before the literal one on purpose: precedence must not depend
 * on table order. */
static const lh_route ROUTES[] = {
    {"GET", "/", h_root, LH_ALLOW_PUBLIC, 0},
    {"GET", "/health", h_health, LH_ALLOW_PUBLIC, 0},
    {"GET", "/jobs", h_jobs_list, LH_ALLOW_READ, 0},
    {"POST", "/jobs", h_jobs_submit, LH_ALLOW_WRITE, LH_ROUTE_JSON_BODY},
    {"GET", "/jobs/{id}", h_job_get, LH_ALLOW_READ, 0},
    {"DELETE", "/jobs/{id}", h_job_cancel, LH_ALLOW_WRITE, 0},
    {"GET", "/jobs/stats", h_jobs_stats, LH_ALLOW_ADMIN, 0},
    {"GET", "/datasets/{ds}/files/{file}", h_file, LH_ALLOW_READ, 0},
    {"GET", "/datasets/{ds}/files/latest", h_ds_literal, LH_ALLOW_READ, 0},
    {"POST", "/p/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", h_eight, LH_ALLOW_ANY, 0},
    {"GET", "/q/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h_nine, LH_ALLOW_ANY, 0},
};
#define N_ROUTES (sizeof ROUTES / sizeof ROUTES[0])

static int
route(const char *method, const char *path, lh_arena *arena, lh_route_match *m, char *allow,
      size_t allow_size)
{
    return lh_http__route(ROUTES, N_ROUTES, method, path, arena, m, allow, allow_size);
}

/* Route a request that must match; returns the handler's number. */
#define MATCH(method, path, arena, m) match_at((method), (path), (arena), (m), __FILE__, __LINE__)

static int
match_at(const char *method, const char *path, lh_arena *arena, lh_route_match *m, const char *file,
         int line)
{
    char allow[128] = "";
    int rc = route(method, path, arena, m, allow, sizeof allow);
    if (rc != 0) {
        print_error("%s %s: expected a match, got %d (allow \"%s\")\n", method, path, rc, allow);
        _fail(file, line);
    }
    _assert_true(m->route == &ROUTES[m->route_index], "route matches index", file, line);
    return m->route->handler(NULL, NULL);
}

/* The value of capture name, or NULL. */
static const char *
param(const lh_route_match *m, const char *name)
{
    for (size_t i = 0; i < m->n_params; i++)
        if (m->name_lens[i] == strlen(name) && memcmp(m->names[i], name, m->name_lens[i]) == 0)
            return m->values[i];
    return NULL;
}

#define EXPECT_404(method, path) expect_rc((method), (path), LH_ENOTFOUND, NULL, __FILE__, __LINE__)
#define EXPECT_405(method, path, allow)                                                            \
    expect_rc((method), (path), LH_EPERM, (allow), __FILE__, __LINE__)

static void
expect_rc(const char *method, const char *path, int want, const char *want_allow, const char *file,
          int line)
{
    lh_arena *arena = lh_arena_new();
    lh_route_match m;
    memset(&m, 0, sizeof m);
    char allow[128] = "sentinel";
    int rc = route(method, path, arena, &m, allow, sizeof allow);
    lh_arena_free(arena);
    if (rc != want) {
        print_error("%s %s: expected %d, got %d\n", method, path, want, rc);
        _fail(file, line);
    }
    if (want_allow)
        _assert_string_equal(allow, want_allow, file, line);
    _assert_true(m.route == NULL, "no route set", file, line);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_literal_match(void **state)
{
    lh_arena *arena = lh_arena_new();
    lh_route_match m;
    assert_int_equal(MATCH("GET", "/health", arena, &m), 2);
    assert_int_equal(m.route_index, 1);
    assert_int_equal(m.n_params, 0);
    assert_int_equal(MATCH("GET", "/", arena, &m), 1);
    assert_int_equal(m.n_params, 0);
    assert_int_equal(MATCH("GET", "/jobs", arena, &m), 3);
    assert_int_equal(MATCH("POST", "/jobs", arena, &m), 4);
    assert_int_equal(m.route->flags, LH_ROUTE_JSON_BODY);
    assert_int_equal(m.route->allow, LH_ALLOW_WRITE);
    lh_arena_free(arena);
}

static void
test_param_capture(void **state)
{
    lh_arena *arena = lh_arena_new();
    lh_route_match m;
    const char *path = "/jobs/job_000001_abcd";
    assert_int_equal(MATCH("GET", path, arena, &m), 5);
    assert_int_equal(m.n_params, 1);
    assert_int_equal(m.name_lens[0], 2);
    assert_memory_equal(m.names[0], "id", 2);
    assert_string_equal(m.values[0], "job_000001_abcd");
    assert_true(m.values[0] < path || m.values[0] > path + strlen(path)); /* a copy */
    assert_int_equal(MATCH("DELETE", "/jobs/x", arena, &m), 6);
    assert_string_equal(param(&m, "id"), "x");

    /* two captures, in pattern order; values may hold any byte but '/' */
    assert_int_equal(MATCH("GET", "/datasets/sales/files/part-0001.parquet", arena, &m), 8);
    assert_int_equal(m.n_params, 2);
    assert_string_equal(param(&m, "ds"), "sales");
    assert_string_equal(param(&m, "file"), "part-0001.parquet");
    assert_memory_equal(m.names[0], "ds", 2);
    assert_memory_equal(m.names[1], "file", 4);
    assert_int_equal(MATCH("GET", "/jobs/a b%20{c}?", arena, &m), 5);
    assert_string_equal(param(&m, "id"), "a b%20{c}?");
    lh_arena_free(arena);
}

static void
test_literal_beats_param(void **state)
{
    lh_arena *arena = lh_arena_new();
    lh_route_match m;
    assert_int_equal(MATCH("GET", "/jobs/stats", arena, &m), 7);
    assert_int_equal(m.n_params, 0);
    /* the literal route is GET-only; DELETE /jobs/stats is the capture route */
    assert_int_equal(MATCH("DELETE", "/jobs/stats", arena, &m), 6);
    assert_string_equal(param(&m, "id"), "stats");
    /* "stats" only wins as a whole segment */
    assert_int_equal(MATCH("GET", "/jobs/stats2", arena, &m), 5);
    assert_int_equal(MATCH("GET", "/jobs/stat", arena, &m), 5);
    /* a later literal segment wins too, and the other captures still fill */
    assert_int_equal(MATCH("GET", "/datasets/sales/files/latest", arena, &m), 11);
    assert_int_equal(m.n_params, 1);
    assert_string_equal(param(&m, "ds"), "sales");
    lh_arena_free(arena);
}

static void
test_not_found(void **state)
{
    EXPECT_404("GET", "/nope");
    EXPECT_404("GET", "/healthz");
    EXPECT_404("GET", "/health/x");
    EXPECT_404("GET", "/jobs/a/b");
    EXPECT_404("GET", "/datasets/sales/files");
    EXPECT_404("GET", "/datasets/sales/file/x");
    EXPECT_404("GET", "");
    EXPECT_404("GET", "health");
    EXPECT_404("GET", "//");
    EXPECT_404("PATCH", "/nope"); /* 404 wins over 405 when no pattern matches */
}

static void
test_trailing_slash_and_empty_segments(void **state)
{
    EXPECT_404("GET", "/health/");
    EXPECT_404("GET", "/jobs/"); /* an empty segment is not an {id} */
    EXPECT_404("DELETE", "/jobs/");
    EXPECT_404("GET", "/jobs//");
    EXPECT_404("GET", "//jobs");
    EXPECT_404("GET", "/jobs//x");
    EXPECT_404("GET", "/jobs/x/");
    EXPECT_404("GET", "/datasets//files/x");
    EXPECT_404("GET", "/datasets/sales/files/");
}

static void
test_method_not_allowed(void **state)
{
    EXPECT_405("PUT", "/jobs", "GET, POST, HEAD");
    EXPECT_405("DELETE", "/jobs", "GET, POST, HEAD");
    EXPECT_405("POST", "/jobs/123", "GET, DELETE, HEAD");
    EXPECT_405("DELETE", "/health", "GET, HEAD");
    EXPECT_405("POST", "/", "GET, HEAD");
    /* every route whose pattern matches contributes, each method once */
    EXPECT_405("POST", "/jobs/stats", "GET, DELETE, HEAD");
    /* no GET route: no HEAD either */
    EXPECT_405("GET", "/p/1/2/3/4/5/6/7/8", "POST");
    EXPECT_405("HEAD", "/p/1/2/3/4/5/6/7/8", "POST");
    /* methods are case-sensitive */
    EXPECT_405("get", "/health", "GET, HEAD");
}

static void
test_head_served_by_get(void **state)
{
    lh_arena *arena = lh_arena_new();
    lh_route_match m;
    assert_int_equal(MATCH("HEAD", "/health", arena, &m), 2);
    assert_int_equal(MATCH("HEAD", "/jobs", arena, &m), 3);
    assert_int_equal(MATCH("HEAD", "/jobs/7", arena, &m), 5);
    assert_string_equal(param(&m, "id"), "7");
    assert_int_equal(MATCH("HEAD", "/jobs/stats", arena, &m), 7);
    lh_arena_free(arena);
}

static void
test_max_params(void **state)
{
    lh_arena *arena = lh_arena_new();
    lh_route_match m;
    /* LH_MAX_PARAMS (8) captures fill every slot */
    assert_int_equal(MATCH("POST", "/p/v1/v2/v3/v4/v5/v6/v7/v8", arena, &m), 9);
    assert_int_equal(m.n_params, LH_MAX_PARAMS);
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (size_t i = 0; i < LH_MAX_PARAMS; i++) {
        char want[8];
        snprintf(want, sizeof want, "v%zu", i + 1);
        assert_string_equal(param(&m, names[i]), want);
    }
    lh_arena_free(arena);
    /* a pattern with more captures than that can never match */
    EXPECT_404("GET", "/q/1/2/3/4/5/6/7/8/9");
    EXPECT_404("POST", "/p/1/2/3/4/5/6/7");
    EXPECT_404("POST", "/p/1/2/3/4/5/6/7/8/9");
}

static void
test_small_allow_buffer(void **state)
{
    /* the Allow list is cut short rather than overflowing the buffer */
    lh_arena *arena = lh_arena_new();
    lh_route_match m;
    char allow[12];
    memset(allow, 'x', sizeof allow);
    assert_int_equal(route("PUT", "/jobs", arena, &m, allow, 4), LH_EPERM);
    assert_string_equal(allow, "GET");
    assert_int_equal(allow[4], 'x');
    /* no method is cut in half: ", POST" does not fit in 8, so it is left out whole */
    assert_int_equal(route("PUT", "/jobs", arena, &m, allow, 8), LH_EPERM);
    assert_string_equal(allow, "GET");
    assert_int_equal(route("PUT", "/jobs", arena, &m, allow, sizeof allow), LH_EPERM);
    assert_string_equal(allow, "GET, POST"); /* ", HEAD" does not fit */
    lh_arena_free(arena);
}

static void
test_empty_table(void **state)
{
    lh_arena *arena = lh_arena_new();
    lh_route_match m;
    char allow[16];
    assert_int_equal(lh_http__route(ROUTES, 0, "GET", "/health", arena, &m, allow, sizeof allow),
                     LH_ENOTFOUND);
    lh_arena_free(arena);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_match),
        cmocka_unit_test(test_param_capture),
        cmocka_unit_test(test_literal_beats_param),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_trailing_slash_and_empty_segments),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_head_served_by_get),
        cmocka_unit_test(test_max_params),
        cmocka_unit_test(test_small_allow_buffer),
        cmocka_unit_test(test_empty_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
