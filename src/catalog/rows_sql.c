/*
 * rows_sql.c — the SQL that gives a manifest's rows: its base files, with merge-on-read
 * of its delta files (ADR-009) when it has any.
 *
 * A delta file holds the dataset's columns plus `_op` ('upsert' | 'delete') and `_seq`
 * (the version that wrote it); an upsert row is the whole row as it is after the change.
 * The newest delta row of each key wins; a base row survives only when no delta touches
 * its key (an anti join against the small delta side, so the base keeps its scan
 * pushdowns); 'delete' rows hide their key. Files of other kinds (the commit's events
 * batch) are not rows of the dataset.
 */
#include "catalog/catalog_int.h"

#include <string.h>

bool
lh_catalog_file_has_rows(const json_t *file)
{
    const char *kind = str_of(file, "kind");
    return strcmp(kind, "base") == 0 || strcmp(kind, "delta") == 0;
}

void
lh_catalog_drop_events(json_t *manifest)
{
    json_t *files = json_object_get(manifest, "files");
    for (size_t i = json_array_size(files); i > 0; i--)
        if (strcmp(str_of(json_array_get(files, i - 1), "kind"), "events") == 0)
            json_array_remove(files, i - 1);
}

static void
file_list(lh_buf *sql, const json_t *files, char *const *paths, const char *kind)
{
    lh_buf_puts(sql, "read_parquet([");
    size_t i, n = 0;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        if (strcmp(str_of(f, "kind"), kind) != 0 || paths[i] == NULL)
            continue;
        if (n++)
            lh_buf_puts(sql, ", ");
        lh_sql_quote(sql, paths[i]);
    }
    /* files of a dataset share one schema (append checks it): no union_by_name, which
     * would cost plans their pushdowns */
    lh_buf_puts(sql, "])");
}

static size_t
count_kind(const json_t *files, char *const *paths, const char *kind)
{
    size_t i, n = 0;
    json_t *f;
    json_array_foreach(files, i, f) n += strcmp(str_of(f, "kind"), kind) == 0 && paths[i] != NULL;
    return n;
}

static void
column_list(lh_buf *sql, const json_t *columns, const char *prefix)
{
    size_t i;
    json_t *c;
    json_array_foreach(columns, i, c)
    {
        if (i)
            lh_buf_puts(sql, ", ");
        lh_buf_puts(sql, prefix);
        lh_sql_ident(sql, str_of(c, "name"));
    }
}

char *
lh_catalog_rows_sql(const json_t *m, char *const *paths)
{
    const json_t *files = json_object_get(m, "files");
    const json_t *columns = json_object_get(m, "columns");
    const json_t *key = json_object_get(json_object_get(m, "metadata"), "primary_key");
    size_t n_base = count_kind(files, paths, "base"), n_delta = count_kind(files, paths, "delta");
    lh_buf sql;
    lh_buf_init(&sql);
    if (n_base == 0 && n_delta == 0) { /* an empty relation with the dataset's columns */
        size_t i;
        json_t *c;
        lh_buf_puts(&sql, "SELECT ");
        json_array_foreach(columns, i, c)
        {
            lh_buf_printf(&sql, "%sNULL::%s AS ", i ? ", " : "", str_of(c, "type"));
            lh_sql_ident(&sql, str_of(c, "name"));
        }
        if (json_array_size(columns) == 0)
            lh_buf_puts(&sql, "NULL AS \"empty\"");
        lh_buf_puts(&sql, " WHERE false");
        return lh_buf_steal(&sql);
    }
    if (n_delta == 0) {
        lh_buf_puts(&sql, "SELECT * FROM ");
        file_list(&sql, files, paths, "base");
        return lh_buf_steal(&sql);
    }
    /* the newest delta row of each key */
    lh_buf_puts(&sql, "WITH lh_delta AS (SELECT * FROM ");
    file_list(&sql, files, paths, "delta");
    lh_buf_puts(&sql, " QUALIFY row_number() OVER (PARTITION BY ");
    size_t i;
    json_t *k;
    json_array_foreach(key, i, k)
    {
        if (i)
            lh_buf_puts(&sql, ", ");
        lh_sql_ident(&sql, json_string_value(k));
    }
    lh_buf_puts(&sql, " ORDER BY _seq DESC) = 1) ");
    if (n_base > 0) {
        lh_buf_puts(&sql, "SELECT ");
        column_list(&sql, columns, "b.");
        lh_buf_puts(&sql, " FROM ");
        file_list(&sql, files, paths, "base");
        lh_buf_puts(&sql, " AS b ANTI JOIN lh_delta AS d ON ");
        json_array_foreach(key, i, k)
        {
            lh_buf_puts(&sql, i ? " AND b." : "b.");
            lh_sql_ident(&sql, json_string_value(k));
            lh_buf_puts(&sql, " = d.");
            lh_sql_ident(&sql, json_string_value(k));
        }
        lh_buf_puts(&sql, " UNION ALL ");
    }
    lh_buf_puts(&sql, "SELECT ");
    column_list(&sql, columns, "");
    lh_buf_puts(&sql, " FROM lh_delta WHERE _op = 'upsert'");
    return lh_buf_steal(&sql);
}
