/*
 * audit_read.c — reading the audit trail back: one record by call id, pages of records
 * by filter, newest first.
 *
 * Both run one statement on the internal engine over the files readers see now (the
 * shipped batches' local copies, the sealed segments, the active segment), with
 * files_lock held for reading so no file goes while DuckDB reads it. DuckDB scans the
 * files and keeps only the page (ORDER BY ... LIMIT), so memory is one page of records,
 * not the trail. A torn line of the active segment (a write in progress) reads as NULL
 * and is left out.
 *
 * Cursors: "v1.{ts_us}.{hex of call_id}", the last record of the page; the next page
 * holds the records strictly after it in (ts, call_id) descending order, so records
 * appended meanwhile never shift a page.
 */
#include "agent/audit_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define CURSOR_MAX 1024

/* ---- cursors ------------------------------------------------------------------------------ */

static char *
cursor_make(int64_t ts_us, const char *call_id)
{
    lh_buf b;
    lh_buf_init(&b);
    lh_buf_printf(&b, "v1.%lld.", (long long)ts_us);
    for (const unsigned char *p = (const unsigned char *)call_id; *p; p++)
        lh_buf_printf(&b, "%02x", *p);
    return lh_buf_steal(&b);
}

static int
invalid_cursor(lh_err *err, const char *why)
{
    lh_err_set(err, LH_EINVAL, 400, "invalid_cursor", "'cursor' is not one this server gave");
    lh_err_detail(err, "%s", why);
    lh_err_hint(err, "pass the \"next\" of the previous page as it is, or leave cursor out for "
                     "the first page");
    return LH_EINVAL;
}

/* 0 with *ts_us and *call_id (new) from a cursor. */
static int
cursor_parse(const char *cursor, int64_t *ts_us, char **call_id, lh_err *err)
{
    if (strlen(cursor) > CURSOR_MAX)
        return invalid_cursor(err, "too long");
    if (strncmp(cursor, "v1.", 3) != 0)
        return invalid_cursor(err, "unknown version");
    const char *p = cursor + 3;
    char *end = NULL;
    if (!isdigit((unsigned char)*p))
        return invalid_cursor(err, "no time");
    long long ts = strtoll(p, &end, 10);
    if (end == p || *end != '.' || ts < 0)
        return invalid_cursor(err, "no time");
    p = end + 1;
    size_t hex_len = strlen(p);
    if (hex_len == 0 || hex_len % 2 != 0)
        return invalid_cursor(err, "no call id");
    char *id = lh_malloc(hex_len / 2 + 1);
    for (size_t i = 0; i < hex_len / 2; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)p[2 * i]) || !isxdigit((unsigned char)p[2 * i + 1]) ||
            sscanf(p + 2 * i, "%2x", &v) != 1 || v == 0) {
            free(id);
            return invalid_cursor(err, "the call id is not hex");
        }
        id[i] = (char)v;
    }
    id[hex_len / 2] = '\0';
    *ts_us = ts;
    *call_id = id;
    return 0;
}

/* ---- the statement -------------------------------------------------------------------------- */

static void
where_eq(lh_buf *sql, const char *field, const char *value)
{
    if (value == NULL)
        return;
    lh_buf_printf(sql, " AND (json->>'%s') = ", field);
    lh_sql_quote(sql, value);
}

/* Run `SELECT record, ts_us, call_id FROM <the trail> WHERE <where> ORDER BY ... LIMIT
 * limit` (where: " AND ..." conditions over json, ts_us and call_id) and return its rows
 * (new JSON array). */
static int
read_rows(lh_audit *a, const char *where, size_t limit, json_t **rows, lh_err *err)
{
    lh_buf files, sql;
    lh_buf_init(&files);
    lh_buf_init(&sql);
    int rc = 0;
    pthread_rwlock_rdlock(&a->files_lock);
    lh_audit__file_list(a, &files);
    if (files.len == 0) {
        *rows = json_array();
        goto out;
    }
    lh_buf_printf(&sql,
                  "SELECT record, ts_us, call_id FROM (SELECT json::VARCHAR AS record, "
                  "epoch_us(TRY_CAST(json->>'ts' AS TIMESTAMP)) AS ts_us, json->>'call_id' AS "
                  "call_id, json FROM read_ndjson_objects([%s], ignore_errors = true) WHERE json "
                  "IS NOT NULL) WHERE ts_us IS NOT NULL AND call_id IS NOT NULL%s ORDER BY ts_us "
                  "DESC, call_id DESC LIMIT %zu",
                  files.data, where, limit);
    rc = lh_engine_rows(a->deps.internal, sql.data, rows, err);
out:
    pthread_rwlock_unlock(&a->files_lock);
    lh_buf_free(&sql);
    lh_buf_free(&files);
    return rc;
}

