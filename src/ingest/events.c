/*
 * events.c — what a commit writes to the events journal (ADR-012): the field-level events
 * of changed rows (row changes and a replace of a dataset with a primary key), and the
 * events batch of every other ingest (create, append, replace) as one dataset-level event.
 *
 * Field-level events come from one "changes" relation: one row per changed key with the
 * values before and after of every column. The row-change API builds it from its delta
 * file; a replace from a full outer join of the dataset's rows before (merged on read)
 * with the new files on the primary key, keeping only keys inserted, deleted or with a
 * field that differs. DuckDB computes both with its own memory limit (spilling to the work
 * folder), so the diff's memory does not grow with the dataset. A replace's changes are
 * written to a work file capped at [catalog] max_diff_rows + 1 rows: past the cap the
 * version is journaled as one dataset-level event that says so.
 *
 * The events batch is stored like a data file of the write (lh_ingest__store_as, kind
 * "events") and listed in the version's manifest, so it commits with the version or not
 * at all. Runs on the caller's thread under the dataset's writer slot.
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

/* ---- field-level events ----------------------------------------------------------------- */

void
lh_ingest__key_json(lh_buf *sql, const json_t *key, const char *a, const char *b)
{
    lh_buf_puts(sql, "CAST(to_json({");
    for (size_t k = 0; k < json_array_size(key); k++) {
        const char *name = json_string_value(json_array_get(key, k));
        lh_buf_puts(sql, k ? ", " : "");
        lh_sql_quote(sql, name);
        lh_buf_printf(sql, ": %s%s.", b ? "coalesce(" : "", a);
        lh_sql_ident(sql, name);
        if (b) {
            lh_buf_printf(sql, ", %s.", b);
            lh_sql_ident(sql, name);
            lh_buf_puts(sql, ")");
        }
    }
    lh_buf_puts(sql, "}) AS VARCHAR)");
}

/* The CTE ev: one row per changed field of each key of ch (lh_f: the field's number),
 * with the value before and after as JSON text. */
static void
fields_cte(const lh_ingest__events *e, lh_buf *sql)
{
    lh_buf_puts(sql, "ev AS (");
    for (size_t i = 0; i < json_array_size(e->columns); i++) {
        lh_buf_puts(sql, i ? " UNION ALL " : "");
        lh_buf_printf(sql, "SELECT lh_n, %zu AS lh_f, lh_key, lh_kind, ", i);
        lh_sql_quote(sql, str_of(json_array_get(e->columns, i), "name"));
        lh_buf_printf(sql,
                      " AS field, CASE WHEN lh_kind = 'insert' THEN NULL ELSE "
                      "CAST(to_json(lh_old_%zu) AS VARCHAR) END AS old_value, "
                      "CASE WHEN lh_kind = 'delete' THEN NULL ELSE "
                      "CAST(to_json(lh_new_%zu) AS VARCHAR) END AS new_value FROM ch WHERE "
                      "(lh_kind = 'insert' AND lh_new_%zu IS NOT NULL) OR (lh_kind = 'delete' AND "
                      "lh_old_%zu IS NOT NULL) OR (lh_kind = 'update' AND lh_new_%zu IS DISTINCT "
                      "FROM lh_old_%zu)",
                      i, i, i, i, i, i);
    }
    lh_buf_puts(sql, ")");
}

/* The events' columns (the journal's schema) from ev, in the change's order. */
static void
events_select(const lh_ingest__events *e, lh_buf *sql)
{
    char when[LH_TIME_MAX];
    lh_time_format(lh_now_us(), when);
    lh_buf_puts(sql, " SELECT ");
    lh_sql_quote(sql, e->dataset);
    lh_buf_puts(sql, " AS dataset, lh_key AS key, field, old_value, new_value, lh_kind AS op, ");
    lh_sql_quote(sql, e->actor ? e->actor : "");
    lh_buf_puts(sql, " AS actor, CAST(");
    lh_sql_quote(sql, when);
    lh_buf_puts(sql, " AS TIMESTAMPTZ) AS ts, ");
    lh_sql_quote_or_null(sql, e->source);
    lh_buf_puts(sql, " AS source, ");
    lh_sql_quote_or_null(sql, e->workspace_id);
    lh_buf_printf(sql,
                  " AS workspace_id, CAST(%lld AS BIGINT) AS version, "
                  "CAST(row_number() OVER (ORDER BY lh_n, lh_f) AS BIGINT) AS seq "
                  "FROM ev ORDER BY lh_n, lh_f",
                  (long long)e->version);
}

