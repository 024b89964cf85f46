/*
 * vsearch.c — searching an index: query embedding, filters, graph or exact search, text
 * (BM25) search and the hybrid of both, and the hits' texts and columns.
 *
 * Three modes: "vector" ranks by the vectors (below), "text" by BM25 over the chunk texts
 * (bm25.c), "hybrid" fuses the two rankings by reciprocal rank: each ranking is taken to
 * a depth (max(k, ef) unless given) and a position scores
 *   vector_weight / (rrf_k + vector rank) + text_weight / (rrf_k + text rank)
 * (ranks from 1; a ranking it is missing from adds nothing). Every mode answers positions
 * (chunks), as vector search always has, with the same filter and included columns.
 *
 * A filter is a SQL predicate over the dataset, run by the users' engine as
 *   SELECT CAST(id AS VARCHAR) FROM "dataset" WHERE (<filter>)
 * admitted like any user query (one SELECT, sandboxed, time-limited). The matching ids
 * become a bitmap over positions. When the bitmap holds fewer than
 * [vector] exact_below_permille of the positions, or so few that scoring them all costs
 * less than the widened graph walk would (allowed^2 < 4m * ef * n), exact search over
 * them is both cheaper and exact; above that, the graph is searched with the
 * filter and a beam widened by the inverse selectivity, and if that still finds fewer
 * than k matching positions the search falls back to exact. Either way the answer is the
 * true top-k of the matching rows whenever exact search was used, and HNSW-quality
 * otherwise.
 *
 * The matching positions are kept in the filter cache (fcache.c) for the next search with
 * the same filter, parameters and caller over the same generation; a hit is checked
 * against the datasets the filter read, so a change to them is never missed. A door asks
 * lh_vectors_filter_is_cached, which builds the same key, whether the search it is about
 * to run would hit: one that would runs no SQL and need not leave the thread that read it.
 *
 * The search holds a reference on the generation it started with, so a refresh that
 * swaps in a new generation meanwhile does not disturb it.
 */
#include "vector/vector_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct allowed {
    uint64_t *bits;
    size_t n_positions, n_docs;
    const lh_vgen *g;
    bool rescue_used; /* the filter read the dataset from rescue copies */
    bool cached;      /* the positions came from the filter cache */
} allowed;

static bool
is_allowed(void *ctx, uint32_t id)
{
    const uint64_t *bits = ctx;
    return (bits[id >> 6] >> (id & 63)) & 1u;
}

static int
on_filter_batch(void *ctx, const lh_batch *b)
{
    allowed *a = ctx;
    for (size_t i = 0; i < lh_batch_rows(b); i++) {
        size_t len = 0;
        const char *id = lh_batch_str(b, 0, i, &len);
        int64_t d = id ? lh_vgen__find_doc(a->g, id, len) : -1;
        if (d < 0)
            continue;
        uint32_t first = a->g->doc_first[d], count = a->g->doc_count[d];
        if (is_allowed(a->bits, first))
            continue; /* the same id twice */
        a->n_docs++;
        for (uint32_t p = first; p < first + count; p++) {
            a->bits[p >> 6] |= (uint64_t)1 << (p & 63);
            a->n_positions++;
        }
    }
    return 0;
}

