/*
 * svc_rows.c — lakehouse.v1.Rows/Change: lh_ingest_rows_as, as POST /datasets/{name}/rows
 * calls it, with the rows as Structs.
 */
#include "rpc/rpc_int.h"

#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>

#include "lakehouse/v1/rows.pb-c.h"

static json_t *
array_of(Google__Protobuf__Struct **rows, size_t n)
{
    if (n == 0)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, lh_grpc__json_of_struct(rows[i]));
    return a;
}

static int
change(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len, lh_err *err)
{
    Lakehouse__V1__ChangeRowsRequest *req =
        lakehouse__v1__change_rows_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.ChangeRowsRequest");
    json_t *upsert = array_of(req->upsert, req->n_upsert);
    json_t *deletes = array_of(req->deletes, req->n_deletes), *result = NULL;
    lh_rows_opts o = {.dataset = req->dataset,
                      .upsert = upsert,
                      .deletes = deletes,
                      .source = req->source[0] ? req->source : NULL,
                      .workspace_id = req->workspace_id[0] ? req->workspace_id : NULL};
    lh_rows_deps d = {.catalog = c->deps->catalog,
                      .engine = c->deps->internal_engine,
                      .buckets = c->deps->buckets,
                      .jobs = c->deps->jobs};
    int rc = lh_ingest_rows_as(&d, c->principal, c->config, &o, &result, err);
    json_decref(upsert);
    json_decref(deletes);
    lakehouse__v1__change_rows_request__free_unpacked(req, NULL);
    if (rc != 0)
        return rc;
    Lakehouse__V1__ChangeRowsResponse res = LAKEHOUSE__V1__CHANGE_ROWS_RESPONSE__INIT;
    res.dataset = (char *)json_string_value(json_object_get(result, "dataset"));
    if (res.dataset == NULL)
        res.dataset = "";
    res.version = json_integer_value(json_object_get(result, "version"));
    res.row_count = json_integer_value(json_object_get(result, "row_count"));
    res.unchanged = json_is_true(json_object_get(result, "unchanged"));
    res.deltas = json_integer_value(json_object_get(result, "deltas"));
    const json_t *counts = json_object_get(result, "counts");
    res.inserted = json_integer_value(json_object_get(counts, "inserted"));
    res.updated = json_integer_value(json_object_get(counts, "updated"));
    res.deleted = json_integer_value(json_object_get(counts, "deleted"));
    res.events = json_integer_value(json_object_get(counts, "events"));
    lh_grpc__pack(&res.base, out, out_len);
    json_decref(result);
    return 0;
}

const lh_gmethod lh_grpc__rows[] = {
    {"/lakehouse.v1.Rows/Change", LH_ALLOW_WRITE, change, NULL, NULL, LH_GOFFLOAD, NULL},
};
const size_t lh_grpc__n_rows = sizeof lh_grpc__rows / sizeof lh_grpc__rows[0];
