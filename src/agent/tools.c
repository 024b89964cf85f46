/*
 * tools.c — the tool registry: versions stored create-only in the primary bucket, the
 * newest of each tool in memory, managing (put, delete), reading (get, versions, list).
 *
 * A stored version (_tools/{name}/v{N:06}.json) is
 *   {"name", "version", "created_at", "created_by", "deleted",
 *    "definition": the definition as validated (defaults filled in),
 *    "derived": {"datasets": [...], "params": [...]}}
 * "derived" holds what validation learnt (the datasets the tool reads or writes, the
 * parameters its statement or filter names), so a call and a restart need not ask the
 * engine again. A delete stores a version with "deleted": true and no definition.
 *
 * The in-memory table maps each name to its newest version (tombstones included, so a
 * re-create continues the numbering). Lookups take the table lock briefly and a
 * reference on the version; put and delete hold manage_lock across validation and the
 * store's put, then swap the table entry under the table lock.
 */
#include "agent/agent_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- versions in memory ------------------------------------------------------------------ */

void
lh_agent__tool_release(lh_tool *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    lh_schema_free(t->schema);
    json_decref(t->record);
    free(t);
}

static lh_tool *
tool_of(const json_t *entry)
{
    return (lh_tool *)(uintptr_t)json_integer_value(entry);
}

lh_tool *
lh_agent__tool_acquire(lh_tools *reg, const char *name)
{
    pthread_mutex_lock(&reg->lock);
    lh_tool *t = tool_of(json_object_get(reg->tools, name));
    if (t)
        atomic_fetch_add(&t->refs, 1);
    pthread_mutex_unlock(&reg->lock);
    return t;
}

void
lh_agent__publish(lh_tools *reg, lh_tool *t)
{
    pthread_mutex_lock(&reg->lock);
    lh_tool *old = tool_of(json_object_get(reg->tools, t->name));
    json_object_set_new(reg->tools, t->name, json_integer((json_int_t)(uintptr_t)t));
    pthread_mutex_unlock(&reg->lock);
    lh_agent__tool_release(old);
}

static const char *const KINDS[] = {"sql", "search", "upsert", "insert", "builtin", NULL};

