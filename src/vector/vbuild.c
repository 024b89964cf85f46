/*
 * vbuild.c — building a generation of an index: create and refresh (validate, reserve,
 * run), reading the dataset, and writing and committing the generation's files.
 *
 * A generation is built from the dataset's current rows: ids and texts (or ready-made
 * vectors) are read through the users' engine, texts are chunked and embedded (vreuse.c:
 * unchanged chunks reuse the previous generation's vectors), the graph and (text indexes)
 * the full-text index over the same chunks are built, and these objects are written to the
 * index's bucket under _vectors/{index}/gen-{G:06}/:
 *   embeddings.parquet  position, doc_id, chunk_id, chunk_text, content_hash, vector
 *   hnsw.bin            the graph (README.md has the format)
 *   bm25.parquet        the text index: term, position, tf (text indexes only; bm25.c)
 *   index.json          the descriptor, written last and create-only: the commit
 * A generation without index.json is garbage (a build that died): a failed build deletes
 * what it uploaded, and a start removes what a crash left (vload.c). The new generation
 * goes live through lh_vectors__publish (vlive.c). A promotion (vgen.c) is run by the same
 * lh_vbuild_run.
 *
 * Locking: a build runs without v->lock, under the index's `building` reservation.
 */
#include "vector/vector_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- reading a dataset ---------------------------------------------------------------- */

/* A chunk of the row being read; its first chunk starts its document (a text that
 * yields none, only whitespace, is no document). */
static void
on_chunk(void *ctx, size_t offset, size_t len)
{
    lh_vrows *r = ctx;
    if (r->failed)
        return;
    size_t at = r->texts.len;
    if ((r->doc_id && lh_vrows__start_doc(r, r->doc_id, r->doc_id_len) != 0) ||
        lh_buf_try_append(&r->texts, r->doc_text + offset, len) != 0 ||
        lh_vrows__add_position(r, at, len) != 0) {
        r->failed = true;
        lh_vrows__oom(r->err);
    }
    r->doc_id = NULL;
}

/* After a batch: progress, and whether the job was cancelled. */
static int
batch_done(lh_vrows *r)
{
    if (!r->job)
        return 0;
    lh_job_progress(r->job, r->rows_read, -1, "rows read");
    if (lh_job_cancelled(r->job))
        return lh_err_set(r->err, LH_ECANCELED, 409, "cancelled", "the build was cancelled");
    return 0;
}

static int
on_text_batch(void *ctx, const lh_batch *b)
{
    lh_vrows *r = ctx;
    size_t n = lh_batch_rows(b);
    for (size_t i = 0; i < n; i++) {
        size_t id_len = 0, text_len = 0;
        const char *id = lh_batch_str(b, 0, i, &id_len);
        const char *text = lh_batch_str(b, 1, i, &text_len);
        r->rows_read++;
        if (id == NULL || text == NULL) {
            r->skipped++;
            continue;
        }
        r->doc_text = text;
        r->doc_id = id;
        r->doc_id_len = id_len;
        size_t before = r->n;
        lh_chunk_text(text, text_len, r->chunk_size, r->chunk_overlap, on_chunk, r);
        r->doc_id = NULL;
        if (r->failed)
            return r->err->rc;
        if (r->n == before)
            r->skipped++; /* only whitespace */
    }
    return batch_done(r);
}

static int
on_vector_batch(void *ctx, const lh_batch *b)
{
    lh_vrows *r = ctx;
    size_t n = lh_batch_rows(b);
    for (size_t i = 0; i < n; i++) {
        size_t id_len = 0, dim = 0;
        int64_t present = 0, bad = 0;
        const char *id = lh_batch_str(b, 0, i, &id_len);
        const float *v = lh_batch_floats(b, 1, i, &dim);
        lh_batch_int(b, 2, i, &present);
        lh_batch_int(b, 3, i, &bad);
        r->rows_read++;
        if (id == NULL || !present) {
            r->skipped++;
            continue;
        }
        if (v == NULL || bad) {
            lh_err_set(r->err, LH_EINVAL, 400, "invalid_vector",
                       "row with id '%.*s' holds a value that is not a list of numbers",
                       (int)(id_len > 100 ? 100 : id_len), id);
            return LH_EINVAL;
        }
        if (dim == 0 || (r->dim && dim != r->dim)) {
            lh_err_set(r->err, LH_EINVAL, 400, "invalid_vector",
                       "row with id '%.*s' has a vector of %zu dimensions, not %u like the rows "
                       "before it",
                       (int)(id_len > 100 ? 100 : id_len), id, dim, r->dim ? r->dim : 1);
            return LH_EINVAL;
        }
        r->dim = (uint32_t)dim;
        if (lh_vrows__start_doc(r, id, id_len) != 0 || lh_vrows__add_position(r, 0, 0) != 0)
            return lh_vrows__oom(r->err);
        if (r->vec_cap < r->cap) { /* vectors grow with the positions */
            float *nv = lh_try_realloc(r->vectors, r->cap * (size_t)r->dim * sizeof *nv);
            if (!nv)
                return lh_vrows__oom(r->err);
            r->vectors = nv;
            r->vec_cap = r->cap;
        }
        memcpy(r->vectors + (r->n - 1) * r->dim, v, dim * sizeof *v);
    }
    return batch_done(r);
}