static int
run_filter(lh_vectors *v, const json_t *spec, const lh_vsearch *s, allowed *a, lh_reads *reads,
           lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT CAST(");
    lh_sql_ident(&sql, json_string_value(json_object_get(spec, "id_column")));
    lh_buf_puts(&sql, " AS VARCHAR) FROM ");
    lh_sql_ident(&sql, json_string_value(json_object_get(spec, "dataset")));
    /* newlines: a trailing "-- comment" in the filter cannot swallow the parenthesis */
    lh_buf_printf(&sql, " WHERE (\n%s\n)", s->filter);
    lh_scan_opts opts = {.sql = sql.data,
                         .timeout_ms = s->timeout_ms,
                         .principal = s->principal,
                         .params = s->filter_params,
                         .n_params = s->n_filter_params,
                         .resolver = s->resolver,
                         .rescue_used = &a->rescue_used,
                         .reads = reads};
    int rc = lh_engine_scan(v->deps.views, &opts, on_filter_batch, a, err);
    lh_buf_free(&sql);
    if (rc == LH_EINVAL) {
        char detail[sizeof err->detail];
        snprintf(detail, sizeof detail, "%s", err->detail);
        lh_err_set(err, LH_EINVAL, 400, "invalid_filter",
                   "the filter is not a valid SQL condition on dataset '%s'",
                   json_string_value(json_object_get(spec, "dataset")));
        lh_err_detail(err, "%s", detail);
        lh_err_hint(err, "a filter is what follows WHERE, e.g. \"city = 'Chicago' AND years > 3\"");
    }
    return rc;
}

static float
score_of(lh_metric metric, float distance)
{
    switch (metric) {
    case LH_METRIC_COSINE:
        return 1.0f - distance; /* cosine similarity */
    case LH_METRIC_DOT:
        return -distance; /* the inner product */
    default:
        return -distance; /* minus the squared L2 distance */
    }
}

/* Add chunk_text to each hit (text indexes): from memory, or from the embeddings file
 * (sorted by position in small row groups, so a few positions read little). */
static int
add_texts(lh_vectors *v, const lh_vgen *g, const lh_hit *hits, size_t n, json_t *out_hits,
          lh_err *err)
{
    if (g->texts) {
        for (size_t i = 0; i < n; i++)
            json_object_set_new(
                json_array_get(out_hits, i), "chunk_text",
                json_stringn(g->texts + g->text_off[hits[i].id], g->text_len[hits[i].id]));
        return 0;
    }
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT position, chunk_text FROM read_parquet(");
    lh_sql_quote(&sql, g->emb_path);
    lh_buf_puts(&sql, ") WHERE position IN (");
    for (size_t i = 0; i < n; i++)
        lh_buf_printf(&sql, "%s%u", i ? "," : "", hits[i].id);
    lh_buf_puts(&sql, ")");
    json_t *rows = NULL;
    int rc = lh_engine_rows(v->deps.engine, sql.data, &rows, err);
    lh_buf_free(&sql);
    if (rc != 0)
        return rc;
    size_t i, j;
    json_t *row, *hit;
    json_array_foreach(rows, i, row)
    {
        json_int_t pos = json_integer_value(json_object_get(row, "position"));
        json_array_foreach(out_hits, j, hit)
        {
            if (hits[j].id == (uint32_t)pos)
                json_object_set(hit, "chunk_text", json_object_get(row, "chunk_text"));
        }
    }
    json_decref(rows);
    return 0;
}

/* Add the requested dataset columns to each hit, by document id. */
static int
add_columns(lh_vectors *v, const json_t *spec, const lh_vsearch *s, json_t *out_hits, lh_err *err)
{
    const char *id_col = json_string_value(json_object_get(spec, "id_column"));
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT CAST(");
    lh_sql_ident(&sql, id_col);
    lh_buf_puts(&sql, " AS VARCHAR) AS lh_doc_id");
    for (size_t i = 0; i < s->n_include; i++) {
        lh_buf_puts(&sql, ", ");
        lh_sql_ident(&sql, s->include[i]);
    }
    lh_buf_puts(&sql, " FROM ");
    lh_sql_ident(&sql, json_string_value(json_object_get(spec, "dataset")));
    lh_buf_puts(&sql, " WHERE CAST(");
    lh_sql_ident(&sql, id_col);
    lh_buf_puts(&sql, " AS VARCHAR) IN (");
    size_t i;
    json_t *hit;
    json_array_foreach(out_hits, i, hit)
    {
        if (i)
            lh_buf_puts(&sql, ",");
        lh_sql_quote(&sql, json_string_value(json_object_get(hit, "doc_id")));
    }
    lh_buf_puts(&sql, ")");
    json_t *rows = NULL, *plan = NULL;
    int rc = lh_engine_rows(v->deps.views, sql.data, &rows, err);
    lh_buf_free(&sql);
    if (rc != 0)
        return rc;
    if (s->clearance > 0 && s->clearance < LH_LEVEL_PII) {
        json_t *m = NULL;
        lh_err ignored;
        if (lh_catalog_get(v->deps.catalog, json_string_value(json_object_get(spec, "dataset")), &m,
                           &ignored) == 0)
            plan = lh_catalog_mask_plan(m, s->clearance);
        json_decref(m);
    }
    json_array_foreach(out_hits, i, hit)
    {
        size_t r;
        json_t *row;
        json_t *cols = NULL;
        json_array_foreach(rows, r, row)
        {
            if (strcmp(json_string_value(json_object_get(row, "lh_doc_id")),
                       json_string_value(json_object_get(hit, "doc_id"))) == 0) {
                cols = json_deep_copy(row);
                json_object_del(cols, "lh_doc_id");
                lh_catalog_mask_row(v->deps.catalog, plan, cols);
                break;
            }
        }
        /* a row deleted since the generation was built has no columns any more */
        json_object_set_new(hit, "columns", cols ? cols : json_null());
    }
    json_decref(plan);
    json_decref(rows);
    return 0;
}

static int
check_include(lh_vectors *v, const json_t *spec, const lh_vsearch *s, lh_err *err)
{
    if (s->n_include == 0)
        return 0;
    const char *dataset = json_string_value(json_object_get(spec, "dataset"));
    json_t *m = NULL;
    int rc = lh_catalog_get(v->deps.catalog, dataset, &m, err);
    for (size_t i = 0; rc == 0 && i < s->n_include; i++) {
        bool found = false;
        size_t c;
        json_t *col;
        json_array_foreach(json_object_get(m, "columns"), c, col)
        {
            const char *name = json_string_value(json_object_get(col, "name"));
            found = found || (name && strcmp(name, s->include[i]) == 0);
        }
        if (!found) {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                            "'include' names column '%s', which dataset '%s' does not have",
                            s->include[i], dataset);
            lh_err_hint(err, "GET /catalog/datasets/%s lists its columns", dataset);
        }
    }
    json_decref(m);
    return rc;
}

/* ---- modes --------------------------------------------------------------------------- */

static const char *const MODES[] = {"vector", "text", "hybrid"};

static int
bad_option(lh_err *err, const char *fmt, const char *what)
{
    lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", fmt, what);
    lh_err_hint(err, "\"hybrid\": {\"vector_weight\": 1, \"text_weight\": 1, \"rrf_k\": 60, "
                     "\"depth\": 50} with \"mode\": \"hybrid\"; every member is optional");
    return LH_EINVAL;
}

/* hybrid.{name}: a number from 0 to 1000. */
static int
weight_of(const json_t *obj, const char *name, double *out, lh_err *err)
{
    const json_t *j = json_object_get(obj, name);
    if (!j)
        return 0;
    if (!json_is_number(j) || !isfinite(json_number_value(j)) || json_number_value(j) < 0 ||
        json_number_value(j) > 1000)
        return bad_option(err, "'hybrid.%s' must be a number from 0 to 1000", name);
    *out = json_number_value(j);
    return 0;
}

/* hybrid.{name}: an integer from 1 to max. */
static int
int_of(const json_t *obj, const char *name, int64_t max, int64_t *out, lh_err *err)
{
    const json_t *j = json_object_get(obj, name);
    if (!j)
        return 0;
    if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > max) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                   "'hybrid.%s' must be an integer from 1 to %lld", name, (long long)max);
        return LH_EINVAL;
    }
    *out = json_integer_value(j);
    return 0;
}

