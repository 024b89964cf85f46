/*
 * ratelimit.c — token buckets by key for tool calls: one per (principal, tool) from the
 * tool's rate, one per principal from [tools] max_calls_per_minute.
 *
 * A bucket holds up to `burst` tokens and gains per_minute / 60 tokens per second of the
 * caller's clock; a call takes one token from every bucket it names, all or none. One
 * lock covers every bucket, so callers racing for the last tokens are admitted exactly
 * as if they had come one after the other: never more than the tokens there were. The
 * lock is held for a few arithmetic steps only. Buckets live in a chained hash table
 * that only grows (one entry per principal and per principal-tool pair seen).
 */
#include "agent/agent_int.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RATE_SLOTS 1024

typedef struct bucket {
    struct bucket *next;
    char *key;
    double tokens;
    int64_t at_us; /* when tokens was last brought up to date */
} bucket;

struct lh_rate {
    pthread_mutex_t lock;
    bucket *slots[RATE_SLOTS];
};

lh_rate *
lh_agent__rate_new(void)
{
    lh_rate *r = lh_calloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void
lh_agent__rate_free(lh_rate *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < RATE_SLOTS; i++) {
        for (bucket *b = r->slots[i], *next; b; b = next) {
            next = b->next;
            free(b->key);
            free(b);
        }
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static size_t
slot_of(const char *key)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 1099511628211ull;
    return (size_t)(h % RATE_SLOTS);
}

/* The bucket of key, created full; under the lock. */
static bucket *
find(lh_rate *r, const lh_rate_limit *l, int64_t now_us)
{
    size_t s = slot_of(l->key);
    for (bucket *b = r->slots[s]; b; b = b->next)
        if (strcmp(b->key, l->key) == 0)
            return b;
    bucket *b = lh_calloc(1, sizeof *b);
    b->key = lh_strdup(l->key);
    b->tokens = l->burst;
    b->at_us = now_us;
    b->next = r->slots[s];
    r->slots[s] = b;
    return b;
}

/* Bring b up to now; a clock that went back changes nothing. */
static void
refill(bucket *b, const lh_rate_limit *l, int64_t now_us)
{
    if (now_us > b->at_us) {
        b->tokens += (double)(now_us - b->at_us) * l->per_minute / 60e6;
        if (b->tokens > l->burst)
            b->tokens = l->burst;
        b->at_us = now_us;
    }
}

bool
lh_agent__rate_take(lh_rate *r, const lh_rate_limit *limits, size_t n, int64_t now_us,
                    int64_t *retry_after_us)
{
    bucket *found[4];
    assert(n <= sizeof found / sizeof found[0]);
    int64_t wait_us = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < n; i++) {
        found[i] = find(r, &limits[i], now_us);
        refill(found[i], &limits[i], now_us);
        /* a tiny epsilon: tokens accrue in floating point */
        if (found[i]->tokens < 1.0 - 1e-9) {
            double need_us = (1.0 - found[i]->tokens) * 60e6 / limits[i].per_minute;
            int64_t w = (int64_t)ceil(need_us);
            if (w > wait_us)
                wait_us = w;
        }
    }
    bool admitted = wait_us == 0;
    for (size_t i = 0; admitted && i < n; i++)
        found[i]->tokens -= 1.0;
    pthread_mutex_unlock(&r->lock);
    if (!admitted)
        *retry_after_us = wait_us;
    return admitted;
}
