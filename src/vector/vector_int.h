/*
 * vector_int.h — internals of src/vector: the index layout and the distance kernels.
 */
#ifndef LH_VECTOR_INT_H
#define LH_VECTOR_INT_H

#include "vector/vector.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct lh_vec_kernels {
    float (*dot)(const float *a, const float *b, size_t n);
    float (*l2)(const float *a, const float *b, size_t n);
    float (*dot_u8)(const float *q, const uint8_t *c, size_t n);
    int32_t (*dot_s8u8)(const int8_t *q, const uint8_t *c, size_t n);  /* NULL: no VNNI */
    float (*dot_bf16)(const uint16_t *a, const uint16_t *b, size_t n); /* NULL: no BF16 */
    const char *name;
} lh_vec_kernels;

/* in as bfloat16 (the top half of each float, rounded to nearest even). */
void lh_vec__to_bf16(const float *in, uint16_t *out, size_t n);

const lh_vec_kernels *lh_vec__kernels(void);
float lh_vec__distance(const lh_vec_kernels *k, lh_metric metric, const float *a, const float *b,
                       size_t dim);

/* A binary heap of hits; `max` orders it by largest distance first, else smallest. */
typedef struct heap {
    lh_hit *a;
    size_t n, cap;
    bool max;
} heap;

/* A search context: a visited set that is not cleared between searches (a node is
 * visited when its tag equals the current epoch; the tags are wiped only when the epoch
 * wraps) and the search's scratch, kept for the next search. */
typedef struct visited {
    uint16_t *tags;
    uint16_t epoch;
    size_t n;
    uint32_t *links; /* one links row (1 + m0) */
    heap cand, top;
    struct visited *next; /* in the index's pool */
} visited;

/*
 * Layout: vectors and level-0 links are contiguous arrays indexed by position, so a
 * search at level 0 touches one row of each per node (and prefetches the next).
 *   vectors  n * dim floats
 *   links0   n * (1 + m0) uint32: count, then up to m0 neighbours
 *   upper[i] NULL, or levels[i] * (1 + m) uint32 for levels 1..levels[i]
 */
struct lh_hnsw {
    uint32_t dim;
    lh_metric metric;
    lh_hnsw_params params;
    uint32_t m0;
    size_t n;
    float *vectors;
    uint32_t *links0;
    uint32_t **upper;
    uint8_t *levels;
    uint32_t entry;
    int max_level;
    const lh_vec_kernels *k;
    /* building */
    pthread_mutex_t *node_locks;
    pthread_mutex_t global;
    uint16_t *bf16;   /* the vectors as bfloat16 for the build's walks, or NULL (hnsw.c) */
    float *bf16_norm; /* L2: each bfloat16 vector's squared norm */
    bool built_bf16;  /* the build walked and chose on bfloat16 (tests, bench) */
    /* searching */
    pthread_mutex_t pool_lock;
    visited *pool;
    /* the most isolated positions, each search's extra ways in (lh_hnsw__find_islands) */
    uint32_t *islands;
    size_t n_islands;
    /* a loaded sidecar: vectors and links0 point into the mapping */
    void *map;
    size_t map_len;
    uint32_t *upper_block; /* the upper lists of a loaded index, in one block */
    /* int8 (params.quant): code c of dimension j stands for q_min[j] + q_scale[j] * c */
    uint8_t *codes;  /* n * dim */
    float *q_min;    /* dim */
    float *q_scale;  /* dim */
    float *q_norm;   /* n: Σ_j (q_scale[j] * c_j)^2, the L2 term of each code vector */
    bool codes_heap; /* codes and q_* were allocated (else they lie in the mapping) */
};

#define LH_HNSW_MAX_LEVEL 16

static inline uint32_t *
lh_hnsw__links(const lh_hnsw *h, uint32_t i, int level)
{
    return level == 0 ? h->links0 + (size_t)i * (1 + h->m0)
                      : h->upper[i] + (size_t)(level - 1) * (1 + h->params.m);
}

/* Choose the graph's islands: the positions farthest from their nearest neighbour (at most
 * LH_HNSW_ISLANDS), which every search also starts from. Returns -1 when out of memory
 * (the index then has none). */
#define LH_HNSW_ISLANDS 64
int lh_hnsw__find_islands(lh_hnsw *h);

