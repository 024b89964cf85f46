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
    json_t *out = NULL;
    if (lh_req_query_int(req, "limit", 1000, 1, 10000, &f.limit, &err) != 0 ||
        lh_req_query_offset_cursor(req, &f.offset, &err) != 0 ||
        lh_catalog_events_visible(req->srv->catalog, req->principal, &f, &out, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, out);
}

/* ---- GET /datasets/{name}/rows/{key}/history --------------------------------------------- */

int
lh_h_row_history(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *out = NULL;
    if (lh_catalog_history_visible(req->srv->catalog, req->principal, lh_req_param(req, "name"),
                                   lh_req_param(req, "key"), &out, &err) != 0)
        return lh_resp_error(resp, &err);
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
        return 0; /* 404 before a 400 for the arguments */
    json_decref(m);
    int64_t from, to, limit;
    json_t *out = NULL;
    if (lh_req_query_int(req, "from_version", 0, 0, INT64_MAX, &from, &err) != 0 ||
        lh_req_query_int(req, "to_version", 0, 1, INT64_MAX, &to, &err) != 0 ||
        lh_req_query_int(req, "limit", 10000, 1, 1000000, &limit, &err) != 0 ||
        lh_catalog_changes_visible(req->srv->catalog, req->principal, name, from, to, limit, &out,
                                   &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, out);
}
