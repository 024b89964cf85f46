/*
 * store_fs.c — the filesystem backend: a bucket is a directory, a key is a path under it.
 *
 * Writes are atomic: the bytes go to <root>/.lh-tmp/<random>, are fsynced, and the file
 * is renamed over the key (plain put) or hard-linked to it (create-only put: link(2)
 * fails with EEXIST when the key exists, so two racing writers cannot both win), then the
 * parent directory is fsynced. A reader opens either the old or the new file, never a
 * half-written one. ETags derive from (device, inode, size, mtime), which change whenever
 * a put replaces the file. Keys are validated before reaching here (no "..", no leading
 * '/'), so a path can never leave the root.
 *
 * A key cannot be both an object and a "folder" of other objects ("a" and "a/b"): that
 * put fails with a 409 conflict.
 */
#include "storage/storage_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_DIR ".lh-tmp"
#define COPY_CHUNK (256 * 1024)

typedef struct fs_store {
    char *root; /* absolute, no trailing slash */
} fs_store;

static fs_store *
impl(lh_store *s)
{
    return s->impl;
}

static char *
key_path(lh_store *s, const char *key)
{
    return lh_sprintf("%s/%s", impl(s)->root, key);
}

static int
errno_error(lh_err *err, int e, const char *op, const char *key)
{
    int rc;
    switch (e) {
    case ENOENT:
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "object_not_found", "no object '%s'", key);
        return rc;
    case ENOTDIR:
    case EISDIR:
    case EEXIST:
        rc = lh_err_set(err, LH_EEXIST, 409, "key_conflict",
                        "key '%s' conflicts with an existing object or folder", key);
        lh_err_hint(err, "an object name cannot also be a folder of other objects");
        return rc;
    case ENOSPC:
    case EDQUOT:
        rc = lh_err_set(err, LH_EUNAVAIL, 507, "storage_full", "the bucket's disk is full");
        break;
    case EACCES:
    case EPERM:
    case EROFS:
        rc = lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unavailable",
                        "the bucket's folder cannot be written");
        break;
    default:
        rc = lh_err_set(err, LH_EIO, 500, "io_error", "filesystem operation failed");
        break;
    }
    lh_err_detail(err, "%s '%s': %s", op, key, strerror(e));
    return rc;
}

