/*
 * applog.c — the write-once append log (ADR-018).
 *
 * Object stores have no append. Events collect in memory and are written as one new
 * object {prefix}batch_{epoch_us:020}.jsonl (one JSON object per line) with a
 * create-only put, so an existing batch is never rewritten; a name collision just moves
 * the timestamp on by a microsecond. Batch names sort in time order. If a write fails
 * the events stay buffered for the next try (bounded: past 10 × max_events the oldest
 * are dropped and counted, so a dead primary cannot exhaust memory).
 *
 * Compaction reads every batch in name order, writes their lines as one new batch with
 * a fresh timestamp (so it sorts after them), and only then deletes the merged ones; a
 * crash in between leaves duplicates, never a loss.
 *
 * Locking: `lock` guards the buffer and counters and is never held during I/O, so
 * appends and stats stay instant while the store is slow or down. `write_lock`
 * serialises writers (flush, compact) so batches keep their order; a writer takes the
 * buffered events, writes them without `lock`, and puts them back in front on failure.
 * After a failed write, appends stop writing for a back-off period (the background
 * tick still retries), so a dead primary cannot make every request wait on it.
 */
#include "storage/storage.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_READ_MAX (256u << 20)
#define COMPACT_MAX (1024u << 20)
#define FAILURE_BACKOFF_US (5 * 1000000)

struct lh_applog {
    pthread_mutex_t lock;
    pthread_mutex_t write_lock;
    int64_t failed_mono_us; /* when the last write failed, 0 after a success */
    lh_store *store;
    char *prefix;
    int max_events;
    int64_t max_age_us;
    json_t *buffer;         /* array of events */
    int64_t oldest_mono_us; /* when the oldest buffered event arrived */
    int64_t last_epoch_us;  /* the newest batch name we wrote */
    int64_t written_batches, dropped;
};

lh_applog *
lh_applog_new(lh_store *store, const char *prefix, int max_events, int64_t max_age_ms)
{
    lh_applog *log = lh_calloc(1, sizeof *log);
    pthread_mutex_init(&log->lock, NULL);
    pthread_mutex_init(&log->write_lock, NULL);
    log->store = store;
    log->prefix = lh_strdup(prefix);
    log->max_events = max_events > 0 ? max_events : 100;
    log->max_age_us = max_age_ms * 1000;
    log->buffer = json_array();
    return log;
}

void
lh_applog_free(lh_applog *log)
{
    if (log == NULL)
        return;
    json_decref(log->buffer);
    free(log->prefix);
    pthread_mutex_destroy(&log->write_lock);
    pthread_mutex_destroy(&log->lock);
    free(log);
}

/* Write lines as a new batch object. Caller holds write_lock (not lock). */
static int
write_batch(lh_applog *log, const char *data, size_t len, lh_err *err)
{
    pthread_mutex_lock(&log->lock);
    int64_t epoch = lh_now_us();
    if (epoch <= log->last_epoch_us)
        epoch = log->last_epoch_us + 1;
    pthread_mutex_unlock(&log->lock);
    for (int attempt = 0; attempt < 8; attempt++, epoch++) {
        char key[LH_KEY_MAX + 1];
        snprintf(key, sizeof key, "%sbatch_%020lld.jsonl", log->prefix, (long long)epoch);
        int rc = lh_store_put_buffer(log->store, key, data, len, LH_PUT_CREATE_ONLY, err);
        if (rc == LH_EEXIST)
            continue; /* another writer took this microsecond */
        pthread_mutex_lock(&log->lock);
        if (rc == 0) {
            log->last_epoch_us = epoch;
            log->written_batches++;
            log->failed_mono_us = 0;
        } else {
            log->failed_mono_us = lh_mono_us();
        }
        pthread_mutex_unlock(&log->lock);
        return rc;
    }
    return lh_err_set(err, LH_EIO, 500, "append_log_busy", "could not find a free batch name");
}

static void
cap_locked(lh_applog *log)
{
    size_t cap = (size_t)log->max_events * 10;
    size_t n = json_array_size(log->buffer);
    if (n <= cap)
        return;
    json_t *kept = json_array();
    for (size_t i = n - cap; i < n; i++)
        json_array_append(kept, json_array_get(log->buffer, i));
    log->dropped += (int64_t)(n - cap);
    json_decref(log->buffer);
    log->buffer = kept;
}

