/*
 * store_prefix.c — a view of another store under a key prefix; profile:{user} buckets
 * are such views ("profiles/alice/...") of the configured profile bucket. The base
 * store is borrowed and must outlive the view.
 */
#include "storage/storage_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct prefix_store {
    lh_store *base;
    char *prefix; /* ends with '/' */
} prefix_store;

static prefix_store *
impl(lh_store *s)
{
    return s->impl;
}

static char *
full(lh_store *s, const char *key)
{
    return lh_sprintf("%s%s", impl(s)->prefix, key);
}

#define FORWARD(call)                                                                              \
    do {                                                                                           \
        char *k = full(s, key);                                                                    \
        int rc = call;                                                                             \
        free(k);                                                                                   \
        return rc;                                                                                 \
    } while (0)

static int
p_get(lh_store *s, const char *key, int64_t offset, int64_t len, lh_sink_fn sink, void *ctx,
      lh_obj_info *info, lh_err *err)
{
    FORWARD(lh_store_get(impl(s)->base, k, offset, len, sink, ctx, info, err));
}

static int
p_put(lh_store *s, const char *key, const lh_source *src, int flags, lh_obj_info *info, lh_err *err)
{
    FORWARD(lh_store_put(impl(s)->base, k, src, flags, info, err));
}

static int
p_head(lh_store *s, const char *key, lh_obj_info *info, lh_err *err)
{
    FORWARD(lh_store_head(impl(s)->base, k, info, err));
}

static int
p_del(lh_store *s, const char *key, lh_err *err)
{
    FORWARD(lh_store_delete(impl(s)->base, k, err));
}

static int
p_open_local(lh_store *s, const char *key, int *fd_out, lh_obj_info *info, lh_err *err)
{
    FORWARD(lh_store_open_local(impl(s)->base, k, fd_out, info, err));
}

static int
p_list(lh_store *s, const char *prefix, const char *cursor, size_t limit, lh_list_page *page,
       lh_err *err)
{
    char *p = full(s, prefix);
    char *c = cursor ? full(s, cursor) : NULL;
    int rc = lh_store_list(impl(s)->base, p, c, limit, page, err);
    free(p);
    free(c);
    if (rc != 0)
        return rc;
    size_t plen = strlen(impl(s)->prefix);
    for (size_t i = 0; i < page->n; i++)
        memmove(page->entries[i].key, page->entries[i].key + plen,
                strlen(page->entries[i].key) - plen + 1);
    if (page->next_cursor)
        memmove(page->next_cursor, page->next_cursor + plen, strlen(page->next_cursor) - plen + 1);
    return 0;
}

static int
p_copy(lh_store *s, const char *src_key, const char *dst_key, lh_err *err)
{
    char *a = full(s, src_key), *b = full(s, dst_key);
    int rc = lh_store_copy(impl(s)->base, a, b, err);
    free(a);
    free(b);
    return rc;
}

static int
p_probe(lh_store *s, lh_err *err)
{
    return lh_store_probe(impl(s)->base, err);
}

static void
p_free(lh_store *s)
{
    free(impl(s)->prefix);
    free(impl(s));
}

static char *
p_local_path(lh_store *s, const char *key)
{
    char *k = full(s, key);
    char *path = lh_store_fs_path(impl(s)->base, k);
    free(k);
    return path;
}

static const lh_store_ops PREFIX_OPS = {
    .local_path = p_local_path,
    .name = "prefix",
    .get = p_get,
    .put = p_put,
    .head = p_head,
    .del = p_del,
    .list = p_list,
    .copy = p_copy,
    .probe = p_probe,
    .open_local = p_open_local,
    .free = p_free,
};

lh_store *
lh_storage__prefix_open(lh_store *base, const char *prefix)
{
    prefix_store *p = lh_calloc(1, sizeof *p);
    p->base = base;
    p->prefix = lh_strdup(prefix);
    lh_store *s = lh_calloc(1, sizeof *s);
    s->ops = &PREFIX_OPS;
    s->impl = p;
    s->describe = lh_sprintf("%s/%s", lh_store_describe(base), prefix);
    /* the base's limits, seen from inside the view, so errors count the view's segments */
    size_t plen = strlen(prefix);
    s->max_segment = base->max_segment;
    s->max_key = base->max_key == 0 ? 0 : base->max_key > plen ? base->max_key - plen : 1;
    return s;
}
