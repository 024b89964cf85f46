/*
 * test_toml.c — the TOML subset reader (src/core/toml.c): every value type, escapes,
 * number syntaxes, arrays, headers, and each refusal with its exact "path:line:col".
 */
#include "testutil.h"

#include "core/core.h"

#include <math.h>

/* ---- helpers ------------------------------------------------------------------------- */

/* Parse text that must be valid; returns the new root (free with lh_toml_free). */
#define PARSE_OK(text) parse_ok((text), sizeof(text) - 1, __FILE__, __LINE__)

static lh_toml *
parse_ok(const char *text, size_t len, const char *file, int line)
{
    lh_toml *root = NULL;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_toml_parse(text, len, "t.toml", &root, &err);
    if (rc != 0) {
        print_error("unexpected parse error: %s\n", err.message);
        _fail(file, line);
    }
    _assert_true(cast_ptr_to_largest_integral_type(root), "root", file, line);
    _assert_int_equal(lh_toml_type_of(root), LH_TOML_TABLE, file, line);
    return root;
}

/* Parse text that must be refused with "t.toml:<where>: ..." containing what. */
#define EXPECT_ERROR(text, where, what)                                                            \
    expect_error((text), sizeof(text) - 1, (where), (what), __FILE__, __LINE__)

static void
expect_error(const char *text, size_t len, const char *where, const char *what, const char *file,
             int line)
{
    lh_toml *root = (lh_toml *)(uintptr_t)0x1; /* must stay untouched on failure */
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_toml_parse(text, len, "t.toml", &root, &err);
    if (rc != LH_EINVAL) {
        print_error("expected LH_EINVAL for input <<%.*s>>, got %d (%s)\n", (int)len, text, rc,
                    err.message);
        if (rc == 0)
            lh_toml_free(root);
        _fail(file, line);
    }
    _assert_true(root == (lh_toml *)(uintptr_t)0x1, "out untouched", file, line);
    _assert_int_equal(err.rc, LH_EINVAL, file, line);
    _assert_int_equal(err.http_status, 400, file, line);
    _assert_string_equal(err.code, "invalid_toml", file, line);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "t.toml:%s: ", where);
    lh_test_assert_prefix(err.message, prefix, file, line);
    lh_test_assert_contains(err.message, what, file, line);
}

static const lh_toml *
get_typed(const lh_toml *table, const char *key, lh_toml_type type)
{
    const lh_toml *v = lh_toml_get(table, key);
    if (v == NULL) {
        print_error("key '%s' missing\n", key);
        fail();
    }
    assert_int_equal(lh_toml_type_of(v), type);
    return v;
}

static const char *
get_str(const lh_toml *table, const char *key)
{
    return lh_toml_str(get_typed(table, key, LH_TOML_STRING));
}

static int64_t
get_int(const lh_toml *table, const char *key)
{
    return lh_toml_int(get_typed(table, key, LH_TOML_INT));
}

static double
get_float(const lh_toml *table, const char *key)
{
    return lh_toml_float(get_typed(table, key, LH_TOML_FLOAT));
}

/* ---- value types and accessors ------------------------------------------------------ */

