/*
 * test_secret_ref.c — secret_ref passwords: the file is parsed once and kept while it is
 * unchanged (and not changed too recently to tell); a password rewritten in place within
 * the same clock tick and with the same size, or renamed over, is read on the next call; a mode
 * opened to others, a missing file and an unknown ref are 400 invalid_secret_ref whose text never
 * holds a password.
 */
#include "ingest/secret_ref.c"
#include "testutil.h"

static void
rewrite(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void
assert_password(lh_ingest_secrets *s, const char *ref, const char *want)
{
    char *got = NULL;
    lh_err err;
    assert_int_equal(lh_ingest_secret_password(s, ref, &got, &err), 0);
    assert_string_equal(got, want);
    lh_free_secret(got);
}

static void
assert_refused(lh_ingest_secrets *s, const char *ref, const char *in_detail)
{
    char *got = NULL;
    lh_err err;
    assert_int_equal(lh_ingest_secret_password(s, ref, &got, &err), LH_EINVAL);
    assert_null(got);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.code, "invalid_secret_ref");
    assert_non_null(strstr(err.message, ref));
    assert_non_null(strstr(err.detail, in_detail));
    const char *const secrets[] = {"pw-one-1", "pw-two-2", "pw-three"};
    for (size_t i = 0; i < 3; i++) {
        assert_null(strstr(err.message, secrets[i]));
        assert_null(strstr(err.detail, secrets[i]));
        assert_null(strstr(err.hint, secrets[i]));
    }
}

static void
test_rotation(void **state)
{
    (void)state;
    char *path = lh_test_write_file("secrets-", "[pg]\npassword = \"pw-one-1\"\n", 0600);
    lh_ingest_secrets *s = lh_ingest_secrets_new(path);
    assert_null(s->parsed); /* nothing read before the first use */

    assert_password(s, "pg", "pw-one-1");
    const lh_secrets *kept = s->parsed;
    assert_non_null(kept);
    assert_true(s->racy); /* just written: the next call reads it again */
    assert_password(s, "pg", "pw-one-1");
    assert_true(s->racy);
    int64_t racy_ns = RACY_NS;
    RACY_NS = 0; /* as if the file had been written long ago */
    assert_password(s, "pg", "pw-one-1");
    kept = s->parsed;
    assert_false(s->racy);
    assert_password(s, "pg", "pw-one-1");
    assert_ptr_equal(s->parsed, kept); /* unchanged: not read again */
    RACY_NS = racy_ns;

    /* in place, same size: the times tell */
    rewrite(path, "[pg]\npassword = \"pw-two-2\"\n");
    assert_password(s, "pg", "pw-two-2");

    /* renamed over: a new inode */
    char *next = lh_sprintf("%s.next", path);
    rewrite(next, "[pg]\npassword = \"pw-three\"\n[other]\npassword = \"x\"\n");
    assert_int_equal(chmod(next, 0600), 0);
    assert_int_equal(rename(next, path), 0);
    assert_password(s, "pg", "pw-three");
    assert_password(s, "other", "x");

    assert_refused(s, "nope", "is not defined");

    /* opened to others: refused at once, and the kept copy dropped */
    assert_int_equal(chmod(path, 0644), 0);
    assert_refused(s, "pg", "readable or writable by others");
    assert_null(s->parsed);
    assert_int_equal(chmod(path, 0600), 0);
    assert_password(s, "pg", "pw-three");

    /* gone */
    assert_int_equal(unlink(path), 0);
    assert_refused(s, "pg", "could not open secrets file");
    assert_null(s->parsed);

    lh_ingest_secrets_free(s);
    lh_ingest_secrets_free(NULL);
    free(next);
    free(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
