/*
 * workspace.c — the registry of workspaces: loading at start, versions (create-only puts
 * of whole JSON documents), access, and the operations on a workspace's own metadata:
 * create, list, get, patch, archive, handoff, notes, brief, activity.
 *
 * Locks: w->lock guards the list and each entry's doc pointer, never held across I/O; an
 * entry's writer mutex makes its edits one at a time and is held across the put of the
 * new version (like a dataset's writer slot in the catalog).
 */
#include "workspace/ws_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *
lh_ws__str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

void
lh_ws__now(char out[LH_TIME_MAX])
{
    lh_time_format(lh_now_us(), out);
}

int
lh_ws__access(const lh_principal *p, const json_t *doc)
{
    if (strcmp(lh_ws__str(doc, "owner"), p->name) == 0)
        return WS_OWNER;
    if (p->roles & LH_ROLE_ADMIN)
        return WS_OWNER; /* admins see and may change every workspace */
    const char *m = json_string_value(json_object_get(json_object_get(doc, "members"), p->name));
    if (m && strcmp(m, "write") == 0)
        return WS_WRITE;
    return m ? WS_READ : WS_NONE;
}

static int
not_found(const char *id, lh_err *err)
{
    lh_err_set(err, LH_ENOTFOUND, 404, "workspace_not_found", "no workspace '%.40s'", id);
    lh_err_hint(err, "GET /workspaces lists the workspaces you may read");
    return LH_ENOTFOUND;
}