int
lh_agent__tool_compile(json_t *record, lh_tool **out, lh_err *err)
{
    lh_tool *t = lh_calloc(1, sizeof *t);
    atomic_init(&t->refs, 1);
    t->record = json_incref(record);
    snprintf(t->name, sizeof t->name, "%s", json_string_value(json_object_get(record, "name")));
    t->version = json_integer_value(json_object_get(record, "version"));
    t->deleted = json_is_true(json_object_get(record, "deleted"));
    t->def = json_object_get(record, "definition");
    t->derived = json_object_get(record, "derived");
    int rc = 0;
    if (!t->deleted) {
        const char *kind = json_string_value(json_object_get(t->def, "kind"));
        for (int k = 0; KINDS[k]; k++)
            if (kind && strcmp(kind, KINDS[k]) == 0)
                t->kind = (lh_tool_kind)k;
        t->writes = t->kind == LH_TOOL_UPSERT || t->kind == LH_TOOL_INSERT;
        const json_t *rate = json_object_get(t->def, "rate");
        t->per_minute = json_number_value(json_object_get(rate, "per_minute"));
        t->burst = json_number_value(json_object_get(rate, "burst"));
        rc = lh_schema_compile(json_object_get(t->def, "input_schema"), &t->schema, err);
    }
    if (rc != 0) {
        lh_agent__tool_release(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* ---- the bucket ---------------------------------------------------------------------------- */

static lh_store *
primary(lh_tools *reg)
{
    return lh_buckets_primary(reg->deps.buckets);
}

/* Version `version` of name from the bucket (new). 404 version_not_found. */
static int
read_version(lh_tools *reg, const char *name, int64_t version, json_t **out, lh_err *err)
{
    char *key = lh_layout_tool_key(name, version);
    lh_buf text;
    lh_buf_init(&text);
    int rc = lh_store_get_buffer(primary(reg), key, 1 << 20, &text, NULL, err);
    if (rc == LH_ENOTFOUND)
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "version_not_found",
                        "tool '%s' has no version %lld", name, (long long)version);
    json_error_t jerr;
    json_t *record = rc == 0 ? json_loadb(text.data, text.len, 0, &jerr) : NULL;
    if (rc == 0 && !json_is_object(record)) {
        rc = lh_err_set(err, LH_EIO, 500, "tool_unreadable",
                        "version %lld of tool '%s' is not "
                        "readable JSON",
                        (long long)version, name);
        lh_err_detail(err, "%s", key);
    }
    lh_buf_free(&text);
    free(key);
    if (rc != 0) {
        json_decref(record);
        return rc;
    }
    *out = record;
    return 0;
}

lh_tool *
lh_agent__tool_acquire_version(lh_tools *reg, const char *name, int64_t version, lh_err *err)
{
    lh_tool *t = lh_agent__tool_acquire(reg, name);
    if (t && t->version == version)
        return t;
    lh_agent__tool_release(t);
    json_t *record = NULL;
    t = NULL;
    int rc = version > 0 ? read_version(reg, name, version, &record, err)
                         : lh_err_set(err, LH_ENOTFOUND, 404, "version_not_found",
                                      "tool '%s' has no version %lld", name, (long long)version);
    if (rc == 0)
        rc = lh_agent__tool_compile(record, &t, err);
    json_decref(record);
    if (rc == 0 && t->deleted) {
        lh_err_set(err, LH_ENOTFOUND, 404, "version_not_found",
                   "version %lld of tool '%s' is a deletion", (long long)version, name);
        lh_agent__tool_release(t);
        return NULL;
    }
    return rc == 0 ? t : NULL;
}

static int
store_version(lh_tools *reg, const json_t *record, lh_err *err)
{
    const char *name = json_string_value(json_object_get(record, "name"));
    int64_t version = json_integer_value(json_object_get(record, "version"));
    char *key = lh_layout_tool_key(name, version);
    char *text = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    int rc = lh_store_put_buffer(primary(reg), key, text, strlen(text), LH_PUT_CREATE_ONLY, err);
    if (rc == LH_EEXIST) {
        rc = lh_err_set(err, LH_EEXIST, 409, "tool_conflict",
                        "version %lld of tool '%s' was stored by someone else first",
                        (long long)version, name);
        lh_err_hint(err, "read the tool again (GET /tools/%s) and repeat the change", name);
    }
    free(text);
    free(key);
    return rc;
}

typedef struct newest {
    json_t *by_name; /* name -> highest version seen */
} newest;

static int
on_tool_key(void *ctx, const lh_list_entry *e)
{
    newest *n = ctx;
    char name[LH_NAME_MAX];
    int64_t version = 0;
    if (lh_layout_parse_tool_key(e->key, name, sizeof name, &version) != 0)
        return 0;
    json_int_t have = json_integer_value(json_object_get(n->by_name, name));
    if (version > have)
        json_object_set_new(n->by_name, name, json_integer(version));
    return 0;
}

/* Every version key of one tool, in order: [{"version", ...}] (new). */
static int
on_version_key(void *ctx, const lh_list_entry *e)
{
    json_t *versions = ctx;
    char name[LH_NAME_MAX];
    int64_t version = 0;
    if (lh_layout_parse_tool_key(e->key, name, sizeof name, &version) == 0)
        json_array_append_new(versions, json_integer(version));
    return 0;
}

static void
load_one(lh_tools *reg, const char *name, int64_t version)
{
    lh_err err;
    json_t *record = NULL;
    lh_tool *t = NULL;
    int rc = read_version(reg, name, version, &record, &err);
    if (rc == 0)
        rc = lh_agent__tool_compile(record, &t, &err);
    json_decref(record);
    if (rc != 0) {
        json_t *fields = json_pack("{s:s, s:I, s:s}", "tool", name, "version", (json_int_t)version,
                                   "code", err.code);
        lh_log(LH_LOG_WARN, NULL, fields, "tool not loaded: %s", err.message);
        json_decref(fields);
        return;
    }
    lh_agent__publish(reg, t);
}

int
lh_tools_open(const lh_tools_deps *deps, lh_tools **out, lh_err *err)
{
    lh_tools *reg = lh_calloc(1, sizeof *reg);
    reg->deps = *deps;
    pthread_mutex_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->manage_lock, NULL);
    reg->tools = json_object();
    reg->rate = lh_agent__rate_new();
    atomic_init(&reg->max_calls_per_minute,
                lh_config_int(deps->config, "tools.max_calls_per_minute"));
    newest n = {.by_name = json_object()};
    int rc = lh_store_each(primary(reg), LH_LAYOUT_TOOLS, on_tool_key, &n, err);
    const char *name;
    json_t *version;
    json_object_foreach(n.by_name, name, version) load_one(reg, name, json_integer_value(version));
    json_decref(n.by_name);
    if (rc == 0 && deps->workspaces)
        rc = lh_agent__builtins_add(reg, err);
    if (rc != 0) {
        lh_tools_close(reg);
        return rc;
    }
    *out = reg;
    return 0;
}

void
lh_tools_set_max_calls_per_minute(lh_tools *reg, int64_t per_minute)
{
    atomic_store(&reg->max_calls_per_minute, per_minute);
}

void
lh_tools_close(lh_tools *reg)
{
    if (!reg)
        return;
    const char *name;
    json_t *entry;
    json_object_foreach(reg->tools, name, entry) lh_agent__tool_release(tool_of(entry));
    json_decref(reg->tools);
    lh_agent__rate_free(reg->rate);
    pthread_mutex_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->manage_lock);
    free(reg);
}

