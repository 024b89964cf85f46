/*
 * vgen.c — which generation of an index is live: the live log, promotion of a new graph
 * over the live vectors, rollback; and describing, listing and dropping indexes.
 *
 * Every time a generation goes live (build, refresh, promote, rollback) a record is added
 * to the index's live log, create-only, never rewritten:
 *   _vectors/{index}/_live/v{seq:06}.json  {"generation", "previous", "newest", "reason",
 *                                           "at", "by"}
 * `newest` is the highest generation committed when the record was written. At start the
 * newest record names the live generation — unless a generation above its `newest` was
 * committed after it (a build that died between its commit and its record), which is
 * then live, as its build meant it to be.
 *
 * Promotion builds a graph with other settings over the live generation's vectors (no
 * embedding), commits it as a new generation (the embeddings file copied within the
 * bucket) and swaps it in. Rollback makes the previously live generation live again,
 * loading it from the bucket. Both go through lh_vectors__publish, so searches in flight
 * finish on the generation they started on (reference counts) and the old generation's
 * memory goes with the last of them.
 */
#include "vector/vector_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DESC_MAX_BYTES (1 << 20)

void
lh_vectors__publish(lh_vectors *v, lh_vidx *x, lh_vgen *g, const char *reason, const char *actor)
{
    pthread_mutex_lock(&v->lock);
    lh_vgen *old = x->live;
    x->live = g;
    if (old && old->generation != g->generation)
        x->previous_live = old->generation;
    if (g->generation > x->last_generation)
        x->last_generation = g->generation;
    /* the spec follows the live generation's settings (a promotion changes them); readers
     * hold their own reference to the old object */
    json_t *spec = json_deep_copy(x->spec);
    if (json_object_get(g->desc, "hnsw"))
        json_object_set(spec, "hnsw", json_object_get(g->desc, "hnsw"));
    json_decref(x->spec);
    x->spec = spec;
    int64_t previous = x->previous_live, newest = x->last_generation;
    int64_t seq = ++x->live_seq;
    pthread_mutex_unlock(&v->lock);
    lh_vgen__release(old);

    char at[LH_TIME_MAX];
    lh_time_format(lh_now_us(), at);
    json_t *record = json_pack("{s:I, s:I, s:I, s:s, s:s, s:s}", "generation",
                               (json_int_t)g->generation, "previous", (json_int_t)previous,
                               "newest", (json_int_t)newest, "reason", reason, "at", at, "by",
                               actor ? actor : "");
    char *text = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(record);
    lh_err err;
    int rc = LH_EEXIST;
    for (int attempt = 0; rc == LH_EEXIST && attempt < 8; attempt++, seq++) {
        char *key = lh_layout_live_key(x->name, seq);
        rc = lh_store_put_buffer(v->store, key, text, strlen(text), LH_PUT_CREATE_ONLY, &err);
        free(key);
    }
    if (rc != 0) /* live here; at the next start the newest generation is live again */
        lh_log_err(LH_LOG_WARN, NULL, &err);
    pthread_mutex_lock(&v->lock);
    if (seq - 1 > x->live_seq)
        x->live_seq = seq - 1;
    pthread_mutex_unlock(&v->lock);
    free(text);
}

typedef struct newest_record {
    int64_t seq;
    char *key;
} newest_record;

static int
on_live_key(void *ctx, const lh_list_entry *e)
{
    newest_record *n = ctx;
    const char *base = strrchr(e->key, '/');
    long long seq = 0;
    if (base && sscanf(base, "/v%lld.json", &seq) == 1 && seq > n->seq) {
        n->seq = seq;
        free(n->key);
        n->key = lh_strdup(e->key);
    }
    return 0;
}

