/*
 * rows.c — row changes (ADR-009) and their events (ADR-012): one request's upserts and
 * deletes become one delta Parquet file, one events batch and one manifest version.
 *
 * An upsert names the key and the fields it sets; fields it leaves out keep their value
 * (NULL for a new key). The delta file holds each changed key's whole row after the
 * change, with `_op` and `_seq` (the new version); the dataset's view merges deltas on
 * read (src/catalog/rows_sql.c). Events compare the row before (the dataset's state just
 * before this commit, read under the dataset's writer slot, so nothing changes it
 * meanwhile) with the row after: one event per changed field, inserts and deletes
 * included.
 *
 * Atomicity without a log: the delta file and the events batch are stored first, then
 * the manifest version that names both is created (create-only). A crash before the
 * manifest leaves two unreferenced objects: the delta is garbage for the sweep, and the
 * journal reader only serves events batches that a committed manifest names (it checks
 * version N of the dataset lists exactly that batch), so the events of a change that did
 * not commit are never seen. A crash after the manifest leaves both. Either the whole
 * change with its events, or none of it.
 */
#include "ingest/ingest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *
str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Test hook (fault injection): LAKEHOUSE_FAULT_CRASH=rows_before_manifest makes the
 * process die like kill -9 between storing a change's files and committing it. */
static void
maybe_crash(const char *point)
{
    const char *want = getenv("LAKEHOUSE_FAULT_CRASH");
    if (want && strcmp(want, point) == 0)
        _exit(137);
}

typedef struct rows_ctx {
    const lh_rows_opts *o;
    const json_t *columns; /* [{"name","type"}] */
    const json_t *key;     /* ["col", ...] */
    size_t n_cols;
    int *key_pos; /* column index of each key part */
    size_t n_key;
} rows_ctx;

static int
col_index(const rows_ctx *x, const char *name)
{
    for (size_t i = 0; i < x->n_cols; i++)
        if (strcmp(str_of(json_array_get(x->columns, i), "name"), name) == 0)
            return (int)i;
    return -1;
}

static const char *
col_type(const rows_ctx *x, size_t i)
{
    return str_of(json_array_get(x->columns, i), "type");
}

/* "upsert[3]" / "delete[0]" for error messages. */
static void
row_name(const rows_ctx *x, int64_t global, char *buf, size_t size)
{
    int64_t n_up = (int64_t)json_array_size(x->o->upsert);
    if (global < n_up)
        snprintf(buf, size, "upsert[%lld]", (long long)global);
    else
        snprintf(buf, size, "delete[%lld]", (long long)(global - n_up));
}

/* ---- request checks ------------------------------------------------------------------- */

/* Shape: objects, known columns, the whole key and not NULL, a delete names only the
 * key, no key twice. */
