/*
 * store_fs.c — the filesystem backend: a bucket is a directory, a key is a path under it.
 *
 * Writes are atomic: the bytes go to <root>/.lh-tmp/<random>, are fsynced, and the file
 * is renamed over the key (plain put) or hard-linked to it (create-only put: linkat(2)
 * fails with EEXIST when the key exists, so two racing writers cannot both win), then the
 * parent directory is fsynced. A reader opens either the old or the new file, never a
 * half-written one. ETags derive from (device, inode, size, mtime), which change whenever
 * a put replaces the file and survive the rename or link.
 *
 * Symbolic links are never followed below the root. Keys are validated before reaching
 * here (no "." or ".." segments, no leading '/'), and every operation opens the root
 * (O_PATH), walks the key's folders one segment at a time with
 * openat(O_DIRECTORY | O_NOFOLLOW), and acts on the last segment relative to its folder
 * (openat with O_NOFOLLOW, fstatat with AT_SYMLINK_NOFOLLOW, linkat, renameat, unlinkat).
 * A link met anywhere reads as "no such object" and refuses writes with 409 key_conflict;
 * a link (or file) at <root>/.lh-tmp makes writes fail as bucket_unavailable; listings
 * neither show links nor enter them. The root itself was resolved once by realpath at
 * open, and is reopened by that path for each operation rather than held open, so a
 * bucket folder that is removed and made again (or remounted) is picked up, and a
 * missing one answers "unavailable" instead of acting on a deleted directory.
 *
 * A key cannot be both an object and a "folder" of other objects ("a" and "a/b"): that
 * put fails with a 409 conflict. Deletes remove the folders they leave empty; a put
 * racing such a delete may find the folder it just made gone before its rename, and
 * then makes it again and retries (PUT_ATTEMPTS times in all).
 *
 * Thread safety: there is no shared mutable state; the filesystem arbitrates races.
 */
#include "storage/storage_int.h"

#include <dirent.h>
#include <linux/openat2.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TMP_DIR ".lh-tmp"
#define COPY_CHUNK (256 * 1024)
/* a put re-walks and retries its rename this often when a delete pruned its folder */
#define PUT_ATTEMPTS 8
/* and makes one missing folder again this often while walking */
#define MKDIR_ATTEMPTS 8

