/*
 * test_buckets.c — the bucket registry (src/storage/buckets.c) built from a real config
 * file: the default primary, fs tenants, reads falling back to the rescue bucket while
 * writes do not, the error journal (ring, flush to primary, reload after a restart),
 * every config refusal with the [[bucket]] position it names, and profile:{user}
 * buckets as views of the profile bucket.
 */
#include "testutil.h"

#include "storage/storage.h"

#include <limits.h>

#define SECRET "s3cr3t-BUCKET-77"

static char *no_env[] = {NULL};

typedef struct fixture {
    char *dir; /* everything the test makes lives here */
    char *cfg_path;
    char *text; /* the config as written */
    lh_config *cfg;
    lh_buckets *b;
} fixture;

static int
setup(void **state)
{
    lh_log_set_level(LH_LOG_OFF); /* failures are logged as warnings; keep the output clean */
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = lh_test_mkdtemp("buckets_");
    *state = f;
    return 0;
}

static void
close_registry(fixture *f)
{
    lh_buckets_close(f->b);
    f->b = NULL;
    lh_config_free(f->cfg);
    f->cfg = NULL;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    close_registry(f);
    lh_test_rm_rf(f->dir);
    free(f->dir);
    free(f->cfg_path);
    free(f->text);
    free(f);
    return 0;
}

/* text with every "@D" replaced by the fixture's folder (new). */
static char *
subst(const fixture *f, const char *text)
{
    lh_buf out;
    lh_buf_init(&out);
    for (const char *p = text; *p;) {
        if (p[0] == '@' && p[1] == 'D') {
            lh_buf_puts(&out, f->dir);
            p += 2;
        } else {
            lh_buf_append(&out, p, 1);
            p++;
        }
    }
    lh_buf_append(&out, "", 0);
    return lh_buf_steal(&out);
}

/* Write lakehouse.toml: data_dir in the fixture, probes and timed journal flushes off,
 * storage_lines in [storage], then rest; load it into f->cfg. */
static void
write_config(fixture *f, const char *storage_lines, const char *rest)
{
    lh_buf text;
    lh_buf_init(&text);
    lh_buf_printf(&text,
                  "[server]\n"
                  "data_dir = \"@D/data\"\n"
                  "\n"
                  "[storage]\n"
                  "probe_interval_ms = 0\n"
                  "journal_flush_ms = 3600000\n" /* no flush by age while a test runs */
                  "%s\n"
                  "%s",
                  storage_lines ? storage_lines : "", rest ? rest : "");
    lh_buf_append(&text, "", 0);
    free(f->text);
    f->text = subst(f, text.data);
    lh_buf_free(&text);
    free(f->cfg_path);
    f->cfg_path = lh_sprintf("%s/lakehouse.toml", f->dir);
    FILE *fp = fopen(f->cfg_path, "w");
    assert_non_null(fp);
    fputs(f->text, fp);
    fclose(fp);
    lh_config_free(f->cfg);
    f->cfg = NULL;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_config_load(f->cfg_path, no_env, &f->cfg, &err);
    if (rc != 0)
        print_error("config: %s\n%s\n", err.message, f->text);
    assert_int_equal(rc, 0);
}

static void
open_registry(fixture *f)
{
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_buckets_open(f->cfg, &f->b, &err);
    if (rc != 0)
        print_error("lh_buckets_open: %s (%s)\n", err.message, err.detail);
    assert_int_equal(rc, 0);
    assert_non_null(f->b);
}

static char *
path_in(const fixture *f, const char *rel)
{
    return lh_sprintf("%s/%s", f->dir, rel);
}

static int
to_buf(void *ctx, const void *data, size_t len)
{
    lh_buf_append(ctx, data, len);
    return 0;
}

static void
put_in(lh_buckets *b, const char *bucket, const char *key, const char *text)
{
    lh_err err;
    lh_err_clear(&err);
    lh_source src = {.data = text, .fd = -1, .len = (int64_t)strlen(text)};
    int rc = lh_buckets_put_object(b, bucket, key, &src, 0, NULL, "req-put", &err);
    if (rc != 0)
        print_error("put %s/%s: %s\n", bucket, key, err.message);
    assert_int_equal(rc, 0);
}

/* Get key from bucket through the registry; must succeed with the given rescue flag. */
static char *
get_from(lh_buckets *b, const char *bucket, const char *key, bool want_rescue)
{
    lh_buf buf;
    lh_buf_init(&buf);
    lh_err err;
    lh_err_clear(&err);
    bool rescue_used = !want_rescue;
    lh_obj_info info;
    int rc = lh_buckets_get_object(b, bucket, key, 0, -1, to_buf, &buf, &info, &rescue_used,
                                   "req-get", &err);
    if (rc != 0)
        print_error("get %s/%s: %s\n", bucket, key, err.message);
    assert_int_equal(rc, 0);
    assert_int_equal(rescue_used, want_rescue);
    assert_int_equal(info.size, (int64_t)buf.len);
    lh_buf_append(&buf, "", 0);
    return lh_buf_steal(&buf);
}

#define EXPECT_OBJECT(b, bucket, key, want, rescue)                                                \
    do {                                                                                           \
        char *got_ = get_from((b), (bucket), (key), (rescue));                                     \
        assert_string_equal(got_, (want));                                                         \
        free(got_);                                                                                \
    } while (0)