void
lh_vectors__live_at_start(lh_vectors *v, lh_vidx *x, int64_t newest_committed, int64_t *live)
{
    *live = newest_committed;
    newest_record n = {0, NULL};
    char *prefix = lh_layout_live_prefix(x->name);
    lh_err err;
    if (lh_store_each(v->store, prefix, on_live_key, &n, &err) != 0)
        lh_log_err(LH_LOG_WARN, NULL, &err);
    free(prefix);
    x->live_seq = n.seq;
    if (n.key == NULL) {
        x->previous_live = newest_committed > 1 ? newest_committed - 1 : 0;
        return;
    }
    lh_buf text;
    lh_buf_init(&text);
    json_t *rec = NULL;
    if (lh_store_get_buffer(v->store, n.key, DESC_MAX_BYTES, &text, NULL, &err) == 0)
        rec = json_loadb(text.data, text.len, 0, NULL);
    lh_buf_free(&text);
    free(n.key);
    int64_t generation = json_integer_value(json_object_get(rec, "generation"));
    int64_t newest = json_integer_value(json_object_get(rec, "newest"));
    int64_t previous = json_integer_value(json_object_get(rec, "previous"));
    json_decref(rec);
    if (generation > 0 && generation <= newest_committed && newest >= newest_committed) {
        char *key = lh_layout_gen_key(x->name, generation, "index.json");
        lh_obj_info info;
        if (lh_store_head(v->store, key, &info, &err) == 0) {
            *live = generation;
            x->previous_live = previous;
        }
        free(key);
    } else {
        x->previous_live = generation > 0 ? generation : newest_committed - 1;
    }
}

/* ---- promote ------------------------------------------------------------------------ */

int
lh_vectors_promote_begin(lh_vectors *v, const char *name, const json_t *body, const char *actor,
                         lh_vbuild **out, lh_err *err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)body, key, val)
    {
        if (strcmp(key, "trial_id") && strcmp(key, "hnsw") && strcmp(key, "async")) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "unknown field '%s'", key);
            lh_err_hint(err, "promote takes trial_id or hnsw {m, ef_construction, ef_search}, "
                             "and async");
            return LH_EINVAL;
        }
    }
    const json_t *trial = json_object_get(body, "trial_id"), *hnsw = json_object_get(body, "hnsw");
    if ((trial == NULL) == (hnsw == NULL))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "give exactly one of 'trial_id' (a journaled trial) or 'hnsw' "
                          "({m, ef_construction, ef_search})");
    if (trial && !json_is_string(trial))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "'trial_id' must be a string");
    if (hnsw && !json_is_object(hnsw))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'hnsw' must be an object {m, ef_construction, ef_search}");
    json_t *settings = NULL;
    int rc = 0;
    if (trial) {
        char dataset[LH_NAME_MAX];
        if (!lh_vectors_dataset_of(v, name, dataset, sizeof dataset)) {
            lh_err_set(err, LH_ENOTFOUND, 404, "index_not_found", "no vector index named '%s'", name);
            return LH_ENOTFOUND;
        }
        if ((rc = lh_vectors__trial_config(v, name, json_string_value(trial), &settings, err)) != 0)
            return rc;
    } else {
        static const char *const names[] = {"m", "ef_construction", "ef_search"};
        static const int64_t lo[] = {2, 1, 1}, hi[] = {128, 4096, 4096};
        json_object_foreach((json_t *)hnsw, key, val)
        {
            if (strcmp(key, "m") && strcmp(key, "ef_construction") && strcmp(key, "ef_search"))
                return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                                  "unknown field 'hnsw.%s' (m, ef_construction, ef_search)", key);
        }
        for (size_t i = 0; i < 3; i++) {
            const json_t *x = json_object_get(hnsw, names[i]);
            if (x && (!json_is_integer(x) || json_integer_value(x) < lo[i] ||
                      json_integer_value(x) > hi[i]))
                return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                                  "'hnsw.%s' must be an integer from %lld to %lld", names[i],
                                  (long long)lo[i], (long long)hi[i]);
        }
        settings = json_deep_copy(hnsw);
    }
    lh_vbuild *b = NULL;
    if ((rc = lh_vectors_refresh_begin(v, name, actor, &b, err)) != 0) {
        json_decref(settings);
        return rc;
    }
    /* unspecified settings keep the live ones */
    json_t *merged = json_deep_copy(json_object_get(b->spec, "hnsw"));
    json_object_update(merged, settings);
    json_decref(settings);
    json_t *spec = json_deep_copy(b->spec);
    json_object_set_new(spec, "hnsw", merged);
    json_decref(b->spec);
    b->spec = spec;
    b->promote = true;
    b->origin = trial ? json_pack("{s:O}", "trial_id", trial) : json_null();
    *out = b;
    return 0;
}

