/*
 * schema_validate.c — validating an instance against a compiled schema, and the JSON
 * equality and hashing that enum, const and uniqueItems rely on.
 *
 * Errors are reported in document order: at each value, the keywords that judge the value
 * itself (type, enum, const, bounds, required, ...) come before the errors of its members,
 * and members are visited in the instance's own order. A value of the wrong type gets
 * only the type error: the other keywords would only repeat it. Reporting stops after
 * LH_SCHEMA_MAX_ERRORS (or at the first error when the caller wants no list).
 *
 * Reads the compiled schema only; any number of threads may validate at once.
 */
#include "agent/schema_int.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest instance pointer repeated inside a message; the "pointer" member is whole. */
#define MESSAGE_POINTER_MAX 256
/* Arrays up to this size are checked for duplicates pair by pair; longer ones by hash. */
#define UNIQUE_PAIRWISE_MAX 16

typedef struct validate_ctx {
    json_t *errors; /* NULL: stop at the first error */
    size_t n_reported;
    bool valid;
    bool stop;
    size_t pattern_text_left; /* of LH_SCHEMA_MAX_PATTERN_TEXT */
    lh_buf pointer;           /* base + pointer of the value being validated */
} validate_ctx;

/* ---------------------------------------------------------------------------------
 * Equality and hashing (numbers by value, objects regardless of key order)
 * ------------------------------------------------------------------------------- */

static bool
number_equal(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    /* long double holds every int64 and every double exactly */
    long double x = json_is_integer(a) ? (long double)json_integer_value(a) : json_real_value(a);
    long double y = json_is_integer(b) ? (long double)json_integer_value(b) : json_real_value(b);
    return x == y;
}

static bool
equal_at(const json_t *a, const json_t *b, int depth)
{
    if (depth > JSON_PARSER_MAX_DEPTH)
        return false;
    if (json_is_number(a) && json_is_number(b))
        return number_equal(a, b);
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY: {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t k = 0; k < json_array_size(a); k++)
            if (!equal_at(json_array_get(a, k), json_array_get(b, k), depth + 1))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        size_t key_len;
        json_t *value;
        json_object_keylen_foreach((json_t *)a, key, key_len, value)
        {
            const json_t *other = json_object_getn(b, key, key_len);
            if (other == NULL || !equal_at(value, other, depth + 1))
                return false;
        }
        return true;
    }
    default: /* true, false, null */
        return true;
    }
}

bool
lh_schema__json_equal(const json_t *a, const json_t *b)
{
    return equal_at(a, b, 0);
}

static uint64_t
mix64(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

static uint64_t
hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t k = 0; k < n; k++)
        h = (h ^ (unsigned char)s[k]) * 0x100000001b3ULL;
    return mix64(h);
}

/* A hash that agrees with equal_at: 1 and 1.0 hash alike, key order does not matter. */
static uint64_t
hash_at(const json_t *v, int depth)
{
    if (depth > JSON_PARSER_MAX_DEPTH)
        return 0;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        return mix64(0x10 ^ (uint64_t)json_integer_value(v));
    case JSON_REAL: {
        double d = json_real_value(v);
        if (floor(d) == d && fabs(d) < 9.2e18)
            return mix64(0x10 ^ (uint64_t)(int64_t)d);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return mix64(0x20 ^ bits);
    }
    case JSON_STRING:
        return hash_bytes(json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        uint64_t h = 0x30;
        for (size_t k = 0; k < json_array_size(v); k++)
            h = mix64(h * 31 + hash_at(json_array_get(v, k), depth + 1));
        return h;
    }
    case JSON_OBJECT: {
        uint64_t h = 0x40;
        const char *key;
        size_t key_len;
        json_t *value;
        json_object_keylen_foreach((json_t *)v, key, key_len, value)
        {
            h += mix64(hash_bytes(key, key_len) ^ (hash_at(value, depth + 1) * 3));
        }
        return mix64(h);
    }
    case JSON_TRUE:
        return 2;
    case JSON_FALSE:
        return 3;
    default:
        return 1;
    }
}

