/*
 * test_secrets.c — the file secrets provider (src/core/secrets.c): a 0600 file owned by
 * us loads; any other mode, owner, a symlink or a directory is refused; unknown refs
 * and fields are LH_ENOTFOUND; and no error text ever carries a secret value.
 */
#include "testutil.h"

#include "core/core.h"

#define SECRET "s3cr3t-VALUE-42"

static const char GOOD_FILE[] = "plain = \"" SECRET "\"\n"
                                "\n"
                                "[s3_local]\n"
                                "access_key_id = \"AKIA-TEST\"\n"
                                "secret_access_key = \"" SECRET "\"\n"
                                "port = 9000\n"
                                "\n"
                                "[other]\n"
                                "token = 'tok-other'\n";

/* No text of err may contain the secret. */
#define assert_no_secret(err) assert_no_secret_at((err), __FILE__, __LINE__)

static void
assert_no_secret_at(const lh_err *err, const char *file, int line)
{
    lh_test_assert_not_contains(err->message, SECRET, file, line);
    lh_test_assert_not_contains(err->detail, SECRET, file, line);
    lh_test_assert_not_contains(err->hint, SECRET, file, line);
    lh_test_assert_not_contains(err->code, SECRET, file, line);
}

/* Open path, which must be refused with rc; out must stay untouched. */
static void
expect_open_refused(const char *path, int rc, const char *code, lh_err *err)
{
    lh_secrets *s = (lh_secrets *)(uintptr_t)0x1;
    lh_err_clear(err);
    int got = lh_secrets_open(path, &s, err);
    if (got == 0)
        lh_secrets_free(s);
    assert_int_equal(got, rc);
    assert_true(s == (lh_secrets *)(uintptr_t)0x1);
    assert_int_equal(err->rc, rc);
    assert_int_equal(err->http_status, 500);
    assert_string_equal(err->code, code);
    assert_no_secret(err);
}

static void
test_load_and_get(void **state)
{
    char *path = lh_test_write_file("secrets_", GOOD_FILE, 0600);
    lh_secrets *s = NULL;
    lh_err err;
    assert_int_equal(lh_secrets_open(path, &s, &err), 0);
    assert_non_null(s);
    assert_true(lh_secrets_has(s, "s3_local"));
    assert_true(lh_secrets_has(s, "other"));
    assert_false(lh_secrets_has(s, "plain")); /* a top-level value is not a ref */
    assert_false(lh_secrets_has(s, "nope"));

    char *value = NULL;
    assert_int_equal(lh_secrets_get(s, "s3_local", "secret_access_key", &value, &err), 0);
    assert_string_equal(value, SECRET);
    lh_free_secret(value);
    value = NULL;
    assert_int_equal(lh_secrets_get(s, "s3_local", "access_key_id", &value, &err), 0);
    assert_string_equal(value, "AKIA-TEST");
    lh_free_secret(value);
    assert_int_equal(lh_secrets_get(s, "other", "token", &value, NULL), 0);
    assert_string_equal(value, "tok-other");
    lh_free_secret(value);
    lh_free_secret(NULL);
    lh_secrets_free(s);
    lh_secrets_free(NULL);

    /* stricter than 0600 is fine too */
    assert_int_equal(chmod(path, 0400), 0);
    s = NULL;
    assert_int_equal(lh_secrets_open(path, &s, &err), 0);
    assert_true(lh_secrets_has(s, "s3_local"));
    lh_secrets_free(s);
    unlink(path);
    free(path);
}

