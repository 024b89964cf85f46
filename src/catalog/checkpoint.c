/*
 * checkpoint.c — the catalog checkpoint: one Parquet object in the primary bucket,
 * _catalog/checkpoint/c{N:020}.parquet, holding for every dataset of every bucket the
 * manifest the index points to (bucket, name, version, the manifest object's size and
 * its content) and the events batches the journal counts. A start reads the newest one
 * in one statement, lists datasets/ of every bucket as it always did, takes each dataset
 * whose newest listed manifest is the one the checkpoint holds (same version, same size)
 * from the checkpoint, and reads only the other manifests (load.c). On a remote bucket
 * each manifest read is a round trip; a listing page holds a thousand keys.
 *
 * Manifests stay the source of truth. A checkpoint is only a copy: an entry whose
 * manifest is not the newest listed at that version and size is not used (its manifest
 * is read), datasets it holds that are no longer listed are dropped, and a checkpoint
 * that cannot be read, is of another format or does not add up is ignored (logged, and
 * in /health: catalog.checkpoint_ignored), so the start reads manifests as without one.
 *
 * Format 1, one row per record (columns that do not apply are NULL):
 *
 *   column          type     record     meaning
 *   record          VARCHAR  all        'checkpoint' (exactly one), 'dataset', 'batch'
 *   format          INTEGER  checkpoint 1; a reader ignores any other
 *   entries         BIGINT   checkpoint rows of the other records (checked)
 *   created_at      VARCHAR  checkpoint UTC, ISO 8601
 *   bucket          VARCHAR  dataset,   the bucket of the dataset / of the batch
 *                            batch
 *   name            VARCHAR  dataset,   the dataset
 *                            batch
 *   version         BIGINT   dataset,   the manifest's version / the version that lists
 *                            batch      the batch
 *   manifest_bytes  BIGINT   dataset    the manifest object's size (0: not known)
 *   manifest        VARCHAR  dataset    the manifest as JSON text (catalog.h's form); read
 *                                       back as JSON, so DuckDB parses it with its row
 *   key             VARCHAR  batch      the events batch's key
 *
 * Writing: a thread of its own, never a commit. It writes one after the start when the
 * index differs from what the checkpoint held, and then after every
 * `[catalog] checkpoint_after_commits` commits. It copies the index under the catalog
 * lock (manifests in memory are immutable: references suffice), writes the Parquet file
 * in the work dir through an engine writer, and puts it create-only as the next number;
 * then removes all but the newest CHECKPOINT_KEEP. A checkpoint that cannot be written
 * is logged; nothing else depends on it.
 *
 * Thread safety: the read and apply steps run in lh_catalog_open only (the read on a
 * thread of its own while the buckets are listed: it touches only the ckpt_ fields, which
 * nothing else reads until it is joined); the writing thread takes the catalog lock to
 * copy the index and to change the counters.
 */
#include "catalog/catalog_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECKPOINT_FORMAT 1
#define CHECKPOINT_KEEP 2 /* checkpoints left in the bucket after a new one */

static const char COLUMNS[] =
    "record VARCHAR, format INTEGER, entries BIGINT, created_at VARCHAR, bucket VARCHAR, "
    "name VARCHAR, version BIGINT, manifest_bytes BIGINT, manifest VARCHAR, key VARCHAR";
enum {
    COL_RECORD,
    COL_FORMAT,
    COL_ENTRIES,
    COL_CREATED_AT,
    COL_BUCKET,
    COL_NAME,
    COL_VERSION,
    COL_BYTES,
    COL_MANIFEST,
    COL_KEY
};

/* "bucket\nname" or "bucket\nkey": the maps' keys (new). */
static char *
entry_key(const char *bucket, const char *name)
{
    return lh_sprintf("%s\n%s", bucket, name);
}

/* ---- reading at open ------------------------------------------------------------------- */

