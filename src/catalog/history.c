/*
 * history.c — time travel: a dataset as it was at a version or at a time. Manifests are
 * immutable and never deleted, so any version can be read back and its files queried.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <string.h>

/* A client's time as our created_at text (UTC, milliseconds, 'Z'), or 400. */
static int
normalise_time(lh_catalog *c, const char *text, char *out, size_t size, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT strftime(CAST(TRY_CAST(");
    lh_sql_quote(&sql, text);
    lh_buf_puts(&sql, " AS TIMESTAMPTZ) AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%gZ') AS t");
    json_t *rows = NULL;
    int rc = lh_engine_rows(c->engine, sql.data, &rows, err);
    lh_buf_free(&sql);
    if (rc != 0)
        return rc;
    const char *t = json_string_value(json_object_get(json_array_get(rows, 0), "t"));
    if (!t) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'%s' is not a time: use ISO 8601, e.g. 2026-03-01T09:00:00Z", text);
    } else {
        snprintf(out, size, "%s", t);
    }
    json_decref(rows);
    return rc;
}

/* The newest manifest of dataset `name` in `bucket` created at or before the time `when`
 * (our created_at text), looking back from version `latest` (new in *out). */
static int
manifest_at_time(lh_catalog *c, const char *bucket, const char *name, int64_t latest,
                 const char *when, json_t **out, lh_err *err)
{
    json_t *m = NULL;
    int rc = 0;
    /* newest first: questions are mostly about the recent past */
    for (int64_t v = latest; v >= 1 && m == NULL; v--) {
        json_t *candidate = NULL;
        if ((rc = lh_catalog__load_manifest(c, bucket, name, v, &candidate, err)) != 0) {
            if (rc == LH_ENOTFOUND) /* expired: nothing older is left */
                lh_err_set(err, LH_ENOTFOUND, 404, "version_not_found",
                           "the versions of dataset '%s' from that time have expired", name);
            goto out;
        }
        if (strcmp(str_of(candidate, "created_at"), when) <= 0)
            m = candidate;
        else
            json_decref(candidate);
    }
    if (m == NULL) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found",
                        "dataset '%s' did not exist yet at %s", name, when);
        goto out;
    }
    *out = m;
out:
    return rc;
}

int
lh_catalog_manifest_at(lh_catalog *c, const char *name, const lh_as_of *at, json_t **out,
                       lh_err *err)
{
    json_t *cur = NULL, *m = NULL;
    char bucket[80], when[40];
    int rc = lh_catalog_get(c, name, &cur, err);
    if (rc != 0)
        goto out;
    int64_t latest = json_integer_value(json_object_get(cur, "version"));
    snprintf(bucket, sizeof bucket, "%s", str_of(cur, "bucket"));
    if (at->timestamp) {
        if ((rc = normalise_time(c, at->timestamp, when, sizeof when, err)) != 0 ||
            (rc = manifest_at_time(c, bucket, name, latest, when, &m, err)) != 0)
            goto out;
    } else if (at->version < 1 || at->version > latest) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "version_not_found",
                        "dataset '%s' has versions 1 to %lld, not %lld", name, (long long)latest,
                        (long long)at->version);
        goto out;
    } else if ((rc = lh_catalog__load_manifest(c, bucket, name, at->version, &m, err)) != 0) {
        if (rc == LH_ENOTFOUND)
            lh_err_set(err, LH_ENOTFOUND, 404, "version_not_found",
                       "version %lld of dataset '%s' has expired", (long long)at->version, name);
        goto out;
    }
    if (strcmp(str_of(m, "state"), "live") != 0) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found",
                        "dataset '%s' was deleted at version %lld", name,
                        (long long)json_integer_value(json_object_get(m, "version")));
        goto out;
    }
    *out = m;
    m = NULL;
out:
    json_decref(m);
    json_decref(cur);
    return rc;
}

/* ---- one record's history, and the change feed ------------------------------------------ */

/* The key's columns and types of manifest m, or 400 no_primary_key. */
static int
key_columns(const json_t *m, json_t **out, lh_err *err)
{
    const json_t *key = json_object_get(json_object_get(m, "metadata"), "primary_key");
    if (json_array_size(key) == 0)
        return lh_err_set(err, LH_EINVAL, 400, "no_primary_key", "dataset '%s' has no primary key",
                          str_of(m, "name"));
    json_t *cols = json_array();
    size_t i, j;
    json_t *k, *c;
    json_array_foreach(key, i, k)
    {
        json_array_foreach(json_object_get(m, "columns"), j,
                           c) if (strcmp(str_of(c, "name"), json_string_value(k)) == 0)
            json_array_append(cols, c);
    }
    *out = cols;
    return 0;
}

