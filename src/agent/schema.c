/*
 * schema.c — compiling a JSON Schema into lh_schema_node trees, and the readers of a
 * compiled schema (properties, redaction).
 *
 * Compilation checks every keyword of every subschema: a keyword outside the supported
 * subset, a value of the wrong type, a pattern POSIX cannot express or a contradiction we
 * can see (a required property that additionalProperties: false forbids) is a 400
 * invalid_schema naming the JSON pointer inside the schema and the keyword. The compiled
 * tree borrows strings and values from a private deep copy of the schema, so it never
 * changes after lh_schema_compile returns and may be read by any number of threads.
 */
#include "agent/schema_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUPPORTED_KEYWORDS                                                                         \
    "type, properties, required, additionalProperties, enum, const, minimum, maximum, "            \
    "exclusiveMinimum, exclusiveMaximum, multipleOf, minLength, maxLength, pattern, "              \
    "format, items, prefixItems, minItems, maxItems, uniqueItems, minProperties, "                 \
    "maxProperties; annotations: title, description, default, examples, $comment, "                \
    "deprecated, readOnly, writeOnly, $schema, $id, x-sensitive"

typedef struct compile_ctx {
    lh_buf pointer; /* base + pointer of the subschema being compiled */
    lh_err *err;
} compile_ctx;

/* ---------------------------------------------------------------------------------
 * Errors and pointers
 * ------------------------------------------------------------------------------- */

static const char *
pointer_text(const compile_ctx *ctx)
{
    return ctx->pointer.len ? ctx->pointer.data : "(root)";
}

