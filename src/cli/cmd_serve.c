/*
 * cmd_serve.c — `lakehouse serve`: load configuration, open the engine, start the job
 * pool and the HTTP server, then wait for SIGTERM/SIGINT and shut down gracefully.
 *
 * Signals are blocked before any thread starts, so every thread inherits the mask and
 * only the main thread receives them, through sigwait().
 */
#include "cli/cli.h"
#include "core/core.h"
#include "engine/engine.h"
#include "catalog/catalog.h"
#include "http/http.h"
#include "storage/storage.h"

#include <curl/curl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

void
lh_cmd_serve_help(void)
{
    printf("usage: lakehouse serve [--config FILE]\n\n"
           "Starts the HTTP server (default 127.0.0.1:3100) and runs until SIGTERM or SIGINT,\n"
           "then finishes in-flight requests and exits.\n\n"
           "options:\n"
           "  --config FILE   configuration file (default: $LAKEHOUSE_CONFIG, else\n"
           "                  ./lakehouse.toml if present, else embedded defaults)\n\n"
           "Every key can be overridden with LAKEHOUSE_<SECTION>_<KEY>, e.g.\n"
           "LAKEHOUSE_SERVER_PORT=3200. See lakehouse.example.toml for all keys.\n");
}

static int
parse_args(int argc, char **argv, const char **config_path)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "lakehouse serve: %s needs a file name\n", a);
                return 2;
            }
            *config_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            *config_path = a + 9;
        } else {
            fprintf(stderr, "lakehouse serve: unknown %s '%s'; see 'lakehouse help serve'\n",
                    a[0] == '-' ? "option" : "argument", a);
            return 2;
        }
    }
    return 0;
}

/* Let the server open as many files as the system allows it (the soft limit up to the
 * hard one), as servers commonly do: every connection, upload, cached data file and
 * kept query statement holds descriptors, and a soft limit of 1024 is easy to reach. */
static void
raise_open_files(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        /* an unlimited hard limit still stops at the kernel's nr_open */
        lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? 1048576 : lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
            lh_log(LH_LOG_WARN, NULL, NULL, "could not raise the open files limit");
    }
}

