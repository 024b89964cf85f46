/*
 * trials.c — parameter trials: graphs built from an index's vectors with other HNSW
 * settings and measured against an eval set (evals.c), each result journaled
 * (trial_journal.c); and the cache of vectors the trials share.
 *
 * One graph is built per distinct (m, ef_construction, quantization); every ef_search of the
 * configs is measured on it on one thread, query by query, after a warm-up. Recall counts a hit
 * whose distance is within the k-th true neighbour's (ties are as good: the ann-benchmarks
 * definition), next to recall by positions alone.
 *
 * The vector cache holds generations' vectors (copied from a live graph, or read from an
 * embeddings file), reference-counted, bounded by [vector] trial_cache_bytes and
 * evicting the least recently used entry nobody holds. tc_lock guards it.
 */
#include "vector/vector_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONFIGS 64
#define WARMUP_QUERIES 20

/* ---- the vector cache --------------------------------------------------------------- */

static void
tvec_release(lh_vectors *v, lh_tvec *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&v->tc_lock);
    bool drop = --t->refs == 0 && !t->cached;
    pthread_mutex_unlock(&v->tc_lock);
    if (drop) {
        free(t->vectors);
        free(t);
    }
}

typedef struct vec_reader {
    float *vectors;
    size_t n, cap;
    uint32_t dim;
    lh_metric metric;
    lh_err *err;
} vec_reader;

static int
on_vec_batch(void *ctx, const lh_batch *b)
{
    vec_reader *r = ctx;
    for (size_t i = 0; i < lh_batch_rows(b); i++) {
        size_t dim = 0;
        const float *x = lh_batch_floats(b, 0, i, &dim);
        if (!x || dim != r->dim || r->n >= r->cap)
            return lh_err_set(r->err, LH_EINVAL, 422, "index_corrupt",
                              "the embeddings file does not match its descriptor");
        float *dst = r->vectors + r->n * r->dim;
        memcpy(dst, x, dim * sizeof *x);
        if (r->metric == LH_METRIC_COSINE)
            lh_vec_normalise(dst, dim);
        r->n++;
    }
    return 0;
}

/* Read n vectors of index's generation from its embeddings file into vectors. */
static int
read_vectors(lh_vectors *v, const char *bucket, const char *index, int64_t generation,
             float *vectors, size_t n, uint32_t dim, lh_metric metric, lh_err *err)
{
    char *key = lh_layout_gen_key(index, generation, "embeddings.parquet");
    char *path = NULL;
    lh_buf sql;
    lh_buf_init(&sql);
    int rc =
        lh_cache_local_path(v->deps.cache, lh_vectors__store(v, bucket), key, true, &path, err);
    if (rc != 0)
        goto out;
    vec_reader r = {.vectors = vectors, .cap = n, .dim = dim, .metric = metric, .err = err};
    lh_buf_puts(&sql, "SELECT CAST(vector AS FLOAT[]) FROM read_parquet(");
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, ") ORDER BY position");
    lh_scan_opts opts = {.sql = sql.data};
    rc = lh_engine_scan(v->deps.engine, &opts, on_vec_batch, &r, err);
    lh_cache_unpin(v->deps.cache, path);
    if (rc == 0 && r.n != n)
        rc = lh_err_set(err, LH_EINVAL, 422, "index_corrupt",
                        "the embeddings file holds %zu vectors, not %zu", r.n, n);
out:
    lh_buf_free(&sql);
    free(path);
    free(key);
    return rc;
}

/* Add t to the cache when it fits once the least recently used entries nobody holds are
 * evicted; else t stays outside (freed at its last release). */
static void
tvec_insert(lh_vectors *v, lh_tvec *t)
{
    pthread_mutex_lock(&v->tc_lock);
    while (v->tc_bytes + (int64_t)t->bytes > v->tc_max) {
        lh_tvec **victim = NULL;
        for (lh_tvec **link = &v->tc_list; *link; link = &(*link)->next)
            if ((*link)->refs == 0 && (!victim || (*link)->used_us < (*victim)->used_us))
                victim = link;
        if (!victim)
            break;
        lh_tvec *old = *victim;
        *victim = old->next;
        v->tc_bytes -= (int64_t)old->bytes;
        v->tc_evictions++;
        free(old->vectors);
        free(old);
    }
    if (v->tc_bytes + (int64_t)t->bytes <= v->tc_max) {
        t->cached = true;
        t->next = v->tc_list;
        v->tc_list = t;
        v->tc_bytes += (int64_t)t->bytes;
    }
    pthread_mutex_unlock(&v->tc_lock);
}

