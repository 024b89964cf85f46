/*
 * vgen.c — changing which graph an index serves without embedding anything: promotion
 * of a new graph over the live vectors, and rollback to the generation live before.
 *
 * Promotion builds a graph with other settings over the live generation's vectors,
 * commits it as a new generation (the embeddings file and the text index's file copied
 * within the bucket, the new sidecar uploaded, index.json put create-only) and swaps it
 * in; the text index in memory is shared with the live generation (it is immutable). Rollback makes
 * the previously live generation live again, loading it from the bucket. Both go through
 * lh_vectors__publish (vlive.c). Both hold the index's `building` reservation while they
 * run, so no build or second promotion of the same index runs meanwhile.
 */
#include "vector/vector_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- promote ------------------------------------------------------------------------ */

/* The settings a promotion asks for (new): a journaled trial's, or the body's "hnsw". */
static int
promote_settings(lh_vectors *v, const char *name, const json_t *body, json_t **out, lh_err *err)
{
    static const char *const fields[] = {"trial_id", "hnsw", "async", NULL};
    if (lh_json_check_fields(body, fields,
                             "promote takes trial_id or hnsw {m, ef_construction, ef_search, "
                             "quantization}, and async",
                             err) != 0)
        return LH_EINVAL;
    const json_t *trial = json_object_get(body, "trial_id"), *hnsw = json_object_get(body, "hnsw");
    if ((trial == NULL) == (hnsw == NULL))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "give exactly one of 'trial_id' (a journaled trial) or 'hnsw' "
                          "({m, ef_construction, ef_search, quantization})");
    if (trial && !json_is_string(trial))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "'trial_id' must be a string");
    if (hnsw && !json_is_object(hnsw))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'hnsw' must be an object {m, ef_construction, ef_search, quantization}");
    if (hnsw) /* unspecified settings keep the live ones: no defaults */
        return lh_vectors__hnsw_settings(hnsw, "hnsw", false, out, err);
    char dataset[LH_NAME_MAX];
    if (!lh_vectors_dataset_of(v, name, dataset, sizeof dataset))
        return lh_vectors__no_index(err, name);
    return lh_vectors__trial_config(v, name, json_string_value(trial), out, err);
}

int
lh_vectors_promote_begin(lh_vectors *v, const char *name, const json_t *body, const char *actor,
                         lh_vbuild **out, lh_err *err)
{
    json_t *settings = NULL;
    lh_vbuild *b = NULL;
    int rc = promote_settings(v, name, body, &settings, err);
    if (rc != 0)
        goto out;
    if ((rc = lh_vectors__reserve(v, name, actor, &b, err)) != 0)
        goto out;
    /* unspecified settings keep the live ones */
    json_t *merged = json_deep_copy(json_object_get(b->spec, "hnsw"));
    json_object_update(merged, settings);
    json_t *spec = json_deep_copy(b->spec);
    json_object_set_new(spec, "hnsw", merged);
    json_decref(b->spec);
    b->spec = spec;
    b->promote = true;
    const json_t *trial = json_object_get(body, "trial_id");
    b->origin = trial ? json_pack("{s:O}", "trial_id", trial) : json_null();
    *out = b;
out:
    json_decref(settings);
    return rc;
}

/* The keys of a promoted generation's files. */
typedef struct gen_keys {
    char *emb, *hnsw, *bm25; /* bm25: NULL when the live generation has no such file */
} gen_keys;

/* Store the promoted generation's files: the live embeddings and text index copied within
 * the bucket, the new sidecar saved to the work folder and uploaded. */
