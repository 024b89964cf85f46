/*
 * test_hnsw.c — the HNSW index against brute force: recall@10 for each metric, filtered
 * search returning only allowed positions, the SIMD kernels agreeing with plain C, the
 * sidecar round trip (same answers after load) and every kind of damaged sidecar
 * refused. Includes distance.c to reach the kernels themselves.
 */
#include "testutil.h"
#include "vector/distance.c"

#include <math.h>

enum { N = 3000, DIM = 48, QUERIES = 100, K = 10 };

/* Reproducible noise in [-0.5, 0.5). */
static float
noise(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xffff) / 65536.0f - 0.5f;
}

/* n vectors around 16 random centres (spread 1, noise 0.25): clustered, as embeddings are. */
static float *
random_vectors(size_t n, size_t dim, uint32_t seed)
{
    float *v = malloc(n * dim * sizeof *v);
    float *centres = malloc(16 * dim * sizeof *centres);
    assert_non_null(v);
    assert_non_null(centres);
    uint64_t s = 12345; /* the same centres for data and queries */
    for (size_t i = 0; i < 16 * dim; i++)
        centres[i] = 2 * noise(&s);
    s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        const float *c = centres + ((i * 7 + seed) % 16) * dim;
        for (size_t j = 0; j < dim; j++)
            v[i * dim + j] = c[j] + 0.5f * noise(&s);
    }
    free(centres);
    return v;
}

static double
recall_dim(lh_hnsw *h, const float *vectors, size_t dim, lh_metric metric, size_t ef)
{
    float *queries = random_vectors(QUERIES, dim, 99);
    float *base = malloc((size_t)N * dim * sizeof *base);
    memcpy(base, vectors, (size_t)N * dim * sizeof *base);
    if (metric == LH_METRIC_COSINE)
        for (size_t i = 0; i < N; i++)
            lh_vec_normalise(base + i * dim, dim);
    size_t found = 0;
    for (size_t q = 0; q < QUERIES; q++) {
        lh_hit want[K], got[K];
        size_t nw = lh_vec_exact(base, N, dim, metric, queries + q * dim, K, NULL, NULL, 2, want);
        size_t ng = lh_hnsw_search(h, queries + q * dim, K, ef, NULL, NULL, got);
        assert_int_equal(nw, K);
        assert_int_equal(ng, K);
        for (size_t i = 1; i < ng; i++)
            assert_true(got[i - 1].distance <= got[i].distance);
        for (size_t i = 0; i < nw; i++)
            for (size_t j = 0; j < ng; j++)
                if (want[i].id == got[j].id) {
                    found++;
                    break;
                }
    }
    free(base);
    free(queries);
    return (double)found / (QUERIES * K);
}

static double
recall(lh_hnsw *h, const float *vectors, lh_metric metric, size_t ef)
{
    return recall_dim(h, vectors, DIM, metric, ef);
}

static void
test_recall_each_metric(void **state)
{
    (void)state;
    float *v = random_vectors(N, DIM, 1);
    lh_metric metrics[] = {LH_METRIC_COSINE, LH_METRIC_L2, LH_METRIC_DOT};
    for (size_t m = 0; m < 3; m++) {
        lh_hnsw *h = NULL;
        lh_err err;
        /* default parameters: m 16, ef_construction 80, ef_search 30 */
        assert_int_equal(lh_hnsw_build(v, N, DIM, metrics[m], NULL, 2, &h, &err), 0);
        assert_int_equal(lh_hnsw_count(h), N);
        double r = recall(h, v, metrics[m], 0);
        print_message("metric %s simd %s recall@10 %.3f\n", lh_metric_name(metrics[m]),
                      lh_vec_simd_name(), r);
        /* inner product is no metric: graphs find less there (hnswlib too) */
        assert_true(r >= (metrics[m] == LH_METRIC_DOT ? 0.90 : 0.95));
        lh_hnsw_free(h);
    }
    free(v);
}

/* Graphs built on bfloat16 copies (where the CPU has AVX-512 BF16: walks and each new
 * node's choice of links) find what graphs built on floats find: recall@10 within 0.01 at
 * ef 10 and 30, every metric, on the same data. */
