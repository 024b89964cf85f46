/*
 * workspace.h — agent workspaces (ADR-016): a named place per contract or search where
 * people and agents keep notes, shortlists of records, saved queries, staged row changes
 * (a delta layer only queries made with the workspace see) and snapshots, and hand all of
 * it to another principal without copying data.
 *
 * A workspace is a sequence of versions, each one whole JSON document stored create-only
 * at _workspaces/{id}/v{N:010}.json in the primary bucket; the newest is its state, and
 * each records who changed what and when ("change"). They are read back at start.
 *
 * Every function takes the acting principal and decides what it may do: a workspace it
 * may not read is 404 workspace_not_found (ids do not leak), one it may read but not
 * change is 403. Results are new JSON (json_decref); errors fill err. Every door (HTTP,
 * MCP, the agents' builtin ws_* tools) calls these. Thread-safe; see README.md for locks.
 */
#ifndef LH_WORKSPACE_H
#define LH_WORKSPACE_H

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "core/core.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "storage/storage.h"

typedef struct lh_workspaces lh_workspaces;

/* Tool calls made with a workspace's id, from the audit log (src/agent), as activity
 * entries [{"at","kind":"tool_call","actor","detail"}] since `since` (ISO 8601 or NULL).
 * Returns 0 and *out (new) or an error. */
typedef int (*lh_ws_audit_fn)(void *ctx, const char *workspace_id, const char *since, json_t **out,
                              lh_err *err);

/* Call tool with arguments as p, tagged with workspace_id (a saved query of kind tool):
 * *answer (new) as lh_tools_call answers, {"call_id","result","took_us",
 * "dataset_versions"}. */
typedef int (*lh_ws_tool_fn)(void *ctx, const lh_principal *p, const char *tool,
                             const json_t *arguments, const char *workspace_id, json_t **answer,
                             lh_err *err);

typedef struct lh_workspace_deps {
    const lh_config *config; /* [workspace] keys */
    lh_buckets *buckets;     /* versions go to the primary bucket */
    lh_catalog *catalog;
    lh_engine *engine;   /* internal statements (row lookups, staging) */
    lh_engine *views;    /* users' engine: saved queries run here */
    const lh_auth *auth; /* who may be given a workspace (handoff, members) */
    /* when set, asked instead of auth (the principals in force after a reload) */
    bool (*principal_known)(void *ctx, const char *name);
    void *principal_ctx;
    lh_ws_audit_fn audit; /* NULL until the audit log is wired in */
    void *audit_ctx;
    lh_ws_tool_fn run_tool; /* NULL: saved tool calls answer 501 */
    void *tool_ctx;
    bool start_timer; /* run the tier timer ([workspace] tick_s) */
} lh_workspace_deps;

/* Read the newest version of every workspace, finish publishes a crash cut short (see
 * README.md) and start the tier timer. Returns new (lh_workspace_close). */
int lh_workspace_open(const lh_workspace_deps *deps, lh_workspaces **out, lh_err *err);
void lh_workspace_close(lh_workspaces *w); /* accepts NULL; stops the timer */

/* ---- workspaces --------------------------------------------------------------------- */

/* body: {"name", "kind": "contract"|"search", "description", "tier":
 * "daily"|"weekly"|"monthly", "tags": [..], "members": {principal: "read"|"write"}}; the
 * caller becomes the owner. *out: the workspace (lh_workspace_get's shape). 400 naming
 * the field at fault. */
int lh_workspace_create(lh_workspaces *w, const lh_principal *p, const json_t *body, json_t **out,
                        lh_err *err);
typedef struct lh_workspace_filter {
    const char *owner, *kind, *text; /* NULL: any; text: in name, description or tags */
    bool include_archived;
} lh_workspace_filter;
/* Summaries of the workspaces the caller may read (admins: all), newest change first. */
int lh_workspace_list(lh_workspaces *w, const lh_principal *p, const lh_workspace_filter *f,
                      json_t **out, lh_err *err);
