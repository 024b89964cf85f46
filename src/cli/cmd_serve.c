/*
 * cmd_serve.c — `lakehouse serve`: load configuration, open the engine, start the job
 * pool and the HTTP server, then wait for SIGTERM/SIGINT and shut down gracefully (SIGHUP
 * re-reads the configuration: lh_server_reload).
 *
 * Signals are blocked before any thread starts, so every thread inherits the mask and
 * only the main thread receives them, through sigwait(). Which folders each query engine
 * may read is the storage module's policy (lh_buckets_local_dirs), not this door's.
 */
#include "cli/cli.h"
#include "core/core.h"
#include "engine/engine.h"
#include "catalog/catalog.h"
#include "http/http.h"
#include "rpc/rpc.h"
#include "agent/audit.h"
#include "storage/storage.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

/* Everything a running server holds, released by serve_close in reverse order. */
typedef struct serve {
    const char *config_path;
    lh_config *cfg;
    sigset_t signals; /* blocked in every thread; the main thread waits for them */
    lh_buckets *buckets;
    lh_local_dirs dirs;
    lh_engine *engine;          /* user SQL */
    lh_engine *internal_engine; /* lakehouse's own statements */
    lh_cache *cache;
    lh_catalog *catalog;
    lh_vectors *vectors;
    lh_tools *tools;
    lh_audit *audit;
    lh_auth principals; /* who may be given a workspace (the server keeps its own copy) */
    bool principals_ready;
    lh_workspaces *workspaces;
    lh_jobs *jobs;
    lh_ingest_secrets *secrets;    /* secret_ref passwords, shared by the HTTP and gRPC doors */
    _Atomic(lh_server *) srv_live; /* srv once it serves: workspaces ask it who is known */
    lh_server *srv;
    lh_grpc *grpc;        /* NULL when [grpc] port is 0 */
    uint8_t mask_key[32]; /* data_dir/mask.key: the key of "hash" column masks */
} serve;

static void
report(const lh_err *err)
{
    fprintf(stderr, "lakehouse: %s%s%s\n", err->message, err->detail[0] ? ": " : "", err->detail);
    if (err->hint[0])
        fprintf(stderr, "lakehouse: hint: %s\n", err->hint);
}

/* Find and load the configuration. 0, or the exit status (2) after saying why. */
static int
load_config(serve *s, int argc, char **argv)
{
    int status = parse_args(argc, argv, &s->config_path);
    if (status != 0)
        return status;
    if (s->config_path == NULL)
        s->config_path = getenv("LAKEHOUSE_CONFIG");
    struct stat st;
    if (s->config_path == NULL && stat("lakehouse.toml", &st) == 0)
        s->config_path = "lakehouse.toml";
    lh_err err;
    if (lh_config_load(s->config_path, NULL, &s->cfg, &err) != 0) {
        fprintf(stderr, "lakehouse: %s\n", err.message);
        return 2;
    }
    lh_log_set_level((lh_log_level)lh_log_level_parse(lh_config_str(s->cfg, "log.level")));
    size_t n_warnings;
    const char *const *warnings = lh_config_warnings(s->cfg, &n_warnings);
    for (size_t i = 0; i < n_warnings; i++)
        lh_log(LH_LOG_WARN, NULL, NULL, "config: %s", warnings[i]);
    return 0;
}

