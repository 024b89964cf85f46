/*
 * h_catalog.c — /catalog (datasets, versions, metadata, tombstones, resync) and
 * /maintenance/sweep. Datasets in buckets a principal may not use are invisible to it.
 */
#include "http/http_int.h"
#include "ingest/ingest.h"

#include <microhttpd.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

json_t *
lh_http__filter(lh_req *req, json_t *all, const char *key,
                bool (*ok)(lh_req *req, const char *value))
{
    json_t *kept = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(all, i, x)
    {
        if (ok(req, json_string_value(json_object_get(x, key))))
            json_array_append(kept, x);
    }
    json_decref(all);
    return kept;
}

bool
lh_http__dataset_visible(lh_req *req, lh_resp *resp, const char *name)
{
    json_t *m = lh_http__visible_dataset(req, resp, name);
    json_decref(m);
    return m != NULL;
}

json_t *
lh_http__visible_dataset(lh_req *req, lh_resp *resp, const char *name)
{
    lh_err err;
    json_t *m = NULL;
    if (lh_catalog_get_visible(req->srv->catalog, req->principal, name, &m, &err) != 0) {
        lh_resp_error(resp, &err);
        return NULL;
    }
    return m;
}

int
lh_h_datasets_list(lh_req *req, lh_resp *resp)
{
    lh_catalog_filter f = {
        .tag = lh_req_query(req, "tag"),
        .owner = lh_req_query(req, "owner"),
        .sensitivity = lh_req_query(req, "sensitivity"),
        .text = lh_req_query(req, "q"),
    };
    const char *deleted = lh_req_query(req, "include_deleted");
    f.include_deleted = deleted && strcmp(deleted, "true") == 0;
    json_t *mine = lh_catalog_list_visible(req->srv->catalog, req->principal, &f);
    return lh_resp_json(resp, 200, json_pack("{s:o}", "datasets", mine));
}

int
lh_h_dataset_get(lh_req *req, lh_resp *resp)
{
    json_t *m = lh_http__visible_dataset(req, resp, lh_req_param(req, "name"));
    if (m)
        lh_catalog_describe_columns(m);
    return m ? lh_resp_json(resp, 200, m) : 0;
}

int
lh_h_dataset_versions(lh_req *req, lh_resp *resp)
{
    lh_err err;
    const char *name = lh_req_param(req, "name");
    json_t *m = lh_http__visible_dataset(req, resp, name);
    if (m == NULL)
        return 0; /* 404 before a 400 for the paging arguments, as before */
    json_decref(m);
    int64_t range[2]; /* from, limit */
    json_t *body = NULL;
    if (lh_req_query_int(req, "from", 1, 1, INT64_MAX, &range[0], &err) != 0 ||
        lh_req_query_int(req, "limit", 100, 1, 1000, &range[1], &err) != 0 ||
        lh_catalog_versions_visible(req->srv->catalog, req->principal, name, range[0], range[1],
                                    &body, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, body);
}

int
lh_h_dataset_patch(lh_req *req, lh_resp *resp)
{
    lh_err err;
    const char *name = lh_req_param(req, "name");
    json_t *m = lh_http__visible_dataset(req, resp, name);
    if (m == NULL)
        return 0;
    json_decref(m);
    json_t *body = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    json_t *committed = NULL;
    int rc =
        lh_catalog_patch(req->srv->catalog, name, body, req->principal->name, &committed, &err);
    json_decref(body);
    return rc ? lh_resp_error(resp, &err) : lh_resp_json(resp, 200, committed);
}

/* DELETE and resync: check the principal may see the dataset, then one catalog change. */
static int
change_dataset(lh_req *req, lh_resp *resp,
               int (*change)(lh_catalog *, const char *, const char *, json_t **, lh_err *))
{
    lh_err err;
    const char *name = lh_req_param(req, "name");
    json_t *m = lh_http__visible_dataset(req, resp, name);
    if (m == NULL)
        return 0;
    json_decref(m);
    json_t *committed = NULL;
    if (change(req->srv->catalog, name, req->principal->name, &committed, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, committed);
}

int
lh_h_dataset_delete(lh_req *req, lh_resp *resp)
{
    return change_dataset(req, resp, lh_catalog_delete);
}

int
lh_h_dataset_resync(lh_req *req, lh_resp *resp)
{
    return change_dataset(req, resp, lh_catalog_resync);
}

int
lh_h_sweep(lh_req *req, lh_resp *resp)
{
    lh_err err;
    int64_t grace_s;
    const char *dry = lh_req_query(req, "dry_run");
    if (lh_req_query_int(req, "grace_s", 3600, 0, INT64_C(10) * 365 * 86400, &grace_s, &err) != 0)
        return lh_resp_error(resp, &err);
    if (dry && strcmp(dry, "true") != 0 && strcmp(dry, "false") != 0) {
        lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter", "'dry_run' must be true or false");
        return lh_resp_error(resp, &err);
    }
    bool dry_run = dry && strcmp(dry, "true") == 0;
    json_t *report = lh_catalog_sweep(req->srv->catalog, grace_s, dry_run);
    if (req->srv->workspaces)
        lh_workspace_sweep(req->srv->workspaces, grace_s, dry_run, report);
    return lh_resp_json(resp, 200, report);
}

int
lh_h_resync_missing(lh_req *req, lh_resp *resp)
{
    return lh_resp_json(resp, 200,
                        lh_catalog_resync_missing(req->srv->catalog, req->principal->name));
}
