/*
 * vindex.c — the registry of vector indexes: create, refresh, load at start, list, drop.
 *
 * A generation is built from the dataset's current rows: ids and texts (or ready-made
 * vectors) are read through the users' engine, texts are chunked and embedded (unchanged
 * chunks reuse the previous generation's vectors, found by content hash; the rest go
 * through the embedder and its cache), the graph is built, and three objects are written
 * to the primary bucket under _vectors/{index}/gen-{G:06}/:
 *   embeddings.parquet  position, doc_id, chunk_id, chunk_text, content_hash, vector
 *   hnsw.bin            the graph (README.md has the format)
 *   index.json          the descriptor, written last and create-only: the commit
 * A generation without index.json is garbage (a build that died) and is removed at
 * start. The live generation is swapped under the registry lock; searches hold a
 * reference, so the old one is freed when its last search ends.
 *
 * Locking: v->lock guards the list and each entry's live/building/last_generation. A
 * build runs without the lock; `building` keeps a second build of the same index out.
 */
#include "vector/vector_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DESC_MAX_BYTES (1 << 20)
#define EMBED_CHUNK 256 /* texts per embedder call (progress and cancellation points) */

/* ---- generations ------------------------------------------------------------------------- */

static uint64_t
hash_id(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

int64_t
lh_vgen__find_doc(const lh_vgen *g, const char *id, size_t len)
{
    if (g->table_size == 0)
        return -1;
    size_t mask = g->table_size - 1;
    for (size_t i = (size_t)hash_id(id, len) & mask;; i = (i + 1) & mask) {
        uint32_t slot = g->table[i];
        if (slot == 0)
            return -1;
        const char *d = g->doc_ids[slot - 1];
        if (strncmp(d, id, len) == 0 && d[len] == '\0')
            return (int64_t)slot - 1;
    }
}

/* Documents from doc_of (positions of a document are contiguous). */
static int
gen_index_docs(lh_vgen *g, lh_err *err)
{
    g->doc_first = lh_try_malloc((g->n_docs ? g->n_docs : 1) * sizeof *g->doc_first);
    g->doc_count = lh_try_malloc((g->n_docs ? g->n_docs : 1) * sizeof *g->doc_count);
    size_t size = 16;
    while (size < 2 * g->n_docs)
        size *= 2;
    g->table = lh_try_malloc(size * sizeof *g->table);
    if (!g->doc_first || !g->doc_count || !g->table)
        return lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory for the index");
    memset(g->table, 0, size * sizeof *g->table);
    g->table_size = size;
    memset(g->doc_count, 0, g->n_docs * sizeof *g->doc_count);
    for (size_t p = g->n; p-- > 0;) {
        g->doc_first[g->doc_of[p]] = (uint32_t)p;
        g->doc_count[g->doc_of[p]]++;
    }
    for (size_t d = 0; d < g->n_docs; d++) {
        size_t len = strlen(g->doc_ids[d]);
        size_t i = (size_t)hash_id(g->doc_ids[d], len) & (size - 1);
        while (g->table[i] != 0)
            i = (i + 1) & (size - 1);
        g->table[i] = (uint32_t)d + 1;
    }
    return 0;
}

void
lh_vgen__free(lh_vgen *g)
{
    if (g == NULL)
        return;
    lh_hnsw_free(g->hnsw);
    if (g->owner && g->hnsw_path)
        lh_cache_unpin(g->owner->deps.cache, g->hnsw_path);
    if (g->owner && g->emb_pinned)
        lh_cache_unpin(g->owner->deps.cache, g->emb_path);
    free(g->hnsw_path);
    free(g->emb_path);
    for (size_t d = 0; g->doc_ids && d < g->n_docs; d++)
        free(g->doc_ids[d]);
    free(g->doc_ids);
    free(g->texts);
    free(g->text_off);
    free(g->text_len);
    free(g->doc_of);
    free(g->chunk_of);
    free(g->doc_first);
    free(g->doc_count);
    free(g->table);
    json_decref(g->desc);
    free(g);
}

void
lh_vgen__release(lh_vgen *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1)
        lh_vgen__free(g);
}

/* ---- the registry --------------------------------------------------------------------- */

lh_vidx *
lh_vectors__find_locked(lh_vectors *v, const char *name)
{
    for (lh_vidx *x = v->list; x; x = x->next)
        if (strcmp(x->name, name) == 0)
            return x;
    return NULL;
}

int
lh_vectors__no_index(lh_err *err, const char *name)
{
    lh_err_set(err, LH_ENOTFOUND, 404, "index_not_found", "no vector index named '%s'", name);
    lh_err_hint(err, "GET /vectors/indexes lists them");
    return LH_ENOTFOUND;
}

lh_vgen *
lh_vectors__acquire(lh_vectors *v, const char *name, json_t **spec, lh_err *err)
{
    pthread_mutex_lock(&v->lock);
    lh_vidx *x = lh_vectors__find_locked(v, name);
    lh_vgen *g = x ? x->live : NULL;
    if (g) {
        atomic_fetch_add(&g->refs, 1);
        if (spec)
            *spec = json_incref(x->spec);
    }
    pthread_mutex_unlock(&v->lock);
    if (!x)
        lh_vectors__no_index(err, name);
    else if (!g) {
        lh_err_set(err, LH_EEXIST, 409, "index_not_ready",
                   "index '%s' is still building its first generation", name);
        lh_err_hint(err, "follow the build's job with GET /jobs/{id}");
    }
    return g;
}


void
lh_vidx__free(lh_vidx *x)
{
    if (x == NULL)
        return;
    lh_vgen__release(x->live);
    json_decref(x->spec);
    free(x);
}

bool
lh_vectors_dataset_of(lh_vectors *v, const char *name, char *out, size_t size)
{
    pthread_mutex_lock(&v->lock);
    lh_vidx *x = lh_vectors__find_locked(v, name);
    if (x)
        snprintf(out, size, "%s", x->dataset);
    pthread_mutex_unlock(&v->lock);
    return x != NULL;
}

/* ---- reading a dataset ---------------------------------------------------------------- */

/* What a build gathers: documents, their chunks (positions) and, for vector_column
 * indexes, the vectors. Arrays sized by data grow with lh_try_realloc. */
