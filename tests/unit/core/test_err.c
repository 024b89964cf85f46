/*
 * test_err.c — the lh_err object (src/core/err.c): setting message/detail/hint, the
 * rc → HTTP status mapping and the one JSON error body.
 */
#include "testutil.h"

#include "core/core.h"

static void
test_set_fills_every_field(void **state)
{
    lh_err err;
    lh_err_clear(&err);
    int rc =
        lh_err_set(&err, LH_ENOTFOUND, 0, "dataset_not_found", "no dataset '%s' (%d)", "sales", 7);
    assert_int_equal(rc, LH_ENOTFOUND);
    assert_int_equal(err.rc, LH_ENOTFOUND);
    assert_int_equal(err.http_status, 404); /* 0 means: the default for rc */
    assert_string_equal(err.code, "dataset_not_found");
    assert_string_equal(err.message, "no dataset 'sales' (7)");
    assert_string_equal(err.detail, "");
    assert_string_equal(err.hint, "");

    lh_err_detail(&err, "looked in %s", "catalog");
    lh_err_hint(&err, "create it with POST /datasets/%s", "sales");
    assert_string_equal(err.detail, "looked in catalog");
    assert_string_equal(err.hint, "create it with POST /datasets/sales");
    assert_string_equal(err.message, "no dataset 'sales' (7)");

    /* an explicit status wins; a new set forgets the old detail and hint */
    rc = lh_err_set(&err, LH_EINVAL, 422, "bad", "second");
    assert_int_equal(rc, LH_EINVAL);
    assert_int_equal(err.http_status, 422);
    assert_string_equal(err.code, "bad");
    assert_string_equal(err.message, "second");
    assert_string_equal(err.detail, "");
    assert_string_equal(err.hint, "");

    /* a NULL code becomes "error" */
    lh_err_set(&err, LH_EIO, 0, NULL, "x");
    assert_string_equal(err.code, "error");
    assert_int_equal(err.http_status, 500);
}

static void
test_long_texts_are_truncated(void **state)
{
    char big[2 * LH_ERR_TEXT_MAX];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char long_code[2 * LH_ERR_CODE_MAX];
    memset(long_code, 'c', sizeof long_code - 1);
    long_code[sizeof long_code - 1] = '\0';
    lh_err err;
    lh_err_set(&err, LH_EINVAL, 0, long_code, "%s", big);
    lh_err_detail(&err, "%s", big);
    lh_err_hint(&err, "%s", big);
    assert_int_equal(strlen(err.code), LH_ERR_CODE_MAX - 1);
    assert_int_equal(strlen(err.message), LH_ERR_TEXT_MAX - 1);
    assert_int_equal(strlen(err.detail), LH_ERR_TEXT_MAX - 1);
    assert_int_equal(strlen(err.hint), LH_ERR_TEXT_MAX - 1);
}

static void
test_null_err_is_accepted(void **state)
{
    assert_int_equal(lh_err_set(NULL, LH_EPERM, 0, "c", "m %d", 1), LH_EPERM);
    assert_int_equal(lh_err_set(NULL, LH_OK, 0, "c", "m"), LH_OK);
    lh_err_detail(NULL, "d %s", "x");
    lh_err_hint(NULL, "h %s", "x");
    lh_err_clear(NULL);

    lh_err err;
    lh_err_set(&err, LH_EIO, 503, "x", "y");
    lh_err_detail(&err, "d");
    lh_err_clear(&err);
    assert_int_equal(err.rc, 0);
    assert_int_equal(err.http_status, 0);
    assert_string_equal(err.code, "");
    assert_string_equal(err.message, "");
    assert_string_equal(err.detail, "");
    assert_string_equal(err.hint, "");
}

static void
test_status_mapping(void **state)
{
    static const struct {
        int rc, status;
    } cases[] = {
        {LH_OK, 200},        {LH_EINVAL, 400},   {LH_ENOMEM, 503},    {LH_EIO, 500},
        {LH_ENOTFOUND, 404}, {LH_EEXIST, 409},   {LH_EPERM, 403},     {LH_ETOOBIG, 413},
        {LH_ETIMEOUT, 408},  {LH_EUNAVAIL, 503}, {LH_ECANCELED, 409}, {LH_EINTERNAL, 500},
        {-12345, 500},       {1, 500},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(lh_err_status_for(cases[i].rc), cases[i].status);
        lh_err err;
        lh_err_set(&err, cases[i].rc, 0, "c", "m");
        assert_int_equal(err.http_status, cases[i].status);
    }
}