/* Read the dataset into r. */
static int
read_dataset(lh_vectors *v, const char *dataset, const json_t *spec, lh_vrows *r, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    const char *id = lh_vectors__spec_str(spec, "id_column"),
               *text = lh_vectors__spec_str(spec, "text_column");
    const char *vec = lh_vectors__spec_str(spec, "vector_column");
    lh_buf_puts(&sql, "SELECT CAST(");
    lh_sql_ident(&sql, id);
    if (text) {
        lh_buf_puts(&sql, " AS VARCHAR), CAST(");
        lh_sql_ident(&sql, text);
        lh_buf_puts(&sql, " AS VARCHAR)");
    } else {
        /* the vector, whether it is a list of NULL-free numbers, and whether it is there */
        lh_buf_puts(&sql, " AS VARCHAR), TRY_CAST(");
        lh_sql_ident(&sql, vec);
        lh_buf_puts(&sql, " AS FLOAT[]) AS lh_v, CAST(");
        lh_sql_ident(&sql, vec);
        lh_buf_puts(&sql,
                    " IS NOT NULL AS INTEGER), CAST(coalesce(len(list_filter(lh_v, "
                    "lh_x -> lh_x IS NULL OR isnan(lh_x) OR isinf(lh_x))) > 0, true) AS INTEGER)");
    }
    lh_buf_puts(&sql, " FROM ");
    lh_sql_ident(&sql, dataset);
    lh_buf_puts(&sql, " ORDER BY 1");
    r->by_vector = text == NULL;
    r->err = err;
    lh_scan_opts opts = {.sql = sql.data};
    int rc = lh_engine_scan(v->deps.views, &opts, r->by_vector ? on_vector_batch : on_text_batch, r,
                            err);
    lh_buf_free(&sql);
    return rc;
}

/* ---- create and refresh ------------------------------------------------------------------ */

static int
bad_field(lh_err *err, const char *fmt, const char *what)
{
    lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", fmt, what);
    return LH_EINVAL;
}

/* hnsw/chunk settings: an object of integers within bounds, or absent. */
static int
int_member(const json_t *obj, const char *group, const char *key, int64_t def, int64_t min,
           int64_t max, json_t *into, lh_err *err)
{
    const json_t *j = obj ? json_object_get(obj, key) : NULL;
    int64_t value = def;
    if (j && (!json_is_integer(j) || json_integer_value(j) < min || json_integer_value(j) > max)) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                   "'%s.%s' must be an integer from %lld to %lld", group, key, (long long)min,
                   (long long)max);
        return LH_EINVAL;
    }
    if (j)
        value = json_integer_value(j);
    json_object_set_new(into, key, json_integer(value));
    return 0;
}

static bool
has_column(const json_t *manifest, const char *name)
{
    size_t i;
    json_t *col;
    json_array_foreach(json_object_get(manifest, "columns"), i, col)
    {
        if (strcmp(lh_vectors__spec_str(col, "name") ? lh_vectors__spec_str(col, "name") : "",
                   name) == 0)
            return true;
    }
    return false;
}

