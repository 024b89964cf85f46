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
#define FORMAT_VERSION 1u       /* float vectors only */
#define FORMAT_VERSION_CODES 2u /* and int8 codes after the upper lists */
#define HEADER_BYTES 64u

typedef struct header {
    char magic[8];
    uint32_t version, dim, metric, m, m0, ef_construction, ef_search, entry;
    int32_t max_level;
    uint32_t quant; /* lh_quant: 0 in version 1, 1 (int8) in version 2 */
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

#define SUM_INIT                                                                                   \
    {                                                                                              \
        0xcbf29ce484222325ULL, {0}, 0                                                              \
    }

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

/* The bytes of the int8 section: q_min and q_scale (dim floats each), q_norm (n floats),
 * codes (n * dim bytes, padded to 4). */
static size_t
codes_bytes(size_t n, size_t dim)
{
    return (2 * dim + n) * sizeof(float) + pad4(n * dim);
}

/* The payload in file order: vectors, levels (padded), links0, upper lists, and for an
 * int8 index its section. */
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
    if (rc == 0 && h->codes) {
        size_t codes = h->n * h->dim;
        rc = write_all(fd, h->q_min, h->dim * sizeof(float), sum);
        if (rc == 0)
            rc = write_all(fd, h->q_scale, h->dim * sizeof(float), sum);
        if (rc == 0)
            rc = write_all(fd, h->q_norm, h->n * sizeof(float), sum);
        if (rc == 0)
            rc = write_all(fd, h->codes, codes, sum);
        if (rc == 0)
            rc = write_all(fd, zeros, pad4(codes) - codes, sum);
    }
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
    header hd = {.version = h->codes ? FORMAT_VERSION_CODES : FORMAT_VERSION,
                 .quant = h->codes ? LH_QUANT_INT8 : LH_QUANT_NONE,
                 .dim = h->dim,
                 .metric = (uint32_t)h->metric,
                 .m = h->params.m,
                 .m0 = h->m0,
                 .ef_construction = h->params.ef_construction,
                 .ef_search = h->params.ef_search,
                 .entry = h->entry,
                 .max_level = h->max_level,
                 .n = h->n,
                 .checksum = sum_finish(&sum)};
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

/* Map the file at path read-only (*map, *len: munmap them). */
static int
map_file(const char *path, void **map, size_t *len, lh_err *err)
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
    *len = (size_t)st.st_size;
    if (*len < HEADER_BYTES) {
        close(fd);
        return corrupt(err, path, "shorter than its header");
    }
    *map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (*map == MAP_FAILED)
        return lh_err_set(err, LH_EIO, 500, "index_unreadable", "could not map the index file");
    return 0;
}

/* Why the header of the mapped file cannot be used (NULL: it can): magic, version, values
 * in range, sizes within the file, checksum. */
static const char *
check_header(const void *map, size_t len, header *hd, size_t *vec_bytes, size_t *link_bytes,
             size_t *quant_bytes)
{
    memcpy(hd, map, sizeof *hd);
    if (memcmp(hd->magic, MAGIC, 8) != 0)
        return "not an index file (magic)";
    if (hd->version != FORMAT_VERSION && hd->version != FORMAT_VERSION_CODES)
        return "an index format version this server does not read";
    if (hd->quant != (hd->version == FORMAT_VERSION_CODES ? LH_QUANT_INT8 : LH_QUANT_NONE))
        return "a quantization that does not match the format version";
    if (hd->dim == 0 || hd->dim > 65536 || hd->metric > 2 || hd->m < 2 || hd->m > 256 ||
        hd->m0 != 2 * hd->m || hd->n > (len / 4) || hd->max_level > LH_HNSW_MAX_LEVEL ||
        (hd->n > 0 && (hd->entry >= hd->n || hd->max_level < 0)))
        return "header values out of range";
    *vec_bytes = (size_t)hd->n * hd->dim * sizeof(float);
    *link_bytes = (size_t)hd->n * (1 + (size_t)hd->m0) * sizeof(uint32_t);
    *quant_bytes = hd->quant ? codes_bytes(hd->n, hd->dim) : 0;
    if (HEADER_BYTES + *vec_bytes + pad4(hd->n) + *link_bytes + *quant_bytes > len)
        return "shorter than its header says";
    sum64 sum = SUM_INIT;
    sum_feed(&sum, (const uint8_t *)map + HEADER_BYTES, len - HEADER_BYTES);
    if (sum_finish(&sum) != hd->checksum)
        return "checksum mismatch";
    return NULL;
}

/* Copy the upper lists (avail words at up, in position order) into h, checking they fill
 * exactly what the levels say. The lists are few, and a private copy keeps the pointers
 * simple. */