typedef struct fs_store {
    char *root; /* absolute, resolved, no trailing slash */
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
    case ELOOP:
        rc = lh_err_set(err, LH_EEXIST, 409, "key_conflict",
                        "key '%s' is or passes through a symbolic link", key);
        lh_err_hint(err, "links inside a bucket folder are never followed or replaced; "
                         "use another key");
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

/* For reads, a key through a file or a link simply does not exist. */
static int
read_errno(int e)
{
    return e == ENOTDIR || e == ELOOP ? ENOENT : e;
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

/* The root, opened for walking from (O_PATH: it needs no read permission). A missing
 * root means an unmounted or deleted bucket, which is "unreachable" (so reads may fall
 * back to rescue), not "object not found". */
static int
open_root(lh_store *s, int *fd_out, lh_err *err)
{
    int fd = open(impl(s)->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unavailable", "bucket folder is not available");
        lh_err_detail(err, "%s: %s", impl(s)->root, strerror(errno));
        return LH_EUNAVAIL;
    }
    *fd_out = fd;
    return 0;
}

/* One step down from dirfd into the folder name, never through a link: a new O_PATH
 * descriptor, or -1 with errno (ELOOP for a link, ENOTDIR for anything else that is not
 * a folder). With create, a missing folder is made — again if a racing delete removes it
 * between mkdirat and openat. */
static int
open_subdir(int dirfd, const char *name, bool create)
{
    for (int attempt = 1;; attempt++) {
        int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno == ENOTDIR) {
            struct stat st;
            bool is_link =
                fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
            errno = is_link ? ELOOP : ENOTDIR;
            return -1;
        }
        if (errno != ENOENT || !create || attempt == MKDIR_ATTEMPTS)
            return -1;
        if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
            return -1;
    }
}

/* The folder holding key's last segment, reached from rootfd one segment at a time
 * without following links (with create, missing folders are made). Returns a new O_PATH
 * descriptor (close it) and points *leaf at the last segment inside key; or -1 with
 * errno: ENOENT (a folder is missing), ENOTDIR (a segment is a file), ELOOP (a segment is
 * a link), ENAMETOOLONG, or a system call's. */
static int
open_parent(int rootfd, const char *key, bool create, const char **leaf)
{
    int dirfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
    const char *seg = key;
    for (const char *slash; dirfd >= 0 && (slash = strchr(seg, '/')) != NULL; seg = slash + 1) {
        char name[NAME_MAX + 1];
        size_t len = (size_t)(slash - seg);
        int next = -1;
        if (len > NAME_MAX) {
            errno = ENAMETOOLONG;
        } else {
            memcpy(name, seg, len);
            name[len] = '\0';
            next = open_subdir(dirfd, name, create);
        }
        int e = errno;
        close(dirfd);
        errno = e;
        dirfd = next;
    }
    if (dirfd >= 0)
        *leaf = seg;
    return dirfd;
}

/* fsync a folder held as an O_PATH descriptor (which cannot be fsynced itself). */
static void
fsync_dir(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int
fs_open_local(lh_store *s, const char *key, int *fd_out, lh_obj_info *info, lh_err *err)
{
    int rootfd = -1, dirfd = -1, fd = -1;
    int rc = open_root(s, &rootfd, err);
    if (rc != 0)
        return rc;
    const char *leaf = NULL;
    dirfd = open_parent(rootfd, key, false, &leaf);
    /* O_NONBLOCK: a FIFO left in the folder must not hang the open; cleared below */
    if (dirfd >= 0)
        fd = openat(dirfd, leaf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd < 0) {
        rc = errno_error(err, read_errno(errno), "open", key);
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = errno_error(err, ENOENT, "open", key);
    } else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
        rc = errno_error(err, errno, "open", key);
    } else {
        fill_info(&st, info);
        *fd_out = fd;
        fd = -1;
    }
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    close(rootfd);
    return rc;
}

static int
fs_get(lh_store *s, const char *key, int64_t offset, int64_t len, lh_sink_fn sink, void *ctx,
       lh_obj_info *info, lh_err *err)
{
    int fd = -1;
    char *chunk = NULL;
    int rc = fs_open_local(s, key, &fd, info, err);
    if (rc != 0)
        goto out;
    if (offset > info->size || (offset == info->size && info->size > 0 && len != 0)) {
        rc = lh_err_set(err, LH_EINVAL, 416, "invalid_range",
                        "range starts at %lld, past the end of the %lld-byte object",
                        (long long)offset, (long long)info->size);
        goto out;
    }
    int64_t end = len < 0 || offset + len > info->size ? info->size : offset + len;
    chunk = lh_malloc(COPY_CHUNK);
    for (int64_t pos = offset; pos < end;) {
        size_t want = (size_t)(end - pos < COPY_CHUNK ? end - pos : COPY_CHUNK);
        ssize_t r = pread(fd, chunk, want, (off_t)pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = errno_error(err, r < 0 ? errno : EIO, "read", key);
            goto out;
        }
        int sink_rc = sink(ctx, chunk, (size_t)r);
        if (sink_rc != 0) {
            rc = lh_storage__sink_error(err, sink_rc, key);
            goto out;
        }
        pos += r;
    }
out:
    free(chunk);
    if (fd >= 0)
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

/* A written, fsynced temporary file in <root>/.lh-tmp. */
typedef struct temp_file {
    int dirfd; /* <root>/.lh-tmp, O_PATH; -1 when there is none */
    char name[33];
    struct stat st; /* the file's status once written; rename and link keep it */
} temp_file;

static void
temp_discard(temp_file *t)
{
    if (t->dirfd >= 0) {
        unlinkat(t->dirfd, t->name, 0);
        close(t->dirfd);
        t->dirfd = -1;
    }
}

/* <root>/.lh-tmp, made when missing; a link or a file there is refused, not followed. */
static int
open_temp_dir(lh_store *s, int rootfd, int *fd_out, lh_err *err)
{
    int fd = -1;
    if (mkdirat(rootfd, TMP_DIR, 0700) == 0 || errno == EEXIST)
        fd = openat(rootfd, TMP_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        *fd_out = fd;
        return 0;
    }
    int e = errno;
    if (e == ENOTDIR || e == ELOOP) {
        lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unavailable",
                   "the bucket's temporary folder is not a folder");
        lh_err_detail(err, "%s/" TMP_DIR " is a symbolic link or a file", impl(s)->root);
        lh_err_hint(err, "remove it; the store makes the folder again itself");
        return LH_EUNAVAIL;
    }
    if (e == ENOENT) { /* the root went away since we opened it */
        lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unavailable", "bucket folder is not available");
        lh_err_detail(err, "%s: %s", impl(s)->root, strerror(e));
        return LH_EUNAVAIL;
    }
    return errno_error(err, e, "mkdir", TMP_DIR);
}

/* A source that is a whole named file on the same filesystem (an ingest's converted
 * Parquet) is hard-linked instead of copied: same bytes, no second write. The link is
 * made to the open descriptor, so a rename of the path meanwhile cannot swap in another
 * file. *linked false (and 0): not linkable here (an unlinked source, another filesystem),
 * so the caller copies. */
static int
link_source(const lh_source *src, temp_file *t, bool *linked, lh_err *err)
{
    struct stat src_st;
    char proc[64];
    *linked = false;
    if (!src->may_link || src->fd < 0 || fstat(src->fd, &src_st) != 0 || !S_ISREG(src_st.st_mode) ||
        src_st.st_nlink == 0 || src_st.st_size != src->len)
        return 0;
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", src->fd);
    if (linkat(AT_FDCWD, proc, t->dirfd, t->name, AT_SYMLINK_FOLLOW) != 0)
        return 0;
    *linked = true;
    if (fsync(src->fd) != 0 || fstatat(t->dirfd, t->name, &t->st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno_error(err, errno, "fsync", "(temporary file)");
    return 0;
}

/* Copy src into the new file fd, fsync it and fill t->st. */
static int
copy_source(const lh_source *src, int fd, temp_file *t, lh_err *err)
{
    char *chunk = src->fd >= 0 ? lh_malloc(COPY_CHUNK) : NULL;
    int rc = 0;
    for (int64_t pos = 0; pos < src->len;) {
        size_t want = (size_t)(src->len - pos < COPY_CHUNK ? src->len - pos : COPY_CHUNK);
        const char *data = (const char *)src->data + pos;
        if (src->fd >= 0) {
            if ((rc = lh_storage__source_read(src, pos, chunk, want, err)) != 0)
                goto out;
            data = chunk;
        }
        if (lh_write_all(fd, data, want) != 0) {
            rc = errno_error(err, errno, "write", "(temporary file)");
            goto out;
        }
        pos += (int64_t)want;
    }
    if (fsync(fd) != 0) {
        rc = errno_error(err, errno, "fsync", "(temporary file)");
        goto out;
    }
    if (fstat(fd, &t->st) != 0)
        rc = errno_error(err, errno, "stat", "(temporary file)");
out:
    free(chunk);
    return rc;
}

/* Write src to a new temporary file; on failure nothing is left behind. */
static int
write_temp(lh_store *s, int rootfd, const lh_source *src, temp_file *t, lh_err *err)
{
    uint8_t rnd[16];
    int fd = -1;
    bool linked = false;
    int rc = lh_random_bytes(rnd, sizeof rnd, err);
    if (rc != 0)
        goto out;
    lh_hex(rnd, sizeof rnd, t->name);
    if ((rc = open_temp_dir(s, rootfd, &t->dirfd, err)) != 0)
        goto out;
    if ((rc = link_source(src, t, &linked, err)) != 0 || linked)
        goto out;
    fd = openat(t->dirfd, t->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = errno_error(err, errno, "create", TMP_DIR);
        close(t->dirfd); /* nothing was made: nothing to remove */
        t->dirfd = -1;
        goto out;
    }
    rc = copy_source(src, fd, t, err);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        temp_discard(t);
    return rc;
}

/* Put the temporary file at leaf in dirfd: renamed over it, or hard-linked for a
 * create-only put. Returns 0 or an errno value: EISDIR (leaf is a folder), ELOOP (leaf is
 * a link, which is neither followed nor replaced), EEXIST (create-only lost), ... */
static int
place_temp(const temp_file *t, int dirfd, const char *leaf, int flags)
{
    struct stat st;
    if (flags & LH_PUT_CREATE_ONLY) {
        if (linkat(t->dirfd, t->name, dirfd, leaf, 0) == 0)
            return 0;
        int e = errno;
        if (e == EEXIST && fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0)
            e = S_ISDIR(st.st_mode) ? EISDIR : S_ISLNK(st.st_mode) ? ELOOP : EEXIST;
        return e;
    }
    if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode))
            return EISDIR;
        if (S_ISLNK(st.st_mode))
            return ELOOP;
    }
    return renameat(t->dirfd, t->name, dirfd, leaf) == 0 ? 0 : errno;
}

