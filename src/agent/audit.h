/*
 * audit.h — the durable audit trail of agent tool calls.
 *
 * Every tool call (answered, refused or failed) is one record, a JSON object the tool
 * registry fills. A record is durable when lh_audit_append returns: it is a line of a
 * local segment file under deps->dir that an fdatasync covered (concurrent appends
 * share one fdatasync: group commit). A background thread ships pending records to the
 * primary bucket as write-once batches _audit/batch_{segment}.jsonl, named after the
 * segment they came from, so a retry after a crash finds the batch instead of writing a
 * second one. Reads (lh_audit_get, lh_audit_list, the `_audit` view of the users'
 * engine) see shipped and pending records alike. See src/agent/README.md, "## Audit".
 *
 * Thread safety: every function is thread-safe; lh_audit_close must be the last call.
 */
#ifndef LH_AGENT_AUDIT_H
#define LH_AGENT_AUDIT_H

#include "auth/auth.h"
#include "catalog/catalog.h"
#include "core/core.h"
#include "engine/engine.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A serialized record over this many bytes is stored with "arguments" replaced by
 * {"truncated": true}. */
#define LH_AUDIT_RECORD_MAX (256 * 1024)

typedef struct lh_audit lh_audit;
typedef struct lh_audit_deps {
    lh_buckets *buckets; /* batches go to the primary bucket */
    lh_cache *cache;     /* local copies of remote batches */
    lh_engine *views;    /* the users' engine: the `_audit` view */
    lh_engine *internal; /* lakehouse's own statements (reading batches for GET /audit) */
    const char *dir;     /* local folder for records not yet shipped (data_dir/audit) */
    int64_t ship_ms;     /* ship pending records at least this often */
    int ship_records;    /* ... or when this many are pending */
} lh_audit_deps;

/* Open the trail: recover the segments a crash left in deps->dir (a torn last line is
 * dropped and logged; complete lines are kept), ship them (a failure is logged and
 * retried by the shipper, it does not stop the open), define the `_audit` view and start
 * the shipper thread. deps is copied (the pointers it holds are borrowed and must
 * outlive the trail). Errors: the folder cannot be made or read (500 audit_unavailable),
 * the primary bucket cannot be listed (its error). Returns new (lh_audit_close). */
int lh_audit_open(const lh_audit_deps *deps, lh_audit **out, lh_err *err);
void lh_audit_close(lh_audit *a); /* ships what is pending; NULL-safe */

/* Append one record (a JSON object the caller filled; see the fields below). When it
 * returns 0 the record is durable: it survives kill -9 of the process right after.
 * Thread-safe; concurrent appends share one fsync (group commit), so 64 concurrent
 * callers do not pay 64 fsyncs. A record without "call_id" or "ts" is 500 (a bug); one
 * over 256 KB serialized is stored with "arguments" replaced by {"truncated": true}.
 * Borrows record. Errors: 500 audit_record_invalid (no call_id/ts, ts not RFC 3339,
 * still over 1 MiB without its arguments), 503 audit_unavailable (the segment cannot be
 * written or synced: the record is not durable and may or may not be listed later). */
int lh_audit_append(lh_audit *a, const json_t *record, lh_err *err);

/* One record by call id, as appended (new): 404 audit_record_not_found. */
int lh_audit_get(lh_audit *a, const char *call_id, json_t **out, lh_err *err);
/* That 404, for a door that found the record is not the caller's to see. */
int lh_audit_not_found(lh_err *err, const char *call_id);

typedef struct lh_audit_filter {
    const char *tool, *principal, *workspace_id, *outcome; /* NULL: any */
    int64_t since_us, until_us;                            /* 0: open */
    size_t limit;                                          /* 0: 100; at most 1000 */
    const char *cursor;                                    /* from a previous page's "next" */
} lh_audit_filter;
/* Records matching f, newest first (ts, then call_id, descending), since_us inclusive,
 * until_us exclusive: {"records": [...], "next": "<cursor>" or null} (new). A cursor that
 * does not parse is 400 invalid_cursor. Memory: one page of records. */
int lh_audit_list(lh_audit *a, const lh_audit_filter *f, json_t **out, lh_err *err);

/* Whether principal p may read the audit trail (GET /audit, the `_audit` view): admins
 * only. NULL: no. */
bool lh_audit_may_read(const lh_principal *p);
/* The `_audit` relation's guard for a principal's SQL (lh_catalog_guard_fn; ctx unused;
 * `lakehouse serve` sets it): absent unless lh_audit_may_read; for an admin limited to
 * buckets, only the records whose dataset_versions name datasets it sees (or none). */
lh_resolved lh_audit_guard(void *ctx, const lh_catalog_view *v, const char *select, lh_buf *out);
/* The same rule for one record (GET /audit): whether who (one lh_audit_may_read lets in)
 * sees it — every dataset its dataset_versions names is one who sees. */
bool lh_audit_record_visible(lh_catalog *c, const lh_principal *who, const json_t *record);
/* Drop from a page of lh_audit_list the records who does not see (a page may then hold
 * fewer than its limit; "next" is kept). */
void lh_audit_keep_visible(lh_catalog *c, const lh_principal *who, json_t *page);

/* Counters, added to into (an object): "pending" records not yet shipped, "segments"
 * local segment files, "appended", "fsyncs", "shipped_batches", "shipped_records",
 * "errors" (failed writes, syncs and shipments), "last_error" (string or null). */
void lh_audit_stats(lh_audit *a, json_t *into);

/* Parse an RFC 3339 time ("2026-03-01T09:00:00.123456Z", "...+02:00", or a date
 * "2026-03-01", meaning its midnight UTC) into microseconds since 1970. 0 on success,
 * -1 when s is not one. */
int lh_audit_parse_time(const char *s, int64_t *epoch_us);

/* Tool calls made with workspace_id since `since` (RFC 3339 or NULL), newest 1,000 at
 * most, as workspace activity entries [{"at", "kind": "tool_call", "actor", "detail":
 * {"call_id", "tool", "outcome", "status", "via"}}] (new). ctx is the lh_audit; the
 * signature is the workspace module's lh_ws_audit_fn. */
int lh_audit_activity(void *ctx, const char *workspace_id, const char *since, json_t **out,
                      lh_err *err);

/* The name of the view of the trail in the users' engine. */
#define LH_AUDIT_VIEW "_audit"

#endif
