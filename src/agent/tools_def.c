/*
 * tools_def.c — validating a tool definition before it is stored: its shape, its input
 * schema, and everything it names against what exists now (datasets, columns, indexes,
 * the parameters its statement or filter uses). Nothing is silently ignored: an unknown
 * field, dataset, column, index, parameter or schema keyword is a 400 naming it.
 *
 * Parameters: a statement or filter names them as $name; each must be a property of the
 * input schema, and each property must be used (by the statement, the filter, the search
 * text, or as a column of a row change) — a property nothing reads would let a caller
 * believe an argument has an effect it does not have. Properties are scalars (string,
 * integer, number, boolean): they are bound as SQL values.
 */
#include "agent/agent_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESCRIPTION_MAX 4096
#define QUERY_MAX 65536
#define MAX_ROWS_LIMIT 10000

static int invalid(lh_err *err, const char *fmt, ...) LH_PRINTF(2, 3);

static int
invalid(lh_err *err, const char *fmt, ...)
{
    char text[LH_ERR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    lh_err_set(err, LH_EINVAL, 400, "invalid_tool", "%s", text);
    lh_err_hint(err, "docs/API.md, \"Tools\", describes a definition");
    return LH_EINVAL;
}

static int
check_fields(const json_t *obj, const char *where, const char *const *known, lh_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, key) == 0;
        if (!ok)
            return invalid(err, "%s: unknown field '%s'", where, key);
    }
    return 0;
}

static bool
in_array(const json_t *arr, const char *s)
{
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        if (json_is_string(x) && strcmp(json_string_value(x), s) == 0)
            return true;
    }
    return false;
}

/* An array of distinct valid names (may be empty unless non_empty). */
static int
check_names(const json_t *arr, const char *where, bool non_empty, lh_err *err)
{
    if (!json_is_array(arr) || (non_empty && json_array_size(arr) == 0))
        return invalid(err, "%s must be an array of %snames", where,
                       non_empty ? "one or more " : "");
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        if (!json_is_string(x) || !lh_name_valid(json_string_value(x)))
            return invalid(err, "%s[%zu] must be a name ([a-z][a-z0-9_]{0,62})", where, i);
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_array_get(arr, j), x))
                return invalid(err, "%s names '%s' twice", where, json_string_value(x));
    }
    return 0;
}

/* The dataset's current manifest (new), or 400 naming it. */
static int
dataset(lh_tools *reg, const char *name, const char *where, json_t **out, lh_err *err)
{
    lh_err ignored;
    if (lh_catalog_get(reg->deps.catalog, name, out, &ignored) == 0 &&
        !json_is_true(json_object_get(*out, "deleted")))
        return 0;
    json_decref(*out);
    *out = NULL;
    invalid(err, "%s names dataset '%s', which does not exist", where, name);
    lh_err_hint(err, "GET /catalog/datasets lists the datasets");
    return LH_EINVAL;
}

static bool
has_column(const json_t *manifest, const char *column)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(manifest, "columns"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), column) == 0)
            return true;
    }
    return false;
}

static int
check_columns(const json_t *manifest, const json_t *columns, const char *where, lh_err *err)
{
    size_t i;
    json_t *c;
    json_array_foreach(columns, i, c)
    {
        if (!has_column(manifest, json_string_value(c)))
            return invalid(err, "%s[%zu]: dataset '%s' has no column '%s'", where, i,
                           json_string_value(json_object_get(manifest, "name")),
                           json_string_value(c));
    }
    return 0;
}

/* ---- the input schema ------------------------------------------------------------------- */

static int
check_schema(const json_t *schema, lh_err *err)
{
    if (!json_is_object(schema))
        return invalid(err, "input_schema must be a JSON Schema object");
    lh_schema *compiled = NULL;
    int rc = lh_schema_compile_at(schema, "/input_schema", &compiled, err);
    lh_schema_free(compiled);
    if (rc != 0)
        return rc;
    const json_t *type = json_object_get(schema, "type");
    if (!json_is_string(type) || strcmp(json_string_value(type), "object") != 0)
        return invalid(err, "input_schema: type must be \"object\" (arguments are an object)");
    const json_t *props = json_object_get(schema, "properties");
    if (props && !json_is_object(props))
        return invalid(err, "input_schema: properties must be an object");
    const char *name;
    json_t *p;
    json_object_foreach((json_t *)props, name, p)
    {
        const char *t = json_string_value(json_object_get(p, "type"));
        if (!lh_name_valid(name))
            return invalid(err,
                           "input_schema: property '%.64s' must be a name "
                           "([a-z][a-z0-9_]{0,62}): it is bound as $%.64s",
                           name, name);
        if (!t || !(strcmp(t, "string") == 0 || strcmp(t, "integer") == 0 ||
                    strcmp(t, "number") == 0 || strcmp(t, "boolean") == 0))
            return invalid(err,
                           "input_schema: property '%s' must have type string, integer, "
                           "number or boolean (it is bound as an SQL value)",
                           name);
    }
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(schema, "required"), i, r)
    {
        if (!json_object_get(props, json_string_value(r)))
            return invalid(err, "input_schema: required names '%s', which is not a property",
                           json_string_value(r));
    }
    return 0;
}