static void
fill_info(const struct stat *st, lh_obj_info *info)
{
    info->size = (int64_t)st->st_size;
    info->mtime_us = (int64_t)st->st_mtim.tv_sec * 1000000 + st->st_mtim.tv_nsec / 1000;
    char ident[128];
    int n = snprintf(ident, sizeof ident, "%llu:%llu:%lld:%lld.%ld", (unsigned long long)st->st_dev,
                     (unsigned long long)st->st_ino, (long long)st->st_size,
                     (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
    uint8_t digest[32];
    lh_sha256(ident, (size_t)n, digest);
    lh_hex(digest, 16, info->etag);
}

/* The root must exist: a missing root means an unmounted or deleted bucket, which is
 * "unreachable" (so reads may fall back to rescue), not "object not found". */
static int
check_root(lh_store *s, lh_err *err)
{
    struct stat st;
    if (stat(impl(s)->root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unavailable", "bucket folder is not available");
        lh_err_detail(err, "%s: %s", impl(s)->root, errno ? strerror(errno) : "not a directory");
        return LH_EUNAVAIL;
    }
    return 0;
}

static int
fs_open_local(lh_store *s, const char *key, int *fd_out, lh_obj_info *info, lh_err *err)
{
    char *path = key_path(s, key);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int e = errno;
    free(path);
    if (fd < 0) {
        if (e == ENOENT && check_root(s, err) != 0)
            return LH_EUNAVAIL;
        return errno_error(err, e == ELOOP || e == ENOTDIR ? ENOENT : e, "open", key);
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return errno_error(err, ENOENT, "open", key);
    }
    fill_info(&st, info);
    *fd_out = fd;
    return 0;
}

static int
fs_get(lh_store *s, const char *key, int64_t offset, int64_t len, lh_sink_fn sink, void *ctx,
       lh_obj_info *info, lh_err *err)
{
    int fd;
    int rc = fs_open_local(s, key, &fd, info, err);
    if (rc != 0)
        return rc;
    if (offset > info->size || (offset == info->size && info->size > 0 && len != 0)) {
        close(fd);
        return lh_err_set(err, LH_EINVAL, 416, "invalid_range",
                          "range starts at %lld, past the end of the %lld-byte object",
                          (long long)offset, (long long)info->size);
    }
    int64_t end = len < 0 || offset + len > info->size ? info->size : offset + len;
    char *chunk = lh_malloc(COPY_CHUNK);
    int64_t pos = offset;
    while (rc == 0 && pos < end) {
        size_t want = (size_t)(end - pos < COPY_CHUNK ? end - pos : COPY_CHUNK);
        ssize_t r = pread(fd, chunk, want, (off_t)pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = errno_error(err, r < 0 ? errno : EIO, "read", key);
            break;
        }
        if (sink(ctx, chunk, (size_t)r) != 0)
            rc = lh_err_set(err, LH_ECANCELED, 499, "read_aborted", "the reader stopped early");
        pos += r;
    }
    free(chunk);
    close(fd);
    return rc;
}

static int
mkdirs_for(const char *path)
{
    char *copy = lh_strdup(path);
    int rc = 0;
    for (char *p = strchr(copy + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            rc = -1;
            break;
        }
        *p = '/';
    }
    int e = errno;
    free(copy);
    errno = e;
    return rc;
}

static void
fsync_parent(const char *path)
{
    char *dir = lh_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    free(dir);
}

/* Write src to a new temporary file under the root; returns its path (free). */
static int
write_temp(lh_store *s, const lh_source *src, char **tmp_out, lh_err *err)
{
    char rnd_hex[33];
    uint8_t rnd[16];
    if (lh_random_bytes(rnd, sizeof rnd, err) != 0)
        return LH_EIO;
    lh_hex(rnd, sizeof rnd, rnd_hex);
    char *dir = lh_sprintf("%s/" TMP_DIR, impl(s)->root);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        free(dir);
        if (check_root(s, err) != 0)
            return LH_EUNAVAIL;
        return errno_error(err, e, "mkdir", TMP_DIR);
    }
    char *tmp = lh_sprintf("%s/%s", dir, rnd_hex);
    free(dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return errno_error(err, e, "create", TMP_DIR);
    }
    int rc = 0;
    char *chunk = src->fd >= 0 ? lh_malloc(COPY_CHUNK) : NULL;
    for (int64_t pos = 0; rc == 0 && pos < src->len;) {
        size_t want = (size_t)(src->len - pos < COPY_CHUNK ? src->len - pos : COPY_CHUNK);
        const char *data;
        if (src->fd >= 0) {
            if ((rc = lh_storage__source_read(src, pos, chunk, want, err)) != 0)
                break;
            data = chunk;
        } else {
            data = (const char *)src->data + pos;
        }
        size_t off = 0;
        while (off < want) {
            ssize_t w = write(fd, data + off, want - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = errno_error(err, errno, "write", "(temporary file)");
                break;
            }
            off += (size_t)w;
        }
        pos += (int64_t)want;
    }
    free(chunk);
    if (rc == 0 && fsync(fd) != 0)
        rc = errno_error(err, errno, "fsync", "(temporary file)");
    close(fd);
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        return rc;
    }
    *tmp_out = tmp;
    return 0;
}

static int
fs_put(lh_store *s, const char *key, const lh_source *src, int flags, lh_obj_info *info,
       lh_err *err)
{
    int rc = check_root(s, err);
    if (rc != 0)
        return rc;
    char *tmp = NULL;
    if ((rc = write_temp(s, src, &tmp, err)) != 0)
        return rc;
    char *path = key_path(s, key);
    if (mkdirs_for(path) != 0) {
        rc = errno_error(err, errno, "mkdir", key);
        unlink(tmp);
    } else if (flags & LH_PUT_CREATE_ONLY) {
        if (link(tmp, path) != 0) {
            int e = errno;
            struct stat st;
            if (e == EEXIST && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                e = EISDIR;
            if (e == EEXIST) {
                rc = lh_err_set(err, LH_EEXIST, 409, "object_exists", "object '%s' already exists",
                                key);
                lh_err_hint(err, "create-only writes never replace an object");
            } else {
                rc = errno_error(err, e, "link", key);
            }
        }
        unlink(tmp);
    } else {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            rc = errno_error(err, EISDIR, "rename", key);
        else if (rename(tmp, path) != 0)
            rc = errno_error(err, errno, "rename", key);
        if (rc != 0)
            unlink(tmp);
    }
    if (rc == 0) {
        fsync_parent(path);
        struct stat st;
        if (stat(path, &st) == 0)
            fill_info(&st, info);
    }
    free(tmp);
    free(path);
    return rc;
}

static int
fs_head(lh_store *s, const char *key, lh_obj_info *info, lh_err *err)
{
    char *path = key_path(s, key);
    struct stat st;
    int found = lstat(path, &st) == 0;
    int e = found ? ENOENT : errno; /* a folder is no object; errno is stale then */
    free(path);
    if (!found || !S_ISREG(st.st_mode)) {
        if (check_root(s, err) != 0)
            return LH_EUNAVAIL;
        return errno_error(err, e == ENOTDIR ? ENOENT : e, "stat", key);
    }
    fill_info(&st, info);
    return 0;
}

/* Remove now-empty parent folders up to the root, so listings stay clean. */
static void
prune_parents(lh_store *s, char *path)
{
    size_t root_len = strlen(impl(s)->root);
    for (char *slash = strrchr(path, '/'); slash && (size_t)(slash - path) > root_len;
         slash = strrchr(path, '/')) {
        *slash = '\0';
        if (rmdir(path) != 0)
            break;
    }
}

static int
fs_del(lh_store *s, const char *key, lh_err *err)
{
    char *path = key_path(s, key);
    struct stat st;
    int rc = 0;
    int found = lstat(path, &st) == 0;
    if (!found || !S_ISREG(st.st_mode)) {
        int e = found || errno == ENOTDIR ? ENOENT : errno;
        rc = check_root(s, err) != 0 ? LH_EUNAVAIL : errno_error(err, e, "stat", key);
    } else if (unlink(path) != 0) {
        rc = errno_error(err, errno, "unlink", key);
    } else {
        fsync_parent(path);
        prune_parents(s, path);
    }
    free(path);
    return rc;
}

typedef struct walk {
    const char *prefix;
    const char *cursor;
    lh_list_entry *entries;
    size_t n, cap;
} walk;

static void
walk_dir(const char *dir_path, const char *key_prefix, walk *w, int depth)
{
    if (depth > LH_KEY_MAX / 2) /* a key has at most 512 segments */
        return;
    DIR *d = opendir(dir_path);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (key_prefix[0] == '\0' && strcmp(de->d_name, TMP_DIR) == 0)
            continue;
        char *key = lh_sprintf("%s%s", key_prefix, de->d_name);
        char *path = lh_sprintf("%s/%s", dir_path, de->d_name);
        struct stat st;
        if (lstat(path, &st) == 0) {
            size_t plen = strlen(w->prefix);
            if (S_ISDIR(st.st_mode)) {
                /* descend only where keys can still match the prefix */
                char *sub = lh_sprintf("%s/", key);
                size_t slen = strlen(sub);
                if (strncmp(sub, w->prefix, slen < plen ? slen : plen) == 0)
                    walk_dir(path, sub, w, depth + 1);
                free(sub);
            } else if (S_ISREG(st.st_mode) && strncmp(key, w->prefix, plen) == 0 &&
                       (w->cursor == NULL || strcmp(key, w->cursor) > 0)) {
                if (w->n == w->cap) {
                    w->cap = w->cap ? w->cap * 2 : 64;
                    w->entries = lh_realloc(w->entries, w->cap * sizeof *w->entries);
                }
                lh_list_entry *e = &w->entries[w->n++];
                e->key = key;
                key = NULL;
                lh_obj_info info;
                fill_info(&st, &info);
                e->size = info.size;
                e->mtime_us = info.mtime_us;
                memcpy(e->etag, info.etag, sizeof e->etag);
            }
        }
        free(path);
        free(key);
    }
    closedir(d);
}

/* Lists by walking the folder tree under the prefix's directory part and sorting. Cost
 * is proportional to the objects under that directory, not to the page size. */
static int
fs_list(lh_store *s, const char *prefix, const char *cursor, size_t limit, lh_list_page *page,
        lh_err *err)
{
    int rc = check_root(s, err);
    if (rc != 0)
        return rc;
    walk w = {.prefix = prefix, .cursor = cursor};
    const char *last_slash = strrchr(prefix, '/');
    char *dir_key = last_slash ? lh_strndup(prefix, (size_t)(last_slash - prefix) + 1) : lh_strdup("");
    bool safe = strstr(dir_key, "..") == NULL && strncmp(dir_key, TMP_DIR "/", 8) != 0;
    if (safe) {
        char *dir_path = dir_key[0] ? lh_sprintf("%s/%.*s", impl(s)->root,
                                                 (int)strlen(dir_key) - 1, dir_key)
                                    : lh_strdup(impl(s)->root);
        walk_dir(dir_path, dir_key, &w, 0);
        free(dir_path);
    }
    free(dir_key);
    lh_storage__sort_entries(w.entries, w.n);
    if (w.n > limit) {
        page->next_cursor = lh_strdup(w.entries[limit - 1].key);
        for (size_t i = limit; i < w.n; i++)
            free(w.entries[i].key);
        w.n = limit;
    }
    page->entries = w.entries;
    page->n = w.n;
    return 0;
}

static int
fs_copy(lh_store *s, const char *src_key, const char *dst_key, lh_err *err)
{
    int fd;
    lh_obj_info info;
    int rc = fs_open_local(s, src_key, &fd, &info, err);
    if (rc != 0)
        return rc;
    lh_source src = {.fd = fd, .len = info.size};
    lh_obj_info out;
    rc = fs_put(s, dst_key, &src, 0, &out, err);
    close(fd);
    return rc;
}

static int
fs_probe(lh_store *s, lh_err *err)
{
    int rc = check_root(s, err);
    if (rc != 0)
        return rc;
    if (access(impl(s)->root, W_OK) != 0) {
        lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unavailable", "bucket folder is not writable");
        lh_err_detail(err, "%s: %s", impl(s)->root, strerror(errno));
        return LH_EUNAVAIL;
    }
    return 0;
}

static void
fs_free(lh_store *s)
{
    free(impl(s)->root);
    free(impl(s));
}

static char *
fs_local_path(lh_store *s, const char *key)
{
    return key_path(s, key);
}

static const lh_store_ops FS_OPS = {
    .local_path = fs_local_path,
    .name = "fs",
    .get = fs_get,
    .put = fs_put,
    .head = fs_head,
    .del = fs_del,
    .list = fs_list,
    .copy = fs_copy,
    .probe = fs_probe,
    .open_local = fs_open_local,
    .free = fs_free,
};

int
lh_store_fs_open(const char *root, lh_store **out, lh_err *err)
{
    if (root == NULL || root[0] == '\0')
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "fs bucket needs a root folder");
    /* create the root if it is missing, then resolve it once */
    if (mkdirs_for(root) != 0 || (mkdir(root, 0755) != 0 && errno != EEXIST)) {
        lh_err_set(err, LH_EIO, 0, "bucket_unavailable", "cannot create bucket folder");
        lh_err_detail(err, "%s: %s", root, strerror(errno));
        return LH_EIO;
    }
    char resolved[PATH_MAX];
    if (realpath(root, resolved) == NULL) {
        lh_err_set(err, LH_EIO, 0, "bucket_unavailable", "cannot resolve bucket folder");
        lh_err_detail(err, "%s: %s", root, strerror(errno));
        return LH_EIO;
    }
    fs_store *fs = lh_calloc(1, sizeof *fs);
    fs->root = lh_strdup(resolved);
    lh_store *s = lh_calloc(1, sizeof *s);
    s->ops = &FS_OPS;
    s->impl = fs;
    s->describe = lh_sprintf("fs:%s", fs->root);
    *out = s;
    return 0;
}
