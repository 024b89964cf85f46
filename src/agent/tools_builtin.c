/*
 * tools_builtin.c — the registry's own tools: ws_create, ws_note, ws_shortlist_add,
 * ws_run_query, ws_brief, ws_handoff (kind "builtin", binding {"operation": name}). They
 * are made at open when the registry has a workspace module, are never stored, and
 * cannot be changed or deleted; a call goes through exactly the checks, rate limits and
 * audit of lh_tools_call like any other tool, then into src/workspace as the caller.
 *
 * Every one but ws_create names its workspace in the argument "workspace_id"; the call's
 * own workspace_id, when given, must agree. That id (for ws_create: the new one) is the
 * audit record's workspace_id, so each call shows in the workspace's activity.
 */
#include "agent/agent_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_ID_SCHEMA "\"workspace_id\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 64}"
#define ANYONE_WRITING "[\"agent\", \"writer\", \"admin\"]"

typedef struct builtin {
    const char *name;
    const char *description;
    const char *schema; /* JSON text */
    const char *roles;  /* JSON array text */
} builtin;

static const builtin BUILTINS[] = {
    {"ws_create",
     "Create a workspace for a contract or a search; you become its owner. Answers the "
     "workspace, whose id the other ws_* tools take.",
     "{\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"name\", "
     "\"kind\"], \"properties\": {"
     "\"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 200},"
     "\"kind\": {\"enum\": [\"contract\", \"search\"]},"
     "\"description\": {\"type\": \"string\", \"maxLength\": 4096},"
     "\"tier\": {\"enum\": [\"daily\", \"weekly\", \"monthly\"]},"
     "\"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"maxItems\": 32}}}",
     ANYONE_WRITING},
    {"ws_note", "Add a note to a workspace's activity (what you found, decided or left open).",
     "{\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"workspace_id\", "
     "\"text\"], \"properties\": {" WS_ID_SCHEMA ","
     "\"text\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 8192}}}",
     ANYONE_WRITING},
    {"ws_shortlist_add",
     "Add records (dataset + key) to a named shortlist of a workspace, made on first use; a "
     "record already on it is moved or renoted.",
     "{\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"workspace_id\", "
     "\"list\", \"records\"], \"properties\": {" WS_ID_SCHEMA ","
     "\"list\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 63},"
     "\"records\": {\"type\": \"array\", \"minItems\": 1, \"maxItems\": 1000, \"items\": "
     "{\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"dataset\", "
     "\"key\"], \"properties\": {\"dataset\": {\"type\": \"string\"}, \"key\": {\"type\": "
     "[\"object\", \"string\", \"integer\", \"number\"]}, \"note\": {\"type\": \"string\"}, "
     "\"rank\": {\"type\": \"integer\", \"minimum\": 1}}}}}}",
     ANYONE_WRITING},
    {"ws_run_query",
     "Run a query saved in a workspace (SQL with the workspace's staged changes, or a saved "
     "tool call); keeps the row count, hash and dataset versions so it can be reproduced.",
     "{\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"workspace_id\", "
     "\"name\"], \"properties\": {" WS_ID_SCHEMA ","
     "\"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 63}}}",
     ANYONE_WRITING},
    {"ws_brief",
     "A summary of a workspace for whoever picks it up: purpose, shortlists with their top "
     "records, staged changes, saved queries, last actions and notes.",
     "{\"type\": \"object\", \"additionalProperties\": false, \"required\": "
     "[\"workspace_id\"], \"properties\": {" WS_ID_SCHEMA "}}",
     "[\"agent\", \"reader\", \"writer\", \"admin\"]"},
    {"ws_handoff",
     "Hand a workspace you own to another principal (instant, nothing copied); you keep read "
     "access.",
     "{\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"workspace_id\", "
     "\"to\"], \"properties\": {" WS_ID_SCHEMA ","
     "\"to\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 63},"
     "\"note\": {\"type\": \"string\", \"maxLength\": 8192}}}",
     ANYONE_WRITING},
};

#define N_BUILTINS (sizeof BUILTINS / sizeof BUILTINS[0])

bool
lh_agent__builtin_name(const char *name)
{
    for (size_t i = 0; name && i < N_BUILTINS; i++)
        if (strcmp(BUILTINS[i].name, name) == 0)
            return true;
    return false;
}

bool
lh_tools_is_builtin(const char *name)
{
    return lh_agent__builtin_name(name);
}

static json_t *
builtin_record(const builtin *b, const char *at)
{
    json_error_t jerr;
    json_t *schema = json_loads(b->schema, 0, &jerr);
    json_t *roles = json_loads(b->roles, 0, &jerr);
    if (!schema || !roles) {
        json_decref(schema);
        json_decref(roles);
        return NULL; /* a bug in the table above: every server start would show it */
    }
    return json_pack("{s:s, s:i, s:s, s:s, s:b, s:{s:s, s:s, s:o, s:s, s:{s:s}, s:{s:o, s:[]}, "
                     "s:{s:i, s:i}, s:b}, s:{s:[], s:[]}}",
                     "name", b->name, "version", 1, "created_at", at, "created_by", "lakehouse",
                     "deleted", 0, "definition", "name", b->name, "description", b->description,
                     "input_schema", schema, "kind", "builtin", "binding", "operation", b->name,
                     "allow", "roles", roles, "principals", "rate", "per_minute", 120, "burst", 20,
                     "grants_write", 0, "derived", "datasets", "params");
}