static int
put_error(lh_store *s, int e, int flags, const char *key, lh_err *err)
{
    const char *op = flags & LH_PUT_CREATE_ONLY ? "link" : "rename";
    if (e == EEXIST && (flags & LH_PUT_CREATE_ONLY)) {
        int rc =
            lh_err_set(err, LH_EEXIST, 409, "object_exists", "object '%s' already exists", key);
        lh_err_hint(err, "create-only writes never replace an object");
        return rc;
    }
    if (e != ENOENT)
        return errno_error(err, e, op, key);
    /* still missing after PUT_ATTEMPTS: the root or the temporary file went away */
    int rootfd;
    int rc = open_root(s, &rootfd, err);
    if (rc != 0)
        return rc;
    close(rootfd);
    rc = lh_err_set(err, LH_EIO, 500, "io_error", "filesystem operation failed");
    lh_err_detail(err, "%s '%s': %s (after %d attempts)", op, key, strerror(e), PUT_ATTEMPTS);
    return rc;
}

static int
fs_put(lh_store *s, const char *key, const lh_source *src, int flags, lh_obj_info *info,
       lh_err *err)
{
    int rootfd = -1, dirfd = -1;
    temp_file tmp = {.dirfd = -1};
    const char *leaf = NULL;
    int rc = open_root(s, &rootfd, err);
    if (rc != 0)
        return rc;
    if ((rc = write_temp(s, rootfd, src, &tmp, err)) != 0)
        goto out;
    for (int attempt = 1;; attempt++) {
        dirfd = open_parent(rootfd, key, true, &leaf);
        int e = dirfd < 0 ? errno : place_temp(&tmp, dirfd, leaf, flags);
        if (e == 0)
            break;
        if (dirfd >= 0)
            close(dirfd);
        dirfd = -1;
        /* a delete emptied the folder and removed it before our rename: make it again */
        if (e == ENOENT && attempt < PUT_ATTEMPTS)
            continue;
        rc = put_error(s, e, flags, key, err);
        break;
    }
    if (rc == 0) {
        fsync_dir(dirfd);
        fill_info(&tmp.st, info);
    }
    if (rc == 0 && !(flags & LH_PUT_CREATE_ONLY)) { /* renamed: nothing left to remove */
        close(tmp.dirfd);
        tmp.dirfd = -1;
    }
out:
    temp_discard(&tmp);
    if (dirfd >= 0)
        close(dirfd);
    close(rootfd);
    return rc;
}

