/*
 * tools.c — tools/list and tools/call over the tool registry (src/agent). The registry
 * decides everything — who may list and call a tool, its arguments' schema, rate limits,
 * the audit record (via "mcp") — exactly as for POST /tools/{name}/call; this renders its
 * answers in MCP's shapes. A failure of the tool (bad arguments, not allowed, rate
 * limited, the query failing) is a result with isError: true and a text the model can
 * act on; only an unknown tool and malformed params are JSON-RPC errors, as the
 * specification has it.
 */
#include "mcp/mcp_int.h"

#include <string.h>

/* What clients show and decide on: sql and search only read; upsert and insert change
 * rows but never destroy history (every change is journaled); an upsert repeated with the
 * same arguments changes nothing more. */
static json_t *
annotations_of(const char *kind)
{
    if (strcmp(kind, "sql") == 0 || strcmp(kind, "search") == 0)
        return json_pack("{s:b, s:b}", "readOnlyHint", 1, "openWorldHint", 0);
    return json_pack("{s:b, s:b, s:b, s:b}", "readOnlyHint", 0, "destructiveHint", 0,
                     "idempotentHint", strcmp(kind, "upsert") == 0, "openWorldHint", 0);
}

static json_t *
mcp_tool_of(const json_t *def)
{
    const char *kind = json_string_value(json_object_get(def, "kind"));
    const char *description = json_string_value(json_object_get(def, "description"));
    json_t *tool = json_pack("{s:O, s:s, s:O}", "name", json_object_get(def, "name"), "description",
                             description ? description : "", "inputSchema",
                             json_object_get(def, "input_schema"));
    if (tool == NULL) /* a definition without a schema: the registry never holds one */
        return NULL;
    json_object_set_new(tool, "annotations", annotations_of(kind ? kind : ""));
    return tool;
}

int
lh_mcp__tools_list(const mcp_call *call, json_t **result, mcp_rpc_err *e)
{
    if (json_object_get(call->params, "cursor"))
        return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL, "unknown cursor");
    json_t *tools = json_array();
    if (call->mcp->tools) {
        json_t *defs = lh_tools_list(call->mcp->tools, call->who, LH_TOOLS_NATIVE);
        size_t i;
        json_t *def;
        json_array_foreach(defs, i, def)
        {
            json_t *tool = mcp_tool_of(def);
            if (tool)
                json_array_append_new(tools, tool);
        }
        json_decref(defs);
    }
    *result = json_pack("{s:o}", "tools", tools);
    return 0;
}

/* A tool's failure as the model should see it: the error's message, detail and hint as
 * text, and the error object itself as structuredContent. */
static json_t *
error_result(const lh_err *err, const lh_tool_outcome *o)
{
    json_t *error = json_pack("{s:s, s:s, s:i}", "code", err->code, "message", err->message,
                              "status", err->http_status);
    lh_buf text;
    lh_buf_init(&text);
    lh_buf_printf(&text, "%s (%s)", err->message, err->code);
    if (err->detail[0]) {
        json_object_set_new(error, "detail", json_string(err->detail));
        lh_buf_printf(&text, "\n%s", err->detail);
    }
    if (err->hint[0]) {
        json_object_set_new(error, "hint", json_string(err->hint));
        lh_buf_printf(&text, "\nhint: %s", err->hint);
    }
    if (o->retry_after_s > 0) {
        json_object_set_new(error, "retry_after_s", json_integer(o->retry_after_s));
        lh_buf_printf(&text, "\nretry after %lld s", (long long)o->retry_after_s);
    }
    if (o->call_id[0])
        json_object_set_new(error, "call_id", json_string(o->call_id));
    json_t *result = json_pack("{s:[{s:s, s:s}], s:{s:o}, s:b}", "content", "type", "text", "text",
                               text.data, "structuredContent", "error", error, "isError", 1);
    lh_buf_free(&text);
    return result;
}

int
lh_mcp__tools_call(const mcp_call *call, json_t **result, mcp_rpc_err *e)
{
    const char *name = json_string_value(json_object_get(call->params, "name"));
    const json_t *args = json_object_get(call->params, "arguments");
    const json_t *meta = json_object_get(call->params, "_meta");
    const json_t *ws = json_object_get(meta, "workspace_id");
    if (name == NULL)
        return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL,
                            "tools/call needs params.name (a string)");
    if (args && !json_is_object(args))
        return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL,
                            "tools/call params.arguments must be an object");
    if (ws && !json_is_string(ws))
        return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL,
                            "tools/call params._meta.workspace_id must be a string");
    if (call->mcp->tools == NULL)
        return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL, "Unknown tool: %.100s", name);
    json_t *empty = json_object(), *out = NULL;
    lh_tool_outcome o = {0};
    lh_err err;
    lh_tool_call c = {.principal = call->who,
                      .name = name,
                      .arguments = args ? args : empty,
                      .workspace_id = json_string_value(ws),
                      .via = "mcp",
                      .request_id = call->request_id};
    int rc = lh_tools_call(call->mcp->tools, &c, &out, &o, &err);
    json_decref(empty);
    if (rc != 0 && strcmp(err.code, "tool_not_found") == 0)
        return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL, "Unknown tool: %.100s", name);
    if (rc != 0) {
        *result = error_result(&err, &o);
        return 0;
    }
    char *text = json_dumps(out, JSON_COMPACT);
    *result = json_pack("{s:[{s:s}], s:o, s:b}", "content", "type", "text", "structuredContent",
                        out, "isError", 0);
    json_object_set_new(json_array_get(json_object_get(*result, "content"), 0), "text",
                        json_string(text ? text : "{}"));
    free(text);
    return 0;
}
