/*
 * ws_tier.c — saved queries, snapshots and tiers.
 *
 * A saved query is SQL (people) or a tool and its arguments (agents; kept, run once the
 * tool registry calls it). Running a SQL one goes through the users' engine like POST
 * /query, with the workspace's delta layer, and keeps the result's row count, SHA-256 and
 * the versions of the datasets it named, so the result can be reproduced later (time
 * travel to those versions).
 *
 * A snapshot pins a workspace version and the versions of the datasets it refers to. The
 * tier sets the cadence of automatic snapshots, how many are kept and how long raw
 * activity is kept before it is folded into one summary entry per compaction:
 *
 *   tier     period ([workspace] *_s)   automatic snapshots kept   raw activity kept
 *   daily    daily_s   (1 day)          7                          30 periods
 *   weekly   weekly_s  (7 days)         8                          26 periods
 *   monthly  monthly_s (30 days)        12                         24 periods
 *
 * The timer thread calls lh_workspace_tick every [workspace] tick_s.
 */
#include "workspace/ws_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct tier {
    const char *name, *period_key;
    int keep, activity_periods;
} tier;

static const tier TIERS[] = {{"daily", "workspace.daily_s", 7, 30},
                             {"weekly", "workspace.weekly_s", 8, 26},
                             {"monthly", "workspace.monthly_s", 12, 24}};

static const tier *
tier_of(const json_t *doc)
{
    for (size_t i = 0; i < 3; i++)
        if (strcmp(TIERS[i].name, lh_ws__str(doc, "tier")) == 0)
            return &TIERS[i];
    return &TIERS[1];
}

static int64_t
period_us(lh_workspaces *w, const tier *t)
{
    return (w->deps.config ? lh_config_int(w->deps.config, t->period_key) : 86400) * 1000000;
}

static int
bad(lh_err *err, const char *msg)
{
    lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "%s", msg);
    lh_err_hint(err, "see docs/API.md, Workspaces");
    return LH_EINVAL;
}

/* ---- saved queries ------------------------------------------------------------------------ */

int
lh_workspace_query_save(lh_workspaces *w, const lh_principal *p, const char *id, const char *name,
                        const json_t *body, json_t **out, lh_err *err)
{
    if (!lh_name_valid(name)) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_name", "'%.64s' is not a valid query name", name);
        lh_err_hint(err, "names match [a-z][a-z0-9_]{0,62}");
        return LH_EINVAL;
    }
    json_t *sql = json_object_get(body, "sql"), *tool = json_object_get(body, "tool");
    json_t *args = json_object_get(body, "arguments"), *desc = json_object_get(body, "description");
    const char *field;
    json_t *v;
    json_object_foreach((json_t *)body, field, v)
    {
        if (strcmp(field, "sql") && strcmp(field, "tool") && strcmp(field, "arguments") &&
            strcmp(field, "description"))
            return bad(err, "a saved query is {\"sql\"} or {\"tool\", \"arguments\"}, with an "
                            "optional \"description\"");
    }
    if ((sql == NULL) == (tool == NULL) ||
        (sql && (!json_is_string(sql) || json_string_length(sql) == 0 || args)) ||
        (tool && (!json_is_string(tool) || (args && !json_is_object(args)))) ||
        (desc && !json_is_string(desc)))
        return bad(err, "a saved query is {\"sql\": \"SELECT ...\"} or {\"tool\": \"name\", "
                        "\"arguments\": {...}}, with an optional \"description\" string");
    ws_edit e;
    int rc = lh_ws__begin(w, p, id, WS_WRITE, false, &e, err);
    if (rc != 0)
        return rc;
    char now[LH_TIME_MAX];
    lh_ws__now(now);
    json_t *q = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[]}", "name", name, "kind",
                          sql ? "sql" : "tool", "description", desc ? json_string_value(desc) : "",
                          "saved_by", p->name, "saved_at", now, "runs");
    if (sql)
        json_object_set(q, "sql", sql);
    else {
        json_object_set(q, "tool", tool);
        json_object_set_new(q, "arguments", args ? json_deep_copy(args) : json_object());
    }
    json_object_set(json_object_get(e.doc, "queries"), name, q);
    rc = lh_ws__commit(&e, p->name, "query_saved", json_pack("{s:s}", "name", name), NULL, err);
    if (rc == 0)
        *out = q;
    else
        json_decref(q);
    return rc;
}

