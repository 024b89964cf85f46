/*
 * asof.c — time travel for a query: the temporary views that make one query see datasets
 * as they were at a version or a time. Every door (HTTP, and later gRPC and MCP) asks for
 * them through lh_catalog_as_of and runs them first on the query's own connection.
 *
 * Which datasets a query reads is asked of DuckDB's parser (json_serialize_sql lists
 * every table a SELECT names, in subqueries and CTEs too), so a dataset named only in a
 * string or an alias is not pinned, and there is no limit on how many are. Statements
 * the serializer does not support (PIVOT) fall back to the datasets whose names appear
 * as words of the text; text that does not parse gets no views (admission refuses it).
 *
 * Thread safety: the result is owned by one caller; building it takes the catalog lock
 * only to look names up.
 */
#include "catalog/catalog_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pinned {
    char **paths; /* lh_catalog_pin_rows */
    size_t n;
} pinned;

struct lh_as_of_views {
    lh_catalog *cat;
    char **sql; /* CREATE TEMP VIEW statements */
    pinned *pins;
    size_t n, cap;
};

void
lh_catalog_as_of_free(lh_as_of_views *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++) {
        lh_catalog_unpin_rows(v->cat, v->pins[i].paths, v->pins[i].n);
        free(v->sql[i]);
    }
    free(v->pins);
    free(v->sql);
    free(v);
}

const char *const *
lh_as_of_views_sql(const lh_as_of_views *v, size_t *n)
{
    *n = v->n;
    return (const char *const *)v->sql;
}

/* One point in time: {"version": N} or {"timestamp": "..."}; 400 naming `what`. The
 * timestamp borrows from j. */
static int
parse_point(const json_t *j, const char *what, lh_as_of *at, lh_err *err)
{
    const json_t *v = json_object_get(j, "version"), *t = json_object_get(j, "timestamp");
    if (!json_is_object(j) || (v == NULL) == (t == NULL) || json_object_size(j) != 1 ||
        (v && (!json_is_integer(v) || json_integer_value(v) < 1)) || (t && !json_is_string(t)))
        return lh_err_set(
            err, LH_EINVAL, 400, "invalid_parameter",
            "%s must be {\"version\": N} or {\"timestamp\": \"2026-03-01T09:00:00Z\"}", what);
    at->version = v ? json_integer_value(v) : 0;
    at->timestamp = t ? json_string_value(t) : NULL;
    return 0;
}

/* ---- which datasets the query reads ------------------------------------------------------ */

/* Every table name in a serialized parse tree (names: a set, lowercased). */
static void
collect_tables(const json_t *node, json_t *names)
{
    const char *key;
    size_t i;
    json_t *v;
    if (json_is_object(node)) {
        const char *table = json_string_value(json_object_get(node, "table_name"));
        if (table && strcmp(str_of(node, "type"), "BASE_TABLE") == 0) {
            char lower[LH_NAME_MAX];
            size_t n = 0;
            for (; table[n] && n + 1 < sizeof lower; n++)
                lower[n] = (char)tolower((unsigned char)table[n]);
            lower[n] = '\0';
            if (table[n] == '\0')
                json_object_set_new(names, lower, json_true());
        }
        json_object_foreach((json_t *)node, key, v) collect_tables(v, names);
    } else if (json_is_array(node)) {
        json_array_foreach(node, i, v) collect_tables(v, names);
    }
}

/* The names of the tables sql reads, as DuckDB's parser sees them, into names (a set).
 * *parsed is false when the serializer does not support the statement. */
static int
tables_read(lh_catalog *c, const char *sql, json_t *names, bool *parsed, lh_err *err)
{
    lh_buf q;
    json_t *rows = NULL, *tree = NULL;
    lh_buf_init(&q);
    lh_buf_puts(&q, "SELECT CAST(json_serialize_sql(");
    lh_sql_quote(&q, sql);
    lh_buf_puts(&q, ") AS VARCHAR) AS tree");
    int rc = lh_engine_rows(c->engine, q.data, &rows, err);
    if (rc != 0)
        goto out;
    tree = json_loads(str_of(json_array_get(rows, 0), "tree"), 0, NULL);
    *parsed = json_is_false(json_object_get(tree, "error"));
    if (*parsed)
        collect_tables(json_object_get(tree, "statements"), names);
    else if (strcmp(str_of(tree, "error_type"), "parser") == 0)
        *parsed = true; /* not SQL at all: no views, and admission says why */
out:
    json_decref(tree);
    json_decref(rows);
    lh_buf_free(&q);
    return rc;
}

/* The live datasets among names, or (when the parser could not tell) those whose names
 * sql mentions; each not already in points gets the point `all`. */
static void
add_global(lh_catalog *c, const char *sql, const json_t *names, bool parsed, const lh_as_of *all,
           json_t *points, lh_as_of **ats, size_t *n_ats)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        const dataset *ds = c->items[i];
        if (ds->manifest == NULL || strcmp(str_of(ds->manifest, "state"), "live") != 0 ||
            json_object_get(points, ds->name))
            continue;
        if (parsed ? json_object_get(names, ds->name) == NULL : !lh_sql_mentions(sql, ds->name))
            continue;
        *ats = lh_realloc(*ats, (*n_ats + 1) * sizeof **ats);
        (*ats)[*n_ats] = *all;
        json_object_set_new(points, ds->name, json_integer((json_int_t)(*n_ats)++));
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- the views --------------------------------------------------------------------------- */

