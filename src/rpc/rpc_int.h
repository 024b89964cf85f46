/*
 * rpc_int.h — inside src/rpc: a call as the services see it, and the services' tables.
 */
#ifndef LH_RPC_INT_H
#define LH_RPC_INT_H

#include "rpc/rpc.h"

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/struct.pb-c.h"

/* One unary call, decoded: who made it, by when it must be answered. */
typedef struct lh_gcall {
    const lh_grpc_deps *deps;
    const lh_principal *principal; /* NULL for the public methods (health, reflection) */
    const lh_config *config;       /* of the principal set the call holds */
    int64_t deadline_mono_us;      /* INT64_MAX when the client set none */
    int64_t retry_after_s;         /* a 429's google.rpc.RetryInfo (0: one second) */
    const void *server;            /* the lh_grpc serving it (lh_grpc__stopping) */
    const char *method;
    /* whether the client cancelled or went away: for work that can stop early (a tool's
     * query); fn NULL for a unary call on a completion-queue thread (not offloaded) */
    lh_gone_check gone;
} lh_gcall;

/* A unary method: unpack `in`, do the work, and pack the answer into *out (malloc'd,
 * *out_len bytes) — or fill err (an lh_err as the HTTP API would answer). */
typedef int (*lh_gunary)(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out,
                         size_t *out_len, lh_err *err);

/* A server-streaming method's writer: lh_grpc__send each message in turn. */
typedef struct lh_gstream lh_gstream;
/* Send one message, waiting until the transport took it: 499 client_gone when the client
 * cancelled or went away (stop then: nothing more reaches it). */
int lh_grpc__send(lh_gstream *s, const ProtobufCMessage *m, lh_err *err);
/* Whether the client cancelled the call or went away (an lh_gone_check, ctx the stream):
 * the engine's watchdog asks it to stop a query nobody waits for. */
bool lh_grpc__gone(void *stream);
/* A server-streaming method: unpack `in`, then send the answer's messages; an error
 * returned ends the stream with that status (after whatever was sent). */
typedef int (*lh_gserver_stream)(lh_gcall *c, const uint8_t *in, size_t in_len, lh_gstream *s,
                                 lh_err *err);

/* A client-streaming method: lh_grpc__recv each message in turn, then lh_grpc__send the
 * one answer; an error returned ends the call with that status. */
typedef int (*lh_gclient_stream)(lh_gcall *c, lh_gstream *s, lh_err *err);
/* The next message of a client stream (malloc'd in *msg, *len bytes), or *msg NULL when
 * the client has half-closed. 499 client_gone when it cancelled or went away, 408 when it
 * sent nothing for a minute. */
int lh_grpc__recv(lh_gstream *s, uint8_t **msg, size_t *len, lh_err *err);

typedef struct lh_gmethod {
    const char *path; /* "/lakehouse.v1.Catalog/ListDatasets" */
    unsigned allow;   /* LH_ALLOW_*: roles that may call it (LH_ALLOW_PUBLIC: no token) */
    lh_gunary unary;  /* one of these three; none: the reflection stream */
    lh_gserver_stream server_stream;
    lh_gclient_stream client_stream;
    unsigned flags; /* LH_G* */
    /* when set, an offloaded call whose request it finds quick (it cannot wait) runs on the
     * completion-queue thread after all, saving the hand-off: the hot path stays cheap. c
     * has the caller (principal, config; no deadline or gone check yet); not called for a
     * caller refused (answered at once) */
    bool (*quick)(const lh_gcall *c, const uint8_t *in, size_t in_len);
} lh_gmethod;

enum {
    /* a unary method that may wait (for query slots, SQL, storage): run on a kept thread,
     * not on a completion-queue thread */
    LH_GOFFLOAD = 1,
    /* and its close watched, so gc->gone answers (a completion more per call: for the
     * methods that ask it) */
    LH_GWATCH = 2,
    /* its request holds a secret: gRPC's buffers of it are wiped before they are freed */
    LH_GSECRET = 4,
};

extern const lh_gmethod lh_grpc__catalog[];
extern const size_t lh_grpc__n_catalog;
extern const lh_gmethod lh_grpc__vectors[];
extern const size_t lh_grpc__n_vectors;
extern const lh_gmethod lh_grpc__health[];
extern const size_t lh_grpc__n_health;
extern const lh_gmethod lh_grpc__query[];
extern const size_t lh_grpc__n_query;
extern const lh_gmethod lh_grpc__tools[];
extern const size_t lh_grpc__n_tools;
extern const lh_gmethod lh_grpc__journal[];
extern const size_t lh_grpc__n_journal;
extern const lh_gmethod lh_grpc__rows[];
extern const size_t lh_grpc__n_rows;
extern const lh_gmethod lh_grpc__jobs[];
extern const size_t lh_grpc__n_jobs;
extern const lh_gmethod lh_grpc__ingest[];
extern const size_t lh_grpc__n_ingest;

/* Stream job id's record (lakehouse.v1.JobUpdate) now and whenever its state or progress
 * changes, until it ends. The job goes on if the client stops watching (499). */
int lh_grpc__watch_job(lh_gcall *c, const char *id, lh_gstream *s, lh_err *err);

/* The time limit (ms) of work the call starts: limit_ms (0: none), shortened to what is
 * left of the call's deadline (at least 1 ms). */
int64_t lh_grpc__time_limit(const lh_gcall *c, int64_t limit_ms);
/* Whether the server serving c is shutting down. */
bool lh_grpc__stopping(const lh_gcall *c);

/* Pack any message into a new buffer. */
int lh_grpc__pack(const ProtobufCMessage *m, uint8_t **out, size_t *len);
/* 400 invalid_argument: the request is not a valid message of its type. */
int lh_grpc__bad_message(lh_err *err, const char *type);
/* A JSON value as a google.protobuf.Value / an object as a Struct (malloc'd all through,
 * freed with protobuf_c_message_free_unpacked). */
Google__Protobuf__Struct *lh_grpc__struct(const json_t *obj);
/* A request's Struct as a JSON object (new; NULL st: {}); whole numbers become integers. */
json_t *lh_grpc__json_of_struct(const Google__Protobuf__Struct *st);
/* strdup that never returns NULL, "" for NULL */
char *lh_grpc__str(const char *s);

/* The reflection service (reflection.c): the response to one request, packed. */
int lh_grpc__reflect(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);

#endif
