/*
 * ui_assets.h — the web console's files, compiled into the binary (the table is generated
 * at build time by scripts/embed_assets.c from ui/ and the pinned libraries in
 * third_party/ui/). Served by h_ui.c under /ui/.
 */
#ifndef LH_UI_ASSETS_H
#define LH_UI_ASSETS_H

#include <stddef.h>

typedef struct lh_ui_asset {
    const char *path;         /* "/ui/app.js" */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* the same bytes, gzip level 9 */
    size_t gz_len;
    const char *etag; /* "\"<16 hex of SHA-256>\"" */
} lh_ui_asset;

extern const lh_ui_asset lh_ui_assets[];
extern const size_t lh_ui_n_assets;

#endif
