/*
 * server.c — the libmicrohttpd daemon, the per-request life cycle and the route table.
 *
 * Life of a request (MHD calls on_request several times per request):
 *   1st call   headers are in: create lh_req (arena, request id), count it in flight,
 *              authenticate, route (404/405), check permission (403), check the declared
 *              body size (413) and content type (415). A refusal is queued at once.
 *   Nth call   body bytes: appended to req->body up to max_body_bytes (413 beyond), or
 *              the request deadline passed (408).
 *   last call  the handler runs and its response is queued.
 *   completed  metrics, the access log line, in-flight decrement, arena freed.
 *
 * Slow clients: conns.c gives each connection a header deadline and each request body a
 * deadline (408), keeps room for new connections, and MHD caps connections per address.
 *
 * Threads: MHD's epoll thread pool runs on_request; handlers must be thread-safe.
 * Shutdown: turn new connections away (accept_policy), wait for in_flight to drain
 * (bounded by the grace period), then stop the daemon.
 */
#include "http/http_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Per-connection buffer. MHD zeroes all of it after every request of a kept-alive
 * connection: 256 KiB cost ~10 us a request and flushed the CPU's L2 cache (a selective
 * filtered search: 190-250 us round trips with 256 KiB, 150-230 with 64 KiB). Uploads
 * arrive in pieces of about half of it; SPOOL_BYTES gathers them into fewer writes. */
#define CONNECTION_MEMORY (64 * 1024)
#define SPOOL_BYTES (1024 * 1024)