int
lh_ingest__field_events(lh_engine *eng, const lh_ingest__events *e, const char *changes,
                        const char *events_path, int64_t *n_events, lh_err *err)
{
    lh_buf copy;
    lh_buf_init(&copy);
    lh_buf_printf(&copy, "COPY (WITH ch AS (%s), ", changes);
    fields_cte(e, &copy);
    events_select(e, &copy);
    lh_buf_puts(&copy, ") TO ");
    lh_sql_quote(&copy, events_path);
    lh_buf_puts(&copy, " (FORMAT parquet, COMPRESSION zstd)");
    int rc = lh_engine_exec(eng, copy.data, n_events, err);
    lh_buf_free(&copy);
    return rc;
}

/* ---- the diff of a replace ---------------------------------------------------------------- */

static const json_t *
column_named(const json_t *columns, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(columns, i, c) if (strcmp(str_of(c, "name"), name) == 0) return c;
    return NULL;
}

/* Why a replace of the dataset cannot be journaled field by field (NULL: it can). */
static const char *
diff_obstacle(const lh_ingest__target *t, const json_t *columns, const json_t *client_meta,
              int64_t max_diff_rows)
{
    const json_t *key = json_object_get(json_object_get(t->cur, "metadata"), "primary_key");
    const json_t *new_key = client_meta ? json_object_get(client_meta, "primary_key") : NULL;
    if (json_array_size(key) == 0)
        return "the dataset has no primary key";
    if (new_key && !json_equal((json_t *)key, (json_t *)new_key))
        return "the replace changes the primary key";
    if (max_diff_rows <= 0)
        return "[catalog] max_diff_rows is 0";
    const json_t *old_cols = json_object_get(t->cur, "columns");
    size_t k;
    json_t *name;
    json_array_foreach(key, k, name)
    {
        const json_t *a = column_named(old_cols, json_string_value(name));
        const json_t *b = column_named(columns, json_string_value(name));
        if (!a || !b || strcmp(str_of(a, "type"), str_of(b, "type")) != 0)
            return "the primary key's columns differ in the new data (missing or of another "
                   "type)";
    }
    return NULL;
}

/* The value of column `name` on side `alias` for the diff: the column, cast to JSON when
 * the two sides disagree on its type, a typed NULL when that side lacks it. */
static void
side_value(lh_buf *sql, const char *alias, const json_t *mine, const json_t *other)
{
    if (!mine) {
        lh_buf_printf(sql, "CAST(NULL AS %s)", str_of(other, "type"));
        return;
    }
    bool as_json = other && strcmp(str_of(mine, "type"), str_of(other, "type")) != 0;
    lh_buf_puts(sql, as_json ? "to_json(" : "");
    lh_buf_printf(sql, "%s.", alias);
    lh_sql_ident(sql, str_of(mine, "name"));
    lh_buf_puts(sql, as_json ? ")" : "");
}

/* COPY the changed keys of a replace (the changes relation without lh_n: see
 * lh_ingest__field_events) to path, at most limit rows; *fields gets the compared columns
 * (new: the new data's, then those only the dataset had), *n_rows the rows written. */
