/*
 * vload.c — indexes at start, and loading a committed generation from the bucket.
 *
 * At start _vectors/ of every bucket (the primary first, then the tenants; never the
 * rescue bucket) is listed once: per index, the bucket it lives in, the newest committed
 * generation (the newest with index.json) and the highest seen at all. An index lives in
 * the bucket of the dataset it indexes; one created before that rule lives in the primary
 * bucket and is loaded from there. A name found in two buckets is loaded from the first
 * and the other is logged and left alone. The live log
 * (vlive.c) says which committed generation is live; it is loaded — the embeddings
 * file's positions, documents and (within [vector] texts_in_memory_bytes) chunk texts,
 * and the sidecar mapped from the local cache. A sidecar that is missing or corrupt is
 * rebuilt from the embeddings and uploaded again (derived data, not history). A text
 * index's full-text index is read from its bm25.parquet; a generation built before there
 * was one (or whose file cannot be read) gets it built from its chunk texts, in memory
 * only: its files are not changed. Files of
 * generations above the newest descriptor are garbage from a build or a drop that died
 * (at start no build runs) and are deleted. Indexes that cannot be loaded are logged and
 * skipped. lh_vectors_open runs before anything else can see v; load_generation is also
 * called by rollback, without any lock (the result is published by the caller).
 */
#include "vector/vector_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DESC_MAX_BYTES (1 << 20)

/* ---- one generation -------------------------------------------------------------------- */

static int
on_position_batch(void *ctx, const lh_batch *b)
{
    lh_vrows *r = ctx;
    for (size_t i = 0; i < lh_batch_rows(b); i++) {
        size_t len = 0;
        int64_t pos = -1, chunk = 0;
        const char *id = lh_batch_str(b, 1, i, &len);
        if (!lh_batch_int(b, 0, i, &pos) || pos != (int64_t)r->n || id == NULL ||
            !lh_batch_int(b, 2, i, &chunk))
            return lh_err_set(r->err, LH_EINVAL, 422, "index_corrupt",
                              "the embeddings file's positions are not 0..n-1");
        size_t text_len = 0, at = r->texts.len;
        const char *text = r->keep_texts ? lh_batch_str(b, 3, i, &text_len) : NULL;
        if (text && at + text_len > r->text_budget) {
            r->keep_texts = false; /* too much to hold: searches read the file */
            lh_buf_free(&r->texts);
            lh_buf_init(&r->texts);
            text = NULL;
        }
        if (text && lh_buf_try_append(&r->texts, text, text_len) != 0)
            return lh_vrows__oom(r->err);
        if (lh_vrows__start_doc(r, id, len) != 0 || lh_vrows__add_position(r, at, text_len) != 0)
            return lh_vrows__oom(r->err);
        if (r->chunk_of[r->n - 1] != chunk)
            return lh_err_set(r->err, LH_EINVAL, 422, "index_corrupt",
                              "the embeddings file's chunks of a document are not 0, 1, ...");
    }
    return 0;
}

static int
on_vectors_batch(void *ctx, const lh_batch *b)
{
    lh_vrows *r = ctx;
    for (size_t i = 0; i < lh_batch_rows(b); i++) {
        size_t dim = 0;
        const float *vec = lh_batch_floats(b, 0, i, &dim);
        if (vec == NULL || dim != r->dim || r->n >= r->vec_cap)
            return lh_err_set(r->err, LH_EINVAL, 422, "index_corrupt",
                              "the embeddings file holds a vector of the wrong size");
        memcpy(r->vectors + r->n * r->dim, vec, dim * sizeof *vec);
        r->n++;
    }
    return 0;
}

/* Scan sql (over an embeddings file) with fn into ctx. */
static int
scan_file(lh_vectors *v, const char *select, const char *path, const char *tail, lh_batch_fn fn,
          void *ctx, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, select);
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, tail);
    lh_scan_opts opts = {.sql = sql.data};
    int rc = lh_engine_scan(v->deps.engine, &opts, fn, ctx, err);
    lh_buf_free(&sql);
    return rc;
}