static ws_entry *
find(lh_workspaces *w, const char *id)
{
    for (ws_entry *e = w->head; e; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

static int
check_access(const lh_principal *p, const json_t *doc, const char *id, int need, lh_err *err)
{
    int a = lh_ws__access(p, doc);
    if (a == WS_NONE)
        return not_found(id, err);
    if (a < need) {
        lh_err_set(err, LH_EPERM, 403, "forbidden", "%s",
                   need == WS_OWNER ? "only the workspace's owner (or an admin) may do this"
                                    : "you may read this workspace but not change it");
        lh_err_hint(err, "ask its owner (%s) for write access", lh_ws__str(doc, "owner"));
        return LH_EPERM;
    }
    return 0;
}

int
lh_ws__read(lh_workspaces *w, const lh_principal *p, const char *id, int need, json_t **doc,
            lh_err *err)
{
    pthread_mutex_lock(&w->lock);
    ws_entry *e = find(w, id);
    json_t *d = e ? json_incref(e->doc) : NULL;
    pthread_mutex_unlock(&w->lock);
    if (d == NULL)
        return not_found(id, err);
    int rc = check_access(p, d, id, need, err);
    if (rc != 0) {
        json_decref(d);
        return rc;
    }
    *doc = d;
    return 0;
}

int
lh_ws__begin(lh_workspaces *w, const lh_principal *p, const char *id, int need, bool allow_archived,
             ws_edit *e, lh_err *err)
{
    memset(e, 0, sizeof *e);
    pthread_mutex_lock(&w->lock);
    ws_entry *entry = find(w, id);
    pthread_mutex_unlock(&w->lock);
    if (entry == NULL) /* entries are never removed while the registry is open */
        return not_found(id, err);
    pthread_mutex_lock(&entry->writer);
    pthread_mutex_lock(&w->lock);
    json_t *cur = json_incref(entry->doc);
    pthread_mutex_unlock(&w->lock);
    int rc = check_access(p, cur, id, need, err);
    if (rc == 0 && !allow_archived && strcmp(lh_ws__str(cur, "state"), "archived") == 0) {
        rc =
            lh_err_set(err, LH_EEXIST, 409, "workspace_archived", "workspace '%s' is archived", id);
        lh_err_hint(err, "archived workspaces are read-only");
    }
    if (rc != 0) {
        json_decref(cur);
        pthread_mutex_unlock(&entry->writer);
        return rc;
    }
    e->w = w;
    e->entry = entry;
    e->doc = json_deep_copy(cur);
    json_decref(cur);
    return 0;
}

void
lh_ws__abort(ws_edit *e)
{
    if (e->entry)
        pthread_mutex_unlock(&e->entry->writer);
    json_decref(e->doc);
    memset(e, 0, sizeof *e);
}

/* Store doc as version `version` of workspace id (create-only). */
static int
put_version(lh_workspaces *w, const char *id, int64_t version, const json_t *doc, lh_err *err)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    char *key = lh_layout_workspace_key(id, version);
    lh_buckets *b = w->deps.buckets;
    lh_source src = {.data = text, .fd = -1, .len = (int64_t)strlen(text)};
    int rc = lh_buckets_put_object(b, lh_buckets_primary_name(b), key, &src, LH_PUT_CREATE_ONLY,
                                   NULL, NULL, err);
    if (rc == LH_EEXIST) {
        lh_err_set(err, LH_EEXIST, 409, "workspace_conflict",
                   "another writer changed workspace '%s' first", id);
        lh_err_detail(err, "version %lld exists", (long long)version);
        lh_err_hint(err, "restart this server to read the newer version, then retry");
    }
    free(key);
    free(text);
    return rc;
}

int
lh_ws__commit(ws_edit *e, const char *actor, const char *op, json_t *detail, json_t **out,
              lh_err *err)
{
    int rc = lh_ws__commit_step(e, actor, op, detail, out, err);
    lh_ws__abort(e);
    return rc;
}

int
lh_ws__commit_step(ws_edit *e, const char *actor, const char *op, json_t *detail, json_t **out,
                   lh_err *err)
{
    char now[LH_TIME_MAX];
    lh_ws__now(now);
    json_t *doc = e->doc;
    int64_t version = json_integer_value(json_object_get(doc, "version")) + 1;
    json_t *change = json_pack("{s:s, s:s, s:s, s:I, s:I}", "op", op, "actor", actor, "at", now,
                               "at_us", (json_int_t)lh_now_us(), "version", (json_int_t)version);
    if (detail)
        json_object_set(change, "detail", detail);
    json_decref(detail);
    json_object_set_new(doc, "version", json_integer(version));
    json_object_set_new(doc, "updated_at", json_string(now));
    json_object_set(doc, "change", change);
    json_t *activity = json_object_get(doc, "activity");
    if (!json_is_array(activity)) {
        activity = json_array();
        json_object_set_new(doc, "activity", activity);
    }
    json_array_append_new(activity, change);
    int rc = put_version(e->w, e->entry->id, version, doc, err);
    if (rc == 0) {
        pthread_mutex_lock(&e->w->lock);
        json_t *old = e->entry->doc;
        e->entry->doc = json_incref(doc);
        pthread_mutex_unlock(&e->w->lock);
        json_decref(old);
        if (out)
            *out = json_incref(doc);
        e->doc = json_deep_copy(doc); /* the edit goes on from the committed state */
        json_decref(doc);
    }
    return rc;
}

/* ---- loading ------------------------------------------------------------------------------ */

typedef struct newest {
    json_t *by_id; /* id -> newest version number */
} newest;

static int
collect(void *ctx, const lh_list_entry *entry)
{
    newest *n = ctx;
    char id[LH_WS_ID_MAX];
    int64_t version;
    if (lh_layout_parse_workspace_key(entry->key, id, sizeof id, &version) != 0)
        return 0;
    json_t *v = json_object_get(n->by_id, id);
    if (v == NULL || json_integer_value(v) < version)
        json_object_set_new(n->by_id, id, json_integer(version));
    return 0;
}

static ws_entry *
add_entry(lh_workspaces *w, const char *id, json_t *doc)
{
    ws_entry *e = lh_calloc(1, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->doc = doc;
    pthread_mutex_init(&e->writer, NULL);
    pthread_mutex_lock(&w->lock);
    e->next = w->head;
    w->head = e;
    pthread_mutex_unlock(&w->lock);
    return e;
}

/* A publish that a crash cut short: the version before it says which dataset it was
 * publishing since when. When the dataset's journal holds events of this workspace from
 * then on, the commit happened: the staged changes are recorded as published; otherwise
 * they stay staged. Either way one new version records what was found. */
static void
converge(lh_workspaces *w, ws_entry *entry)
{
    json_t *intent = json_object_get(entry->doc, "publishing");
    if (!json_is_object(intent))
        return;
    const char *dataset = lh_ws__str(intent, "dataset");
    lh_events_filter f = {.dataset = dataset,
                          .workspace_id = entry->id,
                          .since = lh_ws__str(intent, "since"),
                          .limit = 1};
    json_t *events = NULL;
    lh_err err;
    if (lh_catalog_events(w->deps.catalog, &f, &events, &err) != 0) {
        lh_log_err(LH_LOG_WARN, NULL, &err); /* left as it is: tried again at next start */
        return;
    }
    bool committed = json_array_size(events) > 0;
    json_t *event = json_array_get(events, 0);
    pthread_mutex_lock(&entry->writer);
    ws_edit e = {.w = w, .entry = entry, .doc = json_deep_copy(entry->doc)};
    json_t *detail = json_pack("{s:s, s:b}", "dataset", dataset, "committed", committed);
    if (committed) {
        json_t *staged = json_object_get(json_object_get(e.doc, "staged"), dataset);
        json_t *pub = json_object_get(e.doc, "published");
        if (!json_is_array(pub))
            json_object_set_new(e.doc, "published", pub = json_array());
        json_array_append_new(pub, json_pack("{s:s, s:O, s:O, s:s, s:b}", "dataset", dataset,
                                             "version", json_object_get(event, "version"), "at",
                                             json_object_get(event, "ts"), "by",
                                             lh_ws__str(intent, "by"), "recovered", 1));
        (void)staged;
        json_object_del(json_object_get(e.doc, "staged"), dataset);
    }
    json_object_del(e.doc, "publishing");
    if (lh_ws__commit(&e, "lakehouse", committed ? "published" : "publish_abandoned", detail, NULL,
                      &err) != 0)
        lh_log_err(LH_LOG_WARN, NULL, &err);
    json_decref(events);
}

static int
load_all(lh_workspaces *w, lh_err *err)
{
    lh_buckets *b = w->deps.buckets;
    const char *primary = lh_buckets_primary_name(b);
    newest n = {.by_id = json_object()};
    int rc = lh_buckets_each(b, primary, LH_LAYOUT_WORKSPACES, collect, &n, NULL, err);
    const char *id;
    json_t *v;
    json_object_foreach(n.by_id, id, v)
    {
        if (rc != 0)
            break;
        char *key = lh_layout_workspace_key(id, json_integer_value(v));
        lh_buf buf;
        lh_buf_init(&buf);
        lh_store *store = lh_buckets_primary(b);
        rc = lh_store_get_buffer(store, key, LH_WS_DOC_MAX, &buf, NULL, err);
        json_t *doc = NULL;
        if (rc == 0) {
            json_error_t jerr;
            doc = json_loadb(buf.data, buf.len, 0, &jerr);
            if (!json_is_object(doc)) {
                /* a version is written whole by a create-only put: a broken one is a
                 * bucket fault, journaled, and the workspace is skipped */
                lh_err_set(err, LH_EIO, 500, "workspace_unreadable",
                           "could not read a workspace version");
                lh_err_detail(err, "%s: %s", key, jerr.text);
                lh_log_err(LH_LOG_WARN, NULL, err);
                json_decref(doc);
                doc = NULL;
            }
        } else {
            lh_log_err(LH_LOG_WARN, NULL, err);
        }
        rc = 0;
        lh_buf_free(&buf);
        free(key);
        if (doc)
            converge(w, add_entry(w, id, doc));
    }
    json_decref(n.by_id);
    return rc;
}

int
lh_workspace_open(const lh_workspace_deps *deps, lh_workspaces **out, lh_err *err)
{
    lh_workspaces *w = lh_calloc(1, sizeof *w);
    w->deps = *deps;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    int64_t t0 = lh_mono_us();
    int rc = load_all(w, err);
    if (rc != 0) {
        lh_workspace_close(w);
        return rc;
    }
    size_t count = 0;
    for (ws_entry *e = w->head; e; e = e->next)
        count++;
    json_t *fields = json_pack("{s:I, s:I}", "workspaces", (json_int_t)count, "load_ms",
                               (json_int_t)((lh_mono_us() - t0) / 1000));
    lh_log(LH_LOG_INFO, NULL, fields, "workspaces loaded");
    json_decref(fields);
    if (deps->start_timer && deps->config && lh_config_int(deps->config, "workspace.tick_s") > 0) {
        if (pthread_create(&w->timer, NULL, lh_ws__timer_main, w) == 0)
            w->timer_started = true;
    }
    *out = w;
    return 0;
}

void
lh_workspace_close(lh_workspaces *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (w->timer_started)
        pthread_join(w->timer, NULL);
    for (ws_entry *e = w->head, *next; e; e = next) {
        next = e->next;
        json_decref(e->doc);
        pthread_mutex_destroy(&e->writer);
        free(e);
    }
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* ---- validation ------------------------------------------------------------------------------ */

static int
bad(lh_err *err, const char *fmt, const char *field)
{
    lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", fmt, field);
    lh_err_hint(err, "see docs/API.md, Workspaces");
    return LH_EINVAL;
}

static bool
one_of(const char *s, const char *const *options)
{
    for (; *options; options++)
        if (strcmp(s, *options) == 0)
            return true;
    return false;
}

static const char *const KINDS[] = {"contract", "search", NULL};
static const char *const TIERS[] = {"daily", "weekly", "monthly", NULL};

static bool
principal_known(lh_workspaces *w, const char *name)
{
    if (w->deps.principal_known)
        return w->deps.principal_known(w->deps.principal_ctx, name);
    const lh_auth *a = w->deps.auth;
    if (a == NULL)
        return true;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->principals[i].name, name) == 0)
            return true;
    return false;
}

/* Check the fields of a create or patch body and copy them into doc. */
static int
apply_fields(lh_workspaces *w, const json_t *body, json_t *doc, bool create, lh_err *err)
{
    static const char *const known[] = {"name", "kind",    "description", "tier",
                                        "tags", "members", NULL};
    const char *field;
    json_t *v;
    json_object_foreach((json_t *)body, field, v)
    {
        if (!one_of(field, known))
            return bad(err, "unknown field '%s'", field);
    }
    json_t *name = json_object_get(body, "name");
    if (create && name == NULL)
        return bad(err, "'%s' is required", "name");
    if (name &&
        (!json_is_string(name) || json_string_length(name) == 0 || json_string_length(name) > 200))
        return bad(err, "'%s' must be a string of 1 to 200 characters", "name");
    json_t *kind = json_object_get(body, "kind");
    if (kind && (!json_is_string(kind) || !one_of(json_string_value(kind), KINDS)))
        return bad(err, "'%s' must be \"contract\" or \"search\"", "kind");
    json_t *tier = json_object_get(body, "tier");
    if (tier && (!json_is_string(tier) || !one_of(json_string_value(tier), TIERS)))
        return bad(err, "'%s' must be \"daily\", \"weekly\" or \"monthly\"", "tier");
    json_t *desc = json_object_get(body, "description");
    if (desc && (!json_is_string(desc) || json_string_length(desc) > 10000))
        return bad(err, "'%s' must be a string of at most 10000 characters", "description");
    json_t *tags = json_object_get(body, "tags");
    size_t i;
    json_t *t;
    if (tags && !json_is_array(tags))
        return bad(err, "'%s' must be an array of strings", "tags");
    json_array_foreach(
        tags, i,
        t) if (!json_is_string(t) ||
               json_string_length(t) >
                   100) return bad(err,
                                   "'%s' must be an array of strings of at most 100 characters",
                                   "tags");
    json_t *members = json_object_get(body, "members");
    if (members && !json_is_object(members))
        return bad(err, "'%s' must be an object {principal: \"read\"|\"write\"}", "members");
    const char *who;
    json_object_foreach(members, who, t)
    {
        const char *s = json_string_value(t);
        if (!s || (strcmp(s, "read") != 0 && strcmp(s, "write") != 0))
            return bad(err, "'%s' must map principals to \"read\" or \"write\"", "members");
        if (!principal_known(w, who)) {
            lh_err_set(err, LH_EINVAL, 400, "unknown_principal", "no principal '%.64s'", who);
            lh_err_hint(err, "members name configured principals ([[principal]] name)");
            return LH_EINVAL;
        }
    }
    static const char *const copy[] = {"name", "kind",    "description", "tier",
                                       "tags", "members", NULL};
    for (const char *const *c = copy; *c; c++)
        if (json_object_get(body, *c))
            json_object_set(doc, *c, json_object_get(body, *c));
    return 0;
}

static json_t *public_view(const json_t *doc, const lh_principal *p);

/* ---- operations -------------------------------------------------------------------------------
 */

int
lh_workspace_create(lh_workspaces *w, const lh_principal *p, const json_t *body, json_t **out,
                    lh_err *err)
{
    char now[LH_TIME_MAX], hex[17];
    lh_ws__now(now);
    lh_random_hex(hex, 8);
    char id[LH_WS_ID_MAX];
    snprintf(id, sizeof id, "ws_%s", hex);
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:[], s:s, s:{}, s:s, s:I, s:s, s:s, s:[], "
        "s:{}, s:{}, s:{}, s:[], s:[], s:[]}",
        "id", id, "kind", "search", "description", "", "tier", "weekly", "tags", "owner", p->name,
        "members", "state", "active", "version", (json_int_t)0, "created_at", now, "created_by",
        p->name, "notes", "shortlists", "queries", "staged", "published", "snapshots", "activity");
    int rc = apply_fields(w, body, doc, true, err);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    /* a new id: the first version is created under a name no one else uses */
    ws_entry tmp = {.doc = NULL};
    snprintf(tmp.id, sizeof tmp.id, "%s", id);
    pthread_mutex_init(&tmp.writer, NULL);
    pthread_mutex_lock(&tmp.writer);
    ws_edit e = {.w = w, .entry = &tmp, .doc = doc};
    json_t *committed = NULL;
    rc = lh_ws__commit(&e, p->name, "created",
                       json_pack("{s:O}", "name", json_object_get(doc, "name")), &committed, err);
    pthread_mutex_destroy(&tmp.writer);
    if (rc != 0) {
        json_decref(tmp.doc);
        return rc;
    }
    add_entry(w, id, tmp.doc);
    *out = public_view(committed, p);
    json_decref(committed);
    return 0;
}

