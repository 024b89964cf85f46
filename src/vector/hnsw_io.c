/*
 * hnsw_io.c — the index sidecar: written once per generation, mapped read-only at
 * start instead of rebuilding. The format (little-endian) is in src/vector/README.md;
 * loading checks the magic, the version, every size against the file's length and a
 * checksum of everything after the header, and refuses the file otherwise.
 */
#include "vector/vector_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "LHHNSW\r\n"
#define FORMAT_VERSION 1u
#define HEADER_BYTES 64u

typedef struct header {
    char magic[8];
    uint32_t version, dim, metric, m, m0, ef_construction, ef_search, entry;
    int32_t max_level;
    uint32_t reserved;
    uint64_t n, checksum;
} header;
_Static_assert(sizeof(header) == HEADER_BYTES, "the header is 64 bytes on disk");

/* A 64-bit checksum over a byte stream fed in pieces of any size (not cryptographic: it
 * catches torn and damaged files). Words of 8 bytes, then the tail byte by byte. */
typedef struct sum64 {
    uint64_t h;
    uint8_t part[8];
    size_t n_part;
} sum64;

static void
sum_word(sum64 *s, const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    s->h = (s->h ^ w) * 0x100000001b3ULL;
    s->h ^= s->h >> 29;
}

static void
sum_feed(sum64 *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0 && s->n_part > 0) { /* finish a word begun by the last piece */
        s->part[s->n_part++] = *p++;
        n--;
        if (s->n_part == 8) {
            sum_word(s, s->part);
            s->n_part = 0;
        }
    }
    if (s->n_part > 0)
        return; /* the piece ended inside the pending word */
    for (; n >= 8; n -= 8, p += 8)
        sum_word(s, p);
    memcpy(s->part, p, n);
    s->n_part = n;
}

static uint64_t
sum_finish(sum64 *s)
{
    for (size_t i = 0; i < s->n_part; i++)
        s->h = (s->h ^ s->part[i]) * 0x100000001b3ULL;
    return s->h;
}

#define SUM_INIT {0xcbf29ce484222325ULL, {0}, 0}

static size_t
pad4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}

static int
write_all(int fd, const void *p, size_t n, sum64 *sum)
{
    if (sum)
        sum_feed(sum, p, n);
    return lh_write_all(fd, p, n);
}

/* The payload in file order: vectors, levels (padded), links0, upper lists. */
static int
write_payload(const lh_hnsw *h, int fd, sum64 *sum)
{
    static const uint8_t zeros[4] = {0};
    int rc = write_all(fd, h->vectors, h->n * h->dim * sizeof(float), sum);
    if (rc == 0)
        rc = write_all(fd, h->levels, h->n, sum);
    if (rc == 0)
        rc = write_all(fd, zeros, pad4(h->n) - h->n, sum);
    if (rc == 0)
        rc = write_all(fd, h->links0, h->n * (1 + (size_t)h->m0) * sizeof(uint32_t), sum);
    for (size_t i = 0; i < h->n && rc == 0; i++)
        if (h->levels[i] > 0)
            rc = write_all(fd, h->upper[i],
                           (size_t)h->levels[i] * (1 + h->params.m) * sizeof(uint32_t), sum);
    return rc;
}

int
lh_hnsw_save(const lh_hnsw *h, const char *path, lh_err *err)
{
    /* the payload first (its checksum computed on the way), then the header in front */
    sum64 sum = SUM_INIT;
    char *tmp = lh_sprintf("%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd >= 0 && lseek(fd, HEADER_BYTES, SEEK_SET) == HEADER_BYTES ? 0 : -1;
    if (rc == 0)
        rc = write_payload(h, fd, &sum);
    header hd = {.version = FORMAT_VERSION, .dim = h->dim, .metric = (uint32_t)h->metric,
                 .m = h->params.m, .m0 = h->m0, .ef_construction = h->params.ef_construction,
                 .ef_search = h->params.ef_search, .entry = h->entry,
                 .max_level = h->max_level, .n = h->n, .checksum = sum_finish(&sum)};
    memcpy(hd.magic, MAGIC, 8);
    if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0)
        rc = -1;
    if (rc == 0)
        rc = write_all(fd, &hd, sizeof hd, NULL);
    if (rc == 0 && fsync(fd) != 0)
        rc = -1;
    if (fd >= 0 && close(fd) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0) {
        int e = errno;
        unlink(tmp);
        lh_err_set(err, LH_EIO, 500, "index_unwritable", "could not write the index file");
        lh_err_detail(err, "%s: %s", path, strerror(e));
    }
    free(tmp);
    return rc == 0 ? 0 : LH_EIO;
}

void
lh_hnsw__unmap(lh_hnsw *h)
{
    munmap(h->map, h->map_len);
    h->map = NULL;
}

static int
corrupt(lh_err *err, const char *path, const char *why)
{
    lh_err_set(err, LH_EINVAL, 422, "index_corrupt", "the index file is not usable");
    lh_err_detail(err, "%s: %s", path, why);
    lh_err_hint(err, "it is rebuilt from the embeddings");
    return LH_EINVAL;
}