/* The datasets sql names as a word of its own, with their versions now. */
static json_t *
datasets_read(lh_workspaces *w, const char *sql, const json_t *doc)
{
    json_t *list = lh_catalog_list(w->deps.catalog, NULL), *out = json_object();
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d)
    {
        const char *name = lh_ws__str(d, "name");
        size_t n = strlen(name);
        bool hit = false;
        for (const char *s = sql; !hit && (s = strcasestr(s, name)) != NULL; s += n)
            hit = !(s > sql && (isalnum((unsigned char)s[-1]) || s[-1] == '_')) &&
                  !(isalnum((unsigned char)s[n]) || s[n] == '_');
        if (!hit)
            continue;
        json_t *staged = json_object_get(json_object_get(doc, "staged"), name);
        json_t *entry = json_pack("{s:O}", "version", json_object_get(d, "version"));
        if (staged)
            json_object_set(entry, "staged_files", json_object_get(staged, "files"));
        json_object_set_new(out, name, entry);
    }
    json_decref(list);
    return out;
}

/* Keep run as the newest run of saved query name (at most 20 kept); then answer it with
 * rows. Takes run. */
static int
record_run(lh_workspaces *w, const lh_principal *p, const char *id, const char *name, json_t *run,
           const json_t *rows, json_t **out, lh_err *err)
{
    ws_edit e;
    int rc = lh_ws__begin(w, p, id, WS_WRITE, false, &e, err);
    if (rc == 0) {
        json_t *qd = json_object_get(json_object_get(e.doc, "queries"), name);
        json_t *runs = json_object_get(qd, "runs");
        if (qd == NULL) { /* removed meanwhile: report the run, keep nothing */
            lh_ws__abort(&e);
        } else {
            json_array_append(runs, run);
            while (json_array_size(runs) > 20)
                json_array_remove(runs, 0);
            json_object_set(qd, "last_run", run);
            rc = lh_ws__commit(&e, p->name, "query_run",
                               json_pack("{s:s, s:O, s:O}", "name", name, "row_count",
                                         json_object_get(run, "row_count"), "sha256",
                                         json_object_get(run, "sha256")),
                               NULL, err);
        }
    }
    if (rc == 0) {
        /* the answer is a copy: `run` itself is now part of the workspace's document */
        json_t *answer = json_copy(run);
        json_decref(run);
        json_object_set_new(answer, "rows", rows ? json_incref((json_t *)rows) : json_array());
        json_object_set_new(answer, "name", json_string(name));
        *out = answer;
    } else {
        json_decref(run);
    }
    return rc;
}

