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
#include "catalog/catalog.h"
#include "engine/engine.h"
#include "storage/storage.h"

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

/* How an index keeps its vectors for the graph walk: as given (float32), or as one byte
 * per dimension (per-dimension min/max scale) with the best candidates re-ranked on the
 * float vectors, which stay in the sidecar file and are read only for that. */
typedef enum { LH_QUANT_NONE = 0, LH_QUANT_INT8 = 1 } lh_quant;
int lh_quant_parse(const char *s); /* "none", "int8"; -1 when unknown */
const char *lh_quant_name(lh_quant q);

typedef struct lh_hnsw_params {
    uint32_t m;               /* links per node above level 0 (level 0: 2m); default 16 */
    uint32_t ef_construction; /* default 80 (the seed's choice) */
    uint32_t ef_search;       /* default 30 */
    uint64_t seed;            /* levels are drawn from (seed, position): reproducible */
    lh_quant quant;           /* default none */
} lh_hnsw_params;

typedef struct lh_hnsw lh_hnsw;

/* Build an index over vectors (n rows of dim floats, copied; normalised for cosine) with
 * `threads` threads (<= 0: one per core). Returns new (lh_hnsw_free). 400 for a zero
 * dimension or parameters out of range; 413/503 when the memory cannot be had. */
int lh_hnsw_build(const float *vectors, size_t n, uint32_t dim, lh_metric metric,
                  const lh_hnsw_params *params, int threads, lh_hnsw **out, lh_err *err);
void lh_hnsw_free(lh_hnsw *h); /* accepts NULL */
/* Give a float index built in this process int8 codes (as if built with LH_QUANT_INT8:
 * the graph is the same either way). 409 for an index that has codes or was loaded. */
int lh_hnsw_quantize(lh_hnsw *h, lh_err *err);

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
/* Bytes the index holds in memory (the vectors the walk reads, graph, bookkeeping). The
 * float vectors of a loaded int8 index are not counted: they stay in the mapped file,
 * and only re-ranking reads them (lh_hnsw_mapped_bytes). */
size_t lh_hnsw_memory(const lh_hnsw *h);
/* The bytes h will hold as a committed generation holds it (saved and mapped back): for an
 * int8 index built here, lh_hnsw_memory without its float vectors. */
size_t lh_hnsw_served_memory(const lh_hnsw *h);
/* The bytes of the vectors the graph walk reads: n * dim * 4 (float), or the codes with
 * their per-vector and per-dimension terms (int8). */
size_t lh_hnsw_vector_bytes(const lh_hnsw *h);
/* Bytes of float vectors read from the mapped file rather than held (int8, loaded). */
size_t lh_hnsw_mapped_bytes(const lh_hnsw *h);
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
/* The same over the positions set in bits (n bits, n_allowed of them set; bits beyond n
 * clear): only those vectors are read, and threads are used by n_allowed. */
size_t lh_vec_exact_bits(const float *vectors, size_t n, uint32_t dim, lh_metric metric,
                         const float *query, size_t k, const uint64_t *bits, size_t n_allowed,
                         int threads, lh_hit *out);

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
    int concurrency;     /* requests at a time; <= 0: 1 */
} lh_embed_provider;

/* Embed n texts: *out (new, n * *dim floats, free) in the order given. 502
 * provider_unreachable / provider_error / provider_bad_response naming the provider. */
int lh_embed_remote(const lh_embed_provider *p, const char *const *texts, size_t n, float **out,
                    uint32_t *dim, lh_err *err);

/* ---- embedding models, as indexes and POST /embed use them -------------------------- */

/* A model chosen by name: "builtin", "ollama:<model>" or "openai:<model>", with the
 * provider settings from the [vector] config section (and the openai key from the
 * secrets file). Every embedding goes through the process-wide embedding cache, keyed by
 * (model, model version, SHA-256 of the text): the same text is never embedded twice
 * while its entry lives. Thread-safe. */
typedef struct lh_embedder lh_embedder;
/* 400 unknown_model for a name no provider serves; 500 provider_misconfigured when the
 * key cannot be read. Returns new (lh_embedder_free). */
