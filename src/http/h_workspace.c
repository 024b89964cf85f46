/*
 * h_workspace.c — /workspaces: agent workspaces (src/workspace). Every handler parses,
 * calls one lh_workspace_* function with the request's principal and renders; who may do
 * what is decided in the module, so MCP and the agents' tools get the same answers.
 */
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>

typedef int (*body_fn)(lh_workspaces *w, const lh_principal *p, const char *id, const json_t *body,
                       json_t **out, lh_err *err);

static int
render(lh_resp *resp, int rc, int status, json_t *out, const lh_err *err)
{
    return rc == 0 ? lh_resp_json(resp, status, out) : lh_resp_error(resp, err);
}

/* An operation on workspace {id} with a JSON body (empty allowed when allow_empty). */
static int
with_body(lh_req *req, lh_resp *resp, body_fn fn, bool allow_empty, int status)
{
    lh_err err;
    json_t *body = NULL, *out = NULL;
    int rc = lh_req_json(req, allow_empty, &body, &err);
    if (rc == 0)
        rc = fn(req->srv->workspaces, req->principal, lh_req_param(req, "id"), body, &out, &err);
    json_decref(body);
    return render(resp, rc, status, out, &err);
}

int
lh_h_ws_create(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL, *out = NULL;
    int rc = lh_req_json(req, false, &body, &err);
    if (rc == 0)
        rc = lh_workspace_create(req->srv->workspaces, req->principal, body, &out, &err);
    json_decref(body);
    return render(resp, rc, 201, out, &err);
}

int
lh_h_ws_list(lh_req *req, lh_resp *resp)
{
    static const char *const known[] = {"owner", "kind", "q", "archived", NULL};
    lh_err err;
    if (lh_req_check_query(req, known, NULL, "GET /workspaces takes owner, kind, q, archived",
                           &err) != 0)
        return lh_resp_error(resp, &err);
    const char *archived = lh_req_query(req, "archived");
    lh_workspace_filter f = {.owner = lh_req_query(req, "owner"),
                             .kind = lh_req_query(req, "kind"),
                             .text = lh_req_query(req, "q"),
                             .include_archived = archived && strcmp(archived, "true") == 0};
    json_t *out = NULL;
    int rc = lh_workspace_list(req->srv->workspaces, req->principal, &f, &out, &err);
    return rc == 0 ? lh_resp_json(resp, 200, json_pack("{s:o}", "workspaces", out))
                   : lh_resp_error(resp, &err);
}

int
lh_h_ws_get(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *out = NULL;
    int rc =
        lh_workspace_get(req->srv->workspaces, req->principal, lh_req_param(req, "id"), &out, &err);
    return render(resp, rc, 200, out, &err);
}

int
lh_h_ws_patch(lh_req *req, lh_resp *resp)
{
    return with_body(req, resp, lh_workspace_patch, false, 200);
}

static int
archive(lh_workspaces *w, const lh_principal *p, const char *id, const json_t *body, json_t **out,
        lh_err *err)
{
    if (json_object_size(body) != 0)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "POST /workspaces/{id}/archive takes no body");
    return lh_workspace_archive(w, p, id, out, err);
}

int
lh_h_ws_archive(lh_req *req, lh_resp *resp)
{
    return with_body(req, resp, archive, true, 200);
}

int
lh_h_ws_handoff(lh_req *req, lh_resp *resp)
{
    return with_body(req, resp, lh_workspace_handoff, false, 200);
}

int
lh_h_ws_brief(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *out = NULL;
    int rc = lh_workspace_brief(req->srv->workspaces, req->principal, lh_req_param(req, "id"), &out,
                                &err);
    return render(resp, rc, 200, out, &err);
}

int
lh_h_ws_note(lh_req *req, lh_resp *resp)
{
    return with_body(req, resp, lh_workspace_note, false, 201);
}

int
lh_h_ws_activity(lh_req *req, lh_resp *resp)
{
    static const char *const known[] = {"kind", "since", "limit", "cursor", NULL};
    lh_err err;
    lh_ws_activity_filter f = {.kind = lh_req_query(req, "kind"),
                               .since = lh_req_query(req, "since")};
    if (lh_req_check_query(req, known, NULL, "GET .../activity takes kind, since, limit, cursor",
                           &err) != 0 ||
        lh_req_query_int(req, "limit", 100, 1, 1000, &f.limit, &err) != 0)
        return lh_resp_error(resp, &err);
    if (lh_req_query_offset_cursor(req, &f.offset, &err) != 0)
        return lh_resp_error(resp, &err);
    json_t *out = NULL;
    int rc = lh_workspace_activity(req->srv->workspaces, req->principal, lh_req_param(req, "id"),
                                   &f, &out, &err);
    return render(resp, rc, 200, out, &err);
}

/* ---- shortlists ---------------------------------------------------------------------------- */

