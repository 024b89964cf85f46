/*
 * embedder.c — embedding models behind one interface, the embedding cache, and text
 * chunking.
 *
 * Models: "builtin" (embed_builtin.c, local), "ollama:<model>" and "openai:<model>"
 * (embed_remote.c), configured by the [vector] section. The cache is process-wide: a hash
 * table from SHA-256(model "\\0" version "\\0" text) to the vector, bounded by bytes and
 * evicting the least recently used entry. One mutex guards it; embedding itself runs
 * outside the lock, so two threads missing on the same text may both embed it (the
 * second insert is dropped).
 */
#include "vector/vector.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- the cache ------------------------------------------------------------------------ */

typedef struct centry {
    uint8_t key[32];
    uint32_t dim;
    struct centry *chain;         /* hash bucket */
    struct centry *newer, *older; /* LRU list */
    float v[];
} centry;

static struct {
    pthread_mutex_t lock;
    centry **buckets;
    size_t n_buckets, entries;
    int64_t bytes, max_bytes;
    uint64_t hits, misses, evictions;
    centry *newest, *oldest;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER, .max_bytes = 64 << 20};

void
lh_embed_cache_configure(int64_t max_bytes)
{
    pthread_mutex_lock(&cache.lock);
    cache.max_bytes = max_bytes > 0 ? max_bytes : 0;
    pthread_mutex_unlock(&cache.lock);
}

static size_t
bucket_of(const uint8_t key[32], size_t n_buckets)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)(h % n_buckets);
}

static void
lru_unlink(centry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        cache.newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        cache.oldest = e->newer;
    e->newer = e->older = NULL;
}

static void
lru_push(centry *e)
{
    e->older = cache.newest;
    e->newer = NULL;
    if (cache.newest)
        cache.newest->newer = e;
    cache.newest = e;
    if (!cache.oldest)
        cache.oldest = e;
}

static centry *
find_locked(const uint8_t key[32])
{
    if (cache.n_buckets == 0)
        return NULL;
    for (centry *e = cache.buckets[bucket_of(key, cache.n_buckets)]; e; e = e->chain)
        if (memcmp(e->key, key, 32) == 0)
            return e;
    return NULL;
}

static void
remove_locked(centry *e)
{
    centry **link = &cache.buckets[bucket_of(e->key, cache.n_buckets)];
    while (*link != e)
        link = &(*link)->chain;
    *link = e->chain;
    lru_unlink(e);
    cache.entries--;
    cache.bytes -= (int64_t)(sizeof *e + e->dim * sizeof(float));
    free(e);
}

static void
grow_locked(void)
{
    size_t n = cache.n_buckets ? cache.n_buckets * 2 : 1024;
    centry **b = calloc(n, sizeof *b);
    if (!b)
        return; /* keep the old table; chains just get longer */
    for (size_t i = 0; i < cache.n_buckets; i++)
        for (centry *e = cache.buckets[i], *next; e; e = next) {
            next = e->chain;
            size_t j = bucket_of(e->key, n);
            e->chain = b[j];
            b[j] = e;
        }
    free(cache.buckets);
    cache.buckets = b;
    cache.n_buckets = n;
}

/* Copy key's vector into out (room for dim floats): true on a hit. */
static bool
cache_get(const uint8_t key[32], uint32_t dim, float *out)
{
    pthread_mutex_lock(&cache.lock);
    centry *e = find_locked(key);
    bool hit = e && (dim == 0 || e->dim == dim);
    if (hit) {
        memcpy(out, e->v, e->dim * sizeof(float));
        lru_unlink(e);
        lru_push(e);
        cache.hits++;
    } else {
        cache.misses++;
    }
    pthread_mutex_unlock(&cache.lock);
    return hit;
}

static void
cache_put(const uint8_t key[32], const float *v, uint32_t dim)
{
    int64_t size = (int64_t)(sizeof(centry) + dim * sizeof(float));
    pthread_mutex_lock(&cache.lock);
    if (size > cache.max_bytes || find_locked(key)) {
        pthread_mutex_unlock(&cache.lock);
        return;
    }
    while (cache.bytes + size > cache.max_bytes && cache.oldest) {
        remove_locked(cache.oldest);
        cache.evictions++;
    }
    centry *e = malloc((size_t)size);
    if (e) {
        if (cache.entries >= cache.n_buckets)
            grow_locked();
        memcpy(e->key, key, 32);
        e->dim = dim;
        memcpy(e->v, v, dim * sizeof(float));
        size_t j = bucket_of(key, cache.n_buckets);
        e->chain = cache.buckets[j];
        cache.buckets[j] = e;
        lru_push(e);
        cache.entries++;
        cache.bytes += size;
    }
    pthread_mutex_unlock(&cache.lock);
}

