/*
 * ws_rows.c — what a workspace holds of datasets' rows: record keys, row lookups and
 * hashes (shared with the shortlists, ws_shortlist.c) and the delta layer (staged row
 * changes, merged on read for queries made with the workspace, published as one row
 * change or discarded).
 *
 * A record is a dataset and its primary key; its identity is the key's values as text
 * ("[\"42\"]"), so 42 and "42" name the same record. A row's hash is the SHA-256 of its
 * JSON (sorted keys), as the internal engine returns it; comparing the hash kept at add
 * (or stage) time with today's tells whether the record changed.
 */
#include "workspace/ws_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
lh_ws__manifest(lh_workspaces *w, const lh_principal *p, const char *dataset, json_t **m,
                lh_err *err)
{
    json_t *got = NULL;
    /* one the principal may not see is as absent as one nothing defines */
    int rc = lh_catalog_get_visible(w->deps.catalog, p, dataset, &got, err);
    if (rc == 0 && strcmp(lh_ws__str(got, "state"), "live") != 0)
        rc = lh_catalog_not_found(err, dataset);
    if (rc != 0) {
        json_decref(got);
        return rc;
    }
    *m = got;
    return 0;
}

/* A value as the text a key compares by. Returns new. */
static char *
value_text(const json_t *v)
{
    if (json_is_string(v))
        return lh_strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static char *
key_text_of(const json_t *pk, const json_t *row)
{
    json_t *parts = json_array();
    size_t i;
    json_t *k;
    json_array_foreach(pk, i, k)
    {
        char *t = value_text(json_object_get(row, json_string_value(k)));
        json_array_append_new(parts, json_string(t ? t : ""));
        free(t);
    }
    char *text = json_dumps(parts, JSON_COMPACT);
    json_decref(parts);
    return text;
}

int
lh_ws__key(const json_t *m, const json_t *given, const char *where, json_t **key, char **key_text,
           lh_err *err)
{
    const json_t *pk = json_object_get(json_object_get(m, "metadata"), "primary_key");
    size_t n = json_array_size(pk);
    if (n == 0) {
        lh_err_set(err, LH_EINVAL, 400, "no_primary_key", "dataset '%s' has no primary key",
                   lh_ws__str(m, "name"));
        lh_err_hint(err, "records are named by primary key; declare one with PATCH "
                         "/catalog/datasets/{name}");
        return LH_EINVAL;
    }
    json_t *k = json_object();
    if (json_is_object(given)) {
        if (json_object_size(given) != n)
            goto bad;
        for (size_t i = 0; i < n; i++) {
            const char *col = json_string_value(json_array_get(pk, i));
            json_t *v = json_object_get(given, col);
            if (v == NULL || json_is_null(v) || json_is_object(v) || json_is_array(v))
                goto bad;
            json_object_set(k, col, v);
        }
    } else if (n == 1 && given && (json_is_string(given) || json_is_number(given))) {
        json_object_set(k, json_string_value(json_array_get(pk, 0)), (json_t *)given);
    } else {
        goto bad;
    }
    *key_text = key_text_of(pk, k);
    *key = k;
    return 0;
bad:
    json_decref(k);
    char *cols = json_dumps(pk, JSON_COMPACT);
    lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
               "%s: 'key' must give the primary key %s of '%s'", where, cols,
               lh_ws__str(m, "name"));
    lh_err_hint(err, "{\"key\": {\"id\": 42}}, or {\"key\": 42} for a one-column key");
    free(cols);
    return LH_EINVAL;
}

void
lh_ws__row_hash(const json_t *row, char out[17])
{
    if (row == NULL || json_is_null(row)) {
        snprintf(out, 17, "absent");
        return;
    }
    char *text = json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS);
    char hex[65];
    lh_sha256_hex(text, strlen(text), hex);
    memcpy(out, hex, 16);
    out[16] = '\0';
    free(text);
}

