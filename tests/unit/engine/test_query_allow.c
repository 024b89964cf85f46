/*
 * test_query_allow.c — the engine's side of "user SQL names datasets, never files":
 * an engine that runs user SQL refuses file-reading table functions and replacement
 * scans while the internal engine keeps them; the spill folder and its cap are the
 * ones given at open (and leftovers in it are removed); reserved names come from the
 * database itself.
 */
#include "engine/engine_int.h"
#include "testutil.h"

#include <sys/stat.h>

typedef struct fixture {
    char *dir, *slash, *spill, *file;
    lh_engine *user, *internal;
} fixture;

static int
setup(void **state)
{
    fixture *f = lh_calloc(1, sizeof *f);
    f->dir = lh_test_mkdtemp("qallow");
    f->slash = lh_sprintf("%s/", f->dir);
    f->spill = lh_sprintf("%s/spill", f->dir);
    f->file = lh_sprintf("%s/t.parquet", f->dir);
    /* a spill file a crash left behind */
    mkdir(f->spill, 0700);
    char *leftover = lh_sprintf("%s/duckdb_temp_storage_DEFAULT-0.tmp", f->spill);
    FILE *fp = fopen(leftover, "w");
    assert_non_null(fp);
    fclose(fp);
    free(leftover);
    const char *dirs[] = {f->slash, NULL};
    lh_engine_opts o = {.allowed_dirs = dirs, .spill_dir = f->spill, .spill_bytes = 1 << 20};
    lh_err err;
    assert_int_equal(lh_engine_open(&o, &f->internal, &err), 0);
    o.user_sql = true;
    assert_int_equal(lh_engine_open(&o, &f->user, &err), 0);
    char *sql = lh_sprintf("COPY (SELECT 1 AS a) TO '%s' (FORMAT parquet)", f->file);
    assert_int_equal(lh_engine_exec(f->internal, sql, NULL, &err), 0);
    free(sql);
    sql = lh_sprintf("CREATE VIEW t AS SELECT * FROM read_parquet('%s')", f->file);
    assert_int_equal(lh_engine_exec(f->user, sql, NULL, &err), 0);
    free(sql);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    lh_engine_close(f->user);
    lh_engine_close(f->internal);
    unlink(f->file);
    rmdir(f->spill);
    rmdir(f->dir);
    free(f->file);
    free(f->spill);
    free(f->slash);
    free(f->dir);
    free(f);
    return 0;
}

static int
query(lh_engine *eng, const char *sql, lh_err *err)
{
    lh_query_opts o = {.sql = sql, .format = LH_QUERY_JSON};
    lh_query *q = NULL;
    int rc = lh_query_start(eng, &o, &q, err);
    lh_query_free(q);
    return rc;
}

static void
test_user_sql_names_datasets_only(void **state)
{
    fixture *f = *state;
    lh_err err;
    char *sql = lh_sprintf("SELECT * FROM read_parquet('%s')", f->file);
    assert_int_equal(query(f->user, sql, &err), LH_EPERM);
    assert_int_equal(err.http_status, 403);
    assert_non_null(strstr(err.message, "read_parquet"));
    /* the internal engine reads its files */
    assert_int_equal(query(f->internal, sql, &err), 0);
    free(sql);
    sql = lh_sprintf("SELECT * FROM '%s'", f->file);
    assert_int_equal(query(f->user, sql, &err), LH_EPERM);
    free(sql);
    assert_int_equal(query(f->user, "SELECT current_setting('temp_directory')", &err), LH_EPERM);
    assert_int_equal(query(f->user, "SELECT * FROM duckdb_settings()", &err), LH_EPERM);
    /* not a SELECT: admission's own answer */
    assert_int_equal(query(f->user, "CREATE TABLE x (a INT)", &err), LH_EPERM);
    assert_int_equal(query(f->user, "SELEC 1", &err), LH_EINVAL);
    assert_int_equal(query(f->user, "SELECT a FROM t, range(2)", &err), 0);
}

static void
test_spill_folder_and_cap(void **state)
{
    fixture *f = *state;
    lh_err err;
    json_t *rows = NULL;
    assert_int_equal(lh_engine_rows(f->user,
                                    "SELECT current_setting('temp_directory') AS d, "
                                    "current_setting('max_temp_directory_size') AS m",
                                    &rows, &err),
                     0);
    json_t *row = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(row, "d")), f->spill);
    assert_string_equal(json_string_value(json_object_get(row, "m")), "1.0 MiB");
    json_decref(rows);
    char *leftover = lh_sprintf("%s/duckdb_temp_storage_DEFAULT-0.tmp", f->spill);
    assert_int_equal(access(leftover, F_OK), -1);
    free(leftover);
}