/* lh_buckets_each: checkpoint numbers, ascending (keys come in byte order). */
static int
note_seq(void *ctx, const lh_list_entry *e)
{
    int64_t seq;
    if (lh_layout_parse_checkpoint_key(e->key, &seq) == 0)
        json_array_append_new(ctx, json_integer(seq));
    return 0;
}

static int
list_seqs(lh_catalog *c, json_t **out, lh_err *err)
{
    json_t *seqs = json_array();
    int rc = lh_buckets_each(c->buckets, lh_buckets_primary_name(c->buckets), LH_LAYOUT_CHECKPOINTS,
                             note_seq, seqs, NULL, err);
    if (rc != 0) {
        json_decref(seqs);
        return rc;
    }
    *out = seqs;
    return 0;
}

/* The checkpoint is not used: say why (log and /health) and forget what was read. */
static void
ignore(lh_catalog *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->ckpt_ignored, sizeof c->ckpt_ignored, fmt, ap);
    va_end(ap);
    lh_log(LH_LOG_WARN, NULL, NULL, "catalog: checkpoint ignored, reading manifests: %s",
           c->ckpt_ignored);
    json_decref(c->ckpt_datasets);
    json_decref(c->ckpt_batches);
    c->ckpt_datasets = c->ckpt_batches = NULL;
}

/* Split the rows of checkpoint `seq` into ckpt_datasets and ckpt_batches; 0 when they
 * are a whole checkpoint of our format, else -1 after saying why. */
static int
take_rows(lh_catalog *c, int64_t seq, const json_t *rows)
{
    size_t i, n_headers = 0;
    json_t *r;
    int64_t entries = -1;
    c->ckpt_datasets = json_object();
    c->ckpt_batches = json_object();
    json_array_foreach(rows, i, r)
    {
        const char *record = str_of(r, "record");
        const char *bucket = str_of(r, "bucket");
        if (strcmp(record, "checkpoint") == 0) {
            n_headers++;
            if (int_of(r, "format") != CHECKPOINT_FORMAT) {
                ignore(c, "checkpoint c%lld is of format %lld; this server reads format %d",
                       (long long)seq, (long long)int_of(r, "format"), CHECKPOINT_FORMAT);
                return -1;
            }
            entries = int_of(r, "entries");
        } else if (strcmp(record, "dataset") == 0 && bucket[0] &&
                   lh_name_valid(str_of(r, "name")) && int_of(r, "version") > 0 &&
                   json_object_get(r, "manifest") != NULL) {
            char *k = entry_key(bucket, str_of(r, "name"));
            int dup = json_object_get(c->ckpt_datasets, k) != NULL;
            json_object_set_nocheck(c->ckpt_datasets, k, r);
            free(k);
            if (dup)
                goto inconsistent;
        } else if (strcmp(record, "batch") == 0 && bucket[0] && str_of(r, "key")[0]) {
            char *k = entry_key(bucket, str_of(r, "key"));
            json_object_set_new_nocheck(c->ckpt_batches, k, json_true());
            free(k);
        } else {
            goto inconsistent;
        }
    }
    if (n_headers != 1 || entries != (int64_t)json_array_size(rows) - 1)
        goto inconsistent;
    return 0;
inconsistent:
    ignore(c,
           "checkpoint c%lld does not add up (a record of an unknown kind, a missing field, "
           "a repeated dataset, or not the number of entries it says)",
           (long long)seq);
    return -1;
}

/* lh_engine_scan: the checkpoint's rows, as objects of their non-NULL values (a manifest
 * parsed: null when it is not JSON, so its entry is not used), into the array ctx. */
