/*
 * mcp.h — the Model Context Protocol server: JSON-RPC 2.0 over the Streamable HTTP
 * transport of MCP 2025-06-18 (2025-03-26 is also accepted), with sessions bound to the
 * principal that opened them. A door (src/http for POST/GET/DELETE /mcp) authenticates the
 * request into an lh_principal, hands the request's body and MCP headers to lh_mcp_handle
 * and sends back the status, headers and body it gets. Everything MCP decides lives here;
 * what a principal may see or call is decided by the modules below (auth, catalog, the tool
 * registry), as for every other door.
 *
 * Thread safety: lh_mcp_handle may be called from any number of threads at once; the
 * session table has one lock, held briefly and never across catalog or tool calls.
 */
#ifndef LH_MCP_H
#define LH_MCP_H

#include "agent/agent.h"
#include "auth/auth.h"
#include "catalog/catalog.h"
#include "workspace/workspace.h"
#include "core/core.h"

#include <stddef.h>

typedef struct lh_mcp lh_mcp;

/* What the server answers with (serverInfo.name is "lakehouse"). */
#define LH_MCP_LATEST_VERSION "2025-06-18"
/* A session id: 32 random bytes as 64 hex digits. */
#define LH_MCP_SESSION_ID_LEN 64

typedef struct lh_mcp_deps {
    const lh_config *config;   /* [mcp] max_sessions, session_idle_s, allowed_origins */
    lh_catalog *catalog;       /* resources: the datasets */
    lh_tools *tools;           /* tools/list and tools/call (NULL: no tools) */
    lh_workspaces *workspaces; /* workspaces as resources (NULL: none) */
} lh_mcp_deps;

/* Returns new (free with lh_mcp_free). deps and what it points to are borrowed and must
 * outlive the server. */
int lh_mcp_new(const lh_mcp_deps *deps, lh_mcp **out, lh_err *err);
void lh_mcp_free(lh_mcp *mcp); /* accepts NULL */

/* One HTTP request to the MCP endpoint, as the door received it. Every string is borrowed
 * and may be NULL when the header is absent. */
typedef struct lh_mcp_http {
    const char *method;           /* "POST", "GET", "DELETE" (others: 405) */
    const char *protocol_version; /* MCP-Protocol-Version */
    const char *accept;           /* Accept */
    const char *content_type;     /* Content-Type */
    const char *origin;           /* Origin */
    const char *host;             /* Host */
    const char *request_id;       /* the door's request id, for logs and audit records */
} lh_mcp_http;

/* The HTTP answer: status, body (JSON or empty) and the headers to add. */
typedef struct lh_mcp_answer {
    int status;
    char *body; /* new (free with lh_mcp_answer_free); NULL for no body (202, 200 to DELETE) */
    char session_id[LH_MCP_SESSION_ID_LEN + 1]; /* non-empty: send as Mcp-Session-Id */
    const char *allow;                          /* non-NULL: send as Allow (405) */
} lh_mcp_answer;

/* Handle one request of principal `who` (borrowed; authenticated by the door) carrying
 * session_id (the Mcp-Session-Id header, or NULL) and body (len bytes, not necessarily
 * NUL-terminated; the door has already applied its body size limit). Fills *out (always:
 * protocol errors are answers too, with the HTTP status and JSON-RPC error the spec
 * gives). Never logs or echoes the bearer token. */
void lh_mcp_handle(lh_mcp *mcp, const lh_principal *who, const char *session_id, const char *body,
                   size_t len, const lh_mcp_http *http, lh_mcp_answer *out);
void lh_mcp_answer_free(lh_mcp_answer *a); /* accepts NULL; leaves it empty */

/* Open sessions (for tests and /metrics). */
size_t lh_mcp_sessions(lh_mcp *mcp);

#endif