static void
test_bf16_build_same_recall(void **state)
{
    (void)state;
    lh_vec__kernels();
    if (kernels.dot_bf16 == NULL) {
        print_message("no AVX-512 BF16 here: every build scores floats\n");
        return;
    }
    float *v = random_vectors(N, 96, 5);
    lh_metric metrics[] = {LH_METRIC_COSINE, LH_METRIC_L2, LH_METRIC_DOT};
    for (size_t m = 0; m < 3; m++) {
        lh_hnsw *with = NULL, *without = NULL;
        lh_err err;
        /* one thread each: the same order of inserts, so only the scoring differs */
        assert_int_equal(lh_hnsw_build(v, N, 96, metrics[m], NULL, 1, &with, &err), 0);
        float (*saved)(const uint16_t *, const uint16_t *, size_t) = kernels.dot_bf16;
        kernels.dot_bf16 = NULL; /* the same build on floats alone */
        int rc = lh_hnsw_build(v, N, 96, metrics[m], NULL, 1, &without, &err);
        kernels.dot_bf16 = saved;
        assert_int_equal(rc, 0);
        assert_true(with->built_bf16); /* the two builds did differ in how they scored */
        assert_false(without->built_bf16);
        for (size_t ef = 10; ef <= 30; ef += 20) {
            double rb = recall_dim(with, v, 96, metrics[m], ef);
            double rf = recall_dim(without, v, 96, metrics[m], ef);
            print_message("metric %s ef %zu recall@10: bfloat16 walks %.3f, float %.3f\n",
                          lh_metric_name(metrics[m]), ef, rb, rf);
            assert_true(fabs(rb - rf) <= 0.01);
        }
        lh_hnsw_free(with);
        lh_hnsw_free(without);
    }
    free(v);
}

/* LAKEHOUSE_SIMD picks a lesser kernel set, and only that: "avx512" is AVX-512F without
 * the VNNI and BF16 products (it once fell through to AVX2). */
static void
test_kernel_choice(void **state)
{
    (void)state;
#if defined(__x86_64__) && defined(__GNUC__)
    bool f = __builtin_cpu_supports("avx512f");
    bool a2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    static const struct {
        const char *force;
    } cases[] = {{"scalar"}, {"avx2"}, {"avx512"}};
    for (size_t i = 0; i < 3; i++) {
        setenv("LAKEHOUSE_SIMD", cases[i].force, 1);
        choose();
        const char *want = i == 0   ? "scalar"
                           : i == 1 ? (a2 ? "avx2" : "scalar")
                           : f      ? "avx512"
                           : a2     ? "avx2"
                                    : "scalar";
        assert_string_equal(kernels.name, want);
        assert_null(kernels.dot_s8u8);
        assert_null(kernels.dot_bf16);
    }
    unsetenv("LAKEHOUSE_SIMD");
    choose();
    assert_string_equal(kernels.name, f ? "avx512" : a2 ? "avx2" : "scalar");
    if (f && __builtin_cpu_supports("avx512bw"))
        assert_true((kernels.dot_bf16 != NULL) == (bool)__builtin_cpu_supports("avx512bf16"));
#endif
}

static bool even_only(void *ctx, uint32_t id);

/* int8 codes against float vectors on the same data and graph settings: recall at the same
 * ef within 0.005 (the bound), distances exact (re-ranked on the floats), a quarter
 * of the vector bytes, and the same answers after a save and load. */
