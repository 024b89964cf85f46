/*
 * buckets.c — the bucket registry (ADR-017): named buckets and their classes, rescue
 * reads, reachability probes and the bucket error journal.
 *
 * Classes: "primary" (always present), "tenant" (each [[bucket]]), "rescue" (the
 * [[bucket]] named by [storage] rescue) and "profile" (profile:{user}, views of
 * [storage] profile_bucket created on first use).
 *
 * Reads of an unreachable target (LH_EUNAVAIL) are retried on the rescue bucket and say
 * so through *rescue_used; writes never fall back. Every operational failure goes to the
 * error journal: a bounded in-memory ring (for one-call diagnosis) and the append log at
 * primary://_errors/bucket_errors/ (for history), reloaded into the ring at start.
 *
 * Locking: `lock` guards the bucket list, probe results and the ring. Stores are
 * thread-safe themselves and are never freed before lh_buckets_close, so a pointer
 * returned by lh_buckets_get stays valid. One background thread probes the buckets and
 * ticks the journal.
 */
#include "storage/storage_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* identical errors being coalesced at one time, at most */
#define COALESCE_OPEN_MAX 64

typedef struct bucket {
    char name[80];
    const char *cls;
    const char *backend;
    lh_store *store;
    /* the last probe */
    bool probed, reachable;
    int64_t latency_us, checked_at_us, last_ok_us;
    char last_error[LH_ERR_TEXT_MAX];
} bucket;

struct lh_buckets {
    pthread_mutex_t lock;
    bucket **items;
    size_t n, cap;
    bucket *primary, *rescue, *profile_base;
    char *profile_prefix;
    /* error journal */
    json_t **ring;
    size_t ring_cap, ring_len, ring_head; /* head: next slot to write */
    lh_applog *errlog;
    /* coalescing: records (also in the ring) whose identical repeats are still being
     * counted, oldest first; each is journaled once when its window closes */
    json_t *open_errs[COALESCE_OPEN_MAX];
    size_t n_open;
    int64_t coalesce_us; /* [storage] error_coalesce_ms; 0: every error on its own */
    /* probing */
    pthread_mutex_t probe_lock;
    int64_t last_probe_mono_us;
    /* background thread */
    pthread_t thread;
    bool thread_started, stop;
    pthread_cond_t wake;
    int64_t probe_interval_us, tick_us;
};

/* ---- building from config ------------------------------------------------------------- */

static bucket *
add_bucket(lh_buckets *b, const char *name, const char *cls, lh_store *store)
{
    bucket *bk = lh_calloc(1, sizeof *bk);
    snprintf(bk->name, sizeof bk->name, "%s", name);
    bk->cls = cls;
    bk->store = store;
    bk->backend = lh_store_backend(store);
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->items = lh_realloc(b->items, b->cap * sizeof *b->items);
    }
    b->items[b->n++] = bk;
    return bk;
}

static bucket *
find_locked(lh_buckets *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->items[i]->name, name) == 0)
            return b->items[i];
    return NULL;
}

static const char *const BUCKET_KEYS[] = {"name",       "backend",    "root",   "endpoint",
                                          "region",     "bucket",     "prefix", "path_style",
                                          "tls_verify", "secret_ref", NULL};

typedef struct entry_ctx {
    const lh_config *cfg;
    const lh_toml *t;
    char where[700];
} entry_ctx;

static int
entry_str(entry_ctx *c, const char *key, bool required, const char **out, lh_err *err)
{
    const lh_toml *v = lh_toml_get(c->t, key);
    if (v == NULL) {
        *out = NULL;
        if (required)
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "%s: '%s' is required", c->where,
                              key);
        return 0;
    }
    if (lh_toml_type_of(v) != LH_TOML_STRING)
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "%s: '%s' must be a string",
                          c->where, key);
    *out = lh_toml_str(v);
    return 0;
}

static int
entry_bool(entry_ctx *c, const char *key, bool def, bool *out, lh_err *err)
{
    const lh_toml *v = lh_toml_get(c->t, key);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (lh_toml_type_of(v) != LH_TOML_BOOL)
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "%s: '%s' must be true or false",
                          c->where, key);
    *out = lh_toml_bool(v);
    return 0;
}

static int
open_s3_bucket(entry_ctx *c, lh_secrets **secrets, lh_store **out, lh_err *err)
{
    const lh_config *cfg = c->cfg;
    lh_s3_options o = {0};
    const char *secret_ref = NULL;
    int rc = entry_str(c, "endpoint", true, &o.endpoint, err);
    if (rc == 0)
        rc = entry_str(c, "bucket", true, &o.bucket, err);
    if (rc == 0)
        rc = entry_str(c, "region", false, &o.region, err);
    if (rc == 0)
        rc = entry_str(c, "prefix", false, &o.prefix, err);
    if (rc == 0)
        rc = entry_str(c, "secret_ref", true, &secret_ref, err);
    if (rc == 0)
        rc = entry_bool(c, "path_style", true, &o.path_style, err);
    if (rc == 0)
        rc = entry_bool(c, "tls_verify", true, &o.tls_verify, err);
    if (rc != 0)
        return rc;
    if (o.prefix && o.prefix[0] && o.prefix[strlen(o.prefix) - 1] != '/')
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "%s: 'prefix' must end with '/'",
                          c->where);
    if (*secrets == NULL) {
        lh_err serr;
        if (lh_secrets_open(lh_config_str(cfg, "secrets.file"), secrets, &serr) != 0) {
            /* keep the secrets module's own words: they say what to fix */
            int rc_out = serr.rc == LH_ENOTFOUND ? LH_EINVAL : serr.rc;
            if (err) {
                *err = serr;
                err->rc = rc_out; /* the error must carry the code we return */
                char msg[LH_ERR_TEXT_MAX];
                snprintf(msg, sizeof msg, "%s: secret_ref '%s': %s", c->where, secret_ref,
                         serr.message);
                snprintf(err->message, sizeof err->message, "%s", msg);
            }
            return rc_out;
        }
    }
    char *ak = NULL, *sk = NULL;
    lh_err serr;
    if (lh_secrets_get(*secrets, secret_ref, "access_key_id", &ak, &serr) != 0 ||
        lh_secrets_get(*secrets, secret_ref, "secret_access_key", &sk, &serr) != 0) {
        rc = lh_err_set(err, LH_EINVAL, 0, "invalid_config", "%s: %s", c->where, serr.message);
        lh_err_hint(err, "the secrets file needs [%s] with access_key_id and secret_access_key",
                    secret_ref);
        goto out;
    }
    o.access_key_id = ak;
    o.secret_access_key = sk;
    o.retries = (int)lh_config_int(cfg, "storage.retries");
    o.connect_timeout_ms = lh_config_int(cfg, "storage.connect_timeout_ms");
    o.request_timeout_ms = lh_config_int(cfg, "storage.request_timeout_ms");
    o.multipart_threshold = lh_config_int(cfg, "storage.multipart_threshold");
    o.part_size = lh_config_int(cfg, "storage.part_size");
    rc = lh_store_s3_open(&o, out, err);
    if (rc != 0 && err) {
        char msg[LH_ERR_TEXT_MAX];
        snprintf(msg, sizeof msg, "%s: %s", c->where, err->message);
        snprintf(err->message, sizeof err->message, "%s", msg);
    }