int
lh_ws__lookup(lh_workspaces *w, const json_t *m, const json_t *keys, json_t **rows, lh_err *err)
{
    const json_t *pk = json_object_get(json_object_get(m, "metadata"), "primary_key");
    json_t *found = json_object();
    if (json_array_size(keys) == 0) {
        *rows = found;
        return 0;
    }
    char **paths = NULL;
    size_t n_paths = 0;
    json_t *got = NULL;
    int rc = lh_catalog_pin_rows(w->deps.catalog, m, &paths, &n_paths, err);
    if (rc != 0) {
        json_decref(found);
        return rc;
    }
    char *rows_sql = lh_catalog_rows_sql(m, paths);
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_printf(&sql, "SELECT * FROM (%s) AS lh_t WHERE ", rows_sql);
    size_t i;
    json_t *key;
    json_array_foreach(keys, i, key)
    {
        lh_buf_puts(&sql, i ? " OR (" : "(");
        size_t j;
        json_t *col;
        json_array_foreach(pk, j, col)
        {
            char *t = value_text(json_object_get(key, json_string_value(col)));
            lh_buf_puts(&sql, j ? " AND CAST(lh_t." : "CAST(lh_t.");
            lh_sql_ident(&sql, json_string_value(col));
            lh_buf_puts(&sql, " AS VARCHAR) = ");
            lh_sql_quote(&sql, t ? t : "");
            free(t);
        }
        lh_buf_puts(&sql, ")");
    }
    rc = lh_engine_rows(w->deps.engine, sql.data, &got, err);
    lh_buf_free(&sql);
    free(rows_sql);
    lh_catalog_unpin_rows(w->deps.catalog, paths, n_paths);
    json_t *row;
    json_array_foreach(got, i, row)
    {
        char *kt = key_text_of(pk, row);
        json_object_set(found, kt, row);
        free(kt);
    }
    json_decref(got);
    if (rc != 0) {
        json_decref(found);
        return rc;
    }
    *rows = found;
    return 0;
}

static int
bad(lh_err *err, const char *msg)
{
    lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "%s", msg);
    lh_err_hint(err, "see docs/API.md, Workspaces");
    return LH_EINVAL;
}

/* ---- the delta layer ---------------------------------------------------------------------- */

/* m (a copy) with the dataset's staged delta files appended, for merge on read. */
static json_t *
with_staged(const json_t *m, const json_t *staged)
{
    json_t *base = json_deep_copy(m);
    lh_catalog_drop_events(base);
    json_t *files = json_object_get(base, "files");
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(staged, "files"), i, f) json_array_append_new(
        files, json_pack("{s:O, s:O, s:O, s:s}", "path", json_object_get(f, "path"), "bytes",
                         json_object_get(f, "bytes"), "rows", json_object_get(f, "rows"), "kind",
                         "delta"));
    return base;
}

/* The values staged for one dataset to publish, key_text -> row (new). They live in the
 * dataset's bucket beside its delta files (staged.values names the object), so that no
 * value of a dataset is kept in another bucket; versions written before that held them in
 * each op's "values", which are read as they are. NULL staged: none. */
static int
staged_values(lh_workspaces *w, const json_t *staged, json_t **out, lh_err *err)
{
    const char *key = json_string_value(json_object_get(staged, "values"));
    if (key == NULL) {
        json_t *values = json_object();
        const char *kt;
        json_t *op;
        json_object_foreach(json_object_get(staged, "ops"), kt, op)
        {
            json_t *v = json_object_get(op, "values");
            json_object_set_new(values, kt, json_is_object(v) ? json_deep_copy(v) : json_object());
        }
        *out = values;
        return 0;
    }
    lh_store *store = lh_buckets_get(w->deps.buckets, lh_ws__str(staged, "bucket"), err);
    if (store == NULL)
        return err->rc ? err->rc : LH_ENOTFOUND;
    lh_buf text;
    lh_buf_init(&text);
    int rc = lh_store_get_buffer(store, key, LH_WS_DOC_MAX, &text, NULL, err);
    json_t *values = NULL;
    if (rc == 0) {
        json_error_t jerr;
        values = json_loadb(text.data, text.len, 0, &jerr);
        if (!json_is_object(values)) {
            json_decref(values);
            values = NULL;
            rc = lh_err_set(err, LH_EIO, 500, "workspace_unreadable",
                            "the staged values of a workspace could not be read");
            lh_err_detail(err, "%s in bucket '%s': %s", key, lh_ws__str(staged, "bucket"),
                          jerr.text);
        }
    }
    lh_buf_free(&text);
    if (rc == 0)
        *out = values;
    return rc;
}

