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
int lh_cmd_demo(int argc, char **argv);
void lh_cmd_demo_help(void);

/* ---- the HTTP client the client commands share (client.c) ------------------------- */
typedef struct lh_client lh_client;
/* Find the server and the token (see client.c). Returns an exit status; 0 and *out. */
int lh_client_open(const char *config_path, lh_client **out);
void lh_client_close(lh_client *c);
/* One request: JSON body, or a file streamed as the body, or neither. Returns an exit
 * status (0 when an HTTP answer came back, whatever its status). */
int lh_client_request(lh_client *c, const char *method, const char *path, const char *json_body,
                      const char *upload_path, long *status, lh_buf *out);
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