static int
on_rows(void *ctx, const lh_batch *b)
{
    static const char *const names[] = {"record",  "format",         "entries",  "bucket", "name",
                                        "version", "manifest_bytes", "manifest", "key"};
    static const bool is_int[] = {false, true, true, false, false, true, true, false, false};
    for (size_t i = 0; i < lh_batch_rows(b); i++) {
        json_t *row = json_object();
        for (size_t col = 0; col < sizeof names / sizeof names[0]; col++) {
            int64_t n;
            size_t len;
            const char *text;
            if (is_int[col]) {
                if (lh_batch_int(b, col, i, &n))
                    json_object_set_new(row, names[col], json_integer(n));
            } else if ((text = lh_batch_str(b, col, i, &len)) != NULL) {
                /* a manifest stays text here: parse_manifests parses them all at once */
                json_t *v = json_stringn(text, len);
                json_object_set_new(row, names[col], v ? v : json_null());
            }
        }
        json_array_append_new(ctx, row);
    }
    return 0;
}

static void
parse_one(void *ctx, size_t i)
{
    json_t *row = json_array_get(ctx, i), *text = json_object_get(row, "manifest");
    if (!json_is_string(text))
        return;
    json_t *m = json_loadb(json_string_value(text), json_string_length(text), 0, NULL);
    json_object_set_new(row, "manifest", m ? m : json_null()); /* not JSON: not used */
}

/* Each row's manifest text parsed in place, on the loading threads (the rows are distinct
 * objects; jansson allocates through malloc). */
static void
parse_manifests(lh_catalog *c, json_t *rows)
{
    lh_catalog__each_parallel(c, json_array_size(rows), 64, parse_one, rows);
}

void
lh_catalog__checkpoint_read(lh_catalog *c)
{
    json_t *seqs = NULL, *rows = NULL;
    char *key = NULL, *path = NULL;
    lh_buf sql;
    lh_buf_init(&sql);
    lh_err err;
    if (!c->checkpoint_on)
        return;
    int64_t t0 = lh_mono_us();
    const char *primary = lh_buckets_primary_name(c->buckets);
    lh_store *store = lh_buckets_get(c->buckets, primary, &err);
    if (store == NULL || list_seqs(c, &seqs, &err) != 0) {
        ignore(c, "cannot list %s in bucket '%s': %s", LH_LAYOUT_CHECKPOINTS, primary, err.message);
        goto out;
    }
    if (json_array_size(seqs) == 0)
        goto out; /* none yet: the first start, or checkpoints just turned on */
    int64_t seq = json_integer_value(json_array_get(seqs, json_array_size(seqs) - 1));
    c->ckpt_seq = seq;
    key = lh_layout_checkpoint_key(seq);
    if (lh_cache_local_path(c->cache, store, key, true, &path, &err) != 0) {
        ignore(c, "checkpoint %s cannot be read: %s %s", key, err.message, err.detail);
        goto out;
    }
    /* one statement for the whole catalog, its values taken as they are (a row rendered as
     * JSON text would hold each manifest as a string to parse twice) */
    lh_buf_puts(&sql, "SELECT record, format, entries, bucket, name, version, manifest_bytes, "
                      "manifest, key FROM read_parquet(");
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, ")");
    lh_scan_opts opts = {.sql = sql.data};
    rows = json_array();
    if (lh_engine_scan(c->engine, &opts, on_rows, rows, &err) != 0) {
        ignore(c, "checkpoint %s cannot be read: %s %s", key, err.message, err.detail);
        goto out;
    }
    parse_manifests(c, rows);
    if (take_rows(c, seq, rows) == 0) {
        json_t *fields = json_pack("{s:s, s:I, s:I}", "key", key, "datasets",
                                   (json_int_t)json_object_size(c->ckpt_datasets), "batches",
                                   (json_int_t)json_object_size(c->ckpt_batches));
        lh_log(LH_LOG_INFO, NULL, fields, "catalog: checkpoint read");
        json_decref(fields);
    }
out:
    if (path)
        lh_cache_unpin(c->cache, path);
    free(path);
    free(key);
    json_decref(rows);
    json_decref(seqs);
    lh_buf_free(&sql);
    c->ckpt_read_ms = (lh_mono_us() - t0) / 1000;
}

/* The manifest of a checkpoint entry, taken out of the row (new), checked as a manifest
 * read from its bucket would be; NULL when it is not a valid manifest of that name and
 * version. */