int
lh_vectors__promote_run(lh_vbuild *b, lh_job *job, json_t **out, lh_err *err)
{
    lh_vectors *v = b->v;
    int64_t started = lh_mono_us();
    lh_vgen *prev = NULL, *g = NULL;
    lh_hnsw *h = NULL;
    char *hnsw_tmp = lh_vectors__work_file(v, ".bin");
    char *emb_key = NULL, *hnsw_key = NULL, *desc_key = NULL, *prev_emb = NULL;
    bool uploaded = false;
    int rc = 0;
    if ((prev = lh_vectors__acquire(v, b->index, NULL, err)) == NULL) {
        rc = err->rc;
        goto out;
    }
    pthread_mutex_lock(&v->lock);
    int64_t generation = b->x->last_generation + 1;
    pthread_mutex_unlock(&v->lock);
    json_t *hs = json_object_get(b->spec, "hnsw");
    lh_hnsw_params params = {
        .m = (uint32_t)json_integer_value(json_object_get(hs, "m")),
        .ef_construction = (uint32_t)json_integer_value(json_object_get(hs, "ef_construction")),
        .ef_search = (uint32_t)json_integer_value(json_object_get(hs, "ef_search")),
        .seed = 42};
    if (job)
        lh_job_progress(job, 0, (int64_t)prev->n, "vectors linked");
    if ((rc = lh_hnsw_build(lh_hnsw_vector(prev->hnsw, 0), prev->n, lh_hnsw_dim(prev->hnsw),
                            lh_hnsw_metric(prev->hnsw), &params,
                            (int)lh_config_int(v->deps.config, "vector.build_threads"), &h,
                            err)) != 0)
        goto out;
    double graph_s = (double)(lh_mono_us() - started) / 1e6;
    if (job)
        lh_job_progress(job, (int64_t)prev->n, (int64_t)prev->n, "vectors linked");
    if ((rc = lh_hnsw_save(h, hnsw_tmp, err)) != 0)
        goto out;
    emb_key = lh_layout_gen_key(b->index, generation, "embeddings.parquet");
    hnsw_key = lh_layout_gen_key(b->index, generation, "hnsw.bin");
    desc_key = lh_layout_gen_key(b->index, generation, "index.json");
    prev_emb = lh_layout_gen_key(b->index, prev->generation, "embeddings.parquet");
    int64_t hnsw_bytes = 0;
    uploaded = true;
    if ((rc = lh_store_copy(v->store, prev_emb, emb_key, err)) != 0 ||
        (rc = lh_vectors__upload(v, hnsw_tmp, hnsw_key, 0, &hnsw_bytes, err)) != 0)
        goto out;
    char created_at[LH_TIME_MAX];
    lh_time_format(lh_now_us(), created_at);
    json_t *desc = json_deep_copy(prev->desc);
    json_object_set(desc, "hnsw", hs);
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
        json_object_set_new(files, "embeddings", json_string(emb_key));
        json_object_set_new(files, "hnsw", json_string(hnsw_key));
        json_object_set_new(files, "hnsw_bytes", json_integer(hnsw_bytes));
    }
    char *text = json_dumps(desc, JSON_INDENT(2) | JSON_SORT_KEYS);
    rc = lh_store_put_buffer(v->store, desc_key, text, strlen(text), LH_PUT_CREATE_ONLY, err);
    free(text);
    if (rc == LH_EEXIST)
        lh_err_set(err, LH_EEXIST, 409, "conflict",
                   "generation %lld of index '%s' was committed by someone else",
                   (long long)generation, b->index);
    if (rc != 0) {
        json_decref(desc);
        goto out;
    }
    uploaded = false;

    /* the new generation: the same positions and documents, the new graph */
    g = lh_calloc(1, sizeof *g);
    atomic_init(&g->refs, 1);
    g->owner = v;
    g->generation = generation;
    g->desc = desc;
    g->hnsw = h;
    h = NULL;
    g->n = prev->n;
    g->n_docs = prev->n_docs;
    g->doc_of = lh_try_malloc(g->n * sizeof *g->doc_of + 1);
    g->chunk_of = lh_try_malloc(g->n * sizeof *g->chunk_of + 1);
    g->doc_ids = lh_try_malloc(g->n_docs * sizeof *g->doc_ids + 1);
    if (!g->doc_of || !g->chunk_of || !g->doc_ids) {
        free(g->doc_ids);
        g->doc_ids = NULL;
        g->n_docs = 0;
        rc = lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory for the index");
        goto out;
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
    if (prev->texts) {
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
    }
    if ((rc = lh_cache_local_path(v->deps.cache, v->store, emb_key, true, &g->emb_path, err)) != 0)
        goto out;
    g->emb_pinned = true;
    b->done = true;
    *out = lh_vgen__summary(g);
    json_object_set_new(*out, "index", json_string(b->index));
    json_object_set(*out, "hnsw", hs);
    json_object_set(*out, "promoted_from", json_object_get(g->desc, "promoted_from"));
    json_object_set(*out, "build_seconds", json_object_get(g->desc, "build_seconds"));
    lh_vectors__publish(v, b->x, g, "promote", b->actor);
    g = NULL;
    lh_log(LH_LOG_INFO, NULL, NULL, "vector index %s: generation %lld promoted (m %u, "
           "ef_construction %u, ef_search %u)", b->index, (long long)generation, params.m,
           params.ef_construction, params.ef_search);
out:
    if (uploaded)
        lh_vectors__discard(v, emb_key, hnsw_key);
    unlink(hnsw_tmp);
    free(hnsw_tmp);
    free(emb_key);
    free(hnsw_key);
    free(desc_key);
    free(prev_emb);
    lh_vgen__free(g);
    lh_hnsw_free(h);
    lh_vgen__release(prev);
    return rc;
}

