/*
 * fcache.c — the filter cache: a search filter's matching positions, kept for the next
 * search with the same filter.
 *
 * Agents call the same few filters again and again (search_candidates with a city and a
 * minimum of years), and evaluating one is a query over the dataset plus a lookup of every
 * matching id: several times the graph walk itself. An entry keeps the answer as the
 * bitmap over positions the search uses, with the counts it reports.
 *
 * The key is everything the answer depends on besides the data: the index and its
 * generation (positions belong to one generation), the caller's view of the catalog
 * (lh_resolver.view_key: who, roles, clearance, buckets), the filter's text and its bound
 * parameters. The data is checked on every hit: the entry holds what the filter's query
 * read (lh_reads: each dataset with the stamp of its registration), and an entry whose
 * datasets have been registered again since — a row change, an ingest, a compaction, a
 * rescue switch — is dropped, never used. A filter whose answer is not fixed by its data
 * (now(), random(), a sample, a rescue read) is never kept (lh_reads.stable).
 *
 * Memory: entries cost their bitmap and key; the total stays under [vector]
 * filter_cache_bytes by dropping the least recently used (0 keeps nothing). Entries of an
 * old generation are never hit again and age out.
 *
 * Thread safety: one mutex over the table and the list; a hit copies the bitmap out, so
 * searches never hold an entry. lh_fcache_has answers whether a hit would happen now
 * (for a door deciding where a search runs) without copying anything or counting.
 */
#include "vector/vector_int.h"

#include <stdlib.h>
#include <string.h>

#define FC_BUCKETS 1024 /* a power of two */

typedef struct fc_entry {
    char *key;
    uint64_t hash;
    lh_reads reads;
    uint64_t *bits;
    size_t n_words, n_positions, n_docs;
    size_t bytes;                   /* what it counts against the bound */
    struct fc_entry *chain;         /* the bucket's next */
    struct fc_entry *newer, *older; /* recency list */
} fc_entry;

struct lh_fcache {
    pthread_mutex_t lock;
    fc_entry *buckets[FC_BUCKETS];
    fc_entry *newest, *oldest;
    int64_t bytes, max_bytes;
    uint64_t hits, misses, stale, evictions;
    size_t n;
};

static uint64_t
key_hash(const char *key)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

lh_fcache *
lh_fcache_new(int64_t max_bytes)
{
    lh_fcache *fc = lh_calloc(1, sizeof *fc);
    pthread_mutex_init(&fc->lock, NULL);
    fc->max_bytes = max_bytes;
    return fc;
}

/* The recency list: newest at the head. */
static void
list_remove(lh_fcache *fc, fc_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        fc->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        fc->oldest = e->newer;
}

static void
list_push(lh_fcache *fc, fc_entry *e)
{
    e->older = fc->newest;
    e->newer = NULL;
    if (fc->newest)
        fc->newest->newer = e;
    fc->newest = e;
    if (fc->oldest == NULL)
        fc->oldest = e;
}

static void
insert_entry(lh_fcache *fc, fc_entry *e)
{
    fc_entry **b = &fc->buckets[e->hash & (FC_BUCKETS - 1)];
    e->chain = *b;
    *b = e;
    list_push(fc, e);
    fc->bytes += (int64_t)e->bytes;
    fc->n++;
}

static void
unlink_entry(lh_fcache *fc, fc_entry *e)
{
    fc_entry **p = &fc->buckets[e->hash & (FC_BUCKETS - 1)];
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    list_remove(fc, e);
    fc->bytes -= (int64_t)e->bytes;
    fc->n--;
}

static void
entry_free(fc_entry *e)
{
    free(e->key);
    free(e->bits);
    free(e);
}

void
lh_fcache_free(lh_fcache *fc)
{
    if (fc == NULL)
        return;
    while (fc->oldest) {
        fc_entry *e = fc->oldest;
        unlink_entry(fc, e);
        entry_free(e);
    }
    pthread_mutex_destroy(&fc->lock);
    free(fc);
}

