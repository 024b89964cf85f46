/*
 * slots.c — how many user queries run at once, and whose.
 *
 * A user query (lh_query_start, lh_query_to_parquet, and lh_engine_scan with a principal)
 * takes a slot before it takes a connection and gives it back when it is freed. At most
 * max_queries slots are taken at once, at most per_principal of them by one principal;
 * a query that finds none free waits in one first-come first-served line, where it is
 * passed over while its principal already holds its share, so another principal's query
 * gets the next free slot. At most queued_per_principal queries of one principal wait;
 * the next is refused at once (429 too_many_queries). The wait counts against the query's
 * time limit (its deadline is set before it waits): one that waits past it is a 408
 * saying so. A waiting query whose client went away (the caller's gone callback) leaves
 * the line.
 *
 * Why a bound: every running query takes DuckDB's worker threads, memory and a
 * connection; past a few at once they only slow each other down, and a caller sending
 * many would take them all.
 *
 * Thread safety: everything is under slots_lock; waiters sleep on slots_cond, woken when
 * a slot is given back and at least every WAIT_TICK_MS to check their deadline and their
 * client. No other engine lock is taken while slots_lock is held.
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_TICK_MS 50

/* One principal's use of the slots: running and waiting queries. */
typedef struct slot_user {
    char name[LH_SLOT_NAME_MAX];
    int running, waiting;
} slot_user;

/* A query waiting for a slot, in the line (oldest first). */
typedef struct slot_waiter {
    slot_user *user;
    struct slot_waiter *next;
} slot_waiter;

struct lh_slot {
    char name[LH_SLOT_NAME_MAX];
};

void
lh_engine__slots_init(lh_engine *eng, const lh_engine_opts *opts)
{
    pthread_mutex_init(&eng->slots_lock, NULL);
    pthread_cond_init(&eng->slots_cond, NULL);
    eng->slots_max = opts->max_queries;
    eng->slots_per_principal = opts->max_queries_per_principal > 0 ? opts->max_queries_per_principal
                                                                   : (opts->max_queries + 1) / 2;
    if (eng->slots_per_principal < 1)
        eng->slots_per_principal = 1;
    eng->slots_queue_per_principal = opts->max_queued_per_principal;
}

void
lh_engine_set_principal_limits(lh_engine *eng, int max_queries_per_principal,
                               int max_queued_per_principal)
{
    pthread_mutex_lock(&eng->slots_lock);
    eng->slots_per_principal =
        max_queries_per_principal > 0 ? max_queries_per_principal : (eng->slots_max + 1) / 2;
    if (eng->slots_per_principal < 1)
        eng->slots_per_principal = 1;
    eng->slots_queue_per_principal = max_queued_per_principal;
    pthread_cond_broadcast(&eng->slots_cond);
    pthread_mutex_unlock(&eng->slots_lock);
}

void
lh_engine__slots_destroy(lh_engine *eng)
{
    free(eng->slot_users);
    pthread_cond_destroy(&eng->slots_cond);
    pthread_mutex_destroy(&eng->slots_lock);
}

/* The principal's entry (made on first use). Under slots_lock. Entries are few (one per
 * principal with a query running or waiting) and go when both counts are 0. */