/* ---- rollback ------------------------------------------------------------------------ */

int
lh_vectors_rollback(lh_vectors *v, const char *name, const char *actor, json_t **out, lh_err *err)
{
    pthread_mutex_lock(&v->lock);
    lh_vidx *x = lh_vectors__find_locked(v, name);
    int64_t target = x ? x->previous_live : 0;
    bool busy = x && x->building;
    if (x && !busy && target > 0)
        x->building = true; /* no build or second rollback meanwhile */
    pthread_mutex_unlock(&v->lock);
    if (!x) {
        lh_err_set(err, LH_ENOTFOUND, 404, "index_not_found", "no vector index named '%s'", name);
        return LH_ENOTFOUND;
    }
    if (busy) {
        lh_err_set(err, LH_EEXIST, 409, "index_building", "index '%s' is being built", name);
        lh_err_hint(err, "wait for the running build's job to finish");
        return LH_EEXIST;
    }
    if (target <= 0) {
        lh_err_set(err, LH_EEXIST, 409, "no_previous_generation",
                   "index '%s' has no earlier generation to go back to", name);
        return LH_EEXIST;
    }
    lh_vgen *g = NULL;
    int rc = lh_vectors__load_generation(v, name, target, &g, err);
    if (rc == LH_ENOTFOUND)
        lh_err_set(err, LH_ENOTFOUND, 409, "no_previous_generation",
                   "generation %lld of index '%s' is gone", (long long)target, name);
    if (rc == 0) {
        *out = lh_vgen__summary(g);
        json_object_set_new(*out, "index", json_string(name));
        json_object_set(*out, "hnsw", json_object_get(g->desc, "hnsw"));
        lh_vectors__publish(v, x, g, "rollback", actor);
        lh_log(LH_LOG_INFO, NULL, NULL, "vector index %s: rolled back to generation %lld", name,
               (long long)target);
    }
    pthread_mutex_lock(&v->lock);
    x->building = false;
    pthread_mutex_unlock(&v->lock);
    return rc;
}