typedef struct hashed_item {
    uint64_t hash;
    size_t index;
} hashed_item;

static int
hashed_item_cmp(const void *pa, const void *pb)
{
    const hashed_item *a = pa, *b = pb;
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Find two equal items; true and their indexes (first < second) when there are. */
static bool
find_duplicate(const json_t *array, size_t *first, size_t *second)
{
    size_t n = json_array_size(array);
    hashed_item *items = n > UNIQUE_PAIRWISE_MAX ? lh_try_malloc(n * sizeof *items) : NULL;
    if (items == NULL) { /* short, or no memory for the hashes: pair by pair */
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (equal_at(json_array_get(array, i), json_array_get(array, j), 0)) {
                    *first = i;
                    *second = j;
                    return true;
                }
        return false;
    }
    for (size_t k = 0; k < n; k++)
        items[k] = (hashed_item){hash_at(json_array_get(array, k), 0), k};
    qsort(items, n, sizeof *items, hashed_item_cmp);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        for (size_t j = i + 1; j < n && items[j].hash == items[i].hash && !found; j++)
            if (equal_at(json_array_get(array, items[i].index),
                         json_array_get(array, items[j].index), 0)) {
                *first = items[i].index;
                *second = items[j].index;
                found = true;
            }
    free(items);
    return found;
}

/* ---------------------------------------------------------------------------------
 * Reporting
 * ------------------------------------------------------------------------------- */

static void LH_PRINTF(3, 4) report(validate_ctx *ctx, const char *keyword, const char *fmt, ...)
{
    ctx->valid = false;
    if (ctx->errors == NULL) {
        ctx->stop = true;
        return;
    }
    lh_buf message;
    lh_buf_init(&message);
    const char *pointer = ctx->pointer.len ? ctx->pointer.data : "(root)";
    size_t shown = strlen(pointer);
    if (shown > MESSAGE_POINTER_MAX) { /* cut on a character boundary */
        shown = MESSAGE_POINTER_MAX;
        while (shown > 0 && (pointer[shown] & 0xC0) == 0x80)
            shown--;
    }
    lh_buf_append(&message, pointer, shown);
    lh_buf_puts(&message, shown < strlen(pointer) ? "...: " : ": ");
    char what[LH_ERR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    lh_buf_puts(&message, what);

    json_t *error = json_object();
    json_object_set_new(error, "pointer", lh_json_text(ctx->pointer.len ? ctx->pointer.data : ""));
    json_object_set_new(error, "keyword", json_string(keyword));
    json_object_set_new(error, "message", lh_json_text(message.data));
    json_array_append_new(ctx->errors, error);
    lh_buf_free(&message);
    if (++ctx->n_reported >= LH_SCHEMA_MAX_ERRORS)
        ctx->stop = true;
}

/* A value in a message: compact JSON, cut to a readable length. */
static void
describe_value(char *out, size_t size, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        snprintf(out, size, "(a value)");
        return;
    }
    if (strlen(text) > 40) {
        size_t cut = 37;
        while (cut > 0 && (text[cut] & 0xC0) == 0x80)
            cut--;
        snprintf(out, size, "%.*s...", (int)cut, text);
    } else {
        snprintf(out, size, "%s", text);
    }
    free(text);
}

static void
type_phrase(unsigned types, char *out, size_t size)
{
    static const struct {
        unsigned bit;
        const char *phrase;
    } names[] = {{LH_ST_OBJECT, "an object"}, {LH_ST_ARRAY, "an array"},
                 {LH_ST_STRING, "a string"},  {LH_ST_INTEGER, "an integer"},
                 {LH_ST_NUMBER, "a number"},  {LH_ST_BOOLEAN, "a boolean"},
                 {LH_ST_NULL, "null"}};
    size_t n_names = sizeof names / sizeof names[0], total = 0, done = 0, len = 0;
    if (types & LH_ST_NUMBER)
        types &= ~(unsigned)LH_ST_INTEGER; /* "number" already says it */
    for (size_t k = 0; k < n_names; k++)
        total += (types & names[k].bit) != 0;
    out[0] = '\0';
    for (size_t k = 0; k < n_names; k++) {
        if (!(types & names[k].bit))
            continue;
        const char *sep = done == 0 ? "" : done + 1 == total ? " or " : ", ";
        int n = snprintf(out + len, size - len, "%s%s", sep, names[k].phrase);
        if (n < 0 || (size_t)n >= size - len)
            return;
        len += (size_t)n;
        done++;
    }
}

/* ---------------------------------------------------------------------------------
 * Keywords
 * ------------------------------------------------------------------------------- */

static bool
type_matches(unsigned types, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return types & LH_ST_NULL;
    case JSON_TRUE:
    case JSON_FALSE:
        return types & LH_ST_BOOLEAN;
    case JSON_OBJECT:
        return types & LH_ST_OBJECT;
    case JSON_ARRAY:
        return types & LH_ST_ARRAY;
    case JSON_STRING:
        return types & LH_ST_STRING;
    case JSON_INTEGER:
        return types & (LH_ST_NUMBER | LH_ST_INTEGER);
    case JSON_REAL: {
        double d = json_real_value(v);
        return (types & LH_ST_NUMBER) || ((types & LH_ST_INTEGER) && floor(d) == d);
    }
    }
    return false;
}

