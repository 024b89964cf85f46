/*
 * ingest_pg.c — PostgreSQL streaming ingest: a table or a SELECT, read from one
 * consistent snapshot, written batch by batch as zstd Parquet, committed as one version.
 *
 * lh_ingest_db runs the steps in order on the caller's thread: begin the write
 * (ingest_common.c), open the REPEATABLE READ READ ONLY snapshot (pg_conn.c), describe
 * the source and decide how each column travels (pg_describe.c), read the watermark range
 * of an incremental ingest, decide how many streams read it (pg_slices.c) and open the
 * others' connections in the same snapshot, stream and convert the rows (pg_pipeline.c,
 * which adds the streams' threads), and commit one version whose lineage names the source
 * without its password. src/ingest/README.md has the whole path and the binary format.
 */
#include "ingest/pg_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
lh_ingest_db_parallel_default(void)
{
    long half = sysconf(_SC_NPROCESSORS_ONLN) / 2;
    return half < 1 ? 1 : half > 4 ? 4 : (int)half;
}

/* The watermark the dataset's last incremental ingest left for this column, or NULL. */
static const char *
old_watermark(const json_t *cur, const char *column)
{
    const json_t *wm =
        json_object_get(json_object_get(json_object_get(cur, "metadata"), "lineage"), "watermark");
    const char *c = json_string_value(json_object_get(wm, "column"));
    return c && strcmp(c, column) == 0 ? json_string_value(json_object_get(wm, "value")) : NULL;
}

/* Incremental ingest: the filter for rows newer than the last watermark `old` (none:
 * every row) and the newest value of the column in the snapshot (*new_wm, new; NULL when
 * no row qualifies). Both are read in the same snapshot, so the next run starts exactly
 * where this one ended. */
static int
watermark_range(lh_pg_src *s, const lh_pg_col *cols, int n_cols, const char *column,
                const char *from_src, const char *old, char **where, char **new_wm, lh_err *err)
{
    int k = 0;
    while (k < n_cols && strcmp(cols[k].name, column) != 0)
        k++;
    if (k == n_cols)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'since_column' names '%s', which the source does not have", column);
    char *lit = old ? PQescapeLiteral(s->conn, old, strlen(old)) : NULL;
    *where = old ? lh_sprintf(" WHERE lh_src.c%d > %s", k, lit) : lh_strdup("");
    PQfreemem(lit);
    char *sql = lh_sprintf("SELECT max(lh_src.c%d)::text%s%s", k, from_src, *where);
    PGresult *res =
        lh_ingest__pg_run(s, sql, 0, NULL, PGRES_TUPLES_OK, "reading the watermark", err);
    free(sql);
    if (!res)
        return err->rc;
    if (!PQgetisnull(res, 0, 0))
        *new_wm = lh_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static json_t *
watermark_json(const char *column, const char *value)
{
    return column && value ? json_pack("{s:s, s:s}", "column", column, "value", value)
                           : json_null();
}

/* The source with its columns renamed c0, c1, ...: names may repeat or be odd (new). */
static char *
from_source(const char *src, int n_cols)
{
    lh_buf from;
    lh_buf_init(&from);
    lh_buf_printf(&from, " FROM (%s) AS lh_src(", src);
    for (int i = 0; i < n_cols; i++)
        lh_buf_printf(&from, "%sc%d", i ? ", " : "", i);
    lh_buf_puts(&from, ")");
    return lh_buf_steal(&from);
}

/* What is streamed: every column as it travels, from the renamed source, newer than the
 * watermark when `where` says so (new). */
static char *
select_sql(const lh_pg_col *cols, int n_cols, const char *from_src, const char *where)
{
    lh_buf sel;
    lh_buf_init(&sel);
    lh_buf_puts(&sel, "SELECT ");
    for (int i = 0; i < n_cols; i++)
        lh_buf_printf(&sel, "%s%s", i ? ", " : "", cols[i].pg_expr);
    lh_buf_printf(&sel, "%s%s", from_src, where ? where : "");
    return lh_buf_steal(&sel);
}

static const char *
method_name(lh_pg_method m)
{
    return m == LH_PG_CURSOR ? "cursor" : "copy";
}

/* The new version's lineage (new): the redacted source, the table or query, the
 * snapshot's time and, for an incremental ingest, the watermark it reached. */
static json_t *
db_lineage(const lh_ingest_db_opts *o, const lh_pg_src *s, const char *snapshot_at,
           const char *watermark)
{
    json_t *lineage = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "source_system", "postgresql", "source",
        s->dsn.redacted, "source_object", o->query ? "query" : o->table, "ingest", "db", "method",
        method_name(o->method), "mode", lh_ingest__mode_name(o->mode), "snapshot_at", snapshot_at);
    json_object_set_new(lineage, o->query ? "query" : "table",
                        json_string(o->query ? o->query : o->table));
    if (o->since_column)
        json_object_set_new(lineage, "watermark", watermark_json(o->since_column, watermark));
    return lineage;
}