out:
    lh_free_secret(sk);
    lh_free_secret(ak);
    return rc;
}

/* Open the store of [[bucket]] entry t (the i-th): *name borrowed from the config, *store
 * new. Errors name the config line. A bucket named twice in the file is refused by the
 * caller. */
static int
open_entry(const lh_config *cfg, const lh_toml *t, size_t i, lh_secrets **secrets,
           const char **name_out, lh_store **store_out, lh_err *err)
{
    entry_ctx c = {.cfg = cfg, .t = t};
    snprintf(c.where, sizeof c.where, "%s:%d:%d: [[bucket]] #%zu", lh_config_path(cfg),
             lh_toml_line(c.t), lh_toml_col(c.t), i + 1);
    for (size_t k = 0; k < lh_toml_count(c.t); k++) {
        const char *key = lh_toml_key_at(c.t, k);
        bool known = false;
        for (const char *const *p = BUCKET_KEYS; *p; p++)
            known |= strcmp(*p, key) == 0;
        if (!known)
            lh_log(LH_LOG_WARN, NULL, NULL, "config: %s: unknown key '%s' ignored", c.where, key);
    }
    const char *name = NULL, *backend = NULL, *root = NULL;
    int rc;
    if ((rc = entry_str(&c, "name", true, &name, err)) != 0)
        return rc;
    if (!lh_name_valid(name))
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "%s: bucket name '%s' must match [a-z][a-z0-9_]{0,62}", c.where, name);
    if ((rc = entry_str(&c, "backend", true, &backend, err)) != 0)
        return rc;
    lh_store *store = NULL;
    if (strcmp(backend, "fs") == 0) {
        if ((rc = entry_str(&c, "root", true, &root, err)) != 0)
            return rc;
        rc = lh_store_fs_open(root, &store, err);
        if (rc != 0 && err) { /* name the config line, as for every other entry error */
            char msg[LH_ERR_TEXT_MAX];
            snprintf(msg, sizeof msg, "%s: %s", c.where, err->message);
            snprintf(err->message, sizeof err->message, "%s", msg);
        }
    } else if (strcmp(backend, "s3") == 0) {
        rc = open_s3_bucket(&c, secrets, &store, err);
    } else {
        rc = lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                        "%s: backend must be \"fs\" or \"s3\", not \"%s\"", c.where, backend);
    }
    if (rc == 0) {
        *name_out = name;
        *store_out = store;
    }
    return rc;
}

static int
load_bucket_entries(lh_buckets *b, const lh_config *cfg, lh_err *err)
{
    const lh_toml *arr = lh_config_table_array(cfg, "bucket");
    lh_secrets *secrets = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < lh_toml_count(arr); i++) {
        const char *name = NULL;
        lh_store *store = NULL;
        if ((rc = open_entry(cfg, lh_toml_at(arr, i), i, &secrets, &name, &store, err)) != 0)
            break;
        if (find_locked(b, name)) {
            rc = lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                            "%s:%d:%d: [[bucket]] #%zu: bucket '%s' is defined twice",
                            lh_config_path(cfg), lh_toml_line(lh_toml_at(arr, i)),
                            lh_toml_col(lh_toml_at(arr, i)), i + 1, name);
            lh_store_free(store);
            break;
        }
        add_bucket(b, name, "tenant", store);
    }
    lh_secrets_free(secrets);
    return rc;
}

/* The [[bucket]] entry of cfg named name, or NULL. */
static const lh_toml *
entry_named(const lh_config *cfg, const char *name)
{
    const lh_toml *arr = lh_config_table_array(cfg, "bucket");
    for (size_t i = 0; i < lh_toml_count(arr); i++) {
        const lh_toml *n = lh_toml_get(lh_toml_at(arr, i), "name");
        if (n && lh_toml_type_of(n) == LH_TOML_STRING && strcmp(lh_toml_str(n), name) == 0)
            return lh_toml_at(arr, i);
    }
    return NULL;
}

