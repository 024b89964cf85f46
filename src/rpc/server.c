/*
 * server.c — the gRPC server on the C core: one completion queue served by [grpc] threads
 * threads; every method registered with its payload read up front, and one call of each
 * always requested, so a call arrives with its request message.
 *
 * A unary call runs on the thread that took its arrival from the queue: it requests the
 * next call of the method, checks the token (`authorization: Bearer …` metadata) and the
 * role, turns the deadline into the time the module functions may take, runs the method,
 * and answers in one batch (initial metadata, the message or none, the status with its
 * details, and the close). The call is freed when that batch completes. The reflection
 * stream alternates reads and answers, one batch each. A server-streaming call (a query)
 * is bound to a completion queue of its own and runs on a thread of its own, which sends
 * each message and waits for it to be taken (so a slow client slows the query, and
 * memory stays one message); its close is watched so a cancel stops the work. A method the table
 * does not name arrives as an unregistered call and is answered UNIMPLEMENTED.
 *
 * Errors are the API's (lh_err): the HTTP status chooses the gRPC code, the message is
 * the status message, and the code, detail and hint go in grpc-status-details-bin as a
 * google.rpc.Status holding a google.rpc.ErrorInfo (domain "lakehouse", reason the code,
 * metadata detail/hint/http_status) and, for 429, a google.rpc.RetryInfo.
 */
#include "rpc/rpc_int.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h> /* after grpc.h, which it needs */
#include <grpc/support/time.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/status.pb-c.h"

/* What a completion-queue tag is: a call in one of its states, or the close watch of an
 * offloaded call (both begin with this int). */
enum { ST_NEW, ST_DONE, ST_READ, ST_UNKNOWN_NEW, ST_WATCH };

typedef struct gmethod_reg {
    const lh_gmethod *m;
    void *handle;
    bool stream; /* reflection */
} gmethod_reg;

/* Whether a method's call runs on a thread of its own (and a completion queue of its own). */
static bool
own_thread(const lh_gmethod *m)
{
    return m->server_stream || m->client_stream;
}

/* Whether a method's first message arrives with the call (registered with its payload). */
static bool
payload_first(const gmethod_reg *reg)
{
    return !reg->stream && reg->m->client_stream == NULL;
}

#define MAX_STREAMS 256 /* streaming calls running at once; more: RESOURCE_EXHAUSTED */
#define MAX_OFFLOADS                                                                               \
    256                 /* unary calls that may wait, running at once; more: RESOURCE_EXHAUSTED    \
                         */
#define KEEP_THREADS 32 /* idle kept threads (streams, offloaded calls) waiting for work */
#define KEEP_IDLE_S 30

struct lh_grpc {
    lh_grpc_deps deps;
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t *threads;
    int n_threads;
    int port;
    gmethod_reg *methods;
    size_t n_methods;
    atomic_bool stopping;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool shut; /* the server's shutdown tag came back */
    int shutdown_tag;
    int streams; /* streaming calls running (under lock) */
    struct {
        char name[65]; /* a principal ("" for public methods) */
        int n;         /* its streams; 0: a free entry */
    } owners[MAX_STREAMS];
    int offloads;  /* offloaded unary calls running (under lock) */
    lh_kept *kept; /* the threads of streams and offloaded calls */
};

typedef struct gcall gcall;
typedef struct close_watch {
    int state; /* ST_WATCH */
    gcall *c;
} close_watch;

struct gcall {
    int state;
    lh_grpc *g;
    gmethod_reg *reg; /* NULL: an unregistered method */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details; /* unregistered calls */
    grpc_byte_buffer *payload;
    grpc_byte_buffer *reply;
    grpc_slice status_details;
    bool has_status_details;
    grpc_slice details_bin;
    grpc_metadata trailing[1];
    size_t n_trailing;
    int cancelled;
    bool sent_initial;
    grpc_completion_queue *own_cq; /* a streaming call's: bound to it, plucked */
    /* an offloaded unary call: its close is watched apart from the answer, and the call is
     * freed when both have come back */
    close_watch watch;
    bool watched;
    int watch_cancelled;
    atomic_bool gone;
    atomic_int refs;
    /* an offloaded or streaming call's outcome, from its work to its answer (lh_kept_run's
     * done: sent once the thread counts itself idle, so the client's next call finds it) */
    int out_rc;
    lh_err out_err;
    int64_t out_retry_after_s;
    lh_gstream *stream; /* a streaming call's */
    uint8_t *in;        /* the request, when read early (a method's quick) */
    size_t in_len;
    /* the caller, when found early (a method's quick asks who calls): a reference to the
     * principal set it is in, handed to begin_call (or released with the call) */
    lh_auth *early_auth;
    const lh_principal *early_principal;
};

struct lh_gstream {
    gcall *c;
    pthread_mutex_t close_lock;
    bool closed, cancelled; /* the close came back; and whether the client cancelled */
    int close_tag, send_tag, status_tag, recv_tag;
};

/* ---- helpers the services share -------------------------------------------------------- */

int
lh_grpc__pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    *out = lh_malloc(*len ? *len : 1);
    protobuf_c_message_pack(m, *out);
    return 0;
}

