/*
 * conns.c — every open connection of the gateway, so that slow clients cannot hold it.
 *
 * libmicrohttpd's connection timeout is an idle timeout: each byte a client trickles
 * resets it, so a client that sends one header line every few seconds keeps its
 * connection (and its slot) forever, and enough of them fill max_connections, after
 * which MHD stops accepting and /health hangs. This file adds what MHD 0.9.75 lacks:
 *
 *   header deadline  a connection must complete its request headers within
 *                    header_timeout_us of opening (or of its previous answer, for a kept-
 *                    alive connection); past it the sweeper closes the connection.
 *   body deadline    a request whose body has not fully arrived by its deadline gets a
 *                    408 and is closed, whether the body trickles or has stopped.
 *   room             when the open connections reach the soft limit, a new connection
 *                    closes the oldest one still waiting for its headers; when none is,
 *                    the new connection's request is answered 503 (MHD itself would stop
 *                    accepting at its hard limit, leaving clients hanging in the backlog).
 *
 * Each connection has a record (MHD's socket context) in one list under `lock`. Its phase
 * changes by compare-and-swap, so exactly one of the MHD worker that owns the connection
 * and the sweeper decides what happens to it: WAITING -> (BUSY | BODY) -> WAITING ... and
 * at any time -> CLOSING once the sweeper has claimed it. The sweeper touches a
 * connection only through its socket (shutdown(2), and send(2) of a 408 while MHD is only
 * reading), under `lock`; MHD reports a connection closed before it closes the socket,
 * and that report takes `lock` to unlink the record, so the socket is open while listed.
 *
 * Thread safety: the MHD callbacks run on MHD's workers, the sweep on its own thread.
 */
#include "http/http_int.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum {
    PHASE_WAITING, /* reading request headers (or idle between requests) */
    PHASE_BUSY,    /* headers in, no body to wait for: the handler or the answer runs */
    PHASE_BODY,    /* headers in, the request body is arriving */
    PHASE_CLOSING, /* claimed by the sweeper: closed, or answered 408 and closed */
};

struct lh_conn {
    struct lh_conn *prev, *next;
    int fd;
    atomic_int phase;
    atomic_llong since_mono_us; /* WAITING: when it began; BODY: the request's deadline */
    atomic_bool timed_out;      /* a 408 was sent for its request */
    bool overflow;              /* opened with no room: its request gets 503 */
    char request_id[LH_REQUEST_ID_MAX];
};

struct lh_conns {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    lh_conn *head; /* newest first */
    long n_open;
    long soft_limit;
    int64_t header_timeout_us;
    int64_t request_timeout_us;
    bool stop;
    bool started;
    pthread_t sweeper;
    atomic_llong closed_slow; /* closed for a missed header deadline or to make room */
    atomic_llong timed_out;   /* 408s sent for bodies */
};

/* ---- the 408, written straight to the socket ---------------------------------------- */

/* MHD can queue an answer only before it reads a body or after all of it, so an answer
 * for a body that never finishes is written here, while MHD is only reading. The socket
 * is fresh for writing (nothing was sent on this request), so the few hundred bytes fit
 * its buffer; a client that does not read them loses nothing but its own answer. */
