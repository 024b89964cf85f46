/*
 * cache.c — local copies of remote objects for the query engine.
 *
 * A copy is named by the SHA-256 of (store, key, ETag): a changed object gets a new
 * name, so a copy is never stale, and a second query of unchanged data reads nothing
 * from the remote store. Copies are written to a temporary name and renamed into place.
 * Eviction removes the least recently used unpinned copies once the total exceeds
 * max_bytes; pinned copies (files a live dataset view reads) are never removed.
 * One mutex guards the index; downloads run outside it.
 *
 * Also here: the local folders the query engines may read (lh_buckets_local_dirs), the
 * cache's among them.
 */
#include "storage/storage_int.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pthread.h>

typedef struct entry {
    char *path;
    int64_t bytes;
    int64_t used_mono_us;
    int pins;
} entry;

struct lh_cache {
    pthread_mutex_t lock;
    char *dir;
    int64_t max_bytes, bytes;
    entry *entries;
    size_t n, cap;
    int64_t hits, misses, evictions;
};

lh_cache *
lh_cache_new(const char *dir, int64_t max_bytes)
{
    lh_cache *c = lh_calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->dir = lh_strdup(dir);
    c->max_bytes = max_bytes;
    mkdir(dir, 0700);
    /* copies from earlier runs are still good (named by ETag): index them so they count
     * against the limit and can be evicted; half-written ".part-" files are removed */
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *path = lh_sprintf("%s/%s", dir, de->d_name);
        struct stat st;
        if (strstr(de->d_name, ".part-")) {
            unlink(path);
        } else if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (c->n == c->cap) {
                c->cap = c->cap ? c->cap * 2 : 64;
                c->entries = lh_realloc(c->entries, c->cap * sizeof *c->entries);
            }
            c->entries[c->n++] = (entry){lh_strdup(path), (int64_t)st.st_size, 0, 0};
            c->bytes += (int64_t)st.st_size;
        }
        free(path);
    }
    if (d)
        closedir(d);
    return c;
}

void
lh_cache_free(lh_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->entries[i].path);
    free(c->entries);
    free(c->dir);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static entry *
find_locked(lh_cache *c, const char *path)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].path, path) == 0)
            return &c->entries[i];
    return NULL;
}

/* Evict LRU unpinned copies until under the limit; `keep` (may be NULL) is the copy a
 * caller is about to use and is never the victim. */
static void
evict_locked(lh_cache *c, const char *keep)
{
    while (c->bytes > c->max_bytes) {
        entry *victim = NULL;
        for (size_t i = 0; i < c->n; i++)
            if (c->entries[i].pins == 0 && !(keep && strcmp(c->entries[i].path, keep) == 0) &&
                (victim == NULL || c->entries[i].used_mono_us < victim->used_mono_us))
                victim = &c->entries[i];
        if (victim == NULL)
            return; /* everything left is in use */
        unlink(victim->path);
        c->bytes -= victim->bytes;
        c->evictions++;
        free(victim->path);
        *victim = c->entries[--c->n];
    }
}

typedef struct file_sink {
    int fd;
} file_sink;

static int
to_file(void *ctx, const void *data, size_t len)
{
    file_sink *fs = ctx;
    return lh_write_all(fs->fd, data, len);
}

/* Where the object with this etag lives in the cache (new): a name from the store, key and
 * etag, keeping the key's extension so DuckDB picks the right reader. */
static char *
cache_path(const lh_cache *c, lh_store *s, const char *key, const char *etag)
{
    lh_buf ident;
    lh_buf_init(&ident);
    lh_buf_printf(&ident, "%s\n%s\n%s", lh_store_describe(s), key, etag);
    char hex[65];
    lh_sha256_hex(ident.data, ident.len, hex);
    lh_buf_free(&ident);
    const char *base = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
    const char *dot = strrchr(base, '.');
    return lh_sprintf("%s/%s%s", c->dir, hex, dot && strlen(dot) <= 10 ? dot : "");
}

/* Download the object to path: into a temporary file beside it, synced, then renamed, so
 * that path is either absent or complete. */
static int
cache_fetch(const lh_cache *c, lh_store *s, const char *key, const char *path, lh_err *err)
{
    char *tmp = lh_sprintf("%s.part-XXXXXX", path);
    int rc = 0;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = lh_err_set(err, LH_EIO, 503, "cache_unavailable", "could not write the local cache");
        lh_err_detail(err, "%s: %s", c->dir, strerror(errno));
        goto out;
    }
    file_sink sink = {fd};
    lh_obj_info got;
    if ((rc = lh_store_get(s, key, 0, -1, to_file, &sink, &got, err)) != 0)
        goto out;
    if (fsync(fd) != 0 || rename(tmp, path) != 0)
        rc = lh_err_set(err, LH_EIO, 503, "cache_unavailable", "could not write the local cache");
