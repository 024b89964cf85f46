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
    int (*copy)(lh_store *s, const char *src_key, const char *dst_key, lh_err *err);
    int (*probe)(lh_store *s, lh_err *err);
    int (*open_local)(lh_store *s, const char *key, int *fd_out, lh_obj_info *info, lh_err *err);
    char *(*local_path)(lh_store *s, const char *key); /* NULL for remote backends */
    void (*free)(lh_store *s);
} lh_store_ops;

struct lh_store {
    const lh_store_ops *ops;
    char *describe;
    void *impl;
};

/* Read all of src (buffer or file) in pieces; used by backends. */
int lh_storage__source_read(const lh_source *src, int64_t offset, void *buf, size_t n, lh_err *err);
int lh_storage__sort_entries(lh_list_entry *entries, size_t n);
/* The error for a get that its sink stopped with rc (see lh_sink_fn); returns the code. */
int lh_storage__sink_error(lh_err *err, int rc, const char *key);
/* A view of base under prefix (ending in /); base is borrowed. Returns new. */
lh_store *lh_storage__prefix_open(lh_store *base, const char *prefix);

#endif
