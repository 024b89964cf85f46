/*
 * ws_rows.c — what a workspace holds of datasets' rows: shortlists of records (resolved
 * to their current rows, flagged when changed or deleted since they were added) and the
 * delta layer (staged row changes, merged on read for queries made with the workspace,
 * published as one row change or discarded).
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

static bool
may_use(void *principal, const char *bucket)
{
    lh_err ignored;
    return lh_auth_bucket(principal, bucket, &ignored) == 0;
}

int
lh_ws__manifest(lh_workspaces *w, const lh_principal *p, const char *dataset, json_t **m,
                lh_err *err)
{
    json_t *got = NULL;
    int rc = lh_catalog_get(w->deps.catalog, dataset, &got, err);
    if (rc == 0 && (strcmp(lh_ws__str(got, "state"), "live") != 0 ||
                    !may_use((void *)p, lh_ws__str(got, "bucket")))) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found", "no dataset '%.64s'", dataset);
    }
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

static int
check_list_name(const char *list, lh_err *err)
{
    if (!lh_name_valid(list)) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_name", "'%.64s' is not a valid shortlist name",
                   list);
        lh_err_hint(err, "names match [a-z][a-z0-9_]{0,62}");
        return LH_EINVAL;
    }
    return 0;
}

/* ---- shortlists -------------------------------------------------------------------------- */

static void
renumber(json_t *records)
{
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
        json_object_set_new(r, "rank", json_integer((json_int_t)i + 1));
}

static ssize_t
find_record(const json_t *records, const char *dataset, const char *key_text)
{
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        if (strcmp(lh_ws__str(r, "dataset"), dataset) == 0 &&
            strcmp(lh_ws__str(r, "key_text"), key_text) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* The records of body[field]: each {"dataset","key"} checked; *keys_out one entry per
 * record: {"dataset","key","key_text","manifest"} (new). */
static int
parse_records(lh_workspaces *w, const lh_principal *p, const json_t *list, json_t **out,
              lh_err *err)
{
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 1000)
        return bad(err, "'records' must be an array of 1 to 1000 {\"dataset\", \"key\"}");
    json_t *parsed = json_array(), *manifests = json_object();
    size_t i;
    json_t *r;
    int rc = 0;
    json_array_foreach(list, i, r)
    {
        char where[32];
        snprintf(where, sizeof where, "records[%zu]", i);
        const char *ds = json_string_value(json_object_get(r, "dataset"));
        json_t *note = json_object_get(r, "note"), *rank = json_object_get(r, "rank");
        if (!json_is_object(r) || ds == NULL || (note && !json_is_string(note)) ||
            (rank && !json_is_integer(rank))) {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                            "%s must be {\"dataset\", \"key\", \"note\"?, \"rank\"?}", where);
            break;
        }
        json_t *m = json_object_get(manifests, ds);
        if (m == NULL) {
            if ((rc = lh_ws__manifest(w, p, ds, &m, err)) != 0)
                break;
            json_object_set_new(manifests, ds, m);
        }
        json_t *key = NULL;
        char *kt = NULL;
        if ((rc = lh_ws__key(m, json_object_get(r, "key"), where, &key, &kt, err)) != 0)
            break;
        json_array_append_new(parsed, json_pack("{s:s, s:o, s:s, s:O, s:O*, s:O*}", "dataset", ds,
                                                "key", key, "key_text", kt, "manifest", m, "note",
                                                note, "rank", rank));
        free(kt);
    }
    json_decref(manifests);
    if (rc != 0) {
        json_decref(parsed);
        return rc;
    }
    *out = parsed;
    return 0;
}

/* Current rows of the parsed records: key_text -> row, per dataset {ds: {...}} (new). */
static int
lookup_parsed(lh_workspaces *w, const json_t *parsed, json_t **out, lh_err *err)
{
    json_t *keys_by_ds = json_object(), *m_by_ds = json_object(), *result = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(parsed, i, r)
    {
        const char *ds = lh_ws__str(r, "dataset");
        json_t *keys = json_object_get(keys_by_ds, ds);
        if (keys == NULL) {
            json_object_set_new(keys_by_ds, ds, keys = json_array());
            json_object_set(m_by_ds, ds, json_object_get(r, "manifest"));
        }
        json_array_append(keys, json_object_get(r, "key"));
    }
    const char *ds;
    json_t *keys;
    int rc = 0;
    json_object_foreach(keys_by_ds, ds, keys)
    {
        json_t *rows = NULL;
        if ((rc = lh_ws__lookup(w, json_object_get(m_by_ds, ds), keys, &rows, err)) != 0)
            break;
        json_object_set_new(result, ds, rows);
    }
    json_decref(keys_by_ds);
    json_decref(m_by_ds);
    if (rc != 0) {
        json_decref(result);
        return rc;
    }
    *out = result;
    return 0;
}