/* The bucket named name in lh_buckets_list_json, or NULL. Borrowed from list. */
static json_t *
find_listed(json_t *list, const char *name)
{
    size_t i;
    json_t *bk;
    json_array_foreach(json_object_get(list, "buckets"), i, bk)
    {
        if (strcmp(json_string_value(json_object_get(bk, "name")), name) == 0)
            return bk;
    }
    return NULL;
}

static void
expect_listed(lh_buckets *b, const char *name, const char *cls, const char *location)
{
    json_t *list = lh_buckets_list_json(b);
    json_t *bk = find_listed(list, name);
    if (bk == NULL)
        print_error("bucket '%s' is not listed\n", name);
    assert_non_null(bk);
    assert_string_equal(json_string_value(json_object_get(bk, "class")), cls);
    assert_string_equal(json_string_value(json_object_get(bk, "backend")), "fs");
    if (location)
        assert_string_equal(json_string_value(json_object_get(bk, "location")), location);
    json_decref(list);
}

static char *
fs_location(const char *root)
{
    char resolved[PATH_MAX];
    assert_non_null(realpath(root, resolved));
    return lh_sprintf("fs:%s", resolved);
}

/* ---- buckets from config ---------------------------------------------------------------- */

static void
test_default_primary(void **state)
{
    fixture *f = *state;
    write_config(f, NULL, NULL);
    open_registry(f);
    lh_err err;

    lh_store *primary = lh_buckets_primary(f->b);
    assert_non_null(primary);
    assert_true(lh_buckets_get(f->b, "primary", &err) == primary);
    assert_string_equal(lh_store_backend(primary), "fs");
    char *root = path_in(f, "data/buckets/primary");
    char *where = fs_location(root);
    assert_string_equal(lh_store_describe(primary), where);
    assert_null(lh_buckets_rescue_name(f->b));

    put_in(f->b, "primary", "hello/world.txt", "hi");
    EXPECT_OBJECT(f->b, "primary", "hello/world.txt", "hi", false);
    char *file = lh_sprintf("%s/hello/world.txt", root);
    char *text = lh_test_read_file(file, NULL);
    assert_non_null(text);
    assert_string_equal(text, "hi");
    free(text);
    free(file);

    json_t *list = lh_buckets_list_json(f->b);
    assert_int_equal(json_array_size(json_object_get(list, "buckets")), 1);
    assert_string_equal(json_string_value(json_object_get(list, "primary")), "primary");
    assert_true(json_is_null(json_object_get(list, "rescue")));
    json_decref(list);
    expect_listed(f->b, "primary", "primary", where);

    /* not probed yet (probes are off), then probed on demand */
    list = lh_buckets_list_json(f->b);
    json_t *reach = json_object_get(find_listed(list, "primary"), "reachability");
    assert_string_equal(json_string_value(json_object_get(reach, "status")), "unknown");
    json_decref(list);
    json_t *probe = lh_buckets_probe_all(f->b);
    assert_true(json_is_true(json_object_get(probe, "ok")));
    json_decref(probe);

    json_t *health = lh_buckets_health_json(f->b);
    assert_int_equal(json_integer_value(json_object_get(health, "buckets")), 1);
    assert_int_equal(json_integer_value(json_object_get(health, "unreachable")), 0);
    json_decref(health);

    /* unknown buckets are 404 */
    lh_err_clear(&err);
    assert_null(lh_buckets_get(f->b, "nope", &err));
    assert_int_equal(err.rc, LH_ENOTFOUND);
    assert_int_equal(err.http_status, 404);
    assert_string_equal(err.code, "bucket_not_found");
    assert_contains(err.message, "'nope'");
    lh_buf buf;
    lh_buf_init(&buf);
    bool rescue_used = true;
    assert_int_equal(lh_buckets_get_object(f->b, "nope", "k", 0, -1, to_buf, &buf, NULL,
                                           &rescue_used, NULL, &err),
                     LH_ENOTFOUND);
    assert_false(rescue_used);
    lh_buf_free(&buf);
    free(where);
    free(root);
}