static int LH_PRINTF(3, 4) schema_error(compile_ctx *ctx, const char *keyword, const char *fmt, ...)
{
    char what[LH_ERR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    lh_err_set(ctx->err, LH_EINVAL, 400, "invalid_schema", "%s: %s", pointer_text(ctx), what);
    if (keyword != NULL)
        lh_err_detail(ctx->err, "schema pointer '%s', keyword '%s'", pointer_text(ctx), keyword);
    lh_err_hint(ctx->err, "supported keywords: " SUPPORTED_KEYWORDS);
    return LH_EINVAL;
}

/* Append "/<segment>" with ~ and / escaped (RFC 6901); returns the old length. */
static size_t
pointer_push(lh_buf *pointer, const char *segment)
{
    size_t old = pointer->len;
    lh_buf_puts(pointer, "/");
    for (const char *c = segment; *c; c++) {
        if (*c == '~')
            lh_buf_puts(pointer, "~0");
        else if (*c == '/')
            lh_buf_puts(pointer, "~1");
        else
            lh_buf_append(pointer, c, 1);
    }
    return old;
}

static size_t
pointer_push_index(lh_buf *pointer, size_t index)
{
    size_t old = pointer->len;
    lh_buf_printf(pointer, "/%zu", index);
    return old;
}

static void
pointer_pop(lh_buf *pointer, size_t old)
{
    pointer->len = old;
    if (pointer->data)
        pointer->data[old] = '\0';
}

/* ---------------------------------------------------------------------------------
 * Keyword values
 * ------------------------------------------------------------------------------- */

static bool
is_integral(const json_t *v)
{
    if (json_is_integer(v))
        return true;
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    return isfinite(d) && floor(d) == d;
}

static void
num_text(lh_schema_num *num)
{
    if (num->is_int) {
        snprintf(num->text, sizeof num->text, "%" JSON_INTEGER_FORMAT, num->i);
        return;
    }
    /* the shortest of %.15g / %.17g that reads back as the same double */
    snprintf(num->text, sizeof num->text, "%.15g", num->d);
    if (strtod(num->text, NULL) != num->d)
        snprintf(num->text, sizeof num->text, "%.17g", num->d);
}

static int
read_number(compile_ctx *ctx, const json_t *v, const char *keyword, lh_schema_num *out)
{
    if (!json_is_number(v))
        return schema_error(ctx, keyword, "keyword '%s' must be a number", keyword);
    out->present = true;
    out->is_int = json_is_integer(v);
    out->i = out->is_int ? json_integer_value(v) : 0;
    out->d = json_number_value(v);
    num_text(out);
    return 0;
}

/* A non-negative integer (2020-12 allows 2.0); values past SIZE_MAX saturate, which
 * keeps their meaning ("longer than anything we can hold"). */
static int
read_count(compile_ctx *ctx, const json_t *v, const char *keyword, size_t *out)
{
    if (!is_integral(v) || json_number_value(v) < 0)
        return schema_error(ctx, keyword, "keyword '%s' must be a non-negative integer", keyword);
    if (json_is_integer(v))
        *out = (size_t)json_integer_value(v);
    else
        *out = json_real_value(v) >= 1.8e19 ? SIZE_MAX : (size_t)json_real_value(v);
    return 0;
}

static int
read_bool(compile_ctx *ctx, const json_t *v, const char *keyword, bool *out)
{
    if (!json_is_boolean(v))
        return schema_error(ctx, keyword, "keyword '%s' must be true or false", keyword);
    *out = json_is_true(v);
    return 0;
}

static unsigned
type_bit(const char *name)
{
    static const struct {
        const char *name;
        unsigned bit;
    } types[] = {{"null", LH_ST_NULL},    {"boolean", LH_ST_BOOLEAN}, {"object", LH_ST_OBJECT},
                 {"array", LH_ST_ARRAY},  {"number", LH_ST_NUMBER},   {"integer", LH_ST_INTEGER},
                 {"string", LH_ST_STRING}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        if (strcmp(name, types[k].name) == 0)
            return types[k].bit;
    return 0;
}

static int
read_type(compile_ctx *ctx, const json_t *v, unsigned *out)
{
    static const char hint[] = "null, boolean, object, array, number, integer or string";
    unsigned types = 0;
    if (json_is_string(v)) {
        types = type_bit(json_string_value(v));
        if (types == 0)
            return schema_error(ctx, "type", "unknown type '%s' (one of %s)", json_string_value(v),
                                hint);
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        size_t k;
        json_t *t;
        json_array_foreach(v, k, t)
        {
            unsigned bit = json_is_string(t) ? type_bit(json_string_value(t)) : 0;
            if (bit == 0)
                return schema_error(ctx, "type", "type #%zu is not one of %s", k, hint);
            if (types & bit)
                return schema_error(ctx, "type", "type '%s' is listed twice", json_string_value(t));
            types |= bit;
        }
    } else {
        return schema_error(ctx, "type",
                            "keyword 'type' must be a type name or a non-empty "
                            "array of them");
    }
    *out = types;
    return 0;
}

/* ---------------------------------------------------------------------------------
 * Nodes
 * ------------------------------------------------------------------------------- */

static void
node_free(lh_schema_node *node)
{
    if (node == NULL)
        return;
    for (size_t k = 0; k < node->n_props; k++)
        node_free(node->props[k].schema);
    free(node->props);
    free(node->required);
    node_free(node->additional);
    for (size_t k = 0; k < node->n_prefix_items; k++)
        node_free(node->prefix_items[k]);
    free(node->prefix_items);
    node_free(node->items);
    if (node->pattern_source != NULL) {
        regfree(&node->pattern);
        free(node->pattern_source);
    }
    free(node);
}

static int compile_node(compile_ctx *ctx, const json_t *schema, int depth, lh_schema_node **out);

/* Compile the subschema at schema[keyword] (or schema[keyword][index] when index >= 0,
 * or schema[keyword][name] when name is set). */
static int
compile_child(compile_ctx *ctx, const json_t *child, const char *keyword, const char *name,
              long index, int depth, lh_schema_node **out)
{
    size_t old = pointer_push(&ctx->pointer, keyword);
    if (name != NULL)
        pointer_push(&ctx->pointer, name);
    else if (index >= 0)
        pointer_push_index(&ctx->pointer, (size_t)index);
    int rc = compile_node(ctx, child, depth + 1, out);
    if (rc == 0)
        pointer_pop(&ctx->pointer, old);
    return rc; /* on failure the pointer stays, for the caller's message */
}

static int
compile_properties(compile_ctx *ctx, lh_schema_node *node, const json_t *v, int depth)
{
    if (!json_is_object(v))
        return schema_error(ctx, "properties", "keyword 'properties' must be an object");
    node->props = lh_calloc(json_object_size(v), sizeof *node->props);
    const char *name;
    json_t *child;
    json_object_foreach((json_t *)v, name, child)
    {
        lh_schema_prop *prop = &node->props[node->n_props];
        int rc = compile_child(ctx, child, "properties", name, -1, depth, &prop->schema);
        if (rc != 0)
            return rc;
        prop->name = name;
        node->n_props++;
    }
    return 0;
}

static int
compile_required(compile_ctx *ctx, lh_schema_node *node, const json_t *v)
{
    if (!json_is_array(v))
        return schema_error(ctx, "required", "keyword 'required' must be an array of names");
    node->required = lh_calloc(json_array_size(v), sizeof *node->required);
    size_t k;
    json_t *name;
    json_array_foreach(v, k, name)
    {
        if (!json_is_string(name))
            return schema_error(ctx, "required", "required #%zu must be a string", k);
        for (size_t j = 0; j < k; j++)
            if (strcmp(node->required[j], json_string_value(name)) == 0)
                return schema_error(ctx, "required", "'%s' is required twice",
                                    json_string_value(name));
        node->required[node->n_required++] = json_string_value(name);
    }
    return 0;
}

static int
compile_prefix_items(compile_ctx *ctx, lh_schema_node *node, const json_t *v, int depth)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return schema_error(ctx, "prefixItems",
                            "keyword 'prefixItems' must be a non-empty array of schemas");
    node->prefix_items = lh_calloc(json_array_size(v), sizeof *node->prefix_items);
    size_t k;
    json_t *child;
    json_array_foreach(v, k, child)
    {
        int rc =
            compile_child(ctx, child, "prefixItems", NULL, (long)k, depth, &node->prefix_items[k]);
        if (rc != 0)
            return rc;
        node->n_prefix_items++;
    }
    return 0;
}

static int
compile_pattern(compile_ctx *ctx, lh_schema_node *node, const json_t *v)
{
    if (!json_is_string(v))
        return schema_error(ctx, "pattern", "keyword 'pattern' must be a string");
    if (json_string_length(v) > LH_SCHEMA_MAX_PATTERN)
        return schema_error(ctx, "pattern", "pattern is longer than %d bytes",
                            LH_SCHEMA_MAX_PATTERN);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return schema_error(ctx, "pattern", "pattern holds a NUL character");
    char why[256];
    if (lh_schema__regex_compile(json_string_value(v), &node->pattern, why, sizeof why) != 0)
        return schema_error(ctx, "pattern", "pattern is not supported: %s", why);
    node->pattern_source = lh_strdup(json_string_value(v));
    return 0;
}

static int
check_schema_uri(compile_ctx *ctx, const json_t *v)
{
    static const char *const known[] = {
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2020-12/schema#",
        "http://json-schema.org/draft/2020-12/schema",
        "http://json-schema.org/draft/2020-12/schema#",
        "http://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft-07/schema#",
        "https://json-schema.org/draft-07/schema",
    };
    if (json_is_string(v))
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (strcmp(json_string_value(v), known[k]) == 0)
                return 0;
    return schema_error(ctx, "$schema",
                        "keyword '$schema' must name draft 2020-12 "
                        "(https://json-schema.org/draft/2020-12/schema) or draft-07");
}

/* Annotations: accepted, checked for shape, otherwise ignored. 1 when keyword is one. */
static int
compile_annotation(compile_ctx *ctx, const char *keyword, const json_t *v, int *rc)
{
    static const char *const strings[] = {"title", "description", "$comment", "$id"};
    static const char *const booleans[] = {"deprecated", "readOnly", "writeOnly"};
    for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++)
        if (strcmp(keyword, strings[k]) == 0) {
            *rc = json_is_string(v)
                      ? 0
                      : schema_error(ctx, keyword, "keyword '%s' must be a string", keyword);
            return 1;
        }
    for (size_t k = 0; k < sizeof booleans / sizeof booleans[0]; k++)
        if (strcmp(keyword, booleans[k]) == 0) {
            bool ignored;
            *rc = read_bool(ctx, v, keyword, &ignored);
            return 1;
        }
    if (strcmp(keyword, "default") == 0) {
        *rc = 0;
        return 1;
    }
    if (strcmp(keyword, "examples") == 0) {
        *rc = json_is_array(v) ? 0
                               : schema_error(ctx, keyword, "keyword 'examples' must be an array");
        return 1;
    }
    if (strcmp(keyword, "$schema") == 0) {
        *rc = check_schema_uri(ctx, v);
        return 1;
    }
    return 0;
}