/* Save g's graph and upload it as the generation's sidecar (best effort: a failure is
 * logged, and the next load rebuilds again). */
static void
reupload_sidecar(lh_vectors *v, const lh_vgen *g)
{
    char *tmp = lh_vectors__work_file(v, ".bin");
    char *key = lh_layout_gen_key(lh_vectors__spec_str(g->desc, "name"), g->generation, "hnsw.bin");
    lh_err err;
    if (lh_hnsw_save(g->hnsw, tmp, &err) != 0 ||
        lh_vectors__upload(v, g->bucket, tmp, key, 0, NULL, &err) != 0)
        lh_log_err(LH_LOG_WARN, NULL, &err);
    unlink(tmp);
    free(tmp);
    free(key);
}

/* The graph again from the embeddings file, when the sidecar is missing or corrupt; the
 * new sidecar replaces the bad one (it is derived data, not history). */
static int
rebuild_graph(lh_vectors *v, lh_vgen *g, lh_err *err)
{
    lh_vrows r;
    lh_vrows__init(&r, err);
    r.dim = (uint32_t)json_integer_value(json_object_get(g->desc, "dim"));
    r.vec_cap = g->n;
    const char *metric_name = lh_vectors__spec_str(g->desc, "metric");
    int metric = lh_metric_parse(metric_name ? metric_name : "");
    lh_hnsw_params params = lh_vectors__hnsw_params(json_object_get(g->desc, "hnsw"));
    int rc = 0;
    if (r.dim == 0) {
        rc = lh_err_set(err, LH_EINVAL, 422, "index_corrupt", "no dimension");
        goto out;
    }
    r.vectors = lh_try_malloc((g->n ? g->n : 1) * (size_t)r.dim * sizeof(float));
    if (!r.vectors) {
        rc = lh_vrows__oom(err);
        goto out;
    }
    if ((rc = scan_file(v, "SELECT CAST(vector AS FLOAT[]) FROM read_parquet(", g->emb_path,
                        ") ORDER BY position", on_vectors_batch, &r, err)) != 0)
        goto out;
    if (r.n != g->n || metric < 0) {
        rc = lh_err_set(err, LH_EINVAL, 422, "index_corrupt", "the embeddings file is incomplete");
        goto out;
    }
    if ((rc = lh_hnsw_build(r.vectors, r.n, r.dim, (lh_metric)metric, &params,
                            (int)lh_config_int(v->deps.config, "vector.build_threads"), &g->hnsw,
                            err)) != 0)
        goto out;
    reupload_sidecar(v, g);
out:
    lh_vrows__free(&r);
    return rc;
}

/* g's descriptor from the bucket. */
static int
read_desc(lh_vectors *v, const char *name, lh_vgen *g, lh_err *err)
{
    char *key = lh_layout_gen_key(name, g->generation, "index.json");
    lh_buf text;
    lh_buf_init(&text);
    int rc =
        lh_store_get_buffer(lh_vectors__store(v, g->bucket), key, DESC_MAX_BYTES, &text, NULL, err);
    if (rc != 0)
        goto out;
    g->desc = json_loadb(text.data, text.len, 0, NULL);
    if (!g->desc || !json_is_string(json_object_get(g->desc, "dataset")) ||
        !json_is_string(json_object_get(g->desc, "id_column")))
        rc = lh_err_set(err, LH_EINVAL, 422, "index_corrupt", "index.json is not a descriptor");
out:
    lh_buf_free(&text);
    free(key);
    return rc;
}

/* g's positions, documents and (within budget) texts from its embeddings file. */
static int
read_positions(lh_vectors *v, const char *name, lh_vgen *g, lh_err *err)
{
    char *emb_key = lh_layout_gen_key(name, g->generation, "embeddings.parquet");
    lh_vrows r;
    lh_vrows__init(&r, err);
    r.text_budget = (size_t)lh_config_int(v->deps.config, "vector.texts_in_memory_bytes");
    r.keep_texts = r.text_budget > 0;
    int rc = lh_cache_local_path(v->deps.cache, lh_vectors__store(v, g->bucket), emb_key, true,
                                 &g->emb_path, err);
    if (rc != 0)
        goto out;
    g->emb_pinned = true;
    if ((rc = scan_file(v, "SELECT position, doc_id, chunk_id, chunk_text FROM read_parquet(",
                        g->emb_path, ") ORDER BY position", on_position_batch, &r, err)) != 0)
        goto out;
    rc = lh_vrows__into_gen(&r, g, err);
out:
    lh_vrows__free(&r);
    free(emb_key);
    return rc;
}