static void
test_tenant_bucket(void **state)
{
    fixture *f = *state;
    write_config(f, NULL,
                 "[[bucket]]\n"
                 "name = \"client_a\"\n"
                 "backend = \"fs\"\n"
                 "root = \"@D/tenants/a\"\n");
    open_registry(f);
    lh_err err;
    lh_store *s = lh_buckets_get(f->b, "client_a", &err);
    assert_non_null(s);
    assert_true(s != lh_buckets_primary(f->b));
    char *root = path_in(f, "tenants/a");
    char *where = fs_location(root);
    assert_string_equal(lh_store_describe(s), where);
    expect_listed(f->b, "client_a", "tenant", where);
    expect_listed(f->b, "primary", "primary", NULL);

    put_in(f->b, "client_a", "data/one.csv", "a,b\n");
    put_in(f->b, "client_a", "data/two.csv", "c,d\n");
    EXPECT_OBJECT(f->b, "client_a", "data/one.csv", "a,b\n", false);
    char *file = lh_sprintf("%s/data/one.csv", root);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    free(file);

    /* the buckets are separate */
    lh_buf buf;
    lh_buf_init(&buf);
    bool rescue_used;
    lh_err_clear(&err);
    assert_int_equal(lh_buckets_get_object(f->b, "primary", "data/one.csv", 0, -1, to_buf, &buf,
                                           NULL, &rescue_used, NULL, &err),
                     LH_ENOTFOUND);
    lh_buf_free(&buf);

    lh_list_page page;
    assert_int_equal(
        lh_buckets_list_objects(f->b, "client_a", "data/", NULL, 10, &page, NULL, &err), 0);
    assert_int_equal(page.n, 2);
    assert_string_equal(page.entries[0].key, "data/one.csv");
    assert_string_equal(page.entries[1].key, "data/two.csv");
    lh_list_page_free(&page);

    lh_obj_info info;
    assert_int_equal(
        lh_buckets_head_object(f->b, "client_a", "data/two.csv", &info, &rescue_used, NULL, &err),
        0);
    assert_int_equal(info.size, 4);
    assert_int_equal(lh_buckets_delete_object(f->b, "client_a", "data/two.csv", NULL, &err), 0);
    lh_err_clear(&err);
    assert_int_equal(lh_buckets_delete_object(f->b, "client_a", "data/two.csv", NULL, &err),
                     LH_ENOTFOUND);

    int fd = -1;
    assert_int_equal(lh_buckets_open_object(f->b, "client_a", "data/one.csv", &fd, &info,
                                            &rescue_used, NULL, &err),
                     0);
    assert_true(fd >= 0);
    assert_false(rescue_used);
    close(fd);

    /* not-found, conflicts and bad keys are the client's business, not journal entries */
    lh_source src = {.data = "x", .fd = -1, .len = 1};
    assert_int_equal(
        lh_buckets_put_object(f->b, "client_a", "data/one.csv/x", &src, 0, NULL, NULL, &err),
        LH_EEXIST);
    assert_int_equal(lh_buckets_put_object(f->b, "client_a", "../x", &src, 0, NULL, NULL, &err),
                     LH_EINVAL);
    assert_int_equal(lh_buckets_put_object(f->b, "client_a", "data/one.csv", &src,
                                           LH_PUT_CREATE_ONLY, NULL, NULL, &err),
                     LH_EEXIST);
    json_t *errors = lh_buckets_errors_json(f->b, NULL, 100);
    assert_int_equal(json_array_size(errors), 0);
    json_decref(errors);
    free(where);
    free(root);
}

/* ---- rescue reads and the error journal ---------------------------------------------------- */

static const char RESCUE_CONFIG[] = "[[bucket]]\n"
                                    "name = \"dead\"\n"
                                    "backend = \"fs\"\n"
                                    "root = \"@D/dead\"\n"
                                    "\n"
                                    "[[bucket]]\n"
                                    "name = \"rescue\"\n"
                                    "backend = \"fs\"\n"
                                    "root = \"@D/rescue\"\n"
                                    "\n"
                                    "[[bucket]]\n"
                                    "name = \"alive\"\n"
                                    "backend = \"fs\"\n"
                                    "root = \"@D/alive\"\n";

/* ev must be an error event of bucket/op/key with code. */
static void
expect_event(json_t *ev, const char *bucket, const char *op, const char *key, const char *code)
{
    assert_true(json_is_object(ev));
    assert_string_equal(json_string_value(json_object_get(ev, "bucket")), bucket);
    assert_string_equal(json_string_value(json_object_get(ev, "op")), op);
    if (key)
        assert_string_equal(json_string_value(json_object_get(ev, "key")), key);
    else
        assert_true(json_is_null(json_object_get(ev, "key")));
    assert_string_equal(json_string_value(json_object_get(ev, "code")), code);
    assert_int_equal(json_integer_value(json_object_get(ev, "status")), 503);
    assert_true(json_is_string(json_object_get(ev, "time")));
    assert_true(json_integer_value(json_object_get(ev, "epoch_us")) > 0);
}