int64_t
lh_grpc__time_limit(const lh_gcall *c, int64_t limit_ms)
{
    if (c->deadline_mono_us == INT64_MAX)
        return limit_ms;
    int64_t left_ms = (c->deadline_mono_us - lh_mono_us()) / 1000;
    if (left_ms < 1)
        left_ms = 1;
    return limit_ms == 0 || left_ms < limit_ms ? left_ms : limit_ms;
}

bool
lh_grpc__stopping(const lh_gcall *c)
{
    return atomic_load(&((const lh_grpc *)c->server)->stopping);
}

int
lh_grpc__bad_message(lh_err *err, const char *type)
{
    return lh_err_set(err, LH_EINVAL, 400, "invalid_argument",
                      "the request is not a valid %s message", type);
}

char *
lh_grpc__str(const char *s)
{
    return lh_strdup(s ? s : "");
}

/* ---- statuses -------------------------------------------------------------------------- */

static grpc_status_code
status_of(const lh_err *err)
{
    switch (err->http_status) {
    case 400:
    case 405:
    case 415:
    case 422:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case 401:
        return GRPC_STATUS_UNAUTHENTICATED;
    case 403:
        return GRPC_STATUS_PERMISSION_DENIED;
    case 404:
        return GRPC_STATUS_NOT_FOUND;
    case 408:
    case 504:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    case 409:
        return strstr(err->code, "exists") ? GRPC_STATUS_ALREADY_EXISTS
                                           : GRPC_STATUS_FAILED_PRECONDITION;
    case 412:
        return GRPC_STATUS_FAILED_PRECONDITION;
    case 413:
    case 414:
    case 429:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case 499:
        return GRPC_STATUS_CANCELLED;
    case 501:
        return GRPC_STATUS_UNIMPLEMENTED;
    case 502:
    case 503:
        return GRPC_STATUS_UNAVAILABLE;
    default:
        return GRPC_STATUS_INTERNAL;
    }
}

static Google__Protobuf__Any *
any_of(const char *type, const ProtobufCMessage *m)
{
    Google__Protobuf__Any *a = lh_malloc(sizeof *a);
    google__protobuf__any__init(a);
    a->type_url = lh_malloc(strlen(type) + 32);
    sprintf(a->type_url, "type.googleapis.com/%s", type);
    uint8_t *data;
    size_t len;
    lh_grpc__pack(m, &data, &len);
    a->value.data = data;
    a->value.len = len;
    return a;
}

/* google.rpc.Status for err, packed into c->details_bin. */
static void
status_details(gcall *c, grpc_status_code code, const lh_err *err, int64_t retry_after_s)
{
    Google__Rpc__ErrorInfo info = GOOGLE__RPC__ERROR_INFO__INIT;
    info.reason = (char *)err->code;
    info.domain = "lakehouse";
    Google__Rpc__ErrorInfo__MetadataEntry entries[3], *ents[3];
    char status[16];
    snprintf(status, sizeof status, "%d", err->http_status);
    const char *keys[3] = {"http_status", "detail", "hint"};
    const char *vals[3] = {status, err->detail[0] ? err->detail : NULL,
                           err->hint[0] ? err->hint : NULL};
    for (int i = 0; i < 3; i++) {
        if (vals[i] == NULL)
            continue;
        google__rpc__error_info__metadata_entry__init(&entries[info.n_metadata]);
        entries[info.n_metadata].key = (char *)keys[i];
        entries[info.n_metadata].value = (char *)vals[i];
        ents[info.n_metadata] = &entries[info.n_metadata];
        info.n_metadata++;
    }
    info.metadata = ents;
    Google__Protobuf__Any *details[2];
    size_t n = 0;
    details[n++] = any_of("google.rpc.ErrorInfo", &info.base);
    if (err->http_status == 429) {
        Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
        d.seconds = retry_after_s > 0 ? retry_after_s : 1;
        Google__Rpc__RetryInfo r = GOOGLE__RPC__RETRY_INFO__INIT;
        r.retry_delay = &d;
        details[n++] = any_of("google.rpc.RetryInfo", &r.base);
    }
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = (int32_t)code;
    st.message = (char *)err->message;
    st.details = details;
    st.n_details = n;
    uint8_t *data;
    size_t len;
    lh_grpc__pack(&st.base, &data, &len);
    for (size_t i = 0; i < n; i++) {
        free(details[i]->type_url);
        free(details[i]->value.data);
        free(details[i]);
    }
    c->details_bin = grpc_slice_from_copied_buffer((const char *)data, len);
    free(data);
    c->trailing[0].key = grpc_slice_from_static_string("grpc-status-details-bin");
    c->trailing[0].value = c->details_bin;
    c->n_trailing = 1;
}

/* ---- calls ------------------------------------------------------------------------------- */

static void arm(lh_grpc *g, gmethod_reg *reg);

static void
arm_unknown(lh_grpc *g)
{
    gcall *c = lh_calloc(1, sizeof *c);
    c->g = g;
    c->state = ST_UNKNOWN_NEW;
    atomic_init(&c->refs, 1);
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    if (grpc_server_request_call(g->server, &c->call, &c->details, &c->md, g->cq, g->cq, c) !=
        GRPC_CALL_OK) {
        grpc_metadata_array_destroy(&c->md);
        grpc_call_details_destroy(&c->details);
        free(c);
    }
}

