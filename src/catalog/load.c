/*
 * load.c — loading the index at open: the newest manifest of every dataset of a bucket,
 * read many at a time.
 *
 * Reading one manifest is a DuckDB statement of its own (a connection, a parse, a bind,
 * a Parquet footer); at 10,000 datasets those statements were the start. So manifests
 * are read in batches (LOAD_BATCH files in one read_parquet statement, split back by
 * file name), and the batches by up to `load_threads` threads at once (remote buckets:
 * the downloads into the cache overlap too). A batch that DuckDB cannot read as a whole
 * (one damaged file fails the statement) is read again one manifest at a time through
 * lh_catalog__load_newest_valid, so each bad manifest gets its own error (and its
 * dataset the newest readable version, with a warning) and the others load. Every
 * manifest is checked as one read alone would be (lh_catalog__check_manifest, and its
 * name and version must be the key's).
 *
 * Datasets whose manifest the catalog checkpoint holds never come here (checkpoint.c).
 *
 * Thread safety: workers share an atomic batch counter; each takes the catalog lock only
 * to add a dataset and count an error, never across I/O.
 */
#include "catalog/catalog_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_BATCH 64 /* manifests per read_parquet statement */

typedef struct loader {
    lh_catalog *c;
    const char *bucket;
    lh_store *store;
    const char **names; /* borrowed from `latest` */
    int64_t *versions;
    int64_t *sizes; /* of each newest manifest object, 0 when not known */
    size_t n;
} loader;

static void
count_error(lh_catalog *c)
{
    pthread_mutex_lock(&c->lock);
    c->load_errors++;
    pthread_mutex_unlock(&c->lock);
}

/* Add dataset `name` with manifest m and its warnings (NULL: none; takes ownership of
 * both) to the index, newest being the newest version its bucket holds, and give it its
 * view. */
void
lh_catalog__add_loaded(lh_catalog *c, const char *bucket, const char *name, int64_t newest,
                       int64_t bytes, json_t *m, json_t *warnings)
{
    lh_err err;
    pthread_mutex_lock(&c->lock);
    dataset *existing = lh_catalog__find_locked(c, name);
    if (existing) {
        c->load_errors++;
        pthread_mutex_unlock(&c->lock);
        lh_log(LH_LOG_ERROR, NULL, NULL,
               "catalog: dataset '%s' exists in buckets '%s' and '%s'; keeping '%s'", name,
               existing->bucket, bucket, existing->bucket);
        json_decref(m);
        json_decref(warnings);
        return;
    }
    dataset *ds = lh_catalog__add_locked(c, name, bucket);
    ds->manifest = m;
    ds->newest_version = newest;
    ds->warnings = warnings;
    ds->manifest_bytes = bytes;
    pthread_mutex_unlock(&c->lock);
    /* no writer yet: the catalog is still opening, and only the loader knows ds */
    if (lh_catalog__refresh_view(c, ds, &err) != 0) {
        lh_log(LH_LOG_ERROR, NULL, NULL, "catalog: no view for dataset '%s': %s %s", name,
               err.message, err.detail);
        count_error(c);
    }
}

/* One dataset on its own: its own statements, its own error. An unreadable newest
 * manifest falls back to the newest readable one, with a warning. */
static void
load_one(loader *l, size_t i)
{
    json_t *m = NULL, *warnings = NULL;
    lh_err err;
    if (lh_catalog__load_newest_valid(l->c, l->bucket, l->names[i], l->versions[i], &m, &warnings,
                                      &err) != 0) {
        lh_log(LH_LOG_ERROR, NULL, NULL, "catalog: cannot load dataset '%s' from '%s': %s %s",
               l->names[i], l->bucket, err.message, err.detail);
        count_error(l->c);
        return;
    }
    /* the size listed is the newest manifest's; an older one served has none known */
    lh_catalog__add_loaded(l->c, l->bucket, l->names[i], l->versions[i], warnings ? 0 : l->sizes[i],
                           m, warnings);
}

/* The manifest of dataset i among the rows of a batch (rows of its file only), checked;
 * NULL when it is not a valid manifest of that name and version. */
static json_t *
batch_manifest(loader *l, size_t i, const json_t *rows)
{
    lh_err ignored;
    json_t *m = lh_catalog__manifest_of_rows(rows, l->bucket);
    if (m &&
        (strcmp(str_of(m, "name"), l->names[i]) != 0 || int_of(m, "version") != l->versions[i] ||
         lh_catalog__check_manifest(l->c, m, &ignored) != 0)) {
        json_decref(m);
        m = NULL;
    }
    return m;
}

