/*
 * cmd_mcp_stdio.c — `lakehouse mcp-stdio`: the MCP stdio transport in front of a running
 * server's /mcp, for MCP clients that only spawn local processes.
 *
 * The client writes one JSON-RPC message per line on our stdin; each is POSTed to /mcp
 * with the CLI's token (client.c: $LAKEHOUSE_TOKEN or <data_dir>/admin.token) and the
 * session the initialize opened, and every answer goes out as one line on stdout (nothing
 * else is ever written there; diagnostics go to stderr). Messages are handled in the
 * order they arrive. A refusal the client could not match to its request (an error whose
 * id is null, or the gateway's own error body for 401/413) is given the request's id. When
 * the server has ended the session (404: restarted, expired) the client's initialize is
 * replayed once and the message sent again, so a long-lived stdio client never sees the
 * session end. At end of input the session is ended (DELETE) and we exit 0.
 */
#include "cli/cli.h"
#include "core/core.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_MAX 256

typedef struct bridge {
    lh_client *client;
    char session[SESSION_MAX];
    char version[32];
    char *init_line; /* the client's initialize, replayed when the session has ended */
    size_t init_len;
} bridge;

void
lh_cmd_mcp_stdio_help(void)
{
    printf("usage: lakehouse mcp-stdio [--config FILE]\n\n"
           "Speaks MCP over stdin/stdout (one JSON-RPC message per line) for clients that\n"
           "spawn a local process, and forwards every message to the running server's /mcp\n"
           "endpoint with the CLI's token ($LAKEHOUSE_TOKEN, else <data_dir>/admin.token) at\n"
           "the CLI's address ($LAKEHOUSE_URL, else [server] host and port). Stdout carries\n"
           "only MCP messages; diagnostics go to stderr.\n");
}

/* Write one message as a line. false when stdout is gone. */
static bool
write_message(json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return false;
    bool ok = fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0;
    free(text);
    return ok;
}

static json_t *
rpc_error(const json_t *id, int code, const char *message, json_t *data)
{
    json_t *error = json_pack("{s:i, s:o}", "code", code, "message", lh_json_text(message));
    if (data)
        json_object_set_new(error, "data", data);
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error",
                     error);
}

/* POST body; the session header when we have one (and not for an initialize). */
static int
post(bridge *b, const char *body, size_t len, bool initialize, long *status, lh_buf *out)
{
    if (initialize)
        b->session[0] = '\0';
    return lh_client_mcp(b->client, "POST", body, len, b->session[0] ? b->session : NULL,
                         b->version[0] ? b->version : NULL, status, out, b->session,
                         sizeof b->session);
}

/* Remember the negotiated version from an initialize answer. */
static void
note_version(bridge *b, const lh_buf *answer)
{
    json_t *j = json_loadb(answer->data, answer->len, 0, NULL);
    const char *v =
        json_string_value(json_object_get(json_object_get(j, "result"), "protocolVersion"));
    if (v)
        snprintf(b->version, sizeof b->version, "%s", v);
    json_decref(j);
}

/* The session ended on the server: open a new one with the client's initialize. */
static bool
reopen(bridge *b)
{
    if (b->init_line == NULL)
        return false;
    long status = 0;
    lh_buf answer;
    lh_buf_init(&answer);
    b->version[0] = '\0';
    bool ok = post(b, b->init_line, b->init_len, true, &status, &answer) == 0 && status == 200 &&
              b->session[0];
    if (ok) {
        note_version(b, &answer);
        static const char initialized[] = "{\"jsonrpc\":\"2.0\",\"method\":"
                                          "\"notifications/initialized\"}";
        lh_buf_free(&answer);
        lh_buf_init(&answer);
        post(b, initialized, sizeof initialized - 1, false, &status, &answer);
        fprintf(stderr, "lakehouse mcp-stdio: the server ended the session; opened a new one\n");
    }
    lh_buf_free(&answer);
    return ok;
}

/* What to write back for an HTTP answer to a message with id (NULL for a notification or
 * a response): the JSON-RPC answer, with the id filled in when the server could not know
 * it; NULL for nothing. */
static json_t *
reply_of(const json_t *id, long status, const lh_buf *body)
{
    json_t *j = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
    if (json_is_string(json_object_get(j, "jsonrpc"))) {
        if (id && json_is_null(json_object_get(j, "id")))
            json_object_set(j, "id", (json_t *)id);
        return j;
    }
    /* not a JSON-RPC body: the gateway refused the request (401, 413, 503, ...) */
    const char *message =
        json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    char text[300];
    snprintf(text, sizeof text, "the server answered HTTP %ld%s%s", status, message ? ": " : "",
             message ? message : "");
    json_decref(j);
    if (status == 202 || (status == 200 && body->len == 0))
        return NULL;
    if (id == NULL) {
        fprintf(stderr, "lakehouse mcp-stdio: %s\n", text);
        return NULL;
    }
    return rpc_error(id, -32000, text, json_pack("{s:i}", "http_status", (int)status));
}

/* Forward one line. false when stdout is gone. */
static bool
forward(bridge *b, const char *line, size_t len)
{
    json_t *msg = json_loadb(line, len, JSON_DECODE_ANY, NULL);
    const json_t *id = json_object_get(msg, "id");
    const char *method = json_string_value(json_object_get(msg, "method"));
    bool is_request = id && method;
    bool initialize = method && strcmp(method, "initialize") == 0;
    if (initialize) {
        free(b->init_line);
        b->init_line = lh_strndup(line, len);
        b->init_len = len;
        b->version[0] = '\0';
    }
    long status = 0;
    lh_buf answer;
    lh_buf_init(&answer);
    int rc = post(b, line, len, initialize, &status, &answer);
    if (rc == 0 && status == 404 && !initialize && b->session[0] && reopen(b)) {
        lh_buf_free(&answer);
        lh_buf_init(&answer);
        rc = post(b, line, len, false, &status, &answer);
    }
    json_t *reply = NULL;
    if (rc != 0)
        reply = is_request ? rpc_error(id, -32000, "the lakehouse server cannot be reached", NULL)
                           : NULL;
    else
        reply = reply_of(is_request ? id : NULL, status, &answer);
    if (rc == 0 && initialize && status == 200)
        note_version(b, &answer);
    bool ok = reply == NULL || write_message(reply);
    json_decref(reply);
    json_decref(msg);
    lh_buf_free(&answer);
    return ok;
}

int
lh_cmd_mcp_stdio(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            config = argv[++i];
        } else {
            fprintf(stderr, "lakehouse mcp-stdio: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    bridge b = {0};
    int rc = lh_client_open(config, &b.client);
    if (rc != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN); /* a client that closed our stdout: write fails, we stop */
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        if (!forward(&b, line, (size_t)n))
            break;
    }
    free(line);
    if (b.session[0]) {
        long status = 0;
        lh_buf answer;
        lh_buf_init(&answer);
        lh_client_mcp(b.client, "DELETE", NULL, 0, b.session, b.version[0] ? b.version : NULL,
                      &status, &answer, b.session, sizeof b.session);
        lh_buf_free(&answer);
    }
    free(b.init_line);
    lh_client_close(b.client);
    return 0;
}