static void
send_408(lh_conns *conns, lh_conn *c)
{
    lh_err err;
    lh_err_set(&err, LH_ETIMEOUT, 408, "request_timeout",
               "the request body did not arrive within %lld ms",
               (long long)(conns->request_timeout_us / 1000));
    lh_err_hint(&err, "send faster, or raise [server] request_timeout_ms");
    json_t *j = lh_err_to_json(&err);
    char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (body == NULL)
        abort(); /* only on out-of-memory */
    char *msg = lh_sprintf("HTTP/1.1 408 Request Timeout\r\n"
                           "Connection: close\r\n"
                           "Content-Type: application/json\r\n"
                           "Cache-Control: no-store\r\n"
                           "X-Request-Id: %s\r\n"
                           "Content-Length: %zu\r\n\r\n%s\n",
                           c->request_id, strlen(body) + 1, body);
    free(body);
    (void)send(c->fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
    free(msg);
}

/* Claim c for closing when it is still in `phase`; the caller holds conns->lock. */
static bool
claim(lh_conns *conns, lh_conn *c, int phase)
{
    int expected = phase;
    if (!atomic_compare_exchange_strong(&c->phase, &expected, PHASE_CLOSING))
        return false;
    if (phase == PHASE_BODY) {
        send_408(conns, c);
        atomic_store(&c->timed_out, true);
        atomic_fetch_add(&conns->timed_out, 1);
    } else {
        atomic_fetch_add(&conns->closed_slow, 1);
    }
    /* MHD sees end-of-file on its next read and closes the connection itself */
    shutdown(c->fd, phase == PHASE_BODY ? SHUT_RD : SHUT_RDWR);
    return true;
}

/* ---- the sweeper --------------------------------------------------------------------- */

static void
sweep_once(lh_conns *conns)
{
    int64_t now = lh_mono_us();
    pthread_mutex_lock(&conns->lock);
    for (lh_conn *c = conns->head; c; c = c->next) {
        int phase = atomic_load(&c->phase);
        int64_t since = atomic_load(&c->since_mono_us);
        if (phase == PHASE_WAITING && now - since > conns->header_timeout_us)
            claim(conns, c, PHASE_WAITING);
        else if (phase == PHASE_BODY && now > since)
            claim(conns, c, PHASE_BODY);
    }
    pthread_mutex_unlock(&conns->lock);
}

static void *
sweeper_main(void *arg)
{
    lh_conns *conns = arg;
    /* a quarter of the shortest deadline, between 10 ms and 250 ms */
    int64_t shortest = conns->header_timeout_us < conns->request_timeout_us
                           ? conns->header_timeout_us
                           : conns->request_timeout_us;
    int64_t period_us = shortest / 4;
    period_us = period_us < 10000 ? 10000 : period_us > 250000 ? 250000 : period_us;
    pthread_mutex_lock(&conns->lock);
    while (!conns->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + period_us * 1000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&conns->wake, &conns->lock, &ts);
        if (conns->stop)
            break;
        pthread_mutex_unlock(&conns->lock);
        sweep_once(conns);
        pthread_mutex_lock(&conns->lock);
    }
    pthread_mutex_unlock(&conns->lock);
    return NULL;
}

/* ---- life cycle ---------------------------------------------------------------------- */

int
lh_http__conns_new(int64_t header_timeout_us, int64_t request_timeout_us, long soft_limit,
                   lh_conns **out, lh_err *err)
{
    lh_conns *conns = lh_calloc(1, sizeof *conns);
    pthread_mutex_init(&conns->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&conns->wake, &attr);
    pthread_condattr_destroy(&attr);
    conns->header_timeout_us = header_timeout_us;
    conns->request_timeout_us = request_timeout_us;
    conns->soft_limit = soft_limit;
    atomic_init(&conns->closed_slow, 0);
    atomic_init(&conns->timed_out, 0);
    int e = pthread_create(&conns->sweeper, NULL, sweeper_main, conns);
    if (e != 0) {
        lh_http__conns_free(conns);
        return lh_err_set(err, LH_EIO, 0, "thread_failed",
                          "could not start the connection sweeper: %s", strerror(e));
    }
    conns->started = true;
    *out = conns;
    return 0;
}

void
lh_http__conns_free(lh_conns *conns)
{
    if (conns == NULL)
        return;
    if (conns->started) {
        pthread_mutex_lock(&conns->lock);
        conns->stop = true;
        pthread_cond_signal(&conns->wake);
        pthread_mutex_unlock(&conns->lock);
        pthread_join(conns->sweeper, NULL);
    }
    /* MHD reported every connection closed when its daemon stopped */
    pthread_cond_destroy(&conns->wake);
    pthread_mutex_destroy(&conns->lock);
    free(conns);
}