static int
store_promoted(lh_vbuild *b, const lh_vgen *prev, const lh_hnsw *h, const gen_keys *k,
               int64_t *hnsw_bytes, lh_err *err)
{
    lh_vectors *v = b->v;
    char *hnsw_tmp = lh_vectors__work_file(v, ".bin");
    char *prev_emb = lh_layout_gen_key(b->index, prev->generation, "embeddings.parquet");
    int rc = lh_hnsw_save(h, hnsw_tmp, err);
    if (rc != 0)
        goto out;
    if ((rc = lh_vectors__copy(v, b->bucket, prev_emb, k->emb, err)) != 0)
        goto out;
    const char *prev_bm25 =
        json_string_value(json_object_get(json_object_get(prev->desc, "files"), "bm25"));
    if (k->bm25 && (rc = lh_vectors__copy(v, b->bucket, prev_bm25, k->bm25, err)) != 0)
        goto out;
    rc = lh_vectors__upload(v, b->bucket, hnsw_tmp, k->hnsw, 0, hnsw_bytes, err);
out:
    unlink(hnsw_tmp);
    free(hnsw_tmp);
    free(prev_emb);
    return rc;
}

/* The promoted generation's descriptor (new): the live one's, with the new settings,
 * files, timings and where it came from. */
static json_t *
promoted_desc(const lh_vbuild *b, const lh_vgen *prev, int64_t generation, const gen_keys *k,
              int64_t hnsw_bytes, double graph_s, int64_t started)
{
    char created_at[LH_TIME_MAX];
    lh_time_format(lh_now_us(), created_at);
    json_t *desc = json_deep_copy(prev->desc);
    json_object_set(desc, "hnsw", json_object_get(b->spec, "hnsw"));
    json_object_set_new(desc, "generation", json_integer(generation));
    json_object_set_new(desc, "created_at", json_string(created_at));
    json_object_set_new(desc, "created_by", json_string(b->actor));
    json_object_set_new(desc, "embedded", json_integer(0));
    json_object_set_new(desc, "reused", json_integer((json_int_t)prev->n));
    json_object_set_new(desc, "graph_seconds", json_real(graph_s));
    json_object_set_new(desc, "build_seconds", json_real((double)(lh_mono_us() - started) / 1e6));
    json_t *from = json_pack("{s:I}", "generation", (json_int_t)prev->generation);
    json_object_update(from, json_is_object(b->origin) ? b->origin : NULL);
    json_object_set_new(desc, "promoted_from", from);
    json_t *files = json_object_get(desc, "files");
    if (json_is_object(files)) {
        json_object_set_new(files, "embeddings", json_string(k->emb));
        json_object_set_new(files, "hnsw", json_string(k->hnsw));
        json_object_set_new(files, "hnsw_bytes", json_integer(hnsw_bytes));
        if (k->bm25)
            json_object_set_new(files, "bm25", json_string(k->bm25));
    }
    return desc;
}

/* g takes prev's positions, documents and (when it holds them) texts. */
static int
copy_positions(lh_vgen *g, const lh_vgen *prev, lh_err *err)
{
    g->n = prev->n;
    g->n_docs = prev->n_docs;
    g->doc_of = lh_try_malloc(g->n * sizeof *g->doc_of + 1);
    g->chunk_of = lh_try_malloc(g->n * sizeof *g->chunk_of + 1);
    g->doc_ids = lh_try_malloc(g->n_docs * sizeof *g->doc_ids + 1);
    if (!g->doc_of || !g->chunk_of || !g->doc_ids) {
        free(g->doc_ids);
        g->doc_ids = NULL;
        g->n_docs = 0;
        return lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory for the index");
    }
    memcpy(g->doc_of, prev->doc_of, g->n * sizeof *g->doc_of);
    memcpy(g->chunk_of, prev->chunk_of, g->n * sizeof *g->chunk_of);
    for (size_t d = 0; d < g->n_docs; d++)
        g->doc_ids[d] = lh_strdup(prev->doc_ids[d]);
    g->doc_first = lh_calloc(g->n_docs + 1, sizeof *g->doc_first);
    g->doc_count = lh_calloc(g->n_docs + 1, sizeof *g->doc_count);
    g->table = lh_calloc(prev->table_size, sizeof *g->table);
    g->table_size = prev->table_size;
    memcpy(g->doc_first, prev->doc_first, g->n_docs * sizeof *g->doc_first);
    memcpy(g->doc_count, prev->doc_count, g->n_docs * sizeof *g->doc_count);
    memcpy(g->table, prev->table, g->table_size * sizeof *g->table);
    if (!prev->texts)
        return 0;
    size_t text_bytes = g->n ? prev->text_off[g->n - 1] + prev->text_len[g->n - 1] : 0;
    g->texts = lh_try_malloc(text_bytes + 1);
    g->text_off = lh_try_malloc(g->n * sizeof *g->text_off + 1);
    g->text_len = lh_try_malloc(g->n * sizeof *g->text_len + 1);
    if (g->texts && g->text_off && g->text_len) {
        memcpy(g->texts, prev->texts, text_bytes);
        memcpy(g->text_off, prev->text_off, g->n * sizeof *g->text_off);
        memcpy(g->text_len, prev->text_len, g->n * sizeof *g->text_len);
    } else { /* searches read the texts from the file instead */
        free(g->texts);
        free(g->text_off);
        free(g->text_len);
        g->texts = NULL;
        g->text_off = NULL;
        g->text_len = NULL;
    }
    return 0;
}