typedef struct rows {
    char **doc_ids;
    size_t n_docs, cap_docs;
    uint32_t *doc_of;
    int32_t *chunk_of;
    size_t *text_off; /* into texts */
    uint32_t *text_len;
    size_t n, cap;
    lh_buf texts;
    float *vectors; /* n * dim */
    size_t vec_cap;
    uint32_t dim;
    int64_t rows_read, skipped;
    /* for the scan callback */
    bool by_vector;
    size_t chunk_size, chunk_overlap;
    const char *doc_text; /* the text being chunked */
    const char *doc_id;   /* its id, until its first chunk starts the document */
    size_t doc_id_len;
    bool failed;          /* a chunk could not be kept (err is set) */
    bool keep_texts;      /* loading: gather chunk texts while within text_budget */
    size_t text_budget;
    lh_err *err;
    lh_job *job;
} rows;

static int
oom(lh_err *err)
{
    return lh_err_set(err, LH_ENOMEM, 503, "out_of_memory",
                      "not enough memory to build the index");
}

/* Room for one element more in *p (cap elements of elem bytes), doubling. */
static int
grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 1024;
    void *q = lh_try_realloc(*p, want * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = want;
    return 0;
}

/* A position for the current document (the last started), its chunks numbered 0, 1, ...
 * in order. The per-position arrays share one capacity, r->cap. */
static int
add_position(rows *r, size_t text_off, size_t text_len)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        uint32_t *doc_of = lh_try_realloc(r->doc_of, cap * sizeof *doc_of);
        if (doc_of)
            r->doc_of = doc_of;
        int32_t *chunk_of = doc_of ? lh_try_realloc(r->chunk_of, cap * sizeof *chunk_of) : NULL;
        if (chunk_of)
            r->chunk_of = chunk_of;
        size_t *off = chunk_of ? lh_try_realloc(r->text_off, cap * sizeof *off) : NULL;
        if (off)
            r->text_off = off;
        uint32_t *len = off ? lh_try_realloc(r->text_len, cap * sizeof *len) : NULL;
        if (!len)
            return -1;
        r->text_len = len;
        r->cap = cap;
    }
    uint32_t doc = (uint32_t)(r->n_docs - 1);
    r->doc_of[r->n] = doc;
    r->chunk_of[r->n] = r->n > 0 && r->doc_of[r->n - 1] == doc ? r->chunk_of[r->n - 1] + 1 : 0;
    r->text_off[r->n] = text_off;
    r->text_len[r->n] = (uint32_t)text_len;
    r->n++;
    return 0;
}

static int start_doc(rows *r, const char *id, size_t len);

/* A chunk of the row being read; its first chunk starts its document (a text that
 * yields none, only whitespace, is no document). */
static void
on_chunk(void *ctx, size_t offset, size_t len)
{
    rows *r = ctx;
    if (r->failed)
        return;
    size_t at = r->texts.len;
    if ((r->doc_id && start_doc(r, r->doc_id, r->doc_id_len) != 0) ||
        lh_buf_try_append(&r->texts, r->doc_text + offset, len) != 0 ||
        add_position(r, at, len) != 0) {
        r->failed = true;
        oom(r->err);
    }
    r->doc_id = NULL;
}

/* After a batch: progress, and whether the job was cancelled. */
static int
batch_done(rows *r)
{
    if (!r->job)
        return 0;
    lh_job_progress(r->job, r->rows_read, -1, "rows read");
    if (lh_job_cancelled(r->job))
        return lh_err_set(r->err, LH_ECANCELED, 409, "cancelled", "the build was cancelled");
    return 0;
}

/* A new document unless id repeats the last one (rows are read ordered by id). */
static int
start_doc(rows *r, const char *id, size_t len)
{
    if (r->n_docs > 0 && strncmp(r->doc_ids[r->n_docs - 1], id, len) == 0 &&
        r->doc_ids[r->n_docs - 1][len] == '\0')
        return 0;
    if (grow((void **)&r->doc_ids, &r->cap_docs, r->n_docs, sizeof *r->doc_ids) != 0)
        return -1;
    r->doc_ids[r->n_docs++] = lh_strndup(id, len);
    return 0;
}

static int
on_text_batch(void *ctx, const lh_batch *b)
{
    rows *r = ctx;
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
    rows *r = ctx;
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
                       "before it", (int)(id_len > 100 ? 100 : id_len), id, dim,
                       r->dim ? r->dim : 1);
            return LH_EINVAL;
        }
        r->dim = (uint32_t)dim;
        if (start_doc(r, id, id_len) != 0 || add_position(r, 0, 0) != 0)
            return oom(r->err);
        if (r->vec_cap < r->cap) { /* vectors grow with the positions */
            float *nv = lh_try_realloc(r->vectors, r->cap * (size_t)r->dim * sizeof *nv);
            if (!nv)
                return oom(r->err);
            r->vectors = nv;
            r->vec_cap = r->cap;
        }
        memcpy(r->vectors + (r->n - 1) * r->dim, v, dim * sizeof *v);
    }
    return batch_done(r);
}

static void
rows_free(rows *r)
{
    for (size_t d = 0; r->doc_ids && d < r->n_docs; d++)
        free(r->doc_ids[d]);
    free(r->doc_ids);
    free(r->doc_of);
    free(r->chunk_of);
    free(r->text_off);
    free(r->text_len);
    free(r->vectors);
    lh_buf_free(&r->texts);
}

static const char *
spec_str(const json_t *spec, const char *key)
{
    return json_string_value(json_object_get(spec, key));
}

static int64_t
spec_int(const json_t *spec, const char *group, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(spec, group), key));
}

