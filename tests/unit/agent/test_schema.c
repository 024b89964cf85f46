/*
 * test_schema.c — the tool-argument validator (src/agent/schema*.c) beyond what the
 * official suite checks (test_schema_suite.c): the error shape and messages callers show,
 * lh_schema_check, redaction, compile errors, draft 2020-12 rules the packaged draft-7
 * suite does not cover (1.0 is an integer, leap seconds, uuid, prefixItems), pattern
 * translation, and hostile input (deep nesting, huge strings, patterns that would make a
 * backtracking matcher explode).
 */
#include "testutil.h"

#include "agent/schema.h"

#include <pthread.h>
#include <time.h>

static json_t *
parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        print_message("bad JSON in test: %s: %s\n", text, jerr.text);
    assert_non_null(j);
    return j;
}

static lh_schema *
compile_text(const char *text)
{
    json_t *j = parse(text);
    lh_schema *s = NULL;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_schema_compile(j, &s, &err);
    if (rc != 0)
        print_message("compile %s: %s\n", text, err.message);
    assert_int_equal(rc, 0);
    json_decref(j);
    return s;
}

static bool
valid_text(const lh_schema *s, const char *instance)
{
    json_t *j = parse(instance);
    bool ok = lh_schema_validate(s, j, "", NULL);
    json_decref(j);
    return ok;
}

/* Compiling must fail with invalid_schema and exactly this message. */
static void
compile_fails(const char *schema, const char *message)
{
    json_t *j = parse(schema);
    lh_schema *s = NULL;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_schema_compile(j, &s, &err);
    if (rc == 0 || strcmp(err.message, message) != 0)
        print_message("schema %s\n  want: %s\n  got:  %s\n", schema, message,
                      rc ? err.message : "(compiled)");
    assert_int_equal(rc, LH_EINVAL);
    assert_null(s);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.code, "invalid_schema");
    assert_string_equal(err.message, message);
    assert_true(strlen(err.hint) > 0);
    json_decref(j);
}

/* Compiling must fail with invalid_schema and a message containing part. */
static void
compile_fails_with(const char *schema, const char *part)
{
    json_t *j = parse(schema);
    lh_schema *s = NULL;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_schema_compile(j, &s, &err);
    if (rc == 0 || strstr(err.message, part) == NULL)
        print_message("schema %s\n  want: ...%s...\n  got:  %s\n", schema, part,
                      rc ? err.message : "(compiled)");
    assert_int_equal(rc, LH_EINVAL);
    assert_string_equal(err.code, "invalid_schema");
    assert_non_null(strstr(err.message, part));
    json_decref(j);
}

static const char tool_schema[] =
    "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\","
    " \"type\": \"object\", \"title\": \"search\","
    " \"properties\": {"
    "   \"city\": {\"type\": \"string\", \"enum\": [\"Paris\", \"Lyon\"]},"
    "   \"min_years\": {\"type\": \"integer\", \"minimum\": 0, \"description\": \"years\"},"
    "   \"skills\": {\"type\": \"array\", \"items\": {\"type\": \"string\", \"minLength\": 2},"
    "               \"maxItems\": 3, \"uniqueItems\": true},"
    "   \"email\": {\"type\": [\"string\", \"null\"], \"format\": \"email\"}},"
    " \"required\": [\"city\"], \"additionalProperties\": false}";

/* ---------------------------------------------------------------------------------
 * Error shape and messages
 * ------------------------------------------------------------------------------- */

static void
expect_error(const json_t *errors, size_t index, const char *pointer, const char *keyword,
             const char *message)
{
    const json_t *e = json_array_get(errors, index);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "pointer")), pointer);
    assert_string_equal(json_string_value(json_object_get(e, "keyword")), keyword);
    assert_string_equal(json_string_value(json_object_get(e, "message")), message);
}