/* Merge one request's changes into the staged ops (key_text -> {"op","base_hash",...}) and
 * the values to publish (key_text -> row). */
static void
merge_ops(json_t *ops, json_t *values, const json_t *m, const json_t *list, const char *op,
          const json_t *current, const char *actor)
{
    const json_t *pk = json_object_get(json_object_get(m, "metadata"), "primary_key");
    char now[LH_TIME_MAX];
    lh_ws__now(now);
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row)
    {
        char *kt = key_text_of(pk, row);
        json_t *prev = json_object_get(ops, kt), *vals = json_object_get(values, kt);
        if (prev == NULL) {
            char hash[17];
            lh_ws__row_hash(json_object_get(current, kt), hash);
            prev =
                json_pack("{s:s, s:s, s:O, s:s, s:s}", "op", op, "base_hash", hash, "base_version",
                          json_object_get(m, "version"), "staged_by", actor, "staged_at", now);
            json_object_set_new(ops, kt, prev);
        }
        if (vals == NULL || strcmp(op, "delete") == 0 ||
            strcmp(lh_ws__str(prev, "op"), "delete") == 0)
            json_object_set_new(values, kt, vals = json_object());
        json_object_set_new(prev, "op", json_string(op));
        json_object_update(vals, row);
        free(kt);
    }
}

