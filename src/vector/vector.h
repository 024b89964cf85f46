/*
 * vector.h — vector search: our HNSW index (ADR-008), exact search, distances.
 *
 * An index holds n vectors of one dimension, addressed by their position 0..n-1 (the
 * caller maps positions to documents). Metrics: cosine (vectors are normalised as they
 * are added and queries as they are searched), L2 (squared), dot (inner product). Every
 * distance is "smaller is closer". The on-disk sidecar format is in src/vector/README.md.
 *
 * Thread safety: building is internally multi-threaded and must not overlap other calls
 * on the same index; once built, any number of threads may search it at once.
 */
#ifndef LH_VECTOR_H
#define LH_VECTOR_H

#include "core/core.h"

typedef enum { LH_METRIC_COSINE = 0, LH_METRIC_L2 = 1, LH_METRIC_DOT = 2 } lh_metric;
int lh_metric_parse(const char *s); /* -1 when unknown */
const char *lh_metric_name(lh_metric m);

/* The SIMD kernels chosen for this CPU: "avx512", "avx2" or "scalar". LAKEHOUSE_SIMD=
 * avx2|scalar (read once) forces a lesser one, for tests and comparisons. */
const char *lh_vec_simd_name(void);
/* Scale v to unit length (a zero vector stays zero). */
void lh_vec_normalise(float *v, size_t dim);

typedef struct lh_hit {
    uint32_t id;
    float distance;
} lh_hit;

/* Which positions a search may return (true: allowed). */
typedef bool (*lh_vec_filter_fn)(void *ctx, uint32_t id);

typedef struct lh_hnsw_params {
    uint32_t m;               /* links per node above level 0 (level 0: 2m); default 16 */
    uint32_t ef_construction; /* default 80 (the seed's choice) */
    uint32_t ef_search;       /* default 30 */
    uint64_t seed;            /* levels are drawn from (seed, position): reproducible */
} lh_hnsw_params;

typedef struct lh_hnsw lh_hnsw;

/* Build an index over vectors (n rows of dim floats, copied; normalised for cosine) with
 * `threads` threads (<= 0: one per core). Returns new (lh_hnsw_free). 400 for a zero
 * dimension or parameters out of range; 413/503 when the memory cannot be had. */
int lh_hnsw_build(const float *vectors, size_t n, uint32_t dim, lh_metric metric,
                  const lh_hnsw_params *params, int threads, lh_hnsw **out, lh_err *err);
void lh_hnsw_free(lh_hnsw *h); /* accepts NULL */

/* The k nearest (at most) to query, closest first, exploring ef candidates (0: the
 * index's ef_search; raised to k). With a filter, only allowed positions are returned
 * (others are still walked through), so fewer than k may come back when few match.
 * Returns how many hits were written to out (room for k). */
size_t lh_hnsw_search(const lh_hnsw *h, const float *query, size_t k, size_t ef,
                      lh_vec_filter_fn filter, void *ctx, lh_hit *out);

size_t lh_hnsw_count(const lh_hnsw *h);
uint32_t lh_hnsw_dim(const lh_hnsw *h);
lh_metric lh_hnsw_metric(const lh_hnsw *h);
lh_hnsw_params lh_hnsw_get_params(const lh_hnsw *h);
/* Bytes the index holds (vectors, graph, bookkeeping). */
size_t lh_hnsw_memory(const lh_hnsw *h);
/* Position i's stored vector (normalised for cosine); valid while h lives. */
const float *lh_hnsw_vector(const lh_hnsw *h, uint32_t i);

/* Write the sidecar (README.md) to path atomically (temp file, fsync, rename). */
int lh_hnsw_save(const lh_hnsw *h, const char *path, lh_err *err);
/* Map a sidecar read-only; checks magic, version, sizes and checksum: a file that fails
 * any of them is 422 index_corrupt (rebuild from the embeddings). Returns new. */
int lh_hnsw_load(const char *path, lh_hnsw **out, lh_err *err);

/* Exact top-k by brute force over n vectors (prepared as the index stores them: cosine
 * vectors normalised), SIMD, split over `threads` threads (<= 0: one per core). The
 * ground truth for evaluation and the fallback for selective filters. Returns hits. */
size_t lh_vec_exact(const float *vectors, size_t n, uint32_t dim, lh_metric metric,
                    const float *query, size_t k, lh_vec_filter_fn filter, void *ctx, int threads,
                    lh_hit *out);

/* ---- embeddings -------------------------------------------------------------------------- */

/* The built-in embedding (model "builtin", version "builtin-v1"): signed feature hashing
 * of words, word pairs and character trigrams, unit length. Deterministic, offline; see
 * embed_builtin.c for the exact recipe. out has room for LH_EMBED_BUILTIN_DIM floats. */
#define LH_EMBED_BUILTIN_DIM 384
#define LH_EMBED_BUILTIN_VERSION "builtin-v1"
void lh_embed_builtin(const char *text, size_t len, float *out);

/* A remote embedding provider (embed_remote.c has the wire formats). */
typedef struct lh_embed_provider {
    const char *kind;    /* "ollama" or "openai" */
    const char *url;     /* base URL, e.g. http://127.0.0.1:11434 */
    const char *model;   /* the provider's model name */
    const char *api_key; /* openai: sent as a bearer token; may be NULL */
    int timeout_ms;      /* per request; <= 0: 30 s */
    int retries;         /* for timeouts, 429 and 5xx; <= 0: 2 */
    size_t batch;        /* texts per request; 0: 64 */
} lh_embed_provider;

/* Embed n texts: *out (new, n * *dim floats, free) in the order given. 502
 * provider_unreachable / provider_error / provider_bad_response naming the provider. */
int lh_embed_remote(const lh_embed_provider *p, const char *const *texts, size_t n, float **out,
                    uint32_t *dim, lh_err *err);

#endif
