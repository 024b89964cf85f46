/*
 * journal.c — the events journal (ADR-012): which events batches count, the `_events`
 * view over them, reading events with filters, and the batch of a dataset-level event.
 *
 * Every mutation (a change of rows, an ingest, a delete) stores its events batch at
 *   _journal/events/batch_{epoch_us}-{random}_{dataset}_v{N}.parquet
 * before it commits manifest version N, which lists the batch as a file of kind
 * "events". A batch counts only if that manifest version exists and lists exactly that
 * batch: the batch of a change that crashed before its commit (or lost the race for
 * version N) is never served. Batches are checked once, at start or when their commit
 * succeeds; history is never deleted. At start a batch the catalog checkpoint counted,
 * or one of the version the index just loaded, costs no manifest read; only the others
 * read theirs.
 *
 * Thread safety: the index lives in the catalog under its lock; view definitions run
 * outside it.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char EVENTS_EMPTY[] =
    "SELECT NULL::VARCHAR AS dataset, NULL::VARCHAR AS key, NULL::VARCHAR AS field, "
    "NULL::VARCHAR AS old_value, NULL::VARCHAR AS new_value, NULL::VARCHAR AS op, "
    "NULL::VARCHAR AS actor, NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS source, "
    "NULL::VARCHAR AS workspace_id, NULL::BIGINT AS version, NULL::BIGINT AS seq WHERE false";

/* "..._{dataset}_v{N}.parquet" → dataset, N; 0 when the key is a batch's. */
static int
parse_batch_key(const char *key, char *ds_name, size_t size, int64_t *version)
{
    size_t plen = strlen(LH_LAYOUT_JOURNAL "batch_");
    size_t len = strlen(key);
    if (strncmp(key, LH_LAYOUT_JOURNAL "batch_", plen) != 0 || len < plen + 9 ||
        strcmp(key + len - 8, ".parquet") != 0)
        return -1;
    const char *tag_end = strchr(key + plen, '_');
    const char *v = NULL;
    for (const char *p = key + len - 8; p > key + plen; p--)
        if (p[0] == '_' && p[1] == 'v') {
            v = p;
            break;
        }
    if (!tag_end || !v || v <= tag_end)
        return -1;
    size_t n = (size_t)(v - tag_end - 1);
    if (n == 0 || n >= size)
        return -1;
    memcpy(ds_name, tag_end + 1, n);
    ds_name[n] = '\0';
    char *end = NULL;
    long long ver = strtoll(v + 2, &end, 10);
    if (!lh_name_valid(ds_name) || ver < 1 || end != key + len - 8)
        return -1;
    *version = ver;
    return 0;
}

static bool
manifest_lists(const json_t *m, const char *key)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        const char *kind = json_string_value(json_object_get(f, "kind"));
        const char *path = json_string_value(json_object_get(f, "path"));
        if (kind && path && strcmp(kind, "events") == 0 && strcmp(path, key) == 0)
            return true;
    }
    return false;
}

/* Append the relation of the counted batches (of one dataset, or all when NULL) to sql:
 * (SELECT * FROM read_parquet([...])), or an empty one with the events' columns. */
static void
batches_sql(lh_catalog *c, const char *only, lh_buf *sql)
{
    lh_buf list;
    lh_buf_init(&list);
    pthread_mutex_lock(&c->lock);
    size_t i;
    json_t *b;
    json_array_foreach(c->journal, i, b)
    {
        if (only && strcmp(json_string_value(json_object_get(b, "dataset")), only) != 0)
            continue; /* only the batches that can match */
        lh_buf_puts(&list, list.len ? ", " : "");
        lh_sql_quote(&list, json_string_value(json_object_get(b, "path")));
    }
    pthread_mutex_unlock(&c->lock);
    if (list.len)
        lh_buf_printf(sql, "(SELECT * FROM read_parquet([%s]))", list.data);
    else
        lh_buf_printf(sql, "(%s)", EVENTS_EMPTY);
    lh_buf_free(&list);
}

/* Register `_events` with the users' engine over every counted batch: a relation of the
 * registry (not a view in DuckDB's catalog), so each principal's resolver filters it to
 * the events of the datasets it sees (visible.c). */
static void
define_view(lh_catalog *c)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT * FROM ");
    batches_sql(c, NULL, &sql);
    lh_err err;
    if (lh_engine_set_dataset(c->views, LH_CATALOG_EVENTS_VIEW, sql.data, &err) != 0)
        lh_log(LH_LOG_ERROR, NULL, NULL, "journal: view _events not defined: %s %s", err.message,
               err.detail);
    lh_buf_free(&sql);
}

/* Count batch `key` of `bucket` (its commit is known good): pin a local copy. */
static int
add_batch(lh_catalog *c, const char *bucket, const char *key, const char *ds_name, int64_t version,
          lh_err *err)
{
    lh_store *store = lh_buckets_get(c->buckets, bucket, err);
    if (store == NULL)
        return LH_ENOTFOUND;
    char *path = NULL;
    int rc = lh_cache_local_path(c->cache, store, key, true, &path, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&c->lock);
    json_array_append_new(c->journal, json_pack("{s:s, s:s, s:s, s:s, s:I}", "bucket", bucket,
                                                "key", key, "path", path, "dataset", ds_name,
                                                "version", (json_int_t)version));
    pthread_mutex_unlock(&c->lock);
    free(path);
    return 0;
}

