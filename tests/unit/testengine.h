/*
 * testengine.h — a DuckDB engine for unit tests that may read and write one scratch
 * directory (its allowed_directories), as the server's engines may read their buckets.
 * Include after testutil.h and engine/engine.h.
 */
#ifndef LH_TESTENGINE_H
#define LH_TESTENGINE_H

typedef struct lh_test_engine {
    char *dir;   /* the scratch directory (new; removed by lh_test_engine_close if empty) */
    char *slash; /* dir with a trailing '/', as allowed_directories wants it */
    lh_engine *eng;
} lh_test_engine;

static inline void
lh_test_engine_open(lh_test_engine *t, const char *tag)
{
    t->dir = lh_test_mkdtemp(tag);
    t->slash = lh_sprintf("%s/", t->dir);
    const char *dirs[] = {t->slash, NULL};
    lh_engine_opts o = {.allowed_dirs = dirs};
    lh_err err;
    assert_int_equal(lh_engine_open(&o, &t->eng, &err), 0);
}

static inline void
lh_test_engine_close(lh_test_engine *t)
{
    lh_engine_close(t->eng);
    rmdir(t->dir);
    free(t->dir);
    free(t->slash);
}

#endif
