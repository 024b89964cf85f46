/*
 * http_int.h — internals shared by the files of src/http: requests, responses, the
 * router, principals and metrics. Not used outside this folder.
 */
#ifndef LH_HTTP_INT_H
#define LH_HTTP_INT_H

#include "http/http.h"
#include "catalog/catalog.h"
#include "ingest/ingest.h"
#include "mcp/mcp.h"
#include "storage/storage.h"
#include "vector/vector.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <microhttpd.h>

#include "auth/auth.h"
#include "agent/profiles.h"

/* ---- requests and responses ---------------------------------------------------------- */
#define LH_MAX_PARAMS 8
#define LH_REQUEST_ID_MAX 64

typedef struct lh_req lh_req;
typedef struct lh_resp lh_resp;
typedef int (*lh_handler)(lh_req *req, lh_resp *resp);

enum {
    LH_ROUTE_JSON_BODY = 1u << 0,   /* the body, if any, must be JSON (else 415) */
    LH_ROUTE_STREAM_BODY = 1u << 1, /* the body goes to an unlinked temp file (body_fd), up to
                                       [storage] max_object_bytes */
    LH_ROUTE_BODY_FILE = 1u << 2,   /* like STREAM_BODY, but a named file in the engine's work
                                       dir (body_path), removed after the request unless a
                                       handler takes it (sets body_path to NULL) */
    LH_ROUTE_OFFLOAD = 1u << 3,     /* the handler may wait (for a query slot, a slow query):
                                       it runs on a thread of its own while the connection is
                                       suspended, so MHD's workers keep serving the others */
    LH_ROUTE_BINARY_BODY = 1u << 4, /* with JSON_BODY: application/octet-stream is accepted
                                       too (the handler reads the raw bytes) */
};

typedef struct lh_route {
    const char *method;
    const char *pattern; /* "/jobs/{id}"; a segment "{name}" captures one segment */
    lh_handler handler;
    unsigned allow; /* LH_ALLOW_* */
    unsigned flags;
} lh_route;

typedef struct lh_route_match {
    const lh_route *route;
    int route_index;
    size_t n_params;
    const char *names[LH_MAX_PARAMS]; /* point into the pattern (not NUL-terminated) */
    size_t name_lens[LH_MAX_PARAMS];
    char *values[LH_MAX_PARAMS]; /* arena copies */
} lh_route_match;

/* Find the route for method + path. 0 and *m filled; LH_ENOTFOUND (404) when no
 * pattern matches the path; LH_EPERM with allow_out filled ("GET, DELETE") when the path
 * matches but the method does not (405). HEAD is served by GET routes. */
int lh_http__route(const lh_route *routes, size_t n_routes, const char *method, const char *path,
                   lh_arena *arena, lh_route_match *m, char *allow_out, size_t allow_size);

struct lh_req {
    lh_server *srv;
    lh_arena *arena;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    char request_id[LH_REQUEST_ID_MAX];
    int64_t start_mono_us;
    int64_t deadline_mono_us;
    /* the principal set (and its config) this request started on: one reference, taken
     * when its headers are in, dropped when it completes; a reload swaps the server's set
     * but never this one, so principal and config stay valid for the whole request */
    lh_auth *auth;
    const lh_config *config;
    const lh_principal *principal;                                /* in auth */
    int64_t max_body_bytes, max_object_bytes, request_timeout_us; /* from config */
    lh_route_match match;
    lh_buf body;
    int body_fd;     /* LH_ROUTE_STREAM_BODY: the received bytes, or -1 */
    char *body_path; /* LH_ROUTE_BODY_FILE: where they are (malloc'd) */
    int64_t body_fd_len;
    char *spool; /* body bytes not yet written to body_fd (SPOOL_BYTES, malloc'd) */
    size_t spool_len;
    bool has_body;
    bool responded;   /* a response has been queued */
    bool has_pending; /* refused mid-body: answer `pending` once the body is over */
    lh_err pending;
    uint64_t discarded; /* body bytes dropped after a refusal */
    int status;         /* the status sent, for metrics and the access log */
    bool counted;       /* counted in in-flight */
    bool offloaded;     /* LH_ROUTE_OFFLOAD: its handler runs (or ran) on its own thread */
    struct lh_resp *offload_resp; /* that handler's answer, set before the connection resumes */
    json_t *json;                 /* the parsed body, once lh_req_json has read it */
    float *floats;                /* lh_req_json_floats: the member it read as floats */
    size_t n_floats;
    bool floats_tried;
    struct lh_conn *conn_rec; /* the connection's deadlines (borrowed; may be NULL) */
};