/* The whole state: {"id","name","kind","description","tier","tags","owner","members",
 * "state","version","created_at","created_by","change","notes","shortlists","queries",
 * "staged","published","snapshots","access"}. */
int lh_workspace_get(lh_workspaces *w, const lh_principal *p, const char *id, json_t **out,
                     lh_err *err);
/* name, description, tier, tags (writers); members (owner or admin). */
int lh_workspace_patch(lh_workspaces *w, const lh_principal *p, const char *id, const json_t *body,
                       json_t **out, lh_err *err);
/* Archive (owner or admin): read-only from then on, hidden from lists unless asked. */
int lh_workspace_archive(lh_workspaces *w, const lh_principal *p, const char *id, json_t **out,
                         lh_err *err);
/* body {"to", "note"}: one new version makes `to` (a configured principal) the owner; the
 * previous owner keeps read access. No data object is copied. Owner or admin. */
int lh_workspace_handoff(lh_workspaces *w, const lh_principal *p, const char *id,
                         const json_t *body, json_t **out, lh_err *err);
/* A summary for whoever picks the workspace up: {"id","name","kind","purpose","owner",
 * "tier","shortlists": [{"name","records","top": [...]}],"staged": [...],"queries",
 * "last_actions": [...],"notes": [...]}. */
int lh_workspace_brief(lh_workspaces *w, const lh_principal *p, const char *id, json_t **out,
                       lh_err *err);
/* body {"text"}: an explicit note. */
int lh_workspace_note(lh_workspaces *w, const lh_principal *p, const char *id, const json_t *body,
                      json_t **out, lh_err *err);

typedef struct lh_ws_activity_filter {
    const char *kind;  /* NULL: any */
    const char *since; /* ISO 8601, inclusive; NULL: from the start */
    int64_t limit, offset;
} lh_ws_activity_filter;
/* The workspace's own entries, the row changes journaled with its id and (with an audit
 * source) tool calls, oldest first: {"activity": [{"at","kind","actor","detail"}],
 * "next_cursor"}. */
int lh_workspace_activity(lh_workspaces *w, const lh_principal *p, const char *id,
                          const lh_ws_activity_filter *f, json_t **out, lh_err *err);

/* ---- shortlists ----------------------------------------------------------------------- */

/* body {"records": [{"dataset","key": {..}|scalar,"note","rank"}]}: add (the shortlist is
 * made on first use; a record already on it is moved/renoted). Records are checked
 * against the dataset (404 when the key is absent) and their row's hash kept. */
int lh_workspace_shortlist_add(lh_workspaces *w, const lh_principal *p, const char *id,
                               const char *list, const json_t *body, json_t **out, lh_err *err);
/* body {"records": [{"dataset","key"}]}. */
int lh_workspace_shortlist_remove(lh_workspaces *w, const lh_principal *p, const char *id,
                                  const char *list, const json_t *body, json_t **out, lh_err *err);
/* body {"order": [{"dataset","key"}, ...]}: those first, in that order; the rest keep
 * theirs after them. */
int lh_workspace_shortlist_reorder(lh_workspaces *w, const lh_principal *p, const char *id,
                                   const char *list, const json_t *body, json_t **out, lh_err *err);
/* The shortlist with each record resolved to its current row (columns: a
 * comma-separated list, NULL: all) and "status": "unchanged"|"changed"|"deleted". */
int lh_workspace_shortlist_get(lh_workspaces *w, const lh_principal *p, const char *id,
                               const char *list, const char *columns, json_t **out, lh_err *err);

/* ---- the delta layer -------------------------------------------------------------------- */

/* body: as POST /datasets/{name}/rows ({"upsert","delete"}). Stages the changes: a delta
 * file under the workspace's prefix in the dataset's bucket and a new version naming it. */
int lh_workspace_stage(lh_workspaces *w, const lh_principal *p, const char *id, const char *dataset,
                       const json_t *body, json_t **out, lh_err *err);