static json_t *
manifest_of_entry(lh_catalog *c, const char *bucket, const char *name, json_t *row)
{
    lh_err ignored;
    json_t *m = json_incref(json_object_get(row, "manifest"));
    json_object_del(row, "manifest"); /* the row stays for stale(): version and size */
    if (m && (!json_is_object(m) || strcmp(str_of(m, "name"), name) != 0 ||
              int_of(m, "version") != int_of(row, "version") ||
              !json_is_array(json_object_get(m, "files")) ||
              !json_is_array(json_object_get(m, "columns")) ||
              lh_catalog__check_manifest(c, m, &ignored) != 0)) {
        json_decref(m);
        return NULL;
    }
    if (m)
        json_object_set_new(m, "bucket", json_string(bucket));
    return m;
}

/* What the workers of checkpoint_apply share: the entries to take and what became of
 * each (its manifest was added, or it was not valid). */
typedef struct taking {
    lh_catalog *c;
    const char *bucket;
    const char **names; /* borrowed from `latest` */
    json_t **rows;      /* borrowed from ckpt_datasets */
    int64_t *versions, *bytes;
    bool *added;
} taking;

static void
take_one(void *ctx, size_t i)
{
    taking *t = ctx;
    json_t *m = manifest_of_entry(t->c, t->bucket, t->names[i], t->rows[i]);
    if (m) {
        lh_catalog__add_loaded(t->c, t->bucket, t->names[i], t->versions[i], t->bytes[i], m, NULL);
        t->added[i] = true;
    }
}

void
lh_catalog__checkpoint_apply(lh_catalog *c, const char *bucket, json_t *latest, const json_t *sizes)
{
    const char *name;
    json_t *v;
    if (c->ckpt_datasets == NULL)
        return;
    size_t cap = json_object_size(latest), n = 0;
    taking t = {.c = c, .bucket = bucket};
    t.names = lh_calloc(cap ? cap : 1, sizeof *t.names);
    t.rows = lh_calloc(cap ? cap : 1, sizeof *t.rows);
    t.versions = lh_calloc(cap ? cap : 1, sizeof *t.versions);
    t.bytes = lh_calloc(cap ? cap : 1, sizeof *t.bytes);
    t.added = lh_calloc(cap ? cap : 1, sizeof *t.added);
    json_object_foreach(latest, name, v)
    {
        char *k = entry_key(bucket, name);
        json_t *row = json_object_get(c->ckpt_datasets, k);
        free(k);
        int64_t version = json_integer_value(v);
        int64_t bytes = json_integer_value(json_object_get(sizes, name));
        /* a newer manifest, or not the same object at that version: read it */
        if (row == NULL || int_of(row, "version") != version || bytes <= 0 ||
            int_of(row, "manifest_bytes") != bytes)
            continue;
        t.names[n] = name;
        t.rows[n] = row;
        t.versions[n] = version;
        t.bytes[n++] = bytes;
    }
    /* checking and registering each one (its pins are path checks or HEADs) on the
     * loading threads */
    lh_catalog__each_parallel(c, n, 64, take_one, &t);
    for (size_t i = 0; i < n; i++) {
        if (t.added[i]) {
            c->ckpt_used++;
            json_object_del(latest, t.names[i]); /* after its last use: names borrow keys */
            continue;
        }
        lh_log(LH_LOG_WARN, NULL, NULL,
               "catalog: the checkpoint's manifest of '%s' in '%s' is not valid; reading the "
               "manifest",
               t.names[i], bucket);
        char *k = entry_key(bucket, t.names[i]);
        json_object_del(c->ckpt_datasets, k); /* so the next checkpoint replaces it */
        free(k);
    }
    free(t.names);
    free(t.rows);
    free(t.versions);
    free(t.bytes);
    free(t.added);
}

bool
lh_catalog__checkpoint_has_batch(lh_catalog *c, const char *bucket, const char *key)
{
    if (c->ckpt_batches == NULL)
        return false;
    char *k = entry_key(bucket, key);
    bool has = json_object_get(c->ckpt_batches, k) != NULL;
    free(k);
    return has;
}