static void
test_unknown_ref_and_field(void **state)
{
    char *path = lh_test_write_file("secrets_", GOOD_FILE, 0600);
    lh_secrets *s = NULL;
    lh_err err;
    assert_int_equal(lh_secrets_open(path, &s, &err), 0);
    char *value = (char *)(uintptr_t)0x1;

    lh_err_clear(&err);
    assert_int_equal(lh_secrets_get(s, "nope", "x", &value, &err), LH_ENOTFOUND);
    assert_int_equal(err.rc, LH_ENOTFOUND);
    assert_string_equal(err.code, "secret_not_found");
    assert_string_equal(err.message, "secret_ref 'nope' is not defined");
    assert_contains(err.hint, "[nope]");
    assert_no_secret(&err);

    lh_err_clear(&err);
    assert_int_equal(lh_secrets_get(s, "s3_local", "session_token", &value, &err), LH_ENOTFOUND);
    assert_string_equal(err.message, "secret_ref 's3_local' has no string field 'session_token'");
    assert_no_secret(&err);

    lh_err_clear(&err);
    assert_int_equal(lh_secrets_get(s, "s3_local", "port", &value, &err), LH_ENOTFOUND);
    assert_contains(err.message, "no string field 'port'");
    assert_no_secret(&err);

    /* a top-level key holding the secret is not a ref, and the error does not show it */
    lh_err_clear(&err);
    assert_int_equal(lh_secrets_get(s, "plain", "plain", &value, &err), LH_ENOTFOUND);
    assert_string_equal(err.code, "secret_not_found");
    assert_no_secret(&err);

    assert_int_equal(lh_secrets_get(s, "nope", "x", &value, NULL), LH_ENOTFOUND);
    assert_true(value == (char *)(uintptr_t)0x1); /* untouched on failure */
    lh_secrets_free(s);
    unlink(path);
    free(path);
}

static void
test_loose_modes_refused(void **state)
{
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0620, 0602, 0601, 0610, 0666, 0700 | 04};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char *path = lh_test_write_file("secrets_", GOOD_FILE, modes[i]);
        lh_err err;
        expect_open_refused(path, LH_EPERM, "secrets_file_refused", &err);
        assert_string_equal(err.message, "secrets file is readable or writable by others");
        char detail[600];
        snprintf(detail, sizeof detail, "%s has mode %04o", path, (unsigned)modes[i]);
        assert_string_equal(err.detail, detail);
        assert_contains(err.hint, "chmod 600");
        assert_contains(err.hint, path);
        unlink(path);
        free(path);
    }
}

static void
test_other_owner_refused(void **state)
{
    if (geteuid() != 0) {
        print_message("not running as root: cannot give a file to another user; skipping\n");
        skip();
    }
    char *path = lh_test_write_file("secrets_", GOOD_FILE, 0600);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    int rc = fchown(fd, 65534, 65534);
    close(fd);
    if (rc != 0) {
        print_message("fchown to 65534 failed (%s); skipping\n", strerror(errno));
        unlink(path);
        free(path);
        skip();
    }
    lh_err err;
    expect_open_refused(path, LH_EPERM, "secrets_file_refused", &err);
    assert_string_equal(err.message, "secrets file is not owned by the server's user");
    assert_contains(err.detail, "is owned by uid 65534, the server runs as uid 0");
    assert_contains(err.hint, "chown");
    unlink(path);
    free(path);
}

static void
test_symlink_refused(void **state)
{
    char *real = lh_test_write_file("secrets_", GOOD_FILE, 0600);
    char *dir = lh_test_mkdtemp("secrets_link_");
    char link_path[600];
    snprintf(link_path, sizeof link_path, "%s/secrets.toml", dir);
    assert_int_equal(symlink(real, link_path), 0);

    lh_err err;
    expect_open_refused(link_path, LH_EPERM, "secrets_file_refused", &err);
    assert_string_equal(err.message, "secrets file is a symbolic link");
    assert_string_equal(err.detail, link_path);
    assert_contains(err.hint, "real file");

    /* the target itself is fine */
    lh_secrets *s = NULL;
    assert_int_equal(lh_secrets_open(real, &s, &err), 0);
    lh_secrets_free(s);
    lh_test_rm_rf(dir);
    free(dir);
    unlink(real);
    free(real);
}

