/*
 * mcp.c — the Streamable HTTP transport of MCP (2025-06-18) and JSON-RPC 2.0 dispatch.
 *
 * A POST carries exactly one JSON-RPC message (batches were removed in 2025-06-18):
 *   request       answered with one application/json object (never an SSE stream: we
 *                 send no server-to-client messages, so there is nothing to stream);
 *   notification  202, no body;
 *   response      202, no body (we send no requests, so there is nothing to match).
 * HTTP status: transport refusals are 4xx with a JSON-RPC error whose id is null (400 bad
 * message or header, 403 origin, 404 unknown session, 405, 406 Accept, 415 Content-Type);
 * a request that reaches its method is answered 200, its failure a JSON-RPC error in the
 * body. initialize opens a session (Mcp-Session-Id on its answer); every other message
 * must name a session of the same principal. GET (an SSE stream for server-initiated
 * messages) is 405, as the spec allows a server without such messages to answer.
 */
#include "mcp/mcp_int.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Newest first: what we negotiate when a client asks for a version we do not speak. */
static const char *const SUPPORTED_VERSIONS[] = {LH_MCP_LATEST_VERSION, "2025-03-26", NULL};

static bool
version_supported(const char *v)
{
    for (const char *const *s = SUPPORTED_VERSIONS; *s; s++)
        if (strcmp(*s, v) == 0)
            return true;
    return false;
}

static json_t *
supported_versions_json(void)
{
    json_t *arr = json_array();
    for (const char *const *s = SUPPORTED_VERSIONS; *s; s++)
        json_array_append_new(arr, json_string(*s));
    return arr;
}