int
lh_workspace_stage(lh_workspaces *w, const lh_principal *p, const char *id, const char *dataset,
                   const json_t *body, json_t **out, lh_err *err)
{
    ws_edit e = {0};
    json_t *m = NULL, *base = NULL, *counts = NULL, *current = NULL, *keys = NULL, *values = NULL;
    char *path = NULL, *key = NULL, *values_key = NULL, *values_text = NULL;
    bool stored_delta = false, stored_values = false;
    const json_t *upsert = json_object_get(body, "upsert"),
                 *deletes = json_object_get(body, "delete");
    int rc = 0;
    const char *field;
    json_t *v;
    json_object_foreach((json_t *)body, field, v)
    {
        if (strcmp(field, "upsert") != 0 && strcmp(field, "delete") != 0)
            return bad(err, "the body is {\"upsert\": [rows], \"delete\": [keys]}, as for "
                            "POST /datasets/{name}/rows");
    }
    if ((upsert && !json_is_array(upsert)) || (deletes && !json_is_array(deletes)) ||
        json_array_size(upsert) + json_array_size(deletes) == 0)
        return bad(err, "give 'upsert' (rows) and/or 'delete' (keys) as non-empty arrays");
    if ((rc = lh_ws__begin(w, p, id, WS_WRITE, false, &e, err)) != 0 ||
        (rc = lh_ws__manifest(w, p, dataset, &m, err)) != 0)
        goto out;
    json_t *staged_all = json_object_get(e.doc, "staged");
    json_t *staged = json_object_get(staged_all, dataset);
    if (staged && strcmp(lh_ws__str(staged, "bucket"), lh_ws__str(m, "bucket")) != 0) {
        rc = lh_err_set(err, LH_EEXIST, 409, "staged_elsewhere",
                        "changes staged for '%s' were for a dataset of another bucket", dataset);
        lh_err_hint(err, "discard them first: POST /workspaces/%s/discard", id);
        goto out;
    }
    base = with_staged(m, staged);
    int64_t stages = json_integer_value(json_object_get(staged, "stages")) + 1;
    char tag[17];
    lh_random_hex(tag, 8);
    path = lh_sprintf("%s/ws-stage-%s.parquet", lh_catalog_work_dir(w->deps.catalog), tag);
    lh_rows_opts o = {.dataset = dataset, .upsert = upsert, .deletes = deletes, .actor = p->name};
    if ((rc = lh_ingest_rows_stage(w->deps.catalog, w->deps.engine, &o, base,
                                   LH_WS_SEQ_BASE + stages, path, &counts, err)) != 0)
        goto out;
    /* the rows before any staging, for the keys first staged now: publish compares them */
    keys = json_array();
    if (upsert)
        json_array_extend(keys, (json_t *)upsert);
    if (deletes)
        json_array_extend(keys, (json_t *)deletes);
    if ((rc = lh_ws__lookup(w, m, keys, &current, err)) != 0 ||
        (rc = staged_values(w, staged, &values, err)) != 0)
        goto out;
    key = lh_layout_workspace_delta_key(id, dataset, tag);
    int64_t bytes = 0;
    if ((rc = lh_buckets_put_file(w->deps.buckets, lh_ws__str(m, "bucket"), key, path, false,
                                  LH_PUT_CREATE_ONLY, &bytes, NULL, err)) != 0)
        goto out;
    stored_delta = true;
    if (staged == NULL) {
        char now[LH_TIME_MAX];
        lh_ws__now(now);
        staged = json_pack("{s:s, s:s, s:s, s:[], s:{}}", "bucket", lh_ws__str(m, "bucket"),
                           "since", now, "by", p->name, "files", "ops");
        json_object_set_new(staged_all, dataset, staged);
    }
    json_object_set_new(staged, "stages", json_integer(stages));
    json_array_append_new(json_object_get(staged, "files"),
                          json_pack("{s:s, s:I, s:O}", "path", key, "bytes", (json_int_t)bytes,
                                    "rows", json_object_get(counts, "rows")));
    json_t *ops = json_object_get(staged, "ops");
    merge_ops(ops, values, m, upsert, "upsert", current, p->name);
    merge_ops(ops, values, m, deletes, "delete", current, p->name);
    const char *kt;
    json_t *op;
    json_object_foreach(ops, kt, op)
        json_object_del(op, "values"); /* an older version's, now in the values object */
    /* the values to publish, beside the delta file: the version keeps only keys and hashes */
    values_key = lh_layout_workspace_values_key(id, dataset, tag);
    values_text = json_dumps(values, JSON_COMPACT);
    lh_source src = {.data = values_text, .fd = -1, .len = (int64_t)strlen(values_text)};
    if ((rc = lh_buckets_put_object(w->deps.buckets, lh_ws__str(m, "bucket"), values_key, &src,
                                    LH_PUT_CREATE_ONLY, NULL, NULL, err)) != 0)
        goto out;
    stored_values = true;
    json_object_set_new(staged, "values", json_string(values_key));
    json_t *doc = NULL;
    rc = lh_ws__commit(
        &e, p->name, "staged",
        json_pack("{s:s, s:O, s:s}", "dataset", dataset, "counts", counts, "file", key), &doc, err);
    if (rc == 0)
        *out = json_pack("{s:s, s:s, s:O, s:I, s:O}", "workspace_id", id, "dataset", dataset,
                         "counts", counts, "staged_keys", (json_int_t)json_object_size(ops),
                         "version", json_object_get(doc, "version"));
    json_decref(doc);
out:
    if (rc != 0 && stored_delta) {
        /* nothing names them: remove them now rather than leave them to a sweep */
        const char *bucket = lh_ws__str(m, "bucket");
        lh_buckets_delete_object(w->deps.buckets, bucket, key, NULL, &(lh_err){0});
        if (stored_values)
            lh_buckets_delete_object(w->deps.buckets, bucket, values_key, NULL, &(lh_err){0});
    }
    lh_ws__abort(&e);
    if (path)
        unlink(path);
    free(path);
    free(key);
    free(values_key);
    free(values_text);
    json_decref(m);
    json_decref(base);
    json_decref(counts);
    json_decref(current);
    json_decref(keys);
    json_decref(values);
    return rc;
}

