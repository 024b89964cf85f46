/*
 * main.c — the lakehouse command: dispatch to subcommands, version and help.
 */
#include "cli/cli.h"
#include "core/core.h"
#include "engine/engine.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    void (*help)(void);
} command;

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);
static void help_version(void);
static void help_help(void);

static const command COMMANDS[] = {
    {"serve", "start the HTTP server", lh_cmd_serve, lh_cmd_serve_help},
    {"sql", "run a SELECT on the running server", lh_cmd_sql, lh_cmd_sql_help},
    {"ingest", "load a CSV/JSON/Parquet file as a dataset", lh_cmd_ingest, lh_cmd_ingest_help},
    {"datasets", "list the datasets", lh_cmd_datasets, lh_cmd_datasets_help},
    {"search", "search an index: by its vectors, by words (BM25), or both", lh_cmd_search,
     lh_cmd_search_help},
    {"tools", "list the named tools for agents", lh_cmd_tools, lh_cmd_tools_help},
    {"call", "call a named tool", lh_cmd_call, lh_cmd_call_help},
    {"audit", "list the audit records of tool calls, or show one", lh_cmd_audit, lh_cmd_audit_help},
    {"demo", "load the staffing demo data and ask it questions", lh_cmd_demo, lh_cmd_demo_help},
    {"mcp-stdio", "the running server's MCP endpoint over stdin/stdout", lh_cmd_mcp_stdio,
     lh_cmd_mcp_stdio_help},
    {"version", "print the lakehouse and DuckDB versions", cmd_version, help_version},
    {"help", "show help for a command", cmd_help, help_help},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static const command *
find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0)
            return &COMMANDS[i];
    return NULL;
}

static void
usage(FILE *out)
{
    fprintf(out,
            "lakehouse %s — a governed analytical store over a folder or S3 bucket\n\n"
            "usage: lakehouse <command> [options]\n\ncommands:\n",
            LH_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out, "\n'lakehouse help <command>' shows a command's options.\n");
}

static int
cmd_version(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "lakehouse version: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    printf("lakehouse %s (DuckDB %s)\n", LH_VERSION, lh_engine_version());
    return 0;
}

static void
help_version(void)
{
    printf("usage: lakehouse version\n\nPrints the lakehouse version and the DuckDB library "
           "version it runs on.\n");
}

static int
cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const command *c = find_command(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "lakehouse help: unknown command '%s'; see 'lakehouse help'\n", argv[1]);
        return 2;
    }
    c->help();
    return 0;
}

static void
help_help(void)
{
    printf("usage: lakehouse help [command]\n\nLists the commands, or shows one command's "
           "options.\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    else if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
        name = "version";
    const command *c = find_command(name);
    if (c == NULL) {
        fprintf(stderr, "lakehouse: unknown command '%s'; see 'lakehouse help'\n", argv[1]);
        return 2;
    }
    /* a subcommand sees argv starting at its own name */
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            c->help();
            return 0;
        }
    return c->run(argc - 1, argv + 1);
}