int
lh_mcp__fail(mcp_rpc_err *e, int code, json_t *data, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->code = code;
    json_decref(e->data);
    e->data = data;
    return -1;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static void
parse_origins(lh_mcp *mcp, const char *list)
{
    for (const char *p = list ? list : ""; *p;) {
        size_t n = strcspn(p, ",");
        const char *start = p;
        size_t len = n;
        while (len && (*start == ' ' || *start == '\t'))
            start++, len--;
        while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
            len--;
        if (len) {
            mcp->allowed_origins = lh_realloc(
                mcp->allowed_origins, (mcp->n_allowed_origins + 1) * sizeof *mcp->allowed_origins);
            mcp->allowed_origins[mcp->n_allowed_origins++] = lh_strndup(start, len);
        }
        p += n;
        if (*p == ',')
            p++;
    }
}

int
lh_mcp_new(const lh_mcp_deps *deps, lh_mcp **out, lh_err *err)
{
    lh_mcp *mcp = lh_calloc(1, sizeof *mcp);
    mcp->catalog = deps->catalog;
    mcp->tools = deps->tools;
    mcp->workspaces = deps->workspaces;
    mcp->max_sessions = (size_t)lh_config_int(deps->config, "mcp.max_sessions");
    mcp->session_idle_us = lh_config_int(deps->config, "mcp.session_idle_s") * 1000000;
    parse_origins(mcp, lh_config_str(deps->config, "mcp.allowed_origins"));
    pthread_mutex_init(&mcp->lock, NULL);
    *out = mcp;
    return 0;
}

void
lh_mcp_free(lh_mcp *mcp)
{
    if (mcp == NULL)
        return;
    for (size_t i = 0; i < mcp->n_allowed_origins; i++)
        free(mcp->allowed_origins[i]);
    free(mcp->allowed_origins);
    free(mcp->sessions);
    pthread_mutex_destroy(&mcp->lock);
    free(mcp);
}

void
lh_mcp_answer_free(lh_mcp_answer *a)
{
    if (a == NULL)
        return;
    free(a->body);
    memset(a, 0, sizeof *a);
}

/* ---- answers ------------------------------------------------------------------------------- */

static void
answer_json(lh_mcp_answer *out, int status, json_t *message)
{
    out->status = status;
    free(out->body);
    out->body = json_dumps(message, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(message);
    if (out->body == NULL)
        abort(); /* only on out-of-memory, like lh_malloc */
}

/* A JSON-RPC error answer; id borrowed (NULL: null). data taken. */
static void
answer_error(lh_mcp_answer *out, int status, const json_t *id, int code, json_t *data,
             const char *message)
{
    json_t *error = json_pack("{s:i, s:o}", "code", code, "message", lh_json_text(message));
    if (data)
        json_object_set_new(error, "data", data);
    json_t *msg =
        json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error", error);
    answer_json(out, status, msg);
}

static void
answer_result(lh_mcp_answer *out, const json_t *id, json_t *result)
{
    answer_json(out, 200,
                json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result));
}

/* ---- transport checks ------------------------------------------------------------------------ */

/* Whether a comma-separated media-range list names type (or * / *); parameters ignored. */
static bool
accepts(const char *accept, const char *type)
{
    size_t tlen = strlen(type);
    for (const char *p = accept; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",;");
        size_t len = n;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if ((len == tlen && strncasecmp(p, type, tlen) == 0) ||
            (len == 3 && memcmp(p, "*/*", 3) == 0))
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

static bool
is_json_type(const char *type)
{
    return type && strncasecmp(type, "application/json", 16) == 0 &&
           (type[16] == '\0' || type[16] == ';' || type[16] == ' ');
}

/* An Origin header (sent by browsers) must be the server's own, a loopback one, or listed
 * in [mcp] allowed_origins: the spec's defence against DNS rebinding. */
static bool
origin_allowed(const lh_mcp *mcp, const char *origin, const char *host)
{
    if (origin == NULL)
        return true; /* not a browser */
    for (size_t i = 0; i < mcp->n_allowed_origins; i++)
        if (strcmp(origin, mcp->allowed_origins[i]) == 0)
            return true;
    const char *sep = strstr(origin, "://");
    if (sep == NULL)
        return false; /* "null" and other opaque origins */
    const char *authority = sep + 3;
    if (host && strcasecmp(authority, host) == 0)
        return true;
    static const char *const loopback[] = {"localhost", "127.0.0.1", "[::1]", NULL};
    for (const char *const *l = loopback; *l; l++) {
        size_t n = strlen(*l);
        if (strncasecmp(authority, *l, n) == 0 && (authority[n] == '\0' || authority[n] == ':'))
            return true;
    }
    return false;
}

/* ---- messages ------------------------------------------------------------------------------ */

/* JSON-RPC ids are strings or numbers; MCP forbids null. */
static bool
id_valid(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id) || json_is_real(id);
}

typedef struct method_entry {
    const char *name;
    mcp_method_fn fn;
} method_entry;

static int
ping(const mcp_call *call, json_t **result, mcp_rpc_err *e)
{
    *result = json_object();
    return 0;
}

static const method_entry METHODS[] = {
    {"ping", ping},
    {"resources/list", lh_mcp__resources_list},
    {"resources/read", lh_mcp__resources_read},
    {"resources/templates/list", lh_mcp__resource_templates},
    {"tools/list", lh_mcp__tools_list},
    {"tools/call", lh_mcp__tools_call},
};

static json_t *
initialize_result(const char *version)
{
    return json_pack("{s:s, s:{s:{s:b}, s:{s:b, s:b}}, s:{s:s, s:s, s:s}, s:s}", "protocolVersion",
                     version, "capabilities", "tools", "listChanged", 0, "resources", "subscribe",
                     0, "listChanged", 0, "serverInfo", "name", "lakehouse", "title", "lakehouse",
                     "version", LH_VERSION, "instructions",
                     "Datasets you may read are resources (lakehouse://datasets/{name}: "
                     "columns, metadata, freshness, row count, version). Use the tools to "
                     "query and search them.");
}

static void
initialize(lh_mcp *mcp, const lh_principal *who, const char *session_id, const json_t *id,
           const json_t *params, lh_mcp_answer *out)
{
    if (session_id) {
        answer_error(out, 400, id, LH_MCP_INVALID_REQUEST, NULL,
                     "initialize opens a new session: send it without Mcp-Session-Id");
        return;
    }
    const char *asked = json_string_value(json_object_get(params, "protocolVersion"));
    if (asked == NULL) {
        answer_error(out, 200, id, LH_MCP_INVALID_PARAMS,
                     json_pack("{s:o}", "supported", supported_versions_json()),
                     "initialize needs params.protocolVersion (a string)");
        return;
    }
    /* the spec: the same version when we speak it, else the newest we do */
    const char *version = version_supported(asked) ? asked : LH_MCP_LATEST_VERSION;
    lh_err err;
    if (lh_mcp__session_open(mcp, who->name, version, out->session_id, &err) != 0) {
        answer_error(out, err.http_status, id, LH_MCP_BAD_TRANSPORT, NULL, err.message);
        return;
    }
    answer_result(out, id, initialize_result(version));
}

static void
dispatch(lh_mcp *mcp, const lh_principal *who, const char *method, const json_t *id,
         const json_t *params, const char *version, const char *request_id, lh_mcp_answer *out)
{
    const method_entry *entry = NULL;
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0] && !entry; i++)
        if (strcmp(METHODS[i].name, method) == 0)
            entry = &METHODS[i];
    if (entry == NULL) {
        char message[160];
        snprintf(message, sizeof message, "method not found: %.100s", method);
        answer_error(out, 200, id, LH_MCP_METHOD_NOT_FOUND, NULL, message);
        return;
    }
    json_t *empty = params ? NULL : json_object();
    mcp_call call = {mcp, who, params ? params : empty, version, request_id};
    mcp_rpc_err e = {0};
    json_t *result = NULL;
    if (entry->fn(&call, &result, &e) != 0)
        answer_error(out, 200, id, e.code, e.data, e.message);
    else
        answer_result(out, id, result);
    json_decref(empty);
}