/* A cached entry for (index, generation), with a reference taken, or NULL. */
static lh_tvec *
tvec_find(lh_vectors *v, const char *index, int64_t generation)
{
    pthread_mutex_lock(&v->tc_lock);
    lh_tvec *t = v->tc_list;
    while (t && (t->generation != generation || strcmp(t->index, index) != 0))
        t = t->next;
    if (t) {
        t->refs++;
        t->used_us = lh_mono_us();
        v->tc_hits++;
    } else {
        v->tc_misses++;
    }
    pthread_mutex_unlock(&v->tc_lock);
    return t;
}

/* The vectors of index's generation (a reference: tvec_release). From the live graph
 * when it is that generation, else from the generation's embeddings file. */
static lh_tvec *
tvec_get(lh_vectors *v, const char *index, int64_t generation, const lh_vgen *live, uint32_t dim,
         size_t n, lh_metric metric, lh_err *err)
{
    lh_tvec *t = tvec_find(v, index, generation);
    if (t)
        return t;
    size_t bytes = n * (size_t)dim * sizeof(float);
    float *vectors = lh_try_malloc(bytes ? bytes : 1);
    if (!vectors) {
        lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory for the vectors");
        return NULL;
    }
    if (live && live->generation == generation)
        memcpy(vectors, lh_hnsw_vector(live->hnsw, 0), bytes);
    else if (read_vectors(v, live->bucket, index, generation, vectors, n, dim, metric, err) != 0) {
        free(vectors);
        return NULL;
    }
    t = lh_calloc(1, sizeof *t);
    snprintf(t->index, sizeof t->index, "%s", index);
    t->generation = generation;
    t->vectors = vectors;
    t->n = n;
    t->dim = dim;
    t->bytes = bytes;
    t->refs = 1;
    t->used_us = lh_mono_us();
    tvec_insert(v, t);
    return t;
}

void
lh_vectors__tcache_open(lh_vectors *v)
{
    pthread_mutex_init(&v->tc_lock, NULL);
    v->tc_max = lh_config_int(v->deps.config, "vector.trial_cache_bytes");
}

void
lh_vectors__tcache_close(lh_vectors *v)
{
    while (v->tc_list) {
        lh_tvec *t = v->tc_list;
        v->tc_list = t->next;
        free(t->vectors);
        free(t);
    }
    pthread_mutex_destroy(&v->tc_lock);
}

json_t *
lh_vectors_trial_cache_stats(lh_vectors *v)
{
    pthread_mutex_lock(&v->tc_lock);
    size_t entries = 0;
    for (lh_tvec *t = v->tc_list; t; t = t->next)
        entries++;
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "entries", (json_int_t)entries, "bytes",
                          (json_int_t)v->tc_bytes, "max_bytes", (json_int_t)v->tc_max, "hits",
                          (json_int_t)v->tc_hits, "misses", (json_int_t)v->tc_misses, "evictions",
                          (json_int_t)v->tc_evictions);
    pthread_mutex_unlock(&v->tc_lock);
    return j;
}

/* ---- trials ------------------------------------------------------------------------- */

struct lh_vtrial {
    lh_vectors *v;
    char index[LH_NAME_MAX], eval[LH_NAME_MAX];
    json_t *configs; /* validated: [{m, ef_construction, ef_search, quantization}] */
    char *actor;
};

const char *
lh_vtrial_index(const lh_vtrial *t)
{
    return t->index;
}

void
lh_vtrial_free(lh_vtrial *t)
{
    if (t == NULL)
        return;
    json_decref(t->configs);
    free(t->actor);
    free(t);
}

