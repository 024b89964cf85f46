/*
 * vlive.c — which generation of an index is live: the live log and the swap.
 *
 * Every time a generation goes live (build, refresh, promote, rollback) a record is added
 * to the index's live log, create-only, never rewritten:
 *   _vectors/{index}/_live/v{seq:06}.json  {"generation", "previous", "newest", "reason",
 *                                           "at", "by"}
 * `newest` is the highest generation committed when the record was written. At start the
 * newest record names the live generation — unless a generation above its `newest` was
 * committed after it (a build that died between its commit and its record), which is
 * then live, as its build meant it to be.
 *
 * lh_vectors__publish swaps the pointer under v->lock: searches in flight finish on the
 * generation they started on (reference counts) and the old generation's memory goes
 * with the last of them.
 */
#include "vector/vector_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_MAX_BYTES (1 << 20)

void
lh_vectors__publish(lh_vectors *v, lh_vidx *x, lh_vgen *g, const char *reason, const char *actor)
{
    pthread_mutex_lock(&v->lock);
    lh_vgen *old = x->live;
    x->live = g;
    if (old && old->generation != g->generation)
        x->previous_live = old->generation;
    if (g->generation > x->last_generation)
        x->last_generation = g->generation;
    /* the spec follows the live generation's settings (a promotion changes them); readers
     * hold their own reference to the old object */
    json_t *spec = json_deep_copy(x->spec);
    if (json_object_get(g->desc, "hnsw"))
        json_object_set(spec, "hnsw", json_object_get(g->desc, "hnsw"));
    json_decref(x->spec);
    x->spec = spec;
    int64_t previous = x->previous_live, newest = x->last_generation;
    int64_t seq = ++x->live_seq;
    pthread_mutex_unlock(&v->lock);
    lh_vgen__release(old);

    char at[LH_TIME_MAX];
    lh_time_format(lh_now_us(), at);
    json_t *record =
        json_pack("{s:I, s:I, s:I, s:s, s:s, s:s}", "generation", (json_int_t)g->generation,
                  "previous", (json_int_t)previous, "newest", (json_int_t)newest, "reason", reason,
                  "at", at, "by", actor ? actor : "");
    lh_err err;
    int rc = LH_EEXIST;
    for (int attempt = 0; rc == LH_EEXIST && attempt < 8; attempt++, seq++) {
        char *key = lh_layout_live_key(x->name, seq);
        rc = lh_vectors__put_json(v, x->bucket, key, record, JSON_COMPACT | JSON_SORT_KEYS,
                                  LH_PUT_CREATE_ONLY, &err);
        free(key);
    }
    json_decref(record);
    if (rc != 0) /* live here; at the next start the newest generation is live again */
        lh_log_err(LH_LOG_WARN, NULL, &err);
    pthread_mutex_lock(&v->lock);
    if (seq - 1 > x->live_seq)
        x->live_seq = seq - 1;
    pthread_mutex_unlock(&v->lock);
}

typedef struct newest_record {
    int64_t seq;
    char *key;
} newest_record;

static int
on_live_key(void *ctx, const lh_list_entry *e)
{
    newest_record *n = ctx;
    const char *base = strrchr(e->key, '/');
    long long seq = 0;
    if (base && sscanf(base, "/v%lld.json", &seq) == 1 && seq > n->seq) {
        n->seq = seq;
        free(n->key);
        n->key = lh_strdup(e->key);
    }
    return 0;
}

void
lh_vectors__live_at_start(lh_vectors *v, lh_vidx *x, int64_t newest_committed, int64_t *live)
{
    *live = newest_committed;
    newest_record n = {0, NULL};
    char *prefix = lh_layout_live_prefix(x->name);
    lh_err err;
    lh_store *store = lh_vectors__store(v, x->bucket);
    if (lh_store_each(store, prefix, on_live_key, &n, &err) != 0)
        lh_log_err(LH_LOG_WARN, NULL, &err);
    free(prefix);
    x->live_seq = n.seq;
    if (n.key == NULL) {
        x->previous_live = newest_committed > 1 ? newest_committed - 1 : 0;
        return;
    }
    lh_buf text;
    lh_buf_init(&text);
    json_t *rec = NULL;
    if (lh_store_get_buffer(store, n.key, RECORD_MAX_BYTES, &text, NULL, &err) == 0)
        rec = json_loadb(text.data, text.len, 0, NULL);
    lh_buf_free(&text);
    free(n.key);
    int64_t generation = json_integer_value(json_object_get(rec, "generation"));
    int64_t newest = json_integer_value(json_object_get(rec, "newest"));
    int64_t previous = json_integer_value(json_object_get(rec, "previous"));
    json_decref(rec);
    if (generation > 0 && generation <= newest_committed && newest >= newest_committed) {
        char *key = lh_layout_gen_key(x->name, generation, "index.json");
        lh_obj_info info;
        if (lh_store_head(store, key, &info, &err) == 0) {
            *live = generation;
            x->previous_live = previous;
        }
        free(key);
    } else {
        x->previous_live = generation > 0 ? generation : newest_committed - 1;
    }
}
