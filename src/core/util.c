/*
 * util.c — allocation wrappers, clocks, randomness, hashing and name checks.
 */
#include "core_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void
oom(size_t n)
{
    char msg[96];
    int len = snprintf(msg, sizeof msg, "lakehouse: out of memory allocating %zu bytes\n", n);
    if (len > 0 && write(2, msg, (size_t)len) < 0) {
        /* nothing more we can do */
    }
    abort();
}

void *
lh_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
lh_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *
lh_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *
lh_strdup(const char *s)
{
    return lh_strndup(s, strlen(s));
}

char *
lh_strndup(const char *s, size_t n)
{
    char *d = lh_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

size_t
lh_core__vformat(char *(*reserve)(void *ctx, size_t size), void *ctx, const char *fmt, va_list ap)
{
    va_list measure;
    va_copy(measure, ap);
    int n = vsnprintf(NULL, 0, fmt, measure);
    va_end(measure);
    if (n < 0)
        n = 0;
    char *s = reserve(ctx, (size_t)n + 1);
    s[0] = '\0'; /* a format that fails may write nothing */
    if (n > 0)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return (size_t)n;
}

static char *
reserve_heap(void *ctx, size_t size)
{
    char **s = ctx;
    *s = lh_malloc(size);
    return *s;
}

char *
lh_sprintf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    lh_core__vformat(reserve_heap, &s, fmt, ap);
    va_end(ap);
    return s;
}

void *
lh_try_malloc(size_t n)
{
    if (lh_fault_hit(LH_FAULT_ALLOC))
        return NULL;
    return malloc(n ? n : 1);
}

void *
lh_try_realloc(void *p, size_t n)
{
    if (lh_fault_hit(LH_FAULT_ALLOC))
        return NULL; /* as realloc fails: p is untouched */
    return realloc(p, n ? n : 1);
}

void
lh_free_secret(char *s)
{
    if (s == NULL)
        return;
    lh_wipe(s, strlen(s));
    free(s);
}

void
lh_wipe(void *p, size_t n)
{
    /* volatile so the compiler cannot drop the wipe of memory about to be freed */
    volatile unsigned char *v = p;
    for (size_t i = 0; v && i < n; i++)
        v[i] = 0;
}

int64_t
lh_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
lh_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
lh_time_format(int64_t epoch_us, char out[LH_TIME_MAX])
{
    time_t secs = (time_t)(epoch_us / 1000000);
    int ms = (int)((epoch_us % 1000000) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[24];
    if (strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        date[0] = '\0';
    snprintf(out, 32, "%.19s.%03dZ", date, ms < 0 ? 0 : ms % 1000);
}

int
lh_random_bytes(void *buf, size_t n, lh_err *err)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            lh_err_set(err, LH_EIO, 500, "random_failed", "could not read random bytes");
            lh_err_detail(err, "getrandom: %s", strerror(errno));
            return LH_EIO;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

static void
random_or_abort(void *buf, size_t n)
{
    lh_err err;
    if (lh_random_bytes(buf, n, &err) != 0) {
        fprintf(stderr, "lakehouse: %s (%s)\n", err.message, err.detail);
        abort();
    }
}

json_t *
lh_json_time(int64_t epoch_us)
{
    if (epoch_us == 0)
        return json_null();
    char when[LH_TIME_MAX];
    lh_time_format(epoch_us, when);
    return json_string(when);
}

void
lh_random_hex(char *out, size_t n_bytes)
{
    uint8_t raw[64];
    assert(n_bytes <= sizeof raw);
    random_or_abort(raw, n_bytes);
    lh_hex(raw, n_bytes, out);
}

uint64_t
lh_random_u64(void)
{
    uint64_t r;
    random_or_abort(&r, sizeof r);
    return r;
}

int
lh_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void
lh_hex(const void *data, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static EVP_MD *sha256_md;

static void
sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); /* kept for the process */
}

void
lh_sha256(const void *data, size_t n, uint8_t out[32])
{
    /* SHA256() looks the algorithm up on every call (OpenSSL 3); every request's token is
     * hashed, so the implementation is fetched once */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sha256_fetch);
    if (sha256_md == NULL || EVP_Digest(data, n, out, NULL, sha256_md, NULL) != 1)
        SHA256(data, n, out);
}

