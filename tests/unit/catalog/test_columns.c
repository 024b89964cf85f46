/*
 * test_columns.c — column governance in the catalog (src/catalog/columns.c): which columns
 * a reader of a clearance sees masked, the SQL that masks them (typed NULLs; the keyed hash
 * of lh_mask_hash, equal in SQL and in C, so joins on a masked column still work), masking
 * of row objects, required metadata, and the suggestions of likely personal data from
 * column names and sampled values of a real Parquet file.
 */
#include "testutil.h"

#include "catalog/catalog.h"
#include "testengine.h"

static const uint8_t KEY[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static char *no_env[] = {NULL};

typedef struct fixture {
    char *dir;
    lh_engine *eng;
    lh_config *cfg;
    lh_buckets *buckets;
    lh_cache *cache;
    lh_catalog *cat;
} fixture;

static int
setup(void **state)
{
    lh_log_set_level(LH_LOG_OFF);
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = lh_test_mkdtemp("columns_");
    char *slash = lh_sprintf("%s/", f->dir);
    const char *dirs[] = {slash, NULL};
    lh_engine_opts o = {.allowed_dirs = dirs, .mask_key = KEY};
    lh_err err;
    assert_int_equal(lh_engine_open(&o, &f->eng, &err), 0);
    free(slash);
    char *cfg_path = lh_sprintf("%s/lakehouse.toml", f->dir);
    FILE *fp = fopen(cfg_path, "w");
    assert_non_null(fp);
    fprintf(fp,
            "[server]\ndata_dir = \"%s/data\"\n[storage]\nprobe_interval_ms = 0\n"
            "journal_flush_ms = 3600000\n[catalog]\nrequire = [\"owner\", \"description\"]\n",
            f->dir);
    fclose(fp);
    assert_int_equal(lh_config_load(cfg_path, no_env, &f->cfg, &err), 0);
    free(cfg_path);
    assert_string_equal(lh_config_list(f->cfg, "catalog.require"), "owner,description");
    assert_int_equal(lh_buckets_open(f->cfg, &f->buckets, &err), 0);
    char *cache_dir = lh_sprintf("%s/cache", f->dir), *work = lh_sprintf("%s/work", f->dir);
    mkdir(cache_dir, 0700);
    mkdir(work, 0700);
    f->cache = lh_cache_new(cache_dir, 1 << 20);
    lh_catalog_deps deps = {.buckets = f->buckets,
                            .engine = f->eng,
                            .cache = f->cache,
                            .work_dir = work,
                            .require = lh_config_list(f->cfg, "catalog.require"),
                            .mask_key = KEY};
    assert_int_equal(lh_catalog_open(&deps, &f->cat, &err), 0);
    free(cache_dir);
    free(work);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    lh_catalog_close(f->cat);
    lh_cache_free(f->cache);
    lh_buckets_close(f->buckets);
    lh_config_free(f->cfg);
    lh_engine_close(f->eng);
    lh_test_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A manifest of people(id BIGINT, email VARCHAR, salary DOUBLE, city VARCHAR). */
static json_t *
people(const char *dataset_level, const char *columns_meta)
{
    json_t *m = json_loads("{\"name\": \"people\", \"columns\": [{\"name\": \"id\", \"type\": "
                           "\"BIGINT\"}, {\"name\": \"email\", \"type\": \"VARCHAR\"}, "
                           "{\"name\": \"salary\", \"type\": \"DOUBLE\"}, {\"name\": \"city\", "
                           "\"type\": \"VARCHAR\"}], \"metadata\": {}}",
                           0, NULL);
    json_t *meta = json_object_get(m, "metadata");
    json_object_set_new(meta, "sensitivity", json_string(dataset_level));
    if (columns_meta)
        json_object_set_new(meta, "columns", json_loads(columns_meta, 0, NULL));
    return m;
}

static void
test_nothing_to_mask_costs_nothing(void **state)
{
    (void)state;
    json_t *m = people("internal", NULL);
    assert_null(lh_catalog_mask_plan(m, LH_LEVEL_INTERNAL));
    assert_null(lh_catalog_mask_plan(m, LH_LEVEL_PII));
    assert_null(lh_catalog_mask_plan(m, 0)); /* lakehouse's own work */
    char *sql = (char *)"untouched";
    assert_int_equal(lh_catalog_masked_select_of(m, LH_LEVEL_INTERNAL, "SELECT 1", &sql), 0);
    assert_null(sql);
    json_decref(m);
    /* a column set to public inside an internal dataset masks nothing for internal */
    m = people("internal", "{\"city\": {\"sensitivity\": \"public\"}}");
    assert_null(lh_catalog_mask_plan(m, LH_LEVEL_INTERNAL));
    json_decref(m);
}

static void
test_plan_follows_levels(void **state)
{
    (void)state;
    json_t *m = people("internal", "{\"email\": {\"sensitivity\": \"pii\", \"mask\": \"hash\"}, "
                                   "\"salary\": {\"sensitivity\": \"confidential\"}}");
    json_t *plan = lh_catalog_mask_plan(m, LH_LEVEL_INTERNAL);
    assert_non_null(plan);
    assert_int_equal(json_object_size(plan), 2);
    assert_string_equal(json_string_value(json_object_get(plan, "email")), "hash");
    assert_string_equal(json_string_value(json_object_get(plan, "salary")), "null");
    json_decref(plan);
    plan = lh_catalog_mask_plan(m, LH_LEVEL_CONFIDENTIAL);
    assert_int_equal(json_object_size(plan), 1);
    assert_non_null(json_object_get(plan, "email"));
    json_decref(plan);
    assert_null(lh_catalog_mask_plan(m, LH_LEVEL_PII));
    json_decref(m);
    /* columns without a level of their own have the dataset's */
    m = people("confidential", "{\"city\": {\"sensitivity\": \"public\"}}");
    plan = lh_catalog_mask_plan(m, LH_LEVEL_INTERNAL);
    assert_int_equal(json_object_size(plan), 3);
    assert_null(json_object_get(plan, "city"));
    json_decref(plan);
    plan = lh_catalog_mask_plan(m, LH_LEVEL_PUBLIC);
    assert_int_equal(json_object_size(plan), 3);
    json_decref(plan);
    json_decref(m);
}

static void
test_masked_select_runs(void **state)
{
    fixture *f = *state;
    json_t *m = people("internal", "{\"email\": {\"sensitivity\": \"pii\", \"mask\": \"hash\"}, "
                                   "\"salary\": {\"sensitivity\": \"confidential\"}}");
    const char *rows =
        "SELECT 1::BIGINT AS id, 'ann@example.com' AS email, 10.5::DOUBLE AS salary, "
        "'Oslo' AS city UNION ALL SELECT 2, NULL, 20, 'Bergen'";
    char *sql = NULL;
    assert_int_equal(lh_catalog_masked_select_of(m, LH_LEVEL_INTERNAL, rows, &sql), 1);
    assert_contains(sql, "CAST(NULL AS DOUBLE) AS \"salary\"");
    assert_contains(sql, "lh_mask_hash(CAST(\"email\" AS VARCHAR)) AS \"email\"");
    char *typed = lh_sprintf("SELECT id, email, salary, typeof(salary) AS t, city FROM (%s) "
                             "ORDER BY id",
                             sql);
    json_t *out = NULL;
    lh_err err;
    assert_int_equal(lh_engine_rows(f->eng, typed, &out, &err), 0);
    json_t *r0 = json_array_get(out, 0), *r1 = json_array_get(out, 1);
    char want[65];
    lh_hmac_sha256_hex(KEY, sizeof KEY, "ann@example.com", 15, want);
    assert_string_equal(json_string_value(json_object_get(r0, "email")), want);
    assert_true(json_is_null(json_object_get(r0, "salary")));
    assert_string_equal(json_string_value(json_object_get(r0, "t")), "DOUBLE");
    assert_string_equal(json_string_value(json_object_get(r0, "city")), "Oslo");
    assert_true(json_is_null(json_object_get(r1, "email"))); /* NULL stays NULL */
    /* the same value masked outside SQL gives the same hash */
    json_t *plan = lh_catalog_mask_plan(m, LH_LEVEL_INTERNAL);
    json_t *row = json_pack("{s:I, s:s, s:f, s:s}", "id", (json_int_t)1, "email", "ann@example.com",
                            "salary", 10.5, "city", "Oslo");
    lh_catalog_mask_row(f->cat, plan, row);
    assert_string_equal(json_string_value(json_object_get(row, "email")), want);
    assert_true(json_is_null(json_object_get(row, "salary")));
    assert_string_equal(json_string_value(json_object_get(row, "city")), "Oslo");
    assert_int_equal(json_integer_value(json_object_get(row, "id")), 1);
    json_decref(row);
    json_decref(plan);
    json_decref(out);
    free(typed);
    free(sql);
    json_decref(m);
}

static void
test_required_metadata(void **state)
{
    fixture *f = *state;
    lh_err err;
    json_t *meta = json_pack("{s:s}", "owner", "hr");
    assert_int_equal(lh_catalog_check_required(f->cat, meta, NULL, &err), LH_EINVAL);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.code, "metadata_required");
    assert_contains(err.message, "description");
    assert_not_contains(err.message, "owner");
    json_object_set_new(meta, "description", json_string(""));
    assert_int_equal(lh_catalog_check_required(f->cat, meta, NULL, &err), LH_EINVAL);
    json_object_set_new(meta, "description", json_string("people we placed"));
    assert_int_equal(lh_catalog_check_required(f->cat, meta, NULL, &err), 0);
    /* an existing dataset's own metadata counts */
    json_t *cur = json_pack("{s:{s:s, s:s}}", "metadata", "owner", "hr", "description", "d");
    assert_int_equal(lh_catalog_check_required(f->cat, NULL, cur, &err), 0);
    json_decref(cur);
    json_decref(meta);
}

static void
test_suggestions(void **state)
{
    fixture *f = *state;
    char *path = lh_sprintf("%s/people.parquet", f->dir);
    char *sql = lh_sprintf(
        "COPY (SELECT i AS id, 'user' || i || '@example.com' AS contact, "
        "'+47 22 33 44 ' || (10 + i) AS reach, '4111 1111 1111 1111' AS pay, "
        "lpad(i::VARCHAR, 3, '0') || '-12-3456' AS gov, 'Oslo' AS city, "
        "'2024-01-0' || (i %% 9 + 1) AS day, 'x' AS email_address, 1234567890123 + i AS amount "
        "FROM range(10) t(i)) TO '%s' (FORMAT parquet)",
        path);
    lh_err err;
    assert_int_equal(lh_engine_exec(f->eng, sql, NULL, &err), 0);
    json_t *columns = NULL, *out = NULL;
    assert_int_equal(lh_catalog_schema_of(f->cat, path, &columns, &err), 0);
    assert_int_equal(lh_catalog_suggest_sensitivity(f->cat, path, columns, &out, &err), 0);
    char *text = json_dumps(out, JSON_SORT_KEYS);
    json_t *s;
    s = json_object_get(out, "contact");
    assert_string_equal(json_string_value(json_object_get(s, "suggestion_reason")),
                        "values: email");
    assert_string_equal(json_string_value(json_object_get(s, "suggested_sensitivity")), "pii");
    s = json_object_get(out, "reach");
    assert_string_equal(json_string_value(json_object_get(s, "suggestion_reason")),
                        "values: phone");
    s = json_object_get(out, "pay");
    assert_string_equal(json_string_value(json_object_get(s, "suggestion_reason")),
                        "values: card_number");
    s = json_object_get(out, "gov");
    assert_string_equal(json_string_value(json_object_get(s, "suggestion_reason")), "values: ssn");
    s = json_object_get(out, "email_address");
    assert_string_equal(json_string_value(json_object_get(s, "suggestion_reason")), "name");
    /* not personal: ids, a city, dates, 13-digit amounts that are not Luhn-valid alike */
    assert_null(json_object_get(out, "id"));
    assert_null(json_object_get(out, "city"));
    assert_null(json_object_get(out, "day"));
    assert_null(json_object_get(out, "amount"));
    free(text);
    json_decref(out);
    json_decref(columns);
    unlink(path);
    free(path);
    free(sql);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_to_mask_costs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_follows_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masked_select_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suggestions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