static void
test_error_messages_and_pointers(void **state)
{
    lh_schema *s = compile_text(tool_schema);
    json_t *errors = json_array();
    json_t *args = parse("{\"min_years\": -1, \"x\": 1, \"skills\": [\"c\", \"go\", \"go\"]}");
    assert_false(lh_schema_validate(s, args, "/arguments", errors));
    /* document order: the object's own rule first, then its members in their order */
    assert_int_equal(json_array_size(errors), 5);
    expect_error(errors, 0, "/arguments", "required",
                 "/arguments: missing required property 'city'");
    expect_error(errors, 1, "/arguments/min_years", "minimum",
                 "/arguments/min_years: must be >= 0");
    expect_error(errors, 2, "/arguments/x", "additionalProperties", "/arguments/x: is not allowed");
    expect_error(errors, 3, "/arguments/skills", "uniqueItems",
                 "/arguments/skills: must not contain duplicates (items 1 and 2 are equal)");
    expect_error(errors, 4, "/arguments/skills/0", "minLength",
                 "/arguments/skills/0: must be at least 2 characters long");
    json_decref(args);
    json_decref(errors);

    errors = json_array();
    args = parse("{\"city\": \"Nice\", \"min_years\": 2.5, \"email\": \"nobody\"}");
    assert_false(lh_schema_validate(s, args, "/arguments", errors));
    assert_int_equal(json_array_size(errors), 3);
    expect_error(errors, 0, "/arguments/city", "enum",
                 "/arguments/city: must be one of \"Paris\", \"Lyon\"");
    expect_error(errors, 1, "/arguments/min_years", "type",
                 "/arguments/min_years: must be an integer");
    expect_error(errors, 2, "/arguments/email", "format",
                 "/arguments/email: must be an email address (e.g. name@example.com)");
    json_decref(args);
    json_decref(errors);

    /* an empty base: pointers are plain JSON pointers; the root is "" */
    errors = json_array();
    args = parse("[1]");
    assert_false(lh_schema_validate(s, args, "", errors));
    expect_error(errors, 0, "", "type", "(root): must be an object");
    json_decref(args);
    json_decref(errors);

    /* keys with '/' and '~' are escaped (RFC 6901) */
    errors = json_array();
    args = parse("{\"city\": \"Paris\", \"a/b~c\": 1}");
    assert_false(lh_schema_validate(s, args, "", errors));
    expect_error(errors, 0, "/a~1b~0c", "additionalProperties", "/a~1b~0c: is not allowed");
    json_decref(args);
    json_decref(errors);

    args = parse("{\"city\": \"Lyon\", \"min_years\": 3.0, \"skills\": [\"c++\", \"go\"],"
                 " \"email\": null}");
    errors = json_array();
    assert_true(lh_schema_validate(s, args, "/arguments", errors));
    assert_int_equal(json_array_size(errors), 0);
    json_decref(args);
    json_decref(errors);
    lh_schema_free(s);
}

static void
test_messages_per_keyword(void **state)
{
    static const struct {
        const char *schema, *instance, *keyword, *message;
    } cases[] = {
        {"{\"type\": [\"string\", \"null\"]}", "1", "type", "(root): must be a string or null"},
        {"{\"type\": [\"integer\", \"string\", \"null\"]}", "true", "type",
         "(root): must be a string, an integer or null"},
        {"{\"maximum\": 10}", "11", "maximum", "(root): must be <= 10"},
        {"{\"exclusiveMinimum\": 0.5}", "0.5", "exclusiveMinimum", "(root): must be > 0.5"},
        {"{\"exclusiveMaximum\": 3}", "3", "exclusiveMaximum", "(root): must be < 3"},
        {"{\"multipleOf\": 0.01}", "19.995", "multipleOf", "(root): must be a multiple of 0.01"},
        {"{\"maxLength\": 1}", "\"ab\"", "maxLength", "(root): must be at most 1 character long"},
        {"{\"pattern\": \"^\\\\d+$\"}", "\"12a\"", "pattern",
         "(root): must match the pattern '^\\d+$'"},
        {"{\"const\": {\"a\": [1, 2]}}", "{\"a\": [2, 1]}", "const",
         "(root): must be equal to {\"a\":[1,2]}"},
        {"{\"minItems\": 2}", "[1]", "minItems", "(root): must have at least 2 items"},
        {"{\"maxProperties\": 1}", "{\"a\": 1, \"b\": 2}", "maxProperties",
         "(root): must have at most 1 property"},
        {"{\"format\": \"date\"}", "\"2021-02-29\"", "format",
         "(root): must be a date (RFC 3339 full-date, e.g. 2024-01-31)"},
        {"{\"properties\": {\"a\": false}}", "{\"a\": 1}", "properties", "/a: is not allowed"},
        {"{\"prefixItems\": [true], \"items\": false}", "[1, 2]", "items", "/1: is not allowed"},
        {"false", "null", "false", "(root): is not allowed"},
        {"{\"enum\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}", "0", "enum",
         "(root): must be one of 1, 2, 3, 4, 5, 6, 7, 8, ... (10 values in all)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lh_schema *s = compile_text(cases[k].schema);
        json_t *instance = parse(cases[k].instance);
        json_t *errors = json_array();
        assert_false(lh_schema_validate(s, instance, "", errors));
        const json_t *e = json_array_get(errors, 0);
        const char *message = json_string_value(json_object_get(e, "message"));
        if (strcmp(message, cases[k].message) != 0)
            print_message("case %zu: want %s got %s\n", k, cases[k].message, message);
        assert_string_equal(message, cases[k].message);
        assert_string_equal(json_string_value(json_object_get(e, "keyword")), cases[k].keyword);
        json_decref(errors);
        json_decref(instance);
        lh_schema_free(s);
    }
}

static void
test_check_sets_err(void **state)
{
    lh_schema *s = compile_text(tool_schema);
    lh_err err;
    lh_err_clear(&err);
    json_t *args = parse("{\"min_years\": -1}");
    assert_int_equal(lh_schema_check(s, args, "/arguments", &err), LH_EINVAL);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.code, "invalid_arguments");
    assert_string_equal(err.message, "/arguments: missing required property 'city'");
    assert_string_equal(err.detail, "/arguments: missing required property 'city'; "
                                    "/arguments/min_years: must be >= 0");
    assert_string_equal(err.hint, "see the tool's input_schema (GET /tools/{name})");
    json_decref(args);

    lh_err_clear(&err);
    args = parse("{\"city\": \"Paris\"}");
    assert_int_equal(lh_schema_check(s, args, "/arguments", &err), 0);
    assert_int_equal(err.rc, 0);
    json_decref(args);
    lh_schema_free(s);

    /* many errors: at most 32 reported, the detail bounded and saying how many are left */
    s = compile_text("{\"items\": {\"type\": \"string\"}}");
    json_t *many = json_array();
    for (int k = 0; k < 100; k++)
        json_array_append_new(many, json_integer(k));
    json_t *errors = json_array();
    assert_false(lh_schema_validate(s, many, "/arguments/list", errors));
    assert_int_equal(json_array_size(errors), LH_SCHEMA_MAX_ERRORS);
    expect_error(errors, 31, "/arguments/list/31", "type", "/arguments/list/31: must be a string");
    assert_int_equal(lh_schema_check(s, many, "/arguments/list", &err), LH_EINVAL);
    assert_true(strlen(err.detail) < LH_ERR_TEXT_MAX);
    assert_non_null(strstr(err.detail, "more"));
    json_decref(errors);
    json_decref(many);
    lh_schema_free(s);
}

