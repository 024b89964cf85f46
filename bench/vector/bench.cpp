// bench/vector/bench.cpp — our HNSW (src/vector, C) beside hnswlib (Debian libhnswlib-dev,
// header-only C++) on the same vectors, parameters and machine, in one process:
//   build time with THREADS threads, recall@10 against exact search and single-thread
//   latency (p50, p95) at several ef, memory; and our exact search beside a plain loop.
// usage: bench N DIM QUERIES THREADS M EF_CONSTRUCTION [ef ...]
// Data (env BENCH_DATA): "clustered" (default) — N vectors around 64 shared random
// centres (spread 1, noise 0.5): hard, every dimension carries noise; "lowrank" — points
// of a 32-dimensional latent space (16 clusters) mapped into DIM dimensions by one random
// linear map, plus a little noise (0.01): like text embeddings, whose intrinsic dimension
// is far below their width; "file:PATH" — real vectors from PATH.base and PATH.queries
// (bench/vector/words.c: the words of Debian's wamerican word list, builtin model, 384
// dims). L2; queries come from the same distribution. Then OUTLIERS
// (env, default 50) of the N vectors are replaced by points far from every cluster, and
// each is searched for (itself plus a little noise) at ef 30: how many each index finds
// first. Then the same graph with int8 codes (lh_hnsw_quantize): each sidecar is saved and
// mapped back as the server serves it, and searched beside the float one and hnswlib:
// recall, latency, bytes per vector and resident memory (RssAnon + RssFile of the process
// before and after each load, and after its searches). Never fails on speed.
#include <hnswlib/hnswlib.h>

// the C headers' atomic members, as C++ spells them
#include <atomic>
using std::atomic_bool;
using std::atomic_int;
using std::atomic_llong;
using std::atomic_long;
using std::atomic_size_t;
using std::atomic_uint_fast64_t;

extern "C" {
#include "vector/vector.h"
}

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>
#include <unistd.h>

static double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static float noise(uint64_t &s) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((s >> 40) & 0xffff) / 65536.0f - 0.5f;
}

static std::vector<float> make(size_t n, size_t dim, uint64_t seed, const std::vector<float> &centres) {
    std::vector<float> v(n * dim);
    uint64_t s = seed;
    size_t nc = centres.size() / dim;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1;
        const float *c = &centres[((s >> 33) % nc) * dim];
        for (size_t j = 0; j < dim; j++)
            v[i * dim + j] = c[j] + noise(s);
    }
    return v;
}

// Low intrinsic dimension: latent points (clusters in 32 dimensions) through a fixed map.
static std::vector<float> make_lowrank(size_t n, size_t dim, uint64_t seed) {
    const size_t latent = 32, nc = 16;
    uint64_t s = 4242;
    std::vector<float> map(latent * dim), centres(nc * latent);
    for (auto &x : map)
        x = noise(s) / 2;
    for (auto &x : centres)
        x = 4 * noise(s);
    std::vector<float> v(n * dim), z(latent);
    s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1;
        const float *c = &centres[((s >> 33) % nc) * latent];
        for (size_t l = 0; l < latent; l++)
            z[l] = c[l] + noise(s);
        for (size_t j = 0; j < dim; j++) {
            float x = 0;
            for (size_t l = 0; l < latent; l++)
                x += z[l] * map[l * dim + j];
            v[i * dim + j] = x + 0.02f * noise(s);
        }
    }
    return v;
}

// Up to max rows of dim float32 from a file (little-endian, as words.c writes them).
static std::vector<float> read_rows(const std::string &path, size_t dim, size_t max) {
    FILE *f = fopen(path.c_str(), "rb");
    if (!f) {
        fprintf(stderr, "bench: cannot read %s\n", path.c_str());
        exit(1);
    }
    std::vector<float> v(max * dim);
    size_t got = fread(v.data(), sizeof(float) * dim, max, f);
    fclose(f);
    v.resize(got * dim);
    return v;
}

