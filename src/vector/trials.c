/*
 * trials.c — the trial system: eval sets with exact ground truth, parameter trials that
 * build graphs from an index's vectors and measure them, the trial journal and its SQL
 * view, and the cache of vectors trials share.
 *
 * Eval sets are Parquet (_hnsw/evals/{name}.parquet), one row per query: the sampled
 * position and its document, the query vector, the exact top-k positions and distances
 * with the query's own position left out (so a query cannot find itself and inflate
 * recall). They belong to the generation they were sampled from; trials build over that
 * generation's vectors, so the ground truth always matches.
 *
 * Trials are appended to the trial journal, an append log of JSON lines under
 * _hnsw/trials/ (flushed after every trial), which the users' engine reads as the view
 * `_hnsw_trials`. Latency is measured on one thread, query by query, after a warm-up.
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
#include <unistd.h>

#define MAX_CONFIGS 64
#define WARMUP_QUERIES 20

static const char *
str_of(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

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

/* The vectors of index's generation (a reference: tvec_release). From the live graph
 * when it is that generation, else from the generation's embeddings file. */
static lh_tvec *
tvec_get(lh_vectors *v, const char *index, int64_t generation, const lh_vgen *live,
         uint32_t dim, size_t n, lh_metric metric, lh_err *err)
{
    pthread_mutex_lock(&v->tc_lock);
    for (lh_tvec *t = v->tc_list; t; t = t->next)
        if (t->generation == generation && strcmp(t->index, index) == 0) {
            t->refs++;
            t->used_us = lh_mono_us();
            v->tc_hits++;
            pthread_mutex_unlock(&v->tc_lock);
            return t;
        }
    v->tc_misses++;
    pthread_mutex_unlock(&v->tc_lock);

    size_t bytes = n * (size_t)dim * sizeof(float);
    float *vectors = lh_try_malloc(bytes ? bytes : 1);
    if (!vectors) {
        lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory for the vectors");
        return NULL;
    }
    if (live && live->generation == generation) {
        memcpy(vectors, lh_hnsw_vector(live->hnsw, 0), bytes);
    } else {
        char *key = lh_layout_gen_key(index, generation, "embeddings.parquet");
        char *path = NULL;
        int rc = lh_cache_local_path(v->deps.cache, v->store, key, true, &path, err);
        free(key);
        if (rc == 0) {
            vec_reader r = {.vectors = vectors, .cap = n, .dim = dim, .metric = metric, .err = err};
            lh_buf sql;
            lh_buf_init(&sql);
            lh_buf_puts(&sql, "SELECT CAST(vector AS FLOAT[]) FROM read_parquet(");
            lh_sql_quote(&sql, path);
            lh_buf_puts(&sql, ") ORDER BY position");
            lh_scan_opts opts = {.sql = sql.data};
            rc = lh_engine_scan(v->deps.engine, &opts, on_vec_batch, &r, err);
            lh_buf_free(&sql);
            lh_cache_unpin(v->deps.cache, path);
            free(path);
            if (rc == 0 && r.n != n)
                rc = lh_err_set(err, LH_EINVAL, 422, "index_corrupt",
                                "the embeddings file holds %zu vectors, not %zu", r.n, n);
        }
        if (rc != 0) {
            free(vectors);
            return NULL;
        }
    }
    lh_tvec *t = lh_calloc(1, sizeof *t);
    snprintf(t->index, sizeof t->index, "%s", index);
    t->generation = generation;
    t->vectors = vectors;
    t->n = n;
    t->dim = dim;
    t->bytes = bytes;
    t->refs = 1;
    t->used_us = lh_mono_us();
    pthread_mutex_lock(&v->tc_lock);
    /* make room: the least recently used entries nobody holds */
    while (v->tc_bytes + (int64_t)bytes > v->tc_max) {
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
    if (v->tc_bytes + (int64_t)bytes <= v->tc_max) {
        t->cached = true;
        t->next = v->tc_list;
        v->tc_list = t;
        v->tc_bytes += (int64_t)bytes;
    }
    pthread_mutex_unlock(&v->tc_lock);
    return t;
}

json_t *
lh_vectors_trial_cache_stats(lh_vectors *v)
{
    pthread_mutex_lock(&v->tc_lock);
    size_t entries = 0;
    for (lh_tvec *t = v->tc_list; t; t = t->next)
        entries++;
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "entries", (json_int_t)entries,
                          "bytes", (json_int_t)v->tc_bytes, "max_bytes", (json_int_t)v->tc_max,
                          "hits", (json_int_t)v->tc_hits, "misses", (json_int_t)v->tc_misses,
                          "evictions", (json_int_t)v->tc_evictions);
    pthread_mutex_unlock(&v->tc_lock);
    return j;
}

/* ---- the journal and its view ------------------------------------------------------- */

