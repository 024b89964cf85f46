/*
 * engine_int.h — internals of src/engine. Not used outside this folder.
 */
#ifndef LH_ENGINE_INT_H
#define LH_ENGINE_INT_H

#include "engine/engine.h"

#include <duckdb.h>
#include <pthread.h>

struct lh_engine {
    duckdb_database db;
    /* running user queries, for the time-limit watchdog */
    pthread_mutex_t watch_lock;
    struct lh_query *watched;
    pthread_t watchdog;
    bool watchdog_started;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
};

/* Interrupt every watched query past its deadline. */
void lh_engine__watchdog_scan(lh_engine *eng);

#endif