/* Whether the index, as loaded, differs from what the checkpoint read holds (then a new
 * one saves the next start the manifest reads). */
static bool
stale(lh_catalog *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n_datasets = 0, same = 0, same_batches = 0;
    for (size_t i = 0; i < c->n; i++) {
        const dataset *ds = c->items[i];
        if (ds->manifest == NULL)
            continue;
        n_datasets++;
        if (c->ckpt_datasets == NULL)
            continue;
        char *k = entry_key(ds->bucket, ds->name);
        const json_t *row = json_object_get(c->ckpt_datasets, k);
        free(k);
        same += row && int_of(row, "version") == int_of(ds->manifest, "version") &&
                int_of(row, "manifest_bytes") == ds->manifest_bytes;
    }
    size_t i;
    json_t *b;
    json_array_foreach(c->journal, i, b)
    {
        same_batches +=
            lh_catalog__checkpoint_has_batch(c, str_of(b, "bucket"), str_of(b, "key")) ? 1 : 0;
    }
    size_t n_batches = json_array_size(c->journal);
    pthread_mutex_unlock(&c->lock);
    if (c->ckpt_datasets == NULL) /* none, or ignored: worth one when there is anything */
        return n_datasets > 0 || n_batches > 0 || c->ckpt_seq > 0;
    return same != n_datasets || same != json_object_size(c->ckpt_datasets) ||
           same_batches != n_batches || same_batches != json_object_size(c->ckpt_batches);
}

/* ---- writing ----------------------------------------------------------------------------- */

typedef struct snapshot_entry {
    char bucket[80];
    char name[LH_NAME_MAX];
    int64_t bytes;
    json_t *manifest; /* a reference */
} snapshot_entry;

#define N_COLUMNS (COL_KEY + 1)
#define BIT(col) (1u << (col))

static void
put_str(lh_writer *w, size_t col, const char *s)
{
    lh_writer_str(w, col, s, strlen(s));
}

/* The row is complete: the columns not in `set` (a mask of BIT(col)) are NULL (a
 * writer's column left alone holds whatever its vector held). */
static int
end_row(lh_writer *w, unsigned set, lh_err *err)
{
    for (size_t col = 0; col < N_COLUMNS; col++)
        if (!(set & BIT(col)))
            lh_writer_null(w, col);
    return lh_writer_next_row(w, err);
}