/* The staged datasets body["datasets"] names (all when absent), as a new array. */
static int
selected(const json_t *doc, const json_t *body, json_t **out, lh_err *err)
{
    json_t *staged = json_object_get(doc, "staged"), *names = json_array();
    const json_t *want = json_object_get(body, "datasets");
    if (want && !json_is_array(want)) {
        json_decref(names);
        return bad(err, "'datasets' must be an array of dataset names");
    }
    const char *ds;
    json_t *v;
    json_object_foreach(staged, ds, v)
    {
        bool in = want == NULL;
        size_t i;
        json_t *n;
        json_array_foreach(want, i, n) in |=
            json_is_string(n) && strcmp(json_string_value(n), ds) == 0;
        if (in)
            json_array_append_new(names, json_string(ds));
    }
    if (json_array_size(names) == 0) {
        json_decref(names);
        lh_err_set(err, LH_ENOTFOUND, 404, "nothing_staged", "no staged changes%s",
                   want ? " for those datasets" : "");
        lh_err_hint(err, "stage changes with POST /workspaces/{id}/datasets/{name}/rows");
        return LH_ENOTFOUND;
    }
    *out = names;
    return 0;
}

/* Keys of the staged ops of one dataset whose row changed since it was staged (values: the
 * staged values, staged_values). */
static int
conflicts_of(lh_workspaces *w, const json_t *m, const json_t *ops, const json_t *values,
             json_t **out, lh_err *err)
{
    json_t *keys = json_array(), *current = NULL, *conflicts = json_array();
    const char *kt;
    json_t *op;
    const json_t *pk = json_object_get(json_object_get(m, "metadata"), "primary_key");
    json_object_foreach((json_t *)ops, kt, op)
    {
        json_t *k = json_object();
        size_t i;
        json_t *c;
        json_array_foreach(pk, i, c)
            json_object_set(k, json_string_value(c),
                            json_object_get(json_object_get(values, kt), json_string_value(c)));
        json_array_append_new(keys, k);
    }
    int rc = lh_ws__lookup(w, m, keys, &current, err);
    if (rc == 0) {
        json_object_foreach((json_t *)ops, kt, op)
        {
            char hash[17];
            lh_ws__row_hash(json_object_get(current, kt), hash);
            if (strcmp(hash, lh_ws__str(op, "base_hash")) != 0) {
                json_t *k = json_object();
                size_t i;
                json_t *c;
                json_array_foreach(pk, i, c) json_object_set(
                    k, json_string_value(c),
                    json_object_get(json_object_get(values, kt), json_string_value(c)));
                json_array_append_new(conflicts, k);
            }
        }
    }
    json_decref(keys);
    json_decref(current);
    if (rc != 0) {
        json_decref(conflicts);
        return rc;
    }
    *out = conflicts;
    return 0;
}

/* Test hook (like rows.c's): LAKEHOUSE_FAULT_CRASH=ws_publish_started dies right after the
 * publish intent is stored. */
static void
maybe_crash(const char *point)
{
    const char *want = getenv("LAKEHOUSE_FAULT_CRASH");
    if (want && strcmp(want, point) == 0)
        _exit(137);
}

