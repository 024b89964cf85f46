/*
 * ws_int.h — internals shared by the files of src/workspace. Not used outside it.
 */
#ifndef LH_WS_INT_H
#define LH_WS_INT_H

#include "workspace/workspace.h"

#include <pthread.h>

#define LH_WS_ID_MAX 32 /* "ws_" + 16 hex digits, with room */
/* _seq of staged delta rows: above any dataset version, so they win on read */
#define LH_WS_SEQ_BASE INT64_C(1000000000000000)
/* the largest workspace object read back: a version, or a stage's values to publish */
#define LH_WS_DOC_MAX (64 * 1024 * 1024)

/* One workspace. `doc` is the newest committed version: never changed once published here
 * (a writer edits a deep copy and swaps it in), so a reader holding a reference needs no
 * lock while it reads. */
typedef struct ws_entry {
    char id[LH_WS_ID_MAX];
    json_t *doc;            /* guarded by lh_workspaces.lock (the pointer) */
    pthread_mutex_t writer; /* one writer at a time, held across its storage put */
    struct ws_entry *next;
} ws_entry;

struct lh_workspaces {
    lh_workspace_deps deps;
    pthread_mutex_t lock; /* the list and each entry's doc pointer */
    ws_entry *head;
    /* the tier timer */
    pthread_t timer;
    bool timer_started;
    bool stopping;
    pthread_cond_t wake;
};

/* Access a principal has to a workspace. */
enum { WS_NONE = 0, WS_READ = 1, WS_WRITE = 2, WS_OWNER = 3 };
int lh_ws__access(const lh_principal *p, const json_t *doc);

/* A reference to the newest doc of workspace id that p may read at least `need`; 404 when
 * p may not read it, 403 when it may read but needs more. *doc new (json_decref). */
int lh_ws__read(lh_workspaces *w, const lh_principal *p, const char *id, int need, json_t **doc,
                lh_err *err);

/* An edit: the workspace's writer lock, access checked (need), a deep copy to change.
 * End it with lh_ws__commit (which unlocks) or lh_ws__abort. Archived workspaces refuse
 * edits (409 workspace_archived) unless allow_archived. */
typedef struct ws_edit {
    lh_workspaces *w;
    ws_entry *entry;
    json_t *doc; /* the copy (owned) */
} ws_edit;
int lh_ws__begin(lh_workspaces *w, const lh_principal *p, const char *id, int need,
                 bool allow_archived, ws_edit *e, lh_err *err);
/* Store e->doc as the next version with change {op, actor, at, detail} (detail taken,
 * may be NULL) and an activity entry; *out (may be NULL) gets the committed doc (new).
 * 409 workspace_conflict when another process wrote that version first. Always ends e. */
int lh_ws__commit(ws_edit *e, const char *actor, const char *op, json_t *detail, json_t **out,
                  lh_err *err);
void lh_ws__abort(ws_edit *e);
/* lh_ws__commit that keeps the edit open on success (e->doc: a copy of what was
 * committed), for operations of several versions (publish). On failure the caller
 * still ends e (lh_ws__abort). */
int lh_ws__commit_step(ws_edit *e, const char *actor, const char *op, json_t *detail, json_t **out,
                       lh_err *err);
/* Every doc the caller may read (references; new array). */
json_t *lh_ws__readable(lh_workspaces *w, const lh_principal *p);

/* "{...}"-free helpers */
const char *lh_ws__str(const json_t *o, const char *key); /* "" when absent */
void lh_ws__now(char out[LH_TIME_MAX]);

/* Rows (ws_rows.c). The dataset's current manifest (new) after checking p may use its
 * bucket (404 otherwise, as if absent). */
int lh_ws__manifest(lh_workspaces *w, const lh_principal *p, const char *dataset, json_t **m,
                    lh_err *err);
/* A record key as given ({"id": 1} or a scalar for a one-column key) as an object of every
 * key column (new), and its text ("[1]") for lookups (new). 400 naming `where`. */
int lh_ws__key(const json_t *m, const json_t *given, const char *where, json_t **key,
               char **key_text, lh_err *err);
/* The current rows of m for keys (array of key objects): object key_text -> row (new). */
int lh_ws__lookup(lh_workspaces *w, const json_t *m, const json_t *keys, json_t **rows,
                  lh_err *err);
/* A row's hash (16 hex digits) into out; "absent" for NULL. */
void lh_ws__row_hash(const json_t *row, char out[17]);

/* A CREATE TEMP VIEW for each dataset with changes staged in doc, over its files and the
 * staged delta files; add(ctx, sql, paths, n) takes the statement and the pinned paths. */
int lh_ws__delta_views(lh_workspaces *w, const lh_principal *p, const json_t *doc,
                       int (*add)(void *ctx, char *sql, char **paths, size_t n), void *ctx,
                       lh_err *err);

/* SQL views for the caller (ws_sql.c). */
void lh_ws__values_view(lh_buf *sql, const char *name, const char *const *cols,
                        const char *const *types, size_t n_cols, const json_t *rows);

/* Snapshots (ws_tier.c): the dataset versions a doc refers to ({name: version}, new). */
json_t *lh_ws__dataset_versions(lh_workspaces *w, const json_t *doc);
void *lh_ws__timer_main(void *arg);

#endif