/* Keywords whose value is itself read here (not a subschema). */
static int
compile_keyword(compile_ctx *ctx, lh_schema_node *node, const char *keyword, const json_t *v,
                int depth)
{
    int rc = 0;
    if (compile_annotation(ctx, keyword, v, &rc))
        return rc;
    if (strcmp(keyword, "type") == 0)
        return read_type(ctx, v, &node->types);
    if (strcmp(keyword, "x-sensitive") == 0)
        return read_bool(ctx, v, keyword, &node->sensitive);
    if (strcmp(keyword, "enum") == 0) {
        if (!json_is_array(v))
            return schema_error(ctx, keyword, "keyword 'enum' must be an array");
        node->enum_values = v;
        return 0;
    }
    if (strcmp(keyword, "const") == 0) {
        node->const_value = v;
        node->has_const = true;
        return 0;
    }
    if (strcmp(keyword, "minimum") == 0)
        return read_number(ctx, v, keyword, &node->minimum);
    if (strcmp(keyword, "maximum") == 0)
        return read_number(ctx, v, keyword, &node->maximum);
    if (strcmp(keyword, "exclusiveMinimum") == 0)
        return read_number(ctx, v, keyword, &node->exclusive_minimum);
    if (strcmp(keyword, "exclusiveMaximum") == 0)
        return read_number(ctx, v, keyword, &node->exclusive_maximum);
    if (strcmp(keyword, "multipleOf") == 0) {
        rc = read_number(ctx, v, keyword, &node->multiple_of);
        if (rc == 0 && !(node->multiple_of.d > 0))
            return schema_error(ctx, keyword, "keyword 'multipleOf' must be greater than 0");
        return rc;
    }
    if (strcmp(keyword, "minLength") == 0) {
        node->has_min_length = true;
        return read_count(ctx, v, keyword, &node->min_length);
    }
    if (strcmp(keyword, "maxLength") == 0) {
        node->has_max_length = true;
        return read_count(ctx, v, keyword, &node->max_length);
    }
    if (strcmp(keyword, "pattern") == 0)
        return compile_pattern(ctx, node, v);
    if (strcmp(keyword, "format") == 0) {
        if (!json_is_string(v))
            return schema_error(ctx, keyword, "keyword 'format' must be a string");
        node->format = lh_schema__format_kind(json_string_value(v));
        return 0;
    }
    if (strcmp(keyword, "properties") == 0)
        return compile_properties(ctx, node, v, depth);
    if (strcmp(keyword, "required") == 0)
        return compile_required(ctx, node, v);
    if (strcmp(keyword, "additionalProperties") == 0)
        return compile_child(ctx, v, keyword, NULL, -1, depth, &node->additional);
    if (strcmp(keyword, "minProperties") == 0) {
        node->has_min_props = true;
        return read_count(ctx, v, keyword, &node->min_props);
    }
    if (strcmp(keyword, "maxProperties") == 0) {
        node->has_max_props = true;
        return read_count(ctx, v, keyword, &node->max_props);
    }
    if (strcmp(keyword, "items") == 0) {
        if (json_is_array(v))
            return schema_error(ctx, keyword,
                                "keyword 'items' must be a schema (draft 2020-12); "
                                "use 'prefixItems' for a list of per-position schemas");
        return compile_child(ctx, v, keyword, NULL, -1, depth, &node->items);
    }
    if (strcmp(keyword, "prefixItems") == 0)
        return compile_prefix_items(ctx, node, v, depth);
    if (strcmp(keyword, "minItems") == 0) {
        node->has_min_items = true;
        return read_count(ctx, v, keyword, &node->min_items);
    }
    if (strcmp(keyword, "maxItems") == 0) {
        node->has_max_items = true;
        return read_count(ctx, v, keyword, &node->max_items);
    }
    if (strcmp(keyword, "uniqueItems") == 0)
        return read_bool(ctx, v, keyword, &node->unique_items);
    return schema_error(ctx, keyword, "keyword '%s' is not supported", keyword);
}