/* Quantize h's vectors into codes (int8); -1 when out of memory. */
int lh_hnsw__quantize(lh_hnsw *h);

/* Release a loaded index's mapping (hnsw_io.c). */
void lh_hnsw__unmap(lh_hnsw *h);

visited *lh_hnsw__visited_get(lh_hnsw *h);
void lh_hnsw__visited_free(visited *v);
void lh_hnsw__visited_put(lh_hnsw *h, visited *v);

/* ---- bm25.c: the full-text index of a generation ------------------------------------------
 * Words, the inverted index over a generation's positions, Okapi BM25 and its Parquet file
 * (README.md). */
#define LH_BM25_K1 1.2
#define LH_BM25_B 0.75
#define LH_BM25_WORD_MAX 64        /* longer words are dropped */
#define LH_BM25_QUERY_WORDS_MAX 64 /* distinct words of a query that are scored */

/* Call fn(ctx, word, len) for each word of text in order: runs of ASCII letters and digits
 * and bytes of UTF-8 multibyte sequences, ASCII lower-cased (word is a scratch copy, valid
 * during the call); runs longer than LH_BM25_WORD_MAX bytes are skipped. Stops at and
 * returns fn's first non-zero answer. Indexing and queries both split text with it. */
int lh_bm25__words(const char *text, size_t len, int (*fn)(void *ctx, const char *word, size_t len),
                   void *ctx);
/* Whether text holds at least one word. */
bool lh_bm25__has_words(const char *text, size_t len);
/* ln(1 + (n - df + 0.5) / (df + 0.5)): rarer words weigh more, and never below zero. */
double lh_bm25__idf(size_t n, size_t df);

/* A built text index: immutable, reference-counted (lh_bm25__retain/release). */
typedef struct lh_bm25 {
    atomic_int refs;
    size_t n;          /* positions */
    uint32_t *lengths; /* n: words in each position */
    double avg_len;
    size_t n_terms;
    char *term_chars;   /* the terms, sorted bytewise, back to back */
    size_t *term_off;   /* n_terms + 1: where each term starts in term_chars */
    size_t *post_off;   /* n_terms + 1: where each term's postings start */
    uint32_t *post_pos; /* n_postings: positions */
    uint32_t *post_tf;  /* n_postings: the term's count in that position */
    size_t n_postings;
    const char *source; /* "build" (with the generation), "file" (its bm25.parquet) or
                           "chunk_texts" (built at load: a generation without the file) */
} lh_bm25;

/* What a text index is built from: texts (lh_bm25__add_text) or the rows of its file
 * (lh_bm25__add_posting). Arrays sized by data are fallible (503 out_of_memory). */
typedef struct lh_bm25_builder {
    size_t n;
    uint32_t *lengths;
    uint8_t *has_length;
    uint32_t *slots; /* open addressing: term id + 1, 0 empty */
    size_t n_slots;
    lh_buf chars;
    size_t *term_at;
    uint32_t *term_len;
    size_t *term_last; /* the term's newest entry + 1 (0: none) */
    size_t n_terms, cap_terms;
    uint32_t *e_term, *e_pos, *e_tf;
    size_t n_entries, cap_entries;
    lh_err *err;
} lh_bm25_builder;

/* Always free b with lh_bm25__builder_free, also when this fails. */
int lh_bm25__builder_init(lh_bm25_builder *b, size_t n_positions, lh_err *err);
void lh_bm25__builder_free(lh_bm25_builder *b);
/* Index the words of position pos's text (positions in ascending order). */
int lh_bm25__add_text(lh_bm25_builder *b, uint32_t pos, const char *text, size_t len);
/* One row of the file: term (NULL: tf is pos's length in words), position, tf. 422
 * index_corrupt for values out of range. */
int lh_bm25__add_posting(lh_bm25_builder *b, const char *term, size_t len, int64_t pos, int64_t tf);
/* The index (new, one reference), its source a static string (lh_bm25.source). A source
 * of "file": every position must have had its length. */
int lh_bm25__finish(lh_bm25_builder *b, const char *source, lh_bm25 **out, lh_err *err);
lh_bm25 *lh_bm25__retain(lh_bm25 *bm); /* accepts NULL */
void lh_bm25__release(lh_bm25 *bm);    /* accepts NULL */
void lh_bm25__free(lh_bm25 *bm);       /* accepts NULL; ignores the reference count */
size_t lh_bm25__memory(const lh_bm25 *bm);

