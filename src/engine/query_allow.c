/*
 * query_allow.c — what user SQL may name: datasets, never files.
 *
 * Admission (query_admit.c) makes sure the text is one SELECT; this file checks what that
 * SELECT names, on the engine that runs users' SQL. DuckDB parses the text
 * (json_serialize_sql, a parameter: the text is never spliced into ours) and we walk the
 * tree it gives:
 *
 *   - a table function (FROM f(...)) must be on the allow-list below: functions whose
 *     rows come from their arguments alone. Everything else — read_csv/parquet/json/
 *     text/blob, glob, parquet_*, sniff_csv, query(), duckdb_*(), pragma_*() — is refused,
 *     wherever it appears (CTE, join, subquery, IN list, set operation);
 *   - a table (FROM name) must be a plain name, [catalog.][schema.]name with catalog
 *     memory or temp and schema main: a name with a '.' or '/' ('data.parquet', "x.csv")
 *     would be a replacement scan, DuckDB reading that file. It may not be one of the
 *     system views (duckdb_views, pg_settings, ...), which show paths and settings.
 *     What is left resolves to a dataset view or a CTE of the statement;
 *   - DESCRIBE / SUMMARIZE / SHOW as a table are refused (they read what they name);
 *   - a few scalar functions that report the server's state instead of computing on
 *     their arguments are refused by name (current_setting, json_serialize_plan, ...).
 *     Scalar functions are otherwise free: none of DuckDB's reads a file.
 *
 * A text DuckDB cannot serialize is refused: when it is not a SELECT, with admission's
 * own error. The dataset views themselves are defined by lakehouse (internal SQL) and
 * keep their read_parquet: what a view reads is never the user's choice.
 *
 * The reserved names (lh_engine_reserved_name) come from the same database at open:
 * its catalogs and schemas, its system views, its keywords that only work quoted.
 *
 * Thread safety: the lists are constant; eng->reserved is written once at open.
 */
#include "engine/engine_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Table functions user SQL may call: their rows come from their arguments. */
static const char *const allowed_table_functions[] = {
    "generate_series", "icu_calendar_names", "json_each", "json_tree", "pg_timezone_names", "range",
    "repeat",          "repeat_row",         "unnest",    NULL};

/* Scalar functions (and macros) that report the server's state rather than compute on
 * their arguments: settings and variables, view definitions (they hold file paths), a
 * query's plan (its files), the log; and the keyed hash of masked columns, which would
 * let a reader hash guesses and match them against a masked column. */
static const char *const refused_functions[] = {LH_ENGINE_MASK_HASH_FN,
                                                "current_setting",
                                                "get_block_size",
                                                "getvariable",
                                                "json_execute_serialized_sql",
                                                "json_serialize_plan",
                                                "pg_get_constraintdef",
                                                "pg_get_viewdef",
                                                "write_log",
                                                NULL};

#define ALLOWED_LIST                                                                               \
    "generate_series, icu_calendar_names, json_each, json_tree, pg_timezone_names, range, "        \
    "repeat, repeat_row, unnest"

struct lh_reserved {
    char *name; /* lowercase */
    const char *why;
};

static bool
in_list(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i]; i++)
        if (strcasecmp(list[i], name) == 0)
            return true;
    return false;
}

static const char *
str_of(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static const lh_reserved *find_reserved(const lh_engine *eng, const char *name);

/* ---- refusals ----------------------------------------------------------------------------- */

static int
refuse_table_function(lh_err *err, const char *name)
{
    lh_err_set(err, LH_EPERM, 403, "sql_forbidden",
               "table function '%s' is not available to queries", name);
    lh_err_detail(err, "queries read datasets by name, never files; the table functions they "
                       "may call are " ALLOWED_LIST);
    lh_err_hint(err, "name the dataset instead (GET /catalog/datasets lists them)");
    return LH_EPERM;
}

static int
refuse_function(lh_err *err, const char *name)
{
    lh_err_set(err, LH_EPERM, 403, "sql_forbidden", "function '%s' is not available to queries",
               name);
    lh_err_detail(err, "it shows the server's settings, paths or plans, not data");
    lh_err_hint(err, "query the datasets themselves");
    return LH_EPERM;
}

static int
refuse_table(lh_err *err, const char *shown, const char *why)
{
    lh_err_set(err, LH_EPERM, 403, "sql_forbidden", "'%s' is not a dataset", shown);
    lh_err_detail(err, "%s", why);
    lh_err_hint(err, "name a dataset (GET /catalog/datasets lists them), e.g. FROM orders");
    return LH_EPERM;
}

/* ---- the walk ----------------------------------------------------------------------------- */

/* A name made of letters, digits, '_', '$', ' ', '-' (or non-ASCII letters): nothing a
 * file path or glob needs ('.', '/', '*', ...). */
static bool
plain_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!(isalnum(c) || c == '_' || c == '$' || c == ' ' || c == '-' || c >= 0x80))
            return false;
    }
    return true;
}