/* Write everything buffered as one batch. Caller holds write_lock. */
static int
flush_events(lh_applog *log, lh_err *err)
{
    pthread_mutex_lock(&log->lock);
    json_t *taken = log->buffer;
    log->buffer = json_array();
    pthread_mutex_unlock(&log->lock);
    size_t n = json_array_size(taken);
    if (n == 0) {
        json_decref(taken);
        return 0;
    }
    lh_buf lines;
    lh_buf_init(&lines);
    for (size_t i = 0; i < n; i++) {
        char *line = json_dumps(json_array_get(taken, i), JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line) {
            lh_buf_puts(&lines, line);
            lh_buf_append(&lines, "\n", 1);
            free(line);
        }
    }
    int rc = write_batch(log, lines.data, lines.len, err);
    lh_buf_free(&lines);
    if (rc != 0) {
        /* put them back in front of anything that arrived meanwhile */
        pthread_mutex_lock(&log->lock);
        json_array_extend(taken, log->buffer);
        json_decref(log->buffer);
        log->buffer = taken;
        taken = NULL;
        cap_locked(log);
        if (json_array_size(log->buffer) > 0 && log->oldest_mono_us == 0)
            log->oldest_mono_us = lh_mono_us();
        pthread_mutex_unlock(&log->lock);
    }
    json_decref(taken);
    return rc;
}

int
lh_applog_append(lh_applog *log, json_t *event, lh_err *err)
{
    pthread_mutex_lock(&log->lock);
    if (json_array_size(log->buffer) == 0)
        log->oldest_mono_us = lh_mono_us();
    json_array_append_new(log->buffer, event);
    cap_locked(log);
    bool full = json_array_size(log->buffer) >= (size_t)log->max_events;
    bool backing_off =
        log->failed_mono_us != 0 && lh_mono_us() - log->failed_mono_us < FAILURE_BACKOFF_US;
    pthread_mutex_unlock(&log->lock);
    if (!full || backing_off)
        return 0;
    /* write now unless another writer is busy (it will take these events too) */
    if (pthread_mutex_trylock(&log->write_lock) != 0)
        return 0;
    int rc = flush_events(log, err);
    pthread_mutex_unlock(&log->write_lock);
    return rc;
}

int
lh_applog_flush(lh_applog *log, lh_err *err)
{
    pthread_mutex_lock(&log->write_lock);
    int rc = flush_events(log, err);
    pthread_mutex_unlock(&log->write_lock);
    return rc;
}

int
lh_applog_tick(lh_applog *log, lh_err *err)
{
    pthread_mutex_lock(&log->lock);
    bool due =
        json_array_size(log->buffer) > 0 && lh_mono_us() - log->oldest_mono_us >= log->max_age_us;
    pthread_mutex_unlock(&log->lock);
    return due ? lh_applog_flush(log, err) : 0;
}

/* Every batch key under the prefix, in name (= time) order. */
typedef struct batch_list {
    const char *prefix;
    char **keys;
    size_t n, cap;
} batch_list;

static int
collect_batch(void *ctx, const lh_list_entry *e)
{
    batch_list *l = ctx;
    const char *name = e->key + strlen(l->prefix);
    if (strncmp(name, "batch_", 6) != 0 || strchr(name, '/'))
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->keys = lh_realloc(l->keys, l->cap * sizeof *l->keys);
    }
    l->keys[l->n++] = lh_strdup(e->key);
    return 0;
}

static int
list_batches(lh_applog *log, char ***keys_out, size_t *n_out, lh_err *err)
{
    batch_list l = {.prefix = log->prefix};
    int rc = lh_store_each(log->store, log->prefix, collect_batch, &l, err);
    char **keys = l.keys;
    size_t n = l.n;
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            free(keys[i]);
        free(keys);
        return rc;
    }
    *keys_out = keys;
    *n_out = n;
    return 0;
}

static void
free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

/* Append the events of one batch to arr. Lines that do not parse are skipped. */
static int
read_batch(lh_applog *log, const char *key, json_t *arr, lh_err *err)
{
    lh_buf data;
    int rc = lh_store_get_buffer(log->store, key, BATCH_READ_MAX, &data, NULL, err);
    if (rc != 0)
        return rc;
    char *line = data.data;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        json_t *ev = json_loadb(line, len, 0, NULL);
        if (ev)
            json_array_append_new(arr, ev);
        line = nl ? nl + 1 : NULL;
    }
    lh_buf_free(&data);
    return 0;
}

