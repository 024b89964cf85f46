/*
 * ws_sweep.c — removing delta files nothing can read any more: rows staged in a workspace
 * and since published or discarded. A delta file is kept while the workspace's current
 * version stages it or a snapshot the workspace keeps does (a rollback makes that
 * version's staging current again); older versions stay as history, but their staged rows
 * are not read back. Files younger than the grace period are kept (a stage stores its
 * file before the version naming it), and so are files of workspaces this server does not
 * know (another server's, or one whose versions did not load).
 */
#include "workspace/ws_int.h"

#include <stdlib.h>
#include <string.h>

/* Every "bucket\nkey" the staging of doc names (delta files and values), into refs. */
static void
add_staged(const json_t *doc, json_t *refs)
{
    const char *ds;
    json_t *staged;
    json_object_foreach(json_object_get(doc, "staged"), ds, staged)
    {
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(staged, "files"), i, f)
        {
            char *k = lh_sprintf("%s\n%s", lh_ws__str(staged, "bucket"), lh_ws__str(f, "path"));
            json_object_set_new(refs, k, json_true());
            free(k);
        }
        const char *values = json_string_value(json_object_get(staged, "values"));
        if (values) {
            char *k = lh_sprintf("%s\n%s", lh_ws__str(staged, "bucket"), values);
            json_object_set_new(refs, k, json_true());
            free(k);
        }
    }
}

/* What the workspaces need now (new): "bucket\nkey" -> true; *known (new): id -> true. */
static int
referenced(lh_workspaces *w, json_t **known, json_t **out, lh_err *err)
{
    json_t *docs = json_array(), *refs = json_object(), *ids = json_object();
    pthread_mutex_lock(&w->lock);
    for (ws_entry *e = w->head; e; e = e->next) {
        json_array_append(docs, e->doc);
        json_object_set_new(ids, e->id, json_true());
    }
    pthread_mutex_unlock(&w->lock);
    int rc = 0;
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        add_staged(doc, refs);
        size_t j;
        json_t *snap;
        json_array_foreach(json_object_get(doc, "snapshots"), j, snap)
        {
            char *key = lh_layout_workspace_key(
                lh_ws__str(doc, "id"), json_integer_value(json_object_get(snap, "version")));
            lh_buf text;
            lh_buf_init(&text);
            if (rc == 0)
                rc = lh_store_get_buffer(lh_buckets_primary(w->deps.buckets), key, LH_WS_DOC_MAX,
                                         &text, NULL, err);
            json_t *old = rc == 0 ? json_loadb(text.data, text.len, 0, NULL) : NULL;
            if (rc == 0 && !old)
                rc = lh_err_set(err, LH_EIO, 500, "workspace_unreadable",
                                "a snapshot's version is not readable JSON: %s", key);
            add_staged(old, refs);
            json_decref(old);
            lh_buf_free(&text);
            free(key);
        }
    }
    json_decref(docs);
    if (rc != 0) { /* not knowing what is needed, remove nothing */
        json_decref(refs);
        json_decref(ids);
        return rc;
    }
    *out = refs;
    *known = ids;
    return 0;
}

typedef struct walk {
    lh_workspaces *w;
    const char *bucket;
    const json_t *refs, *known;
    int64_t older_than_us;
    bool dry_run;
    json_t *report;
} walk;

static void
count(json_t *report, const char *field, int64_t n)
{
    json_t *v = json_object_get(report, field);
    if (!v)
        json_object_set_new(report, field, json_integer(n));
    else
        json_integer_set(v, json_integer_value(v) + n);
}

static int
sweep_key(void *ctx, const lh_list_entry *e)
{
    walk *k = ctx;
    const char *rest = e->key + strlen(LH_LAYOUT_WORKSPACES), *slash = strchr(rest, '/');
    if (!slash || strncmp(slash, "/delta/", 7) != 0)
        return 0; /* a version: history, never swept */
    char id[LH_WS_ID_MAX];
    if ((size_t)(slash - rest) >= sizeof id)
        return 0;
    snprintf(id, sizeof id, "%.*s", (int)(slash - rest), rest);
    if (!json_object_get(k->known, id)) {
        count(k->report, "workspace_deltas_kept_unknown", 1);
        return 0;
    }
    char *ref = lh_sprintf("%s\n%s", k->bucket, e->key);
    bool needed = json_object_get(k->refs, ref) != NULL;
    free(ref);
    if (needed)
        return 0;
    if (e->mtime_us > k->older_than_us) {
        count(k->report, "kept_young", 1);
        return 0;
    }
    lh_err err;
    if (!k->dry_run &&
        lh_buckets_delete_object(k->w->deps.buckets, k->bucket, e->key, NULL, &err) != 0) {
        json_array_append_new(
            json_object_get(k->report, "errors"),
            json_pack("{s:s, s:s, s:s}", "bucket", k->bucket, "key", e->key, "error", err.message));
        return 0;
    }
    json_array_append_new(json_object_get(k->report, "removed"),
                          json_pack("{s:s, s:s, s:I}", "bucket", k->bucket, "key", e->key, "bytes",
                                    (json_int_t)e->size));
    count(k->report, "workspace_deltas_removed", 1);
    count(k->report, "removed_bytes", e->size);
    return 0;
}

void
lh_workspace_sweep(lh_workspaces *w, int64_t grace_s, bool dry_run, json_t *report)
{
    if (!json_object_get(report, "removed"))
        json_object_set_new(report, "removed", json_array());
    if (!json_object_get(report, "errors"))
        json_object_set_new(report, "errors", json_array());
    count(report, "workspace_deltas_removed", 0);
    count(report, "workspace_deltas_kept_unknown", 0);
    count(report, "kept_young", 0);
    count(report, "removed_bytes", 0);
    json_t *refs = NULL, *known = NULL;
    lh_err err;
    if (referenced(w, &known, &refs, &err) != 0) {
        json_array_append_new(
            json_object_get(report, "errors"),
            json_pack("{s:s, s:s}", "key", LH_LAYOUT_WORKSPACES, "error", err.message));
        return;
    }
    size_t n = lh_buckets_count(w->deps.buckets);
    for (size_t b = 0; b < n; b++) {
        const char *bucket = lh_buckets_name_at(w->deps.buckets, b);
        if (strncmp(bucket, "profile:", 8) == 0)
            continue; /* views of their base bucket, which is swept itself */
        walk k = {w, bucket, refs, known, lh_now_us() - grace_s * 1000000, dry_run, report};
        if (lh_buckets_each(w->deps.buckets, bucket, LH_LAYOUT_WORKSPACES, sweep_key, &k, NULL,
                            &err) != 0)
            json_array_append_new(json_object_get(report, "errors"),
                                  json_pack("{s:s, s:s, s:s}", "bucket", bucket, "key",
                                            LH_LAYOUT_WORKSPACES, "error", err.message));
    }
    json_decref(refs);
    json_decref(known);
}