/* Whether two [[bucket]] entries say the same (their keys and values, in any order). */
static bool
same_entry(const lh_toml *a, const lh_toml *b)
{
    if (lh_toml_count(a) != lh_toml_count(b))
        return false;
    for (size_t k = 0; k < lh_toml_count(a); k++) {
        const lh_toml *va = lh_toml_at(a, k), *vb = lh_toml_get(b, lh_toml_key_at(a, k));
        if (vb == NULL || lh_toml_type_of(va) != lh_toml_type_of(vb))
            return false;
        switch (lh_toml_type_of(va)) {
        case LH_TOML_STRING:
            if (strcmp(lh_toml_str(va), lh_toml_str(vb)) != 0)
                return false;
            break;
        case LH_TOML_BOOL:
            if (lh_toml_bool(va) != lh_toml_bool(vb))
                return false;
            break;
        case LH_TOML_INT:
            if (lh_toml_int(va) != lh_toml_int(vb))
                return false;
            break;
        default: /* no bucket key takes another kind: any such change counts */
            return false;
        }
    }
    return true;
}

json_t *
lh_buckets_config_diff(const lh_config *old, const lh_config *now)
{
    json_t *added = json_array(), *changed = json_array(), *removed = json_array();
    const lh_toml *arr = lh_config_table_array(now, "bucket");
    for (size_t i = 0; i < lh_toml_count(arr); i++) {
        const lh_toml *n = lh_toml_get(lh_toml_at(arr, i), "name");
        if (n == NULL || lh_toml_type_of(n) != LH_TOML_STRING)
            continue;
        const lh_toml *was = entry_named(old, lh_toml_str(n));
        if (was == NULL)
            json_array_append_new(added, json_string(lh_toml_str(n)));
        else if (!same_entry(was, lh_toml_at(arr, i)))
            json_array_append_new(changed, json_string(lh_toml_str(n)));
    }
    arr = lh_config_table_array(old, "bucket");
    for (size_t i = 0; i < lh_toml_count(arr); i++) {
        const lh_toml *n = lh_toml_get(lh_toml_at(arr, i), "name");
        if (n && lh_toml_type_of(n) == LH_TOML_STRING && entry_named(now, lh_toml_str(n)) == NULL)
            json_array_append_new(removed, json_string(lh_toml_str(n)));
    }
    return json_pack("{s:o, s:o, s:o}", "added", added, "changed", changed, "removed", removed);
}

const char *
lh_buckets_config_backend(const lh_config *cfg, const char *name)
{
    const lh_toml *t = entry_named(cfg, name), *b = t ? lh_toml_get(t, "backend") : NULL;
    return b && lh_toml_type_of(b) == LH_TOML_STRING ? lh_toml_str(b) : NULL;
}

int
lh_buckets_add_from(lh_buckets *b, const lh_config *cfg, const json_t *names, lh_err *err)
{
    const lh_toml *arr = lh_config_table_array(cfg, "bucket");
    size_t n = json_array_size(names), opened = 0;
    lh_store **stores = lh_calloc(n ? n : 1, sizeof *stores);
    const char **store_names = lh_calloc(n ? n : 1, sizeof *store_names);
    lh_secrets *secrets = NULL;
    int rc = 0;
    /* open every one first: a bucket that cannot be opened adds none */
    for (size_t i = 0; rc == 0 && i < lh_toml_count(arr); i++) {
        const lh_toml *t = lh_toml_at(arr, i), *nm = lh_toml_get(t, "name");
        bool wanted = false;
        size_t j;
        json_t *v;
        json_array_foreach(names, j, v) wanted |=
            nm && lh_toml_type_of(nm) == LH_TOML_STRING &&
            strcmp(lh_toml_str(nm), json_string_value(v)) == 0;
        if (!wanted || opened == n)
            continue;
        rc = open_entry(cfg, t, i, &secrets, &store_names[opened], &stores[opened], err);
        if (rc == 0)
            opened++;
    }
    lh_secrets_free(secrets);
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; rc == 0 && i < opened; i++)
        if (find_locked(b, store_names[i]))
            rc = lh_err_set(err, LH_EEXIST, 409, "bucket_exists", "bucket '%s' already exists",
                            store_names[i]);
    for (size_t i = 0; rc == 0 && i < opened; i++)
        add_bucket(b, store_names[i], "tenant", stores[i]);
    pthread_mutex_unlock(&b->lock);
    if (rc != 0)
        for (size_t i = 0; i < opened; i++)
            lh_store_free(stores[i]);
    free(stores);
    free(store_names);
    return rc;
}

static int
assign_roles(lh_buckets *b, const lh_config *cfg, lh_err *err)
{
    const char *primary = lh_config_str(cfg, "storage.primary");
    const char *rescue = lh_config_str(cfg, "storage.rescue");
    const char *profile = lh_config_str(cfg, "storage.profile_bucket");
    b->primary = find_locked(b, primary);
    if (b->primary == NULL) {
        if (strcmp(primary, "primary") != 0)
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "[storage] primary = \"%s\" names no [[bucket]]", primary);
        char *root = lh_sprintf("%s/buckets/primary", lh_config_str(cfg, "server.data_dir"));
        lh_store *store = NULL;
        int rc = lh_store_fs_open(root, &store, err);
        free(root);
        if (rc != 0)
            return rc;
        b->primary = add_bucket(b, "primary", "primary", store);
    } else {
        b->primary->cls = "primary";
    }
    if (rescue[0]) {
        b->rescue = find_locked(b, rescue);
        if (b->rescue == NULL)
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "[storage] rescue = \"%s\" names no [[bucket]]", rescue);
        if (b->rescue == b->primary)
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "[storage] rescue must be another bucket than the primary");
        b->rescue->cls = "rescue";
    }
    if (profile[0]) {
        b->profile_base = find_locked(b, profile);
        if (b->profile_base == NULL)
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "[storage] profile_bucket = \"%s\" names no [[bucket]]", profile);
        const char *prefix = lh_config_str(cfg, "storage.profile_prefix");
        if (prefix[0] && prefix[strlen(prefix) - 1] != '/')
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "[storage] profile_prefix must end with '/'");
        b->profile_prefix = lh_strdup(prefix);
    }
    return 0;
}

