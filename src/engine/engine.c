/*
 * engine.c — DuckDB database lifetime and the one place DuckDB errors become lh_err.
 *
 * DuckDB's duckdb_database is thread-safe; each caller takes its own connection.
 */
#include "engine/engine.h"

#include <duckdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lh_engine {
    duckdb_database db;
};

static int
open_error(lh_err *err, const char *what, const char *detail)
{
    lh_err_set(err, LH_EIO, 500, "engine_unavailable", "could not %s the query engine", what);
    if (detail)
        lh_err_detail(err, "%s", detail);
    return LH_EIO;
}

int
lh_engine_open(const char *path, int threads, lh_engine **out, lh_err *err)
{
    duckdb_config config = NULL;
    char *open_msg = NULL;
    if (duckdb_create_config(&config) == DuckDBError)
        return open_error(err, "configure", NULL);
    if (threads > 0) {
        char value[16];
        snprintf(value, sizeof value, "%d", threads);
        duckdb_set_config(config, "threads", value);
    }
    lh_engine *eng = lh_calloc(1, sizeof *eng);
    if (duckdb_open_ext(path, &eng->db, config, &open_msg) == DuckDBError) {
        open_error(err, "open", open_msg);
        duckdb_free(open_msg);
        duckdb_destroy_config(&config);
        free(eng);
        return LH_EIO;
    }
    duckdb_destroy_config(&config);
    *out = eng;
    return 0;
}

void
lh_engine_close(lh_engine *eng)
{
    if (eng == NULL)
        return;
    duckdb_close(&eng->db);
    free(eng);
}

const char *
lh_engine_version(void)
{
    return duckdb_library_version();
}

int
lh_engine_ping(lh_engine *eng, lh_err *err)
{
    duckdb_connection con = NULL;
    duckdb_result result;
    if (duckdb_connect(eng->db, &con) == DuckDBError)
        return open_error(err, "connect to", NULL);
    int rc = 0;
    if (duckdb_query(con, "SELECT 40 + 2", &result) == DuckDBError) {
        rc = open_error(err, "query", duckdb_result_error(&result));
    } else if (duckdb_value_int64(&result, 0, 0) != 42) {
        rc = open_error(err, "verify", "SELECT 40 + 2 did not return 42");
    }
    duckdb_destroy_result(&result);
    duckdb_disconnect(&con);
    return rc;
}