/* body {"datasets": [..] (default: all staged), "on_conflict": "fail"|"workspace_wins"}:
 * each dataset's staged changes become one row change (lh_ingest_rows, source
 * "workspace:<id>"). 409 publish_conflict listing the keys changed in the dataset since
 * they were staged. Needs a writer role. */
int lh_workspace_publish(lh_workspaces *w, const lh_principal *p, const char *id,
                         const json_t *body, json_t **out, lh_err *err);
/* body {"datasets": [..]} (default all): drop staged changes. */
int lh_workspace_discard(lh_workspaces *w, const lh_principal *p, const char *id,
                         const json_t *body, json_t **out, lh_err *err);

/* ---- saved queries ------------------------------------------------------------------------ */

/* body {"sql", "description"} or {"tool", "arguments", "description"}. */
int lh_workspace_query_save(lh_workspaces *w, const lh_principal *p, const char *id,
                            const char *name, const json_t *body, json_t **out, lh_err *err);
/* Run a saved query: SQL with the workspace's delta layer, or a tool call through
 * deps.run_tool as p; keeps and returns {"rows","row_count","sha256","datasets": {name:
 * {"version"}},"at","by"} (a tool call adds "tool" and "call_id"; its rows are the
 * result's "rows" or "hits", else the result as one row). */
int lh_workspace_query_run(lh_workspaces *w, const lh_principal *p, const char *id,
                           const char *name, int64_t timeout_ms, int64_t max_bytes, json_t **out,
                           lh_err *err);

/* ---- snapshots and tiers ---------------------------------------------------------------- */

/* body {"note"}: pin the current version and the dataset versions it refers to. */
int lh_workspace_snapshot(lh_workspaces *w, const lh_principal *p, const char *id,
                          const json_t *body, json_t **out, lh_err *err);
int lh_workspace_snapshots(lh_workspaces *w, const lh_principal *p, const char *id, json_t **out,
                           lh_err *err);
/* Make the pinned version's content (notes, shortlists, queries, staged changes,
 * metadata) current again as a new version; owner and members stay as they are. */
int lh_workspace_rollback(lh_workspaces *w, const lh_principal *p, const char *id, int64_t snapshot,
                          json_t **out, lh_err *err);
/* What the timer does every [workspace] tick_s, at time now_us: automatic snapshots that
 * are due, trimming old ones, compacting activity past its tier's retention. *done
 * (may be NULL) gets how many workspaces changed. */
int lh_workspace_tick(lh_workspaces *w, int64_t now_us, int *done, lh_err *err);

/* ---- the sweep ---------------------------------------------------------------------------- */

/* Part of POST /maintenance/sweep: remove the delta files under _workspaces/{id}/delta/ of
 * every bucket that neither a workspace's current version nor one of its snapshots
 * stages (rows since published or discarded, or a stage that failed), older than
 * grace_s; files of workspaces this server does not know are kept. Adds to report (the
 * catalog's): "removed" [{"bucket","key","bytes"}], "removed_bytes", "kept_young",
 * "errors", and "workspace_deltas_removed", "workspace_deltas_kept_unknown". */
void lh_workspace_sweep(lh_workspaces *w, int64_t grace_s, bool dry_run, json_t *report);

/* ---- SQL ------------------------------------------------------------------------------------- */

/* The statements to run before `sql` on its own connection (lh_query_opts.prelude): with
 * workspace_id (may be NULL), a TEMP VIEW of each dataset with staged changes merged on
 * read; for the views _workspaces, _workspace_activity and _shortlists that sql names,
 * TEMP VIEWs holding only what p may read. 404 for a workspace p may not read.
 * Returns new (lh_ws_prelude_free). */
typedef struct lh_ws_prelude lh_ws_prelude;
int lh_workspace_prelude(lh_workspaces *w, const lh_principal *p, const char *workspace_id,
                         const char *sql, lh_ws_prelude **out, lh_err *err);
const char *const *lh_ws_prelude_sql(const lh_ws_prelude *v, size_t *n);
void lh_ws_prelude_free(lh_ws_prelude *v); /* accepts NULL; unpins files */

#endif