int
lh_vsearch_options(const json_t *mode, const json_t *hybrid, lh_vsearch *s, lh_vhybrid *h,
                   lh_err *err)
{
    s->mode = LH_VSEARCH_VECTOR;
    if (mode) {
        size_t i = 0;
        while (i < 3 && !(json_is_string(mode) && strcmp(json_string_value(mode), MODES[i]) == 0))
            i++;
        if (i == 3) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                       "'mode' must be \"vector\", \"text\" or \"hybrid\"");
            lh_err_hint(err, "vector: by the model's vectors (the builtin model's are lexical); "
                             "text: by words (BM25); hybrid: both, fused by reciprocal rank");
            return LH_EINVAL;
        }
        s->mode = (lh_vsearch_mode)i;
    }
    if (hybrid && s->mode != LH_VSEARCH_HYBRID)
        return bad_option(err, "'%s' applies to \"mode\": \"hybrid\" only", "hybrid");
    if (s->mode != LH_VSEARCH_HYBRID)
        return 0;
    if (hybrid && !json_is_object(hybrid))
        return bad_option(err, "'%s' must be an object", "hybrid");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)hybrid, key, val)
    {
        if (strcmp(key, "vector_weight") && strcmp(key, "text_weight") && strcmp(key, "rrf_k") &&
            strcmp(key, "depth"))
            return bad_option(err,
                              "unknown field 'hybrid.%s' (vector_weight, text_weight, rrf_k, "
                              "depth)",
                              key);
    }
    lh_vhybrid opts = {.vector_weight = 1, .text_weight = 1, .rrf_k = 60, .depth = 0};
    int64_t depth = 0;
    int rc = weight_of(hybrid, "vector_weight", &opts.vector_weight, err);
    if (rc == 0)
        rc = weight_of(hybrid, "text_weight", &opts.text_weight, err);
    if (rc == 0)
        rc = int_of(hybrid, "rrf_k", 100000, &opts.rrf_k, err);
    if (rc == 0)
        rc = int_of(hybrid, "depth", LH_VSEARCH_DEPTH_MAX, &depth, err);
    if (rc != 0)
        return rc;
    if (opts.vector_weight == 0 && opts.text_weight == 0)
        return bad_option(err, "'%s' and 'hybrid.text_weight' cannot both be 0",
                          "hybrid.vector_weight");
    opts.depth = (size_t)depth;
    *h = opts;
    s->hybrid = h;
    return 0;
}

/* What text and hybrid searches need of the request and the index: a text query with
 * words, an index over a text column, its text index in memory; exact and ef only where a
 * vector search runs. */