/* Find key's object: its folder (*dirfd_out, new), name there (*leaf) and status. A key
 * that is missing, not a regular file, or passes through a file or a link is a 404. */
static int
find_object(int rootfd, const char *key, int *dirfd_out, const char **leaf, struct stat *st,
            lh_err *err)
{
    int dirfd = open_parent(rootfd, key, false, leaf);
    if (dirfd < 0)
        return errno_error(err, read_errno(errno), "stat", key);
    bool found = fstatat(dirfd, *leaf, st, AT_SYMLINK_NOFOLLOW) == 0;
    int e = found ? ENOENT : errno; /* a folder or a link is no object; errno is stale then */
    if (!found || !S_ISREG(st->st_mode)) {
        close(dirfd);
        return errno_error(err, read_errno(e), "stat", key);
    }
    *dirfd_out = dirfd;
    return 0;
}

static int
fs_head(lh_store *s, const char *key, lh_obj_info *info, lh_err *err)
{
    int rootfd, dirfd;
    int rc = open_root(s, &rootfd, err);
    if (rc != 0)
        return rc;
    const char *leaf;
    struct stat st;
    rc = find_object(rootfd, key, &dirfd, &leaf, &st, err);
    close(rootfd);
    if (rc != 0)
        return rc;
    close(dirfd);
    fill_info(&st, info);
    return 0;
}

/* Remove the folders key's delete left empty, deepest first, up to the root (excluded),
 * so listings stay clean. Each is reached by a fresh walk from the root, so no link is
 * followed; that is quadratic in the depth, but the walk stops at the first folder that
 * is not empty (or is gone already). */