/* The configs of a trial body, validated, defaults filled in (new). */
static int
trial_configs(const json_t *configs, json_t **out, lh_err *err)
{
    if (!json_is_array(configs) || json_array_size(configs) == 0 ||
        json_array_size(configs) > MAX_CONFIGS)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'configs' must be an array of 1 to %d objects {m, ef_construction, "
                          "ef_search, quantization}",
                          MAX_CONFIGS);
    json_t *checked = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(configs, i, c)
    {
        json_t *one = NULL;
        char where[32];
        snprintf(where, sizeof where, "configs[%zu]", i);
        int rc = json_is_object(c) ? lh_vectors__hnsw_settings(c, where, true, &one, err)
                                   : lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                                                "configs[%zu] must be an object", i);
        if (rc != 0) {
            json_decref(checked);
            return rc;
        }
        json_array_append_new(checked, one);
    }
    *out = checked;
    return 0;
}

/* The index must exist and the eval set be one of its. */
static int
check_eval(lh_vectors *v, const char *index, const char *eval, lh_err *err)
{
    char eval_index[LH_NAME_MAX];
    if (!lh_vectors_dataset_of(v, index, eval_index, sizeof eval_index))
        return lh_vectors__no_index(err, index);
    if (!lh_vectors_eval_index(v, eval, eval_index, sizeof eval_index))
        return lh_vectors__eval_missing(err, eval);
    if (strcmp(eval_index, index) != 0)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "eval set '%s' is for index '%s', not '%s'", eval, eval_index, index);
    return 0;
}

int
lh_vectors_trial_begin(lh_vectors *v, const json_t *body, const char *actor, lh_vtrial **out,
                       lh_err *err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)body, key, val)
    {
        if (strcmp(key, "index") && strcmp(key, "eval") && strcmp(key, "configs")) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "unknown field '%s'", key);
            lh_err_hint(err, "fields: index, eval, configs");
            return LH_EINVAL;
        }
    }
    const char *index = json_string_value(json_object_get(body, "index"));
    const char *eval = json_string_value(json_object_get(body, "eval"));
    if (!index || !eval)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'index' and 'eval' are required strings");
    json_t *checked = NULL;
    int rc = trial_configs(json_object_get(body, "configs"), &checked, err);
    if (rc != 0)
        goto out;
    if ((rc = check_eval(v, index, eval, err)) != 0)
        goto out;
    lh_vtrial *t = lh_calloc(1, sizeof *t);
    t->v = v;
    snprintf(t->index, sizeof t->index, "%s", index);
    snprintf(t->eval, sizeof t->eval, "%s", eval);
    t->configs = checked;
    checked = NULL;
    t->actor = lh_strdup(actor ? actor : "");
    *out = t;
out:
    json_decref(checked);
    return rc;
}

static int
by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
percentile(const double *sorted, size_t n, double p)
{
    size_t i = (size_t)ceil(p * (double)n) - 1;
    return sorted[i < n ? i : n - 1];
}

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Measure h on the eval set, the query's own position dropped: recall@k counting a hit
 * whose distance is within the k-th true neighbour's (ties with it are as good: the
 * ann-benchmarks definition), recall by positions alone, and per-query latency. */
static void
measure(const lh_hnsw *h, const lh_veval *e, size_t ef, double *recall, double *recall_ids,
        double *lat_us, double *total_s)
{
    size_t k = e->k;
    lh_hit *hits = lh_calloc(k + 1, sizeof *hits);
    for (size_t q = 0; q < e->n && q < WARMUP_QUERIES; q++)
        lh_hnsw_search(h, e->queries + q * e->dim, k + 1, ef > k + 1 ? ef : k + 1, NULL, NULL,
                       hits);
    size_t found = 0, close = 0;
    double total = 0;
    for (size_t q = 0; q < e->n; q++) {
        int64_t t0 = now_ns();
        size_t got = lh_hnsw_search(h, e->queries + q * e->dim, k + 1, ef > k + 1 ? ef : k + 1,
                                    NULL, NULL, hits);
        int64_t dt = now_ns() - t0;
        lat_us[q] = (double)dt / 1000.0;
        total += (double)dt / 1e9;
        size_t kept = 0;
        float kth = e->truth_dist[q * k + k - 1];
        float eps = 1e-5f * (fabsf(kth) > 1.0f ? fabsf(kth) : 1.0f);
        for (size_t i = 0; i < got && kept < k; i++) {
            if ((int32_t)hits[i].id == e->positions[q])
                continue; /* the query itself */
            kept++;
            close += hits[i].distance <= kth + eps;
            for (size_t j = 0; j < k; j++)
                if (e->truth[q * k + j] == (int32_t)hits[i].id) {
                    found++;
                    break;
                }
        }
    }
    *recall = (double)close / (double)(e->n * k);
    *recall_ids = (double)found / (double)(e->n * k);
    *total_s = total;
    free(hits);
}