#define TRIAL_COLUMNS                                                                        \
    "trial_id: 'VARCHAR', index: 'VARCHAR', generation: 'BIGINT', eval: 'VARCHAR', "          \
    "metric: 'VARCHAR', m: 'INTEGER', ef_construction: 'INTEGER', ef_search: 'INTEGER', "      \
    "k: 'INTEGER', queries: 'INTEGER', vectors: 'BIGINT', dim: 'INTEGER', "                    \
    "recall: 'DOUBLE', recall_ids: 'DOUBLE', p50_us: 'DOUBLE', p95_us: 'DOUBLE', p99_us: 'DOUBLE', qps: 'DOUBLE', " \
    "build_seconds: 'DOUBLE', graph_reused: 'BOOLEAN', memory_bytes: 'BIGINT', "             \
    "threads: 'INTEGER', created_at: 'VARCHAR', created_by: 'VARCHAR', job_id: 'VARCHAR'"

#define TRIALS_EMPTY                                                                          \
    "SELECT NULL::VARCHAR AS trial_id, NULL::VARCHAR AS index, NULL::BIGINT AS generation, "   \
    "NULL::VARCHAR AS eval, NULL::VARCHAR AS metric, NULL::INTEGER AS m, "                     \
    "NULL::INTEGER AS ef_construction, NULL::INTEGER AS ef_search, NULL::INTEGER AS k, "       \
    "NULL::INTEGER AS queries, NULL::BIGINT AS vectors, NULL::INTEGER AS dim, "                \
    "NULL::DOUBLE AS recall, NULL::DOUBLE AS recall_ids, NULL::DOUBLE AS p50_us, NULL::DOUBLE AS p95_us, "                 \
    "NULL::DOUBLE AS p99_us, NULL::DOUBLE AS qps, NULL::DOUBLE AS build_seconds, "             \
    "NULL::BOOLEAN AS graph_reused, NULL::BIGINT AS memory_bytes, NULL::INTEGER AS threads, " \
    "NULL::VARCHAR AS created_at, NULL::VARCHAR AS created_by, NULL::VARCHAR AS job_id LIMIT 0"

typedef struct view_files {
    lh_vectors *v;
    lh_buf list;
    char **pins;
    size_t n_pins, cap;
} view_files;

static int
on_trial_batch_key(void *ctx, const lh_list_entry *e)
{
    view_files *f = ctx;
    size_t len = strlen(e->key);
    if (len < 6 || strcmp(e->key + len - 6, ".jsonl") != 0)
        return 0;
    char *path = NULL;
    lh_err err;
    if (lh_cache_local_path(f->v->deps.cache, f->v->store, e->key, true, &path, &err) != 0) {
        lh_log_err(LH_LOG_WARN, NULL, &err);
        return 0;
    }
    if (f->n_pins == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        f->pins = lh_realloc(f->pins, f->cap * sizeof *f->pins);
    }
    f->pins[f->n_pins++] = path;
    lh_buf_puts(&f->list, f->list.len ? ", " : "");
    lh_sql_quote(&f->list, path);
    return 0;
}

/* Redefine `_hnsw_trials` in the users' engine over every stored journal batch. */
static void
define_view(lh_vectors *v)
{
    view_files f = {.v = v};
    lh_buf_init(&f.list);
    lh_err err;
    if (lh_store_each(v->store, LH_LAYOUT_TRIALS, on_trial_batch_key, &f, &err) != 0)
        lh_log_err(LH_LOG_WARN, NULL, &err);
    lh_buf sql;
    lh_buf_init(&sql);
    if (f.list.len)
        lh_buf_printf(&sql,
                      "CREATE OR REPLACE VIEW _hnsw_trials AS SELECT * FROM read_json([%s], "
                      "format = 'newline_delimited', columns = {" TRIAL_COLUMNS "})",
                      f.list.data);
    else
        lh_buf_puts(&sql, "CREATE OR REPLACE VIEW _hnsw_trials AS " TRIALS_EMPTY);
    if (lh_engine_exec(v->deps.views, sql.data, NULL, &err) != 0)
        lh_log(LH_LOG_ERROR, NULL, NULL, "trials: view _hnsw_trials not defined: %s %s",
               err.message, err.detail);
    lh_buf_free(&sql);
    lh_buf_free(&f.list);
    /* swap the pins: the old view's files may go */
    pthread_mutex_lock(&v->tc_lock);
    char **old = v->view_pins;
    size_t n_old = v->n_view_pins;
    v->view_pins = f.pins;
    v->n_view_pins = f.n_pins;
    pthread_mutex_unlock(&v->tc_lock);
    for (size_t i = 0; i < n_old; i++) {
        lh_cache_unpin(v->deps.cache, old[i]);
        free(old[i]);
    }
    free(old);
}

int
lh_vectors__trials_open(lh_vectors *v, lh_err *err)
{
    (void)err;
    pthread_mutex_init(&v->tc_lock, NULL);
    v->tc_max = lh_config_int(v->deps.config, "vector.trial_cache_bytes");
    /* every trial is flushed as it finishes; the bounds only matter for bursts */
    v->trials = lh_applog_new(v->store, LH_LAYOUT_TRIALS, 1000, 60000);
    define_view(v);
    return 0;
}