static void
test_value_types(void **state)
{
    lh_toml *root = PARSE_OK("s = \"text\"\n"
                             "i = 42\n"
                             "f = 2.5\n"
                             "t = true\n"
                             "n = false\n"
                             "a = [1, 2]\n"
                             "[tab]\n"
                             "k = 1\n"
                             "[[arr]]\n"
                             "k = 2\n");
    assert_int_equal(lh_toml_count(root), 8);
    const char *keys[] = {"s", "i", "f", "t", "n", "a", "tab", "arr"};
    const lh_toml_type types[] = {LH_TOML_STRING, LH_TOML_INT,        LH_TOML_FLOAT,
                                  LH_TOML_BOOL,   LH_TOML_BOOL,       LH_TOML_ARRAY,
                                  LH_TOML_TABLE,  LH_TOML_TABLE_ARRAY};
    for (size_t i = 0; i < 8; i++) { /* members in file order */
        assert_string_equal(lh_toml_key_at(root, i), keys[i]);
        assert_ptr_equal(lh_toml_at(root, i), lh_toml_get(root, keys[i]));
        assert_int_equal(lh_toml_type_of(lh_toml_at(root, i)), types[i]);
    }
    assert_null(lh_toml_key_at(root, 8));
    assert_null(lh_toml_at(root, 8));
    assert_null(lh_toml_get(root, "missing"));

    assert_string_equal(get_str(root, "s"), "text");
    assert_int_equal(get_int(root, "i"), 42);
    assert_true(get_float(root, "f") == 2.5);
    assert_true(lh_toml_bool(lh_toml_get(root, "t")));
    assert_false(lh_toml_bool(lh_toml_get(root, "n")));

    /* accessors on the wrong type return neutral values; float accepts an integer */
    const lh_toml *i = lh_toml_get(root, "i"), *s = lh_toml_get(root, "s");
    assert_null(lh_toml_str(i));
    assert_int_equal(lh_toml_int(s), 0);
    assert_true(lh_toml_float(i) == 42.0);
    assert_true(lh_toml_float(s) == 0.0);
    assert_false(lh_toml_bool(i));
    assert_int_equal(lh_toml_count(i), 0);
    assert_null(lh_toml_get(i, "x")); /* not a table */
    assert_null(lh_toml_at(i, 0));
    assert_null(lh_toml_key_at(lh_toml_get(root, "a"), 0)); /* arrays have no keys */

    /* where values were defined: the key's position */
    assert_int_equal(lh_toml_line(i), 2);
    assert_int_equal(lh_toml_col(i), 1);
    const lh_toml *tab = get_typed(root, "tab", LH_TOML_TABLE);
    assert_int_equal(lh_toml_line(tab), 7);
    assert_int_equal(get_int(tab, "k"), 1);
    const lh_toml *arr = get_typed(root, "arr", LH_TOML_TABLE_ARRAY);
    assert_int_equal(lh_toml_count(arr), 1);
    assert_int_equal(get_int(lh_toml_at(arr, 0), "k"), 2);

    assert_string_equal(lh_toml_type_name(LH_TOML_STRING), "string");
    assert_string_equal(lh_toml_type_name(LH_TOML_INT), "integer");
    assert_string_equal(lh_toml_type_name(LH_TOML_FLOAT), "float");
    assert_string_equal(lh_toml_type_name(LH_TOML_BOOL), "boolean");
    assert_string_equal(lh_toml_type_name(LH_TOML_ARRAY), "array");
    assert_string_equal(lh_toml_type_name(LH_TOML_TABLE), "table");
    assert_string_equal(lh_toml_type_name(LH_TOML_TABLE_ARRAY), "array of tables");
    lh_toml_free(root);
    lh_toml_free(NULL);
}

static void
test_empty_and_comments(void **state)
{
    lh_toml *root = PARSE_OK("");
    assert_int_equal(lh_toml_count(root), 0);
    lh_toml_free(root);

    root = PARSE_OK("# only a comment\n\n   \t\n# another\n");
    assert_int_equal(lh_toml_count(root), 0);
    lh_toml_free(root);

    /* a byte order mark, CRLF line ends, comments after values and headers */
    root = PARSE_OK("\xEF\xBB\xBF"
                    "a = 1 # one\r\n"
                    "[t] # table\r\n"
                    "b = \"x#y\"\t# the '#' in the string is data\r\n");
    assert_int_equal(get_int(root, "a"), 1);
    assert_string_equal(get_str(lh_toml_get(root, "t"), "b"), "x#y");
    lh_toml_free(root);

    /* the text need not be NUL-terminated: only len bytes are read */
    const char text[] = {'a', ' ', '=', ' ', '7', '8', '9'};
    lh_toml *r = NULL;
    assert_int_equal(lh_toml_parse(text, 5, "t.toml", &r, NULL), 0);
    assert_int_equal(get_int(r, "a"), 7);
    lh_toml_free(r);
}

/* ---- strings and keys -------------------------------------------------------------- */