/* ---------------------------------------------------------------------------------
 * Compile errors
 * ------------------------------------------------------------------------------- */

static void
test_compile_errors(void **state)
{
    compile_fails("{\"properties\": {\"city\": {\"type\": \"string\", \"if\": {}}}}",
                  "/properties/city: keyword 'if' is not supported");
    compile_fails("{\"minimum\": \"x\"}", "(root): keyword 'minimum' must be a number");
    compile_fails("{\"type\": \"text\"}", "(root): unknown type 'text' (one of null, boolean, "
                                          "object, array, number, integer or string)");
    compile_fails("{\"type\": [\"string\", \"string\"]}", "(root): type 'string' is listed twice");
    compile_fails("{\"minLength\": -1}",
                  "(root): keyword 'minLength' must be a non-negative integer");
    compile_fails("{\"maxItems\": 1.5}",
                  "(root): keyword 'maxItems' must be a non-negative integer");
    compile_fails("{\"multipleOf\": 0}", "(root): keyword 'multipleOf' must be greater than 0");
    compile_fails("{\"required\": \"city\"}",
                  "(root): keyword 'required' must be an array of names");
    compile_fails("{\"enum\": 1}", "(root): keyword 'enum' must be an array");
    compile_fails("{\"uniqueItems\": 1}", "(root): keyword 'uniqueItems' must be true or false");
    compile_fails("{\"x-sensitive\": \"yes\"}",
                  "(root): keyword 'x-sensitive' must be true or false");
    compile_fails("{\"x-other\": true}", "(root): keyword 'x-other' is not supported");
    compile_fails("{\"$ref\": \"#/$defs/a\"}", "(root): keyword '$ref' is not supported");
    compile_fails("{\"title\": 1}", "(root): keyword 'title' must be a string");
    compile_fails("{\"$schema\": \"http://json-schema.org/draft-04/schema#\"}",
                  "(root): keyword '$schema' must name draft 2020-12 "
                  "(https://json-schema.org/draft/2020-12/schema) or draft-07");
    compile_fails("{\"items\": [{}]}", "(root): keyword 'items' must be a schema (draft 2020-12); "
                                       "use 'prefixItems' for a list of per-position schemas");
    compile_fails("{\"items\": {\"properties\": {\"a\": 3}}}",
                  "/items/properties/a: a schema must be an object or true/false");
    compile_fails("{\"properties\": {\"a\": {}}, \"required\": [\"a\", \"b\"],"
                  " \"additionalProperties\": false}",
                  "(root): required property 'b' is not in 'properties' and "
                  "additionalProperties is false");
    compile_fails("{\"pattern\": \"(a\"}", "(root): pattern is not supported: a '(' is not closed");
    compile_fails_with("{\"pattern\": \"a(?=b)\"}", "lookaround");
    compile_fails_with("{\"pattern\": \"(?<!a)b\"}", "lookaround");
    compile_fails_with("{\"pattern\": \"(a)\\\\1\"}", "backreferences (\\1) are not supported");
    compile_fails_with("{\"pattern\": \"\\\\p{L}\"}", "Unicode property escapes");
    compile_fails_with("{\"pattern\": \"[^]\"}", "the empty class [^] is not supported");
    compile_fails_with("{\"pattern\": \"[\\\\D]\"}", "\\D inside a character class");
    compile_fails_with("{\"pattern\": \"a{2000}\"}", "a repetition count above 1000");
    compile_fails_with("{\"pattern\": \"[z-a]\"}", "out of order");
    compile_fails_with("{\"pattern\": \"\\\\\"}", "lone backslash");
    /* where the pointer starts is the caller's: the registry says /input_schema */
    json_t *j = parse("{\"properties\": {\"a\": {\"if\": true}}}");
    lh_schema *s = NULL;
    lh_err err;
    lh_err_clear(&err);
    assert_int_equal(lh_schema_compile_at(j, "/input_schema", &s, &err), LH_EINVAL);
    assert_string_equal(err.message, "/input_schema/properties/a: keyword 'if' is not supported");
    assert_string_equal(err.detail, "schema pointer '/input_schema/properties/a', keyword 'if'");
    json_decref(j);
    assert_int_equal(lh_schema_compile(NULL, &s, &err), LH_EINVAL);
    compile_fails("3", "(root): a schema must be an object or true/false");
    compile_fails("{\"properties\": {\"a\": \"string\"}}",
                  "/properties/a: a schema must be an object or true/false");
}