/* SQL matching one key given as text: the value of a one-column key, or a JSON object
 * naming every key column. Fills `where` (a predicate) and `json` (the key as the
 * journal writes it: {"id":42}); 400 when the text is not such a key. */
static int
key_predicate(lh_catalog *c, const json_t *kcols, const char *text, lh_buf *where, char **json,
              lh_err *err)
{
    json_t *obj = NULL, *rows = NULL;
    char *value = NULL;
    lh_buf check, keyjson;
    lh_buf_init(&check);
    lh_buf_init(&keyjson);
    int rc = 0;
    if (text[0] == '{') {
        obj = json_loads(text, JSON_DECODE_ANY, NULL);
        if (!json_is_object(obj) || json_object_size(obj) != json_array_size(kcols)) {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_key",
                            "a composite key is a JSON object naming each key column once");
            goto out;
        }
    } else if (json_array_size(kcols) != 1) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_key",
                        "the primary key has %zu columns: give them as a JSON object",
                        json_array_size(kcols));
        goto out;
    }
    size_t i;
    json_t *col;
    json_array_foreach(kcols, i, col)
    {
        const char *name = str_of(col, "name");
        const json_t *v = obj ? json_object_get(obj, name) : NULL;
        if (obj && (!v || json_is_null(v) || json_is_object(v) || json_is_array(v))) {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_key", "the key needs a value for '%s'",
                            name);
            goto out;
        }
        value = obj ? (json_is_string(v) ? lh_strdup(json_string_value(v))
                                         : json_dumps(v, JSON_ENCODE_ANY))
                    : lh_strdup(text);
        lh_buf_puts(where, i ? " AND " : "");
        lh_sql_ident(where, name);
        lh_buf_puts(where, " = CAST(");
        lh_sql_quote(where, value);
        lh_buf_printf(where, " AS %s)", str_of(col, "type"));
        lh_buf_puts(&keyjson, i ? ", " : "");
        lh_sql_quote(&keyjson, name);
        lh_buf_puts(&keyjson, ": TRY_CAST(");
        lh_sql_quote(&keyjson, value);
        lh_buf_printf(&keyjson, " AS %s)", str_of(col, "type"));
        free(value);
        value = NULL;
    }
    lh_buf_printf(&check,
                  "SELECT CAST(to_json({%s}) AS VARCHAR) AS k, "
                  "list_contains(json_keys(to_json({%s}))::VARCHAR[], NULL) AS bad",
                  keyjson.data, keyjson.data);
    if ((rc = lh_engine_rows(c->engine, check.data, &rows, err)) != 0)
        goto out;
    const char *k = str_of(json_array_get(rows, 0), "k");
    if (strstr(k, ":null")) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_key",
                        "'%s' is not a key of this dataset (wrong type)", text);
        goto out;
    }
    *json = lh_strdup(k);
out:
    free(value);
    json_decref(rows);
    json_decref(obj);
    lh_buf_free(&check);
    lh_buf_free(&keyjson);
    return rc;
}

/* The row with that key in manifest m (new JSON object), or JSON null. */
static int
row_at(lh_catalog *c, const json_t *m, const char *where, json_t **out, lh_err *err)
{
    char **paths = NULL, *rows_sql = NULL, *sql = NULL;
    size_t n = 0;
    json_t *rows = NULL;
    int rc = 0;
    if (strcmp(str_of(m, "state"), "live") != 0) {
        *out = json_null();
        goto out;
    }
    if ((rc = lh_catalog_pin_rows(c, m, &paths, &n, err)) != 0)
        goto out;
    rows_sql = lh_catalog_rows_sql(m, paths);
    sql = lh_sprintf("SELECT * FROM (%s) AS r WHERE %s LIMIT 1", rows_sql, where);
    if ((rc = lh_engine_rows(c->engine, sql, &rows, err)) != 0)
        goto out;
    *out = json_array_size(rows) ? json_incref(json_array_get(rows, 0)) : json_null();
out:
    json_decref(rows);
    free(sql);
    free(rows_sql);
    lh_catalog_unpin_rows(c, paths, n);
    return rc;
}

/* Append event e to versions: a new entry when e is of another version than *entry (with
 * the row as it was after that version, or null when the version expired), then the
 * field's change. *entry is borrowed from versions. */