/* What a reader gets: the doc without the raw activity (GET .../activity pages it). */
static json_t *
public_view(const json_t *doc, const lh_principal *p)
{
    json_t *v = json_deep_copy(doc);
    json_object_del(v, "activity");
    static const char *const names[] = {"none", "read", "write", "owner"};
    json_object_set_new(v, "access", json_string(names[lh_ws__access(p, doc)]));
    return v;
}

int
lh_workspace_get(lh_workspaces *w, const lh_principal *p, const char *id, json_t **out, lh_err *err)
{
    json_t *doc = NULL;
    int rc = lh_ws__read(w, p, id, WS_READ, &doc, err);
    if (rc == 0)
        *out = public_view(doc, p);
    json_decref(doc);
    return rc;
}

static json_t *
summary(const json_t *doc)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:I, s:I}", "id",
                     json_object_get(doc, "id"), "name", json_object_get(doc, "name"), "kind",
                     json_object_get(doc, "kind"), "tier", json_object_get(doc, "tier"), "owner",
                     json_object_get(doc, "owner"), "state", json_object_get(doc, "state"),
                     "description", json_object_get(doc, "description"), "tags",
                     json_object_get(doc, "tags"), "version", json_object_get(doc, "version"),
                     "updated_at", json_object_get(doc, "updated_at"), "shortlists",
                     (json_int_t)json_object_size(json_object_get(doc, "shortlists")), "staged",
                     (json_int_t)json_object_size(json_object_get(doc, "staged")));
}

