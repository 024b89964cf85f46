/*
 * distance.c — vector distances, chosen once at run time by what the CPU can do:
 * AVX-512F, AVX2+FMA, or plain C. Every kernel computes the same sums; results agree
 * within float rounding (the order of additions differs), which the unit tests bound.
 *
 * Distances are "smaller is closer" for every metric: squared L2; 1 - dot for cosine
 * (vectors are L2-normalised when stored and when queried); -dot for inner product.
 * Thread safety: lh_vec__init runs once (pthread_once); the kernels are pure.
 */
#include "vector/vector_int.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static float
dot_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float
l2_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

/* Σ q[i] * c[i] over byte codes: the inner sum of every distance to an int8 index's codes
 * (hnsw.c folds the per-dimension scale and offset into q). */
static float
dot_u8_scalar(const float *q, const uint8_t *c, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += q[i] * c[i];
        s1 += q[i + 1] * c[i + 1];
        s2 += q[i + 2] * c[i + 2];
        s3 += q[i + 3] * c[i + 3];
    }
    for (; i < n; i++)
        s0 += q[i] * c[i];
    return (s0 + s1) + (s2 + s3);
}

/* f as bfloat16 (its top 16 bits), rounded to nearest even; NaN is not expected here. */
static uint16_t
to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

void
lh_vec__to_bf16(const float *in, uint16_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = to_bf16(in[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static float
hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static float
dot_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma"))) static float
l2_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

/* 16 codes at a time: widened to 32-bit integers, converted, multiplied in. */
__attribute__((target("avx2,fma"))) static float
dot_u8_avx2(const float *q, const uint8_t *c, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(c + i));
        __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
        __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), lo, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), hi, s1);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += q[i] * c[i];
    return s;
}

__attribute__((target("avx512f"))) static float
dot_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) { /* the tail under a mask: no scalar loop */
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) static float
l2_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
__attribute__((target("avx512f"))) static float
dot_u8_avx512(const float *q, const uint8_t *c, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a =
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + i))));
        __m512 b = _mm512_cvtepi32_ps(
            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + i + 16))));
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), a, s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), b, s1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 a =
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + i))));
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), a, s0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++)
        s += q[i] * c[i];
    return s;
}

/* Σ q[i] * c[i] in integers, 64 codes per instruction (AVX-512 VNNI's dpbusd: unsigned
 * codes times signed query bytes, summed in 32 bits), the tail under a mask. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static int32_t
dot_s8u8_vnni(const int8_t *q, const uint8_t *c, size_t n)
{
    __m512i s = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        s = _mm512_dpbusd_epi32(s, _mm512_loadu_si512(c + i), _mm512_loadu_si512(q + i));
    if (i < n) {
        __mmask64 m = (__mmask64)((~0ULL) >> (64 - (n - i)));
        s = _mm512_dpbusd_epi32(s, _mm512_maskz_loadu_epi8(m, c + i),
                                _mm512_maskz_loadu_epi8(m, q + i));
    }
    return _mm512_reduce_add_epi32(s);
}

/* Σ a[i] * b[i] over bfloat16 values, 32 products per instruction (AVX-512 BF16's
 * dpbf16ps, summed in float), the tail under a mask. */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static float
dot_bf16_avx512(const uint16_t *a, const uint16_t *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(a + i),
                              (__m512bh)_mm512_loadu_si512(b + i));
        s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_loadu_si512(a + i + 32),
                              (__m512bh)_mm512_loadu_si512(b + i + 32));
    }
    for (; i < n; i += 32) {
        __mmask32 m = n - i >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (n - i)) - 1);
        s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_maskz_loadu_epi16(m, a + i),
                              (__m512bh)_mm512_maskz_loadu_epi16(m, b + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
#endif

static lh_vec_kernels kernels;
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

static void
choose(void)
{
    kernels = (lh_vec_kernels){dot_scalar, l2_scalar, dot_u8_scalar, NULL, NULL, "scalar"};
#if defined(__x86_64__) && defined(__GNUC__)
    /* tests compare every kernel: "scalar", "avx2", "avx512" (no VNNI or BF16 products) */
    const char *force = getenv("LAKEHOUSE_SIMD");
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    bool bw = __builtin_cpu_supports("avx512bw");
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    bool extras = !(force && strcmp(force, "avx512") == 0);
    if (force && strcmp(force, "scalar") == 0)
        avx512 = avx2 = false;
    else if (force && strcmp(force, "avx2") == 0)
        avx512 = false;
    if (avx512) {
        kernels = (lh_vec_kernels){dot_avx512, l2_avx512, dot_u8_avx512, NULL, NULL, "avx512"};
        if (extras && bw && __builtin_cpu_supports("avx512vnni"))
            kernels.dot_s8u8 = dot_s8u8_vnni;
        if (extras && bw && __builtin_cpu_supports("avx512bf16"))
            kernels.dot_bf16 = dot_bf16_avx512;
    } else if (avx2) {
        kernels = (lh_vec_kernels){dot_avx2, l2_avx2, dot_u8_avx2, NULL, NULL, "avx2"};
    }
#endif
}

const lh_vec_kernels *
lh_vec__kernels(void)
{
    pthread_once(&kernels_once, choose);
    return &kernels;
}

const char *
lh_vec_simd_name(void)
{
    return lh_vec__kernels()->name;
}

float
lh_vec__distance(const lh_vec_kernels *k, lh_metric metric, const float *a, const float *b,
                 size_t dim)
{
    switch (metric) {
    case LH_METRIC_L2:
        return k->l2(a, b, dim);
    case LH_METRIC_COSINE:
        return 1.0f - k->dot(a, b, dim);
    default:
        return -k->dot(a, b, dim);
    }
}

void
lh_vec_normalise(float *v, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    if (s <= 0)
        return;
    float inv = (float)(1.0 / sqrt(s));
    for (size_t i = 0; i < dim; i++)
        v[i] *= inv;
}