static int
publish_one(ws_edit *e, const lh_principal *p, const char *id, const char *ds, const json_t *values,
            bool overridden, json_t *results, lh_err *err)
{
    json_t *staged = json_object_get(json_object_get(e->doc, "staged"), ds);
    json_t *upsert = json_array(), *deletes = json_array(), *result = NULL;
    const char *kt;
    json_t *op;
    json_object_foreach(json_object_get(staged, "ops"), kt, op)
        json_array_append(strcmp(lh_ws__str(op, "op"), "delete") == 0 ? deletes : upsert,
                          json_object_get(values, kt));
    char now[LH_TIME_MAX];
    lh_ws__now(now);
    json_object_set_new(e->doc, "publishing",
                        json_pack("{s:s, s:s, s:s}", "dataset", ds, "since", now, "by", p->name));
    int rc = lh_ws__commit_step(e, p->name, "publish_started", json_pack("{s:s}", "dataset", ds),
                                NULL, err);
    if (rc != 0)
        goto out;
    maybe_crash("ws_publish_started");
    char source[80];
    snprintf(source, sizeof source, "workspace:%s", id);
    lh_rows_opts o = {.dataset = ds,
                      .upsert = upsert,
                      .deletes = deletes,
                      .source = source,
                      .workspace_id = id,
                      .actor = p->name,
                      .allow_bucket = lh_catalog_bucket_access,
                      .allow_ctx = (void *)p};
    lh_err ierr = {0};
    int irc = lh_ingest_rows(e->w->deps.catalog, e->w->deps.engine, e->w->deps.buckets, &o, &result,
                             &ierr);
    json_object_del(e->doc, "publishing");
    if (irc != 0) {
        /* nothing was committed: the changes stay staged */
        lh_ws__commit_step(e, p->name, "publish_failed",
                           json_pack("{s:s, s:s}", "dataset", ds, "error", ierr.code), NULL, err);
        *err = ierr;
        rc = irc;
        goto out;
    }
    json_object_del(json_object_get(e->doc, "staged"), ds);
    json_t *pub = json_pack("{s:s, s:O, s:s, s:s, s:O, s:b}", "dataset", ds, "version",
                            json_object_get(result, "version"), "at", now, "by", p->name, "counts",
                            json_object_get(result, "counts"), "conflicts_overridden", overridden);
    json_array_append(json_object_get(e->doc, "published"), pub);
    rc = lh_ws__commit_step(e, p->name, "published", json_incref(pub), NULL, err);
    json_array_append_new(results, pub);
out:
    json_decref(upsert);
    json_decref(deletes);
    json_decref(result);
    return rc;
}

int
lh_workspace_publish(lh_workspaces *w, const lh_principal *p, const char *id, const json_t *body,
                     json_t **out, lh_err *err)
{
    ws_edit e = {0};
    json_t *names = NULL, *results = json_array(), *all_conflicts = json_array(),
           *values = json_object();
    const char *on_conflict = json_string_value(json_object_get(body, "on_conflict"));
    int rc = 0;
    const char *field;
    json_t *v;
    json_object_foreach((json_t *)body, field, v)
    {
        if (strcmp(field, "datasets") != 0 && strcmp(field, "on_conflict") != 0) {
            rc = bad(err, "the body is {\"datasets\"?: [..], \"on_conflict\"?: \"fail\"|"
                          "\"workspace_wins\"}");
            goto out;
        }
    }
    if (json_object_get(body, "on_conflict") &&
        (!on_conflict ||
         (strcmp(on_conflict, "fail") != 0 && strcmp(on_conflict, "workspace_wins") != 0))) {
        rc = bad(err, "'on_conflict' must be \"fail\" or \"workspace_wins\"");
        goto out;
    }
    bool wins = on_conflict && strcmp(on_conflict, "workspace_wins") == 0;
    if ((rc = lh_ws__begin(w, p, id, WS_WRITE, false, &e, err)) != 0 ||
        (rc = lh_auth_allow(p, LH_ALLOW_WRITE, err)) != 0 ||
        (rc = selected(e.doc, body, &names, err)) != 0)
        goto out;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        const char *ds = json_string_value(n);
        const json_t *staged = json_object_get(json_object_get(e.doc, "staged"), ds);
        json_t *m = NULL, *conflicts = NULL, *vals = NULL;
        if ((rc = lh_ws__manifest(w, p, ds, &m, err)) != 0)
            goto out;
        if ((rc = staged_values(w, staged, &vals, err)) == 0) {
            json_object_set_new(values, ds, vals);
            rc = conflicts_of(w, m, json_object_get(staged, "ops"), vals, &conflicts, err);
        }
        json_decref(m);
        if (rc != 0)
            goto out;
        if (json_array_size(conflicts) > 0)
            json_array_append_new(all_conflicts,
                                  json_pack("{s:s, s:o}", "dataset", ds, "keys", conflicts));
        else
            json_decref(conflicts);
    }
    if (json_array_size(all_conflicts) > 0 && !wins) {
        char *text = json_dumps(all_conflicts, JSON_COMPACT);
        rc = lh_err_set(err, LH_EEXIST, 409, "publish_conflict",
                        "keys changed in the dataset since they were staged");
        lh_err_detail(err, "%.400s", text);
        lh_err_hint(err, "look at them and stage again, or publish with {\"on_conflict\": "
                         "\"workspace_wins\"}");
        free(text);
        goto out;
    }
    json_array_foreach(names, i, n)
    {
        const char *ds = json_string_value(n);
        if ((rc = publish_one(&e, p, id, ds, json_object_get(values, ds),
                              json_array_size(all_conflicts) > 0, results, err)) != 0)
            goto out;
    }
    *out = json_pack("{s:s, s:O, s:O}", "workspace_id", id, "published", results, "conflicts",
                     all_conflicts);