/* Write the checkpoint of entries and batches to path (in the work dir). */
static int
write_file(lh_catalog *c, const snapshot_entry *entries, size_t n, const json_t *batches,
           const char *path, lh_err *err)
{
    lh_writer *w = NULL;
    char when[LH_TIME_MAX];
    int rc = lh_writer_open(c->engine, COLUMNS, &w, err);
    if (rc != 0)
        return rc;
    lh_time_format(lh_now_us(), when);
    put_str(w, COL_RECORD, "checkpoint");
    lh_writer_int(w, COL_FORMAT, CHECKPOINT_FORMAT);
    lh_writer_int(w, COL_ENTRIES, (int64_t)(n + json_array_size(batches)));
    put_str(w, COL_CREATED_AT, when);
    if ((rc = end_row(w, BIT(COL_RECORD) | BIT(COL_FORMAT) | BIT(COL_ENTRIES) | BIT(COL_CREATED_AT),
                      err)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char *text = json_dumps(entries[i].manifest, JSON_COMPACT);
        put_str(w, COL_RECORD, "dataset");
        put_str(w, COL_BUCKET, entries[i].bucket);
        put_str(w, COL_NAME, entries[i].name);
        lh_writer_int(w, COL_VERSION, int_of(entries[i].manifest, "version"));
        lh_writer_int(w, COL_BYTES, entries[i].bytes);
        put_str(w, COL_MANIFEST, text ? text : "");
        free(text);
        if ((rc = end_row(w,
                          BIT(COL_RECORD) | BIT(COL_BUCKET) | BIT(COL_NAME) | BIT(COL_VERSION) |
                              BIT(COL_BYTES) | BIT(COL_MANIFEST),
                          err)) != 0)
            goto out;
    }
    size_t i;
    json_t *b;
    json_array_foreach(batches, i, b)
    {
        put_str(w, COL_RECORD, "batch");
        put_str(w, COL_BUCKET, str_of(b, "bucket"));
        put_str(w, COL_NAME, str_of(b, "dataset"));
        lh_writer_int(w, COL_VERSION, int_of(b, "version"));
        put_str(w, COL_KEY, str_of(b, "key"));
        if ((rc = end_row(w,
                          BIT(COL_RECORD) | BIT(COL_BUCKET) | BIT(COL_NAME) | BIT(COL_VERSION) |
                              BIT(COL_KEY),
                          err)) != 0)
            goto out;
    }
    rc = lh_writer_finish(w, path, NULL, err);
out:
    lh_writer_free(w);
    return rc;
}

/* Put the file at path as the next checkpoint (create-only; once more above the newest
 * listed when another server took the number). *seq_out: the number written. */
static int
put_next(lh_catalog *c, const char *path, int64_t *seq_out, lh_err *err)
{
    const char *primary = lh_buckets_primary_name(c->buckets);
    int rc = LH_EEXIST;
    for (int attempt = 0; attempt < 2 && rc == LH_EEXIST; attempt++) {
        pthread_mutex_lock(&c->lock);
        int64_t seq = c->ckpt_seq + 1;
        pthread_mutex_unlock(&c->lock);
        json_t *seqs = NULL;
        if (attempt > 0 && list_seqs(c, &seqs, err) == 0 && json_array_size(seqs) > 0) {
            int64_t newest = json_integer_value(json_array_get(seqs, json_array_size(seqs) - 1));
            seq = newest >= seq ? newest + 1 : seq;
        }
        json_decref(seqs);
        char *key = lh_layout_checkpoint_key(seq);
        rc = lh_buckets_put_file(c->buckets, primary, key, path, true, LH_PUT_CREATE_ONLY, NULL,
                                 NULL, err);
        free(key);
        pthread_mutex_lock(&c->lock);
        if (rc == 0 || rc == LH_EEXIST)
            c->ckpt_seq = seq > c->ckpt_seq ? seq : c->ckpt_seq;
        pthread_mutex_unlock(&c->lock);
        if (rc == 0)
            *seq_out = seq;
    }
    return rc;
}

/* Remove all checkpoints but the newest CHECKPOINT_KEEP. */
static void
prune(lh_catalog *c)
{
    json_t *seqs = NULL;
    lh_err err;
    const char *primary = lh_buckets_primary_name(c->buckets);
    if (list_seqs(c, &seqs, &err) != 0) {
        lh_log(LH_LOG_WARN, NULL, NULL, "catalog: old checkpoints not removed: %s", err.message);
        return;
    }
    size_t n = json_array_size(seqs);
    for (size_t i = 0; i + CHECKPOINT_KEEP < n; i++) {
        char *key = lh_layout_checkpoint_key(json_integer_value(json_array_get(seqs, i)));
        if (lh_buckets_delete_object(c->buckets, primary, key, NULL, &err) != 0)
            lh_log(LH_LOG_WARN, NULL, NULL, "catalog: old checkpoint %s not removed: %s", key,
                   err.message);
        free(key);
    }
    json_decref(seqs);
}

/* Copy the index (references to its immutable manifests) and the journal's batches. */
static snapshot_entry *
snapshot(lh_catalog *c, size_t *n_out, json_t **batches)
{
    pthread_mutex_lock(&c->lock);
    snapshot_entry *entries = lh_calloc(c->n ? c->n : 1, sizeof *entries);
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        const dataset *ds = c->items[i];
        if (ds->manifest == NULL)
            continue; /* being created */
        snprintf(entries[n].bucket, sizeof entries[n].bucket, "%s", ds->bucket);
        snprintf(entries[n].name, sizeof entries[n].name, "%s", ds->name);
        entries[n].bytes = ds->manifest_bytes;
        entries[n++].manifest = json_incref(ds->manifest);
    }
    *batches = json_deep_copy(c->journal);
    pthread_mutex_unlock(&c->lock);
    *n_out = n;
    return entries;
}