typedef struct lh_header {
    const char *name, *value;
} lh_header;

struct lh_resp {
    int status;
    const char *content_type;
    lh_buf body;
    lh_header headers[12];
    size_t n_headers;
    int fd; /* when >= 0: the body is fd_len bytes of fd from fd_offset (taken) */
    int64_t fd_offset, fd_len;
    int64_t head_len;        /* when >= 0 (and fd < 0): a HEAD answer for a body this long */
    const void *static_body; /* when set (and fd < 0): static_len bytes that outlive the
                                server (the console's files), sent without a copy */
    size_t static_len;
    /* when reader is set: a streamed body of unknown length (MHD content reader) */
    ssize_t (*reader)(void *ctx, uint64_t pos, char *buf, size_t max);
    void (*reader_free)(void *ctx);
    void *reader_ctx;
    lh_err err; /* when status is an error, what was sent (logged) */
};

/* Path parameter by name, query argument, request header: borrowed or NULL. */
const char *lh_req_param(const lh_req *req, const char *name);
const char *lh_req_query(const lh_req *req, const char *name);
const char *lh_req_header(const lh_req *req, const char *name);
/* Whether the body is application/octet-stream (routes with LH_ROUTE_BINARY_BODY). */
bool lh_req_binary(const lh_req *req);
/* Query argument `name` as an integer in [min, max] (default def when absent); 400
 * invalid_parameter naming the argument and its range otherwise. */
int lh_req_query_int(const lh_req *req, const char *name, int64_t def, int64_t min, int64_t max,
                     int64_t *out, lh_err *err);
/* Query argument `cursor` of an offset-paged listing ("o{N}", as its next_cursor gives):
 * *offset is N, or 0 when absent; 400 invalid_parameter otherwise. */
int lh_req_query_offset_cursor(const lh_req *req, int64_t *offset, lh_err *err);
/* Parse the body as a JSON object. 400 invalid_json (with line:column) otherwise.
 * Returns new in *out (a new reference: the request keeps the parse for later calls). An
 * empty body is an error unless allow_empty (then {}). */
int lh_req_json(lh_req *req, bool allow_empty, json_t **out, lh_err *err);
/* lh_req_json for a body whose member `key` may be a long array of numbers (a query
 * vector): that array is read straight into *floats (borrowed from req, *n of them; NULL
 * when the member is absent or not such an array) and left out of *out; anything else is
 * as lh_req_json gives it. */
int lh_req_json_floats(lh_req *req, const char *key, json_t **out, const float **floats, size_t *n,
                       lh_err *err);
/* 400 invalid_parameter "unknown parameter 'x'" (with hint) for the first query argument
 * in neither list (NULL-ended; more may be NULL); 0 when all are known. */
int lh_req_check_query(lh_req *req, const char *const *known, const char *const *more,
                       const char *hint, lh_err *err);

/* Whether the client of req has closed its connection (or reset it): for a handler's
 * lh_gone_check. fd is lh_req_fd's; valid to ask after the request ended (then true, or
 * the answer for whatever reuses the number: a cheap poll either way). */
int lh_req_fd(const lh_req *req);
bool lh_http__fd_closed(int fd);

/* Set a JSON body (takes ownership of j) with the given status. Returns 0. */
int lh_resp_json(lh_resp *resp, int status, json_t *j);
/* Set the standard error body from err. Returns 0. */
int lh_resp_error(lh_resp *resp, const lh_err *err);
/* Plain text / any content type; copies body. */
int lh_resp_text(lh_resp *resp, int status, const char *content_type, const char *text, size_t len);
/* borrowed; a "Cache-Control" set here replaces the default "no-store" */
void lh_resp_header(lh_resp *resp, const char *name, const char *value);
/* Send len bytes of fd from offset; takes ownership of fd (closed after sending). */
void lh_resp_fd(lh_resp *resp, int status, const char *content_type, int fd, int64_t offset,
                int64_t len);