/* ---- reading ------------------------------------------------------------------------------ */

static bool
is_admin(const lh_principal *who)
{
    return who && (who->roles & LH_ROLE_ADMIN);
}

bool
lh_agent__allowed(const lh_tool *t, const lh_principal *who)
{
    const json_t *allow = json_object_get(t->def, "allow");
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(allow, "roles"), i, x)
    {
        if (who->roles & lh_role_bit(json_string_value(x)))
            return true;
    }
    json_array_foreach(json_object_get(allow, "principals"), i, x)
    {
        if (strcmp(json_string_value(x), who->name) == 0)
            return true;
    }
    return false;
}

static int
not_found(lh_err *err, const char *name)
{
    lh_err_set(err, LH_ENOTFOUND, 404, "tool_not_found", "no tool named '%s'", name);
    lh_err_hint(err, "GET /tools lists the tools you may call");
    return LH_ENOTFOUND;
}

/* The answer for one version: the record without "derived", flattened:
 * {"name","version","created_at","created_by","deleted", ...definition}. */
static json_t *
render(const json_t *record)
{
    json_t *out = json_object();
    json_object_update(out, json_object_get(record, "definition"));
    for (const char *const *k =
             (const char *const[]){"name", "version", "created_at", "created_by", "deleted", NULL};
         *k; k++)
        json_object_set(out, *k, json_object_get(record, *k));
    return out;
}

/* Whether every dataset t reads or writes lies in a bucket who may use: tenants see only
 * what their buckets hold, tools included. */
static bool
buckets_ok(lh_tools *reg, const lh_tool *t, const lh_principal *who)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(t->derived, "datasets"), i, d)
    {
        if (!lh_catalog_may_see(reg->deps.catalog, who, json_string_value(d)))
            return false;
    }
    return true;
}

/* Whether who sees t in lists and reads: admins see every tool; others the live tools
 * they may call whose datasets are in their buckets. */
static bool
sees(lh_tools *reg, const lh_tool *t, const lh_principal *who)
{
    if (is_admin(who))
        return true;
    return !t->deleted && lh_agent__allowed(t, who) && buckets_ok(reg, t, who);
}

/* The current version of name when who may see it; else 404. */
static lh_tool *
visible(lh_tools *reg, const lh_principal *who, const char *name, lh_err *err)
{
    lh_tool *t = lh_agent__tool_acquire(reg, name);
    if (t && sees(reg, t, who))
        return t;
    lh_agent__tool_release(t);
    not_found(err, name);
    return NULL;
}

int
lh_tools_get(lh_tools *reg, const lh_principal *who, const char *name, int64_t version,
             json_t **out, lh_err *err)
{
    lh_tool *t = visible(reg, who, name, err);
    if (!t)
        return LH_ENOTFOUND;
    int rc = 0;
    if (version == 0 || version == t->version) {
        if (t->deleted && version == 0)
            rc = not_found(err, name); /* the history stays readable by version */
        else
            *out = render(t->record);
    } else if (version > t->version || version < 0) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "version_not_found",
                        "tool '%s' has no version %lld (the newest is %lld)", name,
                        (long long)version, (long long)t->version);
    } else {
        json_t *record = NULL;
        if ((rc = read_version(reg, name, version, &record, err)) == 0)
            *out = render(record);
        json_decref(record);
    }
    lh_agent__tool_release(t);
    return rc;
}