static void
prune_parents(int rootfd, const char *key)
{
    char *path = lh_strdup(key);
    for (char *slash = strrchr(path, '/'); slash; slash = strrchr(path, '/')) {
        *slash = '\0';
        const char *leaf;
        int dirfd = open_parent(rootfd, path, false, &leaf);
        if (dirfd < 0)
            break;
        bool removed = unlinkat(dirfd, leaf, AT_REMOVEDIR) == 0;
        close(dirfd);
        if (!removed)
            break;
    }
    free(path);
}

static int
fs_del(lh_store *s, const char *key, lh_err *err)
{
    int rootfd, dirfd;
    int rc = open_root(s, &rootfd, err);
    if (rc != 0)
        return rc;
    const char *leaf;
    struct stat st;
    rc = find_object(rootfd, key, &dirfd, &leaf, &st, err);
    if (rc == 0) {
        if (unlinkat(dirfd, leaf, 0) != 0) {
            rc = errno_error(err, errno, "unlink", key);
        } else {
            fsync_dir(dirfd);
            prune_parents(rootfd, key);
        }
        close(dirfd);
    }
    close(rootfd);
    return rc;
}

typedef struct walk {
    const char *prefix;
    const char *cursor;
    size_t want; /* entries to collect: the page's limit and one more (is there a next?) */
    lh_list_enter_fn enter; /* NULL: every folder that can match */
    void *enter_ctx;
    dev_t root_dev; /* to skip <root>/.lh-tmp however the walk reached the root */
    ino_t root_ino;
    lh_list_entry *entries;
    size_t n, cap;
} walk;

/* One entry of a folder: its name as it sorts among keys ("name/" for a folder, since
 * every key below it starts so), and whether it is a folder. */
typedef struct dir_item {
    char *sort_name;
    bool is_dir;
} dir_item;

static int
cmp_item(const void *a, const void *b)
{
    return strcmp(((const dir_item *)a)->sort_name, ((const dir_item *)b)->sort_name);
}

/* The entries of the folder d (no "." or ".."; in the root, not .lh-tmp), sorted as their
 * keys sort. Files and folders only: links and other kinds are never listed. The type
 * comes from readdir where the file system gives it, else from fstatat (no link followed). */
static dir_item *
read_sorted(DIR *d, int dirfd, bool in_root, size_t *n_out)
{
    dir_item *items = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
            (in_root && strcmp(name, TMP_DIR) == 0))
            continue;
        unsigned char type = de->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        if (type != DT_DIR && type != DT_REG)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            items = lh_realloc(items, cap * sizeof *items);
        }
        items[n].is_dir = type == DT_DIR;
        items[n++].sort_name = lh_sprintf("%s%s", name, type == DT_DIR ? "/" : "");
    }
    if (n > 1)
        qsort(items, n, sizeof *items, cmp_item);
    *n_out = n;
    return items;
}

/* Collect, in key order, the objects in the folder open (for reading) as dirfd, which is
 * taken and closed, and below it: those after the cursor that match the prefix, until
 * w->want are held. A folder whose keys all sort at or before the cursor, or none of which
 * can match the prefix, is not entered, so a page costs about its own size (and the
 * folders on its way), not the size of the bucket. Entries are examined without following
 * links, and sub-folders opened with O_NOFOLLOW: links are neither listed nor entered. */