/* ---- metrics --------------------------------------------------------------------------- */
typedef struct lh_metrics lh_metrics;
lh_metrics *lh_http__metrics_new(const lh_route *routes, size_t n_routes);
void lh_http__metrics_free(lh_metrics *m);
/* route_index -1 for requests that matched no route. */
void lh_http__metrics_observe(lh_metrics *m, int route_index, const char *method, int status,
                              double seconds);
void lh_http__metrics_render(lh_metrics *m, lh_buf *out, long in_flight);

/* ---- connections (conns.c) ------------------------------------------------------------------ */
/* The open connections, with a header deadline, a body deadline and room for new ones; see
 * conns.c. Every function is thread-safe. */
typedef struct lh_conns lh_conns;
typedef struct lh_conn lh_conn;
/* Start the sweeper. soft_limit: open connections above which a new one closes the oldest
 * still waiting for its headers. Returns new (free with lh_http__conns_free). */
int lh_http__conns_new(int64_t header_timeout_us, int64_t request_timeout_us, long soft_limit,
                       lh_conns **out, lh_err *err);
/* Stop the sweeper and free; the MHD daemon must be stopped first. Accepts NULL. */
void lh_http__conns_free(lh_conns *conns);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the lh_server). */
void lh_http__conns_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                           enum MHD_ConnectionNotificationCode code);
/* The record of a connection (borrowed, valid until MHD closes it), or NULL. */
lh_conn *lh_http__conn_of(struct MHD_Connection *connection);
/* A request's headers are in; body_deadline_mono_us > 0 when its body must arrive by
 * then. false when the connection is already being closed (answer nothing, drop it). */
bool lh_http__conn_headers_done(lh_conn *c, const char *request_id, int64_t body_deadline_mono_us);
/* The body has fully arrived; false when it came too late (a 408 was sent: drop it). */
bool lh_http__conn_body_done(lh_conn *c);
/* The connection was claimed for closing (its deadline passed). */
bool lh_http__conn_closing(lh_conn *c);
/* The connection opened with no room left: its request should get a 503. */
bool lh_http__conn_overflow(const lh_conn *c);
/* The request ended; the connection waits for the next one. true when a 408 was sent. */
bool lh_http__conn_request_done(lh_conn *c);
/* Open connections; connections closed for being slow or to make room; bodies timed out. */
void lh_http__conns_stats(lh_conns *conns, long *open, int64_t *closed_slow, int64_t *timed_out);

/* ---- the server -------------------------------------------------------------------------- */
struct lh_server {
    const lh_config *config;
    lh_engine *engine;          /* users' SQL (the dataset views) */
    lh_engine *internal_engine; /* ingest */
    lh_jobs *jobs;
    lh_buckets *buckets;
    lh_catalog *catalog;
    lh_cache *cache;
    lh_vectors *vectors;
    lh_tools *tools;
    lh_audit *audit; /* agent tool call records, or NULL */
    lh_workspaces *workspaces;
    lh_ingest_secrets *secrets; /* secret_ref passwords for PostgreSQL ingest (borrowed) */
    lh_mcp *mcp;                /* the MCP server behind /mcp */
    char *work_dir;             /* where LH_ROUTE_BODY_FILE bodies go (internal engine only) */
    char *results_dir;          /* Parquet query results on their way out */
    char *tmp_dir;              /* <data_dir>/tmp: request bodies and downloads in flight */
    int64_t max_object_bytes;
    struct MHD_Daemon *daemon;
    int listen_fd;
    int port;
    /* the current principal set: swapped whole by lh_server_reload under auth_lock, which
     * a request holds only to take its reference (lh_http__auth_current) */
    lh_auth *auth;
    pthread_mutex_t auth_lock;
    pthread_mutex_t reload_lock; /* one reload at a time */
    lh_metrics *metrics;
    lh_conns *conns;
    const lh_route *routes;
    size_t n_routes;
    int64_t started_us;
    atomic_bool access_log; /* [log] access; a reload may change it */
    atomic_long in_flight;
    atomic_bool stopping;
    atomic_long offloaded; /* LH_ROUTE_OFFLOAD handlers running on their own threads */
    /* the offload threads kept for reuse (server.c): requests handed to idle ones */
    lh_kept *offload;               /* the threads of LH_ROUTE_OFFLOAD handlers */
    atomic_llong engine_ok_mono_us; /* last successful engine check, for /health */
};