static int
write_changes(lh_engine *eng, const json_t *key, const json_t *old_cols, const json_t *new_cols,
              const char *old_sql, const char *new_sql, int64_t limit, const char *path,
              json_t **fields, int64_t *n_rows, lh_err *err)
{
    json_t *all = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(new_cols, i, c) json_array_append(all, c);
    json_array_foreach(old_cols, i, c) if (!column_named(new_cols, str_of(c, "name")))
        json_array_append(all, c);
    lh_buf sql, differs;
    lh_buf_init(&sql);
    lh_buf_init(&differs);
    const char *key0 = json_string_value(json_array_get(key, 0));
    lh_buf_puts(&sql, "COPY (SELECT ");
    json_array_foreach(all, i, c)
    {
        const json_t *nc = column_named(new_cols, str_of(c, "name"));
        const json_t *oc = column_named(old_cols, str_of(c, "name"));
        lh_buf lhs, rhs;
        lh_buf_init(&lhs);
        lh_buf_init(&rhs);
        side_value(&lhs, "d", nc, oc);
        side_value(&rhs, "o", oc, nc);
        lh_buf_printf(&sql, "%s AS lh_new_%zu, %s AS lh_old_%zu, ", lhs.data, i, rhs.data, i);
        lh_buf_printf(&differs, " OR %s IS DISTINCT FROM %s", lhs.data, rhs.data);
        lh_buf_free(&lhs);
        lh_buf_free(&rhs);
    }
    lh_ingest__key_json(&sql, key, "d", "o");
    lh_buf_puts(&sql, " AS lh_key, CASE WHEN d.");
    lh_sql_ident(&sql, key0);
    lh_buf_puts(&sql, " IS NULL THEN 'delete' WHEN o.");
    lh_sql_ident(&sql, key0);
    lh_buf_printf(&sql,
                  " IS NULL THEN 'insert' ELSE 'update' END AS lh_kind FROM (%s) AS d FULL "
                  "OUTER JOIN (%s) AS o ON ",
                  new_sql, old_sql);
    json_t *k;
    json_array_foreach(key, i, k)
    {
        lh_buf_puts(&sql, i ? " AND d." : "d.");
        lh_sql_ident(&sql, json_string_value(k));
        lh_buf_puts(&sql, " = o.");
        lh_sql_ident(&sql, json_string_value(k));
    }
    lh_buf_puts(&sql, " WHERE d.");
    lh_sql_ident(&sql, key0);
    lh_buf_puts(&sql, " IS NULL OR o.");
    lh_sql_ident(&sql, key0);
    lh_buf_printf(&sql, " IS NULL%s LIMIT %lld) TO ", differs.data, (long long)limit);
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, " (FORMAT parquet)");
    int rc = lh_engine_exec(eng, sql.data, n_rows, err);
    lh_buf_free(&sql);
    lh_buf_free(&differs);
    if (rc == 0)
        *fields = all;
    else
        json_decref(all);
    return rc;
}

/* {"inserted","updated","deleted"} of the changes file (new in *counts). */
static int
change_counts(lh_engine *eng, const char *path, json_t **counts, lh_err *err)
{
    lh_buf q;
    lh_buf_init(&q);
    lh_buf_puts(&q, "SELECT count(*) FILTER (WHERE lh_kind = 'insert') AS inserted, "
                    "count(*) FILTER (WHERE lh_kind = 'update') AS updated, "
                    "count(*) FILTER (WHERE lh_kind = 'delete') AS deleted FROM read_parquet(");
    lh_sql_quote(&q, path);
    lh_buf_puts(&q, ")");
    int rc = lh_engine_row(eng, q.data, counts, err);
    lh_buf_free(&q);
    return rc;
}

/* The field-level events of a replace to events_path, and *summary (new) {"level":
 * "field", "events", "inserted", "updated", "deleted"}; or, when the replace changes more
 * than max_diff_rows rows, nothing written and *too_many set. */
static int
replace_diff(lh_ingest__target *t, const json_t *columns, const lh_ingest__events *e,
             int64_t max_diff_rows, const char *events_path, json_t **summary, bool *too_many,
             lh_err *err)
{
    const json_t *key = json_object_get(json_object_get(t->cur, "metadata"), "primary_key");
    char **old_paths = NULL, **new_paths = NULL, *old_sql = NULL, *new_sql = NULL;
    char *changes = NULL, *ch_sql = NULL;
    size_t n_old = 0, n_new = 0;
    json_t *fields = NULL, *counts = NULL;
    json_t *next = json_pack("{s:s, s:O, s:O, s:{s:O}}", "bucket", t->bucket, "files", t->new_files,
                             "columns", columns, "metadata", "primary_key", key);
    int64_t n_changed = 0, n_events = 0;
    int rc = lh_catalog_pin_rows(t->cat, t->cur, &old_paths, &n_old, err);
    if (rc != 0 || (rc = lh_catalog_pin_rows(t->cat, next, &new_paths, &n_new, err)) != 0)
        goto out;
    old_sql = lh_catalog_rows_sql(t->cur, old_paths);
    new_sql = lh_catalog_rows_sql(next, new_paths);
    changes = lh_sprintf("%s/ingest-%s-changes.parquet", lh_catalog_work_dir(t->cat), t->tag);
    if ((rc = write_changes(t->eng, key, json_object_get(t->cur, "columns"), columns, old_sql,
                            new_sql, max_diff_rows + 1, changes, &fields, &n_changed, err)) != 0)
        goto out;
    if (n_changed > max_diff_rows) {
        *too_many = true;
        goto out;
    }
    lh_ingest__events fe = *e;
    fe.columns = fields;
    lh_buf ch;
    lh_buf_init(&ch);
    lh_buf_puts(&ch, "SELECT *, row_number() OVER () AS lh_n FROM read_parquet(");
    lh_sql_quote(&ch, changes);
    lh_buf_puts(&ch, ")");
    ch_sql = lh_buf_steal(&ch);
    if ((rc = lh_ingest__field_events(t->eng, &fe, ch_sql, events_path, &n_events, err)) != 0 ||
        (rc = change_counts(t->eng, changes, &counts, err)) != 0)
        goto out;
    json_object_set_new(counts, "level", json_string("field"));
    json_object_set_new(counts, "events", json_integer(n_events));
    *summary = counts;
    counts = NULL;
out:
    lh_catalog_unpin_rows(t->cat, old_paths, n_old);
    lh_catalog_unpin_rows(t->cat, new_paths, n_new);
    if (changes)
        unlink(changes);
    free(changes);
    free(ch_sql);
    free(old_sql);
    free(new_sql);
    json_decref(fields);
    json_decref(counts);
    json_decref(next);
    return rc;
}