static void
test_int8_recall_and_sidecar(void **state)
{
    (void)state;
    float *v = random_vectors(N, DIM, 7);
    lh_metric metrics[] = {LH_METRIC_COSINE, LH_METRIC_L2, LH_METRIC_DOT};
    char *path = lh_test_write_bytes("hnsw-int8-", "", 0, 0600);
    for (size_t m = 0; m < 3; m++) {
        lh_hnsw *f = NULL, *q = NULL, *back = NULL;
        lh_err err;
        lh_hnsw_params pf = {.seed = 1}, pq = {.seed = 1, .quant = LH_QUANT_INT8};
        /* one thread: the same graph for both, so only the codes differ */
        assert_int_equal(lh_hnsw_build(v, N, DIM, metrics[m], &pf, 1, &f, &err), 0);
        assert_int_equal(lh_hnsw_build(v, N, DIM, metrics[m], &pq, 1, &q, &err), 0);
        assert_int_equal(lh_hnsw_get_params(q).quant, LH_QUANT_INT8);
        size_t efs[] = {10, 30, 80};
        for (size_t e = 0; e < 3; e++) {
            double rf = recall(f, v, metrics[m], efs[e]), rq = recall(q, v, metrics[m], efs[e]);
            print_message("metric %s ef %zu recall@10 float %.3f int8 %.3f\n",
                          lh_metric_name(metrics[m]), efs[e], rf, rq);
            assert_true(rq >= rf - 0.005);
        }
        double ratio = (double)lh_hnsw_vector_bytes(f) / (double)lh_hnsw_vector_bytes(q);
        assert_true(ratio >= 3.5);
        /* the distances of an int8 search are the float ones: the same as exact search's */
        lh_hit got[K], want[K];
        const float *query = v + 11 * DIM;
        size_t ng = lh_hnsw_search(q, query, K, 80, NULL, NULL, got);
        size_t nw = lh_hnsw_search(f, query, K, 80, NULL, NULL, want);
        assert_int_equal(ng, nw);
        for (size_t i = 0; i < ng; i++)
            if (got[i].id == want[i].id)
                assert_true(fabsf(got[i].distance - want[i].distance) <= 1e-5f);
        /* the sidecar keeps the codes: same answers, the floats left in the file */
        assert_int_equal(lh_hnsw_save(q, path, &err), 0);
        assert_int_equal(lh_hnsw_load(path, &back, &err), 0);
        assert_int_equal(lh_hnsw_get_params(back).quant, LH_QUANT_INT8);
        assert_true(lh_hnsw_mapped_bytes(back) == (size_t)N * DIM * sizeof(float));
        assert_true(lh_hnsw_memory(back) < lh_hnsw_memory(q));
        for (size_t t = 0; t < 20; t++) {
            lh_hit a[K], b[K];
            size_t na = lh_hnsw_search(q, v + t * 13 * DIM, K, 0, even_only, NULL, a);
            size_t nb = lh_hnsw_search(back, v + t * 13 * DIM, K, 0, even_only, NULL, b);
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, na * sizeof *a);
            for (size_t i = 0; i < na; i++)
                assert_int_equal(a[i].id % 2, 0);
        }
        lh_hnsw_free(back);
        /* a flipped code is caught by the checksum */
        size_t len = 0;
        char *bytes = lh_test_read_file(path, &len);
        bytes[len - 5] ^= 0x10;
        char *bad = lh_test_write_bytes("hnsw-int8-bad-", bytes, len, 0600);
        assert_int_equal(lh_hnsw_load(bad, &back, &err), LH_EINVAL);
        assert_string_equal(err.code, "index_corrupt");
        unlink(bad);
        free(bad);
        free(bytes);
        lh_hnsw_free(f);
        lh_hnsw_free(q);
    }
    unlink(path);
    free(path);
    free(v);
}

static bool
even_only(void *ctx, uint32_t id)
{
    (void)ctx;
    return id % 2 == 0;
}

static bool
few_only(void *ctx, uint32_t id)
{
    (void)ctx;
    return id % 500 == 3;
}

static bool
every_step(void *ctx, uint32_t id)
{
    uint32_t step = *(const uint32_t *)ctx;
    return id >= 3 && (id - 3) % step == 0;
}