static void
test_annotations_accepted(void **state)
{
    lh_schema *s = compile_text(
        "{\"$schema\": \"http://json-schema.org/draft-07/schema#\", \"$id\": \"urn:tool:x\","
        " \"title\": \"t\", \"description\": \"d\", \"default\": [1], \"examples\": [1],"
        " \"$comment\": \"c\", \"deprecated\": false, \"readOnly\": true, \"writeOnly\": false,"
        " \"x-sensitive\": false, \"format\": \"hostname\"}");
    /* an unasserted format is an annotation: anything passes */
    assert_true(valid_text(s, "\"not a host name!\""));
    assert_false(lh_schema_has_sensitive(s));
    lh_schema_free(s);
}

/* ---------------------------------------------------------------------------------
 * Draft 2020-12 rules beyond the packaged draft-7 suite
 * ------------------------------------------------------------------------------- */

static void
test_numbers_and_equality(void **state)
{
    lh_schema *s = compile_text("{\"type\": \"integer\"}");
    assert_true(valid_text(s, "1.0"));
    assert_true(valid_text(s, "-0.0"));
    assert_false(valid_text(s, "1.5"));
    assert_false(valid_text(s, "\"1\""));
    lh_schema_free(s);

    s = compile_text("{\"const\": {\"a\": 1, \"b\": [true, null, \"x\"]}}");
    assert_true(valid_text(s, "{\"b\": [true, null, \"x\"], \"a\": 1.0}"));
    assert_false(valid_text(s, "{\"b\": [true, null, \"x\"], \"a\": true}"));
    assert_false(valid_text(s, "{\"b\": [true, null], \"a\": 1}"));
    lh_schema_free(s);

    s = compile_text("{\"enum\": [0, false, \"\"]}");
    assert_true(valid_text(s, "0.0"));
    assert_true(valid_text(s, "false"));
    assert_false(valid_text(s, "null"));
    assert_false(valid_text(s, "[]"));
    lh_schema_free(s);

    /* exact integer bounds: 2^53 + 1 is above 2^53 even though doubles cannot tell */
    s = compile_text("{\"maximum\": 9007199254740992}");
    assert_true(valid_text(s, "9007199254740992"));
    assert_false(valid_text(s, "9007199254740993"));
    lh_schema_free(s);

    s = compile_text("{\"multipleOf\": 0.01}");
    assert_true(valid_text(s, "19.99"));
    assert_true(valid_text(s, "0.07"));
    assert_false(valid_text(s, "0.075"));
    lh_schema_free(s);
    /* a quotient that overflows is no multiple, not a crash */
    s = compile_text("{\"type\": \"integer\", \"multipleOf\": 0.123456789}");
    assert_false(valid_text(s, "1e308"));
    lh_schema_free(s);
    s = compile_text("{\"multipleOf\": 3}");
    assert_true(valid_text(s, "-9"));
    assert_true(valid_text(s, "9.0"));
    assert_false(valid_text(s, "10"));
    lh_schema_free(s);

    /* uniqueItems: by value, long arrays by hash */
    s = compile_text("{\"uniqueItems\": true}");
    assert_false(valid_text(s, "[1, 1.0]"));
    assert_false(valid_text(s, "[{\"a\": 1, \"b\": 2}, {\"b\": 2, \"a\": 1.0}]"));
    assert_true(valid_text(s, "[1, true, \"1\", [1], {\"1\": 1}, null, 0, false]"));
    json_t *big = json_array();
    for (int k = 0; k < 5000; k++)
        json_array_append_new(big, json_pack("{s:i, s:[i]}", "id", k, "v", k % 7));
    assert_true(lh_schema_validate(s, big, "", NULL));
    json_array_append_new(big, json_pack("{s:[f], s:f}", "v", 3.0, "id", 10.0));
    json_t *errors = json_array();
    assert_false(lh_schema_validate(s, big, "", errors));
    expect_error(errors, 0, "", "uniqueItems",
                 "(root): must not contain duplicates (items 10 and 5000 are equal)");
    json_decref(errors);
    json_decref(big);
    lh_schema_free(s);
}

static void
test_strings_count_code_points(void **state)
{
    lh_schema *s = compile_text("{\"minLength\": 3, \"maxLength\": 3}");
    assert_true(valid_text(s, "\"\\u00e9t\\u00e9\""));  /* été: 3 characters, 5 bytes */
    assert_true(valid_text(s, "\"\\ud83d\\ude00ab\"")); /* an emoji is one character */
    assert_false(valid_text(s, "\"ab\""));
    assert_false(valid_text(s, "\"abcd\""));
    assert_true(valid_text(s, "12345")); /* not a string: not judged */
    lh_schema_free(s);
}

