/*
 * schema_tmp.c — a stand-in for the JSON Schema validator (schema.h) until the full one
 * lands: type, properties, required, additionalProperties, minimum/maximum,
 * minLength/maxLength, enum and x-sensitive, nested through properties. Any other
 * keyword is refused at compile, so a definition never relies on a rule that is not
 * checked. Thread-safe: a compiled schema is immutable.
 */
#include "core/core.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/schema.h"

#define MAX_ERRORS 32

struct lh_schema {
    json_t *doc; /* our copy of the schema */
};

static const char *const KNOWN[] = {
    "type",        "properties", "required", "additionalProperties", "minimum", "maximum",
    "minLength",   "maxLength",  "enum",     "description",          "title",   "default",
    "x-sensitive", NULL};
static const char *const TYPES[] = {"object",  "string", "integer", "number",
                                    "boolean", "array",  "null",    NULL};

static bool
in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

static int
bad(lh_err *err, const char *pointer, const char *keyword, const char *why)
{
    lh_err_set(err, LH_EINVAL, 400, "invalid_schema", "input_schema%s: %s %s",
               pointer[0] ? pointer : "", keyword, why);
    lh_err_hint(err, "supported keywords: type, properties, required, additionalProperties, "
                     "minimum, maximum, minLength, maxLength, enum, description, title, default, "
                     "x-sensitive");
    return LH_EINVAL;
}

static int
check(const json_t *s, const char *pointer, lh_err *err)
{
    if (!json_is_object(s))
        return bad(err, pointer, "a schema", "must be an object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)s, key, v)
    {
        if (!in_list(KNOWN, key))
            return bad(err, pointer, key, "is not a supported keyword");
    }
    const json_t *type = json_object_get(s, "type");
    if (type && (!json_is_string(type) || !in_list(TYPES, json_string_value(type))))
        return bad(err, pointer, "type",
                   "must be one of object, string, integer, number, "
                   "boolean, array, null");
    const json_t *req = json_object_get(s, "required");
    size_t i;
    json_t *x;
    if (req && !json_is_array(req))
        return bad(err, pointer, "required", "must be an array of property names");
    json_array_foreach(req, i, x)
    {
        if (!json_is_string(x))
            return bad(err, pointer, "required", "must be an array of property names");
    }
    const json_t *ap = json_object_get(s, "additionalProperties");
    if (ap && !json_is_boolean(ap))
        return bad(err, pointer, "additionalProperties", "must be true or false here");
    for (const char *const *n = (const char *const[]){"minimum", "maximum", NULL}; *n; n++)
        if (json_object_get(s, *n) && !json_is_number(json_object_get(s, *n)))
            return bad(err, pointer, *n, "must be a number");
    for (const char *const *n = (const char *const[]){"minLength", "maxLength", NULL}; *n; n++)
        if (json_object_get(s, *n) && !json_is_integer(json_object_get(s, *n)))
            return bad(err, pointer, *n, "must be an integer");
    if (json_object_get(s, "enum") && !json_is_array(json_object_get(s, "enum")))
        return bad(err, pointer, "enum", "must be an array");
    const json_t *props = json_object_get(s, "properties");
    if (props && !json_is_object(props))
        return bad(err, pointer, "properties", "must be an object");
    json_object_foreach((json_t *)props, key, v)
    {
        char *sub = lh_sprintf("%s/properties/%s", pointer, key);
        int rc = check(v, sub, err);
        free(sub);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int
lh_schema_compile(const json_t *schema, lh_schema **out, lh_err *err)
{
    int rc = check(schema, "", err);
    if (rc != 0)
        return rc;
    lh_schema *s = lh_calloc(1, sizeof *s);
    s->doc = json_deep_copy(schema);
    *out = s;
    return 0;
}

void
lh_schema_free(lh_schema *s)
{
    if (!s)
        return;
    json_decref(s->doc);
    free(s);
}

/* Characters (code points) of valid UTF-8, as JSON Schema counts lengths. */
static size_t
utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static bool
type_ok(const char *type, const json_t *v)
{
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "integer") == 0)
        return json_is_integer(v) ||
               (json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v));
    if (strcmp(type, "number") == 0)
        return json_is_number(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    return json_is_null(v);
}

static void add_error(json_t *errors, const char *pointer, const char *keyword, const char *fmt,
                      ...) LH_PRINTF(4, 5);

static void
add_error(json_t *errors, const char *pointer, const char *keyword, const char *fmt, ...)
{
    if (!errors || json_array_size(errors) >= MAX_ERRORS)
        return;
    char rule[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    char *message = lh_sprintf("%s: %s", pointer, rule);
    json_array_append_new(errors, json_pack("{s:s, s:s, s:s}", "pointer", pointer, "keyword",
                                            keyword, "message", message));
    free(message);
}

static bool
validate(const json_t *s, const json_t *v, const char *pointer, json_t *errors)
{
    bool ok = true;
    const char *type = json_string_value(json_object_get(s, "type"));
    if (type && !type_ok(type, v)) {
        add_error(errors, pointer, "type", "must be %s %s", strchr("aeiou", type[0]) ? "an" : "a",
                  type);
        return false;
    }
    const json_t *en = json_object_get(s, "enum");
    if (en) {
        bool found = false;
        size_t i;
        json_t *x;
        json_array_foreach(en, i, x) found = found || json_equal(x, v);
        if (!found) {
            add_error(errors, pointer, "enum", "must be one of the listed values");
            ok = false;
        }
    }
    if (json_is_number(v)) {
        const json_t *mn = json_object_get(s, "minimum"), *mx = json_object_get(s, "maximum");
        if (mn && json_number_value(v) < json_number_value(mn)) {
            add_error(errors, pointer, "minimum", "must be >= %g", json_number_value(mn));
            ok = false;
        }
        if (mx && json_number_value(v) > json_number_value(mx)) {
            add_error(errors, pointer, "maximum", "must be <= %g", json_number_value(mx));
            ok = false;
        }
    }
    if (json_is_string(v)) {
        size_t n = utf8_chars(json_string_value(v), json_string_length(v));
        const json_t *mn = json_object_get(s, "minLength"), *mx = json_object_get(s, "maxLength");
        if (mn && (json_int_t)n < json_integer_value(mn)) {
            add_error(errors, pointer, "minLength", "must be at least %lld characters long",
                      (long long)json_integer_value(mn));
            ok = false;
        }
        if (mx && (json_int_t)n > json_integer_value(mx)) {
            add_error(errors, pointer, "maxLength", "must be at most %lld characters long",
                      (long long)json_integer_value(mx));
            ok = false;
        }
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties");
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(s, "required"), i, x)
        {
            if (!json_object_get(v, json_string_value(x))) {
                char *p = lh_sprintf("%s/%s", pointer, json_string_value(x));
                add_error(errors, p, "required", "is required");
                free(p);
                ok = false;
            }
        }
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val)
        {
            char *p = lh_sprintf("%s/%s", pointer, key);
            const json_t *sub = json_object_get(props, key);
            if (sub)
                ok = validate(sub, val, p, errors) && ok;
            else if (json_is_false(json_object_get(s, "additionalProperties"))) {
                add_error(errors, p, "additionalProperties", "is not an allowed property");
                ok = false;
            }
            free(p);
        }
    }
    return ok;
}