/* ---- error journal --------------------------------------------------------------------- */

static void
ring_push_locked(lh_buckets *b, json_t *event)
{
    if (b->ring_len == b->ring_cap)
        json_decref(b->ring[b->ring_head]);
    else
        b->ring_len++;
    b->ring[b->ring_head] = event;
    b->ring_head = (b->ring_head + 1) % b->ring_cap;
}

/* Not-found, conflicts, invalid input and cancellations are the caller's business, not
 * failures of the bucket; but an invalid object that the bucket holds (a 5xx such as
 * manifest_invalid) is one an operator must see. */
static bool
is_operational(const lh_err *e)
{
    if (e->rc == 0)
        return false;
    if (e->http_status >= 500)
        return true;
    return e->rc != LH_ENOTFOUND && e->rc != LH_EEXIST && e->rc != LH_EINVAL &&
           e->rc != LH_ECANCELED;
}

static bool
same_str(const json_t *value, const char *s)
{
    const char *v = json_string_value(value);
    return s ? v && strcmp(v, s) == 0 : json_is_null(value);
}

/* The open window of an error identical to this one (same bucket, op, key and code) that
 * started at most coalesce_us before now, or NULL. */
static json_t *
find_open_locked(lh_buckets *b, const char *bucket_name, const char *op, const char *key,
                 const char *code, int64_t now)
{
    for (size_t i = 0; i < b->n_open; i++) {
        json_t *ev = b->open_errs[i];
        if (now - json_integer_value(json_object_get(ev, "epoch_us")) <= b->coalesce_us &&
            same_str(json_object_get(ev, "bucket"), bucket_name) &&
            same_str(json_object_get(ev, "op"), op) && same_str(json_object_get(ev, "key"), key) &&
            same_str(json_object_get(ev, "code"), code))
            return ev;
    }
    return NULL;
}

/* Move the windows that are over (all of them with force; the oldest too when there is no
 * room for another) from the open list to *closed (new array of owned records). */
static json_t *
take_closed_locked(lh_buckets *b, int64_t now, bool force, bool make_room)
{
    json_t *closed = json_array();
    size_t kept = 0;
    for (size_t i = 0; i < b->n_open; i++) {
        json_t *ev = b->open_errs[i];
        bool over =
            force || now - json_integer_value(json_object_get(ev, "epoch_us")) > b->coalesce_us;
        if (over || (make_room && i == 0 && b->n_open == COALESCE_OPEN_MAX))
            json_array_append_new(closed, ev);
        else
            b->open_errs[kept++] = ev;
    }
    b->n_open = kept;
    return closed;
}

/* Journal closed windows: each record once, with its final count. */
static void
journal_closed(lh_buckets *b, json_t *closed)
{
    size_t i;
    json_t *ev;
    json_array_foreach(closed, i, ev)
    {
        json_int_t count = json_integer_value(json_object_get(ev, "count"));
        if (count > 1)
            lh_log(LH_LOG_WARN, NULL, NULL,
                   "bucket operation failed %lld times (%s %s on '%s'): %s", (long long)count,
                   json_string_value(json_object_get(ev, "op")),
                   json_string_value(json_object_get(ev, "code")),
                   json_string_value(json_object_get(ev, "bucket")),
                   json_string_value(json_object_get(ev, "message")));
        lh_err aerr;
        /* a copy: the ring's record may be rendered by a reader meanwhile */
        lh_applog_append(b->errlog, json_deep_copy(ev), &aerr);
    }
    json_decref(closed);
}

/* Close the coalescing windows that are over (all with force) and journal them. */
static void
close_windows(lh_buckets *b, bool force)
{
    pthread_mutex_lock(&b->lock);
    json_t *closed = take_closed_locked(b, lh_now_us(), force, false);
    pthread_mutex_unlock(&b->lock);
    journal_closed(b, closed);
}

/* Record a failure; rescue (or NULL) names the rescue bucket that served the read
 * instead, which the record then says ("rescue"). */
static void
record(lh_buckets *b, const char *bucket_name, const char *op, const char *key, const lh_err *e,
       const char *request_id, const char *rescue)
{
    if (!is_operational(e))
        return;
    int64_t now = lh_now_us();
    char when[LH_TIME_MAX];
    lh_time_format(now, when);
    pthread_mutex_lock(&b->lock);
    json_t *same =
        b->coalesce_us > 0 ? find_open_locked(b, bucket_name, op, key, e->code, now) : NULL;
    if (same) {
        /* a repeat within the window: counted in the record the ring already shows */
        json_object_set_new(same, "count",
                            json_integer(json_integer_value(json_object_get(same, "count")) + 1));
        json_object_set_new(same, "last_time", json_string(when));
        json_object_set_new(same, "last_epoch_us", json_integer(now));
        if (rescue)
            json_object_set_new(same, "rescue", json_string(rescue));
        pthread_mutex_unlock(&b->lock);
        return;
    }
    json_t *ev = json_object();
    json_object_set_new(ev, "time", json_string(when));
    json_object_set_new(ev, "epoch_us", json_integer(now));
    json_object_set_new(ev, "bucket", json_string(bucket_name));
    json_object_set_new(ev, "op", json_string(op));
    json_object_set_new(ev, "key", key ? json_string(key) : json_null());
    json_object_set_new(ev, "code", json_string(e->code));
    json_object_set_new(ev, "status", json_integer(e->http_status));
    json_object_set_new(ev, "message", json_string(e->message));
    json_object_set_new(ev, "detail", json_string(e->detail));
    json_object_set_new(ev, "request_id", request_id ? json_string(request_id) : json_null());
    json_object_set_new(ev, "count", json_integer(1));
    json_object_set_new(ev, "first_time", json_string(when));
    json_object_set_new(ev, "last_time", json_string(when));
    json_object_set_new(ev, "last_epoch_us", json_integer(now));
    if (rescue)
        json_object_set_new(ev, "rescue", json_string(rescue));
    json_t *closed = NULL;
    if (b->coalesce_us > 0) {
        closed = take_closed_locked(b, now, false, true);
        b->open_errs[b->n_open++] = json_incref(ev);
    }
    ring_push_locked(b, json_incref(ev));
    pthread_mutex_unlock(&b->lock);
    if (closed)
        journal_closed(b, closed);
    else /* writing the journal may itself fail (primary down): the event stays buffered */
        lh_applog_append(b->errlog, json_incref(ev), &(lh_err){0});
    json_decref(ev);
    json_t *fields = json_pack("{s:s, s:s, s:s, s:s}", "bucket", bucket_name, "op", op, "code",
                               e->code, "detail", e->detail);
    if (rescue)
        json_object_set_new(fields, "rescue", json_string(rescue));
    lh_log(LH_LOG_WARN, request_id, fields, "bucket operation failed: %s%s", e->message,
           rescue ? " (read from the rescue bucket)" : "");
    json_decref(fields);
}