static void
test_directory_refused(void **state)
{
    char *dir = lh_test_mkdtemp("secrets_dir_");
    assert_int_equal(chmod(dir, 0700), 0);
    lh_err err;
    expect_open_refused(dir, LH_EPERM, "secrets_file_refused", &err);
    assert_string_equal(err.message, "secrets file is not a regular file");
    assert_string_equal(err.detail, dir);
    lh_test_rm_rf(dir);
    free(dir);
}

static void
test_missing_file(void **state)
{
    char *dir = lh_test_mkdtemp("secrets_missing_");
    char path[600];
    snprintf(path, sizeof path, "%s/secrets.toml", dir);
    lh_err err;
    expect_open_refused(path, LH_ENOTFOUND, "secrets_file_unreadable", &err);
    assert_string_equal(err.message, "could not open secrets file");
    assert_prefix(err.detail, path);
    assert_contains(err.detail, "No such file or directory");
    assert_contains(err.hint, "0600");

    lh_secrets *s = (lh_secrets *)(uintptr_t)0x1;
    assert_int_equal(lh_secrets_open(path, &s, NULL), LH_ENOTFOUND);
    assert_true(s == (lh_secrets *)(uintptr_t)0x1);
    lh_test_rm_rf(dir);
    free(dir);
}

/* A malformed file must be refused with its position, and the parser's description —
 * which can quote the text where it stopped — must not carry the value out. */
static void
expect_invalid_without_secret(const char *text, const char *position)
{
    char *path = lh_test_write_file("secrets_", text, 0600);
    lh_err err;
    expect_open_refused(path, LH_EINVAL, "secrets_file_invalid", &err);
    char where[600];
    snprintf(where, sizeof where, "%s:%s", path, position);
    assert_string_equal(err.message, "secrets file is not valid TOML");
    assert_string_equal(err.detail, where);
    assert_contains(err.hint, "line and column");
    unlink(path);
    free(path);
}

static void
test_invalid_file_hides_values(void **state)
{
    /* a value that is not quoted, starting with a digit: the number parser quotes it */
    expect_invalid_without_secret("[s3]\nsecret_access_key = 42-" SECRET "\n", "2:21");
    expect_invalid_without_secret("[s3]\nsecret_access_key = 0" SECRET "\n", "2:21");
    expect_invalid_without_secret("[s3]\nkey = 1" SECRET "\n", "2:7");
    /* a secret pasted on a line of its own reads as a key without '=' */
    expect_invalid_without_secret("[s3]\n" SECRET "\n", "2:16");
    expect_invalid_without_secret("[s3]\n\"" SECRET "\"\n", "2:18");
    /* other syntax errors near the value */
    expect_invalid_without_secret("[s3]\nk = \"" SECRET "\" x\n", "2:23");
    expect_invalid_without_secret("[s3]\nk = \"" SECRET "\n", "2:5");
    expect_invalid_without_secret("[s3]\nk = " SECRET "\n", "2:5");
    expect_invalid_without_secret("[s3]\nk = \"" SECRET "\"\nk = \"" SECRET "\"\n", "3:1");
}

static void
test_oversized_file(void **state)
{
    /* the reader's own limit (4 MiB) surfaces as unreadable, not as a syntax error */
    size_t len = (4u << 20) + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, '#', len);
    char *path = lh_test_write_bytes("secrets_", big, len, 0600);
    free(big);
    lh_err err;
    expect_open_refused(path, LH_EINVAL, "secrets_file_unreadable", &err);
    assert_string_equal(err.message, "could not read secrets file");
    assert_contains(err.detail, "at most");
    unlink(path);
    free(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_get),
        cmocka_unit_test(test_unknown_ref_and_field),
        cmocka_unit_test(test_loose_modes_refused),
        cmocka_unit_test(test_other_owner_refused),
        cmocka_unit_test(test_symlink_refused),
        cmocka_unit_test(test_directory_refused),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_invalid_file_hides_values),
        cmocka_unit_test(test_oversized_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
