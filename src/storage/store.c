/*
 * store.c — the lh_store front: key validation, then the backend's operation.
 */
#include "storage/storage_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
lh_key_check(const char *key, lh_err *err)
{
#define BAD(...)                                                                                   \
    do {                                                                                           \
        lh_err_set(err, LH_EINVAL, 400, "invalid_key", __VA_ARGS__);                               \
        lh_err_hint(err, "keys are 1 to 1024 bytes of UTF-8 like 'folder/name.csv'");              \
        return LH_EINVAL;                                                                          \
    } while (0)
    if (key == NULL || key[0] == '\0')
        BAD("object key is empty");
    size_t n = strlen(key);
    if (n > LH_KEY_MAX)
        BAD("object key is %zu bytes long; the limit is %d", n, LH_KEY_MAX);
    if (key[0] == '/')
        BAD("object key must not start with '/'");
    if (key[n - 1] == '/')
        BAD("object key must not end with '/'");
    const unsigned char *p = (const unsigned char *)key;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c < 0x20 || c == 0x7f)
            BAD("object key contains a control character at byte %zu", i);
        if (c == '\\')
            BAD("object key contains a backslash at byte %zu", i);
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > n)
            BAD("object key is not valid UTF-8 (byte %zu)", i);
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                BAD("object key is not valid UTF-8 (byte %zu)", i);
        if (len == 2 && c < 0xC2)
            BAD("object key is not valid UTF-8 (byte %zu)", i);
        /* RFC 3629: no overlong 3/4-byte forms, no surrogates, nothing past U+10FFFF */
        if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] >= 0xA0) ||
            (c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] >= 0x90) || c > 0xF4)
            BAD("object key is not valid UTF-8 (byte %zu)", i);
        i += len;
    }
    /* segments */
    const char *seg = key;
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        if (len == 0)
            BAD("object key contains an empty segment ('//')");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            BAD("object key contains a '%.*s' segment", (int)len, seg);
        if (seg == key && len == 7 && memcmp(seg, ".lh-tmp", 7) == 0)
            BAD("object keys under '.lh-tmp/' are reserved");
        if (!slash)
            break;
        seg = slash + 1;
    }
    return 0;
#undef BAD
}

/* The backend's limits on a key (lh_store.max_segment, max_key): a key that cannot name
 * an object there is a 400 saying which segment and what the limit is, not a failure of
 * the bucket. */
static int
key_fits(const lh_store *s, const char *key, lh_err *err)
{
    size_t n = strlen(key);
    if (s->max_key && n > s->max_key) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_key",
                   "object key is %zu bytes long; the limit on this bucket is %zu", n, s->max_key);
        lh_err_detail(err, "%s buckets take keys of at most %zu bytes here", s->ops->name,
                      s->max_key);
        lh_err_hint(err, "use a shorter key");
        return LH_EINVAL;
    }
    if (s->max_segment == 0)
        return 0;
    const char *seg = key;
    for (int index = 1;; index++) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        if (len > s->max_segment) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_key",
                       "object key segment %d is %zu bytes long; the limit on this bucket is %zu",
                       index, len, s->max_segment);
            lh_err_detail(err,
                          "segment %d starts '%.32s...'; %s buckets store each segment as a "
                          "file or folder name",
                          index, seg, s->ops->name);
            lh_err_hint(err, "shorten that part of the key, or split it with '/'");
            return LH_EINVAL;
        }
        if (!slash)
            return 0;
        seg = slash + 1;
    }
}

/* lh_key_check, then the backend's own limits. */
static int
check_key(const lh_store *s, const char *key, lh_err *err)
{
    if (lh_key_check(key, err) != 0 || key_fits(s, key, err) != 0)
        return LH_EINVAL;
    return 0;
}

void
lh_list_page_free(lh_list_page *page)
{
    if (page == NULL)
        return;
    for (size_t i = 0; i < page->n; i++)
        free(page->entries[i].key);
    free(page->entries);
    free(page->next_cursor);
    memset(page, 0, sizeof *page);
}