void
lh_buckets_record_error(lh_buckets *b, const char *bucket_name, const char *op, const char *key,
                        const lh_err *e, const char *request_id)
{
    record(b, bucket_name, op, key, e, request_id, NULL);
}

json_t *
lh_buckets_errors_json(lh_buckets *b, const char *bucket_name, size_t limit)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->ring_len && json_array_size(arr) < limit; i++) {
        size_t slot = (b->ring_head + b->ring_cap - 1 - i) % b->ring_cap;
        json_t *ev = b->ring[slot];
        /* events reloaded from the journal are whatever its files hold: maybe no "bucket" */
        const char *name = json_string_value(json_object_get(ev, "bucket"));
        if (bucket_name && (name == NULL || strcmp(name, bucket_name) != 0))
            continue;
        /* a copy: an open record's count changes under the lock after it is released */
        json_array_append_new(arr, json_deep_copy(ev));
    }
    pthread_mutex_unlock(&b->lock);
    return arr;
}

int
lh_buckets_errors_flush(lh_buckets *b, lh_err *err)
{
    close_windows(b, true);
    return lh_applog_flush(b->errlog, err);
}

int
lh_buckets_errors_compact(lh_buckets *b, int *merged, lh_err *err)
{
    int rc = lh_buckets_errors_flush(b, err);
    return rc != 0 ? rc : lh_applog_compact(b->errlog, merged, err);
}

static void
reload_ring(lh_buckets *b)
{
    json_t *events = NULL;
    lh_err err;
    if (lh_applog_read(b->errlog, b->ring_cap, &events, &err) != 0) {
        lh_log(LH_LOG_WARN, NULL, NULL, "could not reload the bucket error journal: %s",
               err.message);
        return;
    }
    size_t i;
    json_t *ev;
    /* the journal is whatever its files hold: keep only well-formed events */
    json_array_foreach(events, i, ev)
    {
        if (json_is_object(ev) && json_is_string(json_object_get(ev, "bucket")) &&
            json_is_string(json_object_get(ev, "op")))
            ring_push_locked(b, json_incref(ev));
    }
    json_decref(events);
}

/* ---- probing ----------------------------------------------------------------------------- */

static void
probe_one(lh_buckets *b, bucket *bk)
{
    lh_err err;
    lh_err_clear(&err);
    int64_t t0 = lh_mono_us();
    int rc = lh_store_probe(bk->store, &err);
    int64_t latency = lh_mono_us() - t0;
    pthread_mutex_lock(&b->lock);
    bool was_reachable = !bk->probed || bk->reachable;
    bk->probed = true;
    bk->reachable = rc == 0;
    bk->latency_us = latency;
    bk->checked_at_us = lh_now_us();
    if (rc == 0) {
        bk->last_ok_us = bk->checked_at_us;
    } else {
        snprintf(bk->last_error, sizeof bk->last_error, "%s%s%s", err.message,
                 err.detail[0] ? ": " : "", err.detail);
    }
    pthread_mutex_unlock(&b->lock);
    /* record a bucket going down once, not every probe while it stays down */
    if (rc != 0 && was_reachable)
        lh_buckets_record_error(b, bk->name, "probe", NULL, &err, NULL);
    if (rc == 0 && !was_reachable)
        lh_log(LH_LOG_INFO, NULL, NULL, "bucket '%s' is reachable again", bk->name);
}

static size_t
snapshot(lh_buckets *b, bucket ***out)
{
    pthread_mutex_lock(&b->lock);
    size_t n = b->n;
    bucket **copy = lh_calloc(n ? n : 1, sizeof *copy);
    memcpy(copy, b->items, n * sizeof *copy);
    pthread_mutex_unlock(&b->lock);
    *out = copy;
    return n;
}

/* Probe every bucket (profile views share their base bucket's backend: not probed on
 * their own). One probe run at a time: callers who had to wait for a run that finished
 * after they arrived take its results instead of starting another, so a crowd of
 * /storage/bucket-health calls costs one probe run, not one each. */
static void
probe_all(lh_buckets *b, bool force)
{
    int64_t arrived = lh_mono_us();
    pthread_mutex_lock(&b->probe_lock);
    if (!force && b->last_probe_mono_us > arrived) {
        pthread_mutex_unlock(&b->probe_lock);
        return;
    }
    bucket **items;
    size_t n = snapshot(b, &items);
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i]->cls, "profile") != 0)
            probe_one(b, items[i]);
    free(items);
    b->last_probe_mono_us = lh_mono_us();
    pthread_mutex_unlock(&b->probe_lock);
}

