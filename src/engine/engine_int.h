/*
 * engine_int.h — internals of src/engine. Not used outside this folder.
 */
#ifndef LH_ENGINE_INT_H
#define LH_ENGINE_INT_H

#include "engine/engine.h"

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
    int64_t last_writer_id;
    bool writer_scan_registered;
};

/* Interrupt every watched query past its deadline. */
void lh_engine__watchdog_scan(lh_engine *eng);
/* A query was added to the watched list: wake the watchdog if it sleeps. */
void lh_engine__watchdog_wake(lh_engine *eng);

/* Translate the error of a failed internal statement (classified: bad data is a 400, not
 * a 500). Returns err's code. */
int lh_engine__internal_error(lh_err *err, duckdb_result *r);

#endif