/* The record of a row (new), or NULL when its text does not parse. */
static json_t *
row_record(const json_t *row)
{
    const char *text = json_string_value(json_object_get(row, "record"));
    return text ? json_loads(text, 0, NULL) : NULL;
}

int
lh_audit_get(lh_audit *a, const char *call_id, json_t **out, lh_err *err)
{
    lh_buf where;
    lh_buf_init(&where);
    where_eq(&where, "call_id", call_id);
    json_t *rows = NULL;
    int rc = read_rows(a, where.data, 1, &rows, err);
    lh_buf_free(&where);
    if (rc != 0)
        return rc;
    json_t *record = json_array_size(rows) ? row_record(json_array_get(rows, 0)) : NULL;
    json_decref(rows);
    if (record == NULL)
        return lh_audit_not_found(err, call_id);
    *out = record;
    return 0;
}

int
lh_audit_not_found(lh_err *err, const char *call_id)
{
    lh_err_set(err, LH_ENOTFOUND, 404, "audit_record_not_found", "no audit record has call id '%s'",
               call_id);
    lh_err_hint(err, "GET /audit lists the records; call ids come from POST /tools/{name}/call");
    return LH_ENOTFOUND;
}

int
lh_audit_list(lh_audit *a, const lh_audit_filter *f, json_t **out, lh_err *err)
{
    size_t limit = f->limit == 0 ? LIST_DEFAULT : f->limit > LIST_MAX ? LIST_MAX : f->limit;
    lh_buf where;
    lh_buf_init(&where);
    lh_buf_puts(&where, "");
    where_eq(&where, "tool", f->tool);
    where_eq(&where, "principal", f->principal);
    where_eq(&where, "workspace_id", f->workspace_id);
    where_eq(&where, "outcome", f->outcome);
    if (f->since_us != 0)
        lh_buf_printf(&where, " AND ts_us >= %lld", (long long)f->since_us);
    if (f->until_us != 0)
        lh_buf_printf(&where, " AND ts_us < %lld", (long long)f->until_us);
    int rc = 0;
    if (f->cursor) {
        int64_t ts_us = 0;
        char *call_id = NULL;
        if ((rc = cursor_parse(f->cursor, &ts_us, &call_id, err)) != 0) {
            lh_buf_free(&where);
            return rc;
        }
        lh_buf_printf(&where, " AND (ts_us < %lld OR (ts_us = %lld AND call_id < ",
                      (long long)ts_us, (long long)ts_us);
        lh_sql_quote(&where, call_id);
        lh_buf_puts(&where, "))");
        free(call_id);
    }
    json_t *rows = NULL;
    rc = read_rows(a, where.data, limit + 1, &rows, err); /* one more: is there a next page */
    lh_buf_free(&where);
    if (rc != 0)
        return rc;
    json_t *records = json_array();
    json_t *next = json_null();
    size_t n = json_array_size(rows);
    for (size_t i = 0; i < n && i < limit; i++) {
        json_t *record = row_record(json_array_get(rows, i));
        if (record)
            json_array_append_new(records, record);
    }
    if (n > limit) {
        const json_t *last = json_array_get(rows, limit - 1);
        char *cursor = cursor_make(json_integer_value(json_object_get(last, "ts_us")),
                                   json_string_value(json_object_get(last, "call_id")));
        json_decref(next);
        next = json_string(cursor);
        free(cursor);
    }
    json_decref(rows);
    *out = json_pack("{s:o, s:o}", "records", records, "next", next);
    return 0;
}

int
lh_audit_activity(void *ctx, const char *workspace_id, const char *since, json_t **out, lh_err *err)
{
    lh_audit_filter f = {.workspace_id = workspace_id, .limit = 1000};
    json_t *page = NULL;
    if (since && lh_audit_parse_time(since, &f.since_us) != 0)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "since '%s' is not an RFC 3339 time", since);
    int rc = lh_audit_list(ctx, &f, &page, err);
    if (rc != 0)
        return rc;
    *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(page, "records"), i, r)
    {
        json_array_append_new(
            *out, json_pack("{s:O?, s:s, s:O?, s:{s:O?, s:O?, s:O?, s:O?, s:O?}}", "at",
                            json_object_get(r, "ts"), "kind", "tool_call", "actor",
                            json_object_get(r, "principal"), "detail", "call_id",
                            json_object_get(r, "call_id"), "tool", json_object_get(r, "tool"),
                            "outcome", json_object_get(r, "outcome"), "status",
                            json_object_get(r, "status"), "via", json_object_get(r, "via")));
    }
    json_decref(page);
    return 0;
}