static bool
matches(const json_t *doc, const lh_workspace_filter *f)
{
    if (!f->include_archived && strcmp(lh_ws__str(doc, "state"), "archived") == 0)
        return false;
    if (f->owner && strcmp(f->owner, lh_ws__str(doc, "owner")) != 0)
        return false;
    if (f->kind && strcmp(f->kind, lh_ws__str(doc, "kind")) != 0)
        return false;
    if (f->text) {
        bool hit = strcasestr(lh_ws__str(doc, "name"), f->text) ||
                   strcasestr(lh_ws__str(doc, "description"), f->text);
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(doc, "tags"), i, t) hit |=
            strcasestr(json_string_value(t), f->text) != NULL;
        if (!hit)
            return false;
    }
    return true;
}

json_t *
lh_ws__readable(lh_workspaces *w, const lh_principal *p)
{
    json_t *all = json_array();
    pthread_mutex_lock(&w->lock);
    for (ws_entry *e = w->head; e; e = e->next)
        if (lh_ws__access(p, e->doc) != WS_NONE)
            json_array_append(all, e->doc);
    pthread_mutex_unlock(&w->lock);
    return all;
}

static int
by_updated_desc(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    return strcmp(lh_ws__str(y, "updated_at"), lh_ws__str(x, "updated_at"));
}