static int
check_request(rows_ctx *x, lh_err *err)
{
    const json_t *lists[2] = {x->o->upsert, x->o->deletes};
    json_t *seen = json_object();
    int64_t global = 0;
    int rc = 0;
    char where[48];
    for (int l = 0; l < 2 && rc == 0; l++) {
        size_t i;
        json_t *row;
        json_array_foreach(lists[l], i, row)
        {
            row_name(x, global, where, sizeof where);
            if (!json_is_object(row)) {
                rc = lh_err_set(err, LH_EINVAL, 400, "invalid_row", "%s is not an object", where);
                break;
            }
            const char *name;
            json_t *v;
            json_object_foreach(row, name, v)
            {
                int c = col_index(x, name);
                bool is_key = false;
                for (size_t k = 0; k < x->n_key; k++)
                    is_key |= x->key_pos[k] == c;
                if (c < 0)
                    rc = lh_err_set(err, LH_EINVAL, 400, "invalid_row", "%s: unknown column '%s'",
                                    where, name);
                else if (l == 1 && !is_key)
                    rc = lh_err_set(err, LH_EINVAL, 400, "invalid_row",
                                    "%s: '%s' is not part of the primary key; a delete names "
                                    "only the key",
                                    where, name);
                if (rc)
                    break;
            }
            json_t *key_values = json_array();
            for (size_t k = 0; k < x->n_key && rc == 0; k++) {
                const char *kname = json_string_value(json_array_get(x->key, k));
                json_t *kv = json_object_get(row, kname);
                if (kv == NULL || json_is_null(kv))
                    rc = lh_err_set(err, LH_EINVAL, 400, "invalid_row",
                                    "%s: the primary key column '%s' is %s", where, kname,
                                    kv ? "null" : "missing");
                else
                    json_array_append(key_values, kv);
            }
            if (rc == 0) {
                char *k = json_dumps(key_values, JSON_COMPACT | JSON_ENCODE_ANY);
                json_t *prev = json_object_get(seen, k);
                if (prev) {
                    char first[48];
                    row_name(x, json_integer_value(prev), first, sizeof first);
                    rc = lh_err_set(err, LH_EINVAL, 400, "invalid_row", "%s repeats the key of %s",
                                    where, first);
                    lh_err_hint(err, "send each key once per request");
                } else {
                    json_object_set_new(seen, k, json_integer(global));
                }
                free(k);
            }
            json_decref(key_values);
            if (rc)
                break;
            global++;
        }
    }
    json_decref(seen);
    return rc;
}

/* x's columns and primary key from manifest m, then the request checked against them:
 * 400 no_primary_key when the dataset has none. */
static int
prepare(rows_ctx *x, const json_t *m, lh_err *err)
{
    x->columns = json_object_get(m, "columns");
    x->key = json_object_get(json_object_get(m, "metadata"), "primary_key");
    x->n_cols = json_array_size(x->columns);
    x->n_key = json_array_size(x->key);
    if (x->n_key == 0) {
        int rc = lh_err_set(err, LH_EINVAL, 400, "no_primary_key",
                            "dataset '%s' has no primary key", x->o->dataset);
        lh_err_hint(err, "declare one: PATCH /catalog/datasets/%s {\"primary_key\": [\"id\"]}",
                    x->o->dataset);
        return rc;
    }
    x->key_pos = lh_calloc(x->n_key, sizeof *x->key_pos);
    for (size_t k = 0; k < x->n_key; k++)
        x->key_pos[k] = col_index(x, json_string_value(json_array_get(x->key, k)));
    return check_request(x, err);
}

/* The request as NDJSON for DuckDB: {"_i", "_op", "_given": [names], "c0": text, ...};
 * every value travels as text (JSON columns as their JSON text) and is cast to the
 * column's type in SQL, where a value that does not fit is found by row. */
static int
write_request(rows_ctx *x, const char *path, lh_err *err)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return lh_err_set(err, LH_EIO, 500, "work_dir_unwritable",
                          "could not write the request in the work dir");
    const json_t *lists[2] = {x->o->upsert, x->o->deletes};
    int64_t global = 0;
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *row;
        json_array_foreach(lists[l], i, row)
        {
            json_t *line = json_pack("{s:I, s:s, s:[]}", "_i", (json_int_t)global++, "_op",
                                     l ? "delete" : "upsert", "_given");
            const char *name;
            json_t *v;
            json_object_foreach(row, name, v)
            {
                int c = col_index(x, name);
                char field[24];
                snprintf(field, sizeof field, "c%d", c);
                json_array_append_new(json_object_get(line, "_given"), json_string(name));
                if (json_is_null(v))
                    continue;
                if (json_is_string(v) && strcmp(col_type(x, (size_t)c), "JSON") != 0) {
                    json_object_set(line, field, v);
                } else {
                    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                    json_object_set_new(line, field, lh_json_text(text));
                    free(text);
                }
            }
            char *text = json_dumps(line, JSON_COMPACT);
            fputs(text, fp);
            fputc('\n', fp);
            free(text);
            json_decref(line);
        }
    }
    if (fclose(fp) != 0)
        return lh_err_set(err, LH_EIO, 507, "work_dir_full", "could not write the request");
    return 0;
}

