/*
 * http.h — the gateway: libmicrohttpd server, router, auth, metrics and the handlers.
 * Handlers are thin: parse → call a module → render.
 */
#ifndef LH_HTTP_H
#define LH_HTTP_H

#include "core/core.h"
#include "engine/engine.h"
#include "catalog/catalog.h"
#include "storage/storage.h"
#include "vector/vector.h"
#include "agent/agent.h"
#include "agent/audit.h"
#include "workspace/workspace.h"
#include "ingest/ingest.h"

typedef struct lh_server lh_server;

/* What the server serves; all borrowed and must outlive the server. */
typedef struct lh_server_deps {
    const lh_config *config;
    lh_engine *engine;          /* users' SQL */
    lh_engine *internal_engine; /* ingest conversions (reads work_dir) */
    lh_jobs *jobs;
    lh_buckets *buckets;
    lh_catalog *catalog;
    lh_cache *cache;
    lh_vectors *vectors;
    lh_tools *tools;
    lh_audit *audit; /* agent tool call records (GET /audit); may be NULL */
    lh_workspaces *workspaces;
    lh_ingest_secrets *secrets; /* secret_ref passwords for PostgreSQL ingest; may be NULL */
    const char *work_dir;       /* uploads in flight: readable by internal_engine only */
    const char *results_dir;    /* Parquet query results: written by engine */
} lh_server_deps;

/* Bind [server] host:port, set up auth (creating the first admin token if no principal
 * is configured) and start serving on a thread pool. LH_EEXIST when the address is in
 * use, LH_EIO for other socket errors, with a one-line message. Returns new. */
int lh_server_start(const lh_server_deps *deps, lh_server **out, lh_err *err);
/* Re-read the configuration file the server started with and apply what can change
 * while serving (principals, profiles, per-request and per-principal limits) for requests
 * that start from now on; requests in flight finish on the set they started with. A file
 * that does not load is refused (400, the message says file:line:col) and nothing changes.
 * *report (new): {"config", "changed", "applied", "restart_required", "principals":
 * {"added", "removed", "changed"}, "profiles", "warnings"}. 409 no_config_file when the
 * server started without one. Thread-safe; one reload runs at a time. */
int lh_server_reload(lh_server *srv, json_t **report, lh_err *err);
/* Whether the principal set in force names a principal `name`. Thread-safe. */
bool lh_server_principal_known(lh_server *srv, const char *name);
/* A reference to the principal set in force (lh_auth_release it): for another door that
 * serves the same principals, so a reload reaches it too. Thread-safe. */
lh_auth *lh_server_auth_current(lh_server *srv);
/* The port actually bound (useful with port 0). */
int lh_server_port(const lh_server *srv);
/* Stop accepting, let in-flight requests finish for up to grace_ms, then stop and free.
 * Accepts NULL. Returns the number of requests still unfinished when it gave up. */
int lh_server_shutdown(lh_server *srv, int64_t grace_ms);

#endif
