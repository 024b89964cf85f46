/*
 * audit_ship.c — the audit trail's bucket half: sealing segments, shipping them as
 * batches, the batches readers see, and the `_audit` view.
 *
 * A sealed segment is stored as _audit/batch_{segment name without "seg_"} with a
 * create-only put of the file itself (fs buckets may hard-link it). A batch that is
 * already there (a crash between the put and the removal of the segment, or a put whose
 * answer was lost) is the same segment's: same name, and the same size, which is checked;
 * then the segment is simply removed. So a record is never stored under two names.
 * Only after the batch is stored, and the readers' file set swapped (files_lock held for
 * writing: no reader is between listing the files and reading them), is the segment
 * file removed.
 */
#include "agent/audit_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The `_audit` view's columns: name, the expression over read_ndjson_objects' `json`
 * column, and its type (for the empty view). */
static const struct {
    const char *name, *expr, *type;
} COLUMNS[] = {
    {"call_id", "json->>'call_id'", "VARCHAR"},
    {"ts", "TRY_CAST(json->>'ts' AS TIMESTAMP)", "TIMESTAMP"},
    {"principal", "json->>'principal'", "VARCHAR"},
    {"roles", "json_extract_string(json, '$.roles[*]')", "VARCHAR[]"},
    {"tool", "json->>'tool'", "VARCHAR"},
    {"tool_version", "TRY_CAST(json->>'tool_version' AS BIGINT)", "BIGINT"},
    {"via", "json->>'via'", "VARCHAR"},
    {"arguments", "json->'arguments'", "JSON"},
    {"workspace_id", "json->>'workspace_id'", "VARCHAR"},
    {"outcome", "json->>'outcome'", "VARCHAR"},
    {"status", "TRY_CAST(json->>'status' AS INTEGER)", "INTEGER"},
    {"error_code", "json->>'error_code'", "VARCHAR"},
    {"rows", "TRY_CAST(json->>'rows' AS BIGINT)", "BIGINT"},
    {"result_sha256", "json->>'result_sha256'", "VARCHAR"},
    {"dataset_versions", "json->'dataset_versions'", "JSON"},
    {"duration_us", "TRY_CAST(json->>'duration_us' AS BIGINT)", "BIGINT"},
    {"request_id", "json->>'request_id'", "VARCHAR"},
};
#define N_COLUMNS (sizeof COLUMNS / sizeof COLUMNS[0])

/* ---- the files readers see ------------------------------------------------------------------ */

void
lh_audit__file_list(lh_audit *a, lh_buf *out)
{
    for (size_t i = 0; i < a->n_batches; i++) {
        lh_buf_puts(out, out->len ? ", " : "");
        lh_sql_quote(out, a->batch_paths[i]);
    }
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i <= a->n_sealed; i++) {
        const char *name = i < a->n_sealed ? a->sealed[i] : a->active;
        if (name == NULL)
            continue;
        char *path = lh_sprintf("%s/%s", a->dir, name);
        lh_buf_puts(out, out->len ? ", " : "");
        lh_sql_quote(out, path);
        free(path);
    }
    a->view_stale = false;
    pthread_mutex_unlock(&a->lock);
}

void
lh_audit__define_view(lh_audit *a)
{
    lh_buf files, sql;
    lh_buf_init(&files);
    lh_buf_init(&sql);
    lh_audit__file_list(a, &files);
    lh_buf_puts(&sql, "SELECT ");
    for (size_t i = 0; i < N_COLUMNS; i++) {
        lh_buf_puts(&sql, i ? ", " : "");
        if (files.len)
            lh_buf_puts(&sql, COLUMNS[i].expr);
        else
            lh_buf_printf(&sql, "NULL::%s", COLUMNS[i].type);
        lh_buf_puts(&sql, " AS ");
        lh_sql_ident(&sql, COLUMNS[i].name);
    }
    if (files.len) /* a torn or unreadable line reads as NULL and is left out */
        lh_buf_printf(&sql,
                      " FROM read_ndjson_objects([%s], ignore_errors = true) WHERE json IS NOT "
                      "NULL",
                      files.data);
    else
        lh_buf_puts(&sql, " LIMIT 0");
    lh_err err;
    if (a->deps.views && lh_engine_set_dataset(a->deps.views, LH_AUDIT_VIEW, sql.data, &err) != 0)
        lh_audit__failed(a, &err);
    lh_buf_free(&sql);
    lh_buf_free(&files);
}

/* ---- the batches already stored ----------------------------------------------------------- */

typedef struct listed {
    char **keys;
    int64_t *sizes;
    size_t n, cap;
} listed;