static int
check_mode(const json_t *spec, const lh_vgen *g, const lh_vsearch *s, lh_err *err)
{
    const char *mode = MODES[s->mode];
    if (s->mode == LH_VSEARCH_VECTOR)
        return 0;
    if (!json_string_value(json_object_get(spec, "model"))) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                   "index '%s' holds vectors from column '%s' and no texts, so it cannot be "
                   "searched in mode '%s'",
                   s->index, json_string_value(json_object_get(spec, "vector_column")), mode);
        lh_err_hint(err, "search it with \"mode\": \"vector\", or create an index over a "
                         "text column (text_column) to search words");
        return LH_EINVAL;
    }
    if (!s->query) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                   "mode '%s' matches words: give a text 'query', not a vector", mode);
        lh_err_hint(err, "a raw vector can only be searched in mode 'vector'");
        return LH_EINVAL;
    }
    if (s->mode == LH_VSEARCH_TEXT && (s->exact || s->ef))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'exact' and 'ef' tune the vector search: they do not apply to mode "
                          "'text'");
    if (!lh_bm25__has_words(s->query, strlen(s->query))) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                   "'query' has no words to match in mode '%s'", mode);
        lh_err_hint(err, "words are runs of letters and digits");
        return LH_EINVAL;
    }
    if (!g->bm25) {
        lh_err_set(err, LH_EEXIST, 409, "text_index_unavailable",
                   "generation %lld of index '%s' has no text index", (long long)g->generation,
                   s->index);
        lh_err_hint(err,
                    "the log says why it could not be loaded; a refresh (POST "
                    "/vectors/indexes/%s/refresh) builds a new generation with one",
                    s->index);
        return LH_EEXIST;
    }
    return 0;
}

/* The request against the index: one of query or vector, k and ef in range, a vector of
 * the index's dimension, a text query only for a text index, what the mode needs,
 * included columns that exist. */
static int
check_request(lh_vectors *v, const json_t *spec, const lh_vgen *g, const lh_vsearch *s, lh_err *err)
{
    size_t max_k = (size_t)lh_config_int(v->deps.config, "vector.max_k");
    uint32_t dim = lh_hnsw_dim(g->hnsw);
    if ((s->query != NULL) == (s->vector != NULL))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "give exactly one of 'query' (text) or 'vector' (numbers)");
    if (s->k == 0 || s->k > max_k)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "'k' must be from 1 to %zu",
                          max_k);
    if (s->ef > 100000)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'ef' must be from 1 to 100000");
    int rc = check_mode(spec, g, s, err);
    if (rc != 0)
        return rc;
    if (s->query && !json_string_value(json_object_get(spec, "model")))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "index '%s' holds vectors from column '%s', so it takes 'vector' "
                          "queries only",
                          s->index, json_string_value(json_object_get(spec, "vector_column")));
    if (s->vector && s->n_vector != dim)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "the vector has %zu dimensions; index '%s' holds %u", s->n_vector,
                          s->index, dim);
    return check_include(v, spec, s, err);
}

/* The query as a vector (new, dim floats): the given one, or the text embedded with the
 * index's model. */
static int
query_vector(lh_vectors *v, const char *model, const lh_vsearch *s, uint32_t dim, float **out,
             lh_err *err)
{
    if (!s->query) {
        *out = lh_calloc(dim, sizeof **out);
        memcpy(*out, s->vector, dim * sizeof **out);
        return 0;
    }
    lh_embedder *e = NULL;
    float *qv = NULL;
    size_t len = strlen(s->query);
    uint32_t got_dim = 0;
    int rc = lh_embedder_open(v->deps.config, model, &e, err);
    if (rc != 0)
        goto out;
    if ((rc = lh_embedder_embed(e, &s->query, &len, 1, &qv, &got_dim, NULL, err)) != 0)
        goto out;
    if (got_dim != dim) {
        rc = lh_err_set(err, LH_EIO, 502, "provider_bad_response",
                        "model %s returned %u dimensions; index '%s' holds %u", model, got_dim,
                        s->index, dim);
        goto out;
    }
    *out = qv;
    qv = NULL;
out:
    free(qv);
    lh_embedder_free(e);
    return rc;
}

/* The filter cache's key of this search's filter over the generation of that serial:
 * everything its answer depends on but the data (fcache.c). The search and
 * lh_vectors_filter_is_cached both build it here, so a door's check finds what the
 * search will. */
static char *
filter_key(const lh_vsearch *s, uint64_t serial)
{
    lh_buf key;
    lh_buf_init(&key);
    const char *view = s->resolver && s->resolver->view_key ? s->resolver->view_key : "";
    /* every part length-prefixed: no filter text can pass for another's parameters */
    lh_buf_printf(&key, "%llu|%zu:%s|%zu:%s|", (unsigned long long)serial, strlen(view), view,
                  strlen(s->filter), s->filter);
    for (size_t i = 0; i < s->n_filter_params; i++) {
        char *value = json_dumps(s->filter_params[i].value, JSON_COMPACT | JSON_ENCODE_ANY);
        lh_buf_printf(&key, "%zu:%s=%zu:%s|", strlen(s->filter_params[i].name),
                      s->filter_params[i].name, value ? strlen(value) : 0, value ? value : "");
        free(value);
    }
    return lh_buf_steal(&key);
}