static fc_entry *
find(lh_fcache *fc, const char *key, uint64_t hash)
{
    for (fc_entry *e = fc->buckets[hash & (FC_BUCKETS - 1)]; e; e = e->chain)
        if (e->hash == hash && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* Whether e may answer a search over n_words of bitmap: the datasets its filter read have
 * not been registered again since. Under fc->lock. */
static bool
current(lh_engine *eng, const fc_entry *e, size_t n_words)
{
    return e->n_words == n_words && lh_engine_reads_current(eng, &e->reads);
}

bool
lh_fcache_get(lh_fcache *fc, lh_engine *eng, const char *key, uint64_t *bits, size_t n_words,
              size_t *n_positions, size_t *n_docs)
{
    if (fc == NULL || fc->max_bytes <= 0)
        return false;
    uint64_t hash = key_hash(key);
    pthread_mutex_lock(&fc->lock);
    fc_entry *e = find(fc, key, hash);
    bool hit = false;
    if (e && !current(eng, e, n_words)) {
        unlink_entry(fc, e); /* its datasets changed: never again */
        entry_free(e);
        fc->stale++;
        e = NULL;
    }
    if (e) {
        list_remove(fc, e);
        list_push(fc, e);
        memcpy(bits, e->bits, n_words * sizeof *bits);
        *n_positions = e->n_positions;
        *n_docs = e->n_docs;
        fc->hits++;
        hit = true;
    } else {
        fc->misses++;
    }
    pthread_mutex_unlock(&fc->lock);
    return hit;
}

bool
lh_fcache_has(lh_fcache *fc, lh_engine *eng, const char *key, size_t n_words)
{
    if (fc == NULL || fc->max_bytes <= 0)
        return false;
    uint64_t hash = key_hash(key);
    pthread_mutex_lock(&fc->lock);
    const fc_entry *e = find(fc, key, hash);
    /* a stale entry stays for lh_fcache_get to drop and count: this only looks */
    bool has = e && current(eng, e, n_words);
    pthread_mutex_unlock(&fc->lock);
    return has;
}

void
lh_fcache_put(lh_fcache *fc, const char *key, const lh_reads *reads, const uint64_t *bits,
              size_t n_words, size_t n_positions, size_t n_docs)
{
    if (fc == NULL || fc->max_bytes <= 0 || !reads->stable)
        return;
    size_t key_len = strlen(key);
    size_t bytes = sizeof(fc_entry) + key_len + 1 + n_words * sizeof *bits;
    if ((int64_t)bytes > fc->max_bytes)
        return;
    uint64_t *copy = lh_try_malloc(n_words * sizeof *bits);
    if (copy == NULL)
        return; /* a cache: nothing is lost */
    memcpy(copy, bits, n_words * sizeof *bits);
    fc_entry *e = lh_calloc(1, sizeof *e);
    *e = (fc_entry){.key = lh_strdup(key),
                    .hash = key_hash(key),
                    .reads = *reads,
                    .bits = copy,
                    .n_words = n_words,
                    .n_positions = n_positions,
                    .n_docs = n_docs,
                    .bytes = bytes};
    pthread_mutex_lock(&fc->lock);
    fc_entry *old = find(fc, key, e->hash);
    if (old) { /* two searches missed at once: the later answer replaces the earlier */
        unlink_entry(fc, old);
        entry_free(old);
    }
    while (fc->oldest && fc->bytes + (int64_t)bytes > fc->max_bytes) {
        fc_entry *victim = fc->oldest;
        unlink_entry(fc, victim);
        entry_free(victim);
        fc->evictions++;
    }
    insert_entry(fc, e);
    pthread_mutex_unlock(&fc->lock);
}

json_t *
lh_fcache_stats(lh_fcache *fc)
{
    if (fc == NULL)
        return json_object();
    pthread_mutex_lock(&fc->lock);
    json_t *out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "entries", (json_int_t)fc->n,
                            "bytes", (json_int_t)fc->bytes, "max_bytes", (json_int_t)fc->max_bytes,
                            "hits", (json_int_t)fc->hits, "misses", (json_int_t)fc->misses, "stale",
                            (json_int_t)fc->stale, "evictions", (json_int_t)fc->evictions);
    pthread_mutex_unlock(&fc->lock);
    return out;
}

json_t *
lh_vectors_filter_cache_stats(lh_vectors *v)
{
    return lh_fcache_stats(v->fcache);
}