out:
    if (fd >= 0) {
        close(fd);
        if (rc != 0)
            unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* Record a file just fetched into the cache (or use the entry another thread made
 * meanwhile), pin it when asked, and evict others if over the limit. */
static void
cache_add(lh_cache *c, const char *path, bool pin)
{
    struct stat st;
    int64_t bytes = stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
    pthread_mutex_lock(&c->lock);
    entry *e = find_locked(c, path); /* another thread may have fetched it meanwhile */
    if (e == NULL) {
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 64;
            c->entries = lh_realloc(c->entries, c->cap * sizeof *c->entries);
        }
        e = &c->entries[c->n++];
        e->path = lh_strdup(path);
        e->bytes = bytes;
        e->pins = 0;
        c->bytes += bytes;
    }
    e->used_mono_us = lh_mono_us();
    e->pins += pin;
    evict_locked(c, path);
    pthread_mutex_unlock(&c->lock);
}

int
lh_cache_local_path(lh_cache *c, lh_store *s, const char *key, bool pin, char **path_out,
                    lh_err *err)
{
    char *local = lh_store_fs_path(s, key);
    if (local) {
        *path_out = local;
        return 0;
    }
    lh_obj_info info;
    int rc = lh_store_head(s, key, &info, err);
    if (rc != 0)
        return rc;
    char *path = cache_path(c, s, key, info.etag);

    pthread_mutex_lock(&c->lock);
    entry *e = find_locked(c, path);
    if (e) {
        e->used_mono_us = lh_mono_us();
        e->pins += pin;
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->lock);
    if (e == NULL) {
        if ((rc = cache_fetch(c, s, key, path, err)) != 0) {
            free(path);
            return rc;
        }
        cache_add(c, path, pin);
    }
    *path_out = path;
    return 0;
}

void
lh_cache_unpin(lh_cache *c, const char *path)
{
    pthread_mutex_lock(&c->lock);
    entry *e = find_locked(c, path);
    if (e && e->pins > 0) {
        e->pins--;
        evict_locked(c, NULL);
    }
    pthread_mutex_unlock(&c->lock);
}

json_t *
lh_cache_stats_json(lh_cache *c)
{
    pthread_mutex_lock(&c->lock);
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "entries", (json_int_t)c->n, "bytes",
                          (json_int_t)c->bytes, "max_bytes", (json_int_t)c->max_bytes, "hits",
                          (json_int_t)c->hits, "misses", (json_int_t)c->misses, "evictions",
                          (json_int_t)c->evictions);
    pthread_mutex_unlock(&c->lock);
    return j;
}

/* ---- the query engines' sandboxes ------------------------------------------------------ */

/* The bucket folders an engine may read, by layout prefix: user SQL reads those marked
 * user, lakehouse's own statements all. */
static const struct {
    const char *prefix;
    bool user;
} readable_prefixes[] = {
    {LH_LAYOUT_DATASETS, true},
    {LH_LAYOUT_JOURNAL, true},
    {LH_LAYOUT_TRIALS, true},
    {LH_LAYOUT_AUDIT, true},
    {LH_LAYOUT_VECTORS, false},
    {LH_LAYOUT_EVALS, false},
    /* rows staged in workspaces: read only by the prelude views lakehouse composes for a
     * query made with that workspace (src/workspace) */
    {LH_LAYOUT_WORKSPACES, true},
};
#define N_READABLE (sizeof readable_prefixes / sizeof readable_prefixes[0])

/* The folder of a layout prefix ("datasets/") in an fs store, ending in '/' (new), or
 * NULL for other backends. */
static char *
fs_folder(lh_store *store, const char *prefix)
{
    char *key = lh_strndup(prefix, strlen(prefix) - 1); /* a key has no trailing '/' */
    char *path = lh_store_fs_path(store, key);
    char *folder = path ? lh_sprintf("%s/", path) : NULL;
    free(path);
    free(key);
    return folder;
}

static void
readable_lists(lh_buckets *b, lh_local_dirs *d)
{
    size_t n_buckets = lh_buckets_count(b), n_user = 0, n_internal = 0;
    d->user_readable = lh_calloc(N_READABLE * n_buckets + 4, sizeof *d->user_readable);
    d->internal_readable = lh_calloc(N_READABLE * n_buckets + 4, sizeof *d->internal_readable);
    for (size_t i = 0; i < n_buckets; i++) {
        lh_store *store = lh_buckets_get(b, lh_buckets_name_at(b, i), NULL);
        for (size_t k = 0; store && k < N_READABLE; k++) {
            char *folder = fs_folder(store, readable_prefixes[k].prefix);
            if (folder == NULL)
                continue;
            if (readable_prefixes[k].user)
                d->user_readable[n_user++] = lh_strdup(folder);
            d->internal_readable[n_internal++] = folder;
        }
    }
    d->user_readable[n_user++] = lh_sprintf("%s/", d->objects_dir);
    d->user_readable[n_user++] = lh_sprintf("%s/", d->results_dir);
    /* audit records not yet shipped: the `_audit` view (admins only) and GET /audit */
    d->user_readable[n_user++] = lh_sprintf("%s/", d->audit_dir);
    d->internal_readable[n_internal++] = lh_sprintf("%s/", d->objects_dir);
    d->internal_readable[n_internal++] = lh_sprintf("%s/", d->work_dir);
    d->internal_readable[n_internal++] = lh_sprintf("%s/", d->audit_dir);
}