/* <0, 0 or >0 as v is below, at or above the bound. */
static int
number_cmp(const json_t *v, const lh_schema_num *bound)
{
    if (json_is_integer(v) && bound->is_int) {
        json_int_t x = json_integer_value(v);
        return (x > bound->i) - (x < bound->i);
    }
    long double x = json_is_integer(v) ? (long double)json_integer_value(v) : json_real_value(v);
    long double y = bound->is_int ? (long double)bound->i : bound->d;
    return (x > y) - (x < y);
}

static bool
is_multiple_of(const json_t *v, const lh_schema_num *m)
{
    if (json_is_integer(v) && m->is_int)
        return json_integer_value(v) % m->i == 0; /* m->i > 0: checked at compile */
    double q = json_number_value(v) / m->d;
    if (!isfinite(q))
        return false;
    /* the quotient of two doubles is off by a few ulps: 0.0075 / 0.0001 = 75.00000000000001 */
    return fabs(q - nearbyint(q)) <= 8 * DBL_EPSILON * fmax(1.0, fabs(q));
}

static void
validate_number(validate_ctx *ctx, const lh_schema_node *node, const json_t *v)
{
    if (node->minimum.present && number_cmp(v, &node->minimum) < 0)
        report(ctx, "minimum", "must be >= %s", node->minimum.text);
    if (node->maximum.present && number_cmp(v, &node->maximum) > 0)
        report(ctx, "maximum", "must be <= %s", node->maximum.text);
    if (node->exclusive_minimum.present && number_cmp(v, &node->exclusive_minimum) <= 0)
        report(ctx, "exclusiveMinimum", "must be > %s", node->exclusive_minimum.text);
    if (node->exclusive_maximum.present && number_cmp(v, &node->exclusive_maximum) >= 0)
        report(ctx, "exclusiveMaximum", "must be < %s", node->exclusive_maximum.text);
    if (node->multiple_of.present && !is_multiple_of(v, &node->multiple_of))
        report(ctx, "multipleOf", "must be a multiple of %s", node->multiple_of.text);
}

static size_t
code_points(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t k = 0; k < len; k++)
        n += ((unsigned char)s[k] & 0xC0) != 0x80; /* jansson holds valid UTF-8 only */
    return n;
}

static void
validate_string(validate_ctx *ctx, const lh_schema_node *node, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (node->has_min_length || node->has_max_length) {
        size_t n = code_points(s, len);
        if (node->has_min_length && n < node->min_length)
            report(ctx, "minLength", "must be at least %zu character%s long", node->min_length,
                   node->min_length == 1 ? "" : "s");
        if (node->has_max_length && n > node->max_length)
            report(ctx, "maxLength", "must be at most %zu character%s long", node->max_length,
                   node->max_length == 1 ? "" : "s");
    }
    if (node->pattern_source != NULL) {
        if (len > ctx->pattern_text_left) {
            report(ctx, "pattern",
                   "is too long to check against the pattern (strings checked against "
                   "patterns may total %d bytes)",
                   LH_SCHEMA_MAX_PATTERN_TEXT);
        } else {
            ctx->pattern_text_left -= len;
            if (!lh_schema__regex_search(&node->pattern, s, len))
                report(ctx, "pattern", "must match the pattern '%s'", node->pattern_source);
        }
    }
    if (node->format != LH_SF_NONE && !lh_schema__format_check(node->format, s, len))
        report(ctx, "format", "must be %s", lh_schema__format_describe(node->format));
}

