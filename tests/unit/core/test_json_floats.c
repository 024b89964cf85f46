/*
 * test_json_floats.c — a JSON object's array of numbers read straight into floats: found
 * wherever it sits among other members, numbers checked against JSON's grammar, and
 * everything unusual handed back (0) for jansson to parse and judge.
 */
#include "testutil.h"

#include "core/core_int.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
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

/* Every number gives exactly strtod's double: the fast path's roundings are checked on
 * numbers written as clients write them (17, 16, 9 and 6 significant digits, exponents
 * near the exact powers' limits) and on decimals halfway between two doubles. */
static void
check_as_strtod(const char *text)
{
    double want = strtod(text, NULL), got = 0;
    assert_true(lh_core__json_number(text, strlen(text), &got));
    if (memcmp(&want, &got, sizeof want) != 0)
        fail_msg("%s: %.17g, strtod %.17g", text, got, want);
}

static void
test_exact_as_strtod(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "0",
        "-0",
        "0.0",
        "1",
        "-1",
        "0.1",
        "0.2",
        "0.3",
        "1e22",
        "1e23",
        "1e-22",
        "1e-23",
        "9007199254740992",
        "9007199254740993",
        "9007199254740995",
        "-9007199254740993",
        "18014398509481985",
        "123456789012345678",
        "1234567890123456789e-10",
        "0.000000000000000000001",
        "7.0e-27",
        "7.0e27",
        "1.7976931348623157e300",
        "2.2250738585072014e-308",
        "4.9e-324",
        "1e-400",
        "0.30000000000000004",
        "9007199254740993e-5",
        "9007199254740993e5",
        "8.98846567431158e307",
        "5e-1",
        /* a decimal exactly halfway between two doubles (2^53 + 1, scaled) */
        "4503599627370496.5",
        "4503599627370497.5",
        "9007199254740993.0",
        "90071992547409930e-1",
        "0.9007199254740993e16",
        /* 19 digits that round, in 64 bits, to exactly halfway between two doubles while
         * lying to one side of it (found with exact fractions) */
        "6606115254007317617e-15",
        "7983627106921453165e-19",
        "6840770978232317990e-21",
        "8816009120785857522e-14",
        "9247108346276968223e-14",
        "2140293092952427400e-26",
        "9751035607178827101e-26",
        "9641143901957496994e-21",
        "8851669888931215979e-17",
        "3822862309614582718e-20",
        "2635018016910433726e-20",
        "9699078810854760377e-14",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_as_strtod(cases[i]);
    uint64_t x = 0x9e3779b97f4a7c15u;
    char text[64];
    static const char *const formats[] = {"%.17g", "%.16g", "%.15g", "%.9g",
                                          "%.6g",  "%.3e",  "%.18e"};
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        if (i % 2) { /* any finite double */
            uint64_t bits = x & ~(UINT64_C(0x7ff) << 52);
            bits |= (uint64_t)(x % 2046 + 1) << 52;
            memcpy(&d, &bits, sizeof d);
        } else { /* the scale of embeddings: around 1, some tiny and some large */
            d = ((double)(x >> 11) / 9007199254740992.0 - 0.5) * pow(10.0, (int)(x % 60) - 30);
        }
        snprintf(text, sizeof text, formats[i % 7], d);
        check_as_strtod(text);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found),
        cmocka_unit_test(test_left_to_jansson),
        cmocka_unit_test(test_exact_as_strtod),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