int
lh_vectors__promote_run(lh_vbuild *b, lh_job *job, json_t **out, lh_err *err)
{
    lh_vectors *v = b->v;
    int64_t started = lh_mono_us();
    lh_vgen *prev = NULL, *g = NULL;
    lh_hnsw *h = NULL;
    json_t *desc = NULL;
    gen_keys k = {NULL, NULL, NULL};
    bool uploaded = false;
    int64_t hnsw_bytes = 0;
    int rc = 0;
    if ((prev = lh_vectors__acquire(v, b->index, NULL, err)) == NULL) {
        rc = err->rc;
        goto out;
    }
    pthread_mutex_lock(&v->lock);
    int64_t generation = b->x->last_generation + 1;
    pthread_mutex_unlock(&v->lock);
    lh_hnsw_params params = lh_vectors__hnsw_params(json_object_get(b->spec, "hnsw"));
    if (job)
        lh_job_progress(job, 0, (int64_t)prev->n, "vectors linked");
    if ((rc = lh_hnsw_build(lh_hnsw_vector(prev->hnsw, 0), prev->n, lh_hnsw_dim(prev->hnsw),
                            lh_hnsw_metric(prev->hnsw), &params,
                            (int)lh_config_int(v->deps.config, "vector.build_threads"), &h, err)) !=
        0)
        goto out;
    double graph_s = (double)(lh_mono_us() - started) / 1e6;
    if (job)
        lh_job_progress(job, (int64_t)prev->n, (int64_t)prev->n, "vectors linked");
    k.emb = lh_layout_gen_key(b->index, generation, "embeddings.parquet");
    k.hnsw = lh_layout_gen_key(b->index, generation, "hnsw.bin");
    /* a generation from before text indexes has no file: its promotion has none either,
     * and a load builds the text index from the chunk texts */
    if (json_object_get(json_object_get(prev->desc, "files"), "bm25"))
        k.bm25 = lh_layout_gen_key(b->index, generation, "bm25.parquet");
    uploaded = true;
    if ((rc = store_promoted(b, prev, h, &k, &hnsw_bytes, err)) != 0)
        goto out;
    desc = promoted_desc(b, prev, generation, &k, hnsw_bytes, graph_s, started);
    if ((rc = lh_vectors__commit_desc(v, b->bucket, b->index, generation, desc, err)) != 0)
        goto out;
    uploaded = false; /* committed: the files are the generation's now */

    /* the new generation: the same positions and documents, the new graph */
    g = lh_vgen__new(v, b->bucket, generation);
    g->desc = desc;
    desc = NULL;
    g->hnsw = h;
    h = NULL;
    lh_vectors__map_built(v, b->index, g);
    g->bm25 = lh_bm25__retain(prev->bm25);
    if ((rc = copy_positions(g, prev, err)) != 0)
        goto out;
    if ((rc = lh_cache_local_path(v->deps.cache, lh_vectors__store(v, b->bucket), k.emb, true,
                                  &g->emb_path, err)) != 0)
        goto out;
    g->emb_pinned = true;
    b->done = true;
    *out = lh_vgen__summary(g);
    json_object_set_new(*out, "index", json_string(b->index));
    json_object_set(*out, "hnsw", json_object_get(b->spec, "hnsw"));
    json_object_set(*out, "promoted_from", json_object_get(g->desc, "promoted_from"));
    json_object_set(*out, "build_seconds", json_object_get(g->desc, "build_seconds"));
    lh_vectors__publish(v, b->x, g, "promote", b->actor);
    g = NULL;
    lh_log(LH_LOG_INFO, NULL, NULL,
           "vector index %s: generation %lld promoted (m %u, "
           "ef_construction %u, ef_search %u)",
           b->index, (long long)generation, params.m, params.ef_construction, params.ef_search);
out:
    if (uploaded) {
        const char *keys[] = {k.emb, k.hnsw, k.bm25};
        lh_vectors__discard(v, b->bucket, keys, 3);
    }
    free(k.emb);
    free(k.hnsw);
    free(k.bm25);
    json_decref(desc);
    lh_vgen__free(g);
    lh_hnsw_free(h);
    lh_vgen__release(prev);
    return rc;
}