static void validate_node(validate_ctx *ctx, const lh_schema_node *node, const json_t *v,
                          const char *false_keyword);

static void
validate_member(validate_ctx *ctx, const lh_schema_node *node, const json_t *v, const char *key,
                size_t key_len, const char *false_keyword)
{
    size_t old = ctx->pointer.len;
    lh_buf_puts(&ctx->pointer, "/");
    for (size_t k = 0; k < key_len; k++) {
        if (key[k] == '~')
            lh_buf_puts(&ctx->pointer, "~0");
        else if (key[k] == '/')
            lh_buf_puts(&ctx->pointer, "~1");
        else
            lh_buf_append(&ctx->pointer, &key[k], 1);
    }
    validate_node(ctx, node, v, false_keyword);
    ctx->pointer.len = old;
    ctx->pointer.data[old] = '\0';
}

static void
validate_item(validate_ctx *ctx, const lh_schema_node *node, const json_t *v, size_t index,
              const char *false_keyword)
{
    size_t old = ctx->pointer.len;
    lh_buf_printf(&ctx->pointer, "/%zu", index);
    validate_node(ctx, node, v, false_keyword);
    ctx->pointer.len = old;
    ctx->pointer.data[old] = '\0';
}

static void
validate_object(validate_ctx *ctx, const lh_schema_node *node, const json_t *v)
{
    size_t n = json_object_size(v);
    if (node->has_min_props && n < node->min_props)
        report(ctx, "minProperties", "must have at least %zu propert%s", node->min_props,
               node->min_props == 1 ? "y" : "ies");
    if (node->has_max_props && n > node->max_props)
        report(ctx, "maxProperties", "must have at most %zu propert%s", node->max_props,
               node->max_props == 1 ? "y" : "ies");
    for (size_t r = 0; r < node->n_required && !ctx->stop; r++)
        if (json_object_get(v, node->required[r]) == NULL)
            report(ctx, "required", "missing required property '%s'", node->required[r]);
    if (node->n_props == 0 && node->additional == NULL)
        return;
    const char *key;
    size_t key_len;
    json_t *member;
    json_object_keylen_foreach((json_t *)v, key, key_len, member)
    {
        if (ctx->stop)
            return;
        const lh_schema_node *child = NULL;
        for (size_t p = 0; p < node->n_props && child == NULL; p++)
            if (strlen(node->props[p].name) == key_len &&
                memcmp(node->props[p].name, key, key_len) == 0)
                child = node->props[p].schema;
        if (child != NULL)
            validate_member(ctx, child, member, key, key_len, "properties");
        else if (node->additional != NULL)
            validate_member(ctx, node->additional, member, key, key_len, "additionalProperties");
    }
}

static void
validate_array(validate_ctx *ctx, const lh_schema_node *node, const json_t *v)
{
    size_t n = json_array_size(v);
    if (node->has_min_items && n < node->min_items)
        report(ctx, "minItems", "must have at least %zu item%s", node->min_items,
               node->min_items == 1 ? "" : "s");
    if (node->has_max_items && n > node->max_items)
        report(ctx, "maxItems", "must have at most %zu item%s", node->max_items,
               node->max_items == 1 ? "" : "s");
    size_t first, second;
    if (node->unique_items && !ctx->stop && find_duplicate(v, &first, &second))
        report(ctx, "uniqueItems", "must not contain duplicates (items %zu and %zu are equal)",
               first, second);
    for (size_t k = 0; k < n && !ctx->stop; k++) {
        if (k < node->n_prefix_items)
            validate_item(ctx, node->prefix_items[k], json_array_get(v, k), k, "prefixItems");
        else if (node->items != NULL)
            validate_item(ctx, node->items, json_array_get(v, k), k, "items");
        else if (node->n_prefix_items == 0)
            return;
    }
}