static void
test_reserved_names(void **state)
{
    fixture *f = *state;
    assert_non_null(strstr(lh_engine_reserved_name(f->user, "select"), "keyword"));
    assert_non_null(strstr(lh_engine_reserved_name(f->user, "TABLE"), "keyword"));
    assert_non_null(strstr(lh_engine_reserved_name(f->user, "main"), "schema"));
    assert_non_null(strstr(lh_engine_reserved_name(f->user, "system"), "catalog"));
    assert_non_null(strstr(lh_engine_reserved_name(f->user, "pg_settings"), "system view"));
    assert_null(lh_engine_reserved_name(f->user, "orders"));
    assert_null(lh_engine_reserved_name(f->user, "year")); /* unreserved keyword */
}

static int
count_rows(void *ctx, const lh_batch *b)
{
    *(size_t *)ctx += lh_batch_rows(b);
    return 0;
}

/* Scan sql on the user engine recording what it read; returns the rows it gave. */
static size_t
scan_reads(fixture *f, const char *sql, lh_reads *reads)
{
    size_t n = 0;
    lh_err err;
    lh_scan_opts o = {.sql = sql, .reads = reads};
    int rc = lh_engine_scan(f->user, &o, count_rows, &n, &err);
    if (rc != 0)
        print_message("%s: %s %s\n", sql, err.message, err.detail);
    assert_int_equal(rc, 0);
    return n;
}

/* What an answer depended on: the registered names with their stamps, which a new
 * registration moves, and no stability for answers that change by themselves. */
static void
test_reads(void **state)
{
    fixture *f = *state;
    lh_err err;
    assert_int_equal(lh_engine_set_dataset(f->user, "people", "SELECT * FROM range(3) r(a)", &err),
                     0);
    assert_int_equal(lh_engine_set_dataset(f->user, "pets", "SELECT * FROM range(2) r(a)", &err),
                     0);
    assert_int_equal(lh_engine_set_dataset(f->user, "_events", "SELECT 1 AS b", &err), 0);
    lh_reads r;
    assert_int_equal(scan_reads(f,
                                "SELECT a FROM people WHERE a IN (SELECT a FROM pets) "
                                "AND a IN (SELECT a FROM people)",
                                &r),
                     2);
    assert_true(r.stable);
    assert_int_equal(r.n, 2); /* people once */
    assert_true(lh_engine_reads_current(f->user, &r));
    /* registering a name again (a new version) makes the answer old, even unchanged */
    assert_int_equal(lh_engine_set_dataset(f->user, "pets", "SELECT * FROM range(2) r(a)", &err),
                     0);
    assert_false(lh_engine_reads_current(f->user, &r));
    assert_int_equal(scan_reads(f, "SELECT a FROM people WHERE a IN (SELECT a FROM pets)", &r), 2);
    assert_true(lh_engine_reads_current(f->user, &r));
    assert_int_equal(lh_engine_set_dataset(f->user, "people", NULL, &err), 0); /* gone */
    assert_false(lh_engine_reads_current(f->user, &r));
    /* answers that change without a registration are never stable */
    static const char *const changing[] = {
        "SELECT a FROM pets WHERE random() < 2",
        "SELECT a FROM pets WHERE current_date > DATE '2000-01-01'",
        "SELECT a FROM pets WHERE NOW() > TIMESTAMP '2000-01-01'",
        "SELECT a FROM pets WHERE a::VARCHAR <> uuid()::VARCHAR",
        "SELECT a FROM pets USING SAMPLE 100 PERCENT (bernoulli)",
        "SELECT a FROM pets WHERE a IN (SELECT a FROM pets USING SAMPLE 2 ROWS)",
        "SELECT a FROM pets, _events",
        NULL};
    for (size_t i = 0; changing[i]; i++) {
        scan_reads(f, changing[i], &r);
        assert_false(r.stable);
    }
    /* functions of their arguments alone keep it stable */
    scan_reads(f, "SELECT a FROM pets WHERE lower('X') = 'x' AND abs(a) >= 0", &r);
    assert_true(r.stable);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_user_sql_names_datasets_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_folder_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
