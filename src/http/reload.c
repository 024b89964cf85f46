/*
 * reload.c — re-read the configuration file while serving (POST /admin/reload, SIGHUP).
 *
 * The new file is loaded and validated whole, and a new principal set (lh_auth: principals,
 * their profiles, and the config they came from) is built from it before anything changes;
 * a file that does not load changes nothing. Then the limits that live in modules are set
 * and the server's set is swapped under auth_lock. Requests take a reference to the set
 * when their headers arrive and keep it until they complete, so a request in flight
 * finishes with the principal, profile and limits it started with, and the old set is
 * freed by whichever of them ends last.
 *
 * What a reload applies: principals (tokens, roles, buckets, profiles), profiles, the keys
 * in LIVE_KEYS below (each is either read per request from the request's set or handed to
 * its module here), and remote (s3) [[bucket]] entries the file adds (opened, registered
 * and their datasets loaded before the new principals can name them). Every other change
 * (ports, data_dir, an fs bucket added, a bucket's settings or its removal, thread
 * counts, ...) is reported as needing a restart and has no effect until then.
 */
#include "http/http_int.h"

#include <string.h>

/* Keys a reload applies. Each one is read per request from req->config (server.c and the
 * handlers) or set in its module by apply_limits; a key added here must be one of those. */
static const char *const LIVE_KEYS[] = {
    "server.max_body_bytes",
    "server.request_timeout_ms",
    "storage.max_object_bytes",
    "engine.query_timeout_ms",
    "engine.max_result_bytes",
    "engine.default_row_limit",
    "engine.max_row_limit",
    "engine.max_queries_per_principal",
    "engine.max_queued_per_principal",
    "ingest.max_rows_per_request",
    "ingest.pg_parallel",
    "catalog.compact_after_deltas",
    "grpc.max_streams_per_principal",
    "tools.max_calls_per_minute",
    "log.level",
    "log.access",
    "principal",
    "profile",
    NULL,
};

static bool
is_live(const char *key)
{
    for (const char *const *k = LIVE_KEYS; *k; k++)
        if (strcmp(*k, key) == 0)
            return true;
    return false;
}

/* Names of the principals (or profiles) in a but not in b. */
static json_t *
names_missing(const lh_auth *a, const lh_auth *b)
{
    json_t *out = json_array();
    for (size_t i = 0; i < a->n; i++)
        if (lh_auth_find(b, a->principals[i].name) == NULL)
            json_array_append_new(out, json_string(a->principals[i].name));
    return out;
}

static bool
same_principal(const lh_principal *x, const lh_principal *y)
{
    if (memcmp(x->token_sha256, y->token_sha256, sizeof x->token_sha256) != 0 ||
        x->roles != y->roles || x->clearance != y->clearance ||
        x->limit_buckets != y->limit_buckets || x->n_buckets != y->n_buckets ||
        (x->profile == NULL) != (y->profile == NULL) ||
        (x->profile && strcmp(x->profile->name, y->profile->name) != 0))
        return false;
    for (size_t i = 0; i < x->n_buckets; i++)
        if (strcmp(x->buckets[i], y->buckets[i]) != 0)
            return false;
    return true;
}

static json_t *
principals_changed(const lh_auth *old, const lh_auth *now)
{
    json_t *changed = json_array();
    for (size_t i = 0; i < now->n; i++) {
        const lh_principal *was = lh_auth_find(old, now->principals[i].name);
        if (was && !same_principal(was, &now->principals[i]))
            json_array_append_new(changed, json_string(now->principals[i].name));
    }
    return json_pack("{s:o, s:o, s:o}", "added", names_missing(now, old), "removed",
                     names_missing(old, now), "changed", changed);
}

static json_t *
profile_names(const lh_config *cfg)
{
    size_t n;
    const lh_profile_cfg *p = lh_config_profiles(cfg, &n);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_string(p[i].name));
    return out;
}

/* The [[bucket]] entries the new file adds: open and register them (all or nothing),
 * then load their datasets and journals, before any request can use the new principal
 * set (which may name them). *out (new): what became of each added bucket. An existing
 * bucket whose settings changed, or one removed, is left as it is: datasets, indexes and
 * open files refer to it (the caller reports those as needing a restart). */
static int
add_buckets(lh_server *srv, const lh_config *cfg, const json_t *added, json_t **out, lh_err *err)
{
    json_t *report = json_array();
    int rc = json_array_size(added) ? lh_buckets_add_from(srv->buckets, cfg, added, err) : 0;
    size_t i;
    json_t *name;
    json_array_foreach(added, i, name)
    {
        if (rc != 0)
            break;
        const char *bucket = json_string_value(name);
        int64_t datasets = 0, errors = 0;
        if (srv->catalog)
            lh_catalog_add_bucket(srv->catalog, bucket, &datasets, &errors);
        /* indexes are loaded at start only: one already in the bucket waits for it */
        lh_list_page page;
        lh_err lerr;
        bool has_indexes = false;
        if (lh_buckets_list_objects(srv->buckets, bucket, LH_LAYOUT_VECTORS, NULL, 1, &page, NULL,
                                    &lerr) == 0) {
            has_indexes = page.n > 0;
            lh_list_page_free(&page);
        }
        json_array_append_new(report,
                              json_pack("{s:s, s:I, s:I, s:b}", "name", bucket, "datasets",
                                        (json_int_t)datasets, "load_errors", (json_int_t)errors,
                                        "vector_indexes_at_restart", has_indexes));
    }
    if (rc != 0) {
        json_decref(report);
        return rc;
    }
    *out = report;
    return 0;
}