static void
validate_node(validate_ctx *ctx, const lh_schema_node *node, const json_t *v,
              const char *false_keyword)
{
    if (ctx->stop)
        return;
    if (node->is_bool) {
        if (!node->bool_value)
            report(ctx, false_keyword, "is not allowed");
        return;
    }
    if (node->types != 0 && !type_matches(node->types, v)) {
        char phrase[128];
        type_phrase(node->types, phrase, sizeof phrase);
        report(ctx, "type", "must be %s", phrase);
        return;
    }
    if (node->enum_values != NULL) {
        bool found = false;
        for (size_t k = 0; k < json_array_size(node->enum_values) && !found; k++)
            found = equal_at(json_array_get(node->enum_values, k), v, 0);
        if (!found) {
            lh_buf list;
            lh_buf_init(&list);
            size_t n = json_array_size(node->enum_values);
            for (size_t k = 0; k < n && k < 8; k++) {
                char one[64];
                describe_value(one, sizeof one, json_array_get(node->enum_values, k));
                lh_buf_printf(&list, "%s%s", k ? ", " : "", one);
            }
            if (n > 8)
                lh_buf_printf(&list, ", ... (%zu values in all)", n);
            report(ctx, "enum", "must be one of %s", n ? list.data : "(none: the enum is empty)");
            lh_buf_free(&list);
        }
    }
    if (node->has_const && !equal_at(node->const_value, v, 0)) {
        char one[64];
        describe_value(one, sizeof one, node->const_value);
        report(ctx, "const", "must be equal to %s", one);
    }
    if (json_is_number(v))
        validate_number(ctx, node, v);
    else if (json_is_string(v))
        validate_string(ctx, node, v);
    else if (json_is_object(v))
        validate_object(ctx, node, v);
    else if (json_is_array(v))
        validate_array(ctx, node, v);
}

/* ---------------------------------------------------------------------------------
 * Public
 * ------------------------------------------------------------------------------- */

bool
lh_schema_validate(const lh_schema *s, const json_t *instance, const char *base, json_t *errors)
{
    validate_ctx ctx = {.errors = json_is_array(errors) ? errors : NULL,
                        .valid = true,
                        .pattern_text_left = LH_SCHEMA_MAX_PATTERN_TEXT};
    lh_buf_init(&ctx.pointer);
    lh_buf_puts(&ctx.pointer, base ? base : "");
    validate_node(&ctx, s->root, instance ? instance : json_null(), "false");
    lh_buf_free(&ctx.pointer);
    return ctx.valid;
}

int
lh_schema_check(const lh_schema *s, const json_t *instance, const char *base, lh_err *err)
{
    json_t *errors = json_array();
    if (lh_schema_validate(s, instance, base, errors)) {
        json_decref(errors);
        return 0;
    }
    size_t n = json_array_size(errors);
    const char *first = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    lh_err_set(err, LH_EINVAL, 400, "invalid_arguments", "%s", first ? first : "invalid");
    lh_buf detail;
    lh_buf_init(&detail);
    for (size_t k = 0; k < n; k++) {
        const char *m = json_string_value(json_object_get(json_array_get(errors, k), "message"));
        size_t room = LH_ERR_TEXT_MAX - 40; /* keep space for the "and N more" tail */
        if (detail.len + strlen(m) + 2 > room) {
            lh_buf_printf(&detail, "%s... and %zu more", k ? "; " : "", n - k);
            break;
        }
        lh_buf_printf(&detail, "%s%s", k ? "; " : "", m);
    }
    lh_err_detail(err, "%s", detail.data ? detail.data : "");
    lh_err_hint(err, "see the tool's input_schema (GET /tools/{name})");
    lh_buf_free(&detail);
    json_decref(errors);
    return LH_EINVAL;
}
