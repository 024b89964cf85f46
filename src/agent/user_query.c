/*
 * user_query.c — a principal's own SQL, whichever door it came through (HTTP POST /query,
 * gRPC Query/Run): the rule on free-form SQL (agents get none), the row limit within
 * [engine] max_row_limit, time travel (the catalog's views of the datasets as they were,
 * read through the caller's buckets and clearance), a workspace's staged rows merged on
 * read, the result limits and time limit of the principal set in force, and the
 * caller's view of the datasets. A door decodes its request into these arguments, sets
 * the format and how to tell that its client left, and runs lh_query_start.
 */
#include "agent/profiles.h"

#include <stdlib.h>
#include <string.h>

int
lh_user_query_prepare(lh_catalog *c, lh_workspaces *ws, const lh_principal *who,
                      const lh_config *cfg, const char *sql, int64_t limit, const json_t *as_of,
                      const char *workspace_id, lh_user_query *q, lh_err *err)
{
    memset(q, 0, sizeof *q);
    int rc = lh_auth_may_write_sql(who, err);
    if (rc != 0)
        return rc;
    if (sql == NULL || sql[0] == '\0')
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'sql' must be a non-empty string");
    int64_t max_rows = lh_config_int(cfg, "engine.max_row_limit");
    if (limit < 0 || limit > max_rows)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'limit' must be an integer from 1 to %lld", (long long)max_rows);
    if (as_of && workspace_id)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'workspace_id' must be a workspace's id, and cannot be combined "
                          "with 'as_of'");
    lh_query_opts *o = &q->opts;
    o->format = LH_QUERY_JSON;
    o->sql = sql;
    o->row_limit = limit ? limit : lh_config_int(cfg, "engine.default_row_limit");
    o->max_bytes = lh_config_int(cfg, "engine.max_result_bytes");
    o->timeout_ms = lh_config_int(cfg, "engine.query_timeout_ms");
    o->principal = who->name;
    size_t n_as_of = 0, n_ws = 0;
    const char *const *as_of_sql = NULL, *const *ws_sql = NULL;
    if (as_of) {
        /* the catalog's views of the datasets as they were, run first on the query's own
         * connection; their files stay pinned until lh_user_query_release */
        rc = lh_catalog_as_of(c, as_of, sql, lh_catalog_bucket_access, (void *)who, who->clearance,
                              &q->as_of, err);
        if (rc != 0)
            return rc;
        as_of_sql = lh_as_of_views_sql(q->as_of, &n_as_of);
    }
    if (ws) {
        /* with workspace_id, the datasets with its staged changes merged on read; and the
         * _workspaces, _workspace_activity and _shortlists views the SQL names, holding
         * what the caller may read (after any time travel statements) */
        rc = lh_workspace_prelude(ws, who, workspace_id, sql, &q->ws, err);
        if (rc != 0) {
            lh_user_query_release(q);
            return rc;
        }
        ws_sql = lh_ws_prelude_sql(q->ws, &n_ws);
    }
    if (n_as_of + n_ws > 0) {
        q->prelude = lh_malloc((n_as_of + n_ws) * sizeof *q->prelude);
        for (size_t i = 0; i < n_as_of; i++)
            q->prelude[i] = as_of_sql[i];
        for (size_t i = 0; i < n_ws; i++)
            q->prelude[n_as_of + i] = ws_sql[i];
        o->prelude = q->prelude;
        o->n_prelude = n_as_of + n_ws;
    }
    /* the caller's view: the datasets (and _events, _audit, _hnsw_trials rows) it sees */
    o->resolver = lh_catalog_view_init(&q->view, c, who);
    q->has_view = true;
    return 0;
}

void
lh_user_query_release(lh_user_query *q)
{
    if (q->has_view)
        lh_catalog_view_free(&q->view);
    q->has_view = false;
    lh_catalog_as_of_free(q->as_of);
    q->as_of = NULL;
    lh_ws_prelude_free(q->ws);
    q->ws = NULL;
    free(q->prelude);
    q->prelude = NULL;
}