/* Map g's sidecar from the cache; a sidecar that is missing, corrupt or does not match
 * the embeddings is logged and the graph rebuilt. */
static int
load_graph(lh_vectors *v, const char *name, lh_vgen *g, lh_err *err)
{
    char *hnsw_key = lh_layout_gen_key(name, g->generation, "hnsw.bin");
    lh_err herr;
    lh_err_clear(&herr);
    int rc = lh_cache_local_path(v->deps.cache, lh_vectors__store(v, g->bucket), hnsw_key, true,
                                 &g->hnsw_path, &herr);
    free(hnsw_key);
    if (rc == 0)
        rc = lh_hnsw_load(g->hnsw_path, &g->hnsw, &herr);
    if (rc == 0 &&
        (lh_hnsw_count(g->hnsw) != g->n ||
         lh_hnsw_dim(g->hnsw) != (uint32_t)json_integer_value(json_object_get(g->desc, "dim"))))
        rc = lh_err_set(&herr, LH_EINVAL, 422, "index_corrupt",
                        "the sidecar does not match the embeddings file");
    if (rc == 0)
        return 0;
    json_t *f = json_pack("{s:s, s:I, s:s, s:s}", "index", name, "generation",
                          (json_int_t)g->generation, "reason", herr.message, "detail", herr.detail);
    lh_log(LH_LOG_WARN, NULL, f, "vector index %s: rebuilding the graph from the embeddings", name);
    json_decref(f);
    lh_hnsw_free(g->hnsw);
    g->hnsw = NULL;
    if (g->hnsw_path) {
        lh_cache_unpin(v->deps.cache, g->hnsw_path);
        free(g->hnsw_path);
        g->hnsw_path = NULL;
    }
    return rebuild_graph(v, g, err);
}

void
lh_vectors__map_built(lh_vectors *v, const char *name, lh_vgen *g)
{
    if (lh_hnsw_mapped_bytes(g->hnsw) > 0 || lh_hnsw_get_params(g->hnsw).quant == LH_QUANT_NONE)
        return; /* a float graph uses its vectors; a mapped one holds none */
    char *hnsw_key = lh_layout_gen_key(name, g->generation, "hnsw.bin");
    char *path = NULL;
    lh_hnsw *h = NULL;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_cache_local_path(v->deps.cache, lh_vectors__store(v, g->bucket), hnsw_key, true,
                                 &path, &err);
    if (rc == 0 && (rc = lh_hnsw_load(path, &h, &err)) == 0 &&
        (lh_hnsw_count(h) != lh_hnsw_count(g->hnsw) || lh_hnsw_dim(h) != lh_hnsw_dim(g->hnsw)))
        rc = lh_err_set(&err, LH_EINVAL, 422, "index_corrupt",
                        "the sidecar does not match the graph just built");
    if (rc == 0) {
        lh_hnsw_free(g->hnsw);
        g->hnsw = h;
        g->hnsw_path = path;
    } else {
        json_t *f =
            json_pack("{s:s, s:I, s:s, s:s}", "index", name, "generation",
                      (json_int_t)g->generation, "reason", err.message, "detail", err.detail);
        lh_log(LH_LOG_WARN, NULL, f,
               "vector index %s: the new int8 graph keeps its float vectors in memory", name);
        json_decref(f);
        lh_hnsw_free(h);
        if (path) {
            lh_cache_unpin(v->deps.cache, path);
            free(path);
        }
    }
    free(hnsw_key);
}

/* The text index's words of every position, from the texts in memory or the embeddings
 * file. */
