/*
 * compact.c — compaction (ADR-009): a dataset's base and delta files merged into new base
 * files as a new version. The rows are exactly those the merged view showed; the events
 * journal is not touched, and older versions keep their files for time travel.
 */
#include "ingest/ingest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t
count_deltas(const json_t *m)
{
    size_t i, n = 0;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        const char *kind = json_string_value(json_object_get(f, "kind"));
        n += kind && strcmp(kind, "delta") == 0;
    }
    return n;
}

size_t
lh_ingest_delta_count(const json_t *manifest)
{
    return count_deltas(manifest);
}

int
lh_ingest_compact(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets, const char *dataset,
                  const char *actor, bool wait, json_t **result, lh_err *err)
{
    lh_ingest__target t;
    char **paths = NULL;
    size_t n_paths = 0;
    char *rows_sql = NULL, *out = NULL;
    json_t *committed = NULL;
    int rc =
        lh_ingest__begin(cat, buckets, dataset, NULL, LH_INGEST_REPLACE, wait, NULL, NULL, &t, err);
    if (rc != 0)
        goto end;
    size_t deltas = count_deltas(t.cur);
    size_t files_before = json_array_size(json_object_get(t.cur, "files"));
    if (deltas == 0) {
        *result = json_pack("{s:s, s:O, s:b}", "dataset", dataset, "version",
                            json_object_get(t.cur, "version"), "unchanged", 1);
        goto end;
    }
    if ((rc = lh_catalog_pin_rows(cat, t.cur, &paths, &n_paths, err)) != 0)
        goto end;
    rows_sql = lh_catalog_rows_sql(t.cur, paths);
    out = lh_sprintf("%s/compact-%s.parquet", lh_catalog_work_dir(cat), t.tag);
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_printf(&sql, "COPY (%s) TO ", rows_sql);
    lh_sql_quote(&sql, out);
    lh_buf_puts(&sql, " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)");
    int64_t rows = 0;
    rc = lh_engine_exec(eng, sql.data, &rows, err);
    lh_buf_free(&sql);
    lh_catalog_unpin_rows(cat, paths, n_paths);
    paths = NULL;
    if (rc != 0 || (rc = lh_ingest__store(&t, out, rows, err)) != 0)
        goto end;
    t.change = "compact";
    t.no_journal = true; /* the same rows: nothing to journal */
    t.row_count = rows;
    json_t *columns = json_deep_copy(json_object_get(t.cur, "columns"));
    rc = lh_ingest__commit(&t, columns, NULL, NULL, actor, &committed, err);
    json_decref(columns);
    if (rc != 0)
        goto end;
    *result = json_pack("{s:s, s:O, s:O, s:I, s:I, s:I}", "dataset", dataset, "version",
                        json_object_get(committed, "version"), "row_count",
                        json_object_get(committed, "row_count"), "deltas_merged",
                        (json_int_t)deltas, "files_before", (json_int_t)files_before, "files_after",
                        (json_int_t)json_array_size(json_object_get(committed, "files")));
end:
    lh_catalog_unpin_rows(cat, paths, n_paths);
    lh_ingest__end(&t);
    if (out)
        unlink(out);
    free(out);
    free(rows_sql);
    json_decref(committed);
    return rc;
}