/* Every $param in params is a property; every property is in used. */
static int
check_params(const json_t *props, const json_t *params, const json_t *used, const char *where,
             lh_err *err)
{
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p)
    {
        if (!json_object_get(props, json_string_value(p))) {
            invalid(err, "%s uses parameter $%s, which input_schema does not declare", where,
                    json_string_value(p));
            lh_err_hint(err, "add \"%s\" to input_schema.properties", json_string_value(p));
            return LH_EINVAL;
        }
    }
    const char *name;
    json_t *ignored;
    json_object_foreach((json_t *)props, name, ignored)
    {
        if (!in_array(used, name)) {
            invalid(err, "input_schema declares '%s', which the tool never uses", name);
            lh_err_hint(err, "remove it, or use it as $%s", name);
            return LH_EINVAL;
        }
    }
    return 0;
}

/* ---- kinds -------------------------------------------------------------------------------- */

/* Describe sql and check it reads only `datasets`; *params (new) its parameters. */
static int
describe(lh_tools *reg, const char *sql, const json_t *datasets, const char *where, json_t **params,
         lh_err *err)
{
    json_t *d = NULL;
    lh_err why;
    if (lh_engine_describe(reg->deps.engine, sql, &d, &why) != 0) {
        /* DuckDB's first line says what is wrong ("Referenced column ... not found") */
        char first[200];
        snprintf(first, sizeof first, "%s", why.detail[0] ? why.detail : why.message);
        first[strcspn(first, "\n")] = '\0';
        lh_err_set(err, why.rc, why.http_status == 403 ? 403 : 400,
                   why.http_status == 403 ? why.code : "invalid_tool", "%s is not valid: %s", where,
                   first);
        lh_err_detail(err, "%s", why.detail);
        lh_err_hint(err, "%s", why.hint);
        return why.rc ? why.rc : LH_EINVAL;
    }
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(d, "tables"), i, t)
    {
        if (!in_array(datasets, json_string_value(t))) {
            invalid(err, "%s reads '%s', which the tool does not declare", where,
                    json_string_value(t));
            lh_err_hint(err, "declare every dataset the tool reads in binding.datasets");
            json_decref(d);
            return LH_EINVAL;
        }
    }
    *params = json_incref(json_object_get(d, "params"));
    json_decref(d);
    return 0;
}

static int
check_sql(lh_tools *reg, json_t *b, const json_t *props, json_t *derived, lh_err *err)
{
    static const char *const known[] = {"datasets", "query", "max_rows", NULL};
    const json_t *datasets = json_object_get(b, "datasets");
    const json_t *query = json_object_get(b, "query");
    const json_t *max_rows = json_object_get(b, "max_rows");
    json_t *m = NULL, *params = NULL;
    int rc = check_fields(b, "binding", known, err);
    if (rc == 0)
        rc = check_names(datasets, "binding.datasets", true, err);
    if (rc == 0 && (!json_is_string(query) || json_string_length(query) == 0 ||
                    json_string_length(query) > QUERY_MAX ||
                    strlen(json_string_value(query)) != json_string_length(query)))
        rc = invalid(err, "binding.query must be one SELECT of at most %d bytes", QUERY_MAX);
    if (rc == 0 && max_rows &&
        (!json_is_integer(max_rows) || json_integer_value(max_rows) < 1 ||
         json_integer_value(max_rows) > MAX_ROWS_LIMIT))
        rc = invalid(err, "binding.max_rows must be an integer from 1 to %d", MAX_ROWS_LIMIT);
    if (rc == 0 && !max_rows)
        json_object_set_new(b, "max_rows", json_integer(100));
    size_t i;
    json_t *d;
    json_array_foreach(datasets, i, d)
    {
        if (rc == 0)
            rc = dataset(reg, json_string_value(d), "binding.datasets", &m, err);
        json_decref(m);
        m = NULL;
    }
    if (rc == 0)
        rc = describe(reg, json_string_value(query), datasets, "binding.query", &params, err);
    if (rc == 0)
        rc = check_params(props, params, params, "binding.query", err);
    if (rc == 0) {
        json_object_set(derived, "datasets", (json_t *)datasets);
        json_object_set(derived, "params", params);
    }
    json_decref(params);
    return rc;
}