/* The words of the bitmap over a generation of n positions (one more than they fill). */
static size_t
bitmap_words(size_t n)
{
    return (n + 63) / 64 + 1;
}

/* The filter's matching positions as a bitmap in a: from the filter cache when the same
 * filter was answered over the same data, else from the filter's query (and kept). */
static int
filter_positions(lh_vectors *v, const json_t *spec, const lh_vsearch *s, allowed *a, lh_err *err)
{
    size_t n_words = bitmap_words(a->g->n);
    a->bits = lh_try_malloc(n_words * sizeof *a->bits);
    if (!a->bits)
        return lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory to filter");
    char *key = filter_key(s, a->g->serial);
    if (lh_fcache_get(v->fcache, v->deps.views, key, a->bits, n_words, &a->n_positions,
                      &a->n_docs)) {
        a->cached = true;
        free(key);
        return 0;
    }
    memset(a->bits, 0, n_words * sizeof *a->bits);
    lh_reads reads;
    int rc = run_filter(v, spec, s, a, &reads, err);
    if (rc == 0)
        lh_fcache_put(v->fcache, key, &reads, a->bits, n_words, a->n_positions, a->n_docs);
    free(key);
    return rc;
}

bool
lh_vectors_filter_is_cached(lh_vectors *v, const lh_vsearch *s)
{
    if (s->filter == NULL)
        return false;
    /* the generation a search starting now would take (lh_vectors__acquire), read without
     * taking a reference: only its serial and size go into the key */
    pthread_mutex_lock(&v->lock);
    lh_vidx *x = lh_vectors__find_locked(v, s->index);
    bool ready = x && x->live;
    uint64_t serial = ready ? x->live->serial : 0;
    size_t n = ready ? x->live->n : 0;
    pthread_mutex_unlock(&v->lock);
    if (!ready)
        return false;
    char *key = filter_key(s, serial);
    bool cached = lh_fcache_has(v->fcache, v->deps.views, key, bitmap_words(n));
    free(key);
    return cached;
}

/* How a search went. */
typedef struct outcome {
    size_t n_hits;
    size_t ef;          /* the beam the graph search used */
    bool exact;         /* exact search gave the answer */
    const char *reason; /* why exact: asked, small_index, selective_filter, graph_ran_dry */
} outcome;

/* Small enough that scoring every vector costs about what a graph walk does (within 1.5x
 * in bench/vector/crossing): at most [vector] exact_below_vectors vectors, and at most as
 * many floats as that many of 384 dimensions (the crossing falls with the dimension:
 * 500 vectors up to 384 dimensions, 250 at 768; two runs put the 1.5x point at 384
 * dimensions between 500 and 1,000). */
static bool
small_index(lh_vectors *v, const lh_vgen *g)
{
    int64_t below = lh_config_int(v->deps.config, "vector.exact_below_vectors");
    return (int64_t)g->n <= below &&
           (int64_t)g->n * (int64_t)lh_hnsw_dim(g->hnsw) <= below * (int64_t)384;
}

/* Graph or exact search into hits (k slots): exact when asked, when the filter is
 * selective enough that exact is cheaper, or when the graph ran dry. */
static void
run_search(lh_vectors *v, const lh_vgen *g, const lh_vsearch *s, const allowed *a, const float *qv,
           size_t k, lh_hit *hits, outcome *o)
{
    lh_hnsw_params params = lh_hnsw_get_params(g->hnsw);
    size_t ef = s->ef ? s->ef : (size_t)params.ef_search;
    if (ef < k)
        ef = k;
    bool exact = s->exact;
    const char *reason = exact ? "asked" : NULL;
    if (!exact && small_index(v, g)) {
        exact = true;
        reason = "small_index";
    }
    int64_t threshold = lh_config_int(v->deps.config, "vector.exact_below_permille");
    if (!exact && s->filter && (int64_t)a->n_positions * 1000 < threshold * (int64_t)g->n) {
        exact = true;
        reason = "selective_filter";
    }
    /* cost: a filtered graph search visits about ef * n / allowed nodes of up to 2m links
     * each, one thread; exact search scores the allowed vectors once, on every core.
     * Below allowed^2 < 4m * ef * n exact is cheaper as well as exact (measured at 100K
     * x 384, m 16, ef 30, 10% allowed: exact 1.5 ms, graph 2.1 ms). */
    double links = 4.0 * (double)params.m;
    if (!exact && s->filter &&
        (double)a->n_positions * (double)a->n_positions < links * (double)ef * (double)g->n) {
        exact = true;
        reason = "selective_filter";
    }
    size_t want = s->filter ? (k < a->n_positions ? k : a->n_positions) : k;
    size_t n_hits = 0;
    if (want > 0 && !exact) {
        if (s->filter) { /* widen the beam by the inverse selectivity */
            double widened = (double)ef * (double)g->n / (double)a->n_positions;
            ef = widened > (double)g->n ? g->n : (size_t)widened;
        }
        n_hits = lh_hnsw_search(g->hnsw, qv, k, ef, s->filter ? is_allowed : NULL, a->bits, hits);
        if (n_hits < want) { /* the graph ran dry: answer exactly */
            exact = true;
            reason = "graph_ran_dry";
        }
    }
    if (want > 0 && exact && s->filter)
        n_hits =
            lh_vec_exact_bits(lh_hnsw_vector(g->hnsw, 0), g->n, lh_hnsw_dim(g->hnsw),
                              lh_hnsw_metric(g->hnsw), qv, k, a->bits, a->n_positions, 0, hits);
    else if (want > 0 && exact)
        n_hits = lh_vec_exact(lh_hnsw_vector(g->hnsw, 0), g->n, lh_hnsw_dim(g->hnsw),
                              lh_hnsw_metric(g->hnsw), qv, k, NULL, NULL, 0, hits);
    o->n_hits = n_hits;
    o->ef = ef;
    o->exact = exact;
    o->reason = reason;
}