int
lh_agent__builtins_add(lh_tools *reg, lh_err *err)
{
    char at[LH_TIME_MAX];
    lh_time_format(lh_now_us(), at);
    for (size_t i = 0; i < N_BUILTINS; i++) {
        json_t *record = builtin_record(&BUILTINS[i], at);
        if (!record)
            return lh_err_set(err, LH_EINTERNAL, 500, "internal_error",
                              "builtin tool '%s' has a malformed schema", BUILTINS[i].name);
        lh_tool *t = NULL, *old = lh_agent__tool_acquire(reg, BUILTINS[i].name);
        if (old) {
            json_t *fields = json_pack("{s:s, s:I}", "tool", BUILTINS[i].name, "version",
                                       (json_int_t)old->version);
            lh_log(LH_LOG_WARN, NULL, fields,
                   "a stored tool has the name of a builtin tool; the builtin one is used");
            json_decref(fields);
            lh_agent__tool_release(old);
        }
        int rc = lh_agent__tool_compile(record, &t, err);
        json_decref(record);
        if (rc != 0)
            return rc;
        lh_agent__publish(reg, t);
    }
    return 0;
}

int
lh_agent__builtin_refuse(const char *name, lh_err *err)
{
    lh_err_set(err, LH_EEXIST, 409, "builtin_tool",
               "tool '%s' is built into the server: it cannot be created, changed or deleted",
               name);
    lh_err_hint(err, "choose another name; GET /tools/%s shows the builtin definition", name);
    return LH_EEXIST;
}

void
lh_agent__builtin_workspace(const lh_tool *t, const lh_tool_call *c, const json_t *result,
                            char *out, size_t size)
{
    const char *given = json_string_value(json_object_get(c->arguments, "workspace_id"));
    if (!given && strcmp(t->name, "ws_create") == 0)
        given = json_string_value(json_object_get(result, "id"));
    if (!given)
        given = c->workspace_id;
    snprintf(out, size, "%s", given ? given : "");
}

int
lh_agent__run_builtin(lh_tools *reg, const lh_tool *t, const lh_tool_call *c, int64_t *rows,
                      json_t **result, lh_err *err)
{
    lh_workspaces *w = reg->deps.workspaces;
    const lh_principal *p = c->principal;
    const json_t *a = c->arguments;
    const char *id = json_string_value(json_object_get(a, "workspace_id"));
    if (id && c->workspace_id && strcmp(id, c->workspace_id) != 0)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_arguments",
                          "/arguments/workspace_id: '%.64s' differs from the call's "
                          "workspace_id '%.64s'",
                          id, c->workspace_id);
    const char *op = t->name;
    json_t *body = NULL;
    int rc;
    *rows = 0;
    if (strcmp(op, "ws_create") == 0) {
        rc = lh_workspace_create(w, p, a, result, err);
    } else if (strcmp(op, "ws_note") == 0) {
        body = json_pack("{s:O}", "text", json_object_get(a, "text"));
        rc = lh_workspace_note(w, p, id, body, result, err);
    } else if (strcmp(op, "ws_shortlist_add") == 0) {
        body = json_pack("{s:O}", "records", json_object_get(a, "records"));
        rc = lh_workspace_shortlist_add(w, p, id, json_string_value(json_object_get(a, "list")),
                                        body, result, err);
        if (rc == 0)
            *rows = (int64_t)json_array_size(json_object_get(a, "records"));
    } else if (strcmp(op, "ws_run_query") == 0) {
        rc = lh_workspace_query_run(w, p, id, json_string_value(json_object_get(a, "name")),
                                    lh_config_int(reg->deps.config, "engine.query_timeout_ms"),
                                    lh_config_int(reg->deps.config, "engine.max_result_bytes"),
                                    result, err);
        if (rc == 0)
            *rows = json_integer_value(json_object_get(*result, "row_count"));
    } else if (strcmp(op, "ws_brief") == 0) {
        rc = lh_workspace_brief(w, p, id, result, err);
    } else {
        body = json_pack("{s:O}", "to", json_object_get(a, "to"));
        if (json_object_get(a, "note"))
            json_object_set(body, "note", json_object_get(a, "note"));
        rc = lh_workspace_handoff(w, p, id, body, result, err);
    }
    json_decref(body);
    /* the workspace module names request fields; a tool's caller gave arguments */
    if (rc != 0 && err->http_status == 400 && strncmp(err->message, "/arguments", 10) != 0) {
        char rest[sizeof err->message];
        snprintf(rest, sizeof rest, "%s", err->message);
        snprintf(err->message, sizeof err->message, "/arguments: %s", rest);
    }
    return rc;
}