static int
check_search(lh_tools *reg, json_t *b, const json_t *props, json_t *derived, lh_err *err)
{
    static const char *const known[] = {"index",   "query_param", "k",      "filter", "include",
                                        "profile", "mode",        "hybrid", NULL};
    const json_t *index = json_object_get(b, "index"), *qp = json_object_get(b, "query_param");
    const json_t *k = json_object_get(b, "k"), *filter = json_object_get(b, "filter");
    const json_t *include = json_object_get(b, "include");
    char ds[LH_NAME_MAX] = "";
    json_t *m = NULL, *params = json_array(), *used = NULL, *datasets = NULL;
    int rc = check_fields(b, "binding", known, err);
    if (rc == 0 && !json_is_string(index))
        rc = invalid(err, "binding.index must name a vector index");
    if (rc == 0 &&
        !lh_vectors_dataset_of(reg->deps.vectors, json_string_value(index), ds, sizeof ds)) {
        rc = invalid(err, "binding.index names index '%s', which does not exist",
                     json_string_value(index));
        lh_err_hint(err, "GET /vectors/indexes lists the indexes");
    }
    if (rc == 0 && (!json_is_string(qp) || !json_object_get(props, json_string_value(qp)) ||
                    strcmp(json_string_value(json_object_get(
                               json_object_get(props, json_string_value(qp)), "type")),
                           "string") != 0))
        rc = invalid(err, "binding.query_param must name a string property of input_schema (the "
                          "text searched for)");
    const json_t *profile = json_object_get(b, "profile");
    if (rc == 0 && profile && !json_is_boolean(profile))
        rc = invalid(err, "binding.profile must be true (a caller whose profile binds the "
                          "index's dataset searches the profile's index) or false");
    int64_t max_k = lh_config_int(reg->deps.config, "vector.max_k");
    if (rc == 0 && k &&
        (!json_is_integer(k) || json_integer_value(k) < 1 || json_integer_value(k) > max_k))
        rc = invalid(err, "binding.k must be an integer from 1 to %lld", (long long)max_k);
    if (rc == 0 && !k)
        json_object_set_new(b, "k", json_integer(10));
    if (rc == 0) { /* the search's own rules for mode and hybrid */
        lh_vsearch s = {.index = NULL};
        lh_vhybrid h;
        if (lh_vsearch_options(json_object_get(b, "mode"), json_object_get(b, "hybrid"), &s, &h,
                               err) != 0)
            rc = invalid(err, "binding: %s", err->message);
    }
    if (rc == 0 && include)
        rc = check_names(include, "binding.include", false, err);
    if (rc == 0)
        rc = dataset(reg, ds, "binding.index", &m, err);
    if (rc == 0 && include)
        rc = check_columns(m, include, "binding.include", err);
    datasets = json_pack("[s]", ds);
    if (rc == 0 && filter) {
        if (!json_is_string(filter) || json_string_length(filter) == 0 ||
            json_string_length(filter) > QUERY_MAX ||
            strlen(json_string_value(filter)) != json_string_length(filter)) {
            rc = invalid(err, "binding.filter must be an SQL condition over dataset '%s'", ds);
        } else {
            lh_buf sql;
            lh_buf_init(&sql);
            lh_buf_puts(&sql, "SELECT 1 FROM ");
            lh_sql_ident(&sql, ds);
            lh_buf_printf(&sql, " WHERE (\n%s\n)", json_string_value(filter));
            json_decref(params);
            params = NULL;
            rc = describe(reg, sql.data, datasets, "binding.filter", &params, err);
            lh_buf_free(&sql);
        }
    }
    if (rc == 0) {
        used = json_deep_copy(params);
        json_array_append(used, (json_t *)qp);
        rc = check_params(props, params, used, "binding.filter", err);
    }
    if (rc == 0) {
        json_object_set(derived, "datasets", datasets);
        json_object_set(derived, "params", params);
    }
    json_decref(m);
    json_decref(params);
    json_decref(used);
    json_decref(datasets);
    return rc;
}

