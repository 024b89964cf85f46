/*
 * agent_int.h — internals of src/agent. Not used outside this folder (the unit tests
 * include it).
 */
#ifndef LH_AGENT_INT_H
#define LH_AGENT_INT_H

#include "agent/agent.h"

#include <pthread.h>
#include <stdatomic.h>

#include "agent/schema.h"

/* ---- rate limits (ratelimit.c) ---------------------------------------------------------- */

/* Token buckets by key. A bucket holds up to `burst` tokens and gains per_minute / 60 per
 * second; a call takes one token from each of the buckets it names, all or none, under
 * one lock, so concurrent callers are admitted exactly as a serial order of them would
 * be. Thread-safe. */
typedef struct lh_rate lh_rate;
typedef struct lh_rate_limit {
    const char *key;
    double per_minute; /* > 0 */
    double burst;      /* >= 1 */
} lh_rate_limit;
lh_rate *lh_agent__rate_new(void);
void lh_agent__rate_free(lh_rate *r); /* accepts NULL */
/* Take one token from each of the n buckets at time now_us (monotonic). true when taken;
 * else false with *retry_after_us, how long until every one of them holds a token. A new
 * bucket starts full. */
bool lh_agent__rate_take(lh_rate *r, const lh_rate_limit *limits, size_t n, int64_t now_us,
                         int64_t *retry_after_us);

/* ---- the registry (tools.c, tools_def.c, tools_call.c) ----------------------------------- */

typedef enum {
    LH_TOOL_SQL,
    LH_TOOL_SEARCH,
    LH_TOOL_UPSERT,
    LH_TOOL_INSERT,
    LH_TOOL_BUILTIN
} lh_tool_kind;

/* One version of a tool, compiled. Immutable once published; reference-counted so a call
 * finishes on the version it started with. */
typedef struct lh_tool {
    atomic_int refs;
    char name[LH_NAME_MAX];
    int64_t version;
    bool deleted;
    json_t *record;        /* the stored version: {"name","version","created_at","created_by",
                              "deleted","definition","derived"} */
    const json_t *def;     /* record's "definition" (borrowed from record) */
    const json_t *derived; /* record's "derived": {"datasets","params"} */
    lh_tool_kind kind;
    lh_schema *schema; /* the input schema, compiled (NULL for a tombstone) */
    double per_minute, burst;
    bool writes;
} lh_tool;

struct lh_tools {
    lh_tools_deps deps;
    pthread_mutex_t lock;        /* guards tools */
    json_t *tools;               /* name -> lh_tool * (as a json integer holding the pointer) */
    pthread_mutex_t manage_lock; /* one put/delete at a time */
    lh_rate *rate;
    atomic_llong max_calls_per_minute; /* [tools] max_calls_per_minute, changed by a reload */
};

void lh_agent__tool_release(lh_tool *t); /* accepts NULL */
/* Make t the current version of its name (the table takes t's reference). */
void lh_agent__publish(lh_tools *reg, lh_tool *t);
/* The current version of name with a reference taken (release it), or NULL. */
lh_tool *lh_agent__tool_acquire(lh_tools *reg, const char *name);
/* Version `version` of name with a reference taken (release it): the current one, or
 * read from the bucket and compiled. NULL and err set (404 version_not_found) when there
 * is no such version or it is a tombstone. */
lh_tool *lh_agent__tool_acquire_version(lh_tools *reg, const char *name, int64_t version,
                                        lh_err *err);
/* Compile a stored record into a tool (new; refs 1). 400 when it does not compile. */
int lh_agent__tool_compile(json_t *record, lh_tool **out, lh_err *err);
/* Check a definition against the catalog, the engine and the vector indexes, filling in
 * defaults (def is the registry's own copy); *derived (new) gets what the calls need:
 * {"datasets": [...], "params": [...]}. 400 naming the problem. */
int lh_agent__def_check(lh_tools *reg, const char *name, json_t *def, json_t **derived,
                        lh_err *err);
/* Whether who may call t (allow list only). */
bool lh_agent__allowed(const lh_tool *t, const lh_principal *who);
/* Run a compiled tool (the checks are done): *result new; *versions gets
 * {"dataset": version} of what it read or wrote; *rows the rows it returned or changed.
 * at (a replay; NULL: now) maps dataset names to the versions a read tool reads: a sql
 * tool reads exactly those (time travel views), a search tool runs on the index as it is
 * now and *pinned says false when a dataset has moved since. */
int lh_agent__run(lh_tools *reg, const lh_tool *t, const lh_tool_call *c, const json_t *at,
                  json_t *versions, int64_t *rows, json_t **result, bool *pinned, lh_err *err);

/* A replay's inputs and what it learns (tools_replay.c). */
typedef struct lh_agent__replay {
    const json_t *at; /* dataset name -> version the original call saw (borrowed) */
    const char *of;   /* the original call's id (the new record's "replay_of") */
    char sha256[65];  /* out: the replayed result's hash */
    bool pinned;      /* out: every dataset was read at the version `at` names */
    json_t *versions; /* out (new): the versions read */
} lh_agent__replay;
/* One call through the checks (none for a replay), the run and the audit record.
 * pinned_tool (borrowed; NULL: the current version of c->name) is the version to run;
 * rp (NULL: an ordinary call) makes it a replay. As lh_tools_call otherwise. */
int lh_agent__call(lh_tools *reg, const lh_tool_call *c, lh_tool *pinned_tool, lh_agent__replay *rp,
                   json_t **result, lh_tool_outcome *o, lh_err *err);
/* The SHA-256 (hex) of a result as audit records state it: compact JSON, keys sorted. */
void lh_agent__result_sha256(const json_t *result, char sha[65]);

/* ---- builtin tools (tools_builtin.c) ------------------------------------------------------ */

/* Whether name is one of the builtin ws_* tools. */
bool lh_agent__builtin_name(const char *name);
/* Add the builtin tools to the table (at open, with a workspace module). */
int lh_agent__builtins_add(lh_tools *reg, lh_err *err);
/* 409 builtin_tool: name cannot be created, changed or deleted. */
int lh_agent__builtin_refuse(const char *name, lh_err *err);
/* Run builtin t (the checks are done): *result new; *rows what it added or returned. */
int lh_agent__run_builtin(lh_tools *reg, const lh_tool *t, const lh_tool_call *c, int64_t *rows,
                          json_t **result, lh_err *err);
/* The workspace a call of builtin t is about (its argument, for ws_create the new one from
 * result, else the call's), "" when none, into out. */
void lh_agent__builtin_workspace(const lh_tool *t, const lh_tool_call *c, const json_t *result,
                                 char *out, size_t size);

#endif