static json_t *
shortlist_of(json_t *doc, const char *list, const char *actor, bool create)
{
    json_t *lists = json_object_get(doc, "shortlists");
    json_t *sl = json_object_get(lists, list);
    if (sl == NULL && create) {
        char now[LH_TIME_MAX];
        lh_ws__now(now);
        sl = json_pack("{s:s, s:s, s:s, s:[]}", "name", list, "created_by", actor, "created_at",
                       now, "records");
        json_object_set_new(lists, list, sl);
    }
    return sl;
}

static int
shortlist_missing(const char *list, lh_err *err)
{
    lh_err_set(err, LH_ENOTFOUND, 404, "shortlist_not_found", "no shortlist '%.64s'", list);
    lh_err_hint(err, "add records to make one: POST /workspaces/{id}/shortlists/%.64s/records",
                list);
    return LH_ENOTFOUND;
}

int
lh_workspace_shortlist_add(lh_workspaces *w, const lh_principal *p, const char *id,
                           const char *list, const json_t *body, json_t **out, lh_err *err)
{
    json_t *parsed = NULL, *current = NULL;
    ws_edit e = {0};
    int rc = check_list_name(list, err);
    if (rc == 0 && json_object_size(body) != 1)
        rc = bad(err, "the body is {\"records\": [{\"dataset\", \"key\", \"note\"?, \"rank\"?}]}");
    if (rc == 0)
        rc = lh_ws__begin(w, p, id, WS_WRITE, false, &e, err);
    if (rc == 0)
        rc = parse_records(w, p, json_object_get(body, "records"), &parsed, err);
    if (rc == 0)
        rc = lookup_parsed(w, parsed, &current, err);
    if (rc != 0)
        goto out;
    json_t *records = json_object_get(shortlist_of(e.doc, list, p->name, true), "records");
    char now[LH_TIME_MAX];
    lh_ws__now(now);
    size_t i;
    json_t *r;
    json_array_foreach(parsed, i, r)
    {
        const char *ds = lh_ws__str(r, "dataset"), *kt = lh_ws__str(r, "key_text");
        json_t *row = json_object_get(json_object_get(current, ds), kt);
        if (row == NULL) {
            char *k = json_dumps(json_object_get(r, "key"), JSON_COMPACT);
            rc = lh_err_set(err, LH_ENOTFOUND, 404, "record_not_found",
                            "records[%zu]: no row with key %s in '%s'", i, k, ds);
            free(k);
            goto out;
        }
        char hash[17];
        lh_ws__row_hash(row, hash);
        ssize_t at = find_record(records, ds, kt);
        if (at >= 0)
            json_array_remove(records, (size_t)at);
        json_t *rec =
            json_pack("{s:s, s:O, s:s, s:s, s:s, s:s, s:O, s:s}", "dataset", ds, "key",
                      json_object_get(r, "key"), "key_text", kt, "note", lh_ws__str(r, "note"),
                      "added_by", p->name, "added_at", now, "version",
                      json_object_get(json_object_get(r, "manifest"), "version"), "row_hash", hash);
        json_int_t rank = json_integer_value(json_object_get(r, "rank"));
        size_t pos = rank >= 1 && (size_t)rank <= json_array_size(records)
                         ? (size_t)rank - 1
                         : json_array_size(records);
        json_array_insert_new(records, pos, rec);
    }
    renumber(records);
    json_t *doc = NULL;
    rc = lh_ws__commit(
        &e, p->name, "shortlist_add",
        json_pack("{s:s, s:I}", "shortlist", list, "records", (json_int_t)json_array_size(parsed)),
        &doc, err);
    if (rc == 0)
        *out = json_deep_copy(json_object_get(json_object_get(doc, "shortlists"), list));
    json_decref(doc);
out:
    lh_ws__abort(&e);
    json_decref(parsed);
    json_decref(current);
    return rc;
}

