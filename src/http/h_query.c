/*
 * h_query.c — POST /query: user SQL, sandboxed, streamed as JSON, NDJSON or CSV.
 *
 * The query runs until its first row before the status line is sent, so most failures
 * (bad SQL 400, forbidden 403, timeout 408, first row too large 413) get a proper
 * status. Later failures can only end the stream: JSON gets an "error" member, NDJSON
 * a last error line, CSV an aborted transfer (no terminating chunk), and the log line
 * says what happened.
 */
#include "http/http_int.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

typedef struct stream {
    lh_query *q;
    int client_fd; /* asked by the engine whether the client is still there */
    char request_id[LH_REQUEST_ID_MAX];
    lh_query_format format;
    lh_buf head; /* bytes read ahead while deciding whether to stream at all */
    size_t head_pos;
    bool failed_early; /* the query failed during the read-ahead */
    /* the query as the module prepared it: the time travel and workspace views pin their
     * files until the stream is over */
    lh_user_query uq;
} stream;

/* Results up to this size are sent as one plain response (with Content-Length): a
 * streamed response costs extra round trips through the event loop for small answers. */
#define SMALL_RESULT (256 * 1024)

static ssize_t
read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *s = cls;
    if (s->head_pos < s->head.len) {
        size_t n = s->head.len - s->head_pos < max ? s->head.len - s->head_pos : max;
        memcpy(buf, s->head.data + s->head_pos, n);
        s->head_pos += n;
        return (ssize_t)n;
    }
    if (s->failed_early) /* only CSV gets here: it has no way to say so but to abort */
        return MHD_CONTENT_READER_END_WITH_ERROR;
    bool end, failed;
    lh_err err;
    size_t n = lh_query_read(s->q, buf, max, &end, &failed, &err);
    if (failed) {
        lh_log_err(LH_LOG_WARN, s->request_id, &err);
        if (s->format == LH_QUERY_CSV)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (n > 0)
        return (ssize_t)n;
    return end ? MHD_CONTENT_READER_END_OF_STREAM : 0;
}

static bool
client_gone(void *cls)
{
    const stream *s = cls;
    return lh_http__fd_closed(s->client_fd);
}

static void
free_stream(void *cls)
{
    stream *s = cls;
    lh_query_free(s->q);
    lh_user_query_release(&s->uq);
    lh_buf_free(&s->head);
    free(s);
}

static const char *const FIELDS[] = {"sql", "format", "limit", "as_of", "workspace_id", NULL};

/* Parquet is written whole (a Parquet footer comes last), into the work dir, then sent
 * as a file; the name is unlinked once open, so nothing stays behind. */
static int
answer_parquet(lh_req *req, lh_resp *resp, const lh_query_opts *opts, lh_err *err)
{
    char hex[17];
    lh_random_hex(hex, 8);
    char *path = lh_sprintf("%s/result-%s.parquet", req->srv->results_dir, hex);
    int64_t rows = 0;
    stream watch = {.client_fd = lh_req_fd(req)};
    lh_query_opts with_gone = *opts;
    with_gone.gone = (lh_gone_check){client_gone, &watch};
    bool rescue_used = false;
    with_gone.rescue_used = &rescue_used;
    int rc = lh_query_to_parquet(req->srv->engine, &with_gone, path, &rows, err);
    int fd = rc == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    unlink(path);
    free(path);
    if (rc != 0)
        return rc;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return lh_err_set(err, LH_EIO, 500, "result_unreadable", "could not read the result file");
    }
    if ((int64_t)st.st_size > opts->max_bytes) {
        close(fd);
        lh_err_set(err, LH_ETOOBIG, 413, "result_too_large",
                   "the result is over the limit of %lld bytes", (long long)opts->max_bytes);
        lh_err_hint(err, "select fewer columns or rows, or raise [engine] max_result_bytes");
        return LH_ETOOBIG;
    }
    lh_resp_fd(resp, 200, "application/vnd.apache.parquet", fd, 0, (int64_t)st.st_size);
    lh_resp_header(resp, "X-Lakehouse-Rows", lh_arena_printf(req->arena, "%lld", (long long)rows));
    if (rescue_used)
        lh_resp_header(resp, "X-Lakehouse-Rescue-Used", "true");
    return 0;
}

/* The error answer; a refusal for being busy says when to come back. */
static int
answer_error(lh_resp *resp, const lh_err *err)
{
    if (err->http_status == 429)
        lh_resp_header(resp, "Retry-After", "1");
    return lh_resp_error(resp, err);
}

