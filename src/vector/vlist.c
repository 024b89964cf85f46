/*
 * vlist.c — describing, listing and dropping indexes. Descriptions come from the registry
 * (under v->lock) and, for one index, the committed generations found in its bucket.
 * Dropping takes the index out of the registry first (searches in flight keep their
 * generation), then deletes its descriptors and then its other files, so an interrupted
 * drop leaves only garbage that the next start removes.
 */
#include "vector/vector_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *
describe_locked(const lh_vidx *x)
{
    json_t *j = json_deep_copy(x->spec);
    json_object_set_new(j, "state", json_string(x->live ? "ready" : "building"));
    json_object_set_new(j, "building", json_boolean(x->building));
    json_object_set_new(j, "bucket", json_string(x->bucket));
    const lh_vgen *g = x->live;
    if (g) {
        static const char *const copy[] = {
            "model_version", "dim",           "created_at", "dataset_version",
            "skipped_rows",  "build_seconds", NULL};
        for (size_t i = 0; copy[i]; i++)
            if (json_object_get(g->desc, copy[i]))
                json_object_set(j, copy[i], json_object_get(g->desc, copy[i]));
        json_object_set_new(j, "generation", json_integer(g->generation));
        json_object_set_new(j, "vectors", json_integer((json_int_t)g->n));
        json_object_set_new(j, "documents", json_integer((json_int_t)g->n_docs));
        json_object_set_new(j, "memory_bytes", json_integer((json_int_t)lh_vgen__memory(g)));
        /* what the graph walk reads per vector, and the float vectors left in the file */
        json_object_set_new(j, "quantization",
                            json_string(lh_quant_name(lh_hnsw_get_params(g->hnsw).quant)));
        json_object_set_new(j, "vector_bytes",
                            json_integer((json_int_t)lh_hnsw_vector_bytes(g->hnsw)));
        json_object_set_new(j, "mapped_vector_bytes",
                            json_integer((json_int_t)lh_hnsw_mapped_bytes(g->hnsw)));
        json_object_set_new(j, "sidecar", json_string(g->hnsw_path ? "mapped" : "in_memory"));
        json_object_set_new(j, "texts", json_string(g->texts ? "in_memory" : "read_from_file"));
        json_object_set_new(
            j, "text_index",
            g->bm25
                ? json_pack("{s:I, s:I, s:s}", "terms", (json_int_t)g->bm25->n_terms, "postings",
                            (json_int_t)g->bm25->n_postings, "source", g->bm25->source)
                : json_null());
    }
    return j;
}

json_t *
lh_vectors_list(lh_vectors *v)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&v->lock);
    for (lh_vidx *x = v->list; x; x = x->next)
        json_array_append_new(arr, describe_locked(x));
    pthread_mutex_unlock(&v->lock);
    return arr;
}

static int
on_gen_desc(void *ctx, const lh_list_entry *e)
{
    json_t *gens = ctx;
    char index[LH_NAME_MAX];
    int64_t generation = 0;
    const char *file = NULL;
    if (lh_layout_parse_vector_key(e->key, index, sizeof index, &generation, &file) == 0 &&
        generation > 0 && strcmp(file, "index.json") == 0)
        json_array_append_new(gens, json_pack("{s:I}", "generation", (json_int_t)generation));
    return 0;
}

int
lh_vectors_get(lh_vectors *v, const char *name, json_t **out, lh_err *err)
{
    pthread_mutex_lock(&v->lock);
    lh_vidx *x = lh_vectors__find_locked(v, name);
    json_t *j = x ? describe_locked(x) : NULL;
    int64_t live = x && x->live ? x->live->generation : 0;
    char bucket[LH_NAME_MAX] = "";
    if (x)
        snprintf(bucket, sizeof bucket, "%s", x->bucket);
    pthread_mutex_unlock(&v->lock);
    if (!j)
        return lh_vectors__no_index(err, name);
    /* every committed generation in the bucket */
    json_t *gens = json_array();
    char *prefix = lh_layout_index_prefix(name);
    lh_err lerr;
    if (lh_store_each(lh_vectors__store(v, bucket), prefix, on_gen_desc, gens, &lerr) != 0)
        lh_log_err(LH_LOG_WARN, NULL, &lerr);
    free(prefix);
    size_t i;
    json_t *g;
    json_array_foreach(gens, i, g)
    {
        json_object_set_new(
            g, "live", json_boolean(json_integer_value(json_object_get(g, "generation")) == live));
    }
    json_object_set_new(j, "generations", gens);
    *out = j;
    return 0;
}