static void
test_filtered_search(void **state)
{
    (void)state;
    float *v = random_vectors(N, DIM, 2);
    lh_hnsw *h = NULL;
    lh_err err;
    assert_int_equal(lh_hnsw_build(v, N, DIM, LH_METRIC_L2, NULL, 2, &h, &err), 0);
    lh_hit got[K], want[K];
    size_t n = lh_hnsw_search(h, v, K, 64, even_only, NULL, got);
    assert_int_equal(n, K);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i].id % 2, 0);
    /* 6 allowed positions: the graph walk still finds them all (few, so it walks far) */
    n = lh_hnsw_search(h, v + 5 * DIM, K, 64, few_only, NULL, got);
    size_t nw = lh_vec_exact(v, N, DIM, LH_METRIC_L2, v + 5 * DIM, K, few_only, NULL, 2, want);
    /* the true filtered top-k: exactly what brute force finds */
    assert_int_equal(nw, 6);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].id, want[i].id);
        assert_true(fabsf(got[i].distance - want[i].distance) < 1e-4f);
    }
    /* the bitmap form reads the allowed positions only, and agrees, on one thread or more,
     * for a few allowed positions and for many */
    for (int threads = 1; threads <= 3; threads++) {
        for (uint32_t step = 1; step <= 500; step = step * 7 + 2) {
            uint64_t *bits = calloc((N + 63) / 64, sizeof *bits);
            size_t n_allowed = 0;
            for (uint32_t p = 3; p < N; p += step) {
                bits[p / 64] |= (uint64_t)1 << (p % 64);
                n_allowed++;
            }
            lh_hit b[K];
            uint32_t step_ctx = step;
            size_t nb = lh_vec_exact_bits(v, N, DIM, LH_METRIC_L2, v + 9 * DIM, K, bits, n_allowed,
                                          threads, b);
            nw = lh_vec_exact(v, N, DIM, LH_METRIC_L2, v + 9 * DIM, K, every_step, &step_ctx,
                              threads, want);
            assert_int_equal(nb, nw);
            assert_int_equal(nb, n_allowed < K ? n_allowed : K);
            for (size_t i = 0; i < nb; i++)
                assert_int_equal(b[i].id, want[i].id);
            free(bits);
        }
    }
    lh_hnsw_free(h);
    free(v);
}

/* Planted outliers: points far from every cluster (random directions among 100,000
 * clustered vectors) have neighbours no nearer to a query about them than any other node,
 * so a beam search used to pass them by. Every one is found first at the default beam,
 * and again after the sidecar round trip (the graph's islands are found again at load). */
static void
test_planted_outliers_found(void **state)
{
    (void)state;
    enum { BIG = 100000, ODIM = 32, PLANTED = 24 };
    float *v = random_vectors(BIG, ODIM, 11);
    uint64_t s = 99;
    uint32_t planted[PLANTED];
    for (size_t o = 0; o < PLANTED; o++) {
        planted[o] = (uint32_t)(o * 4111 + 17);
        for (size_t j = 0; j < ODIM; j++)
            v[(size_t)planted[o] * ODIM + j] = 4 * noise(&s);
    }
    lh_hnsw *h = NULL, *back = NULL;
    lh_err err;
    assert_int_equal(lh_hnsw_build(v, BIG, ODIM, LH_METRIC_COSINE, NULL, 2, &h, &err), 0);
    char *path = lh_test_write_bytes("hnsw-out-", "", 0, 0600);
    assert_int_equal(lh_hnsw_save(h, path, &err), 0);
    assert_int_equal(lh_hnsw_load(path, &back, &err), 0);
    const lh_hnsw *graphs[] = {h, back};
    for (size_t gi = 0; gi < 2; gi++) {
        for (size_t o = 0; o < PLANTED; o++) {
            float q[ODIM];
            for (size_t j = 0; j < ODIM; j++)
                q[j] = v[(size_t)planted[o] * ODIM + j] + 0.2f * noise(&s);
            lh_hit hits[K];
            size_t got = lh_hnsw_search(graphs[gi], q, K, 0, NULL, NULL, hits);
            assert_true(got > 0);
            if (hits[0].id != planted[o])
                fail_msg("graph %zu: planted outlier %u not found first (got %u)", gi, planted[o],
                         hits[0].id);
        }
    }
    lh_hnsw_free(back);
    lh_hnsw_free(h);
    unlink(path);
    free(path);
    free(v);
}

