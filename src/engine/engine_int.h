/*
 * engine_int.h — internals of src/engine. Not used outside this folder.
 */
#ifndef LH_ENGINE_INT_H
#define LH_ENGINE_INT_H

#include "engine/engine.h"

typedef struct lh_pooled lh_pooled;

#include <duckdb.h>
#include <pthread.h>
#include <stdatomic.h>

struct lh_engine {
    duckdb_database db;
    /* running user queries, for the time-limit watchdog */
    pthread_mutex_t watch_lock;
    struct lh_query *watched;
    atomic_int n_watched; /* the watchdog sleeps while this is 0 */
    pthread_t watchdog;
    bool watchdog_started;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
    bool watchdog_idle; /* waiting for a query to start (under stop_lock) */
    /* open writers, found by id by the lh_writer_scan table function (writer.c) */
    pthread_mutex_t writers_lock;
    struct lh_writer *writers;
    bool writer_scan_registered;
    /* idle connections for user queries, with their prepared statements (pool.c) */
    atomic_uint_fast64_t catalog_generation; /* bumped by every internal statement */
    pthread_mutex_t pool_lock;
    lh_pooled *pool_idle;
    int pool_n_idle;
    bool pool_closed;
};

/* Interrupt every watched query past its deadline. */
void lh_engine__watchdog_scan(lh_engine *eng);
/* A query was added to the watched list: wake the watchdog if it sleeps. */
void lh_engine__watchdog_wake(lh_engine *eng);

/* Translate the error of a failed internal statement (classified: bad data is a 400, not
 * a 500). Returns err's code. */
int lh_engine__internal_error(lh_err *err, duckdb_result *r);

/* ---- pool.c: connections for user queries and their prepared statements ---------- */

/* An idle connection, or a new one (NULL when DuckDB refuses one). */
lh_pooled *lh_engine__pool_take(lh_engine *eng);
/* Give a connection back (accepts NULL); closed when enough are idle. */
void lh_engine__pool_give(lh_engine *eng, lh_pooled *pc);
/* The views changed (catalog_generation was bumped): idle connections drop the
 * statements they kept. */
void lh_engine__pool_sweep(lh_engine *eng);
/* Close every idle connection; later gives close theirs. */
void lh_engine__pool_close(lh_engine *eng);
duckdb_connection lh_engine__pool_con(lh_pooled *pc);
/* The statement kept under key on this connection, prepared in this catalog generation
 * (borrowed; valid until forgotten or evicted by a later keep), or NULL. */
duckdb_prepared_statement lh_engine__pool_lookup(lh_pooled *pc, const char *key,
                                                 uint64_t generation);
/* Keep prep under key (takes ownership), with the generation read before it was
 * prepared; the least recently used goes when full. */
void lh_engine__pool_keep(lh_pooled *pc, const char *key, duckdb_prepared_statement prep,
                          uint64_t generation);
void lh_engine__pool_forget(lh_pooled *pc, const char *key);
/* Close a taken connection instead of giving it back (accepts NULL). */
void lh_engine__pool_discard(lh_pooled *pc);

/* ---- fault injection (core.h) ----------------------------------------------------- */

/* Called where a DuckDB statement is about to run: LH_EIO 500 engine_error (what a
 * failing statement gives) when a fault test made this one fail, else 0. */
int lh_engine__fault(lh_err *err);

#endif
