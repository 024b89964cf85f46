/*
 * test_key.c — object key validation (lh_key_check in src/storage/store.c): what a
 * valid key looks like (UTF-8, spaces, deep paths, exactly 1024 bytes) and every
 * refusal, each a 400 invalid_key, LH_EINVAL, saying why; plus that the store front
 * applies the check before any backend sees the key.
 */
#include "testutil.h"

#include "storage/storage.h"

/* key must pass, and the error must stay untouched. */
#define EXPECT_VALID(key) expect_valid((key), __FILE__, __LINE__)

static void
expect_valid(const char *key, const char *file, int line)
{
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_key_check(key, &err);
    if (rc != 0) {
        print_error("key \"%s\" refused: %s\n", key, err.message);
        _fail(file, line);
    }
    _assert_int_equal(err.rc, 0, file, line);
    _assert_int_equal(lh_key_check(key, NULL), 0, file, line);
}

/* key must be refused as a 400 invalid_key whose message contains why. */
#define EXPECT_REFUSED(key, why) expect_refused((key), (why), __FILE__, __LINE__)

static void
expect_refused(const char *key, const char *why, const char *file, int line)
{
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_key_check(key, &err);
    if (rc != LH_EINVAL) {
        print_error("key \"%s\": expected LH_EINVAL, got %d\n", key ? key : "(null)", rc);
        _fail(file, line);
    }
    _assert_int_equal(err.rc, LH_EINVAL, file, line);
    _assert_int_equal(err.http_status, 400, file, line);
    _assert_string_equal(err.code, "invalid_key", file, line);
    lh_test_assert_contains(err.message, why, file, line);
    lh_test_assert_contains(err.hint, "1 to 1024 bytes", file, line);
    _assert_int_equal(lh_key_check(key, NULL), LH_EINVAL, file, line);
}

static void
test_valid_keys(void **state)
{
    EXPECT_VALID("a");
    EXPECT_VALID("file.csv");
    EXPECT_VALID("folder/name.csv");
    EXPECT_VALID("r\xC3\xA9sum\xC3\xA9/\xC3\xBC.csv"); /* "résumé/ü.csv" */
    EXPECT_VALID("\xE2\x82\xAC/\xF0\x9F\x98\x80");     /* "€/😀": 3- and 4-byte sequences */
    EXPECT_VALID("\xEF\xBF\xBD");                      /* U+FFFD */
    EXPECT_VALID("\xF4\x8F\xBF\xBF");                  /* U+10FFFF, the last code point */
    EXPECT_VALID("with space/and more spaces .txt");
    EXPECT_VALID(" leading and trailing ");
    EXPECT_VALID("~");
    EXPECT_VALID("~user/~");
    EXPECT_VALID("a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z");
    /* dots are fine when they are not a whole segment */
    EXPECT_VALID(".hidden");
    EXPECT_VALID("...");
    EXPECT_VALID("a/.../b");
    EXPECT_VALID("a/..b/c.");
    EXPECT_VALID("x/.lh-tmp/y"); /* only the top-level .lh-tmp is reserved */
    EXPECT_VALID(".lh-tmpx/y");
    EXPECT_VALID(".lh-tm");
    EXPECT_VALID("batch_00000000000000000001.jsonl");
    EXPECT_VALID("!$&'()*+,;=:@%?#[]");
}