int
lh_workspace_list(lh_workspaces *w, const lh_principal *p, const lh_workspace_filter *f,
                  json_t **out, lh_err *err)
{
    (void)err;
    json_t *all = lh_ws__readable(w, p);
    size_t n = json_array_size(all);
    const json_t **docs = lh_calloc(n ? n : 1, sizeof *docs);
    for (size_t i = 0; i < n; i++)
        docs[i] = json_array_get(all, i);
    qsort(docs, n, sizeof *docs, by_updated_desc);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        if (matches(docs[i], f))
            json_array_append_new(list, summary(docs[i]));
    free(docs);
    json_decref(all);
    *out = list;
    return 0;
}

int
lh_workspace_patch(lh_workspaces *w, const lh_principal *p, const char *id, const json_t *body,
                   json_t **out, lh_err *err)
{
    bool members = json_object_get(body, "members") != NULL;
    ws_edit e;
    int rc = lh_ws__begin(w, p, id, members ? WS_OWNER : WS_WRITE, false, &e, err);
    if (rc != 0)
        return rc;
    if (json_object_size(body) == 0) {
        lh_ws__abort(&e);
        return bad(err, "%s",
                   "nothing to change: give name, kind, description, tier, tags or "
                   "members");
    }
    if ((rc = apply_fields(w, body, e.doc, false, err)) != 0) {
        lh_ws__abort(&e);
        return rc;
    }
    json_t *fields = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) json_array_append_new(fields, json_string(k));
    json_t *doc = NULL;
    if ((rc = lh_ws__commit(&e, p->name, "updated", json_pack("{s:o}", "fields", fields), &doc,
                            err)) == 0) {
        *out = public_view(doc, p);
        json_decref(doc);
    }
    return rc;
}