static int
on_batch(void *ctx, const lh_list_entry *e)
{
    listed *l = ctx;
    const char *name = e->key + strlen(LH_LAYOUT_AUDIT);
    size_t len = strlen(name);
    if (strncmp(name, "batch_", 6) != 0 || strchr(name, '/') || len < 12 ||
        strcmp(name + len - 6, ".jsonl") != 0)
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->keys = lh_realloc(l->keys, l->cap * sizeof *l->keys);
        l->sizes = lh_realloc(l->sizes, l->cap * sizeof *l->sizes);
    }
    l->keys[l->n] = lh_strdup(e->key);
    l->sizes[l->n++] = e->size;
    return 0;
}

static int64_t
file_size(const char *dir, const char *name)
{
    char *path = lh_sprintf("%s/%s", dir, name);
    struct stat st;
    int64_t size = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
    free(path);
    return size;
}

static void
add_batch_path(lh_audit *a, char *path)
{
    if (a->n_batches == a->cap_batches) {
        a->cap_batches = a->cap_batches ? 2 * a->cap_batches : 64;
        a->batch_paths = lh_realloc(a->batch_paths, a->cap_batches * sizeof *a->batch_paths);
    }
    a->batch_paths[a->n_batches++] = path;
}

/* Drop sealed segment i from the list (its records are stored). Caller holds lock. */
static void
drop_sealed_locked(lh_audit *a, size_t i)
{
    a->pending -= a->sealed_records[i];
    free(a->sealed[i]);
    memmove(a->sealed + i, a->sealed + i + 1, (a->n_sealed - i - 1) * sizeof *a->sealed);
    memmove(a->sealed_records + i, a->sealed_records + i + 1,
            (a->n_sealed - i - 1) * sizeof *a->sealed_records);
    a->n_sealed--;
    a->oldest_mono_us = a->pending > 0 ? lh_mono_us() : 0;
}

int
lh_audit__load_batches(lh_audit *a, lh_err *err)
{
    listed l = {0};
    int rc = lh_buckets_each(a->deps.buckets, a->bucket, LH_LAYOUT_AUDIT, on_batch, &l, NULL, err);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        /* a segment whose batch is stored already: a crash came between the two */
        for (size_t s = 0; s < a->n_sealed; s++) {
            char *key = lh_layout_audit_batch_key(a->sealed[s]);
            bool same = strcmp(key, l.keys[i]) == 0;
            free(key);
            if (!same)
                continue;
            if (file_size(a->dir, a->sealed[s]) == l.sizes[i]) {
                char *path = lh_sprintf("%s/%s", a->dir, a->sealed[s]);
                unlink(path);
                free(path);
                drop_sealed_locked(a, s); /* open: no other thread yet */
            }
            break;
        }
        char *path = NULL;
        lh_err e;
        if (lh_cache_local_path(a->deps.cache, a->primary, l.keys[i], true, &path, &e) != 0) {
            lh_audit__failed(a, &e); /* its records stay in the bucket, unread until restart */
            continue;
        }
        add_batch_path(a, path);
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.keys[i]);
    free(l.keys);
    free(l.sizes);
    if (rc == 0)
        lh_audit__sync_dir(a);
    return rc;
}

/* ---- sealing and shipping -------------------------------------------------------------------- */

/* Close the active segment (after a sync covers all its lines) and make it shippable;
 * open the next one unless stopping. Caller holds ship_lock and lock. */
static void
seal_locked(lh_audit *a)
{
    while (a->syncing)
        pthread_cond_wait(&a->synced, &a->lock);
    if (a->synced_seq < a->written_seq && a->failed_seq == 0) {
        /* appenders whose lines no sync covered yet are waiting: cover them here */
        if (fdatasync(a->fd) == 0) {
            a->synced_seq = a->written_seq;
            a->fsyncs++;
        } else {
            a->failed_seq = a->written_seq;
            a->errors++;
            snprintf(a->last_error, sizeof a->last_error, "fdatasync of %s: %s", a->active,
                     strerror(errno));
        }
        pthread_cond_broadcast(&a->synced);
    }
    close(a->fd);
    a->fd = -1;
    if (a->n_sealed == a->cap_sealed) {
        a->cap_sealed = a->cap_sealed ? 2 * a->cap_sealed : 16;
        a->sealed = lh_realloc(a->sealed, a->cap_sealed * sizeof *a->sealed);
        a->sealed_records =
            lh_realloc(a->sealed_records, a->cap_sealed * sizeof *a->sealed_records);
    }
    a->sealed[a->n_sealed] = a->active;
    a->sealed_records[a->n_sealed++] = a->active_records;
    a->active = NULL;
    a->active_records = a->active_bytes = 0;
    a->view_stale = true;
    lh_err err;
    if (!a->stopping && lh_audit__open_segment(a, &err) != 0) {
        /* the next append tries again */
        a->errors++;
        snprintf(a->last_error, sizeof a->last_error, "%s: %s", err.message, err.detail);
    }
}