static void
test_kernels_agree(void **state)
{
    (void)state;
    float *v = random_vectors(2, 1031, 3); /* odd length: the tails too */
    for (size_t len = 1; len <= 1031; len += 37) {
        float d0 = dot_scalar(v, v + 1031, len), l0 = l2_scalar(v, v + 1031, len);
#if defined(__x86_64__) && defined(__GNUC__)
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            assert_true(fabsf(dot_avx2(v, v + 1031, len) - d0) <= 1e-4f * (1 + fabsf(d0)));
            assert_true(fabsf(l2_avx2(v, v + 1031, len) - l0) <= 1e-4f * (1 + fabsf(l0)));
        }
        if (__builtin_cpu_supports("avx512f")) {
            assert_true(fabsf(dot_avx512(v, v + 1031, len) - d0) <= 1e-4f * (1 + fabsf(d0)));
            assert_true(fabsf(l2_avx512(v, v + 1031, len) - l0) <= 1e-4f * (1 + fabsf(l0)));
        }
#endif
    }
    uint8_t codes[1031];
    for (size_t i = 0; i < 1031; i++)
        codes[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 1; len <= 1031; len += 37) {
        float u0 = dot_u8_scalar(v, codes, len);
#if defined(__x86_64__) && defined(__GNUC__)
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            assert_true(fabsf(dot_u8_avx2(v, codes, len) - u0) <= 1e-4f * (1 + fabsf(u0)) * 255);
        if (__builtin_cpu_supports("avx512f"))
            assert_true(fabsf(dot_u8_avx512(v, codes, len) - u0) <= 1e-4f * (1 + fabsf(u0)) * 255);
        if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni")) {
            int8_t q8[1031];
            int32_t want = 0;
            for (size_t i = 0; i < len; i++) {
                q8[i] = (int8_t)((int)(i * 53 % 255) - 127);
                want += q8[i] * codes[i];
            }
            assert_int_equal(dot_s8u8_vnni(q8, codes, len), want); /* integers: exact */
        }
#endif
    }
    /* bfloat16: rounding to nearest even, and products summed as plain C sums them */
    assert_int_equal(to_bf16(1.0f), 0x3f80);
    assert_int_equal(to_bf16(-2.0f), 0xc000);
    float up, tie, tie_odd;
    uint32_t bits = 0x3f808001u; /* just past halfway above 1.0: rounds up */
    memcpy(&up, &bits, 4);
    bits = 0x3f808000u; /* halfway, even below: stays */
    memcpy(&tie, &bits, 4);
    bits = 0x3f818000u; /* halfway, odd below: rounds up to even */
    memcpy(&tie_odd, &bits, 4);
    assert_int_equal(to_bf16(up), 0x3f81);
    assert_int_equal(to_bf16(tie), 0x3f80);
    assert_int_equal(to_bf16(tie_odd), 0x3f82);
    uint16_t a16[1031], b16[1031];
    lh_vec__to_bf16(v, a16, 1031);
    lh_vec__to_bf16(v + 1031, b16, 1031);
    for (size_t len = 1; len <= 1031; len += 37) {
        double want = 0;
        for (size_t i = 0; i < len; i++) {
            uint32_t x = (uint32_t)a16[i] << 16, y = (uint32_t)b16[i] << 16;
            float fx, fy;
            memcpy(&fx, &x, 4);
            memcpy(&fy, &y, 4);
            want += (double)fx * fy;
        }
#if defined(__x86_64__) && defined(__GNUC__)
        if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16"))
            assert_true(fabs(dot_bf16_avx512(a16, b16, len) - want) <= 1e-4 * (1 + fabs(want)));
#endif
        /* and the bfloat16 product is near the float one (8 bits of mantissa) */
        float d0 = dot_scalar(v, v + 1031, len);
        assert_true(fabs(want - d0) <= 0.02 * (1 + sqrt((double)len)));
    }
    free(v);
}