int lh_embedder_open(const lh_config *cfg, const char *model, lh_embedder **out, lh_err *err);
void lh_embedder_free(lh_embedder *e); /* accepts NULL */
const char *lh_embedder_model(const lh_embedder *e);
/* "builtin-v1"; for remote models, which report no version, the provider's model name. */
const char *lh_embedder_version(const lh_embedder *e);
/* Embed n texts (lens[i] bytes each): *out new (n * *dim floats, free). The dimension of
 * a remote model is learnt from its first answer; later answers must keep it (502). */
int lh_embedder_embed(lh_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                      float **out, uint32_t *dim, size_t *cache_hits, lh_err *err);
/* Size the embedding cache (bytes of vectors; 0 turns it off). Call once at start. */
void lh_embed_cache_configure(int64_t max_bytes);
/* {"entries","bytes","max_bytes","hits","misses","evictions"} (new) */
json_t *lh_embed_cache_stats(void);

/* Split text into chunks of at most size bytes overlapping by overlap bytes, cutting at
 * whitespace where it can and never inside a UTF-8 sequence. Calls fn(ctx, offset, len)
 * per chunk in order; text that is only whitespace yields no chunk. */
void lh_chunk_text(const char *text, size_t len, size_t size, size_t overlap,
                   void (*fn)(void *ctx, size_t offset, size_t len), void *ctx);

/* ---- indexes over datasets (vindex.c, vsearch.c) -------------------------------------- */

/* The registry of vector indexes. Each index has generations stored in the primary
 * bucket under _vectors/{index}/gen-{G}/ (embeddings.parquet, hnsw.bin, index.json — the
 * last written create-only, so its presence commits the generation); the live generation
 * is reference-counted and swapped atomically, so searches never wait for a build and
 * finish on the generation they started on. Thread-safe. */
typedef struct lh_vectors lh_vectors;

typedef struct lh_vectors_deps {
    const lh_config *config;
    lh_buckets *buckets;
    lh_catalog *catalog;
    lh_cache *cache;
    lh_engine *engine; /* internal: embeddings Parquet in and out of work_dir */
    lh_engine *views;  /* the users' engine: dataset views, search filters */
    const char *work_dir;
} lh_vectors_deps;

/* Load every index's newest generation (the sidecar mapped; rebuilt from the embeddings
 * Parquet when it is missing or corrupt). Indexes that cannot be loaded are logged and
 * skipped. Returns new. */
int lh_vectors_open(const lh_vectors_deps *deps, lh_vectors **out, lh_err *err);
void lh_vectors_close(lh_vectors *v); /* accepts NULL; waits for nothing: stop jobs first */

/* A generation build in preparation: created by create/refresh begin (which validate
 * and reserve), run once by lh_vbuild_run (in a job), then freed. */
typedef struct lh_vbuild lh_vbuild;
/* The 404 index_not_found for name (what every door answers for an index it may not show). */
int lh_vectors_index_not_found(lh_err *err, const char *name);

/* POST /vectors/indexes body: validated (400 naming the field, 404 unknown dataset or
 * column, 409 an index of that name exists) and the name reserved. Returns new. */
int lh_vectors_create_begin(lh_vectors *v, const json_t *body, const char *actor, lh_vbuild **out,
                            lh_err *err);
/* A new generation of an existing index from its dataset's current rows (409 while
 * another build of it runs). Returns new. */
int lh_vectors_refresh_begin(lh_vectors *v, const char *name, const char *actor, lh_vbuild **out,
                             lh_err *err);
/* The dataset the build reads (for permission checks). */
const char *lh_vbuild_dataset(const lh_vbuild *b);
const char *lh_vbuild_index(const lh_vbuild *b);
/* Embed, build, store, commit and swap in. job (may be NULL) gets progress and is
 * checked for cancellation. *out (new) describes the generation. */
int lh_vbuild_run(lh_vbuild *b, lh_job *job, json_t **out, lh_err *err);
void lh_vbuild_free(lh_vbuild *b); /* accepts NULL; releases the reservation */

json_t *lh_vectors_list(lh_vectors *v);
/* The trial journal's relation in the users' engine, and its guard for a principal's
 * SQL (lh_catalog_guard_fn, ctx: the lh_vectors; `lakehouse serve` sets it): the trials
 * of the indexes whose dataset the view sees; trials of indexes that are gone show to
 * no one but a principal who sees everything (which has no resolver). */
#define LH_VECTORS_TRIALS_VIEW "_hnsw_trials"
lh_resolved lh_vectors_trials_guard(void *ctx, const lh_catalog_view *view, const char *select,
                                    lh_buf *out);