/* The rows of version m of dataset `name` as a reader of `clearance` sees them: the
 * column levels and masks in force now govern every version (a column marked pii today
 * is masked in last year's rows too), over the columns that version has. NULL: nothing
 * to mask. */
static char *
masked_rows(lh_catalog *c, const char *name, const json_t *m, int clearance, const char *rows)
{
    if (clearance <= 0 || clearance >= LH_LEVEL_PII)
        return NULL;
    json_t *rules = json_deep_copy(m), *cur = NULL;
    lh_err ignored;
    json_t *md = json_object_get(rules, "metadata");
    if (lh_catalog_get(c, name, &cur, &ignored) == 0 && json_is_object(md)) {
        const json_t *now = json_object_get(cur, "metadata");
        static const char *const keys[] = {"columns", "sensitivity", NULL};
        for (const char *const *k = keys; *k; k++)
            if (json_object_get(now, *k))
                json_object_set(md, *k, json_object_get(now, *k));
    }
    char *out = NULL;
    lh_catalog_masked_select_of(rules, clearance, rows, &out);
    json_decref(cur);
    json_decref(rules);
    return out;
}

/* Add the view of dataset `name` at point `at` to v. */
static int
add_view(lh_catalog *c, lh_as_of_views *v, const char *name, const lh_as_of *at,
         lh_bucket_access_fn may_read, void *ctx, int clearance, lh_err *err)
{
    json_t *m = NULL;
    pinned pin = {0};
    char *rows = NULL;
    lh_buf create;
    lh_buf_init(&create);
    int rc = lh_catalog_manifest_at(c, name, at, &m, err);
    if (rc != 0)
        goto out;
    if (may_read && !may_read(ctx, str_of(m, "bucket"))) {
        rc = lh_catalog__not_found(err, name); /* as absent as an unknown name */
        goto out;
    }
    if ((rc = lh_catalog_pin_rows(c, m, &pin.paths, &pin.n, err)) != 0)
        goto out;
    rows = lh_catalog_rows_sql(m, pin.paths);
    char *masked = masked_rows(c, name, m, clearance, rows);
    if (masked) {
        free(rows);
        rows = masked;
    }
    lh_buf_puts(&create, "CREATE TEMP VIEW ");
    lh_sql_ident(&create, name);
    lh_buf_printf(&create, " AS %s", rows);
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->sql = lh_realloc(v->sql, v->cap * sizeof *v->sql);
        v->pins = lh_realloc(v->pins, v->cap * sizeof *v->pins);
    }
    v->sql[v->n] = lh_buf_steal(&create);
    v->pins[v->n++] = pin;
    pin.paths = NULL; /* v owns it now */
out:
    lh_buf_free(&create);
    free(rows);
    lh_catalog_unpin_rows(c, pin.paths, pin.n);
    json_decref(m);
    return rc;
}

/* The points of `as_of` for the datasets it names one by one (points: name -> index into
 * *ats), and the global point (*all, zero when there is none). */
static int
parse_as_of(const json_t *as_of, json_t *global, lh_as_of *all, json_t *points, lh_as_of **ats,
            size_t *n_ats, lh_err *err)
{
    const json_t *per = json_object_get(as_of, "datasets");
    const char *name;
    json_t *v;
    int rc = 0;
    if (per && !json_is_object(per))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'as_of.datasets' must map dataset names to {\"version\": N} or "
                          "{\"timestamp\": ...}");
    if (json_object_size(global) > 0 || !per)
        if ((rc = parse_point(global, "'as_of'", all, err)) != 0)
            return rc;
    json_object_foreach((json_t *)per, name, v)
    {
        char *what = lh_sprintf("'as_of.datasets.%s'", name);
        *ats = lh_realloc(*ats, (*n_ats + 1) * sizeof **ats);
        rc = parse_point(v, what, &(*ats)[*n_ats], err);
        free(what);
        if (rc != 0)
            return rc;
        json_object_set_new(points, name, json_integer((json_int_t)(*n_ats)++));
    }
    return 0;
}

int
lh_catalog_as_of(lh_catalog *c, const json_t *as_of, const char *sql, lh_bucket_access_fn may_read,
                 void *ctx, int clearance, lh_as_of_views **out, lh_err *err)
{
    json_t *global = NULL, *points = json_object(), *names = json_object();
    lh_as_of *ats = NULL, all = {0};
    size_t n_ats = 0;
    lh_as_of_views *v = lh_calloc(1, sizeof *v);
    v->cat = c;
    const char *name;
    json_t *index;
    int rc = 0;
    if (!json_is_object(as_of)) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'as_of' must be an object: {\"version\": N}, {\"timestamp\": ...} "
                        "or {\"datasets\": {\"name\": {...}}}");
        goto out;
    }
    global = json_deep_copy(as_of); /* all.timestamp points into it */
    json_object_del(global, "datasets");
    if ((rc = parse_as_of(as_of, global, &all, points, &ats, &n_ats, err)) != 0)
        goto out;
    if (all.version || all.timestamp) {
        bool parsed = false;
        if ((rc = tables_read(c, sql, names, &parsed, err)) != 0)
            goto out;
        add_global(c, sql, names, parsed, &all, points, &ats, &n_ats);
    }
    json_object_foreach(points, name, index)
    {
        if ((rc = add_view(c, v, name, &ats[json_integer_value(index)], may_read, ctx, clearance,
                           err)) != 0)
            goto out;
    }
out:
    if (rc == 0) {
        *out = v;
        v = NULL;
    }
    lh_catalog_as_of_free(v);
    free(ats);
    json_decref(names);
    json_decref(points);
    json_decref(global);
    return rc;
}
