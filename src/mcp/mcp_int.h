/*
 * mcp_int.h — internals shared by the files of src/mcp: the server object, the session
 * table and the JSON-RPC method handlers. Not used outside this folder.
 */
#ifndef LH_MCP_INT_H
#define LH_MCP_INT_H

#include "mcp/mcp.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* JSON-RPC 2.0 error codes, and the ones MCP adds. */
enum {
    LH_MCP_PARSE_ERROR = -32700,
    LH_MCP_INVALID_REQUEST = -32600,
    LH_MCP_METHOD_NOT_FOUND = -32601,
    LH_MCP_INVALID_PARAMS = -32602,
    LH_MCP_INTERNAL_ERROR = -32603,
    LH_MCP_RESOURCE_NOT_FOUND = -32002,
    /* server-defined range: transport refusals (bad headers, no session) */
    LH_MCP_BAD_TRANSPORT = -32000,
    LH_MCP_SESSION_NOT_FOUND = -32001,
};

/* Protocol versions are "YYYY-MM-DD". */
#define LH_MCP_VERSION_MAX 16

typedef struct mcp_session {
    char id[LH_MCP_SESSION_ID_LEN + 1];
    char principal[sizeof(((lh_principal *)0)->name)];
    char protocol_version[LH_MCP_VERSION_MAX];
    int64_t last_used_mono_us;
} mcp_session;

struct lh_mcp {
    lh_catalog *catalog;
    lh_tools *tools;
    lh_workspaces *workspaces;
    size_t max_sessions;
    int64_t session_idle_us;
    char **allowed_origins; /* from [mcp] allowed_origins */
    size_t n_allowed_origins;
    pthread_mutex_t lock; /* guards the session table */
    mcp_session *sessions;
    size_t n_sessions, cap_sessions;
};

/* ---- sessions (session.c) ------------------------------------------------------------- */
/* Open a session for principal (name) speaking protocol_version; its id into id_out. When
 * the table is full after dropping expired sessions, the principal's least recently used
 * session makes room, or when it has none the least recently used of all. */
int lh_mcp__session_open(lh_mcp *mcp, const char *principal, const char *protocol_version,
                         char id_out[LH_MCP_SESSION_ID_LEN + 1], lh_err *err);
/* Find session id of principal and mark it used; its protocol version into version_out.
 * LH_ENOTFOUND when there is no such session, it expired, or another principal opened it
 * (indistinguishable, so ids of others cannot be probed). */
int lh_mcp__session_use(lh_mcp *mcp, const char *id, const char *principal,
                        char version_out[LH_MCP_VERSION_MAX]);
/* End session id of principal: 0, or LH_ENOTFOUND as lh_mcp__session_use. */
int lh_mcp__session_close(lh_mcp *mcp, const char *id, const char *principal);

/* ---- methods ------------------------------------------------------------------------------ */
/* A JSON-RPC error to answer a request with. */
typedef struct mcp_rpc_err {
    int code;
    char message[256];
    json_t *data; /* new or NULL */
} mcp_rpc_err;

/* Set e (data: takes ownership, may be NULL). Returns -1. */
int lh_mcp__fail(mcp_rpc_err *e, int code, json_t *data, const char *fmt, ...) LH_PRINTF(4, 5);

/* One request to a method: who asks, its params (borrowed; an object, maybe empty). */
typedef struct mcp_call {
    lh_mcp *mcp;
    const lh_principal *who;
    const json_t *params;
    const char *protocol_version;
    const char *request_id; /* may be NULL */
} mcp_call;

/* Method handlers: 0 and *result (new), or -1 and e filled. */
typedef int (*mcp_method_fn)(const mcp_call *call, json_t **result, mcp_rpc_err *e);
int lh_mcp__resources_list(const mcp_call *call, json_t **result, mcp_rpc_err *e);
int lh_mcp__resources_read(const mcp_call *call, json_t **result, mcp_rpc_err *e);
int lh_mcp__resource_templates(const mcp_call *call, json_t **result, mcp_rpc_err *e);
int lh_mcp__tools_list(const mcp_call *call, json_t **result, mcp_rpc_err *e);
int lh_mcp__tools_call(const mcp_call *call, json_t **result, mcp_rpc_err *e);

#endif