json_t *
lh_embed_cache_stats(void)
{
    pthread_mutex_lock(&cache.lock);
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "entries", (json_int_t)cache.entries,
                          "bytes", (json_int_t)cache.bytes, "max_bytes",
                          (json_int_t)cache.max_bytes, "hits", (json_int_t)cache.hits, "misses",
                          (json_int_t)cache.misses, "evictions", (json_int_t)cache.evictions);
    pthread_mutex_unlock(&cache.lock);
    return j;
}

/* ---- models ----------------------------------------------------------------------------- */

struct lh_embedder {
    char *model; /* as named: "builtin", "ollama:x" */
    char *version;
    lh_embed_provider remote; /* kind == NULL: builtin */
    char *api_key;
    uint32_t dim; /* 0 until a remote model has answered */
    pthread_mutex_t lock;
};

int
lh_embedder_open(const lh_config *cfg, const char *model, lh_embedder **out, lh_err *err)
{
    bool openai = strncmp(model, "openai:", 7) == 0;
    bool remote = openai || strncmp(model, "ollama:", 7) == 0;
    if (strcmp(model, "builtin") != 0 && (!remote || model[7] == '\0')) {
        lh_err_set(err, LH_EINVAL, 400, "unknown_model",
                   "model '%s' is not available on this server", model);
        lh_err_hint(err, "models: builtin, ollama:<model> (e.g. ollama:nomic-embed-text), "
                         "openai:<model>");
        return LH_EINVAL;
    }
    lh_embedder *e = lh_calloc(1, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    e->model = lh_strdup(model);
    if (!remote) {
        e->version = lh_strdup(LH_EMBED_BUILTIN_VERSION);
        e->dim = LH_EMBED_BUILTIN_DIM;
        *out = e;
        return 0;
    }
    e->version = lh_strdup(model + 7);
    e->remote = (lh_embed_provider){
        .kind = openai ? "openai" : "ollama",
        .url = lh_config_str(cfg, openai ? "vector.openai_url" : "vector.ollama_url"),
        .model = e->version,
        .timeout_ms = (int)lh_config_int(cfg, "vector.embed_timeout_ms"),
        .batch = (size_t)lh_config_int(cfg, "vector.embed_batch"),
        .concurrency = (int)lh_config_int(cfg, "vector.embed_concurrency")};
    if (!e->remote.url || !*e->remote.url) {
        lh_err_set(err, LH_EINVAL, 400, "unknown_model", "no %s provider is configured",
                   e->remote.kind);
        lh_err_hint(err, "set [vector] %s_url", e->remote.kind);
        lh_embedder_free(e);
        return LH_EINVAL;
    }
    const char *ref = lh_config_str(cfg, "vector.openai_secret_ref");
    if (openai && ref && *ref) {
        lh_secrets *secrets = NULL;
        lh_err serr;
        if (lh_secrets_open(lh_config_str(cfg, "secrets.file"), &secrets, &serr) != 0 ||
            lh_secrets_get(secrets, ref, "api_key", &e->api_key, &serr) != 0) {
            lh_secrets_free(secrets);
            lh_err_set(err, LH_EINTERNAL, 500, "provider_misconfigured",
                       "the API key of the openai provider could not be read");
            lh_err_detail(err, "%s", serr.message);
            lh_embedder_free(e);
            return LH_EINTERNAL;
        }
        lh_secrets_free(secrets);
        e->remote.api_key = e->api_key;
    }
    *out = e;
    return 0;
}

void
lh_embedder_free(lh_embedder *e)
{
    if (e == NULL)
        return;
    free(e->model);
    free(e->version);
    lh_free_secret(e->api_key);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

const char *
lh_embedder_model(const lh_embedder *e)
{
    return e->model;
}

const char *
lh_embedder_version(const lh_embedder *e)
{
    return e->version;
}

static void
cache_key(const lh_embedder *e, const char *text, size_t len, uint8_t key[32])
{
    lh_buf b;
    lh_buf_init(&b);
    lh_buf_puts(&b, e->model);
    lh_buf_append(&b, "", 1);
    lh_buf_puts(&b, e->version);
    lh_buf_append(&b, "", 1);
    lh_buf_append(&b, text, len);
    lh_sha256(b.data, b.len, key);
    lh_buf_free(&b);
}

int
lh_embedder_embed(lh_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                  float **out, uint32_t *dim_out, size_t *cache_hits, lh_err *err)
{
    pthread_mutex_lock(&e->lock);
    uint32_t dim = e->dim;
    pthread_mutex_unlock(&e->lock);
    uint8_t(*keys)[32] = lh_try_malloc((n ? n : 1) * sizeof *keys);
    bool *have = lh_try_malloc((n ? n : 1) * sizeof *have);
    float *v = dim ? lh_try_malloc((n ? n : 1) * dim * sizeof *v) : NULL;
    size_t hits = 0;
    int rc = 0;
    if (!keys || !have || (dim && !v)) {
        rc = lh_err_set(err, LH_ENOMEM, 503, "out_of_memory",
                        "not enough memory to embed %zu texts", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        cache_key(e, texts[i], lens[i], keys[i]);
        have[i] = dim && cache_get(keys[i], dim, v + i * dim);
        hits += have[i];
    }
    if (e->remote.kind == NULL) {
        for (size_t i = 0; i < n; i++)
            if (!have[i]) {
                lh_embed_builtin(texts[i], lens[i], v + i * dim);
                cache_put(keys[i], v + i * dim, dim);
            }
    } else if (hits < n) {
        size_t n_miss = n - hits, m = 0;
        char **miss = lh_calloc(n_miss, sizeof *miss);
        for (size_t i = 0; i < n; i++)
            if (!have[i])
                miss[m++] = lh_strndup(texts[i], lens[i]);
        float *got = NULL;
        uint32_t got_dim = 0;
        rc = lh_embed_remote(&e->remote, (const char *const *)miss, n_miss, &got, &got_dim, err);
        for (size_t i = 0; i < n_miss; i++)
            free(miss[i]);
        free(miss);
        if (rc == 0 && dim && got_dim != dim) {
            rc = lh_err_set(err, LH_EIO, 502, "provider_bad_response",
                            "embedding provider %s returned %u dimensions, not %u as before",
                            e->model, got_dim, dim);
        } else if (rc == 0 && !dim) {
            dim = got_dim;
            v = lh_try_malloc((n ? n : 1) * dim * sizeof *v);
            if (!v)
                rc = lh_err_set(err, LH_ENOMEM, 503, "out_of_memory",
                                "not enough memory to embed %zu texts", n);
            pthread_mutex_lock(&e->lock);
            if (e->dim == 0)
                e->dim = dim;
            pthread_mutex_unlock(&e->lock);
        }
        for (size_t i = 0, j = 0; rc == 0 && i < n; i++)
            if (!have[i]) {
                memcpy(v + i * dim, got + j * dim, dim * sizeof *v);
                cache_put(keys[i], v + i * dim, dim);
                j++;
            }
        free(got);
    }
out:
    free(keys);
    free(have);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *dim_out = dim;
    if (cache_hits)
        *cache_hits = hits;
    return 0;
}

/* ---- chunking ----------------------------------------------------------------------------- */

static bool
is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Back end off a UTF-8 continuation byte, so a cut never splits a character. */
static size_t
utf8_floor(const char *text, size_t start, size_t end)
{
    while (end > start + 1 && ((unsigned char)text[end] & 0xC0) == 0x80)
        end--;
    return end;
}

void
lh_chunk_text(const char *text, size_t len, size_t size, size_t overlap,
              void (*fn)(void *ctx, size_t offset, size_t len), void *ctx)
{
    if (size == 0)
        size = 1000;
    if (overlap >= size)
        overlap = size / 2;
    size_t pos = 0;
    while (pos < len && is_space(text[pos]))
        pos++;
    while (pos < len) {
        size_t end = len;
        if (len - pos > size) {
            end = utf8_floor(text, pos, pos + size);
            /* prefer the last whitespace in the second half of the window */
            size_t cut = end;
            while (cut > pos + size / 2 && !is_space(text[cut - 1]))
                cut--;
            if (cut > pos + size / 2)
                end = cut;
        }
        size_t stop = end;
        while (stop > pos && is_space(text[stop - 1]))
            stop--;
        if (stop > pos)
            fn(ctx, pos, stop - pos);
        if (end >= len)
            break;
        /* the next chunk starts overlap bytes back, at a word start when one is near */
        size_t next = end > pos + overlap ? end - overlap : end;
        if (next <= pos)
            next = end;
        while (next < end && !is_space(text[next - 1]))
            next++;
        next = utf8_floor(text, pos, next);
        if (next <= pos)
            next = end;
        while (next < len && is_space(text[next]))
            next++;
        pos = next;
    }
}
