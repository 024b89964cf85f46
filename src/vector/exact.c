/*
 * exact.c — brute-force top-k: every vector scored with the SIMD kernels, the work split
 * over threads by ranges, each keeping its own top-k, merged at the end. The ground
 * truth for recall and the fallback when a filter leaves too few candidates for HNSW.
 */
#include "vector/vector_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct part {
    const float *vectors;
    size_t from, to, k;
    uint32_t dim;
    lh_metric metric;
    const float *q;
    lh_vec_filter_fn filter;
    void *ctx;
    const uint64_t *bits; /* or the positions allowed, by 64-bit words (from, to: words) */
    lh_hit *top;          /* a max-heap of k by distance */
    size_t n_top;
} part;

static void
sift_down(lh_hit *a, size_t n, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && a[c + 1].distance > a[c].distance)
            c++;
        if (a[c].distance <= a[i].distance)
            return;
        lh_hit t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

static void
offer(lh_hit *top, size_t *n, size_t k, lh_hit x)
{
    if (*n < k) {
        size_t i = (*n)++;
        top[i] = x;
        while (i > 0 && top[(i - 1) / 2].distance < top[i].distance) {
            lh_hit t = top[i];
            top[i] = top[(i - 1) / 2];
            top[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (x.distance < top[0].distance) {
        top[0] = x;
        sift_down(top, *n, 0);
    }
}

/* The allowed positions of words [from, to) of a bitmap: only their vectors are read
 * (the next one prefetched while one is scored), so a selective filter costs its matches,
 * not the index. */
static void
scan_bits(part *p, const lh_vec_kernels *k)
{
    for (size_t w = p->from; w < p->to; w++) {
        uint64_t word = p->bits[w];
        while (word) {
            size_t i = w * 64 + (size_t)__builtin_ctzll(word);
            word &= word - 1;
            /* the allowed position after i, for the prefetch */
            size_t w2 = w;
            uint64_t rest = word;
            while (rest == 0 && ++w2 < p->to && w2 < w + 4)
                rest = p->bits[w2];
            if (rest)
                __builtin_prefetch(p->vectors + (w2 * 64 + (size_t)__builtin_ctzll(rest)) * p->dim);
            float d = lh_vec__distance(k, p->metric, p->q, p->vectors + i * p->dim, p->dim);
            offer(p->top, &p->n_top, p->k, (lh_hit){(uint32_t)i, d});
        }
    }
}

static void *
scan(void *arg)
{
    part *p = arg;
    const lh_vec_kernels *k = lh_vec__kernels();
    if (p->bits) {
        scan_bits(p, k);
        return NULL;
    }
    for (size_t i = p->from; i < p->to; i++) {
        if (i + 4 < p->to)
            __builtin_prefetch(p->vectors + (i + 4) * p->dim);
        if (p->filter && !p->filter(p->ctx, (uint32_t)i))
            continue;
        float d = lh_vec__distance(k, p->metric, p->q, p->vectors + i * p->dim, p->dim);
        offer(p->top, &p->n_top, p->k, (lh_hit){(uint32_t)i, d});
    }
    return NULL;
}

static int
by_distance(const void *a, const void *b)
{
    const lh_hit *x = a, *y = b;
    return x->distance < y->distance   ? -1
           : x->distance > y->distance ? 1
           : x->id < y->id             ? -1
                                       : x->id > y->id;
}

/* The search over n items (vectors, or bitmap words) of which about n_scored are scored. */
static size_t
exact_search(const float *vectors, size_t n, size_t n_scored, uint32_t dim, lh_metric metric,
             const float *query, size_t k, lh_vec_filter_fn filter, void *ctx, const uint64_t *bits,
             int threads, lh_hit *out)
{
    if (n == 0 || k == 0)
        return 0;
    float *q = malloc(dim * sizeof *q);
    if (!q)
        return 0;
    memcpy(q, query, dim * sizeof *q);
    if (metric == LH_METRIC_COSINE)
        lh_vec_normalise(q, dim);
    if (threads <= 0) /* sysconf reads sysfs (~10 us): not asked for a one-thread scan */
        threads = n_scored / 4096 == 0 ? 1 : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    if ((size_t)threads > n_scored / 4096 + 1) /* small scans are not worth a thread */
        threads = (int)(n_scored / 4096 + 1);
    if (threads > 64)
        threads = 64;
    part parts[64];
    pthread_t tids[64];
    lh_hit *heaps = malloc((size_t)threads * k * sizeof *heaps);
    size_t got = 0;
    if (heaps) {
        bool threaded[64] = {false};
        for (int t = 0; t < threads; t++)
            parts[t] = (part){vectors,
                              n * (size_t)t / (size_t)threads,
                              n * (size_t)(t + 1) / (size_t)threads,
                              k,
                              dim,
                              metric,
                              q,
                              filter,
                              ctx,
                              bits,
                              heaps + (size_t)t * k,
                              0};
        for (int t = 1; t < threads; t++)
            threaded[t] = pthread_create(&tids[t], NULL, scan, &parts[t]) == 0;
        for (int t = 0; t < threads; t++)
            if (!threaded[t]) /* part 0, and any a thread could not take */
                scan(&parts[t]);
        for (int t = 1; t < threads; t++)
            if (threaded[t])
                pthread_join(tids[t], NULL);
        /* merge: every part's top-k together, then the k best */
        size_t all = 0;
        for (int t = 0; t < threads; t++) {
            memmove(heaps + all, parts[t].top, parts[t].n_top * sizeof *heaps);
            all += parts[t].n_top;
        }
        qsort(heaps, all, sizeof *heaps, by_distance);
        got = all < k ? all : k;
        memcpy(out, heaps, got * sizeof *out);
    }
    free(heaps);
    free(q);
    return got;
}

size_t
lh_vec_exact(const float *vectors, size_t n, uint32_t dim, lh_metric metric, const float *query,
             size_t k, lh_vec_filter_fn filter, void *ctx, int threads, lh_hit *out)
{
    return exact_search(vectors, n, n, dim, metric, query, k, filter, ctx, NULL, threads, out);
}

size_t
lh_vec_exact_bits(const float *vectors, size_t n, uint32_t dim, lh_metric metric,
                  const float *query, size_t k, const uint64_t *bits, size_t n_allowed, int threads,
                  lh_hit *out)
{
    return exact_search(vectors, (n + 63) / 64, n_allowed, dim, metric, query, k, NULL, NULL, bits,
                        threads, out);
}