/* How many vectors the eval's generation holds: the live one's, or its descriptor's. */
static int
eval_generation_size(lh_vtrial *t, const lh_veval *e, const lh_vgen *live, size_t *n, lh_err *err)
{
    if (live->generation == e->generation) {
        *n = live->n;
        return 0;
    }
    char *key = lh_layout_gen_key(t->index, e->generation, "index.json");
    lh_buf text;
    lh_buf_init(&text);
    json_t *desc = NULL;
    int rc =
        lh_store_get_buffer(lh_vectors__store(t->v, live->bucket), key, 1 << 20, &text, NULL, err);
    if (rc == LH_ENOTFOUND)
        rc = lh_err_set(err, LH_ENOTFOUND, 409, "eval_stale",
                        "the generation eval set '%s' was sampled from is gone", t->eval);
    if (rc != 0)
        goto out;
    desc = json_loadb(text.data, text.len, 0, NULL);
    *n = (size_t)json_integer_value(json_object_get(desc, "vectors"));
out:
    json_decref(desc);
    lh_buf_free(&text);
    free(key);
    return rc;
}

/* What one trial run shares across its configs. */
typedef struct run {
    lh_vtrial *t;
    lh_job *job;
    const lh_veval *e;
    const lh_tvec *vec;
    const char *bucket; /* the index's */
    double *lat;        /* e->n latencies */
    int threads;
    bool *done; /* per config */
    size_t finished;
    json_t *results;
} run;

/* Measure graph h at ef and journal the result as config j's trial. */
static int
measure_config(run *r, const lh_hnsw *h, const lh_hnsw_params *params, size_t j, size_t ef,
               double build_s, bool graph_reused, lh_err *err)
{
    const lh_veval *e = r->e;
    double recall = 0, recall_ids = 0, total_s = 0;
    measure(h, e, ef, &recall, &recall_ids, r->lat, &total_s);
    qsort(r->lat, e->n, sizeof *r->lat, by_value);
    char created_at[LH_TIME_MAX], trial_id[64];
    int64_t now = lh_now_us();
    lh_time_format(now, created_at);
    snprintf(trial_id, sizeof trial_id, "tr_%lld_%zu", (long long)now, j);
    json_t *trial = json_pack(
        "{s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, "
        "s:f, s:f, s:f, s:b, s:I, s:i, s:s, s:s, s:s, s:s}",
        "trial_id", trial_id, "index", r->t->index, "generation", (json_int_t)e->generation, "eval",
        r->t->eval, "metric", e->metric, "m", (json_int_t)params->m, "ef_construction",
        (json_int_t)params->ef_construction, "ef_search", (json_int_t)ef, "k", (json_int_t)e->k,
        "queries", (json_int_t)e->n, "vectors", (json_int_t)r->vec->n, "dim",
        (json_int_t)r->vec->dim, "recall", recall, "recall_ids", recall_ids, "p50_us",
        percentile(r->lat, e->n, 0.50), "p95_us", percentile(r->lat, e->n, 0.95), "p99_us",
        percentile(r->lat, e->n, 0.99), "qps", total_s > 0 ? (double)e->n / total_s : 0.0,
        "build_seconds", build_s, "graph_reused", graph_reused, "memory_bytes",
        (json_int_t)lh_hnsw_served_memory(h), "threads", r->threads, "created_at", created_at,
        "created_by", r->t->actor, "job_id", r->job ? lh_job_id(r->job) : "", "quantization",
        lh_quant_name(params->quant));
    json_array_append(r->results, trial);
    /* residency: the trial is journaled in its index's bucket */
    int rc = lh_vectors__journal_trial(r->t->v, r->bucket, trial, err);
    json_decref(trial);
    return rc;
}