/* A run's fields from the rows it returned: {"at","by","row_count","sha256"} (new). */
static json_t *
new_run(const lh_principal *p, const json_t *rows)
{
    char *rows_text = json_dumps(rows ? rows : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    char hex[65];
    lh_sha256_hex(rows_text, strlen(rows_text), hex);
    free(rows_text);
    char now[LH_TIME_MAX];
    lh_ws__now(now);
    return json_pack("{s:s, s:s, s:I, s:s}", "at", now, "by", p->name, "row_count",
                     (json_int_t)json_array_size(rows), "sha256", hex);
}

/* A saved tool call, run through the registry as p (deps.run_tool). */
static int
run_tool_query(lh_workspaces *w, const lh_principal *p, const char *id, const char *name,
               const json_t *saved, json_t **out, lh_err *err)
{
    if (!w->deps.run_tool) {
        lh_err_set(err, LH_EINVAL, 501, "not_runnable",
                   "saved tool calls cannot be run without a tool registry");
        return LH_EINVAL;
    }
    json_t *answer = NULL;
    int rc = w->deps.run_tool(w->deps.tool_ctx, p, lh_ws__str(saved, "tool"),
                              json_object_get(saved, "arguments"), id, &answer, err);
    if (rc != 0)
        return rc;
    const json_t *result = json_object_get(answer, "result");
    json_t *rows = json_object_get(result, "rows");
    if (!json_is_array(rows))
        rows = json_object_get(result, "hits");
    json_t *own = json_is_array(rows) ? json_incref(rows) : json_pack("[O]", result);
    json_t *versions = json_object();
    const char *ds;
    json_t *v;
    json_object_foreach(json_object_get(answer, "dataset_versions"), ds, v)
        json_object_set_new(versions, ds, json_pack("{s:O}", "version", v));
    json_t *run = new_run(p, own);
    json_object_set_new(run, "datasets", versions);
    json_object_set(run, "truncated",
                    json_is_true(json_object_get(result, "truncated")) ? json_true()
                                                                       : json_false());
    json_object_set(run, "call_id", json_object_get(answer, "call_id"));
    json_object_set_new(run, "tool", json_string(lh_ws__str(saved, "tool")));
    rc = record_run(w, p, id, name, run, own, out, err);
    json_decref(own);
    json_decref(answer);
    return rc;
}

int
lh_workspace_query_run(lh_workspaces *w, const lh_principal *p, const char *id, const char *name,
                       int64_t timeout_ms, int64_t max_bytes, json_t **out, lh_err *err)
{
    json_t *doc = NULL, *result = NULL;
    lh_ws_prelude *prelude = NULL;
    lh_query *q = NULL;
    lh_buf text;
    lh_buf_init(&text);
    int rc = lh_ws__read(w, p, id, WS_WRITE, &doc, err);
    const json_t *saved = rc == 0 ? json_object_get(json_object_get(doc, "queries"), name) : NULL;
    if (rc == 0 && saved == NULL) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "query_not_found", "no saved query '%.64s'", name);
        lh_err_hint(err, "save one with PUT /workspaces/%s/queries/{name}", id);
    }
    if (rc == 0 && strcmp(lh_ws__str(saved, "kind"), "tool") == 0) {
        rc = run_tool_query(w, p, id, name, saved, out, err);
        goto out;
    }
    const char *sql = lh_ws__str(saved, "sql");
    if (rc == 0)
        rc = lh_workspace_prelude(w, p, id, sql, &prelude, err);
    if (rc != 0)
        goto out;
    lh_query_opts opts = {.sql = sql,
                          .format = LH_QUERY_JSON,
                          .max_bytes = max_bytes,
                          .timeout_ms = timeout_ms,
                          .principal = p->name};
    opts.prelude = lh_ws_prelude_sql(prelude, &opts.n_prelude);
    /* the saved SQL sees what the one who runs it sees (tenants: invariant 11) */
    lh_catalog_view view;
    opts.resolver = lh_catalog_view_init(&view, w->deps.catalog, p);
    json_t *versions = datasets_read(w, sql, doc);
    rc = lh_query_start(w->deps.views, &opts, &q, err);
    lh_catalog_view_free(&view);
    if (rc != 0) {
        json_decref(versions);
        goto out;
    }
    bool end = false, failed = false;
    char chunk[16384];
    while (!end && !failed) {
        size_t n = lh_query_read(q, chunk, sizeof chunk, &end, &failed, err);
        lh_buf_append(&text, chunk, n);
    }
    if (failed) {
        json_decref(versions);
        rc = err->rc ? err->rc : LH_EIO;
        goto out;
    }
    json_error_t jerr;
    result = json_loadb(text.data, text.len, 0, &jerr);
    json_t *rows = json_object_get(result, "rows");
    json_t *run = new_run(p, rows);
    json_object_set_new(run, "datasets", versions);
    json_object_set(run, "truncated",
                    json_object_get(result, "truncated") ? json_object_get(result, "truncated")
                                                         : json_false());
    rc = record_run(w, p, id, name, run, rows, out, err);
out:
    lh_query_free(q);
    lh_ws_prelude_free(prelude);
    lh_buf_free(&text);
    json_decref(result);
    json_decref(doc);
    return rc;
}

/* ---- snapshots ------------------------------------------------------------------------------ */

json_t *
lh_ws__dataset_versions(lh_workspaces *w, const json_t *doc)
{
    json_t *names = json_object(), *out = json_object();
    const char *n;
    json_t *v;
    json_object_foreach(json_object_get(doc, "staged"), n, v)
        json_object_set(names, n, json_true());
    json_object_foreach(json_object_get(doc, "shortlists"), n, v)
    {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(v, "records"), i, r)
            json_object_set(names, lh_ws__str(r, "dataset"), json_true());
    }
    json_object_foreach(names, n, v)
    {
        json_t *m = NULL;
        lh_err ignored;
        if (lh_catalog_get(w->deps.catalog, n, &m, &ignored) == 0)
            json_object_set(out, n, json_object_get(m, "version"));
        json_decref(m);
    }
    json_decref(names);
    return out;
}

static json_t *
take_snapshot(lh_workspaces *w, ws_edit *e, const char *actor, bool automatic, const char *note)
{
    json_t *snaps = json_object_get(e->doc, "snapshots");
    if (!json_is_array(snaps))
        json_object_set_new(e->doc, "snapshots", snaps = json_array());
    json_int_t next = 1;
    size_t i;
    json_t *s;
    json_array_foreach(snaps, i, s) if (json_integer_value(json_object_get(s, "id")) >= next) next =
        json_integer_value(json_object_get(s, "id")) + 1;
    char now[LH_TIME_MAX];
    lh_ws__now(now);
    json_t *snap = json_pack("{s:I, s:O, s:s, s:I, s:s, s:b, s:s, s:o}", "id", next, "version",
                             json_object_get(e->doc, "version"), "at", now, "at_us",
                             (json_int_t)lh_now_us(), "by", actor, "auto", automatic, "note",
                             note ? note : "", "datasets", lh_ws__dataset_versions(w, e->doc));
    json_array_append(snaps, snap);
    return snap;
}