/* The files under primary's journal folder (NULL-terminated, new). */
static char **
journal_batches(fixture *f, size_t *n_out)
{
    lh_list_page page;
    lh_err err;
    assert_int_equal(
        lh_store_list(lh_buckets_primary(f->b), "_errors/bucket_errors/", NULL, 1000, &page, &err),
        0);
    char **keys = calloc(page.n + 1, sizeof *keys);
    assert_non_null(keys);
    for (size_t i = 0; i < page.n; i++)
        keys[i] = strdup(page.entries[i].key);
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

static void
test_rescue_fallback_and_journal(void **state)
{
    fixture *f = *state;
    write_config(f, "rescue = \"rescue\"", RESCUE_CONFIG);
    open_registry(f);
    assert_string_equal(lh_buckets_rescue_name(f->b), "rescue");
    expect_listed(f->b, "rescue", "rescue", NULL);
    expect_listed(f->b, "dead", "tenant", NULL);
    put_in(f->b, "dead", "shared/report.csv", "from dead");
    put_in(f->b, "rescue", "shared/report.csv", "from rescue");
    put_in(f->b, "alive", "only-here", "alive");
    EXPECT_OBJECT(f->b, "dead", "shared/report.csv", "from dead", false);

    /* the tenant's folder disappears (an unmounted disk) */
    char *dead_root = path_in(f, "dead");
    lh_test_rm_rf(dead_root);

    EXPECT_OBJECT(f->b, "dead", "shared/report.csv", "from rescue", true);
    /* ranges are served from the rescue bucket too */
    lh_buf buf;
    lh_buf_init(&buf);
    bool rescue_used = false;
    lh_err err;
    assert_int_equal(lh_buckets_get_object(f->b, "dead", "shared/report.csv", 5, 6, to_buf, &buf,
                                           NULL, &rescue_used, "req-range", &err),
                     0);
    assert_true(rescue_used);
    assert_int_equal(buf.len, 6);
    assert_memory_equal(buf.data, "rescue", 6);
    lh_buf_free(&buf);
    lh_obj_info info;
    rescue_used = false;
    assert_int_equal(lh_buckets_head_object(f->b, "dead", "shared/report.csv", &info, &rescue_used,
                                            "req-head", &err),
                     0);
    assert_true(rescue_used);
    assert_int_equal(info.size, 11);

    /* a key the rescue bucket lacks: still the target's 503, saying rescue tried */
    lh_buf_init(&buf);
    lh_err_clear(&err);
    rescue_used = true;
    int rc = lh_buckets_get_object(f->b, "dead", "not/in/rescue", 0, -1, to_buf, &buf, NULL,
                                   &rescue_used, "req-miss", &err);
    assert_int_equal(rc, LH_EUNAVAIL);
    assert_false(rescue_used);
    assert_int_equal(err.http_status, 503);
    assert_string_equal(err.code, "bucket_unavailable");
    assert_contains(err.detail, "rescue bucket 'rescue'");
    assert_int_equal(buf.len, 0);
    lh_buf_free(&buf);

    /* writes never fall back: a 503, and nothing lands in rescue */
    lh_source src = {.data = "new", .fd = -1, .len = 3};
    lh_err_clear(&err);
    rc = lh_buckets_put_object(f->b, "dead", "uploads/new.csv", &src, 0, NULL, "req-write", &err);
    assert_int_equal(rc, LH_EUNAVAIL);
    assert_int_equal(err.http_status, 503);
    assert_contains(err.hint, "never fall back");
    lh_store *rescue = lh_buckets_get(f->b, "rescue", &err);
    assert_non_null(rescue);
    assert_int_equal(lh_store_head(rescue, "uploads/new.csv", &info, &err), LH_ENOTFOUND);
    lh_list_page page;
    assert_int_equal(lh_store_list(rescue, "", NULL, 100, &page, &err), 0);
    assert_int_equal(page.n, 1); /* only what we put there */
    lh_list_page_free(&page);
    struct stat st;
    assert_int_not_equal(stat(dead_root, &st), 0); /* and the dead root was not recreated */

    /* reads of a healthy bucket never touch rescue, even for missing keys */
    lh_buf_init(&buf);
    rescue_used = true;
    lh_err_clear(&err);
    assert_int_equal(lh_buckets_get_object(f->b, "alive", "shared/report.csv", 0, -1, to_buf, &buf,
                                           NULL, &rescue_used, NULL, &err),
                     LH_ENOTFOUND);
    assert_false(rescue_used);
    lh_buf_free(&buf);

    /* the journal: newest first; rescued reads are still failures of the target; the two
     * identical failed gets of shared/report.csv are one record with a count */
    json_t *errors = lh_buckets_errors_json(f->b, NULL, 100);
    assert_int_equal(json_array_size(errors), 4);
    expect_event(json_array_get(errors, 0), "dead", "put", "uploads/new.csv", "bucket_unavailable");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "request_id")),
                        "req-write");
    expect_event(json_array_get(errors, 1), "dead", "get", "not/in/rescue", "bucket_unavailable");
    expect_event(json_array_get(errors, 2), "dead", "head", "shared/report.csv",
                 "bucket_unavailable");
    expect_event(json_array_get(errors, 3), "dead", "get", "shared/report.csv",
                 "bucket_unavailable");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errors, 3), "count")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errors, 0), "count")), 1);
    json_decref(errors);
    errors = lh_buckets_errors_json(f->b, "dead", 2);
    assert_int_equal(json_array_size(errors), 2);
    expect_event(json_array_get(errors, 0), "dead", "put", "uploads/new.csv", "bucket_unavailable");
    json_decref(errors);
    errors = lh_buckets_errors_json(f->b, "alive", 100);
    assert_int_equal(json_array_size(errors), 0);
    json_decref(errors);
    json_t *health = lh_buckets_health_json(f->b);
    assert_int_equal(json_integer_value(json_object_get(health, "recent_errors")), 4);
    assert_int_equal(json_integer_value(json_object_get(health, "errors_unwritten")), 4);
    json_decref(health);

    /* a probe notices the dead bucket and journals it once */
    json_t *probe = lh_buckets_probe_all(f->b);
    assert_true(json_is_false(json_object_get(probe, "ok")));
    json_decref(probe);
    probe = lh_buckets_probe_all(f->b);
    json_decref(probe);
    errors = lh_buckets_errors_json(f->b, NULL, 100);
    assert_int_equal(json_array_size(errors), 5);
    expect_event(json_array_get(errors, 0), "dead", "probe", NULL, "bucket_unavailable");
    json_decref(errors);
    health = lh_buckets_health_json(f->b);
    assert_int_equal(json_integer_value(json_object_get(health, "unreachable")), 1);
    json_decref(health);

    /* flushing writes one batch under primary's _errors/bucket_errors/ */
    size_t n;
    char **keys = journal_batches(f, &n);
    assert_int_equal(n, 0);
    free_keys(keys);
    assert_int_equal(lh_buckets_errors_flush(f->b, &err), 0);
    keys = journal_batches(f, &n);
    assert_int_equal(n, 1);
    assert_prefix(keys[0], "_errors/bucket_errors/batch_");
    lh_buf data;
    assert_int_equal(
        lh_store_get_buffer(lh_buckets_primary(f->b), keys[0], 1 << 20, &data, NULL, &err), 0);
    assert_contains(data.data, "\"op\":\"put\"");
    assert_contains(data.data, "uploads/new.csv");
    assert_contains(data.data, "\"op\":\"probe\"");
    assert_not_contains(data.data, "\"bucket\":\"rescue\"");
    lh_buf_free(&data);
    free_keys(keys);
    health = lh_buckets_health_json(f->b);
    assert_int_equal(json_integer_value(json_object_get(health, "errors_unwritten")), 0);
    json_decref(health);

    /* one more failure, left buffered: closing writes it */
    lh_err_clear(&err);
    assert_int_equal(lh_buckets_delete_object(f->b, "dead", "gone", "req-del", &err), LH_EUNAVAIL);
    json_t *before = lh_buckets_errors_json(f->b, NULL, 100);
    assert_int_equal(json_array_size(before), 6);

    /* a restart reloads the journal into the ring, in the same order */
    close_registry(f);
    write_config(f, "rescue = \"rescue\"", RESCUE_CONFIG);
    open_registry(f);
    json_t *after = lh_buckets_errors_json(f->b, NULL, 100);
    assert_true(json_equal(before, after));
    expect_event(json_array_get(after, 0), "dead", "delete", "gone", "bucket_unavailable");
    json_decref(after);
    json_decref(before);
    after = lh_buckets_errors_json(f->b, "dead", 3);
    assert_int_equal(json_array_size(after), 3);
    json_decref(after);
    keys = journal_batches(f, &n);
    assert_int_equal(n, 2);
    free_keys(keys);

    /* compaction merges the batches; the ring is unchanged */
    int merged = 0;
    assert_int_equal(lh_buckets_errors_compact(f->b, &merged, &err), 0);
    assert_int_equal(merged, 2);
    keys = journal_batches(f, &n);
    assert_int_equal(n, 1);
    free_keys(keys);
    free(dead_root);
}