static void
test_string_escapes(void **state)
{
    lh_toml *root = PARSE_OK("simple = \"tab\\tnl\\ncr\\rbs\\bff\\fq\\\"bsl\\\\end\"\n"
                             "u4 = \"caf\\u00e9 \\u00E9\"\n"
                             "u8 = \"smile \\U0001F600\"\n"
                             "max = \"\\U0010FFFF\"\n"
                             "raw_utf8 = \"na\xC3\xAFve \xF0\x9F\x98\x80\"\n"
                             "tab = \"a\tb\"\n"
                             "empty = \"\"\n");
    assert_string_equal(get_str(root, "simple"), "tab\tnl\ncr\rbs\bff\fq\"bsl\\end");
    assert_string_equal(get_str(root, "u4"), "caf\xC3\xA9 \xC3\xA9");
    assert_string_equal(get_str(root, "u8"), "smile \xF0\x9F\x98\x80");
    assert_string_equal(get_str(root, "max"), "\xF4\x8F\xBF\xBF");
    assert_string_equal(get_str(root, "raw_utf8"), "na\xC3\xAFve \xF0\x9F\x98\x80");
    assert_string_equal(get_str(root, "tab"), "a\tb");
    assert_string_equal(get_str(root, "empty"), "");
    lh_toml_free(root);
}

static void
test_literal_strings_and_keys(void **state)
{
    lh_toml *root = PARSE_OK("path = 'C:\\Users\\n\\u00e9'\n"
                             "quoted = 'say \"hi\"'\n"
                             "empty = ''\n"
                             "\"my key\" = 1\n"
                             "'lit key' = 2\n"
                             "a-b_9 = 3\n"
                             "1234 = 4\n"
                             "\"\" = 5\n"
                             "\"caf\\u00e9\" = 6\n");
    assert_string_equal(get_str(root, "path"), "C:\\Users\\n\\u00e9"); /* no escapes */
    assert_string_equal(get_str(root, "quoted"), "say \"hi\"");
    assert_string_equal(get_str(root, "empty"), "");
    assert_int_equal(get_int(root, "my key"), 1);
    assert_int_equal(get_int(root, "lit key"), 2);
    assert_int_equal(get_int(root, "a-b_9"), 3);
    assert_int_equal(get_int(root, "1234"), 4);
    assert_int_equal(get_int(root, ""), 5);
    assert_int_equal(get_int(root, "caf\xC3\xA9"), 6);
    lh_toml_free(root);
}

/* ---- numbers ------------------------------------------------------------------------ */

static void
test_integers(void **state)
{
    lh_toml *root = PARSE_OK("dec = 1_000_000\n"
                             "neg = -42\n"
                             "pos = +17\n"
                             "zero = 0\n"
                             "negzero = -0\n"
                             "poszero = +0\n"
                             "hex = 0xDEAD_beef\n"
                             "hexmax = 0x7FFFFFFFFFFFFFFF\n"
                             "oct = 0o755\n"
                             "bin = 0b1010_0101\n"
                             "hexzero = 0x0\n"
                             "max = 9223372036854775807\n"
                             "min = -9223372036854775808\n");
    assert_int_equal(get_int(root, "dec"), 1000000);
    assert_true(get_int(root, "neg") == -42);
    assert_int_equal(get_int(root, "pos"), 17);
    assert_int_equal(get_int(root, "zero"), 0);
    assert_int_equal(get_int(root, "negzero"), 0);
    assert_int_equal(get_int(root, "poszero"), 0);
    assert_int_equal(get_int(root, "hex"), 0xDEADBEEF);
    assert_true(get_int(root, "hexmax") == INT64_MAX);
    assert_int_equal(get_int(root, "oct"), 0755);
    assert_int_equal(get_int(root, "bin"), 0xA5);
    assert_int_equal(get_int(root, "hexzero"), 0);
    assert_true(get_int(root, "max") == INT64_MAX);
    assert_true(get_int(root, "min") == INT64_MIN);
    lh_toml_free(root);
}