/* Process-wide set-up, before any thread starts. */
static void
setup_process(serve *s)
{
    /* libcurl's global set-up is not thread-safe, and S3 stores, embedding providers and
     * build jobs all make requests from their own threads */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sigemptyset(&s->signals);
    sigaddset(&s->signals, SIGTERM);
    sigaddset(&s->signals, SIGINT);
    sigaddset(&s->signals, SIGHUP); /* re-read the configuration (lh_server_reload) */
    pthread_sigmask(SIG_BLOCK, &s->signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_open_files();
}

/* Two DuckDB databases, each sandboxed to the folders it needs (the sandbox is per
 * database; lh_buckets_local_dirs says which): one for users' SQL, one for lakehouse's
 * own statements, which also reads what users must never see (uploads in work/, vector
 * indexes). */
static int
open_engines(serve *s, lh_err *err)
{
    const char *data_dir = lh_config_str(s->cfg, "server.data_dir");
    char resolved[PATH_MAX];
    char *user_spill = NULL, *internal_spill = NULL;
    int rc = 0;
    if ((rc = lh_buckets_local_dirs(s->buckets, data_dir, &s->dirs, err)) != 0)
        goto out;
    /* spill under data_dir (it exists now), one folder per engine; never the working
     * directory, which DuckDB would choose */
    if (realpath(data_dir, resolved) == NULL) {
        rc = lh_err_set(err, LH_EIO, 500, "data_dir_unusable", "cannot resolve data_dir %s",
                        data_dir);
        lh_err_detail(err, "%s", strerror(errno));
        goto out;
    }
    /* the key of "hash" column masks: defined in the users' engine as lh_mask_hash and
     * given to the catalog for masks applied outside SQL */
    char *key_path = lh_sprintf("%s/mask.key", resolved);
    rc = lh_key_file(key_path, s->mask_key, err);
    free(key_path);
    if (rc != 0)
        goto out;
    user_spill = lh_sprintf("%s/spill/user", resolved);
    internal_spill = lh_sprintf("%s/spill/internal", resolved);
    lh_engine_opts eopts = {.threads = (int)lh_config_int(s->cfg, "engine.threads"),
                            .memory_limit = lh_config_str(s->cfg, "engine.memory_limit"),
                            .allowed_dirs = (const char *const *)s->dirs.user_readable,
                            .user_sql = true,
                            .spill_dir = user_spill,
                            .spill_bytes = lh_config_int(s->cfg, "engine.spill_bytes"),
                            .mask_key = s->mask_key};
    /* only user queries wait for a slot: lakehouse's own work on the internal engine is
     * bounded by the job workers */
    eopts.max_queries = (int)lh_config_int(s->cfg, "engine.max_concurrent_queries");
    if (eopts.max_queries == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        eopts.max_queries = cores > 2 ? (int)(2 * cores) : 4;
    }
    eopts.max_queries_per_principal =
        (int)lh_config_int(s->cfg, "engine.max_queries_per_principal");
    eopts.max_queued_per_principal = (int)lh_config_int(s->cfg, "engine.max_queued_per_principal");
    if ((rc = lh_engine_open(&eopts, &s->engine, err)) != 0)
        goto out;
    eopts.max_queries = eopts.max_queries_per_principal = eopts.max_queued_per_principal = 0;
    eopts.allowed_dirs = (const char *const *)s->dirs.internal_readable;
    eopts.user_sql = false;
    eopts.mask_key = NULL;
    eopts.spill_dir = internal_spill;
    if ((rc = lh_engine_open(&eopts, &s->internal_engine, err)) != 0)
        goto out;
    rc = lh_engine_ping(s->engine, err);
out:
    free(user_spill);
    free(internal_spill);
    return rc;
}

/* Tool calls' audit records go to the durable audit trail (the registry takes any
 * function of this shape, so it does not depend on how records are kept). */
static int
audit_append(void *ctx, const json_t *record, lh_err *err)
{
    return lh_audit_append(ctx, record, err);
}

static int
audit_get(void *ctx, const char *call_id, json_t **out, lh_err *err)
{
    return lh_audit_get(ctx, call_id, out, err);
}

/* A workspace's saved tool call: through the registry like any call, as the caller. A
 * saved query may not call a builtin ws_* tool (ws_run_query would run itself). */
static int
ws_run_tool(void *ctx, const lh_principal *p, const char *tool, const json_t *arguments,
            const char *workspace_id, json_t **answer, lh_err *err)
{
    serve *s = ctx;
    if (!s->tools)
        return lh_err_set(err, LH_EUNAVAIL, 503, "starting", "the tool registry is not open yet");
    if (lh_tools_is_builtin(tool)) {
        lh_err_set(err, LH_EINVAL, 400, "not_runnable",
                   "saved query calls '%s', a builtin workspace tool: run it directly", tool);
        lh_err_hint(err, "save a query that calls a sql or search tool, or SQL");
        return LH_EINVAL;
    }
    json_t *empty = json_object();
    lh_tool_call c = {.principal = p,
                      .name = tool,
                      .arguments = arguments ? arguments : empty,
                      .workspace_id = workspace_id,
                      .via = "workspace"};
    int rc = lh_tools_call(s->tools, &c, answer, NULL, err);
    json_decref(empty);
    return rc;
}

/* The modules above the engines, bottom up, and the HTTP server last. */
/* Workspaces check handoff targets and members against the principals in force: the
 * server's set once it serves (a reload changes it), the start's before. */
static bool
principal_known(void *ctx, const char *name)
{
    serve *s = ctx;
    lh_server *srv = atomic_load(&s->srv_live);
    return srv ? lh_server_principal_known(srv, name) : lh_auth_find(&s->principals, name) != NULL;
}

/* The gRPC door serves the HTTP server's principal set, which reloads swap. */
static lh_auth *
grpc_auth_current(void *srv)
{
    return lh_server_auth_current(srv);
}

static int
open_modules(serve *s, lh_err *err)
{
    lh_config *cfg = s->cfg;
    int rc = 0;
    s->cache = lh_cache_new(s->dirs.objects_dir, lh_config_int(cfg, "engine.cache_max_bytes"));
    lh_catalog_deps cdeps = {.retain_versions_s = lh_config_int(cfg, "catalog.retain_versions_s"),
                             .max_diff_rows = lh_config_int(cfg, "catalog.max_diff_rows"),
                             .buckets = s->buckets,
                             .engine = s->internal_engine,
                             .views = s->engine,
                             .cache = s->cache,
                             .work_dir = s->dirs.work_dir,
                             .load_threads = (int)lh_config_int(cfg, "catalog.load_threads"),
                             .checkpoint = lh_config_bool(cfg, "catalog.checkpoint"),
                             .checkpoint_after_commits =
                                 lh_config_int(cfg, "catalog.checkpoint_after_commits"),
                             .relist_interval_ms = lh_config_int(cfg, "catalog.relist_interval_ms"),
                             .require = lh_config_list(cfg, "catalog.require"),
                             .mask_key = s->mask_key};
    if ((rc = lh_catalog_open(&cdeps, &s->catalog, err)) != 0)
        goto out;
    /* after the catalog (the users' engine holds its datasets), before anything that
     * could call a tool: records a crash left locally are shipped first */
    lh_audit_deps adeps = {.buckets = s->buckets,
                           .cache = s->cache,
                           .views = s->engine,
                           .internal = s->internal_engine,
                           .dir = s->dirs.audit_dir,
                           .ship_ms = lh_config_int(cfg, "audit.ship_ms"),
                           .ship_records = (int)lh_config_int(cfg, "audit.ship_records")};
    if ((rc = lh_audit_open(&adeps, &s->audit, err)) != 0)
        goto out;
    /* what each principal's SQL sees of the audit trail (visible.c) */
    lh_catalog_set_guard(s->catalog, LH_AUDIT_VIEW, lh_audit_guard, NULL);
    lh_vectors_deps vdeps = {.config = cfg,
                             .buckets = s->buckets,
                             .catalog = s->catalog,
                             .cache = s->cache,
                             .engine = s->internal_engine,
                             .views = s->engine,
                             .work_dir = s->dirs.work_dir};
    if ((rc = lh_vectors_open(&vdeps, &s->vectors, err)) != 0)
        goto out;
    lh_catalog_set_guard(s->catalog, LH_VECTORS_TRIALS_VIEW, lh_vectors_trials_guard, s->vectors);
    if ((rc = lh_auth_init(&s->principals, cfg, err)) != 0)
        goto out;
    s->principals_ready = true;
    /* workspaces before tools (the builtin ws_* tools call them); a saved tool call in a
     * workspace reaches the registry through ws_run_tool once it is open */
    lh_workspace_deps wdeps = {.config = cfg,
                               .buckets = s->buckets,
                               .catalog = s->catalog,
                               .engine = s->internal_engine,
                               .views = s->engine,
                               .auth = &s->principals,
                               .principal_known = principal_known,
                               .principal_ctx = s,
                               .audit = lh_audit_activity,
                               .audit_ctx = s->audit,
                               .run_tool = ws_run_tool,
                               .tool_ctx = s,
                               .start_timer = true};
    if ((rc = lh_workspace_open(&wdeps, &s->workspaces, err)) != 0)
        goto out;
    lh_tools_deps tdeps = {.config = cfg,
                           .buckets = s->buckets,
                           .catalog = s->catalog,
                           .engine = s->engine,
                           .internal_engine = s->internal_engine,
                           .vectors = s->vectors,
                           .workspaces = s->workspaces,
                           .audit = audit_append,
                           .audit_get = audit_get,
                           .audit_ctx = s->audit};
    if ((rc = lh_tools_open(&tdeps, &s->tools, err)) != 0)
        goto out;
    if ((rc = lh_jobs_start((int)lh_config_int(cfg, "jobs.workers"),
                            (int)lh_config_int(cfg, "jobs.max_queued"),
                            (int)lh_config_int(cfg, "jobs.keep_finished"), &s->jobs, err)) != 0)
        goto out;
    s->secrets = lh_ingest_secrets_new(lh_config_str(cfg, "secrets.file"));
    lh_server_deps deps = {.config = cfg,
                           .engine = s->engine,
                           .internal_engine = s->internal_engine,
                           .jobs = s->jobs,
                           .buckets = s->buckets,
                           .catalog = s->catalog,
                           .cache = s->cache,
                           .work_dir = s->dirs.work_dir,
                           .results_dir = s->dirs.results_dir,
                           .vectors = s->vectors,
                           .tools = s->tools,
                           .audit = s->audit,
                           .workspaces = s->workspaces,
                           .secrets = s->secrets};
    rc = lh_server_start(&deps, &s->srv, err);
    if (rc == 0)
        atomic_store(&s->srv_live, s->srv);
    if (rc == 0) {
        lh_grpc_deps gdeps = {.config = cfg,
                              .catalog = s->catalog,
                              .vectors = s->vectors,
                              .engine = s->engine,
                              .internal_engine = s->internal_engine,
                              .buckets = s->buckets,
                              .jobs = s->jobs,
                              .workspaces = s->workspaces,
                              .tools = s->tools,
                              .secrets = s->secrets,
                              .work_dir = s->dirs.work_dir,
                              .auth_current = grpc_auth_current,
                              .auth_ctx = s->srv};
        rc = lh_grpc_start(&gdeps, &s->grpc, err);
    }
out:
    return rc;
}

/* SIGHUP: what POST /admin/reload does, logged (a bad file is logged, and changes nothing). */
static void
reload_on_signal(serve *s)
{
    json_t *report = NULL;
    lh_err err;
    if (lh_server_reload(s->srv, &report, &err) != 0) {
        lh_log_err(LH_LOG_ERROR, NULL, &err);
        lh_log(LH_LOG_WARN, NULL, NULL, "SIGHUP: configuration not reloaded: %s", err.message);
        return;
    }
    json_object_set_new(report, "signal", json_string("SIGHUP"));
    lh_log(LH_LOG_INFO, NULL, report, "configuration reloaded");
    json_decref(report);
}

/* Log where the server listens, wait for SIGTERM or SIGINT (SIGHUP reloads the
 * configuration), then let in-flight requests finish within the grace period. */
static void
run_until_signal(serve *s)
{
    const char *host = lh_config_str(s->cfg, "server.host");
    int port = lh_server_port(s->srv);
    json_t *fields = json_pack("{s:s, s:i, s:s, s:s, s:s}", "host", host, "port", port, "version",
                               LH_VERSION, "duckdb_version", lh_engine_version(), "config",
                               s->config_path ? s->config_path : "(defaults)");
    lh_log(LH_LOG_INFO, NULL, fields, "listening on http://%s%s%s:%d", strchr(host, ':') ? "[" : "",
           host, strchr(host, ':') ? "]" : "", port);
    json_decref(fields);
    if (s->grpc) {
        fields = json_pack("{s:s, s:i}", "host", host, "grpc_port", lh_grpc_port(s->grpc));
        lh_log(LH_LOG_INFO, NULL, fields, "gRPC listening on %s%s%s:%d",
               strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
               lh_grpc_port(s->grpc));
        json_decref(fields);
    }

    int sig = 0;
    while (sigwait(&s->signals, &sig) == 0 && sig == SIGHUP)
        reload_on_signal(s);
    int64_t grace_ms = lh_config_int(s->cfg, "server.shutdown_grace_ms");
    fields = json_pack("{s:s, s:I}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", "grace_ms",
                       (json_int_t)grace_ms);
    lh_log(LH_LOG_INFO, NULL, fields, "shutting down: finishing in-flight requests");
    json_decref(fields);
    atomic_store(&s->srv_live, NULL);    /* requests still running ask the start's set */
    lh_grpc_shutdown(s->grpc, grace_ms); /* before the HTTP server: it lends the principals */
    s->grpc = NULL;
    int unfinished = lh_server_shutdown(s->srv, grace_ms);
    s->srv = NULL;
    if (unfinished > 0)
        lh_log(LH_LOG_WARN, NULL, NULL,
               "%d requests were still running when the grace period ended", unfinished);
}

static void
serve_close(serve *s, int status)
{
    atomic_store(&s->srv_live, NULL);
    lh_grpc_shutdown(s->grpc, 0);
    lh_server_shutdown(s->srv, 0);
    lh_jobs_stop(s->jobs); /* before the registry: a build job refers to it */
    lh_ingest_secrets_free(s->secrets);
    lh_workspace_close(s->workspaces);
    if (s->principals_ready)
        lh_auth_free(&s->principals);
    lh_tools_close(s->tools);
    if (s->catalog)
        lh_catalog_set_guard(s->catalog, LH_VECTORS_TRIALS_VIEW, NULL, NULL);
    lh_vectors_close(s->vectors);
    lh_audit_close(s->audit); /* ships what is pending, so before the buckets */
    lh_catalog_close(s->catalog);
    lh_cache_free(s->cache);
    lh_buckets_close(s->buckets); /* flushes the error journal */
    lh_engine_close(s->engine);
    lh_engine_close(s->internal_engine);
    lh_local_dirs_free(&s->dirs);
    if (status == 0)
        lh_log(LH_LOG_INFO, NULL, NULL, "stopped");
    lh_config_free(s->cfg);
    curl_global_cleanup();
}

int
lh_cmd_serve(int argc, char **argv)
{
    serve s = {0};
    int status = load_config(&s, argc, argv);
    if (status != 0)
        return status;
    setup_process(&s);
    lh_err err;
    int rc = lh_buckets_open(s.cfg, &s.buckets, &err);
    if (rc != 0) {
        report(&err);
        /* a configuration problem (bad bucket entry, refused secrets file) is exit 2 */
        status = rc == LH_EINVAL || rc == LH_EPERM ? 2 : 1;
        goto out;
    }
    if ((rc = open_engines(&s, &err)) != 0 || (rc = open_modules(&s, &err)) != 0) {
        report(&err);
        status = 1;
        goto out;
    }
    run_until_signal(&s);
out:
    serve_close(&s, status);
    return status;
}