static void
test_journal_ring_bound_and_junk(void **state)
{
    fixture *f = *state;
    /* a small ring, journal batches of 3, every error journaled at once */
    write_config(f, "error_ring = 10\njournal_flush_events = 3\nerror_coalesce_ms = 0",
                 RESCUE_CONFIG);
    open_registry(f);
    lh_err e;
    lh_err_set(&e, LH_EIO, 500, "io_error", "disk trouble");
    for (int i = 0; i < 25; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%02d", i);
        lh_buckets_record_error(f->b, "alive", "get", key, &e, NULL);
    }
    /* not operational: never recorded */
    lh_err quiet;
    static const int rcs[] = {LH_ENOTFOUND, LH_EEXIST, LH_EINVAL, LH_ECANCELED};
    for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++) {
        lh_err_set(&quiet, rcs[i], 0, "quiet", "not an operational failure");
        lh_buckets_record_error(f->b, "alive", "get", "q", &quiet, NULL);
    }
    json_t *errors = lh_buckets_errors_json(f->b, NULL, 100);
    assert_int_equal(json_array_size(errors), 10); /* the ring holds the newest 10 */
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "key")),
                        "k24");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 9), "key")),
                        "k15");
    json_decref(errors);
    size_t n;
    char **keys = journal_batches(f, &n);
    assert_int_equal(n, 8); /* 24 of the 25 events are written, 3 per batch */
    free_keys(keys);

    /* junk in the journal folder (it is an ordinary bucket path) must not break a restart
     * or a filtered view */
    const char *junk = "{}\n[1]\n\"text\"\n{\"bucket\":7}\nnot json\n";
    assert_int_equal(lh_store_put_buffer(lh_buckets_primary(f->b),
                                         "_errors/bucket_errors/batch_99999999999999999999.jsonl",
                                         junk, strlen(junk), 0, &e),
                     0);
    close_registry(f);
    write_config(f, "error_ring = 10\njournal_flush_events = 3", RESCUE_CONFIG);
    open_registry(f);
    errors = lh_buckets_errors_json(f->b, "alive", 100);
    /* the newest 10 lines are k18..k24 and three junk lines that parse as JSON; junk is
     * not an event, so only the 7 real ones are reloaded */
    assert_int_equal(json_array_size(errors), 7);
    json_decref(errors);
    errors = lh_buckets_errors_json(f->b, NULL, 100);
    assert_int_equal(json_array_size(errors), 7);
    json_decref(errors);
}

/* Identical errors within the window are one record with a count, in the ring and, once
 * the window closes (here: a flush), in the journal; others stay records of their own. */