/* Read the dataset into r. */
static int
read_dataset(lh_vectors *v, const char *dataset, const json_t *spec, rows *r, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    const char *id = spec_str(spec, "id_column"), *text = spec_str(spec, "text_column");
    const char *vec = spec_str(spec, "vector_column");
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
        lh_buf_puts(&sql, " IS NOT NULL AS INTEGER), CAST(coalesce(len(list_filter(lh_v, "
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

/* ---- reuse of the previous generation's vectors ----------------------------------------- */

typedef struct reuse {
    uint8_t (*keys)[32];
    float *vectors;
    uint32_t *table; /* slot -> entry + 1 */
    size_t n, key_cap, vec_cap, table_size;
    uint32_t dim;
    lh_err *err;
} reuse;

static int
hex_to_key(const char *hex, size_t len, uint8_t key[32])
{
    if (len != 64)
        return -1;
    for (size_t i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        key[i] = (uint8_t)v;
    }
    return 0;
}

static int
on_reuse_batch(void *ctx, const lh_batch *b)
{
    reuse *u = ctx;
    for (size_t i = 0; i < lh_batch_rows(b); i++) {
        size_t len = 0, dim = 0;
        const char *hex = lh_batch_str(b, 0, i, &len);
        const float *vec = lh_batch_floats(b, 1, i, &dim);
        if (!hex || !vec || dim != u->dim)
            continue;
        if (grow((void **)&u->keys, &u->key_cap, u->n, sizeof *u->keys) ||
            grow((void **)&u->vectors, &u->vec_cap, u->n, (size_t)u->dim * sizeof(float)))
            return oom(u->err);
        if (hex_to_key(hex, len, u->keys[u->n]) != 0)
            continue;
        memcpy(u->vectors + u->n * u->dim, vec, dim * sizeof *vec);
        u->n++;
    }
    return 0;
}

static size_t
key_slot(const uint8_t key[32], size_t mask)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)h & mask;
}

/* Load the previous generation's (content hash, vector) pairs. A failure only means no
 * reuse: the text is embedded again. */
static void
reuse_load(lh_vectors *v, const lh_vgen *prev, uint32_t dim, reuse *u)
{
    lh_err err;
    lh_err_clear(&err);
    u->dim = dim;
    u->err = &err;
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT content_hash, CAST(vector AS FLOAT[]) FROM read_parquet(");
    lh_sql_quote(&sql, prev->emb_path);
    lh_buf_puts(&sql, ")");
    lh_scan_opts opts = {.sql = sql.data};
    if (lh_engine_scan(v->deps.engine, &opts, on_reuse_batch, u, &err) != 0)
        u->n = 0;
    lh_buf_free(&sql);
    size_t size = 16;
    while (size < 2 * u->n)
        size *= 2;
    u->table = u->n ? calloc(size, sizeof *u->table) : NULL;
    if (!u->table) {
        u->n = 0;
        return;
    }
    u->table_size = size;
    for (size_t i = 0; i < u->n; i++) {
        size_t s = key_slot(u->keys[i], size - 1);
        while (u->table[s])
            s = (s + 1) & (size - 1);
        u->table[s] = (uint32_t)i + 1;
    }
}

static const float *
reuse_find(const reuse *u, const uint8_t key[32])
{
    if (u->table_size == 0)
        return NULL;
    for (size_t s = key_slot(key, u->table_size - 1);; s = (s + 1) & (u->table_size - 1)) {
        uint32_t e = u->table[s];
        if (e == 0)
            return NULL;
        if (memcmp(u->keys[e - 1], key, 32) == 0)
            return u->vectors + (size_t)(e - 1) * u->dim;
    }
}

static void
reuse_free(reuse *u)
{
    free(u->keys);
    free(u->vectors);
    free(u->table);
}

/* ---- builds ----------------------------------------------------------------------------- */

const char *
lh_vbuild_dataset(const lh_vbuild *b)
{
    return b->dataset;
}

const char *
lh_vbuild_index(const lh_vbuild *b)
{
    return b->index;
}

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
        if (strcmp(spec_str(col, "name") ? spec_str(col, "name") : "", name) == 0)
            return true;
    }
    return false;
}

/* Validate a create body into a spec (new). */
static int
parse_spec(lh_vectors *v, const json_t *body, json_t **out, lh_err *err)
{
    static const char *const fields[] = {"name", "dataset", "id_column", "text_column",
                                         "vector_column", "model", "metric", "hnsw", "chunk",
                                         "async", NULL};
    size_t i;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)body, key, val)
    {
        bool known = false;
        for (i = 0; fields[i]; i++)
            known = known || strcmp(key, fields[i]) == 0;
        if (!known) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "unknown field '%s'", key);
            lh_err_hint(err, "fields: name, dataset, id_column, text_column or vector_column, "
                             "model, metric, hnsw {m, ef_construction, ef_search}, chunk {size, "
                             "overlap}, async");
            return LH_EINVAL;
        }
    }
    static const char *const strings[] = {"name", "dataset", "id_column", "text_column",
                                          "vector_column", "model", "metric", NULL};
    for (i = 0; strings[i]; i++) {
        const json_t *j = json_object_get(body, strings[i]);
        if (j && !json_is_string(j))
            return bad_field(err, "'%s' must be a string", strings[i]);
    }
    const char *name = spec_str(body, "name"), *dataset = spec_str(body, "dataset");
    const char *id = spec_str(body, "id_column"), *text = spec_str(body, "text_column");
    const char *vec = spec_str(body, "vector_column"), *model = spec_str(body, "model");
    const char *metric = spec_str(body, "metric");
    if (!name || !lh_name_valid(name))
        return bad_field(err, "'%s' must be a name: a lowercase letter, then up to 62 lowercase "
                              "letters, digits or underscores", "name");
    if (!dataset || !lh_name_valid(dataset))
        return bad_field(err, "'%s' must name a dataset", "dataset");
    if (!id)
        return bad_field(err, "'%s' is required: the column that identifies a row", "id_column");
    if ((text == NULL) == (vec == NULL))
        return bad_field(err, "give exactly one of 'text_column' (embedded with 'model') or "
                              "'%s' (vectors already in the data)", "vector_column");
    if (vec && model)
        return bad_field(err, "'model' does not apply to a '%s' index: its vectors are used as "
                              "they are", "vector_column");
    if (metric && lh_metric_parse(metric) < 0)
        return bad_field(err, "'metric' must be cosine, l2 or dot, not '%s'", metric);
    const json_t *hnsw = json_object_get(body, "hnsw"), *chunk = json_object_get(body, "chunk");
    if (hnsw && !json_is_object(hnsw))
        return bad_field(err, "'%s' must be an object {m, ef_construction, ef_search}", "hnsw");
    if (chunk && !json_is_object(chunk))
        return bad_field(err, "'%s' must be an object {size, overlap}", "chunk");
    if (chunk && vec)
        return bad_field(err, "'%s' does not apply to a vector_column index", "chunk");
    json_t *spec = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s}", "name", name, "dataset",
                             dataset, "id_column", id, "text_column", text, "vector_column", vec,
                             "model", text ? (model ? model : "builtin") : NULL, "metric",
                             metric ? metric : "cosine");
    json_t *h = json_object(), *c = json_object();
    json_object_set_new(spec, "hnsw", h);
    if (text)
        json_object_set_new(spec, "chunk", c);
    else
        json_decref(c), c = NULL;
    const lh_config *cfg = v->deps.config;
    int64_t chunk_size = lh_config_int(cfg, "vector.chunk_size");
    int rc = 0;
    if ((rc = int_member(hnsw, "hnsw", "m", 16, 2, 128, h, err)) != 0 ||
        (rc = int_member(hnsw, "hnsw", "ef_construction", 80, 1, 4096, h, err)) != 0 ||
        (rc = int_member(hnsw, "hnsw", "ef_search", 30, 1, 4096, h, err)) != 0)
        goto fail;
    if (hnsw) {
        json_object_foreach((json_t *)hnsw, key, val)
        {
            if (strcmp(key, "m") && strcmp(key, "ef_construction") && strcmp(key, "ef_search")) {
                rc = bad_field(err, "unknown field 'hnsw.%s' (m, ef_construction, ef_search)", key);
                goto fail;
            }
        }
    }
    if (c && ((rc = int_member(chunk, "chunk", "size", chunk_size, 64, 1 << 20, c, err)) != 0 ||
              (rc = int_member(chunk, "chunk", "overlap",
                               lh_config_int(cfg, "vector.chunk_overlap"), 0,
                               spec_int(spec, "chunk", "size") / 2, c, err)) != 0))
        goto fail;
    if (chunk) {
        json_object_foreach((json_t *)chunk, key, val)
        {
            if (strcmp(key, "size") && strcmp(key, "overlap")) {
                rc = bad_field(err, "unknown field 'chunk.%s' (size, overlap)", key);
                goto fail;
            }
        }
    }
    json_t *manifest = NULL;
    if ((rc = lh_catalog_get(v->deps.catalog, dataset, &manifest, err)) != 0)
        goto fail;
    if (strcmp(spec_str(manifest, "state") ? spec_str(manifest, "state") : "", "live") != 0) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found", "dataset '%s' was deleted",
                        dataset);
    } else {
        const char *cols[] = {id, text ? text : vec};
        for (i = 0; i < 2 && rc == 0; i++)
            if (!has_column(manifest, cols[i])) {
                rc = lh_err_set(err, LH_ENOTFOUND, 404, "column_not_found",
                                "dataset '%s' has no column '%s'", dataset, cols[i]);
                lh_err_hint(err, "GET /catalog/datasets/%s lists its columns", dataset);
            }
    }
    json_decref(manifest);
    if (rc != 0)
        goto fail;
    if (text) {
        lh_embedder *e = NULL;
        if ((rc = lh_embedder_open(cfg, spec_str(spec, "model"), &e, err)) != 0)
            goto fail;
        lh_embedder_free(e);
    }
    *out = spec;
    return 0;
