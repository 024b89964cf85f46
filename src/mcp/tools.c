/*
 * tools.c — tools/list and tools/call over the tool registry (src/agent).
 */
#include "mcp/mcp_int.h"

int
lh_mcp__tools_list(const mcp_call *call, json_t **result, mcp_rpc_err *e)
{
    if (json_object_get(call->params, "cursor"))
        return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL, "unknown cursor");
    *result = json_pack("{s:[]}", "tools");
    return 0;
}

int
lh_mcp__tools_call(const mcp_call *call, json_t **result, mcp_rpc_err *e)
{
    const char *name = json_string_value(json_object_get(call->params, "name"));
    if (name == NULL)
        return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL,
                            "tools/call needs params.name (a string)");
    return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL, "Unknown tool: %.100s", name);
}