static const lh_route ROUTES[] = {
    {"GET", "/health", lh_h_health, LH_ALLOW_PUBLIC, 0},
    {"GET", "/", lh_h_ui_redirect, LH_ALLOW_PUBLIC, 0},
    {"GET", "/ui", lh_h_ui_redirect, LH_ALLOW_PUBLIC, 0},
    {"GET", "/ui/", lh_h_ui, LH_ALLOW_PUBLIC, 0},
    {"GET", "/ui/{*path}", lh_h_ui, LH_ALLOW_PUBLIC, 0},
    {"GET", "/whoami", lh_h_whoami, LH_ALLOW_ANY, 0},
    {"GET", "/profiles", lh_h_profiles, LH_ALLOW_ANY, 0},
    {"POST", "/admin/reload", lh_h_reload, LH_ALLOW_ADMIN, LH_ROUTE_JSON_BODY},
    {"GET", "/metrics", lh_h_metrics, LH_ALLOW_READ, 0},
    {"GET", "/jobs", lh_h_jobs_list, LH_ALLOW_ANY, 0},
    {"POST", "/jobs", lh_h_jobs_submit, LH_ALLOW_ADMIN, LH_ROUTE_JSON_BODY},
    {"GET", "/jobs/{id}", lh_h_jobs_get, LH_ALLOW_ANY, 0},
    {"DELETE", "/jobs/{id}", lh_h_jobs_cancel, LH_ALLOW_ANY, 0},
    {"POST", "/query", lh_h_query, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY | LH_ROUTE_OFFLOAD},
    {"GET", "/catalog/datasets", lh_h_datasets_list, LH_ALLOW_READ, 0},
    {"GET", "/catalog/datasets/{name}", lh_h_dataset_get, LH_ALLOW_READ, 0},
    {"GET", "/catalog/datasets/{name}/versions", lh_h_dataset_versions, LH_ALLOW_READ, 0},
    {"PATCH", "/catalog/datasets/{name}", lh_h_dataset_patch, LH_ALLOW_WRITE, LH_ROUTE_JSON_BODY},
    {"DELETE", "/catalog/datasets/{name}", lh_h_dataset_delete, LH_ALLOW_WRITE, 0},
    {"POST", "/catalog/datasets/{name}/resync", lh_h_dataset_resync, LH_ALLOW_WRITE, 0},
    {"POST", "/catalog/resync-missing", lh_h_resync_missing, LH_ALLOW_ADMIN, 0},
    {"POST", "/maintenance/sweep", lh_h_sweep, LH_ALLOW_ADMIN, 0},
    {"POST", "/ingest/file", lh_h_ingest_file, LH_ALLOW_WRITE, LH_ROUTE_BODY_FILE},
    {"POST", "/ingest/db", lh_h_ingest_db, LH_ALLOW_WRITE, LH_ROUTE_JSON_BODY},
    {"POST", "/datasets/{name}/rows", lh_h_rows, LH_ALLOW_WRITE, LH_ROUTE_JSON_BODY},
    {"GET", "/journal/events", lh_h_journal_events, LH_ALLOW_READ, 0},
    {"GET", "/audit", lh_h_audit_list, LH_ALLOW_ADMIN, LH_ROUTE_OFFLOAD},
    {"GET", "/audit/{call_id}", lh_h_audit_get, LH_ALLOW_ADMIN, LH_ROUTE_OFFLOAD},
    {"POST", "/audit/{call_id}/replay", lh_h_audit_replay, LH_ALLOW_ADMIN, LH_ROUTE_OFFLOAD},
    {"POST", "/workspaces", lh_h_ws_create, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY},
    {"GET", "/workspaces", lh_h_ws_list, LH_ALLOW_ANY, 0},
    {"GET", "/workspaces/{id}", lh_h_ws_get, LH_ALLOW_ANY, 0},
    {"PATCH", "/workspaces/{id}", lh_h_ws_patch, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY},
    {"POST", "/workspaces/{id}/archive", lh_h_ws_archive, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY},
    {"POST", "/workspaces/{id}/handoff", lh_h_ws_handoff, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY},
    {"GET", "/workspaces/{id}/brief", lh_h_ws_brief, LH_ALLOW_ANY, 0},
    {"POST", "/workspaces/{id}/notes", lh_h_ws_note, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY},
    {"GET", "/workspaces/{id}/activity", lh_h_ws_activity, LH_ALLOW_ANY, 0},
    {"GET", "/workspaces/{id}/shortlists/{list}", lh_h_ws_shortlist_get, LH_ALLOW_ANY, 0},
    {"POST", "/workspaces/{id}/shortlists/{list}/records", lh_h_ws_shortlist_add, LH_ALLOW_ANY,
     LH_ROUTE_JSON_BODY},
    {"POST", "/workspaces/{id}/shortlists/{list}/remove", lh_h_ws_shortlist_remove, LH_ALLOW_ANY,
     LH_ROUTE_JSON_BODY},
    {"POST", "/workspaces/{id}/shortlists/{list}/reorder", lh_h_ws_shortlist_reorder, LH_ALLOW_ANY,
     LH_ROUTE_JSON_BODY},
    {"POST", "/workspaces/{id}/datasets/{name}/rows", lh_h_ws_stage, LH_ALLOW_ANY,
     LH_ROUTE_JSON_BODY},
    {"POST", "/workspaces/{id}/publish", lh_h_ws_publish, LH_ALLOW_WRITE, LH_ROUTE_JSON_BODY},
    {"POST", "/workspaces/{id}/discard", lh_h_ws_discard, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY},
    {"PUT", "/workspaces/{id}/queries/{name}", lh_h_ws_query_save, LH_ALLOW_ANY,
     LH_ROUTE_JSON_BODY},
    {"POST", "/workspaces/{id}/queries/{name}/run", lh_h_ws_query_run, LH_ALLOW_ANY,
     LH_ROUTE_JSON_BODY | LH_ROUTE_OFFLOAD},
    {"GET", "/workspaces/{id}/snapshots", lh_h_ws_snapshots, LH_ALLOW_ANY, 0},
    {"POST", "/workspaces/{id}/snapshots", lh_h_ws_snapshot, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY},
    {"POST", "/workspaces/{id}/snapshots/{n}/rollback", lh_h_ws_rollback, LH_ALLOW_ANY,
     LH_ROUTE_JSON_BODY},
    {"POST", "/embed", lh_h_embed, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY},
    {"GET", "/vectors/indexes", lh_h_vindex_list, LH_ALLOW_ANY, 0},
    {"POST", "/vectors/indexes", lh_h_vindex_create, LH_ALLOW_WRITE, LH_ROUTE_JSON_BODY},
    {"GET", "/vectors/indexes/{name}", lh_h_vindex_get, LH_ALLOW_ANY, 0},
    {"DELETE", "/vectors/indexes/{name}", lh_h_vindex_delete, LH_ALLOW_WRITE, 0},
    {"POST", "/vectors/indexes/{name}/refresh", lh_h_vindex_refresh, LH_ALLOW_WRITE,
     LH_ROUTE_JSON_BODY},
    {"POST", "/vectors/indexes/{name}/search", lh_h_vindex_search, LH_ALLOW_ANY,
     LH_ROUTE_JSON_BODY | LH_ROUTE_BINARY_BODY | LH_ROUTE_OFFLOAD},
    {"POST", "/vectors/indexes/{name}/promote", lh_h_vindex_promote, LH_ALLOW_WRITE,
     LH_ROUTE_JSON_BODY},
    {"POST", "/vectors/indexes/{name}/rollback", lh_h_vindex_rollback, LH_ALLOW_WRITE,
     LH_ROUTE_JSON_BODY},
    {"POST", "/vectors/hnsw/evals/{name}/autogen", lh_h_eval_autogen, LH_ALLOW_WRITE,
     LH_ROUTE_JSON_BODY},
    {"GET", "/vectors/hnsw/evals", lh_h_evals_list, LH_ALLOW_ANY, 0},
    {"GET", "/vectors/hnsw/evals/{name}", lh_h_eval_get, LH_ALLOW_ANY, 0},
    {"POST", "/vectors/hnsw/trial", lh_h_trial, LH_ALLOW_WRITE, LH_ROUTE_JSON_BODY},
    {"GET", "/vectors/hnsw/trials/{index}", lh_h_trials_list, LH_ALLOW_ANY, 0},
    {"GET", "/vectors/hnsw/trials/{index}/best", lh_h_trials_best, LH_ALLOW_ANY, 0},
    {"GET", "/vectors/hnsw/cache/stats", lh_h_trial_cache, LH_ALLOW_ANY, 0},
    {"GET", "/datasets/{name}/rows/{key}/history", lh_h_row_history, LH_ALLOW_READ, 0},
    {"GET", "/datasets/{name}/changes", lh_h_changes, LH_ALLOW_READ, 0},
    {"POST", "/datasets/{name}/compact", lh_h_compact, LH_ALLOW_WRITE, 0},
    /* managing and calling tools: src/agent decides who may (admins manage) */
    {"GET", "/tools", lh_h_tools_list, LH_ALLOW_ANY, 0},
    {"POST", "/tools", lh_h_tools_create, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY},
    {"GET", "/tools/{name}", lh_h_tools_get, LH_ALLOW_ANY, 0},
    {"PUT", "/tools/{name}", lh_h_tools_put, LH_ALLOW_ANY, LH_ROUTE_JSON_BODY},
    {"DELETE", "/tools/{name}", lh_h_tools_delete, LH_ALLOW_ANY, 0},
    {"GET", "/tools/{name}/versions", lh_h_tools_versions, LH_ALLOW_ANY, 0},
    {"POST", "/tools/{name}/call", lh_h_tools_call, LH_ALLOW_ANY,
     LH_ROUTE_JSON_BODY | LH_ROUTE_OFFLOAD},
    {"GET", "/storage/buckets", lh_h_buckets_list, LH_ALLOW_READ, 0},
    {"GET", "/storage/bucket-health", lh_h_buckets_health, LH_ALLOW_READ, 0},
    {"GET", "/storage/buckets/{bucket}/objects", lh_h_objects_list, LH_ALLOW_READ, 0},
    {"GET", "/storage/buckets/{bucket}/objects/{*key}", lh_h_object_get, LH_ALLOW_READ, 0},
    {"PUT", "/storage/buckets/{bucket}/objects/{*key}", lh_h_object_put, LH_ALLOW_WRITE,
     LH_ROUTE_STREAM_BODY},
    {"DELETE", "/storage/buckets/{bucket}/objects/{*key}", lh_h_object_delete, LH_ALLOW_WRITE, 0},
    {"GET", "/storage/errors", lh_h_storage_errors, LH_ALLOW_READ, 0},
    {"POST", "/storage/errors/flush", lh_h_storage_errors_flush, LH_ALLOW_ADMIN, 0},
    {"POST", "/storage/errors/compact", lh_h_storage_errors_compact, LH_ALLOW_ADMIN, 0},
    /* MCP (src/mcp): the module checks Content-Type and answers JSON-RPC errors itself;
     * tools/call may wait for a query slot, hence its own thread */
    {"POST", "/mcp", lh_h_mcp, LH_ALLOW_ANY, LH_ROUTE_OFFLOAD},
    {"GET", "/mcp", lh_h_mcp, LH_ALLOW_ANY, 0},
    {"DELETE", "/mcp", lh_h_mcp, LH_ALLOW_ANY, 0},
};
#define N_ROUTES (sizeof ROUTES / sizeof ROUTES[0])