static void
test_arrays_prefix_items(void **state)
{
    lh_schema *s = compile_text("{\"prefixItems\": [{\"type\": \"integer\"}, {\"type\": "
                                "\"string\"}], \"items\": {\"type\": \"boolean\"}}");
    assert_true(valid_text(s, "[]"));
    assert_true(valid_text(s, "[1]"));
    assert_true(valid_text(s, "[1, \"a\", true, false]"));
    assert_false(valid_text(s, "[1, 2]"));
    assert_false(valid_text(s, "[1, \"a\", 3]"));
    lh_schema_free(s);
    s = compile_text("{\"prefixItems\": [{\"type\": \"integer\"}]}");
    assert_true(valid_text(s, "[1, \"anything\", null]"));
    lh_schema_free(s);
}

static void
test_formats(void **state)
{
    lh_schema *s = compile_text("{\"format\": \"date-time\"}");
    static const char *const good_dt[] = {
        "\"1998-12-31T23:59:60Z\"",          /* a leap second, UTC */
        "\"1998-12-31T15:59:60.123-08:00\"", /* the same leap second, local time */
        "\"1963-06-19t08:30:06.283185z\"",
        "\"2020-02-29T00:00:00+14:00\"",
    };
    static const char *const bad_dt[] = {
        "\"1998-12-31T23:59:61Z\"",       "\"1998-12-31T22:59:60Z\"",
        "\"1998-12-31T23:58:60Z\"",       "\"1990-12-31T15:59:60-24:00\"",
        "\"2021-02-29T00:00:00Z\"",       "\"2020-01-01T00:00:00\"",
        "\"2020-01-01 00:00:00Z\"",       "\"2020-01-01T00:00:00.Z\"",
        "\"2020-01-01T24:00:00Z\"",       "\"2020-01-01T00:00:00+01\"",
        "\"\\u0661990-01-01T00:00:00Z\"",
    };
    for (size_t k = 0; k < sizeof good_dt / sizeof good_dt[0]; k++)
        assert_true(valid_text(s, good_dt[k]));
    for (size_t k = 0; k < sizeof bad_dt / sizeof bad_dt[0]; k++) {
        if (valid_text(s, bad_dt[k]))
            print_message("date-time accepted %s\n", bad_dt[k]);
        assert_false(valid_text(s, bad_dt[k]));
    }
    lh_schema_free(s);

    s = compile_text("{\"format\": \"date\"}");
    assert_true(valid_text(s, "\"2020-02-29\""));
    assert_true(valid_text(s, "\"2000-02-29\""));
    assert_false(valid_text(s, "\"1900-02-29\""));
    assert_false(valid_text(s, "\"2020-04-31\""));
    assert_false(valid_text(s, "\"2020-1-01\""));
    assert_false(valid_text(s, "\"2020-01-01T00:00:00Z\""));
    lh_schema_free(s);

    s = compile_text("{\"format\": \"email\"}");
    static const char *const good_mail[] = {
        "\"joe.bloggs@example.com\"",
        "\"te~st@example.com\"",
        "\"~test@example.com\"",
        "\"\\\"joe bloggs\\\"@example.com\"",
        "\"\\\"joe@bloggs\\\"@example.com\"",
        "\"joe.bloggs@[127.0.0.1]\"",
        "\"joe.bloggs@[IPv6:::1]\"",
        "\"te.s.t@example.com\"",
    };
    static const char *const bad_mail[] = {
        "\"2962\"",
        "\".test@example.com\"",
        "\"test.@example.com\"",
        "\"te..st@example.com\"",
        "\"joe.bloggs@invalid=domain.com\"",
        "\"joe.bloggs@[127.0.0.300]\"",
        "\"@example.com\"",
        "\"joe@\"",
        "\"joe@-example.com\"",
    };
    for (size_t k = 0; k < sizeof good_mail / sizeof good_mail[0]; k++) {
        if (!valid_text(s, good_mail[k]))
            print_message("email refused %s\n", good_mail[k]);
        assert_true(valid_text(s, good_mail[k]));
    }
    for (size_t k = 0; k < sizeof bad_mail / sizeof bad_mail[0]; k++) {
        if (valid_text(s, bad_mail[k]))
            print_message("email accepted %s\n", bad_mail[k]);
        assert_false(valid_text(s, bad_mail[k]));
    }
    lh_schema_free(s);

    s = compile_text("{\"format\": \"uuid\"}");
    assert_true(valid_text(s, "\"2EB8AA08-AA98-11EA-B4AA-73B441D16380\""));
    assert_true(valid_text(s, "\"2eb8aa08-aa98-11ea-b4aa-73b441d16380\""));
    assert_true(valid_text(s, "\"2eb8aa08-aa98-f1ea-b4aa-73b441d16380\"")); /* any version */
    assert_false(valid_text(s, "\"2eb8aa08aa9811eab4aa73b441d16380\""));
    assert_false(valid_text(s, "\"2eb8aa08-aa98-11ea-b4aa-73b441d1638\""));
    assert_false(valid_text(s, "\"2eb8aa08-aa98-11ea-73b441d16380----\""));
    assert_false(valid_text(s, "\"2eb8aa08-aa98-11ea-b4ga-73b441d16380\""));
    assert_true(valid_text(s, "17")); /* formats judge strings only */
    lh_schema_free(s);
}

