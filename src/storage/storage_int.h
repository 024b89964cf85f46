/*
 * storage_int.h — the backend vtable behind lh_store. Used only inside src/storage.
 */
#ifndef LH_STORAGE_INT_H
#define LH_STORAGE_INT_H

#include "storage/storage.h"

typedef struct lh_store_ops {
    const char *name;
    int (*get)(lh_store *s, const char *key, int64_t offset, int64_t len, lh_sink_fn sink,
               void *ctx, lh_obj_info *info, lh_err *err);
    int (*put)(lh_store *s, const char *key, const lh_source *src, int flags, lh_obj_info *info,
               lh_err *err);
    int (*head)(lh_store *s, const char *key, lh_obj_info *info, lh_err *err);
    int (*del)(lh_store *s, const char *key, lh_err *err);
    int (*list)(lh_store *s, const char *prefix, const char *cursor, size_t limit,
                lh_list_page *page, lh_err *err);
    /* NULL for backends without folders: every key under prefix, in byte order, to fn,
     * not entering a folder enter refuses (lh_store_each_in) */
    int (*walk)(lh_store *s, const char *prefix, lh_list_enter_fn enter, void *enter_ctx,
                lh_store_each_fn fn, void *ctx, lh_err *err);
    int (*copy)(lh_store *s, const char *src_key, const char *dst_key, lh_err *err);
    int (*probe)(lh_store *s, lh_err *err);
    int (*open_local)(lh_store *s, const char *key, int *fd_out, lh_obj_info *info, lh_err *err);
    char *(*local_path)(lh_store *s, const char *key); /* NULL for remote backends */
    /* NULL for backends without temporary files of their own */
    int (*sweep_temp)(lh_store *s, int64_t older_than_us, bool dry_run, int64_t *files,
                      int64_t *bytes, lh_err *err);
    void (*free)(lh_store *s);
} lh_store_ops;

struct lh_store {
    const lh_store_ops *ops;
    char *describe;
    void *impl;
    /* the backend's own limits on a key, checked by the front after lh_key_check (0: none
     * beyond it): bytes per '/'-separated segment (fs: a file name) and in all (s3: 1024
     * with the store's key prefix) */
    size_t max_segment, max_key;
};

/* Read all of src (buffer or file) in pieces; used by backends. */
int lh_storage__source_read(const lh_source *src, int64_t offset, void *buf, size_t n, lh_err *err);
int lh_storage__sort_entries(lh_list_entry *entries, size_t n);
/* The error for a get that its sink stopped with rc (see lh_sink_fn); returns the code. */
int lh_storage__sink_error(lh_err *err, int rc, const char *key);
/* The paging walk behind lh_store_each and lh_buckets_each: list pages of 1000 keys
 * under prefix through list(list_ctx, ...) and call fn for each entry (see lh_store_each). */
typedef int (*lh_storage__list_fn)(void *list_ctx, const char *prefix, const char *cursor,
                                   size_t limit, lh_list_page *page, lh_err *err);
int lh_storage__each_page(lh_storage__list_fn list, void *list_ctx, const char *prefix,
                          lh_store_each_fn fn, void *ctx, lh_err *err);
/* A view of base under prefix (ending in /); base is borrowed. Returns new. */
lh_store *lh_storage__prefix_open(lh_store *base, const char *prefix);

#endif