static void *
background(void *arg)
{
    lh_buckets *b = arg;
    int64_t next_probe = b->probe_interval_us > 0 ? lh_mono_us() : INT64_MAX;
    pthread_mutex_lock(&b->lock);
    while (!b->stop) {
        int64_t now = lh_mono_us();
        if (now >= next_probe) {
            pthread_mutex_unlock(&b->lock);
            probe_all(b, true);
            pthread_mutex_lock(&b->lock);
            next_probe = lh_mono_us() + b->probe_interval_us;
        }
        pthread_mutex_unlock(&b->lock);
        close_windows(b, false);
        lh_err err;
        lh_applog_tick(b->errlog, &err);
        pthread_mutex_lock(&b->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait_us = b->tick_us;
        ts.tv_sec += (time_t)(wait_us / 1000000);
        ts.tv_nsec += (long)(wait_us % 1000000) * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (!b->stop)
            pthread_cond_timedwait(&b->wake, &b->lock, &ts);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

int
lh_buckets_open(const lh_config *cfg, lh_buckets **out, lh_err *err)
{
    lh_buckets *b = lh_calloc(1, sizeof *b);
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->probe_lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    b->ring_cap = (size_t)lh_config_int(cfg, "storage.error_ring");
    b->ring = lh_calloc(b->ring_cap, sizeof *b->ring);
    b->coalesce_us = lh_config_int(cfg, "storage.error_coalesce_ms") * 1000;
    int rc = load_bucket_entries(b, cfg, err);
    if (rc == 0)
        rc = assign_roles(b, cfg, err);
    if (rc != 0) {
        lh_buckets_close(b);
        return rc;
    }
    b->errlog = lh_applog_new(b->primary->store, LH_LAYOUT_ERRORS,
                              (int)lh_config_int(cfg, "storage.journal_flush_events"),
                              lh_config_int(cfg, "storage.journal_flush_ms"));
    reload_ring(b);
    b->probe_interval_us = lh_config_int(cfg, "storage.probe_interval_ms") * 1000;
    int64_t flush_us = lh_config_int(cfg, "storage.journal_flush_ms") * 1000;
    b->tick_us = flush_us / 2 > 1000000 ? 1000000 : flush_us / 2 < 5000 ? 5000 : flush_us / 2;
    if (pthread_create(&b->thread, NULL, background, b) != 0) {
        lh_buckets_close(b);
        return lh_err_set(err, LH_EIO, 0, "thread_failed", "could not start the bucket prober");
    }
    b->thread_started = true;
    *out = b;
    return 0;
}

void
lh_buckets_close(lh_buckets *b)
{
    if (b == NULL)
        return;
    if (b->thread_started) {
        pthread_mutex_lock(&b->lock);
        b->stop = true;
        pthread_cond_broadcast(&b->wake);
        pthread_mutex_unlock(&b->lock);
        pthread_join(b->thread, NULL);
    }
    if (b->errlog) {
        lh_err err;
        if (lh_buckets_errors_flush(b, &err) != 0) {
            int64_t buffered, batches, dropped;
            lh_applog_stats(b->errlog, &buffered, &batches, &dropped);
            lh_log(LH_LOG_ERROR, NULL, NULL,
                   "could not write %lld buffered bucket errors at shutdown: %s",
                   (long long)buffered, err.message);
        }
        lh_applog_free(b->errlog);
    }
    /* views (profiles) before the stores they point into */
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->items[i]->cls, "profile") == 0)
            lh_store_free(b->items[i]->store);
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->items[i]->cls, "profile") != 0)
            lh_store_free(b->items[i]->store);
        free(b->items[i]);
    }
    free(b->items);
    for (size_t i = 0; i < b->n_open; i++)
        json_decref(b->open_errs[i]); /* journaled by the flush above when there was a log */
    for (size_t i = 0; i < b->ring_len; i++)
        json_decref(b->ring[(b->ring_head + b->ring_cap - 1 - i) % b->ring_cap]);
    free(b->ring);
    free(b->profile_prefix);
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->probe_lock);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static bucket *
resolve(lh_buckets *b, const char *name, lh_err *err)
{
    pthread_mutex_lock(&b->lock);
    bucket *bk = find_locked(b, name);
    if (bk == NULL && strncmp(name, "profile:", 8) == 0 && b->profile_base) {
        const char *user = name + 8;
        if (lh_name_valid(user)) {
            char *prefix = lh_sprintf("%s%s/", b->profile_prefix, user);
            lh_store *view = lh_storage__prefix_open(b->profile_base->store, prefix);
            free(prefix);
            bk = add_bucket(b, name, "profile", view);
            bk->backend = b->profile_base->backend;
        }
    }
    pthread_mutex_unlock(&b->lock);
    if (bk == NULL) {
        lh_err_set(err, LH_ENOTFOUND, 404, "bucket_not_found", "no bucket named '%s'", name);
        lh_err_hint(err, "GET /storage/buckets lists the buckets");
    }
    return bk;
}

lh_store *
lh_buckets_get(lh_buckets *b, const char *name, lh_err *err)
{
    bucket *bk = resolve(b, name, err);
    return bk ? bk->store : NULL;
}

const char *
lh_buckets_profile_base_name(lh_buckets *b)
{
    return b->profile_base ? b->profile_base->name : NULL;
}

const char *
lh_buckets_rescue_name(lh_buckets *b)
{
    return b->rescue ? b->rescue->name : NULL;
}

lh_store *
lh_buckets_primary(lh_buckets *b)
{
    return b->primary->store;
}

const char *
lh_buckets_primary_name(lh_buckets *b)
{
    return b->primary->name;
}

/* ---- object operations ------------------------------------------------------------------ */

typedef struct counting_sink {
    lh_sink_fn sink;
    void *ctx;
    int64_t delivered;
} counting_sink;

static int
count_bytes(void *ctx, const void *data, size_t len)
{
    counting_sink *c = ctx;
    c->delivered += (int64_t)len;
    return c->sink(c->ctx, data, len);
}