static void
test_floats(void **state)
{
    lh_toml *root = PARSE_OK("a = 1.5\n"
                             "b = -0.25\n"
                             "c = 1e3\n"
                             "d = 6.626e-34\n"
                             "e = 1E+2\n"
                             "f = 3.1_4\n"
                             "g = 1.0e-9\n"
                             "h = 2.5E-3\n"
                             "i = 0.5\n"
                             "j = 0e0\n"
                             "k = 1e05\n"
                             "pinf = inf\n"
                             "pinf2 = +inf\n"
                             "ninf = -inf\n"
                             "nan1 = nan\n"
                             "nan2 = +nan\n"
                             "nan3 = -nan\n");
    assert_true(get_float(root, "a") == 1.5);
    assert_true(get_float(root, "b") == -0.25);
    assert_true(get_float(root, "c") == 1000.0);
    assert_float_equal(get_float(root, "d"), 6.626e-34, 1e-40);
    assert_true(get_float(root, "e") == 100.0);
    assert_true(get_float(root, "f") == 3.14);
    assert_true(get_float(root, "g") == 1.0e-9);
    assert_true(get_float(root, "h") == 2.5e-3);
    assert_true(get_float(root, "i") == 0.5);
    assert_true(get_float(root, "j") == 0.0);
    assert_true(get_float(root, "k") == 1e5);
    double pinf = get_float(root, "pinf"), ninf = get_float(root, "ninf");
    assert_true(isinf(pinf) && pinf > 0);
    assert_true(isinf(get_float(root, "pinf2")) && get_float(root, "pinf2") > 0);
    assert_true(isinf(ninf) && ninf < 0);
    assert_true(isnan(get_float(root, "nan1")));
    assert_true(isnan(get_float(root, "nan2")));
    assert_true(isnan(get_float(root, "nan3")));
    lh_toml_free(root);
}

static void
test_booleans(void **state)
{
    lh_toml *root = PARSE_OK("a = true\nb = false\nc = [true,false]\n");
    assert_true(lh_toml_bool(get_typed(root, "a", LH_TOML_BOOL)));
    assert_false(lh_toml_bool(get_typed(root, "b", LH_TOML_BOOL)));
    const lh_toml *c = get_typed(root, "c", LH_TOML_ARRAY);
    assert_int_equal(lh_toml_count(c), 2);
    assert_true(lh_toml_bool(lh_toml_at(c, 0)));
    assert_false(lh_toml_bool(lh_toml_at(c, 1)));
    lh_toml_free(root);
    /* "trueish" is neither a boolean nor a number */
    EXPECT_ERROR("a = trueish\n", "1:5", "strings need quotes");
    EXPECT_ERROR("a = falsey\n", "1:5", "strings need quotes");
}

/* ---- arrays ------------------------------------------------------------------------- */

static void
test_arrays(void **state)
{
    lh_toml *root = PARSE_OK("ports = [\n"
                             "  1,   # first\n"
                             "  2,\n"
                             "  # a comment line\n"
                             "\n"
                             "  3,\n"
                             "]\n"
                             "empty = []\n"
                             "spaced = [ ]\n"
                             "nested = [[1, 2], [\"a\"], []]\n"
                             "mixed = [\"x\", 1, 2.5, true]\n"
                             "crlf = [\r\n  \"a\",\r\n  \"b\",\r\n]\r\n"
                             "after = 1\n");
    const lh_toml *ports = get_typed(root, "ports", LH_TOML_ARRAY);
    assert_int_equal(lh_toml_count(ports), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(lh_toml_type_of(lh_toml_at(ports, i)), LH_TOML_INT);
        assert_int_equal(lh_toml_int(lh_toml_at(ports, i)), (int64_t)i + 1);
    }
    assert_null(lh_toml_at(ports, 3));
    assert_int_equal(lh_toml_count(get_typed(root, "empty", LH_TOML_ARRAY)), 0);
    assert_int_equal(lh_toml_count(get_typed(root, "spaced", LH_TOML_ARRAY)), 0);

    const lh_toml *nested = get_typed(root, "nested", LH_TOML_ARRAY);
    assert_int_equal(lh_toml_count(nested), 3);
    assert_int_equal(lh_toml_count(lh_toml_at(nested, 0)), 2);
    assert_int_equal(lh_toml_int(lh_toml_at(lh_toml_at(nested, 0), 1)), 2);
    assert_string_equal(lh_toml_str(lh_toml_at(lh_toml_at(nested, 1), 0)), "a");
    assert_int_equal(lh_toml_count(lh_toml_at(nested, 2)), 0);

    const lh_toml *mixed = get_typed(root, "mixed", LH_TOML_ARRAY);
    assert_int_equal(lh_toml_count(mixed), 4);
    assert_int_equal(lh_toml_type_of(lh_toml_at(mixed, 2)), LH_TOML_FLOAT);

    const lh_toml *crlf = get_typed(root, "crlf", LH_TOML_ARRAY);
    assert_int_equal(lh_toml_count(crlf), 2);
    assert_string_equal(lh_toml_str(lh_toml_at(crlf, 1)), "b");
    /* the statement after a multi-line array keeps counting lines correctly */
    const lh_toml *after = get_typed(root, "after", LH_TOML_INT);
    assert_int_equal(lh_toml_line(after), 16);
    lh_toml_free(root);
}