static void
test_journal_coalesces_bursts(void **state)
{
    fixture *f = *state;
    write_config(f, "error_ring = 10", RESCUE_CONFIG);
    open_registry(f);
    lh_err e, err;
    lh_err_set(&e, LH_EUNAVAIL, 503, "bucket_unavailable", "the bucket cannot be reached");
    for (int i = 0; i < 300; i++)
        lh_buckets_record_error(f->b, "alive", "put", "same/key", &e, NULL);
    lh_buckets_record_error(f->b, "alive", "put", "other/key", &e, NULL);
    lh_buckets_record_error(f->b, "alive", "get", "same/key", &e, NULL); /* another op */
    json_t *errors = lh_buckets_errors_json(f->b, NULL, 100);
    assert_int_equal(json_array_size(errors), 3);
    json_t *burst = json_array_get(errors, 2);
    expect_event(burst, "alive", "put", "same/key", "bucket_unavailable");
    assert_int_equal(json_integer_value(json_object_get(burst, "count")), 300);
    assert_string_equal(json_string_value(json_object_get(burst, "first_time")),
                        json_string_value(json_object_get(burst, "time")));
    assert_true(strcmp(json_string_value(json_object_get(burst, "last_time")),
                       json_string_value(json_object_get(burst, "first_time"))) >= 0);
    json_decref(errors);
    size_t n;
    char **keys = journal_batches(f, &n);
    assert_int_equal(n, 0); /* windows still open */
    free_keys(keys);
    assert_int_equal(lh_buckets_errors_flush(f->b, &err), 0);
    keys = journal_batches(f, &n);
    assert_int_equal(n, 1);
    lh_buf data;
    assert_int_equal(
        lh_store_get_buffer(lh_buckets_primary(f->b), keys[0], 1 << 20, &data, NULL, &err), 0);
    assert_contains(data.data, "\"count\":300");
    size_t lines = 0;
    for (const char *p = data.data; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    lh_buf_free(&data);
    free_keys(keys);
    /* after the window, the same error starts a new record */
    lh_buckets_record_error(f->b, "alive", "put", "same/key", &e, NULL);
    errors = lh_buckets_errors_json(f->b, NULL, 100);
    assert_int_equal(json_array_size(errors), 4);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errors, 0), "count")), 1);
    json_decref(errors);
    /* many different errors at once: the oldest windows close to make room */
    for (int i = 0; i < 100; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%03d", i);
        lh_buckets_record_error(f->b, "alive", "get", key, &e, NULL);
    }
    json_t *health = lh_buckets_health_json(f->b);
    assert_true(json_integer_value(json_object_get(health, "errors_unwritten")) >= 64);
    json_decref(health);
    /* a manifest the bucket holds that cannot be read (a 500 with LH_EINVAL) is recorded */
    lh_err_set(&e, LH_EINVAL, 500, "manifest_invalid", "could not read a manifest");
    lh_buckets_record_error(f->b, "alive", "load_manifest", "m", &e, NULL);
    errors = lh_buckets_errors_json(f->b, NULL, 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "op")),
                        "load_manifest");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "code")),
                        "manifest_invalid");
    json_decref(errors);
}

/* ---- config errors --------------------------------------------------------------------------- */

/* Line of the nth (1-based) "[[bucket]]" in text. */
static int
bucket_line(const char *text, int nth)
{
    int line = 1, seen = 0;
    for (const char *p = text; *p; p++) {
        if ((p == text || p[-1] == '\n') && strncmp(p, "[[bucket]]", 10) == 0 && ++seen == nth)
            return line;
        if (*p == '\n')
            line++;
    }
    fail_msg("no [[bucket]] #%d", nth);
    return 0;
}

/* Opening must fail with rc; the message must contain what and, when nth > 0, start
 * with the position of the nth [[bucket]]: "<file>:<line>:1: [[bucket]] #<nth>: ". */
static void
expect_open_refused(fixture *f, int rc, int nth, const char *what, lh_err *err)
{
    lh_buckets *b = (lh_buckets *)(uintptr_t)0x1;
    lh_err_clear(err);
    int got = lh_buckets_open(f->cfg, &b, err);
    if (got == 0)
        lh_buckets_close(b);
    if (got != rc)
        print_error("expected %d, got %d: %s\n%s\n", rc, got, err->message, f->text);
    assert_int_equal(got, rc);
    assert_true(b == (lh_buckets *)(uintptr_t)0x1);
    assert_int_equal(err->rc, rc);
    assert_contains(err->message, what);
    if (nth > 0) {
        char where[700];
        snprintf(where, sizeof where, "%s:%d:1: [[bucket]] #%d: ", f->cfg_path,
                 bucket_line(f->text, nth), nth);
        assert_prefix(err->message, where);
    }
    assert_not_contains(err->message, SECRET);
    assert_not_contains(err->detail, SECRET);
    assert_not_contains(err->hint, SECRET);
}