/* ---- request helpers ----------------------------------------------------------------- */

const char *
lh_req_param(const lh_req *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < req->match.n_params; i++)
        if (req->match.name_lens[i] == len && memcmp(req->match.names[i], name, len) == 0)
            return req->match.values[i];
    return NULL;
}

const char *
lh_req_query(const lh_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int
lh_req_query_int(const lh_req *req, const char *name, int64_t def, int64_t min, int64_t max,
                 int64_t *out, lh_err *err)
{
    const char *text = lh_req_query(req, name);
    if (text == NULL) {
        *out = def;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || errno || v < min || v > max) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                   "'%s' must be an integer from %lld to %lld", name, (long long)min,
                   (long long)max);
        return LH_EINVAL;
    }
    *out = v;
    return 0;
}

int
lh_req_query_offset_cursor(const lh_req *req, int64_t *offset, lh_err *err)
{
    const char *cursor = lh_req_query(req, "cursor");
    *offset = 0;
    if (cursor == NULL)
        return 0;
    char *end = NULL;
    long long off = cursor[0] == 'o' ? strtoll(cursor + 1, &end, 10) : -1;
    if (off < 0 || !end || *end != '\0')
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'cursor' must be a next_cursor from an earlier answer");
    *offset = off;
    return 0;
}

const char *
lh_req_header(const lh_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

bool
lh_req_binary(const lh_req *req)
{
    const char *type = lh_req_header(req, "Content-Type");
    return type && strncasecmp(type, "application/octet-stream", 24) == 0 &&
           (type[24] == '\0' || type[24] == ';' || type[24] == ' ');
}

typedef struct query_check {
    const char *const *known, *const *more;
    const char *hint;
    lh_err *err;
    int rc;
} query_check;

static bool
in_names(const char *const *names, const char *key)
{
    for (; names && *names; names++)
        if (strcmp(*names, key) == 0)
            return true;
    return false;
}

static enum MHD_Result
check_query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind, (void)value;
    query_check *qc = cls;
    if (in_names(qc->known, key) || in_names(qc->more, key))
        return MHD_YES;
    qc->rc =
        lh_err_set(qc->err, LH_EINVAL, 400, "invalid_parameter", "unknown parameter '%s'", key);
    lh_err_hint(qc->err, "%s", qc->hint);
    return MHD_NO;
}

int
lh_req_check_query(lh_req *req, const char *const *known, const char *const *more, const char *hint,
                   lh_err *err)
{
    query_check qc = {known, more, hint, err, 0};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, check_query_arg, &qc);
    return qc.rc;
}

int
lh_req_json_floats(lh_req *req, const char *key, json_t **out, const float **floats, size_t *n,
                   lh_err *err)
{
    if (!req->floats_tried && req->json == NULL) {
        req->floats_tried = true;
        lh_buf rest;
        lh_buf_init(&rest);
        if (lh_json_take_floats(req->body.data, req->body.len, key, &req->floats, &req->n_floats,
                                &rest) == 1) {
            json_t *j = json_loadb(rest.data, rest.len, JSON_REJECT_DUPLICATES, NULL);
            if (json_is_object(j)) {
                json_object_del(j, key);
                req->json = j;
            } else { /* jansson reports the original text's error, at its position */
                json_decref(j);
                free(req->floats);
                req->floats = NULL;
                req->n_floats = 0;
            }
        }
        lh_buf_free(&rest);
    }
    *floats = req->floats;
    *n = req->n_floats;
    return lh_req_json(req, false, out, err);
}

int
lh_req_json(lh_req *req, bool allow_empty, json_t **out, lh_err *err)
{
    if (req->body.len == 0) {
        if (allow_empty) {
            *out = json_object();
            return 0;
        }
        lh_err_set(err, LH_EINVAL, 400, "invalid_json", "request body is empty");
        lh_err_hint(err, "send a JSON object with Content-Type: application/json");
        return LH_EINVAL;
    }
    if (req->json) {
        *out = json_incref(req->json);
        return 0;
    }
    json_error_t jerr;
    json_t *j = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_json", "request body is not valid JSON");
        lh_err_detail(err, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return LH_EINVAL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        lh_err_set(err, LH_EINVAL, 400, "invalid_json", "request body must be a JSON object");
        return LH_EINVAL;
    }
    req->json = json_incref(j);
    *out = j;
    return 0;
}

int
lh_resp_json(lh_resp *resp, int status, json_t *j)
{
    if (j == NULL)
        abort(); /* only a failed json_pack, on out-of-memory */
    resp->status = status;
    resp->content_type = "application/json";
    lh_buf_free(&resp->body);
    lh_json_dump(&resp->body, j);
    lh_buf_append(&resp->body, "\n", 1);
    json_decref(j);
    return 0;
}

int
lh_resp_error(lh_resp *resp, const lh_err *err)
{
    resp->err = *err;
    int status = err->http_status ? err->http_status : lh_err_status_for(err->rc);
    return lh_resp_json(resp, status, lh_err_to_json(err));
}

int
lh_resp_text(lh_resp *resp, int status, const char *content_type, const char *text, size_t len)
{
    resp->status = status;
    resp->content_type = content_type;
    lh_buf_free(&resp->body);
    lh_buf_append(&resp->body, text, len);
    return 0;
}