typedef int (*list_fn)(lh_workspaces *w, const lh_principal *p, const char *id, const char *list,
                       const json_t *body, json_t **out, lh_err *err);

static int
list_op(lh_req *req, lh_resp *resp, list_fn fn)
{
    lh_err err;
    json_t *body = NULL, *out = NULL;
    int rc = lh_req_json(req, false, &body, &err);
    if (rc == 0)
        rc = fn(req->srv->workspaces, req->principal, lh_req_param(req, "id"),
                lh_req_param(req, "list"), body, &out, &err);
    json_decref(body);
    return render(resp, rc, 200, out, &err);
}

int
lh_h_ws_shortlist_get(lh_req *req, lh_resp *resp)
{
    static const char *const known[] = {"columns", NULL};
    lh_err err;
    if (lh_req_check_query(req, known, NULL, "GET .../shortlists/{list} takes columns", &err) != 0)
        return lh_resp_error(resp, &err);
    json_t *out = NULL;
    int rc = lh_workspace_shortlist_get(req->srv->workspaces, req->principal,
                                        lh_req_param(req, "id"), lh_req_param(req, "list"),
                                        lh_req_query(req, "columns"), &out, &err);
    return render(resp, rc, 200, out, &err);
}

int
lh_h_ws_shortlist_add(lh_req *req, lh_resp *resp)
{
    return list_op(req, resp, lh_workspace_shortlist_add);
}

int
lh_h_ws_shortlist_remove(lh_req *req, lh_resp *resp)
{
    return list_op(req, resp, lh_workspace_shortlist_remove);
}

int
lh_h_ws_shortlist_reorder(lh_req *req, lh_resp *resp)
{
    return list_op(req, resp, lh_workspace_shortlist_reorder);
}

/* ---- the delta layer ------------------------------------------------------------------------- */

int
lh_h_ws_stage(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL, *out = NULL;
    int rc = lh_req_json(req, false, &body, &err);
    if (rc == 0)
        rc = lh_workspace_stage(req->srv->workspaces, req->principal, lh_req_param(req, "id"),
                                lh_req_param(req, "name"), body, &out, &err);
    json_decref(body);
    return render(resp, rc, 200, out, &err);
}

int
lh_h_ws_publish(lh_req *req, lh_resp *resp)
{
    return with_body(req, resp, lh_workspace_publish, true, 200);
}

int
lh_h_ws_discard(lh_req *req, lh_resp *resp)
{
    return with_body(req, resp, lh_workspace_discard, true, 200);
}

/* ---- saved queries
 * ------------------------------------------------------------------------------- */

int
lh_h_ws_query_save(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL, *out = NULL;
    int rc = lh_req_json(req, false, &body, &err);
    if (rc == 0)
        rc = lh_workspace_query_save(req->srv->workspaces, req->principal, lh_req_param(req, "id"),
                                     lh_req_param(req, "name"), body, &out, &err);
    json_decref(body);
    return render(resp, rc, 200, out, &err);
}

int
lh_h_ws_query_run(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL, *out = NULL;
    int rc = lh_req_json(req, true, &body, &err);
    if (rc == 0 && json_object_size(body) != 0)
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "POST .../queries/{name}/run takes no body");
    const lh_config *cfg = req->config;
    if (rc == 0)
        rc = lh_workspace_query_run(req->srv->workspaces, req->principal, lh_req_param(req, "id"),
                                    lh_req_param(req, "name"),
                                    lh_config_int(cfg, "engine.query_timeout_ms"),
                                    lh_config_int(cfg, "engine.max_result_bytes"), &out, &err);
    json_decref(body);
    if (rc != 0 && err.http_status == 429)
        lh_resp_header(resp, "Retry-After", "1");
    return render(resp, rc, 200, out, &err);
}

/* ---- snapshots
 * ------------------------------------------------------------------------------------- */

int
lh_h_ws_snapshot(lh_req *req, lh_resp *resp)
{
    return with_body(req, resp, lh_workspace_snapshot, true, 201);
}

int
lh_h_ws_snapshots(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *out = NULL;
    int rc = lh_workspace_snapshots(req->srv->workspaces, req->principal, lh_req_param(req, "id"),
                                    &out, &err);
    return render(resp, rc, 200, out, &err);
}

int
lh_h_ws_rollback(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL, *out = NULL;
    const char *n = lh_req_param(req, "n");
    char *end = NULL;
    long long snapshot = strtoll(n, &end, 10);
    int rc = lh_req_json(req, true, &body, &err);
    if (rc == 0 && (end == n || *end != '\0' || snapshot < 1 || json_object_size(body) != 0))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "rollback takes a snapshot id (1, 2, ...) in the path and no body");
    if (rc == 0)
        rc = lh_workspace_rollback(req->srv->workspaces, req->principal, lh_req_param(req, "id"),
                                   snapshot, &out, &err);
    json_decref(body);
    return render(resp, rc, 200, out, &err);
}