static void
test_length_limits(void **state)
{
    char key[LH_KEY_MAX + 2];
    memset(key, 'k', LH_KEY_MAX);
    key[LH_KEY_MAX] = '\0';
    assert_int_equal(strlen(key), 1024);
    EXPECT_VALID(key);

    /* exactly 1024 bytes made of multi-byte characters and deep segments */
    for (size_t i = 0; i + 2 <= LH_KEY_MAX; i += 2) {
        key[i] = '\xC3';
        key[i + 1] = '\xA9';
    }
    key[LH_KEY_MAX] = '\0';
    EXPECT_VALID(key);
    for (size_t i = 0; i < LH_KEY_MAX; i++)
        key[i] = i % 2 ? '/' : 'd';
    key[LH_KEY_MAX - 1] = 'z'; /* 512 segments, last one not empty */
    key[LH_KEY_MAX] = '\0';
    assert_int_equal(strlen(key), 1024);
    EXPECT_VALID(key);

    memset(key, 'k', LH_KEY_MAX + 1);
    key[LH_KEY_MAX + 1] = '\0';
    assert_int_equal(strlen(key), 1025);
    EXPECT_REFUSED(key, "is 1025 bytes long; the limit is 1024");

    EXPECT_REFUSED("", "empty");
    EXPECT_REFUSED(NULL, "empty");
}

static void
test_slashes_and_segments(void **state)
{
    EXPECT_REFUSED("/a", "must not start with '/'");
    EXPECT_REFUSED("/", "must not start with '/'");
    EXPECT_REFUSED("a/", "must not end with '/'");
    EXPECT_REFUSED("a/b/", "must not end with '/'");
    EXPECT_REFUSED("a//b", "empty segment");
    EXPECT_REFUSED("a/b//c/d", "empty segment");

    EXPECT_REFUSED(".", "'.' segment");
    EXPECT_REFUSED("./a", "'.' segment");
    EXPECT_REFUSED("a/./b", "'.' segment");
    EXPECT_REFUSED("a/.", "'.' segment");
    EXPECT_REFUSED("..", "'..' segment");
    EXPECT_REFUSED("../a", "'..' segment");
    EXPECT_REFUSED("a/../b", "'..' segment");
    EXPECT_REFUSED("a/..", "'..' segment");
    EXPECT_REFUSED("a/b/c/../../../../etc/passwd", "'..' segment");

    EXPECT_REFUSED(".lh-tmp/x", "reserved");
    EXPECT_REFUSED(".lh-tmp", "reserved");
    EXPECT_REFUSED(".lh-tmp/a/b", "reserved");
}

static void
test_forbidden_bytes(void **state)
{
    EXPECT_REFUSED("a\\b", "backslash at byte 1");
    EXPECT_REFUSED("\\", "backslash at byte 0");
    EXPECT_REFUSED("..\\..\\x", "backslash");

    EXPECT_REFUSED("a\x01"
                   "b",
                   "control character at byte 1");
    EXPECT_REFUSED("\x01", "control character at byte 0");
    EXPECT_REFUSED("a\x7f", "control character at byte 1");
    EXPECT_REFUSED("a\tb", "control character");
    EXPECT_REFUSED("a\nb", "control character");
    EXPECT_REFUSED("a\rb", "control character");
    EXPECT_REFUSED("dir/\x1f"
                   "name",
                   "control character at byte 4");
    char every[2] = {0, 0};
    for (int c = 1; c < 0x20; c++) {
        every[0] = (char)c;
        EXPECT_REFUSED(every, "control character");
    }
}