static void
arm(lh_grpc *g, gmethod_reg *reg)
{
    gcall *c = lh_calloc(1, sizeof *c);
    c->g = g;
    c->reg = reg;
    c->state = ST_NEW;
    atomic_init(&c->refs, 1);
    grpc_metadata_array_init(&c->md);
    if (own_thread(reg->m))
        c->own_cq = grpc_completion_queue_create_for_pluck(NULL);
    if (grpc_server_request_registered_call(g->server, reg->handle, &c->call, &c->deadline, &c->md,
                                            payload_first(reg) ? &c->payload : NULL,
                                            c->own_cq ? c->own_cq : g->cq, g->cq,
                                            c) != GRPC_CALL_OK) {
        grpc_metadata_array_destroy(&c->md);
        if (c->own_cq) {
            grpc_completion_queue_shutdown(c->own_cq);
            grpc_completion_queue_destroy(c->own_cq);
        }
        free(c);
    }
}

static void
call_free(gcall *c)
{
    if (c->call)
        grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->md);
    if (c->reg == NULL) /* an unregistered call: its details were filled */
        grpc_call_details_destroy(&c->details);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    free(c->in);
    if (c->early_auth)
        lh_auth_release(c->early_auth);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    if (c->has_status_details)
        grpc_slice_unref(c->status_details);
    if (c->n_trailing)
        grpc_slice_unref(c->details_bin);
    if (c->own_cq) { /* every batch on it has been plucked: it is empty */
        grpc_completion_queue_shutdown(c->own_cq);
        while (
            grpc_completion_queue_pluck(c->own_cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                .type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(c->own_cq);
    }
    free(c);
}

/* The first ops of a batch that sends (room for 2, zeroed): the initial metadata unless
 * sent, then bb if any. Returns how many. */
static size_t
message_ops(gcall *c, grpc_op *ops, grpc_byte_buffer *bb)
{
    size_t n = 0;
    if (!c->sent_initial) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->sent_initial = true;
    }
    if (bb) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = bb;
        n++;
    }
    return n;
}

/* The ops of a call's answer into ops (room for 4): the initial metadata unless sent, the
 * reply if any, the status (with message and c's trailing details), and, with close, the
 * close. Returns how many. */
static size_t
answer_ops(gcall *c, grpc_op *ops, grpc_status_code code, const char *message, bool close)
{
    memset(ops, 0, 4 * sizeof *ops);
    size_t n = message_ops(c, ops, c->reply);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    if (message && *message) {
        c->status_details = grpc_slice_from_copied_string(message);
        c->has_status_details = true;
        ops[n].data.send_status_from_server.status_details = &c->status_details;
    }
    ops[n].data.send_status_from_server.trailing_metadata_count = c->n_trailing;
    ops[n].data.send_status_from_server.trailing_metadata = c->n_trailing ? c->trailing : NULL;
    n++;
    if (close) {
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
        n++;
    }
    return n;
}

/* Answer: the reply (may be NULL) and the status, in one batch with the close. */
/* Drop one of the call's references (an offloaded call has two: its answer and its close
 * watch; every other call one). */
static void
call_release(gcall *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        call_free(c);
}

static void
finish(gcall *c, grpc_status_code code, const char *message)
{
    grpc_op ops[4];
    size_t n = answer_ops(c, ops, code, message, !c->watched);
    c->state = ST_DONE;
    if (grpc_call_start_batch(c->call, ops, n, c, NULL) != GRPC_CALL_OK)
        call_release(c);
}

static void
fail(gcall *c, const lh_err *err, int64_t retry_after_s)
{
    grpc_status_code code = status_of(err);
    status_details(c, code, err, retry_after_s);
    if (c->reply) {
        grpc_byte_buffer_destroy(c->reply);
        c->reply = NULL;
    }
    finish(c, code, err->message);
}

static const char *
md_value(const grpc_metadata_array *md, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key, *v = &md->metadata[i].value;
        if (GRPC_SLICE_LENGTH(*k) == klen &&
            strncasecmp((const char *)GRPC_SLICE_START_PTR(*k), key, klen) == 0) {
            size_t n = GRPC_SLICE_LENGTH(*v);
            if (n >= size)
                return NULL;
            memcpy(buf, GRPC_SLICE_START_PTR(*v), n);
            buf[n] = '\0';
            return buf;
        }
    }
    return NULL;
}

/* bb's message (decompressed) in a new buffer; secret: wipe gRPC's copies of it, and bb's
 * own bytes, which nothing reads after this. */
static uint8_t *
read_buffer(grpc_byte_buffer *bb, size_t *len, bool secret)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return NULL;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    *len = GRPC_SLICE_LENGTH(s);
    uint8_t *out = lh_malloc(*len ? *len : 1);
    memcpy(out, GRPC_SLICE_START_PTR(s), *len);
    if (secret) {
        lh_wipe(GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
        for (size_t i = 0; bb->type == GRPC_BB_RAW && i < bb->data.raw.slice_buffer.count; i++) {
            grpc_slice *part = &bb->data.raw.slice_buffer.slices[i];
            lh_wipe(GRPC_SLICE_START_PTR(*part), GRPC_SLICE_LENGTH(*part));
        }
    }
    grpc_slice_unref(s);
    return out;
}

static void
set_reply(gcall *c, uint8_t *data, size_t len)
{
    grpc_slice s = grpc_slice_new(data, len, free);
    c->reply = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
}