static int
collect_key(void *ctx, const lh_list_entry *e)
{
    json_array_append_new(ctx, json_string(e->key));
    return 0;
}

/* The manifest the index holds for dataset ds_name of bucket when it is of `version`
 * (a reference), else NULL. Manifests in memory are immutable. */
static json_t *
loaded_manifest(lh_catalog *c, const char *bucket, const char *ds_name, int64_t version)
{
    json_t *m = NULL;
    pthread_mutex_lock(&c->lock);
    dataset *ds = lh_catalog__find_locked(c, ds_name);
    if (ds && ds->manifest && strcmp(ds->bucket, bucket) == 0 &&
        int_of(ds->manifest, "version") == version)
        m = json_incref(ds->manifest);
    pthread_mutex_unlock(&c->lock);
    return m;
}

/* Whether the catalog checkpoint counted the batch, and its dataset is still there in
 * that bucket, served at that version or a later one (a batch once counted stays
 * counted: its manifest is never rewritten, and an expired one left a confirmed/
 * marker). A version above the one served could not be read at this start; its batch
 * counts only if a read of its manifest says so, as without a checkpoint. */
static bool
counted_before(lh_catalog *c, const char *bucket, const char *key, const char *ds_name,
               int64_t version)
{
    if (!lh_catalog__checkpoint_has_batch(c, bucket, key))
        return false;
    pthread_mutex_lock(&c->lock);
    dataset *ds = lh_catalog__find_locked(c, ds_name);
    bool there = ds && ds->manifest && strcmp(ds->bucket, bucket) == 0 &&
                 int_of(ds->manifest, "version") >= version;
    pthread_mutex_unlock(&c->lock);
    return there;
}

json_t *
lh_catalog__journal_list(lh_catalog *c, const char *bucket)
{
    lh_err err;
    json_t *keys = json_array();
    if (lh_buckets_each(c->buckets, bucket, LH_LAYOUT_JOURNAL, collect_key, keys, NULL, &err) !=
        0) {
        lh_log(LH_LOG_ERROR, NULL, NULL, "journal: cannot list bucket '%s': %s", bucket,
               err.message);
        pthread_mutex_lock(&c->lock);
        c->load_errors++;
        pthread_mutex_unlock(&c->lock);
    }
    return keys;
}

static void
load_bucket_journal(lh_catalog *c, const char *bucket, const json_t *keys)
{
    lh_err err;
    /* markers of batches whose version expired (the sweep writes them first) */
    json_t *confirmed = json_object();
    size_t i;
    json_t *k;
    size_t clen = strlen(LH_JOURNAL_CONFIRMED);
    json_array_foreach(keys, i, k)
    {
        const char *key = json_string_value(k);
        if (strncmp(key, LH_JOURNAL_CONFIRMED, clen) == 0)
            json_object_set_new(confirmed, key + clen, json_true());
    }
    json_array_foreach(keys, i, k)
    {
        const char *key = json_string_value(k);
        char ds_name[LH_NAME_MAX];
        int64_t version;
        json_t *m = NULL;
        if (parse_batch_key(key, ds_name, sizeof ds_name, &version) != 0)
            continue;
        /* counted: its version names it, or that version expired after confirming it; a
         * missing manifest otherwise means the change never committed (not an error) */
        bool ok = json_object_get(confirmed, key + strlen(LH_LAYOUT_JOURNAL)) != NULL ||
                  counted_before(c, bucket, key, ds_name, version);
        if (!ok && (m = loaded_manifest(c, bucket, ds_name, version)) != NULL)
            ok = manifest_lists(m, key); /* the version loaded: no read */
        else if (!ok && lh_catalog__load_manifest(c, bucket, ds_name, version, &m, &err) == 0)
            ok = manifest_lists(m, key);
        json_decref(m);
        m = NULL;
        if (ok && add_batch(c, bucket, key, ds_name, version, &err) != 0) {
            lh_log(LH_LOG_ERROR, NULL, NULL, "journal: cannot read '%s' in '%s': %s", key, bucket,
                   err.message);
            pthread_mutex_lock(&c->lock);
            c->load_errors++;
            pthread_mutex_unlock(&c->lock);
        }
    }
    json_decref(confirmed);
}

void
lh_catalog__journal_add_bucket(lh_catalog *c, const char *bucket, const json_t *keys)
{
    load_bucket_journal(c, bucket, keys);
    define_view(c);
}

void
lh_catalog__journal_load(lh_catalog *c, const json_t *const *keys)
{
    c->journal = json_array();
    size_t n = lh_buckets_count(c->buckets);
    for (size_t i = 0; i < n; i++) {
        if (keys[i])
            load_bucket_journal(c, lh_buckets_name_at(c->buckets, i), keys[i]);
    }
    define_view(c);
}

