/*
 * audit_crash.c — a process that appends audit records and dies by SIGKILL right after
 * the last append returned, for tests/e2e/test_audit.py: every record it appended must
 * be listed (and shipped to the bucket) once a server is started on the same config.
 *
 *   audit_crash CONFIG N TAG    appends N records, call ids "{TAG}-{i}" (tool "crash_test",
 *                               principal "agent1"), prints "ok", raises SIGKILL
 *
 * Shipping is pushed out past the process's life ([audit] ship_ms is ignored here), so
 * the records are in the local segment only: the server must recover and ship them.
 */
#include "agent/audit.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: audit_crash CONFIG N TAG\n");
        return 2;
    }
    lh_config *cfg = NULL;
    lh_buckets *buckets = NULL;
    lh_local_dirs dirs = {0};
    lh_audit *audit = NULL;
    lh_err err;
    if (lh_config_load(argv[1], NULL, &cfg, &err) != 0 ||
        lh_buckets_open(cfg, &buckets, &err) != 0 ||
        lh_buckets_local_dirs(buckets, lh_config_str(cfg, "server.data_dir"), &dirs, &err) != 0) {
        fprintf(stderr, "audit_crash: %s %s\n", err.message, err.detail);
        return 1;
    }
    lh_cache *cache = lh_cache_new(dirs.objects_dir, 1 << 30);
    lh_audit_deps deps = {.buckets = buckets,
                          .cache = cache,
                          .dir = dirs.audit_dir,
                          .ship_ms = 3600 * 1000,
                          .ship_records = 1000000};
    if (lh_audit_open(&deps, &audit, &err) != 0) {
        fprintf(stderr, "audit_crash: %s %s\n", err.message, err.detail);
        return 1;
    }
    long n = strtol(argv[2], NULL, 10);
    for (long i = 0; i < n; i++) {
        char call_id[128];
        snprintf(call_id, sizeof call_id, "%s-%ld", argv[3], i);
        json_t *ts = lh_json_time(lh_now_us());
        json_t *record = json_pack(
            "{s:s, s:o, s:s, s:[s], s:s, s:i, s:s, s:{s:i}, s:n, s:s, s:i, s:n, s:i, s:n, s:{}, "
            "s:i, s:s}",
            "call_id", call_id, "ts", ts, "principal", "agent1", "roles", "agent", "tool",
            "crash_test", "tool_version", 1, "via", "http", "arguments", "i", (int)i,
            "workspace_id", "outcome", "ok", "status", 200, "error_code", "rows", 1,
            "result_sha256", "dataset_versions", "duration_us", 10, "request_id", "r");
        if (lh_audit_append(audit, record, &err) != 0) {
            fprintf(stderr, "audit_crash: %s %s\n", err.message, err.detail);
            return 1;
        }
        json_decref(record);
    }
    printf("ok\n");
    fflush(stdout);
    raise(SIGKILL); /* no close, no shipment: only what the appends made durable survives */
    return 1;
}
