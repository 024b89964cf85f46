/*
 * test_commit.c — the catalog's commit protocol (src/catalog/commit.c, manifest.c) over a
 * real fs bucket: versions 1, 2, ... per commit; a writer that loses the create-only race
 * on a manifest gets 409 manifest_conflict and changes nothing; a catalog reopened from
 * the bucket has the same state; an aborted transaction leaves no manifest; an
 * unreadable manifest is a load error, not a crash; data files left by a crash before
 * their manifest are found by the sweep.
 */
#include "testutil.h"

#include "catalog/catalog.h"
#include "testengine.h"

static char *no_env[] = {NULL};

typedef struct fixture {
    lh_test_engine te; /* te.dir holds everything: data/, work/, cache/ */
    char *bucket_root; /* the primary bucket's folder */
    lh_config *cfg;
    lh_buckets *buckets;
    lh_cache *cache;
    char *work_dir;
    lh_catalog *cat;
} fixture;

static void
open_catalog(fixture *f)
{
    lh_catalog_deps deps = {
        .buckets = f->buckets, .engine = f->te.eng, .cache = f->cache, .work_dir = f->work_dir};
    lh_err err;
    assert_int_equal(lh_catalog_open(&deps, &f->cat, &err), 0);
}

static int
setup(void **state)
{
    lh_log_set_level(LH_LOG_OFF); /* load errors are logged; keep the output clean */
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    lh_test_engine_open(&f->te, "catalog_");
    char *cfg_path = lh_sprintf("%s/lakehouse.toml", f->te.dir);
    char *text = lh_sprintf("[server]\ndata_dir = \"%s/data\"\n[storage]\nprobe_interval_ms = 0\n"
                            "journal_flush_ms = 3600000\n",
                            f->te.dir);
    FILE *fp = fopen(cfg_path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    lh_err err;
    assert_int_equal(lh_config_load(cfg_path, no_env, &f->cfg, &err), 0);
    assert_int_equal(lh_buckets_open(f->cfg, &f->buckets, &err), 0);
    f->bucket_root = lh_sprintf("%s/data/buckets/primary", f->te.dir);
    f->work_dir = lh_sprintf("%s/work", f->te.dir);
    assert_int_equal(mkdir(f->work_dir, 0700), 0);
    char *cache_dir = lh_sprintf("%s/cache", f->te.dir);
    assert_int_equal(mkdir(cache_dir, 0700), 0);
    f->cache = lh_cache_new(cache_dir, 1 << 20);
    open_catalog(f);
    free(cache_dir);
    free(text);
    free(cfg_path);
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
    lh_test_rm_rf(f->work_dir);
    char *data = lh_sprintf("%s/data", f->te.dir), *cache = lh_sprintf("%s/cache", f->te.dir);
    lh_test_rm_rf(data);
    lh_test_rm_rf(cache);
    free(data);
    free(cache);
    char *cfg_path = lh_sprintf("%s/lakehouse.toml", f->te.dir);
    unlink(cfg_path);
    free(cfg_path);
    lh_test_engine_close(&f->te);
    free(f->bucket_root);
    free(f->work_dir);
    free(f);
    return 0;
}

/* A Parquet data file of `n_rows` rows (id, v) at key in the bucket; returns its size. */
static int64_t
put_data_file(fixture *f, const char *key, int n_rows)
{
    char *dir = lh_sprintf("%s/datasets", f->bucket_root);
    mkdir(dir, 0700);
    free(dir);
    char *path = lh_sprintf("%s/%s", f->bucket_root, key);
    char *parent = lh_strdup(path);
    *strrchr(parent, '/') = '\0';
    char *ds_dir = lh_strdup(parent);
    *strrchr(ds_dir, '/') = '\0';
    mkdir(ds_dir, 0700);
    mkdir(parent, 0700);
    char *sql = lh_sprintf("COPY (SELECT i::INTEGER AS id, 'v' || i AS v FROM range(%d) t(i)) TO "
                           "'%s' (FORMAT parquet)",
                           n_rows, path);
    lh_err err;
    assert_int_equal(lh_engine_exec(f->te.eng, sql, NULL, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    free(sql);
    free(ds_dir);
    free(parent);
    free(path);
    return (int64_t)st.st_size;
}

/* A manifest listing one base file of n_rows rows (new). */
static json_t *
manifest_of(const char *key, int64_t bytes, int n_rows)
{
    return json_pack(
        "{s:s, s:s, s:I, s:I, s:{}, s:[{s:s, s:s}, {s:s, s:s}], s:[{s:s, s:I, s:I, s:s}]}",
        "change", "ingest", "created_by", "tester", "row_count", (json_int_t)n_rows, "bytes",
        (json_int_t)bytes, "metadata", "columns", "name", "id", "type", "INTEGER", "name", "v",
        "type", "VARCHAR", "files", "path", key, "bytes", (json_int_t)bytes, "rows",
        (json_int_t)n_rows, "kind", "base");
}

/* Commit a new version of `name` listing one fresh file of n_rows rows; returns its
 * version. */
static int64_t
commit_rows(fixture *f, const char *name, const char *file, int n_rows)
{
    char *key = lh_sprintf("datasets/%s/data/%s", name, file);
    int64_t bytes = put_data_file(f, key, n_rows);
    lh_txn *t = NULL;
    lh_err err;
    assert_int_equal(lh_catalog_begin(f->cat, name, true, &t, &err), 0);
    json_t *committed = NULL;
    int rc = lh_catalog_commit(t, NULL, manifest_of(key, bytes, n_rows), &committed, &err);
    if (rc != 0)
        print_error("commit: %s %s\n", err.message, err.detail);
    assert_int_equal(rc, 0);
    int64_t version = json_integer_value(json_object_get(committed, "version"));
    json_decref(committed);
    free(key);
    return version;
}

static int64_t
count_rows(fixture *f, const char *name)
{
    char *sql = lh_sprintf("SELECT count(*) AS n FROM %s", name);
    json_t *rows = NULL;
    lh_err err;
    assert_int_equal(lh_engine_rows(f->te.eng, sql, &rows, &err), 0);
    int64_t n = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
    json_decref(rows);
    free(sql);
    return n;
}

static bool
manifest_exists(fixture *f, const char *name, int64_t version)
{
    char *path = lh_sprintf("%s/datasets/%s/_manifest/v%020lld.parquet", f->bucket_root, name,
                            (long long)version);
    bool exists = access(path, F_OK) == 0;
    free(path);
    return exists;
}

static void
test_commits_make_versions(void **state)
{
    fixture *f = *state;
    assert_int_equal(commit_rows(f, "people", "a-0.parquet", 2), 1);
    assert_true(manifest_exists(f, "people", 1));
    assert_int_equal(count_rows(f, "people"), 2);
    assert_int_equal(commit_rows(f, "people", "b-0.parquet", 5), 2);
    assert_true(manifest_exists(f, "people", 2));
    assert_false(manifest_exists(f, "people", 3));
    assert_int_equal(count_rows(f, "people"), 5);
    json_t *versions = NULL;
    lh_err err;
    assert_int_equal(lh_catalog_versions(f->cat, "people", 1, 10, &versions, &err), 0);
    assert_int_equal(json_array_size(versions), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(versions, 0), "row_count")),
                     2);
    json_decref(versions);
}

static void
test_lost_race_is_a_conflict(void **state)
{
    fixture *f = *state;
    assert_int_equal(commit_rows(f, "people", "a-0.parquet", 2), 1);
    char *key = lh_sprintf("datasets/people/data/b-0.parquet");
    int64_t bytes = put_data_file(f, key, 7);
    lh_txn *t = NULL;
    lh_err err;
    assert_int_equal(lh_catalog_begin(f->cat, "people", true, &t, &err), 0);
    /* another server commits version 2 first: its manifest is already in the bucket */
    char *theirs = lh_sprintf("%s/datasets/people/_manifest/v%020d.parquet", f->bucket_root, 2);
    char *mine = lh_sprintf("%s/datasets/people/_manifest/v%020d.parquet", f->bucket_root, 1);
    size_t len = 0;
    char *bytes_v1 = lh_test_read_file(mine, &len);
    assert_non_null(bytes_v1);
    FILE *fp = fopen(theirs, "wb");
    assert_non_null(fp);
    fputs("their version 2", fp);
    fclose(fp);
    json_t *committed = NULL;
    int rc = lh_catalog_commit(t, NULL, manifest_of(key, bytes, 7), &committed, &err);
    assert_int_equal(rc, LH_EEXIST);
    assert_int_equal(err.http_status, 409);
    assert_string_equal(err.code, "manifest_conflict");
    assert_null(committed);
    /* nothing changed: their object is untouched, ours is still version 1 */
    char *now = lh_test_read_file(theirs, NULL);
    assert_string_equal(now, "their version 2");
    json_t *m = NULL;
    assert_int_equal(lh_catalog_get(f->cat, "people", &m, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(m, "version")), 1);
    json_decref(m);
    assert_int_equal(count_rows(f, "people"), 2);
    /* and the dataset is free for the next writer */
    assert_int_equal(lh_catalog_begin(f->cat, "people", false, &t, &err), 0);
    lh_catalog_abort(t);
    free(now);
    free(bytes_v1);
    free(mine);
    free(theirs);
    free(key);
}

static void
test_reopen_gives_the_same_state(void **state)
{
    fixture *f = *state;
    commit_rows(f, "people", "a-0.parquet", 2);
    commit_rows(f, "people", "b-0.parquet", 3);
    commit_rows(f, "orders", "a-0.parquet", 4);
    lh_err err;
    json_t *before = NULL, *after = NULL;
    assert_int_equal(lh_catalog_get(f->cat, "people", &before, &err), 0);
    lh_catalog_close(f->cat);
    assert_int_equal(lh_engine_drop_view(f->te.eng, "people", &err), 0);
    assert_int_equal(lh_engine_drop_view(f->te.eng, "orders", &err), 0);
    open_catalog(f);
    assert_int_equal(lh_catalog_get(f->cat, "people", &after, &err), 0);
    json_object_del(before, "freshness");
    json_object_del(after, "freshness");
    if (!json_equal(before, after)) {
        char *a = json_dumps(before, JSON_SORT_KEYS), *b = json_dumps(after, JSON_SORT_KEYS);
        print_error("before: %s\nafter:  %s\n", a, b);
        free(a);
        free(b);
        fail();
    }
    assert_int_equal(count_rows(f, "people"), 3);
    assert_int_equal(count_rows(f, "orders"), 4);
    json_t *stats = lh_catalog_stats(f->cat);
    assert_int_equal(json_integer_value(json_object_get(stats, "datasets")), 2);
    assert_int_equal(json_integer_value(json_object_get(stats, "load_errors")), 0);
    json_decref(stats);
    /* the next commit continues the sequence */
    assert_int_equal(commit_rows(f, "people", "c-0.parquet", 1), 3);
    json_decref(before);
    json_decref(after);
}

static void
test_abort_leaves_no_manifest(void **state)
{
    fixture *f = *state;
    lh_txn *t = NULL;
    lh_err err;
    assert_int_equal(lh_catalog_begin(f->cat, "ghost", true, &t, &err), 0);
    assert_null(lh_txn_current(t));
    assert_false(lh_txn_live(t));
    lh_catalog_abort(t);
    assert_false(manifest_exists(f, "ghost", 1));
    /* the writer slot is free again: a writer that would not wait gets it */
    assert_int_equal(lh_catalog_begin(f->cat, "ghost", false, &t, &err), 0);
    lh_catalog_abort(t);
    json_t *m = NULL;
    assert_int_equal(lh_catalog_get(f->cat, "ghost", &m, &err), LH_ENOTFOUND);
    assert_int_equal(err.http_status, 404);
    json_t *list = lh_catalog_list(f->cat, NULL);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    /* an aborted change of an existing dataset leaves it as it was */
    commit_rows(f, "people", "a-0.parquet", 2);
    assert_int_equal(lh_catalog_begin(f->cat, "people", true, &t, &err), 0);
    lh_catalog_abort(t);
    assert_false(manifest_exists(f, "people", 2));
    assert_int_equal(count_rows(f, "people"), 2);
}

static void
test_unreadable_manifest_is_a_load_error(void **state)
{
    fixture *f = *state;
    commit_rows(f, "people", "a-0.parquet", 2);
    char *dir = lh_sprintf("%s/datasets/broken/_manifest", f->bucket_root);
    char *parent = lh_sprintf("%s/datasets/broken", f->bucket_root);
    assert_int_equal(mkdir(parent, 0700), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    char *path = lh_sprintf("%s/v%020d.parquet", dir, 1);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("PAR1 this is not a manifest", fp);
    fclose(fp);
    lh_catalog_close(f->cat);
    open_catalog(f);
    json_t *stats = lh_catalog_stats(f->cat);
    assert_int_equal(json_integer_value(json_object_get(stats, "load_errors")), 1);
    assert_int_equal(json_integer_value(json_object_get(stats, "datasets")), 1);
    json_decref(stats);
    lh_err err;
    json_t *m = NULL;
    assert_int_equal(lh_catalog_get(f->cat, "broken", &m, &err), LH_ENOTFOUND);
    assert_int_equal(count_rows(f, "people"), 2);
    /* a manifest read later (time travel) that is not one is a 500, not a crash */
    free(path);
    path = lh_sprintf("%s/datasets/people/_manifest/v%020d.parquet", f->bucket_root, 1);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("garbage", fp);
    fclose(fp);
    lh_as_of at = {.version = 1};
    int rc = lh_catalog_manifest_at(f->cat, "people", &at, &m, &err);
    assert_true(rc != 0);
    assert_int_equal(err.http_status / 100, 5);
    free(path);
    free(parent);
    free(dir);
}

static void
test_sweep_finds_crash_leftovers(void **state)
{
    fixture *f = *state;
    commit_rows(f, "people", "a-0.parquet", 2);
    /* a crash between the data put and the manifest: files nothing references */
    put_data_file(f, "datasets/people/data/crashed-0.parquet", 3);
    put_data_file(f, "datasets/gone/data/crashed-0.parquet", 3);
    json_t *dry = lh_catalog_sweep(f->cat, 0, true);
    assert_int_equal(json_array_size(json_object_get(dry, "removed")), 2);
    json_decref(dry);
    char *kept = lh_sprintf("%s/datasets/people/data/a-0.parquet", f->bucket_root);
    char *left = lh_sprintf("%s/datasets/people/data/crashed-0.parquet", f->bucket_root);
    char *orphan = lh_sprintf("%s/datasets/gone/data/crashed-0.parquet", f->bucket_root);
    assert_int_equal(access(left, F_OK), 0); /* a dry run removes nothing */
    /* young files may belong to a commit in flight elsewhere: kept */
    json_t *young = lh_catalog_sweep(f->cat, 3600, false);
    assert_int_equal(json_array_size(json_object_get(young, "removed")), 0);
    assert_int_equal(json_integer_value(json_object_get(young, "kept_young")), 2);
    json_decref(young);
    json_t *report = lh_catalog_sweep(f->cat, 0, false);
    char *text = json_dumps(report, JSON_SORT_KEYS);
    assert_contains(text, "datasets/people/data/crashed-0.parquet");
    assert_contains(text, "datasets/gone/data/crashed-0.parquet");
    assert_not_contains(text, "a-0.parquet");
    assert_int_equal(json_array_size(json_object_get(report, "errors")), 0);
    assert_int_not_equal(access(left, F_OK), 0);
    assert_int_not_equal(access(orphan, F_OK), 0);
    assert_int_equal(access(kept, F_OK), 0);
    assert_int_equal(count_rows(f, "people"), 2);
    free(text);
    json_decref(report);
    free(orphan);
    free(left);
    free(kept);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commits_make_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_race_is_a_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_gives_the_same_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_no_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_manifest_is_a_load_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_finds_crash_leftovers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
