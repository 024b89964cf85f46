/*
 * arena.c — per-request bump allocator. Blocks grow geometrically; a request's parsed
 * parameters and response pieces live here and die with lh_arena_free, which also runs
 * the registered cleanups (newest first) for resources that are not memory.
 */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_FIRST_BLOCK 4096
#define ARENA_ALIGN 16

typedef struct arena_block {
    struct arena_block *next;
    size_t size, used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_block;

typedef struct arena_cleanup {
    struct arena_cleanup *next;
    void (*fn)(void *);
    void *arg;
} arena_cleanup;

struct lh_arena {
    arena_block *blocks;
    arena_cleanup *cleanups;
    size_t next_size;
};

lh_arena *
lh_arena_new(void)
{
    lh_arena *a = lh_calloc(1, sizeof *a);
    a->next_size = ARENA_FIRST_BLOCK;
    return a;
}

void
lh_arena_free(lh_arena *a)
{
    if (a == NULL)
        return;
    for (arena_cleanup *c = a->cleanups; c;) {
        arena_cleanup *next = c->next;
        c->fn(c->arg);
        c = next; /* the cleanup records live in the blocks, freed below */
    }
    for (arena_block *b = a->blocks; b;) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *
lh_arena_alloc(lh_arena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_block *b = a->blocks;
    if (b == NULL || b->size - b->used < need) {
        size_t size = a->next_size;
        while (size < need)
            size *= 2;
        if (a->next_size < 1 << 20)
            a->next_size *= 2;
        b = lh_malloc(sizeof *b + size);
        b->size = size;
        b->used = 0;
        b->next = a->blocks;
        a->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

char *
lh_arena_strndup(lh_arena *a, const char *s, size_t n)
{
    char *d = lh_arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *
lh_arena_strdup(lh_arena *a, const char *s)
{
    return s ? lh_arena_strndup(a, s, strlen(s)) : NULL;
}

typedef struct arena_text {
    lh_arena *arena;
    char *text;
} arena_text;

static char *
reserve_arena(void *ctx, size_t size)
{
    arena_text *t = ctx;
    t->text = lh_arena_alloc(t->arena, size);
    return t->text;
}

char *
lh_arena_printf(lh_arena *a, const char *fmt, ...)
{
    arena_text t = {.arena = a, .text = NULL};
    va_list ap;
    va_start(ap, fmt);
    lh_core__vformat(reserve_arena, &t, fmt, ap);
    va_end(ap);
    return t.text;
}

void
lh_arena_on_cleanup(lh_arena *a, void (*fn)(void *), void *arg)
{
    arena_cleanup *c = lh_arena_alloc(a, sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
}