/* A new reference to the server's current principal set (lh_auth_release it). */
lh_auth *lh_http__auth_current(lh_server *srv);

/* Handlers, by area. */
int lh_h_reload(lh_req *req, lh_resp *resp);
bool lh_h_vindex_search_may_wait(lh_req *req);
int lh_h_profiles(lh_req *req, lh_resp *resp);
int lh_h_health(lh_req *req, lh_resp *resp);
int lh_h_whoami(lh_req *req, lh_resp *resp);
int lh_h_metrics(lh_req *req, lh_resp *resp);
int lh_h_jobs_list(lh_req *req, lh_resp *resp);
int lh_h_jobs_get(lh_req *req, lh_resp *resp);
int lh_h_jobs_cancel(lh_req *req, lh_resp *resp);
int lh_h_jobs_submit(lh_req *req, lh_resp *resp);
int lh_h_query(lh_req *req, lh_resp *resp);
int lh_h_datasets_list(lh_req *req, lh_resp *resp);
int lh_h_dataset_get(lh_req *req, lh_resp *resp);
int lh_h_dataset_versions(lh_req *req, lh_resp *resp);
int lh_h_dataset_patch(lh_req *req, lh_resp *resp);
int lh_h_dataset_delete(lh_req *req, lh_resp *resp);
int lh_h_dataset_resync(lh_req *req, lh_resp *resp);
int lh_h_resync_missing(lh_req *req, lh_resp *resp);
int lh_h_sweep(lh_req *req, lh_resp *resp);
int lh_h_ingest_file(lh_req *req, lh_resp *resp);
int lh_h_ingest_db(lh_req *req, lh_resp *resp);
int lh_h_rows(lh_req *req, lh_resp *resp);
int lh_h_journal_events(lh_req *req, lh_resp *resp);
int lh_h_audit_list(lh_req *req, lh_resp *resp);
int lh_h_audit_get(lh_req *req, lh_resp *resp);
int lh_h_audit_replay(lh_req *req, lh_resp *resp);
/* h_workspace.c */
int lh_h_ws_create(lh_req *req, lh_resp *resp);
int lh_h_ws_list(lh_req *req, lh_resp *resp);
int lh_h_ws_get(lh_req *req, lh_resp *resp);
int lh_h_ws_patch(lh_req *req, lh_resp *resp);
int lh_h_ws_archive(lh_req *req, lh_resp *resp);
int lh_h_ws_handoff(lh_req *req, lh_resp *resp);
int lh_h_ws_brief(lh_req *req, lh_resp *resp);
int lh_h_ws_note(lh_req *req, lh_resp *resp);
int lh_h_ws_activity(lh_req *req, lh_resp *resp);
int lh_h_ws_shortlist_get(lh_req *req, lh_resp *resp);
int lh_h_ws_shortlist_add(lh_req *req, lh_resp *resp);
int lh_h_ws_shortlist_remove(lh_req *req, lh_resp *resp);
int lh_h_ws_shortlist_reorder(lh_req *req, lh_resp *resp);
int lh_h_ws_stage(lh_req *req, lh_resp *resp);
int lh_h_ws_publish(lh_req *req, lh_resp *resp);
int lh_h_ws_discard(lh_req *req, lh_resp *resp);
int lh_h_ws_query_save(lh_req *req, lh_resp *resp);
int lh_h_ws_query_run(lh_req *req, lh_resp *resp);
int lh_h_ws_snapshot(lh_req *req, lh_resp *resp);
int lh_h_ws_snapshots(lh_req *req, lh_resp *resp);
int lh_h_ws_rollback(lh_req *req, lh_resp *resp);
int lh_h_row_history(lh_req *req, lh_resp *resp);
int lh_h_changes(lh_req *req, lh_resp *resp);
int lh_h_compact(lh_req *req, lh_resp *resp);
int lh_h_embed(lh_req *req, lh_resp *resp);
int lh_h_vindex_list(lh_req *req, lh_resp *resp);
int lh_h_vindex_create(lh_req *req, lh_resp *resp);
int lh_h_vindex_get(lh_req *req, lh_resp *resp);
int lh_h_vindex_delete(lh_req *req, lh_resp *resp);
int lh_h_vindex_refresh(lh_req *req, lh_resp *resp);
int lh_h_vindex_search(lh_req *req, lh_resp *resp);
int lh_h_vindex_promote(lh_req *req, lh_resp *resp);
int lh_h_vindex_rollback(lh_req *req, lh_resp *resp);
int lh_h_eval_autogen(lh_req *req, lh_resp *resp);
int lh_h_evals_list(lh_req *req, lh_resp *resp);
int lh_h_eval_get(lh_req *req, lh_resp *resp);
int lh_h_trial(lh_req *req, lh_resp *resp);
int lh_h_trials_list(lh_req *req, lh_resp *resp);
int lh_h_trials_best(lh_req *req, lh_resp *resp);
int lh_h_trial_cache(lh_req *req, lh_resp *resp);
int lh_h_tools_create(lh_req *req, lh_resp *resp);
int lh_h_tools_put(lh_req *req, lh_resp *resp);
int lh_h_tools_delete(lh_req *req, lh_resp *resp);
int lh_h_tools_list(lh_req *req, lh_resp *resp);
int lh_h_tools_get(lh_req *req, lh_resp *resp);
int lh_h_tools_versions(lh_req *req, lh_resp *resp);
int lh_h_tools_call(lh_req *req, lh_resp *resp);
int lh_h_mcp(lh_req *req, lh_resp *resp);
/* the web console (h_ui.c): its files under /ui/, and / and /ui sent on to /ui/ */
int lh_h_ui(lh_req *req, lh_resp *resp);
int lh_h_ui_redirect(lh_req *req, lh_resp *resp);