static void
test_invalid_utf8(void **state)
{
    EXPECT_REFUSED("\x80", "not valid UTF-8 (byte 0)"); /* lone continuation byte */
    EXPECT_REFUSED("ab\xBF"
                   "cd",
                   "not valid UTF-8 (byte 2)");             /* lone continuation byte */
    EXPECT_REFUSED("\xC0\x80", "not valid UTF-8 (byte 0)"); /* overlong NUL */
    EXPECT_REFUSED("\xC1\xBF", "not valid UTF-8");          /* overlong 0x7F */
    EXPECT_REFUSED("\xC0\xAF"
                   "etc",
                   "not valid UTF-8");                   /* overlong '/' */
    EXPECT_REFUSED("a\xC3", "not valid UTF-8 (byte 1)"); /* truncated at the end */
    EXPECT_REFUSED("a\xC3"
                   "b",
                   "not valid UTF-8 (byte 1)");          /* truncated mid-key */
    EXPECT_REFUSED("\xE2\x82", "not valid UTF-8");       /* 3-byte, one missing */
    EXPECT_REFUSED("\xF0\x9F\x98", "not valid UTF-8");   /* 4-byte, one missing */
    EXPECT_REFUSED("\xF0\x9F\x98/x", "not valid UTF-8"); /* '/' is no continuation */
    EXPECT_REFUSED("\xFF", "not valid UTF-8");
    EXPECT_REFUSED("\xFE", "not valid UTF-8");
    EXPECT_REFUSED("\xF8\x88\x80\x80\x80", "not valid UTF-8"); /* 5-byte form */
    /* overlong 3- and 4-byte forms, UTF-16 surrogates and code points past U+10FFFF are
     * not UTF-8 either (RFC 3629); JSON encoders refuse them */
    EXPECT_REFUSED("\xE0\x80\xAF", "not valid UTF-8");     /* overlong '/' */
    EXPECT_REFUSED("\xE0\x9F\xBF", "not valid UTF-8");     /* overlong U+07FF */
    EXPECT_REFUSED("\xF0\x8F\xBF\xBF", "not valid UTF-8"); /* overlong U+FFFF */
    EXPECT_REFUSED("\xED\xA0\x80", "not valid UTF-8");     /* U+D800 */
    EXPECT_REFUSED("\xED\xBF\xBF", "not valid UTF-8");     /* U+DFFF */
    EXPECT_REFUSED("\xF4\x90\x80\x80", "not valid UTF-8"); /* U+110000 */
    EXPECT_REFUSED("\xF5\x80\x80\x80", "not valid UTF-8");
    EXPECT_REFUSED("\xF7\xBF\xBF\xBF", "not valid UTF-8");
    /* the boundaries just inside stay valid */
    EXPECT_VALID("\xE0\xA0\x80");     /* U+0800 */
    EXPECT_VALID("\xED\x9F\xBF");     /* U+D7FF */
    EXPECT_VALID("\xEE\x80\x80");     /* U+E000 */
    EXPECT_VALID("\xF0\x90\x80\x80"); /* U+10000 */
    EXPECT_VALID("\xC2\x80");         /* U+0080 */
}

/* Every operation of the store front checks keys before the backend sees them. */
static void
test_store_front_checks_keys(void **state)
{
    char *root = lh_test_mkdtemp("key_store_");
    lh_store *s = NULL;
    lh_err err;
    assert_int_equal(lh_store_fs_open(root, &s, &err), 0);
    lh_obj_info info;
    lh_buf buf;

    static const char *const bad[] = {"",          "/etc/passwd", "../x", "a/../../x",
                                      ".lh-tmp/x", "a\\b",        "a//b", "a/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lh_err_clear(&err);
        assert_int_equal(lh_store_put_buffer(s, bad[i], "x", 1, 0, &err), LH_EINVAL);
        assert_string_equal(err.code, "invalid_key");
        assert_int_equal(err.http_status, 400);
        assert_int_equal(lh_store_get_buffer(s, bad[i], 100, &buf, &info, &err), LH_EINVAL);
        assert_int_equal(lh_store_head(s, bad[i], &info, &err), LH_EINVAL);
        assert_int_equal(lh_store_delete(s, bad[i], &err), LH_EINVAL);
        assert_int_equal(lh_store_copy(s, bad[i], "ok", &err), LH_EINVAL);
        assert_int_equal(lh_store_copy(s, "ok", bad[i], &err), LH_EINVAL);
        int fd = -1;
        assert_int_equal(lh_store_open_local(s, bad[i], &fd, &info, &err), LH_EINVAL);
        assert_int_equal(fd, -1);
    }
    /* nothing was written anywhere: the root holds at most the empty temp folder */
    DIR *d = opendir(root);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        assert_string_equal(e->d_name, ".lh-tmp");
    }
    closedir(d);
    lh_store_free(s);
    lh_test_rm_rf(root);
    free(root);
}