static int
check_base_table(const lh_engine *eng, const json_t *ref, json_t *names, lh_err *err)
{
    const char *catalog = str_of(ref, "catalog_name");
    const char *schema = str_of(ref, "schema_name");
    const char *table = str_of(ref, "table_name");
    char lower[LH_NAME_MAX + 1];
    size_t n = strlen(table);
    if (n < sizeof lower) { /* longer ones name no dataset */
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)tolower((unsigned char)table[i]);
        json_array_append_new(names, json_string(lower));
    }
    if (!plain_name(table))
        return refuse_table(err, table,
                            "a quoted file name used as a table would read that file; "
                            "queries read datasets, never files");
    if ((catalog[0] && strcasecmp(catalog, "memory") && strcasecmp(catalog, "temp")) ||
        (schema[0] && strcasecmp(schema, "main"))) {
        char shown[256];
        snprintf(shown, sizeof shown, "%s%s%s%s%s", catalog, catalog[0] ? "." : "", schema,
                 schema[0] ? "." : "", table);
        return refuse_table(err, shown,
                            "datasets live in the main schema; the system catalog "
                            "and its schemas are not available to queries");
    }
    const lh_reserved *r = find_reserved(eng, table);
    if (r && strcmp(r->why, "a system view name") == 0)
        return refuse_table(err, table,
                            "system views show the server's settings and paths, not data");
    return 0;
}

/* A table reference as DuckDB serializes one: "type", "alias" and "sample", and no
 * "class" (which expressions have). */
static bool
is_table_ref(const json_t *obj)
{
    return json_is_object(obj) && json_is_string(json_object_get(obj, "type")) &&
           json_object_get(obj, "alias") && json_object_get(obj, "sample") &&
           !json_object_get(obj, "class");
}

static int
check_table_ref(const lh_engine *eng, const json_t *ref, json_t *names, lh_err *err)
{
    const char *type = str_of(ref, "type");
    if (strcmp(type, "BASE_TABLE") == 0)
        return check_base_table(eng, ref, names, err);
    if (strcmp(type, "TABLE_FUNCTION") == 0) {
        const char *name = str_of(json_object_get(ref, "function"), "function_name");
        return in_list(allowed_table_functions, name) ? 0 : refuse_table_function(err, name);
    }
    if (strcmp(type, "JOIN") == 0 || strcmp(type, "SUBQUERY") == 0 ||
        strcmp(type, "EXPRESSION_LIST") == 0 || strcmp(type, "EMPTY") == 0 ||
        strcmp(type, "PIVOT") == 0)
        return 0; /* their parts are checked by the walk */
    lh_err_set(err, LH_EPERM, 403, "sql_forbidden",
               "DESCRIBE, SUMMARIZE and SHOW are not "
               "available to queries");
    lh_err_detail(err, "table reference of kind %s", type);
    lh_err_hint(err, "GET /catalog/datasets/{name} describes a dataset");
    return LH_EPERM;
}

/* SQL's special names that read the clock (DuckDB parses them as column references). */
static const char *const clock_names[] = {"current_date", "current_time",   "current_timestamp",
                                          "localtime",    "localtimestamp", NULL};

static int
changing_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool
is_changing_function(const lh_engine *eng, const char *name)
{
    char lower[128];
    size_t n = strlen(name);
    if (n >= sizeof lower)
        return false;
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    const char *key = lower;
    return eng->n_changing_fns &&
           bsearch(&key, eng->changing_fns, eng->n_changing_fns, sizeof key, changing_cmp);
}