/* A position and its BM25 score. */
typedef struct lh_scored {
    uint32_t id;
    float score;
} lh_scored;
/* The at most k positions (allowed: a bitmap over positions, or NULL for all) with the
 * highest BM25 score for query's distinct words, best first (ties: lower position first),
 * into out (room for k); *n_out how many. terms (may be NULL) gets new
 * [{"term", "documents"}]: each distinct query word and how many positions hold it. */
int lh_bm25__search(const lh_bm25 *bm, const char *query, size_t len, const uint64_t *allowed,
                    size_t k, lh_scored *out, size_t *n_out, json_t **terms, lh_err *err);
/* Write bm as Parquet to path through eng (lh_writer). */
int lh_bm25__write(lh_engine *eng, const lh_bm25 *bm, const char *path, lh_err *err);
/* Read a file written by lh_bm25__write for a generation of n_positions (new). */
int lh_bm25__read(lh_engine *eng, const char *path, size_t n_positions, lh_bm25 **out, lh_err *err);

/* ---- indexes over datasets ------------------------------------------------------------
 * The files and who calls whom are in README.md ("Files"). vcommon.c is the base the
 * others sit on; nothing below calls upward. */

/* One committed generation: the graph, and position -> (document, chunk). Positions of
 * one document are contiguous; documents are found by id through an open-addressing
 * table. Immutable once published; freed when the last reference goes. */
typedef struct lh_vgen {
    atomic_int refs;
    int64_t generation;
    uint64_t serial;          /* unique in the process: keys what belongs to this generation */
    char bucket[LH_NAME_MAX]; /* where the generation's files live (its index's bucket) */
    json_t *desc;             /* the committed index.json */
    lh_hnsw *hnsw;
    size_t n;          /* positions */
    uint32_t *doc_of;  /* n: the document of each position */
    int32_t *chunk_of; /* n: the chunk number of each position */
    size_t n_docs;
    char **doc_ids;      /* n_docs, NUL-terminated */
    uint32_t *doc_first; /* n_docs: first position */
    uint32_t *doc_count; /* n_docs: positions (chunks) */
    uint32_t *table;     /* table_size slots of doc index + 1 (0: empty) */
    size_t table_size;
    char *texts;        /* chunk texts in memory (when within [vector]
                           texts_in_memory_bytes), else NULL: read from emb_path */
    size_t *text_off;   /* n: where each position's text starts in texts */
    uint32_t *text_len; /* n */
    char *emb_path;     /* local path of embeddings.parquet */
    bool emb_pinned;    /* emb_path is pinned in the cache */
    char *hnsw_path;    /* a pinned cache copy the graph maps, or NULL */
    lh_bm25 *bm25;      /* the text index (text indexes), or NULL: no text search */
    struct lh_vectors *owner;
} lh_vgen;

typedef struct lh_vidx {
    char name[LH_NAME_MAX];
    char dataset[LH_NAME_MAX];
    /* where every object of the index lives: its dataset's bucket when it was created (an
     * index created before residency stays in the primary bucket, where it was found) */
    char bucket[LH_NAME_MAX];
    json_t *spec;  /* id_column, text_column|vector_column, model, metric, hnsw, chunk */
    lh_vgen *live; /* NULL while the first generation builds */
    bool building;
    int64_t last_generation;
    int64_t previous_live; /* the generation live before the current one, or 0 */
    int64_t live_seq;      /* the newest record in _vectors/{index}/_live/ */
    struct lh_vidx *next;
} lh_vidx;

/* A generation's vectors as trials use them (prepared as the index stores them). */
typedef struct lh_tvec {
    char index[LH_NAME_MAX];
    int64_t generation;
    float *vectors;
    size_t n, bytes;
    uint32_t dim;
    int refs;    /* under tc_lock */
    bool cached; /* in the list (else freed at its last release) */
    int64_t used_us;
    struct lh_tvec *next;
} lh_tvec;

/* The trial journal of one bucket (trial_journal.c). */
typedef struct lh_vjournal {
    char bucket[LH_NAME_MAX];
    lh_applog *log; /* {bucket}://_hnsw/trials/ */
    struct lh_vjournal *next;
} lh_vjournal;