static int
on_text_batch(void *ctx, const lh_batch *b)
{
    lh_bm25_builder *tb = ctx;
    for (size_t i = 0; i < lh_batch_rows(b); i++) {
        int64_t pos = -1;
        size_t len = 0;
        const char *text = lh_batch_str(b, 1, i, &len);
        if (!lh_batch_int(b, 0, i, &pos) || pos < 0)
            return lh_err_set(tb->err, LH_EINVAL, 422, "index_corrupt",
                              "the embeddings file's positions are not 0..n-1");
        int rc = lh_bm25__add_text(tb, (uint32_t)pos, text ? text : "", text ? len : 0);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int
text_index_from_texts(lh_vectors *v, lh_vgen *g, lh_err *err)
{
    lh_bm25_builder tb;
    int rc = lh_bm25__builder_init(&tb, g->n, err);
    for (size_t p = 0; rc == 0 && g->texts && p < g->n; p++)
        rc = lh_bm25__add_text(&tb, (uint32_t)p, g->texts + g->text_off[p], g->text_len[p]);
    if (rc == 0 && !g->texts)
        rc = scan_file(v, "SELECT position, chunk_text FROM read_parquet(", g->emb_path,
                       ") ORDER BY position", on_text_batch, &tb, err);
    if (rc == 0)
        rc = lh_bm25__finish(&tb, "chunk_texts", &g->bm25, err);
    lh_bm25__builder_free(&tb);
    return rc;
}

/* g's full-text index (text indexes): its file, else built from its chunk texts. A text
 * index that cannot be had either way leaves g without one (logged): vector searches
 * work, text and hybrid ones are 409 text_index_unavailable. */
static void
load_text_index(lh_vectors *v, const char *name, lh_vgen *g)
{
    if (!lh_vectors__spec_str(g->desc, "text_column"))
        return; /* vectors from a column: no texts */
    const char *key = json_string_value(json_object_get(json_object_get(g->desc, "files"), "bm25"));
    lh_err err;
    lh_err_clear(&err);
    const char *why = "the generation has no text index file";
    if (key) {
        char *path = NULL;
        int rc = lh_cache_local_path(v->deps.cache, lh_vectors__store(v, g->bucket), key, true,
                                     &path, &err);
        if (rc == 0) {
            rc = lh_bm25__read(v->deps.engine, path, g->n, &g->bm25, &err);
            lh_cache_unpin(v->deps.cache, path);
            free(path);
        }
        if (rc == 0)
            return;
        why = err.message;
    }
    json_t *f = json_pack("{s:s, s:I, s:s, s:s}", "index", name, "generation",
                          (json_int_t)g->generation, "reason", why, "detail", err.detail);
    lh_log(LH_LOG_INFO, NULL, f, "vector index %s: building the text index from the chunk texts",
           name);
    json_decref(f);
    lh_err_clear(&err);
    if (text_index_from_texts(v, g, &err) != 0) {
        json_t *fail =
            json_pack("{s:s, s:I, s:s, s:s}", "index", name, "generation",
                      (json_int_t)g->generation, "reason", err.message, "detail", err.detail);
        lh_log(LH_LOG_ERROR, NULL, fail, "vector index %s: no text index", name);
        json_decref(fail);
    }
}

int
lh_vectors__load_generation(lh_vectors *v, const char *bucket, const char *name, int64_t generation,
                            lh_vgen **out, lh_err *err)
{
    lh_vgen *g = lh_vgen__new(v, bucket, generation);
    int rc = read_desc(v, name, g, err);
    if (rc != 0)
        goto out;
    if ((rc = read_positions(v, name, g, err)) != 0)
        goto out;
    if ((rc = load_graph(v, name, g, err)) != 0)
        goto out;
    load_text_index(v, name, g);
    *out = g;
    g = NULL;
out:
    lh_vgen__free(g);
    return rc;
}

/* ---- at start ------------------------------------------------------------------------ */

/* What the listing of _vectors/ found for one index. */
typedef struct found {
    char name[LH_NAME_MAX];
    const char *bucket; /* where it was found (a registry name) */
    int64_t committed;  /* newest generation with index.json, or 0 */
    int64_t highest;    /* newest generation seen at all */
    struct found *next;
} found;

/* One bucket's listing: what it found is added to list. */
typedef struct listing {
    const char *bucket;
    found *list;
} listing;

static int
on_vector_key(void *ctx, const lh_list_entry *e)
{
    listing *l = ctx;
    char name[LH_NAME_MAX];
    int64_t generation = 0;
    const char *file = NULL;
    if (lh_layout_parse_vector_key(e->key, name, sizeof name, &generation, &file) != 0)
        return 0;
    found *f = l->list;
    while (f && (strcmp(f->name, name) != 0 || f->bucket != l->bucket))
        f = f->next;
    if (!f) {
        f = lh_calloc(1, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", name);
        f->bucket = l->bucket;
        f->next = l->list;
        l->list = f;
    }
    if (generation > f->highest)
        f->highest = generation;
    if (generation > 0 && strcmp(file, "index.json") == 0 && generation > f->committed)
        f->committed = generation;
    return 0;
}

typedef struct garbage {
    int64_t above; /* generations above this one are uncommitted; 0: every file is garbage */
    json_t *keys;
} garbage;

static int
on_garbage_key(void *ctx, const lh_list_entry *e)
{
    garbage *g = ctx;
    char name[LH_NAME_MAX];
    int64_t generation = 0;
    const char *file = NULL;
    if (g->above == 0 ||
        (lh_layout_parse_vector_key(e->key, name, sizeof name, &generation, &file) == 0 &&
         generation > g->above))
        json_array_append_new(g->keys, json_string(e->key));
    return 0;
}

/* Files of generations that never got their index.json: a build or a deletion that died
 * (at start no build runs, so nothing above the newest descriptor is in progress). */
static void
remove_uncommitted(lh_vectors *v, const found *f)
{
    garbage g = {.above = f->committed, .keys = json_array()};
    char *prefix = lh_layout_index_prefix(f->name);
    lh_err err;
    if (lh_store_each(lh_vectors__store(v, f->bucket), prefix, on_garbage_key, &g, &err) != 0)
        goto out;
    size_t i;
    json_t *k;
    json_array_foreach(g.keys, i, k)
    {
        if (lh_vectors__delete(v, f->bucket, json_string_value(k), &err) != 0 &&
            err.rc != LH_ENOTFOUND)
            lh_log_err(LH_LOG_WARN, NULL, &err);
    }
    if (json_array_size(g.keys) > 0) {
        json_t *fields = json_pack("{s:s, s:s, s:I}", "index", f->name, "bucket", f->bucket,
                                   "files", (json_int_t)json_array_size(g.keys));
        lh_log(LH_LOG_INFO, NULL, fields,
               "vector index %s: removed files of uncommitted "
               "generations",
               f->name);
        json_decref(fields);
    }
out:
    free(prefix);
    json_decref(g.keys);
}

/* Load f's live generation into the registry; false (logged) when it cannot be. */
static bool
load_index(lh_vectors *v, const found *f)
{
    if (lh_vectors__find_locked(v, f->name)) {
        json_t *fields = json_pack("{s:s, s:s}", "index", f->name, "bucket", f->bucket);
        lh_log(LH_LOG_ERROR, NULL, fields,
               "vector index %s is also in bucket '%s': that copy is not loaded", f->name,
               f->bucket);
        json_decref(fields);
        return false;
    }
    lh_vidx probe = {0};
    snprintf(probe.name, sizeof probe.name, "%s", f->name);
    snprintf(probe.bucket, sizeof probe.bucket, "%s", f->bucket);
    int64_t live = f->committed;
    lh_vectors__live_at_start(v, &probe, f->committed, &live);
    lh_vgen *g = NULL;
    lh_err err;
    lh_err_clear(&err);
    if (lh_vectors__load_generation(v, f->bucket, f->name, live, &g, &err) != 0) {
        json_t *fields = json_pack("{s:s, s:s, s:I}", "index", f->name, "bucket", f->bucket,
                                   "generation", (json_int_t)f->committed);
        lh_log(LH_LOG_ERROR, NULL, fields, "vector index %s could not be loaded: %s%s%s", f->name,
               err.message, err.detail[0] ? ": " : "", err.detail);
        json_decref(fields);
        return false;
    }
    lh_vidx *x = lh_calloc(1, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", f->name);
    snprintf(x->dataset, sizeof x->dataset, "%s", lh_vectors__spec_str(g->desc, "dataset"));
    snprintf(x->bucket, sizeof x->bucket, "%s", f->bucket);
    x->spec = json_object();
    static const char *const keep[] = {"name",          "dataset", "id_column", "text_column",
                                       "vector_column", "model",   "metric",    "hnsw",
                                       "chunk",         NULL};
    for (size_t i = 0; keep[i]; i++)
        if (json_object_get(g->desc, keep[i]))
            json_object_set(x->spec, keep[i], json_object_get(g->desc, keep[i]));
    x->live = g;
    x->last_generation = f->highest;
    x->previous_live = probe.previous_live;
    x->live_seq = probe.live_seq;
    x->next = v->list;
    v->list = x;
    return true;
}

int
lh_vectors_open(const lh_vectors_deps *deps, lh_vectors **out, lh_err *err)
{
    lh_vectors *v = lh_calloc(1, sizeof *v);
    v->deps = *deps;
    pthread_mutex_init(&v->lock, NULL);
    lh_embed_cache_configure(lh_config_int(deps->config, "vector.embed_cache_bytes"));
    lh_vectors__tcache_open(v);
    lh_vectors__journal_open(v);
    v->fcache = lh_fcache_new(lh_config_int(deps->config, "vector.filter_cache_bytes"));
    int64_t started = lh_mono_us();
    const char *buckets[LH_VECTORS_MAX_BUCKETS];
    size_t n_buckets = lh_vectors__buckets(v, buckets, LH_VECTORS_MAX_BUCKETS);
    int rc = 0;
    found *list = NULL, **tail = &list;
    for (size_t i = 0; i < n_buckets && rc == 0; i++) {
        /* a tenant bucket that cannot be listed is logged and skipped (its indexes come
         * back at the next start); the primary one must answer */
        listing l = {.bucket = buckets[i]};
        lh_err lerr;
        int lrc = lh_store_each(lh_vectors__store(v, buckets[i]), LH_LAYOUT_VECTORS, on_vector_key,
                                &l, &lerr);
        if (lrc != 0 && i == 0) {
            *err = lerr;
            rc = lrc;
        } else if (lrc != 0) {
            lh_log(LH_LOG_ERROR, NULL, NULL, "vector indexes of bucket '%s' not loaded: %s %s",
                   buckets[i], lerr.message, lerr.detail);
        }
        /* keep bucket order: the primary's indexes are found first */
        *tail = l.list;
        while (*tail)
            tail = &(*tail)->next;
    }
    size_t loaded = 0;
    while (list) {
        found *f = list;
        list = f->next;
        if (rc == 0 && f->committed > 0 && load_index(v, f))
            loaded++;
        if (rc == 0 && (f->highest > f->committed || f->committed == 0))
            remove_uncommitted(v, f);
        free(f);
    }
    if (rc != 0) {
        lh_vectors_close(v);
        return rc;
    }
    json_t *fields = json_pack("{s:I, s:f}", "indexes", (json_int_t)loaded, "seconds",
                               (double)(lh_mono_us() - started) / 1e6);
    lh_log(LH_LOG_INFO, NULL, fields, "vector indexes loaded");
    json_decref(fields);
    *out = v;
    return 0;
}

void
lh_vectors_close(lh_vectors *v)
{
    if (v == NULL)
        return;
    while (v->list) {
        lh_vidx *x = v->list;
        v->list = x->next;
        lh_vidx__free(x);
    }
    lh_vectors__journal_close(v);
    lh_vectors__tcache_close(v);
    lh_fcache_free(v->fcache);
    pthread_mutex_destroy(&v->lock);
    free(v);
}