/* Records named by body[field] as (dataset, key_text) in `records`; their indexes. */
static int
named_records(lh_workspaces *w, const lh_principal *p, const json_t *list, const json_t *records,
              size_t **idx, size_t *n, lh_err *err)
{
    json_t *parsed = NULL;
    int rc = parse_records(w, p, list, &parsed, err);
    if (rc != 0)
        return rc;
    *n = json_array_size(parsed);
    *idx = lh_calloc(*n ? *n : 1, sizeof **idx);
    for (size_t i = 0; i < *n && rc == 0; i++) {
        json_t *r = json_array_get(parsed, i);
        ssize_t at = find_record(records, lh_ws__str(r, "dataset"), lh_ws__str(r, "key_text"));
        if (at < 0)
            rc = lh_err_set(err, LH_ENOTFOUND, 404, "record_not_found",
                            "records[%zu] is not on the shortlist", i);
        else
            (*idx)[i] = (size_t)at;
    }
    json_decref(parsed);
    if (rc != 0) {
        free(*idx);
        *idx = NULL;
    }
    return rc;
}

static int
edit_records(lh_workspaces *w, const lh_principal *p, const char *id, const char *list,
             const json_t *body, bool reorder, json_t **out, lh_err *err)
{
    const char *field = reorder ? "order" : "records";
    ws_edit e = {0};
    size_t *idx = NULL, n = 0;
    int rc = check_list_name(list, err);
    if (rc == 0 && (json_object_size(body) != 1 || !json_object_get(body, field)))
        rc = bad(err, reorder ? "the body is {\"order\": [{\"dataset\", \"key\"}, ...]}"
                              : "the body is {\"records\": [{\"dataset\", \"key\"}, ...]}");
    if (rc == 0)
        rc = lh_ws__begin(w, p, id, WS_WRITE, false, &e, err);
    json_t *sl = rc == 0 ? shortlist_of(e.doc, list, p->name, false) : NULL;
    if (rc == 0 && sl == NULL)
        rc = shortlist_missing(list, err);
    json_t *records = json_object_get(sl, "records");
    if (rc == 0)
        rc = named_records(w, p, json_object_get(body, field), records, &idx, &n, err);
    if (rc != 0)
        goto out;
    json_t *keep = json_array(), *front = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(front, json_array_get(records, idx[i]));
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        bool named = false;
        for (size_t k = 0; k < n; k++)
            named |= idx[k] == i;
        if (!named)
            json_array_append(keep, r);
    }
    if (reorder) {
        json_array_extend(front, keep);
        json_object_set_new(sl, "records", front);
        json_decref(keep);
    } else {
        json_object_set_new(sl, "records", keep);
        json_decref(front);
    }
    renumber(json_object_get(sl, "records"));
    json_t *doc = NULL;
    rc = lh_ws__commit(&e, p->name, reorder ? "shortlist_reorder" : "shortlist_remove",
                       json_pack("{s:s, s:I}", "shortlist", list, "records", (json_int_t)n), &doc,
                       err);
    if (rc == 0)
        *out = json_deep_copy(json_object_get(json_object_get(doc, "shortlists"), list));
    json_decref(doc);
out:
    lh_ws__abort(&e);
    free(idx);
    return rc;
}

int
lh_workspace_shortlist_remove(lh_workspaces *w, const lh_principal *p, const char *id,
                              const char *list, const json_t *body, json_t **out, lh_err *err)
{
    return edit_records(w, p, id, list, body, false, out, err);
}

int
lh_workspace_shortlist_reorder(lh_workspaces *w, const lh_principal *p, const char *id,
                               const char *list, const json_t *body, json_t **out, lh_err *err)
{
    return edit_records(w, p, id, list, body, true, out, err);
}

/* row with only the columns named (NULL: all); 400 for a column the dataset lacks. */
static json_t *
project(const json_t *row, const json_t *cols)
{
    if (cols == NULL)
        return json_deep_copy(row);
    json_t *out = json_object();
    size_t i;
    json_t *c;
    json_array_foreach(cols, i, c)
    {
        json_t *v = json_object_get(row, json_string_value(c));
        json_object_set(out, json_string_value(c), v ? v : json_null());
    }
    return out;
}