out:
    lh_ws__abort(&e);
    json_decref(names);
    json_decref(results);
    json_decref(all_conflicts);
    json_decref(values);
    return rc;
}

int
lh_workspace_discard(lh_workspaces *w, const lh_principal *p, const char *id, const json_t *body,
                     json_t **out, lh_err *err)
{
    ws_edit e = {0};
    json_t *names = NULL;
    int rc = 0;
    const char *field;
    json_t *v;
    json_object_foreach((json_t *)body, field, v)
    {
        if (strcmp(field, "datasets") != 0)
            return bad(err, "the body is {\"datasets\"?: [..]}");
    }
    if ((rc = lh_ws__begin(w, p, id, WS_WRITE, false, &e, err)) != 0 ||
        (rc = selected(e.doc, body, &names, err)) != 0)
        goto out;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
        json_object_del(json_object_get(e.doc, "staged"), json_string_value(n));
    rc = lh_ws__commit(&e, p->name, "discarded", json_pack("{s:O}", "datasets", names), NULL, err);
    if (rc == 0)
        *out = json_pack("{s:s, s:O}", "workspace_id", id, "discarded", names);
out:
    lh_ws__abort(&e);
    json_decref(names);
    return rc;
}

/* ---- the prelude's delta views ----------------------------------------------------------------
 */

int
lh_ws__delta_views(lh_workspaces *w, const lh_principal *p, const json_t *doc,
                   int (*add)(void *ctx, char *sql, char **paths, size_t n), void *ctx, lh_err *err)
{
    const char *ds;
    json_t *staged;
    json_object_foreach(json_object_get(doc, "staged"), ds, staged)
    {
        json_t *m = NULL;
        int rc = lh_ws__manifest(w, p, ds, &m, err);
        if (rc == LH_ENOTFOUND)
            continue; /* one the caller does not see (or gone): no view, and no name said */
        if (rc != 0)
            return rc;
        json_t *base = with_staged(m, staged);
        json_decref(m);
        char **paths = NULL;
        size_t n = 0;
        if ((rc = lh_catalog_pin_rows(w->deps.catalog, base, &paths, &n, err)) != 0) {
            json_decref(base);
            return rc;
        }
        char *rows = lh_catalog_rows_sql(base, paths), *masked = NULL;
        /* the caller's masks, as its plain SQL has them (src/catalog/visible.c) */
        if (lh_catalog_masked_select_of(base, p->clearance, rows, &masked) == 1) {
            free(rows);
            rows = masked;
        }
        json_decref(base);
        lh_buf create;
        lh_buf_init(&create);
        lh_buf_puts(&create, "CREATE TEMP VIEW ");
        lh_sql_ident(&create, ds);
        lh_buf_printf(&create, " AS %s", rows);
        free(rows);
        add(ctx, lh_buf_steal(&create), paths, n);
    }
    return 0;
}
