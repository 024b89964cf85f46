/*
 * ws_shortlist.c — shortlists: named, ordered lists of records (dataset + key) with rank,
 * note, added_by, added_at; add, remove, reorder, and reading one with each record
 * resolved to its current row and flagged when changed or deleted since it was added.
 *
 * A record is a dataset and its primary key; its identity is the key's values as text
 * ("[\"42\"]"), so 42 and "42" name the same record. A row's hash is the SHA-256 of its
 * JSON (sorted keys), as the internal engine returns it; comparing the hash kept at add
 * time with today's tells whether the record changed. Keys, lookups and hashes are in
 * ws_rows.c.
 */
#include "workspace/ws_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        /* what the reader may see of them: columns above its clearance masked */
        json_t *plan = lh_catalog_mask_plan(m, p->clearance);
        if (plan)
            json_object_set_new(d, "mask", plan);
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
        json_t *shown = row ? project(row, cols) : json_null();
        lh_catalog_mask_row(w->deps.catalog, json_object_get(dd, "mask"), shown);
        json_object_set_new(r, "row", shown);
        json_object_del(r, "key_text");
    }
    *out = result;
out:
    json_decref(by_ds);
    json_decref(cols);
    json_decref(doc);
    return rc;
}