/* The create body's fields, their types and how they combine (nothing allocated). */
static int
check_body(const json_t *body, lh_err *err)
{
    static const char *const fields[] = {"name",          "dataset", "id_column", "text_column",
                                         "vector_column", "model",   "metric",    "hnsw",
                                         "chunk",         "async",   NULL};
    if (lh_json_check_fields(body, fields,
                             "fields: name, dataset, id_column, text_column or vector_column, "
                             "model, metric, hnsw {m, ef_construction, ef_search, quantization}, "
                             "chunk {size, overlap}, async",
                             err) != 0)
        return LH_EINVAL;
    for (size_t i = 0; i < 7; i++) { /* the first seven fields are strings */
        const json_t *j = json_object_get(body, fields[i]);
        if (j && !json_is_string(j))
            return bad_field(err, "'%s' must be a string", fields[i]);
    }
    const char *name = lh_vectors__spec_str(body, "name");
    const char *dataset = lh_vectors__spec_str(body, "dataset");
    const char *text = lh_vectors__spec_str(body, "text_column");
    const char *vec = lh_vectors__spec_str(body, "vector_column");
    const char *metric = lh_vectors__spec_str(body, "metric");
    if (!name || !lh_name_valid(name))
        return bad_field(err,
                         "'%s' must be a name: a lowercase letter, then up to 62 lowercase "
                         "letters, digits or underscores",
                         "name");
    if (!dataset || !lh_name_valid(dataset))
        return bad_field(err, "'%s' must name a dataset", "dataset");
    if (!lh_vectors__spec_str(body, "id_column"))
        return bad_field(err, "'%s' is required: the column that identifies a row", "id_column");
    if ((text == NULL) == (vec == NULL))
        return bad_field(err,
                         "give exactly one of 'text_column' (embedded with 'model') or "
                         "'%s' (vectors already in the data)",
                         "vector_column");
    if (vec && lh_vectors__spec_str(body, "model"))
        return bad_field(err,
                         "'model' does not apply to a '%s' index: its vectors are used as "
                         "they are",
                         "vector_column");
    if (metric && lh_metric_parse(metric) < 0)
        return bad_field(err, "'metric' must be cosine, l2 or dot, not '%s'", metric);
    const json_t *hnsw = json_object_get(body, "hnsw"), *chunk = json_object_get(body, "chunk");
    if (hnsw && !json_is_object(hnsw))
        return bad_field(
            err, "'%s' must be an object {m, ef_construction, ef_search, quantization}", "hnsw");
    if (chunk && !json_is_object(chunk))
        return bad_field(err, "'%s' must be an object {size, overlap}", "chunk");
    if (chunk && vec)
        return bad_field(err, "'%s' does not apply to a vector_column index", "chunk");
    return 0;
}

/* chunk {size, overlap} (absent: the configured defaults) into *out (new). */
static int
chunk_settings(lh_vectors *v, const json_t *chunk, json_t **out, lh_err *err)
{
    const lh_config *cfg = v->deps.config;
    json_t *c = json_object();
    int rc = int_member(chunk, "chunk", "size", lh_config_int(cfg, "vector.chunk_size"), 64,
                        1 << 20, c, err);
    if (rc != 0)
        goto out;
    if ((rc = int_member(chunk, "chunk", "overlap", lh_config_int(cfg, "vector.chunk_overlap"), 0,
                         json_integer_value(json_object_get(c, "size")) / 2, c, err)) != 0)
        goto out;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)chunk, key, val)
    {
        if (strcmp(key, "size") && strcmp(key, "overlap")) {
            rc = bad_field(err, "unknown field 'chunk.%s' (size, overlap)", key);
            goto out;
        }
    }
    *out = c;
    c = NULL;
out:
    json_decref(c);
    return rc;
}

/* The dataset must be live and have the index's columns. */
static int
check_dataset(lh_vectors *v, const char *dataset, const char *const cols[2], lh_err *err)
{
    json_t *manifest = NULL;
    int rc = lh_catalog_get(v->deps.catalog, dataset, &manifest, err);
    if (rc != 0)
        goto out;
    const char *state = lh_vectors__spec_str(manifest, "state");
    if (strcmp(state ? state : "", "live") != 0) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found", "dataset '%s' was deleted",
                        dataset);
        goto out;
    }
    for (size_t i = 0; i < 2; i++)
        if (!has_column(manifest, cols[i])) {
            rc = lh_err_set(err, LH_ENOTFOUND, 404, "column_not_found",
                            "dataset '%s' has no column '%s'", dataset, cols[i]);
            lh_err_hint(err, "GET /catalog/datasets/%s lists its columns", dataset);
            goto out;
        }