/* Remove everything inside the folder open (for reading) as dirfd, which is taken and
 * closed: files and links are unlinked (links are never followed), sub-folders emptied
 * and removed. Counts what went into *files and *bytes. */
static void
empty_dir(int dirfd, int depth, int64_t *files, int64_t *bytes)
{
    DIR *d = depth > 64 ? NULL : fdopendir(dirfd);
    if (d == NULL) {
        close(dirfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        struct stat st;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
            fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                empty_dir(sub, depth + 1, files, bytes);
            unlinkat(dirfd, name, AT_REMOVEDIR);
        } else if (unlinkat(dirfd, name, 0) == 0) {
            *files += 1;
            *bytes += S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
        }
    }
    closedir(d);
}

/* The work folder belongs to the one server that holds its lock: what an earlier run left
 * there (uploads and conversions cut short by a crash or kill -9) is garbage, removed now
 * and logged. A folder another live server holds is left alone (and said so). Returns
 * the lock's descriptor, kept open while the server runs, or -1. */
static int
claim_work_dir(const char *work_dir)
{
    int fd = open(work_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        lh_log(LH_LOG_WARN, NULL, NULL, "work folder %s cannot be opened: %s", work_dir,
               strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        lh_log(LH_LOG_WARN, NULL, NULL,
               "work folder %s is in use by another process: not cleaned; give each server "
               "its own data_dir",
               work_dir);
        close(fd);
        return -1;
    }
    int64_t files = 0, bytes = 0;
    int walk = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (walk >= 0)
        empty_dir(walk, 0, &files, &bytes);
    if (files > 0) {
        json_t *fields = json_pack("{s:s, s:I, s:I}", "folder", work_dir, "files",
                                   (json_int_t)files, "bytes", (json_int_t)bytes);
        lh_log(LH_LOG_INFO, NULL, fields,
               "work folder: removed %lld files (%lld bytes) an earlier run left behind",
               (long long)files, (long long)bytes);
        json_decref(fields);
    }
    return fd;
}

int
lh_buckets_local_dirs(lh_buckets *b, const char *data_dir, lh_local_dirs *out, lh_err *err)
{
    char resolved[PATH_MAX];
    char *cache_root = NULL;
    lh_local_dirs d = {0};
    int rc = 0;
    /* with every bucket remote, nothing else creates the data dir */
    if ((rc = lh_mkdirs(data_dir, err)) != 0)
        goto out;
    if (realpath(data_dir, resolved) == NULL) {
        rc = lh_err_set(err, LH_EIO, 500, "data_dir_unusable", "cannot resolve data_dir %s",
                        data_dir);
        lh_err_detail(err, "%s", strerror(errno));
        goto out;
    }
    cache_root = lh_sprintf("%s/cache", resolved);
    d.objects_dir = lh_sprintf("%s/objects", cache_root);
    d.results_dir = lh_sprintf("%s/results", cache_root);
    d.work_dir = lh_sprintf("%s/work", resolved);
    d.audit_dir = lh_sprintf("%s/audit", resolved);
    mkdir(cache_root, 0700);
    mkdir(d.audit_dir, 0700);
    mkdir(d.results_dir, 0700);
    mkdir(d.work_dir, 0700);
    d.work_lock_fd = claim_work_dir(d.work_dir);
    readable_lists(b, &d);
    *out = d;
out:
    free(cache_root);
    return rc;
}

void
lh_local_dirs_free(lh_local_dirs *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; d->user_readable && d->user_readable[i]; i++)
        free(d->user_readable[i]);
    for (size_t i = 0; d->internal_readable && d->internal_readable[i]; i++)
        free(d->internal_readable[i]);
    free(d->user_readable);
    free(d->internal_readable);
    free(d->objects_dir);
    free(d->results_dir);
    if (d->work_dir && d->work_lock_fd >= 0) /* a zeroed struct has no work_dir */
        close(d->work_lock_fd);
    free(d->work_dir);
    free(d->audit_dir);
    memset(d, 0, sizeof *d);
}