/* A contradiction we can see: additionalProperties: false and a required name that
 * "properties" does not declare can never validate. */
static int
check_required_declared(compile_ctx *ctx, const lh_schema_node *node)
{
    if (node->additional == NULL || !node->additional->is_bool || node->additional->bool_value)
        return 0;
    for (size_t r = 0; r < node->n_required; r++) {
        bool declared = false;
        for (size_t p = 0; p < node->n_props && !declared; p++)
            declared = strcmp(node->props[p].name, node->required[r]) == 0;
        if (!declared)
            return schema_error(ctx, "required",
                                "required property '%s' is not in 'properties' and "
                                "additionalProperties is false",
                                node->required[r]);
    }
    return 0;
}

static int
compile_node(compile_ctx *ctx, const json_t *schema, int depth, lh_schema_node **out)
{
    if (depth > LH_SCHEMA_MAX_DEPTH)
        return schema_error(ctx, NULL, "schema nested deeper than %d levels", LH_SCHEMA_MAX_DEPTH);
    lh_schema_node *node = lh_calloc(1, sizeof *node);
    int rc = 0;
    if (json_is_boolean(schema)) {
        node->is_bool = true;
        node->bool_value = json_is_true(schema);
    } else if (!json_is_object(schema)) {
        rc = schema_error(ctx, NULL, "a schema must be an object or true/false");
    } else {
        const char *keyword;
        json_t *value;
        json_object_foreach((json_t *)schema, keyword, value)
        {
            if ((rc = compile_keyword(ctx, node, keyword, value, depth)) != 0)
                break;
        }
        if (rc == 0)
            rc = check_required_declared(ctx, node);
    }
    if (rc != 0) {
        node_free(node);
        return rc;
    }
    *out = node;
    return 0;
}