/* Who calls a method that is not public: the principal of the call's token, if it may call
 * the method. *auth is a reference to the current principal set (its config is the call's)
 * the caller releases, whatever the answer. */
static int
who_calls(gcall *c, lh_auth **auth, const lh_principal **principal, lh_err *err)
{
    lh_grpc *g = c->g;
    char header[1024];
    const char *authz = md_value(&c->md, "authorization", header, sizeof header);
    *auth = g->deps.auth_current(g->deps.auth_ctx);
    *principal = lh_auth_check(*auth, authz, err);
    if (*principal == NULL)
        return LH_EPERM;
    return lh_auth_allow(*principal, c->reg->m->allow, err);
}

/* What every call does first: its deadline, its principal (the token, the role: found
 * early by quick_call, or here), its message. 0 with *in (malloc'd); *auth is a reference
 * (or NULL for public methods) the caller releases, whatever the answer. */
static int
begin_call(gcall *c, lh_gcall *gc, lh_auth **auth, uint8_t **in, size_t *in_len, lh_err *err)
{
    lh_grpc *g = c->g;
    const lh_gmethod *m = c->reg->m;
    *auth = NULL;
    *in = NULL;
    *gc = (lh_gcall){.deps = &g->deps, .config = g->deps.config, .method = m->path, .server = g};
    gpr_timespec mono = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    if (gpr_time_cmp(mono, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0) {
        gc->deadline_mono_us = INT64_MAX;
    } else {
        gpr_timespec left = gpr_time_sub(mono, now);
        gc->deadline_mono_us =
            lh_mono_us() + (int64_t)left.tv_sec * 1000000 + (int64_t)left.tv_nsec / 1000;
    }
    if (gc->deadline_mono_us != INT64_MAX && gc->deadline_mono_us <= lh_mono_us())
        return lh_err_set(err, LH_ETIMEOUT, 408, "deadline_exceeded",
                          "the call's deadline passed before it started");
    if (m->allow != LH_ALLOW_PUBLIC && c->early_auth) {
        *auth = c->early_auth;
        gc->config = (*auth)->config;
        gc->principal = c->early_principal;
        c->early_auth = NULL;
    } else if (m->allow != LH_ALLOW_PUBLIC) {
        int rc = who_calls(c, auth, &gc->principal, err);
        gc->config = (*auth)->config;
        if (rc != 0)
            return rc;
    }
    if (!payload_first(c->reg))
        return 0;
    if (c->in) { /* read early */
        *in = c->in;
        *in_len = c->in_len;
        c->in = NULL;
        return 0;
    }
    if (c->payload == NULL)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_argument", "the call sent no message");
    *in = read_buffer(c->payload, in_len, (c->reg->m->flags & LH_GSECRET) != 0);
    if (*in == NULL)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_argument",
                          "the message could not be read (an unknown compression?)");
    return 0;
}

static bool
unary_gone(void *ctx)
{
    return atomic_load(&((gcall *)ctx)->gone);
}

/* Run a unary call's method: its reply, or its error in c->out_*. */
static void
unary_work(gcall *c)
{
    lh_auth *auth = NULL;
    lh_gcall gc;
    uint8_t *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    int rc = begin_call(c, &gc, &auth, &in, &in_len, &c->out_err);
    if (c->watched)
        gc.gone = (lh_gone_check){unary_gone, c};
    if (rc == 0)
        rc = c->reg->m->unary(&gc, in, in_len, &out, &out_len, &c->out_err);
    free(in);
    if (auth)
        lh_auth_release(auth);
    c->out_rc = rc;
    c->out_retry_after_s = gc.retry_after_s;
    if (rc != 0) {
        free(out);
        if (c->out_err.http_status >= 500)
            lh_log_err(LH_LOG_ERROR, NULL, &c->out_err);
        return;
    }
    set_reply(c, out, out_len);
}

static void
unary_answer(gcall *c)
{
    if (c->out_rc != 0)
        fail(c, &c->out_err, c->out_retry_after_s);
    else
        finish(c, GRPC_STATUS_OK, NULL);
}

static void
run_unary(gcall *c)
{
    unary_work(c);
    unary_answer(c);
}

/* ---- server streams ---------------------------------------------------------------------- */

/* One batch on the call's own queue, waited for: whether it succeeded. A batch the client
 * does not take within SEND_WAIT_MS (a client that stopped reading) cancels the call, so
 * no thread, query slot or pinned file waits on it for ever. */