/* Hand the limits kept in modules their new values. */
static void
apply_limits(lh_server *srv, const lh_config *cfg)
{
    lh_engine_set_principal_limits(srv->engine,
                                   (int)lh_config_int(cfg, "engine.max_queries_per_principal"),
                                   (int)lh_config_int(cfg, "engine.max_queued_per_principal"));
    if (srv->tools)
        lh_tools_set_max_calls_per_minute(srv->tools,
                                          lh_config_int(cfg, "tools.max_calls_per_minute"));
    int level = lh_log_level_parse(lh_config_str(cfg, "log.level"));
    if (level >= 0)
        lh_log_set_level((lh_log_level)level);
    atomic_store(&srv->access_log, lh_config_bool(cfg, "log.access"));
}

bool
lh_server_principal_known(lh_server *srv, const char *name)
{
    lh_auth *a = lh_http__auth_current(srv);
    bool known = lh_auth_find(a, name) != NULL;
    lh_auth_release(a);
    return known;
}

int
lh_server_reload(lh_server *srv, json_t **report, lh_err *err)
{
    const char *path = lh_config_path(srv->config);
    if (path == NULL)
        return lh_err_set(err, LH_EEXIST, 409, "no_config_file",
                          "the server was started without a configuration file; there is "
                          "nothing to re-read");
    pthread_mutex_lock(&srv->reload_lock);
    lh_config *cfg = NULL;
    lh_auth *now = NULL, *old = lh_http__auth_current(srv);
    int rc = lh_config_load(path, NULL, &cfg, err);
    if (rc == 0)
        rc = lh_auth_new(cfg, true, &now, err); /* takes cfg, also on failure */
    if (rc != 0) {
        err->http_status = 400;
        lh_err_hint(err, "fix the file and reload again; the configuration in force is unchanged");
        goto out;
    }
    /* buckets the file adds: those read through the local cache (s3) now; a folder (fs)
     * at the next start, since the engines' sandboxes list the folders they may read when
     * they open and cannot be widened after (lock_configuration) */
    json_t *bucket_diff = lh_buckets_config_diff(old->config, now->config), *added = NULL;
    json_t *now_added = json_array(), *later = json_array();
    size_t j;
    json_t *name;
    json_array_foreach(json_object_get(bucket_diff, "added"), j, name)
    {
        const char *backend = lh_buckets_config_backend(now->config, json_string_value(name));
        json_array_append(backend && strcmp(backend, "fs") == 0 ? later : now_added, name);
    }
    json_object_set_new(bucket_diff, "added_at_restart", later);
    rc = add_buckets(srv, now->config, now_added, &added, err);
    json_decref(now_added);
    if (rc != 0) {
        json_decref(bucket_diff);
        lh_auth_release(now);
        if (err->http_status == 0 || err->http_status >= 500)
            err->http_status = 400;
        lh_err_hint(err, "fix the file and reload again; the configuration in force is unchanged");
        goto out;
    }
    /* buckets only added are applied; a bucket changed or removed needs a restart */
    bool buckets_live = json_array_size(json_object_get(bucket_diff, "changed")) == 0 &&
                        json_array_size(json_object_get(bucket_diff, "removed")) == 0 &&
                        json_array_size(json_object_get(bucket_diff, "added_at_restart")) == 0;
    json_object_set_new(bucket_diff, "added", added);
    json_t *changed = lh_config_diff(old->config, now->config);
    json_t *applied = json_array(), *restart = json_array();
    size_t i;
    json_t *key;
    json_array_foreach(changed, i, key)
    {
        const char *k = json_string_value(key);
        bool live = is_live(k) || (strcmp(k, "bucket") == 0 && buckets_live);
        json_array_append(live ? applied : restart, key);
    }
    apply_limits(srv, now->config);
    pthread_mutex_lock(&srv->auth_lock);
    lh_auth *was = srv->auth;
    srv->auth = now; /* the server's reference moves to the new set */
    pthread_mutex_unlock(&srv->auth_lock);
    lh_auth_release(was);

    size_t n_warnings;
    const char *const *warnings = lh_config_warnings(now->config, &n_warnings);
    json_t *warn = json_array();
    for (size_t w = 0; w < n_warnings; w++)
        json_array_append_new(warn, json_string(warnings[w]));
    json_t *profile_warnings = lh_profiles_check(now->config);
    json_array_extend(warn, profile_warnings);
    json_decref(profile_warnings);
    *report = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "config", path, "changed",
                        changed, "applied", applied, "restart_required", restart, "principals",
                        principals_changed(old, now), "buckets", bucket_diff, "profiles",
                        profile_names(now->config), "warnings", warn);
out:
    lh_auth_release(old);
    pthread_mutex_unlock(&srv->reload_lock);
    return rc;
}

int
lh_h_reload(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL, *report = NULL;
    int rc = lh_req_json(req, true, &body, &err);
    if (rc == 0 && json_object_size(body) != 0)
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "POST /admin/reload takes no body (it re-reads the configuration file)");
    json_decref(body);
    if (rc == 0)
        rc = lh_server_reload(req->srv, &report, &err);
    if (rc != 0) {
        lh_log_err(LH_LOG_WARN, req->request_id, &err);
        return lh_resp_error(resp, &err);
    }
    lh_log(LH_LOG_INFO, req->request_id, report, "configuration reloaded");
    return lh_resp_json(resp, 200, report);
}
