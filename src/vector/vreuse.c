/*
 * vreuse.c — the vectors of a build: every chunk of a text index is embedded, except
 * chunks whose text the previous generation also holds (same content hash, same model
 * version), which take its vector. The previous generation's (content hash, vector)
 * pairs are read from its embeddings file into an open-addressing table keyed by the
 * SHA-256; a failure to read them only means no reuse. Texts go to the embedder
 * EMBED_CHUNK at a time, the points where a build reports progress and notices it was
 * cancelled. Runs on the build's thread; shares nothing.
 */
#include "vector/vector_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMBED_CHUNK 256 /* texts per embedder call (progress and cancellation points) */

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
        if (lh_vrows__grow((void **)&u->keys, &u->key_cap, u->n, sizeof *u->keys) ||
            lh_vrows__grow((void **)&u->vectors, &u->vec_cap, u->n, (size_t)u->dim * sizeof(float)))
            return lh_vrows__oom(u->err);
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

/* One batch of texts the embedder gets: the chunks of [at, end) that no old vector
 * serves. */
typedef struct batch {
    const char *texts[EMBED_CHUNK];
    size_t lens[EMBED_CHUNK];
    size_t slots[EMBED_CHUNK];
    size_t m;
} batch;

/* Vectors for positions [at, end): reused ones copied, the rest gathered into bt. */
static void
take_reused(lh_vrows *r, const reuse *u, size_t at, size_t end, batch *bt, int64_t *reused)
{
    bt->m = 0;
    for (size_t p = at; p < end; p++) {
        uint8_t key[32];
        const char *t = r->texts.data + r->text_off[p];
        lh_sha256(t, r->text_len[p], key);
        const float *old = u->n ? reuse_find(u, key) : NULL;
        if (old) {
            memcpy(r->vectors + p * r->dim, old, r->dim * sizeof *old);
            (*reused)++;
            continue;
        }
        bt->texts[bt->m] = t;
        bt->lens[bt->m] = r->text_len[p];
        bt->slots[bt->m++] = p;
    }
}

/* Embed bt and put its vectors in place. The first answer fixes the dimension (and
 * sizes r->vectors) unless reuse fixed it already; a later one must keep it. */
static int
embed_batch(lh_embedder *e, lh_vrows *r, const batch *bt, int64_t *embedded, lh_err *err)
{
    float *got = NULL;
    uint32_t dim = 0;
    int rc = lh_embedder_embed(e, bt->texts, bt->lens, bt->m, &got, &dim, NULL, err);
    if (rc != 0)
        goto out;
    if (r->dim == 0) {
        r->dim = dim;
        r->vectors = lh_try_malloc((r->n ? r->n : 1) * (size_t)dim * sizeof(float));
        if (!r->vectors) {
            rc = lh_vrows__oom(err);
            goto out;
        }
    } else if (dim != r->dim) {
        rc = lh_err_set(err, LH_EIO, 502, "provider_bad_response",
                        "model %s now returns %u dimensions, not %u as the index holds",
                        lh_embedder_model(e), dim, r->dim);
        lh_err_hint(err, "build a new index for the changed model");
        goto out;
    }
    for (size_t i = 0; i < bt->m; i++)
        memcpy(r->vectors + bt->slots[i] * dim, got + i * dim, dim * sizeof(float));
    *embedded += (int64_t)bt->m;
out:
    free(got);
    return rc;
}

int
lh_vectors__embed_chunks(lh_vbuild *b, lh_vrows *r, const lh_vgen *prev, lh_job *job,
                         int64_t *embedded, int64_t *reused, lh_err *err)
{
    lh_embedder *e = NULL;
    reuse u = {0};
    batch *bt = NULL;
    int rc = lh_embedder_open(b->v->deps.config, lh_vectors__spec_str(b->spec, "model"), &e, err);
    if (rc != 0)
        goto out;
    const char *prev_version = prev ? lh_vectors__spec_str(prev->desc, "model_version") : NULL;
    if (prev && prev_version && strcmp(prev_version, lh_embedder_version(e)) == 0) {
        /* same model: the old vectors are good for unchanged text */
        r->dim = lh_hnsw_dim(prev->hnsw);
        r->vectors = lh_try_malloc((r->n ? r->n : 1) * (size_t)r->dim * sizeof(float));
        if (!r->vectors) {
            rc = lh_vrows__oom(err);
            goto out;
        }
        reuse_load(b->v, prev, r->dim, &u);
    }
    bt = lh_malloc(sizeof *bt);
    for (size_t at = 0; at < r->n; at += EMBED_CHUNK) {
        size_t end = at + EMBED_CHUNK < r->n ? at + EMBED_CHUNK : r->n;
        take_reused(r, &u, at, end, bt, reused);
        if (bt->m > 0 && (rc = embed_batch(e, r, bt, embedded, err)) != 0)
            goto out;
        if (job) {
            lh_job_progress(job, (int64_t)end, (int64_t)r->n, "chunks embedded");
            if (lh_job_cancelled(job)) {
                rc = lh_err_set(err, LH_ECANCELED, 409, "cancelled", "the build was cancelled");
                goto out;
            }
        }
    }
out:
    free(bt);
    reuse_free(&u);
    lh_embedder_free(e);
    return rc;
}