static void
test_config_errors(void **state)
{
    fixture *f = *state;
    lh_err err;

    write_config(f, NULL,
                 "[[bucket]]\nname = \"ok\"\nbackend = \"fs\"\nroot = \"@D/ok\"\n\n"
                 "[[bucket]]\nname = \"ftp_bucket\"\nbackend = \"ftp\"\nroot = \"@D/x\"\n");
    expect_open_refused(f, LH_EINVAL, 2, "backend must be \"fs\" or \"s3\", not \"ftp\"", &err);
    assert_string_equal(err.code, "invalid_config");

    write_config(f, NULL,
                 "[[bucket]]\nname = \"twice\"\nbackend = \"fs\"\nroot = \"@D/t1\"\n\n"
                 "[[bucket]]\nname = \"twice\"\nbackend = \"fs\"\nroot = \"@D/t2\"\n");
    expect_open_refused(f, LH_EINVAL, 2, "bucket 'twice' is defined twice", &err);

    static const char *const bad_names[] = {"Bad", "1abc", "with-dash", "", "a b", "primary!"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        char rest[300], what[120];
        snprintf(rest, sizeof rest,
                 "[[bucket]]\nname = \"%s\"\nbackend = \"fs\"\nroot = \"@D/n\"\n", bad_names[i]);
        snprintf(what, sizeof what, "bucket name '%s' must match", bad_names[i]);
        write_config(f, NULL, rest);
        expect_open_refused(f, LH_EINVAL, 1, what, &err);
    }

    write_config(f, NULL, "[[bucket]]\nbackend = \"fs\"\nroot = \"@D/n\"\n");
    expect_open_refused(f, LH_EINVAL, 1, "'name' is required", &err);
    write_config(f, NULL, "[[bucket]]\nname = \"noroot\"\nbackend = \"fs\"\n");
    expect_open_refused(f, LH_EINVAL, 1, "'root' is required", &err);
    write_config(f, NULL, "[[bucket]]\nname = \"nobackend\"\nroot = \"@D/n\"\n");
    expect_open_refused(f, LH_EINVAL, 1, "'backend' is required", &err);
    write_config(f, NULL, "[[bucket]]\nname = 5\nbackend = \"fs\"\nroot = \"@D/n\"\n");
    expect_open_refused(f, LH_EINVAL, 1, "'name' must be a string", &err);

    write_config(f, "rescue = \"ghost\"",
                 "[[bucket]]\nname = \"real\"\nbackend = \"fs\"\nroot = \"@D/r\"\n");
    expect_open_refused(f, LH_EINVAL, 0, "[storage] rescue = \"ghost\" names no [[bucket]]", &err);
    assert_string_equal(err.code, "invalid_config");

    write_config(f, "primary = \"main\"\nrescue = \"main\"",
                 "[[bucket]]\nname = \"main\"\nbackend = \"fs\"\nroot = \"@D/m\"\n");
    expect_open_refused(f, LH_EINVAL, 0, "rescue must be another bucket than the primary", &err);
    write_config(f, "primary = \"ghost\"", NULL);
    expect_open_refused(f, LH_EINVAL, 0, "[storage] primary = \"ghost\" names no [[bucket]]", &err);
    write_config(f, "profile_bucket = \"ghost\"", NULL);
    expect_open_refused(f, LH_EINVAL, 0, "profile_bucket = \"ghost\" names no [[bucket]]", &err);
    write_config(f, "profile_bucket = \"pb\"\nprofile_prefix = \"users\"",
                 "[[bucket]]\nname = \"pb\"\nbackend = \"fs\"\nroot = \"@D/pb\"\n");
    expect_open_refused(f, LH_EINVAL, 0, "profile_prefix must end with '/'", &err);

    /* an fs root that cannot be made */
    char *file = path_in(f, "a-file");
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    free(file);
    write_config(f, NULL,
                 "[[bucket]]\nname = \"blocked\"\nbackend = \"fs\"\nroot = \"@D/a-file/b\"\n");
    expect_open_refused(f, LH_EIO, 1, "cannot create bucket folder", &err);
    assert_contains(err.detail, "a-file/b");
}

static const char S3_BUCKET[] = "[[bucket]]\n"
                                "name = \"local_fs\"\n"
                                "backend = \"fs\"\n"
                                "root = \"@D/lfs\"\n"
                                "\n"
                                "[[bucket]]\n"
                                "name = \"remote\"\n"
                                "backend = \"s3\"\n"
                                "endpoint = \"http://127.0.0.1:9\"\n"
                                "bucket = \"remote-bucket\"\n"
                                "secret_ref = \"%s\"\n";

static void
write_s3_config(fixture *f, const char *secrets_path, const char *ref)
{
    char rest[1200];
    snprintf(rest, sizeof rest, S3_BUCKET, ref);
    lh_buf all;
    lh_buf_init(&all);
    lh_buf_printf(&all, "%s\n[secrets]\nfile = \"%s\"\n", rest, secrets_path);
    lh_buf_append(&all, "", 0);
    write_config(f, NULL, all.data);
    lh_buf_free(&all);
}

static void
test_s3_secrets_errors(void **state)
{
    fixture *f = *state;
    lh_err err;
    const char *secrets = "[s3ref]\n"
                          "access_key_id = \"AKIA-TEST\"\n"
                          "secret_access_key = \"" SECRET "\"\n";

    /* a secrets file others can read is refused, and the error says how to fix it */
    char *loose = lh_test_write_file("secrets_", secrets, 0644);
    write_s3_config(f, loose, "s3ref");
    expect_open_refused(f, LH_EPERM, 2, "secret_ref 's3ref': secrets file is readable", &err);
    assert_contains(err.hint, "chmod 600");
    assert_contains(err.hint, loose);

    /* a missing secrets file */
    char *missing = path_in(f, "no-such-secrets.toml");
    write_s3_config(f, missing, "s3ref");
    expect_open_refused(f, LH_EINVAL, 2, "could not open secrets file", &err);
    free(missing);

    /* an unknown secret_ref */
    assert_int_equal(chmod(loose, 0600), 0);
    write_s3_config(f, loose, "nope");
    expect_open_refused(f, LH_EINVAL, 2, "secret_ref 'nope' is not defined", &err);
    assert_string_equal(err.code, "invalid_config");
    assert_contains(err.hint, "[nope]");

    /* with a good file the bucket opens, and nothing shown carries the credentials */
    write_s3_config(f, loose, "s3ref");
    open_registry(f);
    lh_store *s = lh_buckets_get(f->b, "remote", &err);
    assert_non_null(s);
    assert_string_equal(lh_store_backend(s), "s3");
    assert_not_contains(lh_store_describe(s), SECRET);
    assert_not_contains(lh_store_describe(s), "AKIA");
    json_t *list = lh_buckets_list_json(f->b);
    char *dump = json_dumps(list, 0);
    assert_not_contains(dump, SECRET);
    assert_contains(dump, "remote");
    free(dump);
    json_decref(list);
    unlink(loose);
    free(loose);
}

