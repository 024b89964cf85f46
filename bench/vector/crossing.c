/*
 * bench/vector/crossing.c — where exact search stops being as cheap as the graph: for
 * several dimensions and index sizes, the p50 of a graph search (default settings: m 16,
 * ef_construction 80, ef_search 30; k 10; one thread) beside exact search over the same
 * vectors (lh_vec_exact as searches run it), on clustered unit vectors (cosine). Prints
 * the largest size at which exact search is within EXACT_SLACK of the graph: the
 * [vector] exact_below_vectors default comes from this table. Never fails on speed.
 * usage: crossing [QUERIES]
 */
#define _POSIX_C_SOURCE 200809L
#include "vector/vector.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static float
noise(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffff) / 65536.0f - 0.5f;
}

/* n vectors around 32 centres, as embeddings cluster */
static float *
clustered(size_t n, size_t dim, uint64_t seed)
{
    float *v = malloc(n * dim * sizeof *v), *c = malloc(32 * dim * sizeof *c);
    uint64_t s = 7;
    for (size_t i = 0; i < 32 * dim; i++)
        c[i] = noise(&s);
    s = seed;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++)
            v[i * dim + j] = c[(i % 32) * dim + j] + 0.6f * noise(&s);
    free(c);
    return v;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
p50(double *t, size_t n)
{
    qsort(t, n, sizeof *t, cmp_double);
    return t[n / 2];
}

#define EXACT_SLACK 1.5 /* exact search may cost this much more than the graph's */

int
main(int argc, char **argv)
{
    size_t nq = argc > 1 ? strtoull(argv[1], NULL, 10) : 300;
    const size_t dims[] = {96, 384, 768, 1536};
    const size_t sizes[] = {250, 500, 1000, 2000, 4000, 8000, 16000};
    printf("bench/vector/crossing — graph (m 16, efC 80, ef 30, k 10, 1 thread) vs exact "
           "search (%s), p50 of %zu queries, clustered cosine vectors\n",
           lh_vec_simd_name(), nq);
    printf("%6s %7s %12s %12s %8s\n", "dim", "n", "graph p50us", "exact p50us", "exact/g");
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        size_t dim = dims[di], crossing = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            size_t n = sizes[si];
            float *v = clustered(n, dim, 11), *q = clustered(nq, dim, 99);
            float *prepared = malloc(n * dim * sizeof *prepared);
            memcpy(prepared, v, n * dim * sizeof *prepared);
            for (size_t i = 0; i < n; i++)
                lh_vec_normalise(prepared + i * dim, dim);
            lh_hnsw *h = NULL;
            lh_err err;
            if (lh_hnsw_build(v, n, (uint32_t)dim, LH_METRIC_COSINE, NULL, 2, &h, &err) != 0) {
                fprintf(stderr, "build failed: %s\n", err.message);
                return 1;
            }
            double *tg = malloc(nq * sizeof *tg), *te = malloc(nq * sizeof *te);
            lh_hit hits[10];
            for (size_t r = 0; r < 2; r++) /* the first round warms caches */
                for (size_t i = 0; i < nq; i++) {
                    double t0 = now_us();
                    lh_hnsw_search(h, q + i * dim, 10, 0, NULL, NULL, hits);
                    double t1 = now_us();
                    lh_vec_exact(prepared, n, (uint32_t)dim, LH_METRIC_COSINE, q + i * dim, 10,
                                 NULL, NULL, 0, hits);
                    double t2 = now_us();
                    tg[i] = t1 - t0;
                    te[i] = t2 - t1;
                }
            double g = p50(tg, nq), e = p50(te, nq);
            printf("%6zu %7zu %12.1f %12.1f %8.2f\n", dim, n, g, e, e / g);
            if (e <= EXACT_SLACK * g)
                crossing = n;
            lh_hnsw_free(h);
            free(tg);
            free(te);
            free(prepared);
            free(v);
            free(q);
        }
        printf("dim %zu: exact search within %.1fx of the graph up to %zu vectors\n", dim,
               EXACT_SLACK, crossing);
    }
    return 0;
}
