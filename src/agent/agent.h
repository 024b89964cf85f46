/*
 * agent.h — the governed tool registry (ADR-015): named tools through which agents reach
 * the data instead of free-form SQL. Every door (HTTP, MCP, gRPC) calls these functions
 * with the principal it authenticated; the rules — who may manage and call a tool, which
 * buckets its datasets lie in, whether it may write, how often it may be called, what is
 * audited — live here, so no door can skip one.
 *
 * A tool is a JSON definition (docs/API.md, "Tools"): name, description, input_schema,
 * kind (sql, search, upsert, insert) with its binding, allow, rate, grants_write. Each
 * version is stored create-only in the primary bucket (_tools/{name}/v{N:06}.json, see
 * layout.h); a delete is a tombstone version. The newest version of each tool is loaded
 * at open; older ones are read from the bucket when asked for.
 *
 * Thread safety: every function is thread-safe. The registry's lock guards the table of
 * current versions and is held only to look up or swap one; a call holds a reference to
 * the version it started with. Managing (put, delete) is serialised by a second lock held
 * across validation and the store's create-only put.
 */
#ifndef LH_AGENT_H
#define LH_AGENT_H

#include "core/core.h"
#include "auth/auth.h"
#include "catalog/catalog.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "storage/storage.h"
#include "vector/vector.h"
#include "workspace/workspace.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct lh_tools lh_tools;

/* Make one audit record durable: 0 once it is (the answer is sent only then), else an
 * error. record is borrowed. Called from any thread; must be thread-safe. */
typedef int (*lh_audit_fn)(void *ctx, const json_t *record, lh_err *err);

typedef struct lh_tools_deps {
    const lh_config *config; /* [tools] max_calls_per_minute, [engine] limits */
    lh_buckets *buckets;     /* the primary bucket holds the definitions */
    lh_catalog *catalog;
    lh_engine *engine;          /* the users' engine: sql tools, search filters, references */
    lh_engine *internal_engine; /* row changes (upsert, insert) */
    lh_vectors *vectors;
    lh_workspaces *workspaces; /* the builtin ws_* tools call it; NULL: there are none */
    lh_audit_fn audit;         /* required */
    void *audit_ctx;
    /* One audit record by call id (new), for replays; NULL: replays are 503. Called with
     * audit_ctx. */
    int (*audit_get)(void *ctx, const char *call_id, json_t **out, lh_err *err);
    int64_t (*now_us)(void); /* the rate limiter's clock (tests); NULL: lh_mono_us */
} lh_tools_deps;

/* Load the newest version of every stored tool (a version that cannot be read or no
 * longer compiles is logged and the tool left out). deps is copied; what it points to is
 * borrowed and must outlive the registry. Returns new (lh_tools_close). */
int lh_tools_open(const lh_tools_deps *deps, lh_tools **out, lh_err *err);
void lh_tools_close(lh_tools *reg); /* accepts NULL; no call may be running */
/* Every principal's ceiling of tool calls a minute across all tools (a configuration
 * reload; a principal's profile may set its own). Thread-safe; calls from now on. */
void lh_tools_set_max_calls_per_minute(lh_tools *reg, int64_t per_minute);

/* Managing tools: admins only (403 otherwise). def is the definition as the client sent
 * it (borrowed); name its name (from the path; must agree with def's "name" when that is
 * given). create: the tool must not exist (409 tool_exists), else it must (404
 * tool_not_found) and the change becomes version N+1. Validated in full (400 naming the
 * field, dataset, column, index, parameter or schema keyword), then stored create-only
 * (409 tool_conflict when another server stored that version first). *out (new): the
 * stored version, as lh_tools_get answers it. */
int lh_tools_put(lh_tools *reg, const lh_principal *who, const char *name, const json_t *def,
                 bool create, json_t **out, lh_err *err);
/* A tool's current version (version 0) or version N from the bucket (404 tool_not_found /
 * version_not_found). Admins, or principals who may call it (else 404, as for a tool that
 * does not exist). *out new. */
int lh_tools_get(lh_tools *reg, const lh_principal *who, const char *name, int64_t version,
                 json_t **out, lh_err *err);