/* Checkpoint keys round-trip, and nothing else parses as one (catalog/checkpoint.c
 * takes the newest number it lists). */
static void
test_checkpoint_keys(void **state)
{
    (void)state;
    int64_t seq = 0;
    char *key = lh_layout_checkpoint_key(42);
    assert_string_equal(key, "_catalog/checkpoint/c00000000000000000042.parquet");
    assert_int_equal(lh_key_check(key, NULL), 0);
    assert_int_equal(lh_layout_parse_checkpoint_key(key, &seq), 0);
    assert_int_equal(seq, 42);
    free(key);
    const char *not_one[] = {
        "_catalog/checkpoint/c42.parquet",
        "_catalog/checkpoint/c00000000000000000000.parquet",
        "_catalog/checkpoint/c00000000000000000042.parquet.tmp",
        "_catalog/checkpoint/x00000000000000000042.parquet",
        "_catalog/checkpoint/c-0000000000000000042.parquet",
        "datasets/c00000000000000000042.parquet",
    };
    for (size_t i = 0; i < sizeof not_one / sizeof *not_one; i++)
        assert_int_equal(lh_layout_parse_checkpoint_key(not_one[i], &seq), -1);
}

/* The folders a walk for manifests enters: datasets/, a dataset's folder, its _manifest/;
 * never its data/ or anything deeper. */
static void
test_manifest_folders(void **state)
{
    (void)state;
    const char *in[] = {"", "data", "datasets/", "datasets/people/", "datasets/people/_manifest/"};
    const char *out[] = {"_journal/",
                         "datasets/people/data/",
                         "datasets/people/_manifestx/",
                         "datasets/people/_manifest/x/",
                         "datasetsx/",
                         "other/"};
    for (size_t i = 0; i < sizeof in / sizeof *in; i++)
        assert_true(lh_layout_manifest_folder(in[i]));
    for (size_t i = 0; i < sizeof out / sizeof *out; i++)
        assert_false(lh_layout_manifest_folder(out[i]));
}

/* Workspace versions round-trip through their key; delta files and strays are not versions. */
static void
test_workspace_keys(void **state)
{
    (void)state;
    char *key = lh_layout_workspace_key("ws_0123456789abcdef", 42);
    assert_string_equal(key, "_workspaces/ws_0123456789abcdef/v0000000042.json");
    char id[32];
    int64_t version = 0;
    assert_int_equal(lh_layout_parse_workspace_key(key, id, sizeof id, &version), 0);
    assert_string_equal(id, "ws_0123456789abcdef");
    assert_int_equal(version, 42);
    free(key);
    key = lh_layout_workspace_delta_key("ws_1", "jobs", "abc");
    assert_string_equal(key, "_workspaces/ws_1/delta/jobs/abc.parquet");
    assert_int_equal(lh_layout_parse_workspace_key(key, id, sizeof id, &version), -1);
    free(key);
    static const char *const not_versions[] = {"_workspaces/ws_1/v.json",
                                               "_workspaces/ws_1/v0.json",
                                               "_workspaces/ws_1/v12.txt",
                                               "_workspaces//v1.json",
                                               "datasets/x/v1.json",
                                               "_workspaces/ws_1",
                                               NULL};
    for (const char *const *k = not_versions; *k; k++)
        assert_int_equal(lh_layout_parse_workspace_key(*k, id, sizeof id, &version), -1);
    char small[4];
    assert_int_equal(
        lh_layout_parse_workspace_key("_workspaces/ws_long/v1.json", small, sizeof small, &version),
        -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_keys),           cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_slashes_and_segments), cmocka_unit_test(test_forbidden_bytes),
        cmocka_unit_test(test_invalid_utf8),         cmocka_unit_test(test_store_front_checks_keys),
        cmocka_unit_test(test_workspace_keys),       cmocka_unit_test(test_checkpoint_keys),
        cmocka_unit_test(test_manifest_folders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