int
lh_tools_versions(lh_tools *reg, const lh_principal *who, const char *name, json_t **out,
                  lh_err *err)
{
    lh_tool *t = visible(reg, who, name, err);
    if (!t)
        return LH_ENOTFOUND;
    if (t->kind == LH_TOOL_BUILTIN && !t->deleted) { /* never stored: its one version */
        *out = json_pack("[{s:O, s:O, s:O, s:O}]", "version", json_object_get(t->record, "version"),
                         "created_at", json_object_get(t->record, "created_at"), "created_by",
                         json_object_get(t->record, "created_by"), "deleted",
                         json_object_get(t->record, "deleted"));
        lh_agent__tool_release(t);
        return 0;
    }
    lh_agent__tool_release(t);
    json_t *numbers = json_array(), *versions = json_array();
    char *prefix = lh_layout_tool_prefix(name);
    int rc = lh_store_each(primary(reg), prefix, on_version_key, numbers, err);
    free(prefix);
    size_t i;
    json_t *n;
    json_array_foreach(numbers, i, n)
    {
        json_t *record = NULL;
        if (rc == 0 && (rc = read_version(reg, name, json_integer_value(n), &record, err)) == 0)
            json_array_append_new(versions,
                                  json_pack("{s:O, s:O, s:O, s:O}", "version",
                                            json_object_get(record, "version"), "created_at",
                                            json_object_get(record, "created_at"), "created_by",
                                            json_object_get(record, "created_by"), "deleted",
                                            json_object_get(record, "deleted")));
        json_decref(record);
    }
    json_decref(numbers);
    if (rc != 0) {
        json_decref(versions);
        return rc;
    }
    *out = versions;
    return 0;
}

int
lh_tools_format_parse(const char *s)
{
    if (!s || strcmp(s, "native") == 0)
        return LH_TOOLS_NATIVE;
    if (strcmp(s, "openai") == 0)
        return LH_TOOLS_OPENAI;
    if (strcmp(s, "mcp") == 0)
        return LH_TOOLS_MCP;
    return -1;
}

json_t *
lh_tools_list(lh_tools *reg, const lh_principal *who, lh_tools_format format)
{
    /* take references under the lock, decide and render outside it (the bucket check
     * asks the catalog) */
    pthread_mutex_lock(&reg->lock);
    size_t n_all = json_object_size(reg->tools), n = 0;
    lh_tool **all = lh_calloc(n_all ? n_all : 1, sizeof *all);
    const char *name;
    json_t *entry;
    json_object_foreach(reg->tools, name, entry)
    {
        all[n] = tool_of(entry);
        atomic_fetch_add(&all[n]->refs, 1);
        n++;
    }
    pthread_mutex_unlock(&reg->lock);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        const lh_tool *t = all[i];
        if (t->deleted || !sees(reg, t, who))
            continue;
        const json_t *desc = json_object_get(t->def, "description");
        const json_t *schema = json_object_get(t->def, "input_schema");
        switch (format) {
        case LH_TOOLS_OPENAI:
            json_array_append_new(out, json_pack("{s:s, s:{s:s, s:O, s:O}}", "type", "function",
                                                 "function", "name", t->name, "description", desc,
                                                 "parameters", schema));
            break;
        case LH_TOOLS_MCP:
            json_array_append_new(out, json_pack("{s:s, s:O, s:O}", "name", t->name, "description",
                                                 desc, "inputSchema", schema));
            break;
        default:
            json_array_append_new(out, render(t->record));
        }
    }
    for (size_t i = 0; i < n; i++)
        lh_agent__tool_release(all[i]);
    free(all);
    /* the table is a hash: answer in name order */
    n = json_array_size(out);
    for (size_t i = 1; i < n; i++) /* insertion sort: lists are short */
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(out, j - 1), *b = json_array_get(out, j);
            const char *na = json_string_value(json_object_get(a, "name"));
            const char *nb = json_string_value(json_object_get(b, "name"));
            if (!na)
                na = json_string_value(json_object_get(json_object_get(a, "function"), "name"));
            if (!nb)
                nb = json_string_value(json_object_get(json_object_get(b, "function"), "name"));
            if (strcmp(na, nb) <= 0)
                break;
            json_incref(a);
            json_array_set(out, j - 1, b);
            json_array_set_new(out, j, a);
        }
    return out;
}