/* Every stored version of a tool, oldest first: [{"version","created_at","created_by",
 * "deleted"}]. Same visibility as lh_tools_get. *out new. */
int lh_tools_versions(lh_tools *reg, const lh_principal *who, const char *name, json_t **out,
                      lh_err *err);
/* Tombstone version N+1: the tool can no longer be called or listed; its history stays.
 * Admins only. *out new: {"name","version","deleted":true}. */
int lh_tools_delete(lh_tools *reg, const lh_principal *who, const char *name, json_t **out,
                    lh_err *err);

typedef enum { LH_TOOLS_NATIVE, LH_TOOLS_OPENAI, LH_TOOLS_MCP } lh_tools_format;
/* The tools who may call (admins: every live tool), by name. NATIVE: the definitions
 * with version; OPENAI: [{"type":"function","function":{"name","description",
 * "parameters"}}]; MCP: [{"name","description","inputSchema"}]. Returns new. */
json_t *lh_tools_list(lh_tools *reg, const lh_principal *who, lh_tools_format format);
/* Whether name is a builtin tool (ws_create, ws_note, ws_shortlist_add, ws_run_query,
 * ws_brief, ws_handoff: kind "builtin", never stored, never changed; see README.md). */
bool lh_tools_is_builtin(const char *name);
/* "native", "openai", "mcp" → format; -1 when unknown. */
int lh_tools_format_parse(const char *s);

/* One call of a tool, as a door received it. All borrowed for the call. */
typedef struct lh_tool_call {
    const lh_principal *principal;
    const char *name;
    const json_t *arguments;  /* an object */
    const char *workspace_id; /* may be NULL */
    const char *via;          /* "http", "mcp", "grpc" */
    const char *request_id;   /* may be NULL */
    lh_gone_check gone;       /* the client went away (fn NULL: not asked) */
} lh_tool_call;

/* What a door needs besides the answer, filled whatever the outcome. */
typedef struct lh_tool_outcome {
    char call_id[40];      /* the audit record's id ("" when no record was made) */
    int64_t retry_after_s; /* 429: whole seconds until a call would be admitted */
} lh_tool_outcome;

/* Call a tool: find it (404), check who may call it (403: not in allow, a dataset in a
 * bucket it may not use, a write without a write role or grants_write), take from its
 * rate limits (429 rate_limited, outcome->retry_after_s), validate the arguments (400
 * invalid_arguments naming "/arguments/x: rule"), run it, and make the audit record
 * durable — for every outcome — before returning. *result (new):
 * {"call_id","result","took_us","dataset_versions"}. When the audit record cannot be written, a
 * read call fails 503 audit_unavailable and its result is dropped; a write has committed by then
 * and fails 503 audit_unavailable too, the detail naming the committed version (the
 * record is logged in full). o may be NULL. */
int lh_tools_call(lh_tools *reg, const lh_tool_call *c, json_t **result, lh_tool_outcome *o,
                  lh_err *err);

/* Replay a recorded read call (admins only, else 403): the audit record of call_id
 * (audit_get; 404 audit_record_not_found) is re-run with its recorded arguments, at the
 * tool version it used (read from the bucket when the tool changed since) and at the
 * dataset versions it saw — a sql tool reads exactly those (time travel); a search tool
 * runs on the index as it is now, and "at_recorded_versions" says false when its dataset
 * moved since. 409 not_replayable when the call was refused or failed, its tool writes,
 * its arguments were redacted (x-sensitive) or truncated in the record, or the tool
 * version cannot be read. The replay is itself audited (via "replay", "replay_of").
 * *out (new): {"call_id","replayed_call_id","tool","tool_version","result_sha256",
 * "original_sha256","matches","dataset_versions","at_recorded_versions"}. Errors of the
 * run are the tool's own (e.g. 404 version_not_found when a dataset version is gone);
 * o->call_id names the replay's record whenever one was made. o may be NULL. */
int lh_tools_replay(lh_tools *reg, const lh_principal *who, const char *call_id,
                    const char *request_id, json_t **out, lh_tool_outcome *o, lh_err *err);

#endif