/* ---- the events batch of an ingest -------------------------------------------------------- */

/* Where the data came from, in a few words: the lineage's source (PostgreSQL), the
 * uploaded file's name, or the source system. Borrowed from lineage. */
static const char *
source_of(const json_t *lineage)
{
    static const char *const keys[] = {"source", "source_object", "source_system"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *s = json_string_value(json_object_get(lineage, keys[i]));
        if (s && *s)
            return s;
    }
    return NULL;
}

int
lh_ingest__journal(lh_ingest__target *t, const json_t *columns, const json_t *client_meta,
                   const json_t *lineage, const char *actor, int64_t rows, int64_t row_count,
                   lh_err *err)
{
    const json_t *any = lh_txn_current(t->txn);
    int64_t version = (any ? json_integer_value(json_object_get(any, "version")) : 0) + 1;
    const char *op = lh_ingest__mode_name(t->mode);
    char *path = lh_sprintf("%s/ingest-%s-events.parquet", lh_catalog_work_dir(t->cat), t->tag);
    char *key = lh_layout_events_key(t->tag, t->dataset, version);
    json_t *summary = NULL, *before = NULL, *after = NULL;
    lh_ingest__events e = {
        .dataset = t->dataset, .actor = actor, .source = source_of(lineage), .version = version};
    int rc = 0;
    const char *reason = NULL;
    char reason_buf[160];
    if (t->mode == LH_INGEST_REPLACE && t->cur) {
        int64_t max_diff_rows = lh_catalog_max_diff_rows(t->cat);
        bool too_many = false;
        reason = diff_obstacle(t, columns, client_meta, max_diff_rows);
        if (!reason &&
            (rc = replace_diff(t, columns, &e, max_diff_rows, path, &summary, &too_many, err)) != 0)
            goto out;
        if (too_many) {
            snprintf(reason_buf, sizeof reason_buf,
                     "the replace changes more than [catalog] max_diff_rows (%lld) rows",
                     (long long)max_diff_rows);
            reason = reason_buf;
        }
        before = json_pack("{s:O?}", "row_count", json_object_get(t->cur, "row_count"));
    }
    if (!summary) { /* one dataset-level event */
        after =
            json_pack("{s:I, s:I}", "rows", (json_int_t)rows, "row_count", (json_int_t)row_count);
        summary = json_pack("{s:s, s:i}", "level", "dataset", "events", 1);
        if (reason) {
            json_object_set_new(after, "diff", json_string("skipped"));
            json_object_set_new(after, "reason", json_string(reason));
            json_object_set_new(summary, "reason", json_string(reason));
        }
        lh_dataset_event de = {.dataset = t->dataset,
                               .op = op,
                               .actor = actor,
                               .source = e.source,
                               .before = before,
                               .after = after,
                               .version = version};
        if ((rc = lh_catalog_write_dataset_event(t->cat, &de, path, err)) != 0)
            goto out;
    }
    if ((rc = lh_ingest__store_as(t, path, key, "events",
                                  json_integer_value(json_object_get(summary, "events")), err)) !=
        0)
        goto out;
    json_decref(t->journal);
    t->journal = summary;
    summary = NULL;
out:
    unlink(path);
    free(path);
    free(key);
    json_decref(summary);
    json_decref(before);
    json_decref(after);
    return rc;
}
