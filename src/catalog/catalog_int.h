/*
 * catalog_int.h — the catalog's internals, shared by its files (catalog.c: index, manifests,
 * commits; rows_sql.c: merge-on-read SQL; journal.c: the events journal). Not for use
 * outside src/catalog/.
 */
#ifndef LH_CATALOG_INT_H
#define LH_CATALOG_INT_H

#include "catalog/catalog.h"

#include <pthread.h>

typedef struct dataset {
    char name[LH_NAME_MAX];
    char bucket[80];
    json_t *manifest; /* newest version */
    bool writing;
    char **pinned; /* cache paths the view reads */
    size_t n_pinned;
} dataset;

struct lh_catalog {
    pthread_mutex_t lock;
    pthread_cond_t writer_done;
    dataset **items;
    size_t n, cap;
    lh_buckets *buckets;
    lh_engine *engine; /* internal work: manifests, footers, conversions */
    lh_engine *views;  /* where users' SQL runs: the dataset views live here */
    lh_cache *cache;
    char *work_dir;
    int64_t load_ms;
    int load_errors;
    /* the events journal (journal.c): committed events batches, guarded by `lock` */
    json_t *journal; /* [{"bucket", "key", "path" (local, pinned), "dataset", "version"}] */
    int64_t retain_versions_s; /* snapshot retention for the sweep; 0: keep every version */
};

struct lh_txn {
    lh_catalog *cat;
    dataset *ds;
    bool created; /* ds was made for this transaction */
};

/* A string member of a JSON object, "" when missing; an integer member, 0 when missing. */
static inline const char *
str_of(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static inline int64_t
int_of(const json_t *obj, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(obj, key));
}

/* Markers for events batches whose version expired (journal.c, the sweep). */
#define LH_JOURNAL_CONFIRMED LH_LAYOUT_JOURNAL "confirmed/"


/* Read manifest `version` of dataset `name` in `bucket` (new). */
int lh_catalog__load_manifest(lh_catalog *c, const char *bucket, const char *name, int64_t version,
                              json_t **out, lh_err *err);

/* Journal (journal.c). Load the committed events batches of every bucket and define the
 * `_events` view; called once at open. */
void lh_catalog__journal_load(lh_catalog *c);
/* After manifest m committed: add its events batch, if it has one, and refresh the view. */
void lh_catalog__journal_add(lh_catalog *c, const json_t *m);
void lh_catalog__journal_free(lh_catalog *c);

#endif