static void
test_save_load_and_corruption(void **state)
{
    (void)state;
    float *v = random_vectors(N, DIM, 4);
    lh_hnsw *h = NULL, *back = NULL;
    lh_err err;
    assert_int_equal(lh_hnsw_build(v, N, DIM, LH_METRIC_COSINE, NULL, 2, &h, &err), 0);
    char *path = lh_test_write_bytes("hnsw-", "", 0, 0600);
    assert_int_equal(lh_hnsw_save(h, path, &err), 0);
    assert_int_equal(lh_hnsw_load(path, &back, &err), 0);
    assert_int_equal(lh_hnsw_count(back), N);
    for (size_t q = 0; q < 20; q++) {
        lh_hit a[K], b[K];
        size_t na = lh_hnsw_search(h, v + q * 7 * DIM, K, 0, NULL, NULL, a);
        size_t nb = lh_hnsw_search(back, v + q * 7 * DIM, K, 0, NULL, NULL, b);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
    }
    lh_hnsw_free(back);
    /* damage: a flipped byte anywhere, a truncation, a wrong magic */
    size_t len = 0;
    char *bytes = lh_test_read_file(path, &len);
    assert_non_null(bytes);
    size_t spots[] = {70, len / 2, len - 3};
    for (size_t i = 0; i < 3; i++) {
        bytes[spots[i]] ^= 0x40;
        char *bad = lh_test_write_bytes("hnsw-bad-", bytes, len, 0600);
        assert_int_equal(lh_hnsw_load(bad, &back, &err), LH_EINVAL);
        assert_string_equal(err.code, "index_corrupt");
        unlink(bad);
        free(bad);
        bytes[spots[i]] ^= 0x40;
    }
    char *short_file = lh_test_write_bytes("hnsw-short-", bytes, len - 100, 0600);
    assert_int_equal(lh_hnsw_load(short_file, &back, &err), LH_EINVAL);
    unlink(short_file);
    free(short_file);
    bytes[0] = 'X';
    char *magic = lh_test_write_bytes("hnsw-magic-", bytes, len, 0600);
    assert_int_equal(lh_hnsw_load(magic, &back, &err), LH_EINVAL);
    assert_non_null(strstr(err.detail, "magic"));
    unlink(magic);
    free(magic);
    free(bytes);
    unlink(path);
    free(path);
    lh_hnsw_free(h);
    free(v);
}

/* Every count, not only multiples of 8: the file's pieces (levels, padding) end at
 * any byte, and the checksum must be the same whether it is fed in pieces (save) or
 * whole (load). */
static void
test_save_load_every_size(void **state)
{
    (void)state;
    float *v = random_vectors(130, DIM, 5);
    char *path = lh_test_write_bytes("hnsw-n-", "", 0, 0600);
    for (size_t n = 1; n <= 130; n += (n < 20 ? 1 : 11)) {
        lh_hnsw *h = NULL, *back = NULL;
        lh_err err;
        assert_int_equal(lh_hnsw_build(v, n, DIM, LH_METRIC_L2, NULL, 2, &h, &err), 0);
        assert_int_equal(lh_hnsw_save(h, path, &err), 0);
        if (lh_hnsw_load(path, &back, &err) != 0)
            fail_msg("n=%zu: %s (%s)", n, err.message, err.detail);
        assert_int_equal(lh_hnsw_count(back), n);
        lh_hnsw_free(back);
        lh_hnsw_free(h);
    }
    unlink(path);
    free(path);
    free(v);
}

static void
test_bad_parameters_and_empty(void **state)
{
    (void)state;
    lh_hnsw *h = NULL;
    lh_err err;
    float one[4] = {1, 2, 3, 4};
    lh_hnsw_params p = {.m = 1};
    assert_int_equal(lh_hnsw_build(one, 1, 4, LH_METRIC_L2, &p, 1, &h, &err), LH_EINVAL);
    p = (lh_hnsw_params){.quant = (lh_quant)7};
    assert_int_equal(lh_hnsw_build(one, 1, 4, LH_METRIC_L2, &p, 1, &h, &err), LH_EINVAL);
    p = (lh_hnsw_params){.quant = LH_QUANT_INT8}; /* one vector, a constant range: scale 0 */
    assert_int_equal(lh_hnsw_build(one, 1, 4, LH_METRIC_L2, &p, 1, &h, &err), 0);
    lh_hit same;
    assert_int_equal(lh_hnsw_search(h, one, 5, 0, NULL, NULL, &same), 1);
    assert_true(same.distance == 0);
    lh_hnsw_free(h);
    assert_int_equal(lh_quant_parse("int8"), LH_QUANT_INT8);
    assert_int_equal(lh_quant_parse("int4"), -1);
    assert_int_equal(lh_hnsw_build(one, 1, 0, LH_METRIC_L2, NULL, 1, &h, &err), LH_EINVAL);
    assert_int_equal(lh_hnsw_build(one, 0, 4, LH_METRIC_L2, NULL, 1, &h, &err), 0);
    lh_hit hit;
    assert_int_equal(lh_hnsw_search(h, one, 1, 0, NULL, NULL, &hit), 0);
    lh_hnsw_free(h);
    assert_int_equal(lh_hnsw_build(one, 1, 4, LH_METRIC_L2, NULL, 1, &h, &err), 0);
    assert_int_equal(lh_hnsw_search(h, one, 5, 0, NULL, NULL, &hit), 1);
    assert_int_equal(hit.id, 0);
    lh_hnsw_free(h);
    assert_int_equal(lh_metric_parse("cosine"), LH_METRIC_COSINE);
    assert_int_equal(lh_metric_parse("hamming"), -1);
}