out:
    json_decref(manifest);
    return rc;
}

/* Validate a create body into a spec (new). */
static int
parse_spec(lh_vectors *v, const json_t *body, json_t **out, lh_err *err)
{
    json_t *spec = NULL, *hnsw = NULL, *chunk = NULL;
    lh_embedder *e = NULL;
    int rc = check_body(body, err);
    if (rc != 0)
        goto out;
    const char *dataset = lh_vectors__spec_str(body, "dataset");
    const char *id = lh_vectors__spec_str(body, "id_column");
    const char *text = lh_vectors__spec_str(body, "text_column");
    const char *vec = lh_vectors__spec_str(body, "vector_column");
    const char *model = lh_vectors__spec_str(body, "model");
    const char *metric = lh_vectors__spec_str(body, "metric");
    if ((rc = lh_vectors__hnsw_settings(json_object_get(body, "hnsw"), "hnsw", true, &hnsw, err)) !=
        0)
        goto out;
    if (text && (rc = chunk_settings(v, json_object_get(body, "chunk"), &chunk, err)) != 0)
        goto out;
    const char *const cols[2] = {id, text ? text : vec};
    if ((rc = check_dataset(v, dataset, cols, err)) != 0)
        goto out;
    if (text && (rc = lh_embedder_open(v->deps.config, model ? model : "builtin", &e, err)) != 0)
        goto out;
    spec = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:O, s:O?}", "name",
                     lh_vectors__spec_str(body, "name"), "dataset", dataset, "id_column", id,
                     "text_column", text, "vector_column", vec, "model",
                     text ? (model ? model : "builtin") : NULL, "metric",
                     metric ? metric : "cosine", "hnsw", hnsw, "chunk", chunk);
    *out = spec;
out:
    lh_embedder_free(e);
    json_decref(chunk);
    json_decref(hnsw);
    return rc;
}