/* The answer for a committed ingest (new). */
static json_t *
plan_json(const lh_pg_plan *plan)
{
    json_t *p = json_pack("{s:i, s:i}", "requested", plan->asked, "streams", plan->streams);
    if (plan->reason)
        json_object_set_new(p, "reason", json_string(plan->reason));
    return p;
}

static json_t *
db_result(const lh_ingest_db_opts *o, const lh_pg_src *s, const json_t *committed,
          const lh_pg_piped *piped, const lh_pg_plan *plan, const char *snapshot_at,
          const char *new_wm, int64_t t_start)
{
    return json_pack(
        "{s:s, s:O, s:I, s:O, s:O, s:O, s:s, s:s, s:s, s:o, s:o, s:{s:I, s:I, s:I}}", "dataset",
        o->dataset, "version", json_object_get(committed, "version"), "rows",
        (json_int_t)piped->rows, "total_rows", json_object_get(committed, "row_count"), "columns",
        json_object_get(committed, "columns"), "files", json_object_get(committed, "files"),
        "source", s->dsn.redacted, "snapshot_at", snapshot_at, "method", method_name(o->method),
        "watermark", watermark_json(o->since_column, new_wm), "parallel", plan_json(plan),
        "timings_ms", "read", (json_int_t)(piped->read_us / 1000), "convert",
        (json_int_t)(piped->convert_us / 1000), "total",
        (json_int_t)((lh_mono_us() - t_start) / 1000));
}

/* Open the streams' connections (srcs[1..plan->streams)) in the snapshot of the leader
 * srcs[0], which stays open meanwhile, and give each stream its SELECT: the source limited
 * to its slice, renamed and filtered like the whole (selects, new each). */
static int
open_streams(lh_pg_src *srcs, char **selects, const lh_pg_plan *plan, const char *src,
             const lh_pg_col *cols, int n_cols, const char *where, const lh_ingest_db_opts *o,
             lh_err *err)
{
    char *snapshot_id = NULL;
    int rc = 0;
    if (plan->streams > 1 && (rc = lh_ingest__pg_export_snapshot(&srcs[0], &snapshot_id, err)) != 0)
        return rc;
    for (int i = 1; i < plan->streams && rc == 0; i++)
        rc = lh_ingest__pg_join(&srcs[i], o, snapshot_id, plan->streams, err);
    free(snapshot_id);
    for (int i = 0; i < plan->streams && rc == 0; i++) {
        char *slice = lh_ingest__pg_slice_sql(src, plan->pages, plan->streams, i);
        char *from_slice = from_source(slice, n_cols);
        selects[i] = select_sql(cols, n_cols, from_slice, where);
        free(from_slice);
        free(slice);
    }
    return rc;
}