/* Whether node makes the statement's answer change between runs over the same data: a
 * call of a function whose answer is not fixed by its arguments, a clock name, a sample. */
static bool
changes(const lh_engine *eng, const json_t *node)
{
    const char *cls = str_of(node, "class");
    if (strcmp(cls, "FUNCTION") == 0)
        return is_changing_function(eng, str_of(node, "function_name"));
    if (strcmp(cls, "COLUMN_REF") == 0) {
        const json_t *parts = json_object_get(node, "column_names");
        return json_array_size(parts) == 1 &&
               in_list(clock_names, json_string_value(json_array_get(parts, 0)));
    }
    const json_t *sample = json_object_get(node, "sample");
    return sample && !json_is_null(sample);
}

/* Every node of the tree; depth is bounded by DuckDB's parser (its own recursion limit).
 * The plain table names go to names; *changing is set when a node changes() the answer. */
static int
walk(const lh_engine *eng, const json_t *node, json_t *names, bool *changing, lh_err *err)
{
    if (json_is_array(node)) {
        size_t i;
        const json_t *item;
        json_array_foreach(node, i, item)
        {
            int rc = walk(eng, item, names, changing, err);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    int rc = 0;
    if (!*changing && changes(eng, node))
        *changing = true;
    if (strcmp(str_of(node, "class"), "FUNCTION") == 0) {
        const char *name = str_of(node, "function_name");
        if (in_list(refused_functions, name))
            return refuse_function(err, name);
    } else if (is_table_ref(node) && (rc = check_table_ref(eng, node, names, err)) != 0) {
        return rc;
    }
    /* fail closed: whatever sits where a FROM clause goes must be a table reference */
    const json_t *from = json_object_get(node, "from_table");
    if (from && !json_is_null(from) && !is_table_ref(from)) {
        lh_err_set(err, LH_EPERM, 403, "sql_forbidden", "the query's FROM clause is not allowed");
        lh_err_hint(err, "read datasets by name");
        return LH_EPERM;
    }
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)node, key, value)
    {
        if ((rc = walk(eng, value, names, changing, err)) != 0)
            return rc;
    }
    return 0;
}

#define SERIALIZE_SQL "SELECT json_serialize_sql($1::VARCHAR)"

/* DuckDB's parse tree of sql as JSON (new), or NULL when it gave none. A pooled
 * connection keeps the statement (a third of the check's cost is preparing it). */
static char *
serialize(lh_query *q, const char *sql)
{
    duckdb_prepared_statement own = NULL;
    duckdb_prepared_statement prep =
        q->pooled ? lh_engine__pool_serializer(q->pooled, SERIALIZE_SQL) : NULL;
    duckdb_result r;
    bool have_result = false;
    char *out = NULL;
    if (prep == NULL && !q->pooled && duckdb_prepare(q->con, SERIALIZE_SQL, &own) == DuckDBSuccess)
        prep = own;
    if (prep == NULL || duckdb_bind_varchar(prep, 1, sql) == DuckDBError)
        goto out;
    have_result = true;
    if (duckdb_execute_prepared(prep, &r) == DuckDBError || duckdb_row_count(&r) != 1)
        goto out;
    char *text = duckdb_value_varchar(&r, 0, 0);
    if (text)
        out = lh_strdup(text);
    duckdb_free(text);
out:
    if (have_result)
        duckdb_destroy_result(&r);
    duckdb_destroy_prepare(&own);
    return out;
}

int
lh_engine__admit_names(lh_query *q, const char *sql, lh_err *err)
{
    if (!q->eng->user_sql)
        return 0;
    char *text = serialize(q, sql);
    if (text == NULL && atomic_load(&q->client_gone))
        return lh_engine__gone_error(err);
    if (text == NULL && q->deadline_mono_us > 0 && lh_mono_us() > q->deadline_mono_us)
        /* the watchdog stopped the check itself (a query that waited long for its slot):
         * the time limit, not the statement, is what went wrong */
        return lh_engine__sql_error(err, DUCKDB_ERROR_INTERRUPT, NULL);
    /* reals: DuckDB writes positions up to 2^64-1, past json_int_t */
    json_t *tree = text ? json_loads(text, JSON_DECODE_INT_AS_REAL, NULL) : NULL;
    int rc = 0;
    if (tree == NULL || json_is_true(json_object_get(tree, "error")) ||
        !json_is_array(json_object_get(tree, "statements"))) {
        /* not a SELECT, or not one DuckDB can serialize: say why, or refuse it */
        if ((rc = lh_engine__admit(q, sql, NULL, err)) == 0) {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_sql", "the query could not be checked");
            lh_err_detail(err, "%s", str_of(tree, "error_message"));
            lh_err_hint(err, "write it as a plain SELECT over datasets");
        }
        goto out;
    }
    json_decref(q->names);
    q->names = json_array();
    q->changing = false;
    rc = walk(q->eng, json_object_get(tree, "statements"), q->names, &q->changing, err);
out:
    json_decref(tree);
    free(text);
    return rc;
}

