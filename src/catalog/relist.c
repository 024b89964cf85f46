/*
 * relist.c — buckets whose datasets could not be listed when the catalog opened (an S3
 * endpoint down during a start): without this, their datasets stayed unknown until the
 * next restart, however soon the bucket came back. The relister thread lists each of them
 * again every relist_interval_ms; once one answers, its datasets and journal batches are
 * loaded as a start would load them, and it leaves c->unlisted (/health shows the list as
 * catalog.buckets_unlisted). The thread ends when no bucket is left, and at close.
 *
 * Thread safety: c->unlisted and the relist_* flags are guarded by the catalog lock,
 * which is never held across a listing or a load.
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static void *
relister(void *arg)
{
    lh_catalog *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->relist_closing && json_array_size(c->unlisted) > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (c->relist_interval_ms % 1000) * 1000000;
        until.tv_sec += c->relist_interval_ms / 1000 + ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        while (!c->relist_closing &&
               pthread_cond_timedwait(&c->relist_wake, &c->lock, &until) != ETIMEDOUT)
            ;
        if (c->relist_closing)
            break;
        json_t *names = json_deep_copy(c->unlisted);
        pthread_mutex_unlock(&c->lock);
        size_t i;
        json_t *name;
        json_array_foreach(names, i, name)
        {
            const char *bucket = json_string_value(name);
            int64_t datasets = 0, errors = 0;
            if (lh_catalog__load_bucket(c, bucket, &datasets, &errors) != 0)
                continue; /* still down: logged by the listing */
            pthread_mutex_lock(&c->lock);
            for (size_t j = 0; j < json_array_size(c->unlisted); j++)
                if (strcmp(json_string_value(json_array_get(c->unlisted, j)), bucket) == 0)
                    json_array_remove(c->unlisted, j--);
            pthread_mutex_unlock(&c->lock);
            json_t *fields = json_pack("{s:s, s:I, s:I}", "bucket", bucket, "datasets",
                                       (json_int_t)datasets, "load_errors", (json_int_t)errors);
            lh_log(LH_LOG_INFO, NULL, fields, "catalog: bucket listed again");
            json_decref(fields);
        }
        json_decref(names);
        pthread_mutex_lock(&c->lock);
    }
    c->relist_started = false; /* a bucket unlisted later starts it again */
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

void
lh_catalog__relist_start(lh_catalog *c)
{
    pthread_mutex_lock(&c->lock);
    if (!c->relist_started && !c->relist_closing && json_array_size(c->unlisted) > 0) {
        /* a thread that ended on its own is joined before another starts */
        if (c->relist_joinable)
            pthread_join(c->relist_thread, NULL);
        c->relist_joinable = false;
        int e = pthread_create(&c->relist_thread, NULL, relister, c);
        if (e != 0)
            lh_log(LH_LOG_WARN, NULL, NULL, "catalog: no relister thread: %s", strerror(e));
        else
            c->relist_started = c->relist_joinable = true;
    }
    pthread_mutex_unlock(&c->lock);
}

void
lh_catalog__relist_stop(lh_catalog *c)
{
    pthread_mutex_lock(&c->lock);
    c->relist_closing = true;
    pthread_cond_signal(&c->relist_wake);
    bool joinable = c->relist_joinable;
    c->relist_joinable = false;
    pthread_mutex_unlock(&c->lock);
    if (joinable)
        pthread_join(c->relist_thread, NULL);
}