int
lh_vectors_create_begin(lh_vectors *v, const json_t *body, const char *actor, lh_vbuild **out,
                        lh_err *err)
{
    json_t *spec = NULL;
    char bucket[LH_NAME_MAX];
    int rc = parse_spec(v, body, &spec, err);
    if (rc != 0)
        return rc;
    /* residency: the index lives where its dataset lives */
    if ((rc = lh_vectors__dataset_bucket(v, lh_vectors__spec_str(spec, "dataset"), bucket, err)) !=
        0) {
        json_decref(spec);
        return rc;
    }
    const char *name = lh_vectors__spec_str(spec, "name");
    pthread_mutex_lock(&v->lock);
    if (lh_vectors__find_locked(v, name)) {
        pthread_mutex_unlock(&v->lock);
        lh_err_set(err, LH_EEXIST, 409, "index_exists", "a vector index named '%s' exists", name);
        lh_err_hint(err, "refresh it with POST /vectors/indexes/%s/refresh, or delete it first",
                    name);
        json_decref(spec); /* name pointed into it */
        return LH_EEXIST;
    }
    lh_vidx *x = lh_calloc(1, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    snprintf(x->dataset, sizeof x->dataset, "%s", lh_vectors__spec_str(spec, "dataset"));
    snprintf(x->bucket, sizeof x->bucket, "%s", bucket);
    x->spec = json_incref(spec);
    x->building = true;
    x->next = v->list;
    v->list = x;
    pthread_mutex_unlock(&v->lock);
    lh_vbuild *b = lh_calloc(1, sizeof *b);
    b->v = v;
    b->x = x;
    b->created = true;
    b->spec = spec;
    b->actor = lh_strdup(actor ? actor : "");
    snprintf(b->index, sizeof b->index, "%s", x->name);
    snprintf(b->dataset, sizeof b->dataset, "%s", x->dataset);
    snprintf(b->bucket, sizeof b->bucket, "%s", x->bucket);
    *out = b;
    return 0;
}

int
lh_vectors_refresh_begin(lh_vectors *v, const char *name, const char *actor, lh_vbuild **out,
                         lh_err *err)
{
    return lh_vectors__reserve(v, name, actor, out, err);
}

/* ---- running a build ----------------------------------------------------------------------- */

static int
write_embeddings(lh_vectors *v, const lh_vrows *r, const char *path, lh_err *err)
{
    char *cols = lh_sprintf("position INTEGER, doc_id VARCHAR, chunk_id INTEGER, chunk_text "
                            "VARCHAR, content_hash VARCHAR, vector FLOAT[%u]",
                            r->dim);
    lh_writer *w = NULL;
    int rc = lh_writer_open(v->deps.engine, cols, &w, err);
    free(cols);
    for (size_t p = 0; rc == 0 && p < r->n; p++) {
        const char *id = r->doc_ids[r->doc_of[p]];
        lh_writer_int(w, 0, (int64_t)p);
        lh_writer_str(w, 1, id, strlen(id));
        lh_writer_int(w, 2, r->chunk_of[p]);
        if (r->by_vector) {
            lh_writer_str(w, 3, NULL, 0);
            lh_writer_str(w, 4, NULL, 0);
        } else {
            const char *t = r->texts.data + r->text_off[p];
            char hex[65];
            lh_sha256_hex(t, r->text_len[p], hex);
            lh_writer_str(w, 3, t, r->text_len[p]);
            lh_writer_str(w, 4, hex, 64);
        }
        lh_writer_floats(w, 5, r->vectors + p * r->dim, r->dim);
        rc = lh_writer_next_row(w, err);
    }
    if (rc == 0)
        rc = lh_writer_finish(w, path, NULL, err);
    lh_writer_free(w);
    return rc;
}

/* What a build has made so far, on its way to the bucket. */
typedef struct built {
    lh_vrows r;
    lh_hnsw *h;
    lh_bm25 *bm25;    /* text indexes */
    json_t *manifest; /* the dataset's, when it was read */
    int64_t generation, embedded, reused, emb_bytes, hnsw_bytes, bm25_bytes;
    double graph_s;
    char *emb_key, *hnsw_key, *bm25_key; /* set just before their upload */
} built;

/* The dataset's rows, chunked and embedded, into bt->r. */
static int
read_rows(lh_vbuild *b, const lh_vgen *prev, lh_job *job, built *bt, lh_err *err)
{
    lh_vectors *v = b->v;
    lh_vrows *r = &bt->r;
    r->chunk_size = (size_t)lh_vectors__spec_int(b->spec, "chunk", "size");
    r->chunk_overlap = (size_t)lh_vectors__spec_int(b->spec, "chunk", "overlap");
    r->job = job;
    r->text_budget = (size_t)lh_config_int(v->deps.config, "vector.texts_in_memory_bytes");
    int rc = lh_catalog_get(v->deps.catalog, b->dataset, &bt->manifest, err);
    if (rc != 0)
        return rc;
    const char *state = lh_vectors__spec_str(bt->manifest, "state");
    if (strcmp(state ? state : "", "live") != 0)
        return lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found", "dataset '%s' was deleted",
                          b->dataset);
    if ((rc = read_dataset(v, b->dataset, b->spec, r, err)) != 0)
        return rc;
    if (r->n == 0)
        return lh_err_set(err, LH_EINVAL, 400, "nothing_to_index",
                          "dataset '%s' has no rows with a %s to index", b->dataset,
                          r->by_vector ? "vector" : "text");
    if (!r->by_vector &&
        (rc = lh_vectors__embed_chunks(b, r, prev, job, &bt->embedded, &bt->reused, err)) != 0)
        return rc;
    r->keep_texts = !r->by_vector && r->text_budget > 0;
    return 0;
}

static int
build_graph(lh_vbuild *b, lh_job *job, built *bt, lh_err *err)
{
    lh_metric metric = (lh_metric)lh_metric_parse(lh_vectors__spec_str(b->spec, "metric"));
    lh_hnsw_params params = lh_vectors__hnsw_params(json_object_get(b->spec, "hnsw"));
    int threads = (int)lh_config_int(b->v->deps.config, "vector.build_threads");
    if (job)
        lh_job_progress(job, 0, (int64_t)bt->r.n, "vectors linked");
    int64_t started = lh_mono_us();
    int rc =
        lh_hnsw_build(bt->r.vectors, bt->r.n, bt->r.dim, metric, &params, threads, &bt->h, err);
    if (rc != 0)
        return rc;
    bt->graph_s = (double)(lh_mono_us() - started) / 1e6;
    if (job)
        lh_job_progress(job, (int64_t)bt->r.n, (int64_t)bt->r.n, "vectors linked");
    return 0;
}