int
lh_buckets_get_object(lh_buckets *b, const char *bucket_name, const char *key, int64_t offset,
                      int64_t len, lh_sink_fn sink, void *ctx, lh_obj_info *info, bool *rescue_used,
                      const char *request_id, lh_err *err)
{
    *rescue_used = false;
    bucket *bk = resolve(b, bucket_name, err);
    if (bk == NULL)
        return LH_ENOTFOUND;
    counting_sink counted = {sink, ctx, 0};
    int rc = lh_store_get(bk->store, key, offset, len, count_bytes, &counted, info, err);
    if (rc != LH_EUNAVAIL)
        return rc;
    /* bytes already handed on cannot be taken back: only a clean failure falls back */
    if (b->rescue == NULL || b->rescue == bk || counted.delivered > 0) {
        lh_buckets_record_error(b, bk->name, "get", key, err, request_id);
        return rc;
    }
    lh_err rerr;
    int rrc = lh_store_get(b->rescue->store, key, offset, len, sink, ctx, info, &rerr);
    record(b, bk->name, "get", key, err, request_id, rrc == 0 ? b->rescue->name : NULL);
    if (rrc == 0) {
        *rescue_used = true;
        return 0;
    }
    lh_buckets_record_error(b, b->rescue->name, "get", key, &rerr, request_id);
    if (err) {
        char first[LH_ERR_TEXT_MAX];
        snprintf(first, sizeof first, "%s", err->detail);
        lh_err_detail(err, "%s; the rescue bucket '%s' could not serve it either: %s", first,
                      b->rescue->name, rerr.message);
    }
    return rc;
}

int
lh_buckets_head_object(lh_buckets *b, const char *bucket_name, const char *key, lh_obj_info *info,
                       bool *rescue_used, const char *request_id, lh_err *err)
{
    *rescue_used = false;
    bucket *bk = resolve(b, bucket_name, err);
    if (bk == NULL)
        return LH_ENOTFOUND;
    int rc = lh_store_head(bk->store, key, info, err);
    if (rc != LH_EUNAVAIL)
        return rc;
    if (b->rescue == NULL || b->rescue == bk) {
        lh_buckets_record_error(b, bk->name, "head", key, err, request_id);
        return rc;
    }
    lh_err rerr;
    if (lh_store_head(b->rescue->store, key, info, &rerr) == 0) {
        record(b, bk->name, "head", key, err, request_id, b->rescue->name);
        *rescue_used = true;
        return 0;
    }
    lh_buckets_record_error(b, bk->name, "head", key, err, request_id);
    lh_buckets_record_error(b, b->rescue->name, "head", key, &rerr, request_id);
    return rc;
}

int
lh_buckets_open_object(lh_buckets *b, const char *bucket_name, const char *key, int *fd_out,
                       lh_obj_info *info, bool *rescue_used, const char *request_id, lh_err *err)
{
    (void)request_id; /* failures here are retried through lh_buckets_get_object */
    *rescue_used = false;
    bucket *bk = resolve(b, bucket_name, err);
    if (bk == NULL)
        return LH_ENOTFOUND;
    return lh_store_open_local(bk->store, key, fd_out, info, err);
}

int
lh_buckets_put_object(lh_buckets *b, const char *bucket_name, const char *key, const lh_source *src,
                      int flags, lh_obj_info *info, const char *request_id, lh_err *err)
{
    bucket *bk = resolve(b, bucket_name, err);
    if (bk == NULL)
        return LH_ENOTFOUND;
    int rc = lh_store_put(bk->store, key, src, flags, info, err);
    if (rc == LH_EUNAVAIL) {
        lh_err_hint(err, "writes never fall back to another bucket; retry when '%s' is back",
                    bk->name);
    }
    if (rc != 0)
        lh_buckets_record_error(b, bk->name, "put", key, err, request_id);
    return rc;
}

int
lh_buckets_put_file(lh_buckets *b, const char *bucket_name, const char *key, const char *path,
                    bool may_link, int flags, int64_t *bytes, const char *request_id, lh_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        lh_err_set(err, LH_EIO, 500, "work_dir_unreadable", "could not read a local file to store");
        lh_err_detail(err, "%s: %s", path, strerror(saved));
        return LH_EIO;
    }
    lh_source src = {.fd = fd, .len = (int64_t)st.st_size, .may_link = may_link};
    int rc = lh_buckets_put_object(b, bucket_name, key, &src, flags, NULL, request_id, err);
    close(fd);
    if (rc == 0 && bytes)
        *bytes = (int64_t)st.st_size;
    return rc;
}

int
lh_buckets_delete_object(lh_buckets *b, const char *bucket_name, const char *key,
                         const char *request_id, lh_err *err)
{
    bucket *bk = resolve(b, bucket_name, err);
    if (bk == NULL)
        return LH_ENOTFOUND;
    int rc = lh_store_delete(bk->store, key, err);
    if (rc != 0)
        lh_buckets_record_error(b, bk->name, "delete", key, err, request_id);
    return rc;
}

int
lh_buckets_list_objects(lh_buckets *b, const char *bucket_name, const char *prefix,
                        const char *cursor, size_t limit, lh_list_page *page,
                        const char *request_id, lh_err *err)
{
    memset(page, 0, sizeof *page);
    bucket *bk = resolve(b, bucket_name, err);
    if (bk == NULL)
        return LH_ENOTFOUND;
    int rc = lh_store_list(bk->store, prefix, cursor, limit, page, err);
    if (rc != 0)
        lh_buckets_record_error(b, bk->name, "list", prefix, err, request_id);
    return rc;
}