int
lh_ingest_db(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets, const lh_ingest_db_opts *o,
             json_t **result, lh_err *err)
{
    int64_t t_start = lh_mono_us();
    lh_pg_src srcs[LH_PG_MAX_PARALLEL];
    char *selects[LH_PG_MAX_PARALLEL] = {0};
    for (int i = 0; i < LH_PG_MAX_PARALLEL; i++)
        srcs[i] = (lh_pg_src){.what = o->query ? "the query" : "the table"};
    lh_pg_src *s = &srcs[0]; /* the leader: its snapshot is everyone's */
    lh_ingest__target t;
    lh_pg_col *cols = NULL;
    int n_cols = 0;
    Oid relid = 0;
    char *src = NULL, *where = NULL;
    char *new_wm = NULL, *snapshot_at = NULL, *from_src = NULL;
    json_t *committed = NULL;
    lh_pg_piped piped = {0};
    lh_pg_plan plan = {0};
    int asked = o->parallel > 0 ? o->parallel : lh_ingest_db_parallel_default();
    if (asked > LH_PG_MAX_PARALLEL)
        asked = LH_PG_MAX_PARALLEL;

    int rc = lh_ingest__begin(cat, buckets, o->dataset, o->bucket, o->mode, o->job != NULL,
                              o->allow_bucket, o->allow_ctx, &t, err);
    if (rc != 0)
        goto out;
    t.eng = eng;
    if ((rc = lh_catalog_check_required(cat, o->metadata, t.cur, err)) != 0)
        goto out;
    if (o->job)
        lh_job_progress(o->job, 0, -1, "rows");
    if ((rc = lh_ingest__pg_open(s, o, &snapshot_at, err)) != 0 ||
        (rc = lh_ingest__pg_source_sql(s, o, &src, &relid, err)) != 0 ||
        (rc = lh_ingest__pg_describe(s, src, &cols, &n_cols, err)) != 0)
        goto out;
    from_src = from_source(src, n_cols);

    const char *wm = NULL;
    if (o->since_column) {
        wm = o->mode == LH_INGEST_APPEND ? old_watermark(t.cur, o->since_column) : NULL;
        if ((rc = watermark_range(s, cols, n_cols, o->since_column, from_src, wm, &where, &new_wm,
                                  err)) != 0)
            goto out;
        if (wm && !new_wm) { /* nothing newer: no new version */
            *result = json_pack("{s:s, s:O, s:i, s:b, s:s, s:s, s:o}", "dataset", o->dataset,
                                "version", json_object_get(t.cur, "version"), "rows", 0,
                                "unchanged", 1, "source", s->dsn.redacted, "snapshot_at",
                                snapshot_at, "watermark", watermark_json(o->since_column, wm));
            goto out;
        }
    }

    if ((rc = lh_ingest__pg_plan(s, relid, asked, &plan, err)) != 0 ||
        (rc = open_streams(srcs, selects, &plan, src, cols, n_cols, where, o, err)) != 0 ||
        (rc = lh_ingest__pg_pipeline(srcs, selects, plan.streams, cols, n_cols, &t, cat, eng, o,
                                     &piped, err)) != 0)
        goto out;
    /* the lineage keeps the new watermark, or the last one when no row was newer */
    json_t *lineage = db_lineage(o, s, snapshot_at, new_wm ? new_wm : wm);
    if ((rc = lh_ingest__commit(&t, piped.columns, o->metadata, lineage, o->actor, &committed,
                                err)) != 0)
        goto out;
    if (o->job)
        lh_job_progress(o->job, piped.rows, piped.rows, "rows");
    *result = db_result(o, s, committed, &piped, &plan, snapshot_at, new_wm, t_start);
    json_object_set(*result, "journal", t.journal);
out:
    for (int i = 0; i < LH_PG_MAX_PARALLEL; i++) {
        lh_ingest__pg_close(&srcs[i]);
        free(selects[i]);
    }
    lh_ingest__end(&t);
    lh_ingest__pg_plan_free(&plan);
    lh_ingest__pg_cols_free(cols, n_cols);
    json_decref(committed);
    json_decref(piped.columns);
    free(src);
    free(from_src);
    free(where);
    free(new_wm);
    free(snapshot_at);
    return rc;
}