int
lh_h_query(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL;
    /* the route admits every role so that the one rule on free-form SQL decides */
    if (lh_auth_may_write_sql(req->principal, &err) != 0 ||
        lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    int rc = lh_json_check_fields(
        body, FIELDS, "POST /query takes sql, format, limit, as_of and workspace_id", &err);
    json_t *sql = json_object_get(body, "sql");
    json_t *format = json_object_get(body, "format");
    json_t *limit = json_object_get(body, "limit");
    json_t *workspace_id = json_object_get(body, "workspace_id");
    lh_query_format fmt = LH_QUERY_JSON;
    bool parquet = false;
    if (rc == 0 && (!json_is_string(sql) || json_string_length(sql) == 0))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'sql' must be a non-empty string");
    if (rc == 0 && json_is_string(sql) && strlen(json_string_value(sql)) != json_string_length(sql))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "'sql' must not contain NUL");
    if (rc == 0 && format) {
        const char *f = json_is_string(format) ? json_string_value(format) : "";
        if (strcmp(f, "json") == 0)
            fmt = LH_QUERY_JSON;
        else if (strcmp(f, "ndjson") == 0)
            fmt = LH_QUERY_NDJSON;
        else if (strcmp(f, "csv") == 0)
            fmt = LH_QUERY_CSV;
        else if (strcmp(f, "parquet") == 0)
            parquet = true;
        else {
            rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                            "'format' must be \"json\", \"ndjson\", \"csv\" or \"parquet\"");
        }
    }
    int64_t max_rows = lh_config_int(req->config, "engine.max_row_limit");
    if (rc == 0 && limit && (!json_is_integer(limit) || json_integer_value(limit) < 1))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'limit' must be an integer from 1 to %lld", (long long)max_rows);
    if (rc == 0 && workspace_id && !json_is_string(workspace_id))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'workspace_id' must be a workspace's id, and cannot be combined "
                        "with 'as_of'");
    /* the rules of a user query, time travel, workspaces, limits: the module's. The
     * stream outlives the request's arena (MHD frees it with the response), and so does
     * the query asking it whether the client is still there. */
    stream *s = lh_calloc(1, sizeof *s);
    if (rc == 0)
        rc = lh_user_query_prepare(
            req->srv->catalog, req->srv->workspaces, req->principal, req->config,
            json_string_value(sql), limit ? json_integer_value(limit) : 0,
            json_object_get(body, "as_of"), json_string_value(workspace_id), &s->uq, &err);
    json_decref(body);
    if (rc != 0) {
        free(s);
        return lh_resp_error(resp, &err);
    }
    lh_query_opts opts = s->uq.opts;
    opts.format = fmt;
    if (parquet) {
        rc = answer_parquet(req, resp, &opts, &err);
        free_stream(s);
        return rc ? answer_error(resp, &err) : 0;
    }
    lh_query *q = NULL;
    s->client_fd = lh_req_fd(req);
    opts.gone = (lh_gone_check){client_gone, s};
    bool rescue_used = false;
    opts.rescue_used = &rescue_used;
    rc = lh_query_start(req->srv->engine, &opts, &q, &err);
    if (rc != 0) {
        free_stream(s);
        return answer_error(resp, &err);
    }
    if (rescue_used) /* invariant 7: a read that fell back says so */
        lh_resp_header(resp, "X-Lakehouse-Rescue-Used", "true");
    s->q = q;
    s->format = opts.format;
    memcpy(s->request_id, req->request_id, sizeof s->request_id);
    resp->status = 200;
    resp->content_type = opts.format == LH_QUERY_CSV      ? "text/csv; charset=utf-8"
                         : opts.format == LH_QUERY_NDJSON ? "application/x-ndjson"
                                                          : "application/json";
    /* read ahead: a small answer goes out whole, a large one streams after these bytes */
    lh_buf_init(&s->head);
    bool end = false, failed = false;
    char chunk[16384];
    while (!end && !failed && s->head.len < SMALL_RESULT) {
        size_t n = lh_query_read(q, chunk, sizeof chunk, &end, &failed, &err);
        lh_buf_append(&s->head, chunk, n);
    }
    if (failed)
        lh_log_err(LH_LOG_WARN, s->request_id, &err);
    s->failed_early = failed;
    if (end && !(failed && opts.format == LH_QUERY_CSV)) {
        lh_resp_text(resp, 200, resp->content_type, s->head.data ? s->head.data : "", s->head.len);
        free_stream(s);
        return 0;
    }
    resp->reader = read_stream;
    resp->reader_free = free_stream;
    resp->reader_ctx = s;
    return 0;
}