int
lh_workspace_snapshot(lh_workspaces *w, const lh_principal *p, const char *id, const json_t *body,
                      json_t **out, lh_err *err)
{
    json_t *note = json_object_get(body, "note");
    if ((note && !json_is_string(note)) || json_object_size(body) > (note ? 1u : 0u))
        return bad(err, "the body is {\"note\"?: \"...\"}");
    ws_edit e;
    int rc = lh_ws__begin(w, p, id, WS_WRITE, false, &e, err);
    if (rc != 0)
        return rc;
    json_t *snap = take_snapshot(w, &e, p->name, false, json_string_value(note));
    rc = lh_ws__commit(&e, p->name, "snapshot",
                       json_pack("{s:O, s:O}", "id", json_object_get(snap, "id"), "version",
                                 json_object_get(snap, "version")),
                       NULL, err);
    if (rc == 0)
        *out = snap;
    else
        json_decref(snap);
    return rc;
}

int
lh_workspace_snapshots(lh_workspaces *w, const lh_principal *p, const char *id, json_t **out,
                       lh_err *err)
{
    json_t *doc = NULL;
    int rc = lh_ws__read(w, p, id, WS_READ, &doc, err);
    if (rc == 0) {
        const tier *t = tier_of(doc);
        *out = json_pack("{s:O, s:s, s:I, s:i}", "snapshots", json_object_get(doc, "snapshots"),
                         "tier", t->name, "period_s", (json_int_t)(period_us(w, t) / 1000000),
                         "keep", t->keep);
    }
    json_decref(doc);
    return rc;
}

int
lh_workspace_rollback(lh_workspaces *w, const lh_principal *p, const char *id, int64_t snapshot,
                      json_t **out, lh_err *err)
{
    ws_edit e;
    int rc = lh_ws__begin(w, p, id, WS_WRITE, false, &e, err);
    if (rc != 0)
        return rc;
    json_t *snap = NULL, *old = NULL;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(e.doc, "snapshots"), i,
                       s) if (json_integer_value(json_object_get(s, "id")) == snapshot) snap = s;
    if (snap == NULL) {
        lh_ws__abort(&e);
        lh_err_set(err, LH_ENOTFOUND, 404, "snapshot_not_found", "no snapshot %lld",
                   (long long)snapshot);
        lh_err_hint(err, "GET /workspaces/%s/snapshots lists them", id);
        return LH_ENOTFOUND;
    }
    int64_t version = json_integer_value(json_object_get(snap, "version"));
    char *key = lh_layout_workspace_key(id, version);
    lh_buf buf;
    lh_buf_init(&buf);
    rc = lh_store_get_buffer(lh_buckets_primary(w->deps.buckets), key, LH_WS_DOC_MAX, &buf, NULL,
                             err);
    free(key);
    /* json_is_object() names its argument twice: load first, then test */
    if (rc == 0)
        old = json_loadb(buf.data, buf.len, 0, NULL);
    if (rc == 0 && !json_is_object(old)) {
        rc = lh_err_set(err, LH_EIO, 500, "workspace_unreadable",
                        "could not read the snapshot's version");
        lh_err_detail(err, "version %lld", (long long)version);
    }
    lh_buf_free(&buf);
    if (rc != 0) {
        json_decref(old);
        lh_ws__abort(&e);
        return rc;
    }
    static const char *const content[] = {"name",  "kind",       "description", "tier",   "tags",
                                          "notes", "shortlists", "queries",     "staged", NULL};
    for (const char *const *c = content; *c; c++)
        if (json_object_get(old, *c))
            json_object_set(e.doc, *c, json_object_get(old, *c));
    json_decref(old);
    json_t *doc = NULL;
    rc = lh_ws__commit(&e, p->name, "rollback",
                       json_pack("{s:I, s:I}", "snapshot", (json_int_t)snapshot, "to_version",
                                 (json_int_t)version),
                       &doc, err);
    if (rc == 0) {
        *out = json_deep_copy(doc);
        json_object_del(*out, "activity");
    }
    json_decref(doc);
    return rc;
}

/* ---- the tier timer ----------------------------------------------------------------------- */