/* What the filter did, and whether it read rescue copies, into answer. */
static void
add_filter_info(json_t *answer, const lh_vsearch *s, const allowed *a)
{
    if (s->filter)
        json_object_set_new(answer, "filter",
                            json_pack("{s:I, s:I, s:b}", "matched_documents", (json_int_t)a->n_docs,
                                      "matched_vectors", (json_int_t)a->n_positions, "cached",
                                      a->cached));
    if (s->filter && a->rescue_used) /* invariant 7: a read that fell back says so */
        json_object_set_new(answer, "rescue_used", json_true());
}

/* The part of the answer every mode has (new): index, generation, mode, k, and the model
 * and metric where vectors were compared. */
static json_t *
answer_head(const lh_vgen *g, const lh_vsearch *s, const char *model)
{
    json_t *head =
        json_pack("{s:s, s:I, s:s, s:I}", "index", s->index, "generation",
                  (json_int_t)g->generation, "mode", MODES[s->mode], "k", (json_int_t)s->k);
    if (s->mode == LH_VSEARCH_TEXT)
        return head;
    if (model)
        json_object_set_new(head, "model", json_string(model));
    json_object_set_new(head, "metric", json_string(lh_metric_name(lh_hnsw_metric(g->hnsw))));
    return head;
}

/* A hit's document and chunk (new). */
static json_t *
hit_of(const lh_vgen *g, uint32_t p)
{
    return json_pack("{s:s, s:i}", "doc_id", g->doc_ids[g->doc_of[p]], "chunk_id",
                     (int)g->chunk_of[p]);
}

/* How the vector search went, into answer (the answer itself, or its "vector" part). */
static void
add_vector_info(json_t *answer, const outcome *o)
{
    json_object_set_new(answer, "ef", json_integer((json_int_t)(o->exact ? 0 : o->ef)));
    json_object_set_new(answer, "method", json_string(o->exact ? "exact" : "hnsw"));
    if (o->exact)
        json_object_set_new(answer, "exact_reason", json_string(o->reason));
}

/* The answer of a vector search (new) without texts and columns. */
static json_t *
render(const lh_vgen *g, const lh_vsearch *s, const char *model, const allowed *a,
       const lh_hit *hits, const outcome *o)
{
    lh_metric metric = lh_hnsw_metric(g->hnsw);
    json_t *out_hits = json_array();
    for (size_t i = 0; i < o->n_hits; i++) {
        json_t *hit = hit_of(g, hits[i].id);
        json_object_set_new(hit, "score", json_real(score_of(metric, hits[i].distance)));
        json_object_set_new(hit, "distance", json_real(hits[i].distance));
        json_array_append_new(out_hits, hit);
    }
    json_t *answer = answer_head(g, s, model);
    add_vector_info(answer, o);
    json_object_set_new(answer, "hits", out_hits);
    add_filter_info(answer, s, a);
    return answer;
}

/* ---- text and hybrid ------------------------------------------------------------------- */

/* The BM25 ranking of the query's words to depth positions (new in *out, *n of them). */
static int
text_ranking(const lh_vgen *g, const lh_vsearch *s, const allowed *a, size_t depth, lh_scored **out,
             size_t *n, json_t **terms, lh_err *err)
{
    lh_scored *ranked = lh_try_malloc((depth ? depth : 1) * sizeof *ranked);
    if (!ranked)
        return lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory to search");
    int rc = lh_bm25__search(g->bm25, s->query, strlen(s->query), s->filter ? a->bits : NULL, depth,
                             ranked, n, terms, err);
    if (rc != 0) {
        free(ranked);
        return rc;
    }
    *out = ranked;
    return 0;
}