static void
test_deep_arrays(void **state)
{
    char text[200];
    /* 32 levels are allowed, 33 are not */
    int n = snprintf(text, sizeof text, "a = %.*s%.*s\n", 32,
                     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 32,
                     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    lh_toml *root = NULL;
    lh_err err;
    assert_int_equal(lh_toml_parse(text, (size_t)n, "t.toml", &root, &err), 0);
    lh_toml_free(root);
    n = snprintf(text, sizeof text, "a = %.*s%.*s\n", 33,
                 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 33,
                 "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    assert_int_equal(lh_toml_parse(text, (size_t)n, "t.toml", &root, &err), LH_EINVAL);
    assert_contains(err.message, "t.toml:1:37: arrays nested too deeply");
}

/* ---- headers ------------------------------------------------------------------------ */

static void
test_tables_and_arrays_of_tables(void **state)
{
    lh_toml *root = PARSE_OK("top = \"level\"\n"
                             "\n"
                             "[server]\n"
                             "host = \"h\"\n"
                             "port = 1\n"
                             "\n"
                             "[[principal]]\n"
                             "name = \"a\"\n"
                             "[ spaced ]  # comment\n"
                             "x = 1\n"
                             "[[principal]]\n"
                             "name = \"b\"\n"
                             "roles = [\"r\"]\n"
                             "[\"quoted.name\"]\n"
                             "y = 2\n"
                             "[[ 'lit' ]]\n"
                             "[empty]\n");
    assert_int_equal(lh_toml_count(root), 7);
    assert_string_equal(get_str(root, "top"), "level");

    const lh_toml *server = get_typed(root, "server", LH_TOML_TABLE);
    assert_int_equal(lh_toml_count(server), 2);
    assert_string_equal(lh_toml_key_at(server, 0), "host");
    assert_string_equal(lh_toml_key_at(server, 1), "port");
    assert_int_equal(lh_toml_line(server), 3);
    assert_int_equal(lh_toml_col(server), 1);
    assert_int_equal(lh_toml_line(lh_toml_get(server, "port")), 5);

    /* entries of [[principal]] are separate tables in order, even with another table
     * defined between them */
    const lh_toml *pr = get_typed(root, "principal", LH_TOML_TABLE_ARRAY);
    assert_int_equal(lh_toml_count(pr), 2);
    const lh_toml *p0 = lh_toml_at(pr, 0), *p1 = lh_toml_at(pr, 1);
    assert_int_equal(lh_toml_type_of(p0), LH_TOML_TABLE);
    assert_int_equal(lh_toml_count(p0), 1);
    assert_string_equal(get_str(p0, "name"), "a");
    assert_int_equal(lh_toml_line(p0), 7);
    assert_int_equal(lh_toml_count(p1), 2);
    assert_string_equal(get_str(p1, "name"), "b");
    assert_int_equal(lh_toml_line(p1), 11);
    assert_null(lh_toml_get(pr, "name")); /* an array of tables is not a table */

    assert_int_equal(get_int(get_typed(root, "spaced", LH_TOML_TABLE), "x"), 1);
    assert_int_equal(get_int(get_typed(root, "quoted.name", LH_TOML_TABLE), "y"), 2);
    const lh_toml *lit = get_typed(root, "lit", LH_TOML_TABLE_ARRAY);
    assert_int_equal(lh_toml_count(lit), 1);
    assert_int_equal(lh_toml_count(lh_toml_at(lit, 0)), 0);
    assert_int_equal(lh_toml_count(get_typed(root, "empty", LH_TOML_TABLE)), 0);

    /* the same key in two tables, or in two entries of an array, is no duplicate */
    lh_toml_free(root);
    root = PARSE_OK("k = 0\n[a]\nk = 1\n[b]\nk = 2\n[[c]]\nk = 3\n[[c]]\nk = 4\n");
    assert_int_equal(get_int(root, "k"), 0);
    assert_int_equal(get_int(lh_toml_get(root, "a"), "k"), 1);
    assert_int_equal(get_int(lh_toml_get(root, "b"), "k"), 2);
    assert_int_equal(get_int(lh_toml_at(lh_toml_get(root, "c"), 1), "k"), 4);
    lh_toml_free(root);
}

/* ---- refusals, each at an exact line:col ------------------------------------------------ */

static void
test_error_strings(void **state)
{
    EXPECT_ERROR("a = 1\nb = \"abc\n", "2:5", "unterminated string");
    EXPECT_ERROR("b = \"abc", "1:5", "unterminated string");
    EXPECT_ERROR("b = 'abc\nc = 1\n", "1:5", "unterminated string");
    EXPECT_ERROR("b = \"a\\\"\n", "1:5", "unterminated string"); /* \" is not the end */
    EXPECT_ERROR("s = \"\"\"multi\"\"\"\n", "1:5", "multi-line strings are not supported");
    EXPECT_ERROR("s = '''multi'''\n", "1:5", "multi-line strings are not supported");
    /* escapes: the position of the offending character */
    EXPECT_ERROR("s = \"a\\qb\"\n", "1:8", "unknown escape sequence");
    EXPECT_ERROR("\n\n  s = \"\\x41\"\n", "3:9", "unknown escape sequence");
    EXPECT_ERROR("s = \"\\u12\"\n", "1:10", "\\u escape needs 4 hex digits");
    EXPECT_ERROR("s = \"\\U0001F60\"\n", "1:15", "\\U escape needs 8 hex digits");
    EXPECT_ERROR("s = \"\\uD800\"\n", "1:12", "not a valid Unicode scalar value");
    EXPECT_ERROR("s = \"\\U00110000\"\n", "1:16", "not a valid Unicode scalar value");
    EXPECT_ERROR("s = \"\\u0000\"\n", "1:12", "not a valid Unicode scalar value");
    EXPECT_ERROR("s = \"a\x01z\"\n", "1:7", "control character in string");
    EXPECT_ERROR("s = 'a\x7fz'\n", "1:7", "control character in string");
}

static void
test_error_keys_and_structure(void **state)
{
    EXPECT_ERROR("[s]\nkey value\n", "2:5", "expected '=' after key 'key'");
    EXPECT_ERROR("key\n", "1:4", "expected '=' after key 'key'");
    EXPECT_ERROR("= 1\n", "1:1", "unexpected '='; expected a key");
    EXPECT_ERROR("a = \n", "1:5", "expected a value after '='");
    EXPECT_ERROR("a = # nothing\n", "1:5", "expected a value after '='");
    EXPECT_ERROR("a = 1\n  a = 2\n", "2:3", "duplicate key 'a' (first set at line 1)");
    EXPECT_ERROR("[t]\nx = 1\n\n[u]\nx = 1\ny = 2\ny = 3\n", "7:1",
                 "duplicate key 'y' (first set at line 6)");
    EXPECT_ERROR("\"a\" = 1\na = 2\n", "2:1", "duplicate key 'a'");
    EXPECT_ERROR("[t]\nx = 1\n\n[t]\n", "4:1", "'t' is already defined at line 1");
    EXPECT_ERROR("t = 1\n[t]\n", "2:1", "'t' is already defined at line 1");
    EXPECT_ERROR("[t]\n[[t]]\n", "2:1", "'t' is already defined as a table at line 1");
    EXPECT_ERROR("[[t]]\n[t]\n", "2:1", "'t' is already defined at line 1");
    EXPECT_ERROR("a.b = 1\n", "1:2", "dotted keys are not supported");
    EXPECT_ERROR("x = 1\n\"a\" . b = 1\n", "2:5", "dotted keys are not supported");
    EXPECT_ERROR("[a.b]\n", "1:3", "dotted keys are not supported");
    EXPECT_ERROR("t = { x = 1 }\n", "1:5", "inline tables are not supported");
    EXPECT_ERROR("[t\nx = 1\n", "1:3", "expected ']' to close the header");
    EXPECT_ERROR("[[t]\n", "1:4", "expected ']]' to close the header");
    EXPECT_ERROR("[]\n", "1:2", "unexpected ']'; expected a key");
    EXPECT_ERROR("[t] x = 1\n", "1:5", "unexpected 'x' after value; expected a newline");
    EXPECT_ERROR("a = [1, 2\n", "2:1", "unterminated array");
    EXPECT_ERROR("a = [1 2]\n", "1:8", "expected ',' or ']' in array");
    EXPECT_ERROR("a = [1,,2]\n", "1:8", "unexpected ','; strings need quotes");
}

static void
test_error_values(void **state)
{
    /* dates and times */
    EXPECT_ERROR("d = 1979-05-27\n", "1:5", "dates and times are not supported");
    EXPECT_ERROR("[x]\nd = 1979-05-27T07:32:00Z\n", "2:5", "dates and times are not supported");
    EXPECT_ERROR("t = 07:32:00\n", "1:5", "dates and times are not supported");
    /* leading zeros, integers and floats */
    EXPECT_ERROR("n = 007\n", "1:5", "leading zeros are not allowed in '007'");
    EXPECT_ERROR("n = -01\n", "1:5", "leading zeros are not allowed");
    EXPECT_ERROR("n = 01.5\n", "1:5", "leading zeros are not allowed");
    /* 64-bit overflow, both ways and in hex */
    EXPECT_ERROR("a = 1\nn = 9223372036854775808\n", "2:5", "does not fit in 64 bits");
    EXPECT_ERROR("n = -9223372036854775809\n", "1:5", "does not fit in 64 bits");
    EXPECT_ERROR("n = 0x8000000000000000\n", "1:5", "does not fit in 64 bits");
    EXPECT_ERROR("n = 1e999\n", "1:5", "out of range");
    /* malformed numbers */
    EXPECT_ERROR("n = 1__000\n", "1:5", "'_' must sit between two digits");
    EXPECT_ERROR("n = 1000_\n", "1:5", "'_' must sit between two digits");
    EXPECT_ERROR("n = 1_e5\n", "1:5", "'_' must sit between two digits");
    EXPECT_ERROR("n = 0x_1\n", "1:5", "'_' must sit between two digits");
    EXPECT_ERROR("n = -0x10\n", "1:5", "a sign is not allowed on hex");
    EXPECT_ERROR("n = 0x-1\n", "1:5", "is not a valid value");
    EXPECT_ERROR("n = 0x0x10\n", "1:5", "is not a valid value");
    EXPECT_ERROR("n = 0o8\n", "1:5", "is not a valid value");
    EXPECT_ERROR("n = 0b102\n", "1:5", "is not a valid value");
    EXPECT_ERROR("n = 0x\n", "1:5", "expected a value");
    EXPECT_ERROR("n = 1.\n", "1:5", "a '.' in a float needs digits on both sides");
    EXPECT_ERROR("n = 1.e5\n", "1:5", "a '.' in a float needs digits on both sides");
    EXPECT_ERROR("n = 1.5.6\n", "1:5", "is not a valid number");
    EXPECT_ERROR("n = 1e\n", "1:5", "is not a valid number");
    EXPECT_ERROR("n = 12abc\n", "1:5", "is not a valid value (strings need quotes)");
    EXPECT_ERROR("n = infinity\n", "1:5", "is not a valid value (strings need quotes)");
    /* unquoted strings */
    EXPECT_ERROR("[server]\nhost = localhost\n", "2:8", "unexpected 'l'; strings need quotes");
    EXPECT_ERROR("x = nah\n", "1:5", "'nah' is not a valid value (strings need quotes)");
    EXPECT_ERROR("x = nope\n", "1:5", "'nope' is not a valid number");
    EXPECT_ERROR("x = _1\n", "1:5", "unexpected '_'; strings need quotes");
    EXPECT_ERROR("x = .5\n", "1:5", "unexpected '.'; strings need quotes");
    /* garbage after a value */
    EXPECT_ERROR("port = 3100 3200\n", "1:13", "unexpected '3' after value; expected a newline");
    EXPECT_ERROR("s = \"a\" b\n", "1:9", "unexpected 'b' after value");
    EXPECT_ERROR("a = [1] ]\n", "1:9", "unexpected ']' after value");
    EXPECT_ERROR("a = true false\n", "1:10", "unexpected 'f' after value");
}

static void
test_error_encoding(void **state)
{
    /* invalid UTF-8 anywhere: the column of the bad byte, counted in characters */
    EXPECT_ERROR("a = 1\nb = \"x\xff\"\n", "2:7", "file is not valid UTF-8");
    EXPECT_ERROR("# caf\xC3\xA9 \xC3\n", "1:8", "file is not valid UTF-8");
    EXPECT_ERROR("s = \"\xC0\x80\"\n", "1:6", "file is not valid UTF-8");         /* overlong */
    EXPECT_ERROR("s = \"\xE0\x80\xAF\"\n", "1:6", "file is not valid UTF-8");     /* overlong */
    EXPECT_ERROR("s = \"\xED\xA0\x80\"\n", "1:6", "file is not valid UTF-8");     /* surrogate */
    EXPECT_ERROR("s = \"\xF4\x90\x80\x80\"\n", "1:6", "file is not valid UTF-8"); /* > U+10FFFF */
    EXPECT_ERROR("s = \"\xE2\x82", "1:6", "file is not valid UTF-8");             /* truncated */
    EXPECT_ERROR("s = \"\x80\"\n", "1:6", "file is not valid UTF-8"); /* lone continuation */
    EXPECT_ERROR("a = 1\0\n", "1:6", "NUL byte in file");
    /* columns after non-ASCII characters count characters, like the UTF-8 check does */
    EXPECT_ERROR("s = \"\xC3\xA9\" x\n", "1:9", "unexpected 'x' after value");
    EXPECT_ERROR("s = \"\xF0\x9F\x98\x80\\q\"\n", "1:8", "unknown escape sequence");
}

static void
test_error_details(void **state)
{
    /* NULL path names "<config>"; NULL err is accepted; out is not written */
    lh_toml *root = NULL;
    lh_err err;
    const char bad[] = "x = y\n";
    assert_int_equal(lh_toml_parse(bad, sizeof bad - 1, NULL, &root, &err), LH_EINVAL);
    assert_string_equal(err.message, "<config>:1:5: unexpected 'y'; strings need quotes");
    assert_null(root);
    assert_int_equal(lh_toml_parse(bad, sizeof bad - 1, "t.toml", &root, NULL), LH_EINVAL);
    assert_null(root);
    /* the full message for one case, to pin the format */
    assert_int_equal(lh_toml_parse("a = 1\na = 2\n", 12, "/etc/x.toml", &root, &err), LH_EINVAL);
    assert_string_equal(err.message, "/etc/x.toml:2:1: duplicate key 'a' (first set at line 1)");
    assert_string_equal(err.detail, "");
    assert_string_equal(err.hint, "");
}

static void
test_parse_file(void **state)
{
    char *path = lh_test_write_file("toml_", "[t]\nk = \"v\"\n", 0600);
    lh_toml *root = NULL;
    lh_err err;
    assert_int_equal(lh_toml_parse_file(path, &root, &err), 0);
    assert_string_equal(get_str(lh_toml_get(root, "t"), "k"), "v");
    lh_toml_free(root);
    root = NULL;
    unlink(path);
    free(path);

    /* errors name the file */
    path = lh_test_write_file("toml_", "[t]\nk = v\n", 0600);
    assert_int_equal(lh_toml_parse_file(path, &root, &err), LH_EINVAL);
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s:2:5: ", path);
    assert_prefix(err.message, prefix);
    assert_null(root);

    /* a missing file is LH_ENOTFOUND, with or without err */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(lh_toml_parse_file(path, &root, &err), LH_ENOTFOUND);
    assert_int_equal(err.rc, LH_ENOTFOUND);
    assert_prefix(err.message, path);
    assert_contains(err.message, "cannot open");
    assert_int_equal(lh_toml_parse_file(path, &root, NULL), LH_ENOTFOUND);
    free(path);

    /* a directory is not a configuration file */
    char *dir = lh_test_mkdtemp("tomldir_");
    assert_int_equal(lh_toml_parse_file(dir, &root, &err), LH_EINVAL);
    assert_contains(err.message, "not a regular file");
    assert_null(root);
    lh_test_rm_rf(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_types),    cmocka_unit_test(test_empty_and_comments),
        cmocka_unit_test(test_string_escapes), cmocka_unit_test(test_literal_strings_and_keys),
        cmocka_unit_test(test_integers),       cmocka_unit_test(test_floats),
        cmocka_unit_test(test_booleans),       cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_deep_arrays),    cmocka_unit_test(test_tables_and_arrays_of_tables),
        cmocka_unit_test(test_error_strings),  cmocka_unit_test(test_error_keys_and_structure),
        cmocka_unit_test(test_error_values),   cmocka_unit_test(test_error_encoding),
        cmocka_unit_test(test_error_details),  cmocka_unit_test(test_parse_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
