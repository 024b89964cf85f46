/*
 * ws_sql.c — what a query sees of workspaces. A query made with a workspace_id sees each
 * dataset with the workspace's staged changes merged on read; a query naming _workspaces,
 * _workspace_activity or _shortlists sees those as views holding only the workspaces its
 * caller may read. Both are TEMP VIEWs composed here for this one query and run first on
 * its own connection (lh_query_opts.prelude), as time travel does: nothing is shared
 * between callers, and the views vanish with the connection.
 */
#include "workspace/ws_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct lh_ws_prelude {
    lh_catalog *cat;
    char **sql;
    char ***paths;
    size_t *n_paths;
    size_t n, cap;
};

static int
add(void *ctx, char *sql, char **paths, size_t n)
{
    lh_ws_prelude *v = ctx;
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->sql = lh_realloc(v->sql, v->cap * sizeof *v->sql);
        v->paths = lh_realloc(v->paths, v->cap * sizeof *v->paths);
        v->n_paths = lh_realloc(v->n_paths, v->cap * sizeof *v->n_paths);
    }
    v->sql[v->n] = sql;
    v->paths[v->n] = paths;
    v->n_paths[v->n++] = n;
    return 0;
}

void
lh_ws_prelude_free(lh_ws_prelude *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++) {
        lh_catalog_unpin_rows(v->cat, v->paths[i], v->n_paths[i]);
        free(v->sql[i]);
    }
    free(v->sql);
    free(v->paths);
    free(v->n_paths);
    free(v);
}

const char *const *
lh_ws_prelude_sql(const lh_ws_prelude *v, size_t *n)
{
    *n = v->n;
    return (const char *const *)v->sql;
}

void
lh_ws__values_view(lh_buf *sql, const char *name, const char *const *cols, const char *const *types,
                   size_t n_cols, const json_t *rows)
{
    lh_buf_puts(sql, "CREATE TEMP VIEW ");
    lh_sql_ident(sql, name);
    lh_buf_puts(sql, " AS SELECT ");
    for (size_t c = 0; c < n_cols; c++) {
        lh_buf_printf(sql, "%sCAST(", c ? ", " : "");
        if (json_array_size(rows) == 0)
            lh_buf_puts(sql, "NULL");
        else
            lh_buf_printf(sql, "col%zu", c);
        lh_buf_printf(sql, " AS %s) AS ", types[c]);
        lh_sql_ident(sql, cols[c]);
    }
    if (json_array_size(rows) == 0) {
        lh_buf_puts(sql, " WHERE false");
        return;
    }
    lh_buf_puts(sql, " FROM (VALUES ");
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        lh_buf_puts(sql, i ? ", (" : "(");
        for (size_t c = 0; c < n_cols; c++) {
            json_t *v = json_object_get(row, cols[c]);
            char *text = v == NULL || json_is_null(v) ? NULL
                         : json_is_string(v)          ? lh_strdup(json_string_value(v))
                                             : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (c)
                lh_buf_puts(sql, ", ");
            lh_sql_quote_or_null(sql, text);
            free(text);
        }
        lh_buf_puts(sql, ")");
    }
    lh_buf_puts(sql, ") AS lh_v(");
    for (size_t c = 0; c < n_cols; c++)
        lh_buf_printf(sql, "%scol%zu", c ? ", " : "", c);
    lh_buf_puts(sql, ")");
}

static void
view_workspaces(lh_ws_prelude *v, const json_t *docs)
{
    static const char *const cols[] = {"id",      "name",       "kind",        "tier",
                                       "owner",   "state",      "description", "tags",
                                       "version", "created_at", "updated_at"};
    static const char *const types[] = {"VARCHAR", "VARCHAR",   "VARCHAR",  "VARCHAR",
                                        "VARCHAR", "VARCHAR",   "VARCHAR",  "JSON",
                                        "BIGINT",  "TIMESTAMP", "TIMESTAMP"};
    lh_buf sql;
    lh_buf_init(&sql);
    lh_ws__values_view(&sql, "_workspaces", cols, types, 11, docs);
    add(v, lh_buf_steal(&sql), NULL, 0);
}