/* ---- profile buckets ----------------------------------------------------------------------------
 */

static void
test_profile_buckets(void **state)
{
    fixture *f = *state;
    write_config(f, "profile_bucket = \"homes\"",
                 "[[bucket]]\nname = \"homes\"\nbackend = \"fs\"\nroot = \"@D/homes\"\n");
    open_registry(f);
    lh_err err;
    lh_store *alice = lh_buckets_get(f->b, "profile:alice", &err);
    assert_non_null(alice);
    assert_true(lh_buckets_get(f->b, "profile:alice", &err) == alice); /* made once */
    lh_store *bob = lh_buckets_get(f->b, "profile:bob_2", &err);
    assert_non_null(bob);
    assert_true(bob != alice);
    expect_listed(f->b, "profile:alice", "profile", NULL);

    put_in(f->b, "profile:alice", "notes/todo.txt", "alice's");
    assert_int_equal(lh_store_put_buffer(bob, "notes/todo.txt", "bob's", 5, 0, &err), 0);
    EXPECT_OBJECT(f->b, "profile:alice", "notes/todo.txt", "alice's", false);
    EXPECT_OBJECT(f->b, "profile:bob_2", "notes/todo.txt", "bob's", false);
    /* the objects live under profiles/<user>/ of the base bucket */
    EXPECT_OBJECT(f->b, "homes", "profiles/alice/notes/todo.txt", "alice's", false);
    EXPECT_OBJECT(f->b, "homes", "profiles/bob_2/notes/todo.txt", "bob's", false);
    char *file = path_in(f, "homes/profiles/alice/notes/todo.txt");
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    free(file);

    /* listing a profile shows its own keys, without the prefix */
    put_in(f->b, "profile:alice", "a.txt", "a");
    put_in(f->b, "profile:alice", "b.txt", "b");
    lh_list_page page;
    assert_int_equal(lh_buckets_list_objects(f->b, "profile:alice", "", NULL, 2, &page, NULL, &err),
                     0);
    assert_int_equal(page.n, 2);
    assert_string_equal(page.entries[0].key, "a.txt");
    assert_string_equal(page.entries[1].key, "b.txt");
    assert_non_null(page.next_cursor);
    assert_string_equal(page.next_cursor, "b.txt");
    char *cursor = strdup(page.next_cursor);
    lh_list_page_free(&page);
    assert_int_equal(
        lh_buckets_list_objects(f->b, "profile:alice", "", cursor, 2, &page, NULL, &err), 0);
    free(cursor);
    assert_int_equal(page.n, 1);
    assert_string_equal(page.entries[0].key, "notes/todo.txt");
    assert_null(page.next_cursor);
    lh_list_page_free(&page);

    /* a profile cannot reach another one */
    lh_source src = {.data = "x", .fd = -1, .len = 1};
    lh_err_clear(&err);
    assert_int_equal(lh_buckets_put_object(f->b, "profile:alice", "../bob_2/notes/todo.txt", &src,
                                           0, NULL, NULL, &err),
                     LH_EINVAL);
    EXPECT_OBJECT(f->b, "profile:bob_2", "notes/todo.txt", "bob's", false);
    int fd = -1;
    lh_obj_info info;
    bool rescue_used;
    assert_int_equal(lh_buckets_open_object(f->b, "profile:alice", "a.txt", &fd, &info,
                                            &rescue_used, NULL, &err),
                     0);
    close(fd);
    assert_int_equal(lh_buckets_delete_object(f->b, "profile:alice", "a.txt", NULL, &err), 0);
    lh_err_clear(&err);
    assert_int_equal(
        lh_buckets_head_object(f->b, "profile:alice", "a.txt", &info, &rescue_used, NULL, &err),
        LH_ENOTFOUND);

    /* users must be valid names */
    static const char *const bad[] = {"profile:Bad!",    "profile:",      "profile:../homes",
                                      "profile:alice/x", "profile:Alice", "profile"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lh_err_clear(&err);
        assert_null(lh_buckets_get(f->b, bad[i], &err));
        assert_int_equal(err.rc, LH_ENOTFOUND);
        assert_int_equal(err.http_status, 404);
        assert_string_equal(err.code, "bucket_not_found");
    }
}

static void
test_profile_custom_prefix_and_off(void **state)
{
    fixture *f = *state;
    write_config(f, "profile_bucket = \"homes\"\nprofile_prefix = \"users/\"",
                 "[[bucket]]\nname = \"homes\"\nbackend = \"fs\"\nroot = \"@D/homes\"\n");
    open_registry(f);
    put_in(f->b, "profile:carol", "x.txt", "c");
    EXPECT_OBJECT(f->b, "homes", "users/carol/x.txt", "c", false);
    close_registry(f);

    /* without profile_bucket there are no profile buckets */
    write_config(f, NULL, "[[bucket]]\nname = \"homes\"\nbackend = \"fs\"\nroot = \"@D/homes\"\n");
    open_registry(f);
    lh_err err;
    lh_err_clear(&err);
    assert_null(lh_buckets_get(f->b, "profile:carol", &err));
    assert_int_equal(err.rc, LH_ENOTFOUND);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_default_primary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rescue_fallback_and_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_ring_bound_and_junk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_coalesces_bursts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_secrets_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_custom_prefix_and_off, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
