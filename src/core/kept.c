/*
 * kept.c — kept threads: work that may block (a handler waiting for a query slot, a
 * stream that lives as long as its client) runs on a thread of its own, and the thread is
 * kept afterwards for the next piece of work instead of exiting. Starting a thread —
 * clone, a stack mapped, and unmapped at its exit — costs more than a fast piece of work
 * (a search) itself.
 *
 * Work never waits for a busy thread: with none idle, a new one starts. A thread whose
 * work is done waits up to idle_s for more, when fewer than `keep` wait already; else it
 * exits. Each thread counts itself idle before calling the work's `done`, so work that
 * `done` makes possible (a client's next request, sent once it has the answer) finds it.
 */
#include "core/core.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct kept_work {
    void (*work)(void *arg);
    void (*done)(void *arg);
    void *arg;
    struct kept_work *next;
} kept_work;

struct lh_kept {
    pthread_mutex_t lock;
    pthread_cond_t more; /* work queued, or the stop */
    pthread_cond_t gone; /* a thread exited */
    kept_work *head, **tail;
    int keep, idle_s;
    int threads, idle, queued;
    bool stop;
    int64_t handed, started; /* work run; threads started */
};

lh_kept *
lh_kept_new(int keep, int idle_s)
{
    lh_kept *k = lh_calloc(1, sizeof *k);
    pthread_mutex_init(&k->lock, NULL);
    pthread_cond_init(&k->more, NULL);
    pthread_cond_init(&k->gone, NULL);
    k->tail = &k->head;
    k->keep = keep;
    k->idle_s = idle_s;
    return k;
}

/* The next queued work for this idle thread (counted in k->idle; under k->lock), or NULL
 * after waiting idle_s or at the stop. */
static kept_work *
next_work(lh_kept *k)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += k->idle_s;
    while (k->head == NULL && !k->stop)
        if (pthread_cond_timedwait(&k->more, &k->lock, &until) == ETIMEDOUT)
            break;
    k->idle--;
    kept_work *w = k->head;
    if (w) {
        k->head = w->next;
        if (k->head == NULL)
            k->tail = &k->head;
        k->queued--;
    }
    return w;
}

typedef struct kept_start {
    lh_kept *k;
    kept_work *w;
} kept_start;

static void *
thread_main(void *arg)
{
    kept_start *s = arg;
    lh_kept *k = s->k;
    kept_work *w = s->w;
    free(s);
    for (;;) {
        w->work(w->arg);
        pthread_mutex_lock(&k->lock);
        bool stays = k->idle < k->keep && !k->stop;
        if (stays)
            k->idle++;
        pthread_mutex_unlock(&k->lock);
        if (w->done)
            w->done(w->arg);
        free(w);
        pthread_mutex_lock(&k->lock);
        w = stays ? next_work(k) : NULL;
        if (w == NULL) {
            k->threads--;
            pthread_cond_broadcast(&k->gone);
            pthread_mutex_unlock(&k->lock);
            return NULL;
        }
        pthread_mutex_unlock(&k->lock);
    }
}

int
lh_kept_run(lh_kept *k, void (*work)(void *), void (*done)(void *), void *arg, lh_err *err)
{
    kept_work *w = lh_calloc(1, sizeof *w);
    w->work = work;
    w->done = done;
    w->arg = arg;
    pthread_mutex_lock(&k->lock);
    if (k->stop) {
        pthread_mutex_unlock(&k->lock);
        free(w);
        return lh_err_set(err, LH_EUNAVAIL, 503, "shutting_down", "the server is shutting down");
    }
    k->handed++;
    if (k->idle > k->queued) { /* an idle thread takes it */
        *k->tail = w;
        k->tail = &w->next;
        k->queued++;
        pthread_cond_signal(&k->more);
        pthread_mutex_unlock(&k->lock);
        return 0;
    }
    k->threads++;
    k->started++;
    pthread_mutex_unlock(&k->lock);
    kept_start *s = lh_malloc(sizeof *s);
    s->k = k;
    s->w = w;
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int started = pthread_create(&thread, &attr, thread_main, s);
    pthread_attr_destroy(&attr);
    if (started == 0)
        return 0;
    pthread_mutex_lock(&k->lock);
    k->threads--;
    pthread_cond_broadcast(&k->gone);
    pthread_mutex_unlock(&k->lock);
    free(s);
    free(w);
    return lh_err_set(err, LH_EUNAVAIL, 503, "no_thread", "no thread could be started (%d)",
                      started);
}

void
lh_kept_stats(lh_kept *k, int64_t *handed, int64_t *started, int *threads, int *idle)
{
    pthread_mutex_lock(&k->lock);
    *handed = k->handed;
    *started = k->started;
    *threads = k->threads;
    *idle = k->idle;
    pthread_mutex_unlock(&k->lock);
}

void
lh_kept_stop(lh_kept *k)
{
    if (k == NULL)
        return;
    pthread_mutex_lock(&k->lock);
    k->stop = true;
    pthread_cond_broadcast(&k->more);
    while (k->threads > 0)
        pthread_cond_wait(&k->gone, &k->lock);
    pthread_mutex_unlock(&k->lock);
}

void
lh_kept_free(lh_kept *k)
{
    if (k == NULL)
        return;
    lh_kept_stop(k);
    pthread_mutex_destroy(&k->lock);
    pthread_cond_destroy(&k->more);
    pthread_cond_destroy(&k->gone);
    free(k);
}