/* ---- rollback ------------------------------------------------------------------------ */

/* Reserve x for a rollback and say which generation it goes back to. */
static int
rollback_reserve(lh_vectors *v, const char *name, lh_vidx **x_out, int64_t *target, lh_err *err)
{
    pthread_mutex_lock(&v->lock);
    lh_vidx *x = lh_vectors__find_locked(v, name);
    *target = x ? x->previous_live : 0;
    bool busy = x && x->building;
    if (x && !busy && *target > 0)
        x->building = true; /* no build or second rollback meanwhile */
    pthread_mutex_unlock(&v->lock);
    if (!x)
        return lh_vectors__no_index(err, name);
    if (busy) {
        lh_err_set(err, LH_EEXIST, 409, "index_building", "index '%s' is being built", name);
        lh_err_hint(err, "wait for the running build's job to finish");
        return LH_EEXIST;
    }
    if (*target <= 0)
        return lh_err_set(err, LH_EEXIST, 409, "no_previous_generation",
                          "index '%s' has no earlier generation to go back to", name);
    *x_out = x;
    return 0;
}

int
lh_vectors_rollback(lh_vectors *v, const char *name, const char *actor, json_t **out, lh_err *err)
{
    lh_vidx *x = NULL;
    lh_vgen *g = NULL;
    int64_t target = 0;
    int rc = rollback_reserve(v, name, &x, &target, err);
    if (rc != 0)
        return rc; /* nothing reserved */
    if ((rc = lh_vectors__load_generation(v, x->bucket, name, target, &g, err)) != 0) {
        if (rc == LH_ENOTFOUND)
            lh_err_set(err, LH_ENOTFOUND, 409, "no_previous_generation",
                       "generation %lld of index '%s' is gone", (long long)target, name);
        goto out;
    }
    *out = lh_vgen__summary(g);
    json_object_set_new(*out, "index", json_string(name));
    json_object_set(*out, "hnsw", json_object_get(g->desc, "hnsw"));
    lh_vectors__publish(v, x, g, "rollback", actor);
    lh_log(LH_LOG_INFO, NULL, NULL, "vector index %s: rolled back to generation %lld", name,
           (long long)target);
out:
    pthread_mutex_lock(&v->lock);
    x->building = false;
    pthread_mutex_unlock(&v->lock);
    return rc;
}