static void
test_patterns(void **state)
{
    static const struct {
        const char *pattern; /* as a JSON string body */
        const char *yes, *no;
    } cases[] = {
        {"^\\\\d{3}-\\\\d{4}$", "555-1234", "555-12345"},
        {"^\\\\w+$", "snake_case_9", "kebab-case"},
        {"^\\\\S+\\\\s\\\\S+$", "two words", "three  words"},
        {"^\\\\D+$", "abc", "a1"},
        {"^(?:ab)+$", "abab", "aba"},
        {"^(?<year>\\\\d{4})$", "2024", "24"},
        {"^a+?b*?$", "aab", "ba"},
        {"^a{2,3}?$", "aaa", "aaaa"},
        {"^[\\\\]\\\\-^a]+$", "]-^a", "b"},
        {"^[\\\\^]$", "^", "a"},
        {"^[\\\\d.]+$", "1.5", "1,5"},
        {"^[^\\\\s]+$", "abc", "a c"},
        {"^.$", "\\u00e9", "ab"},  /* one character, two bytes */
        {"^a.c$", "abc", "a\\nc"}, /* "." stops at line terminators */
        {"x{", "x{", "x"},         /* a brace that starts no quantifier is literal */
        {"^\\\\u00e9t\\\\u00e9$", "\\u00e9t\\u00e9", "ete"},
        {"^\\\\x41\\\\/$", "A/", "a/"},
        {"a+", "xxaxx", "xxx"}, /* unanchored */
        {"^[a-z]+\\\\.[a-z]{2,}$", "example.com", "example.c"},
        {"\\\\bcat\\\\b", "a cat sat", "concatenate"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char schema[256], yes[128], no[128];
        snprintf(schema, sizeof schema, "{\"pattern\": \"%s\"}", cases[k].pattern);
        snprintf(yes, sizeof yes, "\"%s\"", cases[k].yes);
        snprintf(no, sizeof no, "\"%s\"", cases[k].no);
        lh_schema *s = compile_text(schema);
        if (!valid_text(s, yes) || valid_text(s, no))
            print_message("pattern %s: yes %s no %s\n", cases[k].pattern, yes, no);
        assert_true(valid_text(s, yes));
        assert_false(valid_text(s, no));
        lh_schema_free(s);
    }
    /* a NUL inside the instance does not end it */
    lh_schema *s = compile_text("{\"pattern\": \"b$\"}");
    json_t *v = json_stringn("a\0b", 3);
    assert_true(lh_schema_validate(s, v, "", NULL));
    json_decref(v);
    lh_schema_free(s);
}

/* ---------------------------------------------------------------------------------
 * Redaction and properties
 * ------------------------------------------------------------------------------- */

static void
test_redaction(void **state)
{
    lh_schema *s = compile_text(
        "{\"type\": \"object\", \"properties\": {"
        "  \"name\": {\"type\": \"string\"},"
        "  \"ssn\": {\"type\": \"string\", \"x-sensitive\": true},"
        "  \"contacts\": {\"type\": \"array\", \"items\": {\"type\": \"object\", \"properties\":"
        "     {\"phone\": {\"x-sensitive\": true}, \"kind\": {}}}},"
        "  \"pair\": {\"prefixItems\": [{}, {\"x-sensitive\": true}]}},"
        " \"additionalProperties\": {\"x-sensitive\": true}}");
    assert_true(lh_schema_has_sensitive(s));
    json_t *args = parse("{\"name\": \"Ada\", \"ssn\": \"123-45-6789\", \"contacts\": [{\"phone\":"
                         " \"555\", \"kind\": \"home\"}, {\"kind\": \"work\"}, 7],"
                         " \"pair\": [\"a\", {\"secret\": 1}], \"extra\": [1, 2]}");
    json_t *before = json_deep_copy(args);
    json_t *redacted = lh_schema_redact(s, args);
    json_t *want = parse("{\"name\": \"Ada\", \"ssn\": \"[redacted]\", \"contacts\": [{\"phone\":"
                         " \"[redacted]\", \"kind\": \"home\"}, {\"kind\": \"work\"}, 7],"
                         " \"pair\": [\"a\", \"[redacted]\"], \"extra\": \"[redacted]\"}");
    if (!json_equal(redacted, want)) {
        char *text = json_dumps(redacted, JSON_COMPACT);
        print_message("redacted: %s\n", text);
        free(text);
    }
    assert_true(json_equal(redacted, want));
    assert_true(json_equal(args, before)); /* the instance itself is untouched */
    assert_true(redacted != args);
    json_decref(want);
    json_decref(redacted);
    json_decref(before);
    json_decref(args);
    lh_schema_free(s);

    /* no sensitive field: an equal copy */
    s = compile_text(tool_schema);
    assert_false(lh_schema_has_sensitive(s));
    args = parse("{\"city\": \"Paris\"}");
    redacted = lh_schema_redact(s, args);
    assert_true(json_equal(redacted, args));
    assert_true(redacted != args);
    json_decref(redacted);
    json_decref(args);
    lh_schema_free(s);

    /* the whole instance sensitive */
    s = compile_text("{\"x-sensitive\": true}");
    args = parse("{\"a\": 1}");
    redacted = lh_schema_redact(s, args);
    assert_string_equal(json_string_value(redacted), "[redacted]");
    json_decref(redacted);
    json_decref(args);
    lh_schema_free(s);
}

static void
test_properties_in_declaration_order(void **state)
{
    json_t *j = parse(tool_schema);
    lh_schema *s = NULL;
    assert_int_equal(lh_schema_compile(j, &s, NULL), 0);
    json_object_del(json_object_get(j, "properties"), "city"); /* the schema keeps its copy */
    json_decref(j);
    const json_t *props = lh_schema_properties(s);
    assert_non_null(props);
    const char *want[] = {"city", "min_years", "skills", "email"};
    size_t k = 0;
    const char *name;
    json_t *sub;
    json_object_foreach((json_t *)props, name, sub)
    {
        assert_true(k < 4);
        assert_string_equal(name, want[k++]);
    }
    assert_int_equal(k, 4);
    assert_string_equal(lh_schema_property_type(s, "city"), "string");
    assert_string_equal(lh_schema_property_type(s, "min_years"), "integer");
    assert_string_equal(lh_schema_property_type(s, "email"), "string"); /* not "null" */
    assert_null(lh_schema_property_type(s, "nope"));
    lh_schema_free(s);

    s = compile_text("{\"type\": \"string\"}");
    assert_null(lh_schema_properties(s));
    lh_schema_free(s);
    s = compile_text("true");
    assert_null(lh_schema_properties(s));
    assert_true(valid_text(s, "{\"anything\": [1]}"));
    lh_schema_free(s);
}

/* ---------------------------------------------------------------------------------
 * Hostile input
 * ------------------------------------------------------------------------------- */

static double
seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void
test_deep_nesting(void **state)
{
    /* schemas: 32 levels compile, 33 do not */
    for (int levels = 32; levels <= 33; levels++) {
        json_t *schema = json_object();
        for (int k = 0; k < levels; k++)
            schema = json_pack("{s:o}", "items", schema);
        lh_schema *s = NULL;
        lh_err err;
        lh_err_clear(&err);
        int rc = lh_schema_compile(schema, &s, &err);
        if (levels == 32) {
            assert_int_equal(rc, 0);
            lh_schema_free(s);
        } else {
            assert_int_equal(rc, LH_EINVAL);
            assert_non_null(strstr(err.message, "schema nested deeper than 32 levels"));
            assert_non_null(strstr(err.message, "/items/items/items"));
        }
        json_decref(schema);
    }
    /* instances as deep as jansson parses, compared by const and uniqueItems */
    lh_buf text;
    lh_buf_init(&text);
    for (int k = 0; k < 2000; k++)
        lh_buf_puts(&text, "[");
    for (int k = 0; k < 2000; k++)
        lh_buf_puts(&text, "]");
    json_t *deep = parse(text.data);
    json_t *schema = json_pack("{s:O, s:b}", "const", deep, "uniqueItems", 1);
    lh_schema *s = NULL;
    assert_int_equal(lh_schema_compile(schema, &s, NULL), 0);
    assert_true(lh_schema_validate(s, deep, "", NULL));
    json_t *pair = json_pack("[O, O]", deep, deep);
    json_t *errors = json_array();
    assert_false(lh_schema_validate(s, pair, "", errors)); /* not const; duplicates */
    json_decref(errors);
    json_decref(pair);
    lh_schema_free(s);
    json_decref(schema);
    json_decref(deep);
    lh_buf_free(&text);
}

static void
test_hostile_patterns_are_bounded(void **state)
{
    /* patterns over 1 KB are refused */
    char *long_pattern = malloc(LH_SCHEMA_MAX_PATTERN + 2);
    memset(long_pattern, 'a', LH_SCHEMA_MAX_PATTERN + 1);
    long_pattern[LH_SCHEMA_MAX_PATTERN + 1] = '\0';
    json_t *schema = json_pack("{s:s}", "pattern", long_pattern);
    lh_schema *s = NULL;
    lh_err err;
    lh_err_clear(&err);
    assert_int_equal(lh_schema_compile(schema, &s, &err), LH_EINVAL);
    assert_string_equal(err.message, "(root): pattern is longer than 1024 bytes");
    json_decref(schema);
    free(long_pattern);
    /* counted repetitions that would expand to millions of states */
    compile_fails_with("{\"pattern\": \"((a{100}){100}){100}\"}",
                       "expand to more than 1200 states");
    compile_fails_with("{\"pattern\": \"(((a{30}){30}){30})\"}", "expand to more than");

    /* patterns that make a backtracking matcher exponential, on long inputs */
    static const char *const evil[] = {
        "^(a+)+$",  "^(a|aa)+$", "^(a*)*b$",         "(x+x+)+y",  "^([a-z0-9]+\\\\.?)+@",
        "(a|aa)+c", "(a+)+b",    "(a{1,30}){1,30}b", "(.*a){20}b"};
    size_t n = 100000;
    char *text = malloc(n + 2);
    memset(text, 'a', n);
    text[n] = '!';
    text[n + 1] = '\0';
    json_t *instance = json_string(text);
    for (size_t k = 0; k < sizeof evil / sizeof evil[0]; k++) {
        char schema_text[128];
        snprintf(schema_text, sizeof schema_text, "{\"pattern\": \"%s\"}", evil[k]);
        s = compile_text(schema_text);
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        (void)lh_schema_validate(s, instance, "", NULL);
        double took = seconds_since(&start);
        print_message("pattern %-22s on %zu bytes: %.3f s\n", evil[k], n + 1, took);
        assert_true(took < 2.0);
        lh_schema_free(s);
    }
    json_decref(instance);
    free(text);

    /* the text budget is per validation, across strings */
    s = compile_text("{\"items\": {\"pattern\": \"^a+$\"}}");
    json_t *list = json_array();
    text = malloc(60001);
    memset(text, 'a', 60000);
    text[60000] = '\0';
    for (int k = 0; k < 5; k++)
        json_array_append_new(list, json_string(text));
    json_t *errors = json_array();
    assert_false(lh_schema_validate(s, list, "", errors));
    assert_int_equal(json_array_size(errors), 1);
    expect_error(errors, 0, "/4", "pattern",
                 "/4: is too long to check against the pattern (strings checked against "
                 "patterns may total 262144 bytes)");
    json_array_remove(list, 4);
    assert_true(lh_schema_validate(s, list, "", NULL));
    json_decref(errors);
    json_decref(list);
    free(text);
    lh_schema_free(s);
}

static void
test_huge_strings(void **state)
{
    size_t n = 8 << 20;
    char *text = malloc(n + 1);
    memset(text, 'x', n);
    text[n] = '\0';
    json_t *instance = json_pack("{s:s%}", "note", text, n);
    lh_schema *s = compile_text("{\"properties\": {\"note\": {\"maxLength\": 1000, \"pattern\": "
                                "\"^x+$\", \"format\": \"email\"}}}");
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    json_t *errors = json_array();
    assert_false(lh_schema_validate(s, instance, "/arguments", errors));
    double took = seconds_since(&start);
    print_message("8 MB string: %.3f s\n", took);
    assert_true(took < 10.0);
    /* maxLength; the pattern is not tried on 8 MB (over the budget), format */
    assert_int_equal(json_array_size(errors), 3);
    expect_error(errors, 1, "/arguments/note", "pattern",
                 "/arguments/note: is too long to check against the pattern (strings checked "
                 "against patterns may total 262144 bytes)");
    json_decref(errors);
    lh_schema_free(s);
    json_decref(instance);

    /* a huge key: the pointer is whole, the message repeats a bounded part of it */
    memset(text, 'k', 4096);
    text[4096] = '\0';
    instance = json_pack("{s:i}", text, 1);
    s = compile_text("{\"additionalProperties\": false}");
    errors = json_array();
    assert_false(lh_schema_validate(s, instance, "", errors));
    const json_t *e = json_array_get(errors, 0);
    assert_int_equal(strlen(json_string_value(json_object_get(e, "pointer"))), 4097);
    assert_true(strlen(json_string_value(json_object_get(e, "message"))) < 400);
    json_decref(errors);
    json_decref(instance);
    lh_schema_free(s);
    free(text);
}

typedef struct thread_arg {
    const lh_schema *schema;
    int failures;
} thread_arg;

static void *
validate_many(void *p)
{
    thread_arg *arg = p;
    json_t *good =
        json_pack("{s:s, s:i, s:[s,s]}", "city", "Paris", "min_years", 3, "skills", "c++", "go");
    json_t *bad = json_pack("{s:s, s:i}", "city", "Rome", "min_years", -3);
    for (int k = 0; k < 2000; k++) {
        json_t *errors = json_array();
        if (!lh_schema_validate(arg->schema, good, "/arguments", NULL) ||
            lh_schema_validate(arg->schema, bad, "/arguments", errors) ||
            json_array_size(errors) != 2)
            arg->failures++;
        json_decref(errors);
    }
    json_decref(good);
    json_decref(bad);
    return NULL;
}

static void
test_concurrent_validation(void **state)
{
    lh_schema *s = compile_text(
        "{\"type\": \"object\", \"properties\": {\"city\": {\"pattern\": \"^[A-Z]\\\\w+$\","
        " \"enum\": [\"Paris\", \"Lyon\"]}, \"min_years\": {\"minimum\": 0},"
        " \"skills\": {\"uniqueItems\": true, \"items\": {\"pattern\": \"^[a-z+]+$\"}}}}");
    pthread_t threads[4];
    thread_arg args[4];
    for (int k = 0; k < 4; k++) {
        args[k] = (thread_arg){s, 0};
        assert_int_equal(pthread_create(&threads[k], NULL, validate_many, &args[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(threads[k], NULL);
        assert_int_equal(args[k].failures, 0);
    }
    lh_schema_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_messages_and_pointers),
        cmocka_unit_test(test_messages_per_keyword),
        cmocka_unit_test(test_check_sets_err),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_annotations_accepted),
        cmocka_unit_test(test_numbers_and_equality),
        cmocka_unit_test(test_strings_count_code_points),
        cmocka_unit_test(test_arrays_prefix_items),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_properties_in_declaration_order),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_hostile_patterns_are_bounded),
        cmocka_unit_test(test_huge_strings),
        cmocka_unit_test(test_concurrent_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
