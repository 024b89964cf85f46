typedef struct lh_schema lh_schema;
int lh_schema_compile(const json_t *schema, lh_schema **out,
                      lh_err *err); /* 400 invalid_schema naming pointer and keyword */
void lh_schema_free(lh_schema *s);
/* true when valid; else appends {"pointer": "<base>/x", "keyword": "minimum", "message": "<base>/x:
 * must be >= 0"} objects (max 32) to errors (may be NULL) */
bool lh_schema_validate(const lh_schema *s, const json_t *instance, const char *base,
                        json_t *errors);
/* copy (new) with every value whose subschema says "x-sensitive": true replaced by "[redacted]" */
json_t *lh_schema_redact(const lh_schema *s, const json_t *instance);
/* the compiled schema's top-level "properties" object (NULL when none). Borrowed. */
const json_t *lh_schema_properties(const lh_schema *s);
/* 0, or 400 invalid_arguments: message = first error's message, detail = all joined by "; ", hint
 * "see the tool's input_schema (GET /tools/{name})" */
int lh_schema_check(const lh_schema *s, const json_t *instance, const char *base, lh_err *err);