static int
add_event(lh_catalog *c, const char *bucket, const char *name, const char *where, const json_t *e,
          json_t *versions, json_t **entry, lh_err *err)
{
    json_t *m = NULL, *row = NULL;
    int rc = 0;
    int64_t v = json_integer_value(json_object_get(e, "version"));
    if (!*entry || json_integer_value(json_object_get(*entry, "version")) != v) {
        rc = lh_catalog__load_manifest(c, bucket, name, v, &m, err);
        if (rc == LH_ENOTFOUND) { /* that version expired: its events remain */
            rc = 0;
            row = json_null();
        } else if (rc != 0 || (rc = row_at(c, m, where, &row, err)) != 0) {
            goto out;
        }
        *entry = json_pack("{s:I, s:O, s:O, s:O, s:O, s:O, s:[], s:o}", "version", (json_int_t)v,
                           "at", json_object_get(e, "ts"), "actor", json_object_get(e, "actor"),
                           "source", json_object_get(e, "source"), "workspace_id",
                           json_object_get(e, "workspace_id"), "op", json_object_get(e, "op"),
                           "changes", "row", row);
        json_array_append_new(versions, *entry);
    }
    json_t *old = json_loads(str_of(e, "old_value"), JSON_DECODE_ANY, NULL);
    json_t *new = json_loads(str_of(e, "new_value"), JSON_DECODE_ANY, NULL);
    json_array_append_new(json_object_get(*entry, "changes"),
                          json_pack("{s:O, s:o, s:o}", "field", json_object_get(e, "field"), "old",
                                    old ? old : json_null(), "new", new ? new : json_null()));
out:
    json_decref(m);
    return rc;
}

int
lh_catalog_record_history(lh_catalog *c, const char *name, const char *key_text, json_t **out,
                          lh_err *err)
{
    json_t *cur = NULL, *kcols = NULL, *events = NULL, *versions = json_array(), *now = NULL;
    char *keyjson = NULL;
    lh_buf where;
    lh_buf_init(&where);
    int rc = lh_catalog_get(c, name, &cur, err);
    if (rc != 0 || (rc = key_columns(cur, &kcols, err)) != 0 ||
        (rc = key_predicate(c, kcols, key_text, &where, &keyjson, err)) != 0)
        goto out;
    lh_events_filter f = {.dataset = name, .key = keyjson, .limit = 100000};
    if ((rc = lh_catalog_events(c, &f, &events, err)) != 0)
        goto out;
    /* one entry per version that changed the record, with the row as it was after */
    size_t i;
    json_t *e, *entry = NULL;
    json_array_foreach(events, i, e)
    {
        if ((rc = add_event(c, str_of(cur, "bucket"), name, where.data, e, versions, &entry,
                            err)) != 0)
            goto out;
    }
    if ((rc = row_at(c, cur, where.data, &now, err)) != 0)
        goto out;
    json_t *key = json_loads(keyjson, 0, NULL);
    *out =
        json_pack("{s:s, s:o, s:O, s:o, s:o}", "dataset", name, "key", key ? key : json_null(),
                  "version", json_object_get(cur, "version"), "current", now, "history", versions);
    versions = NULL;
out:
    json_decref(versions);
    json_decref(events);
    json_decref(kcols);
    json_decref(cur);
    free(keyjson);
    lh_buf_free(&where);
    return rc;
}

/* The SELECT of the changed rows (change, before, after as JSON text) between the rows
 * sa (NULL: before the first version) and sb, joined on the key columns (new). */
static char *
changes_sql(const json_t *kcols, const char *sa, const char *sb, int64_t limit)
{
    lh_buf sql, on, knull_a, knull_b;
    lh_buf_init(&sql);
    if (!sa) { /* no earlier state: every row is inserted */
        lh_buf_printf(&sql,
                      "SELECT 'insert' AS change, NULL AS before, CAST(to_json(b) AS VARCHAR) "
                      "AS after FROM (%s) AS b ORDER BY after LIMIT %lld",
                      sb, (long long)limit + 1);
        return lh_buf_steal(&sql);
    }
    lh_buf_init(&on);
    lh_buf_init(&knull_a);
    lh_buf_init(&knull_b);
    size_t i;
    json_t *k;
    json_array_foreach(kcols, i, k)
    {
        lh_buf_puts(&on, i ? " AND a." : "a.");
        lh_sql_ident(&on, str_of(k, "name"));
        lh_buf_puts(&on, " = b.");
        lh_sql_ident(&on, str_of(k, "name"));
    }
    lh_buf_puts(&knull_a, "a.");
    lh_sql_ident(&knull_a, str_of(json_array_get(kcols, 0), "name"));
    lh_buf_puts(&knull_b, "b.");
    lh_sql_ident(&knull_b, str_of(json_array_get(kcols, 0), "name"));
    lh_buf_printf(&sql,
                  "SELECT CASE WHEN %s IS NULL THEN 'insert' WHEN %s IS NULL THEN 'delete' "
                  "ELSE 'update' END AS change, CASE WHEN %s IS NULL THEN NULL ELSE "
                  "CAST(to_json(a) AS VARCHAR) END AS before, CASE WHEN %s IS NULL THEN NULL "
                  "ELSE CAST(to_json(b) AS VARCHAR) END AS after FROM (%s) AS a FULL OUTER "
                  "JOIN (%s) AS b ON %s WHERE %s IS NULL OR %s IS NULL OR "
                  "to_json(a) <> to_json(b) ORDER BY change, after, before LIMIT %lld",
                  knull_a.data, knull_b.data, knull_a.data, knull_b.data, sa, sb, on.data,
                  knull_a.data, knull_b.data, (long long)limit + 1);
    lh_buf_free(&on);
    lh_buf_free(&knull_a);
    lh_buf_free(&knull_b);
    return lh_buf_steal(&sql);
}