static void
write_checkpoint(lh_catalog *c)
{
    size_t n = 0;
    json_t *batches = NULL;
    snapshot_entry *entries = snapshot(c, &n, &batches);
    char hex[17];
    lh_random_hex(hex, 8);
    char *path = lh_sprintf("%s/checkpoint-%s.parquet", c->work_dir, hex);
    int64_t t0 = lh_mono_us(), seq = 0;
    lh_err err;
    int rc = write_file(c, entries, n, batches, path, &err);
    if (rc == 0)
        rc = put_next(c, path, &seq, &err);
    if (rc == 0) {
        json_t *fields =
            json_pack("{s:I, s:I, s:I, s:I}", "checkpoint", (json_int_t)seq, "datasets",
                      (json_int_t)n, "batches", (json_int_t)json_array_size(batches), "ms",
                      (json_int_t)((lh_mono_us() - t0) / 1000));
        lh_log(LH_LOG_INFO, NULL, fields, "catalog: checkpoint written");
        json_decref(fields);
        prune(c);
    } else {
        lh_log(LH_LOG_WARN, NULL, NULL, "catalog: checkpoint not written: %s %s", err.message,
               err.detail);
    }
    unlink(path);
    free(path);
    for (size_t i = 0; i < n; i++)
        json_decref(entries[i].manifest);
    free(entries);
    json_decref(batches);
}

static void *
checkpointer(void *arg)
{
    lh_catalog *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->ckpt_wanted && !c->ckpt_closing)
            pthread_cond_wait(&c->ckpt_wake, &c->lock);
        if (c->ckpt_closing)
            break;
        c->ckpt_wanted = false;
        c->commits_since_ckpt = 0;
        pthread_mutex_unlock(&c->lock);
        write_checkpoint(c);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

void
lh_catalog__checkpoint_start(lh_catalog *c)
{
    if (!c->checkpoint_on)
        return;
    bool wanted = stale(c);
    json_decref(c->ckpt_datasets);
    json_decref(c->ckpt_batches);
    c->ckpt_datasets = c->ckpt_batches = NULL;
    int e = pthread_create(&c->ckpt_thread, NULL, checkpointer, c);
    if (e != 0) {
        lh_log(LH_LOG_WARN, NULL, NULL, "catalog: no checkpoint thread: %s", strerror(e));
        return;
    }
    c->ckpt_thread_started = true;
    if (wanted) {
        pthread_mutex_lock(&c->lock);
        c->ckpt_wanted = true;
        pthread_cond_signal(&c->ckpt_wake);
        pthread_mutex_unlock(&c->lock);
    }
}

void
lh_catalog__checkpoint_note_commit(lh_catalog *c)
{
    if (!c->ckpt_thread_started || c->checkpoint_after <= 0)
        return;
    pthread_mutex_lock(&c->lock);
    if (++c->commits_since_ckpt >= c->checkpoint_after) {
        c->ckpt_wanted = true;
        pthread_cond_signal(&c->ckpt_wake);
    }
    pthread_mutex_unlock(&c->lock);
}

void
lh_catalog__checkpoint_stop(lh_catalog *c)
{
    json_decref(c->ckpt_datasets);
    json_decref(c->ckpt_batches);
    c->ckpt_datasets = c->ckpt_batches = NULL;
    if (!c->ckpt_thread_started)
        return;
    pthread_mutex_lock(&c->lock);
    c->ckpt_closing = true;
    pthread_cond_signal(&c->ckpt_wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->ckpt_thread, NULL);
    c->ckpt_thread_started = false;
}