static bool
any_sensitive(const lh_schema_node *node)
{
    if (node == NULL)
        return false;
    if (node->sensitive || any_sensitive(node->additional) || any_sensitive(node->items))
        return true;
    for (size_t k = 0; k < node->n_props; k++)
        if (any_sensitive(node->props[k].schema))
            return true;
    for (size_t k = 0; k < node->n_prefix_items; k++)
        if (any_sensitive(node->prefix_items[k]))
            return true;
    return false;
}

/* ---------------------------------------------------------------------------------
 * Public
 * ------------------------------------------------------------------------------- */

int
lh_schema_compile_at(const json_t *schema, const char *base, lh_schema **out, lh_err *err)
{
    compile_ctx ctx = {.err = err};
    lh_buf_init(&ctx.pointer);
    lh_buf_puts(&ctx.pointer, base ? base : "");
    lh_schema *s = lh_calloc(1, sizeof *s);
    int rc = 0;
    if (schema == NULL) {
        rc = schema_error(&ctx, NULL, "a schema must be an object or true/false");
        goto out;
    }
    /* nodes borrow names and values from a copy nobody else can change */
    s->doc = json_deep_copy(schema);
    if (s->doc == NULL) {
        rc = lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "could not copy the schema");
        goto out;
    }
    if ((rc = compile_node(&ctx, s->doc, 0, &s->root)) != 0)
        goto out;
    s->has_sensitive = any_sensitive(s->root);
    *out = s;
    s = NULL;
out:
    lh_schema_free(s);
    lh_buf_free(&ctx.pointer);
    return rc;
}

int
lh_schema_compile(const json_t *schema, lh_schema **out, lh_err *err)
{
    return lh_schema_compile_at(schema, "", out, err);
}

void
lh_schema_free(lh_schema *s)
{
    if (s == NULL)
        return;
    node_free(s->root);
    json_decref(s->doc);
    free(s);
}

const json_t *
lh_schema_properties(const lh_schema *s)
{
    if (s == NULL || !json_is_object(s->doc))
        return NULL;
    const json_t *props = json_object_get(s->doc, "properties");
    return json_is_object(props) ? props : NULL;
}

const char *
lh_schema_property_type(const lh_schema *s, const char *name)
{
    const json_t *props = lh_schema_properties(s);
    const json_t *prop = props ? json_object_get(props, name) : NULL;
    const json_t *type = json_is_object(prop) ? json_object_get(prop, "type") : NULL;
    if (json_is_string(type))
        return json_string_value(type);
    size_t k;
    json_t *t;
    json_array_foreach(type, k, t)
    {
        if (strcmp(json_string_value(t), "null") != 0)
            return json_string_value(t);
    }
    return NULL;
}

bool
lh_schema_has_sensitive(const lh_schema *s)
{
    return s != NULL && s->has_sensitive;
}

/* ---------------------------------------------------------------------------------
 * Redaction
 * ------------------------------------------------------------------------------- */

static const lh_schema_node *
property_schema(const lh_schema_node *node, const char *name)
{
    for (size_t k = 0; k < node->n_props; k++)
        if (strcmp(node->props[k].name, name) == 0)
            return node->props[k].schema;
    return node->additional;
}

/* Returns new. A value whose schema is not an object schema (or absent) is copied. */
static json_t *
redact(const lh_schema_node *node, const json_t *value)
{
    if (node == NULL || node->is_bool)
        return json_deep_copy(value);
    if (node->sensitive)
        return json_string("[redacted]");
    if (json_is_object(value) && (node->n_props > 0 || node->additional != NULL)) {
        json_t *copy = json_object();
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)value, key, child)
        {
            json_object_set_new(copy, key, redact(property_schema(node, key), child));
        }
        return copy;
    }
    if (json_is_array(value) && (node->n_prefix_items > 0 || node->items != NULL)) {
        json_t *copy = json_array();
        size_t k;
        json_t *child;
        json_array_foreach(value, k, child)
        {
            const lh_schema_node *item =
                k < node->n_prefix_items ? node->prefix_items[k] : node->items;
            json_array_append_new(copy, redact(item, child));
        }
        return copy;
    }
    return json_deep_copy(value);
}

json_t *
lh_schema_redact(const lh_schema *s, const json_t *instance)
{
    if (instance == NULL)
        return NULL;
    if (s == NULL || !s->has_sensitive)
        return json_deep_copy(instance);
    return redact(s->root, instance);
}
