/*
 * test_json_dump.c — lh_json_dump writes exactly what json_dumps(JSON_COMPACT |
 * JSON_PRESERVE_ORDER) writes: on chosen values (escapes, extreme integers, reals whose
 * text needs ".0" or a shortened exponent) and on 3,000 random nested documents.
 */
#include "testutil.h"

#include "core/core.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static void
assert_same(const json_t *j)
{
    char *want = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(want);
    lh_buf got;
    lh_buf_init(&got);
    lh_buf_puts(&got, "prefix:"); /* appends to what is there */
    lh_json_dump(&got, j);
    if (strcmp(got.data + 7, want) != 0 || strncmp(got.data, "prefix:", 7) != 0)
        fail_msg("lh_json_dump: %s\njson_dumps:   %s", got.data, want);
    lh_buf_free(&got);
    free(want);
}

static void
test_chosen(void **state)
{
    (void)state;
    static const double reals[] = {0.0,
                                   -0.0,
                                   1.0,
                                   -2.0,
                                   0.1,
                                   1e20,
                                   1e21,
                                   1e-5,
                                   1.5e-7,
                                   1e300,
                                   -1e-300,
                                   4.9e-324,
                                   1.7976931348623157e308,
                                   123456789.0,
                                   0.084878146648406982,
                                   1e16,
                                   1e17,
                                   12345678901234567.0};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        json_t *j = json_pack("[f]", reals[i]);
        assert_same(j);
        json_decref(j);
    }
    static const json_int_t ints[] = {0, 1, -1, 9, 10, -10, INT64_MAX, INT64_MIN, 1234567890123};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        json_t *j = json_pack("{s:I}", "n", ints[i]);
        assert_same(j);
        json_decref(j);
    }
    json_t *j = json_pack("{s:s, s:s, s:[], s:{}, s:b, s:b, s:n, s:s}", "quote\"key", "a\"b\\c/d",
                          "ctl", "\x01\x08\x09\x0a\x0c\x0d\x1f\x7f end", "empty", "obj", "t", 1,
                          "f", 0, "nothing", "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    json_object_set_new(j, "nul", json_stringn("a\0b", 3));
    json_object_set_new(j, "", json_string(""));
    json_object_setn_new(j, "k\0ey", 4, json_true()); /* a key holding NUL */
    assert_same(j);
    json_decref(j);
    json_t *empty = json_object();
    assert_same(empty);
    json_decref(empty);
}

static uint64_t rng = 0x2545f4914f6cdd1du;

static uint64_t
next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static json_t *
random_string(void)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         " ",
                                         "\"",
                                         "\\",
                                         "/",
                                         "\n",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "resume",
                                         "}",
                                         "[",
                                         ":"};
    char text[128];
    size_t n = 0, pieces_n = next() % 12;
    for (size_t i = 0; i < pieces_n; i++) {
        const char *p = pieces[next() % (sizeof pieces / sizeof *pieces)];
        memcpy(text + n, p, strlen(p));
        n += strlen(p);
    }
    return json_stringn(text, n);
}

static json_t *
random_value(int depth)
{
    switch (next() % (depth > 3 ? 6 : 8)) {
    case 0:
        return random_string();
    case 1:
        return json_integer((json_int_t)next() >> (next() % 64));
    case 2: {
        double d;
        uint64_t bits = next();
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d))
            d = (double)(bits >> 12) / 1024.0;
        return json_real(d);
    }
    case 3:
        return json_real((double)(float)((double)(int64_t)next() / 1e19));
    case 4:
        return next() % 2 ? json_true() : json_false();
    case 5:
        return json_null();
    case 6: {
        json_t *a = json_array();
        for (size_t i = next() % 5; i > 0; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (size_t i = next() % 5; i > 0; i--) {
            json_t *k = random_string();
            json_object_set_new(o, json_string_value(k), random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

static void
test_random(void **state)
{
    (void)state;
    for (int i = 0; i < 3000; i++) {
        json_t *doc = json_array();
        json_array_append_new(doc, random_value(0));
        assert_same(doc);
        json_decref(doc);
    }
}

/* Reals where the digits are worked out by hand (1e-6 to 2^53) and around its edges:
 * powers of ten and their neighbours, where the first guess of the exponent is off and
 * where rounding carries into a new digit, then many random ones. */
static void
assert_real(double v)
{
    json_t *j = json_pack("[f]", v);
    assert_same(j);
    json_decref(j);
}

static void
test_reals(void **state)
{
    (void)state;
    for (int p = -8; p <= 17; p++) {
        double ten = pow(10.0, p);
        double around[] = {ten,
                           nextafter(ten, 0),
                           nextafter(ten, INFINITY),
                           nextafter(nextafter(ten, 0), 0),
                           ten * 0.99999999999999999,
                           ten * 9.9999999999999995,
                           ten * 0.5,
                           ten * 0.75,
                           ten + 0.5};
        for (size_t i = 0; i < sizeof around / sizeof *around; i++) {
            assert_real(around[i]);
            assert_real(-around[i]);
        }
    }
    static const double edges[] = {1e-6,
                                   9.9999999999999995e-7,
                                   9007199254740992.0,
                                   9007199254740991.0,
                                   9007199254740994.0,
                                   0.5,
                                   0.25,
                                   1.5,
                                   99999999999999999.0,
                                   9999999999999998.0,
                                   0.1,
                                   0.2,
                                   0.3};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
        assert_real(edges[i]);
    for (int i = 0; i < 300000; i++) {
        uint64_t x = next();
        double unit = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
        double v;
        switch (i % 4) {
        case 0: /* a float's value, as scores and distances are */
            v = (double)(float)(unit * pow(10.0, (int)(x % 12) - 6));
            break;
        case 1: /* any double over the range */
            v = unit * pow(10.0, (int)(x % 26) - 8);
            break;
        case 2: /* an integer or a short decimal */
            v = (double)(x % 100000000) / pow(10.0, (int)(x % 9));
            break;
        default: { /* any bits at all */
            memcpy(&v, &x, sizeof v);
            if (!isfinite(v))
                v = unit;
        }
        }
        assert_real(i % 8 < 4 ? v : -v);
    }
}

/* The layout shared with the query results' doubles (DuckDB's text: plain from 1e-6 to
 * below 1e21) as well as jansson's (1e-4 to below 1e17). */
static void
test_decimal_layout(void **state)
{
    (void)state;
    static const struct {
        const char *digits;
        int exp10, from, to;
        bool negative;
        const char *want;
    } cases[] = {
        {"1", 21, -6, 21, false, "1e21"},
        {"1", 20, -6, 21, false, "100000000000000000000.0"},
        {"15", -7, -6, 21, false, "1.5e-7"},
        {"1", -6, -6, 21, true, "-0.000001"},
        {"123", 2, -6, 21, false, "123.0"},
        {"1234567125", 6, -6, 21, false, "1234567.125"},
        {"25", 300, -6, 21, true, "-2.5e300"},
        {"1", -5, -4, 17, false, "1e-5"},
        {"1", 16, -4, 17, false, "10000000000000000.0"},
        {"1", 17, -4, 17, false, "1e17"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[64];
        size_t n = lh_json_decimal(out, cases[i].negative, cases[i].digits, strlen(cases[i].digits),
                                   cases[i].exp10, cases[i].from, cases[i].to);
        assert_string_equal(out, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chosen),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_reals),
        cmocka_unit_test(test_decimal_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
