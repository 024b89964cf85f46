/*
 * vcommon.c — what the index files share: generations in memory (reference counts, the
 * document table), the registry's lookups and build reservations, every write of an
 * index file to the bucket, and the HNSW settings.
 *
 * Every other file of indexes (vbuild, vload, vlive, vgen, vlist, vsearch, evals, trials)
 * sits on this one; it calls none of them. Writes go through the bucket layer
 * (lh_buckets_put_file, lh_buckets_delete_object, ...), so a failed upload or delete is
 * in /storage/errors like any other bucket failure; reads use the bucket's store
 * directly, as the cache does. Every object of an index lives in its bucket (the bucket
 * of the dataset it indexes), never in another one.
 *
 * Locking: v->lock guards the list and each entry's live/building/last_generation. A
 * build runs without the lock; `building` keeps a second build of the same index out.
 */
#include "vector/vector_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- generations in memory ------------------------------------------------------------ */
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
int
lh_vgen__index_docs(lh_vgen *g, lh_err *err)
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
    lh_bm25__release(g->bm25);
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

lh_vgen *
lh_vgen__new(lh_vectors *v, const char *bucket, int64_t generation)
{
    static atomic_uint_fast64_t serials;
    lh_vgen *g = lh_calloc(1, sizeof *g);
    atomic_init(&g->refs, 1);
    g->serial = (uint64_t)atomic_fetch_add(&serials, 1) + 1;
    g->owner = v;
    snprintf(g->bucket, sizeof g->bucket, "%s", bucket);
    g->generation = generation;
    return g;
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
    return bytes + lh_bm25__memory(g->bm25); /* a promotion's shared text index counts twice */
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
lh_vectors_index_not_found(lh_err *err, const char *name)
{
    return lh_vectors__no_index(err, name);
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

bool
lh_vectors_search_is_quick(lh_vectors *v, const char *name, bool text_query, bool exact, int64_t k,
                           int64_t ef)
{
    if (exact || k > 100 || ef > 1000)
        return false; /* scoring every vector, or a wide beam: CPU worth a thread */
    pthread_mutex_lock(&v->lock);
    lh_vidx *x = lh_vectors__find_locked(v, name);
    const char *model = x ? json_string_value(json_object_get(x->spec, "model")) : NULL;
    /* a remote model waits on its provider; texts not kept in memory are read from the
     * generation's embeddings file by a query */
    bool quick = x == NULL || x->live == NULL ||
                 ((!text_query || model == NULL || strcmp(model, "builtin") == 0) &&
                  (model == NULL || x->live->texts != NULL));
    pthread_mutex_unlock(&v->lock);
    return quick;
}

int
lh_vectors__reserve(lh_vectors *v, const char *name, const char *actor, lh_vbuild **out,
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
    snprintf(b->bucket, sizeof b->bucket, "%s", x->bucket);
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

/* ---- files, and every write to the bucket ---------------------------------------------- */

lh_store *
lh_vectors__store(lh_vectors *v, const char *bucket)
{
    lh_store *s = lh_buckets_get(v->deps.buckets, bucket, NULL);
    assert(s != NULL); /* bucket names come from the registry, which never forgets one */
    return s;
}

size_t
lh_vectors__buckets(lh_vectors *v, const char **names, size_t max)
{
    const char *primary = lh_buckets_primary_name(v->deps.buckets);
    const char *rescue = lh_buckets_rescue_name(v->deps.buckets);
    size_t n = 0;
    if (max > 0)
        names[n++] = primary;
    size_t count = lh_buckets_count(v->deps.buckets);
    for (size_t i = 0; i < count && n < max; i++) {
        const char *name = lh_buckets_name_at(v->deps.buckets, i);
        if (name && strcmp(name, primary) != 0 && (!rescue || strcmp(name, rescue) != 0))
            names[n++] = name;
    }
    return n;
}

int
lh_vectors__dataset_bucket(lh_vectors *v, const char *dataset, char *out, lh_err *err)
{
    json_t *manifest = NULL;
    int rc = lh_catalog_get(v->deps.catalog, dataset, &manifest, err);
    if (rc != 0)
        return rc;
    const char *bucket = lh_vectors__spec_str(manifest, "bucket");
    snprintf(out, LH_NAME_MAX, "%s", bucket ? bucket : lh_buckets_primary_name(v->deps.buckets));
    json_decref(manifest);
    return 0;
}

char *
lh_vectors__work_file(lh_vectors *v, const char *suffix)
{
    char hex[17];
    lh_random_hex(hex, 8);
    return lh_sprintf("%s/vec-%s%s", v->deps.work_dir, hex, suffix);
}

int
lh_vectors__upload(lh_vectors *v, const char *bucket, const char *path, const char *key, int flags,
                   int64_t *bytes, lh_err *err)
{
    /* may_link: the work file is removed right after, never changed */
    return lh_buckets_put_file(v->deps.buckets, bucket, key, path, true, flags, bytes, NULL, err);
}

int
lh_vectors__put_json(lh_vectors *v, const char *bucket, const char *key, const json_t *doc,
                     size_t dump_flags, int flags, lh_err *err)
{
    char *text = json_dumps(doc, dump_flags);
    lh_source src = {.data = text, .fd = -1, .len = (int64_t)strlen(text)};
    int rc = lh_buckets_put_object(v->deps.buckets, bucket, key, &src, flags, NULL, NULL, err);
    free(text);
    return rc;
}

int
lh_vectors__copy(lh_vectors *v, const char *bucket, const char *src_key, const char *dst_key,
                 lh_err *err)
{
    /* the bucket layer has no copy of its own: journal the failure as it would */
    int rc = lh_store_copy(lh_vectors__store(v, bucket), src_key, dst_key, err);
    if (rc != 0)
        lh_buckets_record_error(v->deps.buckets, bucket, "copy", dst_key, err, NULL);
    return rc;
}

int
lh_vectors__delete(lh_vectors *v, const char *bucket, const char *key, lh_err *err)
{
    return lh_buckets_delete_object(v->deps.buckets, bucket, key, NULL, err);
}

void
lh_vectors__discard(lh_vectors *v, const char *bucket, const char *const *keys, size_t n_keys)
{
    lh_err ignored; /* journaled by the bucket layer; a restart removes what is left */
    for (size_t i = 0; i < n_keys; i++)
        if (keys[i])
            lh_vectors__delete(v, bucket, keys[i], &ignored);
}

int
lh_vectors__commit_desc(lh_vectors *v, const char *bucket, const char *index, int64_t generation,
                        const json_t *desc, lh_err *err)
{
    char *key = lh_layout_gen_key(index, generation, "index.json");
    int rc = lh_vectors__put_json(v, bucket, key, desc, JSON_INDENT(2) | JSON_SORT_KEYS,
                                  LH_PUT_CREATE_ONLY, err);
    free(key);
    if (rc == LH_EEXIST)
        lh_err_set(err, LH_EEXIST, 409, "conflict",
                   "generation %lld of index '%s' was committed by someone else",
                   (long long)generation, index);
    return rc;
}

/* ---- HNSW settings --------------------------------------------------------------------- */

static const struct {
    const char *name;
    int64_t min, max, def;
} HNSW_SETTINGS[] = {
    {"m", 2, 128, 16},
    {"ef_construction", 1, 4096, 80},
    {"ef_search", 1, 4096, 30},
};
#define N_HNSW_SETTINGS (sizeof HNSW_SETTINGS / sizeof HNSW_SETTINGS[0])

int
lh_vectors__hnsw_settings(const json_t *obj, const char *where, bool with_defaults, json_t **out,
                          lh_err *err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        size_t i = 0;
        while (i < N_HNSW_SETTINGS && strcmp(key, HNSW_SETTINGS[i].name) != 0)
            i++;
        if (i == N_HNSW_SETTINGS && strcmp(key, "quantization") != 0)
            return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                              "unknown field '%s.%s' (m, ef_construction, ef_search, quantization)",
                              where, key);
    }
    const json_t *quant = json_object_get(obj, "quantization");
    if (quant && (!json_is_string(quant) || lh_quant_parse(json_string_value(quant)) < 0))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'%s.quantization' must be \"none\" or \"int8\"", where);
    json_t *settings = json_object();
    for (size_t i = 0; i < N_HNSW_SETTINGS; i++) {
        const json_t *j = json_object_get(obj, HNSW_SETTINGS[i].name);
        if (j && (!json_is_integer(j) || json_integer_value(j) < HNSW_SETTINGS[i].min ||
                  json_integer_value(j) > HNSW_SETTINGS[i].max)) {
            json_decref(settings);
            return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                              "'%s.%s' must be an integer from %lld to %lld", where,
                              HNSW_SETTINGS[i].name, (long long)HNSW_SETTINGS[i].min,
                              (long long)HNSW_SETTINGS[i].max);
        }
        if (j || with_defaults)
            json_object_set_new(settings, HNSW_SETTINGS[i].name,
                                json_integer(j ? json_integer_value(j) : HNSW_SETTINGS[i].def));
    }
    if (quant || with_defaults)
        json_object_set_new(settings, "quantization",
                            json_string(quant ? json_string_value(quant) : "none"));
    *out = settings;
    return 0;
}

lh_hnsw_params
lh_vectors__hnsw_params(const json_t *settings)
{
    lh_hnsw_params params = {
        .m = (uint32_t)json_integer_value(json_object_get(settings, "m")),
        .ef_construction =
            (uint32_t)json_integer_value(json_object_get(settings, "ef_construction")),
        .ef_search = (uint32_t)json_integer_value(json_object_get(settings, "ef_search")),
        .seed = 42};
    const char *quant = json_string_value(json_object_get(settings, "quantization"));
    if (quant && lh_quant_parse(quant) > 0) /* absent: settings from before quantization */
        params.quant = (lh_quant)lh_quant_parse(quant);
    return params;
}