static slot_user *
user_of(lh_engine *eng, const char *name)
{
    for (size_t i = 0; i < eng->n_slot_users; i++)
        if (strcmp(eng->slot_users[i]->name, name) == 0)
            return eng->slot_users[i];
    if (eng->n_slot_users == eng->cap_slot_users) {
        eng->cap_slot_users = eng->cap_slot_users ? eng->cap_slot_users * 2 : 8;
        eng->slot_users =
            lh_realloc(eng->slot_users, eng->cap_slot_users * sizeof *eng->slot_users);
    }
    slot_user *u = lh_calloc(1, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s", name);
    eng->slot_users[eng->n_slot_users++] = u;
    return u;
}

static void
user_release(lh_engine *eng, slot_user *u)
{
    if (u->running > 0 || u->waiting > 0)
        return;
    for (size_t i = 0; i < eng->n_slot_users; i++)
        if (eng->slot_users[i] == u) {
            eng->slot_users[i] = eng->slot_users[--eng->n_slot_users];
            break;
        }
    free(u);
}

/* Whether the waiter w may take a slot now: one is free, its principal is below its share,
 * and no waiter before it in the line could take it. Under slots_lock. */
static bool
my_turn(const lh_engine *eng, const slot_waiter *w)
{
    if (eng->slots_running >= eng->slots_max || w->user->running >= eng->slots_per_principal)
        return false;
    for (const slot_waiter *o = eng->slot_line; o && o != w; o = o->next)
        if (o->user->running < eng->slots_per_principal)
            return false;
    return true;
}

static void
line_remove(lh_engine *eng, slot_waiter *w)
{
    for (slot_waiter **link = &eng->slot_line; *link; link = &(*link)->next)
        if (*link == w) {
            *link = w->next;
            return;
        }
}

static void
timed_wait(lh_engine *eng, int64_t deadline_mono_us)
{
    int64_t wait_us = WAIT_TICK_MS * 1000;
    if (deadline_mono_us > 0) {
        int64_t left = deadline_mono_us - lh_mono_us();
        if (left < wait_us)
            wait_us = left > 0 ? left : 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(wait_us / 1000000);
    ts.tv_nsec += (long)(wait_us % 1000000) * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&eng->slots_cond, &eng->slots_lock, &ts);
}

static int
refuse_queue_full(lh_engine *eng, const char *name, lh_err *err)
{
    atomic_fetch_add(&eng->n_refused, 1);
    lh_err_set(err, LH_EUNAVAIL, 429, "too_many_queries",
               "too many queries of this caller are running or waiting");
    lh_err_detail(err, "principal '%s': %d running, %d waiting (the most allowed)", name,
                  eng->slots_per_principal, eng->slots_queue_per_principal);
    lh_err_hint(err, "wait for an answer before sending more, or raise [engine] "
                     "max_queries_per_principal / max_queued_per_principal");
    return LH_EUNAVAIL;
}

static int
waited_too_long(lh_engine *eng, lh_err *err)
{
    atomic_fetch_add(&eng->n_queue_timeouts, 1);
    lh_err_set(err, LH_ETIMEOUT, 408, "query_timeout",
               "the query waited for a slot past its time limit");
    lh_err_detail(err, "%d queries were running (the most at once)", eng->slots_max);
    lh_err_hint(err, "try again when the server is less busy, or raise [engine] "
                     "max_concurrent_queries or query_timeout_ms");
    return LH_ETIMEOUT;
}

int
lh_engine__slot_take(lh_engine *eng, const char *principal, int64_t deadline_mono_us,
                     const lh_gone_check *gone, lh_slot **out, lh_err *err)
{
    const char *name = principal ? principal : "";
    int rc = 0;
    if (eng->slots_max <= 0) { /* unbounded: still counted, and a token to give back */
        atomic_fetch_add(&eng->n_running, 1);
        *out = lh_calloc(1, sizeof **out);
        return 0;
    }
    pthread_mutex_lock(&eng->slots_lock);
    slot_user *u = user_of(eng, name);
    slot_waiter me = {.user = u};
    /* the line's tail: a newcomer goes last */
    slot_waiter **tail = &eng->slot_line;
    while (*tail)
        tail = &(*tail)->next;
    *tail = &me;
    if (!my_turn(eng, &me)) {
        if (eng->slots_queue_per_principal > 0 && u->waiting >= eng->slots_queue_per_principal) {
            line_remove(eng, &me);
            rc = refuse_queue_full(eng, name, err);
            goto out;
        }
        u->waiting++;
        atomic_fetch_add(&eng->n_queued, 1);
        while (!my_turn(eng, &me) && rc == 0) {
            if (deadline_mono_us > 0 && lh_mono_us() >= deadline_mono_us)
                rc = waited_too_long(eng, err);
            else if (gone && gone->fn && gone->fn(gone->ctx))
                rc = lh_engine__client_gone(eng, err);
            else
                timed_wait(eng, deadline_mono_us);
        }
        u->waiting--;
        atomic_fetch_sub(&eng->n_queued, 1);
    }
    line_remove(eng, &me);
    if (rc == 0) {
        u->running++;
        eng->slots_running++;
        atomic_fetch_add(&eng->n_running, 1);
    }
    /* leaving the line may make another waiter the first that can go */
    pthread_cond_broadcast(&eng->slots_cond);
out:
    user_release(eng, u);
    pthread_mutex_unlock(&eng->slots_lock);
    if (rc != 0)
        return rc;
    *out = lh_calloc(1, sizeof **out);
    snprintf((*out)->name, sizeof(*out)->name, "%s", name);
    return 0;
}

void
lh_engine__slot_give(lh_engine *eng, lh_slot *slot)
{
    if (slot == NULL)
        return;
    if (eng->slots_max > 0) {
        pthread_mutex_lock(&eng->slots_lock);
        slot_user *u = user_of(eng, slot->name);
        u->running--;
        eng->slots_running--;
        atomic_fetch_sub(&eng->n_running, 1);
        user_release(eng, u);
        pthread_cond_broadcast(&eng->slots_cond);
        pthread_mutex_unlock(&eng->slots_lock);
    } else {
        atomic_fetch_sub(&eng->n_running, 1);
    }
    free(slot);
}

int
lh_engine__gone_error(lh_err *err)
{
    lh_err_set(err, LH_ECANCELED, 499, "client_gone",
               "the query was cancelled: its client went away");
    lh_err_hint(err, "keep the connection open until the answer arrives");
    return LH_ECANCELED;
}

int
lh_engine__client_gone(lh_engine *eng, lh_err *err)
{
    atomic_fetch_add(&eng->n_cancelled, 1);
    return lh_engine__gone_error(err);
}

void
lh_engine_load(lh_engine *eng, lh_engine_load_stats *out)
{
    *out = (lh_engine_load_stats){
        .max_running = eng->slots_max,
        .running = atomic_load(&eng->n_running),
        .queued = atomic_load(&eng->n_queued),
        .cancelled = atomic_load(&eng->n_cancelled),
        .queue_timeouts = atomic_load(&eng->n_queue_timeouts),
        .refused = atomic_load(&eng->n_refused),
    };
}
