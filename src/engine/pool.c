/*
 * pool.c — connections for user queries, kept between queries, each with a small cache of
 * the statements it prepared.
 *
 * Why: DuckDB binds a statement that reads Parquet files again on every execution
 * (its multi-file scans refuse the statement cache: always_require_rebind), so a
 * prepared statement costs two binds, prepare and execute; and the C API streams results
 * only from prepared statements. Binding a view over Parquet files is most of what a small
 * query costs (0.5 ms for a one-table aggregate, 1.5 ms for a three-table join on the demo
 * data; see bench/query). Keeping the prepared statement for the next query of the same
 * text leaves one bind, the one every execution does anyway.
 *
 * Correctness: a statement over Parquet files is rebound at every execution, but one over
 * a view without files (an empty dataset) is not, and a rebind keeps the prepared
 * statement's column names. So a kept statement records the engine's catalog_generation
 * read before it was prepared; every internal statement (view definitions) bumps the
 * generation before and after it runs, and a statement of another generation is never
 * executed again. The caller also checks the executed result's column names and types
 * against the prepared ones and prepares afresh when they differ.
 *
 * Resources: a kept statement holds its scans' first files open. So the cache is small
 * (POOL_IDLE_MAX x POOL_STMTS statements), and a connection drops every statement it kept
 * when the engine's views changed since (catalog_generation, bumped by each internal
 * statement; idle connections are swept right then, busy ones when next taken): files
 * replaced, compacted or deleted are let go instead of staying open, and taking space,
 * until evicted.
 *
 * A pooled connection carries no other state: user statements are SELECTs (admission) on
 * a database whose configuration is locked; queries that run statements of their own
 * first (as_of views) take a connection of their own instead, and one that may have
 * seeded the connection's random numbers (setseed) is closed, not given back.
 *
 * Thread safety: the idle list is under pool_lock; a taken connection and its cache belong
 * to one query at a time.
 */
#include "engine/engine_int.h"

#include <string.h>

#define POOL_IDLE_MAX 16 /* idle connections kept; more are closed when given back */
#define POOL_STMTS 32    /* statements cached per connection (least recently used go) */

typedef struct cached_stmt {
    char *key;
    duckdb_prepared_statement prep;
    uint64_t used;       /* for LRU */
    uint64_t generation; /* eng->catalog_generation read before it was prepared */
    json_t *names;       /* the table names it uses (q->names), or NULL */
} cached_stmt;

struct lh_pooled {
    duckdb_connection con;
    cached_stmt stmts[POOL_STMTS];
    size_t n_stmts;
    uint64_t clock;
    uint64_t generation; /* eng->catalog_generation when the statements were kept */
    /* query_allow.c's parse-tree statement: names no view, so kept across generations */
    duckdb_prepared_statement serializer;
    struct lh_pooled *next;
};

static void
forget_all(lh_pooled *pc)
{
    for (size_t i = 0; i < pc->n_stmts; i++) {
        free(pc->stmts[i].key);
        duckdb_destroy_prepare(&pc->stmts[i].prep);
        json_decref(pc->stmts[i].names);
    }
    pc->n_stmts = 0;
}

static void
pooled_free(lh_pooled *pc)
{
    forget_all(pc);
    duckdb_destroy_prepare(&pc->serializer);
    duckdb_disconnect(&pc->con);
    free(pc);
}

duckdb_prepared_statement
lh_engine__pool_serializer(lh_pooled *pc, const char *sql)
{
    if (pc->serializer == NULL && duckdb_prepare(pc->con, sql, &pc->serializer) == DuckDBError)
        duckdb_destroy_prepare(&pc->serializer);
    return pc->serializer;
}

lh_pooled *
lh_engine__pool_take(lh_engine *eng)
{
    pthread_mutex_lock(&eng->pool_lock);
    lh_pooled *pc = eng->pool_idle;
    if (pc) {
        eng->pool_idle = pc->next;
        eng->pool_n_idle--;
    }
    pthread_mutex_unlock(&eng->pool_lock);
    uint64_t generation = atomic_load(&eng->catalog_generation);
    if (pc) {
        if (pc->generation != generation) /* views changed since: let old files go */
            forget_all(pc);
        pc->generation = generation;
        return pc;
    }
    pc = lh_calloc(1, sizeof *pc);
    pc->generation = generation;
    if (duckdb_connect(eng->db, &pc->con) == DuckDBError) {
        free(pc);
        return NULL;
    }
    return pc;
}