fail:
    json_decref(spec);
    return rc;
}

int
lh_vectors_create_begin(lh_vectors *v, const json_t *body, const char *actor, lh_vbuild **out,
                        lh_err *err)
{
    json_t *spec = NULL;
    int rc = parse_spec(v, body, &spec, err);
    if (rc != 0)
        return rc;
    const char *name = spec_str(spec, "name");
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
    snprintf(x->dataset, sizeof x->dataset, "%s", spec_str(spec, "dataset"));
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
    *out = b;
    return 0;
}

int
lh_vectors_refresh_begin(lh_vectors *v, const char *name, const char *actor, lh_vbuild **out,
                         lh_err *err)
{
    pthread_mutex_lock(&v->lock);
    lh_vidx *x = lh_vectors__find_locked(v, name);
    if (!x || x->building) {
        pthread_mutex_unlock(&v->lock);
        if (!x)
            return lh_vectors__no_index(err, name);
        lh_err_set(err, LH_EEXIST, 409, "index_building", "index '%s' is being built already",
                   name);
        lh_err_hint(err, "wait for the running build's job to finish");
        return LH_EEXIST;
    }
    x->building = true;
    lh_vbuild *b = lh_calloc(1, sizeof *b);
    b->v = v;
    b->x = x;
    b->spec = json_incref(x->spec);
    b->actor = lh_strdup(actor ? actor : "");
    snprintf(b->index, sizeof b->index, "%s", x->name);
    snprintf(b->dataset, sizeof b->dataset, "%s", x->dataset);
    pthread_mutex_unlock(&v->lock);
    *out = b;
    return 0;
}

void
lh_vbuild_free(lh_vbuild *b)
{
    if (b == NULL)
        return;
    lh_vectors *v = b->v;
    pthread_mutex_lock(&v->lock);
    b->x->building = false;
    lh_vidx *drop = NULL;
    if (b->created && !b->done) {
        for (lh_vidx **link = &v->list; *link; link = &(*link)->next)
            if (*link == b->x) {
                *link = b->x->next;
                drop = b->x;
                break;
            }
    }
    pthread_mutex_unlock(&v->lock);
    lh_vidx__free(drop);
    json_decref(b->spec);
    json_decref(b->origin);
    free(b->actor);
    free(b);
}

/* Upload a local file to key (the caller removes the file). */
int
lh_vectors__upload(lh_vectors *v, const char *path, const char *key, int flags, int64_t *bytes,
                   lh_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        lh_err_set(err, LH_EIO, 500, "work_dir_unreadable", "could not read a built index file");
        lh_err_detail(err, "%s: %s", path, strerror(errno));
        return LH_EIO;
    }
    lh_source src = {.fd = fd, .len = st.st_size, .may_link = true};
    int rc = lh_store_put(v->store, key, &src, flags, NULL, err);
    close(fd);
    if (rc == 0 && bytes)
        *bytes = st.st_size;
    return rc;
}