static float
cosine(const float *a, const float *b)
{
    float s = 0;
    for (size_t i = 0; i < LH_EMBED_BUILTIN_DIM; i++)
        s += a[i] * b[i];
    return s;
}

static void
test_builtin_embedding(void **state)
{
    (void)state;
    float a[LH_EMBED_BUILTIN_DIM], b[LH_EMBED_BUILTIN_DIM], c[LH_EMBED_BUILTIN_DIM];
    const char *t1 = "Senior Kubernetes engineer, Chicago";
    lh_embed_builtin(t1, strlen(t1), a);
    lh_embed_builtin(t1, strlen(t1), b);
    assert_memory_equal(a, b, sizeof a);             /* deterministic */
    assert_true(fabsf(cosine(a, a) - 1.0f) < 1e-5f); /* unit length */
    const char *t2 = "kubernetes ENGINEER (senior) in chicago";
    const char *t3 = "Registered nurse, night shifts, Denver";
    lh_embed_builtin(t2, strlen(t2), b);
    lh_embed_builtin(t3, strlen(t3), c);
    assert_true(cosine(a, b) > 0.5f);                /* the same words, other case and order */
    assert_true(cosine(a, c) < cosine(a, b) - 0.3f); /* other words */
    /* Fixed points of the recipe: any change to it (hash, features, weights, dimension)
     * moves them, and must bump builtin-v1, since stored embeddings would no longer match
     * new queries. "a" has two features: the word "w:a" (weight 1.0, FNV-1a picks +31) and
     * its one trigram "c:<a>" (0.5, picks -171); unit length makes them 2/sqrt(5) and
     * -1/sqrt(5). */
    lh_embed_builtin("a", 1, c);
    for (size_t i = 0; i < LH_EMBED_BUILTIN_DIM; i++) {
        float want = i == 31 ? 2.0f / sqrtf(5.0f) : i == 171 ? -1.0f / sqrtf(5.0f) : 0.0f;
        if (fabsf(c[i] - want) > 1e-6f)
            fail_msg("builtin(\"a\")[%zu] = %f, want %f", i, (double)c[i], (double)want);
    }
    /* t1: words, pairs and trigrams together; sum of (i + 1) * v[i] as recorded for v1 */
    lh_embed_builtin(t1, strlen(t1), a);
    double weighted = 0;
    size_t nonzero = 0;
    for (size_t i = 0; i < LH_EMBED_BUILTIN_DIM; i++) {
        weighted += (double)(i + 1) * a[i];
        nonzero += a[i] != 0;
    }
    assert_int_equal(nonzero, 37);
    assert_true(fabs(weighted - 353.990722) < 1e-3);
    lh_embed_builtin("", 0, c);
    assert_true(cosine(c, c) == 0.0f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recall_each_metric),
        cmocka_unit_test(test_bf16_build_same_recall),
        cmocka_unit_test(test_filtered_search),
        cmocka_unit_test(test_int8_recall_and_sidecar),
        cmocka_unit_test(test_planted_outliers_found),
        cmocka_unit_test(test_save_load_every_size),
        cmocka_unit_test(test_kernels_agree),
        cmocka_unit_test(test_kernel_choice),
        cmocka_unit_test(test_save_load_and_corruption),
        cmocka_unit_test(test_bad_parameters_and_empty),
        cmocka_unit_test(test_builtin_embedding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
