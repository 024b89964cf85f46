/*
 * cmd_tools.c — `lakehouse tools`, `call` and `audit`: an agent's named tools and their
 * audit trail, as clients of a running server (GET /tools, POST /tools/{name}/call,
 * GET /audit, GET /audit/{call_id}). The rules are the server's; these only shape the
 * request and print the answer.
 */
#include "cli/cli.h"
#include "core/core.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An option's value, or an error (exit status 2) when there is none. */
static const char *
value_of(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "lakehouse %s: %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int
unknown_option(const char *cmd, const char *a)
{
    fprintf(stderr, "lakehouse %s: unknown option '%s'; see 'lakehouse help %s'\n", cmd, a, cmd);
    return 2;
}

/* GET path and print the answer: pretty JSON, or through print(json) when given. */
static int
get_and_print(const char *config, const char *path, void (*print)(json_t *))
{
    lh_client *c = NULL;
    lh_buf out;
    lh_buf_init(&out);
    long status = 0;
    int rc = lh_client_open(config, &c);
    if (rc == 0)
        rc = lh_client_request(c, "GET", path, NULL, NULL, &status, &out);
    if (rc == 0 && status != 200)
        rc = lh_client_print_error(status, &out);
    if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, 0, NULL);
        if (print && j) {
            print(j);
        } else {
            char *text = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
            printf("%s\n", text ? text : "");
            free(text);
        }
        json_decref(j);
    }
    lh_buf_free(&out);
    lh_client_close(c);
    return rc;
}

/* A table of rows (objects) with the given column names. */
static void
print_rows(json_t *rows, const char *const *names)
{
    json_t *columns = json_array();
    for (size_t i = 0; names[i]; i++)
        json_array_append_new(columns, json_pack("{s:s}", "name", names[i]));
    lh_client_print_table(stdout, columns, rows);
    json_decref(columns);
}

/* ---- tools ------------------------------------------------------------------------------- */

void
lh_cmd_tools_help(void)
{
    printf("usage: lakehouse tools [--format table|json|openai] [--config FILE]\n\n"
           "Lists the named tools the token may call (admins: every tool): name, kind,\n"
           "version and description as a table; --format json prints the definitions,\n"
           "--format openai the list in OpenAI's function-calling shape, which agent\n"
           "frameworks load as is. 'lakehouse call' calls one.\n");
}

static void
print_tools(json_t *answer)
{
    static const char *const names[] = {"name", "kind", "version", "description", NULL};
    json_t *rows = json_object_get(answer, "tools");
    print_rows(rows, names);
    printf("(%zu tool%s)\n", json_array_size(rows), json_array_size(rows) == 1 ? "" : "s");
}

int
lh_cmd_tools(int argc, char **argv)
{
    const char *config = NULL, *format = "table";
    for (int i = 1; i < argc; i++) {
        const char **into = strcmp(argv[i], "--format") == 0 ? &format
                            : strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0
                                ? &config
                                : NULL;
        if (!into)
            return argv[i][0] == '-' ? unknown_option("tools", argv[i])
                                     : (fprintf(stderr,
                                                "lakehouse tools: unexpected argument "
                                                "'%s'\n",
                                                argv[i]),
                                        2);
        if ((*into = value_of("tools", argc, argv, &i)) == NULL)
            return 2;
    }
    if (strcmp(format, "table") == 0)
        return get_and_print(config, "/tools", print_tools);
    if (strcmp(format, "json") == 0)
        return get_and_print(config, "/tools", NULL);
    if (strcmp(format, "openai") == 0)
        return get_and_print(config, "/tools?format=openai", NULL);
    fprintf(stderr, "lakehouse tools: --format is table, json or openai\n");
    return 2;
}

/* ---- call -------------------------------------------------------------------------------- */

void
lh_cmd_call_help(void)
{
    printf("usage: lakehouse call TOOL [--arg NAME=VALUE]... [--json '{...}'] [--workspace ID]\n"
           "                      [--config FILE]\n\n"
           "Calls a named tool on the running server and prints its answer (call_id, result,\n"
           "took_us) as JSON. Each --arg sets one argument: VALUE is read as JSON when it\n"
           "parses (3, true, null, \"3\", [1,2]) and as a string otherwise (Austin); --json\n"
           "gives several at once as an object, and --arg wins over it for the same name.\n"
           "--workspace records the call against a workspace. The call is validated,\n"
           "permission-checked, rate-limited and audited as through HTTP; a refusal prints\n"
           "the server's message, detail and hint and exits 2 (1 for a server fault).\n");
}

/* One --arg NAME=VALUE into args; 2 when it has no '=' or no name. */
static int
add_arg(json_t *args, const char *a)
{
    const char *eq = strchr(a, '=');
    if (!eq || eq == a) {
        fprintf(stderr, "lakehouse call: --arg takes NAME=VALUE, got '%s'\n", a);
        return 2;
    }
    char *name = lh_strndup(a, (size_t)(eq - a));
    json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    json_object_set_new(args, name, v ? v : json_string(eq + 1));
    free(name);
    return 0;
}

