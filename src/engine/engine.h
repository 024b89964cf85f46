/*
 * engine.h — the DuckDB wrapper. Everything DuckDB-specific (types, error strings) stays
 * behind this header; callers see lh_err and JSON.
 *
 * This first cut opens the database and proves it answers; the connection pool,
 * dataset views and result streaming build on it.
 */
#ifndef LH_ENGINE_H
#define LH_ENGINE_H

#include "core/core.h"

typedef struct lh_engine lh_engine;

/* Open an engine. path NULL = in-memory database. threads: DuckDB worker threads
 * (0 = DuckDB's default). Returns new (lh_engine_close). Thread-safe once opened. */
int lh_engine_open(const char *path, int threads, lh_engine **out, lh_err *err);
void lh_engine_close(lh_engine *eng); /* accepts NULL */
/* The DuckDB library version, e.g. "v1.4.4". Static storage. */
const char *lh_engine_version(void);
/* Run a trivial query end to end; 0 when the engine answers. */
int lh_engine_ping(lh_engine *eng, lh_err *err);

#endif