// The process's resident anonymous and file-backed bytes (/proc/self/status).
static void rss(double &anon_mib, double &file_mib) {
    anon_mib = file_mib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        long kb = 0;
        if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
            anon_mib = kb / 1024.0;
        else if (sscanf(line, "RssFile: %ld kB", &kb) == 1)
            file_mib = kb / 1024.0;
    }
    if (f)
        fclose(f);
}

// Save h to path and map it back (the server's way of holding a committed index).
static lh_hnsw *save_and_map(const lh_hnsw *h, const std::string &path, double &anon, double &file) {
    lh_err err;
    lh_hnsw *back = nullptr;
    if (lh_hnsw_save(h, path.c_str(), &err) != 0) {
        fprintf(stderr, "save failed: %s\n", err.message);
        exit(1);
    }
    double a0, f0;
    rss(a0, f0);
    if (lh_hnsw_load(path.c_str(), &back, &err) != 0) {
        fprintf(stderr, "load failed: %s\n", err.message);
        exit(1);
    }
    rss(anon, file);
    anon -= a0;
    file -= f0;
    return back;
}

static double pct(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, (size_t)(p * (double)v.size()))];
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: bench N DIM QUERIES THREADS M EF_CONSTRUCTION ef...\n");
        return 2;
    }
    size_t n = strtoull(argv[1], nullptr, 10), dim = strtoull(argv[2], nullptr, 10);
    size_t nq = strtoull(argv[3], nullptr, 10);
    int threads = atoi(argv[4]);
    unsigned m = (unsigned)atoi(argv[5]), efc = (unsigned)atoi(argv[6]);
    std::vector<size_t> efs;
    for (int i = 7; i < argc; i++)
        efs.push_back(strtoull(argv[i], nullptr, 10));
    const size_t k = 10;

    uint64_t s = 42;
    std::vector<float> centres(64 * dim);
    for (auto &c : centres)
        c = 2 * noise(s);
    const char *kind = getenv("BENCH_DATA") ? getenv("BENCH_DATA") : "clustered";
    bool lowrank = strcmp(kind, "lowrank") == 0, from_file = strncmp(kind, "file:", 5) == 0;
    std::vector<float> data, queries;
    if (from_file) { // real vectors (words.c): N and QUERIES are at most what the files hold
        data = read_rows(std::string(kind + 5) + ".base", dim, n);
        queries = read_rows(std::string(kind + 5) + ".queries", dim, nq);
        n = data.size() / dim;
        nq = queries.size() / dim;
    } else {
        data = lowrank ? make_lowrank(n, dim, 1) : make(n, dim, 1, centres);
        queries = lowrank ? make_lowrank(nq, dim, 2) : make(nq, dim, 2, centres);
    }
    // planted outliers: far from every cluster (the queries' truth is computed with them in)
    size_t n_out = getenv("OUTLIERS") ? strtoull(getenv("OUTLIERS"), nullptr, 10) : 50;
    if (n_out > n / 4)
        n_out = n / 4;
    std::vector<size_t> planted;
    uint64_t os = 31337;
    for (size_t o = 0; o < n_out; o++) {
        size_t at = o * (n / n_out) + 3;
        planted.push_back(at);
        for (size_t j = 0; j < dim; j++)
            data[at * dim + j] = 12 * noise(os);
    }
    printf("bench/vector — %zu x %zu float32 (%s), L2, %zu queries, k=%zu, M=%u, "
           "ef_construction=%u, build threads=%d, SIMD %s\n",
           n, dim,
           from_file ? kind + 5 : lowrank ? "low rank: 32-dim latent, 16 clusters" : "64 clusters",
           nq, k, m,
           efc, threads, lh_vec_simd_name());

    // ground truth (and our exact search beside a plain loop)
    std::vector<std::vector<uint32_t>> truth(nq);
    std::vector<lh_hit> hits(k);
    double t0 = now_s();
    for (size_t q = 0; q < nq; q++) {
        size_t got = lh_vec_exact(data.data(), n, (uint32_t)dim, LH_METRIC_L2, &queries[q * dim], k,
                                  nullptr, nullptr, threads, hits.data());
        for (size_t i = 0; i < got; i++)
            truth[q].push_back(hits[i].id);
    }
    double exact_ms = (now_s() - t0) * 1000 / (double)nq;
    t0 = now_s();
    size_t loop_q = std::min<size_t>(nq, 20);
    volatile float sink = 0;
    for (size_t q = 0; q < loop_q; q++) {
        std::vector<std::pair<float, uint32_t>> all(n);
        for (size_t i = 0; i < n; i++) {
            float d = 0;
            for (size_t j = 0; j < dim; j++) {
                float x = data[i * dim + j] - queries[q * dim + j];
                d += x * x;
            }
            all[i] = {d, (uint32_t)i};
        }
        std::partial_sort(all.begin(), all.begin() + k, all.end());
        sink = sink + all[0].first;
    }
    double loop_ms = (now_s() - t0) * 1000 / (double)loop_q;
    printf("exact top-%zu per query: ours %.2f ms (SIMD, %d threads), plain loop %.2f ms (1 thread, -O2)\n",
           k, exact_ms, threads, loop_ms);

    // build: ours
    lh_hnsw_params p{m, efc, 30, 7};
    lh_hnsw *ours = nullptr;
    lh_err err;
    t0 = now_s();
    if (lh_hnsw_build(data.data(), n, (uint32_t)dim, LH_METRIC_L2, &p, threads, &ours, &err) != 0) {
        fprintf(stderr, "build failed: %s\n", err.message);
        return 1;
    }
    double ours_build = now_s() - t0;

    // build: hnswlib, the same points from THREADS threads (addPoint is thread-safe)
    hnswlib::L2Space space(dim);
    hnswlib::HierarchicalNSW<float> theirs(&space, n, m, efc, 7);
    t0 = now_s();
    theirs.addPoint(&data[0], 0);
    std::atomic<size_t> next(1);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++)
        pool.emplace_back([&] {
            for (size_t i; (i = next.fetch_add(1)) < n;)
                theirs.addPoint(&data[i * dim], i);
        });
    for (auto &t : pool)
        t.join();
    double theirs_build = now_s() - t0;
    size_t theirs_mem = theirs.max_elements_ * theirs.size_data_per_element_;
    for (size_t i = 0; i < n; i++)
        theirs_mem += theirs.element_levels_[i] * theirs.size_links_per_element_;
    printf("build: ours %.2f s, hnswlib %.2f s (ratio %.2f); memory: ours %.1f MiB, hnswlib %.1f MiB\n",
           ours_build, theirs_build, ours_build / theirs_build, lh_hnsw_memory(ours) / 1048576.0,
           theirs_mem / 1048576.0);

    // the same graph, float and int8, each saved and mapped back as the server holds it
    std::string dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    std::string fpath = dir + "/bench-float-" + std::to_string(getpid()) + ".bin";
    std::string qpath = dir + "/bench-int8-" + std::to_string(getpid()) + ".bin";
    double f_anon, f_file, q_anon, q_file;
    lh_hnsw *flt = save_and_map(ours, fpath, f_anon, f_file);
    t0 = now_s();
    if (lh_hnsw_quantize(ours, &err) != 0) {
        fprintf(stderr, "quantize failed: %s\n", err.message);
        return 1;
    }
    double quant_s = now_s() - t0;
    lh_hnsw *q8 = save_and_map(ours, qpath, q_anon, q_file);
    lh_hnsw_free(ours);
    ours = flt;
    printf("int8 codes: %.2f s to quantize; vector bytes per vector: float %.0f, int8 %.1f (%.2fx less); "
           "index memory per vector: float %.0f B, int8 %.0f B, hnswlib %.0f B\n",
           quant_s, (double)lh_hnsw_vector_bytes(flt) / n, (double)lh_hnsw_vector_bytes(q8) / n,
           (double)lh_hnsw_vector_bytes(flt) / (double)lh_hnsw_vector_bytes(q8),
           (double)lh_hnsw_memory(flt) / n, (double)lh_hnsw_memory(q8) / n, (double)theirs_mem / n);
    printf("resident after mapping: float +%.1f MiB anon +%.1f MiB file; int8 +%.1f MiB anon "
           "+%.1f MiB file (float vectors left in the file: %.1f MiB)\n",
           f_anon, f_file, q_anon, q_file, lh_hnsw_mapped_bytes(q8) / 1048576.0);

    printf("%6s %10s %10s %10s %10s %10s %10s %10s %10s %10s\n", "ef", "ours rec", "int8 rec",
           "hnswlib", "ours p50", "int8 p50", "hnswl p50", "ours p95", "int8 p95", "hnswl p95");
    double ratio_sum = 0, q_ratio_sum = 0;
    for (size_t ef : efs) {
        theirs.setEf(ef);
        std::vector<double> lo, lq, lt;
        size_t found_o = 0, found_q = 0, found_t = 0;
        for (int rep = 0; rep < 2; rep++) { // the first pass warms caches
            lo.clear();
            lq.clear();
            lt.clear();
            found_o = found_q = found_t = 0;
            for (size_t q = 0; q < nq; q++) {
                const float *qv = &queries[q * dim];
                double a = now_s();
                size_t got = lh_hnsw_search(ours, qv, k, ef, nullptr, nullptr, hits.data());
                double b = now_s();
                auto res = theirs.searchKnn(qv, k);
                double c = now_s();
                std::vector<lh_hit> h8(k);
                size_t got8 = lh_hnsw_search(q8, qv, k, ef, nullptr, nullptr, h8.data());
                double d = now_s();
                lo.push_back((b - a) * 1e6);
                lt.push_back((c - b) * 1e6);
                lq.push_back((d - c) * 1e6);
                for (size_t i = 0; i < got; i++)
                    found_o += std::find(truth[q].begin(), truth[q].end(), hits[i].id) != truth[q].end();
                for (size_t i = 0; i < got8; i++)
                    found_q += std::find(truth[q].begin(), truth[q].end(), h8[i].id) != truth[q].end();
                while (!res.empty()) {
                    found_t += std::find(truth[q].begin(), truth[q].end(), (uint32_t)res.top().second) !=
                               truth[q].end();
                    res.pop();
                }
            }
        }
        double ro = (double)found_o / (double)(nq * k), rt = (double)found_t / (double)(nq * k);
        double rq = (double)found_q / (double)(nq * k);
        printf("%6zu %10.4f %10.4f %10.4f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", ef, ro, rq,
               rt, pct(lo, 0.5), pct(lq, 0.5), pct(lt, 0.5), pct(lo, 0.95), pct(lq, 0.95),
               pct(lt, 0.95));
        ratio_sum += pct(lo, 0.5) / pct(lt, 0.5);
        q_ratio_sum += pct(lq, 0.5) / pct(lo, 0.5);
    }
    printf("p50 ratios (mean over ef): ours/hnswlib %.2f, int8/float %.2f\n",
           ratio_sum / (double)efs.size(), q_ratio_sum / (double)efs.size());
    double a1, f1, a2, f2;
    rss(a1, f1);
    printf("resident after the searches: anon %.1f MiB, file %.1f MiB (both indexes, hnswlib, the data)\n",
           a1, f1);
    lh_hnsw_free(q8);
    rss(a2, f2);
    printf("freeing the int8 index gave back %.1f MiB anon, %.1f MiB file\n", a1 - a2, f1 - f2);
    unlink(fpath.c_str());
    unlink(qpath.c_str());
    // the planted outliers, each asked for at ef 30
    theirs.setEf(30);
    size_t first_o = 0, first_t = 0;
    std::vector<float> q(dim);
    for (size_t at : planted) {
        for (size_t j = 0; j < dim; j++)
            q[j] = data[at * dim + j] + 0.1f * noise(os);
        size_t got = lh_hnsw_search(ours, q.data(), k, 30, nullptr, nullptr, hits.data());
        first_o += got > 0 && hits[0].id == at;
        auto res = theirs.searchKnn(q.data(), k);
        size_t best = SIZE_MAX;
        while (!res.empty()) { // the max-heap's last is its nearest
            best = res.top().second;
            res.pop();
        }
        first_t += best == at;
    }
    printf("planted outliers found first at ef 30: ours %zu/%zu, hnswlib %zu/%zu\n", first_o,
           planted.size(), first_t, planted.size());
    lh_hnsw_free(ours);
    (void)sink;
    return 0;
}