int
lh_workspace_archive(lh_workspaces *w, const lh_principal *p, const char *id, json_t **out,
                     lh_err *err)
{
    ws_edit e;
    int rc = lh_ws__begin(w, p, id, WS_OWNER, false, &e, err);
    if (rc != 0)
        return rc;
    json_object_set_new(e.doc, "state", json_string("archived"));
    json_t *doc = NULL;
    if ((rc = lh_ws__commit(&e, p->name, "archived", NULL, &doc, err)) == 0) {
        *out = public_view(doc, p);
        json_decref(doc);
    }
    return rc;
}

int
lh_workspace_handoff(lh_workspaces *w, const lh_principal *p, const char *id, const json_t *body,
                     json_t **out, lh_err *err)
{
    const char *to = json_string_value(json_object_get(body, "to"));
    json_t *note = json_object_get(body, "note");
    ws_edit e;
    int rc = lh_ws__begin(w, p, id, WS_OWNER, false, &e, err);
    if (rc != 0)
        return rc;
    const char *field;
    json_t *v;
    json_object_foreach((json_t *)body, field, v)
    {
        if (strcmp(field, "to") != 0 && strcmp(field, "note") != 0) {
            lh_ws__abort(&e);
            return bad(err, "unknown field '%s'", field);
        }
    }
    if (to == NULL || to[0] == '\0' || (note && !json_is_string(note))) {
        lh_ws__abort(&e);
        return bad(err, "%s", "'to' must name a principal and 'note' be a string");
    }
    if (!principal_known(w, to)) {
        lh_ws__abort(&e);
        lh_err_set(err, LH_EINVAL, 400, "unknown_principal", "no principal '%.64s'", to);
        lh_err_hint(err, "hand a workspace to a configured principal ([[principal]] name)");
        return LH_EINVAL;
    }
    char from[sizeof p->name];
    snprintf(from, sizeof from, "%s", lh_ws__str(e.doc, "owner"));
    if (strcmp(from, to) == 0) {
        lh_ws__abort(&e);
        return bad(err, "%s", "'to' already owns this workspace");
    }
    json_object_set_new(e.doc, "owner", json_string(to));
    json_t *members = json_object_get(e.doc, "members");
    json_object_del(members, to);
    json_object_set_new(members, from, json_string("read")); /* keeps the record visible */
    json_t *detail = json_pack("{s:s, s:s, s:s}", "from", from, "to", to, "note",
                               note ? json_string_value(note) : "");
    json_t *doc = NULL;
    if ((rc = lh_ws__commit(&e, p->name, "handoff", detail, &doc, err)) == 0) {
        *out = public_view(doc, p);
        json_decref(doc);
    }
    return rc;
}