/* Datasets [from, to) in one statement; those it cannot give are loaded one by one. */
static void
load_batch(loader *l, size_t from, size_t to)
{
    size_t n = to - from;
    char **paths = lh_calloc(n, sizeof *paths);
    json_t *rows = NULL, *by_file = json_object();
    lh_buf sql;
    lh_buf_init(&sql);
    lh_err ignored;
    size_t n_read = 0;
    lh_buf_puts(&sql, "SELECT * FROM read_parquet([");
    for (size_t k = 0; k < n; k++) {
        char *key = lh_layout_manifest_key(l->names[from + k], l->versions[from + k]);
        if (lh_cache_local_path(l->c->cache, l->store, key, true, &paths[k], &ignored) == 0) {
            lh_buf_puts(&sql, n_read++ ? ", " : "");
            lh_sql_quote(&sql, paths[k]);
        }
        free(key);
    }
    lh_buf_puts(&sql,
                "], filename = true, union_by_name = true) ORDER BY filename, record, position");
    if (n_read > 0 && lh_engine_rows(l->c->engine, sql.data, &rows, &ignored) == 0) {
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r)
        {
            const char *file = str_of(r, "filename");
            json_t *list = json_object_get(by_file, file);
            if (list == NULL)
                json_object_set_new_nocheck(by_file, file, list = json_array());
            json_array_append(list, r);
        }
    }
    pthread_mutex_lock(&l->c->lock);
    l->c->manifests_read += (int64_t)n;
    pthread_mutex_unlock(&l->c->lock);
    for (size_t k = 0; k < n; k++) {
        json_t *list = paths[k] ? json_object_get(by_file, paths[k]) : NULL;
        json_t *m = list ? batch_manifest(l, from + k, list) : NULL;
        if (m)
            lh_catalog__add_loaded(l->c, l->bucket, l->names[from + k], l->versions[from + k],
                                   l->sizes[from + k], m, NULL);
        else
            load_one(l, from + k); /* says what is wrong with it */
    }
    for (size_t k = 0; k < n; k++)
        if (paths[k]) {
            lh_cache_unpin(l->c->cache, paths[k]);
            free(paths[k]);
        }
    free(paths);
    json_decref(by_file);
    json_decref(rows);
    lh_buf_free(&sql);
}

typedef struct parallel {
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    size_t n;
    atomic_size_t next;
} parallel;

static void *
parallel_worker(void *arg)
{
    parallel *p = arg;
    for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n;)
        p->fn(p->ctx, i);
    return NULL;
}

void
lh_catalog__each_parallel(lh_catalog *c, size_t n, size_t per_thread,
                          void (*fn)(void *ctx, size_t i), void *ctx)
{
    parallel p = {.fn = fn, .ctx = ctx, .n = n};
    atomic_init(&p.next, 0);
    size_t n_threads = c->load_threads > 1 ? (size_t)c->load_threads : 1;
    if (per_thread > 0 && n_threads > (n + per_thread - 1) / per_thread)
        n_threads = n ? (n + per_thread - 1) / per_thread : 1;
    pthread_t *threads = lh_calloc(n_threads, sizeof *threads);
    size_t started = 0;
    /* the calling thread is one of the workers; a thread that does not start is one less */
    for (; started + 1 < n_threads; started++)
        if (pthread_create(&threads[started], NULL, parallel_worker, &p) != 0)
            break;
    parallel_worker(&p);
    for (size_t t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    free(threads);
}

/* lh_catalog__each_parallel: batch b of the loader ctx. */
static void
load_one_batch(void *ctx, size_t b)
{
    loader *l = ctx;
    size_t from = b * LOAD_BATCH;
    load_batch(l, from, from + LOAD_BATCH < l->n ? from + LOAD_BATCH : l->n);
}

void
lh_catalog__load_datasets(lh_catalog *c, const char *bucket, const json_t *latest,
                          const json_t *sizes)
{
    lh_err err;
    loader l = {.c = c, .bucket = bucket, .n = json_object_size(latest)};
    if (l.n == 0)
        return;
    if ((l.store = lh_buckets_get(c->buckets, bucket, &err)) == NULL) {
        lh_log(LH_LOG_ERROR, NULL, NULL, "catalog: cannot open bucket '%s': %s", bucket,
               err.message);
        count_error(c);
        return;
    }
    l.names = lh_calloc(l.n, sizeof *l.names);
    l.versions = lh_calloc(l.n, sizeof *l.versions);
    l.sizes = lh_calloc(l.n, sizeof *l.sizes);
    size_t i = 0;
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)latest, name, v)
    {
        l.names[i] = name;
        l.sizes[i] = json_integer_value(json_object_get(sizes, name));
        l.versions[i++] = json_integer_value(v);
    }
    lh_catalog__each_parallel(c, (l.n + LOAD_BATCH - 1) / LOAD_BATCH, 1, load_one_batch, &l);
    free(l.sizes);
    free(l.versions);
    free(l.names);
}