static const char *
load_upper(lh_hnsw *h, const uint32_t *up, size_t avail)
{
    size_t words = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (h->levels[i] > LH_HNSW_MAX_LEVEL)
            return "a level out of range";
        words += (size_t)h->levels[i] * (1 + h->params.m);
    }
    if (words != avail)
        return "upper links do not match the file's length";
    h->upper = calloc(h->n ? h->n : 1, sizeof *h->upper);
    h->upper_block = malloc((words ? words : 1) * sizeof(uint32_t));
    if (!h->upper || !h->upper_block)
        return "out of memory";
    memcpy(h->upper_block, up, words * sizeof(uint32_t));
    size_t at = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->levels[i] > 0) {
            h->upper[i] = h->upper_block + at;
            at += (size_t)h->levels[i] * (1 + h->params.m);
        }
    return NULL;
}

/* An int8 index reads its float vectors only to re-rank a search's candidates: the pages
 * the checksum and the islands read are dropped from this mapping (they stay in the page
 * cache while the kernel has room), and no read-ahead is done around the few it reads. */
static void
release_floats(lh_hnsw *h)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)h->vectors + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t to = ((uintptr_t)(h->vectors + h->n * h->dim)) & ~(uintptr_t)(page - 1);
    if (to > from) {
        madvise((void *)from, to - from, MADV_DONTNEED);
        madvise((void *)from, to - from, MADV_RANDOM);
    }
}

/* Every link count and link target in range, before anything walks the graph. */
static const char *
check_links(const lh_hnsw *h)
{
    for (size_t i = 0; i < h->n; i++) {
        for (int lev = 0; lev <= h->levels[i]; lev++) {
            const uint32_t *l = lh_hnsw__links(h, (uint32_t)i, lev);
            uint32_t cap = lev == 0 ? h->m0 : h->params.m;
            if (l[0] > cap)
                return "a link count out of range";
            for (uint32_t j = 1; j <= l[0]; j++)
                if (l[j] >= h->n)
                    return "a link out of range";
        }
    }
    return NULL;
}

int
lh_hnsw_load(const char *path, lh_hnsw **out, lh_err *err)
{
    void *map = NULL;
    size_t len = 0, vec_bytes = 0, link_bytes = 0, quant_bytes = 0;
    header hd;
    int rc = map_file(path, &map, &len, err);
    if (rc != 0)
        return rc;
    const char *why = check_header(map, len, &hd, &vec_bytes, &link_bytes, &quant_bytes);
    lh_hnsw *h = why ? NULL : calloc(1, sizeof *h);
    if (!why && !h)
        why = "out of memory";
    if (why) {
        munmap(map, len);
        return corrupt(err, path, why);
    }
    h->dim = hd.dim;
    h->metric = (lh_metric)hd.metric;
    h->params = (lh_hnsw_params){.m = hd.m,
                                 .ef_construction = hd.ef_construction,
                                 .ef_search = hd.ef_search,
                                 .quant = (lh_quant)hd.quant};
    h->m0 = hd.m0;
    h->n = hd.n;
    h->k = lh_vec__kernels();
    h->entry = hd.entry;
    h->max_level = hd.max_level;
    h->map = map; /* lh_hnsw_free unmaps it from here on */
    h->map_len = len;
    pthread_mutex_init(&h->global, NULL);
    pthread_mutex_init(&h->pool_lock, NULL);
    uint8_t *base = (uint8_t *)map + HEADER_BYTES;
    h->vectors = (float *)base;
    h->levels = base + vec_bytes;
    h->links0 = (uint32_t *)(base + vec_bytes + pad4(hd.n));
    const uint32_t *up = (const uint32_t *)(base + vec_bytes + pad4(hd.n) + link_bytes);
    size_t avail =
        (len - HEADER_BYTES - vec_bytes - pad4(hd.n) - link_bytes - quant_bytes) / sizeof(uint32_t);
    if (quant_bytes) {
        uint8_t *q = (uint8_t *)map + len - quant_bytes;
        h->q_min = (float *)q;
        h->q_scale = h->q_min + hd.dim;
        h->q_norm = h->q_scale + hd.dim;
        h->codes = (uint8_t *)(h->q_norm + hd.n);
    }
    if ((why = load_upper(h, up, avail)) == NULL)
        why = check_links(h);
    if (why == NULL && lh_hnsw__find_islands(h) != 0)
        why = "not enough memory for its islands";
    if (why) {
        lh_hnsw_free(h);
        return corrupt(err, path, why);
    }
    if (h->codes)
        release_floats(h);
    *out = h;
    return 0;
}