int
lh_workspace_note(lh_workspaces *w, const lh_principal *p, const char *id, const json_t *body,
                  json_t **out, lh_err *err)
{
    json_t *text = json_object_get(body, "text");
    if (!json_is_string(text) || json_string_length(text) == 0 ||
        json_string_length(text) > 20000 || json_object_size(body) != 1)
        return bad(err, "%s", "a note is {\"text\": \"...\"} with 1 to 20000 characters");
    ws_edit e;
    int rc = lh_ws__begin(w, p, id, WS_WRITE, false, &e, err);
    if (rc != 0)
        return rc;
    char now[LH_TIME_MAX];
    lh_ws__now(now);
    json_t *notes = json_object_get(e.doc, "notes");
    json_t *note = json_pack("{s:I, s:O, s:s, s:s}", "id", (json_int_t)json_array_size(notes) + 1,
                             "text", text, "author", p->name, "at", now);
    json_array_append(notes, note);
    json_t *doc = NULL;
    rc = lh_ws__commit(&e, p->name, "note", json_pack("{s:O}", "text", text), &doc, err);
    json_decref(doc);
    if (rc == 0)
        *out = note;
    else
        json_decref(note);
    return rc;
}

/* ---- brief and activity ------------------------------------------------------------------------
 */

int
lh_workspace_brief(lh_workspaces *w, const lh_principal *p, const char *id, json_t **out,
                   lh_err *err)
{
    json_t *doc = NULL;
    int rc = lh_ws__read(w, p, id, WS_READ, &doc, err);
    if (rc != 0)
        return rc;
    json_t *lists = json_array(), *staged = json_array(), *queries = json_array();
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(doc, "shortlists"), name, v)
    {
        json_t *items = json_object_get(v, "records"), *top = json_array();
        for (size_t i = 0; i < json_array_size(items) && i < 5; i++)
            json_array_append(top, json_array_get(items, i));
        json_array_append_new(lists, json_pack("{s:s, s:I, s:o}", "name", name, "records",
                                               (json_int_t)json_array_size(items), "top", top));
    }
    json_object_foreach(json_object_get(doc, "staged"), name, v)
    {
        json_array_append_new(staged,
                              json_pack("{s:s, s:I, s:O}", "dataset", name, "keys",
                                        (json_int_t)json_object_size(json_object_get(v, "ops")),
                                        "since", json_object_get(v, "since")));
    }
    json_object_foreach(json_object_get(doc, "queries"), name, v)
    {
        json_array_append_new(queries, json_pack("{s:s, s:O, s:O}", "name", name, "description",
                                                 json_object_get(v, "description"), "last_run",
                                                 json_object_get(v, "last_run")));
    }
    json_t *activity = json_object_get(doc, "activity"), *last = json_array();
    size_t n = json_array_size(activity);
    for (size_t i = n > 10 ? n - 10 : 0; i < n; i++)
        json_array_insert(last, 0, json_array_get(activity, i));
    json_t *notes = json_object_get(doc, "notes"), *last_notes = json_array();
    n = json_array_size(notes);
    for (size_t i = n > 10 ? n - 10 : 0; i < n; i++)
        json_array_insert(last_notes, 0, json_array_get(notes, i));
    *out = json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:o, s:o, s:o, s:o, s:o}", "id",
                     json_object_get(doc, "id"), "name", json_object_get(doc, "name"), "kind",
                     json_object_get(doc, "kind"), "purpose", json_object_get(doc, "description"),
                     "owner", json_object_get(doc, "owner"), "tier", json_object_get(doc, "tier"),
                     "tags", json_object_get(doc, "tags"), "version",
                     json_object_get(doc, "version"), "shortlists", lists, "staged", staged,
                     "queries", queries, "last_actions", last, "notes", last_notes);
    json_decref(doc);
    return 0;
}