/* read_json over the request file with every value as text. */
static void
request_source(rows_ctx *x, lh_buf *sql, const char *path)
{
    lh_buf_puts(sql, "read_json(");
    lh_sql_quote(sql, path);
    lh_buf_puts(sql, ", format = 'newline_delimited', columns = {'_i': 'BIGINT', "
                     "'_op': 'VARCHAR', '_given': 'VARCHAR[]'");
    for (size_t i = 0; i < x->n_cols; i++)
        lh_buf_printf(sql, ", 'c%zu': 'VARCHAR'", i);
    lh_buf_puts(sql, "})");
}

/* 400 naming the first row whose value does not fit its column's type. */
static int
check_types(rows_ctx *x, lh_engine *eng, const char *path, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT ");
    for (size_t i = 0; i < x->n_cols; i++) {
        /* an integer column takes integers only: DuckDB would round 1.5 to 2 */
        const char *t = col_type(x, i);
        static const char *const ints[] = {"TINYINT", "SMALLINT", "INTEGER",   "BIGINT",
                                           "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                                           "UBIGINT", "UHUGEINT", NULL};
        bool integer = false;
        for (const char *const *k = ints; *k; k++)
            integer |= strcmp(*k, t) == 0;
        lh_buf_printf(&sql, "%smin(CASE WHEN c%zu IS NOT NULL AND (TRY_CAST(c%zu AS %s) IS NULL",
                      i ? ", " : "", i, i, t);
        if (integer)
            lh_buf_printf(&sql, " OR NOT regexp_full_match(c%zu, '[-+]?[0-9]+')", i);
        lh_buf_printf(&sql, ") THEN _i END) AS c%zu", i);
    }
    lh_buf_puts(&sql, " FROM ");
    request_source(x, &sql, path);
    json_t *rows = NULL;
    int rc = lh_engine_rows(eng, sql.data, &rows, err);
    lh_buf_free(&sql);
    if (rc != 0)
        return rc;
    const json_t *r = json_array_get(rows, 0);
    int64_t first = -1;
    size_t bad = 0;
    for (size_t i = 0; i < x->n_cols; i++) {
        char field[24];
        snprintf(field, sizeof field, "c%zu", i);
        const json_t *v = json_object_get(r, field);
        if (json_is_integer(v) && (first < 0 || json_integer_value(v) < first)) {
            first = json_integer_value(v);
            bad = i;
        }
    }
    json_decref(rows);
    if (first < 0)
        return 0;
    char where[48];
    row_name(x, first, where, sizeof where);
    const json_t *list =
        first < (int64_t)json_array_size(x->o->upsert) ? x->o->upsert : x->o->deletes;
    int64_t idx = first < (int64_t)json_array_size(x->o->upsert)
                      ? first
                      : first - (int64_t)json_array_size(x->o->upsert);
    const char *name = str_of(json_array_get(x->columns, bad), "name");
    char *value = json_dumps(json_object_get(json_array_get(list, (size_t)idx), name),
                             JSON_COMPACT | JSON_ENCODE_ANY);
    rc = lh_err_set(err, LH_EINVAL, 400, "invalid_row", "%s: '%s' must be %s, not %.80s", where,
                    name, col_type(x, bad), value ? value : "?");
    free(value);
    return rc;
}

/* ---- the change ------------------------------------------------------------------------- */

static void
key_join(rows_ctx *x, lh_buf *sql, const char *a, const char *b)
{
    for (size_t k = 0; k < x->n_key; k++) {
        const char *name = json_string_value(json_array_get(x->key, k));
        lh_buf_printf(sql, "%s%s.", k ? " AND " : "", a);
        lh_sql_ident(sql, name);
        lh_buf_printf(sql, " = %s.", b);
        lh_sql_ident(sql, name);
    }
}

/* The request cast to the dataset's types: _i, _op, _given and the columns by name. */
static void
typed_request(rows_ctx *x, lh_buf *sql, const char *path)
{
    lh_buf_puts(sql, "SELECT _i, _op, _given");
    for (size_t i = 0; i < x->n_cols; i++) {
        lh_buf_printf(sql, ", CAST(c%zu AS %s) AS ", i, col_type(x, i));
        lh_sql_ident(sql, str_of(json_array_get(x->columns, i), "name"));
    }
    lh_buf_puts(sql, " FROM ");
    request_source(x, sql, path);
}

/* COPY the rows before the change (of the keys the request touches) to old_path. */
static int
write_old(rows_ctx *x, lh_engine *eng, const char *current_rows, const char *req_path,
          const char *old_path, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_printf(&sql, "COPY (SELECT cur.* FROM (%s) AS cur SEMI JOIN (", current_rows);
    typed_request(x, &sql, req_path);
    lh_buf_puts(&sql, ") AS r ON ");
    key_join(x, &sql, "cur", "r");
    lh_buf_puts(&sql, ") TO ");
    lh_sql_quote(&sql, old_path);
    lh_buf_puts(&sql, " (FORMAT parquet)");
    int rc = lh_engine_exec(eng, sql.data, NULL, err);
    lh_buf_free(&sql);
    return rc;
}

/* The mode's rule on the keys the upserts name: how many of them exist in the rows before
 * the change (old_path holds exactly those rows). */
static int
check_mode(rows_ctx *x, lh_engine *eng, const char *old_path, lh_err *err)
{
    if (x->o->mode == LH_ROWS_UPSERT)
        return 0;
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT count(*) AS n FROM read_parquet(");
    lh_sql_quote(&sql, old_path);
    lh_buf_puts(&sql, ")");
    json_t *row = NULL;
    int rc = lh_engine_row(eng, sql.data, &row, err);
    lh_buf_free(&sql);
    if (rc != 0)
        return rc;
    int64_t existing = json_integer_value(json_object_get(row, "n"));
    json_decref(row);
    int64_t asked = (int64_t)json_array_size(x->o->upsert);
    if (x->o->mode == LH_ROWS_INSERT_ONLY && existing > 0) {
        lh_err_set(err, LH_EEXIST, 409, "row_exists",
                   "a row with that key already exists in dataset '%s'", x->o->dataset);
        lh_err_hint(err, "an insert adds new rows only; choose another key");
        return LH_EEXIST;
    }
    if (x->o->mode == LH_ROWS_UPDATE_ONLY && existing < asked) {
        lh_err_set(err, LH_ENOTFOUND, 404, "row_not_found", "no row with that key in dataset '%s'",
                   x->o->dataset);
        lh_err_hint(err, "this change updates existing rows only");
        return LH_ENOTFOUND;
    }
    return 0;
}

/* COPY the delta rows (whole rows after the change; deletes of keys that exist; no upsert
 * that leaves its row as it was) to delta_path; *n_rows gets their count. */
static int
write_delta(rows_ctx *x, lh_engine *eng, const char *req_path, const char *old_path,
            int64_t version, const char *delta_path, int64_t *n_rows, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "COPY (SELECT ");
    for (size_t i = 0; i < x->n_cols; i++) {
        const char *name = str_of(json_array_get(x->columns, i), "name");
        bool is_key = false;
        for (size_t k = 0; k < x->n_key; k++)
            is_key |= x->key_pos[k] == (int)i;
        if (is_key) {
            lh_buf_puts(&sql, "r.");
            lh_sql_ident(&sql, name);
        } else {
            lh_buf_puts(&sql, "CASE WHEN r._op = 'delete' THEN NULL WHEN list_contains(r._given, ");
            lh_sql_quote(&sql, name);
            lh_buf_puts(&sql, ") THEN r.");
            lh_sql_ident(&sql, name);
            lh_buf_puts(&sql, " ELSE o.");
            lh_sql_ident(&sql, name);
            lh_buf_puts(&sql, " END");
        }
        lh_buf_puts(&sql, " AS ");
        lh_sql_ident(&sql, name);
        lh_buf_puts(&sql, ", ");
    }
    lh_buf_printf(&sql, "r._op AS _op, CAST(%lld AS BIGINT) AS _seq FROM (", (long long)version);
    typed_request(x, &sql, req_path);
    lh_buf_puts(&sql, ") AS r LEFT JOIN read_parquet(");
    lh_sql_quote(&sql, old_path);
    lh_buf_puts(&sql, ") AS o ON ");
    key_join(x, &sql, "r", "o");
    /* a delete of a key that exists; an upsert of a new key, or one that sets a field to
     * another value (an upsert of the values the row holds already is no change) */
    const char *key0 = json_string_value(json_array_get(x->key, 0));
    lh_buf_puts(&sql, " WHERE (r._op = 'delete' AND o.");
    lh_sql_ident(&sql, key0);
    lh_buf_puts(&sql, " IS NOT NULL) OR (r._op = 'upsert' AND (o.");
    lh_sql_ident(&sql, key0);
    lh_buf_puts(&sql, " IS NULL");
    for (size_t i = 0; i < x->n_cols; i++) {
        const char *name = str_of(json_array_get(x->columns, i), "name");
        lh_buf_puts(&sql, " OR (list_contains(r._given, ");
        lh_sql_quote(&sql, name);
        lh_buf_puts(&sql, ") AND r.");
        lh_sql_ident(&sql, name);
        lh_buf_puts(&sql, " IS DISTINCT FROM o.");
        lh_sql_ident(&sql, name);
        lh_buf_puts(&sql, ")");
    }
    lh_buf_puts(&sql, ")) ORDER BY r._i) TO ");
    lh_sql_quote(&sql, delta_path);
    lh_buf_puts(&sql, " (FORMAT parquet, COMPRESSION zstd)");
    int rc = lh_engine_exec(eng, sql.data, n_rows, err);
    lh_buf_free(&sql);
    return rc;
}

/* The changes (see lh_ingest__field_events): each delta row beside the row before, the
 * key as JSON text, what happened to the key and the row's number. */
static void
changes_sql(rows_ctx *x, const char *delta_path, const char *old_path, lh_buf *sql)
{
    lh_buf_puts(sql, "SELECT ");
    for (size_t i = 0; i < x->n_cols; i++) {
        const char *name = str_of(json_array_get(x->columns, i), "name");
        lh_buf_puts(sql, "d.");
        lh_sql_ident(sql, name);
        lh_buf_printf(sql, " AS lh_new_%zu, o.", i);
        lh_sql_ident(sql, name);
        lh_buf_printf(sql, " AS lh_old_%zu, ", i);
    }
    lh_ingest__key_json(sql, x->key, "d", NULL);
    lh_buf_puts(sql, " AS lh_key, CASE WHEN d._op = 'delete' THEN 'delete' WHEN o.");
    lh_sql_ident(sql, json_string_value(json_array_get(x->key, 0)));
    lh_buf_puts(sql, " IS NULL THEN 'insert' ELSE 'update' END AS lh_kind, "
                     "row_number() OVER () AS lh_n FROM read_parquet(");
    lh_sql_quote(sql, delta_path);
    lh_buf_puts(sql, ") AS d LEFT JOIN read_parquet(");
    lh_sql_quote(sql, old_path);
    lh_buf_puts(sql, ") AS o ON ");
    key_join(x, sql, "d", "o");
}

/* What happened to the keys: {"deleted","inserted","updated"} (new in *counts). */
static int
key_counts(rows_ctx *x, lh_engine *eng, const char *delta_path, const char *old_path,
           json_t **counts, lh_err *err)
{
    lh_buf q;
    lh_buf_init(&q);
    lh_buf_puts(&q, "SELECT count(*) FILTER (WHERE d._op = 'delete') AS deleted, "
                    "count(*) FILTER (WHERE d._op = 'upsert' AND o._present IS NULL) AS inserted, "
                    "count(*) FILTER (WHERE d._op = 'upsert' AND o._present) AS updated "
                    "FROM read_parquet(");
    lh_sql_quote(&q, delta_path);
    lh_buf_puts(&q, ") AS d LEFT JOIN (SELECT *, true AS _present FROM read_parquet(");
    lh_sql_quote(&q, old_path);
    lh_buf_puts(&q, ")) AS o ON ");
    key_join(x, &q, "d", "o");
    int rc = lh_engine_row(eng, q.data, counts, err);
    lh_buf_free(&q);
    return rc;
}

/* COPY the events of the change to events_path: one per changed field of each key, with
 * the value before and after as JSON text. *counts gets inserted/updated/deleted keys and
 * events. */
static int
write_events(rows_ctx *x, lh_engine *eng, const char *delta_path, const char *old_path,
             int64_t version, const char *events_path, json_t **counts, lh_err *err)
{
    lh_buf changes;
    lh_buf_init(&changes);
    changes_sql(x, delta_path, old_path, &changes);
    const lh_rows_opts *o = x->o;
    lh_ingest__events e = {.dataset = o->dataset,
                           .actor = o->actor,
                           .source = o->source,
                           .workspace_id = o->workspace_id,
                           .version = version,
                           .columns = x->columns};
    int64_t n_events = 0;
    int rc = lh_ingest__field_events(eng, &e, changes.data, events_path, &n_events, err);
    lh_buf_free(&changes);
    if (rc == 0)
        rc = key_counts(x, eng, delta_path, old_path, counts, err);
    if (rc == 0)
        json_object_set_new(*counts, "events", json_integer(n_events));
    return rc;
}

/* Store the events batch under the journal prefix as part of the write (deleted again
 * if the commit does not happen). */
static int
store_events(lh_ingest__target *t, const char *local, int64_t version, int64_t n_events,
             lh_err *err)
{
    /* the name says which commit must name it (see journal.c) */
    char *key = lh_layout_events_key(t->tag, t->dataset, version);
    int rc = lh_ingest__store_as(t, local, key, "events", n_events, err);
    free(key);
    return rc;
}

int
lh_ingest_rows(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets, const lh_rows_opts *o,
               json_t **result, lh_err *err)
{
    lh_ingest__target t;
    rows_ctx x = {.o = o};
    char *req = NULL, *old = NULL, *delta = NULL, *events = NULL, *current_rows = NULL;
    char **paths = NULL;
    size_t n_paths = 0;
    json_t *counts = NULL, *committed = NULL;
    int rc = lh_ingest__begin(cat, buckets, o->dataset, NULL, LH_INGEST__CHANGE, false,
                              o->allow_bucket, o->allow_ctx, &t, err);
    if (rc != 0)
        goto out;
    if ((rc = prepare(&x, t.cur, err)) != 0)
        goto out;

    const char *dir = lh_catalog_work_dir(cat);
    req = lh_sprintf("%s/rows-%s.ndjson", dir, t.tag);
    old = lh_sprintf("%s/rows-%s-old.parquet", dir, t.tag);
    delta = lh_sprintf("%s/rows-%s-delta.parquet", dir, t.tag);
    events = lh_sprintf("%s/rows-%s-events.parquet", dir, t.tag);
    if ((rc = write_request(&x, req, err)) != 0 || (rc = check_types(&x, eng, req, err)) != 0)
        goto out;
    if ((rc = lh_catalog_pin_rows(cat, t.cur, &paths, &n_paths, err)) != 0)
        goto out;
    current_rows = lh_catalog_rows_sql(t.cur, paths);
    int64_t version = lh_txn_next_version(t.txn); /* the commit's: its events are named so */
    int64_t n_delta = 0;
    if ((rc = write_old(&x, eng, current_rows, req, old, err)) != 0 ||
        (rc = check_mode(&x, eng, old, err)) != 0 ||
        (rc = write_delta(&x, eng, req, old, version, delta, &n_delta, err)) != 0 ||
        (rc = write_events(&x, eng, delta, old, version, events, &counts, err)) != 0)
        goto out;
    lh_catalog_unpin_rows(cat, paths, n_paths);
    paths = NULL;
    int64_t inserted = json_integer_value(json_object_get(counts, "inserted"));
    int64_t deleted = json_integer_value(json_object_get(counts, "deleted"));
    if (n_delta == 0) { /* upserts of the same values, deletes of absent keys: no change */
        *result = json_pack("{s:s, s:O, s:b, s:O}", "dataset", o->dataset, "version",
                            json_object_get(t.cur, "version"), "unchanged", 1, "counts", counts);
        goto out;
    }
    if ((rc = lh_ingest__store_as(&t, delta, NULL, "delta", n_delta, err)) != 0 ||
        (rc = store_events(&t, events, version,
                           json_integer_value(json_object_get(counts, "events")), err)) != 0)
        goto out;
    maybe_crash("rows_before_manifest");
    t.change = "rows";
    t.row_count = json_integer_value(json_object_get(t.cur, "row_count")) + inserted - deleted;
    if ((rc = lh_ingest__commit(&t, x.columns, NULL, NULL, o->actor, &committed, err)) != 0)
        goto out;
    maybe_crash("rows_after_manifest");
    *result = json_pack("{s:s, s:O, s:O, s:O, s:I}", "dataset", o->dataset, "version",
                        json_object_get(committed, "version"), "row_count",
                        json_object_get(committed, "row_count"), "counts", counts, "deltas",
                        (json_int_t)lh_ingest_delta_count(committed));
out:
    lh_catalog_unpin_rows(cat, paths, n_paths);
    lh_ingest__end(&t);
    for (char **p = (char *[]){req, old, delta, events, NULL}; *p; p++)
        unlink(*p);
    free(req);
    free(old);
    free(delta);
    free(events);
    free(current_rows);
    free(x.key_pos);
    json_decref(counts);
    json_decref(committed);
    return rc;
}

/* ---- staging (workspaces) ---------------------------------------------------------------- */

int
lh_ingest_rows_stage(lh_catalog *cat, lh_engine *eng, const lh_rows_opts *o, const json_t *base,
                     int64_t seq, const char *delta_path, json_t **counts, lh_err *err)
{
    rows_ctx x = {.o = o};
    char *req = NULL, *old = NULL, *current_rows = NULL;
    char **paths = NULL;
    size_t n_paths = 0;
    json_t *got = NULL;
    int rc = 0;
    if ((rc = prepare(&x, base, err)) != 0)
        goto out;
    char tag[17];
    lh_random_hex(tag, 8);
    const char *dir = lh_catalog_work_dir(cat);
    req = lh_sprintf("%s/stage-%s.ndjson", dir, tag);
    old = lh_sprintf("%s/stage-%s-old.parquet", dir, tag);
    if ((rc = write_request(&x, req, err)) != 0 || (rc = check_types(&x, eng, req, err)) != 0 ||
        (rc = lh_catalog_pin_rows(cat, base, &paths, &n_paths, err)) != 0)
        goto out;
    current_rows = lh_catalog_rows_sql(base, paths);
    int64_t n_delta = 0;
    if ((rc = write_old(&x, eng, current_rows, req, old, err)) != 0 ||
        (rc = write_delta(&x, eng, req, old, seq, delta_path, &n_delta, err)) != 0 ||
        (rc = key_counts(&x, eng, delta_path, old, &got, err)) != 0)
        goto out;
    json_object_set_new(got, "rows", json_integer(n_delta));
    *counts = got;
    got = NULL;
out:
    lh_catalog_unpin_rows(cat, paths, n_paths);
    if (req)
        unlink(req);
    if (old)
        unlink(old);
    free(req);
    free(old);
    free(current_rows);
    free(x.key_pos);
    json_decref(got);
    return rc;
}