void
lh_sha256_hex(const void *data, size_t n, char out[65])
{
    uint8_t digest[32];
    lh_sha256(data, n, digest);
    lh_hex(digest, sizeof digest, out);
}

void
lh_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t n, char out[65])
{
    uint8_t digest[32];
    unsigned int len = sizeof digest;
    HMAC(EVP_sha256(), key, (int)key_len, data, n, digest, &len);
    lh_hex(digest, sizeof digest, out);
}

const char *const LH_LEVELS[] = {"public", "internal", "confidential", "pii", NULL};

int
lh_level_rank(const char *level)
{
    for (int i = 0; level && LH_LEVELS[i]; i++)
        if (strcmp(level, LH_LEVELS[i]) == 0)
            return i + 1;
    return 0;
}

const char *
lh_level_name(int rank)
{
    return rank >= LH_LEVEL_PUBLIC && rank <= LH_LEVEL_PII ? LH_LEVELS[rank - 1] : "";
}

static int
read_key_file(int fd, const char *path, uint8_t key[32], lh_err *err)
{
    struct stat st;
    char hex[65] = "";
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
        st.st_uid != geteuid()) {
        lh_err_set(err, LH_EPERM, 0, "key_file_refused",
                   "%s must be a regular file of mode 0600 owned by the server's user", path);
        lh_err_hint(err, "chmod 600 %s", path);
        return LH_EPERM;
    }
    ssize_t n = read(fd, hex, 64);
    unsigned v;
    for (int i = 0; n == 64 && i < 32; i++) {
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            n = 0;
        key[i] = (uint8_t)v;
    }
    memset(hex, 0, sizeof hex);
    if (n != 64)
        return lh_err_set(err, LH_EIO, 0, "key_file_invalid", "%s does not hold 64 hex digits",
                          path);
    return 0;
}

int
lh_key_file(const char *path, uint8_t key[32], lh_err *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        int rc = read_key_file(fd, path, key, err);
        close(fd);
        return rc;
    }
    if (errno != ENOENT)
        return lh_err_set(err, LH_EIO, 0, "key_file_unreadable", "could not read %s: %s", path,
                          strerror(errno));
    uint8_t raw[32];
    char hex[65];
    int rc = lh_random_bytes(raw, sizeof raw, err);
    if (rc != 0)
        return rc;
    lh_hex(raw, sizeof raw, hex);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) /* another process created it first: use theirs */
            return lh_key_file(path, key, err);
        return lh_err_set(err, LH_EIO, 0, "key_file_unwritable", "could not create %s: %s", path,
                          strerror(errno));
    }
    bool ok = lh_write_all(fd, hex, 64) == 0 && lh_write_all(fd, "\n", 1) == 0 && fsync(fd) == 0;
    close(fd);
    memset(hex, 0, sizeof hex);
    if (!ok) {
        unlink(path);
        return lh_err_set(err, LH_EIO, 0, "key_file_unwritable", "could not write %s", path);
    }
    memcpy(key, raw, sizeof raw);
    memset(raw, 0, sizeof raw);
    return 0;
}

bool
lh_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}

bool
lh_name_valid(const char *name)
{
    if (name == NULL || !(name[0] >= 'a' && name[0] <= 'z'))
        return false;
    size_t i = 1;
    for (; name[i]; i++) {
        char c = name[i];
        if (i > 62)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

int
lh_mkdirs(const char *dir, lh_err *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "data_dir is too long");
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        goto fail;
    return 0;
fail:
    lh_err_set(err, LH_EIO, 0, "data_dir_unusable", "could not create data directory");
    lh_err_detail(err, "%s: %s", path, strerror(errno));
    return LH_EIO;
}