void
lh_catalog__journal_add(lh_catalog *c, const json_t *m)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        const char *kind = json_string_value(json_object_get(f, "kind"));
        if (!kind || strcmp(kind, "events") != 0)
            continue;
        lh_err err;
        const char *key = json_string_value(json_object_get(f, "path"));
        if (add_batch(c, json_string_value(json_object_get(m, "bucket")), key,
                      json_string_value(json_object_get(m, "name")),
                      json_integer_value(json_object_get(m, "version")), &err) != 0)
            lh_log(LH_LOG_ERROR, NULL, NULL, "journal: committed batch '%s' not readable: %s", key,
                   err.message);
        define_view(c);
    }
}

void
lh_catalog__journal_free(lh_catalog *c)
{
    size_t i;
    json_t *b;
    json_array_foreach(c->journal, i, b)
        lh_cache_unpin(c->cache, json_string_value(json_object_get(b, "path")));
    json_decref(c->journal);
    c->journal = NULL;
}

/* ---- reading events -------------------------------------------------------------------- */

int
lh_catalog_events(lh_catalog *c, const lh_events_filter *f, json_t **out, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT dataset, key, field, old_value, new_value, op, actor, "
                      "strftime(CAST(ts AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%fZ') AS ts, source, "
                      "workspace_id, version, seq FROM ");
    batches_sql(c, f->dataset, &sql);
    lh_buf_puts(&sql, " WHERE true");
    struct {
        const char *column, *value;
    } eq[] = {{"dataset", f->dataset},
              {"key", f->key},
              {"field", f->field},
              {"actor", f->actor},
              {"workspace_id", f->workspace_id}};
    for (size_t i = 0; i < sizeof eq / sizeof eq[0]; i++) {
        if (!eq[i].value)
            continue;
        lh_buf_printf(&sql, " AND %s = ", eq[i].column);
        lh_sql_quote(&sql, eq[i].value);
    }
    if (f->since) {
        lh_buf_puts(&sql, " AND ts >= TRY_CAST(");
        lh_sql_quote(&sql, f->since);
        lh_buf_puts(&sql, " AS TIMESTAMPTZ)");
    }
    if (f->until) {
        lh_buf_puts(&sql, " AND ts < TRY_CAST(");
        lh_sql_quote(&sql, f->until);
        lh_buf_puts(&sql, " AS TIMESTAMPTZ)");
    }
    if (f->max_version > 0)
        lh_buf_printf(&sql, " AND version <= %lld", (long long)f->max_version);
    lh_buf_printf(&sql, " ORDER BY ts, dataset, version, seq LIMIT %lld OFFSET %lld",
                  (long long)f->limit, (long long)f->offset);
    int rc = lh_engine_rows(c->engine, sql.data, out, err);
    lh_buf_free(&sql);
    return rc;
}

/* ---- dataset-level events ---------------------------------------------------------------- */

/* A JSON value as SQL text (its JSON text), or a NULL of type VARCHAR. */
static void
json_or_null(lh_buf *sql, const json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
    lh_sql_quote_or_null(sql, text);
    free(text);
}

int
lh_catalog_write_dataset_event(lh_catalog *c, const lh_dataset_event *e, const char *path,
                               lh_err *err)
{
    char when[LH_TIME_MAX];
    lh_time_format(lh_now_us(), when);
    lh_buf sql;
    lh_buf_init(&sql);
    /* the columns and types of every batch (EVENTS_EMPTY), so read_parquet takes them all */
    lh_buf_puts(&sql, "COPY (SELECT ");
    lh_sql_quote(&sql, e->dataset);
    lh_buf_puts(&sql,
                " AS dataset, CAST(NULL AS VARCHAR) AS key, CAST(NULL AS VARCHAR) AS field, ");
    json_or_null(&sql, e->before);
    lh_buf_puts(&sql, " AS old_value, ");
    json_or_null(&sql, e->after);
    lh_buf_puts(&sql, " AS new_value, ");
    lh_sql_quote(&sql, e->op);
    lh_buf_puts(&sql, " AS op, ");
    lh_sql_quote(&sql, e->actor ? e->actor : "");
    lh_buf_puts(&sql, " AS actor, CAST(");
    lh_sql_quote(&sql, when);
    lh_buf_puts(&sql, " AS TIMESTAMPTZ) AS ts, ");
    lh_sql_quote_or_null(&sql, e->source);
    lh_buf_puts(&sql, " AS source, ");
    lh_sql_quote_or_null(&sql, e->workspace_id);
    lh_buf_printf(&sql,
                  " AS workspace_id, CAST(%lld AS BIGINT) AS version, CAST(1 AS BIGINT) AS seq) "
                  "TO ",
                  (long long)e->version);
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, " (FORMAT parquet, COMPRESSION zstd)");
    int rc = lh_engine_exec(c->engine, sql.data, NULL, err);
    lh_buf_free(&sql);
    return rc;
}

int64_t
lh_catalog_max_diff_rows(lh_catalog *c)
{
    return c->max_diff_rows;
}