int
lh_storage__source_read(const lh_source *src, int64_t offset, void *buf, size_t n, lh_err *err)
{
    if (offset < 0 || offset + (int64_t)n > src->len)
        return lh_err_set(err, LH_EINTERNAL, 500, "internal_error",
                          "read past the end of a source");
    if (src->fd < 0) {
        memcpy(buf, (const char *)src->data + offset, n);
        return 0;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(src->fd, (char *)buf + done, n - done, (off_t)(offset + (int64_t)done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            lh_err_set(err, LH_EIO, 500, "io_error", "could not read the data to store");
            lh_err_detail(err, "pread: %s", r < 0 ? strerror(errno) : "file shorter than expected");
            return LH_EIO;
        }
        done += (size_t)r;
    }
    return 0;
}

static int
cmp_entry(const void *a, const void *b)
{
    return strcmp(((const lh_list_entry *)a)->key, ((const lh_list_entry *)b)->key);
}

int
lh_storage__sort_entries(lh_list_entry *entries, size_t n)
{
    if (n > 1)
        qsort(entries, n, sizeof *entries, cmp_entry);
    return 0;
}

/* A storage operation a fault test made fail (core.h): the error a backend that cannot be
 * reached gives (store_fs.c, store_s3.c). */
static int
injected_fault(lh_err *err, const char *op, const char *key)
{
    lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unavailable", "the bucket cannot be reached");
    lh_err_detail(err, "%s '%s': injected fault", op, key ? key : "");
    return LH_EUNAVAIL;
}

int
lh_store_get(lh_store *s, const char *key, int64_t offset, int64_t len, lh_sink_fn sink, void *ctx,
             lh_obj_info *info, lh_err *err)
{
    if (check_key(s, key, err) != 0)
        return LH_EINVAL;
    if (offset < 0)
        return lh_err_set(err, LH_EINVAL, 416, "invalid_range", "range start is negative");
    if (lh_fault_hit(LH_FAULT_STORE))
        return injected_fault(err, "get", key);
    lh_obj_info tmp;
    return s->ops->get(s, key, offset, len, sink, ctx, info ? info : &tmp, err);
}

typedef struct buf_sink {
    lh_buf *buf;
    size_t max;
} buf_sink;

static int
to_buffer(void *ctx, const void *data, size_t len)
{
    buf_sink *bs = ctx;
    if (bs->buf->len + len > bs->max)
        return LH_ETOOBIG;
    return lh_buf_try_append(bs->buf, data, len);
}

int
lh_store_get_buffer(lh_store *s, const char *key, size_t max_bytes, lh_buf *out, lh_obj_info *info,
                    lh_err *err)
{
    lh_buf buf;
    lh_buf_init(&buf);
    buf_sink bs = {&buf, max_bytes};
    int rc = lh_store_get(s, key, 0, -1, to_buffer, &bs, info, err);
    if (rc != 0) {
        lh_buf_free(&buf);
        return rc;
    }
    if (buf.data == NULL)
        lh_buf_append(&buf, "", 0);
    *out = buf;
    return 0;
}

int
lh_store_put(lh_store *s, const char *key, const lh_source *src, int flags, lh_obj_info *info,
             lh_err *err)
{
    if (check_key(s, key, err) != 0)
        return LH_EINVAL;
    if (lh_fault_hit(LH_FAULT_STORE))
        return injected_fault(err, "put", key);
    lh_obj_info tmp;
    return s->ops->put(s, key, src, flags, info ? info : &tmp, err);
}

int
lh_store_put_buffer(lh_store *s, const char *key, const void *data, size_t len, int flags,
                    lh_err *err)
{
    lh_source src = {.data = data, .fd = -1, .len = (int64_t)len};
    return lh_store_put(s, key, &src, flags, NULL, err);
}

int
lh_store_head(lh_store *s, const char *key, lh_obj_info *info, lh_err *err)
{
    if (check_key(s, key, err) != 0)
        return LH_EINVAL;
    if (lh_fault_hit(LH_FAULT_STORE))
        return injected_fault(err, "head", key);
    lh_obj_info tmp;
    return s->ops->head(s, key, info ? info : &tmp, err);
}

int
lh_store_delete(lh_store *s, const char *key, lh_err *err)
{
    if (check_key(s, key, err) != 0)
        return LH_EINVAL;
    if (lh_fault_hit(LH_FAULT_STORE))
        return injected_fault(err, "delete", key);
    return s->ops->del(s, key, err);
}

/* 0 when prefix can start keys: no control character or backslash, and every segment
 * that a '/' ends is a real one (not empty, ".", or ".."). The final, partial segment may
 * be anything ("di", ".", ".." match "dir", ".x", "..y"). Otherwise 400 invalid_key. */
static int
list_prefix_check(const char *prefix, lh_err *err)
{
    const char *why = NULL;
    size_t at = 0;
    const char *seg = prefix;
    for (const char *p = prefix; *p && why == NULL; p++) {
        unsigned char c = (unsigned char)*p;
        at = (size_t)(p - prefix);
        if (c < 0x20 || c == 0x7f)
            why = "a control character";
        else if (c == '\\')
            why = "a backslash";
        else if (c == '/') {
            size_t len = (size_t)(p - seg);
            if (len == 0)
                why = at == 0 ? "a leading '/'" : "an empty segment ('//')";
            else if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
                why = len == 1 ? "a '.' segment" : "a '..' segment";
            seg = p + 1;
        }
    }
    if (why == NULL)
        return 0;
    lh_err_set(err, LH_EINVAL, 400, "invalid_key", "list prefix contains %s at byte %zu", why, at);
    lh_err_hint(err, "a prefix is the start of a key, like 'folder/' or 'folder/na'");
    return LH_EINVAL;
}

#define EACH_PAGE 16384 /* keys asked for per page by lh_store_each / lh_buckets_each */

int
lh_storage__each_page(lh_storage__list_fn list, void *list_ctx, const char *prefix,
                      lh_store_each_fn fn, void *ctx, lh_err *err)
{
    char *cursor = NULL;
    int rc = 0;
    for (;;) {
        lh_list_page page;
        /* S3 answers at most 1,000 keys a page whatever is asked; an fs listing re-reads the
         * folders on its way each page, so fewer, larger pages cost it less */
        rc = list(list_ctx, prefix, cursor, EACH_PAGE, &page, err);
        free(cursor);
        cursor = NULL;
        if (rc != 0)
            break;
        for (size_t i = 0; i < page.n && rc == 0; i++)
            rc = fn(ctx, &page.entries[i]);
        if (rc == 0 && page.next_cursor)
            cursor = lh_strdup(page.next_cursor);
        lh_list_page_free(&page);
        if (rc != 0 || cursor == NULL)
            break;
    }
    return rc;
}

static int
list_store(void *s, const char *prefix, const char *cursor, size_t limit, lh_list_page *page,
           lh_err *err)
{
    return lh_store_list(s, prefix, cursor, limit, page, err);
}

int
lh_store_each(lh_store *s, const char *prefix, lh_store_each_fn fn, void *ctx, lh_err *err)
{
    return lh_storage__each_page(list_store, s, prefix, fn, ctx, err);
}

int
lh_store_each_in(lh_store *s, const char *prefix, lh_list_enter_fn enter, void *enter_ctx,
                 lh_store_each_fn fn, void *ctx, lh_err *err)
{
    if (s->ops->walk == NULL || enter == NULL)
        return lh_store_each(s, prefix, fn, ctx, err);
    if (prefix == NULL)
        prefix = "";
    if (strlen(prefix) > LH_KEY_MAX)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_key", "invalid list prefix");
    if (list_prefix_check(prefix, err) != 0)
        return LH_EINVAL;
    if (lh_fault_hit(LH_FAULT_STORE))
        return injected_fault(err, "list", prefix);
    return s->ops->walk(s, prefix, enter, enter_ctx, fn, ctx, err);
}

int
lh_store_list(lh_store *s, const char *prefix, const char *cursor, size_t limit, lh_list_page *page,
              lh_err *err)
{
    memset(page, 0, sizeof *page);
    if (prefix == NULL)
        prefix = "";
    if (strlen(prefix) > LH_KEY_MAX || (cursor && strlen(cursor) > LH_KEY_MAX))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_key", "invalid list prefix or cursor");
    if (list_prefix_check(prefix, err) != 0)
        return LH_EINVAL;
    if (limit == 0)
        limit = 1000;
    if (lh_fault_hit(LH_FAULT_STORE))
        return injected_fault(err, "list", prefix);
    return s->ops->list(s, prefix, cursor && cursor[0] ? cursor : NULL, limit, page, err);
}

int
lh_store_copy(lh_store *s, const char *src_key, const char *dst_key, lh_err *err)
{
    if (check_key(s, src_key, err) != 0 || check_key(s, dst_key, err) != 0)
        return LH_EINVAL;
    if (lh_fault_hit(LH_FAULT_STORE))
        return injected_fault(err, "copy", src_key);
    return s->ops->copy(s, src_key, dst_key, err);
}

int
lh_store_probe(lh_store *s, lh_err *err)
{
    if (lh_fault_hit(LH_FAULT_STORE))
        return injected_fault(err, "probe", "");
    return s->ops->probe(s, err);
}

int
lh_store_open_local(lh_store *s, const char *key, int *fd_out, lh_obj_info *info, lh_err *err)
{
    if (check_key(s, key, err) != 0)
        return LH_EINVAL;
    if (s->ops->open_local == NULL)
        return lh_err_set(err, LH_EINVAL, 500, "not_local", "%s objects are not local files",
                          s->ops->name);
    if (lh_fault_hit(LH_FAULT_STORE))
        return injected_fault(err, "open", key);
    lh_obj_info tmp;
    return s->ops->open_local(s, key, fd_out, info ? info : &tmp, err);
}

int
lh_store_sweep_temp(lh_store *s, int64_t older_than_us, bool dry_run, int64_t *files,
                    int64_t *bytes, lh_err *err)
{
    int64_t n_files = 0, n_bytes = 0;
    int rc = 0;
    if (s->ops->sweep_temp &&
        (rc = s->ops->sweep_temp(s, older_than_us, dry_run, &n_files, &n_bytes, err)) != 0)
        return rc;
    *files = n_files;
    *bytes = n_bytes;
    return 0;
}

const char *
lh_store_backend(const lh_store *s)
{
    return s->ops->name;
}

const char *
lh_store_describe(const lh_store *s)
{
    return s->describe;
}

void
lh_store_free(lh_store *s)
{
    if (s == NULL)
        return;
    s->ops->free(s);
    free(s->describe);
    free(s);
}

char *
lh_store_fs_path(lh_store *s, const char *key)
{
    if (s->ops->local_path == NULL || check_key(s, key, NULL) != 0)
        return NULL;
    return s->ops->local_path(s, key);
}

/* A sink stopped the get with rc. Its own LH_E* code is passed on (LH_ETOOBIG from
 * lh_store_get_buffer's limit is a 413), except -1 — which is also LH_EINVAL, but is what
 * sinks writing to a descriptor return when the write fails — and LH_EUNAVAIL, which
 * would make lh_buckets_get_object read the rescue bucket into the same sink. Those, and
 * any other value, mean "the reader stopped": 499 read_aborted. */
int
lh_storage__sink_error(lh_err *err, int rc, const char *key)
{
    switch (rc) {
    case LH_ETOOBIG:
        return lh_err_set(err, rc, 413, "object_too_large",
                          "object '%s' is larger than the reader accepts", key);
    case LH_ENOMEM:
        return lh_err_set(err, rc, 503, "out_of_memory", "not enough memory to read object '%s'",
                          key);
    case LH_ENOTFOUND:
    case LH_EEXIST:
    case LH_EPERM:
    case LH_ETIMEOUT:
    case LH_EIO:
    case LH_EINTERNAL:
        return lh_err_set(err, rc, 0, "read_failed", "the reader of object '%s' failed", key);
    default:
        return lh_err_set(err, LH_ECANCELED, 499, "read_aborted", "the reader stopped early");
    }
}
