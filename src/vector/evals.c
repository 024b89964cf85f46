/*
 * evals.c — eval sets: sampled positions of one generation with their exact neighbours,
 * the ground truth trials measure recall against.
 *
 * An eval set is Parquet (_hnsw/evals/{name}.parquet), one row per query: the sampled
 * position and its document, the query vector, the exact top-k positions and distances
 * with the query's own position left out (so a query cannot find itself and inflate
 * recall). It belongs to the generation it was sampled from; trials build over that
 * generation's vectors, so the ground truth always matches. Sampling is reproducible
 * (a seeded partial Fisher-Yates); the file is put create-only, so a name is never
 * reused for other data. Thread-safe: each call works on its own data.
 */
#include "vector/vector_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- autogen ------------------------------------------------------------------------- */

static bool
exclude_one(void *ctx, uint32_t id)
{
    return id != *(const uint32_t *)ctx;
}

int
lh_vectors__eval_missing(lh_err *err, const char *eval)
{
    lh_err_set(err, LH_ENOTFOUND, 404, "eval_not_found", "no eval set named '%s'", eval);
    lh_err_hint(err, "create one with POST /vectors/hnsw/evals/%s/autogen", eval);
    return LH_ENOTFOUND;
}

static int
int_field(const json_t *body, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
          lh_err *err)
{
    const json_t *j = json_object_get(body, key);
    if (j && (!json_is_integer(j) || json_integer_value(j) < min || json_integer_value(j) > max))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'%s' must be an integer from %lld to %lld", key, (long long)min,
                          (long long)max);
    *out = j ? json_integer_value(j) : def;
    return 0;
}

/* What an autogen body asks for. */
typedef struct autogen {
    const char *index;
    int64_t n_queries, k, seed;
} autogen;

static int
autogen_body(const char *eval, const json_t *body, autogen *a, lh_err *err)
{
    static const char *const fields[] = {"index", "n_queries", "k", "seed", NULL};
    if (lh_json_check_fields(body, fields, "fields: index, n_queries, k, seed", err) != 0)
        return LH_EINVAL;
    if (!lh_name_valid(eval))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'%s' is not a name: a lowercase letter, then lowercase letters, "
                          "digits or underscores",
                          eval);
    a->index = json_string_value(json_object_get(body, "index"));
    if (!a->index)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'index' (the vector index to sample) is required");
    int rc;
    if ((rc = int_field(body, "n_queries", 200, 1, 10000, &a->n_queries, err)) != 0 ||
        (rc = int_field(body, "k", 10, 1, 1000, &a->k, err)) != 0 ||
        (rc = int_field(body, "seed", 42, 0, INT64_MAX, &a->seed, err)) != 0)
        return rc;
    return 0;
}

/* A reproducible sample of n_queries positions of n without repeats, in the first
 * n_queries slots of the result (new), or NULL when out of memory: a partial
 * Fisher-Yates over the positions. */
static uint32_t *
sample_positions(size_t n, size_t n_queries, int64_t seed)
{
    uint32_t *positions = lh_try_malloc(n * sizeof *positions);
    if (!positions)
        return NULL;
    for (size_t i = 0; i < n; i++)
        positions[i] = (uint32_t)i;
    uint64_t state = (uint64_t)seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < n_queries; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t j = i + (size_t)((state >> 33) % (n - i));
        uint32_t t = positions[i];
        positions[i] = positions[j];
        positions[j] = t;
    }
    return positions;
}

