/*
 * test_query_pool.c — statements kept by pooled connections (src/engine/pool.c) never give
 * an answer of views that changed: changed under them without the engine knowing
 * (another column type, another column name, the view gone), and changed through the
 * engine (an empty dataset getting its first file, which DuckDB does not rebind by
 * itself).
 */
#include "engine/engine_int.h"
#include "testutil.h"
#include "testengine.h"

typedef struct fixture {
    lh_test_engine t;
    char *dir;             /* t.dir */
    lh_engine *eng;        /* t.eng */
    duckdb_connection raw; /* changes views behind the engine's back */
} fixture;

static char *
file_in(fixture *f, const char *name)
{
    return lh_sprintf("%s/%s.parquet", f->dir, name);
}

static int
setup(void **state)
{
    fixture *f = lh_calloc(1, sizeof *f);
    lh_test_engine_open(&f->t, "qpool");
    f->dir = f->t.dir;
    f->eng = f->t.eng;
    lh_err err;
    assert_int_equal(duckdb_connect(f->eng->db, &f->raw), DuckDBSuccess);
    static const char *const files[][2] = {
        {"p_int", "SELECT 1 AS a"}, {"p_text", "SELECT 'x' AS a"}, {"p_b", "SELECT 3 AS b"}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *path = file_in(f, files[i][0]);
        char *sql = lh_sprintf("COPY (%s) TO '%s' (FORMAT parquet)", files[i][1], path);
        assert_int_equal(lh_engine_exec(f->eng, sql, NULL, &err), 0);
        free(sql);
        free(path);
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    duckdb_disconnect(&f->raw);
    static const char *const names[] = {"p_int", "p_text", "p_b"};
    for (size_t i = 0; i < 3; i++) {
        char *path = file_in(f, names[i]);
        unlink(path);
        free(path);
    }
    lh_test_engine_close(&f->t);
    free(f);
    return 0;
}

/* Redefine view v over one file, behind the engine's back (no generation change). */
static void
raw_view(fixture *f, const char *file)
{
    char *path = file_in(f, file);
    char *sql = lh_sprintf("CREATE OR REPLACE VIEW v AS SELECT * FROM read_parquet('%s')", path);
    duckdb_result r;
    assert_int_equal(duckdb_query(f->raw, sql, &r), DuckDBSuccess);
    duckdb_destroy_result(&r);
    free(sql);
    free(path);
}

/* The JSON answer of `SELECT * FROM v` (new), or NULL with *status set on failure. */
static json_t *
query_v(fixture *f, int *status)
{
    lh_query_opts o = {.sql = "SELECT * FROM v", .format = LH_QUERY_JSON, .row_limit = 100};
    lh_query *q = NULL;
    lh_err err;
    *status = 200;
    if (lh_query_start(f->eng, &o, &q, &err) != 0) {
        *status = err.http_status;
        return NULL;
    }
    lh_buf out;
    lh_buf_init(&out);
    char buf[4096];
    bool end = false, failed = false;
    while (!end) {
        size_t n = lh_query_read(q, buf, sizeof buf, &end, &failed, &err);
        lh_buf_append(&out, buf, n);
    }
    lh_query_free(q);
    assert_false(failed);
    json_error_t jerr;
    json_t *answer = json_loadb(out.data, out.len, 0, &jerr);
    lh_buf_free(&out);
    assert_non_null(answer);
    return answer;
}

/* Run the query three times (the later ones from a kept statement) and check each
 * answer: its first column's name and type, and its rows as JSON text. */
static void
expect(fixture *f, const char *name, const char *type, const char *rows)
{
    for (int i = 0; i < 3; i++) {
        int status;
        json_t *a = query_v(f, &status);
        assert_int_equal(status, 200);
        json_t *col = json_array_get(json_object_get(a, "columns"), 0);
        assert_string_equal(json_string_value(json_object_get(col, "name")), name);
        assert_string_equal(json_string_value(json_object_get(col, "type")), type);
        char *got = json_dumps(json_object_get(a, "rows"), JSON_COMPACT);
        assert_string_equal(got, rows);
        free(got);
        json_decref(a);
    }
}

static void
test_changed_behind_the_engine(void **state)
{
    fixture *f = *state;
    raw_view(f, "p_int");
    expect(f, "a", "INTEGER", "[{\"a\":1}]");
    raw_view(f, "p_b"); /* the same type under another name */
    expect(f, "b", "INTEGER", "[{\"b\":3}]");
    raw_view(f, "p_int");
    expect(f, "a", "INTEGER", "[{\"a\":1}]");
    raw_view(f, "p_text"); /* another type under the same name */
    expect(f, "a", "VARCHAR", "[{\"a\":\"x\"}]");
    duckdb_result r;
    assert_int_equal(duckdb_query(f->raw, "DROP VIEW v", &r), DuckDBSuccess);
    duckdb_destroy_result(&r);
    for (int i = 0; i < 2; i++) {
        int status;
        assert_null(query_v(f, &status));
        assert_int_equal(status, 400);
    }
}

static void
test_changed_through_the_engine(void **state)
{
    fixture *f = *state;
    lh_err err;
    /* an empty dataset: a view without files, which DuckDB never rebinds by itself */
    assert_int_equal(lh_engine_define_view(f->eng, "v", NULL, 0, "NULL::INTEGER AS a", &err), 0);
    expect(f, "a", "INTEGER", "[]");
    char *path = file_in(f, "p_int");
    const char *paths[] = {path};
    assert_int_equal(lh_engine_define_view(f->eng, "v", paths, 1, NULL, &err), 0);
    expect(f, "a", "INTEGER", "[{\"a\":1}]");
    assert_int_equal(lh_engine_define_view(f->eng, "v", NULL, 0, "NULL::INTEGER AS a", &err), 0);
    expect(f, "a", "INTEGER", "[]");
    free(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_changed_behind_the_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_through_the_engine, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