/* 404 for an unknown index. *out new. */
int lh_vectors_get(lh_vectors *v, const char *name, json_t **out, lh_err *err);
/* The dataset an index is over (copied into out); false when no such index. */
bool lh_vectors_dataset_of(lh_vectors *v, const char *name, char *out, size_t size);
/* Whether a search of index name, its filter and included columns aside (the caller
 * judges those: lh_vectors_filter_is_cached), is CPU that waits on nothing: not exact,
 * k <= 100, ef <= 1000, its query embedded in this process (the builtin model, or a vector
 * given), its hits' texts in memory. True for no such index or none ready (the answer is an
 * error at once). Takes the registry's lock briefly. */
bool lh_vectors_search_is_quick(lh_vectors *v, const char *name, bool text_query, bool exact,
                                int64_t k, int64_t ef);
/* Remove an index and its stored generations (409 while it builds). */
int lh_vectors_drop(lh_vectors *v, const char *name, lh_err *err);

/* What a search ranks by: the vectors (nearest to the query's embedding, or to the vector
 * given), the words (BM25 over the chunk texts: text indexes only), or both fused by
 * reciprocal rank (README.md, "Search modes"). */
typedef enum { LH_VSEARCH_VECTOR = 0, LH_VSEARCH_TEXT = 1, LH_VSEARCH_HYBRID = 2 } lh_vsearch_mode;

/* How a hybrid search fuses its two rankings: a hit's score is
 * vector_weight / (rrf_k + its vector rank) + text_weight / (rrf_k + its text rank), a
 * ranking it is not in adding nothing; each ranking is taken to `depth` hits. */
typedef struct lh_vhybrid {
    double vector_weight, text_weight; /* >= 0, not both 0; default 1 and 1 */
    int64_t rrf_k;                     /* default 60 */
    size_t depth;                      /* 0: max(k, ef) (ef: the index's ef_search if not given) */
} lh_vhybrid;
#define LH_VSEARCH_DEPTH_MAX 10000

typedef struct lh_vsearch {
    const char *index;
    lh_vsearch_mode mode;     /* 0: vector */
    const lh_vhybrid *hybrid; /* mode hybrid: the fusion, NULL for the defaults */
    const char *query;        /* text, embedded with the index's model; or NULL */
    const float *vector;      /* or a vector of n_vector floats */
    size_t n_vector;
    size_t k;
    size_t ef;          /* 0: the index's ef_search */
    const char *filter; /* SQL predicate over the dataset, or NULL */
    /* values of the filter's named parameters ($city), bound, never spliced (tools) */
    const lh_sql_param *filter_params;
    size_t n_filter_params;
    const char *const *include; /* dataset columns to return with each hit */
    size_t n_include;
    /* the asker's clearance (LH_LEVEL_*): included columns above it come back masked
     * (lh_catalog_mask_plan); 0: no masking (lakehouse's own work) */
    int clearance;
    bool exact;
    int64_t timeout_ms; /* for the filter and include queries */
    /* who asks: the filter (user SQL) waits for a query slot as this principal, counted
     * against timeout_ms (429 when the principal's line is full); NULL: no slot */
    const char *principal;
    /* the resolver of the filter's names (lh_query_opts.resolver); NULL: every name */
    const lh_resolver *resolver;
} lh_vsearch;
/* Search (see docs/API.md for the answer). 400 for bad input (also a text or hybrid search
 * of an index over a vector column, or with a vector, or with a query that has no words),
 * 404 unknown index, 409 an index still building its first generation or (text, hybrid)
 * without a text index in memory. *out new. */
int lh_vectors_search(lh_vectors *v, const lh_vsearch *s, json_t **out, lh_err *err);
/* Whether lh_vectors_search(s) would take its filter's matching positions from the filter
 * cache if it started now: s->filter is set, s->index has a live generation, and the cache
 * holds the key the search builds (that generation, s->resolver's view_key, s->filter, its
 * bound parameters) with an entry still current (no dataset the filter read registered
 * again since: a stale entry counts as not cached). Copies no bitmap, runs no SQL, counts
 * no hit or miss; takes the registry's lock, then the cache's (and under it the engine
 * registry's read lock), each briefly. Reads only index, filter, filter_params,
 * n_filter_params and resolver of s.
 * A hint for a door deciding whether a search may run on the thread that read it: the
 * entry may be evicted or go stale before the search looks, and the search then runs the
 * filter's SQL itself (correct, only slower on that thread once). */