/* Base tables (into tables) and CTE names (into ctes) anywhere in the tree. */
static void
collect_names(const json_t *node, json_t *tables, json_t *ctes)
{
    if (json_is_array(node)) {
        size_t i;
        const json_t *item;
        json_array_foreach(node, i, item) collect_names(item, tables, ctes);
        return;
    }
    if (!json_is_object(node))
        return;
    if (is_table_ref(node) && strcmp(str_of(node, "type"), "BASE_TABLE") == 0)
        json_object_set_new(tables, str_of(node, "table_name"), json_true());
    const json_t *map = json_object_get(json_object_get(node, "cte_map"), "map");
    size_t i;
    const json_t *entry;
    json_array_foreach(map, i, entry)
    {
        const char *key = json_string_value(json_object_get(entry, "key"));
        if (key)
            json_object_set_new(ctes, key, json_true());
    }
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)node, key, value) collect_names(value, tables, ctes);
}

int
lh_engine__names(lh_query *q, const char *sql, json_t **out, lh_err *err)
{
    char *text = serialize(q, sql);
    json_t *tree = text ? json_loads(text, JSON_DECODE_INT_AS_REAL, NULL) : NULL;
    free(text);
    if (tree == NULL || !json_is_array(json_object_get(tree, "statements"))) {
        json_decref(tree);
        return lh_err_set(err, LH_EINVAL, 400, "invalid_sql", "the query could not be parsed");
    }
    json_t *tables = json_object(), *ctes = json_object();
    collect_names(json_object_get(tree, "statements"), tables, ctes);
    json_t *names = json_array();
    const char *name;
    json_t *ignored;
    json_object_foreach(tables, name, ignored)
    {
        if (!json_object_get(ctes, name))
            json_array_append_new(names, json_string(name));
    }
    json_decref(tables);
    json_decref(ctes);
    json_decref(tree);
    *out = names;
    return 0;
}

/* ---- reserved names ----------------------------------------------------------------------- */

static int
reserved_cmp(const void *a, const void *b)
{
    return strcmp(((const lh_reserved *)a)->name, ((const lh_reserved *)b)->name);
}

static const lh_reserved *
find_reserved(const lh_engine *eng, const char *name)
{
    char lower[128];
    size_t n = strlen(name);
    if (n >= sizeof lower || eng->n_reserved == 0)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lh_reserved key = {.name = lower};
    return bsearch(&key, eng->reserved, eng->n_reserved, sizeof key, reserved_cmp);
}

const char *
lh_engine_reserved_name(const lh_engine *eng, const char *name)
{
    const lh_reserved *r = find_reserved(eng, name);
    return r ? r->why : NULL;
}

/* One row per name, the most telling reason first: catalog, schema, system view,
 * keyword. Keywords only when they must be quoted to name a table. */
static const char RESERVED_SQL[] =
    "SELECT name, arg_min(why, rank) FROM ("
    " SELECT lower(database_name) AS name, 1 AS rank FROM duckdb_databases()"
    " UNION ALL SELECT lower(schema_name), 2 FROM duckdb_schemas()"
    " UNION ALL SELECT lower(view_name), 3 FROM duckdb_views() WHERE internal"
    " UNION ALL SELECT lower(keyword_name), 4 FROM duckdb_keywords()"
    "  WHERE keyword_category IN ('reserved', 'type_function')) AS n"
    " JOIN (VALUES (1, 'a catalog name'), (2, 'a schema name'), (3, 'a system view name'),"
    "  (4, 'a reserved SQL keyword')) AS w(rank2, why) ON rank = rank2"
    " GROUP BY name ORDER BY name";