void
lh_vectors__trials_close(lh_vectors *v)
{
    if (v->trials) {
        lh_err err;
        if (lh_applog_flush(v->trials, &err) != 0)
            lh_log_err(LH_LOG_WARN, NULL, &err);
        lh_applog_free(v->trials);
    }
    while (v->tc_list) {
        lh_tvec *t = v->tc_list;
        v->tc_list = t->next;
        free(t->vectors);
        free(t);
    }
    for (size_t i = 0; i < v->n_view_pins; i++) {
        lh_cache_unpin(v->deps.cache, v->view_pins[i]);
        free(v->view_pins[i]);
    }
    free(v->view_pins);
    pthread_mutex_destroy(&v->tc_lock);
}

int
lh_vectors_trials(lh_vectors *v, const char *index, json_t **out, lh_err *err)
{
    json_t *all = NULL;
    int rc = lh_applog_read(v->trials, 1000000, &all, err);
    if (rc != 0)
        return rc;
    json_t *mine = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(all, i, t)
    {
        if (strcmp(str_of(t, "index"), index) == 0)
            json_array_append(mine, t);
    }
    json_decref(all);
    *out = mine;
    return 0;
}

int
lh_vectors__trial_config(lh_vectors *v, const char *index, const char *trial_id, json_t **hnsw,
                         lh_err *err)
{
    json_t *mine = NULL;
    int rc = lh_vectors_trials(v, index, &mine, err);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *t;
    json_t *found = NULL;
    json_array_foreach(mine, i, t)
    {
        if (strcmp(str_of(t, "trial_id"), trial_id) == 0)
            found = t;
    }
    if (found)
        *hnsw = json_pack("{s:O, s:O, s:O}", "m", json_object_get(found, "m"), "ef_construction",
                          json_object_get(found, "ef_construction"), "ef_search",
                          json_object_get(found, "ef_search"));
    json_decref(mine);
    if (!found) {
        lh_err_set(err, LH_ENOTFOUND, 404, "trial_not_found",
                   "index '%s' has no trial '%s'", index, trial_id);
        lh_err_hint(err, "GET /vectors/hnsw/trials/%s lists them", index);
        return LH_ENOTFOUND;
    }
    return 0;
}

int
lh_vectors_trial_best(lh_vectors *v, const char *index, double min_recall, double max_p95_us,
                      json_t **out, lh_err *err)
{
    json_t *mine = NULL;
    int rc = lh_vectors_trials(v, index, &mine, err);
    if (rc != 0)
        return rc;
    json_t *best = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(mine, i, t)
    {
        double recall = json_number_value(json_object_get(t, "recall"));
        double p50 = json_number_value(json_object_get(t, "p50_us"));
        double p95 = json_number_value(json_object_get(t, "p95_us"));
        double best_recall = best ? json_number_value(json_object_get(best, "recall")) : 0;
        double best_p50 = best ? json_number_value(json_object_get(best, "p50_us")) : 0;
        double best_p95 = best ? json_number_value(json_object_get(best, "p95_us")) : 0;
        bool better;
        if (min_recall >= 0) /* the fastest that meets the recall; ties: the lower p95 */
            better = recall >= min_recall &&
                     (!best || p50 < best_p50 || (p50 == best_p50 && p95 < best_p95));
        else /* the best recall within the latency; ties: the faster */
            better = p95 <= max_p95_us &&
                     (!best || recall > best_recall || (recall == best_recall && p50 < best_p50));
        if (better)
            best = t;
    }
    if (best)
        *out = json_deep_copy(best);
    json_decref(mine);
    if (!best) {
        if (min_recall >= 0)
            lh_err_set(err, LH_ENOTFOUND, 404, "no_trial",
                       "no trial of index '%s' reached recall %.4g", index, min_recall);
        else
            lh_err_set(err, LH_ENOTFOUND, 404, "no_trial",
                       "no trial of index '%s' kept p95 within %.0f us", index, max_p95_us);
        lh_err_hint(err, "run more configurations with POST /vectors/hnsw/trial");
        return LH_ENOTFOUND;
    }
    return 0;
}

/* ---- eval sets ---------------------------------------------------------------------- */

static bool
exclude_one(void *ctx, uint32_t id)
{
    return id != *(const uint32_t *)ctx;
}

static int
eval_missing(lh_err *err, const char *eval)
{
    lh_err_set(err, LH_ENOTFOUND, 404, "eval_not_found", "no eval set named '%s'", eval);
    lh_err_hint(err, "create one with POST /vectors/hnsw/evals/%s/autogen", eval);
    return LH_ENOTFOUND;
}