bool
lh_schema_validate(const lh_schema *s, const json_t *instance, const char *base, json_t *errors)
{
    return validate(s->doc, instance, base ? base : "", errors);
}

static json_t *
redact(const json_t *s, const json_t *v)
{
    if (json_is_true(json_object_get(s, "x-sensitive")))
        return json_string("[redacted]");
    if (!json_is_object(v))
        return json_deep_copy(v);
    json_t *out = json_object();
    const json_t *props = json_object_get(s, "properties");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        const json_t *sub = json_object_get(props, key);
        json_object_set_new(out, key, sub ? redact(sub, val) : json_deep_copy(val));
    }
    return out;
}

json_t *
lh_schema_redact(const lh_schema *s, const json_t *instance)
{
    return redact(s->doc, instance);
}

const json_t *
lh_schema_properties(const lh_schema *s)
{
    const json_t *p = json_object_get(s->doc, "properties");
    return json_is_object(p) ? p : NULL;
}

int
lh_schema_check(const lh_schema *s, const json_t *instance, const char *base, lh_err *err)
{
    json_t *errors = json_array();
    bool ok = lh_schema_validate(s, instance, base, errors);
    int rc = 0;
    if (!ok) {
        lh_buf all;
        lh_buf_init(&all);
        size_t i;
        json_t *e;
        json_array_foreach(errors, i, e) lh_buf_printf(
            &all, "%s%s", i ? "; " : "", json_string_value(json_object_get(e, "message")));
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_arguments", "%s",
                        json_string_value(json_object_get(json_array_get(errors, 0), "message")));
        lh_err_detail(err, "%s", all.data ? all.data : "");
        lh_err_hint(err, "see the tool's input_schema (GET /tools/{name})");
        lh_buf_free(&all);
    }
    json_decref(errors);
    return rc;
}