/* Check an {"error":{...}} object: exactly the expected members, nothing else. */
static void
check_error_json(json_t *j, const char *code, const char *message, const char *detail,
                 const char *hint)
{
    assert_non_null(j);
    assert_true(json_is_object(j));
    assert_int_equal(json_object_size(j), 1);
    json_t *inner = json_object_get(j, "error");
    assert_true(json_is_object(inner));
    size_t expected = 2 + (detail != NULL) + (hint != NULL);
    assert_int_equal(json_object_size(inner), expected);
    assert_string_equal(json_string_value(json_object_get(inner, "code")), code);
    assert_string_equal(json_string_value(json_object_get(inner, "message")), message);
    if (detail)
        assert_string_equal(json_string_value(json_object_get(inner, "detail")), detail);
    else
        assert_null(json_object_get(inner, "detail"));
    if (hint)
        assert_string_equal(json_string_value(json_object_get(inner, "hint")), hint);
    else
        assert_null(json_object_get(inner, "hint"));
}

static void
test_to_json_shape(void **state)
{
    lh_err err;
    lh_err_set(&err, LH_ENOTFOUND, 0, "job_not_found", "no job with id 'x'");
    json_t *j = lh_err_to_json(&err);
    check_error_json(j, "job_not_found", "no job with id 'x'", NULL, NULL);
    json_decref(j);

    lh_err_hint(&err, "list jobs with GET /jobs");
    j = lh_err_to_json(&err);
    check_error_json(j, "job_not_found", "no job with id 'x'", NULL, "list jobs with GET /jobs");
    json_decref(j);

    lh_err_detail(&err, "searched 3 records");
    j = lh_err_to_json(&err);
    check_error_json(j, "job_not_found", "no job with id 'x'", "searched 3 records",
                     "list jobs with GET /jobs");
    json_decref(j);

    /* detail alone */
    lh_err_set(&err, LH_EINVAL, 0, "bad", "m");
    lh_err_detail(&err, "d");
    j = lh_err_to_json(&err);
    check_error_json(j, "bad", "m", "d", NULL);
    json_decref(j);

    /* NULL or an unset error still renders a usable body */
    j = lh_err_to_json(NULL);
    check_error_json(j, "internal_error", "internal error", NULL, NULL);
    json_decref(j);
    lh_err_clear(&err);
    j = lh_err_to_json(&err);
    check_error_json(j, "internal_error", "internal error", NULL, NULL);
    json_decref(j);
}

static void
test_to_body(void **state)
{
    lh_err err;
    lh_err_set(&err, LH_ENOTFOUND, 0, "not_found", "no such thing");
    char *body = lh_err_to_body(&err);
    assert_string_equal(body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such thing\"}}");
    free(body);

    lh_err_detail(&err, "d");
    lh_err_hint(&err, "h");
    body = lh_err_to_body(&err);
    assert_string_equal(body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such thing\","
                              "\"detail\":\"d\",\"hint\":\"h\"}}");
    free(body);

    /* quotes, backslashes, newlines and non-ASCII survive a round trip */
    lh_err_set(&err, LH_EINVAL, 0, "invalid_json", "bad \"value\" \\ at\nline 2 caf\xC3\xA9");
    body = lh_err_to_body(&err);
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr);
    free(body);
    check_error_json(j, "invalid_json", "bad \"value\" \\ at\nline 2 caf\xC3\xA9", NULL, NULL);
    json_decref(j);

    body = lh_err_to_body(NULL);
    assert_string_equal(body,
                        "{\"error\":{\"code\":\"internal_error\",\"message\":\"internal error\"}}");
    free(body);
}

static void
test_invalid_utf8_is_replaced(void **state)
{
    /* a client-supplied id with a stray byte must not drop the message member */
    lh_err err;
    lh_err_set(&err, LH_ENOTFOUND, 0, "job_not_found", "no job with id '%s'",
               "a\xFF"
               "b");
    lh_err_detail(&err, "caf\xC3");
    json_t *j = lh_err_to_json(&err);
    check_error_json(j, "job_not_found",
                     "no job with id 'a\xEF\xBF\xBD"
                     "b'",
                     "caf\xEF\xBF\xBD", NULL);
    json_decref(j);

    /* truncation can cut a multi-byte character in half */
    char text[LH_ERR_TEXT_MAX + 8];
    memset(text, 'a', LH_ERR_TEXT_MAX - 2);
    strcpy(text + LH_ERR_TEXT_MAX - 2, "\xC3\xA9\xC3\xA9");
    lh_err_set(&err, LH_EINVAL, 0, "bad", "%s", text);
    assert_int_equal(strlen(err.message), LH_ERR_TEXT_MAX - 1);
    char *body = lh_err_to_body(&err);
    json_error_t jerr;
    j = json_loads(body, 0, &jerr);
    free(body);
    assert_non_null(j);
    const char *message =
        json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    assert_non_null(message);
    assert_int_equal(strlen(message), LH_ERR_TEXT_MAX - 2 + 3);
    assert_string_equal(message + LH_ERR_TEXT_MAX - 2, "\xEF\xBF\xBD");
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_fills_every_field),
        cmocka_unit_test(test_long_texts_are_truncated),
        cmocka_unit_test(test_null_err_is_accepted),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_to_json_shape),
        cmocka_unit_test(test_to_body),
        cmocka_unit_test(test_invalid_utf8_is_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
