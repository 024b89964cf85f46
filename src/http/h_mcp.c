/*
 * h_mcp.c — POST, GET and DELETE /mcp: the door of the MCP server (src/mcp). The gateway
 * has authenticated the bearer token and applied the body size limit; this passes the body
 * and the MCP headers on and sends back what src/mcp answers.
 */
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>

int
lh_h_mcp(lh_req *req, lh_resp *resp)
{
    lh_mcp_http http = {
        .method = req->method,
        .protocol_version = lh_req_header(req, "MCP-Protocol-Version"),
        .accept = lh_req_header(req, "Accept"),
        .content_type = lh_req_header(req, "Content-Type"),
        .origin = lh_req_header(req, "Origin"),
        .host = lh_req_header(req, "Host"),
        .request_id = req->request_id,
    };
    lh_mcp_answer answer;
    lh_mcp_handle(req->srv->mcp, req->principal, lh_req_header(req, "Mcp-Session-Id"),
                  req->body.data, req->body.len, &http, &answer);
    if (answer.body)
        lh_resp_text(resp, answer.status, "application/json", answer.body, strlen(answer.body));
    else
        lh_resp_text(resp, answer.status, "application/json", "", 0);
    /* header values must outlive the response: copy them into the request's arena */
    if (answer.session_id[0])
        lh_resp_header(resp, "Mcp-Session-Id", lh_arena_strdup(req->arena, answer.session_id));
    if (answer.allow)
        lh_resp_header(resp, "Allow", answer.allow);
    lh_mcp_answer_free(&answer);
    return 0;
}
