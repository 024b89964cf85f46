/*
 * views.c — each live dataset is a name in the users' engine, resolved on demand to the
 * SELECT of its rows (lh_engine_set_dataset: nothing runs in DuckDB until a statement
 * names it), over local copies of its files (fs: in place; remote: cached and pinned for
 * as long as the name reads them).
 */
#include "catalog/catalog_int.h"

#include <stdlib.h>
#include <string.h>

void
lh_catalog__unpin_all(lh_catalog *c, dataset *ds)
{
    for (size_t i = 0; i < ds->n_pinned; i++) {
        if (ds->pinned[i])
            lh_cache_unpin(c->cache, ds->pinned[i]);
        free(ds->pinned[i]);
    }
    free(ds->pinned);
    ds->pinned = NULL;
    ds->n_pinned = 0;
}

/* Local copies of m's files that hold rows (fs: in place; remote: cached and pinned),
 * NULL for the others; *out (new) is released with lh_catalog__unpin_paths. */
int
lh_catalog__pin_paths(lh_catalog *c, lh_store *store, const json_t *m, char ***out, lh_err *err)
{
    json_t *files = json_object_get(m, "files");
    size_t n = json_array_size(files);
    char **paths = lh_calloc(n ? n : 1, sizeof *paths);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *f = json_array_get(files, i);
        if (lh_catalog_file_has_rows(f))
            rc = lh_cache_local_path(c->cache, store, str_of(f, "path"), true, &paths[i], err);
    }
    if (rc == 0) {
        *out = paths;
        paths = NULL;
    }
    lh_catalog_unpin_rows(c, paths, n);
    return rc;
}

void
lh_catalog_unpin_rows(lh_catalog *c, char **paths, size_t n)
{
    for (size_t i = 0; paths && i < n; i++) {
        if (paths[i])
            lh_cache_unpin(c->cache, paths[i]);
        free(paths[i]);
    }
    free(paths);
}

void
lh_catalog__unpin_paths(lh_catalog *c, const json_t *m, char **paths)
{
    lh_catalog_unpin_rows(c, paths, json_array_size(json_object_get(m, "files")));
}

int
lh_catalog_pin_rows(lh_catalog *c, const json_t *m, char ***paths, size_t *n, lh_err *err)
{
    lh_store *store = lh_buckets_get(c->buckets, str_of(m, "bucket"), err);
    if (store == NULL)
        return LH_ENOTFOUND;
    int rc = lh_catalog__pin_paths(c, store, m, paths, err);
    if (rc == 0)
        *n = json_array_size(json_object_get(m, "files"));
    return rc;
}

/* (Re)define the view of a live dataset, or drop it when deleted. Caller holds no lock
 * but is the dataset's only writer (or the loader). */
int
lh_catalog__refresh_view(lh_catalog *c, dataset *ds, lh_err *err)
{
    const json_t *m = ds->manifest;
    size_t n = json_array_size(json_object_get(m, "files"));
    char **paths = NULL, *select = NULL;
    int rc = 0;
    if (strcmp(str_of(m, "state"), "live") != 0) {
        if ((rc = lh_engine_set_dataset(c->views, ds->name, NULL, err)) == 0)
            lh_catalog__unpin_all(c, ds);
        goto out;
    }
    lh_store *store = lh_buckets_get(c->buckets, ds->bucket, err);
    if (store == NULL) {
        rc = LH_ENOTFOUND;
        goto out;
    }
    if ((rc = lh_catalog__pin_paths(c, store, m, &paths, err)) != 0)
        goto out;
    select = lh_catalog_rows_sql(m, paths);
    if ((rc = lh_engine_set_dataset(c->views, ds->name, select, err)) != 0)
        goto out;
    lh_catalog__unpin_all(c, ds); /* the old view's files */
    ds->pinned = paths;
    ds->n_pinned = n;
    paths = NULL;
out:
    lh_catalog_unpin_rows(c, paths, n);
    free(select);
    return rc;
}