/* The stored batches' lines, one after another, each ending in a newline (lines). */
static int
concat_batches(lh_applog *log, char *const *keys, size_t n, lh_buf *lines, lh_err *err)
{
    for (size_t i = 0; i < n; i++) {
        lh_buf data;
        int rc = lh_store_get_buffer(log->store, keys[i], BATCH_READ_MAX, &data, NULL, err);
        if (rc != 0)
            return rc;
        if (lines->len + data.len > COMPACT_MAX) {
            lh_buf_free(&data);
            rc = lh_err_set(err, LH_ETOOBIG, 413, "journal_too_large",
                            "the journal is too large to compact in one pass");
            lh_err_detail(err, "more than %u bytes in %zu batches", COMPACT_MAX, n);
            return rc;
        }
        lh_buf_append(lines, data.data, data.len);
        if (data.len > 0 && data.data[data.len - 1] != '\n')
            lh_buf_append(lines, "\n", 1);
        lh_buf_free(&data);
    }
    return 0;
}

int
lh_applog_compact(lh_applog *log, int *merged, lh_err *err)
{
    pthread_mutex_lock(&log->write_lock);
    char **keys = NULL;
    size_t n = 0;
    lh_buf lines;
    lh_buf_init(&lines);
    *merged = 0;
    int rc = list_batches(log, &keys, &n, err);
    if (rc != 0 || n <= 1)
        goto out;
    if ((rc = concat_batches(log, keys, n, &lines, err)) != 0 ||
        (rc = write_batch(log, lines.data, lines.len, err)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        lh_err ignored;
        /* a batch that cannot be deleted now is merged again next time: duplicates
         * are possible after a failure, losses are not */
        lh_store_delete(log->store, keys[i], &ignored);
    }
    *merged = (int)n;
out:
    lh_buf_free(&lines);
    free_keys(keys, n);
    pthread_mutex_unlock(&log->write_lock);
    return rc;
}

/* The newest stored events, read batch by batch from the newest until `want` are found
 * (all of them when there are fewer); *out (new) keeps the batches' order. */
static int
read_newest(lh_applog *log, char *const *keys, size_t n, size_t want, json_t **out, lh_err *err)
{
    json_t *stored = json_array();
    size_t have = 0;
    for (size_t first = n; first > 0 && have < want;) {
        first--;
        json_t *one = json_array();
        int rc = read_batch(log, keys[first], one, err);
        if (rc != 0) {
            json_decref(one);
            json_decref(stored);
            return rc;
        }
        have += json_array_size(one);
        json_array_extend(one, stored);
        json_decref(stored);
        stored = one;
    }
    *out = stored;
    return 0;
}

int
lh_applog_read(lh_applog *log, size_t limit, json_t **out, lh_err *err)
{
    /* stored batches are read without `lock`; write_lock keeps a flush from moving
     * events from the buffer into a batch while we look at both */
    pthread_mutex_lock(&log->write_lock);
    json_t *arr = NULL, *buffered = NULL, *stored = NULL;
    char **keys = NULL;
    size_t n = 0;
    int rc = list_batches(log, &keys, &n, err);
    if (rc != 0)
        goto out;
    pthread_mutex_lock(&log->lock);
    buffered = json_copy(log->buffer);
    pthread_mutex_unlock(&log->lock);
    size_t in_buffer = json_array_size(buffered);
    if ((rc = read_newest(log, keys, n, limit > in_buffer ? limit - in_buffer : 0, &stored, err)) !=
        0)
        goto out;
    /* the last `limit` of the stored events followed by the buffered ones */
    json_array_extend(stored, buffered);
    size_t total = json_array_size(stored);
    arr = json_array();
    for (size_t i = total > limit ? total - limit : 0; i < total; i++)
        json_array_append(arr, json_array_get(stored, i));
out:
    json_decref(stored);
    json_decref(buffered);
    free_keys(keys, n);
    pthread_mutex_unlock(&log->write_lock);
    if (rc == 0)
        *out = arr;
    return rc;
}

void
lh_applog_stats(lh_applog *log, int64_t *buffered, int64_t *written_batches, int64_t *dropped)
{
    pthread_mutex_lock(&log->lock);
    *buffered = (int64_t)json_array_size(log->buffer);
    *written_batches = log->written_batches;
    *dropped = log->dropped;
    pthread_mutex_unlock(&log->lock);
}