int
lh_cmd_serve(int argc, char **argv)
{
    const char *config_path = NULL;
    int status = parse_args(argc, argv, &config_path);
    if (status != 0)
        return status;
    if (config_path == NULL)
        config_path = getenv("LAKEHOUSE_CONFIG");
    struct stat st;
    if (config_path == NULL && stat("lakehouse.toml", &st) == 0)
        config_path = "lakehouse.toml";

    lh_err err;
    lh_config *cfg = NULL;
    lh_engine *engine = NULL, *internal_engine = NULL;
    char *results_dir = NULL;
    lh_jobs *jobs = NULL;
    lh_buckets *buckets = NULL;
    lh_cache *cache = NULL;
    lh_catalog *catalog = NULL;
    lh_vectors *vectors = NULL;
    char *work_dir = NULL;
    lh_server *srv = NULL;
    if (lh_config_load(config_path, NULL, &cfg, &err) != 0) {
        fprintf(stderr, "lakehouse: %s\n", err.message);
        return 2;
    }
    lh_log_set_level((lh_log_level)lh_log_level_parse(lh_config_str(cfg, "log.level")));
    size_t n_warnings;
    const char *const *warnings = lh_config_warnings(cfg, &n_warnings);
    for (size_t i = 0; i < n_warnings; i++)
        lh_log(LH_LOG_WARN, NULL, NULL, "config: %s", warnings[i]);

    /* before any thread: libcurl's global set-up is not thread-safe, and S3 stores,
     * embedding providers and build jobs all make requests from their own threads */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_open_files();

    status = 1;
    int rc = lh_buckets_open(cfg, &buckets, &err);
    if (rc != 0) {
        fprintf(stderr, "lakehouse: %s%s%s%s\n", err.message, err.detail[0] ? " (" : "",
                err.detail, err.detail[0] ? ")" : "");
        if (err.hint[0])
            fprintf(stderr, "lakehouse: hint: %s\n", err.hint);
        /* a configuration problem (bad bucket entry, refused secrets file) is exit 2 */
        status = rc == LH_EINVAL || rc == LH_EPERM ? 2 : 1;
        goto out;
    }
    /* Two DuckDB databases, each sandboxed to what it needs (the sandbox is per
     * database):
     *   users'   — dataset folders of local buckets, cache/objects (remote copies) and
     *              cache/results (Parquet answers on their way out);
     *   internal — the same dataset folders and cache/objects, plus work/ where uploads
     *              arrive and are converted, which users' SQL must never see.
     * Neither may read the data dir itself (admin token, journals). */
    char data_dir[PATH_MAX];
    /* with every bucket remote, nothing else creates the data dir */
    if (lh_mkdirs(lh_config_str(cfg, "server.data_dir"), &err) != 0) {
        fprintf(stderr, "lakehouse: %s: %s\n", err.message, err.detail);
        goto out;
    }
    if (realpath(lh_config_str(cfg, "server.data_dir"), data_dir) == NULL) {
        fprintf(stderr, "lakehouse: cannot resolve data_dir %s\n", lh_config_str(cfg, "server.data_dir"));
        goto out;
    }
    char *cache_root = lh_sprintf("%s/cache", data_dir);
    char *objects_dir = lh_sprintf("%s/objects", cache_root);
    results_dir = lh_sprintf("%s/results", cache_root);
    work_dir = lh_sprintf("%s/work", data_dir);
    mkdir(cache_root, 0700);
    mkdir(results_dir, 0700);
    mkdir(work_dir, 0700);
    size_t n_buckets = lh_buckets_count(buckets);
    char **user_dirs = lh_calloc(5 * n_buckets + 3, sizeof *user_dirs);
    char **internal_dirs = lh_calloc(5 * n_buckets + 3, sizeof *internal_dirs);
    size_t n_user = 0, n_internal = 0;
    for (size_t i = 0; i < n_buckets; i++) {
        /* local buckets: their datasets, their events journal (the _events view) and the
         * HNSW trial journal (_hnsw_trials); the internal engine also reads vector
         * indexes' embeddings and eval sets (users' SQL never sees them: an index may be
         * over a dataset the caller cannot read) */
        static const char *const readable[] = {"datasets", "_journal/events", "_hnsw/trials",
                                               "_vectors", "_hnsw/evals"};
        lh_store *store = lh_buckets_get(buckets, lh_buckets_name_at(buckets, i), NULL);
        for (size_t k = 0; store && k < 5; k++) {
            char *dir = lh_store_fs_path(store, readable[k]);
            if (dir && k < 3)
                user_dirs[n_user++] = lh_sprintf("%s/", dir);
            if (dir)
                internal_dirs[n_internal++] = lh_sprintf("%s/", dir);
            free(dir);
        }
    }
    user_dirs[n_user++] = lh_sprintf("%s/", objects_dir);
    internal_dirs[n_internal++] = lh_sprintf("%s/", objects_dir);
    user_dirs[n_user++] = lh_sprintf("%s/", results_dir);
    internal_dirs[n_internal++] = lh_sprintf("%s/", work_dir);
    lh_engine_opts eopts = {.threads = (int)lh_config_int(cfg, "engine.threads"),
                            .memory_limit = lh_config_str(cfg, "engine.memory_limit"),
                            .allowed_dirs = (const char *const *)user_dirs};
    rc = lh_engine_open(&eopts, &engine, &err);
    if (rc == 0) {
        eopts.allowed_dirs = (const char *const *)internal_dirs;
        rc = lh_engine_open(&eopts, &internal_engine, &err);
    }
    for (size_t i = 0; i < n_user; i++)
        free(user_dirs[i]);
    for (size_t i = 0; i < n_internal; i++)
        free(internal_dirs[i]);
    free(user_dirs);
    free(internal_dirs);
    if (rc != 0 || lh_engine_ping(engine, &err) != 0) {
        fprintf(stderr, "lakehouse: %s%s%s\n", err.message, err.detail[0] ? ": " : "", err.detail);
        free(objects_dir);
        free(cache_root);
        goto out;
    }
    cache = lh_cache_new(objects_dir, lh_config_int(cfg, "engine.cache_max_bytes"));
    free(objects_dir);
    free(cache_root);
    lh_catalog_deps cdeps = {.retain_versions_s = lh_config_int(cfg, "catalog.retain_versions_s"),
                             .buckets = buckets, .engine = internal_engine, .views = engine,
                             .cache = cache, .work_dir = work_dir};
    if (lh_catalog_open(&cdeps, &catalog, &err) != 0) {
        fprintf(stderr, "lakehouse: %s\n", err.message);
        goto out;
    }
    lh_vectors_deps vdeps = {.config = cfg, .buckets = buckets, .catalog = catalog, .cache = cache,
                             .engine = internal_engine, .views = engine, .work_dir = work_dir};
    if (lh_vectors_open(&vdeps, &vectors, &err) != 0) {
        fprintf(stderr, "lakehouse: %s%s%s\n", err.message, err.detail[0] ? ": " : "", err.detail);
        goto out;
    }
    if (lh_jobs_start((int)lh_config_int(cfg, "jobs.workers"),
                      (int)lh_config_int(cfg, "jobs.max_queued"),
                      (int)lh_config_int(cfg, "jobs.keep_finished"), &jobs, &err) != 0) {
        fprintf(stderr, "lakehouse: %s\n", err.message);
        goto out;
    }
    lh_server_deps deps = {.config = cfg,        .engine = engine,   .internal_engine = internal_engine,
                           .jobs = jobs,        .buckets = buckets, .catalog = catalog,
                           .cache = cache,      .work_dir = work_dir, .results_dir = results_dir,
                           .vectors = vectors};
    if (lh_server_start(&deps, &srv, &err) != 0) {
        fprintf(stderr, "lakehouse: %s%s%s\n", err.message, err.detail[0] ? ": " : "", err.detail);
        goto out;
    }
    const char *host = lh_config_str(cfg, "server.host");
    json_t *fields = json_pack("{s:s, s:i, s:s, s:s, s:s}", "host", host, "port",
                               lh_server_port(srv), "version", LH_VERSION, "duckdb_version",
                               lh_engine_version(), "config", config_path ? config_path : "(defaults)");
    lh_log(LH_LOG_INFO, NULL, fields, "listening on http://%s%s%s:%d", strchr(host, ':') ? "[" : "",
           host, strchr(host, ':') ? "]" : "", lh_server_port(srv));
    json_decref(fields);

    int sig = 0;
    sigwait(&signals, &sig);
    int64_t grace_ms = lh_config_int(cfg, "server.shutdown_grace_ms");
    fields = json_pack("{s:s, s:I}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", "grace_ms",
                       (json_int_t)grace_ms);
    lh_log(LH_LOG_INFO, NULL, fields, "shutting down: finishing in-flight requests");
    json_decref(fields);
    int unfinished = lh_server_shutdown(srv, grace_ms);
    srv = NULL;
    if (unfinished > 0)
        lh_log(LH_LOG_WARN, NULL, NULL, "%d requests were still running when the grace period ended",
               unfinished);
    status = 0;
out:
    lh_server_shutdown(srv, 0);
    lh_jobs_stop(jobs); /* before the registry: a build job refers to it */
    lh_vectors_close(vectors);
    lh_catalog_close(catalog);
    lh_cache_free(cache);
    free(work_dir);
    lh_buckets_close(buckets); /* flushes the error journal */
    lh_engine_close(engine);
    lh_engine_close(internal_engine);
    free(results_dir);
    if (status == 0)
        lh_log(LH_LOG_INFO, NULL, NULL, "stopped");
    lh_config_free(cfg);
    curl_global_cleanup();
    return status;
}