void
lh_engine__pool_give(lh_engine *eng, lh_pooled *pc)
{
    if (pc == NULL)
        return;
    pthread_mutex_lock(&eng->pool_lock);
    bool keep = eng->pool_n_idle < POOL_IDLE_MAX && !eng->pool_closed;
    if (keep) {
        pc->next = eng->pool_idle;
        eng->pool_idle = pc;
        eng->pool_n_idle++;
    }
    pthread_mutex_unlock(&eng->pool_lock);
    if (!keep)
        pooled_free(pc);
}

void
lh_engine__pool_sweep(lh_engine *eng)
{
    uint64_t generation = atomic_load(&eng->catalog_generation);
    pthread_mutex_lock(&eng->pool_lock);
    for (lh_pooled *pc = eng->pool_idle; pc; pc = pc->next)
        if (pc->generation != generation) {
            forget_all(pc);
            pc->generation = generation;
        }
    pthread_mutex_unlock(&eng->pool_lock);
}

void
lh_engine__pool_close(lh_engine *eng)
{
    pthread_mutex_lock(&eng->pool_lock);
    lh_pooled *pc = eng->pool_idle;
    eng->pool_idle = NULL;
    eng->pool_n_idle = 0;
    eng->pool_closed = true;
    pthread_mutex_unlock(&eng->pool_lock);
    while (pc) {
        lh_pooled *next = pc->next;
        pooled_free(pc);
        pc = next;
    }
}

duckdb_connection
lh_engine__pool_con(lh_pooled *pc)
{
    return pc->con;
}

static void
forget_at(lh_pooled *pc, size_t i)
{
    free(pc->stmts[i].key);
    duckdb_destroy_prepare(&pc->stmts[i].prep);
    json_decref(pc->stmts[i].names);
    pc->stmts[i] = pc->stmts[--pc->n_stmts];
}

duckdb_prepared_statement
lh_engine__pool_lookup(lh_pooled *pc, const char *key, uint64_t generation, const json_t **names)
{
    for (size_t i = 0; i < pc->n_stmts; i++)
        if (strcmp(pc->stmts[i].key, key) == 0) {
            if (pc->stmts[i].generation != generation) { /* views changed since */
                forget_at(pc, i);
                return NULL;
            }
            pc->stmts[i].used = ++pc->clock;
            *names = pc->stmts[i].names;
            return pc->stmts[i].prep;
        }
    return NULL;
}

void
lh_engine__pool_keep(lh_pooled *pc, const char *key, duckdb_prepared_statement prep,
                     uint64_t generation, json_t *names)
{
    lh_engine__pool_forget(pc, key); /* a retry may keep a text this connection had */
    size_t slot = pc->n_stmts;
    if (slot == POOL_STMTS) { /* full: the least recently used goes */
        slot = 0;
        for (size_t i = 1; i < pc->n_stmts; i++)
            if (pc->stmts[i].used < pc->stmts[slot].used)
                slot = i;
        free(pc->stmts[slot].key);
        duckdb_destroy_prepare(&pc->stmts[slot].prep);
        json_decref(pc->stmts[slot].names);
    } else {
        pc->n_stmts++;
    }
    pc->stmts[slot] = (cached_stmt){.key = lh_strdup(key),
                                    .prep = prep,
                                    .used = ++pc->clock,
                                    .generation = generation,
                                    .names = json_incref(names)};
}

void
lh_engine__pool_forget(lh_pooled *pc, const char *key)
{
    for (size_t i = 0; i < pc->n_stmts; i++)
        if (strcmp(pc->stmts[i].key, key) == 0) {
            forget_at(pc, i);
            return;
        }
}

void
lh_engine__pool_discard(lh_pooled *pc)
{
    if (pc)
        pooled_free(pc);
}
