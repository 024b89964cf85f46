/*
 * h_audit.c — the audit trail of agent tool calls: GET /audit (filtered, paged, newest
 * first) and GET /audit/{call_id}. Admins only (lh_audit_may_read decides; the route
 * table says the same so the refusal comes before any work).
 */
#include "http/http_int.h"

#include <stdio.h>
#include <string.h>

static const char *const AUDIT_PARAMS[] = {"tool",  "principal", "workspace_id", "outcome", "since",
                                           "until", "limit",     "cursor",       NULL};

static int
refuse(lh_resp *resp)
{
    lh_err err;
    lh_err_set(&err, LH_EPERM, 403, "forbidden", "only admins may read the audit trail");
    lh_err_hint(&err, "ask an admin, or use a token with the admin role");
    return lh_resp_error(resp, &err);
}

static int
unavailable(lh_resp *resp)
{
    lh_err err;
    lh_err_set(&err, LH_EUNAVAIL, 503, "audit_unavailable", "the audit trail is not open");
    return lh_resp_error(resp, &err);
}

/* A time parameter as microseconds (0 when absent); 400 naming it otherwise. */
static int
time_param(lh_req *req, const char *name, int64_t *out, lh_err *err)
{
    const char *v = lh_req_query(req, name);
    *out = 0;
    if (v == NULL)
        return 0;
    if (lh_audit_parse_time(v, out) != 0 || *out <= 0) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                   "'%s' must be an RFC 3339 time (2026-03-01T09:00:00Z) or a date (2026-03-01)",
                   name);
        lh_err_detail(err, "got '%.200s'", v);
        return LH_EINVAL;
    }
    return 0;
}

/* A filter parameter that must not be empty when given. */
static int
text_param(lh_req *req, const char *name, const char **out, lh_err *err)
{
    *out = lh_req_query(req, name);
    if (*out && (*out)[0] == '\0') {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "'%s' must not be empty", name);
        lh_err_hint(err, "leave it out to match any %s", name);
        return LH_EINVAL;
    }
    return 0;
}

int
lh_h_audit_list(lh_req *req, lh_resp *resp)
{
    if (!lh_audit_may_read(req->principal))
        return refuse(resp);
    if (req->srv->audit == NULL)
        return unavailable(resp);
    lh_err err;
    lh_audit_filter f = {0};
    int64_t limit = 0;
    if (lh_req_check_query(req, AUDIT_PARAMS, NULL, "see docs/API.md, GET /audit", &err) != 0 ||
        text_param(req, "tool", &f.tool, &err) != 0 ||
        text_param(req, "principal", &f.principal, &err) != 0 ||
        text_param(req, "workspace_id", &f.workspace_id, &err) != 0 ||
        text_param(req, "outcome", &f.outcome, &err) != 0 ||
        text_param(req, "cursor", &f.cursor, &err) != 0 ||
        time_param(req, "since", &f.since_us, &err) != 0 ||
        time_param(req, "until", &f.until_us, &err) != 0 ||
        lh_req_query_int(req, "limit", 100, 1, 1000, &limit, &err) != 0)
        return lh_resp_error(resp, &err);
    if (f.outcome && strcmp(f.outcome, "ok") != 0 && strcmp(f.outcome, "refused") != 0 &&
        strcmp(f.outcome, "failed") != 0) {
        lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                   "'outcome' must be \"ok\", \"refused\" or \"failed\"");
        return lh_resp_error(resp, &err);
    }
    if (f.since_us && f.until_us && f.since_us >= f.until_us) {
        lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "'since' must be before 'until'");
        return lh_resp_error(resp, &err);
    }
    f.limit = (size_t)limit;
    json_t *out = NULL;
    if (lh_audit_list(req->srv->audit, &f, &out, &err) != 0)
        return lh_resp_error(resp, &err);
    lh_audit_keep_visible(req->srv->catalog, req->principal, out); /* tenants: invariant 11 */
    return lh_resp_json(resp, 200, out);
}

int
lh_h_audit_get(lh_req *req, lh_resp *resp)
{
    if (!lh_audit_may_read(req->principal))
        return refuse(resp);
    if (req->srv->audit == NULL)
        return unavailable(resp);
    lh_err err;
    json_t *out = NULL;
    if (lh_audit_get(req->srv->audit, lh_req_param(req, "call_id"), &out, &err) != 0)
        return lh_resp_error(resp, &err);
    if (!lh_audit_record_visible(req->srv->catalog, req->principal, out)) {
        json_decref(out); /* another tenant's: as absent as an unknown call id */
        lh_audit_not_found(&err, lh_req_param(req, "call_id"));
        return lh_resp_error(resp, &err);
    }
    return lh_resp_json(resp, 200, out);
}

int
lh_h_audit_replay(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *out = NULL;
    lh_tool_outcome o = {0};
    if (lh_tools_replay(req->srv->tools, req->principal, lh_req_param(req, "call_id"),
                        req->request_id, &out, &o, &err) != 0) {
        if (o.call_id[0])
            lh_resp_header(resp, "X-Lakehouse-Call-Id",
                           lh_arena_printf(req->arena, "%s", o.call_id));
        return lh_resp_error(resp, &err);
    }
    return lh_resp_json(resp, 200, out);
}
