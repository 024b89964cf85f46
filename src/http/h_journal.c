/*
 * h_journal.c — the change history: GET /journal/events (the events journal, filtered
 * and paged). Events of datasets in buckets a principal may not use are not shown.
 */
#include "http/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const EVENT_PARAMS[] = {"dataset", "key",   "field", "actor",  "workspace_id",
                                           "since",   "until", "limit", "cursor", NULL};

/* A timestamp parameter: ISO 8601, at least the date. */
static bool
looks_like_time(const char *s)
{
    int y, m, d;
    return s && sscanf(s, "%4d-%2d-%2d", &y, &m, &d) == 3 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

int
lh_h_journal_events(lh_req *req, lh_resp *resp)
{
    lh_err err;
    if (lh_req_check_query(req, EVENT_PARAMS, NULL, "see docs/API.md, GET /journal/events", &err) !=
        0)
        return lh_resp_error(resp, &err);
    lh_events_filter f = {.dataset = lh_req_query(req, "dataset"),
                          .key = lh_req_query(req, "key"),
                          .field = lh_req_query(req, "field"),
                          .actor = lh_req_query(req, "actor"),
                          .workspace_id = lh_req_query(req, "workspace_id"),
                          .since = lh_req_query(req, "since"),
                          .until = lh_req_query(req, "until")};
    if (lh_req_query_int(req, "limit", 1000, 1, 10000, &f.limit, &err) != 0)
        return lh_resp_error(resp, &err);
    if (lh_req_query_offset_cursor(req, &f.offset, &err) != 0)
        return lh_resp_error(resp, &err);
    if ((f.since && !looks_like_time(f.since)) || (f.until && !looks_like_time(f.until))) {
        lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                   "'since' and 'until' must be ISO 8601 times (2026-03-01 or "
                   "2026-03-01T09:00:00Z)");
        return lh_resp_error(resp, &err);
    }
    if (f.dataset) {
        if (!lh_http__dataset_visible(req, resp, f.dataset))
            return 0;
    } else if (req->principal->limit_buckets) {
        lh_err_set(&err, LH_EPERM, 403, "forbidden",
                   "your token is limited to some buckets: give dataset=");
        return lh_resp_error(resp, &err);
    }
    int64_t limit = f.limit;
    f.limit = limit + 1; /* one more tells whether there is a next page */
    json_t *rows = NULL;
    if (lh_catalog_events(req->srv->catalog, &f, &rows, &err) != 0)
        return lh_resp_error(resp, &err);
    lh_catalog_mask_events(req->srv->catalog, req->principal->clearance, rows);
    json_t *next = json_null();
    if ((int64_t)json_array_size(rows) > limit) {
        json_array_remove(rows, (size_t)limit);
        next = json_string(lh_arena_printf(req->arena, "o%lld", (long long)(f.offset + limit)));
    }
    return lh_resp_json(resp, 200, json_pack("{s:o, s:o}", "events", rows, "next_cursor", next));
}

/* ---- GET /datasets/{name}/rows/{key}/history --------------------------------------------- */

int
lh_h_row_history(lh_req *req, lh_resp *resp)
{
    const char *name = lh_req_param(req, "name");
    if (!lh_http__dataset_visible(req, resp, name))
        return 0;
    lh_err err;
    json_t *out = NULL;
    if (lh_catalog_record_history(req->srv->catalog, name, lh_req_param(req, "key"), &out, &err) !=
            0 ||
        lh_catalog_mask_history(req->srv->catalog, name, req->principal->clearance, out, &err) !=
            0) {
        json_decref(out);
        return lh_resp_error(resp, &err);
    }
    return lh_resp_json(resp, 200, out);
}

/* ---- GET /datasets/{name}/changes?from_version=&to_version=&limit= ------------------------ */

static const char *const CHANGES_PARAMS[] = {"from_version", "to_version", "limit", NULL};

int
lh_h_changes(lh_req *req, lh_resp *resp)
{
    lh_err err;
    if (lh_req_check_query(req, CHANGES_PARAMS, NULL, "from_version, to_version and limit", &err) !=
        0)
        return lh_resp_error(resp, &err);
    const char *name = lh_req_param(req, "name");
    json_t *m = lh_http__visible_dataset(req, resp, name);
    if (!m)
        return 0;
    int64_t latest = json_integer_value(json_object_get(m, "version"));
    json_decref(m);
    int64_t from, to, limit;
    if (lh_req_query_int(req, "from_version", 0, 0, latest, &from, &err) != 0 ||
        lh_req_query_int(req, "to_version", latest, 1, latest, &to, &err) != 0 ||
        lh_req_query_int(req, "limit", 10000, 1, 1000000, &limit, &err) != 0)
        return lh_resp_error(resp, &err);
    json_t *out = NULL;
    if (lh_catalog_changes(req->srv->catalog, name, from, to, limit, &out, &err) != 0 ||
        lh_catalog_mask_history(req->srv->catalog, name, req->principal->clearance, out, &err) !=
            0) {
        json_decref(out);
        return lh_resp_error(resp, &err);
    }
    return lh_resp_json(resp, 200, out);
}