/* Write the eval file to path: per sampled position, its exact top-k in g. */
static int
write_eval(lh_vectors *v, const char *eval, const autogen *a, const lh_vgen *g,
           const uint32_t *positions, const char *created_at, const char *path, lh_err *err)
{
    size_t n = g->n, k = (size_t)a->k;
    uint32_t dim = lh_hnsw_dim(g->hnsw);
    lh_metric metric = lh_hnsw_metric(g->hnsw);
    const float *vectors = lh_hnsw_vector(g->hnsw, 0);
    lh_hit *hits = lh_calloc(k + 1, sizeof *hits);
    int32_t *truth = lh_calloc(k, sizeof *truth);
    float *dist = lh_calloc(k, sizeof *dist);
    lh_writer *w = NULL;
    char *cols = lh_sprintf("eval VARCHAR, index VARCHAR, generation BIGINT, metric VARCHAR, "
                            "k INTEGER, created_at VARCHAR, query_id INTEGER, position INTEGER, "
                            "doc_id VARCHAR, query_vector FLOAT[%u], truth INTEGER[%zu], "
                            "truth_distance FLOAT[%zu]",
                            dim, k, k);
    int rc = lh_writer_open(v->deps.engine, cols, &w, err);
    for (size_t q = 0; rc == 0 && q < (size_t)a->n_queries; q++) {
        uint32_t p = positions[q];
        if (lh_vec_exact(vectors, n, dim, metric, vectors + (size_t)p * dim, k, exclude_one, &p, 0,
                         hits) != k) {
            rc = lh_err_set(err, LH_EINTERNAL, 500, "internal", "exact search came back short");
            goto out;
        }
        for (size_t i = 0; i < k; i++) {
            truth[i] = (int32_t)hits[i].id;
            dist[i] = hits[i].distance;
        }
        const char *doc = g->doc_ids[g->doc_of[p]];
        lh_writer_str(w, 0, eval, strlen(eval));
        lh_writer_str(w, 1, a->index, strlen(a->index));
        lh_writer_int(w, 2, g->generation);
        lh_writer_str(w, 3, lh_metric_name(metric), strlen(lh_metric_name(metric)));
        lh_writer_int(w, 4, (int64_t)k);
        lh_writer_str(w, 5, created_at, strlen(created_at));
        lh_writer_int(w, 6, (int64_t)q);
        lh_writer_int(w, 7, p);
        lh_writer_str(w, 8, doc, strlen(doc));
        lh_writer_floats(w, 9, vectors + (size_t)p * dim, dim);
        lh_writer_ints(w, 10, truth, k);
        lh_writer_floats(w, 11, dist, k);
        rc = lh_writer_next_row(w, err);
    }
    if (rc == 0)
        rc = lh_writer_finish(w, path, NULL, err);
out:
    lh_writer_free(w);
    free(cols);
    free(dist);
    free(truth);
    free(hits);
    return rc;
}

static int eval_store(lh_vectors *v, const char *eval, lh_store **out, lh_err *err);

int
lh_vectors_eval_autogen(lh_vectors *v, const char *eval, const json_t *body, json_t **out,
                        lh_err *err)
{
    autogen a;
    int rc = autogen_body(eval, body, &a, err);
    if (rc != 0)
        return rc;
    lh_vgen *g = lh_vectors__acquire(v, a.index, NULL, err);
    if (!g)
        return err->rc;
    size_t n = g->n;
    char *eval_key = lh_layout_eval_key(eval);
    char *tmp = lh_vectors__work_file(v, ".parquet");
    uint32_t *positions = NULL;
    lh_store *existing = NULL;
    lh_err ignored;
    if (eval_store(v, eval, &existing, &ignored) == 0) { /* names are unique across buckets */
        rc = lh_err_set(err, LH_EEXIST, 409, "eval_exists", "an eval set named '%s' exists", eval);
        goto out;
    }
    if (n < 2 || (size_t)a.k >= n) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'k' must be below the index's %zu vectors", n);
        goto out;
    }
    if ((size_t)a.n_queries > n)
        a.n_queries = (int64_t)n;
    if ((positions = sample_positions(n, (size_t)a.n_queries, a.seed)) == NULL) {
        rc = lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory to sample");
        goto out;
    }
    char created_at[LH_TIME_MAX];
    lh_time_format(lh_now_us(), created_at);
    if ((rc = write_eval(v, eval, &a, g, positions, created_at, tmp, err)) != 0)
        goto out;
    /* residency: beside the index, in its dataset's bucket */
    if ((rc = lh_vectors__upload(v, g->bucket, tmp, eval_key, LH_PUT_CREATE_ONLY, NULL, err)) !=
        0) {
        if (rc == LH_EEXIST)
            lh_err_set(err, LH_EEXIST, 409, "eval_exists", "an eval set named '%s' exists", eval);
        goto out;
    }
    const char *metric = lh_metric_name(lh_hnsw_metric(g->hnsw));
    *out =
        json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:s, s:s}", "eval", eval, "index", a.index,
                  "generation", (json_int_t)g->generation, "metric", metric, "k", (json_int_t)a.k,
                  "queries", (json_int_t)a.n_queries, "created_at", created_at, "key", eval_key);
out:
    unlink(tmp);
    free(tmp);
    free(eval_key);
    free(positions);
    lh_vgen__release(g);
    return rc;
}

/* ---- reading eval sets ------------------------------------------------------------------ */

static int
on_eval_batch(void *ctx, const lh_batch *b)
{
    lh_veval *e = ctx;
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
                                                     (json_int_t)position, "doc_id", doc ? doc : "",
                                                     doc ? len : 0, "truth", truth));
        }
        e->n++;
    }
    return 0;
}

void
lh_vectors__eval_free(lh_veval *e)
{
    free(e->queries);
    free(e->truth);
    free(e->truth_dist);
    free(e->positions);
    json_decref(e->rows);
}

/* The store that holds eval's file (borrowed), or 404 eval_not_found. The set lives in
 * the bucket of its index; every bucket is looked at, the primary first. */