int
lh_buckets_sweep_temp(lh_buckets *b, const char *bucket_name, int64_t older_than_us, bool dry_run,
                      int64_t *files, int64_t *bytes, lh_err *err)
{
    bucket *bk = resolve(b, bucket_name, err);
    if (bk == NULL)
        return LH_ENOTFOUND;
    int rc = lh_store_sweep_temp(bk->store, older_than_us, dry_run, files, bytes, err);
    if (rc != 0)
        lh_buckets_record_error(b, bk->name, "sweep_temp", NULL, err, NULL);
    return rc;
}

int
lh_buckets_each_in(lh_buckets *b, const char *bucket_name, const char *prefix,
                   lh_list_enter_fn enter, void *enter_ctx, lh_store_each_fn fn, void *ctx,
                   const char *request_id, lh_err *err)
{
    bucket *bk = resolve(b, bucket_name, err);
    if (bk == NULL)
        return LH_ENOTFOUND;
    if (bk->store->ops->walk == NULL)
        return lh_buckets_each(b, bucket_name, prefix, fn, ctx, request_id, err);
    lh_err werr = {0};
    int rc = lh_store_each_in(bk->store, prefix, enter, enter_ctx, fn, ctx, &werr);
    if (rc != 0 && werr.rc != 0) /* a failure of the walk, not fn's own stop */
        lh_buckets_record_error(b, bk->name, "list", prefix, &werr, request_id);
    if (rc != 0 && werr.rc != 0 && err)
        *err = werr;
    return rc;
}

typedef struct each_list {
    lh_buckets *b;
    const char *bucket;
    const char *request_id;
} each_list;

static int
list_bucket(void *ctx, const char *prefix, const char *cursor, size_t limit, lh_list_page *page,
            lh_err *err)
{
    each_list *l = ctx;
    return lh_buckets_list_objects(l->b, l->bucket, prefix, cursor, limit, page, l->request_id,
                                   err);
}

int
lh_buckets_each(lh_buckets *b, const char *bucket_name, const char *prefix, lh_store_each_fn fn,
                void *ctx, const char *request_id, lh_err *err)
{
    each_list l = {b, bucket_name, request_id};
    return lh_storage__each_page(list_bucket, &l, prefix, fn, ctx, err);
}

/* ---- JSON views ---------------------------------------------------------------------------- */

static json_t *
bucket_json_locked(const bucket *bk)
{
    json_t *reach = json_object();
    if (!bk->probed) {
        json_object_set_new(reach, "status", json_string("unknown"));
    } else {
        json_object_set_new(reach, "status", json_string(bk->reachable ? "ok" : "unreachable"));
        json_object_set_new(reach, "latency_us", json_integer(bk->latency_us));
        json_object_set_new(reach, "checked_at", lh_json_time(bk->checked_at_us));
        json_object_set_new(reach, "last_ok_at", lh_json_time(bk->last_ok_us));
        json_object_set_new(reach, "last_error",
                            bk->reachable ? json_null() : json_string(bk->last_error));
    }
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(bk->name));
    json_object_set_new(j, "class", json_string(bk->cls));
    json_object_set_new(j, "backend", json_string(bk->backend));
    json_object_set_new(j, "location", json_string(lh_store_describe(bk->store)));
    json_object_set_new(j, "reachability", reach);
    return j;
}

json_t *
lh_buckets_list_json(lh_buckets *b)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->n; i++)
        json_array_append_new(arr, bucket_json_locked(b->items[i]));
    pthread_mutex_unlock(&b->lock);
    json_t *out = json_object();
    json_object_set_new(out, "buckets", arr);
    json_object_set_new(out, "primary", json_string(b->primary->name));
    json_object_set_new(out, "rescue", b->rescue ? json_string(b->rescue->name) : json_null());
    return out;
}

json_t *
lh_buckets_probe_all(lh_buckets *b)
{
    probe_all(b, false);
    json_t *arr = json_array();
    bool all_ok = true;
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->n; i++) {
        const bucket *bk = b->items[i];
        if (!bk->probed)
            continue; /* profile views */
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(bk->name));
        json_object_set_new(j, "ok", json_boolean(bk->reachable));
        json_object_set_new(j, "latency_us", json_integer(bk->latency_us));
        json_object_set_new(j, "error", bk->reachable ? json_null() : json_string(bk->last_error));
        json_array_append_new(arr, j);
        all_ok &= bk->reachable;
    }
    pthread_mutex_unlock(&b->lock);
    json_t *out = json_object();
    json_object_set_new(out, "ok", json_boolean(all_ok));
    json_object_set_new(out, "buckets", arr);
    return out;
}

json_t *
lh_buckets_health_json(lh_buckets *b)
{
    size_t unreachable = 0, n;
    pthread_mutex_lock(&b->lock);
    n = b->n;
    for (size_t i = 0; i < b->n; i++)
        unreachable += b->items[i]->probed && !b->items[i]->reachable;
    size_t recent = b->ring_len;
    size_t counting = b->n_open; /* journaled when their coalescing window closes */
    pthread_mutex_unlock(&b->lock);
    int64_t buffered, batches, dropped;
    lh_applog_stats(b->errlog, &buffered, &batches, &dropped);
    buffered += (int64_t)counting;
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "buckets", (json_int_t)n, "unreachable",
                     (json_int_t)unreachable, "recent_errors", (json_int_t)recent,
                     "errors_unwritten", (json_int_t)buffered, "errors_dropped",
                     (json_int_t)dropped);
}

size_t
lh_buckets_count(lh_buckets *b)
{
    pthread_mutex_lock(&b->lock);
    size_t n = b->n;
    pthread_mutex_unlock(&b->lock);
    return n;
}

const char *
lh_buckets_name_at(lh_buckets *b, size_t i)
{
    pthread_mutex_lock(&b->lock);
    const char *name = i < b->n ? b->items[i]->name : NULL;
    pthread_mutex_unlock(&b->lock);
    return name; /* bucket records are never freed before close */
}