static const char *const reasons[] = {"a catalog name", "a schema name", "a system view name",
                                      "a reserved SQL keyword", NULL};

/* Functions whose answer is not fixed by their arguments, as the database says, and the
 * macros that call one: now(), random(), uuid(), current_schema(), ... */
static const char CHANGING_SQL[] =
    "WITH c AS (SELECT DISTINCT lower(function_name) AS name FROM duckdb_functions()"
    "  WHERE stability IN ('VOLATILE', 'CONSISTENT_WITHIN_QUERY'))"
    " SELECT name FROM c UNION"
    " SELECT DISTINCT lower(f.function_name) FROM duckdb_functions() AS f, c"
    "  WHERE f.function_type = 'macro' AND (contains(lower(f.macro_definition), c.name || '(')"
    "   OR lower(f.function_name) LIKE 'current\\_%' ESCAPE '\\')"
    " ORDER BY 1";

static int
load_changing(lh_engine *eng, duckdb_connection con, lh_err *err)
{
    duckdb_result r;
    if (duckdb_query(con, CHANGING_SQL, &r) == DuckDBError) {
        lh_err_set(err, LH_EIO, 500, "engine_unavailable",
                   "could not read the engine's function list");
        lh_err_detail(err, "%s", duckdb_result_error(&r));
        duckdb_destroy_result(&r);
        return LH_EIO;
    }
    size_t n = (size_t)duckdb_row_count(&r);
    eng->changing_fns = lh_calloc(n ? n : 1, sizeof *eng->changing_fns);
    for (size_t i = 0; i < n; i++) {
        char *name = duckdb_value_varchar(&r, 0, i);
        if (name)
            eng->changing_fns[eng->n_changing_fns++] = lh_strdup(name);
        duckdb_free(name);
    }
    duckdb_destroy_result(&r);
    qsort(eng->changing_fns, eng->n_changing_fns, sizeof *eng->changing_fns, changing_cmp);
    return 0;
}

int
lh_engine__load_reserved(lh_engine *eng, lh_err *err)
{
    duckdb_connection con = NULL;
    duckdb_result r;
    bool have_result = false;
    int rc = 0;
    if (duckdb_connect(eng->db, &con) == DuckDBError) {
        rc = lh_err_set(err, LH_EIO, 500, "engine_unavailable", "could not connect to the engine");
        goto out;
    }
    have_result = true;
    if (duckdb_query(con, RESERVED_SQL, &r) == DuckDBError) {
        rc = lh_err_set(err, LH_EIO, 500, "engine_unavailable",
                        "could not read the engine's reserved names");
        lh_err_detail(err, "%s", duckdb_result_error(&r));
        goto out;
    }
    size_t n = (size_t)duckdb_row_count(&r);
    eng->reserved = lh_calloc(n ? n : 1, sizeof *eng->reserved);
    for (size_t i = 0; i < n; i++) {
        char *name = duckdb_value_varchar(&r, 0, i);
        char *why = duckdb_value_varchar(&r, 1, i);
        const char *reason = reasons[3];
        for (size_t k = 0; reasons[k] && why; k++)
            if (strcmp(reasons[k], why) == 0)
                reason = reasons[k];
        if (name) {
            eng->reserved[eng->n_reserved].name = lh_strdup(name);
            eng->reserved[eng->n_reserved++].why = reason;
        }
        duckdb_free(name);
        duckdb_free(why);
    }
    /* DuckDB's collation is not ours: sort for bsearch with strcmp */
    qsort(eng->reserved, eng->n_reserved, sizeof *eng->reserved, reserved_cmp);
    rc = load_changing(eng, con, err);
out:
    if (have_result)
        duckdb_destroy_result(&r);
    duckdb_disconnect(&con);
    return rc;
}

void
lh_engine__free_reserved(lh_engine *eng)
{
    for (size_t i = 0; i < eng->n_changing_fns; i++)
        free(eng->changing_fns[i]);
    free(eng->changing_fns);
    eng->changing_fns = NULL;
    eng->n_changing_fns = 0;
    for (size_t i = 0; i < eng->n_reserved; i++)
        free(eng->reserved[i].name);
    free(eng->reserved);
    eng->reserved = NULL;
    eng->n_reserved = 0;
}