/* A dataset a reference points at: exists, one-column primary key. */
static int
check_reference(lh_tools *reg, const char *column, const json_t *target, json_t *datasets,
                lh_err *err)
{
    if (!json_is_string(target))
        return invalid(err, "binding.references.%s must name a dataset", column);
    json_t *m = NULL;
    int rc = dataset(reg, json_string_value(target), "binding.references", &m, err);
    const json_t *pk = json_object_get(json_object_get(m, "metadata"), "primary_key");
    if (rc == 0 && json_array_size(pk) != 1)
        rc = invalid(err, "binding.references.%s: dataset '%s' needs a one-column primary key",
                     column, json_string_value(target));
    if (rc == 0 && !in_array(datasets, json_string_value(target)))
        json_array_append(datasets, (json_t *)target);
    json_decref(m);
    return rc;
}

static int
check_change(lh_tools *reg, lh_tool_kind kind, json_t *b, const json_t *schema, json_t *derived,
             lh_err *err)
{
    static const char *const upsert_known[] = {"dataset", "columns", "create_missing", NULL};
    static const char *const insert_known[] = {"dataset", "columns", "references", NULL};
    const json_t *props = json_object_get(schema, "properties");
    const json_t *required = json_object_get(schema, "required");
    const json_t *ds = json_object_get(b, "dataset"), *columns = json_object_get(b, "columns");
    const json_t *refs = json_object_get(b, "references");
    const json_t *create = json_object_get(b, "create_missing");
    json_t *m = NULL, *used = NULL, *datasets = NULL;
    int rc = check_fields(b, "binding", kind == LH_TOOL_UPSERT ? upsert_known : insert_known, err);
    if (rc == 0 && !json_is_string(ds))
        rc = invalid(err, "binding.dataset must name the dataset the tool changes");
    if (rc == 0)
        rc = check_names(columns, "binding.columns", true, err);
    if (rc == 0 && create && !json_is_boolean(create))
        rc = invalid(err, "binding.create_missing must be true or false");
    if (rc == 0 && kind == LH_TOOL_UPSERT && !create)
        json_object_set_new(b, "create_missing", json_false());
    if (rc == 0)
        rc = dataset(reg, json_string_value(ds), "binding.dataset", &m, err);
    if (rc == 0)
        rc = check_columns(m, columns, "binding.columns", err);
    const json_t *pk = json_object_get(json_object_get(m, "metadata"), "primary_key");
    if (rc == 0 && json_array_size(pk) == 0)
        rc = invalid(err, "dataset '%s' has no primary key; row changes need one",
                     json_string_value(ds));
    used = json_deep_copy(columns);
    size_t i;
    json_t *key;
    json_array_foreach(pk, i, key)
    {
        if (rc == 0 && kind == LH_TOOL_INSERT && !in_array(columns, json_string_value(key)))
            rc = invalid(err, "binding.columns must include the primary key column '%s'",
                         json_string_value(key));
        if (rc == 0 && !in_array(required, json_string_value(key)))
            rc = invalid(err, "input_schema must require the primary key column '%s'",
                         json_string_value(key));
        if (!in_array(used, json_string_value(key)))
            json_array_append(used, key);
    }
    datasets = json_pack("[O]", ds);
    if (rc == 0 && refs) {
        if (!json_is_object(refs))
            rc = invalid(err, "binding.references must map columns to datasets");
        const char *col;
        json_t *target;
        json_object_foreach((json_t *)refs, col, target)
        {
            if (rc == 0 && !in_array(columns, col))
                rc = invalid(err,
                             "binding.references names '%s', which is not in "
                             "binding.columns",
                             col);
            if (rc == 0)
                rc = check_reference(reg, col, target, datasets, err);
        }
    }
    /* the arguments are the row: every property a column the tool may set, every column
     * a property */
    if (rc == 0)
        rc = check_params(props, used, used, "binding.columns", err);
    if (rc == 0) {
        json_object_set(derived, "datasets", datasets);
        json_object_set_new(derived, "params", json_array());
    }
    json_decref(m);
    json_decref(used);
    json_decref(datasets);
    return rc;
}

/* ---- the definition ---------------------------------------------------------------------- */

static int
check_allow(json_t *def, lh_err *err)
{
    static const char *const known[] = {"roles", "principals", NULL};
    const json_t *allow = json_object_get(def, "allow");
    if (!json_is_object(allow))
        return invalid(err, "allow must be an object: {\"roles\": [...], \"principals\": [...]}");
    int rc = check_fields(allow, "allow", known, err);
    const json_t *roles = json_object_get(allow, "roles");
    const json_t *principals = json_object_get(allow, "principals");
    if (rc == 0 && roles && !json_is_array(roles))
        rc = invalid(err, "allow.roles must be an array of role names");
    size_t i;
    json_t *x;
    json_array_foreach(roles, i, x)
    {
        if (rc == 0 && (!json_is_string(x) || lh_role_bit(json_string_value(x)) == 0))
            rc = invalid(err, "allow.roles[%zu] must be admin, writer, reader or agent", i);
    }
    if (rc == 0 && principals && !json_is_array(principals))
        rc = invalid(err, "allow.principals must be an array of principal names");
    json_array_foreach(principals, i, x)
    {
        if (rc == 0 &&
            (!json_is_string(x) || json_string_length(x) == 0 || json_string_length(x) > 64))
            rc = invalid(err, "allow.principals[%zu] must be a principal's name", i);
    }
    return rc;
}