/* One parsed message of a session-bound POST (or an initialize). */
static void
handle_message(lh_mcp *mcp, const lh_principal *who, const char *session_id, const json_t *msg,
               const lh_mcp_http *http, lh_mcp_answer *out)
{
    const json_t *id = json_object_get(msg, "id");
    const json_t *method_j = json_object_get(msg, "method");
    const json_t *params = json_object_get(msg, "params");
    bool has_id = id != NULL;
    const json_t *reply_id = has_id && id_valid(id) ? id : NULL;
    if (!json_is_string(json_object_get(msg, "jsonrpc")) ||
        strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0") != 0) {
        answer_error(out, 400, reply_id, LH_MCP_INVALID_REQUEST, NULL,
                     "not a JSON-RPC 2.0 message: \"jsonrpc\" must be \"2.0\"");
        return;
    }
    if (has_id && !id_valid(id)) {
        answer_error(out, 400, NULL, LH_MCP_INVALID_REQUEST, NULL,
                     "\"id\" must be a string or a number");
        return;
    }
    bool is_response =
        method_j == NULL && has_id &&
        (json_object_get(msg, "result") != NULL) != (json_object_get(msg, "error") != NULL);
    if (method_j == NULL && !is_response) {
        answer_error(out, 400, reply_id, LH_MCP_INVALID_REQUEST, NULL,
                     "a message needs \"method\" (a request or notification), or \"id\" with "
                     "\"result\" or \"error\" (a response)");
        return;
    }
    if (method_j && !json_is_string(method_j)) {
        answer_error(out, 400, reply_id, LH_MCP_INVALID_REQUEST, NULL,
                     "\"method\" must be a string");
        return;
    }
    const char *method = json_string_value(method_j);
    if (method && strcmp(method, "initialize") == 0) {
        if (!has_id) {
            answer_error(out, 400, NULL, LH_MCP_INVALID_REQUEST, NULL,
                         "initialize is a request: it needs an \"id\"");
        } else if (params && !json_is_object(params)) {
            answer_error(out, 200, id, LH_MCP_INVALID_PARAMS, NULL, "\"params\" must be an object");
        } else {
            initialize(mcp, who, session_id, id, params, out);
        }
        return;
    }
    if (session_id == NULL) {
        answer_error(out, 400, reply_id, LH_MCP_BAD_TRANSPORT, NULL,
                     "Mcp-Session-Id header is required: initialize first");
        return;
    }
    char version[LH_MCP_VERSION_MAX];
    if (lh_mcp__session_use(mcp, session_id, who->name, version) != 0) {
        answer_error(out, 404, reply_id, LH_MCP_SESSION_NOT_FOUND, NULL,
                     "session not found: it ended, expired or was never opened; initialize "
                     "again");
        return;
    }
    if (!has_id) { /* a notification (initialized, cancelled, ...) or a response */
        out->status = 202;
        return;
    }
    if (is_response) {
        out->status = 202;
        return;
    }
    if (params && !json_is_object(params)) {
        answer_error(out, 200, id, LH_MCP_INVALID_PARAMS, NULL, "\"params\" must be an object");
        return;
    }
    dispatch(mcp, who, method, id, params,
             http->protocol_version ? http->protocol_version : version, http->request_id, out);
}