/* The filter cache (fcache.c): a filter's matching positions by key (index, generation,
 * view, filter, parameters), checked against the datasets the filter read (lh_reads) on
 * every hit, bounded by max_bytes (<= 0: keeps nothing). */
typedef struct lh_fcache lh_fcache;
lh_fcache *lh_fcache_new(int64_t max_bytes);
void lh_fcache_free(lh_fcache *fc); /* accepts NULL */
/* On a hit, copy the positions into bits (n_words long) and the counts out; true. */
bool lh_fcache_get(lh_fcache *fc, lh_engine *eng, const char *key, uint64_t *bits, size_t n_words,
                   size_t *n_positions, size_t *n_docs);
/* Whether lh_fcache_get would hit now: an entry for key whose datasets are current.
 * Copies nothing, moves nothing (recency, counters, a stale entry are left for the get). */
bool lh_fcache_has(lh_fcache *fc, lh_engine *eng, const char *key, size_t n_words);
/* Keep a filter's answer (nothing when reads is not stable or it does not fit). */
void lh_fcache_put(lh_fcache *fc, const char *key, const lh_reads *reads, const uint64_t *bits,
                   size_t n_words, size_t n_positions, size_t n_docs);
/* {"entries","bytes","max_bytes","hits","misses","stale","evictions"} (new). */
json_t *lh_fcache_stats(lh_fcache *fc);

struct lh_vectors {
    lh_vectors_deps deps;
    pthread_mutex_t lock; /* the list, each entry's live/building */
    lh_vidx *list;
    /* trial runs (trials.c): the vector cache */
    pthread_mutex_t tc_lock;
    lh_tvec *tc_list;
    int64_t tc_bytes, tc_max;
    uint64_t tc_hits, tc_misses, tc_evictions;
    /* the trial journal (trial_journal.c) */
    pthread_mutex_t journals_lock; /* journals */
    lh_vjournal *journals;         /* one per bucket that holds an index's trials */
    lh_fcache *fcache;             /* filters' matching positions (fcache.c) */
    pthread_mutex_t view_lock;     /* view_pins */
    char **view_pins;              /* local copies the _hnsw_trials view reads (pinned) */
    size_t n_view_pins;
};

struct lh_vbuild {
    lh_vectors *v;
    lh_vidx *x;   /* reserved: x->building is set */
    bool created; /* x was added by this build (removed again if it fails) */
    bool done;
    bool promote; /* a new graph over the live generation's vectors (vgen.c) */
    json_t *spec;
    json_t *origin; /* promote: {"trial_id"} or null */
    char *actor;
    char index[LH_NAME_MAX], dataset[LH_NAME_MAX];
    char bucket[LH_NAME_MAX]; /* the index's bucket, where the build writes */
};

/* Members of an index spec or descriptor: spec.key as a string (or NULL), and
 * spec.group.key as an integer (0 when absent). */
static inline const char *
lh_vectors__spec_str(const json_t *spec, const char *key)
{
    return json_string_value(json_object_get(spec, key));
}

static inline int64_t
lh_vectors__spec_int(const json_t *spec, const char *group, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(spec, group), key));
}

/* ---- vcommon.c: generations in memory ---- */
void lh_vgen__free(lh_vgen *g);    /* accepts NULL; ignores the reference count */
void lh_vgen__release(lh_vgen *g); /* accepts NULL */
/* A new generation object (one reference) of v's index in bucket; everything else empty. */
lh_vgen *lh_vgen__new(lh_vectors *v, const char *bucket, int64_t generation);
size_t lh_vgen__memory(const lh_vgen *g); /* bytes held in memory */
json_t *lh_vgen__summary(const lh_vgen *g);
/* Index g's documents (doc_first, doc_count, the id table) from doc_of and doc_ids. */
int lh_vgen__index_docs(lh_vgen *g, lh_err *err);
/* Document index of id, or -1. */
int64_t lh_vgen__find_doc(const lh_vgen *g, const char *id, size_t len);

/* ---- vcommon.c: the registry's lookups and reservations ---- */
lh_vidx *lh_vectors__find_locked(lh_vectors *v, const char *name);
void lh_vidx__free(lh_vidx *x); /* accepts NULL; releases its live generation */
int lh_vectors__no_index(lh_err *err, const char *name); /* 404 index_not_found */
/* Take a reference on name's live generation (NULL with 404/409 in err). */
lh_vgen *lh_vectors__acquire(lh_vectors *v, const char *name, json_t **spec, lh_err *err);
/* Reserve an existing index for a build (409 while another runs): a new lh_vbuild over
 * its current spec, freed by lh_vbuild_free, which releases the reservation. */