/* A text search: the answer (new) without texts and columns; the positions into hits. */
static int
search_text(const lh_vgen *g, const lh_vsearch *s, const allowed *a, size_t k, lh_hit *hits,
            size_t *n_hits, json_t **out, lh_err *err)
{
    lh_scored *ranked = NULL;
    size_t n = 0;
    json_t *terms = NULL;
    int rc = text_ranking(g, s, a, k, &ranked, &n, &terms, err);
    if (rc != 0)
        return rc;
    json_t *out_hits = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *hit = hit_of(g, ranked[i].id);
        json_object_set_new(hit, "score", json_real(ranked[i].score));
        json_array_append_new(out_hits, hit);
        hits[i].id = ranked[i].id;
    }
    json_t *answer = answer_head(g, s, NULL);
    json_object_set_new(answer, "method", json_string("bm25"));
    json_object_set_new(answer, "text", json_pack("{s:o}", "terms", terms));
    json_object_set_new(answer, "hits", out_hits);
    add_filter_info(answer, s, a);
    free(ranked);
    *n_hits = n;
    *out = answer;
    return 0;
}

/* A position in either ranking of a hybrid search (rank 0: not in that ranking). */
typedef struct fused {
    uint32_t id;
    uint32_t v_rank, t_rank;
    float v_score, t_score;
    double score;
} fused;

static int
cmp_fused_id(const void *a, const void *b)
{
    const fused *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Highest fused score first; ties: the better single rank, then the lower position. */
static int
cmp_fused_score(const void *a, const void *b)
{
    const fused *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    uint32_t bx = x->v_rank && (!x->t_rank || x->v_rank < x->t_rank) ? x->v_rank : x->t_rank;
    uint32_t by = y->v_rank && (!y->t_rank || y->v_rank < y->t_rank) ? y->v_rank : y->t_rank;
    if (bx != by)
        return bx < by ? -1 : 1;
    return cmp_fused_id(a, b);
}

/* Reciprocal rank fusion of the two rankings into f (room for n_v + n_t); returns how
 * many positions f holds, best first. */
static size_t
fuse(const lh_vhybrid *h, lh_metric metric, const lh_hit *vhits, size_t n_v, const lh_scored *thits,
     size_t n_t, fused *f)
{
    for (size_t i = 0; i < n_v; i++)
        f[i] = (fused){.id = vhits[i].id,
                       .v_rank = (uint32_t)i + 1,
                       .v_score = score_of(metric, vhits[i].distance)};
    qsort(f, n_v, sizeof *f, cmp_fused_id);
    size_t n = n_v;
    for (size_t i = 0; i < n_t; i++) {
        fused key = {.id = thits[i].id};
        fused *same = n_v ? bsearch(&key, f, n_v, sizeof *f, cmp_fused_id) : NULL;
        if (!same) {
            same = &f[n++];
            *same = key;
        }
        same->t_rank = (uint32_t)i + 1;
        same->t_score = thits[i].score;
    }
    for (size_t i = 0; i < n; i++)
        f[i].score = (f[i].v_rank ? h->vector_weight / (double)(h->rrf_k + f[i].v_rank) : 0) +
                     (f[i].t_rank ? h->text_weight / (double)(h->rrf_k + f[i].t_rank) : 0);
    qsort(f, n, sizeof *f, cmp_fused_score);
    return n;
}

/* One ranking's part of a fused hit: {"rank", "score"}, or null when it is not in it. */
static json_t *
part_of(uint32_t rank, float score)
{
    return rank ? json_pack("{s:i, s:f}", "rank", (int)rank, "score", (double)score) : json_null();
}

/* A hybrid search: both rankings to the depth, fused; the answer (new) without texts and
 * columns; the k best positions into hits. */
static int
search_hybrid(lh_vectors *v, const lh_vgen *g, const lh_vsearch *s, const char *model,
              const allowed *a, const float *qv, size_t k, lh_hit *hits, size_t *n_hits,
              json_t **out, lh_err *err)
{
    static const lh_vhybrid defaults = {.vector_weight = 1, .text_weight = 1, .rrf_k = 60};
    const lh_vhybrid *h = s->hybrid ? s->hybrid : &defaults;
    size_t ef = s->ef ? s->ef : (size_t)lh_hnsw_get_params(g->hnsw).ef_search;
    size_t depth = h->depth ? h->depth : (k > ef ? k : ef);
    if (depth > g->n)
        depth = g->n;
    lh_hit *vhits = lh_try_malloc((depth ? depth : 1) * sizeof *vhits);
    fused *f = lh_try_malloc((2 * depth + 1) * sizeof *f);
    lh_scored *thits = NULL;
    json_t *terms = NULL;
    size_t n_t = 0;
    int rc = 0;
    if (!vhits || !f) {
        rc = lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory to search");
        goto out;
    }
    outcome o;
    run_search(v, g, s, a, qv, depth, vhits, &o);
    if ((rc = text_ranking(g, s, a, depth, &thits, &n_t, &terms, err)) != 0)
        goto out;
    lh_metric metric = lh_hnsw_metric(g->hnsw);
    size_t n = fuse(h, metric, vhits, o.n_hits, thits, n_t, f);
    if (n > k)
        n = k;
    json_t *out_hits = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *hit = hit_of(g, f[i].id);
        json_object_set_new(hit, "score", json_real(f[i].score));
        json_object_set_new(hit, "vector", part_of(f[i].v_rank, f[i].v_score));
        json_object_set_new(hit, "text", part_of(f[i].t_rank, f[i].t_score));
        json_array_append_new(out_hits, hit);
        hits[i].id = f[i].id;
    }
    json_t *vector_part = json_pack("{s:I}", "hits", (json_int_t)o.n_hits);
    add_vector_info(vector_part, &o);
    json_t *answer = answer_head(g, s, model);
    json_object_set_new(answer, "method", json_string("rrf"));
    json_object_set_new(answer, "hybrid",
                        json_pack("{s:f, s:f, s:I, s:I}", "vector_weight", h->vector_weight,
                                  "text_weight", h->text_weight, "rrf_k", (json_int_t)h->rrf_k,
                                  "depth", (json_int_t)depth));
    json_object_set_new(answer, "vector", vector_part);
    json_object_set_new(answer, "text",
                        json_pack("{s:I, s:o}", "hits", (json_int_t)n_t, "terms", terms));
    terms = NULL;
    json_object_set_new(answer, "hits", out_hits);
    add_filter_info(answer, s, a);
    *n_hits = n;
    *out = answer;
out:
    json_decref(terms);
    free(thits);
    free(f);
    free(vhits);
    return rc;
}

