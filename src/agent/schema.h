/*
 * schema.h — the JSON Schema validator for tool arguments (issue #14).
 *
 * A tool declares an input_schema; every call's arguments are validated against it
 * before anything else happens. No C validator is packaged in Debian, so this is the
 * subset tools need, with draft 2020-12 semantics (README.md lists the keywords and the
 * JSON Schema Test Suite results). Anything outside the subset is refused when the
 * schema is compiled, never silently ignored: a tool cannot declare a rule we would not
 * enforce.
 *
 * A compiled schema is immutable: validating, redacting and reading its properties are
 * thread-safe and need no lock.
 */
#ifndef LH_AGENT_SCHEMA_H
#define LH_AGENT_SCHEMA_H

#include "core/core.h"

#include <stdbool.h>

typedef struct lh_schema lh_schema;

/* Most errors one validation reports (more failures still make it invalid). */
#define LH_SCHEMA_MAX_ERRORS 32
/* Deepest nesting of subschemas a schema may have. */
#define LH_SCHEMA_MAX_DEPTH 32
/* Longest "pattern" accepted, in bytes. */
#define LH_SCHEMA_MAX_PATTERN 1024
/* Most bytes of strings one validation matches against patterns; a string past the
 * budget fails its "pattern" keyword, saying so. Bounds the time a call can cost. */
#define LH_SCHEMA_MAX_PATTERN_TEXT (256 * 1024)

/* Compile a JSON Schema (draft 2020-12 semantics, the subset below). A keyword we do not
 * support, a wrong-typed keyword value (e.g. "minimum": "x"), an invalid regex, or a
 * "required" naming a property absent from "properties" when additionalProperties is false
 * is 400 invalid_schema, the message naming the JSON pointer inside the schema and the keyword,
 * e.g. "/properties/city: keyword 'if' is not supported". Annotations are accepted and ignored:
 * title, description, default, examples, $comment, deprecated, readOnly, writeOnly, $schema (only
 * the 2020-12 / draft-07 URIs), $id; and our own "x-sensitive": true|false. Returns new
 * (lh_schema_free). */
int lh_schema_compile(const json_t *schema, lh_schema **out, lh_err *err);
/* Same, with every schema pointer in error messages prefixed by base (e.g. "/input_schema";
 * NULL or "" for none). Borrows schema (the compiled schema keeps its own copy). */
int lh_schema_compile_at(const json_t *schema, const char *base, lh_schema **out, lh_err *err);
void lh_schema_free(lh_schema *s); /* accepts NULL */

/* Validate instance. Returns true when valid. Otherwise appends to `errors` (a JSON array, may be
 * NULL) at most 32 objects {"pointer": "<base><pointer-into-instance>", "keyword": "minimum",
 * "message": "<base>/min_years: must be >= 0"} in document order; `base` (e.g. "/arguments", may be
 * "") prefixes every pointer. Thread-safe (the compiled schema is read-only). */
bool lh_schema_validate(const lh_schema *s, const json_t *instance, const char *base,
                        json_t *errors);

/* Validate and set err: 0 when valid, else LH_EINVAL 400 invalid_arguments with the first
 * error's message, every message joined by "; " in detail (bounded) and a hint naming
 * GET /tools/{name}. */
int lh_schema_check(const lh_schema *s, const json_t *instance, const char *base, lh_err *err);

/* A copy (new) of instance with every value whose subschema says "x-sensitive": true replaced by
 * the string "[redacted]" (for audit records). */
json_t *lh_schema_redact(const lh_schema *s, const json_t *instance);

/* The top-level property names and their declared types, for callers that map arguments to SQL
 * parameters: the compiled schema's "properties" in declaration order (NULL when none). Borrowed.
 * The object maps each name to its subschema as declared (read "type" from it, or use
 * lh_schema_property_type); valid until lh_schema_free. */
const json_t *lh_schema_properties(const lh_schema *s);
/* The declared type of top-level property `name`: its "type" when a string, else the first
 * non-"null" entry of its "type" array ("integer", "string", ...). NULL when the property
 * is not declared or declares no type. Borrowed; valid until lh_schema_free. */
const char *lh_schema_property_type(const lh_schema *s, const char *name);
/* True when any subschema says "x-sensitive": true. */
bool lh_schema_has_sensitive(const lh_schema *s);

#endif