static int
by_at(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    return strcmp(lh_ws__str(x, "at"), lh_ws__str(y, "at"));
}

/* Row changes journaled with the workspace's id, in datasets p may read, as activity. */
static void
journal_activity(lh_workspaces *w, const lh_principal *p, const char *id, const char *since,
                 json_t *all)
{
    lh_events_filter f = {.workspace_id = id, .since = since, .limit = 10000};
    json_t *events = NULL;
    lh_err err;
    if (lh_catalog_events(w->deps.catalog, &f, &events, &err) != 0) {
        lh_log_err(LH_LOG_WARN, NULL, &err);
        return;
    }
    size_t i;
    json_t *ev;
    json_t *visible = json_object();
    json_array_foreach(events, i, ev)
    {
        const char *ds = lh_ws__str(ev, "dataset");
        json_t *seen = json_object_get(visible, ds);
        if (seen == NULL) {
            json_t *m = NULL;
            seen = json_boolean(lh_ws__manifest(w, p, ds, &m, &err) == 0);
            json_decref(m);
            json_object_set_new(visible, ds, seen);
        }
        if (!json_is_true(seen))
            continue;
        json_t *detail = json_deep_copy(ev);
        json_object_del(detail, "actor");
        json_object_del(detail, "ts");
        json_array_append_new(
            all, json_pack("{s:O, s:s, s:O, s:o}", "at", json_object_get(ev, "ts"), "kind",
                           "row_change", "actor", json_object_get(ev, "actor"), "detail", detail));
    }
    json_decref(visible);
    json_decref(events);
}

int
lh_workspace_activity(lh_workspaces *w, const lh_principal *p, const char *id,
                      const lh_ws_activity_filter *f, json_t **out, lh_err *err)
{
    json_t *doc = NULL;
    int rc = lh_ws__read(w, p, id, WS_READ, &doc, err);
    if (rc != 0)
        return rc;
    json_t *all = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(doc, "activity"), i, a)
    {
        json_t *entry = json_pack("{s:O, s:O, s:O, s:O}", "at", json_object_get(a, "at"), "kind",
                                  json_object_get(a, "op"), "actor", json_object_get(a, "actor"),
                                  "version", json_object_get(a, "version"));
        if (json_object_get(a, "detail"))
            json_object_set(entry, "detail", json_object_get(a, "detail"));
        json_array_append_new(all, entry);
    }
    journal_activity(w, p, id, f->since, all);
    if (w->deps.audit) {
        json_t *calls = NULL;
        lh_err aerr;
        if (w->deps.audit(w->deps.audit_ctx, id, f->since, &calls, &aerr) == 0)
            json_array_extend(all, calls);
        else
            lh_log_err(LH_LOG_WARN, NULL, &aerr);
        json_decref(calls);
    }
    size_t n = json_array_size(all);
    const json_t **items = lh_calloc(n ? n : 1, sizeof *items);
    for (i = 0; i < n; i++)
        items[i] = json_array_get(all, i);
    qsort(items, n, sizeof *items, by_at);
    json_t *page = json_array();
    int64_t skipped = 0;
    bool more = false;
    for (i = 0; i < n; i++) {
        const json_t *it = items[i];
        if (f->kind && strcmp(f->kind, lh_ws__str(it, "kind")) != 0)
            continue;
        if (f->since && strcmp(lh_ws__str(it, "at"), f->since) < 0)
            continue;
        if (skipped++ < f->offset)
            continue;
        if ((int64_t)json_array_size(page) == f->limit) {
            more = true;
            break;
        }
        json_array_append(page, (json_t *)it);
    }
    free(items);
    json_decref(all);
    json_decref(doc);
    *out = json_pack("{s:o, s:o}", "activity", page, "next_cursor",
                     more ? json_string_nocheck("") : json_null());
    if (more) {
        char cursor[32];
        snprintf(cursor, sizeof cursor, "o%lld", (long long)(f->offset + f->limit));
        json_object_set_new(*out, "next_cursor", json_string(cursor));
    }
    return 0;
}