static void
walk_dir(int dirfd, const char *key_prefix, walk *w, int depth)
{
    DIR *d = depth > LH_KEY_MAX / 2 ? NULL : fdopendir(dirfd); /* at most 512 segments */
    if (d == NULL) {
        close(dirfd);
        return;
    }
    struct stat dir_st;
    bool in_root =
        fstat(dirfd, &dir_st) == 0 && dir_st.st_dev == w->root_dev && dir_st.st_ino == w->root_ino;
    size_t n_items = 0, plen = strlen(w->prefix);
    dir_item *items = read_sorted(d, dirfd, in_root, &n_items);
    for (size_t i = 0; i < n_items && w->n < w->want; i++) {
        char *key = lh_sprintf("%s%s", key_prefix, items[i].sort_name);
        size_t klen = strlen(key);
        if (items[i].is_dir) {
            /* every key below starts with `key` ("…/name/"): enter only where one can
             * still match the prefix and come after the cursor */
            bool may_match = strncmp(key, w->prefix, klen < plen ? klen : plen) == 0;
            bool after = w->cursor == NULL || strncmp(w->cursor, key, klen) == 0 ||
                         strcmp(key, w->cursor) > 0;
            if (may_match && after && (w->enter == NULL || w->enter(w->enter_ctx, key))) {
                key[klen - 1] = '\0';
                const char *name = key + strlen(key_prefix);
                int subfd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                key[klen - 1] = '/';
                if (subfd >= 0)
                    walk_dir(subfd, key, w, depth + 1);
            }
        } else if (strncmp(key, w->prefix, plen) == 0 &&
                   (w->cursor == NULL || strcmp(key, w->cursor) > 0)) {
            struct stat st;
            if (fstatat(dirfd, key + strlen(key_prefix), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(st.st_mode)) {
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
        free(key);
    }
    for (size_t i = 0; i < n_items; i++)
        free(items[i].sort_name);
    free(items);
    closedir(d);
}

/* The folder a listing starts in, open for reading: the root when dir_key is NULL, else
 * dir_key's folder, reached without following links. -1 when there is nothing to list:
 * no such folder, or dir_key is no valid key (an empty, "." or ".." segment, or under
 * .lh-tmp — the front refuses most of these already). */
static int
open_list_dir(int rootfd, const char *dir_key)
{
    if (dir_key == NULL)
        return openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lh_key_check(dir_key, NULL) != 0)
        return -1;
    const char *leaf;
    int parent = open_parent(rootfd, dir_key, false, &leaf);
    if (parent < 0)
        return -1;
    int fd = openat(parent, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(parent);
    return fd;
}

/* Collect into w (prefix, cursor, want and enter set by the caller) the objects under the
 * folder part of w->prefix, walking from that folder. Nothing there is no error. */
static int
walk_prefix(lh_store *s, walk *w, lh_err *err)
{
    int rootfd;
    int rc = open_root(s, &rootfd, err);
    if (rc != 0)
        return rc;
    const char *last_slash = strrchr(w->prefix, '/');
    char *dir_key = last_slash ? lh_strndup(w->prefix, (size_t)(last_slash - w->prefix)) : NULL;
    struct stat root_st;
    int dirfd = fstat(rootfd, &root_st) == 0 ? open_list_dir(rootfd, dir_key) : -1;
    if (dirfd >= 0) {
        w->root_dev = root_st.st_dev;
        w->root_ino = root_st.st_ino;
        char *key_prefix = dir_key ? lh_sprintf("%s/", dir_key) : lh_strdup("");
        walk_dir(dirfd, key_prefix, w, 0);
        free(key_prefix);
    }
    free(dir_key);
    close(rootfd);
    return 0;
}

/* Lists by walking the folder tree under the prefix's directory part in key order (each
 * folder's entries sorted), from the cursor on, until a page and one more entry are held.
 * Cost is about the page and the folders on its way, not the whole tree. */
static int
fs_list(lh_store *s, const char *prefix, const char *cursor, size_t limit, lh_list_page *page,
        lh_err *err)
{
    walk w = {.prefix = prefix, .cursor = cursor, .want = limit < SIZE_MAX ? limit + 1 : limit};
    int rc = walk_prefix(s, &w, err);
    if (rc != 0)
        return rc;
    /* already in order; sorting again costs little and keeps the contract obvious */
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

/* lh_store_each_in on fs: one walk in key order that does not enter the folders enter
 * refuses, then fn for each object found. */
static int
fs_walk(lh_store *s, const char *prefix, lh_list_enter_fn enter, void *enter_ctx,
        lh_store_each_fn fn, void *ctx, lh_err *err)
{
    walk w = {.prefix = prefix, .want = SIZE_MAX, .enter = enter, .enter_ctx = enter_ctx};
    int rc = walk_prefix(s, &w, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < w.n && rc == 0; i++)
        rc = fn(ctx, &w.entries[i]);
    lh_list_page page = {.entries = w.entries, .n = w.n};
    lh_list_page_free(&page);
    return rc;
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
    int rootfd;
    int rc = open_root(s, &rootfd, err);
    if (rc != 0)
        return rc;
    close(rootfd);
    if (access(impl(s)->root, W_OK) != 0) {
        lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unavailable", "bucket folder is not writable");
        lh_err_detail(err, "%s: %s", impl(s)->root, strerror(errno));
        return LH_EUNAVAIL;
    }
    return 0;
}

/* Temporary files in <root>/.lh-tmp whose inode last changed (written: mtime; linked or
 * renamed: ctime) before older_than_us: left by a put that a crash or kill -9 cut short.
 * A put in flight keeps its file's times fresh, so a grace period protects it. */
static int
fs_sweep_temp(lh_store *s, int64_t older_than_us, bool dry_run, int64_t *files, int64_t *bytes,
              lh_err *err)
{
    int rootfd = -1, dirfd = -1;
    DIR *d = NULL;
    int rc = open_root(s, &rootfd, err);
    if (rc != 0)
        goto out;
    dirfd = openat(rootfd, TMP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0) {
        if (errno != ENOENT) /* none yet is nothing to do; a link or a file is refused */
            rc = errno_error(err, errno == ENOTDIR ? ELOOP : errno, "open", TMP_DIR);
        goto out;
    }
    if ((d = fdopendir(dirfd)) == NULL) {
        rc = errno_error(err, errno, "opendir", TMP_DIR);
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
        int64_t ctime = (int64_t)st.st_ctim.tv_sec * 1000000 + st.st_ctim.tv_nsec / 1000;
        if ((mtime > ctime ? mtime : ctime) >= older_than_us)
            continue;
        if (!dry_run && unlinkat(dirfd, de->d_name, 0) != 0) {
            if (errno != ENOENT) { /* ENOENT: its put finished meanwhile */
                rc = errno_error(err, errno, "unlink", TMP_DIR);
                goto out;
            }
            continue;
        }
        *files += 1;
        *bytes += (int64_t)st.st_size;
    }
out:
    if (d)
        closedir(d); /* closes dirfd too */
    else if (dirfd >= 0)
        close(dirfd);
    if (rootfd >= 0)
        close(rootfd);
    return rc;
}

static void
fs_free(lh_store *s)
{
    free(impl(s)->root);
    free(impl(s));
}

/* "<root>/<key>" for the query engine, which opens files by name and would follow links:
 * NULL when a segment of key (the last one included) is a link. A path is still given
 * when the object or the root is missing (the engine reports that). The check holds at
 * the time of the call only; a link made afterwards is the folder owner's doing. */
/* Whether key names a link or is reached through one, asked of the kernel in one call:
 * openat2 with RESOLVE_NO_SYMLINKS fails with ELOOP on a link anywhere on the way (the
 * last component too, without O_NOFOLLOW). 1: a link, 0: none (or nothing there), -1:
 * the kernel cannot say (no openat2, or a sandbox refusing it): walk the folders. */
static int
link_on_path(int rootfd, const char *key)
{
#ifdef SYS_openat2
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    long fd = syscall(SYS_openat2, rootfd, key, &how, sizeof how);
    if (fd >= 0) {
        close((int)fd);
        return 0;
    }
    if (errno != ENOSYS && errno != EPERM)
        return errno == ELOOP;
#else
    (void)rootfd;
    (void)key;
#endif
    return -1;
}

static char *
fs_local_path(lh_store *s, const char *key)
{
    int rootfd = open(impl(s)->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    bool is_link = false;
    if (rootfd >= 0) {
        int quick = link_on_path(rootfd, key);
        if (quick >= 0) {
            is_link = quick == 1;
        } else {
            const char *leaf;
            int dirfd = open_parent(rootfd, key, false, &leaf);
            struct stat st;
            if (dirfd >= 0) {
                is_link =
                    fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
                close(dirfd);
            } else {
                is_link = errno == ELOOP;
            }
        }
        close(rootfd);
    }
    return is_link ? NULL : key_path(s, key);
}

static const lh_store_ops FS_OPS = {
    .local_path = fs_local_path,
    .name = "fs",
    .get = fs_get,
    .put = fs_put,
    .head = fs_head,
    .del = fs_del,
    .list = fs_list,
    .walk = fs_walk,
    .copy = fs_copy,
    .probe = fs_probe,
    .open_local = fs_open_local,
    .sweep_temp = fs_sweep_temp,
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
    /* each segment is a file or folder name; temporary files have names of their own in
     * .lh-tmp, so no suffix is ever added to a segment */
    s->max_segment = NAME_MAX;
    *out = s;
    return 0;
}