bool lh_vectors_filter_is_cached(lh_vectors *v, const lh_vsearch *s);
/* A search request's "mode" and "hybrid" members (each NULL when absent) into s->mode and,
 * for hybrid searches, *hybrid (s->hybrid points to it afterwards: hybrid must live as
 * long as s). 400 invalid_parameter naming the member: a mode other than vector, text or
 * hybrid; "hybrid" with another mode; unknown members; weights that are not numbers from
 * 0 to 1000 or both 0; rrf_k or depth not integers in range. Every door calls this. */
int lh_vsearch_options(const json_t *mode, const json_t *hybrid, lh_vsearch *s, lh_vhybrid *h,
                       lh_err *err);

/* ---- eval sets, trials, promotion (trials.c, vindex.c) -------------------------------- */

/* An eval set: n_queries positions sampled from the index's live generation, each with
 * its exact top-k (the position itself excluded), stored create-only as
 * _hnsw/evals/{eval}.parquet. body: {"index", "n_queries", "k", "seed"}. *out new. */
int lh_vectors_eval_autogen(lh_vectors *v, const char *eval, const json_t *body, json_t **out,
                            lh_err *err);
/* Summaries of every eval set (new). */
json_t *lh_vectors_evals(lh_vectors *v);
/* One eval set with its queries (new); 404 eval_not_found. */
int lh_vectors_eval_get(lh_vectors *v, const char *eval, json_t **out, lh_err *err);
/* The index an eval set is for (into out); false when no such eval. */
bool lh_vectors_eval_index(lh_vectors *v, const char *eval, char *out, size_t size);

/* A trial run: body {"index", "eval", "configs": [{"m", "ef_construction",
 * "ef_search"}, ...]} validated by begin (400/404), run once (in a job), then freed. */
typedef struct lh_vtrial lh_vtrial;
int lh_vectors_trial_begin(lh_vectors *v, const json_t *body, const char *actor, lh_vtrial **out,
                           lh_err *err);
const char *lh_vtrial_index(const lh_vtrial *t);
int lh_vtrial_run(lh_vtrial *t, lh_job *job, json_t **out, lh_err *err);
void lh_vtrial_free(lh_vtrial *t); /* accepts NULL */
/* Queue a build (kind "vector_index") or a trial ("hnsw_trial": give one of b, t) as a job
 * of owner on jobs; takes it, also on failure (503 when the queue is full). id: the job's. */
int lh_vectors_submit(lh_jobs *jobs, const char *owner, lh_vbuild *b, lh_vtrial *t,
                      char id[LH_JOB_ID_MAX], lh_err *err);
/* Every journaled trial of index, oldest first (new). */
int lh_vectors_trials(lh_vectors *v, const char *index, json_t **out, lh_err *err);
/* The fastest trial (p50) with recall >= min_recall, or (min_recall < 0) the best recall
 * with p95 <= max_p95_us. 404 no_trial when none qualifies. */
int lh_vectors_trial_best(lh_vectors *v, const char *index, double min_recall, double max_p95_us,
                          json_t **out, lh_err *err);
/* The trial vector cache: {"entries","bytes","max_bytes","hits","misses","evictions"}. */
json_t *lh_vectors_trial_cache_stats(lh_vectors *v);
/* The filter cache: {"entries","bytes","max_bytes","hits","misses","stale","evictions"}
 * (stale: entries dropped because a dataset they read changed). */
json_t *lh_vectors_filter_cache_stats(lh_vectors *v);

/* A new generation of the live one's vectors with other HNSW settings (body:
 * {"trial_id"} or {"hnsw": {...}}), built like a refresh (lh_vbuild_run) but embedding
 * nothing. 409 while another build of the index runs. Returns new. */
int lh_vectors_promote_begin(lh_vectors *v, const char *name, const json_t *body, const char *actor,
                             lh_vbuild **out, lh_err *err);
/* Make the generation that was live before the current one live again (one call; it
 * is loaded from the bucket). 409 when there is none. *out new. */
int lh_vectors_rollback(lh_vectors *v, const char *name, const char *actor, json_t **out,
                        lh_err *err);

#endif