/* Store the oldest sealed segment as its batch. 0 with *local (new) the batch's local
 * path for readers. */
static int
store_segment(lh_audit *a, const char *name, char **local, lh_err *err)
{
    char *key = lh_layout_audit_batch_key(name);
    char *path = lh_sprintf("%s/%s", a->dir, name);
    int64_t bytes = 0;
    int rc = lh_buckets_put_file(a->deps.buckets, a->bucket, key, path, true, LH_PUT_CREATE_ONLY,
                                 &bytes, NULL, err);
    if (rc == LH_EEXIST) { /* stored before: a retry after a crash or a lost answer */
        lh_obj_info info;
        bool rescue = false;
        rc = lh_buckets_head_object(a->deps.buckets, a->bucket, key, &info, &rescue, NULL, err);
        if (rc == 0 && info.size != file_size(a->dir, name)) {
            rc = lh_err_set(err, LH_EEXIST, 500, "audit_batch_conflict",
                            "an audit batch of another size has this segment's name");
            lh_err_detail(err, "%s: %lld bytes stored, %lld local", key, (long long)info.size,
                          (long long)file_size(a->dir, name));
            lh_err_hint(err, "the segment stays in %s; compare the two by hand", a->dir);
        }
    }
    if (rc == 0)
        rc = lh_cache_local_path(a->deps.cache, a->primary, key, true, local, err);
    free(path);
    free(key);
    return rc;
}

void
lh_audit__ship(lh_audit *a, bool seal)
{
    pthread_mutex_lock(&a->ship_lock);
    pthread_mutex_lock(&a->lock);
    if (seal && a->active_records > 0)
        seal_locked(a);
    bool have = a->n_sealed > 0;
    pthread_mutex_unlock(&a->lock);
    /* only this function (under ship_lock) removes from or adds to `sealed` */
    while (have) {
        char *local = NULL;
        lh_err err;
        if (store_segment(a, a->sealed[0], &local, &err) != 0) {
            lh_audit__failed(a, &err); /* stays pending; the shipper retries */
            break;
        }
        char *path = lh_sprintf("%s/%s", a->dir, a->sealed[0]);
        pthread_rwlock_wrlock(&a->files_lock);
        add_batch_path(a, local);
        pthread_mutex_lock(&a->lock);
        a->shipped_batches++;
        a->shipped_records += a->sealed_records[0];
        drop_sealed_locked(a, 0);
        have = a->n_sealed > 0;
        pthread_mutex_unlock(&a->lock);
        lh_audit__define_view(a); /* names the batch before the segment goes */
        unlink(path);
        pthread_rwlock_unlock(&a->files_lock);
        free(path);
    }
    lh_audit__sync_dir(a);
    pthread_mutex_lock(&a->lock);
    bool stale = a->view_stale;
    pthread_mutex_unlock(&a->lock);
    if (stale) {
        pthread_rwlock_rdlock(&a->files_lock);
        lh_audit__define_view(a);
        pthread_rwlock_unlock(&a->files_lock);
    }
    pthread_mutex_unlock(&a->ship_lock);
}

static void
deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

void *
lh_audit__shipper_main(void *arg)
{
    lh_audit *a = arg;
    int64_t tick_ms = a->deps.ship_ms / 4 > 10 ? a->deps.ship_ms / 4 : 10;
    int64_t retry_mono_us = 0; /* after a failed shipment, not before this */
    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        struct timespec ts;
        deadline_in(&ts, tick_ms);
        pthread_cond_timedwait(&a->wake, &a->lock, &ts);
        if (a->stopping)
            break;
        int64_t now = lh_mono_us();
        bool due = (a->pending >= a->deps.ship_records ||
                    (a->pending > 0 && now - a->oldest_mono_us >= a->deps.ship_ms * 1000)) &&
                   now >= retry_mono_us;
        if (!due && !a->view_stale)
            continue;
        pthread_mutex_unlock(&a->lock);
        lh_audit__ship(a, due);
        pthread_mutex_lock(&a->lock);
        retry_mono_us = a->n_sealed > 0 ? lh_mono_us() + a->deps.ship_ms * 1000 : 0;
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}
