/*
 * duckdb_raw.c — the raw-DuckDB baseline of the benchmarks: runs SQL statements on one
 * in-memory database (the same libduckdb the server links) and prints the wall time of
 * each execution. No sandbox, no HTTP, no JSON: only what DuckDB itself does.
 *
 * usage: duckdb_raw [-n REPS] [-w WARMUP] [-t THREADS] [-f FILE] [SQL]...
 *   Statements run in the order given, from the command line and from FILEs (one
 *   statement per line; blank lines and lines starting with "--" are skipped).
 *   -n and -w apply to the statements after them: each such statement first runs WARMUP
 *   times untimed, then REPS times timed (defaults 1 and 0). -t sets DuckDB's threads
 *   (before the first statement only; default: DuckDB's own, one per core).
 * Prints one line per timed execution:  <statement#> <ms> <rows>
 *   rows: the result's row count, or the first value of a COPY's answer (rows written).
 * Exits 1 with the error on the first failing statement.
 * build: cc -O2 -o duckdb_raw duckdb_raw.c -I third_party/duckdb/include
 *        -L third_party/duckdb/lib -lduckdb -Wl,-rpath,<abs path of third_party/duckdb/lib>
 */
#include <duckdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static duckdb_database db;
static duckdb_connection con;
static int opened, stmt_no, reps = 1, warmup;
static char threads[16];

static void
open_db(void)
{
    duckdb_config config;
    char *msg = NULL;
    if (duckdb_create_config(&config) == DuckDBError) {
        fprintf(stderr, "duckdb_raw: cannot create a config\n");
        exit(1);
    }
    if (threads[0])
        duckdb_set_config(config, "threads", threads);
    if (duckdb_open_ext(NULL, &db, config, &msg) == DuckDBError) {
        fprintf(stderr, "duckdb_raw: open: %s\n", msg ? msg : "?");
        exit(1);
    }
    duckdb_destroy_config(&config);
    if (duckdb_connect(db, &con) == DuckDBError) {
        fprintf(stderr, "duckdb_raw: connect failed\n");
        exit(1);
    }
    opened = 1;
}

static void
run(const char *sql)
{
    if (!opened)
        open_db();
    stmt_no++;
    for (int i = 0; i < warmup + reps; i++) {
        duckdb_result r;
        double t0 = now_ms();
        duckdb_state st = duckdb_query(con, sql, &r);
        double ms = now_ms() - t0;
        if (st == DuckDBError) {
            fprintf(stderr, "duckdb_raw: statement %d failed: %s\n  %s\n", stmt_no,
                    duckdb_result_error(&r), sql);
            duckdb_destroy_result(&r);
            exit(1);
        }
        long long rows = (long long)duckdb_row_count(&r);
        if (duckdb_result_statement_type(r) == DUCKDB_STATEMENT_TYPE_COPY && rows == 1 &&
            duckdb_column_count(&r) >= 1)
            rows = (long long)duckdb_value_int64(&r, 0, 0);
        duckdb_destroy_result(&r);
        if (i >= warmup)
            printf("%d %.3f %lld\n", stmt_no, ms, rows);
    }
    fflush(stdout);
}

static void
run_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        const char *s = line + strspn(line, " \t");
        if (*s && strncmp(s, "--", 2) != 0)
            run(s);
    }
    free(line);
    fclose(f);
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-n") || !strcmp(a, "-w") || !strcmp(a, "-t") || !strcmp(a, "-f")) &&
            i + 1 < argc) {
            const char *v = argv[++i];
            if (a[1] == 'n')
                reps = atoi(v);
            else if (a[1] == 'w')
                warmup = atoi(v);
            else if (a[1] == 't')
                snprintf(threads, sizeof threads, "%s", v);
            else
                run_file(v);
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: duckdb_raw [-n REPS] [-w WARMUP] [-t THREADS] [-f FILE] [SQL]...\n");
            return 0;
        } else {
            run(a);
        }
    }
    if (opened) {
        duckdb_disconnect(&con);
        duckdb_close(&db);
    }
    return 0;
}