static int
eval_store(lh_vectors *v, const char *eval, lh_store **out, lh_err *err)
{
    if (!lh_name_valid(eval))
        return lh_vectors__eval_missing(err, eval);
    char *key = lh_layout_eval_key(eval);
    const char *buckets[LH_VECTORS_MAX_BUCKETS];
    size_t n = lh_vectors__buckets(v, buckets, LH_VECTORS_MAX_BUCKETS);
    int rc = LH_ENOTFOUND;
    for (size_t i = 0; i < n && rc == LH_ENOTFOUND; i++) {
        lh_store *store = lh_vectors__store(v, buckets[i]);
        lh_obj_info info;
        if ((rc = lh_store_head(store, key, &info, err)) == 0)
            *out = store;
    }
    free(key);
    return rc == LH_ENOTFOUND ? lh_vectors__eval_missing(err, eval) : rc;
}

/* The local path of eval's file (new), or 404 eval_not_found. */
static int
eval_path(lh_vectors *v, const char *eval, char **path, lh_err *err)
{
    lh_store *store = NULL;
    int rc = eval_store(v, eval, &store, err);
    if (rc != 0)
        return rc;
    char *key = lh_layout_eval_key(eval);
    rc = lh_cache_local_path(v->deps.cache, store, key, false, path, err);
    free(key);
    return rc == LH_ENOTFOUND ? lh_vectors__eval_missing(err, eval) : rc;
}

/* An eval set's summary (new), read from the file's small columns only. */
static int
eval_head(lh_vectors *v, const char *eval, json_t **out, lh_err *err)
{
    char *path = NULL;
    json_t *rows = NULL;
    lh_buf sql;
    lh_buf_init(&sql);
    int rc = eval_path(v, eval, &path, err);
    if (rc != 0)
        goto out;
    lh_buf_puts(&sql, "SELECT any_value(eval) AS eval, any_value(index) AS index, "
                      "any_value(generation) AS generation, any_value(metric) AS metric, "
                      "any_value(k) AS k, count(*) AS queries, "
                      "len(any_value(query_vector)) AS dim, any_value(created_at) AS created_at "
                      "FROM read_parquet(");
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, ")");
    if ((rc = lh_engine_rows(v->deps.engine, sql.data, &rows, err)) != 0)
        goto out;
    json_t *head = json_array_get(rows, 0);
    if (!json_is_string(json_object_get(head, "index")) ||
        json_integer_value(json_object_get(head, "queries")) <= 0) {
        rc = lh_err_set(err, LH_EINVAL, 422, "eval_corrupt", "eval set '%s' holds no query", eval);
        goto out;
    }
    *out = json_incref(head);
out:
    json_decref(rows);
    lh_buf_free(&sql);
    free(path);
    return rc;
}

int
lh_vectors__eval_read(lh_vectors *v, const char *eval, bool with_rows, lh_veval *e, lh_err *err)
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
eval_summary(const char *eval, const lh_veval *e)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:I, s:s}", "eval", eval, "index", e->index,
                     "generation", (json_int_t)e->generation, "metric", e->metric, "k",
                     (json_int_t)e->k, "queries", (json_int_t)e->n, "dim", (json_int_t)e->dim,
                     "created_at", e->created_at);
}

int
lh_vectors_eval_get(lh_vectors *v, const char *eval, json_t **out, lh_err *err)
{
    lh_veval e;
    int rc = lh_vectors__eval_read(v, eval, true, &e, err);
    if (rc == 0) {
        *out = eval_summary(eval, &e);
        json_object_set(*out, "query_list", e.rows);
    }
    lh_vectors__eval_free(&e);
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
    json_t *names = ctx; /* name -> true, so a name in two buckets is listed once */
    const char *base = entry->key + strlen(LH_LAYOUT_EVALS);
    size_t len = strlen(base);
    if (len > 8 && len - 8 < LH_NAME_MAX && strcmp(base + len - 8, ".parquet") == 0 &&
        !strchr(base, '/')) {
        char name[LH_NAME_MAX];
        snprintf(name, sizeof name, "%.*s", (int)(len - 8), base);
        json_object_set_new(names, name, json_true());
    }
    return 0;
}

json_t *
lh_vectors_evals(lh_vectors *v)
{
    json_t *names = json_object(), *out = json_array();
    lh_err err;
    const char *buckets[LH_VECTORS_MAX_BUCKETS];
    size_t n = lh_vectors__buckets(v, buckets, LH_VECTORS_MAX_BUCKETS);
    for (size_t i = 0; i < n; i++)
        if (lh_store_each(lh_vectors__store(v, buckets[i]), LH_LAYOUT_EVALS, on_eval_key, names,
                          &err) != 0)
            lh_log_err(LH_LOG_WARN, NULL, &err);
    const char *name;
    json_t *ignored;
    json_object_foreach(names, name, ignored)
    {
        json_t *head = NULL;
        if (eval_head(v, name, &head, &err) == 0)
            json_array_append_new(out, head);
    }
    json_decref(names);
    return out;
}