static int
int_field(const json_t *body, const char *key, int64_t def, int64_t min, int64_t max,
          int64_t *out, lh_err *err)
{
    const json_t *j = json_object_get(body, key);
    if (j && (!json_is_integer(j) || json_integer_value(j) < min || json_integer_value(j) > max))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'%s' must be an integer from %lld to %lld", key, (long long)min,
                          (long long)max);
    *out = j ? json_integer_value(j) : def;
    return 0;
}

int
lh_vectors_eval_autogen(lh_vectors *v, const char *eval, const json_t *body, json_t **out,
                        lh_err *err)
{
    static const char *const fields[] = {"index", "n_queries", "k", "seed", NULL};
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)body, key, val)
    {
        bool known = false;
        for (size_t i = 0; fields[i]; i++)
            known = known || strcmp(key, fields[i]) == 0;
        if (!known) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "unknown field '%s'", key);
            lh_err_hint(err, "fields: index, n_queries, k, seed");
            return LH_EINVAL;
        }
    }
    if (!lh_name_valid(eval))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'%s' is not a name: a lowercase letter, then lowercase letters, "
                          "digits or underscores", eval);
    const char *index = json_string_value(json_object_get(body, "index"));
    if (!index)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'index' (the vector index to sample) is required");
    int64_t n_queries, k, seed;
    int rc;
    if ((rc = int_field(body, "n_queries", 200, 1, 10000, &n_queries, err)) != 0 ||
        (rc = int_field(body, "k", 10, 1, 1000, &k, err)) != 0 ||
        (rc = int_field(body, "seed", 42, 0, INT64_MAX, &seed, err)) != 0)
        return rc;
    lh_vgen *g = lh_vectors__acquire(v, index, NULL, err);
    if (!g)
        return err->rc;
    size_t n = g->n;
    uint32_t dim = lh_hnsw_dim(g->hnsw);
    lh_metric metric = lh_hnsw_metric(g->hnsw);
    char *eval_key = lh_sprintf(LH_LAYOUT_EVALS "%s.parquet", eval);
    char *tmp = lh_vectors__work_file(v, ".parquet");
    uint32_t *positions = NULL;
    lh_hit *hits = NULL;
    lh_writer *w = NULL;
    lh_obj_info info;
    lh_err ignored;
    if (lh_store_head(v->store, eval_key, &info, &ignored) == 0) {
        rc = lh_err_set(err, LH_EEXIST, 409, "eval_exists", "an eval set named '%s' exists", eval);
        goto out;
    }
    if (n < 2 || (size_t)k >= n) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'k' must be below the index's %zu vectors", n);
        goto out;
    }
    if ((size_t)n_queries > n)
        n_queries = (int64_t)n;
    /* a reproducible sample without repeats: a partial Fisher-Yates over the positions */
    positions = lh_try_malloc(n * sizeof *positions);
    hits = lh_calloc((size_t)k + 1, sizeof *hits);
    if (!positions) {
        rc = lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory to sample");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        positions[i] = (uint32_t)i;
    uint64_t state = (uint64_t)seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < (size_t)n_queries; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t j = i + (size_t)((state >> 33) % (n - i));
        uint32_t t = positions[i];
        positions[i] = positions[j];
        positions[j] = t;
    }
    char *cols = lh_sprintf("eval VARCHAR, index VARCHAR, generation BIGINT, metric VARCHAR, "
                            "k INTEGER, created_at VARCHAR, query_id INTEGER, position INTEGER, "
                            "doc_id VARCHAR, query_vector FLOAT[%u], truth INTEGER[%lld], "
                            "truth_distance FLOAT[%lld]", dim, (long long)k, (long long)k);
    rc = lh_writer_open(v->deps.engine, cols, &w, err);
    free(cols);
    char created_at[LH_TIME_MAX];
    lh_time_format(lh_now_us(), created_at);
    const float *vectors = lh_hnsw_vector(g->hnsw, 0);
    int32_t *truth = lh_calloc((size_t)k, sizeof *truth);
    float *dist = lh_calloc((size_t)k, sizeof *dist);
    for (size_t q = 0; rc == 0 && q < (size_t)n_queries; q++) {
        uint32_t p = positions[q];
        size_t got = lh_vec_exact(vectors, n, dim, metric, vectors + (size_t)p * dim, (size_t)k,
                                  exclude_one, &p, 0, hits);
        if (got != (size_t)k) {
            rc = lh_err_set(err, LH_EINTERNAL, 500, "internal", "exact search came back short");
            break;
        }
        for (size_t i = 0; i < (size_t)k; i++) {
            truth[i] = (int32_t)hits[i].id;
            dist[i] = hits[i].distance;
        }
        const char *doc = g->doc_ids[g->doc_of[p]];
        lh_writer_str(w, 0, eval, strlen(eval));
        lh_writer_str(w, 1, index, strlen(index));
        lh_writer_int(w, 2, g->generation);
        lh_writer_str(w, 3, lh_metric_name(metric), strlen(lh_metric_name(metric)));
        lh_writer_int(w, 4, k);
        lh_writer_str(w, 5, created_at, strlen(created_at));
        lh_writer_int(w, 6, (int64_t)q);
        lh_writer_int(w, 7, p);
        lh_writer_str(w, 8, doc, strlen(doc));
        lh_writer_floats(w, 9, vectors + (size_t)p * dim, dim);
        lh_writer_ints(w, 10, truth, (size_t)k);
        lh_writer_floats(w, 11, dist, (size_t)k);
        rc = lh_writer_next_row(w, err);
    }
    free(truth);
    free(dist);
    if (rc == 0)
        rc = lh_writer_finish(w, tmp, NULL, err);
    if (rc == 0) {
        rc = lh_vectors__upload(v, tmp, eval_key, LH_PUT_CREATE_ONLY, NULL, err);
        if (rc == LH_EEXIST)
            lh_err_set(err, LH_EEXIST, 409, "eval_exists", "an eval set named '%s' exists", eval);
    }
    if (rc == 0)
        *out = json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:s, s:s}", "eval", eval, "index", index,
                         "generation", (json_int_t)g->generation, "metric",
                         lh_metric_name(metric), "k", (json_int_t)k, "queries",
                         (json_int_t)n_queries, "created_at", created_at, "key", eval_key);