/* Called with conns->lock held when a new connection finds no room: close the oldest
 * connection still waiting for its headers. Returns false when there is none. */
static bool
make_room(lh_conns *conns, const lh_conn *newcomer)
{
    lh_conn *oldest = NULL;
    int64_t oldest_since = INT64_MAX;
    for (lh_conn *c = conns->head; c; c = c->next) {
        if (c == newcomer || atomic_load(&c->phase) != PHASE_WAITING)
            continue;
        int64_t since = atomic_load(&c->since_mono_us);
        if (since < oldest_since) {
            oldest = c;
            oldest_since = since;
        }
    }
    return oldest && claim(conns, oldest, PHASE_WAITING);
}

void
lh_http__conns_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    lh_server *srv = cls;
    lh_conns *conns = srv->conns;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        lh_conn *c = lh_calloc(1, sizeof *c);
        c->fd = info ? info->connect_fd : -1;
        atomic_init(&c->phase, PHASE_WAITING);
        atomic_init(&c->since_mono_us, lh_mono_us());
        atomic_init(&c->timed_out, false);
        pthread_mutex_lock(&conns->lock);
        c->next = conns->head;
        if (conns->head)
            conns->head->prev = c;
        conns->head = c;
        conns->n_open++;
        if (conns->n_open > conns->soft_limit && !make_room(conns, c))
            c->overflow = true;
        pthread_mutex_unlock(&conns->lock);
        *socket_context = c;
        return;
    }
    lh_conn *c = *socket_context;
    if (c == NULL)
        return;
    pthread_mutex_lock(&conns->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    conns->n_open--;
    pthread_mutex_unlock(&conns->lock);
    *socket_context = NULL;
    free(c);
}

/* ---- the request's side ------------------------------------------------------------------ */

lh_conn *
lh_http__conn_of(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

bool
lh_http__conn_headers_done(lh_conn *c, const char *request_id, int64_t body_deadline_mono_us)
{
    if (c == NULL)
        return true;
    snprintf(c->request_id, sizeof c->request_id, "%s", request_id);
    int expected = PHASE_WAITING;
    if (body_deadline_mono_us > 0) {
        atomic_store(&c->since_mono_us, body_deadline_mono_us);
        return atomic_compare_exchange_strong(&c->phase, &expected, PHASE_BODY);
    }
    return atomic_compare_exchange_strong(&c->phase, &expected, PHASE_BUSY);
}

bool
lh_http__conn_overflow(const lh_conn *c)
{
    return c && c->overflow;
}

bool
lh_http__conn_body_done(lh_conn *c)
{
    if (c == NULL)
        return true;
    int expected = PHASE_BODY;
    return atomic_compare_exchange_strong(&c->phase, &expected, PHASE_BUSY) ||
           expected == PHASE_BUSY;
}

bool
lh_http__conn_closing(lh_conn *c)
{
    return c && atomic_load(&c->phase) == PHASE_CLOSING;
}

bool
lh_http__conn_request_done(lh_conn *c)
{
    if (c == NULL)
        return false;
    bool timed_out = atomic_exchange(&c->timed_out, false);
    int phase = atomic_load(&c->phase);
    if (phase != PHASE_CLOSING) {
        atomic_store(&c->since_mono_us, lh_mono_us());
        atomic_compare_exchange_strong(&c->phase, &phase, PHASE_WAITING);
    }
    return timed_out;
}

void
lh_http__conns_stats(lh_conns *conns, long *open, int64_t *closed_slow, int64_t *timed_out)
{
    pthread_mutex_lock(&conns->lock);
    *open = conns->n_open;
    pthread_mutex_unlock(&conns->lock);
    *closed_slow = atomic_load(&conns->closed_slow);
    *timed_out = atomic_load(&conns->timed_out);
}
