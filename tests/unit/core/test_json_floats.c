/*
 * test_json_floats.c — a JSON object's array of numbers read straight into floats: found
 * wherever it sits among other members, numbers checked against JSON's grammar, and
 * everything unusual handed back (0) for jansson to parse and judge.
 */
#include "testutil.h"

#include "core/core.h"

#include <string.h>

static int
take(const char *text, float **v, size_t *n, lh_buf *rest)
{
    lh_buf_init(rest);
    *v = NULL;
    *n = 0;
    return lh_json_take_floats(text, strlen(text), "vector", v, n, rest);
}

static void
test_found(void **state)
{
    (void)state;
    static const struct {
        const char *text, *rest;
        size_t n;
        float last;
    } cases[] = {
        {"{\"vector\":[1,2.5,-3e2],\"k\":3}", "{\"vector\":[],\"k\":3}", 3, -300.0f},
        {" {\n \"query\" : null , \"vector\" : [ 0 , -0.25E+1 ] } ",
         " {\n \"query\" : null , \"vector\" : [] } ", 2, -2.5f},
        /* members before it with strings, escapes, brackets and nesting */
        {"{\"a\":\"x]\\\"[,\",\"b\":{\"c\":[1,[2,{}]],\"d\":true},\"e\":false,\"vector\":[7]}",
         "{\"a\":\"x]\\\"[,\",\"b\":{\"c\":[1,[2,{}]],\"d\":true},\"e\":false,\"vector\":[]}", 1,
         7.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float *v;
        size_t n;
        lh_buf rest;
        assert_int_equal(take(cases[i].text, &v, &n, &rest), 1);
        assert_int_equal(n, cases[i].n);
        assert_true(v[n - 1] == cases[i].last);
        assert_string_equal(rest.data, cases[i].rest);
        free(v);
        lh_buf_free(&rest);
    }
    /* long vectors grow the buffer */
    lh_buf text;
    lh_buf_init(&text);
    lh_buf_puts(&text, "{\"vector\":[");
    for (int i = 0; i < 1000; i++)
        lh_buf_printf(&text, "%s%d.5", i ? "," : "", i);
    lh_buf_puts(&text, "]}");
    float *v;
    size_t n;
    lh_buf rest;
    assert_int_equal(take(text.data, &v, &n, &rest), 1);
    assert_int_equal(n, 1000);
    /* 18 digits and tiny reals are still numbers */
    float *w;
    size_t nw;
    lh_buf rest2;
    assert_int_equal(take("{\"vector\":[-999999999999999999,1e-400]}", &w, &nw, &rest2), 1);
    assert_int_equal(nw, 2);
    assert_true(w[1] == 0.0f);
    free(w);
    lh_buf_free(&rest2);
    assert_true(v[999] == 999.5f);
    free(v);
    lh_buf_free(&rest);
    lh_buf_free(&text);
}

/* Anything but a plain non-empty array of JSON numbers is left to jansson. */
static void
test_left_to_jansson(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"k\":3}",
        "{\"vector\":[]}",
        "{\"vector\":\"1,2\"}",
        "{\"vector\":[1,\"2\"]}",
        "{\"vector\":[1,[2]]}",
        "{\"vector\":[1,2,]}",
        "{\"vector\":[01]}",
        "{\"vector\":[+1]}",
        "{\"vector\":[.5]}",
        "{\"vector\":[1.]}",
        "{\"vector\":[1e]}",
        "{\"vector\":[NaN]}",
        "{\"vector\":[Infinity]}",
        "{\"vector\":[1 2]}",
        "{\"vector\":[1",
        "{\"vect\\u006fr\":[1]}",
        "{\"a\":tru,\"vector\":[1]}",
        "{\"a\":1}{\"vector\":[1]}",
        "[{\"vector\":[1]}]",
        "{\"a\":[1,2}],\"vector\":[1]}",
        "{\"vector\":[1.0000000000000000000000000000000000000000000000000000000000000001]}",
        /* jansson's own refusals: past int64, past double */
        "{\"vector\":[99999999999999999999]}",
        "{\"vector\":[-9223372036854775809]}",
        "{\"vector\":[1e400]}",
        "{\"vector\":[-1e400]}",
        "",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        float *v;
        size_t n;
        lh_buf rest;
        if (take(texts[i], &v, &n, &rest) != 0)
            fail_msg("taken: %s", texts[i]);
        assert_null(v);
        lh_buf_free(&rest);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found),
        cmocka_unit_test(test_left_to_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