int lh_vectors__reserve(lh_vectors *v, const char *name, const char *actor, lh_vbuild **out,
                        lh_err *err);

/* ---- vcommon.c: files, and every write to the bucket ----
 * Every object of an index lives in the index's bucket (lh_vidx.bucket: its dataset's).
 * Writes go through the bucket layer (lh_buckets_*), which journals their failures in
 * /storage/errors; reads use the bucket's store directly (lh_vectors__store). */
/* The store of a registry bucket (borrowed, valid until the registry closes). */
lh_store *lh_vectors__store(lh_vectors *v, const char *bucket);
/* The buckets an index, eval set or trial may live in, in search order: the primary
 * first, then the others; never the rescue bucket. Returns the count; names borrowed. */
size_t lh_vectors__buckets(lh_vectors *v, const char **names, size_t max);
#define LH_VECTORS_MAX_BUCKETS 64
/* The bucket of a live dataset (copied into out, LH_NAME_MAX), or 404. */
int lh_vectors__dataset_bucket(lh_vectors *v, const char *dataset, char *out, lh_err *err);
char *lh_vectors__work_file(lh_vectors *v, const char *suffix); /* new path in work_dir */
/* Upload the local file at path as key of bucket (flags: LH_PUT_*); the caller removes
 * the file. */
int lh_vectors__upload(lh_vectors *v, const char *bucket, const char *path, const char *key,
                       int flags, int64_t *bytes, lh_err *err);
/* Put a JSON document as key (compact or indented), with flags LH_PUT_*. */
int lh_vectors__put_json(lh_vectors *v, const char *bucket, const char *key, const json_t *doc,
                         size_t dump_flags, int flags, lh_err *err);
int lh_vectors__copy(lh_vectors *v, const char *bucket, const char *src_key, const char *dst_key,
                     lh_err *err);
int lh_vectors__delete(lh_vectors *v, const char *bucket, const char *key,
                       lh_err *err); /* LH_ENOTFOUND as is */
/* Delete what an uncommitted generation uploaded: n_keys keys (best effort; NULL keys
 * skipped). */
void lh_vectors__discard(lh_vectors *v, const char *bucket, const char *const *keys, size_t n_keys);
/* Put index.json create-only: the commit of a generation. Losing the race is a 409
 * conflict naming the generation. */
int lh_vectors__commit_desc(lh_vectors *v, const char *bucket, const char *index,
                            int64_t generation, const json_t *desc, lh_err *err);

/* ---- vcommon.c: HNSW settings ({m, ef_construction, ef_search}) ---- */
/* Validate obj (NULL: nothing given) into *out (new): unknown members and values out of
 * bounds are 400s naming "{where}.{member}"; missing members take the defaults when
 * with_defaults, else stay missing. */
int lh_vectors__hnsw_settings(const json_t *obj, const char *where, bool with_defaults,
                              json_t **out, lh_err *err);
/* The build parameters of validated settings (seed fixed, so graphs are reproducible). */
lh_hnsw_params lh_vectors__hnsw_params(const json_t *settings);

/* ---- vrows.c: positions and documents gathered from a scan ---- */
/* What a build or a load gathers: documents, their chunks (positions) and, for
 * vector_column indexes, the vectors. Arrays sized by data grow with lh_try_realloc. */
typedef struct lh_vrows {
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
    /* for the scan callbacks */
    bool by_vector;
    size_t chunk_size, chunk_overlap;
    const char *doc_text; /* the text being chunked */
    const char *doc_id;   /* its id, until its first chunk starts the document */
    size_t doc_id_len;
    bool failed;     /* a chunk could not be kept (err is set) */
    bool keep_texts; /* gather chunk texts while within text_budget */
    size_t text_budget;
    lh_err *err;
    lh_job *job;
} lh_vrows;

void lh_vrows__init(lh_vrows *r, lh_err *err);
void lh_vrows__free(lh_vrows *r);
/* 503 out_of_memory for a build. */
int lh_vrows__oom(lh_err *err);
/* Room for one element more in *p (cap elements of elem bytes), doubling; -1 when out
 * of memory. */