static void
view_activity(lh_ws_prelude *v, const json_t *docs)
{
    static const char *const cols[] = {"workspace_id", "version", "kind", "actor", "at", "detail"};
    static const char *const types[] = {"VARCHAR", "BIGINT",    "VARCHAR",
                                        "VARCHAR", "TIMESTAMP", "JSON"};
    json_t *rows = json_array();
    size_t i, j;
    json_t *doc, *a;
    json_array_foreach(docs, i, doc) json_array_foreach(json_object_get(doc, "activity"), j, a)
        json_array_append_new(
            rows,
            json_pack("{s:O, s:O, s:O, s:O, s:O, s:O*}", "workspace_id", json_object_get(doc, "id"),
                      "version", json_object_get(a, "version"), "kind", json_object_get(a, "op"),
                      "actor", json_object_get(a, "actor"), "at", json_object_get(a, "at"),
                      "detail", json_object_get(a, "detail")));
    lh_buf sql;
    lh_buf_init(&sql);
    lh_ws__values_view(&sql, "_workspace_activity", cols, types, 6, rows);
    add(v, lh_buf_steal(&sql), NULL, 0);
    json_decref(rows);
}

static void
view_shortlists(lh_ws_prelude *v, const json_t *docs)
{
    static const char *const cols[] = {"workspace_id", "shortlist", "rank",     "dataset",
                                       "key",          "note",      "added_by", "added_at"};
    static const char *const types[] = {"VARCHAR", "VARCHAR", "BIGINT",  "VARCHAR",
                                        "JSON",    "VARCHAR", "VARCHAR", "TIMESTAMP"};
    json_t *rows = json_array();
    size_t i, j;
    json_t *doc, *r, *sl;
    const char *name;
    json_array_foreach(docs, i, doc) json_object_foreach(json_object_get(doc, "shortlists"), name,
                                                         sl)
        json_array_foreach(json_object_get(sl, "records"), j, r) json_array_append_new(
            rows,
            json_pack("{s:O, s:s, s:O, s:O, s:O, s:O, s:O, s:O}", "workspace_id",
                      json_object_get(doc, "id"), "shortlist", name, "rank",
                      json_object_get(r, "rank"), "dataset", json_object_get(r, "dataset"), "key",
                      json_object_get(r, "key"), "note", json_object_get(r, "note"), "added_by",
                      json_object_get(r, "added_by"), "added_at", json_object_get(r, "added_at")));
    lh_buf sql;
    lh_buf_init(&sql);
    lh_ws__values_view(&sql, "_shortlists", cols, types, 8, rows);
    add(v, lh_buf_steal(&sql), NULL, 0);
    json_decref(rows);
}

int
lh_workspace_prelude(lh_workspaces *w, const lh_principal *p, const char *workspace_id,
                     const char *sql, lh_ws_prelude **out, lh_err *err)
{
    lh_ws_prelude *v = lh_calloc(1, sizeof *v);
    v->cat = w->deps.catalog;
    int rc = 0;
    if (workspace_id) {
        json_t *doc = NULL;
        if ((rc = lh_ws__read(w, p, workspace_id, WS_READ, &doc, err)) == 0)
            rc = lh_ws__delta_views(w, p, doc, add, v, err);
        json_decref(doc);
    }
    bool views[3] = {lh_sql_mentions(sql, "_workspaces"),
                     lh_sql_mentions(sql, "_workspace_activity"),
                     lh_sql_mentions(sql, "_shortlists")};
    if (rc == 0 && (views[0] || views[1] || views[2])) {
        json_t *docs = lh_ws__readable(w, p);
        if (views[0])
            view_workspaces(v, docs);
        if (views[1])
            view_activity(v, docs);
        if (views[2])
            view_shortlists(v, docs);
        json_decref(docs);
    }
    if (rc != 0) {
        lh_ws_prelude_free(v);
        return rc;
    }
    *out = v;
    return 0;
}