out:
    lh_writer_free(w);
    unlink(tmp);
    free(tmp);
    free(eval_key);
    free(positions);
    free(hits);
    lh_vgen__release(g);
    return rc;
}

/* What an eval file holds, read back. */
typedef struct eval_set {
    char index[LH_NAME_MAX];
    int64_t generation;
    char metric[16];
    char created_at[LH_TIME_MAX];
    size_t k, n, cap;
    uint32_t dim;
    float *queries;      /* n * dim */
    int32_t *truth;      /* n * k */
    float *truth_dist;   /* n * k */
    int32_t *positions;  /* n */
    json_t *rows;        /* with_rows: [{query_id, position, doc_id, truth}] */
    bool with_rows;
    lh_err *err;
} eval_set;

static int
on_eval_batch(void *ctx, const lh_batch *b)
{
    eval_set *e = ctx;
    for (size_t i = 0; i < lh_batch_rows(b); i++) {
        size_t len = 0, dim = 0, k = 0;
        int64_t generation = 0, position = 0, query_id = 0;
        const char *index = lh_batch_str(b, 0, i, &len);
        if (index && e->n == 0)
            snprintf(e->index, sizeof e->index, "%.*s", (int)len, index);
        const char *metric = lh_batch_str(b, 2, i, &len);
        if (metric && e->n == 0)
            snprintf(e->metric, sizeof e->metric, "%.*s", (int)len, metric);
        const char *created = lh_batch_str(b, 3, i, &len);
        if (created && e->n == 0)
            snprintf(e->created_at, sizeof e->created_at, "%.*s", (int)len, created);
        lh_batch_int(b, 1, i, &generation);
        lh_batch_int(b, 4, i, &query_id);
        lh_batch_int(b, 5, i, &position);
        const float *q = lh_batch_floats(b, 7, i, &dim);
        const int32_t *t = lh_batch_ints(b, 8, i, &k);
        size_t k_dist = 0;
        const float *td = lh_batch_floats(b, 9, i, &k_dist);
        if (!q || !t || !td || k == 0 || k_dist != k || (e->n > 0 && (dim != e->dim || k != e->k)))
            return lh_err_set(e->err, LH_EINVAL, 422, "eval_corrupt",
                              "the eval file's rows do not agree");
        if (e->n == 0) {
            e->generation = generation;
            e->dim = (uint32_t)dim;
            e->k = k;
        }
        if (e->n == e->cap) {
            size_t cap = e->cap ? 2 * e->cap : 256;
            float *nq = lh_try_realloc(e->queries, cap * dim * sizeof *nq);
            if (nq)
                e->queries = nq;
            int32_t *nt = nq ? lh_try_realloc(e->truth, cap * k * sizeof *nt) : NULL;
            if (nt)
                e->truth = nt;
            int32_t *np = nt ? lh_try_realloc(e->positions, cap * sizeof *np) : NULL;
            if (np)
                e->positions = np;
            float *nd = np ? lh_try_realloc(e->truth_dist, cap * k * sizeof *nd) : NULL;
            if (!nd)
                return lh_err_set(e->err, LH_ENOMEM, 503, "out_of_memory",
                                  "not enough memory for the eval set");
            e->truth_dist = nd;
            e->cap = cap;
        }
        memcpy(e->queries + e->n * dim, q, dim * sizeof *q);
        memcpy(e->truth + e->n * k, t, k * sizeof *t);
        memcpy(e->truth_dist + e->n * k, td, k * sizeof *td);
        e->positions[e->n] = (int32_t)position;
        if (e->with_rows) {
            const char *doc = lh_batch_str(b, 6, i, &len);
            json_t *truth = json_array();
            for (size_t j = 0; j < k; j++)
                json_array_append_new(truth, json_integer(t[j]));
            json_array_append_new(e->rows, json_pack("{s:I, s:I, s:s%, s:o}", "query_id",
                                                     (json_int_t)query_id, "position",
                                                     (json_int_t)position, "doc_id",
                                                     doc ? doc : "", doc ? len : 0, "truth", truth));
        }
        e->n++;
    }
    return 0;
}