int
lh_vectors_search(lh_vectors *v, const lh_vsearch *s, json_t **out, lh_err *err)
{
    json_t *spec = NULL, *answer = NULL;
    lh_vgen *g = lh_vectors__acquire(v, s->index, &spec, err);
    if (!g)
        return err ? err->rc : LH_ENOTFOUND;
    float *qv = NULL;
    allowed a = {.g = g};
    lh_hit *hits = NULL;
    const char *model = json_string_value(json_object_get(spec, "model"));
    int64_t embed_us = 0, filter_us = 0;
    int rc = check_request(v, spec, g, s, err);
    if (rc != 0)
        goto out;
    int64_t t0 = lh_mono_us();
    if (s->mode != LH_VSEARCH_TEXT &&
        (rc = query_vector(v, model, s, lh_hnsw_dim(g->hnsw), &qv, err)) != 0)
        goto out;
    if (s->query && s->mode != LH_VSEARCH_TEXT)
        embed_us = lh_mono_us() - t0;
    if (s->filter) {
        t0 = lh_mono_us();
        if ((rc = filter_positions(v, spec, s, &a, err)) != 0)
            goto out;
        filter_us = lh_mono_us() - t0;
    }
    size_t k = s->k < g->n ? s->k : g->n;
    hits = lh_calloc(k ? k : 1, sizeof *hits);
    size_t n_hits = 0;
    t0 = lh_mono_us();
    if (s->mode == LH_VSEARCH_VECTOR) {
        outcome o;
        run_search(v, g, s, &a, qv, k, hits, &o);
        answer = render(g, s, model, &a, hits, &o);
        n_hits = o.n_hits;
    } else if (s->mode == LH_VSEARCH_TEXT) {
        rc = search_text(g, s, &a, k, hits, &n_hits, &answer, err);
    } else {
        rc = search_hybrid(v, g, s, model, &a, qv, k, hits, &n_hits, &answer, err);
    }
    int64_t took_us = lh_mono_us() - t0;
    if (rc != 0)
        goto out;
    json_t *out_hits = json_object_get(answer, "hits");
    if (n_hits > 0 && model && (rc = add_texts(v, g, hits, n_hits, out_hits, err)) != 0)
        goto out;
    if (n_hits > 0 && s->n_include > 0 && (rc = add_columns(v, spec, s, out_hits, err)) != 0)
        goto out;
    json_object_set_new(answer, "took_us", json_integer(took_us));
    json_object_set_new(answer, "embed_us", json_integer(embed_us));
    json_object_set_new(answer, "filter_us", json_integer(filter_us));
    *out = answer;
    answer = NULL;
out:
    json_decref(answer);
    free(hits);
    free(a.bits);
    free(qv);
    json_decref(spec);
    lh_vgen__release(g);
    return rc;
}