int
lh_workspace_shortlist_get(lh_workspaces *w, const lh_principal *p, const char *id,
                           const char *list, const char *columns, json_t **out, lh_err *err)
{
    json_t *doc = NULL, *cols = NULL, *result = NULL, *by_ds = json_object();
    int rc = lh_ws__read(w, p, id, WS_READ, &doc, err);
    const json_t *sl = rc == 0 ? json_object_get(json_object_get(doc, "shortlists"), list) : NULL;
    if (rc == 0 && sl == NULL)
        rc = shortlist_missing(list, err);
    if (rc != 0)
        goto out;
    if (columns) {
        cols = json_array();
        char *copy = lh_strdup(columns), *save = NULL;
        for (char *c = strtok_r(copy, ",", &save); c; c = strtok_r(NULL, ",", &save))
            json_array_append_new(cols, json_string(c));
        free(copy);
    }
    /* the current rows, dataset by dataset */
    const json_t *records = json_object_get(sl, "records");
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *ds = lh_ws__str(r, "dataset");
        json_t *d = json_object_get(by_ds, ds);
        if (d == NULL) {
            json_t *m = NULL;
            lh_err ignored;
            d = json_object();
            if (lh_ws__manifest(w, p, ds, &m, &ignored) == 0)
                json_object_set_new(d, "manifest", m);
            json_object_set_new(d, "keys", json_array());
            json_object_set_new(by_ds, ds, d);
        }
        json_array_append(json_object_get(d, "keys"), json_object_get(r, "key"));
    }
    const char *ds;
    json_t *d;
    json_object_foreach(by_ds, ds, d)
    {
        json_t *m = json_object_get(d, "manifest"), *rows = NULL;
        if (m == NULL)
            continue;
        size_t k;
        json_t *c;
        json_array_foreach(cols, k, c)
        {
            bool known = false;
            size_t j;
            json_t *col;
            json_array_foreach(json_object_get(m, "columns"), j, col) known |=
                strcmp(lh_ws__str(col, "name"), json_string_value(c)) == 0;
            if (!known) {
                rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                                "'columns': dataset '%s' has no column '%.64s'", ds,
                                json_string_value(c));
                goto out;
            }
        }
        if ((rc = lh_ws__lookup(w, m, json_object_get(d, "keys"), &rows, err)) != 0)
            goto out;
        json_object_set_new(d, "rows", rows);
    }
    result = json_deep_copy(sl);
    json_array_foreach(json_object_get(result, "records"), i, r)
    {
        json_t *dd = json_object_get(by_ds, lh_ws__str(r, "dataset"));
        json_t *row = json_object_get(json_object_get(dd, "rows"), lh_ws__str(r, "key_text"));
        char hash[17];
        lh_ws__row_hash(row, hash);
        const char *status = json_object_get(dd, "manifest") == NULL        ? "not_visible"
                             : row == NULL                                  ? "deleted"
                             : strcmp(hash, lh_ws__str(r, "row_hash")) != 0 ? "changed"
                                                                            : "unchanged";
        json_object_set_new(r, "status", json_string(status));
        json_object_set_new(r, "row", row ? project(row, cols) : json_null());
        json_object_del(r, "key_text");
    }
    *out = result;
out:
    json_decref(by_ds);
    json_decref(cols);
    json_decref(doc);
    return rc;
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

/* Merge one request's changes into the staged ops (key_text -> {"op","values","base_hash"}). */
static void
merge_ops(json_t *ops, const json_t *m, const json_t *list, const char *op, const json_t *current,
          const char *actor)
{
    const json_t *pk = json_object_get(json_object_get(m, "metadata"), "primary_key");
    char now[LH_TIME_MAX];
    lh_ws__now(now);
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row)
    {
        char *kt = key_text_of(pk, row);
        json_t *prev = json_object_get(ops, kt);
        if (prev == NULL) {
            char hash[17];
            lh_ws__row_hash(json_object_get(current, kt), hash);
            prev = json_pack("{s:s, s:{}, s:s, s:O, s:s, s:s}", "op", op, "values", "base_hash",
                             hash, "base_version", json_object_get(m, "version"), "staged_by",
                             actor, "staged_at", now);
            json_object_set_new(ops, kt, prev);
        }
        if (strcmp(op, "delete") == 0 || strcmp(lh_ws__str(prev, "op"), "delete") == 0)
            json_object_set_new(prev, "values", json_object());
        json_object_set_new(prev, "op", json_string(op));
        json_object_update(json_object_get(prev, "values"), row);
        free(kt);
    }
}