static void
eval_free(eval_set *e)
{
    free(e->queries);
    free(e->truth);
    free(e->truth_dist);
    free(e->positions);
    json_decref(e->rows);
}

/* The local path of eval's file (new), or 404 eval_not_found. */
static int
eval_path(lh_vectors *v, const char *eval, char **path, lh_err *err)
{
    if (!lh_name_valid(eval))
        return eval_missing(err, eval);
    char *key = lh_sprintf(LH_LAYOUT_EVALS "%s.parquet", eval);
    lh_obj_info info;
    int rc = lh_store_head(v->store, key, &info, err);
    if (rc == 0)
        rc = lh_cache_local_path(v->deps.cache, v->store, key, false, path, err);
    free(key);
    return rc == LH_ENOTFOUND ? eval_missing(err, eval) : rc;
}

/* An eval set's summary (new), read from the file's small columns only. */
static int
eval_head(lh_vectors *v, const char *eval, json_t **out, lh_err *err)
{
    char *path = NULL;
    int rc = eval_path(v, eval, &path, err);
    if (rc != 0)
        return rc;
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT any_value(eval) AS eval, any_value(index) AS index, "
                      "any_value(generation) AS generation, any_value(metric) AS metric, "
                      "any_value(k) AS k, count(*) AS queries, "
                      "len(any_value(query_vector)) AS dim, any_value(created_at) AS created_at "
                      "FROM read_parquet(");
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, ")");
    json_t *rows = NULL;
    rc = lh_engine_rows(v->deps.engine, sql.data, &rows, err);
    lh_buf_free(&sql);
    free(path);
    json_t *head = json_array_get(rows, 0);
    if (rc == 0 && (!json_is_string(json_object_get(head, "index")) ||
                    json_integer_value(json_object_get(head, "queries")) <= 0))
        rc = lh_err_set(err, LH_EINVAL, 422, "eval_corrupt", "eval set '%s' holds no query", eval);
    if (rc == 0)
        *out = json_incref(head);
    json_decref(rows);
    return rc;
}

static int
eval_read(lh_vectors *v, const char *eval, bool with_rows, eval_set *e, lh_err *err)
{
    memset(e, 0, sizeof *e);
    e->err = err;
    e->with_rows = with_rows;
    e->rows = with_rows ? json_array() : NULL;
    char *path = NULL;
    int rc = eval_path(v, eval, &path, err);
    if (rc != 0)
        return rc;
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT index, generation, metric, created_at, query_id, position, doc_id, "
                      "CAST(query_vector AS FLOAT[]), CAST(truth AS INTEGER[]), "
                      "CAST(truth_distance AS FLOAT[]) FROM read_parquet(");
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, ") ORDER BY query_id");
    lh_scan_opts opts = {.sql = sql.data};
    rc = lh_engine_scan(v->deps.engine, &opts, on_eval_batch, e, err);
    lh_buf_free(&sql);
    free(path);
    if (rc == 0 && e->n == 0)
        rc = lh_err_set(err, LH_EINVAL, 422, "eval_corrupt", "eval set '%s' holds no query", eval);
    return rc;
}

static json_t *
eval_summary(const char *eval, const eval_set *e)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:I, s:s}", "eval", eval, "index", e->index,
                     "generation", (json_int_t)e->generation, "metric", e->metric, "k",
                     (json_int_t)e->k, "queries", (json_int_t)e->n, "dim", (json_int_t)e->dim,
                     "created_at", e->created_at);
}

int
lh_vectors_eval_get(lh_vectors *v, const char *eval, json_t **out, lh_err *err)
{
    eval_set e;
    int rc = eval_read(v, eval, true, &e, err);
    if (rc == 0) {
        *out = eval_summary(eval, &e);
        json_object_set(*out, "query_list", e.rows);
    }
    eval_free(&e);
    return rc;
}

bool
lh_vectors_eval_index(lh_vectors *v, const char *eval, char *out, size_t size)
{
    json_t *head = NULL;
    lh_err err;
    if (eval_head(v, eval, &head, &err) != 0)
        return false;
    snprintf(out, size, "%s", json_string_value(json_object_get(head, "index")));
    json_decref(head);
    return true;
}

static int
on_eval_key(void *ctx, const lh_list_entry *entry)
{
    json_t *names = ctx;
    const char *base = entry->key + strlen(LH_LAYOUT_EVALS);
    size_t len = strlen(base);
    if (len > 8 && strcmp(base + len - 8, ".parquet") == 0 && !strchr(base, '/'))
        json_array_append_new(names, json_stringn(base, len - 8));
    return 0;
}