/* Fold activity entries older than the tier keeps into one summary entry. */
static bool
compact_activity(json_t *doc, int64_t cutoff_us)
{
    json_t *activity = json_object_get(doc, "activity"), *kept = json_array(),
           *counts = json_object();
    const char *from = NULL, *to = NULL;
    size_t i, n_old = 0;
    json_t *a;
    json_array_foreach(activity, i, a)
    {
        json_t *at_us = json_object_get(a, "at_us");
        if (at_us && json_integer_value(at_us) < cutoff_us &&
            strcmp(lh_ws__str(a, "op"), "summary") != 0) {
            const char *op = lh_ws__str(a, "op");
            json_object_set_new(counts, op,
                                json_integer(json_integer_value(json_object_get(counts, op)) + 1));
            from = from ? from : lh_ws__str(a, "at");
            to = lh_ws__str(a, "at");
            n_old++;
        } else {
            json_array_append(kept, a);
        }
    }
    if (n_old > 0) {
        json_t *summary = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:I, s:O}}", "op", "summary",
                                    "actor", "lakehouse", "at", from, "detail", "from", from, "to",
                                    to, "entries", (json_int_t)n_old, "counts", counts);
        json_array_insert_new(kept, 0, summary);
        json_object_set(doc, "activity", kept);
    }
    json_decref(kept);
    json_decref(counts);
    return n_old > 0;
}

static bool
trim_snapshots(json_t *doc, int keep)
{
    json_t *snaps = json_object_get(doc, "snapshots");
    int autos = 0;
    size_t i;
    json_t *s;
    json_array_foreach(snaps, i, s) autos += json_is_true(json_object_get(s, "auto"));
    bool changed = false;
    for (i = 0; autos > keep && i < json_array_size(snaps);) {
        if (json_is_true(json_object_get(json_array_get(snaps, i), "auto"))) {
            json_array_remove(snaps, i);
            autos--;
            changed = true;
        } else {
            i++;
        }
    }
    return changed;
}

static int64_t
last_auto_us(const json_t *doc)
{
    int64_t last = 0;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "snapshots"), i,
                       s) if (json_is_true(json_object_get(s, "auto")) &&
                              json_integer_value(json_object_get(s, "at_us")) > last) last =
        json_integer_value(json_object_get(s, "at_us"));
    if (last == 0) { /* never: count from the first version */
        json_t *first = json_array_get(json_object_get(doc, "activity"), 0);
        last = json_integer_value(json_object_get(first, "at_us"));
    }
    return last;
}

int
lh_workspace_tick(lh_workspaces *w, int64_t now_us, int *done, lh_err *err)
{
    static const lh_principal timer = {.name = "lakehouse", .roles = LH_ROLE_ADMIN};
    json_t *ids = json_array();
    pthread_mutex_lock(&w->lock);
    for (ws_entry *en = w->head; en; en = en->next)
        if (strcmp(lh_ws__str(en->doc, "state"), "active") == 0)
            json_array_append_new(ids, json_string(en->id));
    pthread_mutex_unlock(&w->lock);
    int changed = 0, rc = 0;
    size_t i;
    json_t *idj;
    json_array_foreach(ids, i, idj)
    {
        ws_edit e;
        if (lh_ws__begin(w, &timer, json_string_value(idj), WS_WRITE, false, &e, err) != 0)
            continue;
        const tier *t = tier_of(e.doc);
        int64_t period = period_us(w, t);
        bool snap = now_us - last_auto_us(e.doc) >= period;
        json_t *s = snap ? take_snapshot(w, &e, "lakehouse", true, "tier") : NULL;
        json_decref(s);
        bool trimmed = trim_snapshots(e.doc, t->keep);
        bool compacted = compact_activity(e.doc, now_us - period * t->activity_periods);
        if (!snap && !trimmed && !compacted) {
            lh_ws__abort(&e);
            continue;
        }
        if (lh_ws__commit(
                &e, "lakehouse", snap ? "snapshot" : "tier_maintenance",
                json_pack("{s:b, s:b, s:b}", "auto", 1, "trimmed", trimmed, "compacted", compacted),
                NULL, err) == 0)
            changed++;
        else
            rc = err->rc;
    }
    json_decref(ids);
    if (done)
        *done = changed;
    return rc;
}

void *
lh_ws__timer_main(void *arg)
{
    lh_workspaces *w = arg;
    int64_t tick_us = lh_config_int(w->deps.config, "workspace.tick_s") * 1000000;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (tick_us % 1000000) * 1000;
        until.tv_sec += tick_us / 1000000 + ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&w->wake, &w->lock, &until);
        if (w->stopping)
            break;
        pthread_mutex_unlock(&w->lock);
        lh_err err;
        if (lh_workspace_tick(w, lh_now_us(), NULL, &err) != 0)
            lh_log_err(LH_LOG_WARN, NULL, &err);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}