/* Embed every chunk of r (text indexes) into r->vectors. */
static int
embed_chunks(lh_vbuild *b, rows *r, const lh_vgen *prev, lh_job *job, int64_t *embedded,
             int64_t *reused, lh_err *err)
{
    lh_embedder *e = NULL;
    int rc = lh_embedder_open(b->v->deps.config, spec_str(b->spec, "model"), &e, err);
    if (rc != 0)
        return rc;
    reuse u = {0};
    const char *prev_version = prev ? spec_str(prev->desc, "model_version") : NULL;
    if (prev && prev_version && strcmp(prev_version, lh_embedder_version(e)) == 0) {
        /* same model: the old vectors are good for unchanged text */
        r->dim = lh_hnsw_dim(prev->hnsw);
        r->vectors = lh_try_malloc((r->n ? r->n : 1) * (size_t)r->dim * sizeof(float));
        if (!r->vectors) {
            lh_embedder_free(e);
            return oom(err);
        }
        reuse_load(b->v, prev, r->dim, &u);
    }
    const char **texts = lh_calloc(EMBED_CHUNK, sizeof *texts);
    size_t *lens = lh_calloc(EMBED_CHUNK, sizeof *lens);
    size_t *slots = lh_calloc(EMBED_CHUNK, sizeof *slots);
    for (size_t at = 0; rc == 0 && at < r->n; at += EMBED_CHUNK) {
        size_t end = at + EMBED_CHUNK < r->n ? at + EMBED_CHUNK : r->n, m = 0;
        for (size_t p = at; p < end; p++) {
            uint8_t key[32];
            const char *t = r->texts.data + r->text_off[p];
            lh_sha256(t, r->text_len[p], key);
            const float *old = u.n ? reuse_find(&u, key) : NULL;
            if (old) {
                memcpy(r->vectors + p * r->dim, old, r->dim * sizeof *old);
                (*reused)++;
                continue;
            }
            texts[m] = t;
            lens[m] = r->text_len[p];
            slots[m++] = p;
        }
        if (m > 0) {
            float *got = NULL;
            uint32_t dim = 0;
            if ((rc = lh_embedder_embed(e, texts, lens, m, &got, &dim, NULL, err)) != 0)
                break;
            if (r->dim == 0) {
                r->dim = dim;
                r->vectors = lh_try_malloc((r->n ? r->n : 1) * (size_t)dim * sizeof(float));
                if (!r->vectors) {
                    free(got);
                    rc = oom(err);
                    break;
                }
            } else if (dim != r->dim) {
                free(got);
                rc = lh_err_set(err, LH_EIO, 502, "provider_bad_response",
                                "model %s now returns %u dimensions, not %u as the index holds",
                                lh_embedder_model(e), dim, r->dim);
                lh_err_hint(err, "build a new index for the changed model");
                break;
            }
            for (size_t i = 0; i < m; i++)
                memcpy(r->vectors + slots[i] * dim, got + i * dim, dim * sizeof(float));
            *embedded += (int64_t)m;
            free(got);
        }
        if (job) {
            lh_job_progress(job, (int64_t)end, (int64_t)r->n, "chunks embedded");
            if (lh_job_cancelled(job))
                rc = lh_err_set(err, LH_ECANCELED, 409, "cancelled", "the build was cancelled");
        }
    }
    free(texts);
    free(lens);
    free(slots);
    reuse_free(&u);
    lh_embedder_free(e);
    return rc;
}

/* Move r's positions and documents into g and index them. */
static int
gen_take_rows(lh_vgen *g, rows *r, lh_err *err)
{
    g->n = r->n;
    g->doc_of = r->doc_of;
    g->chunk_of = r->chunk_of;
    g->n_docs = r->n_docs;
    g->doc_ids = r->doc_ids;
    r->doc_of = NULL;
    r->chunk_of = NULL;
    r->doc_ids = NULL;
    r->n_docs = 0;
    if (r->keep_texts && r->texts.len <= r->text_budget && r->text_off) {
        g->texts = r->texts.data ? r->texts.data : lh_strdup("");
        g->text_off = r->text_off;
        g->text_len = r->text_len;
        lh_buf_init(&r->texts);
        r->text_off = NULL;
        r->text_len = NULL;
    }
    return gen_index_docs(g, err);
}

void
lh_vectors__discard(lh_vectors *v, const char *emb_key, const char *hnsw_key)
{
    lh_err ignored;
    if (emb_key)
        lh_store_delete(v->store, emb_key, &ignored);
    if (hnsw_key)
        lh_store_delete(v->store, hnsw_key, &ignored);
}

char *
lh_vectors__work_file(lh_vectors *v, const char *suffix)
{
    char hex[17];
    lh_random_hex(hex, 8);
    return lh_sprintf("%s/vec-%s%s", v->deps.work_dir, hex, suffix);
}

