/*
 * h_tools.c — the tool registry over HTTP: POST /tools, PUT/DELETE/GET /tools/{name},
 * GET /tools/{name}/versions, GET /tools, POST /tools/{name}/call. Thin: every rule (who
 * may manage or call, validation, rate limits, audit) is in src/agent, which MCP and gRPC
 * call the same way.
 */
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>

#define WORKSPACE_ID_MAX 128

int
lh_h_tools_create(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL, *out = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    const char *given = json_string_value(json_object_get(body, "name"));
    const char *name = given ? lh_arena_printf(req->arena, "%s", given) : NULL; /* outlives body */
    int rc = 0;
    if (!name)
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_tool", "'name' must be the tool's name");
    else
        rc = lh_tools_put(req->srv->tools, req->principal, name, body, true, &out, &err);
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    char *location = lh_arena_printf(req->arena, "/tools/%s", name);
    lh_resp_header(resp, "Location", location);
    return lh_resp_json(resp, 201, out);
}

int
lh_h_tools_put(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL, *out = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    int rc = lh_tools_put(req->srv->tools, req->principal, lh_req_param(req, "name"), body, false,
                          &out, &err);
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, out);
}

int
lh_h_tools_delete(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *out = NULL;
    if (lh_tools_delete(req->srv->tools, req->principal, lh_req_param(req, "name"), &out, &err) !=
        0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, out);
}

int
lh_h_tools_list(lh_req *req, lh_resp *resp)
{
    static const char *const known[] = {"format", NULL};
    lh_err err;
    if (lh_req_check_query(req, known, NULL, "GET /tools takes format=native|openai|mcp", &err) !=
        0)
        return lh_resp_error(resp, &err);
    int format = lh_tools_format_parse(lh_req_query(req, "format"));
    if (format < 0) {
        lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                   "format must be native, openai or mcp");
        return lh_resp_error(resp, &err);
    }
    json_t *tools = lh_tools_list(req->srv->tools, req->principal, (lh_tools_format)format);
    if (format == LH_TOOLS_OPENAI)
        return lh_resp_json(resp, 200, tools); /* the shape function-calling clients load */
    return lh_resp_json(resp, 200, json_pack("{s:o}", "tools", tools));
}

int
lh_h_tools_get(lh_req *req, lh_resp *resp)
{
    static const char *const known[] = {"version", NULL};
    lh_err err;
    int64_t version = 0;
    json_t *out = NULL;
    if (lh_req_check_query(req, known, NULL, "GET /tools/{name} takes version", &err) != 0 ||
        lh_req_query_int(req, "version", 0, 1, INT64_MAX, &version, &err) != 0 ||
        lh_tools_get(req->srv->tools, req->principal, lh_req_param(req, "name"), version, &out,
                     &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, out);
}

int
lh_h_tools_versions(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *out = NULL;
    const char *name = lh_req_param(req, "name");
    if (lh_tools_versions(req->srv->tools, req->principal, name, &out, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, json_pack("{s:s, s:o}", "name", name, "versions", out));
}

static bool
client_gone(void *ctx)
{
    return lh_http__fd_closed((int)(intptr_t)ctx);
}

int
lh_h_tools_call(lh_req *req, lh_resp *resp)
{
    static const char *const fields[] = {"arguments", "workspace_id", NULL};
    lh_err err;
    json_t *body = NULL, *out = NULL;
    if (lh_req_json(req, true, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    int rc = lh_json_check_fields(body, fields, "a call takes arguments and workspace_id", &err);
    const json_t *args = json_object_get(body, "arguments");
    const json_t *ws = json_object_get(body, "workspace_id");
    if (rc == 0 && args && !json_is_object(args))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_arguments", "/arguments: must be an object");
    if (rc == 0 && ws &&
        (!json_is_string(ws) || json_string_length(ws) == 0 ||
         json_string_length(ws) > WORKSPACE_ID_MAX ||
         strlen(json_string_value(ws)) != json_string_length(ws)))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'workspace_id' must be a non-empty string of at most %d bytes",
                        WORKSPACE_ID_MAX);
    json_t *empty = json_object();
    lh_tool_outcome o = {0};
    if (rc == 0) {
        lh_tool_call c = {.principal = req->principal,
                          .name = lh_req_param(req, "name"),
                          .arguments = args ? args : empty,
                          .workspace_id = json_string_value(ws),
                          .via = "http",
                          .request_id = req->request_id,
                          .gone = {client_gone, (void *)(intptr_t)lh_req_fd(req)}};
        rc = lh_tools_call(req->srv->tools, &c, &out, &o, &err);
    }
    json_decref(empty);
    json_decref(body);
    if (rc != 0 && err.http_status == 429 && o.retry_after_s > 0) {
        char *after = lh_arena_printf(req->arena, "%lld", (long long)o.retry_after_s);
        lh_resp_header(resp, "Retry-After", after);
    }
    if (rc != 0 && o.call_id[0])
        lh_resp_header(resp, "X-Lakehouse-Call-Id", lh_arena_printf(req->arena, "%s", o.call_id));
    if (rc != 0)
        return lh_resp_error(resp, &err);
    if (json_is_true(json_object_get(json_object_get(out, "result"), "rescue_used")))
        lh_resp_header(resp, "X-Lakehouse-Rescue-Used", "true"); /* invariant 7 */
    return lh_resp_json(resp, 200, out);
}