/* The full-text index over the chunk texts (text indexes; bm25.c), while the build still
 * holds every text. */
static int
build_text_index(built *bt, lh_err *err)
{
    lh_vrows *r = &bt->r;
    lh_bm25_builder tb;
    int rc = lh_bm25__builder_init(&tb, r->n, err);
    for (size_t p = 0; rc == 0 && p < r->n; p++)
        rc = lh_bm25__add_text(&tb, (uint32_t)p, r->texts.data + r->text_off[p], r->text_len[p]);
    if (rc == 0)
        rc = lh_bm25__finish(&tb, "build", &bt->bm25, err);
    lh_bm25__builder_free(&tb);
    return rc;
}

/* Write the embeddings, the sidecar and the text index to the work folder and upload
 * them. */
static int
store_files(lh_vbuild *b, built *bt, lh_err *err)
{
    lh_vectors *v = b->v;
    char *emb_tmp = lh_vectors__work_file(v, ".parquet"),
         *hnsw_tmp = lh_vectors__work_file(v, ".bin"),
         *bm25_tmp = lh_vectors__work_file(v, ".bm25.parquet");
    int rc = write_embeddings(v, &bt->r, emb_tmp, err);
    if (rc != 0)
        goto out;
    if ((rc = lh_hnsw_save(bt->h, hnsw_tmp, err)) != 0)
        goto out;
    if (bt->bm25 && (rc = lh_bm25__write(v->deps.engine, bt->bm25, bm25_tmp, err)) != 0)
        goto out;
    bt->emb_key = lh_layout_gen_key(b->index, bt->generation, "embeddings.parquet");
    bt->hnsw_key = lh_layout_gen_key(b->index, bt->generation, "hnsw.bin");
    if ((rc = lh_vectors__upload(v, b->bucket, emb_tmp, bt->emb_key, 0, &bt->emb_bytes, err)) != 0)
        goto out;
    if ((rc = lh_vectors__upload(v, b->bucket, hnsw_tmp, bt->hnsw_key, 0, &bt->hnsw_bytes, err)) !=
        0)
        goto out;
    if (bt->bm25) {
        bt->bm25_key = lh_layout_gen_key(b->index, bt->generation, "bm25.parquet");
        rc = lh_vectors__upload(v, b->bucket, bm25_tmp, bt->bm25_key, 0, &bt->bm25_bytes, err);
    }
out:
    unlink(emb_tmp);
    unlink(hnsw_tmp);
    unlink(bm25_tmp);
    free(emb_tmp);
    free(hnsw_tmp);
    free(bm25_tmp);
    return rc;
}

/* The generation's descriptor (new): the spec, what was built and from what. */
static json_t *
build_desc(const lh_vbuild *b, const built *bt, int64_t started)
{
    char created_at[LH_TIME_MAX];
    lh_time_format(lh_now_us(), created_at);
    json_t *desc = json_deep_copy(b->spec);
    json_t *extra = json_pack(
        "{s:i, s:I, s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:{s:s, s:I, s:s, s:I}}",
        "format", 1, "generation", (json_int_t)bt->generation, "dim", (int)bt->r.dim, "created_at",
        created_at, "created_by", b->actor, "dataset_version",
        (json_int_t)json_integer_value(json_object_get(bt->manifest, "version")), "vectors",
        (json_int_t)bt->r.n, "documents", (json_int_t)bt->r.n_docs, "skipped_rows",
        (json_int_t)bt->r.skipped, "embedded", (json_int_t)bt->embedded, "reused",
        (json_int_t)bt->reused, "graph_seconds", bt->graph_s, "build_seconds",
        (double)(lh_mono_us() - started) / 1e6, "files", "embeddings", bt->emb_key,
        "embeddings_bytes", (json_int_t)bt->emb_bytes, "hnsw", bt->hnsw_key, "hnsw_bytes",
        (json_int_t)bt->hnsw_bytes);
    json_object_update(desc, extra);
    json_decref(extra);
    if (bt->bm25_key) {
        json_t *files = json_object_get(desc, "files");
        json_object_set_new(files, "bm25", json_string(bt->bm25_key));
        json_object_set_new(files, "bm25_bytes", json_integer(bt->bm25_bytes));
    }
    if (!bt->r.by_vector) {
        lh_embedder *e = NULL;
        if (lh_embedder_open(b->v->deps.config, lh_vectors__spec_str(b->spec, "model"), &e, NULL) ==
            0)
            json_object_set_new(desc, "model_version", json_string(lh_embedder_version(e)));
        lh_embedder_free(e);
    }
    return desc;
}