/* The arguments object: --json first, then every --arg over it. */
static int
call_args(int argc, char **argv, const char **tool, const char **config, const char **ws,
          json_t **out)
{
    json_t *args = NULL, *extra = json_object();
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "--arg") == 0 || strcmp(a, "--json") == 0 || strcmp(a, "--workspace") == 0 ||
            strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if ((v = value_of("call", argc, argv, &i)) == NULL) {
                rc = 2;
                break;
            }
        }
        if (strcmp(a, "--arg") == 0) {
            rc = add_arg(extra, v);
        } else if (strcmp(a, "--json") == 0) {
            json_error_t jerr;
            json_decref(args);
            args = json_loads(v, 0, &jerr);
            if (!json_is_object(args)) {
                fprintf(stderr, "lakehouse call: --json must be a JSON object (%s)\n",
                        args ? "got another value" : jerr.text);
                rc = 2;
            }
        } else if (strcmp(a, "--workspace") == 0) {
            *ws = v;
        } else if (v) {
            *config = v;
        } else if (a[0] == '-') {
            rc = unknown_option("call", a);
        } else if (*tool) {
            fprintf(stderr, "lakehouse call: unexpected argument '%s'\n", a);
            rc = 2;
        } else {
            *tool = a;
        }
    }
    if (rc == 0 && !*tool) {
        fprintf(stderr, "lakehouse call: missing the tool's name; see 'lakehouse help call'\n");
        rc = 2;
    }
    if (rc == 0) {
        if (!args)
            args = json_object();
        json_object_update(args, extra);
        *out = args;
        args = NULL;
    }
    json_decref(extra);
    json_decref(args);
    return rc;
}

int
lh_cmd_call(int argc, char **argv)
{
    const char *tool = NULL, *config = NULL, *ws = NULL;
    json_t *args = NULL;
    lh_client *c = NULL;
    char *body = NULL, *path = NULL, *escaped = NULL;
    lh_buf out;
    lh_buf_init(&out);
    long status = 0;
    int rc = call_args(argc, argv, &tool, &config, &ws, &args);
    if (rc != 0)
        goto out;
    json_t *req = json_pack("{s:O, s:s*}", "arguments", args, "workspace_id", ws);
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if ((rc = lh_client_open(config, &c)) != 0)
        goto out;
    escaped = curl_easy_escape(NULL, tool, 0);
    path = lh_sprintf("/tools/%s/call", escaped ? escaped : "");
    if ((rc = lh_client_request(c, "POST", path, body, NULL, &status, &out)) != 0)
        goto out;
    if (status != 200) {
        rc = lh_client_print_error(status, &out);
        goto out;
    }
    json_t *answer = json_loadb(out.data, out.len, 0, NULL);
    char *text = json_dumps(answer, JSON_INDENT(2));
    printf("%s\n", text ? text : "");
    free(text);
    json_decref(answer);
out:
    curl_free(escaped);
    free(path);
    free(body);
    json_decref(args);
    lh_buf_free(&out);
    lh_client_close(c);
    return rc;
}

/* ---- audit ------------------------------------------------------------------------------- */

void
lh_cmd_audit_help(void)
{
    printf("usage: lakehouse audit [--tool T] [--principal P] [--outcome ok|refused|failed]\n"
           "                       [--workspace ID] [--since TIME] [--until TIME] [--limit N]\n"
           "                       [--format table|json] [--config FILE]\n"
           "       lakehouse audit CALL_ID [--config FILE]\n\n"
           "Lists the audit records of tool calls, newest first, as a table (ts, call_id,\n"
           "principal, tool, tool_version, outcome, status, rows, duration_us); TIME is RFC\n"
           "3339 (2026-03-01T09:00:00Z) or a date; --limit is 1-1000 (default 100). With\n"
           "CALL_ID, prints that one record in full. Admins only.\n");
}

static void
print_audit(json_t *answer)
{
    static const char *const names[] = {"ts",           "call_id", "principal", "tool",
                                        "tool_version", "outcome", "status",    "rows",
                                        "duration_us",  NULL};
    json_t *rows = json_object_get(answer, "records");
    print_rows(rows, names);
    printf("(%zu record%s%s)\n", json_array_size(rows), json_array_size(rows) == 1 ? "" : "s",
           json_is_string(json_object_get(answer, "next")) ? "; more with a higher --limit" : "");
}

int
lh_cmd_audit(int argc, char **argv)
{
    static const char *const filters[][2] = {{"--tool", "tool"},
                                             {"--principal", "principal"},
                                             {"--outcome", "outcome"},
                                             {"--since", "since"},
                                             {"--until", "until"},
                                             {"--limit", "limit"},
                                             {"--workspace", "workspace_id"}};
    enum { N_FILTERS = sizeof filters / sizeof filters[0] };
    const char *values[N_FILTERS] = {0};
    const char *config = NULL, *format = "table", *call_id = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], **into = NULL;
        for (int f = 0; f < N_FILTERS; f++)
            if (strcmp(a, filters[f][0]) == 0)
                into = &values[f];
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0)
            into = &config;
        else if (strcmp(a, "--format") == 0)
            into = &format;
        if (into) {
            if ((*into = value_of("audit", argc, argv, &i)) == NULL)
                return 2;
        } else if (a[0] == '-') {
            return unknown_option("audit", a);
        } else if (call_id) {
            fprintf(stderr, "lakehouse audit: unexpected argument '%s'\n", a);
            return 2;
        } else {
            call_id = a;
        }
    }
    if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0) {
        fprintf(stderr, "lakehouse audit: --format is table or json\n");
        return 2;
    }
    lh_buf path;
    lh_buf_init(&path);
    if (call_id) {
        char *escaped = curl_easy_escape(NULL, call_id, 0);
        lh_buf_printf(&path, "/audit/%s", escaped ? escaped : "");
        curl_free(escaped);
    } else {
        lh_buf_puts(&path, "/audit");
        for (int f = 0; f < N_FILTERS; f++) {
            if (!values[f])
                continue;
            char *escaped = curl_easy_escape(NULL, values[f], 0);
            lh_buf_printf(&path, "%c%s=%s", path.len == 6 ? '?' : '&', filters[f][1],
                          escaped ? escaped : "");
            curl_free(escaped);
        }
    }
    int rc = get_and_print(config, path.data,
                           call_id || strcmp(format, "json") == 0 ? NULL : print_audit);
    lh_buf_free(&path);
    return rc;
}