void
lh_resp_fd(lh_resp *resp, int status, const char *content_type, int fd, int64_t offset, int64_t len)
{
    if (resp->fd >= 0)
        close(resp->fd);
    lh_buf_free(&resp->body);
    resp->status = status;
    resp->content_type = content_type;
    resp->fd = fd;
    resp->fd_offset = offset;
    resp->fd_len = len;
}

int
lh_http__tmpfile(lh_server *srv, int *fd_out, lh_err *err)
{
    char *path = lh_sprintf("%s/body-XXXXXX", srv->tmp_dir);
    int fd = mkstemp(path);
    int e = errno;
    if (fd >= 0)
        unlink(path); /* nothing is left behind, whatever happens to us */
    free(path);
    if (fd < 0) {
        lh_err_set(err, LH_EIO, 503, "tmp_unavailable", "could not create a temporary file");
        lh_err_detail(err, "%s: %s", srv->tmp_dir, strerror(e));
        return LH_EIO;
    }
    *fd_out = fd;
    return 0;
}

static ssize_t
no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls, (void)pos, (void)buf, (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

void
lh_resp_header(lh_resp *resp, const char *name, const char *value)
{
    if (resp->n_headers < sizeof resp->headers / sizeof resp->headers[0]) {
        resp->headers[resp->n_headers].name = name;
        resp->headers[resp->n_headers].value = value;
        resp->n_headers++;
    }
}

/* ---- request life cycle ------------------------------------------------------------------- */

lh_auth *
lh_server_auth_current(lh_server *srv)
{
    return lh_http__auth_current(srv);
}

lh_auth *
lh_http__auth_current(lh_server *srv)
{
    /* the lock covers only the load and the increment, so a reload cannot free the set
     * between them; a reader never waits for more than another reader's two steps */
    pthread_mutex_lock(&srv->auth_lock);
    lh_auth *a = lh_auth_retain(srv->auth);
    pthread_mutex_unlock(&srv->auth_lock);
    return a;
}

/* A client's X-Request-Id is echoed when it is 1..64 characters of [A-Za-z0-9._:-];
 * otherwise we make one, so ids are always safe to log and to put in headers. */
static void
assign_request_id(lh_req *req)
{
    const char *theirs = lh_req_header(req, "X-Request-Id");
    if (theirs) {
        size_t n = strlen(theirs);
        if (n >= 1 && n < LH_REQUEST_ID_MAX &&
            strspn(theirs, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
                n) {
            memcpy(req->request_id, theirs, n + 1);
            return;
        }
    }
    char hex[21];
    lh_random_hex(hex, 10);
    snprintf(req->request_id, sizeof req->request_id, "req_%s", hex);
}

static void
queue(lh_req *req, lh_resp *resp)
{
    if (req->responded)
        return;
    if (resp->status == 0)
        resp->status = 500;
    struct MHD_Response *r;
    if (resp->reader) {
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, resp->reader,
                                              resp->reader_ctx, resp->reader_free);
        if (r)
            resp->reader = NULL; /* MHD owns the context now */
    } else if (resp->fd >= 0) {
        r = MHD_create_response_from_fd_at_offset64((uint64_t)resp->fd_len, resp->fd,
                                                    (uint64_t)resp->fd_offset);
        if (r)
            resp->fd = -1; /* MHD closes it */
    } else if (resp->head_len >= 0) {
        r = MHD_create_response_from_callback((uint64_t)resp->head_len, 4096, no_body, NULL, NULL);
    } else if (resp->static_body) {
        r = MHD_create_response_from_buffer(resp->static_len, (void *)resp->static_body,
                                            MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer(
            resp->body.len, resp->body.data ? resp->body.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    }
    if (r == NULL) {
        /* MHD could not build the response (out of memory): drop the connection */
        lh_log(LH_LOG_ERROR, req->request_id, NULL, "could not create the HTTP response");
        req->responded = true; /* the caller's resp_free releases fd and reader */
        req->status = 500;
        return;
    }
    MHD_add_response_header(r, "Content-Type",
                            resp->content_type ? resp->content_type : "application/json");
    MHD_add_response_header(r, "X-Request-Id", req->request_id);
    bool cache_control = false;
    for (size_t i = 0; i < resp->n_headers; i++) {
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
        cache_control |= strcasecmp(resp->headers[i].name, "Cache-Control") == 0;
    }
    if (!cache_control)
        MHD_add_response_header(r, "Cache-Control", "no-store");
    if (atomic_load(&req->srv->stopping))
        MHD_add_response_header(r, "Connection", "close");
    MHD_queue_response(req->conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    req->responded = true;
    req->status = resp->status;
    /* counted now, not when the connection completes: a client's next request must
     * already see this one in /metrics. The duration is the time to the answer. */
    lh_http__metrics_observe(req->srv->metrics, req->match.route ? req->match.route_index : -1,
                             req->method, resp->status,
                             (double)(lh_mono_us() - req->start_mono_us) / 1e6);
    if (resp->status >= 500 && resp->err.code[0])
        lh_log_err(LH_LOG_ERROR, req->request_id, &resp->err);
}

#define RESP_INIT                                                                                  \
    {                                                                                              \
        .fd = -1, .head_len = -1                                                                   \
    }

static void
respond_error(lh_req *req, const lh_err *err)
{
    lh_resp resp = RESP_INIT;
    lh_resp_error(&resp, err);
    queue(req, &resp);
    lh_buf_free(&resp.body);
}

static void
resp_free(lh_resp *resp)
{
    lh_buf_free(&resp->body);
    if (resp->reader && resp->reader_free)
        resp->reader_free(resp->reader_ctx);
    resp->reader = NULL;
    if (resp->fd >= 0)
        close(resp->fd);
    resp->fd = -1;
}

/* Checks done as soon as the headers are in. Returns 0 to go on, or queues a refusal. */
static int
admit(lh_req *req)
{
    lh_server *srv = req->srv;
    lh_err err;
    char allow[128];
    lh_err_clear(&err);

    if (lh_http__conn_overflow(req->conn_rec)) {
        /* opened when every connection was busy: say so rather than leave it hanging */
        lh_resp resp = RESP_INIT;
        lh_err_set(&err, LH_EUNAVAIL, 503, "server_busy", "too many open connections");
        lh_err_hint(&err, "retry shortly, or raise [server] max_connections");
        lh_resp_error(&resp, &err);
        lh_resp_header(&resp, "Retry-After", "1");
        lh_resp_header(&resp, "Connection", "close");
        queue(req, &resp);
        resp_free(&resp);
        return -1;
    }

    /* The route decides whether authentication is needed (only GET /health is public).
     * Unknown paths still require a valid token, so the API cannot be mapped anonymously. */
    int rc = lh_http__route(srv->routes, srv->n_routes, req->method, req->path, req->arena,
                            &req->match, allow, sizeof allow);
    bool public_route = rc == 0 && req->match.route->allow == LH_ALLOW_PUBLIC;
    if (!public_route) {
        req->principal = lh_auth_check(req->auth, lh_req_header(req, "Authorization"), &err);
        if (req->principal == NULL) {
            lh_resp resp = RESP_INIT;
            lh_resp_error(&resp, &err);
            lh_resp_header(&resp, "WWW-Authenticate", "Bearer realm=\"lakehouse\"");
            queue(req, &resp);
            resp_free(&resp);
            return -1;
        }
    }
    if (rc == LH_ENOTFOUND) {
        lh_err_set(&err, LH_ENOTFOUND, 404, "not_found", "no such endpoint: %s %s", req->method,
                   req->path);
        lh_err_hint(&err, "see docs/API.md for the endpoints");
        respond_error(req, &err);
        return -1;
    }
    if (rc == LH_EPERM) {
        lh_resp resp = RESP_INIT;
        lh_err_set(&err, LH_EINVAL, 405, "method_not_allowed", "%s is not allowed on %s",
                   req->method, req->path);
        lh_err_detail(&err, "allowed: %s", allow);
        lh_resp_error(&resp, &err);
        lh_resp_header(&resp, "Allow", allow);
        queue(req, &resp);
        resp_free(&resp);
        return -1;
    }
    if (lh_auth_allow(req->principal, req->match.route->allow, &err) != 0) {
        respond_error(req, &err);
        return -1;
    }

    const char *length = lh_req_header(req, "Content-Length");
    const char *chunked = lh_req_header(req, "Transfer-Encoding");
    req->has_body = (length && strcmp(length, "0") != 0) || chunked;
    bool to_file = (req->match.route->flags & LH_ROUTE_BODY_FILE) != 0;
    bool stream = to_file || (req->match.route->flags & LH_ROUTE_STREAM_BODY) != 0;
    int64_t limit = stream ? req->max_object_bytes : req->max_body_bytes;
    if (length) {
        char *end = NULL;
        unsigned long long n = strtoull(length, &end, 10);
        if (end != length && (n > (unsigned long long)INT64_MAX || (long long)n > limit)) {
            lh_err_set(&err, LH_ETOOBIG, 413, "body_too_large",
                       "request body of %llu bytes is over the limit of %lld bytes", n,
                       (long long)limit);
            lh_err_hint(&err, stream ? "send less, or raise [storage] max_object_bytes"
                                     : "send less, or raise [server] max_body_bytes");
            respond_error(req, &err);
            return -1;
        }
    }
    if (to_file) {
        req->body_path = lh_sprintf("%s/upload-XXXXXX", srv->work_dir);
        req->body_fd = mkstemp(req->body_path);
        if (req->body_fd < 0) {
            lh_err_set(&err, LH_EIO, 503, "tmp_unavailable", "could not create a temporary file");
            lh_err_detail(&err, "%s: %s", srv->work_dir, strerror(errno));
            free(req->body_path);
            req->body_path = NULL;
            respond_error(req, &err);
            return -1;
        }
    } else if (stream && lh_http__tmpfile(srv, &req->body_fd, &err) != 0) {
        respond_error(req, &err);
        return -1;
    }
    if (req->has_body && (req->match.route->flags & LH_ROUTE_JSON_BODY)) {
        const char *type = lh_req_header(req, "Content-Type");
        if ((req->match.route->flags & LH_ROUTE_BINARY_BODY) && lh_req_binary(req))
            ; /* the handler reads the bytes */
        else if (type == NULL || strncasecmp(type, "application/json", 16) != 0 ||
                 (type[16] != '\0' && type[16] != ';' && type[16] != ' ')) {
            lh_err_set(&err, LH_EINVAL, 415, "unsupported_media_type",
                       (req->match.route->flags & LH_ROUTE_BINARY_BODY)
                           ? "request body must be application/json or application/octet-stream"
                           : "request body must be application/json");
            lh_err_detail(&err, "Content-Type: %s", type ? type : "(none)");
            respond_error(req, &err);
            return -1;
        }
    }
    return 0;
}

static void
run_handler(lh_req *req, lh_resp *resp)
{
    int rc = req->match.route->handler(req, resp);
    if (rc != 0 && resp->status == 0) {
        lh_err err;
        lh_err_set(&err, LH_EINTERNAL, 500, "internal_error", "internal error");
        lh_resp_error(resp, &err);
    }
}

static void
dispatch(lh_req *req)
{
    lh_resp resp = RESP_INIT;
    run_handler(req, &resp);
    queue(req, &resp);
    resp_free(&resp);
}

/* LH_ROUTE_OFFLOAD handlers that can tell, once the body is in, whether this request may
 * wait at all: one that will not runs on the MHD worker like any quick route (suspending
 * the connection and handing it to a thread cost ~50 us, as much as a search itself). */
static const struct {
    lh_handler handler;
    bool (*may_wait)(lh_req *req);
} WAIT_CHECKS[] = {{lh_h_vindex_search, lh_h_vindex_search_may_wait}};

static bool
may_wait(lh_req *req)
{
    for (size_t i = 0; i < sizeof WAIT_CHECKS / sizeof *WAIT_CHECKS; i++)
        if (WAIT_CHECKS[i].handler == req->match.route->handler)
            return WAIT_CHECKS[i].may_wait(req);
    return true;
}

/*
 * LH_ROUTE_OFFLOAD handlers run on threads of their own (kept threads, lh_kept: a thread
 * is kept for the next handler, since starting one cost more than a fast handler — a
 * search — itself). An MHD worker serves every connection of its epoll set, so a handler
 * waiting there for a query slot or a slow query would stall all of them, /health
 * included. The connection stays suspended meanwhile; once resumed, MHD calls on_request
 * again and the answer is queued there.
 */
#define OFFLOAD_IDLE_S 30
#define OFFLOAD_KEEP 32

static void
offload_work(void *arg)
{
    lh_req *req = arg;
    lh_resp *resp = lh_malloc(sizeof *resp);
    *resp = (lh_resp)RESP_INIT;
    run_handler(req, resp);
    req->offload_resp = resp;
}

/* After the thread counted itself idle: the client may send its next request as soon as
 * it has the answer, and that request must find this thread. */
static void
offload_done(void *arg)
{
    lh_req *req = arg;
    lh_server *srv = req->srv;
    MHD_resume_connection(req->conn); /* req may be gone from here on */
    atomic_fetch_sub(&srv->offloaded, 1);
}

static void
offload(lh_req *req)
{
    lh_server *srv = req->srv;
    req->offloaded = true;
    atomic_fetch_add(&srv->offloaded, 1);
    MHD_suspend_connection(req->conn);
    lh_err err;
    if (lh_kept_run(srv->offload, offload_work, offload_done, req, &err) != 0) {
        /* stopping, or no thread to be had: answer here, as other routes do */
        atomic_fetch_sub(&srv->offloaded, 1);
        MHD_resume_connection(req->conn);
        dispatch(req);
    }
}

int
lh_req_fd(const lh_req *req)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? info->connect_fd : -1;
}

bool
lh_http__fd_closed(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* MHD cannot send a response while a request body is still arriving, so a refusal found
 * mid-body (too large, too slow) is kept pending and sent when the body ends; the bytes in
 * between are dropped. A client that keeps sending far past the refusal is cut off. */
#define DISCARD_LIMIT (16u << 20)

/* Write the spooled body bytes to body_fd. -1 (errno set) when the disk refused them. */
static int
flush_spool(lh_req *req)
{
    if (req->spool_len == 0)
        return 0;
    int rc = lh_write_all(req->body_fd, req->spool, req->spool_len);
    req->spool_len = 0;
    return rc;
}

/* A piece of a body that goes to body_fd: gathered in the spool, written when it fills
 * (a piece as large as the spool, or one that finds no memory for it, is written at once,
 * after what the spool holds). */
static int
spool_body(lh_req *req, const char *data, size_t n)
{
    if (req->spool_len + n > SPOOL_BYTES && flush_spool(req) != 0)
        return -1;
    if (n >= SPOOL_BYTES || (req->spool == NULL && (req->spool = malloc(SPOOL_BYTES)) == NULL))
        return lh_write_all(req->body_fd, data, n);
    memcpy(req->spool + req->spool_len, data, n);
    req->spool_len += n;
    return 0;
}

/* The answer to a body the disk refused (errno set). */
static void
tmp_full(lh_req *req)
{
    lh_err_set(&req->pending, LH_EIO, 507, "tmp_full", "could not buffer the request body on disk");
    lh_err_detail(&req->pending, "%s: %s", req->srv->tmp_dir, strerror(errno));
}

static int
receive_body(lh_req *req, const char *data, size_t n)
{
    if (lh_http__conn_closing(req->conn_rec))
        return -1; /* its deadline passed and it was answered 408 */
    if (req->has_pending) {
        req->discarded += n;
        bool too_long = lh_mono_us() > req->deadline_mono_us + req->request_timeout_us;
        return req->discarded > DISCARD_LIMIT || too_long ? -1 : 0;
    }
    if (lh_mono_us() > req->deadline_mono_us) {
        lh_err_set(&req->pending, LH_ETIMEOUT, 408, "request_timeout",
                   "the request body did not arrive within %lld ms",
                   (long long)(req->request_timeout_us / 1000));
        lh_err_hint(&req->pending, "send faster, or raise [server] request_timeout_ms");
    } else if (req->body_fd >= 0) {
        if (req->body_fd_len + (int64_t)n > req->max_object_bytes) {
            lh_err_set(&req->pending, LH_ETOOBIG, 413, "body_too_large",
                       "request body is over the limit of %lld bytes",
                       (long long)req->max_object_bytes);
            lh_err_hint(&req->pending, "send less, or raise [storage] max_object_bytes");
        } else if (spool_body(req, data, n) != 0) {
            tmp_full(req);
        } else {
            req->body_fd_len += (int64_t)n;
            return 0;
        }
    } else if ((int64_t)(req->body.len + n) > req->max_body_bytes) {
        lh_err_set(&req->pending, LH_ETOOBIG, 413, "body_too_large",
                   "request body is over the limit of %lld bytes", (long long)req->max_body_bytes);
        lh_err_hint(&req->pending, "send less, or raise [server] max_body_bytes");
    } else if (lh_buf_try_append(&req->body, data, n) != 0) {
        lh_err_set(&req->pending, LH_ENOMEM, 503, "out_of_memory",
                   "not enough memory to receive the request body");
    } else {
        return 0;
    }
    req->has_pending = true;
    req->discarded = n;
    lh_buf_free(&req->body);
    return 0;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    lh_server *srv = cls;
    lh_req *req = *con_cls;
    if (req == NULL) {
        lh_arena *arena = lh_arena_new();
        req = lh_arena_alloc(arena, sizeof *req);
        memset(req, 0, sizeof *req);
        req->arena = arena;
        req->srv = srv;
        req->conn = conn;
        req->method = lh_arena_strdup(arena, method);
        req->path = lh_arena_strdup(arena, url);
        req->start_mono_us = lh_mono_us();
        req->auth = lh_http__auth_current(srv);
        req->config = req->auth->config;
        req->max_body_bytes = lh_config_int(req->config, "server.max_body_bytes");
        req->max_object_bytes = lh_config_int(req->config, "storage.max_object_bytes");
        req->request_timeout_us = lh_config_int(req->config, "server.request_timeout_ms") * 1000;
        req->deadline_mono_us = req->start_mono_us + req->request_timeout_us;
        lh_buf_init(&req->body);
        req->body_fd = -1;
        req->counted = true;
        req->conn_rec = lh_http__conn_of(conn);
        atomic_fetch_add(&srv->in_flight, 1);
        assign_request_id(req);
        *con_cls = req;
        if (admit(req) == 0 && req->has_body) {
            if (!lh_http__conn_headers_done(req->conn_rec, req->request_id, req->deadline_mono_us))
                return MHD_NO;
        } else if (!lh_http__conn_headers_done(req->conn_rec, req->request_id, 0)) {
            return MHD_NO; /* the header deadline passed as they arrived */
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->responded)
            return MHD_YES; /* refused before the body: MHD drops the rest */
        return receive_body(req, upload_data, n) == 0 ? MHD_YES : MHD_NO;
    }
    if (!req->responded && !lh_http__conn_body_done(req->conn_rec))
        return MHD_NO; /* answered 408 while the body was still arriving */
    if (!req->has_pending && req->body_fd >= 0 && flush_spool(req) != 0) {
        tmp_full(req);
        req->has_pending = true;
    }
    if (req->has_pending) {
        respond_error(req, &req->pending);
        return MHD_YES;
    }
    if (req->offload_resp) { /* resumed: the handler's thread has answered */
        queue(req, req->offload_resp);
        resp_free(req->offload_resp);
        free(req->offload_resp);
        req->offload_resp = NULL;
    } else if (!req->responded && !req->offloaded) {
        if ((req->match.route->flags & LH_ROUTE_OFFLOAD) && may_wait(req))
            offload(req);
        else
            dispatch(req);
    }
    return MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    lh_server *srv = cls;
    lh_req *req = *con_cls;
    if (req == NULL)
        return;
    *con_cls = NULL;
    double seconds = (double)(lh_mono_us() - req->start_mono_us) / 1e6;
    bool timed_out = lh_http__conn_request_done(lh_http__conn_of(conn));
    /* not answered: its body timed out (conns.c sent the 408), or the client went away */
    int status = req->responded ? req->status : timed_out ? 408 : 499;
    if (!req->responded) /* answered requests were counted when their answer was queued */
        lh_http__metrics_observe(srv->metrics, req->match.route ? req->match.route_index : -1,
                                 req->method, status, seconds);
    if (srv->access_log && lh_log_enabled(LH_LOG_INFO)) {
        /* the path is client bytes: maybe not UTF-8, which json_pack would refuse */
        json_t *fields =
            json_pack("{s:o, s:o, s:i, s:f, s:s}", "method", lh_json_text(req->method), "path",
                      lh_json_text(req->path), "status", status, "duration_ms", seconds * 1000.0,
                      "principal", req->principal ? req->principal->name : "");
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            json_object_set_new(fields, "terminated", json_integer((json_int_t)toe));
        lh_log(LH_LOG_INFO, req->request_id, fields, "request");
        json_decref(fields);
    }
    if (req->offload_resp) { /* resumed, but the connection closed before it was queued */
        resp_free(req->offload_resp);
        free(req->offload_resp);
    }
    lh_buf_free(&req->body);
    json_decref(req->json);
    free(req->floats);
    free(req->spool);
    if (req->body_fd >= 0)
        close(req->body_fd);
    if (req->body_path) {
        unlink(req->body_path);
        free(req->body_path);
    }
    if (req->counted)
        atomic_fetch_sub(&srv->in_flight, 1);
    lh_auth_release(req->auth); /* after the last use of req->principal */
    lh_arena_free(req->arena);
}

/* Percent-decode the request target in place. A "%00" would cut the C string and
 * silently shorten a key ("a%00b" → "a"), so it becomes DEL (0x7f), which every name and
 * key check refuses. Invalid escapes stay as they are. */
static size_t
unescape(void *cls, struct MHD_Connection *conn, char *uri)
{
    (void)cls, (void)conn;
    char *out = uri;
    for (const char *in = uri; *in;) {
        if (in[0] == '%' && isxdigit((unsigned char)in[1]) && isxdigit((unsigned char)in[2])) {
            char hex[3] = {in[1], in[2], 0};
            unsigned v = (unsigned)strtoul(hex, NULL, 16);
            *out++ = v == 0 ? (char)0x7f : (char)v;
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t)(out - uri);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    lh_log(LH_LOG_WARN, NULL, NULL, "http: %s", msg);
}

/* ---- start and stop ---------------------------------------------------------------------- */

static int
open_listener(const char *host, int port, int *fd_out, int *port_out, lh_err *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        lh_err_set(err, LH_EINVAL, 0, "bad_listen_address", "cannot resolve listen address %s: %s",
                   host, gai_strerror(gai));
        return LH_EINVAL;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0) {
        freeaddrinfo(res);
        return lh_err_set(err, LH_EIO, 0, "listen_failed", "cannot create socket: %s",
                          strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 512) != 0) {
        int e = errno;
        freeaddrinfo(res);
        close(fd);
        if (e == EADDRINUSE)
            return lh_err_set(err, LH_EEXIST, 0, "address_in_use",
                              "cannot listen on %s:%d: address already in use (another server "
                              "running? set [server] port or LAKEHOUSE_SERVER_PORT)",
                              host, port);
        return lh_err_set(err, LH_EIO, 0, "listen_failed", "cannot listen on %s:%d: %s", host, port,
                          strerror(e));
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

/* During shutdown new connections are closed as soon as they are accepted. Quiescing the
 * daemon (MHD_quiesce_daemon) would refuse them at the socket instead, but with epoll and
 * a thread pool it races MHD's own workers, which remove the listen socket from their
 * epoll sets too, and the loser aborts the process (an open libmicrohttpd defect, seen
 * here about once in fifty stops). */
static enum MHD_Result
accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    lh_server *srv = cls;
    return atomic_load(&srv->stopping) ? MHD_NO : MHD_YES;
}

/* Free what lh_server_start made; the daemon must be stopped (or never started). Accepts
 * NULL. */
static void
server_free(lh_server *srv)
{
    if (srv == NULL)
        return;
    if (srv->listen_fd >= 0 && srv->daemon == NULL)
        close(srv->listen_fd); /* a running daemon owned it and closed it on stop */
    lh_http__metrics_free(srv->metrics);
    lh_http__conns_free(srv->conns);
    lh_mcp_free(srv->mcp);
    lh_auth_release(srv->auth);
    pthread_mutex_destroy(&srv->auth_lock);
    pthread_mutex_destroy(&srv->reload_lock);
    lh_kept_free(srv->offload);
    free(srv->tmp_dir);
    free(srv->work_dir);
    free(srv->results_dir);
    free(srv);
}

int
lh_server_start(const lh_server_deps *deps, lh_server **out, lh_err *err)
{
    const lh_config *cfg = deps->config;
    lh_server *srv = lh_calloc(1, sizeof *srv);
    srv->config = cfg;
    srv->engine = deps->engine;
    srv->jobs = deps->jobs;
    srv->buckets = deps->buckets;
    srv->catalog = deps->catalog;
    srv->cache = deps->cache;
    srv->vectors = deps->vectors;
    srv->tools = deps->tools;
    srv->audit = deps->audit;
    srv->workspaces = deps->workspaces;
    srv->secrets = deps->secrets;
    srv->work_dir = lh_strdup(deps->work_dir ? deps->work_dir : "/tmp");
    srv->results_dir = lh_strdup(deps->results_dir ? deps->results_dir : srv->work_dir);
    srv->internal_engine = deps->internal_engine ? deps->internal_engine : deps->engine;
    srv->max_object_bytes = lh_config_int(cfg, "storage.max_object_bytes");
    srv->routes = ROUTES;
    srv->n_routes = N_ROUTES;
    srv->listen_fd = -1;
    srv->started_us = lh_now_us();
    atomic_init(&srv->access_log, lh_config_bool(cfg, "log.access"));
    atomic_init(&srv->in_flight, 0);
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->offloaded, 0);
    atomic_init(&srv->engine_ok_mono_us, INT64_MIN / 2);

    pthread_mutex_init(&srv->auth_lock, NULL);
    pthread_mutex_init(&srv->reload_lock, NULL);
    srv->offload = lh_kept_new(OFFLOAD_KEEP, OFFLOAD_IDLE_S);
    /* the first set borrows the start configuration; reloaded ones own theirs */
    int rc = lh_auth_new((lh_config *)cfg, false, &srv->auth, err);
    if (rc != 0)
        goto out;
    json_t *profile_warnings = lh_profiles_check(cfg);
    size_t i_warning;
    json_t *warning;
    json_array_foreach(profile_warnings, i_warning, warning)
    {
        lh_log(LH_LOG_WARN, NULL, NULL, "config: %s", json_string_value(warning));
    }
    json_decref(profile_warnings);
    lh_mcp_deps mcp_deps = {.config = cfg,
                            .catalog = deps->catalog,
                            .tools = deps->tools,
                            .workspaces = deps->workspaces};
    rc = lh_mcp_new(&mcp_deps, &srv->mcp, err);
    if (rc != 0)
        goto out;
    srv->tmp_dir = lh_sprintf("%s/tmp", lh_config_str(cfg, "server.data_dir"));
    if (mkdir(srv->tmp_dir, 0700) != 0 && errno != EEXIST) {
        rc = lh_err_set(err, LH_EIO, 0, "data_dir_unusable", "cannot create %s: %s", srv->tmp_dir,
                        strerror(errno));
        goto out;
    }
    rc = open_listener(lh_config_str(cfg, "server.host"), (int)lh_config_int(cfg, "server.port"),
                       &srv->listen_fd, &srv->port, err);
    if (rc != 0)
        goto out;
    srv->metrics = lh_http__metrics_new(srv->routes, srv->n_routes);
    /* Room for new connections: above 7/8 of max_connections a new connection closes the
     * oldest one still waiting for its headers (MHD itself stops accepting at the limit). */
    long max_conns = (long)lh_config_int(cfg, "server.max_connections");
    rc = lh_http__conns_new(lh_config_int(cfg, "server.header_timeout_ms") * 1000,
                            lh_config_int(cfg, "server.request_timeout_ms") * 1000,
                            max_conns - (max_conns + 7) / 8, &srv->conns, err);
    if (rc != 0)
        goto out;
    /* MHD's idle timeout (whole seconds) now only ends answers that a client stops reading:
     * the header and body deadlines are conns.c's, and it must not close a connection just
     * before conns.c answers it 408, so it is a second longer than either deadline. */
    int64_t longest_ms = lh_config_int(cfg, "server.request_timeout_ms");
    if (lh_config_int(cfg, "server.header_timeout_ms") > longest_ms)
        longest_ms = lh_config_int(cfg, "server.header_timeout_ms");
    unsigned idle_s = (unsigned)((longest_ms + 999) / 1000 + 1);
    srv->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
        accept_policy, srv, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
        MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_UNESCAPE_CALLBACK, unescape, srv,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)lh_config_int(cfg, "server.threads"),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)lh_config_int(cfg, "server.max_connections"),
        MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_NOTIFY_CONNECTION,
        lh_http__conns_notify, srv, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)lh_config_int(cfg, "server.max_connections_per_ip"), MHD_OPTION_END);
    if (srv->daemon == NULL)
        rc = lh_err_set(err, LH_EIO, 0, "listen_failed", "could not start the HTTP server");
out:
    if (rc != 0) {
        server_free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

int
lh_server_port(const lh_server *srv)
{
    return srv->port;
}

int
lh_server_shutdown(lh_server *srv, int64_t grace_ms)
{
    if (srv == NULL)
        return 0;
    atomic_store(&srv->stopping, true); /* accept_policy turns new connections away */
    int64_t give_up = lh_mono_us() + grace_ms * 1000;
    long left;
    while ((left = atomic_load(&srv->in_flight)) > 0 && lh_mono_us() < give_up) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* a handler on its own thread still uses its connection: it ends within its query's
     * time limit */
    while (atomic_load(&srv->offloaded) > 0) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* a request offloaded from now on is answered on its MHD thread; the pool itself is
     * freed with the server, after MHD's threads have stopped (one may still ask it) */
    lh_kept_stop(srv->offload);
    MHD_stop_daemon(srv->daemon);
    server_free(srv);
    return (int)left;
}