/* Write r (with its vectors) as the embeddings Parquet file at path. */
static int
write_embeddings(lh_vectors *v, const rows *r, const char *path, lh_err *err)
{
    char *cols = lh_sprintf("position INTEGER, doc_id VARCHAR, chunk_id INTEGER, chunk_text "
                            "VARCHAR, content_hash VARCHAR, vector FLOAT[%u]", r->dim);
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

json_t *
lh_vgen__summary(const lh_vgen *g)
{
    json_t *j = json_pack("{s:I, s:O?, s:I, s:I}", "generation", (json_int_t)g->generation,
                          "created_at", json_object_get(g->desc, "created_at"), "vectors",
                          (json_int_t)g->n, "documents", (json_int_t)g->n_docs);
    return j;
}

size_t
lh_vgen__memory(const lh_vgen *g)
{
    size_t bytes = lh_hnsw_memory(g->hnsw) + g->n * (sizeof *g->doc_of + sizeof *g->chunk_of) +
                   g->n_docs * (sizeof *g->doc_first + sizeof *g->doc_count + sizeof(char *)) +
                   g->table_size * sizeof *g->table;
    for (size_t d = 0; d < g->n_docs; d++)
        bytes += strlen(g->doc_ids[d]) + 1;
    if (g->texts)
        bytes += g->n * (sizeof *g->text_off + sizeof *g->text_len) + g->text_off[g->n - 1] +
                 g->text_len[g->n - 1];
    return bytes;
}

int
lh_vbuild_run(lh_vbuild *b, lh_job *job, json_t **out, lh_err *err)
{
    if (b->promote)
        return lh_vectors__promote_run(b, job, out, err);
    lh_vectors *v = b->v;
    int64_t started = lh_mono_us();
    rows r = {0};
    lh_buf_init(&r.texts);
    r.chunk_size = (size_t)spec_int(b->spec, "chunk", "size");
    r.chunk_overlap = (size_t)spec_int(b->spec, "chunk", "overlap");
    r.job = job;
    r.text_budget = (size_t)lh_config_int(v->deps.config, "vector.texts_in_memory_bytes");
    lh_vgen *prev = NULL, *g = NULL;
    lh_hnsw *h = NULL;
    json_t *manifest = NULL, *desc = NULL;
    char *emb_tmp = lh_vectors__work_file(v, ".parquet"), *hnsw_tmp = lh_vectors__work_file(v, ".bin");
    char *emb_key = NULL, *hnsw_key = NULL, *desc_key = NULL;
    bool uploaded = false;
    int64_t embedded = 0, reused = 0, generation;
    int rc = 0;

    pthread_mutex_lock(&v->lock);
    if ((prev = b->x->live) != NULL)
        atomic_fetch_add(&prev->refs, 1);
    generation = b->x->last_generation + 1;
    pthread_mutex_unlock(&v->lock);

    if ((rc = lh_catalog_get(v->deps.catalog, b->dataset, &manifest, err)) != 0)
        goto out;
    if (strcmp(spec_str(manifest, "state") ? spec_str(manifest, "state") : "", "live") != 0) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found", "dataset '%s' was deleted",
                        b->dataset);
        goto out;
    }
    if ((rc = read_dataset(v, b->dataset, b->spec, &r, err)) != 0)
        goto out;
    if (r.n == 0) {
        rc = lh_err_set(err, LH_EINVAL, 400, "nothing_to_index",
                        "dataset '%s' has no rows with a %s to index", b->dataset,
                        r.by_vector ? "vector" : "text");
        goto out;
    }
    if (!r.by_vector && (rc = embed_chunks(b, &r, prev, job, &embedded, &reused, err)) != 0)
        goto out;
    r.keep_texts = !r.by_vector && r.text_budget > 0;
    lh_metric metric = (lh_metric)lh_metric_parse(spec_str(b->spec, "metric"));
    lh_hnsw_params params = {.m = (uint32_t)spec_int(b->spec, "hnsw", "m"),
                             .ef_construction = (uint32_t)spec_int(b->spec, "hnsw", "ef_construction"),
                             .ef_search = (uint32_t)spec_int(b->spec, "hnsw", "ef_search"),
                             .seed = 42};
    if (job)
        lh_job_progress(job, 0, (int64_t)r.n, "vectors linked");
    int64_t graph_started = lh_mono_us();
    if ((rc = lh_hnsw_build(r.vectors, r.n, r.dim, metric, &params,
                            (int)lh_config_int(v->deps.config, "vector.build_threads"), &h, err)) != 0)
        goto out;
    double graph_s = (double)(lh_mono_us() - graph_started) / 1e6;
    if (job)
        lh_job_progress(job, (int64_t)r.n, (int64_t)r.n, "vectors linked");
    if ((rc = write_embeddings(v, &r, emb_tmp, err)) != 0 || (rc = lh_hnsw_save(h, hnsw_tmp, err)) != 0)
        goto out;
    emb_key = lh_layout_gen_key(b->index, generation, "embeddings.parquet");
    hnsw_key = lh_layout_gen_key(b->index, generation, "hnsw.bin");
    desc_key = lh_layout_gen_key(b->index, generation, "index.json");
    int64_t emb_bytes = 0, hnsw_bytes = 0;
    uploaded = true;
    if ((rc = lh_vectors__upload(v, emb_tmp, emb_key, 0, &emb_bytes, err)) != 0 ||
        (rc = lh_vectors__upload(v, hnsw_tmp, hnsw_key, 0, &hnsw_bytes, err)) != 0)
        goto out;
    char created_at[LH_TIME_MAX];
    lh_time_format(lh_now_us(), created_at);
    desc = json_deep_copy(b->spec);
    json_t *extra = json_pack(
        "{s:i, s:I, s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:{s:s, s:I, s:s, s:I}}",
        "format", 1, "generation", (json_int_t)generation, "dim", (int)r.dim, "created_at", created_at, "created_by", b->actor, "dataset_version",
        (json_int_t)json_integer_value(json_object_get(manifest, "version")), "vectors",
        (json_int_t)r.n, "documents", (json_int_t)r.n_docs, "skipped_rows", (json_int_t)r.skipped,
        "embedded", (json_int_t)embedded, "reused", (json_int_t)reused, "graph_seconds", graph_s,
        "build_seconds", (double)(lh_mono_us() - started) / 1e6, "files", "embeddings", emb_key,
        "embeddings_bytes", (json_int_t)emb_bytes, "hnsw", hnsw_key, "hnsw_bytes",
        (json_int_t)hnsw_bytes);
    json_object_update(desc, extra);
    json_decref(extra);
    if (!r.by_vector) {
        lh_embedder *e = NULL;
        if (lh_embedder_open(v->deps.config, spec_str(b->spec, "model"), &e, NULL) == 0)
            json_object_set_new(desc, "model_version", json_string(lh_embedder_version(e)));
        lh_embedder_free(e);
    }

    /* The generation is made whole before index.json commits it: once that exists a
     * restart loads it, so nothing may fail after it (the build would report an error for
     * an index that is there). */
    g = lh_calloc(1, sizeof *g);
    atomic_init(&g->refs, 1);
    g->owner = v;
    g->generation = generation;
    g->desc = desc;
    desc = NULL;
    g->hnsw = h;
    h = NULL;
    if ((rc = gen_take_rows(g, &r, err)) != 0)
        goto out;
    if ((rc = lh_cache_local_path(v->deps.cache, v->store, emb_key, true, &g->emb_path, err)) != 0)
        goto out;
    g->emb_pinned = true;
    char *text = json_dumps(g->desc, JSON_INDENT(2) | JSON_SORT_KEYS);
    rc = lh_store_put_buffer(v->store, desc_key, text, strlen(text), LH_PUT_CREATE_ONLY, err);
    free(text);
    if (rc == LH_EEXIST) {
        lh_err_set(err, LH_EEXIST, 409, "conflict",
                   "generation %lld of index '%s' was committed by someone else",
                   (long long)generation, b->index);
        goto out;
    }
    if (rc != 0)
        goto out;
    uploaded = false; /* committed: the files are the generation's now */
    b->done = true;
    *out = lh_vgen__summary(g);
    json_object_set_new(*out, "index", json_string(b->index));
    json_object_set(*out, "embedded", json_object_get(g->desc, "embedded"));
    json_object_set(*out, "reused", json_object_get(g->desc, "reused"));
    json_object_set(*out, "skipped_rows", json_object_get(g->desc, "skipped_rows"));
    json_object_set(*out, "build_seconds", json_object_get(g->desc, "build_seconds"));
    lh_vectors__publish(v, b->x, g, b->created ? "build" : "refresh", b->actor);
    g = NULL;
    lh_log(LH_LOG_INFO, NULL, NULL, "vector index %s: generation %lld built (%zu vectors)",
           b->index, (long long)generation, r.n);