/* ---- managing ------------------------------------------------------------------------------ */

static int
admins_only(const lh_principal *who, lh_err *err)
{
    if (is_admin(who))
        return 0;
    lh_err_set(err, LH_EPERM, 403, "forbidden", "only admins manage tools");
    lh_err_detail(err, "principal '%s' is not an admin", who ? who->name : "?");
    return LH_EPERM;
}

/* Store record as the next version of its tool and make it current. Under manage_lock. */
static int
commit(lh_tools *reg, json_t *record, json_t **out, lh_err *err)
{
    lh_tool *t = NULL;
    int rc = lh_agent__tool_compile(record, &t, err);
    if (rc == 0 && (rc = store_version(reg, record, err)) == 0) {
        *out = render(record);
        lh_agent__publish(reg, t);
        t = NULL;
    }
    lh_agent__tool_release(t);
    return rc;
}

static json_t *
new_record(const char *name, int64_t version, const lh_principal *who, bool deleted)
{
    char at[LH_TIME_MAX];
    lh_time_format(lh_now_us(), at);
    return json_pack("{s:s, s:I, s:s, s:s, s:b}", "name", name, "version", (json_int_t)version,
                     "created_at", at, "created_by", who->name, "deleted", deleted);
}

int
lh_tools_put(lh_tools *reg, const lh_principal *who, const char *name, const json_t *def,
             bool create, json_t **out, lh_err *err)
{
    int rc = admins_only(who, err);
    if (rc != 0)
        return rc;
    if (!lh_name_valid(name)) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_name",
                   "a tool's name must match [a-z][a-z0-9_]{0,62}");
        lh_err_detail(err, "got '%.80s'", name);
        return LH_EINVAL;
    }
    if (reg->deps.workspaces && lh_agent__builtin_name(name))
        return lh_agent__builtin_refuse(name, err);
    pthread_mutex_lock(&reg->manage_lock);
    lh_tool *cur = lh_agent__tool_acquire(reg, name);
    json_t *derived = NULL, *record = NULL, *clean = NULL;
    bool live = cur && !cur->deleted;
    if (create && live) {
        rc = lh_err_set(err, LH_EEXIST, 409, "tool_exists", "a tool named '%s' exists", name);
        lh_err_hint(err, "PUT /tools/%s changes it (a new version)", name);
        goto out;
    }
    if (!create && !live) {
        rc = not_found(err, name);
        lh_err_hint(err, "POST /tools creates a tool");
        goto out;
    }
    clean = json_deep_copy(def);
    if ((rc = lh_agent__def_check(reg, name, clean, &derived, err)) != 0)
        goto out;
    json_object_set_new(clean, "name", json_string(name));
    record = new_record(name, cur ? cur->version + 1 : 1, who, false);
    json_object_set(record, "definition", clean);
    json_object_set(record, "derived", derived);
    rc = commit(reg, record, out, err);
out:
    pthread_mutex_unlock(&reg->manage_lock);
    lh_agent__tool_release(cur);
    json_decref(derived);
    json_decref(record);
    json_decref(clean);
    return rc;
}

int
lh_tools_delete(lh_tools *reg, const lh_principal *who, const char *name, json_t **out, lh_err *err)
{
    int rc = admins_only(who, err);
    if (rc != 0)
        return rc;
    if (reg->deps.workspaces && lh_agent__builtin_name(name))
        return lh_agent__builtin_refuse(name, err);
    pthread_mutex_lock(&reg->manage_lock);
    lh_tool *cur = lh_agent__tool_acquire(reg, name);
    json_t *record = NULL, *shown = NULL;
    if (!cur || cur->deleted) {
        rc = not_found(err, name);
        goto out;
    }
    record = new_record(name, cur->version + 1, who, true);
    if ((rc = commit(reg, record, &shown, err)) == 0)
        *out = json_pack("{s:s, s:I, s:b}", "name", name, "version", (json_int_t)(cur->version + 1),
                         "deleted", 1);
out:
    pthread_mutex_unlock(&reg->manage_lock);
    lh_agent__tool_release(cur);
    json_decref(record);
    json_decref(shown);
    return rc;
}