static void
handle_delete(lh_mcp *mcp, const lh_principal *who, const char *session_id, lh_mcp_answer *out)
{
    if (session_id == NULL) {
        answer_error(out, 400, NULL, LH_MCP_BAD_TRANSPORT, NULL,
                     "Mcp-Session-Id header is required to end a session");
        return;
    }
    if (lh_mcp__session_close(mcp, session_id, who->name) != 0) {
        answer_error(out, 404, NULL, LH_MCP_SESSION_NOT_FOUND, NULL, "session not found");
        return;
    }
    out->status = 200;
}

static void
handle_post(lh_mcp *mcp, const lh_principal *who, const char *session_id, const char *body,
            size_t len, const lh_mcp_http *http, lh_mcp_answer *out)
{
    if (!accepts(http->accept, "application/json") || !accepts(http->accept, "text/event-stream")) {
        answer_error(out, 406, NULL, LH_MCP_BAD_TRANSPORT, NULL,
                     "Accept must list both application/json and text/event-stream");
        return;
    }
    if (!is_json_type(http->content_type)) {
        answer_error(out, 415, NULL, LH_MCP_BAD_TRANSPORT, NULL,
                     "Content-Type must be application/json");
        return;
    }
    json_error_t jerr;
    json_t *msg =
        json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (msg == NULL) {
        char message[300];
        snprintf(message, sizeof message, "parse error: line %d, column %d: %s", jerr.line,
                 jerr.column, jerr.text);
        answer_error(out, 400, NULL, LH_MCP_PARSE_ERROR, NULL, message);
        return;
    }
    if (json_is_array(msg)) {
        answer_error(out, 400, NULL, LH_MCP_INVALID_REQUEST, NULL,
                     "JSON-RPC batches are not supported (MCP 2025-06-18 removed them): send "
                     "one message per POST");
    } else if (!json_is_object(msg)) {
        answer_error(out, 400, NULL, LH_MCP_INVALID_REQUEST, NULL,
                     "a JSON-RPC message must be a JSON object");
    } else {
        handle_message(mcp, who, session_id, msg, http, out);
    }
    json_decref(msg);
}

void
lh_mcp_handle(lh_mcp *mcp, const lh_principal *who, const char *session_id, const char *body,
              size_t len, const lh_mcp_http *http, lh_mcp_answer *out)
{
    assert(who != NULL); /* the door authenticated the request */
    memset(out, 0, sizeof *out);
    const char *method = http->method ? http->method : "";
    bool post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;
    if (!post && !del) {
        /* GET would open an SSE stream for server-initiated messages; we send none */
        out->allow = "POST, DELETE";
        answer_error(out, 405, NULL, LH_MCP_BAD_TRANSPORT, NULL,
                     "no server-initiated stream here: POST JSON-RPC messages, DELETE to end a "
                     "session");
        return;
    }
    if (!origin_allowed(mcp, http->origin, http->host)) {
        answer_error(out, 403, NULL, LH_MCP_BAD_TRANSPORT, NULL,
                     "Origin is not allowed: add it to [mcp] allowed_origins");
        return;
    }
    if (http->protocol_version && !version_supported(http->protocol_version)) {
        answer_error(out, 400, NULL, LH_MCP_BAD_TRANSPORT,
                     json_pack("{s:o, s:o}", "supported", supported_versions_json(), "requested",
                               lh_json_text(http->protocol_version)),
                     "unsupported MCP-Protocol-Version");
        return;
    }
    if (session_id && session_id[0] == '\0')
        session_id = NULL;
    if (del)
        handle_delete(mcp, who, session_id, out);
    else
        handle_post(mcp, who, session_id, body, len, http, out);
}