out:
    if (uploaded) /* not committed: remove what was written */
        lh_vectors__discard(v, emb_key, hnsw_key);
    unlink(emb_tmp);
    unlink(hnsw_tmp);
    free(emb_tmp);
    free(hnsw_tmp);
    free(emb_key);
    free(hnsw_key);
    free(desc_key);
    lh_vgen__free(g);
    lh_hnsw_free(h);
    json_decref(desc);
    json_decref(manifest);
    lh_vgen__release(prev);
    rows_free(&r);
    return rc;
}

/* ---- loading at start -------------------------------------------------------------------- */

static int
on_position_batch(void *ctx, const lh_batch *b)
{
    rows *r = ctx;
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
            return oom(r->err);
        if (start_doc(r, id, len) != 0 || add_position(r, at, text_len) != 0)
            return oom(r->err);
        if (r->chunk_of[r->n - 1] != chunk)
            return lh_err_set(r->err, LH_EINVAL, 422, "index_corrupt",
                              "the embeddings file's chunks of a document are not 0, 1, ...");
    }
    return 0;
}

static int
on_vectors_batch(void *ctx, const lh_batch *b)
{
    rows *r = ctx;
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

/* The graph again from the embeddings file, when the sidecar is missing or corrupt; the
 * new sidecar replaces the bad one (it is derived data, not history). */
static int
rebuild_graph(lh_vectors *v, lh_vgen *g, lh_err *err)
{
    rows r = {0};
    lh_buf_init(&r.texts);
    r.err = err;
    r.dim = (uint32_t)json_integer_value(json_object_get(g->desc, "dim"));
    r.vec_cap = g->n;
    r.vectors = lh_try_malloc((g->n ? g->n : 1) * (size_t)(r.dim ? r.dim : 1) * sizeof(float));
    if (!r.vectors || r.dim == 0) {
        rows_free(&r);
        return r.dim ? oom(err) : lh_err_set(err, LH_EINVAL, 422, "index_corrupt", "no dimension");
    }
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT CAST(vector AS FLOAT[]) FROM read_parquet(");
    lh_sql_quote(&sql, g->emb_path);
    lh_buf_puts(&sql, ") ORDER BY position");
    lh_scan_opts opts = {.sql = sql.data};
    int rc = lh_engine_scan(v->deps.engine, &opts, on_vectors_batch, &r, err);
    lh_buf_free(&sql);
    lh_hnsw_params params = {.m = (uint32_t)spec_int(g->desc, "hnsw", "m"),
                             .ef_construction = (uint32_t)spec_int(g->desc, "hnsw", "ef_construction"),
                             .ef_search = (uint32_t)spec_int(g->desc, "hnsw", "ef_search"),
                             .seed = 42};
    int metric = lh_metric_parse(spec_str(g->desc, "metric") ? spec_str(g->desc, "metric") : "");
    if (rc == 0 && (r.n != g->n || metric < 0))
        rc = lh_err_set(err, LH_EINVAL, 422, "index_corrupt", "the embeddings file is incomplete");
    if (rc == 0)
        rc = lh_hnsw_build(r.vectors, r.n, r.dim, (lh_metric)metric, &params,
                           (int)lh_config_int(v->deps.config, "vector.build_threads"), &g->hnsw, err);
    rows_free(&r);
    if (rc != 0)
        return rc;
    char *tmp = lh_vectors__work_file(v, ".bin");
    char *key = lh_layout_gen_key(json_string_value(json_object_get(g->desc, "name")), g->generation, "hnsw.bin");
    lh_err ignored;
    if (lh_hnsw_save(g->hnsw, tmp, &ignored) == 0 && lh_vectors__upload(v, tmp, key, 0, NULL, &ignored) != 0)
        lh_log_err(LH_LOG_WARN, NULL, &ignored);
    unlink(tmp);
    free(tmp);
    free(key);
    return 0;
}

int
lh_vectors__load_generation(lh_vectors *v, const char *name, int64_t generation, lh_vgen **out, lh_err *err)
{
    char *desc_key = lh_layout_gen_key(name, generation, "index.json");
    char *emb_key = lh_layout_gen_key(name, generation, "embeddings.parquet");
    char *hnsw_key = lh_layout_gen_key(name, generation, "hnsw.bin");
    lh_buf text;
    lh_buf_init(&text);
    rows r = {0};
    lh_buf_init(&r.texts);
    r.err = err;
    r.text_budget = (size_t)lh_config_int(v->deps.config, "vector.texts_in_memory_bytes");
    r.keep_texts = r.text_budget > 0;
    lh_vgen *g = lh_calloc(1, sizeof *g);
    atomic_init(&g->refs, 1);
    g->owner = v;
    g->generation = generation;
    int rc = lh_store_get_buffer(v->store, desc_key, DESC_MAX_BYTES, &text, NULL, err);
    if (rc == 0 && ((g->desc = json_loadb(text.data, text.len, 0, NULL)) == NULL ||
                    !json_is_string(json_object_get(g->desc, "dataset")) ||
                    !json_is_string(json_object_get(g->desc, "id_column"))))
        rc = lh_err_set(err, LH_EINVAL, 422, "index_corrupt", "index.json is not a descriptor");
    if (rc == 0 &&
        (rc = lh_cache_local_path(v->deps.cache, v->store, emb_key, true, &g->emb_path, err)) == 0)
        g->emb_pinned = true;
    if (rc == 0) {
        lh_buf sql;
        lh_buf_init(&sql);
        lh_buf_puts(&sql, "SELECT position, doc_id, chunk_id, chunk_text FROM read_parquet(");
        lh_sql_quote(&sql, g->emb_path);
        lh_buf_puts(&sql, ") ORDER BY position");
        lh_scan_opts opts = {.sql = sql.data};
        rc = lh_engine_scan(v->deps.engine, &opts, on_position_batch, &r, err);
        lh_buf_free(&sql);
    }
    if (rc == 0)
        rc = gen_take_rows(g, &r, err);
    if (rc == 0) {
        lh_err herr;
        lh_err_clear(&herr);
        int hrc = lh_cache_local_path(v->deps.cache, v->store, hnsw_key, true, &g->hnsw_path, &herr);
        if (hrc == 0)
            hrc = lh_hnsw_load(g->hnsw_path, &g->hnsw, &herr);
        if (hrc == 0 && (lh_hnsw_count(g->hnsw) != g->n ||
                         lh_hnsw_dim(g->hnsw) !=
                             (uint32_t)json_integer_value(json_object_get(g->desc, "dim")))) {
            hrc = lh_err_set(&herr, LH_EINVAL, 422, "index_corrupt",
                             "the sidecar does not match the embeddings file");
        }
        if (hrc != 0) {
            json_t *f = json_pack("{s:s, s:I, s:s, s:s}", "index", name, "generation",
                                  (json_int_t)generation, "reason", herr.message, "detail",
                                  herr.detail);
            lh_log(LH_LOG_WARN, NULL, f, "vector index %s: rebuilding the graph from the embeddings",
                   name);
            json_decref(f);
            lh_hnsw_free(g->hnsw);
            g->hnsw = NULL;
            if (g->hnsw_path) {
                lh_cache_unpin(v->deps.cache, g->hnsw_path);
                free(g->hnsw_path);
                g->hnsw_path = NULL;
            }
            rc = rebuild_graph(v, g, err);
        }
    }
    lh_buf_free(&text);
    rows_free(&r);
    free(desc_key);
    free(emb_key);
    free(hnsw_key);
    if (rc != 0) {
        lh_vgen__free(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* What the listing of _vectors/ found for one index. */
typedef struct found {
    char name[LH_NAME_MAX];
    int64_t committed; /* newest generation with index.json, or 0 */
    int64_t highest;   /* newest generation seen at all */
    struct found *next;
} found;

static int
on_vector_key(void *ctx, const lh_list_entry *e)
{
    found **list = ctx;
    char name[LH_NAME_MAX];
    long long generation = 0;
    int used = 0;
    int matched = sscanf(e->key, LH_LAYOUT_VECTORS "%63[a-z0-9_]/gen-%lld/%n", name, &generation,
                         &used);
    if (matched < 1)
        return 0;
    if (matched != 2 || used == 0 || generation <= 0)
        generation = 0; /* another file of the index (its live log) */
    found *f = *list;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (!f) {
        f = lh_calloc(1, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", name);
        f->next = *list;
        *list = f;
    }
    if (generation > f->highest)
        f->highest = generation;
    if (generation > 0 && strcmp(e->key + used, "index.json") == 0 && generation > f->committed)
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
    const char *at = strstr(e->key, "/gen-");
    long long generation = 0;
    if (g->above == 0 || (at && sscanf(at, "/gen-%lld/", &generation) == 1 && generation > g->above))
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
    if (lh_store_each(v->store, prefix, on_garbage_key, &g, &err) == 0) {
        size_t i;
        json_t *k;
        json_array_foreach(g.keys, i, k)
        {
            if (lh_store_delete(v->store, json_string_value(k), &err) != 0 && err.rc != LH_ENOTFOUND)
                lh_log_err(LH_LOG_WARN, NULL, &err);
        }
        if (json_array_size(g.keys) > 0) {
            json_t *fields = json_pack("{s:s, s:I}", "index", f->name, "files",
                                       (json_int_t)json_array_size(g.keys));
            lh_log(LH_LOG_INFO, NULL, fields, "vector index %s: removed files of uncommitted "
                   "generations", f->name);
            json_decref(fields);
        }
    }
    free(prefix);
    json_decref(g.keys);
}

int
lh_vectors_open(const lh_vectors_deps *deps, lh_vectors **out, lh_err *err)
{
    lh_vectors *v = lh_calloc(1, sizeof *v);
    v->deps = *deps;
    v->store = lh_buckets_primary(deps->buckets);
    pthread_mutex_init(&v->lock, NULL);
    lh_embed_cache_configure(lh_config_int(deps->config, "vector.embed_cache_bytes"));
    lh_vectors__trials_open(v, NULL);
    found *list = NULL;
    int64_t started = lh_mono_us();
    int rc = lh_store_each(v->store, LH_LAYOUT_VECTORS, on_vector_key, &list, err);
    size_t loaded = 0;
    while (list) {
        found *f = list;
        list = f->next;
        lh_vgen *g = NULL;
        lh_err lerr;
        lh_err_clear(&lerr);
        int64_t live = f->committed;
        lh_vidx probe = {0};
        if (rc == 0 && f->committed > 0) {
            snprintf(probe.name, sizeof probe.name, "%s", f->name);
            lh_vectors__live_at_start(v, &probe, f->committed, &live);
        }
        if (rc == 0 && f->committed > 0 &&
            lh_vectors__load_generation(v, f->name, live, &g, &lerr) == 0) {
            lh_vidx *x = lh_calloc(1, sizeof *x);
            snprintf(x->name, sizeof x->name, "%s", f->name);
            snprintf(x->dataset, sizeof x->dataset, "%s", spec_str(g->desc, "dataset"));
            x->spec = json_object();
            static const char *const keep[] = {"name", "dataset", "id_column", "text_column",
                                               "vector_column", "model", "metric", "hnsw",
                                               "chunk", NULL};
            for (size_t i = 0; keep[i]; i++)
                if (json_object_get(g->desc, keep[i]))
                    json_object_set(x->spec, keep[i], json_object_get(g->desc, keep[i]));
            x->live = g;
            x->last_generation = f->highest;
            x->previous_live = probe.previous_live;
            x->live_seq = probe.live_seq;
            x->next = v->list;
            v->list = x;
            loaded++;
        } else if (rc == 0 && f->committed > 0) {
            json_t *fields = json_pack("{s:s, s:I}", "index", f->name, "generation",
                                       (json_int_t)f->committed);
            lh_log(LH_LOG_ERROR, NULL, fields, "vector index %s could not be loaded: %s%s%s",
                   f->name, lerr.message, lerr.detail[0] ? ": " : "", lerr.detail);
            json_decref(fields);
        }
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
    lh_vectors__trials_close(v);
    pthread_mutex_destroy(&v->lock);
    free(v);
}