int
lh_hnsw_load(const char *path, lh_hnsw **out, lh_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        lh_err_set(err, e == ENOENT ? LH_ENOTFOUND : LH_EIO, e == ENOENT ? 404 : 500,
                   "index_missing", "no index file");
        lh_err_detail(err, "%s: %s", path, strerror(e));
        return e == ENOENT ? LH_ENOTFOUND : LH_EIO;
    }
    size_t len = (size_t)st.st_size;
    if (len < HEADER_BYTES) {
        close(fd);
        return corrupt(err, path, "shorter than its header");
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return lh_err_set(err, LH_EIO, 500, "index_unreadable", "could not map the index file");
    header hd;
    memcpy(&hd, map, sizeof hd);
    const char *why = NULL;
    size_t vec_bytes = 0, link_bytes = 0;
    if (memcmp(hd.magic, MAGIC, 8) != 0)
        why = "not an index file (magic)";
    else if (hd.version != FORMAT_VERSION)
        why = "an index format version this server does not read";
    else if (hd.dim == 0 || hd.dim > 65536 || hd.metric > 2 || hd.m < 2 || hd.m > 256 ||
             hd.m0 != 2 * hd.m || hd.n > (len / 4) || hd.max_level > LH_HNSW_MAX_LEVEL ||
             (hd.n > 0 && (hd.entry >= hd.n || hd.max_level < 0)))
        why = "header values out of range";
    if (!why) {
        vec_bytes = (size_t)hd.n * hd.dim * sizeof(float);
        link_bytes = (size_t)hd.n * (1 + (size_t)hd.m0) * sizeof(uint32_t);
        if (HEADER_BYTES + vec_bytes + pad4(hd.n) + link_bytes > len)
            why = "shorter than its header says";
    }
    sum64 sum = SUM_INIT;
    sum_feed(&sum, (const uint8_t *)map + HEADER_BYTES, len - HEADER_BYTES);
    if (!why && sum_finish(&sum) != hd.checksum)
        why = "checksum mismatch";
    lh_hnsw_params p = {.m = hd.m, .ef_construction = hd.ef_construction,
                        .ef_search = hd.ef_search};
    lh_hnsw *h = why ? NULL : calloc(1, sizeof *h);
    if (!why && !h)
        why = "out of memory";
    if (why) {
        munmap(map, len);
        return corrupt(err, path, why);
    }
    h->dim = hd.dim;
    h->metric = (lh_metric)hd.metric;
    h->params = p;
    h->m0 = hd.m0;
    h->n = hd.n;
    h->k = lh_vec__kernels();
    h->entry = hd.entry;
    h->max_level = hd.max_level;
    h->map = map;
    h->map_len = len;
    pthread_mutex_init(&h->global, NULL);
    pthread_mutex_init(&h->pool_lock, NULL);
    uint8_t *base = (uint8_t *)map + HEADER_BYTES;
    h->vectors = (float *)base;
    h->levels = base + vec_bytes;
    h->links0 = (uint32_t *)(base + vec_bytes + pad4(hd.n));
    /* the upper lists follow, in position order; check they fit and every link is in
     * range before anything walks them */
    const uint32_t *up = (const uint32_t *)(base + vec_bytes + pad4(hd.n) + link_bytes);
    size_t avail = (len - HEADER_BYTES - vec_bytes - pad4(hd.n) - link_bytes) / sizeof(uint32_t);
    h->upper = calloc(hd.n ? hd.n : 1, sizeof *h->upper);
    size_t words = 0;
    for (size_t i = 0; h->upper && i < hd.n && !why; i++) {
        if (h->levels[i] > LH_HNSW_MAX_LEVEL)
            why = "a level out of range";
        words += (size_t)h->levels[i] * (1 + hd.m);
    }
    if (!why && words != avail)
        why = "upper links do not match the file's length";
    if (!why && h->upper) {
        /* copied: the lists are few, and a private copy keeps the pointers simple */
        h->upper_block = malloc((words ? words : 1) * sizeof(uint32_t));
        if (h->upper_block)
            memcpy(h->upper_block, up, words * sizeof(uint32_t));
        size_t at = 0;
        for (size_t i = 0; h->upper_block && i < hd.n; i++)
            if (h->levels[i] > 0) {
                h->upper[i] = h->upper_block + at;
                at += (size_t)h->levels[i] * (1 + hd.m);
            }
    }
    for (size_t i = 0; !why && i < hd.n; i++) {
        for (int lev = 0; lev <= h->levels[i] && !why; lev++) {
            const uint32_t *l = lh_hnsw__links(h, (uint32_t)i, lev);
            uint32_t cap = lev == 0 ? hd.m0 : hd.m;
            if (l[0] > cap)
                why = "a link count out of range";
            for (uint32_t j = 1; j <= l[0] && !why; j++)
                if (l[j] >= hd.n)
                    why = "a link out of range";
        }
    }
    if (!why && (!h->upper || !h->upper_block))
        why = "out of memory";
    if (why) {
        lh_hnsw_free(h);
        return corrupt(err, path, why);
    }
    *out = h;
    return 0;
}