static int
check_rate(json_t *def, lh_err *err)
{
    json_t *rate = json_object_get(def, "rate");
    if (!rate) {
        json_object_set_new(def, "rate", json_pack("{s:i, s:i}", "per_minute", 60, "burst", 10));
        return 0;
    }
    static const char *const known[] = {"per_minute", "burst", NULL};
    const json_t *pm = json_object_get(rate, "per_minute"), *burst = json_object_get(rate, "burst");
    int rc = json_is_object(rate) ? check_fields(rate, "rate", known, err)
                                  : invalid(err, "rate must be {\"per_minute\", \"burst\"}");
    if (rc == 0 &&
        (!json_is_number(pm) || json_number_value(pm) <= 0 || json_number_value(pm) > 1e7))
        rc = invalid(err, "rate.per_minute must be a number above 0 (at most 10000000)");
    if (rc == 0 && burst &&
        (!json_is_integer(burst) || json_integer_value(burst) < 1 ||
         json_integer_value(burst) > 1000000))
        rc = invalid(err, "rate.burst must be an integer from 1 to 1000000");
    if (rc == 0 && !burst)
        json_object_set_new(rate, "burst", json_integer(1));
    return rc;
}

int
lh_agent__def_check(lh_tools *reg, const char *name, json_t *def, json_t **derived, lh_err *err)
{
    static const char *const known[] = {"name",  "description", "input_schema", "kind", "binding",
                                        "allow", "rate",        "grants_write", NULL};
    if (!json_is_object(def))
        return invalid(err, "a tool definition must be a JSON object");
    int rc = check_fields(def, "the definition", known, err);
    if (rc != 0)
        return rc;
    const json_t *given = json_object_get(def, "name");
    if (given && (!json_is_string(given) || strcmp(json_string_value(given), name) != 0))
        return invalid(err, "name '%s' differs from the tool named in the path ('%s')",
                       json_is_string(given) ? json_string_value(given) : "?", name);
    const json_t *desc = json_object_get(def, "description");
    if (!json_is_string(desc) || json_string_length(desc) == 0 ||
        json_string_length(desc) > DESCRIPTION_MAX)
        return invalid(err,
                       "description must be a non-empty string of at most %d bytes (agents "
                       "choose tools by it)",
                       DESCRIPTION_MAX);
    const json_t *schema = json_object_get(def, "input_schema");
    if ((rc = check_schema(schema, err)) != 0 || (rc = check_allow(def, err)) != 0 ||
        (rc = check_rate(def, err)) != 0)
        return rc;
    const json_t *gw = json_object_get(def, "grants_write");
    if (gw && !json_is_boolean(gw))
        return invalid(err, "grants_write must be true or false");
    if (!gw)
        json_object_set_new(def, "grants_write", json_false());
    const char *kind = json_string_value(json_object_get(def, "kind"));
    json_t *binding = json_object_get(def, "binding");
    if (!kind)
        return invalid(err, "kind must be one of sql, search, upsert, insert");
    if (!json_is_object(binding))
        return invalid(err, "binding must be an object describing what a %s tool does", kind);
    const json_t *props = json_object_get(schema, "properties");
    json_t *out = json_object();
    if (strcmp(kind, "sql") == 0)
        rc = check_sql(reg, binding, props, out, err);
    else if (strcmp(kind, "search") == 0)
        rc = check_search(reg, binding, props, out, err);
    else if (strcmp(kind, "upsert") == 0)
        rc = check_change(reg, LH_TOOL_UPSERT, binding, schema, out, err);
    else if (strcmp(kind, "insert") == 0)
        rc = check_change(reg, LH_TOOL_INSERT, binding, schema, out, err);
    else if (strcmp(kind, "builtin") == 0)
        rc = invalid(err, "kind 'builtin' is reserved for the server's own tools (ws_create, "
                          "ws_note, ws_shortlist_add, ws_run_query, ws_brief, ws_handoff)");
    else
        rc = invalid(err, "kind '%.64s' is not one of sql, search, upsert, insert", kind);
    if (rc != 0) {
        json_decref(out);
        return rc;
    }
    *derived = out;
    return 0;
}