/* The dataset's latest manifest (new) if the principal may see it; else answers 404 (as
 * for a missing one) and returns NULL. */
json_t *lh_http__visible_dataset(lh_req *req, lh_resp *resp, const char *name);
/* The same when only the answer matters: false once the 404 is answered. */
bool lh_http__dataset_visible(lh_req *req, lh_resp *resp, const char *name);
/* The elements of the array `all` (takes ownership) whose string member `key` passes
 * ok(req, value): what a list answer shows the caller. Returns new. */
json_t *lh_http__filter(lh_req *req, json_t *all, const char *key,
                        bool (*ok)(lh_req *req, const char *value));
int lh_h_buckets_list(lh_req *req, lh_resp *resp);
int lh_h_buckets_health(lh_req *req, lh_resp *resp);
int lh_h_objects_list(lh_req *req, lh_resp *resp);
int lh_h_object_get(lh_req *req, lh_resp *resp);
int lh_h_object_put(lh_req *req, lh_resp *resp);
int lh_h_object_delete(lh_req *req, lh_resp *resp);
int lh_h_storage_errors(lh_req *req, lh_resp *resp);
int lh_h_storage_errors_flush(lh_req *req, lh_resp *resp);
int lh_h_storage_errors_compact(lh_req *req, lh_resp *resp);
/* Queue fn(job, arg) as a job of `kind` owned by the caller and answer 202 with
 * Location: /jobs/{id}. The body is the job's record; with `wrap` (an object; takes
 * ownership, also on failure) it is wrap with "job_id" and "job" (the record) added. Takes
 * ownership of arg: free_arg frees it when the job ends, or at once when the queue refuses
 * it (the refusal is answered). Returns 0. */
int lh_http__submit_job(lh_req *req, lh_resp *resp, const char *kind, lh_job_fn fn, void *arg,
                        void (*free_arg)(void *), json_t *wrap);
/* The 202 of a job queued as id (Location, the job's record, in wrap when given: takes
 * wrap). */
int lh_http__answer_job(lh_req *req, lh_resp *resp, const char *id, json_t *wrap);
/* An unlinked temporary file under the server's tmp dir (fd returned new). */
int lh_http__tmpfile(lh_server *srv, int *fd_out, lh_err *err);

#endif