#define SEND_WAIT_MS 60000
static bool
batch_wait(gcall *c, grpc_op *ops, size_t n, void *tag)
{
    if (grpc_call_start_batch(c->call, ops, n, tag, NULL) != GRPC_CALL_OK)
        return false;
    gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                      gpr_time_from_millis(SEND_WAIT_MS, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_pluck(c->own_cq, tag, until, NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                     "nothing moved on the call for a minute", NULL);
        ev = grpc_completion_queue_pluck(c->own_cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Whether the close has come back (the client cancelled, went away, or the status was
 * sent); waits up to `wait`. */
static bool
stream_closed(lh_gstream *s, gpr_timespec wait)
{
    pthread_mutex_lock(&s->close_lock);
    if (!s->closed) {
        grpc_event ev = grpc_completion_queue_pluck(s->c->own_cq, &s->close_tag, wait, NULL);
        s->closed = ev.type == GRPC_OP_COMPLETE;
        if (s->closed)
            s->cancelled = s->c->cancelled != 0;
    }
    bool closed = s->closed;
    pthread_mutex_unlock(&s->close_lock);
    return closed;
}

bool
lh_grpc__gone(void *stream)
{
    lh_gstream *s = stream;
    return stream_closed(s, gpr_time_0(GPR_CLOCK_REALTIME)) && s->cancelled;
}

int
lh_grpc__send(lh_gstream *s, const ProtobufCMessage *m, lh_err *err)
{
    gcall *c = s->c;
    uint8_t *data;
    size_t len;
    lh_grpc__pack(m, &data, &len);
    grpc_slice slice = grpc_slice_new(data, len, free);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = message_ops(c, ops, bb);
    bool ok = batch_wait(c, ops, n, &s->send_tag);
    grpc_byte_buffer_destroy(bb);
    if (!ok)
        return lh_err_set(err, LH_EIO, 499, "client_gone", "the client went away");
    return 0;
}

/* Count a stream of `who` unless it has cap open already: whether it may run. */
static bool
owner_take(lh_grpc *g, const char *who, int64_t cap)
{
    pthread_mutex_lock(&g->lock);
    int free_slot = -1, found = -1;
    for (int i = 0; i < MAX_STREAMS && found < 0; i++) {
        if (g->owners[i].n > 0 && strcmp(g->owners[i].name, who) == 0)
            found = i;
        else if (g->owners[i].n == 0 && free_slot < 0)
            free_slot = i;
    }
    bool ok = found >= 0 ? g->owners[found].n < cap : free_slot >= 0;
    if (ok && found < 0) {
        found = free_slot;
        snprintf(g->owners[found].name, sizeof g->owners[found].name, "%s", who);
    }
    if (ok)
        g->owners[found].n++;
    pthread_mutex_unlock(&g->lock);
    return ok;
}

static void
owner_give(lh_grpc *g, const char *who)
{
    pthread_mutex_lock(&g->lock);
    for (int i = 0; i < MAX_STREAMS; i++)
        if (g->owners[i].n > 0 && strcmp(g->owners[i].name, who) == 0) {
            g->owners[i].n--;
            break;
        }
    pthread_mutex_unlock(&g->lock);
}

int
lh_grpc__recv(lh_gstream *s, uint8_t **msg, size_t *len, lh_err *err)
{
    gcall *c = s->c;
    *msg = NULL;
    *len = 0;
    grpc_byte_buffer *bb = NULL;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &bb;
    if (!batch_wait(c, &op, 1, &s->recv_tag)) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        return lh_err_set(err, LH_EIO, 499, "client_gone",
                          "the client went away or sent nothing for a minute");
    }
    if (bb == NULL) {
        /* The end of the messages: a half-close, or a cancel, which ends the reading the
         * same way and may do so before the close comes back. A cancel has closed the
         * stream both ways, so sending the initial metadata now fails; after a half-close
         * it goes out (the answer follows it). */
        grpc_op probe[2];
        memset(probe, 0, sizeof probe);
        size_t n = message_ops(c, probe, NULL);
        if ((n > 0 && !batch_wait(c, probe, n, &s->send_tag)) || lh_grpc__gone(s))
            return lh_err_set(err, LH_ECANCELED, 499, "client_gone", "the client cancelled");
        return 0;
    }
    *msg = read_buffer(bb, len, false);
    grpc_byte_buffer_destroy(bb);
    if (*msg == NULL)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_argument",
                          "a message could not be read (an unknown compression?)");
    return 0;
}

/* A streaming call's work on its kept thread: the handler, then the status it ends with
 * (stream_done sends it). */
static void
stream_work(void *arg)
{
    gcall *c = arg;
    lh_grpc *g = c->g;
    lh_gstream *s = lh_calloc(1, sizeof *s);
    s->c = c;
    c->stream = s;
    pthread_mutex_init(&s->close_lock, NULL);
    grpc_op close_op;
    memset(&close_op, 0, sizeof close_op);
    close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    close_op.data.recv_close_on_server.cancelled = &c->cancelled;
    c->watched = /* the close is watched by its own batch */
        grpc_call_start_batch(c->call, &close_op, 1, &s->close_tag, NULL) == GRPC_CALL_OK;
    s->closed = !c->watched;
    lh_err *err = &c->out_err;
    lh_auth *auth = NULL;
    lh_gcall gc;
    uint8_t *in = NULL;
    size_t in_len = 0;
    int rc = begin_call(c, &gc, &auth, &in, &in_len, err);
    gc.gone = (lh_gone_check){lh_grpc__gone, s};
    char owner[65] = "";
    bool counted = false;
    if (rc == 0 && gc.principal) { /* public watches (health) have the global cap only */
        snprintf(owner, sizeof owner, "%s", gc.principal->name);
        int64_t cap = lh_config_int(gc.config, "grpc.max_streams_per_principal");
        counted = owner_take(g, owner, cap);
        if (!counted) {
            rc = lh_err_set(err, LH_ETOOBIG, 429, "too_many_streams",
                            "%s has %lld streaming calls open already", owner, (long long)cap);
            lh_err_hint(err, "close one (or let it end), or raise [grpc] "
                             "max_streams_per_principal");
            gc.retry_after_s = 1;
        }
    }
    if (rc == 0)
        rc = c->reg->m->client_stream ? c->reg->m->client_stream(&gc, s, err)
                                      : c->reg->m->server_stream(&gc, in, in_len, s, err);
    free(in);
    if (counted)
        owner_give(g, owner);
    if (auth)
        lh_auth_release(auth);
    c->out_rc = rc;
    c->out_retry_after_s = gc.retry_after_s;
    if (rc != 0 && err->http_status >= 500 && err->http_status != 499)
        lh_log_err(LH_LOG_ERROR, NULL, err);
}

/* Its end, once the thread counts itself idle: the status, the close, the call freed.
 * Work queued for this thread meanwhile waits for it, which is short: every message before
 * the status waited until the client took it, and the status (trailers) is not held by
 * flow control; the close comes back once the status is out. */
static void
stream_done(void *arg)
{
    gcall *c = arg;
    lh_grpc *g = c->g;
    lh_gstream *s = c->stream;
    grpc_status_code code = GRPC_STATUS_OK;
    if (c->out_rc != 0) {
        code = status_of(&c->out_err);
        status_details(c, code, &c->out_err, c->out_retry_after_s);
    }
    grpc_op ops[4];
    size_t n = answer_ops(c, ops, code, c->out_rc != 0 ? c->out_err.message : NULL, false);
    batch_wait(c, ops, n, &s->status_tag);
    if (c->watched)
        stream_closed(s, gpr_inf_future(GPR_CLOCK_REALTIME));
    pthread_mutex_destroy(&s->close_lock);
    free(s);
    call_free(c);
    pthread_mutex_lock(&g->lock);
    g->streams--;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Answer a call with err and nothing else. A server-streaming call's batch is on its own
 * queue: waited for here. */
static void
refuse(gcall *c, const lh_err *err, int64_t retry_after_s)
{
    if (c->own_cq == NULL) {
        fail(c, err, retry_after_s);
        return;
    }
    grpc_status_code code = status_of(err);
    status_details(c, code, err, retry_after_s);
    grpc_op ops[4];
    size_t n = answer_ops(c, ops, code, err->message, true);
    batch_wait(c, ops, n, c);
    call_free(c);
}

/* A call that arrived while the server stops: UNAVAILABLE, which clients retry elsewhere. */
static void
refuse_stopping(gcall *c)
{
    lh_err err;
    lh_err_set(&err, LH_EUNAVAIL, 503, "shutting_down", "the server is shutting down");
    lh_err_hint(&err, "retry on another server, or once this one is back");
    refuse(c, &err, 0);
}

static void
start_stream(gcall *c)
{
    lh_grpc *g = c->g;
    pthread_mutex_lock(&g->lock); /* counted under the lock the shutdown sets stopping in */
    bool stopping = atomic_load(&g->stopping), room = !stopping && g->streams < MAX_STREAMS;
    if (room)
        g->streams++;
    pthread_mutex_unlock(&g->lock);
    if (stopping) {
        refuse_stopping(c);
        return;
    }
    lh_err err;
    if (room && lh_kept_run(g->kept, stream_work, stream_done, c, &err) == 0)
        return;
    if (room) { /* no thread to be had: err says why */
        pthread_mutex_lock(&g->lock);
        g->streams--;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->lock);
    } else {
        lh_err_set(&err, LH_ETOOBIG, 429, "too_many_streams",
                   "%d streaming calls are running already", MAX_STREAMS);
        lh_err_hint(&err, "retry when one of them has finished");
    }
    refuse(c, &err, 1);
}

/* Whether an offloaded method's request is one its quick says cannot wait, asked by its
 * caller (the request is read here and kept for the method, and so is the caller: the
 * token is checked once). A caller refused is answered at once, here. */
static bool
quick_call(gcall *c)
{
    const lh_gmethod *m = c->reg->m;
    if (m->quick == NULL || c->payload == NULL)
        return false;
    c->in = read_buffer(c->payload, &c->in_len, false);
    if (c->in == NULL)
        return false;
    lh_grpc *g = c->g;
    lh_gcall gc = {.deps = &g->deps, .config = g->deps.config, .method = m->path, .server = g};
    if (m->allow != LH_ALLOW_PUBLIC) {
        lh_auth *auth = NULL;
        lh_err refused;
        if (who_calls(c, &auth, &gc.principal, &refused) != 0) {
            lh_auth_release(auth); /* begin_call finds the error again */
            return true;
        }
        c->early_auth = auth;
        c->early_principal = gc.principal;
        gc.config = auth->config;
    }
    return m->quick(&gc, c->in, c->in_len);
}

/* An offloaded unary call on its kept thread: the method, then (done) the answer. */
static void
offload_work(void *arg)
{
    unary_work(arg);
}

static void
offload_done(void *arg)
{
    gcall *c = arg;
    lh_grpc *g = c->g;
    unary_answer(c); /* c may be freed once its answer is sent */
    pthread_mutex_lock(&g->lock);
    g->offloads--;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Hand a unary call that may wait to a kept thread, with LH_GOFFLOAD | LH_GWATCH its close
 * watched first so the method can tell a cancelled call (gc->gone). Without a thread it
 * runs here. */
static void
offload_call(gcall *c)
{
    lh_grpc *g = c->g;
    if (!(c->reg->m->flags & LH_GWATCH))
        goto hand_off;
    c->watch.state = ST_WATCH;
    c->watch.c = c;
    c->watched = true;
    atomic_store(&c->refs, 2);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->watch_cancelled;
    if (grpc_call_start_batch(c->call, &op, 1, &c->watch, NULL) != GRPC_CALL_OK) {
        c->watched = false;
        atomic_store(&c->refs, 1);
        run_unary(c);
        return;
    }
hand_off:
    pthread_mutex_lock(&g->lock);
    bool stopping = atomic_load(&g->stopping), room = !stopping && g->offloads < MAX_OFFLOADS;
    if (room)
        g->offloads++;
    pthread_mutex_unlock(&g->lock);
    lh_err err;
    if (!room) { /* stopping: answered here; too many waiting already: refused */
        if (stopping) {
            run_unary(c);
            return;
        }
        lh_err_set(&err, LH_ETOOBIG, 429, "too_many_calls",
                   "%d calls that may wait are running already", MAX_OFFLOADS);
        lh_err_hint(&err, "retry when some have finished");
        fail(c, &err, 1);
        return;
    }
    if (lh_kept_run(g->kept, offload_work, offload_done, c, &err) != 0) {
        offload_work(c); /* no thread to be had: here, as before */
        offload_done(c);
    }
}

/* The reflection stream: read a request, answer it, read the next, until the client
 * half-closes. */
static void
stream_read(gcall *c)
{
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    size_t n = message_ops(c, ops, c->reply);
    if (c->payload) {
        grpc_byte_buffer_destroy(c->payload);
        c->payload = NULL;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &c->payload;
    n++;
    c->state = ST_READ;
    if (grpc_call_start_batch(c->call, ops, n, c, NULL) != GRPC_CALL_OK)
        call_free(c);
}

static void
stream_step(gcall *c)
{
    if (c->reply) { /* sent with the read that just completed */
        grpc_byte_buffer_destroy(c->reply);
        c->reply = NULL;
    }
    if (c->payload == NULL) { /* the client is done */
        finish(c, GRPC_STATUS_OK, NULL);
        return;
    }
    size_t len;
    uint8_t *in = read_buffer(c->payload, &len, false), *out = NULL;
    size_t out_len = 0;
    if (in == NULL || lh_grpc__reflect(in, len, &out, &out_len) != 0) {
        free(in);
        lh_err err;
        lh_grpc__bad_message(&err, "grpc.reflection.v1alpha.ServerReflectionRequest");
        fail(c, &err, 0);
        return;
    }
    free(in);
    set_reply(c, out, out_len);
    stream_read(c);
}

static void
on_event(lh_grpc *g, void *tag, bool ok)
{
    if (*(int *)tag == ST_WATCH) { /* an offloaded call's close: cancelled, or answered */
        gcall *w = ((close_watch *)tag)->c;
        atomic_store(&w->gone, ok && w->watch_cancelled != 0);
        call_release(w);
        return;
    }
    gcall *c = tag;
    switch (c->state) {
    case ST_NEW:
        if (!ok) {
            call_release(c);
            return;
        }
        if (atomic_load(&g->stopping)) {
            refuse_stopping(c);
            return;
        }
        arm(g, c->reg);
        if (c->reg->stream)
            stream_read(c);
        else if (own_thread(c->reg->m))
            start_stream(c);
        else if ((c->reg->m->flags & LH_GOFFLOAD) && !quick_call(c))
            offload_call(c);
        else
            run_unary(c);
        return;
    case ST_UNKNOWN_NEW: {
        if (!ok) {
            call_release(c);
            return;
        }
        if (atomic_load(&g->stopping)) {
            refuse_stopping(c);
            return;
        }
        arm_unknown(g);
        char msg[256];
        snprintf(msg, sizeof msg, "no method %.*s on this server",
                 (int)GRPC_SLICE_LENGTH(c->details.method),
                 (const char *)GRPC_SLICE_START_PTR(c->details.method));
        lh_err err;
        lh_err_set(&err, LH_ENOTFOUND, 501, "unimplemented", "%s", msg);
        lh_err_hint(&err, "the services are lakehouse.v1's Catalog, Vectors, Query, Tools, "
                          "Journal, Rows, Jobs and Ingest, grpc.health.v1.Health and server "
                          "reflection");
        fail(c, &err, 0);
        return;
    }
    case ST_READ:
        if (!ok) {
            if (c->reply) { /* went out with the failed batch */
                grpc_byte_buffer_destroy(c->reply);
                c->reply = NULL;
            }
            finish(c, GRPC_STATUS_CANCELLED, "the stream broke");
            return;
        }
        stream_step(c);
        return;
    case ST_DONE:
    default:
        call_release(c);
        return;
    }
}

static void *
serve_thread(void *arg)
{
    lh_grpc *g = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (ev.tag == &g->shutdown_tag) {
            pthread_mutex_lock(&g->lock);
            g->shut = true;
            pthread_cond_broadcast(&g->cond);
            pthread_mutex_unlock(&g->lock);
            continue;
        }
        on_event(g, ev.tag, ev.success != 0);
    }
    return NULL;
}

/* ---- start and stop ---------------------------------------------------------------------- */

static const struct {
    const lh_gmethod *table;
    const size_t *n;
} TABLES[] = {
    {lh_grpc__catalog, &lh_grpc__n_catalog}, {lh_grpc__vectors, &lh_grpc__n_vectors},
    {lh_grpc__health, &lh_grpc__n_health},   {lh_grpc__query, &lh_grpc__n_query},
    {lh_grpc__tools, &lh_grpc__n_tools},     {lh_grpc__journal, &lh_grpc__n_journal},
    {lh_grpc__rows, &lh_grpc__n_rows},       {lh_grpc__jobs, &lh_grpc__n_jobs},
    {lh_grpc__ingest, &lh_grpc__n_ingest},
};

static const lh_gmethod REFLECTION = {
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    LH_ALLOW_PUBLIC,
    NULL,
    NULL,
    NULL,
    0,
    NULL};

int
lh_grpc_start(const lh_grpc_deps *deps, lh_grpc **out, lh_err *err)
{
    *out = NULL;
    int port = (int)lh_config_int(deps->config, "grpc.port");
    if (port == 0)
        return 0;
    lh_grpc *g = lh_calloc(1, sizeof *g);
    g->deps = *deps;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->kept = lh_kept_new(KEEP_THREADS, KEEP_IDLE_S);
    grpc_init();
    int max_msg = (int)lh_config_int(deps->config, "grpc.max_message_bytes");
    grpc_arg args[4];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = max_msg;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = 64 * 1024 * 1024;
    /* a peer that vanished without a FIN is found within a minute and a half */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_KEEPALIVE_TIME_MS;
    args[2].value.integer = 60000;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
    args[3].value.integer = 20000;
    grpc_channel_args chargs = {4, args};
    g->server = grpc_server_create(&chargs, NULL);
    g->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(g->server, g->cq, NULL);
    size_t n = 1;
    for (size_t t = 0; t < sizeof TABLES / sizeof TABLES[0]; t++)
        n += *TABLES[t].n;
    g->methods = lh_calloc(n, sizeof *g->methods);
    for (size_t t = 0; t < sizeof TABLES / sizeof TABLES[0]; t++)
        for (size_t i = 0; i < *TABLES[t].n; i++)
            g->methods[g->n_methods++].m = &TABLES[t].table[i];
    g->methods[g->n_methods].m = &REFLECTION;
    g->methods[g->n_methods++].stream = true;
    for (size_t i = 0; i < g->n_methods; i++)
        g->methods[i].handle = grpc_server_register_method(
            g->server, g->methods[i].m->path, NULL,
            payload_first(&g->methods[i]) ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
                                          : GRPC_SRM_PAYLOAD_NONE,
            0);
    const char *host = lh_config_str(deps->config, "server.host");
    char addr[300];
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    g->port = grpc_server_add_http2_port(g->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (g->port <= 0) {
        grpc_server_destroy(g->server);
        grpc_completion_queue_shutdown(g->cq);
        while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(g->cq);
        free(g->methods);
        lh_kept_free(g->kept);
        free(g);
        grpc_shutdown_blocking();
        return lh_err_set(err, LH_EEXIST, 500, "grpc_bind_failed",
                          "gRPC could not listen on %s (in use, or not an address of this host)",
                          addr);
    }
    grpc_server_start(g->server);
    for (size_t i = 0; i < g->n_methods; i++)
        arm(g, &g->methods[i]);
    arm_unknown(g);
    g->n_threads = (int)lh_config_int(deps->config, "grpc.threads");
    g->threads = lh_calloc((size_t)g->n_threads, sizeof *g->threads);
    for (int i = 0; i < g->n_threads; i++)
        pthread_create(&g->threads[i], NULL, serve_thread, g);
    *out = g;
    return 0;
}

int
lh_grpc_port(const lh_grpc *g)
{
    return g ? g->port : 0;
}

void
lh_grpc_shutdown(lh_grpc *g, int64_t grace_ms)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->lock); /* a call counted from now on sees it (start_stream) */
    atomic_store(&g->stopping, true);
    pthread_mutex_unlock(&g->lock);
    grpc_server_shutdown_and_notify(g->server, g->cq, &g->shutdown_tag);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += grace_ms / 1000;
    until.tv_nsec += (grace_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&g->lock);
    while (!g->shut)
        if (pthread_cond_timedwait(&g->cond, &g->lock, &until) != 0)
            break;
    bool shut = g->shut;
    pthread_mutex_unlock(&g->lock);
    if (!shut) {
        grpc_server_cancel_all_calls(g->server);
        pthread_mutex_lock(&g->lock);
        while (!g->shut)
            pthread_cond_wait(&g->cond, &g->lock);
        pthread_mutex_unlock(&g->lock);
    }
    /* the server's shutdown came back once every call ended: the stream threads are
     * finishing their last steps */
    pthread_mutex_lock(&g->lock);
    while (g->streams > 0 || g->offloads > 0)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    lh_kept_stop(g->kept); /* freed once no completion-queue thread can ask it */
    grpc_completion_queue_shutdown(g->cq);
    for (int i = 0; i < g->n_threads; i++)
        pthread_join(g->threads[i], NULL);
    lh_kept_free(g->kept);
    grpc_server_destroy(g->server);
    grpc_completion_queue_destroy(g->cq);
    grpc_shutdown_blocking();
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g->threads);
    free(g->methods);
    free(g);
}