int
lh_workspace_stage(lh_workspaces *w, const lh_principal *p, const char *id, const char *dataset,
                   const json_t *body, json_t **out, lh_err *err)
{
    ws_edit e = {0};
    json_t *m = NULL, *base = NULL, *counts = NULL, *current = NULL, *keys = NULL;
    char *path = NULL, *key = NULL;
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
    if ((rc = lh_ws__lookup(w, m, keys, &current, err)) != 0)
        goto out;
    key = lh_layout_workspace_delta_key(id, dataset, tag);
    int64_t bytes = 0;
    if ((rc = lh_buckets_put_file(w->deps.buckets, lh_ws__str(m, "bucket"), key, path, false,
                                  LH_PUT_CREATE_ONLY, &bytes, NULL, err)) != 0)
        goto out;
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
    merge_ops(ops, m, upsert, "upsert", current, p->name);
    merge_ops(ops, m, deletes, "delete", current, p->name);
    json_t *doc = NULL;
    rc = lh_ws__commit(
        &e, p->name, "staged",
        json_pack("{s:s, s:O, s:s}", "dataset", dataset, "counts", counts, "file", key), &doc, err);
    if (rc == 0)
        *out = json_pack("{s:s, s:s, s:O, s:I, s:O}", "workspace_id", id, "dataset", dataset,
                         "counts", counts, "staged_keys", (json_int_t)json_object_size(ops),
                         "version", json_object_get(doc, "version"));
    else /* nothing names it: remove it now rather than leave it to a sweep */
        lh_buckets_delete_object(w->deps.buckets, lh_ws__str(m, "bucket"), key, NULL, &(lh_err){0});
    json_decref(doc);
out:
    lh_ws__abort(&e);
    if (path)
        unlink(path);
    free(path);
    free(key);
    json_decref(m);
    json_decref(base);
    json_decref(counts);
    json_decref(current);
    json_decref(keys);
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

/* Keys of the staged ops of one dataset whose row changed since it was staged. */
static int
conflicts_of(lh_workspaces *w, const json_t *m, const json_t *ops, json_t **out, lh_err *err)
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
                            json_object_get(json_object_get(op, "values"), json_string_value(c)));
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
                    json_object_get(json_object_get(op, "values"), json_string_value(c)));
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
publish_one(ws_edit *e, const lh_principal *p, const char *id, const char *ds, bool overridden,
            json_t *results, lh_err *err)
{
    json_t *staged = json_object_get(json_object_get(e->doc, "staged"), ds);
    json_t *upsert = json_array(), *deletes = json_array(), *result = NULL;
    const char *kt;
    json_t *op;
    json_object_foreach(json_object_get(staged, "ops"), kt, op)
        json_array_append(strcmp(lh_ws__str(op, "op"), "delete") == 0 ? deletes : upsert,
                          json_object_get(op, "values"));
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
                      .allow_bucket = may_use,
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
    json_t *names = NULL, *results = json_array(), *all_conflicts = json_array();
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
        json_t *m = NULL, *conflicts = NULL;
        if ((rc = lh_ws__manifest(w, p, ds, &m, err)) != 0)
            goto out;
        rc = conflicts_of(
            w, m, json_object_get(json_object_get(json_object_get(e.doc, "staged"), ds), "ops"),
            &conflicts, err);
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
        if ((rc = publish_one(&e, p, id, json_string_value(n), json_array_size(all_conflicts) > 0,
                              results, err)) != 0)
            goto out;
    }
    *out = json_pack("{s:s, s:O, s:O}", "workspace_id", id, "published", results, "conflicts",
                     all_conflicts);
out:
    lh_ws__abort(&e);
    json_decref(names);
    json_decref(results);
    json_decref(all_conflicts);
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
        char *rows = lh_catalog_rows_sql(base, paths);
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
