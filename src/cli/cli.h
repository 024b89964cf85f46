/*
 * cli.h — subcommands of the lakehouse binary. Each returns the process exit status:
 * 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef LH_CLI_H
#define LH_CLI_H

#include "core/core.h"

#include <stdio.h>

int lh_cmd_serve(int argc, char **argv);
void lh_cmd_serve_help(void);
int lh_cmd_sql(int argc, char **argv);
void lh_cmd_sql_help(void);
int lh_cmd_ingest(int argc, char **argv);
void lh_cmd_ingest_help(void);
int lh_cmd_datasets(int argc, char **argv);
void lh_cmd_datasets_help(void);
int lh_cmd_search(int argc, char **argv);
void lh_cmd_search_help(void);
int lh_cmd_tools(int argc, char **argv);
void lh_cmd_tools_help(void);
int lh_cmd_call(int argc, char **argv);
void lh_cmd_call_help(void);
int lh_cmd_audit(int argc, char **argv);
void lh_cmd_audit_help(void);
int lh_cmd_demo(int argc, char **argv);
void lh_cmd_demo_help(void);
int lh_cmd_mcp_stdio(int argc, char **argv);
void lh_cmd_mcp_stdio_help(void);

/* ---- the HTTP client the client commands share (client.c) ------------------------- */
typedef struct lh_client lh_client;
/* Find the server and the token (see client.c). Returns an exit status; 0 and *out. */
int lh_client_open(const char *config_path, lh_client **out);
void lh_client_close(lh_client *c);
/* One request: JSON body, or a file streamed as the body, or neither. Returns an exit
 * status (0 when an HTTP answer came back, whatever its status). */
int lh_client_request(lh_client *c, const char *method, const char *path, const char *json_body,
                      const char *upload_path, long *status, lh_buf *out);
/* One request to the server's MCP endpoint (/mcp): body (len bytes; NULL for none), with
 * the Mcp-Session-Id and MCP-Protocol-Version headers when not NULL. *status, the answer
 * into out and, when the answer carries Mcp-Session-Id, that into session_out (size bytes;
 * else left as it is). Returns an exit status as lh_client_request. */
int lh_client_mcp(lh_client *c, const char *method, const char *body, size_t len,
                  const char *session_id, const char *protocol_version, long *status, lh_buf *out,
                  char *session_out, size_t session_size);
/* Print an error body for a person; returns the exit status to use. */
int lh_client_print_error(long status, const lh_buf *body);
void lh_client_print_table(FILE *out, json_t *columns, json_t *rows);
/* POST /ingest/file with params (name, value pairs, NULL-terminated; NULL values skipped). */
int lh_client_ingest(lh_client *c, const char *file, const char *const *params, json_t **result);
/* The demo's resume index and named tools (demo_tools.c); an exit status. */
int lh_demo_tools(lh_client *c);
/* A workspace for one open job order, with a shortlist of candidates picked by SQL and a
 * note (demo_tools.c); a re-run keeps it and changes nothing. An exit status. */
int lh_demo_workspace(lh_client *c);

#endif