json_t *
lh_vectors_evals(lh_vectors *v)
{
    json_t *names = json_array(), *out = json_array();
    lh_err err;
    if (lh_store_each(v->store, LH_LAYOUT_EVALS, on_eval_key, names, &err) != 0)
        lh_log_err(LH_LOG_WARN, NULL, &err);
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
    {
        json_t *head = NULL;
        if (eval_head(v, json_string_value(name), &head, &err) == 0)
            json_array_append_new(out, head);
    }
    json_decref(names);
    return out;
}

/* ---- trials ------------------------------------------------------------------------- */

struct lh_vtrial {
    lh_vectors *v;
    char index[LH_NAME_MAX], eval[LH_NAME_MAX];
    json_t *configs; /* validated: [{m, ef_construction, ef_search}] */
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
    const json_t *configs = json_object_get(body, "configs");
    if (!index || !eval)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'index' and 'eval' are required strings");
    if (!json_is_array(configs) || json_array_size(configs) == 0 ||
        json_array_size(configs) > MAX_CONFIGS)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'configs' must be an array of 1 to %d objects {m, ef_construction, "
                          "ef_search}", MAX_CONFIGS);
    json_t *checked = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(configs, i, c)
    {
        static const char *const names[] = {"m", "ef_construction", "ef_search"};
        static const int64_t lo[] = {2, 1, 1}, hi[] = {128, 4096, 4096}, def[] = {16, 80, 30};
        json_t *one = json_object();
        int rc = json_is_object(c) ? 0
                                   : lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                                                "configs[%zu] must be an object", i);
        json_object_foreach(rc == 0 ? c : NULL, key, val)
        {
            if (rc == 0 && strcmp(key, "m") && strcmp(key, "ef_construction") &&
                strcmp(key, "ef_search"))
                rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                                "configs[%zu] has an unknown field '%s' (m, ef_construction, "
                                "ef_search)", i, key);
        }
        for (size_t f = 0; f < 3 && rc == 0; f++) {
            const json_t *x = json_object_get(c, names[f]);
            if (x && (!json_is_integer(x) || json_integer_value(x) < lo[f] ||
                      json_integer_value(x) > hi[f]))
                rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                                "configs[%zu].%s must be an integer from %lld to %lld", i,
                                names[f], (long long)lo[f], (long long)hi[f]);
            else
                json_object_set_new(one, names[f], json_integer(x ? json_integer_value(x) : def[f]));
        }
        if (rc != 0) {
            json_decref(one);
            json_decref(checked);
            return rc;
        }
        json_array_append_new(checked, one);
    }
    char eval_index[LH_NAME_MAX];
    int rc = 0;
    if (!lh_vectors_dataset_of(v, index, eval_index, sizeof eval_index)) {
        lh_err_set(err, LH_ENOTFOUND, 404, "index_not_found", "no vector index named '%s'", index);
        rc = LH_ENOTFOUND;
    } else if (!lh_vectors_eval_index(v, eval, eval_index, sizeof eval_index)) {
        rc = eval_missing(err, eval);
    } else if (strcmp(eval_index, index) != 0) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "eval set '%s' is for index '%s', not '%s'", eval, eval_index, index);
    }
    if (rc != 0) {
        json_decref(checked);
        return rc;
    }
    lh_vtrial *t = lh_calloc(1, sizeof *t);
    t->v = v;
    snprintf(t->index, sizeof t->index, "%s", index);
    snprintf(t->eval, sizeof t->eval, "%s", eval);
    t->configs = checked;
    t->actor = lh_strdup(actor ? actor : "");
    *out = t;
    return 0;
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
measure(const lh_hnsw *h, const eval_set *e, size_t ef, double *recall, double *recall_ids,
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

int
lh_vtrial_run(lh_vtrial *t, lh_job *job, json_t **out, lh_err *err)
{
    lh_vectors *v = t->v;
    eval_set e;
    int rc = eval_read(v, t->eval, false, &e, err);
    lh_vgen *live = NULL;
    lh_tvec *vec = NULL;
    lh_hnsw *h = NULL;
    double *lat = NULL;
    json_t *results = json_array();
    if (rc != 0)
        goto out;
    if ((live = lh_vectors__acquire(v, t->index, NULL, err)) == NULL) {
        rc = err->rc;
        goto out;
    }
    int metric = lh_metric_parse(e.metric);
    /* the eval's generation: its vector count from its descriptor */
    size_t n = 0;
    if (live->generation == e.generation) {
        n = live->n;
    } else {
        char *key = lh_layout_gen_key(t->index, e.generation, "index.json");
        lh_buf text;
        lh_buf_init(&text);
        rc = lh_store_get_buffer(v->store, key, 1 << 20, &text, NULL, err);
        json_t *desc = rc == 0 ? json_loadb(text.data, text.len, 0, NULL) : NULL;
        n = (size_t)json_integer_value(json_object_get(desc, "vectors"));
        json_decref(desc);
        lh_buf_free(&text);
        free(key);
        if (rc == LH_ENOTFOUND)
            rc = lh_err_set(err, LH_ENOTFOUND, 409, "eval_stale",
                            "the generation eval set '%s' was sampled from is gone", t->eval);
        if (rc != 0)
            goto out;
    }
    if (metric < 0 || n == 0) {
        rc = lh_err_set(err, LH_EINVAL, 422, "eval_corrupt", "eval set '%s' is unreadable", t->eval);
        goto out;
    }
    if ((vec = tvec_get(v, t->index, e.generation, live, e.dim, n, (lh_metric)metric, err)) == NULL) {
        rc = err->rc;
        goto out;
    }
    lat = lh_calloc(e.n, sizeof *lat);
    int threads = (int)lh_config_int(v->deps.config, "vector.build_threads");
    size_t n_configs = json_array_size(t->configs);
    bool *done = lh_calloc(n_configs, sizeof *done);
    size_t finished = 0;
    /* one graph per (m, ef_construction), shared by the configs that differ in ef_search */
    for (size_t i = 0; i < n_configs && rc == 0; i++) {
        if (done[i])
            continue;
        const json_t *ci = json_array_get(t->configs, i);
        lh_hnsw_params params = {
            .m = (uint32_t)json_integer_value(json_object_get(ci, "m")),
            .ef_construction = (uint32_t)json_integer_value(json_object_get(ci, "ef_construction")),
            .ef_search = (uint32_t)json_integer_value(json_object_get(ci, "ef_search")),
            .seed = 42};
        int64_t t0 = lh_mono_us();
        rc = lh_hnsw_build(vec->vectors, vec->n, vec->dim, (lh_metric)metric, &params, threads,
                           &h, err);
        if (rc != 0)
            break;
        double build_s = (double)(lh_mono_us() - t0) / 1e6;
        bool reused = false;
        for (size_t j = i; j < n_configs && rc == 0; j++) {
            const json_t *cj = json_array_get(t->configs, j);
            if (done[j] || json_integer_value(json_object_get(cj, "m")) != params.m ||
                json_integer_value(json_object_get(cj, "ef_construction")) != params.ef_construction)
                continue;
            size_t ef = (size_t)json_integer_value(json_object_get(cj, "ef_search"));
            double recall = 0, recall_ids = 0, total_s = 0;
            measure(h, &e, ef, &recall, &recall_ids, lat, &total_s);
            qsort(lat, e.n, sizeof *lat, by_value);
            char created_at[LH_TIME_MAX], trial_id[64];
            int64_t now = lh_now_us();
            lh_time_format(now, created_at);
            snprintf(trial_id, sizeof trial_id, "tr_%lld_%zu", (long long)now, j);
            json_t *trial = json_pack(
                "{s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, "
                "s:f, s:f, s:f, s:b, s:I, s:i, s:s, s:s, s:s}",
                "trial_id", trial_id, "index", t->index, "generation", (json_int_t)e.generation,
                "eval", t->eval, "metric", e.metric, "m", (json_int_t)params.m, "ef_construction",
                (json_int_t)params.ef_construction, "ef_search", (json_int_t)ef, "k",
                (json_int_t)e.k, "queries", (json_int_t)e.n, "vectors", (json_int_t)vec->n, "dim",
                (json_int_t)vec->dim, "recall", recall, "recall_ids", recall_ids, "p50_us", percentile(lat, e.n, 0.50),
                "p95_us", percentile(lat, e.n, 0.95), "p99_us", percentile(lat, e.n, 0.99), "qps",
                total_s > 0 ? (double)e.n / total_s : 0.0, "build_seconds", build_s,
                "graph_reused", reused, "memory_bytes", (json_int_t)lh_hnsw_memory(h), "threads",
                threads, "created_at", created_at, "created_by", t->actor, "job_id",
                job ? lh_job_id(job) : "");
            json_array_append(results, trial);
            lh_err lerr;
            if (lh_applog_append(v->trials, trial, &lerr) != 0 ||
                lh_applog_flush(v->trials, &lerr) != 0) {
                *err = lerr; /* a trial that is not journaled did not happen */
                rc = lerr.rc;
            }
            reused = true;
            done[j] = true;
            finished++;
            if (job)
                lh_job_progress(job, (int64_t)finished, (int64_t)n_configs, "configs");
        }
        lh_hnsw_free(h);
        h = NULL;
        if (rc == 0 && job && lh_job_cancelled(job))
            rc = lh_err_set(err, LH_ECANCELED, 409, "cancelled", "the trial was cancelled");
    }
    free(done);
    define_view(v);
    if (rc == 0) {
        *out = json_pack("{s:s, s:s, s:I, s:O}", "index", t->index, "eval", t->eval,
                         "generation", (json_int_t)e.generation, "trials", results);
    }
out:
    json_decref(results);
    lh_hnsw_free(h);
    free(lat);
    tvec_release(v, vec);
    lh_vgen__release(live);
    eval_free(&e);
    return rc;
}
