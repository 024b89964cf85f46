/*
 * rpc.h — the gRPC door on [grpc] port (3101; 0 turns it off): the same process, the
 * same principals (a bearer token in the `authorization` metadata), roles, limits and
 * module functions as the HTTP API, with the API's errors mapped to gRPC status codes and
 * their code/detail/hint carried in the status details (google.rpc.ErrorInfo). Serves
 * lakehouse.v1.Catalog, Vectors, Query, Tools, Journal and Rows (proto/lakehouse/v1/), the standard
 * grpc.health.v1.Health and grpc.reflection.v1alpha.ServerReflection. Built on the gRPC C core
 * (completion queue, registered methods) and protobuf-c.
 */
#ifndef LH_RPC_H
#define LH_RPC_H

#include "agent/agent.h"
#include "auth/auth.h"
#include "catalog/catalog.h"
#include "core/core.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "storage/storage.h"
#include "vector/vector.h"
#include "workspace/workspace.h"

typedef struct lh_grpc lh_grpc;

/* All borrowed; must outlive the server. */
typedef struct lh_grpc_deps {
    const lh_config *config; /* [server] host, [grpc] port/threads/max_message_bytes */
    lh_catalog *catalog;
    lh_vectors *vectors;
    lh_engine *engine;          /* users' SQL */
    lh_engine *internal_engine; /* row changes' conversions */
    lh_buckets *buckets;
    lh_jobs *jobs;
    lh_workspaces *workspaces; /* may be NULL */
    lh_tools *tools;
    lh_ingest_secrets *secrets; /* secret_ref passwords (may be NULL) */
    const char *work_dir; /* uploads in flight (Ingest/UploadFile): internal_engine reads it */
    /* a reference to the principal set in force (the HTTP server's, which reloads swap);
     * each call holds one for its whole life and drops it with lh_auth_release */
    lh_auth *(*auth_current)(void *ctx);
    void *auth_ctx;
} lh_grpc_deps;

/* Bind [server] host:[grpc] port and start serving. *out is NULL (and 0 returned) when
 * the port is 0. LH_EEXIST when the address cannot be bound. Returns new. */
int lh_grpc_start(const lh_grpc_deps *deps, lh_grpc **out, lh_err *err);
/* The port bound. */
int lh_grpc_port(const lh_grpc *g);
/* Stop taking calls, let those in flight finish for up to grace_ms, cancel the rest,
 * free. Accepts NULL. */
void lh_grpc_shutdown(lh_grpc *g, int64_t grace_ms);

#endif