static int
collect_key(void *ctx, const lh_list_entry *e)
{
    json_t *keys = ctx;
    json_array_append_new(keys, json_string(e->key));
    return 0;
}

/* Take name out of the registry (409 while it builds); bucket gets where it lived. */
static int
unlist(lh_vectors *v, const char *name, char *bucket, lh_err *err)
{
    pthread_mutex_lock(&v->lock);
    lh_vidx *x = lh_vectors__find_locked(v, name);
    if (!x || x->building) {
        pthread_mutex_unlock(&v->lock);
        if (!x)
            return lh_vectors__no_index(err, name);
        lh_err_set(err, LH_EEXIST, 409, "index_building", "index '%s' is being built", name);
        lh_err_hint(err, "wait for the build's job to finish, or cancel it");
        return LH_EEXIST;
    }
    for (lh_vidx **link = &v->list; *link; link = &(*link)->next)
        if (*link == x) {
            *link = x->next;
            break;
        }
    snprintf(bucket, LH_NAME_MAX, "%s", x->bucket);
    pthread_mutex_unlock(&v->lock);
    lh_vidx__free(x); /* searches in flight keep their generation alive */
    return 0;
}

static bool
is_descriptor(const char *key)
{
    char index[LH_NAME_MAX];
    int64_t generation = 0;
    const char *file = NULL;
    return lh_layout_parse_vector_key(key, index, sizeof index, &generation, &file) == 0 &&
           generation > 0 && strcmp(file, "index.json") == 0;
}

int
lh_vectors_drop(lh_vectors *v, const char *name, lh_err *err)
{
    json_t *keys = json_array();
    char *prefix = lh_layout_index_prefix(name);
    char bucket[LH_NAME_MAX];
    int rc = unlist(v, name, bucket, err);
    if (rc != 0)
        goto out;
    /* descriptors first: once they are gone, what is left is garbage a restart removes */
    if ((rc = lh_store_each(lh_vectors__store(v, bucket), prefix, collect_key, keys, err)) != 0)
        goto out;
    for (int pass = 0; pass < 2; pass++) {
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k)
        {
            const char *key = json_string_value(k);
            if (is_descriptor(key) != (pass == 0))
                continue;
            if ((rc = lh_vectors__delete(v, bucket, key, err)) == LH_ENOTFOUND)
                rc = 0;
            if (rc != 0)
                goto out;
        }
    }
out:
    free(prefix);
    json_decref(keys);
    return rc;
}

/* ---- what a principal's SQL sees of the trials ----------------------------------------- */

lh_resolved
lh_vectors_trials_guard(void *ctx, const lh_catalog_view *view, const char *select, lh_buf *out)
{
    lh_vectors *v = ctx;
    /* the pairs first, then the catalog (its lock is not taken under ours) */
    json_t *pairs = json_array();
    pthread_mutex_lock(&v->lock);
    for (lh_vidx *x = v->list; x; x = x->next)
        json_array_append_new(pairs, json_pack("[s,s]", x->name, x->dataset));
    pthread_mutex_unlock(&v->lock);
    lh_buf_printf(out, "SELECT * FROM (%s) AS lh_trials WHERE \"index\" IN (", select);
    size_t i, n = 0;
    json_t *pair;
    json_array_foreach(pairs, i, pair)
    {
        if (!lh_catalog_may_see(view->catalog, view->who,
                                json_string_value(json_array_get(pair, 1))))
            continue;
        lh_buf_puts(out, n++ ? ", " : "");
        lh_sql_quote(out, json_string_value(json_array_get(pair, 0)));
    }
    lh_buf_puts(out, n ? ")" : "NULL)");
    json_decref(pairs);
    return LH_RESOLVE_REWRITTEN;
}