int lh_vrows__grow(void **p, size_t *cap, size_t n, size_t elem);
/* A new document unless id repeats the last one (rows come ordered by id); -1: memory. */
int lh_vrows__start_doc(lh_vrows *r, const char *id, size_t len);
/* A position of the last started document, its chunks numbered 0, 1, ... in order. */
int lh_vrows__add_position(lh_vrows *r, size_t text_off, size_t text_len);
/* Move r's positions and documents (and texts, when kept) into g and index them. */
int lh_vrows__into_gen(lh_vrows *r, lh_vgen *g, lh_err *err);

/* ---- vreuse.c: the vectors of a build ---- */
/* Embed every chunk of r (text indexes) into r->vectors, taking the previous
 * generation's vector for unchanged text (same model version). */
int lh_vectors__embed_chunks(lh_vbuild *b, lh_vrows *r, const lh_vgen *prev, lh_job *job,
                             int64_t *embedded, int64_t *reused, lh_err *err);

/* ---- vlive.c: the live log ---- */
/* Swap in g as x's live generation (takes the caller's reference) and record it in the
 * index's live log. reason: "build", "refresh", "promote", "rollback". */
void lh_vectors__publish(lh_vectors *v, lh_vidx *x, lh_vgen *g, const char *reason,
                         const char *actor);
/* At start: which committed generation is live, and which was live before it. */
void lh_vectors__live_at_start(lh_vectors *v, lh_vidx *x, int64_t newest_committed, int64_t *live);

/* ---- vload.c ---- */
int lh_vectors__load_generation(lh_vectors *v, const char *bucket, const char *name,
                                int64_t generation, lh_vgen **out, lh_err *err);
/* A graph built in this process with int8 codes still holds its float vectors, which a
 * search reads only to re-rank: swap it for the uploaded sidecar mapped from the cache, as
 * a restart loads it. A failure keeps the built graph (it costs memory only) and is logged. */
void lh_vectors__map_built(lh_vectors *v, const char *name, lh_vgen *g);

/* ---- vgen.c ---- */
int lh_vectors__promote_run(lh_vbuild *b, lh_job *job, json_t **out, lh_err *err);

/* ---- evals.c: eval sets as trials read them ---- */
typedef struct lh_veval {
    char index[LH_NAME_MAX];
    int64_t generation;
    char metric[16];
    char created_at[LH_TIME_MAX];
    size_t k, n, cap;
    uint32_t dim;
    float *queries;     /* n * dim */
    int32_t *truth;     /* n * k */
    float *truth_dist;  /* n * k */
    int32_t *positions; /* n */
    json_t *rows;       /* with_rows: [{query_id, position, doc_id, truth}] */
    bool with_rows;
    lh_err *err;
} lh_veval;
/* Read eval's file into e (always free it with lh_vectors__eval_free). An eval set lives
 * in the bucket of the index it was sampled from; it is looked up in every bucket. */
int lh_vectors__eval_read(lh_vectors *v, const char *eval, bool with_rows, lh_veval *e,
                          lh_err *err);
void lh_vectors__eval_free(lh_veval *e);
int lh_vectors__eval_missing(lh_err *err, const char *eval); /* 404 eval_not_found */

/* ---- trials.c: the trial vector cache ---- */
void lh_vectors__tcache_open(lh_vectors *v);
void lh_vectors__tcache_close(lh_vectors *v);

/* ---- trial_journal.c ---- */
/* The journal and the _hnsw_trials view, at open and close. */
void lh_vectors__journal_open(lh_vectors *v);
void lh_vectors__journal_close(lh_vectors *v);
/* Append a trial to the journal of bucket (its index's) and flush (a trial that is not
 * journaled did not happen). Takes a reference of its own on trial. */
int lh_vectors__journal_trial(lh_vectors *v, const char *bucket, json_t *trial, lh_err *err);
/* Redefine `_hnsw_trials` in the users' engine over every stored journal batch of every
 * bucket. */
void lh_vectors__journal_view(lh_vectors *v);
/* The hnsw settings of a journaled trial (new) or 404. */
int lh_vectors__trial_config(lh_vectors *v, const char *index, const char *trial_id, json_t **hnsw,
                             lh_err *err);

#endif