/* Build the graph of config i and measure every config not done yet that shares its
 * (m, ef_construction, quantization). */
static int
run_graph(run *r, size_t i, lh_metric metric, lh_err *err)
{
    const json_t *configs = r->t->configs;
    size_t n_configs = json_array_size(configs);
    lh_hnsw_params params = lh_vectors__hnsw_params(json_array_get(configs, i));
    lh_hnsw *h = NULL;
    int64_t t0 = lh_mono_us();
    int rc = lh_hnsw_build(r->vec->vectors, r->vec->n, r->vec->dim, metric, &params, r->threads, &h,
                           err);
    if (rc != 0)
        goto out;
    double build_s = (double)(lh_mono_us() - t0) / 1e6;
    bool graph_reused = false;
    for (size_t j = i; j < n_configs; j++) {
        lh_hnsw_params cj = lh_vectors__hnsw_params(json_array_get(configs, j));
        if (r->done[j] || cj.m != params.m || cj.ef_construction != params.ef_construction ||
            cj.quant != params.quant)
            continue;
        if ((rc = measure_config(r, h, &params, j, cj.ef_search, build_s, graph_reused, err)) != 0)
            goto out;
        graph_reused = true;
        r->done[j] = true;
        r->finished++;
        if (r->job)
            lh_job_progress(r->job, (int64_t)r->finished, (int64_t)n_configs, "configs");
    }
out:
    lh_hnsw_free(h);
    return rc;
}

int
lh_vtrial_run(lh_vtrial *t, lh_job *job, json_t **out, lh_err *err)
{
    lh_vectors *v = t->v;
    lh_veval e;
    lh_vgen *live = NULL;
    lh_tvec *vec = NULL;
    run r = {.t = t, .job = job, .e = &e, .results = json_array()};
    int rc = lh_vectors__eval_read(v, t->eval, false, &e, err);
    if (rc != 0)
        goto out;
    if ((live = lh_vectors__acquire(v, t->index, NULL, err)) == NULL) {
        rc = err->rc;
        goto out;
    }
    int metric = lh_metric_parse(e.metric);
    size_t n = 0;
    if ((rc = eval_generation_size(t, &e, live, &n, err)) != 0)
        goto out;
    if (metric < 0 || n == 0) {
        rc =
            lh_err_set(err, LH_EINVAL, 422, "eval_corrupt", "eval set '%s' is unreadable", t->eval);
        goto out;
    }
    if ((vec = tvec_get(v, t->index, e.generation, live, e.dim, n, (lh_metric)metric, err)) ==
        NULL) {
        rc = err->rc;
        goto out;
    }
    r.vec = vec;
    r.bucket = live->bucket;
    r.lat = lh_calloc(e.n, sizeof *r.lat);
    r.threads = (int)lh_config_int(v->deps.config, "vector.build_threads");
    r.done = lh_calloc(json_array_size(t->configs), sizeof *r.done);
    /* one graph per (m, ef_construction, quantization), shared by the configs that differ
     * in ef_search */
    for (size_t i = 0; i < json_array_size(t->configs) && rc == 0; i++) {
        if (r.done[i])
            continue;
        rc = run_graph(&r, i, (lh_metric)metric, err);
        if (rc == 0 && job && lh_job_cancelled(job))
            rc = lh_err_set(err, LH_ECANCELED, 409, "cancelled", "the trial was cancelled");
    }
    lh_vectors__journal_view(v); /* also after a failure: the trials journaled so far */
    if (rc == 0)
        *out = json_pack("{s:s, s:s, s:I, s:O}", "index", t->index, "eval", t->eval, "generation",
                         (json_int_t)e.generation, "trials", r.results);
out:
    json_decref(r.results);
    free(r.done);
    free(r.lat);
    tvec_release(v, vec);
    lh_vgen__release(live);
    lh_vectors__eval_free(&e);
    return rc;
}
