/*
 * schema_int.h — the compiled form of a JSON Schema, shared by the files of the
 * validator (schema.c compiles, schema_validate.c validates, schema_regex.c translates
 * patterns, schema_format.c checks formats). Nothing outside src/agent/schema*.c sees it.
 *
 * A compiled node is immutable once lh_schema_compile returns; every reader is lock-free.
 */
#ifndef LH_AGENT_SCHEMA_INT_H
#define LH_AGENT_SCHEMA_INT_H

#include "agent/schema.h"

#include <regex.h>
#include <stddef.h>

/* Bits of lh_schema_node.types; 0 means "any type". */
enum {
    LH_ST_NULL = 1 << 0,
    LH_ST_BOOLEAN = 1 << 1,
    LH_ST_OBJECT = 1 << 2,
    LH_ST_ARRAY = 1 << 3,
    LH_ST_NUMBER = 1 << 4,
    LH_ST_INTEGER = 1 << 5, /* a number with no fractional part (1.0 is one) */
    LH_ST_STRING = 1 << 6,
};

typedef enum lh_schema_format {
    LH_SF_NONE = 0, /* absent, or a format we treat as an annotation */
    LH_SF_DATE,
    LH_SF_DATE_TIME,
    LH_SF_EMAIL,
    LH_SF_UUID,
} lh_schema_format;

/* A numeric keyword value, kept exact: integers compare as integers. text is how error
 * messages spell it. */
typedef struct lh_schema_num {
    bool present;
    bool is_int;
    json_int_t i;
    double d;
    char text[40];
} lh_schema_num;

typedef struct lh_schema_node lh_schema_node;

typedef struct lh_schema_prop {
    const char *name; /* borrowed from the schema copy held by lh_schema */
    lh_schema_node *schema;
} lh_schema_prop;

struct lh_schema_node {
    /* A boolean schema: true accepts everything, false nothing. */
    bool is_bool;
    bool bool_value;
    bool sensitive; /* "x-sensitive": true */
    unsigned types; /* LH_ST_* bits; 0 = any */

    const json_t *enum_values; /* borrowed array, NULL when absent */
    const json_t *const_value; /* borrowed, NULL when absent (a JSON null is json_null()) */
    bool has_const;

    lh_schema_num minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;

    bool has_min_length, has_max_length;
    size_t min_length, max_length; /* in code points */
    char *pattern_source;          /* the pattern as declared; NULL when absent */
    regex_t pattern;               /* compiled translation, valid when pattern_source */
    lh_schema_format format;

    /* objects */
    lh_schema_prop *props; /* in declaration order */
    size_t n_props;
    const char **required; /* borrowed names */
    size_t n_required;
    lh_schema_node *additional; /* NULL: any additional property is allowed */
    bool has_min_props, has_max_props;
    size_t min_props, max_props;

    /* arrays */
    lh_schema_node **prefix_items;
    size_t n_prefix_items;
    lh_schema_node *items; /* for items after prefixItems; NULL: anything */
    bool has_min_items, has_max_items, unique_items;
    size_t min_items, max_items;
};

struct lh_schema {
    json_t *doc; /* our own deep copy of the declared schema; nodes borrow from it */
    lh_schema_node *root;
    bool has_sensitive;
};

/* ---- schema_regex.c: ECMA-262 patterns on POSIX regex ---- */

/* Translate an ECMA-262 pattern into a POSIX extended regex and compile it into *out
 * (regfree when done). 0, or LH_EINVAL with a short reason in why (what construct is not
 * supported, or regcomp's own message). */
int lh_schema__regex_compile(const char *pattern, regex_t *out, char *why, size_t why_size);
/* Whether the pattern matches anywhere in text (len bytes; may hold NUL). */
bool lh_schema__regex_search(const regex_t *re, const char *text, size_t len);

/* ---- schema_format.c ---- */

/* LH_SF_* for a "format" value; LH_SF_NONE for formats only annotated. */
lh_schema_format lh_schema__format_kind(const char *name);
/* Whether text (len bytes) is valid for format kind. */
bool lh_schema__format_check(lh_schema_format kind, const char *text, size_t len);
/* The format's name and an example, for messages. */
const char *lh_schema__format_describe(lh_schema_format kind);

/* ---- schema_validate.c ---- */

/* Deep JSON equality: numbers compare by value (1 == 1.0), object key order is irrelevant. */
bool lh_schema__json_equal(const json_t *a, const json_t *b);

#endif