/* ---- list, describe, drop ----------------------------------------------------------------- */

static json_t *
describe_locked(const lh_vidx *x)
{
    json_t *j = json_deep_copy(x->spec);
    json_object_set_new(j, "state", json_string(x->live ? "ready" : "building"));
    json_object_set_new(j, "building", json_boolean(x->building));
    const lh_vgen *g = x->live;
    if (g) {
        static const char *const copy[] = {"model_version", "dim", "created_at", "dataset_version",
                                           "skipped_rows", "build_seconds", NULL};
        for (size_t i = 0; copy[i]; i++)
            if (json_object_get(g->desc, copy[i]))
                json_object_set(j, copy[i], json_object_get(g->desc, copy[i]));
        json_object_set_new(j, "generation", json_integer(g->generation));
        json_object_set_new(j, "vectors", json_integer((json_int_t)g->n));
        json_object_set_new(j, "documents", json_integer((json_int_t)g->n_docs));
        json_object_set_new(j, "memory_bytes", json_integer((json_int_t)lh_vgen__memory(g)));
        json_object_set_new(j, "sidecar", json_string(g->hnsw_path ? "mapped" : "in_memory"));
        json_object_set_new(j, "texts", json_string(g->texts ? "in_memory" : "read_from_file"));
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
    long long generation = 0;
    const char *slash = strstr(e->key, "/gen-");
    size_t len = strlen(e->key);
    if (slash && len > 11 && strcmp(e->key + len - 11, "/index.json") == 0 &&
        sscanf(slash, "/gen-%lld/", &generation) == 1)
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
    pthread_mutex_unlock(&v->lock);
    if (!j)
        return lh_vectors__no_index(err, name);
    /* every committed generation in the bucket */
    json_t *gens = json_array();
    char *prefix = lh_layout_index_prefix(name);
    lh_err lerr;
    if (lh_store_each(v->store, prefix, on_gen_desc, gens, &lerr) != 0)
        lh_log_err(LH_LOG_WARN, NULL, &lerr);
    free(prefix);
    size_t i;
    json_t *g;
    json_array_foreach(gens, i, g)
    {
        json_object_set_new(g, "live",
                            json_boolean(json_integer_value(json_object_get(g, "generation")) == live));
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

int
lh_vectors_drop(lh_vectors *v, const char *name, lh_err *err)
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
    pthread_mutex_unlock(&v->lock);
    lh_vidx__free(x); /* searches in flight keep their generation alive */
    /* descriptors first: once they are gone, what is left is garbage a restart removes */
    json_t *keys = json_array();
    char *prefix = lh_layout_index_prefix(name);
    int rc = lh_store_each(v->store, prefix, collect_key, keys, err);
    free(prefix);
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k)
        {
            const char *key = json_string_value(k);
            size_t len = strlen(key);
            bool is_desc = len > 10 && strcmp(key + len - 10, "index.json") == 0;
            if (is_desc == (pass == 0) && rc == 0) {
                rc = lh_store_delete(v->store, key, err);
                if (rc == LH_ENOTFOUND)
                    rc = 0;
            }
        }
    }
    json_decref(keys);
    return rc;
}
