/*
 * pg_slices.c — how many streams read a PostgreSQL source, and which rows each one reads.
 *
 * A table is split like pg_dump -j splits a dump: several connections in one snapshot
 * (the leader exports it, the others import it: pg_conn.c), each copying a slice of the
 * table. A slice is a range of the table's pages, selected by its ctid with a TID range
 * scan (PostgreSQL 14 or later), so each backend reads only its own pages. The page
 * count is the table's size when the leader reads it; pages added later hold only rows
 * the snapshot cannot see, and the last slice has no end anyway, so every row the
 * snapshot sees is in exactly one slice. A partitioned table's slices apply to each
 * partition (sized by the largest); an inheritance parent's to each child.
 *
 * Not split, and the plan says why: a query (it has no ctid to range over), a server
 * before 14, a view or foreign table (or a partitioned table with foreign partitions),
 * and a table too small for more streams (LH_PG_MIN_SLICE_PAGES each). Used by one
 * thread at a time.
 */
#include "ingest/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
lh_ingest__pg_slice_count(int64_t pages, int asked)
{
    int64_t worth = pages / LH_PG_MIN_SLICE_PAGES;
    if (asked < 1)
        asked = 1;
    return worth < 1 ? 1 : worth < asked ? (int)worth : asked;
}

int64_t
lh_ingest__pg_slice_start(int64_t pages, int n, int i)
{
    return pages * i / n;
}

char *
lh_ingest__pg_slice_sql(const char *src, int64_t pages, int n, int i)
{
    if (n <= 1)
        return lh_strdup(src);
    int64_t start = lh_ingest__pg_slice_start(pages, n, i);
    int64_t end = lh_ingest__pg_slice_start(pages, n, i + 1);
    if (i == 0)
        return lh_sprintf("%s WHERE ctid < '(%lld,0)'::tid", src, (long long)end);
    if (i == n - 1)
        return lh_sprintf("%s WHERE ctid >= '(%lld,0)'::tid", src, (long long)start);
    return lh_sprintf("%s WHERE ctid >= '(%lld,0)'::tid AND ctid < '(%lld,0)'::tid", src,
                      (long long)start, (long long)end);
}

void
lh_ingest__pg_plan_free(lh_pg_plan *plan)
{
    free(plan->reason);
    plan->reason = NULL;
}

/* The relation's kind, whether it has partitions that cannot be split, and its pages
 * (the largest partition's for a partitioned table), read in the snapshot. */
static int
relation_size(lh_pg_src *s, Oid relid, char *kind, bool *foreign_leaves, int64_t *pages,
              lh_err *err)
{
    char oid_text[16];
    snprintf(oid_text, sizeof oid_text, "%u", relid);
    const char *params[1] = {oid_text};
    PGresult *res = lh_ingest__pg_run(
        s,
        "SELECT c.relkind, CASE WHEN c.relkind = 'p' THEN EXISTS (SELECT 1 FROM "
        "pg_catalog.pg_partition_tree(c.oid) t JOIN pg_catalog.pg_class l ON l.oid = t.relid "
        "WHERE t.isleaf AND l.relkind NOT IN ('r', 'm')) ELSE false END, "
        "CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(max(pg_catalog.pg_relation_size("
        "t.relid)), 0) FROM pg_catalog.pg_partition_tree(c.oid) t WHERE t.isleaf) "
        "ELSE pg_catalog.pg_relation_size(c.oid) END "
        "/ pg_catalog.current_setting('block_size')::bigint "
        "FROM pg_catalog.pg_class c WHERE c.oid = $1::oid",
        1, params, PGRES_TUPLES_OK, "sizing the table", err);
    if (!res)
        return err->rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return lh_err_set(err, LH_ENOTFOUND, 404, "source_table_not_found",
                          "the table went away while it was read");
    }
    *kind = PQgetvalue(res, 0, 0)[0];
    *foreign_leaves = PQgetvalue(res, 0, 1)[0] == 't';
    *pages = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    return 0;
}

int
lh_ingest__pg_plan(lh_pg_src *s, Oid relid, int asked, lh_pg_plan *plan, lh_err *err)
{
    memset(plan, 0, sizeof *plan);
    plan->asked = asked;
    plan->streams = 1;
    if (asked <= 1)
        return 0;
    if (relid == 0) {
        plan->reason = lh_strdup("a query is read with one stream; only a table is split");
        return 0;
    }
    if (PQserverVersion(s->conn) < 140000) {
        plan->reason = lh_strdup("PostgreSQL before 14 has no TID range scans to split a table "
                                 "by; it is read with one stream");
        return 0;
    }
    char kind = 0;
    bool foreign_leaves = false;
    int rc = relation_size(s, relid, &kind, &foreign_leaves, &plan->pages, err);
    if (rc != 0)
        return rc;
    if (kind != 'r' && kind != 'm' && kind != 'p')
        plan->reason = lh_strdup(kind == 'v'   ? "a view is read with one stream"
                                 : kind == 'f' ? "a foreign table is read with one stream"
                                               : "only tables are split");
    else if (foreign_leaves)
        plan->reason = lh_strdup("a partitioned table with foreign partitions is read with "
                                 "one stream");
    else if ((plan->streams = lh_ingest__pg_slice_count(plan->pages, asked)) < asked)
        plan->reason = lh_sprintf("the table%s has %lld pages and a stream reads at least %d",
                                  kind == 'p' ? "'s largest partition" : "", (long long)plan->pages,
                                  LH_PG_MIN_SLICE_PAGES);
    return 0;
}
