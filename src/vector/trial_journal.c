/*
 * trial_journal.c — the trial journal and its SQL view.
 *
 * Trials are appended to an append log of JSON lines under _hnsw/trials/ of their index's
 * bucket (flushed after every trial, so a trial that was answered is stored): one log per
 * bucket (journals_lock guards the list). The users' engine reads the batches of every
 * bucket as the view `_hnsw_trials`, redefined over the stored batches after each trial
 * run. The
 * view's files are pinned in the local cache while the view names them (view_lock guards
 * the list of pins). Listing, best-of and promotion read the journal back.
 */
#include "vector/vector_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
str_of(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

#define TRIAL_COLUMNS                                                                              \
    "trial_id: 'VARCHAR', index: 'VARCHAR', generation: 'BIGINT', eval: 'VARCHAR', "               \
    "metric: 'VARCHAR', m: 'INTEGER', ef_construction: 'INTEGER', ef_search: 'INTEGER', "          \
    "quantization: 'VARCHAR', k: 'INTEGER', queries: 'INTEGER', vectors: 'BIGINT', dim: "          \
    "'INTEGER', "                                                                                  \
    "recall: 'DOUBLE', recall_ids: 'DOUBLE', p50_us: 'DOUBLE', p95_us: 'DOUBLE', p99_us: "         \
    "'DOUBLE', qps: 'DOUBLE', "                                                                    \
    "build_seconds: 'DOUBLE', graph_reused: 'BOOLEAN', memory_bytes: 'BIGINT', "                   \
    "threads: 'INTEGER', created_at: 'VARCHAR', created_by: 'VARCHAR', job_id: 'VARCHAR'"

#define TRIALS_EMPTY                                                                               \
    "SELECT NULL::VARCHAR AS trial_id, NULL::VARCHAR AS index, NULL::BIGINT AS generation, "       \
    "NULL::VARCHAR AS eval, NULL::VARCHAR AS metric, NULL::INTEGER AS m, "                         \
    "NULL::INTEGER AS ef_construction, NULL::INTEGER AS ef_search, "                               \
    "NULL::VARCHAR AS quantization, NULL::INTEGER AS k, "                                          \
    "NULL::INTEGER AS queries, NULL::BIGINT AS vectors, NULL::INTEGER AS dim, "                    \
    "NULL::DOUBLE AS recall, NULL::DOUBLE AS recall_ids, NULL::DOUBLE AS p50_us, NULL::DOUBLE AS " \
    "p95_us, "                                                                                     \
    "NULL::DOUBLE AS p99_us, NULL::DOUBLE AS qps, NULL::DOUBLE AS build_seconds, "                 \
    "NULL::BOOLEAN AS graph_reused, NULL::BIGINT AS memory_bytes, NULL::INTEGER AS threads, "      \
    "NULL::VARCHAR AS created_at, NULL::VARCHAR AS created_by, NULL::VARCHAR AS job_id LIMIT 0"

typedef struct view_files {
    lh_vectors *v;
    lh_store *store; /* the bucket being listed */
    lh_buf list;
    char **pins;
    size_t n_pins, cap;
} view_files;

static int
on_trial_batch_key(void *ctx, const lh_list_entry *e)
{
    view_files *f = ctx;
    size_t len = strlen(e->key);
    if (len < 6 || strcmp(e->key + len - 6, ".jsonl") != 0)
        return 0;
    char *path = NULL;
    lh_err err;
    if (lh_cache_local_path(f->v->deps.cache, f->store, e->key, true, &path, &err) != 0) {
        lh_log_err(LH_LOG_WARN, NULL, &err);
        return 0;
    }
    if (f->n_pins == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        f->pins = lh_realloc(f->pins, f->cap * sizeof *f->pins);
    }
    f->pins[f->n_pins++] = path;
    lh_buf_puts(&f->list, f->list.len ? ", " : "");
    lh_sql_quote(&f->list, path);
    return 0;
}

void
lh_vectors__journal_view(lh_vectors *v)
{
    view_files f = {.v = v};
    lh_buf_init(&f.list);
    lh_err err;
    const char *buckets[LH_VECTORS_MAX_BUCKETS];
    size_t n = lh_vectors__buckets(v, buckets, LH_VECTORS_MAX_BUCKETS);
    for (size_t i = 0; i < n; i++) {
        f.store = lh_vectors__store(v, buckets[i]);
        if (lh_store_each(f.store, LH_LAYOUT_TRIALS, on_trial_batch_key, &f, &err) != 0)
            lh_log_err(LH_LOG_WARN, NULL, &err);
    }
    lh_buf sql;
    lh_buf_init(&sql);
    /* a relation of the users' engine's registry, not a DuckDB view: each principal's
     * resolver filters it to the trials of the indexes it sees (lh_vectors_trials_guard) */
    if (f.list.len)
        lh_buf_printf(&sql,
                      "SELECT * FROM read_json([%s], "
                      "format = 'newline_delimited', columns = {" TRIAL_COLUMNS "})",
                      f.list.data);
    else
        lh_buf_puts(&sql, TRIALS_EMPTY);
    if (lh_engine_set_dataset(v->deps.views, LH_VECTORS_TRIALS_VIEW, sql.data, &err) != 0)
        lh_log(LH_LOG_ERROR, NULL, NULL, "trials: view _hnsw_trials not defined: %s %s",
               err.message, err.detail);
    lh_buf_free(&sql);
    lh_buf_free(&f.list);
    /* swap the pins: the old view's files may go */
    pthread_mutex_lock(&v->view_lock);
    char **old = v->view_pins;
    size_t n_old = v->n_view_pins;
    v->view_pins = f.pins;
    v->n_view_pins = f.n_pins;
    pthread_mutex_unlock(&v->view_lock);
    for (size_t i = 0; i < n_old; i++) {
        lh_cache_unpin(v->deps.cache, old[i]);
        free(old[i]);
    }
    free(old);
}

/* The journal of bucket (borrowed; made on first use, freed at close). */
static lh_applog *
journal_of(lh_vectors *v, const char *bucket)
{
    pthread_mutex_lock(&v->journals_lock);
    lh_vjournal *j = v->journals;
    while (j && strcmp(j->bucket, bucket) != 0)
        j = j->next;
    if (!j) {
        j = lh_calloc(1, sizeof *j);
        snprintf(j->bucket, sizeof j->bucket, "%s", bucket);
        /* every trial is flushed as it finishes; the bounds only matter for bursts */
        j->log = lh_applog_new(lh_vectors__store(v, bucket), LH_LAYOUT_TRIALS, 1000, 60000);
        j->next = v->journals;
        v->journals = j;
    }
    pthread_mutex_unlock(&v->journals_lock);
    return j->log;
}

void
lh_vectors__journal_open(lh_vectors *v)
{
    pthread_mutex_init(&v->view_lock, NULL);
    pthread_mutex_init(&v->journals_lock, NULL);
    lh_vectors__journal_view(v);
}

void
lh_vectors__journal_close(lh_vectors *v)
{
    while (v->journals) {
        lh_vjournal *j = v->journals;
        v->journals = j->next;
        lh_err err;
        if (lh_applog_flush(j->log, &err) != 0)
            lh_log_err(LH_LOG_WARN, NULL, &err);
        lh_applog_free(j->log);
        free(j);
    }
    pthread_mutex_destroy(&v->journals_lock);
    for (size_t i = 0; i < v->n_view_pins; i++) {
        lh_cache_unpin(v->deps.cache, v->view_pins[i]);
        free(v->view_pins[i]);
    }
    free(v->view_pins);
    pthread_mutex_destroy(&v->view_lock);
}

int
lh_vectors__journal_trial(lh_vectors *v, const char *bucket, json_t *trial, lh_err *err)
{
    lh_applog *log = journal_of(v, bucket);
    int rc = lh_applog_append(log, json_incref(trial), err);
    if (rc == 0)
        rc = lh_applog_flush(log, err);
    return rc;
}

int
lh_vectors_trials(lh_vectors *v, const char *index, json_t **out, lh_err *err)
{
    /* the index's own bucket, and the primary one (trials journaled before they lived
     * beside their index), oldest first */
    char bucket[LH_NAME_MAX] = "";
    pthread_mutex_lock(&v->lock);
    lh_vidx *x = lh_vectors__find_locked(v, index);
    if (x)
        snprintf(bucket, sizeof bucket, "%s", x->bucket);
    pthread_mutex_unlock(&v->lock);
    const char *primary = lh_buckets_primary_name(v->deps.buckets);
    const char *from[2] = {primary, bucket[0] && strcmp(bucket, primary) != 0 ? bucket : NULL};
    json_t *mine = json_array();
    for (size_t b = 0; b < 2; b++) {
        if (from[b] == NULL)
            continue;
        json_t *all = NULL;
        int rc = lh_applog_read(journal_of(v, from[b]), 1000000, &all, err);
        if (rc != 0) {
            json_decref(mine);
            return rc;
        }
        size_t i;
        json_t *t;
        json_array_foreach(all, i, t)
        {
            if (strcmp(str_of(t, "index"), index) == 0)
                json_array_append(mine, t);
        }
        json_decref(all);
    }
    *out = mine;
    return 0;
}

int
lh_vectors__trial_config(lh_vectors *v, const char *index, const char *trial_id, json_t **hnsw,
                         lh_err *err)
{
    json_t *mine = NULL;
    int rc = lh_vectors_trials(v, index, &mine, err);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *t;
    json_t *found = NULL;
    json_array_foreach(mine, i, t)
    {
        if (strcmp(str_of(t, "trial_id"), trial_id) == 0)
            found = t;
    }
    if (found) {
        *hnsw = json_pack("{s:O, s:O, s:O}", "m", json_object_get(found, "m"), "ef_construction",
                          json_object_get(found, "ef_construction"), "ef_search",
                          json_object_get(found, "ef_search"));
        /* trials from before quantization have none: they ran on float vectors */
        const char *quant = json_string_value(json_object_get(found, "quantization"));
        json_object_set_new(*hnsw, "quantization", json_string(quant ? quant : "none"));
    }
    json_decref(mine);
    if (!found) {
        lh_err_set(err, LH_ENOTFOUND, 404, "trial_not_found", "index '%s' has no trial '%s'", index,
                   trial_id);
        lh_err_hint(err, "GET /vectors/hnsw/trials/%s lists them", index);
        return LH_ENOTFOUND;
    }
    return 0;
}

int
lh_vectors_trial_best(lh_vectors *v, const char *index, double min_recall, double max_p95_us,
                      json_t **out, lh_err *err)
{
    json_t *mine = NULL;
    int rc = lh_vectors_trials(v, index, &mine, err);
    if (rc != 0)
        return rc;
    json_t *best = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(mine, i, t)
    {
        double recall = json_number_value(json_object_get(t, "recall"));
        double p50 = json_number_value(json_object_get(t, "p50_us"));
        double p95 = json_number_value(json_object_get(t, "p95_us"));
        double best_recall = best ? json_number_value(json_object_get(best, "recall")) : 0;
        double best_p50 = best ? json_number_value(json_object_get(best, "p50_us")) : 0;
        double best_p95 = best ? json_number_value(json_object_get(best, "p95_us")) : 0;
        bool better;
        if (min_recall >= 0) /* the fastest that meets the recall; ties: the lower p95 */
            better = recall >= min_recall &&
                     (!best || p50 < best_p50 || (p50 == best_p50 && p95 < best_p95));
        else /* the best recall within the latency; ties: the faster */
            better = p95 <= max_p95_us &&
                     (!best || recall > best_recall || (recall == best_recall && p50 < best_p50));
        if (better)
            best = t;
    }
    if (best)
        *out = json_deep_copy(best);
    json_decref(mine);
    if (!best) {
        if (min_recall >= 0)
            lh_err_set(err, LH_ENOTFOUND, 404, "no_trial",
                       "no trial of index '%s' reached recall %.4g", index, min_recall);
        else
            lh_err_set(err, LH_ENOTFOUND, 404, "no_trial",
                       "no trial of index '%s' kept p95 within %.0f us", index, max_p95_us);
        lh_err_hint(err, "run more configurations with POST /vectors/hnsw/trial");
        return LH_ENOTFOUND;
    }
    return 0;
}