/* The generation made whole in memory (new in *out; takes bt's graph and rows): done before
 * index.json commits it, since once that exists a restart loads it and nothing may fail
 * after it (the build would report an error for an index that is there). */
static int
make_gen(lh_vbuild *b, built *bt, json_t *desc, lh_vgen **out, lh_err *err)
{
    lh_vectors *v = b->v;
    lh_vgen *g = lh_vgen__new(v, b->bucket, bt->generation);
    g->desc = json_incref(desc);
    g->hnsw = bt->h;
    bt->h = NULL;
    lh_vectors__map_built(v, b->index, g);
    g->bm25 = bt->bm25;
    bt->bm25 = NULL;
    int rc = lh_vrows__into_gen(&bt->r, g, err);
    if (rc != 0)
        goto out;
    if ((rc = lh_cache_local_path(v->deps.cache, lh_vectors__store(v, b->bucket), bt->emb_key, true,
                                  &g->emb_path, err)) != 0)
        goto out;
    g->emb_pinned = true;
    *out = g;
    g = NULL;
out:
    lh_vgen__free(g);
    return rc;
}

/* The committed generation goes live (takes g); cannot fail. */
static void
go_live(lh_vbuild *b, lh_vgen *g, json_t **out)
{
    b->done = true;
    *out = lh_vgen__summary(g);
    json_object_set_new(*out, "index", json_string(b->index));
    static const char *const copy[] = {"embedded", "reused", "skipped_rows", "build_seconds", NULL};
    for (size_t i = 0; copy[i]; i++)
        json_object_set(*out, copy[i], json_object_get(g->desc, copy[i]));
    size_t n = g->n;
    int64_t generation = g->generation;
    lh_vectors__publish(b->v, b->x, g, b->created ? "build" : "refresh", b->actor);
    lh_log(LH_LOG_INFO, NULL, NULL, "vector index %s: generation %lld built (%zu vectors)",
           b->index, (long long)generation, n);
}

int
lh_vbuild_run(lh_vbuild *b, lh_job *job, json_t **out, lh_err *err)
{
    if (b->promote)
        return lh_vectors__promote_run(b, job, out, err);
    lh_vectors *v = b->v;
    int64_t started = lh_mono_us();
    built bt = {.h = NULL};
    lh_vrows__init(&bt.r, err);
    lh_vgen *prev = NULL, *g = NULL;
    json_t *desc = NULL;
    bool uploaded = false;
    int rc = 0;

    pthread_mutex_lock(&v->lock);
    if ((prev = b->x->live) != NULL)
        atomic_fetch_add(&prev->refs, 1);
    bt.generation = b->x->last_generation + 1;
    pthread_mutex_unlock(&v->lock);

    if ((rc = read_rows(b, prev, job, &bt, err)) != 0)
        goto out;
    if ((rc = build_graph(b, job, &bt, err)) != 0)
        goto out;
    if (!bt.r.by_vector && (rc = build_text_index(&bt, err)) != 0)
        goto out;
    uploaded = true;
    if ((rc = store_files(b, &bt, err)) != 0)
        goto out;
    desc = build_desc(b, &bt, started);
    if ((rc = make_gen(b, &bt, desc, &g, err)) != 0)
        goto out;
    if ((rc = lh_vectors__commit_desc(v, b->bucket, b->index, bt.generation, desc, err)) != 0)
        goto out;
    uploaded = false; /* committed: the files are the generation's now */
    go_live(b, g, out);
    g = NULL;
out:
    lh_vgen__free(g);
    if (uploaded) { /* not committed: remove what was written */
        const char *keys[] = {bt.emb_key, bt.hnsw_key, bt.bm25_key};
        lh_vectors__discard(v, b->bucket, keys, 3);
    }
    free(bt.emb_key);
    free(bt.hnsw_key);
    free(bt.bm25_key);
    lh_bm25__release(bt.bm25);
    json_decref(desc);
    lh_hnsw_free(bt.h);
    json_decref(bt.manifest);
    lh_vrows__free(&bt.r);
    lh_vgen__release(prev);
    return rc;
}