/* The answer of lh_catalog_changes from the rows of changes_sql (new). */
static json_t *
changes_json(const char *name, int64_t from, int64_t to, json_t *rows, int64_t limit)
{
    bool more = (int64_t)json_array_size(rows) > limit;
    if (more)
        json_array_remove(rows, (size_t)limit);
    json_t *ins = json_array(), *upd = json_array(), *del = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *ch = str_of(r, "change");
        json_t *before = json_loads(str_of(r, "before"), 0, NULL);
        json_t *after = json_loads(str_of(r, "after"), 0, NULL);
        if (strcmp(ch, "insert") == 0)
            json_array_append_new(ins, after ? after : json_null());
        else if (strcmp(ch, "delete") == 0)
            json_array_append_new(del, before ? before : json_null());
        else
            json_array_append_new(upd,
                                  json_pack("{s:o, s:o}", "before", before ? before : json_null(),
                                            "after", after ? after : json_null()));
        if (strcmp(ch, "insert") == 0 && before)
            json_decref(before);
        if (strcmp(ch, "delete") == 0 && after)
            json_decref(after);
    }
    return json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:b}", "dataset", name, "from_version",
                     (json_int_t)from, "to_version", (json_int_t)to, "inserted", ins, "updated",
                     upd, "deleted", del, "truncated", more);
}

int
lh_catalog_changes(lh_catalog *c, const char *name, int64_t from, int64_t to, int64_t limit,
                   json_t **out, lh_err *err)
{
    json_t *cur = NULL, *kcols = NULL, *ma = NULL, *mb = NULL, *rows = NULL;
    char **pa = NULL, **pb = NULL, *sa = NULL, *sb = NULL, *sql = NULL;
    size_t na = 0, nb = 0;
    int rc = lh_catalog_get(c, name, &cur, err);
    if (rc != 0)
        goto out;
    int64_t latest = json_integer_value(json_object_get(cur, "version"));
    if (to <= 0)
        to = latest;
    if (from < 0 || from > to || to > latest) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "versions run from 0 (before the first) to %lld; from_version must not "
                        "exceed to_version",
                        (long long)latest);
        goto out;
    }
    lh_as_of at_b = {.version = to};
    if ((rc = lh_catalog_manifest_at(c, name, &at_b, &mb, err)) != 0)
        goto out;
    if (from > 0 &&
        (rc = lh_catalog__load_manifest(c, str_of(cur, "bucket"), name, from, &ma, err)) != 0)
        goto out;
    if ((rc = key_columns(mb, &kcols, err)) != 0 ||
        (rc = lh_catalog_pin_rows(c, mb, &pb, &nb, err)) != 0)
        goto out;
    /* before: the rows at from_version (none before the first version, or when deleted) */
    if (ma && strcmp(str_of(ma, "state"), "live") == 0 &&
        (rc = lh_catalog_pin_rows(c, ma, &pa, &na, err)) != 0)
        goto out;
    sa = pa ? lh_catalog_rows_sql(ma, pa) : NULL;
    sb = lh_catalog_rows_sql(mb, pb);
    sql = changes_sql(kcols, sa, sb, limit);
    if ((rc = lh_engine_rows(c->engine, sql, &rows, err)) != 0)
        goto out;
    *out = changes_json(name, from, to, rows, limit);
out:
    free(sql);
    free(sb);
    free(sa);
    lh_catalog_unpin_rows(c, pa, na);
    lh_catalog_unpin_rows(c, pb, nb);
    json_decref(rows);
    json_decref(ma);
    json_decref(mb);
    json_decref(kcols);
    json_decref(cur);
    return rc;
}
